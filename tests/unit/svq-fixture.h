/*
 * svq-fixture: a vDPA device model over a simulator (vdpasim_blk or
 * vdpasim_net), plugged into a PCI bus, with guest RAM between guard
 * pages, driven as a guest driver drives it (config cycles and MMIO):
 * what tests/unit/test-vdpa-svq.c and tests/fuzz/fuzz-svq.c both need
 * before gw_vdpa_device_svq_start.
 *
 * Threads: every function runs on the caller's (main) thread and takes
 * f->lock, the device lock a vCPU exit would hold, around the device.
 * Failures are assertions (these are test helpers).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <godwit/bus.h>
#include <godwit/memory.h>
#include <godwit/pci.h>
#include <godwit/vdpa-device.h>
#include <godwit/vdpa-sim.h>
#include "irq-recorder.h"
#include "vring-driver.h"

#define SVQFX_RAM_SIZE   (16u << 20) /* unless SvqFx.ram_size says */
#define SVQFX_SLOT       1
#define SVQFX_IOMMU_SLOT 2 /* the virtio-iommu, with SvqFx.iommu */

typedef struct {
    GwVdpaSimRegistry *reg;
    GwTestMem *tm; /* guest RAM at GPA 0, between PROT_NONE pages */
    GwGuestMemory gm;
    GwIrqRecorder rec;
    GwIrqChip irq;
    GMutex lock;
    GwBus *mmio;
    GwPciBus *pci;
    GwVdpaDevice *dev;
    uint64_t bar0, bar1;
    GwTestVring *vr;
    /* Set before svqfx_device: */
    bool no_suspend;   /* the simulator refuses SUSPEND */
    uint32_t ram_size; /* 0: SVQFX_RAM_SIZE */
    bool iommu;        /* iommu=on, endpoint of a virtio-iommu (below) */
    /* Added to the rings' GPAs as the driver programs them: an iommu
     * test maps them at those IOVAs. */
    uint64_t ring_off;
    /* With iommu: the IOMMU, its request queue and one request's
     * buffers (readable, then 4 writable bytes). */
    GwVirtioIommu *viommu;
    uint64_t iommu_bar0;
    GwTestVring *iommu_rq, *iommu_eq;
    uint8_t *iommu_req;
    uint64_t iommu_req_gpa;
} SvqFx;

/*
 * The device model over a fresh simulator `mgmtdev` (a 1 MiB disk for
 * vdpasim_blk; rx and tx, no control queue, for vdpasim_net), in a
 * registry of its own, plugged at SVQFX_SLOT with
 * memory decoding on; the bump allocator of f->tm starts at 1 MiB (or
 * at half of a smaller RAM).  f zeroed but for the fields above.
 */
void svqfx_device(SvqFx *f, const char *mgmtdev);
/*
 * With f->iommu: the IOMMU's driver starts (MAP_UNMAP, BYPASS_CONFIG
 * with bypass 1) and attaches the device's endpoint to domain 1, which
 * has no mapping: the device reaches nothing until svqfx_iommu_map.
 * map/unmap: one request each; the status it was answered with.
 */
void svqfx_iommu_start(SvqFx *f);
uint8_t svqfx_iommu_map(SvqFx *f, uint64_t iova, uint64_t size, uint64_t gpa,
                        uint32_t flags);
uint8_t svqfx_iommu_unmap(SvqFx *f, uint64_t iova, uint64_t size);
/* Unplugs and frees all of it (and f->vr); no interrupt route left. */
void svqfx_free(SvqFx *f);

void svqfx_mmio_write(SvqFx *f, uint64_t addr, unsigned size, uint64_t v);
uint64_t svqfx_mmio_read(SvqFx *f, uint64_t addr, unsigned size);
void svqfx_cfg_write(SvqFx *f, unsigned off, unsigned size, uint32_t v);
uint32_t svqfx_cfg_read(SvqFx *f, unsigned off, unsigned size);

/*
 * A driver's start: reset, VERSION_1 only, MSI-X vector 0 for every
 * queue, queue i on vrs[i] (i < n), DRIVER_OK.  The reset drops shadow
 * rings that run.
 */
void svqfx_driver_start_queues(SvqFx *f, GwTestVring **vrs, unsigned n);
/* The same with one queue on f->vr (made with `qsize` if NULL). */
void svqfx_driver_start(SvqFx *f, uint16_t qsize);
/* The guest's kick of queue `q`. */
void svqfx_notify(SvqFx *f, uint16_t q);
/* gw_vdpa_device_svq_start (start) or _stop under the device lock. */
bool svqfx_svq(SvqFx *f, bool start, GError **errp);
/* Whether the guest reads NEEDS_RESET in device_status. */
bool svqfx_needs_reset(SvqFx *f);
/* Until it does (the main loop runs the device's config-call watch),
 * bounded: 5 s, then an assertion fails. */
void svqfx_wait_needs_reset(SvqFx *f);
