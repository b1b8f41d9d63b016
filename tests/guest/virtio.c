/* The virtio 1.x PCI transport (virtio.h): capabilities, BARs, feature
 * negotiation, split virtqueues driven by polling their used rings. */
#include "virtio.h"

#define PCI_COMMAND      0x04
#define PCI_STATUS       0x06
#define PCI_BAR0         0x10
#define PCI_CAP_PTR      0x34
#define CMD_MEMORY       0x0002
#define CMD_MASTER       0x0004
#define CMD_INTX_DISABLE 0x0400
#define STATUS_CAP_LIST  0x10
#define CAP_ID_VENDOR    0x09

#define VIRTIO_PCI_CAP_COMMON 1
#define VIRTIO_PCI_CAP_NOTIFY 2
#define VIRTIO_PCI_CAP_ISR    3
#define VIRTIO_PCI_CAP_DEVICE 4

/* struct virtio_pci_common_cfg */
#define CC_DFSELECT 0x00
#define CC_DF       0x04
#define CC_GFSELECT 0x08
#define CC_GF       0x0C
#define CC_MSIX     0x10
#define CC_STATUS   0x14
#define CC_CFGGEN   0x15
#define CC_Q_SELECT 0x16
#define CC_Q_SIZE   0x18
#define CC_Q_MSIX   0x1A
#define CC_Q_ENABLE 0x1C
#define CC_Q_NOFF   0x1E
#define CC_Q_DESC   0x20
#define CC_Q_DRIVER 0x28
#define CC_Q_DEVICE 0x30
#define NO_VECTOR   0xFFFF

#define S_ACKNOWLEDGE 1
#define S_DRIVER      2
#define S_DRIVER_OK   4
#define S_FEATURES_OK 8
#define S_FAILED      0x80

#define VRING_DESC_F_NEXT  1
#define VRING_DESC_F_WRITE 2

#define barrier() __asm__ volatile("" ::: "memory")

static u8
rd8(volatile u8 *b, u32 o)
{
    return *(volatile u8 *)(b + o);
}
static u16
rd16(volatile u8 *b, u32 o)
{
    return *(volatile u16 *)(b + o);
}
static u32
rd32(volatile u8 *b, u32 o)
{
    return *(volatile u32 *)(b + o);
}
static void
wr8(volatile u8 *b, u32 o, u8 v)
{
    *(volatile u8 *)(b + o) = v;
}
static void
wr16(volatile u8 *b, u32 o, u16 v)
{
    *(volatile u16 *)(b + o) = v;
}
static void
wr32(volatile u8 *b, u32 o, u32 v)
{
    *(volatile u32 *)(b + o) = v;
}

static void
wr64(volatile u8 *b, u32 o, u64 v)
{
    wr32(b, o, (u32)v);
    wr32(b, o + 4, (u32)(v >> 32));
}

/* "bb:dd.f", or "ssss:bb:dd.f" with a PCI segment. */
bool
parse_bdf(const char *s, u32 *bdf)
{
    u32 f[4] = {0, 0, 0, 0}, max[4] = {0xffff, 0xff, 0x1f, 7};
    u32 colons = 0, seg = 0;
    int i = 0, digits = 0;

    for (const char *c = s; *c; c++) {
        colons += *c == ':';
    }
    if (colons == 1) { /* no segment: fields from the bus on */
        i = 1;
    } else if (colons != 2) {
        return false;
    }
    for (; *s; s++) {
        char c = *s;
        if ((c == ':' && i <= 1) || (c == '.' && i == 2)) {
            if (!digits) {
                return false;
            }
            i++;
            digits = 0;
            continue;
        }
        u32 d = c >= '0' && c <= '9'   ? (u32)(c - '0')
                : c >= 'a' && c <= 'f' ? (u32)(c - 'a' + 10)
                : c >= 'A' && c <= 'F' ? (u32)(c - 'A' + 10)
                                       : 16;
        if (d > 15 || (f[i] = f[i] * 16 + d) > max[i]) {
            return false;
        }
        digits++;
    }
    if (i != 3 || !digits) {
        return false;
    }
    seg = f[0];
    *bdf = PCI_SBDF(seg, f[1], f[2], f[3]);
    return true;
}

