/*
 * virtio-iommu's migration state (gw_virtio_iommu_save/_load): what a
 * guest set up with real requests arrives in a fresh IOMMU with the same
 * endpoints — same query, same translations, each endpoint's ops told
 * the same mappings, the request queue answering again — and a hostile
 * section is refused with the destination left exactly as it was.
 */
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <godwit/util.h>
#include <godwit/vmstate.h>
#include "iommu-fixture.h"

#define F_BYPASS_CONFIG (1ull << VIRTIO_IOMMU_F_BYPASS_CONFIG)
#define EP_UNKNOWN      0x0018u
#define MAX_MAPPINGS    (64u * 1024)

/* ---- the section as docs/migration.md describes it ---- */

typedef struct {
    uint8_t bypass, negotiated;
    uint64_t features;
    uint16_t last_avail, last_used;
} Head;

static const GwVmsdField head_fields[] = {
    GW_VMSD_FIELD(Head, bypass, 1),    GW_VMSD_FIELD(Head, negotiated, 1),
    GW_VMSD_FIELD(Head, features, 1),  GW_VMSD_FIELD(Head, last_avail, 1),
    GW_VMSD_FIELD(Head, last_used, 1), GW_VMSD_END,
};

typedef struct {
    uint64_t start, end, gpa;
    uint32_t flags;
} TMap;

typedef struct {
    uint32_t id;
    uint8_t bypass;
    unsigned n_eps, n_maps;
    uint32_t eps[3];
    TMap maps[3];
    uint32_t n_maps_wire; /* if not 0: the count written instead */
} TDomain;

typedef struct {
    unsigned version;
    Head head;
    unsigned n_domains;
    TDomain d[3];
} TState;

static void
encode(const TState *t, GwMigBuf *b)
{
    GwVmsd vmsd = {"virtio-iommu", t->version, head_fields,
                   NULL,           NULL,       sizeof(Head)};
    Head h = t->head;

    g_assert_true(gw_vmsd_save(&vmsd, &h, b, NULL));
    gw_mig_buf_put_u32(b, t->n_domains);
    for (unsigned i = 0; i < t->n_domains; i++) {
        const TDomain *d = &t->d[i];

        gw_mig_buf_put_u32(b, d->id);
        gw_mig_buf_put_u8(b, d->bypass);
        gw_mig_buf_put_u32(b, d->n_eps);
        for (unsigned k = 0; k < d->n_eps; k++) {
            gw_mig_buf_put_u32(b, d->eps[k]);
        }
        gw_mig_buf_put_u32(b, d->n_maps_wire ? d->n_maps_wire : d->n_maps);
        for (unsigned k = 0; k < d->n_maps; k++) {
            gw_mig_buf_put_u64(b, d->maps[k].start);
            gw_mig_buf_put_u64(b, d->maps[k].end);
            gw_mig_buf_put_u64(b, d->maps[k].gpa);
            gw_mig_buf_put_u32(b, d->maps[k].flags);
        }
    }
}

/* What base_source sets up, as a section would say it. */
static const TState base_state = {
    .version = 1,
    .head = {1, 1, FX_FEATURES | (1ull << 32), 5, 5},
    .n_domains = 2,
    .d = {{1,
           0,
           1,
           2,
           {FX_EP_A},
           {{0x100000, 0x1fffff, 0x200000, FX_RW},
            {0x400000, 0x400fff, FX_LOW, GW_IOMMU_MAP_F_READ}}},
          {2, 0, 1, 1, {FX_EP_B}, {{0, 0xfff, 0x3000, GW_IOMMU_MAP_F_WRITE}}}},
};

/* ---- helpers ---- */

static GBytes *
save(Fx *f)
{
    g_autoptr(GwMigBuf) b = gw_mig_buf_new();
    g_autoptr(GError) err = NULL;

    g_mutex_lock(&f->lock);
    g_assert_true(gw_virtio_iommu_save(f->iommu, b, &err));
    g_mutex_unlock(&f->lock);
    g_assert_no_error(err);
    return gw_mig_buf_free_to_bytes(g_steal_pointer(&b));
}

static bool
load_len(Fx *f, GBytes *b, size_t len, GError **errp)
{
    GwMigCursor c;
    bool ok;

    gw_mig_cursor_init(&c, g_bytes_get_data(b, NULL), len);
    g_mutex_lock(&f->lock);
    ok = gw_virtio_iommu_load(f->iommu, &c, errp);
    g_mutex_unlock(&f->lock);
    return ok;
}

