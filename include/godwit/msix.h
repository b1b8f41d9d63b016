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

#define GW_MSIX_TABLE_OFFSET 0x000
#define GW_MSIX_PBA_OFFSET   0x800
#define GW_MSIX_BAR_SIZE     0x1000
#define GW_MSIX_MAX_VECTORS  128
#define GW_MSIX_NO_VECTOR    0xffff

typedef void (*GwMsixChangedFn)(void *opaque, unsigned vector);

typedef struct GwMsix GwMsix;

/* Adds the capability to `dev` and declares BAR `bar` for the table. */
GwMsix *gw_msix_new(GwPciDevice *dev, unsigned n_vectors, unsigned bar,
                    const GwIrqChip *irq, GwMsixChangedFn changed,
                    void *opaque);
void gw_msix_free(GwMsix *m);

/* To be called from the device's config_written. */
void gw_msix_config_written(GwMsix *m, unsigned offset, unsigned size);

/* The GSI of an active vector, or -1. */
int gw_msix_vector_gsi(const GwMsix *m, unsigned vector);

/* Raises `vector` now, or marks it pending while masked. */
void gw_msix_notify(GwMsix *m, unsigned vector);

/* Back to power-on: disabled, all entries masked, routes released. */
void gw_msix_reset(GwMsix *m);

unsigned gw_msix_vectors(const GwMsix *m);
