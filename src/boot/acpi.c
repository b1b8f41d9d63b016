/*
 * ACPI tables, written below 1 MiB where a guest without firmware looks
 * for them: RSDP at 0xE0000, then DSDT, FACS, FADT, MADT, MCFG, (VIOT,)
 * RSDT, XSDT.
 * The FADT's PM1 and GPE0 blocks and reset register are the ports of
 * src/devices/acpi-pm.c.  The DSDT holds \_S5 so a guest can power off,
 * a PCI host bridge per segment with its windows (PCI0 for segment 0,
 * PC01.. for the others, as Cloud Hypervisor names them) and, with
 * hotplug, QEMU's ACPI PCI hotplug AML over the registers of
 * src/devices/acpi-pcihp.c: the registers and PCEJ live in PCI0, each
 * bridge has its slots, its BSEL (= its segment) and its PCNT.
 */
#include <string.h>
#include <godwit/acpi-pcihp.h>
#include <godwit/aml.h>
#include <godwit/boot.h>
#include <godwit/pci.h>
#include <godwit/util.h>

#define ACPI_END 0x100000u

typedef struct __attribute__((packed)) {
    char sig[4];
    uint32_t length;
    uint8_t revision, checksum;
    char oem_id[6], oem_table_id[8];
    uint32_t oem_revision;
    char creator_id[4];
    uint32_t creator_revision;
} Header;

typedef struct __attribute__((packed)) {
    uint8_t space, bit_width, bit_offset, access_size;
    uint64_t address;
} Gas;

/* Tables are laid out one after another from a cursor. */
typedef struct {
    GwGuestMemory *mem;
    uint32_t next;
} Writer;

static uint8_t
checksum(const uint8_t *p, size_t len)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++) {
        sum += p[i];
    }
    return (uint8_t)-sum;
}

/* Fills the header of `t` (len bytes), checksums it, writes it out. */
static uint32_t
emit(Writer *w, const char *sig, uint8_t rev, uint8_t *t, uint32_t len)
{
    Header *h = (Header *)t;
    uint32_t at = w->next;

    memcpy(h->sig, sig, 4);
    h->length = len;
    h->revision = rev;
    memcpy(h->oem_id, "GODWIT", 6);
    memcpy(h->oem_table_id, "GODWITVM", 8);
    h->oem_revision = 1;
    memcpy(h->creator_id, "GDWT", 4);
    h->creator_revision = 1;
    h->checksum = 0;
    h->checksum = checksum(t, len);
    g_assert(at + len <= ACPI_END);
    gw_mem_write(w->mem, at, t, len);
    w->next = (at + len + 15) & ~15u;
    return at;
}

/* Name (_S5, Package (4) { 5, 5, 0, 0 }): SLP_TYP for PM1a and PM1b. */
static GwAml *
s5(void)
{
    GwAml *pkg = gw_aml_package();

    gw_aml_append(pkg, gw_aml_int(GW_ACPI_S5_SLP_TYP));
    gw_aml_append(pkg, gw_aml_int(GW_ACPI_S5_SLP_TYP));
    gw_aml_append(pkg, gw_aml_int(0));
    gw_aml_append(pkg, gw_aml_int(0));
    return gw_aml_name("_S5", pkg);
}

/* Bus 0, the 32 slots' BAR windows; segment 0 also has the config
 * ports and forwards all other ports (the others decode no I/O). */
static GwAml *
bridge_crs(unsigned segment)
{
    g_autoptr(GByteArray) r = g_byte_array_new();
    GwPciSegmentLayout l;
    uint64_t end;

    gw_pci_segment_layout((uint16_t)segment, &l);
    end = l.mmio_base + GW_PCI_SLOTS * l.slot_window;
    gw_aml_res_bus(r, 0, 0);
    if (segment == 0) {
        gw_aml_res_io(r, GW_PCI_CONFIG_ADDR, 8);
        gw_aml_res_io_window(r, 0x0000, GW_PCI_CONFIG_ADDR - 1);
        gw_aml_res_io_window(r, 0x0d00, 0xffff);
    }
    gw_aml_res_mem32_window(r, (uint32_t)l.mmio_base, (uint32_t)(end - 1));
    return gw_aml_name("_CRS", gw_aml_resource_template(r));
}

/* A hotplug name: local in PCI0, which holds it, absolute elsewhere. */
static GwAml *
hp_path(unsigned segment, const char *name)
{
    g_autofree char *abs = g_strdup_printf("\\_SB.PCI0.%s", name);
    return gw_aml_path(segment == 0 ? name : abs);
}

