/* A virtio 1.x (modern) PCI transport with one split virtqueue, polled:
 * no interrupts, no MSI-X vectors (NO_VECTOR everywhere, INTx disabled). */
#ifndef VIRTIO_H
#define VIRTIO_H

#include "guest.h"

#define VIRTIO_F_VERSION_1       32
#define VIRTIO_F_ACCESS_PLATFORM 33

#define VQ_SIZE 16 /* enough for one request at a time */

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
    u16 last_used;
    volatile u16 *notify;
};

struct virtio_dev {
    u32 bdf;
    char name[8];        /* "bb:dd.f" for report lines */
    volatile u8 *common; /* struct virtio_pci_common_cfg */
    volatile u8 *isr;
    volatile u8 *devcfg;
    volatile u8 *notify_base;
    u32 notify_mult;
    bool bars_assigned; /* the guest placed the BARs, not firmware */
    u64 features;       /* negotiated */
    struct virtq *vq;
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
bool virtio_pci_probe(struct virtio_dev *d, u32 bdf, struct virtq *vq,
                      const char *wl);

/* Reset, ACKNOWLEDGE, DRIVER, features (VERSION_1 required,
 * ACCESS_PLATFORM accepted when offered), FEATURES_OK, queue 0, DRIVER_OK.
 * Prints a fail line and returns false on failure. */
bool virtio_start(struct virtio_dev *d, const char *wl);

/* Runs one request chain on queue 0 and polls the used ring for at most
 * timeout_ms.  False (no line printed) on timeout. */
bool virtio_xfer(struct virtio_dev *d, const struct vbuf *b, u32 n,
                 u32 timeout_ms);

/* 32-bit read of device-specific configuration. */
u32 virtio_cfg32(struct virtio_dev *d, u32 off);

/* Writes 0 to device_status and waits (bounded) for it to read 0; then
 * disables memory decode and bus mastering.  True if the reset took. */
bool virtio_stop(struct virtio_dev *d);

/* "bb:dd.f" (hex) to a bdf; false if malformed. */
bool parse_bdf(const char *s, u32 *bdf);

/* blk.c: the checks of the blk workload on one device, for hotplug too. */
struct blk_opts {
    u32 sectors;    /* per region: start, middle, end */
    u32 timeout_ms; /* per request */
    bool inject;    /* corrupt one sector between write and verify */
    bool has_expect;
    u64 expect_capacity;
};
/* Probes and starts `bdf` as virtio-blk into *d, prints the blk lines
 * (pass or fail) and leaves the device running for the caller to stop
 * (d->common is NULL if probing failed before the device was found). */
bool blk_check(struct virtio_dev *d, u32 bdf, const struct blk_opts *o);
/* sectors (8), timeout-ms (10000), inject-error, expect-capacity of `a`;
 * prints a fail line and returns false when out of range. */
bool blk_opts_parse(const struct args *a, struct blk_opts *o);

#endif
