/*
 * The sender thread: manifest, RAM pre-copy, switch-over, the
 * destination's confirmation.  Runs on "gw-mig-send"; what touches the
 * VM runs on the main thread through gw_mig_job_call_main.  Guest RAM
 * is read here while vCPUs write it: pages are copied into the batch
 * (GW_MIG_RAM_BATCH_BOUNCE) and a page written after its copy is dirty
 * again and sent in the next pass.  With mode cpr-transfer there is no
 * pre-copy: the switch-over sends guest RAM's memfd instead of pages.
 */
#include <string.h>
#include <godwit/machine.h>
#include <godwit/memory.h>
#include <godwit/sandbox.h>
#include <godwit/util.h>
#include <godwit/vm.h>
#include "mig-job.h"
#include "mig-priv.h"

#define WORD_BITS  (8 * sizeof(unsigned long))
#define RP_WAIT_MS 2000 /* for the destination's reason after an error */

typedef struct {
    GwMigJob *j;
    GwMachine *m;
    GwGuestMemory *mem;
    GwMigWriter *w;
    GwMigReader *r;
    bool rp_open; /* the return path's header was read */
    GwMigRamBatchMode mode;
    bool throttled;      /* pre-copy honours max-bandwidth, switch-over not */
    gint64 window_start; /* max-bandwidth's current window */
    uint64_t window_bytes;
    uint64_t prev_bytes;  /* sent when throttle last looked */
    unsigned long *dirty; /* pages still to send, by memfd page */
    size_t words;
    uint64_t pages;
    bool ram_file;       /* gw_mig_ram_is_file: the memfd's holes are zero */
    GwMigChans *chans;   /* multifd: RAM batches go there, or NULL */
    uint64_t queued;     /* multifd: bytes handed to the channels */
    uint64_t best_dirty; /* the fewest pages left after a pass so far */
    unsigned stalled;    /* passes since that did not improve on it */
    /* auto-converge (converge.c) */
    GwMigConverge converge;
} Sender;

/* Bytes on the wire: the main stream's and the channels'. */
static uint64_t
sent_bytes(const Sender *s)
{
    return gw_mig_writer_bytes(s->w) + gw_mig_chans_bytes(s->chans);
}

/* ---- main-thread halves ---- */

static bool
manifest_main(GwMigJob *j, GError **errp)
{
    j->manifest = gw_vm_migration_manifest(gw_mig_vm(j->mig), errp);
    return j->manifest != NULL;
}

/* The destination took the manifest: pre-copy begins. */
static bool
active_main(GwMigJob *j, GError **errp)
{
    gw_mig_set_status(j->mig, GW_MIG_ACTIVE);
    return true;
}

/* Something that blocks migration may have come up since `migrate` (a
 * vDPA device the guest started): then the migration cannot go on. */
static bool
check_blockers(GwMigJob *j, GError **errp)
{
    g_autofree char *why = gw_vm_migration_blocker(gw_mig_vm(j->mig));

    if (why) {
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY, "migration blocked: %s",
                    why);
        return false;
    }
    return true;
}

/* Before each pass: still migratable?  May it send straight from guest
 * RAM?  And MIGRATION_PASS, as QEMU emits it with the events capability. */
static bool
paused_main(GwMigJob *j, GError **errp)
{
    uint64_t pass;

    if (!check_blockers(j, errp)) {
        return false;
    }
    j->vm_paused = gw_vm_run_state(gw_mig_vm(j->mig)) != GW_RUN_RUNNING;
    g_mutex_lock(&j->lock);
    pass = j->stats.passes + 1;
    g_mutex_unlock(&j->lock);
    if (j->mig->events) {
        json_object *data = json_object_new_object();
        json_object_object_add(data, "pass",
                               json_object_new_int64((int64_t)pass));
        gw_vm_emit(gw_mig_vm(j->mig), "MIGRATION_PASS", data);
    }
    return true;
}

