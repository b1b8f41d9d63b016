/* The virtio-iommu driver (iommu.h): requests on queue 0, each a
 * device-readable part (head and body) and a device-writable part (the
 * tail's status, after PROBE's properties), one at a time and polled;
 * faults on queue 1, where a few buffers wait.  The IOMMU's own rings and
 * requests are at their physical addresses: it is not behind itself. */
#include "iommu.h"

#define F_INPUT_RANGE   0
#define F_DOMAIN_RANGE  1
#define F_MAP_UNMAP     2
#define F_BYPASS        3
#define F_PROBE         4
#define F_BYPASS_CONFIG 6

/* struct virtio_iommu_config */
#define CFG_PAGE_SIZE_MASK 0
#define CFG_INPUT_START    8
#define CFG_INPUT_END      16
#define CFG_DOMAIN_START   24
#define CFG_DOMAIN_END     28
#define CFG_PROBE_SIZE     32
#define CFG_BYPASS         36

#define T_ATTACH 1
#define T_DETACH 2
#define T_MAP    3
#define T_UNMAP  4
#define T_PROBE  5

#define PROP_NONE     0
#define PROP_RESV_MEM 1
#define PROP_TYPE     0xfff

#define REQQ      0
#define EVTQ      1
#define EVT_BUFS  4
#define PROBE_MAX 4096

struct req_head {
    u8 type, reserved[3];
} PACKED;

/* Every request's readable part; the largest is MAP's (36 bytes) and
 * PROBE's (head, endpoint, 64 reserved). */
static union {
    struct {
        struct req_head h;
        u32 domain, endpoint, flags;
        u8 reserved[4];
    } PACKED attach; /* DETACH: the same, flags reserved */
    struct {
        struct req_head h;
        u32 domain;
        u64 virt_start, virt_end, phys_start;
        u32 flags;
    } PACKED map;
    struct {
        struct req_head h;
        u32 domain;
        u64 virt_start, virt_end;
        u8 reserved[4];
    } PACKED unmap;
    struct {
        struct req_head h;
        u32 endpoint;
        u8 reserved[64];
    } PACKED probe;
} req __attribute__((aligned(64)));

/* The writable part: PROBE's properties, then the tail (status, 3
 * reserved); other requests use the tail alone. */
static u8 req_out[PROBE_MAX + 4] __attribute__((aligned(64)));

static struct {
    u8 reason, reserved[3];
    u32 flags, endpoint;
    u8 reserved2[4];
    u64 address;
} PACKED evt_buf[EVT_BUFS] __attribute__((aligned(64)));

static struct virtq iommu_reqq __attribute__((aligned(4096)));
static struct virtq iommu_evtq __attribute__((aligned(4096)));

static const char *const status_name[] = {"ok",     "ioerr", "unsupp",
                                          "deverr", "inval", "range",
                                          "noent",  "fault", "nomem"};

static u64
iommu_want(u64 offered)
{
    return 1ull << F_INPUT_RANGE | 1ull << F_DOMAIN_RANGE |
           1ull << F_MAP_UNMAP | 1ull << F_PROBE | 1ull << F_BYPASS_CONFIG;
}

static bool
has(const struct iommu *m, u32 f)
{
    return m->d.features >> f & 1;
}

static u64
cfg64(struct iommu *m, u32 off)
{
    return virtio_cfg32(&m->d, off) | (u64)virtio_cfg32(&m->d, off + 4) << 32;
}

static void
evt_post(u16 i)
{
    struct vbuf b = {&evt_buf[i], sizeof(evt_buf[i]), true};

    memset(&evt_buf[i], 0, sizeof(evt_buf[i]));
    virtq_post(&iommu_evtq, i, &b, 1);
}

static void
read_config(struct iommu *m)
{
    m->page_mask = cfg64(m, CFG_PAGE_SIZE_MASK);
    m->in_start = 0;
    m->in_end = ~0ull;
    if (has(m, F_INPUT_RANGE)) {
        m->in_start = cfg64(m, CFG_INPUT_START);
        m->in_end = cfg64(m, CFG_INPUT_END);
    }
    m->dom_start = 0;
    m->dom_end = ~0u;
    if (has(m, F_DOMAIN_RANGE)) {
        m->dom_start = virtio_cfg32(&m->d, CFG_DOMAIN_START);
        m->dom_end = virtio_cfg32(&m->d, CFG_DOMAIN_END);
    }
    m->probe_size = has(m, F_PROBE) ? virtio_cfg32(&m->d, CFG_PROBE_SIZE) : 0;
}

