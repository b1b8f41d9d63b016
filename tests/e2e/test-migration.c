/*
 * Live migration between two real godwit processes under --qtest, where
 * the test plays the guest on both sides and the VMM's dirty bitmap is
 * the only tracker: RAM written before and *during* the migration, and
 * device state programmed through the devices' registers, must read back
 * the same on the destination, over every transport.  Failures (a
 * refused manifest, a killed destination, a cut or corrupted stream,
 * migrate_cancel) must leave the source running and unchanged, the
 * destination must never run, and a second migration must succeed.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <glib/gstdio.h>
#include <godwit/boot.h>
#include <godwit/util.h>
#include <godwit/serial.h>
#include <godwit/virtio-pci.h>
#include "qtest-vm.h"
#include "mig-util.h"
#include "mig-proxy.h"
#include "qvirtio.h"
#include "spawn-util.h"

#define T        GW_TEST_VM_WAIT_MS
#define NPAGES   48
#define PAGE     4096
#define HOT_PAGE 0x3000000ull /* rewritten during the migration */
/* The disk both "hosts" share (a disk in memory blocks migration). */
#define SIM sim_arg
static char *sim_arg;
static const char *disk;
#define VDPA "--vdpa=path=@DIR@/vdpa/d0,id=disk0"
#define SLOT 1
/* RAM in use that nobody compares: what makes the first pass take time
 * under max-bandwidth (RAM never written is a few ZERO_RANGE records) */
#define BALLAST      0x2000000ull
#define BALLAST_SIZE (1u << 20)

static uint64_t
page_addr(unsigned i)
{
    return 0x1000000ull + (uint64_t)i * 0x31000; /* 16 MiB .. 25.2 MiB */
}

static void
fill(uint8_t *buf, unsigned seed)
{
    for (unsigned k = 0; k < PAGE; k++) {
        buf[k] = (uint8_t)(seed * 131 + k * 7 + (k >> 8));
    }
}

/* Known patterns in NPAGES pages, plus the pages the tests compare. */
static void
write_patterns(GwQt *qt, unsigned seed)
{
    uint8_t buf[PAGE];

    for (unsigned i = 0; i < NPAGES; i++) {
        fill(buf, seed + i);
        gw_qt_memwrite(qt, page_addr(i), buf, PAGE);
    }
}

static void
write_ballast(GwQt *qt)
{
    const unsigned chunk = 64 << 10;
    g_autofree uint8_t *buf = g_malloc(chunk);

    for (unsigned off = 0; off < BALLAST_SIZE; off += chunk) {
        for (unsigned p = 0; p < chunk; p += PAGE) {
            fill(buf + p, 5000 + (off + p) / PAGE);
        }
        gw_qt_memwrite(qt, BALLAST + off, buf, chunk);
    }
}

/* Serial line settings and scratch, ACPI enables: a guest's writes. */
static void
program_platform(GwQt *qt)
{
    gw_qt_outb(qt, GW_SERIAL_COM1_BASE + 3, 0x80); /* DLAB */
    gw_qt_outb(qt, GW_SERIAL_COM1_BASE + 0, 0x0c); /* 9600 baud */
    gw_qt_outb(qt, GW_SERIAL_COM1_BASE + 1, 0x00);
    gw_qt_outb(qt, GW_SERIAL_COM1_BASE + 3, 0x1b); /* 8E1, DLAB off */
    gw_qt_outb(qt, GW_SERIAL_COM1_BASE + 7, 0x5a); /* scratch */
    gw_qt_outb(qt, GW_SERIAL_COM1_BASE + 4, 0x0b); /* MCR */
    gw_qt_outw(qt, GW_ACPI_PM_BASE + 2, 0x0100);   /* PM1 EN: PWRBTN */
    gw_qt_outb(qt, GW_ACPI_GPE0_BASE + 2, 0x02);   /* GPE0 EN: hotplug */
}

/* Everything the guest can read back of the platform devices. */
static GString *
read_platform(GwQt *qt)
{
    GString *s = g_string_new(NULL);

    for (unsigned r = 1; r < 8; r++) {
        if (r != 2) { /* IIR reads have side effects on THRE */
            g_string_append_printf(s, "com1+%u=%02x ", r,
                                   gw_qt_inb(qt, GW_SERIAL_COM1_BASE + r));
        }
    }
    gw_qt_outb(qt, GW_SERIAL_COM1_BASE + 3, 0x9b);
    g_string_append_printf(s, "dll=%02x dlm=%02x ",
                           gw_qt_inb(qt, GW_SERIAL_COM1_BASE + 0),
                           gw_qt_inb(qt, GW_SERIAL_COM1_BASE + 1));
    gw_qt_outb(qt, GW_SERIAL_COM1_BASE + 3, 0x1b);
    g_string_append_printf(s, "pm1en=%04x pm1cnt=%04x gpe0en=%02x ",
                           gw_qt_inw(qt, GW_ACPI_PM_BASE + 2),
                           gw_qt_inw(qt, GW_ACPI_PM_BASE + 4),
                           gw_qt_inb(qt, GW_ACPI_GPE0_BASE + 2));
    return s;
}

/* The MSI-X table's guest-physical address, from its capability. */
static uint64_t
msix_table(GwQt *qt)
{
    unsigned bdf = SLOT << 3;
    unsigned cap = gw_qt_pci_read(qt, bdf, 0x34, 1);

    while (cap && gw_qt_pci_read(qt, bdf, cap, 1) != 0x11) {
        cap = gw_qt_pci_read(qt, bdf, cap + 1, 1);
    }
    g_assert_cmpuint(cap, !=, 0);
    uint32_t table = gw_qt_pci_read(qt, bdf, cap + 4, 4);
    uint64_t bar = gw_qt_pci_read(qt, bdf, 0x10 + 4 * (table & 7), 4);

    if ((bar & 6) == 4) { /* 64-bit */
        bar |= (uint64_t)gw_qt_pci_read(qt, bdf, 0x14 + 4 * (table & 7), 4)
               << 32;
    }
    g_assert_cmpuint(bar & ~0xfull, !=, 0);
    return (bar & ~0xfull) + (table & ~7u);
}

/* A vDPA disk's function set up as far as a driver goes before
 * DRIVER_OK: features, a queue's size and rings, two MSI-X entries. */
static void
program_vdpa(GwQt *qt)
{
    g_autoptr(GError) err = NULL;
    GwQVirtio *vd = gw_qvirtio_start(qt, SLOT, 1ull << 32 | 1ull << 9, &err);
    uint64_t t;

    g_assert_no_error(err);
    g_assert_true(gw_qvirtio_setup_vq(vd, 0, &err));
    g_assert_no_error(err);
    gw_qvirtio_free(vd); /* the test's handle only: the device stays */
    t = msix_table(qt);
    for (unsigned v = 0; v < 2; v++) {
        gw_qt_writel(qt, t + 16 * v + 0, 0xfee00000 | v << 12);
        gw_qt_writel(qt, t + 16 * v + 4, 0);
        gw_qt_writel(qt, t + 16 * v + 8, 0x4030 + v);
        gw_qt_writel(qt, t + 16 * v + 12, v); /* vector 1 stays masked */
    }
    g_assert_cmphex(gw_qt_readl(qt, t + 16 + 8), ==, 0x4031); /* it took */
}