bool
virtio_is(u32 bdf, u16 modern, u16 transitional)
{
    u32 id = pci_cfg_read(bdf, 0, 4);
    return id == ((u32)modern << 16 | 0x1af4) ||
           id == ((u32)transitional << 16 | 0x1af4);
}

static bool
find_on(u32 seg, u16 modern, u16 transitional, u32 *bdf)
{
    for (u32 dev = 0; dev < 32; dev++) {
        u32 nfn = pci_cfg_read(PCI_SBDF(seg, 0, dev, 0), 0x0C, 4) & 0x00800000
                      ? 8
                      : 1;
        for (u32 fn = 0; fn < nfn; fn++) {
            if (virtio_is(PCI_SBDF(seg, 0, dev, fn), modern, transitional)) {
                *bdf = PCI_SBDF(seg, 0, dev, fn);
                return true;
            }
        }
    }
    return false;
}

/* Bus 0 of segment 0, then bus 0 of each other segment in the MCFG. */
static bool
find_first(u16 modern, u16 transitional, u32 *bdf)
{
    struct mcfg_entry e;

    if (find_on(0, modern, transitional, bdf)) {
        return true;
    }
    for (u32 i = 0; acpi_mcfg_entry(i, &e); i++) {
        if (e.segment && e.bus_start == 0 &&
            find_on(e.segment, modern, transitional, bdf)) {
            return true;
        }
    }
    return false;
}

bool
virtio_pick(const struct args *a, u16 modern, u16 transitional, u32 *bdf)
{
    const char *dev = arg_str(a, "dev");

    if (dev && !parse_bdf(dev, bdf)) {
        gprintf("GUEST fail %s dev=%s malformed\n", a->name, dev);
        return false;
    }
    if (!dev && !find_first(modern, transitional, bdf)) {
        gprintf("GUEST fail %s no-device\n", a->name);
        return false;
    }
    return true;
}

bool
virtio_check_id(u32 bdf, u16 modern, u16 transitional, const char *wl,
                const char *kind)
{
    if (virtio_is(bdf, modern, transitional)) {
        return true;
    }
    u32 id = pci_cfg_read(bdf, 0, 4);
    if (bdf >> 16) {
        gprintf("GUEST fail %s %04x:", wl, bdf >> 16);
    } else {
        gprintf("GUEST fail %s ", wl);
    }
    gprintf("%02x:%02x.%x not-virtio-%s id=%04x:%04x\n", (bdf >> 8) & 0xff,
            (bdf >> 3) & 0x1f, bdf & 7, kind, id & 0xffff, id >> 16);
    return false;
}

struct bar {
    u32 addr_lo, addr_hi, size;
    bool mem, is64;
};

/* Sizes BAR i (decode must be off); returns how many BAR slots it uses. */
static u32
bar_probe(u32 bdf, u32 i, struct bar *b)
{
    u32 reg = PCI_BAR0 + 4 * i;
    u32 v = pci_cfg_read(bdf, reg, 4);

    b->mem = !(v & 1);
    b->is64 = b->mem && ((v >> 1) & 3) == 2 && i < 5;
    b->addr_lo = v & ~0xFu;
    b->addr_hi = b->is64 ? pci_cfg_read(bdf, reg + 4, 4) : 0;
    pci_cfg_write(bdf, reg, 4, 0xFFFFFFFF);
    u32 mask = pci_cfg_read(bdf, reg, 4);
    pci_cfg_write(bdf, reg, 4, v);
    mask &= b->mem ? ~0xFu : ~0x3u;
    b->size = b->mem && mask ? ~mask + 1 : 0;
    return b->is64 ? 2 : 1;
}

/* Places every memory BAR in the slot's window when any of them is
 * unassigned or out of 32-bit reach (a hotplugged device has no
 * firmware to do it); otherwise keeps the firmware's placement. */
