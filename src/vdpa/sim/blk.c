/*
 * vdpasim_blk: virtio-blk over the simulator, as drivers/vdpa/vdpa_sim/
 * vdpa_sim_blk.c: features, config (rebuilt on every read), and request
 * handling with the kernel's range checks and status codes.  Storage is
 * dev->storage (anonymous or a shared file mapping).  Runs on the
 * device's worker thread with dev->lock held.
 *
 * Differences from the kernel, all on inputs where the kernel reads or
 * writes past its buffer: a start sector beyond the capacity is an
 * IOERR (the kernel only logs it), a transfer that is not a multiple of
 * 512 bytes is range-checked rounded up, and GET_ID writes at most the
 * data buffer (never the status byte).
 */
#include <errno.h>
#include <string.h>
#include "sim-priv.h"

#define SECTOR_SHIFT 9
#define BLK_SIZE_MAX 4096
#define BLK_SEG_MAX  32
#define BLK_DWZ_MAX  0xFFFFFFFFu

#define F(n) (1ull << (n))

/* The virtio-blk config layout (virtio spec 5.2.4), little endian. */
typedef struct __attribute__((packed)) {
    uint64_t capacity;
    uint32_t size_max;
    uint32_t seg_max;
    uint8_t geometry[4];
    uint32_t blk_size;
    uint8_t physical_block_exp;
    uint8_t alignment_offset;
    uint16_t min_io_size;
    uint32_t opt_io_size;
    uint8_t wce;
    uint8_t unused;
    uint16_t num_queues;
    uint32_t max_discard_sectors;
    uint32_t max_discard_seg;
    uint32_t discard_sector_alignment;
    uint32_t max_write_zeroes_sectors;
    uint32_t max_write_zeroes_seg;
    uint8_t write_zeroes_may_unmap;
    uint8_t unused1[3];
    uint32_t max_secure_erase_sectors;
    uint32_t max_secure_erase_seg;
    uint32_t secure_erase_sector_alignment;
    uint8_t zoned[24];
} BlkConfig;

_Static_assert(sizeof(BlkConfig) == GW_VIRTIO_BLK_CONFIG_SIZE, "96 bytes");

static void
blk_get_config(GwVdpaSimDev *d)
{
    BlkConfig *c = (BlkConfig *)d->config;

    memset(c, 0, sizeof(*c));
    c->capacity = d->capacity >> SECTOR_SHIFT;
    c->size_max = BLK_SIZE_MAX;
    c->seg_max = BLK_SEG_MAX;
    c->num_queues = 1;
    c->min_io_size = 1;
    c->opt_io_size = 1;
    c->blk_size = 512;
    c->discard_sector_alignment = 512;
    c->max_discard_sectors = BLK_DWZ_MAX;
    c->max_discard_seg = 1;
    c->max_write_zeroes_sectors = BLK_DWZ_MAX;
    c->max_write_zeroes_seg = 1;
}

static bool
check_range(GwVdpaSimDev *d, uint64_t start, uint64_t num, uint64_t max)
{
    uint64_t cap = d->capacity >> SECTOR_SHIFT;

    return start <= cap && num <= max && num <= cap - start;
}

typedef struct {
    uint32_t type;
    uint64_t sector;
    size_t to_push, to_pull, pushed;
} BlkReq;

static uint8_t
blk_rw(GwVdpaSimDev *d, SimVq *vq, BlkReq *q, bool in)
{
    size_t len = in ? q->to_push : q->to_pull;
    uint64_t nsect = (len + 511) >> SECTOR_SHIFT;
    uint8_t *at;
    ssize_t n;

    /* The guest's sector is checked before any pointer is formed from it. */
    if (!check_range(d, q->sector, nsect, BLK_SIZE_MAX * BLK_SEG_MAX)) {
        return VIRTIO_BLK_S_IOERR;
    }
    at = d->storage + (q->sector << SECTOR_SHIFT);
    n = in ? gw_sim_chain_push(d, vq, at, len)
           : gw_sim_chain_pull(d, vq, at, len);
    if (n < 0) {
        return 0xff; /* DMA fault */
    }
    if (in) {
        q->pushed += n;
    }
    return VIRTIO_BLK_S_OK;
}

static uint8_t
blk_dwz(GwVdpaSimDev *d, SimVq *vq, BlkReq *q)
{
    struct virtio_blk_discard_write_zeroes r;
    uint64_t sector;

    if (q->to_pull != sizeof(r)) {
        return VIRTIO_BLK_S_IOERR;
    }
    if (gw_sim_chain_pull(d, vq, &r, sizeof(r)) < 0) {
        return 0xff;
    }
    sector = r.sector;
    if (q->type == VIRTIO_BLK_T_DISCARD && r.flags != 0) {
        return VIRTIO_BLK_S_UNSUPP;
    }
    if (q->type == VIRTIO_BLK_T_WRITE_ZEROES &&
        (r.flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)) {
        return VIRTIO_BLK_S_UNSUPP;
    }
    if (!check_range(d, sector, r.num_sectors, BLK_DWZ_MAX)) {
        return VIRTIO_BLK_S_IOERR;
    }
    if (q->type == VIRTIO_BLK_T_WRITE_ZEROES) {
        memset(d->storage + (sector << SECTOR_SHIFT), 0,
               (size_t)r.num_sectors << SECTOR_SHIFT);
    }
    return VIRTIO_BLK_S_OK;
}

