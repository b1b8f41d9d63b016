/*
 * Helpers of the migration e2e tests (test-migration.c,
 * test-migration-vdpa.c): QMP calls that must succeed, the MIGRATION
 * events and query-migrate statuses a test waits for, and the end of a
 * destination.  Every wait is bounded by GW_TEST_VM_WAIT_MS; every
 * helper asserts (they are for tests only).
 */
#pragma once

#include <stdbool.h>
#include <json-c/json.h>
#include "qtest-vm.h"

/* A QMP reply or return value that must be there and not an error. */
void json_put_ok(json_object *o);

/* The destination must end by itself with `code` (bounded wait). */
void reap(GwTestVm *vm, int code);
/* A destination we killed. */
void reap_killed(GwTestVm *vm);

/* A command that must succeed; its return dropped. */
void qmp_void(GwTestVm *vm, const char *cmd, const char *args);
/* o[key] as a string (owned by o), or NULL. */
const char *status_of(json_object *o, const char *key);
/* query-status's status (caller frees). */
char *run_state(GwTestVm *vm);

/* The events capability on, pause-before-switchover as `pause`. */
void set_caps(GwTestVm *vm, bool pause);
json_object *query_migrate(GwTestVm *vm);
/* Forgets the MIGRATION events of earlier migrations. */
void drain_events(GwTestVm *vm);
/* Waits for MIGRATION {status} on `vm`, skipping other statuses (and
 * failing on failed or completed unless wanted). */
void wait_status(GwTestVm *vm, const char *want);
/* Waits until query-migrate shows `want`; its reply (caller owns). */
json_object *poll_status(GwTestVm *vm, const char *want);

/* x-godwit-query-iommu's answer (caller owns). */
json_object *query_iommu(GwTestVm *vm);
/* The destination's IOMMU state is the source's, to the byte of
 * x-godwit-query-iommu's answer; the destination's (caller owns). */
json_object *assert_iommu_moved(GwTestVm *src, GwTestVm *dst);
