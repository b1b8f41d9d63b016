/* iommu-blk [dev=bb:dd.f] [sectors=N] [rounds=N] [timeout-ms=N]
 * [expect-capacity=N] [unmap-test=1] [inject-error=1] [keep=1]: the blk
 * workload on a virtio-blk behind the virtio-iommu the ACPI VIOT names.  The
 * disk's endpoint (as VIOT computes it) is attached to a domain, and only
 * the memory blk's driver hands to the device (ring, header, data
 * buffers, status; page-granular) is mapped, at IOVA = physical +
 * an offset chosen inside the input range and outside the endpoint's
 * reserved regions; the driver gives the device those IOVAs.  Then the
 * blk checks run.  unmap-test=1 then unmaps the read buffer, submits a
 * read into it and expects it to fail (see unmap_test); faults the
 * IOMMU reports on its event queue are printed.
 * inject-error=1 maps the read buffer's IOVAs onto another page, so the
 * blk data check must fail.  keep=1 leaves the disk running, attached
 * and mapped after a pass (for a host to look at, e.g. while the guest
 * waits in wait-button); otherwise the disk is reset, its buffers
 * unmapped, its endpoint detached and the IOMMU reset. */
#include "iommu.h"

#define MAX_SECTORS 64
#define SECTOR      512

/* What a wrong mapping lands on: never read by anyone. */
static u8 decoy[MAX_SECTORS * SECTOR] __attribute__((aligned(4096)));

static const u64 offsets[] = {1ull << 32, 1ull << 40, 0x40000000ull};

bool
iommu_blk_open(struct iommu_blk *b, u32 timeout_ms)
{
    memset(b, 0, sizeof(*b));
    return viot_read(&b->v, "iommu") &&
           iommu_init(&b->m, b->v.iommu_sbdf, timeout_ms);
}

static bool
overlaps(u64 s1, u64 e1, u64 s2, u64 e2)
{
    return s1 <= e2 && s2 <= e1;
}

/* Page-granular maps of blk's regions; regions sharing a page share a
 * map (two maps never overlap: the IOMMU would refuse the second). */
static void
build_maps(struct iommu_blk *b, u32 sectors, u64 g)
{
    struct dma_region r[BLK_DMA_REGIONS];
    u32 n = blk_dma_regions(sectors, r);

    b->nmaps = 0;
    for (u32 i = 0; i < n; i++) {
        u64 s = (uptr)r[i].addr & ~(g - 1);
        u64 e = (((uptr)r[i].addr + r[i].len + g - 1) & ~(g - 1)) - 1;
        b->maps[b->nmaps++] =
            (struct iommu_map_ent){s, e, r[i].flags, 1u << i, false};
    }
    for (u32 i = 0; i < b->nmaps; i++) {
        for (u32 j = i + 1; j < b->nmaps; j++) {
            struct iommu_map_ent *x = &b->maps[i], *y = &b->maps[j];
            if (!overlaps(x->start, x->end, y->start, y->end)) {
                continue;
            }
            x->start = x->start < y->start ? x->start : y->start;
            x->end = x->end > y->end ? x->end : y->end;
            x->flags |= y->flags;
            x->regions |= y->regions;
            *y = b->maps[--b->nmaps];
            j = i; /* x grew: look at every other map again */
        }
    }
}

static bool
iova_ok(const struct iommu *m, u64 s, u64 e)
{
    if (e < s || s < m->in_start || e > m->in_end) {
        return false;
    }
    for (u32 i = 0; i < m->nresv; i++) {
        if (overlaps(s, e, m->resv[i].start, m->resv[i].end)) {
            return false;
        }
    }
    return true;
}

static bool
pick_offset(struct iommu_blk *b)
{
    for (u32 k = 0; k < sizeof(offsets) / sizeof(offsets[0]); k++) {
        bool ok = true;
        for (u32 i = 0; i < b->nmaps && ok; i++) {
            ok = iova_ok(&b->m, b->maps[i].start + offsets[k],
                         b->maps[i].end + offsets[k]);
        }
        if (ok) {
            b->offset = offsets[k];
            return true;
        }
    }
    gprintf("GUEST fail iommu %s no-iova-offset input-range=0x%llx-0x%llx "
            "resv=%u\n",
            b->m.d.name, b->m.in_start, b->m.in_end, b->m.nresv);
    return false;
}

