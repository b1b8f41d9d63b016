/*
 * The VMM's relay of a vDPA network device's control queue, from the
 * device's start (see device-priv.h, gw_vdpa_cvq_relay_*): godwit sees
 * every control command, so what they set can be carried across a
 * migration — QEMU's shadow CVQ (net/vhost-vdpa.c,
 * vhost_vdpa_net_handle_ctrl_avail), on the main loop.
 *
 * The guest's chains are untrusted: the head and every `next` inside
 * the table, at most one indirect table (no NEXT beside INDIRECT, a
 * whole number of descriptors), no more descriptors than the table
 * holds (a loop), every buffer inside guest RAM (iommu=on: mapped for
 * the device with the permission it is used with, through the IOMMU's
 * mappings, translated at every access), readable buffers
 * before writable ones, at most GW_VDPA_CVQ_CMD_MAX bytes of command,
 * a status byte.  A chain that breaks one never reaches the device.
 *
 * Threads: start and stop with the device lock held (the vCPU thread
 * of the guest's status write, or the main thread); on_kick on the main
 * loop takes the lock.  The relay struct is freed by its source's
 * destroy notify, after a dispatch in progress has returned; `d` is
 * NULL once stopped, and on_kick checks it under the lock.
 */
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <glib-unix.h>
#include <godwit/log.h>
#include <godwit/memory.h>
#include <godwit/util.h>
#include "device-priv.h"
#include "svq-addr.h"

#define F(n)         (1ull << (n))
#define EVENT_IDX    29
#define RING_PACKED  34
#define MAX_INDIRECT 1024 /* descriptors in an indirect table */

struct GwVdpaCvqRelay {
    GwVdpaDevice *d; /* NULL once stopped */
    GMutex *lock;
    GwVdpaCvq *ring;
    GwVirtqueueSetup g; /* the guest's ring, at the guest's addresses */
    GwSvqAddr addr;     /* GPAs, or IOVAs through the IOMMU (iommu=on) */
    uint16_t next_avail, used_idx;
    bool broken;
    GSource *watch;
};

typedef struct {
    uint8_t cmd[GW_VDPA_CVQ_CMD_MAX];
    size_t len;
    uint64_t status; /* the status byte's guest address, if has_status */
    bool has_status;
    const char *why; /* the rule the chain broke, or NULL */
} Chain;

bool
gw_vdpa_cvq_relay_applies(GwVdpaDevice *d, const GwVirtioActivation *a,
                          unsigned *idx)
{
    /* Behind an IOMMU the guest's addresses are IOVAs, translated
     * through it (svq-addr.h): not before the device is behind one. */
    if (d->device_id != VIRTIO_ID_NET || !d->cvq_area.host ||
        (d->cfg->iommu && !d->iommu) ||
        !(a->features & F(VIRTIO_NET_F_CTRL_VQ)) ||
        (a->features & F(RING_PACKED))) {
        return false;
    }
    *idx = gw_vdpa_net_cvq_index(d, a->features);
    return *idx < a->n_queues && a->queues[*idx].enabled &&
           a->queues[*idx].size;
}

/* The first rule the chain broke wins. */
static void
broke(Chain *ch, const char *why)
{
    ch->why = ch->why ? ch->why : why;
}

/* One descriptor's buffer into the chain (a broken rule noted; the walk
 * goes on to find the status byte). */
static void
take(const GwSvqAddr *mem, Chain *ch, const struct vring_desc *e)
{
    if (e->flags & VRING_DESC_F_WRITE) {
        if (!ch->has_status && e->len >= 1 &&
            gw_svq_addr_reachable(mem, e->addr, 1, true)) {
            ch->has_status = true;
            ch->status = e->addr;
        } else if (!ch->has_status) {
            broke(ch, "a status buffer outside guest RAM");
        }
    } else if (ch->has_status) {
        broke(ch, "a readable buffer after a writable one");
    } else if (ch->why) {
        return; /* nothing more is copied */
    } else if (e->len > sizeof(ch->cmd) - ch->len) {
        broke(ch, "a command longer than 4096 bytes");
    } else if (e->len &&
               !gw_svq_addr_read(mem, e->addr, ch->cmd + ch->len, e->len)) {
        broke(ch, "a buffer outside guest RAM");
    } else {
        ch->len += e->len;
    }
}

