/*
 * virtio-pci modern transport.  See include/godwit/virtio-pci.h.
 */
#include <stddef.h>
#include <string.h>
#include <sys/eventfd.h>
#include <godwit/log.h>
#include <godwit/util.h>
#include <godwit/virtio-pci.h>
#include "virtio-pci-priv.h"

enum {
    CFG_DFSELECT = 0x00,
    CFG_DF = 0x04,
    CFG_GFSELECT = 0x08,
    CFG_GF = 0x0c,
    CFG_MSIX_CONFIG = 0x10,
    CFG_NUM_QUEUES = 0x12,
    CFG_STATUS = 0x14,
    CFG_GENERATION = 0x15,
    CFG_Q_SELECT = 0x16,
    CFG_Q_SIZE = 0x18,
    CFG_Q_MSIX = 0x1a,
    CFG_Q_ENABLE = 0x1c,
    CFG_Q_NOFF = 0x1e,
    CFG_Q_DESC = 0x20,
    CFG_Q_AVAIL = 0x28,
    CFG_Q_USED = 0x30,
    CFG_END = 0x38,
};

static GwVirtioQueue *
selected(GwVirtioPci *vp)
{
    return vp->queue_select < vp->info.n_queues ? &vp->q[vp->queue_select]
                                                : NULL;
}

static uint64_t
notify_addr(GwVirtioPci *vp, unsigned i)
{
    uint64_t bar = vp->pci.bars[0].mapped_at;
    return bar ? bar + GW_VIRTIO_PCI_NOTIFY + GW_VIRTIO_NOTIFY_MULTIPLIER * i
               : 0;
}

/* Keeps queue i's irqfd on its vector's current route. */
static void
sync_irqfd(GwVirtioPci *vp, unsigned i)
{
    GwVirtioQueue *q = &vp->q[i];
    int gsi = vp->activated && q->enabled
                  ? gw_msix_vector_gsi(&vp->msix, q->vector)
                  : -1;
    g_autoptr(GError) err = NULL;

    if (gsi == q->bound_gsi) {
        return;
    }
    if (q->bound_gsi >= 0) {
        vp->irq->ops->irqfd(vp->irq->ctx, q->call_fd, q->bound_gsi, false,
                            NULL);
        q->bound_gsi = -1;
    }
    if (gsi >= 0 &&
        vp->irq->ops->irqfd(vp->irq->ctx, q->call_fd, gsi, true, &err)) {
        q->bound_gsi = gsi;
    } else if (err) {
        gw_warning_ratelimited("virtio-pci %02x.0 queue %u: %s", vp->pci.slot,
                               i, err->message);
    }
}

/* Keeps queue i's ioeventfd on its notify address while activated. */
static void
sync_ioeventfd(GwVirtioPci *vp, unsigned i)
{
    GwVirtioQueue *q = &vp->q[i];
    uint64_t want = vp->activated && q->enabled ? notify_addr(vp, i) : 0;
    g_autoptr(GError) err = NULL;

    if (want == q->ioeventfd_at) {
        return;
    }
    if (q->ioeventfd_at) {
        vp->irq->ops->ioeventfd(vp->irq->ctx, q->ioeventfd_at, 0, q->kick_fd,
                                false, NULL);
        q->ioeventfd_at = 0;
    }
    if (want && vp->irq->ops->ioeventfd(vp->irq->ctx, want, 0, q->kick_fd, true,
                                        &err)) {
        q->ioeventfd_at = want;
    } else if (err) {
        gw_warning_ratelimited("virtio-pci %02x.0 queue %u: %s", vp->pci.slot,
                               i, err->message);
    }
}

void
gw_virtio_pci_sync_queues(GwVirtioPci *vp)
{
    for (unsigned i = 0; i < vp->info.n_queues; i++) {
        sync_irqfd(vp, i);
        sync_ioeventfd(vp, i);
    }
}

static void
msix_changed(void *opaque, unsigned vector)
{
    GwVirtioPci *vp = opaque;

    for (unsigned i = 0; i < vp->info.n_queues; i++) {
        if (vp->q[i].vector == vector) {
            sync_irqfd(vp, i);
        }
    }
}

