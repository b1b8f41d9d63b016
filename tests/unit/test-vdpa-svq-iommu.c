/*
 * Shadow virtqueues of an iommu=on vDPA device (a simulator behind a
 * virtio-iommu, svq-fixture.c): the guest's rings and buffers are at
 * IOVAs its IOMMU driver mapped, never equal to their guest-physical
 * addresses, and the relay must translate them — to check chains, to
 * mark what the device wrote at its GPAs, and to keep its own rings out
 * of the guest's IOVA window.
 */
#include <string.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_iommu.h>
#include <glib/gstdio.h>
#include <godwit/mig-stream.h>
#include <godwit/util.h>
#include <godwit/vdpa-device.h>
#include <godwit/vdpa-svq.h>
#include <godwit/virtio-iommu.h>
#include "svq-fixture.h"

#define TIMEOUT_MS 5000
#define RAM        SVQFX_RAM_SIZE
#define OFF        (1ull << 32) /* IOVA = GPA + OFF, the linear mapping */
#define RW         (VIRTIO_IOMMU_MAP_F_READ | VIRTIO_IOMMU_MAP_F_WRITE)
#define SPARE      0x200000000ull /* IOVAs outside the linear mapping */

typedef SvqFx Fx;

/* A device behind the IOMMU, its endpoint in domain 1; with `linear`,
 * all of RAM mapped at OFF; allocations from here are page aligned. */
static void
iommu_fx(Fx *f, bool linear)
{
    memset(f, 0, sizeof(*f));
    f->iommu = true;
    f->ring_off = OFF;
    svqfx_device(f, "vdpasim_blk");
    svqfx_iommu_start(f);
    if (linear) {
        g_assert_cmpuint(svqfx_iommu_map(f, OFF, RAM, 0, RW), ==,
                         VIRTIO_IOMMU_S_OK);
    }
    f->tm->used = (f->tm->used + 4095) & ~4095ull;
}

static void *
page(Fx *f, size_t n, uint64_t *gpa)
{
    return gw_test_mem_alloc(f->tm, 4096 * n, 4096, gpa);
}

typedef struct {
    struct virtio_blk_outhdr *hdr;
    uint8_t *st;
    uint64_t hdr_gpa, st_gpa;
} Blk;

static void
blk_new(Fx *f, Blk *b)
{
    b->hdr = page(f, 1, &b->hdr_gpa);
    b->st = page(f, 1, &b->st_gpa);
}

/* One request, header and status through the linear mapping, `len`
 * bytes of data at IOVA `data`; waits for its completion. */
static void
blk_io(Fx *f, Blk *b, bool in, uint64_t data, uint32_t len)
{
    GwTestBuf bufs[3] = {{b->hdr_gpa + OFF, sizeof(*b->hdr), false},
                         {data, len, in},
                         {b->st_gpa + OFF, 1, true}};
    uint16_t head, id;

    b->hdr->type = in ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT;
    b->hdr->sector = 8;
    *b->st = 0xff;
    g_assert_true(gw_test_vring_add(f->vr, bufs, 3, &head));
    svqfx_notify(f, 0);
    g_assert_true(gw_test_wait_fd(f->rec.irqfd_fd, TIMEOUT_MS));
    g_assert_true(gw_test_vring_get_used(f->vr, &id, NULL));
    g_assert_cmpuint(id, ==, head);
    g_assert_cmpuint(*b->st, ==, VIRTIO_BLK_S_OK);
}

static bool
page_is(const unsigned long *bm, uint64_t gpa)
{
    uint64_t p = gpa / 4096;

    return bm[p / (8 * sizeof(long))] & (1ul << (p % (8 * sizeof(long))));
}

static unsigned long *
collect(Fx *f)
{
    unsigned long *bm = g_new0(unsigned long, gw_mem_dirty_words(&f->gm));

    gw_mem_dirty_collect(&f->gm, bm);
    return bm;
}

static void
start_svq(Fx *f)
{
    g_autoptr(GError) err = NULL;

    g_assert_true(svqfx_svq(f, true, &err));
    g_assert_no_error(err);
    g_assert_true(gw_vdpa_device_svq_active(f->dev));
}

/*
 * Chains at IOVAs (GPA + 4 GiB) are relayed and their data is right;
 * the dirty bitmap holds exactly what the device and the relay wrote,
 * at the GPAs (an IOVA is no guest RAM at all: marking one would mark
 * nothing).
 */
