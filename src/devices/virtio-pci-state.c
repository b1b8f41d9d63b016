/*
 * virtio-pci's migratable state: gw_virtio_pci_vmsd, its pre_save and
 * post_load.  See include/godwit/virtio-pci.h.
 */
#include <string.h>
#include <sys/eventfd.h>
#include <godwit/util.h>
#include <godwit/virtio-pci.h>
#include "virtio-pci-priv.h"

/*
 * While a queue's vector is masked its irqfd is unbound, so what the
 * device signals waits in the call eventfd (KVM delivers it when the
 * irqfd is bound again at unmask), not in the PBA: move it to the PBA,
 * where the guest can see it and the stream carries it.  Unmasking then
 * delivers it from there.
 */
static bool
drain_call_fd(GwVirtioPci *vp, unsigned i, GError **errp)
{
    GwVirtioQueue *q = &vp->q[i];
    eventfd_t n;

    if (!vp->activated || !q->enabled || q->bound_gsi >= 0 ||
        q->vector == GW_MSIX_NO_VECTOR) {
        return true;
    }
    if (eventfd_read(q->call_fd, &n) == 0) {
        gw_msix_notify(&vp->msix, q->vector);
    } else if (errno != EAGAIN) {
        return gw_error_errno(errp, errno,
                              "virtio-pci %02x.0 queue %u: reading its call "
                              "eventfd",
                              vp->pci.slot, i);
    }
    return true;
}

/* A started device's ring indices and config space, from the device. */
static bool
save_ring_state(GwVirtioPci *vp, GError **errp)
{
    vp->ring_state = 0;
    vp->config_len = 0;
    memset(vp->config, 0, sizeof(vp->config));
    vp->dev_state_len = 0;
    memset(vp->dev_state, 0, sizeof(vp->dev_state));
    if (!vp->activated || !vp->ops->ring_state ||
        (vp->status & GW_VIRTIO_STATUS_NEEDS_RESET)) {
        return true;
    }
    for (unsigned i = 0; i < vp->info.n_queues; i++) {
        GwVirtioQueue *q = &vp->q[i];
        GwVirtqueueSetup qs = gw_virtio_pci_queue_setup(q);
        if (q->enabled &&
            !vp->ops->ring_state(vp->opaque, i, &qs, &q->last_avail,
                                 &q->last_used, errp)) {
            return false;
        }
    }
    vp->config_len = MIN(vp->info.config_size, GW_VIRTIO_CONFIG_SAVE_MAX);
    if (vp->config_len) {
        vp->ops->config_read(vp->opaque, 0, vp->config, vp->config_len);
    }
    if (vp->ops->save_state) {
        unsigned len = 0;
        if (!vp->ops->save_state(vp->opaque, vp->dev_state,
                                 sizeof(vp->dev_state), &len, errp)) {
            return false;
        }
        vp->dev_state_len = len;
    }
    vp->ring_state = 1;
    return true;
}

static bool
virtio_pci_pre_save(void *obj, GError **errp)
{
    GwVirtioPci *vp = obj;

    for (unsigned i = 0; i < vp->info.n_queues; i++) {
        if (!drain_call_fd(vp, i, errp)) {
            return false;
        }
    }
    return save_ring_state(vp, errp);
}

static bool
check_queues(GwVirtioPci *vp, GError **errp)
{
    for (unsigned i = 0; i < vp->info.n_queues; i++) {
        uint16_t size = vp->q[i].size;
        if (!size || size > vp->info.queue_max || (size & (size - 1))) {
            g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT,
                        "virtio-pci %02x.0: queue %u has %u entries, not a "
                        "power of two up to %u",
                        vp->pci.slot, i, size, vp->info.queue_max);
            return false;
        }
    }
    return true;
}

/* The backend started where the source's stopped, by the device's
 * restore op: the transport cannot do it for a device that has none. */
static bool
restore_running(GwVirtioPci *vp, GError **errp)
{
    GwVirtqueueSetup qs[GW_VIRTIO_MAX_QUEUES];
    GwVirtioActivation a = {vp->driver_features, vp->info.n_queues, qs};

    for (unsigned i = 0; i < vp->info.n_queues; i++) {
        qs[i] = gw_virtio_pci_queue_setup(&vp->q[i]);
        qs[i].last_avail = vp->q[i].last_avail;
        qs[i].last_used = vp->q[i].last_used;
    }
    if (vp->config_len > GW_VIRTIO_CONFIG_SAVE_MAX) {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT,
                    "virtio-pci %02x.0: %u bytes of config space", vp->pci.slot,
                    vp->config_len);
        return false;
    }
    if (vp->dev_state_len > GW_VIRTIO_DEV_STATE_MAX) {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT,
                    "virtio-pci %02x.0: %u bytes of device state", vp->pci.slot,
                    vp->dev_state_len);
        return false;
    }
    vp->activated = true;
    gw_virtio_pci_sync_queues(vp);
    if (vp->ops->load_state && !vp->ops->load_state(vp->opaque, vp->dev_state,
                                                    vp->dev_state_len, errp)) {
        return false;
    }
    return vp->ops->restore(vp->opaque, &a, vp->config, vp->config_len, errp);
}

