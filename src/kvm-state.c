/*
 * vCPU and VM state as KVM holds it, and the CPUID check.  See
 * include/godwit/kvm-state.h for the contents and the ioctl orders.
 * Runs on the thread that owns the VM lifecycle, vCPUs paused.
 */
#include <string.h>
#include <sys/ioctl.h>
#include <godwit/kvm-state.h>
#include <godwit/util.h>

#define LEGACY_XSAVE_SIZE 4096u

typedef struct {
    struct kvm_msrs hdr;
    struct kvm_msr_entry e[GW_VCPU_MAX_MSRS];
} MsrBuf;

static bool
vcpu_ioctl(int fd, unsigned cpu, unsigned long req, const void *arg,
           const char *name, GError **errp)
{
    /* The set ioctls only read `arg`; KVM's prototypes are not const. */
    if (ioctl(fd, req, (void *)arg) < 0) {
        return gw_error_errno(errp, errno, "vCPU %u: %s", cpu, name);
    }
    return true;
}

static bool
require_cap(GwKvm *kvm, int cap, const char *name, GError **errp)
{
    if (ioctl(gw_kvm_vm_fd(kvm), KVM_CHECK_EXTENSION, cap) > 0) {
        return true;
    }
    g_set_error(errp, GW_ERROR, GW_ERROR_NO_KVM,
                "KVM: this kernel lacks KVM_CAP_%s; vCPU state cannot be "
                "saved for migration",
                name);
    return false;
}

static struct kvm_msr_list *
get_msr_index_list(GwKvm *kvm, GError **errp)
{
    struct kvm_msr_list probe = {0};
    struct kvm_msr_list *l;

    /* With nmsrs 0 KVM fails with E2BIG and says how many there are. */
    if (ioctl(gw_kvm_sys_fd(kvm), KVM_GET_MSR_INDEX_LIST, &probe) < 0 &&
        errno != E2BIG) {
        return gw_error_errno(errp, errno, "KVM_GET_MSR_INDEX_LIST"), NULL;
    }
    l = g_malloc0(sizeof(*l) + probe.nmsrs * sizeof(uint32_t));
    l->nmsrs = probe.nmsrs;
    if (ioctl(gw_kvm_sys_fd(kvm), KVM_GET_MSR_INDEX_LIST, l) < 0) {
        g_free(l);
        return gw_error_errno(errp, errno, "KVM_GET_MSR_INDEX_LIST"), NULL;
    }
    return l;
}

static bool
msr_readable(int fd, uint32_t index)
{
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e;
    } one = {{.nmsrs = 1}, {.index = index}};

    return ioctl(fd, KVM_GET_MSRS, &one) == 1;
}

static bool
probe_msrs(GwKvm *kvm, int fd, GwKvmVcpuLayout *l, GError **errp)
{
    g_autofree struct kvm_msr_list *list = get_msr_index_list(kvm, errp);

    if (!list) {
        return false;
    }
    l->n_msrs = 0;
    for (uint32_t i = 0; i < list->nmsrs; i++) {
        if (!msr_readable(fd, list->indices[i])) {
            g_debug("MSR 0x%x listed by KVM but not readable: not saved",
                    list->indices[i]);
            continue;
        }
        if (l->n_msrs == GW_VCPU_MAX_MSRS) {
            g_set_error(errp, GW_ERROR, GW_ERROR_NO_KVM,
                        "KVM saves more than %u MSRs per vCPU; godwit's "
                        "vCPU state has no room for them",
                        GW_VCPU_MAX_MSRS);
            return false;
        }
        l->msr_index[l->n_msrs++] = list->indices[i];
    }
    return true;
}

