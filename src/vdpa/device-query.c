/*
 * What the vDPA device model reports: its accessors,
 * x-query-virtio-status and x-godwit-query-vdpa-vrings.  Threads as in
 * include/godwit/vdpa-device.h (device lock held).
 */
#include <godwit/vdpa-device.h>
#include <godwit/virtio-pci.h>
#include "device-priv.h"

GwPciDevice *
gw_vdpa_device_pci(GwVdpaDevice *d)
{
    return gw_virtio_pci_device(d->vp);
}

const GwVdpaConfig *
gw_vdpa_device_config(const GwVdpaDevice *d)
{
    return d->cfg;
}

uint8_t
gw_vdpa_device_status(GwVdpaDevice *d)
{
    uint8_t status = 0;
    gw_vdpa_get_status(d->backend, &status, NULL);
    return status;
}

uint32_t
gw_vdpa_device_type(const GwVdpaDevice *d)
{
    return d->device_id;
}

uint64_t
gw_vdpa_device_features(const GwVdpaDevice *d)
{
    return d->device_features;
}

json_object *
gw_vdpa_device_query(GwVdpaDevice *d)
{
    json_object *o = gw_virtio_pci_query(d->vp);
    json_object *started;

    /* Once started, the queues run on the vDPA device: QEMU's
     * vhost-started. */
    json_object_object_get_ex(o, "started", &started);
    json_object_object_add(
        o, "vhost-started",
        json_object_new_boolean(json_object_get_boolean(started)));
    json_object_object_add(
        o, "backend-features",
        gw_virtio_features_json(d->device_id, d->device_features));
    return o;
}

static json_object *
vring_json(GwVdpaDevice *d, unsigned i, const GwVirtqueueSetup *q)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "index", json_object_new_int((int)i));
    json_object_object_add(o, "size", json_object_new_int(q->size));
    json_object_object_add(o, "enabled", json_object_new_boolean(q->enabled));
    json_object_object_add(o, "shadowed",
                           json_object_new_boolean(gw_vdpa_svq_shadows(d, i)));
    json_object_object_add(
        o, "control-relay",
        json_object_new_boolean(d->cvq_relay && i == d->cvq_idx));
    if (d->vring_base_known[i] && d->vring_base_at) {
        json_object_object_add(o, "vring-base",
                               json_object_new_int64(d->vring_base[i]));
        json_object_object_add(o, "vring-base-at",
                               json_object_new_string(d->vring_base_at));
    }
    return o;
}

json_object *
gw_vdpa_device_query_vrings(GwVdpaDevice *d)
{
    json_object *a = json_object_new_array();
    GwVirtqueueSetup q;

    for (unsigned i = 0; gw_virtio_pci_queue(d->vp, i, &q); i++) {
        json_object_array_add(a, vring_json(d, i, &q));
    }
    return a;
}
