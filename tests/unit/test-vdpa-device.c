/*
 * The vDPA device model end to end without KVM: a "guest" programs the
 * virtio-pci function through config cycles and MMIO exactly as a driver
 * does, the device model drives the simulator through the seam, and the
 * simulator's worker moves the data.  Only KVM itself is replaced (by the
 * interrupt recorder).
 */
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <string.h>
#include <linux/virtio_blk.h>
#include <glib/gstdio.h>
#include <godwit/util.h>
#include <godwit/vdpa-device.h>
#include <godwit/vdpa-sim.h>
#include <godwit/vdpa-svq.h>
#include <godwit/virtio-pci.h>
#include "irq-recorder.h"
#include "vring-driver.h"

#define RAM_SIZE (16u << 20)
#define SLOT     1

typedef struct {
    char *disk;
    GwVdpaSimRegistry *reg;
    GwTestMem *tm;
    GwGuestMemory gm;
    GwIrqRecorder rec;
    GwIrqChip irq;
    GMutex lock;
    GwBus *mmio;
    GwPciBus *pci;
    GwVdpaDevice *dev;
    uint64_t bar0, bar1;
    GwTestVring *vr;
    unsigned kick_via_cfg; /* the PCI_CFG capability's offset, or 0 */
    const char *sim_name;  /* NULL: d0 */
    bool no_suspend;       /* a device without SUSPEND/RESUME */
    bool narrow_iova; /* IOVAs below 2^39 only (GW_VDPA_SIM_FAIL_NARROW_IOVA) */
    uint32_t features_hi; /* driver features 32..63 (0: VERSION_1) */
} Fx;

static void
mmio_write(Fx *f, uint64_t addr, unsigned size, uint64_t v)
{
    g_mutex_lock(&f->lock);
    g_assert_true(gw_bus_write(f->mmio, addr, size, v));
    g_mutex_unlock(&f->lock);
}

static uint64_t
mmio_read(Fx *f, uint64_t addr, unsigned size)
{
    uint64_t v;

    g_mutex_lock(&f->lock);
    g_assert_true(gw_bus_read(f->mmio, addr, size, &v));
    g_mutex_unlock(&f->lock);
    return v;
}

static void
cfg_write(Fx *f, unsigned off, unsigned size, uint32_t v)
{
    g_mutex_lock(&f->lock);
    gw_pci_config_write(f->pci, SLOT << 3, off, size, v);
    g_mutex_unlock(&f->lock);
}

static uint32_t
cfg_read(Fx *f, unsigned off, unsigned size)
{
    uint32_t v;

    g_mutex_lock(&f->lock);
    v = gw_pci_config_read(f->pci, SLOT << 3, off, size);
    g_mutex_unlock(&f->lock);
    return v;
}

/* VIRTIO_PCI_CAP_PCI_CFG at `cap`: a BAR access through config space. */
static void
cfg_window(Fx *f, unsigned cap, uint8_t bar, uint32_t off, uint32_t len)
{
    cfg_write(f, cap + 4, 1, bar);
    cfg_write(f, cap + 8, 4, off);
    cfg_write(f, cap + 12, 4, len);
}

static uint32_t
window_read(Fx *f, unsigned cap, uint32_t off, uint32_t len)
{
    cfg_window(f, cap, 0, off, len);
    return cfg_read(f, cap + 16, 4);
}

static void
window_write(Fx *f, unsigned cap, uint32_t off, uint32_t len, uint32_t v)
{
    cfg_window(f, cap, 0, off, len);
    cfg_write(f, cap + 16, 4, v);
}

/* Sets the fixture up; returns the device or NULL with *errp. */
static GwVdpaDevice *
fx_device(Fx *f, const char *sim_opts, const char *vdpa_opts, GError **errp)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *sim = g_strdup_printf(
        "name=%s,mgmtdev=%s", f->sim_name ? f->sim_name : "d0", sim_opts);
    g_autoptr(GwVdpaSimConfig) sc = gw_vdpa_sim_config_parse(sim, &err);
    g_autofree char *path = NULL, *vopts = NULL;
    g_autoptr(GwVdpaConfig) vc = NULL;
    g_autoptr(GwVdpaBackend) b = NULL;

    g_assert_no_error(err);
    f->reg = gw_vdpa_sim_registry_new(NULL, &err);
    g_assert_no_error(err);
    g_assert_true(gw_vdpa_sim_add(f->reg, sc, &path, &err));
    if (f->no_suspend) {
        g_assert_true(
            gw_vdpa_sim_inject_failure(f->reg, f->sim_name ? f->sim_name : "d0",
                                       GW_VDPA_SIM_FAIL_NO_SUSPEND, NULL));
    }
    if (f->narrow_iova) {
        g_assert_true(
            gw_vdpa_sim_inject_failure(f->reg, f->sim_name ? f->sim_name : "d0",
                                       GW_VDPA_SIM_FAIL_NARROW_IOVA, NULL));
    }
    f->tm = gw_test_mem_new(RAM_SIZE, 0);
    f->gm = (GwGuestMemory){.fd = f->tm->fd,
                            .host = f->tm->base,
                            .size = RAM_SIZE,
                            .n_regions = 1,
                            .regions = {{0, RAM_SIZE, 0}}};
    f->tm->used = 1 << 20; /* leave the first MiB for request buffers */
    f->irq = gw_irq_recorder_chip(&f->rec);
    g_mutex_init(&f->lock);
    f->mmio = gw_bus_new("mmio");
    f->pci = gw_pci_bus_new(0, f->mmio);
    vopts = g_strdup_printf("path=%s,id=disk0%s", path, vdpa_opts);
    vc = gw_vdpa_config_parse(vopts, &err);
    g_assert_no_error(err);
    b = gw_vdpa_open(f->reg, path, &err);
    g_assert_no_error(err);
    f->dev = gw_vdpa_device_new(vc, b, &f->gm, &f->irq, &f->lock, errp);
    if (f->dev) {
        g_assert_true(
            gw_pci_bus_plug(f->pci, gw_vdpa_device_pci(f->dev), SLOT, NULL));
        f->bar0 = cfg_read(f, 0x10, 4) & ~0xfu;
        f->bar1 = cfg_read(f, 0x14, 4) & ~0xfu;
        cfg_write(f, 0x04, 2, PCI_COMMAND_MEMORY);
    }
    return f->dev;
}

