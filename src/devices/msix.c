#include <string.h>
#include <godwit/log.h>
#include <godwit/msix.h>
#include <godwit/vmstate.h>

#define CTRL_ENABLE  0x8000
#define CTRL_MASKALL 0x4000
#define ENTRY_MASKED 0x1

typedef GwMsixEntry Entry;

static uint16_t
control(const GwMsix *m)
{
    return gw_pci_get16(m->dev, m->cap + 2);
}

static bool
active(const GwMsix *m, unsigned v)
{
    uint16_t c = control(m);
    return (c & CTRL_ENABLE) && !(c & CTRL_MASKALL) &&
           !(m->table[v].ctrl & ENTRY_MASKED);
}

static uint64_t
entry_addr(const Entry *e)
{
    return (uint64_t)e->addr_hi << 32 | e->addr_lo;
}

/* Keeps the route of vector v equal to its table entry. */
static void
sync_route(GwMsix *m, unsigned v)
{
    const Entry *e = &m->table[v];
    int *gsi = &m->gsi[v];
    g_autoptr(GError) err = NULL;

    if (!entry_addr(e)) {
        if (*gsi >= 0) {
            m->irq->ops->msi_route_del(m->irq->ctx, *gsi);
            *gsi = -1;
        }
        return;
    }
    if (*gsi < 0) {
        *gsi = m->irq->ops->msi_route_add(m->irq->ctx, entry_addr(e), e->data,
                                          &err);
    } else if (!m->irq->ops->msi_route_set(m->irq->ctx, *gsi, entry_addr(e),
                                           e->data, &err)) {
        *gsi = -1;
    }
    if (err) {
        gw_warning_ratelimited("MSI-X vector %u: %s", v, err->message);
    }
}

static void
fire(GwMsix *m, unsigned v)
{
    const Entry *e = &m->table[v];
    m->irq->ops->signal_msi(m->irq->ctx, entry_addr(e), e->data);
}

/* After anything that may change vector v: deliver pending, tell owner. */
static void
vector_changed(GwMsix *m, unsigned v)
{
    if (active(m, v) && m->pending[v]) {
        m->pending[v] = false;
        fire(m, v);
    }
    m->changed(m->opaque, v);
}

static uint64_t
bar_read(void *opaque, uint64_t off, unsigned size)
{
    GwMsix *m = opaque;
    uint64_t v = 0;

    if (off + size <= m->n * sizeof(Entry)) {
        memcpy(&v, (uint8_t *)m->table + off, size);
    } else if (off >= GW_MSIX_PBA_OFFSET && size <= 8) {
        unsigned first = (unsigned)(off - GW_MSIX_PBA_OFFSET) * 8;
        for (unsigned b = 0; b < size * 8; b++) {
            if (first + b < m->n && m->pending[first + b]) {
                v |= 1ull << b;
            }
        }
    }
    return v;
}

static void
bar_write(void *opaque, uint64_t off, uint64_t value, unsigned size)
{
    GwMsix *m = opaque;
    unsigned v = (unsigned)(off / sizeof(Entry));

    if (off + size > m->n * sizeof(Entry)) {
        return; /* the PBA is read-only */
    }
    if (off & (size - 1)) {
        return; /* PCI: aligned DWORDs and QWORDs only; one may straddle
                 * two entries, and only one route would follow */
    }
    memcpy((uint8_t *)m->table + off, &value, size);
    sync_route(m, v);
    vector_changed(m, v);
}

static const GwDeviceOps bar_ops = {"msix", bar_read, bar_write};

void
gw_msix_init(GwMsix *m, GwPciDevice *dev, unsigned n_vectors, unsigned bar,
             const GwIrqChip *irq, GwMsixChangedFn changed, void *opaque)
{
    uint8_t cap[12] = {0}, wmask[12] = {0};
    uint32_t table = GW_MSIX_TABLE_OFFSET | bar, pba = GW_MSIX_PBA_OFFSET | bar;
    uint16_t ctrl = (uint16_t)(n_vectors - 1);

    g_assert(n_vectors >= 1 && n_vectors <= GW_MSIX_MAX_VECTORS);
    m->dev = dev;
    m->n = n_vectors;
    m->irq = irq;
    m->changed = changed;
    m->opaque = opaque;
    memcpy(cap + 2, &ctrl, 2);
    memcpy(cap + 4, &table, 4);
    memcpy(cap + 8, &pba, 4);
    wmask[3] = (CTRL_ENABLE | CTRL_MASKALL) >> 8;
    m->cap = gw_pci_device_add_cap(dev, 0x11, cap, sizeof(cap), wmask);
    gw_pci_device_set_bar(dev, bar, GW_MSIX_BAR_SIZE, &bar_ops, m);
    for (unsigned v = 0; v < GW_MSIX_MAX_VECTORS; v++) {
        m->gsi[v] = -1;
    }
    gw_msix_reset(m);
}

GwMsix *
gw_msix_new(GwPciDevice *dev, unsigned n_vectors, unsigned bar,
            const GwIrqChip *irq, GwMsixChangedFn changed, void *opaque)
{
    GwMsix *m = g_new0(GwMsix, 1);

    gw_msix_init(m, dev, n_vectors, bar, irq, changed, opaque);
    return m;
}

void
gw_msix_reset(GwMsix *m)
{
    m->dev->config[m->cap + 3] &= ~((CTRL_ENABLE | CTRL_MASKALL) >> 8);
    memset(m->table, 0, sizeof(m->table));
    for (unsigned v = 0; v < m->n; v++) {
        m->table[v].ctrl = ENTRY_MASKED;
        m->pending[v] = false;
        sync_route(m, v);
    }
}

void
gw_msix_cleanup(GwMsix *m)
{
    memset(m->table, 0, sizeof(m->table));
    for (unsigned v = 0; v < m->n; v++) {
        sync_route(m, v); /* releases every route */
    }
}

void
gw_msix_free(GwMsix *m)
{
    if (m) {
        gw_msix_cleanup(m);
        g_free(m);
    }
}

void
gw_msix_config_written(GwMsix *m, unsigned offset, unsigned size)
{
    if (offset <= m->cap + 3 && offset + size > m->cap + 2) {
        for (unsigned v = 0; v < m->n; v++) {
            vector_changed(m, v);
        }
    }
}

int
gw_msix_vector_gsi(const GwMsix *m, unsigned v)
{
    return v < m->n && active(m, v) ? m->gsi[v] : -1;
}

void
gw_msix_notify(GwMsix *m, unsigned v)
{
    if (v >= m->n) {
        return;
    }
    if (active(m, v)) {
        fire(m, v);
    } else {
        m->pending[v] = true;
    }
}

unsigned
gw_msix_vectors(const GwMsix *m)
{
    return m->n;
}

/* ---- migration ---- */

/* Each vector as if the guest had just written its entry: its route is
 * made to match, a pending vector that is active is delivered, and the
 * owner re-binds what it binds to the vector. */
static bool
msix_post_load(void *obj, unsigned version, GError **errp)
{
    GwMsix *m = obj;

    for (unsigned v = 0; v < m->n; v++) {
        sync_route(m, v);
        vector_changed(m, v);
    }
    return true;
}

static const GwVmsdField msix_fields[] = {
    GW_VMSD_ARRAY(GwMsix, table, 1),
    GW_VMSD_ARRAY(GwMsix, pending, 1),
    GW_VMSD_END,
};

const GwVmsd gw_msix_vmsd = {
    .name = "msix",
    .version = 1,
    .fields = msix_fields,
    .post_load = msix_post_load,
    .size = sizeof(GwMsix),
};
