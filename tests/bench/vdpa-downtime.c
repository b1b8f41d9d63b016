/*
 * The downtime of a live migration of a VM whose vDPA disks are under
 * I/O, with 1 and 4 disks.  Two godwit processes under --qtest (source
 * and destination, unix: socket), each with N vdpasim_blk devices on
 * backing files both share; this process is the guest's driver and keeps
 * DEPTH writes in flight on every disk before, during and after the
 * migration (qtest accesses, through each VMM's main thread, as in
 * tests/e2e/test-migration.c).  The driver plays the vCPUs, and a paused
 * vCPU issues nothing: so the source pauses before the switch-over
 * (pause-before-switchover), the driver stops submitting there, leaving
 * its requests in flight (the device completes them when it suspends),
 * and lets it go on (migrate-continue).  Downtime two ways: the source's
 * query-migrate `downtime` (pause to COMMIT sent, less that wait, in
 * whole ms as QEMU gives it), and the time from the source's STOP event
 * to the destination's RESUME event (QMP timestamps, one host clock),
 * less the wait (from the source's pre-switchover MIGRATION event to
 * the driver sending migrate-continue), which includes the destination's
 * device restore.
 * Every request completes once, with status OK, on one side or the
 * other; the run fails otherwise.
 *
 *   vdpa-downtime [runs=5]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib/gstdio.h>
#include <godwit/util.h>
#include "../e2e/qtest-vm.h"
#include "../e2e/qvirtio.h"

#define MAX_DISKS 4
#define DEPTH     4
#define SLOT_LEN  (4096 + 512) /* header, status; data from +512 */
#define VQ0       0
#define T         GW_TEST_VM_WAIT_MS

typedef struct {
    GwQVirtio *vd;
    uint64_t area;
    int head[DEPTH]; /* in flight, or -1 */
    uint64_t submitted, completed;
} Disk;

typedef struct {
    unsigned n;
    Disk d[MAX_DISKS];
    GwQt *qt; /* the side the driver talks to */
} Io;

static void
submit(Io *io, Disk *k, unsigned i)
{
    uint64_t at = k->area + i * SLOT_LEN;
    uint64_t sector = (k->submitted * 8) % 1024;
    uint32_t hdr[4] = {1, 0, (uint32_t)sector, 0}; /* VIRTIO_BLK_T_OUT */
    const GwQVirtioBuf b[3] = {
        {at, 16, false}, {at + 512, 4096, false}, {at + 16, 1, true}};

    gw_qt_memwrite(io->qt, at, hdr, sizeof(hdr));
    gw_qt_writeb(io->qt, at + 16, 0xff);
    k->head[i] = gw_qvirtio_vq_add(k->vd, VQ0, b, 3);
    k->submitted++;
}

/* Takes every completion of every disk (each once, status OK) and
 * refills its slot. */
static void
pump(Io *io, bool refill)
{
    for (unsigned j = 0; j < io->n; j++) {
        Disk *k = &io->d[j];
        uint32_t id, len;
        bool kick = false;

        while (gw_qvirtio_vq_poll(k->vd, VQ0, &id, &len)) {
            unsigned i = 0;
            while (i < DEPTH && k->head[i] != (int)id) {
                i++;
            }
            g_assert_cmpuint(i, <, DEPTH); /* not a duplicate */
            g_assert_cmpuint(gw_qt_readb(io->qt, k->area + i * SLOT_LEN + 16),
                             ==, 0);
            k->head[i] = -1;
            k->completed++;
            if (refill) {
                submit(io, k, i);
                kick = true;
            }
        }
        if (kick) {
            gw_qvirtio_vq_kick(k->vd, VQ0);
        }
    }
}

static json_object *
wait_event(GwTestVm *vm, const char *name)
{
    g_autoptr(GError) err = NULL;
    json_object *ev = gw_qmp_conn_wait_event(vm->c, name, T, &err);

    if (!ev) {
        g_error("no %s event: %s", name, err ? err->message : "timeout");
    }
    return ev;
}

