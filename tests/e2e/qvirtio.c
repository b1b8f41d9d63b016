/*
 * The test-side virtio-pci driver over qtest.  See qvirtio.h.
 */
#include <sched.h>
#include <string.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>
#include <godwit/util.h>
#include "qvirtio.h"

#define SLOT_WINDOW(slot) (0xC0000000ull + (uint64_t)(slot) * (16ull << 20))
#define RING_AREA(slot)   (0x200000ull + (uint64_t)(slot)*0x20000)
#define QSIZE             16
#define SECTOR            512
#define RUN_SECTORS       8
#define POLL_US           200
#define BAR_STEP          (1ull << 20) /* BAR n of a slot at window + n MiB */
#define MAX_QSIZE         256    /* what fits the ring area's 4 KiB pages */
#define BATCH_STATUS      0x1000 /* in buf: status bytes of a batch */

/* One queue of a driver started with gw_qvirtio_start(). */
typedef struct {
    uint64_t desc, avail, used; /* guest-physical */
    uint16_t size, avail_idx, used_idx, notify_off;
    uint16_t free_head, nfree;
    uint16_t link[QSIZE]; /* next descriptor: in a chain, or free list */
    uint8_t chain[QSIZE]; /* descriptors in the chain a head starts */
} GwQVq;

struct GwQVirtio {
    GwQt *qt;
    unsigned bdf;
    uint64_t common, notify, device; /* guest-physical */
    uint32_t notify_mult;
    uint64_t desc, avail, used, buf; /* queue 0, in RAM */
    uint16_t qsize, avail_idx, used_idx, notify_off;
    uint16_t vector; /* queue 0's MSI-X vector, or NO_VECTOR */
    uint8_t *ram;    /* guest RAM from 0, when the test maps it */
    uint64_t ram_size;
    /* gw_qvirtio_start(): several queues, rings and data per slot */
    uint64_t offered, features, area;
    uint64_t dma_off; /* what the device is told: ring gpa + this */
    GwQVq vqs[GW_QVIRTIO_MAX_QUEUES];
};

static uint32_t
cfg_read(GwQVirtio *vd, unsigned off, unsigned size)
{
    return gw_qt_pci_read(vd->qt, vd->bdf, off, size);
}

/* Where a virtio capability's structure is: BAR address + offset. */
static uint64_t
cap_addr(GwQVirtio *vd, unsigned cap)
{
    unsigned bar = cfg_read(vd, cap + 4, 1);
    uint64_t base = cfg_read(vd, 0x10 + 4 * bar, 4) & ~0xfull;

    return base + cfg_read(vd, cap + 8, 4);
}

static bool
find_caps(GwQVirtio *vd, GError **errp)
{
    unsigned cap = cfg_read(vd, 0x34, 1) & ~3u;

    for (int guard = 0; cap && guard < 48; guard++) {
        if (cfg_read(vd, cap, 1) == 0x09) { /* vendor-specific */
            switch (cfg_read(vd, cap + 3, 1)) {
            case VIRTIO_PCI_CAP_COMMON_CFG:
                vd->common = cap_addr(vd, cap);
                break;
            case VIRTIO_PCI_CAP_NOTIFY_CFG:
                vd->notify = cap_addr(vd, cap);
                vd->notify_mult = cfg_read(vd, cap + 16, 4);
                break;
            case VIRTIO_PCI_CAP_DEVICE_CFG:
                vd->device = cap_addr(vd, cap);
                break;
            }
        }
        cap = cfg_read(vd, cap + 1, 1) & ~3u;
    }
    if (!vd->common || !vd->notify || !vd->device) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "virtio %02x.0: common, notify or device cap missing",
                    vd->bdf >> 3);
        return false;
    }
    return true;
}

/* Every BAR a virtio capability points into that nobody placed goes to
 * the slot window + n MiB (godwit: BAR 0 where it already is); memory
 * decoding and bus mastering on. */
