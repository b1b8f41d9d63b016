/*
 * The ioctls of a simulated vhost-vdpa device, in the kernel's order of
 * checks: vhost_vdpa_unlocked_ioctl -> vhost_dev_ioctl (SET_OWNER, owner
 * check) -> vhost_vdpa_vring_ioctl (vring index, ENOBUFS) ->
 * vhost_vring_ioctl -> the vdpa_sim config ops.  A NULL `arg` where the
 * kernel copies from or to user memory gives EFAULT, as a bad pointer
 * would.  Runs on the calling thread with dev->lock held (taken in
 * gw_sim_dev_ioctl), except SET_BACKEND_FEATURES's checks, which the
 * kernel also makes before taking its mutex.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <godwit/vdpa-sim.h>
#include "sim-priv.h"

#define BIT(n) (1ull << (n))

/* vhost_vdpa's VHOST_VDPA_BACKEND_FEATURES plus the optional bits. */
static const uint64_t backend_known =
    BIT(VHOST_BACKEND_F_IOTLB_MSG_V2) | BIT(VHOST_BACKEND_F_IOTLB_BATCH) |
    BIT(VHOST_BACKEND_F_IOTLB_ASID) | BIT(VHOST_BACKEND_F_DESC_ASID) |
    BIT(VHOST_BACKEND_F_IOTLB_PERSIST) | BIT(VHOST_BACKEND_F_SUSPEND) |
    BIT(VHOST_BACKEND_F_RESUME) | BIT(VHOST_BACKEND_F_ENABLE_AFTER_DRIVER_OK);

/* What vdpa_sim offers: everything but DESC_ASID (0x17E). */
static const uint64_t backend_offered =
    BIT(VHOST_BACKEND_F_IOTLB_MSG_V2) | BIT(VHOST_BACKEND_F_IOTLB_BATCH) |
    BIT(VHOST_BACKEND_F_IOTLB_ASID) | BIT(VHOST_BACKEND_F_IOTLB_PERSIST) |
    BIT(VHOST_BACKEND_F_SUSPEND) | BIT(VHOST_BACKEND_F_RESUME) |
    BIT(VHOST_BACKEND_F_ENABLE_AFTER_DRIVER_OK);

/* vhost_vdpa_can_suspend / _can_resume: the device has the ops. */
#define SUSPEND_RESUME                                                         \
    (BIT(VHOST_BACKEND_F_SUSPEND) | BIT(VHOST_BACKEND_F_RESUME))

#define COPY_OUT(arg, val)                                                     \
    ((arg) ? (memcpy((arg), &(val), sizeof(val)), 0) : -EFAULT)

static int
set_backend_features(GwVdpaSimDev *d, const uint64_t *arg)
{
    uint64_t f;

    if (!arg) {
        return -EFAULT;
    }
    f = *arg;
    if (f & ~backend_known) {
        return -EOPNOTSUPP;
    }
    if ((f & BIT(VHOST_BACKEND_F_DESC_ASID)) &&
        !(f & BIT(VHOST_BACKEND_F_IOTLB_ASID))) {
        return -EINVAL;
    }
    if (f & BIT(VHOST_BACKEND_F_DESC_ASID)) {
        return -EOPNOTSUPP; /* vdpa_sim has no get_vq_desc_group */
    }
    pthread_mutex_lock(&d->lock);
    if (((f & SUSPEND_RESUME) && d->no_suspend) ||
        ((f & BIT(VHOST_BACKEND_F_ENABLE_AFTER_DRIVER_OK)) &&
         d->no_late_enable)) {
        pthread_mutex_unlock(&d->lock);
        return -EOPNOTSUPP;
    }
    d->backend_features = f;
    pthread_mutex_unlock(&d->lock);
    return 0;
}

