/*
 * A test's driver of a vDPA disk under qtest (the migration tests play
 * its guest): up to IO_SLOTS requests (header, one 512-byte sector,
 * status) in flight on queue 0, each slot IO_SLOT bytes of the
 * qvirtio data area; every completion checked (a request in flight,
 * taken once, status OK, a read's data the sector's pattern).  Behind
 * an IOMMU the device is given each buffer at its guest-physical
 * address + `dma` (the IOVA the test mapped it at).  Every call
 * asserts; waits are bounded by GW_TEST_VM_WAIT_MS.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include "qtest-client.h"
#include "qtest-vm.h"
#include "qvirtio.h"

#define IO_SLOTS  4 /* requests in flight at most (3 descriptors each) */
#define IO_SLOT   0x400
#define IO_WRITES 24 /* sectors written, then read back */

typedef struct {
    GwQVirtio *vd;
    GwQt *qt;
    uint64_t area;
    uint64_t dma;       /* the device's address of area's byte 0, minus area */
    int head[IO_SLOTS]; /* -1: free */
    uint64_t sector[IO_SLOTS];
    bool read[IO_SLOTS];
    int64_t last_read[IO_SLOTS]; /* what the device last wrote there */
    unsigned completed, submitted;
} Io;

/* The pattern a write of `sector` carries (512 bytes). */
void io_sector_pattern(uint8_t *buf, uint64_t sector);
/* A write of `sector`'s pattern, or a read of it, in free slot `i`. */
void io_submit(Io *io, unsigned i, uint64_t sector, bool read);
/* Takes every completion there is. */
void io_reap(Io *io);
/* A free slot, or -1. */
int io_free_slot(Io *io);
/* Until every request in flight completed (bounded). */
void io_drain(Io *io);
/* Reads sectors 0 … n-1 back (each checked as it completes), then
 * drains; all of it bounded. */
void io_read_back(Io *io, uint64_t n);
/* What the device wrote into guest RAM on the source (read data of the
 * requests completed there) is in `dst`'s RAM. */
void assert_device_writes_moved(Io *io, GwQt *dst);
/* During pre-copy (the device on shadow virtqueues): writes of sectors
 * IO_SLOTS … IO_WRITES-1 and reads of all of them; then two reads left
 * in flight into the switch-over (slots 0 and 1, sectors 1 and 2), the
 * other slots holding what the device read.  The requests made. */
uint64_t io_during_precopy(Io *io);
/* The destination goes on with the same rings: what the device wrote on
 * the source is in dst's RAM, what was in flight completes there, once,
 * and new requests read back what was written. */
void io_on_destination(Io *io, GwTestVm *dst);

/*
 * The lone read: the page at area + IO_LONE holds a canary from before
 * the migration (io_lone_prepare).  Once the first pass has carried it
 * (the pass goes up the guest-physical addresses, and the page is below
 * all but a few tables, well inside IO_LONE_AFTER bytes; the ballast
 * alone is 1 MiB), io_lone_read has the device read sector 0 into its
 * first 512 bytes, at device address `lone_dma`, with nothing in flight
 * (slot 0's header and status, at area + dma).  Nothing writes that page
 * again: only the relay's dirty mark carries what the device wrote,
 * which io_assert_lone_read_moved checks in a destination's RAM.  The
 * read counts in `submitted` and `completed`.
 */
#define IO_LONE       0x1000
#define IO_LONE_AFTER 300000 /* bytes sent first: 2 s at 150 kB/s */
void io_lone_prepare(Io *io);
void io_lone_read(Io *io, GwTestVm *src, uint64_t lone_dma);
void io_assert_lone_read_moved(Io *io, GwTestVm *vm);
