/*
 * virtio-pci: the modern (virtio 1.x, no legacy) PCI transport.  The
 * transport keeps the common configuration (feature windows, status,
 * queue sizes and addresses, MSI-X vectors) and hands a device backend
 * the negotiated features and ready queues at DRIVER_OK, each queue with
 * a kick eventfd (a KVM ioeventfd on its notify address) and a call
 * eventfd (a KVM irqfd on its MSI-X vector's route): once activated, the
 * VMM is out of the data path.
 *
 * BAR 0 (16 KiB): common config at 0x0000, ISR at 0x1000, device config
 * at 0x2000, notify at 0x3000 (queue i at 0x3000 + 4 i).  BAR 1: MSI-X.
 * A VIRTIO_PCI_CAP_PCI_CFG capability reaches BAR 0 through config
 * space as well, for firmware that cannot map the BAR.
 *
 * Threads: with the VM's device lock held, like every device.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>
#include <godwit/irq.h>
#include <godwit/msix.h>
#include <godwit/pci.h>
#include <godwit/vmstate.h>

#define GW_VIRTIO_MAX_QUEUES 64

#define GW_VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define GW_VIRTIO_STATUS_DRIVER      0x02
#define GW_VIRTIO_STATUS_DRIVER_OK   0x04
#define GW_VIRTIO_STATUS_FEATURES_OK 0x08
#define GW_VIRTIO_STATUS_NEEDS_RESET 0x40
#define GW_VIRTIO_STATUS_FAILED      0x80
#define GW_VIRTIO_F_VERSION_1        32

#define GW_VIRTIO_PCI_COMMON        0x0000
#define GW_VIRTIO_PCI_ISR           0x1000
#define GW_VIRTIO_PCI_DEVICE        0x2000
#define GW_VIRTIO_PCI_NOTIFY        0x3000
#define GW_VIRTIO_PCI_BAR_SIZE      0x4000
#define GW_VIRTIO_NOTIFY_MULTIPLIER 4

typedef struct {
    uint16_t size;
    bool enabled;
    uint64_t desc, avail, used; /* guest physical */
    int kick_fd, call_fd;       /* eventfds owned by the transport */
    /* Where the device goes on: 0 at a driver's start; at a restore,
     * the indices the source's device stopped at. */
    uint16_t last_avail, last_used;
} GwVirtqueueSetup;

typedef struct {
    uint64_t features; /* negotiated */
    unsigned n_queues;
    const GwVirtqueueSetup *queues;
} GwVirtioActivation;

typedef struct {
    /* Starts the device with the driver's setup; false marks it broken. */
    bool (*activate)(void *opaque, const GwVirtioActivation *a, GError **errp);
    /* Status 0 written, or the device is going away. */
    void (*reset)(void *opaque);
    void (*config_read)(void *opaque, unsigned off, void *buf, unsigned len);
    void (*config_write)(void *opaque, unsigned off, const void *buf,
                         unsigned len);
    /*
     * Optional, both or neither: a device that can be saved and
     * restored while running.  ring_state, at save of a started
     * function (the device quiescent), gives enabled queue `idx`'s ring
     * indices.  restore, at load of a running function, starts the
     * device where the source's stopped, with no guest write: the
     * queues' last_avail/last_used and the source's device config
     * space (`config`, `config_len` bytes); false fails the load.
     */
    bool (*ring_state)(void *opaque, unsigned idx, const GwVirtqueueSetup *q,
                       uint16_t *last_avail, uint16_t *last_used,
                       GError **errp);
    bool (*restore)(void *opaque, const GwVirtioActivation *a,
                    const uint8_t *config, unsigned config_len, GError **errp);
} GwVirtioDeviceOps;

/* The device config space a running function's state carries. */
#define GW_VIRTIO_CONFIG_SAVE_MAX 256

typedef struct {
    uint32_t device_id; /* virtio device id: 1 net, 2 blk, … */
    uint64_t features;  /* offered to the driver */
    unsigned n_queues;
    uint16_t queue_max; /* power of two */
    unsigned config_size;
    /* Of `features`, what the driver must accept: FEATURES_OK fails
     * without (last: positional initialisers leave it 0). */
    uint64_t required_features;
} GwVirtioDeviceInfo;

typedef struct GwVirtioPci GwVirtioPci;

/*
 * A virtio-pci function for a backend.  The PCI ids follow virtio 1.x
 * (vendor 0x1af4, device 0x1040 + id) so guests bind their drivers.
 * `irq` provides routes, irqfds and ioeventfds.  NULL with *errp if
 * eventfds cannot be created.
 */
