/*
 * What is particular to a network device: its MAC set at plug time
 * (gw_vdpa_device_set_mac), the ring of the VMM's own its control queue
 * runs on (the relay's, cvq-relay.c, and the restore's replay), and the
 * control-queue state the relay records, the section carries and the
 * destination replays (see device-priv.h, gw_vdpa_cvq_*,
 * gw_vdpa_net_ctrl_*).
 *
 * Why: what a guest set over the control queue lives in the device.  The
 * saved config space carries only the MAC, and a real device
 * (mlx5_vdpa) ignores VHOST_VDPA_SET_CONFIG: on the destination the
 * state reaches the device only as the same commands on its control
 * queue, as QEMU's vhost_vdpa_net_load sends them through a shadow CVQ,
 * in QEMU's order (MAC, MQ, offloads, RX modes, MAC table, VLANs).
 *
 * The ring and the command's buffers are in VMM memory (a GwVdpaArea,
 * as the shadow virtqueues' rings) at IOVAs outside guest RAM, made and
 * mapped with the device: the guest's control ring is never written by
 * the VMM ring.  One command is in flight at a time, waited for (at most
 * 2 s) by looking at the used index between short sleeps.
 *
 * Threads: the device lock held; the driver's start runs on a vCPU
 * thread (no memory is made there, nothing polls), the relay and a
 * restore on the main thread.
 */
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <godwit/log.h>
#include <godwit/util.h>
#include <godwit/vmstate.h>
#include "device-priv.h"

#define CVQ_WAIT_MS 2000
#define PAGE        4096u
#define F(n)        (1ull << (n))

/* Control-queue features whose state godwit does not carry (yet). */
#define NET_CTRL_UNCARRIED                                                     \
    (F(VIRTIO_NET_F_GUEST_ANNOUNCE) | F(52) | F(53) | F(57) |                  \
     F(60)) /* VQ_NOTF_COAL, NOTF_COAL, HASH_REPORT, RSS */
/* What needs the relay to be seen at all (a queue it does not relay). */
#define NET_CTRL_UNSEEN                                                        \
    (NET_CTRL_UNCARRIED | F(VIRTIO_NET_F_CTRL_GUEST_OFFLOADS) |                \
     F(VIRTIO_NET_F_CTRL_RX) | F(VIRTIO_NET_F_CTRL_VLAN) |                     \
     F(VIRTIO_NET_F_CTRL_RX_EXTRA) | F(VIRTIO_NET_F_MQ))

struct GwVdpaCvq {
    GwVdpaDevice *d;
    unsigned idx;
    uint16_t num;
    uint16_t next;    /* the VMM ring's avail (= used) index */
    GwVdpaArea *area; /* d->cvq_area: desc+avail | used | out | in */
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
    uint64_t bad = d->cvq_relay ? NET_CTRL_UNCARRIED : NET_CTRL_UNSEEN;
    g_autofree char *names = NULL;

    if (d->device_id != VIRTIO_ID_NET || !(f & F(VIRTIO_NET_F_CTRL_VQ)) ||
        !(f & bad)) {
        return NULL;
    }
    names = uncarried_names(f & bad);
    return g_strdup_printf(
        "vDPA network device %s negotiated %s, whose control-queue state "
        "godwit cannot carry to the destination (it carries the MAC and "
        "what MQ, CTRL_RX, CTRL_RX_EXTRA, CTRL_VLAN and CTRL_GUEST_OFFLOADS "
        "set%s)",
        d->cfg->id, names,
        d->cvq_relay ? "" : ", over a control queue the VMM relays");
}

unsigned
gw_vdpa_net_cvq_index(GwVdpaDevice *d, uint64_t features)
{
    uint16_t pairs = 1;

    if ((features & F(VIRTIO_NET_F_MQ)) &&
        (!gw_vdpa_get_config(d->backend, 8, &pairs, 2, NULL) || !pairs)) {
        pairs = 1;
    }
    return 2u * pairs;
}

/* Ring RO, used RW, out buffers RO, in buffers RW: one page each past
 * the ring, sized for the largest ring the device takes. */
