/*
 * What is particular to a network device: its MAC set at plug time
 * (gw_vdpa_device_set_mac), and its control-queue state, replayed on
 * restore through a ring of the VMM's own (see device-priv.h,
 * gw_vdpa_cvq_*).
 *
 * Why: the MAC a guest set with VIRTIO_NET_CTRL_MAC_ADDR_SET lives in
 * the device, and the saved config space carries it, but a real device
 * (mlx5_vdpa) ignores VHOST_VDPA_SET_CONFIG: on the destination the MAC
 * reaches the device only as the same command on its control queue, as
 * QEMU's vhost_vdpa_net_load_mac sends it through a shadow CVQ.
 *
 * The ring and the command's buffers are in VMM memory (a GwVdpaArea,
 * as the shadow virtqueues' rings) at IOVAs outside guest RAM, so the
 * guest's control ring is never written.  The ring starts at the
 * guest's saved index minus the commands sent: after them the device
 * stands exactly at the guest's index, and the guest's ring is put back
 * (suspended) with SET_VRING_BASE of that same index — a device that
 * keeps its used index apart from its avail index (the kernel's
 * vdpa_sim) stays consistent.
 *
 * Threads: the main thread, device lock held, the VM not running.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <godwit/log.h>
#include <godwit/util.h>
#include "device-priv.h"

#define CVQ_INDEX   2 /* rx 0, tx 1, ctrl 2: no multiqueue (a blocker) */
#define CVQ_WAIT_MS 2000
#define PAGE        4096u
#define F(n)        (1ull << (n))

/* Control-queue features whose state godwit does not carry (yet). */
#define NET_CTRL_UNCARRIED                                                     \
    (F(VIRTIO_NET_F_CTRL_GUEST_OFFLOADS) | F(VIRTIO_NET_F_CTRL_RX) |           \
     F(VIRTIO_NET_F_CTRL_VLAN) | F(VIRTIO_NET_F_CTRL_RX_EXTRA) |               \
     F(VIRTIO_NET_F_GUEST_ANNOUNCE) | F(VIRTIO_NET_F_MQ) | F(52) | F(53) |     \
     F(57) | F(60)) /* VQ_NOTF_COAL, NOTF_COAL, HASH_REPORT, RSS */

struct GwVdpaCvq {
    GwVdpaDevice *d;
    unsigned idx;
    uint16_t num;
    uint16_t next;   /* the VMM ring's avail (= used) index */
    GwVdpaArea area; /* desc+avail | used | out buffers | in buffers */
    size_t used_off, out_off, in_off;
    int kick, call;
};

/* The names of the uncarried features in `f`, comma-separated. */
static char *
uncarried_names(uint64_t f)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {
        {VIRTIO_NET_F_CTRL_GUEST_OFFLOADS, "CTRL_GUEST_OFFLOADS"},
        {VIRTIO_NET_F_CTRL_RX, "CTRL_RX"},
        {VIRTIO_NET_F_CTRL_VLAN, "CTRL_VLAN"},
        {VIRTIO_NET_F_CTRL_RX_EXTRA, "CTRL_RX_EXTRA"},
        {VIRTIO_NET_F_GUEST_ANNOUNCE, "GUEST_ANNOUNCE"},
        {VIRTIO_NET_F_MQ, "MQ"},
        {52, "VQ_NOTF_COAL"},
        {53, "NOTF_COAL"},
        {57, "HASH_REPORT"},
        {60, "RSS"},
    };
    g_autoptr(GString) s = g_string_new(NULL);

    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        if (f & F(names[i].bit)) {
            g_string_append_printf(s, "%s%s", s->len ? ", " : "",
                                   names[i].name);
        }
    }
    return g_string_free(g_steal_pointer(&s), false);
}

char *
gw_vdpa_net_cvq_blocker(const GwVdpaDevice *d)
{
    uint64_t f = d->acked_features;
    g_autofree char *names = NULL;

    if (d->device_id != VIRTIO_ID_NET || !(f & F(VIRTIO_NET_F_CTRL_VQ)) ||
        !(f & NET_CTRL_UNCARRIED)) {
        return NULL;
    }
    names = uncarried_names(f);
    return g_strdup_printf(
        "vDPA network device %s negotiated %s, whose control-queue state "
        "godwit cannot carry to the destination (only the MAC of "
        "CTRL_MAC_ADDR is replayed there)",
        d->cfg->id, names);
}