/* The next descriptor of the chain into *e; false at its end (or where
 * it breaks the table's rules, noted). */
static bool
next_desc(const GwSvqAddr *mem, uint64_t *table, unsigned *n, unsigned *i,
          unsigned *seen, bool *indirect, Chain *ch, struct vring_desc *e)
{
    if (++*seen > *n) {
        broke(ch, "a loop");
        return false;
    }
    if (!gw_svq_addr_read(mem, *table + 16ull * *i, e, sizeof(*e))) {
        broke(ch, "a descriptor outside guest RAM");
        return false;
    }
    if (!(e->flags & VRING_DESC_F_INDIRECT)) {
        return true;
    }
    if (*indirect || (e->flags & VRING_DESC_F_NEXT) || e->len % 16 || !e->len ||
        e->len / 16 > MAX_INDIRECT) {
        broke(ch, "a bad indirect table");
        return false;
    }
    *table = e->addr;
    *n = e->len / 16;
    *i = *seen = 0;
    *indirect = true;
    return next_desc(mem, table, n, i, seen, indirect, ch, e);
}

/* Walks the chain at `head` into `ch` (ch->why set if it broke a rule). */
static void
walk(GwVdpaCvqRelay *r, uint16_t head, Chain *ch)
{
    const GwSvqAddr *mem = &r->addr;
    uint64_t table = r->g.desc;
    unsigned n = r->g.size, i = head, seen = 0;
    bool indirect = false;
    struct vring_desc e;

    if (i >= n) {
        broke(ch, "a head outside the ring");
        return;
    }
    while (next_desc(mem, &table, &n, &i, &seen, &indirect, ch, &e)) {
        take(mem, ch, &e);
        if (!(e.flags & VRING_DESC_F_NEXT)) {
            break;
        }
        i = e.next;
        if (i >= n) {
            broke(ch, "a next outside the table");
            break;
        }
    }
    if (ch->len < 2) {
        broke(ch, "a command shorter than its header");
    }
    if (!ch->has_status) {
        broke(ch, "no status byte");
    }
}

/* The guest's used entry for `head`, and its interrupt. */
static void
complete(GwVdpaCvqRelay *r, uint16_t head, uint32_t len)
{
    const GwSvqAddr *mem = &r->addr;
    struct vring_used_elem e = {head, len};
    uint16_t idx = r->used_idx + 1;

    gw_svq_addr_write(mem,
                      r->g.used + 4 + 8ull * (r->used_idx & (r->g.size - 1)),
                      &e, sizeof(e));
    __atomic_thread_fence(__ATOMIC_RELEASE);
    gw_svq_addr_write(mem, r->g.used + 2, &idx, sizeof(idx));
    r->used_idx = idx;
    if (r->d->acked_features & F(EVENT_IDX)) { /* kick me at the next one */
        gw_svq_addr_write(mem, r->g.used + 4 + 8ull * r->g.size, &r->next_avail,
                          sizeof(r->next_avail));
    }
    eventfd_write(r->g.call_fd, 1);
}

static void
relay_one(GwVdpaCvqRelay *r, uint16_t head)
{
    GwVdpaDevice *d = r->d;
    g_autofree Chain *ch = g_new0(Chain, 1);
    g_autoptr(GError) err = NULL;
    uint8_t ack = VIRTIO_NET_ERR;

    walk(r, head, ch);
    if (ch->why) {
        gw_warning_ratelimited("vdpa %s: a control command with %s: answered "
                               "VIRTIO_NET_ERR, not sent to the device",
                               d->cfg->id, ch->why);
    } else if (!gw_vdpa_cvq_send(r->ring, ch->cmd, ch->len, &ack, &err)) {
        gw_warning_ratelimited("%s", err->message);
        ack = VIRTIO_NET_ERR;
    } else if (ack == VIRTIO_NET_OK) {
        gw_vdpa_net_ctrl_record(&d->net_ctrl, ch->cmd, ch->len);
    }
    complete(r, head,
             ch->has_status && gw_svq_addr_write(&r->addr, ch->status, &ack, 1)
                 ? 1
                 : 0);
}

