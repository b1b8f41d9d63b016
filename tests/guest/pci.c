/* Configuration mechanism #1 (0xCF8/0xCFC), and pci-list: every function
 * on buses 0-255. */
#include "guest.h"

static u32
cfg_read(u32 bus, u32 dev, u32 fn, u32 reg)
{
    return pci_cfg_read(PCI_BDF(bus, dev, fn), reg, 4);
}

static void
cfg_select(u32 bdf, u32 reg)
{
    outl(0xCF8, 0x80000000u | bdf << 8 | (reg & 0xFC));
}

u32
pci_cfg_read(u32 bdf, u32 reg, u32 size)
{
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
    cfg_select(bdf, reg);
    if (size == 1) {
        outb(0xCFC + (reg & 3), (u8)v);
    } else if (size == 2) {
        outw(0xCFC + (reg & 2), (u16)v);
    } else {
        outl(0xCFC, v);
    }
}

void
wl_pci_list(const struct args *a)
{
    static const char *const allowed[] = {NULL};
    if (!args_check(a, allowed)) {
        return;
    }
    u32 count = 0;
    for (u32 bus = 0; bus < 256; bus++) {
        for (u32 dev = 0; dev < 32; dev++) {
            u32 nfn = 1;
            for (u32 fn = 0; fn < nfn; fn++) {
                u32 id = cfg_read(bus, dev, fn, 0x00);
                if ((id & 0xffff) == 0xffff) {
                    continue;
                }
                u32 cls = cfg_read(bus, dev, fn, 0x08) >> 8;
                if (fn == 0 && (cfg_read(bus, dev, 0, 0x0C) & 0x00800000)) {
                    nfn = 8; /* multifunction */
                }
                gprintf("GUEST pci %02x:%02x.%x %04x:%04x class=%06x\n", bus,
                        dev, fn, id & 0xffff, id >> 16, cls);
                count++;
            }
        }
    }
    outl(0xCF8, 0);
    gprintf("GUEST pci-count %u\n", count);
}
