/*
 * QMP end to end: a real godwit process (an empty machine, so no
 * /dev/kvm is needed), the real socket, the C client library.
 */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <glib-unix.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <glib/gstdio.h>
#include <godwit/qmp-client.h>
#include <godwit/util.h>
#include "spawn-util.h"

#define T 10000 /* ms: every wait is bounded by this */

typedef struct {
    char *dir, *sock;
    GPid pid;
    GwQmpConn *c;
} Fx;

static void
fx_start(Fx *f)
{
    g_autoptr(GError) err = NULL;
    const char *argv[] = {g_getenv("GODWIT_BIN"), "--qmp", NULL, NULL};
    g_auto(GStrv) env = NULL;

    f->dir = g_dir_make_tmp("godwit-qmp-XXXXXX", NULL);
    f->sock = g_build_filename(f->dir, "qmp.sock", NULL);
    argv[2] = f->sock;
    env = godwit_test_env(f->dir);
    g_assert_true(g_spawn_async(NULL, (char **)argv, env,
                                G_SPAWN_DO_NOT_REAP_CHILD, die_with_parent,
                                NULL, &f->pid, &err));
    f->c = gw_qmp_conn_new(f->sock, T, &err);
    g_assert_no_error(err);
}

static GwQmpConn *
fx_connect(Fx *f, bool negotiate)
{
    g_autoptr(GError) err = NULL;
    GwQmpConn *c = gw_qmp_conn_new(f->sock, T, &err);

    g_assert_no_error(err);
    if (negotiate) {
        g_assert_true(gw_qmp_conn_negotiate(c, T, &err));
    }
    return c;
}

static int
fx_wait_exit(Fx *f)
{
    int status = -1;
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;

    while (waitpid(f->pid, &status, WNOHANG) == 0) {
        if (g_get_monotonic_time() > deadline) {
            kill(f->pid, SIGKILL);
            waitpid(f->pid, &status, 0);
            return -1;
        }
        g_usleep(5000); /* bounded by the deadline */
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
fx_stop(Fx *f)
{
    g_clear_pointer(&f->c, gw_qmp_conn_free);
    if (f->pid) {
        kill(f->pid, SIGTERM);
        g_assert_cmpint(fx_wait_exit(f), ==, 0);
    }
    g_assert_false(g_file_test(f->sock, G_FILE_TEST_EXISTS));
    g_rmdir(f->dir);
    g_free(f->sock);
    g_free(f->dir);
}

/* Runs `cmd`; returns the "return" value (owned by *reply). */
static json_object *
ok(GwQmpConn *c, const char *cmd, const char *args_json, json_object **reply)
{
    g_autoptr(GError) err = NULL;
    json_object *args = args_json ? json_tokener_parse(args_json) : NULL;
    json_object *ret;

    *reply = gw_qmp_conn_execute(c, cmd, args, -1, T, &err);
    g_assert_no_error(err);
    if (!json_object_object_get_ex(*reply, "return", &ret)) {
        g_error("%s: %s", cmd, json_object_to_json_string(*reply));
    }
    return ret;
}

/* Runs `cmd` expecting an error of class `cls` whose desc has `desc`. */
static void
fails(GwQmpConn *c, const char *cmd, const char *args_json, const char *cls,
      const char *desc)
{
    g_autoptr(GError) err = NULL;
    json_object *args = args_json ? json_tokener_parse(args_json) : NULL;
    g_autoptr(json_object) r = gw_qmp_conn_execute(c, cmd, args, -1, T, &err);
    json_object *e;

    g_assert_no_error(err);
    g_assert_true(json_object_object_get_ex(r, "error", &e));
    g_assert_cmpstr(json_object_get_string(json_object_object_get(e, "class")),
                    ==, cls);
    g_assert_nonnull(strstr(
        json_object_get_string(json_object_object_get(e, "desc")), desc));
}

static const char *
str_at(json_object *o, const char *key)
{
    return json_object_get_string(json_object_object_get(o, key));
}

static void
expect_event(GwQmpConn *c, const char *name, const char *reason)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) ev = gw_qmp_conn_wait_event(c, name, T, &err);
    json_object *ts;

    g_assert_no_error(err);
    g_assert_true(json_object_object_get_ex(ev, "timestamp", &ts));
    g_assert_nonnull(json_object_object_get(ts, "seconds"));
    g_assert_nonnull(json_object_object_get(ts, "microseconds"));
    if (reason) {
        g_assert_cmpstr(str_at(json_object_object_get(ev, "data"), "reason"),
                        ==, reason);
    }
}

