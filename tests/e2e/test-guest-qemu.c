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

/* Boots the guest with `cmdline` (and `smp` CPUs) and returns its report. */
static GuestReport *
run_guest(const char *cmdline, const char *smp, bool wait_exit)
{
    const char *argv[] = {qemu_path,    "-accel",  accel(),
                          "-m",         "256",     "-smp",
                          smp,          "-kernel", g_getenv("GODWIT_GUEST"),
                          "-append",    cmdline,   "-display",
                          "none",       "-serial", "stdio",
                          "-monitor",   "none",    "-nodefaults",
                          "-no-reboot", NULL};
    g_autoptr(GError) err = NULL;
    GuestReport *r;

    g_assert_nonnull(g_getenv("GODWIT_GUEST"));
    r = guest_report_run_full(argv, WAIT_MS, wait_exit,
                              wait_exit ? stop_on_fail : NULL, NULL, &err);
    g_assert_no_error(err);
    g_test_message("'%s' took %.2f s", cmdline, r->elapsed_us / 1e6);
    guest_report_dump(r);
    return r;
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
    g_test_add_func("/guest/qemu/poweroff-exits-qemu", test_poweroff);
    g_test_add_func("/guest/qemu/dirty", test_dirty);
    g_test_add_func("/guest/qemu/dirty-detects-corruption",
                    test_dirty_detects_corruption);
    g_test_add_func("/guest/qemu/workloads-run-in-order",
                    test_workload_sequence);
    g_test_add_func("/guest/qemu/smp-starts-all-cpus", test_smp);
    int ret = g_test_run();
    g_free(qemu_path);
    return ret;
}