static bool
pre_switchover_main(GwMigJob *j, GError **errp)
{
    GwVm *vm = gw_mig_vm(j->mig);

    j->was_running = gw_vm_run_state(vm) == GW_RUN_RUNNING;
    if (!gw_vm_pause(vm, GW_RUN_FINISH_MIGRATE, errp)) {
        return false;
    }
    j->paused_vm = true;
    if (!check_blockers(j, errp)) { /* nothing can start from here on */
        return false;
    }
    gw_mig_set_status(j->mig, j->pause_before_switchover ? GW_MIG_PRE_SWITCHOVER
                                                         : GW_MIG_DEVICE);
    return true;
}

/* The log line goes out on the main thread: GLib's timestamp reads the
 * time zone file, which a migration thread may not stat. */
static bool
warn_main(GwMigJob *j, GError **errp)
{
    g_mutex_lock(&j->lock);
    if (j->not_converging) {
        g_warning("migration: %s", j->not_converging);
    }
    g_mutex_unlock(&j->lock);
    return true;
}

static bool
device_main(GwMigJob *j, GError **errp)
{
    gw_mig_set_status(j->mig, GW_MIG_DEVICE);
    j->sections = gw_vm_migration_save(gw_mig_vm(j->mig), errp);
    return j->sections != NULL;
}

/* ---- RAM ---- */

static uint64_t
page_gpa(const GwGuestMemory *mem, uint64_t page)
{
    uint64_t off = page * GW_MEM_PAGE;

    for (guint i = 0; i < mem->n_regions; i++) {
        const GwMemRegion *r = &mem->regions[i];
        if (off >= r->offset && off - r->offset < r->size) {
            return r->gpa + (off - r->offset);
        }
    }
    g_assert_not_reached();
}

static void
count_page(Sender *s, bool zero)
{
    g_mutex_lock(&s->j->lock);
    if (zero) {
        s->j->stats.duplicate++;
    } else {
        s->j->stats.normal++;
    }
    if (s->j->stats.remaining >= GW_MEM_PAGE) {
        s->j->stats.remaining -= GW_MEM_PAGE;
    }
    s->j->stats.transferred = sent_bytes(s);
    g_mutex_unlock(&s->j->lock);
}

/*
 * max-bandwidth during pre-copy: after each batch, sleep until the bytes
 * sent since the window began are within the limit.  The window starts
 * again after a second in which the sender kept up, so an idle spell
 * earns no burst; it starts before the batch just sent, which is paid
 * for too (else each new window's first batch went free, and a pass of
 * one batch ran at the link's speed, which made every guest look as if
 * it converged).  The switch-over is never throttled.
 */
/*
 * What max-bandwidth charges: the main stream's bytes and what the
 * channels were given, sent or not, so that their queues cannot let a
 * burst past the limit.  Compressing channels are charged what they
 * wrote, plus what is still queued at its uncompressed size (bounded by
 * the pool); never less than before, so the window never goes back.
 */
static uint64_t
charged_bytes(Sender *s)
{
    uint64_t bytes = gw_mig_writer_bytes(s->w) + s->queued;

    if (gw_mig_chans_compressed(s->chans)) {
        uint64_t raw = gw_mig_chans_raw_bytes(s->chans);
        bytes = gw_mig_writer_bytes(s->w) + gw_mig_chans_bytes(s->chans) +
                (s->queued > raw ? s->queued - raw : 0);
    }
    return MAX(bytes, s->prev_bytes);
}

