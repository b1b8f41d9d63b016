/*
 * vdpasim_net: virtio-net over the simulator, as drivers/vdpa/vdpa_sim/
 * vdpa_sim_net.c: rx 0, tx 1, cvq 2 (group 1), two address spaces; TX
 * frames for broadcast, multicast or our own MAC loop back into the next
 * RX buffer, others are dropped; the control queue accepts only
 * VIRTIO_NET_CTRL_MAC_ADDR_SET.  Runs on the device's worker thread with
 * dev->lock held.
 *
 * With `features=` (net-ctrl.c) it offers more, as mlx5_vdpa: with mq,
 * 2 * max_vq_pairs data queues (rx 2i, tx 2i+1; the control queue
 * after them once MQ is negotiated), each pair looping its own TX into
 * its own RX for the pairs VQ_PAIRS_SET enabled; with ctrl-rx /
 * ctrl-vlan the receive filter that net-ctrl.c keeps.
 *
 * Differences from the kernel: a control request too short for its
 * header, or a loopback whose RX buffer takes no bytes, is completed with
 * length 0 instead of being left popped and never used; the ack is
 * computed per request (the kernel carries a stale OK over).
 */
#include <errno.h>
#include <string.h>
#include "sim-priv.h"

#define F(n) (1ull << (n))

static void
net_get_config(GwVdpaSimDev *d)
{
    struct virtio_net_config *c = (struct virtio_net_config *)d->config;

    c->status = VIRTIO_NET_S_LINK_UP;
}

/* Completes the popped chain and notifies; false on a DMA fault. */
static bool
net_complete(GwVdpaSimDev *d, SimVq *vq, uint32_t len)
{
    if (gw_sim_vring_complete(d, vq, len) < 0) {
        return false;
    }
    gw_sim_vring_notify(d, vq);
    return true;
}

static bool
receive_filter(GwVdpaSimDev *d, size_t len)
{
    size_t hdr = (d->features & F(VIRTIO_F_VERSION_1))
                     ? sizeof(struct virtio_net_hdr_v1)
                     : sizeof(struct virtio_net_hdr);

    return len >= hdr && gw_sim_net_accepts(d, d->net_buf + hdr, len - hdr);
}

/* One control request; false to stop (empty ring or fault). */
static bool
cvq_one(GwVdpaSimDev *d, SimVq *cvq)
{
    struct virtio_net_ctrl_hdr ctrl;
    uint8_t ack;
    ssize_t n;
    int r = gw_sim_vring_pop(d, cvq);

    if (r <= 0) {
        if (r < 0) {
            gw_sim_dev_fail(d, "net: bad or unmapped control queue");
        }
        return false;
    }
    n = gw_sim_chain_pull(d, cvq, &ctrl, sizeof(ctrl));
    if (n != sizeof(ctrl)) {
        if (n < 0 || gw_sim_vring_complete(d, cvq, 0) < 0) {
            gw_sim_dev_fail(d, "net: control queue DMA outside the IOTLB");
        }
        return false;
    }
    r = gw_sim_net_ctrl(d, cvq, ctrl.class, ctrl.cmd);
    ack = (uint8_t)r;
    n = r < 0 ? r : gw_sim_chain_push(d, cvq, &ack, sizeof(ack));
    if (n < 0 || gw_sim_vring_complete(d, cvq, n) < 0) {
        gw_sim_dev_fail(d, "net: control queue DMA outside the IOTLB");
        return false;
    }
    if (cvq->cb) {
        gw_sim_signal(cvq->call_fd);
    }
    return true;
}

static void
handle_cvq(GwVdpaSimDev *d)
{
    SimVq *cvq = &d->vqs[gw_sim_net_cvq_index(d)];

    if (!(d->features & F(VIRTIO_NET_F_CTRL_VQ)) || !cvq->ready) {
        return;
    }
    while (cvq_one(d, cvq)) {
    }
}

/* One TX frame: 1 done, 0 stop, -1 DMA fault. */
static int
tx_one(GwVdpaSimDev *d, SimVq *tx, SimVq *rx)
{
    ssize_t len, wrote;
    int r = gw_sim_vring_pop(d, tx);

    if (r <= 0) {
        return r;
    }
    len = gw_sim_chain_pull(d, tx, d->net_buf, SIM_NET_BUF);
    if (len < 0) {
        return -1;
    }
    if (!receive_filter(d, len)) {
        return net_complete(d, tx, 0) ? 1 : -1;
    }
    r = gw_sim_vring_pop(d, rx);
    if (r <= 0) {
        return r < 0 || !net_complete(d, tx, 0) ? -1 : 0;
    }
    wrote = gw_sim_chain_push(d, rx, d->net_buf, len);
    if (wrote < 0) {
        return -1;
    }
    if (!net_complete(d, tx, 0) || !net_complete(d, rx, wrote)) {
        return -1;
    }
    return 1;
}

/* One pair's TX into its RX: true if it stopped at the batch limit. */
static bool
pair_work(GwVdpaSimDev *d, unsigned pair)
{
    SimVq *rx = &d->vqs[2 * pair], *tx = &d->vqs[2 * pair + 1];
    int pkts = 0, r;

    if (!tx->ready || !rx->ready) {
        return false;
    }
    while ((r = tx_one(d, tx, rx)) > 0) {
        if (++pkts > SIM_BATCH_REQS) {
            return true;
        }
    }
    if (r < 0) {
        gw_sim_dev_fail(d, "net: DMA outside the IOTLB");
    }
    return false;
}

static bool
net_work(GwVdpaSimDev *d)
{
    unsigned pairs = (d->features & F(VIRTIO_NET_F_MQ)) ? d->net.pairs : 1;
    bool more = false;

    handle_cvq(d);
    for (unsigned p = 0; p < pairs; p++) {
        more |= pair_work(d, p);
    }
    return more;
}

const SimType gw_sim_net_type = {
    .mgmtdev = "vdpasim_net",
    .device_id = VIRTIO_ID_NET,
    .features = F(VIRTIO_F_ANY_LAYOUT) | F(VIRTIO_F_VERSION_1) |
                F(VIRTIO_F_ACCESS_PLATFORM) | F(VIRTIO_NET_F_MTU) |
                F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_STATUS) |
                F(VIRTIO_NET_F_CTRL_VQ) | F(VIRTIO_NET_F_CTRL_MAC_ADDR),
    .nvqs = 3,
    .ngroups = 2,
    .nas = 2,
    .config_size = sizeof(struct virtio_net_config),
    .get_config = net_get_config,
    .work = net_work,
};
