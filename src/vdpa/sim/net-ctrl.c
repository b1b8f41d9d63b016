/*
 * The opt-in control-queue state of vdpasim_net (`features=`): MQ,
 * CTRL_RX, CTRL_RX_EXTRA, CTRL_VLAN, as hardware such as mlx5_vdpa
 * offers them, and GUEST_ANNOUNCE (its ANNOUNCE_ACK acked, nothing
 * more: a feature whose state godwit does not carry).  The commands are QEMU's
 * virtio-net semantics (hw/net/virtio-net.c, virtio_net_handle_rx_mode / _mac /
 * _vlan / _mq) and so is the receive filter: promiscuous takes everything, then
 * a tagged frame needs its VLAN in the filter, then broadcast unless nobcast,
 * multicast per nomulti / allmulti / the multicast table, unicast per nouni /
 * alluni / own MAC / the unicast table.  A table longer than SIM_MAC_TABLE
 * entries sets its class's overflow (that class then passes), as QEMU's
 * MAC_TABLE_ENTRIES.
 *
 * A feature the device does not offer by `features=` is refused with
 * VIRTIO_NET_ERR even if a test hook offers its bit (offer-ctrl-rx):
 * without the opt-in the device stays exactly the kernel's vdpasim_net.
 *
 * Threads: the worker, dev->lock held; gw_sim_net_setup at creation.
 */
#include <errno.h>
#include <string.h>
#include <godwit/util.h>
#include "sim-priv.h"

#define F(n)     (1ull << (n))
#define ETH_LEN  6
#define ETH_HLEN 14

static const struct {
    const char *name;
    unsigned bit;
} opt_names[] = {
    {"mq", VIRTIO_NET_F_MQ},
    {"ctrl-rx", VIRTIO_NET_F_CTRL_RX},
    {"ctrl-rx-extra", VIRTIO_NET_F_CTRL_RX_EXTRA},
    {"ctrl-vlan", VIRTIO_NET_F_CTRL_VLAN},
    {"guest-announce", VIRTIO_NET_F_GUEST_ANNOUNCE},
};

static bool
parse_features(const char *list, uint64_t *bits, GError **errp)
{
    g_auto(GStrv) names = g_strsplit(list, "+", -1);

    *bits = 0;
    for (char **n = names; *n; n++) {
        size_t i = 0;

        while (i < G_N_ELEMENTS(opt_names) && strcmp(*n, opt_names[i].name)) {
            i++;
        }
        if (i == G_N_ELEMENTS(opt_names)) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "features: '%s' is not one of mq, ctrl-rx, "
                        "ctrl-rx-extra, ctrl-vlan, guest-announce ('+' "
                        "between them)",
                        *n);
            return false;
        }
        *bits |= F(opt_names[i].bit);
    }
    if ((*bits & F(VIRTIO_NET_F_CTRL_RX_EXTRA)) &&
        !(*bits & F(VIRTIO_NET_F_CTRL_RX))) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "features: ctrl-rx-extra needs ctrl-rx");
        return false;
    }
    return true;
}

bool
gw_sim_net_setup(GwVdpaSimDev *d, const GwVdpaSimConfig *cfg, GError **errp)
{
    struct virtio_net_config *c = (struct virtio_net_config *)d->config;
    uint64_t bits = 0;

    if (cfg->mac && !gw_parse_mac(cfg->mac, c->mac, errp)) {
        return false;
    }
    if (cfg->features && !parse_features(cfg->features, &bits, errp)) {
        return g_prefix_error(errp, "vdpa-sim %s: ", cfg->name), false;
    }
    if (cfg->max_vq_pairs && !(bits & F(VIRTIO_NET_F_MQ))) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vdpa-sim %s: max_vq_pairs needs features=mq", cfg->name);
        return false;
    }
    c->mtu = 1500;
    d->net.offer = bits;
    d->net.max_pairs = 1;
    if (bits & F(VIRTIO_NET_F_MQ)) {
        d->net.max_pairs = cfg->max_vq_pairs ? (uint16_t)cfg->max_vq_pairs : 2;
        c->max_virtqueue_pairs = d->net.max_pairs;
        d->nvqs = 2u * d->net.max_pairs + 1;
    }
    gw_sim_net_reset(d);
    return true;
}

/* virtio_net_reset: one pair, promiscuous, empty tables and filter. */
void
gw_sim_net_reset(GwVdpaSimDev *d)
{
    SimNet *n = &d->net;

    n->pairs = 1;
    n->promisc = true;
    n->allmulti = n->alluni = n->nomulti = n->nouni = n->nobcast = false;
    n->uni_overflow = n->multi_overflow = false;
    n->n_uni = n->n_multi = 0;
    memset(n->vlans, 0, sizeof(n->vlans));
}

