/*
 * The virtio-iommu device model through its virtio-pci function, driven
 * as a guest's driver does, with two fake endpoints: what their ops are
 * told on attach, map, unmap, detach, boot bypass, reset and replay,
 * translate and query, and that an ops failure is the guest's DEVERR
 * with everything rolled back.  Statuses of bad requests and hostile
 * rings: test-virtio-iommu-errors.c.
 */
#include <string.h>
#include <godwit/util.h>
#include <godwit/virtio-pci.h>
#include "iommu-fixture.h"
/* The space lock itself, for test_writers_hold_space_lock. */
#include "../../src/devices/virtio-iommu-priv.h"

#define BYPASS_CONFIG (1ull << VIRTIO_IOMMU_F_BYPASS_CONFIG)
#define CFG_BYPASS    (0x2000 + 36)

static uint64_t
translate(Fx *f, uint32_t ep, uint64_t iova, uint64_t len, bool write,
          uint64_t *gpa)
{
    uint64_t n;

    g_mutex_lock(&f->lock);
    n = gw_virtio_iommu_translate(f->iommu, ep, iova, len, write, gpa);
    g_mutex_unlock(&f->lock);
    return n;
}

static void
assert_calls(const FxEndpoint *e, const char *ops)
{
    g_autofree char *got = g_malloc0(e->calls->len + 1);

    for (guint i = 0; i < e->calls->len; i++) {
        got[i] = g_array_index(e->calls, FxCall, i).op;
    }
    g_assert_cmpstr(got, ==, ops);
}

static void
test_pci_function(void)
{
    Fx f;

    fx_init(&f);
    g_mutex_lock(&f.lock);
    g_assert_cmphex(gw_pci_config_read(f.pci, FX_SLOT << 3, 0, 4), ==,
                    0x10571af4);
    g_mutex_unlock(&f.lock);
    g_assert_cmpuint(fx_mmio_read(&f, 0x12, 2), ==, 2);
    fx_mmio_write(&f, 0x00, 4, 0);
    g_assert_cmphex(fx_mmio_read(&f, 0x04, 4), ==, FX_FEATURES);
    fx_mmio_write(&f, 0x00, 4, 1);
    g_assert_cmphex(fx_mmio_read(&f, 0x04, 4), ==, 1); /* VERSION_1 only */
    g_assert_cmphex(fx_mmio_read(&f, 0x2000, 8), ==, ~0xfffull);
    g_assert_cmphex(fx_mmio_read(&f, 0x2008, 8), ==, 0);
    g_assert_cmphex(fx_mmio_read(&f, 0x2010, 8), ==, GW_IOMMU_INPUT_END);
    g_assert_cmphex(fx_mmio_read(&f, 0x2018, 4), ==, 0);
    g_assert_cmphex(fx_mmio_read(&f, 0x201c, 4), ==, UINT32_MAX);
    g_assert_cmpuint(fx_mmio_read(&f, 0x2020, 4), ==, 512);
    g_assert_cmpuint(fx_mmio_read(&f, CFG_BYPASS, 1), ==, 1);
    /* Read-only fields stay; bypass is only a driver's to write. */
    fx_mmio_write(&f, 0x2020, 4, 4096);
    g_assert_cmpuint(fx_mmio_read(&f, 0x2020, 4), ==, 512);
    fx_mmio_write(&f, CFG_BYPASS, 1, 0);
    g_assert_cmpuint(fx_mmio_read(&f, CFG_BYPASS, 1), ==, 1);
    fx_fini(&f);
}

static void
test_boot_bypass_before_driver(void)
{
    uint64_t gpa = 0;
    Fx f;

    fx_init(&f);
    fx_assert_identity(&f.ep[0]);
    fx_assert_identity(&f.ep[1]);
    g_assert_cmpuint(translate(&f, FX_EP_A, 0x1234, 100, true, &gpa), ==, 100);
    g_assert_cmphex(gpa, ==, 0x1234);
    g_assert_cmpuint(translate(&f, FX_EP_A, FX_LOW - 16, 100, true, &gpa), ==,
                     16);
    g_assert_cmpuint(translate(&f, FX_EP_A, FX_RAM, 1, false, &gpa), ==, 0);
    fx_fini(&f);
}

static void
test_boot_bypass_kept(void)
{
    Fx f;

    fx_init(&f);
    fx_clear_calls(&f);
    fx_driver_start(&f, FX_FEATURES);
    fx_assert_identity(&f.ep[0]);
    /* A reset while still bypassing: the same identity, nothing told. */
    fx_mmio_write(&f, 0x14, 1, 0);
    fx_assert_identity(&f.ep[0]);
    assert_calls(&f.ep[0], "");
    fx_fini(&f);
}

