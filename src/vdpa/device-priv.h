/*
 * device-priv: the vDPA device model's state, shared by device.c and
 * svq.c (its shadow virtqueues).  Nothing outside src/vdpa/ includes it.
 * Threads and locking as in include/godwit/vdpa-device.h.
 */
#pragma once

#include <godwit/vdpa-device.h>
#include <godwit/virtio-iommu.h>
#include <godwit/virtio-pci.h>

typedef struct GwVdpaSvq GwVdpaSvq;
typedef struct GwVdpaCvqRelay GwVdpaCvqRelay;

/* VMM memory the device reaches (area.c): see gw_vdpa_area_alloc below. */
typedef struct {
    uint8_t *host;
    size_t len;
    uint64_t iova; /* of host[0] */
    bool mapped;
} GwVdpaArea;

/* A control command's bytes (header and data) the VMM ring carries. */
#define GW_VDPA_CVQ_CMD_MAX 4096

/*
 * What the guest's driver set over a network device's control queue
 * and the device acked (net-cvq.c records it from the relay): the
 * carried state of the vDPA function section ("vdpa-net-ctrl").  The
 * MAC is in the config space the section carries already.
 */
typedef struct {
    uint16_t pairs;     /* VQ_PAIRS_SET; 1 after a start */
    uint8_t rx_mode[6]; /* PROMISC, ALLMULTI, ALLUNI, NOMULTI, NOUNI, NOBCAST */
    uint64_t offloads;  /* GUEST_OFFLOADS_SET */
    uint8_t offloads_set;
    uint32_t vlans[4096 / 32];
    uint32_t mac_table_len; /* the last MAC_TABLE_SET's data, as sent */
    uint8_t mac_table[GW_VDPA_CVQ_CMD_MAX - 2];
} GwVdpaNetCtrl;

struct GwVdpaDevice {
    GwVdpaConfig *cfg;
    GwVdpaBackend *backend;
    GwGuestMemory *mem;
    GMutex *dev_lock;
    GwVirtioPci *vp;
    uint64_t backend_features;
    uint64_t device_features; /* what the device offers, all of it */
    uint32_t vqs; /* what the device has; cfg->num_queues are exposed */
    uint32_t device_id;
    int config_call_fd;
    guint config_watch;
    bool vm_stopped; /* the VM is paused: a started device must not run */
    bool suspended;  /* VHOST_VDPA_SUSPEND done since the last start/RESUME */
    bool kick_on_resume; /* restored: look at every ring when it runs */
    /* Queues whose backend eventfds are a relay's, not the transport's. */
    bool relayed[GW_VIRTIO_MAX_QUEUES];
    uint64_t acked_features; /* what the driver negotiated last */
    GwVdpaSvq *svq;          /* shadow virtqueues running, or NULL */
    /* Each queue's index as VHOST_GET_VRING_BASE gave it at the last
     * save (suspended, the source) or as SET_VRING_BASE took it at the
     * last restore (the destination): x-godwit-query-vdpa-vrings. */
    uint32_t vring_base[GW_VIRTIO_MAX_QUEUES];
    bool vring_base_known[GW_VIRTIO_MAX_QUEUES];
    const char *vring_base_at; /* "suspend", "restore" or NULL */
    /* iommu=on: the IOMMU it is an endpoint of (once attached), and its
     * endpoint id; its IOTLB is then the IOMMU's, never identity. */
    GwVirtioIommu *iommu;
    uint32_t endpoint;
    /* A network device's control queue relayed by the VMM, and what
     * it set (net-cvq.c, cvq-relay.c). */
    GwVdpaCvqRelay *cvq_relay;
    unsigned cvq_idx; /* the relayed queue's index, with cvq_relay */
    GwVdpaNetCtrl net_ctrl;
    bool net_ctrl_loaded; /* load_state gave net_ctrl for the restore */
    /* mac= of a hot-added virtio-net-pci on a device with CTRL_MAC_ADDR:
     * shown in config until the driver starts, then MAC_ADDR_SET. */
    bool has_plug_mac;
    uint8_t plug_mac[6];
    /* The VMM ring of a network device's control queue, made with the
     * device (a vCPU thread, which starts the driver, may not create
     * memory) and mapped only while in use (net-cvq.c). */
    GwVdpaArea cvq_area;
    size_t cvq_used_off, cvq_out_off, cvq_in_off;
    uint16_t cvq_max;
    /* IOVAs a VMM area holds for longer than a switch (the relay's
     * ring): gw_vdpa_area_alloc picks others. */
    uint64_t held_iova, held_len;
};

/*
 * The IOMMU endpoint (iommu.c), device lock held.  detach: off the
 * IOMMU (no call into the backend).  forget: every guest IOVA
 * invalidated in the backend.  remap: after a reset that dropped the
 * device's IOTLB, forget, then the IOMMU's view pushed again
 * (gw_virtio_iommu_replay); false with *errp if that failed.
 */
void gw_vdpa_iommu_detach(GwVdpaDevice *d);

