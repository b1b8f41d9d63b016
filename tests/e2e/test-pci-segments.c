/*
 * Several PCI segments (--platform num_pci_segments) in a real godwit
 * process under --qtest, the test playing the guest: a vDPA disk placed
 * on segment 1 at boot is found through segment 1's ECAM window and
 * serves the blk workload; hotplug reaches every segment (ACPI hotplug
 * registers per segment, x-godwit-vdpa-add with pci_segment, device_add
 * with bus pci.N); a segment that does not exist is refused on the
 * command line, by QMP, and reads as nothing in ECAM; a VM with its disk
 * on segment 1 migrates, and the destination's driver goes on there.
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <glib/gstdio.h>
#include <godwit/util.h>
#include "qtest-vm.h"
#include "qvirtio.h"

#define T         GW_TEST_VM_WAIT_MS
#define ECAM(s)   (0xE0000000ull + ((uint64_t)(s) << 20))
#define PCIHP     0xae00
#define PCIU      (PCIHP + 0x0)
#define PCID      (PCIHP + 0x4)
#define B0EJ      (PCIHP + 0x8)
#define SEL       (PCIHP + 0x10)
#define GPE0_STS  0xafe0
#define VIRTIO_ID 0x10421af4u /* vendor 0x1af4, device 0x1042 (blk) */

static const char *disk;
static char *sim_arg;

/* Vendor and device id of `slot` on `segment`, through its ECAM. */
static uint32_t
ecam_id(GwQt *qt, unsigned segment, unsigned slot)
{
    return gw_qt_readl(qt, ECAM(segment) + ((uint64_t)slot << 15));
}

/* query-pci's entry for `segment` (borrowed from `list`). */
static json_object *
pci_segment(json_object *list, unsigned segment)
{
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *e = json_object_array_get_idx(list, i);
        json_object *s = json_object_object_get(e, "x-godwit-segment");
        if ((unsigned)(s ? json_object_get_int(s) : 0) == segment) {
            return e;
        }
    }
    return NULL;
}

/* The slot of device `id` on `segment` in query-pci, or -1. */
static int
query_slot(GwTestVm *vm, unsigned segment, const char *id)
{
    g_autoptr(json_object) list = gw_test_vm_qmp_ok(vm, "query-pci", NULL);
    json_object *e = pci_segment(list, segment);
    json_object *devs = json_object_object_get(e, "devices");

    g_assert_nonnull(e);
    for (size_t i = 0; i < json_object_array_length(devs); i++) {
        json_object *d = json_object_array_get_idx(devs, i);
        const char *qid =
            json_object_get_string(json_object_object_get(d, "qdev_id"));
        if (g_str_equal(qid, id)) {
            return json_object_get_int(json_object_object_get(d, "slot"));
        }
    }
    return -1;
}

static void
must_run(GwTestVm *vm)
{
    g_autoptr(json_object) r = gw_test_vm_qmp_ok(vm, "query-status", NULL);
    g_assert_cmpstr(json_object_get_string(json_object_object_get(r, "status")),
                    ==, "running");
}

static void
blk_workload(GwQt *qt, unsigned segment, unsigned slot)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQVirtio) vd =
        gw_qvirtio_init_on_segment(qt, segment, slot, &err);

    g_assert_no_error(err);
    g_assert_true(gw_qvirtio_blk_workload(vd, &err));
    g_assert_no_error(err);
    gw_qvirtio_reset(vd);
}

static const char *const boot_args[] = {
    "--platform", "num_pci_segments=2",
    "--vdpa-sim", "name=blk0,mgmtdev=vdpasim_blk",
    "--vdpa",     "path=@DIR@/vdpa/blk0,num_queues=1,id=disk0,pci_segment=1",
    NULL,
};

/* The disk is on segment 1 only; segments past the last read as
 * nothing; the driver finds it through ECAM and the workload runs. */
