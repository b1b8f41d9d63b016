/*
 * The vDPA device model.  See include/godwit/vdpa-device.h for threads.
 */
#include <limits.h>
#include <string.h>
#include <sys/eventfd.h>
#include <glib-unix.h>
#include <godwit/log.h>
#include <godwit/util.h>
#include <godwit/vdpa-device.h>
#include <godwit/vdpa-svq.h>
#include <godwit/virtio-pci.h>
#include "device-priv.h"

#define VIRTIO_ID_NET        1
#define VIRTIO_NET_F_CTRL_VQ 17
/* Features that need the control queue (virtio 1.2, 5.1.3.1). */
#define NET_CTRL_FEATURES                                                      \
    ((1ull << 17) | (1ull << 18) | (1ull << 19) | (1ull << 20) |               \
     (1ull << 21) | (1ull << 22) | (1ull << 23))

/* Backend features we use when the device offers them. */
#define WANTED_BACKEND_FEATURES                                                \
    ((1ull << VHOST_BACKEND_F_IOTLB_MSG_V2) |                                  \
     (1ull << VHOST_BACKEND_F_IOTLB_BATCH) |                                   \
     (1ull << VHOST_BACKEND_F_SUSPEND) | (1ull << VHOST_BACKEND_F_RESUME) |    \
     (1ull << VHOST_BACKEND_F_IOTLB_PERSIST) |                                 \
     (1ull << VHOST_BACKEND_F_ENABLE_AFTER_DRIVER_OK))

static bool
has_backend(const GwVdpaDevice *d, unsigned bit)
{
    return d->backend_features & (1ull << bit);
}

/* Identity map of every RAM region: IOVA = guest physical address. */
static bool
map_memory_perm(GwVdpaDevice *d, uint8_t perm, GError **errp)
{
    bool batch = has_backend(d, VHOST_BACKEND_F_IOTLB_BATCH);

    if (batch && !gw_vdpa_iotlb_batch_begin(d->backend, 0, errp)) {
        return false;
    }
    for (guint i = 0; i < d->mem->n_regions; i++) {
        const GwMemRegion *r = &d->mem->regions[i];
        if (!gw_vdpa_iotlb_update(d->backend, 0, r->gpa, r->size,
                                  d->mem->host + r->offset, perm, errp)) {
            return false;
        }
    }
    return !batch || gw_vdpa_iotlb_batch_end(d->backend, 0, errp);
}

static bool
map_memory(GwVdpaDevice *d, GError **errp)
{
    return map_memory_perm(d, VHOST_ACCESS_RW, errp);
}

static void
unmap_memory(GwVdpaDevice *d)
{
    for (guint i = 0; i < d->mem->n_regions; i++) {
        gw_vdpa_iotlb_invalidate(d->backend, 0, d->mem->regions[i].gpa,
                                 d->mem->regions[i].size, NULL);
    }
}

/* Every enabled queue but `skip` (UINT_MAX: none). */
static bool
setup_rings(GwVdpaDevice *d, const GwVirtioActivation *a, unsigned skip,
            GError **errp)
{
    for (uint32_t i = 0; i < a->n_queues; i++) {
        const GwVirtqueueSetup *q = &a->queues[i];
        if (!q->enabled || i == skip) {
            continue;
        }
        if (!gw_vdpa_set_vring_num(d->backend, i, q->size, errp) ||
            !gw_vdpa_set_vring_addr(d->backend, i, q->desc, q->avail, q->used,
                                    errp) ||
            !gw_vdpa_set_vring_base(d->backend, i, q->last_avail, errp) ||
            !gw_vdpa_set_vring_kick(d->backend, i, q->kick_fd, errp) ||
            !gw_vdpa_set_vring_call(d->backend, i, q->call_fd, errp)) {
            return false;
        }
    }
    return true;
}

