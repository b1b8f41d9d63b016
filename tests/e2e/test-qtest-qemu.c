/*
 * The test-side qtest client and virtio driver against QEMU's own qtest
 * server and virtio-blk-pci: proof that they are right before they meet
 * godwit.  QEMU runs a pc machine with the vCPU held (-S; Debian's build
 * has no "qtest" accelerator, and a running TCG CPU would execute the
 * BIOS and program the BARs itself) and a 128 MiB raw disk in slot 3;
 * the workload writes, reads back and compares, reads past the end, and
 * the disk file is checked on the host afterwards.  Skips visibly when
 * QEMU is not installed.
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include "qtest-client.h"
#include "qvirtio.h"
#include "spawn-util.h"

#define T           15000
#define DISK_SIZE   (128 * 1024 * 1024)
#define BLK_SLOT    3
#define SLOT_WINDOW (0xC0000000u + BLK_SLOT * (16u << 20)) /* as qvirtio's */
#define MSI_AT      0x100000u /* a RAM word the "guest" watches */
#define MSI_DATA    0x4041u

typedef struct {
    char *dir, *sock, *disk;
    GPid pid;
    GwQt *qt;
} Qemu;

static bool
qemu_start(Qemu *q)
{
    g_autofree char *qemu = g_find_program_in_path("qemu-system-x86_64");
    g_autoptr(GError) err = NULL;
    g_autofree char *qarg = NULL, *drive = NULL, *dev = NULL;

    if (!qemu) {
        g_test_skip("qemu-system-x86_64 is not installed (apt-get install "
                    "qemu-system-x86)");
        return false;
    }
    q->dir = g_dir_make_tmp("godwit-qtest-qemu-XXXXXX", NULL);
    q->sock = g_build_filename(q->dir, "qtest.sock", NULL);
    q->disk = g_build_filename(q->dir, "disk.raw", NULL);
    g_assert_true(g_file_set_contents(q->disk, "", 0, NULL));
    g_assert_cmpint(truncate(q->disk, DISK_SIZE), ==, 0);
    qarg = g_strdup_printf("unix:%s,server=on,wait=off", q->sock);
    drive = g_strdup_printf("if=none,id=d0,file=%s,format=raw", q->disk);
    dev = g_strdup_printf("virtio-blk-pci,drive=d0,disable-legacy=on,addr=%#x",
                          BLK_SLOT);
    const char *argv[] = {
        qemu,          "-machine", "pc",     "-accel",  "tcg",      "-S",
        "-m",          "128",      "-qtest", qarg,      "-display", "none",
        "-nodefaults", "-drive",   drive,    "-device", dev,        NULL};
    g_assert_true(g_spawn_async(NULL, (char **)argv, NULL,
                                G_SPAWN_DO_NOT_REAP_CHILD |
                                    G_SPAWN_STDOUT_TO_DEV_NULL |
                                    G_SPAWN_STDERR_TO_DEV_NULL,
                                die_with_parent, NULL, &q->pid, &err));
    g_assert_no_error(err);
    q->qt = gw_qt_connect(q->sock, T, &err);
    g_assert_no_error(err);
    return true;
}

static void
qemu_stop(Qemu *q)
{
    g_clear_pointer(&q->qt, gw_qt_free);
    if (q->pid) {
        kill(q->pid, SIGTERM);
        waitpid(q->pid, NULL, 0);
        g_spawn_close_pid(q->pid);
    }
    if (q->dir) {
        g_unlink(q->sock);
        g_unlink(q->disk);
        g_rmdir(q->dir);
    }
    g_free(q->sock);
    g_free(q->disk);
    g_free(q->dir);
}

/*
 * What firmware would do, and godwit's board does for its own devices:
 * every memory BAR sized and placed, naturally aligned, in the slot's
 * window, 64-bit ones below 4 GiB.  qvirtio places only BAR 0; QEMU's
 * virtio-pci has no BAR 0 without legacy, its MSI-X table in BAR 1 and
 * its virtio structures in the 64-bit BAR 4.
 */
static void
place_bars(GwQt *qt, unsigned slot)
{
    unsigned bdf = GW_QT_BDF(0, slot, 0);
    uint32_t next = SLOT_WINDOW;

    for (unsigned bar = 0; bar < 6; bar++) {
        unsigned off = 0x10 + 4 * bar;
        uint32_t size_mask, size;
        bool is64;

        gw_qt_pci_write(qt, bdf, off, 4, 0xffffffff);
        size_mask = gw_qt_pci_read(qt, bdf, off, 4);
        if (size_mask == 0 || (size_mask & 1)) { /* absent, or I/O */
            gw_qt_pci_write(qt, bdf, off, 4, 0);
            continue;
        }
        is64 = (size_mask & 6) == 4;
        size = ~(size_mask & ~0xfu) + 1;
        next = (next + size - 1) & ~(size - 1);
        gw_qt_pci_write(qt, bdf, off, 4, next);
        if (is64) {
            gw_qt_pci_write(qt, bdf, off + 4, 4, 0);
            bar++;
        }
        next += size;
    }
    g_assert_cmpuint(next, <=, SLOT_WINDOW + (16u << 20));
}

