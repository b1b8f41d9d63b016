/*
 * virtio-iommu: the virtio-pci function and its request queue.  See
 * include/godwit/virtio-iommu.h.
 *
 * Threads: the ops (activate, reset, config) run wherever the transport
 * is driven (a vCPU thread's MMIO exit, the main thread's reset), with
 * the VM's device lock held; on_kick runs on the main loop and takes
 * that lock.  Every field of GwVirtioIommu is guarded by it.
 */
#include <stddef.h>
#include <string.h>
#include <sys/eventfd.h>
#include <linux/virtio_ring.h>
#include <glib-unix.h>
#include <godwit/log.h>
#include <godwit/util.h>
#include "virtio-iommu-priv.h"

/* One descriptor chain of the request queue, checked. */
typedef struct {
    uint64_t addr;
    uint32_t len;
} Seg;

typedef struct {
    uint16_t head;
    unsigned n_in, n_out; /* device-readable, then device-writable */
    uint64_t in_len, out_len;
    Seg seg[IOMMU_QUEUE_MAX];
} Chain;

/* Why a chain (or the ring) cannot be answered at all, or NULL. */
typedef const char *Bad;

static Bad
read_desc(GwVirtioIommu *s, uint16_t i, struct vring_desc *d)
{
    if (i >= s->rq.size) {
        return "descriptor index out of range";
    }
    if (!gw_mem_read(s->mem, s->rq.desc + 16ull * i, d, sizeof(*d))) {
        return "descriptor table outside RAM";
    }
    if (d->flags & VRING_DESC_F_INDIRECT) {
        return "indirect descriptor (not offered)";
    }
    if (d->len && !gw_mem_ptr(s->mem, d->addr, d->len)) {
        return "buffer outside RAM";
    }
    return NULL;
}

static Bad
chain_add(Chain *c, const struct vring_desc *d)
{
    if (d->flags & VRING_DESC_F_WRITE) {
        c->n_out++;
        c->out_len += d->len;
    } else if (c->n_out) {
        return "device-readable descriptor after a device-writable one";
    } else {
        c->n_in++;
        c->in_len += d->len;
    }
    c->seg[c->n_in + c->n_out - 1] = (Seg){d->addr, d->len};
    return NULL;
}

/* Walks the chain at `head`: no loop, none longer than the queue. */
static Bad
walk_chain(GwVirtioIommu *s, uint16_t head, Chain *c)
{
    struct vring_desc d;
    uint16_t i = head;
    Bad bad;

    c->head = head;
    c->n_in = c->n_out = 0;
    c->in_len = c->out_len = 0;
    for (unsigned n = 0;; n++) {
        if (n >= s->rq.size) {
            return "descriptor chain longer than the queue (a loop)";
        }
        if ((bad = read_desc(s, i, &d)) || (bad = chain_add(c, &d))) {
            return bad;
        }
        if (!(d.flags & VRING_DESC_F_NEXT)) {
            return NULL;
        }
        i = d.next;
    }
}

/* Copies up to `len` bytes from (push: into) segments first..first+n. */
static bool
chain_copy(GwVirtioIommu *s, const Seg *seg, unsigned n, uint8_t *buf,
           uint64_t len, bool push)
{
    for (unsigned k = 0; k < n && len; k++) {
        uint64_t part = MIN(len, (uint64_t)seg[k].len);
        bool ok = push ? gw_mem_write(s->mem, seg[k].addr, buf, part)
                       : gw_mem_read(s->mem, seg[k].addr, buf, part);

        if (!ok) {
            return false;
        }
        buf += part;
        len -= part;
    }
    return true;
}

