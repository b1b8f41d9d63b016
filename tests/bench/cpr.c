/*
 * Same-host handover (mode cpr-transfer) of a guest with 1 GiB (or MiB
 * from argv) of random RAM, over a unix socket, and for scale the same
 * guest by an ordinary migration over the same socket, in the same run.
 *
 *   cpr [RUNS=10] [MIB=1024] [kvm]
 *
 * With `kvm`, the test guest runs on KVM (2 vCPUs, its dirty rounds=0
 * workload; its RAM is its own, so only the memfd is checked), and
 * the downtime includes the vCPUs' and the irqchips' state.  Else
 * godwit runs --qtest on both sides (no vCPU); the source is running
 * when `migrate` comes: the handover pauses it at once, as cpr-transfer
 * always does, the ordinary migration after its one pre-copy pass.  The random
 * RAM is written by this process into the source's guest RAM memfd (through
 * /proc/PID/fd, no test hook).
 *
 * Timed: "total" from sending `migrate` to the destination's MIGRATION
 * "completed" event (it runs the guest then); "downtime" from the
 * source's STOP event to the destination's RESUME, by their timestamps
 * (the host's clock in both).  Checked
 * after each run: the destination's guest RAM is the source's memfd
 * (the same inode) and hashes (XXH3) to what was written.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <xxhash.h>
#include <glib/gstdio.h>
#include <godwit/qmp-client.h>
#include <godwit/util.h>
#include "../e2e/spawn-util.h"
#include "bench-proc.h"

#define T BENCH_WAIT_MS

static uint64_t ram_bytes;
static bool kvm; /* the test guest on KVM instead of --qtest */

static void
spawn(Proc *p, const char *dir, const char *sock, const char *incoming)
{
    const char *bin = g_getenv("GODWIT_BIN");
    const char *guest = g_getenv("GODWIT_GUEST");
    g_autoptr(GPtrArray) a = g_ptr_array_new_with_free_func(g_free);
    g_auto(GStrv) env = godwit_test_env(dir);

    g_ptr_array_add(a, g_strdup(bin ? bin : "./build/godwit"));
    if (kvm) {
        g_ptr_array_add(a, g_strdup("--kernel"));
        g_ptr_array_add(
            a, g_strdup(guest ? guest : "build/tests/guest/guest.elf"));
        g_ptr_array_add(a, g_strdup("--cmdline"));
        g_ptr_array_add(a, g_strdup("dirty pages=16 rounds=0"));
        g_ptr_array_add(a, g_strdup("--cpus"));
        g_ptr_array_add(a, g_strdup("boot=2"));
    } else {
        g_ptr_array_add(a, g_strdup("--qtest"));
        g_ptr_array_add(a, g_strdup_printf("%s.qtest", sock));
    }
    g_ptr_array_add(a, g_strdup("--qmp"));
    g_ptr_array_add(a, g_strdup(sock));
    g_ptr_array_add(a, g_strdup("--memory"));
    g_ptr_array_add(
        a, g_strdup_printf("size=%" G_GUINT64_FORMAT "M", ram_bytes >> 20));
    g_ptr_array_add(a, g_strdup("--serial"));
    g_ptr_array_add(a, g_strdup("off"));
    if (incoming) {
        g_ptr_array_add(a, g_strdup("--incoming"));
        g_ptr_array_add(a, g_strdup(incoming));
    }
    g_ptr_array_add(a, NULL);
    proc_spawn(p, (char **)a->pdata, env, sock);
}

/* The wall-clock time (µs) of the next event `name`: both processes
 * stamp events with the host's clock, so two of them compare. */
static gint64
event_us(Proc *p, const char *name)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) ev = gw_qmp_conn_wait_event(p->qmp, name, T, &err);
    json_object *ts;

    if (!ev) {
        g_error("no %s: %s", name, err->message);
    }
    ts = json_object_object_get(ev, "timestamp");
    return json_object_get_int64(json_object_object_get(ts, "seconds")) *
               G_USEC_PER_SEC +
           json_object_get_int64(json_object_object_get(ts, "microseconds"));
}

/* The guest RAM memfd of `pid`, opened read-write; its inode. */
static int
open_ram(GPid pid, ino_t *ino)
{
    g_autofree char *dir = g_strdup_printf("/proc/%d/fd", pid);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autofree char *link = g_file_read_link(path, NULL);
        struct stat st;
        int fd;

        if (!link || !g_str_has_prefix(link, "/memfd:godwit-ram") ||
            (fd = open(path, O_RDWR | O_CLOEXEC)) < 0) {
            continue;
        }
        if (fstat(fd, &st) == 0 && (uint64_t)st.st_size == ram_bytes) {
            *ino = st.st_ino;
            return fd;
        }
        close(fd);
    }
    g_error("no guest RAM memfd in %d", pid);
}

/* Random bytes from `seed` into the memfd, or (fill false) just its
 * XXH3. */
