/*
 * virtio-iommu: a paravirtual IOMMU (virtio 1.2 section 5.13, device id
 * 23, PCI 1af4:1057) in front of the devices started with iommu=on.  The
 * guest's ATTACH/DETACH/MAP/UNMAP requests (request queue 0; queue 1 is
 * the event queue) become calls into each endpoint's ops, which for a
 * vDPA device are VHOST_IOTLB_UPDATE/INVALIDATE on its backend.
 *
 * The model is in the VMM, not in a backend: the request queue's kick
 * eventfd is watched on the main loop, requests are walked in guest RAM
 * with every guest-controlled index, length and address checked, and
 * answered with the status the spec gives; a malformed request is
 * answered (or, when it cannot be, the device set NEEDS_RESET), never
 * trusted.  The VM always keeps running.
 *
 * Endpoints are identified as ACPI VIOT describes them to the guest:
 * endpoint id = (PCI segment << 16) | BDF.  An endpoint that is in no
 * domain bypasses the IOMMU (identity map of guest RAM) while boot
 * bypass applies — before the driver negotiates features, or while the
 * config's `bypass` is 1 with VIRTIO_IOMMU_F_BYPASS_CONFIG negotiated
 * (QEMU's boot-bypass=on default) — and has no mappings at all
 * otherwise.  The IOMMU keeps every endpoint's mappings consistent with
 * this: each change is pushed through the endpoint's ops at once.
 *
 * Threads: every function but _new with the VM's device lock held, on
 * the main thread or on a vCPU thread (the guest's MMIO: DRIVER_OK, a
 * `bypass` write, a vDPA device's reset and its replay all run where
 * the access arrived), so endpoint ops run there too; the request
 * handler runs on the main loop and takes that lock itself.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>
#include <godwit/irq.h>
#include <godwit/memory.h>
#include <godwit/virtio-pci.h>
#include <godwit/vmstate.h>

#define GW_VIRTIO_ID_IOMMU 23

/* Guest IOVAs the IOMMU accepts (its config input_range): [0, this].
 * Above it, up to 2^48, is godwit's own (shadow rings during a
 * migration), and PROBE reports it as reserved. */
#define GW_IOMMU_INPUT_END ((1ull << 48) - (1ull << 32) - 1)

/* A mapping's permissions, as the spec's VIRTIO_IOMMU_MAP_F_READ/_WRITE. */
#define GW_IOMMU_MAP_F_READ  1u
#define GW_IOMMU_MAP_F_WRITE 2u

typedef struct GwVirtioIommu GwVirtioIommu;

/*
 * What the IOMMU asks of one endpoint.  `gpa`..`gpa + size - 1` is
 * always inside one region of guest RAM (the IOMMU checks before it
 * calls); sizes are multiples of 4 KiB; `flags` is GW_IOMMU_MAP_F_*
 * (never 0).  map/unmap may be called many
 * times between batch_begin and batch_end (both optional).  A false
 * return (with *errp) makes the guest's request fail with
 * VIRTIO_IOMMU_S_DEVERR; the IOMMU's own view is then rolled back to
 * before the request.
 */
typedef struct {
    bool (*map)(void *opaque, uint64_t iova, uint64_t size, uint64_t gpa,
                unsigned flags, GError **errp);
    bool (*unmap)(void *opaque, uint64_t iova, uint64_t size, GError **errp);
    bool (*batch_begin)(void *opaque, GError **errp);
    bool (*batch_end)(void *opaque, GError **errp);
} GwIommuEndpointOps;

/* A virtio-iommu over `mem`; NULL with *errp if its virtio-pci function
 * cannot be created.  Its request handler (a main-loop watch on the
 * request queue's kick eventfd) takes `dev_lock`, the VM's device lock.
 * The caller plugs gw_virtio_iommu_pci() into a slot and frees it after
 * unplugging.  Created on the main thread, the device lock not held. */
GwVirtioIommu *gw_virtio_iommu_new(GwGuestMemory *mem, const GwIrqChip *irq,
                                   GMutex *dev_lock, GError **errp);
