/*
 * The test guest (tests/guest) on QEMU, the reference VMM: proves each
 * workload and its checker work before godwit runs the same guest.
 * Skipped when qemu-system-x86_64 is not installed.  Also tests the
 * report helper itself, with a shell standing in for the VMM.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>
#include "guest-report.h"

#define QEMU    "qemu-system-x86_64"
#define WAIT_MS 60000

static char *qemu_path;

/* KVM when /dev/kvm opens, else TCG. */
static const char *
accel(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

    if (fd < 0) {
        return "tcg";
    }
    close(fd);
    return "kvm";
}

static bool
need_qemu(void)
{
    if (!qemu_path) {
        g_test_skip(QEMU " is not installed");
        return false;
    }
    return true;
}

/* Waiting for QEMU to exit is pointless once the guest reports a failure. */
static bool
stop_on_fail(const char *line, gpointer data)
{
    return !g_str_has_prefix(line, "GUEST fail");
}

/* Boots the guest with `cmdline`, `smp` CPUs and `extra` QEMU arguments
 * (NULL-terminated, may be NULL) and returns its report. */
static GuestReport *
run_guest_with(const char *cmdline, const char *smp, bool wait_exit,
               const char *const *extra)
{
    const char *base[] = {qemu_path,   "-accel",  accel(),
                          "-m",        "256",     "-smp",
                          smp,         "-kernel", g_getenv("GODWIT_GUEST"),
                          "-append",   cmdline,   "-display",
                          "none",      "-serial", "stdio",
                          "-monitor",  "none",    "-nodefaults",
                          "-no-reboot"};
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GError) err = NULL;
    GuestReport *r;

    g_assert_nonnull(g_getenv("GODWIT_GUEST"));
    for (guint i = 0; i < G_N_ELEMENTS(base); i++) {
        g_ptr_array_add(argv, (char *)base[i]);
    }
    for (guint i = 0; extra && extra[i]; i++) {
        g_ptr_array_add(argv, (char *)extra[i]);
    }
    g_ptr_array_add(argv, NULL);
    r = guest_report_run_full((const char *const *)argv->pdata, WAIT_MS,
                              wait_exit, wait_exit ? stop_on_fail : NULL, NULL,
                              &err);
    g_assert_no_error(err);
    g_test_message("'%s' took %.2f s", cmdline, r->elapsed_us / 1e6);
    guest_report_dump(r);
    return r;
}

static GuestReport *
run_guest(const char *cmdline, const char *smp, bool wait_exit)
{
    return run_guest_with(cmdline, smp, wait_exit, NULL);
}

/*
 * The guest's MCFG parser on QEMU's q35: one entry, segment 0, buses
 * 0-255.  A pxb-pcie expander (what libvirt offers for more PCI roots)
 * is another bus of segment 0 there, found by the 0xCF8 scan: QEMU has
 * no second PCI segment on x86, so godwit's segments have no QEMU
 * counterpart to cross-check against.
 */
static void
test_q35_mcfg(void)
{
    const char *extra[] = {
        "-machine", "q35",
        "-device",  "pxb-pcie,id=pxb1,bus_nr=128,bus=pcie.0",
        "-device",  "pcie-root-port,id=rp1,bus=pxb1,chassis=1",
        NULL};

    if (!need_qemu()) {
        return;
    }
    g_autoptr(GuestReport) r = run_guest_with("pci-list", "1", false, extra);

    g_assert_true(r->done);
    g_assert_true(guest_report_has(
        r, "GUEST mcfg segment=0 base=0xb0000000 buses=0-255"));
    g_assert_cmpuint(guest_report_count(r, "GUEST mcfg "), ==, 1);
    g_assert_true(
        guest_report_has(r, "GUEST pci 80:00.0 1b36:000c class=060400"));
    g_assert_null(guest_report_find(r, "GUEST pci 0001:"));
    g_assert_null(guest_report_find(r, "GUEST fail"));
}

static void
test_memtest(void)
{
    if (!need_qemu()) {
        return;
    }
    g_autoptr(GuestReport) r = run_guest("memtest", "1", false);
    const char *mem = guest_report_find(r, "GUEST mem-total ");

    g_assert_true(r->done);
    /* QEMU puts the kernel path first; the guest skips it. */
    g_assert_nonnull(guest_report_find(r, "GUEST boot cmdline=\""));
    g_assert_true(g_str_has_suffix(guest_report_find(r, "GUEST boot cmdline="),
                                   "memtest\""));
    g_assert_nonnull(mem);
    guint64 total =
        g_ascii_strtoull(mem + strlen("GUEST mem-total "), NULL, 10);
    /* 256 MiB less what the firmware keeps (low holes, ACPI at the top). */
    g_assert_cmpuint(total, >, 250ull << 20);
    g_assert_cmpuint(total, <=, 256ull << 20);
    g_assert_true(guest_report_has(r, "GUEST pass memtest"));
    g_assert_null(guest_report_find(r, "GUEST fail"));
}