static void
place_cap_bars(GwQVirtio *vd, unsigned slot)
{
    unsigned cap = cfg_read(vd, 0x34, 1) & ~3u;

    for (int guard = 0; cap && guard < 48; guard++) {
        if (cfg_read(vd, cap, 1) == 0x09) {
            unsigned bar = cfg_read(vd, cap + 4, 1);
            if (bar < 6 && (cfg_read(vd, 0x10 + 4 * bar, 4) & ~0xfu) == 0) {
                gw_qt_pci_write(vd->qt, vd->bdf, 0x10 + 4 * bar, 4,
                                (uint32_t)(SLOT_WINDOW(slot) + bar * BAR_STEP));
            }
        }
        cap = cfg_read(vd, cap + 1, 1) & ~3u;
    }
    gw_qt_pci_write(vd->qt, vd->bdf, 0x04, 2, 0x6); /* memory, bus master */
}

#define COMMON(f) (vd->common + offsetof(struct virtio_pci_common_cfg, f))

static uint64_t
device_features(GwQVirtio *vd)
{
    gw_qt_writel(vd->qt, COMMON(device_feature_select), 0);
    uint64_t lo = gw_qt_readl(vd->qt, COMMON(device_feature));
    gw_qt_writel(vd->qt, COMMON(device_feature_select), 1);
    return lo | (uint64_t)gw_qt_readl(vd->qt, COMMON(device_feature)) << 32;
}

static bool
accept_features(GwQVirtio *vd, uint64_t want, GError **errp)
{
    vd->offered = device_features(vd);
    vd->features = want & vd->offered;
    if (!(vd->features & (1ull << VIRTIO_F_VERSION_1))) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "virtio: VERSION_1 not offered (0x%" G_GINT64_MODIFIER "x)",
                    vd->offered);
        return false;
    }
    gw_qt_writel(vd->qt, COMMON(guest_feature_select), 0);
    gw_qt_writel(vd->qt, COMMON(guest_feature), (uint32_t)vd->features);
    gw_qt_writel(vd->qt, COMMON(guest_feature_select), 1);
    gw_qt_writel(vd->qt, COMMON(guest_feature), (uint32_t)(vd->features >> 32));
    gw_qt_writeb(vd->qt, COMMON(device_status),
                 VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                     VIRTIO_CONFIG_S_FEATURES_OK);
    if (!(gw_qt_readb(vd->qt, COMMON(device_status)) &
          VIRTIO_CONFIG_S_FEATURES_OK)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "virtio: FEATURES_OK not accepted for 0x%" G_GINT64_MODIFIER
                    "x",
                    vd->features);
        return false;
    }
    return true;
}

static void
setup_queue(GwQVirtio *vd, unsigned slot, uint16_t qsize)
{
    uint64_t area = RING_AREA(slot);

    gw_qt_writew(vd->qt, COMMON(queue_select), 0);
    vd->qsize = MIN(gw_qt_readw(vd->qt, COMMON(queue_size)), qsize);
    vd->notify_off = gw_qt_readw(vd->qt, COMMON(queue_notify_off));
    vd->desc = area;
    vd->avail = area + 0x1000;
    vd->used = area + 0x2000;
    vd->buf = area + 0x3000;
    gw_qt_memset(vd->qt, area, 0, 0x3000);
    gw_qt_writew(vd->qt, COMMON(queue_size), vd->qsize);
    gw_qt_writew(vd->qt, COMMON(queue_msix_vector), vd->vector);
    gw_qt_writel(vd->qt, COMMON(queue_desc_lo), (uint32_t)vd->desc);
    gw_qt_writel(vd->qt, COMMON(queue_desc_hi), (uint32_t)(vd->desc >> 32));
    gw_qt_writel(vd->qt, COMMON(queue_avail_lo), (uint32_t)vd->avail);
    gw_qt_writel(vd->qt, COMMON(queue_avail_hi), (uint32_t)(vd->avail >> 32));
    gw_qt_writel(vd->qt, COMMON(queue_used_lo), (uint32_t)vd->used);
    gw_qt_writel(vd->qt, COMMON(queue_used_hi), (uint32_t)(vd->used >> 32));
    gw_qt_writew(vd->qt, COMMON(queue_enable), 1);
}

