/*
 * Shadow virtqueues of one vDPA device: see include/godwit/vdpa-svq.h.
 *
 * Threads: gw_vdpa_device_svq_start/stop run on the main thread and
 * gw_vdpa_svq_abort wherever the device is reset, all with the device
 * lock held.  The relay thread owns every SvqQueue field from the
 * g_thread_new in start to the g_thread_join in stop/abort; outside that
 * window only the lock holder touches them.  So the device lock is not
 * shared: the relay never takes it and a vCPU never waits for it.  With
 * iommu=on the relay takes the IOMMU's space lock for reading to
 * translate (svq-addr.c); start/stop/abort, which join it, must never
 * run inside an IOMMU writer (src/devices/virtio-iommu-priv.h).
 *
 * What the guest controls is checked before use: ring addresses once at
 * start (inside guest RAM, aligned; translated with iommu=on), the avail
 * index against the ring size, every head and `next` against the ring
 * size, every buffer against guest RAM or the guest's IOMMU mappings
 * (so no descriptor reaches the shadow rings' IOVAs; svq-addr.c),
 * chains for loops and for descriptors another chain in flight holds.
 * A guest that breaks a rule loses its queue (no more relaying, a
 * warning), never the VMM; what the device completed still reaches it.
 * The descriptors are copied into VMM-private memory as they are
 * forwarded, so a guest rewriting them afterwards changes nothing the
 * relay relies on, and the device's table is a copy it can only read.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <godwit/log.h>
#include <godwit/sandbox.h>
#include <godwit/util.h>
#include <godwit/vdpa-svq.h>
#include "device-priv.h"
#include "svq-addr.h"

#define SVQ_PAGE        4096ull
#define SVQ_BACKSTOP_MS 100 /* re-look at every ring this often anyway */
/* While chains are in flight on the device, the relay looks again for
 * this long before it sleeps: a completion then costs no wakeup. */
#define SVQ_SPIN_US 50
#define NO_HEAD     0xffff

typedef struct {
    unsigned idx;
    uint16_t num;
    GwVirtqueueSetup g; /* the guest's ring (svq-addr.h) and eventfds */
    uint64_t used_gpa;  /* g.used, translated at start */
    struct vring_desc *gdesc;
    struct vring_avail *gavail;
    struct vring_used *gused;
    struct vring_desc *sdesc; /* the shadow ring, in s->ring */
    struct vring_avail *savail;
    struct vring_used *sused;
    size_t off, ro_len, used_len; /* desc+avail at off, used after */
    int dev_kick, dev_call;       /* the backend's, ours */
    uint16_t next_avail;     /* guest = shadow avail index to forward next */
    uint16_t next_used;      /* shadow = guest used index to copy next */
    struct vring_desc *copy; /* what was forwarded, per descriptor */
    uint16_t *owner;         /* head of the chain in flight, or NO_HEAD */
    bool broken;
    bool switched; /* the backend runs on the shadow ring */
} SvqQueue;

struct GwVdpaSvq {
    char *id;
    GwSvqAddr addr;  /* how guest addresses are reached: svq-addr.h */
    GwVdpaArea ring; /* every shadow ring */
    int stop_fd;
    int notify_fd; /* the device's config call fd: the main loop looks */
    int broken;    /* a queue stopped being relayed (atomic) */
    GThread *thread;
    unsigned n;
    SvqQueue q[GW_VIRTIO_MAX_QUEUES];
};

static size_t
page_up(size_t n)
{
    return (n + SVQ_PAGE - 1) & ~(SVQ_PAGE - 1);
}

/* ---- the relay (relay thread; the lock holder outside its window) ---- */

static bool
queue_fail(GwVdpaSvq *s, SvqQueue *q, const char *why, unsigned what)
{
    gw_warning_ratelimited("vdpa %s queue %u: %s (%u): the queue is no "
                           "longer relayed",
                           s->id, q->idx, why, what);
    q->broken = true;
    /* The guest must learn it (NEEDS_RESET), as from a device that
     * broke: the main loop's config-call watch sets it. */
    __atomic_store_n(&s->broken, 1, __ATOMIC_RELEASE);
    eventfd_write(s->notify_fd, 1);
    return false;
}

/* Frees the descriptors of chain `head`, marking what the device may
 * have written: every device-writable buffer, whole (the used length is
 * only a lower bound of what a device wrote, virtio 1.2 2.7.8.2). */
