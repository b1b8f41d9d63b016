/*
 * pci: one PCI segment's bus 0 — a host bridge, legacy configuration
 * access (0xCF8/0xCFC, segment 0 only) and ECAM, 32 slots each with a
 * fixed window in the segment's part of the PCI hole for its BARs
 * (stable addresses across hotplug, no allocator to fragment), BAR
 * mapping on the MMIO bus as the guest programs BARs and the command
 * register, capability lists.
 *
 * Segments (--platform num_pci_segments): segment 0 keeps the layout it
 * always had, 32 slots of 16 MiB from GW_PCI_MMIO_BASE; segments 1-15
 * get 16 MiB each from GW_PCI_SEG_MMIO_BASE, 32 slots of 512 KiB (a
 * virtio-pci BAR is 16 KiB).  Segment s's ECAM window (bus 0 only) is
 * 1 MiB at GW_PCI_ECAM_BASE + s MiB, as Cloud Hypervisor's.
 *
 * A device embeds a GwPciDevice (config space with per-byte write masks
 * and its BARs) and gives a GwPciDeviceOps table.
 *
 * Threads: everything runs with the VM's device lock held.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <json-c/json.h>
#include <godwit/bus.h>
#include <godwit/vmstate.h>

#define GW_PCI_SLOTS        32
#define GW_PCI_CONFIG_SIZE  4096
#define GW_PCI_MMIO_BASE    0xC0000000ull
#define GW_PCI_SLOT_WINDOW  (16ull << 20)
#define GW_PCI_ECAM_BASE    0xE0000000ull
#define GW_PCI_ECAM_SIZE    (1ull << 20) /* bus 0 only */
#define GW_PCI_MAX_SEGMENTS 16
/* Segments 1 and up: 16 MiB each above the ECAM windows. */
#define GW_PCI_SEG_MMIO_BASE                                                   \
    (GW_PCI_ECAM_BASE + GW_PCI_MAX_SEGMENTS * GW_PCI_ECAM_SIZE)
#define GW_PCI_SEG_MMIO_SIZE (16ull << 20)
#define GW_PCI_CONFIG_ADDR   0xCF8
#define GW_PCI_CONFIG_DATA   0xCFC
#define GW_PCI_MAX_BARS      6

#define PCI_COMMAND_MEMORY  0x2
#define PCI_STATUS_CAP_LIST 0x10

typedef struct GwPciDevice GwPciDevice;

typedef struct {
    const char *name;
    /* After the generic write has updated config space (optional). */
    void (*config_written)(GwPciDevice *dev, unsigned offset, unsigned size);
    /* Before a read, to refresh bytes that are a window onto something
     * else (optional). */
    void (*config_read)(GwPciDevice *dev, unsigned offset, unsigned size);
} GwPciDeviceOps;

typedef struct {
    uint64_t size;      /* 0: unused; a power of two >= 4 KiB */
    uint64_t mapped_at; /* 0 when not on the bus */
    const GwDeviceOps *ops;
    void *opaque;
} GwPciBar;

struct GwPciDevice {
    const GwPciDeviceOps *ops;
    char *id; /* the user's id (QMP), may be NULL for built-ins */
    uint8_t slot;
    uint8_t config[GW_PCI_CONFIG_SIZE];
    uint8_t wmask[GW_PCI_CONFIG_SIZE];
    uint8_t next_cap; /* where the next capability goes */
    GwPciBar bars[GW_PCI_MAX_BARS];
    struct GwPciBus *bus;
};

typedef struct GwPciBus GwPciBus;

/* Where segment `segment` (< GW_PCI_MAX_SEGMENTS) lives in guest
 * physical memory. */
typedef struct {
    uint64_t ecam;        /* GW_PCI_ECAM_SIZE bytes */
    uint64_t mmio_base;   /* the BAR windows of its 32 slots */
    uint64_t slot_window; /* bytes per slot */
} GwPciSegmentLayout;

void gw_pci_segment_layout(uint16_t segment, GwPciSegmentLayout *out);

