/*
 * QEMU's command line, translated into a GwConfig.  See
 * include/godwit/qemu-cli.h.  The option table is the one place that
 * says which options exist; each handler takes the keys it understands
 * from the parsed value and refuses whatever is left.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <godwit/optstr.h>
#include <godwit/qemu-cli.h>
#include <godwit/util.h>
#include "qemu-cli-priv.h"

static void
qemu_fd_free(GwQemuFd *f)
{
    if (f->fd >= 0) {
        close(f->fd);
    }
    g_free(f->opaque);
    g_free(f);
}

static void
chardev_free(GwQemuChardev *c)
{
    g_free(c->id);
    g_free(c->filename);
    g_free(c);
}

void
gw_qemu_cli_free(GwQemuCli *q)
{
    if (!q) {
        return;
    }
    if (q->cfg && q->cfg->qmp_fd >= 0) {
        close(q->cfg->qmp_fd);
    }
    gw_config_free(q->cfg);
    g_free(q->name);
    g_free(q->uuid);
    g_free(q->machine);
    g_free(q->pidfile);
    g_ptr_array_unref(q->fds);
    g_ptr_array_unref(q->chars);
    g_free(q);
}

GwQemuFd *
gw_qemu_cli_fdset_writable(GwQemuCli *q, unsigned set)
{
    for (guint i = 0; i < q->fds->len; i++) {
        GwQemuFd *f = q->fds->pdata[i];
        int fl = f->fd >= 0 ? fcntl(f->fd, F_GETFL) : -1;
        if (f->set == set && fl >= 0 && (fl & O_ACCMODE) != O_RDONLY) {
            return f;
        }
    }
    return NULL;
}

/* ---- values: QemuOpts' "[implied,]k=v,…" or a JSON object ---- */

static bool
json_to_kv(const char *opt, const char *val, GHashTable *kv, GError **errp)
{
    g_autoptr(json_object) j = json_tokener_parse(val);

    if (!j || !json_object_is_type(j, json_type_object)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "%s: not a JSON object: %s", opt, val);
        return false;
    }
    json_object_object_foreach(j, key, v)
    {
        switch (json_object_get_type(v)) {
        case json_type_boolean:
            g_hash_table_insert(
                kv, g_strdup(key),
                g_strdup(json_object_get_boolean(v) ? "on" : "off"));
            break;
        case json_type_int:
        case json_type_string:
            g_hash_table_insert(kv, g_strdup(key),
                                g_strdup(json_object_get_string(v)));
            break;
        default:
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "%s: '%s' must be a string, a number or a boolean", opt,
                        key);
            return false;
        }
    }
    return true;
}

static bool
opts_to_kv(const char *opt, const char *val, const char *implied,
           GHashTable *kv, GError **errp)
{
    const char *rest = val;
    g_auto(GStrv) pairs = NULL;

    if (implied) {
        g_autofree char *head = gw_optstr_head(val, &rest);
        if (!strchr(head, '=')) {
            g_hash_table_insert(kv, g_strdup(implied), g_steal_pointer(&head));
        } else {
            rest = val;
        }
    }
    if (!rest || !*rest) {
        return true;
    }
    pairs = gw_optstr_split(opt, rest, errp);
    if (!pairs) {
        return false;
    }
    for (guint i = 0; pairs[i]; i += 2) {
        if (g_hash_table_contains(kv, pairs[i])) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "%s: '%s' given twice", opt, pairs[i]);
            return false;
        }
        g_hash_table_insert(kv, g_strdup(pairs[i]), g_strdup(pairs[i + 1]));
    }
    return true;
}

GHashTable *
gw_qemu_opts(const char *opt, const char *val, const char *implied,
             GError **errp)
{
    g_autoptr(GHashTable) kv =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    bool ok = val[0] == '{' ? json_to_kv(opt, val, kv, errp)
                            : opts_to_kv(opt, val, implied, kv, errp);

    return ok ? g_steal_pointer(&kv) : NULL;
}

char *
gw_qemu_take(GHashTable *kv, const char *key)
{
    gpointer k = NULL, v = NULL;

    if (!g_hash_table_steal_extended(kv, key, &k, &v)) {
        return NULL;
    }
    g_free(k);
    return v;
}

bool
gw_qemu_take_bool(const char *opt, GHashTable *kv, const char *key, bool *out,
                  GError **errp)
{
    static const char *const yes[] = {"on", "yes", "true"};
    static const char *const no[] = {"off", "no", "false"};
    g_autofree char *v = gw_qemu_take(kv, key);

    if (!v) {
        return true;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(yes); i++) {
        if (strcmp(v, yes[i]) == 0 || strcmp(v, no[i]) == 0) {
            *out = strcmp(v, yes[i]) == 0;
            return true;
        }
    }
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "%s: %s expects on or off, got '%s'", opt, key, v);
    return false;
}

