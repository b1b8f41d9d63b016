/*
 * The simulator's opt-in network features (`features=`, `max_vq_pairs=`):
 * MQ pairs looping on their own pair, the CTRL_RX / CTRL_RX_EXTRA
 * receive filter and MAC tables, the CTRL_VLAN filter, the refuse-ctrl
 * hook; and that without the opt-in the device stays the kernel's.
 */
#include "vdpa-fixture.h"

#define F(n) (1ull << (n))

static const uint8_t own[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
static const uint8_t other[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x57};
static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t mcast[6] = {0x01, 0, 0x5e, 0, 0, 1};
static const uint8_t mcast2[6] = {0x01, 0, 0x5e, 0, 0, 2};

#define NO_VLAN 0xffff

/* Per rx queue, the buffer posted for a frame that was dropped: the next
 * frame that loops lands there (reset by net_open). */
static uint8_t *posted[9];

static void
net_open(Fx *f, const char *extra)
{
    memset(posted, 0, sizeof(posted));
    fx_open(f, "vdpasim_net", extra);
}

/*
 * A 64-byte frame to `dst` (tagged with `vlan` unless NO_VLAN) sent on
 * the tx queue of `pair`; the length the rx queue of `rx_pair` received
 * (0: none).  Every other rx queue must have received nothing.
 */
static uint32_t
send_on(Fx *f, unsigned pair, unsigned nvqs, const uint8_t dst[6],
        uint16_t vlan)
{
    uint64_t tx_iova, rx_iova;
    uint8_t *tx = gw_test_mem_alloc(f->mem, 64, 8, &tx_iova);
    uint8_t *rx = gw_test_mem_alloc(f->mem, 1536, 8, &rx_iova);
    GwTestBuf t = {tx_iova, 64, false}, r = {rx_iova, 1536, true};
    uint32_t len = 0, base;
    uint8_t *eth = tx + 12; /* after the 12-byte virtio_net_hdr_v1 */

    memcpy(eth, dst, 6);
    memcpy(eth + 6, other, 6);
    if (vlan != NO_VLAN) {
        eth[12] = 0x81;
        eth[13] = 0;
        eth[14] = vlan >> 8;
        eth[15] = vlan & 0xff;
    }
    if (posted[2 * pair]) {
        rx = posted[2 * pair];
    } else {
        g_assert_true(gw_test_vring_add(f->vq[2 * pair], &r, 1, NULL));
    }
    posted[2 * pair] = rx;
    g_assert_true(gw_test_vring_add(f->vq[2 * pair + 1], &t, 1, NULL));
    gw_test_vring_kick(f->vq[2 * pair + 1]);
    g_assert_true(
        gw_test_vring_wait_used(f->vq[2 * pair + 1], FX_TIMEOUT, NULL, NULL));
    /* TX and RX complete under one hold of the lock an ioctl takes. */
    g_assert_true(gw_vdpa_get_vring_base(f->b, 0, &base, NULL));
    if (gw_test_vring_get_used(f->vq[2 * pair], NULL, &len)) {
        g_assert_cmpmem(rx, 64, tx, 64);
        posted[2 * pair] = NULL;
    }
    for (unsigned q = 0; q + 1 < nvqs; q += 2) {
        if (q != 2 * pair) {
            g_assert_false(gw_test_vring_get_used(f->vq[q], NULL, NULL));
        }
    }
    return len;
}

/* One control command on queue `cvq`: its ack. */
static uint8_t
ctrl(Fx *f, unsigned cvq, uint8_t class, uint8_t cmd, const void *data,
     size_t len)
{
    uint64_t out_iova, ack_iova;
    uint8_t *out = gw_test_mem_alloc(f->mem, 2 + len, 8, &out_iova);
    uint8_t *ack = gw_test_mem_alloc(f->mem, 1, 1, &ack_iova);
    GwTestBuf b[] = {{out_iova, 2 + (uint32_t)len, false}, {ack_iova, 1, true}};
    uint32_t used;

    out[0] = class;
    out[1] = cmd;
    memcpy(out + 2, data, len);
    *ack = 0xee;
    g_assert_true(gw_test_vring_add(f->vq[cvq], b, 2, NULL));
    gw_test_vring_kick(f->vq[cvq]);
    g_assert_true(gw_test_vring_wait_used(f->vq[cvq], FX_TIMEOUT, NULL, &used));
    g_assert_cmpuint(used, ==, 1);
    return *ack;
}

static uint8_t
ctrl_u8(Fx *f, unsigned cvq, uint8_t class, uint8_t cmd, uint8_t v)
{
    return ctrl(f, cvq, class, cmd, &v, 1);
}

static uint8_t
ctrl_u16(Fx *f, unsigned cvq, uint8_t class, uint8_t cmd, uint16_t v)
{
    return ctrl(f, cvq, class, cmd, &v, 2);
}

static uint32_t
vring_group(Fx *f, unsigned idx)
{
    struct vhost_vring_state s = {.index = idx};

    g_assert_cmpint(gw_vdpa_backend_ioctl(f->b, VHOST_VDPA_GET_VRING_GROUP, &s),
                    ==, 0);
    return s.num;
}

/* A frame to our MAC posted on pair 1 (rx and tx), kicked. */
static void
pending_on_pair1(Fx *f)
{
    uint64_t tx_iova, rx_iova;
    uint8_t *tx = gw_test_mem_alloc(f->mem, 64, 8, &tx_iova);
    GwTestBuf t = {tx_iova, 64, false}, r = {0, 1536, true};

    gw_test_mem_alloc(f->mem, 1536, 8, &rx_iova);
    r.iova = rx_iova;
    memcpy(tx + 12, own, 6);
    g_assert_true(gw_test_vring_add(f->vq[2], &r, 1, NULL));
    g_assert_true(gw_test_vring_add(f->vq[3], &t, 1, NULL));
    gw_test_vring_kick(f->vq[3]);
}

/* mq: 2N+1 queues, max_virtqueue_pairs N, the control queue at 2N in
 * group 1, pair i loops on itself and only once VQ_PAIRS_SET enabled it. */
static void
test_mq(void)
{
    uint8_t cfg[10];
    uint32_t n;
    Fx f;

    net_open(&f, ",mac=52:54:00:12:34:56,features=mq,max_vq_pairs=3");
    g_assert_true(gw_vdpa_get_vqs_count(f.b, &n, NULL));
    g_assert_cmpuint(n, ==, 7);
    g_assert_true(gw_vdpa_get_config(f.b, 0, cfg, 10, NULL));
    g_assert_cmpuint(cfg[8] | cfg[9] << 8, ==, 3);
    fx_start(&f, 7);
    g_assert_cmpuint(vring_group(&f, 6), ==, 1);
    g_assert_cmpuint(vring_group(&f, 2), ==, 0);
    g_assert_cmpuint(send_on(&f, 0, 7, own, NO_VLAN), ==, 64);
    /* Pair 1 is not in use yet: its frame waits (tx not used). */
    pending_on_pair1(&f);
    g_assert_cmpuint(send_on(&f, 0, 7, own, NO_VLAN), ==, 64);
    g_assert_cmpuint(gw_test_vring_used_idx(f.vq[3]), ==, 0);
    g_assert_cmpuint(gw_test_vring_used_idx(f.vq[2]), ==, 0);
    g_assert_cmpuint(
        ctrl_u16(&f, 6, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 4),
        ==, VIRTIO_NET_ERR);
    g_assert_cmpuint(
        ctrl_u16(&f, 6, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 0),
        ==, VIRTIO_NET_ERR);
    g_assert_cmpuint(
        ctrl_u16(&f, 6, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 3),
        ==, VIRTIO_NET_OK);
    gw_test_vring_kick(f.vq[3]);
    g_assert_true(gw_test_vring_wait_used(f.vq[3], FX_TIMEOUT, NULL, NULL));
    g_assert_true(gw_test_vring_wait_used(f.vq[2], FX_TIMEOUT, NULL, &n));
    g_assert_cmpuint(n, ==, 64);
    g_assert_cmpuint(send_on(&f, 1, 7, own, NO_VLAN), ==, 64);
    g_assert_cmpuint(send_on(&f, 2, 7, own, NO_VLAN), ==, 64);
    g_assert_cmpuint(send_on(&f, 1, 7, other, NO_VLAN), ==, 0);
    fx_close(&f);
}

static uint8_t
table_set(Fx *f, unsigned cvq, const uint8_t (*uni)[6], uint32_t n_uni,
          const uint8_t (*multi)[6], uint32_t n_multi)
{
    uint8_t buf[8 + 12 * 6];
    size_t at = 0;

    memcpy(buf, &n_uni, 4);
    memcpy(buf + 4, uni, 6 * n_uni);
    at = 4 + 6 * n_uni;
    memcpy(buf + at, &n_multi, 4);
    memcpy(buf + at + 4, multi, 6 * n_multi);
    return ctrl(f, cvq, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, buf,
                at + 4 + 6 * n_multi);
}

/* ctrl-rx + ctrl-rx-extra: promiscuous after reset; then the modes and
 * tables decide, as QEMU's receive_filter. */
static void
test_rx_filter(void)
{
    static const uint8_t uni[1][6] = {{0x52, 0x54, 0, 0x12, 0x34, 0x57}};
    static const uint8_t multi[1][6] = {{0x01, 0, 0x5e, 0, 0, 1}};
    const uint8_t C = VIRTIO_NET_CTRL_RX, OK = VIRTIO_NET_OK;
    uint32_t huge = 1u << 30;
    Fx f;

    net_open(&f, ",mac=52:54:00:12:34:56,features=ctrl-rx+ctrl-rx-extra");
    fx_start(&f, 3);
    g_assert_cmpuint(send_on(&f, 0, 3, other, NO_VLAN), ==, 64);
    g_assert_cmpuint(ctrl_u8(&f, 2, C, VIRTIO_NET_CTRL_RX_PROMISC, 0), ==, OK);
    g_assert_cmpuint(send_on(&f, 0, 3, other, NO_VLAN), ==, 0);
    g_assert_cmpuint(send_on(&f, 0, 3, own, NO_VLAN), ==, 64);
    g_assert_cmpuint(send_on(&f, 0, 3, bcast, NO_VLAN), ==, 64);
    g_assert_cmpuint(send_on(&f, 0, 3, mcast, NO_VLAN), ==, 0);
    g_assert_cmpuint(table_set(&f, 2, uni, 1, multi, 1), ==, OK);
    g_assert_cmpuint(send_on(&f, 0, 3, other, NO_VLAN), ==, 64);
    g_assert_cmpuint(send_on(&f, 0, 3, mcast, NO_VLAN), ==, 64);
    g_assert_cmpuint(send_on(&f, 0, 3, mcast2, NO_VLAN), ==, 0);
    /* A table longer than its chain: refused, the tables unchanged. */
    g_assert_cmpuint(ctrl(&f, 2, VIRTIO_NET_CTRL_MAC,
                          VIRTIO_NET_CTRL_MAC_TABLE_SET, &huge, 4),
                     ==, VIRTIO_NET_ERR);
    g_assert_cmpuint(send_on(&f, 0, 3, other, NO_VLAN), ==, 64);
    g_assert_cmpuint(ctrl_u8(&f, 2, C, VIRTIO_NET_CTRL_RX_ALLMULTI, 1), ==, OK);
    g_assert_cmpuint(send_on(&f, 0, 3, mcast2, NO_VLAN), ==, 64);
    g_assert_cmpuint(ctrl_u8(&f, 2, C, VIRTIO_NET_CTRL_RX_NOMULTI, 1), ==, OK);
    g_assert_cmpuint(send_on(&f, 0, 3, mcast, NO_VLAN), ==, 0);
    g_assert_cmpuint(ctrl_u8(&f, 2, C, VIRTIO_NET_CTRL_RX_NOBCAST, 1), ==, OK);
    g_assert_cmpuint(send_on(&f, 0, 3, bcast, NO_VLAN), ==, 0);
    g_assert_cmpuint(ctrl_u8(&f, 2, C, VIRTIO_NET_CTRL_RX_NOUNI, 1), ==, OK);
    g_assert_cmpuint(send_on(&f, 0, 3, own, NO_VLAN), ==, 0);
    g_assert_cmpuint(ctrl_u8(&f, 2, C, 6, 1), ==, VIRTIO_NET_ERR);
    fx_close(&f);
}

/* ctrl-vlan: a tagged frame needs its VLAN in the filter. */
static void
test_vlan_filter(void)
{
    const uint8_t C = VIRTIO_NET_CTRL_VLAN;
    Fx f;

    net_open(&f, ",mac=52:54:00:12:34:56,features=ctrl-vlan");
    fx_start(&f, 3);
    g_assert_cmpuint(send_on(&f, 0, 3, own, NO_VLAN), ==, 64);
    g_assert_cmpuint(send_on(&f, 0, 3, own, 5), ==, 0);
    g_assert_cmpuint(ctrl_u16(&f, 2, C, VIRTIO_NET_CTRL_VLAN_ADD, 5), ==,
                     VIRTIO_NET_OK);
    g_assert_cmpuint(send_on(&f, 0, 3, own, 5), ==, 64);
    g_assert_cmpuint(send_on(&f, 0, 3, own, 6), ==, 0);
    g_assert_cmpuint(send_on(&f, 0, 3, own, 0x3005), ==, 64); /* PCP bits */
    g_assert_cmpuint(ctrl_u16(&f, 2, C, VIRTIO_NET_CTRL_VLAN_DEL, 5), ==,
                     VIRTIO_NET_OK);
    g_assert_cmpuint(send_on(&f, 0, 3, own, 5), ==, 0);
    g_assert_cmpuint(ctrl_u16(&f, 2, C, VIRTIO_NET_CTRL_VLAN_ADD, 4096), ==,
                     VIRTIO_NET_ERR);
    fx_close(&f);
}

/* Without features= the kernel sim: none offered, their commands ERR. */
static void
test_default_kernel_like(void)
{
    const uint64_t opt = F(VIRTIO_NET_F_MQ) | F(VIRTIO_NET_F_CTRL_RX) |
                         F(VIRTIO_NET_F_CTRL_RX_EXTRA) |
                         F(VIRTIO_NET_F_CTRL_VLAN);
    uint64_t features;
    uint32_t n;
    Fx f;

    net_open(&f, ",mac=52:54:00:12:34:56");
    g_assert_true(gw_vdpa_get_features(f.b, &features, NULL));
    g_assert_cmphex(features & opt, ==, 0);
    g_assert_true(gw_vdpa_get_vqs_count(f.b, &n, NULL));
    g_assert_cmpuint(n, ==, 3);
    fx_start(&f, 3);
    g_assert_cmpuint(
        ctrl_u16(&f, 2, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 1),
        ==, VIRTIO_NET_ERR);
    g_assert_cmpuint(
        ctrl_u16(&f, 2, VIRTIO_NET_CTRL_VLAN, VIRTIO_NET_CTRL_VLAN_ADD, 1), ==,
        VIRTIO_NET_ERR);
    g_assert_cmpuint(
        ctrl_u8(&f, 2, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, 1), ==,
        VIRTIO_NET_ERR);
    g_assert_cmpuint(send_on(&f, 0, 3, own, 5), ==, 64); /* no VLAN filter */
    g_assert_cmpuint(send_on(&f, 0, 3, other, NO_VLAN), ==, 0);
    fx_close(&f);
}

/* refuse-ctrl: every command ERR, nothing changed. */
static void
test_refuse_ctrl(void)
{
    static const uint8_t mac[6] = {2, 0, 0, 0, 0, 0x42};
    g_autoptr(GError) err = NULL;
    uint8_t cfg[6];
    Fx f;

    net_open(&f, ",mac=52:54:00:12:34:56,features=mq");
    fx_start(&f, 5);
    g_assert_true(gw_vdpa_sim_inject_failure(
        f.reg, "dev0", GW_VDPA_SIM_FAIL_REFUSE_CTRL, &err));
    g_assert_cmpuint(
        ctrl(&f, 4, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, mac, 6),
        ==, VIRTIO_NET_ERR);
    g_assert_cmpuint(
        ctrl_u16(&f, 4, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, 2),
        ==, VIRTIO_NET_ERR);
    g_assert_true(gw_vdpa_get_config(f.b, 0, cfg, 6, &err));
    g_assert_cmpmem(cfg, 6, own, 6);
    fx_close(&f);
}

/* Bad opt-ins are refused with the key named. */
static void
test_bad_options(void)
{
    static const struct {
        const char *spec, *msg;
    } cases[] = {
        {"name=b,mgmtdev=vdpasim_net,features=mq+rss", "'rss'"},
        {"name=b,mgmtdev=vdpasim_net,features=ctrl-rx-extra", "needs ctrl-rx"},
        {"name=b,mgmtdev=vdpasim_net,max_vq_pairs=2", "needs features=mq"},
    };
    g_autoptr(GwVdpaSimRegistry) reg = gw_vdpa_sim_registry_new(NULL, NULL);
    g_autoptr(GError) err = NULL;

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GwVdpaSimConfig) c =
            gw_vdpa_sim_config_parse(cases[i].spec, &err);
        g_assert_no_error(err);
        g_assert_false(gw_vdpa_sim_add(reg, c, NULL, &err));
        g_assert_error(err, GW_ERROR, GW_ERROR_INVALID);
        g_assert_nonnull(strstr(err->message, cases[i].msg));
        g_clear_error(&err);
    }
    g_assert_null(gw_vdpa_sim_config_parse(
        "name=b,mgmtdev=vdpasim_blk,features=mq", &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_null(gw_vdpa_sim_config_parse(
        "name=b,mgmtdev=vdpasim_net,features=mq,max_vq_pairs=5", &err));
    g_assert_nonnull(err);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    fx_runtime_dir();
    g_test_add_func("/vdpa/sim/net/mq/pairs-loop-on-their-own-pair-once-set",
                    test_mq);
    g_test_add_func("/vdpa/sim/net/ctrl-rx/modes-and-mac-tables-filter",
                    test_rx_filter);
    g_test_add_func("/vdpa/sim/net/ctrl-vlan/tagged-frame-needs-its-vlan",
                    test_vlan_filter);
    g_test_add_func("/vdpa/sim/net/default-offers-and-takes-none-of-them",
                    test_default_kernel_like);
    g_test_add_func("/vdpa/sim/net/refuse-ctrl-answers-err-changes-nothing",
                    test_refuse_ctrl);
    g_test_add_func("/vdpa/sim/net/bad-opt-in-refused", test_bad_options);
    return g_test_run();
}
