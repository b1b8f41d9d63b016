/*
 * virtio-iommu: its migratable state, the machine's `virtio-iommu`
 * section (gw_virtio_iommu_save/_load; the format is docs/migration.md's).
 *
 * Every byte of a section is the peer's: it is decoded into an
 * IommuState (scratch, nothing of the IOMMU's) and checked as the
 * request handlers check what a guest asks, against this machine's RAM
 * and endpoints, before anything changes.
 *
 * Threads: the main thread, with the VM's device lock held (the VM
 * stopped).  Locking rule: space_lock is taken for writing here only
 * around storing the new state (or the old one back): the domain tree,
 * built beforehand, the endpoints' domain pointers and the head: plain
 * stores inside (install/uninstall call nothing of the IOMMU's), so
 * nothing can take it again whatever other writers come to lock; never
 * across an endpoint op: the ops
 * (gw_iommu_push) are called after it is released, so a reader
 * (gw_virtio_iommu_translate) sees the new state while the endpoints'
 * IOTLBs catch up, which nothing minds on a destination not yet running.
 */
#include <string.h>
#include <godwit/util.h>
#include "virtio-iommu-priv.h"
#include "virtio-pci-priv.h" /* the function's driver_features */

#define MAP_WIRE_SIZE 28u /* u64 start, u64 end, u64 gpa, u32 flags */
#define RW            (GW_IOMMU_MAP_F_READ | GW_IOMMU_MAP_F_WRITE)

/* The fixed part, described once. */
typedef struct {
    uint8_t bypass;
    uint8_t negotiated;
    uint64_t features;
    uint16_t last_avail, last_used;
} IommuStateHead;

static const GwVmsdField head_fields[] = {
    GW_VMSD_FIELD(IommuStateHead, bypass, 1),
    GW_VMSD_FIELD(IommuStateHead, negotiated, 1),
    GW_VMSD_FIELD(IommuStateHead, features, 1),
    GW_VMSD_FIELD(IommuStateHead, last_avail, 1),
    GW_VMSD_FIELD(IommuStateHead, last_used, 1),
    GW_VMSD_END,
};

static const GwVmsd head_vmsd = {
    .name = "virtio-iommu",
    .version = GW_VIRTIO_IOMMU_STATE_VERSION,
    .fields = head_fields,
    .size = sizeof(IommuStateHead),
};

typedef struct {
    uint32_t id;
    uint8_t bypass;
    GArray *eps;  /* uint32_t endpoint ids */
    GArray *maps; /* IommuMap */
} StateDomain;

typedef struct {
    IommuStateHead head;
    GPtrArray *domains; /* StateDomain * */
} IommuState;

static void
state_domain_free(gpointer p)
{
    StateDomain *d = p;

    g_array_unref(d->eps);
    g_array_unref(d->maps);
    g_free(d);
}

