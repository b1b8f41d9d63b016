/*
 * Parallel RAM channels (QEMU's "multifd"): RAM batches over extra
 * connections, one thread per channel on each side, while the main
 * stream keeps the manifest, device state, the rounds' order and the
 * answers.  Format in docs/migration.md ("Channels").
 *
 * Threads.  Sending: the sender thread fills batches and hands each to
 * a channel's queue (gw_mig_chans_put), taking empty ones back from the
 * free queue; channel thread i ("gw-mig-chan") pops its queue and
 * writes.  Receiving: channel thread i reads its stream into guest RAM
 * through its own sink.  `lock` guards `rounds`, `main_round`,
 * `failed`, `finished` and `error`; `bytes` are atomics.  The queues are
 * GAsyncQueues.
 *
 * Compression (multifd-compression zstd): each channel thread compresses
 * or decompresses its own batches with its own GwMigZstd; both sides
 * must have the same method, which the CHANNEL record carries.
 *
 * Order.  A page is in at most one batch per round, but consecutive
 * rounds may carry it on different channels.  So on the destination a
 * channel that read its ROUND_END k waits until every channel and the
 * main stream have read theirs (gw_mig_chans_round for the main stream)
 * before it applies anything of round k + 1.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <godwit/mig-transport.h>
#include <godwit/util.h>
#include "mig-job.h"
#include "mig-priv.h"

#define ACCEPT_MS  10000 /* for each channel's connection */
#define POLL_MS    100   /* how often a wait looks at cancel */
#define POOL_EXTRA 2     /* free batches per channel */

/* Queue items besides batches. */
static int round_marker, stop_marker;
#define ROUND ((gpointer)&round_marker)
#define STOP  ((gpointer)&stop_marker)

typedef struct {
    GwMigChans *c;
    unsigned index;
    int fd;
    GThread *thread;
    GAsyncQueue *q;    /* sending: batches and markers */
    GwMigRamSink sink; /* receiving */
    GwMigZstd *z;      /* multifd-compression zstd, or NULL */
    uint64_t bytes;    /* atomic: written or read so far */
    uint64_t raw;      /* atomic, sending: the same before compression */
    unsigned rounds;   /* receiving: ROUND_ENDs read (under lock) */
} Chan;

struct GwMigChans {
    GwMigJob *j;
    unsigned n;
    Chan *ch;
    bool sending;
    GwMigCompression compression; /* the same on every channel */
    GAsyncQueue *free;            /* sending: empty batches */
    unsigned next;                /* sending: the channel of the next batch */
    int main_fd; /* receiving: shut down to wake the main reader */
    GMutex lock;
    GCond cond;
    GMutex write_lock; /* the receiving sinks' pwritev, one at a time */
    unsigned main_round;
    bool failed, finished;
    char *error;
};

static void
fail(GwMigChans *c, unsigned index, const GError *err)
{
    g_mutex_lock(&c->lock);
    if (!c->failed && !c->finished) {
        c->failed = true;
        c->error = g_strdup_printf("migration channel %u: %s", index,
                                   err ? err->message : "failed");
    }
    g_cond_broadcast(&c->cond);
    g_mutex_unlock(&c->lock);
    if (!c->sending) {
        shutdown(c->main_fd, SHUT_RD); /* the main reader stops too; the
                                          source may still hear why */
    }
}

bool
gw_mig_chans_error(GwMigChans *c, GError **errp)
{
    bool failed;

    g_mutex_lock(&c->lock);
    failed = c->failed;
    if (failed) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED, "%s", c->error);
    }
    g_mutex_unlock(&c->lock);
    return !failed;
}

uint64_t
gw_mig_chans_bytes(GwMigChans *c)
{
    uint64_t n = 0;

    for (unsigned i = 0; c && i < c->n; i++) {
        n += __atomic_load_n(&c->ch[i].bytes, __ATOMIC_RELAXED);
    }
    return n;
}

uint64_t
gw_mig_chans_raw_bytes(GwMigChans *c)
{
    uint64_t n = 0;

    for (unsigned i = 0; c && i < c->n; i++) {
        n += __atomic_load_n(&c->ch[i].raw, __ATOMIC_RELAXED);
    }
    return n;
}

bool
gw_mig_chans_compressed(const GwMigChans *c)
{
    return c && c->compression != GW_MIG_COMPRESS_NONE;
}

static GwMigChans *
chans_new(GwMigJob *j, unsigned n, bool sending)
{
    GwMigChans *c = g_new0(GwMigChans, 1);

    c->j = j;
    c->n = n;
    c->sending = sending;
    c->ch = g_new0(Chan, n);
    c->main_fd = -1;
    c->compression = j->compression;
    for (unsigned i = 0; i < n; i++) {
        c->ch[i] = (Chan){.c = c, .index = i, .fd = -1};
        if (c->compression == GW_MIG_COMPRESS_ZSTD) {
            c->ch[i].z = gw_mig_zstd_new(j->zstd_level);
        }
    }
    g_mutex_init(&c->lock);
    g_mutex_init(&c->write_lock);
    g_cond_init(&c->cond);
    return c;
}

