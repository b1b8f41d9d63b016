/*
 * The vDPA device model in a real godwit process, without /dev/kvm: the
 * qtest accelerator, with the test playing the guest's driver, and QMP
 * as a management tool sees the device.
 */
#include <string.h>
#include <glib/gstdio.h>
#include <godwit/util.h>
#include "qtest-vm.h"
#include "qvirtio.h"

#define T       GW_TEST_VM_WAIT_MS
#define SLOT    1
#define BACKEND "/machine/peripheral/disk0/virtio-backend"

static const char *const blk_args[] = {
    "--vdpa-sim", "name=blk0,mgmtdev=vdpasim_blk",
    "--vdpa",     "path=@DIR@/vdpa/blk0,id=disk0",
    NULL,
};

/* Whether the JSON array `a` holds the string `s`. */
static bool
has_string(json_object *a, const char *s)
{
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        if (g_str_equal(json_object_get_string(json_object_array_get_idx(a, i)),
                        s)) {
            return true;
        }
    }
    return false;
}

/* x-query-virtio-status of disk0: "broken", and whether `status` is set. */
static bool
query_broken(GwTestVm *vm, const char *status, bool *has_status)
{
    g_autoptr(json_object) r = gw_test_vm_qmp_ok(vm, "x-query-virtio-status",
                                                 "{\"path\":\"" BACKEND "\"}");
    json_object *st = json_object_object_get(r, "status");

    *has_status = has_string(json_object_object_get(st, "statuses"), status);
    g_assert_true(
        json_object_get_boolean(json_object_object_get(r, "vm-running")));
    return json_object_get_boolean(json_object_object_get(r, "broken"));
}

static void
test_query_virtio(void)
{
    GwTestVm vm = {0};
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQVirtio) vd = NULL;
    g_autoptr(json_object) list = NULL, st = NULL;
    g_autofree char *class = NULL, *desc = NULL;
    json_object *e, *hf, *gf;

    gw_test_vm_start(&vm, blk_args);
    list = gw_test_vm_qmp_ok(&vm, "x-query-virtio", NULL);
    g_assert_cmpuint(json_object_array_length(list), ==, 1);
    e = json_object_array_get_idx(list, 0);
    g_assert_cmpstr(json_object_get_string(json_object_object_get(e, "path")),
                    ==, BACKEND);
    g_assert_cmpstr(json_object_get_string(json_object_object_get(e, "name")),
                    ==, "virtio-blk");
    vd = gw_qvirtio_init(vm.qt, SLOT, &err);
    g_assert_no_error(err);
    st = gw_test_vm_qmp_ok(&vm, "x-query-virtio-status",
                           "{\"path\":\"" BACKEND "\"}");
    g_assert_cmpint(
        json_object_get_int(json_object_object_get(st, "device-id")), ==, 2);
    g_assert_cmpint(json_object_get_int(json_object_object_get(st, "num-vqs")),
                    ==, 1);
    g_assert_true(
        json_object_get_boolean(json_object_object_get(st, "vhost-started")));
    g_assert_false(
        json_object_get_boolean(json_object_object_get(st, "broken")));
    g_assert_true(
        has_string(json_object_object_get(json_object_object_get(st, "status"),
                                          "statuses"),
                   "VIRTIO_CONFIG_S_DRIVER_OK"));
    /* What the driver took (VERSION_1, ACCESS_PLATFORM) out of the offer. */
    hf = json_object_object_get(st, "host-features");
    gf = json_object_object_get(st, "guest-features");
    g_assert_true(has_string(json_object_object_get(hf, "dev-features"),
                             "VIRTIO_BLK_F_FLUSH"));
    g_assert_cmpuint(
        json_object_array_length(json_object_object_get(gf, "dev-features")),
        ==, 0);
    g_assert_true(has_string(json_object_object_get(gf, "transports"),
                             "VIRTIO_F_VERSION_1"));
    /* QEMU's error for anything that is not a virtio device. */
    const char *bad[] = {"/machine/peripheral/disk0",
                         "/machine/peripheral/nope/virtio-backend",
                         "/machine/peripheral//virtio-backend",
                         "/machine/peripheral/a/b/virtio-backend", ""};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *args = g_strdup_printf("{\"path\":\"%s\"}", bad[i]);
        g_autofree char *want =
            g_strdup_printf("Path %s is not a VirtIODevice", bad[i]);
        g_free(class);
        g_free(desc);
        gw_test_vm_qmp_err(&vm, "x-query-virtio-status", args, &class, &desc);
        g_assert_cmpstr(class, ==, "GenericError");
        g_assert_cmpstr(desc, ==, want);
    }
    gw_qvirtio_reset(vd);
    gw_test_vm_stop(&vm);
}

