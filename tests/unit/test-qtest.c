/*
 * The qtest server against a fake target (64 KiB of RAM at RAM_BASE, a
 * recorded port log, all ones elsewhere) over a real socket, talked to
 * by the test-side client.  Every command, every error, and the
 * connection and the server surviving each error.
 *
 * Threads: the server runs on the default GMainContext, iterated by a
 * thread of its own (`loop_thread`); the fake target's callbacks run
 * there, under `Fixture.lock`.  The test body is the client.
 */
#include <inttypes.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <glib/gstdio.h>
#include <godwit/qtest.h>
#include <godwit/util.h>
#include "e2e/qtest-client.h"

#define T        10000
#define RAM_BASE 0x100000u
#define RAM_SIZE 0x10000u
#define IRQ_PORT 0x510 /* writing L | level << 8 sets line L */

typedef struct {
    uint16_t port;
    unsigned size;
    uint32_t val;
    bool write;
} PortOp;

typedef struct {
    char *dir, *path;
    GwQtest *q;
    GMainLoop *loop;
    GThread *thread;
    GMutex lock; /* guards ram and ports */
    uint8_t ram[RAM_SIZE];
    GArray *ports; /* PortOp */
} Fixture;

/* ---- the fake target ---- */

static void
log_port(Fixture *f, uint16_t port, unsigned size, uint32_t val, bool write)
{
    PortOp op = {port, size, val, write};

    g_mutex_lock(&f->lock);
    g_array_append_val(f->ports, op);
    g_mutex_unlock(&f->lock);
}

static uint32_t
fake_pio_read(void *opaque, uint16_t port, unsigned size)
{
    uint32_t v = 0x12345678u ^ port;

    log_port(opaque, port, size, v, false);
    return v; /* the server keeps `size` bytes of it */
}

static void
fake_pio_write(void *opaque, uint16_t port, unsigned size, uint32_t val)
{
    Fixture *f = opaque;

    log_port(f, port, size, val, true);
    if (port == IRQ_PORT) {
        gw_qtest_set_irq(f->q, val & 0xff, val >> 8);
    }
}

static bool
in_ram(uint64_t addr, size_t len)
{
    return addr >= RAM_BASE && len <= RAM_SIZE &&
           addr - RAM_BASE <= RAM_SIZE - len;
}

static bool
fake_mem_rw(void *opaque, uint64_t addr, void *buf, size_t len, bool write)
{
    Fixture *f = opaque;

    if (!in_ram(addr, len)) {
        return false;
    }
    g_mutex_lock(&f->lock);
    if (write) {
        memcpy(f->ram + addr - RAM_BASE, buf, len);
    } else {
        memcpy(buf, f->ram + addr - RAM_BASE, len);
    }
    g_mutex_unlock(&f->lock);
    return true;
}

static uint64_t
fake_mem_read(void *opaque, uint64_t addr, unsigned size)
{
    uint64_t v = 0;

    if (!fake_mem_rw(opaque, addr, &v, size, false)) {
        return UINT64_MAX;
    }
    return GUINT64_FROM_LE(v);
}

static void
fake_mem_write(void *opaque, uint64_t addr, unsigned size, uint64_t val)
{
    uint64_t le = GUINT64_TO_LE(val);

    fake_mem_rw(opaque, addr, &le, size, true);
}

static const GwQtestOps fake_ops = {fake_pio_read, fake_pio_write,
                                    fake_mem_read, fake_mem_write, fake_mem_rw};

/* ---- fixture ---- */

static gpointer
loop_thread(gpointer data)
{
    g_main_loop_run(data);
    return NULL;
}

static void
setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;

    f->dir = g_dir_make_tmp("godwit-qtest-XXXXXX", NULL);
    f->path = g_build_filename(f->dir, "qtest.sock", NULL);
    f->ports = g_array_new(FALSE, FALSE, sizeof(PortOp));
    g_mutex_init(&f->lock);
    f->q = gw_qtest_new(f->path, &fake_ops, f, &err);
    g_assert_no_error(err);
    f->loop = g_main_loop_new(NULL, FALSE);
    f->thread = g_thread_new("qtest-server", loop_thread, f->loop);
}

/* From inside the loop: a quit before the thread runs it would be lost. */
static gboolean
quit_cb(gpointer loop)
{
    g_main_loop_quit(loop);
    return G_SOURCE_REMOVE;
}

static void
teardown(Fixture *f, gconstpointer data)
{
    g_idle_add(quit_cb, f->loop);
    g_thread_join(f->thread);
    g_main_loop_unref(f->loop);
    gw_qtest_free(f->q);
    g_assert_false(g_file_test(f->path, G_FILE_TEST_EXISTS));
    g_rmdir(f->dir);
    g_array_unref(f->ports);
    g_mutex_clear(&f->lock);
    g_free(f->path);
    g_free(f->dir);
}

