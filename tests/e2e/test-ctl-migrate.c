/*
 * `godwit-ctl migrate` between two real godwit processes under --qtest,
 * its stdout a pipe: the plain progress lines, the last line with the
 * downtime and total time, exit 0 once completed; exit 1 with the
 * destination's reason when it refuses; SIGINT cancels and waits for
 * `cancelled`.  The migration itself is tested in test-migration.c;
 * here the RAM page checked on the destination only proves that the
 * tool really migrated.
 */
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <godwit/util.h>
#include "qtest-vm.h"
#include "spawn-util.h"

#define T         GW_TEST_VM_WAIT_MS
#define PAGE      4096
#define PAGE_ADDR 0x1000000ull

typedef struct {
    int status; /* exit status, -1 if it did not exit */
    char *out, *err;
} CtlRun;

static void
ctl_run_clear(CtlRun *r)
{
    g_free(r->out);
    g_free(r->err);
}

/* godwit-ctl --qmp SOCK ARGS..., bounded by timeout(1). */
static void
ctl(GwTestVm *vm, const char *const *args, CtlRun *r)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GError) err = NULL;
    int status = -1;

    g_ptr_array_add(argv, "timeout");
    g_ptr_array_add(argv, "60");
    g_ptr_array_add(argv, (char *)g_getenv("GODWIT_CTL"));
    g_ptr_array_add(argv, "--qmp");
    g_ptr_array_add(argv, vm->qmp_sock);
    for (size_t i = 0; args[i]; i++) {
        g_ptr_array_add(argv, (char *)args[i]);
    }
    g_ptr_array_add(argv, NULL);
    g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, NULL,
                               G_SPAWN_SEARCH_PATH, NULL, NULL, &r->out,
                               &r->err, &status, &err));
    g_assert_no_error(err);
    r->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    g_test_message("godwit-ctl: %d\n%s%s", r->status, r->out, r->err);
}

static char *
run_state(GwTestVm *vm)
{
    g_autoptr(json_object) r = gw_test_vm_qmp_ok(vm, "query-status", NULL);

    return g_strdup(
        json_object_get_string(json_object_object_get(r, "status")));
}

static json_object *
query_migrate(GwTestVm *vm)
{
    return gw_test_vm_qmp_ok(vm, "query-migrate", NULL);
}

/* Waits (bounded) until query-migrate shows `want`. */
static void
poll_status(GwTestVm *vm, const char *want)
{
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;

    for (;;) {
        g_autoptr(json_object) r = query_migrate(vm);
        const char *s =
            json_object_get_string(json_object_object_get(r, "status"));
        if (s && g_str_equal(s, want)) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(5 * 1000); /* polling query-migrate, bounded */
    }
}

/* Waits (bounded) for `pid` to exit; its wait status. */
static int
wait_exit(GPid pid)
{
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;
    int status = 0;

    while (waitpid(pid, &status, WNOHANG) == 0) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10 * 1000); /* polling for the exit, bounded */
    }
    return status;
}

/* A destination that must end by itself with status 1 (it never ran). */
static void
reap_failed(GwTestVm *vm)
{
    int status = wait_exit(vm->pid);

    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 1);
    gw_test_vm_release(vm);
}

static void
start_dst(GwTestVm *vm, const char *incoming, const char *memory)
{
    const char *args[] = {"--incoming", incoming, memory ? "--memory" : NULL,
                          memory, NULL};

    gw_test_vm_start(vm, args);
}

/* What is left to read on `fd` (a pipe whose writer exited); closes it. */
static char *
read_all(int fd)
{
    g_autoptr(GIOChannel) ch = g_io_channel_unix_new(fd);
    g_autoptr(GError) err = NULL;
    char *text = NULL;
    gsize len;

    g_io_channel_set_close_on_unref(ch, TRUE);
    g_assert_cmpint(g_io_channel_read_to_end(ch, &text, &len, &err), ==,
                    G_IO_STATUS_NORMAL);
    g_assert_no_error(err);
    return text;
}