static void
test_backend_failure(void)
{
    GwTestVm vm = {0};
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQVirtio) vd = NULL;
    g_autoptr(json_object) r = NULL;
    g_autofree char *class = NULL, *desc = NULL;
    gint64 deadline;
    bool needs_reset;

    gw_test_vm_start(&vm, blk_args);
    vd = gw_qvirtio_init(vm.qt, SLOT, &err);
    g_assert_no_error(err);
    g_assert_true(gw_qvirtio_blk_workload(vd, &err));
    g_assert_no_error(err);
    g_assert_false(
        query_broken(&vm, "VIRTIO_CONFIG_S_NEEDS_RESET", &needs_reset));
    g_assert_false(needs_reset);

    /* The device breaks under a running guest. */
    json_object_put(
        gw_test_vm_qmp_ok(&vm, "x-godwit-vdpa-sim-fail",
                          "{\"name\":\"blk0\",\"failure\":\"needs-reset\"}"));
    deadline = g_get_monotonic_time() + T * 1000;
    while (!(gw_qvirtio_status(vd) & 0x40)) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
    /* The guest sees it, QMP reports it, and the VM keeps running. */
    g_assert_true(
        query_broken(&vm, "VIRTIO_CONFIG_S_NEEDS_RESET", &needs_reset));
    g_assert_true(needs_reset);
    r = gw_test_vm_qmp_ok(&vm, "query-status", NULL);
    g_assert_cmpstr(json_object_get_string(json_object_object_get(r, "status")),
                    ==, "running");

    /* A driver that resets and starts again gets a working device. */
    gw_qvirtio_reset(vd);
    g_assert_false(
        query_broken(&vm, "VIRTIO_CONFIG_S_NEEDS_RESET", &needs_reset));
    g_clear_pointer(&vd, gw_qvirtio_free);
    vd = gw_qvirtio_init(vm.qt, SLOT, &err);
    g_assert_no_error(err);
    g_assert_true(gw_qvirtio_blk_workload(vd, &err));
    g_assert_no_error(err);
    gw_qvirtio_reset(vd);

    /* The hook's own errors. */
    gw_test_vm_qmp_err(&vm, "x-godwit-vdpa-sim-fail",
                       "{\"name\":\"nope\",\"failure\":\"needs-reset\"}",
                       &class, &desc);
    g_assert_cmpstr(class, ==, "DeviceNotFound");
    g_assert_nonnull(strstr(desc, "nope"));
    g_free(class);
    g_free(desc);
    gw_test_vm_qmp_err(&vm, "x-godwit-vdpa-sim-fail",
                       "{\"name\":\"blk0\",\"failure\":\"melt\"}", &class,
                       &desc);
    g_assert_cmpstr(class, ==, "GenericError");
    gw_test_vm_stop(&vm);
}

/* With backing=FILE the guest's writes are in the file, where a second
 * host (or an operator) finds them. */
static void
test_backing_file(void)
{
    GwTestVm vm = {0};
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQVirtio) vd = NULL;
    g_autofree char *dir = g_dir_make_tmp("godwit-backing-XXXXXX", NULL);
    g_autofree char *file = g_build_filename(dir, "disk.img", NULL);
    g_autofree char *sim = g_strdup_printf(
        "name=blk0,mgmtdev=vdpasim_blk,capacity=1M,backing=%s", file);
    const char *args[] = {"--vdpa-sim", sim, "--vdpa",
                          "path=@DIR@/vdpa/blk0,id=disk0", NULL};
    g_autofree char *data = NULL;
    gsize len = 0;

    gw_test_vm_start(&vm, args);
    vd = gw_qvirtio_init(vm.qt, SLOT, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(gw_qvirtio_blk_capacity(vd), ==, 2048);
    g_assert_true(gw_qvirtio_blk_workload(vd, &err));
    g_assert_no_error(err);
    g_assert_true(g_file_get_contents(file, &data, &len, NULL));
    g_assert_cmpuint(len, ==, 1 << 20);
    const uint64_t at[] = {0, 1024, 2040};
    for (size_t i = 0; i < G_N_ELEMENTS(at); i++) {
        uint8_t want[8 * 512];
        gw_qvirtio_blk_pattern(want, sizeof(want), at[i]);
        g_assert_cmpmem(data + at[i] * 512, sizeof(want), want, sizeof(want));
    }
    /* Elsewhere the file is as it was: zeros. */
    for (size_t i = 8 * 512; i < 1024 * 512; i++) {
        g_assert_cmpint(data[i], ==, 0);
    }
    gw_qvirtio_reset(vd);
    gw_test_vm_stop(&vm);
    g_assert_cmpint(g_unlink(file), ==, 0);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vdpa-qtest/x-query-virtio", test_query_virtio);
    g_test_add_func("/vdpa-qtest/backing-file-holds-the-data",
                    test_backing_file);
    g_test_add_func("/vdpa-qtest/backend-failure-reaches-guest-and-qmp",
                    test_backend_failure);
    return g_test_run();
}
