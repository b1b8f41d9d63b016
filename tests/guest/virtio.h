/* A virtio 1.x (modern) PCI transport with split virtqueues, polled: no
 * interrupts, no MSI-X vectors (NO_VECTOR everywhere, INTx disabled). */
#ifndef VIRTIO_H
#define VIRTIO_H

#include "guest.h"

#define VIRTIO_F_VERSION_1       32
#define VIRTIO_F_ACCESS_PLATFORM 33

#define VIRTIO_S_NEEDS_RESET 0x40 /* device_status: the device gave up */

#define VQ_SIZE 16 /* blk: one request at a time; net: 16 RX buffers */

struct vring_desc {
    u64 addr;
    u32 len;
    u16 flags;
    u16 next;
};

struct vring_avail {
    u16 flags;
    u16 idx;
    u16 ring[VQ_SIZE];
    u16 used_event;
};

struct vring_used_elem {
    u32 id;
    u32 len;
};

struct vring_used {
    u16 flags;
    u16 idx;
    struct vring_used_elem ring[VQ_SIZE];
    u16 avail_event;
};

struct virtq {
    struct vring_desc desc[VQ_SIZE] __attribute__((aligned(16)));
    struct vring_avail avail __attribute__((aligned(2)));
    struct vring_used used __attribute__((aligned(4)));
    u16 size; /* as negotiated: <= VQ_SIZE */
    u16 index; /* the queue's number on its device */
    u16 last_used;
    volatile u16 *notify;
    u64 dma_offset; /* the device's: added to every address it is given */
};

struct virtio_dev {
    u32 bdf;
    char name[16];       /* "bb:dd.f" ("ssss:bb:dd.f") for reports */
    volatile u8 *common; /* struct virtio_pci_common_cfg */
    volatile u8 *isr;
    volatile u8 *devcfg;
    volatile u8 *notify_base;
    u32 notify_mult;
    bool bars_assigned; /* the guest placed the BARs, not firmware */
    u64 offered;        /* what the device offered */
    u64 features;       /* negotiated */
    /* DMA address = physical address + dma_offset: 0 unless the device is
     * behind an IOMMU (iommu.h), which the caller set up to translate
     * every such address back.  Set after virtio_pci_probe. */
    u64 dma_offset;
};

/* A guest buffer a device may access, for an IOMMU to map (iommu.h). */
#define DMA_READ  1 /* the device reads it */
#define DMA_WRITE 2 /* the device writes it */
struct dma_region {
    const void *addr;
    u32 len;
    u32 flags;        /* DMA_READ | DMA_WRITE */
    const char *what; /* for reports: "ring", "rbuf", ... */
};

/* One buffer of a request chain. */
struct vbuf {
    void *addr;
    u32 len;
    bool device_writes;
};

/* Every MMIO window the guest assigns lies in [0xC0000000 + slot * 16 MiB,
 * + 16 MiB): godwit's fixed per-slot windows, free on QEMU's pc too. */
#define BAR_WINDOW_BASE 0xC0000000u
#define BAR_WINDOW_SIZE (16u << 20)

/* Finds the virtio capabilities of `bdf`, assigns its memory BARs if the
 * firmware left them unassigned (or above 4 GiB), enables memory decode
 * and bus mastering.  On failure prints "GUEST fail <wl> <bdf> <reason>"
 * and returns false. */
bool virtio_pci_probe(struct virtio_dev *d, u32 bdf, const char *wl);

/* Reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK: VERSION_1 is
 * required; ACCESS_PLATFORM and the device features `want` returns for
 * the offered set (`want` may be NULL: none) are taken when offered
 * (d->offered, d->features); with a dma_offset ACCESS_PLATFORM is
 * required too (without it the device would take the IOVAs for physical
 * addresses).  Prints a fail line and returns false on failure. */
bool virtio_negotiate(struct virtio_dev *d, u64 (*want)(u64 offered),
                      const char *wl);

/* Sets up queue `index` on `q` (at most VQ_SIZE entries, at least 4),
 * its rings given at their DMA addresses.  Prints a fail line, sets FAILED and returns false on failure. */
bool virtio_queue_setup(struct virtio_dev *d, struct virtq *q, u16 index,
                        const char *wl);

/* DRIVER_OK; prints a fail line and returns false if the device failed. */
bool virtio_driver_ok(struct virtio_dev *d, const char *wl);