static bool
enable_rings(GwVdpaDevice *d, const GwVirtioActivation *a, unsigned skip,
             GError **errp)
{
    for (uint32_t i = 0; i < a->n_queues; i++) {
        if (a->queues[i].enabled && i != skip &&
            !gw_vdpa_set_vring_enable(d->backend, i, true, errp)) {
            return false;
        }
    }
    return true;
}

bool
gw_vdpa_device_can_suspend(const GwVdpaDevice *d)
{
    return has_backend(d, VHOST_BACKEND_F_SUSPEND) &&
           has_backend(d, VHOST_BACKEND_F_RESUME);
}

static bool
backend_suspend(GwVdpaDevice *d, GError **errp)
{
    if (!gw_vdpa_device_can_suspend(d)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "vdpa %s: %s cannot be suspended (no "
                    "VHOST_BACKEND_F_SUSPEND and _RESUME)",
                    d->cfg->id, gw_vdpa_backend_label(d->backend));
        return false;
    }
    if (!gw_vdpa_suspend(d->backend, errp)) {
        return false;
    }
    d->suspended = true;
    return true;
}

/* A guest (a qtest "guest" can) started the device while the VM is
 * paused: it must not run until the VM does. */
static bool
quiesce_if_stopped(GwVdpaDevice *d, GError **errp)
{
    return !d->vm_stopped || !gw_vdpa_device_can_suspend(d) ||
           backend_suspend(d, errp);
}

/* ACKNOWLEDGE, DRIVER, the features, FEATURES_OK re-read into *status. */
static bool
negotiate_features(GwVdpaDevice *d, const GwVirtioActivation *a,
                   uint8_t *status, GError **errp)
{
    const uint8_t drv = GW_VIRTIO_STATUS_ACKNOWLEDGE | GW_VIRTIO_STATUS_DRIVER;
    /* vhost-vdpa needs ACCESS_PLATFORM; with IOVA = GPA it changes nothing
     * for a guest that did not negotiate it. */
    uint64_t features = a->features | (1ull << VIRTIO_F_ACCESS_PLATFORM);

    d->acked_features = a->features;
    if (!gw_vdpa_set_status(d->backend, drv, errp) ||
        !gw_vdpa_set_features(d->backend, features, errp) ||
        !gw_vdpa_set_status(d->backend, drv | GW_VIRTIO_STATUS_FEATURES_OK,
                            errp) ||
        !gw_vdpa_get_status(d->backend, status, errp)) {
        return false;
    }
    if (!(*status & GW_VIRTIO_STATUS_FEATURES_OK)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "vdpa %s: the device refused features 0x%" G_GINT64_MODIFIER
                    "x",
                    d->cfg->id, features);
        return false;
    }
    return true;
}

/* The sequence of drivers/vhost/vdpa.c's users (QEMU, Cloud Hypervisor). */
static bool
vdpa_activate(void *opaque, const GwVirtioActivation *a, GError **errp)
{
    GwVdpaDevice *d = opaque;
    g_autoptr(GwVdpaCvq) c = NULL;
    uint8_t status = 0;
    unsigned ci = UINT_MAX;

    gw_vdpa_net_ctrl_reset(&d->net_ctrl);
    if (!negotiate_features(d, a, &status, errp) ||
        (gw_vdpa_cvq_relay_applies(d, a, &ci) &&
         !(c = gw_vdpa_cvq_open(d, ci, &a->queues[ci], 0, errp))) ||
        !setup_rings(d, a, ci, errp) ||
        !gw_vdpa_set_config_call(d->backend, d->config_call_fd, errp) ||
        !enable_rings(d, a, ci, errp) ||
        !gw_vdpa_set_status(d->backend, status | GW_VIRTIO_STATUS_DRIVER_OK,
                            errp) ||
        !gw_vdpa_net_plug_mac(d, c, a->features, errp)) {
        return false;
    }
    if (c) {
        gw_vdpa_cvq_relay_start(d, ci, g_steal_pointer(&c), &a->queues[ci]);
    }
    return quiesce_if_stopped(d, errp);
}

