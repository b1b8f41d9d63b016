/* Configuration mechanism #1 (0xCF8/0xCFC) for segment 0, ECAM from the
 * MCFG for the others, and pci-list: every function on buses 0-255 of
 * segment 0, then on each other segment the MCFG lists. */
#include "guest.h"

/* The last segment looked up: most accesses go to one device. */
static struct mcfg_entry ecam_cache;
static bool ecam_cached;

/* The ECAM address of `reg` of `bdf`, 0 if no MCFG entry covers it. */
static uptr
ecam_addr(u32 bdf, u32 reg)
{
    u32 seg = bdf >> 16, bus = (bdf >> 8) & 0xff;
    struct mcfg_entry *e = &ecam_cache;

    if (!ecam_cached || e->segment != seg || bus < e->bus_start ||
        bus > e->bus_end) {
        ecam_cached = false;
        for (u32 i = 0; acpi_mcfg_entry(i, e); i++) {
            if (e->segment == seg && e->base && bus >= e->bus_start &&
                bus <= e->bus_end) {
                ecam_cached = true;
                break;
            }
        }
        if (!ecam_cached) {
            return 0;
        }
    }
    return e->base + ((bus - e->bus_start) << 20) + ((bdf & 0xff) << 12) +
           (reg & 0xfff);
}

static void
cfg_select(u32 bdf, u32 reg)
{
    outl(0xCF8, 0x80000000u | bdf << 8 | (reg & 0xFC));
}

u32
pci_cfg_read(u32 bdf, u32 reg, u32 size)
{
    if (bdf >> 16) {
        uptr a = ecam_addr(bdf, reg);
        if (!a) {
            return size == 4 ? 0xffffffffu : (1u << (size * 8)) - 1;
        }
        return size == 1   ? *(volatile u8 *)a
               : size == 2 ? *(volatile u16 *)a
                           : *(volatile u32 *)a;
    }
    cfg_select(bdf, reg);
    if (size == 1) {
        return inb(0xCFC + (reg & 3));
    }
    if (size == 2) {
        return inw(0xCFC + (reg & 2));
    }
    return inl(0xCFC);
}

void
pci_cfg_write(u32 bdf, u32 reg, u32 size, u32 v)
{
    if (bdf >> 16) {
        uptr a = ecam_addr(bdf, reg);
        if (a && size == 1) {
            *(volatile u8 *)a = (u8)v;
        } else if (a && size == 2) {
            *(volatile u16 *)a = (u16)v;
        } else if (a) {
            *(volatile u32 *)a = v;
        }
        return;
    }
    cfg_select(bdf, reg);
    if (size == 1) {
        outb(0xCFC + (reg & 3), (u8)v);
    } else if (size == 2) {
        outw(0xCFC + (reg & 2), (u16)v);
    } else {
        outl(0xCFC, v);
    }
}

/* Every function of one bus; segment 0's named bb:dd.f as always,
 * others ssss:bb:dd.f. */
static u32
list_bus(u32 seg, u32 bus)
{
    u32 count = 0;

    for (u32 dev = 0; dev < 32; dev++) {
        u32 nfn = 1;
        for (u32 fn = 0; fn < nfn; fn++) {
            u32 bdf = PCI_SBDF(seg, bus, dev, fn);
            u32 id = pci_cfg_read(bdf, 0x00, 4);
            if ((id & 0xffff) == 0xffff) {
                continue;
            }
            u32 cls = pci_cfg_read(bdf, 0x08, 4) >> 8;
            if (fn == 0 && (pci_cfg_read(bdf, 0x0C, 4) & 0x00800000)) {
                nfn = 8; /* multifunction */
            }
            if (seg) {
                gprintf("GUEST pci %04x:%02x:%02x.%x %04x:%04x class=%06x\n",
                        seg, bus, dev, fn, id & 0xffff, id >> 16, cls);
            } else {
                gprintf("GUEST pci %02x:%02x.%x %04x:%04x class=%06x\n", bus,
                        dev, fn, id & 0xffff, id >> 16, cls);
            }
            count++;
        }
    }
    return count;
}

void
wl_pci_list(const struct args *a)
{
    static const char *const allowed[] = {NULL};
    if (!args_check(a, allowed)) {
        return;
    }
    struct mcfg_entry e;
    u32 count = 0;
    for (u32 bus = 0; bus < 256; bus++) {
        count += list_bus(0, bus);
    }
    outl(0xCF8, 0);
    for (u32 i = 0; acpi_mcfg_entry(i, &e); i++) {
        gprintf("GUEST mcfg segment=%u base=0x%x buses=%u-%u\n", e.segment,
                e.base, e.bus_start, e.bus_end);
        for (u32 bus = e.bus_start; e.segment && bus <= e.bus_end; bus++) {
            count += list_bus(e.segment, bus);
        }
    }
    gprintf("GUEST pci-count %u\n", count);
}
