/*
 * The QMP server.  See include/godwit/qmp.h.  Main thread only.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <glib-unix.h>
#include <godwit/listener.h>
#include <godwit/log.h>
#include <godwit/util.h>
#include "qmp-priv.h"

#define READ_CHUNK 4096
#define MAX_FDS    16

typedef struct {
    GwQmpHandler fn;
    gpointer opaque;
} Handler;

struct GwQmpServer {
    GwListener *listener; /* NULL without a socket */
    GwQmpSchema *schema;
    GHashTable *handlers; /* name → Handler * */
    GList *clients;       /* GwQmpClient *, live */
    GList *graveyard;     /* closed, freed from `reaper` */
    guint reaper;
    GwFdSets *fdsets;
    GMainLoop *quit_loop;
};

static void client_write(GwQmpClient *c);
static gboolean on_readable(int fd, GIOCondition cond, gpointer data);

/* ---- client lifetime ---- */

static void
close_fds(GArray *fds)
{
    for (guint i = 0; i < fds->len; i++) {
        close(g_array_index(fds, int, i));
    }
    g_array_set_size(fds, 0);
}

static void
client_free(GwQmpClient *c)
{
    gw_json_stream_free(c->in);
    g_string_free(c->out, TRUE);
    close_fds(c->fds);
    g_array_unref(c->fds);
    g_hash_table_unref(c->named);
    g_free(c);
}

static gboolean
reap(gpointer data)
{
    GwQmpServer *s = data;

    g_list_free_full(g_steal_pointer(&s->graveyard),
                     (GDestroyNotify)client_free);
    s->reaper = 0;
    return G_SOURCE_REMOVE;
}

/* Closes now; frees later, as the client may be mid-dispatch. */
static void
client_close(GwQmpClient *c)
{
    GwQmpServer *s = c->server;

    if (c->dead) {
        return;
    }
    c->dead = true;
    g_clear_handle_id(&c->in_watch, g_source_remove);
    g_clear_handle_id(&c->out_watch, g_source_remove);
    close(c->fd);
    gw_listener_kick(s->listener); /* an fd is free again */
    s->clients = g_list_remove(s->clients, c);
    s->graveyard = g_list_prepend(s->graveyard, c);
    if (!s->reaper) {
        s->reaper = g_idle_add(reap, s);
    }
}

static void
close_named(gpointer p)
{
    close(GPOINTER_TO_INT(p));
}

static void greet(GwQmpClient *c);

/* One more client than GW_QMP_MAX_CLIENTS: told why, then closed. */
static void
refuse_client(GwQmpServer *s, int fd)
{
    static const char msg[] =
        "{\"error\":{\"class\":\"GenericError\",\"desc\":\"too many QMP "
        "clients (at most " G_STRINGIFY(GW_QMP_MAX_CLIENTS) ")\"}}\r\n";

    gw_message_ratelimited("QMP: a client refused: %u are connected",
                           GW_QMP_MAX_CLIENTS);
    if (send(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        g_debug("QMP: a refused client missed why: %s", g_strerror(errno));
    }
    close(fd);
    gw_listener_kick(s->listener);
}

void
gw_qmp_server_add_client(GwQmpServer *s, int fd)
{
    GwQmpClient *c;

    if (g_list_length(s->clients) >= GW_QMP_MAX_CLIENTS) {
        refuse_client(s, fd);
        return;
    }
    c = g_new0(GwQmpClient, 1);

    c->server = s;
    c->fd = fd;
    c->in = gw_json_stream_new();
    c->out = g_string_new(NULL);
    c->fds = g_array_new(FALSE, FALSE, sizeof(int));
    c->named =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, close_named);
    g_unix_set_fd_nonblocking(fd, TRUE, NULL);
    s->clients = g_list_append(s->clients, c);
    c->in_watch =
        g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_readable, c);
    greet(c);
}

/* ---- output ---- */

static gboolean
on_writable(int fd, GIOCondition cond, gpointer data)
{
    GwQmpClient *c = data;

    c->out_watch = 0;
    client_write(c);
    return G_SOURCE_REMOVE;
}