static void
reset_state(GwVirtioPci *vp)
{
    bool was_active = vp->activated;

    vp->activated = false;
    gw_virtio_pci_sync_queues(vp); /* unbinds everything */
    if (was_active || vp->status) {
        vp->ops->reset(vp->opaque);
    }
    vp->dfselect = vp->gfselect = 0;
    vp->driver_features = 0;
    vp->config_vector = GW_MSIX_NO_VECTOR;
    vp->queue_select = 0;
    vp->status = vp->isr = 0;
    for (unsigned i = 0; i < vp->info.n_queues; i++) {
        GwVirtioQueue *q = &vp->q[i];
        q->size = vp->info.queue_max;
        q->vector = GW_MSIX_NO_VECTOR;
        q->enabled = false;
        q->desc = q->avail = q->used = 0;
        q->last_avail = q->last_used = 0;
    }
    vp->ring_state = 0;
    vp->config_len = 0;
}

void
gw_virtio_pci_config_changed(GwVirtioPci *vp)
{
    vp->isr |= 0x2;
    vp->generation++;
    if (vp->config_vector != GW_MSIX_NO_VECTOR) {
        gw_msix_notify(&vp->msix, vp->config_vector);
    }
}

void
gw_virtio_pci_set_needs_reset(GwVirtioPci *vp)
{
    vp->status |= GW_VIRTIO_STATUS_NEEDS_RESET;
    gw_virtio_pci_config_changed(vp);
}

GwVirtqueueSetup
gw_virtio_pci_queue_setup(const GwVirtioQueue *q)
{
    return (GwVirtqueueSetup){q->size,    q->enabled, q->desc,
                              q->avail,   q->used,    q->kick_fd,
                              q->call_fd, 0,          0};
}

static void
activate(GwVirtioPci *vp)
{
    GwVirtqueueSetup qs[GW_VIRTIO_MAX_QUEUES];
    GwVirtioActivation a = {vp->driver_features, vp->info.n_queues, qs};
    g_autoptr(GError) err = NULL;

    for (unsigned i = 0; i < vp->info.n_queues; i++) {
        qs[i] = gw_virtio_pci_queue_setup(&vp->q[i]);
    }
    vp->activated = true;
    gw_virtio_pci_sync_queues(vp);
    if (!vp->ops->activate(vp->opaque, &a, &err)) {
        gw_warning_ratelimited(
            "virtio-pci %02x.0 (%s): device failed to start: %s", vp->pci.slot,
            vp->pci.id ? vp->pci.id : "-", err->message);
        gw_virtio_pci_set_needs_reset(vp);
    }
}

static void
write_status(GwVirtioPci *vp, uint8_t v)
{
    uint8_t newly = v & ~vp->status;

    if (v == 0) {
        reset_state(vp);
        return;
    }
    if (vp->status & ~v & ~GW_VIRTIO_STATUS_NEEDS_RESET) {
        /* The driver MUST NOT clear a bit (virtio 1.2, 2.1.2); like
         * vhost_vdpa_set_status, refuse it rather than start twice. */
        g_debug("virtio-pci %02x.0: status 0x%02x clears bits of 0x%02x: "
                "ignored",
                vp->pci.slot, v, vp->status);
        return;
    }
    if (newly & GW_VIRTIO_STATUS_FEATURES_OK) {
        uint64_t f = vp->driver_features;
        if (!(f & (1ull << GW_VIRTIO_F_VERSION_1)) ||
            (f & ~vp->info.features) || (~f & vp->info.required_features)) {
            v &= ~GW_VIRTIO_STATUS_FEATURES_OK; /* refused: driver sees it */
        }
    }
    vp->status = v | (vp->status & GW_VIRTIO_STATUS_NEEDS_RESET);
    if ((newly & GW_VIRTIO_STATUS_DRIVER_OK) &&
        (vp->status & GW_VIRTIO_STATUS_FEATURES_OK)) {
        activate(vp);
    }
}

