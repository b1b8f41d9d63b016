/*
 * The commands of libvirt's capability probe and of its read-back at
 * domain start.  See include/godwit/qmp-probe.h.  The answers are
 * tables: each QOM type godwit can make, with the properties its
 * command line or device_add takes; the one machine; the options of the
 * QEMU command line (src/qemu-cli.c) with their keys.  Main thread.
 */
#include <string.h>
#include <godwit/qmp-probe.h>
#include <godwit/util.h>

struct GwQmpProbe {
    GwVm *vm;
    const GwQemuCli *q; /* NULL: godwit's own command line */
};
typedef GwQmpProbe Probe;

/*
 * A type godwit has: `props` is QEMU's ObjectPropertyInfo list as JSON
 * (what the type takes in godwit, not everything QEMU's takes), `device`
 * whether device-list-properties knows it (qom-list-properties knows
 * every type).
 */
static const struct {
    const char *name, *parent;
    bool device;
    const char *props;
} types[] = {
    {"none-machine", "machine", false,
     "[{\"name\":\"memory-backend\",\"type\":\"link<memory-backend>\"},"
     "{\"name\":\"dump-guest-core\",\"type\":\"bool\"},"
     "{\"name\":\"usb\",\"type\":\"bool\"},"
     "{\"name\":\"graphics\",\"type\":\"bool\"}]"},
    {GW_QEMU_MACHINE_PC "-machine", "generic-pc-machine", false,
     "[{\"name\":\"memory-backend\",\"type\":\"link<memory-backend>\"},"
     "{\"name\":\"dump-guest-core\",\"type\":\"bool\"},"
     "{\"name\":\"usb\",\"type\":\"bool\"},"
     "{\"name\":\"graphics\",\"type\":\"bool\"}]"},
    {"kvm-accel", "accel", false, "[]"},
    {"host-x86_64-cpu", "x86_64-cpu", false,
     "[{\"name\":\"migratable\",\"type\":\"bool\"}]"},
    {"memory-backend-ram", "memory-backend", false,
     "[{\"name\":\"size\",\"type\":\"int\"},"
     "{\"name\":\"share\",\"type\":\"bool\"}]"},
    {"memory-backend-memfd", "memory-backend", false,
     "[{\"name\":\"size\",\"type\":\"int\"},"
     "{\"name\":\"share\",\"type\":\"bool\"},"
     "{\"name\":\"hugetlb\",\"type\":\"bool\"}]"},
    {"isa-serial", "isa-device", true,
     "[{\"name\":\"chardev\",\"type\":\"str\"},"
     "{\"name\":\"index\",\"type\":\"uint32\"}]"},
    {"virtio-net-pci", "virtio-net-pci-base", true,
     "[{\"name\":\"netdev\",\"type\":\"str\",\"description\":\"ID of a "
     "netdev to use as a backend\"},"
     "{\"name\":\"mac\",\"type\":\"str\",\"description\":\"Ethernet 6-byte "
     "MAC Address, example: 52:54:00:12:34:56\"},"
     "{\"name\":\"addr\",\"type\":\"int32\",\"description\":\"Slot and "
     "optional function number, example: 06.0 or 06\"}]"},
    {"vhost-vdpa-device-pci", "virtio-pci", true,
     "[{\"name\":\"vhostdev\",\"type\":\"str\"},"
     "{\"name\":\"queue-size\",\"type\":\"uint16\"},"
     "{\"name\":\"addr\",\"type\":\"int32\"}]"},
};

static json_object *
parse(const char *json)
{
    json_object *j = json_tokener_parse(json);

    g_assert(j); /* our own tables */
    return j;
}

static json_object *
query_target(GwQmpSession *c, json_object *args, gpointer p, GError **errp)
{
    return parse("{\"arch\":\"x86_64\"}");
}

static json_object *
qom_list_types(GwQmpSession *c, json_object *args, gpointer p, GError **errp)
{
    json_object *ret = json_object_new_array(), *impl = NULL;

    json_object_object_get_ex(args, "implements", &impl);
    for (size_t i = 0; i < G_N_ELEMENTS(types); i++) {
        json_object *t;
        if (impl && strcmp(json_object_get_string(impl), types[i].name) &&
            strcmp(json_object_get_string(impl), types[i].parent)) {
            continue;
        }
        t = json_object_new_object();
        json_object_object_add(t, "name",
                               json_object_new_string(types[i].name));
        json_object_object_add(t, "parent",
                               json_object_new_string(types[i].parent));
        json_object_array_add(ret, t);
    }
    return ret;
}

