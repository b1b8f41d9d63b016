/*
 * vm: one virtual machine's lifecycle: run state, pause/resume, reset,
 * power button, shutdown, and the events each change emits.
 *
 * A VM without --kernel is a machine with no vCPUs and no guest (QEMU's
 * `-machine none`, which libvirt probes with): its run state still works,
 * so QMP is fully usable, but nothing executes.  With --kernel, the VM
 * owns /dev/kvm, guest RAM, the vCPU threads and the devices.
 *
 * Threads: every function here is called on the main thread (the GLib
 * main loop), which owns the run state.  vCPU threads report guest-driven
 * changes (ACPI power-off, reset, triple fault, an eject) through an idle
 * source attached to the main context (src/machine.c `post`; not
 * g_main_context_invoke, which would run the handler on the vCPU thread
 * whenever the main context is unowned), never by touching the run state
 * themselves.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <json-c/json.h>
#include <godwit/config.h>

/* QEMU's RunState values, in QEMU's spelling (gw_run_state_name). */
typedef enum {
    GW_RUN_PRELAUNCH,
    GW_RUN_RUNNING,
    GW_RUN_PAUSED,
    GW_RUN_SHUTDOWN,
    GW_RUN_INMIGRATE,
    GW_RUN_POSTMIGRATE,
    GW_RUN_FINISH_MIGRATE,
    GW_RUN_INTERNAL_ERROR,
} GwRunState;

const char *gw_run_state_name(GwRunState s);

/*
 * Receives every event the VM emits, QMP-shaped: `name` is the QMP event
 * name ("STOP", "RESUME", "SHUTDOWN", "POWERDOWN", "RESET", …), `data`
 * its data object or NULL; ownership of `data` passes to the callee.
 * Called on the main thread.
 */
typedef void (*GwEventFn)(const char *name, json_object *data, gpointer opaque);

typedef struct GwVm GwVm;

/*
 * Creates the VM described by `cfg` (which must outlive it): with
 * cfg->kernel, opens /dev/kvm, creates guest RAM, vCPUs and devices and
 * loads the kernel; without, a machine with nothing to run.  `loop` is
 * quit when the VM shuts down.  Nothing runs until gw_vm_start.
 * Returns NULL with *errp set on failure, having released everything.
 */
GwVm *gw_vm_new(const GwConfig *cfg, GMainLoop *loop, GError **errp);
void gw_vm_free(GwVm *vm);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwVm, gw_vm_free)

/* Where events go (one receiver; NULL to drop them). */
void gw_vm_set_event_handler(GwVm *vm, GwEventFn fn, gpointer opaque);

/*
 * Starts the vCPUs: prelaunch → running, or inmigrate when the config
 * says --incoming (then the migration code resumes it), or stays in
 * prelaunch with the vCPUs parked when it says start_paused (QEMU's -S;
 * `cont` runs them).
 */
bool gw_vm_start(GwVm *vm, GError **errp);

GwRunState gw_vm_run_state(const GwVm *vm);

/*
 * Stops every vCPU (returns once none is inside KVM_RUN) and enters
 * `state` (GW_RUN_PAUSED for QMP `stop`), emitting STOP if the VM was
 * running.  Pausing a paused VM only changes the state.  Devices are not
 * quiesced: a vDPA device goes on serving requests the guest queued
 * before the pause (and writing guest RAM) until it has none left.
 */
bool gw_vm_pause(GwVm *vm, GwRunState state, GError **errp);

/*
 * Resumes vCPUs (QMP `cont`): emits RESUME.  Refused with *errp in
 * states a user cannot resume from (inmigrate, shutdown,
 * internal-error, postmigrate).
 */
bool gw_vm_resume(GwVm *vm, GError **errp);

/* Presses the ACPI power button (QMP system_powerdown): emits POWERDOWN. */
bool gw_vm_powerdown(GwVm *vm, GError **errp);

/* Resets vCPUs and devices and reboots the kernel: emits RESET. */
bool gw_vm_reset(GwVm *vm, GError **errp);

/*
 * Shuts the VM down: vCPUs stopped, state shutdown, SHUTDOWN {guest,
 * reason} emitted, main loop quit.  `reason` is QEMU's ShutdownCause
 * name ("host-qmp-quit", "guest-shutdown", "host-signal", …).
 */
void gw_vm_shutdown(GwVm *vm, bool guest, const char *reason);

/* The process exit status the VM's end asks for (0 for a clean one). */
int gw_vm_exit_status(const GwVm *vm);

