/* A vDPA disk's driver for the migration tests (mig-blk-io.h). */
#include <string.h>
#include <godwit/util.h>
#include "mig-blk-io.h"
#include "mig-util.h"

#define T      GW_TEST_VM_WAIT_MS
#define CANARY 0x5a

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

void
io_lone_prepare(Io *io)
{
    size_t len;

    g_assert_cmphex(gw_qvirtio_data_area(io->vd, &len), ==, io->area);
    g_assert_cmpuint(len, >=, IO_LONE + 0x1000);
    gw_qt_memset(io->qt, io->area + IO_LONE, CANARY, 0x1000);
}

/* Until the source's pre-copy has sent IO_LONE_AFTER bytes. */
static void
wait_transferred(GwTestVm *src)
{
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;

    for (;;) {
        g_autoptr(json_object) r = query_migrate(src);
        json_object *ram = json_object_object_get(r, "ram");
        g_assert_cmpstr(status_of(r, "status"), ==, "active");
        if (json_object_get_int64(json_object_object_get(ram, "transferred")) >=
            IO_LONE_AFTER) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(5 * 1000); /* polling query-migrate, bounded */
    }
}

void
io_lone_read(Io *io, GwTestVm *src, uint64_t lone_dma)
{
    uint64_t at = io->area;
    uint32_t hdr[4] = {0, 0, 0, 0};
    const GwQVirtioBuf b[3] = {{at + io->dma, 16, false},
                               {lone_dma, 512, true},
                               {at + io->dma + 16, 1, true}};
    uint8_t data[512], want[512];
    uint32_t id, len;

    wait_transferred(src);
    io_drain(io);
    gw_qt_memwrite(io->qt, at, hdr, sizeof(hdr));
    gw_qt_writeb(io->qt, at + 16, 0xff);
    gw_qvirtio_vq_add(io->vd, 0, b, 3);
    gw_qvirtio_vq_kick(io->vd, 0);
    g_assert_true(gw_qvirtio_vq_wait(io->vd, 0, T, &id, &len));
    io->submitted++; /* a request of the ring's, done */
    io->completed++;
    g_assert_cmpuint(gw_qt_readb(io->qt, at + 16), ==, 0);
    gw_qt_memread(io->qt, at + IO_LONE, data, sizeof(data));
    io_sector_pattern(want, 0);
    g_assert_cmpmem(data, sizeof(data), want, sizeof(want));
}

void
io_assert_lone_read_moved(Io *io, GwTestVm *vm)
{
    uint8_t page[0x1000], want[0x1000];

    memset(want, CANARY, sizeof(want));
    io_sector_pattern(want, 0);
    gw_qt_memread(vm->qt, io->area + IO_LONE, page, sizeof(page));
    g_assert_cmpmem(page, sizeof(page), want, sizeof(want));
}
