/*
 * The qtest server.  See include/godwit/qtest.h.  Main thread only.
 *
 * Input is processed a line at a time and replies are queued; while the
 * queue is above OUT_SOFT (the client does not read), no further line
 * is processed and the socket is not read, so a client can make neither
 * buffer grow without bound.
 */
#include <inttypes.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <glib-unix.h>
#include <godwit/listener.h>
#include <godwit/qtest.h>
#include <godwit/util.h>

#define READ_CHUNK   65536
#define OUT_SOFT     65536
#define OUT_HARD     (4 * GW_QTEST_MAX_DATA)
#define MEMSET_CHUNK 65536
#define MAX_WORDS    4 /* the command and at most three arguments */

struct GwQtest {
    const GwQtestOps *ops;
    void *opaque;
    GwListener *listener;
    int fd; /* the client, -1 if none */
    guint in_watch, out_watch;
    GString *in, *out;
    bool discarding;      /* inside a line longer than GW_QTEST_MAX_LINE */
    bool dispatching;     /* ops are running: replies wait for pump() */
    char *intercept_path; /* set by irq_intercept_in */
    bool level[GW_QTEST_MAX_IRQ];
    int64_t clock_ns;
};

/* ---- arguments ---- */

typedef enum {
    ARG_PORT, /* 0 … 0xffff */
    ARG_U64,  /* address or value, any unsigned 64-bit number */
    ARG_LEN,  /* 1 … GW_QTEST_MAX_DATA */
    ARG_LEN0, /* any length, 0 included (memset) */
    ARG_I64,  /* signed nanoseconds */
    ARG_WORD, /* taken as it is */
} ArgKind;

typedef struct {
    unsigned argc; /* arguments given */
    uint64_t u[MAX_WORDS - 1];
    int64_t i[MAX_WORDS - 1];
    char *s[MAX_WORDS - 1];
} Args;

typedef struct Cmd Cmd;
struct Cmd {
    const char *name;
    void (*fn)(GwQtest *q, const Cmd *c, const Args *a);
    unsigned size;  /* access width, for the sized families */
    unsigned nreq;  /* required arguments … */
    unsigned nargs; /* … out of this many */
    ArgKind kind[MAX_WORDS - 1];
};

/* strtoull(…, 0) without its leniency: no sign, no space, no junk. */
static bool
parse_u64(const char *s, uint64_t *out)
{
    char *end;

    if (!g_ascii_isdigit(s[0])) {
        return false;
    }
    errno = 0;
    *out = g_ascii_strtoull(s, &end, 0);
    return errno == 0 && *end == '\0';
}

static bool
parse_i64(const char *s, int64_t *out)
{
    uint64_t u;

    if (s[0] == '-') {
        if (!parse_u64(s + 1, &u) || u > (uint64_t)INT64_MAX + 1) {
            return false;
        }
        *out = (int64_t)(0 - u);
        return true;
    }
    if (!parse_u64(s, &u) || u > INT64_MAX) {
        return false;
    }
    *out = (int64_t)u;
    return true;
}

/* NULL if `word` is a valid `kind`, else the reason. */
static char *
parse_arg(ArgKind kind, char *word, Args *a, unsigned n)
{
    a->s[n] = word;
    switch (kind) {
    case ARG_WORD:
        return NULL;
    case ARG_I64:
        return parse_i64(word, &a->i[n])
                   ? NULL
                   : g_strdup_printf("bad number '%s'", word);
    default:
        break;
    }
    if (!parse_u64(word, &a->u[n])) {
        return g_strdup_printf("bad number '%s'", word);
    }
    if (kind == ARG_PORT && a->u[n] > 0xffff) {
        return g_strdup_printf("port %s out of range (0 … 0xffff)", word);
    }
    if (kind == ARG_LEN && (a->u[n] == 0 || a->u[n] > GW_QTEST_MAX_DATA)) {
        return g_strdup_printf("length %s out of range (1 … %u)", word,
                               GW_QTEST_MAX_DATA);
    }
    return NULL;
}

/* NULL if words[1…] fit `c`, else the reason. */
static char *
parse_args(const Cmd *c, char **words, unsigned nwords, Args *a)
{
    a->argc = nwords - 1;
    if (a->argc < c->nreq) {
        return g_strdup("missing argument");
    }
    if (a->argc > c->nargs) {
        return g_strdup("too many arguments");
    }
    for (unsigned n = 0; n < a->argc; n++) {
        char *why = parse_arg(c->kind[n], words[n + 1], a, n);
        if (why) {
            return why;
        }
    }
    return NULL;
}