/* Shuts every channel down, joins its thread and frees everything. */
void
gw_mig_chans_free(GwMigChans *c)
{
    if (!c) {
        return;
    }
    g_mutex_lock(&c->lock);
    c->finished = true;
    g_cond_broadcast(&c->cond);
    g_mutex_unlock(&c->lock);
    for (unsigned i = 0; i < c->n; i++) {
        Chan *ch = &c->ch[i];
        if (ch->q && ch->thread) {
            g_async_queue_push(ch->q, STOP);
        }
        if (ch->fd >= 0 && !c->sending) {
            shutdown(ch->fd, SHUT_RDWR); /* a reader blocked in read */
        }
    }
    for (unsigned i = 0; i < c->n; i++) {
        Chan *ch = &c->ch[i];
        if (ch->thread) {
            g_thread_join(ch->thread);
        }
        if (ch->fd >= 0) {
            close(ch->fd);
        }
        gw_mig_zstd_free(ch->z);
        if (ch->q) {
            GwMigRamBatch *b;
            while ((b = g_async_queue_try_pop(ch->q))) {
                if (b != ROUND && b != STOP) {
                    gw_mig_ram_batch_free(b);
                }
            }
            g_async_queue_unref(ch->q);
        }
    }
    if (c->free) {
        GwMigRamBatch *b;
        while ((b = g_async_queue_try_pop(c->free))) {
            gw_mig_ram_batch_free(b);
        }
        g_async_queue_unref(c->free);
    }
    g_mutex_clear(&c->lock);
    g_mutex_clear(&c->write_lock);
    g_cond_clear(&c->cond);
    g_free(c->error);
    g_free(c->ch);
    g_free(c);
}

/* ---- sending ---- */

/* A channel thread's one item: false once the channel failed. */
static bool
send_item(Chan *ch, GwMigWriter *w, gpointer item, GError **errp)
{
    bool ok = true;

    if (item == ROUND) {
        ok = gw_mig_write(w, GW_MIG_REC_ROUND_END, NULL, 0, errp);
    } else {
        uint64_t raw = gw_mig_ram_batch_wire_size(item);
        ok = ch->z ? gw_mig_ram_batch_send_zstd(item, w, ch->z, errp)
                   : gw_mig_ram_batch_send(item, w, errp);
        __atomic_add_fetch(&ch->raw, raw, __ATOMIC_RELAXED);
        g_async_queue_push(ch->c->free, item); /* emptied, also on error */
    }
    __atomic_store_n(&ch->bytes, gw_mig_writer_bytes(w), __ATOMIC_RELAXED);
    return ok;
}

/* The stream header and CHANNEL: the index, and with compression its
 * method (stream version 3, so an older godwit refuses it at once). */
static bool
send_channel_record(Chan *ch, GwMigWriter *w, GError **errp)
{
    uint8_t rec[8];
    bool plain = ch->c->compression == GW_MIG_COMPRESS_NONE;

    gw_mig_st32(rec, ch->index);
    gw_mig_st32(rec + 4, ch->c->compression);
    return gw_mig_writer_header_version(
               w, plain ? GW_MIG_VERSION_PLAIN : GW_MIG_VERSION_ZSTD, errp) &&
           gw_mig_write(w, GW_MIG_REC_CHANNEL, rec, plain ? 4 : 8, errp);
}

static gpointer
send_thread(gpointer data)
{
    Chan *ch = data;
    g_autoptr(GwMigWriter) w = gw_mig_writer_new(ch->fd);
    g_autoptr(GError) err = NULL;
    bool ok = send_channel_record(ch, w, &err);

    for (;;) {
        gpointer item = g_async_queue_pop(ch->q);
        if (item == STOP) {
            break;
        }
        if (!ok) { /* failed: drain, hand batches back */
            if (item != ROUND) {
                gw_mig_ram_batch_reset(item);
                g_async_queue_push(ch->c->free, item);
            }
            continue;
        }
        if (!send_item(ch, w, item, &err)) {
            ok = false;
            fail(ch->c, ch->index, err);
        }
    }
    if (!ok && err) {
        fail(ch->c, ch->index, err);
    }
    return NULL;
}

