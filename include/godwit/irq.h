/*
 * irq: what devices need from the interrupt controller — MSI routes,
 * irqfds, ioeventfds and directly signalled MSIs — as an ops table, so
 * KVM provides it in the VMM and a recorder provides it in unit tests.
 *
 * Threads: called with the VM's device lock held (vCPU threads while
 * the guest programs MSI-X, the main thread while hotplugging).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

typedef struct {
    /* Adds an MSI route; returns its GSI, or -1 with *errp set. */
    int (*msi_route_add)(void *ctx, uint64_t addr, uint32_t data,
                         GError **errp);
    bool (*msi_route_set)(void *ctx, int gsi, uint64_t addr, uint32_t data,
                          GError **errp);
    void (*msi_route_del)(void *ctx, int gsi);
    /* Binds (or unbinds) an eventfd that raises `gsi` when written. */
    bool (*irqfd)(void *ctx, int fd, int gsi, bool assign, GError **errp);
    /* Makes guest writes to [addr, addr+len) signal `fd` in the kernel. */
    bool (*ioeventfd)(void *ctx, uint64_t addr, unsigned len, int fd,
                      bool assign, GError **errp);
    /* Raises one MSI now. */
    void (*signal_msi)(void *ctx, uint64_t addr, uint32_t data);
} GwIrqOps;

typedef struct {
    const GwIrqOps *ops;
    void *ctx;
} GwIrqChip;
