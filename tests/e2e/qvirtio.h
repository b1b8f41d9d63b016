/*
 * A virtio-pci (modern) driver for tests, over qtest: what a guest's
 * driver does, done by the test playing the CPU.  It finds the virtio
 * capabilities by walking the function's capability list, negotiates
 * VERSION_1 (and ACCESS_PLATFORM when offered), runs split virtqueue 0
 * in guest RAM and completes requests by polling the used ring, so it
 * needs no interrupts.  One request at a time, or a batch of them
 * (gw_qvirtio_blk_submit).
 *
 * Every access that goes wrong asserts (through the qtest client);
 * protocol-level failures a test wants to check return false with
 * *errp.  Not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include "qtest-client.h"

typedef struct GwQVirtio GwQVirtio;

/*
 * Initialises the virtio function in slot `slot` of bus 0: BAR 0 placed
 * at godwit's slot window if the firmware left it at 0, memory decoding
 * and bus mastering on, reset, ACKNOWLEDGE|DRIVER, features, FEATURES_OK
 * (checked), queue 0 set up in RAM at a per-slot area, DRIVER_OK.
 */
GwQVirtio *gw_qvirtio_init(GwQt *qt, unsigned slot, GError **errp);

/* The same for slot `slot` of bus 0 of PCI segment `segment` (< 16):
 * config space through that segment's ECAM window. */
GwQVirtio *gw_qvirtio_init_on_segment(GwQt *qt, unsigned segment, unsigned slot,
                                      GError **errp);

/*
 * The same, with MSI-X on: table entry 0 points at the RAM word `msi_at`
 * with data `msi_data`, and queue 0 uses vector 0, so every completion
 * the device signals lands there as the DWORD write an MSI is.
 */
GwQVirtio *gw_qvirtio_init_msix(GwQt *qt, unsigned slot, uint64_t msi_at,
                                uint32_t msi_data, GError **errp);
void gw_qvirtio_free(GwQVirtio *vd);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwQVirtio, gw_qvirtio_free)

/* Device-specific configuration space. */
void gw_qvirtio_read_config(GwQVirtio *vd, unsigned off, void *buf, size_t len);

/* Writes 0 to device_status and checks it reads back 0. */
void gw_qvirtio_reset(GwQVirtio *vd);

/* virtio-blk: capacity in 512-byte sectors. */
uint64_t gw_qvirtio_blk_capacity(GwQVirtio *vd);

/*
 * virtio-blk: writes distinct patterns to 8 sectors at the start, middle
 * and end of the disk, reads each back and compares, then reads past the
 * end, which must fail with VIRTIO_BLK_S_IOERR.  false with *errp saying
 * what differed.
 */
bool gw_qvirtio_blk_workload(GwQVirtio *vd, GError **errp);

/* The workload's data for `len` bytes from `sector` (8 sectors at 0,
 * capacity / 2 and capacity - 8), for checking a backing file. */
void gw_qvirtio_blk_pattern(uint8_t *buf, size_t len, uint64_t sector);

/* device_status as the driver reads it. */
uint8_t gw_qvirtio_status(GwQVirtio *vd);

/*
 * The same as gw_qvirtio_init, with queue 0 of `qsize` entries (a power
 * of two up to 256; the device's maximum when that is smaller).
 */
GwQVirtio *gw_qvirtio_init_qsize(GwQt *qt, unsigned slot, uint16_t qsize,
                                 GError **errp);
/* The size of queue 0 as set up. */
uint16_t gw_qvirtio_queue_size(GwQVirtio *vd);

/* One virtio-blk request of a batch; the data is the caller's. */
typedef struct {
    uint32_t type; /* VIRTIO_BLK_T_IN or VIRTIO_BLK_T_OUT */
    uint64_t sector;
    uint64_t data; /* guest-physical address of `len` bytes */
    uint32_t len;
    uint8_t status; /* out: the status byte the device wrote */
} GwQVirtioBlkReq;

/*
 * virtio-blk: puts `n` requests on queue 0 at once (3 descriptors each,
 * 3n ≤ the queue size), publishes them with one avail-index write and
 * one notify, then polls the used index, without sleeping (yielding
 * the CPU between reads when RAM is mapped), until all n are used (up
 * to 10 s), and fills in each status (0xff if the device
 * never wrote it).  Write the data before, read it after.  false with
 * *errp on timeout; status values are for the caller to judge.
 */
bool gw_qvirtio_blk_submit(GwQVirtio *vd, GwQVirtioBlkReq *reqs, unsigned n,
                           GError **errp);