static uint64_t
common_read(GwVirtioPci *vp, unsigned off)
{
    GwVirtioQueue *q = selected(vp);

    switch (off) {
    case CFG_DFSELECT:
        return vp->dfselect;
    case CFG_DF:
        return vp->dfselect < 2
                   ? (uint32_t)(vp->info.features >> (32 * vp->dfselect))
                   : 0;
    case CFG_GFSELECT:
        return vp->gfselect;
    case CFG_GF:
        return vp->gfselect < 2
                   ? (uint32_t)(vp->driver_features >> (32 * vp->gfselect))
                   : 0;
    case CFG_MSIX_CONFIG:
        return vp->config_vector;
    case CFG_NUM_QUEUES:
        return vp->info.n_queues;
    case CFG_STATUS:
        return vp->status;
    case CFG_GENERATION:
        return vp->generation;
    case CFG_Q_SELECT:
        return vp->queue_select;
    case CFG_Q_NOFF:
        return vp->queue_select;
    }
    if (!q) {
        return 0;
    }
    switch (off) {
    case CFG_Q_SIZE:
        return q->size;
    case CFG_Q_MSIX:
        return q->vector;
    case CFG_Q_ENABLE:
        return q->enabled;
    case CFG_Q_DESC:
        return q->desc;
    case CFG_Q_AVAIL:
        return q->avail;
    case CFG_Q_USED:
        return q->used;
    }
    return 0;
}

/* A vector the function has, else NO_VECTOR (what the driver reads back). */
static uint16_t
valid_vector(GwVirtioPci *vp, uint64_t v)
{
    return v < gw_msix_vectors(&vp->msix) ? (uint16_t)v : GW_MSIX_NO_VECTOR;
}

/* 64-bit fields may be written as two 32-bit halves. */
static void
set_half(uint64_t *field, unsigned off, unsigned base, uint64_t v,
         unsigned size)
{
    if (size == 8) {
        *field = v;
    } else if (off == base) {
        *field = (*field & ~0xffffffffull) | (uint32_t)v;
    } else {
        *field = (*field & 0xffffffffull) | (uint64_t)(uint32_t)v << 32;
    }
}

static void
queue_write(GwVirtioPci *vp, GwVirtioQueue *q, unsigned off, uint64_t v,
            unsigned size)
{
    bool live = vp->status & GW_VIRTIO_STATUS_DRIVER_OK;

    if (off == CFG_Q_MSIX) {
        q->vector = valid_vector(vp, v);
        sync_irqfd(vp, (unsigned)(q - vp->q));
    } else if (live) {
        return; /* queue layout is frozen once the device runs */
    } else if (off == CFG_Q_SIZE) {
        /* A power of two up to the device's maximum, else ignored. */
        if (v && v <= vp->info.queue_max && !(v & (v - 1))) {
            q->size = (uint16_t)v;
        }
    } else if (off == CFG_Q_ENABLE) {
        q->enabled = v == 1;
    } else if (off >= CFG_Q_DESC && off < CFG_Q_AVAIL) {
        set_half(&q->desc, off, CFG_Q_DESC, v, size);
    } else if (off >= CFG_Q_AVAIL && off < CFG_Q_USED) {
        set_half(&q->avail, off, CFG_Q_AVAIL, v, size);
    } else if (off >= CFG_Q_USED && off < CFG_END) {
        set_half(&q->used, off, CFG_Q_USED, v, size);
    }
}

static void
common_write(GwVirtioPci *vp, unsigned off, uint64_t v, unsigned size)
{
    GwVirtioQueue *q = selected(vp);

    switch (off) {
    case CFG_DFSELECT:
        vp->dfselect = (uint32_t)v;
        return;
    case CFG_GFSELECT:
        vp->gfselect = (uint32_t)v;
        return;
    case CFG_GF:
        if (vp->gfselect < 2 && !(vp->status & GW_VIRTIO_STATUS_FEATURES_OK)) {
            unsigned shift = 32 * vp->gfselect;
            vp->driver_features &= ~(0xffffffffull << shift);
            vp->driver_features |= (uint64_t)(uint32_t)v << shift;
        }
        return;
    case CFG_MSIX_CONFIG:
        vp->config_vector = valid_vector(vp, v);
        return;
    case CFG_STATUS:
        write_status(vp, (uint8_t)v);
        return;
    case CFG_Q_SELECT:
        vp->queue_select = (uint16_t)v;
        return;
    }
    if (q) {
        queue_write(vp, q, off, v, size);
    }
}