static void
fx_free(Fx *f)
{
    if (f->dev) {
        gw_pci_bus_unplug(f->pci, gw_vdpa_device_pci(f->dev));
        gw_vdpa_device_free(f->dev);
    }
    g_clear_pointer(&f->vr, gw_test_vring_free);
    gw_pci_bus_free(f->pci);
    gw_bus_free(f->mmio);
    gw_vdpa_sim_registry_free(f->reg);
    gw_test_mem_free(f->tm);
    g_mutex_clear(&f->lock);
    g_assert_cmpint(f->rec.routes, ==, 0);
    if (f->disk) {
        g_unlink(f->disk);
    }
    g_free(f->disk);
}

static unsigned
find_cap(Fx *f, uint8_t id)
{
    for (unsigned off = cfg_read(f, 0x34, 1); off;
         off = cfg_read(f, off + 1, 1)) {
        if (cfg_read(f, off, 1) == id) {
            return off;
        }
    }
    g_assert_not_reached();
}

/* What a guest driver does before DRIVER_OK, with queue 0 on f->vr. */
static void
driver_setup(Fx *f, uint16_t qsize)
{
    uint64_t c = f->bar0;

    mmio_write(f, c + 0x14, 1, 0);
    mmio_write(f, c + 0x14, 1, 1 | 2);
    mmio_write(f, c + 0x08, 4, 1);
    mmio_write(f, c + 0x0c, 4, f->features_hi ? f->features_hi : 1);
    mmio_write(f, c + 0x08, 4, 0);
    mmio_write(f, c + 0x0c, 4, 0);
    mmio_write(f, c + 0x14, 1, 1 | 2 | 8);
    g_assert_cmpuint(mmio_read(f, c + 0x14, 1) & 8, ==, 8);
    mmio_write(f, f->bar1 + 0, 4, 0xfee00000); /* MSI-X vector 0 */
    mmio_write(f, f->bar1 + 8, 4, 0x4030);
    mmio_write(f, f->bar1 + 12, 4, 0);
    cfg_write(f, find_cap(f, 0x11) + 3, 1, 0x80);
    if (!f->vr) {
        f->vr = gw_test_vring_new(f->tm, 0, qsize);
    }
    mmio_write(f, c + 0x16, 2, 0);
    mmio_write(f, c + 0x18, 2, qsize);
    mmio_write(f, c + 0x1a, 2, 0);
    mmio_write(f, c + 0x20, 8, f->vr->desc_iova);
    mmio_write(f, c + 0x28, 8, f->vr->avail_iova);
    mmio_write(f, c + 0x30, 8, f->vr->used_iova);
    mmio_write(f, c + 0x1c, 2, 1);
}

/* What a guest driver does up to DRIVER_OK, with queue 0 on f->vr. */
static void
driver_start(Fx *f, uint16_t qsize)
{
    driver_setup(f, qsize);
    mmio_write(f, f->bar0 + 0x14, 1, 1 | 2 | 8 | 4);
}

/* One blk request through the ring, kicked by a notify write. */
static uint8_t
blk_request(Fx *f, uint32_t type, uint64_t sector, uint8_t *data, uint32_t len)
{
    uint64_t hdr_iova, data_iova, st_iova;
    struct virtio_blk_outhdr *hdr =
        gw_test_mem_alloc(f->tm, sizeof(*hdr), 16, &hdr_iova);
    uint8_t *buf = gw_test_mem_alloc(f->tm, len, 512, &data_iova);
    uint8_t *st = gw_test_mem_alloc(f->tm, 1, 1, &st_iova);
    bool in = type == VIRTIO_BLK_T_IN;
    GwTestBuf bufs[3] = {{hdr_iova, sizeof(*hdr), false},
                         {data_iova, len, in},
                         {st_iova, 1, true}};
    uint16_t head, id;
    uint32_t used_len;

    hdr->type = type;
    hdr->sector = sector;
    *st = 0xff;
    if (!in) {
        memcpy(buf, data, len);
    }
    g_assert_true(gw_test_vring_add(f->vr, bufs, 3, &head));
    if (f->kick_via_cfg) {
        window_write(f, f->kick_via_cfg, 0x3000, 2, 0);
    } else {
        mmio_write(f, f->bar0 + 0x3000, 2, 0); /* notify queue 0 */
    }
    /* The device's completion raises the guest's interrupt: the irqfd
     * (gw_test_wait_fd consumes the event). */
    g_assert_true(gw_test_wait_fd(f->rec.irqfd_fd, 5000));
    g_assert_true(gw_test_vring_get_used(f->vr, &id, &used_len));
    g_assert_cmpuint(id, ==, head);
    if (in) {
        memcpy(data, buf, len);
    }
    return *st;
}

static void
test_blk_through_virtio_pci(void)
{
    Fx f = {0};
    uint8_t out[4096], in[4096], disk[4096];
    g_autoptr(GError) err = NULL;
    g_autofree char *opts = NULL;
    uint64_t capacity;
    int fd;

    f.disk = g_build_filename(g_get_tmp_dir(), "godwit-vdpadev-disk.img", NULL);
    g_unlink(f.disk);
    opts = g_strdup_printf("vdpasim_blk,capacity=1M,backing=%s", f.disk);
    g_assert_nonnull(fx_device(&f, opts, "", &err));
    g_assert_no_error(err);
    /* What the guest sees: virtio-blk by the modern ids, our capacity. */
    g_assert_cmphex(cfg_read(&f, 0, 4), ==, 0x10421af4);
    capacity = mmio_read(&f, f.bar0 + 0x2000, 8);
    g_assert_cmpuint(capacity, ==, 2048);
    g_assert_cmpuint(mmio_read(&f, f.bar0 + 0x12, 2), ==, 1);
    driver_start(&f, 64);
    g_assert_cmpuint(gw_vdpa_device_status(f.dev) & 4, ==, 4); /* DRIVER_OK */
    g_assert_cmpint(f.rec.ioeventfds, ==, 1);
    g_assert_cmpint(f.rec.irqfds, ==, 1);
    for (unsigned i = 0; i < sizeof(out); i++) {
        out[i] = (uint8_t)(i * 13 + 5);
    }
    g_assert_cmpuint(blk_request(&f, VIRTIO_BLK_T_OUT, 8, out, sizeof(out)), ==,
                     VIRTIO_BLK_S_OK);
    memset(in, 0, sizeof(in));
    g_assert_cmpuint(blk_request(&f, VIRTIO_BLK_T_IN, 8, in, sizeof(in)), ==,
                     VIRTIO_BLK_S_OK);
    g_assert_cmpmem(in, sizeof(in), out, sizeof(out));
    /* Past the end: the device's error, not a crash. */
    g_assert_cmpuint(blk_request(&f, VIRTIO_BLK_T_IN, 2047, in, 1024), ==,
                     VIRTIO_BLK_S_IOERR);
    /* And the data is in the backing file, where a second host sees it. */
    fd = open(f.disk, O_RDONLY);
    g_assert_cmpint(pread(fd, disk, sizeof(disk), 8 * 512), ==, sizeof(disk));
    close(fd);
    g_assert_cmpmem(disk, sizeof(disk), out, sizeof(out));
    fx_free(&f);
}