/* ---- replies ---- */

static void client_close(GwQtest *q);
static void pump(GwQtest *q);

static void G_GNUC_PRINTF(2, 3) reply(GwQtest *q, const char *fmt, ...)
{
    va_list ap;

    if (q->fd < 0) {
        return;
    }
    va_start(ap, fmt);
    g_string_append_vprintf(q->out, fmt, ap);
    va_end(ap);
    g_string_append_c(q->out, '\n');
    if (q->out->len > OUT_HARD) {
        g_warning("qtest: the client does not read its replies: "
                  "disconnected");
        client_close(q);
    }
}

static void
fail(GwQtest *q, const Cmd *c, const char *why)
{
    reply(q, "FAIL %s: %s", c->name, why);
}

/* addr … addr + len - 1 must not wrap around. */
static bool
range_ok(GwQtest *q, const Cmd *c, uint64_t addr, uint64_t len)
{
    if (len && addr + (len - 1) < addr) {
        fail(q, c, "address range wraps around");
        return false;
    }
    return true;
}

static bool
mem_rw(GwQtest *q, const Cmd *c, uint64_t addr, void *buf, size_t len,
       bool write)
{
    if (!q->ops->mem_rw(q->opaque, addr, buf, len, write)) {
        g_autofree char *why = g_strdup_printf(
            "0x%" PRIx64 "+0x%zx is not all RAM or MMIO", addr, len);
        fail(q, c, why);
        return false;
    }
    return true;
}

static uint64_t
mask(unsigned size, uint64_t val)
{
    return size == 8 ? val : val & ((UINT64_C(1) << (8 * size)) - 1);
}

/* ---- commands ---- */

static void
cmd_out(GwQtest *q, const Cmd *c, const Args *a)
{
    q->ops->pio_write(q->opaque, a->u[0], c->size, mask(c->size, a->u[1]));
    reply(q, "OK");
}

static void
cmd_in(GwQtest *q, const Cmd *c, const Args *a)
{
    uint32_t v = q->ops->pio_read(q->opaque, a->u[0], c->size);

    reply(q, "OK 0x%04x", (uint32_t)mask(c->size, v));
}

static void
cmd_write_n(GwQtest *q, const Cmd *c, const Args *a)
{
    if (range_ok(q, c, a->u[0], c->size)) {
        q->ops->mem_write(q->opaque, a->u[0], c->size, mask(c->size, a->u[1]));
        reply(q, "OK");
    }
}

static void
cmd_read_n(GwQtest *q, const Cmd *c, const Args *a)
{
    if (range_ok(q, c, a->u[0], c->size)) {
        uint64_t v = q->ops->mem_read(q->opaque, a->u[0], c->size);
        reply(q, "OK 0x%016" PRIx64, mask(c->size, v));
    }
}

static void
cmd_read(GwQtest *q, const Cmd *c, const Args *a)
{
    static const char digits[] = "0123456789abcdef";
    g_autofree uint8_t *data = g_malloc(a->u[1]);
    g_autofree char *hex = NULL;

    if (!range_ok(q, c, a->u[0], a->u[1]) ||
        !mem_rw(q, c, a->u[0], data, a->u[1], false)) {
        return;
    }
    hex = g_malloc(2 * a->u[1] + 1);
    for (uint64_t i = 0; i < a->u[1]; i++) {
        hex[2 * i] = digits[data[i] >> 4];
        hex[2 * i + 1] = digits[data[i] & 15];
    }
    hex[2 * a->u[1]] = '\0';
    reply(q, "OK 0x%s", hex);
}

static void
cmd_b64read(GwQtest *q, const Cmd *c, const Args *a)
{
    g_autofree uint8_t *data = g_malloc(a->u[1]);
    g_autofree char *b64 = NULL;

    if (!range_ok(q, c, a->u[0], a->u[1]) ||
        !mem_rw(q, c, a->u[0], data, a->u[1], false)) {
        return;
    }
    b64 = g_base64_encode(data, a->u[1]);
    reply(q, "OK %s", b64);
}

/*
 * "0x" and hex pairs; bytes the data does not cover are zero (a lone
 * last digit too), bytes beyond LEN ignored, as QEMU does.
 */
