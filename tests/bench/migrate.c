/*
 * Migration of a paused VM over loopback TCP, godwit vs QEMU, same run:
 * 1 GiB (or MiB from argv) of random RAM and of never-touched RAM, over
 * a single stream and with multifd x4 (both VMMs: the capability and
 * multifd-channels, set on both sides, the destination deferred).
 *
 *   migrate [RUNS=5] [MIB=1024] [godwit|zstd|warm]...
 *   (godwit: skip QEMU; zstd: only the zstd runs below; warm: see
 *   warm_free_memory)
 *
 * Then multifd x4 with multifd-compression zstd (level 1, the default),
 * on both VMMs: random RAM (which zstd cannot shrink: the cost of
 * trying) and half-compressible RAM (each page's first half random, the
 * second zero: no zero page, about 2:1 for zstd).
 *
 * godwit runs --qtest on both sides (no vCPU: the VM is paused anyway),
 * QEMU 7.2 `-accel tcg -S -machine pc` with its RAM in a memory backend
 * named ram0.  Random RAM is written by this process into the source's
 * guest RAM, a shared memfd on both VMMs (godwit's own, QEMU's
 * memory-backend-memfd), through /proc/PID/fd: no test hook in either
 * VMM, the same bytes for both (splitmix64 from the run's seed).  Zero
 * RAM is RAM nobody wrote: godwit's memfd as created, QEMU's
 * memory-backend-ram (anonymous memory, its fastest case).
 *
 * Timed: from sending `migrate` to the destination's MIGRATION
 * "completed" event (the state loaded there; godwit's source completes
 * only after the destination confirmed, QEMU's without return-path as
 * soon as it sent the last byte).  Checked after each run: the
 * destination's RAM hashes (XXH3, read with pread, which never
 * allocates a hole) to the source's; the destination's allocated RAM is
 * printed, showing whether holes stayed holes.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <xxhash.h>
#include <glib/gstdio.h>
#include <godwit/qmp-client.h>
#include <godwit/util.h>
#include "../e2e/spawn-util.h"
#include "bench-proc.h"

#define T BENCH_WAIT_MS

typedef enum { RAM_RANDOM, RAM_ZERO, RAM_HALF } RamKind;

static uint64_t ram_bytes;
static bool warm;      /* back the host's free memory before each migration */
static char *qemu_bin; /* qemu-system-x86_64 in PATH, or NULL */