static void
vdpa_reset(void *opaque)
{
    GwVdpaDevice *d = opaque;
    g_autoptr(GError) err = NULL;

    /* A reset ends a suspension, and the device forgets its eventfds. */
    d->suspended = false;
    d->kick_on_resume = false;
    memset(d->relayed, 0, sizeof(d->relayed));
    if (!gw_vdpa_set_status(d->backend, 0, &err)) {
        gw_warning_ratelimited("%s", err->message);
        gw_vdpa_svq_abort(d);
        gw_vdpa_cvq_relay_stop(d);
        return;
    }
    gw_vdpa_svq_abort(d); /* the device no longer reaches the shadow */
    gw_vdpa_cvq_relay_stop(d);
    /* Without IOTLB_PERSIST a reset drops the maps: put them back. */
    if (!has_backend(d, VHOST_BACKEND_F_IOTLB_PERSIST) && d->cfg->iommu) {
        if (!gw_vdpa_iommu_remap(d, &err) || !gw_vdpa_cvq_map(d, &err)) {
            gw_warning_ratelimited("%s", err->message);
        }
    } else if (!has_backend(d, VHOST_BACKEND_F_IOTLB_PERSIST) &&
               (!map_memory(d, &err) || !gw_vdpa_cvq_map(d, &err))) {
        gw_warning_ratelimited("vdpa %s: remapping guest RAM after reset: %s",
                               d->cfg->id, err->message);
    }
}

static void
vdpa_config_read(void *opaque, unsigned off, void *buf, unsigned len)
{
    GwVdpaDevice *d = opaque;
    g_autoptr(GError) err = NULL;

    if (!gw_vdpa_get_config(d->backend, off, buf, len, &err)) {
        g_debug("%s", err->message);
        memset(buf, 0, len);
    }
    gw_vdpa_net_config_overlay(d, off, buf, len);
}

static void
vdpa_config_write(void *opaque, unsigned off, const void *buf, unsigned len)
{
    GwVdpaDevice *d = opaque;
    g_autoptr(GError) err = NULL;

    if (!gw_vdpa_set_config(d->backend, off, buf, len, &err)) {
        g_debug("%s", err->message);
    }
}

/* ---- a running device saved and restored ---- */

/* The used index the guest's ring `q` shows (its addresses are IOVAs
 * with iommu=on). */
static bool
guest_used_idx(GwVdpaDevice *d, const GwVirtqueueSetup *q, uint16_t *used)
{
    uint64_t gpa;

    return gw_vdpa_device_guest_gpa(d, q->used + 2, 2, false, &gpa) &&
           gw_mem_read(d->mem, gpa, used, 2);
}

/*
 * After SUSPEND the device has finished everything it took, so on a
 * split ring its used index equals its last_avail_idx, which is all
 * VHOST_GET_VRING_BASE reports (and all SET_VRING_BASE restores: the
 * device starts a ring with used = avail).  Checked, never assumed.
 */
static bool
vdpa_ring_state(void *opaque, unsigned idx, const GwVirtqueueSetup *q,
                uint16_t *last_avail, uint16_t *last_used, GError **errp)
{
    GwVdpaDevice *d = opaque;
    uint32_t base = 0;
    uint16_t used = 0;

    if (!d->suspended) {
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                    "vdpa %s: the device runs and is not suspended: its "
                    "rings' state is not stable",
                    d->cfg->id);
        return false;
    }
    if (d->cvq_relay && idx == d->cvq_idx) {
        base = gw_vdpa_cvq_relay_index(d); /* the guest's ring, not the VMM's */
    } else if (!gw_vdpa_get_vring_base(d->backend, idx, &base, errp)) {
        return false;
    }
    if (!guest_used_idx(d, q, &used) || used != base) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "vdpa %s queue %u: the device took up to %u and "
                    "completed up to %u after SUSPEND: requests in flight "
                    "cannot be carried on a split ring",
                    d->cfg->id, idx, base, used);
        return false;
    }
    *last_avail = *last_used = (uint16_t)base;
    d->vring_base[idx] = base;
    d->vring_base_known[idx] = true;
    d->vring_base_at = "suspend";
    return true;
}

