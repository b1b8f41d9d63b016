/*
 * /dev/kvm and the VM fd.  See include/godwit/kvm.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <godwit/kvm.h>
#include <godwit/util.h>

/* As QEMU: the identity map page and three TSS pages (VMX needs them). */
#define TSS_GPA       0xFEFFD000u
#define IDENTITY_GPA  0xFEFFC000u
#define N_IOAPIC_PINS 24

#define FIRST_MSI_GSI 24
#define MAX_GSI       1024

/* The routing table is replaced whole by every change (that is the KVM
 * API); `routes` is guarded by the machine's device lock, as every
 * caller of the GwIrqOps holds it. */
struct GwKvm {
    int sys_fd;
    int vm_fd;
    int run_size;
    GArray *slots;  /* struct kvm_userspace_memory_region, slot = index */
    GArray *routes; /* struct kvm_irq_routing_entry */
    GwIrqChip chip;
    bool dirty_logging;
    bool dirty_manual;     /* MANUAL_DIRTY_LOG_PROTECT2 with INITIALLY_SET */
    bool dirty_report_all; /* the first sync after start */
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
    {KVM_CAP_SIGNAL_MSI, "SIGNAL_MSI"},
    {KVM_CAP_MP_STATE, "MP_STATE"},
};

static bool
check_caps(GwKvm *kvm, GError **errp)
{
    int version = ioctl(kvm->sys_fd, KVM_GET_API_VERSION, 0);

    if (version < 0) {
        g_set_error(errp, GW_ERROR, GW_ERROR_NO_KVM,
                    "/dev/kvm is not KVM (KVM_GET_API_VERSION: %s): godwit "
                    "runs guests with KVM only",
                    g_strerror(errno));
        return false;
    }
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

static bool
commit_routes(GwKvm *kvm, GError **errp)
{
    size_t n = kvm->routes->len;
    g_autofree struct kvm_irq_routing *r =
        g_malloc0(sizeof(*r) + n * sizeof(struct kvm_irq_routing_entry));

    r->nr = (uint32_t)n;
    memcpy(r->entries, kvm->routes->data,
           n * sizeof(struct kvm_irq_routing_entry));
    if (ioctl(kvm->vm_fd, KVM_SET_GSI_ROUTING, r) < 0) {
        return gw_error_errno(errp, errno, "KVM_SET_GSI_ROUTING");
    }
    return true;
}

static void
add_irqchip_route(GwKvm *kvm, unsigned gsi, unsigned chip, unsigned pin)
{
    struct kvm_irq_routing_entry e = {
        .gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP, .u.irqchip = {chip, pin}};
    g_array_append_val(kvm->routes, e);
}

/* GSI n → PIC pin n (n < 16) and IOAPIC pin n, except GSI 0 → pin 2. */
static bool
set_legacy_routing(GwKvm *kvm, GError **errp)
{
    for (unsigned gsi = 0; gsi < N_IOAPIC_PINS; gsi++) {
        if (gsi < 16 && gsi != 2) {
            add_irqchip_route(kvm, gsi,
                              gsi < 8 ? KVM_IRQCHIP_PIC_MASTER
                                      : KVM_IRQCHIP_PIC_SLAVE,
                              gsi % 8);
        }
        if (gsi != 2) {
            add_irqchip_route(kvm, gsi, KVM_IRQCHIP_IOAPIC, gsi ? gsi : 2);
        }
    }
    return commit_routes(kvm, errp);
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

/* ---- GwIrqOps: MSI routes, irqfds, ioeventfds ---- */

static struct kvm_irq_routing_entry *
find_route(GwKvm *kvm, int gsi)
{
    for (guint i = 0; i < kvm->routes->len; i++) {
        struct kvm_irq_routing_entry *e =
            &g_array_index(kvm->routes, struct kvm_irq_routing_entry, i);
        if ((int)e->gsi == gsi) {
            return e;
        }
    }
    return NULL;
}

static int
msi_route_add(void *ctx, uint64_t addr, uint32_t data, GError **errp)
{
    GwKvm *kvm = ctx;
    struct kvm_irq_routing_entry e = {.type = KVM_IRQ_ROUTING_MSI};
    int gsi = FIRST_MSI_GSI;

    while (gsi < MAX_GSI && find_route(kvm, gsi)) {
        gsi++;
    }
    if (gsi == MAX_GSI) {
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY, "KVM: no free GSI for MSI");
        return -1;
    }
    e.gsi = (uint32_t)gsi;
    e.u.msi = (struct kvm_irq_routing_msi){(uint32_t)addr,
                                           (uint32_t)(addr >> 32), data};
    g_array_append_val(kvm->routes, e);
    if (!commit_routes(kvm, errp)) {
        g_array_remove_index(kvm->routes, kvm->routes->len - 1);
        return -1;
    }
    return gsi;
}

static bool
msi_route_set(void *ctx, int gsi, uint64_t addr, uint32_t data, GError **errp)
{
    GwKvm *kvm = ctx;
    struct kvm_irq_routing_entry *e = find_route(kvm, gsi);

    g_assert(e && e->type == KVM_IRQ_ROUTING_MSI);
    e->u.msi = (struct kvm_irq_routing_msi){(uint32_t)addr,
                                            (uint32_t)(addr >> 32), data};
    return commit_routes(kvm, errp);
}

static void
msi_route_del(void *ctx, int gsi)
{
    GwKvm *kvm = ctx;
    struct kvm_irq_routing_entry *e = find_route(kvm, gsi);
    g_autoptr(GError) err = NULL;

    if (e) {
        g_array_remove_index(
            kvm->routes,
            (guint)(e - (struct kvm_irq_routing_entry *)kvm->routes->data));
        if (!commit_routes(kvm, &err)) {
            g_warning("%s", err->message);
        }
    }
}

static bool
irqfd(void *ctx, int fd, int gsi, bool assign, GError **errp)
{
    GwKvm *kvm = ctx;
    struct kvm_irqfd req = {
        .fd = (uint32_t)fd,
        .gsi = (uint32_t)gsi,
        .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
    };

    if (ioctl(kvm->vm_fd, KVM_IRQFD, &req) < 0) {
        return gw_error_errno(errp, errno, "KVM_IRQFD (gsi %d)", gsi);
    }
    return true;
}

static bool
ioeventfd(void *ctx, uint64_t addr, unsigned len, int fd, bool assign,
          GError **errp)
{
    GwKvm *kvm = ctx;
    struct kvm_ioeventfd req = {
        .addr = addr,
        .len = len, /* 0: any access width, as virtio notify needs */
        .fd = fd,
        .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
    };

    if (ioctl(kvm->vm_fd, KVM_IOEVENTFD, &req) < 0) {
        return gw_error_errno(
            errp, errno, "KVM_IOEVENTFD at 0x%" G_GINT64_MODIFIER "x", addr);
    }
    return true;
}

static void
signal_msi(void *ctx, uint64_t addr, uint32_t data)
{
    GwKvm *kvm = ctx;
    struct kvm_msi msi = {(uint32_t)addr, (uint32_t)(addr >> 32), data};

    if (ioctl(kvm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0) {
        g_warning("KVM_SIGNAL_MSI: %s", g_strerror(errno));
    }
}

static const GwIrqOps kvm_irq_ops = {
    msi_route_add, msi_route_set, msi_route_del, irqfd, ioeventfd, signal_msi,
};

const GwIrqChip *
gw_kvm_irqchip(GwKvm *kvm)
{
    return &kvm->chip;
}

GwKvm *
gw_kvm_new(GError **errp)
{
    g_autoptr(GwKvm) kvm = g_new0(GwKvm, 1);

    kvm->vm_fd = -1;
    kvm->routes =
        g_array_new(FALSE, TRUE, sizeof(struct kvm_irq_routing_entry));
    kvm->slots =
        g_array_new(FALSE, TRUE, sizeof(struct kvm_userspace_memory_region));
    kvm->chip = (GwIrqChip){&kvm_irq_ops, kvm};
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
    g_array_unref(kvm->routes);
    g_array_unref(kvm->slots);
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
            .slot = kvm->slots->len,
            .flags = kvm->dirty_logging ? KVM_MEM_LOG_DIRTY_PAGES : 0,
            .guest_phys_addr = r->gpa,
            .memory_size = r->size,
            .userspace_addr = (uintptr_t)(mem->host + r->offset),
        };
        if (ioctl(kvm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
            return gw_error_errno(
                errp, errno, "KVM: memory slot at 0x%" G_GINT64_MODIFIER "x",
                r->gpa);
        }
        g_array_append_val(kvm->slots, slot);
    }
    return true;
}

/* ---- dirty logging ---- */

static bool
set_slot_flags(GwKvm *kvm, uint32_t flags, GError **errp)
{
    for (guint i = 0; i < kvm->slots->len; i++) {
        struct kvm_userspace_memory_region *s =
            &g_array_index(kvm->slots, struct kvm_userspace_memory_region, i);
        s->flags = flags;
        if (ioctl(kvm->vm_fd, KVM_SET_USER_MEMORY_REGION, s) < 0) {
            return gw_error_errno(errp, errno,
                                  "KVM: %s dirty logging on the slot at "
                                  "0x%" G_GINT64_MODIFIER "x",
                                  flags ? "starting" : "stopping",
                                  (uint64_t)s->guest_phys_addr);
        }
    }
    return true;
}

/* Manual protection: KVM_GET_DIRTY_LOG no longer write-protects the
 * whole slot, KVM_CLEAR_DIRTY_LOG re-protects only what was dirty, and
 * with INITIALLY_SET starting costs nothing. */
static bool
enable_manual_dirty_log(GwKvm *kvm)
{
    const uint64_t want =
        KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET;
    struct kvm_enable_cap cap = {.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
                                 .args = {want}};
    int have = ioctl(kvm->vm_fd, KVM_CHECK_EXTENSION,
                     KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);

    if (have < 0 || ((uint64_t)have & want) != want) {
        return false;
    }
    return ioctl(kvm->vm_fd, KVM_ENABLE_CAP, &cap) == 0;
}

bool
gw_kvm_dirty_log_start(GwKvm *kvm, GError **errp)
{
    if (kvm->dirty_logging) {
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                    "KVM: dirty logging is already on");
        return false;
    }
    kvm->dirty_manual = enable_manual_dirty_log(kvm);
    if (!set_slot_flags(kvm, KVM_MEM_LOG_DIRTY_PAGES, errp)) {
        g_autoptr(GError) ignored = NULL;
        set_slot_flags(kvm, 0, &ignored);
        return false;
    }
    kvm->dirty_logging = true;
    kvm->dirty_report_all = true;
    return true;
}