static void
kick(GwVirtioPci *vp, unsigned i)
{
    if (i < vp->info.n_queues && eventfd_write(vp->q[i].kick_fd, 1) < 0) {
        g_debug("virtio-pci: kick queue %u: %s", i, g_strerror(errno));
    }
}

static uint64_t
bar_read(void *opaque, uint64_t off, unsigned size)
{
    GwVirtioPci *vp = opaque;
    uint64_t v = 0;

    if (off < CFG_END) {
        return common_read(vp, (unsigned)off);
    }
    if (off == GW_VIRTIO_PCI_ISR) {
        v = vp->isr;
        vp->isr = 0; /* reading acknowledges */
        return v;
    }
    if (off >= GW_VIRTIO_PCI_DEVICE &&
        off + size <= GW_VIRTIO_PCI_DEVICE + vp->info.config_size) {
        vp->ops->config_read(vp->opaque, (unsigned)off - GW_VIRTIO_PCI_DEVICE,
                             &v, size);
    }
    return v;
}

static void
bar_write(void *opaque, uint64_t off, uint64_t value, unsigned size)
{
    GwVirtioPci *vp = opaque;

    if (off < CFG_END) {
        common_write(vp, (unsigned)off, value, size);
    } else if (off >= GW_VIRTIO_PCI_DEVICE &&
               off + size <= GW_VIRTIO_PCI_DEVICE + vp->info.config_size) {
        vp->ops->config_write(vp->opaque, (unsigned)off - GW_VIRTIO_PCI_DEVICE,
                              &value, size);
    } else if (off >= GW_VIRTIO_PCI_NOTIFY) {
        kick(vp, (unsigned)(off - GW_VIRTIO_PCI_NOTIFY) /
                     GW_VIRTIO_NOTIFY_MULTIPLIER);
    }
}

static const GwDeviceOps bar_ops = {"virtio-pci", bar_read, bar_write};

/*
 * VIRTIO_PCI_CAP_PCI_CFG: the driver sets cap.bar, cap.offset and
 * cap.length (1, 2 or 4, offset aligned to it), then reading or writing
 * pci_cfg_data (cap + 16) accesses BAR 0 there, memory decoding on or
 * off (firmware uses it for BARs it cannot reach).  Any other window is
 * ignored: reads give 0, writes go nowhere.
 */
#define CFG_CAP_DATA 16

static bool
cfg_window(const GwVirtioPci *vp, uint32_t *off, uint32_t *len)
{
    const uint8_t *cap = &vp->pci.config[vp->cfg_cap];

    memcpy(off, cap + 8, 4);
    memcpy(len, cap + 12, 4);
    return cap[4] == 0 && (*len == 1 || *len == 2 || *len == 4) &&
           *off % *len == 0 && *off <= GW_VIRTIO_PCI_BAR_SIZE - *len;
}

static bool
touches_cfg_data(const GwVirtioPci *vp, unsigned offset, unsigned size)
{
    unsigned at = vp->cfg_cap + CFG_CAP_DATA;
    return offset < at + 4 && at < offset + size;
}

static void
config_written(GwPciDevice *dev, unsigned offset, unsigned size)
{
    GwVirtioPci *vp = (GwVirtioPci *)dev;
    uint32_t off, len, v;

    gw_msix_config_written(&vp->msix, offset, size);
    gw_virtio_pci_sync_queues(vp); /* a BAR may have moved */
    if (touches_cfg_data(vp, offset, size) && cfg_window(vp, &off, &len)) {
        memcpy(&v, &dev->config[vp->cfg_cap + CFG_CAP_DATA], 4);
        bar_write(vp, off, len == 4 ? v : v & ((1u << (8 * len)) - 1), len);
    }
}