/* The function's config space and its virtio common configuration, as
 * a driver reads them (the same writes of queue_select on both sides). */
static GString *
read_vdpa(GwQt *qt)
{
    unsigned bdf = SLOT << 3;
    GString *s = g_string_new(NULL);
    uint64_t bar, common;

    for (unsigned off = 0; off < 256; off += 4) {
        g_string_append_printf(s, "%08x", gw_qt_pci_read(qt, bdf, off, 4));
    }
    bar = (gw_qt_pci_read(qt, bdf, 0x10, 4) & ~0xfull) |
          (uint64_t)gw_qt_pci_read(qt, bdf, 0x14, 4) << 32;
    common = bar + GW_VIRTIO_PCI_COMMON;
    g_assert_cmpuint(bar, !=, 0);
    for (unsigned sel = 0; sel < 2; sel++) {
        gw_qt_writel(qt, common + 0x08, sel); /* driver_feature_select */
        g_string_append_printf(s, " gf%u=%08x", sel,
                               gw_qt_readl(qt, common + 0x0c));
    }
    g_string_append_printf(s, " status=%02x", gw_qt_readb(qt, common + 0x14));
    gw_qt_writew(qt, common + 0x16, 0); /* queue_select */
    for (unsigned off = 0x18; off < 0x38; off += 2) {
        g_string_append_printf(s, " q0+%x=%04x", off,
                               gw_qt_readw(qt, common + off));
    }
    for (unsigned off = 0; off < 32; off += 4) {
        g_string_append_printf(s, " msix+%u=%08x", off,
                               gw_qt_readl(qt, msix_table(qt) + off));
    }
    return s;
}

/* All of a godwit's guest RAM, read through /proc/PID/mem (the test
 * runs as the same user): its memfd mapping is named godwit-ram. */
static uint8_t *
whole_ram(GPid pid, gsize *len)
{
    g_autofree char *maps = NULL, *path = g_strdup_printf("/proc/%d/mem", pid);
    g_autofree char *mpath = g_strdup_printf("/proc/%d/maps", pid);
    g_auto(GStrv) lines = NULL;
    uint64_t start = 0, end = 0;
    uint8_t *buf;
    int fd;

    g_assert_true(g_file_get_contents(mpath, &maps, NULL, NULL));
    lines = g_strsplit(maps, "\n", -1);
    for (guint i = 0; lines[i] && !end; i++) {
        if (strstr(lines[i], "memfd:godwit-ram")) {
            g_assert_cmpint(
                sscanf(lines[i], "%" SCNx64 "-%" SCNx64, &start, &end), ==, 2);
        }
    }
    g_assert_cmpuint(end, >, start);
    *len = end - start;
    buf = g_malloc(*len);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, buf, *len, (off_t)start), ==, (ssize_t)*len);
    close(fd);
    return buf;
}

/* Every byte of guest RAM the same on both sides. */
static void
assert_whole_ram_equal(GwTestVm *a, GwTestVm *b)
{
    gsize la, lb;
    g_autofree uint8_t *x = whole_ram(a->pid, &la);
    g_autofree uint8_t *y = whole_ram(b->pid, &lb);

    g_assert_cmpuint(la, ==, lb);
    if (memcmp(x, y, la)) {
        gsize off = 0;
        while (x[off] == y[off]) {
            off++;
        }
        g_error("guest RAM differs at memfd offset 0x%" G_GSIZE_MODIFIER "x",
                off);
    }
}

static void
assert_ram_equal(GwQt *a, GwQt *b)
{
    uint8_t x[PAGE], y[PAGE];

    for (unsigned i = 0; i < NPAGES; i++) {
        gw_qt_memread(a, page_addr(i), x, PAGE);
        gw_qt_memread(b, page_addr(i), y, PAGE);
        g_assert_cmpmem(x, PAGE, y, PAGE);
    }
    gw_qt_memread(a, HOT_PAGE, x, PAGE);
    gw_qt_memread(b, HOT_PAGE, y, PAGE);
    g_assert_cmpmem(x, PAGE, y, PAGE);
    /* A page nobody wrote is zero on both. */
    gw_qt_memread(b, 0x2800000, y, PAGE);
    memset(x, 0, PAGE);
    g_assert_cmpmem(x, PAGE, y, PAGE);
}

/* ---- processes ---- */

static void
start_src(GwTestVm *vm)
{
    const char *args[] = {SIM, VDPA, NULL};

    gw_test_vm_start(vm, args);
}

/* A destination with the source's command line plus `incoming`. */
static void
start_dst(GwTestVm *vm, const char *incoming, const char *memory)
{
    const char *args[] = {
        SIM,    VDPA, "--incoming", incoming, memory ? "--memory" : NULL,
        memory, NULL};

    gw_test_vm_start(vm, args);
}

/* ---- the migration itself ---- */

/*
 * Source programmed, migrated to `uri` with pause-before-switchover; the
 * test keeps rewriting HOT_PAGE (and one pattern page) until the source
 * stops in pre-switchover, then lets it finish.
 */
static void
migrate_live(GwTestVm *src, GwTestVm *dst, const char *uri)
{
    g_autofree char *args = g_strdup_printf("{\"uri\": \"%s\"}", uri);
    uint8_t buf[PAGE];
    unsigned writes = 0;

    drain_events(src);
    set_caps(src, true);
    /* Slow enough that the test's writes land during pre-copy: the
     * first pass (the ballast, the patterns) takes about a second. */
    qmp_void(src, "migrate-set-parameters", "{\"max-bandwidth\": 1000000}");
    qmp_void(src, "migrate", args);
    for (;;) {
        g_autoptr(json_object) r = query_migrate(src);
        const char *s = status_of(r, "status");
        if (g_str_equal(s, "pre-switchover")) {
            break;
        }
        g_assert_cmpstr(s, !=, "failed");
        fill(buf, 1000 + writes++);
        gw_qt_memwrite(src->qt, HOT_PAGE, buf, PAGE);
        gw_qt_memwrite(src->qt, page_addr(writes % NPAGES), buf, PAGE);
    }
    g_test_message("%u page writes during the migration", writes);
    g_assert_cmpuint(writes, >, 1);
    qmp_void(src, "migrate-continue", "{\"state\": \"pre-switchover\"}");
    wait_status(src, "completed");
}

static void
assert_same_guest(GwTestVm *src, GwTestVm *dst)
{
    g_autoptr(GString) a = read_platform(src->qt);
    g_autoptr(GString) b = read_platform(dst->qt);
    g_autoptr(GString) va = read_vdpa(src->qt);
    g_autoptr(GString) vb = read_vdpa(dst->qt);

    assert_ram_equal(src->qt, dst->qt);
    assert_whole_ram_equal(src, dst);
    g_assert_cmpstr(a->str, ==, b->str);
    g_assert_cmpstr(va->str, ==, vb->str);
}

