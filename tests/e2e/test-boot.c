/*
 * godwit boots the test guest on KVM: memtest (compared with QEMU's
 * report), dirty, pci-list, poweroff, two vCPUs, pause/resume, and the
 * founding spec's vDPA block device (--vdpa on a simulated
 * vdpasim_blk), whose data must land in its backing file.  Every
 * test skips visibly where /dev/kvm is missing or unusable (the build
 * machines are PVM guests without it); on a KVM host they all run.
 */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <linux/kvm.h>
#include <glib/gstdio.h>
#include <godwit/qmp-client.h>
#include <godwit/util.h>
#include "spawn-util.h"
#include "guest-report.h"

#define T 120000 /* 32-bit guest code may be emulated: be generous */

/* godwit's runtime directory for the whole run (simulated vDPA nodes are
 * in its vdpa/): "@DIR@" in boot()'s `extra` stands for it. */
static char *runtime_dir;

static GuestReport *
boot(const char *cmdline, const char *extra, bool wait_exit)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_auto(GStrv) parts = g_strsplit(extra ? extra : "", "@DIR@", -1);
    g_autofree char *joined = g_strjoinv(runtime_dir, parts);
    g_auto(GStrv) more = g_strsplit(joined, " ", -1);
    GuestReport *r;

    g_ptr_array_add(argv, (char *)g_getenv("GODWIT_BIN"));
    g_ptr_array_add(argv, "--kernel");
    g_ptr_array_add(argv, (char *)g_getenv("GODWIT_GUEST"));
    g_ptr_array_add(argv, "--cmdline");
    g_ptr_array_add(argv, (char *)cmdline);
    g_ptr_array_add(argv, "--serial");
    g_ptr_array_add(argv, "stdio");
    for (guint i = 0; more[i]; i++) {
        if (*more[i]) {
            g_ptr_array_add(argv, more[i]);
        }
    }
    g_ptr_array_add(argv, NULL);
    r = guest_report_run_full((const char *const *)argv->pdata, T, wait_exit,
                              NULL, NULL, &err);
    g_assert_no_error(err);
    if (!r->done && !r->exited) {
        guest_report_dump(r);
    }
    return r;
}

/* The verdict lines, which must not depend on the VMM. */
static char *
verdicts(const GuestReport *r)
{
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < r->lines->len; i++) {
        const char *l = r->lines->pdata[i];
        if (g_str_has_prefix(l, "GUEST pass") ||
            g_str_has_prefix(l, "GUEST fail") ||
            g_str_has_prefix(l, "GUEST done")) {
            g_string_append_printf(s, "%s\n", l);
        }
    }
    return g_string_free(s, FALSE);
}

static void
test_memtest_same_as_qemu(void)
{
    g_autofree char *qemu = g_find_program_in_path("qemu-system-x86_64");
    const char *qargv[] = {qemu,
                           "-accel",
                           "kvm",
                           "-m",
                           "256",
                           "-kernel",
                           g_getenv("GODWIT_GUEST"),
                           "-append",
                           "memtest",
                           "-display",
                           "none",
                           "-serial",
                           "stdio",
                           "-monitor",
                           "none",
                           "-nodefaults",
                           "-no-reboot",
                           NULL};
    g_autoptr(GuestReport) mine = NULL, theirs = NULL;
    g_autofree char *a = NULL, *b = NULL;

    if (!kvm_usable()) {
        return;
    }
    mine = boot("memtest", "--memory size=256M", false);
    g_assert_true(guest_report_has(mine, "GUEST pass memtest"));
    g_assert_true(mine->done);
    if (!qemu) {
        g_test_message("qemu-system-x86_64 missing: no cross-check");
        return;
    }
    theirs = guest_report_run(qargv, T, NULL);
    a = verdicts(mine);
    b = verdicts(theirs);
    g_assert_cmpstr(a, ==, b);
}

static void
test_dirty_rounds(void)
{
    g_autoptr(GuestReport) r = NULL;

    if (!kvm_usable()) {
        return;
    }
    r = boot("dirty pages=32 rounds=3", NULL, false);
    g_assert_cmpuint(guest_report_count(r, "GUEST dirty round="), ==, 3);
    g_assert_true(guest_report_has(r, "GUEST pass dirty"));
    g_assert_cmpuint(guest_report_count(r, "GUEST fail"), ==, 0);
}

static void
test_pci_list(void)
{
    g_autoptr(GuestReport) r = NULL;

    if (!kvm_usable()) {
        return;
    }
    r = boot("pci-list", NULL, false);
    g_assert_true(guest_report_has(r, "GUEST pci 00:00.0 1b36:0008 "
                                      "class=060000"));
}

