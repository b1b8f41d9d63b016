/*
 * Live migration on KVM of the test guest with its disk on PCI segment
 * 1 of 2: the guest verifies the disk on the source, waits in its
 * hotplug workload on segment 1 through the migration, sees on the
 * destination a disk hot-plugged there onto segment 1, drives and ejects
 * it, then verifies the migrated disk again — every verdict after the
 * switch-over in the destination's serial log.  Skipped visibly without
 * /dev/kvm.
 */
#include <string.h>
#include <glib/gstdio.h>
#include <godwit/qmp-client.h>
#include <godwit/util.h>
#include "spawn-util.h"

#define T 120000 /* guest code may be emulated: be generous */
#define CMDLINE                                                                \
    "blk dev=0001:00:01.0 expect-capacity=2048; "                              \
    "hotplug segment=1 timeout-ms=100000; "                                    \
    "blk dev=0001:00:01.0 expect-capacity=2048"

typedef struct {
    char *dir, *serial, *qmp;
    GPid pid;
    GwQmpConn *c;
} Vm;

static char *disk_dir;

static void
vm_start(Vm *vm, const char *incoming)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_auto(GStrv) env = NULL;

    vm->dir = g_dir_make_tmp("godwit-migseg-XXXXXX", NULL);
    vm->serial = g_build_filename(vm->dir, "serial.log", NULL);
    vm->qmp = g_build_filename(vm->dir, "qmp.sock", NULL);
    const char *base[] = {g_getenv("GODWIT_BIN"),
                          "--kernel",
                          g_getenv("GODWIT_GUEST"),
                          "--cmdline",
                          CMDLINE,
                          "--memory",
                          "size=128M",
                          "--qmp",
                          vm->qmp,
                          "--platform",
                          "num_pci_segments=2",
                          "--vdpa-sim",
                          "name=hp,mgmtdev=vdpasim_blk,capacity=2M"};
    for (size_t i = 0; i < G_N_ELEMENTS(base); i++) {
        g_ptr_array_add(argv, g_strdup(base[i]));
    }
    g_ptr_array_add(argv, g_strdup("--serial"));
    g_ptr_array_add(argv, g_strdup_printf("file=%s", vm->serial));
    g_ptr_array_add(argv, g_strdup("--vdpa-sim"));
    g_ptr_array_add(argv, g_strdup_printf("name=d0,mgmtdev=vdpasim_blk,"
                                          "capacity=1M,backing=%s/disk.img",
                                          disk_dir));
    g_ptr_array_add(argv, g_strdup("--vdpa"));
    g_ptr_array_add(argv, g_strdup_printf("path=%s/vdpa/d0,id=disk0,"
                                          "pci_segment=1",
                                          vm->dir));
    if (incoming) {
        g_ptr_array_add(argv, g_strdup("--incoming"));
        g_ptr_array_add(argv, g_strdup(incoming));
    }
    g_ptr_array_add(argv, NULL);
    env = godwit_test_env(vm->dir);
    g_assert_true(g_spawn_async(NULL, (char **)argv->pdata, env,
                                G_SPAWN_DO_NOT_REAP_CHILD, die_with_parent,
                                NULL, &vm->pid, &err));
    g_assert_no_error(err);
    vm->c = gw_qmp_conn_new(vm->qmp, T, &err);
    g_assert_no_error(err);
    g_assert_true(gw_qmp_conn_negotiate(vm->c, T, &err));
}

static void
vm_stop(Vm *vm)
{
    gw_qmp_conn_free(vm->c);
    stop_child(vm->pid);
    g_spawn_close_pid(vm->pid);
    g_assert_true(rm_tree(vm->dir));
    g_free(vm->dir);
    g_free(vm->serial);
    g_free(vm->qmp);
}

static json_object *
qmp(Vm *vm, const char *cmd, const char *args)
{
    g_autoptr(GError) err = NULL;
    json_object *a = args ? json_tokener_parse(args) : NULL;
    g_autoptr(json_object) r = gw_qmp_conn_execute(vm->c, cmd, a, -1, T, &err);
    json_object *ret;

    g_assert_no_error(err);
    if (!json_object_object_get_ex(r, "return", &ret)) {
        g_error("%s: %s", cmd, json_object_to_json_string(r));
    }
    return json_object_get(ret);
}

static char *
field(Vm *vm, const char *cmd, const char *key)
{
    g_autoptr(json_object) r = qmp(vm, cmd, NULL);

    return g_strdup(json_object_get_string(json_object_object_get(r, key)));
}