/*
 * Guest RAM from guest-physical 0, mapped into the test (`size` bytes at
 * `host`, e.g. the VMM's shared memfd): gw_qvirtio_blk_submit then reads
 * and writes rings, headers and status there as a vCPU would, without
 * a qtest round trip, and only its notify goes over qtest.  Indexes are
 * stored with release and loaded with acquire ordering.  NULL: over
 * qtest again.  The mapping stays the caller's.
 */
void gw_qvirtio_set_ram(GwQVirtio *vd, void *host, uint64_t size);

/*
 * Several queues.  gw_qvirtio_start() probes and negotiates like
 * gw_qvirtio_init() but takes what the driver wants (it accepts
 * `want & offered`, which must hold VERSION_1) and stops at FEATURES_OK;
 * the test then sets up queues 0..GW_QVIRTIO_MAX_QUEUES-1 it needs and
 * sets DRIVER_OK.  BARs the capabilities use that nobody placed go to
 * the slot window (BAR 0 for godwit, BAR 4 on QEMU).  Queue q's rings
 * are in the slot's RAM area (RING_AREA(slot) + q * 4 KiB, at most 16
 * entries each, no interrupts); the rest of the area is the test's, for
 * buffers (gw_qvirtio_data_area()).  A driver started this way has no
 * queue for gw_qvirtio_blk_workload().
 */
#define GW_QVIRTIO_MAX_QUEUES 8

typedef struct {
    uint64_t addr; /* guest-physical */
    uint32_t len;
    bool write; /* device-writable */
} GwQVirtioBuf;

GwQVirtio *gw_qvirtio_start(GwQt *qt, unsigned slot, uint64_t want,
                            GError **errp);
/* The same for slot `slot` of PCI segment `segment`. */
GwQVirtio *gw_qvirtio_start_on_segment(GwQt *qt, unsigned segment,
                                       unsigned slot, uint64_t want,
                                       GError **errp);
/* Behind an IOMMU: the ring addresses the device is told (at the next
 * gw_qvirtio_setup_vq) are their guest-physical ones + `off`, the IOVAs
 * the test maps them at.  Buffers' addresses are the caller's anyway. */
void gw_qvirtio_set_dma_offset(GwQVirtio *vd, uint64_t off);
/* start, queues 0..nqueues-1, DRIVER_OK. */
GwQVirtio *gw_qvirtio_init_queues(GwQt *qt, unsigned slot, uint64_t want,
                                  unsigned nqueues, GError **errp);
/* What the device offered / what was negotiated. */
uint64_t gw_qvirtio_offered(GwQVirtio *vd);
uint64_t gw_qvirtio_features(GwQVirtio *vd);
/* num_queues of the common configuration. */
unsigned gw_qvirtio_num_queues(GwQVirtio *vd);
/* Sets queue `q` up and enables it; false with *errp if it has no queue. */
bool gw_qvirtio_setup_vq(GwQVirtio *vd, unsigned q, GError **errp);
void gw_qvirtio_driver_ok(GwQVirtio *vd);
/* Queue q's rings (guest-physical) as set up. */
void gw_qvirtio_vq_rings(GwQVirtio *vd, unsigned q, uint64_t *desc,
                         uint64_t *avail, uint64_t *used);
/* Points queue q at other rings (before DRIVER_OK), wherever they are:
 * what a hostile driver may do.  The test writes them itself. */
void gw_qvirtio_vq_move(GwQVirtio *vd, unsigned q, uint64_t desc,
                        uint64_t avail, uint64_t used);
/* The test's RAM for buffers: its address, and `*len` bytes of it. */
uint64_t gw_qvirtio_data_area(GwQVirtio *vd, size_t *len);
/* Entries of queue `q` (0 when it is not set up). */
unsigned gw_qvirtio_vq_size(GwQVirtio *vd, unsigned q);

/*
 * Makes a chain of `n` buffers available on queue `q` (no kick); returns
 * its head id.  Asserts that there are `n` free descriptors.
 */
uint16_t gw_qvirtio_vq_add(GwQVirtio *vd, unsigned q, const GwQVirtioBuf *b,
                           unsigned n);
void gw_qvirtio_vq_kick(GwQVirtio *vd, unsigned q);
/* Drives the device through `qt` from now on: the same function in the
 * same place on another VM, e.g. the destination of a migration. */
void gw_qvirtio_set_qt(GwQVirtio *vd, GwQt *qt);
/*
 * The next used element of queue `q`, if there is one: its head id and
 * length, and the chain's descriptors are free again.  Does not block.
 */
bool gw_qvirtio_vq_poll(GwQVirtio *vd, unsigned q, uint32_t *id, uint32_t *len);
/* The same, polling for at most `timeout_ms`; false when nothing came. */
bool gw_qvirtio_vq_wait(GwQVirtio *vd, unsigned q, int timeout_ms, uint32_t *id,
                        uint32_t *len);
