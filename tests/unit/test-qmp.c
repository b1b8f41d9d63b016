/*
 * The QMP server in-process: one end of a socketpair is a client, the
 * other is handed to the server; the test iterates the main context
 * until the reply arrives.  Framing, negotiation, validation (table
 * driven over good and bad messages) and fd sets.
 */
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <glib-unix.h>
#include <godwit/qmp-schema.h>
#include <godwit/qmp.h>
#include <godwit/util.h>

typedef struct {
    GwQmpServer *s;
    int fd;      /* the client's end */
    GString *in; /* bytes received, not yet consumed */
} Fx;

static void fx_init(Fx *f, bool negotiate);

/* Next CRLF-terminated message, iterating the server meanwhile. */
static char *
next_line(Fx *f)
{
    gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

    for (;;) {
        char *crlf = strstr(f->in->str, "\r\n");
        if (crlf) {
            char *line = g_strndup(f->in->str, crlf - f->in->str);
            g_string_erase(f->in, 0, crlf - f->in->str + 2);
            return line;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        while (g_main_context_iteration(NULL, FALSE)) {
        }
        struct pollfd p = {f->fd, POLLIN, 0};
        if (poll(&p, 1, 10) == 1) {
            char buf[65536];
            ssize_t n = read(f->fd, buf, sizeof(buf));
            g_assert_cmpint(n, >, 0);
            g_string_append_len(f->in, buf, n);
        }
    }
}

static void
send_str(Fx *f, const char *s)
{
    g_assert_cmpint(write(f->fd, s, strlen(s)), ==, (ssize_t)strlen(s));
}

static json_object *
roundtrip(Fx *f, const char *req)
{
    g_autofree char *line = NULL;

    send_str(f, req);
    line = next_line(f);
    return json_tokener_parse(line);
}

static void
fx_init(Fx *f, bool negotiate)
{
    int sv[2];
    g_autofree char *greeting = NULL;

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==,
                    0);
    f->s = gw_qmp_server_new(NULL, NULL);
    f->fd = sv[0];
    f->in = g_string_new(NULL);
    gw_qmp_server_add_client(f->s, sv[1]);
    greeting = next_line(f);
    g_assert_true(g_str_has_prefix(greeting, "{\"QMP\":"));
    if (negotiate) {
        g_autoptr(json_object) r =
            roundtrip(f, "{\"execute\":\"qmp_capabilities\"}");
        g_assert_nonnull(json_object_object_get(r, "return"));
    }
}

static void
fx_free(Fx *f)
{
    close(f->fd);
    gw_qmp_server_free(f->s);
    g_string_free(f->in, TRUE);
    while (g_main_context_iteration(NULL, FALSE)) {
    }
}

/* ---- framing ---- */

static void
test_greeting_and_crlf(void)
{
    Fx f;
    g_autofree char *line = NULL;
    g_autoptr(json_object) g = NULL;
    json_object *qmp, *caps;
    int sv[2];

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    f.s = gw_qmp_server_new(NULL, NULL);
    f.fd = sv[0];
    f.in = g_string_new(NULL);
    gw_qmp_server_add_client(f.s, sv[1]);
    line = next_line(&f); /* next_line only splits on CRLF */
    g = json_tokener_parse(line);
    g_assert_true(json_object_object_get_ex(g, "QMP", &qmp));
    g_assert_true(json_object_object_get_ex(qmp, "capabilities", &caps));
    g_assert_cmpuint(json_object_array_length(caps), ==, 0); /* no oob */
    g_assert_nonnull(json_object_object_get(
        json_object_object_get(json_object_object_get(qmp, "version"), "qemu"),
        "major"));
    fx_free(&f);
}

static void
test_several_requests_in_one_write(void)
{
    Fx f;
    g_autofree char *a = NULL, *b = NULL, *c = NULL;

    fx_init(&f, true);
    send_str(&f, "{\"execute\":\"query-commands\",\"id\":1}"
                 "{\"execute\":\"nope\",\"id\":2}  \n\t"
                 "{\"execute\":\"query-fdsets\",\"id\":3}");
    a = next_line(&f);
    b = next_line(&f);
    c = next_line(&f);
    /* Replies in request order. */
    g_assert_nonnull(strstr(a, "\"id\":1"));
    g_assert_nonnull(strstr(b, "\"id\":2"));
    g_assert_nonnull(strstr(c, "\"return\":[]"));
    fx_free(&f);
}

static void
test_request_split_across_writes(void)
{
    Fx f;
    g_autoptr(json_object) r = NULL;

    fx_init(&f, true);
    send_str(&f, "{\"exec");
    while (g_main_context_iteration(NULL, FALSE)) {
    }
    send_str(&f, "ute\":\"query-f");
    while (g_main_context_iteration(NULL, FALSE)) {
    }
    r = roundtrip(&f, "dsets\"}");
    g_assert_nonnull(json_object_object_get(r, "return"));
    fx_free(&f);
}