GwVirtioPci *gw_virtio_pci_new(const GwVirtioDeviceInfo *info,
                               const GwVirtioDeviceOps *ops, void *opaque,
                               const GwIrqChip *irq, GError **errp);
/* Unbinds its eventfds and frees it; resetting the backend is the
 * owner's (it knows how to tear its device down). */
void gw_virtio_pci_free(GwVirtioPci *vp);

/* A system reset: status 0 (the backend is reset), MSI-X disabled. */
void gw_virtio_pci_reset(GwVirtioPci *vp);

GwPciDevice *gw_virtio_pci_device(GwVirtioPci *vp);

/* The backend's config changed (ISR bit 1 + config vector). */
void gw_virtio_pci_config_changed(GwVirtioPci *vp);

/* The backend failed: NEEDS_RESET in status, config interrupt. */
void gw_virtio_pci_set_needs_reset(GwVirtioPci *vp);

uint8_t gw_virtio_pci_status(const GwVirtioPci *vp);

/* Whether DRIVER_OK (with FEATURES_OK) started the backend and no reset
 * has stopped it since; true too if the backend failed to start. */
bool gw_virtio_pci_started(const GwVirtioPci *vp);

/* Queue `idx` as the driver set it up, with the transport's eventfds
 * (last_avail/last_used: 0).  False if there is no such queue. */
bool gw_virtio_pci_queue(const GwVirtioPci *vp, unsigned idx,
                         GwVirtqueueSetup *out);

/*
 * The function's migratable state (object: GwVirtioPci), one encoding:
 * its config space (gw_pci_device_vmsd, nested), its MSI-X table and
 * pending bits (gw_msix_vmsd, nested), the common configuration
 * (feature selectors, driver features, config vector, queue select,
 * status, generation, ISR) and each queue's size, vector, enable and
 * ring addresses.  Never the eventfds, their bindings, the backend or
 * its ops: those are the destination's.
 *
 * pre_save moves interrupts that masked vectors' queues signalled into
 * the pending bits (they wait in the call eventfds otherwise).
 *
 * Version 2 adds, for a started function whose device has ring_state
 * and restore ops: each queue's last_avail/last_used (from ring_state)
 * and the device's config space (its first GW_VIRTIO_CONFIG_SAVE_MAX
 * bytes), with ring_state 1 saying they are there.
 *
 * post_load, after the nested ones (BARs mapped, MSI routes rebuilt):
 * refuses a stream of another virtio device type or with an invalid
 * queue size; refuses a device whose status has DRIVER_OK with
 * "virtio-pci XX.0: restoring a running device is not supported yet"
 * (GW_ERROR_BUSY) when this device has no restore op, or when the
 * stream carries no ring state; otherwise re-syncs irqfds and
 * ioeventfds, and a running device is restored (ops->restore).
 * After a failed post_load the function holds the loaded fields and
 * must not run (see gw_vmsd_load).
 *
 * Load only into a function built with the same GwVirtioDeviceInfo and
 * plugged into the same slot as on the source.  Saved and loaded on the
 * main thread with the device lock held.
 */
extern const GwVmsd gw_virtio_pci_vmsd;

/* gw_vmsd_save / gw_vmsd_load of gw_virtio_pci_vmsd on `vp`, with their
 * contracts: a refused encoding leaves `vp` unchanged; `in` is left after
 * it (whether anything may follow is the caller's to check). */
bool gw_virtio_pci_save(GwVirtioPci *vp, GwMigBuf *out, GError **errp);
bool gw_virtio_pci_load(GwVirtioPci *vp, GwMigCursor *in, GError **errp);

/*
 * The transport's part of QEMU's x-query-virtio-status (VirtioStatus):
 * name, device-id, num-vqs, the offered and negotiated features and
 * the status decoded, isr, queue-sel, started, broken (NEEDS_RESET
 * set) and QEMU's fixed fields.  Names are the spec's macro names
 * (QEMU appends a description after a colon).  Caller owns.
 */
json_object *gw_virtio_pci_query(const GwVirtioPci *vp);

/* QEMU's VirtioDeviceFeatures for `features` of a device of type
 * `device_id`: transports, dev-features, and the bits neither names as
 * unknown-dev-features.  Caller owns. */
json_object *gw_virtio_features_json(uint32_t device_id, uint64_t features);

/* QEMU's VirtioDeviceStatus for `status`: statuses by name, and
 * unknown-statuses for the bits without one.  Caller owns. */
json_object *gw_virtio_status_json(uint8_t status);

/* QEMU's name for a virtio device type: "virtio-net", "virtio-blk", … */
const char *gw_virtio_device_name(uint32_t device_id);
