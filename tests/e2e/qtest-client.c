/*
 * The test-side qtest client.  See qtest-client.h.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <godwit/util.h>
#include "qtest-client.h"

#define SMALL_IO 64        /* up to this, "read"/"write" in hex */
#define BIG_IO   (1 << 18) /* base64 transfers, at most this a line */

struct GwQt {
    int fd;
    int timeout_ms;
    GString *in; /* bytes read, not yet split into lines */
    bool level[GW_QT_MAX_IRQ];
    unsigned raises[GW_QT_MAX_IRQ];
    int trace_fd; /* gets a copy of what is sent, or -1 */
};

GwQt *
gw_qt_connect(const char *path, int timeout_ms, GError **errp)
{
    g_autoptr(GwQt) qt = g_new0(GwQt, 1);
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

    qt->timeout_ms = timeout_ms;
    qt->trace_fd = -1;
    qt->in = g_string_new(NULL);
    while ((qt->fd = gw_unix_connect(path)) < 0) {
        if (g_get_monotonic_time() > deadline ||
            (errno != ENOENT && errno != ECONNREFUSED)) {
            gw_error_errno(errp, errno, "qtest: cannot connect to %s", path);
            return NULL;
        }
        g_usleep(5000); /* the socket is not there yet: bounded retry */
    }
    return g_steal_pointer(&qt);
}

void
gw_qt_free(GwQt *qt)
{
    if (!qt) {
        return;
    }
    if (qt->fd >= 0) {
        close(qt->fd);
    }
    g_string_free(qt->in, TRUE);
    g_free(qt);
}

/* "IRQ raise N" / "IRQ lower N": remembered; false if not such a line. */
static bool
take_irq(GwQt *qt, const char *line)
{
    unsigned n;
    char what[8];

    if (!g_str_has_prefix(line, "IRQ ")) {
        return false;
    }
    if (sscanf(line, "IRQ %7s %u", what, &n) != 2 || n >= GW_QT_MAX_IRQ) {
        g_test_message("qtest: odd IRQ line '%s'", line);
        return true;
    }
    qt->level[n] = !strcmp(what, "raise");
    qt->raises[n] += qt->level[n];
    return true;
}

/* Reads what is there, waiting up to `timeout_ms`; false on EOF/error. */
static bool
fill(GwQt *qt, int timeout_ms, GError **errp)
{
    struct pollfd p = {qt->fd, POLLIN, 0};
    char buf[65536];
    ssize_t n;
    int r = poll(&p, 1, timeout_ms);

    if (r == 0) {
        return true;
    }
    n = r > 0 ? read(qt->fd, buf, sizeof(buf)) : -1;
    if (n < 0 && errno == EINTR) {
        return true;
    }
    if (n <= 0) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "qtest: connection closed%s%s", n < 0 ? ": " : "",
                    n < 0 ? g_strerror(errno) : "");
        return false;
    }
    g_string_append_len(qt->in, buf, n);
    return true;
}

/* The first complete line of the buffer, taken out; NULL if none. */
static char *
next_line(GwQt *qt)
{
    char *nl = memchr(qt->in->str, '\n', qt->in->len);
    char *line;

    if (!nl) {
        return NULL;
    }
    line = g_strndup(qt->in->str, nl - qt->in->str);
    g_string_erase(qt->in, 0, nl - qt->in->str + 1);
    return line;
}

char *
gw_qt_read_reply(GwQt *qt, GError **errp)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)qt->timeout_ms * 1000;

    for (;;) {
        char *line = next_line(qt);
        if (line && !take_irq(qt, line)) {
            return line;
        }
        g_free(line);
        if (line) {
            continue;
        }
        gint64 left = deadline - g_get_monotonic_time();
        if (left <= 0) {
            g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                        "qtest: no reply in time");
            return NULL;
        }
        if (!fill(qt, (int)(left / 1000) + 1, errp)) {
            return NULL;
        }
    }
}

void
gw_qt_set_trace(GwQt *qt, int fd)
{
    qt->trace_fd = fd;
}

bool
gw_qt_send_raw(GwQt *qt, const void *buf, size_t len, GError **errp)
{
    const char *p = buf;

    if (qt->trace_fd >= 0 && write(qt->trace_fd, buf, len) != (ssize_t)len) {
        g_warning("qtest: trace: %s", g_strerror(errno));
    }
    while (len) {
        ssize_t n = send(qt->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return gw_error_errno(errp, errno, "qtest: send");
        }
        p += n;
        len -= n;
    }
    return true;
}

char *
gw_qt_request(GwQt *qt, const char *line, GError **errp)
{
    g_autofree char *msg = g_strconcat(line, "\n", NULL);

    if (!gw_qt_send_raw(qt, msg, strlen(msg), errp)) {
        return NULL;
    }
    return gw_qt_read_reply(qt, errp);
}

