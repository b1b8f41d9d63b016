/*
 * Shadow virtqueues against the simulator, through the real seam: a
 * "guest" drives the virtio-pci function by config cycles and MMIO as a
 * driver does (svq-fixture.c, shared with tests/fuzz/fuzz-svq.c), the device
 * model switches its rings to shadow rings and back while the guest's
 * I/O runs, and the VMM dirty bitmap is checked page by page.
 */
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <linux/virtio_blk.h>
#include <glib/gstdio.h>
#include <godwit/util.h>
#include <godwit/vdpa-device.h>
#include <godwit/vdpa-sim.h>
#include <godwit/vdpa-svq.h>
#include <godwit/virtio-pci.h>
#include "svq-fixture.h"

#define RAM_SIZE   SVQFX_RAM_SIZE
#define TIMEOUT_MS 5000

typedef SvqFx Fx;

/* ---- a guest with requests always in flight ---- */

#define SLOTS 8

typedef struct {
    struct virtio_blk_outhdr *hdr;
    uint8_t *data, *st;
    uint64_t hdr_iova, data_iova, st_iova;
    bool busy, reading;
    uint16_t head;
    unsigned round;
} Req;

typedef struct {
    Fx *f;
    Req r[SLOTS];
    GMutex m;
    GCond c;
    gint stop;
    unsigned submitted, completed;
    unsigned duplicates, bad_data, bad_status, lost;
} Guest;

static uint8_t
pattern(unsigned slot, unsigned round, unsigned i)
{
    return (uint8_t)(slot * 37 + round * 11 + i);
}

static void
guest_submit(Guest *g, unsigned s)
{
    Req *r = &g->r[s];
    GwTestBuf bufs[3] = {{r->hdr_iova, sizeof(*r->hdr), false},
                         {r->data_iova, 4096, r->reading},
                         {r->st_iova, 1, true}};

    r->hdr->type = r->reading ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT;
    r->hdr->sector = s * 8;
    for (unsigned i = 0; i < 4096; i++) {
        r->data[i] = r->reading ? 0 : pattern(s, r->round, i);
    }
    *r->st = 0xff;
    g_assert_true(gw_test_vring_add(g->f->vr, bufs, 3, &r->head));
    r->busy = true;
    g->submitted++;
}

/* One completion: exactly one slot must wait for it. */
static void
guest_complete(Guest *g, uint16_t id)
{
    Req *r = NULL;

    for (unsigned s = 0; s < SLOTS; s++) {
        if (g->r[s].busy && g->r[s].head == id) {
            r = &g->r[s];
        }
    }
    if (!r) {
        g->duplicates++;
        return;
    }
    r->busy = false;
    g->bad_status += *r->st != VIRTIO_BLK_S_OK;
    if (r->reading) {
        for (unsigned i = 0; i < 4096; i++) {
            if (r->data[i] != pattern((unsigned)(r - g->r), r->round, i)) {
                g->bad_data++;
                break;
            }
        }
        r->round++;
    }
    r->reading = !r->reading;
    g_mutex_lock(&g->m);
    g->completed++;
    g_cond_broadcast(&g->c);
    g_mutex_unlock(&g->m);
}

static bool
guest_busy(Guest *g)
{
    for (unsigned s = 0; s < SLOTS; s++) {
        if (g->r[s].busy) {
            return true;
        }
    }
    return false;
}

/* The guest: resubmits every slot as it completes, taking completions
 * only after an interrupt (a lost interrupt is a stall: counted). */
static gpointer
guest_thread(gpointer opaque)
{
    Guest *g = opaque;
    uint16_t id;

    while (!g_atomic_int_get(&g->stop) || guest_busy(g)) {
        bool any = false;

        for (unsigned s = 0; s < SLOTS; s++) {
            if (!g->r[s].busy && !g_atomic_int_get(&g->stop)) {
                guest_submit(g, s);
                any = true;
            }
        }
        if (any) {
            svqfx_notify(g->f, 0);
        }
        if (!gw_test_wait_fd(g->f->rec.irqfd_fd, TIMEOUT_MS)) {
            g->lost++;
            break;
        }
        while (gw_test_vring_get_used(g->f->vr, &id, NULL)) {
            guest_complete(g, id);
        }
    }
    return NULL;
}

static void
guest_init(Guest *g, Fx *f)
{
    g->f = f;
    g_mutex_init(&g->m);
    g_cond_init(&g->c);
    for (unsigned s = 0; s < SLOTS; s++) {
        Req *r = &g->r[s];
        r->hdr = gw_test_mem_alloc(f->tm, sizeof(*r->hdr), 16, &r->hdr_iova);
        r->data = gw_test_mem_alloc(f->tm, 4096, 4096, &r->data_iova);
        r->st = gw_test_mem_alloc(f->tm, 1, 1, &r->st_iova);
    }
}

