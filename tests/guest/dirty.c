/* dirty [pages=N] [rounds=N] [inject-error=1]: N 4 KiB pages above the
 * guest image, each stamped with (page, seq) and a checksum.  Every round
 * rewrites all pages with seq+1, then verifies all of them.  rounds=0
 * runs forever: a page a migration failed to copy shows an old seq. */
#include "guest.h"

#define PAGE_WORDS 1024
#define MAGIC      0x44495254 /* "DIRT" */

/* Word i (3 <= i < 1023) holds seed + i * STEP: cheap to write and check
 * (about 5 and 7 instructions a word), different in every page and seq. */
#define STEP 0x85EBCA6Bu

static inline u32
seed(u32 page, u32 seq)
{
    return (page << 16) ^ (seq * 0x9E3779B1u);
}

static void
stamp(volatile u32 *w, u32 page, u32 seq)
{
    u32 v = seed(page, seq) + 3 * STEP;
    u32 sum = MAGIC + page + seq;

    w[0] = MAGIC;
    w[1] = page;
    w[2] = seq;
    for (u32 i = 3; i < PAGE_WORDS - 1; i++) {
        w[i] = v;
        sum += v;
        v += STEP;
    }
    w[PAGE_WORDS - 1] = ~sum;
}

/* Returns the first bad word index or -1; exp and got describe it. */
static s32
check(volatile u32 *w, u32 page, u32 seq, u32 *exp, u32 *got)
{
    const u32 head[3] = {MAGIC, page, seq};
    u32 v = seed(page, seq) + 3 * STEP;
    u32 sum = MAGIC + page + seq;

    for (u32 i = 0; i < 3; i++) {
        if (w[i] != head[i]) {
            *exp = head[i];
            *got = w[i];
            return (s32)i;
        }
    }
    for (u32 i = 3; i < PAGE_WORDS - 1; i++) {
        u32 x = w[i];
        if (x != v) {
            *exp = v;
            *got = x;
            return (s32)i;
        }
        sum += x;
        v += STEP;
    }
    if (w[PAGE_WORDS - 1] != ~sum) {
        *exp = ~sum;
        *got = w[PAGE_WORDS - 1];
        return PAGE_WORDS - 1;
    }
    return -1;
}

void
wl_dirty(const struct args *a)
{
    static const char *const allowed[] = {"pages", "rounds", "inject-error",
                                          NULL};
    if (!args_check(a, allowed)) {
        return;
    }
    u32 pages = arg_u32(a, "pages", 64);
    u32 rounds = arg_u32(a, "rounds", 3);
    bool inject = arg_u32(a, "inject-error", 0);
    u32 base = work_base();

    if (!pages || pages > 0x100000 || !mb_ram_ok(base, pages * 4096)) {
        gprintf("GUEST fail dirty pages=%u base=0x%x not-available\n", pages,
                base);
        return;
    }
    volatile u32 *mem = (volatile u32 *)(uptr)base;
    u32 seq = 0;
    for (u32 p = 0; p < pages; p++) {
        stamp(mem + p * PAGE_WORDS, p, seq);
    }
    for (u32 r = 1; rounds == 0 || r <= rounds; r++) {
        seq++;
        for (u32 p = 0; p < pages; p++) {
            stamp(mem + p * PAGE_WORDS, p, seq);
        }
        if (inject && r == 1) {
            mem[(pages / 2) * PAGE_WORDS + 100] ^= 0x00010000;
        }
        for (u32 p = 0; p < pages; p++) {
            u32 exp, got;
            s32 bad = check(mem + p * PAGE_WORDS, p, seq, &exp, &got);
            if (bad >= 0) {
                gprintf("GUEST fail dirty round=%u seq=%u page=%u word=%d "
                        "expected=0x%08x got=0x%08x\n",
                        r, seq, p, bad, exp, got);
                return;
            }
        }
        gprintf("GUEST dirty round=%u seq=%u pass\n", r, seq);
    }
    gprintf("GUEST pass dirty\n");
}
