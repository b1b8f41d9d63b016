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
    uint32_t up;   /* PCIU: plug notices the guest has not read */
    uint32_t down; /* PCID: unplug requests the guest has not ejected */
    uint32_t rmv;  /* PCIRMV: hotpluggable slots */
    uint32_t sel;  /* SEL: the bus the registers show */
};

static uint32_t
read_bus0(GwAcpiPcihp *p, uint64_t offset)
{
    uint32_t val;

    switch (offset) {
    case GW_ACPI_PCIHP_PCIU:
        val = p->up;
        p->up = 0;
        return val;
    case GW_ACPI_PCIHP_PCID:
        return p->down;
    case GW_ACPI_PCIHP_PCIRMV:
        return p->rmv;
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
    /* Buses 1-255 do not exist here: no slot on them plugs or unplugs. */
    return p->sel == 0 ? read_bus0(p, offset) : 0;
}

/*
 * QEMU ejects the lowest slot written, pending request or not, so its
 * guest can remove any hotpluggable device on its own.  Here only a
 * request the host made can be completed.
 */
static void
eject(GwAcpiPcihp *p, uint32_t slots)
{
    unsigned slot;

    if (p->sel != 0 || slots == 0) {
        return;
    }
    slot = (unsigned)__builtin_ctz(slots);
    if (!(p->down & SLOT_BIT(slot))) {
        g_debug("acpi-pcihp: eject of slot %u, not requested: ignored", slot);
        return;
    }
    p->down &= ~SLOT_BIT(slot);
    p->up &= ~SLOT_BIT(slot);
    if (p->rmv & SLOT_BIT(slot)) {
        p->hooks->eject(p->opaque, slot);
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
        eject(p, (uint32_t)value);
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
gw_acpi_pcihp_new(const GwAcpiPcihpHooks *h, gpointer opaque)
{
    GwAcpiPcihp *p = g_new0(GwAcpiPcihp, 1);

    p->hooks = h;
    p->opaque = opaque;
    p->rmv = ~SLOT_BIT(0);
    return p;
}

void
gw_acpi_pcihp_free(GwAcpiPcihp *p)
{
    g_free(p);
}

void
gw_acpi_pcihp_plugged(GwAcpiPcihp *p, unsigned slot)
{
    g_return_if_fail(slot > 0 && slot < 32);
    p->up |= SLOT_BIT(slot);
    p->hooks->gpe(p->opaque);
}

bool
gw_acpi_pcihp_request_unplug(GwAcpiPcihp *p, unsigned slot)
{
    if (!gw_acpi_pcihp_hotpluggable(p, slot)) {
        return false;
    }
    p->down |= SLOT_BIT(slot);
    p->hooks->gpe(p->opaque);
    return true;
}

bool
gw_acpi_pcihp_unplug_pending(const GwAcpiPcihp *p, unsigned slot)
{
    return slot < 32 && (p->down & SLOT_BIT(slot));
}

void
gw_acpi_pcihp_set_hotpluggable(GwAcpiPcihp *p, unsigned slot, bool on)
{
    g_return_if_fail(slot < 32);
    if (on && slot != 0) {
        p->rmv |= SLOT_BIT(slot);
    } else {
        p->rmv &= ~SLOT_BIT(slot);
    }
}

bool
gw_acpi_pcihp_hotpluggable(const GwAcpiPcihp *p, unsigned slot)
{
    return slot < 32 && (p->rmv & SLOT_BIT(slot));
}

void
gw_acpi_pcihp_reset(GwAcpiPcihp *p)
{
    p->sel = 0;
    while (p->down) {
        eject(p, p->down);
    }
    p->up = 0;
}

static const GwVmsdField pcihp_fields[] = {
    GW_VMSD_FIELD(GwAcpiPcihp, up, 1),
    GW_VMSD_FIELD(GwAcpiPcihp, down, 1),
    GW_VMSD_FIELD(GwAcpiPcihp, rmv, 1),
    GW_VMSD_FIELD(GwAcpiPcihp, sel, 1),
    GW_VMSD_END,
};

/* Nothing is derived from these registers: no hooks. */
const GwVmsd gw_acpi_pcihp_vmsd = {
    .name = "acpi-pcihp",
    .version = 1,
    .fields = pcihp_fields,
    .size = sizeof(GwAcpiPcihp),
};