static int64_t
stamp_us(json_object *ev)
{
    json_object *ts = json_object_object_get(ev, "timestamp");

    return json_object_get_int64(json_object_object_get(ts, "seconds")) *
               G_USEC_PER_SEC +
           json_object_get_int64(json_object_object_get(ts, "microseconds"));
}

static char *
status(GwTestVm *vm)
{
    g_autoptr(json_object) r = gw_test_vm_qmp_ok(vm, "query-migrate", NULL);

    return g_strdup(
        json_object_get_string(json_object_object_get(r, "status")));
}

static void
set_cap(GwTestVm *vm, const char *cap)
{
    g_autofree char *args = g_strdup_printf(
        "{\"capabilities\": [{\"capability\": \"%s\", \"state\": true}]}", cap);

    json_object_put(gw_test_vm_qmp_ok(vm, "migrate-set-capabilities", args));
}

/* The timestamp of the source's MIGRATION event with status `want`. */
static int64_t
migration_event_us(GwTestVm *vm, const char *want)
{
    for (;;) {
        g_autoptr(json_object) ev = wait_event(vm, "MIGRATION");
        json_object *data = json_object_object_get(ev, "data");
        const char *st =
            json_object_get_string(json_object_object_get(data, "status"));
        if (st && g_str_equal(st, want)) {
            return stamp_us(ev);
        }
    }
}

static void
start_vm(GwTestVm *vm, const char *dir, unsigned n, const char *incoming)
{
    g_autoptr(GPtrArray) a = g_ptr_array_new_with_free_func(g_free);

    for (unsigned i = 0; i < n; i++) {
        g_ptr_array_add(a, g_strdup_printf("--vdpa-sim=name=d%u,mgmtdev="
                                           "vdpasim_blk,capacity=1M,"
                                           "backing=%s/disk%u.img",
                                           i, dir, i));
        g_ptr_array_add(a, g_strdup_printf("--vdpa=path=@DIR@/vdpa/d%u,"
                                           "id=disk%u",
                                           i, i));
    }
    if (incoming) {
        g_ptr_array_add(a, g_strdup_printf("--incoming=%s", incoming));
    }
    g_ptr_array_add(a, NULL);
    gw_test_vm_start(vm, (const char *const *)a->pdata);
}

/* Drivers for the source's disks (slots 1..n), DEPTH writes in flight. */
static void
io_start(Io *io, GwTestVm *src, unsigned n)
{
    g_autoptr(GError) err = NULL;
    size_t len;

    io->n = n;
    io->qt = src->qt;
    for (unsigned j = 0; j < n; j++) {
        Disk *k = &io->d[j];
        k->vd = gw_qvirtio_init_queues(src->qt, 1 + j, 1ull << 32, 1, &err);
        g_assert_no_error(err);
        k->area = gw_qvirtio_data_area(k->vd, &len);
        g_assert_cmpuint(len, >=, DEPTH * SLOT_LEN);
        for (unsigned i = 0; i < DEPTH; i++) {
            submit(io, k, i);
        }
        gw_qvirtio_vq_kick(k->vd, VQ0);
    }
}

typedef struct {
    double reported_ms, stop_resume_ms;
    uint64_t requests;
} Result;

