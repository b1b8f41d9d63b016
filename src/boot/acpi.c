/*
 * ACPI tables, written below 1 MiB where a guest without firmware looks
 * for them: RSDP at 0xE0000, then XSDT, RSDT, FADT, FACS, MADT, MCFG,
 * DSDT.
 * The FADT's PM1 blocks and reset register are the ports of
 * src/devices/acpi-pm.c; the DSDT holds \_S5 so a guest can power off.
 */
#include <string.h>
#include <godwit/boot.h>
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

static uint32_t
build_dsdt(Writer *w)
{
    /* Name (_S5, Package (4) { 5, 5, 0, 0 }) */
    static const uint8_t aml[] = {
        0x08, '_',
        'S',  '5',
        '_',  0x12,
        0x08, 0x04,
        0x0A, GW_ACPI_S5_SLP_TYP,
        0x0A, GW_ACPI_S5_SLP_TYP,
        0x00, 0x00,
    };
    uint8_t t[sizeof(Header) + sizeof(aml)] = {0};

    memcpy(t + sizeof(Header), aml, sizeof(aml));
    return emit(w, "DSDT", 2, t, sizeof(t));
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

static uint32_t
build_fadt(Writer *w, uint32_t dsdt, uint32_t facs)
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

/* One ECAM window: segment 0, bus 0 only. */
static uint32_t
build_mcfg(Writer *w, uint64_t ecam)
{
    uint8_t t[sizeof(Header) + 8 + 16] = {0};

    memcpy(t + sizeof(Header) + 8, &ecam, 8);
    /* segment 0, start bus 0, end bus 0 */
    return emit(w, "MCFG", 1, t, sizeof(t));
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
    uint32_t tables[3], rsdt, xsdt, dsdt, facs;

    if (cfg->n_cpus == 0 || cfg->n_cpus > 254) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "ACPI: %u CPUs do not fit the MADT", cfg->n_cpus);
        return false;
    }
    if (!gw_mem_ptr(mem, GW_ACPI_RSDP_GPA, ACPI_END - GW_ACPI_RSDP_GPA)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "ACPI: guest RAM does not cover the BIOS area");
        return false;
    }
    dsdt = build_dsdt(&w);
    facs = build_facs(&w);
    tables[0] = build_fadt(&w, dsdt, facs);
    tables[1] = build_madt(&w, cfg->n_cpus);
    tables[2] = build_mcfg(&w, cfg->ecam_base);
    rsdt = build_sdt(&w, "RSDT", tables, 3, 4);
    xsdt = build_sdt(&w, "XSDT", tables, 3, 8);
    build_rsdp(mem, rsdt, xsdt);
    return true;
}