static bool
check_config(struct iommu *m)
{
    const char *bad = !has(m, F_MAP_UNMAP)        ? "no-map-unmap"
                      : !m->page_mask             ? "page-size-mask=0"
                      : m->in_start > m->in_end   ? "empty-input-range"
                      : m->dom_start > m->dom_end ? "empty-domain-range"
                      : m->probe_size > PROBE_MAX ? "probe-size-too-large"
                                                  : NULL;
    if (bad) {
        gprintf("GUEST fail iommu %s %s features=0x%llx probe-size=%u\n",
                m->d.name, bad, m->d.features, m->probe_size);
        return false;
    }
    return true;
}

bool
iommu_init(struct iommu *m, u32 sbdf, u32 timeout_ms)
{
    if (!virtio_check_id(sbdf, 0x1057, 0x1057, "iommu", "iommu") ||
        !virtio_pci_probe(&m->d, sbdf, "iommu")) {
        return false;
    }
    m->timeout_ms = timeout_ms;
    m->nresv = 0;
    if (!virtio_negotiate(&m->d, iommu_want, "iommu")) {
        return false;
    }
    read_config(m);
    if (!check_config(m)) {
        virtio_stop(&m->d);
        return false;
    }
    if (has(m, F_BYPASS_CONFIG)) {
        m->boot_bypass = *(volatile u8 *)(m->d.devcfg + CFG_BYPASS);
        *(volatile u8 *)(m->d.devcfg + CFG_BYPASS) = 0;
    }
    if (!virtio_queue_setup(&m->d, &iommu_reqq, REQQ, "iommu") ||
        !virtio_queue_setup(&m->d, &iommu_evtq, EVTQ, "iommu")) {
        return false;
    }
    for (u16 i = 0; i < EVT_BUFS && i < iommu_evtq.size; i++) {
        evt_post(i);
    }
    if (!virtio_driver_ok(&m->d, "iommu")) {
        return false;
    }
    virtq_kick(&iommu_evtq);
    gprintf("GUEST iommu %s features=0x%llx page-size-mask=0x%llx "
            "input-range=0x%llx-0x%llx domain-range=%u-%u probe-size=%u "
            "bypass=%u\n",
            m->d.name, m->d.features, m->page_mask, m->in_start, m->in_end,
            m->dom_start, m->dom_end, m->probe_size,
            has(m, F_BYPASS_CONFIG) ? *(volatile u8 *)(m->d.devcfg + CFG_BYPASS)
                                    : 1u);
    return true;
}

/* Runs the request in `req` (readable part `in` bytes, writable part
 * `out` bytes, the tail last) and checks its status. */
static bool
do_req(struct iommu *m, u32 in, u32 out, const char *what)
{
    struct vbuf b[2] = {{&req, in, false}, {req_out, out, true}};
    u8 *st = &req_out[out - 4];

    req.map.h.reserved[0] = req.map.h.reserved[1] = req.map.h.reserved[2] = 0;
    memset(req_out, 0, out);
    *st = 0xFF;
    if (!virtio_xfer(&m->d, &iommu_reqq, b, 2, m->timeout_ms)) {
        gprintf("GUEST fail iommu %s %s timeout\n", m->d.name, what);
        return false;
    }
    if (*st != 0) {
        gprintf("GUEST fail iommu %s %s status=%s\n", m->d.name, what,
                *st < sizeof(status_name) / sizeof(status_name[0])
                    ? status_name[*st]
                    : "unknown");
        return false;
    }
    return true;
}

static bool
attach_detach(struct iommu *m, u8 type, u32 domain, u32 ep)
{
    memset(&req, 0, sizeof(req.attach));
    req.attach.h.type = type;
    req.attach.domain = domain;
    req.attach.endpoint = ep;
    if (!do_req(m, sizeof(req.attach), 4,
                type == T_ATTACH ? "attach" : "detach")) {
        gprintf("GUEST fail iommu %s domain=%u endpoint=0x%x\n", m->d.name,
                domain, ep);
        return false;
    }
    return true;
}

bool
iommu_attach(struct iommu *m, u32 domain, u32 ep)
{
    return attach_detach(m, T_ATTACH, domain, ep);
}

bool
iommu_detach(struct iommu *m, u32 domain, u32 ep)
{
    return attach_detach(m, T_DETACH, domain, ep);
}

