/* Helpers for tests that spawn godwit or QEMU. */
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <linux/kvm.h>
#include <glib.h>
#include <glib/gstdio.h>

/*
 * A GSpawnChildSetupFunc: the child gets SIGTERM when the test process
 * dies (an aborted test), so no VMM outlives it, and godwit still
 * removes its socket and nodes on the way out.
 */
static inline void
die_with_parent(gpointer data)
{
    (void)data;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
}

/*
 * The environment for a godwit under test: its runtime directory `dir`,
 * and, under ASan, a small quarantine (4 MiB instead of 256), so RSS
 * shows what godwit holds, not what ASan keeps of freed memory.
 */
static inline char **
godwit_test_env(const char *dir)
{
    char **env =
        g_environ_setenv(g_get_environ(), "GODWIT_RUNTIME_DIR", dir, TRUE);
    const char *asan = g_environ_getenv(env, "ASAN_OPTIONS");
    g_autofree char *opts =
        g_strdup_printf("%s:quarantine_size_mb=4", asan ? asan : "");

    return g_environ_setenv(env, "ASAN_OPTIONS", opts, TRUE);
}

/* Whether /dev/kvm opens and speaks our API; else the test is skipped,
 * visibly (the build machines are PVM guests without it). */
static inline bool
kvm_usable(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    bool ok = fd >= 0 && ioctl(fd, KVM_GET_API_VERSION, 0) == KVM_API_VERSION;

    if (fd >= 0) {
        close(fd);
    }
    if (!ok) {
        g_test_skip("no usable /dev/kvm on this host");
    }
    return ok;
}

/* A process's resident set in KiB (VmRSS). */
static inline long
proc_rss_kib(GPid pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/status", pid);
    g_autofree char *text = NULL;
    const char *p;

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    p = strstr(text, "VmRSS:");
    g_assert_nonnull(p);
    return strtol(p + 6, NULL, 10);
}

/*
 * Ends a child that is still running: SIGTERM first, so godwit removes
 * its sockets and simulated vDPA nodes as it would for a user, then
 * SIGKILL if it has not gone within 10 s.  Reaps it either way.
 */
static inline void
stop_child(GPid pid)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    int status;

    kill(pid, SIGTERM);
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (g_get_monotonic_time() > deadline) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            return;
        }
        g_usleep(10 * 1000); /* polling for the exit, bounded above */
    }
}

/*
 * Removes the directory tree a test made under `dir` (its files and
 * subdirectories, then `dir`); true if nothing is left.
 */
static inline bool
rm_tree(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        if (g_file_test(path, G_FILE_TEST_IS_DIR) &&
            !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
            rm_tree(path);
        } else {
            g_unlink(path);
        }
    }
    return g_rmdir(dir) == 0;
}