static void
test_memtest_detects_corruption(void)
{
    if (!need_qemu()) {
        return;
    }
    g_autoptr(GuestReport) r = run_guest("memtest inject-error=1", "1", false);

    g_assert_true(r->done);
    g_assert_nonnull(guest_report_find(r, "GUEST fail memtest addr=0x"));
    g_assert_false(guest_report_has(r, "GUEST pass memtest"));
}

static void
test_pci_list(void)
{
    if (!need_qemu()) {
        return;
    }
    g_autoptr(GuestReport) r = run_guest("pci-list", "1", false);
    const char *count = guest_report_find(r, "GUEST pci-count ");

    g_assert_true(r->done);
    /* i440FX host bridge, PIIX3 ISA bridge (multifunction: IDE, PM). */
    g_assert_true(guest_report_has(r, "GUEST pci 00:00.0 8086:1237 "
                                      "class=060000"));
    g_assert_true(guest_report_has(r, "GUEST pci 00:01.0 8086:7000 "
                                      "class=060100"));
    g_assert_true(guest_report_has(r, "GUEST pci 00:01.3 8086:7113 "
                                      "class=068000"));
    g_assert_nonnull(count);
    g_assert_cmpuint(
        g_ascii_strtoull(count + strlen("GUEST pci-count "), NULL, 10), ==,
        guest_report_count(r, "GUEST pci "));
    g_assert_null(guest_report_find(r, "GUEST fail"));
}

static void
test_poweroff(void)
{
    if (!need_qemu()) {
        return;
    }
    g_autoptr(GuestReport) r = run_guest("poweroff", "1", true);

    /* PIIX4 PM: PM1a_CNT at 0x604; QEMU's DSDT says _S5_ = {0, 0}. */
    g_assert_nonnull(guest_report_find(r, "GUEST acpi pm1a_cnt=0x604 "
                                          "slp_typ="));
    g_assert_null(guest_report_find(r, "GUEST fail"));
    g_assert_false(r->done);
    g_assert_false(r->timed_out);
    g_assert_true(r->exited);
    g_assert_cmpint(r->exit_status, ==, 0);
}

/* Checks "GUEST dirty round=R seq=S pass" for R = 1..rounds, S rising. */
static void
assert_dirty_rounds(const GuestReport *r, guint rounds)
{
    guint round = 0, last_seq = 0;

    for (guint i = 0; i < r->lines->len; i++) {
        const char *l = g_ptr_array_index(r->lines, i);
        guint rr, seq;
        char tail[8] = "";
        if (sscanf(l, "GUEST dirty round=%u seq=%u %7s", &rr, &seq, tail) !=
            3) {
            continue;
        }
        g_assert_cmpstr(tail, ==, "pass");
        g_assert_cmpuint(rr, ==, round + 1);
        g_assert_cmpuint(seq, >, last_seq);
        round = rr;
        last_seq = seq;
    }
    g_assert_cmpuint(round, ==, rounds);
}

static void
test_dirty(void)
{
    if (!need_qemu()) {
        return;
    }
    g_autoptr(GuestReport) r = run_guest("dirty rounds=3", "1", false);

    g_assert_true(r->done);
    assert_dirty_rounds(r, 3);
    g_assert_true(guest_report_has(r, "GUEST pass dirty"));
    g_assert_null(guest_report_find(r, "GUEST fail"));
}

static void
test_dirty_detects_corruption(void)
{
    if (!need_qemu()) {
        return;
    }
    g_autoptr(GuestReport) r =
        run_guest("dirty rounds=3 inject-error=1", "1", false);

    g_assert_true(r->done);
    g_assert_nonnull(
        guest_report_find(r, "GUEST fail dirty round=1 seq=1 page="));
    g_assert_false(guest_report_has(r, "GUEST pass dirty"));
}

/* Workloads run in order, each sees its own arguments. */
static void
test_workload_sequence(void)
{
    if (!need_qemu()) {
        return;
    }
    g_autoptr(GuestReport) r = run_guest(
        "memtest mib=1; dirty pages=4 rounds=2;pci-list ; nosuch", "1", false);
    const char *expect[] = {"GUEST pass memtest", "GUEST pass dirty",
                            "GUEST pci-count ",
                            "GUEST fail workload unknown=nosuch", "GUEST done"};
    guint at = 0;

    for (guint i = 0; i < r->lines->len && at < G_N_ELEMENTS(expect); i++) {
        at += g_str_has_prefix(g_ptr_array_index(r->lines, i), expect[at]);
    }
    g_assert_cmpuint(at, ==, G_N_ELEMENTS(expect));
    assert_dirty_rounds(r, 2);
}

