/*
 * The VM's hotplug commands: device_add (QEMU's vhost-vdpa-device-pci,
 * and virtio-net-pci on a vhost-vdpa netdev as libvirt does it),
 * device_del, netdev_add, netdev_del, and x-godwit-vdpa-add (Cloud
 * Hypervisor's vm.add-vdpa with the --vdpa keys).
 *
 * Every property is checked before anything is opened or created, and
 * what a later step fails on is released, so a failed request leaves no
 * device, fd, mapping or slot behind.  Error texts follow QEMU's where
 * QEMU has one.  Main thread.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_ids.h>
#include <godwit/machine.h>
#include <godwit/migration.h>
#include <godwit/pci.h>
#include <godwit/qmp.h>
#include <godwit/util.h>
#include <godwit/vdpa.h>
#include <godwit/vm.h>

/* QEMU pc's name for bus 0 is "pci.0"; segment N's root bus is "pci.N",
 * the name libvirt gives the bus of its pci-expander-bus controller N. */
#define ROOT_BUS_PREFIX "pci."

/* Where a device goes: a segment's root bus and a slot (0: any). */
typedef struct {
    unsigned segment, slot;
} Where;

typedef struct {
    const char *name;
    json_type type;
} Prop;

typedef struct {
    const char *driver;
    json_object *(*add)(GwQmpSession *c, GwVm *vm, json_object *args,
                        const Where *at, GError **errp);
    const Prop *props; /* the driver's own, NULL-terminated */
} Driver;

static json_object *
empty(void)
{
    return json_object_new_object();
}

static json_object *
arg(json_object *args, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(args, key, &v) ? v : NULL;
}

static const char *
arg_str(json_object *args, const char *key)
{
    json_object *v = arg(args, key);
    return v ? json_object_get_string(v) : NULL;
}

static const char *
type_name(json_type t)
{
    return t == json_type_int       ? "integer"
           : t == json_type_boolean ? "boolean"
                                    : "string";
}

/* Each key is the driver's (with the right JSON type) or a common one. */
static bool
check_props(const Driver *drv, json_object *args, GError **errp)
{
    static const char *const common[] = {"driver", "id", "bus", "addr"};

    json_object_object_foreach(args, key, val)
    {
        bool known = g_strv_contains((const char *const *)common, key);
        for (const Prop *p = drv->props; !known && p->name; p++) {
            if (g_str_equal(p->name, key)) {
                if (!json_object_is_type(val, p->type)) {
                    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                                "Invalid parameter type for '%s', expected: %s",
                                key, type_name(p->type));
                    return false;
                }
                known = true;
            }
        }
        if (!known) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "Property '%s.%s' not found", drv->driver, key);
            return false;
        }
    }
    return true;
}

/* QEMU's PCI address property: "slot[.function]" in hex, or a devfn. */
static bool
parse_addr(const char *driver, json_object *v, unsigned *slot, GError **errp)
{
    const char *s = json_object_get_string(v);
    unsigned long dev = 0, fn = 0;
    char *end = NULL;

    *slot = 0;
    if (!v) {
        return true;
    }
    if (json_object_is_type(v, json_type_int)) {
        int devfn = json_object_get_int(v);
        dev = (unsigned long)devfn >> 3;
        fn = (unsigned long)devfn & 7;
        end = devfn < 0 || devfn > 255 ? NULL : "";
    } else if (json_object_is_type(v, json_type_string) && *s) {
        dev = strtoul(s, &end, 16);
        if (*end == '.') {
            fn = strtoul(end + 1, &end, 16);
        }
    }
    if (!end || *end || dev >= GW_PCI_SLOTS || fn > 7) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "Property '%s.addr' doesn't take value '%s'", driver, s);
        return false;
    }
    if (dev == 0 || fn != 0) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "%s: addr %s: slot 0 is the host bridge and functions "
                    "other than 0 are not supported",
                    driver, s);
        return false;
    }
    *slot = (unsigned)dev;
    return true;
}

/* QEMU's identifier rule: a letter, then letters, digits, '-', '.', '_'. */
static bool
check_id(GwMachine *m, const char *id, GError **errp)
{
    if (!g_ascii_isalpha(id[0]) ||
        strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789-._") != strlen(id)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "Parameter 'id' expects an identifier");
        return false;
    }
    if (gw_machine_has_device(m, id)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_EXISTS, "Duplicate device ID '%s'",
                    id);
        return false;
    }
    return true;
}

