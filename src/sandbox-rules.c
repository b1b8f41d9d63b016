/*
 * Each thread role's allow-list.  docs/security.md says why each entry
 * is there; how they were found: strace -f -ff of the whole e2e suite,
 * in the plain and the sanitizer build, one trace per thread, named by
 * its PR_SET_NAME.  A syscall a role lacks kills godwit under
 * --seccomp true, so an entry goes only with the code path it serves.
 *
 * The main thread's list is the union of every role's with its own:
 * filters stack and every thread is created under the main one.
 * ioctl is allowed by request number (its low 32 bits: the kernel's
 * `unsigned int cmd`), or for the main thread by the request's type
 * byte (KVM's 0xAE, vhost's 0xAF).
 */
#include <errno.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <godwit/vhost-uapi.h>
#include "sandbox-priv.h"

#define ANY(n)                                                                 \
    {                                                                          \
        (n), -1, 0, 0, 0, false                                                \
    }
#define ARG_EQ(n, i, v)                                                        \
    {                                                                          \
        (n), (i), SCMP_CMP_EQ, (v), 0, false                                   \
    }
#define IOCTL(req)                                                             \
    {                                                                          \
        "ioctl", 1, SCMP_CMP_MASKED_EQ, 0xffffffffu, (req), false              \
    }
#define IOCTL_TYPE(t)                                                          \
    {                                                                          \
        "ioctl", 1, SCMP_CMP_MASKED_EQ, 0xff00u, (t) << 8, false               \
    }
#define SELF_PID(n, i)                                                         \
    {                                                                          \
        (n), (i), SCMP_CMP_EQ, 0, 0, true                                      \
    }
#define FAIL(n, e)                                                             \
    {                                                                          \
        (n), -1, 0, 0, 0, false, (e)                                           \
    }
#define TABLE(t)                                                               \
    {                                                                          \
        (t), G_N_ELEMENTS(t)                                                   \
    }

/* Every thread but the main one: files are not theirs to open or stat.
 * The C library's and GLib's lazy locale lookups (an error message's
 * translation, charset.alias) and GLib's log timestamp (which stats
 * /etc/localtime now and then) are the only ones seen on them: those
 * find nothing, as on a host without the files, rather than kill. */
static const GwSandboxRule no_files[] = {
    FAIL("openat", ENOENT),
    FAIL("open", ENOENT),
    FAIL("newfstatat", ENOENT),
    FAIL("statx", ENOENT),
};

/* Every thread: memory, locks, its own exit, and the SIGSYS handler's
 * log line and re-raise (sandbox.c on_sigsys). */
static const GwSandboxRule base[] = {
    ANY("futex"),
    ANY("mmap"),
    ANY("munmap"),
    ANY("mprotect"),
    ANY("madvise"),
    ANY("mremap"),
    ANY("brk"),
    ANY("rt_sigprocmask"),
    ANY("rt_sigreturn"),
    ANY("restart_syscall"),
    ARG_EQ("rt_sigaction", 0, SIGSYS),
    ANY("getpid"),
    ANY("gettid"),
    SELF_PID("tgkill", 0),
    ANY("write"),
    ANY("exit"),
    ANY("exit_group"),
    ANY("clock_gettime"),
    ANY("clock_nanosleep"),
    ANY("nanosleep"),
    ANY("sched_yield"),
    /* GLib's log writer asks whether stderr is a terminal (isatty) the
     * first time a thread warns. */
    IOCTL(TCGETS),
};

/* KVM_RUN and what the devices do on an exit: serial output, MSI and
 * irqfd routes, ioeventfds, the vDPA backend's vhost ioctls. */
static const GwSandboxRule vcpu[] = {
    IOCTL(KVM_RUN),
    IOCTL(KVM_IOEVENTFD),
    IOCTL(KVM_IRQFD),
    IOCTL(KVM_SET_GSI_ROUTING),
    IOCTL(KVM_SIGNAL_MSI),
    IOCTL(KVM_IRQ_LINE),
    IOCTL_TYPE(VHOST_VIRTIO),
    ANY("read"),
    ANY("close"),
    ANY("fcntl"),
    ANY("readlink"),
    ANY("eventfd2"),
};

