/* A vDPA disk's driver for the migration tests (mig-blk-io.h). */
#include <string.h>
#include "mig-blk-io.h"

#define T GW_TEST_VM_WAIT_MS

void
io_sector_pattern(uint8_t *buf, uint64_t sector)
{
    for (unsigned k = 0; k < 512; k++) {
        buf[k] = (uint8_t)(sector * 37 + k * 3 + 1);
    }
}

/* What the device wrote into guest RAM on the source (read data of the
 * requests completed there) is in the destination's RAM. */
void
assert_device_writes_moved(Io *io, GwQt *dst)
{
    unsigned checked = 0;

    for (unsigned i = 0; i < IO_SLOTS; i++) {
        uint8_t data[512], want[512];
        if (io->head[i] >= 0 || io->last_read[i] < 0) {
            continue; /* in flight, or last a write */
        }
        gw_qt_memread(dst, io->area + i * IO_SLOT + 512, data, 512);
        io_sector_pattern(want, (uint64_t)io->last_read[i]);
        g_assert_cmpmem(data, 512, want, 512);
        checked++;
    }
    if (!checked) {
        for (unsigned i = 0; i < IO_SLOTS; i++) {
            g_test_message("slot %u head %d last_read %" G_GINT64_FORMAT, i,
                           io->head[i], io->last_read[i]);
        }
    }
    g_assert_cmpuint(checked, >, 0);
}

/* A write of `sector`'s pattern, or a read of it, in free slot `i`. */
void
io_submit(Io *io, unsigned i, uint64_t sector, bool read)
{
    uint64_t at = io->area + i * IO_SLOT;
    uint32_t hdr[4] = {read ? 0 : 1, 0, (uint32_t)sector,
                       (uint32_t)(sector >> 32)};
    uint8_t data[512];
    const GwQVirtioBuf b[3] = {{at + io->dma, 16, false},
                               {at + io->dma + 512, 512, read},
                               {at + io->dma + 16, 1, true}};

    io_sector_pattern(data, sector);
    if (read) {
        memset(data, 0, sizeof(data));
    }
    gw_qt_memwrite(io->qt, at, hdr, sizeof(hdr));
    gw_qt_memwrite(io->qt, at + 512, data, sizeof(data));
    gw_qt_writeb(io->qt, at + 16, 0xff);
    io->head[i] = gw_qvirtio_vq_add(io->vd, 0, b, 3);
    io->sector[i] = sector;
    io->read[i] = read;
    io->submitted++;
    gw_qvirtio_vq_kick(io->vd, 0);
}

/* Takes every completion there is: each must be a request in flight
 * (completed once), status OK, a read's data the sector's pattern. */
void
io_reap(Io *io)
{
    uint32_t id, len;

    while (gw_qvirtio_vq_poll(io->vd, 0, &id, &len)) {
        unsigned i = 0;
        uint8_t data[512], want[512];
        while (i < IO_SLOTS && io->head[i] != (int)id) {
            i++;
        }
        g_assert_cmpuint(i, <, IO_SLOTS); /* not a duplicate */
        g_assert_cmpuint(gw_qt_readb(io->qt, io->area + i * IO_SLOT + 16), ==,
                         0);
        if (io->read[i]) {
            gw_qt_memread(io->qt, io->area + i * IO_SLOT + 512, data, 512);
            io_sector_pattern(want, io->sector[i]);
            g_assert_cmpmem(data, 512, want, 512);
        }
        io->head[i] = -1;
        io->last_read[i] = io->read[i] ? (int64_t)io->sector[i] : -1;
        io->completed++;
    }
}

int
io_free_slot(Io *io)
{
    for (unsigned i = 0; i < IO_SLOTS; i++) {
        if (io->head[i] < 0) {
            return (int)i;
        }
    }
    return -1;
}

/* Until every request in flight completed (bounded). */
void
io_drain(Io *io)
{
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;

    while (io->completed < io->submitted) {
        io_reap(io);
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
    }
}

void
io_read_back(Io *io, uint64_t n)
{
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;
    int slot;

    for (uint64_t s = 0; s < n; s++) {
        while ((slot = io_free_slot(io)) < 0) {
            io_reap(io);
            g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        }
        io_submit(io, (unsigned)slot, s, true);
    }
    io_drain(io);
}

uint64_t
io_during_precopy(Io *io)
{
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;
    uint64_t next = IO_SLOTS;
    int slot;

    while (next < 2 * IO_WRITES) {
        if (g_get_monotonic_time() > deadline) {
            g_error("stuck: %u of %u completed, next %" G_GUINT64_FORMAT,
                    io->completed, io->submitted, next);
        }
        io_reap(io);
        if ((slot = io_free_slot(io)) >= 0) {
            bool read = next >= IO_WRITES;
            io_submit(io, (unsigned)slot, read ? next - IO_WRITES : next, read);
            next++;
        }
    }
    /* Two slots keep what the device read into them; two reads stay in
     * flight into the switch-over (completed when the device suspends,
     * taken up on the destination). */
    io_drain(io);
    for (unsigned i = 0; i < IO_SLOTS; i++) {
        io_submit(io, i, 3 + i, true);
    }
    io_drain(io);
    io_submit(io, 0, 1, true);
    io_submit(io, 1, 2, true);
    return next;
}

void
io_on_destination(Io *io, GwTestVm *dst)
{
    assert_device_writes_moved(io, dst->qt);
    io->qt = dst->qt;
    gw_qvirtio_set_qt(io->vd, dst->qt);
    io_drain(io);
    io_read_back(io, IO_WRITES);
    g_assert_cmpuint(io->completed, ==, io->submitted);
}
