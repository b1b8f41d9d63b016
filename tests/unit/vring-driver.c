/*
 * A tiny split-ring virtio driver for the vDPA tests (see the header).
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <godwit/util.h>
#include "vring-driver.h"

GwTestMem *
gw_test_mem_new(size_t size, uint64_t iova)
{
    GwTestMem *m = g_new0(GwTestMem, 1);

    m->fd = memfd_create("gw-test-ram", MFD_CLOEXEC);
    g_assert_cmpint(m->fd, >=, 0);
    g_assert_cmpint(ftruncate(m->fd, size), ==, 0);
    m->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
    g_assert(m->base != MAP_FAILED);
    m->size = size;
    m->iova = iova;
    return m;
}

void
gw_test_mem_free(GwTestMem *m)
{
    munmap(m->base, m->size);
    close(m->fd);
    g_free(m);
}

void *
gw_test_mem_alloc(GwTestMem *m, size_t len, size_t align, uint64_t *iova)
{
    size_t at = (m->used + align - 1) & ~(align - 1);

    g_assert_cmpuint(at + len, <=, m->size);
    m->used = at + len;
    memset(m->base + at, 0, len);
    if (iova) {
        *iova = m->iova + at;
    }
    return m->base + at;
}

void *
gw_test_mem_ptr(GwTestMem *m, uint64_t iova)
{
    g_assert_cmpuint(iova - m->iova, <, m->size);
    return m->base + (iova - m->iova);
}

GwTestVring *
gw_test_vring_new(GwTestMem *m, uint32_t idx, uint16_t num)
{
    GwTestVring *vr = g_new0(GwTestVring, 1);

    vr->mem = m;
    vr->idx = idx;
    vr->num = num;
    vr->desc = gw_test_mem_alloc(m, 16 * num, 16, &vr->desc_iova);
    vr->avail = gw_test_mem_alloc(m, 6 + 2 * num, 2, &vr->avail_iova);
    vr->used = gw_test_mem_alloc(m, 6 + 8 * num, 4, &vr->used_iova);
    for (uint16_t i = 0; i + 1 < num; i++) {
        vr->desc[i].next = i + 1;
    }
    vr->num_free = num;
    vr->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    vr->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    g_assert(vr->kick_fd >= 0 && vr->call_fd >= 0);
    return vr;
}

void
gw_test_vring_free(GwTestVring *vr)
{
    close(vr->kick_fd);
    close(vr->call_fd);
    g_free(vr);
}

bool
gw_test_vring_setup(GwTestVring *vr, GwVdpaBackend *b, uint16_t base,
                    GError **errp)
{
    vr->avail_idx = vr->last_used = base;
    return gw_vdpa_set_vring_num(b, vr->idx, vr->num, errp) &&
           gw_vdpa_set_vring_base(b, vr->idx, base, errp) &&
           gw_vdpa_set_vring_addr(b, vr->idx, vr->desc_iova, vr->avail_iova,
                                  vr->used_iova, errp) &&
           gw_vdpa_set_vring_kick(b, vr->idx, vr->kick_fd, errp) &&
           gw_vdpa_set_vring_call(b, vr->idx, vr->call_fd, errp) &&
           gw_vdpa_set_vring_enable(b, vr->idx, true, errp);
}

bool
gw_test_vring_add(GwTestVring *vr, const GwTestBuf *bufs, unsigned n,
                  uint16_t *head)
{
    uint16_t h = vr->free_head, i = h, last = h;

    if (n == 0 || n > vr->num_free) {
        return false;
    }
    for (unsigned k = 0; k < n; k++) {
        struct vring_desc *d = &vr->desc[i];

        d->addr = bufs[k].iova;
        d->len = bufs[k].len;
        d->flags = (bufs[k].write ? VRING_DESC_F_WRITE : 0) |
                   (k + 1 < n ? VRING_DESC_F_NEXT : 0);
        last = i;
        i = d->next;
    }
    vr->free_head = vr->desc[last].next;
    vr->num_free -= n;
    vr->avail->ring[vr->avail_idx & (vr->num - 1)] = h;
    vr->avail_idx++;
    __atomic_store_n(&vr->avail->idx, vr->avail_idx, __ATOMIC_RELEASE);
    if (head) {
        *head = h;
    }
    return true;
}

void
gw_test_vring_kick(GwTestVring *vr)
{
    g_assert_cmpint(eventfd_write(vr->kick_fd, 1), ==, 0);
}

uint16_t
gw_test_vring_used_idx(GwTestVring *vr)
{
    return __atomic_load_n(&vr->used->idx, __ATOMIC_ACQUIRE);
}

/* Returns the chain starting at `head` to the free list. */
static void
free_chain(GwTestVring *vr, uint16_t head)
{
    uint16_t i = head;
    unsigned n = 1;

    while (vr->desc[i].flags & VRING_DESC_F_NEXT) {
        i = vr->desc[i].next;
        n++;
    }
    vr->desc[i].next = vr->free_head;
    vr->free_head = head;
    vr->num_free += n;
}

bool
gw_test_vring_get_used(GwTestVring *vr, uint16_t *id, uint32_t *len)
{
    struct vring_used_elem *e;

    if (gw_test_vring_used_idx(vr) == vr->last_used) {
        return false;
    }
    e = &vr->used->ring[vr->last_used & (vr->num - 1)];
    g_assert_cmpuint(e->id, <, vr->num);
    if (id) {
        *id = e->id;
    }
    if (len) {
        *len = e->len;
    }
    free_chain(vr, e->id);
    vr->last_used++;
    return true;
}

bool
gw_test_wait_fd(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    eventfd_t v;
    int r;

    do {
        r = poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r == 1) {
        eventfd_read(fd, &v);
        return true;
    }
    return false;
}

bool
gw_test_vring_wait_used(GwTestVring *vr, int timeout_ms, uint16_t *id,
                        uint32_t *len)
{
    gint64 end = g_get_monotonic_time() + timeout_ms * 1000ll;

    while (!gw_test_vring_get_used(vr, id, len)) {
        gint64 left = (end - g_get_monotonic_time()) / 1000;

        if (left <= 0) {
            return false;
        }
        gw_test_wait_fd(vr->call_fd, (int)MIN(left, 100));
    }
    return true;
}

bool
gw_test_vdpa_init(GwVdpaBackend *b, uint64_t want, GError **errp)
{
    uint64_t features, backend;
    uint8_t status;

    if (!gw_vdpa_set_owner(b, errp) ||
        !gw_vdpa_get_backend_features(b, &backend, errp) ||
        !gw_vdpa_set_backend_features(b, backend, errp) ||
        !gw_vdpa_get_features(b, &features, errp) ||
        !gw_vdpa_set_status(b, VIRTIO_CONFIG_S_ACKNOWLEDGE, errp) ||
        !gw_vdpa_set_status(
            b, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER, errp) ||
        !gw_vdpa_set_features(b, features & want, errp) ||
        !gw_vdpa_set_status(b,
                            VIRTIO_CONFIG_S_ACKNOWLEDGE |
                                VIRTIO_CONFIG_S_DRIVER |
                                VIRTIO_CONFIG_S_FEATURES_OK,
                            errp) ||
        !gw_vdpa_get_status(b, &status, errp)) {
        return false;
    }
    if (!(status & VIRTIO_CONFIG_S_FEATURES_OK)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "device refused FEATURES_OK");
        return false;
    }
    return true;
}