static void
test_smp(void)
{
    if (!need_qemu()) {
        return;
    }
    g_autoptr(GuestReport) r = run_guest("smp", "2", false);

    g_assert_true(r->done);
    g_assert_true(guest_report_has(r, "GUEST madt lapic-id=0"));
    g_assert_true(guest_report_has(r, "GUEST madt lapic-id=1"));
    g_assert_true(guest_report_has(r, "GUEST cpus-online 2"));
    g_assert_null(guest_report_find(r, "GUEST fail"));
}

/* A sparse raw image of `mib` MiB in the temp dir; caller unlinks. */
static char *
make_disk(guint mib)
{
    g_autoptr(GError) err = NULL;
    char *path = NULL;
    int fd = g_file_open_tmp("godwit-guest-blk-XXXXXX.raw", &path, &err);

    g_assert_no_error(err);
    g_assert_cmpint(ftruncate(fd, (off_t)mib << 20), ==, 0);
    close(fd);
    return path;
}

/* The "-drive ... -device virtio-blk-pci,..." pair for `disk`. */
static void
add_blk(GPtrArray *argv, const char *id, const char *disk, const char *props)
{
    g_ptr_array_add(argv, g_strdup("-drive"));
    g_ptr_array_add(
        argv, g_strdup_printf("if=none,id=%s,format=raw,file=%s", id, disk));
    g_ptr_array_add(argv, g_strdup("-device"));
    g_ptr_array_add(argv,
                    g_strdup_printf("virtio-blk-pci,drive=%s,%s", id, props));
}

/* Boots with one modern virtio-blk on a 128 MiB disk at 00:04.0. */
static GuestReport *
run_blk(const char *cmdline, const char *disk)
{
    g_autoptr(GPtrArray) extra = g_ptr_array_new_with_free_func(g_free);

    add_blk(extra, "d0", disk, "disable-legacy=on,addr=4");
    g_ptr_array_add(extra, NULL);
    return run_guest_with(cmdline, "1", false,
                          (const char *const *)extra->pdata);
}

static void
test_blk(void)
{
    if (!need_qemu()) {
        return;
    }
    g_autofree char *disk = make_disk(128);
    g_autoptr(GuestReport) r = run_blk(
        "blk dev=00:04.0 sectors=8 expect-capacity=262144 rounds=3", disk);

    g_assert_true(r->done);
    g_assert_true(guest_report_has(r, "GUEST blk 00:04.0 capacity=262144"));
    /* SeaBIOS placed the BARs; only VERSION_1 is offered and taken. */
    g_assert_true(guest_report_has(r, "GUEST blk 00:04.0 "
                                      "features=0x100000000 bars=firmware"));
    /* Three rounds, each with its own pattern, then the pass line. */
    g_assert_true(guest_report_has(r, "GUEST blk 00:04.0 round=1 pass"));
    g_assert_true(guest_report_has(r, "GUEST blk 00:04.0 round=3 pass"));
    g_assert_null(guest_report_find(r, "round=4"));
    g_assert_true(guest_report_has(r, "GUEST pass blk"));
    g_assert_null(guest_report_find(r, "GUEST fail"));
    /* The patterns reached the image: start, middle and end regions. */
    g_assert_true(guest_sector_written(disk, 0));
    g_assert_true(guest_sector_written(disk, 7));
    g_assert_false(guest_sector_written(disk, 8));
    g_assert_true(guest_sector_written(disk, 131072));
    g_assert_true(guest_sector_written(disk, 262143));
    g_unlink(disk);
}

/* A transitional device (1af4:1001) with modern capabilities, and a modern
 * one offering ACCESS_PLATFORM, as godwit's vDPA devices always do. */
static void
test_blk_transitional_and_access_platform(void)
{
    if (!need_qemu()) {
        return;
    }
    g_autofree char *d1 = make_disk(1);
    g_autofree char *d2 = make_disk(2);
    g_autoptr(GPtrArray) extra = g_ptr_array_new_with_free_func(g_free);

    add_blk(extra, "d1", d1, "addr=4");
    add_blk(extra, "d2", d2, "disable-legacy=on,iommu_platform=on,addr=5");
    g_ptr_array_add(extra, NULL);
    g_autoptr(GuestReport) r =
        run_guest_with("blk dev=00:04.0; blk dev=00:05.0", "1", false,
                       (const char *const *)extra->pdata);

    g_assert_true(r->done);
    g_assert_true(guest_report_has(r, "GUEST blk 00:04.0 capacity=2048"));
    g_assert_true(guest_report_has(r, "GUEST blk 00:05.0 capacity=4096"));
    g_assert_true(guest_report_has(r, "GUEST blk 00:05.0 "
                                      "features=0x300000000 bars=firmware"));
    g_assert_cmpuint(guest_report_count(r, "GUEST pass blk"), ==, 2);
    g_assert_null(guest_report_find(r, "GUEST fail"));
    g_unlink(d1);
    g_unlink(d2);
}