/* ---- negotiation and validation, table driven ---- */

typedef struct {
    const char *name;
    bool negotiated;
    const char *req;
    const char *cls;  /* NULL: success expected */
    const char *desc; /* exact */
} Case;

static const Case cases[] = {
    {"before-negotiation", false, "{\"execute\":\"query-fdsets\"}",
     "CommandNotFound",
     "Expecting capabilities negotiation with 'qmp_capabilities'"},
    {"negotiate", false, "{\"execute\":\"qmp_capabilities\"}", NULL, NULL},
    {"negotiate-with-oob", false,
     "{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[\"oob\"]}}",
     "GenericError", "Capability 'oob' not available"},
    {"negotiate-unknown-capability", false,
     "{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[\"x\"]}}",
     "GenericError", "Parameter 'null' does not accept value 'x'"},
    {"negotiate-twice", true, "{\"execute\":\"qmp_capabilities\"}",
     "CommandNotFound",
     "Capabilities negotiation is already complete, command ignored"},
    {"unknown-command", true, "{\"execute\":\"frob\"}", "CommandNotFound",
     "The command frob has not been found"},
    {"not-an-object", true, "[\"execute\"]", "GenericError",
     "QMP input must be a JSON object"},
    {"a-number", true, "42\n", "GenericError",
     "QMP input must be a JSON object"},
    {"lacks-execute", true, "{\"id\":1}", "GenericError",
     "QMP input lacks member 'execute'"},
    {"execute-not-string", true, "{\"execute\":[]}", "GenericError",
     "QMP input member 'execute' must be a string"},
    {"unexpected-member", true, "{\"execute\":\"query-fdsets\",\"x\":1}",
     "GenericError", "QMP input member 'x' is unexpected"},
    {"arguments-not-object", true,
     "{\"execute\":\"query-fdsets\",\"arguments\":1}", "GenericError",
     "QMP input member 'arguments' must be an object"},
    {"missing-argument", true, "{\"execute\":\"closefd\"}", "GenericError",
     "Parameter 'fdname' is missing"},
    {"unknown-argument", true,
     "{\"execute\":\"query-fdsets\",\"arguments\":{\"a\":1}}", "GenericError",
     "Parameter 'a' is unexpected"},
    {"string-expected", true,
     "{\"execute\":\"closefd\",\"arguments\":{\"fdname\":true}}",
     "GenericError", "Invalid parameter type for 'fdname', expected: string"},
    {"integer-expected", true,
     "{\"execute\":\"remove-fd\",\"arguments\":{\"fdset-id\":\"0\"}}",
     "GenericError",
     "Invalid parameter type for 'fdset-id', expected: integer"},
    {"integer-not-float", true,
     "{\"execute\":\"remove-fd\",\"arguments\":{\"fdset-id\":0.5}}",
     "GenericError",
     "Invalid parameter type for 'fdset-id', expected: integer"},
    {"empty-arguments-ok", true,
     "{\"execute\":\"query-fdsets\",\"arguments\":{}}", NULL, NULL},
    {"single-quotes-ok", true, "{'execute':'query-fdsets'}", NULL, NULL},
    {"closefd-unknown", true,
     "{\"execute\":\"closefd\",\"arguments\":{\"fdname\":\"x\"}}",
     "GenericError", "File descriptor named 'x' not found"},
    {"remove-fd-unknown-set", true,
     "{\"execute\":\"remove-fd\",\"arguments\":{\"fdset-id\":3}}",
     "GenericError", "File descriptor named 'fdset-id:3' not found"},
    {"add-fd-without-fd", true, "{\"execute\":\"add-fd\"}", "GenericError",
     "No file descriptor supplied via SCM_RIGHTS"},
};

static void
test_case(gconstpointer data)
{
    const Case *c = data;
    Fx f;
    g_autoptr(json_object) r = NULL;
    json_object *e;

    fx_init(&f, c->negotiated);
    r = roundtrip(&f, c->req);
    g_assert_nonnull(r);
    if (!c->cls) {
        g_assert_nonnull(json_object_object_get(r, "return"));
    } else {
        g_assert_true(json_object_object_get_ex(r, "error", &e));
        g_assert_cmpstr(
            json_object_get_string(json_object_object_get(e, "class")), ==,
            c->cls);
        g_assert_cmpstr(
            json_object_get_string(json_object_object_get(e, "desc")), ==,
            c->desc);
    }
    fx_free(&f);
}