static void
throttle(Sender *s)
{
    uint64_t limit = (uintptr_t)g_atomic_pointer_get(&s->j->max_bandwidth);
    uint64_t bytes = charged_bytes(s);
    gint64 now = g_get_monotonic_time(), due;

    if (!s->throttled || !limit) {
        s->prev_bytes = bytes;
        return;
    }
    due = s->window_start +
          (gint64)((bytes - s->window_bytes) * G_USEC_PER_SEC / limit);
    if (!s->window_start ||
        (now - s->window_start > G_USEC_PER_SEC && due <= now)) {
        s->window_start = now;
        s->window_bytes = s->prev_bytes;
        due =
            now + (gint64)((bytes - s->window_bytes) * G_USEC_PER_SEC / limit);
    }
    s->prev_bytes = bytes;
    while (due > now && !gw_mig_job_cancelled(s->j)) {
        g_usleep((gulong)MIN(due - now, G_USEC_PER_SEC / 20));
        now = g_get_monotonic_time();
    }
}

/* A batch's record size on the wire (before compression). */
static uint64_t
batch_bytes(GwMigRamBatch *b)
{
    return gw_mig_ram_batch_wire_size(b);
}

/* A full batch goes: on the main stream, or to a channel for a new one. */
static bool
flush_batch(Sender *s, GwMigRamBatch **b, GError **errp)
{
    if (!s->chans) {
        if (!gw_mig_ram_batch_send(*b, s->w, errp)) {
            return false;
        }
    } else {
        s->queued += batch_bytes(*b);
        gw_mig_chans_put(s->chans, *b);
        if (!(*b = gw_mig_chans_take(s->chans, s->mode, errp))) {
            return false;
        }
    }
    throttle(s);
    return true;
}

static bool
add_page(Sender *s, GwMigRamBatch **b, uint64_t page, GError **errp)
{
    const uint8_t *p = s->mem->host + page * GW_MEM_PAGE;
    bool zero = gw_mig_page_is_zero(p);

    if (zero) {
        gw_mig_ram_batch_add_zero(*b, page_gpa(s->mem, page));
    } else {
        gw_mig_ram_batch_add(*b, page_gpa(s->mem, page), p);
    }
    count_page(s, zero);
    return !gw_mig_ram_batch_full(*b) || flush_batch(s, b, errp);
}

static GwMigRamBatch *
new_batch(Sender *s, GwMigRamBatchMode mode, GError **errp)
{
    s->mode = mode;
    return s->chans ? gw_mig_chans_take(s->chans, mode, errp)
                    : gw_mig_ram_batch_new(GW_MIG_RAM_BATCH_PAGES, mode);
}

/* A batch given up on (an error): back to the pool, or freed. */
static void
drop_batch(Sender *s, GwMigRamBatch *b)
{
    if (b && s->chans) {
        gw_mig_ram_batch_reset(b);
        gw_mig_chans_put(s->chans, b);
    } else {
        gw_mig_ram_batch_free(b);
    }
}

/* ---- holes: RAM nobody wrote, sent as ZERO_RANGE without reading ---- */

static void
count_zero_range(Sender *s, uint64_t bytes)
{
    g_mutex_lock(&s->j->lock);
    s->j->stats.duplicate += bytes / GW_MEM_PAGE;
    s->j->stats.remaining -= MIN(s->j->stats.remaining, bytes);
    s->j->stats.transferred = sent_bytes(s);
    g_mutex_unlock(&s->j->lock);
}

/* The memfd's [off, end) inside region r is a hole: one record. */
static bool
send_hole(Sender *s, const GwMemRegion *r, uint64_t off, uint64_t end,
          GError **errp)
{
    uint8_t rec[GW_MIG_ZERO_RANGE_LEN];

    gw_mig_zero_range_encode(rec, r->gpa + (off - r->offset), end - off);
    if (!gw_mig_write(s->w, GW_MIG_REC_ZERO_RANGE, rec, sizeof(rec), errp)) {
        return false;
    }
    for (uint64_t p = off / GW_MEM_PAGE; p < end / GW_MEM_PAGE; p++) {
        s->dirty[p / WORD_BITS] &= ~(1ul << (p % WORD_BITS));
    }
    count_zero_range(s, end - off);
    return true;
}