static void
test_guest_reset_and_restart(void)
{
    Fx f = {0};
    uint8_t out[512] = {1, 2, 3}, in[512];
    g_autoptr(GError) err = NULL;

    g_assert_nonnull(fx_device(&f, "vdpasim_blk,capacity=1M", "", &err));
    driver_start(&f, 32);
    mmio_write(&f, f.bar0 + 0x14, 1, 0); /* guest resets the device */
    g_assert_cmpuint(gw_vdpa_device_status(f.dev), ==, 0);
    g_assert_cmpint(f.rec.irqfds, ==, 0);
    g_clear_pointer(&f.vr, gw_test_vring_free);
    driver_start(&f, 32);
    g_assert_cmpuint(blk_request(&f, VIRTIO_BLK_T_OUT, 0, out, 512), ==, 0);
    g_assert_cmpuint(blk_request(&f, VIRTIO_BLK_T_IN, 0, in, 512), ==, 0);
    g_assert_cmpmem(in, 512, out, 512);
    fx_free(&f);
}

static void
test_system_reset_to_power_on(void)
{
    Fx f = {0};
    uint8_t out[512] = {9, 8, 7}, in[512];
    g_autoptr(GError) err = NULL;
    unsigned msix;
    uint64_t v;

    g_assert_nonnull(fx_device(&f, "vdpasim_blk,capacity=1M", "", &err));
    driver_start(&f, 32);
    msix = find_cap(&f, 0x11);
    g_assert_cmpuint(gw_vdpa_device_status(f.dev) & 4, ==, 4);
    g_mutex_lock(&f.lock);
    gw_vdpa_device_reset(f.dev); /* what system_reset does per device */
    g_mutex_unlock(&f.lock);
    /* The device stopped: no rings, no interrupts, nothing decoded. */
    g_assert_cmpuint(gw_vdpa_device_status(f.dev), ==, 0);
    g_assert_cmpint(f.rec.irqfds, ==, 0);
    g_assert_cmpint(f.rec.ioeventfds, ==, 0);
    g_assert_cmphex(cfg_read(&f, msix + 3, 1) & 0x80, ==, 0);
    g_assert_cmphex(cfg_read(&f, 0x04, 2), ==, 0);
    g_assert_false(gw_bus_read(f.mmio, f.bar0 + 0x14, 1, &v));
    g_assert_cmphex(cfg_read(&f, 0x10, 4) & ~0xfu, ==, f.bar0);
    /* And a rebooted guest brings it up again. */
    cfg_write(&f, 0x04, 2, PCI_COMMAND_MEMORY);
    g_assert_cmpuint(mmio_read(&f, f.bar0 + 0x14, 1), ==, 0);
    g_clear_pointer(&f.vr, gw_test_vring_free);
    driver_start(&f, 32);
    g_assert_cmpuint(blk_request(&f, VIRTIO_BLK_T_OUT, 4, out, 512), ==, 0);
    g_assert_cmpuint(blk_request(&f, VIRTIO_BLK_T_IN, 4, in, 512), ==, 0);
    g_assert_cmpmem(in, 512, out, 512);
    fx_free(&f);
}

/* The vendor capability (0x09) of virtio type `type`. */
static unsigned
find_virtio_cap(Fx *f, uint8_t type)
{
    for (unsigned off = cfg_read(f, 0x34, 1); off;
         off = cfg_read(f, off + 1, 1)) {
        if (cfg_read(f, off, 1) == 0x09 && cfg_read(f, off + 3, 1) == type) {
            return off;
        }
    }
    g_assert_not_reached();
}

static void
test_pci_cfg_capability(void)
{
    Fx f = {0};
    g_autoptr(GError) err = NULL;
    uint8_t out[512] = {4, 5, 6}, in[512];
    unsigned cap;

    g_assert_nonnull(fx_device(&f, "vdpasim_blk,capacity=1M", "", &err));
    cap = find_virtio_cap(&f, 5);
    g_assert_cmpuint(cfg_read(&f, cap + 2, 1), ==, 20); /* cap_len */
    /* With memory decoding off, as firmware may have it. */
    cfg_write(&f, 0x04, 2, 0);
    g_assert_cmpuint(window_read(&f, cap, 0x12, 2), ==, 1); /* num_queues */
    g_assert_cmpuint(window_read(&f, cap, 0x2000, 4), ==, 2048); /* capacity */
    g_assert_cmpuint(window_read(&f, cap, 0x2000, 1), ==, 0); /* its low byte */
    g_assert_cmpuint(window_read(&f, cap, 0x2001, 1), ==, 8);
    window_write(&f, cap, 0x14, 1, 1 | 2); /* status */
    g_assert_cmpuint(window_read(&f, cap, 0x14, 1), ==, 3);
    /* Windows the spec does not allow go nowhere and read 0. */
    const uint32_t bad[][3] = {
        {1, 0x14, 1},      /* another BAR */
        {0, 0x14, 3},      /* length 3 */
        {0, 0x2001, 2},    /* unaligned (capacity's bytes 1-2 are 8) */
        {0, 0x4000, 4},    /* past the BAR */
        {0, 0xfffffffc, 4} /* wrapping */
    };
    for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
        cfg_window(&f, cap, (uint8_t)bad[i][0], bad[i][1], bad[i][2]);
        g_assert_cmpuint(cfg_read(&f, cap + 16, 4), ==, 0);
        cfg_write(&f, cap + 16, 4, 0);
        g_assert_cmpuint(window_read(&f, cap, 0x14, 1), ==, 3);
    }
    /* The capability's own header is not writable. */
    cfg_write(&f, cap + 3, 1, 1);
    g_assert_cmpuint(cfg_read(&f, cap + 3, 1), ==, 5);
    /* Notifications through the window reach the device too. */
    cfg_write(&f, 0x04, 2, PCI_COMMAND_MEMORY);
    driver_start(&f, 32);
    f.kick_via_cfg = cap;
    g_assert_cmpuint(blk_request(&f, VIRTIO_BLK_T_OUT, 3, out, 512), ==, 0);
    g_assert_cmpuint(blk_request(&f, VIRTIO_BLK_T_IN, 3, in, 512), ==, 0);
    g_assert_cmpmem(in, 512, out, 512);
    fx_free(&f);
}