static void
test_poweroff(void)
{
    g_autoptr(GuestReport) r = NULL;

    if (!kvm_usable()) {
        return;
    }
    r = boot("poweroff", NULL, true);
    g_assert_nonnull(guest_report_find(r, "GUEST acpi pm1a_cnt=0x604"));
    g_assert_true(r->exited);
    g_assert_cmpint(r->exit_status, ==, 0);
}

static void
test_two_vcpus(void)
{
    g_autoptr(GuestReport) r = NULL;

    if (!kvm_usable()) {
        return;
    }
    r = boot("smp", "--cpus boot=2", false);
    g_assert_true(guest_report_has(r, "GUEST cpus-online 2"));
}

static guint
count_in_file(const char *path, const char *needle, gsize *size)
{
    g_autofree char *text = NULL;
    gsize len = 0;
    guint n = 0;

    if (!g_file_get_contents(path, &text, &len, NULL)) {
        return 0;
    }
    for (const char *p = text; (p = strstr(p, needle)); p++) {
        n++;
    }
    if (size) {
        *size = len;
    }
    return n;
}

/* Waits (bounded) until `path` holds `want` occurrences of `needle`. */
static bool
wait_count(const char *path, const char *needle, guint want)
{
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;

    while (count_in_file(path, needle, NULL) < want) {
        if (g_get_monotonic_time() > deadline) {
            return false;
        }
        g_usleep(10 * 1000); /* polling a file, bounded by the deadline */
    }
    return true;
}

static void
test_pause_stops_progress(void)
{
    g_autofree char *dir = g_dir_make_tmp("godwit-boot-XXXXXX", NULL);
    g_autofree char *serial = g_build_filename(dir, "serial.log", NULL);
    g_autofree char *sock = g_build_filename(dir, "qmp.sock", NULL);
    g_autofree char *ser_arg = g_strdup_printf("file=%s", serial);
    const char *argv[] = {g_getenv("GODWIT_BIN"),
                          "--kernel",
                          g_getenv("GODWIT_GUEST"),
                          "--cmdline",
                          "dirty pages=16 rounds=0",
                          "--serial",
                          ser_arg,
                          "--qmp",
                          sock,
                          NULL};
    g_autoptr(GwQmpConn) c = NULL;
    g_autoptr(GError) err = NULL;
    json_object *r;
    gsize before = 0, after = 0;
    guint rounds;
    GPid pid;
    int status;

    if (!kvm_usable()) {
        g_rmdir(dir);
        return;
    }
    g_assert_true(g_spawn_async(NULL, (char **)argv, NULL,
                                G_SPAWN_DO_NOT_REAP_CHILD, die_with_parent,
                                NULL, &pid, &err));
    c = gw_qmp_conn_new(sock, T, &err);
    g_assert_no_error(err);
    g_assert_true(gw_qmp_conn_negotiate(c, T, &err));
    g_assert_true(wait_count(serial, "GUEST dirty round=", 2));
    r = gw_qmp_conn_execute(c, "stop", NULL, -1, T, &err);
    g_assert_nonnull(json_object_object_get(r, "return"));
    json_object_put(r);
    rounds = count_in_file(serial, "GUEST dirty round=", &before);
    g_usleep(G_USEC_PER_SEC); /* the pause under test: one second */
    g_assert_cmpuint(count_in_file(serial, "GUEST dirty round=", &after), ==,
                     rounds);
    g_assert_cmpuint(after, ==, before); /* not one byte while paused */
    r = gw_qmp_conn_execute(c, "cont", NULL, -1, T, &err);
    json_object_put(r);
    g_assert_true(wait_count(serial, "GUEST dirty round=", rounds + 2));
    g_assert_cmpuint(count_in_file(serial, "GUEST fail", NULL), ==, 0);
    r = gw_qmp_conn_execute(c, "quit", NULL, -1, T, &err);
    json_object_put(r);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    g_unlink(serial);
    g_rmdir(dir);
}

#define VDPA_BLK                                                               \
    "--vdpa-sim name=vdpa0,mgmtdev=vdpasim_blk "                               \
    "--vdpa path=@DIR@/vdpa/vdpa0,id=disk0"

/* The founding spec's example: a 128 MiB vDPA disk the guest uses. */
static void
test_vdpa_blk(void)
{
    g_autoptr(GuestReport) r = NULL;

    if (!kvm_usable()) {
        return;
    }
    r = boot("blk sectors=8 expect-capacity=262144", VDPA_BLK, false);
    g_assert_true(r->done);
    g_assert_true(guest_report_has(r, "GUEST blk 00:01.0 capacity=262144"));
    g_assert_true(guest_report_has(r, "GUEST pass blk"));
    g_assert_null(guest_report_find(r, "GUEST fail"));
}

