/*
 * godwit's QMP against QEMU's: the same scripted session against a
 * running qemu-system-x86_64 (-machine none) and a running godwit, the
 * replies compared step by step.  Only what legitimately differs is
 * normalised: version numbers and package strings, the capability list,
 * timestamps, and the words after "JSON parse error," (json-c's, not
 * QEMU's parser).  Skips visibly when QEMU is not installed.
 */
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <glib/gstdio.h>
#include <godwit/qmp-client.h>
#include <godwit/util.h>
#include "spawn-util.h"

#define T 15000

#define STATUS_X "{\"execute\":\"query-status\",\"id\":\"x\"}"

/*
 * Each step: raw request bytes (after `depth` '['), the event it must
 * also produce, and how many replies it gets (0: one).
 */
static const struct {
    const char *send;
    const char *event;
    int replies, depth;
} script[] = {
    {"{\"execute\":\"query-status\"}\n"},
    {"{\"execute\":\"qmp_capabilities\"}\n"},
    {"{\"execute\":\"qmp_capabilities\"}\n"},
    {"{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[\"x\"]}}\n"},
    {"{\"execute\":\"nope\",\"id\":[1,{\"a\":\"libvirt-2\"}]}\n"},
    {"{\"execute\":\"getfd\"}\n"},
    {"{\"execute\":\"getfd\",\"arguments\":{\"fdname\":3}}\n"},
    {"{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"x\",\"y\":1}}\n"},
    {"{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"x\"}}\n"},
    {"{\"execute\":\"add-fd\",\"arguments\":{\"fdset-id\":1.5}}\n"},
    {"[1,2]\n"},
    {"{\"arguments\":{}}\n"},
    {"{\"execute\":1}\n"},
    {"{\"execute\":\"query-status\",\"foo\":1}\n"},
    {"{\"execute\":\"query-status\",\"arguments\":[]}\n"},
    {"{\"execute\": }\n"},
    {"{\"execute\":\"query-status\",\"id\":\"libvirt-9\"}\n"},
    {"{\"execute\":\"stop\"}\n", "STOP"},
    {"{\"execute\":\"query-status\"}\n"},
    {"{\"execute\":\"cont\"}\n", "RESUME"},
    {"{\"execute\":\"query-name\"}\n"},
    {"{\"execute\":\"query-fdsets\"}\n"},
    {"{\"execute\":\"closefd\",\"arguments\":{\"fdname\":\"x\"}}\n"},
    {"{\"execute\":\"remove-fd\",\"arguments\":{\"fdset-id\":7}}\n"},
    {"{\"execute\":\"remove-fd\",\"arguments\":{\"fdset-id\":7,\"fd\":3}}\n"},
    {"{\"execute\":\"system_reset\"}\n", "RESET"},
    /* Framing: strict JSON, and where parsing resumes after an error. */
    {"{]" STATUS_X "\n", NULL, 2},
    {"{\"a\":1]}" STATUS_X, NULL, 3},
    {"{\x01" STATUS_X, NULL, 2},
    {"{\"execute\": \"query-status\", }\n"},
    {"{\"execute\": \"query-st\natus\"}\n", NULL, 2},
    {"{\"execute\":\"query-status\",\"id\":NaN}", NULL, 2},
    {"{\"execute\":\"query-status\",\"id\":0e5}" STATUS_X, NULL, 2},
    {"{'execute':'query-status','id':'a\"b\\'c'}"},
    {"{\"execute\":\"query-status\",\"execute\":\"stop\"}\n"},
    {"{\"execute\":\"query-status\",\"id\":\"\xc3\x28\"}\n"},
    {"{\"execute\":\"query-status\",\"id\":\"\xff\xfe\"}" STATUS_X, NULL, 4},
    {"{\"execute\":\"query-status\",\"id\":\"\\ud800\"}\n"},
    {"{\xc3\xa9}" STATUS_X, NULL, 3},
    {STATUS_X, NULL, 2, 1025},
};

/* Replaces what may differ between two correct implementations. */
static void
normalise(json_object *msg)
{
    json_object *qmp, *err, *ret, *desc;

    if (json_object_object_get_ex(msg, "QMP", &qmp)) {
        json_object_object_add(qmp, "version", json_object_new_string("V"));
        json_object_object_add(qmp, "capabilities",
                               json_object_new_string("C"));
    }
    if (json_object_object_get_ex(msg, "error", &err) &&
        json_object_object_get_ex(err, "desc", &desc) &&
        g_str_has_prefix(json_object_get_string(desc), "JSON parse error,")) {
        json_object_object_add(err, "desc",
                               json_object_new_string("JSON parse error"));
    }
    if (json_object_object_get_ex(msg, "return", &ret) &&
        json_object_object_get_ex(ret, "package", NULL)) {
        json_object_object_add(msg, "return", json_object_new_string("V"));
    }
}

