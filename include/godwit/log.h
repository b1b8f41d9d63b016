/*
 * log: where g_log output goes.  Every module logs with g_log/g_debug
 * under its directory's G_LOG_DOMAIN ("godwit", "godwit-vdpa",
 * "godwit-qmp", "godwit-mig"); this module filters by --log-level and
 * lets G_MESSAGES_DEBUG=<domain>|all show one module's debug output.
 *
 * Thread: gw_log_setup from main() before any other thread starts; the
 * writer itself is thread-safe.
 */
#pragma once

#include <glib.h>

/* Shows messages at `max_level` and more severe (G_LOG_LEVEL_DEBUG: all). */
void gw_log_setup(GLogLevelFlags max_level);