/* With backing=FILE the guest's writes are in the file afterwards. */
static void
test_vdpa_blk_backing_file(void)
{
    g_autofree char *disk = g_build_filename(runtime_dir, "disk.img", NULL);
    g_autofree char *extra = NULL;
    g_autoptr(GuestReport) r = NULL;

    if (!kvm_usable()) {
        return;
    }
    extra = g_strdup_printf("--vdpa-sim name=vdpa0,mgmtdev=vdpasim_blk,"
                            "capacity=1M,backing=%s "
                            "--vdpa path=@DIR@/vdpa/vdpa0",
                            disk);
    r = boot("blk sectors=8 expect-capacity=2048", extra, false);
    g_assert_true(guest_report_has(r, "GUEST pass blk"));
    g_assert_null(guest_report_find(r, "GUEST fail"));
    g_assert_true(guest_sector_written(disk, 0));
    g_assert_true(guest_sector_written(disk, 7));
    g_assert_false(guest_sector_written(disk, 8));
    g_assert_true(guest_sector_written(disk, 1024));
    g_assert_true(guest_sector_written(disk, 2047));
    g_unlink(disk);
}

/*
 * A vDPA net device (the simulator loops frames to its own MAC back): the
 * guest reads the MAC, sets another over the control queue, and gets
 * every frame back intact; without the control queue (num_queues=2) the
 * frames still loop.
 */
static void
test_vdpa_net(void)
{
#define NET_SIM                                                                \
    "--vdpa-sim name=vdpa1,mgmtdev=vdpasim_net,mac=52:54:00:12:34:56 "
    g_autoptr(GuestReport) r = NULL, r2 = NULL;

    if (!kvm_usable()) {
        return;
    }
    r = boot("net frames=16 mac=52:54:00:12:34:57",
             NET_SIM "--vdpa path=@DIR@/vdpa/vdpa1,num_queues=3", false);
    g_assert_true(guest_report_has(r, "GUEST net 00:01.0 "
                                      "mac=52:54:00:12:34:56"));
    g_assert_true(guest_report_has(r, "GUEST net 00:01.0 "
                                      "mac=52:54:00:12:34:57"));
    g_assert_true(guest_report_has(r, "GUEST pass net frames=16"));
    g_assert_null(guest_report_find(r, "GUEST fail"));
    r2 = boot("net frames=16",
              NET_SIM "--vdpa path=@DIR@/vdpa/vdpa1,num_queues=2", false);
    g_assert_true(guest_report_has(r2, "GUEST pass net frames=16"));
    g_assert_null(guest_report_find(r2, "GUEST fail"));
}

/* The functions carry the ids and classes QEMU gives the same types. */
static void
test_pci_list_vdpa(void)
{
    g_autoptr(GuestReport) r = NULL;

    if (!kvm_usable()) {
        return;
    }
    r = boot("pci-list",
             VDPA_BLK " --vdpa-sim name=vdpa1,mgmtdev=vdpasim_net "
                      "--vdpa path=@DIR@/vdpa/vdpa1,num_queues=3,id=net0",
             false);
    g_assert_true(
        guest_report_has(r, "GUEST pci 00:01.0 1af4:1042 class=010000"));
    g_assert_true(
        guest_report_has(r, "GUEST pci 00:02.0 1af4:1041 class=020000"));
}

int
main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    g_assert_nonnull(g_getenv("GODWIT_GUEST"));
    runtime_dir = g_dir_make_tmp("godwit-boot-XXXXXX", NULL);
    g_assert_nonnull(runtime_dir);
    /* Every godwit of this run makes its vDPA nodes there, so "@DIR@"
     * paths name them (and no run touches /run/godwit). */
    g_setenv("GODWIT_RUNTIME_DIR", runtime_dir, TRUE);
    g_test_add_func("/boot/godwit/memtest-same-verdicts-as-qemu",
                    test_memtest_same_as_qemu);
    g_test_add_func("/boot/godwit/dirty-rounds-pass", test_dirty_rounds);
    g_test_add_func("/boot/godwit/pci-list-shows-host-bridge", test_pci_list);
    g_test_add_func("/boot/godwit/acpi-poweroff-exits-0", test_poweroff);
    g_test_add_func("/boot/godwit/two-vcpus-online", test_two_vcpus);
    g_test_add_func("/boot/godwit/pause-stops-progress-resume-continues",
                    test_pause_stops_progress);
    g_test_add_func("/boot/godwit/vdpa-blk-128M", test_vdpa_blk);
    g_test_add_func("/boot/godwit/vdpa-blk-backing-file-has-the-data",
                    test_vdpa_blk_backing_file);
    g_test_add_func("/boot/godwit/vdpa-net-loopback-and-mac", test_vdpa_net);
    g_test_add_func("/boot/godwit/pci-list-shows-vdpa-functions",
                    test_pci_list_vdpa);
    ret = g_test_run();
    g_assert_true(rm_tree(runtime_dir));
    g_free(runtime_dir);
    return ret;
}
