/*
 * The control-queue state of a vDPA NIC behind the virtio-iommu
 * (iommu=on) across a live migration, under --qtest: the mlx5-like NIC
 * of test-migration-vdpa-net.c (mig-net.h), the test playing the guest's
 * IOMMU driver (qiommu.h) and its NIC driver (qvirtio-net.h), which gives
 * the device every ring and buffer at IOVA = GPA + GW_QIOMMU_OFF, an
 * address no RAM has.  The MAC, two pairs, the RX filters and a VLAN go
 * over the control queue through those IOVAs; the VMM must relay it
 * (translating the guest's IOVAs through the IOMMU) and so record what
 * was set, carry it, and have it in force on the destination, whose
 * IOMMU state is the source's and whose relay takes new commands.  A
 * control command whose buffer sits at an IOVA the guest did not map is
 * answered without VIRTIO_NET_OK and hurts nothing.
 */
#include <string.h>
#include <linux/virtio_iommu.h>
#include <linux/virtio_net.h>
#include <godwit/util.h>
#include "mig-net.h"
#include "mig-precopy.h"
#include "mig-util.h"
#include "qiommu.h"
#include "qtest-vm.h"
#include "qvirtio-net.h"
#include "qvirtio.h"

#define DOMAIN 1
#define OFF    GW_QIOMMU_OFF
#define SLOW   150000 /* bytes/s: pre-copy lasts seconds */
/* An IOVA nobody maps: past the mapping of the driver's area. */
#define UNMAPPED (3 * GW_QIOMMU_OFF)

typedef struct {
    GwQIommu mmu;
    GwQNet *n;
    uint32_t ep;
    uint64_t area, len; /* the NIC driver's memory, guest-physical */
} Guest;

static int64_t
int_of(json_object *o, const char *key)
{
    return json_object_get_int64(json_object_object_get(o, key));
}

/* Endpoint `ep` attached to DOMAIN, which maps `len` bytes at IOVA
 * `iova` to `gpa`. */
static void
assert_mapped(json_object *q, uint32_t ep, uint64_t iova, uint64_t gpa,
              uint64_t len)
{
    json_object *eps = json_object_object_get(q, "endpoints");
    json_object *doms = json_object_object_get(q, "domains");
    bool attached = false, found = false;

    g_test_message("IOMMU: %s", json_object_to_json_string(q));
    for (size_t i = 0; i < json_object_array_length(eps); i++) {
        json_object *e = json_object_array_get_idx(eps, i);
        attached |= int_of(e, "id") == ep && int_of(e, "domain") == DOMAIN;
    }
    for (size_t i = 0; i < json_object_array_length(doms); i++) {
        json_object *d = json_object_array_get_idx(doms, i);
        json_object *maps = json_object_object_get(d, "mappings");

        for (size_t j = 0;
             int_of(d, "id") == DOMAIN && j < json_object_array_length(maps);
             j++) {
            json_object *m = json_object_array_get_idx(maps, j);
            found |= (uint64_t)int_of(m, "virt-start") == iova &&
                     (uint64_t)int_of(m, "virt-end") == iova + len - 1 &&
                     (uint64_t)int_of(m, "phys-start") == gpa;
        }
    }
    g_assert_true(attached);
    g_assert_true(found);
}

/*
 * The guest on `vm`: the NIC's endpoint found in the VIOT and attached
 * to DOMAIN; the NIC driver started with IOVA = GPA + OFF, its whole
 * area (rings and buffers) mapped there in one mapping, DRIVER_OK; then
 * MAC, two pairs, filters and VLAN over the control queue (net_set_up).
 */