static bool
bars_setup(struct virtio_dev *d, struct bar *bars, const char *wl)
{
    bool need = false;

    memset(bars, 0, 7 * sizeof(*bars));
    for (u32 i = 0; i < 6;) {
        i += bar_probe(d->bdf, i, &bars[i]);
    }
    for (u32 i = 0; i < 6; i++) {
        need |= bars[i].size && (!bars[i].addr_lo || bars[i].addr_hi);
    }
    d->bars_assigned = need;
    if (!need) {
        return true;
    }
    if (d->bdf >> 16) { /* the windows below are segment 0's */
        gprintf("GUEST fail %s %s bars-unassigned-off-segment-0\n", wl,
                d->name);
        return false;
    }
    u32 slot = (d->bdf >> 3) & 0x1f;
    u32 base = BAR_WINDOW_BASE + slot * BAR_WINDOW_SIZE, at = base;
    for (u32 i = 0; i < 6; i++) {
        struct bar *b = &bars[i];
        if (!b->size) {
            continue;
        }
        at = (at + b->size - 1) & ~(b->size - 1);
        if (b->size > BAR_WINDOW_SIZE ||
            at - base + b->size > BAR_WINDOW_SIZE) {
            gprintf("GUEST fail %s %s bars-exceed-window size=0x%x\n", wl,
                    d->name, b->size);
            return false;
        }
        b->addr_lo = at;
        b->addr_hi = 0;
        pci_cfg_write(d->bdf, PCI_BAR0 + 4 * i, 4, at);
        if (b->is64) {
            pci_cfg_write(d->bdf, PCI_BAR0 + 4 * i + 4, 4, 0);
        }
        at += b->size;
    }
    return true;
}

/* Maps a virtio capability (bar, offset, length) to an address. */
static volatile u8 *
cap_addr(const struct bar *bars, u32 bar, u32 off, u32 len)
{
    if (bar > 5 || !bars[bar].mem || !bars[bar].size ||
        off + len > bars[bar].size || off + len < off) {
        return NULL;
    }
    return (volatile u8 *)(uptr)(bars[bar].addr_lo + off);
}

static bool
caps_walk(struct virtio_dev *d, const struct bar *bars, const char *wl)
{
    u32 bdf = d->bdf;
    u32 ptr = pci_cfg_read(bdf, PCI_CAP_PTR, 1) & 0xFC;

    for (u32 n = 0; ptr && n < 48; n++) {
        u32 id = pci_cfg_read(bdf, ptr, 1), type = 0;
        if (id == CAP_ID_VENDOR && pci_cfg_read(bdf, ptr + 2, 1) >= 16) {
            type = pci_cfg_read(bdf, ptr + 3, 1);
        }
        u32 bar = pci_cfg_read(bdf, ptr + 4, 1);
        u32 off = pci_cfg_read(bdf, ptr + 8, 4);
        u32 len = pci_cfg_read(bdf, ptr + 12, 4);
        volatile u8 *p = type ? cap_addr(bars, bar, off, len) : NULL;
        if (type == VIRTIO_PCI_CAP_COMMON && !d->common && len >= 0x38) {
            d->common = p;
        } else if (type == VIRTIO_PCI_CAP_NOTIFY && !d->notify_base) {
            d->notify_base = p;
            d->notify_mult = pci_cfg_read(bdf, ptr + 16, 4);
        } else if (type == VIRTIO_PCI_CAP_ISR && !d->isr) {
            d->isr = p;
        } else if (type == VIRTIO_PCI_CAP_DEVICE && !d->devcfg) {
            d->devcfg = p;
        }
        ptr = pci_cfg_read(bdf, ptr + 1, 1) & 0xFC;
    }
    const char *missing = !d->common        ? "common"
                          : !d->notify_base ? "notify"
                          : !d->isr         ? "isr"
                          : !d->devcfg      ? "device"
                                            : NULL;
    if (missing) {
        gprintf("GUEST fail %s %s no-modern-cap=%s\n", wl, d->name, missing);
        return false;
    }
    return true;
}

