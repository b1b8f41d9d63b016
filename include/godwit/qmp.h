/*
 * qmp: the QMP control socket, wire-compatible with QEMU's monitor.
 *
 * One GwQmpServer listens on a Unix socket (mode 0600, removed when the
 * server is freed) and serves any number of clients on the GLib main
 * loop, each with its own negotiation state.  Every request is checked
 * against qmp/schema.json before its handler runs, so a handler sees
 * only well-formed arguments and a bad request has no side effect.
 *
 * Limits (docs/qmp.md): a request may be at most GW_QMP_MAX_REQUEST
 * bytes (larger: an error, then the connection is closed) and nest {}
 * and [] GW_QMP_MAX_NESTING deep, as in QEMU (deeper: an error, and
 * parsing goes on after it); while more
 * than GW_QMP_OUT_SOFT bytes of replies and events wait for a client to
 * read them, godwit stops reading that client's requests; past
 * GW_QMP_OUT_HARD the client is disconnected.  At most GW_QMP_MAX_CLIENTS
 * clients are served at once: one more gets an error and is closed.
 * add-fd and getfd refuse an fd beyond GW_QMP_MAX_SET_FDS in one set or
 * GW_QMP_MAX_FDS held in all (the fd is closed, the client stays).
 *
 * Threads: main thread only.
 */
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <json-c/json.h>

#define GW_QMP_MAX_REQUEST (1u << 20)
#define GW_QMP_MAX_NESTING 1024 /* QEMU's MAX_NESTING, json-streamer.c */
#define GW_QMP_OUT_SOFT    (1u << 20)
#define GW_QMP_OUT_HARD    (16u << 20)
#define GW_QMP_MAX_CLIENTS 64  /* connected at once; the next is refused */
#define GW_QMP_MAX_SET_FDS 64  /* fds in one fd set (add-fd) */
#define GW_QMP_MAX_FDS     256 /* fds held at once: fd sets and getfd names */
#define GW_QMP_VERSION_MAJOR                                                   \
    8 /* the QEMU release whose interface we follow                            \
       */
#define GW_QMP_VERSION_MINOR 2
#define GW_QMP_VERSION_MICRO 0

typedef struct GwQmpServer GwQmpServer;
typedef struct GwQmpClient GwQmpClient;
typedef GwQmpClient GwQmpSession;

/*
 * A command: `args` is validated against the schema (never NULL).
 * Returns the value for "return" (a new reference; {} when there is
 * nothing to return), or NULL with *errp set.  The error class comes from
 * the GError: GW_ERROR_NOT_FOUND → DeviceNotFound, GW_ERROR_NO_KVM →
 * KVMMissingCap, anything else → GenericError.
 */
typedef json_object *(*GwQmpHandler)(GwQmpSession *session, json_object *args,
                                     gpointer opaque, GError **errp);

/*
 * Listens on `path` (NULL: no socket, clients only through
 * gw_qmp_server_add_client).  A stale socket file is replaced; a live
 * one, or any other file, is an error.  NULL with *errp on failure,
 * nothing left behind.
 */
GwQmpServer *gw_qmp_server_new(const char *path, GError **errp);
/* Disconnects everyone, removes the socket file. */
void gw_qmp_server_free(GwQmpServer *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwQmpServer, gw_qmp_server_free)

/*
 * Serves clients that connect to `fd`, a listening socket another process
 * made and passed down (libvirt's monitor: QEMU's -chardev
 * socket,fd=N,server=on), for a server made with no path.  Takes `fd`,
 * even on error; false with *errp if it is not a listening socket.
 */
bool gw_qmp_server_listen_fd(GwQmpServer *s, int fd, GError **errp);

/* Serves a connected socket (tests: one end of a socketpair). */
void gw_qmp_server_add_client(GwQmpServer *s, int fd);

/* Installs the handler of a command declared in the schema. */
void gw_qmp_server_register(GwQmpServer *s, const char *name,
                            GwQmpHandler handler, gpointer opaque);

/* Sends an event to every negotiated client; takes `data` (may be NULL).
 * Has the GwEventFn signature (godwit/vm.h). */
void gw_qmp_server_emit(const char *name, json_object *data, gpointer server);

/* ---- fd passing ---- */

/*
 * Takes the fd that arrived (SCM_RIGHTS) with the request being handled,
 * or -1.  The caller owns it.  Unclaimed fds are closed after the request.
 */
int gw_qmp_session_take_fd(GwQmpSession *session);

/* The fd `getfd` named `name` on this session, or -1 (still owned). */
int gw_qmp_session_named_fd(GwQmpSession *session, const char *name);

/*
 * open(2) for every path a QMP command takes: "/dev/fdset/N" dups the fd
 * of set N whose access mode matches `flags` (as QEMU does); anything
 * else is opened.  Returns a new fd (O_CLOEXEC) or -1 with *errp.
 */
int gw_qmp_open_path(GwQmpServer *s, const char *path, int flags,
                     GError **errp);

/*
 * Puts `fd` (taken) into fd set `id`, as QEMU's -add-fd
 * set=ID,fd=FD,opaque=OPAQUE does before any client connects; `opaque`
 * may be NULL.  query-fdsets shows it, /dev/fdset/ID opens it.
 */
void gw_qmp_server_add_fdset_fd(GwQmpServer *s, unsigned id, int fd,
                                const char *opaque);

/* The server a session belongs to (for gw_qmp_open_path). */
GwQmpServer *gw_qmp_session_server(GwQmpSession *session);
