/* ACPI VIOT (ACPI 6.5, 5.2.32): which PCI functions are behind which
 * paravirtual IOMMU.  A 48-byte header (36 + node count, node offset,
 * 8 reserved), then nodes: type (1), reserved (1), length (2), ...
 *   1 PCI range (24): endpoint start (4), segment start, end (2, 2),
 *     bdf start, end (2, 2), output node (2: the IOMMU node's offset)
 *   3 virtio-pci IOMMU (16): segment (2), bdf (2)
 * Every offset and length is checked against the table before use. */
#include "iommu.h"

#define VIOT_HDR        48
#define NODE_PCI_RANGE  1
#define NODE_VIRTIO_PCI 3

static u16
le16(const u8 *p)
{
    return (u16)(p[0] | p[1] << 8);
}

static u32
le32(const u8 *p)
{
    return le16(p) | (u32)le16(p + 2) << 16;
}

static void
print_sbdf(u32 sbdf)
{
    if (sbdf >> 16) {
        gprintf("%04x:", sbdf >> 16);
    }
    gprintf("%02x:%02x.%x", (sbdf >> 8) & 0xff, (sbdf >> 3) & 0x1f, sbdf & 7);
}

/* The node at `off`, NULL unless it lies in the table with at least `min`
 * bytes.  *len gets its length. */
static const u8 *
node_at(const struct sdt_hdr *t, u32 off, u32 min, u32 *len)
{
    const u8 *b = (const u8 *)t;

    if (off < VIOT_HDR || off + 4 > t->length) {
        return NULL;
    }
    *len = le16(b + off + 2);
    if (*len < min || off + *len > t->length) {
        return NULL;
    }
    return b + off;
}

/* The offset of the first virtio-pci IOMMU node, 0 if none. */
static u32
find_iommu_node(const struct sdt_hdr *t, u32 count, u32 first, u32 *sbdf)
{
    u32 off = first, len;

    for (u32 i = 0; i < count; i++, off += len) {
        const u8 *n = node_at(t, off, 4, &len);
        if (!n) {
            return 0;
        }
        if (n[0] == NODE_VIRTIO_PCI && len >= 8) {
            *sbdf = (u32)le16(n + 4) << 16 | le16(n + 6);
            return off;
        }
    }
    return 0;
}

static void
add_range(struct viot *v, const u8 *n)
{
    struct viot_range *r = &v->r[v->nranges++];

    r->ep_start = le32(n + 4);
    r->seg_start = le16(n + 8);
    r->seg_end = le16(n + 10);
    r->bdf_start = le16(n + 12);
    r->bdf_end = le16(n + 14);
    gprintf("GUEST iommu viot range segments=%u-%u bdfs=0x%04x-0x%04x "
            "endpoint-start=0x%x\n",
            r->seg_start, r->seg_end, r->bdf_start, r->bdf_end, r->ep_start);
}

bool
viot_read(struct viot *v, const char *wl)
{
    const struct sdt_hdr *t = acpi_find("VIOT");

    memset(v, 0, sizeof(*v));
    if (!t) {
        gprintf("GUEST fail %s no-viot\n", wl);
        return false;
    }
    const u8 *b = (const u8 *)t;
    if (t->length < VIOT_HDR) {
        gprintf("GUEST fail %s viot length=%u too-short\n", wl, t->length);
        return false;
    }
    u32 count = le16(b + 36), first = le16(b + 38), len;
    u32 iommu = find_iommu_node(t, count, first, &v->iommu_sbdf);
    if (!iommu) {
        gprintf("GUEST fail %s viot no-virtio-pci-iommu nodes=%u\n", wl, count);
        return false;
    }
    u32 off = first;
    for (u32 i = 0; i < count; i++, off += len) {
        const u8 *n = node_at(t, off, 4, &len);
        if (!n) {
            gprintf("GUEST fail %s viot node=%u offset=0x%x malformed\n", wl, i,
                    off);
            return false;
        }
        if (n[0] != NODE_PCI_RANGE || len < 24 || le16(n + 16) != iommu) {
            continue;
        }
        if (v->nranges == VIOT_MAX_RANGES) {
            gprintf("GUEST fail %s viot too-many-ranges\n", wl);
            return false;
        }
        add_range(v, n);
    }
    gprintf("GUEST iommu viot iommu=");
    print_sbdf(v->iommu_sbdf);
    gprintf(" ranges=%u\n", v->nranges);
    return true;
}

bool
viot_endpoint(const struct viot *v, u32 sbdf, u32 *ep)
{
    u32 seg = sbdf >> 16, bdf = sbdf & 0xffff;

    for (u32 i = 0; i < v->nranges; i++) {
        const struct viot_range *r = &v->r[i];
        if (seg < r->seg_start || seg > r->seg_end || bdf < r->bdf_start ||
            bdf > r->bdf_end) {
            continue;
        }
        *ep = r->ep_start + ((seg - r->seg_start) << 16) + (bdf - r->bdf_start);
        return true;
    }
    return false;
}
