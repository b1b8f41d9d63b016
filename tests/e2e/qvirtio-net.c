/*
 * The test-side virtio-net driver over qtest.  See qvirtio-net.h.
 */
#include <string.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <godwit/util.h>
#include "qvirtio-net.h"

#define RXQ       (2 * n->pair)
#define TXQ       (2 * n->pair + 1)
#define CVQ       (n->cvq)
#define RX_BUFS   16 /* qvirtio's queues have at most 16 entries */
#define MAX_PAIRS 2
#define ETH_HLEN  14
#define ETHERTYPE 0x88B5
#define MIN_FRAME 60
#define MAX_FRAME 1514
#define SEQ_OFF   ETH_HLEN
#define WAIT_MS   10000

/* Where things are in the data area, after the RX buffers. */
#define TX_HDR_OFF   0x8000
#define TX_FRAME_OFF 0x8100
#define CTRL_OFF     0x9000
#define RX1_OFF      0xA000 /* pair 1's RX buffers */
#define DATA_NEEDED  0x12000

struct GwQNet {
    GwQt *qt;
    GwQVirtio *vd;
    uint64_t data;
    uint64_t dma; /* what the device is told: guest-physical + this */
    unsigned pairs, pair, cvq; /* pairs set up, the one in use */
    uint16_t tci;              /* new frames' VLAN tag, 0: untagged */
    uint64_t rx_addr_of[MAX_PAIRS][RX_BUFS]; /* behind each RX head */
    uint8_t mac[GW_QNET_ETH_LEN];
    uint32_t seed, seq;
    /* Sent and not yet received (gw_qvirtio_net_send), in order. */
    struct {
        uint32_t k;
        size_t len;
        uint8_t dst[GW_QNET_ETH_LEN], src[GW_QNET_ETH_LEN];
        uint16_t tci;
    } pending[RX_BUFS];
    unsigned n_pending;
};

static bool
has(GwQNet *n, unsigned bit)
{
    return gw_qvirtio_features(n->vd) >> bit & 1;
}

static void
rx_post(GwQNet *n, uint64_t addr)
{
    GwQVirtioBuf b = {addr + n->dma, GW_QNET_BUF_LEN, true};
    uint16_t head;

    gw_qt_memset(n->qt, addr, 0, GW_QNET_BUF_LEN);
    head = gw_qvirtio_vq_add(n->vd, RXQ, &b, 1);
    g_assert_cmpuint(head, <, RX_BUFS);
    n->rx_addr_of[n->pair][head] = addr;
}

/* Pairs and the control queue's index (2 x max_virtqueue_pairs). */
static bool
net_queues(GwQNet *n, GError **errp)
{
    uint16_t max = 1;

    n->pairs = 1;
    n->cvq = 2;
    if (!has(n, VIRTIO_NET_F_MQ)) {
        return true;
    }
    gw_qvirtio_read_config(
        n->vd, offsetof(struct virtio_net_config, max_virtqueue_pairs), &max,
        2);
    if (max < 1 || 2u * max >= GW_QVIRTIO_MAX_QUEUES) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "net: %u queue pairs: the test driver takes 1 to 3", max);
        return false;
    }
    n->pairs = MIN(max, MAX_PAIRS);
    n->cvq = 2u * max;
    return true;
}

static bool
net_start(GwQNet *n, unsigned slot, uint64_t extra, GError **errp)
{
    const uint64_t want =
        1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_ACCESS_PLATFORM |
        1ull << VIRTIO_NET_F_MAC | 1ull << VIRTIO_NET_F_CTRL_VQ |
        1ull << VIRTIO_NET_F_CTRL_MAC_ADDR | extra;
    size_t len;

    n->vd = gw_qvirtio_start(n->qt, slot, want, errp);
    if (!n->vd) {
        return false;
    }
    gw_qvirtio_set_dma_offset(n->vd, n->dma);
    if (!has(n, VIRTIO_NET_F_MAC)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "net: MAC not offered (0x%" G_GINT64_MODIFIER "x)",
                    gw_qvirtio_offered(n->vd));
        return false;
    }
    n->data = gw_qvirtio_data_area(n->vd, &len);
    g_assert_cmpuint(len, >=, DATA_NEEDED);
    if (!net_queues(n, errp)) {
        return false;
    }
    for (unsigned q = 0; q < 2 * n->pairs; q++) {
        if (!gw_qvirtio_setup_vq(n->vd, q, errp)) {
            return false;
        }
    }
    return !has(n, VIRTIO_NET_F_CTRL_VQ) ||
           gw_qvirtio_setup_vq(n->vd, CVQ, errp);
}

