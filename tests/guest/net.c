/* net [dev=bb:dd.f] [frames=N] [every=N] [mac=xx:xx:xx:xx:xx:xx]
 * [timeout-ms=N] [inject-error=1]: drives a modern virtio-net (1af4:1041, or a
 * transitional 1af4:1000 with modern capabilities) through polled split
 * queues: rx 0, tx 1, and the control queue 2 when CTRL_VQ is offered (no
 * MQ, so one pair).  Reads the MAC from config; with mac= sets it with
 * VIRTIO_NET_CTRL_MAC_ADDR_SET and reads it back.  Then sends N frames
 * addressed to the device's own MAC, each of a different length and
 * content, and expects each back on the receive queue: godwit's vDPA
 * simulator loops frames for its own MAC into the next RX buffer, QEMU
 * does it with a netdev whose frames come back to it (a UDP socket sending
 * to its own address).  Every received header and byte is checked.
 * frames=0 loops forever, printing a line every `every` frames: for
 * migration tests, a frame lost, duplicated or damaged fails. */
#include "virtio.h"

#define NET_MODERN       0x1041
#define NET_TRANSITIONAL 0x1000

#define VIRTIO_NET_F_MAC           5
#define VIRTIO_NET_F_STATUS        16
#define VIRTIO_NET_F_CTRL_VQ       17
#define VIRTIO_NET_F_CTRL_MAC_ADDR 23
#define VIRTIO_NET_S_LINK_UP       1
#define VIRTIO_NET_CTRL_MAC        1
#define VIRTIO_NET_CTRL_MAC_SET    1 /* VIRTIO_NET_CTRL_MAC_ADDR_SET */
#define VIRTIO_NET_OK              0
#define CFG_MAC                    0
#define CFG_STATUS                 6

#define RXQ        0
#define TXQ        1
#define CVQ        2
#define HDR_LEN    12 /* struct virtio_net_hdr_v1: VERSION_1 */
#define ETH_ALEN   6
#define ETH_HLEN   14
#define ETHERTYPE  0x88B5 /* IEEE 802 local experimental */
#define MIN_FRAME  60
#define MAX_FRAME  1514
#define BUF_LEN    2048 /* >= HDR_LEN + MAX_FRAME: no MRG_RXBUF, no GSO */
#define MAX_FRAMES 100000
#define SEQ_OFF    ETH_HLEN /* the frame number, little-endian */
#define BAD_BYTE   (ETH_HLEN + 7)

struct net_opts {
    u32 frames;     /* 0 = forever */
    u32 every;      /* frames=0: a line every so many frames */
    u32 timeout_ms; /* every wait */
    bool inject;    /* flip a received byte before it is checked */
    bool set_mac;
    u8 mac[ETH_ALEN];
};

struct net {
    struct virtio_dev d;
    const struct net_opts *o;
    u8 mac[ETH_ALEN]; /* the device's, as its config says */
    u32 seed;
};

static struct virtq net_rxq __attribute__((aligned(4096)));
static struct virtq net_txq __attribute__((aligned(4096)));
static struct virtq net_cvq __attribute__((aligned(4096)));
static u8 rx_buf[VQ_SIZE][BUF_LEN] __attribute__((aligned(4096)));
static u8 tx_frame[BUF_LEN] __attribute__((aligned(64)));
static u8 tx_hdr[HDR_LEN] __attribute__((aligned(16)));
static struct {
    u8 class, cmd;
} ctrl_hdr __attribute__((aligned(16)));
static u8 ctrl_mac[ETH_ALEN] __attribute__((aligned(16)));
static volatile u8 ctrl_ack;
static u32 net_runs;

static u64
net_want(u64 offered)
{
    u64 want = 1ull << VIRTIO_NET_F_MAC | 1ull << VIRTIO_NET_F_STATUS |
               1ull << VIRTIO_NET_F_CTRL_VQ;
    /* CTRL_MAC_ADDR depends on CTRL_VQ (virtio 1.2, 5.1.3.1) */
    if (offered >> VIRTIO_NET_F_CTRL_VQ & 1) {
        want |= 1ull << VIRTIO_NET_F_CTRL_MAC_ADDR;
    }
    return want;
}

static bool
has(const struct net *n, u32 bit)
{
    return n->d.features >> bit & 1;
}

static void
print_mac(const char *prefix, const u8 *m)
{
    gprintf("%s%02x:%02x:%02x:%02x:%02x:%02x", prefix, m[0], m[1], m[2], m[3],
            m[4], m[5]);
}

/* Reads the MAC from config into n->mac and reports it. */
static void
report_mac(struct net *n)
{
    virtio_cfg_bytes(&n->d, CFG_MAC, n->mac, ETH_ALEN);
    gprintf("GUEST net %s", n->d.name);
    print_mac(" mac=", n->mac);
    gprintf("\n");
}

