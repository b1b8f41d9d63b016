/*
 * The VM's QMP commands: run state, power, CPUs, KVM, PCI, and the
 * simulated vDPA devices.  Each is a thin shell over include/godwit/vm.h
 * (and vdpa-sim.h); arguments were already checked against the schema.
 * Main thread.
 */
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
        {"x-godwit-query-exits", query_exits},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++) {
        gw_qmp_server_register(s, cmds[i].name, cmds[i].fn, vm);
    }
    gw_vm_hotplug_register(vm, s);
    gw_vm_set_event_handler(vm, gw_qmp_server_emit, s);
}
