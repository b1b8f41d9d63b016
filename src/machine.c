/*
 * The KVM board.  See include/godwit/machine.h for threads and locking.
 */
#include <godwit/acpi-pm.h>
#include <godwit/boot.h>
#include <godwit/bus.h>
#include <godwit/chardev.h>
#include <godwit/kvm.h>
#include <godwit/machine.h>
#include <godwit/pci.h>
#include <godwit/vdpa-device.h>
#include <godwit/serial.h>
#include <godwit/util.h>
#include <godwit/vcpu.h>

struct GwMachine {
    const GwConfig *cfg;
    const GwMachineHooks *hooks;
    gpointer opaque;
    GMutex dev_lock;
    GwKvm *kvm;
    GwGuestMemory *mem;
    GwBus *pio, *mmio;
    GwChardev *chardev;
    GwSerial *serial;
    GwAcpiPm *pm;
    GwPciBus *pci;
    GPtrArray *vdpa_backends; /* GwVdpaBackend *, one per --vdpa */
    GPtrArray *vdpa;          /* GwVdpaDevice * */
    GwVcpus *vcpus;
    GwBootImage boot;
};

/* A guest-driven event on its way from a vCPU thread to the main thread. */
typedef struct {
    GwMachine *m;
    enum { EV_POWEROFF, EV_RESET, EV_FATAL } kind;
    char *why;
} Event;