/*
 * The hotplug registers and PCEJ (Arg0: bus selector, Arg1: slot), which
 * a slot's _EJ0 calls, as QEMU names them.  BLCK serialises SEL against
 * the registers it selects.
 */
static void
pcihp_registers(GwAml *pci0)
{
    static const char *const regs[] = {"PCIU", "PCID", "B0EJ",
                                       "PCRM", "BNUM", "PIDX"};
    GwAml *f = gw_aml_field("PCST", GW_AML_DWORD_ACC, GW_AML_WRITE_AS_ZEROS);
    GwAml *m = gw_aml_method("PCEJ", 2, false);

    gw_aml_append(pci0, gw_aml_opregion_io("PCST", GW_ACPI_PCIHP_BASE,
                                           GW_ACPI_PCIHP_LEN));
    for (size_t i = 0; i < G_N_ELEMENTS(regs); i++) {
        gw_aml_append(f, gw_aml_field_unit(regs[i], 32));
    }
    gw_aml_append(pci0, f);
    gw_aml_append(pci0, gw_aml_mutex("BLCK", 0));
    gw_aml_append(m, gw_aml_acquire("BLCK", 0xffff));
    gw_aml_append(m, gw_aml_store(gw_aml_arg(0), gw_aml_path("BNUM")));
    gw_aml_append(m,
                  gw_aml_store(gw_aml_shift_left(gw_aml_int(1), gw_aml_arg(1)),
                               gw_aml_path("B0EJ")));
    gw_aml_append(m, gw_aml_release("BLCK"));
    gw_aml_append(m, gw_aml_return(gw_aml_int(0)));
    gw_aml_append(pci0, m);
}

/* Device (Snn) { _ADR, _SUN, _EJ0 → PCEJ (BSEL, _SUN) } */
static GwAml *
pcihp_slot(unsigned segment, unsigned slot)
{
    g_autofree char *name = g_strdup_printf("S%02X", slot);
    GwAml *dev = gw_aml_device(name);
    GwAml *ej0 = gw_aml_method("_EJ0", 1, false);

    gw_aml_append(dev, gw_aml_name("_ADR", gw_aml_int(slot << 16)));
    gw_aml_append(dev, gw_aml_name("_SUN", gw_aml_int(slot)));
    gw_aml_append(ej0, gw_aml_call(segment == 0 ? "PCEJ" : "\\_SB.PCI0.PCEJ", 2,
                                   gw_aml_path("BSEL"), gw_aml_path("_SUN")));
    gw_aml_append(dev, ej0);
    return dev;
}

/*
 * DVNT (slots, event): notifies each slot whose bit is set.  PCNT, run
 * by _E01: plugged slots get Device Check (1), slots to unplug an Eject
 * Request (3).  Reading PCIU clears it.
 */
static void
pcihp_notify(GwAml *bridge, unsigned segment)
{
    GwAml *dvnt = gw_aml_method("DVNT", 2, false);
    GwAml *pcnt = gw_aml_method("PCNT", 0, false);

    for (unsigned slot = 1; slot < GW_PCI_SLOTS; slot++) {
        g_autofree char *name = g_strdup_printf("S%02X", slot);
        GwAml *test =
            gw_aml_if(gw_aml_and(gw_aml_arg(0), gw_aml_int(1u << slot)));
        gw_aml_append(test, gw_aml_notify(gw_aml_path(name), gw_aml_arg(1)));
        gw_aml_append(dvnt, test);
    }
    gw_aml_append(bridge, dvnt);
    gw_aml_append(pcnt,
                  gw_aml_store(gw_aml_path("BSEL"), hp_path(segment, "BNUM")));
    gw_aml_append(
        pcnt, gw_aml_call("DVNT", 2, hp_path(segment, "PCIU"), gw_aml_int(1)));
    gw_aml_append(
        pcnt, gw_aml_call("DVNT", 2, hp_path(segment, "PCID"), gw_aml_int(3)));
    gw_aml_append(bridge, pcnt);
}

static unsigned
n_segments(const GwAcpiConfig *cfg)
{
    return cfg->n_pci_segments ? cfg->n_pci_segments : 1;
}

/* "PCI0" for segment 0 (as always), "PC01".."PC0F" for the others. */
static char *
bridge_name(unsigned segment)
{
    return segment == 0 ? g_strdup("PCI0") : g_strdup_printf("PC%02X", segment);
}

