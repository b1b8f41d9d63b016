/*
 * virtio-iommu: the requests (virtio 1.2, 5.13.6): ATTACH, DETACH, MAP,
 * UNMAP and PROBE, each answered with the spec's status; every field is
 * the guest's and is checked.  Where the spec leaves the device a
 * choice, docs/architecture.md ("virtio-iommu") says which it makes.
 * Threads: the main loop, with the VM's device lock held; each handler
 * runs with the space lock held for writing (gw_iommu_request takes it).
 */
#include <stddef.h>
#include <string.h>
#include <godwit/log.h>
#include "virtio-iommu-priv.h"

#define TAIL_SIZE sizeof(struct virtio_iommu_req_tail)

static bool
negotiated(const GwVirtioIommu *s, unsigned bit)
{
    return s->features & (1ull << bit);
}

/* Moves `ep` into `to` (NULL: out of any domain) and tells its ops; a
 * domain left with no endpoint is destroyed with its mappings. */
static uint8_t
move_endpoint(GwVirtioIommu *s, IommuEndpoint *ep, IommuDomain *to)
{
    g_autoptr(GArray) old = g_array_new(FALSE, FALSE, sizeof(IommuMap));
    g_autoptr(GArray) now = g_array_new(FALSE, FALSE, sizeof(IommuMap));
    g_autoptr(GError) err = NULL;
    IommuDomain *from = ep->domain;

    gw_iommu_space(s, ep, old);
    gw_iommu_move(ep, to);
    gw_iommu_space(s, ep, now);
    if (!gw_iommu_push(ep, old, now, false, &err)) {
        gw_iommu_move(ep, from);
        if (to && to->eps->len == 0) {
            gw_iommu_domain_destroy(s, to); /* created for this request */
        }
        gw_warning_ratelimited("%s", err->message);
        return VIRTIO_IOMMU_S_DEVERR;
    }
    if (from && from->eps->len == 0) {
        gw_iommu_domain_destroy(s, from);
    }
    return VIRTIO_IOMMU_S_OK;
}

static bool
all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

static uint8_t
req_attach(GwVirtioIommu *s, const uint8_t *in, uint8_t *out)
{
    struct virtio_iommu_req_attach r;
    uint32_t flags, id;
    IommuEndpoint *ep;
    IommuDomain *d;
    bool bypass;

    memcpy(&r, in, offsetof(struct virtio_iommu_req_attach, tail));
    flags = GUINT32_FROM_LE(r.flags);
    id = GUINT32_FROM_LE(r.domain);
    bypass = flags & VIRTIO_IOMMU_ATTACH_F_BYPASS;
    if (!all_zero(r.reserved, sizeof(r.reserved)) ||
        (flags & ~VIRTIO_IOMMU_ATTACH_F_BYPASS) ||
        (bypass && !negotiated(s, VIRTIO_IOMMU_F_BYPASS_CONFIG))) {
        return VIRTIO_IOMMU_S_INVAL;
    }
    ep = gw_iommu_endpoint(s, GUINT32_FROM_LE(r.endpoint));
    if (!ep) {
        return VIRTIO_IOMMU_S_NOENT;
    }
    d = gw_iommu_domain(s, id);
    if (d && d->bypass != bypass) {
        return VIRTIO_IOMMU_S_INVAL;
    }
    if (d && ep->domain == d) {
        return VIRTIO_IOMMU_S_OK; /* already there: nothing changes */
    }
    return move_endpoint(s, ep, d ? d : gw_iommu_domain_new(s, id, bypass));
}

static uint8_t
req_detach(GwVirtioIommu *s, const uint8_t *in, uint8_t *out)
{
    struct virtio_iommu_req_detach r;
    IommuEndpoint *ep;

    memcpy(&r, in, offsetof(struct virtio_iommu_req_detach, tail));
    ep = gw_iommu_endpoint(s, GUINT32_FROM_LE(r.endpoint));
    if (!ep) {
        return VIRTIO_IOMMU_S_NOENT;
    }
    if (!ep->domain || ep->domain->id != GUINT32_FROM_LE(r.domain)) {
        return VIRTIO_IOMMU_S_INVAL;
    }
    return move_endpoint(s, ep, NULL);
}

/* MAP's checks of the range itself, in the spec's order of statuses. */
uint8_t
gw_iommu_map_range_status(const GwVirtioIommu *s, const IommuMap *m)
{
    if (m->start % IOMMU_GRANULE || (m->end + 1) % IOMMU_GRANULE ||
        m->gpa % IOMMU_GRANULE) {
        return VIRTIO_IOMMU_S_RANGE;
    }
    if (m->end < m->start) {
        return VIRTIO_IOMMU_S_INVAL;
    }
    if (m->end > GW_IOMMU_INPUT_END) {
        return VIRTIO_IOMMU_S_RANGE;
    }
    if (m->start <= IOMMU_MSI_END && m->end >= IOMMU_MSI_START) {
        return VIRTIO_IOMMU_S_INVAL; /* a RESV_MEM region PROBE reports */
    }
    /* The spec lets the device refuse what is not guest RAM; godwit
     * refuses a range that is not wholly inside one RAM region, so an
     * endpoint's backend only ever gets RAM it can reach. */
    if (!gw_mem_ptr(s->mem, m->gpa, m->end - m->start + 1)) {
        return VIRTIO_IOMMU_S_INVAL;
    }
    return VIRTIO_IOMMU_S_OK;
}

