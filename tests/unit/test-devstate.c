/*
 * Device state: each platform device is programmed as a guest programs
 * it (its registers, config cycles, MMIO), saved with its vmsd, loaded
 * into a fresh device, and everything the guest can read back through
 * the registers is compared; BAR mappings and MSI routes are checked on
 * the fresh bus and interrupt recorder.  Refused sections (truncated, of
 * another device, a running virtio device) leave the fresh device as it
 * was.
 */
#include <string.h>
#include <sys/eventfd.h>
#include <godwit/acpi-pcihp.h>
#include <godwit/acpi-pm.h>
#include <godwit/boot.h>
#include <godwit/msix.h>
#include <godwit/pci.h>
#include <godwit/serial.h>
#include <godwit/util.h>
#include <godwit/vdpa-device.h>
#include <godwit/virtio-pci.h>
#include "irq-recorder.h"

/* ---- helpers ---- */

static GBytes *
save(const GwVmsd *d, void *obj)
{
    g_autoptr(GwMigBuf) b = gw_mig_buf_new();
    g_autoptr(GError) err = NULL;

    g_assert_true(gw_vmsd_save(d, obj, b, &err));
    g_assert_no_error(err);
    return gw_mig_buf_free_to_bytes(g_steal_pointer(&b));
}

static bool
load_len(const GwVmsd *d, void *obj, GBytes *bytes, size_t len, GError **errp)
{
    GwMigCursor c;

    gw_mig_cursor_init(&c, g_bytes_get_data(bytes, NULL), len);
    return gw_mig_device_section_load(&c, d, obj, errp);
}

static void
must_load(const GwVmsd *d, void *obj, GBytes *bytes)
{
    g_autoptr(GError) err = NULL;

    g_assert_true(load_len(d, obj, bytes, g_bytes_get_size(bytes), &err));
    g_assert_no_error(err);
}

/*
 * Every cut of `good` and a section of another device are refused and
 * leave `obj` (d->size bytes) exactly as it was.
 */
static void
must_refuse_all(const GwVmsd *d, void *obj, GBytes *good, GBytes *other)
{
    g_autofree void *before = g_memdup2(obj, d->size);
    size_t len = g_bytes_get_size(good);

    for (size_t cut = 0; cut < len; cut++) {
        g_autoptr(GError) err = NULL;
        g_assert_false(load_len(d, obj, good, cut, &err));
        g_assert_error(err, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT);
        g_assert_cmpmem(obj, d->size, before, d->size);
    }
    g_autoptr(GError) err = NULL;
    g_assert_false(load_len(d, obj, other, g_bytes_get_size(other), &err));
    g_assert_error(err, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT);
    g_assert_nonnull(strstr(err->message, "the stream holds state for"));
    g_assert_cmpmem(obj, d->size, before, d->size);
}

/* A line a device drives: the level and how often it was driven. */
typedef struct {
    bool level;
    int calls;
} Line;

static void
line_set(gpointer opaque, bool level)
{
    Line *l = opaque;
    l->level = level;
    l->calls++;
}

static void
ignore_byte(gpointer opaque, uint8_t byte)
{
}

/* ---- every description is valid ---- */

static void
test_tables_validate(void)
{
    const GwVmsd *all[] = {
        &gw_serial_vmsd,     &gw_acpi_pm_vmsd,       &gw_acpi_pcihp_vmsd,
        &gw_pci_device_vmsd, &gw_pci_bus_vmsd,       &gw_msix_vmsd,
        &gw_virtio_pci_vmsd, &gw_vdpa_net_ctrl_vmsd,
    };

    for (size_t i = 0; i < G_N_ELEMENTS(all); i++) {
        g_autoptr(GError) err = NULL;
        g_assert_true(gw_vmsd_validate(all[i], &err));
        g_assert_no_error(err);
    }
}

/* ---- serial ---- */

static void
uart_out(GwSerial *s, unsigned reg, uint8_t v)
{
    gw_serial_ops.write(s, reg, v, 1);
}

static uint8_t
uart_in(GwSerial *s, unsigned reg)
{
    return (uint8_t)gw_serial_ops.read(s, reg, 1);
}

/* Everything a guest can read, in an order both devices see the same. */
static GByteArray *
uart_dump(GwSerial *s)
{
    GByteArray *a = g_byte_array_new();
    uint8_t lcr = uart_in(s, 3);

    for (unsigned reg = 1; reg < 8; reg++) {
        uint8_t v = uart_in(s, reg);
        g_byte_array_append(a, &v, 1);
    }
    uart_out(s, 3, lcr | 0x80);
    for (unsigned reg = 0; reg < 2; reg++) {
        uint8_t v = uart_in(s, reg);
        g_byte_array_append(a, &v, 1);
    }
    uart_out(s, 3, lcr & 0x7f);
    for (int i = 0; i < 18; i++) { /* the FIFO, and LSR as it drains */
        uint8_t v[2] = {uart_in(s, 5), uart_in(s, 0)};
        g_byte_array_append(a, v, 2);
    }
    return a;
}

static GwSerial *
programmed_uart(Line *line)
{
    GwSerial *s = gw_serial_new(ignore_byte, line_set, line);

    uart_out(s, 3, 0x80); /* DLAB: 115200 baud */
    uart_out(s, 0, 0x01);
    uart_out(s, 1, 0x00);
    uart_out(s, 3, 0x1b); /* 8E1 */
    uart_out(s, 7, 0x5a); /* SCR */
    uart_out(s, 2, 0x01); /* FIFO on */
    uart_out(s, 4, 0x0b); /* DTR, RTS, OUT2 */
    uart_out(s, 1, 0x03); /* RDI, THRI */
    g_assert_cmpuint(gw_serial_receive(s, (const uint8_t *)"hi!", 3), ==, 3);
    return s;
}

