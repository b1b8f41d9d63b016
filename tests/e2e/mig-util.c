/*
 * Helpers of the migration e2e tests: see mig-util.h.
 */
#include <sys/wait.h>
#include <godwit/util.h>
#include "mig-util.h"

#define T GW_TEST_VM_WAIT_MS

void
json_put_ok(json_object *o)
{
    g_assert_nonnull(o);
    g_assert_false(json_object_object_get_ex(o, "error", NULL));
    json_object_put(o);
}

/* The destination must end by itself with `code` (bounded wait). */
void
reap(GwTestVm *vm, int code)
{
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;
    int status = 0;

    while (waitpid(vm->pid, &status, WNOHANG) == 0) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10 * 1000); /* polling for the exit, bounded */
    }
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, code);
    gw_test_vm_release(vm);
}

/* A destination we killed. */
void
reap_killed(GwTestVm *vm)
{
    int status = 0;

    g_assert_cmpint(waitpid(vm->pid, &status, 0), ==, vm->pid);
    g_assert_true(WIFSIGNALED(status));
    gw_test_vm_release(vm);
}

void
qmp_void(GwTestVm *vm, const char *cmd, const char *args)
{
    json_put_ok(gw_test_vm_qmp_ok(vm, cmd, args));
}

const char *
status_of(json_object *o, const char *key)
{
    return json_object_get_string(json_object_object_get(o, key));
}

char *
run_state(GwTestVm *vm)
{
    g_autoptr(json_object) r = gw_test_vm_qmp_ok(vm, "query-status", NULL);

    return g_strdup(status_of(r, "status"));
}

void
set_caps(GwTestVm *vm, bool pause)
{
    g_autofree char *args = g_strdup_printf(
        "{\"capabilities\": [{\"capability\": \"events\", \"state\": true},"
        "{\"capability\": \"pause-before-switchover\", \"state\": %s}]}",
        pause ? "true" : "false");

    qmp_void(vm, "migrate-set-capabilities", args);
}

json_object *
query_migrate(GwTestVm *vm)
{
    return gw_test_vm_qmp_ok(vm, "query-migrate", NULL);
}

/* Forgets the MIGRATION events of earlier migrations. */
void
drain_events(GwTestVm *vm)
{
    for (;;) {
        g_autoptr(GError) err = NULL;
        g_autoptr(json_object) ev =
            gw_qmp_conn_wait_event(vm->c, "MIGRATION", 0, &err);
        if (!ev) {
            return;
        }
    }
}

/* Waits for MIGRATION {status} on `vm`, skipping other statuses. */
void
wait_status(GwTestVm *vm, const char *want)
{
    for (;;) {
        g_autoptr(GError) err = NULL;
        g_autoptr(json_object) ev =
            gw_qmp_conn_wait_event(vm->c, "MIGRATION", T, &err);
        g_assert_no_error(err);
        const char *s = status_of(json_object_object_get(ev, "data"), "status");
        if (g_str_equal(s, want)) {
            return;
        }
        if (g_str_equal(s, "failed")) {
            g_autoptr(json_object) r = query_migrate(vm);
            g_test_message("failed: %s", status_of(r, "error-desc"));
        }
        g_assert_cmpstr(s, !=, "failed");
        g_assert_cmpstr(s, !=, "completed");
    }
}

/* Waits (bounded) until query-migrate shows `want`; its reply. */
json_object *
poll_status(GwTestVm *vm, const char *want)
{
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;

    for (;;) {
        json_object *r = query_migrate(vm);
        const char *s = status_of(r, "status");
        if (s && g_str_equal(s, want)) {
            return r;
        }
        if (s && (g_str_equal(s, "failed") || g_str_equal(s, "completed"))) {
            g_test_message("status %s: %s", s, status_of(r, "error-desc"));
        }
        json_object_put(r);
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(5 * 1000); /* polling query-migrate, bounded */
    }
}

json_object *
query_iommu(GwTestVm *vm)
{
    return gw_test_vm_qmp_ok(vm, "x-godwit-query-iommu", NULL);
}

json_object *
assert_iommu_moved(GwTestVm *src, GwTestVm *dst)
{
    g_autoptr(json_object) a = query_iommu(src);
    json_object *b = query_iommu(dst);
    const char *sa = json_object_to_json_string(a);

    g_test_message("source's IOMMU: %s", sa);
    g_assert_cmpstr(json_object_to_json_string(b), ==, sa);
    return b;
}
