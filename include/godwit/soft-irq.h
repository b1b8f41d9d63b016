/*
 * soft-irq: the interrupt controller of a machine without KVM (the
 * qtest accelerator): MSI routes kept in a table, irqfds watched on the
 * main loop, ioeventfds matched by the machine's MMIO write path.  An
 * MSI is what it is on the bus, a DWORD write of `data` to `addr`: the
 * machine's deliver hook lands it in guest RAM when the address is RAM,
 * so a test that points an MSI-X vector at a RAM word can poll it.
 *
 * Threads: the GwIrqOps and gw_soft_irq_match_ioeventfd are called with
 * `lock` (the machine's device lock) held; irqfd watches run on the main
 * thread and take `lock` themselves.  Create and free on the main thread.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <godwit/irq.h>

/*
 * Delivers one MSI; called on the main thread, with or without `lock`
 * held, so it must not take it.
 */
typedef void (*GwMsiDeliverFn)(gpointer opaque, uint64_t addr, uint32_t data);

typedef struct GwSoftIrq GwSoftIrq;

GwSoftIrq *gw_soft_irq_new(GMutex *lock, GwMsiDeliverFn deliver,
                           gpointer opaque);
/* Removes every watch; fds stay their owners'. */
void gw_soft_irq_free(GwSoftIrq *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwSoftIrq, gw_soft_irq_free)

const GwIrqChip *gw_soft_irq_chip(GwSoftIrq *s);

/*
 * A guest write of `len` bytes at `addr`: if an ioeventfd covers it (KVM's
 * rules: same address, and same length unless registered with 0), signals
 * it and returns true — the write goes nowhere else.
 */
bool gw_soft_irq_match_ioeventfd(GwSoftIrq *s, uint64_t addr, unsigned len);

/* MSIs delivered so far (irqfd and direct), for tests and logs. */
uint64_t gw_soft_irq_msi_count(const GwSoftIrq *s);

/* Guest writes taken by an ioeventfd so far (never reached a device). */
uint64_t gw_soft_irq_ioeventfd_count(const GwSoftIrq *s);