static gboolean
stop_waiting(gpointer data)
{
    *(bool *)data = true;
    return G_SOURCE_REMOVE;
}

static void
test_backend_failure_reaches_guest(void)
{
    Fx f = {0};
    g_autoptr(GError) err = NULL;
    bool timed_out = false;
    guint timer;

    g_assert_nonnull(fx_device(&f, "vdpasim_blk,capacity=1M", "", &err));
    driver_start(&f, 32);
    mmio_write(&f, f.bar0 + 0x10, 2, 0); /* config changes on vector 0 */
    g_assert_true(gw_vdpa_sim_inject_failure(
        f.reg, "d0", GW_VDPA_SIM_FAIL_NEEDS_RESET, &err));
    g_test_expect_message("godwit-vdpa", G_LOG_LEVEL_WARNING,
                          "*needs a reset*");
    timer = g_timeout_add(5000, stop_waiting, &timed_out);
    while (!timed_out && !(mmio_read(&f, f.bar0 + 0x14, 1) & 0x40)) {
        g_main_context_iteration(NULL, TRUE);
    }
    g_test_assert_expected_messages();
    g_assert_false(timed_out);
    g_source_remove(timer);
    g_assert_cmpint(f.rec.msis, >=, 1);
    g_assert_cmphex(f.rec.last_msi_data, ==, 0x4030);
    fx_free(&f);
}

static void
test_rejects_too_many_queues(void)
{
    Fx f = {0};
    g_autoptr(GError) err = NULL;

    g_assert_null(fx_device(&f, "vdpasim_blk", ",num_queues=2", &err));
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, "num_queues=2, but"));
    g_assert_nonnull(strstr(err->message, "has 1 virtqueues"));
    fx_free(&f);
}

static void
test_net_without_cvq_hides_ctrl_features(void)
{
    Fx f = {0};
    g_autoptr(GError) err = NULL;
    uint32_t hi, lo;

    g_assert_nonnull(fx_device(&f, "vdpasim_net", ",num_queues=2", &err));
    g_assert_cmphex(cfg_read(&f, 0, 4), ==, 0x10411af4);
    g_assert_cmphex(cfg_read(&f, 0x08, 4) >> 8, ==, 0x020000);
    mmio_write(&f, f.bar0 + 0x00, 4, 0);
    lo = (uint32_t)mmio_read(&f, f.bar0 + 0x04, 4);
    mmio_write(&f, f.bar0 + 0x00, 4, 1);
    hi = (uint32_t)mmio_read(&f, f.bar0 + 0x04, 4);
    g_assert_cmphex(lo & (1u << 17), ==, 0);      /* no CTRL_VQ */
    g_assert_cmphex(lo & (1u << 5), ==, 1u << 5); /* MAC kept */
    g_assert_cmphex(hi & 1, ==, 1);               /* VERSION_1 */
    fx_free(&f);
}

/* FEATURES_OK as the driver asks for it: whether the device took it. */
static bool
features_ok(Fx *f, uint32_t hi)
{
    mmio_write(f, f->bar0 + 0x14, 1, 0);
    mmio_write(f, f->bar0 + 0x14, 1, 1 | 2);
    mmio_write(f, f->bar0 + 0x08, 4, 1);
    mmio_write(f, f->bar0 + 0x0c, 4, hi);
    mmio_write(f, f->bar0 + 0x14, 1, 1 | 2 | 8);
    return mmio_read(f, f->bar0 + 0x14, 1) & 8;
}

/*
 * iommu=on without an IOMMU in front (none attached): the device is
 * made, its driver must accept ACCESS_PLATFORM (bit 33), and nothing of
 * guest RAM is in its IOTLB: the first request fails inside the device,
 * which asks for a reset, and the request's status byte stays unwritten.
 */
static void
test_iommu_on_maps_nothing(void)
{
    Fx f = {.features_hi = 1 | 2};
    g_autoptr(GError) err = NULL;
    uint64_t hdr_iova, st_iova;
    struct virtio_blk_outhdr *hdr;
    uint8_t *st;
    bool timed_out = false;
    guint timer;
    uint16_t head;

    g_assert_nonnull(
        fx_device(&f, "vdpasim_blk,capacity=1M", ",iommu=on", &err));
    g_assert_no_error(err);
    g_assert_cmpuint(gw_vdpa_device_endpoint(f.dev), ==, UINT32_MAX);
    g_assert_false(features_ok(&f, 1));    /* VERSION_1 alone: refused */
    g_assert_true(features_ok(&f, 1 | 2)); /* with ACCESS_PLATFORM */
    driver_start(&f, 32);
    mmio_write(&f, f.bar0 + 0x10, 2, 0); /* config changes on vector 0 */
    hdr = gw_test_mem_alloc(f.tm, sizeof(*hdr), 16, &hdr_iova);
    st = gw_test_mem_alloc(f.tm, 1, 1, &st_iova);
    hdr->type = VIRTIO_BLK_T_GET_ID;
    *st = 0xa5;
    g_assert_true(gw_test_vring_add(
        f.vr,
        (GwTestBuf[]){{hdr_iova, sizeof(*hdr), false}, {st_iova, 1, true}}, 2,
        &head));
    /* The simulator finds the ring unmapped, then the model hears it. */
    g_test_expect_message("godwit-vdpa", G_LOG_LEVEL_MESSAGE,
                          "*unmapped ring*");
    g_test_expect_message("godwit-vdpa", G_LOG_LEVEL_WARNING,
                          "*needs a reset*");
    mmio_write(&f, f.bar0 + 0x3000, 2, 0);
    timer = g_timeout_add(5000, stop_waiting, &timed_out);
    while (!timed_out && !(mmio_read(&f, f.bar0 + 0x14, 1) & 0x40)) {
        g_main_context_iteration(NULL, TRUE);
    }
    g_test_assert_expected_messages();
    g_assert_false(timed_out);
    g_source_remove(timer);
    g_assert_cmphex(*st, ==, 0xa5);
    /* Behind no IOMMU, nothing translates its IOVAs: no shadow rings. */
    g_clear_error(&err);
    g_assert_false(gw_vdpa_device_svq_start(f.dev, &err));
    g_assert_nonnull(strstr(err->message, "behind no IOMMU"));
    fx_free(&f);
}

