/*
 * vcpu: one thread per vCPU running KVM_RUN, dispatching port and MMIO
 * exits to the buses under the VM's device lock, and pausing on request.
 *
 * Threads: gw_vcpus_* are called on the main thread.  Each vCPU thread
 * runs its own loop; it takes `dev_lock` only around one exit's device
 * handling, never across KVM_RUN.  Pause protocol: the main thread sets
 * `pause_req` under `lock`, sets every kvm_run.immediate_exit and sends
 * SIGUSR1 to every vCPU thread; each thread, once out of KVM_RUN, parks
 * on `cond` and counts itself in `parked`; the main thread waits until
 * parked == n.  A vCPU clears immediate_exit before it checks pause_req,
 * so a request can never be lost between the check and KVM_RUN.  A vCPU
 * whose last exit was IO or MMIO does not park at once: it first
 * re-enters KVM_RUN with immediate_exit set, which makes KVM finish that
 * instruction (advance RIP, store an IN's value) without running the
 * guest, so the state read while paused never holds half an instruction.
 */
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <json-c/json.h>
#include <godwit/boot.h>
#include <godwit/bus.h>
#include <godwit/kvm.h>
#include <godwit/kvm-state.h>

typedef struct {
    /* A vCPU stopped for good: triple fault, failed entry, unknown exit.
     * Called on the vCPU thread after the registers were logged. */
    void (*fatal)(gpointer opaque, unsigned cpu, const char *why);
} GwVcpuHooks;

typedef struct GwVcpus GwVcpus;

/*
 * Creates `n` vCPUs (fds, kvm_run mappings, CPUID with their APIC ids).
 * Nothing runs until gw_vcpus_start.  The buses and the lock are the
 * machine's and must outlive the vCPUs.
 */
GwVcpus *gw_vcpus_new(GwKvm *kvm, unsigned n, GwBus *pio, GwBus *mmio,
                      GMutex *dev_lock, const GwVcpuHooks *hooks,
                      gpointer opaque, GError **errp);

/* Stops and joins the threads, closes the fds. */
void gw_vcpus_free(GwVcpus *v);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwVcpus, gw_vcpus_free)

/*
 * Puts vCPU 0 at the Multiboot entry (32-bit protected mode, flat
 * segments, EAX magic, EBX info) and the others in wait-for-SIPI.
 * Only while paused or before start.
 */
bool gw_vcpus_load_boot(GwVcpus *v, GwGuestMemory *mem, const GwBootImage *img,
                        GError **errp);

/* Starts the threads, paused when `paused`. */
bool gw_vcpus_start(GwVcpus *v, bool paused, GError **errp);

/* Returns once no vCPU is inside KVM_RUN and none holds an unfinished
 * IO/MMIO instruction. */
void gw_vcpus_pause(GwVcpus *v);
void gw_vcpus_resume(GwVcpus *v);

/*
 * auto-converge's throttle: each vCPU thread, after running 10 ms,
 * sleeps pct / (1 - pct) of that (QEMU's cpu_throttle_set), 0 … 99; 0
 * stops it.  A timer on the default main context kicks the vCPUs out of
 * KVM_RUN every 10 ms while it is on.  Main thread.
 */
void gw_vcpus_set_throttle(GwVcpus *v, unsigned pct);

/* How many vCPUs `v` has (fixed at creation). */
unsigned gw_vcpus_count(GwVcpus *v);

/*
 * A copy of the CPUID table vCPU 0 was given (the others differ only in
 * their APIC ids), for gw_kvm_cpuid_compatible on the destination.  The
 * caller g_free()s it.
 */
struct kvm_cpuid2 *gw_vcpus_cpuid(GwVcpus *v);

/*
 * Reads / writes the KVM state of vCPU `cpu` (see kvm-state.h for what
 * it holds and the ioctl orders).  Only while paused or before
 * gw_vcpus_start, on the main thread: else false with GW_ERROR_BUSY.
 * The first call probes what this host's KVM saves (XSAVE size, MSR
 * list).  Set revives a vCPU that had died.  Errors name the vCPU and
 * the ioctl or MSR; after a failed set the vCPU must be set again before
 * it runs.
 */
bool gw_vcpus_get_state(GwVcpus *v, unsigned cpu, GwVcpuState *st,
                        GError **errp);
bool gw_vcpus_set_state(GwVcpus *v, unsigned cpu, const GwVcpuState *st,
                        GError **errp);

/* query-cpus-fast entries: cpu-index, thread-id, qom-path, props. */
json_object *gw_vcpus_query(GwVcpus *v);