static bool
put_used(GwVirtioIommu *s, uint16_t id, uint32_t len)
{
    struct vring_used_elem e = {.id = id, .len = len};
    uint64_t at = s->rq.used + 4 + 8ull * (s->last_used % s->rq.size);
    uint16_t idx = s->last_used + 1;

    if (!gw_mem_write(s->mem, at, &e, sizeof(e))) {
        return false;
    }
    __atomic_thread_fence(__ATOMIC_RELEASE); /* the entry before the index */
    if (!gw_mem_write(s->mem, s->rq.used + 2, &idx, sizeof(idx))) {
        return false;
    }
    s->last_used = idx;
    return true;
}

/* Answers one chain; used length 0 when it has no room for a status. */
static Bad
answer(GwVirtioIommu *s, Chain *c)
{
    uint8_t in[IOMMU_REQ_IN_MAX] = {0}, out[IOMMU_REQ_OUT_MAX];
    uint32_t out_len = 0;
    Seg *w = &c->seg[c->n_in];

    if (!chain_copy(s, c->seg, c->n_in, in, MIN(c->in_len, sizeof(in)),
                    false)) {
        return "buffer outside RAM";
    }
    if (gw_iommu_request(s, in, c->in_len, c->out_len, out, &out_len) &&
        !chain_copy(s, w, c->n_out, out, out_len, true)) {
        return "buffer outside RAM";
    }
    return put_used(s, c->head, out_len) ? NULL : "used ring outside RAM";
}

static void
stop_queue(GwVirtioIommu *s)
{
    g_clear_handle_id(&s->watch, g_source_remove);
}

static gboolean on_kick(gint fd, GIOCondition cond, gpointer opaque);

void
gw_iommu_start_queue(GwVirtioIommu *s)
{
    stop_queue(s);
    if (s->rq.enabled) {
        s->watch = g_unix_fd_add(s->rq.kick_fd, G_IO_IN, on_kick, s);
    }
}

/* The driver broke the ring: NEEDS_RESET, the queue stops, the VM runs. */
static void
broken(GwVirtioIommu *s, Bad why)
{
    gw_message_ratelimited("virtio-iommu: request queue: %s: device needs "
                           "a reset",
                           why);
    stop_queue(s);
    gw_virtio_pci_set_needs_reset(s->vp);
}

static void
notify(GwVirtioIommu *s)
{
    uint16_t flags = 0;

    gw_mem_read(s->mem, s->rq.avail, &flags, sizeof(flags));
    if (!(flags & VRING_AVAIL_F_NO_INTERRUPT) &&
        eventfd_write(s->rq.call_fd, 1) < 0) {
        g_debug("virtio-iommu: call: %s", g_strerror(errno));
    }
}

/* Answers what the driver made available when this started. */
static Bad
process(GwVirtioIommu *s, unsigned *done)
{
    g_autofree Chain *c = g_new(Chain, 1);
    uint16_t avail, head;
    Bad bad;

    *done = 0;
    if (!gw_mem_read(s->mem, s->rq.avail + 2, &avail, sizeof(avail))) {
        return "available ring outside RAM";
    }
    if ((uint16_t)(avail - s->last_avail) > s->rq.size) {
        return "available index too far ahead";
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE); /* the index before entries */
    while (s->last_avail != avail) {
        uint64_t at = s->rq.avail + 4 + 2ull * (s->last_avail % s->rq.size);

        if (!gw_mem_read(s->mem, at, &head, sizeof(head))) {
            return "available ring outside RAM";
        }
        if ((bad = walk_chain(s, head, c)) || (bad = answer(s, c))) {
            return bad;
        }
        s->last_avail++;
        (*done)++;
    }
    return NULL;
}

static gboolean
on_kick(gint fd, GIOCondition cond, gpointer opaque)
{
    GwVirtioIommu *s = opaque;
    eventfd_t v;
    unsigned done;
    Bad bad;

    g_mutex_lock(s->dev_lock);
    if (g_source_is_destroyed(g_main_current_source())) {
        g_mutex_unlock(s->dev_lock); /* stopped while this waited */
        return G_SOURCE_REMOVE;
    }
    eventfd_read(fd, &v);
    bad = process(s, &done);
    if (done) {
        notify(s);
    }
    if (bad) {
        broken(s, bad);
    }
    g_mutex_unlock(s->dev_lock);
    return G_SOURCE_CONTINUE;
}

