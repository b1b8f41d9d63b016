/*
 * Per-thread seccomp filters (--seccomp true|false|log), one allow-list
 * per thread role.  docs/security.md lists every role's syscalls and why.
 *
 * A filter stays on a thread for its life and is inherited by the
 * threads it creates; filters stack, so a syscall must pass every one.
 * The main thread enters first, before it creates anything, so every
 * other thread (GLib's own included) starts under the main filter and
 * narrows it with its role's when it starts.
 */
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <godwit/config.h>

typedef enum {
    GW_SANDBOX_MAIN,     /* the main loop, and GLib's helper threads */
    GW_SANDBOX_VCPU,     /* src/vcpu.c: KVM_RUN and the exits' devices */
    GW_SANDBOX_VDPA_SIM, /* src/vdpa/sim/device.c: a simulator's worker */
    GW_SANDBOX_MIG_SEND, /* migration/outgoing.c: gw-mig-send */
    GW_SANDBOX_MIG_RECV, /* migration/incoming.c: gw-mig-recv */
    GW_SANDBOX_SVQ,      /* src/vdpa/svq.c: a device's shadow-virtqueue relay */
    GW_SANDBOX_N_ROLES
} GwSandboxRole;

/* "main", "vcpu", "vdpa-sim", "mig-send", "mig-recv", "svq-relay":
 * static strings. */
const char *gw_sandbox_role_name(GwSandboxRole role);

/*
 * Installs role's filter on the calling thread, in mode:
 * GW_SECCOMP_ON: a syscall outside the list kills the process with
 * SIGSYS after one line on stderr naming the role and the syscall;
 * GW_SECCOMP_LOG: it is allowed and the kernel logs it (an audit record
 * of type SECCOMP, in dmesg or auditd's log); GW_SECCOMP_OFF: nothing.
 * The first call with ON or LOG (the main thread's, in godwit) compiles
 * every role's filter and, for ON, installs the SIGSYS handler; later
 * calls only install, so a thread's entry neither allocates nor depends
 * on libseccomp.  The mode of the first call is the process's: later
 * calls must pass the same (gw_sandbox_mode()).  Any thread; call it
 * first, before the thread does anything else.  Returns false with
 * *errp set if the kernel refused the filter (the thread is then as it
 * was).
 */
bool gw_sandbox_enter(GwSandboxRole role, GwSeccompMode mode, GError **errp);

/* The mode the first gw_sandbox_enter() set; GW_SECCOMP_OFF before. */
GwSeccompMode gw_sandbox_mode(void);

/*
 * A thread's entry: gw_sandbox_enter(role, gw_sandbox_mode()), with a
 * failure logged (g_critical naming the role) rather than returned, for
 * threads that have nobody to return it to.  The thread then runs on
 * under the filter it inherited.
 */
void gw_sandbox_enter_thread(GwSandboxRole role);
