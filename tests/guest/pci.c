/* pci-list: every function on buses 0-255 through 0xCF8/0xCFC. */
#include "guest.h"

static u32
cfg_read(u32 bus, u32 dev, u32 fn, u32 reg)
{
    outl(0xCF8, 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (reg & 0xFC));
    return inl(0xCFC);
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
