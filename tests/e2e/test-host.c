/*
 * godwit on a hostile or unusual host: out of file descriptors, a umask
 * of 000, a UTF-8 locale, bytes that are no text at all; and under a
 * guest that makes it complain as fast as it can.  Real godwit
 * processes under the qtest accelerator, so no /dev/kvm is needed.
 */
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <glib/gstdio.h>
#include <godwit/log.h>
#include <godwit/util.h>
#include "qtest-client.h"
#include "spawn-util.h"

#define T        10000 /* ms: every wait is bounded by this */
#define FD_LIMIT 64    /* RLIMIT_NOFILE of the starved godwit */

typedef struct {
    char *dir, *qmp, *qt, *serial;
    GPid pid;
    int err_fd;
} Proc;

typedef struct {
    bool umask0;
    rlim_t nofile; /* 0: unchanged */
} Setup;

static void
child_setup(gpointer data)
{
    const Setup *s = data;
    struct rlimit rl = {s->nofile, s->nofile};

    die_with_parent(NULL);
    if (s->umask0) {
        umask(0);
    }
    if (s->nofile && setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        _exit(127);
    }
}

/* `env` with the locale from LANG=`lang` alone. */
static char **
locale_env(char **env, const char *lang)
{
    static const char *const lc[] = {"LC_ALL", "LC_CTYPE", "LC_MESSAGES"};

    for (size_t i = 0; i < G_N_ELEMENTS(lc); i++) {
        env = g_environ_unsetenv(env, lc[i]);
    }
    return g_environ_setenv(env, "LANG", lang, TRUE);
}

/* godwit --qtest --qmp --memory size=64M plus `args` ("@DIR@" expanded). */
static void
proc_start(Proc *p, const Setup *setup, const char *lang,
           const char *const *args)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) err = NULL;
    const char *base[] = {"--memory", "size=64M"};
    g_auto(GStrv) env = NULL;

    p->dir = g_dir_make_tmp("godwit-host-XXXXXX", NULL);
    p->qmp = g_build_filename(p->dir, "qmp.sock", NULL);
    p->qt = g_build_filename(p->dir, "qtest.sock", NULL);
    p->serial = g_build_filename(p->dir, "serial.sock", NULL);
    g_ptr_array_add(argv, g_strdup(g_getenv("GODWIT_BIN")));
    g_ptr_array_add(argv, g_strdup("--qtest"));
    g_ptr_array_add(argv, g_strdup(p->qt));
    g_ptr_array_add(argv, g_strdup("--qmp"));
    g_ptr_array_add(argv, g_strdup(p->qmp));
    for (size_t i = 0; i < G_N_ELEMENTS(base); i++) {
        g_ptr_array_add(argv, g_strdup(base[i]));
    }
    for (size_t i = 0; args && args[i]; i++) {
        g_auto(GStrv) parts = g_strsplit(args[i], "@DIR@", -1);
        g_ptr_array_add(argv, g_strjoinv(p->dir, parts));
    }
    g_ptr_array_add(argv, NULL);
    env = godwit_test_env(p->dir);
    if (lang) {
        env = locale_env(env, lang);
    }
    g_assert_true(g_spawn_async_with_pipes(
        NULL, (char **)argv->pdata, env, G_SPAWN_DO_NOT_REAP_CHILD, child_setup,
        (gpointer)setup, &p->pid, NULL, NULL, &p->err_fd, &err));
    g_assert_no_error(err);
}

/* SIGTERM; godwit must exit 0.  Returns what it wrote to stderr. */
static char *
proc_stop(Proc *p)
{
    g_autoptr(GString) out = g_string_new(NULL);
    char buf[512];
    ssize_t n;
    int status = -1;

    kill(p->pid, SIGTERM);
    while ((n = read(p->err_fd, buf, sizeof(buf))) > 0) {
        g_string_append_len(out, buf, n);
    }
    close(p->err_fd);
    g_assert_cmpint(waitpid(p->pid, &status, 0), ==, p->pid);
    g_spawn_close_pid(p->pid);
    g_test_message("godwit stderr: %s", out->str);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    return g_string_free(g_steal_pointer(&out), FALSE);
}

