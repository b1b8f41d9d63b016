/*
 * kvm-state: everything KVM holds for a VM that a live migration must
 * move, as plain fixed-size C structs (no pointers) that a table-driven
 * serialiser can copy as raw bytes, plus the CPUID compatibility check.
 *
 * Per vCPU (GwVcpuState, read and written through gw_vcpus_get_state /
 * gw_vcpus_set_state in vcpu.h, only while the vCPUs are paused):
 *   regs, sregs, XSAVE area (KVM_GET_XSAVE, or KVM_GET_XSAVE2 when
 *   KVM_CAP_XSAVE2 reports more than 4096 bytes), XCRs, debug registers,
 *   vcpu_events, mp_state, local APIC page and every MSR of
 *   KVM_GET_MSR_INDEX_LIST that KVM_GET_MSRS returns on this host
 *   (IA32_TSC, TSC_DEADLINE, TSC_ADJUST, the KVM pv MSRs 0x11, 0x12 and
 *   0x4b564d00.., SYSENTER, STAR/LSTAR, PAT, ...).
 *
 * Read order (QEMU's kvm_arch_get_registers): vcpu_events, mp_state
 * (KVM_GET_MP_STATE may move CS:RIP of a vCPU that got a SIPI, so it
 * comes before the registers), regs, xsave, xcrs, sregs, msrs, lapic,
 * debugregs.
 *
 * Write order (QEMU's kvm_arch_put_registers and its APIC post-load):
 *   1. sregs: CR0/CR4/EFER and the APIC base decide how everything
 *      after them is interpreted; interrupt_bitmap is zeroed because
 *      the injected interrupt travels in vcpu_events;
 *   2. regs, 3. xsave, 4. xcrs;
 *   5. MSRs except IA32_TSC_DEADLINE, in the source's order.  IA32_TSC
 *      is written host-initiated, so KVM's TSC synchronisation matches
 *      vCPUs whose values are written within a second of each other;
 *      the guest's TSC resumes from the value it had at pause time (the
 *      downtime is not added, as in QEMU);
 *   6. lapic: after the APIC base (step 1);
 *   7. IA32_TSC_DEADLINE: after the LAPIC, since KVM drops the deadline
 *      unless the LVT timer is already in TSC-deadline mode;
 *   8. vcpu_events (with NMI_PENDING and SIPI_VECTOR marked valid),
 *   9. mp_state, 10. debugregs.
 *
 * VM-wide (GwKvmVmState): the two PICs and the IOAPIC (KVM_GET_IRQCHIP),
 * the PIT (KVM_GET_PIT2) and kvmclock (KVM_GET_CLOCK).  Set it after all
 * vCPUs and just before the VM runs: KVM_SET_CLOCK is given the clock
 * value only, without KVM_CLOCK_REALTIME, so kvmclock resumes where it
 * paused, consistently with the TSC (QEMU does the same).
 *
 * Threads: every function here is called on the thread that owns the VM
 * lifecycle (main loop or migration), while the vCPUs are paused.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <linux/kvm.h>
#include <godwit/kvm.h>

#define GW_MSR_IA32_TSC          0x10u
#define GW_MSR_IA32_TSC_DEADLINE 0x6e0u

/* Room for every MSR a current KVM saves (about 40 without a PMU). */
#define GW_VCPU_MAX_MSRS 256
/* Room for an XSAVE area with AMX tiles (11008 bytes) and more. */
#define GW_VCPU_XSAVE_MAX 16384

typedef struct GwVcpuState {
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_xcrs xcrs;
    struct kvm_debugregs debugregs;
    struct kvm_vcpu_events events;
    struct kvm_mp_state mp_state;
    struct kvm_lapic_state lapic;
    uint32_t xsave_size; /* bytes of `xsave` KVM filled: 4096 or XSAVE2's */
    uint32_t n_msrs;     /* entries used in `msrs` */
    struct kvm_msr_entry msrs[GW_VCPU_MAX_MSRS];
    uint8_t xsave[GW_VCPU_XSAVE_MAX]; /* struct kvm_xsave, zero-padded */
} GwVcpuState;