bool
gw_qemu_take_expect(const char *opt, GHashTable *kv, const char *key,
                    const char *want, const char *why, GError **errp)
{
    g_autofree char *v = gw_qemu_take(kv, key);

    if (v && strcmp(v, want) != 0) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID, "%s: %s=%s: %s", opt, key,
                    v, why);
        return false;
    }
    return true;
}

bool
gw_qemu_no_leftovers(const char *opt, GHashTable *kv, GError **errp)
{
    GHashTableIter it;
    gpointer k, v;

    g_hash_table_iter_init(&it, kv);
    if (g_hash_table_iter_next(&it, &k, &v)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "%s: '%s=%s' is not supported by godwit", opt, (char *)k,
                    (char *)v);
        return false;
    }
    return true;
}

/* ---- options without a value ---- */

static bool
opt_S(GwQemuParse *p, const char *val, GError **errp)
{
    p->q->cfg->start_paused = true;
    return true;
}

static bool
opt_accept(GwQemuParse *p, const char *val, GError **errp)
{
    return true; /* harmless: see docs/user-guide.md */
}

static bool
opt_daemonize(GwQemuParse *p, const char *val, GError **errp)
{
    p->q->daemonize = true;
    return true;
}

static bool
opt_enable_kvm(GwQemuParse *p, const char *val, GError **errp)
{
    p->accel = g_strdup("kvm");
    return true;
}

static bool
opt_no_acpi(GwQemuParse *p, const char *val, GError **errp)
{
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "-no-acpi: godwit's board needs ACPI (its power button, "
                "power-off and PCI hotplug are ACPI): give the domain "
                "<features><acpi/></features>");
    return false;
}

/* ---- simple options ---- */

static bool
opt_name(GwQemuParse *p, const char *val, GError **errp)
{
    g_autoptr(GHashTable) kv = gw_qemu_opts("-name", val, "guest", errp);
    bool debug_threads = false;

    if (!kv || !gw_qemu_take_bool("-name", kv, "debug-threads", &debug_threads,
                                  errp)) {
        return false;
    }
    g_free(p->q->name);
    p->q->name = gw_qemu_take(kv, "guest");
    g_free(gw_qemu_take(kv, "process")); /* a thread name: harmless */
    return gw_qemu_no_leftovers("-name", kv, errp);
}

static bool
opt_uuid(GwQemuParse *p, const char *val, GError **errp)
{
    if (!g_uuid_string_is_valid(val)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "-uuid: '%s' is not a UUID", val);
        return false;
    }
    g_free(p->q->uuid);
    p->q->uuid = g_strdup(val);
    return true;
}

static bool
opt_pidfile(GwQemuParse *p, const char *val, GError **errp)
{
    g_free(p->q->pidfile);
    p->q->pidfile = g_strdup(val);
    return true;
}

static bool
opt_kernel(GwQemuParse *p, const char *val, GError **errp)
{
    g_free(p->q->cfg->kernel);
    p->q->cfg->kernel = g_strdup(val);
    return true;
}

static bool
opt_append(GwQemuParse *p, const char *val, GError **errp)
{
    g_free(p->q->cfg->cmdline);
    p->q->cfg->cmdline = g_strdup(val);
    return true;
}

static bool
opt_initrd(GwQemuParse *p, const char *val, GError **errp)
{
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "-initrd: godwit boots a Multiboot kernel alone; it loads "
                "no initrd");
    return false;
}

static bool
opt_incoming(GwQemuParse *p, const char *val, GError **errp)
{
    g_autofree char *arg = g_strdup_printf("--incoming=%s", val);
    char *argv[] = {"godwit", arg, NULL};
    g_autoptr(GwConfig) c = gw_config_parse_argv(2, argv, errp);

    if (!c) {
        g_prefix_error(errp, "-incoming: ");
        return false;
    }
    g_free(p->q->cfg->incoming);
    p->q->cfg->incoming = g_steal_pointer(&c->incoming);
    return true;
}

static bool
opt_display(GwQemuParse *p, const char *val, GError **errp)
{
    if (strcmp(val, "none") != 0) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "-display %s: godwit has no display; only -display none",
                    val);
        return false;
    }
    return true;
}

