/*
 * The VM's run state machine.  See include/godwit/vm.h for the contract.
 *
 * Threads: main thread only.  The KVM machine (vCPUs, memory, devices)
 * hangs off vm->machine; without --kernel it is NULL and state changes
 * touch nothing else.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <godwit/machine.h>
#include <godwit/migration.h>
#include <godwit/util.h>
#include <godwit/vdpa-sim.h>
#include <godwit/vm.h>

struct GwVm {
    const GwConfig *cfg;
    GMainLoop *loop;
    GwRunState state;
    GwVdpaSimRegistry *sims; /* simulated vDPA devices (--vdpa-sim) */
    GwMachine *machine;      /* NULL without --kernel or --qtest */
    GwMig *mig;              /* migration in and out */
    GHashTable *netdevs;     /* id → GwNetdev * (netdev_add) */
    GHashTable *drivers;     /* device id → device_add driver */
    GwEventFn event_fn;
    gpointer event_opaque;
    int exit_status;
};

const char *
gw_run_state_name(GwRunState s)
{
    static const char *const names[] = {
        [GW_RUN_PRELAUNCH] = "prelaunch",
        [GW_RUN_RUNNING] = "running",
        [GW_RUN_PAUSED] = "paused",
        [GW_RUN_SHUTDOWN] = "shutdown",
        [GW_RUN_INMIGRATE] = "inmigrate",
        [GW_RUN_POSTMIGRATE] = "postmigrate",
        [GW_RUN_FINISH_MIGRATE] = "finish-migrate",
        [GW_RUN_INTERNAL_ERROR] = "internal-error",
    };
    g_assert((unsigned)s < G_N_ELEMENTS(names));
    return names[s];
}

static void
emit(GwVm *vm, const char *name, json_object *data)
{
    if (vm->event_fn) {
        vm->event_fn(name, data, vm->event_opaque);
    } else {
        json_object_put(data);
    }
}

/*
 * The one place the run state changes, so events and query-status never
 * disagree: leaving `running` emits STOP, entering it RESUME, as QEMU's
 * vm_stop and vm_start do.  Shutting down emits SHUTDOWN instead (the
 * caller's), as QEMU does when it exits.
 */
static void
set_run_state(GwVm *vm, GwRunState state)
{
    GwRunState old = vm->state;

    vm->state = state;
    if (old == state || state == GW_RUN_SHUTDOWN) {
        return;
    }
    if (old == GW_RUN_RUNNING) {
        emit(vm, "STOP", NULL);
    } else if (state == GW_RUN_RUNNING) {
        emit(vm, "RESUME", NULL);
    }
}

static json_object *
shutdown_data(bool guest, const char *reason)
{
    json_object *data = json_object_new_object();
    json_object_object_add(data, "guest", json_object_new_boolean(guest));
    json_object_object_add(data, "reason", json_object_new_string(reason));
    return data;
}

static void
on_guest_poweroff(gpointer opaque)
{
    gw_vm_shutdown(opaque, true, "guest-shutdown");
}

static void
on_guest_reset(gpointer opaque)
{
    GwVm *vm = opaque;
    g_autoptr(GError) err = NULL;
    bool running = vm->state == GW_RUN_RUNNING;

    gw_machine_pause(vm->machine);
    if (!gw_machine_reset(vm->machine, &err)) {
        g_critical("guest reset failed: %s", err->message);
        vm->exit_status = 2;
        gw_vm_shutdown(vm, true, "guest-reset");
        return;
    }
    emit(vm, "RESET", shutdown_data(true, "guest-reset"));
    if (running) {
        gw_machine_resume(vm->machine);
    }
}

static void
on_guest_fatal(gpointer opaque, const char *why)
{
    GwVm *vm = opaque;

    g_critical("the guest cannot continue: %s", why);
    vm->exit_status = 2;
    gw_vm_shutdown(vm, true, "guest-panic");
}