static void
test_socket_mode_and_quit(void)
{
    Fx f = {0};
    struct stat st;
    json_object *r;

    fx_start(&f);
    g_assert_cmpint(stat(f.sock, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 0777, ==, 0600);
    g_assert_true(gw_qmp_conn_negotiate(f.c, T, NULL));
    ok(f.c, "quit", NULL, &r);
    json_object_put(r);
    expect_event(f.c, "SHUTDOWN", "host-qmp-quit");
    g_assert_cmpint(fx_wait_exit(&f), ==, 0);
    f.pid = 0;
    fx_stop(&f); /* asserts the socket file is gone */
}

static void
test_run_state_and_events(void)
{
    Fx f = {0};
    json_object *r, *ret;

    fx_start(&f);
    g_assert_true(gw_qmp_conn_negotiate(f.c, T, NULL));
    ret = ok(f.c, "query-status", NULL, &r);
    g_assert_cmpstr(str_at(ret, "status"), ==, "running");
    json_object_put(r);
    ok(f.c, "stop", NULL, &r);
    json_object_put(r);
    expect_event(f.c, "STOP", NULL);
    ret = ok(f.c, "query-status", NULL, &r);
    g_assert_cmpstr(str_at(ret, "status"), ==, "paused");
    g_assert_false(
        json_object_get_boolean(json_object_object_get(ret, "running")));
    json_object_put(r);
    ok(f.c, "cont", NULL, &r);
    json_object_put(r);
    expect_event(f.c, "RESUME", NULL);
    ok(f.c, "system_powerdown", NULL, &r);
    json_object_put(r);
    expect_event(f.c, "POWERDOWN", NULL);
    ok(f.c, "system_reset", NULL, &r);
    json_object_put(r);
    expect_event(f.c, "RESET", "host-qmp-system-reset");
    fx_stop(&f);
}

static void
test_queries(void)
{
    Fx f = {0};
    static const char *const want[] = {"qmp_capabilities",
                                       "query-version",
                                       "query-commands",
                                       "query-qmp-schema",
                                       "query-status",
                                       "stop",
                                       "cont",
                                       "system_powerdown",
                                       "system_reset",
                                       "quit",
                                       "query-name",
                                       "query-cpus-fast",
                                       "query-kvm",
                                       "getfd",
                                       "closefd",
                                       "add-fd",
                                       "remove-fd",
                                       "query-fdsets",
                                       "query-pci",
                                       "x-godwit-query-exits"};
    json_object *r, *ret;
    g_autofree char *names = NULL, *schema = NULL;

    fx_start(&f);
    g_assert_true(gw_qmp_conn_negotiate(f.c, T, NULL));
    ret = ok(f.c, "query-version", NULL, &r);
    g_assert_cmpint(json_object_get_int(json_object_object_get(
                        json_object_object_get(ret, "qemu"), "major")),
                    >=, 5); /* libvirt needs 4.2 or later */
    g_assert_true(g_str_has_prefix(str_at(ret, "package"), "godwit-"));
    json_object_put(r);
    names = g_strdup(json_object_to_json_string_ext(
        ok(f.c, "query-commands", NULL, &r), JSON_C_TO_STRING_PLAIN));
    json_object_put(r);
    schema = g_strdup(json_object_to_json_string_ext(
        ok(f.c, "query-qmp-schema", NULL, &r), JSON_C_TO_STRING_PLAIN));
    json_object_put(r);
    for (size_t i = 0; i < G_N_ELEMENTS(want); i++) {
        g_autofree char *n = g_strdup_printf("{\"name\":\"%s\"}", want[i]);
        g_autofree char *s = g_strdup_printf(
            "\"name\":\"%s\",\"meta-type\":\"command\"", want[i]);
        g_assert_nonnull(strstr(names, n));
        g_assert_nonnull(strstr(schema, s));
    }
    ret = ok(f.c, "query-name", NULL, &r);
    g_assert_cmpint(json_object_object_length(ret), ==, 0);
    json_object_put(r);
    ret = ok(f.c, "query-kvm", NULL, &r);
    g_assert_false(
        json_object_get_boolean(json_object_object_get(ret, "enabled")));
    json_object_put(r);
    ret = ok(f.c, "query-cpus-fast", NULL, &r);
    g_assert_cmpuint(json_object_array_length(ret), ==, 0); /* no vCPUs */
    json_object_put(r);
    ret = ok(f.c, "x-godwit-query-exits", NULL, &r);
    g_assert_cmpint(json_object_object_length(ret), ==, 0); /* no machine */
    json_object_put(r);
    fx_stop(&f);
}

static void
test_validation_and_parse_errors(void)
{
    Fx f = {0};
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) r = NULL;
    json_object *tmp;

    fx_start(&f);
    fails(f.c, "query-status", NULL, "CommandNotFound",
          "Expecting capabilities negotiation with 'qmp_capabilities'");
    g_assert_true(gw_qmp_conn_negotiate(f.c, T, NULL));
    fails(f.c, "qmp_capabilities", NULL, "CommandNotFound",
          "Capabilities negotiation is already complete");
    fails(f.c, "nope", NULL, "CommandNotFound",
          "The command nope has not been found");
    fails(f.c, "getfd", NULL, "GenericError", "Parameter 'fdname' is missing");
    fails(f.c, "getfd", "{\"fdname\": 1}", "GenericError",
          "Invalid parameter type for 'fdname', expected: string");
    fails(f.c, "stop", "{\"x\": 1}", "GenericError",
          "Parameter 'x' is unexpected");
    /* Malformed JSON: an error, and the connection still works. */
    g_assert_true(gw_qmp_conn_send_raw(f.c, "{\"execute\": }\n", 14, -1, &err));
    r = gw_qmp_conn_read_reply(f.c, T, &err);
    g_assert_no_error(err);
    g_assert_true(
        g_str_has_prefix(str_at(json_object_object_get(r, "error"), "desc"),
                         "JSON parse error"));
    ok(f.c, "query-status", NULL, &tmp);
    json_object_put(tmp);
    fx_stop(&f);
}