static void
test_serial_round_trip(void)
{
    Line l1 = {0}, l2 = {0};
    g_autoptr(GwSerial) src = programmed_uart(&l1);
    g_autoptr(GwSerial) dst = gw_serial_new(ignore_byte, line_set, &l2);
    g_autoptr(GBytes) bytes = save(&gw_serial_vmsd, src);

    g_assert_true(l1.level);
    l2.calls = 0;
    must_load(&gw_serial_vmsd, dst, bytes);
    g_assert_cmpint(l2.calls, ==, 1); /* the line re-driven, high */
    g_assert_true(l2.level);
    g_autoptr(GByteArray) a = uart_dump(src);
    g_autoptr(GByteArray) b = uart_dump(dst);
    g_assert_cmpmem(a->data, a->len, b->data, b->len);
    g_assert_cmpuint(a->data[7], ==, 0x01); /* DLL, to be sure */
}

static void
test_serial_refusals(void)
{
    Line l1 = {0}, l2 = {0};
    g_autoptr(GwSerial) src = programmed_uart(&l1);
    g_autoptr(GwSerial) dst = gw_serial_new(ignore_byte, line_set, &l2);
    g_autoptr(GBytes) good = save(&gw_serial_vmsd, src);
    static const GwAcpiPmHooks hooks = {NULL, NULL, line_set};
    g_autoptr(GwAcpiPm) pm = gw_acpi_pm_new(&hooks, &l1);
    g_autoptr(GBytes) other = save(&gw_acpi_pm_vmsd, pm);

    l2.calls = 0;
    must_refuse_all(&gw_serial_vmsd, dst, good, other);
    g_assert_cmpint(l2.calls, ==, 0);
}

/* ---- acpi-pm ---- */

static void
no_sleep(gpointer opaque, unsigned slp_typ)
{
    g_assert_not_reached();
}

static void
no_reset(gpointer opaque)
{
    g_assert_not_reached();
}

static const GwAcpiPmHooks pm_hooks = {no_sleep, no_reset, line_set};

static GByteArray *
pm_dump(GwAcpiPm *pm)
{
    GByteArray *a = g_byte_array_new();
    uint32_t v[] = {
        (uint32_t)gw_acpi_pm_ops.read(pm, GW_ACPI_PM1_STS - GW_ACPI_PM_BASE, 4),
        (uint32_t)gw_acpi_pm_ops.read(pm, GW_ACPI_PM1_EN - GW_ACPI_PM_BASE, 2),
        (uint32_t)gw_acpi_pm_ops.read(pm, GW_ACPI_PM1_CNT - GW_ACPI_PM_BASE, 2),
        (uint32_t)gw_acpi_gpe_ops.read(pm, 0, 4),
    };

    g_byte_array_append(a, (const uint8_t *)v, sizeof(v));
    return a;
}

static void
test_acpi_pm_round_trip(void)
{
    Line l1 = {0}, l2 = {0};
    g_autoptr(GwAcpiPm) src = gw_acpi_pm_new(&pm_hooks, &l1);
    g_autoptr(GwAcpiPm) dst = gw_acpi_pm_new(&pm_hooks, &l2);

    gw_acpi_pm_ops.write(src, GW_ACPI_PM1_EN - GW_ACPI_PM_BASE, 0x100, 2);
    gw_acpi_pm_ops.write(src, GW_ACPI_PM1_CNT - GW_ACPI_PM_BASE, 0x1400, 2);
    gw_acpi_gpe_ops.write(src, 2, 0x0002, 2); /* GPE 1 enabled */
    gw_acpi_pm_set_gpe(src, 1);
    gw_acpi_pm_set_gpe(src, 3); /* not enabled */
    gw_acpi_pm_press_power_button(src);
    g_assert_true(l1.level);
    g_autoptr(GBytes) bytes = save(&gw_acpi_pm_vmsd, src);
    must_load(&gw_acpi_pm_vmsd, dst, bytes);
    g_assert_cmpint(l2.calls, ==, 1);
    g_assert_true(l2.level);
    g_assert_true(gw_acpi_pm_power_button_pending(dst));
    g_autoptr(GByteArray) a = pm_dump(src);
    g_autoptr(GByteArray) b = pm_dump(dst);
    g_assert_cmpmem(a->data, a->len, b->data, b->len);
    /* And the guest acknowledging on the destination lowers SCI. */
    gw_acpi_pm_ops.write(dst, GW_ACPI_PM1_STS - GW_ACPI_PM_BASE, 0x100, 2);
    gw_acpi_gpe_ops.write(dst, 0, 0x0002, 1);
    g_assert_false(l2.level);
}

static void
test_acpi_pm_refusals(void)
{
    Line l1 = {0}, l2 = {0};
    g_autoptr(GwAcpiPm) src = gw_acpi_pm_new(&pm_hooks, &l1);
    g_autoptr(GwAcpiPm) dst = gw_acpi_pm_new(&pm_hooks, &l2);
    g_autoptr(GwSerial) s = gw_serial_new(ignore_byte, line_set, &l1);

    gw_acpi_pm_press_power_button(src);
    g_autoptr(GBytes) good = save(&gw_acpi_pm_vmsd, src);
    g_autoptr(GBytes) other = save(&gw_serial_vmsd, s);
    must_refuse_all(&gw_acpi_pm_vmsd, dst, good, other);
    g_assert_cmpint(l2.calls, ==, 0);
    g_assert_false(gw_acpi_pm_power_button_pending(dst));
}