static void
prepare_source(GwTestVm *src)
{
    write_patterns(src->qt, 7);
    write_ballast(src->qt);
    program_platform(src->qt);
    program_vdpa(src->qt);
}

static void
check_completed(GwTestVm *src, GwTestVm *dst)
{
    g_autofree char *s = NULL, *d = NULL;
    g_autoptr(json_object) r = poll_status(src, "completed");
    json_object *ram = json_object_object_get(r, "ram");

    g_assert_nonnull(ram);
    g_assert_cmpint(json_object_get_int64(json_object_object_get(ram, "total")),
                    ==, 64 << 20);
    g_assert_cmpint(
        json_object_get_int64(json_object_object_get(ram, "normal")), >=,
        NPAGES);
    s = run_state(src);
    g_assert_cmpstr(s, ==, "postmigrate");
    json_put_ok(poll_status(dst, "completed"));
    d = run_state(dst);
    g_assert_cmpstr(d, ==, "running");
}

static void
test_unix(void)
{
    GwTestVm src, dst;
    g_autofree char *uri = NULL;

    start_src(&src);
    start_dst(&dst, "unix:@DIR@/mig.sock", NULL);
    set_caps(&dst, false);
    uri = g_strdup_printf("unix:%s/mig.sock", dst.dir);
    prepare_source(&src);
    migrate_live(&src, &dst, uri);
    check_completed(&src, &dst);
    assert_same_guest(&src, &dst);
    gw_test_vm_stop(&src);
    gw_test_vm_stop(&dst);
}

