/*
 * A vDPA NIC's whole control-queue state across a live migration, under
 * --qtest: the simulator as hardware like mlx5_vdpa (features=mq+ctrl-rx+
 * ctrl-rx-extra+ctrl-vlan, two pairs, SET_CONFIG of the MAC ignored),
 * the test as the guest's driver (qvirtio-net.h) setting the MAC, two
 * pairs, promiscuous off with a unicast MAC table entry, a VLAN.  Frames
 * loop on both pairs before, during (in flight while pre-copy runs) and
 * after the migration; on the destination the filters are proven in
 * force by frames that must loop and frames that must not.  A
 * destination whose device refuses a replayed command fails the load
 * and the source goes on; hostile control chains do not hurt the VMM.
 */
#include <string.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <godwit/util.h>
#include "mig-util.h"
#include "qtest-vm.h"
#include "qvirtio-net.h"
#include "qvirtio.h"

#define SLOT         1
#define NODE         "dev0"
#define ID           "vdpa0"
#define BALLAST      0x2000000ull
#define BALLAST_SIZE (1u << 20)
#define VLAN         7
#define OTHER_VLAN   9
#define LATE_VLAN    11  /* added during pre-copy */
#define NO_LOOP_MS   300 /* a frame that must not come back, waited for */
#define F(b)         (1ull << (b))

static const uint8_t new_mac[] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};
static const uint8_t table_mac[] = {0x52, 0x54, 0x00, 0x77, 0x77, 0x77};
static const uint8_t other_mac[] = {0x52, 0x54, 0x00, 0x99, 0x99, 0x99};

static const uint64_t want = F(VIRTIO_NET_F_MQ) | F(VIRTIO_NET_F_CTRL_RX) |
                             F(VIRTIO_NET_F_CTRL_RX_EXTRA) |
                             F(VIRTIO_NET_F_CTRL_VLAN);

static void
must(bool ok, GError *err)
{
    g_assert_no_error(err);
    g_assert_true(ok);
}

/* A VM with the mlx5-like NIC at boot; a destination listens on
 * unix:DIR/mig.sock, its device refusing control commands if `refuse`. */
static void
start_vm(GwTestVm *vm, bool incoming, bool refuse)
{
    const char *args[] = {
        "--vdpa-sim=name=" NODE ",mgmtdev=vdpasim_net,mac=52:54:00:12:34:56,"
        "features=mq+ctrl-rx+ctrl-rx-extra+ctrl-vlan,max_vq_pairs=2",
        "--vdpa=path=@DIR@/vdpa/" NODE ",num_queues=5,id=" ID,
        incoming ? "--incoming" : NULL,
        "unix:@DIR@/mig.sock",
        NULL,
    };

    gw_test_vm_start(vm, args);
    qmp_void(vm, "x-godwit-vdpa-sim-fail",
             "{\"name\":\"" NODE "\",\"failure\":\"ignore-mac-config\"}");
    if (refuse) {
        qmp_void(vm, "x-godwit-vdpa-sim-fail",
                 "{\"name\":\"" NODE "\",\"failure\":\"refuse-ctrl\"}");
    }
    if (incoming) {
        set_caps(vm, false);
    }
}

static void
write_ballast(GwQt *qt)
{
    g_autofree uint8_t *buf = g_malloc(BALLAST_SIZE);

    for (unsigned i = 0; i < BALLAST_SIZE; i++) {
        buf[i] = (uint8_t)(i * 13 + 5);
    }
    gw_qt_memwrite(qt, BALLAST, buf, BALLAST_SIZE);
}

/* The driver as a guest's: MAC, two pairs, promiscuous off, a unicast
 * table of one entry (no multicast), VLAN 7. */