static uint64_t
ram_hash(int fd, bool fill, uint64_t seed)
{
    uint64_t *p =
        mmap(NULL, ram_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    uint64_t h;

    g_assert_true(p != MAP_FAILED);
    for (uint64_t i = 0; fill && i < ram_bytes / 8; i++) {
        p[i] = bench_splitmix64(&seed);
    }
    h = XXH3_64bits(p, ram_bytes);
    munmap(p, ram_bytes);
    return h;
}

typedef struct {
    double total_ms, downtime_ms;
    double src_downtime_ms; /* query-migrate's: the pause began to COMMIT */
} Sample;

static Sample
run_once(const char *dir, bool cpr, uint64_t seed)
{
    g_autofree char *ssock = g_build_filename(dir, "src.qmp", NULL);
    g_autofree char *dsock = g_build_filename(dir, "dst.qmp", NULL);
    g_autofree char *path = g_build_filename(dir, "mig.sock", NULL);
    g_autofree char *args = g_strdup_printf("{\"uri\": \"unix:%s\"}", path);
    const char *params = cpr ? "{\"mode\": \"cpr-transfer\"}"
                             : "{\"max-bandwidth\": 1000000000000}";
    const char *events = "{\"capabilities\": [{\"capability\": \"events\", "
                         "\"state\": true}]}";
    Proc src = {0}, dst = {0};
    ino_t sino, dino;
    uint64_t want;
    Sample r;
    gint64 t0;
    int fd;

    spawn(&src, dir, ssock, NULL);
    spawn(&dst, dir, dsock, "defer");
    fd = open_ram(src.pid, &sino);
    want = kvm ? 0 : ram_hash(fd, true, seed); /* a guest writes its own */
    close(fd);
    for (Proc *p = &src; p; p = p == &src ? &dst : NULL) {
        proc_qmp_void(p, "migrate-set-capabilities", events);
        proc_qmp_void(p, "migrate-set-parameters", params);
    }
    proc_qmp_void(&dst, "migrate-incoming", args);
    t0 = g_get_monotonic_time();
    proc_qmp_void(&src, "migrate", args);
    proc_wait_migration(&dst, "completed");
    r.total_ms = (g_get_monotonic_time() - t0) / 1e3;
    r.downtime_ms = (event_us(&dst, "RESUME") - event_us(&src, "STOP")) / 1e3;
    proc_wait_migration(&src, "completed");
    g_autoptr(json_object) q = proc_qmp(&src, "query-migrate", NULL);
    json_object *ret = json_object_object_get(q, "return");
    r.src_downtime_ms =
        (double)json_object_get_int64(json_object_object_get(ret, "downtime"));

    fd = open_ram(dst.pid, &dino);
    if ((!kvm && ram_hash(fd, false, 0) != want) || (cpr && dino != sino)) {
        g_error("destination RAM is not the source's");
    }
    close(fd);
    printf("  %s: total %.1f ms, STOP to RESUME %.2f ms, source's downtime "
           "%.0f ms%s%s\n",
           cpr ? "cpr-transfer" : "normal", r.total_ms, r.downtime_ms,
           r.src_downtime_ms, kvm ? "" : ", RAM equal",
           cpr ? ", the same memfd" : "");
    proc_reap(&src);
    proc_reap(&dst);
    return r;
}

static Sample
median(const char *dir, bool cpr, int runs)
{
    g_autofree double *t = g_new(double, runs);
    g_autofree double *d = g_new(double, runs);
    g_autofree double *sd = g_new(double, runs);

    for (int i = 0; i < runs; i++) {
        Sample s = run_once(dir, cpr, 1000 + (uint64_t)i);
        t[i] = s.total_ms;
        d[i] = s.downtime_ms;
        sd[i] = s.src_downtime_ms;
    }
    return (Sample){bench_median(t, runs), bench_median(d, runs),
                    bench_median(sd, runs)};
}

int
main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 10;
    g_autofree char *dir = g_dir_make_tmp("gw-cpr-XXXXXX", NULL);
    Sample c, n;

    ram_bytes = (argc > 2 ? strtoull(argv[2], NULL, 10) : 1024) << 20;
    kvm = argc > 3 && g_str_equal(argv[3], "kvm");
    if (kvm && access("/dev/kvm", R_OK | W_OK) != 0) {
        printf("no /dev/kvm: nothing measured\n");
        return 0;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    printf("%" G_GUINT64_FORMAT " MiB of %s, unix socket, %d runs\n",
           ram_bytes >> 20,
           kvm ? "the test guest's RAM (KVM, 2 vCPUs, dirty rounds=0)"
               : "random RAM (qtest)",
           runs);
    c = median(dir, true, runs);
    n = median(dir, false, runs);
    printf("\n| mode | total | STOP to RESUME | source's downtime |\n"
           "|---|---|---|---|\n"
           "| cpr-transfer | %.1f ms | %.2f ms | %.0f ms |\n"
           "| normal | %.1f ms | %.2f ms | %.0f ms |\n",
           c.total_ms, c.downtime_ms, c.src_downtime_ms, n.total_ms,
           n.downtime_ms, n.src_downtime_ms);
    g_rmdir(dir);
    return 0;
}