static uint8_t
req_map(GwVirtioIommu *s, const uint8_t *in, uint8_t *out)
{
    const unsigned rw = GW_IOMMU_MAP_F_READ | GW_IOMMU_MAP_F_WRITE;
    g_autoptr(GArray) one = g_array_new(FALSE, FALSE, sizeof(IommuMap));
    g_autoptr(GError) err = NULL;
    struct virtio_iommu_req_map r;
    IommuDomain *d;
    IommuMap m;
    uint8_t status;
    guint at;

    memcpy(&r, in, offsetof(struct virtio_iommu_req_map, tail));
    m = (IommuMap){GUINT64_FROM_LE(r.virt_start), GUINT64_FROM_LE(r.virt_end),
                   GUINT64_FROM_LE(r.phys_start), GUINT32_FROM_LE(r.flags)};
    if (m.flags & ~rw) {
        return VIRTIO_IOMMU_S_INVAL; /* MMIO too: F_MMIO is not offered */
    }
    d = gw_iommu_domain(s, GUINT32_FROM_LE(r.domain));
    if (!d) {
        return VIRTIO_IOMMU_S_NOENT;
    }
    if (d->bypass) {
        return VIRTIO_IOMMU_S_INVAL;
    }
    if (!(m.flags & rw)) {
        return VIRTIO_IOMMU_S_UNSUPP; /* a mapping that allows nothing */
    }
    status = gw_iommu_map_range_status(s, &m);
    if (status != VIRTIO_IOMMU_S_OK) {
        return status;
    }
    at = gw_iommu_find(d, m.start);
    if (at < d->maps->len &&
        g_array_index(d->maps, IommuMap, at).start <= m.end) {
        return VIRTIO_IOMMU_S_INVAL;
    }
    if (d->maps->len >= IOMMU_MAX_MAPPINGS) {
        return VIRTIO_IOMMU_S_NOMEM;
    }
    g_array_insert_val(d->maps, at, m);
    g_array_append_val(one, m);
    if (!gw_iommu_push_all(d->eps, NULL, one, &err)) {
        g_array_remove_index(d->maps, at);
        gw_warning_ratelimited("%s", err->message);
        return VIRTIO_IOMMU_S_DEVERR;
    }
    return VIRTIO_IOMMU_S_OK;
}

static uint8_t
req_unmap(GwVirtioIommu *s, const uint8_t *in, uint8_t *out)
{
    g_autoptr(GArray) gone = NULL;
    g_autoptr(GError) err = NULL;
    struct virtio_iommu_req_unmap r;
    uint64_t start, end;
    IommuDomain *d;
    guint first, last;

    memcpy(&r, in, offsetof(struct virtio_iommu_req_unmap, tail));
    start = GUINT64_FROM_LE(r.virt_start);
    end = GUINT64_FROM_LE(r.virt_end);
    d = gw_iommu_domain(s, GUINT32_FROM_LE(r.domain));
    if (!d) {
        return VIRTIO_IOMMU_S_NOENT;
    }
    if (d->bypass || end < start) {
        return VIRTIO_IOMMU_S_INVAL;
    }
    first = last = gw_iommu_find(d, start);
    for (; last < d->maps->len; last++) {
        const IommuMap *m = &g_array_index(d->maps, IommuMap, last);

        if (m->start > end) {
            break;
        }
        if (m->start < start || m->end > end) {
            return VIRTIO_IOMMU_S_RANGE; /* it would split a mapping */
        }
    }
    if (first == last) {
        return VIRTIO_IOMMU_S_OK;
    }
    gone = g_array_sized_new(FALSE, FALSE, sizeof(IommuMap), last - first);
    g_array_append_vals(gone, &g_array_index(d->maps, IommuMap, first),
                        last - first);
    g_array_remove_range(d->maps, first, last - first);
    if (!gw_iommu_push_all(d->eps, gone, NULL, &err)) {
        g_array_insert_vals(d->maps, first, gone->data, gone->len);
        gw_warning_ratelimited("%s", err->message);
        return VIRTIO_IOMMU_S_DEVERR;
    }
    return VIRTIO_IOMMU_S_OK;
}