static GwAml *
host_bridge(const GwAcpiConfig *cfg, unsigned segment)
{
    g_autofree char *name = bridge_name(segment);
    GwAml *dev = gw_aml_device(name);

    gw_aml_append(dev, gw_aml_name("_HID", gw_aml_eisaid("PNP0A08")));
    gw_aml_append(dev, gw_aml_name("_CID", gw_aml_eisaid("PNP0A03")));
    gw_aml_append(dev, gw_aml_name("_SEG", gw_aml_int(segment)));
    gw_aml_append(dev, gw_aml_name("_BBN", gw_aml_int(0)));
    gw_aml_append(dev, gw_aml_name("_UID", gw_aml_int(segment)));
    gw_aml_append(dev, bridge_crs(segment));
    if (cfg->pci_hotplug) {
        if (segment == 0) {
            pcihp_registers(dev);
        }
        gw_aml_append(dev, gw_aml_name("BSEL", gw_aml_int(segment)));
        for (unsigned slot = 1; slot < GW_PCI_SLOTS; slot++) {
            gw_aml_append(dev, pcihp_slot(segment, slot));
        }
        pcihp_notify(dev, segment);
    }
    return dev;
}

/*
 * Motherboard resources: the ports of our fixed devices and the ECAM
 * window, which Linux wants reserved here before it trusts the MCFG.
 */
static GwAml *
motherboard(const GwAcpiConfig *cfg)
{
    g_autoptr(GByteArray) r = g_byte_array_new();
    GwAml *dev = gw_aml_device("MBRS");

    gw_aml_res_io(r, GW_ACPI_PM_BASE, GW_ACPI_PM_LEN);
    if (cfg->pci_hotplug) {
        gw_aml_res_io(r, GW_ACPI_GPE0_BASE, GW_ACPI_GPE0_LEN);
        gw_aml_res_io(r, GW_ACPI_PCIHP_BASE, GW_ACPI_PCIHP_LEN);
    }
    gw_aml_res_mem32_fixed(r, (uint32_t)cfg->ecam_base, GW_PCI_ECAM_SIZE);
    for (unsigned s = 1; s < n_segments(cfg); s++) {
        GwPciSegmentLayout l;
        gw_pci_segment_layout((uint16_t)s, &l);
        gw_aml_res_mem32_fixed(r, (uint32_t)l.ecam, GW_PCI_ECAM_SIZE);
    }
    gw_aml_append(dev, gw_aml_name("_HID", gw_aml_eisaid("PNP0C02")));
    gw_aml_append(dev, gw_aml_name("_UID", gw_aml_int(1)));
    gw_aml_append(dev, gw_aml_name("_CRS", gw_aml_resource_template(r)));
    return dev;
}

/* GPE 1, the hotplug event: each bridge's PCNT under the lock PCEJ
 * takes too. */
static GwAml *
gpe_scope(const GwAcpiConfig *cfg)
{
    GwAml *scope = gw_aml_scope("\\_GPE");
    GwAml *e01 = gw_aml_method("_E01", 0, false);

    gw_aml_append(scope, gw_aml_name("_HID", gw_aml_string("ACPI0006")));
    gw_aml_append(e01, gw_aml_acquire("\\_SB.PCI0.BLCK", 0xffff));
    for (unsigned s = 0; s < n_segments(cfg); s++) {
        g_autofree char *name = bridge_name(s);
        g_autofree char *pcnt = g_strdup_printf("\\_SB.%s.PCNT", name);
        gw_aml_append(e01, gw_aml_call(pcnt, 0));
    }
    gw_aml_append(e01, gw_aml_release("\\_SB.PCI0.BLCK"));
    gw_aml_append(scope, e01);
    return scope;
}

/* \_S5 first: simple guests (tests/guest) scan for it near the start. */
static GByteArray *
dsdt_aml(const GwAcpiConfig *cfg)
{
    GByteArray *aml = gw_aml_encode(s5());
    GwAml *sb = gw_aml_scope("\\_SB");
    g_autoptr(GByteArray) rest = NULL;

    for (unsigned s = 0; s < n_segments(cfg); s++) {
        gw_aml_append(sb, host_bridge(cfg, s));
    }
    gw_aml_append(sb, motherboard(cfg));
    rest = gw_aml_encode(sb);
    g_byte_array_append(aml, rest->data, rest->len);
    if (cfg->pci_hotplug) {
        g_autoptr(GByteArray) gpe = gw_aml_encode(gpe_scope(cfg));
        g_byte_array_append(aml, gpe->data, gpe->len);
    }
    return aml;
}

