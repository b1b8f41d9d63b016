/*
 * Guest-visible block throughput through a whole VMM, and the VMM's CPU
 * per request, godwit (vdpasim_blk) and QEMU (virtio-blk-pci) in the same
 * run.  No vCPU runs: this process is the guest's CPU and driver, over
 * qtest (godwit --qtest; QEMU -qtest with TCG stopped by -S), with the
 * test virtio-pci driver (tests/e2e/qvirtio.c), completions polled.
 *
 *   vdpa-blk [seconds-per-run=2] [ram|qtest]
 *
 * "ram" (default): the driver maps the VMM's guest RAM (a shared memfd)
 * and touches rings and buffers there as a vCPU would, so the only
 * qtest access per batch is the notify write, the one access that is a
 * vCPU exit on hardware.  "qtest": every RAM access is a qtest round
 * trip too, through the VMM's main thread.
 *
 * Both disks are a 128 MiB raw file in a temporary directory (godwit's
 * simulator maps it shared, QEMU reads and writes it with cache=writeback:
 * both through the page cache).  For 4 and 64 KiB, depth 1 and 16, a
 * timed loop of writes, then of reads over what was written.  Per run:
 * req/s and MB/s as the driver sees them, CPU time (utime+stime of
 * /proc/PID/task/TID/stat) per request of this process (the guest's CPU)
 * and of each VMM thread (grouped by name), and for godwit the accesses
 * its device models handled during the loop (x-godwit-query-exits: what
 * would be a vCPU exit to userspace under KVM) and the notify writes its
 * ioeventfds took.  Data is checked after every run: sampled sectors
 * read back after writes, the last batch's buffers after reads (zeroed
 * before the loop), against a pattern that changes from run to run.
 *
 * godwit runs twice: in passthrough (the device works on the guest's
 * rings), then as "relay", during a migration's pre-copy (to a second
 * godwit on the same disk, held in pre-copy by max-bandwidth, cancelled
 * afterwards), when the device works on shadow virtqueues and godwit's
 * relay thread carries every request and completion between them and
 * the guest's rings.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <linux/virtio_blk.h>
#include <glib/gstdio.h>
#include <godwit/qmp-client.h>
#include "../e2e/qtest-client.h"
#include "../e2e/qvirtio.h"
#include "../e2e/spawn-util.h"

#define T         20000 /* ms: every wait */
#define DISK      (128ull << 20)
#define RAM       (256ull << 20)
#define SECTOR    512
#define DEPTH_MAX 16
#define DATA_AT   0x1000000ull /* guest RAM: the data buffers */
#define CHECK_AT  0x2000000ull /* guest RAM: read-back buffer */
#define WINDOW(s) (0xC0000000u + (s) * (16u << 20))

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)

typedef struct {
    const char *name;
    GPid pid;
    GwQt *qt;
    GwQmpConn *qmp; /* godwit only */
    GwQVirtio *vd;
    uint8_t *ram;        /* guest RAM mapped here, or NULL: all over qtest */
    uint64_t written[2]; /* requests of each size on disk from last write */
    unsigned seed[2];    /* the pattern they carry */
} Vmm;

/* ---- CPU time from /proc ---- */

typedef struct {
    uint64_t ticks;    /* utime + stime of the whole process */
    GHashTable *tids;  /* tid → ticks */
    GHashTable *names; /* tid → comm */
} Cpu;

static bool
stat_ticks(const char *path, uint64_t *ticks)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) f = NULL;
    const char *p;

    if (!g_file_get_contents(path, &text, NULL, NULL) ||
        !(p = strrchr(text, ')'))) {
        return false; /* the thread is gone */
    }
    f = g_strsplit(p + 2, " ", 0); /* f[0] is field 3, state */
    if (g_strv_length(f) < 13) {
        return false;
    }
    *ticks =
        g_ascii_strtoull(f[11], NULL, 10) + g_ascii_strtoull(f[12], NULL, 10);
    return true;
}

