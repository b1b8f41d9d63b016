/*
 * device-priv: the vDPA device model's state, shared by device.c and
 * svq.c (its shadow virtqueues).  Nothing outside src/vdpa/ includes it.
 * Threads and locking as in include/godwit/vdpa-device.h.
 */
#pragma once

#include <godwit/vdpa-device.h>
#include <godwit/virtio-iommu.h>
#include <godwit/virtio-pci.h>

typedef struct GwVdpaSvq GwVdpaSvq;

struct GwVdpaDevice {
    GwVdpaConfig *cfg;
    GwVdpaBackend *backend;
    GwGuestMemory *mem;
    GMutex *dev_lock;
    GwVirtioPci *vp;
    uint64_t backend_features;
    uint64_t device_features; /* what the device offers, all of it */
    uint32_t vqs; /* what the device has; cfg->num_queues are exposed */
    uint32_t device_id;
    int config_call_fd;
    guint config_watch;
    bool vm_stopped; /* the VM is paused: a started device must not run */
    bool suspended;  /* VHOST_VDPA_SUSPEND done since the last start/RESUME */
    bool kick_on_resume; /* restored: look at every ring when it runs */
    /* Queues whose backend eventfds are a relay's, not the transport's. */
    bool relayed[GW_VIRTIO_MAX_QUEUES];
    uint64_t acked_features; /* what the driver negotiated last */
    GwVdpaSvq *svq;          /* shadow virtqueues running, or NULL */
    /* Each queue's index as VHOST_GET_VRING_BASE gave it at the last
     * save (suspended, the source) or as SET_VRING_BASE took it at the
     * last restore (the destination): x-godwit-query-vdpa-vrings. */
    uint32_t vring_base[GW_VIRTIO_MAX_QUEUES];
    bool vring_base_known[GW_VIRTIO_MAX_QUEUES];
    const char *vring_base_at; /* "suspend", "restore" or NULL */
    /* iommu=on: the IOMMU it is an endpoint of (once attached), and its
     * endpoint id; its IOTLB is then the IOMMU's, never identity. */
    GwVirtioIommu *iommu;
    uint32_t endpoint;
};

/*
 * The IOMMU endpoint (iommu.c), device lock held.  detach: off the
 * IOMMU (no call into the backend).  forget: every guest IOVA
 * invalidated in the backend.  remap: after a reset that dropped the
 * device's IOTLB, forget, then the IOMMU's view pushed again
 * (gw_virtio_iommu_replay); false with *errp if that failed.
 */
void gw_vdpa_iommu_detach(GwVdpaDevice *d);
void gw_vdpa_iommu_forget(GwVdpaDevice *d);
bool gw_vdpa_iommu_remap(GwVdpaDevice *d, GError **errp);

/*
 * VHOST_VDPA_SUSPEND / _RESUME of the backend, tracked in d->suspended,
 * without touching the VM's run state (d->vm_stopped).  Device lock held.
 */
bool gw_vdpa_device_backend_suspend(GwVdpaDevice *d, GError **errp);
bool gw_vdpa_device_backend_resume(GwVdpaDevice *d, GError **errp);

/*
 * Drops the shadow virtqueues of a device that was just reset (or is
 * being freed): stops the relay, unmaps and frees the shadow rings,
 * restores nothing (a reset device has no rings).  No-op without them.
 * Device lock held, any thread.
 */
void gw_vdpa_svq_abort(GwVdpaDevice *d);

/*
 * Whether the relay stopped relaying a queue (a chain that breaks the
 * rules): the device is then as good as broken for the guest, which
 * gets NEEDS_RESET.  The relay signals the device's config call fd when
 * it happens.  Device lock held.
 */
bool gw_vdpa_svq_broken(const GwVdpaDevice *d);

/* Whether queue `idx` runs on a shadow ring now.  Device lock held. */
bool gw_vdpa_svq_shadows(const GwVdpaDevice *d, unsigned idx);

/*
 * VMM memory the device reaches (shadow rings, the control queue's
 * replay): gw_vdpa_area_alloc gives `len` bytes (rounded up to pages)
 * of a MAP_SHARED memfd, zeroed, and an IOVA range for them inside the
 * device's GET_IOVA_RANGE and outside every guest-RAM IOVA (the highest
 * such, below 2^47 if it can); nothing is mapped yet.
 * gw_vdpa_area_map: VHOST_IOTLB_UPDATE of [off, off + len) with `perm`.
 * gw_vdpa_area_unmap invalidates the range if anything was mapped;
 * gw_vdpa_area_release frees the memory (after unmap).  One area at a
 * time per device: two would be given the same IOVAs.  Device lock held.
 */
typedef struct {
    uint8_t *host;
    size_t len;
    uint64_t iova; /* of host[0] */
    bool mapped;
} GwVdpaArea;

bool gw_vdpa_area_alloc(GwVdpaDevice *d, GwVdpaArea *a, size_t len,
                        GError **errp);
bool gw_vdpa_area_map(GwVdpaDevice *d, GwVdpaArea *a, size_t off, size_t len,
                      uint8_t perm, GError **errp);
void gw_vdpa_area_unmap(GwVdpaDevice *d, GwVdpaArea *a);
void gw_vdpa_area_release(GwVdpaArea *a);

/*
 * Control-queue state of a network device on restore (net-cvq.c).
 *
 * gw_vdpa_net_cvq_blocker: why the device's control-queue state cannot
 * migrate (its driver negotiated MQ, CTRL_RX, CTRL_VLAN, GUEST_ANNOUNCE
 * or another feature whose state godwit does not carry), or NULL.
 *
 * gw_vdpa_net_cvq_replayed: whether restoring activation `a` replays
 * control-queue commands (a network device whose driver negotiated
 * CTRL_VQ and CTRL_MAC_ADDR, its control queue enabled); *idx is the
 * control queue's index.
 *
 * gw_vdpa_cvq_open sets queue `idx` up (size, addresses, base, eventfds,
 * enable) on a ring of the VMM's own, sized as the guest's `q`, at
 * q->last_avail - n_cmds: after n_cmds commands the device stands at the
 * guest's saved index.  Before DRIVER_OK.  gw_vdpa_cvq_set_mac sends
 * VIRTIO_NET_CTRL_MAC_ADDR_SET and waits (bounded) for VIRTIO_NET_OK;
 * after DRIVER_OK.  gw_vdpa_cvq_to_guest (the device suspended) checks
 * that the device stands at q->last_avail and puts the guest's ring and
 * eventfds in its place.  gw_vdpa_cvq_free unmaps and frees the VMM
 * ring.  Each false with *errp on failure: the restore fails.
 */
typedef struct GwVdpaCvq GwVdpaCvq;

char *gw_vdpa_net_cvq_blocker(const GwVdpaDevice *d);
bool gw_vdpa_net_cvq_replayed(const GwVdpaDevice *d,
                              const GwVirtioActivation *a, unsigned *idx);
GwVdpaCvq *gw_vdpa_cvq_open(GwVdpaDevice *d, unsigned idx,
                            const GwVirtqueueSetup *q, unsigned n_cmds,
                            GError **errp);
bool gw_vdpa_cvq_set_mac(GwVdpaCvq *c, const uint8_t mac[6], GError **errp);
bool gw_vdpa_cvq_to_guest(GwVdpaCvq *c, const GwVirtqueueSetup *q,
                          GError **errp);
void gw_vdpa_cvq_free(GwVdpaCvq *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwVdpaCvq, gw_vdpa_cvq_free)
