/*
 * The shadow-virtqueue fixture (see svq-fixture.h).
 */
#include <string.h>
#include <sys/mman.h>
#include <linux/virtio_iommu.h>
#include <unistd.h>
#include <godwit/util.h>
#include <godwit/vdpa-svq.h>
#include <godwit/virtio-iommu.h>
#include <godwit/virtio-pci.h>
#include "svq-fixture.h"

#define GUARD 4096u

/* A GwTestMem whose mapping has an unmapped page on either side, so a
 * stray access just outside guest RAM faults (or ASan reports it). */
static GwTestMem *
guarded_mem_new(size_t size)
{
    GwTestMem *m = gw_test_mem_new(size, 0);
    uint8_t *area = mmap(NULL, size + 2 * GUARD, PROT_NONE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *at;

    g_assert(area != MAP_FAILED);
    munmap(m->base, m->size);
    at = mmap(area + GUARD, size, PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_FIXED, m->fd, 0);
    g_assert(at == area + GUARD);
    m->base = at;
    return m;
}

static void
guarded_mem_free(GwTestMem *m)
{
    munmap(m->base - GUARD, m->size + 2 * GUARD);
    close(m->fd);
    g_free(m);
}

void
svqfx_mmio_write(SvqFx *f, uint64_t addr, unsigned size, uint64_t v)
{
    g_mutex_lock(&f->lock);
    g_assert_true(gw_bus_write(f->mmio, addr, size, v));
    g_mutex_unlock(&f->lock);
}

uint64_t
svqfx_mmio_read(SvqFx *f, uint64_t addr, unsigned size)
{
    uint64_t v = 0;

    g_mutex_lock(&f->lock);
    g_assert_true(gw_bus_read(f->mmio, addr, size, &v));
    g_mutex_unlock(&f->lock);
    return v;
}

static void
cfg_write_at(SvqFx *f, unsigned slot, unsigned off, unsigned size, uint32_t v)
{
    g_mutex_lock(&f->lock);
    gw_pci_config_write(f->pci, slot << 3, off, size, v);
    g_mutex_unlock(&f->lock);
}

static uint32_t
cfg_read_at(SvqFx *f, unsigned slot, unsigned off, unsigned size)
{
    uint32_t v;

    g_mutex_lock(&f->lock);
    v = gw_pci_config_read(f->pci, slot << 3, off, size);
    g_mutex_unlock(&f->lock);
    return v;
}

void
svqfx_cfg_write(SvqFx *f, unsigned off, unsigned size, uint32_t v)
{
    cfg_write_at(f, SVQFX_SLOT, off, size, v);
}

uint32_t
svqfx_cfg_read(SvqFx *f, unsigned off, unsigned size)
{
    return cfg_read_at(f, SVQFX_SLOT, off, size);
}

/* A simulator `mgmtdev` in a registry of its own; its device path. */
static char *
sim_add(SvqFx *f, const char *mgmtdev)
{
    g_autoptr(GError) err = NULL;
    const char *name = g_str_has_suffix(mgmtdev, "net") ? "n0" : "d0";
    g_autofree char *spec =
        g_strdup_printf("name=%s,mgmtdev=%s%s", name, mgmtdev,
                        strcmp(mgmtdev, "vdpasim_blk") ? "" : ",capacity=1M");
    g_autoptr(GwVdpaSimConfig) sc = gw_vdpa_sim_config_parse(spec, &err);
    char *path = NULL;

    g_assert_no_error(err);
    f->reg = gw_vdpa_sim_registry_new(NULL, &err);
    g_assert_no_error(err);
    g_assert_true(gw_vdpa_sim_add(f->reg, sc, &path, &err));
    if (f->no_suspend) {
        g_assert_true(gw_vdpa_sim_inject_failure(
            f->reg, name, GW_VDPA_SIM_FAIL_NO_SUSPEND, NULL));
    }
    return path;
}

static void
guest_ram(SvqFx *f)
{
    uint32_t size = f->ram_size ? f->ram_size : SVQFX_RAM_SIZE;

    f->tm = guarded_mem_new(size);
    f->gm = (GwGuestMemory){.fd = f->tm->fd,
                            .host = f->tm->base,
                            .size = size,
                            .n_regions = 1,
                            .regions = {{0, size, 0}}};
    f->gm.dirty = g_new0(unsigned long, gw_mem_dirty_words(&f->gm));
    f->tm->used = MIN(1u << 20, size / 2); /* rings and buffers above */
}

/* The virtio-iommu at SVQFX_IOMMU_SLOT, the device its endpoint. */
static void
plug_iommu(SvqFx *f)
{
    g_autoptr(GError) err = NULL;

    f->viommu = gw_virtio_iommu_new(&f->gm, &f->irq, &f->lock, &err);
    g_assert_no_error(err);
    g_assert_true(gw_pci_bus_plug(
        f->pci, gw_virtio_pci_device(gw_virtio_iommu_pci(f->viommu)),
        SVQFX_IOMMU_SLOT, NULL));
    f->iommu_bar0 = cfg_read_at(f, SVQFX_IOMMU_SLOT, 0x10, 4) & ~0xfu;
    cfg_write_at(f, SVQFX_IOMMU_SLOT, 0x04, 2, PCI_COMMAND_MEMORY);
    g_mutex_lock(&f->lock);
    g_assert_true(gw_vdpa_device_attach_iommu(f->dev, f->viommu, &err));
    g_mutex_unlock(&f->lock);
    g_assert_no_error(err);
    f->iommu_req = gw_test_mem_alloc(f->tm, 8192, 4096, &f->iommu_req_gpa);
}

static void
iommu_queue(SvqFx *f, uint16_t idx, GwTestVring *vr)
{
    uint64_t c = f->iommu_bar0;

    svqfx_mmio_write(f, c + 0x16, 2, idx);
    svqfx_mmio_write(f, c + 0x18, 2, vr->num);
    svqfx_mmio_write(f, c + 0x20, 8, vr->desc_iova);
    svqfx_mmio_write(f, c + 0x28, 8, vr->avail_iova);
    svqfx_mmio_write(f, c + 0x30, 8, vr->used_iova);
    svqfx_mmio_write(f, c + 0x1c, 2, 1);
}

/* One request of `size` bytes (its last 4 the device's tail). */
static uint8_t
iommu_send(SvqFx *f, const void *req, uint32_t size)
{
    uint8_t *resp = f->iommu_req + 4096;
    GwTestBuf bufs[2] = {{f->iommu_req_gpa, size - 4, false},
                         {f->iommu_req_gpa + 4096, 4, true}};
    uint16_t head, id = UINT16_MAX;

    memcpy(f->iommu_req, req, size - 4);
    memset(resp, 0xee, 4);
    g_assert_true(gw_test_vring_add(f->iommu_rq, bufs, 2, &head));
    svqfx_mmio_write(f, f->iommu_bar0 + GW_VIRTIO_PCI_NOTIFY, 2, 0);
    for (unsigned i = 0;
         i < 1000 && !gw_test_vring_get_used(f->iommu_rq, &id, NULL); i++) {
        g_main_context_iteration(NULL, FALSE); /* the request handler */
    }
    g_assert_cmpuint(id, ==, head);
    return resp[0];
}

void
svqfx_iommu_start(SvqFx *f)
{
    const uint64_t features = (1ull << VIRTIO_IOMMU_F_MAP_UNMAP) |
                              (1ull << VIRTIO_IOMMU_F_BYPASS_CONFIG) |
                              (1ull << VIRTIO_IOMMU_F_INPUT_RANGE);
    uint64_t c = f->iommu_bar0;
    struct virtio_iommu_req_attach a = {
        .head.type = VIRTIO_IOMMU_T_ATTACH,
        .domain = GUINT32_TO_LE(1),
        .endpoint = GUINT32_TO_LE(gw_vdpa_device_endpoint(f->dev)),
    };

    g_assert_nonnull(f->viommu);
    svqfx_mmio_write(f, c + 0x14, 1, 0);
    svqfx_mmio_write(f, c + 0x14, 1, 1 | 2);
    svqfx_mmio_write(f, c + 0x08, 4, 0);
    svqfx_mmio_write(f, c + 0x0c, 4, (uint32_t)features);
    svqfx_mmio_write(f, c + 0x08, 4, 1);
    svqfx_mmio_write(f, c + 0x0c, 4, 1); /* VERSION_1 */
    svqfx_mmio_write(f, c + 0x14, 1, 1 | 2 | 8);
    f->iommu_rq = gw_test_vring_new(f->tm, 0, 64);
    f->iommu_eq = gw_test_vring_new(f->tm, 1, 64);
    iommu_queue(f, 0, f->iommu_rq);
    iommu_queue(f, 1, f->iommu_eq);
    svqfx_mmio_write(f, c + 0x14, 1, 1 | 2 | 8 | 4);
    g_assert_cmpuint(svqfx_mmio_read(f, c + 0x14, 1), ==, 1 | 2 | 8 | 4);
    g_assert_cmpuint(iommu_send(f, &a, sizeof(a)), ==, VIRTIO_IOMMU_S_OK);
}

uint8_t
svqfx_iommu_map(SvqFx *f, uint64_t iova, uint64_t size, uint64_t gpa,
                uint32_t flags)
{
    struct virtio_iommu_req_map r = {
        .head.type = VIRTIO_IOMMU_T_MAP,
        .domain = GUINT32_TO_LE(1),
        .virt_start = GUINT64_TO_LE(iova),
        .virt_end = GUINT64_TO_LE(iova + size - 1),
        .phys_start = GUINT64_TO_LE(gpa),
        .flags = GUINT32_TO_LE(flags),
    };

    return iommu_send(f, &r, sizeof(r));
}

uint8_t
svqfx_iommu_unmap(SvqFx *f, uint64_t iova, uint64_t size)
{
    struct virtio_iommu_req_unmap r = {
        .head.type = VIRTIO_IOMMU_T_UNMAP,
        .domain = GUINT32_TO_LE(1),
        .virt_start = GUINT64_TO_LE(iova),
        .virt_end = GUINT64_TO_LE(iova + size - 1),
    };

    return iommu_send(f, &r, sizeof(r));
}

void
svqfx_device(SvqFx *f, const char *mgmtdev)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GwVdpaConfig) vc = NULL;
    g_autofree char *path = sim_add(f, mgmtdev);
    bool net = g_str_has_suffix(mgmtdev, "net");
    g_autofree char *vopts = g_strdup_printf(
        "path=%s,%s%s", path, net ? "id=net0,num_queues=2" : "id=disk0",
        f->iommu ? ",iommu=on" : "");
    g_autoptr(GwVdpaBackend) b = gw_vdpa_open(f->reg, path, &err);

    g_assert_no_error(err);
    guest_ram(f);
    f->irq = gw_irq_recorder_chip(&f->rec);
    g_mutex_init(&f->lock);
    f->mmio = gw_bus_new("mmio");
    f->pci = gw_pci_bus_new(0, f->mmio);
    vc = gw_vdpa_config_parse(vopts, &err);
    g_assert_no_error(err);
    f->dev = gw_vdpa_device_new(vc, b, &f->gm, &f->irq, &f->lock, &err);
    g_assert_no_error(err);
    g_assert_true(
        gw_pci_bus_plug(f->pci, gw_vdpa_device_pci(f->dev), SVQFX_SLOT, NULL));
    f->bar0 = svqfx_cfg_read(f, 0x10, 4) & ~0xfu;
    f->bar1 = svqfx_cfg_read(f, 0x14, 4) & ~0xfu;
    svqfx_cfg_write(f, 0x04, 2, PCI_COMMAND_MEMORY);
    if (f->iommu) {
        plug_iommu(f);
    }
}