/* The workload's three runs are in the disk file; the rest is zero. */
static void
check_disk_file(const char *path)
{
    const uint64_t sectors = DISK_SIZE / 512;
    const uint64_t runs[] = {0, sectors / 2, sectors - 8};
    g_autofree char *data = NULL;
    gsize len;

    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    g_assert_cmpuint(len, ==,
                     DISK_SIZE); /* the read past the end grew nothing */
    for (size_t r = 0; r < G_N_ELEMENTS(runs); r++) {
        const uint8_t *p = (const uint8_t *)data + 512 * runs[r];
        uint8_t want[8 * 512];
        gw_qvirtio_blk_pattern(want, sizeof(want), runs[r]);
        for (size_t i = 0; i < sizeof(want); i++) {
            if (p[i] != want[i]) {
                g_test_message("sector %" G_GUINT64_FORMAT " byte %zu: 0x%02x",
                               runs[r] + i / 512, i % 512, p[i]);
                g_assert_not_reached();
            }
        }
    }
    for (uint64_t s = 8; s < sectors / 2; s += 4099) { /* between runs */
        g_assert_cmpuint(data[512 * s], ==, 0);
    }
}

static void
test_blk_polling(void)
{
    Qemu q = {0};
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQVirtio) vd = NULL;

    if (!qemu_start(&q)) {
        return;
    }
    gw_qt_writel(q.qt, MSI_AT, 0);
    place_bars(q.qt, BLK_SLOT);
    vd = gw_qvirtio_init(q.qt, BLK_SLOT, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(gw_qvirtio_blk_capacity(vd), ==, DISK_SIZE / 512);
    g_assert_true(gw_qvirtio_blk_workload(vd, &err));
    g_assert_no_error(err);
    g_assert_cmphex(gw_qt_readl(q.qt, MSI_AT), ==, 0); /* no vector: no MSI */
    gw_qvirtio_reset(vd);
    check_disk_file(q.disk);
    qemu_stop(&q);
}

/* Completions signalled through MSI-X land in guest RAM as DWORD writes. */
static void
test_blk_msix(void)
{
    Qemu q = {0};
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQVirtio) vd = NULL;

    if (!qemu_start(&q)) {
        return;
    }
    gw_qt_writel(q.qt, MSI_AT, 0);
    place_bars(q.qt, BLK_SLOT);
    vd = gw_qvirtio_init_msix(q.qt, BLK_SLOT, MSI_AT, MSI_DATA, &err);
    g_assert_no_error(err);
    g_assert_cmphex(gw_qt_readl(q.qt, MSI_AT), ==, 0);
    g_assert_true(gw_qvirtio_blk_workload(vd, &err));
    g_assert_no_error(err);
    g_assert_cmphex(gw_qt_readl(q.qt, MSI_AT), ==, MSI_DATA);
    gw_qvirtio_reset(vd);
    check_disk_file(q.disk);
    qemu_stop(&q);
}

/*
 * QEMU's replies are the reference for the server's: the same lines and
 * replies the unit suite (tests/unit/test-qtest.c) asserts of godwit's,
 * where both servers see the same thing.
 */
static void
test_protocol_spot_checks(void)
{
    Qemu q = {0};
    g_autoptr(GError) err = NULL;
    static const struct {
        const char *send, *want;
    } steps[] = {
        {"endianness", "OK little"},
        {"outl 0xcf8 0x80000000", "OK"},
        {"inl 0xcfc", "OK 0x12378086"}, /* i440FX host bridge */
        {"inw 0xcfc", "OK 0x8086"},
        {"inb 0xcfc", "OK 0x0086"},
        {"outb 0x80 0x1ff", "OK"},
        {"write 0x1000 4 0x0102", "OK"}, /* short data: zeroes */
        {"read 0x1000 4", "OK 0x01020000"},
        {"write 0x1000 2 0x0a0b0", "OK"}, /* a lone last digit: zero */
        {"read 0x1000 3", "OK 0x0a0b00"},
        {"write 0x1000 1 0xffee", "OK"}, /* longer: cut */
        {"read 0x1000 2", "OK 0xff0b"},
        {"b64write 0x1000 4 AQIDBA==", "OK"},
        {"b64read 0x1000 4", "OK AQIDBA=="},
        {"b64read 0x1001 1", "OK Ag=="},
        {"b64write 0x1000 2 AQIDBA==", "OK"}, /* longer: cut */
        {"readl 0x1000", "OK 0x0000000004030201"},
        {"readw 0x1002", "OK 0x0000000000000403"},
        {"writeb 0x1001 0x1ff", "OK"}, /* cut to the width */
        {"readb 0x1001", "OK 0x00000000000000ff"},
        {"memset 0x1000 2 0x1ff", "OK"},
        {"memset 0x1000 0 0x55", "OK"},
        {"readq 0x1000", "OK 0x000000000403ffff"},
        {"writeq 0x1008 0x8182838485868788", "OK"},
        {"readq 0x1008", "OK 0x8182838485868788"},
        {"irq_intercept_in ioapic", "OK"},
        {"irq_intercept_in ioapic", "OK"},
        {"irq_intercept_in /machine/i440fx",
         "FAIL IRQ intercept already enabled"},
        {"bogus 1", "FAIL Unknown command 'bogus'"},
        {"endianness", "OK little"},
    };

    if (!qemu_start(&q)) {
        return;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(steps); i++) {
        g_autofree char *r = gw_qt_request(q.qt, steps[i].send, &err);
        g_assert_no_error(err);
        g_assert_cmpstr(r, ==, steps[i].want);
    }
    qemu_stop(&q);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qtest/qemu/protocol-spot-checks",
                    test_protocol_spot_checks);
    g_test_add_func("/qtest/qemu/virtio-blk/polling", test_blk_polling);
    g_test_add_func("/qtest/qemu/virtio-blk/msix", test_blk_msix);
    return g_test_run();
}
