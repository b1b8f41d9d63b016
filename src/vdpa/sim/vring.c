/*
 * The device side of a split virtqueue, like the kernel's vringh: pop a
 * descriptor chain, pull from its readable part, push into its writable
 * part, complete it into the used ring, notify.  Every guest access goes
 * through the IOTLB (gw_sim_dma_*); a miss returns -EFAULT and the caller
 * fails the device.  Runs on the device's worker thread with dev->lock
 * held.
 */
#include <errno.h>
#include <string.h>
#include "sim-priv.h"

/* The avail and used indices are shared with the driver: atomics. */
static int
load16(GwVdpaSimDev *d, uint32_t asid, uint64_t iova, uint16_t *val)
{
    uint16_t *p = gw_sim_dma_ptr(d, asid, iova, 2, VHOST_ACCESS_RO);

    if (!p) {
        return -EFAULT;
    }
    if ((uintptr_t)p & 1) {
        memcpy(val, p, 2);
    } else {
        *val = __atomic_load_n(p, __ATOMIC_ACQUIRE);
    }
    return 0;
}

static int
store16(GwVdpaSimDev *d, uint32_t asid, uint64_t iova, uint16_t val)
{
    uint16_t *p = gw_sim_dma_ptr(d, asid, iova, 2, VHOST_ACCESS_WO);

    if (!p) {
        return -EFAULT;
    }
    if ((uintptr_t)p & 1) {
        __atomic_thread_fence(__ATOMIC_RELEASE);
        memcpy(p, &val, 2);
    } else {
        __atomic_store_n(p, val, __ATOMIC_RELEASE);
    }
    return 0;
}

static void
chain_add(SimChain *c, uint64_t addr, uint32_t len)
{
    unsigned n = c->n_out + c->n_in;

    if (n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->segs = g_renew(SimSeg, c->segs, c->cap);
    }
    c->segs[n] = (SimSeg){.addr = addr, .len = len};
}

/* Appends descriptor `i` of the table; -EINVAL on a malformed chain. */
static int
chain_desc(GwVdpaSimDev *d, SimVq *vq, uint16_t i, struct vring_desc *desc)
{
    SimChain *c = &vq->chain;
    int r = gw_sim_dma_read(d, vq->asid, vq->desc + 16ull * i, desc, 16);

    if (r < 0) {
        return r;
    }
    if (desc->flags & VRING_DESC_F_INDIRECT) {
        return -EINVAL; /* INDIRECT_DESC is not offered */
    }
    chain_add(c, desc->addr, desc->len);
    if (desc->flags & VRING_DESC_F_WRITE) {
        c->n_in++;
        c->in_len += desc->len;
    } else if (c->n_in) {
        return -EINVAL; /* readable after writable */
    } else {
        c->n_out++;
        c->out_len += desc->len;
    }
    return 0;
}

/*
 * Takes the next available chain into vq->chain: 1, 0 if the ring is
 * empty, -EFAULT on a DMA miss, -EINVAL on a malformed ring.
 */
int
gw_sim_vring_pop(GwVdpaSimDev *d, SimVq *vq)
{
    SimChain *c = &vq->chain;
    uint16_t avail, head, i;
    struct vring_desc desc;
    uint32_t mask = vq->dev_num - 1;
    int r = load16(d, vq->asid, vq->driver + 2, &avail);

    if (r < 0 || avail == vq->last_avail) {
        return r;
    }
    if ((uint16_t)(avail - vq->last_avail) > vq->dev_num) {
        return -EINVAL;
    }
    r = load16(d, vq->asid, vq->driver + 4 + 2 * (vq->last_avail & mask),
               &head);
    if (r < 0) {
        return r;
    }
    c->n_out = c->n_in = c->out_seg = c->in_seg = 0;
    c->out_len = c->in_len = c->out_off = c->in_off = 0;
    c->head = head;
    i = head;
    for (unsigned n = 0;; n++) {
        if (i >= vq->dev_num || n >= vq->dev_num) {
            return -EINVAL;
        }
        r = chain_desc(d, vq, i, &desc);
        if (r < 0) {
            return r;
        }
        if (!(desc.flags & VRING_DESC_F_NEXT)) {
            break;
        }
        i = desc.next;
    }
    vq->last_avail++;
    return 1;
}

/* Copies between the chain and `buf`, from segment *seg offset *off. */
static ssize_t
chain_copy(GwVdpaSimDev *d, SimVq *vq, unsigned first, unsigned end,
           unsigned *seg, uint32_t *off, void *buf, size_t len, bool push)
{
    SimChain *c = &vq->chain;
    size_t done = 0;

    for (; *seg < end - first && done < len; (*seg)++, *off = 0) {
        SimSeg *s = &c->segs[first + *seg];
        size_t n = MIN(len - done, (size_t)(s->len - *off));
        int r = push ? gw_sim_dma_write(d, vq->asid, s->addr + *off,
                                        (uint8_t *)buf + done, n)
                     : gw_sim_dma_read(d, vq->asid, s->addr + *off,
                                       (uint8_t *)buf + done, n);
        if (r < 0) {
            return r;
        }
        done += n;
        *off += n;
        if (*off < s->len) {
            break;
        }
    }
    return done;
}

ssize_t
gw_sim_chain_pull(GwVdpaSimDev *d, SimVq *vq, void *dst, size_t len)
{
    SimChain *c = &vq->chain;

    return chain_copy(d, vq, 0, c->n_out, &c->out_seg, &c->out_off, dst, len,
                      false);
}

ssize_t
gw_sim_chain_push(GwVdpaSimDev *d, SimVq *vq, const void *src, size_t len)
{
    SimChain *c = &vq->chain;

    return chain_copy(d, vq, c->n_out, c->n_out + c->n_in, &c->in_seg,
                      &c->in_off, (void *)src, len, true);
}

void
gw_sim_chain_skip_in(SimVq *vq, size_t len)
{
    SimChain *c = &vq->chain;

    while (len && c->in_seg < c->n_in) {
        SimSeg *s = &c->segs[c->n_out + c->in_seg];
        size_t n = MIN(len, (size_t)(s->len - c->in_off));

        len -= n;
        c->in_off += n;
        if (c->in_off == s->len) {
            c->in_seg++;
            c->in_off = 0;
        }
    }
}

/* Puts the popped chain in the used ring with `len` bytes written. */
int
gw_sim_vring_complete(GwVdpaSimDev *d, SimVq *vq, uint32_t len)
{
    struct vring_used_elem e = {.id = vq->chain.head, .len = len};
    uint64_t at = vq->device + 4 + 8ull * (vq->last_used & (vq->dev_num - 1));
    int r = gw_sim_dma_write(d, vq->asid, at, &e, sizeof(e));

    if (r < 0) {
        return r;
    }
    vq->last_used++;
    return store16(d, vq->asid, vq->device + 2, vq->last_used);
}

/* Signals the call fd unless the driver asked for no interrupts. */
void
gw_sim_vring_notify(GwVdpaSimDev *d, SimVq *vq)
{
    uint16_t flags;

    if (load16(d, vq->asid, vq->driver, &flags) < 0 ||
        (flags & VRING_AVAIL_F_NO_INTERRUPT)) {
        return;
    }
    if (vq->cb) {
        gw_sim_signal(vq->call_fd);
    }
}
