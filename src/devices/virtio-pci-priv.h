/*
 * virtio-pci-priv: the transport's state, shared by virtio-pci.c (the
 * registers and the data path's set-up) and virtio-pci-state.c (its
 * migratable state).  Threads: include/godwit/virtio-pci.h.
 */
#pragma once

#include <godwit/virtio-pci.h>

typedef struct {
    uint16_t size, vector;
    bool enabled;
    uint64_t desc, avail, used;
    int kick_fd, call_fd;
    int bound_gsi;                  /* irqfd bound to this GSI, or -1 */
    uint64_t ioeventfd_at;          /* registered notify address, or 0 */
    uint16_t last_avail, last_used; /* the device's, saved when running */
} GwVirtioQueue;

struct GwVirtioPci {
    GwPciDevice pci; /* first: config_written gets this pointer */
    GwMsix msix;     /* embedded, so gw_virtio_pci_vmsd nests its state */
    GwVirtioDeviceInfo info;
    const GwVirtioDeviceOps *ops;
    void *opaque;
    const GwIrqChip *irq;
    uint32_t dfselect, gfselect;
    uint64_t driver_features;
    uint16_t config_vector, queue_select;
    uint8_t status, generation, isr;
    bool activated;
    unsigned cfg_cap; /* VIRTIO_PCI_CAP_PCI_CFG's offset in config space */
    GwVirtioQueue q[GW_VIRTIO_MAX_QUEUES];
    /* A running device's state, filled at save (ring_state 1). */
    uint8_t ring_state;
    uint32_t config_len;
    uint8_t config[GW_VIRTIO_CONFIG_SAVE_MAX];
    uint32_t dev_state_len; /* version 3: ops->save_state's bytes */
    uint8_t dev_state[GW_VIRTIO_DEV_STATE_MAX];
};

/* Keeps every queue's irqfd and ioeventfd as the state says. */
void gw_virtio_pci_sync_queues(GwVirtioPci *vp);

/* Queue `q` for the device ops (last_avail/last_used 0). */
GwVirtqueueSetup gw_virtio_pci_queue_setup(const GwVirtioQueue *q);
