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
