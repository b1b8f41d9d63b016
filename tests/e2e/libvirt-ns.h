/*
 * libvirt-ns: a private libvirtd for a test (tests/e2e/libvirt/ns.sh, in
 * its own mount and pid namespace, with private copies of libvirt's
 * directories under ns->dir), driven one shell line at a time, and the
 * test domain's XML.  Every wait is bounded.
 */
#pragma once

#include <stdbool.h>
#include <glib.h>

#define READY_TIMEOUT_S 60
#define CMD_TIMEOUT_S   90
#define GUEST_TIMEOUT_S 120

typedef struct {
    GPid pid;
    int in, out; /* -1 until started */
    GString *buf;
    char *dir; /* the namespace's private tree, made by the caller */
} Ns;

/*
 * Starts libvirtd in a new namespace over ns->dir, with `extra_env`
 * (shell assignments, "" for none: GW_NO_KVM=1 hides /dev/kvm,
 * GW_HOST_UUID=U sets libvirtd's host_uuid).  False with *why (new).
 */
bool ns_start(Ns *ns, const char *extra_env, char **why);
/* Ends the namespace (libvirtd and its VMs die with it). */
void ns_stop(Ns *ns);
/* ns_stop, then removes ns->dir. */
void teardown(Ns *ns);

/* Runs one shell line in the namespace; its output, *status its exit. */
char *ns_run(Ns *ns, int *status, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
/* Runs a line that must succeed; returns its output. */
char *must_run(Ns *ns, const char *line);

/* Root, libvirtd, virsh, unshare and (if `kvm`) /dev/kvm; else *why. */
bool have_tools(char **why, bool kvm);

/* Counts `needle` in the serial log (0 while the file does not exist). */
unsigned log_count(const char *log, const char *needle);
/* Until the log holds `at_least` of `needle`; false at the deadline. */
bool wait_log(const char *log, const char *needle, unsigned at_least);

/* The test domain gw1: the test guest with `cmdline` as direct-boot
 * kernel, `emulator`, the <cpu> element `cpu` (or ""), a serial log in
 * `dir`/serial.log. */
char *domain_xml(const char *dir, const char *emulator, const char *cpu,
                 const char *cmdline);
/* `virsh domstate gw1` says `want` now / within the guest timeout. */
void assert_state(Ns *ns, const char *want);
bool wait_state(Ns *ns, const char *want);