static void
proc_cleanup(Proc *p)
{
    g_autoptr(GDir) d = g_dir_open(p->dir, 0, NULL);

    for (const char *f; d && (f = g_dir_read_name(d));) {
        g_autofree char *path = g_build_filename(p->dir, f, NULL);
        g_remove(path);
    }
    g_assert_cmpint(g_rmdir(p->dir), ==, 0);
    g_free(p->dir);
    g_free(p->qmp);
    g_free(p->qt);
    g_free(p->serial);
}

/* A connection to `path`, retried until godwit listens (bounded). */
static int
connect_to(const char *path)
{
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;
    int fd;

    while ((fd = gw_unix_connect(path)) < 0) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10 * 1000); /* waiting for the socket, bounded */
    }
    return fd;
}

/* Whether something arrives on `fd` within `ms`; it must hold `want`. */
static bool
reads(int fd, int ms, const char *want)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    char buf[4096];
    ssize_t n;

    if (poll(&pfd, 1, ms) != 1) {
        return false;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    g_assert_cmpint(n, >, 0);
    buf[n] = '\0';
    g_assert_nonnull(strstr(buf, want));
    return true;
}

static bool
greeted(int fd, int ms)
{
    return reads(fd, ms, "\"QMP\"");
}

/* utime + stime of `pid`, in seconds. */
static double
cpu_seconds(GPid pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/stat", pid);
    g_autofree char *text = NULL;
    g_auto(GStrv) f = NULL;
    const char *p;

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    p = strrchr(text, ')');
    g_assert_nonnull(p);
    f = g_strsplit(p + 2, " ", -1); /* f[0] is field 3, the state */
    g_assert_cmpuint(g_strv_length(f), >, 12);
    return (g_ascii_strtod(f[11], NULL) + g_ascii_strtod(f[12], NULL)) /
           sysconf(_SC_CLK_TCK);
}

static unsigned
count(const char *haystack, const char *needle)
{
    unsigned n = 0;

    for (const char *p = haystack; (p = strstr(p, needle)); p++) {
        n++;
    }
    return n;
}

static void
test_out_of_fds(void)
{
    const Setup setup = {false, FD_LIMIT};
    const char *args[] = {"--serial", "socket=@DIR@/serial.sock", NULL};
    g_autoptr(GArray) clients = g_array_new(FALSE, FALSE, sizeof(int));
    g_autofree char *text = NULL;
    int pending = -1, pending_qt, pending_serial;
    double cpu;
    Proc p;

    proc_start(&p, &setup, NULL, args);
    /* Clients until godwit has no fd left to accept one with. */
    for (unsigned i = 0; i < 2 * FD_LIMIT && pending < 0; i++) {
        int fd = connect_to(p.qmp);
        if (greeted(fd, i == 0 ? T : 500)) {
            g_array_append_val(clients, fd);
        } else {
            pending = fd; /* connected, in the backlog, not accepted */
        }
    }
    g_assert_cmpint(pending, >=, 0);
    /* The other two listeners hit the same wall. */
    pending_qt = connect_to(p.qt);
    pending_serial = connect_to(p.serial);
    /* Out of fds, godwit waits without spinning. */
    cpu = cpu_seconds(p.pid);
    g_assert_false(greeted(pending, 1000));
    cpu = cpu_seconds(p.pid) - cpu;
    g_test_message("CPU while out of fds: %.2f s over 1 s", cpu);
    g_assert_cmpfloat(cpu, <, 0.3);
    /* A few clients leave: the waiting connections are accepted. */
    for (unsigned i = 0; i < 3; i++) {
        close(g_array_index(clients, int, i));
    }
    g_assert_true(greeted(pending, T));
    g_assert_cmpint(write(pending_qt, "clock_step\n", 11), ==, 11);
    g_assert_true(reads(pending_qt, T, "OK"));
    for (guint i = 3; i < clients->len; i++) {
        close(g_array_index(clients, int, i));
    }
    close(pending);
    close(pending_qt);
    close(pending_serial);
    text = proc_stop(&p);
    /* Said once, not once per retry. */
    g_assert_cmpuint(count(text, "--qmp: cannot accept connections"), ==, 1);
    proc_cleanup(&p);
}