static Result
one_run(const char *dir, unsigned n)
{
    GwTestVm src, dst;
    Io io = {0};
    g_autofree char *uri = NULL, *args = NULL;
    Result res = {0};

    start_vm(&src, dir, n, NULL);
    uri = g_strdup_printf("unix:%s/mig.sock", src.dir);
    start_vm(&dst, dir, n, uri);
    set_cap(&src, "events");
    set_cap(&dst, "events");
    set_cap(&src, "pause-before-switchover");
    io_start(&io, &src, n);
    for (int i = 0; i < 200; i++) {
        pump(&io, true); /* warm: the disks are busy before */
    }
    args = g_strdup_printf("{\"uri\": \"%s\"}", uri);
    json_object_put(gw_test_vm_qmp_ok(&src, "migrate", args));
    for (;;) {
        g_autofree char *st = status(&src);
        if (g_str_equal(st, "pre-switchover")) {
            break;
        }
        if (g_str_equal(st, "failed")) {
            g_error("migration failed");
        }
        pump(&io, true);
    }
    pump(&io, false); /* paused: completions only, nothing new */
    int64_t cont_us = g_get_real_time();
    json_object_put(gw_test_vm_qmp_ok(&src, "migrate-continue",
                                      "{\"state\": \"pre-switchover\"}"));
    for (;;) {
        g_autofree char *st = status(&src);
        if (g_str_equal(st, "completed")) {
            break;
        }
        g_assert_cmpstr(st, !=, "failed");
    }
    g_autoptr(json_object) info =
        gw_test_vm_qmp_ok(&src, "query-migrate", NULL);
    g_autoptr(json_object) stop = wait_event(&src, "STOP");
    g_autoptr(json_object) resume = wait_event(&dst, "RESUME");
    int64_t waited = cont_us - migration_event_us(&src, "pre-switchover");
    res.reported_ms =
        (double)json_object_get_int64(json_object_object_get(info, "downtime"));
    res.stop_resume_ms =
        (double)(stamp_us(resume) - stamp_us(stop) - waited) / 1000.0;
    /* The destination goes on with the same rings: what was in flight
     * completes there, once; then a few more rounds of I/O. */
    io.qt = dst.qt;
    for (unsigned j = 0; j < n; j++) {
        gw_qvirtio_set_qt(io.d[j].vd, dst.qt);
    }
    for (int i = 0; i < 50; i++) {
        pump(&io, true);
    }
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;
    for (unsigned j = 0; j < n; j++) {
        while (io.d[j].completed < io.d[j].submitted) {
            pump(&io, false);
            if (g_get_monotonic_time() > deadline) {
                g_error("disk %u: %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                        " requests completed",
                        j, io.d[j].completed, io.d[j].submitted);
            }
        }
    }
    for (unsigned j = 0; j < n; j++) {
        res.requests += io.d[j].completed;
        gw_qvirtio_free(io.d[j].vd);
    }
    gw_test_vm_stop(&src);
    gw_test_vm_stop(&dst);
    return res;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static void
report(const char *what, double *v, unsigned runs)
{
    qsort(v, runs, sizeof(*v), cmp_double);
    printf("  %-34s median %7.2f ms  min %7.2f  max %7.2f\n", what, v[runs / 2],
           v[0], v[runs - 1]);
}

int
main(int argc, char **argv)
{
    static const unsigned disks[] = {1, 4};
    unsigned runs = argc > 1 ? (unsigned)atoi(argv[1]) : 5;
    g_autofree char *dir = g_dir_make_tmp("gw-vdpa-downtime-XXXXXX", NULL);

    g_set_prgname("vdpa-downtime");
    setvbuf(stdout, NULL, _IOLBF, 0);
    runs = CLAMP(runs, 1, 100);
    for (size_t d = 0; d < G_N_ELEMENTS(disks); d++) {
        g_autofree double *rep = g_new(double, runs);
        g_autofree double *sr = g_new(double, runs);
        uint64_t reqs = 0;

        for (unsigned r = 0; r < runs; r++) {
            Result res = one_run(dir, disks[d]);
            rep[r] = res.reported_ms;
            sr[r] = res.stop_resume_ms;
            reqs += res.requests;
        }
        printf("%u vDPA disk(s) under I/O (%u writes in flight each), %u "
               "runs, %" G_GUINT64_FORMAT " requests, all completed once:\n",
               disks[d], DEPTH, runs, reqs);
        report("downtime (query-migrate)", rep, runs);
        report("source STOP -> destination RESUME", sr, runs);
    }
    for (unsigned i = 0; i < MAX_DISKS; i++) {
        g_autofree char *p = g_strdup_printf("%s/disk%u.img", dir, i);
        g_unlink(p);
    }
    g_rmdir(dir);
    return 0;
}