static int
free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    g_assert_cmpint(bind(fd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
    g_assert_cmpint(getsockname(fd, (struct sockaddr *)&a, &len), ==, 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Guest RAM of a VMM: an fd and where RAM starts in it. */
typedef struct {
    int fd;
    off_t base;
    bool memfd; /* else /proc/PID/mem over anonymous RAM */
} Ram;

/* QEMU's memory-backend-ram: the anonymous rw-p mapping of RAM's size. */
static bool
find_anon_ram(GPid pid, Ram *ram)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/maps", pid);
    g_autofree char *maps = NULL;
    g_auto(GStrv) lines = NULL;

    if (!g_file_get_contents(path, &maps, NULL, NULL)) {
        return false;
    }
    lines = g_strsplit(maps, "\n", -1);
    for (char **l = lines; *l; l++) {
        unsigned long a, b, ino;
        char perms[5];
        if (sscanf(*l, "%lx-%lx %4s %*s %*s %lu", &a, &b, perms, &ino) == 4 &&
            b - a == ram_bytes && g_str_equal(perms, "rw-p") && ino == 0) {
            g_autofree char *mem = g_strdup_printf("/proc/%d/mem", pid);
            ram->fd = open(mem, O_RDONLY | O_CLOEXEC);
            ram->base = (off_t)a;
            ram->memfd = false;
            return ram->fd >= 0;
        }
    }
    return false;
}

/* The guest RAM memfd of `pid` (the one of ram_bytes), or else its
 * anonymous RAM. */
static Ram
open_ram(GPid pid)
{
    g_autofree char *dir = g_strdup_printf("/proc/%d/fd", pid);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;
    Ram ram = {-1, 0, true};

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autofree char *link = g_file_read_link(path, NULL);
        struct stat st;
        int fd;

        if (!link || !g_str_has_prefix(link, "/memfd:") ||
            (fd = open(path, O_RDWR | O_CLOEXEC)) < 0) {
            continue;
        }
        if (fstat(fd, &st) == 0 && (uint64_t)st.st_size == ram_bytes) {
            ram.fd = fd;
            return ram;
        }
        close(fd);
    }
    if (!find_anon_ram(pid, &ram)) {
        g_error("no guest RAM of %" G_GUINT64_FORMAT " bytes in %d", ram_bytes,
                pid);
    }
    return ram;
}

/* Random bytes from `seed` into the memfd; returns their XXH3. */
static uint64_t
fill_random(int fd, uint64_t seed)
{
    uint64_t *p =
        mmap(NULL, ram_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    uint64_t h;

    g_assert_true(p != MAP_FAILED);
    for (uint64_t i = 0; i < ram_bytes / 8; i++) {
        p[i] = bench_splitmix64(&seed);
    }
    h = XXH3_64bits(p, ram_bytes);
    munmap(p, ram_bytes);
    return h;
}

/* Half-compressible: each page's first 2 KiB random, the rest zero. */
static uint64_t
fill_half(int fd, uint64_t seed)
{
    uint64_t *p =
        mmap(NULL, ram_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    uint64_t h;

    g_assert_true(p != MAP_FAILED);
    for (uint64_t i = 0; i < ram_bytes / 8; i++) {
        p[i] = (i % 512) < 256 ? bench_splitmix64(&seed) : 0;
    }
    h = XXH3_64bits(p, ram_bytes);
    munmap(p, ram_bytes);
    return h;
}

/* XXH3 of guest RAM, by pread (holes read as zero and stay holes;
 * untouched anonymous memory reads as the zero page). */
static uint64_t
hash_ram(Ram ram)
{
    const size_t chunk = 4 << 20;
    g_autofree uint8_t *buf = g_malloc(chunk);
    XXH3_state_t *st = XXH3_createState();
    uint64_t h;

    XXH3_64bits_reset(st);
    for (uint64_t off = 0; off < ram_bytes; off += chunk) {
        size_t n = MIN(chunk, ram_bytes - off);
        g_assert_cmpint(pread(ram.fd, buf, n, ram.base + (off_t)off), ==,
                        (ssize_t)n);
        XXH3_64bits_update(st, buf, n);
    }
    h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}

static uint64_t
hash_zero(void)
{
    const size_t chunk = 4 << 20;
    g_autofree uint8_t *buf = g_malloc0(chunk);
    XXH3_state_t *st = XXH3_createState();
    uint64_t h;

    XXH3_64bits_reset(st);
    for (uint64_t off = 0; off < ram_bytes; off += chunk) {
        XXH3_64bits_update(st, buf, MIN(chunk, ram_bytes - off));
    }
    h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}

/* MiB of RAM the memfd holds (-1: anonymous RAM, not known here). */
static int64_t
allocated_mib(Ram ram)
{
    struct stat st;

    if (!ram.memfd) {
        return -1;
    }
    g_assert_cmpint(fstat(ram.fd, &st), ==, 0);
    return (int64_t)st.st_blocks * 512 >> 20;
}

/* utime + stime of the whole process, threads that ended included. */
static double
cpu_secs(GPid pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/stat", pid);
    g_autofree char *text = NULL;
    unsigned long ut, st;
    char *p;

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    p = strrchr(text, ')'); /* the name may hold spaces */
    g_assert_nonnull(p);
    g_assert_cmpint(sscanf(p + 2,
                           "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
                           "%*u %lu %lu",
                           &ut, &st),
                    ==, 2);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

typedef struct {
    const char *name;
    /* Fills in argv for the source or (incoming != NULL) destination. */
    char **(*argv)(const char *dir, const char *sock, const char *incoming,
                   RamKind kind);
    const char *pause; /* the command that pauses the source, or NULL */
} Vmm;

static char **
godwit_argv(const char *dir, const char *sock, const char *incoming,
            RamKind kind)
{
    const char *bin = g_getenv("GODWIT_BIN");
    GPtrArray *a = g_ptr_array_new();

    (void)kind;
    g_ptr_array_add(a, g_strdup(bin ? bin : "./build/godwit"));
    g_ptr_array_add(a, g_strdup("--qtest"));
    g_ptr_array_add(a, g_strdup_printf("%s.qtest", sock));
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
    (void)dir;
    g_ptr_array_add(a, NULL);
    return (char **)g_ptr_array_free(a, FALSE);
}

static char **
qemu_argv(const char *dir, const char *sock, const char *incoming, RamKind kind)
{
    GPtrArray *a = g_ptr_array_new();
    /* Zero RAM in QEMU's fastest form, anonymous memory on both sides
     * (a hole of a memfd would be allocated by QEMU's zero check). */
    const char *backend = kind != RAM_ZERO ? "memory-backend-memfd,share=on"
                                           : "memory-backend-ram";

    (void)dir;
    for (const char *const *s =
             (const char *const[]){qemu_bin, "-accel", "tcg", "-S",
                                   "-nodefaults", "-display", "none",
                                   "-machine", "pc,memory-backend=ram0", NULL};
         *s; s++) {
        g_ptr_array_add(a, g_strdup(*s));
    }
    g_ptr_array_add(a, g_strdup("-m"));
    g_ptr_array_add(a, g_strdup_printf("%" G_GUINT64_FORMAT, ram_bytes >> 20));
    g_ptr_array_add(a, g_strdup("-object"));
    g_ptr_array_add(a, g_strdup_printf("%s,id=ram0,size=%" G_GUINT64_FORMAT "M",
                                       backend, ram_bytes >> 20));
    g_ptr_array_add(a, g_strdup("-qmp"));
    g_ptr_array_add(a, g_strdup_printf("unix:%s,server=on,wait=off", sock));
    if (incoming) {
        g_ptr_array_add(a, g_strdup("-incoming"));
        g_ptr_array_add(a, g_strdup(incoming));
    }
    g_ptr_array_add(a, NULL);
    return (char **)g_ptr_array_free(a, FALSE);
}

/* events; multifd with `channels` (0: a single stream), with zstd. */
static void
prepare_side(Proc *p, unsigned channels, bool zstd)
{
    g_autofree char *caps = g_strdup_printf(
        "{\"capabilities\": [{\"capability\": \"events\", \"state\": true},"
        " {\"capability\": \"multifd\", \"state\": %s}]}",
        channels ? "true" : "false");
    /* Both default to 128 MiB/s; the link is what is measured. */
    g_autofree char *params = g_strdup_printf(
        "{\"max-bandwidth\": 1000000000000, \"multifd-channels\": %u, "
        "\"multifd-compression\": \"%s\"}",
        channels ? channels : 2, zstd ? "zstd" : "none");

    proc_qmp_void(p, "migrate-set-capabilities", caps);
    proc_qmp_void(p, "migrate-set-parameters", params);
}

typedef struct {
    double wall, src_cpu, dst_cpu; /* seconds */
} Sample;

static void
expect_ram(const Vmm *v, Proc *src, RamKind kind, uint64_t seed, uint64_t *want)
{
    Ram ram;

    if (kind != RAM_ZERO) {
        ram = open_ram(src->pid);
        g_assert_true(ram.memfd);
        *want = kind == RAM_RANDOM ? fill_random(ram.fd, seed)
                                   : fill_half(ram.fd, seed);
    } else if (v->pause) {
        ram = open_ram(src->pid); /* godwit wrote its ACPI tables */
        *want = hash_ram(ram);
    } else {
        *want = hash_zero(); /* QEMU's pc RAM before the firmware ran */
        return;
    }
    close(ram.fd);
}

/*
 * This machine is a VM whose memory its host backs on first touch and
 * takes back when the guest kernel reports it free (virtio-balloon free
 * page reporting): a destination's first write to each new page then
 * costs a fault in the host, ~4 µs, which a bare-metal host does not
 * pay.  `warm` touches and frees that much memory just before each
 * migration, so the pages both VMMs' destinations get are backed.
 */
static void
warm_free_memory(uint64_t bytes)
{
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

    g_assert_true(m != MAP_FAILED);
    munmap(m, bytes);
}

/* One migration, timed, the RAM checked. */
static const char *const kinds[] = {"random", "zero", "half"};

static Sample
run_once(const Vmm *v, const char *dir, RamKind kind, unsigned channels,
         bool zstd, uint64_t seed)
{
    g_autofree char *ssock = g_build_filename(dir, "src.qmp", NULL);
    g_autofree char *dsock = g_build_filename(dir, "dst.qmp", NULL);
    g_autofree char *uri = g_strdup_printf("tcp:127.0.0.1:%d", free_port());
    g_autofree char *args = g_strdup_printf("{\"uri\": \"%s\"}", uri);
    g_auto(GStrv) sargv = v->argv(dir, ssock, NULL, kind);
    /* deferred: multifd is set on the destination before it listens */
    g_auto(GStrv) dargv = v->argv(dir, dsock, "defer", kind);
    g_auto(GStrv) env = godwit_test_env(dir);
    Proc src = {0}, dst = {0};
    uint64_t want, got;
    double scpu, dcpu;
    Sample r;
    Ram ram;
    gint64 t0;

    proc_spawn(&src, sargv, env, ssock);
    proc_spawn(&dst, dargv, env, dsock);
    if (v->pause) {
        proc_qmp_void(&src, v->pause, NULL);
    }
    expect_ram(v, &src, kind, seed, &want);
    prepare_side(&src, channels, zstd);
    prepare_side(&dst, channels, zstd);
    proc_qmp_void(&dst, "migrate-incoming", args);
    if (warm) {
        warm_free_memory(ram_bytes + (ram_bytes >> 2));
    }
    scpu = cpu_secs(src.pid);
    dcpu = cpu_secs(dst.pid);
    t0 = g_get_monotonic_time();
    proc_qmp_void(&src, "migrate", args);
    proc_wait_migration(&dst, "completed");
    r.wall = (g_get_monotonic_time() - t0) / 1e6;
    proc_wait_migration(&src, "completed");
    r.src_cpu = cpu_secs(src.pid) - scpu;
    r.dst_cpu = cpu_secs(dst.pid) - dcpu;

    ram = open_ram(dst.pid);
    int64_t alloc = allocated_mib(ram);
    got = hash_ram(ram);
    close(ram.fd);
    if (got != want) {
        g_error("%s: destination RAM differs from the source's", v->name);
    }
    char held[32] = "(anonymous)";
    if (alloc >= 0) {
        g_snprintf(held, sizeof(held), "%" G_GINT64_FORMAT, alloc);
    }
    g_autoptr(json_object) info = proc_qmp(&src, "query-migrate", NULL);
    json_object *ram_info =
        json_object_object_get(json_object_object_get(info, "return"), "ram");
    int64_t wire =
        json_object_get_int64(json_object_object_get(ram_info, "transferred"));
    printf("  %s %s, %u channels%s: %.3f s, CPU source %.2f s destination "
           "%.2f s, %" G_GINT64_FORMAT " MiB on the wire, destination holds "
           "%s MiB, RAM equal\n",
           v->name, kinds[kind], channels, zstd ? " zstd" : "", r.wall,
           r.src_cpu, r.dst_cpu, wire >> 20, held);
    proc_reap(&src);
    proc_reap(&dst);
    return r;
}

/* Medians of `runs` migrations, each of wall and CPU time. */
static Sample
median(const Vmm *v, const char *dir, RamKind kind, unsigned channels,
       bool zstd, int runs)
{
    g_autofree double *w = g_new(double, runs);
    g_autofree double *sc = g_new(double, runs);
    g_autofree double *dc = g_new(double, runs);

    for (int i = 0; i < runs; i++) {
        Sample s = run_once(v, dir, kind, channels, zstd, 1000 + (uint64_t)i);
        w[i] = s.wall;
        sc[i] = s.src_cpu;
        dc[i] = s.dst_cpu;
    }
    return (Sample){bench_median(w, runs), bench_median(sc, runs),
                    bench_median(dc, runs)};
}

static const unsigned modes[] = {0, 4}; /* a single stream, multifd x4 */

static void
print_row(const char *ram, const char *streams, int v, Sample x, Sample qemu)
{
    if (x.wall == 0) {
        return;
    }
    printf("| %s | %s | %s | %.3f s | %.2f s | %.2f s | ", ram, streams,
           v ? "QEMU 7.2" : "godwit", x.wall, x.src_cpu, x.dst_cpu);
    if (v == 0 && qemu.wall > 0) {
        printf("%.3f |\n", x.wall / qemu.wall);
    } else {
        printf("|\n");
    }
}

int
main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    g_autofree char *dir = g_dir_make_tmp("gw-migrate-XXXXXX", NULL);
    const Vmm godwit = {"godwit", godwit_argv, "stop"};
    const Vmm qemu_vmm = {"qemu", qemu_argv, NULL}; /* -S: never ran */
    bool only_godwit = false, only_zstd = false;
    Sample med[2][2][2] = {{{{0}}}}; /* [mode][kind][vmm] */
    Sample zmed[2][2] = {{{0}}};     /* zstd x4: [random, half][vmm] */

    for (int i = 3; i < argc; i++) {
        only_godwit |= g_str_equal(argv[i], "godwit");
        only_zstd |= g_str_equal(argv[i], "zstd");
        warm |= g_str_equal(argv[i], "warm");
    }
    qemu_bin = g_find_program_in_path("qemu-system-x86_64");
    ram_bytes = (argc > 2 ? strtoull(argv[2], NULL, 10) : 1024) << 20;
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    printf("paused VM, %" G_GUINT64_FORMAT " MiB, tcp loopback, %d runs%s\n",
           ram_bytes >> 20, runs, warm ? ", free memory warmed" : "");
    for (int m = 0; m < 2 && !only_zstd; m++) {
        for (int k = 0; k < 2; k++) {
            med[m][k][0] =
                median(&godwit, dir, (RamKind)k, modes[m], false, runs);
            if (qemu_bin && !only_godwit) {
                med[m][k][1] =
                    median(&qemu_vmm, dir, (RamKind)k, modes[m], false, runs);
            }
        }
    }
    for (int k = 0; k < 2; k++) {
        RamKind kind = k ? RAM_HALF : RAM_RANDOM;
        zmed[k][0] = median(&godwit, dir, kind, 4, true, runs);
        if (qemu_bin && !only_godwit) {
            zmed[k][1] = median(&qemu_vmm, dir, kind, 4, true, runs);
        }
    }
    printf("\n| RAM | streams | VMM | time (median) | CPU source | "
           "CPU destination | godwit/QEMU time |\n"
           "|---|---|---|---|---|---|---|\n");
    for (int k = 0; k < 2; k++) {
        for (int m = 0; m < 2; m++) {
            for (int v = 0; v < 2; v++) {
                print_row(kinds[k], modes[m] ? "multifd x4" : "1", v,
                          med[m][k][v], med[m][k][1]);
            }
        }
    }
    for (int k = 0; k < 2; k++) {
        for (int v = 0; v < 2; v++) {
            print_row(k ? "half" : "random", "multifd x4 zstd", v, zmed[k][v],
                      zmed[k][1]);
        }
    }
    g_rmdir(dir);
    return 0;
}