/* virtio_negotiate (no device features), queue 0 on `q`, DRIVER_OK. */
bool virtio_start(struct virtio_dev *d, struct virtq *q, const char *wl);

/* Makes a chain of b[0..n) on descriptors head..head+n-1 available, without
 * notifying, each buffer at its DMA address (q->dma_offset).  The caller
 * keeps chains from overlapping. */
void virtq_post(struct virtq *q, u16 head, const struct vbuf *b, u32 n);

/* Notifies the device of new available buffers on `q`. */
void virtq_kick(struct virtq *q);

/* Pops one used element if there is one (id: chain head, len: bytes
 * written by the device); reads the ISR so no INTx stays pending. */
bool virtq_poll(struct virtio_dev *d, struct virtq *q, u32 *id, u32 *len);

/* Waits at most timeout_ms for virtq_poll to pop an element. */
bool virtq_wait(struct virtio_dev *d, struct virtq *q, u32 *id, u32 *len,
                u32 timeout_ms);

/* Runs one request chain on `q` (descriptors from 0) and polls the used
 * ring for at most timeout_ms.  False (no line printed) on timeout. */
bool virtio_xfer(struct virtio_dev *d, struct virtq *q, const struct vbuf *b,
                 u32 n, u32 timeout_ms);

/* device_status as the device reads it now. */
u8 virtio_status(struct virtio_dev *d);

/* 32-bit read of device-specific configuration. */
u32 virtio_cfg32(struct virtio_dev *d, u32 off);
/* Copies n bytes of device-specific configuration from `off`, byte by
 * byte, retried until the config generation holds still. */
void virtio_cfg_bytes(struct virtio_dev *d, u32 off, u8 *buf, u32 n);

/* Writes 0 to device_status and waits (bounded) for it to read 0; then
 * disables memory decode and bus mastering.  True if the reset took. */
bool virtio_stop(struct virtio_dev *d);

/* "bb:dd.f" (hex) to a bdf; false if malformed. */
bool parse_bdf(const char *s, u32 *bdf);

/* True if `bdf` is 1af4:<modern> or 1af4:<transitional>. */
bool virtio_is(u32 bdf, u16 modern, u16 transitional);

/* The function named by the dev= argument of `a`, else the first such
 * virtio function on bus 0.  Prints "GUEST fail <wl> dev=<arg> malformed"
 * or "GUEST fail <wl> no-device" and returns false. */
bool virtio_pick(const struct args *a, u16 modern, u16 transitional,
                 u32 *bdf);

/* Prints "GUEST fail <wl> <bdf> not-virtio-<kind> id=<v>:<d>" and returns
 * false unless `bdf` is such a function. */
bool virtio_check_id(u32 bdf, u16 modern, u16 transitional, const char *wl,
                     const char *kind);

/* blk.c: the checks of the blk workload on one device, for hotplug too. */
struct blk_opts {
    u64 dma_offset; /* the device's (0: not behind an IOMMU) */
    u32 sectors;    /* per region: start, middle, end */
    u32 timeout_ms; /* per request */
    u32 rounds;     /* write-and-verify rounds, 0 = forever */
    bool inject;    /* corrupt one sector between write and verify */
    bool has_expect;
    u64 expect_capacity;
};
/* Probes and starts `bdf` as virtio-blk into *d, prints the blk lines
 * (pass or fail) and leaves the device running for the caller to stop
 * (d->common is NULL if probing failed before the device was found). */
bool blk_check(struct virtio_dev *d, u32 bdf, const struct blk_opts *o);
/* sectors (8), timeout-ms (10000), rounds (1), inject-error,
 * expect-capacity of `a`;
 * prints a fail line and returns false when out of range. */
bool blk_opts_parse(const struct args *a, struct blk_opts *o);
/* The memory blk's driver hands to the device with requests of up to
 * `sectors` sectors: its ring, header, data buffers, status byte; fills
 * r[0..BLK_DMA_REGIONS) and returns how many. */
#define BLK_DMA_REGIONS 5
#define BLK_REGION_RBUF 3 /* the read buffer's index in them */
u32 blk_dma_regions(u32 sectors, struct dma_region *r);
/* Posts a one-sector read of `sector` into the read buffer and notifies,
 * without waiting; virtq_poll on *q_out shows its completion, and the
 * status byte returned then holds its status. */
const volatile u8 *blk_post_read(struct virtio_dev *d, u64 sector,
                                 struct virtq **q_out);

#endif