typedef struct GwKvmVmState {
    struct kvm_irqchip pic_master; /* chip_id KVM_IRQCHIP_PIC_MASTER */
    struct kvm_irqchip pic_slave;  /* chip_id KVM_IRQCHIP_PIC_SLAVE */
    struct kvm_irqchip ioapic;     /* chip_id KVM_IRQCHIP_IOAPIC */
    struct kvm_pit_state2 pit;
    /* As KVM_GET_CLOCK returned it; flags & KVM_CLOCK_TSC_STABLE says
     * the value was TSC-based (master clock), i.e. exact. */
    struct kvm_clock_data clock;
} GwKvmVmState;

/*
 * What this host's KVM saves for a vCPU: the XSAVE size and the MSRs
 * that KVM_GET_MSRS really returns.  For src/vcpu.c, which probes it
 * once per VM.
 */
typedef struct {
    uint32_t xsave_size;
    uint32_t n_msrs;
    uint32_t msr_index[GW_VCPU_MAX_MSRS];
} GwKvmVcpuLayout;

/*
 * Probes the layout on vCPU fd `vcpu_fd` (CPUID already set).  False
 * with a message naming the missing capability (XSAVE, XCRS, DEBUGREGS,
 * VCPU_EVENTS) or the ioctl that failed.
 */
bool gw_kvm_vcpu_layout_probe(GwKvm *kvm, int vcpu_fd, GwKvmVcpuLayout *l,
                              GError **errp);

/*
 * Reads / writes the whole state of vCPU `cpu` (fd `fd`) in the orders
 * described above.  The vCPU must not be in KVM_RUN.  On error *errp
 * names the vCPU and the ioctl (for MSRs, the MSR); a failed set leaves
 * the vCPU partly written, so it must be set again or not run.
 */
bool gw_kvm_vcpu_get_state(int fd, unsigned cpu, const GwKvmVcpuLayout *l,
                           GwVcpuState *st, GError **errp);
bool gw_kvm_vcpu_set_state(int fd, unsigned cpu, const GwKvmVcpuLayout *l,
                           const GwVcpuState *st, GError **errp);

/*
 * Reads the irqchip, PIT and clock of the VM into *st.  Call while the
 * vCPUs are paused.  False with the failing ioctl named.
 */
bool gw_kvm_get_vm_state(GwKvm *kvm, GwKvmVmState *st, GError **errp);

/*
 * Writes them: PICs, IOAPIC, PIT, then KVM_SET_CLOCK with the clock
 * value only (see above).  Call after every gw_vcpus_set_state, before
 * the vCPUs run.  False with the failing ioctl named.
 */
bool gw_kvm_set_vm_state(GwKvm *kvm, const GwKvmVmState *st, GError **errp);

/*
 * Whether a guest that was given CPUID `src` can run on a host whose
 * KVM_GET_SUPPORTED_CPUID is `dst_supported`: same vendor, and every
 * feature bit of `src` (leaves 0x1 ECX/EDX, 0x6 EAX, 0x7.0 EBX/ECX/EDX,
 * 0x7.1 EAX/EDX, 0xd.0 EAX/EDX, 0xd.1 EAX, 0x40000001 EAX,
 * 0x80000001 ECX/EDX, 0x80000007 EDX, 0x80000008 EBX) offered by
 * `dst_supported`.  Non-feature fields (family, APIC ids, sizes, cache
 * and topology leaves) are not compared.  Pure: no KVM needed.  False
 * with a message naming the first missing leaf, subleaf, register and
 * bit, and how many more are missing.
 */
bool gw_kvm_cpuid_compatible(const struct kvm_cpuid2 *src,
                             const struct kvm_cpuid2 *dst_supported,
                             GError **errp);