static void
cpu_clear(Cpu *c)
{
    g_clear_pointer(&c->tids, g_hash_table_unref);
    g_clear_pointer(&c->names, g_hash_table_unref);
}

static Cpu
cpu_sample(GPid pid)
{
    g_autofree char *dir = g_strdup_printf("/proc/%d/task", pid);
    g_autofree char *path = g_strdup_printf("/proc/%d/stat", pid);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    Cpu c = {0, g_hash_table_new(NULL, NULL),
             g_hash_table_new_full(NULL, NULL, NULL, g_free)};
    const char *tid;
    uint64_t t;

    g_assert_nonnull(d);
    while ((tid = g_dir_read_name(d))) {
        g_autofree char *sp = g_strdup_printf("%s/%s/stat", dir, tid);
        g_autofree char *cp = g_strdup_printf("%s/%s/comm", dir, tid);
        char *comm = NULL;
        gpointer key = GINT_TO_POINTER(atoi(tid));

        if (stat_ticks(sp, &t) && g_file_get_contents(cp, &comm, NULL, NULL)) {
            g_hash_table_insert(c.tids, key, GSIZE_TO_POINTER(t));
            g_hash_table_insert(c.names, key, g_strchomp(comm));
        }
    }
    g_assert_true(stat_ticks(path, &c.ticks));
    return c;
}

/*
 * "name µs (…)" per thread name, from two samples; what threads that
 * ended in between used shows as "exited".  Returns the process's µs.
 */
static double
cpu_report(const Cpu *a, const Cpu *b, uint64_t reqs, GString *out)
{
    double us = 1e6 / sysconf(_SC_CLK_TCK) / reqs;
    g_autoptr(GHashTable) by = g_hash_table_new(g_str_hash, g_str_equal);
    GHashTableIter it;
    gpointer k, v;
    uint64_t live = 0;

    g_hash_table_iter_init(&it, b->tids);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        const char *name = g_hash_table_lookup(b->names, k);
        uint64_t d = GPOINTER_TO_SIZE(v) -
                     GPOINTER_TO_SIZE(g_hash_table_lookup(a->tids, k));
        live += d;
        g_hash_table_insert(
            by, (gpointer)name,
            GSIZE_TO_POINTER(GPOINTER_TO_SIZE(g_hash_table_lookup(by, name)) +
                             d));
    }
    g_hash_table_iter_init(&it, by);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        if (GPOINTER_TO_SIZE(v)) {
            g_string_append_printf(out, " %s %.1f", (char *)k,
                                   GPOINTER_TO_SIZE(v) * us);
        }
    }
    if (b->ticks - a->ticks > live) {
        g_string_append_printf(out, " exited %.1f",
                               (b->ticks - a->ticks - live) * us);
    }
    return (b->ticks - a->ticks) * us;
}

/* ---- godwit's device-model accesses ---- */

/* Accesses device models handled (reads, writes, unclaimed); kicks. */
static void
exits(Vmm *v, uint64_t *model, uint64_t *kicks)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) r = NULL;
    json_object *ret, *bus, *devs, *n;
    const char *buses[] = {"pio", "mmio"};

    *model = *kicks = 0;
    if (!v->qmp) {
        return;
    }
    r = gw_qmp_conn_execute(v->qmp, "x-godwit-query-exits", NULL, -1, T, &err);
    if (!r || !json_object_object_get_ex(r, "return", &ret)) {
        g_error("x-godwit-query-exits: %s",
                err ? err->message : json_object_to_json_string(r));
    }
    for (size_t i = 0; i < G_N_ELEMENTS(buses); i++) {
        bus = json_object_object_get(ret, buses[i]);
        *model +=
            json_object_get_int64(json_object_object_get(bus, "unclaimed"));
        devs = json_object_object_get(bus, "devices");
        for (size_t j = 0; j < json_object_array_length(devs); j++) {
            json_object *d = json_object_array_get_idx(devs, j);
            *model +=
                json_object_get_int64(json_object_object_get(d, "reads")) +
                json_object_get_int64(json_object_object_get(d, "writes"));
        }
    }
    if (json_object_object_get_ex(ret, "ioeventfd", &n)) {
        *kicks = json_object_get_int64(n);
    }
}