bool
gw_vdpa_cvq_prepare(GwVdpaDevice *d, uint16_t max, GError **errp)
{
    size_t ro = 16u * max + 6 + 2u * max, used = 6 + 8u * max;

    d->cvq_max = max;
    d->cvq_used_off = (ro + PAGE - 1) & ~(size_t)(PAGE - 1);
    d->cvq_out_off =
        d->cvq_used_off + ((used + PAGE - 1) & ~(size_t)(PAGE - 1));
    d->cvq_in_off = d->cvq_out_off + PAGE;
    if (!gw_vdpa_area_alloc(d, &d->cvq_area, d->cvq_in_off + PAGE, errp) ||
        !gw_vdpa_cvq_map(d, errp)) {
        gw_vdpa_cvq_release(d);
        return false;
    }
    d->held_iova = d->cvq_area.iova;
    d->held_len = d->cvq_area.len;
    return true;
}

/* Mapped for the device's life: a vCPU thread may not map (the
 * simulator reads /proc/self/maps), and after a reset without
 * IOTLB_PERSIST vdpa_reset maps it again with guest RAM. */
bool
gw_vdpa_cvq_map(GwVdpaDevice *d, GError **errp)
{
    GwVdpaArea *a = &d->cvq_area;

    if (!a->host) {
        return true;
    }
    return gw_vdpa_area_map(d, a, 0, d->cvq_used_off, VHOST_ACCESS_RO, errp) &&
           gw_vdpa_area_map(d, a, d->cvq_used_off,
                            d->cvq_out_off - d->cvq_used_off, VHOST_ACCESS_RW,
                            errp) &&
           gw_vdpa_area_map(d, a, d->cvq_out_off, PAGE, VHOST_ACCESS_RO,
                            errp) &&
           gw_vdpa_area_map(d, a, d->cvq_in_off, PAGE, VHOST_ACCESS_RW, errp);
}

void
gw_vdpa_cvq_release(GwVdpaDevice *d)
{
    gw_vdpa_area_unmap(d, &d->cvq_area);
    gw_vdpa_area_release(&d->cvq_area);
    d->held_len = 0;
}

void
gw_vdpa_cvq_free(GwVdpaCvq *c)
{
    if (!c) {
        return;
    }
    gw_fd_cleanup(&c->kick);
    gw_fd_cleanup(&c->call);
    g_free(c);
}

static bool
cvq_map(GwVdpaCvq *c, GError **errp)
{
    GwVdpaDevice *d = c->d;

    c->area = &d->cvq_area;
    c->used_off = d->cvq_used_off;
    c->out_off = d->cvq_out_off;
    c->in_off = d->cvq_in_off;
    if (!c->area->host || c->num > d->cvq_max) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "vdpa %s: no VMM ring for a control queue of %u entries",
                    d->cfg->id, c->num);
        return false;
    }
    return true;
}

GwVdpaCvq *
gw_vdpa_cvq_open(GwVdpaDevice *d, unsigned idx, const GwVirtqueueSetup *q,
                 unsigned n_cmds, GError **errp)
{
    g_autoptr(GwVdpaCvq) c = NULL;
    struct vring_used *used;
    uint64_t at;

    gw_vdpa_cvq_relay_stop(d); /* one VMM ring at a time */
    c = g_new0(GwVdpaCvq, 1);
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
    if (!cvq_map(c, errp)) {
        return NULL;
    }
    used = (struct vring_used *)(c->area->host + c->used_off);
    used->idx = c->next;
    ((struct vring_avail *)(c->area->host + 16u * c->num))->idx = c->next;
    at = c->area->iova;
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

/*
 * Until the device used entry c->next - 1 (bounded).  Looks at the used
 * index with growing sleeps rather than poll(): a vCPU thread (the
 * driver's start, the plug MAC) may not poll.
 */
static bool
cvq_wait(GwVdpaCvq *c, GError **errp)
{
    volatile struct vring_used *used =
        (struct vring_used *)(c->area->host + c->used_off);
    gint64 deadline = g_get_monotonic_time() + CVQ_WAIT_MS * 1000ll;
    gulong nap = 2;

    while (__atomic_load_n(&used->idx, __ATOMIC_ACQUIRE) != c->next) {
        if (g_get_monotonic_time() > deadline) {
            g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                        "vdpa %s: the device did not answer a control "
                        "command within %d ms",
                        c->d->cfg->id, CVQ_WAIT_MS);
            return false;
        }
        g_usleep(nap);
        nap = MIN(nap * 2, 1000);
    }
    eventfd_read(c->call, &(eventfd_t){0});
    return true;
}