static void
put_resv_mem(uint8_t *at, uint8_t subtype, uint64_t start, uint64_t end)
{
    struct virtio_iommu_probe_resv_mem p = {
        .head.type = GUINT16_TO_LE(VIRTIO_IOMMU_PROBE_T_RESV_MEM),
        .head.length = GUINT16_TO_LE(sizeof(p) - sizeof(p.head)),
        .subtype = subtype,
        .start = GUINT64_TO_LE(start),
        .end = GUINT64_TO_LE(end),
    };

    memcpy(at, &p, sizeof(p));
}

/* Properties: the MSI doorbell, what is above the input range, then
 * zeroes (a NONE property ends the list). */
static uint8_t
req_probe(GwVirtioIommu *s, const uint8_t *in, uint8_t *out)
{
    const size_t one = sizeof(struct virtio_iommu_probe_resv_mem);
    struct virtio_iommu_req_probe r;

    G_STATIC_ASSERT(2 * sizeof(struct virtio_iommu_probe_resv_mem) +
                        sizeof(struct virtio_iommu_probe_property) <=
                    IOMMU_PROBE_SIZE);
    memcpy(&r, in, sizeof(r));
    if (!gw_iommu_endpoint(s, GUINT32_FROM_LE(r.endpoint))) {
        return VIRTIO_IOMMU_S_NOENT;
    }
    put_resv_mem(out, VIRTIO_IOMMU_RESV_MEM_T_MSI, IOMMU_MSI_START,
                 IOMMU_MSI_END);
    put_resv_mem(out + one, VIRTIO_IOMMU_RESV_MEM_T_RESERVED,
                 GW_IOMMU_INPUT_END + 1, IOMMU_IOVA_TOP);
    return VIRTIO_IOMMU_S_OK;
}

typedef struct {
    uint8_t type;
    int feature; /* needed to use it, or -1 */
    size_t in_len, out_len;
    uint8_t (*handle)(GwVirtioIommu *s, const uint8_t *in, uint8_t *out);
} ReqType;

static const ReqType req_types[] = {
    {VIRTIO_IOMMU_T_ATTACH, -1, offsetof(struct virtio_iommu_req_attach, tail),
     TAIL_SIZE, req_attach},
    {VIRTIO_IOMMU_T_DETACH, -1, offsetof(struct virtio_iommu_req_detach, tail),
     TAIL_SIZE, req_detach},
    {VIRTIO_IOMMU_T_MAP, VIRTIO_IOMMU_F_MAP_UNMAP,
     offsetof(struct virtio_iommu_req_map, tail), TAIL_SIZE, req_map},
    {VIRTIO_IOMMU_T_UNMAP, VIRTIO_IOMMU_F_MAP_UNMAP,
     offsetof(struct virtio_iommu_req_unmap, tail), TAIL_SIZE, req_unmap},
    {VIRTIO_IOMMU_T_PROBE, VIRTIO_IOMMU_F_PROBE,
     sizeof(struct virtio_iommu_req_probe), IOMMU_PROBE_SIZE + TAIL_SIZE,
     req_probe},
};

static const ReqType *
req_type(uint8_t type)
{
    for (size_t i = 0; i < G_N_ELEMENTS(req_types); i++) {
        if (req_types[i].type == type) {
            return &req_types[i];
        }
    }
    return NULL;
}

/*
 * The status goes in the last bytes of what the type's device-writable
 * part has (where a driver looks for it: the end of its buffer), or of
 * the chain's writable part when that is shorter; everything before it
 * is written too (zeroes, or PROBE's properties), so the used length is
 * what was written from the start.
 */
bool
gw_iommu_request(GwVirtioIommu *s, const uint8_t *in, uint64_t in_len,
                 uint64_t w_len, uint8_t *out, uint32_t *out_len)
{
    const ReqType *t;
    uint64_t want;
    uint8_t status;

    if (in_len < sizeof(struct virtio_iommu_req_head) || w_len < TAIL_SIZE) {
        return false; /* no type, or nowhere for the status: spec 5.13.6 */
    }
    t = req_type(in[0]);
    want = t ? t->out_len : TAIL_SIZE;
    *out_len = (uint32_t)MIN(w_len, want);
    memset(out, 0, *out_len);
    if (!t || (t->feature >= 0 && !negotiated(s, (unsigned)t->feature))) {
        status = VIRTIO_IOMMU_S_UNSUPP;
    } else if (in_len != t->in_len || w_len != t->out_len) {
        status = VIRTIO_IOMMU_S_INVAL; /* shorter or longer than its type */
    } else {
        gw_iommu_space_write_lock(s); /* the one writer layer: -priv.h */
        status = t->handle(s, in, out);
        gw_iommu_space_write_unlock(s);
    }
    if (status != VIRTIO_IOMMU_S_OK) {
        memset(out, 0, *out_len); /* a failed PROBE reports nothing */
        g_debug("virtio-iommu: request type %u: status %u", in[0], status);
    }
    out[*out_len - TAIL_SIZE] = status;
    return true;
}