/*
 * A device set up by its driver but not yet started migrates: the
 * destination's device, loaded, starts on DRIVER_OK with the loaded
 * queue and moves data.  Its vring is in the destination's memory at
 * the address the source's driver gave.
 */
static void
test_migrates_before_driver_ok(void)
{
    Fx src = {0}, dst = {.sim_name = "d1"};
    uint8_t out[512] = {7, 8, 9}, in[512];
    g_autoptr(GError) err = NULL;
    g_autoptr(GwMigBuf) buf = gw_mig_buf_new();
    GwMigCursor c;

    g_assert_nonnull(fx_device(&src, "vdpasim_blk,capacity=1M", "", &err));
    g_assert_nonnull(fx_device(&dst, "vdpasim_blk,capacity=1M", "", &err));
    dst.vr = gw_test_vring_new(dst.tm, 0, 32);
    src.vr = gw_test_vring_new(src.tm, 0, 32);
    g_assert_cmphex(src.vr->desc_iova, ==, dst.vr->desc_iova);
    driver_setup(&src, 32);
    g_assert_false(gw_vdpa_device_is_running(src.dev));
    g_mutex_lock(&src.lock);
    g_assert_true(gw_vdpa_device_save(src.dev, buf, &err));
    g_mutex_unlock(&src.lock);
    g_assert_no_error(err);
    gw_mig_cursor_init(&c, gw_mig_buf_data(buf), gw_mig_buf_len(buf));
    g_mutex_lock(&dst.lock);
    g_assert_true(gw_vdpa_device_load(dst.dev, &c, &err));
    g_mutex_unlock(&dst.lock);
    g_assert_no_error(err);
    g_assert_true(gw_mig_cursor_finish(&c, NULL));
    g_assert_cmpuint(mmio_read(&dst, dst.bar0 + 0x14, 1), ==, 1 | 2 | 8);
    mmio_write(&dst, dst.bar0 + 0x14, 1, 1 | 2 | 8 | 4);
    g_assert_true(gw_vdpa_device_is_running(dst.dev));
    g_assert_cmpuint(blk_request(&dst, VIRTIO_BLK_T_OUT, 0, out, 512), ==, 0);
    g_assert_cmpuint(blk_request(&dst, VIRTIO_BLK_T_IN, 0, in, 512), ==, 0);
    g_assert_cmpmem(in, 512, out, 512);
    fx_free(&src);
    fx_free(&dst);
}

static bool
dev_suspend(Fx *f, bool suspend, GError **errp)
{
    bool ok;

    g_mutex_lock(&f->lock);
    ok = suspend ? gw_vdpa_device_suspend(f->dev, errp)
                 : gw_vdpa_device_resume(f->dev, errp);
    g_mutex_unlock(&f->lock);
    return ok;
}

/* A started device can migrate (on shadow virtqueues), but unsuspended
 * it cannot be saved: its ring indices are not stable. */
static void
test_running_device_refused(void)
{
    Fx src = {0};
    g_autoptr(GError) err = NULL;
    g_autoptr(GwMigBuf) buf = gw_mig_buf_new();
    g_autofree char *opts = NULL;
    char *why;

    src.disk =
        g_build_filename(g_get_tmp_dir(), "godwit-vdpadev-run.img", NULL);
    opts = g_strdup_printf("vdpasim_blk,capacity=1M,backing=%s", src.disk);
    g_assert_nonnull(fx_device(&src, opts, "", &err));
    why = gw_vdpa_device_migration_blocker(src.dev);
    g_assert_null(why);
    driver_start(&src, 32);
    g_assert_true(gw_vdpa_device_is_running(src.dev));
    why = gw_vdpa_device_migration_blocker(src.dev);
    g_assert_null(why);
    g_mutex_lock(&src.lock);
    g_assert_false(gw_vdpa_device_save(src.dev, buf, &err));
    g_mutex_unlock(&src.lock);
    g_assert_error(err, GW_ERROR, GW_ERROR_BUSY);
    g_assert_cmpstr(err->message, ==,
                    "vdpa disk0: the device runs and is not suspended: its "
                    "rings' state is not stable");
    fx_free(&src);
}

/* Posts a 512-byte write of `fill` to `sector` (no notify). */
static uint16_t
post_write(Fx *f, uint64_t sector, uint8_t fill, uint64_t *st_iova)
{
    uint64_t hdr_iova, data_iova;
    struct virtio_blk_outhdr *hdr =
        gw_test_mem_alloc(f->tm, sizeof(*hdr), 16, &hdr_iova);
    uint8_t *buf = gw_test_mem_alloc(f->tm, 512, 512, &data_iova);
    uint8_t *st = gw_test_mem_alloc(f->tm, 1, 1, st_iova);
    GwTestBuf bufs[3] = {{hdr_iova, sizeof(*hdr), false},
                         {data_iova, 512, false},
                         {*st_iova, 1, true}};
    uint16_t head;

    hdr->type = VIRTIO_BLK_T_OUT;
    hdr->sector = sector;
    memset(buf, fill, 512);
    *st = 0xff;
    g_assert_true(gw_test_vring_add(f->vr, bufs, 3, &head));
    return head;
}

static void
notify(Fx *f)
{
    mmio_write(f, f->bar0 + 0x3000, 2, 0);
}

static void
save_load(Fx *src, Fx *dst, GError **errp, bool *loaded)
{
    g_autoptr(GwMigBuf) buf = gw_mig_buf_new();
    GwMigCursor c;

    g_mutex_lock(&src->lock);
    g_assert_true(gw_vdpa_device_save(src->dev, buf, NULL));
    g_mutex_unlock(&src->lock);
    /* What migration's RAM pages carry, and the test driver's own
     * state beside its ring. */
    memcpy(dst->tm->base, src->tm->base, RAM_SIZE);
    dst->tm->used = src->tm->used;
    dst->vr->free_head = src->vr->free_head;
    dst->vr->num_free = src->vr->num_free;
    dst->vr->avail_idx = src->vr->avail_idx;
    dst->vr->last_used = src->vr->last_used;
    gw_mig_cursor_init(&c, gw_mig_buf_data(buf), gw_mig_buf_len(buf));
    g_mutex_lock(&dst->lock);
    *loaded = gw_vdpa_device_load(dst->dev, &c, errp);
    g_mutex_unlock(&dst->lock);
}

#define MOVED 6

