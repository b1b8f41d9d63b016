/*
 * QEMU's command line: the board (-machine, -accel, -cpu, -m, -smp,
 * -object), character devices and monitors (-chardev, -mon, -qmp),
 * devices (-device, -netdev), and the checks across options.  See
 * include/godwit/qemu-cli.h.
 */
#include <fcntl.h>
#include <string.h>
#include <godwit/util.h>
#include "qemu-cli-priv.h"

static bool refuse(GError **errp, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static bool
refuse(GError **errp, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error_literal(errp, GW_ERROR, GW_ERROR_INVALID, msg);
    return false;
}

/* ---- -machine, -accel, -cpu ---- */

static bool
set_accel(GwQemuParse *p, const char *opt, char *accel, GError **errp)
{
    g_auto(GStrv) list = g_strsplit(accel, ":", -1);

    for (guint i = 0; list[i]; i++) {
        if (strcmp(list[i], "kvm") != 0 && strcmp(list[i], "tcg") != 0) {
            g_free(accel);
            return refuse(errp, "%s: accelerator '%s': godwit has kvm only",
                          opt, list[i]);
        }
    }
    g_free(p->accel);
    p->accel = accel;
    return true;
}

static bool
machine_type(GwQemuParse *p, char *type, GError **errp)
{
    g_autofree char *t = type;

    if (strcmp(t, "none") != 0 && strcmp(t, GW_QEMU_MACHINE_PC) != 0 &&
        strcmp(t, GW_QEMU_MACHINE_PC_ALIAS) != 0) {
        return refuse(errp,
                      "-machine %s: godwit has one board, %s (alias %s), "
                      "and none",
                      t, GW_QEMU_MACHINE_PC, GW_QEMU_MACHINE_PC_ALIAS);
    }
    g_free(p->q->machine);
    p->q->machine =
        g_strdup(strcmp(t, "none") == 0 ? "none" : GW_QEMU_MACHINE_PC);
    return true;
}

bool
gw_qemu_opt_machine(GwQemuParse *p, const char *val, GError **errp)
{
    g_autoptr(GHashTable) kv = gw_qemu_opts("-machine", val, "type", errp);
    bool dump = false, usb = false, graphics = false;
    char *type, *accel, *backend;

    if (!kv) {
        return false;
    }
    type = gw_qemu_take(kv, "type");
    if (type && !machine_type(p, type, errp)) {
        return false;
    }
    accel = gw_qemu_take(kv, "accel");
    if (accel && !set_accel(p, "-machine", accel, errp)) {
        return false;
    }
    backend = gw_qemu_take(kv, "memory-backend");
    if (backend) {
        g_free(p->machine_backend);
        p->machine_backend = backend;
    }
    /* dump-guest-core only says whether a host core dump holds guest
     * RAM: harmless either way. */
    if (!gw_qemu_take_bool("-machine", kv, "dump-guest-core", &dump, errp) ||
        !gw_qemu_take_bool("-machine", kv, "usb", &usb, errp) ||
        !gw_qemu_take_bool("-machine", kv, "graphics", &graphics, errp)) {
        return false;
    }
    if (usb) {
        return refuse(errp, "-machine usb=on: godwit has no USB controller");
    }
    return gw_qemu_no_leftovers("-machine", kv, errp);
}

bool
gw_qemu_opt_accel(GwQemuParse *p, const char *val, GError **errp)
{
    g_autoptr(GHashTable) kv = gw_qemu_opts("-accel", val, "accel", errp);
    char *accel;

    if (!kv) {
        return false;
    }
    accel = gw_qemu_take(kv, "accel");
    if (!accel) {
        return refuse(errp, "-accel: which accelerator? (kvm)");
    }
    if (strchr(accel, ':')) {
        g_free(accel);
        return refuse(errp, "-accel: one accelerator per -accel");
    }
    return set_accel(p, "-accel", accel, errp) &&
           gw_qemu_no_leftovers("-accel", kv, errp);
}

bool
gw_qemu_opt_cpu(GwQemuParse *p, const char *val, GError **errp)
{
    g_autoptr(GHashTable) kv = gw_qemu_opts("-cpu", val, "model", errp);
    g_autofree char *model = NULL;
    bool migratable = false;

    if (!kv) {
        return false;
    }
    model = gw_qemu_take(kv, "model");
    if (!model || strcmp(model, "host") != 0) {
        return refuse(errp,
                      "-cpu %s: godwit gives the guest the host's CPU (the "
                      "CPUID KVM supports), which is QEMU's -cpu host: use "
                      "<cpu mode='host-passthrough'/>",
                      model ? model : "");
    }
    /* migratable=on hides what cannot migrate, and godwit's CPUID has
     * nothing else; off would ask for more, which godwit cannot give. */
    if (!gw_qemu_take_bool("-cpu", kv, "migratable", &migratable, errp)) {
        return false;
    }
    return gw_qemu_no_leftovers("-cpu", kv, errp);
}

/* ---- memory and CPUs ---- */

/* QEMU's sizes: a bare number is in `unit` bytes; suffixes K, M, G, T. */
static bool
parse_qemu_size(const char *opt, const char *str, uint64_t unit, uint64_t *out,
                GError **errp)
{
    guint64 n;

    if (g_ascii_string_to_unsigned(str, 10, 1, G_MAXUINT64 / unit, &n, NULL)) {
        *out = n * unit;
        return true;
    }
    if (!gw_parse_size(str, out, errp)) {
        g_prefix_error(errp, "%s: ", opt);
        return false;
    }
    return true;
}

static bool
set_mem_size(GwQemuParse *p, const char *opt, uint64_t size, GError **errp)
{
    if (size < (1u << 20) || size > (1ull << 40) || size % 4096) {
        return refuse(errp,
                      "%s: %" G_GUINT64_FORMAT " bytes: godwit takes 1 MiB "
                      "to 1 TiB, in 4 KiB pages",
                      opt, size);
    }
    p->q->cfg->mem_size = size;
    return true;
}

bool
gw_qemu_opt_m(GwQemuParse *p, const char *val, GError **errp)
{
    g_autoptr(GHashTable) kv = gw_qemu_opts("-m", val, "size", errp);
    g_autofree char *size = NULL;
    uint64_t bytes;

    if (!kv) {
        return false;
    }
    if (g_hash_table_contains(kv, "slots") ||
        g_hash_table_contains(kv, "maxmem")) {
        return refuse(errp, "-m: godwit has no memory hotplug (slots=, "
                            "maxmem=): drop <maxMemory>");
    }
    size = gw_qemu_take(kv, "size");
    if (!size || !parse_qemu_size("-m", size, 1 << 20, &bytes, errp) ||
        !set_mem_size(p, "-m", bytes, errp)) {
        return size ? false : refuse(errp, "-m: size is required");
    }
    p->have_m = true;
    return gw_qemu_no_leftovers("-m", kv, errp);
}

static bool
take_count(const char *opt, GHashTable *kv, const char *key, guint64 *out,
           GError **errp)
{
    g_autofree char *v = gw_qemu_take(kv, key);

    if (v && !g_ascii_string_to_unsigned(v, 10, 1, GW_MAX_VCPUS, out, NULL)) {
        return refuse(errp, "%s: %s=%s: expected 1 to %d", opt, key, v,
                      GW_MAX_VCPUS);
    }
    return true;
}

bool
gw_qemu_opt_smp(GwQemuParse *p, const char *val, GError **errp)
{
    static const char *const topo[] = {"sockets", "dies", "clusters", "cores",
                                       "threads"};
    g_autoptr(GHashTable) kv = gw_qemu_opts("-smp", val, "cpus", errp);
    guint64 cpus = 1, max = 0, product = 1;

    if (!kv || !take_count("-smp", kv, "cpus", &cpus, errp) ||
        !take_count("-smp", kv, "maxcpus", &max, errp)) {
        return false;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(topo); i++) {
        guint64 n = 1;
        if (!take_count("-smp", kv, topo[i], &n, errp)) {
            return false;
        }
        product *= n;
    }
    if ((max && max != cpus) || (product != 1 && product != cpus)) {
        return refuse(errp,
                      "-smp %s: godwit has no CPU hotplug: every CPU the "
                      "topology describes must be present at boot",
                      val);
    }
    p->q->cfg->boot_vcpus = (uint32_t)cpus;
    return gw_qemu_no_leftovers("-smp", kv, errp);
}

/* ---- -object ---- */

static bool
object_memory(GwQemuParse *p, const char *type, GHashTable *kv, GError **errp)
{
    g_autofree char *id = gw_qemu_take(kv, "id");
    g_autofree char *size = gw_qemu_take(kv, "size");
    bool share = p->q->cfg->mem_shared, huge = false;
    uint64_t bytes;

    if (!id || !size) {
        return refuse(errp, "-object %s: id and size are required", type);
    }
    if (p->mem_backend) {
        return refuse(errp,
                      "-object %s,id=%s: godwit has one RAM region; "
                      "NUMA nodes are not supported",
                      type, id);
    }
    if (!parse_qemu_size("-object", size, 1, &bytes, errp) ||
        !gw_qemu_take_bool("-object", kv, "share", &share, errp) ||
        !gw_qemu_take_bool("-object", kv, "hugetlb", &huge, errp) ||
        !gw_qemu_take_expect("-object", kv,
                             "x-use-canonical-path-for-"
                             "ramblock-id",
                             "off", "no such ramblock naming", errp)) {
        return false;
    }
    if (huge && strcmp(type, "memory-backend-memfd") != 0) {
        return refuse(errp, "-object %s: hugetlb is memory-backend-memfd's",
                      type);
    }
    p->q->cfg->mem_shared = share;
    p->q->cfg->hugepages = huge;
    p->mem_backend = g_steal_pointer(&id);
    p->backend_size = bytes;
    return gw_qemu_no_leftovers("-object", kv, errp);
}

static bool
object_secret(GwQemuParse *p, GHashTable *kv, GError **errp)
{
    /* libvirt's master key: nothing in godwit takes a secret (no
     * encrypted disks, no TLS), so it is accepted and never read. */
    g_free(gw_qemu_take(kv, "id"));
    g_free(gw_qemu_take(kv, "format"));
    g_free(gw_qemu_take(kv, "file"));
    g_free(gw_qemu_take(kv, "data"));
    return gw_qemu_no_leftovers("-object secret", kv, errp);
}

bool
gw_qemu_opt_object(GwQemuParse *p, const char *val, GError **errp)
{
    g_autoptr(GHashTable) kv = gw_qemu_opts("-object", val, "qom-type", errp);
    g_autofree char *type = NULL;

    if (!kv) {
        return false;
    }
    type = gw_qemu_take(kv, "qom-type");
    if (type && strcmp(type, "secret") == 0) {
        return object_secret(p, kv, errp);
    }
    if (type && (strcmp(type, "memory-backend-ram") == 0 ||
                 strcmp(type, "memory-backend-memfd") == 0)) {
        return object_memory(p, type, kv, errp);
    }
    if (type && strcmp(type, "memory-backend-file") == 0) {
        return refuse(errp, "-object memory-backend-file: godwit keeps guest "
                            "RAM in a memfd; use <memoryBacking><source "
                            "type='memfd'/></memoryBacking>");
    }
    return refuse(errp, "-object %s: not an object type godwit has",
                  type ? type : "(no qom-type)");
}

/* ---- -chardev, -mon, -qmp ---- */

void
gw_qemu_chardev_free(GwQemuCharSpec *c)
{
    g_free(c->id);
    g_free(c->backend);
    g_free(c->path);
    g_free(c);
}

static bool
chardev_socket(GwQemuCharSpec *c, GHashTable *kv, GError **errp)
{
    g_autofree char *fd = gw_qemu_take(kv, "fd");
    bool server = false, wait = true;
    guint64 n;

    c->path = gw_qemu_take(kv, "path");
    if (!gw_qemu_take_bool("-chardev", kv, "server", &server, errp) ||
        !gw_qemu_take_bool("-chardev", kv, "wait", &wait, errp)) {
        return false;
    }
    if (!server || wait || !!fd == !!c->path) {
        return refuse(errp,
                      "-chardev socket,id=%s: godwit listens only: "
                      "server=on,wait=off with one of fd= or path=",
                      c->id);
    }
    if (fd && (!g_ascii_string_to_unsigned(fd, 10, 3, G_MAXINT, &n, NULL) ||
               fcntl((int)n, F_GETFD) < 0)) {
        return refuse(errp, "-chardev socket,id=%s: fd=%s is not an open fd",
                      c->id, fd);
    }
    c->fd = fd ? (int)n : -1;
    return true;
}

static bool
chardev_file(GwQemuCharSpec *c, GHashTable *kv, GError **errp)
{
    c->path = gw_qemu_take(kv, "path");
    if (!c->path) {
        return refuse(errp, "-chardev file,id=%s: path is required", c->id);
    }
    return gw_qemu_take_bool("-chardev", kv, "append", &c->append, errp);
}

static GwQemuChardev *
chardev_info(const GwQemuCharSpec *c)
{
    GwQemuChardev *info = g_new0(GwQemuChardev, 1);

    info->id = g_strdup(c->id);
    if (strcmp(c->backend, "file") == 0) {
        info->filename = g_strdup("file");
    } else if (c->fd >= 0) {
        info->filename = g_strdup_printf("fd:%d", c->fd);
    } else {
        info->filename = g_strdup_printf("unix:%s,server=on", c->path);
    }
    return info;
}

bool
gw_qemu_opt_chardev(GwQemuParse *p, const char *val, GError **errp)
{
    g_autoptr(GHashTable) kv = gw_qemu_opts("-chardev", val, "backend", errp);
    GwQemuCharSpec *c;
    bool ok;

    if (!kv) {
        return false;
    }
    c = g_new0(GwQemuCharSpec, 1);
    c->fd = -1;
    c->backend = gw_qemu_take(kv, "backend");
    c->id = gw_qemu_take(kv, "id");
    if (!c->id || !c->backend || g_hash_table_contains(p->chardevs, c->id)) {
        gw_qemu_chardev_free(c);
        return refuse(errp,
                      "-chardev %s: a backend and a unique id are "
                      "required",
                      val);
    }
    g_hash_table_insert(p->chardevs, g_strdup(c->id), c);
    if (strcmp(c->backend, "socket") == 0) {
        ok = chardev_socket(c, kv, errp);
    } else if (strcmp(c->backend, "file") == 0) {
        ok = chardev_file(c, kv, errp);
    } else {
        return refuse(errp,
                      "-chardev %s: godwit's character devices are "
                      "socket and file",
                      c->backend);
    }
    if (!ok || !gw_qemu_no_leftovers("-chardev", kv, errp)) {
        return false;
    }
    g_ptr_array_add(p->q->chars, chardev_info(c));
    return true;
}

static bool
use_monitor(GwQemuParse *p, const char *opt, GwQemuCharSpec *c, GError **errp)
{
    GwConfig *cfg = p->q->cfg;

    if (p->have_monitor) {
        return refuse(errp, "%s: godwit serves one QMP monitor", opt);
    }
    if (!c || strcmp(c->backend, "socket") != 0 || c->used) {
        return refuse(errp, "%s: the monitor needs an unused socket chardev",
                      opt);
    }
    c->used = p->have_monitor = true;
    if (c->fd >= 0) {
        cfg->qmp_fd = c->fd;
        c->fd = -1; /* the config's now */
    } else {
        cfg->qmp_path = g_strdup(c->path);
    }
    return true;
}

bool
gw_qemu_opt_mon(GwQemuParse *p, const char *val, GError **errp)
{
    g_autoptr(GHashTable) kv = gw_qemu_opts("-mon", val, "chardev", errp);
    g_autofree char *chardev = NULL, *id = NULL;

    if (!kv || !gw_qemu_take_expect("-mon", kv, "mode", "control",
                                    "godwit's monitor speaks QMP only "
                                    "(mode=control)",
                                    errp)) {
        return false;
    }
    chardev = gw_qemu_take(kv, "chardev");
    id = gw_qemu_take(kv, "id");
    if (!gw_qemu_no_leftovers("-mon", kv, errp)) {
        return false;
    }
    return use_monitor(
        p, "-mon", chardev ? g_hash_table_lookup(p->chardevs, chardev) : NULL,
        errp);
}

bool
gw_qemu_opt_qmp(GwQemuParse *p, const char *val, GError **errp)
{
    g_autofree char *spec = NULL;
    g_autofree char *id = g_strdup_printf("_qmp%u", p->q->chars->len);

    if (!g_str_has_prefix(val, "unix:")) {
        return refuse(errp, "-qmp %s: godwit listens on unix:PATH only", val);
    }
    spec = g_strdup_printf("socket,id=%s,path=%s", id, val + 5);
    return gw_qemu_opt_chardev(p, spec, errp) &&
           use_monitor(p, "-qmp", g_hash_table_lookup(p->chardevs, id), errp);
}

/* ---- -device, -netdev ---- */

static bool
device_serial(GwQemuParse *p, GHashTable *kv, GError **errp)
{
    g_autofree char *id = gw_qemu_take(kv, "id");

    if (!gw_qemu_take_expect("-device isa-serial", kv, "index", "0",
                             "godwit's board has one UART, COM1", errp)) {
        return false;
    }
    if (p->serial_chardev) {
        return refuse(errp, "-device isa-serial: godwit's board has one "
                            "UART, COM1");
    }
    p->serial_chardev = gw_qemu_take(kv, "chardev");
    if (!p->serial_chardev) {
        return refuse(errp, "-device isa-serial: chardev is required");
    }
    return gw_qemu_no_leftovers("-device isa-serial", kv, errp);
}

bool
gw_qemu_opt_device(GwQemuParse *p, const char *val, GError **errp)
{
    g_autoptr(GHashTable) kv = gw_qemu_opts("-device", val, "driver", errp);
    g_autofree char *driver = NULL;

    if (!kv) {
        return false;
    }
    driver = gw_qemu_take(kv, "driver");
    if (driver && strcmp(driver, "isa-serial") == 0) {
        return device_serial(p, kv, errp);
    }
    if (driver && (strcmp(driver, "virtio-net-pci") == 0 ||
                   strcmp(driver, "vhost-vdpa-device-pci") == 0)) {
        return refuse(errp,
                      "-device %s: godwit does not cold-plug vDPA "
                      "devices yet; attach it to the running domain "
                      "(virsh attach-device --live)",
                      driver);
    }
    return refuse(errp,
                  "-device %s: not a device godwit has (it has "
                  "isa-serial at start; virtio-net-pci and "
                  "vhost-vdpa-device-pci by hotplug)",
                  driver ? driver : "(no driver)");
}

bool
gw_qemu_opt_netdev(GwQemuParse *p, const char *val, GError **errp)
{
    return refuse(errp, "-netdev: godwit does not cold-plug vDPA NICs yet; "
                        "attach the interface to the running domain "
                        "(virsh attach-device --live)");
}

/* ---- across options ---- */

static bool
finish_serial(GwQemuParse *p, GError **errp)
{
    GwConfig *cfg = p->q->cfg;
    GwQemuCharSpec *c = g_hash_table_lookup(p->chardevs, p->serial_chardev);
    unsigned long set;
    GwQemuFd *f;

    if (!c || c->used) {
        return refuse(errp,
                      "-device isa-serial: chardev '%s' is not an "
                      "unused -chardev",
                      p->serial_chardev);
    }
    c->used = true;
    if (strcmp(c->backend, "socket") == 0) {
        cfg->serial = GW_SERIAL_SOCKET;
        if (c->fd >= 0) {
            return refuse(errp,
                          "-chardev %s: a serial socket takes path=", c->id);
        }
        cfg->serial_path = g_strdup(c->path);
        return true;
    }
    if (!g_str_has_prefix(c->path, "/dev/fdset/")) {
        if (c->append) {
            return refuse(errp,
                          "-chardev file,id=%s: append=on is taken "
                          "for /dev/fdset/N paths only",
                          c->id);
        }
        cfg->serial = GW_SERIAL_FILE;
        cfg->serial_path = g_strdup(c->path);
        return true;
    }
    set = strtoul(c->path + strlen("/dev/fdset/"), NULL, 10);
    f = gw_qemu_cli_fdset_writable(p->q, (unsigned)set);
    if (!f) {
        return refuse(errp,
                      "-chardev file,id=%s: no writable fd in %s "
                      "(-add-fd)",
                      c->id, c->path);
    }
    cfg->serial = GW_SERIAL_FD;
    cfg->serial_path = g_strdup_printf("%d", f->fd);
    return true;
}

static bool
finish_memory(GwQemuParse *p, GError **errp)
{
    if (!p->machine_backend && !p->mem_backend) {
        return true;
    }
    if (g_strcmp0(p->machine_backend, p->mem_backend) != 0) {
        return refuse(errp,
                      "-machine memory-backend=%s: it must name the "
                      "one -object memory-backend-* (%s)",
                      p->machine_backend ? p->machine_backend : "",
                      p->mem_backend ? p->mem_backend : "none");
    }
    if (p->have_m && p->q->cfg->mem_size != p->backend_size) {
        return refuse(errp, "-m and -object %s disagree on the RAM size",
                      p->mem_backend);
    }
    return set_mem_size(p, "-object", p->backend_size, errp);
}

static bool
finish_machine(GwQemuParse *p, GError **errp)
{
    GwQemuCli *q = p->q;

    q->kvm = !p->accel || strstr(p->accel, "kvm") != NULL;
    if (!q->machine) {
        q->machine = g_strdup(GW_QEMU_MACHINE_PC); /* QEMU's default */
    }
    if (strcmp(q->machine, "none") == 0) {
        return !q->cfg->kernel ||
               refuse(errp, "-kernel: -machine none runs no guest");
    }
    if (!q->kvm) {
        return refuse(errp, "-accel %s: godwit runs guests with KVM only",
                      p->accel);
    }
    if (!q->cfg->kernel) {
        return refuse(errp,
                      "-machine %s: godwit has no firmware: it boots "
                      "a Multiboot kernel given with -kernel (<os>"
                      "<kernel>)",
                      q->machine);
    }
    return true;
}

bool
gw_qemu_cli_finish(GwQemuParse *p, GError **errp)
{
    return finish_machine(p, errp) && finish_memory(p, errp) &&
           (!p->serial_chardev || finish_serial(p, errp));
}