/* ---- acpi-pcihp ---- */

typedef struct {
    int gpes, ejects;
} Hp;

static void
hp_gpe(gpointer opaque)
{
    ((Hp *)opaque)->gpes++;
}

static void
hp_eject(gpointer opaque, unsigned bus, unsigned slot)
{
    ((Hp *)opaque)->ejects++;
}

static const GwAcpiPcihpHooks hp_hooks = {hp_gpe, hp_eject};

static uint32_t
hp_in(GwAcpiPcihp *p, unsigned off)
{
    return (uint32_t)gw_acpi_pcihp_ops.read(p, off, 4);
}

static GByteArray *
hp_dump(GwAcpiPcihp *p)
{
    GByteArray *a = g_byte_array_new();
    uint32_t v[5];

    v[0] = hp_in(p, GW_ACPI_PCIHP_SEL);
    gw_acpi_pcihp_ops.write(p, GW_ACPI_PCIHP_SEL, 0, 4);
    v[1] = hp_in(p, GW_ACPI_PCIHP_PCID);
    v[2] = hp_in(p, GW_ACPI_PCIHP_PCIRMV);
    v[3] = hp_in(p, GW_ACPI_PCIHP_PCIU);
    v[4] = hp_in(p, GW_ACPI_PCIHP_PCIU); /* read clears */
    g_byte_array_append(a, (const uint8_t *)v, sizeof(v));
    return a;
}

static void
test_acpi_pcihp_round_trip(void)
{
    Hp h1 = {0}, h2 = {0};
    g_autoptr(GwAcpiPcihp) src = gw_acpi_pcihp_new(&hp_hooks, &h1, 3);
    g_autoptr(GwAcpiPcihp) dst = gw_acpi_pcihp_new(&hp_hooks, &h2, 3);

    gw_acpi_pcihp_plugged(src, 0, 3);
    g_assert_true(gw_acpi_pcihp_request_unplug(src, 0, 5));
    gw_acpi_pcihp_set_hotpluggable(src, 0, 7, false);
    g_assert_true(gw_acpi_pcihp_request_unplug(src, 2, 6)); /* segment 2 */
    gw_acpi_pcihp_ops.write(src, GW_ACPI_PCIHP_SEL, 1, 4);
    g_autoptr(GBytes) bytes = save(&gw_acpi_pcihp_vmsd, src);
    must_load(&gw_acpi_pcihp_vmsd, dst, bytes);
    g_assert_cmpint(h2.gpes, ==, 0); /* the GPE itself is acpi-pm's state */
    g_autoptr(GByteArray) a = hp_dump(src);
    g_autoptr(GByteArray) b = hp_dump(dst);
    g_assert_cmpmem(a->data, a->len, b->data, b->len);
    g_assert_cmphex(((uint32_t *)b->data)[1], ==, 1u << 5);
    /* The guest completes the unplug the source requested. */
    gw_acpi_pcihp_ops.write(dst, GW_ACPI_PCIHP_B0EJ, 1u << 5, 4);
    g_assert_cmpint(h2.ejects, ==, 1);
    g_assert_true(gw_acpi_pcihp_unplug_pending(dst, 2, 6));
    g_assert_false(gw_acpi_pcihp_unplug_pending(dst, 1, 6));
}

static void
test_acpi_pcihp_refusals(void)
{
    Hp h1 = {0}, h2 = {0};
    Line l = {0};
    g_autoptr(GwAcpiPcihp) src = gw_acpi_pcihp_new(&hp_hooks, &h1, 1);
    g_autoptr(GwAcpiPcihp) dst = gw_acpi_pcihp_new(&hp_hooks, &h2, 1);
    g_autoptr(GwAcpiPm) pm = gw_acpi_pm_new(&pm_hooks, &l);

    gw_acpi_pcihp_plugged(src, 0, 3);
    g_autoptr(GBytes) good = save(&gw_acpi_pcihp_vmsd, src);
    g_autoptr(GBytes) other = save(&gw_acpi_pm_vmsd, pm);
    must_refuse_all(&gw_acpi_pcihp_vmsd, dst, good, other);
    g_assert_cmpuint(hp_in(dst, GW_ACPI_PCIHP_PCIU), ==, 0);
}

/* ---- PCI: a bus with a plain function, and MSI-X ---- */

typedef struct {
    GwBus *mmio;
    GwPciBus *pci;
    GwIrqRecorder rec;
    GwIrqChip irq;
    GwPciDevice dev;
    GwMsix *msix; /* on dev, BAR 1 */
    int changed;
} Pci;

#define PLAIN_SLOT 4

static uint64_t
bar0_read(void *opaque, uint64_t off, unsigned size)
{
    return 0xb0b0 + off;
}

static void
bar0_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
}

static const GwDeviceOps bar0_ops = {"plain-bar0", bar0_read, bar0_write};
static const GwPciDeviceOps plain_ops = {"plain"};

static void
msix_changed(void *opaque, unsigned vector)
{
    ((Pci *)opaque)->changed++;
}