/* "xx:xx:xx:xx:xx:xx" (hex) to a unicast address; false if malformed. */
static bool
parse_mac(const char *s, u8 *mac)
{
    for (u32 i = 0; i < ETH_ALEN; i++) {
        u32 v = 0;
        for (u32 j = 0; j < 2; j++, s++) {
            char c = *s;
            u32 d = c >= '0' && c <= '9'   ? (u32)(c - '0')
                    : c >= 'a' && c <= 'f' ? (u32)(c - 'a' + 10)
                    : c >= 'A' && c <= 'F' ? (u32)(c - 'A' + 10)
                                           : 16;
            if (d > 15) {
                return false;
            }
            v = v * 16 + d;
        }
        mac[i] = (u8)v;
        if (*s != (i + 1 < ETH_ALEN ? ':' : '\0')) {
            return false;
        }
        s++;
    }
    return !(mac[0] & 1);
}

/* Frame k (1-based): its length, and byte i of it. */
static u32
frame_len(u32 k)
{
    return MIN_FRAME + (k * 373) % (MAX_FRAME - MIN_FRAME + 1);
}

static u8
frame_byte(const struct net *n, u32 k, u32 i)
{
    if (i < ETH_HLEN) {
        return i < 2 * ETH_ALEN ? n->mac[i % ETH_ALEN]
               : i == 12        ? ETHERTYPE >> 8
                                : ETHERTYPE & 0xff;
    }
    if (i < SEQ_OFF + 4) {
        return (u8)(k >> 8 * (i - SEQ_OFF));
    }
    return (u8)(((k << 16 | i) * 0x9E3779B1u ^ n->seed) >> 24);
}

static void
rx_post(struct net *n, u16 id)
{
    struct vbuf b = {rx_buf[id], BUF_LEN, true};

    memset(rx_buf[id], 0, BUF_LEN);
    virtq_post(&net_rxq, id, &b, 1);
}

static bool
set_mac(struct net *n)
{
    struct vbuf b[3] = {
        {&ctrl_hdr, sizeof(ctrl_hdr), false},
        {ctrl_mac, ETH_ALEN, false},
        {(void *)&ctrl_ack, 1, true},
    };
    const char *name = n->d.name;

    ctrl_hdr.class = VIRTIO_NET_CTRL_MAC;
    ctrl_hdr.cmd = VIRTIO_NET_CTRL_MAC_SET;
    memcpy(ctrl_mac, n->o->mac, ETH_ALEN);
    ctrl_ack = 0xFF;
    if (!virtio_xfer(&n->d, &net_cvq, b, 3, n->o->timeout_ms)) {
        gprintf("GUEST fail net %s set-mac timeout\n", name);
        return false;
    }
    if (ctrl_ack != VIRTIO_NET_OK) {
        gprintf("GUEST fail net %s set-mac ack=%u\n", name, ctrl_ack);
        return false;
    }
    report_mac(n);
    if (memcmp(n->mac, n->o->mac, ETH_ALEN)) {
        gprintf("GUEST fail net %s set-mac", name);
        print_mac(" config=", n->mac);
        print_mac(" expected=", n->o->mac);
        gprintf("\n");
        return false;
    }
    return true;
}

/* Sends frame k and waits for the device to consume it. */
static bool
send_frame(struct net *n, u32 k)
{
    u32 len = frame_len(k);
    struct vbuf b[2] = {{tx_hdr, HDR_LEN, false}, {tx_frame, len, false}};

    memset(tx_hdr, 0, HDR_LEN); /* no offloads: flags 0, GSO_NONE */
    for (u32 i = 0; i < len; i++) {
        tx_frame[i] = frame_byte(n, k, i);
    }
    if (!virtio_xfer(&n->d, &net_txq, b, 2, n->o->timeout_ms)) {
        gprintf("GUEST fail net %s frame=%u timeout op=tx\n", n->d.name, k);
        return false;
    }
    return true;
}

/* Checks received buffer `id` (used length `used`) against frame k. */
static bool
check_frame(struct net *n, u32 k, u32 id, u32 used)
{
    const volatile u8 *p = rx_buf[id];
    u32 len = frame_len(k);

    if (used != HDR_LEN + len) {
        gprintf("GUEST fail net %s frame=%u len=%u expected=%u\n", n->d.name,
                k, used, HDR_LEN + len);
        return false;
    }
    /* flags and gso_type: nothing negotiated lets the device set them */
    if (p[0] || p[1]) {
        gprintf("GUEST fail net %s frame=%u hdr flags=0x%x gso=0x%x\n",
                n->d.name, k, p[0], p[1]);
        return false;
    }
    for (u32 i = 0; i < len; i++) {
        u8 want = frame_byte(n, k, i);
        if (p[HDR_LEN + i] != want) {
            gprintf("GUEST fail net %s frame=%u byte=%u expected=0x%02x "
                    "got=0x%02x\n",
                    n->d.name, k, i, want, p[HDR_LEN + i]);
            return false;
        }
    }
    return true;
}

