/*
 * One migration in progress, in either direction: what its thread and
 * the main thread share.  Private to migration/.
 *
 * Threads: the job's thread does all I/O on `fd`; the main thread owns
 * GwMig and everything it points to.  `lock` guards `stats` and the
 * main-thread calls (`call_*`); `cancel` and `abandoned` are atomics.
 * The job is reference-counted: the main thread holds one reference,
 * the thread another, and each main-thread call in flight a third.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <glib.h>
#include <godwit/memory.h>
#include <godwit/mig-stream.h>
#include <godwit/migration.h>

typedef struct {
    uint64_t transferred; /* bytes on the wire */
    uint64_t total;       /* guest RAM bytes */
    uint64_t remaining;   /* dirty bytes still to send */
    uint64_t normal;      /* pages sent with data */
    uint64_t duplicate;   /* zero pages sent as flags */
    uint64_t passes;      /* dirty-sync-count */
    uint64_t dirty_rate;  /* pages/s dirtied in the last pass */
    double mbps;          /* throughput of the last pass */
    int64_t setup_ms, downtime_ms, expected_downtime_ms;
} GwMigStats;

/* auto-converge's parameters (QEMU's names and defaults). */
typedef struct {
    int initial;   /* cpu-throttle-initial, 1 … 99, default 20 */
    int increment; /* cpu-throttle-increment, 1 … 99, default 10 */
    int max;       /* max-cpu-throttle, initial … 99, default 99 */
    int tailslow;  /* cpu-throttle-tailslow, a bool */
} GwMigThrottle;

typedef struct GwMigJob GwMigJob;
typedef bool (*GwMigMainFn)(GwMigJob *j, GError **errp);

struct GwMigJob {
    gint ref;
    GwMig *mig; /* main thread only; NULL once the controller let go */
    bool outgoing;
    int fd;
    bool return_path; /* the transport carries answers back */
    GThread *thread;
    int cancel;    /* atomic: migrate_cancel or teardown */
    int abandoned; /* atomic: the main thread will answer no more calls */
    GMutex lock;
    GCond cond;
    GwMigStats stats;
    gint64 start_us;
    /* parameters, copied at start and updated by migrate-set-parameters
     * (atomics) */
    int downtime_limit_ms;
    gpointer max_bandwidth; /* bytes/s, as an integer */
    bool pause_before_switchover;
    unsigned channels; /* multifd channels besides the main stream, or 0 */
    GwMigCompression compression; /* multifd-compression, both sides */
    int zstd_level;               /* multifd-zstd-level, the source's */
    bool auto_converge;           /* the capability, at the start */
    GwMigThrottle throttle;       /* its parameters (atomics) */
    bool ram_file;  /* gw_mig_ram_is_file, found on the main thread */
    char *uri;      /* outgoing: where the channels connect */
    int listen_fd;  /* incoming: the controller's, for the channels */
    int continued;  /* atomic: migrate-continue came */
    char *manifest; /* outgoing: the source's, JSON text */
    /* outgoing: set on the main thread before each pass */
    bool vm_paused;
    /* outgoing: set on the main thread by the switch-over call */
    bool was_running, paused_vm;
    GPtrArray *sections; /* GBytes *: device sections to send */
    /* incoming */
    bool source_running;
    /* cpr-transfer (cpr.c): guest RAM's memfd goes over, no RAM pages;
     * cpr_fd (incoming) is the memfd received, until adopted, else -1 */
    bool cpr;
    int cpr_fd;
    char *error; /* the thread's reason when it failed */
    /* outgoing, under lock: why pre-copy is not converging, or NULL */
    char *not_converging;
    /* outgoing, under lock: auto-converge's vCPU throttle now (0: off) */
    int throttle_pct;
};

GwMigJob *gw_mig_job_new(GwMig *mig, int fd, bool outgoing);
GwMigJob *gw_mig_job_ref(GwMigJob *j);
void gw_mig_job_unref(GwMigJob *j);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwMigJob, gw_mig_job_unref)

/* Called on the job's thread: whether the job should stop now. */
bool gw_mig_job_cancelled(GwMigJob *j);

/*
 * Called on the job's thread: runs fn(j) on the main thread and waits
 * for its result.  False with *errp if fn failed or the main thread let
 * the job go first ("migration cancelled").
 */
