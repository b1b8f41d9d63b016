/*
 * The board's state, shared by src/machine.c (building and running it)
 * and src/machine-state.c (its device registry and migration).  Threads
 * and locking: include/godwit/machine.h.
 */
#pragma once

#include <godwit/acpi-pcihp.h>
#include <godwit/acpi-pm.h>
#include <godwit/boot.h>
#include <godwit/bus.h>
#include <godwit/chardev.h>
#include <godwit/kvm.h>
#include <godwit/machine.h>
#include <godwit/pci.h>
#include <godwit/qtest.h>
#include <godwit/serial.h>
#include <godwit/soft-irq.h>
#include <godwit/vcpu.h>
#include <godwit/vdpa-device.h>

struct GwMachine {
    const GwConfig *cfg;
    const GwMachineHooks *hooks;
    gpointer opaque;
    GMutex dev_lock;
    GwKvm *kvm;          /* the KVM accelerator, or with --qtest: */
    GwSoftIrq *soft_irq; /* interrupts in software */
    GwQtest *qtest;      /* and a test playing the CPU */
    const GwIrqChip *irqchip;
    GwGuestMemory *mem;
    GwBus *pio, *mmio;
    GwChardev *chardev;
    GwSerial *serial;
    GwAcpiPm *pm;
    GwAcpiPcihp *pcihp;
    /* Bus 0 of each PCI segment: [0] is a platform device (the table
     * below), 1..num_pci_segments-1 machine-pci.c's. */
    GwPciBus *pci[GW_PCI_MAX_SEGMENTS];
    GPtrArray *vdpa_backends; /* GwVdpaBackend *, one per --vdpa */
    GPtrArray *vdpa;          /* GwVdpaDevice *, cold- and hot-plugged */
    GPtrArray *ejected;       /* GwVdpaDevice *: off the bus, to release */
    GwVirtioIommu *iommu;     /* or NULL: machine-iommu.c */
    GwVcpus *vcpus;
    bool vm_stopped; /* paused (or started paused): main thread */
    bool migrating;  /* a migration out runs: dev_lock */
    GwBootImage boot;
};

/*
 * One platform device: created (and mapped on its buses) by `create`,
 * which stores it at `offset`; reset and freed by the table's walkers;
 * migrated as the section `id` described by `vmsd`.
 */
typedef struct {
    const char *id;
    size_t offset; /* of the device's pointer in GwMachine */
    bool (*create)(GwMachine *m, GError **errp);
    void (*reset)(void *dev); /* NULL: nothing to reset */
    void (*free)(void *dev);
    const struct GwVmsd *vmsd;
} GwMachineDevice;

/* The table, in creation order. */
const GwMachineDevice *gw_machine_devices(size_t *n);

/* The device `d` describes, in `m`. */
void *gw_machine_device(GwMachine *m, const GwMachineDevice *d);

/* ---- PCI segments (machine-pci.c) ---- */

/* Buses of segments 1..num_pci_segments-1 with their ECAM windows. */
bool gw_machine_create_segments(GwMachine *m, GError **errp);
void gw_machine_free_segments(GwMachine *m);
unsigned gw_machine_n_segments(const GwMachine *m);
/* Segment `s`'s bus, or NULL with an error naming both s and how many
 * segments there are. */
GwPciBus *gw_machine_segment(GwMachine *m, unsigned s, GError **errp);

/* ---- the virtio-iommu (machine-iommu.c) ---- */

/* Makes and plugs the IOMMU if the config wants one; after the PCI
 * buses, before the vDPA devices. */
bool gw_machine_create_iommu(GwMachine *m, GError **errp);
/* Unplugs and frees it; after every vDPA device is gone. */
void gw_machine_free_iommu(GwMachine *m);
/* A system reset of it (device lock held), before the vDPA devices'. */
void gw_machine_reset_iommu(GwMachine *m);
/* Makes an iommu=on device, in its slot, an endpoint (device lock held);
 * true for any other device. */
bool gw_machine_attach_iommu(GwMachine *m, GwVdpaDevice *d, GError **errp);
/* Fills the VIOT part of `acpi` (nothing without an IOMMU); `endpoints`
 * (of uint32_t) holds the endpoint list and must outlive `acpi`. */
void gw_machine_iommu_acpi(GwMachine *m, GwAcpiConfig *acpi, GArray *endpoints);
