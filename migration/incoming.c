/*
 * The receiver thread ("gw-mig-recv"): reads the source's stream into
 * this VM, which waits in inmigrate with its vCPUs parked.  RAM pages go
 * straight into guest RAM from here (nothing else touches it until the
 * guest runs); device sections are kept until the end and loaded on the
 * main thread, all or none.  The guest runs only after the source's
 * COMMIT (or, from a file, after everything loaded); any failure before
 * that ends this process with a non-zero status and the guest never ran.
 * With mode cpr-transfer no page comes: guest RAM becomes the source's
 * memfd (CPR_RAM), mapped read-only until COMMIT (cpr.c).
 */
#include <string.h>
#include <godwit/machine.h>
#include <godwit/memory.h>
#include <godwit/sandbox.h>
#include <godwit/util.h>
#include <godwit/vm.h>
#include "mig-job.h"
#include "mig-priv.h"

typedef struct {
    GwMigJob *j;
    GwGuestMemory *mem;
    GwMigReader *r;
    GwMigWriter *w;      /* the return path, or NULL */
    GPtrArray *sections; /* GBytes * */
    char *manifest;
    GwMigRamSink sink;
    GwMigChans *chans; /* multifd: the source's RAM channels, or NULL */
    bool got_memfd;    /* cpr-transfer: CPR_RAM came and was adopted */
} Receiver;

/* ---- main-thread halves ---- */

static bool
check_manifest_main(GwMigJob *j, GError **errp)
{
    gw_mig_set_status(j->mig, GW_MIG_ACTIVE);
    return gw_vm_migration_check_manifest(gw_mig_vm(j->mig), j->manifest, errp);
}

static bool
load_main(GwMigJob *j, GError **errp)
{
    gw_mig_set_status(j->mig, GW_MIG_DEVICE);
    return gw_vm_migration_load(gw_mig_vm(j->mig), j->sections, errp);
}

static bool
run_main(GwMigJob *j, GError **errp)
{
    if (j->cpr && !gw_mig_cpr_own_main(j, errp)) {
        return false;
    }
    gw_vm_migration_incoming_done(gw_mig_vm(j->mig), j->source_running);
    return true;
}

/* ---- records ---- */

static void
count_bytes(Receiver *rc)
{
    g_mutex_lock(&rc->j->lock);
    rc->j->stats.transferred = gw_mig_reader_bytes(rc->r);
    g_mutex_unlock(&rc->j->lock);
}

static bool
read_manifest(Receiver *rc, GError **errp)
{
    g_autoptr(GBytes) payload = NULL;
    uint32_t type;
    gsize len;
    const char *text;

    if (!gw_mig_reader_header(rc->r, errp) ||
        !gw_mig_read(rc->r, &type, &payload, errp)) {
        return false;
    }
    if (type != GW_MIG_REC_MANIFEST) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "migration: the stream starts with %s, not MANIFEST",
                    gw_mig_record_type_name(type));
        return false;
    }
    text = g_bytes_get_data(payload, &len);
    rc->j->manifest = g_strndup(text, len);
    if (strlen(rc->j->manifest) != len) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "migration: the manifest holds a NUL byte");
        return false;
    }
    return gw_mig_job_call_main(rc->j, check_manifest_main, errp) &&
           (!rc->w || gw_mig_write(rc->w, GW_MIG_REC_RP_READY, NULL, 0, errp));
}

static bool
end_record(Receiver *rc, GBytes *payload, GError **errp)
{
    gsize len;
    const uint8_t *p = g_bytes_get_data(payload, &len);

    if (len != 1 || p[0] > 1) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "migration: malformed END record");
        return false;
    }
    if (rc->j->cpr && !rc->got_memfd) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "migration: mode cpr-transfer, but the source handed "
                    "over no guest RAM");
        return false;
    }
    rc->j->source_running = p[0];
    rc->j->sections = g_steal_pointer(&rc->sections);
    return gw_mig_job_call_main(rc->j, load_main, errp);
}

/* CHANNELS: the source opens that many channels; accept them all. */
static bool
channels_record(Receiver *rc, const void *data, size_t len, GError **errp)
{
    uint32_t n = len == 4 ? gw_mig_ld32(data) : 0;

    if (rc->chans || n < 1 || n > GW_MIG_MAX_CHANNELS) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "migration: malformed or repeated CHANNELS record");
        return false;
    }
    if (rc->j->listen_fd < 0) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "migration: the source sends RAM over %u multifd "
                    "channels: set the multifd capability on the "
                    "destination too",
                    n);
        return false;
    }
    rc->chans = gw_mig_chans_accept(rc->j, rc->j->listen_fd, rc->j->fd, n,
                                    rc->mem, errp);
    return rc->chans != NULL;
}

/* CPR_RAM: guest RAM's memfd, the one fd that came with it. */
static bool
memfd_record(Receiver *rc, const void *data, size_t len, GError **errp)
{
    unsigned n;

    if (!rc->j->cpr || rc->got_memfd) {
        g_set_error(
            errp, GW_ERROR, GW_ERROR_INVALID, "migration: %s",
            rc->got_memfd
                ? "repeated CPR_RAM record"
                : "the source hands guest RAM over (mode cpr-transfer): "
                  "set migrate-set-parameters mode cpr-transfer on the "
                  "destination too");
        return false;
    }
    rc->j->cpr_fd = gw_mig_reader_take_fd(rc->r, &n);
    if (n != 1) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "migration: CPR_RAM came with %u file descriptors, not "
                    "one (the stream is not a unix socket, or the source "
                    "passed others)",
                    n);
        return false;
    }
    if (!gw_mig_cpr_layout_check(rc->mem, data, len, errp)) {
        return false;
    }
    rc->got_memfd = true;
    return gw_mig_job_call_main(rc->j, gw_mig_cpr_adopt_main, errp);
}

