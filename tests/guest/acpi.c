/* ACPI: find tables from the RSDP; the MCFG's ECAM windows; poweroff
 * through PM1a_CNT. */
#include "guest.h"

struct rsdp {
    char sig[8];
    u8 checksum;
    char oem_id[6];
    u8 revision;
    u32 rsdt;
    u32 length;
    u64 xsdt;
    u8 xchecksum;
    u8 reserved[3];
} PACKED;

static bool
sum_ok(const void *p, u32 len)
{
    const u8 *b = p;
    u8 s = 0;
    for (u32 i = 0; i < len; i++) {
        s += b[i];
    }
    return s == 0;
}

static const struct rsdp *
scan_rsdp(u32 start, u32 len)
{
    for (u32 a = start; a + 20 <= start + len; a += 16) {
        const struct rsdp *r = (const struct rsdp *)(uptr)a;
        if (memcmp(r->sig, "RSD PTR ", 8) || !sum_ok(r, 20)) {
            continue;
        }
        if (r->revision >= 2 && (r->length < 36 || r->length > 4096 ||
                                 !sum_ok(r, r->length))) {
            continue;
        }
        return r;
    }
    return NULL;
}

static const struct rsdp *
find_rsdp(void)
{
    uptr bda = 0x40E; /* hidden from the compiler's bounds checks */
    __asm__("" : "+r"(bda));
    u32 ebda = (u32)(*(volatile u16 *)bda) << 4;
    const struct rsdp *r = NULL;

    if (ebda >= 0x80000 && ebda < 0xA0000) {
        r = scan_rsdp(ebda, 1024);
    }
    return r ? r : scan_rsdp(0xE0000, 0x20000);
}

static const struct sdt_hdr *
table_ok(u64 addr)
{
    if (!addr || addr >= 0xFFFFFFFFull) {
        return NULL;
    }
    const struct sdt_hdr *h = (const struct sdt_hdr *)(uptr)(u32)addr;
    if (h->length < sizeof(*h) || h->length > (16u << 20) ||
        !sum_ok(h, h->length)) {
        gprintf("GUEST fail acpi table=%c%c%c%c addr=0x%x bad-checksum\n",
                h->sig[0], h->sig[1], h->sig[2], h->sig[3], (u32)addr);
        return NULL;
    }
    return h;
}

const struct sdt_hdr *
acpi_find(const char *sig)
{
    const struct rsdp *r = find_rsdp();
    if (!r) {
        gprintf("GUEST fail acpi no-rsdp\n");
        return NULL;
    }
    bool x = r->revision >= 2 && r->xsdt;
    const struct sdt_hdr *root = table_ok(x ? r->xsdt : r->rsdt);
    if (!root) {
        gprintf("GUEST fail acpi no-%s\n", x ? "xsdt" : "rsdt");
        return NULL;
    }
    u32 esz = x ? 8 : 4;
    u32 n = (root->length - sizeof(*root)) / esz;
    const u8 *ents = (const u8 *)(root + 1);
    for (u32 i = 0; i < n; i++) {
        u64 a = x ? *(const u64 *)(ents + i * 8)
                  : *(const u32 *)(ents + i * 4);
        if (!a || a >= 0xFFFFFFFFull) {
            continue;
        }
        const struct sdt_hdr *h = (const struct sdt_hdr *)(uptr)(u32)a;
        if (memcmp(h->sig, sig, 4)) {
            continue;
        }
        return table_ok(a);
    }
    return NULL;
}

/* MCFG: a 44-byte header (36 + 8 reserved), then 16-byte entries: base
 * (8), segment (2), start bus, end bus, 4 reserved. */
bool
acpi_mcfg_entry(u32 i, struct mcfg_entry *e)
{
    const struct sdt_hdr *m = acpi_find("MCFG");

    if (!m || m->length < 44 || i >= (m->length - 44) / 16) {
        return false;
    }
    const u8 *p = (const u8 *)m + 44 + 16 * i;
    u64 base = *(const u64 *)p;
    e->base = base < 0xFFFFFFFFull ? (u32)base : 0;
    e->segment = *(const u16 *)(p + 8);
    e->bus_start = p[10];
    e->bus_end = p[11];
    return true;
}

/* One integer element of an AML package: ZeroOp, OneOp, BytePrefix,
 * WordPrefix.  Returns the bytes consumed, 0 if not an integer. */
