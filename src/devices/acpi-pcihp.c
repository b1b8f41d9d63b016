/*
 * ACPI PCI hotplug registers, QEMU's layout and semantics (hw/acpi/pcihp.c
 * with bridge support on: PCIU clears on read, SEL is stored).
 */
#include <godwit/acpi-pcihp.h>
#include <godwit/vmstate.h>

#define MAX_BSEL       256 /* QEMU's ACPI_PCIHP_MAX_HOTPLUG_BUS */
#define SLOT_BIT(slot) (1u << (slot))

struct GwAcpiPcihp {
    const GwAcpiPcihpHooks *hooks;
    gpointer opaque;
    unsigned n_buses;
    /* Per bus (segment).  PCIU: plug notices the guest has not read;
     * PCID: unplug requests it has not ejected; PCIRMV: hotpluggable. */
    uint32_t up[GW_ACPI_PCIHP_MAX_BUSES];
    uint32_t down[GW_ACPI_PCIHP_MAX_BUSES];
    uint32_t rmv[GW_ACPI_PCIHP_MAX_BUSES];
    uint32_t sel; /* SEL: the bus the registers show */
};

static uint32_t
read_bus(GwAcpiPcihp *p, unsigned bus, uint64_t offset)
{
    uint32_t val;

    switch (offset) {
    case GW_ACPI_PCIHP_PCIU:
        val = p->up[bus];
        p->up[bus] = 0;
        return val;
    case GW_ACPI_PCIHP_PCID:
        return p->down[bus];
    case GW_ACPI_PCIHP_PCIRMV:
        return p->rmv[bus];
    default:
        return 0;
    }
}

static uint64_t
pcihp_read(void *dev, uint64_t offset, unsigned size)
{
    GwAcpiPcihp *p = dev;

    if (size != 4 || offset & 3) {
        return (1ull << (size * 8)) - 1;
    }
    if (p->sel >= MAX_BSEL) {
        return 0;
    }
    if (offset == GW_ACPI_PCIHP_SEL) {
        return p->sel;
    }
    /* Other buses do not exist here: no slot on them plugs or unplugs. */
    return p->sel < p->n_buses ? read_bus(p, p->sel, offset) : 0;
}

/*
 * QEMU ejects the lowest slot written, pending request or not, so its
 * guest can remove any hotpluggable device on its own.  Here only a
 * request the host made can be completed.
 */
static void
eject(GwAcpiPcihp *p, unsigned bus, uint32_t slots)
{
    unsigned slot;

    if (bus >= p->n_buses || slots == 0) {
        return;
    }
    slot = (unsigned)__builtin_ctz(slots);
    if (!(p->down[bus] & SLOT_BIT(slot))) {
        g_debug("acpi-pcihp: eject of bus %u slot %u, not requested: "
                "ignored",
                bus, slot);
        return;
    }
    p->down[bus] &= ~SLOT_BIT(slot);
    p->up[bus] &= ~SLOT_BIT(slot);
    if (p->rmv[bus] & SLOT_BIT(slot)) {
        p->hooks->eject(p->opaque, bus, slot);
    }
}

static void
pcihp_write(void *dev, uint64_t offset, uint64_t value, unsigned size)
{
    GwAcpiPcihp *p = dev;

    if (size != 4 || offset & 3) {
        return;
    }
    if (offset == GW_ACPI_PCIHP_B0EJ) {
        eject(p, p->sel, (uint32_t)value);
    } else if (offset == GW_ACPI_PCIHP_SEL) {
        p->sel = (uint32_t)value;
    }
    /* AIDX: the acpi-index a write selects is always 0 here. */
}

const GwDeviceOps gw_acpi_pcihp_ops = {
    .name = "acpi-pcihp",
    .read = pcihp_read,
    .write = pcihp_write,
};

GwAcpiPcihp *
gw_acpi_pcihp_new(const GwAcpiPcihpHooks *h, gpointer opaque, unsigned n_buses)
{
    GwAcpiPcihp *p = g_new0(GwAcpiPcihp, 1);

    g_assert(n_buses >= 1 && n_buses <= GW_ACPI_PCIHP_MAX_BUSES);
    p->hooks = h;
    p->opaque = opaque;
    p->n_buses = n_buses;
    for (unsigned b = 0; b < GW_ACPI_PCIHP_MAX_BUSES; b++) {
        p->rmv[b] = ~SLOT_BIT(0);
    }
    return p;
}

void
gw_acpi_pcihp_free(GwAcpiPcihp *p)
{
    g_free(p);
}

void
gw_acpi_pcihp_plugged(GwAcpiPcihp *p, unsigned bus, unsigned slot)
{
    g_return_if_fail(bus < p->n_buses && slot > 0 && slot < 32);
    p->up[bus] |= SLOT_BIT(slot);
    p->hooks->gpe(p->opaque);
}

bool
gw_acpi_pcihp_request_unplug(GwAcpiPcihp *p, unsigned bus, unsigned slot)
{
    if (!gw_acpi_pcihp_hotpluggable(p, bus, slot)) {
        return false;
    }
    p->down[bus] |= SLOT_BIT(slot);
    p->hooks->gpe(p->opaque);
    return true;
}

bool
gw_acpi_pcihp_unplug_pending(const GwAcpiPcihp *p, unsigned bus, unsigned slot)
{
    return bus < p->n_buses && slot < 32 && (p->down[bus] & SLOT_BIT(slot));
}

void
gw_acpi_pcihp_set_hotpluggable(GwAcpiPcihp *p, unsigned bus, unsigned slot,
                               bool on)
{
    g_return_if_fail(bus < p->n_buses && slot < 32);
    if (on && slot != 0) {
        p->rmv[bus] |= SLOT_BIT(slot);
    } else {
        p->rmv[bus] &= ~SLOT_BIT(slot);
    }
}

bool
gw_acpi_pcihp_hotpluggable(const GwAcpiPcihp *p, unsigned bus, unsigned slot)
{
    return bus < p->n_buses && slot < 32 && (p->rmv[bus] & SLOT_BIT(slot));
}

void
gw_acpi_pcihp_reset(GwAcpiPcihp *p)
{
    p->sel = 0;
    for (unsigned b = 0; b < p->n_buses; b++) {
        while (p->down[b]) {
            eject(p, b, p->down[b]);
        }
        p->up[b] = 0;
    }
}

/* Bus 0's registers as version 1 named them, the other buses' after. */
#define BUS0(member)                                                           \
    {                                                                          \
        .name = #member, .offset = offsetof(GwAcpiPcihp, member),              \
        .size = sizeof(uint32_t), .count = 1, .version = 1,                    \
    }
#define OTHER_BUSES(member)                                                    \
    {                                                                          \
        .name = #member "-buses",                                              \
        .offset = offsetof(GwAcpiPcihp, member) + sizeof(uint32_t),            \
        .size = sizeof(uint32_t), .count = GW_ACPI_PCIHP_MAX_BUSES - 1,        \
        .version = 2,                                                          \
    }

static const GwVmsdField pcihp_fields[] = {
    BUS0(up),         BUS0(down),
    BUS0(rmv),        GW_VMSD_FIELD(GwAcpiPcihp, sel, 1),
    OTHER_BUSES(up),  OTHER_BUSES(down),
    OTHER_BUSES(rmv), GW_VMSD_END,
};

/* Nothing is derived from these registers: no hooks. */
const GwVmsd gw_acpi_pcihp_vmsd = {
    .name = "acpi-pcihp",
    .version = 2,
    .fields = pcihp_fields,
    .size = sizeof(GwAcpiPcihp),
};