/* cpr-transfer: no RAM page may come; guest RAM is the source's memfd. */
static bool
check_cpr(Receiver *rc, uint32_t type, GError **errp)
{
    if (!rc->j->cpr ||
        (type != GW_MIG_REC_RAM && type != GW_MIG_REC_ZERO_RANGE &&
         type != GW_MIG_REC_ROUND_END && type != GW_MIG_REC_CHANNELS)) {
        return true;
    }
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "migration: this destination expects mode cpr-transfer, "
                "but the source sends RAM pages (%s): set mode "
                "cpr-transfer on the source too",
                gw_mig_record_type_name(type));
    return false;
}

static bool
round_end(Receiver *rc, GError **errp)
{
    g_mutex_lock(&rc->j->lock);
    rc->j->stats.passes++;
    g_mutex_unlock(&rc->j->lock);
    return !rc->chans || gw_mig_chans_round(rc->chans, errp);
}

/* RAM, DEVICE and ROUND_END records until END; false on anything else. */
static bool
read_state(Receiver *rc, GError **errp)
{
    for (;;) {
        g_autoptr(GBytes) payload = NULL;
        uint32_t type;
        gsize len;
        const void *data;

        if (!gw_mig_read(rc->r, &type, &payload, errp)) {
            return false;
        }
        data = g_bytes_get_data(payload, &len);
        count_bytes(rc);
        if (!check_cpr(rc, type, errp)) {
            return false;
        }
        switch (type) {
        case GW_MIG_REC_RAM:
            if (!gw_mig_ram_sink_record(&rc->sink, type, data, len, errp)) {
                return false;
            }
            break;
        case GW_MIG_REC_ZERO_RANGE:
            if (!gw_mig_ram_sink_record(&rc->sink, type, data, len, errp)) {
                return false;
            }
            break;
        case GW_MIG_REC_DEVICE:
            g_ptr_array_add(rc->sections, g_steal_pointer(&payload));
            break;
        case GW_MIG_REC_ROUND_END:
            if (!round_end(rc, errp)) {
                return false;
            }
            break;
        case GW_MIG_REC_CHANNELS:
            if (!channels_record(rc, data, len, errp)) {
                return false;
            }
            break;
        case GW_MIG_REC_CPR_RAM:
            if (!memfd_record(rc, data, len, errp)) {
                return false;
            }
            break;
        case GW_MIG_REC_END:
            return end_record(rc, payload, errp);
        default:
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "migration: unexpected %s record (type %u)",
                        gw_mig_record_type_name(type), type);
            return false;
        }
    }
}

/* With a return path: say so, then wait for the source's go-ahead. */
static bool
confirm(Receiver *rc, GError **errp)
{
    g_autoptr(GBytes) payload = NULL;
    uint32_t type;

    if (!rc->w) {
        return true;
    }
    if (!gw_mig_write(rc->w, GW_MIG_REC_RP_OK, NULL, 0, errp)) {
        return false;
    }
    if (!gw_mig_read(rc->r, &type, &payload, errp)) {
        g_prefix_error(errp, "migration: no COMMIT from the source: ");
        return false;
    }
    if (type != GW_MIG_REC_COMMIT) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "migration: expected COMMIT, got %s",
                    gw_mig_record_type_name(type));
        return false;
    }
    return true;
}

/* Best effort: the source shows the user this reason. */
static void
tell_source(Receiver *rc, const GError *err)
{
    if (rc->w && err) {
        gw_mig_write(rc->w, GW_MIG_REC_RP_ERROR, err->message,
                     strlen(err->message), NULL);
    }
}

gpointer
gw_mig_in_thread(gpointer data)
{
    GwMigJob *j = data;
    GwMachine *m = gw_vm_machine(gw_mig_vm(j->mig));
    Receiver rc = {.j = j, .mem = gw_machine_memory(m)};

    j->cpr_fd = -1;

    gw_mig_ram_sink_init(&rc.sink, rc.mem, j->ram_file);
    g_autoptr(GError) err = NULL;
    bool ok = gw_sandbox_enter(GW_SANDBOX_MIG_RECV, gw_sandbox_mode(), &err);

    rc.r = gw_mig_reader_new(j->fd);
    rc.w = j->return_path ? gw_mig_writer_new(j->fd) : NULL;
    rc.sections = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    ok = ok && (!rc.w || gw_mig_writer_header(rc.w, &err)) &&
         read_manifest(&rc, &err) && read_state(&rc, &err) &&
         confirm(&rc, &err) && gw_mig_job_call_main(j, run_main, &err);
    if (!ok && rc.chans && !gw_mig_chans_error(rc.chans, NULL)) {
        g_clear_error(&err); /* the channel's reason, not the main
                                stream's "read failed" that followed */
        gw_mig_chans_error(rc.chans, &err);
    }
    if (!ok) {
        tell_source(&rc, err);
    }
    gw_mig_chans_free(rc.chans);
    if (j->cpr_fd >= 0) {
        close(j->cpr_fd); /* received, never adopted */
        j->cpr_fd = -1;
    }
    g_clear_pointer(&rc.sections, g_ptr_array_unref);
    gw_mig_reader_free(rc.r);
    gw_mig_writer_free(rc.w);
    gw_mig_job_finish(j, ok, err);
    return NULL;
}