static void
guest_start(Guest *g, GwTestVm *vm)
{
    g_autoptr(GError) err = NULL;
    GwQViot v;

    g_assert_true(gw_qiommu_find_viot(vm->qt, &v));
    g->ep = gw_qiommu_viot_endpoint(&v, 0, NET_SLOT << 3);
    g_assert_cmphex(g->ep, ==, NET_SLOT << 3);
    gw_qiommu_init(&g->mmu, vm->qt);
    g->n = gw_qvirtio_net_start(vm->qt, NET_SLOT, NET_WANT, OFF, &err);
    g_assert_no_error(err);
    g_assert_nonnull(g->n);
    g_assert_true(gw_qvirtio_features(gw_qvirtio_net_dev(g->n)) >>
                      VIRTIO_F_ACCESS_PLATFORM &
                  1);
    g->area = gw_qvirtio_net_area(g->n, &g->len);
    g_assert_cmphex(g->area + g->len, <=, OFF); /* IOVAs hit no GPA */
    g_assert_cmpint(gw_qiommu_attach(&g->mmu, DOMAIN, g->ep), ==,
                    VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(
        gw_qiommu_map(&g->mmu, DOMAIN, g->area + OFF, g->area, g->len), ==,
        VIRTIO_IOMMU_S_OK);
    gw_qvirtio_net_driver_ok(g->n);
    net_set_up(g->n);
}

static void
guest_free(Guest *g)
{
    g_clear_pointer(&g->n, gw_qvirtio_net_free);
    gw_qiommu_free(&g->mmu);
}

static void
assert_running(GwTestVm *vm)
{
    g_autofree char *st = run_state(vm);

    g_assert_cmpstr(st, ==, "running");
}

/*
 * Set through IOVAs, relayed, carried: frames loop on both pairs before,
 * during pre-copy (VLAN NET_LATE_VLAN added then) and after; on the
 * destination the IOMMU state is the source's, the control queue is
 * relayed, the filters are in force and a VLAN_DEL is taken.
 */
static void
test_state_carried(void)
{
    GwTestVm src, dst;
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) q = NULL;
    uint16_t vid = NET_VLAN;
    Guest g;

    net_start_vm(&src, false, false, true);
    write_ballast(src.qt);
    guest_start(&g, &src);
    q = query_iommu(&src);
    assert_mapped(q, g.ep, g.area + OFF, g.area, g.len);
    /* The relay recorded what the driver set through IOVAs. */
    g_assert_true(net_control_relayed(&src, NET_CVQ));
    net_assert_filters(g.n);
    net_start_vm(&dst, true, false, true);
    begin_migration(&src, &dst, SLOW);
    net_during_precopy(&src, g.n);
    assert_still_active(&src);
    finish_migration(&src, &dst);
    g_clear_pointer(&q, json_object_put);
    q = assert_iommu_moved(&src, &dst);
    assert_mapped(q, g.ep, g.area + OFF, g.area, g.len);
    gw_qiommu_set_qt(&g.mmu, dst.qt);
    gw_qvirtio_net_set_qt(g.n, dst.qt);
    must(gw_qvirtio_net_receive_sent(g.n, &err), err);
    g_assert_true(net_control_relayed(&dst, NET_CVQ));
    net_assert_filters(g.n);
    gw_qvirtio_net_set_vlan(g.n, NET_LATE_VLAN); /* set during pre-copy */
    must(gw_qvirtio_net_loopback(g.n, net_new_mac, 2, &err), err);
    /* The destination's relay takes new commands through the IOVAs. */
    must(gw_qvirtio_net_ctrl_ok(g.n, VIRTIO_NET_CTRL_VLAN,
                                VIRTIO_NET_CTRL_VLAN_DEL, &vid, 2, &err),
         err);
    gw_qvirtio_net_set_vlan(g.n, NET_VLAN);
    must(gw_qvirtio_net_not_looped(g.n, net_new_mac, NET_NO_LOOP_MS, &err),
         err);
    gw_qvirtio_net_set_vlan(g.n, 0);
    must(gw_qvirtio_net_loopback(g.n, net_new_mac, 2, &err), err);
    assert_running(&dst);
    guest_free(&g);
    gw_test_vm_stop(&src);
    gw_test_vm_stop(&dst);
}

