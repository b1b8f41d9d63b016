/*
 * msix: a function's MSI-X capability, vector table and pending bits.
 * Each vector with an address keeps a KVM MSI route (a GSI) that follows
 * the guest's table writes; a vector is *active* while MSI-X is enabled,
 * the function is not masked and the entry is not masked.  The owner
 * binds irqfds to active vectors' GSIs and is told when a vector's
 * activity or GSI changes.
 *
 * Threads: with the VM's device lock held.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <godwit/irq.h>
#include <godwit/pci.h>
#include <godwit/vmstate.h>

#define GW_MSIX_TABLE_OFFSET 0x000
#define GW_MSIX_PBA_OFFSET   0x800
#define GW_MSIX_BAR_SIZE     0x1000
#define GW_MSIX_MAX_VECTORS  128
#define GW_MSIX_NO_VECTOR    0xffff

typedef void (*GwMsixChangedFn)(void *opaque, unsigned vector);

typedef struct {
    uint32_t addr_lo, addr_hi, data, ctrl;
} GwMsixEntry;

/*
 * Public only so that an owner can embed it (and nest gw_msix_vmsd in
 * its own description); the fields are msix.c's.
 */
typedef struct GwMsix {
    GwPciDevice *dev;
    unsigned cap, n;
    const GwIrqChip *irq;
    GwMsixChangedFn changed;
    void *opaque;
    GwMsixEntry table[GW_MSIX_MAX_VECTORS];
    bool pending[GW_MSIX_MAX_VECTORS]; /* the PBA */
    int gsi[GW_MSIX_MAX_VECTORS];      /* -1: no route */
} GwMsix;

/*
 * Adds the capability to `dev` and declares BAR `bar` for the table;
 * `m` is the caller's memory, which must stay put (the BAR's handler
 * points at it) until gw_msix_cleanup.  Never fails.
 */
void gw_msix_init(GwMsix *m, GwPciDevice *dev, unsigned n_vectors, unsigned bar,
                  const GwIrqChip *irq, GwMsixChangedFn changed, void *opaque);
/* Releases the routes gw_msix_init's vectors took; `m` stays the
 * caller's. */
void gw_msix_cleanup(GwMsix *m);

/* gw_msix_init on a new allocation; gw_msix_free cleans it up and frees
 * it (NULL: nothing). */
GwMsix *gw_msix_new(GwPciDevice *dev, unsigned n_vectors, unsigned bar,
                    const GwIrqChip *irq, GwMsixChangedFn changed,
                    void *opaque);
void gw_msix_free(GwMsix *m);

/*
 * The migratable state (object: GwMsix): the vector table and the
 * pending bits; not the GSIs, which are the destination's.  The enable
 * and function-mask bits are in config space (gw_pci_device_vmsd).
 * post_load does for each vector what a guest's write of its entry
 * does: the MSI route follows the entry, a pending vector that is
 * active is delivered, and the owner's `changed` runs (to re-bind
 * irqfds).  No pre_save: everything gw_msix_notify left pending is in
 * the pending bits already.  Interrupts an owner's irqfd would deliver
 * while a vector is masked stay in that eventfd instead, so the owner
 * drains them into the PBA with gw_msix_notify before saving (as
 * virtio-pci does).  Saved and loaded on the main thread with the
 * device lock held.
 */
extern const GwVmsd gw_msix_vmsd;

/* To be called from the device's config_written. */
void gw_msix_config_written(GwMsix *m, unsigned offset, unsigned size);

/* The GSI of an active vector, or -1. */
int gw_msix_vector_gsi(const GwMsix *m, unsigned vector);

/* Raises `vector` now, or marks it pending while masked. */
void gw_msix_notify(GwMsix *m, unsigned vector);

/* Back to power-on: disabled, all entries masked, routes released. */
void gw_msix_reset(GwMsix *m);

unsigned gw_msix_vectors(const GwMsix *m);
