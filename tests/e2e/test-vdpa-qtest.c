/*
 * The vDPA device model in a real godwit process, without /dev/kvm: the
 * qtest accelerator, with the test playing the guest's driver, and QMP
 * as a management tool sees the device.
 */
#include <string.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <glib/gstdio.h>
#include <godwit/util.h>
#include "qtest-vm.h"
#include "qvirtio.h"
#include "qvirtio-net.h"

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

/* query-migrate's blocked-reasons is exactly `want`. */
static void
must_blocked(GwTestVm *vm, const char *want)
{
    g_autoptr(json_object) q = gw_test_vm_qmp_ok(vm, "query-migrate", NULL);
    json_object *reasons = json_object_object_get(q, "blocked-reasons");

    g_assert_cmpuint(json_object_array_length(reasons), ==, 1);
    g_assert_cmpstr(
        json_object_get_string(json_object_array_get_idx(reasons, 0)), ==,
        want);
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
    must_blocked(&vm, "vDPA disk disk0 has no shared storage: create it with "
                      "backing=FILE");
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
    g_autoptr(json_object) q = NULL;
    gsize len = 0;

    gw_test_vm_start(&vm, args);
    q = gw_test_vm_qmp_ok(&vm, "query-migrate", NULL);
    g_assert_false(json_object_object_get_ex(q, "blocked-reasons", NULL));
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

/* The net cases: vdpasim_net with its MAC, num_queues 3 or 2. */
#define NET_BACKEND  "/machine/peripheral/nic0/virtio-backend"
#define NET_SIM      "name=net0,mgmtdev=vdpasim_net,mac=52:54:00:12:34:56"
#define NET_FRAMES   24
#define NET_QUIET_MS 300 /* a dropped frame does not come back within */

static const uint8_t sim_mac[] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
static const uint8_t new_mac[] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};
static const uint8_t other_mac[] = {0x52, 0x54, 0x00, 0x99, 0x88, 0x77};

#define F(n)     (1ull << (n))
#define NET_CTRL (F(VIRTIO_NET_F_CTRL_VQ) | F(VIRTIO_NET_F_CTRL_MAC_ADDR))
#define NET_TAKEN                                                              \
    (F(VIRTIO_F_VERSION_1) | F(VIRTIO_F_ACCESS_PLATFORM) |                     \
     F(VIRTIO_NET_F_MAC) | NET_CTRL)

static void
net_start(GwTestVm *vm, unsigned num_queues)
{
    g_autofree char *vdpa = g_strdup_printf(
        "path=@DIR@/vdpa/net0,num_queues=%u,id=nic0", num_queues);
    const char *args[] = {"--vdpa-sim", NET_SIM, "--vdpa", vdpa, NULL};

    gw_test_vm_start(vm, args);
}

static void
must_mac(GwQNet *n, const uint8_t *want)
{
    uint8_t mac[GW_QNET_ETH_LEN];

    gw_qvirtio_net_read_mac(n, mac);
    g_assert_cmpmem(mac, sizeof(mac), want, GW_QNET_ETH_LEN);
}

/* Frames to `to` loop; one to `not_to` does not, not even late. */
static void
must_loop_only(GwQNet *n, const uint8_t *to, const uint8_t *not_to)
{
    g_autoptr(GError) err = NULL;
    bool ok;

    /* The error first: it says which frame and byte. */
    ok = gw_qvirtio_net_loopback(n, to, NET_FRAMES, &err);
    g_assert_no_error(err);
    g_assert_true(ok);
    ok = gw_qvirtio_net_not_looped(n, not_to, NET_QUIET_MS, &err);
    g_assert_no_error(err);
    g_assert_true(ok);
    ok = gw_qvirtio_net_loopback(n, to, 2, &err);
    g_assert_no_error(err);
    g_assert_true(ok);
}

/* What x-query-virtio-status says of nic0 with the control queue. */
static void
must_query_net(GwTestVm *vm)
{
    g_autoptr(json_object) st = gw_test_vm_qmp_ok(
        vm, "x-query-virtio-status", "{\"path\":\"" NET_BACKEND "\"}");
    json_object *gf = json_object_object_get(st, "guest-features");

    g_assert_cmpint(
        json_object_get_int(json_object_object_get(st, "device-id")), ==, 1);
    g_assert_cmpint(json_object_get_int(json_object_object_get(st, "num-vqs")),
                    ==, 3);
    g_assert_true(has_string(json_object_object_get(gf, "dev-features"),
                             "VIRTIO_NET_F_CTRL_VQ"));
    g_assert_true(has_string(json_object_object_get(gf, "dev-features"),
                             "VIRTIO_NET_F_CTRL_MAC_ADDR"));
    g_assert_true(
        has_string(json_object_object_get(json_object_object_get(st, "status"),
                                          "statuses"),
                   "VIRTIO_CONFIG_S_DRIVER_OK"));
}

