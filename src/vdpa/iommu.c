/*
 * A vDPA device with iommu=on as an endpoint of the virtio-iommu: its
 * IOTLB is the guest's DMA address space the IOMMU describes, not the
 * identity map of guest RAM.  Each map the IOMMU pushes becomes a
 * VHOST_IOTLB_UPDATE (IOVA = the guest's DMA address, user address =
 * the guest RAM behind the guest-physical one, permissions from the
 * mapping's flags), each unmap a VHOST_IOTLB_INVALIDATE, batched when
 * the backend offers IOTLB_BATCH.  What the device then reaches is only
 * what the guest mapped: a DMA anywhere else fails inside the device.
 *
 * Threads: as include/godwit/virtio-iommu.h's calls into the endpoint
 * ops, with the device lock held.
 */
#include <godwit/util.h>
#include <godwit/virtio-iommu.h>
#include "device-priv.h"

static uint8_t
vhost_perm(unsigned flags)
{
    bool r = flags & GW_IOMMU_MAP_F_READ, w = flags & GW_IOMMU_MAP_F_WRITE;

    /* The device reads what the guest lets it read: VHOST_ACCESS_RO. */
    return r && w ? VHOST_ACCESS_RW : w ? VHOST_ACCESS_WO : VHOST_ACCESS_RO;
}

static bool
ep_map(void *opaque, uint64_t iova, uint64_t size, uint64_t gpa, unsigned flags,
       GError **errp)
{
    GwVdpaDevice *d = opaque;
    void *host = gw_mem_ptr(d->mem, gpa, size);

    if (!host) { /* the IOMMU checked; belt and braces */
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vdpa %s: 0x%" G_GINT64_MODIFIER "x+0x%" G_GINT64_MODIFIER
                    "x is not guest RAM",
                    d->cfg->id, gpa, size);
        return false;
    }
    return gw_vdpa_iotlb_update(d->backend, 0, iova, size, host,
                                vhost_perm(flags), errp);
}

static bool
ep_unmap(void *opaque, uint64_t iova, uint64_t size, GError **errp)
{
    GwVdpaDevice *d = opaque;

    return gw_vdpa_iotlb_invalidate(d->backend, 0, iova, size, errp);
}

static bool
batched(const GwVdpaDevice *d)
{
    return d->backend_features & (1ull << VHOST_BACKEND_F_IOTLB_BATCH);
}

static bool
ep_batch_begin(void *opaque, GError **errp)
{
    GwVdpaDevice *d = opaque;

    return !batched(d) || gw_vdpa_iotlb_batch_begin(d->backend, 0, errp);
}

static bool
ep_batch_end(void *opaque, GError **errp)
{
    GwVdpaDevice *d = opaque;

    return !batched(d) || gw_vdpa_iotlb_batch_end(d->backend, 0, errp);
}

static const GwIommuEndpointOps endpoint_ops = {
    .map = ep_map,
    .unmap = ep_unmap,
    .batch_begin = ep_batch_begin,
    .batch_end = ep_batch_end,
};

bool
gw_vdpa_device_attach_iommu(GwVdpaDevice *d, GwVirtioIommu *iommu,
                            GError **errp)
{
    GwPciDevice *pci = gw_vdpa_device_pci(d);
    uint32_t id = (uint32_t)d->cfg->pci_segment << 16 | (uint32_t)pci->slot
                                                            << 3;

    g_assert(d->cfg->iommu && !d->iommu);
    if (!gw_virtio_iommu_add_endpoint(iommu, id, &endpoint_ops, d, errp)) {
        g_prefix_error(errp, "vdpa %s: ", d->cfg->id);
        return false;
    }
    d->iommu = iommu;
    d->endpoint = id;
    return true;
}

uint32_t
gw_vdpa_device_endpoint(const GwVdpaDevice *d)
{
    return d->iommu ? d->endpoint : UINT32_MAX;
}

void
gw_vdpa_iommu_detach(GwVdpaDevice *d)
{
    if (d->iommu) {
        gw_virtio_iommu_remove_endpoint(d->iommu, d->endpoint);
        d->iommu = NULL;
    }
}

void
gw_vdpa_iommu_forget(GwVdpaDevice *d)
{
    gw_vdpa_iotlb_invalidate(d->backend, 0, 0, GW_IOMMU_INPUT_END + 1, NULL);
}

bool
gw_vdpa_iommu_remap(GwVdpaDevice *d, GError **errp)
{
    if (!d->iommu) {
        return true; /* not attached yet: nothing was mapped */
    }
    /* vhost-vdpa's own entries may outlive the device's: clear both. */
    gw_vdpa_iommu_forget(d);
    if (!gw_virtio_iommu_replay(d->iommu, d->endpoint, errp)) {
        g_prefix_error(errp, "vdpa %s: ", d->cfg->id);
        return false;
    }
    return true;
}

bool
gw_vdpa_device_guest_gpa(const GwVdpaDevice *d, uint64_t addr, uint64_t len,
                         bool write, uint64_t *gpa)
{
    uint64_t at = 0, n;

    if (!d->cfg->iommu) {
        *gpa = addr;
        return gw_mem_ptr(d->mem, addr, len) != NULL;
    }
    if (!d->iommu) {
        return false;
    }
    /* Several mappings may be one range of guest RAM: follow them. */
    for (uint64_t done = 0; done < len; done += n) {
        n = gw_virtio_iommu_translate(d->iommu, d->endpoint, addr + done,
                                      len - done, write, &at);
        if (!n || (done && at != *gpa + done)) {
            return false;
        }
        if (!done) {
            *gpa = at;
        }
    }
    return len && gw_mem_ptr(d->mem, *gpa, len) != NULL;
}