/*
 * First pass only: the memfd's holes go as ZERO_RANGE records and leave
 * the pass's bitmap.  A hole the guest writes after lseek looked is in
 * the dirty log (tracking started before) and goes in the next pass,
 * after this record in the stream.
 */
static bool
send_holes(Sender *s, GError **errp)
{
    for (guint i = 0; i < s->mem->n_regions && s->ram_file; i++) {
        const GwMemRegion *r = &s->mem->regions[i];
        uint64_t off = r->offset, end = r->offset + r->size;
        while (off < end) {
            uint64_t start, stop;
            bool data = gw_mig_ram_next_data(s->mem, off, end, &start, &stop);
            if ((data ? start : end) > off &&
                !send_hole(s, r, off, data ? start : end, errp)) {
                return false;
            }
            off = data ? stop : end;
        }
    }
    return true;
}

/* Sends (and clears) every page set in s->dirty. */
static bool
walk_dirty(Sender *s, GwMigRamBatch **b, GError **errp)
{
    for (size_t i = 0; i < s->words; i++) {
        while (s->dirty[i]) {
            unsigned bit = (unsigned)__builtin_ctzl(s->dirty[i]);
            s->dirty[i] &= s->dirty[i] - 1;
            if (!add_page(s, b, i * WORD_BITS + bit, errp)) {
                return false;
            }
        }
        if (gw_mig_job_cancelled(s->j)) {
            g_set_error(errp, GW_ERROR, GW_ERROR_FAILED, "migration cancelled");
            return false;
        }
    }
    return true;
}

/* One pass: the dirty pages, then ROUND_END on every stream. */
static bool
send_dirty(Sender *s, GwMigRamBatchMode mode, GError **errp)
{
    GwMigRamBatch *b = new_batch(s, mode, errp);

    if (!b || !walk_dirty(s, &b, errp)) {
        drop_batch(s, b);
        return false;
    }
    if (s->chans) {
        s->queued += gw_mig_ram_batch_count(b) ? batch_bytes(b) : 0;
        gw_mig_chans_put(s->chans, b); /* the last, maybe partial, batch */
        gw_mig_chans_round_end(s->chans);
    } else {
        bool ok = gw_mig_ram_batch_send(b, s->w, errp);
        gw_mig_ram_batch_free(b);
        if (!ok) {
            return false;
        }
    }
    throttle(s);
    return gw_mig_write(s->w, GW_MIG_REC_ROUND_END, NULL, 0, errp) &&
           (!s->chans || gw_mig_chans_error(s->chans, errp));
}

/* Collects what was dirtied since the last sync; returns its page count. */
static bool
sync_dirty(Sender *s, uint64_t *n, GError **errp)
{
    uint64_t count = 0;

    if (!gw_machine_dirty_sync(s->m, s->dirty, errp)) {
        return false;
    }
    for (size_t i = 0; i < s->words; i++) {
        count += (uint64_t)__builtin_popcountl(s->dirty[i]);
    }
    *n = count;
    return true;
}

/* How many bytes of RAM records one byte on the wire carried so far:
 * above 1 when the channels compress. */
static double
compression_ratio(Sender *s)
{
    uint64_t wire = gw_mig_chans_bytes(s->chans);
    uint64_t raw = gw_mig_chans_raw_bytes(s->chans);

    if (!gw_mig_chans_compressed(s->chans) || !wire || raw <= wire) {
        return 1.0;
    }
    return (double)raw / (double)wire;
}

static void
record_pass(Sender *s, uint64_t bytes, gint64 us, uint64_t dirty)
{
    GwMigStats *st = &s->j->stats;
    double secs = MAX(us, 1) / 1e6;
    double rate = bytes / secs; /* bytes/s */
    /* what is left is counted uncompressed: so is the rate it goes at */
    double raw_rate = rate * compression_ratio(s);

    g_mutex_lock(&s->j->lock);
    st->passes++;
    st->remaining = dirty * GW_MEM_PAGE;
    st->mbps = rate * 8 / 1e6;
    st->dirty_rate = (uint64_t)(dirty / secs);
    st->expected_downtime_ms =
        raw_rate > 0 ? (int64_t)(st->remaining / raw_rate * 1000) : 0;
    g_mutex_unlock(&s->j->lock);
}