static void
test_relay_at_iovas(void)
{
    g_autofree unsigned long *bm = NULL;
    g_autoptr(GHashTable) want = g_hash_table_new(NULL, NULL);
    uint64_t wd, rd;
    uint8_t *w, *r;
    unsigned wrong = 0;
    uint16_t u0;
    Blk b;
    Fx f;

    iommu_fx(&f, true);
    svqfx_driver_start(&f, 256);
    blk_new(&f, &b);
    w = page(&f, 1, &wd);
    r = page(&f, 1, &rd);
    start_svq(&f);
    gw_mem_dirty_start(&f.gm);
    u0 = gw_test_vring_used_idx(f.vr);
    memset(w, 0x5a, 4096);
    blk_io(&f, &b, false, wd + OFF, 4096);
    blk_io(&f, &b, true, rd + OFF, 4096);
    g_assert_cmpmem(r, 4096, w, 4096);
    bm = collect(&f);
    const uint64_t wrote[] = {b.st_gpa, rd, f.vr->used_iova + 2,
                              f.vr->used_iova + 4 + 8 * (u0 & 255),
                              f.vr->used_iova + 4 + 8 * ((u0 + 1) & 255) + 7};
    for (unsigned i = 0; i < G_N_ELEMENTS(wrote); i++) {
        g_hash_table_add(want, GSIZE_TO_POINTER(wrote[i] / 4096));
    }
    for (uint64_t p = 0; p < RAM / 4096; p++) {
        if (page_is(bm, p * 4096) !=
            g_hash_table_contains(want, GSIZE_TO_POINTER(p))) {
            g_test_message("page 0x%" G_GINT64_MODIFIER "x: marked %d",
                           p * 4096, page_is(bm, p * 4096));
            wrong++;
        }
    }
    g_assert_cmpuint(wrong, ==, 0);
    g_assert_false(page_is(bm, wd)); /* only read by the device */
    gw_mem_dirty_stop(&f.gm);
    svqfx_free(&f);
}

/* An 8 KiB buffer whose pages are two mappings to GPAs apart: the data
 * lands in both, both are marked, the page between them is not. */
