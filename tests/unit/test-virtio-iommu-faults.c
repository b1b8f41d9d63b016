/*
 * virtio-iommu when things fail: hostile request rings (NEEDS_RESET,
 * the queue stopped, the VM running, nothing touched outside guest RAM,
 * a reset recovers), endpoint ops that fail (DEVERR, and the IOMMU's
 * view and every endpoint's rolled back), and what answering writes:
 * the dirty bitmap and the driver's interrupt.
 */
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <linux/virtio_ring.h>
#include <godwit/util.h>
#include <godwit/virtio-pci.h>
#include "iommu-fixture.h"

#define NEEDS_RESET GW_VIRTIO_STATUS_NEEDS_RESET

/* The warning a failure gives, which the test requires. */
static void
expect_warning(const char *pattern)
{
    g_test_expect_message("godwit", G_LOG_LEVEL_WARNING, pattern);
}

/* How many bytes from `iova` endpoint `ep` may read (8 asked). */
static uint64_t
translate_len(Fx *f, uint32_t ep, uint64_t iova, uint64_t *gpa)
{
    uint64_t n;

    g_mutex_lock(&f->lock);
    n = gw_virtio_iommu_translate(f->iommu, ep, iova, 8, false, gpa);
    g_mutex_unlock(&f->lock);
    return n;
}

/* ---- hostile rings ---- */

typedef struct {
    const char *name;
    /* Makes the ring bad: `head` is a good chain just published. */
    void (*spoil)(GwTestVring *vr, uint16_t head);
} HostileCase;

static struct vring_desc *
desc(GwTestVring *vr, uint16_t i)
{
    return &vr->desc[i];
}

static void
head_out_of_range(GwTestVring *vr, uint16_t head)
{
    vr->avail->ring[(vr->avail_idx - 1) % vr->num] = vr->num;
}

static void
next_out_of_range(GwTestVring *vr, uint16_t head)
{
    desc(vr, head)->next = 200;
}

static void
self_loop(GwTestVring *vr, uint16_t head)
{
    desc(vr, head)->next = head;
}

static void
two_desc_loop(GwTestVring *vr, uint16_t head)
{
    uint16_t second = desc(vr, head)->next;

    desc(vr, second)->flags = VRING_DESC_F_NEXT; /* readable, back to head */
    desc(vr, second)->next = head;
}

static void
avail_far_ahead(GwTestVring *vr, uint16_t head)
{
    vr->avail->idx = vr->avail_idx + vr->num;
}

static void
buffer_outside_ram(GwTestVring *vr, uint16_t head)
{
    desc(vr, head)->addr = FX_RAM - 8;
}

static void
buffer_wraps(GwTestVring *vr, uint16_t head)
{
    desc(vr, head)->addr = UINT64_MAX - 8;
}

static void
writable_outside_ram(GwTestVring *vr, uint16_t head)
{
    desc(vr, desc(vr, head)->next)->addr = 0x7fff00000000ull;
}

static void
indirect(GwTestVring *vr, uint16_t head)
{
    desc(vr, head)->flags |= VRING_DESC_F_INDIRECT;
}

static void
readable_after_writable(GwTestVring *vr, uint16_t head)
{
    desc(vr, head)->flags |= VRING_DESC_F_WRITE;
    desc(vr, desc(vr, head)->next)->flags &= ~VRING_DESC_F_WRITE;
}

static const HostileCase hostile_cases[] = {
    {"head-out-of-range", head_out_of_range},
    {"next-out-of-range", next_out_of_range},
    {"descriptor-loop", self_loop},
    {"two-descriptor-loop", two_desc_loop},
    {"avail-idx-far-ahead", avail_far_ahead},
    {"buffer-outside-ram", buffer_outside_ram},
    {"buffer-wraps-address-space", buffer_wraps},
    {"writable-buffer-outside-ram", writable_outside_ram},
    {"indirect-not-offered", indirect},
    {"readable-after-writable", readable_after_writable},
};

