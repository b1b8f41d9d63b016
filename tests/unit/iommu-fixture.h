/*
 * The virtio-iommu unit tests' fixture: the IOMMU's virtio-pci function
 * on a PCI bus over 16 MiB of "guest RAM" in two regions ([0, 8 MiB)
 * and [8 MiB, 16 MiB), adjacent, so a range can straddle them), a
 * driver that programs it through MMIO as a guest's does, its request
 * queue on a GwTestVring, and two fake endpoints whose ops record every
 * call, keep the IOTLB they were told about, and fail when told to.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <linux/virtio_iommu.h>
#include <godwit/virtio-iommu.h>
#include "irq-recorder.h"
#include "vring-driver.h"

#define FX_RAM  (16ull << 20)
#define FX_LOW  (8ull << 20)
#define FX_SLOT 1
#define FX_EP_A 0x0008u /* 00:01.0 */
#define FX_EP_B 0x0010u /* 00:02.0 */
#define FX_RW   (GW_IOMMU_MAP_F_READ | GW_IOMMU_MAP_F_WRITE)
#define FX_FEATURES                                                            \
    0x57ull /* INPUT_RANGE DOMAIN_RANGE MAP_UNMAP PROBE BYPASS_CONFIG */

typedef struct {
    char op; /* 'm' map, 'u' unmap, 'b' batch_begin, 'e' batch_end */
    uint64_t iova, size, gpa;
    unsigned flags;
} FxCall;

typedef struct {
    GArray *calls;    /* FxCall, every call */
    GArray *view;     /* FxCall ('m'), what is mapped now, sorted by iova */
    unsigned fail_op; /* fail the fail_op-th map/unmap call from now; 0 never */
    bool fail_end;    /* batch_end fails */
    bool no_view;     /* only count (many mappings) */
    unsigned n_calls; /* map + unmap calls */
} FxEndpoint;

typedef struct {
    GwTestMem *tm;
    GwGuestMemory gm;
    GwIrqRecorder rec;
    GwIrqChip irq;
    GMutex lock;
    GwBus *mmio;
    GwPciBus *pci;
    GwVirtioIommu *iommu;
    uint64_t bar0;
    GwTestVring *rq, *eq;
    FxEndpoint ep[2];
    uint8_t *req, *resp; /* one request's buffers, 4 KiB each */
    uint64_t req_gpa, resp_gpa;
} Fx;

extern const GwIommuEndpointOps fx_endpoint_ops;

/* The fixture with the IOMMU plugged, endpoints A and B added. */
void fx_init(Fx *f);
void fx_fini(Fx *f);

void fx_mmio_write(Fx *f, uint64_t off, unsigned size, uint64_t v);
uint64_t fx_mmio_read(Fx *f, uint64_t off, unsigned size);

/* A driver's start with `features` (VERSION_1 added), queue size 64,
 * up to FEATURES_OK (fx_driver_ok finishes it); fx_driver_start both. */
void fx_driver_features(Fx *f, uint64_t features);
void fx_driver_ok(Fx *f);
void fx_driver_start(Fx *f, uint64_t features);
uint8_t fx_status(Fx *f);

/* Runs the main loop until nothing is ready (the device's handler). */
void fx_run(Fx *f);

/*
 * One request: `in_len` bytes of `req` device-readable, `w_len` bytes
 * device-writable (filled with 0xee first), notify, answered.  Returns
 * the used length; the writable bytes are at f->resp.
 */
uint32_t fx_send(Fx *f, const void *req, uint32_t in_len, uint32_t w_len);

/* Typed requests: the status of a well-formed one. */
uint8_t fx_attach(Fx *f, uint32_t domain, uint32_t ep, uint32_t flags);
uint8_t fx_detach(Fx *f, uint32_t domain, uint32_t ep);
uint8_t fx_map(Fx *f, uint32_t domain, uint64_t start, uint64_t end,
               uint64_t phys, uint32_t flags);
uint8_t fx_unmap(Fx *f, uint32_t domain, uint64_t start, uint64_t end);

/* Endpoint e's IOTLB: exactly these n entries (op 'm'). */
void fx_assert_view(const FxEndpoint *e, const FxCall *want, unsigned n);
/* ... is the identity map of the fixture's RAM / is empty. */
void fx_assert_identity(const FxEndpoint *e);
void fx_clear_calls(Fx *f);
/* x-godwit-query-iommu's answer as a plain JSON string (caller frees),
 * read with the device lock held. */
char *fx_query(Fx *f);