static void
release_chain(GwVdpaSvq *s, SvqQueue *q, uint16_t head, bool dirty)
{
    for (uint16_t i = head; i < q->num && q->owner[i] == head;
         i = q->copy[i].next) {
        q->owner[i] = NO_HEAD;
        if (dirty && (q->copy[i].flags & VRING_DESC_F_WRITE)) {
            gw_svq_addr_mark_dirty(&s->addr, q->copy[i].addr, q->copy[i].len);
        }
        if (!(q->copy[i].flags & VRING_DESC_F_NEXT)) {
            break;
        }
    }
}

/* One guest descriptor as read: "" if it may be forwarded, else why. */
static const char *
check_desc(GwVdpaSvq *s, SvqQueue *q, const struct vring_desc *g,
           bool *writable)
{
    if (g->flags & VRING_DESC_F_INDIRECT) {
        return "indirect descriptor (INDIRECT_DESC not negotiated)";
    }
    if (!gw_svq_addr_reachable(&s->addr, g->addr, MAX(g->len, 1u),
                               g->flags & VRING_DESC_F_WRITE)) {
        return "buffer outside guest RAM (or not mapped for the device)";
    }
    if ((g->flags & VRING_DESC_F_NEXT) && g->next >= q->num) {
        return "next out of range";
    }
    if (*writable && !(g->flags & VRING_DESC_F_WRITE)) {
        return "readable descriptor after a writable one";
    }
    *writable = g->flags & VRING_DESC_F_WRITE;
    return "";
}

/* Checks guest chain `head` and copies it into the shadow table. */
static bool
forward_chain(GwVdpaSvq *s, SvqQueue *q, uint16_t head)
{
    bool writable = false;
    uint16_t i = head;

    if (head >= q->num || q->owner[head] != NO_HEAD) {
        return queue_fail(s, q, "bad or in-flight head", head);
    }
    for (;;) {
        struct vring_desc g;
        const char *why;

        memcpy(&g, &q->gdesc[i], sizeof(g));
        why = q->owner[i] != NO_HEAD ? "descriptor loop or shared with a "
                                       "chain in flight"
                                     : check_desc(s, q, &g, &writable);
        if (*why) {
            release_chain(s, q, head, false);
            return queue_fail(s, q, why, i);
        }
        g.flags &= VRING_DESC_F_NEXT | VRING_DESC_F_WRITE;
        q->copy[i] = g;
        q->sdesc[i] = g;
        q->owner[i] = head;
        if (!(g.flags & VRING_DESC_F_NEXT)) {
            break;
        }
        i = g.next;
    }
    q->savail->ring[q->next_avail & (q->num - 1)] = head;
    q->next_avail++;
    return true;
}

/* Forwards what the guest made available since the last call; how many
 * chains. */
static unsigned
forward(GwVdpaSvq *s, SvqQueue *q)
{
    uint16_t avail = __atomic_load_n(&q->gavail->idx, __ATOMIC_ACQUIRE);
    uint16_t start = q->next_avail;

    if ((uint16_t)(avail - q->next_used) > q->num) {
        queue_fail(s, q, "avail index beyond the ring size", avail);
    }
    while (!q->broken && q->next_avail != avail) {
        uint16_t head = __atomic_load_n(
            &q->gavail->ring[q->next_avail & (q->num - 1)], __ATOMIC_RELAXED);
        forward_chain(s, q, head);
    }
    if (q->next_avail != start) {
        __atomic_store_n(&q->savail->idx, q->next_avail, __ATOMIC_RELEASE);
        eventfd_write(q->dev_kick, 1);
    }
    return (uint16_t)(q->next_avail - start);
}

