/*
 * sim-priv: the simulator's internal state, shared by the files of
 * src/vdpa/sim/.  Locking is described in device.c; in short, every
 * field of GwVdpaSimDev below `lock` is guarded by it, and the worker
 * thread holds it for each batch of requests it processes.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <glib.h>
#include <godwit/config.h>
#include <godwit/vhost-uapi.h>

#define SIM_NET_PAIRS  GW_VDPA_SIM_NET_MAX_PAIRS
#define SIM_MAX_VQS    (2 * SIM_NET_PAIRS + 1)
#define SIM_MAC_TABLE  32 /* per class; more sets the class's overflow */
#define SIM_MAX_AS     2
#define SIM_QUEUE_MAX  256
#define SIM_NET_BUF    4096
#define SIM_BATCH_REQS 4 /* the kernel sim yields after more than this */

typedef struct GwVdpaSimDev GwVdpaSimDev;

/* One IOTLB entry: [start, last] -> uaddr, as vhost_iotlb_map. */
typedef struct {
    uint64_t start;
    uint64_t last;
    uint64_t uaddr;
    uint8_t perm;
    bool dev; /* also in the device's own map (what DMA uses) */
} SimMap;

/* One address space: vhost-vdpa's iotlb; `dev` marks the device's. */
typedef struct {
    bool allocated; /* vhost_vdpa_find_alloc_as() happened */
    GArray *maps;   /* SimMap, sorted by start, never overlapping */
} SimAs;

/* A descriptor chain being processed, with read/write cursors. */
typedef struct {
    uint64_t addr;
    uint32_t len;
} SimSeg;

typedef struct {
    uint16_t head;
    SimSeg *segs; /* n_out readable then n_in writable */
    unsigned cap;
    unsigned n_out, n_in;
    size_t out_len, in_len;
    unsigned out_seg, in_seg; /* cursors: segment and offset in it */
    uint32_t out_off, in_off;
} SimChain;

typedef struct {
    /* vhost level (struct vhost_virtqueue) */
    uint32_t num;
    int kick_fd; /* dup()ed eventfds, -1 = unbound */
    int call_fd;
    int err_fd;
    uint32_t busyloop_timeout;
    /* device level (struct vdpasim_virtqueue) */
    uint32_t dev_num; /* set_vq_num; survives reset like the kernel */
    bool ready;
    bool cb; /* a call callback is installed */
    uint64_t desc, driver, device;
    uint16_t last_avail, last_used;
    uint32_t asid;
    SimChain chain;
} SimVq;

typedef struct {
    const char *mgmtdev;
    uint32_t device_id;
    uint64_t features;
    unsigned nvqs, ngroups, nas;
    uint32_t config_size;
    /* Refreshes dev->config before a read (under lock). */
    void (*get_config)(GwVdpaSimDev *d);
    /* One run of the data path (worker, under lock): true = more to do. */
    bool (*work)(GwVdpaSimDev *d);
} SimType;

/*
 * A network device's control-queue state (net-ctrl.c), as QEMU's
 * VirtIONet keeps it: what MQ, CTRL_RX, CTRL_RX_EXTRA and CTRL_VLAN set.
 * `offer` and `max_pairs` are fixed at creation.
 */
typedef struct {
    uint64_t offer;     /* features= opt-in bits */
    uint16_t max_pairs; /* 1 without mq */
    uint16_t pairs;     /* VQ_PAIRS_SET; 1 after reset */
    bool promisc, allmulti, alluni, nomulti, nouni, nobcast;
    bool uni_overflow, multi_overflow;
    unsigned n_uni, n_multi;
    uint8_t uni[SIM_MAC_TABLE][6], multi[SIM_MAC_TABLE][6];
    uint32_t vlans[4096 / 32];
    bool refuse; /* GW_VDPA_SIM_FAIL_REFUSE_CTRL */
} SimNet;

struct GwVdpaSimDev {
    gint refcount;
    char *name;
    const SimType *type;
    unsigned nvqs; /* type->nvqs, or 2 * max_pairs + 1 for mq */

    /* blk storage (immutable after creation) */
    uint8_t *storage;
    uint64_t capacity; /* bytes */
    size_t storage_len;
    bool storage_shared; /* a backing= file, not private memory */

    GThread *thread;
    int wake_fd; /* eventfd: wakes the worker */