static void
test_blk_detects_corruption(void)
{
    if (!need_qemu()) {
        return;
    }
    g_autofree char *disk = make_disk(128);
    g_autoptr(GuestReport) r = run_blk("blk inject-error=1", disk);

    g_assert_true(r->done);
    g_assert_true(guest_report_has(r, "GUEST blk 00:04.0 capacity=262144"));
    /* byte 100 of the middle region's first sector: word 25 */
    g_assert_nonnull(guest_report_find(r, "GUEST fail blk 00:04.0 "
                                          "sector=131072 word=25 expected="));
    g_assert_false(guest_report_has(r, "GUEST pass blk"));
    g_unlink(disk);
}

static void
test_blk_checks_capacity(void)
{
    if (!need_qemu()) {
        return;
    }
    g_autofree char *disk = make_disk(128);
    g_autoptr(GuestReport) r = run_blk("blk expect-capacity=1000", disk);

    g_assert_true(r->done);
    g_assert_true(guest_report_has(r, "GUEST fail blk 00:04.0 "
                                      "capacity=262144 expected=1000"));
    g_assert_false(guest_report_has(r, "GUEST pass blk"));
    g_unlink(disk);
}

static void
test_blk_without_device(void)
{
    if (!need_qemu()) {
        return;
    }
    g_autoptr(GuestReport) r =
        run_guest("blk; blk dev=00:1f.0; blk dev=4", "1", false);

    g_assert_true(r->done);
    g_assert_true(guest_report_has(r, "GUEST fail blk no-device"));
    g_assert_true(guest_report_has(r, "GUEST fail blk 00:1f.0 not-virtio-blk "
                                      "id=ffff:ffff"));
    g_assert_true(guest_report_has(r, "GUEST fail blk dev=4 malformed"));
    g_assert_false(guest_report_has(r, "GUEST pass blk"));
}

/* Boots with one modern virtio-net-pci at 00:04.0 (`props` appended) on a
 * dgram netdev bound to a unix socket in a fresh temp dir.  With `loop`
 * the netdev sends to its own socket, so every frame the guest sends comes
 * back to it, as godwit's vDPA simulator loops frames for its own MAC;
 * without, it sends to a path nobody binds and frames are lost. */
static GuestReport *
run_net(const char *cmdline, const char *props, bool loop)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("godwit-guest-net-XXXXXX", &err);
    g_assert_no_error(err);
    g_autofree char *self = g_build_filename(dir, "net.sock", NULL);
    g_autofree char *other = g_build_filename(dir, "nobody.sock", NULL);
    g_autofree char *netdev =
        g_strdup_printf("dgram,id=n0,local.type=unix,local.path=%s,"
                        "remote.type=unix,remote.path=%s",
                        self, loop ? self : other);
    g_autofree char *device =
        g_strdup_printf("virtio-net-pci,netdev=n0,disable-legacy=on,addr=4%s%s",
                        props ? "," : "", props ? props : "");
    const char *extra[] = {"-netdev", netdev, "-device", device, NULL};
    GuestReport *r = run_guest_with(cmdline, "1", false, extra);

    g_unlink(self);
    g_rmdir(dir);
    return r;
}

static void
test_net(void)
{
    if (!need_qemu()) {
        return;
    }
    g_autoptr(GuestReport) r =
        run_net("net dev=00:04.0 frames=16", "mac=52:54:00:12:34:57", true);

    g_assert_true(r->done);
    /* VERSION_1, CTRL_MAC_ADDR, CTRL_VQ, STATUS, MAC: nothing else taken */
    g_assert_true(guest_report_has(r, "GUEST net 00:04.0 "
                                      "features=0x100830020 bars=firmware "
                                      "link=up"));
    g_assert_true(guest_report_has(r, "GUEST net 00:04.0 "
                                      "mac=52:54:00:12:34:57"));
    g_assert_true(guest_report_has(r, "GUEST pass net frames=16"));
    g_assert_null(guest_report_find(r, "GUEST fail"));
}

/* The MAC set over the control queue reads back from config; frames to
 * it come back.  ACCESS_PLATFORM offered, as godwit's vDPA devices do. */
static void
test_net_set_mac(void)
{
    if (!need_qemu()) {
        return;
    }
    g_autoptr(GuestReport) r =
        run_net("net mac=02:00:5e:10:20:30 frames=4; net frames=1",
                "iommu_platform=on", true);
    const char *expect[] = {
        "GUEST net 00:04.0 features=0x300830020 bars=firmware link=up",
        "GUEST net 00:04.0 mac=52:54:00:12:34:56",
        "GUEST net 00:04.0 mac=02:00:5e:10:20:30",
        "GUEST pass net frames=4",
        /* the reset at the end restores the device's own address */
        "GUEST net 00:04.0 mac=52:54:00:12:34:56",
        "GUEST pass net frames=1",
    };
    guint at = 0;

    g_assert_true(r->done);
    for (guint i = 0; i < r->lines->len && at < G_N_ELEMENTS(expect); i++) {
        at += !strcmp(g_ptr_array_index(r->lines, i), expect[at]);
    }
    g_assert_cmpuint(at, ==, G_N_ELEMENTS(expect));
    g_assert_null(guest_report_find(r, "GUEST fail"));
}