/* MSI-X capability: entry 0 → (addr, data), unmasked; function enabled. */
static bool
enable_msix(GwQVirtio *vd, uint64_t addr, uint32_t data, GError **errp)
{
    unsigned cap = cfg_read(vd, 0x34, 1) & ~3u;
    uint32_t table;
    uint64_t entry;

    while (cap && cfg_read(vd, cap, 1) != 0x11) {
        cap = cfg_read(vd, cap + 1, 1) & ~3u;
    }
    if (!cap) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID, "no MSI-X capability");
        return false;
    }
    table = cfg_read(vd, cap + 4, 4);
    entry = (cfg_read(vd, 0x10 + 4 * (table & 7), 4) & ~0xfull) + (table & ~7u);
    if (entry == (table & ~7u)) { /* BAR not placed: slot window + 64 KiB */
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "MSI-X table BAR %u is not placed", table & 7);
        return false;
    }
    gw_qt_writel(vd->qt, entry, (uint32_t)addr);
    gw_qt_writel(vd->qt, entry + 4, (uint32_t)(addr >> 32));
    gw_qt_writel(vd->qt, entry + 8, data);
    gw_qt_writel(vd->qt, entry + 12, 0); /* unmasked */
    gw_qt_pci_write(vd->qt, vd->bdf, cap + 2, 2,
                    cfg_read(vd, cap + 2, 2) | 0x8000); /* MSI-X enable */
    return true;
}

/* `slot` may carry a segment (GW_QT_SBDF's upper bits, >> 3): config
 * through its ECAM, rings in an area of their own. */
static GwQVirtio *
init(GwQt *qt, unsigned slot, uint64_t msi_at, uint32_t msi_data,
     uint16_t qsize, GError **errp)
{
    g_autoptr(GwQVirtio) vd = g_new0(GwQVirtio, 1);
    unsigned segment = slot >> 13;

    slot &= 0x1f;
    vd->qt = qt;
    vd->bdf = GW_QT_SBDF(segment, 0, slot, 0);
    vd->vector = msi_at ? 0 : VIRTIO_MSI_NO_VECTOR;
    place_cap_bars(vd, slot);
    if (!find_caps(vd, errp) ||
        (msi_at && !enable_msix(vd, msi_at, msi_data, errp))) {
        return NULL;
    }
    gw_qvirtio_reset(vd);
    gw_qt_writeb(qt, COMMON(device_status), VIRTIO_CONFIG_S_ACKNOWLEDGE);
    gw_qt_writeb(qt, COMMON(device_status),
                 VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    if (!accept_features(vd,
                         (1ull << VIRTIO_F_VERSION_1) |
                             (1ull << VIRTIO_F_ACCESS_PLATFORM),
                         errp)) {
        return NULL;
    }
    setup_queue(vd, slot + 32 * segment, qsize);
    gw_qt_writeb(qt, COMMON(device_status),
                 VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                     VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
    return g_steal_pointer(&vd);
}

GwQVirtio *
gw_qvirtio_init(GwQt *qt, unsigned slot, GError **errp)
{
    return init(qt, slot, 0, 0, QSIZE, errp);
}

GwQVirtio *
gw_qvirtio_init_on_segment(GwQt *qt, unsigned segment, unsigned slot,
                           GError **errp)
{
    g_assert(slot < 32 && segment < 16);
    return init(qt, segment << 13 | slot, 0, 0, QSIZE, errp);
}

GwQVirtio *
gw_qvirtio_init_qsize(GwQt *qt, unsigned slot, uint16_t qsize, GError **errp)
{
    g_assert(qsize && qsize <= MAX_QSIZE && !(qsize & (qsize - 1)));
    return init(qt, slot, 0, 0, qsize, errp);
}

GwQVirtio *
gw_qvirtio_init_msix(GwQt *qt, unsigned slot, uint64_t msi_at,
                     uint32_t msi_data, GError **errp)
{
    return init(qt, slot, msi_at, msi_data, QSIZE, errp);
}

void
gw_qvirtio_free(GwQVirtio *vd)
{
    g_free(vd);
}

void
gw_qvirtio_read_config(GwQVirtio *vd, unsigned off, void *buf, size_t len)
{
    uint8_t *p = buf;

    for (size_t i = 0; i < len; i++) { /* config space is byte-addressed */
        p[i] = gw_qt_readb(vd->qt, vd->device + off + i);
    }
}

void
gw_qvirtio_reset(GwQVirtio *vd)
{
    gw_qt_writeb(vd->qt, COMMON(device_status), 0);
    g_assert_cmpuint(gw_qt_readb(vd->qt, COMMON(device_status)), ==, 0);
}

uint64_t
gw_qvirtio_blk_capacity(GwQVirtio *vd)
{
    uint64_t cap;

    gw_qvirtio_read_config(vd, offsetof(struct virtio_blk_config, capacity),
                           &cap, sizeof(cap));
    return cap;
}

/* One request: header, data (device-writable for reads), status. */
static uint8_t
blk_request(GwQVirtio *vd, uint32_t type, uint64_t sector, size_t len)
{
    struct virtio_blk_outhdr hdr = {.type = type, .sector = sector};
    uint64_t hdr_at = vd->buf, data_at = vd->buf + 0x100,
             status_at = vd->buf + 0x80;
    bool in = type == VIRTIO_BLK_T_IN;
    struct vring_desc d[3] = {
        {hdr_at, sizeof(hdr), VRING_DESC_F_NEXT, 1},
        {data_at, (uint32_t)len,
         VRING_DESC_F_NEXT | (in ? VRING_DESC_F_WRITE : 0), 2},
        {status_at, 1, VRING_DESC_F_WRITE, 0},
    };
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

    gw_qt_memwrite(vd->qt, hdr_at, &hdr, sizeof(hdr));
    gw_qt_writeb(vd->qt, status_at, 0xff);
    gw_qt_memwrite(vd->qt, vd->desc, d, sizeof(d));
    gw_qt_writew(vd->qt, vd->avail + 4 + 2 * (vd->avail_idx % vd->qsize), 0);
    gw_qt_writew(vd->qt, vd->avail + 2, ++vd->avail_idx);
    gw_qt_writew(vd->qt,
                 vd->notify + (uint64_t)vd->notify_off * vd->notify_mult, 0);
    while (gw_qt_readw(vd->qt, vd->used + 2) != (uint16_t)(vd->used_idx + 1)) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(POLL_US); /* the device works on its own thread */
    }
    vd->used_idx++;
    return gw_qt_readb(vd->qt, status_at);
}

void
gw_qvirtio_blk_pattern(uint8_t *buf, size_t len, uint64_t sector)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(sector * 131 + i * 7 + (i >> 9));
    }
}