/*
 * Migratable state.  Saved and loaded on the main thread with the device
 * lock held; neither covers the devices in the slots, each of which is
 * its own section.
 *
 * gw_pci_device_vmsd (object: GwPciDevice, usually nested in the
 * device's own description): the config space bytes.  Nothing else of a
 * BAR needs saving: sizes and handlers are the device's construction,
 * and the mapping follows from the BAR registers and the command
 * register, so post_load maps or unmaps each BAR on the MMIO bus as a
 * guest's config write would.  The function must be plugged (post_load
 * fails otherwise), and into the same slot as on the source.
 *
 * gw_pci_bus_vmsd (object: GwPciBus): 0xCF8 and the host bridge's
 * config space.
 */
extern const GwVmsd gw_pci_device_vmsd;
extern const GwVmsd gw_pci_bus_vmsd;

/* Creates bus 0 of `segment` (< GW_PCI_MAX_SEGMENTS) with its host
 * bridge at slot 0, its slot windows where gw_pci_segment_layout says. */
GwPciBus *gw_pci_bus_new(uint16_t segment, GwBus *mmio);
void gw_pci_bus_free(GwPciBus *bus);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwPciBus, gw_pci_bus_free)

/* The config-access devices to put on the port and MMIO buses. */
extern const GwDeviceOps gw_pci_cf8_ops;  /* 4 bytes at 0xCF8 */
extern const GwDeviceOps gw_pci_cfc_ops;  /* 4 bytes at 0xCFC */
extern const GwDeviceOps gw_pci_ecam_ops; /* GW_PCI_ECAM_SIZE */

/* Initialises all of `dev` as a type-0 function; then add BARs and caps. */
void gw_pci_device_init(GwPciDevice *dev, const GwPciDeviceOps *ops,
                        uint16_t vendor, uint16_t device, uint32_t class_code,
                        uint8_t revision, uint16_t subsys_vendor,
                        uint16_t subsys_id);

/* Declares 32-bit memory BAR `n` of `size` served by ops/opaque. */
void gw_pci_device_set_bar(GwPciDevice *dev, unsigned n, uint64_t size,
                           const GwDeviceOps *ops, void *opaque);

/* Appends a capability of `len` bytes (id and next filled in); returns
 * its offset.  `wmask` (len bytes, may be NULL) marks writable bits. */
unsigned gw_pci_device_add_cap(GwPciDevice *dev, uint8_t cap_id,
                               const uint8_t *body, unsigned len,
                               const uint8_t *wmask);

/*
 * Plugs `dev` into `slot` (0 picks the lowest free one): assigns its
 * BARs their slot window, so they are ready for a guest that does not
 * program them itself.  Fails if the slot is taken, the bus is full or
 * the BARs do not fit this segment's slot window.
 */
bool gw_pci_bus_plug(GwPciBus *bus, GwPciDevice *dev, unsigned slot,
                     GError **errp);

/* Whether gw_pci_bus_plug would find *slot free (0: picks the lowest
 * free one into *slot); the same errors, nothing changed. */
bool gw_pci_bus_free_slot(GwPciBus *bus, unsigned *slot, GError **errp);
/*
 * Back to the power-on state a system reset gives: decoding off (BARs
 * leave the bus), BARs at their slot window.  Only while plugged.
 */
void gw_pci_device_reset(GwPciDevice *dev);

/* Unmaps the BARs and frees the slot (the device is the caller's). */
void gw_pci_bus_unplug(GwPciBus *bus, GwPciDevice *dev);

GwPciDevice *gw_pci_bus_find(GwPciBus *bus, const char *id);

/* Config space access as the guest does it (bus 0 only). */
uint32_t gw_pci_config_read(GwPciBus *bus, unsigned devfn, unsigned offset,
                            unsigned size);
void gw_pci_config_write(GwPciBus *bus, unsigned devfn, unsigned offset,
                         unsigned size, uint32_t value);

/* query-pci's "devices" list for this bus (QEMU's PciDeviceInfo). */
json_object *gw_pci_bus_query(GwPciBus *bus);
uint16_t gw_pci_bus_segment(const GwPciBus *bus);

static inline uint16_t
gw_pci_get16(const GwPciDevice *dev, unsigned off)
{
    return (uint16_t)(dev->config[off] | dev->config[off + 1] << 8);
}
