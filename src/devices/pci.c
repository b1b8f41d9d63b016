/*
 * PCI bus 0 of one segment: host bridge, config access, BAR mapping.
 * See include/godwit/pci.h.  Runs with the VM's device lock held.
 */
#include <string.h>
#include <godwit/log.h>
#include <godwit/pci.h>
#include <godwit/util.h>
#include <godwit/vmstate.h>

#define HOLE_END 0xFEC00000ull /* IOAPIC and above are not for BARs */

struct GwPciBus {
    uint16_t segment;
    GwPciSegmentLayout layout;
    GwBus *mmio;
    uint32_t cf8;
    GwPciDevice host;
    GwPciDevice *slots[GW_PCI_SLOTS];
};

static const GwPciDeviceOps host_ops = {.name = "pci-host"};

static void
put16(GwPciDevice *d, unsigned off, uint16_t v)
{
    d->config[off] = (uint8_t)v;
    d->config[off + 1] = (uint8_t)(v >> 8);
}

static void
put32(GwPciDevice *d, unsigned off, uint32_t v)
{
    put16(d, off, (uint16_t)v);
    put16(d, off + 2, (uint16_t)(v >> 16));
}

static uint32_t
get32(const GwPciDevice *d, unsigned off)
{
    return gw_pci_get16(d, off) | (uint32_t)gw_pci_get16(d, off + 2) << 16;
}

void
gw_pci_device_init(GwPciDevice *dev, const GwPciDeviceOps *ops, uint16_t vendor,
                   uint16_t device, uint32_t class_code, uint8_t revision,
                   uint16_t subsys_vendor, uint16_t subsys_id)
{
    memset(dev, 0, sizeof(*dev));
    dev->ops = ops;
    put16(dev, 0x00, vendor);
    put16(dev, 0x02, device);
    put32(dev, 0x08, class_code << 8 | revision);
    put16(dev, 0x2c, subsys_vendor);
    put16(dev, 0x2e, subsys_id);
    dev->wmask[0x04] = 0x07; /* command: I/O, memory, bus master */
    dev->wmask[0x05] = 0x04; /* INTx disable */
    dev->wmask[0x0c] = 0xff; /* cache line size */
    dev->wmask[0x3c] = 0xff; /* interrupt line */
    dev->next_cap = 0x40;
}

void
gw_pci_device_set_bar(GwPciDevice *dev, unsigned n, uint64_t size,
                      const GwDeviceOps *ops, void *opaque)
{
    uint32_t mask = ~(uint32_t)(size - 1) & ~0xfu;

    g_assert(n < GW_PCI_MAX_BARS && size >= 4096 && !(size & (size - 1)));
    g_assert(size <= GW_PCI_SLOT_WINDOW);
    dev->bars[n] = (GwPciBar){.size = size, .ops = ops, .opaque = opaque};
    memcpy(&dev->wmask[0x10 + 4 * n], &mask, 4);
}

unsigned
gw_pci_device_add_cap(GwPciDevice *dev, uint8_t cap_id, const uint8_t *body,
                      unsigned len, const uint8_t *wmask)
{
    unsigned at = dev->next_cap;

    g_assert(len >= 2 && at + len <= 256);
    memcpy(&dev->config[at], body, len);
    if (wmask) {
        memcpy(&dev->wmask[at], wmask, len);
    }
    dev->config[at] = cap_id;
    dev->config[at + 1] = dev->config[0x34]; /* new caps go first */
    dev->config[0x34] = (uint8_t)at;
    put16(dev, 0x06, gw_pci_get16(dev, 0x06) | PCI_STATUS_CAP_LIST);
    dev->next_cap = (uint8_t)((at + len + 3) & ~3u);
    return at;
}

/* Maps or unmaps each BAR to follow its register and the command bit. */
static void
update_bars(GwPciDevice *dev)
{
    bool decode = gw_pci_get16(dev, 0x04) & PCI_COMMAND_MEMORY;

    for (unsigned n = 0; n < GW_PCI_MAX_BARS; n++) {
        GwPciBar *bar = &dev->bars[n];
        uint64_t addr = get32(dev, 0x10 + 4 * n) & ~0xfull;
        bool want = decode && bar->size && addr >= GW_PCI_MMIO_BASE &&
                    addr + bar->size <= HOLE_END;
        g_autoptr(GError) err = NULL;

        if (bar->mapped_at && (!want || bar->mapped_at != addr)) {
            gw_bus_remove(dev->bus->mmio, bar->mapped_at);
            bar->mapped_at = 0;
        }
        if (want && !bar->mapped_at) {
            if (gw_bus_add(dev->bus->mmio, addr, bar->size, bar->ops,
                           bar->opaque, &err)) {
                bar->mapped_at = addr;
            } else {
                gw_warning_ratelimited("pci %02x.0: BAR %u not mapped: %s",
                                       dev->slot, n, err->message);
            }
        }
    }
}

