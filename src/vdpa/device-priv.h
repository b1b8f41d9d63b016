/*
 * device-priv: the vDPA device model's state, shared by device.c and
 * svq.c (its shadow virtqueues).  Nothing outside src/vdpa/ includes it.
 * Threads and locking as in include/godwit/vdpa-device.h.
 */
#pragma once

#include <godwit/vdpa-device.h>
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
};

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