static void
on_device_deleted(gpointer opaque, const char *id)
{
    json_object *data = json_object_new_object();
    g_autofree char *path = g_strdup_printf("/machine/peripheral/%s", id);

    json_object_object_add(data, "device", json_object_new_string(id));
    json_object_object_add(data, "path", json_object_new_string(path));
    emit(opaque, "DEVICE_DELETED", data);
}

static const GwMachineHooks machine_hooks = {
    on_guest_poweroff,
    on_guest_reset,
    on_guest_fatal,
    on_device_deleted,
};

static bool
create_sims(GwVm *vm, GError **errp)
{
    vm->sims = gw_vdpa_sim_registry_new(NULL, errp);
    if (!vm->sims) {
        return false;
    }
    for (guint i = 0; i < vm->cfg->vdpa_sim->len; i++) {
        const GwVdpaSimConfig *s = vm->cfg->vdpa_sim->pdata[i];
        g_autofree char *path = NULL;
        if (!gw_vdpa_sim_add(vm->sims, s, &path, errp)) {
            g_prefix_error(errp, "--vdpa-sim %s: ", s->name);
            return false;
        }
        g_info("vdpa-sim %s (%s): %s", s->name, s->mgmtdev, path);
    }
    return true;
}

GwVdpaSimRegistry *
gw_vm_vdpa_sims(GwVm *vm)
{
    return vm->sims;
}

GwVm *
gw_vm_new(const GwConfig *cfg, GMainLoop *loop, GError **errp)
{
    g_autoptr(GwVm) vm = g_new0(GwVm, 1);

    vm->cfg = cfg;
    vm->loop = g_main_loop_ref(loop);
    vm->state = GW_RUN_PRELAUNCH;
    vm->netdevs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                        (GDestroyNotify)gw_netdev_free);
    vm->drivers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    if (!cfg->kernel && !cfg->qtest_path && cfg->vdpa->len) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "--vdpa needs a machine to plug into: give --kernel");
        return NULL;
    }
    if (!create_sims(vm, errp)) {
        return NULL;
    }
    if (cfg->kernel || cfg->qtest_path) {
        vm->machine = gw_machine_new(cfg, vm->sims, &machine_hooks, vm, errp);
        if (!vm->machine) {
            return NULL;
        }
    }
    vm->mig = gw_mig_new(vm);
    return g_steal_pointer(&vm);
}

void
gw_vm_free(GwVm *vm)
{
    if (!vm) {
        return;
    }
    gw_mig_free(vm->mig);         /* joins its thread: nothing runs now */
    gw_machine_free(vm->machine); /* closes the devices before the sims go */
    g_clear_pointer(&vm->netdevs, g_hash_table_unref);
    g_clear_pointer(&vm->drivers, g_hash_table_unref);
    if (vm->sims) {
        gw_vdpa_sim_registry_free(vm->sims);
    }
    g_main_loop_unref(vm->loop);
    g_free(vm);
}

void
gw_vm_set_event_handler(GwVm *vm, GwEventFn fn, gpointer opaque)
{
    vm->event_fn = fn;
    vm->event_opaque = opaque;
}

GwRunState
gw_vm_run_state(const GwVm *vm)
{
    return vm->state;
}

/* --incoming URI; fd:N names an fd this process inherited. */
static bool
start_incoming(GwVm *vm, GError **errp)
{
    const char *uri = vm->cfg->incoming;
    char *end = NULL;
    long fd = -1;

    if (g_str_has_prefix(uri, "fd:")) {
        fd = strtol(uri + 3, &end, 10);
        if (!*(uri + 3) || *end || fd < 0 || fd > INT_MAX ||
            fcntl((int)fd, F_GETFD) < 0) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "--incoming %s: not an open file descriptor", uri);
            return false;
        }
    }
    if (!gw_mig_incoming(vm->mig, uri, (int)fd, errp)) {
        g_prefix_error(errp, "--incoming: ");
        return false;
    }
    return true;
}