bool
gw_kvm_vcpu_layout_probe(GwKvm *kvm, int vcpu_fd, GwKvmVcpuLayout *l,
                         GError **errp)
{
    int xsave2;

    if (!require_cap(kvm, KVM_CAP_XSAVE, "XSAVE", errp) ||
        !require_cap(kvm, KVM_CAP_XCRS, "XCRS", errp) ||
        !require_cap(kvm, KVM_CAP_DEBUGREGS, "DEBUGREGS", errp) ||
        !require_cap(kvm, KVM_CAP_VCPU_EVENTS, "VCPU_EVENTS", errp)) {
        return false;
    }
    xsave2 = ioctl(gw_kvm_vm_fd(kvm), KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
    l->xsave_size = MAX(xsave2, (int)LEGACY_XSAVE_SIZE);
    if (l->xsave_size > GW_VCPU_XSAVE_MAX) {
        g_set_error(errp, GW_ERROR, GW_ERROR_NO_KVM,
                    "KVM's XSAVE area is %u bytes; godwit's vCPU state "
                    "holds %u",
                    l->xsave_size, GW_VCPU_XSAVE_MAX);
        return false;
    }
    return probe_msrs(kvm, vcpu_fd, l, errp);
}

/* ---- vCPU get ---- */

static bool
get_xsave(int fd, unsigned cpu, const GwKvmVcpuLayout *l, GwVcpuState *st,
          GError **errp)
{
    bool big = l->xsave_size > LEGACY_XSAVE_SIZE;

    st->xsave_size = l->xsave_size;
    return vcpu_ioctl(fd, cpu, big ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, st->xsave,
                      big ? "KVM_GET_XSAVE2" : "KVM_GET_XSAVE", errp);
}

static bool
get_msrs(int fd, unsigned cpu, const GwKvmVcpuLayout *l, GwVcpuState *st,
         GError **errp)
{
    g_autofree MsrBuf *buf = g_new0(MsrBuf, 1);
    int got;

    buf->hdr.nmsrs = l->n_msrs;
    for (uint32_t i = 0; i < l->n_msrs; i++) {
        buf->e[i].index = l->msr_index[i];
    }
    got = ioctl(fd, KVM_GET_MSRS, buf);
    if (got < 0) {
        return gw_error_errno(errp, errno, "vCPU %u: KVM_GET_MSRS", cpu);
    }
    if ((uint32_t)got != l->n_msrs) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "vCPU %u: KVM_GET_MSRS stopped at MSR 0x%x (%d of %u)", cpu,
                    buf->e[got].index, got, l->n_msrs);
        return false;
    }
    st->n_msrs = l->n_msrs;
    memcpy(st->msrs, buf->e, l->n_msrs * sizeof(buf->e[0]));
    return true;
}

bool
gw_kvm_vcpu_get_state(int fd, unsigned cpu, const GwKvmVcpuLayout *l,
                      GwVcpuState *st, GError **errp)
{
    memset(st, 0, sizeof(*st));
    return vcpu_ioctl(fd, cpu, KVM_GET_VCPU_EVENTS, &st->events,
                      "KVM_GET_VCPU_EVENTS", errp) &&
           vcpu_ioctl(fd, cpu, KVM_GET_MP_STATE, &st->mp_state,
                      "KVM_GET_MP_STATE", errp) &&
           vcpu_ioctl(fd, cpu, KVM_GET_REGS, &st->regs, "KVM_GET_REGS", errp) &&
           get_xsave(fd, cpu, l, st, errp) &&
           vcpu_ioctl(fd, cpu, KVM_GET_XCRS, &st->xcrs, "KVM_GET_XCRS", errp) &&
           vcpu_ioctl(fd, cpu, KVM_GET_SREGS, &st->sregs, "KVM_GET_SREGS",
                      errp) &&
           get_msrs(fd, cpu, l, st, errp) &&
           vcpu_ioctl(fd, cpu, KVM_GET_LAPIC, &st->lapic, "KVM_GET_LAPIC",
                      errp) &&
           vcpu_ioctl(fd, cpu, KVM_GET_DEBUGREGS, &st->debugregs,
                      "KVM_GET_DEBUGREGS", errp);
}

/* ---- vCPU set ---- */

static bool
check_state(unsigned cpu, const GwKvmVcpuLayout *l, const GwVcpuState *st,
            GError **errp)
{
    if (st->n_msrs > GW_VCPU_MAX_MSRS) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vCPU %u: state holds %u MSRs, at most %u fit", cpu,
                    st->n_msrs, GW_VCPU_MAX_MSRS);
        return false;
    }
    if (st->xsave_size < LEGACY_XSAVE_SIZE || st->xsave_size > l->xsave_size) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vCPU %u: the XSAVE area is %u bytes; this host's KVM "
                    "takes %u to %u",
                    cpu, st->xsave_size, LEGACY_XSAVE_SIZE, l->xsave_size);
        return false;
    }
    return true;
}

static bool
set_sregs(int fd, unsigned cpu, const GwVcpuState *st, GError **errp)
{
    struct kvm_sregs s = st->sregs;

    /* An injected interrupt is restored by KVM_SET_VCPU_EVENTS. */
    memset(s.interrupt_bitmap, 0, sizeof(s.interrupt_bitmap));
    return vcpu_ioctl(fd, cpu, KVM_SET_SREGS, &s, "KVM_SET_SREGS", errp);
}