/* Negotiated and offered by features= (not only by a test hook). */
static bool
has(const GwVdpaSimDev *d, unsigned bit)
{
    return (d->features & d->net.offer & F(bit)) != 0;
}

unsigned
gw_sim_net_cvq_index(const GwVdpaSimDev *d)
{
    return has(d, VIRTIO_NET_F_MQ) ? 2u * d->net.max_pairs : 2;
}

uint64_t
gw_sim_dev_features(const GwVdpaSimDev *d)
{
    return d->type->features | d->extra_features | d->net.offer;
}

/* Pulls exactly `len` bytes: 1, 0 if the chain is shorter, -EFAULT. */
static int
pull(GwVdpaSimDev *d, SimVq *vq, void *dst, size_t len)
{
    ssize_t n = gw_sim_chain_pull(d, vq, dst, len);

    return n < 0 ? -EFAULT : n == (ssize_t)len;
}

static int
ctrl_rx(GwVdpaSimDev *d, SimVq *vq, uint8_t cmd)
{
    bool *modes[] = {&d->net.promisc, &d->net.allmulti, &d->net.alluni,
                     &d->net.nomulti, &d->net.nouni,    &d->net.nobcast};
    uint8_t on;
    int r;

    if (cmd >= G_N_ELEMENTS(modes) || !has(d, VIRTIO_NET_F_CTRL_RX) ||
        (cmd > VIRTIO_NET_CTRL_RX_ALLMULTI &&
         !has(d, VIRTIO_NET_F_CTRL_RX_EXTRA))) {
        return VIRTIO_NET_ERR;
    }
    if ((r = pull(d, vq, &on, 1)) <= 0) {
        return r < 0 ? r : VIRTIO_NET_ERR;
    }
    *modes[cmd] = on != 0;
    return VIRTIO_NET_OK;
}

/* One table of MAC_TABLE_SET into `macs`; overflow past SIM_MAC_TABLE. */
static int
mac_table(GwVdpaSimDev *d, SimVq *vq, uint8_t (*macs)[6], unsigned *count,
          bool *overflow)
{
    uint32_t entries;
    uint64_t left;
    int r;

    if ((r = pull(d, vq, &entries, 4)) <= 0) {
        return r < 0 ? r : VIRTIO_NET_ERR;
    }
    if ((uint64_t)entries * ETH_LEN > vq->chain.out_len) {
        return VIRTIO_NET_ERR;
    }
    *overflow = entries > SIM_MAC_TABLE;
    *count = *overflow ? 0 : entries;
    if (!*overflow) {
        r = entries ? pull(d, vq, macs, (size_t)entries * ETH_LEN) : 1;
        return r <= 0 ? (r < 0 ? r : VIRTIO_NET_ERR) : VIRTIO_NET_OK;
    }
    for (left = (uint64_t)entries * ETH_LEN; left; left -= MIN(left, 4096)) {
        if ((r = pull(d, vq, d->net_buf, MIN(left, 4096))) <= 0) {
            return r < 0 ? r : VIRTIO_NET_ERR;
        }
    }
    return VIRTIO_NET_OK;
}

static int
ctrl_mac(GwVdpaSimDev *d, SimVq *vq, uint8_t cmd)
{
    struct virtio_net_config *c = (void *)d->config;
    SimNet *n = &d->net, t = d->net;
    uint8_t mac[ETH_LEN];
    int r;

    if (cmd == VIRTIO_NET_CTRL_MAC_ADDR_SET) {
        if ((r = pull(d, vq, mac, ETH_LEN)) <= 0) {
            return r < 0 ? r : VIRTIO_NET_ERR;
        }
        memcpy(c->mac, mac, ETH_LEN);
        return VIRTIO_NET_OK;
    }
    if (cmd != VIRTIO_NET_CTRL_MAC_TABLE_SET || !has(d, VIRTIO_NET_F_CTRL_RX)) {
        return VIRTIO_NET_ERR;
    }
    /* Into a copy: a refused command leaves the tables as they were. */
    r = mac_table(d, vq, t.uni, &t.n_uni, &t.uni_overflow);
    if (r == VIRTIO_NET_OK) {
        r = mac_table(d, vq, t.multi, &t.n_multi, &t.multi_overflow);
    }
    if (r == VIRTIO_NET_OK) {
        *n = t;
    }
    return r;
}

