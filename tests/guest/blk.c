/* blk [dev=bb:dd.f] [sectors=N] [expect-capacity=N] [timeout-ms=N]
 * [rounds=N] [inject-error=1]: drives a modern virtio-blk (1af4:1042, or a
 * transitional 1af4:1001 with modern capabilities) through one polled
 * split queue.  Writes distinct patterns to N sectors at the start, the
 * middle and the end of the disk, then reads each region back and
 * verifies every word (so a device that ignores the sector number shows
 * the wrong region's pattern), then reads one sector past the end, which
 * must complete with VIRTIO_BLK_S_IOERR.  rounds=N does that N times
 * (0 = forever) with a new pattern each round, printing a line per round:
 * for migration tests, a write lost or run on stale data shows. */
#include "virtio.h"

#define VIRTIO_BLK_T_IN    0
#define VIRTIO_BLK_T_OUT   1
#define VIRTIO_BLK_S_OK    0
#define VIRTIO_BLK_S_IOERR 1
#define SECTOR             512
#define MAX_SECTORS        64
#define REQ_TIMEOUT        -1
#define BLK_MODERN         0x1042
#define BLK_TRANSITIONAL   0x1001

static struct virtq blk_vq __attribute__((aligned(4096)));
static u8 wbuf[MAX_SECTORS * SECTOR] __attribute__((aligned(4096)));
static u8 rbuf[MAX_SECTORS * SECTOR] __attribute__((aligned(4096)));
static struct {
    u32 type;
    u32 reserved;
    u64 sector;
} blk_hdr __attribute__((aligned(16)));
static volatile u8 blk_status;
static u32 blk_runs;

/* The status byte, or REQ_TIMEOUT after printing a fail line. */
static int
blk_rw(struct virtio_dev *d, u32 type, u64 sector, u8 *buf, u32 nsec,
       u32 timeout_ms)
{
    struct vbuf b[3] = {
        {&blk_hdr, sizeof(blk_hdr), false},
        {buf, nsec * SECTOR, type == VIRTIO_BLK_T_IN},
        {(void *)&blk_status, 1, true},
    };

    blk_hdr.type = type;
    blk_hdr.reserved = 0;
    blk_hdr.sector = sector;
    blk_status = 0xFF;
    if (!virtio_xfer(d, &blk_vq, b, 3, timeout_ms)) {
        gprintf("GUEST fail blk %s timeout op=%s sector=%llu\n", d->name,
                type == VIRTIO_BLK_T_IN ? "read" : "write", sector);
        return REQ_TIMEOUT;
    }
    return blk_status;
}

static u32
pattern(u32 seed, u64 sector, u32 word)
{
    /* odd multiplier: a bijection, so every (sector, word) differs */
    return ((u32)sector * (SECTOR / 4) + word) * 0x9E3779B1u ^ seed;
}

static void
fill(u32 seed, u64 sector, u32 nsec)
{
    u32 *w = (u32 *)wbuf;
    for (u32 i = 0; i < nsec * SECTOR / 4; i++) {
        w[i] = pattern(seed, sector + i / (SECTOR / 4), i % (SECTOR / 4));
    }
}

static bool
rw_ok(struct virtio_dev *d, u32 type, u64 sector, u8 *buf, u32 nsec,
      u32 timeout_ms)
{
    int st = blk_rw(d, type, sector, buf, nsec, timeout_ms);
    if (st != VIRTIO_BLK_S_OK && st != REQ_TIMEOUT) {
        gprintf("GUEST fail blk %s %s sector=%llu status=%d\n", d->name,
                type == VIRTIO_BLK_T_IN ? "read" : "write", sector, st);
    }
    return st == VIRTIO_BLK_S_OK;
}

static bool
verify(struct virtio_dev *d, u32 seed, u64 sector, u32 nsec, u32 timeout_ms)
{
    memset(rbuf, 0, nsec * SECTOR);
    if (!rw_ok(d, VIRTIO_BLK_T_IN, sector, rbuf, nsec, timeout_ms)) {
        return false;
    }
    const volatile u32 *w = (const volatile u32 *)rbuf;
    for (u32 i = 0; i < nsec * SECTOR / 4; i++) {
        u64 s = sector + i / (SECTOR / 4);
        u32 want = pattern(seed, s, i % (SECTOR / 4));
        if (w[i] != want) {
            gprintf("GUEST fail blk %s sector=%llu word=%u expected=0x%08x "
                    "got=0x%08x\n",
                    d->name, s, i % (SECTOR / 4), want, w[i]);
            return false;
        }
    }
    return true;
}