static bool
check_restored_ring(GwVdpaDevice *d, unsigned i, const GwVirtqueueSetup *q,
                    GError **errp)
{
    uint16_t used = 0;

    if (q->last_avail != q->last_used) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vdpa %s queue %u: last avail %u, last used %u: a split "
                    "ring cannot restore requests in flight",
                    d->cfg->id, i, q->last_avail, q->last_used);
        return false;
    }
    if (!guest_used_idx(d, q, &used) || used != q->last_used) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vdpa %s queue %u: the used index in guest RAM is %u, "
                    "the source's device stopped at %u",
                    d->cfg->id, i, used, q->last_used);
        return false;
    }
    return true;
}

/* Writes back the span of the config space the source's driver changed. */
static bool
replay_config(GwVdpaDevice *d, const uint8_t *config, unsigned len,
              GError **errp)
{
    uint8_t now[GW_VIRTIO_CONFIG_SAVE_MAX];
    unsigned first = 0, last = len;

    if (!len) {
        return true;
    }
    if (!gw_vdpa_get_config(d->backend, 0, now, len, errp)) {
        return false;
    }
    while (first < len && now[first] == config[first]) {
        first++;
    }
    while (last > first && now[last - 1] == config[last - 1]) {
        last--;
    }
    return first == last ||
           gw_vdpa_set_config(d->backend, first, config + first, last - first,
                              errp);
}

/* A kick per enabled queue: the source's remembered kicks do not travel. */
void
gw_vdpa_device_kick_queues(GwVdpaDevice *d)
{
    GwVirtqueueSetup q;

    d->kick_on_resume = false;
    for (unsigned i = 0; gw_virtio_pci_queue(d->vp, i, &q); i++) {
        if (q.enabled && !d->relayed[i]) {
            eventfd_write(q.kick_fd, 1);
        }
    }
    gw_vdpa_cvq_relay_poke(d);
}

static void
note_restored(GwVdpaDevice *d, const GwVirtioActivation *a)
{
    memset(d->vring_base_known, 0, sizeof(d->vring_base_known));
    for (unsigned i = 0; i < a->n_queues; i++) {
        d->vring_base[i] = a->queues[i].last_avail;
        d->vring_base_known[i] = a->queues[i].enabled;
    }
    d->vring_base_at = "restore";
}

static bool
driver_ok(GwVdpaDevice *d, uint8_t status, GError **errp)
{
    return gw_vdpa_set_status(d->backend, status | GW_VIRTIO_STATUS_DRIVER_OK,
                              errp);
}

/*
 * A net device's control-queue state, replayed on the relay's VMM ring
 * before the guest's rings run (QEMU's order, see net-cvq.c): the
 * control queue on the VMM ring, the data queues set up (enabled only
 * after the replay if the device allows it) -> DRIVER_OK -> each
 * command acked OK -> the data queues enabled -> the relay watches the
 * guest's control ring from its saved index.
 */
static bool
restore_with_cvq(GwVdpaDevice *d, const GwVirtioActivation *a, unsigned ci,
                 const uint8_t *mac, uint8_t status, GError **errp)
{
    g_autoptr(GwVdpaCvq) c = NULL;
    bool late = has_backend(d, VHOST_BACKEND_F_ENABLE_AFTER_DRIVER_OK);
    unsigned n = 0;

    gw_vdpa_net_ctrl_replay(d, NULL, a->features, mac, &n, NULL);
    if (!(c = gw_vdpa_cvq_open(d, ci, &a->queues[ci], n, errp)) ||
        !setup_rings(d, a, ci, errp) ||
        !gw_vdpa_set_config_call(d->backend, d->config_call_fd, errp) ||
        !(late || enable_rings(d, a, ci, errp)) ||
        !driver_ok(d, status, errp) ||
        !gw_vdpa_net_ctrl_replay(d, c, a->features, mac, NULL, errp) ||
        !(!late || enable_rings(d, a, ci, errp))) {
        return false;
    }
    gw_vdpa_cvq_relay_start(d, ci, g_steal_pointer(&c), &a->queues[ci]);
    return true;
}