/* Copies the device's completions to the guest's used ring; how many. */
static unsigned
complete(GwVdpaSvq *s, SvqQueue *q)
{
    uint16_t used = __atomic_load_n(&q->sused->idx, __ATOMIC_ACQUIRE);
    uint16_t start = q->next_used;
    uint16_t mask = q->num - 1;

    while (q->next_used != used) {
        struct vring_used_elem e;

        memcpy(&e, &q->sused->ring[q->next_used & mask], sizeof(e));
        if (e.id >= q->num || q->owner[e.id] != e.id) {
            queue_fail(s, q, "the device completed a chain not in flight",
                       e.id);
            break;
        }
        release_chain(s, q, (uint16_t)e.id, true);
        memcpy(&q->gused->ring[q->next_used & mask], &e, sizeof(e));
        gw_mem_mark_dirty(s->addr.mem,
                          q->used_gpa + 4 + 8ull * (q->next_used & mask),
                          sizeof(e));
        q->next_used++;
    }
    if (q->next_used == start) {
        return 0;
    }
    __atomic_store_n(&q->gused->idx, q->next_used, __ATOMIC_RELEASE);
    gw_mem_mark_dirty(s->addr.mem, q->used_gpa + 2, 2);
    if (!(__atomic_load_n(&q->gavail->flags, __ATOMIC_ACQUIRE) &
          VRING_AVAIL_F_NO_INTERRUPT)) {
        eventfd_write(q->g.call_fd, 1);
    }
    return (uint16_t)(q->next_used - start);
}

static unsigned
relay_once(GwVdpaSvq *s, SvqQueue *q)
{
    unsigned n = complete(s, q);

    return q->broken ? n : n + forward(s, q);
}

/* Whether the device should signal completions on the shadow ring. */
static void
device_signals(SvqQueue *q, bool on)
{
    __atomic_store_n(&q->savail->flags, on ? 0 : VRING_AVAIL_F_NO_INTERRUPT,
                     __ATOMIC_RELAXED);
}

/*
 * Relays until nothing moves, the device asked not to signal meanwhile
 * (VRING_AVAIL_F_NO_INTERRUPT on the shadow rings: the relay is looking
 * anyway); while chains are in flight on the device it keeps looking
 * for SVQ_SPIN_US before giving up.  Then signals back on, and one more look
 * for what the device completed before it saw that.
 */
static void
relay_all(GwVdpaSvq *s)
{
    gint64 idle_since = 0;

    for (unsigned i = 0; i < s->n; i++) {
        device_signals(&s->q[i], false);
    }
    for (;;) {
        unsigned moved = 0, in_flight = 0;

        for (unsigned i = 0; i < s->n; i++) {
            moved += relay_once(s, &s->q[i]);
            if (!s->q[i].broken) {
                in_flight += (uint16_t)(s->q[i].next_avail - s->q[i].next_used);
            }
        }
        if (moved) {
            idle_since = 0;
            continue;
        }
        if (!idle_since) {
            idle_since = g_get_monotonic_time();
        }
        if (!in_flight || g_get_monotonic_time() - idle_since > SVQ_SPIN_US) {
            break;
        }
        sched_yield(); /* two cores: let the device's thread run */
    }
    for (unsigned i = 0; i < s->n; i++) {
        device_signals(&s->q[i], true);
    }
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    for (unsigned i = 0; i < s->n; i++) {
        relay_once(s, &s->q[i]);
    }
}

static gpointer
relay_thread(gpointer opaque)
{
    GwVdpaSvq *s = opaque;
    struct pollfd pfd[1 + 2 * GW_VIRTIO_MAX_QUEUES];
    eventfd_t v;

    gw_sandbox_enter_thread(GW_SANDBOX_SVQ);
    for (;;) {
        unsigned n = 0;

        pfd[n++] = (struct pollfd){.fd = s->stop_fd, .events = POLLIN};
        for (unsigned i = 0; i < s->n; i++) {
            pfd[n++] =
                (struct pollfd){.fd = s->q[i].g.kick_fd, .events = POLLIN};
            pfd[n++] =
                (struct pollfd){.fd = s->q[i].dev_call, .events = POLLIN};
        }
        if (poll(pfd, n, SVQ_BACKSTOP_MS) < 0 && errno != EINTR) {
            gw_warning_ratelimited("vdpa %s: relay poll: %s", s->id,
                                   g_strerror(errno));
        }
        if (pfd[0].revents) {
            return NULL;
        }
        for (unsigned i = 0; i < s->n; i++) {
            /* Non-blocking eventfds: another reader may have won. */
            eventfd_read(s->q[i].g.kick_fd, &v);
            eventfd_read(s->q[i].dev_call, &v);
        }
        relay_all(s);
    }
}

/* ---- shadow rings ---- */

