/* guest-vm: see guest-vm.h. */
#include <string.h>
#include <godwit/util.h>
#include "guest-vm.h"
#include "spawn-util.h"

static char *
expand_dir(const char *arg, const char *dir)
{
    g_auto(GStrv) parts = g_strsplit(arg, "@DIR@", -1);

    return g_strjoinv(dir, parts);
}

static void
add_args(GPtrArray *argv, const Vm *vm, const char *cpus, const char *incoming)
{
    g_autofree char *ser = g_strdup_printf("file=%s", vm->serial);
    const char *base[] = {g_getenv("GODWIT_BIN"),
                          "--kernel",
                          g_getenv("GODWIT_GUEST"),
                          "--cmdline",
                          vm->cmdline ? vm->cmdline : CMDLINE,
                          "--memory",
                          "size=128M",
                          "--cpus",
                          cpus,
                          "--serial",
                          ser,
                          "--qmp",
                          vm->qmp};

    if (vm->netns) { /* `ip netns exec` execs godwit: the pid is godwit's */
        g_ptr_array_add(argv, g_strdup("ip"));
        g_ptr_array_add(argv, g_strdup("netns"));
        g_ptr_array_add(argv, g_strdup("exec"));
        g_ptr_array_add(argv, g_strdup(vm->netns));
    }
    for (size_t i = 0; i < G_N_ELEMENTS(base); i++) {
        g_ptr_array_add(argv, g_strdup(base[i]));
    }
    for (size_t i = 0; vm->extra && vm->extra[i]; i++) {
        g_ptr_array_add(argv, expand_dir(vm->extra[i], vm->dir));
    }
    if (incoming) {
        g_ptr_array_add(argv, g_strdup("--incoming"));
        g_ptr_array_add(argv, g_strdup(incoming));
    }
    g_ptr_array_add(argv, NULL);
}

void
vm_start(Vm *vm, const char *cpus, const char *incoming)
{
    g_autoptr(GError) err = NULL;
    g_auto(GStrv) env = NULL;
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);

    vm->dir = g_dir_make_tmp("godwit-migkvm-XXXXXX", NULL);
    vm->serial = g_build_filename(vm->dir, "serial.log", NULL);
    vm->qmp = g_build_filename(vm->dir, "qmp.sock", NULL);
    add_args(argv, vm, cpus, incoming);
    env = godwit_test_env(vm->dir);
    g_assert_true(g_spawn_async(NULL, (char **)argv->pdata, env,
                                G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH,
                                die_with_parent, NULL, &vm->pid, &err));
    g_assert_no_error(err);
    vm->c = gw_qmp_conn_new(vm->qmp, T, &err);
    g_assert_no_error(err);
    g_assert_true(gw_qmp_conn_negotiate(vm->c, T, &err));
}

void
vm_forget(Vm *vm)
{
    gw_qmp_conn_free(vm->c);
    vm->c = NULL;
    g_assert_true(rm_tree(vm->dir));
    g_clear_pointer(&vm->dir, g_free);
    g_clear_pointer(&vm->serial, g_free);
    g_clear_pointer(&vm->qmp, g_free);
}

void
vm_stop(Vm *vm)
{
    gw_qmp_conn_free(vm->c);
    vm->c = NULL;
    stop_child(vm->pid);
    g_spawn_close_pid(vm->pid);
    vm_forget(vm);
}

json_object *
qmp(Vm *vm, const char *cmd, const char *args)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) a = args ? json_tokener_parse(args) : NULL;
    json_object *r =
        gw_qmp_conn_execute(vm->c, cmd, g_steal_pointer(&a), -1, T, &err);
    json_object *ret;

    g_assert_no_error(err);
    if (!json_object_object_get_ex(r, "return", &ret)) {
        g_error("%s: %s", cmd, json_object_to_json_string(r));
    }
    ret = json_object_get(ret);
    json_object_put(r);
    return ret;
}

void
qmp_void(Vm *vm, const char *cmd, const char *args)
{
    json_object_put(qmp(vm, cmd, args));
}

char *
field(Vm *vm, const char *cmd, const char *key)
{
    g_autoptr(json_object) r = qmp(vm, cmd, NULL);

    return g_strdup(json_object_get_string(json_object_object_get(r, key)));
}

guint
count(const char *path, const char *needle)
{
    g_autofree char *text = NULL;
    guint n = 0;

    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        return 0;
    }
    for (const char *p = text; (p = strstr(p, needle)); p++) {
        n++;
    }
    return n;
}

void
wait_lines(const char *path, const char *needle, guint want)
{
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;

    while (count(path, needle) < want) {
        if (count(path, "GUEST fail")) {
            g_autofree char *text = NULL;
            g_file_get_contents(path, &text, NULL, NULL);
            g_error("the guest failed:\n%s", text);
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(20 * 1000); /* polling a file, bounded */
    }
}

void
wait_rounds(const char *path, guint want)
{
    wait_lines(path, "GUEST dirty round=", want);
}

/* Until query-migrate's status is `want`; "failed" fails the test
 * unless that is what is awaited. */
static void
wait_mig_status(Vm *vm, const char *want)
{
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;

    for (;;) {
        g_autofree char *s = field(vm, "query-migrate", "status");
        if (s && g_str_equal(s, want)) {
            return;
        }
        if (s && g_str_equal(s, "failed")) {
            g_autofree char *why = field(vm, "query-migrate", "error-desc");
            g_error("migration failed: %s", why);
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10 * 1000); /* polling query-migrate, bounded */
    }
}

void
wait_completed(Vm *vm)
{
    wait_mig_status(vm, "completed");
}

void
wait_migration(Vm *vm, const char *want)
{
    wait_mig_status(vm, want);
}

void
wait_state(Vm *vm, const char *want)
{
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;

    for (;;) {
        g_autofree char *s = field(vm, "query-status", "status");
        if (g_str_equal(s, want)) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10 * 1000); /* polling query-status, bounded */
    }
}

void
events_on(Vm *vm)
{
    qmp_void(vm, "migrate-set-capabilities",
             "{\"capabilities\": [{\"capability\": \"events\", "
             "\"state\": true}]}");
}

void
check_moved(Vm *src, Vm *dst)
{
    g_autofree char *s = field(src, "query-status", "status");
    guint before = count(src->serial, "GUEST dirty round=");

    g_assert_cmpstr(s, ==, "postmigrate");
    wait_state(dst, "running");
    wait_rounds(dst->serial, 3); /* three full rounds, all pages checked */
    g_assert_cmpuint(count(dst->serial, "GUEST fail"), ==, 0);
    g_assert_cmpuint(count(src->serial, "GUEST dirty round="), ==, before);
}
