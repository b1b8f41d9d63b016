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
#include "guest-vm.h"
#include "spawn-util.h"

#define SEG_CMDLINE                                                            \
    "blk dev=0001:00:01.0 expect-capacity=2048; "                              \
    "hotplug segment=1 timeout-ms=100000; "                                    \
    "blk dev=0001:00:01.0 expect-capacity=2048"

static char *disk_dir, *sim;

/* Two segments, the shared disk on segment 1, a second simulated disk
 * ready to be hot-plugged there. */
static const char *extra[] = {
    "--platform", "num_pci_segments=2",
    "--vdpa-sim", "name=hp,mgmtdev=vdpasim_blk,capacity=2M",
    "--vdpa-sim", NULL, /* sim, set in main */
    "--vdpa",     "path=@DIR@/vdpa/d0,id=disk0,pci_segment=1",
    NULL};

static void
seg_vm_start(Vm *vm, const char *incoming)
{
    vm->cmdline = SEG_CMDLINE;
    vm->extra = extra;
    vm_start(vm, "boot=1", incoming);
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
    seg_vm_start(&src, NULL);
    wait_lines(src.serial, "GUEST hotplug ready", 1);
    g_assert_cmpuint(count(src.serial, "GUEST pass blk"), ==, 1);
    sockdir = g_dir_make_tmp("godwit-migsock-XXXXXX", NULL);
    in = g_strdup_printf("unix:%s/mig.sock", sockdir);
    seg_vm_start(&dst, in);
    args = g_strdup_printf("{\"uri\": \"%s\"}", in);
    json_object_put(qmp(&src, "migrate", args));
    wait_completed(&src);
    wait_state(&dst, "running");
    /* On the destination: a second disk onto segment 1, for the guest's
     * waiting hotplug workload, then unplugged once it passed. */
    add = g_strdup_printf("{\"path\":\"%s/vdpa/hp\",\"id\":\"hp\","
                          "\"pci_segment\":1}",
                          dst.dir);
    r = qmp(&dst, "x-godwit-vdpa-add", add);
    g_assert_cmpstr(json_object_get_string(json_object_object_get(r, "bdf")),
                    ==, "0001:00:02.0");
    wait_lines(dst.serial, "GUEST pass blk", 1);
    json_object_put(qmp(&dst, "device_del", "{\"id\":\"hp\"}"));
    wait_deleted(&dst);
    wait_lines(dst.serial, "GUEST done", 1);
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
    sim = g_strdup_printf("name=d0,mgmtdev=vdpasim_blk,capacity=1M,"
                          "backing=%s/disk.img",
                          disk_dir);
    extra[5] = sim;
    g_test_add_func("/migration-segments/kvm/disk-on-segment-1-verified-on-"
                    "destination",
                    test_disk_on_segment_1_moves);
    rc = g_test_run();
    g_assert_true(rm_tree(disk_dir));
    g_free(sim);
    return rc;
}