/* Publishes an ATTACH (B to domain 2) without kicking; its head. */
static uint16_t
post_attach(Fx *f)
{
    struct virtio_iommu_req_attach r = {{VIRTIO_IOMMU_T_ATTACH}, 2, FX_EP_B};
    GwTestBuf bufs[2] = {{f->req_gpa, 20, false}, {f->resp_gpa, 4, true}};
    uint16_t head;

    memcpy(f->req, &r, sizeof(r));
    memset(f->resp, 0xee, 4);
    g_assert_true(gw_test_vring_add(f->rq, bufs, 2, &head));
    return head;
}

static void
test_hostile(gconstpointer data)
{
    const HostileCase *c = data;
    uint16_t used;
    Fx f;

    fx_init(&f);
    fx_driver_start(&f, FX_FEATURES);
    fx_clear_calls(&f);
    c->spoil(f.rq, post_attach(&f));
    __atomic_thread_fence(__ATOMIC_RELEASE);
    fx_mmio_write(&f, 0x3000, 2, 0);
    fx_run(&f);
    g_assert_cmpuint(fx_status(&f) & NEEDS_RESET, ==, NEEDS_RESET);
    g_assert_cmpuint(gw_test_vring_used_idx(f.rq), ==, 0);
    g_assert_cmpuint(f.resp[0], ==, 0xee);
    g_assert_cmpuint(f.ep[1].calls->len, ==, 0);
    /* Stopped: a good request now is not taken. */
    used = gw_test_vring_used_idx(f.rq);
    post_attach(&f);
    fx_mmio_write(&f, 0x3000, 2, 0);
    fx_run(&f);
    g_assert_cmpuint(gw_test_vring_used_idx(f.rq), ==, used);
    fx_assert_identity(&f.ep[1]);
    /* A reset and a new start recover. */
    fx_driver_start(&f, FX_FEATURES);
    g_assert_cmpuint(fx_attach(&f, 2, FX_EP_B, 0), ==, VIRTIO_IOMMU_S_OK);
    fx_assert_view(&f.ep[1], NULL, 0);
    fx_fini(&f);
}

static void
test_rings_outside_ram(void)
{
    Fx f;

    fx_init(&f);
    fx_driver_features(&f, FX_FEATURES & ~(1ull << 6));
    fx_mmio_write(&f, 0x16, 2, 0);
    fx_mmio_write(&f, 0x30, 8, FX_RAM - 64); /* used ring past the end */
    expect_warning("*failed to start*rings are not in guest RAM*");
    fx_driver_ok(&f);
    g_test_assert_expected_messages();
    g_assert_cmpuint(fx_status(&f) & NEEDS_RESET, ==, NEEDS_RESET);
    /* It never started: the endpoints still bypass. */
    fx_assert_identity(&f.ep[0]);
    fx_fini(&f);
}

/* ---- endpoint ops that fail ---- */