static json_object *
list_properties(json_object *args, bool device, GError **errp)
{
    json_object *jname = NULL;
    const char *name;

    json_object_object_get_ex(args, "typename", &jname);
    name = json_object_get_string(jname);
    for (size_t i = 0; i < G_N_ELEMENTS(types); i++) {
        if (strcmp(types[i].name, name) == 0 && (types[i].device || !device)) {
            return parse(types[i].props);
        }
    }
    if (!device) {
        /*
         * QEMU says DeviceNotFound "Class 'x' not found", but libvirt
         * 9.0's probe dies on it (libvirtd itself exits: QEMU has every
         * memory-backend-* class it asks about).  An empty list reads as
         * "no properties"; that the type is absent, qom-list-types says.
         */
        return json_object_new_array();
    }
    /* QEMU's text; DeviceNotFound is how libvirt learns "absent". */
    g_set_error(errp, GW_ERROR, GW_ERROR_NOT_FOUND, "Device '%s' not found",
                name);
    return NULL;
}

static json_object *
device_list_properties(GwQmpSession *c, json_object *args, gpointer p,
                       GError **errp)
{
    return list_properties(args, true, errp);
}

static json_object *
qom_list_properties(GwQmpSession *c, json_object *args, gpointer p,
                    GError **errp)
{
    return list_properties(args, false, errp);
}

static json_object *
query_machines(GwQmpSession *c, json_object *args, gpointer p, GError **errp)
{
    g_autofree char *json = g_strdup_printf(
        "[{\"name\":\"%s\",\"alias\":\"%s\",\"is-default\":true,"
        "\"cpu-max\":%d,\"hotpluggable-cpus\":false,"
        "\"numa-mem-supported\":false,\"deprecated\":false,"
        "\"default-cpu-type\":\"host-x86_64-cpu\","
        "\"default-ram-id\":\"pc.ram\",\"acpi\":true},"
        "{\"name\":\"none\",\"cpu-max\":1,\"hotpluggable-cpus\":false,"
        "\"numa-mem-supported\":false,\"deprecated\":false,"
        "\"acpi\":false}]",
        GW_QEMU_MACHINE_PC, GW_QEMU_MACHINE_PC_ALIAS, GW_MAX_VCPUS);

    return parse(json);
}

/* The guest gets the CPUID KVM supports on this host: QEMU's "host". */
static json_object *
query_cpu_definitions(GwQmpSession *c, json_object *args, gpointer p,
                      GError **errp)
{
    return parse("[{\"name\":\"host\",\"typename\":\"host-x86_64-cpu\","
                 "\"static\":false,\"migration-safe\":false,"
                 "\"deprecated\":false,\"unavailable-features\":[]}]");
}

static json_object *
empty_list(GwQmpSession *c, json_object *args, gpointer p, GError **errp)
{
    return json_object_new_array(); /* no TPM, iothread, block device */
}

static json_object *
query_sev(GwQmpSession *c, json_object *args, gpointer p, GError **errp)
{
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "SEV is not available: godwit has no confidential guests");
    return NULL;
}

static json_object *
query_sgx(GwQmpSession *c, json_object *args, gpointer p, GError **errp)
{
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "SGX is not available: godwit gives guests no enclaves");
    return NULL;
}

/* The QEMU command line's options with keys (src/qemu-cli*.c), as
 * "option:key=type,…". */
static const char *const cli_options[] = {
    "machine:type=string,accel=string,usb=boolean,dump-guest-core=boolean,"
    "memory-backend=string,graphics=boolean",
    "accel:accel=string",
    "smp-opts:cpus=number,maxcpus=number,sockets=number,dies=number,"
    "clusters=number,cores=number,threads=number",
    "memory:size=size",
    "name:guest=string,process=string,debug-threads=boolean",
    "boot-opts:strict=boolean,menu=boolean",
    "rtc:base=string,driftfix=string",
    "overcommit:mem-lock=boolean,cpu-pm=boolean",
    "sandbox:enable=boolean,obsolete=string,elevateprivileges=string,"
    "spawn=string,resourcecontrol=string",
    "msg:timestamp=boolean",
    "add-fd:fd=number,set=number,opaque=string",
    "chardev:backend=string,id=string,path=string,fd=string,"
    "server=boolean,wait=boolean,append=boolean",
    "mon:chardev=string,id=string,mode=string",
};