GwQNet *
gw_qvirtio_net_start(GwQt *qt, unsigned slot, uint64_t extra, uint64_t dma_off,
                     GError **errp)
{
    g_autoptr(GwQNet) n = g_new0(GwQNet, 1);

    n->qt = qt;
    n->dma = dma_off;
    n->seed = g_test_rand_int();
    if (!net_start(n, slot, extra, errp)) {
        return NULL;
    }
    return g_steal_pointer(&n);
}

uint64_t
gw_qvirtio_net_area(GwQNet *n, uint64_t *len)
{
    uint64_t desc, avail, used;
    size_t dlen;

    /* queue 0's rings open the slot's area, the data area closes it */
    gw_qvirtio_vq_rings(n->vd, 0, &desc, &avail, &used);
    *len = gw_qvirtio_data_area(n->vd, &dlen) + dlen - desc;
    return desc;
}

uint64_t
gw_qvirtio_net_dma_offset(GwQNet *n)
{
    return n->dma;
}

void
gw_qvirtio_net_driver_ok(GwQNet *n)
{
    gw_qvirtio_driver_ok(n->vd);
    gw_qvirtio_net_read_mac(n, n->mac);
    for (n->pair = 0; n->pair < n->pairs; n->pair++) {
        uint64_t at = n->data + (n->pair ? RX1_OFF : 0);
        for (unsigned i = 0; i < gw_qvirtio_vq_size(n->vd, RXQ); i++) {
            rx_post(n, at + (uint64_t)i * GW_QNET_BUF_LEN);
        }
        gw_qvirtio_vq_kick(n->vd, RXQ);
    }
    n->pair = 0;
}

GwQNet *
gw_qvirtio_net_init_with(GwQt *qt, unsigned slot, uint64_t extra, GError **errp)
{
    GwQNet *n = gw_qvirtio_net_start(qt, slot, extra, 0, errp);

    if (n) {
        gw_qvirtio_net_driver_ok(n);
    }
    return n;
}

GwQNet *
gw_qvirtio_net_init(GwQt *qt, unsigned slot, GError **errp)
{
    return gw_qvirtio_net_init_with(qt, slot, 0, errp);
}

unsigned
gw_qvirtio_net_pairs(GwQNet *n)
{
    return n->pairs;
}

void
gw_qvirtio_net_use_pair(GwQNet *n, unsigned pair)
{
    g_assert_cmpuint(pair, <, n->pairs);
    g_assert_cmpuint(n->n_pending, ==, 0);
    n->pair = pair;
}

void
gw_qvirtio_net_set_vlan(GwQNet *n, uint16_t tci)
{
    n->tci = tci;
}

void
gw_qvirtio_net_free(GwQNet *n)
{
    if (n) {
        gw_qvirtio_free(n->vd);
        g_free(n);
    }
}

GwQVirtio *
gw_qvirtio_net_dev(GwQNet *n)
{
    return n->vd;
}

void
gw_qvirtio_net_read_mac(GwQNet *n, uint8_t mac[GW_QNET_ETH_LEN])
{
    gw_qvirtio_read_config(n->vd, offsetof(struct virtio_net_config, mac), mac,
                           GW_QNET_ETH_LEN);
    memcpy(n->mac, mac, GW_QNET_ETH_LEN);
}

bool
gw_qvirtio_net_ctrl(GwQNet *n, uint8_t class, uint8_t cmd, const void *data,
                    size_t len, uint8_t *ack, GError **errp)
{
    struct virtio_net_ctrl_hdr hdr = {class, cmd};
    uint64_t at = n->data + CTRL_OFF;
    uint64_t dev = at + n->dma; /* what the device is told */
    GwQVirtioBuf b[3] = {{dev, sizeof(hdr), false},
                         {dev + 0x10, (uint32_t)len, false},
                         {dev + 0xf0, 1, true}};
    uint32_t id, used;

    g_assert_cmpuint(len, <=, 0xe0);
    if (!has(n, VIRTIO_NET_F_CTRL_VQ)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID, "net: no control queue");
        return false;
    }
    gw_qt_memwrite(n->qt, at, &hdr, sizeof(hdr));
    gw_qt_memwrite(n->qt, at + 0x10, data, len);
    gw_qt_writeb(n->qt, at + 0xf0, 0xff);
    if (len) {
        gw_qvirtio_vq_add(n->vd, CVQ, b, 3);
    } else {
        b[1] = b[2];
        gw_qvirtio_vq_add(n->vd, CVQ, b, 2);
    }
    gw_qvirtio_vq_kick(n->vd, CVQ);
    if (!gw_qvirtio_vq_wait(n->vd, CVQ, WAIT_MS, &id, &used)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "net: control command %u.%u timed out", class, cmd);
        return false;
    }
    *ack = gw_qt_readb(n->qt, at + 0xf0);
    if (used != 1) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "net: control command %u.%u: used length %u", class, cmd,
                    used);
        return false;
    }
    return true;
}

