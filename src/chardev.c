/*
 * Serial backends.  Threads: see include/godwit/chardev.h.  `out_fd` is
 * written by vCPU threads and replaced by the main thread (socket client
 * connect/disconnect) only under `lock`.
 */
#include <fcntl.h>
#include <glib-unix.h>
#include <godwit/chardev.h>
#include <godwit/listener.h>
#include <godwit/util.h>

struct GwChardev {
    GwSerialMode mode;
    char *path;
    GMutex lock;
    int out_fd;           /* -1: output dropped */
    GwListener *listener; /* socket mode */
    int client_fd;        /* socket mode, -1 when none */
    guint input_watch;
    GwChardevInputFn input;
    gpointer opaque;
};

static gboolean on_input(int fd, GIOCondition cond, gpointer data);

static void
set_out_fd(GwChardev *ch, int fd)
{
    g_mutex_lock(&ch->lock);
    ch->out_fd = fd;
    g_mutex_unlock(&ch->lock);
}

static void
drop_client(GwChardev *ch)
{
    set_out_fd(ch, -1);
    g_clear_handle_id(&ch->input_watch, g_source_remove);
    if (ch->client_fd >= 0) {
        close(ch->client_fd);
        ch->client_fd = -1;
        gw_listener_kick(ch->listener);
    }
}

static gboolean
on_input(int fd, GIOCondition cond, gpointer data)
{
    GwChardev *ch = data;
    uint8_t buf[64];
    ssize_t n = read(fd, buf, sizeof(buf));

    if (n > 0) {
        ch->input(ch->opaque, buf, (size_t)n);
        return G_SOURCE_CONTINUE;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return G_SOURCE_CONTINUE;
    }
    ch->input_watch = 0;
    if (ch->mode == GW_SERIAL_SOCKET) {
        drop_client(ch);
    }
    return G_SOURCE_REMOVE;
}

static void
on_connect(gpointer data, int fd)
{
    GwChardev *ch = data;

    if (ch->client_fd >= 0) {
        close(fd); /* one client at a time, as Cloud Hypervisor */
        return;
    }
    ch->client_fd = fd;
    set_out_fd(ch, fd);
    ch->input_watch =
        g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_input, ch);
}

static bool
open_socket(GwChardev *ch, GError **errp)
{
    ch->listener =
        gw_listener_new("--serial", ch->path, 1, on_connect, ch, errp);
    return ch->listener != NULL;
}

/* An fd someone else opened (libvirt's log file, passed with -add-fd):
 * ours is a dup, so whoever made the config keeps theirs. */
static bool
dup_fd(GwChardev *ch, GError **errp)
{
    char *end;
    long fd = strtol(ch->path, &end, 10);

    g_assert(*ch->path && !*end && fd >= 0);
    ch->out_fd = fcntl((int)fd, F_DUPFD_CLOEXEC, 0);
    if (ch->out_fd < 0) {
        return gw_error_errno(errp, errno, "serial: fd %ld", fd);
    }
    return true;
}

static bool
open_backend(GwChardev *ch, GError **errp)
{
    switch (ch->mode) {
    case GW_SERIAL_OFF:
        return true;
    case GW_SERIAL_STDIO:
        ch->out_fd = STDOUT_FILENO;
        if (isatty(STDIN_FILENO)) {
            ch->input_watch =
                g_unix_fd_add(STDIN_FILENO, G_IO_IN | G_IO_HUP, on_input, ch);
        }
        return true;
    case GW_SERIAL_FILE:
        ch->out_fd =
            open(ch->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (ch->out_fd < 0) {
            return gw_error_errno(errp, errno, "--serial: %s", ch->path);
        }
        return true;
    case GW_SERIAL_SOCKET:
        return open_socket(ch, errp);
    case GW_SERIAL_FD:
        return dup_fd(ch, errp);
    }
    g_assert_not_reached();
}

GwChardev *
gw_chardev_new(GwSerialMode mode, const char *path, GwChardevInputFn input,
               gpointer opaque, GError **errp)
{
    g_autoptr(GwChardev) ch = g_new0(GwChardev, 1);

    ch->mode = mode;
    ch->path = g_strdup(path);
    ch->out_fd = ch->client_fd = -1;
    ch->input = input;
    ch->opaque = opaque;
    g_mutex_init(&ch->lock);
    if (!open_backend(ch, errp)) {
        return NULL;
    }
    return g_steal_pointer(&ch);
}

void
gw_chardev_free(GwChardev *ch)
{
    if (!ch) {
        return;
    }
    if (ch->mode == GW_SERIAL_FILE || ch->mode == GW_SERIAL_FD) {
        close(ch->out_fd);
    }
    drop_client(ch);
    gw_listener_free(ch->listener);
    g_mutex_clear(&ch->lock);
    g_free(ch->path);
    g_free(ch);
}

void
gw_chardev_write(GwChardev *ch, uint8_t byte)
{
    g_mutex_lock(&ch->lock);
    if (ch->out_fd >= 0 && write(ch->out_fd, &byte, 1) < 0 && errno != EAGAIN) {
        g_debug("serial output: %s", g_strerror(errno));
    }
    g_mutex_unlock(&ch->lock);
}