static bool
opt_sandbox(GwQemuParse *p, const char *val, GError **errp)
{
    static const char *const keys[] = {"obsolete", "elevateprivileges", "spawn",
                                       "resourcecontrol"};
    g_autoptr(GHashTable) kv = gw_qemu_opts("-sandbox", val, "enable", errp);
    bool on = false;

    if (!kv || !gw_qemu_take_bool("-sandbox", kv, "enable", &on, errp)) {
        return false;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        if (!gw_qemu_take_expect("-sandbox", kv, keys[i], "deny",
                                 "godwit's filter denies it always", errp)) {
            return false;
        }
    }
    p->q->cfg->seccomp = on ? GW_SECCOMP_ON : GW_SECCOMP_OFF;
    return gw_qemu_no_leftovers("-sandbox", kv, errp);
}

static bool
opt_msg(GwQemuParse *p, const char *val, GError **errp)
{
    g_autoptr(GHashTable) kv = gw_qemu_opts("-msg", val, NULL, errp);
    bool ts = false;

    /* Timestamps on messages only help a reader of the log: harmless. */
    return kv && gw_qemu_take_bool("-msg", kv, "timestamp", &ts, errp) &&
           gw_qemu_no_leftovers("-msg", kv, errp);
}

static bool
opt_rtc(GwQemuParse *p, const char *val, GError **errp)
{
    g_autoptr(GHashTable) kv = gw_qemu_opts("-rtc", val, NULL, errp);

    /* godwit's board has no CMOS clock, so there is nothing to set; a
     * base other than UTC would be a promise about one. */
    return kv &&
           gw_qemu_take_expect("-rtc", kv, "base", "utc",
                               "godwit's board has no RTC to keep another "
                               "time in",
                               errp) &&
           gw_qemu_take_expect("-rtc", kv, "driftfix", "slew",
                               "godwit's board has no RTC", errp) &&
           gw_qemu_no_leftovers("-rtc", kv, errp);
}

static bool
opt_boot(GwQemuParse *p, const char *val, GError **errp)
{
    g_autoptr(GHashTable) kv = gw_qemu_opts("-boot", val, "order", errp);
    bool strict = false, menu = false;

    if (!kv || !gw_qemu_take_bool("-boot", kv, "strict", &strict, errp) ||
        !gw_qemu_take_bool("-boot", kv, "menu", &menu, errp)) {
        return false;
    }
    if (menu) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "-boot menu=on: godwit has no firmware and no boot menu");
        return false;
    }
    if (g_hash_table_contains(kv, "order") ||
        g_hash_table_contains(kv, "once")) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "-boot: godwit has no firmware to choose a boot device: "
                    "it boots the -kernel it is given");
        return false;
    }
    return gw_qemu_no_leftovers("-boot", kv, errp);
}

static bool
opt_overcommit(GwQemuParse *p, const char *val, GError **errp)
{
    g_autoptr(GHashTable) kv = gw_qemu_opts("-overcommit", val, NULL, errp);

    return kv &&
           gw_qemu_take_expect("-overcommit", kv, "mem-lock", "off",
                               "godwit does not lock guest RAM", errp) &&
           gw_qemu_take_expect("-overcommit", kv, "cpu-pm", "off",
                               "godwit does not give the guest the host's "
                               "CPU power management",
                               errp) &&
           gw_qemu_no_leftovers("-overcommit", kv, errp);
}

static bool
opt_audiodev(GwQemuParse *p, const char *val, GError **errp)
{
    g_autoptr(GHashTable) kv = gw_qemu_opts("-audiodev", val, "driver", errp);
    g_autofree char *id = NULL;

    if (!kv || !gw_qemu_take_expect("-audiodev", kv, "driver", "none",
                                    "godwit has no sound device", errp)) {
        return false;
    }
    id = gw_qemu_take(kv, "id");
    return gw_qemu_no_leftovers("-audiodev", kv, errp);
}

static bool
opt_add_fd(GwQemuParse *p, const char *val, GError **errp)
{
    g_autoptr(GHashTable) kv = gw_qemu_opts("-add-fd", val, NULL, errp);
    g_autofree char *set = NULL, *fd = NULL;
    guint64 s, f;
    GwQemuFd *e;

    if (!kv) {
        return false;
    }
    set = gw_qemu_take(kv, "set");
    fd = gw_qemu_take(kv, "fd");
    if (!set || !fd ||
        !g_ascii_string_to_unsigned(set, 10, 0, G_MAXINT, &s, NULL) ||
        !g_ascii_string_to_unsigned(fd, 10, 3, G_MAXINT, &f, NULL)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "-add-fd: expected set=<n>,fd=<n> (fd above 2), got '%s'",
                    val);
        return false;
    }
    if (fcntl((int)f, F_GETFD) < 0) {
        return gw_error_errno(errp, errno, "-add-fd: fd %s", fd);
    }
    e = g_new0(GwQemuFd, 1);
    e->set = (unsigned)s;
    e->fd = (int)f;
    e->opaque = gw_qemu_take(kv, "opaque");
    g_ptr_array_add(p->q->fds, e);
    if (fcntl(e->fd, F_SETFD, FD_CLOEXEC) < 0) {
        return gw_error_errno(errp, errno, "-add-fd: fd %s", fd);
    }
    return gw_qemu_no_leftovers("-add-fd", kv, errp);
}