/*
 * features -> config -> rings at their bases -> DRIVER_OK (a net
 * device's control-queue state replayed first), then suspended until
 * the VM runs (gw_vdpa_device_resume kicks every ring).
 */
static bool
vdpa_restore(void *opaque, const GwVirtioActivation *a, const uint8_t *config,
             unsigned config_len, GError **errp)
{
    GwVdpaDevice *d = opaque;
    uint8_t status = 0;
    unsigned ci;

    for (unsigned i = 0; i < a->n_queues; i++) {
        if (a->queues[i].enabled &&
            !check_restored_ring(d, i, &a->queues[i], errp)) {
            return false;
        }
    }
    if (!negotiate_features(d, a, &status, errp) ||
        !replay_config(d, config, config_len, errp)) {
        return false;
    }
    note_restored(d, a);
    d->vm_stopped = true; /* until the migration lets the VM run */
    if (gw_vdpa_cvq_relay_applies(d, a, &ci)) {
        if (!restore_with_cvq(d, a, ci, config_len >= 6 ? config : NULL, status,
                              errp)) {
            return false;
        }
    } else if (!setup_rings(d, a, UINT_MAX, errp) ||
               !gw_vdpa_set_config_call(d->backend, d->config_call_fd, errp) ||
               !enable_rings(d, a, UINT_MAX, errp) ||
               !driver_ok(d, status, errp)) {
        return false;
    }
    if (!gw_vdpa_device_can_suspend(d)) {
        gw_vdpa_device_kick_queues(d);
        return true;
    }
    d->kick_on_resume = true;
    return backend_suspend(d, errp);
}

static const GwVirtioDeviceOps virtio_ops = {
    vdpa_activate,   vdpa_reset,   vdpa_config_read,      vdpa_config_write,
    vdpa_ring_state, vdpa_restore, gw_vdpa_net_ctrl_save, gw_vdpa_net_ctrl_load,
};

/* The device signalled a config change, or that it broke. */
static gboolean
on_config_call(int fd, GIOCondition cond, gpointer opaque)
{
    GwVdpaDevice *d = opaque;
    eventfd_t n;
    uint8_t status = 0;

    if (eventfd_read(fd, &n) < 0) {
        return G_SOURCE_CONTINUE;
    }
    g_mutex_lock(d->dev_lock);
    if (gw_vdpa_svq_broken(d)) {
        gw_warning_ratelimited("vdpa %s: a queue is no longer relayed: the "
                               "guest must reset the device",
                               d->cfg->id);
        gw_virtio_pci_set_needs_reset(d->vp);
    } else if (gw_vdpa_get_status(d->backend, &status, NULL) &&
               (status & GW_VIRTIO_STATUS_NEEDS_RESET)) {
        gw_warning_ratelimited("vdpa %s: the device needs a reset", d->cfg->id);
        gw_virtio_pci_set_needs_reset(d->vp);
    } else {
        gw_virtio_pci_config_changed(d->vp);
    }
    g_mutex_unlock(d->dev_lock);
    return G_SOURCE_CONTINUE;
}

static bool
check_num_queues(GwVdpaDevice *d, GError **errp)
{
    if (!gw_vdpa_get_vqs_count(d->backend, &d->vqs, errp)) {
        return false;
    }
    if (d->cfg->num_queues == 0) { /* QEMU's shapes: all of them */
        d->cfg->num_queues = MIN(d->vqs, GW_VIRTIO_MAX_QUEUES);
    }
    if (d->cfg->num_queues > d->vqs ||
        d->cfg->num_queues > GW_VIRTIO_MAX_QUEUES) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vdpa %s: num_queues=%u, but %s has %u virtqueues",
                    d->cfg->id, d->cfg->num_queues,
                    gw_vdpa_backend_label(d->backend), d->vqs);
        return false;
    }
    return true;
}