bool gw_mig_job_call_main(GwMigJob *j, GwMigMainFn fn, GError **errp);

/* Called on the job's thread as it ends: hands `ok`/`err` to the main
 * thread, which joins the thread and settles the migration's state. */
void gw_mig_job_finish(GwMigJob *j, bool ok, GError *err);

#define GW_MIG_DOWNTIME_LIMIT_MS 300         /* QEMU's default */
#define GW_MIG_MAX_BANDWIDTH     (128 << 20) /* QEMU 7.2's, bytes/s */

/* The controller (main thread only). */
struct GwMig {
    GwVm *vm;
    GwMigStatus status;
    char *error;      /* why the last migration failed */
    GwMigJob *job;    /* the one in progress, or the last one */
    GwMigStats last;  /* the last job's numbers, once it ended */
    int64_t total_ms; /* the last job's total time */
    bool events, return_path, pause_before_switchover, multifd;
    unsigned multifd_channels;
    GwMigCompression multifd_compression;
    int multifd_zstd_level;
    bool auto_converge;
    GwMigThrottle throttle;
    uint64_t downtime_limit_ms, max_bandwidth;
    int listen_fd; /* incoming: waiting for the source */
    guint listen_watch;
    char *listen_path; /* incoming unix: socket file, ours */
    bool incoming_started;
    bool cpr;         /* migrate-set-parameters mode: cpr-transfer */
    bool handed_over; /* a cpr-transfer completed: the guest is gone */
};

/* Guest RAM as a file (ram-file.c). */
/*
 * Whether guest RAM is the pages of its memfd: mapped MAP_SHARED and not
 * hugetlbfs.  Then a hole of the memfd is RAM nobody wrote (zero), and
 * pwrite to the memfd writes guest RAM.  Reads /proc/self/maps: call
 * once per migration, on the main thread (a migration thread may not
 * open files).
 */
bool gw_mig_ram_is_file(const GwGuestMemory *mem);

/*
 * The first data extent of the memfd in [off, end): [*start, *stop),
 * page aligned; false if [off, end) is all hole.  When the kernel cannot
 * tell, everything is data.  Only where gw_mig_ram_is_file.
 */
bool gw_mig_ram_next_data(const GwGuestMemory *mem, uint64_t off, uint64_t end,
                          uint64_t *start, uint64_t *stop);

/* Guest RAM from RAM and ZERO_RANGE records (ram-sink.c); one per
 * receiving thread. */
#define GW_MIG_SINK_RUN 64 /* data pages gathered into one pwritev */

typedef struct {
    GwGuestMemory *mem;
    bool ram_file; /* gw_mig_ram_is_file: write RAM with pwritev */
    /* shared by the sinks of one memfd's channels, held around pwritev,
     * or NULL (see gw_mig_ram_sink_init) */
    GMutex *write_lock;
    /* data pages of the current batch not yet written: consecutive in
     * the memfd from run_off, pointing into the record's payload */
    uint64_t run_off;
    int run_n;
    struct iovec run[GW_MIG_SINK_RUN];
} GwMigRamSink;

void gw_mig_ram_sink_init(GwMigRamSink *sink, GwGuestMemory *mem,
                          bool ram_file);

/* Applies one RAM or ZERO_RANGE record; false with *errp (a malformed
 * record, a page outside RAM, a failed write). */
bool gw_mig_ram_sink_record(GwMigRamSink *sink, uint32_t type, const void *data,
                            size_t len, GError **errp);

/* Parallel RAM channels, "multifd" (channels.c; threads there). */
#define GW_MIG_MAX_CHANNELS 255 /* QEMU's bound on multifd-channels */
typedef struct GwMigChans GwMigChans;

/* Sender thread: connects `n` channels to `uri` (tcp:, unix:) and
 * starts their threads. */
GwMigChans *gw_mig_chans_connect(GwMigJob *j, const char *uri, unsigned n,
                                 GError **errp);
/* An empty batch in `mode`, waiting for one to come back (bounded by
 * cancel and channel failure, which are errors). */
GwMigRamBatch *gw_mig_chans_take(GwMigChans *c, GwMigRamBatchMode mode,
                                 GError **errp);
