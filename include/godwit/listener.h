/*
 * listener: a listening Unix socket on the GLib main loop, shared by the
 * QMP server, the qtest server and the serial socket.
 *
 * The socket is created mode 0600 (gw_unix_listen).  Each connection is
 * accepted (O_CLOEXEC | O_NONBLOCK) and handed to the owner's callback.
 * When accept fails for want of resources (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM) the pending connection would make the socket readable forever,
 * so the listener stops watching it and tries again after
 * GW_LISTENER_BACKOFF_MS, or at once when the owner calls
 * gw_listener_kick() because it closed a client.  The first failure of
 * such a spell is logged once (a warning); the first accept after it,
 * once (a message).
 *
 * Threads: main thread only (the default GMainContext).
 */
#pragma once

#include <stdbool.h>
#include <glib.h>

#define GW_LISTENER_BACKOFF_MS 100

typedef struct GwListener GwListener;

/* A new connection: `fd` is the callback's to own and close. */
typedef void (*GwListenerFn)(gpointer opaque, int fd);

/*
 * Listens on `path` (see gw_unix_listen for stale sockets and errors;
 * messages start with `opt`, "--qmp") and starts accepting.  NULL with
 * *errp set and nothing left behind.  Freeing closes the socket and
 * removes `path`.
 */
GwListener *gw_listener_new(const char *opt, const char *path, int backlog,
                            GwListenerFn fn, gpointer opaque, GError **errp);
/*
 * Accepts on `fd`, a listening socket someone else made (libvirt's
 * monitor socket, inherited); takes ownership of it, even on error.
 * Refused unless it is a listening stream socket.  Freeing closes it and
 * removes no file.
 */
GwListener *gw_listener_new_fd(const char *opt, int fd, GwListenerFn fn,
                               gpointer opaque, GError **errp);
void gw_listener_free(GwListener *l);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwListener, gw_listener_free)

/*
 * Stops or resumes accepting, for an owner that serves one client at a
 * time: connections wait in the backlog meanwhile.  May be called from
 * the callback.
 */
void gw_listener_set_paused(GwListener *l, bool paused);

/*
 * The owner freed an fd (a client left): if accepting is backed off for
 * want of fds, try again now rather than at the next timer tick.
 * `l` may be NULL (an owner without a socket): nothing happens.
 */
void gw_listener_kick(GwListener *l);
