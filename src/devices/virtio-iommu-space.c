/*
 * virtio-iommu: domains, endpoints and their address spaces, and what
 * each endpoint's ops are told when one changes.  Also the interface's
 * endpoint, translate and query functions.  See
 * include/godwit/virtio-iommu.h; threads: every function with the VM's
 * device lock held.
 */
#include <string.h>
#include <godwit/log.h>
#include <godwit/util.h>
#include "virtio-iommu-priv.h"

bool
gw_iommu_boot_bypass(const GwVirtioIommu *s)
{
    return !s->negotiated ||
           ((s->features & (1ull << VIRTIO_IOMMU_F_BYPASS_CONFIG)) &&
            s->bypass);
}

bool
gw_iommu_bypassing(const GwVirtioIommu *s, const IommuEndpoint *ep)
{
    return ep->domain ? ep->domain->bypass : gw_iommu_boot_bypass(s);
}

void
gw_iommu_identity(const GwVirtioIommu *s, GArray *out)
{
    for (guint i = 0; i < s->mem->n_regions; i++) {
        const GwMemRegion *r = &s->mem->regions[i];
        IommuMap m = {r->gpa, r->gpa + r->size - 1, r->gpa,
                      GW_IOMMU_MAP_F_READ | GW_IOMMU_MAP_F_WRITE};

        if (r->size) {
            g_array_append_val(out, m);
        }
    }
}

/* gw_iommu_mark_writable of the first `n` entries of `maps`. */
static void
mark_writable_n(GwGuestMemory *mem, const GArray *maps, guint n)
{
    for (guint i = 0; i < n; i++) {
        const IommuMap *m = &g_array_index(maps, IommuMap, i);

        if (m->flags & GW_IOMMU_MAP_F_WRITE) {
            gw_mem_mark_dirty(mem, m->gpa, m->end - m->start + 1);
        }
    }
}

void
gw_iommu_mark_writable(GwGuestMemory *mem, const GArray *maps)
{
    mark_writable_n(mem, maps, maps ? maps->len : 0);
}

void
gw_iommu_space(const GwVirtioIommu *s, const IommuEndpoint *ep, GArray *out)
{
    if (gw_iommu_bypassing(s, ep)) {
        gw_iommu_identity(s, out);
    } else if (ep->domain) {
        g_array_append_vals(out, ep->domain->maps->data, ep->domain->maps->len);
    }
}

/* ---- telling an endpoint's ops ---- */

static bool
call_one(IommuEndpoint *ep, const IommuMap *m, bool map, GError **errp)
{
    uint64_t size = m->end - m->start + 1;

    return map ? ep->ops->map(ep->opaque, m->start, size, m->gpa, m->flags,
                              errp)
               : ep->ops->unmap(ep->opaque, m->start, size, errp);
}

/* Calls map or unmap for `n` entries; stops at the first failure unless
 * `force`.  *done: how many succeeded (in order, when not forced). */
static bool
call_all(IommuEndpoint *ep, const GArray *a, bool map, bool force, guint *done,
         GError **errp)
{
    bool ok = true;

    *done = 0;
    for (guint i = 0; a && i < a->len; i++) {
        g_autoptr(GError) err = NULL;

        if (call_one(ep, &g_array_index(a, IommuMap, i), map, &err)) {
            (*done)++;
            continue;
        }
        if (ok) {
            g_propagate_error(errp, g_steal_pointer(&err));
        }
        ok = false;
        if (!force) {
            break;
        }
    }
    return ok;
}

static bool
batch(IommuEndpoint *ep, bool begin, GError **errp)
{
    bool (*fn)(void *, GError **) =
        begin ? ep->ops->batch_begin : ep->ops->batch_end;

    return !fn || fn(ep->opaque, errp);
}

/* Undoes the first `n_maps` of `maps` and the first `n_unmaps` of
 * `unmaps`, latest first, forced: failures are only logged. */
static void
undo(IommuEndpoint *ep, const GArray *unmaps, guint n_unmaps,
     const GArray *maps, guint n_maps)
{
    g_autoptr(GError) err = NULL;
    bool ok = batch(ep, true, &err);

    for (guint i = n_maps; ok && i > 0; i--) {
        ok = call_one(ep, &g_array_index(maps, IommuMap, i - 1), false, &err);
    }
    for (guint i = n_unmaps; ok && i > 0; i--) {
        ok = call_one(ep, &g_array_index(unmaps, IommuMap, i - 1), true, &err);
    }
    if (ok) {
        ok = batch(ep, false, &err);
    }
    mark_writable_n(ep->mem, maps, n_maps); /* unmapped again */
    if (!ok) {
        gw_warning_ratelimited("virtio-iommu: endpoint 0x%x: undoing a "
                               "failed change failed too: %s",
                               ep->id, err->message);
    }
}