static void
test_map_failure_rolls_back(void)
{
    const FxCall m = {'m', 0x10000, 0x1000, 0x1000, FX_RW};
    g_autofree char *q = NULL;
    uint64_t gpa;
    Fx f;

    fx_init(&f);
    fx_driver_start(&f, FX_FEATURES);
    g_assert_cmpuint(fx_attach(&f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_attach(&f, 1, FX_EP_B, 0), ==, VIRTIO_IOMMU_S_OK);
    fx_clear_calls(&f);
    f.ep[1].fail_op = 1;
    expect_warning("virtio-iommu: endpoint 0x10: fake endpoint failure");
    g_assert_cmpuint(fx_map(&f, 1, 0x10000, 0x10fff, 0x1000, FX_RW), ==,
                     VIRTIO_IOMMU_S_DEVERR);
    g_test_assert_expected_messages();
    fx_assert_view(&f.ep[0], NULL, 0); /* mapped, then unmapped again */
    g_assert_cmpuint(f.ep[0].n_calls, ==, 2);
    fx_assert_view(&f.ep[1], NULL, 0);
    g_assert_cmpuint(translate_len(&f, FX_EP_A, 0x10000, &gpa), ==, 0);
    q = fx_query(&f);
    g_assert_nonnull(strstr(q, "\"mappings\":[]"));
    g_assert_cmpuint(fx_map(&f, 1, 0x10000, 0x10fff, 0x1000, FX_RW), ==,
                     VIRTIO_IOMMU_S_OK);
    fx_assert_view(&f.ep[0], &m, 1);
    fx_assert_view(&f.ep[1], &m, 1);
    g_assert_cmpuint(fx_status(&f) & NEEDS_RESET, ==, 0);
    fx_fini(&f);
}

static void
test_unmap_failure_rolls_back(void)
{
    const FxCall m = {'m', 0x10000, 0x1000, 0x1000, FX_RW};
    uint64_t gpa = 0;
    Fx f;

    fx_init(&f);
    fx_driver_start(&f, FX_FEATURES);
    g_assert_cmpuint(fx_attach(&f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_attach(&f, 1, FX_EP_B, 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_map(&f, 1, 0x10000, 0x10fff, 0x1000, FX_RW), ==,
                     VIRTIO_IOMMU_S_OK);
    f.ep[1].fail_op = 1;
    expect_warning("virtio-iommu: endpoint 0x10: fake endpoint failure");
    g_assert_cmpuint(fx_unmap(&f, 1, 0, 0xfffff), ==, VIRTIO_IOMMU_S_DEVERR);
    g_test_assert_expected_messages();
    fx_assert_view(&f.ep[0], &m, 1); /* unmapped, then mapped again */
    fx_assert_view(&f.ep[1], &m, 1);
    g_assert_cmpuint(translate_len(&f, FX_EP_B, 0x10010, &gpa), ==, 8);
    g_assert_cmphex(gpa, ==, 0x1010);
    fx_fini(&f);
}

typedef struct {
    const char *name;
    unsigned fail_op;     /* which call of endpoint A fails; 0: batch_end */
    bool other_in_domain; /* B is in domain 1 with a mapping first */
} AttachFailCase;

static const AttachFailCase attach_fail_cases[] = {
    {"first-unmap", 1, false},
    {"second-unmap", 2, false},
    {"batch-end", 0, false},
    {"mapping-the-domain", 3, true},
};

static void
test_attach_failure(gconstpointer data)
{
    const AttachFailCase *c = data;
    g_autofree char *q = NULL;
    Fx f;

    fx_init(&f);
    fx_driver_start(&f, FX_FEATURES);
    if (c->other_in_domain) {
        g_assert_cmpuint(fx_attach(&f, 1, FX_EP_B, 0), ==, VIRTIO_IOMMU_S_OK);
        g_assert_cmpuint(fx_map(&f, 1, 0x10000, 0x10fff, 0x1000, FX_RW), ==,
                         VIRTIO_IOMMU_S_OK);
    }
    f.ep[0].fail_op = c->fail_op;
    f.ep[0].fail_end = c->fail_op == 0;
    expect_warning("virtio-iommu: endpoint 0x8: fake*failure");
    g_assert_cmpuint(fx_attach(&f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_DEVERR);
    g_test_assert_expected_messages();
    fx_assert_identity(&f.ep[0]);
    q = fx_query(&f);
    g_assert_nonnull(
        strstr(q, "{\"id\":8,\"domain\":null,\"bypassing\":true}"));
    if (!c->other_in_domain) {
        g_assert_nonnull(strstr(q, "\"domains\":[]"));
    }
    g_assert_cmpuint(fx_attach(&f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
    fx_fini(&f);
}

static void
test_bypass_write_failure(void)
{
    Fx f;

    fx_init(&f);
    fx_driver_start(&f, FX_FEATURES);
    f.ep[1].fail_op = 2;
    expect_warning("virtio-iommu: bypass 0: *fake endpoint failure");
    fx_mmio_write(&f, 0x2000 + 36, 1, 0);
    g_test_assert_expected_messages();
    g_assert_cmpuint(fx_status(&f) & NEEDS_RESET, ==, NEEDS_RESET);
    g_assert_cmpuint(fx_mmio_read(&f, 0x2000 + 36, 1), ==, 1);
    fx_assert_identity(&f.ep[0]);
    fx_assert_identity(&f.ep[1]);
    fx_fini(&f);
}

static void
test_activation_failure(void)
{
    Fx f;

    fx_init(&f);
    f.ep[1].fail_op = 1;
    fx_driver_features(&f, FX_FEATURES & ~(1ull << 6));
    expect_warning("*failed to start*endpoint 0x10: fake endpoint failure");
    fx_driver_ok(&f);
    g_test_assert_expected_messages();
    g_assert_cmpuint(fx_status(&f) & NEEDS_RESET, ==, NEEDS_RESET);
    fx_assert_identity(&f.ep[0]);
    fx_assert_identity(&f.ep[1]);
    fx_fini(&f);
}

/* ---- what answering writes ---- */

static bool
page_dirty(const unsigned long *bits, uint64_t gpa)
{
    uint64_t p = gpa / 4096;

    return bits[p / (8 * sizeof(long))] & (1ul << (p % (8 * sizeof(long))));
}

static void
test_dirty_pages(void)
{
    g_autofree unsigned long *bits = NULL;
    Fx f;

    fx_init(&f);
    fx_driver_start(&f, FX_FEATURES);
    bits = g_new0(unsigned long, gw_mem_dirty_words(&f.gm));
    /* Before tracking: leaving boot bypass marks all of RAM (what an
     * endpoint loses is dirty, test-virtio-iommu.c's dirty/ paths). */
    g_assert_cmpuint(fx_attach(&f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
    gw_mem_dirty_start(&f.gm);
    g_assert_cmpuint(fx_map(&f, 1, 0x400000, 0x400fff, 0x600000, FX_RW), ==,
                     VIRTIO_IOMMU_S_OK);
    gw_mem_dirty_stop(&f.gm);
    gw_mem_dirty_collect(&f.gm, bits);
    g_assert_true(page_dirty(bits, f.resp_gpa));          /* the status */
    g_assert_true(page_dirty(bits, f.rq->used_iova));     /* the used ring */
    g_assert_true(page_dirty(bits, f.rq->used_iova + 2)); /* its index */
    g_assert_false(page_dirty(bits, f.req_gpa));          /* only read */
    fx_fini(&f);
}

static bool
fd_ready(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    eventfd_t v;

    if (poll(&p, 1, 0) == 1) {
        eventfd_read(fd, &v);
        return true;
    }
    return false;
}

static void
test_interrupt(void)
{
    GwVirtqueueSetup q;
    Fx f;

    fx_init(&f);
    fx_driver_start(&f, FX_FEATURES);
    g_assert_true(gw_virtio_pci_queue(gw_virtio_iommu_pci(f.iommu), 0, &q));
    fd_ready(q.call_fd);
    g_assert_cmpuint(fx_attach(&f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_true(fd_ready(q.call_fd));
    f.rq->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
    g_assert_cmpuint(fx_detach(&f, 1, FX_EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_false(fd_ready(q.call_fd));
    fx_fini(&f);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(hostile_cases); i++) {
        g_autofree char *p = g_strdup_printf(
            "/virtio-iommu/hostile-ring/%s-needs-reset", hostile_cases[i].name);
        g_test_add_data_func(p, &hostile_cases[i], test_hostile);
    }
    g_test_add_func("/virtio-iommu/hostile-ring/rings-outside-ram-fail-start",
                    test_rings_outside_ram);
    g_test_add_func("/virtio-iommu/ops-failure/map-deverr-rolls-back",
                    test_map_failure_rolls_back);
    g_test_add_func("/virtio-iommu/ops-failure/unmap-deverr-rolls-back",
                    test_unmap_failure_rolls_back);
    for (size_t i = 0; i < G_N_ELEMENTS(attach_fail_cases); i++) {
        g_autofree char *p =
            g_strdup_printf("/virtio-iommu/ops-failure/attach-deverr-at-%s",
                            attach_fail_cases[i].name);
        g_test_add_data_func(p, &attach_fail_cases[i], test_attach_failure);
    }
    g_test_add_func("/virtio-iommu/ops-failure/bypass-write-needs-reset",
                    test_bypass_write_failure);
    g_test_add_func("/virtio-iommu/ops-failure/activation-needs-reset",
                    test_activation_failure);
    g_test_add_func("/virtio-iommu/ring/used-ring-and-status-marked-dirty",
                    test_dirty_pages);
    g_test_add_func("/virtio-iommu/ring/interrupts-unless-suppressed",
                    test_interrupt);
    return g_test_run();
}
