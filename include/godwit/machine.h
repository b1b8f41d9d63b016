/*
 * machine: the KVM board behind a GwVm that boots a kernel — guest RAM,
 * the in-kernel irqchip and PIT, vCPUs, the port and MMIO buses, COM1,
 * the ACPI PM block and tables, and the Multiboot kernel.
 *
 * Threads: gw_machine_* run on the main thread.  `dev_lock` guards every
 * device's state; vCPU threads hold it around one exit's handling.  The
 * hooks are called on the main thread: the machine hops guest-driven
 * events (ACPI power-off, reset register, a dead vCPU) over with an idle
 * source on the default main context.
 */
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <json-c/json.h>
#include <godwit/config.h>
#include <godwit/memory.h>
#include <godwit/vdpa.h>

typedef struct {
    void (*poweroff)(gpointer opaque);               /* guest wrote S5 */
    void (*reset)(gpointer opaque);                  /* guest reset register */
    void (*fatal)(gpointer opaque, const char *why); /* a vCPU died */
    /* A device whose unplug was requested is gone: the guest ejected it
     * (or a reset did), its backend is reset and released. */
    void (*device_deleted)(gpointer opaque, const char *id);
} GwMachineHooks;

typedef struct GwMachine GwMachine;

/*
 * Builds the whole board, loads the kernel and plugs the --vdpa devices
 * (their paths resolved through `sims`, which may hold the simulated
 * ones); nothing runs yet.
 */
GwMachine *gw_machine_new(const GwConfig *cfg, GwVdpaSimRegistry *sims,
                          const GwMachineHooks *hooks, gpointer opaque,
                          GError **errp);
void gw_machine_free(GwMachine *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwMachine, gw_machine_free)

/*
 * Starts the vCPU threads (none under --qtest), parked when `paused`.
 * Main thread, once.  False with the reason if a thread cannot start.
 */
bool gw_machine_start(GwMachine *m, bool paused, GError **errp);

/*
 * Returns once no vCPU is inside KVM_RUN (at once without vCPUs) and
 * every vDPA device is suspended (gw_vdpa_device_set_vm_running): no
 * device writes guest RAM after it, under --qtest too.  A device that
 * cannot be suspended keeps running, with a warning.  Main thread.
 */
void gw_machine_pause(GwMachine *m);

/* Resumes the vDPA devices, then lets the vCPUs parked by
 * gw_machine_pause run again.  Main thread. */
void gw_machine_resume(GwMachine *m);

/* auto-converge: throttles the vCPUs to run (100 - pct) % of the time
 * (gw_vcpus_set_throttle), 0 … 99, 0 off; nothing without vCPUs (qtest,
 * where the test plays the CPU).  Main thread. */
void gw_machine_set_cpu_throttle(GwMachine *m, unsigned pct);

/* Resets devices and vCPUs and reloads the kernel (vCPUs paused). */
bool gw_machine_reset(GwMachine *m, GError **errp);

void gw_machine_power_button(GwMachine *m);
json_object *gw_machine_query_cpus(GwMachine *m);
/* query-pci's return value: [{bus, devices}] (QEMU's PciInfo list), one
 * per PCI segment, segments past 0 with "x-godwit-segment". */
json_object *gw_machine_query_pci(GwMachine *m);
GwGuestMemory *gw_machine_memory(GwMachine *m);
/*
 * x-godwit-query-exits' return value (caller owns): per bus ("pio",
 * "mmio") every device range's reads and writes and the unclaimed
 * accesses, i.e. each exit a device model handled; with --qtest also
 * "ioeventfd", the writes an ioeventfd took before any device saw them.
 */
json_object *gw_machine_query_exits(GwMachine *m);

/* ---- hotplug (main thread) ---- */

/* Whether a device with this id is on the machine (ids are unique). */
bool gw_machine_has_device(GwMachine *m, const char *id);

/*
 * Hot-plugs a vDPA device: builds the device model for `cfg` on `backend`
 * (a reference is taken), writes `mac` into a net device's config when
 * given, plugs it into `slot` (0: the lowest free one) of PCI segment
 * cfg->pci_segment and tells the guest (that segment's ACPI hotplug).  Returns
 * the slot, or -1 with *errp set and nothing left behind (no device, mapping or
 * slot).
 */