bool
gw_kvm_dirty_log_manual(const GwKvm *kvm)
{
    return kvm->dirty_manual;
}

static bool
sync_slot(GwKvm *kvm, const struct kvm_userspace_memory_region *s, GwDirtyFn cb,
          void *opaque, GError **errp)
{
    uint64_t npages = s->memory_size / GW_PAGE_SIZE;
    size_t words = (npages + 63) / 64;
    g_autofree unsigned long *bits = g_new0(unsigned long, words);
    struct kvm_dirty_log log = {.slot = s->slot, .dirty_bitmap = bits};
    struct kvm_clear_dirty_log clear = {
        .slot = s->slot, .num_pages = (uint32_t)npages, .dirty_bitmap = bits};

    if (ioctl(kvm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
        return gw_error_errno(errp, errno, "KVM_GET_DIRTY_LOG (slot %u)",
                              s->slot);
    }
    /* Cleared before the caller reads the pages: a write from now on is
     * in the next sync. */
    if (kvm->dirty_manual &&
        ioctl(kvm->vm_fd, KVM_CLEAR_DIRTY_LOG, &clear) < 0) {
        return gw_error_errno(errp, errno, "KVM_CLEAR_DIRTY_LOG (slot %u)",
                              s->slot);
    }
    if (kvm->dirty_report_all) {
        memset(bits, 0xff, words * sizeof(*bits));
        if (npages % 64) {
            bits[words - 1] = (1ul << (npages % 64)) - 1;
        }
    }
    cb(opaque, s->guest_phys_addr, bits, npages);
    return true;
}

bool
gw_kvm_dirty_log_sync(GwKvm *kvm, GwDirtyFn cb, void *opaque, GError **errp)
{
    if (!kvm->dirty_logging) {
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                    "KVM: dirty logging is not on");
        return false;
    }
    for (guint i = 0; i < kvm->slots->len; i++) {
        if (!sync_slot(kvm,
                       &g_array_index(kvm->slots,
                                      struct kvm_userspace_memory_region, i),
                       cb, opaque, errp)) {
            return false;
        }
    }
    kvm->dirty_report_all = false;
    return true;
}

bool
gw_kvm_dirty_log_stop(GwKvm *kvm, GError **errp)
{
    if (!kvm->dirty_logging) {
        return true;
    }
    kvm->dirty_logging = false;
    return set_slot_flags(kvm, 0, errp);
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
