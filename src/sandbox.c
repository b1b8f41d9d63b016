/*
 * Per-thread seccomp filters.  See include/godwit/sandbox.h for the
 * contract and docs/security.md for the lists (src/sandbox-rules.c).
 *
 * Threads: gw_sandbox_enter() runs on the thread it sandboxes.  The
 * first call with ON or LOG compiles every role's program, under
 * `lock`; the programs, the mode and the syscall names are written then
 * and only read afterwards.  on_sigsys() runs on the thread that
 * trapped, so it touches only those and the thread-local role.
 *
 * Process-wide state, against CONVENTIONS.md's "no globals": a signal
 * handler has no argument to find a struct through, and a filter is
 * process-wide state in the kernel anyway (docs/architecture.md).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <godwit/util.h>
#include "sandbox-priv.h"

/* Above every x86-64 syscall number today; a higher one prints as #N. */
#define MAX_SYSCALL_NR 512

static struct {
    GMutex lock;
    bool ready; /* programs compiled; under lock until set, then fixed */
    GwSeccompMode mode;
    struct sock_fprog prog[GW_SANDBOX_N_ROLES];
    char *names[MAX_SYSCALL_NR];
} sandbox;

/* 0: the thread never entered, so it runs under what it inherited. */
static __thread int thread_role_plus1;

const char *
gw_sandbox_role_name(GwSandboxRole role)
{
    static const char *const names[] = {
        [GW_SANDBOX_MAIN] = "main",         [GW_SANDBOX_VCPU] = "vcpu",
        [GW_SANDBOX_VDPA_SIM] = "vdpa-sim", [GW_SANDBOX_MIG_SEND] = "mig-send",
        [GW_SANDBOX_MIG_RECV] = "mig-recv", [GW_SANDBOX_SVQ] = "svq-relay",
    };
    g_assert((unsigned)role < G_N_ELEMENTS(names));
    return names[role];
}

GwSeccompMode
gw_sandbox_mode(void)
{
    return __atomic_load_n(&sandbox.ready, __ATOMIC_ACQUIRE) ? sandbox.mode
                                                             : GW_SECCOMP_OFF;
}

/* --- the SIGSYS handler: async-signal-safe, write(2) only ---------- */

static void
put(char *buf, size_t *n, size_t size, const char *s)
{
    while (*s && *n < size) {
        buf[(*n)++] = *s++;
    }
}

static void
put_uint(char *buf, size_t *n, size_t size, unsigned long v)
{
    char d[24];
    int i = sizeof(d) - 1;

    d[i] = '\0';
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v && i > 0);
    put(buf, n, size, d + i);
}

static void
on_sigsys(int sig, siginfo_t *si, void *uc)
{
    char buf[256];
    size_t n = 0;
    int nr = si->si_syscall;
    const char *role = thread_role_plus1
                           ? gw_sandbox_role_name(thread_role_plus1 - 1)
                           : "main";
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigset_t set;

    put(buf, &n, sizeof(buf), "godwit: seccomp: thread role ");
    put(buf, &n, sizeof(buf), role);
    put(buf, &n, sizeof(buf), ": forbidden syscall ");
    if (nr >= 0 && nr < MAX_SYSCALL_NR && sandbox.names[nr]) {
        put(buf, &n, sizeof(buf), sandbox.names[nr]);
    } else {
        put(buf, &n, sizeof(buf), "#");
        put_uint(buf, &n, sizeof(buf), (unsigned long)nr);
    }
    put(buf, &n, sizeof(buf), " (");
    put_uint(buf, &n, sizeof(buf), (unsigned long)nr);
    put(buf, &n, sizeof(buf), "), killing the process with SIGSYS\n");
    if (write(STDERR_FILENO, buf, n) < 0) {
        /* nowhere left to say it */
    }
    /* Every list allows these three for this moment (sandbox-rules.c). */
    sigaction(SIGSYS, &dfl, NULL);
    sigemptyset(&set);
    sigaddset(&set, SIGSYS);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    raise(SIGSYS);
}

/* --- compiling ------------------------------------------------------ */

static bool
add_rule(scmp_filter_ctx ctx, const GwSandboxRule *r, GError **errp)
{
    int nr = seccomp_syscall_resolve_name(r->name);
    struct scmp_arg_cmp cmp = {
        .arg = (unsigned)r->arg,
        .op = r->op,
        .datum_a = r->a_is_pid ? (uint64_t)getpid() : r->a,
        .datum_b = r->b,
    };

    if (nr == __NR_SCMP_ERROR) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "seccomp: unknown syscall '%s' in an allow-list", r->name);
        return false;
    }
    uint32_t action =
        r->fail_errno ? SCMP_ACT_ERRNO(r->fail_errno) : SCMP_ACT_ALLOW;
    int ret = r->arg < 0 ? seccomp_rule_add(ctx, action, nr, 0)
                         : seccomp_rule_add_array(ctx, action, nr, 1, &cmp);
    if (ret < 0) {
        return gw_error_errno(errp, -ret, "seccomp: rule for %s", r->name);
    }
    return true;
}