static void
test_boot_on_segment_1(void)
{
    GwTestVm vm = {0};
    g_autoptr(json_object) list = NULL;
    uint32_t bar;

    gw_test_vm_start(&vm, boot_args);
    g_assert_cmphex(ecam_id(vm.qt, 1, 1), ==, VIRTIO_ID);
    g_assert_cmphex(ecam_id(vm.qt, 0, 1), ==, 0xffffffff);
    g_assert_cmphex(gw_qt_pci_read(vm.qt, GW_QT_BDF(0, 1, 0), 0, 4), ==,
                    0xffffffff); /* 0xCF8 is segment 0's */
    for (unsigned s = 2; s < 16; s++) {
        g_assert_cmphex(ecam_id(vm.qt, s, 0), ==, 0xffffffff);
        g_assert_cmphex(ecam_id(vm.qt, s, 1), ==, 0xffffffff);
    }
    /* both host bridges; segment 1's BARs in its own window */
    g_assert_cmphex(ecam_id(vm.qt, 0, 0), ==, 0x00081b36);
    g_assert_cmphex(ecam_id(vm.qt, 1, 0), ==, 0x00081b36);
    bar = gw_qt_pci_read(vm.qt, GW_QT_SBDF(1, 0, 1, 0), 0x10, 4) & ~0xfu;
    g_assert_cmphex(bar, ==, 0xE1000000u + (512u << 10));
    list = gw_test_vm_qmp_ok(&vm, "query-pci", NULL);
    g_assert_cmpuint(json_object_array_length(list), ==, 2);
    g_assert_cmpint(query_slot(&vm, 1, "disk0"), ==, 1);
    g_assert_cmpint(query_slot(&vm, 0, "disk0"), ==, -1);
    blk_workload(vm.qt, 1, 1);
    must_run(&vm);
    gw_test_vm_stop(&vm);
}

/* The most segments there may be: each with its host bridge and ECAM,
 * the last one's slot windows still below the IOAPIC and working. */
static void
test_sixteen_segments(void)
{
    static const char *const args[] = {"--platform", "num_pci_segments=16",
                                       "--vdpa-sim",
                                       "name=blk15,mgmtdev=vdpasim_blk", NULL};
    GwTestVm vm = {0};
    g_autoptr(json_object) list = NULL, r = NULL;
    g_autofree char *add = NULL;
    uint32_t bar;

    gw_test_vm_start(&vm, args);
    for (unsigned s = 0; s < 16; s++) {
        g_assert_cmphex(ecam_id(vm.qt, s, 0), ==, 0x00081b36);
    }
    list = gw_test_vm_qmp_ok(&vm, "query-pci", NULL);
    g_assert_cmpuint(json_object_array_length(list), ==, 16);
    add = g_strdup_printf("{\"path\":\"%s/vdpa/blk15\",\"pci_segment\":15,"
                          "\"id\":\"d15\"}",
                          vm.dir);
    r = gw_test_vm_qmp_ok(&vm, "x-godwit-vdpa-add", add);
    g_assert_cmpstr(json_object_get_string(json_object_object_get(r, "bdf")),
                    ==, "000f:00:01.0");
    bar = gw_qt_pci_read(vm.qt, GW_QT_SBDF(15, 0, 1, 0), 0x10, 4) & ~0xfu;
    g_assert_cmphex(bar, ==, 0xEF000000u + (512u << 10));
    blk_workload(vm.qt, 15, 1);
    gw_test_vm_stop(&vm);
}

/* The guest's _E01 for segment `segment`: select it, read what changed. */
static uint32_t
pcihp_take(GwQt *qt, unsigned segment, uint32_t *down)
{
    gw_qt_outl(qt, SEL, segment);
    *down = gw_qt_inl(qt, PCID);
    return gw_qt_inl(qt, PCIU);
}

static void
wait_deleted(GwTestVm *vm, const char *id)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) ev =
        gw_qmp_conn_wait_event(vm->c, "DEVICE_DELETED", T, &err);
    json_object *data;

    g_assert_no_error(err);
    data = json_object_object_get(ev, "data");
    g_assert_cmpstr(
        json_object_get_string(json_object_object_get(data, "device")), ==, id);
}

static const char *const hotplug_args[] = {
    "--platform", "num_pci_segments=3",
    "--vdpa-sim", "name=blk1,mgmtdev=vdpasim_blk",
    "--vdpa-sim", "name=blk2,mgmtdev=vdpasim_blk",
    NULL,
};

/* x-godwit-vdpa-add onto segment 2, device_add onto bus pci.1: each
 * answers or lands on its segment, each segment's hotplug registers tell
 * the guest about its own slots, and an eject on segment 2 unplugs
 * there. */