/* Reading resumes once the backlog is below the soft limit again. */
static void
update_input(GwQmpClient *c)
{
    if (c->dead) {
        return;
    }
    if (c->out->len > GW_QMP_OUT_SOFT && c->in_watch) {
        g_clear_handle_id(&c->in_watch, g_source_remove);
    } else if (c->out->len <= GW_QMP_OUT_SOFT / 2 && !c->in_watch) {
        c->in_watch =
            g_unix_fd_add(c->fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_readable, c);
    }
}

static void
client_write(GwQmpClient *c)
{
    while (!c->dead && c->out->len) {
        ssize_t n = write(c->fd, c->out->str, c->out->len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            if (!c->out_watch) {
                c->out_watch = g_unix_fd_add(c->fd, G_IO_OUT, on_writable, c);
            }
            break;
        }
        if (n < 0) {
            client_close(c); /* EPIPE and friends: the client went away */
            return;
        }
        g_string_erase(c->out, 0, n);
    }
    update_input(c);
}

/*
 * json-c copies string bytes as they are, so a handler's text that is not
 * UTF-8 (a file name, a strerror in another locale) would make the
 * message invalid JSON.  Outside strings json-c writes only ASCII, so
 * replacing invalid sequences in the whole text touches strings only.
 */
static void
append_utf8(GString *out, const char *text)
{
    g_autofree char *valid = NULL;

    if (g_utf8_validate(text, -1, NULL)) {
        g_string_append(out, text);
        return;
    }
    g_debug("QMP: invalid UTF-8 in a reply replaced by U+FFFD");
    valid = g_utf8_make_valid(text, -1);
    g_string_append(out, valid);
}

static void
send_json(GwQmpClient *c, json_object *msg)
{
    if (c->dead) {
        return;
    }
    append_utf8(c->out, json_object_to_json_string_ext(
                            msg, JSON_C_TO_STRING_PLAIN |
                                     JSON_C_TO_STRING_NOSLASHESCAPE));
    g_string_append(c->out, "\r\n");
    if (c->out->len > GW_QMP_OUT_HARD) {
        g_warning("QMP client does not read its replies: disconnected");
        client_close(c);
        return;
    }
    client_write(c);
}

/* {"qemu": {major, minor, micro}, "package"}: greeting and query-version. */
static json_object *
version_info(void)
{
    json_object *v = json_object_new_object();
    json_object *qemu = json_object_new_object();

    json_object_object_add(qemu, "micro",
                           json_object_new_int(GW_QMP_VERSION_MICRO));
    json_object_object_add(qemu, "minor",
                           json_object_new_int(GW_QMP_VERSION_MINOR));
    json_object_object_add(qemu, "major",
                           json_object_new_int(GW_QMP_VERSION_MAJOR));
    json_object_object_add(v, "qemu", qemu);
    json_object_object_add(v, "package",
                           json_object_new_string("godwit-" GODWIT_VERSION));
    return v;
}

static void
greet(GwQmpClient *c)
{
    g_autoptr(json_object) msg = json_object_new_object();
    json_object *qmp = json_object_new_object();

    json_object_object_add(qmp, "version", version_info());
    json_object_object_add(qmp, "capabilities", json_object_new_array());
    json_object_object_add(msg, "QMP", qmp);
    send_json(c, msg);
}

/* ---- requests ---- */

static const char *
error_class(const GError *err)
{
    if (err->domain == GW_ERROR && err->code == GW_ERROR_NOT_FOUND) {
        return "DeviceNotFound";
    }
    if (err->domain == GW_ERROR && err->code == GW_ERROR_NO_KVM) {
        return "KVMMissingCap";
    }
    return "GenericError";
}

/* The request's id, echoed verbatim when present (null included). */
typedef struct {
    bool present;
    json_object *value;
} ReqId;

static const ReqId NO_ID = {false, NULL};

static void
reply_error(GwQmpClient *c, ReqId id, const char *cls, const char *desc)
{
    g_autoptr(json_object) msg = json_object_new_object();
    json_object *e = json_object_new_object();

    json_object_object_add(e, "class", json_object_new_string(cls));
    json_object_object_add(e, "desc", json_object_new_string(desc));
    json_object_object_add(msg, "error", e);
    if (id.present) {
        json_object_object_add(msg, "id", json_object_get(id.value));
    }
    send_json(c, msg);
}