static void
test_parse_error_then_usable(void)
{
    Fx f;
    g_autoptr(json_object) e = NULL, r = NULL;

    fx_init(&f, true);
    e = roundtrip(&f, "{\"execute\": ]\n");
    g_assert_true(
        g_str_has_prefix(json_object_get_string(json_object_object_get(
                             json_object_object_get(e, "error"), "desc")),
                         "JSON parse error, "));
    r = roundtrip(&f, "{\"execute\":\"query-fdsets\"}");
    g_assert_nonnull(json_object_object_get(r, "return"));
    fx_free(&f);
}

/* ---- framing: strict JSON, and resynchronising as QEMU does ---- */

#define OK_X "{\"execute\":\"query-fdsets\",\"id\":\"x\"}"

/*
 * The next replies, in order: "=ID" is a return echoing id ID (as JSON),
 * anything else the start of an error's desc.  Every reply must be UTF-8.
 */
static json_object *
parse_deep(const char *line)
{
    json_tokener *tok = json_tokener_new_ex(2048); /* echoed deep ids */
    json_object *v = json_tokener_parse_ex(tok, line, (int)strlen(line));

    json_tokener_free(tok);
    return v;
}

static void
expect_replies(Fx *f, const char *const *want)
{
    for (; *want; want++) {
        g_autofree char *line = next_line(f);
        g_autoptr(json_object) r = parse_deep(line);
        json_object *e = json_object_object_get(r, "error");
        const char *desc =
            json_object_get_string(json_object_object_get(e, "desc"));

        g_test_message("want %s, got %s", *want, line);
        g_assert_true(g_utf8_validate(line, -1, NULL));
        if (**want == '=') {
            g_assert_nonnull(json_object_object_get(r, "return"));
            g_assert_cmpstr(
                json_object_to_json_string_ext(json_object_object_get(r, "id"),
                                               JSON_C_TO_STRING_PLAIN),
                ==, *want + 1);
        } else {
            g_assert_nonnull(desc);
            g_assert_true(g_str_has_prefix(desc, *want));
        }
    }
}

typedef struct {
    const char *name;
    const char *send;
    const char *want[5];
} StreamCase;

#define PARSE "JSON parse error, "

/*
 * Each gets as many replies, in the same order, as from QEMU 7.2 (the
 * words after "JSON parse error," are ours), except
 * nul-cannot-cut-a-key-short: QEMU takes a NUL character.
 */
static const StreamCase stream_cases[] = {
    {"resync-after-malformed-same-line", "{]" OK_X "\n", {PARSE, "=\"x\""}},
    {"resync-after-stray-closer", "}" OK_X, {PARSE, "=\"x\""}},
    {"object-closed-by-bracket", "{\"a\":1]}" OK_X, {PARSE, PARSE, "=\"x\""}},
    {"lexical-error-recovers-at-brace",
     "{\x01" OK_X,
     {PARSE "stray '\x01'", "=\"x\""}},
    {"whitespace-is-only-space-tab-cr-lf",
     "\f" OK_X,
     {PARSE "stray '\f'", "=\"x\""}},
    {"trailing-comma-refused",
     "{\"execute\": \"query-fdsets\", }\n" OK_X,
     {PARSE, "=\"x\""}},
    {"raw-newline-in-string-refused",
     "{\"execute\": \"query-fd\nsets\"}" OK_X,
     {PARSE "stray '\"query-fd\n'", PARSE, "=\"x\""}},
    {"raw-tab-in-string-refused",
     "{\"execute\": \"query-fd\tsets\"}" OK_X,
     {PARSE "stray", PARSE, "=\"x\""}},
    {"nan-refused",
     "{\"execute\":\"query-fdsets\",\"id\":NaN}" OK_X,
     {PARSE "stray 'N'", PARSE, "=\"x\""}},
    {"zero-then-exponent-is-two-tokens",
     "{\"execute\":\"query-fdsets\",\"id\":0e5}" OK_X,
     {PARSE, "=\"x\""}},
    {"number-needs-digits-after-point",
     "{\"execute\":\"query-fdsets\",\"id\":1.}" OK_X,
     {PARSE "stray '1.}'", "=\"x\""}},
    {"single-quoted-strings-as-qemu",
     "{'execute':'query-fdsets','id':'a\"b\\'c'}",
     {"=\"a\\\"b'c\""}},
    {"apostrophe-escape-in-double-quotes",
     "{\"execute\":\"query-fdsets\",\"id\":\"\\'\"}",
     {"=\"'\""}},
    {"invalid-escape-refused",
     "{\"execute\":\"query-fdsets\",\"id\":\"\\x\"}",
     {PARSE "invalid escape sequence in string"}},
    {"lone-surrogate-refused",
     "{\"execute\":\"query-fdsets\",\"id\":\"\\ud800\"}",
     {PARSE "\\ud800 is not a valid Unicode character"}},
    {"surrogate-pair-accepted",
     "{\"execute\":\"query-fdsets\",\"id\":\"\\ud83d\\ude00\"}",
     {"=\"\xf0\x9f\x98\x80\""}},
    {"nul-cannot-cut-a-key-short",
     "{\"execute\\u0000x\":\"query-fdsets\"}" OK_X,
     {PARSE "\\u0000 is not accepted", "=\"x\""}},
    {"duplicate-key-refused",
     "{\"execute\":\"query-fdsets\",\"execute\":\"frob\"}" OK_X,
     {PARSE "duplicate key", "=\"x\""}},
    {"utf8-refused-invalid-sequence",
     "{\"execute\":\"query-fdsets\",\"id\":\"\xc3\x28\"}" OK_X,
     {PARSE "invalid UTF-8 sequence in string", "=\"x\""}},
    {"utf8-refused-ff-fe",
     "{\"execute\":\"query-fdsets\",\"id\":\"\xff\xfe\"}" OK_X,
     {PARSE "invalid UTF-8 byte 0xFF", PARSE "invalid UTF-8 byte 0xFE", PARSE,
      "=\"x\""}},
    {"utf8-refused-overlong",
     "{\"execute\":\"query-fdsets\",\"id\":\"\xc0\xaf\"}" OK_X,
     {PARSE "invalid UTF-8 sequence in string", "=\"x\""}},
    {"utf8-refused-encoded-surrogate",
     "{\"execute\":\"query-fdsets\",\"id\":\"\xed\xa0\x80\"}" OK_X,
     {PARSE "invalid UTF-8 sequence in string", "=\"x\""}},
    {"utf8-non-ascii-outside-string",
     "{\xc3\xa9}" OK_X,
     {PARSE "stray byte 0xC3", PARSE, "=\"x\""}},
    {"utf8-accepted",
     "{\"execute\":\"query-fdsets\",\"id\":\"\xc3\xa9\"}",
     {"=\"\xc3\xa9\""}},
};

