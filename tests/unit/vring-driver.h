/*
 * vring-driver: a tiny virtio split-ring driver for tests, driving a
 * vDPA device through the seam only, as a VMM's guest would.
 *
 * GwTestMem is "guest RAM": a memfd mapped MAP_SHARED (what VA vDPA
 * devices need), with a bump allocator handing out IOVA-addressed
 * buffers.  GwTestVring is one split virtqueue in that memory with its
 * kick and call eventfds.  A vring is used by one thread at a time.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <godwit/vdpa.h>

typedef struct {
    uint8_t *base;
    size_t size;
    uint64_t iova; /* IOVA of base[0] */
    size_t used;
    int fd;
} GwTestMem;

/* size bytes of memfd memory at IOVA `iova` (not mapped into a device). */
GwTestMem *gw_test_mem_new(size_t size, uint64_t iova);
void gw_test_mem_free(GwTestMem *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwTestMem, gw_test_mem_free)
/* Zeroed buffer of `len` bytes aligned to `align`; *iova receives its IOVA. */
void *gw_test_mem_alloc(GwTestMem *m, size_t len, size_t align, uint64_t *iova);
/* Host pointer of an IOVA inside m. */
void *gw_test_mem_ptr(GwTestMem *m, uint64_t iova);

typedef struct {
    uint64_t iova;
    uint32_t len;
    bool write; /* device-writable */
} GwTestBuf;

typedef struct {
    GwTestMem *mem;
    uint32_t idx;
    uint16_t num;
    struct vring_desc *desc;
    struct vring_avail *avail;
    struct vring_used *used;
    uint64_t desc_iova, avail_iova, used_iova;
    uint16_t free_head, num_free;
    uint16_t avail_idx; /* next avail index to publish */
    uint16_t last_used; /* next used entry to consume */
    int kick_fd, call_fd;
} GwTestVring;

GwTestVring *gw_test_vring_new(GwTestMem *m, uint32_t idx, uint16_t num);
void gw_test_vring_free(GwTestVring *vr);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwTestVring, gw_test_vring_free)

/* SET_VRING_NUM, BASE (base), ADDR, KICK, CALL, ENABLE(1). */
bool gw_test_vring_setup(GwTestVring *vr, GwVdpaBackend *b, uint16_t base,
                         GError **errp);

/* Publishes a chain (readable bufs first); false if the ring is full. */
bool gw_test_vring_add(GwTestVring *vr, const GwTestBuf *bufs, unsigned n,
                       uint16_t *head);
void gw_test_vring_kick(GwTestVring *vr);
/* Takes one used entry if there is one (frees its descriptors). */
bool gw_test_vring_get_used(GwTestVring *vr, uint16_t *id, uint32_t *len);
/* Same, waiting on the call fd up to timeout_ms. */
bool gw_test_vring_wait_used(GwTestVring *vr, int timeout_ms, uint16_t *id,
                             uint32_t *len);
/* The used index the device published. */
uint16_t gw_test_vring_used_idx(GwTestVring *vr);

/*
 * Full virtio init over the seam: SET_OWNER, backend features (all
 * offered), ACK|DRIVER, SET_FEATURES(device features & want), FEATURES_OK
 * re-read.  Does not set DRIVER_OK.
 */
bool gw_test_vdpa_init(GwVdpaBackend *b, uint64_t want, GError **errp);

/* Waits up to timeout_ms for an eventfd to fire; true if it did. */
bool gw_test_wait_fd(int fd, int timeout_ms);
