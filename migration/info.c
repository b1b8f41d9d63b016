/*
 * The QMP views of the migration controller: query-migrate, and the
 * capabilities and parameters as QEMU names them.  Main thread only.
 */
#include <string.h>
#include <godwit/util.h>
#include <godwit/vm.h>
#include "mig-job.h"

#define DOWNTIME_LIMIT_MAX 2000000 /* ms, QEMU's bound */

static void
add_int(json_object *o, const char *key, int64_t v)
{
    json_object_object_add(o, key, json_object_new_int64(v));
}

static json_object *
ram_info(const GwMigStats *st)
{
    json_object *ram = json_object_new_object();

    add_int(ram, "transferred", (int64_t)st->transferred);
    add_int(ram, "remaining", (int64_t)st->remaining);
    add_int(ram, "total", (int64_t)st->total);
    add_int(ram, "duplicate", (int64_t)st->duplicate);
    add_int(ram, "skipped", 0);
    add_int(ram, "normal", (int64_t)st->normal);
    add_int(ram, "normal-bytes", (int64_t)(st->normal * GW_MIG_PAGE_SIZE));
    add_int(ram, "dirty-pages-rate", (int64_t)st->dirty_rate);
    json_object_object_add(ram, "mbps", json_object_new_double(st->mbps));
    add_int(ram, "dirty-sync-count", (int64_t)st->passes);
    add_int(ram, "page-size", GW_MIG_PAGE_SIZE);
    return ram;
}

static void
add_blockers(GwMig *mig, json_object *ret)
{
    g_autofree char *why = gw_vm_migration_blocker(mig->vm);
    json_object *list;

    if (!why) {
        return;
    }
    list = json_object_new_array();
    json_object_array_add(list, json_object_new_string(why));
    json_object_object_add(ret, "blocked-reasons", list);
}

/* The numbers of the job in progress, or of the last one. */
static GwMigStats
current_stats(GwMig *mig, gint64 *total_ms)
{
    GwMigStats st = mig->last;
    GwMigJob *j = mig->job;

    *total_ms = 0;
    if (j) {
        g_mutex_lock(&j->lock);
        st = j->stats;
        g_mutex_unlock(&j->lock);
        *total_ms = (g_get_monotonic_time() - j->start_us) / 1000;
    }
    return st;
}

/* godwit's own: why pre-copy is not converging, while it is not; and
 * QEMU's cpu-throttle-percentage while auto-converge throttles. */
static void
add_convergence(GwMigJob *j, json_object *ret)
{
    g_mutex_lock(&j->lock);
    if (j->throttle_pct) {
        add_int(ret, "cpu-throttle-percentage", j->throttle_pct);
    }
    if (j->not_converging) {
        json_object_object_add(ret, "x-godwit-not-converging",
                               json_object_new_string(j->not_converging));
    }
    g_mutex_unlock(&j->lock);
}

json_object *
gw_mig_query(GwMig *mig)
{
    json_object *ret = json_object_new_object();
    gint64 total_ms;
    GwMigStats st = current_stats(mig, &total_ms);
    GwMigStatus s = mig->status;

    add_blockers(mig, ret);
    if (s == GW_MIG_NONE) {
        return ret; /* QEMU: {} before the first migration */
    }
    json_object_object_add(ret, "status",
                           json_object_new_string(gw_mig_status_name(s)));
    if (mig->job && mig->job->outgoing) {
        json_object_object_add(ret, "ram", ram_info(&st));
        add_int(ret, "setup-time", st.setup_ms);
    }
    if (s == GW_MIG_COMPLETED || s == GW_MIG_FAILED || s == GW_MIG_CANCELLED) {
        add_int(ret, "total-time", mig->total_ms);
    } else {
        add_int(ret, "total-time", total_ms);
        add_int(ret, "expected-downtime", st.expected_downtime_ms);
    }
    if (s == GW_MIG_COMPLETED && mig->job && mig->job->outgoing) {
        add_int(ret, "downtime", st.downtime_ms);
    }
    if (s == GW_MIG_ACTIVE && mig->job && mig->job->outgoing) {
        add_convergence(mig->job, ret);
    }
    if (mig->error && (s == GW_MIG_FAILED || s == GW_MIG_CANCELLED)) {
        json_object_object_add(ret, "error-desc",
                               json_object_new_string(mig->error));
    }
    return ret;
}

/* ---- capabilities ---- */

