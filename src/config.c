#include <string.h>
#include <godwit/config.h>
#include <godwit/optstr.h>
#include <godwit/util.h>

#define DEFAULT_MEM_SIZE (256ull << 20)

/*
 * What GOptionContext fills in, before the values are understood: the
 * bytes as given (G_OPTION_ARG_FILENAME), since GOption's own conversion
 * from the locale fails without naming the option; check_text() checks
 * them instead.
 */
typedef struct {
    char *memory, *cpus, *kernel, *cmdline, *serial, *qmp, *qtest, *incoming;
    char *platform, *seccomp, *log_level;
    char **vdpa, **vdpa_sim;
    gboolean version, print_config, help;
} RawArgs;

static void
raw_args_clear(RawArgs *r)
{
    g_free(r->memory);
    g_free(r->cpus);
    g_free(r->kernel);
    g_free(r->cmdline);
    g_free(r->serial);
    g_free(r->qmp);
    g_free(r->qtest);
    g_free(r->incoming);
    g_free(r->platform);
    g_free(r->seccomp);
    g_free(r->log_level);
    g_strfreev(r->vdpa);
    g_strfreev(r->vdpa_sim);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(RawArgs, raw_args_clear)

/*
 * Paths and names are taken in UTF-8, whatever the locale: the name of a
 * file is its bytes (converting from a legacy charset would change
 * them), and names and paths reach QMP and --print-config as JSON,
 * which is UTF-8.  `what` names the option ("--serial").
 */
static bool
check_text(const char *what, const char *val, GError **errp)
{
    const char *end;
    g_autofree char *good = NULL;

    if (g_utf8_validate(val, -1, &end)) {
        return true;
    }
    good = g_strndup(val, end - val);
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "%s: byte 0x%02x after '%s' is not valid UTF-8 (paths and "
                "names must be UTF-8)",
                what, (guchar)*end, good);
    return false;
}