/*
 * The guest-physical address behind `addr`, one of the device's guest
 * addresses (a ring's), in *gpa: `addr` itself with iommu=off, its
 * translation by the IOMMU with iommu=on (read permission, `write`:
 * write).  False if [addr, addr + len) is not one contiguous range of
 * guest RAM that way (or the device is behind no IOMMU yet).  Any
 * thread but one inside an IOMMU writer (virtio-iommu-priv.h).
 */
bool gw_vdpa_device_guest_gpa(const GwVdpaDevice *d, uint64_t addr,
                              uint64_t len, bool write, uint64_t *gpa);
void gw_vdpa_iommu_forget(GwVdpaDevice *d);
bool gw_vdpa_iommu_remap(GwVdpaDevice *d, GError **errp);

/*
 * VHOST_VDPA_SUSPEND / _RESUME of the backend, tracked in d->suspended,
 * without touching the VM's run state (d->vm_stopped).  Device lock held.
 */
bool gw_vdpa_device_backend_suspend(GwVdpaDevice *d, GError **errp);
bool gw_vdpa_device_backend_resume(GwVdpaDevice *d, GError **errp);

/* One kick per enabled queue the relay does not hold (and a poke to the
 * control queue relay): what a restored or resumed device was asked
 * before it ran.  Clears d->kick_on_resume.  Device lock held. */
void gw_vdpa_device_kick_queues(GwVdpaDevice *d);

/*
 * Drops the shadow virtqueues of a device that was just reset (or is
 * being freed): stops the relay, unmaps and frees the shadow rings,
 * restores nothing (a reset device has no rings).  No-op without them.
 * Device lock held, any thread.
 */
void gw_vdpa_svq_abort(GwVdpaDevice *d);

/*
 * Whether the relay stopped relaying a queue (a chain that breaks the
 * rules): the device is then as good as broken for the guest, which
 * gets NEEDS_RESET.  The relay signals the device's config call fd when
 * it happens.  Device lock held.
 */
bool gw_vdpa_svq_broken(const GwVdpaDevice *d);

/* Whether queue `idx` runs on a shadow ring now.  Device lock held. */
bool gw_vdpa_svq_shadows(const GwVdpaDevice *d, unsigned idx);

/*
 * VMM memory the device reaches (shadow rings, the control queue's
 * replay): gw_vdpa_area_alloc gives `len` bytes (rounded up to pages)
 * of a MAP_SHARED memfd, zeroed, and an IOVA range for them inside the
 * device's GET_IOVA_RANGE and outside every guest-RAM IOVA (the highest
 * such, below 2^47 if it can); nothing is mapped yet.
 * gw_vdpa_area_map: VHOST_IOTLB_UPDATE of [off, off + len) with `perm`.
 * gw_vdpa_area_unmap invalidates the range if anything was mapped;
 * gw_vdpa_area_release frees the memory (after unmap).  One area at a
 * time per device: two would be given the same IOVAs.  Device lock held.
 */

bool gw_vdpa_area_alloc(GwVdpaDevice *d, GwVdpaArea *a, size_t len,
                        GError **errp);
bool gw_vdpa_area_map(GwVdpaDevice *d, GwVdpaArea *a, size_t off, size_t len,
                      uint8_t perm, GError **errp);
void gw_vdpa_area_unmap(GwVdpaDevice *d, GwVdpaArea *a);
void gw_vdpa_area_release(GwVdpaArea *a);

/*
 * A network device's control queue on a ring of the VMM's own
 * (net-cvq.c): the relay's ring from the device's start, which the
 * restore's replay uses first.
 *
 * gw_vdpa_net_cvq_blocker: why the device's control-queue state cannot
 * migrate (its driver negotiated GUEST_ANNOUNCE, RSS, HASH_REPORT, a
 * notification coalescing feature, or — with no relay — any feature
 * with control-queue state), or NULL.
 *
 * gw_vdpa_cvq_open sets queue `idx` up (size, addresses, base, eventfds,
 * enable) on a ring of the VMM's own, sized as the guest's `q`, at
 * q->last_avail - n_cmds (it stops a relay first: one VMM ring at a
 * time).  Before DRIVER_OK.  gw_vdpa_cvq_free closes the ring's
 * eventfds and frees it; its memory stays mapped, idle.  False with
 * *errp on failure.
 */
typedef struct GwVdpaCvq GwVdpaCvq;

char *gw_vdpa_net_cvq_blocker(const GwVdpaDevice *d);
/* The VMM ring's memory for queues of up to `max` entries, and its IOVAs
 * (held: no other area takes them); released with the device.  Main
 * thread. */
bool gw_vdpa_cvq_prepare(GwVdpaDevice *d, uint16_t max, GError **errp);
void gw_vdpa_cvq_release(GwVdpaDevice *d);
/* Maps the VMM ring's memory (again, after a reset dropped the maps). */
bool gw_vdpa_cvq_map(GwVdpaDevice *d, GError **errp);
GwVdpaCvq *gw_vdpa_cvq_open(GwVdpaDevice *d, unsigned idx,
                            const GwVirtqueueSetup *q, unsigned n_cmds,
                            GError **errp);
