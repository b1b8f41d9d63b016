/* bench-proc: see bench-proc.h. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <glib/gstdio.h>
#include <godwit/util.h>
#include "../e2e/spawn-util.h"
#include "bench-proc.h"

void
proc_spawn(Proc *p, char **argv, char **env, const char *qmp_sock)
{
    g_autoptr(GError) err = NULL;

    g_unlink(qmp_sock);
    /* QEMU says "terminating on signal 15" when reaped. */
    GSpawnFlags quiet =
        strstr(argv[0], "qemu") ? G_SPAWN_STDERR_TO_DEV_NULL : 0;

    if (!g_spawn_async(NULL, argv, env, G_SPAWN_DO_NOT_REAP_CHILD | quiet,
                       die_with_parent, NULL, &p->pid, &err) ||
        !(p->qmp = gw_qmp_conn_new(qmp_sock, BENCH_WAIT_MS, &err)) ||
        !gw_qmp_conn_negotiate(p->qmp, BENCH_WAIT_MS, &err)) {
        g_error("%s: %s", argv[0], err->message);
    }
}

void
proc_reap(Proc *p)
{
    int status;

    kill(p->pid, SIGTERM);
    waitpid(p->pid, &status, 0);
    g_spawn_close_pid(p->pid);
    g_clear_pointer(&p->qmp, gw_qmp_conn_free);
}

json_object *
proc_qmp(Proc *p, const char *cmd, const char *args)
{
    g_autoptr(GError) err = NULL;
    json_object *a = args ? json_tokener_parse(args) : NULL;
    json_object *r =
        gw_qmp_conn_execute(p->qmp, cmd, a, -1, BENCH_WAIT_MS, &err);

    if (!r || json_object_object_get_ex(r, "error", NULL)) {
        g_error("%s: %s", cmd,
                r ? json_object_to_json_string(r) : err->message);
    }
    return r;
}

void
proc_qmp_void(Proc *p, const char *cmd, const char *args)
{
    json_object_put(proc_qmp(p, cmd, args));
}

void
proc_wait_migration(Proc *p, const char *want)
{
    for (;;) {
        g_autoptr(GError) err = NULL;
        g_autoptr(json_object) ev =
            gw_qmp_conn_wait_event(p->qmp, "MIGRATION", BENCH_WAIT_MS, &err);
        if (!ev) {
            g_error("no MIGRATION %s: %s", want, err->message);
        }
        json_object *data = json_object_object_get(ev, "data");
        const char *s =
            json_object_get_string(json_object_object_get(data, "status"));
        if (g_str_equal(s, want)) {
            return;
        }
        if (g_str_equal(s, "failed")) {
            g_autoptr(json_object) r = proc_qmp(p, "query-migrate", NULL);
            g_error("migration failed: %s", json_object_to_json_string(r));
        }
    }
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double
bench_median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

uint64_t
bench_splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