static int
ctrl_vlan(GwVdpaSimDev *d, SimVq *vq, uint8_t cmd)
{
    uint16_t vid;
    int r;

    if (!has(d, VIRTIO_NET_F_CTRL_VLAN) || cmd > VIRTIO_NET_CTRL_VLAN_DEL) {
        return VIRTIO_NET_ERR;
    }
    if ((r = pull(d, vq, &vid, 2)) <= 0 || vid >= 4096) {
        return r < 0 ? r : VIRTIO_NET_ERR;
    }
    if (cmd == VIRTIO_NET_CTRL_VLAN_ADD) {
        d->net.vlans[vid >> 5] |= 1u << (vid & 31);
    } else {
        d->net.vlans[vid >> 5] &= ~(1u << (vid & 31));
    }
    return VIRTIO_NET_OK;
}

static int
ctrl_mq(GwVdpaSimDev *d, SimVq *vq, uint8_t cmd)
{
    uint16_t pairs;
    int r;

    if (!has(d, VIRTIO_NET_F_MQ) || cmd != VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET) {
        return VIRTIO_NET_ERR;
    }
    if ((r = pull(d, vq, &pairs, 2)) <= 0 || pairs < 1 ||
        pairs > d->net.max_pairs) {
        return r < 0 ? r : VIRTIO_NET_ERR;
    }
    d->net.pairs = pairs;
    return VIRTIO_NET_OK;
}

int
gw_sim_net_ctrl(GwVdpaSimDev *d, SimVq *cvq, uint8_t class, uint8_t cmd)
{
    if (d->net.refuse) {
        return VIRTIO_NET_ERR;
    }
    switch (class) {
    case VIRTIO_NET_CTRL_RX:
        return ctrl_rx(d, cvq, cmd);
    case VIRTIO_NET_CTRL_MAC:
        return ctrl_mac(d, cvq, cmd);
    case VIRTIO_NET_CTRL_VLAN:
        return ctrl_vlan(d, cvq, cmd);
    case VIRTIO_NET_CTRL_MQ:
        return ctrl_mq(d, cvq, cmd);
    case VIRTIO_NET_CTRL_ANNOUNCE:
        return has(d, VIRTIO_NET_F_GUEST_ANNOUNCE) &&
                       cmd == VIRTIO_NET_CTRL_ANNOUNCE_ACK
                   ? VIRTIO_NET_OK
                   : VIRTIO_NET_ERR;
    }
    return VIRTIO_NET_ERR;
}

static bool
in_table(const uint8_t (*macs)[6], unsigned n, const uint8_t *mac)
{
    for (unsigned i = 0; i < n; i++) {
        if (memcmp(macs[i], mac, ETH_LEN) == 0) {
            return true;
        }
    }
    return false;
}

/* A tagged frame's VLAN is in the filter (untagged frames pass). */
static bool
vlan_passes(const GwVdpaSimDev *d, const uint8_t *eth, size_t len)
{
    unsigned vid;

    if (!has(d, VIRTIO_NET_F_CTRL_VLAN) || len < ETH_HLEN + 2 ||
        eth[12] != 0x81 || eth[13] != 0x00) {
        return true;
    }
    vid = ((unsigned)eth[14] << 8 | eth[15]) & 0xfff;
    return (d->net.vlans[vid >> 5] >> (vid & 31)) & 1;
}

bool
gw_sim_net_accepts(const GwVdpaSimDev *d, const uint8_t *eth, size_t len)
{
    static const uint8_t bcast[ETH_LEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    const struct virtio_net_config *c = (const void *)d->config;
    const SimNet *n = &d->net;
    bool rx = has(d, VIRTIO_NET_F_CTRL_RX);

    if (len < ETH_LEN) {
        return false;
    }
    if (rx && n->promisc) {
        return true;
    }
    if (!vlan_passes(d, eth, len)) {
        return false;
    }
    if (!rx) { /* the kernel sim: broadcast, multicast, own MAC */
        return (eth[0] & 1) || memcmp(eth, c->mac, ETH_LEN) == 0;
    }
    if (memcmp(eth, bcast, ETH_LEN) == 0) {
        return !n->nobcast;
    }
    if (eth[0] & 1) {
        return !n->nomulti && (n->allmulti || n->multi_overflow ||
                               in_table(n->multi, n->n_multi, eth));
    }
    return !n->nouni &&
           (n->alluni || n->uni_overflow || memcmp(eth, c->mac, ETH_LEN) == 0 ||
            in_table(n->uni, n->n_uni, eth));
}