#define STALL_PASSES 5 /* passes without 10 % progress: not converging */

/*
 * A pre-copy that no longer shrinks what is left says so in
 * query-migrate (and the log, once) and goes on, as QEMU does: the user
 * raises downtime-limit or max-bandwidth, stops the guest, or cancels.
 * A pass that improves on the best by a tenth clears it.
 */
static void
check_convergence(Sender *s, uint64_t dirty)
{
    g_autofree char *why = NULL;

    if (dirty < s->best_dirty - s->best_dirty / 10) {
        s->best_dirty = dirty;
        s->stalled = 0;
    } else if (++s->stalled >= STALL_PASSES) {
        why = g_strdup_printf(
            "not converging: %" G_GUINT64_FORMAT
            " pages dirty after pass %" G_GUINT64_FORMAT
            ", expected downtime %" G_GINT64_FORMAT
            " ms over downtime-limit %d ms, no pass in the last %u left "
            "fewer; raise downtime-limit or max-bandwidth, or pause the "
            "guest%s",
            dirty, s->j->stats.passes, s->j->stats.expected_downtime_ms,
            g_atomic_int_get(&s->j->downtime_limit_ms), s->stalled,
            s->converge.pct ? " (auto-converge throttles the vCPUs already)"
                            : "");
    }
    g_mutex_lock(&s->j->lock);
    bool news = why && !s->j->not_converging;
    g_free(s->j->not_converging);
    s->j->not_converging = g_steal_pointer(&why);
    g_mutex_unlock(&s->j->lock);
    if (news) {
        gw_mig_job_call_main(s->j, warn_main, NULL);
    }
}

/* Passes over the dirty pages until what is left fits downtime-limit. */
static bool
precopy(Sender *s, GError **errp)
{
    gw_mig_converge_start(&s->converge, sent_bytes(s));
    for (;;) {
        uint64_t before = sent_bytes(s), dirty;
        gint64 t0 = g_get_monotonic_time();
        if (!gw_mig_job_call_main(s->j, paused_main, errp) ||
            !send_dirty(s,
                        s->j->vm_paused ? GW_MIG_RAM_BATCH_ZERO_COPY
                                        : GW_MIG_RAM_BATCH_BOUNCE,
                        errp) ||
            !sync_dirty(s, &dirty, errp)) {
            return false;
        }
        record_pass(s, sent_bytes(s) - before, g_get_monotonic_time() - t0,
                    dirty);
        if (s->j->stats.expected_downtime_ms <=
            g_atomic_int_get(&s->j->downtime_limit_ms)) {
            return true;
        }
        check_convergence(s, dirty);
        if (!gw_mig_converge_sync(&s->converge, s->j, sent_bytes(s), dirty,
                                  errp)) {
            return false;
        }
    }
}

/* ---- switch-over ---- */

static bool
wait_continue(GwMigJob *j, GError **errp)
{
    g_mutex_lock(&j->lock);
    while (!g_atomic_int_get(&j->continued) && !gw_mig_job_cancelled(j)) {
        g_cond_wait(&j->cond, &j->lock);
    }
    g_mutex_unlock(&j->lock);
    if (gw_mig_job_cancelled(j)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED, "migration cancelled");
        return false;
    }
    return true;
}

static bool
send_sections(Sender *s, GError **errp)
{
    for (guint i = 0; i < s->j->sections->len; i++) {
        GBytes *b = s->j->sections->pdata[i];
        gsize len;
        const void *data = g_bytes_get_data(b, &len);
        if (!gw_mig_write(s->w, GW_MIG_REC_DEVICE, data, len, errp)) {
            return false;
        }
    }
    return true;
}