/*
 * A running, suspended device moves to a fresh device on a fresh
 * simulator sharing its backing file, and goes on with the same ring:
 * requests taken on the source, and those the source held while
 * suspended, each complete exactly once; the data is in the file; the
 * destination's vring base is the source's.
 */
static void
test_running_device_moves(void)
{
    Fx src = {0}, dst = {.sim_name = "d1"};
    g_autoptr(GError) err = NULL;
    g_autofree char *file =
        g_build_filename(g_get_tmp_dir(), "godwit-vdpadev-move.img", NULL);
    g_autofree char *opts =
        g_strdup_printf("vdpasim_blk,capacity=1M,backing=%s", file);
    uint64_t st[MOVED];
    uint16_t head[MOVED], id;
    uint32_t sbase = 0, dbase = 0;
    unsigned done = 0;
    bool seen[MOVED] = {false}, loaded;
    uint8_t disk[512];
    int fd;

    g_unlink(file);
    src.disk = g_strdup(file);
    g_assert_nonnull(fx_device(&src, opts, "", &err));
    g_assert_nonnull(fx_device(&dst, opts, "", &err));
    dst.vr = gw_test_vring_new(dst.tm, 0, 32);
    driver_start(&src, 32);
    for (unsigned i = 0; i < MOVED / 2; i++) {
        head[i] = post_write(&src, 10 + i, (uint8_t)(0xa0 + i), &st[i]);
    }
    notify(&src); /* these may complete before SUSPEND, or not */
    g_assert_true(dev_suspend(&src, true, &err));
    for (unsigned i = MOVED / 2; i < MOVED; i++) {
        head[i] = post_write(&src, 10 + i, (uint8_t)(0xa0 + i), &st[i]);
    }
    notify(&src); /* held: remembered by the source's device only */
    g_assert_true(gw_vdpa_device_get_vring_base(src.dev, 0, &sbase, &err));
    g_assert_cmpuint(sbase, <=, MOVED / 2);
    save_load(&src, &dst, &err, &loaded);
    g_assert_no_error(err);
    g_assert_true(loaded);

    /* Restored where the source stopped, suspended until the VM runs. */
    g_assert_true(gw_vdpa_device_is_running(dst.dev));
    g_assert_true(gw_vdpa_device_is_suspended(dst.dev));
    g_assert_true(gw_vdpa_device_get_vring_base(dst.dev, 0, &dbase, &err));
    g_assert_cmpuint(dbase, ==, sbase);
    g_assert_cmpuint(gw_test_vring_used_idx(dst.vr), ==, sbase);
    g_assert_cmpuint(dst.rec.irqfds, ==, 1);
    g_assert_true(dev_suspend(&dst, false, &err));
    while (done < MOVED) {
        if (!gw_test_vring_get_used(dst.vr, &id, NULL)) {
            g_assert_true(gw_test_wait_fd(dst.rec.irqfd_fd, 5000));
            continue;
        }
        for (unsigned i = 0; i < MOVED; i++) {
            if (id == head[i]) {
                g_assert_false(seen[i]);
                seen[i] = true;
                done++;
            }
        }
    }
    gw_test_wait_fd(dst.rec.irqfd_fd, 200);
    g_assert_false(gw_test_vring_get_used(dst.vr, &id, NULL));
    g_assert_cmpuint(gw_test_vring_used_idx(dst.vr), ==, MOVED);
    g_assert_true(gw_vdpa_device_get_vring_base(dst.dev, 0, &dbase, &err));
    g_assert_cmpuint(dbase, ==, MOVED);
    /* The source's device did nothing more with its copy. */
    g_assert_cmpuint(gw_test_vring_used_idx(src.vr), ==, sbase);
    fd = open(file, O_RDONLY);
    for (unsigned i = 0; i < MOVED; i++) {
        uint8_t want[512];
        g_assert_cmpuint(*(uint8_t *)gw_test_mem_ptr(dst.tm, st[i]), ==,
                         VIRTIO_BLK_S_OK);
        memset(want, 0xa0 + i, sizeof(want));
        g_assert_cmpint(pread(fd, disk, 512, (10 + i) * 512), ==, 512);
        g_assert_cmpmem(disk, 512, want, 512);
    }
    close(fd);
    /* And the guest goes on on the destination. */
    g_assert_cmpuint(blk_request(&dst, VIRTIO_BLK_T_IN, 10, disk, 512), ==,
                     VIRTIO_BLK_S_OK);
    g_assert_cmpuint(disk[0], ==, 0xa0);
    fx_free(&src);
    fx_free(&dst);
}

/* A destination whose RAM says another used index refuses to start the
 * device on it (the "inconsistent with host index" trap). */
static void
test_restore_checks_used_index(void)
{
    Fx src = {0}, dst = {.sim_name = "d1"};
    g_autoptr(GError) err = NULL;
    g_autoptr(GwMigBuf) buf = gw_mig_buf_new();
    uint8_t out[512] = {1};
    GwMigCursor c;

    g_assert_nonnull(fx_device(&src, "vdpasim_blk,capacity=1M", "", &err));
    g_assert_nonnull(fx_device(&dst, "vdpasim_blk,capacity=1M", "", &err));
    driver_start(&src, 32);
    g_assert_cmpuint(blk_request(&src, VIRTIO_BLK_T_OUT, 0, out, 512), ==, 0);
    g_assert_true(dev_suspend(&src, true, &err));
    g_mutex_lock(&src.lock);
    g_assert_true(gw_vdpa_device_save(src.dev, buf, &err));
    g_mutex_unlock(&src.lock);
    memcpy(dst.tm->base, src.tm->base, RAM_SIZE);
    memset(gw_test_mem_ptr(dst.tm, src.vr->used_iova + 2), 0, 2);
    gw_mig_cursor_init(&c, gw_mig_buf_data(buf), gw_mig_buf_len(buf));
    g_mutex_lock(&dst.lock);
    g_assert_false(gw_vdpa_device_load(dst.dev, &c, &err));
    g_mutex_unlock(&dst.lock);
    g_assert_nonnull(strstr(err->message, "vdpa disk0 queue 0: the used index "
                                          "in guest RAM is 0, the source's "
                                          "device stopped at 1"));
    g_assert_cmpuint(gw_vdpa_device_status(dst.dev), ==, 0);
    fx_free(&src);
    fx_free(&dst);
}

/*
 * The relay seam: the backend signals and waits on eventfds of ours
 * instead of the guest's; put back, the guest gets its interrupts
 * again, including one for a completion the "relay" kept.
 */
