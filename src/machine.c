/*
 * The KVM board.  See include/godwit/machine.h for threads and locking.
 */
#include <string.h>
#include <godwit/acpi-pcihp.h>
#include <godwit/acpi-pm.h>
#include <godwit/boot.h>
#include <godwit/bus.h>
#include <godwit/chardev.h>
#include <godwit/kvm.h>
#include <godwit/machine.h>
#include <godwit/pci.h>
#include <godwit/qtest.h>
#include <godwit/soft-irq.h>
#include <godwit/vdpa-device.h>
#include <godwit/serial.h>
#include <godwit/util.h>
#include <godwit/vcpu.h>
#include <godwit/virtio-pci.h>

#include "machine-priv.h"

/* A guest-driven event on its way from a vCPU thread to the main thread. */
typedef struct {
    GwMachine *m;
    enum { EV_POWEROFF, EV_RESET, EV_FATAL, EV_EJECTED } kind;
    char *why;
} Event;

/* Devices the guest ejected are off the bus: free them, then say so. */
static void
release_ejected(GwMachine *m)
{
    for (;;) {
        g_autofree char *id = NULL;
        GwVdpaDevice *d = NULL;

        g_mutex_lock(&m->dev_lock);
        if (m->ejected->len) {
            d = g_ptr_array_steal_index(m->ejected, 0);
            id = g_strdup(gw_vdpa_device_config(d)->id);
            gw_vdpa_device_free(d);
        }
        g_mutex_unlock(&m->dev_lock);
        if (!d) {
            return;
        }
        g_info("device %s: ejected by the guest and released", id);
        m->hooks->device_deleted(m->opaque, id);
    }
}

static gboolean
deliver(gpointer data)
{
    Event *ev = data;
    const GwMachineHooks *h = ev->m->hooks;

    if (ev->kind == EV_POWEROFF) {
        h->poweroff(ev->m->opaque);
    } else if (ev->kind == EV_RESET) {
        h->reset(ev->m->opaque);
    } else if (ev->kind == EV_EJECTED) {
        release_ejected(ev->m);
    } else {
        h->fatal(ev->m->opaque, ev->why);
    }
    g_free(ev->why);
    g_free(ev);
    return G_SOURCE_REMOVE;
}

/*
 * Always through an idle source: g_main_context_invoke would run the
 * hook right here, on the vCPU thread, whenever the main context happens
 * to be unowned (before the loop runs, for one).
 */
static void
post(GwMachine *m, int kind, const char *why)
{
    Event *ev = g_new0(Event, 1);
    GSource *src = g_idle_source_new();

    ev->m = m;
    ev->kind = kind;
    ev->why = g_strdup(why);
    g_source_set_callback(src, deliver, ev, NULL);
    g_source_attach(src, NULL);
    g_source_unref(src);
}

static void
serial_out(gpointer opaque, uint8_t byte)
{
    GwMachine *m = opaque;
    gw_chardev_write(m->chardev, byte);
}

/* An interrupt line of the IOAPIC/PIC (an ISA IRQ). */
static void
set_irq(GwMachine *m, unsigned line, bool level)
{
    if (m->kvm) {
        gw_kvm_set_irq(m->kvm, line, level);
    } else if (m->qtest) {
        gw_qtest_set_irq(m->qtest, line, level);
    }
}

static void
serial_irq(gpointer opaque, bool level)
{
    set_irq(opaque, GW_SERIAL_COM1_IRQ, level);
}

static void
serial_in(gpointer opaque, const uint8_t *buf, size_t len)
{
    GwMachine *m = opaque;

    g_mutex_lock(&m->dev_lock);
    if (gw_serial_receive(m->serial, buf, len) < len) {
        g_debug("serial: guest FIFO full, input dropped");
    }
    g_mutex_unlock(&m->dev_lock);
}

static void
pm_sleep(gpointer opaque, unsigned slp_typ)
{
    if (slp_typ == GW_ACPI_S5_SLP_TYP) {
        post(opaque, EV_POWEROFF, NULL);
    }
}

static void
pm_reset(gpointer opaque)
{
    post(opaque, EV_RESET, NULL);
}

static void
pm_sci(gpointer opaque, bool level)
{
    set_irq(opaque, GW_ACPI_SCI_IRQ, level);
}