/* Without a control queue (godwit strips it when num_queues leaves it
 * out) frames still flow on rx/tx; mac= then cannot be honoured. */
static void
test_net_without_ctrl_vq(void)
{
    if (!need_qemu()) {
        return;
    }
    g_autoptr(GuestReport) r =
        run_net("net frames=4; net mac=02:00:00:00:00:01",
                "ctrl_vq=off,ctrl_rx=off,ctrl_vlan=off,ctrl_mac_addr=off,"
                "guest_announce=off,mq=off",
                true);

    g_assert_true(r->done);
    g_assert_cmpuint(guest_report_count(r, "GUEST net 00:04.0 "
                                           "features=0x100010020 "),
                     ==, 2);
    g_assert_true(guest_report_has(r, "GUEST pass net frames=4"));
    g_assert_nonnull(guest_report_find(r, "GUEST fail net 00:04.0 set-mac "
                                          "unsupported features=0x"));
    g_assert_cmpuint(guest_report_count(r, "GUEST pass net"), ==, 1);
}

static void
test_net_detects_corruption(void)
{
    if (!need_qemu()) {
        return;
    }
    g_autoptr(GuestReport) r = run_net("net inject-error=1", NULL, true);

    g_assert_true(r->done);
    /* frame 4 of 8, byte 7 of its payload */
    g_assert_nonnull(guest_report_find(r, "GUEST fail net 00:04.0 frame=4 "
                                          "byte=21 expected="));
    g_assert_null(guest_report_find(r, "GUEST pass net"));
}

/* The pass depends on the frames coming back: a netdev that loses them
 * makes the first receive time out. */
static void
test_net_needs_loopback(void)
{
    if (!need_qemu()) {
        return;
    }
    g_autoptr(GuestReport) r = run_net("net timeout-ms=200", NULL, false);

    g_assert_true(r->done);
    g_assert_true(guest_report_has(r, "GUEST fail net 00:04.0 frame=1 "
                                      "timeout op=rx"));
    g_assert_null(guest_report_find(r, "GUEST pass net"));
}

static void
test_net_bad_arguments(void)
{
    if (!need_qemu()) {
        return;
    }
    g_autoptr(GuestReport) r =
        run_guest("net; net dev=00:1f.0; net dev=x; net mac=01:00:00:00:00:00;"
                  " net mac=02:00:00:00:00; net frames=100001; net every=0;"
                  " net nosuch=1",
                  "1", false);

    g_assert_true(r->done);
    g_assert_true(guest_report_has(r, "GUEST fail net no-device"));
    g_assert_true(guest_report_has(r, "GUEST fail net 00:1f.0 not-virtio-net "
                                      "id=ffff:ffff"));
    g_assert_true(guest_report_has(r, "GUEST fail net dev=x malformed"));
    g_assert_true(guest_report_has(r, "GUEST fail net "
                                      "mac=01:00:00:00:00:00 malformed"));
    g_assert_true(guest_report_has(r, "GUEST fail net "
                                      "mac=02:00:00:00:00 malformed"));
    g_assert_true(guest_report_has(r, "GUEST fail net frames=100001 every=100 "
                                      "out-of-range max=100000"));
    g_assert_true(guest_report_has(r, "GUEST fail net frames=8 every=0 "
                                      "out-of-range max=100000"));
    g_assert_true(guest_report_has(r, "GUEST fail net "
                                      "unknown-argument=nosuch"));
    g_assert_null(guest_report_find(r, "GUEST pass net"));
}

/*
 * virtio-iommu: QEMU builds a VIOT for pc and q35 alike (one PCI range
 * per host bridge not bypassing the IOMMU; endpoint id = BDF), so the
 * IOMMU sits at 00:03.0 and the disk (ACCESS_PLATFORM on, as godwit's
 * iommu=on devices) at 00:04.0 is endpoint 0x20.  `blk_props` is
 * appended to the disk's properties, `extra` (NULL-terminated, may be
 * NULL) to QEMU's arguments.
 */