/* ---- the guest's side ---- */

static void
guest_write(Vmm *v, uint64_t gpa, const void *buf, size_t len)
{
    if (v->ram) {
        memcpy(v->ram + gpa, buf, len);
    } else {
        gw_qt_memwrite(v->qt, gpa, buf, len);
    }
}

static void
guest_read(Vmm *v, uint64_t gpa, void *buf, size_t len)
{
    if (v->ram) {
        memcpy(buf, v->ram + gpa, len);
    } else {
        gw_qt_memread(v->qt, gpa, buf, len);
    }
}

static void
pattern(uint8_t *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(seed * 37 + i * 7 + (i >> 9) * 13);
    }
}

static void
submit(Vmm *v, GwQVirtioBlkReq *r, unsigned n)
{
    g_autoptr(GError) err = NULL;

    if (!gw_qvirtio_blk_submit(v->vd, r, n, &err)) {
        g_error("%s: %s", v->name, err->message);
    }
    for (unsigned i = 0; i < n; i++) {
        if (r[i].status != VIRTIO_BLK_S_OK) {
            g_error("%s: %s at sector %" G_GUINT64_FORMAT ": status %u",
                    v->name, r[i].type == VIRTIO_BLK_T_IN ? "read" : "write",
                    r[i].sector, r[i].status);
        }
    }
}

/* Requests k … k+n-1 of `size` over the first `range` slots of the disk. */
static void
batch(Vmm *v, uint32_t type, uint32_t size, uint64_t k, unsigned n,
      uint64_t range)
{
    GwQVirtioBlkReq r[DEPTH_MAX];

    for (unsigned i = 0; i < n; i++) {
        r[i] = (GwQVirtioBlkReq){type, (k + i) % range * (size / SECTOR),
                                 DATA_AT + (uint64_t)i * size, size, 0};
    }
    submit(v, r, n);
}

/* `got` (len bytes of guest RAM at `at`) must be the pattern of `seed`. */
static void
check(Vmm *v, uint64_t at, size_t len, unsigned seed, const char *what)
{
    g_autofree uint8_t *want = g_malloc(len), *got = g_malloc(len);

    pattern(want, len, seed);
    guest_read(v, at, got, len);
    for (size_t i = 0; i < len; i++) {
        if (want[i] != got[i]) {
            g_error("%s: %s: byte %zu of %zu is 0x%02x, written 0x%02x",
                    v->name, what, i, len, got[i], want[i]);
        }
    }
}

/* After writes: four requests' sectors, read back one by one. */
static void
verify_written(Vmm *v, uint32_t size, unsigned seed, uint64_t written)
{
    const uint64_t at[] = {0, written / 3, written * 2 / 3, written - 1};
    g_autofree uint8_t *zero = g_malloc0(size);

    for (size_t i = 0; i < G_N_ELEMENTS(at); i++) {
        GwQVirtioBlkReq r = {VIRTIO_BLK_T_IN, at[i] * (size / SECTOR), CHECK_AT,
                             size, 0};
        guest_write(v, CHECK_AT, zero, size);
        submit(v, &r, 1);
        check(v, CHECK_AT, size, seed, "sector read back after writes");
    }
}

typedef struct {
    uint32_t type, size;
    unsigned depth;
} Run;

/* The buffers hold the pattern for writes, zeros for reads. */
static void
prepare(Vmm *v, const Run *r, unsigned seed)
{
    g_autofree uint8_t *buf = g_malloc0(r->size);

    if (r->type == VIRTIO_BLK_T_OUT) {
        pattern(buf, r->size, seed);
    }
    for (unsigned i = 0; i < r->depth; i++) {
        guest_write(v, DATA_AT + (uint64_t)i * r->size, buf, r->size);
    }
}