/* ---- the virtio-pci device ops ---- */

static Bad
check_ring(const GwVirtioIommu *s, const GwVirtqueueSetup *q)
{
    if (!gw_mem_ptr(s->mem, q->desc, 16ull * q->size) ||
        !gw_mem_ptr(s->mem, q->avail, 6 + 2ull * q->size) ||
        !gw_mem_ptr(s->mem, q->used, 6 + 8ull * q->size)) {
        return "its rings are not in guest RAM";
    }
    return NULL;
}

/* Endpoints in no domain lose (or get) boot bypass as `bypass_now`
 * says, from what `before` says they had. */
static bool
switch_bypass(GwVirtioIommu *s, bool before, GError **errp)
{
    g_autoptr(GPtrArray) eps = gw_iommu_unattached(s);
    g_autoptr(GArray) identity = g_array_new(FALSE, FALSE, sizeof(IommuMap));
    bool now = gw_iommu_boot_bypass(s);

    if (before == now) {
        return true;
    }
    gw_iommu_identity(s, identity);
    return gw_iommu_push_all(eps, before ? identity : NULL,
                             now ? identity : NULL, errp);
}

/* The request queue's setup as the driver gave it, checked. */
static bool
check_request_queue(GwVirtioIommu *s, const GwVirtqueueSetup *q, GError **errp)
{
    Bad bad = q->enabled ? check_ring(s, q) : NULL;

    if (bad) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "virtio-iommu: request queue: %s", bad);
        return false;
    }
    return true;
}

static bool
iommu_activate(void *opaque, const GwVirtioActivation *a, GError **errp)
{
    GwVirtioIommu *s = opaque;
    const GwVirtqueueSetup *q = &a->queues[0];

    if (!check_request_queue(s, q, errp)) {
        return false;
    }
    gw_iommu_space_write_lock(s);
    s->features = a->features;
    s->negotiated = true;
    if (!switch_bypass(s, true, errp)) {
        s->negotiated = false; /* as before: still boot bypass */
        s->features = 0;
        gw_iommu_space_write_unlock(s);
        return false;
    }
    gw_iommu_space_write_unlock(s);
    s->rq = *q;
    s->last_avail = q->last_avail;
    s->last_used = q->last_used;
    gw_iommu_start_queue(s);
    return true;
}

/* At save, the request queue's indices (the event queue is never used). */
static bool
iommu_ring_state(void *opaque, unsigned idx, const GwVirtqueueSetup *q,
                 uint16_t *last_avail, uint16_t *last_used, GError **errp)
{
    GwVirtioIommu *s = opaque;

    *last_avail = idx == 0 ? s->last_avail : 0;
    *last_used = idx == 0 ? s->last_used : 0;
    return true;
}

/* At load of a running function: only the request queue's setup, checked
 * as at DRIVER_OK, and the queue stopped; features, indices and domains
 * are the virtio-iommu section's, which gw_virtio_iommu_load installs
 * before it starts the queue again. */
static bool
iommu_restore(void *opaque, const GwVirtioActivation *a, const uint8_t *config,
              unsigned config_len, GError **errp)
{
    GwVirtioIommu *s = opaque;
    const GwVirtqueueSetup *q = &a->queues[0];

    if (!check_request_queue(s, q, errp)) {
        return false;
    }
    stop_queue(s);
    s->rq = *q;
    return true;
}

static void
iommu_reset(void *opaque)
{
    GwVirtioIommu *s = opaque;

    stop_queue(s);
    s->rq = (GwVirtqueueSetup){0};
    s->last_avail = s->last_used = 0;
    gw_iommu_space_write_lock(s);
    gw_iommu_reset_spaces(s);
    gw_iommu_space_write_unlock(s);
}