bool
gw_qvirtio_net_ctrl_ok(GwQNet *n, uint8_t class, uint8_t cmd, const void *data,
                       size_t len, GError **errp)
{
    uint8_t ack = VIRTIO_NET_ERR;

    if (!gw_qvirtio_net_ctrl(n, class, cmd, data, len, &ack, errp)) {
        return false;
    }
    if (ack != VIRTIO_NET_OK) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "net: control command %u.%u: ack %u", class, cmd, ack);
        return false;
    }
    return true;
}

bool
gw_qvirtio_net_set_mac(GwQNet *n, const uint8_t mac[GW_QNET_ETH_LEN],
                       GError **errp)
{
    return gw_qvirtio_net_ctrl_ok(n, VIRTIO_NET_CTRL_MAC,
                                  VIRTIO_NET_CTRL_MAC_ADDR_SET, mac,
                                  GW_QNET_ETH_LEN, errp);
}

/* Frame k to `dst`, `len` bytes, into `f` (802.1Q-tagged with n->tci). */
static void
make_frame(GwQNet *n, uint32_t k, const uint8_t *dst, uint8_t *f, size_t len)
{
    size_t seq = n->tci ? SEQ_OFF + 4 : SEQ_OFF, t = seq - 2;

    memcpy(f, dst, GW_QNET_ETH_LEN);
    memcpy(f + GW_QNET_ETH_LEN, n->mac, GW_QNET_ETH_LEN);
    if (n->tci) {
        f[12] = 0x81;
        f[13] = 0x00;
        f[14] = n->tci >> 8;
        f[15] = n->tci & 0xff;
    }
    f[t] = ETHERTYPE >> 8;
    f[t + 1] = ETHERTYPE & 0xff;
    for (size_t i = 0; i < 4; i++) {
        f[seq + i] = (uint8_t)(k >> 8 * i);
    }
    for (size_t i = seq + 4; i < len; i++) {
        f[i] = (uint8_t)((((k << 16) | (uint32_t)i) * 0x9E3779B1u ^ n->seed) >>
                         24);
    }
}

/* Sends `f` behind a zeroed header; waits for the device to take it. */
static bool
send_frame(GwQNet *n, uint32_t k, const uint8_t *f, size_t len, GError **errp)
{
    static const uint8_t hdr[GW_QNET_HDR_LEN]; /* no offloads, GSO_NONE */
    uint64_t at = n->data + TX_HDR_OFF, fat = n->data + TX_FRAME_OFF;
    GwQVirtioBuf b[2] = {{at + n->dma, GW_QNET_HDR_LEN, false},
                         {fat + n->dma, (uint32_t)len, false}};
    uint32_t id, used;
    uint16_t head;

    gw_qt_memwrite(n->qt, at, hdr, sizeof(hdr));
    gw_qt_memwrite(n->qt, fat, f, len);
    head = gw_qvirtio_vq_add(n->vd, TXQ, b, 2);
    gw_qvirtio_vq_kick(n->vd, TXQ);
    if (!gw_qvirtio_vq_wait(n->vd, TXQ, WAIT_MS, &id, &used)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "net: frame %u (%zu bytes) not taken from tx", k, len);
        return false;
    }
    g_assert_cmpuint(id, ==, head);
    return true;
}

/* The next received buffer, reposted; false if none within `wait_ms`. */
static bool
recv_frame(GwQNet *n, int wait_ms, uint8_t *buf, uint32_t *used)
{
    uint32_t id;

    if (!gw_qvirtio_vq_wait(n->vd, RXQ, wait_ms, &id, used)) {
        return false;
    }
    gw_qt_memread(n->qt, n->rx_addr_of[n->pair][id], buf, GW_QNET_BUF_LEN);
    rx_post(n, n->rx_addr_of[n->pair][id]);
    gw_qvirtio_vq_kick(n->vd, RXQ);
    return true;
}

/*
 * What came back for frame k: 12 + len bytes, a header with nothing set
 * (num_buffers aside: 1 per the spec, or the 0 a device echoing the
 * transmit header gives), then the frame byte for byte.
 */