static const GwAcpiPmHooks pm_hooks = {pm_sleep, pm_reset, pm_sci};

static void
pcihp_gpe(gpointer opaque)
{
    GwMachine *m = opaque;
    gw_acpi_pm_set_gpe(m->pm, GW_ACPI_PCIHP_GPE_BIT);
}

static GwVdpaDevice *
vdpa_in_slot(GwMachine *m, unsigned segment, unsigned slot, guint *index)
{
    for (guint i = 0; i < m->vdpa->len; i++) {
        GwVdpaDevice *d = m->vdpa->pdata[i];
        if (gw_vdpa_device_config(d)->pci_segment == segment &&
            gw_vdpa_device_pci(d)->slot == slot) {
            *index = i;
            return m->vdpa->pdata[i];
        }
    }
    return NULL;
}

/*
 * The guest ejected `slot` of `segment` (device lock held, on the thread
 * of its access): off the bus now, so it sees the slot empty at once;
 * the backend is reset and released on the main thread.
 */
static void
pcihp_eject(gpointer opaque, unsigned segment, unsigned slot)
{
    GwMachine *m = opaque;
    guint i;
    GwVdpaDevice *d = vdpa_in_slot(m, segment, slot, &i);

    if (d) {
        gw_pci_bus_unplug(m->pci[segment], gw_vdpa_device_pci(d));
        g_ptr_array_add(m->ejected, g_ptr_array_steal_index(m->vdpa, i));
        post(m, EV_EJECTED, NULL);
    }
}

static const GwAcpiPcihpHooks pcihp_hooks = {pcihp_gpe, pcihp_eject};

static void
vcpu_fatal(gpointer opaque, unsigned cpu, const char *why)
{
    g_autofree char *what = g_strdup_printf("vCPU %u: %s", cpu, why);
    post(opaque, EV_FATAL, what);
}

static const GwVcpuHooks vcpu_hooks = {vcpu_fatal};

/* ---- the platform devices: one table, walked by create, reset, free
 * and migration (machine-state.c) ---- */

static bool
create_serial(GwMachine *m, GError **errp)
{
    m->serial = gw_serial_new(serial_out, serial_irq, m);
    return gw_bus_add(m->pio, GW_SERIAL_COM1_BASE, GW_SERIAL_PORTS,
                      &gw_serial_ops, m->serial, errp);
}

static bool
create_pm(GwMachine *m, GError **errp)
{
    m->pm = gw_acpi_pm_new(&pm_hooks, m);
    return gw_bus_add(m->pio, GW_ACPI_PM_BASE, GW_ACPI_PM_LEN, &gw_acpi_pm_ops,
                      m->pm, errp) &&
           gw_bus_add(m->pio, GW_ACPI_GPE0_BASE, GW_ACPI_GPE0_LEN,
                      &gw_acpi_gpe_ops, m->pm, errp);
}

static bool
create_pcihp(GwMachine *m, GError **errp)
{
    m->pcihp = gw_acpi_pcihp_new(&pcihp_hooks, m, gw_machine_n_segments(m));
    return gw_bus_add(m->pio, GW_ACPI_PCIHP_BASE, GW_ACPI_PCIHP_LEN,
                      &gw_acpi_pcihp_ops, m->pcihp, errp);
}

static bool
create_pci(GwMachine *m, GError **errp)
{
    m->pci[0] = gw_pci_bus_new(0, m->mmio);
    return gw_bus_add(m->pio, GW_PCI_CONFIG_ADDR, 4, &gw_pci_cf8_ops, m->pci[0],
                      errp) &&
           gw_bus_add(m->pio, GW_PCI_CONFIG_DATA, 4, &gw_pci_cfc_ops, m->pci[0],
                      errp) &&
           gw_bus_add(m->mmio, GW_PCI_ECAM_BASE, GW_PCI_ECAM_SIZE,
                      &gw_pci_ecam_ops, m->pci[0], errp) &&
           gw_machine_create_segments(m, errp);
}

#define DEV(field) offsetof(GwMachine, field)
#define FN(f)      ((void (*)(void *))(f))

/* In creation order; freed in reverse.  The vDPA functions are not here:
 * they come and go with hotplug (m->vdpa). */
