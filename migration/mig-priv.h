/*
 * Private to migration/: explicit little-endian loads and stores of
 * unaligned bytes, whatever the host's byte order.
 */
#pragma once

#include <stdint.h>

static inline void
gw_mig_st32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = v >> (8 * i);
    }
}

static inline void
gw_mig_st64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = v >> (8 * i);
    }
}

static inline uint32_t
gw_mig_ld32(const uint8_t *p)
{
    return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t
gw_mig_ld64(const uint8_t *p)
{
    return gw_mig_ld32(p) | (uint64_t)gw_mig_ld32(p + 4) << 32;
}
