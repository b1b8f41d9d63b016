/*
 * kvm: the VM file descriptor and what hangs off it directly: memory
 * slots, the in-kernel irqchip and PIT, interrupt lines and the GSI
 * routing table (legacy pins now, MSI routes for devices later).
 *
 * Threads: created, configured and freed on the main thread.
 * gw_kvm_set_irq may be called from any thread (one ioctl, no state);
 * the irqchip ops with the machine's device lock held.  The dirty-log
 * functions run on the one thread that drives a migration (main loop or
 * migration thread), never concurrently with gw_kvm_add_memory.
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

/* The VM's and /dev/kvm's fds, owned by `kvm`. */
int gw_kvm_vm_fd(const GwKvm *kvm);
int gw_kvm_sys_fd(const GwKvm *kvm);

/*
 * Registers every region of `mem` as a memory slot (dirty-logged if
 * logging is on).  False with the region's address in the message.
 */
bool gw_kvm_add_memory(GwKvm *kvm, const GwGuestMemory *mem, GError **errp);

#define GW_PAGE_SIZE 4096u

/*
 * Dirty logging of guest RAM, for migration.  It sees only what the
 * guest's vCPUs (and KVM on their behalf) write: pages that godwit
 * itself writes through the host mapping (the vDPA simulator's DMA,
 * gw_mem_write) are not in it and must be tracked by their writer.
 *
 * Start re-registers every slot with KVM_MEM_LOG_DIRTY_PAGES, using
 * KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 with KVM_DIRTY_LOG_INITIALLY_SET
 * when KVM offers both, else plain KVM_GET_DIRTY_LOG.  Either way the
 * first sync after start reports every page (the first pass sends all
 * RAM).  False if already on or a slot cannot be switched (logging is
 * then off again).
 */
bool gw_kvm_dirty_log_start(GwKvm *kvm, GError **errp);

/* Whether start chose manual protection (for tests and statistics). */
bool gw_kvm_dirty_log_manual(const GwKvm *kvm);

/*
 * Receives one slot's dirty pages: bit n of `bits` (KVM's layout: bit
 * n % 64 of word n / 64) is the page at gpa_base + n * GW_PAGE_SIZE.
 * `bits` is valid only during the call.
 */
typedef void (*GwDirtyFn)(void *opaque, uint64_t gpa_base,
                          const unsigned long *bits, uint64_t npages);

/*
 * Fetches each slot's pages dirtied since the previous sync (or since
 * start), clears them in KVM (KVM_CLEAR_DIRTY_LOG in manual mode) and
 * only then hands them to `cb`, once per slot, so a page written while
 * the caller copies it is reported again next time.  False (BUSY) when
 * logging is off, or naming the ioctl that failed; slots already handed
 * to `cb` stay cleared.
 */
bool gw_kvm_dirty_log_sync(GwKvm *kvm, GwDirtyFn cb, void *opaque,
                           GError **errp);

/* Re-registers every slot without dirty logging.  True if it was off. */
bool gw_kvm_dirty_log_stop(GwKvm *kvm, GError **errp);

/* Drives interrupt line `gsi` (an ISA IRQ number for legacy devices). */
void gw_kvm_set_irq(GwKvm *kvm, unsigned gsi, bool level);

/*
 * MSI routes, irqfds, ioeventfds and MSIs of this VM, for devices.  The
 * routing table is guarded by the machine's device lock: call with it
 * held.
 */
const GwIrqChip *gw_kvm_irqchip(GwKvm *kvm);

/* vCPU helpers for src/vcpu.c: the kvm_run mapping's size, and
 * KVM_GET_SUPPORTED_CPUID (g_free it; NULL with *errp set). */
int gw_kvm_vcpu_mmap_size(const GwKvm *kvm);
struct kvm_cpuid2 *gw_kvm_supported_cpuid(GwKvm *kvm, GError **errp);