static void
test_hotplug_every_segment(void)
{
    GwTestVm vm = {0};
    g_autoptr(json_object) r = NULL;
    g_autofree char *args = NULL;
    uint32_t down;

    gw_test_vm_start(&vm, hotplug_args);
    args = g_strdup_printf("{\"path\":\"%s/vdpa/blk2\",\"id\":\"d2\","
                           "\"pci_segment\":2}",
                           vm.dir);
    r = gw_test_vm_qmp_ok(&vm, "x-godwit-vdpa-add", args);
    g_assert_cmpstr(json_object_get_string(json_object_object_get(r, "bdf")),
                    ==, "0002:00:01.0");
    g_free(args);
    args = g_strdup_printf("{\"driver\":\"vhost-vdpa-device-pci\","
                           "\"vhostdev\":\"%s/vdpa/blk1\",\"id\":\"d1\","
                           "\"bus\":\"pci.1\",\"addr\":\"5\"}",
                           vm.dir);
    json_object_put(gw_test_vm_qmp_ok(&vm, "device_add", args));
    g_assert_cmpint(query_slot(&vm, 2, "d2"), ==, 1);
    g_assert_cmpint(query_slot(&vm, 1, "d1"), ==, 5);
    g_assert_cmphex(ecam_id(vm.qt, 2, 1), ==, VIRTIO_ID);
    g_assert_cmphex(ecam_id(vm.qt, 1, 5), ==, VIRTIO_ID);
    g_assert_cmphex(gw_qt_inb(vm.qt, GPE0_STS) & 0x02, ==, 0x02); /* GPE 1 */
    g_assert_cmphex(pcihp_take(vm.qt, 0, &down), ==, 0);
    g_assert_cmphex(pcihp_take(vm.qt, 1, &down), ==, 1u << 5);
    g_assert_cmphex(pcihp_take(vm.qt, 2, &down), ==, 1u << 1);
    g_assert_cmphex(down, ==, 0);
    blk_workload(vm.qt, 1, 5);
    blk_workload(vm.qt, 2, 1);
    json_object_put(gw_test_vm_qmp_ok(&vm, "device_del", "{\"id\":\"d2\"}"));
    g_assert_cmphex(pcihp_take(vm.qt, 1, &down), ==, 0);
    g_assert_cmphex(down, ==, 0);
    g_assert_cmphex(pcihp_take(vm.qt, 2, &down), ==, 0);
    g_assert_cmphex(down, ==, 1u << 1);
    gw_qt_outl(vm.qt, SEL, 1); /* an eject on the wrong segment: nothing */
    gw_qt_outl(vm.qt, B0EJ, 1u << 1);
    g_assert_cmphex(ecam_id(vm.qt, 2, 1), ==, VIRTIO_ID);
    gw_qt_outl(vm.qt, SEL, 2);
    gw_qt_outl(vm.qt, B0EJ, 1u << 1);
    wait_deleted(&vm, "d2");
    g_assert_cmphex(ecam_id(vm.qt, 2, 1), ==, 0xffffffff);
    g_assert_cmpint(query_slot(&vm, 2, "d2"), ==, -1);
    g_assert_cmpint(query_slot(&vm, 1, "d1"), ==, 5);
    must_run(&vm);
    gw_test_vm_stop(&vm);
}

typedef struct {
    const char *cmd, *args, *class, *desc;
} Refusal;