/* Cloud Hypervisor's generated ids, never taken by a user's (no '_'). */
static char *
auto_id(GwMachine *m)
{
    g_autoptr(GHashTable) ids = gw_machine_device_ids(m);

    for (unsigned n = 0;; n++) {
        g_autofree char *id = g_strdup_printf("_vdpa%u", n);
        if (!g_hash_table_contains(ids, id)) {
            return g_steal_pointer(&id);
        }
    }
}

/* A path, or /dev/fdset/N (add-fd) read-write, as a vDPA backend. */
static GwVdpaBackend *
open_backend(GwQmpSession *c, GwVm *vm, const char *path, GError **errp)
{
    if (g_str_has_prefix(path, "/dev/fdset/")) {
        int fd = gw_qmp_open_path(gw_qmp_session_server(c), path, O_RDWR, errp);
        return fd < 0 ? NULL : gw_vdpa_open_fd(gw_vm_vdpa_sims(vm), fd, errp);
    }
    return gw_vdpa_open(gw_vm_vdpa_sims(vm), path, errp);
}

/* Into `slot` (0: any) of segment cfg->pci_segment. */
static json_object *
plug(GwVm *vm, const char *driver, GwVdpaConfig *cfg, GwVdpaBackend *b,
     const uint8_t *mac, unsigned slot, GError **errp)
{
    int got;
    json_object *ret;
    g_autofree char *bdf = NULL;

    if (gw_mig_is_running(gw_vm_migration(vm))) {
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                    "device_add not allowed while migrating");
        return NULL;
    }
    if (!gw_vdpa_config_check_iommu(driver, cfg, gw_vm_iommu_segments(vm), true,
                                    errp)) {
        return NULL;
    }
    got = gw_machine_hotplug_vdpa(gw_vm_machine(vm), cfg, b, mac, slot, errp);
    if (got < 0) {
        return NULL;
    }
    g_info("device %s: hot-plugged into slot %d of PCI segment %u", cfg->id,
           got, cfg->pci_segment);
    g_hash_table_insert(gw_vm_device_drivers(vm), g_strdup(cfg->id),
                        (gpointer)driver);
    bdf = g_strdup_printf("%04x:00:%02x.0", cfg->pci_segment, (unsigned)got);
    ret = json_object_new_object();
    json_object_object_add(ret, "id", json_object_new_string(cfg->id));
    json_object_object_add(ret, "bdf", json_object_new_string(bdf));
    return ret;
}

/* ---- device_add ---- */

/* QEMU's iommu_platform=on|off; absent, what the segment is (behind the
 * IOMMU or not, --platform iommu_segments). */
static bool
device_iommu(GwVm *vm, json_object *args, unsigned segment)
{
    json_object *v = arg(args, "iommu_platform");

    if (v) {
        return json_object_get_boolean(v);
    }
    return (gw_vm_iommu_segments(vm) >> segment) & 1;
}

static json_object *
add_generic(GwQmpSession *c, GwVm *vm, json_object *args, const Where *at,
            GError **errp)
{
    g_autoptr(GwVdpaBackend) b = NULL;
    g_autoptr(json_object) ret = NULL;
    json_object *qs = arg(args, "queue-size");
    GwVdpaConfig cfg = {.path = (char *)arg_str(args, "vhostdev"),
                        .id = (char *)arg_str(args, "id"),
                        .pci_segment = (uint16_t)at->segment,
                        .iommu = device_iommu(vm, args, at->segment)};

    if (!cfg.path) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vhost-vdpa-device-pci: property 'vhostdev' is required");
        return NULL;
    }
    if (qs && json_object_get_int64(qs) != 0) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vhost-vdpa-device-pci: queue-size: the device's own "
                    "maximum is used; leave queue-size out or 0");
        return NULL;
    }
    b = open_backend(c, vm, cfg.path, errp);
    ret = b ? plug(vm, "vhost-vdpa-device-pci", &cfg, b, NULL, at->slot, errp)
            : NULL;
    return ret ? empty() : NULL;
}

/* Queue pairs asked for → virtqueues exposed (0: all, control included). */
static unsigned
net_queues(const GwNetdev *n)
{
    return n->queues ? 2 * n->queues : 0;
}

