/*
 * A listening Unix socket that backs off when out of fds.  See
 * include/godwit/listener.h.  Main thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <glib-unix.h>
#include <godwit/listener.h>
#include <godwit/util.h>

struct GwListener {
    char *opt, *path;
    int fd;
    guint watch, retry;
    bool paused;    /* by the owner */
    bool starved;   /* accept failed: waiting for `retry` or a kick */
    bool logged;    /* this spell of failures was logged */
    bool inherited; /* made by someone else: `path` is "fd N", no file */
    GwListenerFn fn;
    gpointer opaque;
};

static gboolean on_ready(int fd, GIOCondition cond, gpointer data);

/* The socket is watched exactly when neither the owner nor a lack of
 * resources holds accepting back. */
static void
update_watch(GwListener *l)
{
    bool want = !l->paused && !l->starved;

    if (want && !l->watch) {
        l->watch = g_unix_fd_add(l->fd, G_IO_IN, on_ready, l);
    } else if (!want) {
        g_clear_handle_id(&l->watch, g_source_remove);
    }
}

static gboolean
on_retry(gpointer data)
{
    GwListener *l = data;

    l->retry = 0;
    l->starved = false;
    update_watch(l);
    return G_SOURCE_REMOVE;
}

/* The pending connection keeps the socket readable: stop polling it. */
static void
back_off(GwListener *l, int err)
{
    if (!l->logged) {
        g_warning("%s: cannot accept connections on %s: %s; retrying "
                  "every %d ms until a client leaves",
                  l->opt, l->path, g_strerror(err), GW_LISTENER_BACKOFF_MS);
        l->logged = true;
    }
    l->starved = true;
    update_watch(l);
    if (!l->retry) {
        l->retry = g_timeout_add(GW_LISTENER_BACKOFF_MS, on_retry, l);
    }
}

static gboolean
on_ready(int fd, GIOCondition cond, gpointer data)
{
    GwListener *l = data;
    int client = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (client < 0) {
        /* Transient, or the peer gave up: the next poll tells. */
        if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
            back_off(l, errno);
        }
        return G_SOURCE_CONTINUE; /* back_off removed us if it must */
    }
    if (l->logged) {
        g_message("%s: accepting connections on %s again", l->opt, l->path);
        l->logged = false;
    }
    l->fn(l->opaque, client);
    return G_SOURCE_CONTINUE;
}

static GwListener *
listener_new(const char *opt, const char *path, int fd, GwListenerFn fn,
             gpointer opaque)
{
    GwListener *l = g_new0(GwListener, 1);

    l->opt = g_strdup(opt);
    l->path = g_strdup(path);
    l->fd = fd;
    l->fn = fn;
    l->opaque = opaque;
    update_watch(l);
    return l;
}

GwListener *
gw_listener_new(const char *opt, const char *path, int backlog, GwListenerFn fn,
                gpointer opaque, GError **errp)
{
    int fd = gw_unix_listen(opt, path, backlog, errp);

    return fd < 0 ? NULL : listener_new(opt, path, fd, fn, opaque);
}

GwListener *
gw_listener_new_fd(const char *opt, int fd, GwListenerFn fn, gpointer opaque,
                   GError **errp)
{
    gw_autofd owned = fd;
    int on = 0, type = 0;
    socklen_t len = sizeof(on), tlen = sizeof(type);
    g_autofree char *name = g_strdup_printf("fd %d", fd);

    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0) {
        return gw_error_errno(errp, errno, "%s: %s", opt, name), NULL;
    }
    if (!on || type != SOCK_STREAM) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "%s: %s is not a listening stream socket", opt, name);
        return NULL;
    }
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ||
        !g_unix_set_fd_nonblocking(fd, TRUE, NULL)) {
        return gw_error_errno(errp, errno, "%s: %s", opt, name), NULL;
    }
    GwListener *l = listener_new(opt, name, gw_steal_fd(&owned), fn, opaque);
    l->inherited = true;
    return l;
}

void
gw_listener_free(GwListener *l)
{
    if (!l) {
        return;
    }
    g_clear_handle_id(&l->watch, g_source_remove);
    g_clear_handle_id(&l->retry, g_source_remove);
    close(l->fd);
    if (!l->inherited) {
        unlink(l->path);
    }
    g_free(l->opt);
    g_free(l->path);
    g_free(l);
}

void
gw_listener_set_paused(GwListener *l, bool paused)
{
    l->paused = paused;
    update_watch(l);
}

void
gw_listener_kick(GwListener *l)
{
    if (l && l->starved) {
        g_clear_handle_id(&l->retry, g_source_remove);
        l->starved = false;
        update_watch(l);
    }
}