char *
gw_qt_must(GwQt *qt, const char *fmt, ...)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *line = NULL;
    g_autofree char *r = NULL;
    va_list ap;

    va_start(ap, fmt);
    line = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    r = gw_qt_request(qt, line, &err);
    g_assert_no_error(err);
    if (strcmp(r, "OK") && !g_str_has_prefix(r, "OK ")) {
        g_test_message("qtest: '%.200s' got '%.200s'", line, r);
        g_assert_cmpstr(r, ==, "OK");
    }
    return g_strdup(r[2] ? r + 3 : "");
}

/* An "OK 0x…" value. */
static uint64_t
must_value(GwQt *qt, const char *cmd, uint64_t addr)
{
    g_autofree char *v = gw_qt_must(qt, "%s 0x%" PRIx64, cmd, addr);
    char *end;
    uint64_t n = g_ascii_strtoull(v, &end, 16);

    g_assert_true(g_str_has_prefix(v, "0x") && *end == '\0');
    return n;
}

static void
must_ok(GwQt *qt, const char *cmd, uint64_t addr, uint64_t v)
{
    g_autofree char *r =
        gw_qt_must(qt, "%s 0x%" PRIx64 " 0x%" PRIx64, cmd, addr, v);
    g_assert_cmpstr(r, ==, "");
}

void
gw_qt_outb(GwQt *qt, uint16_t port, uint8_t v)
{
    must_ok(qt, "outb", port, v);
}

void
gw_qt_outw(GwQt *qt, uint16_t port, uint16_t v)
{
    must_ok(qt, "outw", port, v);
}

void
gw_qt_outl(GwQt *qt, uint16_t port, uint32_t v)
{
    must_ok(qt, "outl", port, v);
}

uint8_t
gw_qt_inb(GwQt *qt, uint16_t port)
{
    return must_value(qt, "inb", port);
}

uint16_t
gw_qt_inw(GwQt *qt, uint16_t port)
{
    return must_value(qt, "inw", port);
}

uint32_t
gw_qt_inl(GwQt *qt, uint16_t port)
{
    return must_value(qt, "inl", port);
}

void
gw_qt_writeb(GwQt *qt, uint64_t addr, uint8_t v)
{
    must_ok(qt, "writeb", addr, v);
}

void
gw_qt_writew(GwQt *qt, uint64_t addr, uint16_t v)
{
    must_ok(qt, "writew", addr, v);
}

void
gw_qt_writel(GwQt *qt, uint64_t addr, uint32_t v)
{
    must_ok(qt, "writel", addr, v);
}

void
gw_qt_writeq(GwQt *qt, uint64_t addr, uint64_t v)
{
    must_ok(qt, "writeq", addr, v);
}

uint8_t
gw_qt_readb(GwQt *qt, uint64_t addr)
{
    return must_value(qt, "readb", addr);
}

uint16_t
gw_qt_readw(GwQt *qt, uint64_t addr)
{
    return must_value(qt, "readw", addr);
}

uint32_t
gw_qt_readl(GwQt *qt, uint64_t addr)
{
    return must_value(qt, "readl", addr);
}

uint64_t
gw_qt_readq(GwQt *qt, uint64_t addr)
{
    return must_value(qt, "readq", addr);
}

static void
read_hex(GwQt *qt, uint64_t addr, uint8_t *buf, size_t len)
{
    g_autofree char *r = gw_qt_must(qt, "read 0x%" PRIx64 " 0x%zx", addr, len);

    g_assert_cmpuint(strlen(r), ==, 2 + 2 * len);
    for (size_t i = 0; i < len; i++) {
        buf[i] = g_ascii_xdigit_value(r[2 + 2 * i]) << 4 |
                 g_ascii_xdigit_value(r[3 + 2 * i]);
    }
}

static void
read_b64(GwQt *qt, uint64_t addr, uint8_t *buf, size_t len)
{
    g_autofree char *r =
        gw_qt_must(qt, "b64read 0x%" PRIx64 " 0x%zx", addr, len);
    gsize n;
    g_autofree uint8_t *data = g_base64_decode(r, &n);

    g_assert_cmpuint(n, ==, len);
    memcpy(buf, data, len);
}

void
gw_qt_memread(GwQt *qt, uint64_t addr, void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len) {
        size_t n = MIN(len, BIG_IO);
        if (n <= SMALL_IO) {
            read_hex(qt, addr, p, n);
        } else {
            read_b64(qt, addr, p, n);
        }
        addr += n;
        p += n;
        len -= n;
    }
}

static void
write_hex(GwQt *qt, uint64_t addr, const uint8_t *buf, size_t len)
{
    g_autoptr(GString) hex = g_string_new("0x");
    g_autofree char *r = NULL;

    for (size_t i = 0; i < len; i++) {
        g_string_append_printf(hex, "%02x", buf[i]);
    }
    r = gw_qt_must(qt, "write 0x%" PRIx64 " 0x%zx %s", addr, len, hex->str);
}