bool
gw_vm_start(GwVm *vm, GError **errp)
{
    bool run = !vm->cfg->incoming && !vm->cfg->start_paused;

    g_assert(vm->state == GW_RUN_PRELAUNCH);
    if (vm->machine && !gw_machine_start(vm->machine, !run, errp)) {
        return false;
    }
    if (vm->cfg->incoming) {
        set_run_state(vm, GW_RUN_INMIGRATE);
        return g_str_equal(vm->cfg->incoming, "defer") ||
               start_incoming(vm, errp);
    }
    if (run) {
        set_run_state(vm, GW_RUN_RUNNING);
    } /* else -S: prelaunch until `cont` */
    return true;
}

bool
gw_vm_pause(GwVm *vm, GwRunState state, GError **errp)
{
    if (vm->state == GW_RUN_SHUTDOWN) {
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY, "the VM has shut down");
        return false;
    }
    if (gw_mig_handed_over(vm->mig)) { /* a reset writes guest RAM */
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                    "The guest was handed over to another process "
                    "(cpr-transfer): its RAM is that process's now");
        return false;
    }
    if (vm->machine) {
        gw_machine_pause(vm->machine);
    }
    set_run_state(vm, state);
    return true;
}

bool
gw_vm_resume(GwVm *vm, GError **errp)
{
    switch (vm->state) {
    case GW_RUN_RUNNING:
        return true;
    case GW_RUN_PAUSED:
    case GW_RUN_PRELAUNCH:
    case GW_RUN_POSTMIGRATE: /* as QEMU: the user's call after a migration */
        if (gw_mig_handed_over(vm->mig)) {
            g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                        "The guest was handed over to another process "
                        "(cpr-transfer): its RAM is that process's now");
            return false;
        }
        break;
    case GW_RUN_INMIGRATE:
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                    "Guest is waiting for an incoming migration");
        return false;
    default:
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                    "Cannot resume a VM in state '%s'",
                    gw_run_state_name(vm->state));
        return false;
    }
    if (vm->machine) {
        gw_machine_resume(vm->machine);
    }
    set_run_state(vm, GW_RUN_RUNNING);
    return true;
}

bool
gw_vm_powerdown(GwVm *vm, GError **errp)
{
    if (vm->machine) {
        gw_machine_power_button(vm->machine);
    }
    emit(vm, "POWERDOWN", NULL);
    return true;
}

bool
gw_vm_reset(GwVm *vm, GError **errp)
{
    bool running = vm->state == GW_RUN_RUNNING;

    if (vm->state == GW_RUN_SHUTDOWN) {
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY, "the VM has shut down");
        return false;
    }
    if (gw_mig_handed_over(vm->mig)) { /* a reset writes guest RAM */
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                    "The guest was handed over to another process "
                    "(cpr-transfer): its RAM is that process's now");
        return false;
    }
    if (vm->machine) {
        gw_machine_pause(vm->machine);
        if (!gw_machine_reset(vm->machine, errp)) {
            return false;
        }
        if (running) {
            gw_machine_resume(vm->machine);
        }
    }
    emit(vm, "RESET", shutdown_data(false, "host-qmp-system-reset"));
    return true;
}

void
gw_vm_shutdown(GwVm *vm, bool guest, const char *reason)
{
    json_object *data;

    if (vm->state == GW_RUN_SHUTDOWN) {
        return;
    }
    if (vm->machine) {
        gw_machine_pause(vm->machine);
    }
    set_run_state(vm, GW_RUN_SHUTDOWN);
    data = shutdown_data(guest, reason);
    emit(vm, "SHUTDOWN", data);
    g_main_loop_quit(vm->loop);
}

int
gw_vm_exit_status(const GwVm *vm)
{
    return vm->exit_status;
}

json_object *
gw_vm_query_pci(GwVm *vm)
{
    return vm->machine ? gw_machine_query_pci(vm->machine)
                       : json_object_new_array();
}