static void
pci_setup(Pci *p)
{
    memset(p, 0, sizeof(*p));
    p->mmio = gw_bus_new("mmio");
    p->pci = gw_pci_bus_new(0, p->mmio);
    p->irq = gw_irq_recorder_chip(&p->rec);
    gw_pci_device_init(&p->dev, &plain_ops, 0x1234, 0x5678, 0x020000, 1, 0, 0);
    gw_pci_device_set_bar(&p->dev, 0, 0x10000, &bar0_ops, p);
    p->msix = gw_msix_new(&p->dev, 4, 1, &p->irq, msix_changed, p);
    g_assert_true(gw_pci_bus_plug(p->pci, &p->dev, PLAIN_SLOT, NULL));
}

static void
pci_teardown(Pci *p)
{
    gw_pci_bus_unplug(p->pci, &p->dev);
    gw_msix_free(p->msix);
    gw_pci_bus_free(p->pci);
    gw_bus_free(p->mmio);
    g_assert_cmpint(p->rec.routes, ==, 0);
}

static uint32_t
pci_cfg_read(Pci *p, unsigned slot, unsigned off, unsigned size)
{
    return gw_pci_config_read(p->pci, slot << 3, off, size);
}

/* As the guest: through 0xCF8/0xCFC. */
static void
pci_cfg_write(Pci *p, unsigned slot, unsigned off, unsigned size, uint32_t v)
{
    gw_pci_cf8_ops.write(p->pci, 0, 0x80000000u | slot << 11 | (off & 0xfc), 4);
    gw_pci_cfc_ops.write(p->pci, off & 3, v, size);
}

static uint64_t
pci_mmio_read(Pci *p, uint64_t addr, unsigned size)
{
    uint64_t v = 0;
    g_assert_true(gw_bus_read(p->mmio, addr, size, &v));
    return v;
}

static void
pci_mmio_write(Pci *p, uint64_t addr, unsigned size, uint64_t v)
{
    g_assert_true(gw_bus_write(p->mmio, addr, size, v));
}

static unsigned
pci_find_cap(Pci *p, uint8_t id)
{
    for (unsigned off = pci_cfg_read(p, PLAIN_SLOT, 0x34, 1); off;
         off = pci_cfg_read(p, PLAIN_SLOT, off + 1, 1)) {
        if (pci_cfg_read(p, PLAIN_SLOT, off, 1) == id) {
            return off;
        }
    }
    g_assert_not_reached();
}

/* Config space of the host bridge and the function, and 0xCF8. */
static GByteArray *
pci_dump(Pci *p)
{
    GByteArray *a = g_byte_array_new();
    uint32_t cf8 = (uint32_t)gw_pci_cf8_ops.read(p->pci, 0, 4);

    g_byte_array_append(a, (const uint8_t *)&cf8, 4);
    for (unsigned slot = 0; slot <= PLAIN_SLOT; slot += PLAIN_SLOT) {
        for (unsigned off = 0; off < 256; off += 4) {
            uint32_t v = pci_cfg_read(p, slot, off, 4);
            g_byte_array_append(a, (const uint8_t *)&v, 4);
        }
    }
    return a;
}

/* The mapped ranges of the MMIO bus, as (base, len) pairs. */
static GArray *
mapped(Pci *p)
{
    uint64_t unclaimed;
    g_autoptr(GArray) st = gw_bus_stats(p->mmio, &unclaimed);
    GArray *out = g_array_new(false, false, sizeof(uint64_t));

    for (guint i = 0; i < st->len; i++) {
        GwBusRangeStats *r = &g_array_index(st, GwBusRangeStats, i);
        g_array_append_val(out, r->base);
        g_array_append_val(out, r->len);
    }
    return out;
}

#define MOVED_BAR0 (GW_PCI_MMIO_BASE + 0x2000000)

/* A guest moves BAR 0, turns decoding on, sets the host bridge up and
 * leaves 0xCF8 pointing somewhere. */
static void
pci_program(Pci *p)
{
    pci_cfg_write(p, PLAIN_SLOT, 0x10, 4, (uint32_t)MOVED_BAR0);
    pci_cfg_write(p, PLAIN_SLOT, 0x3c, 1, 11);
    pci_cfg_write(p, PLAIN_SLOT, 0x04, 2, PCI_COMMAND_MEMORY | 0x4);
    pci_cfg_write(p, 0, 0x04, 2, 0x6);
    pci_cfg_write(p, 0, 0x0c, 1, 0x10);
    gw_pci_cf8_ops.write(p->pci, 0, 0x80002008u, 4);
}

static void
test_pci_round_trip(void)
{
    Pci src, dst;

    pci_setup(&src);
    pci_setup(&dst);
    pci_program(&src);
    g_assert_cmphex(pci_mmio_read(&src, MOVED_BAR0 + 4, 4), ==, 0xb0b4);
    g_autoptr(GBytes) bus = save(&gw_pci_bus_vmsd, src.pci);
    g_autoptr(GBytes) dev = save(&gw_pci_device_vmsd, &src.dev);
    must_load(&gw_pci_bus_vmsd, dst.pci, bus);
    must_load(&gw_pci_device_vmsd, &dst.dev, dev);
    g_autoptr(GByteArray) a = pci_dump(&src);
    g_autoptr(GByteArray) b = pci_dump(&dst);
    g_assert_cmpmem(a->data, a->len, b->data, b->len);
    /* The BARs are on the fresh bus where they were on the source. */
    g_autoptr(GArray) ma = mapped(&src);
    g_autoptr(GArray) mb = mapped(&dst);
    g_assert_cmpuint(ma->len, ==, 4); /* BAR 0 and the MSI-X BAR */
    g_assert_cmpmem(ma->data, ma->len * 8, mb->data, mb->len * 8);
    g_assert_cmphex(pci_mmio_read(&dst, MOVED_BAR0 + 4, 4), ==, 0xb0b4);
    pci_teardown(&src);
    pci_teardown(&dst);
}