static void
test_net_loopback_and_mac(void)
{
    GwTestVm vm = {0};
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQNet) n = NULL;
    bool ok;

    net_start(&vm, 3);
    n = gw_qvirtio_net_init(vm.qt, SLOT, &err);
    g_assert_no_error(err);
    g_assert_cmphex(gw_qvirtio_features(gw_qvirtio_net_dev(n)), ==, NET_TAKEN);
    must_mac(n, sim_mac);
    must_query_net(&vm);
    must_loop_only(n, sim_mac, other_mac);

    ok = gw_qvirtio_net_set_mac(n, new_mac, &err);
    g_assert_no_error(err);
    g_assert_true(ok);
    must_mac(n, new_mac);
    must_loop_only(n, new_mac, sim_mac);
    gw_qvirtio_reset(gw_qvirtio_net_dev(n));
    gw_test_vm_stop(&vm);
}

/* Exposed without its third queue, the device hides what needs it. */
static void
test_net_without_cvq(void)
{
    GwTestVm vm = {0};
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQNet) n = NULL;
    g_autoptr(json_object) st = NULL;
    GwQVirtio *vd;

    net_start(&vm, 2);
    n = gw_qvirtio_net_init(vm.qt, SLOT, &err);
    g_assert_no_error(err);
    vd = gw_qvirtio_net_dev(n);
    g_assert_cmphex(gw_qvirtio_offered(vd) & NET_CTRL, ==, 0);
    g_assert_true(gw_qvirtio_offered(vd) & F(VIRTIO_NET_F_MAC));
    g_assert_cmphex(gw_qvirtio_features(vd), ==, NET_TAKEN & ~NET_CTRL);
    g_assert_cmpuint(gw_qvirtio_num_queues(vd), ==, 2);
    g_assert_false(gw_qvirtio_net_set_mac(n, new_mac, &err));
    g_clear_error(&err);
    must_mac(n, sim_mac);
    must_loop_only(n, sim_mac, other_mac);
    st = gw_test_vm_qmp_ok(&vm, "x-query-virtio-status",
                           "{\"path\":\"" NET_BACKEND "\"}");
    g_assert_cmpint(json_object_get_int(json_object_object_get(st, "num-vqs")),
                    ==, 2);
    gw_qvirtio_reset(vd);
    gw_test_vm_stop(&vm);
}

/* ---- stop quiesces, cont resumes ---- */

#define F_BASE                                                                 \
    ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_ACCESS_PLATFORM))
#define NREQ 4

/* Makes a flush request available on queue 0 (not kicked); its head. */
static uint16_t
post_flush(GwTestVm *vm, GwQVirtio *vd, unsigned i)
{
    size_t len;
    uint64_t at = gw_qvirtio_data_area(vd, &len) + i * 32;
    const uint32_t hdr[4] = {4 /* VIRTIO_BLK_T_FLUSH */, 0, 0, 0};
    const GwQVirtioBuf b[2] = {{at, 16, false}, {at + 16, 1, true}};

    gw_qt_memwrite(vm->qt, at, hdr, sizeof(hdr));
    gw_qt_writeb(vm->qt, at + 16, 0xff);
    return gw_qvirtio_vq_add(vd, 0, b, 2);
}

static void
test_stop_holds_requests(void)
{
    GwTestVm vm = {0};
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQVirtio) vd = NULL;
    uint16_t head[NREQ];
    uint32_t id, len;
    unsigned done = 0;
    bool seen[NREQ] = {false};
    size_t l;

    gw_test_vm_start(&vm, blk_args);
    vd = gw_qvirtio_init_queues(vm.qt, SLOT, F_BASE, 1, &err);
    g_assert_no_error(err);
    head[0] = post_flush(&vm, vd, 0);
    gw_qvirtio_vq_kick(vd, 0);
    g_assert_true(gw_qvirtio_vq_wait(vd, 0, T, &id, &len));
    g_assert_cmpuint(id, ==, head[0]);

    json_object_put(gw_test_vm_qmp_ok(&vm, "stop", NULL));
    for (unsigned i = 0; i < NREQ; i++) {
        head[i] = post_flush(&vm, vd, i);
    }
    gw_qvirtio_vq_kick(vd, 0);
    /* Paused: the device takes nothing (the used index, read over
     * qtest, stays) and writes no status. */
    g_assert_false(gw_qvirtio_vq_wait(vd, 0, 500, &id, &len));
    g_assert_cmpuint(gw_qt_readb(vm.qt, gw_qvirtio_data_area(vd, &l) + 16), ==,
                     0xff);
    json_object_put(gw_test_vm_qmp_ok(&vm, "cont", NULL));
    while (done < NREQ) {
        g_assert_true(gw_qvirtio_vq_wait(vd, 0, T, &id, &len));
        for (unsigned i = 0; i < NREQ; i++) {
            if (id == head[i]) {
                g_assert_false(seen[i]); /* completed once */
                seen[i] = true;
                done++;
            }
        }
    }
    g_assert_false(gw_qvirtio_vq_wait(vd, 0, 300, &id, &len));
    for (unsigned i = 0; i < NREQ; i++) {
        uint64_t st = gw_qvirtio_data_area(vd, &l) + i * 32 + 16;
        g_assert_cmpuint(gw_qt_readb(vm.qt, st), ==, 0);
    }
    gw_qvirtio_reset(vd);
    gw_test_vm_stop(&vm);
}