static void
test_stream_case(gconstpointer data)
{
    const StreamCase *c = data;
    Fx f;

    fx_init(&f, true);
    send_str(&f, c->send);
    expect_replies(&f, c->want);
    fx_free(&f);
}

/* The bad text and half the next request in one read, the rest later. */
static void
test_resync_split_read(void)
{
    static const char *const error[] = {PARSE, NULL};
    static const char *const reply[] = {"=\"x\"", NULL};
    Fx f;

    fx_init(&f, true);
    send_str(&f, "{]{\"execute\":\"query-");
    expect_replies(&f, error);
    send_str(&f, "fdsets\",\"id\":\"x\"}");
    expect_replies(&f, reply);
    fx_free(&f);
}

static char *
nested(int depth, const char *inner)
{
    g_autofree char *open = g_strnfill(depth, '[');
    g_autofree char *close = g_strnfill(depth, ']');

    return g_strconcat(open, inner, close, NULL);
}

/* QEMU's MAX_NESTING: 1024 levels parse (and fail as an envelope). */
static void
test_nesting_1024_accepted(void)
{
    static const char *const want[] = {"QMP input must be a JSON object", NULL};
    g_autofree char *deep = nested(1024, "");
    g_autofree char *id = nested(1023, "");
    g_autofree char *req =
        g_strdup_printf("{\"execute\":\"query-fdsets\",\"id\":%s}", id);
    const char *echoed[] = {NULL, NULL};
    g_autofree char *eq = g_strconcat("=", id, NULL);
    Fx f;

    fx_init(&f, true);
    send_str(&f, deep);
    expect_replies(&f, want);
    echoed[0] = eq;
    send_str(&f, req);
    expect_replies(&f, echoed);
    fx_free(&f);
}

/* 1025: the error at the 1025th '[', then the next request is read. */
static void
test_nesting_1025_refused(void)
{
    static const char *const want[] = {"JSON nesting depth limit exceeded",
                                       "=\"x\"", NULL};
    g_autofree char *open = g_strnfill(1025, '[');
    Fx f;

    fx_init(&f, true);
    send_str(&f, open);
    send_str(&f, OK_X);
    expect_replies(&f, want);
    fx_free(&f);
}

static json_object *
not_utf8(GwQmpSession *c, json_object *args, gpointer opaque, GError **errp)
{
    json_object *ret = json_object_new_object();

    json_object_object_add(ret, "name", json_object_new_string("vm\xff\xfe"));
    return ret;
}