bool
gw_qvirtio_blk_workload(GwQVirtio *vd, GError **errp)
{
    uint64_t cap = gw_qvirtio_blk_capacity(vd);
    const uint64_t at[] = {0, cap / 2, cap - RUN_SECTORS};
    uint8_t want[RUN_SECTORS * SECTOR], got[RUN_SECTORS * SECTOR];
    uint64_t data_at = vd->buf + 0x100;

    for (size_t i = 0; i < G_N_ELEMENTS(at); i++) {
        gw_qvirtio_blk_pattern(want, sizeof(want), at[i]);
        gw_qt_memwrite(vd->qt, data_at, want, sizeof(want));
        if (blk_request(vd, VIRTIO_BLK_T_OUT, at[i], sizeof(want)) !=
            VIRTIO_BLK_S_OK) {
            g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                        "blk: write at sector %" G_GUINT64_FORMAT " failed",
                        at[i]);
            return false;
        }
    }
    for (size_t i = 0; i < G_N_ELEMENTS(at); i++) {
        gw_qvirtio_blk_pattern(want, sizeof(want), at[i]);
        gw_qt_memset(vd->qt, data_at, 0, sizeof(got));
        if (blk_request(vd, VIRTIO_BLK_T_IN, at[i], sizeof(got)) !=
            VIRTIO_BLK_S_OK) {
            g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                        "blk: read at sector %" G_GUINT64_FORMAT " failed",
                        at[i]);
            return false;
        }
        gw_qt_memread(vd->qt, data_at, got, sizeof(got));
        if (memcmp(want, got, sizeof(got)) != 0) {
            g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                        "blk: sector %" G_GUINT64_FORMAT " read back wrong",
                        at[i]);
            return false;
        }
    }
    if (blk_request(vd, VIRTIO_BLK_T_IN, cap, SECTOR) != VIRTIO_BLK_S_IOERR) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "blk: a read past the end did not fail with IOERR");
        return false;
    }
    return true;
}

