/*
 * The QMP client library.  See include/godwit/qmp-client.h.
 */
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <godwit/qmp-client.h>
#include <godwit/qmp.h>
#include <godwit/util.h>

struct GwQmpConn {
    int fd;
    GString *in;   /* bytes read, not yet split into lines */
    GQueue events; /* json_object *, received while waiting */
    json_object *greeting;
};

static gint64
deadline_of(int timeout_ms)
{
    return g_get_monotonic_time() + (gint64)timeout_ms * 1000;
}

static int
left_ms(gint64 deadline)
{
    gint64 left = deadline - g_get_monotonic_time();
    return left > 0 ? (int)(left / 1000) + 1 : 0;
}

/* json_tokener_parse stops at 32 levels; an echoed id may nest deeper. */
static json_object *
parse_line(const char *line)
{
    json_tokener *tok = json_tokener_new_ex(GW_QMP_MAX_NESTING);
    json_object *msg = json_tokener_parse_ex(tok, line, (int)strlen(line));

    json_tokener_free(tok);
    return msg;
}

/* One line (a JSON message) within the deadline, or NULL. */
static json_object *
read_message(GwQmpConn *c, gint64 deadline, GError **errp)
{
    for (;;) {
        char *nl = memchr(c->in->str, '\n', c->in->len);
        if (nl) {
            size_t len = (size_t)(nl - c->in->str) + 1;
            g_autofree char *line = g_strndup(c->in->str, len);
            json_object *msg = parse_line(line);
            g_string_erase(c->in, 0, len);
            if (msg) {
                return msg;
            }
            continue; /* not JSON: skip it */
        }
        struct pollfd p = {c->fd, POLLIN, 0};
        int r = poll(&p, 1, left_ms(deadline));
        if (r == 0) {
            g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                        "QMP: no answer in time");
            return NULL;
        }
        char buf[65536];
        ssize_t n = r > 0 ? read(c->fd, buf, sizeof(buf)) : -1;
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                        "QMP: connection closed%s%s", n < 0 ? ": " : "",
                        n < 0 ? g_strerror(errno) : "");
            return NULL;
        }
        g_string_append_len(c->in, buf, n);
    }
}

GwQmpConn *
gw_qmp_conn_new(const char *path, int timeout_ms, GError **errp)
{
    g_autoptr(GwQmpConn) c = g_new0(GwQmpConn, 1);
    gint64 deadline = deadline_of(timeout_ms);

    c->in = g_string_new(NULL);
    g_queue_init(&c->events);
    while ((c->fd = gw_unix_connect(path)) < 0) {
        if (g_get_monotonic_time() > deadline ||
            (errno != ENOENT && errno != ECONNREFUSED)) {
            gw_error_errno(errp, errno, "QMP: cannot connect to %s", path);
            return NULL;
        }
        g_usleep(5000); /* the socket is not there yet: bounded retry */
    }
    c->greeting = read_message(c, deadline, errp);
    if (!c->greeting) {
        return NULL;
    }
    return g_steal_pointer(&c);
}

static void
put_json(gpointer obj)
{
    json_object_put(obj);
}

void
gw_qmp_conn_free(GwQmpConn *c)
{
    if (!c) {
        return;
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    g_queue_clear_full(&c->events, put_json);
    json_object_put(c->greeting);
    g_string_free(c->in, TRUE);
    g_free(c);
}

json_object *
gw_qmp_conn_greeting(GwQmpConn *c)
{
    return c->greeting;
}

bool
gw_qmp_conn_send_raw(GwQmpConn *c, const char *buf, size_t len, int fd,
                     GError **errp)
{
    char ctl[CMSG_SPACE(sizeof(int))] = {0};
    struct iovec iov = {(void *)buf, len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

    if (fd >= 0) {
        struct cmsghdr *cm;
        msg.msg_control = ctl;
        msg.msg_controllen = sizeof(ctl);
        cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    }
    while (iov.iov_len) {
        ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return gw_error_errno(errp, errno, "QMP: send");
        }
        iov.iov_base = (char *)iov.iov_base + n;
        iov.iov_len -= (size_t)n;
        msg.msg_control = NULL; /* the fd goes with the first byte */
        msg.msg_controllen = 0;
    }
    return true;
}

json_object *
gw_qmp_conn_read_reply(GwQmpConn *c, int timeout_ms, GError **errp)
{
    gint64 deadline = deadline_of(timeout_ms);

    for (;;) {
        json_object *msg = read_message(c, deadline, errp);
        if (!msg || !json_object_object_get_ex(msg, "event", NULL)) {
            return msg;
        }
        g_queue_push_tail(&c->events, msg);
    }
}

json_object *
gw_qmp_conn_execute(GwQmpConn *c, const char *cmd, json_object *args, int fd,
                    int timeout_ms, GError **errp)
{
    g_autoptr(json_object) req = json_object_new_object();
    g_autofree char *text = NULL;

    json_object_object_add(req, "execute", json_object_new_string(cmd));
    if (args) {
        json_object_object_add(req, "arguments", args);
    }
    /* One write: the server may act (quit) as soon as the object ends. */
    text =
        g_strconcat(json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN),
                    "\n", NULL);
    if (!gw_qmp_conn_send_raw(c, text, strlen(text), fd, errp)) {
        return NULL;
    }
    return gw_qmp_conn_read_reply(c, timeout_ms, errp);
}

bool
gw_qmp_conn_negotiate(GwQmpConn *c, int timeout_ms, GError **errp)
{
    g_autoptr(json_object) r =
        gw_qmp_conn_execute(c, "qmp_capabilities", NULL, -1, timeout_ms, errp);
    json_object *e;

    if (!r) {
        return false;
    }
    if (json_object_object_get_ex(r, "error", &e)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED, "qmp_capabilities: %s",
                    json_object_get_string(json_object_object_get(e, "desc")));
        return false;
    }
    return true;
}

static bool
is_event(json_object *msg, const char *name)
{
    json_object *ev;
    return json_object_object_get_ex(msg, "event", &ev) &&
           g_str_equal(json_object_get_string(ev), name);
}

json_object *
gw_qmp_conn_wait_event(GwQmpConn *c, const char *name, int timeout_ms,
                       GError **errp)
{
    gint64 deadline = deadline_of(timeout_ms);

    for (GList *l = c->events.head; l; l = l->next) {
        if (is_event(l->data, name)) {
            json_object *msg = l->data;
            g_queue_delete_link(&c->events, l);
            return msg;
        }
    }
    for (;;) {
        json_object *msg = read_message(c, deadline, errp);
        if (!msg || is_event(msg, name)) {
            return msg;
        }
        g_queue_push_tail(&c->events, msg); /* another event, or a reply */
    }
}

bool
gw_qmp_conn_wait_closed(GwQmpConn *c, int timeout_ms)
{
    gint64 deadline = deadline_of(timeout_ms);
    char buf[4096];

    for (;;) {
        struct pollfd p = {c->fd, POLLIN, 0};
        if (poll(&p, 1, left_ms(deadline)) <= 0) {
            return false;
        }
        ssize_t n = read(c->fd, buf, sizeof(buf));
        if (n == 0 || (n < 0 && errno != EINTR)) {
            return true;
        }
    }
}
