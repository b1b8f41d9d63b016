/*
 * Guest RAM from RAM and ZERO_RANGE records, on the destination: pages
 * checked against this VM's RAM, data written with pwritev into the
 * memfd where guest RAM is its pages, zeroes written only where the
 * memfd holds data (its holes stay holes).  One sink per receiving
 * thread (the main stream's, each channel's); the records of distinct
 * sinks touch distinct pages within a round.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/uio.h>
#include <godwit/util.h>
#include "mig-job.h"

void
gw_mig_ram_sink_init(GwMigRamSink *rc, GwGuestMemory *mem, bool ram_file)
{
    memset(rc, 0, sizeof(*rc));
    rc->mem = mem;
    rc->ram_file = ram_file;
}

static bool
ram_error(GError **errp, uint64_t gpa)
{
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "migration: page at 0x%" G_GINT64_MODIFIER
                "x is outside this VM's RAM",
                gpa);
    return false;
}

/* Writes the gathered data pages into the memfd, one pwritev. */
static bool
flush_run(GwMigRamSink *rc, GError **errp)
{
    int first = 0;
    uint64_t off = rc->run_off;

    while (first < rc->run_n) {
        if (rc->write_lock) {
            g_mutex_lock(rc->write_lock);
        }
        ssize_t n = pwritev(rc->mem->fd, rc->run + first, rc->run_n - first,
                            (off_t)off);
        if (rc->write_lock) {
            g_mutex_unlock(rc->write_lock);
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return gw_error_errno(errp, n < 0 ? errno : EIO,
                                  "migration: writing guest RAM");
        }
        off += (uint64_t)n;
        while (first < rc->run_n && (size_t)n >= rc->run[first].iov_len) {
            n -= (ssize_t)rc->run[first++].iov_len;
        }
        if (n) { /* short inside a page */
            rc->run[first].iov_base = (uint8_t *)rc->run[first].iov_base + n;
            rc->run[first].iov_len -= (size_t)n;
        }
    }
    rc->run_n = 0;
    return true;
}

/*
 * Makes the memfd's [off, off + len) zero without touching its holes:
 * only pages in data extents are read, and written if not zero, so a
 * page that never held data stays unallocated.
 */
static void
zero_pages(GwMigRamSink *rc, uint64_t off, uint64_t len)
{
    uint64_t end = off + len, start = off, stop = end;

    while (off < end) {
        if (rc->ram_file &&
            !gw_mig_ram_next_data(rc->mem, off, end, &start, &stop)) {
            return;
        }
        for (uint64_t p = MAX(start, off); p < stop; p += GW_MEM_PAGE) {
            uint8_t *dst = rc->mem->host + p;
            if (!gw_mig_page_is_zero(dst)) {
                memset(dst, 0, GW_MEM_PAGE);
            }
        }
        off = stop;
    }
}

static bool
store_page(void *opaque, uint64_t gpa, const void *data, GError **errp)
{
    GwMigRamSink *rc = opaque;
    uint8_t *dst = gw_mem_ptr(rc->mem, gpa, GW_MEM_PAGE);
    uint64_t off;

    if (!dst) {
        return ram_error(errp, gpa);
    }
    off = (uint64_t)(dst - rc->mem->host);
    if (data && !rc->ram_file) {
        memcpy(dst, data, GW_MEM_PAGE);
        return true;
    }
    if (rc->run_n &&
        (!data || rc->run_n == GW_MIG_SINK_RUN ||
         off != rc->run_off + rc->run_n * GW_MEM_PAGE) &&
        !flush_run(rc, errp)) {
        return false;
    }
    if (!data) {
        zero_pages(rc, off, GW_MEM_PAGE);
        return true;
    }
    if (!rc->run_n) {
        rc->run_off = off;
    }
    rc->run[rc->run_n++] = (struct iovec){(void *)data, GW_MEM_PAGE};
    return true;
}

static bool
ram_record(GwMigRamSink *rc, const void *data, size_t len, GError **errp)
{
    bool ok = gw_mig_ram_batch_parse(data, len, store_page, rc, errp);

    if (!ok) {
        rc->run_n = 0;
        return false;
    }
    return !rc->run_n || flush_run(rc, errp);
}

static bool
zero_range_record(GwMigRamSink *rc, const void *data, size_t len, GError **errp)
{
    uint64_t gpa, n;
    uint8_t *dst;

    if (!gw_mig_zero_range_parse(data, len, &gpa, &n, errp)) {
        return false;
    }
    dst = gw_mem_ptr(rc->mem, gpa, n);
    if (!dst) {
        return ram_error(errp, gpa);
    }
    zero_pages(rc, (uint64_t)(dst - rc->mem->host), n);
    return true;
}

bool
gw_mig_ram_sink_record(GwMigRamSink *rc, uint32_t type, const void *data,
                       size_t len, GError **errp)
{
    if (type == GW_MIG_REC_RAM) {
        return ram_record(rc, data, len, errp);
    }
    g_assert(type == GW_MIG_REC_ZERO_RANGE);
    return zero_range_record(rc, data, len, errp);
}
