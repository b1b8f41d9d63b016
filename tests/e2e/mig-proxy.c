/*
 * The migration tests' proxy (mig-proxy.h).  One thread accepts and
 * relays the main connection; each later connection has its own.
 */
#include <poll.h>
#include <stdbool.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <glib/gstdio.h>
#include "mig-proxy.h"

typedef struct {
    Proxy *p;
    unsigned index;
    int src;
} Link;

static int
unix_connect(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_strlcpy(a.sun_path, path, sizeof(a.sun_path));
    g_assert_cmpint(connect(fd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
    return fd;
}

/* Copies what `from` has to `to`; false once either end is gone. */
static bool
relay(Proxy *p, unsigned link, int from, int to, bool downstream, uint64_t *off)
{
    uint8_t buf[4096];
    ssize_t n = read(from, buf, sizeof(buf));
    int fault = link == p->fault_link ? g_atomic_int_get(&p->fault) : LINK_OK;

    if (n <= 0) {
        return false;
    }
    if (downstream && link == p->fault_link && p->auto_at &&
        *off + (uint64_t)n > p->auto_at) {
        fault = p->auto_fault;
        g_atomic_int_set(&p->fault, fault);
    }
    if (downstream && fault == LINK_CUT) {
        return false;
    }
    if (downstream && fault == LINK_CORRUPT) {
        buf[0] ^= 0x10; /* once */
        g_atomic_int_set(&p->fault, LINK_OK);
        p->auto_at = 0;
    }
    *off += (uint64_t)n;
    return send(to, buf, (size_t)n, MSG_NOSIGNAL) == n; /* peer may be gone */
}

/* One connection, both ways, until either end goes. */
static void
relay_link(Proxy *p, unsigned index, int src)
{
    int dst = unix_connect(p->to);
    uint64_t off = 0, back = 0;

    for (;;) {
        struct pollfd f[2] = {{src, POLLIN, 0}, {dst, POLLIN, 0}};
        if (poll(f, 2, 100) < 0) {
            break;
        }
        if ((f[0].revents && !relay(p, index, src, dst, true, &off)) ||
            (f[1].revents && !relay(p, index, dst, src, false, &back))) {
            break;
        }
    }
    close(src); /* both ends see the link go */
    close(dst);
}

static gpointer
link_thread(gpointer data)
{
    Link *l = data;

    relay_link(l->p, l->index, l->src);
    g_free(l);
    return NULL;
}

/* The main connection here; each later one (a channel) in its own
 * thread. */
static gpointer
proxy_thread(gpointer data)
{
    Proxy *p = data;
    int src = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);

    GThread *main_link = g_thread_new(
        "link", link_thread, g_memdup2(&(Link){p, 0, src}, sizeof(Link)));
    for (unsigned i = 1; i < PROXY_LINKS && !g_atomic_int_get(&p->stop);) {
        struct pollfd f = {p->listen_fd, POLLIN, 0};
        if (poll(&f, 1, 50) <= 0) {
            continue;
        }
        Link l = {p, i, accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC)};
        p->links[i++] =
            g_thread_new("link", link_thread, g_memdup2(&l, sizeof(l)));
    }
    g_thread_join(main_link);
    return NULL;
}

void
proxy_start(Proxy *p, const char *dir, const char *to)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};

    p->path = g_build_filename(dir, "proxy.sock", NULL);
    p->to = g_strdup(to);
    p->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_strlcpy(a.sun_path, p->path, sizeof(a.sun_path));
    g_assert_cmpint(bind(p->listen_fd, (struct sockaddr *)&a, sizeof(a)), ==,
                    0);
    g_assert_cmpint(listen(p->listen_fd, 1), ==, 0);
    p->thread = g_thread_new("proxy", proxy_thread, p);
}

void
proxy_stop(Proxy *p)
{
    g_atomic_int_set(&p->stop, 1);
    g_thread_join(p->thread);
    for (unsigned i = 1; i < PROXY_LINKS; i++) {
        if (p->links[i]) {
            g_thread_join(p->links[i]);
        }
    }
    close(p->listen_fd);
    g_unlink(p->path);
    g_free(p->path);
    g_free(p->to);
}