static GwQt *
connect_client(Fixture *f)
{
    g_autoptr(GError) err = NULL;
    GwQt *qt = gw_qt_connect(f->path, T, &err);

    g_assert_no_error(err);
    return qt;
}

/* Sends `line`, asserts the exact reply. */
static void
expect(GwQt *qt, const char *line, const char *want)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *got = gw_qt_request(qt, line, &err);

    g_assert_no_error(err);
    g_assert_cmpstr(got, ==, want);
}

static guint
n_ports(Fixture *f)
{
    guint n;

    g_mutex_lock(&f->lock);
    n = f->ports->len;
    g_mutex_unlock(&f->lock);
    return n;
}

static PortOp
port_op(Fixture *f, guint i)
{
    PortOp op;

    g_mutex_lock(&f->lock);
    g_assert_cmpuint(i, <, f->ports->len);
    op = g_array_index(f->ports, PortOp, i);
    g_mutex_unlock(&f->lock);
    return op;
}

static void
assert_port(Fixture *f, guint i, uint16_t port, unsigned size, uint32_t val,
            bool write)
{
    PortOp op = port_op(f, i);

    g_assert_cmphex(op.port, ==, port);
    g_assert_cmpuint(op.size, ==, size);
    g_assert_cmphex(op.val, ==, val);
    g_assert_cmpint(op.write, ==, write);
}

/* ---- port I/O ---- */

static void
test_pio_out_sizes_and_values(Fixture *f, gconstpointer data)
{
    g_autoptr(GwQt) qt = connect_client(f);

    expect(qt, "outb 0x80 0x12", "OK");
    expect(qt, "outw 0x1f0 4660", "OK"); /* decimal, as strtoul(…, 0) */
    expect(qt, "outl 0xcf8 0x80000000", "OK");
    expect(qt, "outb 0x80 0x1ff", "OK"); /* cut to the width, as QEMU */
    expect(qt, "outw 0xffff 010", "OK"); /* octal */
    g_assert_cmpuint(n_ports(f), ==, 5);
    assert_port(f, 0, 0x80, 1, 0x12, true);
    assert_port(f, 1, 0x1f0, 2, 0x1234, true);
    assert_port(f, 2, 0xcf8, 4, 0x80000000, true);
    assert_port(f, 3, 0x80, 1, 0xff, true);
    assert_port(f, 4, 0xffff, 2, 8, true);
}

static void
test_pio_in_formats_like_qemu(Fixture *f, gconstpointer data)
{
    g_autoptr(GwQt) qt = connect_client(f);

    expect(qt, "inb 0x71", "OK 0x0009");      /* 0x12345678 ^ 0x71, 1 byte */
    expect(qt, "inw 0x1f0", "OK 0x5788");     /* … ^ 0x1f0, 2 bytes */
    expect(qt, "inl 0xcfc", "OK 0x12345a84"); /* … ^ 0xcfc */
    g_assert_cmpuint(n_ports(f), ==, 3);
    assert_port(f, 0, 0x71, 1, 0x12345678 ^ 0x71, false);
    assert_port(f, 1, 0x1f0, 2, 0x12345678 ^ 0x1f0, false);
    assert_port(f, 2, 0xcfc, 4, 0x12345678 ^ 0xcfc, false);
    g_assert_cmpuint(gw_qt_inb(qt, 0x71), ==, 0x09);
    g_assert_cmpuint(gw_qt_inl(qt, 0), ==, 0x12345678);
}

/* ---- memory ---- */

static void
test_mem_sized_access_is_little_endian(Fixture *f, gconstpointer data)
{
    g_autoptr(GwQt) qt = connect_client(f);
    static const uint8_t want[] = {0x11, 0x00, 0x22, 0x21, 0x44, 0x43,
                                   0x42, 0x41, 0x88, 0x87, 0x86, 0x85,
                                   0x84, 0x83, 0x82, 0x81};

    expect(qt, "writeb 0x100000 0x11", "OK");
    expect(qt, "writew 0x100002 0x2122", "OK");
    expect(qt, "writel 0x100004 0x41424344", "OK");
    expect(qt, "writeq 0x100008 0x8182838485868788", "OK");
    g_assert_cmpmem(f->ram, sizeof(want), want, sizeof(want));
    expect(qt, "readb 0x100000", "OK 0x0000000000000011");
    expect(qt, "readw 0x100002", "OK 0x0000000000002122");
    expect(qt, "readl 0x100004", "OK 0x0000000041424344");
    expect(qt, "readq 0x100008", "OK 0x8182838485868788");
    expect(qt, "writeb 0x100001 0x1ff", "OK"); /* cut to the width */
    expect(qt, "readb 0x100001", "OK 0x00000000000000ff");
    g_assert_cmphex(gw_qt_readq(qt, 0x100008), ==, 0x8182838485868788);
    gw_qt_writel(qt, 0x100010, 0xdeadbeef);
    g_assert_cmphex(gw_qt_readl(qt, 0x100010), ==, 0xdeadbeef);
}

