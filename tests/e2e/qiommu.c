/*
 * The qtest side's virtio-iommu driver: see qiommu.h.
 */
#include <string.h>
#include <linux/virtio_config.h>
#include <linux/virtio_iommu.h>
#include "qiommu.h"
#include "qtest-vm.h"

#define WANT_DISK                                                              \
    (1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_ACCESS_PLATFORM)
#define WANT_IOMMU                                                             \
    (1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_IOMMU_F_MAP_UNMAP |           \
     1ull << VIRTIO_IOMMU_F_INPUT_RANGE)

static void
viot_node(GwQt *qt, GwQViot *v, uint32_t at, uint8_t *node, size_t size)
{
    gw_qt_memread(qt, at, node, 4);
    gw_qt_memread(qt, at, node, MIN(node[2], size));
    if (node[0] == 3) { /* virtio-pci IOMMU */
        memcpy(&v->iommu_bdf, node + 6, 2);
    } else if (node[0] == 1 && v->n_ranges < 8) {
        memcpy(&v->r[v->n_ranges].endpoint, node + 4, 4);
        memcpy(&v->r[v->n_ranges].seg, node + 8, 2);
        memcpy(&v->r[v->n_ranges].first, node + 12, 2);
        memcpy(&v->r[v->n_ranges].last, node + 14, 2);
        v->n_ranges++;
    }
}

bool
gw_qiommu_find_viot(GwQt *qt, GwQViot *v)
{
    uint32_t rsdt = gw_qt_readl(qt, 0xE0000 + 16),
             len = gw_qt_readl(qt, rsdt + 4);

    memset(v, 0, sizeof(*v));
    for (uint32_t i = 36; i + 4 <= len; i += 4) {
        uint32_t t = gw_qt_readl(qt, rsdt + i);
        uint8_t node[24];
        uint16_t count, at;

        if (gw_qt_readl(qt, t) != 0x544f4956u) { /* "VIOT" */
            continue;
        }
        count = gw_qt_readw(qt, t + 36);
        at = gw_qt_readw(qt, t + 38);
        for (unsigned n = 0; n < count; n++) {
            viot_node(qt, v, t + at, node, sizeof(node));
            at += node[2];
        }
        return true;
    }
    return false;
}

uint32_t
gw_qiommu_viot_endpoint(const GwQViot *v, uint16_t seg, uint16_t bdf)
{
    for (unsigned i = 0; i < v->n_ranges; i++) {
        if (v->r[i].seg == seg && bdf >= v->r[i].first && bdf <= v->r[i].last) {
            return v->r[i].endpoint + (bdf - v->r[i].first);
        }
    }
    return UINT32_MAX;
}

void
gw_qiommu_init(GwQIommu *io, GwQt *qt)
{
    g_autoptr(GError) err = NULL;
    size_t len;

    io->qt = qt;
    io->vd = gw_qvirtio_start(qt, GW_QIOMMU_SLOT, WANT_IOMMU, &err);
    g_assert_no_error(err);
    g_assert_true(gw_qvirtio_setup_vq(io->vd, 0, &err));
    g_assert_true(gw_qvirtio_setup_vq(io->vd, 1, &err));
    g_assert_no_error(err);
    gw_qvirtio_driver_ok(io->vd);
    io->buf = gw_qvirtio_data_area(io->vd, &len);
}

void
gw_qiommu_set_qt(GwQIommu *io, GwQt *qt)
{
    io->qt = qt;
    gw_qvirtio_set_qt(io->vd, qt);
}

void
gw_qiommu_free(GwQIommu *io)
{
    g_clear_pointer(&io->vd, gw_qvirtio_free);
}

int
gw_qiommu_request(GwQIommu *io, const void *req, uint32_t in_len,
                  uint32_t out_len)
{
    GwQVirtioBuf b[2] = {{io->buf, in_len, false},
                         {io->buf + 0x800, out_len, true}};
    uint32_t id, used;

    gw_qt_memwrite(io->qt, io->buf, req, in_len);
    gw_qt_memset(io->qt, io->buf + 0x800, 0xee, out_len);
    gw_qvirtio_vq_add(io->vd, 0, b, 2);
    gw_qvirtio_vq_kick(io->vd, 0);
    if (!gw_qvirtio_vq_wait(io->vd, 0, GW_TEST_VM_WAIT_MS, &id, &used) ||
        used < 4) {
        return -1;
    }
    return gw_qt_readb(io->qt, io->buf + 0x800 + used - 4);
}

#define REQ(io, r)                                                             \
    gw_qiommu_request((io), &(r), sizeof(r) - sizeof((r).tail),                \
                      sizeof((r).tail))

int
gw_qiommu_attach(GwQIommu *io, uint32_t domain, uint32_t ep)
{
    struct virtio_iommu_req_attach r = {
        .head.type = VIRTIO_IOMMU_T_ATTACH, .domain = domain, .endpoint = ep};
    return REQ(io, r);
}

int
gw_qiommu_map(GwQIommu *io, uint32_t domain, uint64_t iova, uint64_t gpa,
              uint64_t len)
{
    struct virtio_iommu_req_map r = {.head.type = VIRTIO_IOMMU_T_MAP,
                                     .domain = domain,
                                     .virt_start = iova,
                                     .virt_end = iova + len - 1,
                                     .phys_start = gpa,
                                     .flags = VIRTIO_IOMMU_MAP_F_READ |
                                              VIRTIO_IOMMU_MAP_F_WRITE};
    return REQ(io, r);
}

int
gw_qiommu_unmap(GwQIommu *io, uint32_t domain, uint64_t iova, uint64_t len)
{
    struct virtio_iommu_req_unmap r = {.head.type = VIRTIO_IOMMU_T_UNMAP,
                                       .domain = domain,
                                       .virt_start = iova,
                                       .virt_end = iova + len - 1};
    return REQ(io, r);
}

GwQVirtio *
gw_qiommu_disk_start(GwQIommu *io, unsigned seg, unsigned slot, uint32_t ep,
                     uint32_t domain, unsigned data_pages)
{
    g_autoptr(GError) err = NULL;
    GwQVirtio *vd;
    uint64_t desc, avail, used, area;
    size_t len;

    vd = gw_qvirtio_start_on_segment(io->qt, seg, slot, WANT_DISK, &err);
    g_assert_no_error(err);
    g_assert_cmphex(gw_qvirtio_features(vd), ==, WANT_DISK);
    gw_qvirtio_set_dma_offset(vd, GW_QIOMMU_OFF);
    g_assert_true(gw_qvirtio_setup_vq(vd, 0, &err));
    gw_qvirtio_vq_rings(vd, 0, &desc, &avail, &used);
    area = gw_qvirtio_data_area(vd, &len);
    g_assert_cmpuint(data_pages * GW_QIOMMU_PAGE, <=, len);
    g_assert_cmpint(gw_qiommu_attach(io, domain, ep), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(
        gw_qiommu_map(io, domain, desc + GW_QIOMMU_OFF, desc, GW_QIOMMU_PAGE),
        ==, VIRTIO_IOMMU_S_OK);
    for (unsigned p = 0; p < data_pages; p++) {
        uint64_t gpa = area + p * GW_QIOMMU_PAGE;
        g_assert_cmpint(
            gw_qiommu_map(io, domain, gpa + GW_QIOMMU_OFF, gpa, GW_QIOMMU_PAGE),
            ==, VIRTIO_IOMMU_S_OK);
    }
    gw_qvirtio_driver_ok(vd);
    return vd;
}