static u32
aml_int(const u8 *p, u32 *val)
{
    switch (p[0]) {
    case 0x00:
        *val = 0;
        return 1;
    case 0x01:
        *val = 1;
        return 1;
    case 0x0A:
        *val = p[1];
        return 2;
    case 0x0B:
        *val = p[1] | p[2] << 8;
        return 3;
    default:
        return 0;
    }
}

/* Finds Name(_S5_, Package() {SLP_TYPa, SLP_TYPb, ...}) in the DSDT. */
static bool
find_s5(const struct sdt_hdr *dsdt, u32 *typa, u32 *typb)
{
    const u8 *b = (const u8 *)dsdt;
    u32 len = dsdt->length;

    for (u32 i = sizeof(*dsdt) + 1; i + 12 < len; i++) {
        if (memcmp(b + i, "_S5_", 4)) {
            continue;
        }
        if (b[i - 1] != 0x08 && !(b[i - 1] == '\\' && b[i - 2] == 0x08)) {
            continue; /* not a NameOp: a reference or a method name */
        }
        const u8 *p = b + i + 4;
        if (*p++ != 0x12) { /* PackageOp */
            continue;
        }
        p += (*p >> 6) + 1; /* PkgLength */
        u32 nel = *p++;
        u32 n = aml_int(p, typa);
        if (!n) {
            continue;
        }
        *typb = 0;
        if (nel > 1) {
            aml_int(p + n, typb);
        }
        return true;
    }
    return false;
}

/* FADT fields (ACPI 1.0 offsets; extended ones when the table has them). */
#define FADT_DSDT       40
#define FADT_PM1A_CNT   64
#define FADT_PM1B_CNT   68
#define FADT_X_DSDT     140
#define FADT_X_PM1A_CNT 172 /* generic address: +4 holds the address */

static u32
rd32(const struct sdt_hdr *h, u32 off)
{
    return off + 4 <= h->length ? *(const u32 *)((const u8 *)h + off) : 0;
}

static u64
rd64(const struct sdt_hdr *h, u32 off)
{
    return off + 8 <= h->length ? *(const u64 *)((const u8 *)h + off) : 0;
}

void
wl_poweroff(const struct args *a)
{
    static const char *const allowed[] = {NULL};
    if (!args_check(a, allowed)) {
        return;
    }
    const struct sdt_hdr *fadt = acpi_find("FACP");
    if (!fadt) {
        gprintf("GUEST fail poweroff no-fadt\n");
        return;
    }
    u32 pm1a = rd32(fadt, FADT_PM1A_CNT);
    u32 pm1b = rd32(fadt, FADT_PM1B_CNT);
    if (!pm1a && fadt->length >= FADT_X_PM1A_CNT + 12 &&
        ((const u8 *)fadt)[FADT_X_PM1A_CNT] == 1 /* system I/O */) {
        pm1a = (u32)rd64(fadt, FADT_X_PM1A_CNT + 4);
    }
    u64 xd = rd64(fadt, FADT_X_DSDT);
    u64 dsdt_addr = xd && xd < 0xFFFFFFFFull ? xd : rd32(fadt, FADT_DSDT);
    const struct sdt_hdr *dsdt = table_ok(dsdt_addr);
    u32 typa, typb;
    if (!pm1a || pm1a > 0xFFFF) {
        gprintf("GUEST fail poweroff no-pm1a-cnt\n");
        return;
    }
    if (!dsdt || memcmp(dsdt->sig, "DSDT", 4)) {
        gprintf("GUEST fail poweroff no-dsdt\n");
        return;
    }
    if (!find_s5(dsdt, &typa, &typb)) {
        gprintf("GUEST fail poweroff no-s5\n");
        return;
    }
    gprintf("GUEST acpi pm1a_cnt=0x%x slp_typ=%u\n", pm1a, typa);
    outw(pm1a, (u16)((typa & 7) << 10 | 1 << 13));
    if (pm1b && pm1b <= 0xFFFF) {
        outw(pm1b, (u16)((typb & 7) << 10 | 1 << 13));
    }
    /* A VMM may take a moment to stop the vCPU; then it is a failure. */
    for (u32 i = 0; i < 100000; i++) {
        io_delay();
    }
    gprintf("GUEST fail poweroff still-running\n");
}