uint8_t
gw_qvirtio_status(GwQVirtio *vd)
{
    return gw_qt_readb(vd->qt, COMMON(device_status));
}

uint16_t
gw_qvirtio_queue_size(GwQVirtio *vd)
{
    return vd->qsize;
}

void
gw_qvirtio_set_ram(GwQVirtio *vd, void *host, uint64_t size)
{
    vd->ram = host;
    vd->ram_size = size;
}

/* Guest RAM, the way the driver was given: mapped, else over qtest. */
static uint8_t *
ram_at(GwQVirtio *vd, uint64_t gpa, size_t len)
{
    g_assert(gpa + len <= vd->ram_size);
    return vd->ram + gpa;
}

static void
ram_write(GwQVirtio *vd, uint64_t gpa, const void *buf, size_t len)
{
    if (vd->ram) {
        memcpy(ram_at(vd, gpa, len), buf, len);
    } else {
        gw_qt_memwrite(vd->qt, gpa, buf, len);
    }
}

static void
ram_read(GwQVirtio *vd, uint64_t gpa, void *buf, size_t len)
{
    if (vd->ram) {
        memcpy(buf, ram_at(vd, gpa, len), len);
    } else {
        gw_qt_memread(vd->qt, gpa, buf, len);
    }
}

/* An index the other side reads or writes: release / acquire. */
static void
idx_write(GwQVirtio *vd, uint64_t gpa, uint16_t v)
{
    if (vd->ram) {
        __atomic_store_n((uint16_t *)ram_at(vd, gpa, 2), v, __ATOMIC_RELEASE);
    } else {
        gw_qt_writew(vd->qt, gpa, v);
    }
}

static uint16_t
idx_read(GwQVirtio *vd, uint64_t gpa)
{
    if (vd->ram) {
        return __atomic_load_n((uint16_t *)ram_at(vd, gpa, 2),
                               __ATOMIC_ACQUIRE);
    }
    return gw_qt_readw(vd->qt, gpa);
}

/* Descriptors 3i..3i+2 for request i: header, data, status. */
static void
batch_descs(GwQVirtio *vd, const GwQVirtioBlkReq *r, unsigned n,
            struct vring_desc *d)
{
    for (unsigned i = 0; i < n; i++, d += 3) {
        uint16_t head = (uint16_t)(3 * i);
        uint16_t wr = r[i].type == VIRTIO_BLK_T_IN ? VRING_DESC_F_WRITE : 0;

        d[0] = (struct vring_desc){vd->buf + 16 * i, 16, VRING_DESC_F_NEXT,
                                   head + 1};
        d[1] = (struct vring_desc){r[i].data, r[i].len, VRING_DESC_F_NEXT | wr,
                                   head + 2};
        d[2] = (struct vring_desc){vd->buf + BATCH_STATUS + i, 1,
                                   VRING_DESC_F_WRITE, 0};
    }
}

/* Puts heads 0, 3, 6, … in the avail ring from avail_idx on (may wrap). */
static void
batch_avail(GwQVirtio *vd, unsigned n)
{
    uint16_t ring[MAX_QSIZE / 3];
    unsigned at = vd->avail_idx % vd->qsize, first = MIN(n, vd->qsize - at);

    for (unsigned i = 0; i < n; i++) {
        ring[i] = (uint16_t)(3 * i);
    }
    ram_write(vd, vd->avail + 4 + 2 * at, ring, 2 * first);
    if (first < n) {
        ram_write(vd, vd->avail + 4, ring + first, 2 * (n - first));
    }
    vd->avail_idx += n;
    idx_write(vd, vd->avail + 2, vd->avail_idx);
}