static bool
blk_io(struct virtio_dev *d, u64 cap, const struct blk_opts *o)
{
    u32 n = o->sectors, t = o->timeout_ms;
    u64 start[3] = {0, cap / 2, cap - n};
    u32 seed;

    __asm__ volatile("rdtsc" : "=a"(seed) : : "edx");
    seed ^= ++blk_runs << 24; /* a stale disk from an earlier run fails */
    for (int r = 0; r < 3; r++) {
        fill(seed, start[r], n);
        if (!rw_ok(d, VIRTIO_BLK_T_OUT, start[r], wbuf, n, t)) {
            return false;
        }
    }
    if (o->inject) {
        fill(seed, start[1], 1);
        wbuf[100] ^= 0xFF;
        if (!rw_ok(d, VIRTIO_BLK_T_OUT, start[1], wbuf, 1, t)) {
            return false;
        }
    }
    for (int r = 0; r < 3; r++) {
        if (!verify(d, seed, start[r], n, t)) {
            return false;
        }
    }
    int st = blk_rw(d, VIRTIO_BLK_T_IN, cap, rbuf, 1, t);
    if (st != VIRTIO_BLK_S_IOERR) {
        if (st != REQ_TIMEOUT) {
            gprintf("GUEST fail blk %s read-past-end sector=%llu status=%d\n",
                    d->name, cap, st);
        }
        return false;
    }
    return true;
}

bool
blk_check(struct virtio_dev *d, u32 bdf, const struct blk_opts *o)
{
    memset(d, 0, sizeof(*d));
    if (!virtio_check_id(bdf, BLK_MODERN, BLK_TRANSITIONAL, "blk", "blk")) {
        return false;
    }
    if (!virtio_pci_probe(d, bdf, "blk")) {
        return false;
    }
    d->dma_offset = o->dma_offset;
    if (!virtio_start(d, &blk_vq, "blk")) {
        return false;
    }
    u64 cap = virtio_cfg32(d, 0) | (u64)virtio_cfg32(d, 4) << 32;
    gprintf("GUEST blk %s capacity=%llu\n", d->name, cap);
    gprintf("GUEST blk %s features=0x%llx bars=%s\n", d->name, d->features,
            d->bars_assigned ? "guest" : "firmware");
    if (o->has_expect && cap != o->expect_capacity) {
        gprintf("GUEST fail blk %s capacity=%llu expected=%llu\n", d->name, cap,
                o->expect_capacity);
        return false;
    }
    if (cap < 4ull * o->sectors) {
        gprintf("GUEST fail blk %s capacity=%llu too-small sectors=%u\n",
                d->name, cap, o->sectors);
        return false;
    }
    for (u32 r = 1; !o->rounds || r <= o->rounds; r++) {
        if (!blk_io(d, cap, o)) {
            return false;
        }
        if (o->rounds != 1) {
            gprintf("GUEST blk %s round=%u pass\n", d->name, r);
        }
    }
    gprintf("GUEST pass blk\n");
    return true;
}

bool
blk_opts_parse(const struct args *a, struct blk_opts *o)
{
    o->dma_offset = 0;
    o->sectors = arg_u32(a, "sectors", 8);
    o->timeout_ms = arg_u32(a, "timeout-ms", 10000);
    o->inject = arg_u32(a, "inject-error", 0);
    o->rounds = arg_u32(a, "rounds", 1);
    o->has_expect = false;
    for (int i = 0; i < a->n; i++) {
        o->has_expect |= !strcmp(a->key[i], "expect-capacity");
    }
    o->expect_capacity = arg_u32(a, "expect-capacity", 0);
    if (!o->sectors || o->sectors > MAX_SECTORS) {
        gprintf("GUEST fail %s sectors=%u out-of-range max=%u\n", a->name,
                o->sectors, MAX_SECTORS);
        return false;
    }
    return true;
}

u32
blk_dma_regions(u32 sectors, struct dma_region *r)
{
    r[0] = (struct dma_region){&blk_vq, sizeof(blk_vq), DMA_READ | DMA_WRITE,
                               "ring"};
    r[1] = (struct dma_region){&blk_hdr, sizeof(blk_hdr), DMA_READ, "hdr"};
    r[2] = (struct dma_region){wbuf, sectors * SECTOR, DMA_READ, "wbuf"};
    r[BLK_REGION_RBUF] =
        (struct dma_region){rbuf, sectors * SECTOR, DMA_WRITE, "rbuf"};
    r[4] = (struct dma_region){(const void *)&blk_status, 1, DMA_WRITE,
                               "status"};
    return BLK_DMA_REGIONS;
}

const volatile u8 *
blk_post_read(struct virtio_dev *d, u64 sector, struct virtq **q_out)
{
    struct vbuf b[3] = {
        {&blk_hdr, sizeof(blk_hdr), false},
        {rbuf, SECTOR, true},
        {(void *)&blk_status, 1, true},
    };

    blk_hdr.type = VIRTIO_BLK_T_IN;
    blk_hdr.reserved = 0;
    blk_hdr.sector = sector;
    blk_status = 0xFF;
    virtq_post(&blk_vq, 0, b, 3);
    virtq_kick(&blk_vq);
    *q_out = &blk_vq;
    return &blk_status;
}

void
wl_blk(const struct args *a)
{
    static const char *const allowed[] = {
        "dev",          "sectors", "expect-capacity", "timeout-ms",
        "inject-error", "rounds",  NULL};
    struct blk_opts o;
    struct virtio_dev d;
    u32 bdf = 0;

    if (!args_check(a, allowed) || !blk_opts_parse(a, &o)) {
        return;
    }
    if (!virtio_pick(a, BLK_MODERN, BLK_TRANSITIONAL, &bdf)) {
        return;
    }
    blk_check(&d, bdf, &o);
    if (d.common) {
        virtio_stop(&d);
    }
}