static void
state_clear(IommuState *st)
{
    g_clear_pointer(&st->domains, g_ptr_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(IommuState, state_clear)

static bool refuse(GError **errp, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static bool
refuse(GError **errp, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error_literal(errp, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT, msg);
    return false;
}

/* ---- save ---- */

static void
put_domain(GwMigBuf *b, const IommuDomain *d)
{
    gw_mig_buf_put_u32(b, d->id);
    gw_mig_buf_put_u8(b, d->bypass);
    gw_mig_buf_put_u32(b, d->eps->len);
    for (guint i = 0; i < d->eps->len; i++) {
        gw_mig_buf_put_u32(b, ((const IommuEndpoint *)d->eps->pdata[i])->id);
    }
    gw_mig_buf_put_u32(b, d->maps->len);
    for (guint i = 0; i < d->maps->len; i++) {
        const IommuMap *m = &g_array_index(d->maps, IommuMap, i);

        gw_mig_buf_put_u64(b, m->start);
        gw_mig_buf_put_u64(b, m->end);
        gw_mig_buf_put_u64(b, m->gpa);
        gw_mig_buf_put_u32(b, m->flags);
    }
}

static gboolean
save_domain(gpointer key, gpointer value, gpointer data)
{
    put_domain(data, value);
    return FALSE;
}

bool
gw_virtio_iommu_save(GwVirtioIommu *s, GwMigBuf *out, GError **errp)
{
    IommuStateHead h = {s->bypass, s->negotiated, s->features, s->last_avail,
                        s->last_used};

    if (!gw_vmsd_save(&head_vmsd, &h, out, errp)) {
        return false;
    }
    gw_mig_buf_put_u32(out, (uint32_t)g_tree_nnodes(s->domains));
    g_tree_foreach(s->domains, save_domain, out);
    return gw_virtio_pci_save(s->vp, out, errp);
}

/* ---- decode: the peer's bytes into an IommuState ---- */

/* A count that must be at most `max`, with `each` bytes per element
 * still in the cursor: checked before anything is allocated for it. */
static bool
get_count(GwMigCursor *c, uint32_t max, size_t each, const char *what,
          uint32_t *n, GError **errp)
{
    *n = gw_mig_get_u32(c);
    if (!gw_mig_cursor_ok(c, errp)) {
        return false;
    }
    if (*n > max) {
        return refuse(errp, "%u %s, more than the %u this IOMMU allows", *n,
                      what, max);
    }
    if ((uint64_t)*n * each > gw_mig_cursor_remaining(c)) {
        return refuse(errp, "%u %s do not fit in what is left of the section",
                      *n, what);
    }
    return true;
}

static bool
get_maps(GwMigCursor *c, StateDomain *d, GError **errp)
{
    uint32_t n;

    if (!get_count(c, IOMMU_MAX_MAPPINGS, MAP_WIRE_SIZE, "mappings", &n,
                   errp)) {
        g_prefix_error(errp, "domain %u: ", d->id);
        return false;
    }
    g_array_set_size(d->maps, n);
    for (uint32_t i = 0; i < n; i++) {
        IommuMap *m = &g_array_index(d->maps, IommuMap, i);

        m->start = gw_mig_get_u64(c);
        m->end = gw_mig_get_u64(c);
        m->gpa = gw_mig_get_u64(c);
        m->flags = gw_mig_get_u32(c);
    }
    return gw_mig_cursor_ok(c, errp);
}

/* One domain; `max_eps` is how many endpoints this IOMMU has. */
static StateDomain *
get_domain(GwMigCursor *c, uint32_t max_eps, GError **errp)
{
    g_autoptr(GPtrArray) hold = g_ptr_array_new_with_free_func(
        state_domain_free); /* frees d on every early return */
    StateDomain *d = g_new0(StateDomain, 1);
    uint32_t n;

    g_ptr_array_add(hold, d);
    d->eps = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    d->maps = g_array_new(FALSE, FALSE, sizeof(IommuMap));
    d->id = gw_mig_get_u32(c);
    d->bypass = gw_mig_get_u8(c);
    if (!get_count(c, max_eps, 4, "endpoints", &n, errp)) {
        g_prefix_error(errp, "domain %u: ", d->id);
        return NULL;
    }
    g_array_set_size(d->eps, n);
    for (uint32_t i = 0; i < n; i++) {
        g_array_index(d->eps, uint32_t, i) = gw_mig_get_u32(c);
    }
    if (!gw_mig_cursor_ok(c, errp) || !get_maps(c, d, errp)) {
        return NULL;
    }
    return g_ptr_array_steal_index(hold, 0);
}

/* Each domain holds an endpoint of its own (a domain whose last one
 * leaves is destroyed), so there are at most as many as endpoints. */
static bool
decode(GwVirtioIommu *s, GwMigCursor *c, IommuState *st, GError **errp)
{
    uint32_t max_eps = (uint32_t)g_tree_nnodes(s->endpoints), n;

    if (!gw_vmsd_load(&head_vmsd, &st->head, c, errp) ||
        !get_count(c, max_eps, 13, "domains", &n, errp)) {
        return false;
    }
    st->domains = g_ptr_array_new_with_free_func(state_domain_free);
    for (uint32_t i = 0; i < n; i++) {
        StateDomain *d = get_domain(c, max_eps, errp);

        if (!d) {
            return false;
        }
        g_ptr_array_add(st->domains, d);
    }
    return true;
}

/* ---- validate: what the request handlers would have refused ---- */

static bool
has(const IommuState *st, unsigned bit)
{
    return st->head.features & (1ull << bit);
}

static bool
check_head(const IommuStateHead *h, guint n_domains, GError **errp)
{
    const uint64_t offered = IOMMU_FEATURES | (1ull << GW_VIRTIO_F_VERSION_1);

    if (h->bypass > 1 || h->negotiated > 1) {
        return refuse(errp, "bypass %u, negotiated %u: not 0 or 1", h->bypass,
                      h->negotiated);
    }
    if (h->features & ~offered) {
        return refuse(errp,
                      "features 0x%" G_GINT64_MODIFIER "x, not all offered "
                      "(0x%" G_GINT64_MODIFIER "x)",
                      h->features, offered);
    }
    if (h->last_avail != h->last_used) {
        return refuse(errp,
                      "request queue at avail %u, used %u: a request "
                      "it took is unanswered",
                      h->last_avail, h->last_used);
    }
    if (!h->negotiated && (h->features || h->last_avail || n_domains)) {
        return refuse(errp, "features, requests or domains of a device no "
                            "driver started");
    }
    return true;
}

static bool
check_map(const GwVirtioIommu *s, const IommuMap *m, const IommuMap *prev,
          GError **errp)
{
    if (!(m->flags & RW) || (m->flags & ~RW)) {
        return refuse(errp, "flags 0x%x: not READ and/or WRITE", m->flags);
    }
    if (gw_iommu_map_range_status(s, m) != VIRTIO_IOMMU_S_OK) {
        return refuse(errp,
                      "MAP would refuse it (4 KiB alignment, start <= "
                      "end, inside [0, 0x%llx], outside the MSI window, "
                      "inside one region of guest RAM)",
                      GW_IOMMU_INPUT_END);
    }
    if (prev && prev->end >= m->start) {
        return refuse(errp, "overlaps or precedes the mapping before it");
    }
    return true;
}

static bool
check_maps(const GwVirtioIommu *s, const IommuState *st, const StateDomain *d,
           GError **errp)
{
    if (d->maps->len && (d->bypass || !has(st, VIRTIO_IOMMU_F_MAP_UNMAP))) {
        return refuse(errp,
                      "domain %u: mappings in a bypass domain or "
                      "without MAP_UNMAP",
                      d->id);
    }
    for (guint i = 0; i < d->maps->len; i++) {
        const IommuMap *m = &g_array_index(d->maps, IommuMap, i);

        if (!check_map(s, m, i ? m - 1 : NULL, errp)) {
            g_prefix_error(errp,
                           "domain %u: mapping 0x%" G_GINT64_MODIFIER
                           "x-0x%" G_GINT64_MODIFIER "x: ",
                           d->id, m->start, m->end);
            return false;
        }
    }
    return true;
}

/* Endpoints of this IOMMU, each in one domain at most (`seen`). */
static bool
check_eps(const GwVirtioIommu *s, const StateDomain *d, GHashTable *seen,
          GError **errp)
{
    if (!d->eps->len) {
        return refuse(errp, "domain %u has no endpoint", d->id);
    }
    for (guint i = 0; i < d->eps->len; i++) {
        uint32_t id = g_array_index(d->eps, uint32_t, i);

        if (!gw_iommu_endpoint(s, id)) {
            return refuse(errp,
                          "domain %u: endpoint 0x%x is not behind this "
                          "machine's IOMMU",
                          d->id, id);
        }
        if (!g_hash_table_add(seen, GUINT_TO_POINTER(id))) {
            return refuse(errp,
                          "endpoint 0x%x is in more than one domain "
                          "or twice in one",
                          id);
        }
    }
    return true;
}

/* Domain ids: any u32 is in the config's domain_range [0, 2^32 - 1];
 * they must ascend (as saved), which also makes them unique. */
static bool
validate(const GwVirtioIommu *s, const IommuState *st, GError **errp)
{
    g_autoptr(GHashTable) seen = g_hash_table_new(NULL, NULL);

    if (!check_head(&st->head, st->domains->len, errp)) {
        return false;
    }
    for (guint i = 0; i < st->domains->len; i++) {
        const StateDomain *d = st->domains->pdata[i];
        const StateDomain *prev = i ? st->domains->pdata[i - 1] : NULL;

        if (prev && prev->id >= d->id) {
            return refuse(errp,
                          "domain %u after domain %u: ids repeated or "
                          "out of order",
                          d->id, prev->id);
        }
        if (d->bypass > 1 ||
            (d->bypass && !has(st, VIRTIO_IOMMU_F_BYPASS_CONFIG))) {
            return refuse(errp, "domain %u: bypass %u (BYPASS_CONFIG %s)",
                          d->id, d->bypass,
                          has(st, VIRTIO_IOMMU_F_BYPASS_CONFIG) ? "on" : "off");
        }
        if (!check_eps(s, d, seen, errp) || !check_maps(s, st, d, errp)) {
            return false;
        }
    }
    return true;
}

/* ---- install, push, roll back ---- */

/* What install replaces, to put back. */
typedef struct {
    IommuStateHead head;
    GTree *domains;
    GPtrArray *eps;    /* every IommuEndpoint, in id order */
    GPtrArray *ep_dom; /* each one's IommuDomain before */
    GPtrArray *spaces; /* each one's address space before (GArray) */
} Saved;

static gboolean
collect(gpointer key, gpointer value, gpointer data)
{
    g_ptr_array_add(data, value);
    return FALSE;
}

static void
saved_init(GwVirtioIommu *s, Saved *o)
{
    o->head = (IommuStateHead){s->bypass, s->negotiated, s->features,
                               s->last_avail, s->last_used};
    o->domains = s->domains;
    o->eps = g_ptr_array_new();
    o->ep_dom = g_ptr_array_new();
    o->spaces = g_ptr_array_new_with_free_func((GDestroyNotify)g_array_unref);
    g_tree_foreach(s->endpoints, collect, o->eps);
    for (guint i = 0; i < o->eps->len; i++) {
        GArray *space = g_array_new(FALSE, FALSE, sizeof(IommuMap));
        IommuEndpoint *ep = o->eps->pdata[i];

        gw_iommu_space(s, ep, space);
        g_ptr_array_add(o->spaces, space);
        g_ptr_array_add(o->ep_dom, ep->domain);
    }
}

static void
saved_clear(Saved *o)
{
    g_clear_pointer(&o->eps, g_ptr_array_unref);
    g_clear_pointer(&o->ep_dom, g_ptr_array_unref);
    g_clear_pointer(&o->spaces, g_ptr_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Saved, saved_clear)

static void
set_head(GwVirtioIommu *s, const IommuStateHead *h)
{
    s->bypass = h->bypass;
    s->negotiated = h->negotiated;
    s->features = h->features;
    s->last_avail = h->last_avail;
    s->last_used = h->last_used;
}

/* The loaded domains, as a tree of GwVirtioIommu's (nothing locked:
 * no reader sees it before install). */
static GTree *
build_domains(GwVirtioIommu *s, const IommuState *st)
{
    GTree *t = gw_iommu_domain_tree();

    for (guint i = 0; i < st->domains->len; i++) {
        const StateDomain *sd = st->domains->pdata[i];
        IommuDomain *d = g_new0(IommuDomain, 1);

        *d = (IommuDomain){sd->id, sd->bypass,
                           g_array_new(FALSE, FALSE, sizeof(IommuMap)),
                           g_ptr_array_new()};
        g_array_append_vals(d->maps, sd->maps->data, sd->maps->len);
        for (guint k = 0; k < sd->eps->len; k++) {
            g_ptr_array_add(
                d->eps,
                gw_iommu_endpoint(s, g_array_index(sd->eps, uint32_t, k)));
        }
        g_tree_insert(t, GUINT_TO_POINTER(d->id), d);
    }
    return t;
}

static gboolean
point_eps(gpointer key, gpointer value, gpointer data)
{
    IommuDomain *d = value;

    for (guint k = 0; k < d->eps->len; k++) {
        ((IommuEndpoint *)d->eps->pdata[k])->domain = d;
    }
    return FALSE;
}

/* `domains` and the loaded head in place of the old (kept in `o`):
 * only stores under the write lock (see the top of this file). */
static void
install(GwVirtioIommu *s, GTree *domains, const IommuState *st, const Saved *o)
{
    gw_iommu_space_write_lock(s);
    s->domains = domains;
    for (guint i = 0; i < o->eps->len; i++) {
        ((IommuEndpoint *)o->eps->pdata[i])->domain = NULL;
    }
    g_tree_foreach(domains, point_eps, NULL);
    set_head(s, &st->head);
    gw_iommu_space_write_unlock(s);
}

/* The old state back (the loaded domains freed); write-locked. */
static void
uninstall(GwVirtioIommu *s, const Saved *o)
{
    GTree *loaded = s->domains;

    gw_iommu_space_write_lock(s);
    s->domains = o->domains;
    for (guint i = 0; i < o->eps->len; i++) {
        ((IommuEndpoint *)o->eps->pdata[i])->domain = o->ep_dom->pdata[i];
    }
    set_head(s, &o->head);
    gw_iommu_space_write_unlock(s);
    g_tree_destroy(loaded);
}

/* Each endpoint from its old space to its new one; on a failure, those
 * already pushed are pushed back (forced: best effort, logged by
 * nobody: the load fails and the destination is discarded). */
static bool
push_spaces(GwVirtioIommu *s, const Saved *o, GError **errp)
{
    g_autoptr(GPtrArray) now =
        g_ptr_array_new_with_free_func((GDestroyNotify)g_array_unref);

    for (guint i = 0; i < o->eps->len; i++) {
        GArray *space = g_array_new(FALSE, FALSE, sizeof(IommuMap));

        gw_iommu_space(s, o->eps->pdata[i], space);
        g_ptr_array_add(now, space);
        if (gw_iommu_push(o->eps->pdata[i], o->spaces->pdata[i], space, false,
                          errp)) {
            continue;
        }
        while (i-- > 0) {
            gw_iommu_push(o->eps->pdata[i], now->pdata[i], o->spaces->pdata[i],
                          true, NULL);
        }
        return false;
    }
    return true;
}

static bool
apply(GwVirtioIommu *s, const IommuState *st, GError **errp)
{
    g_auto(Saved) o = {0};

    saved_init(s, &o);
    install(s, build_domains(s, st), st, &o);
    if (!push_spaces(s, &o, errp)) {
        uninstall(s, &o);
        return false;
    }
    g_tree_destroy(o.domains);
    return true;
}

/* ---- load ---- */

/* The function's state, just loaded, and the IOMMU's must tell the same
 * story: a running function is a negotiated IOMMU, with the features
 * the driver wrote and the queue where the function's state puts it. */
static bool
agree_now(GwVirtioIommu *s, const IommuState *st, GwMigCursor *in,
          GError **errp)
{
    GwVirtioPci *vp = s->vp;
    bool running = gw_virtio_pci_status(vp) & GW_VIRTIO_STATUS_DRIVER_OK;
    const IommuStateHead *h = &st->head;

    if (running != h->negotiated) {
        return refuse(errp, "negotiated %u, but its function is%s running",
                      h->negotiated, running ? "" : " not");
    }
    if (running && vp->driver_features != h->features) {
        return refuse(errp,
                      "features 0x%" G_GINT64_MODIFIER "x, its driver's "
                      "0x%" G_GINT64_MODIFIER "x",
                      h->features, vp->driver_features);
    }
    if (running && (s->rq.last_avail != h->last_avail ||
                    s->rq.last_used != h->last_used)) {
        return refuse(errp, "request queue at %u/%u, its function's at %u/%u",
                      h->last_avail, h->last_used, s->rq.last_avail,
                      s->rq.last_used);
    }
    return gw_mig_cursor_finish(in, errp);
}

static bool
agree(GwVirtioIommu *s, const IommuState *st, GwMigCursor *in, GError **errp)
{
    if (!agree_now(s, st, in, errp)) {
        g_prefix_error(errp, "virtio-iommu section: ");
        return false;
    }
    return true;
}

bool
gw_virtio_iommu_load(GwVirtioIommu *s, GwMigCursor *in, GError **errp)
{
    g_auto(IommuState) st = {0};
    GwVirtqueueSetup rq = s->rq;

    if (!decode(s, in, &st, errp) || !validate(s, &st, errp)) {
        g_prefix_error(errp, "virtio-iommu section: ");
        return false;
    }
    if (gw_virtio_pci_load(s->vp, in, errp) && agree(s, &st, in, errp) &&
        apply(s, &st, errp)) {
        if (!s->negotiated) {
            s->rq = (GwVirtqueueSetup){0};
        }
        gw_iommu_start_queue(s); /* iommu_restore stopped it */
        return true;
    }
    s->rq = rq; /* what iommu_restore took */
    if (s->negotiated) {
        gw_iommu_start_queue(s);
    }
    return false;
}