static bool
decode_hex(const char *s, uint8_t *buf, size_t len)
{
    size_t n = strlen(s);

    if (n < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) {
        return false;
    }
    for (size_t i = 2; i < n; i++) {
        if (!g_ascii_isxdigit(s[i])) {
            return false;
        }
    }
    for (size_t i = 0; i < len && 2 * i + 4 <= n; i++) {
        buf[i] = g_ascii_xdigit_value(s[2 * i + 2]) << 4 |
                 g_ascii_xdigit_value(s[2 * i + 3]);
    }
    return true;
}

static void
cmd_write(GwQtest *q, const Cmd *c, const Args *a)
{
    g_autofree uint8_t *data = g_malloc0(a->u[1]);

    if (!decode_hex(a->s[2], data, a->u[1])) {
        fail(q, c, "DATA must be 0x followed by hex digits");
        return;
    }
    if (range_ok(q, c, a->u[0], a->u[1]) &&
        mem_rw(q, c, a->u[0], data, a->u[1], true)) {
        reply(q, "OK");
    }
}

static bool
is_base64(const char *s)
{
    if (strlen(s) < 3) {
        return false;
    }
    for (; *s; s++) {
        if (!g_ascii_isalnum(*s) && *s != '+' && *s != '/' && *s != '=') {
            return false;
        }
    }
    return true;
}

/* Decoded data longer than LEN is cut, shorter is zero-filled. */
static void
cmd_b64write(GwQtest *q, const Cmd *c, const Args *a)
{
    g_autofree uint8_t *data = g_malloc0(a->u[1]);
    g_autofree uint8_t *dec = NULL;
    gsize n;

    if (!is_base64(a->s[2])) {
        fail(q, c, "B64_DATA is not base64");
        return;
    }
    dec = g_base64_decode(a->s[2], &n);
    memcpy(data, dec, MIN(n, a->u[1]));
    if (range_ok(q, c, a->u[0], a->u[1]) &&
        mem_rw(q, c, a->u[0], data, a->u[1], true)) {
        reply(q, "OK");
    }
}

static void
cmd_memset(GwQtest *q, const Cmd *c, const Args *a)
{
    uint64_t addr = a->u[0], left = a->u[1];
    g_autofree uint8_t *data = g_malloc(MIN(left, MEMSET_CHUNK) + 1);

    if (!range_ok(q, c, addr, left)) {
        return;
    }
    memset(data, (uint8_t)a->u[2], MIN(left, MEMSET_CHUNK));
    while (left) {
        size_t n = MIN(left, MEMSET_CHUNK);
        if (!mem_rw(q, c, addr, data, n, true)) {
            return;
        }
        addr += n;
        left -= n;
    }
    reply(q, "OK");
}

static void
cmd_endianness(GwQtest *q, const Cmd *c, const Args *a)
{
    reply(q, "OK little");
}

/* The clock only moves forward, and saturates. */
static void
clock_advance_to(GwQtest *q, int64_t ns)
{
    q->clock_ns = MAX(q->clock_ns, ns);
    reply(q, "OK %" PRIi64, q->clock_ns);
}

static void
cmd_clock_step(GwQtest *q, const Cmd *c, const Args *a)
{
    int64_t step = a->argc ? MAX(a->i[0], 0) : 0;

    clock_advance_to(q, step > INT64_MAX - q->clock_ns ? INT64_MAX
                                                       : q->clock_ns + step);
}

static void
cmd_clock_set(GwQtest *q, const Cmd *c, const Args *a)
{
    clock_advance_to(q, a->i[0]);
}

static void
cmd_irq_intercept_in(GwQtest *q, const Cmd *c, const Args *a)
{
    if (q->intercept_path) {
        if (strcmp(q->intercept_path, a->s[0])) {
            reply(q, "FAIL IRQ intercept already enabled");
        } else {
            reply(q, "OK");
        }
        return;
    }
    q->intercept_path = g_strdup(a->s[0]);
    reply(q, "OK");
    for (unsigned i = 0; i < GW_QTEST_MAX_IRQ; i++) {
        if (q->level[i]) {
            reply(q, "IRQ raise %u", i);
        }
    }
}

#define OUT(n, sz)                                                             \
    {                                                                          \
        n, cmd_out, sz, 2, 2,                                                  \
        {                                                                      \
            ARG_PORT, ARG_U64                                                  \
        }                                                                      \
    }
#define IN(n, sz)                                                              \
    {                                                                          \
        n, cmd_in, sz, 1, 1,                                                   \
        {                                                                      \
            ARG_PORT                                                           \
        }                                                                      \
    }