static bool
alloc_queue_state(GwVdpaDevice *d, SvqQueue *q, unsigned idx, GError **errp)
{
    const GwVirtqueueSetup *g = &q->g;
    uint64_t avail_len = 6 + 2ull * g->size, used_len = 6 + 8ull * g->size;
    uint64_t gpa;

    q->idx = idx;
    q->num = g->size;
    q->dev_kick = q->dev_call = -1;
    q->gdesc = gw_svq_addr_ring(d, g->desc, 16ull * g->size, false, &gpa);
    q->gavail = gw_svq_addr_ring(d, g->avail, avail_len, false, &gpa);
    q->gused = gw_svq_addr_ring(d, g->used, used_len, true, &q->used_gpa);
    if (!q->gdesc || !q->gavail || !q->gused || (g->desc & 15) ||
        (g->avail & 1) || (g->used & 3)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vdpa %s queue %u: the guest's ring is not aligned "
                    "guest RAM%s",
                    d->cfg->id, idx,
                    d->cfg->iommu ? " that its IOVAs translate to "
                                    "contiguously, for its whole size"
                                  : "");
        return false;
    }
    q->copy = g_new0(struct vring_desc, q->num);
    q->owner = g_new(uint16_t, q->num);
    memset(q->owner, 0xff, sizeof(uint16_t) * q->num);
    q->ro_len = page_up(16ull * q->num + avail_len);
    q->used_len = page_up(used_len);
    q->dev_kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    q->dev_call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (q->dev_kick < 0 || q->dev_call < 0) {
        return gw_error_errno(errp, errno, "vdpa %s queue %u: eventfd",
                              d->cfg->id, idx);
    }
    return true;
}

/* Every running queue of the device, the guest's side read. */
static bool
collect_queues(GwVdpaDevice *d, GwVdpaSvq *s, GError **errp)
{
    GwVirtqueueSetup g;

    for (unsigned i = 0; gw_virtio_pci_queue(d->vp, i, &g); i++) {
        if (!g.enabled || (d->cvq_relay && i == d->cvq_idx)) {
            continue; /* the control queue's relay has it already */
        }
        s->q[s->n].g = g;
        if (!alloc_queue_state(d, &s->q[s->n++], i, errp)) {
            return false;
        }
    }
    if (!s->n) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vdpa %s: no queue is enabled", d->cfg->id);
        return false;
    }
    return true;
}

/* The shadow rings, in VMM memory at IOVAs outside guest RAM. */
static bool
alloc_rings(GwVdpaDevice *d, GwVdpaSvq *s, GError **errp)
{
    size_t len = 0;

    for (unsigned i = 0; i < s->n; i++) {
        s->q[i].off = len;
        len += s->q[i].ro_len + s->q[i].used_len;
    }
    if (!gw_vdpa_area_alloc(d, &s->ring, len, errp)) {
        return false;
    }
    for (unsigned i = 0; i < s->n; i++) {
        SvqQueue *q = &s->q[i];
        uint8_t *at = s->ring.host + q->off;
        q->sdesc = (struct vring_desc *)at;
        q->savail = (struct vring_avail *)(at + 16u * q->num);
        q->sused = (struct vring_used *)(at + q->ro_len);
    }
    return true;
}

/* Descriptor table and avail ring read-only to the device, used RW. */
static bool
map_rings(GwVdpaDevice *d, GwVdpaSvq *s, GError **errp)
{
    for (unsigned i = 0; i < s->n; i++) {
        SvqQueue *q = &s->q[i];

        if (!gw_vdpa_area_map(d, &s->ring, q->off, q->ro_len, VHOST_ACCESS_RO,
                              errp) ||
            !gw_vdpa_area_map(d, &s->ring, q->off + q->ro_len, q->used_len,
                              VHOST_ACCESS_RW, errp)) {
            return false;
        }
    }
    return true;
}

static void
unmap_rings(GwVdpaDevice *d, GwVdpaSvq *s)
{
    gw_vdpa_area_unmap(d, &s->ring);
}

static void
svq_free(GwVdpaSvq *s)
{
    for (unsigned i = 0; i < s->n; i++) {
        gw_fd_cleanup(&s->q[i].dev_kick);
        gw_fd_cleanup(&s->q[i].dev_call);
        g_free(s->q[i].copy);
        g_free(s->q[i].owner);
    }
    gw_vdpa_area_release(&s->ring);
    gw_fd_cleanup(&s->stop_fd);
    g_free(s->id);
    g_free(s);
}