/* The simulator's worker: poll its eventfds, run requests in memory. */
static const GwSandboxRule vdpa_sim[] = {
    ANY("poll"),
    ANY("ppoll"),
    ANY("read"),
    ANY("close"),
};

/* A shadow-virtqueue relay: poll the guest's kicks and the device's
 * calls, drain them (eventfd writes are in base); rings are memory. */
static const GwSandboxRule svq_relay[] = {
    ANY("poll"),
    ANY("ppoll"),
    ANY("read"),
};

/* The stream's I/O both ways (a socket or a file), the dirty log. */
static const GwSandboxRule mig_io[] = {
    ANY("read"),     ANY("readv"),   ANY("writev"),
    ANY("sendmsg"),  ANY("recvmsg"), ANY("sendto"),
    ANY("recvfrom"), ANY("poll"),    ANY("ppoll"),
};

static const GwSandboxRule mig_send[] = {
    IOCTL(KVM_GET_DIRTY_LOG),
    IOCTL(KVM_CLEAR_DIRTY_LOG),
};

/* Both ends: guest RAM's holes found with lseek and pages written with
 * pwritev on the memfd; the multifd channels' sockets and threads. */
static const GwSandboxRule mig_chan[] = {
    ANY("lseek"),
    ANY("pwritev"),
    ANY("pwrite64"),
    ANY("pread64"),
    ANY("preadv"),
    ANY("socket"),
    ANY("connect"),
    ANY("accept4"),
    ANY("setsockopt"),
    ANY("getsockopt"),
    ANY("shutdown"),
    ANY("close"),
    ANY("fcntl"),
    ANY("clone3"),
    ANY("set_robust_list"),
    ANY("rseq"),
    ANY("sched_getaffinity"),
    ARG_EQ("prctl", 0, PR_SET_NAME),
};

/* The main loop: building the VM, QMP, hotplug, migration control,
 * creating threads and their filters. */
static const GwSandboxRule main_own[] = {
    IOCTL_TYPE(KVMIO),
    IOCTL_TYPE(VHOST_VIRTIO),
    IOCTL(TCGETS),
    IOCTL(FIONBIO),
    IOCTL(FIONREAD),
    IOCTL(FIOCLEX),
    ANY("read"),
    ANY("readv"),
    ANY("writev"),
    ANY("pread64"),
    ANY("pwrite64"),
    ANY("lseek"),
    ANY("openat"),
    ANY("open"),
    ANY("close"),
    ANY("close_range"),
    ANY("dup"),
    ANY("dup2"),
    ANY("dup3"),
    ANY("fcntl"),
    ANY("newfstatat"),
    ANY("fstat"),
    ANY("fstatfs"), /* cpr-transfer: a received memfd is not hugetlbfs */
    ANY("statx"),
    ANY("access"),
    ANY("faccessat"),
    ANY("faccessat2"),
    ANY("readlink"),
    ANY("readlinkat"),
    ANY("getdents64"),
    ANY("mkdir"),
    ANY("mkdirat"),
    ANY("rmdir"),
    ANY("unlink"),
    ANY("unlinkat"),
    ANY("rename"),
    ANY("renameat"),
    ANY("renameat2"),
    ANY("umask"),
    ANY("fchmod"),
    ANY("ftruncate"),
    ANY("fallocate"),
    ANY("fsync"),
    ANY("memfd_create"),
    ANY("eventfd2"),
    ANY("pipe2"),
    ANY("poll"),
    ANY("ppoll"),
    ARG_EQ("socket", 0, AF_UNIX),
    ARG_EQ("socket", 0, AF_INET),
    ARG_EQ("socket", 0, AF_INET6),
    ARG_EQ("socket", 0, AF_NETLINK),
    ANY("socketpair"),
    ANY("bind"),
    ANY("listen"),
    ANY("accept4"),
    ANY("connect"),
    ANY("shutdown"),
    ANY("getsockopt"),
    ANY("setsockopt"),
    ANY("getsockname"),
    ANY("getpeername"),
    ANY("sendmsg"),
    ANY("recvmsg"),
    ANY("sendto"),
    ANY("recvfrom"),
    ANY("geteuid"),
    ANY("getuid"),
    ANY("getegid"),
    ANY("getgid"),
    ANY("getrandom"),
    ANY("uname"),
    ANY("sched_getaffinity"),
    ANY("prlimit64"),
    ARG_EQ("kill", 1, 0),
    ANY("tgkill"),
    ANY("rt_sigaction"),
    ANY("sigaltstack"),
    ANY("clone3"),
    ANY("set_robust_list"),
    ANY("rseq"),
    ARG_EQ("prctl", 0, PR_SET_NAME),
    ARG_EQ("prctl", 0, PR_SET_NO_NEW_PRIVS),
    ARG_EQ("seccomp", 0, SECCOMP_SET_MODE_FILTER),
};

