/* A virtio-iommu (virtio 1.2 section 5.13, PCI 1af4:1057) described by an
 * ACPI VIOT, driven by polling like the other virtio drivers. */
#ifndef IOMMU_H
#define IOMMU_H

#include "virtio.h"

/* viot.c: the VIOT's first virtio-pci IOMMU node and the PCI range
 * nodes whose output node it is. */
#define VIOT_MAX_RANGES 16
struct viot_range {
    u32 ep_start;
    u16 seg_start, seg_end, bdf_start, bdf_end;
};
struct viot {
    u32 iommu_sbdf; /* segment << 16 | bdf */
    u32 nranges;
    struct viot_range r[VIOT_MAX_RANGES];
};
/* Reads the VIOT into *v and prints "GUEST iommu viot ..." lines.  Prints
 * "GUEST fail <wl> ..." and returns false without one, with a malformed
 * one, or without a virtio-pci IOMMU node. */
bool viot_read(struct viot *v, const char *wl);
/* The endpoint id VIOT gives the function `sbdf` (Linux's viot.c:
 * ep_start + (segment - seg_start) << 16 + bdf - bdf_start); false if no
 * range covers it: the function is not behind the IOMMU. */
bool viot_endpoint(const struct viot *v, u32 sbdf, u32 *ep);

/* iommu.c: the driver.  One IOMMU per guest (its queues are static). */
#define IOMMU_MAX_RESV 8
struct iommu_resv {
    u64 start, end; /* inclusive */
    u32 subtype;    /* 0 reserved, 1 MSI */
};
struct iommu_fault {
    u32 reason; /* 0 unknown, 1 domain, 2 mapping */
    u32 flags;  /* READ 1, WRITE 2, EXEC 4, ADDRESS 0x100 */
    u32 endpoint;
    u64 address;
};
struct iommu {
    struct virtio_dev d;
    u32 timeout_ms;       /* per request */
    u64 page_mask;        /* config page_size_mask */
    u64 in_start, in_end; /* config input_range (all of it without) */
    u32 dom_start, dom_end;
    u32 probe_size; /* 0 without PROBE */
    u8 boot_bypass; /* config bypass before the driver cleared it */
    u32 nresv;      /* from the last iommu_probe */
    struct iommu_resv resv[IOMMU_MAX_RESV];
};

/* Probes the virtio-iommu at `sbdf`, negotiates VERSION_1 and, when
 * offered, ACCESS_PLATFORM, INPUT_RANGE, DOMAIN_RANGE, MAP_UNMAP, PROBE,
 * BYPASS_CONFIG (then writes bypass = 0: an endpoint in no domain has no
 * DMA at all), reads its config, sets up the request queue 0 and the
 * event queue 1 (a few buffers posted), DRIVER_OK; prints "GUEST iommu
 * <bdf> features=... page-size-mask=... input-range=... domain-range=...".
 * Every request below prints "GUEST fail iommu <what> ..." and returns
 * false on a timeout or a status other than OK. */
bool iommu_init(struct iommu *m, u32 sbdf, u32 timeout_ms);
bool iommu_attach(struct iommu *m, u32 domain, u32 ep);
bool iommu_detach(struct iommu *m, u32 domain, u32 ep);
/* [iova, iova + size) to [phys, ...); flags DMA_READ | DMA_WRITE (the
 * spec's VIRTIO_IOMMU_MAP_F_READ/_WRITE). */
bool iommu_map(struct iommu *m, u32 domain, u64 iova, u64 phys, u64 size,
               u32 flags);
bool iommu_unmap(struct iommu *m, u32 domain, u64 iova, u64 size);
/* PROBE of `ep`: m->resv gets its reserved regions (none without PROBE),
 * each printed as "GUEST iommu endpoint=0x<ep> resv=0x<start>-0x<end>
 * subtype=<N>". */
bool iommu_probe(struct iommu *m, u32 ep);
/* Pops one fault from the event queue (and posts its buffer again). */
bool iommu_fault_poll(struct iommu *m, struct iommu_fault *f);
/* Resets the IOMMU (its domains go) with bypass as it was at boot. */
void iommu_stop(struct iommu *m);

/* iommu-blk.c: a virtio-blk behind the IOMMU, for iommu-blk and
 * hotplug iommu=1. */
#define IOMMU_MAX_MAPS BLK_DMA_REGIONS
struct iommu_map_ent {
    u64 start, end; /* physical, inclusive, page-granular */
    u32 flags;
    u32 regions; /* bit i: blk_dma_regions()[i] lies in it */
    bool mapped;
};
struct iommu_blk {
    struct iommu m;
    struct viot v;
    u32 domain, ep, sbdf;
    u64 offset; /* IOVA = physical + offset */
    u32 nmaps;
    struct iommu_map_ent maps[IOMMU_MAX_MAPS];
    bool attached;
};
/* Reads the VIOT and starts the IOMMU it names. */
bool iommu_blk_open(struct iommu_blk *b, u32 timeout_ms);
/* Attaches `sbdf` (a blk) to a domain, probes it and maps blk's buffers
 * for `sectors`-sector requests at IOVAs that are not their physical
 * addresses; `wrong_page` maps the read buffer's IOVAs onto another page.
 * Prints "GUEST iommu <bdf> endpoint=0x<ep> domain=<D> dma-offset=0x<>"
 * or a fail line ("not-behind-iommu" when VIOT does not cover it). */
bool iommu_blk_attach(struct iommu_blk *b, u32 sbdf, u32 sectors,
                      bool wrong_page);
/* Unmaps what is still mapped and detaches the endpoint. */
bool iommu_blk_detach(struct iommu_blk *b);
/* The map holding blk's read buffer alone, NULL (after a fail line) when
 * it shares a page with another buffer. */
struct iommu_map_ent *iommu_blk_rbuf_map(struct iommu_blk *b);

#endif