/* QEMU 7.2's MigrationCapability values godwit does not implement. */
static const char *const unimplemented[] = {
    "xbzrle",
    "rdma-pin-all",
    "zero-blocks",
    "compress",
    "postcopy-ram",
    "x-colo",
    "release-ram",
    "block",
    "dirty-bitmaps",
    "postcopy-blocktime",
    "late-block-activate",
    "x-ignore-shared",
    "validate-uuid",
    "background-snapshot",
    "zero-copy-send",
    "postcopy-preempt",
};

static bool *
capability(GwMig *mig, const char *name)
{
    if (g_str_equal(name, "events")) {
        return &mig->events;
    }
    if (g_str_equal(name, "return-path")) {
        return &mig->return_path;
    }
    if (g_str_equal(name, "pause-before-switchover")) {
        return &mig->pause_before_switchover;
    }
    if (g_str_equal(name, "multifd")) {
        return &mig->multifd;
    }
    if (g_str_equal(name, "auto-converge")) {
        return &mig->auto_converge;
    }
    return NULL;
}

static bool
check_capability(GwMig *mig, const char *name, bool state, GError **errp)
{
    if (capability(mig, name)) {
        return true;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(unimplemented); i++) {
        if (g_str_equal(name, unimplemented[i])) {
            if (!state) {
                return true; /* off is what it is */
            }
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "Migration capability '%s' is not supported by "
                        "godwit",
                        name);
            return false;
        }
    }
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "Parameter 'capability' does not accept value '%s'", name);
    return false;
}

static bool
in_progress(GwMig *mig, GError **errp)
{
    GwMigStatus s = mig->status;

    if (s == GW_MIG_SETUP || s == GW_MIG_ACTIVE || s == GW_MIG_PRE_SWITCHOVER ||
        s == GW_MIG_DEVICE || s == GW_MIG_CANCELLING) {
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                    "There's a migration process in progress");
        return true;
    }
    return false;
}

/* All checked before any is set, as QEMU does. */
bool
gw_mig_set_capabilities(GwMig *mig, json_object *caps, GError **errp)
{
    size_t n = json_object_array_length(caps);

    if (in_progress(mig, errp)) {
        return false;
    }
    for (size_t pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            json_object *c = json_object_array_get_idx(caps, i);
            const char *name =
                json_object_get_string(json_object_object_get(c, "capability"));
            bool state =
                json_object_get_boolean(json_object_object_get(c, "state"));
            bool *slot = capability(mig, name);
            if (pass == 0 && !check_capability(mig, name, state, errp)) {
                return false;
            }
            if (pass == 1 && slot) {
                *slot = state;
            }
        }
    }
    return true;
}

json_object *
gw_mig_query_capabilities(GwMig *mig)
{
    static const char *const names[] = {"events", "return-path",
                                        "pause-before-switchover", "multifd",
                                        "auto-converge"};
    json_object *list = json_object_new_array();

    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        json_object *c = json_object_new_object();
        json_object_object_add(c, "capability",
                               json_object_new_string(names[i]));
        json_object_object_add(
            c, "state", json_object_new_boolean(*capability(mig, names[i])));
        json_object_array_add(list, c);
    }
    return list;
}

/* ---- parameters ---- */

static bool
get_param_range(json_object *params, const char *key, int64_t min, int64_t max,
                int64_t *out, GError **errp)
{
    json_object *v;

    if (!json_object_object_get_ex(params, key, &v)) {
        return true;
    }
    *out = json_object_get_int64(v);
    if (*out < min || *out > max) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "Parameter '%s' expects an integer in the range of "
                    "%" G_GINT64_FORMAT " to %" G_GINT64_FORMAT,
                    key, min, max);
        return false;
    }
    return true;
}

static bool
get_param(json_object *params, const char *key, int64_t max, int64_t *out,
          GError **errp)
{
    return get_param_range(params, key, 0, max, out, errp);
}

/* multifd-compression: the schema let only QEMU's values through. */
static bool
get_compression(json_object *params, GwMigCompression *out, GError **errp)
{
    json_object *v;
    const char *name;

    if (!json_object_object_get_ex(params, "multifd-compression", &v)) {
        return true;
    }
    name = json_object_get_string(v);
    if (g_str_equal(name, "none") || g_str_equal(name, "zstd")) {
        *out = name[0] == 'z' ? GW_MIG_COMPRESS_ZSTD : GW_MIG_COMPRESS_NONE;
        return true;
    }
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "multifd-compression '%s' is not supported by godwit (none, "
                "zstd)",
                name);
    return false;
}

