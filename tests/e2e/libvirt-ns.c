/* libvirt-ns: see libvirt-ns.h. */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include "libvirt-ns.h"

/* Reads into ns->buf until it holds `marker`; false at the deadline. */
static bool
read_until(Ns *ns, const char *marker, gint64 deadline)
{
    while (!strstr(ns->buf->str, marker)) {
        struct pollfd p = {ns->out, POLLIN, 0};
        gint64 left = (deadline - g_get_monotonic_time()) / 1000;
        char chunk[4096];
        ssize_t n;
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
            return false;
        }
        n = read(ns->out, chunk, sizeof(chunk));
        if (n <= 0) {
            return false;
        }
        g_string_append_len(ns->buf, chunk, n);
    }
    return true;
}

bool
ns_start(Ns *ns, const char *extra_env, char **why)
{
    g_autofree char *script = g_build_filename(g_getenv("G_TEST_SRCDIR"), "e2e",
                                               "libvirt", "ns.sh", NULL);
    g_autofree char *cmd = g_strdup_printf(
        "%s exec unshare -m -p -f --kill-child --mount-proc sh %s %s 2>&1",
        extra_env, script, ns->dir);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    g_autoptr(GError) err = NULL;

    ns->buf = g_string_new(NULL);
    if (!g_spawn_async_with_pipes(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
                                  NULL, NULL, &ns->pid, &ns->in, &ns->out, NULL,
                                  &err)) {
        *why = g_strdup(err->message);
        return false;
    }
    if (!read_until(ns, "@@READY\n",
                    g_get_monotonic_time() +
                        READY_TIMEOUT_S * G_USEC_PER_SEC)) {
        *why = g_strdup_printf("libvirtd did not start: %s", ns->buf->str);
        return false;
    }
    g_string_truncate(ns->buf, 0);
    return true;
}

void
ns_stop(Ns *ns)
{
    int status;

    if (ns->in >= 0) {
        close(ns->in); /* the script ends; the namespace dies with it */
    }
    if (ns->pid) {
        waitpid(ns->pid, &status, 0);
        g_spawn_close_pid(ns->pid);
    }
    if (ns->out >= 0) {
        close(ns->out);
    }
    if (ns->buf) {
        g_string_free(ns->buf, TRUE);
    }
}

/* Runs one shell line in the namespace; its output, *status its exit. */
char *
ns_run(Ns *ns, int *status, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *line = NULL;
    char *end, *out;

    va_start(ap, fmt);
    line = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_test_message("ns$ %s", line);
    g_assert_cmpint(write(ns->in, line, strlen(line)), ==, strlen(line));
    g_assert_cmpint(write(ns->in, "\n", 1), ==, 1);
    g_assert_true(read_until(
        ns, "@@END ", g_get_monotonic_time() + CMD_TIMEOUT_S * G_USEC_PER_SEC));
    g_assert_true(read_until(
        ns, "\n", g_get_monotonic_time() + CMD_TIMEOUT_S * G_USEC_PER_SEC));
    end = strstr(ns->buf->str, "@@END ");
    *status = atoi(end + 6);
    *end = '\0';
    out = g_strdup(ns->buf->str);
    g_string_truncate(ns->buf, 0);
    g_test_message("%s(status %d)", out, *status);
    return out;
}

/* Runs a line that must succeed; returns its output. */
char *
must_run(Ns *ns, const char *line)
{
    int status;
    char *out = ns_run(ns, &status, "%s", line);

    g_assert_cmpint(status, ==, 0);
    return out;
}

bool
have_tools(char **why, bool kvm)
{
    static const char *const tools[] = {"libvirtd", "virsh", "unshare"};

    if (geteuid() != 0) {
        *why = g_strdup("needs root: a private mount namespace for libvirtd");
        return false;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(tools); i++) {
        g_autofree char *p = g_find_program_in_path(tools[i]);
        if (!p) {
            *why = g_strdup_printf("%s is not installed (scripts/deps.sh)",
                                   tools[i]);
            return false;
        }
    }
    if (kvm && access("/dev/kvm", R_OK | W_OK) != 0) {
        *why = g_strdup("no /dev/kvm");
        return false;
    }
    return true;
}

/* Counts `needle` in the serial log (0 while the file does not exist). */
unsigned
log_count(const char *log, const char *needle)
{
    g_autofree char *text = NULL;
    unsigned n = 0;

    if (!g_file_get_contents(log, &text, NULL, NULL)) {
        return 0;
    }
    for (const char *p = text; (p = strstr(p, needle)); p++) {
        n++;
    }
    return n;
}

bool
wait_log(const char *log, const char *needle, unsigned at_least)
{
    gint64 deadline = g_get_monotonic_time() + GUEST_TIMEOUT_S * G_USEC_PER_SEC;

    while (log_count(log, needle) < at_least) {
        if (g_get_monotonic_time() > deadline) {
            return false;
        }
        g_usleep(50 * 1000);
    }
    return true;
}

char *
domain_xml(const char *dir, const char *emulator, const char *cpu,
           const char *cmdline)
{
    return g_strdup_printf("<domain type='kvm'><name>gw1</name>"
                           "<memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                           "<os><type arch='x86_64' machine='pc'>hvm</type>"
                           "<kernel>%s</kernel><cmdline>%s</cmdline></os>"
                           "<features><acpi/></features>%s<clock "
                           "offset='utc'/><devices><emulator>%s</emulator>"
                           "<controller type='usb' model='none'/>"
                           "<memballoon model='none'/>"
                           "<serial type='file'><source path='%s/serial.log'/>"
                           "<target port='0'/></serial></devices></domain>",
                           g_getenv("GODWIT_GUEST"), cmdline, cpu, emulator,
                           dir);
}

void
teardown(Ns *ns)
{
    g_autofree char *cmd = NULL;

    ns_stop(ns);
    if (ns->dir) {
        cmd = g_strdup_printf("rm -rf %s", ns->dir);
        g_assert_cmpint(system(cmd), ==, 0);
        g_free(ns->dir);
    }
}

void
assert_state(Ns *ns, const char *want)
{
    g_autofree char *out = must_run(ns, "virsh domstate gw1");
    g_assert_nonnull(strstr(out, want));
}

/* Until `virsh domstate` says `want` (bounded). */
bool
wait_state(Ns *ns, const char *want)
{
    gint64 deadline = g_get_monotonic_time() + GUEST_TIMEOUT_S * G_USEC_PER_SEC;

    for (;;) {
        g_autofree char *out = must_run(ns, "virsh domstate gw1");
        if (strstr(out, want)) {
            return true;
        }
        if (g_get_monotonic_time() > deadline) {
            return false;
        }
        g_usleep(50 * 1000); /* polling virsh, bounded */
    }
}
