/*
 * RAM batches: the payload of a RAM record, built as iovecs over guest
 * memory (or a bounce buffer) and parsed in place.  See
 * include/godwit/mig-stream.h; one thread per batch.
 */
#include <string.h>
#include <godwit/mig-stream.h>
#include "mig-priv.h"

struct GwMigRamBatch {
    unsigned max, count, ndata;
    GwMigRamBatchMode mode;
    uint8_t *table;    /* u32 count, then count u64 entries */
    struct iovec *iov; /* [0] table, then one per DATA page */
    uint8_t *bounce;   /* max pages, BOUNCE mode only */
};

/* Guest RAM has no declared type: read it as words without aliasing UB. */
typedef uint64_t __attribute__((may_alias)) Word;

bool
gw_mig_page_is_zero(const void *page)
{
    const Word *w = page;

    for (size_t i = 0; i < GW_MIG_PAGE_SIZE / sizeof(Word); i += 8) {
        if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] |
            w[i + 6] | w[i + 7]) {
            return false;
        }
    }
    return true;
}

GwMigRamBatch *
gw_mig_ram_batch_new(unsigned max_pages, GwMigRamBatchMode mode)
{
    GwMigRamBatch *b = g_new0(GwMigRamBatch, 1);

    g_assert(max_pages >= 1 && max_pages <= GW_MIG_RAM_BATCH_MAX_PAGES);
    b->max = max_pages;
    b->mode = mode;
    b->table = g_malloc(4 + 8 * (size_t)max_pages);
    b->iov = g_new(struct iovec, 1 + max_pages);
    if (mode == GW_MIG_RAM_BATCH_BOUNCE) {
        b->bounce =
            g_aligned_alloc(max_pages, GW_MIG_PAGE_SIZE, GW_MIG_PAGE_SIZE);
    }
    return b;
}

void
gw_mig_ram_batch_free(GwMigRamBatch *b)
{
    if (b) {
        g_aligned_free(b->bounce);
        g_free(b->iov);
        g_free(b->table);
        g_free(b);
    }
}

unsigned
gw_mig_ram_batch_count(const GwMigRamBatch *b)
{
    return b->count;
}

bool
gw_mig_ram_batch_full(const GwMigRamBatch *b)
{
    return b->count == b->max;
}

void
gw_mig_ram_batch_reset(GwMigRamBatch *b)
{
    b->count = 0;
    b->ndata = 0;
}

void
gw_mig_ram_batch_set_mode(GwMigRamBatch *b, GwMigRamBatchMode mode)
{
    g_assert(b->count == 0);
    g_assert(mode != GW_MIG_RAM_BATCH_BOUNCE || b->bounce);
    b->mode = mode;
}

static void
add_entry(GwMigRamBatch *b, uint64_t gpa, unsigned flag)
{
    g_assert(!gw_mig_ram_batch_full(b));
    g_assert((gpa & GW_MIG_PAGE_FLAGS_MASK) == 0);
    gw_mig_st64(b->table + 4 + 8 * (size_t)b->count, gpa | flag);
    b->count++;
}

void
gw_mig_ram_batch_add_zero(GwMigRamBatch *b, uint64_t gpa)
{
    add_entry(b, gpa, GW_MIG_PAGE_ZERO);
}

void
gw_mig_ram_batch_add(GwMigRamBatch *b, uint64_t gpa, const void *page)
{
    const void *data = page;

    if (b->mode == GW_MIG_RAM_BATCH_BOUNCE) {
        /* copy first, then judge the copy: it is what gets sent */
        uint8_t *slot = b->bounce + (size_t)b->ndata * GW_MIG_PAGE_SIZE;
        g_assert(!gw_mig_ram_batch_full(b));
        memcpy(slot, page, GW_MIG_PAGE_SIZE);
        data = slot;
    }
    if (gw_mig_page_is_zero(data)) {
        add_entry(b, gpa, GW_MIG_PAGE_ZERO);
        return;
    }
    add_entry(b, gpa, GW_MIG_PAGE_DATA);
    b->iov[1 + b->ndata++] = (struct iovec){(void *)data, GW_MIG_PAGE_SIZE};
}

const struct iovec *
gw_mig_ram_batch_iov(GwMigRamBatch *b, int *iovcnt)
{
    gw_mig_st32(b->table, b->count);
    b->iov[0] = (struct iovec){b->table, 4 + 8 * (size_t)b->count};
    *iovcnt = 1 + b->ndata;
    return b->iov;
}