static GwQNet *
set_up_nic(GwTestVm *vm)
{
    g_autoptr(GError) err = NULL;
    uint8_t table[4 + 6 + 4] = {1, 0, 0, 0};
    uint8_t off = 0;
    uint16_t pairs = 2, vid = VLAN;
    GwQNet *n = gw_qvirtio_net_init_with(vm->qt, SLOT, want, &err);

    g_assert_no_error(err);
    g_assert_cmphex(gw_qvirtio_features(gw_qvirtio_net_dev(n)) & want, ==,
                    want);
    g_assert_cmpuint(gw_qvirtio_net_pairs(n), ==, 2);
    memcpy(table + 4, table_mac, 6);
    must(gw_qvirtio_net_set_mac(n, new_mac, &err), err);
    must(gw_qvirtio_net_ctrl_ok(n, VIRTIO_NET_CTRL_MQ,
                                VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 2,
                                &err),
         err);
    must(gw_qvirtio_net_ctrl_ok(n, VIRTIO_NET_CTRL_RX,
                                VIRTIO_NET_CTRL_RX_PROMISC, &off, 1, &err),
         err);
    must(gw_qvirtio_net_ctrl_ok(n, VIRTIO_NET_CTRL_MAC,
                                VIRTIO_NET_CTRL_MAC_TABLE_SET, table,
                                sizeof(table), &err),
         err);
    must(gw_qvirtio_net_ctrl_ok(n, VIRTIO_NET_CTRL_VLAN,
                                VIRTIO_NET_CTRL_VLAN_ADD, &vid, 2, &err),
         err);
    return n;
}

/*
 * What must loop and what must not, on both pairs: our MAC and the
 * table's MAC loop, another MAC does not (promiscuous is off); a frame
 * tagged with VLAN 7 loops, one tagged 9 does not.
 */
static void
assert_filters(GwQNet *n)
{
    g_autoptr(GError) err = NULL;
    uint8_t mac[GW_QNET_ETH_LEN];

    gw_qvirtio_net_read_mac(n, mac);
    g_assert_cmpmem(mac, sizeof(mac), new_mac, sizeof(new_mac));
    for (unsigned p = 0; p < 2; p++) {
        gw_qvirtio_net_use_pair(n, p);
        must(gw_qvirtio_net_loopback(n, new_mac, 3, &err), err);
        must(gw_qvirtio_net_not_looped(n, other_mac, NO_LOOP_MS, &err), err);
        must(gw_qvirtio_net_loopback(n, table_mac, 2, &err), err);
        gw_qvirtio_net_set_vlan(n, VLAN);
        must(gw_qvirtio_net_loopback(n, new_mac, 2, &err), err);
        gw_qvirtio_net_set_vlan(n, OTHER_VLAN);
        must(gw_qvirtio_net_not_looped(n, new_mac, NO_LOOP_MS, &err), err);
        gw_qvirtio_net_set_vlan(n, 0);
        must(gw_qvirtio_net_loopback(n, new_mac, 1, &err), err);
    }
    gw_qvirtio_net_use_pair(n, 0);
}

static void
begin_migration(GwTestVm *src, GwTestVm *dst)
{
    g_autofree char *uri =
        g_strdup_printf("{\"uri\": \"unix:%s/mig.sock\"}", dst->dir);

    drain_events(src);
    set_caps(src, true);
    qmp_void(src, "migrate-set-parameters", "{\"max-bandwidth\": 150000}");
    qmp_void(src, "migrate", uri);
    wait_status(src, "active");
}

/* During pre-copy: frames loop on both pairs, VLAN 11 is added (the
 * relay still takes commands), then frames wait on pair 0's receive
 * queue for the destination to read. */
static void
frames_during_precopy(GwTestVm *src, GwQNet *n)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) r = NULL;
    uint16_t vid = LATE_VLAN;

    must(gw_qvirtio_net_ctrl_ok(n, VIRTIO_NET_CTRL_VLAN,
                                VIRTIO_NET_CTRL_VLAN_ADD, &vid, 2, &err),
         err);

    for (unsigned p = 0; p < 2; p++) {
        gw_qvirtio_net_use_pair(n, p);
        must(gw_qvirtio_net_loopback(n, new_mac, 6, &err), err);
    }
    gw_qvirtio_net_use_pair(n, 0);
    must(gw_qvirtio_net_send(n, new_mac, 5, &err), err);
    r = query_migrate(src);
    g_assert_cmpstr(status_of(r, "status"), ==, "active");
}

static bool
control_relayed(GwTestVm *vm, unsigned q)
{
    g_autoptr(json_object) all = gw_test_vm_qmp_ok(
        vm, "x-godwit-query-vdpa-vrings", "{\"id\":\"" ID "\"}");
    json_object *o = json_object_array_get_idx(all, q);

    return json_object_get_boolean(json_object_object_get(o, "control-relay"));
}