/* Hands a batch (taken from gw_mig_chans_take) to the next channel. */
void gw_mig_chans_put(GwMigChans *c, GwMigRamBatch *b);
/* Every channel ends the round (ROUND_END) once its queue is sent. */
void gw_mig_chans_round_end(GwMigChans *c);
/* Unblocks channel threads in a write, from the sender thread. */
void gw_mig_chans_shutdown(GwMigChans *c);

/* Receiver thread: accepts `n` channels on `listen_fd` (bounded wait)
 * and starts their threads, which write RAM; a failing channel shuts
 * `main_fd` down so the main stream's reader stops too. */
GwMigChans *gw_mig_chans_accept(GwMigJob *j, int listen_fd, int main_fd,
                                unsigned n, GwGuestMemory *mem, GError **errp);
/* The main stream's ROUND_END: waits until every channel ended the
 * round too. */
bool gw_mig_chans_round(GwMigChans *c, GError **errp);

/* Either side: false with the first channel's error once one failed. */
bool gw_mig_chans_error(GwMigChans *c, GError **errp);
/* Bytes all channels wrote or read (NULL: 0). */
uint64_t gw_mig_chans_bytes(GwMigChans *c);
/* Sending: the RAM records' size the channels sent, as it was before
 * compression (gw_mig_ram_batch_wire_size of each; NULL: 0). */
uint64_t gw_mig_chans_raw_bytes(GwMigChans *c);
/* Whether the channels compress (NULL: no). */
bool gw_mig_chans_compressed(const GwMigChans *c);
/* Stops and joins the threads, closes the channels (NULL: nothing). */
void gw_mig_chans_free(GwMigChans *c);

/* cpr-transfer (cpr.c). */
const char *gw_mig_cpr_mode_name(bool cpr);
/* migrate-set-parameters' "mode", if given, into *cpr. */
bool gw_mig_cpr_parse_mode(json_object *params, bool *cpr, GError **errp);
/* With mode cpr-transfer: what `migrate` / `migrate-incoming` refuse
 * (a transport that is not a unix socket, multifd, RAM that cannot be
 * handed over). */
bool gw_mig_cpr_check_source(GwMig *mig, const char *uri, int fd,
                             GError **errp);
bool gw_mig_cpr_check_incoming(GwMig *mig, const char *uri, int fd,
                               GError **errp);
/* The CPR_RAM payload: guest RAM's size and regions (any thread). */
GBytes *gw_mig_cpr_layout(const GwGuestMemory *mem);
bool gw_mig_cpr_layout_check(const GwGuestMemory *mem, const void *data,
                             size_t len, GError **errp);
/* Main-thread halves of the receiver: check and map j->cpr_fd as guest
 * RAM (read-only); after COMMIT, make it writable. */
bool gw_mig_cpr_adopt_main(GwMigJob *j, GError **errp);
bool gw_mig_cpr_own_main(GwMigJob *j, GError **errp);
/* auto-converge (converge.c), on the sender thread. */
typedef struct {
    gint64 period_start;   /* the current period (a second at least) */
    uint64_t period_bytes; /* bytes sent when it began */
    uint64_t period_dirty; /* pages dirtied in it */
    unsigned dirty_high;   /* periods that dirtied over half of what went */
    int pct;               /* what the vCPUs were told, 0: not throttled */
} GwMigConverge;

/* Pre-copy begins, `sent` bytes on the wire so far. */
void gw_mig_converge_start(GwMigConverge *c, uint64_t sent);
/* After a dirty-log sync that found `dirty` pages: with the capability,
 * throttles the vCPUs a step when QEMU's rule says so; false with *errp
 * if the main thread let the job go. */
bool gw_mig_converge_sync(GwMigConverge *c, GwMigJob *j, uint64_t sent,
                          uint64_t dirty, GError **errp);
/* The migration ends, whatever the outcome: the throttle goes. */
void gw_mig_converge_stop(GwMigConverge *c, GwMigJob *j);

/* The threads' bodies (outgoing.c, incoming.c). */
gpointer gw_mig_out_thread(gpointer job);
gpointer gw_mig_in_thread(gpointer job);

/* Main thread, from the controller (migration.c). */
GwVm *gw_mig_vm(GwMig *mig);
void gw_mig_set_status(GwMig *mig, GwMigStatus s);
void gw_mig_job_done(GwMig *mig, GwMigJob *j, bool ok, const char *error);