/* Every chain the guest made available, at most a ring's worth. */
static void
relay_avail(GwVdpaCvqRelay *r)
{
    const GwSvqAddr *mem = &r->addr;
    uint16_t avail, head;

    for (unsigned n = 0; n < r->g.size && !r->broken; n++) {
        if (!gw_svq_addr_read(mem, r->g.avail + 2, &avail, 2) ||
            avail == r->next_avail) {
            return;
        }
        if ((uint16_t)(avail - r->next_avail) > r->g.size ||
            !gw_svq_addr_read(
                mem, r->g.avail + 4 + 2u * (r->next_avail & (r->g.size - 1)),
                &head, 2)) {
            gw_warning_ratelimited("vdpa %s: the control queue's available "
                                   "ring is broken: the guest must reset the "
                                   "device",
                                   r->d->cfg->id);
            r->broken = true;
            gw_virtio_pci_set_needs_reset(r->d->vp);
            return;
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        r->next_avail++;
        relay_one(r, head);
    }
}

static gboolean
on_kick(int fd, GIOCondition cond, gpointer data)
{
    GwVdpaCvqRelay *r = data;
    eventfd_t v;

    eventfd_read(fd, &v);
    g_mutex_lock(r->lock);
    /* A suspended device answers nothing: gw_vdpa_device_resume kicks. */
    if (r->d && !r->d->suspended &&
        !g_source_is_destroyed(g_main_current_source())) {
        relay_avail(r);
    }
    g_mutex_unlock(r->lock);
    return G_SOURCE_CONTINUE;
}

void
gw_vdpa_cvq_relay_start(GwVdpaDevice *d, unsigned idx, GwVdpaCvq *c,
                        const GwVirtqueueSetup *q)
{
    GwVdpaCvqRelay *r = g_new0(GwVdpaCvqRelay, 1);

    gw_vdpa_cvq_relay_stop(d);
    r->d = d;
    r->lock = d->dev_lock;
    r->ring = c;
    r->g = *q;
    if (!gw_svq_addr_init(&r->addr, d, NULL)) {
        g_assert_not_reached(); /* applies() saw it behind its IOMMU */
    }
    r->next_avail = q->last_avail;
    r->used_idx = q->last_used;
    r->watch = g_unix_fd_source_new(q->kick_fd, G_IO_IN);
    g_source_set_callback(r->watch, (GSourceFunc)(void (*)(void))on_kick, r,
                          g_free);
    g_source_attach(r->watch, NULL);
    d->cvq_relay = r;
    d->cvq_idx = idx;
    d->relayed[idx] = true;
    g_debug("vdpa %s: control queue %u relayed by the VMM", d->cfg->id, idx);
}

void
gw_vdpa_cvq_relay_stop(GwVdpaDevice *d)
{
    GwVdpaCvqRelay *r = d->cvq_relay;
    GSource *w;

    if (!r) {
        return;
    }
    d->cvq_relay = NULL;
    d->relayed[d->cvq_idx] = false;
    gw_vdpa_cvq_free(g_steal_pointer(&r->ring));
    r->d = NULL;
    w = r->watch; /* destroying it may free r */
    g_source_destroy(w);
    g_source_unref(w);
}

void
gw_vdpa_cvq_relay_poke(GwVdpaDevice *d)
{
    if (d->cvq_relay) {
        eventfd_write(d->cvq_relay->g.kick_fd, 1);
    }
}

uint16_t
gw_vdpa_cvq_relay_index(const GwVdpaDevice *d)
{
    return d->cvq_relay->used_idx;
}