static void
test_ids_echoed(void)
{
    Fx f = {0};
    static const char *const ids[] = {"\"libvirt-7\"", "42",   "[1,{\"a\":2}]",
                                      "null",          "true", "{\"x\":[]}"};

    fx_start(&f);
    g_assert_true(gw_qmp_conn_negotiate(f.c, T, NULL));
    for (size_t i = 0; i < G_N_ELEMENTS(ids); i++) {
        g_autoptr(GError) err = NULL;
        g_autofree char *req = g_strdup_printf(
            "{\"execute\":\"query-name\",\"id\":%s}\r\n", ids[i]);
        g_autoptr(json_object) want = json_tokener_parse(ids[i]);
        g_autoptr(json_object) r = NULL;
        json_object *id = NULL;

        g_assert_true(gw_qmp_conn_send_raw(f.c, req, strlen(req), -1, &err));
        r = gw_qmp_conn_read_reply(f.c, T, &err);
        g_assert_no_error(err);
        g_assert_true(json_object_object_get_ex(r, "id", &id));
        g_assert_true(json_object_equal(id, want));
    }
    fx_stop(&f);
}

static void
test_fd_passing(void)
{
    Fx f = {0};
    int p[2];
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) r = NULL;
    json_object *ret, *tmp;
    g_autofree char *sets = NULL;

    fx_start(&f);
    g_assert_true(gw_qmp_conn_negotiate(f.c, T, NULL));
    g_assert_cmpint(pipe(p), ==, 0);
    r = gw_qmp_conn_execute(f.c, "add-fd",
                            json_tokener_parse("{\"opaque\":\"net0-vdpa\"}"),
                            p[0], T, &err);
    g_assert_no_error(err);
    g_assert_true(json_object_object_get_ex(r, "return", &ret));
    g_assert_cmpint(
        json_object_get_int(json_object_object_get(ret, "fdset-id")), ==, 0);
    sets = g_strdup(json_object_to_json_string_ext(
        ok(f.c, "query-fdsets", NULL, &tmp), JSON_C_TO_STRING_PLAIN));
    json_object_put(tmp);
    g_assert_nonnull(strstr(sets, "\"opaque\":\"net0-vdpa\""));
    g_assert_nonnull(strstr(sets, "\"fdset-id\":0"));
    /* A named fd: getfd with one, closefd; getfd without one fails. */
    json_object_put(g_steal_pointer(&r));
    r = gw_qmp_conn_execute(f.c, "getfd",
                            json_tokener_parse("{\"fdname\":\"mig\"}"), p[1], T,
                            &err);
    g_assert_nonnull(json_object_object_get(r, "return"));
    ok(f.c, "closefd", "{\"fdname\":\"mig\"}", &tmp);
    json_object_put(tmp);
    fails(f.c, "closefd", "{\"fdname\":\"mig\"}", "GenericError",
          "File descriptor named 'mig' not found");
    fails(f.c, "getfd", "{\"fdname\":\"x\"}", "GenericError",
          "No file descriptor supplied via SCM_RIGHTS");
    ok(f.c, "remove-fd", "{\"fdset-id\":0}", &tmp);
    json_object_put(tmp);
    ret = ok(f.c, "query-fdsets", NULL, &tmp);
    g_assert_cmpuint(json_object_array_length(ret), ==, 0);
    json_object_put(tmp);
    close(p[0]);
    close(p[1]);
    fx_stop(&f);
}

