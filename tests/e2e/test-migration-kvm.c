/*
 * Live migration of the real test guest on KVM: its `dirty rounds=0`
 * workload stamps pages and verifies every one each round, forever, so
 * a page the migration failed to copy (or a vCPU register, an APIC, the
 * serial line) shows as `GUEST fail` or as rounds that stop.  The guest
 * must go on passing rounds on the destination, with 1 and 2 vCPUs and
 * over each transport; the source ends in postmigrate.  Skipped visibly
 * without /dev/kvm.
 */
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <glib/gstdio.h>
#include <godwit/qmp-client.h>
#include <godwit/util.h>
#include "guest-vm.h"
#include "spawn-util.h"

static void
migrate_live(const char *cpus, bool tcp)
{
    Vm src = {0}, dst = {0};
    g_autofree char *in = NULL, *args = NULL, *sockdir = NULL;
    int port = 0;

    if (!kvm_usable()) {
        return;
    }
    if (tcp) {
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        g_assert_cmpint(bind(fd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
        g_assert_cmpint(getsockname(fd, (struct sockaddr *)&a, &len), ==, 0);
        port = ntohs(a.sin_port);
        close(fd);
        in = g_strdup_printf("tcp:127.0.0.1:%d", port);
    }
    vm_start(&src, cpus, NULL);
    wait_rounds(src.serial, 2);
    if (!tcp) {
        sockdir = g_dir_make_tmp("godwit-migsock-XXXXXX", NULL);
        in = g_strdup_printf("unix:%s/mig.sock", sockdir);
    }
    vm_start(&dst, cpus, in);
    events_on(&src);
    args = g_strdup_printf("{\"uri\": \"%s\"}", in);
    qmp_void(&src, "migrate", args);
    wait_completed(&src);
    check_moved(&src, &dst);
    vm_stop(&src);
    vm_stop(&dst);
    if (sockdir) {
        g_assert_true(rm_tree(sockdir));
    }
}

static void
test_unix_1cpu(void)
{
    migrate_live("boot=1", false);
}

static void
test_unix_2cpu(void)
{
    migrate_live("boot=2", false);
}

static void
test_tcp_2cpu(void)
{
    migrate_live("boot=2", true);
}

/* Same-host handover (mode cpr-transfer): the source's memfd becomes the
 * destination's guest RAM, no page copied; the rounds go on there. */
static void
test_cpr_2cpu(void)
{
    Vm src = {0}, dst = {0};
    g_autofree char *sockdir = NULL, *in = NULL, *args = NULL;
    g_autoptr(json_object) r = NULL;
    json_object *ram;

    if (!kvm_usable()) {
        return;
    }
    vm_start(&src, "boot=2", NULL);
    wait_rounds(src.serial, 2);
    sockdir = g_dir_make_tmp("godwit-migsock-XXXXXX", NULL);
    in = g_strdup_printf("unix:%s/mig.sock", sockdir);
    args = g_strdup_printf("{\"uri\": \"%s\"}", in);
    vm_start(&dst, "boot=2", "defer");
    qmp_void(&dst, "migrate-set-parameters", "{\"mode\": \"cpr-transfer\"}");
    qmp_void(&dst, "migrate-incoming", args);
    qmp_void(&src, "migrate-set-parameters", "{\"mode\": \"cpr-transfer\"}");
    qmp_void(&src, "migrate", args);
    wait_completed(&src);
    r = qmp(&src, "query-migrate", NULL);
    ram = json_object_object_get(r, "ram");
    g_assert_cmpint(
        json_object_get_int64(json_object_object_get(ram, "normal")), ==, 0);
    check_moved(&src, &dst);
    vm_stop(&src);
    vm_stop(&dst);
    g_assert_true(rm_tree(sockdir));
}

/* multifd ×4 channels with zstd: the destination set up as libvirt does
 * (--incoming defer, capabilities, then migrate-incoming). */
static void
test_multifd_zstd(void)
{
    static const char *const setup[][2] = {
        {"migrate-set-capabilities",
         "{\"capabilities\": [{\"capability\": \"multifd\", "
         "\"state\": true}]}"},
        {"migrate-set-parameters",
         "{\"multifd-channels\": 4, \"multifd-compression\": \"zstd\"}"},
    };
    Vm src = {0}, dst = {0};
    g_autofree char *sockdir = NULL, *in = NULL, *args = NULL;

    if (!kvm_usable()) {
        return;
    }
    sockdir = g_dir_make_tmp("godwit-migsock-XXXXXX", NULL);
    in = g_strdup_printf("unix:%s/mig.sock", sockdir);
    args = g_strdup_printf("{\"uri\": \"%s\"}", in);
    vm_start(&src, "boot=2", NULL);
    wait_rounds(src.serial, 2);
    vm_start(&dst, "boot=2", "defer");
    for (size_t i = 0; i < G_N_ELEMENTS(setup); i++) {
        qmp_void(&src, setup[i][0], setup[i][1]);
        qmp_void(&dst, setup[i][0], setup[i][1]);
    }
    qmp_void(&dst, "migrate-incoming", args);
    qmp_void(&src, "migrate", args);
    wait_completed(&src);
    check_moved(&src, &dst);
    vm_stop(&src);
    vm_stop(&dst);
    g_assert_true(rm_tree(sockdir));
}

/* A paused guest saved to a file and restored: paused, then `cont`. */
static void
test_file(void)
{
    Vm src = {0}, dst = {0};
    g_autofree char *path = NULL, *in = NULL, *args = NULL, *st = NULL;

    if (!kvm_usable()) {
        return;
    }
    vm_start(&src, "boot=1", NULL);
    wait_rounds(src.serial, 2);
    qmp_void(&src, "stop", NULL);
    path = g_build_filename(src.dir, "vm.state", NULL);
    args = g_strdup_printf("{\"uri\": \"file:%s\"}", path);
    qmp_void(&src, "migrate", args);
    wait_completed(&src);
    in = g_strdup_printf("file:%s", path);
    vm_start(&dst, "boot=1", in);
    wait_completed(&dst);
    st = field(&dst, "query-status", "status");
    g_assert_cmpstr(st, ==, "paused");
    qmp_void(&dst, "cont", NULL);
    wait_rounds(dst.serial, 3);
    g_assert_cmpuint(count(dst.serial, "GUEST fail"), ==, 0);
    g_unlink(path);
    vm_stop(&src);
    vm_stop(&dst);
}

/* ---- failure: the source's guest runs on, and a retry succeeds ---- */

/*
 * The destination dies while the source waits in pre-switchover (vCPUs
 * paused, everything sent but the last pages and the devices): the
 * source must resume its guest, which goes on passing rounds.
 */
static void
test_kill_dst_at_switchover(void)
{
    Vm src = {0}, dst = {0}, again = {0};
    g_autofree char *dir = NULL, *in = NULL, *args = NULL, *st = NULL;
    guint rounds;
    int status;

    if (!kvm_usable()) {
        return;
    }
    dir = g_dir_make_tmp("godwit-migsock-XXXXXX", NULL);
    in = g_strdup_printf("unix:%s/mig.sock", dir);
    args = g_strdup_printf("{\"uri\": \"%s\"}", in);
    vm_start(&src, "boot=2", NULL);
    wait_rounds(src.serial, 2);
    vm_start(&dst, "boot=2", in);
    qmp_void(&src, "migrate-set-capabilities",
             "{\"capabilities\": [{\"capability\": "
             "\"pause-before-switchover\", \"state\": true}]}");
    qmp_void(&src, "migrate", args);
    wait_migration(&src, "pre-switchover");
    kill(dst.pid, SIGKILL);
    g_assert_cmpint(waitpid(dst.pid, &status, 0), ==, dst.pid);
    dst.pid = 0;
    qmp_void(&src, "migrate-continue", "{\"state\": \"pre-switchover\"}");
    wait_migration(&src, "failed");
    st = field(&src, "query-status", "status");
    g_assert_cmpstr(st, ==, "running");
    rounds = count(src.serial, "GUEST dirty round=");
    wait_rounds(src.serial, rounds + 2); /* the guest goes on, unharmed */
    vm_forget(&dst);
    /* And a second migration succeeds. */
    qmp_void(&src, "migrate-set-capabilities",
             "{\"capabilities\": [{\"capability\": "
             "\"pause-before-switchover\", \"state\": false}]}");
    vm_start(&again, "boot=2", in);
    qmp_void(&src, "migrate", args);
    wait_completed(&src);
    check_moved(&src, &again);
    vm_stop(&src);
    vm_stop(&again);
    g_assert_true(rm_tree(dir));
}

/* ---- auto-converge: a guest dirtying faster than max-bandwidth ---- */

/* 16 pages at 32 kB/s: a pass takes 2 s; the guest must rewrite more
 * than 2 of them meanwhile to never fit 300 ms, and at 1 % (the 99 %
 * throttle) dirty fewer than the link carries: this guest's speed on
 * a loaded or nested host, 2 … 500 pages/s, is in that window. */
#define AC_CMDLINE        "dirty pages=16 rounds=0"
#define AC_BANDWIDTH_ARGS "{\"max-bandwidth\": 32000}"

/* A destination that ended by itself with status 1 (a cancelled
 * migration). */
static void
vm_reap_failed(Vm *vm)
{
    int status = 0;

    g_assert_cmpint(waitpid(vm->pid, &status, 0), ==, vm->pid);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 1);
    g_spawn_close_pid(vm->pid);
    gw_qmp_conn_free(vm->c);
    g_assert_true(rm_tree(vm->dir));
    g_free(vm->dir);
    g_free(vm->serial);
    g_free(vm->qmp);
}

/* Without auto-converge: query-migrate says it does not converge, and
 * no throttle shows; then cancelled, the guest runs on. */
static void
not_converging_then_cancel(Vm *src, const char *in)
{
    Vm dst = {.cmdline = AC_CMDLINE};
    g_autofree char *args = g_strdup_printf("{\"uri\": \"%s\"}", in);
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;
    guint rounds;

    vm_start(&dst, "boot=1", in);
    qmp_void(src, "migrate", args);
    wait_migration(src, "active");
    for (;;) {
        g_autoptr(json_object) r = qmp(src, "query-migrate", NULL);
        g_assert_false(
            json_object_object_get_ex(r, "cpu-throttle-percentage", NULL));
        if (json_object_object_get_ex(r, "x-godwit-not-converging", NULL)) {
            break;
        }
        g_assert_cmpstr(
            json_object_get_string(json_object_object_get(r, "status")), ==,
            "active");
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(50 * 1000); /* polling query-migrate, bounded */
    }
    qmp_void(src, "migrate_cancel", NULL);
    wait_migration(src, "cancelled");
    vm_reap_failed(&dst);
    rounds = count(src->serial, "GUEST dirty round=");
    wait_rounds(src->serial, rounds + 2);
}

/* With it: the throttle shows, rises, and the migration completes. */
static void
converge_throttled(Vm *src, Vm *dst, const char *in)
{
    g_autofree char *args = g_strdup_printf("{\"uri\": \"%s\"}", in);
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;
    int64_t first = 0, seen = 0;

    qmp_void(src, "migrate-set-capabilities",
             "{\"capabilities\": [{\"capability\": \"auto-converge\", "
             "\"state\": true}]}");
    qmp_void(src, "migrate-set-parameters",
             "{\"cpu-throttle-initial\": 50, \"cpu-throttle-increment\": 25}");
    qmp_void(src, "migrate", args);
    for (;;) {
        g_autoptr(json_object) r = qmp(src, "query-migrate", NULL);
        const char *st =
            json_object_get_string(json_object_object_get(r, "status"));
        json_object *pct;
        if (json_object_object_get_ex(r, "cpu-throttle-percentage", &pct)) {
            g_assert_cmpint(json_object_get_int64(pct), >=, seen);
            seen = json_object_get_int64(pct);
            first = first ? first : seen;
        }
        if (g_str_equal(st, "completed")) {
            break;
        }
        g_assert_cmpstr(st, !=, "failed");
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(50 * 1000); /* polling query-migrate, bounded */
    }
    g_test_message("throttle first %" G_GINT64_FORMAT
                   " %%, last %" G_GINT64_FORMAT " %%",
                   first, seen);
    g_assert_cmpint(first, ==, 50);
    check_moved(src, dst);
}

/*
 * The real guest's `dirty pages=16` workload rewrites its 64 KiB far
 * faster than 32 kB/s carries it: without auto-converge pre-copy is
 * reported as not converging (and cancelled); with it the vCPUs are
 * throttled (cpu-throttle-percentage from 50 %, by 25, to 99) until it
 * converges, and the workload passes on the destination.
 */
static void
test_auto_converge(void)
{
    Vm src = {.cmdline = AC_CMDLINE}, dst = {.cmdline = AC_CMDLINE};
    g_autofree char *dir = NULL, *in = NULL;

    if (!kvm_usable()) {
        return;
    }
    dir = g_dir_make_tmp("godwit-migsock-XXXXXX", NULL);
    in = g_strdup_printf("unix:%s/mig.sock", dir);
    vm_start(&src, "boot=1", NULL);
    wait_rounds(src.serial, 2);
    events_on(&src);
    qmp_void(&src, "migrate-set-parameters", AC_BANDWIDTH_ARGS);
    not_converging_then_cancel(&src, in);
    vm_start(&dst, "boot=1", in);
    converge_throttled(&src, &dst, in);
    vm_stop(&src);
    vm_stop(&dst);
    g_assert_true(rm_tree(dir));
}

/* ---- two hosts: network namespaces joined by a veth pair ---- */

static bool
sh(const char *cmd)
{
    int status = -1;

    return g_spawn_command_line_sync(cmd, NULL, NULL, &status, NULL) &&
           g_spawn_check_wait_status(status, NULL);
}

/* Namespaces `a` and `b`, 10.199.0.1 and .2 on a veth pair. */
static bool
make_hosts(const char *a, const char *b, const char *va, const char *vb)
{
    char *cmds[] = {
        g_strdup_printf("ip netns add %s", a),
        g_strdup_printf("ip netns add %s", b),
        g_strdup_printf("ip link add %s type veth peer name %s", va, vb),
        g_strdup_printf("ip link set %s netns %s", va, a),
        g_strdup_printf("ip link set %s netns %s", vb, b),
        g_strdup_printf("ip -n %s addr add 10.199.0.1/24 dev %s", a, va),
        g_strdup_printf("ip -n %s addr add 10.199.0.2/24 dev %s", b, vb),
        g_strdup_printf("ip -n %s link set %s up", a, va),
        g_strdup_printf("ip -n %s link set %s up", b, vb),
        NULL};
    bool ok = true;

    for (size_t i = 0; cmds[i] && ok; i++) {
        ok = sh(cmds[i]);
    }
    for (size_t i = 0; cmds[i]; i++) {
        g_free(cmds[i]);
    }
    return ok;
}

static void
test_netns(void)
{
    g_autofree char *a = g_strdup_printf("gwmig-%d-a", getpid());
    g_autofree char *b = g_strdup_printf("gwmig-%d-b", getpid());
    g_autofree char *va = g_strdup_printf("gw%da", getpid() % 100000);
    g_autofree char *vb = g_strdup_printf("gw%db", getpid() % 100000);
    g_autofree char *del_a = g_strdup_printf("ip netns del %s", a);
    g_autofree char *del_b = g_strdup_printf("ip netns del %s", b);
    g_autofree char *ip = g_find_program_in_path("ip");
    Vm src = {.netns = a}, dst = {.netns = b};
    const char *in = "tcp:10.199.0.2:4444";

    if (!kvm_usable()) {
        return;
    }
    if (geteuid() != 0 || !ip || !make_hosts(a, b, va, vb)) {
        sh(del_a);
        sh(del_b);
        g_test_skip("cannot make network namespaces here (needs root and "
                    "iproute2)");
        return;
    }
    vm_start(&src, "boot=1", NULL);
    wait_rounds(src.serial, 2);
    vm_start(&dst, "boot=1", in);
    events_on(&src);
    qmp_void(&src, "migrate", "{\"uri\": \"tcp:10.199.0.2:4444\"}");
    wait_completed(&src);
    check_moved(&src, &dst);
    vm_stop(&src);
    vm_stop(&dst);
    g_assert_true(sh(del_a));
    g_assert_true(sh(del_b)); /* the veth pair goes with them */
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/migration/kvm/unix/dirty-rounds-go-on/1-vcpu",
                    test_unix_1cpu);
    g_test_add_func("/migration/kvm/unix/dirty-rounds-go-on/2-vcpus",
                    test_unix_2cpu);
    g_test_add_func("/migration/kvm/tcp/dirty-rounds-go-on/2-vcpus",
                    test_tcp_2cpu);
    g_test_add_func("/migration/kvm/cpr-transfer/dirty-rounds-go-on/2-vcpus",
                    test_cpr_2cpu);
    g_test_add_func("/migration/kvm/multifd/4-channels-zstd/2-vcpus",
                    test_multifd_zstd);
    g_test_add_func("/migration/kvm/file/paused-saved-restored-cont",
                    test_file);
    g_test_add_func("/migration/kvm/fail/destination-killed-at-switch-over",
                    test_kill_dst_at_switchover);
    g_test_add_func("/migration/kvm/netns/between-two-hosts-over-veth",
                    test_netns);
    g_test_add_func("/migration/kvm/auto-converge/throttled-until-it-converges",
                    test_auto_converge);
    return g_test_run();
}
