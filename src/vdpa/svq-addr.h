/*
 * svq-addr: the guest addresses the shadow-virtqueue relay (svq.c)
 * meets, for one vDPA device.  With iommu=off they are guest-physical
 * addresses (identity); with iommu=on they are the guest's IOVAs of the
 * device's virtio-iommu endpoint, translated by gw_virtio_iommu_translate.
 * Rings are translated once, at start (gw_vdpa_device_guest_gpa,
 * iommu.c); buffers at every forward and every completion, here.
 *
 * Threads: gw_svq_addr_init and the area helpers with the device lock
 * held; reachable and mark_dirty on the relay thread, without it (a
 * translation takes only the IOMMU's space lock, for reading); read and
 * write by the control queue relay (cvq-relay.c), with it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <godwit/memory.h>
#include <godwit/vdpa-device.h>
#include <godwit/virtio-iommu.h>

/* Shadow rings of an iommu=on device live above the guest's IOVAs
 * (PROBE reports them reserved) and below this. */
#define GW_SVQ_IOMMU_IOVA_TOP ((1ull << 48) - 1)

typedef struct {
    GwGuestMemory *mem;
    const GwVirtioIommu *iommu; /* iommu=on: the device's; NULL: GPAs */
    uint32_t endpoint;
} GwSvqAddr;

/* `d`'s view.  False with *errp for an iommu=on device that is behind
 * no IOMMU yet (nothing could translate its addresses). */
bool gw_svq_addr_init(GwSvqAddr *a, const GwVdpaDevice *d, GError **errp);

/* Where a part of the guest's ring is, whole, and its GPA: NULL if not
 * in RAM (iommu=on: not one contiguous range of it behind its IOVAs). */
void *gw_svq_addr_ring(GwVdpaDevice *d, uint64_t addr, uint64_t len, bool write,
                       uint64_t *gpa);

/*
 * Whether the device may reach all of [addr, addr + len) (len >= 1):
 * guest RAM of one region (iommu=off), or mapped for the endpoint with
 * write permission (`write`) or read permission, possibly through
 * several mappings (iommu=on).
 */
bool gw_svq_addr_reachable(const GwSvqAddr *a, uint64_t addr, uint64_t len,
                           bool write);

/*
 * Copies [addr, addr + len) of the guest's address space out of guest
 * RAM into `buf` (read permission), or `buf` into it (write permission;
 * what is written is marked dirty at its GPAs), piece by piece through
 * the IOMMU's mappings.  False if any of it is unreachable so; a write
 * then changes nothing, a read may have filled part of `buf`.
 */
bool gw_svq_addr_read(const GwSvqAddr *a, uint64_t addr, void *buf,
                      uint64_t len);
bool gw_svq_addr_write(const GwSvqAddr *a, uint64_t addr, const void *buf,
                       uint64_t len);

/* Marks the guest RAM behind [addr, addr + len) dirty, each mapping's
 * piece at its GPA; a piece that no longer translates was marked when
 * it was unmapped (virtio-iommu-priv.h), so it is skipped. */
void gw_svq_addr_mark_dirty(const GwSvqAddr *a, uint64_t addr, uint64_t len);

/* The highest IOVA `d`'s shadow rings may take, given `fallback`'s
 * (iommu=off) cap. */
uint64_t gw_svq_addr_iova_top(const GwVdpaDevice *d, uint64_t fallback);

/* Whether [iova, iova + len) meets an IOVA the guest owns on `d` (its
 * RAM's GPAs; with iommu=on all of [0, GW_IOMMU_INPUT_END]); *below:
 * the lowest such it meets (0: nothing lower is free). */
bool gw_svq_addr_meets_guest(const GwVdpaDevice *d, uint64_t iova, uint64_t len,
                             uint64_t *below);