static char *
canonical(json_object *msg)
{
    normalise(msg);
    return g_strdup(json_object_to_json_string_ext(
        msg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* Runs the script against the QMP socket at `path`. */
static GPtrArray *
run_script(const char *path)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQmpConn) c = gw_qmp_conn_new(path, T, &err);
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);

    g_assert_no_error(err);
    g_ptr_array_add(out, canonical(gw_qmp_conn_greeting(c)));
    for (size_t i = 0; i < G_N_ELEMENTS(script); i++) {
        g_autofree char *open = g_strnfill(script[i].depth, '[');
        g_autofree char *send = g_strconcat(open, script[i].send, NULL);
        json_object *r;
        g_assert_true(gw_qmp_conn_send_raw(c, send, strlen(send), -1, &err));
        for (int n = 0; n < MAX(script[i].replies, 1); n++) {
            r = gw_qmp_conn_read_reply(c, T, &err);
            g_assert_no_error(err);
            g_ptr_array_add(out, canonical(r));
            json_object_put(r);
        }
        if (script[i].event) {
            r = gw_qmp_conn_wait_event(c, script[i].event, T, &err);
            g_assert_no_error(err);
            json_object_object_del(r, "timestamp");
            g_ptr_array_add(out, canonical(r));
            json_object_put(r);
        }
    }
    return out;
}

static GPid
spawn(const char *const *argv, char **env)
{
    g_autoptr(GError) err = NULL;
    GPid pid;

    g_assert_true(g_spawn_async(NULL, (char **)argv, env,
                                G_SPAWN_DO_NOT_REAP_CHILD |
                                    G_SPAWN_STDOUT_TO_DEV_NULL |
                                    G_SPAWN_STDERR_TO_DEV_NULL,
                                die_with_parent, NULL, &pid, &err));
    return pid;
}

static void
reap(GPid pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    g_spawn_close_pid(pid);
}

static void
test_same_session_same_replies(void)
{
    g_autofree char *qemu = g_find_program_in_path("qemu-system-x86_64");
    g_autofree char *dir = g_dir_make_tmp("godwit-vs-qemu-XXXXXX", NULL);
    g_autofree char *qsock = g_build_filename(dir, "qemu.sock", NULL);
    g_autofree char *gsock = g_build_filename(dir, "godwit.sock", NULL);
    g_autofree char *qarg =
        g_strdup_printf("unix:%s,server=on,wait=off", qsock);
    const char *qemu_argv[] = {qemu,   "-machine",    "none",     "-accel",
                               "tcg",  "-nodefaults", "-display", "none",
                               "-qmp", qarg,          NULL};
    const char *godwit_argv[] = {g_getenv("GODWIT_BIN"), "--qmp", gsock, NULL};
    g_auto(GStrv) env =
        g_environ_setenv(g_get_environ(), "GODWIT_RUNTIME_DIR", dir, TRUE);
    g_autoptr(GPtrArray) want = NULL, got = NULL;
    GPid qpid, gpid;

    if (!qemu) {
        g_test_skip("qemu-system-x86_64 is not installed (apt-get install "
                    "qemu-system-x86)");
        g_rmdir(dir);
        return;
    }
    qpid = spawn(qemu_argv, env);
    gpid = spawn(godwit_argv, env);
    want = run_script(qsock);
    got = run_script(gsock);
    reap(qpid);
    reap(gpid);
    g_assert_cmpuint(got->len, ==, want->len);
    for (guint i = 0; i < want->len; i++) {
        /* As JSON values: member order is not part of the protocol. */
        g_autoptr(json_object) a = json_tokener_parse(want->pdata[i]);
        g_autoptr(json_object) b = json_tokener_parse(got->pdata[i]);
        if (!json_object_equal(a, b)) {
            g_test_message("step %u: QEMU said %s, godwit said %s", i,
                           (char *)want->pdata[i], (char *)got->pdata[i]);
            g_test_fail();
        }
    }
    g_unlink(qsock);
    g_rmdir(dir);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qmp/qemu/same-session-same-replies",
                    test_same_session_same_replies);
    return g_test_run();
}