void
svqfx_free(SvqFx *f)
{
    gw_pci_bus_unplug(f->pci, gw_vdpa_device_pci(f->dev));
    gw_vdpa_device_free(f->dev);
    if (f->viommu) {
        gw_pci_bus_unplug(f->pci,
                          gw_virtio_pci_device(gw_virtio_iommu_pci(f->viommu)));
        gw_virtio_iommu_free(f->viommu);
    }
    g_clear_pointer(&f->iommu_rq, gw_test_vring_free);
    g_clear_pointer(&f->iommu_eq, gw_test_vring_free);
    g_clear_pointer(&f->vr, gw_test_vring_free);
    gw_pci_bus_free(f->pci);
    gw_bus_free(f->mmio);
    gw_vdpa_sim_registry_free(f->reg);
    g_free(f->gm.dirty);
    guarded_mem_free(f->tm);
    g_mutex_clear(&f->lock);
    g_assert_cmpint(f->rec.routes, ==, 0);
}

static unsigned
find_cap(SvqFx *f, uint8_t id)
{
    for (unsigned off = svqfx_cfg_read(f, 0x34, 1); off;
         off = svqfx_cfg_read(f, off + 1, 1)) {
        if (svqfx_cfg_read(f, off, 1) == id) {
            return off;
        }
    }
    g_assert_not_reached();
}