bool
gw_vdpa_cvq_send(GwVdpaCvq *c, const void *cmd, size_t len, uint8_t *ack,
                 GError **errp)
{
    struct vring_desc *desc = (struct vring_desc *)c->area->host;
    struct vring_avail *avail =
        (struct vring_avail *)(c->area->host + 16u * c->num);
    struct vring_used *used =
        (struct vring_used *)(c->area->host + c->used_off);
    uint8_t *in = c->area->host + c->in_off;
    struct vring_used_elem e;
    uint64_t out = c->area->iova + c->out_off;

    g_assert(len <= GW_VDPA_CVQ_CMD_MAX);
    memcpy(c->area->host + c->out_off, cmd, len);
    *in = 0xff;
    desc[0] = (struct vring_desc){out, (uint32_t)len, VRING_DESC_F_NEXT, 1};
    desc[1] = (struct vring_desc){c->area->iova + c->in_off, 1,
                                  VRING_DESC_F_WRITE, 0};
    avail->ring[c->next & (c->num - 1)] = 0;
    __atomic_store_n(&avail->idx, (uint16_t)(c->next + 1), __ATOMIC_RELEASE);
    c->next++;
    eventfd_write(c->kick, 1);
    if (!cvq_wait(c, errp)) {
        return false;
    }
    e = used->ring[(uint16_t)(c->next - 1) & (c->num - 1)];
    *ack = e.id == 0 && e.len >= 1 ? *in : VIRTIO_NET_ERR;
    return true;
}

