/*
 * qemu-cli: QEMU's command line, as libvirt's QEMU driver writes it,
 * translated into a GwConfig, so that `godwit` can be a domain's
 * <emulator>.
 *
 * `godwit` takes this grammar instead of its own when its first argument
 * is one of the single-dash QEMU options below (gw_qemu_cli_detect); its
 * own options all start with "--".  Every option libvirt 9.0 passes for
 * the capability probe and for a domain godwit can run is understood;
 * one godwit cannot honour is refused with a message naming it and the
 * reason ("-no-acpi: godwit's board needs ACPI …"), never silently
 * misread; harmless ones are accepted (docs/user-guide.md lists both).
 * Values are QEMU's: "[implied,]key=value,…" with ",," a literal comma,
 * or JSON objects for -object, -device, -netdev and -audiodev.
 *
 * Thread: any; no state beyond the returned struct.
 */
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <godwit/config.h>

/* The one PC board godwit has, and its alias, as query-machines says. */
#define GW_QEMU_MACHINE_PC       "pc-i440fx-8.2"
#define GW_QEMU_MACHINE_PC_ALIAS "pc"

/* An fd given with -add-fd set=SET,fd=FD[,opaque=OPAQUE]. */
typedef struct {
    unsigned set;
    int fd; /* owned; -1 once handed on */
    char *opaque;
} GwQemuFd;

/* A -chardev, as query-chardev reports it. */
typedef struct {
    char *id;
    char *filename; /* QEMU's: "unix:PATH,server=on", "fd:N", "file" … */
} GwQemuChardev;

typedef struct {
    GwConfig *cfg;    /* what godwit runs (owned) */
    char *name;       /* -name guest=NAME, or NULL */
    char *uuid;       /* -uuid, or NULL */
    char *machine;    /* "none" or GW_QEMU_MACHINE_PC */
    bool kvm;         /* the accelerator list names kvm */
    char *pidfile;    /* -pidfile, or NULL */
    bool daemonize;   /* -daemonize */
    GPtrArray *fds;   /* GwQemuFd *: -add-fd, in order */
    GPtrArray *chars; /* GwQemuChardev *: -chardev, in order */
} GwQemuCli;

/* Whether argv is in QEMU's grammar: argv[1] is a QEMU option godwit
 * knows (single dash, as libvirt writes them). */
bool gw_qemu_cli_detect(int argc, char **argv);

/*
 * Parses and checks the whole command line.  Returns the translation
 * (free with gw_qemu_cli_free) or NULL with *errp set to one line that
 * names the option ("-machine q35: …").  -add-fd's fds are checked to be
 * open and become the struct's; nothing else is opened or created.
 */
GwQemuCli *gw_qemu_cli_parse(int argc, char **argv, GError **errp);

/* Closes every fd still owned (-add-fd, the monitor's) and frees. */
void gw_qemu_cli_free(GwQemuCli *q);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwQemuCli, gw_qemu_cli_free)

/* The -add-fd entry of set `set` usable for writing, or NULL. */
GwQemuFd *gw_qemu_cli_fdset_writable(GwQemuCli *q, unsigned set);

/*
 * Runs godwit from a QEMU command line (main() calls it when
 * gw_qemu_cli_detect says so): parse, -daemonize, build the VM and its
 * monitor, write -pidfile, serve until the VM ends.  Returns the process
 * exit status; errors are printed on stderr as "godwit: …".
 */
int gw_qemu_main(int argc, char **argv);
