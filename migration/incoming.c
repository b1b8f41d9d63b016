/*
 * The receiver thread ("gw-mig-recv"): reads the source's stream into
 * this VM, which waits in inmigrate with its vCPUs parked.  RAM pages go
 * straight into guest RAM from here (nothing else touches it until the
 * guest runs); device sections are kept until the end and loaded on the
 * main thread, all or none.  The guest runs only after the source's
 * COMMIT (or, from a file, after everything loaded); any failure before
 * that ends this process with a non-zero status and the guest never ran.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/uio.h>
#include <godwit/machine.h>
#include <godwit/memory.h>
#include <godwit/util.h>
#include <godwit/vm.h>
#include "mig-job.h"

#define RUN_MAX 64 /* data pages gathered into one pwritev */

typedef struct {
    GwMigJob *j;
    GwGuestMemory *mem;
    GwMigReader *r;
    GwMigWriter *w;      /* the return path, or NULL */
    GPtrArray *sections; /* GBytes * */
    char *manifest;
    bool ram_file; /* gw_mig_ram_is_file: write RAM with pwritev */
    /* data pages of the current batch not yet written: consecutive in
     * the memfd from run_off, pointing into the record's payload */
    uint64_t run_off;
    int run_n;
    struct iovec run[RUN_MAX];
} Receiver;

/* ---- main-thread halves ---- */

static bool
check_manifest_main(GwMigJob *j, GError **errp)
{
    gw_mig_set_status(j->mig, GW_MIG_ACTIVE);
    return gw_vm_migration_check_manifest(gw_mig_vm(j->mig), j->manifest, errp);
}

static bool
load_main(GwMigJob *j, GError **errp)
{
    gw_mig_set_status(j->mig, GW_MIG_DEVICE);
    return gw_vm_migration_load(gw_mig_vm(j->mig), j->sections, errp);
}

static bool
run_main(GwMigJob *j, GError **errp)
{
    gw_vm_migration_incoming_done(gw_mig_vm(j->mig), j->source_running);
    return true;
}

/* ---- records ---- */

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
flush_run(Receiver *rc, GError **errp)
{
    int first = 0;
    uint64_t off = rc->run_off;

    while (first < rc->run_n) {
        ssize_t n = pwritev(rc->mem->fd, rc->run + first, rc->run_n - first,
                            (off_t)off);
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
zero_pages(Receiver *rc, uint64_t off, uint64_t len)
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
    Receiver *rc = opaque;
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
        (!data || rc->run_n == RUN_MAX ||
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
ram_record(Receiver *rc, const void *data, size_t len, GError **errp)
{
    bool ok = gw_mig_ram_batch_parse(data, len, store_page, rc, errp);

    if (!ok) {
        rc->run_n = 0;
        return false;
    }
    return !rc->run_n || flush_run(rc, errp);
}

static bool
zero_range_record(Receiver *rc, const void *data, size_t len, GError **errp)
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

static void
count_bytes(Receiver *rc)
{
    g_mutex_lock(&rc->j->lock);
    rc->j->stats.transferred = gw_mig_reader_bytes(rc->r);
    g_mutex_unlock(&rc->j->lock);
}

static bool
read_manifest(Receiver *rc, GError **errp)
{
    g_autoptr(GBytes) payload = NULL;
    uint32_t type;
    gsize len;
    const char *text;

    if (!gw_mig_reader_header(rc->r, errp) ||
        !gw_mig_read(rc->r, &type, &payload, errp)) {
        return false;
    }
    if (type != GW_MIG_REC_MANIFEST) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "migration: the stream starts with %s, not MANIFEST",
                    gw_mig_record_type_name(type));
        return false;
    }
    text = g_bytes_get_data(payload, &len);
    rc->j->manifest = g_strndup(text, len);
    if (strlen(rc->j->manifest) != len) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "migration: the manifest holds a NUL byte");
        return false;
    }
    return gw_mig_job_call_main(rc->j, check_manifest_main, errp) &&
           (!rc->w || gw_mig_write(rc->w, GW_MIG_REC_RP_READY, NULL, 0, errp));
}