static uint64_t
timed_loop(Vmm *v, const Run *r, uint64_t range, double secs, double *t)
{
    gint64 start = g_get_monotonic_time(), end = start + secs * 1e6;
    uint64_t k = 0;

    while (g_get_monotonic_time() < end) {
        batch(v, r->type, r->size, k, r->depth, range);
        k += r->depth;
    }
    *t = (g_get_monotonic_time() - start) / 1e6;
    return k;
}

static void
run(Vmm *v, const Run *r, double secs, unsigned seed)
{
    unsigned s = r->size == 4096 ? 0 : 1;
    bool wr = r->type == VIRTIO_BLK_T_OUT;
    uint64_t range = wr ? DISK / r->size : v->written[s];
    uint64_t m0, m1, k0, k1, n;
    g_autoptr(GString) threads = g_string_new(NULL);
    g_autoptr(GString) self = g_string_new(NULL);
    double t;

    prepare(v, r, seed);
    exits(v, &m0, &k0);
    Cpu a = cpu_sample(v->pid), sa = cpu_sample(getpid());
    n = timed_loop(v, r, range, secs, &t);
    Cpu b = cpu_sample(v->pid), sb = cpu_sample(getpid());
    exits(v, &m1, &k1);
    double vmm = cpu_report(&a, &b, n, threads);
    double drv = cpu_report(&sa, &sb, n, self);
    cpu_clear(&a), cpu_clear(&b), cpu_clear(&sa), cpu_clear(&sb);

    if (wr) {
        v->written[s] = MIN(n, range);
        v->seed[s] = seed;
        verify_written(v, r->size, seed, v->written[s]);
    } else {
        for (unsigned i = 0; i < r->depth; i++) {
            check(v, DATA_AT + (uint64_t)i * r->size, r->size, v->seed[s],
                  "a buffer of the last batch of the read loop");
        }
    }
    printf("%-6s %-5s %2u KiB depth %2u: %7.0f req/s %7.1f MB/s | CPU "
           "us/req: driver %5.1f, %s %5.1f =%s",
           v->name, wr ? "write" : "read", r->size / 1024, r->depth, n / t,
           n * (double)r->size / t / 1e6, drv, v->name, vmm, threads->str);
    if (v->qmp) {
        printf(" | device-model accesses %" G_GUINT64_FORMAT
               ", ioeventfd kicks %" G_GUINT64_FORMAT " (%" G_GUINT64_FORMAT
               " batches)",
               m1 - m0, k1 - k0, n / r->depth);
    }
    printf(" | verified\n");
}

/* ---- the two VMMs ---- */

/* The first virtio-blk (modern) function on bus 0; asserts there is one. */
static unsigned
find_blk(GwQt *qt)
{
    for (unsigned slot = 0; slot < 32; slot++) {
        if (gw_qt_pci_read(qt, GW_QT_BDF(0, slot, 0), 0, 4) == 0x10421af4) {
            return slot;
        }
    }
    g_error("no virtio-blk function on bus 0");
}

/* QEMU's firmware never ran: its modern BAR (4, 64-bit) is ours to place. */
static void
place_bar4(GwQt *qt, unsigned slot)
{
    unsigned bdf = GW_QT_BDF(0, slot, 0);

    if ((gw_qt_pci_read(qt, bdf, 0x20, 4) & ~0xfu) == 0) {
        gw_qt_pci_write(qt, bdf, 0x20, 4, WINDOW(slot));
        gw_qt_pci_write(qt, bdf, 0x24, 4, 0);
    }
}