static void
test_queue_fds_swap_and_back(void)
{
    Fx f = {0};
    g_autoptr(GError) err = NULL;
    gw_autofd kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    gw_autofd call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    uint64_t st;
    uint8_t *stp, data[512];
    uint16_t id;

    g_assert_nonnull(fx_device(&f, "vdpasim_blk,capacity=1M", "", &err));
    driver_start(&f, 32);
    g_mutex_lock(&f.lock);
    g_assert_false(gw_vdpa_device_set_queue_fds(f.dev, 0, kick, call, &err));
    g_mutex_unlock(&f.lock);
    g_assert_error(err, GW_ERROR, GW_ERROR_BUSY);
    g_clear_error(&err);
    g_assert_true(dev_suspend(&f, true, &err));
    g_mutex_lock(&f.lock);
    g_assert_false(gw_vdpa_device_set_queue_fds(f.dev, 1, kick, call, &err));
    g_clear_error(&err);
    g_assert_true(gw_vdpa_device_set_queue_fds(f.dev, 0, kick, call, &err));
    g_mutex_unlock(&f.lock);
    g_assert_no_error(err);

    /* A request made while suspended: the device may take it up when it
     * resumes (the simulator looks at its rings then) or at our kick; it
     * completes once either way, signalling us, not the guest. */
    post_write(&f, 1, 0x5a, &st);
    stp = gw_test_mem_ptr(f.tm, st);
    notify(&f);
    g_assert_true(dev_suspend(&f, false, &err));
    if (!gw_test_wait_fd(call, 1000)) {
        eventfd_write(kick, 1);
        g_assert_true(gw_test_wait_fd(call, 5000));
    }
    g_assert_cmpuint(*stp, ==, VIRTIO_BLK_S_OK);
    g_assert_false(gw_test_wait_fd(f.rec.irqfd_fd, 100));

    /* The device idle: the guest's notify no longer reaches it, ours
     * does. */
    eventfd_read(call, &(eventfd_t){0});
    g_assert_true(gw_test_vring_get_used(f.vr, &id, NULL));
    post_write(&f, 1, 0x5a, &st);
    stp = gw_test_mem_ptr(f.tm, st);
    notify(&f);
    g_assert_false(gw_test_wait_fd(call, 300));
    g_assert_cmpuint(*stp, ==, 0xff);
    eventfd_write(kick, 1);
    g_assert_true(gw_test_wait_fd(call, 5000));
    g_assert_cmpuint(*stp, ==, VIRTIO_BLK_S_OK);
    g_assert_false(gw_test_wait_fd(f.rec.irqfd_fd, 100));

    /* Back: the kept completion is signalled to the guest, and new
     * requests interrupt it as before. */
    g_assert_true(dev_suspend(&f, true, &err));
    g_mutex_lock(&f.lock);
    g_assert_true(gw_vdpa_device_restore_queue_fds(f.dev, 0, &err));
    g_mutex_unlock(&f.lock);
    g_assert_no_error(err);
    g_assert_true(dev_suspend(&f, false, &err));
    g_assert_true(gw_test_wait_fd(f.rec.irqfd_fd, 5000));
    g_assert_true(gw_test_vring_get_used(f.vr, &id, NULL));
    g_assert_cmpuint(blk_request(&f, VIRTIO_BLK_T_IN, 1, data, 512), ==,
                     VIRTIO_BLK_S_OK);
    g_assert_cmpuint(data[0], ==, 0x5a);
    g_assert_false(gw_test_wait_fd(call, 100));
    fx_free(&f);
}

/* Posts one flush on f->vr and notifies queue 0; returns its head. */
static uint16_t
post_flush(Fx *f, uint8_t **st)
{
    uint64_t hdr_iova, st_iova;
    struct virtio_blk_outhdr *hdr =
        gw_test_mem_alloc(f->tm, sizeof(*hdr), 16, &hdr_iova);
    GwTestBuf bufs[2] = {{hdr_iova, sizeof(*hdr), false}, {0, 1, true}};
    uint16_t head;

    *st = gw_test_mem_alloc(f->tm, 1, 1, &st_iova);
    **st = 0xff;
    bufs[1].iova = st_iova;
    hdr->type = VIRTIO_BLK_T_FLUSH;
    g_assert_true(gw_test_vring_add(f->vr, bufs, 2, &head));
    mmio_write(f, f->bar0 + 0x3000, 2, 0);
    return head;
}

/* Nothing completes while suspended; everything once after resume. */
static void
must_hold_until_resume(Fx *f)
{
    g_autoptr(GError) err = NULL;
    uint8_t *st[3];
    uint16_t head[3], id;
    bool seen[3] = {false};

    for (unsigned i = 0; i < 3; i++) {
        head[i] = post_flush(f, &st[i]);
    }
    g_assert_false(gw_test_wait_fd(f->rec.irqfd_fd, 300));
    g_assert_cmpuint(gw_test_vring_used_idx(f->vr), ==, 0);
    g_assert_cmpuint(*st[0], ==, 0xff);
    g_assert_true(dev_suspend(f, false, &err));
    g_assert_no_error(err);
    g_assert_false(gw_vdpa_device_is_suspended(f->dev));
    for (unsigned n = 0; n < 3;) {
        if (!gw_test_vring_get_used(f->vr, &id, NULL)) {
            g_assert_true(gw_test_wait_fd(f->rec.irqfd_fd, 5000));
            continue;
        }
        for (unsigned i = 0; i < 3; i++) {
            if (head[i] == id) {
                g_assert_false(seen[i]);
                seen[i] = true;
                n++;
            }
        }
    }
    /* Nothing more comes (a late signal may: completions, not calls,
     * are counted). */
    gw_test_wait_fd(f->rec.irqfd_fd, 200);
    g_assert_false(gw_test_vring_get_used(f->vr, &id, NULL));
    g_assert_cmpuint(gw_test_vring_used_idx(f->vr), ==, 3);
    for (unsigned i = 0; i < 3; i++) {
        g_assert_cmpuint(*st[i], ==, VIRTIO_BLK_S_OK);
    }
}

static void
test_suspend_holds_requests(void)
{
    Fx f = {0};
    g_autoptr(GError) err = NULL;

    g_assert_nonnull(fx_device(&f, "vdpasim_blk,capacity=1M", "", &err));
    g_assert_true(gw_vdpa_device_can_suspend(f.dev));
    driver_start(&f, 32);
    g_assert_true(dev_suspend(&f, true, &err));
    g_assert_no_error(err);
    g_assert_true(gw_vdpa_device_is_suspended(f.dev));
    must_hold_until_resume(&f);
    fx_free(&f);
}