static uint64_t
translate(Fx *f, uint32_t ep, uint64_t iova, bool write, uint64_t *gpa)
{
    uint64_t n;

    *gpa = UINT64_MAX;
    n = gw_virtio_iommu_translate(f->iommu, ep, iova, 1ull << 40, write, gpa);
    return n;
}

static void
assert_same_translations(Fx *a, Fx *b)
{
    static const uint64_t iovas[] = {0,        0xfff,    0x1000,    0x100000,
                                     0x180123, 0x1fffff, 0x200000,  0x400000,
                                     0x400fff, FX_LOW,   FX_RAM - 1};
    const uint32_t eps[] = {FX_EP_A, FX_EP_B, EP_UNKNOWN};

    for (size_t e = 0; e < G_N_ELEMENTS(eps); e++) {
        for (size_t i = 0; i < G_N_ELEMENTS(iovas); i++) {
            for (int w = 0; w < 2; w++) {
                uint64_t ga, gb;
                uint64_t na = translate(a, eps[e], iovas[i], w, &ga);
                uint64_t nb = translate(b, eps[e], iovas[i], w, &gb);

                g_assert_cmphex(na, ==, nb);
                if (na) {
                    g_assert_cmphex(ga, ==, gb);
                }
            }
        }
    }
}

/* The source's endpoints' IOTLBs are what the destination's were told. */
static void
assert_same_views(Fx *src, Fx *dst)
{
    for (unsigned i = 0; i < 2; i++) {
        fx_assert_view(&dst->ep[i], (const FxCall *)src->ep[i].view->data,
                       src->ep[i].view->len);
    }
}

/* A destination: the same board, guest RAM as the source left it. */
static void
dst_init(Fx *dst, Fx *src)
{
    fx_init(dst);
    memcpy(dst->tm->base, src->tm->base, FX_RAM);
    fx_clear_calls(dst);
}

/* The source's guest driver, its request ring now in dst's RAM. */
static void
adopt_ring(Fx *dst, const Fx *src)
{
    GwTestVring *vr = g_new(GwTestVring, 1);
    ptrdiff_t delta = dst->tm->base - src->tm->base;

    *vr = *src->rq;
    vr->mem = dst->tm;
    vr->desc = (void *)((uint8_t *)vr->desc + delta);
    vr->avail = (void *)((uint8_t *)vr->avail + delta);
    vr->used = (void *)((uint8_t *)vr->used + delta);
    vr->kick_fd = dup(src->rq->kick_fd);
    vr->call_fd = dup(src->rq->call_fd);
    dst->rq = vr;
}