static bool
end_record(Receiver *rc, GBytes *payload, GError **errp)
{
    gsize len;
    const uint8_t *p = g_bytes_get_data(payload, &len);

    if (len != 1 || p[0] > 1) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "migration: malformed END record");
        return false;
    }
    rc->j->source_running = p[0];
    rc->j->sections = g_steal_pointer(&rc->sections);
    return gw_mig_job_call_main(rc->j, load_main, errp);
}

/* RAM, DEVICE and ROUND_END records until END; false on anything else. */
static bool
read_state(Receiver *rc, GError **errp)
{
    for (;;) {
        g_autoptr(GBytes) payload = NULL;
        uint32_t type;
        gsize len;
        const void *data;

        if (!gw_mig_read(rc->r, &type, &payload, errp)) {
            return false;
        }
        data = g_bytes_get_data(payload, &len);
        count_bytes(rc);
        switch (type) {
        case GW_MIG_REC_RAM:
            if (!ram_record(rc, data, len, errp)) {
                return false;
            }
            break;
        case GW_MIG_REC_ZERO_RANGE:
            if (!zero_range_record(rc, data, len, errp)) {
                return false;
            }
            break;
        case GW_MIG_REC_DEVICE:
            g_ptr_array_add(rc->sections, g_steal_pointer(&payload));
            break;
        case GW_MIG_REC_ROUND_END:
            g_mutex_lock(&rc->j->lock);
            rc->j->stats.passes++;
            g_mutex_unlock(&rc->j->lock);
            break;
        case GW_MIG_REC_END:
            return end_record(rc, payload, errp);
        default:
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "migration: unexpected %s record (type %u)",
                        gw_mig_record_type_name(type), type);
            return false;
        }
    }
}

/* With a return path: say so, then wait for the source's go-ahead. */
static bool
confirm(Receiver *rc, GError **errp)
{
    g_autoptr(GBytes) payload = NULL;
    uint32_t type;

    if (!rc->w) {
        return true;
    }
    if (!gw_mig_write(rc->w, GW_MIG_REC_RP_OK, NULL, 0, errp)) {
        return false;
    }
    if (!gw_mig_read(rc->r, &type, &payload, errp)) {
        g_prefix_error(errp, "migration: no COMMIT from the source: ");
        return false;
    }
    if (type != GW_MIG_REC_COMMIT) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "migration: expected COMMIT, got %s",
                    gw_mig_record_type_name(type));
        return false;
    }
    return true;
}

/* Best effort: the source shows the user this reason. */
static void
tell_source(Receiver *rc, const GError *err)
{
    if (rc->w && err) {
        gw_mig_write(rc->w, GW_MIG_REC_RP_ERROR, err->message,
                     strlen(err->message), NULL);
    }
}

gpointer
gw_mig_in_thread(gpointer data)
{
    GwMigJob *j = data;
    GwMachine *m = gw_vm_machine(gw_mig_vm(j->mig));
    Receiver rc = {.j = j, .mem = gw_machine_memory(m)};

    rc.ram_file = gw_mig_ram_is_file(rc.mem);
    g_autoptr(GError) err = NULL;
    bool ok;

    rc.r = gw_mig_reader_new(j->fd);
    rc.w = j->return_path ? gw_mig_writer_new(j->fd) : NULL;
    rc.sections = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    ok = (!rc.w || gw_mig_writer_header(rc.w, &err)) &&
         read_manifest(&rc, &err) && read_state(&rc, &err) &&
         confirm(&rc, &err) && gw_mig_job_call_main(j, run_main, &err);
    if (!ok) {
        tell_source(&rc, err);
    }
    g_clear_pointer(&rc.sections, g_ptr_array_unref);
    gw_mig_reader_free(rc.r);
    gw_mig_writer_free(rc.w);
    gw_mig_job_finish(j, ok, err);
    return NULL;
}