bool
gw_qvirtio_blk_submit(GwQVirtio *vd, GwQVirtioBlkReq *reqs, unsigned n,
                      GError **errp)
{
    struct virtio_blk_outhdr hdr[MAX_QSIZE / 3];
    struct vring_desc d[MAX_QSIZE];
    uint8_t status[MAX_QSIZE / 3], ff[MAX_QSIZE / 3];
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    uint16_t want = (uint16_t)(vd->used_idx + n);

    g_assert(n >= 1 && 3 * n <= vd->qsize);
    for (unsigned i = 0; i < n; i++) {
        hdr[i] = (struct virtio_blk_outhdr){.type = reqs[i].type,
                                            .sector = reqs[i].sector};
    }
    batch_descs(vd, reqs, n, d);
    memset(ff, 0xff, n);
    ram_write(vd, vd->buf, hdr, sizeof(hdr[0]) * n);
    ram_write(vd, vd->buf + BATCH_STATUS, ff, n);
    ram_write(vd, vd->desc, d, sizeof(d[0]) * 3 * n);
    batch_avail(vd, n);
    gw_qt_writew(vd->qt,
                 vd->notify + (uint64_t)vd->notify_off * vd->notify_mult, 0);
    while (idx_read(vd, vd->used + 2) != want) {
        if (g_get_monotonic_time() > deadline) {
            g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                        "virtio-blk: %u requests not completed in 10 s", n);
            return false;
        }
        if (vd->ram) {
            sched_yield(); /* a spinning vCPU, polite on a small host */
        }
    }
    vd->used_idx = want;
    ram_read(vd, vd->buf + BATCH_STATUS, status, n);
    for (unsigned i = 0; i < n; i++) {
        reqs[i].status = status[i];
    }
    return true;
}

/*
 * Several queues (gw_qvirtio_start and the gw_qvirtio_vq_* functions).
 * Queue q's rings are at area + q * 4 KiB (desc, avail at +1 KiB, used
 * at +2 KiB); the test's buffers from DATA_OFF to the end of the area.
 */
#define VQ_STRIDE 0x1000
#define DATA_OFF  (GW_QVIRTIO_MAX_QUEUES * VQ_STRIDE)
#define AREA_LEN  0x20000

