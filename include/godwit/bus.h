/*
 * bus: maps guest port-I/O or MMIO address ranges to device handlers.
 * A device is a state struct plus a const GwDeviceOps table; the bus
 * calls the table with offsets relative to the range's base.
 *
 * Threads: not thread-safe by itself.  Callers hold the VM's device lock
 * (GwMachine.dev_lock) around every lookup, add and remove: vCPU threads
 * take it around one exit's handling, the main thread around hotplug.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

typedef struct {
    const char *name;
    /* Accesses are 1, 2, 4 or 8 bytes; values little-endian in uint64_t. */
    uint64_t (*read)(void *dev, uint64_t offset, unsigned size);
    void (*write)(void *dev, uint64_t offset, uint64_t value, unsigned size);
} GwDeviceOps;

typedef struct GwBus GwBus;

GwBus *gw_bus_new(const char *name);
void gw_bus_free(GwBus *bus);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwBus, gw_bus_free)

/* Maps [base, base + len) to `dev`; refuses overlaps with *errp set. */
bool gw_bus_add(GwBus *bus, uint64_t base, uint64_t len, const GwDeviceOps *ops,
                void *dev, GError **errp);

/* Unmaps the range starting at `base`; false if none starts there. */
bool gw_bus_remove(GwBus *bus, uint64_t base);

/*
 * Dispatches an access.  Returns false when no device covers the whole
 * access (then a read yields all ones, as on real hardware).
 */
bool gw_bus_read(GwBus *bus, uint64_t addr, unsigned size, uint64_t *value);

/* The first address at or above `addr` that a range covers (`addr`
 * itself if one does), or UINT64_MAX: lets a long access skip what no
 * device claims. */
uint64_t gw_bus_next_claimed(const GwBus *bus, uint64_t addr);
bool gw_bus_write(GwBus *bus, uint64_t addr, unsigned size, uint64_t value);

/* What one range has been asked to do since it was mapped. */
typedef struct {
    const char *name; /* the device's ops->name: static */
    uint64_t base, len;
    uint64_t reads, writes;
} GwBusRangeStats;

/*
 * The access counts of every mapped range in address order, and in
 * *unclaimed the accesses no device took: every exit the VMM handled in
 * a device model.  A range's counts start at 0 when it is mapped (a BAR
 * the guest moves starts again).  Caller frees the array.
 */
GArray *gw_bus_stats(const GwBus *bus, uint64_t *unclaimed);
