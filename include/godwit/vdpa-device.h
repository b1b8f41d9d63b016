/*
 * vdpa-device: the device model of one `--vdpa` device — a virtio-pci
 * function whose virtio device id, features, queue count and sizes and
 * config space come from the vhost-vdpa backend, and whose data path is
 * the backend's: guest RAM is mapped into the device once (IOTLB, IOVA =
 * guest physical address), and at DRIVER_OK the backend gets the rings,
 * a kick eventfd (KVM ioeventfd) and a call eventfd (KVM irqfd) per
 * queue.  The VMM handles no request.
 *
 * Threads: created on the main thread with the device lock NOT held,
 * freed on the main thread (see gw_vdpa_device_free for the lock).  The
 * virtio-pci callbacks (activate, reset, config access) run with the device
 * lock held, on whichever thread the guest's access arrived.  The backend's
 * config-change eventfd is watched on the main loop, which takes the device
 * lock before touching the transport.
 */
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <godwit/config.h>
#include <godwit/irq.h>
#include <godwit/memory.h>
#include <godwit/mig-stream.h>
#include <godwit/pci.h>
#include <godwit/vdpa.h>

typedef struct GwVdpaDevice GwVdpaDevice;
typedef struct GwVirtioIommu GwVirtioIommu;

/*
 * Builds the device for `cfg` (copied) on `backend` (a reference is
 * taken): claims the device (SET_OWNER), reads what it offers, checks
 * num_queues against its virtqueues (0: all of them, as QEMU's devices
 * take), maps guest RAM.  NULL with one line
 * in *errp naming the device and the problem; nothing is left mapped.
 */
GwVdpaDevice *gw_vdpa_device_new(const GwVdpaConfig *cfg,
                                 GwVdpaBackend *backend, GwGuestMemory *mem,
                                 const GwIrqChip *irq, GMutex *dev_lock,
                                 GError **errp);

/*
 * Resets the backend and releases it (maps go with the last reference).
 * While vCPUs may run (hot-unplug), call with the device lock held: the
 * transport's MSI routes and eventfd bindings leave the shared irqchip.
 */
void gw_vdpa_device_free(GwVdpaDevice *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwVdpaDevice, gw_vdpa_device_free)

/*
 * iommu=on: gw_vdpa_device_new maps nothing and offers the guest
 * VIRTIO_F_ACCESS_PLATFORM as a feature its driver must accept
 * (FEATURES_OK fails otherwise, as QEMU's iommu_platform=on).  Once the
 * function is in its slot, gw_vdpa_device_attach_iommu makes it endpoint
 * (pci_segment << 16) | BDF of `iommu`, whose view (identity while boot
 * bypass applies) then becomes its IOTLB; freeing the device takes it
 * off the IOMMU again.  Main thread, device lock held.  False with
 * *errp if the IOMMU refused it: the device must not be used.
 * gw_vdpa_device_endpoint: its endpoint id, UINT32_MAX if none.
 */
bool gw_vdpa_device_attach_iommu(GwVdpaDevice *d, GwVirtioIommu *iommu,
                                 GError **errp);
uint32_t gw_vdpa_device_endpoint(const GwVdpaDevice *d);

/* A system reset: the function and its backend back to power-on.
 * With the device lock held. */
void gw_vdpa_device_reset(GwVdpaDevice *d);

GwPciDevice *gw_vdpa_device_pci(GwVdpaDevice *d);
const GwVdpaConfig *gw_vdpa_device_config(const GwVdpaDevice *d);
uint8_t gw_vdpa_device_status(GwVdpaDevice *d);

/*
 * Writes a network device's MAC address into its config space (as QEMU
 * does with virtio-net-pci's mac= on a vhost-vdpa netdev) and checks the
 * device took it.  Before the guest sees the device.
 */
bool gw_vdpa_device_set_mac(GwVdpaDevice *d, const uint8_t mac[6],
                            GError **errp);