static void
reply_return(GwQmpClient *c, ReqId id, json_object *ret)
{
    g_autoptr(json_object) msg = json_object_new_object();

    json_object_object_add(msg, "return", ret);
    if (id.present) {
        json_object_object_add(msg, "id", json_object_get(id.value));
    }
    send_json(c, msg);
}

static const char *
envelope_error(json_object *exec, json_object *args)
{
    if (!exec) {
        return "QMP input lacks member 'execute'";
    }
    if (!json_object_is_type(exec, json_type_string)) {
        return "QMP input member 'execute' must be a string";
    }
    if (args && !json_object_is_type(args, json_type_object)) {
        return "QMP input member 'arguments' must be an object";
    }
    return NULL;
}

/*
 * The envelope, as QEMU checks it: the command name (borrowed from
 * `req`) and *args (NULL when absent), or NULL with *errp set.
 */
static const char *
parse_envelope(json_object *req, json_object **args, GError **errp)
{
    json_object *exec = NULL;
    const char *desc;

    *args = NULL;
    if (!json_object_is_type(req, json_type_object)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "QMP input must be a JSON object");
        return NULL;
    }
    json_object_object_foreach(req, key, val)
    {
        (void)val;
        if (strcmp(key, "execute") && strcmp(key, "arguments") &&
            strcmp(key, "id")) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "QMP input member '%s' is unexpected", key);
            return NULL;
        }
    }
    json_object_object_get_ex(req, "execute", &exec);
    json_object_object_get_ex(req, "arguments", args);
    if ((desc = envelope_error(exec, *args))) {
        g_set_error_literal(errp, GW_ERROR, GW_ERROR_INVALID, desc);
        return NULL;
    }
    return json_object_get_string(exec);
}

/*
 * NULL if `cmd` may run now, else the CommandNotFound text.  As in QEMU,
 * other commands are refused before their arguments are looked at, and
 * a second qmp_capabilities only after its arguments were checked.
 */
static const char *
negotiation_error(GwQmpClient *c, const char *cmd, bool args_checked)
{
    bool caps = g_str_equal(cmd, "qmp_capabilities");

    if (!args_checked && !c->negotiated && !caps) {
        return "Expecting capabilities negotiation with 'qmp_capabilities'";
    }
    if (args_checked && c->negotiated && caps) {
        return "Capabilities negotiation is already complete, command ignored";
    }
    return NULL;
}

static void
dispatch(GwQmpClient *c, json_object *req)
{
    GwQmpServer *s = c->server;
    ReqId id = NO_ID;
    json_object *args = NULL;
    const char *desc = NULL;
    g_autoptr(GError) err = NULL;
    const char *cmd = parse_envelope(req, &args, &err);
    g_autoptr(json_object) empty = NULL;
    g_autofree char *missing = NULL;
    Handler *h;
    json_object *ret;

    if (json_object_is_type(req, json_type_object)) {
        id.present = json_object_object_get_ex(req, "id", &id.value);
    }
    if (!cmd) {
        reply_error(c, id, "GenericError", err->message);
        return;
    }
    if ((desc = negotiation_error(c, cmd, false))) {
        reply_error(c, id, "CommandNotFound", desc);
        return;
    }
    h = g_hash_table_lookup(s->handlers, cmd);
    if (!h) {
        missing = g_strdup_printf("The command %s has not been found", cmd);
        reply_error(c, id, "CommandNotFound", missing);
        return;
    }
    if (!args) {
        args = empty = json_object_new_object();
    }
    if (!gw_qmp_schema_check_args(s->schema, cmd, args, &err)) {
        reply_error(c, id, "GenericError", err->message);
        return;
    }
    if ((desc = negotiation_error(c, cmd, true))) {
        reply_error(c, id, "CommandNotFound", desc);
        return;
    }
    ret = h->fn(c, args, h->opaque, &err);
    if (!ret) {
        g_assert(err);
        reply_error(c, id, error_class(err), err->message);
        return;
    }
    reply_return(c, id, ret);
}

/* One complete JSON value from the stream. */
static void
handle(GwQmpClient *c, json_object *req)
{
    dispatch(c, req);
    /* fds that came with this request and were not claimed are closed. */
    if (!c->dead) {
        close_fds(c->fds);
    }
}