/* Every BAR a virtio capability uses, placed when nobody did. */
static GwQVirtio *
start(GwQt *qt, unsigned segment, unsigned slot, uint64_t want, GError **errp)
{
    g_autoptr(GwQVirtio) vd = g_new0(GwQVirtio, 1);

    g_assert(slot < 32 && segment < 16);
    vd->qt = qt;
    vd->bdf = GW_QT_SBDF(segment, 0, slot, 0);
    vd->vector = VIRTIO_MSI_NO_VECTOR;
    vd->area = RING_AREA(slot + 32 * segment);
    place_cap_bars(vd, slot);
    if (!find_caps(vd, errp)) {
        return NULL;
    }
    gw_qvirtio_reset(vd);
    gw_qt_writeb(qt, COMMON(device_status), VIRTIO_CONFIG_S_ACKNOWLEDGE);
    gw_qt_writeb(qt, COMMON(device_status),
                 VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    if (!accept_features(vd, want, errp)) {
        return NULL;
    }
    return g_steal_pointer(&vd);
}

GwQVirtio *
gw_qvirtio_start(GwQt *qt, unsigned slot, uint64_t want, GError **errp)
{
    return start(qt, 0, slot, want, errp);
}

GwQVirtio *
gw_qvirtio_start_on_segment(GwQt *qt, unsigned segment, unsigned slot,
                            uint64_t want, GError **errp)
{
    return start(qt, segment, slot, want, errp);
}

void
gw_qvirtio_set_dma_offset(GwQVirtio *vd, uint64_t off)
{
    vd->dma_off = off;
}

GwQVirtio *
gw_qvirtio_init_queues(GwQt *qt, unsigned slot, uint64_t want, unsigned nqueues,
                       GError **errp)
{
    g_autoptr(GwQVirtio) vd = gw_qvirtio_start(qt, slot, want, errp);

    if (!vd) {
        return NULL;
    }
    for (unsigned q = 0; q < nqueues; q++) {
        if (!gw_qvirtio_setup_vq(vd, q, errp)) {
            return NULL;
        }
    }
    gw_qvirtio_driver_ok(vd);
    return g_steal_pointer(&vd);
}

uint64_t
gw_qvirtio_offered(GwQVirtio *vd)
{
    return vd->offered;
}

uint64_t
gw_qvirtio_features(GwQVirtio *vd)
{
    return vd->features;
}

unsigned
gw_qvirtio_num_queues(GwQVirtio *vd)
{
    return gw_qt_readw(vd->qt, COMMON(num_queues));
}

static void
vq_write_addrs(GwQVirtio *vd, const GwQVq *vq)
{
    uint64_t desc = vq->desc + vd->dma_off, avail = vq->avail + vd->dma_off,
             used = vq->used + vd->dma_off;

    gw_qt_writel(vd->qt, COMMON(queue_desc_lo), (uint32_t)desc);
    gw_qt_writel(vd->qt, COMMON(queue_desc_hi), (uint32_t)(desc >> 32));
    gw_qt_writel(vd->qt, COMMON(queue_avail_lo), (uint32_t)avail);
    gw_qt_writel(vd->qt, COMMON(queue_avail_hi), (uint32_t)(avail >> 32));
    gw_qt_writel(vd->qt, COMMON(queue_used_lo), (uint32_t)used);
    gw_qt_writel(vd->qt, COMMON(queue_used_hi), (uint32_t)(used >> 32));
}

bool
gw_qvirtio_setup_vq(GwQVirtio *vd, unsigned q, GError **errp)
{
    GwQVq *vq = &vd->vqs[MIN(q, GW_QVIRTIO_MAX_QUEUES - 1)];
    uint16_t max;

    g_assert(vd->area && q < GW_QVIRTIO_MAX_QUEUES);
    if (q >= gw_qvirtio_num_queues(vd)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "virtio: no queue %u (num_queues %u)", q,
                    gw_qvirtio_num_queues(vd));
        return false;
    }
    gw_qt_writew(vd->qt, COMMON(queue_select), q);
    max = gw_qt_readw(vd->qt, COMMON(queue_size));
    if (max == 0) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "virtio: queue %u has size 0", q);
        return false;
    }
    *vq = (GwQVq){.size = MIN(max, QSIZE), .nfree = MIN(max, QSIZE)};
    for (uint16_t i = 0; i < vq->size; i++) {
        vq->link[i] = i + 1;
    }
    vq->notify_off = gw_qt_readw(vd->qt, COMMON(queue_notify_off));
    vq->desc = vd->area + (uint64_t)q * VQ_STRIDE;
    vq->avail = vq->desc + 0x400;
    vq->used = vq->desc + 0x800;
    gw_qt_memset(vd->qt, vq->desc, 0, VQ_STRIDE);
    gw_qt_writew(vd->qt, COMMON(queue_size), vq->size);
    gw_qt_writew(vd->qt, COMMON(queue_msix_vector), VIRTIO_MSI_NO_VECTOR);
    vq_write_addrs(vd, vq);
    gw_qt_writew(vd->qt, COMMON(queue_enable), 1);
    return true;
}

void
gw_qvirtio_vq_rings(GwQVirtio *vd, unsigned q, uint64_t *desc, uint64_t *avail,
                    uint64_t *used)
{
    g_assert(q < GW_QVIRTIO_MAX_QUEUES && vd->vqs[q].size);
    *desc = vd->vqs[q].desc;
    *avail = vd->vqs[q].avail;
    *used = vd->vqs[q].used;
}

void
gw_qvirtio_vq_move(GwQVirtio *vd, unsigned q, uint64_t desc, uint64_t avail,
                   uint64_t used)
{
    GwQVq *vq = &vd->vqs[MIN(q, GW_QVIRTIO_MAX_QUEUES - 1)];

    g_assert(q < GW_QVIRTIO_MAX_QUEUES && vq->size);
    vq->desc = desc;
    vq->avail = avail;
    vq->used = used;
    gw_qt_writew(vd->qt, COMMON(queue_select), q);
    vq_write_addrs(vd, vq);
}

