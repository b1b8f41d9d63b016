/*
 * virtio-iommu against a driver that gets things wrong: every status
 * the spec gives a bad ATTACH/DETACH/MAP/UNMAP/PROBE (nothing reaches
 * the endpoints' ops), requests that cannot be answered at all, and
 * the mapping limit.  Hostile rings: test-virtio-iommu-ring.c.
 */
#include <string.h>
#include <godwit/virtio-pci.h>
#include "iommu-fixture.h"

#define MAPPED_START 0x100000ull
#define MAPPED_END   0x1fffffull
#define MAPPED_PHYS  0x200000ull

typedef struct {
    const char *name;
    uint8_t type;
    uint32_t domain, endpoint, flags;
    uint64_t start, end, phys;
    uint8_t reserved; /* ATTACH's first reserved byte */
    int in_delta;     /* device-readable bytes more than the type's */
    uint32_t w_len;   /* device-writable bytes; 0: the type's */
    uint8_t status;
} StatusCase;

#define MAP(n, s, e, p, fl, st)                                                \
    {                                                                          \
        n, VIRTIO_IOMMU_T_MAP, 1, 0, fl, s, e, p, 0, 0, 0, st                  \
    }
#define RW FX_RW

static const StatusCase status_cases[] = {
    MAP("map/unaligned-virt-start", 0x300800, 0x300fff, 0x1000, RW,
        VIRTIO_IOMMU_S_RANGE),
    MAP("map/unaligned-virt-end", 0x300000, 0x3007ff, 0x1000, RW,
        VIRTIO_IOMMU_S_RANGE),
    MAP("map/unaligned-phys", 0x300000, 0x300fff, 0x1800, RW,
        VIRTIO_IOMMU_S_RANGE),
    MAP("map/outside-input-range", GW_IOMMU_INPUT_END + 1,
        GW_IOMMU_INPUT_END + 0x1000, 0x1000, RW, VIRTIO_IOMMU_S_RANGE),
    MAP("map/ends-past-input-range", GW_IOMMU_INPUT_END - 0xfff,
        GW_IOMMU_INPUT_END + 0x1000, 0x1000, RW, VIRTIO_IOMMU_S_RANGE),
    MAP("map/end-before-start", 0x301000, 0x300fff, 0x1000, RW,
        VIRTIO_IOMMU_S_INVAL),
    MAP("map/overlapping-a-mapping", 0x1ff000, 0x200fff, 0x1000, RW,
        VIRTIO_IOMMU_S_INVAL),
    MAP("map/inside-a-mapping", 0x150000, 0x150fff, 0x1000, RW,
        VIRTIO_IOMMU_S_INVAL),
    MAP("map/msi-doorbell", 0xfee00000, 0xfee00fff, 0x1000, RW,
        VIRTIO_IOMMU_S_INVAL),
    MAP("map/phys-outside-ram", 0x300000, 0x300fff, FX_RAM, RW,
        VIRTIO_IOMMU_S_INVAL),
    MAP("map/phys-wraps", 0x300000, 0x301fff, 0xfffffffffffff000ull, RW,
        VIRTIO_IOMMU_S_INVAL),
    MAP("map/phys-straddles-ram-regions", 0x300000, 0x301fff, FX_LOW - 0x1000,
        RW, VIRTIO_IOMMU_S_INVAL),
    {"map/unknown-domain", VIRTIO_IOMMU_T_MAP, 9, 0, RW, 0x300000, 0x300fff,
     0x1000, 0, 0, 0, VIRTIO_IOMMU_S_NOENT},
    MAP("map/unknown-flag", 0x300000, 0x300fff, 0x1000, RW | 8,
        VIRTIO_IOMMU_S_INVAL),
    MAP("map/mmio-flag-not-offered", 0x300000, 0x300fff, 0x1000,
        VIRTIO_IOMMU_MAP_F_READ | VIRTIO_IOMMU_MAP_F_MMIO,
        VIRTIO_IOMMU_S_INVAL),
    MAP("map/no-permission", 0x300000, 0x300fff, 0x1000, 0,
        VIRTIO_IOMMU_S_UNSUPP),
    {"unmap/would-split-a-mapping", VIRTIO_IOMMU_T_UNMAP, 1, 0, 0, 0x100000,
     0x100fff, 0, 0, 0, 0, VIRTIO_IOMMU_S_RANGE},
    {"unmap/unknown-domain", VIRTIO_IOMMU_T_UNMAP, 9, 0, 0, 0x100000, 0x1fffff,
     0, 0, 0, 0, VIRTIO_IOMMU_S_NOENT},
    {"unmap/nothing-mapped-there", VIRTIO_IOMMU_T_UNMAP, 1, 0, 0, 0x400000,
     0x4fffff, 0, 0, 0, 0, VIRTIO_IOMMU_S_OK},
    {"unmap/end-before-start", VIRTIO_IOMMU_T_UNMAP, 1, 0, 0, 0x200000,
     0x100000, 0, 0, 0, 0, VIRTIO_IOMMU_S_INVAL},
    {"attach/unknown-endpoint", VIRTIO_IOMMU_T_ATTACH, 1, 0x77, 0, 0, 0, 0, 0,
     0, 0, VIRTIO_IOMMU_S_NOENT},
    {"attach/unknown-flag", VIRTIO_IOMMU_T_ATTACH, 2, FX_EP_B, 2, 0, 0, 0, 0, 0,
     0, VIRTIO_IOMMU_S_INVAL},
    {"attach/reserved-not-zero", VIRTIO_IOMMU_T_ATTACH, 2, FX_EP_B, 0, 0, 0, 0,
     1, 0, 0, VIRTIO_IOMMU_S_INVAL},
    {"attach/bypass-flag-on-a-mapping-domain", VIRTIO_IOMMU_T_ATTACH, 1,
     FX_EP_B, VIRTIO_IOMMU_ATTACH_F_BYPASS, 0, 0, 0, 0, 0, 0,
     VIRTIO_IOMMU_S_INVAL},
    {"detach/unknown-endpoint", VIRTIO_IOMMU_T_DETACH, 1, 0x77, 0, 0, 0, 0, 0,
     0, 0, VIRTIO_IOMMU_S_NOENT},
    {"detach/from-another-domain", VIRTIO_IOMMU_T_DETACH, 2, FX_EP_A, 0, 0, 0,
     0, 0, 0, 0, VIRTIO_IOMMU_S_INVAL},
    {"detach/endpoint-in-no-domain", VIRTIO_IOMMU_T_DETACH, 1, FX_EP_B, 0, 0, 0,
     0, 0, 0, 0, VIRTIO_IOMMU_S_INVAL},
    {"probe/unknown-endpoint", VIRTIO_IOMMU_T_PROBE, 0, 0x77, 0, 0, 0, 0, 0, 0,
     0, VIRTIO_IOMMU_S_NOENT},
    {"probe/properties-shorter-than-probe-size", VIRTIO_IOMMU_T_PROBE, 0,
     FX_EP_A, 0, 0, 0, 0, 0, 0, 100, VIRTIO_IOMMU_S_INVAL},
    {"request/unknown-type", 0x42, 1, FX_EP_A, 0, 0, 0, 0, 0, 0, 0,
     VIRTIO_IOMMU_S_UNSUPP},
    {"request/shorter-than-its-type", VIRTIO_IOMMU_T_MAP, 1, 0, RW, 0x300000,
     0x300fff, 0x1000, 0, -4, 0, VIRTIO_IOMMU_S_INVAL},
    {"request/longer-than-its-type", VIRTIO_IOMMU_T_ATTACH, 2, FX_EP_B, 0, 0, 0,
     0, 0, 4, 0, VIRTIO_IOMMU_S_INVAL},
    {"request/writable-part-longer-than-its-type", VIRTIO_IOMMU_T_ATTACH, 2,
     FX_EP_B, 0, 0, 0, 0, 0, 0, 8, VIRTIO_IOMMU_S_INVAL},
};