GwMigChans *
gw_mig_chans_connect(GwMigJob *j, const char *uri, unsigned n, GError **errp)
{
    GwMigChans *c = chans_new(j, n, true);
    GwMigUri u;

    if (!gw_mig_uri_parse(uri, &u, errp)) {
        gw_mig_chans_free(c);
        return NULL;
    }
    c->free = g_async_queue_new();
    for (unsigned i = 0; i < n * POOL_EXTRA + 1; i++) {
        g_async_queue_push(c->free,
                           gw_mig_ram_batch_new(GW_MIG_RAM_BATCH_PAGES,
                                                GW_MIG_RAM_BATCH_BOUNCE));
    }
    for (unsigned i = 0; i < n; i++) {
        Chan *ch = &c->ch[i];
        ch->fd = gw_mig_uri_connect(&u, errp);
        if (ch->fd < 0) {
            g_prefix_error(errp, "migration channel %u: ", i);
            gw_mig_uri_clear(&u);
            gw_mig_chans_free(c);
            return NULL;
        }
        ch->q = g_async_queue_new();
        ch->thread = g_thread_new("gw-mig-chan", send_thread, ch);
    }
    gw_mig_uri_clear(&u);
    return c;
}

GwMigRamBatch *
gw_mig_chans_take(GwMigChans *c, GwMigRamBatchMode mode, GError **errp)
{
    for (;;) {
        GwMigRamBatch *b = g_async_queue_timeout_pop(
            c->free, POLL_MS * G_TIME_SPAN_MILLISECOND);
        if (!gw_mig_chans_error(c, errp)) {
            if (b) {
                g_async_queue_push(c->free, b);
            }
            return NULL;
        }
        if (b) {
            gw_mig_ram_batch_set_mode(b, mode);
            return b;
        }
        if (gw_mig_job_cancelled(c->j)) {
            g_set_error(errp, GW_ERROR, GW_ERROR_FAILED, "migration cancelled");
            return NULL;
        }
    }
}

void
gw_mig_chans_put(GwMigChans *c, GwMigRamBatch *b)
{
    if (!gw_mig_ram_batch_count(b)) {
        g_async_queue_push(c->free, b);
        return;
    }
    g_async_queue_push(c->ch[c->next].q, b);
    c->next = (c->next + 1) % c->n;
}

void
gw_mig_chans_round_end(GwMigChans *c)
{
    for (unsigned i = 0; i < c->n; i++) {
        g_async_queue_push(c->ch[i].q, ROUND);
    }
}

/* Unblocks channel threads stuck in a write (the link is gone). */
void
gw_mig_chans_shutdown(GwMigChans *c)
{
    for (unsigned i = 0; c && i < c->n; i++) {
        if (c->ch[i].fd >= 0) {
            shutdown(c->ch[i].fd, SHUT_RDWR);
        }
    }
}

/* ---- receiving ---- */

static unsigned
min_round(const GwMigChans *c)
{
    unsigned m = c->main_round;

    for (unsigned i = 0; i < c->n; i++) {
        m = MIN(m, c->ch[i].rounds);
    }
    return m;
}

/* Counts `*mine` up and waits until everyone reached it; false once a
 * channel failed or the receiver finished. */
static bool
barrier(GwMigChans *c, unsigned *mine)
{
    bool ok;

    g_mutex_lock(&c->lock);
    (*mine)++;
    g_cond_broadcast(&c->cond);
    while (min_round(c) < *mine && !c->failed && !c->finished) {
        g_cond_wait(&c->cond, &c->lock);
    }
    ok = !c->failed && !c->finished;
    g_mutex_unlock(&c->lock);
    return ok;
}

/* A RAM or RAM_ZSTD record, as this channel's compression says. */
static bool
recv_ram(Chan *ch, uint32_t type, const void *data, size_t len, GError **errp)
{
    const uint8_t *raw;
    size_t raw_len;

    if ((type == GW_MIG_REC_RAM_ZSTD) != (ch->z != NULL)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "a %s record on a channel %s compression",
                    gw_mig_record_type_name(type), ch->z ? "with" : "without");
        return false;
    }
    if (!ch->z) {
        return gw_mig_ram_sink_record(&ch->sink, type, data, len, errp);
    }
    return gw_mig_zstd_decompress(ch->z, data, len, &raw, &raw_len, errp) &&
           gw_mig_ram_sink_record(&ch->sink, GW_MIG_REC_RAM, raw, raw_len,
                                  errp);
}

static bool
recv_record(Chan *ch, GwMigReader *r, GError **errp)
{
    g_autoptr(GBytes) payload = NULL;
    uint32_t type;
    gsize len;
    const void *data;

    if (!gw_mig_read(r, &type, &payload, errp)) {
        return false;
    }
    __atomic_store_n(&ch->bytes, gw_mig_reader_bytes(r), __ATOMIC_RELAXED);
    data = g_bytes_get_data(payload, &len);
    switch (type) {
    case GW_MIG_REC_RAM:
    case GW_MIG_REC_RAM_ZSTD:
        return recv_ram(ch, type, data, len, errp);
    case GW_MIG_REC_ZERO_RANGE:
        return gw_mig_ram_sink_record(&ch->sink, type, data, len, errp);
    case GW_MIG_REC_ROUND_END:
        if (!barrier(ch->c, &ch->rounds)) {
            g_set_error(errp, GW_ERROR, GW_ERROR_FAILED, "stopped");
            return false;
        }
        return true;
    default:
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "unexpected %s record (type %u)",
                    gw_mig_record_type_name(type), type);
        return false;
    }
}