uint64_t
gw_mig_ram_batch_wire_size(GwMigRamBatch *b)
{
    if (!b->count) {
        return 0;
    }
    return GW_MIG_RECORD_HEADER + 4 + 8 * (uint64_t)b->count +
           (uint64_t)b->ndata * GW_MIG_PAGE_SIZE;
}

bool
gw_mig_ram_batch_send(GwMigRamBatch *b, GwMigWriter *w, GError **errp)
{
    int iovcnt;

    if (b->count == 0) {
        return true;
    }
    const struct iovec *iov = gw_mig_ram_batch_iov(b, &iovcnt);
    bool ok = gw_mig_writev(w, GW_MIG_REC_RAM, iov, iovcnt, errp);
    gw_mig_ram_batch_reset(b);
    return ok;
}

/* --- zero ranges -------------------------------------------------------- */

void
gw_mig_zero_range_encode(uint8_t out[GW_MIG_ZERO_RANGE_LEN], uint64_t gpa,
                         uint64_t len)
{
    g_assert(len && !((gpa | len) & GW_MIG_PAGE_FLAGS_MASK));
    gw_mig_st64(out, gpa);
    gw_mig_st64(out + 8, len);
}

bool
gw_mig_zero_range_parse(const void *payload, size_t len, uint64_t *gpa,
                        uint64_t *n, GError **errp)
{
    const uint8_t *p = payload;

    if (len != GW_MIG_ZERO_RANGE_LEN) {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT,
                    "ZERO_RANGE: %zu bytes, not %u", len,
                    GW_MIG_ZERO_RANGE_LEN);
        return false;
    }
    *gpa = gw_mig_ld64(p);
    *n = gw_mig_ld64(p + 8);
    if (!*n || ((*gpa | *n) & GW_MIG_PAGE_FLAGS_MASK) || *gpa + *n < *gpa) {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT,
                    "ZERO_RANGE: 0x%" G_GINT64_MODIFIER
                    "x + 0x%" G_GINT64_MODIFIER
                    "x is not a range of whole pages",
                    *gpa, *n);
        return false;
    }
    return true;
}

/* --- parsing ----------------------------------------------------------- */

static bool batch_error(GError **errp, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

static bool
batch_error(GError **errp, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT, "RAM batch: %s", msg);
    return false;
}

/* Checks the whole table against the payload length: nothing applied. */
static bool
check_batch(const uint8_t *p, size_t len, GError **errp)
{
    uint32_t count = len >= 4 ? gw_mig_ld32(p) : 0;
    size_t ndata = 0;

    if (count == 0 || count > (len - 4) / 8) {
        return batch_error(errp, "%u pages do not fit in %zu bytes", count,
                           len);
    }
    for (uint32_t i = 0; i < count; i++) {
        uint64_t e = gw_mig_ld64(p + 4 + 8 * (size_t)i);
        unsigned flags = e & GW_MIG_PAGE_FLAGS_MASK;
        if (flags != GW_MIG_PAGE_ZERO && flags != GW_MIG_PAGE_DATA) {
            return batch_error(errp,
                               "entry %u (0x%" G_GINT64_MODIFIER "x): low "
                               "bits 0x%x are not one known flag",
                               i, e, flags);
        }
        ndata += flags == GW_MIG_PAGE_DATA;
    }
    size_t want = 4 + 8 * (size_t)count + ndata * GW_MIG_PAGE_SIZE;
    if (len != want) {
        return batch_error(errp,
                           "%u pages, %zu with data, need %zu bytes, "
                           "not %zu",
                           count, ndata, want, len);
    }
    return true;
}

bool
gw_mig_ram_batch_parse(const void *payload, size_t len, GwMigPageFn page,
                       void *opaque, GError **errp)
{
    const uint8_t *p = payload;

    if (!check_batch(p, len, errp)) {
        return false;
    }
    uint32_t count = gw_mig_ld32(p);
    const uint8_t *data = p + 4 + 8 * (size_t)count;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t e = gw_mig_ld64(p + 4 + 8 * (size_t)i);
        uint64_t gpa = e & ~(uint64_t)GW_MIG_PAGE_FLAGS_MASK;
        const uint8_t *d = NULL;
        if ((e & GW_MIG_PAGE_FLAGS_MASK) == GW_MIG_PAGE_DATA) {
            d = data;
            data += GW_MIG_PAGE_SIZE;
        }
        if (!page(opaque, gpa, d, errp)) {
            return false;
        }
    }
    return true;
}
