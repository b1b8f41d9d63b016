/*
 * vdpasim_net: virtio-net over the simulator, as drivers/vdpa/vdpa_sim/
 * vdpa_sim_net.c: rx 0, tx 1, cvq 2 (group 1), two address spaces; TX
 * frames for broadcast, multicast or our own MAC loop back into the next
 * RX buffer, others are dropped; the control queue accepts only
 * VIRTIO_NET_CTRL_MAC_ADDR_SET.  Runs on the device's worker thread with
 * dev->lock held.
 *
 * Differences from the kernel: a control request too short for its
 * header, or a loopback whose RX buffer takes no bytes, is completed with
 * length 0 instead of being left popped and never used; the ack is
 * computed per request (the kernel carries a stale OK over).
 */
#include <errno.h>
#include <string.h>
#include "sim-priv.h"

#define F(n)    (1ull << (n))
#define ETH_LEN 6

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
    const uint8_t *dst = d->net_buf + hdr;
    const struct virtio_net_config *c = (void *)d->config;
    static const uint8_t bcast[ETH_LEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

    if (len < ETH_LEN + hdr) {
        return false;
    }
    return (dst[0] & 1) || memcmp(dst, bcast, ETH_LEN) == 0 ||
           memcmp(dst, c->mac, ETH_LEN) == 0;
}

/* One control request; false to stop (empty ring or fault). */
static bool
cvq_one(GwVdpaSimDev *d, SimVq *cvq)
{
    struct virtio_net_ctrl_hdr ctrl;
    uint8_t mac[ETH_LEN];
    uint8_t ack = VIRTIO_NET_ERR;
    struct virtio_net_config *c = (void *)d->config;
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
    if (ctrl.class == VIRTIO_NET_CTRL_MAC &&
        ctrl.cmd == VIRTIO_NET_CTRL_MAC_ADDR_SET) {
        n = gw_sim_chain_pull(d, cvq, mac, ETH_LEN);
        if (n == ETH_LEN) {
            memcpy(c->mac, mac, ETH_LEN);
            ack = VIRTIO_NET_OK;
        }
    }
    n = n < 0 ? n : gw_sim_chain_push(d, cvq, &ack, sizeof(ack));
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
    SimVq *cvq = &d->vqs[2];

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

static bool
net_work(GwVdpaSimDev *d)
{
    SimVq *rx = &d->vqs[0], *tx = &d->vqs[1];
    int pkts = 0, r;

    handle_cvq(d);
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