static mode_t
mode_of(const char *path)
{
    struct stat st;

    g_assert_cmpint(lstat(path, &st), ==, 0);
    return st.st_mode & 07777;
}

typedef struct {
    const char *name;
    const char *serial; /* the --serial value */
    const char *file;   /* what it creates, in the runtime dir */
} ModeCase;

static const ModeCase mode_cases[] = {
    {"serial-socket", "socket=@DIR@/serial.sock", "serial.sock"},
    {"serial-file", "file=@DIR@/serial.log", "serial.log"},
};

/* Under umask 000, what godwit creates is still its user's alone. */
static void
test_modes_under_umask_0(gconstpointer data)
{
    const ModeCase *c = data;
    const Setup setup = {true, 0};
    const char *args[] = {"--serial", c->serial, NULL};
    g_autofree char *path = NULL, *text = NULL;
    Proc p;
    int fd;

    proc_start(&p, &setup, NULL, args);
    fd = connect_to(p.qmp); /* the machine and its serial exist by now */
    g_assert_true(greeted(fd, T));
    path = g_build_filename(p.dir, c->file, NULL);
    g_assert_cmpint(mode_of(path) & 0777, ==, 0600);
    g_assert_cmpint(mode_of(p.qmp) & 0777, ==, 0600);
    g_assert_cmpint(mode_of(p.qt) & 0777, ==, 0600);
    close(fd);
    text = proc_stop(&p);
    proc_cleanup(&p);
}

/* Under a UTF-8 locale, UTF-8 paths and names work and are logged as
 * they are. */
static void
test_utf8_path_and_name(void)
{
    const Setup setup = {false, 0};
    const char *args[] = {
        "--serial",    "file=@DIR@/journal-\u00e9.log",
        "--vdpa-sim",  "name=disque-\u00e9,mgmtdev=vdpasim_blk,capacity=1M",
        "--log-level", "info",
        NULL};
    g_autofree char *log = NULL, *node = NULL, *text = NULL;
    Proc p;
    int fd;

    proc_start(&p, &setup, "C.UTF-8", args);
    fd = connect_to(p.qmp);
    g_assert_true(greeted(fd, T));
    log = g_build_filename(p.dir, "journal-\u00e9.log", NULL);
    node = g_build_filename(p.dir, "vdpa", "disque-\u00e9", NULL);
    g_assert_true(g_file_test(log, G_FILE_TEST_IS_REGULAR));
    g_assert_true(g_file_test(node, G_FILE_TEST_IS_REGULAR));
    close(fd);
    text = proc_stop(&p);
    g_assert_nonnull(strstr(text, "vdpa-sim disque-\u00e9 (vdpasim_blk)"));
    proc_cleanup(&p);
}

typedef struct {
    const char *name;
    const char *lang;
    const char *opt, *val;
    bool ok;
    const char *want; /* on stdout if ok, else on stderr */
} TextCase;

static const TextCase text_cases[] = {
    {"serial-file-invalid-byte", "C.UTF-8", "--serial",
     "file=/tmp/a\xff"
     "b",
     false, "--serial: byte 0xff after 'file=/tmp/a' is not valid UTF-8"},
    {"sim-name-latin1", "C.UTF-8", "--vdpa-sim",
     "name=caf\xe9,mgmtdev=vdpasim_blk", false, "--vdpa-sim: byte 0xe9 after"},
    {"qmp-truncated-sequence", "C.UTF-8", "--qmp", "/tmp/q\xc3", false,
     "--qmp: byte 0xc3 after '/tmp/q'"},
    {"vdpa-id-invalid-byte", "C.UTF-8", "--vdpa", "path=/x,id=\x80", false,
     "--vdpa: byte 0x80"},
    {"utf8-under-c-locale-accepted", "C", "--serial", "file=/tmp/\u00e9", true,
     "\"path\":\"/tmp/\u00e9\""},
    {"utf8-under-utf8-locale-accepted", "C.UTF-8", "--vdpa-sim",
     "name=\u00e9,mgmtdev=vdpasim_net", true, "\"name\":\"\u00e9\""},
};

