#include <fcntl.h>
#include <linux/magic.h>
#include <linux/memfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
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
    unsigned flags =
        MFD_CLOEXEC | MFD_ALLOW_SEALING | (hugepages ? MFD_HUGETLB : 0);

    mem->fd = -1;
    mem->size = size;
    mem->hugepages = hugepages;
    mem->shared = shared;
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
    /* Guest RAM never changes size: sealed so, a process it is handed to
     * (cpr-transfer) knows its mapping cannot lose pages under it. */
    if (fcntl(mem->fd, F_ADD_SEALS, GW_MEM_SEALS) < 0) {
        return gw_error_errno(errp, errno, "--memory: cannot seal guest RAM"),
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

/* ---- handing guest RAM to another process (cpr-transfer) ---- */

bool
gw_mem_can_hand_over(const GwGuestMemory *mem, GError **errp)
{
    if (!mem->shared || mem->hugepages) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "guest RAM cannot be handed over: it must be a memfd "
                    "mapped shared without huge pages (--memory %s is not)",
                    !mem->shared ? "shared=off" : "hugepages=on");
        return false;
    }
    return true;
}

/* A memfd's /proc/self/fd link reads "/memfd:NAME (deleted)". */
static bool
is_memfd(int fd)
{
    g_autofree char *link = g_strdup_printf("/proc/self/fd/%d", fd);
    g_autofree char *target = g_file_read_link(link, NULL);

    return target && g_str_has_prefix(target, "/memfd:");
}

static bool
bad_fd(GError **errp, const char *why)
{
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "the source's guest RAM fd: %s", why);
    return false;
}

bool
gw_mem_check_handover(const GwGuestMemory *mem, int fd, GError **errp)
{
    struct stat st;
    struct statfs sf;
    int seals = fcntl(fd, F_GET_SEALS), fl = fcntl(fd, F_GETFL);

    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !is_memfd(fd)) {
        return bad_fd(errp, "not a memfd");
    }
    if (fstatfs(fd, &sf) < 0 || sf.f_type != TMPFS_MAGIC) {
        return bad_fd(errp, "a memfd of huge pages (this VM has none)");
    }
    if ((uint64_t)st.st_size != mem->size) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "the source's guest RAM fd: %" G_GINT64_FORMAT
                    " bytes, this VM has %" G_GUINT64_FORMAT,
                    (gint64)st.st_size, mem->size);
        return false;
    }
    if (seals < 0 || (seals & GW_MEM_SEALS) != GW_MEM_SEALS) {
        return bad_fd(errp, "not sealed against shrinking and growing");
    }
    if (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) {
        return bad_fd(errp, "sealed against writing");
    }
    if (fl < 0 || (fl & O_ACCMODE) != O_RDWR) {
        return bad_fd(errp, "not open for reading and writing");
    }
    return true;
}

bool
gw_mem_adopt(GwGuestMemory *mem, int fd, GError **errp)
{
    void *p = mmap(NULL, mem->size, PROT_READ, MAP_SHARED, fd, 0);

    if (p == MAP_FAILED) {
        return gw_error_errno(errp, errno,
                              "migration: cannot map the source's guest RAM");
    }
    /* One step: the old pages go and the new ones take their address, so
     * every user of mem->host (KVM's slots, qtest) sees the source's. */
    if (mremap(p, mem->size, mem->size, MREMAP_MAYMOVE | MREMAP_FIXED,
               mem->host) == MAP_FAILED) {
        int err = errno;
        munmap(p, mem->size);
        return gw_error_errno(errp, err,
                              "migration: cannot map the source's guest RAM");
    }
    madvise(mem->host, mem->size, MADV_DONTDUMP);
    close(mem->fd);
    mem->fd = fd;
    mem->read_only = true;
    return true;
}

bool
gw_mem_take_ownership(GwGuestMemory *mem, GError **errp)
{
    if (mem->read_only &&
        mprotect(mem->host, mem->size, PROT_READ | PROT_WRITE) < 0) {
        return gw_error_errno(errp, errno,
                              "migration: cannot make guest RAM writable");
    }
    mem->read_only = false;
    return true;
}

bool
gw_mem_give_up(GwGuestMemory *mem, GError **errp)
{
    if (mprotect(mem->host, mem->size, PROT_READ) < 0) {
        return gw_error_errno(errp, errno,
                              "migration: cannot make guest RAM read-only");
    }
    mem->read_only = true;
    return true;
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