static void
test_state_carried(void)
{
    GwTestVm src, dst;
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQNet) n = NULL;

    start_vm(&src, false, false);
    write_ballast(src.qt);
    n = set_up_nic(&src);
    g_assert_true(control_relayed(&src, 4)); /* 2 x max_virtqueue_pairs */
    assert_filters(n);
    start_vm(&dst, true, false);
    begin_migration(&src, &dst);
    frames_during_precopy(&src, n);
    wait_status(&src, "pre-switchover");
    qmp_void(&src, "migrate-continue", "{\"state\": \"pre-switchover\"}");
    wait_status(&src, "completed");
    json_put_ok(poll_status(&dst, "completed"));
    gw_qvirtio_net_set_qt(n, dst.qt);
    must(gw_qvirtio_net_receive_sent(n, &err), err);
    g_assert_true(control_relayed(&dst, 4));
    assert_filters(n);
    gw_qvirtio_net_set_vlan(n, LATE_VLAN); /* set during pre-copy */
    must(gw_qvirtio_net_loopback(n, new_mac, 2, &err), err);
    /* The destination's relay takes new commands: VLAN 7 gone. */
    uint16_t vid = VLAN;
    must(gw_qvirtio_net_ctrl_ok(n, VIRTIO_NET_CTRL_VLAN,
                                VIRTIO_NET_CTRL_VLAN_DEL, &vid, 2, &err),
         err);
    gw_qvirtio_net_set_vlan(n, VLAN);
    must(gw_qvirtio_net_not_looped(n, new_mac, NO_LOOP_MS, &err), err);
    gw_qvirtio_net_free(g_steal_pointer(&n));
    gw_test_vm_stop(&src);
    gw_test_vm_stop(&dst);
}

/* The destination's device answers a replayed command ERR: its load
 * fails, it exits 1, and the source goes on with the state it had. */
static void
test_replay_refused(void)
{
    GwTestVm src, dst;
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQNet) n = NULL;
    g_autoptr(json_object) r = NULL;
    g_autofree char *st = NULL;
    const char *why;

    start_vm(&src, false, false);
    write_ballast(src.qt);
    n = set_up_nic(&src);
    start_vm(&dst, true, true);
    begin_migration(&src, &dst);
    frames_during_precopy(&src, n);
    wait_status(&src, "pre-switchover");
    qmp_void(&src, "migrate-continue", "{\"state\": \"pre-switchover\"}");
    r = poll_status(&src, "failed");
    why = status_of(r, "error-desc");
    g_test_message("source: %s", why);
    g_assert_nonnull(strstr(why, "replaying the control queue's state"));
    reap(&dst, 1);
    st = run_state(&src);
    g_assert_cmpstr(st, ==, "running");
    must(gw_qvirtio_net_receive_sent(n, &err), err);
    assert_filters(n);
    gw_qvirtio_net_free(g_steal_pointer(&n));
    gw_test_vm_stop(&src);
}

/* One hostile chain on the control queue (4): the used length the VMM
 * gave it, and the status byte at `status`. */
static uint32_t
hostile(GwQNet *n, GwQt *qt, GwQVirtioBuf *b, unsigned nb, bool loop)
{
    GwQVirtio *vd = gw_qvirtio_net_dev(n);
    uint64_t desc, avail, used;
    uint32_t id, len = 0xffff;
    uint16_t head = gw_qvirtio_vq_add(vd, 4, b, nb), second;

    if (loop) { /* the last descriptor leads back to the head */
        gw_qvirtio_vq_rings(vd, 4, &desc, &avail, &used);
        second = gw_qt_readw(qt, desc + 16ull * head + 14);
        gw_qt_writew(qt, desc + 16ull * second + 12, VRING_DESC_F_NEXT);
        gw_qt_writew(qt, desc + 16ull * second + 14, head);
    }
    gw_qvirtio_vq_kick(vd, 4);
    g_assert_true(gw_qvirtio_vq_wait(vd, 4, 10000, &id, &len));
    g_assert_cmpuint(id, ==, head);
    return len;
}

/* A loop, a buffer outside RAM, no status byte: each answered (ERR or
 * length 0), none sent to the device; the VM runs, the relay goes on.
 * A guest reset then tears the relay down and the next start makes one. */