/* The request's bytes; returns the type's device-readable length. */
static uint32_t
build(const StatusCase *c, uint8_t *buf, uint32_t *w_len)
{
    union {
        struct virtio_iommu_req_attach attach;
        struct virtio_iommu_req_detach detach;
        struct virtio_iommu_req_map map;
        struct virtio_iommu_req_unmap unmap;
        struct virtio_iommu_req_probe probe;
    } r = {0};
    uint32_t in = offsetof(struct virtio_iommu_req_attach, tail);

    *w_len = 4;
    r.attach.head.type = c->type;
    if (c->type == VIRTIO_IOMMU_T_ATTACH || c->type == 0x42) {
        r.attach = (struct virtio_iommu_req_attach){
            {c->type}, c->domain, c->endpoint, c->flags, {c->reserved}};
    } else if (c->type == VIRTIO_IOMMU_T_DETACH) {
        r.detach =
            (struct virtio_iommu_req_detach){{c->type}, c->domain, c->endpoint};
    } else if (c->type == VIRTIO_IOMMU_T_MAP) {
        r.map = (struct virtio_iommu_req_map){{c->type}, c->domain, c->start,
                                              c->end,    c->phys,   c->flags};
        in = offsetof(struct virtio_iommu_req_map, tail);
    } else if (c->type == VIRTIO_IOMMU_T_UNMAP) {
        r.unmap = (struct virtio_iommu_req_unmap){
            {c->type}, c->domain, c->start, c->end};
        in = offsetof(struct virtio_iommu_req_unmap, tail);
    } else {
        r.probe.head.type = c->type;
        r.probe.endpoint = c->endpoint;
        in = sizeof(struct virtio_iommu_req_probe);
        *w_len = 512 + 4;
    }
    memcpy(buf, &r, sizeof(r));
    return in;
}

