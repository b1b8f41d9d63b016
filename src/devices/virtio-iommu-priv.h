/*
 * virtio-iommu-priv: the IOMMU's state, shared by virtio-iommu.c (the
 * virtio-pci function, the request queue's ring), virtio-iommu-req.c
 * (the requests) and virtio-iommu-space.c (domains, endpoints and what
 * their ops are told).  Threads: include/godwit/virtio-iommu.h; every
 * field is guarded by the VM's device lock.  What translation reads
 * (bypass, negotiated, features, the endpoints' domains, the domains and
 * their maps) is also guarded by `space_lock`: a writer holds the device
 * lock and space_lock for writing; gw_virtio_iommu_translate holds only
 * space_lock for reading (the shadow-virtqueue relay calls it without
 * the device lock, which it must never wait for).
 *
 * Who takes space_lock for writing (GRWLock is not recursive): only the
 * entry points, once, around the whole change and the endpoint ops it
 * calls — gw_iommu_request around a request's handler, the virtio-pci
 * ops in virtio-iommu.c (activate, reset, the `bypass` config write),
 * gw_virtio_iommu_add_endpoint and _remove_endpoint.  The gw_iommu_*
 * helpers below never take it: a caller that changes state through
 * them holds it already.  Endpoint ops therefore run with it held and
 * must not translate (nor wait for a thread that does, e.g. join the
 * relay); the relay's translations wait while a change is pushed, so
 * what they see is never ahead of the endpoint's IOTLB.
 *
 * What an endpoint loses that was writable is marked dirty in guest
 * RAM's bitmap (gw_iommu_push, after the ops returned): the device may
 * have written it, and nothing could translate it afterwards.
 */
#pragma once

#include <linux/virtio_iommu.h>
#include <godwit/virtio-iommu.h>

#define IOMMU_QUEUE_MAX  256
#define IOMMU_PROBE_SIZE 512
#define IOMMU_GRANULE    4096ull
/* Mappings one domain may hold: past it MAP answers NOMEM. */
#define IOMMU_MAX_MAPPINGS (64u * 1024)
/* The MSI doorbell PROBE reports (x86: the LAPIC's MSI window). */
#define IOMMU_MSI_START 0xfee00000ull
#define IOMMU_MSI_END   0xfeefffffull
#define IOMMU_IOVA_TOP  ((1ull << 48) - 1)

#define IOMMU_FEATURES                                                         \
    ((1ull << VIRTIO_IOMMU_F_INPUT_RANGE) |                                    \
     (1ull << VIRTIO_IOMMU_F_DOMAIN_RANGE) |                                   \
     (1ull << VIRTIO_IOMMU_F_MAP_UNMAP) | (1ull << VIRTIO_IOMMU_F_PROBE) |     \
     (1ull << VIRTIO_IOMMU_F_BYPASS_CONFIG))

/* One mapping (or one identity range): IOVAs start..end inclusive. */
typedef struct {
    uint64_t start, end;
    uint64_t gpa;
    unsigned flags; /* GW_IOMMU_MAP_F_* */
} IommuMap;

typedef struct IommuDomain IommuDomain;

typedef struct {
    uint32_t id;
    const GwIommuEndpointOps *ops;
    void *opaque;
    IommuDomain *domain; /* NULL: in no domain */
    GwGuestMemory *mem;  /* the IOMMU's: what it unmaps is marked dirty */
} IommuEndpoint;

struct IommuDomain {
    uint32_t id;
    bool bypass;    /* attached with VIRTIO_IOMMU_ATTACH_F_BYPASS */
    GArray *maps;   /* IommuMap, sorted by start, disjoint */
    GPtrArray *eps; /* IommuEndpoint *, owned by the endpoint tree */
};

struct GwVirtioIommu {
    GwGuestMemory *mem;
    GMutex *dev_lock;
    GwVirtioPci *vp;
    uint8_t bypass;  /* config.bypass */
    bool negotiated; /* DRIVER_OK started the device, features below */
    uint64_t features;
    GwVirtqueueSetup rq; /* the request queue, while negotiated */
    uint16_t last_avail, last_used;
    guint watch;        /* on rq.kick_fd, while the request queue runs */
    GTree *endpoints;   /* id -> IommuEndpoint (owned) */
    GTree *domains;     /* id -> IommuDomain (owned) */
    GRWLock space_lock; /* see the top of this file */
};

