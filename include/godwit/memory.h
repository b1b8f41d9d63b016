/*
 * memory: guest RAM.  One memfd (hugetlbfs pages with hugepages=on),
 * mapped once into this process, laid out as up to two guest-physical
 * regions around the PCI hole below 4 GiB.  The fd stays open: the vDPA
 * simulator reaches guest RAM through this mapping's addresses and
 * migration sends it.
 *
 * Threads: created and freed on the main thread; lookups are read-only
 * and may run on any thread.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <glib.h>

/* RAM below the hole ends here; the hole holds PCI BARs, ECAM, APICs. */
#define GW_MEM_LOW_END  0xC0000000ull
#define GW_MEM_HIGH_GPA 0x100000000ull
#define GW_MEM_PAGE     4096ull /* the unit of dirty tracking and migration */

typedef struct {
    uint64_t gpa;
    uint64_t size;
    uint64_t offset; /* in the memfd and in the host mapping */
} GwMemRegion;

typedef struct {
    int fd;
    uint8_t *host; /* the whole memfd, mapped */
    uint64_t size;
    bool hugepages;
    bool shared;    /* mapped MAP_SHARED */
    bool read_only; /* mapped read-only: handed over, not yet ours */
    guint n_regions;
    GwMemRegion regions[2];
    /* The VMM's own writes while tracking, one bit per 4 KiB page of the
     * memfd (gw_mem_dirty_*); atomics only. */
    unsigned long *dirty;
    int tracking;
} GwGuestMemory;

/*
 * Creates `size` bytes of guest RAM (a multiple of 4 KiB; of 2 MiB with
 * hugepages).  `shared` maps it MAP_SHARED (vDPA and migration need it).
 * NULL with *errp set on failure: no huge pages reserved, size over
 * RLIMIT, mmap failure — the message says which and what to do.
 */
GwGuestMemory *gw_mem_new(uint64_t size, bool hugepages, bool shared,
                          GError **errp);

/* The memfd's seals from its creation on: its size never changes. */
#define GW_MEM_SEALS (F_SEAL_SHRINK | F_SEAL_GROW)
void gw_mem_free(GwGuestMemory *mem);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwGuestMemory, gw_mem_free)

/*
 * Handing guest RAM to another process on this host (cpr-transfer):
 * the source sends its memfd, the destination maps it at its own guest
 * RAM's address instead of its own pages.  Main thread.
 *
 * gw_mem_can_hand_over: whether this RAM can be: a memfd mapped shared,
 * not hugetlbfs (else a message naming the --memory option).
 *
 * gw_mem_check_handover: whether `fd` (received, untrusted) is RAM this
 * VM can use: a memfd on tmpfs of exactly mem->size bytes, sealed with
 * GW_MEM_SEALS and not against writing, open read-write.  It only looks.
 *
 * gw_mem_adopt: maps `fd` read-only where guest RAM is (one mremap, so
 * no address changes), drops this VM's own pages and takes `fd`; on
 * failure the caller keeps `fd` (and this VM, which will not run, may
 * have lost its own mapping).  The pages are the source's until
 * gw_mem_take_ownership: nothing here may write them, and a write
 * through the mapping faults instead of reaching the source's guest.
 *
 * gw_mem_take_ownership: makes the mapping writable (after COMMIT).
 *
 * gw_mem_give_up: the source's side after COMMIT: its mapping becomes
 * read-only, so nothing left in this process can write the pages the
 * other one now runs (a write faults here instead).
 */
bool gw_mem_can_hand_over(const GwGuestMemory *mem, GError **errp);
bool gw_mem_check_handover(const GwGuestMemory *mem, int fd, GError **errp);
bool gw_mem_adopt(GwGuestMemory *mem, int fd, GError **errp);
bool gw_mem_take_ownership(GwGuestMemory *mem, GError **errp);
bool gw_mem_give_up(GwGuestMemory *mem, GError **errp);

/*
 * The host address of [gpa, gpa + len) if it lies wholly inside one RAM
 * region, else NULL.  Never faults on guest-controlled input.
 */
void *gw_mem_ptr(const GwGuestMemory *mem, uint64_t gpa, uint64_t len);

/*
 * Copies into / out of guest RAM; false if the range is not all RAM.
 * gw_mem_write marks what it wrote dirty (gw_mem_mark_dirty).
 */
bool gw_mem_write(GwGuestMemory *mem, uint64_t gpa, const void *src,
                  uint64_t len);
bool gw_mem_read(const GwGuestMemory *mem, uint64_t gpa, void *dst,
                 uint64_t len);

/*
 * The VMM-side dirty bitmap: every write godwit itself makes into guest
 * RAM (gw_mem_write, the kernel loader, soft MSIs, qtest) is marked while
 * tracking is on, so migration can resend it; KVM's dirty log covers what
 * vCPUs write.  Bit i stands for the 4 KiB page at memfd offset i * 4096
 * (GwMemRegion.offset maps it to a guest-physical address).  A vDPA
 * device's own writes are not here: hardware cannot mark it.
 *
 * Threads: mark from any thread; start, stop and collect from one
 * (the migration's) at a time.
 */
size_t gw_mem_dirty_words(const GwGuestMemory *mem);

/* Marks the pages of [gpa, gpa + len) when tracking; ignores non-RAM. */
void gw_mem_mark_dirty(GwGuestMemory *mem, uint64_t gpa, uint64_t len);

/* Clears the bitmap and starts marking. */
void gw_mem_dirty_start(GwGuestMemory *mem);

/* Stops marking (what is marked stays until collected). */
void gw_mem_dirty_stop(GwGuestMemory *mem);

/*
 * ORs the marked pages into `out` (gw_mem_dirty_words long) and clears
 * them, atomically per word; returns how many pages were newly set.
 */
uint64_t gw_mem_dirty_collect(GwGuestMemory *mem, unsigned long *out);