static void
stop_relay(GwVdpaSvq *s)
{
    if (s->thread) {
        eventfd_write(s->stop_fd, 1);
        g_clear_pointer(&s->thread, g_thread_join);
        eventfd_read(s->stop_fd, &(eventfd_t){0});
    }
}

static bool
start_relay(GwVdpaSvq *s, GError **errp)
{
    g_autofree char *name = g_strdup_printf("svq-%s", s->id);

    s->thread = g_thread_try_new(name, relay_thread, s, errp);
    return s->thread != NULL;
}

/* ---- switching ---- */

/* Queue `q` onto its shadow ring at the device's index `base`. */
static bool
switch_to_shadow(GwVdpaDevice *d, GwVdpaSvq *s, SvqQueue *q, uint32_t base,
                 GError **errp)
{
    uint64_t at = s->ring.iova + q->off;

    q->next_avail = q->next_used = (uint16_t)base;
    q->savail->idx = q->sused->idx = (uint16_t)base;
    q->switched = true;
    return gw_vdpa_set_vring_addr(d->backend, q->idx, at, at + 16u * q->num,
                                  at + q->ro_len, errp) &&
           gw_vdpa_set_vring_base(d->backend, q->idx, base, errp) &&
           gw_vdpa_device_set_queue_fds(d, q->idx, q->dev_kick, q->dev_call,
                                        errp);
}

/* Queue `q` back onto the guest's ring, at the device's index. */
static bool
switch_to_guest(GwVdpaDevice *d, SvqQueue *q, GError **errp)
{
    uint32_t base = 0;

    if (!gw_vdpa_get_vring_base(d->backend, q->idx, &base, errp)) {
        return false;
    }
    if (!gw_vdpa_set_vring_addr(d->backend, q->idx, q->g.desc, q->g.avail,
                                q->g.used, errp) ||
        !gw_vdpa_set_vring_base(d->backend, q->idx, base, errp) ||
        !gw_vdpa_device_restore_queue_fds(d, q->idx, errp)) {
        return false;
    }
    q->switched = false;
    /* What the relay forwarded and the device did not take is still in
     * the guest's ring at the same index, and its kick was ours. */
    eventfd_write(q->g.kick_fd, 1);
    return true;
}

/* Undoes whatever part of a start happened; logs what fails. */
static void
roll_back(GwVdpaDevice *d, GwVdpaSvq *s)
{
    g_autoptr(GError) err = NULL;

    stop_relay(s);
    for (unsigned i = 0; i < s->n; i++) {
        if (s->q[i].switched && !switch_to_guest(d, &s->q[i], &err)) {
            gw_warning_ratelimited("vdpa %s: back to passthrough: %s",
                                   d->cfg->id, err->message);
            g_clear_error(&err);
        }
    }
    unmap_rings(d, s);
    svq_free(s);
}

static bool
check_startable(GwVdpaDevice *d, GError **errp)
{
    const uint64_t unsupported = GW_VDPA_SVQ_UNSUPPORTED;

    if (d->svq) {
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                    "vdpa %s: shadow virtqueues run already", d->cfg->id);
        return false;
    }
    if (!gw_virtio_pci_started(d->vp) || !gw_vdpa_device_is_running(d) ||
        !gw_vdpa_device_can_suspend(d)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vdpa %s: shadow virtqueues need a running device that "
                    "can be suspended",
                    d->cfg->id);
        return false;
    }
    if (d->acked_features & unsupported) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vdpa %s: shadow virtqueues do not relay INDIRECT_DESC, "
                    "EVENT_IDX or RING_PACKED, which the driver negotiated",
                    d->cfg->id);
        return false;
    }
    return true;
}

/* GET_VRING_BASE of a suspended queue: what it took must be completed. */
static bool
quiet_base(GwVdpaDevice *d, SvqQueue *q, uint32_t *base, GError **errp)
{
    uint16_t used;

    if (!gw_vdpa_get_vring_base(d->backend, q->idx, base, errp)) {
        return false;
    }
    used = __atomic_load_n(q->switched ? &q->sused->idx : &q->gused->idx,
                           __ATOMIC_ACQUIRE);
    if (used != *base) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "vdpa %s queue %u: suspended, the device took up to %u "
                    "and completed up to %u",
                    d->cfg->id, q->idx, *base, used);
        return false;
    }
    return true;
}