struct iommu_map_ent *
iommu_blk_rbuf_map(struct iommu_blk *b)
{
    for (u32 i = 0; i < b->nmaps; i++) {
        if (b->maps[i].regions == 1u << BLK_REGION_RBUF) {
            return &b->maps[i];
        }
    }
    gprintf("GUEST fail iommu %s rbuf-shares-a-page\n", b->m.d.name);
    return NULL;
}

static bool
map_all(struct iommu_blk *b, bool wrong_page, u64 g)
{
    struct iommu_map_ent *bad = wrong_page ? iommu_blk_rbuf_map(b) : NULL;

    if (wrong_page && !bad) {
        return false;
    }
    if (bad &&
        (bad->end - bad->start >= sizeof(decoy) || ((uptr)decoy & (g - 1)))) {
        gprintf("GUEST fail iommu %s decoy-too-small\n", b->m.d.name);
        return false;
    }
    for (u32 i = 0; i < b->nmaps; i++) {
        struct iommu_map_ent *e = &b->maps[i];
        u64 phys = e == bad ? (uptr)decoy : e->start;
        if (!iommu_map(&b->m, b->domain, e->start + b->offset, phys,
                       e->end - e->start + 1, e->flags)) {
            return false;
        }
        e->mapped = true;
    }
    return true;
}

static void
print_dev(u32 sbdf)
{
    if (sbdf >> 16) {
        gprintf("%04x:", sbdf >> 16);
    }
    gprintf("%02x:%02x.%x", (sbdf >> 8) & 0xff, (sbdf >> 3) & 0x1f, sbdf & 7);
}

bool
iommu_blk_attach(struct iommu_blk *b, u32 sbdf, u32 sectors, bool wrong_page)
{
    struct iommu *m = &b->m;
    u64 g = m->page_mask & -m->page_mask; /* the smallest page */

    b->sbdf = sbdf;
    b->nmaps = 0;
    if (!viot_endpoint(&b->v, sbdf, &b->ep)) {
        gprintf("GUEST fail iommu ");
        print_dev(sbdf);
        gprintf(" not-behind-iommu\n");
        return false;
    }
    b->domain = m->dom_start ? m->dom_start : 1;
    if (b->domain > m->dom_end) {
        b->domain = m->dom_start;
    }
    if (!iommu_attach(m, b->domain, b->ep)) {
        return false;
    }
    b->attached = true;
    if (!iommu_probe(m, b->ep)) {
        return false;
    }
    build_maps(b, sectors, g);
    if (!pick_offset(b) || !map_all(b, wrong_page, g)) {
        return false;
    }
    gprintf("GUEST iommu ");
    print_dev(sbdf);
    gprintf(" endpoint=0x%x domain=%u dma-offset=0x%llx maps=%u\n", b->ep,
            b->domain, b->offset, b->nmaps);
    return true;
}

bool
iommu_blk_detach(struct iommu_blk *b)
{
    bool ok = true;

    for (u32 i = 0; i < b->nmaps; i++) {
        struct iommu_map_ent *e = &b->maps[i];
        if (e->mapped) {
            ok &= iommu_unmap(&b->m, b->domain, e->start + b->offset,
                              e->end - e->start + 1);
            e->mapped = false;
        }
    }
    if (b->attached) {
        ok &= iommu_detach(&b->m, b->domain, b->ep);
        b->attached = false;
    }
    return ok;
}

/* Prints the faults on the event queue; how many were for `ep` at an
 * address in [lo, hi]. */
static u32
report_faults(struct iommu_blk *b, u64 lo, u64 hi)
{
    struct iommu_fault f;
    u32 hits = 0;

    /* a fault is queued as the translation fails: allow a moment */
    for (u32 n = 0; n < 8 && WAIT_MS(iommu_fault_poll(&b->m, &f), 100); n++) {
        gprintf("GUEST iommu fault endpoint=0x%x reason=%u flags=0x%x "
                "address=0x%llx\n",
                f.endpoint, f.reason, f.flags, f.address);
        hits += f.endpoint == b->ep && f.address >= lo && f.address <= hi;
    }
    return hits;
}

