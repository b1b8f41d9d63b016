#include <godwit/acpi-pm.h>
#include <godwit/boot.h>
#include <godwit/vmstate.h>

#define PWRBTN     (1u << 8)
#define SCI_EN     (1u << 0)
#define SLP_EN     (1u << 13)
#define SLP_TYP(v) (((v) >> 10) & 7u)

struct GwAcpiPm {
    const GwAcpiPmHooks *hooks;
    gpointer opaque;
    uint16_t sts, en, cnt;
    uint16_t gpe_sts, gpe_en;
    bool sci;
};

static void
update_sci(GwAcpiPm *pm)
{
    bool level = (pm->sts & pm->en) || (pm->gpe_sts & pm->gpe_en);

    if (level != pm->sci) {
        pm->sci = level;
        pm->hooks->sci(pm->opaque, level);
    }
}

static uint64_t
pm_read(void *dev, uint64_t offset, unsigned size)
{
    GwAcpiPm *pm = dev;
    uint32_t block = 0;

    switch (offset & ~1u) {
    case GW_ACPI_PM1_STS - GW_ACPI_PM_BASE:
        block = pm->sts | (uint32_t)pm->en << 16;
        break;
    case GW_ACPI_PM1_EN - GW_ACPI_PM_BASE:
        block = pm->en;
        break;
    case GW_ACPI_PM1_CNT - GW_ACPI_PM_BASE:
        block = pm->cnt | SCI_EN;
        break;
    default:
        return 0;
    }
    block >>= (offset & 1) * 8;
    return size >= 4 ? block : block & ((1u << (size * 8)) - 1);
}

static void
pm_write(void *dev, uint64_t offset, uint64_t value, unsigned size)
{
    GwAcpiPm *pm = dev;
    uint16_t v = (uint16_t)value;

    if (offset == GW_ACPI_PM1_STS - GW_ACPI_PM_BASE) {
        pm->sts &= (uint16_t)~v; /* write 1 to clear */
        if (size == 4) {
            pm->en = (uint16_t)(value >> 16);
        }
    } else if (offset == GW_ACPI_PM1_EN - GW_ACPI_PM_BASE) {
        pm->en = v;
    } else if (offset == GW_ACPI_PM1_CNT - GW_ACPI_PM_BASE) {
        pm->cnt = v & (uint16_t)~SLP_EN;
        if (v & SLP_EN) {
            pm->hooks->sleep(pm->opaque, SLP_TYP(v));
        }
    } else if (offset == GW_ACPI_RESET - GW_ACPI_PM_BASE &&
               (value & 0xff) == GW_ACPI_RESET_VALUE) {
        pm->hooks->reset(pm->opaque);
    }
    update_sci(pm);
}

const GwDeviceOps gw_acpi_pm_ops = {
    .name = "acpi-pm",
    .read = pm_read,
    .write = pm_write,
};

static uint64_t
gpe_read(void *dev, uint64_t offset, unsigned size)
{
    GwAcpiPm *pm = dev;
    uint64_t block = pm->gpe_sts | (uint64_t)pm->gpe_en << 16;

    block >>= offset * 8;
    return size >= 4 ? block & 0xffffffffu : block & ((1u << (size * 8)) - 1);
}

/* QEMU's GPE block is byte-wide; wider accesses act byte by byte. */
static void
gpe_write_byte(GwAcpiPm *pm, unsigned offset, uint8_t b)
{
    unsigned shift = (offset & 1) * 8;

    if (offset < 2) {
        pm->gpe_sts &= (uint16_t) ~(b << shift); /* write 1 to clear */
    } else if (offset < 4) {
        pm->gpe_en = (uint16_t)((pm->gpe_en & ~(0xffu << shift)) | b << shift);
    }
}

static void
gpe_write(void *dev, uint64_t offset, uint64_t value, unsigned size)
{
    GwAcpiPm *pm = dev;

    for (unsigned i = 0; i < size; i++) {
        gpe_write_byte(pm, (unsigned)offset + i, (uint8_t)(value >> (i * 8)));
    }
    update_sci(pm);
}

const GwDeviceOps gw_acpi_gpe_ops = {
    .name = "acpi-gpe",
    .read = gpe_read,
    .write = gpe_write,
};

GwAcpiPm *
gw_acpi_pm_new(const GwAcpiPmHooks *hooks, gpointer opaque)
{
    GwAcpiPm *pm = g_new0(GwAcpiPm, 1);
    pm->hooks = hooks;
    pm->opaque = opaque;
    return pm;
}

void
gw_acpi_pm_free(GwAcpiPm *pm)
{
    g_free(pm);
}

void
gw_acpi_pm_reset(GwAcpiPm *pm)
{
    pm->sts = pm->en = pm->cnt = 0;
    pm->gpe_sts = pm->gpe_en = 0;
    update_sci(pm);
}

void
gw_acpi_pm_set_gpe(GwAcpiPm *pm, unsigned bit)
{
    g_return_if_fail(bit < 16);
    pm->gpe_sts |= (uint16_t)(1u << bit);
    update_sci(pm);
}

void
gw_acpi_pm_press_power_button(GwAcpiPm *pm)
{
    pm->sts |= PWRBTN;
    update_sci(pm);
}

bool
gw_acpi_pm_power_button_pending(const GwAcpiPm *pm)
{
    return pm->sts & PWRBTN;
}

/* The destination's SCI line starts low: put it where the source had it. */
static bool
pm_post_load(void *obj, unsigned version, GError **errp)
{
    GwAcpiPm *pm = obj;

    pm->hooks->sci(pm->opaque, pm->sci);
    return true;
}

static const GwVmsdField pm_fields[] = {
    GW_VMSD_FIELD(GwAcpiPm, sts, 1),
    GW_VMSD_FIELD(GwAcpiPm, en, 1),
    GW_VMSD_FIELD(GwAcpiPm, cnt, 1),
    GW_VMSD_FIELD(GwAcpiPm, gpe_sts, 1),
    GW_VMSD_FIELD(GwAcpiPm, gpe_en, 1),
    GW_VMSD_FIELD(GwAcpiPm, sci, 1),
    GW_VMSD_END,
};

const GwVmsd gw_acpi_pm_vmsd = {
    .name = "acpi-pm",
    .version = 1,
    .fields = pm_fields,
    .post_load = pm_post_load,
    .size = sizeof(GwAcpiPm),
};
