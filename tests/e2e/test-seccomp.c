/*
 * --seccomp, proven per thread role: tests/debug/godwit-debug's
 * x-godwit-debug-syscall makes one thread of a role call personality(2),
 * which no allow-list has.  With `true` godwit dies by SIGSYS after one
 * line on stderr naming the role and the syscall; with `log` it runs on
 * (the kernel logs it); with `false` no filter exists at all.  Each
 * thread of a sandboxed godwit carries its filters (main's, and its
 * role's on top).  vCPU, migration and svq-relay (a vDPA disk on shadow
 * virtqueues during a migration) roles need /dev/kvm and skip
 * visibly without it.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <glib/gstdio.h>
#include <godwit/qmp-client.h>
#include <godwit/util.h>
#include "spawn-util.h"

#define T 120000

typedef struct {
    char *dir, *qmp, *err, *serial;
    char *disk; /* svq-relay: the vDPA disk's backing file */
    GPid pid;
    GwQmpConn *c;
} Vm;

typedef struct {
    const char *role;
    const char *mode;
} Case;

/* No core file from the SIGSYS: a guest's RAM is not worth the disk. */
static void
child_setup(gpointer data)
{
    struct rlimit none = {0, 0};

    setrlimit(RLIMIT_CORE, &none);
    die_with_parent(data);
}

static void
vm_start(Vm *vm, const char *mode, const char *role, const char *incoming,
         const char *disk)
{
    g_autoptr(GError) err = NULL;
    g_auto(GStrv) env = NULL;
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GPtrArray) owned = g_ptr_array_new_with_free_func(g_free);
    bool kvm = !g_str_equal(role, "main") && !g_str_equal(role, "vdpa-sim");
    bool svq = g_str_equal(role, "svq-relay");
    g_autofree char *ser = NULL, *sim = NULL;
    int efd;

    vm->dir = g_dir_make_tmp("godwit-seccomp-XXXXXX", NULL);
    vm->qmp = g_build_filename(vm->dir, "qmp.sock", NULL);
    vm->err = g_build_filename(vm->dir, "stderr", NULL);
    g_ptr_array_add(argv, (char *)g_getenv("GODWIT_DEBUG_BIN"));
    g_ptr_array_add(argv, "--seccomp");
    g_ptr_array_add(argv, (char *)mode);
    /* svq-relay: a vDPA disk on a file both VMs share (disk) and the
     * guest's blk workload, whose rounds show in the serial file. */
    vm->serial = g_build_filename(vm->dir, "serial.log", NULL);
    vm->disk =
        disk ? g_strdup(disk) : g_build_filename(vm->dir, "disk.img", NULL);
    ser = g_strdup_printf("file=%s", vm->serial);
    sim = g_strdup_printf("name=d0,mgmtdev=vdpasim_blk,capacity=1M,"
                          "backing=%s",
                          vm->disk);
    g_ptr_array_add(argv, "--serial");
    g_ptr_array_add(argv, svq ? ser : "off");
    if (svq) {
        const char *v[] = {"--vdpa-sim", sim, "--vdpa",
                           "path=@DIR@/vdpa/d0,id=disk0"};
        for (size_t i = 0; i < G_N_ELEMENTS(v); i++) {
            g_auto(GStrv) parts = g_strsplit(v[i], "@DIR@", -1);
            g_ptr_array_add(owned, g_strjoinv(vm->dir, parts));
            g_ptr_array_add(argv, owned->pdata[owned->len - 1]);
        }
    }
    g_ptr_array_add(argv, "--qmp");
    g_ptr_array_add(argv, vm->qmp);
    if (kvm) {
        const char *k[] = {
            "--kernel",  g_getenv("GODWIT_GUEST"),
            "--cmdline", svq ? "blk rounds=0" : "dirty pages=16 rounds=0",
            "--memory",  "size=64M"};
        for (size_t i = 0; i < G_N_ELEMENTS(k); i++) {
            g_ptr_array_add(argv, (char *)k[i]);
        }
    }
    if (g_str_equal(role, "vdpa-sim")) {
        g_ptr_array_add(argv, "--vdpa-sim");
        g_ptr_array_add(argv, "name=vdpa0,mgmtdev=vdpasim_blk");
    }
    if (incoming) {
        g_ptr_array_add(argv, "--incoming");
        g_ptr_array_add(argv, (char *)incoming);
    }
    g_ptr_array_add(argv, NULL);
    env = godwit_test_env(vm->dir);
    efd = open(vm->err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    g_assert_cmpint(efd, >=, 0);
    g_assert_true(g_spawn_async_with_fds(NULL, (char **)argv->pdata, env,
                                         G_SPAWN_DO_NOT_REAP_CHILD, child_setup,
                                         NULL, &vm->pid, -1, -1, efd, &err));
    g_assert_no_error(err);
    close(efd);
    vm->c = gw_qmp_conn_new(vm->qmp, T, &err);
    g_assert_no_error(err);
    g_assert_true(gw_qmp_conn_negotiate(vm->c, T, &err));
}