static const GwMachineDevice platform[] = {
    {"serial", DEV(serial), create_serial, FN(gw_serial_reset),
     FN(gw_serial_free), &gw_serial_vmsd},
    {"acpi-pm", DEV(pm), create_pm, FN(gw_acpi_pm_reset), FN(gw_acpi_pm_free),
     &gw_acpi_pm_vmsd},
    /* Its reset completes pending unplugs. */
    {"acpi-pcihp", DEV(pcihp), create_pcihp, FN(gw_acpi_pcihp_reset),
     FN(gw_acpi_pcihp_free), &gw_acpi_pcihp_vmsd},
    {"pci", DEV(pci[0]), create_pci, NULL, FN(gw_pci_bus_free),
     &gw_pci_bus_vmsd},
};

const GwMachineDevice *
gw_machine_devices(size_t *n)
{
    *n = G_N_ELEMENTS(platform);
    return platform;
}

void *
gw_machine_device(GwMachine *m, const GwMachineDevice *d)
{
    return *(void **)((char *)m + d->offset);
}

static bool
create_devices(GwMachine *m, GError **errp)
{
    const GwConfig *cfg = m->cfg;

    m->pio = gw_bus_new("pio");
    m->mmio = gw_bus_new("mmio");
    m->chardev =
        gw_chardev_new(cfg->serial, cfg->serial_path, serial_in, m, errp);
    if (!m->chardev) {
        return false;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(platform); i++) {
        if (!platform[i].create(m, errp)) {
            return false;
        }
    }
    return true;
}

static void
free_devices(GwMachine *m)
{
    for (size_t i = G_N_ELEMENTS(platform); i-- > 0;) {
        void **dev = (void **)((char *)m + platform[i].offset);
        if (*dev) {
            platform[i].free(g_steal_pointer(dev));
        }
    }
}

/* What follows the kernel into guest RAM and vCPUs at boot and reset. */
static bool
load_boot_state(GwMachine *m, GError **errp)
{
    GwAcpiConfig acpi = {.n_cpus = m->cfg->boot_vcpus,
                         .ecam_base = GW_PCI_ECAM_BASE,
                         .n_pci_segments = gw_machine_n_segments(m),
                         .pci_hotplug = true};
    g_autoptr(GArray) endpoints = g_array_new(false, false, sizeof(uint32_t));

    gw_machine_iommu_acpi(m, &acpi, endpoints);
    return gw_acpi_build(m->mem, &acpi, errp) &&
           (!m->vcpus || gw_vcpus_load_boot(m->vcpus, m->mem, &m->boot, errp));
}

/* ---- the qtest accelerator: a test's accesses, on the main thread ---- */

static uint32_t
qt_pio_read(void *opaque, uint16_t port, unsigned size)
{
    GwMachine *m = opaque;
    uint64_t v;

    g_mutex_lock(&m->dev_lock);
    gw_bus_read(m->pio, port, size, &v);
    g_mutex_unlock(&m->dev_lock);
    return (uint32_t)v;
}

static void
qt_pio_write(void *opaque, uint16_t port, unsigned size, uint32_t val)
{
    GwMachine *m = opaque;

    g_mutex_lock(&m->dev_lock);
    gw_bus_write(m->pio, port, size, val);
    g_mutex_unlock(&m->dev_lock);
}

static uint64_t
qt_mem_read(void *opaque, uint64_t addr, unsigned size)
{
    GwMachine *m = opaque;
    uint64_t v = 0;

    if (gw_mem_read(m->mem, addr, &v, size)) {
        return v;
    }
    g_mutex_lock(&m->dev_lock);
    gw_bus_read(m->mmio, addr, size, &v);
    g_mutex_unlock(&m->dev_lock);
    return v;
}

/* As with KVM: RAM first, then an ioeventfd, then the MMIO bus. */
static void
qt_mem_write(void *opaque, uint64_t addr, unsigned size, uint64_t val)
{
    GwMachine *m = opaque;

    if (gw_mem_write(m->mem, addr, &val, size)) {
        return;
    }
    g_mutex_lock(&m->dev_lock);
    if (!gw_soft_irq_match_ioeventfd(m->soft_irq, addr, size)) {
        gw_bus_write(m->mmio, addr, size, val);
    }
    g_mutex_unlock(&m->dev_lock);
}