/* One command: `class`/`cmd` with `len` bytes of data; needs its OK. */
static bool
cvq_command(GwVdpaCvq *c, uint8_t class, uint8_t cmd, const void *data,
            size_t len, GError **errp)
{
    uint8_t buf[GW_VDPA_CVQ_CMD_MAX], ack = VIRTIO_NET_ERR;

    buf[0] = class;
    buf[1] = cmd;
    memcpy(buf + 2, data, len);
    if (!gw_vdpa_cvq_send(c, buf, len + 2, &ack, errp)) {
        return false;
    }
    if (ack != VIRTIO_NET_OK) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "vdpa %s: the device refused control command %u.%u "
                    "(ack %u)",
                    c->d->cfg->id, class, cmd, ack);
        return false;
    }
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
    if (!d->cfg->iommu && (d->device_features & F(VIRTIO_NET_F_CTRL_VQ)) &&
        (d->device_features & F(VIRTIO_NET_F_CTRL_MAC_ADDR))) {
        /* A device may ignore SET_CONFIG (mlx5_vdpa): the MAC goes as a
         * command when the driver starts it (gw_vdpa_net_plug_mac). */
        gw_vdpa_set_config(d->backend, 0, mac, 6, NULL);
        memcpy(d->plug_mac, mac, 6);
        d->has_plug_mac = true;
        return true;
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

/* ---- the carried state ---- */

void
gw_vdpa_net_ctrl_reset(GwVdpaNetCtrl *s)
{
    memset(s, 0, sizeof(*s));
    s->pairs = 1;
    s->rx_mode[VIRTIO_NET_CTRL_RX_PROMISC] = 1; /* as QEMU's virtio-net */
}

void
gw_vdpa_net_ctrl_record(GwVdpaNetCtrl *s, const uint8_t *cmd, size_t len)
{
    const uint8_t *data = cmd + 2;
    size_t n = len - 2;
    uint16_t v16 = 0;

    if (n >= 2) {
        memcpy(&v16, data, 2);
    }
    switch (cmd[0]) {
    case VIRTIO_NET_CTRL_RX:
        if (cmd[1] < G_N_ELEMENTS(s->rx_mode) && n >= 1) {
            s->rx_mode[cmd[1]] = data[0] != 0;
        }
        break;
    case VIRTIO_NET_CTRL_MAC:
        if (cmd[1] == VIRTIO_NET_CTRL_MAC_TABLE_SET) {
            memcpy(s->mac_table, data, n);
            s->mac_table_len = (uint32_t)n;
        }
        break;
    case VIRTIO_NET_CTRL_VLAN:
        if (n >= 2 && v16 < 4096 && cmd[1] == VIRTIO_NET_CTRL_VLAN_ADD) {
            s->vlans[v16 >> 5] |= 1u << (v16 & 31);
        } else if (n >= 2 && v16 < 4096 && cmd[1] == VIRTIO_NET_CTRL_VLAN_DEL) {
            s->vlans[v16 >> 5] &= ~(1u << (v16 & 31));
        }
        break;
    case VIRTIO_NET_CTRL_MQ:
        if (cmd[1] == VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET && n >= 2) {
            s->pairs = v16;
        }
        break;
    case VIRTIO_NET_CTRL_GUEST_OFFLOADS:
        if (cmd[1] == VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET && n >= 8) {
            memcpy(&s->offloads, data, 8);
            s->offloads_set = 1;
        }
        break;
    }
}

/* One replayed command, or one more counted when only counting. */
static bool
replay(GwVdpaCvq *c, unsigned *n_cmds, uint8_t class, uint8_t cmd,
       const void *data, size_t len, GError **errp)
{
    if (n_cmds) {
        ++*n_cmds;
        return true;
    }
    if (!cvq_command(c, class, cmd, data, len, errp)) {
        g_prefix_error(errp, "replaying the control queue's state: ");
        return false;
    }
    return true;
}

/* RX mode, MAC table and VLANs, for what `f` negotiated. */
static bool
replay_filters(GwVdpaCvq *c, const GwVdpaNetCtrl *s, uint64_t f,
               unsigned *n_cmds, GError **errp)
{
    static const uint8_t empty_table[8];
    unsigned modes = (f & F(VIRTIO_NET_F_CTRL_RX_EXTRA)) ? 6 : 2;

    for (unsigned m = 0; (f & F(VIRTIO_NET_F_CTRL_RX)) && m < modes; m++) {
        if (!replay(c, n_cmds, VIRTIO_NET_CTRL_RX, m, &s->rx_mode[m], 1,
                    errp)) {
            return false;
        }
    }
    if ((f & F(VIRTIO_NET_F_CTRL_RX)) &&
        !replay(c, n_cmds, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET,
                s->mac_table_len ? s->mac_table : empty_table,
                s->mac_table_len ? s->mac_table_len : sizeof(empty_table),
                errp)) {
        return false;
    }
    for (uint16_t v = 0; (f & F(VIRTIO_NET_F_CTRL_VLAN)) && v < 4096; v++) {
        if (((s->vlans[v >> 5] >> (v & 31)) & 1) &&
            !replay(c, n_cmds, VIRTIO_NET_CTRL_VLAN, VIRTIO_NET_CTRL_VLAN_ADD,
                    &v, 2, errp)) {
            return false;
        }
    }
    return true;
}

bool
gw_vdpa_net_ctrl_replay(GwVdpaDevice *d, GwVdpaCvq *c, uint64_t f,
                        const uint8_t mac[6], unsigned *n_cmds, GError **errp)
{
    const GwVdpaNetCtrl *s = &d->net_ctrl;

    if (mac && (f & F(VIRTIO_NET_F_CTRL_MAC_ADDR)) &&
        !replay(c, n_cmds, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET,
                mac, 6, errp)) {
        return false;
    }
    if (!d->net_ctrl_loaded) {
        return true; /* an older source: the MAC is all it carried */
    }
    if ((f & F(VIRTIO_NET_F_MQ)) &&
        !replay(c, n_cmds, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET,
                &s->pairs, 2, errp)) {
        return false;
    }
    if ((f & F(VIRTIO_NET_F_CTRL_GUEST_OFFLOADS)) && s->offloads_set &&
        !replay(c, n_cmds, VIRTIO_NET_CTRL_GUEST_OFFLOADS,
                VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET, &s->offloads, 8, errp)) {
        return false;
    }
    return replay_filters(c, s, f, n_cmds, errp);
}

static bool
net_ctrl_post_load(void *obj, unsigned version, GError **errp)
{
    GwVdpaNetCtrl *s = obj;

    if (s->mac_table_len > sizeof(s->mac_table) || !s->pairs) {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT,
                    "vdpa-net-ctrl: %u queue pairs, a MAC table of %u bytes",
                    s->pairs, s->mac_table_len);
        return false;
    }
    return true;
}