static bool
one_frame(struct net *n, u32 k)
{
    u32 id, used;

    if (!send_frame(n, k)) {
        return false;
    }
    if (!virtq_wait(&n->d, &net_rxq, &id, &used, n->o->timeout_ms)) {
        gprintf("GUEST fail net %s frame=%u timeout op=rx\n", n->d.name, k);
        return false;
    }
    if (id >= net_rxq.size) {
        gprintf("GUEST fail net %s frame=%u rx-id=%u\n", n->d.name, k, id);
        return false;
    }
    if (n->o->inject && k == (n->o->frames + 1) / 2 + !n->o->frames) {
        rx_buf[id][HDR_LEN + BAD_BYTE] ^= 0xFF;
    }
    if (!check_frame(n, k, id, used)) {
        return false;
    }
    rx_post(n, (u16)id);
    virtq_kick(&net_rxq);
    return true;
}

static bool
net_io(struct net *n)
{
    for (u16 i = 0; i < net_rxq.size; i++) {
        rx_post(n, i);
    }
    virtq_kick(&net_rxq);
    for (u32 k = 1; !n->o->frames || k <= n->o->frames; k++) {
        if (!one_frame(n, k)) {
            return false;
        }
        if (!n->o->frames && k % n->o->every == 0) {
            gprintf("GUEST net %s frames=%u pass\n", n->d.name, k);
        }
    }
    return true;
}

static bool
net_start(struct net *n)
{
    struct virtio_dev *d = &n->d;

    if (!virtio_negotiate(d, net_want, "net")) {
        return false;
    }
    if (!has(n, VIRTIO_NET_F_MAC)) {
        gprintf("GUEST fail net %s no-mac features=0x%llx\n", d->name,
                d->offered);
        return false;
    }
    return virtio_queue_setup(d, &net_rxq, RXQ, "net") &&
           virtio_queue_setup(d, &net_txq, TXQ, "net") &&
           (!has(n, VIRTIO_NET_F_CTRL_VQ) ||
            virtio_queue_setup(d, &net_cvq, CVQ, "net")) &&
           virtio_driver_ok(d, "net");
}

static const char *
link_state(struct net *n)
{
    u8 st[2];

    if (!has(n, VIRTIO_NET_F_STATUS)) {
        return "unknown";
    }
    virtio_cfg_bytes(&n->d, CFG_STATUS, st, 2);
    return st[0] & VIRTIO_NET_S_LINK_UP ? "up" : "down";
}

static bool
net_check(struct net *n, u32 bdf)
{
    struct virtio_dev *d = &n->d;

    if (!virtio_pci_probe(d, bdf, "net") || !net_start(n)) {
        return false;
    }
    gprintf("GUEST net %s features=0x%llx bars=%s link=%s\n", d->name,
            d->features, d->bars_assigned ? "guest" : "firmware",
            link_state(n));
    report_mac(n);
    if (n->o->set_mac && !has(n, VIRTIO_NET_F_CTRL_MAC_ADDR)) {
        gprintf("GUEST fail net %s set-mac unsupported features=0x%llx\n",
                d->name, d->offered);
        return false;
    }
    if (n->o->set_mac && !set_mac(n)) {
        return false;
    }
    return net_io(n);
}

static bool
net_opts_parse(const struct args *a, struct net_opts *o)
{
    const char *mac = arg_str(a, "mac");

    o->frames = arg_u32(a, "frames", 8);
    o->every = arg_u32(a, "every", 100);
    o->timeout_ms = arg_u32(a, "timeout-ms", 10000);
    o->inject = arg_u32(a, "inject-error", 0);
    o->set_mac = mac != NULL;
    if (o->frames > MAX_FRAMES || !o->every) {
        gprintf("GUEST fail net frames=%u every=%u out-of-range max=%u\n",
                o->frames, o->every, MAX_FRAMES);
        return false;
    }
    if (mac && !parse_mac(mac, o->mac)) {
        gprintf("GUEST fail net mac=%s malformed\n", mac);
        return false;
    }
    return true;
}

void
wl_net(const struct args *a)
{
    static const char *const allowed[] = {
        "dev",        "frames",       "every", "mac",
        "timeout-ms", "inject-error", NULL};
    struct net_opts o;
    struct net n;
    u32 bdf = 0;

    if (!args_check(a, allowed) || !net_opts_parse(a, &o) ||
        !virtio_pick(a, NET_MODERN, NET_TRANSITIONAL, &bdf) ||
        !virtio_check_id(bdf, NET_MODERN, NET_TRANSITIONAL, "net", "net")) {
        return;
    }
    memset(&n, 0, sizeof(n));
    n.o = &o;
    __asm__ volatile("rdtsc" : "=a"(n.seed) : : "edx");
    n.seed ^= ++net_runs << 24;
    bool ok = net_check(&n, bdf);
    if (n.d.common && !virtio_stop(&n.d)) {
        gprintf("GUEST fail net %s reset-timeout\n", n.d.name);
        ok = false;
    }
    if (ok) {
        gprintf("GUEST pass net frames=%u\n", o.frames);
    }
}