static void
vm_free(Vm *vm)
{
    g_clear_pointer(&vm->c, gw_qmp_conn_free);
    if (vm->pid) {
        stop_child(vm->pid);
        g_spawn_close_pid(vm->pid);
    }
    g_assert_true(rm_tree(vm->dir));
    g_free(vm->dir);
    g_free(vm->qmp);
    g_free(vm->err);
    g_free(vm->serial);
    g_free(vm->disk);
}

/* The reply to cmd, or NULL once the connection is gone. */
static json_object *
execute(Vm *vm, const char *cmd, const char *args)
{
    g_autoptr(GError) err = NULL;
    json_object *a = args ? json_tokener_parse(args) : NULL;

    return gw_qmp_conn_execute(vm->c, cmd, a, -1, T, &err);
}

static void
must_ok(Vm *vm, const char *cmd, const char *args)
{
    g_autoptr(json_object) r = execute(vm, cmd, args);

    g_assert_nonnull(r);
    if (!json_object_object_get_ex(r, "return", NULL)) {
        g_error("%s: %s", cmd, json_object_to_json_string(r));
    }
}

static char *
status_of(Vm *vm, const char *cmd, const char *key)
{
    g_autoptr(json_object) r = execute(vm, cmd, NULL);
    json_object *ret = NULL;

    g_assert_true(r && json_object_object_get_ex(r, "return", &ret));
    return g_strdup(json_object_get_string(json_object_object_get(ret, key)));
}

static void
wait_migration(Vm *vm, const char *want)
{
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;

    for (;;) {
        g_autofree char *s = status_of(vm, "query-migrate", "status");
        if (s && g_str_equal(s, want)) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10 * 1000); /* polling query-migrate, bounded */
    }
}

/* "Seccomp:" of every thread of pid: 2 (filtering) or 0 (none): so
 * GLib's own threads are covered, and `false` really installs nothing. */
static void
assert_threads_filtered(GPid pid, bool filtered)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/task", pid);
    g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
    const char *tid;
    guint n = 0;

    g_assert_nonnull(d);
    while ((tid = g_dir_read_name(d))) {
        g_autofree char *st = g_strdup_printf("%s/%s/status", path, tid);
        g_autofree char *text = NULL;
        if (!g_file_get_contents(st, &text, NULL, NULL) ||
            g_str_has_prefix(text, "Name:\tkvm-")) {
            continue; /* gone, or KVM's kernel worker (not godwit's) */
        }
        g_assert_nonnull(
            strstr(text, filtered ? "\nSeccomp:\t2\n" : "\nSeccomp:\t0\n"));
        n++;
    }
    g_assert_cmpuint(n, >, 0);
}

/* Until the guest's vDPA disk has run a round (bounded). */
static void
wait_disk_running(Vm *vm)
{
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;

    for (;;) {
        g_autofree char *text = NULL;
        if (g_file_get_contents(vm->serial, &text, NULL, NULL) &&
            strstr(text, "round=1 pass")) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(20 * 1000); /* polling a file, bounded */
    }
}

/* Roles whose thread lives only while a migration runs: a source (vm)
 * migrating to dst, both waiting in pre-switchover; for svq-relay, with
 * the guest's vDPA disk on shadow virtqueues. */
static bool
needs_migration(const Case *c)
{
    return g_str_has_prefix(c->role, "mig-") ||
           g_str_equal(c->role, "svq-relay");
}

/* A running VM with a thread of role c->role. */
static void
setup(const Case *c, Vm *vm, Vm *dst)
{
    g_autofree char *in = NULL, *args = NULL;
    const char *kind = g_str_equal(c->role, "svq-relay") ? c->role : "vcpu";

    if (!needs_migration(c)) {
        vm_start(vm, c->mode, c->role, NULL, NULL);
        return;
    }
    vm_start(vm, c->mode, kind, NULL, NULL);
    if (g_str_equal(kind, "svq-relay")) {
        wait_disk_running(vm);
    }
    in = g_strdup_printf("unix:%s/mig.sock", vm->dir);
    args = g_strdup_printf("{\"uri\": \"%s\"}", in);
    vm_start(dst, c->mode, kind, in, vm->disk);
    must_ok(vm, "migrate-set-capabilities",
            "{\"capabilities\": [{\"capability\": "
            "\"pause-before-switchover\", \"state\": true}]}");
    must_ok(vm, "migrate", args);
    wait_migration(vm, "pre-switchover");
}