static guint
len_of(const GArray *a)
{
    return a ? a->len : 0;
}

/* Unmapping what is then mapped again changes nothing (boot bypass to a
 * bypass domain, a reset of a device still in boot bypass). */
static bool
no_change(const GArray *unmaps, const GArray *maps)
{
    return len_of(unmaps) == len_of(maps) &&
           (!len_of(maps) || !memcmp(unmaps->data, maps->data,
                                     (size_t)maps->len * sizeof(IommuMap)));
}

bool
gw_iommu_push(IommuEndpoint *ep, const GArray *unmaps, const GArray *maps,
              bool force, GError **errp)
{
    g_autoptr(GError) err = NULL;
    guint n_unmaps = 0, n_maps = 0;
    bool ok;

    if (no_change(unmaps, maps)) {
        return true;
    }
    if (!batch(ep, true, errp)) {
        return false;
    }
    ok = call_all(ep, unmaps, false, force, &n_unmaps, &err);
    if (ok || force) {
        ok = call_all(ep, maps, true, force, &n_maps, err ? NULL : &err) && ok;
    }
    ok = batch(ep, false, err ? NULL : &err) && ok;
    /* After the batch: only now can the device no longer write there. */
    gw_iommu_mark_writable(ep->mem, unmaps);
    if (!ok) {
        if (!force) {
            undo(ep, unmaps, n_unmaps, maps, n_maps);
        }
        g_propagate_prefixed_error(errp, g_steal_pointer(&err),
                                   "virtio-iommu: endpoint 0x%x: ", ep->id);
    }
    return ok;
}

bool
gw_iommu_push_all(GPtrArray *eps, const GArray *unmaps, const GArray *maps,
                  GError **errp)
{
    for (guint i = 0; i < eps->len; i++) {
        if (gw_iommu_push(eps->pdata[i], unmaps, maps, false, errp)) {
            continue;
        }
        while (i-- > 0) {
            gw_iommu_push(eps->pdata[i], maps, unmaps, true, NULL);
        }
        return false;
    }
    return true;
}

/* ---- domains and endpoints ---- */

static gboolean
collect_unattached(gpointer key, gpointer value, gpointer data)
{
    IommuEndpoint *ep = value;

    if (!ep->domain) {
        g_ptr_array_add(data, ep);
    }
    return FALSE;
}

GPtrArray *
gw_iommu_unattached(const GwVirtioIommu *s)
{
    GPtrArray *a = g_ptr_array_new();

    g_tree_foreach(s->endpoints, collect_unattached, a);
    return a;
}

IommuEndpoint *
gw_iommu_endpoint(const GwVirtioIommu *s, uint32_t id)
{
    return g_tree_lookup(s->endpoints, GUINT_TO_POINTER(id));
}

IommuDomain *
gw_iommu_domain(const GwVirtioIommu *s, uint32_t id)
{
    return g_tree_lookup(s->domains, GUINT_TO_POINTER(id));
}

IommuDomain *
gw_iommu_domain_new(GwVirtioIommu *s, uint32_t id, bool bypass)
{
    IommuDomain *d = g_new0(IommuDomain, 1);

    d->id = id;
    d->bypass = bypass;
    d->maps = g_array_new(FALSE, FALSE, sizeof(IommuMap));
    d->eps = g_ptr_array_new();
    g_tree_insert(s->domains, GUINT_TO_POINTER(id), d);
    return d;
}

void
gw_iommu_domain_destroy(GwVirtioIommu *s, IommuDomain *d)
{
    g_assert(d->eps->len == 0);
    g_tree_remove(s->domains, GUINT_TO_POINTER(d->id));
}

static void
domain_free(gpointer p)
{
    IommuDomain *d = p;

    g_array_unref(d->maps);
    g_ptr_array_unref(d->eps);
    g_free(d);
}