static int
free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    g_assert_cmpint(bind(fd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
    g_assert_cmpint(getsockname(fd, (struct sockaddr *)&a, &len), ==, 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void
test_tcp(void)
{
    GwTestVm src, dst;
    int port = free_port();
    g_autofree char *in = g_strdup_printf("tcp:127.0.0.1:%d", port);

    start_src(&src);
    start_dst(&dst, in, NULL);
    set_caps(&dst, false);
    prepare_source(&src);
    migrate_live(&src, &dst, in);
    check_completed(&src, &dst);
    assert_same_guest(&src, &dst);
    gw_test_vm_stop(&src);
    gw_test_vm_stop(&dst);
}

/* libvirt's way: both ends of a socket pair handed over with getfd. */
static void
test_fd(void)
{
    GwTestVm src, dst;
    int sv[2];

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==,
                    0);
    start_src(&src);
    start_dst(&dst, "defer", NULL);
    json_put_ok(gw_test_vm_qmp(&src, "getfd", "{\"fdname\": \"mig\"}", sv[0]));
    json_put_ok(gw_test_vm_qmp(&dst, "getfd", "{\"fdname\": \"mig\"}", sv[1]));
    close(sv[0]);
    close(sv[1]);
    set_caps(&dst, false);
    qmp_void(&dst, "migrate-incoming", "{\"uri\": \"fd:mig\"}");
    prepare_source(&src);
    migrate_live(&src, &dst, "fd:mig");
    check_completed(&src, &dst);
    assert_same_guest(&src, &dst);
    gw_test_vm_stop(&src);
    gw_test_vm_stop(&dst);
}

/* Saved from a paused VM into a file, restored by a new process: it
 * ends paused, as the source was. */
static void
test_file(void)
{
    GwTestVm src, dst;
    g_autofree char *path = NULL, *uri = NULL, *in = NULL, *st = NULL;

    start_src(&src);
    prepare_source(&src);
    qmp_void(&src, "stop", NULL);
    path = g_build_filename(src.dir, "vm.state", NULL);
    uri = g_strdup_printf("{\"uri\": \"file:%s\"}", path);
    qmp_void(&src, "migrate", uri);
    json_put_ok(poll_status(&src, "completed"));
    in = g_strdup_printf("file:%s", path);
    start_dst(&dst, in, NULL);
    json_put_ok(poll_status(&dst, "completed"));
    st = run_state(&dst);
    g_assert_cmpstr(st, ==, "paused");
    assert_same_guest(&src, &dst);
    g_unlink(path);
    gw_test_vm_stop(&src);
    gw_test_vm_stop(&dst);
}

/* ---- RAM nobody wrote ---- */

/* Bytes the guest RAM memfd of `pid` holds (64 MiB in size). */
static uint64_t
ram_allocated(GPid pid)
{
    g_autofree char *dir = g_strdup_printf("/proc/%d/fd", pid);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    g_assert_nonnull(d);
    while ((name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autofree char *link = g_file_read_link(path, NULL);
        struct stat st;
        if (link && g_str_has_prefix(link, "/memfd:godwit-ram") &&
            stat(path, &st) == 0) {
            return (uint64_t)st.st_blocks * 512;
        }
    }
    g_assert_not_reached();
}

/*
 * The source's never-written RAM goes as ZERO_RANGE records: the
 * destination allocates no more RAM than the source holds, and a page
 * the destination held before (here written by the test while it waited
 * in inmigrate) that is a hole on the source reads zero afterwards.
 */
static void
test_holes(void)
{
    GwTestVm src, dst;
    g_autofree char *uri = NULL;
    uint8_t junk[PAGE], got[PAGE], zero[PAGE] = {0};
    uint64_t src_bytes, dst_bytes, dup;

    start_src(&src);
    start_dst(&dst, "unix:@DIR@/mig.sock", NULL);
    set_caps(&dst, false);
    prepare_source(&src);
    memset(junk, 0xa5, PAGE);
    gw_qt_memwrite(dst.qt, 0x3800000, junk, PAGE); /* a hole on the source */
    qmp_void(&src, "stop", NULL);
    set_caps(&src, false);
    qmp_void(&src, "migrate-set-parameters", "{\"max-bandwidth\": 0}");
    uri = g_strdup_printf("{\"uri\": \"unix:%s/mig.sock\"}", dst.dir);
    qmp_void(&src, "migrate", uri);
    g_autoptr(json_object) r = poll_status(&src, "completed");
    json_put_ok(poll_status(&dst, "completed"));
    dup = (uint64_t)json_object_get_int64(
        json_object_object_get(json_object_object_get(r, "ram"), "duplicate"));
    src_bytes = ram_allocated(src.pid);
    dst_bytes = ram_allocated(dst.pid);
    g_test_message("source holds %" G_GUINT64_FORMAT
                   " KiB, destination %" G_GUINT64_FORMAT
                   " KiB, %" G_GUINT64_FORMAT " zero pages",
                   src_bytes >> 10, dst_bytes >> 10, dup);
    g_assert_cmpuint(src_bytes, <, 8 << 20); /* of 64 MiB */
    g_assert_cmpuint(dst_bytes, <=, src_bytes + PAGE);
    g_assert_cmpuint(dup * PAGE, >=, (64u << 20) - src_bytes);
    gw_qt_memread(dst.qt, 0x3800000, got, PAGE);
    g_assert_cmpmem(got, PAGE, zero, PAGE);
    assert_same_guest(&src, &dst);
    gw_test_vm_stop(&src);
    gw_test_vm_stop(&dst);
}

/* ---- failures: the source runs on, unchanged; a retry succeeds ---- */

typedef struct {
    GString *platform, *vdpa;
    uint8_t *ram; /* the pattern pages and HOT_PAGE */
} Snapshot;

static void
snapshot(GwQt *qt, Snapshot *s)
{
    s->platform = read_platform(qt);
    s->vdpa = read_vdpa(qt);
    s->ram = g_malloc((NPAGES + 1) * PAGE);
    for (unsigned i = 0; i < NPAGES; i++) {
        gw_qt_memread(qt, page_addr(i), s->ram + i * PAGE, PAGE);
    }
    gw_qt_memread(qt, HOT_PAGE, s->ram + NPAGES * PAGE, PAGE);
}

static void
snapshot_free(Snapshot *s)
{
    g_string_free(s->platform, TRUE);
    g_string_free(s->vdpa, TRUE);
    g_free(s->ram);
}

static void
assert_unchanged(GwQt *qt, Snapshot *before)
{
    Snapshot now;

    snapshot(qt, &now);
    g_assert_cmpstr(now.platform->str, ==, before->platform->str);
    g_assert_cmpstr(now.vdpa->str, ==, before->vdpa->str);
    g_assert_cmpmem(now.ram, (NPAGES + 1) * PAGE, before->ram,
                    (NPAGES + 1) * PAGE);
    snapshot_free(&now);
    snapshot_free(before);
}

/* After a failure: failed/cancelled with a reason, running. */
static void
assert_source_ok(GwTestVm *src, const char *status, const char *reason)
{
    g_autoptr(json_object) r = poll_status(src, status);
    g_autofree char *st = run_state(src);
    const char *desc = status_of(r, "error-desc");

    g_assert_cmpstr(st, ==, "running");
    g_assert_nonnull(desc);
    g_test_message("source: %s: %s", status, desc);
    if (reason) {
        g_assert_nonnull(strstr(desc, reason));
    }
}

/* A second migration, to a fresh destination, succeeds. */
static void
retry(GwTestVm *src)
{
    GwTestVm dst;
    g_autofree char *uri = NULL;

    start_dst(&dst, "unix:@DIR@/mig.sock", NULL);
    set_caps(&dst, false);
    uri = g_strdup_printf("unix:%s/mig.sock", dst.dir);
    migrate_live(src, &dst, uri);
    check_completed(src, &dst);
    assert_same_guest(src, &dst);
    gw_test_vm_stop(&dst);
}

static void
test_manifest_mismatch(void)
{
    GwTestVm src, dst;
    g_autofree char *uri = NULL;
    Snapshot before;

    start_src(&src);
    start_dst(&dst, "unix:@DIR@/mig.sock", "size=128M");
    prepare_source(&src);
    snapshot(src.qt, &before);
    set_caps(&src, false);
    uri = g_strdup_printf("{\"uri\": \"unix:%s/mig.sock\"}", dst.dir);
    qmp_void(&src, "migrate", uri);
    assert_source_ok(&src, "failed", "memory size");
    reap(&dst, 1);
    assert_unchanged(src.qt, &before);
    retry(&src);
    gw_test_vm_stop(&src);
}

/* Starts a slow migration to a fresh destination; returns at `phase`
 * ("active" or "pre-switchover"), the test having written RAM. */
static void
start_slow(GwTestVm *src, GwTestVm *dst, const char *phase)
{
    g_autofree char *uri = NULL;

    start_dst(dst, "unix:@DIR@/mig.sock", NULL);
    set_caps(dst, false);
    drain_events(src);
    set_caps(src, g_str_equal(phase, "pre-switchover"));
    /* The first pass (the ballast, the patterns) takes ~2 s at this. */
    qmp_void(src, "migrate-set-parameters", "{\"max-bandwidth\": 500000}");
    uri = g_strdup_printf("{\"uri\": \"unix:%s/mig.sock\"}", dst->dir);
    qmp_void(src, "migrate", uri);
    wait_status(src, phase);
}

typedef enum { KILL_DST, CANCEL } Failure;

static void
fail_in(const char *phase, Failure how)
{
    GwTestVm src, dst;
    Snapshot before;

    start_src(&src);
    prepare_source(&src);
    snapshot(src.qt, &before);
    start_slow(&src, &dst, phase);
    if (how == KILL_DST) {
        kill(dst.pid, SIGKILL);
        if (g_str_equal(phase, "pre-switchover")) {
            qmp_void(&src, "migrate-continue",
                     "{\"state\": \"pre-switchover\"}");
        }
        assert_source_ok(&src, "failed", NULL);
        reap_killed(&dst);
    } else {
        qmp_void(&src, "migrate_cancel", NULL);
        assert_source_ok(&src, "cancelled", "cancelled");
        reap(&dst, 1); /* the stream ended early: it never runs */
    }
    assert_unchanged(src.qt, &before);
    qmp_void(&src, "migrate-set-parameters", "{\"max-bandwidth\": 0}");
    retry(&src);
    gw_test_vm_stop(&src);
}

static void
test_kill_dst_active(void)
{
    fail_in("active", KILL_DST);
}

static void
test_kill_dst_switchover(void)
{
    fail_in("pre-switchover", KILL_DST);
}

static void
test_cancel_active(void)
{
    fail_in("active", CANCEL);
}

static void
test_cancel_switchover(void)
{
    fail_in("pre-switchover", CANCEL);
}

/* The device set must not change under a running migration. */
static void
test_hotplug_refused(void)
{
    GwTestVm src, dst;
    g_autofree char *cls = NULL, *desc = NULL, *cls2 = NULL, *desc2 = NULL;
    g_autofree char *add = NULL;

    start_src(&src);
    prepare_source(&src);
    qmp_void(&src, "x-godwit-vdpa-sim-add",
             "{\"name\": \"d1\", \"mgmtdev\": \"vdpasim_blk\"}");
    start_slow(&src, &dst, "active");
    add = g_strdup_printf("{\"path\": \"%s/vdpa/d1\", \"id\": \"disk1\"}",
                          src.dir);
    gw_test_vm_qmp_err(&src, "x-godwit-vdpa-add", add, &cls, &desc);
    g_assert_cmpstr(desc, ==, "device_add not allowed while migrating");
    gw_test_vm_qmp_err(&src, "device_del", "{\"id\": \"disk0\"}", &cls2,
                       &desc2);
    g_assert_cmpstr(desc2, ==, "device_del not allowed while migrating");
    qmp_void(&src, "migrate_cancel", NULL);
    assert_source_ok(&src, "cancelled", "cancelled");
    reap(&dst, 1);
    /* Once it is over, hotplug works again. */
    json_put_ok(gw_test_vm_qmp_ok(&src, "x-godwit-vdpa-add", add));
    gw_test_vm_stop(&src);
}

/* The guest starts its vDPA disk during pre-copy: what the device writes
 * could not be tracked, so the migration stops, and later ones are
 * refused up front with the reason in blocked-reasons. */
static void
test_blocked_midway(void)
{
    GwTestVm src, dst;
    g_autofree char *cls2 = NULL, *desc2 = NULL;
    g_autoptr(json_object) info = NULL;
    uint64_t bar, common;
    json_object *reasons;

    start_src(&src);
    prepare_source(&src);
    start_slow(&src, &dst, "active");
    bar = gw_qt_pci_read(src.qt, SLOT << 3, 0x10, 4) & ~0xfull;
    common = bar + GW_VIRTIO_PCI_COMMON;
    gw_qt_writeb(src.qt, common + 0x14,
                 gw_qt_readb(src.qt, common + 0x14) | 0x04); /* DRIVER_OK */
    assert_source_ok(&src, "failed",
                     "migration blocked: vDPA device disk0 was started "
                     "during the migration");
    reap(&dst, 1);
    /* Started before a migration begins, the device is no blocker: the
     * next migration puts it on shadow virtqueues and moves it running. */
    info = query_migrate(&src);
    reasons = json_object_object_get(info, "blocked-reasons");
    g_assert_null(reasons);
    qmp_void(&src, "migrate-set-parameters", "{\"max-bandwidth\": 0}");
    retry(&src);
    /* Block migration and postcopy recovery are refused, not ignored. */
    gw_test_vm_qmp_err(&src, "migrate",
                       "{\"uri\": \"unix:/nonexistent\", \"blk\": true}", &cls2,
                       &desc2);
    g_assert_cmpstr(desc2, ==, "migrate: 'blk' is not supported by godwit");
    gw_test_vm_stop(&src);
}

/* MIGRATION_PASS comes once per pass; migrate-continue names the state. */
static void
test_pass_events_and_continue(void)
{
    GwTestVm src, dst;
    g_autofree char *uri = NULL, *cls = NULL, *desc = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) ev = NULL;

    start_src(&src);
    start_dst(&dst, "unix:@DIR@/mig.sock", NULL);
    set_caps(&dst, false);
    drain_events(&src);
    set_caps(&src, true);
    uri = g_strdup_printf("{\"uri\": \"unix:%s/mig.sock\"}", dst.dir);
    qmp_void(&src, "migrate", uri);
    ev = gw_qmp_conn_wait_event(src.c, "MIGRATION_PASS", T, &err);
    g_assert_no_error(err);
    g_assert_cmpint(json_object_get_int(json_object_object_get(
                        json_object_object_get(ev, "data"), "pass")),
                    ==, 1);
    wait_status(&src, "pre-switchover");
    gw_test_vm_qmp_err(&src, "migrate-continue", "{\"state\": \"active\"}",
                       &cls, &desc);
    g_assert_cmpstr(desc, ==,
                    "Migration not in expected state: "
                    "pre-switchover");
    qmp_void(&src, "migrate-continue", "{\"state\": \"pre-switchover\"}");
    wait_status(&src, "completed");
    gw_test_vm_stop(&src);
    gw_test_vm_stop(&dst);
}

/* ---- convergence ---- */

/*
 * The test rewrites 16 pages faster than max-bandwidth lets a pass send
 * them within downtime-limit: pre-copy cannot end.  query-migrate must
 * say so (while it runs on, as QEMU's does), MIGRATION_PASS must count
 * the passes, and migrate_cancel leaves the source running.
 */
static void
test_not_converging(void)
{
    GwTestVm src, dst;
    g_autofree char *uri = NULL;
    g_autofree char *why = NULL;
    gint64 deadline;
    uint8_t buf[PAGE];
    unsigned round = 0;

    start_src(&src);
    start_dst(&dst, "unix:@DIR@/mig.sock", NULL);
    set_caps(&dst, false);
    write_patterns(src.qt, 7);
    drain_events(&src);
    set_caps(&src, false);
    qmp_void(&src, "migrate-set-parameters",
             "{\"max-bandwidth\": 200000, \"downtime-limit\": 20}");
    uri = g_strdup_printf("{\"uri\": \"unix:%s/mig.sock\"}", dst.dir);
    qmp_void(&src, "migrate", uri);
    wait_status(&src, "active");
    deadline = g_get_monotonic_time() + 3 * T * 1000ll;
    while (!why) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        for (unsigned i = 0; i < 16; i++) {
            fill(buf, 9000 + round++);
            gw_qt_memwrite(src.qt, page_addr(i), buf, PAGE);
        }
        g_autoptr(json_object) r = query_migrate(&src);
        g_assert_cmpstr(status_of(r, "status"), ==, "active");
        if (status_of(r, "x-godwit-not-converging")) {
            why = g_strdup(status_of(r, "x-godwit-not-converging"));
        }
    }
    g_test_message("%s", why);
    g_assert_nonnull(strstr(why, "not converging"));
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) pass =
        gw_qmp_conn_wait_event(src.c, "MIGRATION_PASS", T, &err);
    g_assert_no_error(err);
    qmp_void(&src, "migrate_cancel", NULL);
    assert_source_ok(&src, "cancelled", "cancelled");
    reap(&dst, 1);
    gw_test_vm_stop(&src);
}