/* How many bytes from `at` (at most `left`) no device claims and are
 * not RAM: they are skipped in one go (reads as all ones). */
static size_t
unclaimed_run(GwMachine *m, uint64_t at, size_t left)
{
    uint64_t next;

    if (gw_mem_ptr(m->mem, at, 1)) {
        return 0;
    }
    g_mutex_lock(&m->dev_lock);
    next = gw_bus_next_claimed(m->mmio, at);
    g_mutex_unlock(&m->dev_lock);
    for (guint r = 0; r < m->mem->n_regions; r++) {
        uint64_t gpa = m->mem->regions[r].gpa;
        if (gpa > at && gpa < next) {
            next = gpa;
        }
    }
    return next - at < left ? (size_t)(next - at) : left;
}

/* RAM in one piece, devices byte by byte, what nobody claims skipped. */
static bool
qt_mem_rw(void *opaque, uint64_t addr, void *buf, size_t len, bool write)
{
    GwMachine *m = opaque;
    uint8_t *p = buf;

    if (write ? gw_mem_write(m->mem, addr, buf, len)
              : gw_mem_read(m->mem, addr, buf, len)) {
        return true;
    }
    for (size_t i = 0; i < len;) {
        size_t skip = unclaimed_run(m, addr + i, len - i);
        if (skip) {
            if (!write) {
                memset(p + i, 0xff, skip);
            }
            i += skip;
            continue;
        }
        if (write) {
            qt_mem_write(m, addr + i, 1, p[i]);
        } else {
            p[i] = (uint8_t)qt_mem_read(m, addr + i, 1);
        }
        i++;
    }
    return true;
}

static const GwQtestOps qtest_ops = {
    qt_pio_read, qt_pio_write, qt_mem_read, qt_mem_write, qt_mem_rw,
};

/* An MSI is a DWORD write: into RAM when it points there (tests poll). */
static void
soft_msi(gpointer opaque, uint64_t addr, uint32_t data)
{
    GwMachine *m = opaque;

    if (!gw_mem_write(m->mem, addr, &data, sizeof(data))) {
        g_debug("MSI 0x%x to 0x%" G_GINT64_MODIFIER "x: no RAM there", data,
                addr);
    }
}

static bool
create_accel(GwMachine *m, GError **errp)
{
    if (m->cfg->qtest_path) {
        m->soft_irq = gw_soft_irq_new(&m->dev_lock, soft_msi, m);
        m->irqchip = gw_soft_irq_chip(m->soft_irq);
        return true;
    }
    m->kvm = gw_kvm_new(errp);
    if (!m->kvm || !gw_kvm_add_memory(m->kvm, m->mem, errp)) {
        return false;
    }
    m->irqchip = gw_kvm_irqchip(m->kvm);
    return true;
}

/* Opening is cheap and catches bad paths before KVM is touched. */
static bool
open_vdpa_backends(GwMachine *m, GwVdpaSimRegistry *sims, GError **errp)
{
    for (guint i = 0; i < m->cfg->vdpa->len; i++) {
        const GwVdpaConfig *v = m->cfg->vdpa->pdata[i];
        GwVdpaBackend *b = gw_vdpa_open(sims, v->path, errp);
        if (!b) {
            g_prefix_error(errp, "--vdpa %s: ", v->id);
            return false;
        }
        g_ptr_array_add(m->vdpa_backends, b);
    }
    return true;
}

/* In command-line order, so each device gets the same slot every boot. */
static bool
create_vdpa_devices(GwMachine *m, GError **errp)
{
    for (guint i = 0; i < m->cfg->vdpa->len; i++) {
        const GwVdpaConfig *cfg = m->cfg->vdpa->pdata[i];
        GwPciBus *bus = gw_machine_segment(m, cfg->pci_segment, errp);
        GwVdpaDevice *d;

        if (!bus) {
            g_prefix_error(errp, "vdpa %s: ", cfg->id);
            return false;
        }
        d = gw_vdpa_device_new(cfg, m->vdpa_backends->pdata[i], m->mem,
                               m->irqchip, &m->dev_lock, errp);
        if (!d) {
            return false;
        }
        g_ptr_array_add(m->vdpa, d);
        if (!gw_pci_bus_plug(bus, gw_vdpa_device_pci(d), 0, errp) ||
            !gw_machine_attach_iommu(m, d, errp)) {
            return false;
        }
    }
    return true;
}