guint
gw_iommu_find(const IommuDomain *d, uint64_t iova)
{
    guint lo = 0, hi = d->maps->len;

    while (lo < hi) {
        guint mid = lo + (hi - lo) / 2;

        if (g_array_index(d->maps, IommuMap, mid).end < iova) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

void
gw_iommu_move(IommuEndpoint *ep, IommuDomain *to)
{
    if (ep->domain) {
        g_ptr_array_remove(ep->domain->eps, ep);
    }
    ep->domain = to;
    if (to) {
        g_ptr_array_add(to->eps, ep);
    }
}

static gint
cmp_id(gconstpointer a, gconstpointer b, gpointer unused)
{
    uintptr_t x = GPOINTER_TO_UINT(a), y = GPOINTER_TO_UINT(b);

    return x < y ? -1 : x > y;
}

GTree *
gw_iommu_endpoint_tree(void)
{
    return g_tree_new_full(cmp_id, NULL, NULL, g_free);
}

GTree *
gw_iommu_domain_tree(void)
{
    return g_tree_new_full(cmp_id, NULL, NULL, domain_free);
}

static gboolean
collect_all(gpointer key, gpointer value, gpointer data)
{
    g_ptr_array_add(data, value);
    return FALSE;
}

void
gw_iommu_reset_spaces(GwVirtioIommu *s)
{
    g_autoptr(GPtrArray) eps = g_ptr_array_new();
    g_autoptr(GPtrArray) olds =
        g_ptr_array_new_with_free_func((GDestroyNotify)g_array_unref);

    g_tree_foreach(s->endpoints, collect_all, eps);
    for (guint i = 0; i < eps->len; i++) {
        GArray *old = g_array_new(FALSE, FALSE, sizeof(IommuMap));

        gw_iommu_space(s, eps->pdata[i], old);
        g_ptr_array_add(olds, old);
        gw_iommu_move(eps->pdata[i], NULL);
    }
    g_tree_destroy(s->domains);
    s->domains = gw_iommu_domain_tree();
    s->negotiated = false;
    s->features = 0;
    s->bypass = 1;
    for (guint i = 0; i < eps->len; i++) {
        g_autoptr(GArray) now = g_array_new(FALSE, FALSE, sizeof(IommuMap));
        g_autoptr(GError) err = NULL;

        gw_iommu_space(s, eps->pdata[i], now);
        if (!gw_iommu_push(eps->pdata[i], olds->pdata[i], now, true, &err)) {
            gw_warning_ratelimited("virtio-iommu reset: %s", err->message);
        }
    }
}

/* ---- the interface: endpoints ---- */

bool
gw_virtio_iommu_add_endpoint(GwVirtioIommu *s, uint32_t id,
                             const GwIommuEndpointOps *ops, void *opaque,
                             GError **errp)
{
    g_autoptr(GArray) space = g_array_new(FALSE, FALSE, sizeof(IommuMap));
    g_autofree IommuEndpoint *ep = NULL;
    bool ok;

    if (gw_iommu_endpoint(s, id)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_EXISTS,
                    "virtio-iommu: endpoint 0x%x is already behind the IOMMU",
                    id);
        return false;
    }
    ep = g_new0(IommuEndpoint, 1);
    *ep = (IommuEndpoint){id, ops, opaque, NULL, s->mem};
    gw_iommu_space_write_lock(s);
    gw_iommu_space(s, ep, space);
    ok = gw_iommu_push(ep, NULL, space, false, errp);
    if (ok) {
        g_tree_insert(s->endpoints, GUINT_TO_POINTER(id), g_steal_pointer(&ep));
    }
    gw_iommu_space_write_unlock(s);
    return ok;
}

void
gw_virtio_iommu_remove_endpoint(GwVirtioIommu *s, uint32_t id)
{
    g_autoptr(GArray) space = g_array_new(FALSE, FALSE, sizeof(IommuMap));
    IommuEndpoint *ep = gw_iommu_endpoint(s, id);
    IommuDomain *d;

    if (!ep) {
        return;
    }
    gw_iommu_space_write_lock(s);
    gw_iommu_space(s, ep, space);
    d = ep->domain;
    gw_iommu_move(ep, NULL);
    if (d && d->eps->len == 0) {
        gw_iommu_domain_destroy(s, d);
    }
    g_tree_remove(s->endpoints, GUINT_TO_POINTER(id));
    gw_iommu_space_write_unlock(s);
    /* Its backend is closed: nothing writes there any more. */
    gw_iommu_mark_writable(s->mem, space);
}

bool
gw_virtio_iommu_replay(GwVirtioIommu *s, uint32_t id, GError **errp)
{
    g_autoptr(GArray) space = g_array_new(FALSE, FALSE, sizeof(IommuMap));
    IommuEndpoint *ep = gw_iommu_endpoint(s, id);

    if (!ep) {
        g_set_error(errp, GW_ERROR, GW_ERROR_NOT_FOUND,
                    "virtio-iommu: no endpoint 0x%x", id);
        return false;
    }
    gw_iommu_space(s, ep, space);
    return gw_iommu_push(ep, NULL, space, false, errp);
}

/* ---- translate ---- */

static uint64_t
translate_identity(const GwVirtioIommu *s, uint64_t iova, uint64_t len,
                   uint64_t *gpa)
{
    for (guint i = 0; i < s->mem->n_regions; i++) {
        const GwMemRegion *r = &s->mem->regions[i];

        if (iova >= r->gpa && iova - r->gpa < r->size) {
            *gpa = iova;
            return MIN(len, r->size - (iova - r->gpa));
        }
    }
    return 0;
}

static uint64_t
translate(const GwVirtioIommu *s, uint32_t id, uint64_t iova, uint64_t len,
          bool write, uint64_t *gpa)
{
    const IommuEndpoint *ep = gw_iommu_endpoint(s, id);
    const IommuMap *m;
    guint i;

    if (!ep || !len) {
        return 0;
    }
    if (gw_iommu_bypassing(s, ep)) {
        return translate_identity(s, iova, len, gpa);
    }
    if (!ep->domain) {
        return 0;
    }
    i = gw_iommu_find(ep->domain, iova);
    if (i == ep->domain->maps->len) {
        return 0;
    }
    m = &g_array_index(ep->domain->maps, IommuMap, i);
    if (iova < m->start ||
        !(m->flags & (write ? GW_IOMMU_MAP_F_WRITE : GW_IOMMU_MAP_F_READ))) {
        return 0;
    }
    *gpa = m->gpa + (iova - m->start);
    return MIN(len, m->end - iova + 1);
}

void
gw_iommu_space_write_lock(GwVirtioIommu *s)
{
    g_rw_lock_writer_lock(&s->space_lock);
}

void
gw_iommu_space_write_unlock(GwVirtioIommu *s)
{
    g_rw_lock_writer_unlock(&s->space_lock);
}

uint64_t
gw_virtio_iommu_translate(const GwVirtioIommu *s, uint32_t id, uint64_t iova,
                          uint64_t len, bool write, uint64_t *gpa)
{
    GRWLock *lock = (GRWLock *)&s->space_lock; /* readers change nothing */
    uint64_t n;

    g_rw_lock_reader_lock(lock);
    n = translate(s, id, iova, len, write, gpa);
    g_rw_lock_reader_unlock(lock);
    return n;
}

/* ---- query ---- */

typedef struct {
    const GwVirtioIommu *s;
    json_object *array;
} QueryCtx;

static gboolean
query_endpoint(gpointer key, gpointer value, gpointer data)
{
    const IommuEndpoint *ep = value;
    QueryCtx *ctx = data;
    json_object *o = json_object_new_object();

    json_object_object_add(o, "id", json_object_new_int64(ep->id));
    json_object_object_add(
        o, "domain", ep->domain ? json_object_new_int64(ep->domain->id) : NULL);
    json_object_object_add(
        o, "bypassing",
        json_object_new_boolean(gw_iommu_bypassing(ctx->s, ep)));
    json_object_array_add(ctx->array, o);
    return FALSE;
}

static json_object *
query_map(const IommuMap *m)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "virt-start", json_object_new_int64(m->start));
    json_object_object_add(o, "virt-end", json_object_new_int64(m->end));
    json_object_object_add(o, "phys-start", json_object_new_int64(m->gpa));
    json_object_object_add(o, "flags", json_object_new_int(m->flags));
    return o;
}

static gboolean
query_domain(gpointer key, gpointer value, gpointer data)
{
    const IommuDomain *d = value;
    json_object *o = json_object_new_object();
    json_object *maps = json_object_new_array();

    for (guint i = 0; i < d->maps->len; i++) {
        json_object_array_add(maps,
                              query_map(&g_array_index(d->maps, IommuMap, i)));
    }
    json_object_object_add(o, "id", json_object_new_int64(d->id));
    json_object_object_add(o, "bypass", json_object_new_boolean(d->bypass));
    json_object_object_add(o, "mappings", maps);
    json_object_array_add(data, o);
    return FALSE;
}

json_object *
gw_virtio_iommu_query(const GwVirtioIommu *s)
{
    json_object *o = json_object_new_object();
    json_object *eps = json_object_new_array();
    json_object *domains = json_object_new_array();
    QueryCtx ctx = {s, eps};

    g_tree_foreach(s->endpoints, query_endpoint, &ctx);
    g_tree_foreach(s->domains, query_domain, domains);
    json_object_object_add(o, "bypass", json_object_new_boolean(s->bypass));
    json_object_object_add(o, "endpoints", eps);
    json_object_object_add(o, "domains", domains);
    return o;
}