/* The status of one request; 0xff means a DMA fault. */
static uint8_t
blk_execute(GwVdpaSimDev *d, SimVq *vq, BlkReq *q)
{
    static const char id[VIRTIO_BLK_ID_BYTES] = "vdpa_blk_sim";
    ssize_t n;

    if (q->type != VIRTIO_BLK_T_IN && q->type != VIRTIO_BLK_T_OUT &&
        q->sector != 0) {
        return VIRTIO_BLK_S_IOERR;
    }
    switch (q->type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT:
        return blk_rw(d, vq, q, q->type == VIRTIO_BLK_T_IN);
    case VIRTIO_BLK_T_GET_ID:
        n = gw_sim_chain_push(d, vq, id, MIN(sizeof(id), q->to_push));
        if (n < 0) {
            return 0xff;
        }
        q->pushed += n;
        return VIRTIO_BLK_S_OK;
    case VIRTIO_BLK_T_FLUSH:
        return VIRTIO_BLK_S_OK;
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
        return blk_dwz(d, vq, q);
    default:
        return VIRTIO_BLK_S_IOERR;
    }
}

/* vdpasim_blk_handle_req: 1 handled, 0 stop (empty, bad, or fault). */
static int
blk_handle_req(GwVdpaSimDev *d, SimVq *vq)
{
    SimChain *c = &vq->chain;
    struct virtio_blk_outhdr hdr;
    BlkReq q = {0};
    uint8_t status;
    int r = gw_sim_vring_pop(d, vq);

    if (r <= 0) {
        if (r < 0) {
            gw_sim_dev_fail(d, "blk: bad or unmapped ring");
        }
        return 0;
    }
    if (c->n_out < 1 || c->n_in < 1 ||
        c->segs[c->n_out + c->n_in - 1].len < 1) {
        return gw_sim_vring_complete(d, vq, 0) < 0 ? -1 : 0;
    }
    q.to_push = c->in_len - 1;
    q.to_pull = c->out_len;
    r = gw_sim_chain_pull(d, vq, &hdr, sizeof(hdr));
    if (r >= 0 && r != sizeof(hdr)) {
        return gw_sim_vring_complete(d, vq, 0) < 0 ? -1 : 0;
    }
    q.to_pull -= sizeof(hdr);
    q.type = hdr.type;
    q.sector = hdr.sector;
    status = r < 0 ? 0xff : blk_execute(d, vq, &q);
    if (status == 0xff) {
        return -1;
    }
    gw_sim_chain_skip_in(vq, q.to_push - q.pushed);
    if (gw_sim_chain_push(d, vq, &status, 1) != 1) {
        return -1;
    }
    return gw_sim_vring_complete(d, vq, q.pushed + 1) < 0 ? -1 : 1;
}

/* vdpasim_blk_work: a few requests, then yield (true = more to do). */
static bool
blk_work(GwVdpaSimDev *d)
{
    SimVq *vq = &d->vqs[0];
    int reqs = 0, r;

    if (!vq->ready) {
        return false;
    }
    while ((r = blk_handle_req(d, vq)) > 0) {
        gw_sim_vring_notify(d, vq);
        if (++reqs > SIM_BATCH_REQS) {
            return true;
        }
    }
    if (r < 0) {
        gw_sim_dev_fail(d, "blk: DMA outside the IOTLB");
    }
    return false;
}

const SimType gw_sim_blk_type = {
    .mgmtdev = "vdpasim_blk",
    .device_id = VIRTIO_ID_BLOCK,
    .features = F(VIRTIO_F_ANY_LAYOUT) | F(VIRTIO_F_VERSION_1) |
                F(VIRTIO_F_ACCESS_PLATFORM) | F(VIRTIO_BLK_F_SIZE_MAX) |
                F(VIRTIO_BLK_F_SEG_MAX) | F(VIRTIO_BLK_F_BLK_SIZE) |
                F(VIRTIO_BLK_F_FLUSH) | F(VIRTIO_BLK_F_TOPOLOGY) |
                F(VIRTIO_BLK_F_MQ) | F(VIRTIO_BLK_F_DISCARD) |
                F(VIRTIO_BLK_F_WRITE_ZEROES),
    .nvqs = 1,
    .ngroups = 1,
    .nas = 1,
    .config_size = GW_VIRTIO_BLK_CONFIG_SIZE,
    .get_config = blk_get_config,
    .work = blk_work,
};