/* "@DIR@" in args: the runtime directory. */
static const Refusal refusals[] = {
    {"x-godwit-vdpa-add", "{\"path\":\"@DIR@/vdpa/blk1\",\"pci_segment\":3}",
     "GenericError",
     "x-godwit-vdpa-add: pci_segment 3 does not exist (the platform has "
     "num_pci_segments=3)"},
    {"x-godwit-vdpa-add",
     "{\"path\":\"@DIR@/vdpa/blk1\",\"pci_segment\":65535}", "GenericError",
     "x-godwit-vdpa-add: pci_segment 65535 does not exist"},
    {"device_add",
     "{\"driver\":\"vhost-vdpa-device-pci\",\"vhostdev\":\"@DIR@/vdpa/blk1\","
     "\"bus\":\"pci.3\"}",
     "DeviceNotFound", "Bus 'pci.3' not found"},
    {"device_add",
     "{\"driver\":\"vhost-vdpa-device-pci\",\"vhostdev\":\"@DIR@/vdpa/blk1\","
     "\"bus\":\"pci.01\"}",
     "DeviceNotFound", "Bus 'pci.01' not found"},
    {"device_add",
     "{\"driver\":\"vhost-vdpa-device-pci\",\"vhostdev\":\"@DIR@/vdpa/blk1\","
     "\"bus\":\"pci.\"}",
     "DeviceNotFound", "Bus 'pci.' not found"},
    {"device_add",
     "{\"driver\":\"vhost-vdpa-device-pci\",\"vhostdev\":\"@DIR@/vdpa/blk1\","
     "\"bus\":\"pci.1x\"}",
     "DeviceNotFound", "Bus 'pci.1x' not found"},
    {"device_add",
     "{\"driver\":\"vhost-vdpa-device-pci\",\"vhostdev\":\"@DIR@/vdpa/blk1\","
     "\"bus\":\"pci.99999999999999999999\"}",
     "DeviceNotFound", "Bus 'pci.99999999999999999999' not found"},
    {"device_add",
     "{\"driver\":\"vhost-vdpa-device-pci\",\"vhostdev\":\"@DIR@/vdpa/blk1\","
     "\"bus\":\"pcie.0\"}",
     "DeviceNotFound", "Bus 'pcie.0' not found"},
};

/* Each refused with its error, nothing plugged, the VM running; then a
 * good request still works. */
static void
test_bad_segment_refused(void)
{
    GwTestVm vm = {0};
    g_autoptr(json_object) list = NULL;
    g_autoptr(json_object) r = NULL;
    g_autofree char *good = NULL;

    gw_test_vm_start(&vm, hotplug_args);
    for (size_t i = 0; i < G_N_ELEMENTS(refusals); i++) {
        g_autoptr(GString) a = g_string_new(refusals[i].args);
        g_autofree char *class = NULL, *desc = NULL;

        g_string_replace(a, "@DIR@", vm.dir, 0);
        gw_test_vm_qmp_err(&vm, refusals[i].cmd, a->str, &class, &desc);
        g_assert_cmpstr(class, ==, refusals[i].class);
        if (!g_str_has_prefix(desc, refusals[i].desc)) {
            g_error("%s: got '%s', want '%s'", a->str, desc, refusals[i].desc);
        }
        must_run(&vm);
    }
    list = gw_test_vm_qmp_ok(&vm, "query-pci", NULL);
    g_assert_cmpuint(json_object_array_length(list), ==, 3);
    for (unsigned s = 0; s < 3; s++) {
        json_object *devs =
            json_object_object_get(pci_segment(list, s), "devices");
        g_assert_cmpuint(json_object_array_length(devs), ==, 1); /* bridge */
    }
    good = g_strdup_printf("{\"path\":\"%s/vdpa/blk1\",\"pci_segment\":2}",
                           vm.dir);
    r = gw_test_vm_qmp_ok(&vm, "x-godwit-vdpa-add", good);
    g_assert_cmpstr(json_object_get_string(json_object_object_get(r, "bdf")),
                    ==, "0002:00:01.0");
    gw_test_vm_stop(&vm);
}

/* godwit with `args` must fail at start with `want` on stderr. */
static void
must_refuse_cli(const char *const *args, const char *want)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autofree char *out = NULL, *err = NULL;
    g_autoptr(GError) e = NULL;
    g_autofree char *dir = g_dir_make_tmp("godwit-seg-XXXXXX", NULL);
    g_auto(GStrv) env =
        g_environ_setenv(g_get_environ(), "GODWIT_RUNTIME_DIR", dir, TRUE);
    int status;

    g_ptr_array_add(argv, (gpointer)g_getenv("GODWIT_BIN"));
    g_ptr_array_add(argv, "--qtest");
    g_ptr_array_add(argv, "unix:/nonexistent/qtest.sock");
    for (size_t i = 0; args[i]; i++) {
        g_ptr_array_add(argv, (gpointer)args[i]);
    }
    g_ptr_array_add(argv, NULL);
    g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, env, 0, NULL, NULL,
                               &out, &err, &status, &e));
    g_assert_false(g_spawn_check_wait_status(status, NULL));
    if (!strstr(err, want)) {
        g_error("stderr '%s' lacks '%s'", err, want);
    }
    g_rmdir(dir);
}