static const GwVmsdField net_ctrl_fields[] = {
    GW_VMSD_FIELD(GwVdpaNetCtrl, pairs, 1),
    GW_VMSD_ARRAY(GwVdpaNetCtrl, rx_mode, 1),
    GW_VMSD_FIELD(GwVdpaNetCtrl, offloads, 1),
    GW_VMSD_FIELD(GwVdpaNetCtrl, offloads_set, 1),
    GW_VMSD_ARRAY(GwVdpaNetCtrl, vlans, 1),
    GW_VMSD_FIELD(GwVdpaNetCtrl, mac_table_len, 1),
    GW_VMSD_ARRAY(GwVdpaNetCtrl, mac_table, 1),
    GW_VMSD_END,
};

const GwVmsd gw_vdpa_net_ctrl_vmsd = {
    .name = "vdpa-net-ctrl",
    .version = 1,
    .fields = net_ctrl_fields,
    .post_load = net_ctrl_post_load,
    .size = sizeof(GwVdpaNetCtrl),
};

bool
gw_vdpa_net_ctrl_save(void *opaque, uint8_t *buf, unsigned max, unsigned *len,
                      GError **errp)
{
    GwVdpaDevice *d = opaque;
    g_autoptr(GwMigBuf) b = NULL;

    *len = 0;
    if (!d->cvq_relay) {
        return true;
    }
    b = gw_mig_buf_new();
    if (!gw_vmsd_save(&gw_vdpa_net_ctrl_vmsd, &d->net_ctrl, b, errp)) {
        return false;
    }
    g_assert(gw_mig_buf_len(b) <= max);
    memcpy(buf, gw_mig_buf_data(b), gw_mig_buf_len(b));
    *len = (unsigned)gw_mig_buf_len(b);
    return true;
}

bool
gw_vdpa_net_ctrl_load(void *opaque, const uint8_t *buf, unsigned len,
                      GError **errp)
{
    GwVdpaDevice *d = opaque;
    GwMigCursor c;

    gw_vdpa_net_ctrl_reset(&d->net_ctrl);
    d->net_ctrl_loaded = false;
    if (!len) {
        return true;
    }
    gw_mig_cursor_init(&c, buf, len);
    if (!gw_vmsd_load(&gw_vdpa_net_ctrl_vmsd, &d->net_ctrl, &c, errp) ||
        !gw_mig_cursor_finish(&c, errp)) {
        g_prefix_error(errp, "vdpa %s: ", d->cfg->id);
        return false;
    }
    d->net_ctrl_loaded = true;
    return true;
}

bool
gw_vdpa_net_plug_mac(GwVdpaDevice *d, GwVdpaCvq *c, uint64_t features,
                     GError **errp)
{
    if (!d->has_plug_mac || !c || !(features & F(VIRTIO_NET_F_CTRL_MAC_ADDR))) {
        return true;
    }
    if (!cvq_command(c, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET,
                     d->plug_mac, 6, errp)) {
        g_prefix_error(errp, "setting the MAC of mac=: ");
        return false;
    }
    return true;
}

void
gw_vdpa_net_config_overlay(GwVdpaDevice *d, unsigned off, uint8_t *buf,
                           unsigned len)
{
    if (!d->has_plug_mac || gw_vdpa_device_is_running(d)) {
        return;
    }
    for (unsigned i = off; i < 6 && i < off + len; i++) {
        buf[i - off] = d->plug_mac[i];
    }
}
