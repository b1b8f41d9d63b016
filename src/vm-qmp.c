/*
 * The VM's QMP commands: run state, power, CPUs, KVM, PCI, and the
 * simulated vDPA devices.  Each is a thin shell over include/godwit/vm.h
 * (and vdpa-sim.h); arguments were already checked against the schema.
 * Main thread.
 */
#include <godwit/machine.h>
#include <godwit/qmp.h>
#include <godwit/util.h>
#include <godwit/vdpa-sim.h>
#include <godwit/vm.h>

static json_object *
empty(void)
{
    return json_object_new_object();
}

static json_object *
query_status(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    GwRunState st = gw_vm_run_state(vm);
    json_object *ret = json_object_new_object();

    json_object_object_add(ret, "status",
                           json_object_new_string(gw_run_state_name(st)));
    json_object_object_add(ret, "singlestep", json_object_new_boolean(false));
    json_object_object_add(ret, "running",
                           json_object_new_boolean(st == GW_RUN_RUNNING));
    return ret;
}

static json_object *
stop(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    if (gw_vm_run_state(vm) != GW_RUN_RUNNING) {
        return empty(); /* as QEMU: stopping a stopped VM is no error */
    }
    return gw_vm_pause(vm, GW_RUN_PAUSED, errp) ? empty() : NULL;
}

static json_object *
cont(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    return gw_vm_resume(vm, errp) ? empty() : NULL;
}

static json_object *
system_powerdown(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    return gw_vm_powerdown(vm, errp) ? empty() : NULL;
}

static json_object *
system_reset(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    return gw_vm_reset(vm, errp) ? empty() : NULL;
}

static gboolean
do_quit(gpointer vm)
{
    gw_vm_shutdown(vm, false, "host-qmp-quit");
    return G_SOURCE_REMOVE;
}

/* As QEMU: the reply first, then SHUTDOWN and the exit. */
static json_object *
quit(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    g_idle_add(do_quit, vm);
    return empty();
}

static json_object *
query_name(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    return empty(); /* godwit has no -name */
}

static json_object *
query_cpus_fast(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    return gw_vm_query_cpus(vm);
}

static json_object *
query_kvm(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    json_object *ret = json_object_new_object();

    json_object_object_add(ret, "enabled",
                           json_object_new_boolean(gw_vm_kvm_enabled(vm)));
    json_object_object_add(ret, "present",
                           json_object_new_boolean(gw_vm_kvm_present()));
    return ret;
}

static json_object *
query_pci(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    return gw_vm_query_pci(vm);
}

static json_object *
query_exits(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    return gw_vm_query_exits(vm);
}

static const char *
opt_str(json_object *args, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(args, key, &v) ? json_object_get_string(v)
                                                    : NULL;
}

static json_object *
sim_add(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    g_autoptr(GwVdpaSimConfig) s = g_new0(GwVdpaSimConfig, 1);
    g_autofree char *path = NULL;
    json_object *cap, *ret;

    s->name = g_strdup(opt_str(args, "name"));
    s->mgmtdev = g_strdup(opt_str(args, "mgmtdev"));
    s->backing = g_strdup(opt_str(args, "backing"));
    s->mac = g_strdup(opt_str(args, "mac"));
    if (json_object_object_get_ex(args, "capacity", &cap)) {
        if (json_object_get_int64(cap) <= 0) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "Parameter 'capacity' must be positive");
            return NULL;
        }
        s->capacity = (uint64_t)json_object_get_int64(cap);
    }
    if (!gw_vdpa_sim_config_check(s, errp) ||
        !gw_vdpa_sim_add(gw_vm_vdpa_sims(vm), s, &path, errp)) {
        return NULL;
    }
    ret = json_object_new_object();
    json_object_object_add(ret, "name", json_object_new_string(s->name));
    json_object_object_add(ret, "path", json_object_new_string(path));
    return ret;
}

static json_object *
sim_del(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    return gw_vdpa_sim_del(gw_vm_vdpa_sims(vm), opt_str(args, "name"), errp)
               ? empty()
               : NULL;
}

static json_object *
sim_query(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    return gw_vdpa_sim_list_json(gw_vm_vdpa_sims(vm));
}

/* Test hook: a simulated device fails as a real one may. */
static json_object *
sim_fail(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    static const char *const kinds[] = {
        [GW_VDPA_SIM_FAIL_NEEDS_RESET] = "needs-reset",
        [GW_VDPA_SIM_FAIL_SUSPEND] = "suspend",
        [GW_VDPA_SIM_FAIL_RESUME] = "resume",
        [GW_VDPA_SIM_FAIL_NO_SUSPEND] = "no-suspend",
        [GW_VDPA_SIM_FAIL_IGNORE_MAC_CONFIG] = "ignore-mac-config",
        [GW_VDPA_SIM_FAIL_OFFER_CTRL_RX] = "offer-ctrl-rx",
        [GW_VDPA_SIM_FAIL_NO_ENABLE_AFTER_DRIVER_OK] =
            "no-enable-after-driver-ok",
    };
    const char *failure = opt_str(args, "failure");
    size_t k = 0;

    while (!g_str_equal(kinds[k], failure)) {
        k++; /* the schema admits only these */
    }
    return gw_vdpa_sim_inject_failure(gw_vm_vdpa_sims(vm),
                                      opt_str(args, "name"),
                                      (GwVdpaSimFailure)k, errp)
               ? empty()
               : NULL;
}