static GOptionContext *
new_context(RawArgs *r)
{
    const GOptionEntry entries[] = {
        {"memory", 0, 0, G_OPTION_ARG_FILENAME, &r->memory,
         "Guest RAM (default size=256M)",
         "size=<n>[K|M|G][,hugepages=on|off][,shared=on|off]"},
        {"cpus", 0, 0, G_OPTION_ARG_FILENAME, &r->cpus,
         "vCPUs (default boot=1)", "boot=<n>"},
        {"kernel", 0, 0, G_OPTION_ARG_FILENAME, &r->kernel,
         "32-bit Multiboot v1 ELF to boot", "<file>"},
        {"cmdline", 0, 0, G_OPTION_ARG_FILENAME, &r->cmdline,
         "Command line passed in the Multiboot info", "<string>"},
        {"serial", 0, 0, G_OPTION_ARG_FILENAME, &r->serial,
         "COM1 (default stdio)", "off|stdio|file=<path>|socket=<path>"},
        {"qmp", 0, 0, G_OPTION_ARG_FILENAME, &r->qmp,
         "QMP control socket (QEMU's unix:PATH,server=on,wait=off too)",
         "<path>"},
        {"qtest", 0, 0, G_OPTION_ARG_FILENAME, &r->qtest,
         "No vCPUs: a test plays the CPU over QEMU's qtest protocol on this "
         "socket (for testing without KVM)",
         "<path>"},
        {"incoming", 0, 0, G_OPTION_ARG_FILENAME, &r->incoming,
         "Wait for an incoming migration", "<uri>|defer"},
        {"platform", 0, 0, G_OPTION_ARG_FILENAME, &r->platform,
         "Platform (default num_pci_segments=1)",
         "num_pci_segments=<n>,iommu_segments=[<s>,...]"},
        {"seccomp", 0, 0, G_OPTION_ARG_FILENAME, &r->seccomp,
         "System call filter (default true)", "true|false|log"},
        {"log-level", 0, 0, G_OPTION_ARG_FILENAME, &r->log_level,
         "Most verbose messages shown (default warning)",
         "error|warning|info|debug"},
        {"vdpa", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &r->vdpa,
         "vDPA device (repeatable)",
         "path=<device_path>,num_queues=<n>,iommu=on|off,id=<id>,"
         "pci_segment=<n>"},
        {"vdpa-sim", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &r->vdpa_sim,
         "Simulated vDPA device, like `vdpa dev add` (repeatable)",
         "name=<name>,mgmtdev=vdpasim_blk|vdpasim_net[,backing=<file>]"
         "[,capacity=<size>][,mac=<mac>]"},
        {"print-config", 0, 0, G_OPTION_ARG_NONE, &r->print_config,
         "Print the parsed configuration as JSON and exit", NULL},
        {"version", 0, 0, G_OPTION_ARG_NONE, &r->version,
         "Print the version and exit", NULL},
        {"help", 'h', 0, G_OPTION_ARG_NONE, &r->help, "Show this help and exit",
         NULL},
        {NULL},
    };
    GOptionContext *ctx = g_option_context_new(NULL);
    g_option_context_set_summary(
        ctx, "godwit: a KVM virtual machine monitor for vDPA devices "
             "and their live migration.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    /* --help is ours, so that parsing never exits the process. */
    g_option_context_set_help_enabled(ctx, FALSE);
    return ctx;
}

char *
gw_config_help(void)
{
    g_auto(RawArgs) r = {0};
    GOptionContext *ctx = new_context(&r);
    char *help = g_option_context_get_help(ctx, TRUE, NULL);
    g_option_context_free(ctx);
    return help;
}

void
gw_vdpa_config_free(GwVdpaConfig *v)
{
    if (v) {
        g_free(v->path);
        g_free(v->id);
        g_free(v);
    }
}

GwVdpaConfig *
gw_vdpa_config_copy(const GwVdpaConfig *v)
{
    GwVdpaConfig *c = g_memdup2(v, sizeof(*v));
    c->path = g_strdup(v->path);
    c->id = g_strdup(v->id);
    return c;
}

void
gw_vdpa_sim_config_free(GwVdpaSimConfig *s)
{
    if (s) {
        g_free(s->name);
        g_free(s->mgmtdev);
        g_free(s->backing);
        g_free(s->mac);
        g_free(s);
    }
}

void
gw_config_free(GwConfig *cfg)
{
    if (!cfg) {
        return;
    }
    g_free(cfg->kernel);
    g_free(cfg->cmdline);
    g_free(cfg->serial_path);
    g_free(cfg->qmp_path);
    g_free(cfg->qtest_path);
    g_free(cfg->incoming);
    g_ptr_array_unref(cfg->vdpa);
    g_ptr_array_unref(cfg->vdpa_sim);
    g_free(cfg);
}

GwVdpaConfig *
gw_vdpa_config_parse(const char *str, GError **errp)
{
    static const GwOptKey keys[] = {
        {"path", GW_OPT_STR, offsetof(GwVdpaConfig, path), true},
        {"num_queues", GW_OPT_U32, offsetof(GwVdpaConfig, num_queues), false, 1,
         GW_MAX_VDPA_QUEUES},
        {"iommu", GW_OPT_ONOFF, offsetof(GwVdpaConfig, iommu)},
        {"id", GW_OPT_STR, offsetof(GwVdpaConfig, id)},
        {"pci_segment", GW_OPT_U16, offsetof(GwVdpaConfig, pci_segment)},
        {NULL},
    };
    g_autoptr(GwVdpaConfig) v = g_new0(GwVdpaConfig, 1);

    v->num_queues = 1;
    if (!gw_optstr_parse("--vdpa", str, keys, v, errp)) {
        return NULL;
    }
    return g_steal_pointer(&v);
}

bool
gw_vdpa_config_check(const char *opt, GwVdpaConfig *v, GHashTable *taken_ids,
                     uint16_t num_pci_segments, unsigned *next_auto_id,
                     GError **errp)
{
    if (v->pci_segment >= num_pci_segments) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "%s: pci_segment %u does not exist (the platform has "
                    "num_pci_segments=%u)",
                    opt, v->pci_segment, num_pci_segments);
        return false;
    }
    if (v->num_queues == 0 || v->num_queues > GW_MAX_VDPA_QUEUES) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "%s: num_queues must be 1..%u", opt, GW_MAX_VDPA_QUEUES);
        return false;
    }
    if (v->id && !check_text(opt, v->id, errp)) {
        return false;
    }
    if (v->id && v->id[0] == '_') {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "%s: id '%s': ids starting with '_' are reserved for "
                    "generated ids",
                    opt, v->id);
        return false;
    }
    while (!v->id) {
        g_autofree char *id = g_strdup_printf("_vdpa%u", (*next_auto_id)++);
        if (!taken_ids || !g_hash_table_contains(taken_ids, id)) {
            v->id = g_steal_pointer(&id);
        }
    }
    if (taken_ids && g_hash_table_contains(taken_ids, v->id)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_EXISTS,
                    "%s: id '%s' is already in use", opt, v->id);
        return false;
    }
    return true;
}