static GuestReport *
run_iommu(const char *cmdline, const char *machine, const char *disk,
          const char *blk_props, const char *const *extra)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *props = g_strdup_printf("disable-legacy=on,addr=4%s",
                                             blk_props ? blk_props : "");
    const char *base[] = {"-machine", machine, "-device",
                          "virtio-iommu-pci,addr=3"};

    for (guint i = 0; i < G_N_ELEMENTS(base); i++) {
        g_ptr_array_add(argv, g_strdup(base[i]));
    }
    add_blk(argv, "d0", disk, props);
    for (guint i = 0; extra && extra[i]; i++) {
        g_ptr_array_add(argv, g_strdup(extra[i]));
    }
    g_ptr_array_add(argv, NULL);
    return run_guest_with(cmdline, "1", false,
                          (const char *const *)argv->pdata);
}

/* What every run on the two-device layout above reports first. */
static void
assert_iommu_found(const GuestReport *r)
{
    g_assert_true(guest_report_has(r, "GUEST iommu viot iommu=00:03.0 "
                                      "ranges=1"));
    /* VERSION_1, INPUT_RANGE, DOMAIN_RANGE, MAP_UNMAP, PROBE,
     * BYPASS_CONFIG, and bypass cleared: nothing reaches memory unmapped */
    const char *f = guest_report_find(r, "GUEST iommu 00:03.0 features=");
    g_assert_nonnull(f);
    g_assert_true(g_str_has_prefix(f, "GUEST iommu 00:03.0 "
                                      "features=0x100000057 "));
    g_assert_true(g_str_has_suffix(f, " bypass=0"));
}

static const char iommu_attached[] =
    "GUEST iommu 00:04.0 endpoint=0x20 domain=1 dma-offset=0x100000000 "
    "maps=4";

static void
test_iommu_blk(void)
{
    if (!need_qemu()) {
        return;
    }
    g_autofree char *disk = make_disk(128);
    g_autoptr(GuestReport) r =
        run_iommu("iommu-blk dev=00:04.0 expect-capacity=262144 rounds=3", "pc",
                  disk, ",iommu_platform=on", NULL);

    g_assert_true(r->done);
    assert_iommu_found(r);
    /* PROBE: x86's MSI window, which the IOVAs keep clear of */
    g_assert_true(guest_report_has(r, "GUEST iommu endpoint=0x20 "
                                      "resv=0xfee00000-0xfeefffff "
                                      "subtype=1"));
    g_assert_true(guest_report_has(r, iommu_attached));
    g_assert_true(guest_report_has(r, "GUEST blk 00:04.0 "
                                      "features=0x300000000 bars=firmware"));
    g_assert_true(guest_report_has(r, "GUEST blk 00:04.0 round=3 pass"));
    g_assert_true(guest_report_has(r, "GUEST pass blk"));
    g_assert_true(guest_report_has(r, "GUEST pass iommu-blk"));
    g_assert_null(guest_report_find(r, "GUEST fail"));
    g_assert_true(guest_sector_written(disk, 0));
    g_assert_true(guest_sector_written(disk, 262143));
    g_unlink(disk);
}

/* The unmapped read buffer: QEMU completes the read into a bounce buffer
 * it drops (nothing reaches the page) and the IOMMU reports the fault at
 * that IOVA on its event queue; the VM goes on, and once the IOMMU is
 * reset (bypass as at boot) plain blk works again. */
static void
test_iommu_unmapped_request(void)
{
    if (!need_qemu()) {
        return;
    }
    g_autofree char *disk = make_disk(128);
    g_autoptr(GuestReport) r =
        run_iommu("iommu-blk unmap-test=1; blk dev=00:04.0", "q35", disk,
                  ",iommu_platform=on", NULL);
    const char *u =
        guest_report_find(r, "GUEST iommu 00:04.0 unmapped rbuf iova=");
    guint64 iova = 0, size = 0, addr = 0;
    guint ep = 0, reason = 0, flags = 0;

    g_assert_true(r->done);
    assert_iommu_found(r);
    g_assert_true(guest_report_has(r, iommu_attached));
    g_assert_nonnull(u);
    g_assert_cmpint(sscanf(u,
                           "GUEST iommu 00:04.0 unmapped rbuf "
                           "iova=%" G_GINT64_MODIFIER
                           "x size=%" G_GINT64_MODIFIER "x",
                           &iova, &size),
                    ==, 2);
    g_assert_cmpuint(size, ==, 0x1000);
    const char *f = guest_report_find(r, "GUEST iommu fault ");
    g_assert_nonnull(f);
    g_assert_cmpint(sscanf(f,
                           "GUEST iommu fault endpoint=%x reason=%u "
                           "flags=%x address=%" G_GINT64_MODIFIER "x",
                           &ep, &reason, &flags, &addr),
                    ==, 4);
    g_assert_cmpuint(ep, ==, 0x20);
    g_assert_cmpuint(reason, ==, 2); /* MAPPING */
    g_assert_cmpuint(addr, >=, iova);
    g_assert_cmpuint(addr, <, iova + size);
    const char *how = guest_report_find(r, "GUEST iommu 00:04.0 "
                                           "unmapped-request failed ");
    g_assert_nonnull(how);
    g_assert_true(g_str_has_prefix(how, "GUEST iommu 00:04.0 "
                                        "unmapped-request failed "
                                        "dma-blocked status=0 faults="));
    g_assert_true(guest_report_has(r, "GUEST iommu 00:04.0 still-running "
                                      "after-unmapped-request"));
    g_assert_true(guest_report_has(r, "GUEST pass iommu-blk"));
    g_assert_cmpuint(guest_report_count(r, "GUEST pass blk"), ==, 2);
    g_assert_null(guest_report_find(r, "GUEST fail"));
    g_unlink(disk);
}