static void
make_disk(const char *path)
{
    g_autofree uint8_t *zero = g_malloc0(1 << 20);
    FILE *f = fopen(path, "wb");

    g_assert_nonnull(f);
    for (unsigned i = 0; i < DISK >> 20; i++) { /* allocated, not sparse */
        g_assert_cmpuint(fwrite(zero, 1, 1 << 20, f), ==, 1 << 20);
    }
    g_assert_cmpint(fclose(f), ==, 0);
}

/*
 * The VMM's guest RAM, a shared memfd of RAM bytes (godwit's
 * "godwit-ram", QEMU's memory-backend-memfd), mapped here through
 * /proc/PID/fd: then the driver touches RAM as a vCPU does, and only
 * the notify write goes over qtest.
 */
static uint8_t *
map_ram(GPid pid)
{
    g_autofree char *dir = g_strdup_printf("/proc/%d/fd", pid);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    g_assert_nonnull(d);
    while ((name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autofree char *link = g_file_read_link(path, NULL);
        struct stat st;
        int fd;

        if (!link || !g_str_has_prefix(link, "/memfd:") ||
            (fd = open(path, O_RDWR | O_CLOEXEC)) < 0) {
            continue;
        }
        void *p =
            fstat(fd, &st) == 0 && (uint64_t)st.st_size == RAM
                ? mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                : MAP_FAILED;
        close(fd);
        if (p != MAP_FAILED) {
            return p;
        }
    }
    g_error("no shared memfd of %" G_GUINT64_FORMAT " bytes in %s",
            (guint64)RAM, dir);
}

static void
start(Vmm *v, char **argv, char **env, const char *qt_sock,
      const char *qmp_sock, bool map)
{
    g_autoptr(GError) err = NULL;

    if (!g_spawn_async(NULL, argv, env, G_SPAWN_DO_NOT_REAP_CHILD,
                       die_with_parent, NULL, &v->pid, &err) ||
        !(v->qt = gw_qt_connect(qt_sock, T, &err)) ||
        (qmp_sock && (!(v->qmp = gw_qmp_conn_new(qmp_sock, T, &err)) ||
                      !gw_qmp_conn_negotiate(v->qmp, T, &err)))) {
        g_error("%s: %s", v->name, err->message);
    }
    unsigned slot = find_blk(v->qt);
    place_bar4(v->qt, slot);
    v->vd = gw_qvirtio_init_qsize(v->qt, slot, 64, &err);
    if (!v->vd) {
        g_error("%s: %s", v->name, err->message);
    }
    g_assert_cmpuint(gw_qvirtio_blk_capacity(v->vd), ==, DISK / SECTOR);
    if (map) {
        v->ram = map_ram(v->pid);
        gw_qvirtio_set_ram(v->vd, v->ram, RAM);
    }
    printf("%s: virtio-blk in slot %u, queue size %u, guest RAM %s\n", v->name,
           slot, gw_qvirtio_queue_size(v->vd),
           map ? "mapped by the driver" : "over qtest");
}

static void
stop(Vmm *v)
{
    int status;

    gw_qvirtio_reset(v->vd);
    gw_qvirtio_free(v->vd);
    if (v->ram) {
        munmap(v->ram, RAM);
    }
    /* Before the qtest socket closes: QEMU 7.2 complains of that. */
    kill(v->pid, SIGTERM);
    waitpid(v->pid, &status, 0);
    g_spawn_close_pid(v->pid);
    gw_qt_free(v->qt);
    g_clear_pointer(&v->qmp, gw_qmp_conn_free);
}

static void
measure(Vmm *v, double secs)
{
    static const Run runs[] = {
        {VIRTIO_BLK_T_OUT, 4096, 1},   {VIRTIO_BLK_T_IN, 4096, 1},
        {VIRTIO_BLK_T_OUT, 4096, 16},  {VIRTIO_BLK_T_IN, 4096, 16},
        {VIRTIO_BLK_T_OUT, 65536, 1},  {VIRTIO_BLK_T_IN, 65536, 1},
        {VIRTIO_BLK_T_OUT, 65536, 16}, {VIRTIO_BLK_T_IN, 65536, 16},
    };
    static unsigned seed = 1;
    const Run warm = {VIRTIO_BLK_T_OUT, 65536, 16};

    /* Every page of the disk touched once: no first-fault in the runs. */
    prepare(v, &warm, 0);
    for (uint64_t k = 0; k < DISK / warm.size; k += warm.depth) {
        batch(v, warm.type, warm.size, k, warm.depth, DISK / warm.size);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(runs); i++) {
        run(v, &runs[i], secs, seed++);
    }
}

typedef struct {
    double secs;
    bool map; /* guest RAM mapped by the driver */
} Opts;

static json_object *
qmp_ok(GwQmpConn *c, const char *cmd, const char *args)
{
    g_autoptr(GError) err = NULL;
    json_object *a = args ? json_tokener_parse(args) : NULL;
    json_object *r = gw_qmp_conn_execute(c, cmd, a, -1, T, &err);

    if (!r || !json_object_object_get_ex(r, "return", NULL)) {
        g_error("%s: %s", cmd,
                err ? err->message : json_object_to_json_string(r));
    }
    return r;
}

static char *
mig_status(GwQmpConn *c)
{
    g_autoptr(json_object) r = qmp_ok(c, "query-migrate", NULL);
    json_object *ret = json_object_object_get(r, "return");

    return g_strdup(
        json_object_get_string(json_object_object_get(ret, "status")));
}

static void
wait_mig_status(GwQmpConn *c, const char *want)
{
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;

    for (;;) {
        g_autofree char *st = mig_status(c);
        if (g_str_equal(st, want)) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000); /* polling query-migrate, bounded */
    }
}