static struct virtio_iommu_config
config_now(const GwVirtioIommu *s)
{
    return (struct virtio_iommu_config){
        .page_size_mask = GUINT64_TO_LE(~(IOMMU_GRANULE - 1)),
        .input_range = {0, GUINT64_TO_LE(GW_IOMMU_INPUT_END)},
        .domain_range = {0, GUINT32_TO_LE(UINT32_MAX)},
        .probe_size = GUINT32_TO_LE(IOMMU_PROBE_SIZE),
        .bypass = s->bypass,
    };
}

static void
iommu_config_read(void *opaque, unsigned off, void *buf, unsigned len)
{
    struct virtio_iommu_config c = config_now(opaque);

    if (off <= sizeof(c) && len <= sizeof(c) - off) {
        memcpy(buf, (uint8_t *)&c + off, len);
    }
}

/* Only `bypass` is the driver's to write (bit 0 counts), and only a
 * driver's: with status 0 nothing could have negotiated it. */
static void
iommu_config_write(void *opaque, unsigned off, const void *buf, unsigned len)
{
    const unsigned at = offsetof(struct virtio_iommu_config, bypass);
    GwVirtioIommu *s = opaque;
    g_autoptr(GError) err = NULL;
    uint8_t old = s->bypass;
    bool before = gw_iommu_boot_bypass(s), ok;

    if (off > at || at - off >= len ||
        !(gw_virtio_pci_status(s->vp) & GW_VIRTIO_STATUS_DRIVER)) {
        return;
    }
    gw_iommu_space_write_lock(s);
    s->bypass = ((const uint8_t *)buf)[at - off] & 1;
    ok = switch_bypass(s, before, &err);
    if (!ok) {
        s->bypass = old;
    }
    gw_iommu_space_write_unlock(s);
    if (!ok) {
        gw_warning_ratelimited("virtio-iommu: bypass %u: %s", !old,
                               err->message);
        gw_virtio_pci_set_needs_reset(s->vp);
    }
}

static const GwVirtioDeviceOps iommu_ops = {
    .activate = iommu_activate,
    .reset = iommu_reset,
    .config_read = iommu_config_read,
    .config_write = iommu_config_write,
    .ring_state = iommu_ring_state,
    .restore = iommu_restore,
};

GwVirtioIommu *
gw_virtio_iommu_new(GwGuestMemory *mem, const GwIrqChip *irq, GMutex *dev_lock,
                    GError **errp)
{
    GwVirtioDeviceInfo info = {
        .device_id = GW_VIRTIO_ID_IOMMU,
        .features = IOMMU_FEATURES,
        .n_queues = 2,
        .queue_max = IOMMU_QUEUE_MAX,
        .config_size = sizeof(struct virtio_iommu_config),
    };
    GwVirtioIommu *s = g_new0(GwVirtioIommu, 1);

    s->mem = mem;
    s->dev_lock = dev_lock;
    s->bypass = 1;
    s->endpoints = gw_iommu_endpoint_tree();
    s->domains = gw_iommu_domain_tree();
    g_rw_lock_init(&s->space_lock);
    s->vp = gw_virtio_pci_new(&info, &iommu_ops, s, irq, errp);
    if (!s->vp) {
        gw_virtio_iommu_free(s);
        return NULL;
    }
    return s;
}

void
gw_virtio_iommu_free(GwVirtioIommu *s)
{
    if (!s) {
        return;
    }
    stop_queue(s);
    gw_virtio_pci_free(s->vp);
    g_tree_destroy(s->domains);
    g_tree_destroy(s->endpoints);
    g_rw_lock_clear(&s->space_lock);
    g_free(s);
}

GwVirtioPci *
gw_virtio_iommu_pci(GwVirtioIommu *s)
{
    return s->vp;
}