static void
test_cli_refuses_missing_segment(void)
{
    const char *const past[] = {
        "--platform", "num_pci_segments=2", "--vdpa",
        "path=/dev/vhost-vdpa-0,num_queues=2,pci_segment=2", NULL};
    const char *const none[] = {"--vdpa",
                                "path=/dev/vhost-vdpa-0,pci_segment=1", NULL};
    const char *const many[] = {"--platform", "num_pci_segments=17", NULL};

    must_refuse_cli(past, "--vdpa: pci_segment 2 does not exist (the platform "
                          "has num_pci_segments=2)");
    must_refuse_cli(none, "--vdpa: pci_segment 1 does not exist (the platform "
                          "has num_pci_segments=1)");
    must_refuse_cli(many, "--platform: num_pci_segments: 17 is out of range "
                          "(1..16)");
}

/* ---- migration ---- */

static const char *const mig_args[] = {
    "--platform",
    "num_pci_segments=2",
    "@SIM@",
    "--vdpa",
    "path=@DIR@/vdpa/d0,id=disk0,pci_segment=1",
    NULL,
};

/* mig_args with the shared disk, plus `more` (NULL-terminated). */
static void
start_mig_vm(GwTestVm *vm, const char *segments, const char *const *more)
{
    g_autoptr(GPtrArray) a = g_ptr_array_new();

    for (size_t i = 0; mig_args[i]; i++) {
        const char *s = mig_args[i];
        if (g_str_equal(s, "@SIM@")) {
            s = sim_arg;
        } else if (g_str_equal(s, "num_pci_segments=2") && segments) {
            s = segments;
        }
        g_ptr_array_add(a, (gpointer)s);
    }
    for (size_t i = 0; more && more[i]; i++) {
        g_ptr_array_add(a, (gpointer)more[i]);
    }
    g_ptr_array_add(a, NULL);
    gw_test_vm_start(vm, (const char *const *)a->pdata);
}

static const char *
status_of(json_object *o)
{
    return json_object_get_string(json_object_object_get(o, "status"));
}

/* Waits (bounded) until query-migrate on `vm` leaves "active"/"setup". */
static char *
wait_migration(GwTestVm *vm)
{
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;

    for (;;) {
        g_autoptr(json_object) r = gw_test_vm_qmp_ok(vm, "query-migrate", NULL);
        const char *s = status_of(r);
        if (s && (g_str_equal(s, "completed") || g_str_equal(s, "failed"))) {
            return g_strdup(s);
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(5 * 1000); /* polling query-migrate, bounded */
    }
}

static void
migrate(GwTestVm *src, GwTestVm *dst)
{
    g_autofree char *uri =
        g_strdup_printf("{\"uri\": \"unix:%s/mig.sock\"}", dst->dir);

    json_object_put(gw_test_vm_qmp_ok(src, "migrate", uri));
}

/* The config space of `slot` on `segment`, as a guest reads it (no
 * register there changes on reading). */
static GString *
config_space(GwQt *qt, unsigned segment, unsigned slot)
{
    GString *s = g_string_new(NULL);

    for (unsigned off = 0; off < 256; off += 4) {
        g_string_append_printf(
            s, "%08x ",
            gw_qt_pci_read(qt, GW_QT_SBDF(segment, 0, slot, 0), off, 4));
    }
    return s;
}

/* The driver set up on the source's segment 1 goes on, on the
 * destination's: same config space there (the function's and segment
 * 1's host bridge's, which the guest wrote to), the workload passes. */
static void
test_migrate_device_on_segment_1(void)
{
    const char *const incoming[] = {"--incoming", "unix:@DIR@/mig.sock", NULL};
    GwTestVm src = {0}, dst = {0};
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQVirtio) vd = NULL;
    g_autoptr(GString) before = NULL, after = NULL;
    g_autoptr(GString) bridge_before = NULL, bridge_after = NULL;
    g_autofree char *s = NULL, *d = NULL;

    start_mig_vm(&src, NULL, NULL);
    start_mig_vm(&dst, NULL, incoming);
    vd = gw_qvirtio_init_on_segment(src.qt, 1, 1, &err);
    g_assert_no_error(err);
    g_assert_true(gw_qvirtio_blk_workload(vd, &err));
    g_assert_no_error(err);
    before = config_space(src.qt, 1, 1);
    gw_qt_pci_write(src.qt, GW_QT_SBDF(1, 0, 0, 0), 0x04, 2, 0x0006);
    gw_qt_pci_write(src.qt, GW_QT_SBDF(1, 0, 0, 0), 0x0c, 1, 0x10);
    bridge_before = config_space(src.qt, 1, 0);
    g_assert_cmphex(gw_qt_pci_read(dst.qt, GW_QT_SBDF(1, 0, 0, 0), 0x04, 2), ==,
                    0); /* the destination's own, before the migration */
    migrate(&src, &dst);
    s = wait_migration(&src);
    g_assert_cmpstr(s, ==, "completed");
    d = wait_migration(&dst);
    g_assert_cmpstr(d, ==, "completed");
    must_run(&dst);
    after = config_space(dst.qt, 1, 1);
    g_assert_cmpstr(before->str, ==, after->str);
    bridge_after = config_space(dst.qt, 1, 0);
    g_assert_cmpstr(bridge_before->str, ==, bridge_after->str);
    g_assert_cmphex(gw_qt_pci_read(dst.qt, GW_QT_SBDF(1, 0, 0, 0), 0x04, 2), ==,
                    0x0006);
    g_assert_cmphex(ecam_id(dst.qt, 0, 1), ==, 0xffffffff);
    g_assert_cmpint(query_slot(&dst, 1, "disk0"), ==, 1);
    gw_qvirtio_set_qt(vd, dst.qt);
    g_assert_true(gw_qvirtio_blk_workload(vd, &err));
    g_assert_no_error(err);
    gw_qvirtio_reset(vd);
    gw_test_vm_stop(&src);
    gw_test_vm_stop(&dst);
}