static bool
untouched(const u8 *p, u32 n)
{
    const volatile u8 *v = p;
    for (u32 i = 0; i < n; i++) {
        if (v[i] != 0xA5) {
            return false;
        }
    }
    return true;
}

/* Unmaps the read buffer and reads into it: the device must give up
 * (NEEDS_RESET), or complete without the data reaching the buffer while
 * the IOMMU reports a fault at its IOVAs (QEMU: a DMA it cannot
 * translate goes to a bounce buffer that is dropped). */
static bool
unmap_test(struct iommu_blk *b, struct virtio_dev *d, u32 timeout_ms)
{
    struct iommu_map_ent *e = iommu_blk_rbuf_map(b);
    struct dma_region r[BLK_DMA_REGIONS];
    struct virtq *q;
    u32 id, len;
    bool used = false;

    if (!e || !iommu_unmap(&b->m, b->domain, e->start + b->offset,
                           e->end - e->start + 1)) {
        return false;
    }
    e->mapped = false;
    u64 lo = e->start + b->offset, hi = e->end + b->offset;
    gprintf("GUEST iommu %s unmapped rbuf iova=0x%llx size=0x%llx\n", d->name,
            lo, hi - lo + 1);
    blk_dma_regions(1, r);
    memset((void *)r[BLK_REGION_RBUF].addr, 0xA5, SECTOR);
    const volatile u8 *st = blk_post_read(d, 0, &q);
    if (!WAIT_MS(virtio_status(d) & VIRTIO_S_NEEDS_RESET ||
                     (used = virtq_poll(d, q, &id, &len)),
                 timeout_ms)) {
        gprintf("GUEST fail iommu %s unmapped-request timeout\n", d->name);
        return false;
    }
    u32 faults = report_faults(b, lo, hi);
    if (!used) {
        gprintf("GUEST iommu %s unmapped-request failed needs-reset "
                "faults=%u\n",
                d->name, faults);
        return true;
    }
    bool blocked = untouched(r[BLK_REGION_RBUF].addr, SECTOR);
    if (!blocked || !faults) {
        gprintf("GUEST fail iommu %s unmapped-request completed status=%u "
                "data=%s faults=%u\n",
                d->name, *st, blocked ? "blocked" : "landed", faults);
        return false;
    }
    gprintf("GUEST iommu %s unmapped-request failed dma-blocked status=%u "
            "faults=%u\n",
            d->name, *st, faults);
    return true;
}

void
wl_iommu_blk(const struct args *a)
{
    static const char *const allowed[] = {
        "dev",        "sectors",    "expect-capacity",
        "timeout-ms", "unmap-test", "inject-error",
        "rounds",     "keep",       NULL};
    static struct iommu_blk b;
    struct blk_opts o;
    struct virtio_dev d = {0};
    u32 bdf = 0;

    if (!args_check(a, allowed) || !blk_opts_parse(a, &o)) {
        return;
    }
    bool wrong_page = o.inject, unmap = arg_u32(a, "unmap-test", 0);
    o.inject = false; /* blk's own corruption is not what is tested here */
    if (!virtio_pick(a, 0x1042, 0x1001, &bdf) ||
        !virtio_check_id(bdf, 0x1042, 0x1001, "blk", "blk") ||
        !iommu_blk_open(&b, o.timeout_ms)) {
        return;
    }
    bool ok = iommu_blk_attach(&b, bdf, o.sectors, wrong_page);
    if (ok) {
        o.dma_offset = b.offset;
        ok = blk_check(&d, bdf, &o) &&
             (!unmap || unmap_test(&b, &d, o.timeout_ms));
    }
    if (ok && !unmap && arg_u32(a, "keep", 0)) {
        gprintf("GUEST pass iommu-blk\n");
        return;
    }
    if (d.common && !virtio_stop(&d)) {
        gprintf("GUEST fail iommu %s reset-timeout\n", d.name);
        ok = false;
    }
    ok &= iommu_blk_detach(&b);
    if (ok && unmap) {
        gprintf("GUEST iommu %s still-running after-unmapped-request\n",
                d.name);
    }
    iommu_stop(&b.m);
    if (ok) {
        gprintf("GUEST pass iommu-blk\n");
    }
}