bool
virtio_pci_probe(struct virtio_dev *d, u32 bdf, const char *wl)
{
    struct bar bars[7];

    memset(d, 0, sizeof(*d));
    d->bdf = bdf;
    /* "bb:dd.f" ("ssss:bb:dd.f" off segment 0) without a printf-to-buffer */
    const char *hex = "0123456789abcdef";
    u32 seg = bdf >> 16, bus = (bdf >> 8) & 0xff, dev = (bdf >> 3) & 0x1f;
    char n[8] = {hex[bus >> 4], hex[bus & 15], ':',          hex[dev >> 4],
                 hex[dev & 15], '.',           hex[bdf & 7], 0};
    char *p = d->name;
    if (seg) {
        for (int sh = 12; sh >= 0; sh -= 4) {
            *p++ = hex[(seg >> sh) & 15];
        }
        *p++ = ':';
    }
    memcpy(p, n, sizeof(n));

    if (!(pci_cfg_read(bdf, PCI_STATUS, 2) & STATUS_CAP_LIST)) {
        gprintf("GUEST fail %s %s no-capabilities\n", wl, d->name);
        return false;
    }
    u32 cmd = pci_cfg_read(bdf, PCI_COMMAND, 2);
    pci_cfg_write(bdf, PCI_COMMAND, 2, cmd & ~(CMD_MEMORY | CMD_MASTER));
    if (!bars_setup(d, bars, wl) || !caps_walk(d, bars, wl)) {
        d->common = NULL; /* nothing for virtio_stop to reset */
        return false;
    }
    pci_cfg_write(bdf, PCI_COMMAND, 2,
                  (cmd & ~1u) | CMD_MEMORY | CMD_MASTER | CMD_INTX_DISABLE);
    return true;
}

bool
virtio_queue_setup(struct virtio_dev *d, struct virtq *q, u16 index,
                   const char *wl)
{
    volatile u8 *c = d->common;

    wr16(c, CC_Q_SELECT, index);
    u16 max = rd16(c, CC_Q_SIZE);
    if (max < 4) {
        gprintf("GUEST fail %s %s queue=%u queue-size=%u\n", wl, d->name,
                index, max);
        wr8(c, CC_STATUS, S_FAILED);
        return false;
    }
    u16 size = VQ_SIZE;
    while (size > max) {
        size >>= 1; /* a split ring's size is a power of two */
    }
    memset(q, 0, sizeof(*q));
    q->size = size;
    q->index = index;
    q->dma_offset = d->dma_offset;
    wr16(c, CC_Q_SIZE, size);
    wr16(c, CC_Q_MSIX, NO_VECTOR);
    wr64(c, CC_Q_DESC, (uptr)q->desc + q->dma_offset);
    wr64(c, CC_Q_DRIVER, (uptr)&q->avail + q->dma_offset);
    wr64(c, CC_Q_DEVICE, (uptr)&q->used + q->dma_offset);
    u32 noff = rd16(c, CC_Q_NOFF);
    q->notify = (volatile u16 *)(d->notify_base + noff * d->notify_mult);
    wr16(c, CC_Q_ENABLE, 1);
    return true;
}