json_object *
gw_vm_query_exits(GwVm *vm)
{
    return vm->machine ? gw_machine_query_exits(vm->machine)
                       : json_object_new_object();
}

json_object *
gw_vm_query_cpus(GwVm *vm)
{
    return vm->machine ? gw_machine_query_cpus(vm->machine)
                       : json_object_new_array();
}

bool
gw_vm_kvm_enabled(const GwVm *vm)
{
    return vm->machine != NULL && !vm->cfg->qtest_path;
}

void
gw_netdev_free(GwNetdev *n)
{
    if (n) {
        gw_vdpa_backend_unref(n->backend);
        g_free(n->id);
        g_free(n->user);
        g_free(n);
    }
}

GHashTable *
gw_vm_netdevs(GwVm *vm)
{
    return vm->netdevs;
}

GHashTable *
gw_vm_device_drivers(GwVm *vm)
{
    return vm->drivers;
}

uint16_t
gw_vm_num_pci_segments(const GwVm *vm)
{
    return vm->cfg->num_pci_segments;
}

uint32_t
gw_vm_iommu_segments(const GwVm *vm)
{
    return vm->cfg->iommu_segments;
}

GwMachine *
gw_vm_machine(GwVm *vm)
{
    return vm->machine;
}

bool
gw_vm_kvm_present(void)
{
    gw_autofd fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    return fd >= 0;
}

/* ---- migration's side of the VM (include/godwit/migration.h) ---- */

void
gw_vm_emit(GwVm *vm, const char *name, json_object *data)
{
    emit(vm, name, data);
}

void
gw_vm_exit(GwVm *vm, int status, const char *reason)
{
    vm->exit_status = status;
    gw_vm_shutdown(vm, false, reason);
}

GwMig *
gw_vm_migration(GwVm *vm)
{
    return vm->mig;
}

char *
gw_vm_migration_blocker(GwVm *vm)
{
    if (!vm->machine) {
        return g_strdup("there is no machine to migrate (no --kernel or "
                        "--qtest)");
    }
    if (vm->state == GW_RUN_SHUTDOWN) {
        return g_strdup("the VM has shut down");
    }
    return gw_machine_migration_blocker(vm->machine);
}

bool
gw_vm_migration_begin(GwVm *vm, GError **errp)
{
    return gw_machine_migration_begin(vm->machine, errp);
}

void
gw_vm_migration_end(GwVm *vm, bool completed, bool resume)
{
    gw_machine_migration_end(vm->machine);
    if (completed) {
        set_run_state(vm, GW_RUN_POSTMIGRATE);
    } else if (resume) {
        gw_machine_resume(vm->machine); /* from finish-migrate */
        set_run_state(vm, GW_RUN_RUNNING);
    } else if (vm->state == GW_RUN_FINISH_MIGRATE) {
        set_run_state(vm, GW_RUN_PAUSED); /* it was paused before */
    }
}

char *
gw_vm_migration_manifest(GwVm *vm, GError **errp)
{
    g_autoptr(json_object) m = gw_machine_manifest(vm->machine);

    return g_strdup(json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN));
}

bool
gw_vm_migration_check_manifest(GwVm *vm, const char *text, GError **errp)
{
    g_autoptr(json_object) src = json_tokener_parse(text);

    if (!src) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "the source's manifest is not JSON");
        return false;
    }
    return gw_machine_manifest_check(vm->machine, src, errp);
}

GPtrArray *
gw_vm_migration_save(GwVm *vm, GError **errp)
{
    return gw_machine_save_state(vm->machine, errp);
}

bool
gw_vm_migration_load(GwVm *vm, GPtrArray *sections, GError **errp)
{
    return gw_machine_load_state(vm->machine, sections, errp);
}

void
gw_vm_migration_incoming_done(GwVm *vm, bool run)
{
    if (run) {
        gw_machine_resume(vm->machine);
    }
    set_run_state(vm, run ? GW_RUN_RUNNING : GW_RUN_PAUSED);
}
