#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <godwit/util.h>

G_DEFINE_QUARK(godwit - error - quark, gw_error)

bool
gw_error_errno(GError **errp, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(errp, GW_ERROR, GW_ERROR_FAILED, "%s: %s", what,
                g_strerror(err));
    return false;
}

/* A socket nobody listens on is left over from a crash: replace it. */
static bool
clear_stale(const char *opt, const char *path, const struct sockaddr_un *addr,
            GError **errp)
{
    struct stat st;
    gw_autofd fd = -1;

    if (lstat(path, &st) < 0) {
        return errno == ENOENT ||
               gw_error_errno(errp, errno, "%s: %s", opt, path);
    }
    if (!S_ISSOCK(st.st_mode)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_EXISTS,
                    "%s: %s exists and is not a socket", opt, path);
        return false;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 &&
        connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0) {
        g_set_error(errp, GW_ERROR, GW_ERROR_EXISTS,
                    "%s: %s is in use by another process", opt, path);
        return false;
    }
    unlink(path);
    return true;
}

int
gw_unix_listen(const char *opt, const char *path, int backlog, GError **errp)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    gw_autofd fd = -1;
    mode_t old;
    int ret;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "%s: socket path '%s' is too long", opt, path);
        return -1;
    }
    strcpy(addr.sun_path, path);
    if (!clear_stale(opt, path, &addr, errp)) {
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return gw_error_errno(errp, errno, "%s: socket", opt), -1;
    }
    old = umask(0177); /* the socket is created 0600 */
    ret = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
    umask(old);
    if (ret < 0) {
        return gw_error_errno(errp, errno, "%s: %s", opt, path), -1;
    }
    if (listen(fd, backlog) < 0) {
        gw_error_errno(errp, errno, "%s: listen on %s", opt, path);
        unlink(path);
        return -1;
    }
    return gw_steal_fd(&fd);
}

int
gw_unix_connect(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    gw_autofd fd = -1;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(addr.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        return -1; /* gw_autofd keeps errno */
    }
    return gw_steal_fd(&fd);
}
