/*
 * Migration URIs and their sockets.  See include/godwit/mig-transport.h.
 */
#include <fcntl.h>
#include <netdb.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <godwit/mig-transport.h>
#include <godwit/util.h>

#define SOCK_BUF (4 << 20) /* the kernel caps it at its rmem/wmem_max */
/* multifd channels connect at once: with a backlog of 1, TCP drops their
 * SYNs and each waits a second to retry */
#define BACKLOG 16

static bool
bad_uri(const char *uri, const char *why, GError **errp)
{
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID, "migration URI '%s': %s", uri,
                why);
    return false;
}

/* HOST:PORT with HOST possibly [v6]. */
static bool
parse_tcp(const char *uri, const char *hp, GwMigUri *out, GError **errp)
{
    const char *colon;

    if (*hp == '[') {
        const char *end = strchr(hp, ']');
        if (!end || end[1] != ':') {
            return bad_uri(uri, "expected tcp:[IPV6]:PORT", errp);
        }
        out->host = g_strndup(hp + 1, (gsize)(end - hp - 1));
        colon = end + 1;
    } else {
        colon = strrchr(hp, ':');
        if (!colon) {
            return bad_uri(uri, "expected tcp:HOST:PORT", errp);
        }
        out->host = g_strndup(hp, (gsize)(colon - hp));
    }
    out->port = g_strdup(colon + 1);
    if (!*out->port || strspn(out->port, "0123456789") != strlen(out->port) ||
        atoi(out->port) > 65535) {
        gw_mig_uri_clear(out);
        return bad_uri(uri, "the port must be a number up to 65535", errp);
    }
    return true;
}

bool
gw_mig_uri_parse(const char *uri, GwMigUri *out, GError **errp)
{
    memset(out, 0, sizeof(*out));
    if (g_str_has_prefix(uri, "tcp:")) {
        out->kind = GW_MIG_URI_TCP;
        return parse_tcp(uri, uri + 4, out, errp);
    }
    if (g_str_has_prefix(uri, "unix:") && uri[5]) {
        out->kind = GW_MIG_URI_UNIX;
        out->path = g_strdup(uri + 5);
        return true;
    }
    if (g_str_has_prefix(uri, "fd:") && uri[3]) {
        out->kind = GW_MIG_URI_FD;
        out->fd_name = g_strdup(uri + 3);
        return true;
    }
    if (g_str_has_prefix(uri, "file:") && uri[5]) {
        out->kind = GW_MIG_URI_FILE;
        out->path = g_strdup(uri + 5);
        return true;
    }
    return bad_uri(uri,
                   "expected tcp:HOST:PORT, unix:PATH, fd:NAME or "
                   "file:PATH",
                   errp);
}

void
gw_mig_uri_clear(GwMigUri *u)
{
    g_clear_pointer(&u->host, g_free);
    g_clear_pointer(&u->port, g_free);
    g_clear_pointer(&u->path, g_free);
    g_clear_pointer(&u->fd_name, g_free);
}

bool
gw_mig_uri_has_return_path(const GwMigUri *u)
{
    return u->kind != GW_MIG_URI_FILE;
}

void
gw_mig_socket_tune(int fd)
{
    int one = 1, buf = SOCK_BUF;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* unix: no */
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
}

static struct addrinfo *
resolve(const GwMigUri *u, bool passive, GError **errp)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = passive ? AI_PASSIVE : 0};
    struct addrinfo *res = NULL;
    const char *host = *u->host ? u->host : NULL;
    int rc = getaddrinfo(host, u->port, &hints, &res);

    if (rc != 0) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "migration: cannot resolve '%s:%s': %s", u->host, u->port,
                    gai_strerror(rc));
        return NULL;
    }
    return res;
}

static int
tcp_connect(const GwMigUri *u, GError **errp)
{
    struct addrinfo *res = resolve(u, false, errp);
    int err = 0;

    if (!res) {
        return -1;
    }
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            freeaddrinfo(res);
            return fd;
        }
        err = errno;
        if (fd >= 0) {
            close(fd);
        }
    }
    freeaddrinfo(res);
    gw_error_errno(errp, err, "migration: cannot connect to %s:%s", u->host,
                   u->port);
    return -1;
}

/* Fuzz builds parse URIs but never open what they name. */
static bool
fuzzing(GError **errp)
{
#ifdef GW_FUZZING
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "migration transports are off in fuzz builds");
    return true;
#else
    (void)errp;
    return false;
#endif
}

int
gw_mig_uri_connect(const GwMigUri *u, GError **errp)
{
    int fd = -1;

    if (fuzzing(errp)) {
        return -1;
    }

    switch (u->kind) {
    case GW_MIG_URI_TCP:
        fd = tcp_connect(u, errp);
        break;
    case GW_MIG_URI_UNIX:
        fd = gw_unix_connect(u->path);
        if (fd < 0) {
            gw_error_errno(errp, errno, "migration: cannot connect to %s",
                           u->path);
        }
        break;
    case GW_MIG_URI_FILE:
        fd = open(u->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
            gw_error_errno(errp, errno, "migration: cannot create %s", u->path);
        }
        return fd;
    case GW_MIG_URI_FD:
        g_assert_not_reached(); /* the caller resolves fd: names */
    }
    if (fd >= 0) {
        gw_mig_socket_tune(fd);
    }
    return fd;
}

static int
tcp_listen(const GwMigUri *u, GError **errp)
{
    struct addrinfo *res = resolve(u, true, errp);
    int err = 0, one = 1;

    if (!res) {
        return -1;
    }
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 &&
            listen(fd, BACKLOG) == 0) {
            freeaddrinfo(res);
            return fd;
        }
        err = errno;
        close(fd);
    }
    freeaddrinfo(res);
    gw_error_errno(errp, err, "--incoming: cannot listen on %s:%s", u->host,
                   u->port);
    return -1;
}

int
gw_mig_uri_listen(const GwMigUri *u, bool *listening, GError **errp)
{
    int fd;

    *listening = u->kind == GW_MIG_URI_TCP || u->kind == GW_MIG_URI_UNIX;
    if (fuzzing(errp)) {
        return -1;
    }
    switch (u->kind) {
    case GW_MIG_URI_TCP:
        return tcp_listen(u, errp);
    case GW_MIG_URI_UNIX:
        return gw_unix_listen("--incoming", u->path, BACKLOG, errp);
    case GW_MIG_URI_FILE:
        fd = open(u->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            gw_error_errno(errp, errno, "--incoming: cannot open %s", u->path);
        }
        return fd;
    case GW_MIG_URI_FD:
        break;
    }
    g_assert_not_reached(); /* the caller resolves fd: */
}