/* Waits (bounded) until `n` more requests completed. */
static void
guest_wait(Guest *g, unsigned n)
{
    gint64 end = g_get_monotonic_time() + 10 * G_TIME_SPAN_SECOND;
    unsigned target;

    g_mutex_lock(&g->m);
    target = g->completed + n;
    while (g->completed < target && g_cond_wait_until(&g->c, &g->m, end)) {
    }
    g_assert_cmpuint(g->completed, >=, target);
    g_mutex_unlock(&g->m);
}

static uint64_t
dirty_pages(Fx *f)
{
    g_autofree unsigned long *bm =
        g_new0(unsigned long, gw_mem_dirty_words(&f->gm));

    return gw_mem_dirty_collect(&f->gm, bm);
}

/*
 * The switch happens under the guest's I/O, three times over: every
 * request completes exactly once with the right data, no interrupt is
 * lost, the relay marks the device's writes while it runs and nothing
 * is marked in passthrough (before the first start, after each stop).
 */
static void
test_switch_under_io(void)
{
    Fx f = {0};
    Guest g = {0};
    g_autoptr(GError) err = NULL;
    GThread *t;
    uint32_t base = 0;

    svqfx_device(&f, "vdpasim_blk");
    svqfx_driver_start(&f, 64);
    guest_init(&g, &f);
    gw_mem_dirty_start(&f.gm);
    t = g_thread_new("guest", guest_thread, &g);
    guest_wait(&g, 100);
    g_assert_cmpuint(dirty_pages(&f), ==, 0); /* the problem solved here */
    for (int cycle = 0; cycle < 3; cycle++) {
        g_assert_true(svqfx_svq(&f, true, &err));
        g_assert_no_error(err);
        g_assert_true(gw_vdpa_device_svq_active(f.dev));
        guest_wait(&g, 200);
        /* Reads' data pages, statuses, the used ring: at least that. */
        g_assert_cmpuint(dirty_pages(&f), >=, SLOTS / 2 + 1);
        g_assert_true(svqfx_svq(&f, false, &err));
        g_assert_no_error(err);
        g_assert_false(gw_vdpa_device_svq_active(f.dev));
        dirty_pages(&f); /* what the relay marked before it stopped */
        guest_wait(&g, 200);
        g_assert_cmpuint(dirty_pages(&f), ==, 0);
    }
    g_atomic_int_set(&g.stop, true);
    g_thread_join(t);
    g_assert_cmpuint(g.lost, ==, 0);
    g_assert_cmpuint(g.duplicates, ==, 0);
    g_assert_cmpuint(g.bad_status, ==, 0);
    g_assert_cmpuint(g.bad_data, ==, 0);
    g_assert_cmpuint(g.completed, ==, g.submitted);
    g_test_message("%u requests, 3 switches each way", g.completed);
    /* The device's index is the guest's ring's. */
    g_mutex_lock(&f.lock);
    g_assert_true(gw_vdpa_device_suspend(f.dev, &err));
    g_assert_true(gw_vdpa_device_get_vring_base(f.dev, 0, &base, &err));
    g_mutex_unlock(&f.lock);
    g_assert_cmpuint(base, ==, gw_test_vring_used_idx(f.vr));
    g_assert_cmpuint((uint16_t)base, ==, (uint16_t)g.submitted);
    gw_mem_dirty_stop(&f.gm);
    g_mutex_clear(&g.m);
    g_cond_clear(&g.c);
    svqfx_free(&f);
}

/* ---- exactly the pages the device wrote ---- */

typedef struct {
    struct virtio_blk_outhdr *hdr;
    uint8_t *data, *st;
    uint64_t hdr_iova, data_iova, st_iova;
} PageReq;

/* Header, data and status each on a page of their own. */
static void
page_req(Fx *f, PageReq *r)
{
    r->hdr = gw_test_mem_alloc(f->tm, 4096, 4096, &r->hdr_iova);
    r->data = gw_test_mem_alloc(f->tm, 4096, 4096, &r->data_iova);
    r->st = gw_test_mem_alloc(f->tm, 4096, 4096, &r->st_iova);
}