static void
config_read(GwPciDevice *dev, unsigned offset, unsigned size)
{
    GwVirtioPci *vp = (GwVirtioPci *)dev;
    uint32_t off, len, v = 0;

    if (touches_cfg_data(vp, offset, size)) {
        if (cfg_window(vp, &off, &len)) {
            v = (uint32_t)bar_read(vp, off, len);
        }
        memcpy(&dev->config[vp->cfg_cap + CFG_CAP_DATA], &v, 4);
    }
}

static const GwPciDeviceOps pci_ops = {"virtio-pci", config_written,
                                       config_read};

/* A vendor capability: struct virtio_pci_cap, then 4 more bytes for the
 * notify multiplier (type 2) or pci_cfg_data (type 5, writable with
 * bar, offset and length). */
static unsigned
add_virtio_cap(GwVirtioPci *vp, uint8_t type, uint32_t offset, uint32_t len)
{
    uint8_t cap[20] = {0}, wmask[20] = {0};
    bool longer = type == 2 || type == 5;

    cap[2] = longer ? 20 : 16; /* cap_len */
    cap[3] = type;
    cap[4] = 0; /* BAR */
    memcpy(cap + 8, &offset, 4);
    memcpy(cap + 12, &len, 4);
    if (type == 2) {
        uint32_t mult = GW_VIRTIO_NOTIFY_MULTIPLIER;
        memcpy(cap + 16, &mult, 4);
    }
    if (type == 5) {
        wmask[4] = 0xff;
        memset(wmask + 8, 0xff, 12);
    }
    return gw_pci_device_add_cap(&vp->pci, 0x09, cap, cap[2], wmask);
}

/* The PCI class QEMU gives the same virtio device type. */
static uint32_t
class_of(uint32_t virtio_id)
{
    switch (virtio_id) {
    case 1:
        return 0x020000; /* network */
    case 2:
        return 0x010000; /* storage: SCSI, as QEMU's virtio-blk */
    default:
        return 0xff0000;
    }
}

static bool
make_eventfds(GwVirtioPci *vp, GError **errp)
{
    for (unsigned i = 0; i < vp->info.n_queues; i++) {
        vp->q[i].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        vp->q[i].call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (vp->q[i].kick_fd < 0 || vp->q[i].call_fd < 0) {
            return gw_error_errno(errp, errno, "virtio-pci: eventfd");
        }
    }
    return true;
}

GwVirtioPci *
gw_virtio_pci_new(const GwVirtioDeviceInfo *info, const GwVirtioDeviceOps *ops,
                  void *opaque, const GwIrqChip *irq, GError **errp)
{
    GwVirtioPci *vp;

    if (info->n_queues == 0 || info->n_queues > GW_VIRTIO_MAX_QUEUES ||
        info->queue_max == 0 || (info->queue_max & (info->queue_max - 1)) ||
        info->config_size > 0x1000) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "virtio-pci: device with %u queues of %u entries and "
                    "%u config bytes is not supported",
                    info->n_queues, info->queue_max, info->config_size);
        return NULL;
    }
    vp = g_new0(GwVirtioPci, 1);
    vp->info = *info;
    vp->info.features |= 1ull << GW_VIRTIO_F_VERSION_1;
    vp->ops = ops;
    vp->opaque = opaque;
    vp->irq = irq;
    for (unsigned i = 0; i < GW_VIRTIO_MAX_QUEUES; i++) {
        vp->q[i] =
            (GwVirtioQueue){.kick_fd = -1, .call_fd = -1, .bound_gsi = -1};
    }
    gw_pci_device_init(&vp->pci, &pci_ops, 0x1af4,
                       (uint16_t)(0x1040 + info->device_id),
                       class_of(info->device_id), 1, 0x1af4, 0x1100);
    gw_pci_device_set_bar(&vp->pci, 0, GW_VIRTIO_PCI_BAR_SIZE, &bar_ops, vp);
    add_virtio_cap(vp, 1, GW_VIRTIO_PCI_COMMON, CFG_END);
    add_virtio_cap(vp, 3, GW_VIRTIO_PCI_ISR, 1);
    if (info->config_size) {
        add_virtio_cap(vp, 4, GW_VIRTIO_PCI_DEVICE, info->config_size);
    }
    add_virtio_cap(vp, 2, GW_VIRTIO_PCI_NOTIFY,
                   GW_VIRTIO_NOTIFY_MULTIPLIER * info->n_queues);
    vp->cfg_cap = add_virtio_cap(vp, 5, 0, 0);
    /* One vector per queue plus one for config changes. */
    gw_msix_init(&vp->msix, &vp->pci, info->n_queues + 1, 1, irq, msix_changed,
                 vp);
    if (!make_eventfds(vp, errp)) {
        gw_virtio_pci_free(vp);
        return NULL;
    }
    reset_state(vp);
    return vp;
}