/* Every function off its bus (before the buses go). */
static void
unplug_all(GwMachine *m)
{
    for (guint i = 0; m->vdpa && i < m->vdpa->len; i++) {
        GwVdpaDevice *d = m->vdpa->pdata[i];
        GwPciDevice *pci = gw_vdpa_device_pci(d);
        if (pci->bus) {
            gw_pci_bus_unplug(pci->bus, pci);
        }
    }
}

GwMachine *
gw_machine_new(const GwConfig *cfg, GwVdpaSimRegistry *sims,
               const GwMachineHooks *hooks, gpointer opaque, GError **errp)
{
    g_autoptr(GwMachine) m = g_new0(GwMachine, 1);

    m->cfg = cfg;
    m->vdpa_backends =
        g_ptr_array_new_with_free_func((GDestroyNotify)gw_vdpa_backend_unref);
    m->vdpa =
        g_ptr_array_new_with_free_func((GDestroyNotify)gw_vdpa_device_free);
    m->ejected =
        g_ptr_array_new_with_free_func((GDestroyNotify)gw_vdpa_device_free);
    m->hooks = hooks;
    m->opaque = opaque;
    g_mutex_init(&m->dev_lock);
    m->mem = gw_mem_new(cfg->mem_size, cfg->hugepages, cfg->mem_shared, errp);
    if (!m->mem) {
        return NULL;
    }
    /* The kernel is checked before KVM is touched: bad input fails first. */
    if ((cfg->kernel && !gw_multiboot_load(m->mem, cfg->kernel, cfg->cmdline,
                                           &m->boot, errp)) ||
        !open_vdpa_backends(m, sims, errp)) {
        return NULL;
    }
    if (!create_accel(m, errp) || !create_devices(m, errp) ||
        !gw_machine_create_iommu(m, errp) || !create_vdpa_devices(m, errp)) {
        return NULL;
    }
    /* The devices hold their backends now: deleting one closes it. */
    g_ptr_array_set_size(m->vdpa_backends, 0);
    if (m->kvm) {
        m->vcpus = gw_vcpus_new(m->kvm, cfg->boot_vcpus, m->pio, m->mmio,
                                &m->dev_lock, &vcpu_hooks, m, errp);
        if (!m->vcpus) {
            return NULL;
        }
    }
    if (!load_boot_state(m, errp)) {
        return NULL;
    }
    if (cfg->qtest_path) {
        m->qtest = gw_qtest_new(cfg->qtest_path, &qtest_ops, m, errp);
        if (!m->qtest) {
            return NULL;
        }
    }
    return g_steal_pointer(&m);
}

void
gw_machine_free(GwMachine *m)
{
    if (!m) {
        return;
    }
    gw_qtest_free(m->qtest); /* first: no vCPU nor test may touch what */
    gw_vcpus_free(m->vcpus); /* follows */
    unplug_all(m);
    g_clear_pointer(&m->vdpa, g_ptr_array_unref);
    g_clear_pointer(&m->ejected, g_ptr_array_unref);
    g_clear_pointer(&m->vdpa_backends, g_ptr_array_unref);
    gw_machine_free_iommu(m);
    gw_machine_free_segments(m);
    free_devices(m);
    gw_chardev_free(m->chardev);
    gw_bus_free(m->pio);
    gw_bus_free(m->mmio);
    gw_kvm_free(m->kvm);
    gw_soft_irq_free(m->soft_irq);
    gw_mem_free(m->mem);
    g_mutex_clear(&m->dev_lock);
    g_free(m);
}

/* Devices do no work while the VM is stopped (vDPA: suspended). */
static void
set_devices_running(GwMachine *m, bool running)
{
    g_mutex_lock(&m->dev_lock);
    m->vm_stopped = !running;
    for (guint i = 0; i < m->vdpa->len; i++) {
        gw_vdpa_device_set_vm_running(m->vdpa->pdata[i], running);
    }
    g_mutex_unlock(&m->dev_lock);
}