static void
test_mem_unmapped_reads_all_ones(Fixture *f, gconstpointer data)
{
    g_autoptr(GwQt) qt = connect_client(f);

    expect(qt, "readl 0x0", "OK 0x00000000ffffffff");
    expect(qt, "readq 0xfee00000", "OK 0xffffffffffffffff");
    expect(qt, "writel 0x0 0x1", "OK"); /* dropped, as on hardware */
}

static void
test_mem_read_write_hex(Fixture *f, gconstpointer data)
{
    g_autoptr(GwQt) qt = connect_client(f);

    expect(qt, "write 0x100000 4 0x0102aBcD", "OK");
    expect(qt, "read 0x100000 4", "OK 0x0102abcd");
    /* short data: the rest is zero, a lone last digit included */
    expect(qt, "write 0x100000 4 0x0102", "OK");
    expect(qt, "read 0x100000 0x4", "OK 0x01020000");
    expect(qt, "write 0x100000 2 0x0a0b0", "OK");
    expect(qt, "read 0x100000 3", "OK 0x0a0b00");
    expect(qt, "write 0x100000 1 0xffee", "OK"); /* longer: cut */
    expect(qt, "read 0x100000 2", "OK 0xff0b");
}

static void
test_mem_base64(Fixture *f, gconstpointer data)
{
    g_autoptr(GwQt) qt = connect_client(f);

    expect(qt, "b64write 0x100000 4 AQIDBA==", "OK");
    expect(qt, "read 0x100000 4", "OK 0x01020304");
    expect(qt, "b64read 0x100000 4", "OK AQIDBA==");
    expect(qt, "b64read 0x100001 1", "OK Ag==");
    expect(qt, "b64write 0x100000 2 AQIDBA==", "OK"); /* longer: cut */
    expect(qt, "read 0x100000 4", "OK 0x01020304");
    expect(qt, "b64write 0x100000 4 BQY=", "OK"); /* shorter: zeroes */
    expect(qt, "read 0x100000 4", "OK 0x05060000");
}

static void
test_mem_memset(Fixture *f, gconstpointer data)
{
    g_autoptr(GwQt) qt = connect_client(f);

    expect(qt, "memset 0x100000 5 0xaa", "OK");
    expect(qt, "read 0x100000 6", "OK 0xaaaaaaaaaa00");
    expect(qt, "memset 0x100000 0 0x55", "OK"); /* nothing to do */
    expect(qt, "memset 0x0 0 0x55", "OK");
    expect(qt, "memset 0x100000 0x10000 0x1ab", "OK"); /* all of RAM */
    g_assert_cmphex(f->ram[0], ==, 0xab);
    g_assert_cmphex(f->ram[RAM_SIZE - 1], ==, 0xab);
}

/* The client's bulk helpers, across their hex/base64 switch. */
static void
test_mem_client_bulk_roundtrip(Fixture *f, gconstpointer data)
{
    g_autoptr(GwQt) qt = connect_client(f);
    static const size_t sizes[] = {1, 63, 64, 65, 4096, RAM_SIZE};

    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        g_autofree uint8_t *out = g_malloc(sizes[i]);
        g_autofree uint8_t *in = g_malloc0(sizes[i]);
        for (size_t j = 0; j < sizes[i]; j++) {
            out[j] = (uint8_t)(j * 7 + i);
        }
        gw_qt_memwrite(qt, RAM_BASE, out, sizes[i]);
        g_assert_cmpmem(f->ram, sizes[i], out, sizes[i]);
        gw_qt_memread(qt, RAM_BASE, in, sizes[i]);
        g_assert_cmpmem(in, sizes[i], out, sizes[i]);
    }
    gw_qt_memset(qt, RAM_BASE + 8, 0x5a, 8);
    g_assert_cmphex(gw_qt_readq(qt, RAM_BASE + 8), ==, 0x5a5a5a5a5a5a5a5a);
}