#ifdef GW_SANITIZERS
/* ASan/UBSan/LSan's runtimes: their allocator, shadow memory, reports
 * and LeakSanitizer's exit-time scan (which stops the world with a
 * ptrace'd helper thread). */
static const GwSandboxRule sanitizers[] = {
    ANY("sigaltstack"),    ANY("getrlimit"),
    ANY("prlimit64"),      ANY("sched_getaffinity"),
    ANY("openat"),         ANY("read"),
    ANY("close"),          ANY("readlink"),
    ANY("getdents64"),     ANY("getdents"),
    ANY("newfstatat"),     ANY("fstat"),
    ANY("prctl"),          ANY("clone"),
    ANY("ptrace"),         ANY("wait4"),
    ANY("waitid"),         ANY("tgkill"),
    ANY("kill"),           ANY("rt_sigaction"),
    ANY("sched_getparam"), ANY("getppid"),
};
#define SANITIZERS TABLE(sanitizers),
#else
#define SANITIZERS
#endif

static const GwSandboxRules main_rules[] = {
    TABLE(base),     TABLE(main_own),  TABLE(vcpu),
    TABLE(vdpa_sim), TABLE(mig_io),    TABLE(mig_send),
    TABLE(mig_chan), TABLE(svq_relay), SANITIZERS{NULL, 0},
};
static const GwSandboxRules vcpu_rules[] = {
    TABLE(base),
    TABLE(no_files),
    TABLE(vcpu),
    SANITIZERS{NULL, 0},
};
static const GwSandboxRules vdpa_sim_rules[] = {
    TABLE(base),
    TABLE(no_files),
    TABLE(vdpa_sim),
    SANITIZERS{NULL, 0},
};
static const GwSandboxRules svq_rules[] = {
    TABLE(base),
    TABLE(no_files),
    TABLE(svq_relay),
    SANITIZERS{NULL, 0},
};
static const GwSandboxRules mig_send_rules[] = {
    TABLE(base),     TABLE(no_files), TABLE(mig_io),
    TABLE(mig_send), TABLE(mig_chan), SANITIZERS{NULL, 0},
};
static const GwSandboxRules mig_recv_rules[] = {
    TABLE(base),     TABLE(no_files),     TABLE(mig_io),
    TABLE(mig_chan), SANITIZERS{NULL, 0},
};

const GwSandboxRules *
gw_sandbox_role_rules(GwSandboxRole role)
{
    static const GwSandboxRules *const lists[] = {
        [GW_SANDBOX_MAIN] = main_rules,
        [GW_SANDBOX_VCPU] = vcpu_rules,
        [GW_SANDBOX_VDPA_SIM] = vdpa_sim_rules,
        [GW_SANDBOX_MIG_SEND] = mig_send_rules,
        [GW_SANDBOX_MIG_RECV] = mig_recv_rules,
        [GW_SANDBOX_SVQ] = svq_rules,
    };
    g_assert((unsigned)role < G_N_ELEMENTS(lists));
    return lists[role];
}