/* The simulated vDPA devices (--vdpa-sim, x-godwit-vdpa-sim-*). */
typedef struct GwVdpaSimRegistry GwVdpaSimRegistry;
GwVdpaSimRegistry *gw_vm_vdpa_sims(GwVm *vm);

/* QMP query-pci's return value (caller owns). */
json_object *gw_vm_query_pci(GwVm *vm);

/* x-godwit-query-exits' return value, {} without a machine (caller owns). */
json_object *gw_vm_query_exits(GwVm *vm);

/* QMP query-cpus-fast's return value (caller owns). */
json_object *gw_vm_query_cpus(GwVm *vm);

/* Registers the VM's QMP commands on `s` and sends its events there. */
typedef struct GwQmpServer GwQmpServer;
void gw_vm_qmp_register(GwVm *vm, GwQmpServer *s);

/* ---- hotplug: host-side network backends and the machine ---- */

/* A netdev_add'ed backend, waiting for (or used by) a device_add. */
typedef struct GwVdpaBackend GwVdpaBackend;
typedef struct {
    char *id;
    GwVdpaBackend *backend; /* owned reference */
    unsigned queues;        /* queue pairs asked for; 0: all */
    char *user;             /* the device using it, or NULL */
} GwNetdev;
void gw_netdev_free(GwNetdev *n);

/* id → GwNetdev * (owned by the VM). */
GHashTable *gw_vm_netdevs(GwVm *vm);

/* Device id → the device_add driver it was made with (static strings;
 * stale ids are harmless: only ids the machine still has are read). */
GHashTable *gw_vm_device_drivers(GwVm *vm);

/* --platform num_pci_segments. */
uint16_t gw_vm_num_pci_segments(const GwVm *vm);
/* --platform iommu_segments (a bitmap of segments). */
uint32_t gw_vm_iommu_segments(const GwVm *vm);

/* Registers device_add, device_del, netdev_add, netdev_del and
 * x-godwit-vdpa-add (src/vm-hotplug.c); gw_vm_qmp_register calls it. */
void gw_vm_hotplug_register(GwVm *vm, GwQmpServer *s);

/* The machine devices plug into; NULL without --kernel or --qtest. */
typedef struct GwMachine GwMachine;
GwMachine *gw_vm_machine(GwVm *vm);

/* Whether KVM is used: QMP query-kvm {enabled, present}. */
bool gw_vm_kvm_enabled(const GwVm *vm);
bool gw_vm_kvm_present(void);

/* ---- what migration needs of the VM (migration/; main thread) ---- */

typedef struct GwMig GwMig;
typedef struct GwMachine GwMachine;

/* Registers the migrate* and query-migrate* QMP commands (vm-migrate.c). */
void gw_vm_migrate_register(GwVm *vm, GwQmpServer *s);

/* The VM's migration controller. */
GwMig *gw_vm_migration(GwVm *vm);

/* Emits a QMP event (ownership of `data` passes). */
void gw_vm_emit(GwVm *vm, const char *name, json_object *data);

/* Shuts down with SHUTDOWN {reason} and makes the process exit `status`. */
void gw_vm_exit(GwVm *vm, int status, const char *reason);

/* Why the VM cannot migrate now (caller frees), or NULL. */
char *gw_vm_migration_blocker(GwVm *vm);

/* Starts dirty tracking for a migration out. */
bool gw_vm_migration_begin(GwVm *vm, GError **errp);

/*
 * A migration out ended: dirty tracking stops; `completed` enters
 * postmigrate; otherwise the VM runs again if `resume` (it ran before
 * the switch-over paused it), or stays paused.
 */
void gw_vm_migration_end(GwVm *vm, bool completed, bool resume);

/* The manifest as JSON text (caller frees). */
char *gw_vm_migration_manifest(GwVm *vm, GError **errp);

/* Whether the source's manifest `text` fits this VM (reason if not). */
bool gw_vm_migration_check_manifest(GwVm *vm, const char *text, GError **errp);

/* Device sections at switch-over (paused VM); NULL with *errp. */
GPtrArray *gw_vm_migration_save(GwVm *vm, GError **errp);

/* Loads the source's device sections into this (inmigrate) VM. */
bool gw_vm_migration_load(GwVm *vm, GPtrArray *sections, GError **errp);

/* The incoming migration is complete: running (RESUME) if the source ran,
 * else paused. */
void gw_vm_migration_incoming_done(GwVm *vm, bool run);