static void
page_io(Fx *f, PageReq *r, bool in, uint64_t sector)
{
    GwTestBuf bufs[3] = {{r->hdr_iova, sizeof(*r->hdr), false},
                         {r->data_iova, 4096, in},
                         {r->st_iova, 1, true}};
    uint16_t head, id;

    r->hdr->type = in ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT;
    r->hdr->sector = sector;
    *r->st = 0xff;
    g_assert_true(gw_test_vring_add(f->vr, bufs, 3, &head));
    svqfx_notify(f, 0);
    g_assert_true(gw_test_wait_fd(f->rec.irqfd_fd, TIMEOUT_MS));
    g_assert_true(gw_test_vring_get_used(f->vr, &id, NULL));
    g_assert_cmpuint(id, ==, head);
    g_assert_cmpuint(*r->st, ==, VIRTIO_BLK_S_OK);
}

static bool
page_is(const unsigned long *bm, uint64_t gpa)
{
    uint64_t p = gpa / 4096;
    return bm[p / (8 * sizeof(long))] & (1ul << (p % (8 * sizeof(long))));
}

static void
test_dirty_exactly_device_writes(void)
{
    Fx f = {0};
    g_autoptr(GError) err = NULL;
    g_autofree unsigned long *bm = NULL;
    GHashTable *want = g_hash_table_new(g_direct_hash, g_direct_equal);
    PageReq w, r;
    uint64_t used = 0;
    uint16_t u0;

    svqfx_device(&f, "vdpasim_blk");
    svqfx_driver_start(&f, 256); /* desc: a page of its own */
    page_req(&f, &w);
    page_req(&f, &r);
    g_assert_true(svqfx_svq(&f, true, &err));
    g_assert_no_error(err);
    bm = g_new0(unsigned long, gw_mem_dirty_words(&f.gm));
    gw_mem_dirty_start(&f.gm);
    u0 = gw_test_vring_used_idx(f.vr);
    memset(w.data, 0xa5, 4096);
    page_io(&f, &w, false, 16);
    page_io(&f, &r, true, 16);
    g_assert_cmpmem(r.data, 4096, w.data, 4096);
    gw_mem_dirty_collect(&f.gm, bm);
    /* What the device wrote: both statuses, the read's data; what the
     * relay wrote: two used elements and the used index. */
    const uint64_t wrote[] = {w.st_iova,
                              r.st_iova,
                              r.data_iova,
                              f.vr->used_iova + 2,
                              f.vr->used_iova + 4 + 8 * (u0 & 255),
                              f.vr->used_iova + 4 + 8 * ((u0 + 1) & 255) + 7};
    for (unsigned i = 0; i < G_N_ELEMENTS(wrote); i++) {
        g_hash_table_add(want, GSIZE_TO_POINTER(wrote[i] / 4096));
    }
    for (uint64_t p = 0; p < RAM_SIZE / 4096; p++) {
        if (page_is(bm, p * 4096) !=
            g_hash_table_contains(want, GSIZE_TO_POINTER(p))) {
            g_test_message("page 0x%" G_GINT64_MODIFIER "x: marked %d",
                           p * 4096, page_is(bm, p * 4096));
            used++;
        }
    }
    g_assert_cmpuint(used, ==, 0);
    /* Explicitly: what the device only read is not marked. */
    g_assert_false(page_is(bm, w.hdr_iova));
    g_assert_false(page_is(bm, w.data_iova));
    g_assert_false(page_is(bm, r.hdr_iova));
    g_assert_false(page_is(bm, f.vr->desc_iova));

    /* Back in passthrough: interrupts arrive, I/O works, and the
     * device's writes bypass the VMM again. */
    g_assert_true(svqfx_svq(&f, false, &err));
    g_assert_no_error(err);
    g_assert_true(
        gw_test_wait_fd(f.rec.irqfd_fd, TIMEOUT_MS)); /* the kept one */
    dirty_pages(&f);
    memset(r.data, 0, 4096);
    page_io(&f, &r, true, 16);
    g_assert_cmpmem(r.data, 4096, w.data, 4096);
    g_assert_cmpuint(dirty_pages(&f), ==, 0);
    g_hash_table_unref(want);
    gw_mem_dirty_stop(&f.gm);
    svqfx_free(&f);
}

/* ---- refusals and a hostile guest ---- */

