/*
 * The test-side virtio-net driver over qtest.  See qvirtio-net.h.
 */
#include <string.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <godwit/util.h>
#include "qvirtio-net.h"

#define RXQ       0
#define TXQ       1
#define CVQ       2
#define RX_BUFS   16 /* qvirtio's queues have at most 16 entries */
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
#define DATA_NEEDED  0x9100

struct GwQNet {
    GwQt *qt;
    GwQVirtio *vd;
    uint64_t data;
    uint64_t rx_addr[RX_BUFS]; /* the buffer behind each RX head */
    uint8_t mac[GW_QNET_ETH_LEN];
    uint32_t seed, seq;
    /* Sent and not yet received (gw_qvirtio_net_send), in order. */
    struct {
        uint32_t k;
        size_t len;
        uint8_t dst[GW_QNET_ETH_LEN], src[GW_QNET_ETH_LEN];
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
    GwQVirtioBuf b = {addr, GW_QNET_BUF_LEN, true};
    uint16_t head;

    gw_qt_memset(n->qt, addr, 0, GW_QNET_BUF_LEN);
    head = gw_qvirtio_vq_add(n->vd, RXQ, &b, 1);
    g_assert_cmpuint(head, <, RX_BUFS);
    n->rx_addr[head] = addr;
}

static bool
net_start(GwQNet *n, unsigned slot, GError **errp)
{
    const uint64_t want =
        1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_ACCESS_PLATFORM |
        1ull << VIRTIO_NET_F_MAC | 1ull << VIRTIO_NET_F_CTRL_VQ |
        1ull << VIRTIO_NET_F_CTRL_MAC_ADDR;
    size_t len;

    n->vd = gw_qvirtio_start(n->qt, slot, want, errp);
    if (!n->vd) {
        return false;
    }
    if (!has(n, VIRTIO_NET_F_MAC)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "net: MAC not offered (0x%" G_GINT64_MODIFIER "x)",
                    gw_qvirtio_offered(n->vd));
        return false;
    }
    n->data = gw_qvirtio_data_area(n->vd, &len);
    g_assert_cmpuint(len, >=, DATA_NEEDED);
    return gw_qvirtio_setup_vq(n->vd, RXQ, errp) &&
           gw_qvirtio_setup_vq(n->vd, TXQ, errp) &&
           (!has(n, VIRTIO_NET_F_CTRL_VQ) ||
            gw_qvirtio_setup_vq(n->vd, CVQ, errp));
}

GwQNet *
gw_qvirtio_net_init(GwQt *qt, unsigned slot, GError **errp)
{
    g_autoptr(GwQNet) n = g_new0(GwQNet, 1);

    n->qt = qt;
    n->seed = g_test_rand_int();
    if (!net_start(n, slot, errp)) {
        return NULL;
    }
    gw_qvirtio_driver_ok(n->vd);
    gw_qvirtio_net_read_mac(n, n->mac);
    for (unsigned i = 0; i < gw_qvirtio_vq_size(n->vd, RXQ); i++) {
        rx_post(n, n->data + (uint64_t)i * GW_QNET_BUF_LEN);
    }
    gw_qvirtio_vq_kick(n->vd, RXQ);
    return g_steal_pointer(&n);
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
gw_qvirtio_net_set_mac(GwQNet *n, const uint8_t mac[GW_QNET_ETH_LEN],
                       GError **errp)
{
    struct virtio_net_ctrl_hdr hdr = {VIRTIO_NET_CTRL_MAC,
                                      VIRTIO_NET_CTRL_MAC_ADDR_SET};
    uint64_t at = n->data + CTRL_OFF;
    GwQVirtioBuf b[3] = {{at, sizeof(hdr), false},
                         {at + 0x10, GW_QNET_ETH_LEN, false},
                         {at + 0x20, 1, true}};
    uint32_t id, len;
    uint8_t ack;

    if (!has(n, VIRTIO_NET_F_CTRL_VQ)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID, "net: no control queue");
        return false;
    }
    gw_qt_memwrite(n->qt, at, &hdr, sizeof(hdr));
    gw_qt_memwrite(n->qt, at + 0x10, mac, GW_QNET_ETH_LEN);
    gw_qt_writeb(n->qt, at + 0x20, 0xff);
    gw_qvirtio_vq_add(n->vd, CVQ, b, 3);
    gw_qvirtio_vq_kick(n->vd, CVQ);
    if (!gw_qvirtio_vq_wait(n->vd, CVQ, WAIT_MS, &id, &len)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED, "net: set-mac timed out");
        return false;
    }
    ack = gw_qt_readb(n->qt, at + 0x20);
    if (len != 1 || ack != VIRTIO_NET_OK) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "net: set-mac ack=%u used length %u", ack, len);
        return false;
    }
    return true;
}

/* Frame k to `dst`, `len` bytes, into `f`. */
static void
make_frame(GwQNet *n, uint32_t k, const uint8_t *dst, uint8_t *f, size_t len)
{
    memcpy(f, dst, GW_QNET_ETH_LEN);
    memcpy(f + GW_QNET_ETH_LEN, n->mac, GW_QNET_ETH_LEN);
    f[12] = ETHERTYPE >> 8;
    f[13] = ETHERTYPE & 0xff;
    for (size_t i = 0; i < 4; i++) {
        f[SEQ_OFF + i] = (uint8_t)(k >> 8 * i);
    }
    for (size_t i = SEQ_OFF + 4; i < len; i++) {
        f[i] = (uint8_t)((((k << 16) | (uint32_t)i) * 0x9E3779B1u ^ n->seed) >>
                         24);
    }
}

/* Sends `f` behind a zeroed header; waits for the device to take it. */
static bool
send_frame(GwQNet *n, uint32_t k, const uint8_t *f, size_t len, GError **errp)
{
    static const uint8_t hdr[GW_QNET_HDR_LEN]; /* no offloads, GSO_NONE */
    GwQVirtioBuf b[2] = {{n->data + TX_HDR_OFF, GW_QNET_HDR_LEN, false},
                         {n->data + TX_FRAME_OFF, (uint32_t)len, false}};
    uint32_t id, used;
    uint16_t head;

    gw_qt_memwrite(n->qt, b[0].addr, hdr, sizeof(hdr));
    gw_qt_memwrite(n->qt, b[1].addr, f, len);
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
    gw_qt_memread(n->qt, n->rx_addr[id], buf, GW_QNET_BUF_LEN);
    rx_post(n, n->rx_addr[id]);
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

    memcpy(mac, n->mac, GW_QNET_ETH_LEN);
    for (unsigned p = 0; p < n->n_pending; p++) {
        uint32_t k = n->pending[p].k;
        size_t len = n->pending[p].len;

        memcpy(n->mac, n->pending[p].src, GW_QNET_ETH_LEN);
        make_frame(n, k, n->pending[p].dst, want, len);
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