bool
gw_machine_start(GwMachine *m, bool paused, GError **errp)
{
    if (paused) {
        set_devices_running(m, false);
    }
    return !m->vcpus || gw_vcpus_start(m->vcpus, paused, errp);
}

void
gw_machine_pause(GwMachine *m)
{
    if (m->vcpus) {
        gw_vcpus_pause(m->vcpus);
    }
    set_devices_running(m, false);
}

void
gw_machine_set_cpu_throttle(GwMachine *m, unsigned pct)
{
    if (m->vcpus) {
        gw_vcpus_set_throttle(m->vcpus, pct);
    }
}

void
gw_machine_resume(GwMachine *m)
{
    set_devices_running(m, true);
    if (m->vcpus) {
        gw_vcpus_resume(m->vcpus);
    }
}

bool
gw_machine_reset(GwMachine *m, GError **errp)
{
    g_mutex_lock(&m->dev_lock);
    for (size_t i = 0; i < G_N_ELEMENTS(platform); i++) {
        if (platform[i].reset) {
            platform[i].reset(gw_machine_device(m, &platform[i]));
        }
    }
    /* Before the kernel is reloaded: no device may DMA into it.  The
     * IOMMU first, so the devices' replay after theirs is of its new
     * (boot bypass) view. */
    gw_machine_reset_iommu(m);
    for (guint i = 0; i < m->vdpa->len; i++) {
        gw_vdpa_device_reset(m->vdpa->pdata[i]);
    }
    g_mutex_unlock(&m->dev_lock);
    return (!m->cfg->kernel ||
            gw_multiboot_load(m->mem, m->cfg->kernel, m->cfg->cmdline, &m->boot,
                              errp)) &&
           load_boot_state(m, errp);
}

void
gw_machine_power_button(GwMachine *m)
{
    g_mutex_lock(&m->dev_lock);
    gw_acpi_pm_press_power_button(m->pm);
    g_mutex_unlock(&m->dev_lock);
}

/* One bus's counts: {"unclaimed": n, "devices": [{device, base, …}]}. */
static json_object *
bus_exits(const GwBus *bus)
{
    uint64_t unclaimed;
    g_autoptr(GArray) st = gw_bus_stats(bus, &unclaimed);
    json_object *devs = json_object_new_array(), *o = json_object_new_object();

    for (guint i = 0; i < st->len; i++) {
        const GwBusRangeStats *r = &g_array_index(st, GwBusRangeStats, i);
        json_object *d = json_object_new_object();

        json_object_object_add(d, "device", json_object_new_string(r->name));
        json_object_object_add(d, "base", json_object_new_int64(r->base));
        json_object_object_add(d, "reads", json_object_new_int64(r->reads));
        json_object_object_add(d, "writes", json_object_new_int64(r->writes));
        json_object_array_add(devs, d);
    }
    json_object_object_add(o, "unclaimed", json_object_new_int64(unclaimed));
    json_object_object_add(o, "devices", devs);
    return o;
}

json_object *
gw_machine_query_exits(GwMachine *m)
{
    json_object *o = json_object_new_object();

    g_mutex_lock(&m->dev_lock);
    json_object_object_add(o, "pio", bus_exits(m->pio));
    json_object_object_add(o, "mmio", bus_exits(m->mmio));
    g_mutex_unlock(&m->dev_lock);
    if (m->soft_irq) { /* under KVM, ioeventfds never leave the kernel */
        json_object_object_add(
            o, "ioeventfd",
            json_object_new_int64(gw_soft_irq_ioeventfd_count(m->soft_irq)));
    }
    return o;
}

json_object *
gw_machine_query_cpus(GwMachine *m)
{
    return m->vcpus ? gw_vcpus_query(m->vcpus) : json_object_new_array();
}

GwGuestMemory *
gw_machine_memory(GwMachine *m)
{
    return m->mem;
}

/* ---- hotplug ---- */

static GwVdpaDevice *
find_vdpa(GwMachine *m, const char *id)
{
    for (guint i = 0; i < m->vdpa->len; i++) {
        if (g_strcmp0(gw_vdpa_device_config(m->vdpa->pdata[i])->id, id) == 0) {
            return m->vdpa->pdata[i];
        }
    }
    return NULL;
}

