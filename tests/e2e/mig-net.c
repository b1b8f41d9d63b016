/*
 * Helpers of the vDPA NIC migration e2e tests: see mig-net.h.
 */
#include <string.h>
#include <linux/virtio_ring.h>
#include <godwit/util.h>
#include "mig-net.h"
#include "mig-util.h"

const uint8_t net_new_mac[] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};
const uint8_t net_table_mac[] = {0x52, 0x54, 0x00, 0x77, 0x77, 0x77};
const uint8_t net_other_mac[] = {0x52, 0x54, 0x00, 0x99, 0x99, 0x99};

void
must(bool ok, GError *err)
{
    g_assert_no_error(err);
    g_assert_true(ok);
}

void
net_start_vm(GwTestVm *vm, bool incoming, bool refuse, bool iommu)
{
    const char *args[] = {
        "--vdpa-sim=name=" NET_NODE ",mgmtdev=vdpasim_net,"
        "mac=52:54:00:12:34:56,features=mq+ctrl-rx+ctrl-rx-extra+ctrl-vlan,"
        "max_vq_pairs=2",
        iommu ? "--vdpa=path=@DIR@/vdpa/" NET_NODE ",num_queues=5,"
                "id=" NET_ID ",iommu=on"
              : "--vdpa=path=@DIR@/vdpa/" NET_NODE ",num_queues=5,"
                "id=" NET_ID,
        incoming ? "--incoming" : NULL,
        "unix:@DIR@/mig.sock",
        NULL,
    };

    gw_test_vm_start(vm, args);
    qmp_void(vm, "x-godwit-vdpa-sim-fail",
             "{\"name\":\"" NET_NODE "\",\"failure\":\"ignore-mac-config\"}");
    if (refuse) {
        qmp_void(vm, "x-godwit-vdpa-sim-fail",
                 "{\"name\":\"" NET_NODE "\",\"failure\":\"refuse-ctrl\"}");
    }
    if (incoming) {
        set_caps(vm, false);
    }
}

void
net_set_up(GwQNet *n)
{
    g_autoptr(GError) err = NULL;
    uint8_t table[4 + 6 + 4] = {1, 0, 0, 0};
    uint8_t off = 0;
    uint16_t pairs = 2, vid = NET_VLAN;

    g_assert_cmphex(gw_qvirtio_features(gw_qvirtio_net_dev(n)) & NET_WANT, ==,
                    NET_WANT);
    g_assert_cmpuint(gw_qvirtio_net_pairs(n), ==, 2);
    memcpy(table + 4, net_table_mac, 6);
    must(gw_qvirtio_net_set_mac(n, net_new_mac, &err), err);
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
}

void
net_assert_filters(GwQNet *n)
{
    g_autoptr(GError) err = NULL;
    uint8_t mac[GW_QNET_ETH_LEN];

    gw_qvirtio_net_read_mac(n, mac);
    g_assert_cmpmem(mac, sizeof(mac), net_new_mac, sizeof(net_new_mac));
    for (unsigned p = 0; p < 2; p++) {
        gw_qvirtio_net_use_pair(n, p);
        must(gw_qvirtio_net_loopback(n, net_new_mac, 3, &err), err);
        must(gw_qvirtio_net_not_looped(n, net_other_mac, NET_NO_LOOP_MS, &err),
             err);
        must(gw_qvirtio_net_loopback(n, net_table_mac, 2, &err), err);
        gw_qvirtio_net_set_vlan(n, NET_VLAN);
        must(gw_qvirtio_net_loopback(n, net_new_mac, 2, &err), err);
        gw_qvirtio_net_set_vlan(n, NET_OTHER_VLAN);
        must(gw_qvirtio_net_not_looped(n, net_new_mac, NET_NO_LOOP_MS, &err),
             err);
        gw_qvirtio_net_set_vlan(n, 0);
        must(gw_qvirtio_net_loopback(n, net_new_mac, 1, &err), err);
    }
    gw_qvirtio_net_use_pair(n, 0);
}

void
net_during_precopy(GwTestVm *src, GwQNet *n)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) r = NULL;
    uint16_t vid = NET_LATE_VLAN;

    must(gw_qvirtio_net_ctrl_ok(n, VIRTIO_NET_CTRL_VLAN,
                                VIRTIO_NET_CTRL_VLAN_ADD, &vid, 2, &err),
         err);
    for (unsigned p = 0; p < 2; p++) {
        gw_qvirtio_net_use_pair(n, p);
        must(gw_qvirtio_net_loopback(n, net_new_mac, 6, &err), err);
    }
    gw_qvirtio_net_use_pair(n, 0);
    must(gw_qvirtio_net_send(n, net_new_mac, 5, &err), err);
    r = query_migrate(src);
    g_assert_cmpstr(status_of(r, "status"), ==, "active");
}

bool
net_control_relayed(GwTestVm *vm, unsigned q)
{
    g_autoptr(json_object) all = gw_test_vm_qmp_ok(
        vm, "x-godwit-query-vdpa-vrings", "{\"id\":\"" NET_ID "\"}");
    json_object *o = json_object_array_get_idx(all, q);

    return json_object_get_boolean(json_object_object_get(o, "control-relay"));
}

uint32_t
net_hostile_chain(GwQNet *n, GwQt *qt, const GwQVirtioBuf *b, unsigned nb,
                  bool loop)
{
    GwQVirtio *vd = gw_qvirtio_net_dev(n);
    uint64_t desc, avail, used;
    uint32_t id, len = 0xffff;
    uint16_t head = gw_qvirtio_vq_add(vd, NET_CVQ, b, nb), second;

    if (loop) { /* the last descriptor leads back to the head */
        gw_qvirtio_vq_rings(vd, NET_CVQ, &desc, &avail, &used);
        second = gw_qt_readw(qt, desc + 16ull * head + 14);
        gw_qt_writew(qt, desc + 16ull * second + 12, VRING_DESC_F_NEXT);
        gw_qt_writew(qt, desc + 16ull * second + 14, head);
    }
    gw_qvirtio_vq_kick(vd, NET_CVQ);
    g_assert_true(gw_qvirtio_vq_wait(vd, NET_CVQ, 10000, &id, &len));
    g_assert_cmpuint(id, ==, head);
    return len;
}
