/*
 * The test guest (tests/guest) on QEMU, the reference VMM: proves each
 * workload and its checker work before godwit runs the same guest.
 * Skipped when qemu-system-x86_64 is not installed.
 */
#include <fcntl.h>
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
    r = guest_report_run_full(argv, WAIT_MS, wait_exit, NULL, NULL, &err);
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

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qemu_path = g_find_program_in_path(QEMU);
    g_test_add_func("/guest/qemu/memtest", test_memtest);
    g_test_add_func("/guest/qemu/memtest-detects-corruption",
                    test_memtest_detects_corruption);
    int ret = g_test_run();
    g_free(qemu_path);
    return ret;
}
