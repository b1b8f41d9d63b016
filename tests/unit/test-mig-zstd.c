/*
 * RAM_ZSTD records (migration/ram-zstd.c): a batch written compressed
 * reads back as the same pages; a frame that lies about its size, is
 * not zstd, or decompresses past a batch is refused with a FORMAT error.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zstd.h>
#include <godwit/mig-stream.h>

#define PAGE GW_MIG_PAGE_SIZE

typedef struct {
    unsigned n, zero;
    uint64_t gpa[GW_MIG_RAM_BATCH_PAGES];
    uint8_t first[GW_MIG_RAM_BATCH_PAGES];
} Seen;

static bool
seen_page(void *opaque, uint64_t gpa, const void *data, GError **errp)
{
    Seen *s = opaque;

    s->gpa[s->n] = gpa;
    s->first[s->n] = data ? ((const uint8_t *)data)[17] : 0;
    s->zero += !data;
    s->n++;
    return true;
}

/* Writes `b` compressed at `level` into a memfd and reads the record. */
static GBytes *
write_and_read(GwMigRamBatch *b, int level, uint32_t *type)
{
    int fd = memfd_create("zstd", MFD_CLOEXEC);
    g_autoptr(GwMigWriter) w = gw_mig_writer_new(fd);
    g_autoptr(GwMigReader) r = gw_mig_reader_new(fd);
    g_autoptr(GwMigZstd) z = gw_mig_zstd_new(level);
    g_autoptr(GError) err = NULL;
    GBytes *payload = NULL;

    g_assert_true(gw_mig_ram_batch_send_zstd(b, w, z, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(gw_mig_ram_batch_count(b), ==, 0);
    g_assert_cmpint(lseek(fd, 0, SEEK_SET), ==, 0);
    g_assert_true(gw_mig_read(r, type, &payload, &err));
    g_assert_no_error(err);
    close(fd);
    return payload;
}

/* 256 pages: every third zero, the others half a pattern, half zero. */
static uint8_t *
make_pages(GwMigRamBatch *b)
{
    uint8_t *ram = g_malloc0((size_t)GW_MIG_RAM_BATCH_PAGES * PAGE);

    for (unsigned i = 0; i < GW_MIG_RAM_BATCH_PAGES; i++) {
        uint8_t *p = ram + (size_t)i * PAGE;
        if (i % 3) {
            for (unsigned k = 0; k < PAGE / 2; k++) {
                p[k] = (uint8_t)(i * 7 + k * 13);
            }
        }
        gw_mig_ram_batch_add(b, 0x100000 + (uint64_t)i * PAGE, p);
    }
    return ram;
}

static void
test_round_trip(void)
{
    g_autoptr(GwMigRamBatch) b =
        gw_mig_ram_batch_new(GW_MIG_RAM_BATCH_PAGES, GW_MIG_RAM_BATCH_BOUNCE);
    g_autofree uint8_t *ram = make_pages(b);
    g_autoptr(GwMigZstd) z = gw_mig_zstd_new(0);
    g_autoptr(GError) err = NULL;
    uint32_t type;
    g_autoptr(GBytes) payload = write_and_read(b, 3, &type);
    gsize len;
    const uint8_t *data = g_bytes_get_data(payload, &len), *raw;
    size_t raw_len;
    Seen seen = {0};

    g_assert_cmpuint(type, ==, GW_MIG_REC_RAM_ZSTD);
    /* half of each data page is zero: well under half the raw size */
    g_assert_cmpuint(len, <, GW_MIG_ZSTD_MAX_RAW / 2);
    g_assert_true(gw_mig_zstd_decompress(z, data, len, &raw, &raw_len, &err));
    g_assert_no_error(err);
    g_assert_true(gw_mig_ram_batch_parse(raw, raw_len, seen_page, &seen, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(seen.n, ==, GW_MIG_RAM_BATCH_PAGES);
    g_assert_cmpuint(seen.zero, ==, (GW_MIG_RAM_BATCH_PAGES + 2) / 3);
    for (unsigned i = 0; i < GW_MIG_RAM_BATCH_PAGES; i++) {
        g_assert_cmphex(seen.gpa[i], ==, 0x100000 + (uint64_t)i * PAGE);
        g_assert_cmpuint(seen.first[i], ==, ram[(size_t)i * PAGE + 17]);
    }
}

/* Random data does not compress: the record is a little larger. */
static void
test_incompressible(void)
{
    g_autoptr(GwMigRamBatch) b =
        gw_mig_ram_batch_new(16, GW_MIG_RAM_BATCH_BOUNCE);
    g_autoptr(GRand) rnd = g_rand_new_with_seed(42);
    uint8_t page[PAGE];
    uint32_t type;

    for (unsigned i = 0; i < 16; i++) {
        for (unsigned k = 0; k < PAGE; k++) {
            page[k] = (uint8_t)g_rand_int(rnd);
        }
        gw_mig_ram_batch_add(b, (uint64_t)i * PAGE, page);
    }
    g_autoptr(GBytes) payload = write_and_read(b, 1, &type);
    g_assert_cmpuint(g_bytes_get_size(payload), >=, 16 * PAGE);
}

/* A payload: u32 claimed length, then `frame`. */
static GBytes *
payload_of(uint32_t claimed, const void *frame, size_t len)
{
    uint8_t *p = g_malloc(4 + len);

    p[0] = claimed;
    p[1] = claimed >> 8;
    p[2] = claimed >> 16;
    p[3] = claimed >> 24;
    memcpy(p + 4, frame, len);
    return g_bytes_new_take(p, 4 + len);
}

/* A zstd frame of `n` bytes of 'x'. */
static GBytes *
frame_of(size_t n)
{
    g_autofree uint8_t *src = g_malloc(n);
    size_t cap = ZSTD_compressBound(n);
    uint8_t *dst = g_malloc(cap);
    size_t got;

    memset(src, 'x', n);
    got = ZSTD_compress(dst, cap, src, n, 1);
    g_assert_false(ZSTD_isError(got));
    return g_bytes_new_take(dst, got);
}

static void
expect_refused(GBytes *payload, const char *needle)
{
    g_autoptr(GwMigZstd) z = gw_mig_zstd_new(1);
    g_autoptr(GError) err = NULL;
    gsize len;
    const uint8_t *data = g_bytes_get_data(payload, &len), *raw = NULL;
    size_t raw_len = 0;

    g_assert_false(gw_mig_zstd_decompress(z, data, len, &raw, &raw_len, &err));
    g_assert_error(err, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT);
    g_test_message("%s", err->message);
    g_assert_nonnull(strstr(err->message, needle));
}

static void
test_size_lies(void)
{
    g_autoptr(GBytes) f = frame_of(1000);
    gsize n;
    const void *frame = g_bytes_get_data(f, &n);
    g_autoptr(GBytes) more = payload_of(2000, frame, n);
    g_autoptr(GBytes) less = payload_of(500, frame, n);

    expect_refused(more, "decompresses to 1000 bytes, the header says 2000");
    expect_refused(less, "corrupt frame");
}

static void
test_larger_than_a_batch(void)
{
    g_autoptr(GBytes) f = frame_of(GW_MIG_ZSTD_MAX_RAW + 1);
    gsize n;
    const void *frame = g_bytes_get_data(f, &n);
    g_autoptr(GBytes) honest = payload_of(GW_MIG_ZSTD_MAX_RAW + 1, frame, n);
    g_autoptr(GBytes) lying = payload_of(GW_MIG_ZSTD_MAX_RAW, frame, n);
    g_autoptr(GBytes) zero = payload_of(0, frame, n);
    static const uint8_t shorty[3] = {1, 2, 3};
    g_autoptr(GBytes) tiny = g_bytes_new_static(shorty, sizeof(shorty));

    expect_refused(honest, "allowed");
    expect_refused(lying, "corrupt frame");
    expect_refused(zero, "a batch of 0 bytes");
    expect_refused(tiny, "a batch of 0 bytes");
}

static void
test_not_zstd(void)
{
    static const char junk[] = "this is not a zstd frame at all";
    g_autoptr(GBytes) p = payload_of(100, junk, sizeof(junk));
    g_autoptr(GBytes) empty = payload_of(1000, "", 0);

    expect_refused(p, "corrupt frame");
    expect_refused(empty, "decompresses to 0 bytes");
}

/* A flipped byte of a good frame is refused, or (a literal byte) gives
 * exactly the length the header claims: never more, never less. */
static void
test_flipped_bytes(void)
{
    g_autoptr(GwMigRamBatch) b =
        gw_mig_ram_batch_new(GW_MIG_RAM_BATCH_PAGES, GW_MIG_RAM_BATCH_BOUNCE);
    g_autofree uint8_t *ram = make_pages(b);
    uint32_t type;
    g_autoptr(GBytes) payload = write_and_read(b, 1, &type);
    gsize len = g_bytes_get_size(payload);
    g_autofree uint8_t *copy = g_memdup2(g_bytes_get_data(payload, NULL), len);
    g_autoptr(GwMigZstd) z = gw_mig_zstd_new(1);

    for (gsize at = 4; at < len; at += 97) {
        const uint8_t *raw;
        size_t raw_len;
        g_autoptr(GError) err = NULL;
        copy[at] ^= 0x5a;
        if (gw_mig_zstd_decompress(z, copy, len, &raw, &raw_len, &err)) {
            uint32_t claimed = copy[0] | copy[1] << 8 | copy[2] << 16 |
                               (uint32_t)copy[3] << 24;
            g_assert_cmpuint(raw_len, ==, claimed);
        } else {
            g_assert_error(err, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT);
        }
        copy[at] ^= 0x5a;
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/mig/zstd/round-trip/pages-and-zero-flags",
                    test_round_trip);
    g_test_add_func("/mig/zstd/random-data-does-not-shrink",
                    test_incompressible);
    g_test_add_func("/mig/zstd/refuses/size-other-than-header", test_size_lies);
    g_test_add_func("/mig/zstd/refuses/more-than-a-batch",
                    test_larger_than_a_batch);
    g_test_add_func("/mig/zstd/refuses/not-a-zstd-frame", test_not_zstd);
    g_test_add_func("/mig/zstd/refuses/flipped-bytes-or-says-so",
                    test_flipped_bytes);
    return g_test_run();
}
