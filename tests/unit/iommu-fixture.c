/*
 * The virtio-iommu tests' fixture (see iommu-fixture.h).
 */
#include <string.h>
#include <linux/pci_regs.h>
#include <godwit/bus.h>
#include <godwit/pci.h>
#include <godwit/util.h>
#include <godwit/virtio-pci.h>
#include "iommu-fixture.h"

/* ---- fake endpoints ---- */

static bool
fake_fails(FxEndpoint *e, GError **errp)
{
    e->n_calls++;
    if (e->fail_op && --e->fail_op == 0) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED, "fake endpoint failure");
        return true;
    }
    return false;
}

static void
record(FxEndpoint *e, FxCall c)
{
    if (!e->no_view) {
        g_array_append_val(e->calls, c);
    }
}

static bool
fake_map(void *opaque, uint64_t iova, uint64_t size, uint64_t gpa,
         unsigned flags, GError **errp)
{
    FxEndpoint *e = opaque;
    FxCall c = {'m', iova, size, gpa, flags};
    guint at = 0;

    /* The header's promises: whole 4 KiB pages, some permission. */
    g_assert_cmpuint(size % 4096, ==, 0);
    g_assert_cmpuint(iova % 4096, ==, 0);
    g_assert_cmpuint(flags & ~FX_RW, ==, 0);
    g_assert_cmpuint(flags, !=, 0);
    g_assert_cmpuint(size, >, 0);
    record(e, c);
    if (fake_fails(e, errp)) {
        return false;
    }
    if (e->no_view) {
        return true;
    }
    while (at < e->view->len &&
           g_array_index(e->view, FxCall, at).iova < iova) {
        at++;
    }
    /* Never mapped twice: the IOMMU unmaps before it maps anew. */
    if (at > 0) {
        FxCall *p = &g_array_index(e->view, FxCall, at - 1);
        g_assert_cmpuint(p->iova + p->size, <=, iova);
    }
    if (at < e->view->len) {
        g_assert_cmpuint(iova + size, <=,
                         g_array_index(e->view, FxCall, at).iova);
    }
    g_array_insert_val(e->view, at, c);
    return true;
}

static bool
fake_unmap(void *opaque, uint64_t iova, uint64_t size, GError **errp)
{
    FxEndpoint *e = opaque;
    FxCall c = {'u', iova, size, 0, 0};

    record(e, c);
    if (fake_fails(e, errp)) {
        return false;
    }
    for (guint i = 0; !e->no_view && i < e->view->len;) {
        FxCall *m = &g_array_index(e->view, FxCall, i);

        if (m->iova + m->size <= iova || m->iova >= iova + size) {
            i++;
            continue;
        }
        /* The IOMMU never cuts into a mapping it gave. */
        g_assert_cmpuint(m->iova, >=, iova);
        g_assert_cmpuint(m->iova + m->size, <=, iova + size);
        g_array_remove_index(e->view, i);
    }
    return true;
}

static bool
fake_begin(void *opaque, GError **errp)
{
    record(opaque, (FxCall){'b'});
    return true;
}

static bool
fake_end(void *opaque, GError **errp)
{
    FxEndpoint *e = opaque;

    record(e, (FxCall){'e'});
    if (e->fail_end) {
        e->fail_end = false;
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED, "fake batch_end failure");
        return false;
    }
    return true;
}

const GwIommuEndpointOps fx_endpoint_ops = {fake_map, fake_unmap, fake_begin,
                                            fake_end};

void
fx_assert_view(const FxEndpoint *e, const FxCall *want, unsigned n)
{
    g_assert_cmpuint(e->view->len, ==, n);
    for (unsigned i = 0; i < n; i++) {
        const FxCall *v = &g_array_index(e->view, FxCall, i);
        g_assert_cmphex(v->iova, ==, want[i].iova);
        g_assert_cmphex(v->size, ==, want[i].size);
        g_assert_cmphex(v->gpa, ==, want[i].gpa);
        g_assert_cmpuint(v->flags, ==, want[i].flags);
    }
}

void
fx_assert_identity(const FxEndpoint *e)
{
    const FxCall id[] = {{'m', 0, FX_LOW, 0, FX_RW},
                         {'m', FX_LOW, FX_RAM - FX_LOW, FX_LOW, FX_RW}};

    fx_assert_view(e, id, 2);
}

void
fx_clear_calls(Fx *f)
{
    for (unsigned i = 0; i < 2; i++) {
        g_array_set_size(f->ep[i].calls, 0);
        f->ep[i].n_calls = 0;
    }
}

/* ---- the PCI function, driven as a guest does ---- */