void
svqfx_driver_start_queues(SvqFx *f, GwTestVring **vrs, unsigned n)
{
    uint64_t c = f->bar0;

    svqfx_mmio_write(f, c + 0x14, 1, 0);
    svqfx_mmio_write(f, c + 0x14, 1, 1 | 2);
    svqfx_mmio_write(f, c + 0x08, 4, 1);
    svqfx_mmio_write(f, c + 0x0c, 4, f->iommu ? 1 | 2 : 1); /* +PLATFORM */
    svqfx_mmio_write(f, c + 0x08, 4, 0);
    svqfx_mmio_write(f, c + 0x0c, 4, 0);
    svqfx_mmio_write(f, c + 0x14, 1, 1 | 2 | 8);
    svqfx_mmio_write(f, f->bar1 + 0, 4, 0xfee00000); /* MSI-X vector 0 */
    svqfx_mmio_write(f, f->bar1 + 8, 4, 0x4030);
    svqfx_mmio_write(f, f->bar1 + 12, 4, 0);
    svqfx_cfg_write(f, find_cap(f, 0x11) + 3, 1, 0x80);
    for (unsigned i = 0; i < n; i++) {
        svqfx_mmio_write(f, c + 0x16, 2, i);
        svqfx_mmio_write(f, c + 0x18, 2, vrs[i]->num);
        svqfx_mmio_write(f, c + 0x1a, 2, 0);
        svqfx_mmio_write(f, c + 0x20, 8, vrs[i]->desc_iova + f->ring_off);
        svqfx_mmio_write(f, c + 0x28, 8, vrs[i]->avail_iova + f->ring_off);
        svqfx_mmio_write(f, c + 0x30, 8, vrs[i]->used_iova + f->ring_off);
        svqfx_mmio_write(f, c + 0x1c, 2, 1);
    }
    svqfx_mmio_write(f, c + 0x14, 1, 1 | 2 | 8 | 4);
}

