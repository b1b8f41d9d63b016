/*
 * A slow pre-copy for the vDPA migration e2e tests
 * (test-migration-vdpa.c, test-migration-iommu.c): RAM in use that
 * makes the first pass take time, a migration that pauses before its
 * switch-over, and its end.  Every call asserts (tests only).
 */
#pragma once

#include "mig-util.h"
#include "qtest-vm.h"

/* RAM the vDPA migration tests write before migrating (BALLAST_SIZE
 * bytes at BALLAST) so that the first pass at 150 kB/s takes about
 * seven seconds: what a test does during pre-copy fits well inside it
 * even under a sanitizer on a loaded machine (and is checked to have,
 * assert_still_active). */
#define BALLAST      0x2000000ull
#define BALLAST_SIZE (1u << 20)
void write_ballast(GwQt *qt);
/* migrate to unix:DST/mig.sock at `bandwidth` bytes/s (0: unlimited),
 * pausing before the switch-over; returns once it is active. */
void begin_migration(GwTestVm *src, GwTestVm *dst, unsigned bandwidth);
/* From pre-switchover: continue, until both ends completed. */
void finish_migration(GwTestVm *src, GwTestVm *dst);
/* The migration of `src` is still active (pre-copy). */
void assert_still_active(GwTestVm *src);