/* The read buffer's IOVAs mapped onto another page: the data check
 * fails, so the pass above depends on the mappings being right. */
static void
test_iommu_wrong_page(void)
{
    if (!need_qemu()) {
        return;
    }
    g_autofree char *disk = make_disk(128);
    g_autoptr(GuestReport) r = run_iommu("iommu-blk inject-error=1", "pc", disk,
                                         ",iommu_platform=on", NULL);

    g_assert_true(r->done);
    g_assert_true(guest_report_has(r, iommu_attached));
    g_assert_nonnull(guest_report_find(r, "GUEST fail blk 00:04.0 sector=0 "
                                          "word=0 expected="));
    g_assert_false(guest_report_has(r, "GUEST pass blk"));
    g_assert_false(guest_report_has(r, "GUEST pass iommu-blk"));
    g_unlink(disk);
}

/* Endpoint ids as VIOT says, not assumed: on q35 a disk behind a root
 * port (01:00.0) is endpoint 0x100; one on an expander that bypasses the
 * IOMMU (no VIOT range) is not behind it; a disk without ACCESS_PLATFORM
 * cannot be given IOVAs; and without an IOMMU there is no VIOT. */
static void
test_iommu_endpoints(void)
{
    if (!need_qemu()) {
        return;
    }
    g_autofree char *d0 = make_disk(1);
    g_autofree char *d1 = make_disk(1);
    g_autofree char *d2 = make_disk(1);
    g_autofree char *drive1 =
        g_strdup_printf("if=none,id=d1,format=raw,file=%s", d1);
    g_autofree char *drive2 =
        g_strdup_printf("if=none,id=d2,format=raw,file=%s", d2);
    const char *extra[] = {
        "-device",
        "pxb-pcie,id=pxb1,bus_nr=128,bus=pcie.0,bypass_iommu=on",
        "-device",
        "pcie-root-port,id=rp1,bus=pxb1,chassis=1",
        "-device",
        "pcie-root-port,id=rp0,bus=pcie.0,chassis=2,addr=6",
        "-drive",
        drive1,
        "-device",
        "virtio-blk-pci,drive=d1,iommu_platform=on,"
        "disable-legacy=on,bus=rp0",
        "-drive",
        drive2,
        "-device",
        "virtio-blk-pci,drive=d2,iommu_platform=on,"
        "disable-legacy=on,bus=rp1",
        NULL};
    g_autoptr(GuestReport) r =
        run_iommu("iommu-blk dev=01:00.0 sectors=1; iommu-blk dev=81:00.0;"
                  " iommu-blk dev=00:04.0 sectors=1",
                  "q35,default_bus_bypass_iommu=off", d0, ",bus=pcie.0", extra);

    g_assert_true(r->done);
    g_assert_true(guest_report_has(r, "GUEST iommu viot range segments=0-0 "
                                      "bdfs=0x0000-0x01ff "
                                      "endpoint-start=0x0"));
    g_assert_true(guest_report_has(r, "GUEST iommu 01:00.0 endpoint=0x100 "
                                      "domain=1 dma-offset=0x100000000 "
                                      "maps=4"));
    g_assert_cmpuint(guest_report_count(r, "GUEST pass iommu-blk"), ==, 1);
    g_assert_true(
        guest_report_has(r, "GUEST fail iommu 81:00.0 not-behind-iommu"));
    g_assert_nonnull(guest_report_find(r, "GUEST fail blk 00:04.0 "
                                          "no-access-platform features=0x"));
    g_unlink(d1);
    g_unlink(d2);

    g_autoptr(GuestReport) none = run_blk("iommu-blk; iommu-blk x=1", d0);
    g_assert_true(none->done);
    g_assert_true(guest_report_has(none, "GUEST fail iommu no-viot"));
    g_assert_true(
        guest_report_has(none, "GUEST fail iommu-blk unknown-argument=x"));
    g_assert_false(guest_report_has(none, "GUEST pass blk"));
    g_unlink(d0);
}

/* The report helper itself, with a shell standing in for the VMM. */
static GuestReport *
run_sh(const char *script, guint timeout_ms, bool wait_exit)
{
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    g_autoptr(GError) err = NULL;
    GuestReport *r =
        guest_report_run_full(argv, timeout_ms, wait_exit, NULL, NULL, &err);

    g_assert_no_error(err);
    return r;
}