static void
check_killed(Vm *vm, const Case *c)
{
    g_autofree char *args = g_strdup_printf("{\"role\": \"%s\"}", c->role);
    g_autofree char *text = NULL, *want = NULL;
    g_autoptr(json_object) r = NULL;
    g_auto(GStrv) lines = NULL;
    guint n = 0;
    int status;

    assert_threads_filtered(vm->pid, true);
    r = execute(vm, "x-godwit-debug-syscall", args);
    g_assert_true(!r || !json_object_object_get_ex(r, "return", NULL));
    g_assert_cmpint(waitpid(vm->pid, &status, 0), ==, vm->pid);
    vm->pid = 0;
    g_assert_true(WIFSIGNALED(status));
    g_assert_cmpint(WTERMSIG(status), ==, SIGSYS);
    g_assert_true(g_file_get_contents(vm->err, &text, NULL, NULL));
    lines = g_strsplit(text, "\n", -1);
    want = g_strdup_printf("seccomp: thread role %s: forbidden syscall "
                           "personality (",
                           c->role);
    for (guint i = 0; lines[i]; i++) {
        if (strstr(lines[i], "seccomp")) {
            g_assert_nonnull(strstr(lines[i], want));
            n++;
        }
    }
    g_assert_cmpuint(n, ==, 1);
}

/* log and false: the call is made and godwit goes on serving. */
static void
check_survives(Vm *vm, const Case *c)
{
    g_autofree char *args = g_strdup_printf("{\"role\": \"%s\"}", c->role);
    g_autofree char *text = NULL, *st = NULL;
    int status;

    assert_threads_filtered(vm->pid, g_str_equal(c->mode, "log"));
    must_ok(vm, "x-godwit-debug-syscall", args);
    st = status_of(vm, "query-status", "status");
    g_assert_nonnull(st);
    g_assert_cmpint(waitpid(vm->pid, &status, WNOHANG), ==, 0);
    g_assert_true(g_file_get_contents(vm->err, &text, NULL, NULL));
    g_assert_null(strstr(text, "forbidden syscall"));
}

static void
test_case(gconstpointer data)
{
    const Case *c = data;
    Vm vm = {0}, dst = {0};
    bool mig = needs_migration(c);
    Vm *tested = g_str_equal(c->role, "mig-recv") ? &dst : &vm;

    if ((mig || g_str_equal(c->role, "vcpu")) && !kvm_usable()) {
        return;
    }
    setup(c, &vm, &dst);
    if (g_str_equal(c->mode, "true")) {
        check_killed(tested, c);
    } else {
        check_survives(tested, c);
    }
    vm_free(&vm);
    if (mig) {
        vm_free(&dst);
    }
}

/*
 * A thread of role c->role (under `true`) stats /etc/localtime, as
 * GLib's log timestamp does now and then on any thread that logs: the
 * filter answers ENOENT (as for its opens) and godwit serves on, where
 * the stat used to kill it.
 */
static void
test_stat_refused(gconstpointer data)
{
    const Case *c = data;
    Vm vm = {0}, dst = {0};
    bool mig = needs_migration(c);
    g_autofree char *args = NULL;
    g_autoptr(json_object) r = NULL;
    json_object *ret = NULL;
    int status;

    if (!g_str_equal(c->role, "vdpa-sim") && !kvm_usable()) {
        return;
    }
    setup(c, &vm, &dst);
    args = g_strdup_printf("{\"role\": \"%s\", \"call\": \"stat\"}", c->role);
    r = execute(&vm, "x-godwit-debug-syscall", args);
    g_assert_true(r && json_object_object_get_ex(r, "return", &ret));
    g_assert_cmpint(json_object_get_int(json_object_object_get(ret, "errno")),
                    ==, ENOENT);
    g_assert_cmpint(waitpid(vm.pid, &status, WNOHANG), ==, 0);
    vm_free(&vm);
    if (mig) {
        vm_free(&dst);
    }
}

int
main(int argc, char **argv)
{
    static const char *const roles[] = {"main",     "vcpu",     "vdpa-sim",
                                        "mig-send", "mig-recv", "svq-relay"};
    static const char *const modes[] = {"true", "log", "false"};
    static const char *const what[] = {"dies-by-sigsys-with-one-line",
                                       "survives", "installs-nothing"};
    static Case cases[G_N_ELEMENTS(roles) * G_N_ELEMENTS(modes)];
    guint n = 0;

    g_test_init(&argc, &argv, NULL);
    static const Case stat_cases[] = {
        {"vcpu", "true"}, {"vdpa-sim", "true"}, {"svq-relay", "true"}};
    for (size_t i = 0; i < G_N_ELEMENTS(stat_cases); i++) {
        g_autofree char *path = g_strdup_printf(
            "/seccomp/true/%s/stat-answered-enoent", stat_cases[i].role);
        g_test_add_data_func(path, &stat_cases[i], test_stat_refused);
    }
    for (size_t m = 0; m < G_N_ELEMENTS(modes); m++) {
        for (size_t r = 0; r < G_N_ELEMENTS(roles); r++) {
            g_autofree char *path = g_strdup_printf(
                "/seccomp/%s/%s/%s", modes[m], roles[r], what[m]);
            cases[n] = (Case){roles[r], modes[m]};
            g_test_add_data_func(path, &cases[n++], test_case);
        }
    }
    return g_test_run();
}