static void
test_refusals(void)
{
    Fx f = {0}, n = {.no_suspend = true};
    g_autoptr(GError) err = NULL;

    svqfx_device(&f, "vdpasim_blk");
    g_assert_false(svqfx_svq(&f, true, &err)); /* not started */
    g_assert_error(err, GW_ERROR, GW_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_false(svqfx_svq(&f, false, &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_INVALID);
    g_clear_error(&err);
    svqfx_driver_start(&f, 16);
    g_assert_true(svqfx_svq(&f, true, &err));
    g_assert_false(svqfx_svq(&f, true, &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_BUSY);
    g_clear_error(&err);
    /* A guest reset drops the shadow rings; the device starts again. */
    svqfx_mmio_write(&f, f.bar0 + 0x14, 1, 0);
    g_assert_false(gw_vdpa_device_svq_active(f.dev));
    g_clear_pointer(&f.vr, gw_test_vring_free);
    svqfx_driver_start(&f, 16);
    g_assert_true(svqfx_svq(&f, true, &err));
    g_assert_no_error(err);
    svqfx_free(&f); /* with shadow rings running */

    svqfx_device(&n, "vdpasim_blk");
    svqfx_driver_start(&n, 16);
    g_assert_false(svqfx_svq(&n, true, &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_INVALID);
    svqfx_free(&n);
}

/* Chains that break the rules are not forwarded; the VMM and the device
 * are unharmed, the relay still hands back what completed, and the
 * guest is told to reset the device (NEEDS_RESET), as if it broke. */
static void
test_hostile_chains(void)
{
    Fx f = {0};
    g_autoptr(GError) err = NULL;
    PageReq r;
    GwTestBuf outside[2] = {{RAM_SIZE - 8, 16, false}, {0x100000, 1, true}};
    uint16_t head;

    svqfx_device(&f, "vdpasim_blk");
    svqfx_driver_start(&f, 16);
    page_req(&f, &r);
    g_assert_true(svqfx_svq(&f, true, &err));
    page_io(&f, &r, false, 0); /* a good one first */
    g_test_expect_message("godwit-vdpa", G_LOG_LEVEL_WARNING,
                          "*queue 0: buffer outside guest RAM*");
    g_assert_true(gw_test_vring_add(f.vr, outside, 2, &head));
    svqfx_notify(&f, 0);
    g_assert_false(gw_test_wait_fd(f.rec.irqfd_fd, 300));
    g_test_assert_expected_messages();
    g_assert_cmphex(gw_vdpa_device_status(f.dev) & 0x40, ==, 0);
    g_assert_true(gw_vdpa_device_svq_active(f.dev));
    g_test_expect_message("godwit-vdpa", G_LOG_LEVEL_WARNING,
                          "*no longer relayed: the guest must reset*");
    svqfx_wait_needs_reset(&f);
    g_test_assert_expected_messages();
    svqfx_free(&f);

    /* A loop: descriptor 1 -> 0 -> 1. */
    memset(&f, 0, sizeof(f));
    svqfx_device(&f, "vdpasim_blk");
    svqfx_driver_start(&f, 16);
    g_assert_true(svqfx_svq(&f, true, &err));
    f.vr->desc[0] = (struct vring_desc){0x1000, 16, VRING_DESC_F_NEXT, 1};
    f.vr->desc[1] = (struct vring_desc){0x2000, 16, VRING_DESC_F_NEXT, 0};
    f.vr->avail->ring[0] = 0;
    g_test_expect_message("godwit-vdpa", G_LOG_LEVEL_WARNING,
                          "*queue 0: descriptor loop*");
    __atomic_store_n(&f.vr->avail->idx, 1, __ATOMIC_RELEASE);
    svqfx_notify(&f, 0);
    g_assert_false(gw_test_wait_fd(f.rec.irqfd_fd, 300));
    g_test_assert_expected_messages();
    g_assert_cmphex(gw_vdpa_device_status(f.dev) & 0x40, ==, 0);
    g_test_expect_message("godwit-vdpa", G_LOG_LEVEL_WARNING,
                          "*no longer relayed: the guest must reset*");
    svqfx_wait_needs_reset(&f);
    g_test_assert_expected_messages();
    svqfx_free(&f);
}

int
main(int argc, char **argv)
{
    g_autofree char *dir = g_dir_make_tmp("godwit-svq-XXXXXX", NULL);
    int ret;

    g_setenv("GODWIT_RUNTIME_DIR", dir, TRUE);
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vdpa/svq/blk/switch-under-io-completes-each-once",
                    test_switch_under_io);
    g_test_add_func("/vdpa/svq/blk/dirty-bitmap-is-exactly-device-writes",
                    test_dirty_exactly_device_writes);
    g_test_add_func("/vdpa/svq/refuses-what-it-cannot-relay", test_refusals);
    g_test_add_func("/vdpa/svq/hostile-chains-are-not-forwarded",
                    test_hostile_chains);
    ret = g_test_run();
    g_rmdir(dir);
    return ret;
}