/* The destination's answer: RP_OK, or its reason for refusing. */
static bool
expect_ok(Sender *s, GError **errp)
{
    g_autoptr(GBytes) payload = NULL;
    uint32_t type;

    if (!s->rp_open && !gw_mig_reader_header(s->r, errp)) {
        g_prefix_error(errp, "migration: no answer from the destination: ");
        return false;
    }
    s->rp_open = true;
    if (!gw_mig_read(s->r, &type, &payload, errp)) {
        g_prefix_error(errp, "migration: no answer from the destination: ");
        return false;
    }
    if (type == GW_MIG_REC_RP_OK || type == GW_MIG_REC_RP_READY) {
        return true;
    }
    if (type == GW_MIG_REC_RP_ERROR) {
        gsize len;
        const char *why = g_bytes_get_data(payload, &len);
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED, "destination: %.*s",
                    (int)len, why);
        return false;
    }
    g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                "migration: unexpected %s record from the destination",
                gw_mig_record_type_name(type));
    return false;
}

/* cpr-transfer: guest RAM goes as its memfd (SCM_RIGHTS), no page. */
static bool
send_memfd(Sender *s, GError **errp)
{
    g_autoptr(GBytes) layout = gw_mig_cpr_layout(s->mem);
    gsize len;
    const void *p = g_bytes_get_data(layout, &len);

    return gw_mig_write_fds(s->w, GW_MIG_REC_CPR_RAM, p, len, &s->mem->fd, 1,
                            errp);
}

/* What is left of RAM with the guest paused: the last dirty pages, or
 * with cpr-transfer the memfd. */
static bool
send_last_ram(Sender *s, GError **errp)
{
    uint64_t dirty;

    if (s->j->cpr) {
        return send_memfd(s, errp);
    }
    return sync_dirty(s, &dirty, errp) &&
           send_dirty(s, GW_MIG_RAM_BATCH_ZERO_COPY, errp);
}

static bool
switchover(Sender *s, GError **errp)
{
    uint8_t running;
    gint64 t0;

    /* Downtime runs from the pause to the destination's confirmation,
     * less the time pause-before-switchover waited for the user. */
    t0 = g_get_monotonic_time();
    if (!gw_mig_job_call_main(s->j, pre_switchover_main, errp)) {
        return false;
    }
    if (s->j->pause_before_switchover) {
        gint64 w = g_get_monotonic_time();
        if (!wait_continue(s->j, errp)) {
            return false;
        }
        t0 += g_get_monotonic_time() - w;
    }
    if (!gw_mig_job_call_main(s->j, device_main, errp)) {
        return false;
    }
    running = s->j->was_running;
    s->throttled = false;
    if (!send_last_ram(s, errp) || !send_sections(s, errp) ||
        !gw_mig_write(s->w, GW_MIG_REC_END, &running, 1, errp) ||
        (s->j->return_path && !expect_ok(s, errp))) {
        return false;
    }
    /* Past this point the destination owns the guest. */
    if (s->j->return_path &&
        !gw_mig_write(s->w, GW_MIG_REC_COMMIT, NULL, 0, errp)) {
        return false;
    }
    g_mutex_lock(&s->j->lock);
    s->j->stats.downtime_ms = (g_get_monotonic_time() - t0) / 1000;
    s->j->stats.transferred = sent_bytes(s);
    s->j->stats.remaining = 0;
    g_mutex_unlock(&s->j->lock);
    return true;
}

/* ---- the thread ---- */

/* multifd: CHANNELS on the main stream, then the channels connect. */
static bool
open_channels(Sender *s, GError **errp)
{
    uint8_t n[4];

    if (!s->j->channels) {
        return true;
    }
    gw_mig_st32(n, s->j->channels);
    if (!gw_mig_write(s->w, GW_MIG_REC_CHANNELS, n, sizeof(n), errp)) {
        return false;
    }
    s->chans = gw_mig_chans_connect(s->j, s->j->uri, s->j->channels, errp);
    return s->chans != NULL;
}