static void
test_vdpa_sim_commands(void)
{
    Fx f = {0};
    json_object *r, *ret;
    g_autofree char *node = NULL;

    fx_start(&f);
    g_assert_true(gw_qmp_conn_negotiate(f.c, T, NULL));
    ret =
        ok(f.c, "x-godwit-vdpa-sim-add",
           "{\"name\":\"s0\",\"mgmtdev\":\"vdpasim_blk\",\"capacity\":1048576}",
           &r);
    node = g_build_filename(f.dir, "vdpa", "s0", NULL);
    g_assert_cmpstr(str_at(ret, "path"), ==, node);
    g_assert_true(g_file_test(node, G_FILE_TEST_EXISTS));
    json_object_put(r);
    fails(f.c, "x-godwit-vdpa-sim-add",
          "{\"name\":\"s0\",\"mgmtdev\":\"vdpasim_net\"}", "GenericError",
          "exists");
    fails(f.c, "x-godwit-vdpa-sim-add",
          "{\"name\":\"s1\",\"mgmtdev\":\"vdpasim_blk\",\"mac\":\"x\"}",
          "GenericError", "mac is for vdpasim_net");
    ret = ok(f.c, "x-godwit-query-vdpa-sim", NULL, &r);
    g_assert_cmpuint(json_object_array_length(ret), ==, 1);
    json_object_put(r);
    ok(f.c, "x-godwit-vdpa-sim-del", "{\"name\":\"s0\"}", &r);
    json_object_put(r);
    g_assert_false(g_file_test(node, G_FILE_TEST_EXISTS));
    fails(f.c, "x-godwit-vdpa-sim-del", "{\"name\":\"s0\"}", "DeviceNotFound",
          "s0");
    fx_stop(&f);
}