static GwNetdev *
netdev_for(GwVm *vm, const char *driver, const char *name, GError **errp)
{
    GwNetdev *n = g_hash_table_lookup(gw_vm_netdevs(vm), name);

    if (n && n->user && !gw_machine_has_device(gw_vm_machine(vm), n->user)) {
        g_clear_pointer(&n->user, g_free); /* its device was deleted */
    }
    if (!n) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "Property '%s.netdev' can't find value '%s'", driver, name);
    } else if (n->user) {
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                    "Property '%s.netdev' can't take value '%s', it's in use",
                    driver, name);
        return NULL;
    }
    return n;
}

static json_object *
add_net(GwQmpSession *c, GwVm *vm, json_object *args, const Where *at,
        GError **errp)
{
    const char *name = arg_str(args, "netdev"), *mac_str = arg_str(args, "mac");
    g_autoptr(json_object) ret = NULL;
    uint8_t mac[6];
    GwNetdev *n;
    GwVdpaConfig cfg = {.id = (char *)arg_str(args, "id"),
                        .pci_segment = (uint16_t)at->segment,
                        .iommu = device_iommu(vm, args, at->segment)};

    if (!name) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "virtio-net-pci: property 'netdev' is required: godwit "
                    "networks only through vhost-vdpa netdevs");
        return NULL;
    }
    if (mac_str && !gw_parse_mac(mac_str, mac, NULL)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "Property 'virtio-net-pci.mac' doesn't take value '%s'",
                    mac_str);
        return NULL;
    }
    n = netdev_for(vm, "virtio-net-pci", name, errp);
    if (!n) {
        return NULL;
    }
    cfg.path = n->id;
    cfg.num_queues = net_queues(n);
    ret = plug(vm, "virtio-net-pci", &cfg, n->backend, mac_str ? mac : NULL,
               at->slot, errp);
    if (!ret) {
        return NULL;
    }
    n->user = g_strdup(cfg.id);
    return empty();
}

static const Prop generic_props[] = {
    {"vhostdev", json_type_string},
    {"queue-size", json_type_int},
    {"iommu_platform", json_type_boolean},
    {NULL, 0},
};

static const Prop net_props[] = {
    {"netdev", json_type_string},
    {"mac", json_type_string},
    {"iommu_platform", json_type_boolean},
    {NULL, 0},
};

static const Driver drivers[] = {
    {"vhost-vdpa-device-pci", add_generic, generic_props},
    {"virtio-net-pci", add_net, net_props},
};

static const Driver *
find_driver(const char *name, GError **errp)
{
    for (size_t i = 0; i < G_N_ELEMENTS(drivers); i++) {
        if (g_str_equal(drivers[i].driver, name)) {
            return &drivers[i];
        }
    }
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "'%s' is not a valid device model name", name);
    return NULL;
}

/* "pci.N" (N decimal, no leading zeros) names segment N's root bus if
 * the platform has that segment; no bus is segment 0's. */
static bool
parse_bus(GwVm *vm, const char *bus, unsigned *segment, GError **errp)
{
    char *end = NULL;
    unsigned long s = 0;

    *segment = 0;
    if (!bus) {
        return true;
    }
    if (g_str_has_prefix(bus, ROOT_BUS_PREFIX)) {
        const char *n = bus + strlen(ROOT_BUS_PREFIX);
        if (g_ascii_isdigit(n[0]) && (n[0] != '0' || n[1] == '\0')) {
            s = strtoul(n, &end, 10);
        }
    }
    if (!end || *end || s >= gw_vm_num_pci_segments(vm)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_NOT_FOUND, "Bus '%s' not found",
                    bus);
        return false;
    }
    *segment = (unsigned)s;
    return true;
}

/* What every driver needs: a bus there, a free id, a usable address. */
static bool
check_common(GwVm *vm, const Driver *drv, json_object *args, Where *at,
             GError **errp)
{
    const char *id = arg_str(args, "id");

    if (!gw_vm_machine(vm)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "No 'PCI' bus found for device '%s'", drv->driver);
        return false;
    }
    return parse_bus(vm, arg_str(args, "bus"), &at->segment, errp) &&
           check_props(drv, args, errp) &&
           (!id || check_id(gw_vm_machine(vm), id, errp)) &&
           parse_addr(drv->driver, arg(args, "addr"), &at->slot, errp) &&
           gw_machine_check_slot(gw_vm_machine(vm), at->segment, at->slot,
                                 errp);
}

