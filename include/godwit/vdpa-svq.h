/*
 * vdpa-svq: shadow virtqueues for one vDPA device, so that what the
 * device writes into guest RAM is seen by the VMM's dirty bitmap during
 * a migration's pre-copy (vhost-vdpa has no dirty log).
 *
 * While they run, the device works on split rings in VMM memory (mapped
 * into it at IOVAs inside its GET_IOVA_RANGE and outside every IOVA the
 * guest owns) and a relay thread of the device's own moves requests
 * between them and the guest's rings: each available guest chain is
 * checked and copied into the shadow descriptor table (its buffers keep
 * the guest's addresses: GPAs, or with iommu=on the IOVAs the guest's
 * virtio-iommu translates — src/vdpa/svq-addr.h), and each completion is
 * copied into the guest's used ring after every device-writable buffer
 * of its chain, whole, and the used-ring bytes written have been marked
 * with gw_mem_mark_dirty; then the guest's irqfd is signalled.  Shadow
 * ring index i is guest ring index i: nothing is renumbered, so the
 * device's VHOST_GET_VRING_BASE is the guest ring's state too.
 *
 * Threads: start and stop run on the main thread with the device lock
 * held (the VM running or paused); the relay thread never takes the
 * device lock.  A guest reset of the device (any thread, lock held)
 * drops the shadow rings with the relay.
 */
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <godwit/vdpa-device.h>

/*
 * Switches every running queue of `d` to a shadow ring: SUSPEND (unless
 * the device is suspended already, e.g. the VM is paused) ->
 * GET_VRING_BASE per queue (which must equal the used index the device
 * published in guest RAM) -> shadow rings mapped with VHOST_IOTLB_UPDATE
 * -> SET_VRING_ADDR / SET_VRING_BASE of the shadow rings while suspended
 * -> the relay's eventfds (gw_vdpa_device_set_queue_fds) -> relay thread
 * started -> RESUME (only if this call suspended the device).
 *
 * Refused (GW_ERROR_INVALID, nothing changed) if the device is not
 * running, cannot be suspended, negotiated INDIRECT_DESC, EVENT_IDX or
 * RING_PACKED (not relayed), has iommu=on but is behind no IOMMU, or
 * runs shadow rings already (GW_ERROR_BUSY); also (the device back as
 * it was) if a guest ring is not aligned guest RAM — with iommu=on, not
 * one contiguous range of it behind its IOVAs.
 * Any other failure switches back what was switched and leaves the
 * device as it found it (running in passthrough), with *errp set.
 */
/* Features shadow virtqueues do not relay (INDIRECT_DESC, EVENT_IDX,
 * RING_PACKED): a running device that negotiated one cannot migrate. */
#define GW_VDPA_SVQ_UNSUPPORTED ((1ull << 28) | (1ull << 29) | (1ull << 34))

bool gw_vdpa_device_svq_start(GwVdpaDevice *d, GError **errp);

/*
 * Back to passthrough: SUSPEND (unless suspended already) -> the relay
 * thread stopped -> every completion left in the shadow used rings
 * copied to the guest (and marked dirty) -> GET_VRING_BASE per queue ->
 * the guest's rings with SET_VRING_BASE = that index -> the guest's
 * eventfds (gw_vdpa_device_restore_queue_fds, which signals the guest's
 * irqfd once) and a kick, so that requests the relay forwarded but the
 * device never took are taken from the guest's ring -> shadow rings
 * unmapped (VHOST_IOTLB_INVALIDATE) and freed -> RESUME (only if this
 * call suspended the device; a paused VM's device stays suspended).
 *
 * No request is lost or run twice: the device finished all it took
 * before SUSPEND returned (checked: a device that did not keeps its
 * shadow rings and relay, and the call fails), and what it did not take
 * is still in the guest's ring at the same index.  False with *errp if
 * there are no shadow rings (GW_ERROR_INVALID) or a step failed.
 */
bool gw_vdpa_device_svq_stop(GwVdpaDevice *d, GError **errp);

/* Whether shadow virtqueues run on `d`.  Device lock held. */
bool gw_vdpa_device_svq_active(const GwVdpaDevice *d);