/* A disk hot-plugged while the VM is stopped does no work before cont,
 * even once its driver started it. */
static void
test_hotplug_while_stopped(void)
{
    GwTestVm vm = {0};
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQVirtio) vd = NULL;
    g_autofree char *args = NULL;
    uint16_t head;
    uint32_t id, len;
    size_t l;

    gw_test_vm_start(&vm, NULL);
    json_object_put(gw_test_vm_qmp_ok(&vm, "stop", NULL));
    json_object_put(
        gw_test_vm_qmp_ok(&vm, "x-godwit-vdpa-sim-add",
                          "{\"name\": \"hp0\", \"mgmtdev\": \"vdpasim_blk\"}"));
    args =
        g_strdup_printf("{\"path\": \"%s/vdpa/hp0\", \"id\": \"hp0\"}", vm.dir);
    json_object_put(gw_test_vm_qmp_ok(&vm, "x-godwit-vdpa-add", args));
    vd = gw_qvirtio_init_queues(vm.qt, SLOT, F_BASE, 1, &err);
    g_assert_no_error(err);
    head = post_flush(&vm, vd, 0);
    gw_qvirtio_vq_kick(vd, 0);
    g_assert_false(gw_qvirtio_vq_wait(vd, 0, 500, &id, &len));
    g_assert_cmpuint(gw_qt_readb(vm.qt, gw_qvirtio_data_area(vd, &l) + 16), ==,
                     0xff);
    json_object_put(gw_test_vm_qmp_ok(&vm, "cont", NULL));
    g_assert_true(gw_qvirtio_vq_wait(vd, 0, T, &id, &len));
    g_assert_cmpuint(id, ==, head);
    g_assert_cmpuint(gw_qt_readb(vm.qt, gw_qvirtio_data_area(vd, &l) + 16), ==,
                     0);
    gw_qvirtio_reset(vd);
    gw_test_vm_stop(&vm);
}

/* A device that cannot be suspended blocks migration, saying why. */
static void
test_no_suspend_blocker(void)
{
    GwTestVm vm = {0};
    g_autoptr(json_object) add = NULL, q = NULL;
    g_autofree char *args = NULL, *class = NULL, *desc = NULL;
    json_object *reasons;
    const char *want = "vDPA device disk1 cannot be suspended";

    gw_test_vm_start(&vm, NULL);
    add = gw_test_vm_qmp_ok(&vm, "x-godwit-vdpa-sim-add",
                            "{\"name\":\"blk1\",\"mgmtdev\":"
                            "\"vdpasim_blk\"}");
    json_object_put(
        gw_test_vm_qmp_ok(&vm, "x-godwit-vdpa-sim-fail",
                          "{\"name\":\"blk1\",\"failure\":\"no-suspend\"}"));
    args = g_strdup_printf(
        "{\"driver\":\"vhost-vdpa-device-pci\",\"vhostdev\":\"%s\","
        "\"id\":\"disk1\"}",
        json_object_get_string(json_object_object_get(add, "path")));
    json_object_put(gw_test_vm_qmp_ok(&vm, "device_add", args));
    q = gw_test_vm_qmp_ok(&vm, "query-migrate", NULL);
    reasons = json_object_object_get(q, "blocked-reasons");
    g_assert_cmpuint(json_object_array_length(reasons), ==, 1);
    g_assert_nonnull(strstr(
        json_object_get_string(json_object_array_get_idx(reasons, 0)), want));
    gw_test_vm_qmp_err(&vm, "migrate", "{\"uri\":\"unix:/nonexistent\"}",
                       &class, &desc);
    g_assert_nonnull(strstr(desc, want));
    gw_test_vm_stop(&vm);
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
    g_test_add_func("/vdpa-qtest/net-loopback-and-mac",
                    test_net_loopback_and_mac);
    g_test_add_func("/vdpa-qtest/net-without-control-queue",
                    test_net_without_cvq);
    g_test_add_func("/vdpa-qtest/hotplug-while-stopped-waits-for-cont",
                    test_hotplug_while_stopped);
    g_test_add_func("/vdpa-qtest/stop-holds-requests-until-cont",
                    test_stop_holds_requests);
    g_test_add_func("/vdpa-qtest/no-suspend-blocks-migration",
                    test_no_suspend_blocker);
    return g_test_run();
}