static json_object *
cli_option(const char *spec)
{
    g_auto(GStrv) parts = g_strsplit(spec, ":", 2);
    g_auto(GStrv) keys = g_strsplit(parts[1], ",", -1);
    json_object *o = json_object_new_object(), *params;

    params = json_object_new_array();
    for (guint i = 0; keys[i]; i++) {
        g_auto(GStrv) kt = g_strsplit(keys[i], "=", 2);
        json_object *k = json_object_new_object();
        json_object_object_add(k, "name", json_object_new_string(kt[0]));
        json_object_object_add(k, "type", json_object_new_string(kt[1]));
        json_object_array_add(params, k);
    }
    json_object_object_add(o, "option", json_object_new_string(parts[0]));
    json_object_object_add(o, "parameters", params);
    return o;
}

static json_object *
query_command_line_options(GwQmpSession *c, json_object *args, gpointer p,
                           GError **errp)
{
    json_object *ret = json_object_new_array(), *want = NULL;

    json_object_object_get_ex(args, "option", &want);
    for (size_t i = 0; i < G_N_ELEMENTS(cli_options); i++) {
        json_object *o = cli_option(cli_options[i]), *name;
        json_object_object_get_ex(o, "option", &name);
        if (want && strcmp(json_object_get_string(want),
                           json_object_get_string(name)) != 0) {
            json_object_put(o);
            continue;
        }
        json_object_array_add(ret, o);
    }
    if (want && !json_object_array_length(ret)) {
        json_object_put(ret);
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID, "invalid option name: %s",
                    json_object_get_string(want));
        return NULL;
    }
    return ret;
}

static json_object *
query_chardev(GwQmpSession *c, json_object *args, gpointer data, GError **errp)
{
    Probe *p = data;
    json_object *ret = json_object_new_array();

    for (guint i = 0; p->q && i < p->q->chars->len; i++) {
        const GwQemuChardev *ch = p->q->chars->pdata[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "label", json_object_new_string(ch->id));
        json_object_object_add(o, "filename",
                               json_object_new_string(ch->filename));
        json_object_object_add(o, "frontend-open",
                               json_object_new_boolean(true));
        json_object_array_add(ret, o);
    }
    return ret;
}

/*
 * QEMU's meaning: KVM is present when /dev/kvm opens, enabled when the
 * accelerator in use is KVM.  A QEMU told accel=kvm uses it even for
 * -machine none; so does godwit for any guest it runs.
 */
static json_object *
query_kvm(GwQmpSession *c, json_object *args, gpointer data, GError **errp)
{
    Probe *p = data;
    bool present = gw_vm_kvm_present();
    bool enabled = p->q ? present && p->q->kvm : gw_vm_kvm_enabled(p->vm);
    json_object *ret = json_object_new_object();

    json_object_object_add(ret, "enabled", json_object_new_boolean(enabled));
    json_object_object_add(ret, "present", json_object_new_boolean(present));
    return ret;
}

static json_object *
query_name(GwQmpSession *c, json_object *args, gpointer data, GError **errp)
{
    Probe *p = data;
    json_object *ret = json_object_new_object();

    if (p->q && p->q->name) {
        json_object_object_add(ret, "name", json_object_new_string(p->q->name));
    }
    return ret;
}

GwQmpProbe *
gw_qmp_probe_new(GwVm *vm, const GwQemuCli *q)
{
    GwQmpProbe *p = g_new0(GwQmpProbe, 1);

    p->vm = vm;
    p->q = q;
    return p;
}

void
gw_qmp_probe_free(GwQmpProbe *p)
{
    g_free(p);
}

void
gw_qmp_probe_register(GwQmpProbe *p, GwQmpServer *s)
{
    static const struct {
        const char *name;
        GwQmpHandler fn;
    } cmds[] = {
        {"query-target", query_target},
        {"qom-list-types", qom_list_types},
        {"device-list-properties", device_list_properties},
        {"qom-list-properties", qom_list_properties},
        {"query-machines", query_machines},
        {"query-cpu-definitions", query_cpu_definitions},
        {"query-tpm-models", empty_list},
        {"query-tpm-types", empty_list},
        {"query-command-line-options", query_command_line_options},
        {"query-sev-capabilities", query_sev},
        {"query-sgx-capabilities", query_sgx},
        {"query-chardev", query_chardev},
        {"query-iothreads", empty_list},
        {"query-named-block-nodes", empty_list},
        {"query-block", empty_list},
        {"query-kvm", query_kvm},
        {"query-name", query_name},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++) {
        gw_qmp_server_register(s, cmds[i].name, cmds[i].fn, p);
    }
}