static void
test_boot_bypass_lost_without_bypass_config(void)
{
    uint64_t gpa;
    Fx f;

    fx_init(&f);
    fx_driver_start(&f, FX_FEATURES & ~BYPASS_CONFIG);
    fx_assert_view(&f.ep[0], NULL, 0);
    fx_assert_view(&f.ep[1], NULL, 0);
    g_assert_cmpuint(translate(&f, FX_EP_A, 0x1000, 8, false, &gpa), ==, 0);
    fx_fini(&f);
}

static void
test_boot_bypass_config_written(void)
{
    Fx f;

    fx_init(&f);
    /* Cleared before DRIVER_OK: it counts from DRIVER_OK on. */
    fx_driver_features(&f, FX_FEATURES);
    fx_mmio_write(&f, CFG_BYPASS, 1, 0);
    fx_assert_identity(&f.ep[0]);
    fx_driver_ok(&f);
    fx_assert_view(&f.ep[0], NULL, 0);
    g_assert_cmpuint(fx_mmio_read(&f, CFG_BYPASS, 1), ==, 0);
    fx_mmio_write(&f, CFG_BYPASS, 1, 1);
    fx_assert_identity(&f.ep[0]);
    fx_assert_identity(&f.ep[1]);
    /* Bit 0 only, in a wider write. */
    fx_mmio_write(&f, CFG_BYPASS, 4, 0xfe);
    g_assert_cmpuint(fx_mmio_read(&f, CFG_BYPASS, 1), ==, 0);
    fx_assert_view(&f.ep[1], NULL, 0);
    fx_fini(&f);
}