/* A text that is not JSON; past GW_QMP_MAX_REQUEST, the connection ends. */
static void
parse_error(GwQmpClient *c, const GError *err)
{
    reply_error(c, NO_ID, "GenericError", err->message);
    if (g_error_matches(err, GW_ERROR, GW_ERROR_FAILED)) {
        client_write(c);
        client_close(c);
    }
}

/* Dispatches, in order, every complete request the bytes finish. */
static void
feed(GwQmpClient *c, const char *buf, size_t len)
{
    gw_json_stream_feed(c->in, buf, len);
    while (!c->dead) {
        g_autoptr(json_object) req = NULL;
        g_autoptr(GError) err = NULL;

        if (gw_json_stream_next(c->in, &req, &err)) {
            handle(c, req);
        } else if (err) {
            parse_error(c, err);
        } else {
            break;
        }
    }
}

static void
receive_fds(GwQmpClient *c, struct msghdr *msg)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm;
         cm = CMSG_NXTHDR(msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            g_array_append_val(c->fds, fd);
        }
    }
}

static gboolean
on_readable(int fd, GIOCondition cond, gpointer data)
{
    GwQmpClient *c = data;
    char buf[READ_CHUNK];
    char ctl[CMSG_SPACE(MAX_FDS * sizeof(int))];
    struct iovec iov = {buf, sizeof(buf)};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = ctl,
                         .msg_controllen = sizeof(ctl)};
    ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);

    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0) {
        c->in_watch = 0; /* removed by returning REMOVE */
        client_close(c);
        return G_SOURCE_REMOVE;
    }
    receive_fds(c, &msg);
    feed(c, buf, (size_t)n);
    if (c->dead || !c->in_watch) {
        return G_SOURCE_REMOVE; /* update_input may have paused us */
    }
    return G_SOURCE_CONTINUE;
}

/* ---- events ---- */

void
gw_qmp_server_emit(const char *name, json_object *data, gpointer server)
{
    GwQmpServer *s = server;
    g_autoptr(json_object) msg = json_object_new_object();
    json_object *ts = json_object_new_object();
    gint64 now = g_get_real_time();

    json_object_object_add(ts, "seconds",
                           json_object_new_int64(now / G_USEC_PER_SEC));
    json_object_object_add(ts, "microseconds",
                           json_object_new_int64(now % G_USEC_PER_SEC));
    json_object_object_add(msg, "timestamp", ts);
    json_object_object_add(msg, "event", json_object_new_string(name));
    if (data) {
        json_object_object_add(msg, "data", data);
    }
    for (GList *l = s->clients; l;) {
        GwQmpClient *c = l->data;
        l = l->next; /* send_json may close and unlink c */
        if (c->negotiated) {
            send_json(c, msg);
        }
    }
}

/* ---- the commands the protocol itself defines ---- */

static json_object *
qmp_capabilities(GwQmpSession *c, json_object *args, gpointer opaque,
                 GError **errp)
{
    json_object *enable;

    if (json_object_object_get_ex(args, "enable", &enable) &&
        json_object_array_length(enable) > 0) {
        g_set_error(
            errp, GW_ERROR, GW_ERROR_INVALID, "Capability '%s' not available",
            json_object_get_string(json_object_array_get_idx(enable, 0)));
        return NULL;
    }
    c->negotiated = true;
    return json_object_new_object();
}

static json_object *
query_version(GwQmpSession *c, json_object *args, gpointer opaque,
              GError **errp)
{
    return version_info();
}

static json_object *
query_commands(GwQmpSession *c, json_object *args, gpointer opaque,
               GError **errp)
{
    GHashTableIter it;
    gpointer name;
    json_object *list = json_object_new_array();

    g_hash_table_iter_init(&it, c->server->handlers);
    while (g_hash_table_iter_next(&it, &name, NULL)) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_array_add(list, o);
    }
    return list;
}

static json_object *
query_qmp_schema(GwQmpSession *c, json_object *args, gpointer opaque,
                 GError **errp)
{
    return gw_qmp_schema_introspect(c->server->schema, c->server->handlers);
}

/* ---- the server ---- */

static void
on_connect(gpointer data, int fd)
{
    gw_qmp_server_add_client(data, fd);
}