bool
gw_vdpa_net_cvq_replayed(const GwVdpaDevice *d, const GwVirtioActivation *a,
                         unsigned *idx)
{
    const uint64_t need =
        F(VIRTIO_NET_F_CTRL_VQ) | F(VIRTIO_NET_F_CTRL_MAC_ADDR);

    *idx = CVQ_INDEX;
    return d->device_id == VIRTIO_ID_NET && (a->features & need) == need &&
           a->n_queues > CVQ_INDEX && a->queues[CVQ_INDEX].enabled;
}

void
gw_vdpa_cvq_free(GwVdpaCvq *c)
{
    if (!c) {
        return;
    }
    gw_vdpa_area_unmap(c->d, &c->area);
    gw_vdpa_area_release(&c->area);
    gw_fd_cleanup(&c->kick);
    gw_fd_cleanup(&c->call);
    g_free(c);
}

/* Ring RO, used RW, out buffers RO, in buffers RW: one page each past
 * the ring. */
static bool
cvq_layout(GwVdpaCvq *c, GError **errp)
{
    GwVdpaDevice *d = c->d;
    size_t ro = 16u * c->num + 6 + 2u * c->num, used = 6 + 8u * c->num;

    c->used_off = (ro + PAGE - 1) & ~(size_t)(PAGE - 1);
    c->out_off = c->used_off + ((used + PAGE - 1) & ~(size_t)(PAGE - 1));
    c->in_off = c->out_off + PAGE;
    return gw_vdpa_area_alloc(d, &c->area, c->in_off + PAGE, errp) &&
           gw_vdpa_area_map(d, &c->area, 0, c->used_off, VHOST_ACCESS_RO,
                            errp) &&
           gw_vdpa_area_map(d, &c->area, c->used_off, c->out_off - c->used_off,
                            VHOST_ACCESS_RW, errp) &&
           gw_vdpa_area_map(d, &c->area, c->out_off, PAGE, VHOST_ACCESS_RO,
                            errp) &&
           gw_vdpa_area_map(d, &c->area, c->in_off, PAGE, VHOST_ACCESS_RW,
                            errp);
}

GwVdpaCvq *
gw_vdpa_cvq_open(GwVdpaDevice *d, unsigned idx, const GwVirtqueueSetup *q,
                 unsigned n_cmds, GError **errp)
{
    g_autoptr(GwVdpaCvq) c = g_new0(GwVdpaCvq, 1);
    struct vring_used *used;
    uint64_t at;

    c->d = d;
    c->idx = idx;
    c->num = q->size;
    c->next = (uint16_t)(q->last_avail - n_cmds);
    c->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    c->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (c->kick < 0 || c->call < 0) {
        return gw_error_errno(errp, errno, "vdpa %s: eventfd", d->cfg->id),
               NULL;
    }
    if (!cvq_layout(c, errp)) {
        return NULL;
    }
    used = (struct vring_used *)(c->area.host + c->used_off);
    used->idx = c->next;
    ((struct vring_avail *)(c->area.host + 16u * c->num))->idx = c->next;
    at = c->area.iova;
    if (!gw_vdpa_set_vring_num(d->backend, idx, c->num, errp) ||
        !gw_vdpa_set_vring_addr(d->backend, idx, at, at + 16u * c->num,
                                at + c->used_off, errp) ||
        !gw_vdpa_set_vring_base(d->backend, idx, c->next, errp) ||
        !gw_vdpa_set_vring_kick(d->backend, idx, c->kick, errp) ||
        !gw_vdpa_set_vring_call(d->backend, idx, c->call, errp) ||
        !gw_vdpa_set_vring_enable(d->backend, idx, true, errp)) {
        return NULL;
    }
    return g_steal_pointer(&c);
}

/* Until the device used entry c->next - 1 (bounded). */
static bool
cvq_wait(GwVdpaCvq *c, GError **errp)
{
    volatile struct vring_used *used =
        (struct vring_used *)(c->area.host + c->used_off);
    gint64 deadline = g_get_monotonic_time() + CVQ_WAIT_MS * 1000ll;
    struct pollfd p = {.fd = c->call, .events = POLLIN};

    while (__atomic_load_n(&used->idx, __ATOMIC_ACQUIRE) != c->next) {
        gint64 left = (deadline - g_get_monotonic_time()) / 1000;
        if (left <= 0) {
            g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                        "vdpa %s: the device did not answer a control "
                        "command within %d ms",
                        c->d->cfg->id, CVQ_WAIT_MS);
            return false;
        }
        /* The call eventfd, or a look at the used index every 10 ms. */
        if (poll(&p, 1, (int)MIN(left, 10)) > 0) {
            eventfd_read(c->call, &(eventfd_t){0});
        }
    }
    return true;
}

