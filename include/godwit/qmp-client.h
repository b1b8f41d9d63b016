/*
 * qmp-client: a small blocking QMP client for tests, benchmarks and
 * godwit-ctl.  Speaks to godwit or QEMU alike.  Events that arrive while
 * a reply is awaited are queued, not lost.
 *
 * Threads: one connection is used by one thread at a time.
 */
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <json-c/json.h>

typedef struct GwQmpConn GwQmpConn;

/*
 * Connects to the socket at `path`, retrying until it accepts or
 * `timeout_ms` passes, and reads the greeting.  NULL with *errp.
 */
GwQmpConn *gw_qmp_conn_new(const char *path, int timeout_ms, GError **errp);
void gw_qmp_conn_free(GwQmpConn *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwQmpConn, gw_qmp_conn_free)

/* The greeting ({"QMP": …}); owned by the connection. */
json_object *gw_qmp_conn_greeting(GwQmpConn *c);

/* qmp_capabilities; false with *errp on an error reply. */
bool gw_qmp_conn_negotiate(GwQmpConn *c, int timeout_ms, GError **errp);

/*
 * Sends {"execute": cmd, "arguments": args} (args taken, may be NULL)
 * with `fd` attached by SCM_RIGHTS unless it is -1, and returns the whole
 * reply ({"return": …} or {"error": …}); NULL with *errp on I/O error or
 * timeout.  Caller owns the reply.
 */
json_object *gw_qmp_conn_execute(GwQmpConn *c, const char *cmd,
                                 json_object *args, int fd, int timeout_ms,
                                 GError **errp);

/* Sends raw bytes (and an fd unless -1), for tests of bad input. */
bool gw_qmp_conn_send_raw(GwQmpConn *c, const char *buf, size_t len, int fd,
                          GError **errp);

/* The next message that is not an event; NULL with *errp on timeout. */
json_object *gw_qmp_conn_read_reply(GwQmpConn *c, int timeout_ms,
                                    GError **errp);

/* The next event named `name` (queued or new); NULL on timeout. */
json_object *gw_qmp_conn_wait_event(GwQmpConn *c, const char *name,
                                    int timeout_ms, GError **errp);

/* Reads until the server closes the connection (true) or timeout. */
bool gw_qmp_conn_wait_closed(GwQmpConn *c, int timeout_ms);
