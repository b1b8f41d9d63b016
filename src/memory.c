#include <fcntl.h>
#include <linux/memfd.h>
#include <sys/mman.h>
#include <string.h>
#include <godwit/memory.h>
#include <godwit/util.h>

#define HUGEPAGE_SIZE (2ull << 20)

static void
layout(GwGuestMemory *mem)
{
    uint64_t low = MIN(mem->size, GW_MEM_LOW_END);

    mem->regions[0] = (GwMemRegion){0, low, 0};
    mem->n_regions = 1;
    if (mem->size > low) {
        mem->regions[1] = (GwMemRegion){GW_MEM_HIGH_GPA, mem->size - low, low};
        mem->n_regions = 2;
    }
}

/*
 * A hugetlbfs memfd fails only when a page is first touched, by SIGBUS:
 * reserve every page now so a missing reservation is a clear error.
 */
static bool
reserve(GwGuestMemory *mem, GError **errp)
{
    int err = posix_fallocate(mem->fd, 0, (off_t)mem->size);

    if (err == 0) {
        return true;
    }
    if (err == ENOSPC || err == ENOMEM) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "--memory: hugepages=on: not enough 2 MiB huge pages "
                    "reserved for %" G_GUINT64_FORMAT " MiB (see "
                    "/proc/sys/vm/nr_hugepages)",
                    mem->size >> 20);
        return false;
    }
    return gw_error_errno(errp, err,
                          "--memory: cannot reserve %" G_GUINT64_FORMAT
                          " MiB of huge pages",
                          mem->size >> 20);
}

GwGuestMemory *
gw_mem_new(uint64_t size, bool hugepages, bool shared, GError **errp)
{
    g_autoptr(GwGuestMemory) mem = g_new0(GwGuestMemory, 1);
    unsigned flags = MFD_CLOEXEC | (hugepages ? MFD_HUGETLB : 0);

    mem->fd = -1;
    mem->size = size;
    mem->hugepages = hugepages;
    if (size == 0 || size % (hugepages ? HUGEPAGE_SIZE : 4096)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "--memory: size must be a multiple of %s",
                    hugepages ? "2 MiB with hugepages=on" : "4 KiB");
        return NULL;
    }
    mem->fd = memfd_create("godwit-ram", flags);
    if (mem->fd < 0) {
        return gw_error_errno(errp, errno, "--memory: memfd_create"), NULL;
    }
    if (ftruncate(mem->fd, (off_t)size) < 0) {
        return gw_error_errno(errp, errno, "--memory: cannot size guest RAM"),
               NULL;
    }
    if (hugepages && !reserve(mem, errp)) {
        return NULL;
    }
    mem->host = mmap(NULL, size, PROT_READ | PROT_WRITE,
                     shared ? MAP_SHARED : MAP_PRIVATE, mem->fd, 0);
    if (mem->host == MAP_FAILED) {
        mem->host = NULL;
        return gw_error_errno(errp, errno, "--memory: cannot map guest RAM"),
               NULL;
    }
    madvise(mem->host, size, MADV_DONTDUMP);
    layout(mem);
    mem->dirty = g_new0(unsigned long, gw_mem_dirty_words(mem));
    return g_steal_pointer(&mem);
}

void
gw_mem_free(GwGuestMemory *mem)
{
    if (!mem) {
        return;
    }
    if (mem->host) {
        munmap(mem->host, mem->size);
    }
    if (mem->fd >= 0) {
        close(mem->fd);
    }
    g_free(mem->dirty);
    g_free(mem);
}

void *
gw_mem_ptr(const GwGuestMemory *mem, uint64_t gpa, uint64_t len)
{
    for (guint i = 0; i < mem->n_regions; i++) {
        const GwMemRegion *r = &mem->regions[i];
        if (gpa >= r->gpa && gpa - r->gpa <= r->size &&
            len <= r->size - (gpa - r->gpa)) {
            return mem->host + r->offset + (gpa - r->gpa);
        }
    }
    return NULL;
}

bool
gw_mem_write(GwGuestMemory *mem, uint64_t gpa, const void *src, uint64_t len)
{
    void *p = gw_mem_ptr(mem, gpa, len);
    if (p) {
        memcpy(p, src, len);
        gw_mem_mark_dirty(mem, gpa, len);
    }
    return p != NULL;
}

bool
gw_mem_read(const GwGuestMemory *mem, uint64_t gpa, void *dst, uint64_t len)
{
    const void *p = gw_mem_ptr(mem, gpa, len);
    if (p) {
        memcpy(dst, p, len);
    }
    return p != NULL;
}

/* ---- the VMM's dirty bitmap ---- */

#define WORD_BITS (8 * sizeof(unsigned long))

size_t
gw_mem_dirty_words(const GwGuestMemory *mem)
{
    return (mem->size / GW_MEM_PAGE + WORD_BITS - 1) / WORD_BITS;
}

/* The memfd offset of `gpa`, which must be RAM. */
static uint64_t
ram_offset(const GwGuestMemory *mem, uint64_t gpa)
{
    return (uint64_t)((uint8_t *)gw_mem_ptr(mem, gpa, 0) - mem->host);
}

void
gw_mem_mark_dirty(GwGuestMemory *mem, uint64_t gpa, uint64_t len)
{
    uint64_t first, last;

    if (!len || !g_atomic_int_get(&mem->tracking) ||
        !gw_mem_ptr(mem, gpa, len)) {
        return;
    }
    first = ram_offset(mem, gpa) / GW_MEM_PAGE;
    last = (ram_offset(mem, gpa) + len - 1) / GW_MEM_PAGE;
    for (uint64_t p = first; p <= last; p++) {
        __atomic_fetch_or(&mem->dirty[p / WORD_BITS], 1ul << (p % WORD_BITS),
                          __ATOMIC_RELAXED);
    }
}

void
gw_mem_dirty_start(GwGuestMemory *mem)
{
    for (size_t i = 0; i < gw_mem_dirty_words(mem); i++) {
        __atomic_store_n(&mem->dirty[i], 0, __ATOMIC_RELAXED);
    }
    g_atomic_int_set(&mem->tracking, 1);
}

void
gw_mem_dirty_stop(GwGuestMemory *mem)
{
    g_atomic_int_set(&mem->tracking, 0);
}

uint64_t
gw_mem_dirty_collect(GwGuestMemory *mem, unsigned long *out)
{
    uint64_t n = 0;

    for (size_t i = 0; i < gw_mem_dirty_words(mem); i++) {
        unsigned long w =
            __atomic_exchange_n(&mem->dirty[i], 0, __ATOMIC_ACQ_REL);
        n += (uint64_t)__builtin_popcountl(w & ~out[i]);
        out[i] |= w;
    }
    return n;
}