static void
test_two_clients(void)
{
    Fx f = {0};
    g_autoptr(GwQmpConn) b = NULL;
    g_autoptr(GError) err = NULL;
    json_object *r;

    fx_start(&f);
    g_assert_true(gw_qmp_conn_negotiate(f.c, T, NULL));
    b = fx_connect(&f, false);
    fails(b, "stop", NULL, "CommandNotFound", "Expecting capabilities");
    ok(f.c, "stop", NULL, &r);
    json_object_put(r);
    expect_event(f.c, "STOP", NULL);
    /* b is not negotiated: it got no event; once it is, it gets them. */
    g_assert_true(gw_qmp_conn_negotiate(b, T, NULL));
    ok(b, "cont", NULL, &r);
    json_object_put(r);
    expect_event(b, "RESUME", NULL);
    expect_event(f.c, "RESUME", NULL);
    g_assert_null(gw_qmp_conn_wait_event(b, "STOP", 200, &err));
    fx_stop(&f);
}

static int
raw_connect(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    g_assert_cmpint(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    return fd;
}

/*
 * Sends requests whose replies are never read until the socket stops
 * taking them.  True when godwit applied backpressure (stopped reading);
 * false if it closed the connection instead or never pushed back.
 */
static bool
flood_until_blocked(int fd)
{
    static const char req[] = "{\"execute\":\"query-qmp-schema\"}\n";
    g_autoptr(GString) burst = g_string_new(NULL);
    size_t sent = 0;

    for (int i = 0; i < 1000; i++) {
        g_string_append(burst, req);
    }
    g_unix_set_fd_nonblocking(fd, TRUE, NULL);
    while (sent < (256u << 20)) {
        ssize_t n = send(fd, burst->str, burst->len, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            struct pollfd p = {fd, POLLOUT, 0};
            if (poll(&p, 1, 500) == 0) {
                return true; /* nobody reads our requests any more */
            }
            continue;
        }
        return false; /* EPIPE/ECONNRESET: disconnected */
    }
    return false;
}

static void
test_client_that_never_reads(void)
{
    Fx f = {0};
    const char *neg = "{\"execute\":\"qmp_capabilities\"}\n";
    long before;
    int lazy;
    json_object *r;

    fx_start(&f);
    g_assert_true(gw_qmp_conn_negotiate(f.c, T, NULL));
    before = proc_rss_kib(f.pid);
    lazy = raw_connect(f.sock);
    g_assert_cmpint(write(lazy, neg, strlen(neg)), ==, (ssize_t)strlen(neg));
    g_assert_true(flood_until_blocked(lazy));
    /* godwit did not buffer the replies it could not send ... */
    g_assert_cmpint(proc_rss_kib(f.pid) - before, <, 32 * 1024);
    /* ... and goes on serving everyone else at once. */
    for (int i = 0; i < 20; i++) {
        ok(f.c, "query-status", NULL, &r);
        json_object_put(r);
    }
    close(lazy);
    fx_stop(&f);
}

static void
test_oversized_request(void)
{
    Fx f = {0};
    g_autoptr(GwQmpConn) big = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) r = NULL;
    gsize n = 2u << 20;
    g_autofree char *huge = g_malloc(n);
    json_object *tmp;

    memset(huge, 'a', n);
    memcpy(huge, "{\"execute\":\"", 12);
    fx_start(&f);
    g_assert_true(gw_qmp_conn_negotiate(f.c, T, NULL));
    big = fx_connect(&f, true);
    gw_qmp_conn_send_raw(big, huge, n, -1, NULL); /* may fail: closed */
    r = gw_qmp_conn_read_reply(big, T, &err);
    g_assert_no_error(err);
    g_assert_nonnull(strstr(str_at(json_object_object_get(r, "error"), "desc"),
                            "too large"));
    g_assert_true(gw_qmp_conn_wait_closed(big, T));
    ok(f.c, "query-status", NULL, &tmp); /* the others carry on */
    json_object_put(tmp);
    fx_stop(&f);
}

