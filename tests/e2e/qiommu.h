/*
 * The qtest side's virtio-iommu driver (the test playing the guest):
 * the ACPI VIOT read from guest RAM as Linux's viot.c reads it, and the
 * IOMMU in slot GW_QIOMMU_SLOT of segment 0 driven over its request
 * queue — ATTACH, MAP, UNMAP — one request at a time, polled.  Used by
 * test-iommu.c and test-migration-iommu.c.  Every access asserts
 * (through qvirtio); a request's status is for the caller to judge.
 * Not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include "qtest-client.h"
#include "qvirtio.h"

#define GW_QIOMMU_SLOT 31
/* The IOVAs the tests map guest memory at: guest-physical + 4 GiB, an
 * address no RAM of theirs has, so a device that skipped translation
 * cannot reach the buffer by luck. */
#define GW_QIOMMU_OFF  0x100000000ull
#define GW_QIOMMU_PAGE 4096ull

/* The VIOT's virtio-pci IOMMU node and PCI range nodes. */
typedef struct {
    uint16_t iommu_bdf;
    unsigned n_ranges;
    struct {
        uint32_t endpoint;
        uint16_t seg, first, last;
    } r[8];
} GwQViot;

/* Finds the VIOT through the RSDT (RSDP at 0xE0000); false if none. */
bool gw_qiommu_find_viot(GwQt *qt, GwQViot *v);
/* The endpoint id VIOT gives (segment, bdf), as Linux's viot.c derives
 * it; UINT32_MAX if no range covers it. */
uint32_t gw_qiommu_viot_endpoint(const GwQViot *v, uint16_t seg, uint16_t bdf);

typedef struct {
    GwQt *qt;
    GwQVirtio *vd;
    uint64_t buf; /* request buffer, guest-physical */
} GwQIommu;

/* Negotiates MAP_UNMAP and INPUT_RANGE, sets up the request and event
 * queues, DRIVER_OK. */
void gw_qiommu_init(GwQIommu *io, GwQt *qt);
/* Drives the same IOMMU through `qt` from now on (a migration's
 * destination). */
void gw_qiommu_set_qt(GwQIommu *io, GwQt *qt);
void gw_qiommu_free(GwQIommu *io);

/* One request of `in_len` driver bytes and `out_len` device bytes; its
 * status (the last bytes the device wrote), or -1 if none came back. */
int gw_qiommu_request(GwQIommu *io, const void *req, uint32_t in_len,
                      uint32_t out_len);
/* Each a VIRTIO_IOMMU_S_* status, or -1.  map is read-write. */
int gw_qiommu_attach(GwQIommu *io, uint32_t domain, uint32_t ep);
int gw_qiommu_map(GwQIommu *io, uint32_t domain, uint64_t iova, uint64_t gpa,
                  uint64_t len);
int gw_qiommu_unmap(GwQIommu *io, uint32_t domain, uint64_t iova, uint64_t len);

/*
 * A virtio-blk behind the IOMMU, as its driver sets it up: slot `slot`
 * of segment `seg` negotiates VERSION_1 and ACCESS_PLATFORM (checked),
 * queue 0's rings are given to the device at IOVA = GPA +
 * GW_QIOMMU_OFF, endpoint `ep` is attached to `domain`, which gets the
 * ring page and the first `data_pages` pages of the data area
 * (gw_qvirtio_data_area) at IOVA = GPA + GW_QIOMMU_OFF, one mapping
 * each; then DRIVER_OK.  Caller owns the driver.
 */
GwQVirtio *gw_qiommu_disk_start(GwQIommu *io, unsigned seg, unsigned slot,
                                uint32_t ep, uint32_t domain,
                                unsigned data_pages);