/* space_lock for writing, around every change translation could see. */
void gw_iommu_space_write_lock(GwVirtioIommu *s);
void gw_iommu_space_write_unlock(GwVirtioIommu *s);

/* ---- virtio-iommu.c ---- */

/* Watches the request queue's kick (again) if it is enabled. */
void gw_iommu_start_queue(GwVirtioIommu *s);

/* ---- virtio-iommu-space.c ---- */

/* Whether endpoint `ep` sees guest RAM as it is (identity). */
bool gw_iommu_bypassing(const GwVirtioIommu *s, const IommuEndpoint *ep);

/* Whether an endpoint in no domain bypasses now (boot bypass). */
bool gw_iommu_boot_bypass(const GwVirtioIommu *s);

/* Appends endpoint `ep`'s address space to `out` (IommuMap). */
void gw_iommu_space(const GwVirtioIommu *s, const IommuEndpoint *ep,
                    GArray *out);

/* Appends the identity map of guest RAM (one range per region). */
void gw_iommu_identity(const GwVirtioIommu *s, GArray *out);

/* Marks the guest RAM behind the writable entries of `maps` dirty. */
void gw_iommu_mark_writable(GwGuestMemory *mem, const GArray *maps);

/*
 * Tells `ep`'s ops to unmap `unmaps`, then map `maps`, in one batch.
 * False with *errp if a call fails; unless `force`, what was done is
 * undone first (best effort), so the endpoint is as before.  `force`
 * goes on past failures: the new state is the truth (a reset).  The
 * writable entries of `unmaps` are marked dirty once the batch ended.
 */
bool gw_iommu_push(IommuEndpoint *ep, const GArray *unmaps, const GArray *maps,
                   bool force, GError **errp);

/* gw_iommu_push on every endpoint of `eps`, none forced; on a failure,
 * those already changed are changed back.  False with *errp then. */
bool gw_iommu_push_all(GPtrArray *eps, const GArray *unmaps, const GArray *maps,
                       GError **errp);

/* Endpoints in no domain (not owned: the tree owns them). */
GPtrArray *gw_iommu_unattached(const GwVirtioIommu *s);

/* The trees of GwVirtioIommu: endpoints and domains, keyed by id. */
GTree *gw_iommu_endpoint_tree(void);
GTree *gw_iommu_domain_tree(void);

IommuEndpoint *gw_iommu_endpoint(const GwVirtioIommu *s, uint32_t id);
IommuDomain *gw_iommu_domain(const GwVirtioIommu *s, uint32_t id);
IommuDomain *gw_iommu_domain_new(GwVirtioIommu *s, uint32_t id, bool bypass);
/* Removes the domain (no call into any ops: it must have no endpoint). */
void gw_iommu_domain_destroy(GwVirtioIommu *s, IommuDomain *d);

/* Index of the first mapping of `d` whose end is >= iova. */
guint gw_iommu_find(const IommuDomain *d, uint64_t iova);

/* Moves `ep` into domain `to` (NULL: none), out of its old one. */
void gw_iommu_move(IommuEndpoint *ep, IommuDomain *to);

/* Every endpoint out of its domain, domains gone, bypass 1, no driver:
 * each endpoint's ops told at once (failures logged). */
void gw_iommu_reset_spaces(GwVirtioIommu *s);

/* ---- virtio-iommu-req.c ---- */

/*
 * Answers one request: `in` is its device-readable part (`in_len`
 * bytes, at most sizeof `in` was copied: the caller gives all of a
 * request of a known type), `out` receives the device-writable part
 * (`*out_len` bytes, at most IOMMU_PROBE_SIZE + tail), `w_len` bytes
 * being there.  Returns false when the request cannot be answered at
 * all (no type, or no room for a status): nothing is to be written.
 */
bool gw_iommu_request(GwVirtioIommu *s, const uint8_t *in, uint64_t in_len,
                      uint64_t w_len, uint8_t *out, uint32_t *out_len);

/* MAP's checks of a range (alignment, start <= end, the input range,
 * the MSI window, one RAM region): VIRTIO_IOMMU_S_OK or its status. */
uint8_t gw_iommu_map_range_status(const GwVirtioIommu *s, const IommuMap *m);

/* The most a request's device-readable part has (PROBE's). */
#define IOMMU_REQ_IN_MAX sizeof(struct virtio_iommu_req_probe)
#define IOMMU_REQ_OUT_MAX                                                      \
    (IOMMU_PROBE_SIZE + sizeof(struct virtio_iommu_req_tail))
