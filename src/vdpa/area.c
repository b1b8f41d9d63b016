/*
 * VMM memory a vDPA device reaches (GwVdpaArea, device-priv.h): the
 * shadow virtqueues' rings and the control queue relay's.  Each is a
 * memfd of its own, mapped into the device's IOTLB at the highest IOVAs
 * the device offers that are not the guest's (svq-addr.h), so no guest
 * descriptor can point into it.
 *
 * Threads: the main thread, with the device lock held.
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>
#include <godwit/util.h>
#include "device-priv.h"
#include "svq-addr.h"

#define AREA_PAGE     4096ull
#define AREA_IOVA_TOP ((1ull << 47) - 1) /* what any IOMMU can address */

/* Whether [iova, iova + len) meets guest RAM's IOVAs or those an area
 * holds (the control queue relay's ring); *below the lowest it meets. */
static bool
meets_ram(const GwVdpaDevice *d, uint64_t iova, uint64_t len, uint64_t *below)
{
    bool held = d->held_len && iova < d->held_iova + d->held_len &&
                d->held_iova <= iova + len - 1;
    uint64_t guest;

    if (gw_svq_addr_meets_guest(d, iova, len, &guest)) {
        *below = held ? MIN(d->held_iova, guest) : guest;
        return true;
    }
    *below = d->held_iova;
    return held;
}

/* The highest page-aligned IOVA range of a->len bytes inside the
 * device's range (below 2^47 if it can; iommu=on: above the guest's
 * IOVAs, below 2^48) that the guest does not own. */
static bool
pick_iova(GwVdpaDevice *d, GwVdpaArea *a, GError **errp)
{
    uint64_t cap = gw_svq_addr_iova_top(d, AREA_IOVA_TOP);
    uint64_t first, last, top, base, below = 0;

    if (!gw_vdpa_get_iova_range(d->backend, &first, &last, errp)) {
        return false;
    }
    top = last > cap && first < cap ? cap : last;
    for (guint tries = 0; top >= first && top - first >= a->len - 1 &&
                          tries <= d->mem->n_regions + 1;
         tries++) {
        base = (top - (a->len - 1)) & ~(AREA_PAGE - 1);
        if (base < first) {
            break;
        }
        if (!meets_ram(d, base, a->len, &below)) {
            a->iova = base;
            return true;
        }
        if (below == 0) {
            break;
        }
        top = below - 1;
    }
    g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                "vdpa %s: no IOVA range of %zu bytes for shadow rings "
                "outside the guest's IOVAs in [0x%" G_GINT64_MODIFIER
                "x, 0x%" G_GINT64_MODIFIER "x]",
                d->cfg->id, a->len, first, last);
    return false;
}

bool
gw_vdpa_area_alloc(GwVdpaDevice *d, GwVdpaArea *a, size_t len, GError **errp)
{
    gw_autofd fd = -1;

    a->len = (len + AREA_PAGE - 1) & ~(AREA_PAGE - 1);
    fd = memfd_create("godwit-vdpa-vmm", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, a->len) < 0) {
        return gw_error_errno(errp, errno, "vdpa %s: VMM rings (memfd)",
                              d->cfg->id);
    }
    a->host = mmap(NULL, a->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (a->host == MAP_FAILED) {
        a->host = NULL;
        return gw_error_errno(errp, errno, "vdpa %s: VMM rings (mmap)",
                              d->cfg->id);
    }
    return pick_iova(d, a, errp);
}

bool
gw_vdpa_area_map(GwVdpaDevice *d, GwVdpaArea *a, size_t off, size_t len,
                 uint8_t perm, GError **errp)
{
    a->mapped = true; /* even failed: invalidating the whole is harmless */
    return gw_vdpa_iotlb_update(d->backend, 0, a->iova + off, len,
                                a->host + off, perm, errp);
}

void
gw_vdpa_area_unmap(GwVdpaDevice *d, GwVdpaArea *a)
{
    if (a->mapped) {
        gw_vdpa_iotlb_invalidate(d->backend, 0, a->iova, a->len, NULL);
        a->mapped = false;
    }
}

void
gw_vdpa_area_release(GwVdpaArea *a)
{
    if (a->host) {
        munmap(a->host, a->len);
        a->host = NULL;
    }
}