int gw_machine_hotplug_vdpa(GwMachine *m, const GwVdpaConfig *cfg,
                            GwVdpaBackend *backend, const uint8_t *mac,
                            unsigned slot, GError **errp);

/* Whether `slot` (0: any) of PCI segment `segment` is free for a device
 * now; *errp says why not (GW_ERROR_NOT_FOUND: no such segment). */
bool gw_machine_check_slot(GwMachine *m, unsigned segment, unsigned slot,
                           GError **errp);

/*
 * Asks the guest to release device `id` (ACPI eject request); the
 * device_deleted hook follows once it has.  Asking again is harmless.
 * GW_ERROR_NOT_FOUND if there is no such device.
 */
bool gw_machine_unplug_request(GwMachine *m, const char *id, GError **errp);

/*
 * With `id`: the virtio status of that device (gw_vdpa_device_query),
 * NULL if there is none.  Without: [{id, name}] for every virtio
 * device, in the order they were plugged.  Caller owns.
 */
json_object *gw_machine_query_virtio(GwMachine *m, const char *id);

/* The ids of every device on the machine (a new set of new strings). */
GHashTable *gw_machine_device_ids(GwMachine *m);

/* ---- migration (src/machine-state.c) ---- */

/*
 * The board's configuration as the stream's manifest shows it: memory
 * size, accelerator, vCPU count, each vDPA function (id, type, slot,
 * queues) and, with KVM, the CPUID the guest was given.  Caller owns.
 */
json_object *gw_machine_manifest(GwMachine *m);

/*
 * Whether a source with manifest `src` can move into this board: false
 * with "configuration mismatch: the source's X is A, this VM's is B", or
 * the CPUID feature this host cannot give.
 */
bool gw_machine_manifest_check(GwMachine *m, json_object *src, GError **errp);

/* The virtio-iommu's slot on PCI segment 0 (BDF 00:1f.0), when there is
 * one. */
#define GW_MACHINE_IOMMU_SLOT 31

/* x-godwit-query-iommu (gw_virtio_iommu_query); NULL with
 * GW_ERROR_NOT_FOUND when the machine has no virtio-iommu. */
json_object *gw_machine_query_iommu(GwMachine *m, GError **errp);

/* Why the board cannot migrate now (caller frees), or NULL. */
char *gw_machine_migration_blocker(GwMachine *m);

/* x-godwit-query-vdpa-vrings of vDPA device `id` (gw_vdpa_device_
 * query_vrings); NULL with GW_ERROR_NOT_FOUND if there is none. */
json_object *gw_machine_query_vdpa_vrings(GwMachine *m, const char *id,
                                          GError **errp);

/*
 * Every device's state as DEVICE record payloads (GBytes *, caller owns
 * the array): the platform devices, each vDPA function ("vdpa:ID"), each
 * vCPU ("cpu:N") and KVM's irqchips, PIT and clock ("kvm").  Only while
 * the vCPUs are paused.
 */
GPtrArray *gw_machine_save_state(GwMachine *m, GError **errp);

/*
 * Loads what gw_machine_save_state made on the source: every section
 * must be there once and belong to a device of this board.  On error the
 * board must not run (some devices may hold loaded state).
 */
bool gw_machine_load_state(GwMachine *m, GPtrArray *sections, GError **errp);

/*
 * Dirty tracking for pre-copy: the VMM's bitmap, with KVM KVM's dirty
 * log, and every running vDPA device moved onto shadow virtqueues whose
 * relay marks what the device writes.  begin and end on the main thread
 * (end puts the devices back in passthrough); sync ORs what was written
 * since the last sync into `out` (gw_mem_dirty_words long, one bit per
 * memfd page) and may be called from the migration thread.
 * gw_machine_save_state puts the devices back in passthrough too.
 */
bool gw_machine_migration_begin(GwMachine *m, GError **errp);
bool gw_machine_dirty_sync(GwMachine *m, unsigned long *out, GError **errp);
void gw_machine_migration_end(GwMachine *m);

/*
 * cpr-transfer, on the destination: every vDPA device's IOTLB made again
 * over guest RAM's (new) pages, read-only while they are still the
 * source's, read-write once this VM owns them
 * (gw_vdpa_device_remap_memory).  Main thread.
 */
bool gw_machine_remap_vdpa(GwMachine *m, bool writable, GError **errp);