/* A driver that starts the device while the VM is paused (a qtest
 * "guest" can) does not get it running before the VM runs. */
static void
test_started_while_suspended(void)
{
    Fx f = {0};
    g_autoptr(GError) err = NULL;

    g_assert_nonnull(fx_device(&f, "vdpasim_blk,capacity=1M", "", &err));
    g_assert_true(dev_suspend(&f, true, &err));
    g_assert_false(gw_vdpa_device_is_suspended(f.dev)); /* nothing to do */
    driver_start(&f, 32);
    g_assert_true(gw_vdpa_device_is_suspended(f.dev));
    must_hold_until_resume(&f);
    /* A reset ends the suspension; a paused VM's next start suspends. */
    g_assert_true(dev_suspend(&f, true, &err));
    mmio_write(&f, f.bar0 + 0x14, 1, 0);
    g_assert_false(gw_vdpa_device_is_suspended(f.dev));
    g_assert_true(dev_suspend(&f, false, &err));
    fx_free(&f);
}

/*
 * The control-queue relay's ring must sit above every IOVA a guest can
 * map behind the IOMMU.  A NIC whose IOVA range does not reach there is
 * still made with iommu=on (its control queue then passed through, not
 * relayed); with iommu=off its ring fits below 2^39, above guest RAM.
 */
static void
test_net_narrow_iova_range(void)
{
    for (unsigned iommu = 0; iommu < 2; iommu++) {
        Fx f = {.narrow_iova = true};
        g_autoptr(GError) err = NULL;

        g_assert_nonnull(
            fx_device(&f, "vdpasim_net", iommu ? ",iommu=on" : "", &err));
        g_assert_no_error(err);
        g_assert_cmpuint(gw_vdpa_device_type(f.dev), ==, 1); /* net */
        fx_free(&f);
    }
}

static void
test_no_suspend_blocks_migration(void)
{
    Fx f = {.no_suspend = true};
    g_autoptr(GError) err = NULL;
    g_autofree char *why = NULL;
    uint8_t *st;

    g_assert_nonnull(fx_device(&f, "vdpasim_blk,capacity=1M", "", &err));
    g_assert_false(gw_vdpa_device_can_suspend(f.dev));
    why = gw_vdpa_device_migration_blocker(f.dev);
    g_assert_nonnull(why);
    g_assert_nonnull(strstr(why, "vDPA device disk0 cannot be suspended"));
    g_assert_nonnull(strstr(why, "VHOST_BACKEND_F_SUSPEND"));
    driver_start(&f, 32);
    g_assert_false(dev_suspend(&f, true, &err));
    g_assert_nonnull(strstr(err->message, "cannot be suspended"));
    /* It keeps running, as it must: the guest's I/O is not lost. */
    post_flush(&f, &st);
    g_assert_true(gw_test_wait_fd(f.rec.irqfd_fd, 5000));
    g_assert_cmpuint(*st, ==, VIRTIO_BLK_S_OK);
    g_assert_true(dev_suspend(&f, false, NULL));
    fx_free(&f);
}

/* A disk in the simulator's memory cannot follow its VM; nets can. */
static void
test_private_storage_blocks_migration(void)
{
    Fx blk = {0}, net = {.sim_name = "n0"};
    g_autoptr(GError) err = NULL;
    g_autofree char *why = NULL, *none = NULL;

    g_assert_nonnull(fx_device(&blk, "vdpasim_blk,capacity=1M", "", &err));
    why = gw_vdpa_device_migration_blocker(blk.dev);
    g_assert_cmpstr(why, ==,
                    "vDPA disk disk0 has no shared storage: create it with "
                    "backing=FILE");
    g_assert_nonnull(fx_device(&net, "vdpasim_net", "", &err));
    none = gw_vdpa_device_migration_blocker(net.dev);
    g_assert_null(none);
    fx_free(&blk);
    fx_free(&net);
}

int
main(int argc, char **argv)
{
    g_autofree char *dir = g_dir_make_tmp("godwit-vdpadev-XXXXXX", NULL);
    int ret;

    /* Before any thread exists: setenv is not thread-safe. */
    g_setenv("GODWIT_RUNTIME_DIR", dir, TRUE);
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vdpa/device/blk-data-path-through-virtio-pci",
                    test_blk_through_virtio_pci);
    g_test_add_func("/vdpa/device/pci-cfg-capability-reaches-bar0",
                    test_pci_cfg_capability);
    g_test_add_func("/vdpa/device/guest-reset-then-restart",
                    test_guest_reset_and_restart);
    g_test_add_func("/vdpa/device/system-reset-returns-to-power-on",
                    test_system_reset_to_power_on);
    g_test_add_func("/vdpa/device/backend-failure-sets-needs-reset",
                    test_backend_failure_reaches_guest);
    g_test_add_func("/vdpa/device/rejects-num-queues-above-device",
                    test_rejects_too_many_queues);
    g_test_add_func("/vdpa/device/net-narrow-iova-range-made-iommu-on-and-off",
                    test_net_narrow_iova_range);
    g_test_add_func("/vdpa/device/net-without-cvq-hides-ctrl-features",
                    test_net_without_cvq_hides_ctrl_features);
    g_test_add_func("/vdpa/device/iommu-on/maps-nothing-needs-access-platform",
                    test_iommu_on_maps_nothing);
    g_test_add_func("/vdpa/device/suspend-holds-requests-until-resume",
                    test_suspend_holds_requests);
    g_test_add_func("/vdpa/device/started-while-vm-paused-stays-suspended",
                    test_started_while_suspended);
    g_test_add_func("/vdpa/device/no-suspend-is-a-migration-blocker",
                    test_no_suspend_blocks_migration);
    g_test_add_func("/devstate/vdpa/migrates-before-driver-ok",
                    test_migrates_before_driver_ok);
    g_test_add_func("/devstate/vdpa/running-device-blocks-and-is-refused",
                    test_running_device_refused);
    g_test_add_func("/devstate/vdpa/disk-without-shared-storage-blocks",
                    test_private_storage_blocks_migration);
    g_test_add_func("/devstate/vdpa/suspended-running-device-moves",
                    test_running_device_moves);
    g_test_add_func("/devstate/vdpa/restore-checks-used-index",
                    test_restore_checks_used_index);
    g_test_add_func("/vdpa/device/queue-fds-swap-and-back",
                    test_queue_fds_swap_and_back);
    ret = g_test_run();
    g_rmdir(dir);
    return ret;
}