/*
 * A running device is started where the source's stopped by its
 * restore op (for vDPA: the ring indices), if it has one and the stream
 * carries the ring state.  Otherwise the backend has seen nothing yet
 * (it starts at DRIVER_OK), and only the eventfd bindings follow from
 * the loaded state.
 */
static bool
virtio_pci_post_load(void *obj, unsigned version, GError **errp)
{
    GwVirtioPci *vp = obj;
    unsigned type = gw_pci_get16(&vp->pci, 0x02) - 0x1040u;

    if (type != vp->info.device_id) {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT,
                    "virtio-pci %02x.0: the stream holds virtio device type "
                    "%u, this is type %u",
                    vp->pci.slot, type, vp->info.device_id);
        return false;
    }
    bool running = vp->status & GW_VIRTIO_STATUS_DRIVER_OK;

    if (running && (!vp->ops->restore || !vp->ring_state)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                    "virtio-pci %02x.0: restoring a running device is not "
                    "supported %s",
                    vp->pci.slot,
                    vp->ops->restore ? "without its ring state" : "yet");
        return false;
    }
    if (!check_queues(vp, errp)) {
        return false;
    }
    if (running) {
        return restore_running(vp, errp);
    }
    gw_virtio_pci_sync_queues(vp);
    return true;
}

static const GwVmsdField queue_fields[] = {
    GW_VMSD_FIELD(GwVirtioQueue, size, 1),
    GW_VMSD_FIELD(GwVirtioQueue, vector, 1),
    GW_VMSD_FIELD(GwVirtioQueue, enabled, 1),
    GW_VMSD_FIELD(GwVirtioQueue, desc, 1),
    GW_VMSD_FIELD(GwVirtioQueue, avail, 1),
    GW_VMSD_FIELD(GwVirtioQueue, used, 1),
    GW_VMSD_FIELD(GwVirtioQueue, last_avail, 2),
    GW_VMSD_FIELD(GwVirtioQueue, last_used, 2),
    GW_VMSD_END,
};

static const GwVmsd queue_vmsd = {
    .name = "virtio-queue",
    .version = 2,
    .fields = queue_fields,
    .size = sizeof(GwVirtioQueue),
};

static const GwVmsdField virtio_pci_fields[] = {
    GW_VMSD_STRUCT(GwVirtioPci, pci, 1, &gw_pci_device_vmsd),
    GW_VMSD_STRUCT(GwVirtioPci, msix, 1, &gw_msix_vmsd),
    GW_VMSD_FIELD(GwVirtioPci, dfselect, 1),
    GW_VMSD_FIELD(GwVirtioPci, gfselect, 1),
    GW_VMSD_FIELD(GwVirtioPci, driver_features, 1),
    GW_VMSD_FIELD(GwVirtioPci, config_vector, 1),
    GW_VMSD_FIELD(GwVirtioPci, queue_select, 1),
    GW_VMSD_FIELD(GwVirtioPci, status, 1),
    GW_VMSD_FIELD(GwVirtioPci, generation, 1),
    GW_VMSD_FIELD(GwVirtioPci, isr, 1),
    GW_VMSD_STRUCT_ARRAY(GwVirtioPci, q, 1, &queue_vmsd),
    GW_VMSD_FIELD(GwVirtioPci, ring_state, 2),
    GW_VMSD_FIELD(GwVirtioPci, config_len, 2),
    GW_VMSD_ARRAY(GwVirtioPci, config, 2),
    GW_VMSD_FIELD(GwVirtioPci, dev_state_len, 3),
    GW_VMSD_ARRAY(GwVirtioPci, dev_state, 3),
    GW_VMSD_END,
};

const GwVmsd gw_virtio_pci_vmsd = {
    .name = "virtio-pci",
    .version = 3,
    .fields = virtio_pci_fields,
    .pre_save = virtio_pci_pre_save,
    .post_load = virtio_pci_post_load,
    .size = sizeof(GwVirtioPci),
};

bool
gw_virtio_pci_save(GwVirtioPci *vp, GwMigBuf *out, GError **errp)
{
    return gw_vmsd_save(&gw_virtio_pci_vmsd, vp, out, errp);
}

bool
gw_virtio_pci_load(GwVirtioPci *vp, GwMigCursor *in, GError **errp)
{
    return gw_vmsd_load(&gw_virtio_pci_vmsd, vp, in, errp);
}
