/*
 * Guest RAM's VMM-side dirty bitmap: what godwit writes while tracking
 * is marked by page of the memfd, across the PCI hole, and nothing else.
 */
#include <string.h>
#include <godwit/memory.h>

static GwGuestMemory *
ram(uint64_t size)
{
    g_autoptr(GError) err = NULL;
    GwGuestMemory *mem = gw_mem_new(size, false, true, &err);

    g_assert_no_error(err);
    return mem;
}

static bool
bit(const unsigned long *b, uint64_t page)
{
    return b[page / (8 * sizeof(long))] >> (page % (8 * sizeof(long))) & 1;
}

static guint
count(const unsigned long *b, size_t words)
{
    guint n = 0;

    for (size_t i = 0; i < words; i++) {
        n += (guint)__builtin_popcountl(b[i]);
    }
    return n;
}

static void
test_untracked_writes_not_marked(void)
{
    g_autoptr(GwGuestMemory) mem = ram(16 << 20);
    g_autofree unsigned long *out =
        g_new0(unsigned long, gw_mem_dirty_words(mem));
    uint32_t v = 1;

    g_assert_true(gw_mem_write(mem, 0x1000, &v, sizeof(v)));
    gw_mem_dirty_start(mem);
    g_assert_cmpuint(gw_mem_dirty_collect(mem, out), ==, 0);
    gw_mem_dirty_stop(mem);
    g_assert_true(gw_mem_write(mem, 0x2000, &v, sizeof(v)));
    g_assert_cmpuint(gw_mem_dirty_collect(mem, out), ==, 0);
}

static void
test_writes_marked_by_page(void)
{
    g_autoptr(GwGuestMemory) mem = ram(16 << 20);
    size_t words = gw_mem_dirty_words(mem);
    g_autofree unsigned long *out = g_new0(unsigned long, words);
    uint8_t buf[8192] = {1};

    gw_mem_dirty_start(mem);
    /* 2 bytes across a page boundary, then 8 KiB from mid-page: 2 + 3. */
    g_assert_true(gw_mem_write(mem, 0x3fff, buf, 2));
    g_assert_true(gw_mem_write(mem, 0x10800, buf, sizeof(buf)));
    g_assert_false(gw_mem_write(mem, (16 << 20) - 1, buf, 2)); /* not RAM */
    gw_mem_mark_dirty(mem, 0xfee00000, 4);                     /* not RAM */
    g_assert_cmpuint(gw_mem_dirty_collect(mem, out), ==, 5);
    g_assert_true(bit(out, 3) && bit(out, 4));
    g_assert_true(bit(out, 0x10) && bit(out, 0x11) && bit(out, 0x12));
    g_assert_cmpuint(count(out, words), ==, 5);
    /* Collected means cleared; marking again a page already in `out`
     * is not counted as new. */
    g_assert_cmpuint(gw_mem_dirty_collect(mem, out), ==, 0);
    g_assert_true(gw_mem_write(mem, 0x3000, buf, 1));
    g_assert_cmpuint(gw_mem_dirty_collect(mem, out), ==, 0);
    g_assert_cmpuint(count(out, words), ==, 5);
}

/* Above the hole, pages are numbered by memfd offset, not by address. */
static void
test_high_region_by_offset(void)
{
    uint64_t size = GW_MEM_LOW_END + (8 << 20);
    g_autoptr(GwGuestMemory) mem = ram(size);
    g_autofree unsigned long *out =
        g_new0(unsigned long, gw_mem_dirty_words(mem));
    uint64_t v = 7;

    gw_mem_dirty_start(mem);
    g_assert_true(gw_mem_write(mem, GW_MEM_HIGH_GPA + 0x5000, &v, sizeof(v)));
    g_assert_cmpuint(gw_mem_dirty_collect(mem, out), ==, 1);
    g_assert_true(bit(out, GW_MEM_LOW_END / GW_MEM_PAGE + 5));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/memory/dirty/untracked-writes-not-marked",
                    test_untracked_writes_not_marked);
    g_test_add_func("/memory/dirty/writes-marked-by-page",
                    test_writes_marked_by_page);
    g_test_add_func("/memory/dirty/high-region-by-memfd-offset",
                    test_high_region_by_offset);
    return g_test_run();
}