static bool
check_iova_range(GwVdpaDevice *d, GError **errp)
{
    uint64_t first, last;

    if (!gw_vdpa_get_iova_range(d->backend, &first, &last, errp)) {
        return false;
    }
    for (guint i = 0; i < d->mem->n_regions; i++) {
        const GwMemRegion *r = &d->mem->regions[i];
        if (r->gpa < first || r->gpa + r->size - 1 > last) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "vdpa %s: guest RAM at 0x%" G_GINT64_MODIFIER
                        "x is outside the device's IOVA range",
                        d->cfg->id, r->gpa);
            return false;
        }
    }
    return true;
}

static bool
negotiate_backend(GwVdpaDevice *d, GError **errp)
{
    uint64_t offered;

    if (!gw_vdpa_get_backend_features(d->backend, &offered, errp)) {
        return false;
    }
    d->backend_features = offered & WANTED_BACKEND_FEATURES;
    return gw_vdpa_set_backend_features(d->backend, d->backend_features, errp);
}

/* Reads what the device is and offers; fills `info` for the transport. */
static bool
probe(GwVdpaDevice *d, GwVirtioDeviceInfo *info, GError **errp)
{
    uint32_t config_size = 0;
    uint16_t max = 0;

    if (!gw_vdpa_set_owner(d->backend, errp) ||
        !gw_vdpa_get_device_id(d->backend, &info->device_id, errp) ||
        !gw_vdpa_get_features(d->backend, &info->features, errp) ||
        !negotiate_backend(d, errp) || !check_num_queues(d, errp) ||
        !gw_vdpa_get_vring_num_max(d->backend, &max, errp) ||
        !gw_vdpa_get_config_size(d->backend, &config_size, errp) ||
        !check_iova_range(d, errp)) {
        return false;
    }
    if (!(info->features & (1ull << VIRTIO_F_ACCESS_PLATFORM))) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vdpa %s: %s does not offer VIRTIO_F_ACCESS_PLATFORM",
                    d->cfg->id, gw_vdpa_backend_label(d->backend));
        return false;
    }
    d->device_features = info->features;
    /* A net device whose control queue is not exposed cannot offer the
     * features that need it. */
    if (info->device_id == VIRTIO_ID_NET && d->cfg->num_queues < d->vqs) {
        info->features &= ~NET_CTRL_FEATURES;
    }
    d->device_id = info->device_id;
    info->n_queues = d->cfg->num_queues;
    info->queue_max = max;
    info->config_size = MIN(config_size, 0x1000u);
    return true;
}

/*
 * The ring of the VMM's control-queue relay (docs/architecture.md).
 * Behind an IOMMU it must sit above every IOVA the guest can map: a
 * device whose IOVA range does not reach there keeps its control queue
 * passed through (gw_vdpa_cvq_relay_applies sees no ring), as QEMU does
 * without a shadow CVQ, and what the guest sets over it blocks a
 * migration (gw_vdpa_net_cvq_blocker).
 */
static bool
prepare_cvq_relay(GwVdpaDevice *d, uint16_t queue_max, GError **errp)
{
    g_autoptr(GError) err = NULL;

    if (!d->cfg->iommu) {
        return gw_vdpa_cvq_prepare(d, queue_max, errp);
    }
    if (!gw_vdpa_cvq_prepare(d, queue_max, &err)) {
        g_info("%s: its control queue is passed through, not relayed",
               err->message);
    }
    return true;
}