/* The virtio device type the backend reported (VIRTIO_ID_*). */
uint32_t gw_vdpa_device_type(const GwVdpaDevice *d);

/* Every feature the backend offers (before the machine hides any). */
uint64_t gw_vdpa_device_features(const GwVdpaDevice *d);

/*
 * QEMU's VirtioStatus for the device (x-query-virtio-status): the
 * transport's fields, vhost-started, and backend-features (everything
 * the vDPA device offers, before godwit hides what it cannot expose).
 * With the device lock held.  Caller owns.
 */
json_object *gw_vdpa_device_query(GwVdpaDevice *d);

/*
 * x-godwit-query-vdpa-vrings, for debugging and tests: an array of
 * {"index", "size", "enabled", "shadowed"} per queue the guest sees,
 * with "vring-base" and "vring-base-at" when known: the index
 * VHOST_GET_VRING_BASE gave at the last save of the suspended device
 * ("suspend", the source of a migration), or the one SET_VRING_BASE
 * took at the last restore ("restore", the destination).  With the
 * device lock held.  Caller owns.
 */
json_object *gw_vdpa_device_query_vrings(GwVdpaDevice *d);

/*
 * Quiesce: the VM's run state reaches the device (QEMU's vm state change
 * handlers).  Main thread, device lock held, vCPUs paused.
 *
 * gw_vdpa_device_can_suspend: whether the backend acked
 * VHOST_BACKEND_F_SUSPEND and _RESUME, without which it cannot be
 * stopped and started again without losing its rings' state (a device
 * that cannot is a migration blocker).
 *
 * gw_vdpa_device_suspend: from now on the device must not process
 * requests.  A started device gets VHOST_VDPA_SUSPEND, which returns
 * once the device finished what it took from its rings (the kernel's
 * semantics; the simulator's too): nothing is in flight after it, and
 * kicks are remembered.  A device the guest starts while suspended so
 * is suspended right after DRIVER_OK.  False with *errp if the device
 * cannot be suspended or SUSPEND failed: it keeps running.
 *
 * gw_vdpa_device_resume: VHOST_VDPA_RESUME if suspended (the remembered
 * kicks are processed).  False with *errp if RESUME failed: the device
 * stays suspended.
 *
 * gw_vdpa_device_set_vm_running: either of them, a failure logged (as
 * a warning: the VM's stop or cont goes on).  gw_vdpa_device_is_suspended:
 * whether SUSPEND succeeded and no RESUME or reset came since.
 */
/*
 * gw_vdpa_device_remap_memory: guest RAM's IOTLB entries invalidated and
 * made again over the same addresses, read-only or read-write: after
 * other pages took those addresses (a cpr-transfer handover), so a
 * device that pins what it maps (kernel vhost-vdpa) pins the new ones.
 * Main thread, device lock held.  False with *errp if an update failed:
 * the device then maps part of RAM or none, and must not run.
 */
bool gw_vdpa_device_remap_memory(GwVdpaDevice *d, bool writable, GError **errp);

bool gw_vdpa_device_can_suspend(const GwVdpaDevice *d);
bool gw_vdpa_device_suspend(GwVdpaDevice *d, GError **errp);
bool gw_vdpa_device_resume(GwVdpaDevice *d, GError **errp);
void gw_vdpa_device_set_vm_running(GwVdpaDevice *d, bool running);
bool gw_vdpa_device_is_suspended(const GwVdpaDevice *d);