#define WRITE(n, sz)                                                           \
    {                                                                          \
        n, cmd_write_n, sz, 2, 2,                                              \
        {                                                                      \
            ARG_U64, ARG_U64                                                   \
        }                                                                      \
    }
#define READ(n, sz)                                                            \
    {                                                                          \
        n, cmd_read_n, sz, 1, 1,                                               \
        {                                                                      \
            ARG_U64                                                            \
        }                                                                      \
    }

static const Cmd commands[] = {
    OUT("outb", 1),
    OUT("outw", 2),
    OUT("outl", 4),
    IN("inb", 1),
    IN("inw", 2),
    IN("inl", 4),
    WRITE("writeb", 1),
    WRITE("writew", 2),
    WRITE("writel", 4),
    WRITE("writeq", 8),
    READ("readb", 1),
    READ("readw", 2),
    READ("readl", 4),
    READ("readq", 8),
    {"read", cmd_read, 0, 2, 2, {ARG_U64, ARG_LEN}},
    {"b64read", cmd_b64read, 0, 2, 2, {ARG_U64, ARG_LEN}},
    {"write", cmd_write, 0, 3, 3, {ARG_U64, ARG_LEN, ARG_WORD}},
    {"b64write", cmd_b64write, 0, 3, 3, {ARG_U64, ARG_LEN, ARG_WORD}},
    {"memset", cmd_memset, 0, 3, 3, {ARG_U64, ARG_LEN0, ARG_U64}},
    {"endianness", cmd_endianness, 0, 0, 0, {0}},
    {"clock_step", cmd_clock_step, 0, 0, 1, {ARG_I64}},
    {"clock_set", cmd_clock_set, 0, 1, 1, {ARG_I64}},
    {"irq_intercept_in", cmd_irq_intercept_in, 0, 1, 1, {ARG_WORD}},
};

/* Splits at runs of spaces, in place; false if there are too many words. */
static bool
split(char *line, char **words, unsigned *n)
{
    char *save = NULL;

    *n = 0;
    for (char *w = strtok_r(line, " ", &save); w;
         w = strtok_r(NULL, " ", &save)) {
        if (*n == MAX_WORDS) {
            return false;
        }
        words[(*n)++] = w;
    }
    return true;
}

static const Cmd *
lookup(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
        if (!strcmp(commands[i].name, name)) {
            return &commands[i];
        }
    }
    return NULL;
}

/* One command line, without its newline (a trailing '\r' goes too). */
static void
handle_line(GwQtest *q, char *line, size_t len)
{
    char *words[MAX_WORDS];
    unsigned n;
    const Cmd *c;
    Args a = {0};
    g_autofree char *why = NULL;

    if (len && line[len - 1] == '\r') {
        line[--len] = '\0';
    }
    if (memchr(line, '\0', len)) {
        reply(q, "FAIL the line contains a NUL byte");
        return;
    }
    if (!split(line, words, &n) && (c = lookup(words[0]))) {
        fail(q, c, "too many arguments");
        return;
    }
    if (n == 0) {
        reply(q, "FAIL empty line");
        return;
    }
    if (!(c = lookup(words[0]))) {
        reply(q, "FAIL Unknown command '%s'", words[0]);
        return;
    }
    why = parse_args(c, words, n, &a);
    if (why) {
        fail(q, c, why);
        return;
    }
    c->fn(q, c, &a);
}

/*
 * Handles the complete lines in q->in until the replies pile up; true
 * if it stopped with complete lines left for later.
 */
static bool
process_lines(GwQtest *q)
{
    size_t pos = 0;
    bool more = false;

    q->dispatching = true;
    while (q->fd >= 0) {
        char *line = q->in->str + pos;
        char *nl = memchr(line, '\n', q->in->len - pos);
        if (!nl) {
            break;
        }
        if (q->out->len > OUT_SOFT) {
            more = true;
            break;
        }
        *nl = '\0';
        if (q->discarding || nl - line > GW_QTEST_MAX_LINE) {
            reply(q, "FAIL line longer than %d bytes", GW_QTEST_MAX_LINE);
            q->discarding = false;
        } else {
            handle_line(q, line, nl - line);
        }
        pos = nl + 1 - q->in->str;
    }
    q->dispatching = false;
    if (q->fd >= 0) {
        g_string_erase(q->in, 0, pos);
    }
    if (!more && q->in->len > GW_QTEST_MAX_LINE) {
        /* no newline in sight: drop what we have, fail at the newline */
        q->discarding = true;
        g_string_truncate(q->in, 0);
    }
    return more;
}