/* All MSRs but the TSC deadline (`deadline` false), or only it. */
static bool
set_msrs(int fd, unsigned cpu, const GwVcpuState *st, bool deadline,
         GError **errp)
{
    g_autofree MsrBuf *buf = g_new0(MsrBuf, 1);
    int done;

    for (uint32_t i = 0; i < st->n_msrs; i++) {
        if ((st->msrs[i].index == GW_MSR_IA32_TSC_DEADLINE) == deadline) {
            buf->e[buf->hdr.nmsrs++] = st->msrs[i];
        }
    }
    if (buf->hdr.nmsrs == 0) {
        return true;
    }
    done = ioctl(fd, KVM_SET_MSRS, buf);
    if (done < 0) {
        return gw_error_errno(errp, errno, "vCPU %u: KVM_SET_MSRS", cpu);
    }
    if ((uint32_t)done != buf->hdr.nmsrs) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "vCPU %u: KVM refused MSR 0x%x = 0x%" G_GINT64_MODIFIER "x",
                    cpu, buf->e[done].index, (uint64_t)buf->e[done].data);
        return false;
    }
    return true;
}

static bool
set_events(int fd, unsigned cpu, const GwVcpuState *st, GError **errp)
{
    struct kvm_vcpu_events ev = st->events;

    ev.flags |=
        KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
    return vcpu_ioctl(fd, cpu, KVM_SET_VCPU_EVENTS, &ev, "KVM_SET_VCPU_EVENTS",
                      errp);
}

bool
gw_kvm_vcpu_set_state(int fd, unsigned cpu, const GwKvmVcpuLayout *l,
                      const GwVcpuState *st, GError **errp)
{
    return check_state(cpu, l, st, errp) && set_sregs(fd, cpu, st, errp) &&
           vcpu_ioctl(fd, cpu, KVM_SET_REGS, &st->regs, "KVM_SET_REGS", errp) &&
           vcpu_ioctl(fd, cpu, KVM_SET_XSAVE, st->xsave, "KVM_SET_XSAVE",
                      errp) &&
           vcpu_ioctl(fd, cpu, KVM_SET_XCRS, &st->xcrs, "KVM_SET_XCRS", errp) &&
           set_msrs(fd, cpu, st, false, errp) &&
           vcpu_ioctl(fd, cpu, KVM_SET_LAPIC, &st->lapic, "KVM_SET_LAPIC",
                      errp) &&
           set_msrs(fd, cpu, st, true, errp) && set_events(fd, cpu, st, errp) &&
           vcpu_ioctl(fd, cpu, KVM_SET_MP_STATE, &st->mp_state,
                      "KVM_SET_MP_STATE", errp) &&
           vcpu_ioctl(fd, cpu, KVM_SET_DEBUGREGS, &st->debugregs,
                      "KVM_SET_DEBUGREGS", errp);
}

/* ---- VM-wide ---- */

static bool
vm_ioctl(GwKvm *kvm, unsigned long req, const void *arg, const char *name,
         GError **errp)
{
    if (ioctl(gw_kvm_vm_fd(kvm), req, (void *)arg) < 0) {
        return gw_error_errno(errp, errno, "KVM: %s", name);
    }
    return true;
}

static bool
get_irqchip(GwKvm *kvm, uint32_t id, struct kvm_irqchip *chip, GError **errp)
{
    chip->chip_id = id;
    return vm_ioctl(kvm, KVM_GET_IRQCHIP, chip, "KVM_GET_IRQCHIP", errp);
}

bool
gw_kvm_get_vm_state(GwKvm *kvm, GwKvmVmState *st, GError **errp)
{
    memset(st, 0, sizeof(*st));
    return get_irqchip(kvm, KVM_IRQCHIP_PIC_MASTER, &st->pic_master, errp) &&
           get_irqchip(kvm, KVM_IRQCHIP_PIC_SLAVE, &st->pic_slave, errp) &&
           get_irqchip(kvm, KVM_IRQCHIP_IOAPIC, &st->ioapic, errp) &&
           vm_ioctl(kvm, KVM_GET_PIT2, &st->pit, "KVM_GET_PIT2", errp) &&
           vm_ioctl(kvm, KVM_GET_CLOCK, &st->clock, "KVM_GET_CLOCK", errp);
}

static bool
set_irqchip(GwKvm *kvm, uint32_t id, const struct kvm_irqchip *chip,
            GError **errp)
{
    if (chip->chip_id != id) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "KVM_SET_IRQCHIP: state for chip %u found where chip %u "
                    "belongs",
                    chip->chip_id, id);
        return false;
    }
    return vm_ioctl(kvm, KVM_SET_IRQCHIP, chip, "KVM_SET_IRQCHIP", errp);
}

/*
 * The clock value alone: with KVM_CLOCK_REALTIME KVM would add the time
 * since the source read it, while the vCPUs' TSCs resume from their
 * pause-time values; kvmclock and TSC must stop together (as in QEMU).
 */