bool
gw_vdpa_sim_config_check(GwVdpaSimConfig *s, GError **errp)
{
    const char *mgmtdev = s->mgmtdev;
    uint8_t mac[6];

    if (strcmp(mgmtdev, "vdpasim_blk") == 0) {
        s->type = GW_VDPA_SIM_BLK;
    } else if (strcmp(mgmtdev, "vdpasim_net") == 0) {
        s->type = GW_VDPA_SIM_NET;
    } else {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "mgmtdev: '%s' is not vdpasim_blk or "
                    "vdpasim_net",
                    mgmtdev);
        return false;
    }
    if (s->type == GW_VDPA_SIM_NET && (s->backing || s->capacity)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "backing and capacity are for vdpasim_blk");
        return false;
    }
    if (s->type == GW_VDPA_SIM_BLK && s->mac) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID, "mac is for vdpasim_net");
        return false;
    }
    if (s->capacity % 512) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "capacity must be a multiple of 512 bytes");
        return false;
    }
    if (s->mac && !gw_parse_mac(s->mac, mac, NULL)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "mac: '%s' is not a MAC address "
                    "(aa:bb:cc:dd:ee:ff)",
                    s->mac);
        return false;
    }
    if (!check_text("name", s->name, errp)) {
        return false;
    }
    if (strchr(s->name, '/')) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "name '%s' must not contain '/'", s->name);
        return false;
    }
    return true;
}

GwVdpaSimConfig *
gw_vdpa_sim_config_parse(const char *str, GError **errp)
{
    static const GwOptKey keys[] = {
        {"name", GW_OPT_STR, offsetof(GwVdpaSimConfig, name), true},
        {"mgmtdev", GW_OPT_STR, offsetof(GwVdpaSimConfig, mgmtdev), true},
        {"backing", GW_OPT_STR, offsetof(GwVdpaSimConfig, backing)},
        {"mac", GW_OPT_STR, offsetof(GwVdpaSimConfig, mac)},
        {"capacity", GW_OPT_SIZE, offsetof(GwVdpaSimConfig, capacity), false,
         512},
        {NULL},
    };
    g_autoptr(GwVdpaSimConfig) s = g_new0(GwVdpaSimConfig, 1);

    if (!gw_optstr_parse("--vdpa-sim", str, keys, s, errp)) {
        return NULL;
    }
    if (!gw_vdpa_sim_config_check(s, errp)) {
        g_prefix_error(errp, "--vdpa-sim: ");
        return NULL;
    }
    return g_steal_pointer(&s);
}