static json_object *
device_add(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    const Driver *drv = find_driver(arg_str(args, "driver"), errp);
    g_autoptr(json_object) own = NULL;
    g_autofree char *id = NULL;
    Where at;

    if (!drv || !check_common(vm, drv, args, &at, errp)) {
        return NULL;
    }
    if (!arg(args, "id")) { /* QEMU's would be anonymous; ours get a name */
        id = auto_id(gw_vm_machine(vm));
        own = json_object_new_object();
        json_object_object_foreach(args, k, v)
        {
            json_object_object_add(own, k, json_object_get(v));
        }
        json_object_object_add(own, "id", json_object_new_string(id));
        args = own;
    }
    return drv->add(c, vm, args, &at, errp);
}

static json_object *
device_del(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    const char *id = arg_str(args, "id");

    if (!gw_vm_machine(vm)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_NOT_FOUND, "Device '%s' not found",
                    id);
        return NULL;
    }
    if (gw_mig_is_running(gw_vm_migration(vm))) {
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                    "device_del not allowed while migrating");
        return NULL;
    }
    return gw_machine_unplug_request(gw_vm_machine(vm), id, errp) ? empty()
                                                                  : NULL;
}

/* ---- netdev_add / netdev_del ---- */

static bool
check_netdev_args(GwVm *vm, json_object *args, GError **errp)
{
    const char *id = arg_str(args, "id");
    json_object *q = arg(args, "queues"), *svq = arg(args, "x-svq");
    bool dev = arg(args, "vhostdev"), fd = arg(args, "vhostfd");

    if (g_hash_table_contains(gw_vm_netdevs(vm), id)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_EXISTS,
                    "Duplicate ID '%s' for netdev", id);
    } else if (dev == fd) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vhost-vdpa: exactly one of 'vhostdev' and 'vhostfd' "
                    "is required");
    } else if (q && (json_object_get_int64(q) < 1 ||
                     json_object_get_int64(q) > GW_MAX_VDPA_QUEUES / 2)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vhost-vdpa: queues must be 1..%u", GW_MAX_VDPA_QUEUES / 2);
    } else if (svq && json_object_get_boolean(svq)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vhost-vdpa: x-svq: shadow virtqueues are not supported "
                    "(the data path never passes through godwit)");
    } else {
        return true;
    }
    return false;
}

/* vhostfd: a getfd name (QEMU's monitor fd), duplicated. */
static GwVdpaBackend *
open_netdev_backend(GwQmpSession *c, GwVm *vm, json_object *args, GError **errp)
{
    const char *fdname = arg_str(args, "vhostfd");
    int fd;

    if (!fdname) {
        return open_backend(c, vm, arg_str(args, "vhostdev"), errp);
    }
    fd = gw_qmp_session_named_fd(c, fdname);
    if (fd < 0 || (fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
        g_set_error(errp, GW_ERROR, GW_ERROR_NOT_FOUND,
                    "File descriptor named '%s' not found", fdname);
        return NULL;
    }
    return gw_vdpa_open_fd(gw_vm_vdpa_sims(vm), fd, errp);
}

static json_object *
netdev_add(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    g_autoptr(GwVdpaBackend) b = NULL;
    json_object *q = arg(args, "queues");
    uint32_t type = 0;
    GwNetdev *n;

    if (!check_netdev_args(vm, args, errp)) {
        return NULL;
    }
    b = open_netdev_backend(c, vm, args, errp);
    if (!b || !gw_vdpa_get_device_id(b, &type, errp)) {
        return NULL;
    }
    if (type != VIRTIO_ID_NET) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vhost-vdpa: %s is not a network device (virtio device "
                    "type %u)",
                    gw_vdpa_backend_label(b), type);
        return NULL;
    }
    n = g_new0(GwNetdev, 1);
    n->id = g_strdup(arg_str(args, "id"));
    n->backend = g_steal_pointer(&b);
    n->queues = q ? (unsigned)json_object_get_int64(q) : 0;
    g_hash_table_insert(gw_vm_netdevs(vm), n->id, n);
    return empty();
}

static json_object *
netdev_del(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    const char *id = arg_str(args, "id");
    GwNetdev *n = g_hash_table_lookup(gw_vm_netdevs(vm), id);

    if (!n) {
        g_set_error(errp, GW_ERROR, GW_ERROR_NOT_FOUND, "Device '%s' not found",
                    id);
        return NULL;
    }
    if (n->user && gw_machine_has_device(gw_vm_machine(vm), n->user)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                    "netdev '%s' is in use by device '%s': device_del it and "
                    "wait for DEVICE_DELETED first",
                    id, n->user);
        return NULL;
    }
    g_hash_table_remove(gw_vm_netdevs(vm), id);
    return empty();
}