static gboolean
deliver(gpointer data)
{
    Event *ev = data;
    const GwMachineHooks *h = ev->m->hooks;

    if (ev->kind == EV_POWEROFF) {
        h->poweroff(ev->m->opaque);
    } else if (ev->kind == EV_RESET) {
        h->reset(ev->m->opaque);
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

static void
serial_irq(gpointer opaque, bool level)
{
    GwMachine *m = opaque;
    gw_kvm_set_irq(m->kvm, GW_SERIAL_COM1_IRQ, level);
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
    GwMachine *m = opaque;
    gw_kvm_set_irq(m->kvm, GW_ACPI_SCI_IRQ, level);
}

static const GwAcpiPmHooks pm_hooks = {pm_sleep, pm_reset, pm_sci};

static void
vcpu_fatal(gpointer opaque, unsigned cpu, const char *why)
{
    g_autofree char *what = g_strdup_printf("vCPU %u: %s", cpu, why);
    post(opaque, EV_FATAL, what);
}

static const GwVcpuHooks vcpu_hooks = {vcpu_fatal};

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
    m->serial = gw_serial_new(serial_out, serial_irq, m);
    m->pm = gw_acpi_pm_new(&pm_hooks, m);
    m->pci = gw_pci_bus_new(0, m->mmio);
    return gw_bus_add(m->pio, GW_SERIAL_COM1_BASE, GW_SERIAL_PORTS,
                      &gw_serial_ops, m->serial, errp) &&
           gw_bus_add(m->pio, GW_ACPI_PM_BASE, GW_ACPI_PM_LEN, &gw_acpi_pm_ops,
                      m->pm, errp) &&
           gw_bus_add(m->pio, GW_PCI_CONFIG_ADDR, 4, &gw_pci_cf8_ops, m->pci,
                      errp) &&
           gw_bus_add(m->pio, GW_PCI_CONFIG_DATA, 4, &gw_pci_cfc_ops, m->pci,
                      errp) &&
           gw_bus_add(m->mmio, GW_PCI_ECAM_BASE, GW_PCI_ECAM_SIZE,
                      &gw_pci_ecam_ops, m->pci, errp);
}

/* What follows the kernel into guest RAM and vCPUs at boot and reset. */
static bool
load_boot_state(GwMachine *m, GError **errp)
{
    GwAcpiConfig acpi = {.n_cpus = m->cfg->boot_vcpus,
                         .ecam_base = GW_PCI_ECAM_BASE};

    return gw_acpi_build(m->mem, &acpi, errp) &&
           gw_vcpus_load_boot(m->vcpus, m->mem, &m->boot, errp);
}

/* Opening is cheap and catches bad paths before KVM is touched. */
static bool
open_vdpa_backends(GwMachine *m, GwVdpaSimRegistry *sims, GError **errp)
{
    for (guint i = 0; i < m->cfg->vdpa->len; i++) {
        const GwVdpaConfig *v = m->cfg->vdpa->pdata[i];
        g_autoptr(GError) err = NULL;
        GwVdpaBackend *b = gw_vdpa_open(sims, v->path, &err);
        if (!b) {
            g_set_error(errp, GW_ERROR, err->code, "--vdpa %s: %s", v->id,
                        err->message);
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
        GwVdpaDevice *d = gw_vdpa_device_new(
            m->cfg->vdpa->pdata[i], m->vdpa_backends->pdata[i], m->mem,
            gw_kvm_irqchip(m->kvm), &m->dev_lock, errp);
        if (!d) {
            return false;
        }
        g_ptr_array_add(m->vdpa, d);
        if (!gw_pci_bus_plug(m->pci, gw_vdpa_device_pci(d), 0, errp)) {
            return false;
        }
    }
    return true;
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
    m->hooks = hooks;
    m->opaque = opaque;
    g_mutex_init(&m->dev_lock);
    m->mem = gw_mem_new(cfg->mem_size, cfg->hugepages, cfg->mem_shared, errp);
    if (!m->mem) {
        return NULL;
    }
    /* The kernel is checked before KVM is touched: bad input fails first. */
    if (!gw_multiboot_load(m->mem, cfg->kernel, cfg->cmdline, &m->boot, errp) ||
        !open_vdpa_backends(m, sims, errp)) {
        return NULL;
    }
    m->kvm = gw_kvm_new(errp);
    if (!m->kvm || !gw_kvm_add_memory(m->kvm, m->mem, errp) ||
        !create_devices(m, errp) || !create_vdpa_devices(m, errp)) {
        return NULL;
    }
    m->vcpus = gw_vcpus_new(m->kvm, cfg->boot_vcpus, m->pio, m->mmio,
                            &m->dev_lock, &vcpu_hooks, m, errp);
    if (!m->vcpus || !load_boot_state(m, errp)) {
        return NULL;
    }
    return g_steal_pointer(&m);
}

void
gw_machine_free(GwMachine *m)
{
    if (!m) {
        return;
    }
    gw_vcpus_free(m->vcpus); /* first: no vCPU may touch what follows */
    for (guint i = 0; m->vdpa && i < m->vdpa->len; i++) {
        gw_pci_bus_unplug(m->pci, gw_vdpa_device_pci(m->vdpa->pdata[i]));
    }
    g_clear_pointer(&m->vdpa, g_ptr_array_unref);
    g_clear_pointer(&m->vdpa_backends, g_ptr_array_unref);
    gw_pci_bus_free(m->pci);
    gw_acpi_pm_free(m->pm);
    gw_serial_free(m->serial);
    gw_chardev_free(m->chardev);
    gw_bus_free(m->pio);
    gw_bus_free(m->mmio);
    gw_kvm_free(m->kvm);
    gw_mem_free(m->mem);
    g_mutex_clear(&m->dev_lock);
    g_free(m);
}

bool
gw_machine_start(GwMachine *m, bool paused, GError **errp)
{
    return gw_vcpus_start(m->vcpus, paused, errp);
}

void
gw_machine_pause(GwMachine *m)
{
    gw_vcpus_pause(m->vcpus);
}

void
gw_machine_resume(GwMachine *m)
{
    gw_vcpus_resume(m->vcpus);
}

bool
gw_machine_reset(GwMachine *m, GError **errp)
{
    g_mutex_lock(&m->dev_lock);
    gw_serial_reset(m->serial);
    gw_acpi_pm_reset(m->pm);
    /* Before the kernel is reloaded: no device may DMA into it. */
    for (guint i = 0; i < m->vdpa->len; i++) {
        gw_vdpa_device_reset(m->vdpa->pdata[i]);
    }
    g_mutex_unlock(&m->dev_lock);
    return gw_multiboot_load(m->mem, m->cfg->kernel, m->cfg->cmdline, &m->boot,
                             errp) &&
           load_boot_state(m, errp);
}

void
gw_machine_power_button(GwMachine *m)
{
    g_mutex_lock(&m->dev_lock);
    gw_acpi_pm_press_power_button(m->pm);
    g_mutex_unlock(&m->dev_lock);
}

json_object *
gw_machine_query_pci(GwMachine *m)
{
    json_object *bus = json_object_new_object();
    json_object *list = json_object_new_array();

    g_mutex_lock(&m->dev_lock);
    json_object_object_add(bus, "bus", json_object_new_int(0));
    json_object_object_add(bus, "devices", gw_pci_bus_query(m->pci));
    g_mutex_unlock(&m->dev_lock);
    json_object_array_add(list, bus);
    return list;
}

json_object *
gw_machine_query_cpus(GwMachine *m)
{
    return gw_vcpus_query(m->vcpus);
}

GwGuestMemory *
gw_machine_memory(GwMachine *m)
{
    return m->mem;
}