bool
virtio_negotiate(struct virtio_dev *d, u64 (*want)(u64 offered),
                 const char *wl)
{
    volatile u8 *c = d->common;

    wr8(c, CC_STATUS, 0);
    if (!WAIT_MS(rd8(c, CC_STATUS) == 0, 1000)) {
        gprintf("GUEST fail %s %s reset-timeout\n", wl, d->name);
        return false;
    }
    wr8(c, CC_STATUS, S_ACKNOWLEDGE);
    wr8(c, CC_STATUS, S_ACKNOWLEDGE | S_DRIVER);
    wr32(c, CC_DFSELECT, 0);
    u64 offered = rd32(c, CC_DF);
    wr32(c, CC_DFSELECT, 1);
    offered |= (u64)rd32(c, CC_DF) << 32;
    d->offered = offered;
    if (!(offered >> VIRTIO_F_VERSION_1 & 1)) {
        gprintf("GUEST fail %s %s no-version-1 features=0x%llx\n", wl, d->name,
                offered);
        wr8(c, CC_STATUS, S_FAILED);
        return false;
    }
    if (d->dma_offset && !(offered >> VIRTIO_F_ACCESS_PLATFORM & 1)) {
        gprintf("GUEST fail %s %s no-access-platform features=0x%llx\n", wl,
                d->name, offered);
        wr8(c, CC_STATUS, S_FAILED);
        return false;
    }
    d->features = offered & ((want ? want(offered) : 0) |
                             1ull << VIRTIO_F_VERSION_1 |
                             1ull << VIRTIO_F_ACCESS_PLATFORM);
    wr32(c, CC_GFSELECT, 0);
    wr32(c, CC_GF, (u32)d->features);
    wr32(c, CC_GFSELECT, 1);
    wr32(c, CC_GF, (u32)(d->features >> 32));
    wr8(c, CC_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
    if (!(rd8(c, CC_STATUS) & S_FEATURES_OK)) {
        gprintf("GUEST fail %s %s features-not-ok features=0x%llx\n", wl,
                d->name, d->features);
        wr8(c, CC_STATUS, S_FAILED);
        return false;
    }
    wr16(c, CC_MSIX, NO_VECTOR);
    return true;
}

bool
virtio_driver_ok(struct virtio_dev *d, const char *wl)
{
    volatile u8 *c = d->common;

    wr8(c, CC_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    if (rd8(c, CC_STATUS) & S_FAILED) {
        gprintf("GUEST fail %s %s device-failed\n", wl, d->name);
        return false;
    }
    return true;
}

bool
virtio_start(struct virtio_dev *d, struct virtq *q, const char *wl)
{
    return virtio_negotiate(d, NULL, wl) && virtio_queue_setup(d, q, 0, wl) &&
           virtio_driver_ok(d, wl);
}

void
virtq_post(struct virtq *q, u16 head, const struct vbuf *b, u32 n)
{
    for (u32 i = 0; i < n; i++) {
        struct vring_desc *desc = &q->desc[(head + i) % q->size];
        desc->addr = (uptr)b[i].addr + q->dma_offset;
        desc->len = b[i].len;
        desc->flags = (i + 1 < n ? VRING_DESC_F_NEXT : 0) |
                      (b[i].device_writes ? VRING_DESC_F_WRITE : 0);
        desc->next = (u16)((head + i + 1) % q->size);
    }
    q->avail.ring[q->avail.idx % q->size] = head;
    barrier();
    q->avail.idx++;
}

void
virtq_kick(struct virtq *q)
{
    barrier();
    *q->notify = q->index;
}

bool
virtq_poll(struct virtio_dev *d, struct virtq *q, u32 *id, u32 *len)
{
    volatile struct vring_used *used = &q->used;

    (void)rd8(d->isr, 0); /* read-to-clear, so no interrupt stays pending */
    if (used->idx == q->last_used) {
        return false;
    }
    barrier();
    *id = used->ring[q->last_used % q->size].id;
    *len = used->ring[q->last_used % q->size].len;
    q->last_used++;
    return true;
}

bool
virtq_wait(struct virtio_dev *d, struct virtq *q, u32 *id, u32 *len,
           u32 timeout_ms)
{
    return WAIT_MS(virtq_poll(d, q, id, len), timeout_ms);
}

bool
virtio_xfer(struct virtio_dev *d, struct virtq *q, const struct vbuf *b,
            u32 n, u32 timeout_ms)
{
    u32 id, len;

    virtq_post(q, 0, b, n);
    virtq_kick(q);
    return virtq_wait(d, q, &id, &len, timeout_ms);
}

u8
virtio_status(struct virtio_dev *d)
{
    return rd8(d->common, CC_STATUS);
}

u32
virtio_cfg32(struct virtio_dev *d, u32 off)
{
    u32 gen, v;

    do {
        gen = rd8(d->common, CC_CFGGEN);
        v = rd32(d->devcfg, off);
    } while (gen != rd8(d->common, CC_CFGGEN));
    return v;
}

void
virtio_cfg_bytes(struct virtio_dev *d, u32 off, u8 *buf, u32 n)
{
    u32 gen;

    do {
        gen = rd8(d->common, CC_CFGGEN);
        for (u32 i = 0; i < n; i++) {
            buf[i] = rd8(d->devcfg, off + i);
        }
    } while (gen != rd8(d->common, CC_CFGGEN));
}

bool
virtio_stop(struct virtio_dev *d)
{
    wr8(d->common, CC_STATUS, 0);
    bool ok = WAIT_MS(rd8(d->common, CC_STATUS) == 0, 1000);
    u32 cmd = pci_cfg_read(d->bdf, PCI_COMMAND, 2);
    pci_cfg_write(d->bdf, PCI_COMMAND, 2, cmd & ~(CMD_MEMORY | CMD_MASTER));
    return ok;
}
