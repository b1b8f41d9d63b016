/*
 * x-godwit-debug-syscall {"role": R}: makes one thread of role R call
 * personality(0xffffffff) — a harmless query no allow-list has — so the
 * seccomp tests can watch what the filter does with it.  With
 * "call": "stat" the thread stats /etc/localtime instead (what GLib's
 * log timestamp does now and then) and the answer is {"errno": E}.  Compiled
 * only into tests/debug/godwit-debug (godwit built with GW_DEBUG_HOOKS), never
 * into the godwit that is installed.
 *
 * Threads: the command runs on the main thread; it picks the target
 * thread by its name in /proc/self/task (vcpuN, vdpa-sim, gw-mig-send,
 * gw-mig-recv, svq-ID; the main thread is the process) and sends it SIGUSR2,
 * whose handler makes the call on that thread and counts it in `done`.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <godwit/qmp.h>
#include <godwit/sandbox.h>
#include <godwit/util.h>
#include "debug-hooks.h"

#define TRIGGER_SIGNAL SIGUSR2
#define WAIT_US        (5 * G_USEC_PER_SEC)

/* Written by the signal handler, read by the command: the one place a
 * handler reports back, so a static it must be. */
static int done;
static int call_stat;  /* set by the command before the signal */
static int stat_errno; /* what the stat gave, for the command */

static void
on_trigger(int sig)
{
    struct stat st;

    if (__atomic_load_n(&call_stat, __ATOMIC_SEQ_CST)) {
        int r = stat("/etc/localtime", &st);
        __atomic_store_n(&stat_errno, r < 0 ? errno : 0, __ATOMIC_SEQ_CST);
    } else {
        syscall(SYS_personality, 0xffffffffUL);
    }
    __atomic_add_fetch(&done, 1, __ATOMIC_SEQ_CST);
}

static const char *
comm_prefix(const char *role)
{
    static const char *const map[][2] = {
        {"vcpu", "vcpu"},
        {"vdpa-sim", "vdpa-sim"},
        {"mig-send", "gw-mig-send"},
        {"mig-recv", "gw-mig-recv"},
        {"svq-relay", "svq-"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(map); i++) {
        if (g_str_equal(role, map[i][0])) {
            return map[i][1];
        }
    }
    return NULL;
}

/* The first thread whose name starts with prefix, or 0. */
static pid_t
find_thread(const char *prefix)
{
    g_autoptr(GDir) dir = g_dir_open("/proc/self/task", 0, NULL);
    const char *tid;

    while (dir && (tid = g_dir_read_name(dir))) {
        g_autofree char *path = g_strdup_printf("/proc/self/task/%s/comm", tid);
        g_autofree char *comm = NULL;
        if (g_file_get_contents(path, &comm, NULL, NULL) &&
            g_str_has_prefix(comm, prefix)) {
            return (pid_t)atoi(tid);
        }
    }
    return 0;
}

static json_object *
debug_syscall(GwQmpSession *session, json_object *args, gpointer opaque,
              GError **errp)
{
    const char *role =
        json_object_get_string(json_object_object_get(args, "role"));
    const char *call =
        json_object_get_string(json_object_object_get(args, "call"));
    bool main_role = g_str_equal(role, "main");
    const char *prefix = comm_prefix(role);
    gint64 end = g_get_monotonic_time() + WAIT_US;
    pid_t tid = main_role ? getpid() : 0;
    int before = __atomic_load_n(&done, __ATOMIC_SEQ_CST);

    if (call && !g_str_equal(call, "stat") &&
        !g_str_equal(call, "personality")) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID, "unknown call '%s'",
                    call);
        return NULL;
    }
    __atomic_store_n(&call_stat, call && g_str_equal(call, "stat"),
                     __ATOMIC_SEQ_CST);
    if (!main_role && !prefix) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID, "unknown role '%s'",
                    role);
        return NULL;
    }
    /* A thread names itself once it runs: give it the time. */
    while (!tid && (tid = find_thread(prefix)) == 0 &&
           g_get_monotonic_time() < end) {
        g_usleep(1000);
    }
    if (!tid) {
        g_set_error(errp, GW_ERROR, GW_ERROR_NOT_FOUND,
                    "no %s thread is running", role);
        return NULL;
    }
    if (syscall(SYS_tgkill, getpid(), tid, TRIGGER_SIGNAL) < 0) {
        gw_error_errno(errp, errno, "tgkill %d", (int)tid);
        return NULL;
    }
    while (__atomic_load_n(&done, __ATOMIC_SEQ_CST) == before &&
           g_get_monotonic_time() < end) {
        g_usleep(1000);
    }
    if (__atomic_load_n(&done, __ATOMIC_SEQ_CST) == before) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "the %s thread did not make the call", role);
        return NULL;
    }
    if (__atomic_load_n(&call_stat, __ATOMIC_SEQ_CST)) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "errno",
                               json_object_new_int(__atomic_load_n(
                                   &stat_errno, __ATOMIC_SEQ_CST)));
        return o;
    }
    return json_object_new_object();
}

void
gw_debug_hooks_register(GwQmpServer *s)
{
    struct sigaction sa = {.sa_handler = on_trigger, .sa_flags = SA_RESTART};

    sigemptyset(&sa.sa_mask);
    sigaction(TRIGGER_SIGNAL, &sa, NULL);
    gw_qmp_server_register(s, "x-godwit-debug-syscall", debug_syscall, NULL);
}
