/*
 * A running godwit process (an empty machine with a simulated vDPA
 * device): logging levels, clean exit on SIGTERM, nothing left behind,
 * simulator names unique per host.  Needs no /dev/kvm.
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <glib/gstdio.h>
#include <godwit/util.h>

#define WAIT_MS 10000

typedef struct {
    char *dir;
    GPid pid;
    int err_fd;
} Proc;

static bool
wait_for_file(const char *path, int timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + timeout_ms * 1000ll;

    while (!g_file_test(path, G_FILE_TEST_EXISTS)) {
        if (g_get_monotonic_time() > deadline) {
            return false;
        }
        g_usleep(10 * 1000); /* polling a file, bounded by the deadline */
    }
    return true;
}

/* Starts godwit with `extra` args in a fresh runtime dir. */
static void
start(Proc *p, const char *dir, const char *log_level, const char *debug_env)
{
    g_autofree char *qmp = g_build_filename(dir, "qmp.sock", NULL);
    g_autofree char *rt = g_strdup_printf("GODWIT_RUNTIME_DIR=%s", dir);
    g_autofree char *dbg =
        debug_env ? g_strdup_printf("G_MESSAGES_DEBUG=%s", debug_env) : NULL;
    const char *argv[] = {g_getenv("GODWIT_BIN"),
                          "--qmp",
                          qmp,
                          "--vdpa-sim",
                          "name=x,mgmtdev=vdpasim_blk,capacity=1M",
                          "--log-level",
                          log_level,
                          NULL};
    g_auto(GStrv) env = g_get_environ();
    g_autoptr(GError) err = NULL;

    env = g_environ_unsetenv(env, "G_MESSAGES_DEBUG");
    env = g_environ_setenv(env, "GODWIT_RUNTIME_DIR", dir, TRUE);
    if (debug_env) {
        env = g_environ_setenv(env, "G_MESSAGES_DEBUG", debug_env, TRUE);
    }
    p->dir = g_strdup(dir);
    g_assert_true(g_spawn_async_with_pipes(
        NULL, (char **)argv, env, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
        &p->pid, NULL, NULL, &p->err_fd, &err));
    g_assert_no_error(err);
}

/* SIGTERM, then the exit status and everything it wrote to stderr. */
static int
stop(Proc *p, char **stderr_text)
{
    g_autoptr(GString) out = g_string_new(NULL);
    char buf[512];
    ssize_t n;
    int status;

    kill(p->pid, SIGTERM);
    while ((n = read(p->err_fd, buf, sizeof(buf))) > 0) {
        g_string_append_len(out, buf, n);
    }
    close(p->err_fd);
    g_assert_cmpint(waitpid(p->pid, &status, 0), ==, p->pid);
    g_spawn_close_pid(p->pid);
    *stderr_text = g_string_free(g_steal_pointer(&out), FALSE);
    g_free(p->dir);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

typedef struct {
    const char *name;
    const char *log_level;
    const char *debug_env;
    bool info_shown;
} LogCase;

static const LogCase log_cases[] = {
    {"warning-hides-info", "warning", NULL, false},
    {"info-shows-info", "info", NULL, true},
    {"messages-debug-shows-module", "warning", "godwit", true},
    {"messages-debug-other-module", "warning", "godwit-qmp", false},
};

static void
test_log_level(gconstpointer data)
{
    const LogCase *c = data;
    g_autofree char *dir = g_dir_make_tmp("godwit-proc-XXXXXX", NULL);
    g_autofree char *node = g_build_filename(dir, "vdpa", "x", NULL);
    g_autofree char *text = NULL;
    Proc p;

    start(&p, dir, c->log_level, c->debug_env);
    g_assert_true(wait_for_file(node, WAIT_MS));
    g_assert_cmpint(stop(&p, &text), ==, 0);
    g_assert_cmpint(strstr(text, "vdpa-sim x (vdpasim_blk): ") != NULL, ==,
                    c->info_shown);
    /* A clean exit leaves no node, no directory behind. */
    g_assert_false(g_file_test(node, G_FILE_TEST_EXISTS));
    g_assert_cmpint(g_rmdir(dir), ==, 0);
}

static void
test_sim_name_taken_on_host(void)
{
    g_autofree char *dir = g_dir_make_tmp("godwit-proc-XXXXXX", NULL);
    g_autofree char *node = g_build_filename(dir, "vdpa", "x", NULL);
    g_autofree char *text = NULL, *out = NULL, *err_text = NULL;
    g_autofree char *qmp2 = g_build_filename(dir, "second.sock", NULL);
    const char *argv[] = {
        g_getenv("GODWIT_BIN"),       "--qmp", qmp2, "--vdpa-sim",
        "name=x,mgmtdev=vdpasim_net", NULL};
    g_auto(GStrv) env = NULL;
    Proc p;
    int status;

    start(&p, dir, "warning", NULL);
    g_assert_true(wait_for_file(node, WAIT_MS));
    env = g_environ_setenv(g_get_environ(), "GODWIT_RUNTIME_DIR", dir, TRUE);
    g_assert_true(g_spawn_sync(NULL, (char **)argv, env, G_SPAWN_DEFAULT, NULL,
                               NULL, &out, &err_text, &status, NULL));
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 1);
    g_assert_nonnull(strstr(err_text, "a device named 'x' exists on this "
                                      "host"));
    /* The refused process touched nothing: the first one's node is there. */
    g_assert_true(g_file_test(node, G_FILE_TEST_EXISTS));
    g_assert_cmpint(stop(&p, &text), ==, 0);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_assert_nonnull(g_getenv("GODWIT_BIN"));
    for (size_t i = 0; i < G_N_ELEMENTS(log_cases); i++) {
        g_autofree char *path =
            g_strdup_printf("/process/log/%s", log_cases[i].name);
        g_test_add_data_func(path, &log_cases[i], test_log_level);
    }
    g_test_add_func("/process/vdpa-sim/name-taken-on-host-is-refused",
                    test_sim_name_taken_on_host);
    return g_test_run();
}