static void
test_pci_refusals(void)
{
    Pci src, dst;
    Line l = {0};
    g_autoptr(GwSerial) s = gw_serial_new(ignore_byte, line_set, &l);
    g_autoptr(GBytes) other = save(&gw_serial_vmsd, s);

    pci_setup(&src);
    pci_setup(&dst);
    pci_program(&src);
    g_autoptr(GBytes) bus = save(&gw_pci_bus_vmsd, src.pci);
    g_autoptr(GBytes) dev = save(&gw_pci_device_vmsd, &src.dev);
    must_refuse_all(&gw_pci_device_vmsd, &dst.dev, dev, other);
    g_autoptr(GArray) mb = mapped(&dst);
    g_assert_cmpuint(mb->len, ==, 0); /* nothing mapped */
    /* GwPciBus is opaque: its 0xCF8 shows it unchanged. */
    for (size_t cut = 0; cut < g_bytes_get_size(bus); cut += 7) {
        g_assert_false(load_len(&gw_pci_bus_vmsd, dst.pci, bus, cut, NULL));
    }
    g_assert_false(load_len(&gw_pci_bus_vmsd, dst.pci, other,
                            g_bytes_get_size(other), NULL));
    g_assert_cmphex(gw_pci_cf8_ops.read(dst.pci, 0, 4), ==, 0);
    pci_teardown(&src);
    pci_teardown(&dst);
}

/* Vectors 0-2 get entries; 1 is masked with an interrupt pending, 3 has
 * no address; MSI-X is enabled. */
static void
msix_program(Pci *p)
{
    uint64_t t = GW_PCI_MMIO_BASE + PLAIN_SLOT * GW_PCI_SLOT_WINDOW + 0x10000;

    g_assert_cmphex(pci_cfg_read(p, PLAIN_SLOT, 0x14, 4), ==, t);
    pci_cfg_write(p, PLAIN_SLOT, 0x04, 2, PCI_COMMAND_MEMORY);
    for (unsigned v = 0; v < 3; v++) {
        pci_mmio_write(p, t + 16 * v, 4, 0xfee00000 | v << 12);
        pci_mmio_write(p, t + 16 * v + 8, 4, 0x4050 + v);
        pci_mmio_write(p, t + 16 * v + 12, 4, v == 1);
    }
    pci_cfg_write(p, PLAIN_SLOT, pci_find_cap(p, 0x11) + 3, 1, 0x80);
    gw_msix_notify(p->msix, 1);
    g_assert_cmpint(p->rec.msis, ==, 0);
    g_assert_cmphex(pci_mmio_read(p, t + 0x800, 8), ==, 0x2);
}

static GByteArray *
msix_dump(Pci *p)
{
    GByteArray *a = g_byte_array_new();
    uint64_t t = GW_PCI_MMIO_BASE + PLAIN_SLOT * GW_PCI_SLOT_WINDOW + 0x10000;

    for (unsigned off = 0; off < 4 * 16; off += 4) {
        uint32_t v = (uint32_t)pci_mmio_read(p, t + off, 4);
        g_byte_array_append(a, (const uint8_t *)&v, 4);
    }
    uint64_t pba = pci_mmio_read(p, t + 0x800, 8);
    g_byte_array_append(a, (const uint8_t *)&pba, 8);
    return a;
}

/* The route of vector v on p's recorder matches its entry. */
static void
assert_route(Pci *p, unsigned v)
{
    int gsi = gw_msix_vector_gsi(p->msix, v);

    g_assert_cmpint(gsi, >=, REC_FIRST_GSI);
    g_assert_cmphex(p->rec.route_addr[gsi - REC_FIRST_GSI], ==,
                    0xfee00000 | v << 12);
    g_assert_cmphex(p->rec.route_data[gsi - REC_FIRST_GSI], ==, 0x4050 + v);
}

static void
test_msix_round_trip(void)
{
    Pci src, dst;
    uint64_t t = GW_PCI_MMIO_BASE + PLAIN_SLOT * GW_PCI_SLOT_WINDOW + 0x10000;

    pci_setup(&src);
    pci_setup(&dst);
    msix_program(&src);
    g_autoptr(GBytes) dev = save(&gw_pci_device_vmsd, &src.dev);
    g_autoptr(GBytes) msix = save(&gw_msix_vmsd, src.msix);
    must_load(&gw_pci_device_vmsd, &dst.dev, dev);
    dst.changed = 0;
    must_load(&gw_msix_vmsd, dst.msix, msix);
    g_assert_cmpint(dst.changed, ==, 4); /* the owner told of each vector */
    g_autoptr(GByteArray) a = msix_dump(&src);
    g_autoptr(GByteArray) b = msix_dump(&dst);
    g_assert_cmpmem(a->data, a->len, b->data, b->len);
    /* Routes for the three vectors with an address, none delivered. */
    g_assert_cmpint(dst.rec.routes, ==, 3);
    g_assert_cmpint(dst.rec.msis, ==, 0);
    assert_route(&dst, 0);
    assert_route(&dst, 2);
    g_assert_cmpint(gw_msix_vector_gsi(dst.msix, 1), ==, -1); /* masked */
    /* Unmasking vector 1 delivers the interrupt that was pending. */
    pci_mmio_write(&dst, t + 16 + 12, 4, 0);
    g_assert_cmpint(dst.rec.msis, ==, 1);
    g_assert_cmphex(dst.rec.last_msi_data, ==, 0x4051);
    assert_route(&dst, 1);
    pci_teardown(&src);
    pci_teardown(&dst);
}