static guint
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

/* Waits (bounded) until `path` holds `needle` `want` times; no fail. */
static void
wait_for(const char *path, const char *needle, guint want)
{
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;

    while (count(path, needle) < want) {
        if (count(path, "GUEST fail")) {
            g_autofree char *text = NULL;
            g_file_get_contents(path, &text, NULL, NULL);
            g_error("guest failed:\n%s", text);
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(20 * 1000); /* polling a file, bounded */
    }
}

/* Waits (bounded) until `cmd`'s `key` is `want` ("failed": abort). */
static void
wait_field(Vm *vm, const char *cmd, const char *key, const char *want)
{
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;

    for (;;) {
        g_autofree char *s = field(vm, cmd, key);
        if (s && g_str_equal(s, want)) {
            return;
        }
        if (s && g_str_equal(s, "failed")) {
            g_autofree char *why = field(vm, "query-migrate", "error-desc");
            g_error("migration failed: %s", why);
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10 * 1000); /* polling QMP, bounded */
    }
}

static void
wait_deleted(Vm *vm)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) ev =
        gw_qmp_conn_wait_event(vm->c, "DEVICE_DELETED", T, &err);

    g_assert_no_error(err);
    g_assert_nonnull(ev);
}

static void
test_disk_on_segment_1_moves(void)
{
    Vm src = {0}, dst = {0};
    g_autofree char *in = NULL, *args = NULL, *add = NULL, *sockdir = NULL;
    g_autoptr(json_object) r = NULL;

    if (!kvm_usable()) {
        return;
    }
    vm_start(&src, NULL);
    wait_for(src.serial, "GUEST hotplug ready", 1);
    g_assert_cmpuint(count(src.serial, "GUEST pass blk"), ==, 1);
    sockdir = g_dir_make_tmp("godwit-migsock-XXXXXX", NULL);
    in = g_strdup_printf("unix:%s/mig.sock", sockdir);
    vm_start(&dst, in);
    args = g_strdup_printf("{\"uri\": \"%s\"}", in);
    json_object_put(qmp(&src, "migrate", args));
    wait_field(&src, "query-migrate", "status", "completed");
    wait_field(&dst, "query-status", "status", "running");
    /* On the destination: a second disk onto segment 1, for the guest's
     * waiting hotplug workload, then unplugged once it passed. */
    add = g_strdup_printf("{\"path\":\"%s/vdpa/hp\",\"id\":\"hp\","
                          "\"pci_segment\":1}",
                          dst.dir);
    r = qmp(&dst, "x-godwit-vdpa-add", add);
    g_assert_cmpstr(json_object_get_string(json_object_object_get(r, "bdf")),
                    ==, "0001:00:02.0");
    wait_for(dst.serial, "GUEST pass blk", 1);
    json_object_put(qmp(&dst, "device_del", "{\"id\":\"hp\"}"));
    wait_deleted(&dst);
    wait_for(dst.serial, "GUEST done", 1);
    g_assert_cmpuint(count(dst.serial, "GUEST hotplug add slot=2"), ==, 1);
    g_assert_cmpuint(count(dst.serial, "GUEST blk 0001:00:02.0 capacity=4096"),
                     ==, 1);
    g_assert_cmpuint(count(dst.serial, "GUEST pass hotplug"), ==, 1);
    g_assert_cmpuint(count(dst.serial, "GUEST blk 0001:00:01.0 capacity=2048"),
                     ==, 1);
    g_assert_cmpuint(count(dst.serial, "GUEST pass blk"), ==, 2);
    g_assert_cmpuint(count(dst.serial, "GUEST fail"), ==, 0);
    /* the source did its part only, and stopped at the switch-over */
    g_assert_cmpuint(count(src.serial, "GUEST pass blk"), ==, 1);
    g_assert_cmpuint(count(src.serial, "GUEST hotplug add"), ==, 0);
    g_assert_cmpuint(count(src.serial, "GUEST fail"), ==, 0);
    vm_stop(&src);
    vm_stop(&dst);
    g_assert_true(rm_tree(sockdir));
}

int
main(int argc, char **argv)
{
    int rc;

    g_test_init(&argc, &argv, NULL);
    disk_dir = g_dir_make_tmp("godwit-migseg-disk-XXXXXX", NULL);
    g_test_add_func("/migration-segments/kvm/disk-on-segment-1-verified-on-"
                    "destination",
                    test_disk_on_segment_1_moves);
    rc = g_test_run();
    g_assert_true(rm_tree(disk_dir));
    return rc;
}