/* ---- compression and throttle parameters: QEMU's names and ranges ---- */

static const struct {
    const char *args, *desc;
} bad_params[] = {
    {"{\"multifd-zstd-level\": 21}",
     "Parameter 'multifd-zstd-level' expects an integer in the range of 0 "
     "to 20"},
    {"{\"multifd-compression\": \"zlib\"}",
     "multifd-compression 'zlib' is not supported by godwit (none, zstd)"},
    {"{\"multifd-compression\": \"lz4\"}",
     "Parameter 'multifd-compression' does not accept value 'lz4'"},
    {"{\"cpu-throttle-initial\": 0}",
     "Parameter 'cpu-throttle-initial' expects an integer in the range of 1 "
     "to 99"},
    {"{\"cpu-throttle-increment\": 100}",
     "Parameter 'cpu-throttle-increment' expects an integer in the range of "
     "1 to 99"},
    {"{\"cpu-throttle-initial\": 60, \"max-cpu-throttle\": 50}",
     "Parameter 'max-cpu-throttle' expects an integer in the range of 60 to "
     "99"},
};

static int64_t
param_int(GwTestVm *vm, const char *key)
{
    g_autoptr(json_object) p =
        gw_test_vm_qmp_ok(vm, "query-migrate-parameters", NULL);

    return json_object_get_int64(json_object_object_get(p, key));
}

/* QEMU's defaults; a refused set changes nothing (all checked first);
 * a good one shows; auto-converge is a capability now. */