/*
 * The same runs with the device on shadow virtqueues: a destination
 * godwit on the same disk, a migration held in pre-copy (4 KiB/s for
 * the megabytes of RAM the runs touched), measured, then cancelled.
 */
static void
measure_relay(Vmm *v, const char *dir, const char *sim, const Opts *o)
{
    g_autofree char *ddir = g_build_filename(dir, "dst", NULL);
    g_autofree char *qt = g_build_filename(ddir, "qtest.sock", NULL);
    g_autofree char *qmp = g_build_filename(ddir, "qmp.sock", NULL);
    g_autofree char *vdpa =
        g_strdup_printf("path=%s/vdpa/blk0,num_queues=1,id=disk0", ddir);
    g_autofree char *in = g_strdup_printf("unix:%s/mig.sock", ddir);
    g_autofree char *args = g_strdup_printf("{\"uri\": \"%s\"}", in);
    const char *bin = g_getenv("GODWIT_BIN");
    const char *argv[] = {bin ? bin : "./build/godwit",
                          "--qtest",
                          qt,
                          "--qmp",
                          qmp,
                          "--memory",
                          "size=256M",
                          "--serial",
                          "off",
                          "--vdpa-sim",
                          sim,
                          "--vdpa",
                          vdpa,
                          "--incoming",
                          in,
                          NULL};
    g_autoptr(GError) err = NULL;
    g_auto(GStrv) env = NULL;
    GwQmpConn *dst;
    GPid pid;
    int status;

    g_assert_cmpint(g_mkdir(ddir, 0700), ==, 0);
    env = godwit_test_env(ddir);
    if (!g_spawn_async(NULL, (char **)argv, env, G_SPAWN_DO_NOT_REAP_CHILD,
                       die_with_parent, NULL, &pid, &err) ||
        !(dst = gw_qmp_conn_new(qmp, T, &err)) ||
        !gw_qmp_conn_negotiate(dst, T, &err)) {
        g_error("destination: %s", err->message);
    }
    json_object_put(
        qmp_ok(v->qmp, "migrate-set-parameters", "{\"max-bandwidth\": 4096}"));
    json_object_put(qmp_ok(v->qmp, "migrate", args));
    wait_mig_status(v->qmp, "active");
    v->name = "relay";
    measure(v, o->secs);
    g_autofree char *st = mig_status(v->qmp);
    if (!g_str_equal(st, "active")) {
        g_error("the migration left pre-copy (%s) during the runs", st);
    }
    json_object_put(qmp_ok(v->qmp, "migrate_cancel", NULL));
    wait_mig_status(v->qmp, "cancelled");
    v->name = "godwit";
    gw_qmp_conn_free(dst);
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    g_spawn_close_pid(pid);
    g_rmdir(ddir);
}