/* A handler's or an event's bytes that are not UTF-8 never reach the wire. */
static void
test_output_always_utf8(void)
{
    Fx f;
    g_autofree char *reply = NULL, *event = NULL;
    json_object *data = json_object_new_object();

    fx_init(&f, true);
    gw_qmp_server_register(f.s, "query-name", not_utf8, NULL);
    send_str(&f, "{\"execute\":\"query-name\"}");
    reply = next_line(&f);
    g_assert_true(g_utf8_validate(reply, -1, NULL));
    g_assert_nonnull(strstr(reply, "\"vm\xef\xbf\xbd"));
    json_object_object_add(data, "device", json_object_new_string("d\x80"));
    gw_qmp_server_emit("DEVICE_DELETED", data, f.s);
    event = next_line(&f);
    g_assert_true(g_utf8_validate(event, -1, NULL));
    g_assert_nonnull(strstr(event, "\"d\xef\xbf\xbd\""));
    fx_free(&f);
}

/* ---- fd sets ---- */

static void
send_with_fd(Fx *f, const char *text, int fd)
{
    char ctl[CMSG_SPACE(sizeof(int))] = {0};
    struct iovec iov = {(void *)text, strlen(text)};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = ctl,
                         .msg_controllen = sizeof(ctl)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    g_assert_cmpint(sendmsg(f->fd, &msg, 0), ==, (ssize_t)strlen(text));
}

static json_object *
add_fd(Fx *f, const char *args, int fd)
{
    g_autofree char *req =
        g_strdup_printf("{\"execute\":\"add-fd\",\"arguments\":%s}", args);
    g_autofree char *line = NULL;

    send_with_fd(f, req, fd);
    close(fd); /* the server has its own copy now */
    line = next_line(f);
    return json_tokener_parse(line);
}

static int
mode_of(int fd)
{
    return fcntl(fd, F_GETFL) & O_ACCMODE;
}

static unsigned
open_fds(void)
{
    g_autoptr(GDir) d = g_dir_open("/proc/self/fd", 0, NULL);
    unsigned n = 0;

    g_assert_nonnull(d);
    while (g_dir_read_name(d)) {
        n++;
    }
    return n;
}

/* The error text of a reply (the whole reply if it is not an error). */
static const char *
error_desc(json_object *r)
{
    json_object *e = json_object_object_get(r, "error");

    return e ? json_object_get_string(json_object_object_get(e, "desc"))
             : json_object_to_json_string(r);
}

static json_object *
getfd(Fx *f, const char *name)
{
    g_autofree char *req = g_strdup_printf(
        "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"%s\"}}", name);
    g_autofree char *line = NULL;
    int fd = open("/dev/null", O_RDONLY);

    send_with_fd(f, req, fd);
    close(fd);
    line = next_line(f);
    return json_tokener_parse(line);
}

/* GW_QMP_MAX_SET_FDS in one set, GW_QMP_MAX_FDS in all; the refused fd
 * is closed and the client goes on. */
static void
test_fd_limits(void)
{
    Fx f;
    unsigned before;

    fx_init(&f, true);
    for (unsigned i = 0; i < GW_QMP_MAX_FDS; i++) {
        g_autofree char *args =
            g_strdup_printf("{\"fdset-id\":%u}", i / GW_QMP_MAX_SET_FDS);
        g_autoptr(json_object) r =
            add_fd(&f, args, open("/dev/null", O_RDONLY));
        g_assert_nonnull(json_object_object_get(r, "return"));
    }
    before = open_fds();
    g_autoptr(json_object) full =
        add_fd(&f, "{\"fdset-id\":0}", open("/dev/null", O_RDONLY));
    g_assert_cmpstr(error_desc(full), ==, "fdset 0 is full (at most 64 fds)");
    g_autoptr(json_object) all = getfd(&f, "x");
    g_assert_cmpstr(error_desc(all), ==,
                    "too many fds passed to QMP (at most 256 at once): close "
                    "or remove some first");
    g_assert_cmpuint(open_fds(), ==, before);
    g_autoptr(json_object) rm = roundtrip(
        &f, "{\"execute\":\"remove-fd\",\"arguments\":{\"fdset-id\":1}}");
    g_assert_nonnull(json_object_object_get(rm, "return"));
    g_autoptr(json_object) ok = getfd(&f, "x");
    g_assert_nonnull(json_object_object_get(ok, "return"));
    fx_free(&f);
}

/* An fd sent with a request that does not take it is closed after it. */
static void
test_unclaimed_fd_closed(void)
{
    Fx f;
    unsigned before;
    g_autofree char *line = NULL;
    int fd;

    fx_init(&f, true);
    before = open_fds();
    fd = open("/dev/null", O_RDONLY);
    send_with_fd(&f, "{\"execute\":\"query-version\"}", fd);
    close(fd);
    line = next_line(&f);
    g_assert_true(g_str_has_prefix(line, "{\"return\""));
    g_assert_cmpuint(open_fds(), ==, before);
    fx_free(&f);
}

/* One client more than GW_QMP_MAX_CLIENTS is told why and closed; the
 * others are served, and a free place is taken again. */