/* eventfd_fget: EBADF for no file, EINVAL for a file that is no eventfd. */
static int
check_eventfd(int fd)
{
    char path[64], target[64];
    ssize_t n;

    if (fd < 0 || fcntl(fd, F_GETFD) < 0) {
        return -EBADF;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    n = readlink(path, target, sizeof(target) - 1);
    if (n < 0) {
        return -EBADF;
    }
    target[n] = '\0';
    return strcmp(target, "anon_inode:[eventfd]") == 0 ? 0 : -EINVAL;
}

/* Binds a dup of `fd` (or unbinds for -1) into *slot. */
static int
bind_eventfd(int fd, int *slot)
{
    int r = fd == VHOST_FILE_UNBIND ? 0 : check_eventfd(fd);
    int copy = -1;

    if (r < 0) {
        return r;
    }
    if (fd != VHOST_FILE_UNBIND) {
        copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (copy < 0) {
            return -errno;
        }
    }
    if (*slot >= 0) {
        close(*slot);
    }
    *slot = copy;
    return 0;
}

static int
set_status(GwVdpaSimDev *d, const uint8_t *arg)
{
    uint8_t status;

    if (!arg) {
        return -EFAULT;
    }
    status = *arg;
    if (status != 0 && (d->status & ~status) != 0) {
        return -EINVAL;
    }
    if (status == 0) {
        d->suspended = false;
        gw_sim_dev_reset(
            d, !(d->backend_features & BIT(VHOST_BACKEND_F_IOTLB_PERSIST)));
    } else {
        d->status = status;
    }
    return 0;
}

/* vhost_vdpa_config_validate; every failure is EINVAL to the caller. */
static int
config_check(GwVdpaSimDev *d, const struct vhost_vdpa_config *c)
{
    uint32_t size = d->type->config_size;

    if (!c) {
        return -EFAULT;
    }
    if (c->len == 0 || c->off > size || c->len > size - c->off) {
        return -EINVAL;
    }
    return 0;
}

static int
get_config(GwVdpaSimDev *d, struct vhost_vdpa_config *c)
{
    int r = config_check(d, c);

    if (r < 0) {
        return r;
    }
    /* vdpa_get_config: a read before SET_FEATURES negotiates nothing. */
    d->features_valid = true;
    if (d->type->get_config) {
        d->type->get_config(d);
    }
    memcpy(c->buf, d->config + c->off, c->len);
    return 0;
}

static int
set_config(GwVdpaSimDev *d, const struct vhost_vdpa_config *c)
{
    int r = config_check(d, c);

    if (r < 0) {
        return r;
    }
    for (uint32_t i = 0; i < c->len; i++) {
        /* The MAC is bytes 0-5 of virtio_net_config. */
        if (!(d->ignore_mac_config && d->type->device_id == VIRTIO_ID_NET &&
              c->off + i < 6)) {
            d->config[c->off + i] = c->buf[i];
        }
    }
    return 0;
}

static int
set_features(GwVdpaSimDev *d, const uint64_t *arg)
{
    if (d->status & VIRTIO_CONFIG_S_FEATURES_OK) {
        return -EBUSY;
    }
    if (!arg) {
        return -EFAULT;
    }
    d->features_valid = true;
    if (!(*arg & BIT(VIRTIO_F_ACCESS_PLATFORM))) {
        return -EINVAL; /* DMA mapping must be done by the driver */
    }
    d->features = *arg & gw_sim_dev_features(d);
    return 0;
}

static int
suspend(GwVdpaSimDev *d)
{
    if (!(d->status & VIRTIO_CONFIG_S_DRIVER_OK)) {
        return 0;
    }
    if (d->no_suspend) {
        return -EOPNOTSUPP;
    }
    if (d->fail_suspend) {
        d->fail_suspend = false;
        return -EIO;
    }
    /* Holding the lock means the worker is between requests. */
    d->running = false;
    d->suspended = true;
    return 0;
}

static int
resume(GwVdpaSimDev *d)
{
    if (!(d->status & VIRTIO_CONFIG_S_DRIVER_OK)) {
        return 0;
    }
    if (d->no_suspend) {
        return -EOPNOTSUPP;
    }
    if (d->fail_resume) {
        d->fail_resume = false;
        return -EIO;
    }
    d->running = true;
    if (d->pending_kick) {
        for (unsigned i = 0; i < d->nvqs; i++) {
            gw_sim_dev_kick_vq(d, i);
        }
        d->pending_kick = false;
    }
    d->suspended = false;
    return 0;
}

static int
set_vq_ready(GwVdpaSimDev *d, SimVq *vq, bool ready)
{
    bool old = vq->ready;

    if (ready && !old && d->no_late_enable &&
        (d->status & VIRTIO_CONFIG_S_DRIVER_OK)) {
        return -EINVAL; /* the hook's device enables before DRIVER_OK only */
    }
    vq->ready = ready;
    if (ready && !old) {
        /* vdpasim_queue_ready: no inflight buffers, used = avail. */
        vq->last_used = vq->last_avail;
    }
    return 0;
}

/* vdpasim_net: the control queue in group 1, the data queues in 0. */
static unsigned
vq_group(const GwVdpaSimDev *d, unsigned idx)
{
    return d->type->ngroups > 1 && idx == gw_sim_net_cvq_index(d) ? 1 : 0;
}

/* The vhost_vdpa_vring_ioctl cases answered before vhost_vring_ioctl. */
static int
vring_pre(GwVdpaSimDev *d, unsigned long req, unsigned idx,
          struct vhost_vring_state *s, bool *done)
{
    SimVq *vq = &d->vqs[idx];

    *done = true;
    switch (req) {
    case VHOST_VDPA_SET_VRING_ENABLE:
        return set_vq_ready(d, vq, s->num != 0);
    case VHOST_VDPA_GET_VRING_GROUP:
        s->num = vq_group(d, idx);
        return 0;
    case VHOST_VDPA_GET_VRING_DESC_GROUP:
        return -EOPNOTSUPP;
    case VHOST_VDPA_SET_GROUP_ASID:
        if (s->num >= d->type->nas || idx >= d->type->ngroups) {
            return -EINVAL;
        }
        for (unsigned i = 0; i < d->nvqs; i++) {
            if (vq_group(d, i) == idx) {
                d->vqs[i].asid = s->num;
            }
        }
        return 0;
    case VHOST_VDPA_GET_VRING_SIZE:
        s->num = (d->status & VIRTIO_CONFIG_S_DRIVER_OK) ? vq->dev_num
                                                         : SIM_QUEUE_MAX;
        return 0;
    }
    *done = false;
    return 0;
}

static bool
frozen(GwVdpaSimDev *d)
{
    return (d->status & VIRTIO_CONFIG_S_DRIVER_OK) && !d->suspended;
}

static int
set_vring_addr(GwVdpaSimDev *d, SimVq *vq, const struct vhost_vring_addr *a)
{
    if (a->flags & ~(1u << VHOST_VRING_F_LOG)) {
        return -EOPNOTSUPP;
    }
    if ((a->avail_user_addr & 1) || (a->used_user_addr & 3) ||
        (a->log_guest_addr & 3)) {
        return -EINVAL;
    }
    if (frozen(d)) {
        return -EINVAL;
    }
    vq->desc = a->desc_user_addr;
    vq->driver = a->avail_user_addr;
    vq->device = a->used_user_addr;
    return 0;
}

static int
set_vring_num(SimVq *vq, uint32_t num)
{
    if (!num || num > 0xffff || (num & (num - 1))) {
        return -EINVAL;
    }
    vq->num = num;
    vq->dev_num = num;
    return 0;
}

static int
set_vring_base(GwVdpaSimDev *d, SimVq *vq, uint32_t num)
{
    if (num > 0xffff) {
        return -EINVAL; /* split ring: RING_PACKED is not offered */
    }
    if (frozen(d)) {
        return -EINVAL;
    }
    vq->last_avail = num;
    return 0;
}

static int
set_vring_kick(GwVdpaSimDev *d, SimVq *vq, int fd)
{
    int slot = -1;
    int r = bind_eventfd(fd, &slot);

    if (r == 0) {
        gw_sim_dev_retire_kick(d, vq);
        vq->kick_fd = slot;
        eventfd_write(d->wake_fd, 1); /* re-poll the new fd */
    }
    return r;
}

/* vhost_vring_ioctl plus the vdpa follow-ups; ENOTTY when unknown. */
static int
vring_common(GwVdpaSimDev *d, unsigned long req, SimVq *vq, void *arg)
{
    struct vhost_vring_state *s = arg;
    struct vhost_vring_file *f = arg;
    int r;

    switch (req) {
    case VHOST_SET_VRING_NUM:
        return set_vring_num(vq, s->num);
    case VHOST_SET_VRING_ADDR:
        return set_vring_addr(d, vq, arg);
    case VHOST_SET_VRING_BASE:
        return set_vring_base(d, vq, s->num);
    case VHOST_GET_VRING_BASE:
        s->num = vq->last_avail; /* get_vq_state */
        return 0;
    case VHOST_SET_VRING_KICK:
        return set_vring_kick(d, vq, f->fd);
    case VHOST_SET_VRING_CALL:
        r = bind_eventfd(f->fd, &vq->call_fd);
        if (r == 0) {
            vq->cb = vq->call_fd >= 0; /* set_vq_cb */
        }
        return r;
    case VHOST_SET_VRING_ERR:
        return bind_eventfd(f->fd, &vq->err_fd);
    case VHOST_SET_VRING_BUSYLOOP_TIMEOUT:
        vq->busyloop_timeout = s->num;
        return 0;
    case VHOST_GET_VRING_BUSYLOOP_TIMEOUT:
        s->num = vq->busyloop_timeout;
        return 0;
    default:
        return -ENOTTY; /* VRING_ENDIAN too: no cross-endian support */
    }
}

/* vhost_vdpa_vring_ioctl: the vring index is the first u32 of arg. */
static int
vring_ioctl(GwVdpaSimDev *d, unsigned long req, void *arg)
{
    uint32_t idx;
    bool done;
    int r;

    if (!arg) {
        return -EFAULT;
    }
    memcpy(&idx, arg, sizeof(idx));
    if (idx >= d->nvqs) {
        return -ENOBUFS;
    }
    r = vring_pre(d, req, idx, arg, &done);
    return done ? r : vring_common(d, req, &d->vqs[idx], arg);
}

/* vhost_dev_ioctl: SET_OWNER, then only the owner gets further. */
static int
dev_ioctl(GwVdpaSimDev *d, unsigned long req, void *arg)
{
    struct vhost_memory *mem = arg;

    if (req == VHOST_SET_OWNER) {
        if (d->owned) {
            return -EBUSY;
        }
        d->owned = true;
        return 0;
    }
    if (!d->owned) {
        return -EPERM;
    }
    if (req != VHOST_SET_MEM_TABLE) {
        return vring_ioctl(d, req, arg);
    }
    /* vhost_set_memory: accepted and meaningless for vhost-vdpa. */
    if (!mem) {
        return -EFAULT;
    }
    return mem->padding ? -EOPNOTSUPP : mem->nregions > 64 ? -E2BIG : 0;
}

/* The device queries of vhost_vdpa_unlocked_ioctl; ENOIOCTLCMD if not. */
#define NOT_A_QUERY (-1000)

static int
query(GwVdpaSimDev *d, unsigned long req, void *arg)
{
    uint32_t u32;
    uint64_t u64;
    uint16_t u16 = SIM_QUEUE_MAX;
    struct vhost_vdpa_iova_range range = {
        0, d->narrow_iova ? GW_SIM_NARROW_IOVA_LAST : UINT64_MAX};

    switch (req) {
    case VHOST_VDPA_GET_DEVICE_ID:
        return COPY_OUT(arg, d->type->device_id);
    case VHOST_VDPA_GET_STATUS:
        return COPY_OUT(arg, d->status);
    case VHOST_GET_FEATURES:
        u64 = gw_sim_dev_features(d);
        return COPY_OUT(arg, u64);
    case VHOST_VDPA_GET_VRING_NUM:
        return COPY_OUT(arg, u16);
    case VHOST_VDPA_GET_GROUP_NUM:
        u32 = d->type->ngroups;
        return COPY_OUT(arg, u32);
    case VHOST_VDPA_GET_AS_NUM:
        u32 = d->type->nas;
        return COPY_OUT(arg, u32);
    case VHOST_GET_BACKEND_FEATURES:
        u64 = backend_offered & ~(d->no_suspend ? SUSPEND_RESUME : 0) &
              ~(d->no_late_enable ? BIT(VHOST_BACKEND_F_ENABLE_AFTER_DRIVER_OK)
                                  : 0);
        return COPY_OUT(arg, u64);
    case VHOST_VDPA_GET_IOVA_RANGE:
        return COPY_OUT(arg, range);
    case VHOST_VDPA_GET_CONFIG_SIZE:
        return COPY_OUT(arg, d->type->config_size);
    case VHOST_VDPA_GET_VQS_COUNT:
        u32 = d->nvqs;
        return COPY_OUT(arg, u32);
    }
    return NOT_A_QUERY;
}

static int
locked_ioctl(GwVdpaSimDev *d, unsigned long req, void *arg)
{
    int r = query(d, req, arg);

    if (r != NOT_A_QUERY) {
        return r;
    }
    switch (req) {
    case VHOST_VDPA_SET_STATUS:
        return set_status(d, arg);
    case VHOST_VDPA_GET_CONFIG:
        return get_config(d, arg);
    case VHOST_VDPA_SET_CONFIG:
        return set_config(d, arg);
    case VHOST_SET_FEATURES:
        return set_features(d, arg);
    case VHOST_SET_LOG_BASE:
    case VHOST_SET_LOG_FD:
        return -ENOTTY; /* no dirty log in vhost-vdpa */
    case VHOST_VDPA_SET_CONFIG_CALL:
        return arg ? bind_eventfd(*(int *)arg, &d->config_call_fd) : -EFAULT;
    case VHOST_VDPA_SUSPEND:
        return suspend(d);
    case VHOST_VDPA_RESUME:
        return resume(d);
    default:
        return dev_ioctl(d, req, arg);
    }
}

int
gw_sim_dev_ioctl(GwVdpaSimDev *d, unsigned long req, void *arg)
{
    int r;

    if (req == VHOST_SET_BACKEND_FEATURES) {
        return set_backend_features(d, arg);
    }
    pthread_mutex_lock(&d->lock);
    r = locked_ioctl(d, req, arg);
    pthread_mutex_unlock(&d->lock);
    return r;
}