/*
 * Migration.  All run on the main thread with the device lock held, the
 * VM stopped.
 *
 * gw_vdpa_device_is_running: whether the guest's driver has set
 * DRIVER_OK and not reset the device since: the backend was started on
 * its rings then (gw_virtio_pci_started; or it failed to start, or a
 * driver that skipped FEATURES_OK never got it started).  Such a device
 * cannot migrate live yet: what it writes into guest RAM during
 * pre-copy is not dirty-tracked until shadow virtqueues relay it, so
 * the source blocks the migration on it (gw_vdpa_device_migration_blocker).
 *
 * gw_vdpa_device_save appends the device's state to `out`: the
 * virtio-pci encoding (gw_virtio_pci_save).  Before DRIVER_OK the
 * backend holds nothing the guest set: features, queues and vectors are
 * all the transport's until activation.  A running device must be
 * suspended (gw_vdpa_device_suspend): each enabled queue's
 * VHOST_GET_VRING_BASE goes into the encoding as its last_avail and
 * last_used (which must equal the used index the device published in
 * guest RAM: nothing in flight), with the device's config space.  A
 * running device that is not suspended fails the save.  On error `out`
 * may hold a partial encoding: discard it.
 *
 * gw_vdpa_device_load loads that encoding into a device created from
 * the same configuration and plugged into the same slot
 * (gw_virtio_pci_load; a refused encoding leaves the device unchanged).
 * A running one is restored with no guest write: features, the config
 * bytes the source's driver changed, each enabled queue's size,
 * addresses, VHOST_SET_VRING_BASE(last_avail) (after checking that the
 * used index in the loaded guest RAM is the one the source's device
 * stopped at), eventfds and enable, DRIVER_OK — and then the device is
 * suspended, as the source's was, until the VM runs
 * (gw_vdpa_device_resume, which kicks every enabled queue once: kicks
 * the source's device remembered do not travel).  A failed restore fails
 * the load; the destination must not run.  `in` is left after the
 * encoding.
 *
 * gw_vdpa_device_get_vring_base: VHOST_GET_VRING_BASE of queue `idx`,
 * for tests and debugging (stable only while suspended).
 */
bool gw_vdpa_device_is_running(const GwVdpaDevice *d);

/*
 * Why the device cannot migrate now (caller frees), or NULL: it cannot
 * be suspended (gw_vdpa_device_can_suspend); it is a disk whose storage
 * the destination cannot share ("vDPA disk X has no shared storage:
 * create it with backing=FILE", the simulator's memory disks); or it is
 * running (gw_vdpa_device_is_running).
 */
char *gw_vdpa_device_migration_blocker(const GwVdpaDevice *d);
bool gw_vdpa_device_save(GwVdpaDevice *d, GwMigBuf *out, GError **errp);
bool gw_vdpa_device_load(GwVdpaDevice *d, GwMigCursor *in, GError **errp);
bool gw_vdpa_device_get_vring_base(GwVdpaDevice *d, unsigned idx,
                                   uint32_t *base, GError **errp);

/*
 * The relay seam (for shadow virtqueues).  Main thread, device lock
 * held, the device suspended (GW_ERROR_BUSY otherwise) and queue `idx`
 * running (GW_ERROR_INVALID otherwise).
 *
 * gw_vdpa_device_set_queue_fds gives the backend `kick_fd` (what the
 * device waits on) and `call_fd` (what it signals) for queue `idx`
 * instead of the guest's ioeventfd and irqfd, which stay bound to the
 * guest's notify address and MSI-X vector: the caller relays between
 * them.  The fds stay the caller's (the backend holds its own
 * references).  Kicks the guest writes meanwhile wait in its ioeventfd.
 *
 * gw_vdpa_device_restore_queue_fds puts the guest's eventfds back and
 * signals the guest's call eventfd once, so that a completion the relay
 * did not forward still reaches the guest (QEMU once lost a guest's
 * interrupts here).  Kicks the guest wrote meanwhile are seen by the
 * device once it runs.
 *
 * A reset of the device forgets a relay (the next start binds the
 * guest's eventfds).
 */
bool gw_vdpa_device_set_queue_fds(GwVdpaDevice *d, unsigned idx, int kick_fd,
                                  int call_fd, GError **errp);
bool gw_vdpa_device_restore_queue_fds(GwVdpaDevice *d, unsigned idx,
                                      GError **errp);