static void
test_client_limit(void)
{
    Fx f;
    int extra[GW_QMP_MAX_CLIENTS], sv[2];
    g_autoptr(GString) in = g_string_new(NULL);
    char buf[512];
    ssize_t n;

    fx_init(&f, true);
    for (unsigned i = 0; i < GW_QMP_MAX_CLIENTS; i++) {
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                        ==, 0);
        gw_qmp_server_add_client(f.s, sv[1]);
        extra[i] = sv[0];
    }
    /* extra[GW_QMP_MAX_CLIENTS - 1] was one too many */
    while ((n = read(extra[GW_QMP_MAX_CLIENTS - 1], buf, sizeof(buf))) > 0) {
        g_string_append_len(in, buf, n);
    }
    g_assert_cmpint(n, ==, 0);
    g_assert_cmpstr(in->str, ==,
                    "{\"error\":{\"class\":\"GenericError\",\"desc\":\"too "
                    "many QMP clients (at most 64)\"}}\r\n");
    g_autoptr(json_object) r = roundtrip(&f, "{\"execute\":\"query-version\"}");
    g_assert_nonnull(json_object_object_get(r, "return"));
    close(extra[0]);
    while (g_main_context_iteration(NULL, FALSE)) {
    }
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==,
                    0);
    gw_qmp_server_add_client(f.s, sv[1]);
    n = read(sv[0], buf, sizeof(buf) - 1);
    g_assert_cmpint(n, >, 0);
    buf[n] = '\0';
    g_assert_true(g_str_has_prefix(buf, "{\"QMP\":"));
    close(sv[0]);
    for (unsigned i = 1; i < GW_QMP_MAX_CLIENTS; i++) {
        close(extra[i]);
    }
    fx_free(&f);
}

static void
test_fdsets(void)
{
    Fx f;
    g_autoptr(json_object) a = NULL, b = NULL, q = NULL, rm = NULL;
    g_autoptr(GError) err = NULL;
    g_autofree char *list = NULL;
    int fd;

    fx_init(&f, true);
    a = add_fd(&f, "{\"opaque\":\"ro\"}", open("/dev/null", O_RDONLY));
    g_assert_cmpint(json_object_get_int(json_object_object_get(
                        json_object_object_get(a, "return"), "fdset-id")),
                    ==, 0);
    b = add_fd(&f, "{\"fdset-id\":0,\"opaque\":\"rw\"}",
               open("/dev/null", O_RDWR));
    q = roundtrip(&f, "{\"execute\":\"query-fdsets\"}");
    list = g_strdup(json_object_to_json_string_ext(q, JSON_C_TO_STRING_PLAIN));
    g_assert_nonnull(strstr(list, "\"opaque\":\"ro\""));
    g_assert_nonnull(strstr(list, "\"opaque\":\"rw\""));
    /* /dev/fdset/0 gives a dup of the fd whose access mode matches. */
    fd = gw_qmp_open_path(f.s, "/dev/fdset/0", O_RDWR, &err);
    g_assert_no_error(err);
    g_assert_cmpint(mode_of(fd), ==, O_RDWR);
    g_assert_cmpint(fcntl(fd, F_GETFD) & FD_CLOEXEC, ==, FD_CLOEXEC);
    close(fd);
    fd = gw_qmp_open_path(f.s, "/dev/fdset/0", O_RDONLY, &err);
    g_assert_cmpint(mode_of(fd), ==, O_RDONLY);
    close(fd);
    g_assert_cmpint(gw_qmp_open_path(f.s, "/dev/fdset/0", O_WRONLY, &err), ==,
                    -1);
    g_assert_nonnull(strstr(err->message, "access mode"));
    g_clear_error(&err);
    g_assert_cmpint(gw_qmp_open_path(f.s, "/dev/fdset/9", O_RDWR, &err), ==,
                    -1);
    g_assert_error(err, GW_ERROR, GW_ERROR_NOT_FOUND);
    g_clear_error(&err);
    g_assert_cmpint(gw_qmp_open_path(f.s, "/dev/fdset/x", O_RDWR, &err), ==,
                    -1);
    g_clear_error(&err);
    fd = gw_qmp_open_path(f.s, "/dev/null", O_RDONLY, &err);
    g_assert_cmpint(fd, >=, 0);
    close(fd);
    /* Removing the last fd removes the set. */
    rm = roundtrip(&f, "{\"execute\":\"remove-fd\",\"arguments\":"
                       "{\"fdset-id\":0}}");
    g_assert_nonnull(json_object_object_get(rm, "return"));
    g_assert_cmpint(gw_qmp_open_path(f.s, "/dev/fdset/0", O_RDWR, &err), ==,
                    -1);
    fx_free(&f);
}

