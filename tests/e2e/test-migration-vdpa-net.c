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
#include <godwit/util.h>
#include "mig-net.h"
#include "mig-precopy.h"
#include "mig-util.h"
#include "qtest-vm.h"
#include "qvirtio-net.h"
#include "qvirtio.h"

#define SLOT       NET_SLOT
#define NODE       NET_NODE
#define ID         NET_ID
#define VLAN       NET_VLAN
#define LATE_VLAN  NET_LATE_VLAN
#define NO_LOOP_MS NET_NO_LOOP_MS
#define SLOW       150000 /* bytes/s: pre-copy lasts seconds */

static void
start_vm(GwTestVm *vm, bool incoming, bool refuse)
{
    net_start_vm(vm, incoming, refuse, false);
}

static GwQNet *
set_up_nic(GwTestVm *vm)
{
    g_autoptr(GError) err = NULL;
    GwQNet *n = gw_qvirtio_net_init_with(vm->qt, SLOT, NET_WANT, &err);

    g_assert_no_error(err);
    net_set_up(n);
    return n;
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
    g_assert_true(net_control_relayed(&src, NET_CVQ));
    net_assert_filters(n);
    start_vm(&dst, true, false);
    begin_migration(&src, &dst, SLOW);
    net_during_precopy(&src, n);
    finish_migration(&src, &dst);
    gw_qvirtio_net_set_qt(n, dst.qt);
    must(gw_qvirtio_net_receive_sent(n, &err), err);
    g_assert_true(net_control_relayed(&dst, NET_CVQ));
    net_assert_filters(n);
    gw_qvirtio_net_set_vlan(n, LATE_VLAN); /* set during pre-copy */
    must(gw_qvirtio_net_loopback(n, net_new_mac, 2, &err), err);
    /* The destination's relay takes new commands: VLAN 7 gone. */
    uint16_t vid = VLAN;
    must(gw_qvirtio_net_ctrl_ok(n, VIRTIO_NET_CTRL_VLAN,
                                VIRTIO_NET_CTRL_VLAN_DEL, &vid, 2, &err),
         err);
    gw_qvirtio_net_set_vlan(n, VLAN);
    must(gw_qvirtio_net_not_looped(n, net_new_mac, NO_LOOP_MS, &err), err);
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
    begin_migration(&src, &dst, SLOW);
    net_during_precopy(&src, n);
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
    net_assert_filters(n);
    gw_qvirtio_net_free(g_steal_pointer(&n));
    gw_test_vm_stop(&src);
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

    g_assert_cmpuint(net_hostile_chain(n, vm.qt, out_of_ram, 3, false), ==, 1);
    g_assert_cmpuint(gw_qt_readb(vm.qt, at + 0x10), ==, VIRTIO_NET_ERR);
    g_assert_cmpuint(net_hostile_chain(n, vm.qt, no_status, 1, false), ==, 0);
    g_assert_cmpuint(net_hostile_chain(n, vm.qt, looped, 2, true), ==, 0);
    st = run_state(&vm);
    g_assert_cmpstr(st, ==, "running");
    /* None reached the device: both pairs still loop (one pair would not). */
    net_assert_filters(n);
    /* A guest reset tears the relay down; the next start has a new one. */
    gw_qvirtio_reset(gw_qvirtio_net_dev(n));
    gw_qvirtio_net_free(g_steal_pointer(&n));
    g_assert_false(net_control_relayed(&vm, NET_CVQ));
    n = set_up_nic(&vm);
    g_assert_true(net_control_relayed(&vm, NET_CVQ));
    net_assert_filters(n);
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