/* ---- the table ---- */

typedef bool (*OptFn)(GwQemuParse *p, const char *val, GError **errp);

static const struct {
    const char *name;
    bool has_arg;
    OptFn fn;
} options[] = {
    {"S", false, opt_S},
    {"no-user-config", false, opt_accept},
    {"nodefaults", false, opt_accept},
    {"nographic", false, opt_accept},
    {"no-shutdown", false, opt_accept},
    {"daemonize", false, opt_daemonize},
    {"enable-kvm", false, opt_enable_kvm},
    {"no-acpi", false, opt_no_acpi},
    {"name", true, opt_name},
    {"uuid", true, opt_uuid},
    {"pidfile", true, opt_pidfile},
    {"kernel", true, opt_kernel},
    {"append", true, opt_append},
    {"initrd", true, opt_initrd},
    {"incoming", true, opt_incoming},
    {"display", true, opt_display},
    {"sandbox", true, opt_sandbox},
    {"msg", true, opt_msg},
    {"rtc", true, opt_rtc},
    {"boot", true, opt_boot},
    {"overcommit", true, opt_overcommit},
    {"audiodev", true, opt_audiodev},
    {"add-fd", true, opt_add_fd},
    {"machine", true, gw_qemu_opt_machine},
    {"accel", true, gw_qemu_opt_accel},
    {"cpu", true, gw_qemu_opt_cpu},
    {"m", true, gw_qemu_opt_m},
    {"smp", true, gw_qemu_opt_smp},
    {"object", true, gw_qemu_opt_object},
    {"chardev", true, gw_qemu_opt_chardev},
    {"mon", true, gw_qemu_opt_mon},
    {"qmp", true, gw_qemu_opt_qmp},
    {"device", true, gw_qemu_opt_device},
    {"netdev", true, gw_qemu_opt_netdev},
};

static int
find_option(const char *arg)
{
    if (arg[0] != '-' || !arg[1]) {
        return -1;
    }
    arg += arg[1] == '-' ? 2 : 1; /* QEMU takes -opt and --opt alike */
    for (size_t i = 0; i < G_N_ELEMENTS(options); i++) {
        if (strcmp(arg, options[i].name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

bool
gw_qemu_cli_detect(int argc, char **argv)
{
    return argc > 1 && argv[1][0] == '-' && argv[1][1] != '-' &&
           find_option(argv[1]) >= 0;
}

static bool
parse_args(GwQemuParse *p, int argc, char **argv, GError **errp)
{
    for (int i = 1; i < argc; i++) {
        int o = find_option(argv[i]);
        const char *val = NULL;
        if (o < 0) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "%s: not an option godwit knows (QEMU grammar)",
                        argv[i]);
            return false;
        }
        if (options[o].has_arg && ++i >= argc) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "-%s: requires an argument", options[o].name);
            return false;
        }
        val = options[o].has_arg ? argv[i] : NULL;
        if (val && !g_utf8_validate(val, -1, NULL)) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "-%s: not valid UTF-8", options[o].name);
            return false;
        }
        if (!options[o].fn(p, val, errp)) {
            return false;
        }
    }
    return true;
}

static void
parse_clear(GwQemuParse *p)
{
    g_free(p->accel);
    g_free(p->mem_backend);
    g_free(p->machine_backend);
    g_free(p->serial_chardev);
    g_clear_pointer(&p->chardevs, g_hash_table_unref);
}

GwQemuCli *
gw_qemu_cli_parse(int argc, char **argv, GError **errp)
{
    g_autoptr(GwQemuCli) q = g_new0(GwQemuCli, 1);
    GwQemuParse p = {q};
    bool ok;

    q->cfg = gw_config_new();
    q->cfg->serial = GW_SERIAL_OFF; /* -nodefaults or not: no -serial */
    q->fds = g_ptr_array_new_with_free_func((GDestroyNotify)qemu_fd_free);
    q->chars = g_ptr_array_new_with_free_func((GDestroyNotify)chardev_free);
    p.chardevs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify)gw_qemu_chardev_free);
    ok = parse_args(&p, argc, argv, errp) && gw_qemu_cli_finish(&p, errp);
    parse_clear(&p);
    return ok ? g_steal_pointer(&q) : NULL;
}
