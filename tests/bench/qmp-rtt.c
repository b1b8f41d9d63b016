/*
 * QMP latency, godwit vs QEMU, same client, same run:
 *   - round trip of query-status (N runs: median, p99)
 *   - process start → greeting read (M starts: median)
 * QEMU runs as `-machine none -accel kvm -accel tcg` (KVM when usable): the
 * monitor is what is measured, not the guest.
 *
 *   qmp-rtt [N=2000] [M=10]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <glib/gstdio.h>
#include <godwit/qmp-client.h>

#define T 20000

typedef struct {
    const char *name;
    const char *const *argv; /* @SOCK@ replaced */
} Vmm;

static int
cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static char **
expand(const char *const *argv, const char *sock)
{
    GPtrArray *out = g_ptr_array_new();

    for (; *argv; argv++) {
        g_autoptr(GString) s = g_string_new(*argv);
        g_string_replace(s, "@SOCK@", sock, 0);
        g_ptr_array_add(out, g_string_free(g_steal_pointer(&s), FALSE));
    }
    g_ptr_array_add(out, NULL);
    return (char **)g_ptr_array_free(out, FALSE);
}

/* Starts the VMM; returns start → greeting in µs and the connection. */
static double
start(const Vmm *v, const char *sock, GPid *pid, GwQmpConn **conn)
{
    g_auto(GStrv) argv = expand(v->argv, sock);
    gint64 t0 = g_get_monotonic_time();
    g_autoptr(GError) err = NULL;

    g_unlink(sock);
    if (!g_spawn_async(NULL, argv, NULL,
                       G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL |
                           G_SPAWN_STDERR_TO_DEV_NULL,
                       NULL, NULL, pid, &err) ||
        !(*conn = gw_qmp_conn_new(sock, T, &err))) {
        g_error("%s: %s", v->name, err->message);
    }
    return (double)(g_get_monotonic_time() - t0);
}

static void
stop(GPid pid, GwQmpConn *c)
{
    gw_qmp_conn_free(c);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    g_spawn_close_pid(pid);
}

static void
measure(const Vmm *v, const char *sock, int n, int m)
{
    g_autofree double *rtt = g_new(double, n);
    g_autofree double *boot = g_new(double, m);
    GwQmpConn *c;
    GPid pid;

    for (int i = 0; i < m; i++) {
        boot[i] = start(v, sock, &pid, &c);
        stop(pid, c);
    }
    start(v, sock, &pid, &c);
    if (!gw_qmp_conn_negotiate(c, T, NULL)) {
        g_error("%s: negotiation failed", v->name);
    }
    for (int i = 0; i < n; i++) {
        gint64 t0 = g_get_monotonic_time();
        json_object *r =
            gw_qmp_conn_execute(c, "query-status", NULL, -1, T, NULL);
        rtt[i] = (double)(g_get_monotonic_time() - t0);
        if (!r) {
            g_error("%s: query-status failed", v->name);
        }
        json_object_put(r);
    }
    stop(pid, c);
    qsort(rtt, n, sizeof(double), cmp);
    qsort(boot, m, sizeof(double), cmp);
    printf("%-8s query-status rtt median %7.1f us  p99 %7.1f us   "
           "start->greeting median %8.1f us\n",
           v->name, rtt[n / 2], rtt[n * 99 / 100], boot[m / 2]);
}

int
main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    int m = argc > 2 ? atoi(argv[2]) : 10;
    g_autofree char *dir = g_dir_make_tmp("godwit-bench-XXXXXX", NULL);
    g_autofree char *sock = g_build_filename(dir, "qmp.sock", NULL);
    g_autofree char *qemu = g_find_program_in_path("qemu-system-x86_64");
    const char *godwit = g_getenv("GODWIT_BIN");
    const char *gargv[] = {godwit ? godwit : "./build/godwit", "--qmp",
                           "@SOCK@", NULL};
    const char *qargv[] = {
        qemu,       "-machine", "none", "-accel",
        "kvm",      "-accel",   "tcg",  "-nodefaults",
        "-display", "none",     "-qmp", "unix:@SOCK@,server=on,wait=off",
        NULL};
    const Vmm vmms[] = {{"godwit", gargv}, {"qemu", qargv}};

    setvbuf(stdout, NULL, _IOLBF, 0);
    g_setenv("GODWIT_RUNTIME_DIR", dir, TRUE);
    for (size_t i = 0; i < G_N_ELEMENTS(vmms); i++) {
        if (!vmms[i].argv[0]) {
            printf("%-8s not installed\n", vmms[i].name);
            continue;
        }
        measure(&vmms[i], sock, n, m);
    }
    g_unlink(sock);
    g_rmdir(dir);
    return 0;
}
