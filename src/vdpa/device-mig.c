/*
 * A vDPA device across a migration: what blocks one, its state, suspend
 * and resume with the VM, and the seam the shadow virtqueues' relay
 * uses to take a queue's eventfds over.  See include/godwit/vdpa-device.h
 * for threads.
 */
#include <sys/eventfd.h>
#include <godwit/log.h>
#include <godwit/util.h>
#include <godwit/vdpa-device.h>
#include <godwit/vdpa-svq.h>
#include <godwit/virtio-pci.h>
#include "device-priv.h"

char *
gw_vdpa_device_migration_blocker(const GwVdpaDevice *d)
{
    char *why;

    if (!gw_vdpa_device_can_suspend(d)) {
        return g_strdup_printf(
            "vDPA device %s cannot be suspended (%s offers no "
            "VHOST_BACKEND_F_SUSPEND and _RESUME), so it cannot be "
            "quiesced for a migration",
            d->cfg->id, gw_vdpa_backend_label(d->backend));
    }
    if (gw_vdpa_backend_has_private_storage(d->backend)) {
        return g_strdup_printf("vDPA disk %s has no shared storage: create "
                               "it with backing=FILE",
                               d->cfg->id);
    }
    if (gw_vdpa_device_is_running(d) && (why = gw_vdpa_net_cvq_blocker(d))) {
        return why;
    }
    if (gw_vdpa_device_is_running(d) &&
        (d->acked_features & GW_VDPA_SVQ_UNSUPPORTED)) {
        return g_strdup_printf(
            "vDPA device %s negotiated INDIRECT_DESC, EVENT_IDX or "
            "RING_PACKED: shadow virtqueues cannot relay it yet, so what it "
            "writes into guest RAM could not be tracked",
            d->cfg->id);
    }
    return NULL;
}

bool
gw_vdpa_device_save(GwVdpaDevice *d, GwMigBuf *out, GError **errp)
{
    return gw_virtio_pci_save(d->vp, out, errp);
}

bool
gw_vdpa_device_load(GwVdpaDevice *d, GwMigCursor *in, GError **errp)
{
    return gw_virtio_pci_load(d->vp, in, errp);
}

bool
gw_vdpa_device_is_suspended(const GwVdpaDevice *d)
{
    return d->suspended;
}

bool
gw_vdpa_device_suspend(GwVdpaDevice *d, GError **errp)
{
    d->vm_stopped = true;
    return !gw_virtio_pci_started(d->vp) || d->suspended ||
           gw_vdpa_device_backend_suspend(d, errp);
}

bool
gw_vdpa_device_resume(GwVdpaDevice *d, GError **errp)
{
    d->vm_stopped = false;
    if (!d->suspended) {
        return true;
    }
    if (!gw_vdpa_resume(d->backend, errp)) {
        return false;
    }
    d->suspended = false;
    if (d->kick_on_resume) {
        gw_vdpa_device_kick_queues(d);
    }
    gw_vdpa_cvq_relay_poke(d); /* kicks it saw while suspended */
    return true;
}

void
gw_vdpa_device_set_vm_running(GwVdpaDevice *d, bool running)
{
    g_autoptr(GError) err = NULL;

    if (running ? !gw_vdpa_device_resume(d, &err)
                : !gw_vdpa_device_suspend(d, &err)) {
        gw_warning_ratelimited("%s%s", err->message,
                               running ? ": it stays suspended"
                                       : ": it keeps running while the VM "
                                         "is paused");
    }
}

bool
gw_vdpa_device_get_vring_base(GwVdpaDevice *d, unsigned idx, uint32_t *base,
                              GError **errp)
{
    return gw_vdpa_get_vring_base(d->backend, idx, base, errp);
}

/* ---- the relay seam ---- */

static bool
relay_check(GwVdpaDevice *d, unsigned idx, GwVirtqueueSetup *q, GError **errp)
{
    if (!gw_virtio_pci_queue(d->vp, idx, q) || !q->enabled ||
        !gw_virtio_pci_started(d->vp)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vdpa %s: queue %u is not running", d->cfg->id, idx);
        return false;
    }
    if (!d->suspended) {
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                    "vdpa %s: queue %u's eventfds change only while the "
                    "device is suspended",
                    d->cfg->id, idx);
        return false;
    }
    return true;
}

bool
gw_vdpa_device_set_queue_fds(GwVdpaDevice *d, unsigned idx, int kick_fd,
                             int call_fd, GError **errp)
{
    GwVirtqueueSetup q;

    if (!relay_check(d, idx, &q, errp)) {
        return false;
    }
    d->relayed[idx] = true; /* even half done: restoring redoes both */
    return gw_vdpa_set_vring_kick(d->backend, idx, kick_fd, errp) &&
           gw_vdpa_set_vring_call(d->backend, idx, call_fd, errp);
}

bool
gw_vdpa_device_restore_queue_fds(GwVdpaDevice *d, unsigned idx, GError **errp)
{
    GwVirtqueueSetup q;

    if (!relay_check(d, idx, &q, errp) ||
        !gw_vdpa_set_vring_kick(d->backend, idx, q.kick_fd, errp) ||
        !gw_vdpa_set_vring_call(d->backend, idx, q.call_fd, errp)) {
        return false;
    }
    d->relayed[idx] = false;
    /* A completion signalled to the relay and never forwarded would be
     * lost to the guest's driver: a spurious interrupt is harmless. */
    eventfd_write(q.call_fd, 1);
    return true;
}
