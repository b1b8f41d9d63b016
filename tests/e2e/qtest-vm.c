/*
 * A godwit process under the qtest accelerator, for end-to-end tests.
 * See qtest-vm.h.
 */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <glib/gstdio.h>
#include <godwit/util.h>
#include "qtest-vm.h"
#include "spawn-util.h"

static int
open_trace(void)
{
    static unsigned n;
    const char *dir = g_getenv("GW_TEST_TRACE_DIR");
    g_autofree char *prog = g_path_get_basename(g_get_prgname());
    g_autofree char *name = NULL;
    g_autofree char *path = NULL;

    if (!dir) {
        return -1;
    }
    name = g_strdup_printf("%s-%d-%u", prog, (int)getpid(), n++);
    path = g_build_filename(dir, name, NULL);
    return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
}

void
gw_test_vm_start(GwTestVm *vm, const char *const *args)
{
    g_autoptr(GError) err = NULL;
    g_auto(GStrv) env = NULL;
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    const char *base[] = {"--memory", "size=64M", "--serial", "off"};

    vm->dir = g_dir_make_tmp("godwit-qtest-XXXXXX", NULL);
    g_assert_nonnull(vm->dir);
    vm->qmp_sock = g_build_filename(vm->dir, "qmp.sock", NULL);
    vm->qt_sock = g_build_filename(vm->dir, "qtest.sock", NULL);
    g_ptr_array_add(argv, g_strdup(g_getenv("GODWIT_BIN")));
    g_ptr_array_add(argv, g_strdup("--qtest"));
    g_ptr_array_add(argv, g_strdup(vm->qt_sock));
    g_ptr_array_add(argv, g_strdup("--qmp"));
    g_ptr_array_add(argv, g_strdup(vm->qmp_sock));
    for (size_t i = 0; i < G_N_ELEMENTS(base); i++) {
        g_ptr_array_add(argv, g_strdup(base[i]));
    }
    for (size_t i = 0; args && args[i]; i++) {
        g_auto(GStrv) parts = g_strsplit(args[i], "@DIR@", -1);
        g_ptr_array_add(argv, g_strjoinv(vm->dir, parts));
    }
    g_ptr_array_add(argv, NULL);
    env = godwit_test_env(vm->dir);
    g_assert_true(g_spawn_async(NULL, (char **)argv->pdata, env,
                                G_SPAWN_DO_NOT_REAP_CHILD, die_with_parent,
                                NULL, &vm->pid, &err));
    g_assert_no_error(err);
    vm->c = gw_qmp_conn_new(vm->qmp_sock, GW_TEST_VM_WAIT_MS, &err);
    g_assert_no_error(err);
    g_assert_true(gw_qmp_conn_negotiate(vm->c, GW_TEST_VM_WAIT_MS, &err));
    vm->qt = gw_qt_connect(vm->qt_sock, GW_TEST_VM_WAIT_MS, &err);
    g_assert_no_error(err);
    vm->trace_fd = open_trace();
    gw_qt_set_trace(vm->qt, vm->trace_fd);
}

void
gw_test_vm_stop(GwTestVm *vm)
{
    int status = -1;

    gw_qt_free(vm->qt);
    gw_qmp_conn_free(vm->c);
    if (vm->trace_fd > 0) {
        close(vm->trace_fd);
    }
    kill(vm->pid, SIGTERM);
    waitpid(vm->pid, &status, 0);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    g_spawn_close_pid(vm->pid);
    g_remove(vm->qmp_sock);
    g_remove(vm->qt_sock);
    g_free(vm->qmp_sock);
    g_free(vm->qt_sock);
    /* godwit removed its nodes: the directory must be empty. */
    g_assert_cmpint(g_rmdir(vm->dir), ==, 0);
    g_free(vm->dir);
    *vm = (GwTestVm){.trace_fd = -1};
}

static void
trace_qmp(GwTestVm *vm, const char *cmd, json_object *args)
{
    g_autoptr(json_object) req = json_object_new_object();
    const char *text;

    if (vm->trace_fd <= 0) { /* 0: a GwTestVm made by hand */
        return;
    }
    json_object_object_add(req, "execute", json_object_new_string(cmd));
    if (args) {
        json_object_object_add(req, "arguments", json_object_get(args));
    }
    text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
    if (write(vm->trace_fd, text, strlen(text)) < 0 ||
        write(vm->trace_fd, "\n", 1) < 0) {
        g_warning("trace: %s", g_strerror(errno));
    }
}

json_object *
gw_test_vm_qmp(GwTestVm *vm, const char *cmd, const char *args_json, int fd)
{
    g_autoptr(GError) err = NULL;
    json_object *args = args_json ? json_tokener_parse(args_json) : NULL;
    json_object *r;

    g_assert_true(!args_json || args);
    trace_qmp(vm, cmd, args);
    r = gw_qmp_conn_execute(vm->c, cmd, args, fd, GW_TEST_VM_WAIT_MS, &err);
    g_assert_no_error(err);
    return r;
}

json_object *
gw_test_vm_qmp_ok(GwTestVm *vm, const char *cmd, const char *args_json)
{
    g_autoptr(json_object) r = gw_test_vm_qmp(vm, cmd, args_json, -1);
    json_object *ret = NULL;

    if (!json_object_object_get_ex(r, "return", &ret)) {
        g_error("%s %s: %s", cmd, args_json ? args_json : "",
                json_object_to_json_string(r));
    }
    return json_object_get(ret);
}

void
gw_test_vm_qmp_err(GwTestVm *vm, const char *cmd, const char *args_json,
                   char **class_out, char **desc_out)
{
    g_autoptr(json_object) r = gw_test_vm_qmp(vm, cmd, args_json, -1);
    json_object *e, *class, *desc;

    if (!json_object_object_get_ex(r, "error", &e) ||
        !json_object_object_get_ex(e, "class", &class) ||
        !json_object_object_get_ex(e, "desc", &desc)) {
        g_error("%s %s: expected an error, got %s", cmd,
                args_json ? args_json : "", json_object_to_json_string(r));
    }
    *class_out = g_strdup(json_object_get_string(class));
    *desc_out = g_strdup(json_object_get_string(desc));
}

void
gw_test_vm_release(GwTestVm *vm)
{
    gw_qt_free(vm->qt);
    gw_qmp_conn_free(vm->c);
    g_spawn_close_pid(vm->pid);
    g_assert_true(rm_tree(vm->dir));
    g_free(vm->qmp_sock);
    g_free(vm->qt_sock);
    g_free(vm->dir);
    *vm = (GwTestVm){0};
}

static char *test_disk_dir, *test_disk;

static void
remove_test_disk(void)
{
    g_unlink(test_disk);
    g_rmdir(test_disk_dir);
}

const char *
gw_test_disk_path(const char *prefix)
{
    g_autofree char *tmpl = g_strdup_printf("%s-XXXXXX", prefix);

    g_assert_null(test_disk);
    test_disk_dir = g_dir_make_tmp(tmpl, NULL);
    g_assert_nonnull(test_disk_dir);
    test_disk = g_build_filename(test_disk_dir, "disk.img", NULL);
    atexit(remove_test_disk);
    return test_disk;
}