static uint32_t
build_dsdt(Writer *w, const GwAcpiConfig *cfg)
{
    g_autoptr(GByteArray) aml = dsdt_aml(cfg);
    g_autofree uint8_t *t = g_malloc0(sizeof(Header) + aml->len);

    memcpy(t + sizeof(Header), aml->data, aml->len);
    return emit(w, "DSDT", 2, t, (uint32_t)(sizeof(Header) + aml->len));
}

static uint32_t
build_facs(Writer *w)
{
    uint8_t t[64] = {0};
    uint32_t at = (w->next + 63) & ~63u; /* the FACS is 64-byte aligned */
    uint32_t len = sizeof(t);

    memcpy(t, "FACS", 4);
    memcpy(t + 4, &len, 4);
    t[32] = 1; /* version */
    gw_mem_write(w->mem, at, t, sizeof(t));
    w->next = at + 64;
    return at;
}

static Gas
io_gas(uint16_t port, uint8_t bytes)
{
    return (Gas){1, (uint8_t)(bytes * 8), 0, bytes, port};
}

/* GPE0_BLK as QEMU pc's: 4 bytes, accessed a byte at a time. */
static void
fadt_gpe0(uint8_t *t)
{
    uint32_t gpe0 = GW_ACPI_GPE0_BASE;
    Gas x_gpe0 = {1, GW_ACPI_GPE0_LEN * 8, 0, 1, GW_ACPI_GPE0_BASE};

    memcpy(t + 80, &gpe0, 4);
    t[92] = GW_ACPI_GPE0_LEN;
    memcpy(t + 220, &x_gpe0, sizeof(x_gpe0));
}

static uint32_t
build_fadt(Writer *w, uint32_t dsdt, uint32_t facs, bool gpe0)
{
    uint8_t t[244] = {0};
    uint32_t flags = (1u << 0) | (1u << 2) | (1u << 5) | (1u << 10);
    uint16_t sci = GW_ACPI_SCI_IRQ, boot_arch = (1u << 0) | (1u << 2);
    uint32_t pm1_evt = GW_ACPI_PM1_STS, pm1_cnt = GW_ACPI_PM1_CNT;
    uint64_t x_dsdt = dsdt, x_facs = facs;
    Gas reset = io_gas(GW_ACPI_RESET, 1);
    Gas x_evt = io_gas(GW_ACPI_PM1_STS, 4), x_cnt = io_gas(GW_ACPI_PM1_CNT, 2);

    memcpy(t + 36, &facs, 4);
    memcpy(t + 40, &dsdt, 4);
    memcpy(t + 46, &sci, 2);
    /* SMI_CMD 0: no SMM, the hardware is always in ACPI mode. */
    memcpy(t + 56, &pm1_evt, 4);
    memcpy(t + 64, &pm1_cnt, 4);
    t[88] = 4; /* PM1_EVT_LEN */
    t[89] = 2; /* PM1_CNT_LEN */
    memcpy(t + 109, &boot_arch, 2);
    /* Fixed power button (PWR_BUTTON clear), no sleep button, reset reg. */
    memcpy(t + 112, &flags, 4);
    memcpy(t + 116, &reset, sizeof(reset));
    t[128] = GW_ACPI_RESET_VALUE;
    memcpy(t + 132, &x_facs, 8);
    memcpy(t + 140, &x_dsdt, 8);
    memcpy(t + 148, &x_evt, sizeof(x_evt));
    memcpy(t + 172, &x_cnt, sizeof(x_cnt));
    if (gpe0) {
        fadt_gpe0(t);
    }
    return emit(w, "FACP", 3, t, sizeof(t));
}