/* ---- the client ---- */

static gboolean on_readable(int fd, GIOCondition cond, gpointer data);

static gboolean
on_writable(int fd, GIOCondition cond, gpointer data)
{
    GwQtest *q = data;

    q->out_watch = 0;
    pump(q);
    return G_SOURCE_REMOVE;
}

static void
client_write(GwQtest *q)
{
    while (q->fd >= 0 && q->out->len) {
        /* no SIGPIPE: a vanished client is an ordinary event */
        ssize_t n = send(q->fd, q->out->str, q->out->len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            if (!q->out_watch) {
                q->out_watch = g_unix_fd_add(q->fd, G_IO_OUT, on_writable, q);
            }
            return;
        }
        if (n < 0) {
            client_close(q); /* EPIPE and friends: the client went away */
            return;
        }
        g_string_erase(q->out, 0, n);
    }
}

/* The socket is read only while the replies do not pile up. */
static void
update_input(GwQtest *q)
{
    if (q->fd < 0) {
        return;
    }
    if (q->out->len > OUT_SOFT) {
        g_clear_handle_id(&q->in_watch, g_source_remove);
    } else if (!q->in_watch) {
        q->in_watch =
            g_unix_fd_add(q->fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_readable, q);
    }
}

/* Runs pending lines and sends their replies as far as the socket takes. */
static void
pump(GwQtest *q)
{
    while (q->fd >= 0) {
        bool more = process_lines(q);
        client_write(q);
        if (!more || q->out->len > OUT_SOFT) {
            break;
        }
    }
    update_input(q);
}

static gboolean
on_readable(int fd, GIOCondition cond, gpointer data)
{
    GwQtest *q = data;
    gsize old = q->in->len;
    ssize_t n;

    g_string_set_size(q->in, old + READ_CHUNK);
    n = read(fd, q->in->str + old, READ_CHUNK);
    g_string_set_size(q->in, n > 0 ? old + n : old);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0) {
        q->in_watch = 0;
        client_close(q);
        return G_SOURCE_REMOVE;
    }
    pump(q);
    return G_SOURCE_CONTINUE;
}

static void
client_close(GwQtest *q)
{
    if (q->fd < 0) {
        return;
    }
    g_clear_handle_id(&q->in_watch, g_source_remove);
    g_clear_handle_id(&q->out_watch, g_source_remove);
    close(q->fd);
    q->fd = -1;
    g_string_truncate(q->out, 0);
    g_clear_pointer(&q->intercept_path, g_free);
    if (q->listener) {
        gw_listener_set_paused(q->listener, false);
        gw_listener_kick(q->listener);
    }
}

/* The next client waits in the backlog until this one leaves. */
static void
on_connect(gpointer data, int fd)
{
    GwQtest *q = data;

    q->fd = fd;
    g_string_truncate(q->in, 0);
    q->discarding = false;
    update_input(q);
    gw_listener_set_paused(q->listener, true);
}

/* ---- the server ---- */

static bool
listen_on(GwQtest *q, const char *path, GError **errp)
{
    q->listener = gw_listener_new("--qtest", path, 4, on_connect, q, errp);
    return q->listener != NULL;
}

GwQtest *
gw_qtest_new(const char *path, const GwQtestOps *ops, void *opaque,
             GError **errp)
{
    g_autoptr(GwQtest) q = g_new0(GwQtest, 1);

    q->ops = ops;
    q->opaque = opaque;
    q->fd = -1;
    q->in = g_string_new(NULL);
    q->out = g_string_new(NULL);
    if (!listen_on(q, path, errp)) {
        return NULL;
    }
    return g_steal_pointer(&q);
}

void
gw_qtest_free(GwQtest *q)
{
    if (!q) {
        return;
    }
    client_close(q);
    gw_listener_free(q->listener);
    g_string_free(q->in, TRUE);
    g_string_free(q->out, TRUE);
    g_free(q);
}

void
gw_qtest_set_irq(GwQtest *q, unsigned line, bool level)
{
    if (line >= GW_QTEST_MAX_IRQ || q->level[line] == level) {
        return;
    }
    q->level[line] = level;
    if (q->fd < 0 || !q->intercept_path) {
        return;
    }
    reply(q, "IRQ %s %u", level ? "raise" : "lower", line);
    if (!q->dispatching) {
        client_write(q);
        update_input(q);
    }
}
