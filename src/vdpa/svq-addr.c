/*
 * svq-addr: the relay's guest addresses, GPAs or IOVAs.  See
 * src/vdpa/svq-addr.h (threads there too).
 */
#include <godwit/util.h>
#include "device-priv.h"
#include "svq-addr.h"

#define IOMMU_PAGE 4096ull /* the virtio-iommu's granule */

bool
gw_svq_addr_init(GwSvqAddr *a, const GwVdpaDevice *d, GError **errp)
{
    if (d->cfg->iommu && !d->iommu) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vdpa %s: iommu=on but behind no IOMMU yet: its guest "
                    "IOVAs cannot be translated",
                    d->cfg->id);
        return false;
    }
    *a = (GwSvqAddr){d->mem, d->iommu, d->endpoint};
    return true;
}

void *
gw_svq_addr_ring(GwVdpaDevice *d, uint64_t addr, uint64_t len, bool write,
                 uint64_t *gpa)
{
    return gw_vdpa_device_guest_gpa(d, addr, len, write, gpa)
               ? gw_mem_ptr(d->mem, *gpa, len)
               : NULL;
}

/* How many bytes from `addr` translate in one piece (at *gpa); 0: none. */
static uint64_t
piece(const GwSvqAddr *a, uint64_t addr, uint64_t len, bool write,
      uint64_t *gpa)
{
    if (!a->iommu) {
        *gpa = addr;
        return gw_mem_ptr(a->mem, addr, len) ? len : 0;
    }
    return gw_virtio_iommu_translate(a->iommu, a->endpoint, addr, len, write,
                                     gpa);
}

bool
gw_svq_addr_reachable(const GwSvqAddr *a, uint64_t addr, uint64_t len,
                      bool write)
{
    uint64_t gpa;

    for (uint64_t done = 0; done < len;) {
        uint64_t n = piece(a, addr + done, len - done, write, &gpa);

        if (!n) {
            return false;
        }
        done += n;
    }
    return true;
}

/* Copies [addr, addr + len) piece by piece, in order (a write only
 * reads `buf`); false at the first piece that is not reachable. */
static bool
copy_pieces(const GwSvqAddr *a, uint64_t addr, uint8_t *buf, uint64_t len,
            bool write)
{
    uint64_t gpa;

    for (uint64_t done = 0; done < len;) {
        uint64_t n = piece(a, addr + done, len - done, write, &gpa);

        if (!n || !(write ? gw_mem_write(a->mem, gpa, buf + done, n)
                          : gw_mem_read(a->mem, gpa, buf + done, n))) {
            return false;
        }
        done += n;
    }
    return true;
}

bool
gw_svq_addr_read(const GwSvqAddr *a, uint64_t addr, void *buf, uint64_t len)
{
    return len && copy_pieces(a, addr, buf, len, false);
}

bool
gw_svq_addr_write(const GwSvqAddr *a, uint64_t addr, const void *buf,
                  uint64_t len)
{
    /* all or nothing: no partial write into the guest's memory */
    return len && gw_svq_addr_reachable(a, addr, len, true) &&
           copy_pieces(a, addr, (uint8_t *)buf, len, true);
}

void
gw_svq_addr_mark_dirty(const GwSvqAddr *a, uint64_t addr, uint64_t len)
{
    uint64_t gpa;

    if (!a->iommu) {
        gw_mem_mark_dirty(a->mem, addr, len);
        return;
    }
    while (len) {
        uint64_t n = piece(a, addr, len, true, &gpa);

        if (n) {
            gw_mem_mark_dirty(a->mem, gpa, n);
        } else {
            n = MIN(len, IOMMU_PAGE - (addr & (IOMMU_PAGE - 1)));
        }
        addr += n;
        len -= n;
    }
}

uint64_t
gw_svq_addr_iova_top(const GwVdpaDevice *d, uint64_t fallback)
{
    return d->cfg->iommu ? GW_SVQ_IOMMU_IOVA_TOP : fallback;
}

bool
gw_svq_addr_meets_guest(const GwVdpaDevice *d, uint64_t iova, uint64_t len,
                        uint64_t *below)
{
    const GwGuestMemory *mem = d->mem;
    bool hit = false;

    if (d->cfg->iommu) {
        *below = 0;
        return iova <= GW_IOMMU_INPUT_END;
    }
    for (guint i = 0; i < mem->n_regions; i++) {
        const GwMemRegion *r = &mem->regions[i];

        if (iova < r->gpa + r->size && r->gpa <= iova + len - 1) {
            *below = hit ? MIN(*below, r->gpa) : r->gpa;
            hit = true;
        }
    }
    return hit;
}
