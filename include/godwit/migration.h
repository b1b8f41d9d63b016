/*
 * migration: moving a running VM to another godwit, QEMU's way and with
 * QEMU's QMP names.  The source pre-copies guest RAM while the guest
 * runs (the VMM's dirty bitmap and, with KVM, KVM's dirty log say what
 * to resend), then pauses, sends the last pages and every device's
 * state, and waits for the destination to say it loaded everything
 * (GW_MIG_REC_RP_OK) before it tells it to run (GW_MIG_REC_COMMIT) and
 * enters postmigrate.  Any failure before that leaves the source as it
 * was: running if it ran, its devices resumed, nothing of the guest
 * changed.  The stream is docs/migration.md.
 *
 * Threads: gw_mig_* are called on the main thread, which owns the
 * migration state and emits MIGRATION events.  Each migration runs one
 * thread (the sender or the receiver) that does all of its I/O and
 * hands work that touches the VM (pausing, device state) to the main
 * thread, waiting for the answer.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <json-c/json.h>

/* QEMU's MigrationStatus values godwit enters (gw_mig_status_name). */
typedef enum {
    GW_MIG_NONE,
    GW_MIG_SETUP,
    GW_MIG_ACTIVE,
    GW_MIG_PRE_SWITCHOVER,
    GW_MIG_DEVICE,
    GW_MIG_COMPLETED,
    GW_MIG_FAILED,
    GW_MIG_CANCELLING,
    GW_MIG_CANCELLED,
} GwMigStatus;

const char *gw_mig_status_name(GwMigStatus s);

typedef struct GwVm GwVm;
typedef struct GwMig GwMig;

/* The VM's migration controller; `vm` outlives it. */
GwMig *gw_mig_new(GwVm *vm);

/* Cancels what runs and joins its thread. */
void gw_mig_free(GwMig *mig);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwMig, gw_mig_free)

GwMigStatus gw_mig_status(const GwMig *mig);

/* Whether a migration (in or out) is between setup and its end: the
 * device set must not change meanwhile. */
bool gw_mig_is_running(const GwMig *mig);

/* Whether a cpr-transfer handed this VM's guest (its RAM) to another
 * process: this one may never run it again. */
bool gw_mig_handed_over(const GwMig *mig);

/*
 * Starts migrating out over `uri` (tcp:, unix:, file:), or over `fd`
 * when fd >= 0 (fd:NAME resolved by QMP; ownership passes here on
 * success, and stays with the caller, who closes it, on failure).
 * Refused while a migration runs, while the VM is waiting for one, and
 * while anything blocks migration (the reason says what).  The rest
 * happens on the sender thread; progress is in gw_mig_query.
 */
bool gw_mig_start(GwMig *mig, const char *uri, int fd, GError **errp);

/*
 * Waits for the source on `uri` (tcp:, unix: listen for one connection;
 * file: is read at once), or reads from `fd` when fd >= 0.  Only while
 * the VM is in inmigrate and nothing was received yet.
 */
bool gw_mig_incoming(GwMig *mig, const char *uri, int fd, GError **errp);

/* migrate_cancel: a no-op unless a migration runs (as QEMU). */
void gw_mig_cancel(GwMig *mig);

/* query-migrate's return value (caller owns). */
json_object *gw_mig_query(GwMig *mig);

/* Capabilities and parameters, checked against what godwit implements;
 * their QMP shapes (arrays / objects of QEMU's names). */
bool gw_mig_set_capabilities(GwMig *mig, json_object *caps, GError **errp);
json_object *gw_mig_query_capabilities(GwMig *mig);
bool gw_mig_set_parameters(GwMig *mig, json_object *params, GError **errp);
json_object *gw_mig_query_parameters(GwMig *mig);

/* migrate-continue from pre-switchover. */
bool gw_mig_continue(GwMig *mig, GError **errp);