static void
test_mem_bulk_outside_ram_fails(Fixture *f, gconstpointer data)
{
    g_autoptr(GwQt) qt = connect_client(f);

    expect(qt, "read 0x0 4", "FAIL read: 0x0+0x4 is not all RAM or MMIO");
    expect(qt, "read 0x10fffe 4",
           "FAIL read: 0x10fffe+0x4 is not all RAM or MMIO");
    expect(qt, "b64read 0x0 4", "FAIL b64read: 0x0+0x4 is not all RAM or MMIO");
    expect(qt, "write 0x0 1 0x01",
           "FAIL write: 0x0+0x1 is not all RAM or MMIO");
    expect(qt, "b64write 0x0 1 AQ==",
           "FAIL b64write: 0x0+0x1 is not all RAM or MMIO");
    expect(qt, "memset 0x0 1 0", "FAIL memset: 0x0+0x1 is not all RAM or MMIO");
}

/* ---- the rest ---- */

static void
test_misc_endianness_and_clock(Fixture *f, gconstpointer data)
{
    g_autoptr(GwQt) qt = connect_client(f);

    expect(qt, "endianness", "OK little");
    expect(qt, "clock_step", "OK 0"); /* no deadlines: no move */
    expect(qt, "clock_step 100", "OK 100");
    expect(qt, "clock_step 0x10", "OK 116");
    expect(qt, "clock_step -5", "OK 116"); /* never backwards */
    expect(qt, "clock_set 1000", "OK 1000");
    expect(qt, "clock_set 10", "OK 1000");
    expect(qt, "clock_set -10", "OK 1000");
    expect(qt, "clock_step 9223372036854775807", "OK 9223372036854775807");
    g_assert_cmpint(gw_qt_clock_step(qt, 1), ==, INT64_MAX);
}

static void
test_misc_tolerates_cr_and_runs_of_spaces(Fixture *f, gconstpointer data)
{
    g_autoptr(GwQt) qt = connect_client(f);

    expect(qt, "outb  0x80   0x12  \r", "OK");
    expect(qt, "endianness\r", "OK little");
    assert_port(f, 0, 0x80, 1, 0x12, true);
}

/* ---- interrupts ---- */

static void
test_irq_not_sent_before_intercept(Fixture *f, gconstpointer data)
{
    g_autoptr(GwQt) qt = connect_client(f);

    expect(qt, "outw 0x510 0x105", "OK"); /* raise 5 */
    g_assert_false(gw_qt_irq_level(qt, 5));
    g_assert_cmpuint(gw_qt_irq_raises(qt, 5), ==, 0);
}