void
fx_mmio_write(Fx *f, uint64_t off, unsigned size, uint64_t v)
{
    g_mutex_lock(&f->lock);
    g_assert_true(gw_bus_write(f->mmio, f->bar0 + off, size, v));
    g_mutex_unlock(&f->lock);
}

uint64_t
fx_mmio_read(Fx *f, uint64_t off, unsigned size)
{
    uint64_t v = 0;

    g_mutex_lock(&f->lock);
    g_assert_true(gw_bus_read(f->mmio, f->bar0 + off, size, &v));
    g_mutex_unlock(&f->lock);
    return v;
}

static uint32_t
cfg_read(Fx *f, unsigned off, unsigned size)
{
    uint32_t v;

    g_mutex_lock(&f->lock);
    v = gw_pci_config_read(f->pci, FX_SLOT << 3, off, size);
    g_mutex_unlock(&f->lock);
    return v;
}

static void
cfg_write(Fx *f, unsigned off, unsigned size, uint32_t v)
{
    g_mutex_lock(&f->lock);
    gw_pci_config_write(f->pci, FX_SLOT << 3, off, size, v);
    g_mutex_unlock(&f->lock);
}

static void
endpoint_init(Fx *f, unsigned i, uint32_t id)
{
    g_autoptr(GError) err = NULL;

    f->ep[i].calls = g_array_new(FALSE, FALSE, sizeof(FxCall));
    f->ep[i].view = g_array_new(FALSE, FALSE, sizeof(FxCall));
    g_mutex_lock(&f->lock);
    g_assert_true(gw_virtio_iommu_add_endpoint(f->iommu, id, &fx_endpoint_ops,
                                               &f->ep[i], &err));
    g_mutex_unlock(&f->lock);
    g_assert_no_error(err);
}

void
fx_init(Fx *f)
{
    g_autoptr(GError) err = NULL;

    memset(f, 0, sizeof(*f));
    f->tm = gw_test_mem_new(FX_RAM, 0);
    f->gm = (GwGuestMemory){
        .fd = f->tm->fd,
        .host = f->tm->base,
        .size = FX_RAM,
        .n_regions = 2,
        .regions = {{0, FX_LOW, 0}, {FX_LOW, FX_RAM - FX_LOW, FX_LOW}}};
    f->gm.dirty = g_new0(unsigned long, gw_mem_dirty_words(&f->gm));
    f->irq = gw_irq_recorder_chip(&f->rec);
    g_mutex_init(&f->lock);
    f->mmio = gw_bus_new("mmio");
    f->pci = gw_pci_bus_new(0, f->mmio);
    f->iommu = gw_virtio_iommu_new(&f->gm, &f->irq, &f->lock, &err);
    g_assert_no_error(err);
    g_assert_true(gw_pci_bus_plug(
        f->pci, gw_virtio_pci_device(gw_virtio_iommu_pci(f->iommu)), FX_SLOT,
        NULL));
    f->bar0 = cfg_read(f, 0x10, 4) & ~0xfu;
    cfg_write(f, 0x04, 2, PCI_COMMAND_MEMORY);
    f->req = gw_test_mem_alloc(f->tm, 4096, 4096, &f->req_gpa);
    f->resp = gw_test_mem_alloc(f->tm, 4096, 4096, &f->resp_gpa);
    endpoint_init(f, 0, FX_EP_A);
    endpoint_init(f, 1, FX_EP_B);
}

void
fx_fini(Fx *f)
{
    gw_pci_bus_unplug(f->pci,
                      gw_virtio_pci_device(gw_virtio_iommu_pci(f->iommu)));
    gw_virtio_iommu_free(f->iommu);
    g_clear_pointer(&f->rq, gw_test_vring_free);
    g_clear_pointer(&f->eq, gw_test_vring_free);
    gw_pci_bus_free(f->pci);
    gw_bus_free(f->mmio);
    for (unsigned i = 0; i < 2; i++) {
        g_array_unref(f->ep[i].calls);
        g_array_unref(f->ep[i].view);
    }
    g_free(f->gm.dirty);
    gw_test_mem_free(f->tm);
    g_mutex_clear(&f->lock);
    g_assert_cmpint(f->rec.routes, ==, 0);
}

static void
queue_setup(Fx *f, uint16_t idx, GwTestVring *vr)
{
    fx_mmio_write(f, 0x16, 2, idx);
    fx_mmio_write(f, 0x18, 2, vr->num);
    fx_mmio_write(f, 0x20, 8, vr->desc_iova);
    fx_mmio_write(f, 0x28, 8, vr->avail_iova);
    fx_mmio_write(f, 0x30, 8, vr->used_iova);
    fx_mmio_write(f, 0x1c, 2, 1);
}