static bool
parse_memory(GwConfig *cfg, const char *str, GError **errp)
{
    struct {
        uint64_t size;
        bool hugepages, shared;
    } m = {cfg->mem_size, false, true};
    static const GwOptKey keys[] = {
        {"size", GW_OPT_SIZE, offsetof(typeof(m), size), false, 1 << 20,
         1ull << 40},
        {"hugepages", GW_OPT_ONOFF, offsetof(typeof(m), hugepages)},
        {"shared", GW_OPT_ONOFF, offsetof(typeof(m), shared)},
        {NULL},
    };

    if (!gw_optstr_parse("--memory", str, keys, &m, errp)) {
        return false;
    }
    if (m.size % 4096) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "--memory: size must be a multiple of 4 KiB");
        return false;
    }
    cfg->mem_size = m.size;
    cfg->hugepages = m.hugepages;
    cfg->mem_shared = m.shared;
    return true;
}

static bool
parse_cpus(GwConfig *cfg, const char *str, GError **errp)
{
    static const GwOptKey keys[] = {
        {"boot", GW_OPT_U32, offsetof(GwConfig, boot_vcpus), false, 1,
         GW_MAX_VCPUS},
        {NULL},
    };
    return gw_optstr_parse("--cpus", str, keys, cfg, errp);
}

static bool
parse_serial(GwConfig *cfg, const char *str, GError **errp)
{
    if (strcmp(str, "off") == 0 || strcmp(str, "stdio") == 0) {
        cfg->serial = str[0] == 'o' ? GW_SERIAL_OFF : GW_SERIAL_STDIO;
        return true;
    }
    if (g_str_has_prefix(str, "file=") && str[5]) {
        cfg->serial = GW_SERIAL_FILE;
        cfg->serial_path = g_strdup(str + 5);
        return true;
    }
    if (g_str_has_prefix(str, "socket=") && str[7]) {
        cfg->serial = GW_SERIAL_SOCKET;
        cfg->serial_path = g_strdup(str + 7);
        return true;
    }
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "--serial: expected off, stdio, file=<path> or "
                "socket=<path>, got '%s'",
                str);
    return false;
}

/*
 * A listening unix socket: "PATH" (taken as it is), or QEMU's
 * "unix:PATH[,server=on][,wait=off]" spelling (the only options that
 * make sense for a server), where ",," in PATH is a literal comma.
 */
static bool
parse_socket(const char *opt, const char *str, char **path, GError **errp)
{
    g_auto(GStrv) kv = NULL;
    const char *rest = NULL;

    if (g_str_has_prefix(str, "unix:")) {
        *path = gw_optstr_head(str + 5, &rest);
    } else {
        *path = g_strdup(str);
    }
    if (!**path) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID, "%s: empty path", opt);
        return false;
    }
    if (!rest) {
        return true;
    }
    kv = gw_optstr_split(opt, rest, errp);
    if (!kv) {
        return false;
    }
    for (guint i = 0; kv[i]; i += 2) {
        bool server = strcmp(kv[i], "server") == 0;
        bool wait = strcmp(kv[i], "wait") == 0;
        if ((server && strcmp(kv[i + 1], "on") != 0) ||
            (wait && strcmp(kv[i + 1], "off") != 0) || (!server && !wait)) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "%s: only server=on and wait=off are supported, "
                        "got '%s=%s'",
                        opt, kv[i], kv[i + 1]);
            return false;
        }
    }
    return true;
}

static bool
parse_qmp(GwConfig *cfg, const char *str, GError **errp)
{
    return parse_socket("--qmp", str, &cfg->qmp_path, errp);
}

static bool
parse_qtest(GwConfig *cfg, const char *str, GError **errp)
{
    return parse_socket("--qtest", str, &cfg->qtest_path, errp);
}

static bool
parse_incoming(GwConfig *cfg, const char *str, GError **errp)
{
    static const char *const schemes[] = {"tcp:", "unix:", "fd:", "file:"};

    if (strcmp(str, "defer") == 0) {
        cfg->incoming = g_strdup(str);
        return true;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(schemes); i++) {
        if (g_str_has_prefix(str, schemes[i]) &&
            str[strlen(schemes[i])] != '\0') {
            cfg->incoming = g_strdup(str);
            return true;
        }
    }
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "--incoming: expected defer or a tcp:, unix:, fd: or file: "
                "URI, got '%s'",
                str);
    return false;
}