/* Lines raised inside a command come before its OK, and are set aside. */
static void
test_irq_raise_lower_in_order(Fixture *f, gconstpointer data)
{
    g_autoptr(GwQt) qt = connect_client(f);
    g_autoptr(GError) err = NULL;
    g_autofree char *r = NULL;

    expect(qt, "irq_intercept_in ioapic", "OK");
    g_assert_true(gw_qt_send_raw(qt, "outw 0x510 0x10b\n", 17, &err));
    r = gw_qt_read_reply(qt, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(r, ==, "OK");
    g_assert_true(gw_qt_irq_level(qt, 11));
    gw_qt_outw(qt, IRQ_PORT, 0x10b); /* the same level: not sent again */
    g_assert_cmpuint(gw_qt_irq_raises(qt, 11), ==, 1);
    gw_qt_outw(qt, IRQ_PORT, 0x00b);
    g_assert_false(gw_qt_irq_level(qt, 11));
    gw_qt_outw(qt, IRQ_PORT, 0x1ff);
    g_assert_true(gw_qt_irq_level(qt, 255));
    g_assert_cmpuint(gw_qt_irq_raises(qt, 11), ==, 1);
}

typedef struct {
    GwQtest *q;
    unsigned line;
    bool level;
} SetIrq;

static gboolean
set_irq_cb(gpointer data)
{
    SetIrq *s = data;

    gw_qtest_set_irq(s->q, s->line, s->level);
    return G_SOURCE_REMOVE;
}

/* From the main loop, between commands: the client sees it unasked. */
static void
test_irq_async_from_main_loop(Fixture *f, gconstpointer data)
{
    g_autoptr(GwQt) qt = connect_client(f);
    SetIrq raise = {f->q, 3, true}, lower = {f->q, 3, false};

    gw_qt_irq_intercept(qt, "/machine/ioapic");
    g_idle_add(set_irq_cb, &raise);
    g_assert_true(gw_qt_irq_wait(qt, 3, true));
    g_idle_add(set_irq_cb, &lower);
    g_assert_true(gw_qt_irq_wait(qt, 3, false));
    g_assert_cmpuint(gw_qt_irq_raises(qt, 3), ==, 1);
    expect(qt, "endianness", "OK little");
}

static void
test_irq_intercept_reports_lines_already_high(Fixture *f, gconstpointer data)
{
    g_autoptr(GwQt) qt = connect_client(f);

    gw_qt_outw(qt, IRQ_PORT, 0x104);
    gw_qt_outw(qt, IRQ_PORT, 0x10e);
    gw_qt_irq_intercept(qt, "ioapic");
    g_assert_true(gw_qt_irq_level(qt, 4));
    g_assert_true(gw_qt_irq_level(qt, 14));
    g_assert_false(gw_qt_irq_level(qt, 5));
}

static void
test_irq_intercept_twice(Fixture *f, gconstpointer data)
{
    g_autoptr(GwQt) qt = connect_client(f);

    expect(qt, "irq_intercept_in ioapic", "OK");
    expect(qt, "irq_intercept_in ioapic", "OK");
    expect(qt, "irq_intercept_in /machine/i440fx",
           "FAIL IRQ intercept already enabled");
}

/* Interception belongs to a connection: the next client starts without. */
static void
test_irq_intercept_ends_with_client(Fixture *f, gconstpointer data)
{
    g_autoptr(GwQt) a = connect_client(f);
    g_autoptr(GwQt) b = NULL;

    gw_qt_irq_intercept(a, "ioapic");
    g_clear_pointer(&a, gw_qt_free);
    b = connect_client(f);
    gw_qt_outw(b, IRQ_PORT, 0x102);
    g_assert_false(gw_qt_irq_level(b, 2));
    expect(b, "irq_intercept_in other", "OK");
    g_assert_true(gw_qt_irq_level(b, 2));
}

/* ---- malformed input ---- */

static const struct {
    const char *line, *reply;
} bad_lines[] = {
    {"", "FAIL empty line"},
    {"   ", "FAIL empty line"},
    {"bogus 1", "FAIL Unknown command 'bogus'"},
    {"a b c d e f", "FAIL Unknown command 'a'"},
    {"irq_intercept_out ioapic", "FAIL Unknown command 'irq_intercept_out'"},
    {"OUTB 0x80 1", "FAIL Unknown command 'OUTB'"},
    {"outb", "FAIL outb: missing argument"},
    {"outb 0x80", "FAIL outb: missing argument"},
    {"outb 0x80 1 2", "FAIL outb: too many arguments"},
    {"outb 0x80 1 2 3 4", "FAIL outb: too many arguments"},
    {"outb 0x10000 1", "FAIL outb: port 0x10000 out of range (0 … 0xffff)"},
    {"inl 65536", "FAIL inl: port 65536 out of range (0 … 0xffff)"},
    {"inb zz", "FAIL inb: bad number 'zz'"},
    {"inb -1", "FAIL inb: bad number '-1'"},
    {"inb +1", "FAIL inb: bad number '+1'"},
    {"inb 0x", "FAIL inb: bad number '0x'"},
    {"inb 08", "FAIL inb: bad number '08'"},
    {"outb 0x80 1x", "FAIL outb: bad number '1x'"},
    {"readq 0x1z", "FAIL readq: bad number '0x1z'"},
    {"readq 18446744073709551616", /* 2^64 */
     "FAIL readq: bad number '18446744073709551616'"},
    {"readq 0xfffffffffffffffc", "FAIL readq: address range wraps around"},
    {"writel 0xfffffffffffffffe 0", "FAIL writel: address range wraps around"},
    {"endianness now", "FAIL endianness: too many arguments"},
    {"read 0x100000", "FAIL read: missing argument"},
    {"read 0x100000 0", "FAIL read: length 0 out of range (1 … 16777216)"},
    {"read 0x100000 0x1000001",
     "FAIL read: length 0x1000001 out of range (1 … 16777216)"},
    {"b64read 0x100000 99999999999",
     "FAIL b64read: length 99999999999 out of range (1 … 16777216)"},
    {"read 0xffffffffffffffff 2", "FAIL read: address range wraps around"},
    {"write 0x100000 4", "FAIL write: missing argument"},
    {"write 0x100000 4 0x",
     "FAIL write: DATA must be 0x followed by hex digits"},
    {"write 0x100000 4 1234",
     "FAIL write: DATA must be 0x followed by hex digits"},
    {"write 0x100000 4 0x12zz",
     "FAIL write: DATA must be 0x followed by hex digits"},
    {"write 0x100000 0 0x12",
     "FAIL write: length 0 out of range (1 … 16777216)"},
    {"b64write 0x100000 4 AQ", "FAIL b64write: B64_DATA is not base64"},
    {"b64write 0x100000 4 AQ!D", "FAIL b64write: B64_DATA is not base64"},
    {"memset 0x100000 1", "FAIL memset: missing argument"},
    {"memset 0xffffffffffffffff 2 0",
     "FAIL memset: address range wraps around"},
    {"memset 0x100000 1 x", "FAIL memset: bad number 'x'"},
    {"clock_step x", "FAIL clock_step: bad number 'x'"},
    {"clock_step 1 2", "FAIL clock_step: too many arguments"},
    {"clock_set", "FAIL clock_set: missing argument"},
    {"clock_set 9223372036854775808",
     "FAIL clock_set: bad number '9223372036854775808'"},
    {"irq_intercept_in", "FAIL irq_intercept_in: missing argument"},
};

/* Each fails, touches nothing, and the connection carries on. */
static void
test_bad_lines_fail_and_connection_survives(Fixture *f, gconstpointer data)
{
    g_autoptr(GwQt) qt = connect_client(f);
    uint8_t zero[RAM_SIZE] = {0};

    for (size_t i = 0; i < G_N_ELEMENTS(bad_lines); i++) {
        g_test_message("%s", bad_lines[i].line);
        expect(qt, bad_lines[i].line, bad_lines[i].reply);
        expect(qt, "endianness", "OK little");
    }
    g_assert_cmpuint(n_ports(f), ==, 0);
    g_assert_cmpmem(f->ram, RAM_SIZE, zero, RAM_SIZE);
    expect(qt, "clock_step 1", "OK 1"); /* no bad clock command moved it */
}

static void
test_bad_nul_byte(Fixture *f, gconstpointer data)
{
    g_autoptr(GwQt) qt = connect_client(f);
    g_autoptr(GError) err = NULL;
    g_autofree char *r = NULL;

    g_assert_true(gw_qt_send_raw(qt, "outb\0 0x80 1\n", 13, &err));
    r = gw_qt_read_reply(qt, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(r, ==, "FAIL the line contains a NUL byte");
    g_assert_cmpuint(n_ports(f), ==, 0);
    expect(qt, "endianness", "OK little");
}

/*
 * Lines made of command names, numbers good and bad, hex and base64
 * scraps and control bytes, from a fixed seed: each gets exactly one
 * reply, OK or FAIL, and the server stays up.
 */
static void
test_bad_random_lines(Fixture *f, gconstpointer data)
{
    static const char *const vocab[] = {"outb",
                                        "inw",
                                        "readq",
                                        "writel",
                                        "read",
                                        "write",
                                        "b64read",
                                        "b64write",
                                        "memset",
                                        "clock_step",
                                        "clock_set",
                                        "irq_intercept_in",
                                        "endianness",
                                        "0x100000",
                                        "0x10fff0",
                                        "0",
                                        "-1",
                                        "0x",
                                        "0xffff",
                                        "0x10000",
                                        "18446744073709551615",
                                        "0xfffffffffffffff0",
                                        "16",
                                        "0x1000001",
                                        "0x0102",
                                        "AQID",
                                        "====",
                                        "x\t",
                                        "\x01",
                                        ""};
    g_autoptr(GwQt) qt = connect_client(f);
    g_autoptr(GRand) rand = g_rand_new_with_seed(20240601);

    for (unsigned i = 0; i < 3000; i++) {
        g_autoptr(GString) line = g_string_new(NULL);
        g_autofree char *r = NULL;
        g_autoptr(GError) err = NULL;
        unsigned n = g_rand_int_range(rand, 0, 6);
        for (unsigned w = 0; w < n; w++) {
            g_string_append(
                line, vocab[g_rand_int_range(rand, 0, G_N_ELEMENTS(vocab))]);
            g_string_append_c(line, g_rand_boolean(rand) ? ' ' : '\t');
        }
        r = gw_qt_request(qt, line->str, &err);
        g_assert_no_error(err);
        if (!g_str_has_prefix(r, "OK") && !g_str_has_prefix(r, "FAIL ")) {
            g_test_message("'%s' got '%.100s'", line->str, r);
            g_assert_not_reached();
        }
    }
    expect(qt, "endianness", "OK little");
}

/* An endless line is dropped as it comes; one FAIL at its newline. */
static void
test_bad_line_too_long(Fixture *f, gconstpointer data)
{
    g_autoptr(GwQt) qt = connect_client(f);
    g_autoptr(GError) err = NULL;
    size_t len = 3 * GW_QTEST_MAX_LINE + 5;
    g_autofree char *line = g_malloc(len + 1);
    g_autofree char *r = NULL;

    memset(line, 'a', len);
    memcpy(line, "outb", 4); /* what parses must not be run */
    line[len] = '\n';
    g_assert_true(gw_qt_send_raw(qt, line, len + 1, &err));
    r = gw_qt_read_reply(qt, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(r, ==, "FAIL line longer than 1048576 bytes");
    expect(qt, "endianness", "OK little");
    g_assert_cmpuint(n_ports(f), ==, 0);
}

/* The longest line accepted still works: a 512 KiB "write". */
static void
test_longest_line_accepted(Fixture *f, gconstpointer data)
{
    g_autoptr(GwQt) qt = connect_client(f);
    g_autoptr(GString) line = g_string_new("write 0x100000 0x10000 0x");

    while (line->len < GW_QTEST_MAX_LINE) {
        g_string_append(line, "5a");
    }
    g_string_truncate(line, GW_QTEST_MAX_LINE);
    expect(qt, line->str, "OK");
    g_assert_cmphex(f->ram[RAM_SIZE - 1], ==, 0x5a);
}

/* ---- the connection ---- */

/* Many lines in one write: every reply, in order. */
static void
test_conn_pipelined(Fixture *f, gconstpointer data)
{
    g_autoptr(GwQt) qt = connect_client(f);
    g_autoptr(GError) err = NULL;
    g_autoptr(GString) batch = g_string_new(NULL);

    for (unsigned i = 0; i < 2000; i++) {
        g_string_append_printf(batch, "outw 0x%x 0x%x\ninw 0x%x\n", i, i, i);
    }
    g_assert_true(gw_qt_send_raw(qt, batch->str, batch->len, &err));
    for (unsigned i = 0; i < 2000; i++) {
        g_autofree char *a = gw_qt_read_reply(qt, &err);
        g_autofree char *b = gw_qt_read_reply(qt, &err);
        g_autofree char *want =
            g_strdup_printf("OK 0x%04x", (0x12345678u ^ i) & 0xffff);
        g_assert_no_error(err);
        g_assert_cmpstr(a, ==, "OK");
        g_assert_cmpstr(b, ==, want);
    }
    g_assert_cmpuint(n_ports(f), ==, 4000);
    assert_port(f, 3998, 1999, 2, 1999, true);
}

/*
 * A client that does not read while asking for 32 MiB of replies: the
 * server stops taking commands, and serves them all once it reads.
 */
static void
test_conn_backpressure(Fixture *f, gconstpointer data)
{
    g_autoptr(GwQt) qt = connect_client(f);
    g_autoptr(GError) err = NULL;
    g_autoptr(GString) batch = g_string_new(NULL);
    g_autofree char *want = NULL;

    gw_qt_memset(qt, RAM_BASE, 0x3c, RAM_SIZE);
    want = g_strnfill(2 + 2 * RAM_SIZE, 'c');
    memcpy(want, "0x", 2);
    for (size_t i = 2; i < 2 + 2 * RAM_SIZE; i += 2) {
        want[i] = '3';
    }
    for (unsigned i = 0; i < 256; i++) {
        g_string_append_printf(batch, "read 0x%x 0x%x\n", RAM_BASE, RAM_SIZE);
    }
    g_assert_true(gw_qt_send_raw(qt, batch->str, batch->len, &err));
    for (unsigned i = 0; i < 256; i++) {
        g_autofree char *r = gw_qt_read_reply(qt, &err);
        g_assert_no_error(err);
        g_assert_true(g_str_has_prefix(r, "OK "));
        g_assert_cmpstr(r + 3, ==, want);
    }
    expect(qt, "endianness", "OK little");
}

/* A second client waits for the first, then gets the server. */
static void
test_conn_one_client_at_a_time(Fixture *f, gconstpointer data)
{
    g_autoptr(GwQt) a = connect_client(f);
    g_autoptr(GwQt) b = connect_client(f);
    g_autoptr(GError) err = NULL;
    g_autofree char *r = NULL;

    g_assert_true(gw_qt_send_raw(b, "outb 0x81 2\n", 12, &err));
    expect(a, "outb 0x80 1", "OK");
    assert_port(f, 0, 0x80, 1, 1, true);
    g_clear_pointer(&a, gw_qt_free);
    r = gw_qt_read_reply(b, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(r, ==, "OK");
    assert_port(f, 1, 0x81, 1, 2, true);
}

/* A client that leaves mid-command leaves a working server. */
static void
test_conn_client_vanishes(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;

    for (unsigned i = 0; i < 3; i++) {
        g_autoptr(GwQt) qt = connect_client(f);
        g_assert_true(
            gw_qt_send_raw(qt, "read 0x100000 0x10000\nrea", 25, &err));
    }
    g_autoptr(GwQt) qt = connect_client(f);
    expect(qt, "endianness", "OK little");
}

/* ---- the socket ---- */

static void
test_socket_is_0600(Fixture *f, gconstpointer data)
{
    struct stat st;

    g_assert_cmpint(stat(f->path, &st), ==, 0);
    g_assert_true(S_ISSOCK(st.st_mode));
    g_assert_cmpint(st.st_mode & 0777, ==, 0600);
}

static void
test_socket_in_use_refused(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQtest) q2 = gw_qtest_new(f->path, &fake_ops, f, &err);

    g_assert_null(q2);
    g_assert_error(err, GW_ERROR, GW_ERROR_EXISTS);
    g_assert_nonnull(strstr(err->message, "in use"));
}

static void
test_socket_not_a_socket_refused(void)
{
    g_autofree char *dir = g_dir_make_tmp("godwit-qtest-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "file", NULL);
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQtest) q = NULL;

    g_assert_true(g_file_set_contents(path, "keep", -1, NULL));
    q = gw_qtest_new(path, &fake_ops, NULL, &err);
    g_assert_null(q);
    g_assert_error(err, GW_ERROR, GW_ERROR_EXISTS);
    g_assert_true(g_file_test(path, G_FILE_TEST_IS_REGULAR));
    g_unlink(path);
    g_rmdir(dir);
}

/* A socket file left by a crash (nobody listening) is replaced. */
static void
test_socket_stale_replaced(void)
{
    g_autofree char *dir = g_dir_make_tmp("godwit-qtest-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "s", NULL);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQtest) q = NULL;
    gw_autofd fd = socket(AF_UNIX, SOCK_STREAM, 0);

    strcpy(addr.sun_path, path);
    g_assert_cmpint(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    q = gw_qtest_new(path, &fake_ops, NULL, &err);
    g_assert_no_error(err);
    g_clear_pointer(&q, gw_qtest_free);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    g_rmdir(dir);
}

static void
test_socket_path_too_long(void)
{
    g_autofree char *path = g_strnfill(200, 'x');
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQtest) q = gw_qtest_new(path, &fake_ops, NULL, &err);

    g_assert_null(q);
    g_assert_error(err, GW_ERROR, GW_ERROR_INVALID);
}

#define ADD(path, fn) g_test_add(path, Fixture, NULL, setup, fn, teardown)

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    ADD("/qtest/pio/out-sizes-and-values", test_pio_out_sizes_and_values);
    ADD("/qtest/pio/in-formats-like-qemu", test_pio_in_formats_like_qemu);
    ADD("/qtest/mem/sized-access-is-little-endian",
        test_mem_sized_access_is_little_endian);
    ADD("/qtest/mem/unmapped-reads-all-ones", test_mem_unmapped_reads_all_ones);
    ADD("/qtest/mem/read-write-hex", test_mem_read_write_hex);
    ADD("/qtest/mem/base64", test_mem_base64);
    ADD("/qtest/mem/memset", test_mem_memset);
    ADD("/qtest/mem/client-bulk-roundtrip", test_mem_client_bulk_roundtrip);
    ADD("/qtest/mem/bulk-outside-ram-fails", test_mem_bulk_outside_ram_fails);
    ADD("/qtest/misc/endianness-and-clock", test_misc_endianness_and_clock);
    ADD("/qtest/misc/tolerates-cr-and-runs-of-spaces",
        test_misc_tolerates_cr_and_runs_of_spaces);
    ADD("/qtest/irq/not-sent-before-intercept",
        test_irq_not_sent_before_intercept);
    ADD("/qtest/irq/raise-lower-in-order", test_irq_raise_lower_in_order);
    ADD("/qtest/irq/async-from-main-loop", test_irq_async_from_main_loop);
    ADD("/qtest/irq/intercept-reports-lines-already-high",
        test_irq_intercept_reports_lines_already_high);
    ADD("/qtest/irq/intercept-twice", test_irq_intercept_twice);
    ADD("/qtest/irq/intercept-ends-with-client",
        test_irq_intercept_ends_with_client);
    ADD("/qtest/bad/lines-fail-and-connection-survives",
        test_bad_lines_fail_and_connection_survives);
    ADD("/qtest/bad/nul-byte", test_bad_nul_byte);
    ADD("/qtest/bad/random-lines", test_bad_random_lines);
    ADD("/qtest/bad/line-too-long", test_bad_line_too_long);
    ADD("/qtest/bad/longest-line-accepted", test_longest_line_accepted);
    ADD("/qtest/conn/pipelined", test_conn_pipelined);
    ADD("/qtest/conn/backpressure", test_conn_backpressure);
    ADD("/qtest/conn/one-client-at-a-time", test_conn_one_client_at_a_time);
    ADD("/qtest/conn/client-vanishes", test_conn_client_vanishes);
    ADD("/qtest/socket/is-0600", test_socket_is_0600);
    ADD("/qtest/socket/in-use-refused", test_socket_in_use_refused);
    g_test_add_func("/qtest/socket/not-a-socket-refused",
                    test_socket_not_a_socket_refused);
    g_test_add_func("/qtest/socket/stale-replaced", test_socket_stale_replaced);
    g_test_add_func("/qtest/socket/path-too-long", test_socket_path_too_long);
    return g_test_run();
}