static void
test_report_stops_at_done(void)
{
    /* The "guest" keeps running after done, as a halted VM does. */
    g_autoptr(GuestReport) r =
        run_sh("echo 'GUEST a'; echo noise; printf 'GUEST b\r\n';"
               "echo 'GUEST done'; echo 'GUEST after'; exec sleep 60",
               30000, false);

    g_assert_true(r->done);
    g_assert_false(r->timed_out);
    g_assert_true(r->killed);
    g_assert_cmpuint(r->lines->len, ==, 3);
    g_assert_true(guest_report_has(r, "GUEST a"));
    g_assert_true(guest_report_has(r, "GUEST b"));
    g_assert_null(guest_report_find(r, "GUEST after"));
    g_assert_null(guest_report_find(r, "noise"));
    g_assert_cmpint(r->elapsed_us, <, 20 * G_USEC_PER_SEC);
}

static void
test_report_times_out(void)
{
    g_autoptr(GuestReport) r =
        run_sh("echo 'GUEST x'; exec sleep 60", 300, false);

    g_assert_true(r->timed_out);
    g_assert_true(r->killed);
    g_assert_false(r->done);
    g_assert_true(guest_report_has(r, "GUEST x"));
    g_assert_cmpint(r->elapsed_us, <, 20 * G_USEC_PER_SEC);
}

static void
test_report_collects_exit_status(void)
{
    g_autoptr(GuestReport) r =
        run_sh("echo 'GUEST x'; printf 'GUEST last'; exit 3", 30000, true);

    g_assert_false(r->timed_out);
    g_assert_false(r->killed);
    g_assert_true(r->exited);
    g_assert_cmpint(r->exit_status, ==, 3);
    g_assert_true(guest_report_has(r, "GUEST last"));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qemu_path = g_find_program_in_path(QEMU);
    g_test_add_func("/guest/report/stops-at-done-and-kills",
                    test_report_stops_at_done);
    g_test_add_func("/guest/report/kills-at-deadline", test_report_times_out);
    g_test_add_func("/guest/report/collects-exit-status",
                    test_report_collects_exit_status);
    g_test_add_func("/guest/qemu/memtest", test_memtest);
    g_test_add_func("/guest/qemu/memtest-detects-corruption",
                    test_memtest_detects_corruption);
    g_test_add_func("/guest/qemu/pci-list", test_pci_list);
    g_test_add_func("/guest/qemu/q35-mcfg-one-segment", test_q35_mcfg);
    g_test_add_func("/guest/qemu/poweroff-exits-qemu", test_poweroff);
    g_test_add_func("/guest/qemu/dirty", test_dirty);
    g_test_add_func("/guest/qemu/dirty-detects-corruption",
                    test_dirty_detects_corruption);
    g_test_add_func("/guest/qemu/workloads-run-in-order",
                    test_workload_sequence);
    g_test_add_func("/guest/qemu/smp-starts-all-cpus", test_smp);
    g_test_add_func("/guest/qemu/blk/modern-write-read-verify", test_blk);
    g_test_add_func("/guest/qemu/blk/transitional-and-access-platform",
                    test_blk_transitional_and_access_platform);
    g_test_add_func("/guest/qemu/blk/detects-corruption",
                    test_blk_detects_corruption);
    g_test_add_func("/guest/qemu/blk/checks-capacity",
                    test_blk_checks_capacity);
    g_test_add_func("/guest/qemu/blk/fails-without-device",
                    test_blk_without_device);
    g_test_add_func("/guest/qemu/net/frames-loop-back", test_net);
    g_test_add_func("/guest/qemu/net/sets-mac-over-control-queue",
                    test_net_set_mac);
    g_test_add_func("/guest/qemu/net/without-control-queue",
                    test_net_without_ctrl_vq);
    g_test_add_func("/guest/qemu/net/detects-corruption",
                    test_net_detects_corruption);
    g_test_add_func("/guest/qemu/net/fails-when-frames-are-lost",
                    test_net_needs_loopback);
    g_test_add_func("/guest/qemu/net/rejects-bad-arguments",
                    test_net_bad_arguments);
    g_test_add_func("/guest/qemu/iommu/blk-through-iovas", test_iommu_blk);
    g_test_add_func("/guest/qemu/iommu/unmapped-request-fails",
                    test_iommu_unmapped_request);
    g_test_add_func("/guest/qemu/iommu/wrong-page-fails-data-check",
                    test_iommu_wrong_page);
    g_test_add_func("/guest/qemu/iommu/endpoints-as-viot-says",
                    test_iommu_endpoints);
    int ret = g_test_run();
    g_free(qemu_path);
    return ret;
}