/* Runs godwit-ctl; returns its exit status, stdout and stderr. */
static int
ctl(Fx *f, const char *args, char **out, char **err_text)
{
    g_autofree char *line = g_strdup_printf(
        "%s --qmp %s %s", g_getenv("GODWIT_CTL"), f->sock, args);
    g_auto(GStrv) argv = NULL;
    g_autoptr(GError) err = NULL;
    int status;

    g_assert_true(g_shell_parse_argv(line, NULL, &argv, NULL));
    g_assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                               out, err_text, &status, &err));
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
test_godwit_ctl(void)
{
    Fx f = {0};
    g_autofree char *o1 = NULL, *e1 = NULL, *o2 = NULL, *e2 = NULL;
    g_autofree char *o3 = NULL, *e3 = NULL, *o4 = NULL, *e4 = NULL;

    fx_start(&f);
    /* A value that starts like a number is still a string (a MAC). */
    g_assert_cmpint(ctl(&f,
                        "--human x-godwit-vdpa-sim-add name=n0 "
                        "mgmtdev=vdpasim_net mac=52:54:00:12:34:56",
                        &o1, &e1),
                    ==, 0);
    g_assert_nonnull(strstr(o1, "name: n0\n"));
    /* Numbers are numbers: capacity=1048576 reaches the schema as int. */
    g_assert_cmpint(ctl(&f,
                        "x-godwit-vdpa-sim-add name=b0 mgmtdev=vdpasim_blk "
                        "capacity=1048576",
                        &o2, &e2),
                    ==, 0);
    g_assert_nonnull(strstr(o2, "\"path\":"));
    /* An error reply: exit 1 and its desc on stderr. */
    g_assert_cmpint(ctl(&f, "closefd fdname=nope", &o3, &e3), ==, 1);
    g_assert_nonnull(strstr(e3, "File descriptor named 'nope' not found"));
    /* Waiting for an event that never comes: bounded, exit 1. */
    g_assert_cmpint(ctl(&f, "wait-event RESET --timeout 0.3", &o4, &e4), ==, 1);
    fx_stop(&f);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_assert_nonnull(g_getenv("GODWIT_BIN"));
    signal(SIGPIPE, SIG_IGN);
    g_test_add_func("/qmp/e2e/socket-is-0600-and-gone-after-quit",
                    test_socket_mode_and_quit);
    g_test_add_func("/qmp/e2e/stop-cont-powerdown-reset-and-events",
                    test_run_state_and_events);
    g_test_add_func("/qmp/e2e/queries-and-schema-list-every-command",
                    test_queries);
    g_test_add_func("/qmp/e2e/bad-requests-get-qemu-errors",
                    test_validation_and_parse_errors);
    g_test_add_func("/qmp/e2e/id-echoed-verbatim", test_ids_echoed);
    g_test_add_func("/qmp/e2e/fd-passing-fdsets-and-named-fds",
                    test_fd_passing);
    g_test_add_func("/qmp/e2e/vdpa-sim-commands", test_vdpa_sim_commands);
    g_test_add_func("/qmp/e2e/two-clients-negotiate-independently",
                    test_two_clients);
    g_test_add_func("/qmp/e2e/client-that-never-reads-is-bounded",
                    test_client_that_never_reads);
    g_test_add_func("/qmp/e2e/oversized-request-rejected",
                    test_oversized_request);
    g_test_add_func("/qmp/e2e/godwit-ctl-values-errors-events",
                    test_godwit_ctl);
    return g_test_run();
}