    pthread_mutex_t lock; /* pthread, not GMutex: visible to TSan */
    bool stop;
    bool work_pending;
    GArray *retired_fds; /* kick fds to close once the worker re-polls */
    bool opened;
    bool owned;
    uint64_t backend_features; /* acked */
    uint64_t features;
    bool features_valid;
    uint8_t status;
    bool running;      /* vdpasim->running: false while suspended */
    bool pending_kick; /* kicks seen while suspended */
    bool suspended;    /* vhost_vdpa->suspended */
#define GW_SIM_NARROW_IOVA_LAST ((1ull << 39) - 1)
    bool in_batch;
    uint32_t batch_asid;
    int config_call_fd;
    bool fail_suspend, fail_resume;
    bool no_suspend; /* no .suspend/.resume (GW_VDPA_SIM_FAIL_NO_SUSPEND) */
    bool ignore_mac_config;  /* GW_VDPA_SIM_FAIL_IGNORE_MAC_CONFIG */
    uint64_t extra_features; /* GW_VDPA_SIM_FAIL_OFFER_CTRL_RX */
    bool narrow_iova;        /* IOVAs 0..GW_SIM_NARROW_IOVA_LAST only */
    bool no_late_enable;     /* GW_VDPA_SIM_FAIL_NO_ENABLE_AFTER_DRIVER_OK */
    SimNet net;
    SimVq vqs[SIM_MAX_VQS];
    SimAs as[SIM_MAX_AS];
    /* The process's mappings as /proc/self/maps last listed them
     * (iotlb.c), for a thread whose sandbox cannot open it; or NULL. */
    GArray *vmas;
    uint8_t config[GW_VIRTIO_BLK_CONFIG_SIZE];
    uint8_t net_buf[SIM_NET_BUF];
};

extern const SimType gw_sim_blk_type;
extern const SimType gw_sim_net_type;

/* net-ctrl.c (under lock, but setup and parse) */
bool gw_sim_net_setup(GwVdpaSimDev *d, const GwVdpaSimConfig *cfg,
                      GError **errp);
void gw_sim_net_reset(GwVdpaSimDev *d);
/* The control queue's index: 2 * max_pairs with MQ negotiated, else 2. */
unsigned gw_sim_net_cvq_index(const GwVdpaSimDev *d);
/* One control command, its header already pulled: the ack, or -EFAULT. */
int gw_sim_net_ctrl(GwVdpaSimDev *d, SimVq *cvq, uint8_t class, uint8_t cmd);
/* Whether a frame (from its Ethernet header, `len` bytes) is received. */
bool gw_sim_net_accepts(const GwVdpaSimDev *d, const uint8_t *eth, size_t len);
/* Features the device offers: its type's, the opt-in and the hooks'. */
uint64_t gw_sim_dev_features(const GwVdpaSimDev *d);

/* device.c */
GwVdpaSimDev *gw_sim_dev_new(const GwVdpaSimConfig *cfg, GError **errp);
GwVdpaSimDev *gw_sim_dev_ref(GwVdpaSimDev *d);
void gw_sim_dev_unref(GwVdpaSimDev *d);
bool gw_sim_dev_open(GwVdpaSimDev *d);
void gw_sim_dev_close(GwVdpaSimDev *d);
bool gw_sim_dev_is_open(GwVdpaSimDev *d);
void gw_sim_dev_inject(GwVdpaSimDev *d, int what);
/* Under lock: */
void gw_sim_dev_reset(GwVdpaSimDev *d, bool clean_map);
void gw_sim_dev_kick_vq(GwVdpaSimDev *d, unsigned idx);
void gw_sim_dev_schedule(GwVdpaSimDev *d);
void gw_sim_dev_fail(GwVdpaSimDev *d, const char *why);
void gw_sim_dev_retire_kick(GwVdpaSimDev *d, SimVq *vq);
void gw_sim_signal(int fd);

/* ioctl.c */
int gw_sim_dev_ioctl(GwVdpaSimDev *d, unsigned long request, void *arg);

/* iotlb.c */
ssize_t gw_sim_dev_write(GwVdpaSimDev *d, const void *buf, size_t len);
void gw_sim_as_clear(SimAs *as);
/* DMA through the device map of `asid` (under lock): 0 or -EFAULT. */
int gw_sim_dma_read(GwVdpaSimDev *d, uint32_t asid, uint64_t iova, void *dst,
                    size_t len);
int gw_sim_dma_write(GwVdpaSimDev *d, uint32_t asid, uint64_t iova,
                     const void *src, size_t len);
/* Host pointer for [iova, iova+len) if one mapping covers it, else NULL. */
void *gw_sim_dma_ptr(GwVdpaSimDev *d, uint32_t asid, uint64_t iova, size_t len,
                     uint8_t perm);

/* vring.c (under lock) */
int gw_sim_vring_pop(GwVdpaSimDev *d, SimVq *vq);
ssize_t gw_sim_chain_pull(GwVdpaSimDev *d, SimVq *vq, void *dst, size_t len);
ssize_t gw_sim_chain_push(GwVdpaSimDev *d, SimVq *vq, const void *src,
                          size_t len);
void gw_sim_chain_skip_in(SimVq *vq, size_t len);
int gw_sim_vring_complete(GwVdpaSimDev *d, SimVq *vq, uint32_t len);
void gw_sim_vring_notify(GwVdpaSimDev *d, SimVq *vq);