/* The auto-converge parameters, checked as QEMU checks them. */
static bool
get_throttle(json_object *params, GwMigThrottle *t, GError **errp)
{
    int64_t initial = t->initial, inc = t->increment, max = t->max;
    json_object *v;

    if (!get_param_range(params, "cpu-throttle-initial", 1, 99, &initial,
                         errp) ||
        !get_param_range(params, "cpu-throttle-increment", 1, 99, &inc, errp) ||
        !get_param_range(params, "max-cpu-throttle", initial, 99, &max, errp)) {
        return false;
    }
    t->initial = (int)initial;
    t->increment = (int)inc;
    t->max = (int)max;
    if (json_object_object_get_ex(params, "cpu-throttle-tailslow", &v)) {
        t->tailslow = json_object_get_boolean(v);
    }
    return true;
}

/* Everything a running migration picks up (atomics). */
static void
update_job(GwMigJob *j, const GwMig *mig)
{
    g_atomic_int_set(&j->downtime_limit_ms, (int)mig->downtime_limit_ms);
    g_atomic_pointer_set(&j->max_bandwidth,
                         (gpointer)(uintptr_t)mig->max_bandwidth);
    g_atomic_int_set(&j->throttle.initial, mig->throttle.initial);
    g_atomic_int_set(&j->throttle.increment, mig->throttle.increment);
    g_atomic_int_set(&j->throttle.max, mig->throttle.max);
    g_atomic_int_set(&j->throttle.tailslow, mig->throttle.tailslow);
}

bool
gw_mig_set_parameters(GwMig *mig, json_object *params, GError **errp)
{
    bool cpr = mig->cpr;
    int64_t downtime = (int64_t)mig->downtime_limit_ms;
    int64_t bandwidth = (int64_t)mig->max_bandwidth;
    int64_t channels = mig->multifd_channels;
    int64_t level = mig->multifd_zstd_level;
    GwMigCompression compression = mig->multifd_compression;
    GwMigThrottle throttle = mig->throttle;

    if (!get_param(params, "downtime-limit", DOWNTIME_LIMIT_MAX, &downtime,
                   errp) ||
        !get_param(params, "max-bandwidth", INT64_MAX, &bandwidth, errp) ||
        !get_param(params, "multifd-channels", GW_MIG_MAX_CHANNELS, &channels,
                   errp) ||
        !get_param(params, "multifd-zstd-level", GW_MIG_ZSTD_LEVEL_MAX, &level,
                   errp) ||
        !get_compression(params, &compression, errp) ||
        !get_throttle(params, &throttle, errp)) {
        return false;
    }
    if (channels < 1) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "Parameter 'multifd-channels' expects a value between 1 "
                    "and %d",
                    GW_MIG_MAX_CHANNELS);
        return false;
    }
    if ((json_object_object_get_ex(params, "multifd-channels", NULL) ||
         json_object_object_get_ex(params, "multifd-compression", NULL) ||
         json_object_object_get_ex(params, "multifd-zstd-level", NULL)) &&
        in_progress(mig, errp)) {
        return false; /* the channels are set up at the start */
    }
    if (!gw_mig_cpr_parse_mode(params, &cpr, errp) ||
        (cpr != mig->cpr && in_progress(mig, errp))) {
        return false;
    }
    mig->cpr = cpr;
    mig->multifd_channels = (unsigned)channels;
    mig->multifd_compression = compression;
    mig->multifd_zstd_level = (int)level;
    mig->downtime_limit_ms = (uint64_t)downtime;
    mig->max_bandwidth = (uint64_t)bandwidth;
    mig->throttle = throttle;
    if (mig->job) {
        /* As QEMU: a running migration uses the new values from its next
         * pass (or batch) on. */
        update_job(mig->job, mig);
    }
    return true;
}

json_object *
gw_mig_query_parameters(GwMig *mig)
{
    json_object *ret = json_object_new_object();

    json_object_object_add(
        ret, "mode", json_object_new_string(gw_mig_cpr_mode_name(mig->cpr)));
    add_int(ret, "downtime-limit", (int64_t)mig->downtime_limit_ms);
    add_int(ret, "max-bandwidth", (int64_t)mig->max_bandwidth);
    add_int(ret, "multifd-channels", (int64_t)mig->multifd_channels);
    json_object_object_add(
        ret, "multifd-compression",
        json_object_new_string(mig->multifd_compression == GW_MIG_COMPRESS_ZSTD
                                   ? "zstd"
                                   : "none"));
    add_int(ret, "multifd-zstd-level", mig->multifd_zstd_level);
    add_int(ret, "cpu-throttle-initial", mig->throttle.initial);
    add_int(ret, "cpu-throttle-increment", mig->throttle.increment);
    json_object_object_add(ret, "cpu-throttle-tailslow",
                           json_object_new_boolean(mig->throttle.tailslow));
    add_int(ret, "max-cpu-throttle", mig->throttle.max);
    return ret;
}
