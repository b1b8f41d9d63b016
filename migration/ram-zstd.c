/*
 * RAM_ZSTD records: a RAM batch payload compressed as one zstd frame,
 * for multifd-compression zstd (docs/migration.md, "Compressed
 * channels").  Each channel has its own GwMigZstd, so channels compress
 * in parallel; one thread per object.
 *
 * The frame is decompressed in one call into a buffer of exactly the
 * length the record's header gives (at most GW_MIG_ZSTD_MAX_RAW), so a
 * frame that would decompress to more fails inside zstd, before any
 * byte goes past the buffer, and one that gives less is refused after.
 */
#include <zstd.h>
#include <godwit/mig-stream.h>
#include "mig-priv.h"

struct GwMigZstd {
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    int level;
    uint8_t *out; /* compressing: u32 raw length, then the frame */
    size_t out_cap;
    uint8_t *raw; /* decompressing: the batch */
};

GwMigZstd *
gw_mig_zstd_new(int level)
{
    GwMigZstd *z = g_new0(GwMigZstd, 1);

    g_assert(level >= 0 && level <= GW_MIG_ZSTD_LEVEL_MAX);
    z->level = level;
    return z;
}

void
gw_mig_zstd_free(GwMigZstd *z)
{
    if (z) {
        ZSTD_freeCCtx(z->cctx);
        ZSTD_freeDCtx(z->dctx);
        g_free(z->out);
        g_free(z->raw);
        g_free(z);
    }
}

static bool
zstd_error(GError **errp, const char *what, size_t code)
{
    g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT, "RAM_ZSTD: %s: %s",
                what, ZSTD_getErrorName(code));
    return false;
}

/* The frame of `raw_len` bytes in `iov`, after the u32 in z->out. */
static bool
compress_iov(GwMigZstd *z, const struct iovec *iov, int iovcnt, size_t raw_len,
             size_t *out_len, GError **errp)
{
    ZSTD_outBuffer out = {z->out + 4, z->out_cap - 4, 0};
    size_t r;

    ZSTD_CCtx_reset(z->cctx, ZSTD_reset_session_only);
    ZSTD_CCtx_setPledgedSrcSize(z->cctx, raw_len); /* size in the frame */
    for (int i = 0; i < iovcnt; i++) {
        ZSTD_inBuffer in = {iov[i].iov_base, iov[i].iov_len, 0};
        ZSTD_EndDirective end = i == iovcnt - 1 ? ZSTD_e_end : ZSTD_e_continue;
        do {
            r = ZSTD_compressStream2(z->cctx, &out, &in, end);
            if (ZSTD_isError(r)) {
                return zstd_error(errp, "compressing", r);
            }
            g_assert(out.pos < out.size); /* the buffer is the bound */
        } while (in.pos < in.size || (end == ZSTD_e_end && r));
    }
    *out_len = 4 + out.pos;
    return true;
}

static void
compress_init(GwMigZstd *z)
{
    if (z->cctx) {
        return;
    }
    z->cctx = ZSTD_createCCtx();
    g_assert(z->cctx); /* out of memory */
    ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, z->level);
    ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_checksumFlag, 0); /* XXH3 has it */
    z->out_cap = 4 + ZSTD_compressBound(GW_MIG_ZSTD_MAX_RAW);
    z->out = g_malloc(z->out_cap);
}

bool
gw_mig_ram_batch_send_zstd(GwMigRamBatch *b, GwMigWriter *w, GwMigZstd *z,
                           GError **errp)
{
    int iovcnt;
    size_t raw_len = 0, out_len = 0;
    bool ok;

    if (!gw_mig_ram_batch_count(b)) {
        return true;
    }
    compress_init(z);
    const struct iovec *iov = gw_mig_ram_batch_iov(b, &iovcnt);
    for (int i = 0; i < iovcnt; i++) {
        raw_len += iov[i].iov_len;
    }
    g_assert(raw_len <= GW_MIG_ZSTD_MAX_RAW); /* batches of 256 pages */
    gw_mig_st32(z->out, (uint32_t)raw_len);
    ok = compress_iov(z, iov, iovcnt, raw_len, &out_len, errp) &&
         gw_mig_write(w, GW_MIG_REC_RAM_ZSTD, z->out, out_len, errp);
    gw_mig_ram_batch_reset(b);
    return ok;
}

bool
gw_mig_zstd_decompress(GwMigZstd *z, const void *payload, size_t len,
                       const uint8_t **raw, size_t *raw_len, GError **errp)
{
    const uint8_t *p = payload;
    uint32_t want = len >= 4 ? gw_mig_ld32(p) : 0;
    size_t got;

    if (want == 0 || want > GW_MIG_ZSTD_MAX_RAW) {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT,
                    "RAM_ZSTD: a batch of %u bytes (1 … %u allowed)", want,
                    GW_MIG_ZSTD_MAX_RAW);
        return false;
    }
    if (!z->dctx) {
        z->dctx = ZSTD_createDCtx();
        g_assert(z->dctx); /* out of memory */
        z->raw = g_malloc(GW_MIG_ZSTD_MAX_RAW);
    }
    got = ZSTD_decompressDCtx(z->dctx, z->raw, want, p + 4, len - 4);
    if (ZSTD_isError(got)) {
        return zstd_error(errp, "corrupt frame", got);
    }
    if (got != want) {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT,
                    "RAM_ZSTD: the frame decompresses to %zu bytes, the "
                    "header says %u",
                    got, want);
        return false;
    }
    *raw = z->raw;
    *raw_len = got;
    return true;
}