json_object *
gw_machine_query_virtio(GwMachine *m, const char *id)
{
    json_object *ret = NULL;

    g_mutex_lock(&m->dev_lock);
    if (id) {
        GwVdpaDevice *d = find_vdpa(m, id);
        ret = d ? gw_vdpa_device_query(d) : NULL;
    } else {
        ret = json_object_new_array();
        for (guint i = 0; i < m->vdpa->len; i++) {
            GwVdpaDevice *d = m->vdpa->pdata[i];
            json_object *o = json_object_new_object();
            json_object_object_add(
                o, "id", json_object_new_string(gw_vdpa_device_config(d)->id));
            json_object_object_add(o, "name",
                                   json_object_new_string(gw_virtio_device_name(
                                       gw_vdpa_device_type(d))));
            json_object_array_add(ret, o);
        }
    }
    g_mutex_unlock(&m->dev_lock);
    return ret;
}

GHashTable *
gw_machine_device_ids(GwMachine *m)
{
    GHashTable *ids =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GPtrArray *lists[] = {m->vdpa, m->ejected};

    g_mutex_lock(&m->dev_lock);
    for (size_t l = 0; l < G_N_ELEMENTS(lists); l++) {
        for (guint i = 0; i < lists[l]->len; i++) {
            g_hash_table_add(
                ids, g_strdup(gw_vdpa_device_config(lists[l]->pdata[i])->id));
        }
    }
    g_mutex_unlock(&m->dev_lock);
    return ids;
}

bool
gw_machine_has_device(GwMachine *m, const char *id)
{
    g_autoptr(GHashTable) ids = gw_machine_device_ids(m);
    return g_hash_table_contains(ids, id);
}

int
gw_machine_hotplug_vdpa(GwMachine *m, const GwVdpaConfig *cfg,
                        GwVdpaBackend *backend, const uint8_t *mac,
                        unsigned slot, GError **errp)
{
    g_autoptr(GwVdpaDevice) d = NULL;
    GwPciDevice *pci;
    GwPciBus *bus;
    bool plugged;

    if (!(bus = gw_machine_segment(m, cfg->pci_segment, errp))) {
        return -1;
    }
    d = gw_vdpa_device_new(cfg, backend, m->mem, m->irqchip, &m->dev_lock,
                           errp);
    if (!d || (mac && !gw_vdpa_device_set_mac(d, mac, errp))) {
        return -1;
    }
    pci = gw_vdpa_device_pci(d);
    g_mutex_lock(&m->dev_lock);
    plugged = gw_pci_bus_plug(bus, pci, slot, errp);
    if (plugged && !gw_machine_attach_iommu(m, d, errp)) {
        gw_pci_bus_unplug(bus, pci);
        plugged = false;
    }
    if (plugged) {
        if (m->vm_stopped) { /* it must not run before the VM does */
            gw_vdpa_device_set_vm_running(d, false);
        }
        gw_acpi_pcihp_plugged(m->pcihp, cfg->pci_segment, pci->slot);
        g_ptr_array_add(m->vdpa, g_steal_pointer(&d));
    }
    g_mutex_unlock(&m->dev_lock);
    return plugged ? pci->slot : -1;
}

bool
gw_machine_unplug_request(GwMachine *m, const char *id, GError **errp)
{
    GwVdpaDevice *d;
    bool asked = false;
    unsigned slot = 0, segment = 0;

    g_mutex_lock(&m->dev_lock);
    d = find_vdpa(m, id);
    if (d) {
        slot = gw_vdpa_device_pci(d)->slot;
        segment = gw_vdpa_device_config(d)->pci_segment;
        asked = gw_acpi_pcihp_request_unplug(m->pcihp, segment, slot);
    }
    g_mutex_unlock(&m->dev_lock);
    if (!d) {
        g_set_error(errp, GW_ERROR, GW_ERROR_NOT_FOUND, "Device '%s' not found",
                    id);
    } else if (!asked) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "Device '%s': slot %u of PCI segment %u is not "
                    "hot-pluggable",
                    id, slot, segment);
    }
    return asked;
}
