/*
 * /dev/kvm and the VM fd.  See include/godwit/kvm.h.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <godwit/kvm.h>
#include <godwit/util.h>

/* As QEMU: the identity map page and three TSS pages (VMX needs them). */
#define TSS_GPA       0xFEFFD000u
#define IDENTITY_GPA  0xFEFFC000u
#define N_IOAPIC_PINS 24

struct GwKvm {
    int sys_fd;
    int vm_fd;
    int run_size;
    unsigned n_slots;
};

static const struct {
    int cap;
    const char *name;
} required_caps[] = {
    {KVM_CAP_IRQCHIP, "IRQCHIP"},
    {KVM_CAP_USER_MEMORY, "USER_MEMORY"},
    {KVM_CAP_IRQ_ROUTING, "IRQ_ROUTING"},
    {KVM_CAP_IRQFD, "IRQFD"},
    {KVM_CAP_IOEVENTFD, "IOEVENTFD"},
    {KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT"},
    {KVM_CAP_PIT2, "PIT2"},
    {KVM_CAP_EXT_CPUID, "EXT_CPUID"},
};

static bool
check_caps(GwKvm *kvm, GError **errp)
{
    int version = ioctl(kvm->sys_fd, KVM_GET_API_VERSION, 0);

    if (version != KVM_API_VERSION) {
        g_set_error(errp, GW_ERROR, GW_ERROR_NO_KVM,
                    "KVM: API version %d, godwit needs %d", version,
                    KVM_API_VERSION);
        return false;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(required_caps); i++) {
        if (ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <=
            0) {
            g_set_error(errp, GW_ERROR, GW_ERROR_NO_KVM,
                        "KVM: this kernel lacks KVM_CAP_%s",
                        required_caps[i].name);
            return false;
        }
    }
    return true;
}

/* GSI n → PIC pin n (n < 16) and IOAPIC pin n, except GSI 0 → pin 2. */
static bool
set_legacy_routing(GwKvm *kvm, GError **errp)
{
    g_autofree struct kvm_irq_routing *r = g_malloc0(
        sizeof(*r) + 2 * N_IOAPIC_PINS * sizeof(struct kvm_irq_routing_entry));
    unsigned n = 0;

    for (unsigned gsi = 0; gsi < N_IOAPIC_PINS; gsi++) {
        if (gsi < 16 && gsi != 2) {
            r->entries[n++] = (struct kvm_irq_routing_entry){
                .gsi = gsi,
                .type = KVM_IRQ_ROUTING_IRQCHIP,
                .u.irqchip = {gsi < 8 ? KVM_IRQCHIP_PIC_MASTER
                                      : KVM_IRQCHIP_PIC_SLAVE,
                              gsi % 8}};
        }
        if (gsi != 2) {
            r->entries[n++] = (struct kvm_irq_routing_entry){
                .gsi = gsi,
                .type = KVM_IRQ_ROUTING_IRQCHIP,
                .u.irqchip = {KVM_IRQCHIP_IOAPIC, gsi == 0 ? 2 : gsi}};
        }
    }
    r->nr = n;
    if (ioctl(kvm->vm_fd, KVM_SET_GSI_ROUTING, r) < 0) {
        return gw_error_errno(errp, errno, "KVM_SET_GSI_ROUTING");
    }
    return true;
}

static bool
create_vm(GwKvm *kvm, GError **errp)
{
    struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
    uint64_t identity = IDENTITY_GPA;

    kvm->vm_fd = ioctl(kvm->sys_fd, KVM_CREATE_VM, 0);
    if (kvm->vm_fd < 0) {
        return gw_error_errno(errp, errno, "KVM_CREATE_VM");
    }
    if (ioctl(kvm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0 ||
        ioctl(kvm->vm_fd, KVM_SET_TSS_ADDR, TSS_GPA) < 0) {
        return gw_error_errno(errp, errno, "KVM: setting the TSS area");
    }
    if (ioctl(kvm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
        return gw_error_errno(errp, errno, "KVM_CREATE_IRQCHIP");
    }
    if (ioctl(kvm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
        return gw_error_errno(errp, errno, "KVM_CREATE_PIT2");
    }
    return set_legacy_routing(kvm, errp);
}

GwKvm *
gw_kvm_new(GError **errp)
{
    g_autoptr(GwKvm) kvm = g_new0(GwKvm, 1);

    kvm->vm_fd = -1;
    kvm->sys_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm->sys_fd < 0) {
        g_set_error(errp, GW_ERROR, GW_ERROR_NO_KVM, "cannot open /dev/kvm: %s",
                    g_strerror(errno));
        return NULL;
    }
    if (!check_caps(kvm, errp) || !create_vm(kvm, errp)) {
        return NULL;
    }
    kvm->run_size = ioctl(kvm->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (kvm->run_size <= 0) {
        return gw_error_errno(errp, errno, "KVM_GET_VCPU_MMAP_SIZE"), NULL;
    }
    return g_steal_pointer(&kvm);
}

void
gw_kvm_free(GwKvm *kvm)
{
    if (!kvm) {
        return;
    }
    if (kvm->vm_fd >= 0) {
        close(kvm->vm_fd);
    }
    if (kvm->sys_fd >= 0) {
        close(kvm->sys_fd);
    }
    g_free(kvm);
}

int
gw_kvm_vm_fd(const GwKvm *kvm)
{
    return kvm->vm_fd;
}

int
gw_kvm_sys_fd(const GwKvm *kvm)
{
    return kvm->sys_fd;
}

int
gw_kvm_vcpu_mmap_size(const GwKvm *kvm)
{
    return kvm->run_size;
}

bool
gw_kvm_add_memory(GwKvm *kvm, const GwGuestMemory *mem, GError **errp)
{
    for (guint i = 0; i < mem->n_regions; i++) {
        const GwMemRegion *r = &mem->regions[i];
        struct kvm_userspace_memory_region slot = {
            .slot = kvm->n_slots,
            .guest_phys_addr = r->gpa,
            .memory_size = r->size,
            .userspace_addr = (uintptr_t)(mem->host + r->offset),
        };
        if (ioctl(kvm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
            return gw_error_errno(
                errp, errno, "KVM: memory slot at 0x%" G_GINT64_MODIFIER "x",
                r->gpa);
        }
        kvm->n_slots++;
    }
    return true;
}

void
gw_kvm_set_irq(GwKvm *kvm, unsigned gsi, bool level)
{
    struct kvm_irq_level irq = {.irq = gsi, .level = level};

    if (ioctl(kvm->vm_fd, KVM_IRQ_LINE, &irq) < 0) {
        g_warning("KVM_IRQ_LINE %u: %s", gsi, g_strerror(errno));
    }
}

struct kvm_cpuid2 *
gw_kvm_supported_cpuid(GwKvm *kvm, GError **errp)
{
    for (unsigned n = 64; n <= 4096; n *= 2) {
        struct kvm_cpuid2 *c =
            g_malloc0(sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
        c->nent = n;
        if (ioctl(kvm->sys_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
            return c;
        }
        g_free(c);
        if (errno != E2BIG) {
            return gw_error_errno(errp, errno, "KVM_GET_SUPPORTED_CPUID"), NULL;
        }
    }
    g_set_error(errp, GW_ERROR, GW_ERROR_NO_KVM,
                "KVM_GET_SUPPORTED_CPUID: too many entries");
    return NULL;
}