static void
test_msix_refusals(void)
{
    Pci src, dst;
    Line l = {0};
    g_autoptr(GwSerial) s = gw_serial_new(ignore_byte, line_set, &l);
    g_autoptr(GBytes) other = save(&gw_serial_vmsd, s);

    pci_setup(&src);
    pci_setup(&dst);
    msix_program(&src);
    g_autoptr(GBytes) msix = save(&gw_msix_vmsd, src.msix);
    dst.changed = 0;
    must_refuse_all(&gw_msix_vmsd, dst.msix, msix, other);
    g_assert_cmpint(dst.changed, ==, 0);
    g_assert_cmpint(dst.rec.routes, ==, 0);
    pci_teardown(&src);
    pci_teardown(&dst);
}

/* ---- virtio-pci, with a fake backend ---- */

typedef struct {
    int activations, resets;
    GwVirtqueueSetup q[2];
} Fake;

static bool
fake_activate(void *opaque, const GwVirtioActivation *a, GError **errp)
{
    Fake *f = opaque;
    f->activations++;
    memcpy(f->q, a->queues, sizeof(f->q));
    return true;
}

static void
fake_reset(void *opaque)
{
    ((Fake *)opaque)->resets++;
}

static void
fake_config_read(void *opaque, unsigned off, void *buf, unsigned len)
{
    memset(buf, 0, len);
}

static void
fake_config_write(void *opaque, unsigned off, const void *buf, unsigned len)
{
}

static const GwVirtioDeviceOps fake_ops = {fake_activate, fake_reset,
                                           fake_config_read, fake_config_write};

#define VP_SLOT 3

typedef struct {
    GwBus *mmio;
    GwPciBus *pci;
    GwIrqRecorder rec;
    GwIrqChip irq;
    Fake fake;
    GwVirtioPci *vp;
    uint64_t bar0, bar1;
} Vp;

static void
vp_setup(Vp *v, uint32_t device_id)
{
    GwVirtioDeviceInfo info = {device_id, 1ull << 9 | 1ull << 33, 2, 256, 8};

    memset(v, 0, sizeof(*v));
    v->mmio = gw_bus_new("mmio");
    v->pci = gw_pci_bus_new(0, v->mmio);
    v->irq = gw_irq_recorder_chip(&v->rec);
    v->vp = gw_virtio_pci_new(&info, &fake_ops, &v->fake, &v->irq, NULL);
    g_assert_nonnull(v->vp);
    g_assert_true(
        gw_pci_bus_plug(v->pci, gw_virtio_pci_device(v->vp), VP_SLOT, NULL));
    v->bar0 = gw_pci_config_read(v->pci, VP_SLOT << 3, 0x10, 4) & ~0xfu;
    v->bar1 = gw_pci_config_read(v->pci, VP_SLOT << 3, 0x14, 4) & ~0xfu;
}

static void
vp_teardown(Vp *v)
{
    gw_pci_bus_unplug(v->pci, gw_virtio_pci_device(v->vp));
    gw_virtio_pci_free(v->vp);
    gw_pci_bus_free(v->pci);
    gw_bus_free(v->mmio);
    g_assert_cmpint(v->rec.routes, ==, 0);
}

static uint64_t
vp_read(Vp *v, uint64_t addr, unsigned size)
{
    uint64_t x = 0;
    g_assert_true(gw_bus_read(v->mmio, addr, size, &x));
    return x;
}

static void
vp_write(Vp *v, uint64_t addr, unsigned size, uint64_t x)
{
    g_assert_true(gw_bus_write(v->mmio, addr, size, x));
}

static unsigned
vp_find_cap(Vp *v, uint8_t id)
{
    unsigned devfn = VP_SLOT << 3;

    for (unsigned off = gw_pci_config_read(v->pci, devfn, 0x34, 1); off;
         off = gw_pci_config_read(v->pci, devfn, off + 1, 1)) {
        if (gw_pci_config_read(v->pci, devfn, off, 1) == id) {
            return off;
        }
    }
    g_assert_not_reached();
}

/*
 * A driver up to (not including) DRIVER_OK: features, MSI-X vectors 0
 * (config, masked, with a config change pending) to 2, both queues laid
 * out with vectors 1 and 2, selectors left non-zero.
 */
static void
vp_program(Vp *v, bool driver_ok)
{
    uint64_t c = v->bar0;
    unsigned devfn = VP_SLOT << 3;

    gw_pci_config_write(v->pci, devfn, 0x04, 2, PCI_COMMAND_MEMORY | 0x4);
    vp_write(v, c + 0x14, 1, 1 | 2);
    vp_write(v, c + 0x08, 4, 0);
    vp_write(v, c + 0x0c, 4, 1u << 9);
    vp_write(v, c + 0x08, 4, 1);
    vp_write(v, c + 0x0c, 4, 1); /* VERSION_1 */
    vp_write(v, c + 0x14, 1, 1 | 2 | 8);
    for (unsigned i = 0; i < 3; i++) {
        vp_write(v, v->bar1 + 16 * i, 4, 0xfee00000);
        vp_write(v, v->bar1 + 16 * i + 8, 4, 0x4060 + i);
        vp_write(v, v->bar1 + 16 * i + 12, 4, i == 0);
    }
    gw_pci_config_write(v->pci, devfn, vp_find_cap(v, 0x11) + 3, 1, 0x80);
    vp_write(v, c + 0x10, 2, 0);
    for (unsigned q = 0; q < 2; q++) {
        vp_write(v, c + 0x16, 2, q);
        vp_write(v, c + 0x18, 2, 64u << q);
        vp_write(v, c + 0x1a, 2, q + 1);
        vp_write(v, c + 0x20, 8, 0x100000 + 0x10000 * q);
        vp_write(v, c + 0x28, 4, 0x101000 + 0x10000 * q);
        vp_write(v, c + 0x2c, 4, 0);
        vp_write(v, c + 0x30, 8, 0x102000 + 0x10000 * q);
        vp_write(v, c + 0x1c, 2, 1);
    }
    gw_virtio_pci_config_changed(v->vp); /* vector 0 masked: pends */
    vp_write(v, c + 0x00, 4, 1);
    vp_write(v, c + 0x08, 4, 1);
    if (driver_ok) {
        vp_write(v, c + 0x14, 1, 1 | 2 | 8 | 4);
    }
}