/* The exported BPF of ctx, through a memfd (libseccomp 2.5 has no
 * in-memory export). */
static bool
export_bpf(scmp_filter_ctx ctx, struct sock_fprog *prog, GError **errp)
{
    gw_autofd fd = memfd_create("godwit-seccomp", MFD_CLOEXEC);
    struct stat st;
    int ret;

    if (fd < 0) {
        return gw_error_errno(errp, errno, "seccomp: memfd_create");
    }
    ret = seccomp_export_bpf(ctx, fd);
    if (ret < 0) {
        return gw_error_errno(errp, -ret, "seccomp: exporting a filter");
    }
    if (fstat(fd, &st) < 0) {
        return gw_error_errno(errp, errno, "seccomp: fstat");
    }
    prog->len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
    prog->filter = g_malloc(st.st_size);
    if (pread(fd, prog->filter, st.st_size, 0) != st.st_size) {
        g_clear_pointer(&prog->filter, g_free);
        return gw_error_errno(errp, errno, "seccomp: reading a filter back");
    }
    return true;
}

static bool
compile_role(GwSandboxRole role, uint32_t action, struct sock_fprog *prog,
             GError **errp)
{
    scmp_filter_ctx ctx = seccomp_init(action);
    bool ok = ctx != NULL;

    if (!ok) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED, "seccomp: seccomp_init");
        return false;
    }
    for (const GwSandboxRules *t = gw_sandbox_role_rules(role); ok && t->rules;
         t++) {
        for (unsigned i = 0; ok && i < t->n; i++) {
            ok = add_rule(ctx, &t->rules[i], errp);
        }
    }
    ok = ok && export_bpf(ctx, prog, errp);
    seccomp_release(ctx);
    if (!ok) {
        g_prefix_error(errp, "role %s: ", gw_sandbox_role_name(role));
    }
    return ok;
}

static bool
install_sigsys(GError **errp)
{
    struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};

    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) < 0) {
        return gw_error_errno(errp, errno, "seccomp: sigaction(SIGSYS)");
    }
    return true;
}

/* Under sandbox.lock, once: every program, the names, the handler. */
static bool
prepare(GwSeccompMode mode, GError **errp)
{
    uint32_t action = mode == GW_SECCOMP_LOG ? SCMP_ACT_LOG : SCMP_ACT_TRAP;

    for (int r = 0; r < GW_SANDBOX_N_ROLES; r++) {
        if (!compile_role(r, action, &sandbox.prog[r], errp)) {
            return false;
        }
    }
    for (int nr = 0; nr < MAX_SYSCALL_NR; nr++) {
        sandbox.names[nr] =
            seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    }
    return mode != GW_SECCOMP_ON || install_sigsys(errp);
}

static bool
ensure_ready(GwSeccompMode mode, GError **errp)
{
    bool ok = true;

    g_mutex_lock(&sandbox.lock);
    if (!sandbox.ready) {
        ok = prepare(mode, errp);
        if (ok) {
            sandbox.mode = mode;
            __atomic_store_n(&sandbox.ready, true, __ATOMIC_RELEASE);
        }
    }
    g_mutex_unlock(&sandbox.lock);
    g_assert(!ok || sandbox.mode == mode);
    return ok;
}

bool
gw_sandbox_enter(GwSandboxRole role, GwSeccompMode mode, GError **errp)
{
    g_assert((unsigned)role < GW_SANDBOX_N_ROLES);
    thread_role_plus1 = (int)role + 1;
    if (mode == GW_SECCOMP_OFF) {
        return true;
    }
    if (!ensure_ready(mode, errp)) {
        return false;
    }
    /* Warm what an error message opens files for, once per thread (GLib
     * caches the charset per thread): later messages read no file. */
    g_get_charset(NULL);
    (void)g_strerror(EIO);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        return gw_error_errno(errp, errno, "seccomp: PR_SET_NO_NEW_PRIVS");
    }
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &sandbox.prog[role]) <
        0) {
        return gw_error_errno(errp, errno, "seccomp: installing the %s filter",
                              gw_sandbox_role_name(role));
    }
    if (role == GW_SANDBOX_MAIN && mode == GW_SECCOMP_LOG) {
        g_warning("seccomp: log mode: a syscall outside a thread's "
                  "allow-list is allowed, and logged by the kernel "
                  "(type=SECCOMP audit records: dmesg, journalctl -k, or "
                  "auditd's log)");
    }
    return true;
}

void
gw_sandbox_enter_thread(GwSandboxRole role)
{
    g_autoptr(GError) err = NULL;

    if (!gw_sandbox_enter(role, gw_sandbox_mode(), &err)) {
        g_critical("%s thread: %s", gw_sandbox_role_name(role), err->message);
    }
}