void
fx_driver_features(Fx *f, uint64_t features)
{
    features |= 1ull << 32;
    fx_mmio_write(f, 0x14, 1, 0);
    fx_mmio_write(f, 0x14, 1, 1 | 2);
    fx_mmio_write(f, 0x08, 4, 0);
    fx_mmio_write(f, 0x0c, 4, (uint32_t)features);
    fx_mmio_write(f, 0x08, 4, 1);
    fx_mmio_write(f, 0x0c, 4, (uint32_t)(features >> 32));
    fx_mmio_write(f, 0x14, 1, 1 | 2 | 8);
    g_assert_cmpuint(fx_status(f) & 8, ==, 8);
    /* A fresh driver: fresh rings (the device starts at index 0). */
    g_clear_pointer(&f->rq, gw_test_vring_free);
    g_clear_pointer(&f->eq, gw_test_vring_free);
    f->rq = gw_test_vring_new(f->tm, 0, 64);
    f->eq = gw_test_vring_new(f->tm, 1, 64);
    queue_setup(f, 0, f->rq);
    queue_setup(f, 1, f->eq);
}

void
fx_driver_ok(Fx *f)
{
    fx_mmio_write(f, 0x14, 1, 1 | 2 | 8 | 4);
}

void
fx_driver_start(Fx *f, uint64_t features)
{
    fx_driver_features(f, features);
    fx_driver_ok(f);
    g_assert_cmpuint(fx_status(f), ==, 1 | 2 | 8 | 4);
}

uint8_t
fx_status(Fx *f)
{
    return (uint8_t)fx_mmio_read(f, 0x14, 1);
}

void
fx_run(Fx *f)
{
    for (unsigned i = 0; i < 1000 && g_main_context_iteration(NULL, FALSE);
         i++) {
    }
}

uint32_t
fx_send(Fx *f, const void *req, uint32_t in_len, uint32_t w_len)
{
    GwTestBuf bufs[2] = {{f->req_gpa, in_len, false},
                         {f->resp_gpa, w_len, true}};
    uint16_t head, id;
    uint32_t len;

    g_assert_cmpuint(in_len, <=, 4096);
    g_assert_cmpuint(w_len, <=, 4096);
    memcpy(f->req, req, in_len);
    memset(f->resp, 0xee, 4096);
    g_assert_true(gw_test_vring_add(f->rq, bufs, 2, &head));
    fx_mmio_write(f, 0x3000, 2, 0); /* notify queue 0 */
    fx_run(f);
    g_assert_true(gw_test_vring_get_used(f->rq, &id, &len));
    g_assert_cmpuint(id, ==, head);
    return len;
}

/* A request of `size` bytes whose tail is its last 4. */
static uint8_t
send_typed(Fx *f, const void *req, uint32_t size)
{
    g_assert_cmpuint(fx_send(f, req, size - 4, 4), ==, 4);
    return f->resp[0];
}

uint8_t
fx_attach(Fx *f, uint32_t domain, uint32_t ep, uint32_t flags)
{
    struct virtio_iommu_req_attach r = {
        .head.type = VIRTIO_IOMMU_T_ATTACH,
        .domain = domain,
        .endpoint = ep,
        .flags = flags,
    };
    return send_typed(f, &r, sizeof(r));
}

uint8_t
fx_detach(Fx *f, uint32_t domain, uint32_t ep)
{
    struct virtio_iommu_req_detach r = {
        .head.type = VIRTIO_IOMMU_T_DETACH,
        .domain = domain,
        .endpoint = ep,
    };
    return send_typed(f, &r, sizeof(r));
}

uint8_t
fx_map(Fx *f, uint32_t domain, uint64_t start, uint64_t end, uint64_t phys,
       uint32_t flags)
{
    struct virtio_iommu_req_map r = {
        .head.type = VIRTIO_IOMMU_T_MAP,
        .domain = domain,
        .virt_start = start,
        .virt_end = end,
        .phys_start = phys,
        .flags = flags,
    };
    return send_typed(f, &r, sizeof(r));
}

uint8_t
fx_unmap(Fx *f, uint32_t domain, uint64_t start, uint64_t end)
{
    struct virtio_iommu_req_unmap r = {
        .head.type = VIRTIO_IOMMU_T_UNMAP,
        .domain = domain,
        .virt_start = start,
        .virt_end = end,
    };
    return send_typed(f, &r, sizeof(r));
}

char *
fx_query(Fx *f)
{
    g_autoptr(json_object) o = NULL;

    g_mutex_lock(&f->lock);
    o = gw_virtio_iommu_query(f->iommu);
    g_mutex_unlock(&f->lock);
    return g_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
}