void
svqfx_driver_start(SvqFx *f, uint16_t qsize)
{
    if (!f->vr) {
        f->vr = gw_test_vring_new(f->tm, 0, qsize);
    }
    svqfx_driver_start_queues(f, &f->vr, 1);
}

void
svqfx_notify(SvqFx *f, uint16_t q)
{
    svqfx_mmio_write(
        f, f->bar0 + GW_VIRTIO_PCI_NOTIFY + GW_VIRTIO_NOTIFY_MULTIPLIER * q, 2,
        q);
}

bool
svqfx_svq(SvqFx *f, bool start, GError **errp)
{
    bool ok;

    g_mutex_lock(&f->lock);
    ok = start ? gw_vdpa_device_svq_start(f->dev, errp)
               : gw_vdpa_device_svq_stop(f->dev, errp);
    g_mutex_unlock(&f->lock);
    return ok;
}

bool
svqfx_needs_reset(SvqFx *f)
{
    return svqfx_mmio_read(f, f->bar0 + 0x14, 1) & 0x40;
}

void
svqfx_wait_needs_reset(SvqFx *f)
{
    gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

    while (!svqfx_needs_reset(f)) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_main_context_iteration(NULL, FALSE);
        g_usleep(1000); /* polling the status, bounded */
    }
}
