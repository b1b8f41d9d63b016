/*
 * The real godwit binary refusing bad input: one line on stderr naming
 * the option and the problem, exit status 1, nothing left behind.  These
 * paths are checked before /dev/kvm is opened, so they run everywhere.
 */
#include <string.h>
#include <sys/stat.h>
#include <glib/gstdio.h>
#include <godwit/util.h>

typedef struct {
    const char *name;
    const char *args; /* split on spaces; @DIR@ is a fresh temp dir */
    const char *want;
} CliCase;

static const CliCase cases[] = {
    {"kernel-missing", "--kernel @DIR@/nope.elf", "--kernel: "},
    {"kernel-not-elf", "--kernel @DIR@/text", "is not an ELF file"},
    {"kernel-64-bit-elf", "--kernel @GODWIT@", "is not a 32-bit x86 ELF"},
    {"hugepages-unreserved",
     "--memory size=4M,hugepages=on --kernel @DIR@/text",
     "not enough 2 MiB huge pages"},
    {"vdpa-unknown-key",
     "--qmp @DIR@/qmp.sock --serial socket=@DIR@/serial.sock --vdpa "
     "path=/x,foo=1",
     "--vdpa: unknown key 'foo'"},
    {"nothing-to-do", "--memory size=64M", "nothing to do"},
    {"memory-too-small-for-kernel", "--memory size=1M --kernel @GUEST@",
     "guest RAM must extend above 1 MiB"},
    {"vdpa-path-dev-null", "--kernel @GUEST@ --vdpa path=/dev/null",
     "--vdpa _vdpa0: vdpa: /dev/null is not a vhost-vdpa device"},
    {"vdpa-path-missing", "--kernel @GUEST@ --vdpa path=@DIR@/nope,id=d1",
     "--vdpa d1: vdpa: "},
    {"vdpa-path-regular-file-with-sim",
     "--kernel @GUEST@ --vdpa-sim name=s0,mgmtdev=vdpasim_blk --vdpa "
     "path=@DIR@/text",
     "is not a vhost-vdpa device"},
    {"vdpa-without-kernel", "--qmp @DIR@/q.sock --vdpa path=/dev/null",
     "--vdpa needs a machine to plug into"},
};

static unsigned
count_lines(const char *s)
{
    unsigned n = 0;
    for (; *s; s++) {
        n += *s == '\n';
    }
    return n;
}

static bool
hugepages_reserved(void)
{
    g_autofree char *nr = NULL;
    return g_file_get_contents("/proc/sys/vm/nr_hugepages", &nr, NULL, NULL) &&
           atoi(nr) != 0;
}

static void
test_cli_rejects(gconstpointer data)
{
    const CliCase *c = data;
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("godwit-cli-XXXXXX", &err);
    g_autofree char *text = g_build_filename(dir, "text", NULL);
    g_autofree char *args = NULL, *out = NULL, *errout = NULL;
    g_autoptr(GString) cmd = g_string_new(g_getenv("GODWIT_BIN"));
    g_auto(GStrv) argv = NULL;
    g_auto(GStrv) env = NULL;
    g_autoptr(GDir) d = NULL;
    int status;

    g_assert_no_error(err);
    if (strstr(c->args, "hugepages=on") && hugepages_reserved()) {
        g_test_skip("huge pages are reserved on this host");
        g_rmdir(dir);
        return;
    }
    g_assert_true(g_file_set_contents(text, "hello\n", -1, NULL));
    g_string_append_printf(cmd, " %s", c->args);
    g_string_replace(cmd, "@DIR@", dir, 0);
    g_string_replace(cmd, "@GODWIT@", g_getenv("GODWIT_BIN"), 0);
    g_string_replace(cmd, "@GUEST@", g_getenv("GODWIT_GUEST"), 0);
    argv = g_strsplit(cmd->str, " ", -1);
    /* Simulated devices publish here: it must end up empty too. */
    env = g_environ_setenv(g_get_environ(), "GODWIT_RUNTIME_DIR", dir, TRUE);
    g_assert_true(g_spawn_sync(NULL, argv, env, G_SPAWN_DEFAULT, NULL, NULL,
                               &out, &errout, &status, &err));
    g_assert_no_error(err);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 1);
    if (!strstr(errout, c->want)) {
        g_test_message("stderr '%s' lacks '%s'", errout, c->want);
        g_test_fail();
    }
    /* One line, and the temp dir holds only what the test put there. */
    g_assert_cmpuint(count_lines(errout), ==, 1);
    d = g_dir_open(dir, 0, NULL);
    for (const char *f; (f = g_dir_read_name(d));) {
        g_assert_cmpstr(f, ==, "text");
    }
    g_unlink(text);
    g_rmdir(dir);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_assert_nonnull(g_getenv("GODWIT_BIN"));
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *p = g_strdup_printf("/cli/rejects/%s", cases[i].name);
        g_test_add_data_func(p, &cases[i], test_cli_rejects);
    }
    return g_test_run();
}
