/* memtest [mib=N] [patterns=N] [inject-error=1]: a march over N MiB above
 * the guest image.  Each pass verifies the previous pattern while writing
 * the next, then a final pass reads the last one.  Patterns, in order:
 * address-as-data, ~address (together: every bit both ways, every word
 * unique), then 0xAAAAAAAA, 0x55555555, 0.  The default, patterns=2, keeps
 * the default 4 MiB near 20 M instructions (4 to 8 per word and pass)
 * for VMMs that emulate 32-bit code slowly; patterns=5 runs all. */
#include "guest.h"

#define PAT_COUNT 5

static u32
pattern(int pat, u32 addr)
{
    switch (pat) {
    case 0:
        return addr;
    case 1:
        return ~addr;
    case 2:
        return 0xAAAAAAAA;
    case 3:
        return 0x55555555;
    default:
        return 0;
    }
}

/* One tight loop per (check, put) pair: the pattern is not a loop
 * variable, so each word costs a load, a compare, a store. */
#define MARCH(name, CHK, PUT)                                                 \
    static s32 name(volatile u32 *w, u32 nw)                                  \
    {                                                                         \
        for (volatile u32 *p = w, *e = w + nw; p != e; p++) {                 \
            u32 a = (u32)(uptr)p;                                             \
            (void)a;                                                          \
            if (!(CHK)) {                                                     \
                return (s32)(p - w);                                          \
            }                                                                 \
            PUT;                                                              \
        }                                                                     \
        return -1;                                                            \
    }
MARCH(put_addr, 1, *p = a)
MARCH(addr_to_naddr, *p == a, *p = ~a)
MARCH(naddr_to_aa, *p == ~a, *p = 0xAAAAAAAA)
MARCH(aa_to_55, *p == 0xAAAAAAAA, *p = 0x55555555)
MARCH(x55_to_0, *p == 0x55555555, *p = 0)
MARCH(chk_naddr, *p == ~a, (void)0)
MARCH(chk_0, *p == 0, (void)0)

void
wl_memtest(const struct args *a)
{
    static const char *const allowed[] = {"mib", "patterns", "inject-error",
                                          NULL};
    if (!args_check(a, allowed)) {
        return;
    }
    u32 mib = arg_u32(a, "mib", 4);
    u32 npat = arg_u32(a, "patterns", 2);
    bool inject = arg_u32(a, "inject-error", 0);
    u32 base = work_base();
    u32 bytes = mib << 20;

    if (npat != 2 && npat != PAT_COUNT) {
        gprintf("GUEST fail memtest patterns=%u unsupported\n", npat);
        return;
    }
    if (!mib || mib > 4000 || !mb_ram_ok(base, bytes)) {
        gprintf("GUEST fail memtest mib=%u base=0x%x not-available\n", mib,
                base);
        return;
    }
    volatile u32 *w = (volatile u32 *)(uptr)base;
    u32 nw = bytes / 4;
    s32 (*const all[])(volatile u32 *, u32) = {put_addr, addr_to_naddr,
                                               naddr_to_aa, aa_to_55,
                                               x55_to_0, chk_0};
    s32 (*const two[])(volatile u32 *, u32) = {put_addr, addr_to_naddr,
                                               chk_naddr};
    s32 (*const *seq)(volatile u32 *, u32) = npat == 2 ? two : all;

    for (u32 p = 0; p <= npat; p++) {
        s32 bad = seq[p](w, nw);
        if (bad >= 0) {
            u32 addr = (u32)(uptr)&w[bad];
            gprintf("GUEST fail memtest addr=0x%08x expected=0x%08x "
                    "got=0x%08x\n",
                    addr, pattern((int)p - 1, addr), w[bad]);
            return;
        }
        if (inject && p == 0) {
            w[nw / 2 + 3] ^= 0x00000080; /* one bit of one word */
        }
    }
    gprintf("GUEST pass memtest\n");
}