static void
append(GByteArray *a, uint64_t x, unsigned size)
{
    g_byte_array_append(a, (const uint8_t *)&x, size);
}

/* What a driver can read: common config, each queue, ISR, MSI-X table
 * and PBA, config space. */
static GByteArray *
vp_dump(Vp *v)
{
    static const struct {
        unsigned off, size;
    } common[] = {{0x00, 4}, {0x04, 4}, {0x08, 4}, {0x0c, 4}, {0x10, 2},
                  {0x12, 2}, {0x14, 1}, {0x15, 1}, {0x16, 2}},
      queue[] = {{0x18, 2}, {0x1a, 2}, {0x1c, 2}, {0x1e, 2},
                 {0x20, 8}, {0x28, 8}, {0x30, 8}};
    GByteArray *a = g_byte_array_new();
    uint64_t c = v->bar0;

    for (size_t i = 0; i < G_N_ELEMENTS(common); i++) {
        append(a, vp_read(v, c + common[i].off, common[i].size), 8);
    }
    for (unsigned q = 0; q < 2; q++) {
        vp_write(v, c + 0x16, 2, q);
        for (size_t i = 0; i < G_N_ELEMENTS(queue); i++) {
            append(a, vp_read(v, c + queue[i].off, queue[i].size), 8);
        }
    }
    for (unsigned sel = 0; sel < 2; sel++) {
        vp_write(v, c + 0x00, 4, sel);
        vp_write(v, c + 0x08, 4, sel);
        append(a, vp_read(v, c + 0x04, 4), 4);
        append(a, vp_read(v, c + 0x0c, 4), 4);
    }
    append(a, vp_read(v, c + 0x1000, 1), 1); /* ISR, read clears */
    for (unsigned off = 0; off < 3 * 16; off += 4) {
        append(a, vp_read(v, v->bar1 + off, 4), 4);
    }
    append(a, vp_read(v, v->bar1 + 0x800, 8), 8);
    for (unsigned off = 0; off < 256; off += 4) {
        append(a, gw_pci_config_read(v->pci, VP_SLOT << 3, off, 4), 4);
    }
    return a;
}

static void
test_virtio_pci_round_trip(void)
{
    Vp src, dst;

    vp_setup(&src, 2);
    vp_setup(&dst, 2);
    vp_program(&src, false);
    g_autoptr(GBytes) bytes = save(&gw_virtio_pci_vmsd, src.vp);
    must_load(&gw_virtio_pci_vmsd, dst.vp, bytes);
    /* Routes for vectors 0-2 on the fresh chip; nothing bound before
     * DRIVER_OK, nothing delivered (vector 0 still masked). */
    g_assert_cmpint(dst.rec.routes, ==, 3);
    g_assert_cmpint(dst.rec.irqfds, ==, 0);
    g_assert_cmpint(dst.rec.msis, ==, 0);
    g_autoptr(GByteArray) a = vp_dump(&src);
    g_autoptr(GByteArray) b = vp_dump(&dst);
    g_assert_cmpmem(a->data, a->len, b->data, b->len);
    g_assert_cmphex(b->data[6 * 8], ==, 1 | 2 | 8);             /* status */
    g_assert_cmphex(vp_read(&dst, dst.bar1 + 0x800, 8), ==, 1); /* PBA */
    /* The driver goes on on the destination: its setup reaches the
     * backend, and irqfds and ioeventfds are bound. */
    vp_write(&dst, dst.bar0 + 0x14, 1, 1 | 2 | 8 | 4);
    g_assert_cmpint(dst.fake.activations, ==, 1);
    g_assert_cmpuint(dst.fake.q[1].size, ==, 128);
    g_assert_cmphex(dst.fake.q[1].desc, ==, 0x110000);
    g_assert_cmphex(dst.fake.q[1].avail, ==, 0x111000);
    g_assert_cmphex(dst.fake.q[1].used, ==, 0x112000);
    g_assert_cmpint(dst.rec.irqfds, ==, 2);
    g_assert_cmpint(dst.rec.ioeventfds, ==, 2);
    g_assert_true(gw_virtio_pci_started(dst.vp));
    vp_teardown(&src);
    vp_teardown(&dst);
}

