/*
 * The shadow-virtqueue fixture (see svq-fixture.h).
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <godwit/util.h>
#include <godwit/vdpa-svq.h>
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

void
svqfx_cfg_write(SvqFx *f, unsigned off, unsigned size, uint32_t v)
{
    g_mutex_lock(&f->lock);
    gw_pci_config_write(f->pci, SVQFX_SLOT << 3, off, size, v);
    g_mutex_unlock(&f->lock);
}

uint32_t
svqfx_cfg_read(SvqFx *f, unsigned off, unsigned size)
{
    uint32_t v;

    g_mutex_lock(&f->lock);
    v = gw_pci_config_read(f->pci, SVQFX_SLOT << 3, off, size);
    g_mutex_unlock(&f->lock);
    return v;
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

void
svqfx_device(SvqFx *f, const char *mgmtdev)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GwVdpaConfig) vc = NULL;
    g_autofree char *path = sim_add(f, mgmtdev);
    bool net = g_str_has_suffix(mgmtdev, "net");
    g_autofree char *vopts = g_strdup_printf(
        "path=%s,%s", path, net ? "id=net0,num_queues=2" : "id=disk0");
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
}

void
svqfx_free(SvqFx *f)
{
    gw_pci_bus_unplug(f->pci, gw_vdpa_device_pci(f->dev));
    gw_vdpa_device_free(f->dev);
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
    svqfx_mmio_write(f, c + 0x0c, 4, 1);
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
        svqfx_mmio_write(f, c + 0x20, 8, vrs[i]->desc_iova);
        svqfx_mmio_write(f, c + 0x28, 8, vrs[i]->avail_iova);
        svqfx_mmio_write(f, c + 0x30, 8, vrs[i]->used_iova);
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
