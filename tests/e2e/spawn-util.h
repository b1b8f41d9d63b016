/* Helpers for tests that spawn godwit or QEMU. */
#pragma once

#include <signal.h>
#include <sys/prctl.h>
#include <glib.h>

/*
 * A GSpawnChildSetupFunc: the child gets SIGTERM when the test process
 * dies (an aborted test), so no VMM outlives it, and godwit still
 * removes its socket and nodes on the way out.
 */
static inline void
die_with_parent(gpointer data)
{
    (void)data;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
}