static void
write_b64(GwQt *qt, uint64_t addr, const uint8_t *buf, size_t len)
{
    g_autofree char *b64 = g_base64_encode(buf, len);
    g_autofree char *r =
        gw_qt_must(qt, "b64write 0x%" PRIx64 " 0x%zx %s", addr, len, b64);
}

void
gw_qt_memwrite(GwQt *qt, uint64_t addr, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len) {
        size_t n = MIN(len, BIG_IO);
        if (n <= SMALL_IO) {
            write_hex(qt, addr, p, n);
        } else {
            write_b64(qt, addr, p, n);
        }
        addr += n;
        p += n;
        len -= n;
    }
}

void
gw_qt_memset(GwQt *qt, uint64_t addr, uint8_t v, size_t len)
{
    g_autofree char *r =
        gw_qt_must(qt, "memset 0x%" PRIx64 " 0x%zx 0x%02x", addr, len, v);
}

int64_t
gw_qt_clock_step(GwQt *qt, int64_t ns)
{
    g_autofree char *r = gw_qt_must(qt, "clock_step %" PRIi64, ns);

    return g_ascii_strtoll(r, NULL, 10);
}

void
gw_qt_irq_intercept(GwQt *qt, const char *path)
{
    g_autofree char *r = gw_qt_must(qt, "irq_intercept_in %s", path);
}

/* Takes in the IRQ lines that have arrived; replies stay in the buffer. */
static void
take_pending(GwQt *qt, int timeout_ms)
{
    g_autoptr(GError) err = NULL;

    g_assert_true(fill(qt, timeout_ms, &err));
    while (g_str_has_prefix(qt->in->str, "IRQ ")) {
        g_autofree char *line = next_line(qt);
        if (!line) {
            break;
        }
        take_irq(qt, line);
    }
}

bool
gw_qt_irq_level(GwQt *qt, unsigned line)
{
    g_assert_cmpuint(line, <, GW_QT_MAX_IRQ);
    take_pending(qt, 0);
    return qt->level[line];
}

unsigned
gw_qt_irq_raises(GwQt *qt, unsigned line)
{
    g_assert_cmpuint(line, <, GW_QT_MAX_IRQ);
    take_pending(qt, 0);
    return qt->raises[line];
}

bool
gw_qt_irq_wait(GwQt *qt, unsigned line, bool level)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)qt->timeout_ms * 1000;

    g_assert_cmpuint(line, <, GW_QT_MAX_IRQ);
    for (;;) {
        gint64 left = deadline - g_get_monotonic_time();
        take_pending(qt, 0);
        if (qt->level[line] == level) {
            return true;
        }
        if (left <= 0) {
            return false;
        }
        take_pending(qt, (int)(left / 1000) + 1);
    }
}

static uint32_t
cf8(unsigned bdf, unsigned off)
{
    return 0x80000000u | bdf << 8 | (off & 0xfc);
}

/* Segment s's ECAM address of `off` in function `sbdf`. */
static uint64_t
ecam(unsigned sbdf, unsigned off)
{
    return 0xE0000000ull + ((uint64_t)(sbdf >> 16) << 20) +
           ((uint64_t)(sbdf & 0xffff) << 12) + off;
}

uint32_t
gw_qt_pci_read(GwQt *qt, unsigned bdf, unsigned off, unsigned size)
{
    if (bdf >> 16) {
        return size == 1   ? gw_qt_readb(qt, ecam(bdf, off))
               : size == 2 ? gw_qt_readw(qt, ecam(bdf, off))
                           : gw_qt_readl(qt, ecam(bdf, off));
    }
    gw_qt_outl(qt, 0xcf8, cf8(bdf, off));
    switch (size) {
    case 1:
        return gw_qt_inb(qt, 0xcfc + (off & 3));
    case 2:
        return gw_qt_inw(qt, 0xcfc + (off & 2));
    default:
        g_assert_cmpuint(size, ==, 4);
        return gw_qt_inl(qt, 0xcfc);
    }
}

void
gw_qt_pci_write(GwQt *qt, unsigned bdf, unsigned off, unsigned size, uint32_t v)
{
    if (bdf >> 16) {
        if (size == 1) {
            gw_qt_writeb(qt, ecam(bdf, off), (uint8_t)v);
        } else if (size == 2) {
            gw_qt_writew(qt, ecam(bdf, off), (uint16_t)v);
        } else {
            gw_qt_writel(qt, ecam(bdf, off), v);
        }
        return;
    }
    gw_qt_outl(qt, 0xcf8, cf8(bdf, off));
    switch (size) {
    case 1:
        gw_qt_outb(qt, 0xcfc + (off & 3), v);
        break;
    case 2:
        gw_qt_outw(qt, 0xcfc + (off & 2), v);
        break;
    default:
        g_assert_cmpuint(size, ==, 4);
        gw_qt_outl(qt, 0xcfc, v);
    }
}