bool
iommu_map(struct iommu *m, u32 domain, u64 iova, u64 phys, u64 size, u32 flags)
{
    memset(&req, 0, sizeof(req.map));
    req.map.h.type = T_MAP;
    req.map.domain = domain;
    req.map.virt_start = iova;
    req.map.virt_end = iova + size - 1;
    req.map.phys_start = phys;
    req.map.flags = flags & (DMA_READ | DMA_WRITE);
    if (!do_req(m, sizeof(req.map), 4, "map")) {
        gprintf("GUEST fail iommu %s map domain=%u iova=0x%llx size=0x%llx\n",
                m->d.name, domain, iova, size);
        return false;
    }
    return true;
}

bool
iommu_unmap(struct iommu *m, u32 domain, u64 iova, u64 size)
{
    memset(&req, 0, sizeof(req.unmap));
    req.unmap.h.type = T_UNMAP;
    req.unmap.domain = domain;
    req.unmap.virt_start = iova;
    req.unmap.virt_end = iova + size - 1;
    if (!do_req(m, sizeof(req.unmap), 4, "unmap")) {
        gprintf("GUEST fail iommu %s unmap domain=%u iova=0x%llx "
                "size=0x%llx\n",
                m->d.name, domain, iova, size);
        return false;
    }
    return true;
}

/* One RESV_MEM property (subtype, 3 reserved, start, end). */
static bool
add_resv(struct iommu *m, u32 ep, const u8 *v, u32 len)
{
    if (len < 20) {
        gprintf("GUEST fail iommu %s probe endpoint=0x%x resv-mem len=%u\n",
                m->d.name, ep, len);
        return false;
    }
    if (m->nresv == IOMMU_MAX_RESV) {
        gprintf("GUEST fail iommu %s probe endpoint=0x%x too-many-resv\n",
                m->d.name, ep);
        return false;
    }
    struct iommu_resv *r = &m->resv[m->nresv++];
    memcpy(&r->start, v + 4, 8);
    memcpy(&r->end, v + 12, 8);
    r->subtype = v[0];
    gprintf("GUEST iommu endpoint=0x%x resv=0x%llx-0x%llx subtype=%u\n", ep,
            r->start, r->end, r->subtype);
    return true;
}

/* Properties: type (2, low 12 bits), length (2: of the value), value;
 * NONE ends them, as does the end of the buffer. */
static bool
parse_props(struct iommu *m, u32 ep)
{
    for (u32 off = 0; off + 4 <= m->probe_size;) {
        u16 type = (u16)(req_out[off] | req_out[off + 1] << 8) & PROP_TYPE;
        u32 len = req_out[off + 2] | req_out[off + 3] << 8;
        if (type == PROP_NONE) {
            break;
        }
        if (off + 4 + len > m->probe_size) {
            gprintf("GUEST fail iommu %s probe endpoint=0x%x property=%u "
                    "len=%u overruns\n",
                    m->d.name, ep, type, len);
            return false;
        }
        if (type == PROP_RESV_MEM && !add_resv(m, ep, req_out + off + 4, len)) {
            return false;
        }
        off += 4 + len;
    }
    return true;
}

bool
iommu_probe(struct iommu *m, u32 ep)
{
    m->nresv = 0;
    if (!m->probe_size) {
        return true;
    }
    memset(&req, 0, sizeof(req.probe));
    req.probe.h.type = T_PROBE;
    req.probe.endpoint = ep;
    if (!do_req(m, sizeof(req.probe), m->probe_size + 4, "probe")) {
        gprintf("GUEST fail iommu %s probe endpoint=0x%x\n", m->d.name, ep);
        return false;
    }
    return parse_props(m, ep);
}

bool
iommu_fault_poll(struct iommu *m, struct iommu_fault *f)
{
    u32 id, len;

    if (!virtq_poll(&m->d, &iommu_evtq, &id, &len)) {
        return false;
    }
    id %= EVT_BUFS;
    f->reason = evt_buf[id].reason;
    f->flags = evt_buf[id].flags;
    f->endpoint = evt_buf[id].endpoint;
    f->address = evt_buf[id].address;
    evt_post((u16)id);
    virtq_kick(&iommu_evtq);
    return true;
}

void
iommu_stop(struct iommu *m)
{
    if (!m->d.common) {
        return;
    }
    /* QEMU 7.2 keeps bypass as the driver left it across a reset */
    if (has(m, F_BYPASS_CONFIG)) {
        *(volatile u8 *)(m->d.devcfg + CFG_BYPASS) = m->boot_bypass;
    }
    virtio_stop(&m->d);
}