static uint32_t
build_madt(Writer *w, unsigned n_cpus)
{
    g_autoptr(GByteArray) t = g_byte_array_new();
    uint8_t hdr[sizeof(Header) + 8] = {0};
    uint32_t lapic = GW_LAPIC_GPA, pcat = 1;
    uint8_t ioapic[12] = {1, 12, (uint8_t)n_cpus, 0};
    uint32_t ioapic_gpa = GW_IOAPIC_GPA, gsi2 = 2, gsi9 = GW_ACPI_SCI_IRQ;
    uint8_t irq0[10] = {2, 10, 0, 0}, sci[10] = {2, 10, 0, GW_ACPI_SCI_IRQ};
    uint16_t level_high = 0x000d;
    uint8_t nmi[6] = {4, 6, 0xff, 0, 0, 1};

    memcpy(hdr + 36, &lapic, 4);
    memcpy(hdr + 40, &pcat, 4);
    g_byte_array_append(t, hdr, sizeof(hdr));
    for (unsigned i = 0; i < n_cpus; i++) {
        uint8_t e[8] = {0, 8, (uint8_t)i, (uint8_t)i, 1, 0, 0, 0};
        g_byte_array_append(t, e, sizeof(e));
    }
    memcpy(ioapic + 4, &ioapic_gpa, 4);
    g_byte_array_append(t, ioapic, sizeof(ioapic));
    memcpy(irq0 + 4, &gsi2, 4); /* the PIT's IRQ 0 is IOAPIC pin 2 */
    g_byte_array_append(t, irq0, sizeof(irq0));
    memcpy(sci + 4, &gsi9, 4);
    memcpy(sci + 8, &level_high, 2);
    g_byte_array_append(t, sci, sizeof(sci));
    g_byte_array_append(t, nmi, sizeof(nmi));
    return emit(w, "APIC", 3, t->data, t->len);
}

/* One ECAM window per segment, bus 0 only. */
static uint32_t
build_mcfg(Writer *w, const GwAcpiConfig *cfg)
{
    uint8_t t[sizeof(Header) + 8 + 16 * GW_PCI_MAX_SEGMENTS] = {0};
    unsigned n = n_segments(cfg);

    for (unsigned s = 0; s < n; s++) {
        uint8_t *e = t + sizeof(Header) + 8 + 16 * s;
        uint64_t ecam = cfg->ecam_base;
        uint16_t seg = (uint16_t)s;
        if (s) {
            GwPciSegmentLayout l;
            gw_pci_segment_layout(seg, &l);
            ecam = l.ecam;
        }
        memcpy(e, &ecam, 8);
        memcpy(e + 8, &seg, 2); /* start bus 0, end bus 0 */
    }
    return emit(w, "MCFG", 1, t, sizeof(Header) + 8 + 16 * n);
}

/* ---- VIOT (ACPI 6.4 5.2.31; Linux drivers/acpi/viot.c reads it) ---- */

#define VIOT_NODES_AT       48 /* header, count, offset, 8 reserved */
#define VIOT_PCI_RANGE      1
#define VIOT_VIRTIO_PCI     3
#define VIOT_PCI_RANGE_LEN  24
#define VIOT_VIRTIO_PCI_LEN 16

static void
viot_range(GByteArray *t, uint16_t seg, uint16_t first, uint16_t last)
{
    uint8_t n[VIOT_PCI_RANGE_LEN] = {VIOT_PCI_RANGE, 0, VIOT_PCI_RANGE_LEN};
    uint32_t endpoint = (uint32_t)seg << 16 | first;
    uint16_t iommu = VIOT_NODES_AT;

    memcpy(n + 4, &endpoint, 4);
    memcpy(n + 8, &seg, 2);  /* segment start */
    memcpy(n + 10, &seg, 2); /* segment end */
    memcpy(n + 12, &first, 2);
    memcpy(n + 14, &last, 2);
    memcpy(n + 16, &iommu, 2); /* output node: the IOMMU's offset */
    g_byte_array_append(t, n, sizeof(n));
}

/* Each iommu segment whole, the IOMMU's own BDF cut out of segment 0. */
static void
viot_segments(GByteArray *t, const GwAcpiConfig *cfg)
{
    for (unsigned s = 0; s < GW_PCI_MAX_SEGMENTS; s++) {
        if (!(cfg->iommu_segments & (1u << s))) {
            continue;
        }
        if (s != 0) {
            viot_range(t, s, 0, 0xffff);
            continue;
        }
        if (cfg->viommu_bdf > 0) {
            viot_range(t, 0, 0, cfg->viommu_bdf - 1);
        }
        if (cfg->viommu_bdf < 0xffff) {
            viot_range(t, 0, cfg->viommu_bdf + 1, 0xffff);
        }
    }
}