static bool
switch_all_to_shadow(GwVdpaDevice *d, GwVdpaSvq *s, GError **errp)
{
    for (unsigned i = 0; i < s->n; i++) {
        uint32_t base = 0;

        if (!quiet_base(d, &s->q[i], &base, errp) ||
            !switch_to_shadow(d, s, &s->q[i], base, errp)) {
            return false;
        }
    }
    return true;
}

bool
gw_vdpa_device_svq_start(GwVdpaDevice *d, GError **errp)
{
    g_autoptr(GError) err = NULL;
    bool was_suspended = d->suspended;
    GwSvqAddr addr;
    GwVdpaSvq *s;

    if (!gw_svq_addr_init(&addr, d, errp) || !check_startable(d, errp) ||
        (!was_suspended && !gw_vdpa_device_backend_suspend(d, errp))) {
        return false;
    }
    s = g_new0(GwVdpaSvq, 1);
    s->id = g_strdup(d->cfg->id);
    s->addr = addr;
    s->notify_fd = d->config_call_fd;
    s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->stop_fd < 0) {
        gw_error_errno(&err, errno, "vdpa %s: eventfd", d->cfg->id);
    }
    if (err || !collect_queues(d, s, &err) || !alloc_rings(d, s, &err) ||
        !map_rings(d, s, &err) || !switch_all_to_shadow(d, s, &err) ||
        !start_relay(s, &err) ||
        (!was_suspended && !gw_vdpa_device_backend_resume(d, &err))) {
        roll_back(d, s);
        if (!was_suspended && d->suspended) {
            gw_vdpa_device_backend_resume(d, NULL);
        }
        g_propagate_prefixed_error(errp, g_steal_pointer(&err),
                                   "shadow virtqueues: ");
        return false;
    }
    d->svq = s;
    g_debug("vdpa %s: %u queues on shadow rings at IOVA 0x%" G_GINT64_MODIFIER
            "x",
            d->cfg->id, s->n, s->ring.iova);
    return true;
}

/* After SUSPEND: the relay's last completions, then each queue's check. */
static bool
drain(GwVdpaDevice *d, GwVdpaSvq *s, GError **errp)
{
    for (unsigned i = 0; i < s->n; i++) {
        uint32_t base;

        complete(s, &s->q[i]);
        if (!quiet_base(d, &s->q[i], &base, errp)) {
            return false;
        }
    }
    return true;
}

bool
gw_vdpa_device_svq_stop(GwVdpaDevice *d, GError **errp)
{
    GwVdpaSvq *s = d->svq;
    bool was_suspended = d->suspended;

    if (!s) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vdpa %s: no shadow virtqueues run", d->cfg->id);
        return false;
    }
    if (!was_suspended && !gw_vdpa_device_backend_suspend(d, errp)) {
        return false;
    }
    stop_relay(s);
    if (!drain(d, s, errp)) {
        /* Keep relaying: switching back now would lose a request. */
        start_relay(s, NULL);
        if (!was_suspended) {
            gw_vdpa_device_backend_resume(d, NULL);
        }
        return false;
    }
    for (unsigned i = 0; i < s->n; i++) {
        if (!switch_to_guest(d, &s->q[i], errp)) {
            /* The device is reset by whoever handles this; the guest's
             * rings are what it was on before. */
            return false;
        }
    }
    unmap_rings(d, s);
    d->svq = NULL;
    svq_free(s);
    return was_suspended || gw_vdpa_device_backend_resume(d, errp);
}

bool
gw_vdpa_device_svq_active(const GwVdpaDevice *d)
{
    return d->svq != NULL;
}

bool
gw_vdpa_svq_shadows(const GwVdpaDevice *d, unsigned idx)
{
    for (unsigned i = 0; d->svq && i < d->svq->n; i++) {
        if (d->svq->q[i].idx == idx && d->svq->q[i].switched) {
            return true;
        }
    }
    return false;
}

void
gw_vdpa_svq_abort(GwVdpaDevice *d)
{
    if (!d->svq) {
        return;
    }
    stop_relay(d->svq);
    unmap_rings(d, d->svq);
    g_clear_pointer(&d->svq, svq_free);
}

bool
gw_vdpa_svq_broken(const GwVdpaDevice *d)
{
    return d->svq && __atomic_load_n(&d->svq->broken, __ATOMIC_ACQUIRE);
}
