/*
 * Boot latency: godwit process start → the guest's first serial line
 * (median of N boots of the test guest), and QEMU's for the same guest
 * when QEMU can use KVM.  Needs /dev/kvm; says so and exits 0 without.
 *
 *   boot [N=10]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>
#include "../e2e/guest-report.h"

static gint64 first_line_us;
static gint64 started_us;

static bool
on_line(const char *line, gpointer data)
{
    if (!first_line_us) {
        first_line_us = g_get_monotonic_time() - started_us;
    }
    return !g_str_equal(line, "GUEST done");
}

static int
cmp(const void *a, const void *b)
{
    gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
    return x < y ? -1 : x > y;
}

static void
measure(const char *name, const char *const *argv, int n)
{
    g_autofree gint64 *t = g_new(gint64, n);

    for (int i = 0; i < n; i++) {
        g_autoptr(GError) err = NULL;
        GuestReport *r;
        first_line_us = 0;
        started_us = g_get_monotonic_time();
        r = guest_report_run_full(argv, 60000, false, on_line, NULL, &err);
        if (!r || !first_line_us) {
            g_error("%s: no guest output", name);
        }
        guest_report_free(r);
        t[i] = first_line_us;
    }
    qsort(t, n, sizeof(*t), cmp);
    printf("%-8s start -> first guest line: median %.1f ms (min %.1f, max "
           "%.1f, %d boots)\n",
           name, t[n / 2] / 1000.0, t[0] / 1000.0, t[n - 1] / 1000.0, n);
}

int
main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10;
    const char *guest = g_getenv("GODWIT_GUEST");
    const char *godwit = g_getenv("GODWIT_BIN");
    g_autofree char *qemu = g_find_program_in_path("qemu-system-x86_64");
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    const char *gargv[] = {godwit,     "--kernel", guest,   "--cmdline",
                           "pci-list", "--serial", "stdio", NULL};
    const char *qargv[] = {
        qemu,    "-accel",   "kvm",      "-m",          "256",        "-kernel",
        guest,   "-append",  "pci-list", "-display",    "none",       "-serial",
        "stdio", "-monitor", "none",     "-nodefaults", "-no-reboot", NULL};

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (fd < 0 || ioctl(fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
        printf("boot: not measured: no usable /dev/kvm on this host\n");
        return 0;
    }
    close(fd);
    g_assert(guest && godwit);
    measure("godwit", gargv, n);
    if (qemu) {
        measure("qemu", qargv, n);
    }
    return 0;
}
