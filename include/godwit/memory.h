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
#include <glib.h>

/* RAM below the hole ends here; the hole holds PCI BARs, ECAM, APICs. */
#define GW_MEM_LOW_END  0xC0000000ull
#define GW_MEM_HIGH_GPA 0x100000000ull

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
    guint n_regions;
    GwMemRegion regions[2];
} GwGuestMemory;

/*
 * Creates `size` bytes of guest RAM (a multiple of 4 KiB; of 2 MiB with
 * hugepages).  `shared` maps it MAP_SHARED (vDPA and migration need it).
 * NULL with *errp set on failure: no huge pages reserved, size over
 * RLIMIT, mmap failure — the message says which and what to do.
 */
GwGuestMemory *gw_mem_new(uint64_t size, bool hugepages, bool shared,
                          GError **errp);
void gw_mem_free(GwGuestMemory *mem);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwGuestMemory, gw_mem_free)

/*
 * The host address of [gpa, gpa + len) if it lies wholly inside one RAM
 * region, else NULL.  Never faults on guest-controlled input.
 */
void *gw_mem_ptr(const GwGuestMemory *mem, uint64_t gpa, uint64_t len);

/* Copies into / out of guest RAM; false if the range is not all RAM. */
bool gw_mem_write(GwGuestMemory *mem, uint64_t gpa, const void *src,
                  uint64_t len);
bool gw_mem_read(const GwGuestMemory *mem, uint64_t gpa, void *dst,
                 uint64_t len);