GwVdpaDevice *
gw_vdpa_device_new(const GwVdpaConfig *cfg, GwVdpaBackend *backend,
                   GwGuestMemory *mem, const GwIrqChip *irq, GMutex *dev_lock,
                   GError **errp)
{
    g_autoptr(GwVdpaDevice) d = g_new0(GwVdpaDevice, 1);
    GwVirtioDeviceInfo info = {0};

    d->cfg = gw_vdpa_config_copy(cfg);
    d->backend = gw_vdpa_backend_ref(backend);
    d->mem = mem;
    d->dev_lock = dev_lock;
    d->config_call_fd = -1;
    /* iommu=on: nothing reachable until the IOMMU says so. */
    if (!probe(d, &info, errp) || (!cfg->iommu && !map_memory(d, errp))) {
        return NULL;
    }
    if (cfg->iommu) {
        info.required_features = 1ull << VIRTIO_F_ACCESS_PLATFORM;
    }
    if (d->device_id == VIRTIO_ID_NET &&
        (d->device_features & (1ull << VIRTIO_NET_F_CTRL_VQ)) &&
        !prepare_cvq_relay(d, info.queue_max, errp)) {
        return NULL;
    }
    d->config_call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d->config_call_fd < 0) {
        return gw_error_errno(errp, errno, "vdpa %s: eventfd", cfg->id), NULL;
    }
    d->vp = gw_virtio_pci_new(&info, &virtio_ops, d, irq, errp);
    if (!d->vp) {
        return NULL;
    }
    gw_virtio_pci_device(d->vp)->id = d->cfg->id;
    d->config_watch =
        g_unix_fd_add(d->config_call_fd, G_IO_IN, on_config_call, d);
    return g_steal_pointer(&d);
}

void
gw_vdpa_device_free(GwVdpaDevice *d)
{
    if (!d) {
        return;
    }
    g_clear_handle_id(&d->config_watch, g_source_remove);
    if (d->vp) {
        gw_virtio_pci_device(d->vp)->id = NULL;
        gw_virtio_pci_free(d->vp);
    }
    if (d->backend) {
        gw_vdpa_set_status(d->backend, 0, NULL);
        gw_vdpa_svq_abort(d);
        gw_vdpa_cvq_relay_stop(d);
        gw_vdpa_cvq_release(d);
        if (d->cfg->iommu) {
            gw_vdpa_iommu_detach(d);
            gw_vdpa_iommu_forget(d);
        } else {
            unmap_memory(d);
        }
        gw_vdpa_backend_unref(d->backend);
    }
    gw_fd_cleanup(&d->config_call_fd);
    gw_vdpa_config_free(d->cfg);
    g_free(d);
}

bool
gw_vdpa_device_remap_memory(GwVdpaDevice *d, bool writable, GError **errp)
{
    if (d->cfg->iommu) {
        return gw_vdpa_iommu_remap(d, errp);
    }
    unmap_memory(d);
    if (!map_memory_perm(d, writable ? VHOST_ACCESS_RW : VHOST_ACCESS_RO,
                         errp)) {
        g_prefix_error(errp, "vdpa %s: mapping guest RAM again: ", d->cfg->id);
        return false;
    }
    return true;
}

void
gw_vdpa_device_reset(GwVdpaDevice *d)
{
    gw_virtio_pci_reset(d->vp);
    gw_pci_device_reset(gw_vdpa_device_pci(d));
}

bool
gw_vdpa_device_is_running(const GwVdpaDevice *d)
{
    return gw_virtio_pci_status(d->vp) & GW_VIRTIO_STATUS_DRIVER_OK;
}

/* ---- for the shadow virtqueues (device-priv.h) ---- */

bool
gw_vdpa_device_backend_suspend(GwVdpaDevice *d, GError **errp)
{
    return backend_suspend(d, errp);
}

bool
gw_vdpa_device_backend_resume(GwVdpaDevice *d, GError **errp)
{
    if (!gw_vdpa_resume(d->backend, errp)) {
        return false;
    }
    d->suspended = false;
    return true;
}