/*
 * Control chains with a buffer at an IOVA the guest did not map — the
 * command's data, its header, its status byte — each used, none
 * answered VIRTIO_NET_OK, none applied (the first two would set one
 * pair: both still loop after); the VM runs, the relay goes on and a
 * good command succeeds.
 */
/* Chain `b` (its status byte at guest-physical `status_at`) is used
 * with at most 1 byte and not answered VIRTIO_NET_OK. */
static void
expect_not_ok(Guest *g, GwQt *qt, const GwQVirtioBuf *b, unsigned nb,
              uint64_t status_at, const char *what)
{
    uint32_t len;
    uint8_t status;

    gw_qt_writeb(qt, status_at, 0xee);
    len = net_hostile_chain(g->n, qt, b, nb, false);
    status = gw_qt_readb(qt, status_at);
    g_test_message("%s: used %u, status 0x%x", what, len, status);
    g_assert_true(len == 0 || status != VIRTIO_NET_OK);
    g_assert_cmpuint(len, <=, 1);
}

static void
test_unmapped(void)
{
    GwTestVm vm;
    g_autoptr(GError) err = NULL;
    g_autofree char *st = NULL;
    Guest g;
    uint64_t at, iova;
    uint8_t off = 0;
    uint32_t len;

    net_start_vm(&vm, false, false, true);
    guest_start(&g, &vm);
    g_assert_true(net_control_relayed(&vm, NET_CVQ));
    /* Past what the driver uses of its data area, inside the mapping. */
    at = g.area + g.len - 0x1000;
    iova = at + OFF;
    gw_qt_writew(vm.qt, at, VIRTIO_NET_CTRL_MQ); /* class 4, cmd 0 */
    gw_qt_writew(vm.qt, at + 2, 1);              /* one pair */
    gw_qt_writeb(vm.qt, at + 0x20, 0);           /* promiscuous off */
    {
        GwQVirtioBuf data[] = {
            {iova, 2, false}, {UNMAPPED, 2, false}, {iova + 0x10, 1, true}};
        GwQVirtioBuf hdr[] = {{UNMAPPED, 4, false}, {iova + 0x10, 1, true}};

        expect_not_ok(&g, vm.qt, data, 3, at + 0x10, "data unmapped");
        expect_not_ok(&g, vm.qt, hdr, 2, at + 0x10, "header unmapped");
    }
    {
        /* RX_PROMISC off, as already set: harmless if it were applied */
        uint16_t rx = VIRTIO_NET_CTRL_RX | VIRTIO_NET_CTRL_RX_PROMISC << 8;
        GwQVirtioBuf no_status[] = {{iova + 0x30, 2, false},
                                    {iova + 0x20, 1, false},
                                    {UNMAPPED, 1, true}};

        gw_qt_writew(vm.qt, at + 0x30, rx);
        len = net_hostile_chain(g.n, vm.qt, no_status, 3, false);
        g_test_message("status unmapped: used %u", len);
        g_assert_cmpuint(len, <=, 1);
    }
    st = run_state(&vm);
    g_assert_cmpstr(st, ==, "running");
    g_assert_true(net_control_relayed(&vm, NET_CVQ));
    must(gw_qvirtio_net_ctrl_ok(g.n, VIRTIO_NET_CTRL_RX,
                                VIRTIO_NET_CTRL_RX_PROMISC, &off, 1, &err),
         err);
    net_assert_filters(g.n); /* both pairs: no one-pair command applied */
    guest_free(&g);
    gw_test_vm_stop(&vm);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/migration-iommu-net/mq-rx-vlan/state-carried-through-"
                    "iovas",
                    test_state_carried);
    g_test_add_func("/migration-iommu-net/control-buffer-unmapped-answered-"
                    "err",
                    test_unmapped);
    return g_test_run();
}