static bool
setup(Sender *s, GError **errp)
{
    gint64 t0 = g_get_monotonic_time();

    if (!gw_mig_job_call_main(s->j, manifest_main, errp) ||
        !gw_mig_writer_header(s->w, errp) ||
        !gw_mig_write(s->w, GW_MIG_REC_MANIFEST, s->j->manifest,
                      strlen(s->j->manifest), errp) ||
        (s->j->return_path && !expect_ok(s, errp)) ||
        !gw_mig_job_call_main(s->j, active_main, errp)) {
        return false;
    }
    /* The first pass sends every page: what was dirtied so far (all of
     * it, for KVM's initially-set log) is in it already. */
    if (!s->j->cpr && !gw_machine_dirty_sync(s->m, s->dirty, errp)) {
        return false;
    }
    memset(s->dirty, 0xff, s->words * sizeof(long));
    if (s->pages % WORD_BITS) {
        s->dirty[s->words - 1] = (1ul << (s->pages % WORD_BITS)) - 1;
    }
    g_mutex_lock(&s->j->lock);
    s->j->stats.total = s->pages * GW_MEM_PAGE;
    s->j->stats.remaining = s->j->stats.total;
    s->j->stats.setup_ms = (g_get_monotonic_time() - t0) / 1000;
    g_mutex_unlock(&s->j->lock);
    /* cpr-transfer: no pass, the memfd goes at the switch-over */
    return s->j->cpr || (open_channels(s, errp) && send_holes(s, errp));
}

/*
 * After a failed write the destination may have said why (a refused
 * manifest, a bad record) before it closed: prefer its reason.
 */
static void
destination_reason(Sender *s, GError **errp)
{
    g_autoptr(GError) why = NULL;

    if (!s->j->return_path || gw_mig_job_cancelled(s->j) ||
        !gw_mig_reader_wait(s->r, RP_WAIT_MS) || expect_ok(s, &why) || !why ||
        !g_str_has_prefix(why->message, "destination: ")) {
        return;
    }
    g_clear_error(errp);
    g_propagate_error(errp, g_steal_pointer(&why));
}

gpointer
gw_mig_out_thread(gpointer data)
{
    GwMigJob *j = data;
    GwMachine *m = gw_vm_machine(gw_mig_vm(j->mig));
    Sender s = {.j = j,
                .m = m,
                .mem = gw_machine_memory(m),
                .throttled = true,
                .best_dirty = UINT64_MAX};
    g_autoptr(GError) err = NULL;
    bool ok = gw_sandbox_enter(GW_SANDBOX_MIG_SEND, gw_sandbox_mode(), &err);

    s.pages = s.mem->size / GW_MEM_PAGE;
    s.ram_file = j->ram_file;
    s.words = gw_mem_dirty_words(s.mem);
    s.dirty = g_new0(unsigned long, s.words);
    s.w = gw_mig_writer_new(j->fd);
    s.r = gw_mig_reader_new(j->fd);
    ok = ok && setup(&s, &err) && (j->cpr || precopy(&s, &err)) &&
         switchover(&s, &err);
    if (!ok && s.chans && !gw_mig_chans_error(s.chans, NULL)) {
        g_debug("migration: %s; a channel failed first", err->message);
        g_clear_error(&err); /* the channel's reason */
        gw_mig_chans_error(s.chans, &err);
    }
    if (!ok) {
        gw_mig_chans_shutdown(s.chans);
        destination_reason(&s, &err);
    }
    gw_mig_converge_stop(&s.converge, j); /* the guest, wherever it runs,
                                             at speed */
    gw_mig_chans_free(s.chans);
    gw_mig_writer_free(s.w);
    gw_mig_reader_free(s.r);
    g_free(s.dirty);
    gw_mig_job_finish(j, ok, err);
    return NULL;
}