static void
test_parameters(void)
{
    GwTestVm vm;
    g_autoptr(json_object) caps = NULL;

    start_src(&vm);
    g_assert_cmpint(param_int(&vm, "multifd-zstd-level"), ==, 1);
    g_assert_cmpint(param_int(&vm, "cpu-throttle-initial"), ==, 20);
    g_assert_cmpint(param_int(&vm, "cpu-throttle-increment"), ==, 10);
    g_assert_cmpint(param_int(&vm, "max-cpu-throttle"), ==, 99);
    for (size_t i = 0; i < G_N_ELEMENTS(bad_params); i++) {
        g_autofree char *cls = NULL, *desc = NULL;
        gw_test_vm_qmp_err(&vm, "migrate-set-parameters", bad_params[i].args,
                           &cls, &desc);
        g_assert_cmpstr(desc, ==, bad_params[i].desc);
    }
    g_assert_cmpint(param_int(&vm, "cpu-throttle-initial"), ==, 20);
    qmp_void(&vm, "migrate-set-parameters",
             "{\"multifd-compression\": \"zstd\", \"multifd-zstd-level\": "
             "19, \"cpu-throttle-tailslow\": true}");
    g_autoptr(json_object) p =
        gw_test_vm_qmp_ok(&vm, "query-migrate-parameters", NULL);
    g_assert_cmpstr(status_of(p, "multifd-compression"), ==, "zstd");
    g_assert_cmpint(param_int(&vm, "multifd-zstd-level"), ==, 19);
    g_assert_true(json_object_get_boolean(
        json_object_object_get(p, "cpu-throttle-tailslow")));
    qmp_void(&vm, "migrate-set-capabilities",
             "{\"capabilities\": [{\"capability\": \"auto-converge\", "
             "\"state\": true}]}");
    caps = gw_test_vm_qmp_ok(&vm, "query-migrate-capabilities", NULL);
    g_assert_nonnull(strstr(json_object_to_json_string(caps),
                            "\"auto-converge\", \"state\": true"));
    gw_test_vm_stop(&vm);
}

/* ---- auto-converge ---- */

#define AC_PAGES 256 /* the working set the simulated guest cycles over */
#define AC_RATE  500 /* pages/s it dirties when not throttled */
#define AC_PAGE  0x1c00000ull

/*
 * The test plays the guest's vCPUs, as everywhere under qtest: it
 * dirties AC_RATE pages a second over AC_PAGES pages, which no pass at
 * max-bandwidth (500 kB/s, 122 pages/s) can get under downtime-limit,
 * and it obeys the throttle the source reports as real vCPUs do (they
 * run 100 - p % of the time: tests/e2e/test-migration-kvm.c has the real
 * ones).  Without auto-converge that migration never ends; with it the
 * throttle must start at cpu-throttle-initial, rise by the increment
 * until the guest dirties less than the link carries, and the migration
 * completes with every byte of RAM the same.  Convergence is not faked:
 * the sender sees only what the writes dirtied.
 */
static void
test_auto_converge(void)
{
    GwTestVm src, dst;
    g_autofree char *uri = NULL;
    uint8_t buf[PAGE];
    double debt = 0;
    gint64 last = g_get_monotonic_time();
    gint64 deadline = last + 6 * T * 1000ll;
    unsigned next = 0, writes = 0;
    int64_t seen = 0, first = 0;

    start_src(&src);
    start_dst(&dst, "unix:@DIR@/mig.sock", NULL);
    uri = g_strdup_printf("{\"uri\": \"unix:%s/mig.sock\"}", dst.dir);
    set_caps(&dst, false);
    prepare_source(&src);
    drain_events(&src);
    set_caps(&src, true);
    qmp_void(&src, "migrate-set-capabilities",
             "{\"capabilities\": [{\"capability\": \"auto-converge\", "
             "\"state\": true}]}");
    qmp_void(&src, "migrate-set-parameters",
             "{\"max-bandwidth\": 500000, \"cpu-throttle-initial\": 50, "
             "\"cpu-throttle-increment\": 20}");
    qmp_void(&src, "migrate", uri);
    for (;;) {
        g_autoptr(json_object) r = query_migrate(&src);
        const char *st = status_of(r, "status");
        json_object *pct = json_object_object_get(r, "cpu-throttle-percentage");
        gint64 now = g_get_monotonic_time();
        if (g_str_equal(st, "pre-switchover")) {
            break;
        }
        g_assert_cmpstr(st, !=, "failed");
        g_assert_cmpint(now, <, deadline);
        if (pct) {
            int64_t p = json_object_get_int64(pct);
            g_assert_cmpint(p, >=, seen); /* it only rises */
            first = first ? first : p;
            seen = p;
        }
        debt += (now - last) / 1e6 * AC_RATE * (100 - seen) / 100;
        debt = MIN(debt, 16.0); /* a vCPU cannot catch up on lost time */
        last = now;
        for (; debt >= 1; debt -= 1, writes++) {
            fill(buf, 20000 + writes);
            gw_qt_memwrite(src.qt, AC_PAGE + (next++ % AC_PAGES) * PAGE, buf,
                           PAGE);
        }
        g_usleep(2 * 1000); /* the guest's pace, not a wait for a state */
    }
    g_test_message("%u page writes, throttle first %" G_GINT64_FORMAT
                   " %%, last %" G_GINT64_FORMAT " %%",
                   writes, first, seen);
    g_assert_cmpint(first, ==, 50);
    g_assert_cmpint(seen, >=, 70); /* 50 % leaves the guest too fast */
    g_assert_cmpint((seen - 50) % 20 == 0 || seen == 99, ==, TRUE);
    qmp_void(&src, "migrate-continue", "{\"state\": \"pre-switchover\"}");
    wait_status(&src, "completed");
    check_completed(&src, &dst);
    assert_same_guest(&src, &dst);
    g_autoptr(json_object) done = query_migrate(&src);
    g_assert_false(
        json_object_object_get_ex(done, "cpu-throttle-percentage", NULL));
    gw_test_vm_stop(&src);
    gw_test_vm_stop(&dst);
}

/* ---- parallel channels (multifd) ---- */

static void
set_multifd(GwTestVm *vm, unsigned channels)
{
    g_autofree char *args =
        g_strdup_printf("{\"multifd-channels\": %u}", channels);

    qmp_void(vm, "migrate-set-capabilities",
             "{\"capabilities\": [{\"capability\": \"multifd\", "
             "\"state\": true}]}");
    qmp_void(vm, "migrate-set-parameters", args);
}

/* RAM over `channels` connections besides the main one, while the test
 * writes pages: the same checks as a single stream. */
static void
multifd(bool tcp, unsigned channels)
{
    GwTestVm src, dst;
    g_autofree char *uri = NULL;

    start_src(&src);
    if (tcp) {
        uri = g_strdup_printf("tcp:127.0.0.1:%d", free_port());
        start_dst(&dst, uri, NULL);
    } else {
        start_dst(&dst, "unix:@DIR@/mig.sock", NULL);
        uri = g_strdup_printf("unix:%s/mig.sock", dst.dir);
    }
    set_caps(&dst, false);
    set_multifd(&dst, channels);
    set_multifd(&src, channels);
    prepare_source(&src);
    migrate_live(&src, &dst, uri);
    check_completed(&src, &dst);
    assert_same_guest(&src, &dst);
    gw_test_vm_stop(&src);
    gw_test_vm_stop(&dst);
}

static void
test_multifd_2(void)
{
    multifd(false, 2);
}

static void
test_multifd_4(void)
{
    multifd(true, 4);
}