/* The first line written to fd (bounded): the tool has begun reporting. */
static GString *
read_first_line(int fd)
{
    GString *line = g_string_new(NULL);
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;
    char c = 0;

    while (c != '\n') {
        struct pollfd p = {fd, POLLIN, 0};
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        if (poll(&p, 1, 100) == 1) {
            g_assert_cmpint(read(fd, &c, 1), ==, 1);
            g_string_append_c(line, c);
        }
    }
    return line;
}

static char *
mig_uri(GwTestVm *dst)
{
    return g_strdup_printf("unix:%s/mig.sock", dst->dir);
}

static bool
is_progress_line(const char *line)
{
    return g_regex_match_simple(
        "^(setup|active|(active: pass [0-9]+|device: [0-9]+ pass(es)? done), "
        "[0-9.]+ [KMG]?i?B sent, [0-9.]+ [KMG]?i?B/s, [0-9.]+ [KMG]?i?B of "
        "64.0 MiB left, downtime ~([0-9]+ ms|\\?))$",
        line, 0, 0);
}

static void
test_completed(void)
{
    GwTestVm src, dst;
    g_autofree char *uri = NULL, *s = NULL, *d = NULL;
    g_autoptr(json_object) params = NULL;
    g_autoptr(json_object) info = NULL;
    g_auto(GStrv) lines = NULL;
    g_autofree char *last = NULL;
    uint8_t page[PAGE], back[PAGE];
    CtlRun in = {0}, r = {0};
    unsigned active = 0, n;

    gw_test_vm_start(&src, NULL);
    start_dst(&dst, "defer", NULL);
    uri = mig_uri(&dst);
    ctl(&dst, (const char *[]){"migrate-incoming", uri, NULL}, &in);
    g_assert_cmpint(in.status, ==, 0);
    for (unsigned k = 0; k < PAGE; k++) {
        page[k] = (uint8_t)(k * 7 + 3);
    }
    gw_qt_memwrite(src.qt, PAGE_ADDR, page, PAGE);
    /* RAM nobody wrote costs nothing to send (ZERO_RANGE): 128 KiB of it
     * written makes ~130 KiB of stream at 50 kB/s, over two seconds of
     * progress, so a line that the time brought, not a change. */
    gw_qt_memset(src.qt, 0x2000000, 0x5a, 128 << 10);
    ctl(&src,
        (const char *[]){"migrate", "--max-bandwidth", "50000",
                         "--downtime-limit", "250", uri, NULL},
        &r);
    g_assert_cmpint(r.status, ==, 0);
    g_assert_cmpstr(r.err, ==, "");
    /* A pipe gets whole lines, no terminal control. */
    g_assert_null(strchr(r.out, '\r'));
    g_assert_null(strchr(r.out, '\033'));
    g_assert_true(g_str_has_suffix(r.out, "\n"));
    lines = g_strsplit(r.out, "\n", -1);
    n = g_strv_length(lines) - 1; /* the empty string after the last \n */
    g_assert_cmpuint(n, >=, 3);
    for (unsigned i = 0; i + 1 < n; i++) {
        g_assert_true(is_progress_line(lines[i]));
        active += g_str_has_prefix(lines[i], "active: pass 1, ");
    }
    g_assert_cmpuint(active, >=, 2);
    last = g_strdup(lines[n - 1]);
    g_assert_true(g_regex_match_simple(
        "^completed: downtime [0-9]+ ms, total time [0-9]+ ms, [0-9.]+ KiB "
        "sent$",
        last, 0, 0));
    /* The figures are query-migrate's. */
    info = query_migrate(&src);
    g_autofree char *tail = g_strdup_printf(
        "total time %" G_GINT64_FORMAT " ms",
        json_object_get_int64(json_object_object_get(info, "total-time")));
    g_assert_nonnull(strstr(last, tail));
    /* The options reached the source. */
    params = gw_test_vm_qmp_ok(&src, "query-migrate-parameters", NULL);
    g_assert_cmpint(
        json_object_get_int64(json_object_object_get(params, "max-bandwidth")),
        ==, 50000);
    g_assert_cmpint(
        json_object_get_int64(json_object_object_get(params, "downtime-limit")),
        ==, 250);
    s = run_state(&src);
    g_assert_cmpstr(s, ==, "postmigrate");
    poll_status(&dst, "completed");
    d = run_state(&dst);
    g_assert_cmpstr(d, ==, "running");
    gw_qt_memread(dst.qt, PAGE_ADDR, back, PAGE);
    g_assert_cmpmem(page, PAGE, back, PAGE);
    ctl_run_clear(&in);
    ctl_run_clear(&r);
    gw_test_vm_stop(&src);
    gw_test_vm_stop(&dst);
}

