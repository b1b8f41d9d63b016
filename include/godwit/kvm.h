/*
 * kvm: the VM file descriptor and what hangs off it directly: memory
 * slots, the in-kernel irqchip and PIT, interrupt lines and the GSI
 * routing table (legacy pins now, MSI routes for devices later).
 *
 * Threads: created, configured and freed on the main thread.
 * gw_kvm_set_irq may be called from any thread (one ioctl, no state);
 * the irqchip ops with the machine's device lock held.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <godwit/irq.h>
#include <godwit/memory.h>

typedef struct GwKvm GwKvm;

/*
 * Opens /dev/kvm, checks the API version and the capabilities godwit
 * needs, creates the VM with an in-kernel irqchip and PIT and a routing
 * table with the legacy pins.  NULL with a message saying which
 * capability or device is missing.
 */
GwKvm *gw_kvm_new(GError **errp);
void gw_kvm_free(GwKvm *kvm);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwKvm, gw_kvm_free)

int gw_kvm_vm_fd(const GwKvm *kvm);
int gw_kvm_sys_fd(const GwKvm *kvm);

/* Registers every region of `mem` as a memory slot. */
bool gw_kvm_add_memory(GwKvm *kvm, const GwGuestMemory *mem, GError **errp);

/* Drives interrupt line `gsi` (an ISA IRQ number for legacy devices). */
void gw_kvm_set_irq(GwKvm *kvm, unsigned gsi, bool level);

/*
 * MSI routes, irqfds, ioeventfds and MSIs of this VM, for devices.  The
 * routing table is guarded by the machine's device lock: call with it
 * held.
 */
const GwIrqChip *gw_kvm_irqchip(GwKvm *kvm);

/* vCPU helpers for src/vcpu.c. */
int gw_kvm_vcpu_mmap_size(const GwKvm *kvm);
struct kvm_cpuid2 *gw_kvm_supported_cpuid(GwKvm *kvm, GError **errp);