static gpointer
recv_thread(gpointer data)
{
    Chan *ch = data;
    g_autoptr(GwMigReader) r = gw_mig_reader_new(ch->fd);
    g_autoptr(GError) err = NULL;

    while (recv_record(ch, r, &err)) {
    }
    g_mutex_lock(&ch->c->lock);
    bool finished = ch->c->finished;
    g_mutex_unlock(&ch->c->lock);
    if (!finished) {
        fail(ch->c, ch->index, err);
    }
    return NULL;
}

/* Waits (bounded, cancellable) for the next connection on `listen_fd`. */
static int
accept_one(GwMigJob *j, int listen_fd, GError **errp)
{
    gint64 deadline = g_get_monotonic_time() + ACCEPT_MS * 1000ll;

    while (g_get_monotonic_time() < deadline && !gw_mig_job_cancelled(j)) {
        struct pollfd p = {.fd = listen_fd, .events = POLLIN};
        if (poll(&p, 1, POLL_MS) <= 0) {
            continue;
        }
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            gw_mig_socket_tune(fd);
            return fd;
        }
    }
    g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                "migration: a channel did not connect in time");
    return -1;
}

static const char *
compression_name(uint32_t method)
{
    return method == GW_MIG_COMPRESS_ZSTD ? "zstd" : "none";
}

/* Both sides must compress alike, as QEMU requires. */
static bool
check_compression(uint32_t source, GwMigCompression mine, GError **errp)
{
    if (source > GW_MIG_COMPRESS_ZSTD) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "migration: the source's channels use compression "
                    "method %u, which this godwit does not know",
                    source);
        return false;
    }
    if (source != mine) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "migration: the source's multifd-compression is %s, "
                    "this destination's is %s: set the same on both sides",
                    compression_name(source), compression_name(mine));
        return false;
    }
    return true;
}

/* A new connection's header and CHANNEL record: its index, and the
 * compression both sides must agree on. */
static bool
read_channel_index(int fd, unsigned n, GwMigCompression mine, unsigned *index,
                   GError **errp)
{
    g_autoptr(GwMigReader) r = gw_mig_reader_new(fd);
    g_autoptr(GBytes) payload = NULL;
    uint32_t type;
    gsize len;
    const uint8_t *p;

    if (!gw_mig_reader_header(r, errp) ||
        !gw_mig_read(r, &type, &payload, errp)) {
        g_prefix_error(errp, "migration channel: ");
        return false;
    }
    p = g_bytes_get_data(payload, &len);
    if (type != GW_MIG_REC_CHANNEL || (len != 4 && len != 8) ||
        gw_mig_ld32(p) >= n) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "migration: a channel's stream does not start with a "
                    "CHANNEL record below %u",
                    n);
        return false;
    }
    *index = gw_mig_ld32(p);
    return check_compression(len == 8 ? gw_mig_ld32(p + 4) : 0, mine, errp);
}

GwMigChans *
gw_mig_chans_accept(GwMigJob *j, int listen_fd, int main_fd, unsigned n,
                    GwGuestMemory *mem, GError **errp)
{
    GwMigChans *c = chans_new(j, n, false);

    c->main_fd = main_fd;
    for (unsigned k = 0; k < n; k++) {
        unsigned i = 0;
        int fd = accept_one(j, listen_fd, errp);
        bool ok =
            fd >= 0 && read_channel_index(fd, n, c->compression, &i, errp);
        if (ok && c->ch[i].fd >= 0) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "migration: channel %u connected twice", i);
            ok = false;
        }
        if (!ok) {
            if (fd >= 0) {
                close(fd);
            }
            gw_mig_chans_free(c);
            return NULL;
        }
        c->ch[i].fd = fd;
    }
    for (unsigned i = 0; i < n; i++) {
        gw_mig_ram_sink_init(&c->ch[i].sink, mem, j->ram_file);
        c->ch[i].sink.write_lock = &c->write_lock;
        c->ch[i].thread = g_thread_new("gw-mig-chan", recv_thread, &c->ch[i]);
    }
    return c;
}

bool
gw_mig_chans_round(GwMigChans *c, GError **errp)
{
    if (barrier(c, &c->main_round)) {
        return true;
    }
    if (gw_mig_chans_error(c, errp)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED, "migration cancelled");
    }
    return false;
}