void
gw_pci_segment_layout(uint16_t segment, GwPciSegmentLayout *out)
{
    g_assert(segment < GW_PCI_MAX_SEGMENTS);
    out->ecam = GW_PCI_ECAM_BASE + segment * GW_PCI_ECAM_SIZE;
    if (segment == 0) {
        out->mmio_base = GW_PCI_MMIO_BASE;
        out->slot_window = GW_PCI_SLOT_WINDOW;
    } else {
        out->mmio_base =
            GW_PCI_SEG_MMIO_BASE + (segment - 1) * GW_PCI_SEG_MMIO_SIZE;
        out->slot_window = GW_PCI_SEG_MMIO_SIZE / GW_PCI_SLOTS;
    }
}

GwPciBus *
gw_pci_bus_new(uint16_t segment, GwBus *mmio)
{
    GwPciBus *bus = g_new0(GwPciBus, 1);

    bus->segment = segment;
    gw_pci_segment_layout(segment, &bus->layout);
    bus->mmio = mmio;
    /* Red Hat's generic PCIe host bridge id, as QEMU's gpex uses. */
    gw_pci_device_init(&bus->host, &host_ops, 0x1b36, 0x0008, 0x060000, 0,
                       0x1af4, 0x1100);
    bus->host.bus = bus;
    bus->slots[0] = &bus->host;
    return bus;
}

void
gw_pci_bus_free(GwPciBus *bus)
{
    g_free(bus);
}

uint16_t
gw_pci_bus_segment(const GwPciBus *bus)
{
    return bus->segment;
}

/* Bytes `dev`'s BARs take in a slot window, in order. */
static uint64_t
bars_size(const GwPciDevice *dev)
{
    uint64_t total = 0;

    for (unsigned n = 0; n < GW_PCI_MAX_BARS; n++) {
        total += dev->bars[n].size;
    }
    return total;
}

/* Power-on BAR addresses: the slot's window, BARs in order (each BAR is
 * a power of two and the window's start a multiple of the largest). */
static void
assign_bars(GwPciDevice *dev)
{
    const GwPciSegmentLayout *l = &dev->bus->layout;
    uint64_t base = l->mmio_base + dev->slot * l->slot_window;
    uint64_t window = base;

    for (unsigned n = 0; n < GW_PCI_MAX_BARS; n++) {
        if (dev->bars[n].size) {
            put32(dev, 0x10 + 4 * n, (uint32_t)window);
            window += dev->bars[n].size;
        }
    }
    g_assert(window <= base + l->slot_window);
}

void
gw_pci_device_reset(GwPciDevice *dev)
{
    put16(dev, 0x04, 0); /* no decoding until the guest enables it */
    assign_bars(dev);
    update_bars(dev);
}

bool
gw_pci_bus_free_slot(GwPciBus *bus, unsigned *slot, GError **errp)
{
    if (*slot == 0) {
        for (*slot = 1; *slot < GW_PCI_SLOTS && bus->slots[*slot]; (*slot)++) {
        }
    }
    if (*slot >= GW_PCI_SLOTS) {
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                    "PCI segment %u: no free slot on bus 0", bus->segment);
        return false;
    }
    if (bus->slots[*slot]) {
        g_set_error(errp, GW_ERROR, GW_ERROR_EXISTS,
                    "PCI segment %u: slot %u is taken", bus->segment, *slot);
        return false;
    }
    return true;
}

bool
gw_pci_bus_plug(GwPciBus *bus, GwPciDevice *dev, unsigned slot, GError **errp)
{
    if (!gw_pci_bus_free_slot(bus, &slot, errp)) {
        return false;
    }
    if (bars_size(dev) > bus->layout.slot_window) {
        g_set_error(
            errp, GW_ERROR, GW_ERROR_INVALID,
            "PCI segment %u: the device's BARs (%" G_GUINT64_FORMAT
            " KiB) do not fit a slot window of %" G_GUINT64_FORMAT " KiB",
            bus->segment, bars_size(dev) >> 10, bus->layout.slot_window >> 10);
        return false;
    }
    dev->bus = bus;
    dev->slot = (uint8_t)slot;
    assign_bars(dev);
    bus->slots[slot] = dev;
    return true;
}