static bool
parse_seccomp(GwConfig *cfg, const char *str, GError **errp)
{
    static const char *const names[] = {"true", "false", "log"};

    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        if (strcmp(str, names[i]) == 0) {
            cfg->seccomp = (GwSeccompMode)i;
            return true;
        }
    }
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "--seccomp: expected true, false or log, got '%s'", str);
    return false;
}

static bool
parse_log_level(GwConfig *cfg, const char *str, GError **errp)
{
    static const struct {
        const char *name;
        GLogLevelFlags level;
    } levels[] = {
        {"error", G_LOG_LEVEL_CRITICAL},
        {"warning", G_LOG_LEVEL_WARNING},
        {"info", G_LOG_LEVEL_INFO},
        {"debug", G_LOG_LEVEL_DEBUG},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(levels); i++) {
        if (strcmp(str, levels[i].name) == 0) {
            cfg->log_level = levels[i].level;
            return true;
        }
    }
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "--log-level: expected error, warning, info or debug, "
                "got '%s'",
                str);
    return false;
}

typedef bool (*ParseFn)(GwConfig *cfg, const char *str, GError **errp);

static bool
parse_scalars(GwConfig *cfg, const RawArgs *r, GError **errp)
{
    const struct {
        const char *val;
        ParseFn fn;
    } opts[] = {
        {r->memory, parse_memory},
        {r->cpus, parse_cpus},
        {r->platform, gw_platform_config_parse},
        {r->serial, parse_serial},
        {r->qmp, parse_qmp},
        {r->qtest, parse_qtest},
        {r->incoming, parse_incoming},
        {r->seccomp, parse_seccomp},
        {r->log_level, parse_log_level},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(opts); i++) {
        if (opts[i].val && !opts[i].fn(cfg, opts[i].val, errp)) {
            return false;
        }
    }
    if (r->kernel && !*r->kernel) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID, "--kernel: empty path");
        return false;
    }
    if (r->kernel && r->qtest) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "--qtest: a qtest machine runs no kernel; drop --kernel");
        return false;
    }
    cfg->kernel = g_strdup(r->kernel);
    cfg->cmdline = g_strdup(r->cmdline);
    return true;
}

static bool
check_raw_args(const RawArgs *r, GError **errp)
{
    const struct {
        const char *opt, *val;
    } one[] = {
        {"--memory", r->memory},       {"--cpus", r->cpus},
        {"--kernel", r->kernel},       {"--cmdline", r->cmdline},
        {"--serial", r->serial},       {"--qmp", r->qmp},
        {"--qtest", r->qtest},         {"--incoming", r->incoming},
        {"--platform", r->platform},   {"--seccomp", r->seccomp},
        {"--log-level", r->log_level},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(one); i++) {
        if (one[i].val && !check_text(one[i].opt, one[i].val, errp)) {
            return false;
        }
    }
    for (guint i = 0; r->vdpa && r->vdpa[i]; i++) {
        if (!check_text("--vdpa", r->vdpa[i], errp)) {
            return false;
        }
    }
    for (guint i = 0; r->vdpa_sim && r->vdpa_sim[i]; i++) {
        if (!check_text("--vdpa-sim", r->vdpa_sim[i], errp)) {
            return false;
        }
    }
    return true;
}

static bool
parse_sims(GwConfig *cfg, char **vals, GError **errp)
{
    g_autoptr(GHashTable) names = g_hash_table_new(g_str_hash, g_str_equal);

    for (guint i = 0; vals && vals[i]; i++) {
        GwVdpaSimConfig *s = gw_vdpa_sim_config_parse(vals[i], errp);
        if (!s) {
            return false;
        }
        g_ptr_array_add(cfg->vdpa_sim, s);
        if (!g_hash_table_add(names, s->name)) {
            g_set_error(errp, GW_ERROR, GW_ERROR_EXISTS,
                        "--vdpa-sim: name '%s' is already in use", s->name);
            return false;
        }
    }
    return true;
}