void
gw_virtio_pci_free(GwVirtioPci *vp)
{
    if (!vp) {
        return;
    }
    /* Unbind our eventfds; the backend is its owner's to reset. */
    vp->activated = false;
    gw_virtio_pci_sync_queues(vp);
    gw_msix_cleanup(&vp->msix);
    for (unsigned i = 0; i < vp->info.n_queues; i++) {
        gw_fd_cleanup(&vp->q[i].kick_fd);
        gw_fd_cleanup(&vp->q[i].call_fd);
    }
    g_free(vp);
}

void
gw_virtio_pci_reset(GwVirtioPci *vp)
{
    reset_state(vp);
    gw_msix_reset(&vp->msix);
}

GwPciDevice *
gw_virtio_pci_device(GwVirtioPci *vp)
{
    return &vp->pci;
}

uint8_t
gw_virtio_pci_status(const GwVirtioPci *vp)
{
    return vp->status;
}

bool
gw_virtio_pci_started(const GwVirtioPci *vp)
{
    return vp->activated;
}

bool
gw_virtio_pci_queue(const GwVirtioPci *vp, unsigned idx, GwVirtqueueSetup *out)
{
    if (idx >= vp->info.n_queues) {
        return false;
    }
    *out = gw_virtio_pci_queue_setup(&vp->q[idx]);
    return true;
}

/* ---- x-query-virtio-status ---- */

json_object *
gw_virtio_pci_query(const GwVirtioPci *vp)
{
    json_object *o = json_object_new_object();
    struct {
        const char *key;
        bool value;
    } flags[] = {
        {"started", vp->activated},
        {"broken", vp->status & GW_VIRTIO_STATUS_NEEDS_RESET},
        {"disabled", false},
        {"use-started", true},
        {"start-on-kick", false},
        {"disable-legacy-check", false},
        {"use-guest-notifier-mask", false},
    };

    json_object_object_add(
        o, "name",
        json_object_new_string(gw_virtio_device_name(vp->info.device_id)));
    json_object_object_add(o, "device-id",
                           json_object_new_int((int)vp->info.device_id));
    json_object_object_add(o, "device-endian",
                           json_object_new_string("little"));
    json_object_object_add(o, "bus-name", json_object_new_string(""));
    json_object_object_add(o, "num-vqs",
                           json_object_new_int((int)vp->info.n_queues));
    json_object_object_add(
        o, "host-features",
        gw_virtio_features_json(vp->info.device_id, vp->info.features));
    json_object_object_add(
        o, "guest-features",
        gw_virtio_features_json(vp->info.device_id, vp->driver_features));
    json_object_object_add(o, "status", gw_virtio_status_json(vp->status));
    json_object_object_add(o, "isr", json_object_new_int(vp->isr));
    json_object_object_add(o, "queue-sel",
                           json_object_new_int(vp->queue_select));
    for (size_t i = 0; i < G_N_ELEMENTS(flags); i++) {
        json_object_object_add(o, flags[i].key,
                               json_object_new_boolean(flags[i].value));
    }
    return o;
}