/* A source with multifd and a destination without: refused in words. */
static void
test_multifd_one_side(void)
{
    GwTestVm src, dst;
    g_autofree char *uri = NULL;
    Snapshot before;

    start_src(&src);
    start_dst(&dst, "unix:@DIR@/mig.sock", NULL);
    prepare_source(&src);
    snapshot(src.qt, &before);
    set_caps(&src, false);
    set_multifd(&src, 2);
    uri = g_strdup_printf("{\"uri\": \"unix:%s/mig.sock\"}", dst.dir);
    qmp_void(&src, "migrate", uri);
    assert_source_ok(&src, "failed", "multifd capability");
    reap(&dst, 1);
    assert_unchanged(src.qt, &before);
    gw_test_vm_stop(&src);
}

/* ---- multifd-compression zstd ---- */

static void
set_zstd(GwTestVm *vm, unsigned level)
{
    g_autofree char *args = g_strdup_printf(
        "{\"multifd-compression\": \"zstd\", \"multifd-zstd-level\": %u}",
        level);

    qmp_void(vm, "migrate-set-parameters", args);
}

static int64_t
ram_member(json_object *r, const char *key)
{
    json_object *ram = json_object_object_get(r, "ram");

    g_assert_nonnull(ram);
    return json_object_get_int64(json_object_object_get(ram, key));
}

/* RAM over 2 zstd channels while the test writes pages: every byte the
 * same, and fewer bytes on the wire than the data pages held (the
 * patterns compress), so the batches did go compressed. */
static void
test_multifd_zstd(void)
{
    GwTestVm src, dst;
    g_autofree char *uri = NULL;

    start_src(&src);
    start_dst(&dst, "unix:@DIR@/mig.sock", NULL);
    uri = g_strdup_printf("unix:%s/mig.sock", dst.dir);
    set_caps(&dst, false);
    set_multifd(&dst, 2);
    set_zstd(&dst, 1);
    set_multifd(&src, 2);
    set_zstd(&src, 3);
    prepare_source(&src);
    migrate_live(&src, &dst, uri);
    check_completed(&src, &dst);
    assert_same_guest(&src, &dst);
    g_autoptr(json_object) r = query_migrate(&src);
    g_test_message("transferred %" G_GINT64_FORMAT " for %" G_GINT64_FORMAT
                   " bytes of data pages",
                   ram_member(r, "transferred"), ram_member(r, "normal-bytes"));
    g_assert_cmpint(ram_member(r, "transferred"), <,
                    ram_member(r, "normal-bytes") / 2);
    gw_test_vm_stop(&src);
    gw_test_vm_stop(&dst);
}

/* Source and destination with different multifd-compression: refused
 * in words before any RAM, the source runs on unchanged. */
static void
test_multifd_zstd_mismatch(gconstpointer data)
{
    bool src_zstd = GPOINTER_TO_INT(data);
    GwTestVm src, dst;
    g_autofree char *uri = NULL;
    Snapshot before;

    start_src(&src);
    start_dst(&dst, "unix:@DIR@/mig.sock", NULL);
    set_caps(&dst, false);
    set_multifd(&dst, 2);
    set_zstd(src_zstd ? &src : &dst, 1);
    prepare_source(&src);
    snapshot(src.qt, &before);
    set_caps(&src, false);
    set_multifd(&src, 2);
    uri = g_strdup_printf("{\"uri\": \"unix:%s/mig.sock\"}", dst.dir);
    qmp_void(&src, "migrate", uri);
    assert_source_ok(&src, "failed",
                     src_zstd ? "multifd-compression is zstd, this "
                                "destination's is none"
                              : "multifd-compression is none, this "
                                "destination's is zstd");
    reap(&dst, 1);
    assert_unchanged(src.qt, &before);
    gw_test_vm_stop(&src);
}

/* ---- a link that breaks: a proxy (mig-proxy.c) between the two ---- */

/* Waits (bounded) until the source has passed over RAM `passes` times. */
static void
wait_passes(GwTestVm *src, int64_t passes)
{
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;

    for (;;) {
        g_autoptr(json_object) r = query_migrate(src);
        json_object *ram = json_object_object_get(r, "ram");
        int64_t n = json_object_get_int64(
            json_object_object_get(ram, "dirty-sync-count"));
        if (n >= passes) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(5 * 1000); /* polling query-migrate, bounded */
    }
}

/*
 * The link breaks (`fault`) in `phase`: "setup" (inside the manifest),
 * "first-pass", "iteration" (a later pass) or "switch-over".  The source
 * must fail with a reason and run on unchanged; the destination must
 * exit 1 without running; a second migration must succeed.
 */
static void
link_fails(const char *phase, LinkFault fault)
{
    GwTestVm src, dst;
    Proxy p = {0};
    Snapshot before;
    g_autofree char *to = NULL, *uri = NULL;
    bool pause = g_str_equal(phase, "switch-over");
    uint8_t buf[PAGE];

    start_src(&src);
    prepare_source(&src);
    snapshot(src.qt, &before);
    start_dst(&dst, "unix:@DIR@/mig.sock", NULL);
    to = g_strdup_printf("%s/mig.sock", dst.dir);
    if (g_str_equal(phase, "setup")) {
        p.auto_at = 40; /* inside the manifest record */
        p.auto_fault = fault;
    }
    proxy_start(&p, src.dir, to);
    drain_events(&src);
    set_caps(&src, pause);
    /* A short downtime-limit: the patterns rewritten during the first
     * pass make a second one (the "iteration"). */
    qmp_void(&src, "migrate-set-parameters",
             "{\"max-bandwidth\": 500000, \"downtime-limit\": 10}");
    uri = g_strdup_printf("{\"uri\": \"unix:%s\"}", p.path);
    qmp_void(&src, "migrate", uri);
    if (g_str_equal(phase, "first-pass")) {
        wait_status(&src, "active");
    } else if (g_str_equal(phase, "iteration")) {
        wait_status(&src, "active");
        for (unsigned i = 0; i < NPAGES; i++) { /* work for pass 2 */
            fill(buf, 500 + i);
            gw_qt_memwrite(src.qt, page_addr(i), buf, PAGE);
        }
        snapshot_free(&before);
        snapshot(src.qt, &before);
        wait_passes(&src, 1);
    } else if (pause) {
        wait_status(&src, "pre-switchover");
    }
    if (!g_str_equal(phase, "setup")) {
        g_atomic_int_set(&p.fault, fault);
    }
    if (pause) {
        qmp_void(&src, "migrate-continue", "{\"state\": \"pre-switchover\"}");
    }
    assert_source_ok(&src, "failed", NULL);
    reap(&dst, 1);
    proxy_stop(&p);
    assert_unchanged(src.qt, &before);
    qmp_void(&src, "migrate-set-parameters",
             "{\"max-bandwidth\": 0, \"downtime-limit\": 300}");
    retry(&src);
    gw_test_vm_stop(&src);
}

/* Waits (bounded) until the source has sent `bytes`. */
static void
wait_transferred(GwTestVm *src, int64_t bytes)
{
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;

    for (;;) {
        g_autoptr(json_object) r = query_migrate(src);
        json_object *ram = json_object_object_get(r, "ram");
        if (json_object_get_int64(json_object_object_get(ram, "transferred")) >=
            bytes) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(5 * 1000); /* polling query-migrate, bounded */
    }
}