/* ---- x-godwit-vdpa-add: Cloud Hypervisor's shape ---- */

static json_object *
vdpa_add(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    g_autoptr(GwVdpaConfig) cfg = g_new0(GwVdpaConfig, 1);
    g_autoptr(GHashTable) ids = NULL;
    g_autoptr(GwVdpaBackend) b = NULL;
    json_object *v;
    unsigned next = 0;

    if (!gw_vm_machine(vm)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "x-godwit-vdpa-add: no machine to plug into (start "
                    "godwit with --kernel or --qtest)");
        return NULL;
    }
    cfg->path = g_strdup(arg_str(args, "path"));
    cfg->id = g_strdup(arg_str(args, "id"));
    cfg->num_queues =
        (v = arg(args, "num_queues"))
            ? (uint32_t)CLAMP(json_object_get_int64(v), 0, G_MAXUINT32)
            : 1;
    cfg->iommu = (v = arg(args, "iommu")) && json_object_get_boolean(v);
    if ((v = arg(args, "pci_segment")) &&
        (json_object_get_int64(v) < 0 ||
         json_object_get_int64(v) > G_MAXUINT16)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "x-godwit-vdpa-add: pci_segment must be 0..65535");
        return NULL;
    }
    cfg->pci_segment = v ? (uint16_t)json_object_get_int64(v) : 0;
    ids = gw_machine_device_ids(gw_vm_machine(vm));
    if (!gw_vdpa_config_check("x-godwit-vdpa-add", cfg, ids,
                              gw_vm_num_pci_segments(vm), &next, errp) ||
        !gw_vdpa_config_check_iommu("x-godwit-vdpa-add", cfg,
                                    gw_vm_iommu_segments(vm), true, errp) ||
        !gw_machine_check_slot(gw_vm_machine(vm), cfg->pci_segment, 0, errp)) {
        return NULL;
    }
    b = open_backend(c, vm, cfg->path, errp);
    return b ? plug(vm, "vhost-vdpa-device-pci", cfg, b, NULL, 0, errp) : NULL;
}

/* ---- qom-list: what libvirt reads back after every hotplug ---- */

static json_object *
prop(const char *name, const char *type)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "type", json_object_new_string(type));
    return o;
}

/*
 * /machine/peripheral lists the devices with an id as QEMU does, a
 * `child<driver>` each; /machine/peripheral-anon is empty (every device
 * here has an id).  godwit has no other QOM tree.
 */
static json_object *
qom_list(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    const char *path = arg_str(args, "path");
    g_autoptr(GHashTable) ids = NULL;
    GHashTableIter it;
    gpointer id;
    json_object *ret;

    if (!g_str_equal(path, "/machine/peripheral") &&
        !g_str_equal(path, "/machine/peripheral-anon")) {
        g_set_error(errp, GW_ERROR, GW_ERROR_NOT_FOUND, "Device '%s' not found",
                    path);
        return NULL;
    }
    ret = json_object_new_array();
    json_object_array_add(ret, prop("type", "string"));
    if (!gw_vm_machine(vm) || g_str_equal(path, "/machine/peripheral-anon")) {
        return ret;
    }
    ids = gw_machine_device_ids(gw_vm_machine(vm));
    g_hash_table_iter_init(&it, ids);
    while (g_hash_table_iter_next(&it, &id, NULL)) {
        const char *drv = g_hash_table_lookup(gw_vm_device_drivers(vm), id);
        g_autofree char *type =
            g_strdup_printf("child<%s>", drv ? drv : "vhost-vdpa-device-pci");
        json_object_array_add(ret, prop(id, type));
    }
    return ret;
}

void
gw_vm_hotplug_register(GwVm *vm, GwQmpServer *s)
{
    gw_qmp_server_register(s, "qom-list", qom_list, vm);
    gw_qmp_server_register(s, "device_add", device_add, vm);
    gw_qmp_server_register(s, "device_del", device_del, vm);
    gw_qmp_server_register(s, "netdev_add", netdev_add, vm);
    gw_qmp_server_register(s, "netdev_del", netdev_del, vm);
    gw_qmp_server_register(s, "x-godwit-vdpa-add", vdpa_add, vm);
}