void gw_vdpa_cvq_free(GwVdpaCvq *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwVdpaCvq, gw_vdpa_cvq_free)

/*
 * gw_vdpa_cvq_send puts one command (`len` <= GW_VDPA_CVQ_CMD_MAX bytes:
 * header and data) on the VMM ring and waits (bounded) for its used
 * entry; *ack is the device's ack (VIRTIO_NET_ERR for a used entry
 * without one).  False with *errp if the device did not answer.
 */
bool gw_vdpa_cvq_send(GwVdpaCvq *c, const void *cmd, size_t len, uint8_t *ack,
                      GError **errp);

/*
 * The control queue's index for negotiated `features`: 2 x
 * max_virtqueue_pairs (config) with MQ, else 2.
 */
unsigned gw_vdpa_net_cvq_index(GwVdpaDevice *d, uint64_t features);

/*
 * The carried state (net-cvq.c).  gw_vdpa_net_ctrl_reset: as a device
 * starts (one pair, promiscuous, nothing else).  gw_vdpa_net_ctrl_record:
 * the command `cmd` (`len` bytes, header first) was acked OK: note what
 * it set.  gw_vdpa_net_ctrl_replay: MAC, MQ, offloads, RX mode, MAC
 * table, VLANs (QEMU's order), each on `c` and needing VIRTIO_NET_OK,
 * for what `features` negotiated; *n_cmds (if not NULL) counts them
 * without sending anything.  save_state/load_state: the "vdpa-net-ctrl"
 * encoding into/from the virtio-pci section's dev_state.
 */
void gw_vdpa_net_ctrl_reset(GwVdpaNetCtrl *s);
void gw_vdpa_net_ctrl_record(GwVdpaNetCtrl *s, const uint8_t *cmd, size_t len);
bool gw_vdpa_net_ctrl_replay(GwVdpaDevice *d, GwVdpaCvq *c, uint64_t features,
                             const uint8_t mac[6], unsigned *n_cmds,
                             GError **errp);
/*
 * The mac= of a hot-added virtio-net-pci (gw_vdpa_device_set_mac) on a
 * device that takes a MAC as a control command: gw_vdpa_net_plug_mac
 * sends it on `c` at the driver's start (if it negotiated CTRL_MAC_ADDR);
 * gw_vdpa_net_config_overlay shows it in config reads until then.
 */
bool gw_vdpa_net_plug_mac(GwVdpaDevice *d, GwVdpaCvq *c, uint64_t features,
                          GError **errp);
void gw_vdpa_net_config_overlay(GwVdpaDevice *d, unsigned off, uint8_t *buf,
                                unsigned len);

/* The GwVirtioDeviceOps save_state / load_state (opaque: the device). */
bool gw_vdpa_net_ctrl_save(void *opaque, uint8_t *buf, unsigned max,
                           unsigned *len, GError **errp);
bool gw_vdpa_net_ctrl_load(void *opaque, const uint8_t *buf, unsigned len,
                           GError **errp);

/*
 * The VMM's relay of a network device's control queue (cvq-relay.c),
 * from the device's start: the device works on a VMM ring (GwVdpaCvq)
 * with the VMM's eventfds, and a main-loop watch on the guest's kick
 * takes each guest chain (checked: bounds, loops, lengths), sends it on
 * the VMM ring, waits (bounded) for the ack, writes it into the guest's
 * status byte (gw_mem_write: dirty-tracked), completes the guest's used
 * ring and signals its call eventfd.  What an OK ack set is recorded
 * in d->net_ctrl.  A chain that breaks the rules is answered
 * VIRTIO_NET_ERR (or completed with length 0 if it has no status byte)
 * and never reaches the device.
 *
 * gw_vdpa_cvq_relay_applies: whether activation `a` gets the relay
 * (a network device, CTRL_VQ negotiated, its control queue enabled, a
 * split ring); *idx is the queue.  gw_vdpa_cvq_relay_start takes `c`
 * (the VMM ring at the guest's index, set up on the device) and watches
 * the guest's ring `q` from its index q->last_avail.  gw_vdpa_cvq_relay_stop
 * removes the watch and frees the VMM ring (unmapped).  Device lock
 * held, any thread; the watch runs on the main loop and takes the lock.
 */
bool gw_vdpa_cvq_relay_applies(GwVdpaDevice *d, const GwVirtioActivation *a,
                               unsigned *idx);
void gw_vdpa_cvq_relay_start(GwVdpaDevice *d, unsigned idx, GwVdpaCvq *c,
                             const GwVirtqueueSetup *q);
void gw_vdpa_cvq_relay_stop(GwVdpaDevice *d);
/* The guest ring's index the relay stands at (used = avail). */
uint16_t gw_vdpa_cvq_relay_index(const GwVdpaDevice *d);
/* Makes the relay look at the guest's ring (after a RESUME). */
void gw_vdpa_cvq_relay_poke(GwVdpaDevice *d);