/* A destination with another number of segments refuses the stream in
 * words; the source runs on. */
static void
test_migrate_segment_count_mismatch(void)
{
    const char *const incoming[] = {"--incoming", "unix:@DIR@/mig.sock", NULL};
    GwTestVm src = {0}, dst = {0};
    g_autoptr(json_object) q = NULL;
    g_autofree char *s = NULL;
    const char *desc;
    int status = 0;

    start_mig_vm(&src, NULL, NULL);
    start_mig_vm(&dst, "num_pci_segments=3", incoming);
    migrate(&src, &dst);
    s = wait_migration(&src);
    g_assert_cmpstr(s, ==, "failed");
    q = gw_test_vm_qmp_ok(&src, "query-migrate", NULL);
    desc = json_object_get_string(json_object_object_get(q, "error-desc"));
    g_assert_nonnull(desc);
    if (!strstr(desc, "number of PCI segments")) {
        g_error("error-desc '%s'", desc);
    }
    must_run(&src);
    g_assert_cmpint(waitpid(dst.pid, &status, 0), ==, dst.pid);
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    gw_test_vm_release(&dst);
    gw_test_vm_stop(&src);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    disk = gw_test_disk_path("godwit-seg-disk");
    sim_arg = g_strdup_printf(
        "--vdpa-sim=name=d0,mgmtdev=vdpasim_blk,capacity=1M,backing=%s", disk);
    g_test_add_func("/pci-segments/qtest/boot/disk-on-segment-1-only",
                    test_boot_on_segment_1);
    g_test_add_func("/pci-segments/qtest/boot/sixteen-segments",
                    test_sixteen_segments);
    g_test_add_func("/pci-segments/qtest/hotplug/every-segment-its-own",
                    test_hotplug_every_segment);
    g_test_add_func("/pci-segments/qtest/bad-input/missing-segment-refused",
                    test_bad_segment_refused);
    g_test_add_func("/pci-segments/cli/missing-segment-refused",
                    test_cli_refuses_missing_segment);
    g_test_add_func("/pci-segments/qtest/migration/disk-on-segment-1",
                    test_migrate_device_on_segment_1);
    g_test_add_func("/pci-segments/qtest/migration/segment-count-mismatch",
                    test_migrate_segment_count_mismatch);
    return g_test_run();
}