static void
test_hostile_chains(void)
{
    GwTestVm vm;
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQNet) n = NULL;
    g_autofree char *st = NULL;
    size_t dlen;
    uint64_t at;

    start_vm(&vm, false, false);
    n = set_up_nic(&vm);
    at = gw_qvirtio_data_area(gw_qvirtio_net_dev(n), &dlen) + 0x13000;
    gw_qt_writew(vm.qt, at, VIRTIO_NET_CTRL_MQ); /* class 4, cmd 0 */
    gw_qt_writew(vm.qt, at + 2, 1);              /* one pair */
    gw_qt_writeb(vm.qt, at + 0x10, 0xee);
    GwQVirtioBuf out_of_ram[] = {
        {at, 2, false}, {0x7fff00000000ull, 2, false}, {at + 0x10, 1, true}};
    GwQVirtioBuf no_status[] = {{at, 4, false}};
    GwQVirtioBuf looped[] = {{at, 2, false}, {at + 2, 2, false}};

    g_assert_cmpuint(hostile(n, vm.qt, out_of_ram, 3, false), ==, 1);
    g_assert_cmpuint(gw_qt_readb(vm.qt, at + 0x10), ==, VIRTIO_NET_ERR);
    g_assert_cmpuint(hostile(n, vm.qt, no_status, 1, false), ==, 0);
    g_assert_cmpuint(hostile(n, vm.qt, looped, 2, true), ==, 0);
    st = run_state(&vm);
    g_assert_cmpstr(st, ==, "running");
    /* None reached the device: both pairs still loop (one pair would not). */
    assert_filters(n);
    /* A guest reset tears the relay down; the next start has a new one. */
    gw_qvirtio_reset(gw_qvirtio_net_dev(n));
    gw_qvirtio_net_free(g_steal_pointer(&n));
    g_assert_false(control_relayed(&vm, 4));
    n = set_up_nic(&vm);
    g_assert_true(control_relayed(&vm, 4));
    assert_filters(n);
    gw_qvirtio_net_free(g_steal_pointer(&n));
    gw_test_vm_stop(&vm);
}

/*
 * virtio-net-pci's mac= on a device that ignores SET_CONFIG of the MAC
 * (as mlx5_vdpa): the MAC reaches the device as MAC_ADDR_SET when the
 * driver starts it, so the config shows it and frames to it loop, not
 * frames to the MAC the device was created with.
 */
static void
test_plug_mac(void)
{
    static const uint8_t plug[] = {0x52, 0x54, 0x00, 0x0a, 0x0b, 0x0c};
    static const uint8_t created[] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    const char *args[] = {
        "--vdpa-sim=name=" NODE ",mgmtdev=vdpasim_net,mac=52:54:00:12:34:56",
        NULL,
    };
    GwTestVm vm;
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQNet) n = NULL;
    g_autofree char *node = NULL, *netdev = NULL;
    uint8_t mac[GW_QNET_ETH_LEN];

    gw_test_vm_start(&vm, args);
    qmp_void(&vm, "x-godwit-vdpa-sim-fail",
             "{\"name\":\"" NODE "\",\"failure\":\"ignore-mac-config\"}");
    node = g_build_filename(vm.dir, "vdpa", NODE, NULL);
    netdev = g_strdup_printf("{\"type\":\"vhost-vdpa\",\"vhostdev\":\"%s\","
                             "\"id\":\"hostnet0\"}",
                             node);
    qmp_void(&vm, "netdev_add", netdev);
    qmp_void(&vm, "device_add",
             "{\"driver\":\"virtio-net-pci\",\"netdev\":\"hostnet0\","
             "\"id\":\"" ID "\",\"addr\":\"0x1\","
             "\"mac\":\"52:54:00:0a:0b:0c\"}");
    n = gw_qvirtio_net_init(vm.qt, SLOT, &err);
    g_assert_no_error(err);
    gw_qvirtio_net_read_mac(n, mac);
    g_assert_cmpmem(mac, sizeof(mac), plug, sizeof(plug));
    must(gw_qvirtio_net_loopback(n, plug, 3, &err), err);
    must(gw_qvirtio_net_not_looped(n, created, NO_LOOP_MS, &err), err);
    gw_qvirtio_net_free(g_steal_pointer(&n));
    gw_test_vm_stop(&vm);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/migration-vdpa-net/mq-rx-vlan/state-carried-filters-"
                    "in-force",
                    test_state_carried);
    g_test_add_func("/migration-vdpa-net/fail/replay-refused-source-goes-on",
                    test_replay_refused);
    g_test_add_func("/migration-vdpa-net/hostile-control-chains-answered",
                    test_hostile_chains);
    g_test_add_func("/migration-vdpa-net/hot-added-mac-set-on-the-control-"
                    "queue",
                    test_plug_mac);
    return g_test_run();
}