void
gw_pci_bus_unplug(GwPciBus *bus, GwPciDevice *dev)
{
    put16(dev, 0x04, 0);
    update_bars(dev);
    bus->slots[dev->slot] = NULL;
    dev->bus = NULL;
}

GwPciDevice *
gw_pci_bus_find(GwPciBus *bus, const char *id)
{
    for (unsigned s = 1; s < GW_PCI_SLOTS; s++) {
        if (bus->slots[s] && g_strcmp0(bus->slots[s]->id, id) == 0) {
            return bus->slots[s];
        }
    }
    return NULL;
}

static GwPciDevice *
lookup(GwPciBus *bus, unsigned devfn)
{
    /* Single-function devices only: function 0 of each slot. */
    return (devfn & 7) ? NULL : bus->slots[devfn >> 3];
}

uint32_t
gw_pci_config_read(GwPciBus *bus, unsigned devfn, unsigned offset,
                   unsigned size)
{
    GwPciDevice *dev = lookup(bus, devfn);
    uint32_t v = 0;

    if (!dev || offset + size > GW_PCI_CONFIG_SIZE) {
        return size == 4 ? 0xffffffffu : (1u << (size * 8)) - 1;
    }
    if (dev->ops->config_read) {
        dev->ops->config_read(dev, offset, size);
    }
    memcpy(&v, &dev->config[offset], size);
    return v;
}

void
gw_pci_config_write(GwPciBus *bus, unsigned devfn, unsigned offset,
                    unsigned size, uint32_t value)
{
    GwPciDevice *dev = lookup(bus, devfn);

    if (!dev || offset + size > GW_PCI_CONFIG_SIZE) {
        return;
    }
    for (unsigned i = 0; i < size; i++) {
        uint8_t m = dev->wmask[offset + i];
        uint8_t b = (uint8_t)(value >> (8 * i));
        dev->config[offset + i] = (dev->config[offset + i] & ~m) | (b & m);
    }
    if (offset < 0x28 && offset + size > 0x04) {
        update_bars(dev); /* command or a BAR changed */
    }
    if (dev->ops->config_written) {
        dev->ops->config_written(dev, offset, size);
    }
}

/* ---- 0xCF8/0xCFC and ECAM ---- */

static uint64_t
cf8_read(void *opaque, uint64_t off, unsigned size)
{
    GwPciBus *bus = opaque;
    return size == 4 ? bus->cf8 : 0xffffffffu;
}

static void
cf8_write(void *opaque, uint64_t off, uint64_t value, unsigned size)
{
    GwPciBus *bus = opaque;
    if (size == 4) {
        bus->cf8 = (uint32_t)value;
    }
}

/* The devfn and register 0xCF8 selects, or -1 if it selects nothing. */
static int
cf8_target(GwPciBus *bus, unsigned *reg)
{
    uint32_t a = bus->cf8;

    if (!(a & 0x80000000u) || ((a >> 16) & 0xff) != 0) {
        return -1;
    }
    *reg = (a & 0xfc) | ((a >> 16) & 0xf00); /* AMD-style ext. registers */
    return (a >> 8) & 0xff;
}

static uint64_t
cfc_read(void *opaque, uint64_t off, unsigned size)
{
    GwPciBus *bus = opaque;
    unsigned reg;
    int devfn = cf8_target(bus, &reg);

    if (devfn < 0 || off + size > 4) {
        return size == 4 ? 0xffffffffu : (1u << (size * 8)) - 1;
    }
    return gw_pci_config_read(bus, devfn, reg + off, size);
}

static void
cfc_write(void *opaque, uint64_t off, uint64_t value, unsigned size)
{
    GwPciBus *bus = opaque;
    unsigned reg;
    int devfn = cf8_target(bus, &reg);

    if (devfn >= 0 && off + size <= 4) {
        gw_pci_config_write(bus, devfn, reg + off, size, (uint32_t)value);
    }
}

static uint64_t
ecam_read(void *opaque, uint64_t off, unsigned size)
{
    if (size > 4) {
        return UINT64_MAX;
    }
    return gw_pci_config_read(opaque, (off >> 12) & 0xff, off & 0xfff, size);
}