static GByteArray *
viot_table(const GwAcpiConfig *cfg)
{
    GByteArray *t = g_byte_array_new();
    uint8_t head[VIOT_NODES_AT] = {0};
    uint8_t iommu[VIOT_VIRTIO_PCI_LEN] = {VIOT_VIRTIO_PCI, 0,
                                          VIOT_VIRTIO_PCI_LEN};
    uint16_t count, at = VIOT_NODES_AT;

    memcpy(iommu + 6, &cfg->viommu_bdf, 2); /* segment 0 at +4 */
    g_byte_array_append(t, head, sizeof(head));
    g_byte_array_append(t, iommu, sizeof(iommu));
    viot_segments(t, cfg);
    for (unsigned i = 0; i < cfg->n_endpoints; i++) {
        uint32_t ep = cfg->endpoints[i];
        if (!(cfg->iommu_segments & (1u << (ep >> 16)))) {
            viot_range(t, ep >> 16, ep & 0xffff, ep & 0xffff);
        }
    }
    count =
        1 + (t->len - VIOT_NODES_AT - VIOT_VIRTIO_PCI_LEN) / VIOT_PCI_RANGE_LEN;
    memcpy(t->data + 36, &count, 2);
    memcpy(t->data + 38, &at, 2);
    return t;
}

static bool
build_viot(Writer *w, const GwAcpiConfig *cfg, uint32_t *at, GError **errp)
{
    g_autoptr(GByteArray) t = viot_table(cfg);

    /* The RSDT and XSDT (at most 36 + 8 * 8 bytes each) come after it. */
    if (w->next + t->len + 2 * (16 + 36 + 64) > ACPI_END) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "ACPI: a VIOT of %u IOMMU endpoints does not fit below "
                    "1 MiB",
                    cfg->n_endpoints);
        return false;
    }
    *at = emit(w, "VIOT", 0, t->data, t->len);
    return true;
}

static uint32_t
build_sdt(Writer *w, const char *sig, const uint32_t *tables, unsigned n,
          unsigned entry_size)
{
    uint8_t t[sizeof(Header) + 8 * 8] = {0};

    g_assert(n <= 8);
    for (unsigned i = 0; i < n; i++) {
        uint64_t a = tables[i];
        memcpy(t + sizeof(Header) + i * entry_size, &a, entry_size);
    }
    return emit(w, sig, 1, t, sizeof(Header) + n * entry_size);
}

static void
build_rsdp(GwGuestMemory *mem, uint32_t rsdt, uint32_t xsdt)
{
    uint8_t r[36] = {0};
    uint32_t len = sizeof(r);
    uint64_t x = xsdt;

    memcpy(r, "RSD PTR ", 8);
    memcpy(r + 9, "GODWIT", 6);
    r[15] = 2; /* ACPI 2.0+ */
    memcpy(r + 16, &rsdt, 4);
    memcpy(r + 20, &len, 4);
    memcpy(r + 24, &x, 8);
    r[8] = checksum(r, 20);
    r[32] = checksum(r, 36);
    gw_mem_write(mem, GW_ACPI_RSDP_GPA, r, sizeof(r));
}

bool
gw_acpi_build(GwGuestMemory *mem, const GwAcpiConfig *cfg, GError **errp)
{
    Writer w = {mem, GW_ACPI_RSDP_GPA + 64};
    uint32_t tables[4], rsdt, xsdt, dsdt, facs;
    unsigned n = 3;

    if (cfg->n_cpus == 0 || cfg->n_cpus > 254) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "ACPI: %u CPUs do not fit the MADT", cfg->n_cpus);
        return false;
    }
    if (n_segments(cfg) > GW_PCI_MAX_SEGMENTS) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "ACPI: %u PCI segments: at most %u", n_segments(cfg),
                    GW_PCI_MAX_SEGMENTS);
        return false;
    }
    if (!gw_mem_ptr(mem, GW_ACPI_RSDP_GPA, ACPI_END - GW_ACPI_RSDP_GPA)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "ACPI: guest RAM does not cover the BIOS area");
        return false;
    }
    dsdt = build_dsdt(&w, cfg);
    facs = build_facs(&w);
    tables[0] = build_fadt(&w, dsdt, facs, cfg->pci_hotplug);
    tables[1] = build_madt(&w, cfg->n_cpus);
    tables[2] = build_mcfg(&w, cfg);
    if (cfg->viot && !build_viot(&w, cfg, &tables[n++], errp)) {
        return false;
    }
    rsdt = build_sdt(&w, "RSDT", tables, n, 4);
    xsdt = build_sdt(&w, "XSDT", tables, n, 8);
    build_rsdp(mem, rsdt, xsdt);
    return true;
}