static bool
check_frame(uint32_t k, const uint8_t *want, size_t len, const uint8_t *got,
            uint32_t used, GError **errp)
{
    static const uint8_t zero[GW_QNET_HDR_LEN - 2];

    if (used != GW_QNET_HDR_LEN + len) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "net: frame %u: used length %u, expected %zu", k, used,
                    GW_QNET_HDR_LEN + len);
        return false;
    }
    if (memcmp(got, zero, sizeof(zero)) != 0 || got[11] != 0 || got[10] > 1) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "net: frame %u: header flags 0x%x gso_type 0x%x "
                    "num_buffers %u",
                    k, got[0], got[1], got[10] | got[11] << 8);
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (got[GW_QNET_HDR_LEN + i] != want[i]) {
            g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                        "net: frame %u (%zu bytes): byte %zu is 0x%02x, "
                        "expected 0x%02x",
                        k, len, i, got[GW_QNET_HDR_LEN + i], want[i]);
            return false;
        }
    }
    return true;
}

static size_t
frame_len(unsigned i, uint32_t k)
{
    return i == 0   ? MIN_FRAME
           : i == 1 ? MAX_FRAME
                    : MIN_FRAME + (k * 373) % (MAX_FRAME - MIN_FRAME + 1);
}

bool
gw_qvirtio_net_loopback(GwQNet *n, const uint8_t dst[GW_QNET_ETH_LEN],
                        unsigned frames, GError **errp)
{
    uint8_t want[MAX_FRAME], got[GW_QNET_BUF_LEN];
    uint32_t used;

    for (unsigned i = 0; i < frames; i++) {
        uint32_t k = ++n->seq;
        size_t len = frame_len(i, k);

        make_frame(n, k, dst, want, len);
        if (!send_frame(n, k, want, len, errp)) {
            return false;
        }
        if (!recv_frame(n, WAIT_MS, got, &used)) {
            g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                        "net: frame %u (%zu bytes) did not come back", k, len);
            return false;
        }
        if (!check_frame(k, want, len, got, used, errp)) {
            return false;
        }
    }
    return true;
}

bool
gw_qvirtio_net_not_looped(GwQNet *n, const uint8_t dst[GW_QNET_ETH_LEN],
                          int wait_ms, GError **errp)
{
    uint8_t f[MAX_FRAME], got[GW_QNET_BUF_LEN];
    uint32_t k = ++n->seq, used;
    size_t len = frame_len(2, k);

    make_frame(n, k, dst, f, len);
    if (!send_frame(n, k, f, len, errp)) {
        return false;
    }
    if (recv_frame(n, wait_ms, got, &used)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "net: frame %u to %02x:%02x:%02x:%02x:%02x:%02x came "
                    "back (%u bytes)",
                    k, dst[0], dst[1], dst[2], dst[3], dst[4], dst[5], used);
        return false;
    }
    return true;
}

void
gw_qvirtio_net_set_qt(GwQNet *n, GwQt *qt)
{
    n->qt = qt;
    gw_qvirtio_set_qt(n->vd, qt);
}

uint32_t
gw_qvirtio_net_sent(GwQNet *n)
{
    return n->seq;
}

bool
gw_qvirtio_net_send(GwQNet *n, const uint8_t dst[GW_QNET_ETH_LEN],
                    unsigned frames, GError **errp)
{
    uint8_t f[MAX_FRAME];

    g_assert_cmpuint(n->n_pending + frames, <=, RX_BUFS);
    for (unsigned i = 0; i < frames; i++) {
        uint32_t k = ++n->seq;
        size_t len = frame_len(i, k);
        unsigned p = n->n_pending++;

        make_frame(n, k, dst, f, len);
        n->pending[p].k = k;
        n->pending[p].len = len;
        memcpy(n->pending[p].dst, dst, GW_QNET_ETH_LEN);
        memcpy(n->pending[p].src, n->mac, GW_QNET_ETH_LEN);
        n->pending[p].tci = n->tci;
        if (!send_frame(n, k, f, len, errp)) {
            return false;
        }
    }
    return true;
}

bool
gw_qvirtio_net_receive_sent(GwQNet *n, GError **errp)
{
    uint8_t want[MAX_FRAME], got[GW_QNET_BUF_LEN], mac[GW_QNET_ETH_LEN];
    uint32_t used;
    uint16_t tci = n->tci;

    memcpy(mac, n->mac, GW_QNET_ETH_LEN);
    for (unsigned p = 0; p < n->n_pending; p++) {
        uint32_t k = n->pending[p].k;
        size_t len = n->pending[p].len;

        memcpy(n->mac, n->pending[p].src, GW_QNET_ETH_LEN);
        n->tci = n->pending[p].tci;
        make_frame(n, k, n->pending[p].dst, want, len);
        n->tci = tci;
        memcpy(n->mac, mac, GW_QNET_ETH_LEN);
        if (!recv_frame(n, WAIT_MS, got, &used)) {
            g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                        "net: frame %u (%zu bytes) was not received", k, len);
            return false;
        }
        if (!check_frame(k, want, len, got, used, errp)) {
            return false;
        }
    }
    n->n_pending = 0;
    return true;
}