static void
ecam_write(void *opaque, uint64_t off, uint64_t value, unsigned size)
{
    if (size <= 4) {
        gw_pci_config_write(opaque, (off >> 12) & 0xff, off & 0xfff, size,
                            (uint32_t)value);
    }
}

const GwDeviceOps gw_pci_cf8_ops = {"pci-cf8", cf8_read, cf8_write};
const GwDeviceOps gw_pci_cfc_ops = {"pci-cfc", cfc_read, cfc_write};
const GwDeviceOps gw_pci_ecam_ops = {"pci-ecam", ecam_read, ecam_write};

/* ---- migration ---- */

/*
 * Config space is all of a function's state: BAR sizes, handlers and
 * write masks come from the device's construction, and where a BAR is
 * mapped follows from its register and the command register, so
 * post_load maps them as the guest's config write did on the source.
 */
static bool
device_post_load(void *obj, unsigned version, GError **errp)
{
    GwPciDevice *dev = obj;

    if (!dev->bus) {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT,
                    "device pci-device: loaded into a function that is not "
                    "plugged");
        return false;
    }
    update_bars(dev);
    return true;
}

static const GwVmsdField device_fields[] = {
    GW_VMSD_ARRAY(GwPciDevice, config, 1),
    GW_VMSD_END,
};

const GwVmsd gw_pci_device_vmsd = {
    .name = "pci-device",
    .version = 1,
    .fields = device_fields,
    .post_load = device_post_load,
    .size = sizeof(GwPciDevice),
};

static const GwVmsdField bus_fields[] = {
    GW_VMSD_FIELD(GwPciBus, cf8, 1),
    GW_VMSD_STRUCT(GwPciBus, host, 1, &gw_pci_device_vmsd),
    GW_VMSD_END,
};

const GwVmsd gw_pci_bus_vmsd = {
    .name = "pci-bus",
    .version = 1,
    .fields = bus_fields,
    .size = sizeof(GwPciBus),
};

/* ---- query-pci ---- */

static json_object *
device_info(GwPciDevice *d)
{
    json_object *o = json_object_new_object();
    json_object *id = json_object_new_object();
    json_object *cls = json_object_new_object();
    json_object *regions = json_object_new_array();

    json_object_object_add(o, "bus", json_object_new_int(0));
    json_object_object_add(o, "slot", json_object_new_int(d->slot));
    json_object_object_add(o, "function", json_object_new_int(0));
    json_object_object_add(cls, "class",
                           json_object_new_int(gw_pci_get16(d, 0x0a)));
    json_object_object_add(o, "class_info", cls);
    json_object_object_add(id, "vendor",
                           json_object_new_int(gw_pci_get16(d, 0x00)));
    json_object_object_add(id, "device",
                           json_object_new_int(gw_pci_get16(d, 0x02)));
    json_object_object_add(id, "subsystem-vendor",
                           json_object_new_int(gw_pci_get16(d, 0x2c)));
    json_object_object_add(id, "subsystem",
                           json_object_new_int(gw_pci_get16(d, 0x2e)));
    json_object_object_add(o, "id", id);
    json_object_object_add(o, "irq_pin", json_object_new_int(d->config[0x3d]));
    json_object_object_add(o, "qdev_id",
                           json_object_new_string(d->id ? d->id : ""));
    for (unsigned n = 0; n < GW_PCI_MAX_BARS; n++) {
        json_object *r;
        if (!d->bars[n].size) {
            continue;
        }
        r = json_object_new_object();
        json_object_object_add(r, "bar", json_object_new_int(n));
        json_object_object_add(r, "type", json_object_new_string("memory"));
        json_object_object_add(
            r, "address",
            json_object_new_int64(get32(d, 0x10 + 4 * n) & ~0xfu));
        json_object_object_add(r, "size",
                               json_object_new_int64(d->bars[n].size));
        json_object_object_add(r, "prefetch", json_object_new_boolean(false));
        json_object_object_add(r, "mem_type_64",
                               json_object_new_boolean(false));
        json_object_array_add(regions, r);
    }
    json_object_object_add(o, "regions", regions);
    return o;
}

json_object *
gw_pci_bus_query(GwPciBus *bus)
{
    json_object *devs = json_object_new_array();

    for (unsigned s = 0; s < GW_PCI_SLOTS; s++) {
        if (bus->slots[s]) {
            json_object_array_add(devs, device_info(bus->slots[s]));
        }
    }
    return devs;
}