/* {"execute":"query-version","id":"aaa…"} of exactly `n` bytes. */
static char *
request_of_size(gsize n)
{
    const char *head = "{\"execute\":\"query-version\",\"id\":\"";
    char *req = g_malloc(n + 1);

    g_assert_cmpuint(n, >, strlen(head) + 2);
    memset(req, 'a', n);
    memcpy(req, head, strlen(head));
    memcpy(req + n - 2, "\"}", 3);
    return req;
}

/* Writes while the server reads; stops early if it stops reading. */
static void
send_big(Fx *f, const char *buf, gsize n)
{
    g_unix_set_fd_nonblocking(f->fd, TRUE, NULL);
    for (gsize off = 0; off < n;) {
        ssize_t w = write(f->fd, buf + off, n - off);
        if (w > 0) {
            off += (gsize)w;
        } else {
            g_assert_true(w < 0 && errno == EAGAIN);
            if (!g_main_context_iteration(NULL, FALSE)) {
                break; /* the server stopped reading: it closed us */
            }
        }
    }
    g_unix_set_fd_nonblocking(f->fd, FALSE, NULL);
}

/* GW_QMP_MAX_REQUEST bytes pass; one byte more ends the connection. */
static void
test_request_limit_is_exact(void)
{
    for (gsize extra = 0; extra <= 1; extra++) {
        Fx f;
        g_autofree char *req = request_of_size(GW_QMP_MAX_REQUEST + extra);
        g_autofree char *line = NULL;

        fx_init(&f, true);
        send_big(&f, req, GW_QMP_MAX_REQUEST + extra);
        line = next_line(&f);
        if (extra) {
            g_assert_nonnull(strstr(line, "request too large"));
        } else {
            g_assert_true(g_str_has_prefix(line, "{\"return\""));
        }
        fx_free(&f);
    }
}

static void
test_oversized_request_closes(void)
{
    Fx f;
    gsize n = GW_QMP_MAX_REQUEST + 4096;
    g_autofree char *big = g_malloc(n + 1);
    g_autofree char *line = NULL;
    gint64 deadline;
    char buf[256];

    memset(big, 'a', n);
    big[n] = '\0';
    memcpy(big, "{\"execute\":\"", 12);
    fx_init(&f, true);
    g_unix_set_fd_nonblocking(f.fd, TRUE, NULL);
    for (gsize off = 0; off < n;) {
        ssize_t w = write(f.fd, big + off, n - off);
        if (w > 0) {
            off += (gsize)w;
        } else {
            g_assert_true(w < 0 && errno == EAGAIN);
            if (!g_main_context_iteration(NULL, FALSE)) {
                break; /* the server stopped reading: it closed us */
            }
        }
    }
    g_unix_set_fd_nonblocking(f.fd, FALSE, NULL);
    line = next_line(&f);
    g_assert_nonnull(strstr(line, "request too large"));
    deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    while (read(f.fd, buf, sizeof(buf)) > 0) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
    }
    fx_free(&f);
}

/* ---- boxed unions and handler-checked arguments ---- */

static const struct {
    const char *cmd, *args, *err; /* err NULL: valid */
} schema_cases[] = {
    {"netdev_add",
     "{\"type\":\"vhost-vdpa\",\"id\":\"n0\","
     "\"vhostdev\":\"/dev/fdset/0\",\"queues\":2}",
     NULL},
    {"netdev_add", NULL, "Parameter 'type' is missing"},
    {"netdev_add", "{\"type\":\"tap\",\"id\":\"n0\"}",
     "Parameter 'type' does not accept value 'tap'"},
    {"netdev_add", "{\"type\":\"vhost-vdpa\"}", "Parameter 'id' is missing"},
    {"netdev_add", "{\"type\":\"vhost-vdpa\",\"id\":\"n\",\"queues\":\"2\"}",
     "Invalid parameter type for 'queues', expected: integer"},
    {"netdev_add", "{\"type\":\"vhost-vdpa\",\"id\":\"n\",\"ifname\":\"x\"}",
     "Parameter 'ifname' is unexpected"},
    {"device_add",
     "{\"driver\":\"virtio-net-pci\",\"netdev\":\"n0\","
     "\"mac\":\"52:54:00:00:00:01\",\"id\":\"net0\"}",
     NULL},
    {"device_add", "{\"id\":\"d\"}", "Parameter 'driver' is missing"},
    {"device_add", "{\"driver\":1}",
     "Invalid parameter type for 'driver', expected: string"},
    {"device_del", "{\"id\":\"d\",\"force\":true}",
     "Parameter 'force' is unexpected"},
};