/* One command: `class`/`cmd` with `len` bytes of data; its ack. */
static bool
cvq_command(GwVdpaCvq *c, uint8_t class, uint8_t cmd, const void *data,
            size_t len, GError **errp)
{
    struct virtio_net_ctrl_hdr hdr = {class, cmd};
    struct vring_desc *desc = (struct vring_desc *)c->area.host;
    struct vring_avail *avail =
        (struct vring_avail *)(c->area.host + 16u * c->num);
    struct vring_used *used = (struct vring_used *)(c->area.host + c->used_off);
    uint8_t *ack = c->area.host + c->in_off;
    struct vring_used_elem e;
    uint64_t out = c->area.iova + c->out_off;

    memcpy(c->area.host + c->out_off, &hdr, sizeof(hdr));
    memcpy(c->area.host + c->out_off + 16, data, len);
    *ack = 0xff;
    desc[0] = (struct vring_desc){out, sizeof(hdr), VRING_DESC_F_NEXT, 1};
    desc[1] =
        (struct vring_desc){out + 16, (uint32_t)len, VRING_DESC_F_NEXT, 2};
    desc[2] =
        (struct vring_desc){c->area.iova + c->in_off, 1, VRING_DESC_F_WRITE, 0};
    avail->ring[c->next & (c->num - 1)] = 0;
    __atomic_store_n(&avail->idx, (uint16_t)(c->next + 1), __ATOMIC_RELEASE);
    c->next++;
    eventfd_write(c->kick, 1);
    if (!cvq_wait(c, errp)) {
        return false;
    }
    e = used->ring[(uint16_t)(c->next - 1) & (c->num - 1)];
    if (e.id != 0 || e.len < 1 || *ack != VIRTIO_NET_OK) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "vdpa %s: the device refused control command %u.%u "
                    "(ack %u, used length %u)",
                    c->d->cfg->id, class, cmd, *ack, e.len);
        return false;
    }
    return true;
}

bool
gw_vdpa_cvq_set_mac(GwVdpaCvq *c, const uint8_t mac[6], GError **errp)
{
    if (!cvq_command(c, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, mac,
                     6, errp)) {
        g_prefix_error(errp, "replaying the MAC address: ");
        return false;
    }
    g_debug("vdpa %s: MAC %02x:%02x:%02x:%02x:%02x:%02x replayed on the "
            "control queue",
            c->d->cfg->id, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
    return true;
}

bool
gw_vdpa_cvq_to_guest(GwVdpaCvq *c, const GwVirtqueueSetup *q, GError **errp)
{
    GwVdpaDevice *d = c->d;
    uint32_t base = 0;

    if (!gw_vdpa_get_vring_base(d->backend, c->idx, &base, errp)) {
        return false;
    }
    if (base != q->last_avail) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "vdpa %s: after the replay the control queue stands at "
                    "%u, the guest's ring at %u",
                    d->cfg->id, base, q->last_avail);
        return false;
    }
    if (!gw_vdpa_set_vring_addr(d->backend, c->idx, q->desc, q->avail, q->used,
                                errp) ||
        !gw_vdpa_set_vring_base(d->backend, c->idx, q->last_avail, errp) ||
        !gw_vdpa_set_vring_kick(d->backend, c->idx, q->kick_fd, errp) ||
        !gw_vdpa_set_vring_call(d->backend, c->idx, q->call_fd, errp)) {
        return false;
    }
    gw_vdpa_area_unmap(d, &c->area);
    return true;
}

bool
gw_vdpa_device_set_mac(GwVdpaDevice *d, const uint8_t mac[6], GError **errp)
{
    uint8_t now[6];

    if (d->device_id != VIRTIO_ID_NET) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vdpa %s: a MAC address needs a network device, and %s "
                    "is virtio device type %u",
                    d->cfg->id, gw_vdpa_backend_label(d->backend),
                    d->device_id);
        return false;
    }
    if (!gw_vdpa_set_config(d->backend, 0, mac, 6, errp) ||
        !gw_vdpa_get_config(d->backend, 0, now, 6, errp)) {
        return false;
    }
    if (memcmp(now, mac, 6) != 0) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vdpa %s: %s did not take the MAC address; give it "
                    "when creating the device (vdpa dev add … mac)",
                    d->cfg->id, gw_vdpa_backend_label(d->backend));
        return false;
    }
    return true;
}