static bool
parse_vdpas(GwConfig *cfg, char **vals, GError **errp)
{
    g_autoptr(GHashTable) ids = g_hash_table_new(g_str_hash, g_str_equal);
    unsigned next_auto_id = 0;

    /* Explicit ids first, so an auto id never takes a name given later. */
    for (guint i = 0; vals && vals[i]; i++) {
        GwVdpaConfig *v = gw_vdpa_config_parse(vals[i], errp);
        if (!v) {
            return false;
        }
        g_ptr_array_add(cfg->vdpa, v);
        if (v->id &&
            !gw_vdpa_config_check("--vdpa", v, ids, cfg->num_pci_segments,
                                  &next_auto_id, errp)) {
            return false;
        }
        if (v->id) {
            g_hash_table_add(ids, v->id);
        }
    }
    for (guint i = 0; i < cfg->vdpa->len; i++) {
        GwVdpaConfig *v = cfg->vdpa->pdata[i];
        if (!v->id) {
            if (!gw_vdpa_config_check("--vdpa", v, ids, cfg->num_pci_segments,
                                      &next_auto_id, errp)) {
                return false;
            }
            g_hash_table_add(ids, v->id);
        }
        if (!gw_vdpa_config_check_iommu("--vdpa", v, cfg->iommu_segments, false,
                                        errp)) {
            return false;
        }
    }
    return true;
}

GwConfig *
gw_config_new(void)
{
    GwConfig *cfg = g_new0(GwConfig, 1);
    cfg->qmp_fd = -1;
    cfg->mem_size = DEFAULT_MEM_SIZE;
    cfg->mem_shared = true;
    cfg->boot_vcpus = 1;
    cfg->serial = GW_SERIAL_STDIO;
    cfg->num_pci_segments = 1;
    cfg->seccomp = GW_SECCOMP_ON;
    cfg->log_level = G_LOG_LEVEL_WARNING;
    cfg->vdpa =
        g_ptr_array_new_with_free_func((GDestroyNotify)gw_vdpa_config_free);
    cfg->vdpa_sim =
        g_ptr_array_new_with_free_func((GDestroyNotify)gw_vdpa_sim_config_free);
    return cfg;
}

/* GOption quotes an unknown option as it was given: keep messages UTF-8. */
static void
error_make_utf8(GError *err)
{
    if (err && !g_utf8_validate(err->message, -1, NULL)) {
        char *valid = g_utf8_make_valid(err->message, -1);
        g_free(err->message);
        err->message = valid;
    }
}

static GwConfig *
parse_argv(int argc, char **argv, GError **errp)
{
    g_auto(RawArgs) r = {0};
    g_autoptr(GwConfig) cfg = gw_config_new();
    g_autoptr(GOptionContext) ctx = new_context(&r);
    /* GOption rearranges its argv: give it a copy. */
    g_autofree char **args = g_new0(char *, argc + 1);
    int nargs = argc;

    memcpy(args, argv, sizeof(char *) * argc);
    if (!g_option_context_parse(ctx, &nargs, &args, errp)) {
        return NULL;
    }
    if (nargs > 1) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "unexpected argument '%s'", args[1]);
        return NULL;
    }
    cfg->version = r.version;
    cfg->help = r.help;
    cfg->print_config = r.print_config;
    if (!check_raw_args(&r, errp) || !parse_scalars(cfg, &r, errp) ||
        !parse_sims(cfg, r.vdpa_sim, errp) || !parse_vdpas(cfg, r.vdpa, errp)) {
        return NULL;
    }
    return g_steal_pointer(&cfg);
}