void
gw_qvirtio_driver_ok(GwQVirtio *vd)
{
    gw_qt_writeb(vd->qt, COMMON(device_status),
                 VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                     VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
}

uint64_t
gw_qvirtio_data_area(GwQVirtio *vd, size_t *len)
{
    g_assert(vd->area);
    *len = AREA_LEN - DATA_OFF;
    return vd->area + DATA_OFF;
}

unsigned
gw_qvirtio_vq_size(GwQVirtio *vd, unsigned q)
{
    g_assert(q < GW_QVIRTIO_MAX_QUEUES);
    return vd->vqs[q].size;
}

uint16_t
gw_qvirtio_vq_add(GwQVirtio *vd, unsigned q, const GwQVirtioBuf *b, unsigned n)
{
    GwQVq *vq = &vd->vqs[MIN(q, GW_QVIRTIO_MAX_QUEUES - 1)];
    uint16_t head = vq->free_head, id = head;

    g_assert(q < GW_QVIRTIO_MAX_QUEUES && vq->size);
    g_assert_cmpuint(n, >=, 1);
    g_assert_cmpuint(n, <=, vq->nfree);
    for (unsigned i = 0; i < n; i++) {
        uint16_t next = vq->link[id];
        struct vring_desc d = {b[i].addr, b[i].len,
                               (b[i].write ? VRING_DESC_F_WRITE : 0) |
                                   (i + 1 < n ? VRING_DESC_F_NEXT : 0),
                               i + 1 < n ? next : 0};
        gw_qt_memwrite(vd->qt, vq->desc + 16ull * id, &d, sizeof(d));
        vq->free_head = next;
        id = next;
    }
    vq->nfree -= n;
    vq->chain[head] = (uint8_t)n;
    gw_qt_writew(vd->qt, vq->avail + 4 + 2 * (vq->avail_idx % vq->size), head);
    gw_qt_writew(vd->qt, vq->avail + 2, ++vq->avail_idx);
    return head;
}

void
gw_qvirtio_vq_kick(GwQVirtio *vd, unsigned q)
{
    g_assert(q < GW_QVIRTIO_MAX_QUEUES && vd->vqs[q].size);
    gw_qt_writew(vd->qt,
                 vd->notify + (uint64_t)vd->vqs[q].notify_off * vd->notify_mult,
                 q);
}

/* Gives the chain at `head` back to the free list. */
static void
vq_free_chain(GwQVq *vq, uint16_t head)
{
    uint16_t last = head;

    for (unsigned i = 1; i < vq->chain[head]; i++) {
        last = vq->link[last];
    }
    vq->link[last] = vq->free_head;
    vq->free_head = head;
    vq->nfree += vq->chain[head];
    vq->chain[head] = 0;
}

bool
gw_qvirtio_vq_poll(GwQVirtio *vd, unsigned q, uint32_t *id, uint32_t *len)
{
    GwQVq *vq = &vd->vqs[MIN(q, GW_QVIRTIO_MAX_QUEUES - 1)];
    uint64_t elem;

    g_assert(q < GW_QVIRTIO_MAX_QUEUES && vq->size);
    if (gw_qt_readw(vd->qt, vq->used + 2) == vq->used_idx) {
        return false;
    }
    elem = vq->used + 4 + 8ull * (vq->used_idx % vq->size);
    *id = gw_qt_readl(vd->qt, elem);
    *len = gw_qt_readl(vd->qt, elem + 4);
    /* A head the driver did not make available is the device's bug. */
    g_assert_cmpuint(*id, <, vq->size);
    g_assert_cmpuint(vq->chain[*id], >, 0);
    vq_free_chain(vq, (uint16_t)*id);
    vq->used_idx++;
    return true;
}

bool
gw_qvirtio_vq_wait(GwQVirtio *vd, unsigned q, int timeout_ms, uint32_t *id,
                   uint32_t *len)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

    while (!gw_qvirtio_vq_poll(vd, q, id, len)) {
        if (g_get_monotonic_time() >= deadline) {
            return false;
        }
        g_usleep(POLL_US); /* the device works on its own thread */
    }
    return true;
}

void
gw_qvirtio_set_qt(GwQVirtio *vd, GwQt *qt)
{
    vd->qt = qt;
}