static void
test_refused(void)
{
    GwTestVm src, dst;
    g_autofree char *uri = NULL, *s = NULL;
    CtlRun r = {0};

    gw_test_vm_start(&src, NULL);
    start_dst(&dst, "unix:@DIR@/mig.sock", "size=128M");
    uri = mig_uri(&dst);
    ctl(&src, (const char *[]){"migrate", uri, NULL}, &r);
    g_assert_cmpint(r.status, ==, 1);
    g_assert_nonnull(
        strstr(r.err, "godwit-ctl: migration failed: destination: "
                      "configuration mismatch: the source's memory size is "
                      "67108864, this VM's is 134217728\n"));
    g_assert_null(strstr(r.out, "completed"));
    reap_failed(&dst);
    s = run_state(&src);
    g_assert_cmpstr(s, ==, "running");
    ctl_run_clear(&r);
    gw_test_vm_stop(&src);
}

/* SIGINT: migrate_cancel, then the tool waits for `cancelled`. */
static void
test_interrupt(void)
{
    GwTestVm src, dst;
    g_autofree char *uri = NULL, *s = NULL, *err_text = NULL;
    g_autoptr(GError) err = NULL;
    GPid pid;
    int out_fd, err_fd, status;
    g_autofree char *out_text = NULL, *rest = NULL;
    g_autoptr(GString) first = NULL;

    gw_test_vm_start(&src, NULL);
    start_dst(&dst, "unix:@DIR@/mig.sock", NULL);
    uri = mig_uri(&dst);
    /* About 10 s at this rate: it is cancelled long before. */
    const char *argv[] = {
        g_getenv("GODWIT_CTL"), "--qmp", src.qmp_sock, "migrate",
        "--max-bandwidth",      "15000", uri,          NULL};
    g_assert_true(g_spawn_async_with_pipes(
        NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, die_with_parent,
        NULL, &pid, NULL, &out_fd, &err_fd, &err));
    g_assert_no_error(err);
    poll_status(&src, "active");
    first = read_first_line(out_fd); /* it is following the migration */
    kill(pid, SIGINT);
    status = wait_exit(pid);
    g_spawn_close_pid(pid);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 1);
    rest = read_all(out_fd);
    out_text = g_strconcat(first->str, rest, NULL);
    err_text = read_all(err_fd);
    g_assert_true(g_str_has_prefix(out_text, "setup\n") ||
                  g_str_has_prefix(out_text, "active"));
    g_test_message("%s", err_text);
    g_assert_nonnull(strstr(err_text, "cancelling the migration"));
    g_assert_true(g_str_has_suffix(err_text, "godwit-ctl: migration "
                                             "cancelled\n"));
    /* It waited: the source is already cancelled and running again. */
    {
        g_autoptr(json_object) info = query_migrate(&src);
        g_assert_cmpstr(
            json_object_get_string(json_object_object_get(info, "status")), ==,
            "cancelled");
    }
    s = run_state(&src);
    g_assert_cmpstr(s, ==, "running");
    reap_failed(&dst);
    gw_test_vm_stop(&src);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_assert_nonnull(g_getenv("GODWIT_CTL"));
    g_test_add_func("/ctl/migrate/plain-lines-then-downtime-and-total-time",
                    test_completed);
    g_test_add_func("/ctl/migrate/refused-by-destination-exits-1-with-reason",
                    test_refused);
    g_test_add_func("/ctl/migrate/sigint-cancels-and-waits-for-cancelled",
                    test_interrupt);
    return g_test_run();
}