static bool
set_clock(GwKvm *kvm, const struct kvm_clock_data *saved, GError **errp)
{
    struct kvm_clock_data c = {.clock = saved->clock};

    if (!(saved->flags & KVM_CLOCK_TSC_STABLE)) {
        g_debug("kvmclock was not TSC-stable on the source: the guest's "
                "pvclock may step slightly");
    }
    return vm_ioctl(kvm, KVM_SET_CLOCK, &c, "KVM_SET_CLOCK", errp);
}

bool
gw_kvm_set_vm_state(GwKvm *kvm, const GwKvmVmState *st, GError **errp)
{
    return set_irqchip(kvm, KVM_IRQCHIP_PIC_MASTER, &st->pic_master, errp) &&
           set_irqchip(kvm, KVM_IRQCHIP_PIC_SLAVE, &st->pic_slave, errp) &&
           set_irqchip(kvm, KVM_IRQCHIP_IOAPIC, &st->ioapic, errp) &&
           vm_ioctl(kvm, KVM_SET_PIT2, &st->pit, "KVM_SET_PIT2", errp) &&
           set_clock(kvm, &st->clock, errp);
}

/* ---- CPUID ---- */

enum { EAX, EBX, ECX, EDX };

static const char *const reg_names[] = {"EAX", "EBX", "ECX", "EDX"};

/* The registers that are feature bitmaps: a bit the guest saw must
 * exist on the destination. */
static const struct {
    uint32_t leaf, subleaf;
    int reg;
} feature_regs[] = {
    {0x1, 0, ECX},        {0x1, 0, EDX},        {0x6, 0, EAX},
    {0x7, 0, EBX},        {0x7, 0, ECX},        {0x7, 0, EDX},
    {0x7, 1, EAX},        {0x7, 1, EDX},        {0xd, 0, EAX},
    {0xd, 0, EDX},        {0xd, 1, EAX},        {0x40000001, 0, EAX},
    {0x80000001, 0, ECX}, {0x80000001, 0, EDX}, {0x80000007, 0, EDX},
    {0x80000008, 0, EBX},
};

static const struct kvm_cpuid_entry2 *
cpuid_find(const struct kvm_cpuid2 *c, uint32_t leaf, uint32_t subleaf)
{
    for (uint32_t i = 0; i < c->nent; i++) {
        const struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function == leaf &&
            (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) ||
             e->index == subleaf)) {
            return e;
        }
    }
    return NULL;
}

static uint32_t
cpuid_reg(const struct kvm_cpuid_entry2 *e, int reg)
{
    const uint32_t regs[] = {e->eax, e->ebx, e->ecx, e->edx};

    return regs[reg];
}

static bool
same_vendor(const struct kvm_cpuid2 *src, const struct kvm_cpuid2 *dst,
            GError **errp)
{
    const struct kvm_cpuid_entry2 *s = cpuid_find(src, 0, 0);
    const struct kvm_cpuid_entry2 *d = cpuid_find(dst, 0, 0);
    char sv[13] = "", dv[13] = "";

    if (!s || !d ||
        (s->ebx == d->ebx && s->ecx == d->ecx && s->edx == d->edx)) {
        return true;
    }
    memcpy(sv, &s->ebx, 4), memcpy(sv + 4, &s->edx, 4);
    memcpy(sv + 8, &s->ecx, 4);
    memcpy(dv, &d->ebx, 4), memcpy(dv + 4, &d->edx, 4);
    memcpy(dv + 8, &d->ecx, 4);
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "CPUID leaf 0x0: the source vCPU is %s, this host is %s", sv,
                dv);
    return false;
}

bool
gw_kvm_cpuid_compatible(const struct kvm_cpuid2 *src,
                        const struct kvm_cpuid2 *dst_supported, GError **errp)
{
    g_autofree char *first = NULL;
    unsigned missing = 0;

    if (!same_vendor(src, dst_supported, errp)) {
        return false;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(feature_regs); i++) {
        uint32_t leaf = feature_regs[i].leaf, sub = feature_regs[i].subleaf;
        int reg = feature_regs[i].reg;
        const struct kvm_cpuid_entry2 *s = cpuid_find(src, leaf, sub);
        const struct kvm_cpuid_entry2 *d = cpuid_find(dst_supported, leaf, sub);
        uint32_t lack =
            s ? cpuid_reg(s, reg) & ~(d ? cpuid_reg(d, reg) : 0) : 0;

        missing += (unsigned)__builtin_popcount(lack);
        if (lack && !first) {
            first = g_strdup_printf(
                "CPUID leaf 0x%x subleaf %u %s bit %d: the source vCPU has "
                "it, this host's KVM does not offer it%s",
                leaf, sub, reg_names[reg], __builtin_ctz(lack),
                d ? "" : " (leaf absent)");
        }
    }
    if (!missing) {
        return true;
    }
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID, "%s (%u missing bit%s)",
                first, missing, missing == 1 ? "" : "s");
    return false;
}