GwConfig *
gw_config_parse_argv(int argc, char **argv, GError **errp)
{
    g_autoptr(GError) err = NULL;
    GwConfig *cfg = parse_argv(argc, argv, &err);

    error_make_utf8(err);
    if (err) {
        g_propagate_error(errp, g_steal_pointer(&err));
    }
    return cfg;
}

json_object *
gw_vdpa_config_to_json(const GwVdpaConfig *v)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "path", json_object_new_string(v->path));
    json_object_object_add(o, "num_queues",
                           json_object_new_int64(v->num_queues));
    json_object_object_add(o, "iommu", json_object_new_boolean(v->iommu));
    json_object_object_add(o, "id",
                           v->id ? json_object_new_string(v->id) : NULL);
    json_object_object_add(o, "pci_segment",
                           json_object_new_int(v->pci_segment));
    return o;
}

static json_object *
sim_to_json(const GwVdpaSimConfig *s)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(s->name));
    json_object_object_add(o, "mgmtdev", json_object_new_string(s->mgmtdev));
    if (s->backing) {
        json_object_object_add(o, "backing",
                               json_object_new_string(s->backing));
    }
    if (s->mac) {
        json_object_object_add(o, "mac", json_object_new_string(s->mac));
    }
    if (s->capacity) {
        json_object_object_add(o, "capacity",
                               json_object_new_uint64(s->capacity));
    }
    return o;
}

static json_object *
str_or_null(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

json_object *
gw_config_to_json(const GwConfig *cfg)
{
    static const char *const serial[] = {"off", "stdio", "file", "socket",
                                         "fd"};
    static const char *const seccomp[] = {"true", "false", "log"};
    json_object *o = json_object_new_object();
    json_object *mem = json_object_new_object();
    json_object *cpus = json_object_new_object();
    json_object *ser = json_object_new_object();
    json_object *plat = json_object_new_object();
    json_object *vdpa = json_object_new_array();
    json_object *sims = json_object_new_array();

    json_object_object_add(mem, "size", json_object_new_uint64(cfg->mem_size));
    json_object_object_add(mem, "hugepages",
                           json_object_new_boolean(cfg->hugepages));
    json_object_object_add(mem, "shared",
                           json_object_new_boolean(cfg->mem_shared));
    json_object_object_add(o, "memory", mem);
    json_object_object_add(cpus, "boot_vcpus",
                           json_object_new_int64(cfg->boot_vcpus));
    json_object_object_add(o, "cpus", cpus);
    json_object_object_add(o, "kernel", str_or_null(cfg->kernel));
    json_object_object_add(o, "cmdline", str_or_null(cfg->cmdline));
    json_object_object_add(ser, "mode",
                           json_object_new_string(serial[cfg->serial]));
    json_object_object_add(ser, "path", str_or_null(cfg->serial_path));
    json_object_object_add(o, "serial", ser);
    json_object_object_add(o, "qmp", str_or_null(cfg->qmp_path));
    json_object_object_add(o, "qtest", str_or_null(cfg->qtest_path));
    json_object_object_add(o, "incoming", str_or_null(cfg->incoming));
    json_object_object_add(plat, "num_pci_segments",
                           json_object_new_int(cfg->num_pci_segments));
    json_object_object_add(plat, "iommu_segments",
                           gw_iommu_segments_to_json(cfg->iommu_segments));
    json_object_object_add(o, "platform", plat);
    json_object_object_add(o, "seccomp",
                           json_object_new_string(seccomp[cfg->seccomp]));
    for (guint i = 0; i < cfg->vdpa_sim->len; i++) {
        json_object_array_add(sims, sim_to_json(cfg->vdpa_sim->pdata[i]));
    }
    json_object_object_add(o, "vdpa_sim", sims);
    for (guint i = 0; i < cfg->vdpa->len; i++) {
        json_object_array_add(vdpa,
                              gw_vdpa_config_to_json(cfg->vdpa->pdata[i]));
    }
    json_object_object_add(o, "vdpa", vdpa);
    return o;
}
