/*
 * A virtio-net driver for tests, over qtest, on the multi-queue
 * functions of qvirtio.h: rx 0, tx 1, and the control queue 2 when
 * CTRL_VQ is negotiated, as tests/guest/net.c drives it from inside a
 * guest; with MQ (gw_qvirtio_net_init_with), two pairs (rx 2i, tx 2i+1)
 * and the control queue at 2 x max_virtqueue_pairs.  Every RX buffer is posted
 * from the start and reposted as soon as it has been read; every wait is
 * bounded.
 *
 * The frames: Ethernet, ethertype 0x88B5 (local experimental), the
 * source is the device's MAC as last read from config, a frame number
 * after the header and a payload that depends on the number and a
 * per-driver seed, so no two frames are alike.  Sent with a zeroed
 * 12-byte virtio_net_hdr_v1.
 *
 * Failures a test checks return false with *errp saying which frame and
 * byte; driver misuse asserts.  Not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include "qvirtio.h"

#define GW_QNET_HDR_LEN 12
#define GW_QNET_BUF_LEN 2048
#define GW_QNET_ETH_LEN 6

typedef struct GwQNet GwQNet;

/*
 * Starts the virtio-net function in `slot`: negotiates VERSION_1,
 * ACCESS_PLATFORM, MAC, CTRL_VQ and CTRL_MAC_ADDR, as far as they are
 * offered (MAC must be), sets up rx, tx and the control queue if CTRL_VQ
 * was taken, DRIVER_OK, and posts the RX buffers.  NULL with *errp.
 */
GwQNet *gw_qvirtio_net_init(GwQt *qt, unsigned slot, GError **errp);
/* The same, also negotiating `extra` features as far as offered (MQ:
 * up to two pairs, max_virtqueue_pairs at most 3). */
GwQNet *gw_qvirtio_net_init_with(GwQt *qt, unsigned slot, uint64_t extra,
                                 GError **errp);

/*
 * Behind an IOMMU, in two steps: _start negotiates (`extra` as above)
 * and sets the queues up, the device told every address the driver
 * gives it — rings (gw_qvirtio_set_dma_offset), RX, TX and control
 * buffers — as its guest-physical one + `dma_off`, the IOVA the test
 * maps it at, while the driver reads and writes guest memory at the
 * guest-physical address; the test then maps gw_qvirtio_net_area() and
 * calls _driver_ok (DRIVER_OK, the RX buffers posted).  _init_with is
 * _start with dma_off 0 and _driver_ok.  NULL with *errp.
 */
GwQNet *gw_qvirtio_net_start(GwQt *qt, unsigned slot, uint64_t extra,
                             uint64_t dma_off, GError **errp);
void gw_qvirtio_net_driver_ok(GwQNet *n);
/* The guest-physical range (`*len` bytes from the address returned)
 * holding every ring and buffer the driver gives the device: the slot's
 * area of qvirtio.h, rings and data area. */
uint64_t gw_qvirtio_net_area(GwQNet *n, uint64_t *len);
/* The `dma_off` the driver was started with. */
uint64_t gw_qvirtio_net_dma_offset(GwQNet *n);
/* Pairs set up; the pair the frame functions use from now on (none may
 * be pending, gw_qvirtio_net_send); the VLAN tag (TCI, 0: none) of the
 * frames sent from now on. */
unsigned gw_qvirtio_net_pairs(GwQNet *n);
void gw_qvirtio_net_use_pair(GwQNet *n, unsigned pair);
void gw_qvirtio_net_set_vlan(GwQNet *n, uint16_t tci);

/*
 * One control command (`len` <= 224 bytes of data): false with *errp if
 * there is no control queue or it times out, else *ack.  _ok also
 * needs VIRTIO_NET_OK.
 */
bool gw_qvirtio_net_ctrl(GwQNet *n, uint8_t class, uint8_t cmd,
                         const void *data, size_t len, uint8_t *ack,
                         GError **errp);
bool gw_qvirtio_net_ctrl_ok(GwQNet *n, uint8_t class, uint8_t cmd,
                            const void *data, size_t len, GError **errp);
/* Frees the driver (the device is not reset: gw_qvirtio_reset()). */
void gw_qvirtio_net_free(GwQNet *n);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwQNet, gw_qvirtio_net_free)

/* The underlying driver, for features, config and reset. */
GwQVirtio *gw_qvirtio_net_dev(GwQNet *n);

/* The MAC in the device's config space (and the new frames' source). */
void gw_qvirtio_net_read_mac(GwQNet *n, uint8_t mac[GW_QNET_ETH_LEN]);

/*
 * VIRTIO_NET_CTRL_MAC_ADDR_SET over the control queue: false with *errp
 * if there is no control queue, it times out or the ack is not
 * VIRTIO_NET_OK.
 */
bool gw_qvirtio_net_set_mac(GwQNet *n, const uint8_t mac[GW_QNET_ETH_LEN],
                            GError **errp);

/*
 * Sends `frames` frames to `dst` of lengths from 60 to 1514 (the first
 * two are 60 and 1514) and expects each back, in order, on the receive
 * queue before the next is sent: used length 12 + frame, a header with
 * nothing set, every byte of the frame.
 */
bool gw_qvirtio_net_loopback(GwQNet *n, const uint8_t dst[GW_QNET_ETH_LEN],
                             unsigned frames, GError **errp);

/*
 * Sends one frame to `dst`, which the device must complete on the
 * transmit queue and not deliver on the receive queue within `wait_ms`.
 * (A later gw_qvirtio_net_loopback() proves it did not arrive late
 * either: its first frame must be the next one received.)
 */
bool gw_qvirtio_net_not_looped(GwQNet *n, const uint8_t dst[GW_QNET_ETH_LEN],
                               int wait_ms, GError **errp);

/* Drives the device through `qt` from now on (the destination of a
 * migration: the same function in the same slot, the same rings). */
void gw_qvirtio_net_set_qt(GwQNet *n, GwQt *qt);

/* Frames sent so far (each is one TX request). */
uint32_t gw_qvirtio_net_sent(GwQNet *n);

/*
 * Sends `frames` frames to `dst` (waiting only until the device took
 * each from the transmit queue) without reading the receive queue; at
 * most 16 wait there.  gw_qvirtio_net_receive_sent() then expects each
 * of them, in order, intact, as the next frames received (false with
 * *errp naming the frame otherwise).
 */
bool gw_qvirtio_net_send(GwQNet *n, const uint8_t dst[GW_QNET_ETH_LEN],
                         unsigned frames, GError **errp);
bool gw_qvirtio_net_receive_sent(GwQNet *n, GError **errp);
