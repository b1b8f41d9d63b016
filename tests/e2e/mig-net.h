/*
 * Helpers of the vDPA NIC migration e2e tests (test-migration-vdpa-net.c,
 * test-migration-iommu-net.c): the simulator as hardware like mlx5_vdpa
 * (features=mq+ctrl-rx+ctrl-rx-extra+ctrl-vlan, two pairs, SET_CONFIG of
 * the MAC ignored) in slot NET_SLOT, the control-queue state a guest's
 * driver sets on it (qvirtio-net.h) and the frames that prove it in
 * force.  Every helper asserts (tests only).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <linux/virtio_net.h>
#include "qtest-vm.h"
#include "qvirtio-net.h"
#include "qvirtio.h"

#define NET_SLOT       1
#define NET_NODE       "dev0"
#define NET_ID         "vdpa0"
#define NET_CVQ        4   /* 2 x max_virtqueue_pairs */
#define NET_VLAN       7   /* set by net_set_up */
#define NET_OTHER_VLAN 9   /* never set */
#define NET_LATE_VLAN  11  /* added during pre-copy (net_during_precopy) */
#define NET_NO_LOOP_MS 300 /* a frame that must not come back, waited for */
#define NET_WANT                                                               \
    (1ull << VIRTIO_NET_F_MQ | 1ull << VIRTIO_NET_F_CTRL_RX |                  \
     1ull << VIRTIO_NET_F_CTRL_RX_EXTRA | 1ull << VIRTIO_NET_F_CTRL_VLAN)

/* The MAC the driver sets, the unicast table's one entry, and another. */
extern const uint8_t net_new_mac[GW_QNET_ETH_LEN];
extern const uint8_t net_table_mac[GW_QNET_ETH_LEN];
extern const uint8_t net_other_mac[GW_QNET_ETH_LEN];

/* `ok`, and no error. */
void must(bool ok, GError *err);

/* A VM with the mlx5-like NIC at boot, behind the virtio-iommu if
 * `iommu` (iommu=on); a destination (`incoming`) listens on
 * unix:DIR/mig.sock, its device refusing control commands if `refuse`. */
void net_start_vm(GwTestVm *vm, bool incoming, bool refuse, bool iommu);

/* On a started driver (NET_WANT negotiated, two pairs, checked), as a
 * guest's: MAC, two pairs, promiscuous off, a unicast table of one entry
 * (no multicast), VLAN NET_VLAN. */
void net_set_up(GwQNet *n);

/* What must loop and what must not, on both pairs: our MAC and the
 * table's loop, another MAC does not; a frame tagged NET_VLAN loops, one
 * tagged NET_OTHER_VLAN does not. */
void net_assert_filters(GwQNet *n);

/* During pre-copy: VLAN NET_LATE_VLAN added, frames loop on both pairs,
 * then five wait on pair 0's receive queue
 * (gw_qvirtio_net_receive_sent). */
void net_during_precopy(GwTestVm *src, GwQNet *n);

/* x-godwit-query-vdpa-vrings: queue `q` of NET_ID is relayed by the VMM. */
bool net_control_relayed(GwTestVm *vm, unsigned q);

/* One chain built by hand on the control queue, kicked and waited for
 * (it must be used): its used length.  `loop`: its second descriptor
 * leads back to the head (a chain of two). */
uint32_t net_hostile_chain(GwQNet *n, GwQt *qt, const GwQVirtioBuf *b,
                           unsigned nb, bool loop);