static json_object *
query_vdpa_vrings(GwQmpSession *c, json_object *args, gpointer vm,
                  GError **errp)
{
    GwMachine *m = gw_vm_machine(vm);

    if (!m) {
        g_set_error(errp, GW_ERROR, GW_ERROR_NOT_FOUND,
                    "Device '%s' is no vDPA device", opt_str(args, "id"));
        return NULL;
    }
    return gw_machine_query_vdpa_vrings(m, opt_str(args, "id"), errp);
}

static json_object *
query_iommu(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    GwMachine *m = gw_vm_machine(vm);

    if (!m) {
        g_set_error(errp, GW_ERROR, GW_ERROR_NOT_FOUND,
                    "there is no virtio-iommu: the VM has no machine");
        return NULL;
    }
    return gw_machine_query_iommu(m, errp);
}

/* ---- x-query-virtio, x-query-virtio-status: QEMU 7.2's shapes ---- */

#define VIRTIO_PATH_PREFIX "/machine/peripheral/"
#define VIRTIO_PATH_SUFFIX "/virtio-backend"

static json_object *
query_virtio(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    json_object *ret = json_object_new_array(), *devs;
    GwMachine *m = gw_vm_machine(vm);

    if (!m) {
        return ret;
    }
    devs = gw_machine_query_virtio(m, NULL);
    for (size_t i = 0; i < json_object_array_length(devs); i++) {
        json_object *d = json_object_array_get_idx(devs, i), *id, *name;
        json_object *o = json_object_new_object();
        g_autofree char *path = NULL;

        json_object_object_get_ex(d, "id", &id);
        json_object_object_get_ex(d, "name", &name);
        path = g_strconcat(VIRTIO_PATH_PREFIX, json_object_get_string(id),
                           VIRTIO_PATH_SUFFIX, NULL);
        json_object_object_add(o, "name", json_object_get(name));
        json_object_object_add(o, "path", json_object_new_string(path));
        json_object_array_add(ret, o);
    }
    json_object_put(devs);
    return ret;
}

static json_object *
query_virtio_status(GwQmpSession *c, json_object *args, gpointer vm,
                    GError **errp)
{
    const char *path = opt_str(args, "path");
    GwMachine *m = gw_vm_machine(vm);
    json_object *ret = NULL;

    if (m && g_str_has_prefix(path, VIRTIO_PATH_PREFIX) &&
        g_str_has_suffix(path, VIRTIO_PATH_SUFFIX)) {
        size_t n = strlen(path) - strlen(VIRTIO_PATH_PREFIX) -
                   strlen(VIRTIO_PATH_SUFFIX);
        g_autofree char *id = g_strndup(path + strlen(VIRTIO_PATH_PREFIX), n);
        if (n && !strchr(id, '/')) {
            ret = gw_machine_query_virtio(m, id);
        }
    }
    if (!ret) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "Path %s is not a VirtIODevice", path);
        return NULL;
    }
    json_object_object_add(
        ret, "vm-running",
        json_object_new_boolean(gw_vm_run_state(vm) == GW_RUN_RUNNING));
    return ret;
}

void
gw_vm_qmp_register(GwVm *vm, GwQmpServer *s)
{
    static const struct {
        const char *name;
        GwQmpHandler fn;
    } cmds[] = {
        {"query-status", query_status},
        {"stop", stop},
        {"cont", cont},
        {"system_powerdown", system_powerdown},
        {"system_reset", system_reset},
        {"quit", quit},
        {"query-name", query_name},
        {"query-cpus-fast", query_cpus_fast},
        {"query-kvm", query_kvm},
        {"query-pci", query_pci},
        {"x-godwit-vdpa-sim-add", sim_add},
        {"x-godwit-vdpa-sim-del", sim_del},
        {"x-godwit-query-vdpa-sim", sim_query},
        {"x-godwit-vdpa-sim-fail", sim_fail},
        {"x-query-virtio", query_virtio},
        {"x-query-virtio-status", query_virtio_status},
        {"x-godwit-query-exits", query_exits},
        {"x-godwit-query-vdpa-vrings", query_vdpa_vrings},
        {"x-godwit-query-iommu", query_iommu},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++) {
        gw_qmp_server_register(s, cmds[i].name, cmds[i].fn, vm);
    }
    gw_vm_hotplug_register(vm, s);
    gw_vm_migrate_register(vm, s);
    gw_vm_set_event_handler(vm, gw_qmp_server_emit, s);
}