static void
test_schema_unions_and_extra_args(void)
{
    g_autoptr(GwQmpSchema) s = gw_qmp_schema_load();

    for (size_t i = 0; i < G_N_ELEMENTS(schema_cases); i++) {
        g_autoptr(json_object) args =
            schema_cases[i].args ? json_tokener_parse(schema_cases[i].args)
                                 : NULL;
        g_autoptr(GError) err = NULL;
        bool ok = gw_qmp_schema_check_args(s, schema_cases[i].cmd, args, &err);

        g_test_message("%s %s", schema_cases[i].cmd, schema_cases[i].args);
        if (!schema_cases[i].err) {
            g_assert_no_error(err);
            g_assert_true(ok);
        } else {
            g_assert_false(ok);
            g_assert_cmpstr(err->message, ==, schema_cases[i].err);
        }
    }
}

/* What libvirt looks for: netdev_add/arg-type/+vhost-vdpa and
 * device_add/$json-cli-hotplug. */
static void
test_schema_introspects_what_libvirt_probes(void)
{
    g_autoptr(GwQmpSchema) s = gw_qmp_schema_load();
    g_autoptr(GHashTable) reg = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(json_object) info = NULL;
    const char *netdev_arg = NULL;
    json_object *device_add = NULL, *arg = NULL;

    g_hash_table_add(reg, "netdev_add");
    g_hash_table_add(reg, "device_add");
    info = gw_qmp_schema_introspect(s, reg);
    for (size_t i = 0; i < json_object_array_length(info); i++) {
        json_object *e = json_object_array_get_idx(info, i);
        const char *name =
            json_object_get_string(json_object_object_get(e, "name"));
        if (g_str_equal(name, "netdev_add")) {
            netdev_arg =
                json_object_get_string(json_object_object_get(e, "arg-type"));
        } else if (g_str_equal(name, "device_add")) {
            device_add = e;
        }
    }
    g_assert_nonnull(netdev_arg);
    for (size_t i = 0; i < json_object_array_length(info); i++) {
        json_object *e = json_object_array_get_idx(info, i);
        if (g_str_equal(
                json_object_get_string(json_object_object_get(e, "name")),
                netdev_arg)) {
            arg = e;
        }
    }
    g_assert_nonnull(arg);
    g_assert_cmpstr(json_object_get_string(json_object_object_get(arg, "tag")),
                    ==, "type");
    g_assert_cmpstr(json_object_get_string(json_object_object_get(
                        json_object_array_get_idx(
                            json_object_object_get(arg, "variants"), 0),
                        "case")),
                    ==, "vhost-vdpa");
    g_assert_nonnull(device_add);
    g_assert_nonnull(strstr(json_object_to_json_string(
                                json_object_object_get(device_add, "features")),
                            "\"json-cli-hotplug\""));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qmp/framing/greeting-crlf-no-oob",
                    test_greeting_and_crlf);
    g_test_add_func("/qmp/framing/several-requests-in-one-write",
                    test_several_requests_in_one_write);
    g_test_add_func("/qmp/framing/request-split-across-writes",
                    test_request_split_across_writes);
    g_test_add_func("/qmp/framing/parse-error-then-usable",
                    test_parse_error_then_usable);
    g_test_add_func("/qmp/framing/oversized-request-closes",
                    test_oversized_request_closes);
    for (size_t i = 0; i < G_N_ELEMENTS(stream_cases); i++) {
        g_autofree char *p =
            g_strdup_printf("/qmp/framing/%s", stream_cases[i].name);
        g_test_add_data_func(p, &stream_cases[i], test_stream_case);
    }
    g_test_add_func("/qmp/limits/clients-at-once", test_client_limit);
    g_test_add_func("/qmp/limits/fds-per-set-and-in-all", test_fd_limits);
    g_test_add_func("/qmp/limits/unclaimed-fd-closed-after-request",
                    test_unclaimed_fd_closed);
    g_test_add_func("/qmp/limits/request-size-is-exact",
                    test_request_limit_is_exact);
    g_test_add_func("/qmp/framing/resync-after-malformed-split-read",
                    test_resync_split_read);
    g_test_add_func("/qmp/framing/nesting-1024-accepted",
                    test_nesting_1024_accepted);
    g_test_add_func("/qmp/framing/nesting-1025-refused",
                    test_nesting_1025_refused);
    g_test_add_func("/qmp/framing/output-always-utf8", test_output_always_utf8);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *p = g_strdup_printf("/qmp/requests/%s", cases[i].name);
        g_test_add_data_func(p, &cases[i], test_case);
    }
    g_test_add_func("/qmp/fdsets/add-query-open-by-mode-remove", test_fdsets);
    g_test_add_func("/qmp/schema/unions-and-extra-args",
                    test_schema_unions_and_extra_args);
    g_test_add_func("/qmp/schema/introspects-what-libvirt-probes",
                    test_schema_introspects_what_libvirt_probes);
    return g_test_run();
}
