/*
 * IOTLB of a simulated device: the vhost_msg_v2 write() path with the
 * kernel's checks (vhost_chr_write_iter, vhost_vdpa_process_iotlb_msg,
 * vhost_vdpa_va_map) and the DMA translation the data path uses.
 *
 * Two views of each address space, as in the kernel: vhost-vdpa's iotlb
 * (every SimMap; overlap checks run against it) and the device's own map
 * (SimMap.dev), which a reset without IOTLB_PERSIST empties while
 * vhost-vdpa's entries stay — so re-mapping after such a reset without
 * invalidating first fails with EEXIST, exactly like the kernel.
 *
 * Runs on whichever thread writes to the backend, and on the worker for
 * DMA; both with dev->lock held.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "sim-priv.h"

void
gw_sim_as_clear(SimAs *as)
{
    if (as->maps) {
        g_array_set_size(as->maps, 0);
    }
    as->allocated = false;
}

/* Index of the first map whose last >= start (maps are sorted). */
static guint
first_from(SimAs *as, uint64_t start)
{
    guint lo = 0, hi = as->maps->len;

    while (lo < hi) {
        guint mid = (lo + hi) / 2;

        if (g_array_index(as->maps, SimMap, mid).last < start) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static bool
overlaps(SimAs *as, uint64_t start, uint64_t last)
{
    guint i = first_from(as, start);

    return i < as->maps->len &&
           g_array_index(as->maps, SimMap, i).start <= last;
}

static void
add_map(GwVdpaSimDev *d, SimAs *as, uint64_t start, uint64_t size,
        uint64_t uaddr, uint8_t perm)
{
    SimMap m = {.start = start,
                .last = start + size - 1,
                .uaddr = uaddr,
                .perm = perm,
                .dev = true};

    g_array_insert_val(as->maps, first_from(as, start), m);
}

/* Removes every whole entry overlapping [start, last]. */
static void
unmap(SimAs *as, uint64_t start, uint64_t last)
{
    guint i = first_from(as, start);

    while (i < as->maps->len &&
           g_array_index(as->maps, SimMap, i).start <= last) {
        g_array_remove_index(as->maps, i);
    }
}

/* Shared VMAs of this process covering [uaddr, uaddr+size): see va_map. */
typedef struct {
    uint64_t start, end;
    bool shared;
} Vma;

/* The process's mappings, one line of /proc/self/maps each (walked with
 * strchr: g_strsplit's strstr is slow under ASan, and every IOTLB
 * update comes here). */
static GArray *
parse_vmas(char *text)
{
    GArray *vmas = g_array_new(false, false, sizeof(Vma));

    for (char *l = text, *nl; *l; l = nl ? nl + 1 : l + strlen(l)) {
        Vma v;
        char perms[5];

        nl = strchr(l, '\n');
        if (nl) {
            *nl = '\0';
        }
        if (sscanf(l, "%" SCNx64 "-%" SCNx64 " %4s", &v.start, &v.end, perms) ==
            3) {
            v.shared = perms[3] == 's';
            g_array_append_val(vmas, v);
        }
    }
    return vmas;
}

/*
 * The mappings now, as the kernel looks at them on every map.  A thread
 * whose seccomp role answers every open with ENOENT (a vCPU's: the
 * guest's own MMIO can reset a device or turn an IOMMU's bypass back
 * on, which maps guest RAM) gets the list this device last read, taken
 * on the main thread when guest RAM or a VMM ring was first mapped:
 * guest RAM's mapping does not change while the VM lives.
 */
static GArray *
read_vmas(GwVdpaSimDev *d)
{
    g_autofree char *text = NULL;

    if (!g_file_get_contents("/proc/self/maps", &text, NULL, NULL)) {
        return d->vmas ? g_array_ref(d->vmas)
                       : g_array_new(false, false, sizeof(Vma));
    }
    g_clear_pointer(&d->vmas, g_array_unref);
    d->vmas = parse_vmas(text);
    return g_array_ref(d->vmas);
}

/*
 * vhost_vdpa_va_map: VA devices only map shared, file-backed memory
 * (memfd, MAP_SHARED); other parts of the range are skipped silently and
 * DMA to them faults.  A hole in the address space is EINVAL.
 */
static int
va_map(GwVdpaSimDev *d, SimAs *as, uint64_t iova, uint64_t size, uint64_t uaddr,
       uint8_t perm)
{
    g_autoptr(GArray) vmas = read_vmas(d);
    uint64_t done = 0;

    for (guint i = 0; i < vmas->len && done < size; i++) {
        Vma *v = &g_array_index(vmas, Vma, i);
        uint64_t at = uaddr + done, n;

        if (v->end <= at) {
            continue;
        }
        if (v->start > at) {
            break;
        }
        n = MIN(size - done, v->end - at);
        if (v->shared) {
            add_map(d, as, iova + done, n, at, perm);
        }
        done += n;
    }
    if (done < size) {
        if (done) {
            unmap(as, iova, iova + done - 1);
        }
        return -EINVAL;
    }
    return 0;
}

static int
iotlb_update(GwVdpaSimDev *d, SimAs *as, const struct vhost_iotlb_msg *m)
{
    if (!m->size || m->iova > UINT64_MAX - m->size + 1 ||
        (d->narrow_iova && m->iova + m->size - 1 > GW_SIM_NARROW_IOVA_LAST)) {
        return -EINVAL; /* outside the range GET_IOVA_RANGE reports */
    }
    if (overlaps(as, m->iova, m->iova + m->size - 1)) {
        return -EEXIST;
    }
    if (m->uaddr > UINT64_MAX - m->size + 1) {
        return -EINVAL;
    }
    return va_map(d, as, m->iova, m->size, m->uaddr, m->perm);
}

/* vhost_vdpa_process_iotlb_msg; the caller turns any error into EFAULT. */
static int
process_msg(GwVdpaSimDev *d, uint32_t asid, const struct vhost_iotlb_msg *m)
{
    bool alloc =
        m->type == VHOST_IOTLB_UPDATE || m->type == VHOST_IOTLB_BATCH_BEGIN;
    SimAs *as;

    if (!d->owned) {
        return -EPERM;
    }
    if (asid >= d->type->nas) {
        return -EINVAL;
    }
    as = &d->as[asid];
    if (alloc) {
        as->allocated = true;
    }
    if (!as->allocated || (d->in_batch && d->batch_asid != asid)) {
        return -EINVAL;
    }
    switch (m->type) {
    case VHOST_IOTLB_UPDATE:
        return iotlb_update(d, as, m);
    case VHOST_IOTLB_INVALIDATE:
        unmap(as, m->iova, m->iova + m->size - 1);
        return 0;
    case VHOST_IOTLB_BATCH_BEGIN:
        d->batch_asid = asid;
        d->in_batch = true;
        return 0;
    case VHOST_IOTLB_BATCH_END:
        /* set_map: the device map becomes vhost-vdpa's map. */
        for (guint i = 0; d->in_batch && i < as->maps->len; i++) {
            g_array_index(as->maps, SimMap, i).dev = true;
        }
        d->in_batch = false;
        return 0;
    default:
        return -EINVAL;
    }
}

/* vhost_chr_write_iter: v1 or v2 message, asid only with IOTLB_ASID. */
ssize_t
gw_sim_dev_write(GwVdpaSimDev *d, const void *buf, size_t len)
{
    const size_t msg_at = offsetof(struct vhost_msg_v2, iotlb);
    struct vhost_iotlb_msg m;
    uint32_t type, asid = 0;
    int r;

    if (len < sizeof(type)) {
        return -EINVAL;
    }
    memcpy(&type, buf, sizeof(type));
    if (type != VHOST_IOTLB_MSG && type != VHOST_IOTLB_MSG_V2) {
        return -EINVAL;
    }
    if (len < msg_at + sizeof(m)) {
        return -EINVAL;
    }
    if (type == VHOST_IOTLB_MSG_V2 &&
        (d->backend_features & (1ull << VHOST_BACKEND_F_IOTLB_ASID))) {
        memcpy(&asid, (const uint8_t *)buf + 4, sizeof(asid));
    }
    memcpy(&m, (const uint8_t *)buf + msg_at, sizeof(m));
    if (m.type == VHOST_IOTLB_UPDATE && m.size == 0) {
        return -EINVAL;
    }
    pthread_mutex_lock(&d->lock);
    r = process_msg(d, asid, &m);
    pthread_mutex_unlock(&d->lock);
    return r ? -EFAULT : (ssize_t)sizeof(struct vhost_msg_v2);
}

void *
gw_sim_dma_ptr(GwVdpaSimDev *d, uint32_t asid, uint64_t iova, size_t len,
               uint8_t perm)
{
    SimAs *as = &d->as[asid];
    guint i = first_from(as, iova);
    SimMap *m;

    if (i >= as->maps->len) {
        return NULL;
    }
    m = &g_array_index(as->maps, SimMap, i);
    if (!m->dev || m->start > iova || (m->perm & perm) != perm ||
        len - 1 > m->last - iova) {
        return NULL;
    }
    return (void *)(uintptr_t)(m->uaddr + (iova - m->start));
}

/* Copies through as many mappings as the range spans. */
static int
dma_copy(GwVdpaSimDev *d, uint32_t asid, uint64_t iova, void *buf, size_t len,
         bool write)
{
    SimAs *as = &d->as[asid];

    while (len) {
        guint i = first_from(as, iova);
        SimMap *m;
        size_t n;
        uint8_t *p;

        if (i >= as->maps->len) {
            return -EFAULT;
        }
        m = &g_array_index(as->maps, SimMap, i);
        n = MIN(len, m->last - iova + 1 ? m->last - iova + 1 : len);
        p = gw_sim_dma_ptr(d, asid, iova, n,
                           write ? VHOST_ACCESS_WO : VHOST_ACCESS_RO);
        if (!p) {
            return -EFAULT;
        }
        write ? memcpy(p, buf, n) : memcpy(buf, p, n);
        buf = (uint8_t *)buf + n;
        iova += n;
        len -= n;
    }
    return 0;
}

int
gw_sim_dma_read(GwVdpaSimDev *d, uint32_t asid, uint64_t iova, void *dst,
                size_t len)
{
    return dma_copy(d, asid, iova, dst, len, false);
}

int
gw_sim_dma_write(GwVdpaSimDev *d, uint32_t asid, uint64_t iova, const void *src,
                 size_t len)
{
    return dma_copy(d, asid, iova, (void *)src, len, true);
}