void gw_virtio_iommu_free(GwVirtioIommu *iommu);
GwVirtioPci *gw_virtio_iommu_pci(GwVirtioIommu *iommu);

/*
 * Puts endpoint `id` behind the IOMMU: from now on its address space is
 * the IOMMU's (identity while boot bypass applies, pushed through `ops`
 * before this returns).  False with *errp if `id` is taken or the first
 * mappings fail.  remove: the device is going away; it is detached from
 * its domain with no call into its ops (its backend is being closed),
 * and what it could write is marked dirty in guest RAM's bitmap (as
 * whatever writable mapping an endpoint loses).
 */
bool gw_virtio_iommu_add_endpoint(GwVirtioIommu *iommu, uint32_t id,
                                  const GwIommuEndpointOps *ops, void *opaque,
                                  GError **errp);
void gw_virtio_iommu_remove_endpoint(GwVirtioIommu *iommu, uint32_t id);

/* Pushes endpoint `id`'s current address space through its ops again
 * (its backend lost its mappings, e.g. a reset without IOTLB_PERSIST).
 * False with *errp if a call fails or there is no such endpoint. */
bool gw_virtio_iommu_replay(GwVirtioIommu *iommu, uint32_t id, GError **errp);

/*
 * Translates a guest DMA address of endpoint `id`: the guest-physical
 * address behind `iova` and how many bytes from there are contiguous in
 * the same mapping (capped at `len`); 0 if `iova` is not mapped (or not
 * writable, with `write`; not readable, without).  For the VMM's own
 * accesses on the device's behalf (shadow virtqueues).  The one call
 * that does not need the device lock: it takes the IOMMU's own space
 * lock for reading, so any thread may call it, but not one inside the
 * IOMMU's own writers (an endpoint op).
 */
uint64_t gw_virtio_iommu_translate(const GwVirtioIommu *iommu, uint32_t id,
                                   uint64_t iova, uint64_t len, bool write,
                                   uint64_t *gpa);

/* The virtio-iommu section's format (docs/migration.md): the version of
 * its `virtio-iommu` encoding, which covers the domain list too. */
#define GW_VIRTIO_IOMMU_STATE_VERSION 1

/*
 * The IOMMU's migratable state, as the machine's `virtio-iommu` section
 * (docs/migration.md): what the guest set up (config bypass, negotiated
 * features, the request queue's indices, every domain with its
 * mappings and endpoints), then its virtio-pci function's state
 * (gw_virtio_pci_vmsd), which no other section carries.  save appends
 * it to `out`; false with *errp on error (discard `out`).
 *
 * load decodes the IOMMU's part into scratch structures and checks all
 * of it first — as a MAP or ATTACH would have been checked, against
 * this machine's RAM and endpoints (every endpoint named must be one
 * of this IOMMU's, at most once) — then loads the function, checks
 * that the two agree and that nothing follows in `in`, installs the
 * state and pushes every endpoint's new address space through its ops
 * (its IOTLB, before the vDPA functions' sections load).  A refused
 * IOMMU part changes nothing; so does a truncated or malformed function
 * part.  If an endpoint's op fails, the endpoints already pushed are
 * pushed back and the IOMMU's state is the one from before; past the
 * function's own post_load the function keeps the loaded state, and
 * the destination must not run (as for any failed post_load).
 *
 * Both with the VM's device lock held, on the main thread, the VM
 * stopped.  load takes space_lock for writing itself (never across an
 * endpoint op).
 */
bool gw_virtio_iommu_save(GwVirtioIommu *iommu, GwMigBuf *out, GError **errp);
bool gw_virtio_iommu_load(GwVirtioIommu *iommu, GwMigCursor *in, GError **errp);

/* x-godwit-query-iommu's answer: bypass, the endpoints (id, domain or
 * null, bypassing) and the domains with their mappings (virt-start,
 * virt-end, phys-start, flags).  Caller owns. */
json_object *gw_virtio_iommu_query(const GwVirtioIommu *iommu);
