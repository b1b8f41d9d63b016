/*
 * XXH3-64 for the stream's payload checksums, with xxHash's own AVX2
 * kernels where the CPU has AVX2.  Debian's libxxhash is built for SSE2
 * (about 5 GB/s here, a fifth of a 1 GiB migration's time on each
 * side); the AVX2 loop is about 2.5 times faster.  The kernels and the
 * algorithm are xxhash.h's, selected per call as its xxh_x86dispatch.c
 * does, so the hash is the library's bit for bit (checked against it in
 * tests/unit/test-mig-stream.c).  Any thread; the state is per caller.
 */
#include <stdint.h>
#include <stdlib.h>
#include <immintrin.h> /* the AVX2 kernels use its types */
#define XXH_INLINE_ALL
#define XXH_DISPATCH_AVX2 1
#define XXH_TARGET_AVX2   __attribute__((__target__("avx2")))
#include <xxhash.h>
#include <godwit/mig-stream.h>

struct GwMigXxh {
    XXH3_state_t *st;
};

static bool
have_avx2(void)
{
    return __builtin_cpu_supports("avx2");
}

static XXH_TARGET_AVX2 XXH64_hash_t
long_avx2(const void *in, size_t len, XXH64_hash_t seed, const xxh_u8 *secret,
          size_t secret_len)
{
    (void)seed;
    return XXH3_hashLong_64b_internal(in, len, secret, secret_len,
                                      XXH3_accumulate_512_avx2,
                                      XXH3_scrambleAcc_avx2);
}

static XXH_TARGET_AVX2 uint64_t
hash_avx2(const void *p, size_t len)
{
    return XXH3_64bits_internal(p, len, 0, XXH3_kSecret, sizeof(XXH3_kSecret),
                                long_avx2);
}

static XXH_TARGET_AVX2 void
update_avx2(XXH3_state_t *st, const void *p, size_t len)
{
    XXH3_update(st, (const xxh_u8 *)p, len, XXH3_accumulate_512_avx2,
                XXH3_scrambleAcc_avx2);
}

uint64_t
gw_mig_xxh3(const void *p, size_t len)
{
    return have_avx2() ? hash_avx2(p, len) : XXH3_64bits(p, len);
}

GwMigXxh *
gw_mig_xxh_new(void)
{
    GwMigXxh *h = g_new0(GwMigXxh, 1);

    h->st = XXH3_createState(); /* 64-byte aligned */
    g_assert(h->st);
    return h;
}

void
gw_mig_xxh_free(GwMigXxh *h)
{
    if (h) {
        XXH3_freeState(h->st);
        g_free(h);
    }
}

void
gw_mig_xxh_reset(GwMigXxh *h)
{
    XXH3_64bits_reset(h->st);
}

void
gw_mig_xxh_update(GwMigXxh *h, const void *p, size_t len)
{
    if (have_avx2()) {
        update_avx2(h->st, p, len);
    } else {
        XXH3_64bits_update(h->st, p, len);
    }
}

uint64_t
gw_mig_xxh_digest(const GwMigXxh *h)
{
    return XXH3_64bits_digest(h->st);
}
