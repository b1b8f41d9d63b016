/*
 * A Go program built against Debian's go-qemu (what Go management tools
 * use) drives a running godwit: connect, negotiate, query-status, stop,
 * cont, the STOP and RESUME events.  Built offline from /usr/share/gocode
 * (GOPATH mode); skips visibly when Go or go-qemu is not installed.
 */
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <glib/gstdio.h>
#include <godwit/qmp-client.h>
#include <godwit/util.h>
#include "spawn-util.h"

#define GOCODE "/usr/share/gocode"

static void
test_go_qemu_drives_godwit(void)
{
    g_autofree char *go = g_find_program_in_path("go");
    g_autofree char *src = g_build_filename(g_getenv("G_TEST_SRCDIR"), "e2e",
                                            "go", "goqmp.go", NULL);
    g_autofree char *dir = g_dir_make_tmp("godwit-go-XXXXXX", NULL);
    g_autofree char *bin = g_build_filename(dir, "goqmp", NULL);
    g_autofree char *cache = g_build_filename(dir, "cache", NULL);
    g_autofree char *sock = g_build_filename(dir, "qmp.sock", NULL);
    g_autofree char *out = NULL, *err_text = NULL, *rm = NULL;
    const char *build[] = {go, "build", "-o", bin, src, NULL};
    const char *godwit[] = {g_getenv("GODWIT_BIN"), "--qmp", sock, NULL};
    const char *client[] = {bin, sock, NULL};
    g_auto(GStrv) env = g_get_environ();
    g_autoptr(GError) err = NULL;
    GwQmpConn *probe;
    GPid pid;
    int status;

    if (!go || !g_file_test(GOCODE "/src/github.com/digitalocean/go-qemu",
                            G_FILE_TEST_IS_DIR)) {
        g_test_skip("needs golang-go and golang-github-digitalocean-go-qemu-"
                    "dev");
        g_rmdir(dir);
        return;
    }
    env = g_environ_setenv(env, "GOPATH", GOCODE, TRUE);
    env = g_environ_setenv(env, "GO111MODULE", "off", TRUE);
    env = g_environ_setenv(env, "GOCACHE", cache, TRUE);
    env = g_environ_setenv(env, "GODWIT_RUNTIME_DIR", dir, TRUE);
    g_assert_true(g_spawn_sync(NULL, (char **)build, env, G_SPAWN_DEFAULT, NULL,
                               NULL, &out, &err_text, &status, &err));
    g_assert_no_error(err);
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_error("go build failed: %s", err_text);
    }
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err_text, g_free);
    g_assert_true(g_spawn_async(NULL, (char **)godwit, env,
                                G_SPAWN_DO_NOT_REAP_CHILD, die_with_parent,
                                NULL, &pid, &err));
    /* go-qemu dials once: wait (bounded) until godwit accepts. */
    probe = gw_qmp_conn_new(sock, 20000, &err);
    g_assert_no_error(err);
    g_clear_pointer(&probe, gw_qmp_conn_free);
    g_assert_true(g_spawn_sync(NULL, (char **)client, env, G_SPAWN_DEFAULT,
                               NULL, NULL, &out, &err_text, &status, &err));
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    g_spawn_close_pid(pid);
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_error("goqmp failed: %s%s", out, err_text);
    }
    g_assert_nonnull(strstr(out, "connected godwit-"));
    g_assert_nonnull(strstr(out, "event STOP\nstatus paused\n"));
    g_assert_nonnull(strstr(out, "event RESUME\nstatus running\n"));
    rm = g_strdup_printf("rm -rf '%s'", dir);
    g_assert_cmpint(system(rm), ==, 0);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qmp/go-qemu/connect-query-stop-cont-events",
                    test_go_qemu_drives_godwit);
    return g_test_run();
}