static void
test_buffer_across_mappings(void)
{
    g_autofree unsigned long *bm = NULL;
    uint64_t wd, a;
    uint8_t *w, *p;
    Blk b;
    Fx f;

    iommu_fx(&f, true);
    svqfx_driver_start(&f, 64);
    blk_new(&f, &b);
    w = page(&f, 2, &wd);
    p = page(&f, 3, &a); /* a, a gap, then b = a + 8 KiB */
    g_assert_cmpuint(svqfx_iommu_map(&f, SPARE, 4096, a, RW), ==,
                     VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(svqfx_iommu_map(&f, SPARE + 4096, 4096, a + 8192, RW), ==,
                     VIRTIO_IOMMU_S_OK);
    start_svq(&f);
    for (unsigned i = 0; i < 8192; i++) {
        w[i] = (uint8_t)(i * 7 + 1);
    }
    blk_io(&f, &b, false, wd + OFF, 8192);
    gw_mem_dirty_start(&f.gm);
    blk_io(&f, &b, true, SPARE, 8192);
    g_assert_cmpmem(p, 4096, w, 4096);
    g_assert_cmpmem(p + 8192, 4096, w + 4096, 4096);
    g_assert_true(p[4096] == 0 && !memcmp(p + 4096, p + 4097, 4095));
    bm = collect(&f);
    g_assert_true(page_is(bm, a));
    g_assert_true(page_is(bm, a + 8192));
    g_assert_false(page_is(bm, a + 4096));
    gw_mem_dirty_stop(&f.gm);
    svqfx_free(&f);
}

/* A buffer at an IOVA the guest never mapped: the queue stops being
 * relayed, the guest is told to reset the device, the VMM runs on. */
static void
test_unmapped_buffer(void)
{
    Blk b;
    Fx f;
    uint16_t head;

    iommu_fx(&f, true);
    svqfx_driver_start(&f, 16);
    blk_new(&f, &b);
    start_svq(&f);
    blk_io(&f, &b, false, b.hdr_gpa + OFF, 512); /* a good one first */
    b.hdr->type = VIRTIO_BLK_T_IN;
    g_test_expect_message("godwit-vdpa", G_LOG_LEVEL_WARNING,
                          "*queue 0: buffer outside guest RAM*");
    g_assert_true(gw_test_vring_add(
        f.vr,
        (GwTestBuf[]){{b.hdr_gpa + OFF, sizeof(*b.hdr), false},
                      {SPARE, 512, true},
                      {b.st_gpa + OFF, 1, true}},
        3, &head));
    svqfx_notify(&f, 0);
    g_assert_false(gw_test_wait_fd(f.rec.irqfd_fd, 300));
    g_test_assert_expected_messages();
    g_assert_true(gw_vdpa_device_svq_active(f.dev));
    g_test_expect_message("godwit-vdpa", G_LOG_LEVEL_WARNING,
                          "*no longer relayed: the guest must reset*");
    svqfx_wait_needs_reset(&f);
    g_test_assert_expected_messages();
    svqfx_free(&f);
}

/* A device-writable buffer checked against a read-only mapping: the
 * device could not write it, so it is hostile too. */
static void
test_readonly_buffer_written(void)
{
    uint64_t ro;
    uint16_t head;
    Blk b;
    Fx f;

    iommu_fx(&f, true);
    svqfx_driver_start(&f, 16);
    blk_new(&f, &b);
    page(&f, 1, &ro);
    g_assert_cmpuint(
        svqfx_iommu_map(&f, SPARE, 4096, ro, VIRTIO_IOMMU_MAP_F_READ), ==,
        VIRTIO_IOMMU_S_OK);
    start_svq(&f);
    b.hdr->type = VIRTIO_BLK_T_IN;
    g_test_expect_message("godwit-vdpa", G_LOG_LEVEL_WARNING,
                          "*queue 0: buffer outside guest RAM*");
    g_assert_true(gw_test_vring_add(
        f.vr,
        (GwTestBuf[]){{b.hdr_gpa + OFF, sizeof(*b.hdr), false},
                      {SPARE, 512, true},
                      {b.st_gpa + OFF, 1, true}},
        3, &head));
    svqfx_notify(&f, 0);
    g_assert_false(gw_test_wait_fd(f.rec.irqfd_fd, 300));
    g_test_assert_expected_messages();
    g_test_expect_message("godwit-vdpa", G_LOG_LEVEL_WARNING,
                          "*no longer relayed: the guest must reset*");
    svqfx_wait_needs_reset(&f);
    g_test_assert_expected_messages();
    svqfx_free(&f);
}

/* While the relay runs, the guest unmaps a writable mapping the device
 * wrote through: its GPA is dirty again (the relay could no longer
 * translate the IOVA); a read-only one unmapped is not. */
static void
test_unmap_marks_dirty(void)
{
    g_autofree unsigned long *bm = NULL, *bm2 = NULL;
    uint64_t d, ro;
    Blk b;
    Fx f;

    iommu_fx(&f, true);
    svqfx_driver_start(&f, 16);
    blk_new(&f, &b);
    page(&f, 1, &d);
    page(&f, 1, &ro);
    g_assert_cmpuint(svqfx_iommu_map(&f, SPARE, 4096, d, RW), ==,
                     VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(
        svqfx_iommu_map(&f, SPARE + 4096, 4096, ro, VIRTIO_IOMMU_MAP_F_READ),
        ==, VIRTIO_IOMMU_S_OK);
    start_svq(&f);
    gw_mem_dirty_start(&f.gm);
    blk_io(&f, &b, true, SPARE, 4096);
    bm = collect(&f);
    g_assert_true(page_is(bm, d));
    g_assert_cmpuint(svqfx_iommu_unmap(&f, SPARE, 8192), ==, VIRTIO_IOMMU_S_OK);
    bm2 = collect(&f);
    g_assert_true(page_is(bm2, d));
    g_assert_false(page_is(bm2, ro));
    gw_mem_dirty_stop(&f.gm);
    svqfx_free(&f);
}

/*
 * A descriptor table across two pages, the second of which the guest
 * mapped to a GPA that does not follow the first: the device follows it, the
 * relay (which reads the ring through one host pointer) cannot, so the start is
 * refused and the device goes on, on the guest's rings.
 */
static void
test_rings_not_contiguous(void)
{
    g_autoptr(GError) err = NULL;
    uint64_t g, q, d;
    Blk b;
    Fx f;

    iommu_fx(&f, false);
    f.tm->used += 2048;
    f.vr = gw_test_vring_new(f.tm, 0, 256); /* desc: 4 KiB at g + 2 KiB */
    g = f.vr->desc_iova - 2048;
    f.tm->used = (f.tm->used + 4095) & ~4095ull;
    /* Avail and used elsewhere: only descriptors 128.. are remapped,
     * which this driver (low indices first) never uses. */
    f.vr->avail = page(&f, 1, &f.vr->avail_iova);
    f.vr->used = page(&f, 1, &f.vr->used_iova);
    blk_new(&f, &b);
    page(&f, 1, &d);
    page(&f, 1, &q);
    g_assert_cmpuint(svqfx_iommu_map(&f, OFF, g + 4096, 0, RW), ==,
                     VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(svqfx_iommu_map(&f, OFF + g + 4096, 4096, q, RW), ==,
                     VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(
        svqfx_iommu_map(&f, OFF + g + 8192, RAM - g - 8192, g + 8192, RW), ==,
        VIRTIO_IOMMU_S_OK);
    svqfx_driver_start(&f, 256);
    blk_io(&f, &b, true, d + OFF, 512); /* passthrough follows it */
    g_assert_false(svqfx_svq(&f, true, &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_INVALID);
    g_assert_nonnull(strstr(err->message, "contiguously"));
    g_assert_false(gw_vdpa_device_svq_active(f.dev));
    g_assert_false(gw_vdpa_device_is_suspended(f.dev));
    blk_io(&f, &b, true, d + OFF, 512); /* still on the guest's rings */
    svqfx_free(&f);
}

/*
 * The shadow rings are above the guest's IOVA window: while they run
 * the guest can still map the top of its window and the IOVAs just
 * under 2^47 (where an iommu=off device's shadow rings go), and the
 * relay goes on.
 */
static void
test_shadow_rings_above_window(void)
{
    const uint64_t top = GW_IOMMU_INPUT_END + 1, low = 1ull << 47;
    uint64_t d;
    Blk b;
    Fx f;

    iommu_fx(&f, true);
    svqfx_driver_start(&f, 16);
    blk_new(&f, &b);
    page(&f, 1, &d);
    start_svq(&f);
    g_assert_cmpuint(svqfx_iommu_map(&f, low - 65536, 65536, 0, RW), ==,
                     VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(svqfx_iommu_map(&f, top - 65536, 65536, 0, RW), ==,
                     VIRTIO_IOMMU_S_OK);
    blk_io(&f, &b, true, d + OFF, 512);
    g_assert_true(gw_vdpa_device_svq_active(f.dev));
    svqfx_free(&f);
}

/* Suspended on shadow rings (a switch-over), the device's state saves:
 * the guest's used index is read through the used ring's IOVA. */
static void
test_ring_state_through_iova(void)
{
    g_autoptr(GwMigBuf) buf = gw_mig_buf_new();
    g_autoptr(GError) err = NULL;
    uint32_t base = 0;
    uint64_t d;
    Blk b;
    Fx f;

    iommu_fx(&f, true);
    svqfx_driver_start(&f, 16);
    blk_new(&f, &b);
    page(&f, 1, &d);
    start_svq(&f);
    blk_io(&f, &b, true, d + OFF, 512);
    blk_io(&f, &b, true, d + OFF, 512);
    g_mutex_lock(&f.lock);
    g_assert_true(gw_vdpa_device_suspend(f.dev, &err));
    g_assert_no_error(err);
    g_assert_true(gw_vdpa_device_save(f.dev, buf, &err));
    g_assert_no_error(err);
    g_assert_true(gw_vdpa_device_get_vring_base(f.dev, 0, &base, &err));
    g_mutex_unlock(&f.lock);
    g_assert_cmpuint(base, ==, 2);
    svqfx_free(&f);
}

int
main(int argc, char **argv)
{
    g_autofree char *dir = g_dir_make_tmp("godwit-svq-iommu-XXXXXX", NULL);
    int ret;

    g_setenv("GODWIT_RUNTIME_DIR", dir, TRUE);
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vdpa/svq/iommu/relays-chains-at-iovas-dirty-at-gpas",
                    test_relay_at_iovas);
    g_test_add_func("/vdpa/svq/iommu/buffer-across-two-mappings",
                    test_buffer_across_mappings);
    g_test_add_func("/vdpa/svq/iommu/unmapped-buffer-is-hostile",
                    test_unmapped_buffer);
    g_test_add_func("/vdpa/svq/iommu/writable-buffer-in-read-only-mapping",
                    test_readonly_buffer_written);
    g_test_add_func("/vdpa/svq/iommu/unmap-marks-writable-mapping-dirty",
                    test_unmap_marks_dirty);
    g_test_add_func("/vdpa/svq/iommu/rings-not-contiguous-start-refused",
                    test_rings_not_contiguous);
    g_test_add_func("/vdpa/svq/iommu/shadow-rings-above-guest-window",
                    test_shadow_rings_above_window);
    g_test_add_func("/vdpa/svq/iommu/ring-state-saved-through-iovas",
                    test_ring_state_through_iova);
    ret = g_test_run();
    g_rmdir(dir);
    return ret;
}