bool
gw_qmp_server_listen_fd(GwQmpServer *s, int fd, GError **errp)
{
    g_assert(!s->listener);
    s->listener = gw_listener_new_fd("-chardev", fd, on_connect, s, errp);
    return s->listener != NULL;
}

static bool
listen_on(GwQmpServer *s, const char *path, GError **errp)
{
    s->listener = gw_listener_new("--qmp", path, 16, on_connect, s, errp);
    return s->listener != NULL;
}

GwQmpServer *
gw_qmp_server_new(const char *path, GError **errp)
{
    g_autoptr(GwQmpServer) s = g_new0(GwQmpServer, 1);

    s->schema = gw_qmp_schema_load();
    s->handlers =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    s->fdsets = gw_fdsets_new();
    gw_qmp_server_register(s, "qmp_capabilities", qmp_capabilities, NULL);
    gw_qmp_server_register(s, "query-version", query_version, NULL);
    gw_qmp_server_register(s, "query-commands", query_commands, NULL);
    gw_qmp_server_register(s, "query-qmp-schema", query_qmp_schema, NULL);
    gw_qmp_fds_register(s);
    if (path && !listen_on(s, path, errp)) {
        return NULL;
    }
    return g_steal_pointer(&s);
}

/* Gives each client a short chance to read its last replies. */
static void
flush_all(GwQmpServer *s)
{
    for (GList *l = s->clients; l; l = l->next) {
        GwQmpClient *c = l->data;
        g_unix_set_fd_nonblocking(c->fd, FALSE, NULL);
        struct timeval tv = {0, 200 * 1000};
        setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (c->out->len &&
            write(c->fd, c->out->str, c->out->len) < (ssize_t)c->out->len) {
            g_debug("QMP: a client missed its last replies");
        }
    }
}

void
gw_qmp_server_free(GwQmpServer *s)
{
    if (!s) {
        return;
    }
    flush_all(s);
    while (s->clients) {
        client_close(s->clients->data);
    }
    g_clear_handle_id(&s->reaper, g_source_remove);
    reap(s);
    g_clear_pointer(&s->listener, gw_listener_free);
    gw_fdsets_free(s->fdsets);
    g_hash_table_unref(s->handlers);
    gw_qmp_schema_free(s->schema);
    g_free(s);
}

void
gw_qmp_server_register(GwQmpServer *s, const char *name, GwQmpHandler fn,
                       gpointer opaque)
{
    Handler *h = g_new(Handler, 1);

    g_assert(gw_qmp_schema_has_command(s->schema, name));
    h->fn = fn;
    h->opaque = opaque;
    g_hash_table_replace(s->handlers, g_strdup(name), h);
}

GwFdSets *
gw_qmp_server_fdsets(GwQmpServer *s)
{
    return s->fdsets;
}

unsigned
gw_qmp_server_held_fds(GwQmpServer *s)
{
    unsigned n = gw_fdsets_count(s->fdsets);

    for (GList *l = s->clients; l; l = l->next) {
        n += g_hash_table_size(((GwQmpClient *)l->data)->named);
    }
    return n;
}

int
gw_qmp_session_take_fd(GwQmpSession *c)
{
    int fd;

    if (!c->fds->len) {
        return -1;
    }
    fd = g_array_index(c->fds, int, 0);
    g_array_remove_index(c->fds, 0);
    return fd;
}

int
gw_qmp_session_named_fd(GwQmpSession *c, const char *name)
{
    gpointer fd;
    return g_hash_table_lookup_extended(c->named, name, NULL, &fd)
               ? GPOINTER_TO_INT(fd)
               : -1;
}

int
gw_qmp_open_path(GwQmpServer *s, const char *path, int flags, GError **errp)
{
    const char *prefix = "/dev/fdset/";
    guint64 id;
    int fd;

    if (g_str_has_prefix(path, prefix)) {
        if (!g_ascii_string_to_unsigned(path + strlen(prefix), 10, 0, G_MAXINT,
                                        &id, NULL)) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "'%s' is not a valid fdset path", path);
            return -1;
        }
        return gw_fdsets_open(s->fdsets, (unsigned long)id, flags, errp);
    }
    fd = open(path, flags | O_CLOEXEC);
    if (fd < 0) {
        gw_error_errno(errp, errno, "Could not open '%s'", path);
    }
    return fd;
}