/* Domain 1 holds endpoint A and one mapping; B bypasses. */
static void
fx_setup(Fx *f)
{
    const FxCall m = {'m', MAPPED_START, MAPPED_END - MAPPED_START + 1,
                      MAPPED_PHYS, FX_RW};

    fx_init(f);
    fx_driver_start(f, FX_FEATURES);
    g_assert_cmpuint(fx_attach(f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_map(f, 1, MAPPED_START, MAPPED_END, MAPPED_PHYS, FX_RW),
                     ==, VIRTIO_IOMMU_S_OK);
    fx_assert_view(&f->ep[0], &m, 1);
    fx_clear_calls(f);
}

static void
test_status(gconstpointer data)
{
    const StatusCase *c = data;
    const FxCall m = {'m', MAPPED_START, MAPPED_END - MAPPED_START + 1,
                      MAPPED_PHYS, FX_RW};
    uint8_t buf[sizeof(struct virtio_iommu_req_probe) + 8] = {0};
    uint32_t w_len, in = build(c, buf, &w_len), want = w_len, used;
    Fx f;

    fx_setup(&f);
    if (c->w_len) {
        w_len = c->w_len;
    }
    used = fx_send(&f, buf, in + c->in_delta, w_len);
    g_assert_cmpuint(used, ==, MIN(w_len, want));
    g_assert_cmpuint(f.resp[used - 4], ==, c->status);
    for (uint32_t i = 0; i < used; i++) {
        if (i != used - 4) {
            g_assert_cmpuint(f.resp[i], ==, 0); /* tail reserved, no props */
        }
    }
    g_assert_cmpuint(f.resp[used], ==, 0xee);
    /* Nothing reached an endpoint; domain 1 is as it was. */
    g_assert_cmpuint(f.ep[0].calls->len + f.ep[1].calls->len, ==, 0);
    fx_assert_view(&f.ep[0], &m, 1);
    fx_assert_identity(&f.ep[1]);
    g_assert_cmpuint(fx_status(&f) & GW_VIRTIO_STATUS_NEEDS_RESET, ==, 0);
    fx_fini(&f);
}

static void
put_le64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static void
test_probe_properties(void)
{
    struct virtio_iommu_req_probe r = {{VIRTIO_IOMMU_T_PROBE}, FX_EP_B};
    uint8_t want[516] = {0};
    Fx f;

    /* RESV_MEM (type 1, length 20): MSI, then reserved. */
    want[0] = 1, want[2] = 20, want[4] = VIRTIO_IOMMU_RESV_MEM_T_MSI;
    put_le64(want + 8, 0xfee00000);
    put_le64(want + 16, 0xfeefffff);
    want[24] = 1, want[26] = 20, want[28] = VIRTIO_IOMMU_RESV_MEM_T_RESERVED;
    put_le64(want + 32, GW_IOMMU_INPUT_END + 1);
    put_le64(want + 40, (1ull << 48) - 1);
    fx_setup(&f);
    g_assert_cmpuint(fx_send(&f, &r, sizeof(r), 516), ==, 516);
    g_assert_cmpmem(f.resp, 516, want, 516);
    fx_fini(&f);
}

typedef struct {
    const char *name;
    uint32_t in_len, w_len;
} Unanswerable;

static const Unanswerable unanswerable[] = {
    {"status-tail-too-short", 20, 2},
    {"no-writable-part", 20, 0},
    {"no-request-head", 2, 4},
};

/* Spec 5.13.6: returned unwritten, used length 0; the queue goes on. */
static void
test_unanswerable(gconstpointer data)
{
    const Unanswerable *c = data;
    struct virtio_iommu_req_attach r = {{VIRTIO_IOMMU_T_ATTACH}, 2, FX_EP_B};
    GwTestBuf bufs[2] = {{0, c->in_len, false}, {0, c->w_len, true}};
    uint16_t id;
    uint32_t len = 1;
    Fx f;

    fx_setup(&f);
    bufs[0].iova = f.req_gpa;
    bufs[1].iova = f.resp_gpa;
    memcpy(f.req, &r, sizeof(r));
    memset(f.resp, 0xee, 16);
    g_assert_true(gw_test_vring_add(f.rq, bufs, c->w_len ? 2 : 1, NULL));
    fx_mmio_write(&f, 0x3000, 2, 0);
    fx_run(&f);
    g_assert_true(gw_test_vring_get_used(f.rq, &id, &len));
    g_assert_cmpuint(len, ==, 0);
    g_assert_cmpuint(f.resp[0], ==, 0xee);
    g_assert_cmpuint(f.resp[1], ==, 0xee);
    g_assert_cmpuint(f.ep[1].calls->len, ==, 0);
    g_assert_cmpuint(fx_attach(&f, 2, FX_EP_B, 0), ==, VIRTIO_IOMMU_S_OK);
    fx_assert_view(&f.ep[1], NULL, 0);
    fx_fini(&f);
}

static void
test_needs_negotiated_features(void)
{
    struct virtio_iommu_req_probe p = {{VIRTIO_IOMMU_T_PROBE}, FX_EP_A};
    Fx f;

    fx_init(&f);
    fx_driver_start(&f, (1ull << VIRTIO_IOMMU_F_BYPASS_CONFIG));
    g_assert_cmpuint(fx_attach(&f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_map(&f, 1, 0x1000, 0x1fff, 0x1000, FX_RW), ==,
                     VIRTIO_IOMMU_S_UNSUPP);
    g_assert_cmpuint(fx_unmap(&f, 1, 0x1000, 0x1fff), ==,
                     VIRTIO_IOMMU_S_UNSUPP);
    g_assert_cmpuint(fx_send(&f, &p, sizeof(p), 516), ==, 516);
    g_assert_cmpuint(f.resp[512], ==, VIRTIO_IOMMU_S_UNSUPP);
    fx_assert_view(&f.ep[0], NULL, 0);
    fx_fini(&f);
}

/* `n` MAP requests (4 KiB each from `iova`), one kick; their statuses. */
static void
map_burst(Fx *f, uint64_t iova, unsigned n, uint8_t *status)
{
    for (unsigned i = 0; i < n; i++) {
        struct virtio_iommu_req_map r = {
            {VIRTIO_IOMMU_T_MAP},      1,        iova + 4096ull * i,
            iova + 4096ull * i + 4095, 0x100000, FX_RW};
        GwTestBuf bufs[2] = {{f->req_gpa + 64 * i, 36, false},
                             {f->resp_gpa + 4 * i, 4, true}};

        memcpy(f->req + 64 * i, &r, 36);
        g_assert_true(gw_test_vring_add(f->rq, bufs, 2, NULL));
    }
    fx_mmio_write(f, 0x3000, 2, 0);
    fx_run(f);
    for (unsigned i = 0; i < n; i++) {
        g_assert_true(gw_test_vring_get_used(f->rq, NULL, NULL));
        status[i] = f->resp[4 * i];
    }
}

static void
test_mapping_limit(void)
{
    const unsigned limit = 64 * 1024, burst = 32;
    uint8_t st[32];
    Fx f;

    fx_init(&f);
    fx_driver_start(&f, FX_FEATURES);
    f.ep[0].no_view = true;
    g_assert_cmpuint(fx_attach(&f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
    fx_clear_calls(&f);
    for (unsigned done = 0; done < limit; done += burst) {
        map_burst(&f, 0x10000000ull + 4096ull * done, burst, st);
        for (unsigned i = 0; i < burst; i++) {
            g_assert_cmpuint(st[i], ==, VIRTIO_IOMMU_S_OK);
        }
    }
    g_assert_cmpuint(f.ep[0].n_calls, ==, limit);
    g_assert_cmpuint(fx_map(&f, 1, 0x1000, 0x1fff, 0x1000, FX_RW), ==,
                     VIRTIO_IOMMU_S_NOMEM);
    g_assert_cmpuint(f.ep[0].n_calls, ==, limit);
    g_assert_cmpuint(fx_unmap(&f, 1, 0x10000000, 0x10000fff), ==,
                     VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_map(&f, 1, 0x1000, 0x1fff, 0x1000, FX_RW), ==,
                     VIRTIO_IOMMU_S_OK);
    fx_fini(&f);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(status_cases); i++) {
        g_autofree char *p =
            g_strdup_printf("/virtio-iommu/status/%s", status_cases[i].name);
        g_test_add_data_func(p, &status_cases[i], test_status);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(unanswerable); i++) {
        g_autofree char *p =
            g_strdup_printf("/virtio-iommu/unanswerable/%s-used-length-0",
                            unanswerable[i].name);
        g_test_add_data_func(p, &unanswerable[i], test_unanswerable);
    }
    g_test_add_func("/virtio-iommu/probe/reports-msi-and-reserved-ranges",
                    test_probe_properties);
    g_test_add_func("/virtio-iommu/request/needs-its-feature-negotiated",
                    test_needs_negotiated_features);
    g_test_add_func("/virtio-iommu/map/nomem-past-64ki-mappings",
                    test_mapping_limit);
    return g_test_run();
}
