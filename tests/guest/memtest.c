/* memtest [mib=N] [inject-error=1]: a march over N MiB above the guest
 * image.  Each pass verifies the previous pattern while writing the next:
 * address, ~address, 0xAAAAAAAA, 0x55555555, 0, then a final read. */
#include "guest.h"

enum { PAT_ADDR, PAT_NADDR, PAT_A, PAT_5, PAT_ZERO, PAT_NONE };

static inline u32
pattern(int pat, u32 addr)
{
    switch (pat) {
    case PAT_ADDR:
        return addr;
    case PAT_NADDR:
        return ~addr;
    case PAT_A:
        return 0xAAAAAAAA;
    case PAT_5:
        return 0x55555555;
    default:
        return 0;
    }
}

/* Verifies pattern `chk` (none for the first pass) and writes `put`
 * (none for the last).  Returns the index of the first bad word or -1. */
static s32
pass(volatile u32 *w, u32 nw, int chk, int put)
{
    for (u32 i = 0; i < nw; i++) {
        u32 a = (u32)(uptr)&w[i];
        if (chk != PAT_NONE && w[i] != pattern(chk, a)) {
            return (s32)i;
        }
        if (put != PAT_NONE) {
            w[i] = pattern(put, a);
        }
    }
    return -1;
}

void
wl_memtest(const struct args *a)
{
    static const char *const allowed[] = {"mib", "inject-error", NULL};
    if (!args_check(a, allowed)) {
        return;
    }
    u32 mib = arg_u32(a, "mib", 4);
    bool inject = arg_u32(a, "inject-error", 0);
    u32 base = work_base();
    u32 bytes = mib << 20;

    if (!mib || mib > 4000 || !mb_ram_ok(base, bytes)) {
        gprintf("GUEST fail memtest mib=%u base=0x%x not-available\n", mib,
                base);
        return;
    }
    volatile u32 *w = (volatile u32 *)(uptr)base;
    u32 nw = bytes / 4;
    int seq[] = {PAT_NONE, PAT_ADDR, PAT_NADDR, PAT_A, PAT_5, PAT_ZERO,
                 PAT_NONE};

    for (int p = 0; p + 1 < (int)(sizeof(seq) / sizeof(seq[0])); p++) {
        s32 bad = pass(w, nw, seq[p], seq[p + 1]);
        if (bad >= 0) {
            u32 addr = (u32)(uptr)&w[bad];
            gprintf("GUEST fail memtest addr=0x%08x expected=0x%08x "
                    "got=0x%08x\n",
                    addr, pattern(seq[p], addr), w[bad]);
            return;
        }
        if (inject && p == 0) {
            w[nw / 2 + 3] ^= 0x00000080; /* one bit of one word */
        }
    }
    gprintf("GUEST pass memtest\n");
}