static void
test_attach_replaces_identity(void)
{
    const FxCall unmapped[] = {
        {'b'}, {'u', 0, FX_LOW}, {'u', FX_LOW, FX_RAM - FX_LOW}, {'e'}};
    Fx f;

    fx_init(&f);
    fx_driver_start(&f, FX_FEATURES);
    fx_clear_calls(&f);
    g_assert_cmpuint(fx_attach(&f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
    fx_assert_view(&f.ep[0], NULL, 0);
    fx_assert_identity(&f.ep[1]);
    assert_calls(&f.ep[0], "buue");
    for (unsigned i = 1; i < 3; i++) {
        FxCall *c = &g_array_index(f.ep[0].calls, FxCall, i);
        g_assert_cmphex(c->iova, ==, unmapped[i].iova);
        g_assert_cmphex(c->size, ==, unmapped[i].size);
    }
    assert_calls(&f.ep[1], "");
    fx_fini(&f);
}

static void
test_map_reaches_endpoint(void)
{
    const FxCall m = {'m', 0x10000, 0x10000, 0x200000, GW_IOMMU_MAP_F_READ};
    uint64_t gpa = 0;
    Fx f;

    fx_init(&f);
    fx_driver_start(&f, FX_FEATURES);
    g_assert_cmpuint(fx_attach(&f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
    fx_clear_calls(&f);
    g_assert_cmpuint(
        fx_map(&f, 1, 0x10000, 0x1ffff, 0x200000, VIRTIO_IOMMU_MAP_F_READ), ==,
        VIRTIO_IOMMU_S_OK);
    assert_calls(&f.ep[0], "bme");
    fx_assert_view(&f.ep[0], &m, 1);
    assert_calls(&f.ep[1], "");
    g_assert_cmpuint(translate(&f, FX_EP_A, 0x10800, 0x100000, false, &gpa), ==,
                     0xf800);
    g_assert_cmphex(gpa, ==, 0x200800);
    g_assert_cmpuint(translate(&f, FX_EP_A, 0x10800, 8, true, &gpa), ==, 0);
    g_assert_cmpuint(translate(&f, FX_EP_A, 0x20000, 8, false, &gpa), ==, 0);
    fx_fini(&f);
}

static void
test_map_every_endpoint(void)
{
    const FxCall m = {'m', 0x40000000, 0x2000, 0x300000, FX_RW};
    Fx f;

    fx_init(&f);
    fx_driver_start(&f, FX_FEATURES);
    g_assert_cmpuint(fx_attach(&f, 7, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_attach(&f, 7, FX_EP_B, 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_map(&f, 7, 0x40000000, 0x40001fff, 0x300000, FX_RW), ==,
                     VIRTIO_IOMMU_S_OK);
    fx_assert_view(&f.ep[0], &m, 1);
    fx_assert_view(&f.ep[1], &m, 1);
    /* A late comer gets the domain's mappings too. */
    g_assert_cmpuint(fx_detach(&f, 7, FX_EP_B), ==, VIRTIO_IOMMU_S_OK);
    fx_assert_identity(&f.ep[1]);
    g_assert_cmpuint(fx_attach(&f, 7, FX_EP_B, 0), ==, VIRTIO_IOMMU_S_OK);
    fx_assert_view(&f.ep[1], &m, 1);
    fx_fini(&f);
}

static void
test_unmap_reaches_endpoint(void)
{
    uint64_t gpa;
    Fx f;

    fx_init(&f);
    fx_driver_start(&f, FX_FEATURES);
    g_assert_cmpuint(fx_attach(&f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_map(&f, 1, 0x10000, 0x1ffff, 0x200000, FX_RW), ==,
                     VIRTIO_IOMMU_S_OK);
    fx_clear_calls(&f);
    g_assert_cmpuint(fx_unmap(&f, 1, 0x10000, 0x1ffff), ==, VIRTIO_IOMMU_S_OK);
    assert_calls(&f.ep[0], "bue");
    g_assert_cmphex(g_array_index(f.ep[0].calls, FxCall, 1).iova, ==, 0x10000);
    g_assert_cmphex(g_array_index(f.ep[0].calls, FxCall, 1).size, ==, 0x10000);
    fx_assert_view(&f.ep[0], NULL, 0);
    g_assert_cmpuint(translate(&f, FX_EP_A, 0x10000, 8, false, &gpa), ==, 0);
    fx_fini(&f);
}

/* virtio 1.2 5.13.6.6's examples, in pages: map(first, last). */
typedef struct {
    const char *name;
    unsigned n_maps;
    unsigned maps[2][2];
    unsigned unmap[2];
    uint8_t status;
    unsigned left; /* bit i: maps[i] is still mapped */
} UnmapCase;

static const UnmapCase unmap_cases[] = {
    {"1-nothing-mapped", 0, {{0}}, {0, 4}, VIRTIO_IOMMU_S_OK, 0},
    {"2-exactly-one", 1, {{0, 9}}, {0, 9}, VIRTIO_IOMMU_S_OK, 0},
    {"3-two-adjacent", 2, {{0, 4}, {5, 9}}, {0, 9}, VIRTIO_IOMMU_S_OK, 0},
    {"4-would-split", 1, {{0, 9}}, {0, 4}, VIRTIO_IOMMU_S_RANGE, 1},
    {"5-first-of-two", 2, {{0, 4}, {5, 9}}, {0, 4}, VIRTIO_IOMMU_S_OK, 2},
    {"6-spills-over", 1, {{0, 4}}, {0, 9}, VIRTIO_IOMMU_S_OK, 0},
    {"7-across-a-hole", 2, {{0, 4}, {10, 14}}, {0, 14}, VIRTIO_IOMMU_S_OK, 0},
    {"split-at-the-end", 2, {{0, 4}, {5, 9}}, {0, 7}, VIRTIO_IOMMU_S_RANGE, 3},
};

#define PAGE(n) (0x100000ull + 4096ull * (n))

static void
test_unmap_case(gconstpointer data)
{
    const UnmapCase *c = data;
    FxCall want[2];
    unsigned n = 0;
    Fx f;

    fx_init(&f);
    fx_driver_start(&f, FX_FEATURES);
    g_assert_cmpuint(fx_attach(&f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
    for (unsigned i = 0; i < c->n_maps; i++) {
        g_assert_cmpuint(fx_map(&f, 1, PAGE(c->maps[i][0]),
                                PAGE(c->maps[i][1] + 1) - 1,
                                PAGE(c->maps[i][0]) + 0x100000, FX_RW),
                         ==, VIRTIO_IOMMU_S_OK);
        if (c->left & (1u << i)) {
            want[n++] = (FxCall){'m', PAGE(c->maps[i][0]),
                                 4096ull * (c->maps[i][1] - c->maps[i][0] + 1),
                                 PAGE(c->maps[i][0]) + 0x100000, FX_RW};
        }
    }
    g_assert_cmpuint(
        fx_unmap(&f, 1, PAGE(c->unmap[0]), PAGE(c->unmap[1] + 1) - 1), ==,
        c->status);
    fx_assert_view(&f.ep[0], want, n);
    fx_fini(&f);
}

static void
test_attach_moves_endpoint(void)
{
    const FxCall m2 = {'m', 0x20000, 0x1000, 0x2000, FX_RW};
    g_autofree char *q = NULL;
    Fx f;

    fx_init(&f);
    fx_driver_start(&f, FX_FEATURES);
    g_assert_cmpuint(fx_attach(&f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_map(&f, 1, 0x10000, 0x10fff, 0x1000, FX_RW), ==,
                     VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_attach(&f, 2, FX_EP_B, 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_map(&f, 2, 0x20000, 0x20fff, 0x2000, FX_RW), ==,
                     VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_attach(&f, 2, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
    fx_assert_view(&f.ep[0], &m2, 1);
    fx_assert_view(&f.ep[1], &m2, 1);
    /* Domain 1 lost its last endpoint: gone with its mapping. */
    q = fx_query(&f);
    g_assert_null(strstr(q, "{\"id\":1,"));
    g_assert_cmpuint(fx_map(&f, 1, 0x30000, 0x30fff, 0, FX_RW), ==,
                     VIRTIO_IOMMU_S_NOENT);
    g_assert_cmpuint(fx_attach(&f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
    fx_assert_view(&f.ep[0], NULL, 0);
    /* Attaching where it is changes nothing. */
    fx_clear_calls(&f);
    g_assert_cmpuint(fx_attach(&f, 2, FX_EP_B, 0), ==, VIRTIO_IOMMU_S_OK);
    assert_calls(&f.ep[1], "");
    fx_assert_view(&f.ep[1], &m2, 1);
    fx_fini(&f);
}

static void
test_detach_destroys_domain(void)
{
    g_autofree char *q = NULL;
    Fx f;

    fx_init(&f);
    fx_driver_start(&f, FX_FEATURES);
    g_assert_cmpuint(fx_attach(&f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_map(&f, 1, 0x10000, 0x10fff, 0x1000, FX_RW), ==,
                     VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_detach(&f, 1, FX_EP_A), ==, VIRTIO_IOMMU_S_OK);
    fx_assert_identity(&f.ep[0]); /* bypass is 1 */
    q = fx_query(&f);
    g_assert_nonnull(strstr(q, "\"domains\":[]"));
    g_assert_cmpuint(fx_map(&f, 1, 0x10000, 0x10fff, 0x1000, FX_RW), ==,
                     VIRTIO_IOMMU_S_NOENT);
    /* With bypass 0 a detached endpoint has nothing at all. */
    fx_mmio_write(&f, CFG_BYPASS, 1, 0);
    g_assert_cmpuint(fx_attach(&f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_map(&f, 1, 0x10000, 0x10fff, 0x1000, FX_RW), ==,
                     VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_detach(&f, 1, FX_EP_A), ==, VIRTIO_IOMMU_S_OK);
    fx_assert_view(&f.ep[0], NULL, 0);
    /* Domain 0 is a domain like any other. */
    g_assert_cmpuint(fx_attach(&f, 0, FX_EP_B, 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_map(&f, 0, 0x10000, 0x10fff, 0x1000, FX_RW), ==,
                     VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(f.ep[1].view->len, ==, 1);
    g_assert_cmpuint(fx_detach(&f, 0, FX_EP_B), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_map(&f, 0, 0x10000, 0x10fff, 0x1000, FX_RW), ==,
                     VIRTIO_IOMMU_S_NOENT);
    fx_fini(&f);
}

static void
test_bypass_domain(void)
{
    Fx f;

    fx_init(&f);
    fx_driver_start(&f, FX_FEATURES);
    fx_mmio_write(&f, CFG_BYPASS, 1, 0);
    g_assert_cmpuint(fx_attach(&f, 3, FX_EP_A, VIRTIO_IOMMU_ATTACH_F_BYPASS),
                     ==, VIRTIO_IOMMU_S_OK);
    fx_assert_identity(&f.ep[0]);
    fx_assert_view(&f.ep[1], NULL, 0);
    g_assert_cmpuint(fx_map(&f, 3, 0x10000, 0x10fff, 0x1000, FX_RW), ==,
                     VIRTIO_IOMMU_S_INVAL);
    g_assert_cmpuint(fx_unmap(&f, 3, 0, 0xfff), ==, VIRTIO_IOMMU_S_INVAL);
    g_assert_cmpuint(fx_attach(&f, 3, FX_EP_B, 0), ==, VIRTIO_IOMMU_S_INVAL);
    g_assert_cmpuint(fx_attach(&f, 3, FX_EP_B, VIRTIO_IOMMU_ATTACH_F_BYPASS),
                     ==, VIRTIO_IOMMU_S_OK);
    fx_assert_identity(&f.ep[1]);
    /* Without BYPASS_CONFIG the flag is not one the device knows. */
    fx_driver_start(&f, FX_FEATURES & ~BYPASS_CONFIG);
    g_assert_cmpuint(fx_attach(&f, 4, FX_EP_A, VIRTIO_IOMMU_ATTACH_F_BYPASS),
                     ==, VIRTIO_IOMMU_S_INVAL);
    fx_fini(&f);
}

static void
check_reset(Fx *f, bool system)
{
    g_autofree char *q = NULL;

    if (system) {
        g_mutex_lock(&f->lock);
        gw_virtio_pci_reset(gw_virtio_iommu_pci(f->iommu));
        g_mutex_unlock(&f->lock);
    } else {
        fx_mmio_write(f, 0x14, 1, 0);
    }
    fx_assert_identity(&f->ep[0]);
    fx_assert_identity(&f->ep[1]);
    q = fx_query(f);
    g_assert_nonnull(strstr(q, "\"bypass\":true"));
    g_assert_nonnull(strstr(q, "\"domains\":[]"));
    g_assert_null(strstr(q, "\"domain\":1"));
}

static void
test_reset_clears(void)
{
    Fx f;

    fx_init(&f);
    for (unsigned system = 0; system < 2; system++) {
        fx_driver_start(&f, FX_FEATURES);
        g_assert_cmpuint(fx_attach(&f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
        g_assert_cmpuint(fx_map(&f, 1, 0x10000, 0x10fff, 0x1000, FX_RW), ==,
                         VIRTIO_IOMMU_S_OK);
        fx_mmio_write(&f, CFG_BYPASS, 1, 0);
        fx_assert_view(&f.ep[1], NULL, 0);
        check_reset(&f, system);
        g_assert_cmpuint(fx_mmio_read(&f, CFG_BYPASS, 1), ==, 1);
        fx_driver_start(&f, FX_FEATURES);
        g_assert_cmpuint(fx_map(&f, 1, 0x10000, 0x10fff, 0x1000, FX_RW), ==,
                         VIRTIO_IOMMU_S_NOENT);
        fx_mmio_write(&f, 0x14, 1, 0);
    }
    fx_fini(&f);
}

static void
test_replay(void)
{
    const FxCall want[] = {
        {'m', 0x10000, 0x1000, 0x1000, FX_RW},
        {'m', 0x80000, 0x3000, 0x5000, GW_IOMMU_MAP_F_WRITE}};
    g_autoptr(GError) err = NULL;
    Fx f;

    fx_init(&f);
    fx_driver_start(&f, FX_FEATURES);
    g_assert_cmpuint(fx_attach(&f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(
        fx_map(&f, 1, 0x80000, 0x82fff, 0x5000, VIRTIO_IOMMU_MAP_F_WRITE), ==,
        VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_map(&f, 1, 0x10000, 0x10fff, 0x1000, FX_RW), ==,
                     VIRTIO_IOMMU_S_OK);
    /* The backends lost everything (a reset without IOTLB_PERSIST). */
    g_array_set_size(f.ep[0].view, 0);
    g_array_set_size(f.ep[1].view, 0);
    g_mutex_lock(&f.lock);
    g_assert_true(gw_virtio_iommu_replay(f.iommu, FX_EP_A, &err));
    g_assert_true(gw_virtio_iommu_replay(f.iommu, FX_EP_B, &err));
    g_assert_false(gw_virtio_iommu_replay(f.iommu, 0x999, &err));
    g_mutex_unlock(&f.lock);
    g_assert_error(err, GW_ERROR, GW_ERROR_NOT_FOUND);
    fx_assert_view(&f.ep[0], want, 2);
    fx_assert_identity(&f.ep[1]);
    fx_fini(&f);
}

typedef struct {
    const char *name;
    uint64_t iova, len;
    bool write;
    uint64_t want_len, want_gpa;
} XlateCase;

/* Domain 1: [0x10000, 0x11fff] -> 0x3000 RW, [0x20000, 0x20fff] -> 0x8000
 * read-only, [0x30000, 0x30fff] -> 0x9000 write-only. */
static const XlateCase xlate_cases[] = {
    {"start", 0x10000, 16, false, 16, 0x3000},
    {"capped-at-mapping-end", 0x11ff0, 0x100, true, 0x10, 0x4ff0},
    {"last-byte", 0x11fff, 1, true, 1, 0x4fff},
    {"hole", 0x12000, 1, false, 0, 0},
    {"before-all", 0xffff, 1, false, 0, 0},
    {"read-only-read", 0x20010, 8, false, 8, 0x8010},
    {"read-only-write", 0x20010, 8, true, 0, 0},
    {"write-only-write", 0x30000, 8, true, 8, 0x9000},
    {"write-only-read", 0x30000, 8, false, 0, 0},
    {"past-all", 0x40000, 8, false, 0, 0},
    {"zero-length", 0x10000, 0, false, 0, 0},
};

static void
test_translate(void)
{
    Fx f;

    fx_init(&f);
    fx_driver_start(&f, FX_FEATURES);
    g_assert_cmpuint(fx_attach(&f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(
        fx_map(&f, 1, 0x30000, 0x30fff, 0x9000, VIRTIO_IOMMU_MAP_F_WRITE), ==,
        VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_map(&f, 1, 0x10000, 0x11fff, 0x3000, FX_RW), ==,
                     VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(
        fx_map(&f, 1, 0x20000, 0x20fff, 0x8000, VIRTIO_IOMMU_MAP_F_READ), ==,
        VIRTIO_IOMMU_S_OK);
    for (size_t i = 0; i < G_N_ELEMENTS(xlate_cases); i++) {
        const XlateCase *c = &xlate_cases[i];
        uint64_t gpa = 0;

        g_test_message("translate: %s", c->name);
        g_assert_cmphex(translate(&f, FX_EP_A, c->iova, c->len, c->write, &gpa),
                        ==, c->want_len);
        if (c->want_len) {
            g_assert_cmphex(gpa, ==, c->want_gpa);
        }
    }
    g_assert_cmpuint(translate(&f, 0x4242, 0x1000, 8, false, NULL), ==, 0);
    fx_fini(&f);
}

static void
test_query(void)
{
    g_autofree char *q = NULL;
    Fx f;

    fx_init(&f);
    fx_driver_start(&f, FX_FEATURES);
    g_assert_cmpuint(fx_attach(&f, 5, FX_EP_B, 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(
        fx_map(&f, 5, 0x10000, 0x10fff, 0x1000, VIRTIO_IOMMU_MAP_F_READ), ==,
        VIRTIO_IOMMU_S_OK);
    q = fx_query(&f);
    g_assert_cmpstr(
        q, ==,
        "{\"bypass\":true,\"endpoints\":["
        "{\"id\":8,\"domain\":null,\"bypassing\":true},"
        "{\"id\":16,\"domain\":5,\"bypassing\":false}],"
        "\"domains\":[{\"id\":5,\"bypass\":false,\"mappings\":["
        "{\"virt-start\":65536,\"virt-end\":69631,\"phys-start\":4096,"
        "\"flags\":1}]}]}");
    fx_fini(&f);
}

static void
test_endpoint_add_remove(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *q = NULL;
    FxEndpoint extra = {0};
    Fx f;

    fx_init(&f);
    fx_driver_start(&f, FX_FEATURES);
    g_assert_cmpuint(fx_attach(&f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_map(&f, 1, 0x10000, 0x10fff, 0x1000, FX_RW), ==,
                     VIRTIO_IOMMU_S_OK);
    fx_clear_calls(&f);
    extra.calls = g_array_new(FALSE, FALSE, sizeof(FxCall));
    extra.view = g_array_new(FALSE, FALSE, sizeof(FxCall));
    extra.fail_op = 2;
    g_mutex_lock(&f.lock);
    gw_virtio_iommu_remove_endpoint(f.iommu, FX_EP_A);
    g_assert_false(gw_virtio_iommu_add_endpoint(
        f.iommu, FX_EP_B, &fx_endpoint_ops, &extra, &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_EXISTS);
    g_clear_error(&err);
    /* Its first mappings fail: not added, what was mapped undone. */
    g_assert_false(gw_virtio_iommu_add_endpoint(f.iommu, 0x18, &fx_endpoint_ops,
                                                &extra, &err));
    g_mutex_unlock(&f.lock);
    g_assert_nonnull(err);
    assert_calls(&f.ep[0], ""); /* its backend is being closed */
    fx_assert_view(&extra, NULL, 0);
    q = fx_query(&f);
    g_assert_cmpstr(q, ==,
                    "{\"bypass\":true,\"endpoints\":[{\"id\":16,\"domain\":"
                    "null,\"bypassing\":true}],\"domains\":[]}");
    g_assert_cmpuint(fx_attach(&f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_NOENT);
    g_array_unref(extra.calls);
    g_array_unref(extra.view);
    fx_fini(&f);
}

/* An endpoint whose ops look whether the space lock is held for
 * writing (a reader could not take it) each time they are called. */
typedef struct {
    GwVirtioIommu *iommu;
    unsigned calls, unlocked;
} LockProbe;

static void
probe_lock(LockProbe *p)
{
    p->calls++;
    if (g_rw_lock_reader_trylock(&p->iommu->space_lock)) {
        g_rw_lock_reader_unlock(&p->iommu->space_lock);
        p->unlocked++;
    }
}

static bool
probe_map(void *opaque, uint64_t iova, uint64_t size, uint64_t gpa,
          unsigned flags, GError **errp)
{
    probe_lock(opaque);
    return true;
}

static bool
probe_unmap(void *opaque, uint64_t iova, uint64_t size, GError **errp)
{
    probe_lock(opaque);
    return true;
}

static bool
probe_batch(void *opaque, GError **errp)
{
    probe_lock(opaque);
    return true;
}

static const GwIommuEndpointOps probe_ops = {probe_map, probe_unmap,
                                             probe_batch, probe_batch};

/*
 * Every change translation could see is pushed with the space lock
 * held for writing — adding the endpoint, leaving boot bypass by a
 * `bypass` write, ATTACH, MAP, UNMAP, DETACH, a reset — so the relay's
 * translations wait for it; and none takes it twice (that would hang).
 */
static void
test_writers_hold_space_lock(void)
{
    LockProbe p = {0};
    uint64_t gpa;
    Fx f;

    fx_init(&f);
    p.iommu = f.iommu;
    g_mutex_lock(&f.lock);
    g_assert_true(
        gw_virtio_iommu_add_endpoint(f.iommu, 0x18, &probe_ops, &p, NULL));
    g_mutex_unlock(&f.lock);
    fx_driver_start(&f, FX_FEATURES);
    fx_mmio_write(&f, CFG_BYPASS, 1, 0);
    g_assert_cmpuint(fx_attach(&f, 1, 0x18, 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_map(&f, 1, 0x10000, 0x10fff, 0x1000, FX_RW), ==,
                     VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_unmap(&f, 1, 0x10000, 0x10fff), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_map(&f, 1, 0x10000, 0x10fff, 0x1000, FX_RW), ==,
                     VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_detach(&f, 1, 0x18), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_attach(&f, 2, 0x18, 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_map(&f, 2, 0x10000, 0x10fff, 0x1000, FX_RW), ==,
                     VIRTIO_IOMMU_S_OK);
    fx_mmio_write(&f, 0x14, 1, 0);
    g_assert_cmpuint(p.calls, >=, 20);
    g_assert_cmpuint(p.unlocked, ==, 0);
    /* Released after each: a reader gets in (boot bypass: identity). */
    g_assert_cmpuint(translate(&f, 0x18, 0x1000, 8, true, &gpa), ==, 8);
    g_mutex_lock(&f.lock);
    gw_virtio_iommu_remove_endpoint(f.iommu, 0x18);
    g_mutex_unlock(&f.lock);
    g_assert_cmpuint(translate(&f, 0x18, 0x1000, 8, true, &gpa), ==, 0);
    fx_fini(&f);
}

/* How a writable mapping leaves endpoint A in test_dirty_case. */
typedef enum { LOSE_UNMAP, LOSE_DETACH, LOSE_RESET } LoseHow;

static bool
page_dirty(const unsigned long *bits, uint64_t gpa)
{
    uint64_t p = gpa / GW_MEM_PAGE;

    return bits[p / (8 * sizeof(long))] & (1ul << (p % (8 * sizeof(long))));
}

/*
 * While dirty tracking runs, a writable mapping an endpoint loses has
 * its guest-physical pages (not its IOVAs) marked dirty: the device may
 * have written them and nobody can translate them any more.  A
 * read-only mapping lost with it is not marked.
 */
static void
test_dirty_case(gconstpointer data)
{
    LoseHow how = GPOINTER_TO_UINT(data);
    g_autofree unsigned long *bits = NULL;
    Fx f;

    fx_init(&f);
    bits = g_new0(unsigned long, gw_mem_dirty_words(&f.gm));
    fx_driver_start(&f, FX_FEATURES);
    g_assert_cmpuint(fx_attach(&f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_map(&f, 1, 0x400000, 0x401fff, 0x600000, FX_RW), ==,
                     VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(
        fx_map(&f, 1, 0x440000, 0x440fff, 0x700000, GW_IOMMU_MAP_F_READ), ==,
        VIRTIO_IOMMU_S_OK);
    gw_mem_dirty_start(&f.gm);
    if (how == LOSE_UNMAP) {
        g_assert_cmpuint(fx_unmap(&f, 1, 0x400000, 0x4fffff), ==,
                         VIRTIO_IOMMU_S_OK);
    } else if (how == LOSE_DETACH) {
        g_assert_cmpuint(fx_detach(&f, 1, FX_EP_A), ==, VIRTIO_IOMMU_S_OK);
    } else {
        fx_mmio_write(&f, 0x14, 1, 0);
    }
    gw_mem_dirty_collect(&f.gm, bits);
    gw_mem_dirty_stop(&f.gm);
    g_assert_true(page_dirty(bits, 0x600000));
    g_assert_true(page_dirty(bits, 0x601000));
    g_assert_false(page_dirty(bits, 0x602000));
    g_assert_false(page_dirty(bits, 0x700000)); /* read-only */
    g_assert_false(page_dirty(bits, 0x400000)); /* an IOVA, not a GPA */
    fx_fini(&f);
}

/* Without dirty tracking (no migration) an unmap marks nothing. */
static void
test_dirty_untracked(void)
{
    g_autofree unsigned long *bits = NULL;
    Fx f;

    fx_init(&f);
    bits = g_new0(unsigned long, gw_mem_dirty_words(&f.gm));
    fx_driver_start(&f, FX_FEATURES);
    g_assert_cmpuint(fx_attach(&f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_map(&f, 1, 0x10000, 0x11fff, 0x600000, FX_RW), ==,
                     VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_unmap(&f, 1, 0x10000, 0x11fff), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(gw_mem_dirty_collect(&f.gm, bits), ==, 0);
    fx_fini(&f);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/virtio-iommu/pci/ids-features-and-config",
                    test_pci_function);
    g_test_add_func("/virtio-iommu/boot-bypass/identity-before-the-driver",
                    test_boot_bypass_before_driver);
    g_test_add_func("/virtio-iommu/boot-bypass/kept-with-bypass-config",
                    test_boot_bypass_kept);
    g_test_add_func("/virtio-iommu/boot-bypass/lost-without-bypass-config",
                    test_boot_bypass_lost_without_bypass_config);
    g_test_add_func("/virtio-iommu/boot-bypass/follows-config-bypass",
                    test_boot_bypass_config_written);
    g_test_add_func("/virtio-iommu/attach/replaces-identity-in-one-batch",
                    test_attach_replaces_identity);
    g_test_add_func("/virtio-iommu/attach/moves-endpoint-between-domains",
                    test_attach_moves_endpoint);
    g_test_add_func("/virtio-iommu/attach/bypass-domain-is-identity",
                    test_bypass_domain);
    g_test_add_func("/virtio-iommu/detach/destroys-empty-domain",
                    test_detach_destroys_domain);
    g_test_add_func("/virtio-iommu/map/reaches-endpoint-ops",
                    test_map_reaches_endpoint);
    g_test_add_func("/virtio-iommu/map/reaches-every-endpoint-of-domain",
                    test_map_every_endpoint);
    g_test_add_func("/virtio-iommu/unmap/reaches-endpoint-ops",
                    test_unmap_reaches_endpoint);
    for (size_t i = 0; i < G_N_ELEMENTS(unmap_cases); i++) {
        g_autofree char *p = g_strdup_printf(
            "/virtio-iommu/unmap/spec-example/%s", unmap_cases[i].name);
        g_test_add_data_func(p, &unmap_cases[i], test_unmap_case);
    }
    g_test_add_func("/virtio-iommu/reset/detaches-all-and-bypasses",
                    test_reset_clears);
    g_test_add_func("/virtio-iommu/replay/pushes-current-space", test_replay);
    g_test_add_func("/virtio-iommu/translate/by-iova-and-permission",
                    test_translate);
    g_test_add_func("/virtio-iommu/query/endpoints-and-domains", test_query);
    g_test_add_func("/virtio-iommu/endpoint/add-and-remove",
                    test_endpoint_add_remove);
    g_test_add_data_func("/virtio-iommu/dirty/unmap-marks-writable-gpas",
                         GUINT_TO_POINTER(LOSE_UNMAP), test_dirty_case);
    g_test_add_data_func("/virtio-iommu/dirty/detach-marks-writable-gpas",
                         GUINT_TO_POINTER(LOSE_DETACH), test_dirty_case);
    g_test_add_data_func("/virtio-iommu/dirty/reset-marks-writable-gpas",
                         GUINT_TO_POINTER(LOSE_RESET), test_dirty_case);
    g_test_add_func("/virtio-iommu/space-lock/writers-hold-it-around-ops",
                    test_writers_hold_space_lock);
    g_test_add_func("/virtio-iommu/dirty/nothing-without-tracking",
                    test_dirty_untracked);
    return g_test_run();
}