static void
test_virtio_pci_refusals(void)
{
    Vp src, dst;
    Line l = {0};
    g_autoptr(GwSerial) s = gw_serial_new(ignore_byte, line_set, &l);
    g_autoptr(GBytes) other = save(&gw_serial_vmsd, s);

    vp_setup(&src, 2);
    vp_setup(&dst, 2);
    vp_program(&src, false);
    g_autoptr(GBytes) good = save(&gw_virtio_pci_vmsd, src.vp);
    must_refuse_all(&gw_virtio_pci_vmsd, dst.vp, good, other);
    g_assert_cmpint(dst.rec.routes, ==, 0);
    uint64_t unclaimed;
    g_autoptr(GArray) st = gw_bus_stats(dst.mmio, &unclaimed);
    g_assert_cmpuint(st->len, ==, 0); /* no BAR mapped */
    vp_teardown(&src);
    vp_teardown(&dst);
}

static void
test_virtio_pci_refuses_running(void)
{
    Vp src, dst;
    g_autoptr(GError) err = NULL;

    vp_setup(&src, 2);
    vp_setup(&dst, 2);
    vp_program(&src, true);
    g_assert_cmpint(src.fake.activations, ==, 1);
    g_autoptr(GBytes) bytes = save(&gw_virtio_pci_vmsd, src.vp);
    g_assert_false(load_len(&gw_virtio_pci_vmsd, dst.vp, bytes,
                            g_bytes_get_size(bytes), &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_BUSY);
    g_assert_cmpstr(err->message, ==,
                    "virtio-pci 03.0: restoring a running device is not "
                    "supported yet");
    g_assert_cmpint(dst.fake.activations, ==, 0);
    g_assert_false(gw_virtio_pci_started(dst.vp));
    vp_teardown(&src);
    vp_teardown(&dst);
}

static void
test_virtio_pci_refuses_other_type(void)
{
    Vp src, dst;
    g_autoptr(GError) err = NULL;

    vp_setup(&src, 2);
    vp_setup(&dst, 1);
    vp_program(&src, false);
    g_autoptr(GBytes) bytes = save(&gw_virtio_pci_vmsd, src.vp);
    g_assert_false(load_len(&gw_virtio_pci_vmsd, dst.vp, bytes,
                            g_bytes_get_size(bytes), &err));
    g_assert_error(err, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT);
    g_assert_nonnull(strstr(err->message, "virtio device type 2, this is "
                                          "type 1"));
    vp_teardown(&src);
    vp_teardown(&dst);
}

/* A running device's masked queue vector: its interrupt waits in the
 * call eventfd, and saving moves it to the PBA. */
static void
test_virtio_pci_drains_call_fd(void)
{
    Vp src;
    eventfd_t n;

    vp_setup(&src, 2);
    vp_program(&src, true);
    g_assert_cmpint(src.rec.irqfds, ==, 2);
    vp_write(&src, src.bar1 + 16 + 12, 4, 1); /* mask vector 1 (queue 0) */
    g_assert_cmpint(src.rec.irqfds, ==, 1);
    g_assert_cmpint(eventfd_write(src.fake.q[0].call_fd, 1), ==, 0);
    g_assert_cmphex(vp_read(&src, src.bar1 + 0x800, 8), ==, 1);
    g_autoptr(GBytes) bytes = save(&gw_virtio_pci_vmsd, src.vp);
    g_assert_cmphex(vp_read(&src, src.bar1 + 0x800, 8), ==, 1 | 2);
    g_assert_cmpint(eventfd_read(src.fake.q[0].call_fd, &n), ==, -1);
    /* Unmasking delivers it once, from the PBA. */
    vp_write(&src, src.bar1 + 16 + 12, 4, 0);
    g_assert_cmpint(src.rec.msis, ==, 1);
    g_assert_cmphex(src.rec.last_msi_data, ==, 0x4061);
    g_assert_cmpint(src.rec.irqfds, ==, 2);
    vp_teardown(&src);
}

int
main(int argc, char **argv)
{
    static const struct {
        const char *path;
        void (*fn)(void);
    } tests[] = {
        {"/devstate/tables/all-validate", test_tables_validate},
        {"/devstate/serial/round-trip-through-registers",
         test_serial_round_trip},
        {"/devstate/serial/refused-sections-leave-it-unchanged",
         test_serial_refusals},
        {"/devstate/acpi-pm/round-trip-through-registers",
         test_acpi_pm_round_trip},
        {"/devstate/acpi-pm/refused-sections-leave-it-unchanged",
         test_acpi_pm_refusals},
        {"/devstate/acpi-pcihp/round-trip-through-registers",
         test_acpi_pcihp_round_trip},
        {"/devstate/acpi-pcihp/refused-sections-leave-it-unchanged",
         test_acpi_pcihp_refusals},
        {"/devstate/pci/round-trip-maps-bars-at-the-same-addresses",
         test_pci_round_trip},
        {"/devstate/pci/refused-sections-map-nothing", test_pci_refusals},
        {"/devstate/msix/round-trip-rebuilds-routes-keeps-pending",
         test_msix_round_trip},
        {"/devstate/msix/refused-sections-leave-it-unchanged",
         test_msix_refusals},
        {"/devstate/virtio-pci/round-trip-through-registers",
         test_virtio_pci_round_trip},
        {"/devstate/virtio-pci/refused-sections-leave-it-unchanged",
         test_virtio_pci_refusals},
        {"/devstate/virtio-pci/refuses-a-running-device",
         test_virtio_pci_refuses_running},
        {"/devstate/virtio-pci/refuses-another-device-type",
         test_virtio_pci_refuses_other_type},
        {"/devstate/virtio-pci/save-drains-masked-call-eventfds-into-pba",
         test_virtio_pci_drains_call_fd},
    };

    g_test_init(&argc, &argv, NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(tests); i++) {
        g_test_add_func(tests[i].path, tests[i].fn);
    }
    return g_test_run();
}