/* Domain 1: A, two mappings; domain 2: B, one (base_state). */
static void
base_source(Fx *f)
{
    fx_init(f);
    fx_driver_start(f, FX_FEATURES);
    g_assert_cmpuint(fx_attach(f, 1, FX_EP_A, 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_map(f, 1, 0x100000, 0x1fffff, 0x200000, FX_RW), ==,
                     VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(
        fx_map(f, 1, 0x400000, 0x400fff, FX_LOW, GW_IOMMU_MAP_F_READ), ==,
        VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_attach(f, 2, FX_EP_B, 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(fx_map(f, 2, 0, 0xfff, 0x3000, GW_IOMMU_MAP_F_WRITE), ==,
                     VIRTIO_IOMMU_S_OK);
}

static void
must_load(Fx *dst, GBytes *b)
{
    g_autoptr(GError) err = NULL;

    g_assert_true(load_len(dst, b, g_bytes_get_size(b), &err));
    g_assert_no_error(err);
}

/* ---- round trips ---- */

static void
test_round_trip(void)
{
    g_autoptr(GBytes) b = NULL;
    g_autofree char *want = NULL, *got = NULL;
    Fx src, dst;

    base_source(&src);
    b = save(&src);
    dst_init(&dst, &src);
    must_load(&dst, b);
    want = fx_query(&src);
    got = fx_query(&dst);
    g_assert_cmpstr(got, ==, want);
    assert_same_translations(&src, &dst);
    assert_same_views(&src, &dst);
    /* The request queue runs where the source's stopped. */
    adopt_ring(&dst, &src);
    g_assert_cmpuint(fx_unmap(&dst, 1, 0x100000, 0x1fffff), ==,
                     VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(gw_test_vring_used_idx(dst.rq), ==, 6);
    g_assert_cmpuint(dst.ep[0].view->len, ==, 1);
    fx_fini(&src);
    fx_fini(&dst);
}

/* The section the source wrote is the documented encoding, then the
 * virtio-pci function's. */
static void
test_format(void)
{
    g_autoptr(GwMigBuf) mine = gw_mig_buf_new();
    g_autoptr(GBytes) b = NULL;
    Fx src;

    base_source(&src);
    b = save(&src);
    encode(&base_state, mine);
    g_assert_cmpuint(g_bytes_get_size(b), >, gw_mig_buf_len(mine));
    g_assert_cmpmem(g_bytes_get_data(b, NULL), gw_mig_buf_len(mine),
                    gw_mig_buf_data(mine), gw_mig_buf_len(mine));
    fx_fini(&src);
}

static void
test_bypass_domain(void)
{
    const unsigned at = 0x2000 + offsetof(struct virtio_iommu_config, bypass);
    g_autoptr(GBytes) b = NULL;
    g_autofree char *want = NULL, *got = NULL;
    Fx src, dst;

    fx_init(&src);
    fx_driver_start(&src, FX_FEATURES);
    fx_mmio_write(&src, at, 1, 0); /* no boot bypass: B sees nothing */
    g_assert_cmpuint(fx_attach(&src, 3, FX_EP_A, VIRTIO_IOMMU_ATTACH_F_BYPASS),
                     ==, VIRTIO_IOMMU_S_OK);
    b = save(&src);
    dst_init(&dst, &src);
    must_load(&dst, b);
    fx_assert_identity(&dst.ep[0]);
    fx_assert_view(&dst.ep[1], NULL, 0);
    want = fx_query(&src);
    got = fx_query(&dst);
    g_assert_cmpstr(got, ==, want);
    assert_same_translations(&src, &dst);
    fx_fini(&src);
    fx_fini(&dst);
}

/* No driver yet: every endpoint bypasses, and nothing is pushed. */
static void
test_boot_bypass(void)
{
    g_autoptr(GBytes) b = NULL;
    g_autofree char *want = NULL, *got = NULL;
    Fx src, dst;

    fx_init(&src);
    b = save(&src);
    dst_init(&dst, &src);
    must_load(&dst, b);
    fx_assert_identity(&dst.ep[0]);
    fx_assert_identity(&dst.ep[1]);
    g_assert_cmpuint(dst.ep[0].n_calls + dst.ep[1].n_calls, ==, 0);
    want = fx_query(&src);
    got = fx_query(&dst);
    g_assert_cmpstr(got, ==, want);
    fx_fini(&src);
    fx_fini(&dst);
}

/* ---- refusals: the destination as it was ---- */

typedef struct {
    char *query;
} Before;

static void
before_take(Fx *dst, Before *bf)
{
    bf->query = fx_query(dst);
    fx_clear_calls(dst);
}

static void
assert_unchanged(Fx *dst, Before *bf)
{
    g_autofree char *now = fx_query(dst);

    g_assert_cmpstr(now, ==, bf->query);
    fx_assert_identity(&dst->ep[0]);
    fx_assert_identity(&dst->ep[1]);
    g_clear_pointer(&bf->query, g_free);
}

typedef struct {
    const char *name;
    void (*spoil)(TState *t);
    const char *message; /* a fragment of the error */
} BadCase;

static void
unaligned(TState *t)
{
    t->d[0].maps[0].start = 0x100800;
}

static void
overlapping(TState *t)
{
    t->d[0].maps[1] = (TMap){0x1ff000, 0x200fff, 0x300000, FX_RW};
}

static void
unsorted(TState *t)
{
    TMap m = t->d[0].maps[0];

    t->d[0].maps[0] = t->d[0].maps[1];
    t->d[0].maps[1] = m;
}

static void
outside_ram(TState *t)
{
    t->d[0].maps[0].gpa = FX_RAM - 0x1000;
}

static void
across_regions(TState *t)
{
    t->d[0].maps[0].gpa = FX_LOW - 0x1000;
}

static void
start_after_end(TState *t)
{
    t->d[0].maps[0] = (TMap){0x200000, 0x100fff, 0, FX_RW};
}

static void
past_input_range(TState *t)
{
    t->d[0].maps[1] = (TMap){1ull << 48, (1ull << 48) + 0xfff, 0, FX_RW};
}

static void
unknown_endpoint(TState *t)
{
    t->d[1].eps[0] = EP_UNKNOWN;
}

static void
endpoint_twice(TState *t)
{
    t->d[1].eps[0] = FX_EP_A;
}

static void
endpoint_twice_in_one(TState *t)
{
    t->n_domains = 1;
    t->d[0].n_eps = 2;
    t->d[0].eps[1] = FX_EP_A;
}

static void
too_many_maps(TState *t)
{
    t->d[0].n_maps_wire = MAX_MAPPINGS + 1;
}

static void
maps_past_the_end(TState *t)
{
    t->d[0].n_maps_wire = 60000;
}

static void
zero_flags(TState *t)
{
    t->d[0].maps[0].flags = 0;
}

static void
unknown_flags(TState *t)
{
    t->d[0].maps[0].flags = FX_RW | 4;
}

static void
newer_version(TState *t)
{
    t->version = 2;
}

static void
duplicate_domain(TState *t)
{
    t->d[1].id = 1;
}

static void
domain_without_endpoint(TState *t)
{
    t->d[1].n_eps = 0;
}

static void
too_many_domains(TState *t)
{
    t->n_domains = 3;
    t->d[2] = (TDomain){7, 0, 1, 0, {EP_UNKNOWN}};
}

static void
maps_in_bypass_domain(TState *t)
{
    t->d[0].bypass = 1;
}

static void
bypass_without_feature(TState *t)
{
    t->head.features &= ~F_BYPASS_CONFIG;
    t->d[1] = (TDomain){2, 1, 1, 0, {FX_EP_B}};
}

static void
not_negotiated_with_domains(TState *t)
{
    t->head.negotiated = 0;
}

static void
unoffered_feature(TState *t)
{
    t->head.features |= 1ull << 40;
}

static void
unanswered_request(TState *t)
{
    t->head.last_used = 3;
}

static void
queue_elsewhere(TState *t)
{
    t->head.last_avail = t->head.last_used = 9;
}

static const BadCase bad_cases[] = {
    {"unaligned-map", unaligned, "MAP would refuse"},
    {"overlapping-maps", overlapping, "overlaps"},
    {"unsorted-maps", unsorted, "precedes"},
    {"map-outside-ram", outside_ram, "MAP would refuse"},
    {"map-across-ram-regions", across_regions, "MAP would refuse"},
    {"map-start-after-end", start_after_end, "MAP would refuse"},
    {"map-past-input-range", past_input_range, "MAP would refuse"},
    {"unknown-endpoint", unknown_endpoint, "not behind this machine"},
    {"endpoint-in-two-domains", endpoint_twice, "more than one domain"},
    {"endpoint-twice-in-one-domain", endpoint_twice_in_one,
     "more than one domain"},
    {"too-many-maps", too_many_maps, "more than the 65536"},
    {"map-count-past-the-end", maps_past_the_end, "do not fit"},
    {"zero-flags", zero_flags, "flags 0x0"},
    {"unknown-flags", unknown_flags, "flags 0x7"},
    {"newer-version", newer_version, "state version 2 is newer than 1"},
    {"duplicate-domain-id", duplicate_domain, "repeated"},
    {"domain-without-endpoint", domain_without_endpoint, "no endpoint"},
    {"more-domains-than-endpoints", too_many_domains, "more than the 2"},
    {"maps-in-bypass-domain", maps_in_bypass_domain, "bypass domain"},
    {"bypass-domain-without-feature", bypass_without_feature,
     "BYPASS_CONFIG off"},
    {"not-negotiated-with-domains", not_negotiated_with_domains,
     "no driver started"},
    {"unoffered-feature", unoffered_feature, "not all offered"},
    {"unanswered-request", unanswered_request, "unanswered"},
    {"queue-not-where-function-says", queue_elsewhere, "its function's"},
};

/* The source's real section with its IOMMU part replaced by `t`. */
static GBytes *
section_with(Fx *src, const TState *t)
{
    g_autoptr(GwMigBuf) base = gw_mig_buf_new();
    g_autoptr(GwMigBuf) out = gw_mig_buf_new();
    g_autoptr(GBytes) real = save(src);
    const uint8_t *p = g_bytes_get_data(real, NULL);

    encode(&base_state, base);
    encode(t, out);
    gw_mig_buf_put_bytes(out, p + gw_mig_buf_len(base),
                         g_bytes_get_size(real) - gw_mig_buf_len(base));
    return gw_mig_buf_free_to_bytes(g_steal_pointer(&out));
}

static void
test_refused(gconstpointer data)
{
    const BadCase *c = data;
    g_autoptr(GBytes) b = NULL;
    g_autoptr(GError) err = NULL;
    TState t = base_state;
    Before bf;
    Fx src, dst;

    base_source(&src);
    c->spoil(&t);
    b = section_with(&src, &t);
    dst_init(&dst, &src);
    before_take(&dst, &bf);
    g_assert_false(load_len(&dst, b, g_bytes_get_size(b), &err));
    g_assert_nonnull(err);
    if (!strstr(err->message, c->message)) {
        g_error("%s: \"%s\" lacks \"%s\"", c->name, err->message, c->message);
    }
    assert_unchanged(&dst, &bf);
    g_assert_cmpuint(dst.ep[0].n_calls + dst.ep[1].n_calls, ==, 0);
    fx_fini(&src);
    fx_fini(&dst);
}

/* The unspoilt section of the refusals loads: they fail for their
 * spoil, not for the way they are built. */
static void
test_rebuilt_section_loads(void)
{
    g_autoptr(GBytes) b = NULL;
    Fx src, dst;

    base_source(&src);
    b = section_with(&src, &base_state);
    dst_init(&dst, &src);
    must_load(&dst, b);
    assert_same_views(&src, &dst);
    fx_fini(&src);
    fx_fini(&dst);
}

/* Cut anywhere, or with a byte more: refused, nothing changed. */
static void
test_truncated(void)
{
    g_autoptr(GBytes) b = NULL;
    g_autoptr(GwMigBuf) longer = gw_mig_buf_new();
    g_autoptr(GBytes) lb = NULL;
    Before bf;
    Fx src, dst;
    size_t len;

    base_source(&src);
    b = save(&src);
    len = g_bytes_get_size(b);
    dst_init(&dst, &src);
    before_take(&dst, &bf);
    for (size_t cut = 0; cut < len; cut += cut < 512 ? 1 : 61) {
        g_autoptr(GError) err = NULL;

        g_assert_false(load_len(&dst, b, cut, &err));
        g_assert_error(err, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT);
    }
    g_assert_cmpuint(dst.ep[0].n_calls + dst.ep[1].n_calls, ==, 0);
    gw_mig_buf_put_bytes(longer, g_bytes_get_data(b, NULL), len);
    gw_mig_buf_put_u8(longer, 0);
    lb = gw_mig_buf_free_to_bytes(g_steal_pointer(&longer));
    g_assert_false(load_len(&dst, lb, len + 1, NULL));
    assert_unchanged(&dst, &bf);
    g_assert_cmpuint(dst.ep[0].n_calls + dst.ep[1].n_calls, ==, 0);
    fx_fini(&src);
    fx_fini(&dst);
}

/* B's ops fail once A has its new IOTLB: A is pushed back to identity,
 * and the IOMMU's state is the one from before. */
static void
test_endpoint_failure_rolls_back(void)
{
    g_autoptr(GBytes) b = NULL;
    g_autoptr(GError) err = NULL;
    Before bf;
    Fx src, dst;

    base_source(&src);
    b = save(&src);
    dst_init(&dst, &src);
    before_take(&dst, &bf);
    dst.ep[1].fail_op = 1;
    g_assert_false(load_len(&dst, b, g_bytes_get_size(b), &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_FAILED);
    g_assert_nonnull(strstr(err->message, "endpoint 0x10"));
    /* A was pushed: its unmaps and maps, then back. */
    g_assert_cmpuint(dst.ep[0].n_calls, >, 4);
    assert_unchanged(&dst, &bf);
    fx_fini(&src);
    fx_fini(&dst);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/virtio-iommu/state/round-trip", test_round_trip);
    g_test_add_func("/virtio-iommu/state/format-as-documented", test_format);
    g_test_add_func("/virtio-iommu/state/bypass-domain", test_bypass_domain);
    g_test_add_func("/virtio-iommu/state/boot-bypass", test_boot_bypass);
    g_test_add_func("/virtio-iommu/state/rebuilt-section-loads",
                    test_rebuilt_section_loads);
    for (size_t i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
        g_autofree char *p = g_strdup_printf("/virtio-iommu/state/refuses/%s",
                                             bad_cases[i].name);
        g_test_add_data_func(p, &bad_cases[i], test_refused);
    }
    g_test_add_func("/virtio-iommu/state/refuses/truncated-or-longer",
                    test_truncated);
    g_test_add_func("/virtio-iommu/state/endpoint-failure-rolls-back",
                    test_endpoint_failure_rolls_back);
    return g_test_run();
}