/* Bytes that are not text are refused, naming the option. */
static void
test_option_text(gconstpointer data)
{
    const TextCase *c = data;
    const char *argv[] = {g_getenv("GODWIT_BIN"), "--print-config", c->opt,
                          c->val, NULL};
    g_auto(GStrv) env = locale_env(g_get_environ(), c->lang);
    g_autofree char *out = NULL, *err_text = NULL;
    g_autoptr(GError) err = NULL;
    int status;

    g_assert_true(g_spawn_sync(NULL, (char **)argv, env, G_SPAWN_DEFAULT, NULL,
                               NULL, &out, &err_text, &status, &err));
    g_assert_no_error(err);
    g_test_message("stderr: %s", err_text);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, c->ok ? 0 : 1);
    g_assert_nonnull(strstr(c->ok ? out : err_text, c->want));
}

#define TOGGLES 200

/*
 * A guest that places BAR 1 on top of BAR 0 and flips memory decoding
 * on and off: every flip is a rejected BAR, but the log gets a burst.
 */
static void
test_bar_rejections_rate_limited(void)
{
    const Setup setup = {false, 0};
    const char *args[] = {
        "--serial",   "off",
        "--vdpa-sim", "name=blk0,mgmtdev=vdpasim_blk,capacity=1M",
        "--vdpa",     "path=@DIR@/vdpa/blk0,id=disk0",
        NULL};
    const unsigned bdf = GW_QT_BDF(0, 1, 0);
    const uint32_t window = 0xC1000000u; /* slot 1's */
    g_autoptr(GError) err = NULL;
    g_autofree char *text = NULL;
    GwQt *qt;
    Proc p;
    int fd;

    proc_start(&p, &setup, NULL, args);
    fd = connect_to(p.qmp);
    g_assert_true(greeted(fd, T));
    qt = gw_qt_connect(p.qt, T, &err);
    g_assert_no_error(err);
    g_assert_cmphex(gw_qt_pci_read(qt, bdf, 0x00, 2), ==, 0x1af4);
    gw_qt_pci_write(qt, bdf, 0x10, 4, window);
    gw_qt_pci_write(qt, bdf, 0x14, 4, window);
    for (unsigned i = 0; i < TOGGLES; i++) {
        gw_qt_pci_write(qt, bdf, 0x04, 2, 0x2);
        gw_qt_pci_write(qt, bdf, 0x04, 2, 0x0);
    }
    gw_qt_free(qt);
    close(fd);
    text = proc_stop(&p);
    g_assert_cmpuint(count(text, "BAR 1 not mapped"), >=, 1);
    g_assert_cmpuint(count(text, "BAR 1 not mapped"), <=, GW_LOG_BURST);
    proc_cleanup(&p);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_assert_nonnull(g_getenv("GODWIT_BIN"));
    g_test_add_func("/host/listener/out-of-fds-waits-without-spinning",
                    test_out_of_fds);
    for (size_t i = 0; i < G_N_ELEMENTS(mode_cases); i++) {
        g_autofree char *path =
            g_strdup_printf("/host/umask-0/%s-is-0600", mode_cases[i].name);
        g_test_add_data_func(path, &mode_cases[i], test_modes_under_umask_0);
    }
    g_test_add_func("/host/guest/bar-rejections-are-rate-limited",
                    test_bar_rejections_rate_limited);
    g_test_add_func("/host/locale/utf8-path-and-name-work",
                    test_utf8_path_and_name);
    for (size_t i = 0; i < G_N_ELEMENTS(text_cases); i++) {
        g_autofree char *path =
            g_strdup_printf("/host/option-text/%s", text_cases[i].name);
        g_test_add_data_func(path, &text_cases[i], test_option_text);
    }
    return g_test_run();
}