static void
bench_godwit(const char *dir, const Opts *o)
{
    g_autofree char *qt = g_build_filename(dir, "godwit-qtest.sock", NULL);
    g_autofree char *qmp = g_build_filename(dir, "godwit-qmp.sock", NULL);
    g_autofree char *disk = g_build_filename(dir, "godwit.img", NULL);
    g_autofree char *sim =
        g_strdup_printf("name=blk0,mgmtdev=vdpasim_blk,backing=%s", disk);
    g_autofree char *vdpa =
        g_strdup_printf("path=%s/vdpa/blk0,num_queues=1,id=disk0", dir);
    const char *bin = g_getenv("GODWIT_BIN");
    const char *argv[] = {bin ? bin : "./build/godwit",
                          "--qtest",
                          qt,
                          "--qmp",
                          qmp,
                          "--memory",
                          "size=256M",
                          "--serial",
                          "off",
                          "--vdpa-sim",
                          sim,
                          "--vdpa",
                          vdpa,
                          NULL};
    g_auto(GStrv) env = godwit_test_env(dir);
    Vmm v = {.name = "godwit"};

    make_disk(disk);
    start(&v, (char **)argv, env, qt, qmp, o->map);
    measure(&v, o->secs);
    measure_relay(&v, dir, sim, o);
    stop(&v);
    g_unlink(disk);
}

static void
bench_qemu(const char *dir, const char *qemu, const Opts *o)
{
    g_autofree char *qt = g_build_filename(dir, "qemu-qtest.sock", NULL);
    g_autofree char *disk = g_build_filename(dir, "qemu.img", NULL);
    g_autofree char *qt_arg = g_strdup_printf("unix:%s,server=on,wait=off", qt);
    g_autofree char *drive = g_strdup_printf(
        "if=none,id=d0,file=%s,format=raw,cache=writeback", disk);
    const char *argv[] = {qemu,
                          "-accel",
                          "tcg",
                          "-S",
                          "-nodefaults",
                          "-name",
                          "vdpa-blk-bench,debug-threads=on",
                          "-qtest",
                          qt_arg,
                          "-qtest-log",
                          "/dev/null",
                          "-object",
                          "memory-backend-memfd,id=ram0,size=256M,share=on",
                          "-machine",
                          "pc,memory-backend=ram0",
                          "-m",
                          "256",
                          "-display",
                          "none",
                          "-device",
                          "virtio-blk-pci,disable-legacy=on,drive=d0,addr=04.0",
                          "-drive",
                          drive,
                          NULL};
    Vmm v = {.name = "qemu"};

    make_disk(disk);
    start(&v, (char **)argv, NULL, qt, NULL, o->map);
    measure(&v, o->secs);
    stop(&v);
    g_unlink(disk);
}

int
main(int argc, char **argv)
{
    Opts o = {argc > 1 ? atof(argv[1]) : 2.0,
              argc <= 2 || strcmp(argv[2], "qtest") != 0};
    g_autofree char *dir = g_dir_make_tmp("gw-vdpa-blk-XXXXXX", NULL);
    g_autofree char *qemu = g_find_program_in_path("qemu-system-x86_64");

    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    bench_godwit(dir, &o);
    if (qemu) {
        bench_qemu(dir, qemu, &o);
    } else {
        printf("qemu: qemu-system-x86_64 not in PATH: QEMU part skipped\n");
    }
    g_rmdir(dir);
    return 0;
}
