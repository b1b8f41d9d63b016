/*
 * guest-vm: a godwit process running the real test guest on KVM, under
 * QMP, its serial line in a file; for the migration tests that need
 * vCPUs (test-migration-kvm.c, test-migration-vdpa-kvm.c).  Every wait is
 * bounded by T and fails the test when it runs out.
 */
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <json-c/json.h>
#include <godwit/qmp-client.h>
#include <godwit/util.h>

#define T       120000 /* ms; guest code is emulated on PVM: be generous */
#define CMDLINE "dirty pages=16 rounds=0"

typedef struct {
    char *dir, *serial, *qmp;
    const char *netns;   /* run inside this network namespace, or NULL */
    const char *cmdline; /* the guest's, or NULL for CMDLINE */
    /* More godwit arguments, NULL-terminated, or NULL; "@DIR@" in them
     * is replaced by the VM's own directory (its runtime dir). */
    const char *const *extra;
    GPid pid;
    GwQmpConn *c;
} Vm;

/* Starts godwit with `cpus` (--cpus), and --incoming `incoming` unless
 * NULL, in a new directory; connected and negotiated on return. */
void vm_start(Vm *vm, const char *cpus, const char *incoming);
/* Stops a started VM (SIGTERM, then SIGKILL), removes its directory. */
void vm_stop(Vm *vm);
/* Frees what vm_start made of a VM whose process is already reaped. */
void vm_forget(Vm *vm);

/* `cmd` with `args` (JSON text or NULL): its "return", owned by the
 * caller; anything else fails the test. */
json_object *qmp(Vm *vm, const char *cmd, const char *args);
void qmp_void(Vm *vm, const char *cmd, const char *args);
/* The string member `key` of `cmd`'s answer, or NULL; g_free it. */
char *field(Vm *vm, const char *cmd, const char *key);

/* How often `needle` occurs in the file at `path` (0 if unreadable). */
guint count(const char *path, const char *needle);
/* Until `path` holds `want` lines with `needle`; fails on "GUEST fail". */
void wait_lines(const char *path, const char *needle, guint want);
/* wait_lines for the dirty workload's "GUEST dirty round=". */
void wait_rounds(const char *path, guint want);

/* Until query-migrate's status is "completed" (fails on "failed"). */
void wait_completed(Vm *vm);
/* Until query-migrate's status is `want`. */
void wait_migration(Vm *vm, const char *want);
/* Until query-status's status is `want`. */
void wait_state(Vm *vm, const char *want);
/* The "events" capability on. */
void events_on(Vm *vm);
/* After a migration of the dirty workload: the source in postmigrate
 * and silent, the destination running three more rounds, no failure. */
void check_moved(Vm *src, Vm *dst);