/*
 * One multifd channel's connection cut while RAM flows (a proxy in
 * between): the whole migration fails, the source runs on unchanged,
 * the destination exits 1, and a single-stream retry succeeds.
 */
static void
test_multifd_channel_cut(void)
{
    GwTestVm src, dst;
    Proxy p = {.fault_link = 1}; /* the first channel, after the main */
    Snapshot before;
    g_autofree char *to = NULL, *uri = NULL;

    start_src(&src);
    prepare_source(&src);
    snapshot(src.qt, &before);
    start_dst(&dst, "unix:@DIR@/mig.sock", NULL);
    set_multifd(&dst, 2);
    set_multifd(&src, 2);
    to = g_strdup_printf("%s/mig.sock", dst.dir);
    proxy_start(&p, src.dir, to);
    drain_events(&src);
    set_caps(&src, false);
    qmp_void(&src, "migrate-set-parameters", "{\"max-bandwidth\": 500000}");
    uri = g_strdup_printf("{\"uri\": \"unix:%s\"}", p.path);
    qmp_void(&src, "migrate", uri);
    wait_status(&src, "active");
    wait_transferred(&src, 1 << 19); /* RAM flows on the channels */
    g_atomic_int_set(&p.fault, LINK_CUT);
    /* Whichever stream tells the source first gives the reason (the
     * destination's, "migration channel 0: …", when the return path
     * outlives the cut); without the channels nothing would fail. */
    assert_source_ok(&src, "failed", NULL);
    reap(&dst, 1);
    proxy_stop(&p);
    assert_unchanged(src.qt, &before);
    qmp_void(&src, "migrate-set-capabilities",
             "{\"capabilities\": [{\"capability\": \"multifd\", "
             "\"state\": false}]}");
    qmp_void(&src, "migrate-set-parameters", "{\"max-bandwidth\": 0}");
    retry(&src);
    gw_test_vm_stop(&src);
}

static void
test_link(gconstpointer data)
{
    const char *name = data; /* "cut/PHASE" or "corrupt/PHASE" */
    bool cut = g_str_has_prefix(name, "cut/");

    link_fails(strchr(name, '/') + 1, cut ? LINK_CUT : LINK_CORRUPT);
}

/* A saved stream, damaged: the destination refuses it and exits 1. */
static void
restore_damaged(bool truncate)
{
    GwTestVm src, dst;
    g_autofree char *path = NULL, *uri = NULL, *in = NULL;
    g_autofree char *data = NULL;
    gsize len;

    start_src(&src);
    prepare_source(&src);
    qmp_void(&src, "stop", NULL);
    path = g_build_filename(src.dir, "vm.state", NULL);
    uri = g_strdup_printf("{\"uri\": \"file:%s\"}", path);
    qmp_void(&src, "migrate", uri);
    json_put_ok(poll_status(&src, "completed"));
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    if (truncate) {
        len = len * 2 / 3;
    } else {
        data[len / 2] ^= 0x40;
    }
    g_assert_true(g_file_set_contents(path, data, (gssize)len, NULL));
    /* Deferred: read at once, the stream can fail before QMP is up. */
    in = g_strdup_printf("{\"uri\": \"file:%s\"}", path);
    start_dst(&dst, "defer", NULL);
    qmp_void(&dst, "migrate-incoming", in);
    reap(&dst, 1);
    g_unlink(path);
    gw_test_vm_stop(&src);
}

static void
test_corrupt_byte(void)
{
    restore_damaged(false);
}

static void
test_truncated(void)
{
    restore_damaged(true);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    disk = gw_test_disk_path("godwit-mig-disk");
    sim_arg = g_strdup_printf(
        "--vdpa-sim=name=d0,mgmtdev=vdpasim_blk,capacity=1M,backing=%s", disk);
    g_test_add_func("/migration/qtest/unix/ram-and-devices-equal", test_unix);
    g_test_add_func("/migration/qtest/tcp/ram-and-devices-equal", test_tcp);
    g_test_add_func("/migration/qtest/fd/getfd-socket-pair", test_fd);
    g_test_add_func("/migration/qtest/file/paused-vm-saved-and-restored",
                    test_file);
    g_test_add_func("/migration/qtest/zero-range/holes-stay-holes", test_holes);
    g_test_add_func(
        "/migration/qtest/convergence/dirtying-faster-than-max-bandwidth",
        test_not_converging);
    g_test_add_func("/migration/qtest/auto-converge/throttle-rises-until-done",
                    test_auto_converge);
    g_test_add_func("/migration/qtest/parameters/compression-and-throttle",
                    test_parameters);
    g_test_add_func("/migration/qtest/multifd/unix-2-channels", test_multifd_2);
    g_test_add_func("/migration/qtest/multifd/tcp-4-channels", test_multifd_4);
    g_test_add_func("/migration/qtest/multifd/fail/destination-without-multifd",
                    test_multifd_one_side);
    g_test_add_func("/migration/qtest/multifd/fail/one-channel-cut",
                    test_multifd_channel_cut);
    g_test_add_func("/migration/qtest/multifd/zstd/unix-2-channels",
                    test_multifd_zstd);
    g_test_add_data_func(
        "/migration/qtest/multifd/zstd/fail/source-zstd-destination-none",
        GINT_TO_POINTER(1), test_multifd_zstd_mismatch);
    g_test_add_data_func(
        "/migration/qtest/multifd/zstd/fail/source-none-destination-zstd",
        GINT_TO_POINTER(0), test_multifd_zstd_mismatch);
    g_test_add_func("/migration/qtest/fail/manifest-mismatch",
                    test_manifest_mismatch);
    g_test_add_func("/migration/qtest/fail/kill-destination/active",
                    test_kill_dst_active);
    g_test_add_func("/migration/qtest/fail/kill-destination/switch-over",
                    test_kill_dst_switchover);
    g_test_add_func("/migration/qtest/fail/cancel/active", test_cancel_active);
    g_test_add_func("/migration/qtest/fail/cancel/switch-over",
                    test_cancel_switchover);
    g_test_add_func("/migration/qtest/fail/corrupt-byte", test_corrupt_byte);
    g_test_add_func("/migration/qtest/fail/truncated", test_truncated);
    g_test_add_func("/migration/qtest/fail/vdpa-started-during-pre-copy",
                    test_blocked_midway);
    g_test_add_func("/migration/qtest/pass-events-and-migrate-continue",
                    test_pass_events_and_continue);
    g_test_add_func("/migration/qtest/hotplug-refused-while-migrating",
                    test_hotplug_refused);
    static const char *const links[] = {
        "cut/setup",         "cut/first-pass",      "cut/iteration",
        "cut/switch-over",   "corrupt/setup",       "corrupt/first-pass",
        "corrupt/iteration", "corrupt/switch-over",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(links); i++) {
        g_autofree char *path =
            g_strdup_printf("/migration/qtest/fail/link/%s", links[i]);
        g_test_add_data_func(path, links[i], test_link);
    }
    return g_test_run();
}
