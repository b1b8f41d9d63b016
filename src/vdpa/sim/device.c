/*
 * A simulated vDPA device: lifecycle, reset, and its worker thread.
 *
 * Threads and locks:
 * - Any thread (through the seam): gw_sim_dev_ioctl(), gw_sim_dev_write(),
 *   open/close, inject.  Each takes dev->lock for the whole call, as the
 *   kernel holds vhost_dev.mutex around an ioctl.
 * - The worker thread (worker_main): polls wake_fd and the kick eventfds
 *   without the lock, then takes dev->lock to account a kick and again
 *   for each batch of requests (at most SIM_BATCH_REQS + 1 per vq, like
 *   vdpasim_blk_work).  A request is popped, executed and completed
 *   within one hold of the lock, so an ioctl — SUSPEND, GET_VRING_BASE —
 *   never sees a request half done.
 * - dev->lock guards every field of GwVdpaSimDev from `stop` down.  Kick
 *   fds being replaced are not closed by the ioctl (the worker may be
 *   polling them) but moved to retired_fds, closed by the worker when
 *   it next rebuilds its poll set.  name, type, storage, capacity,
 *   wake_fd and thread are set at creation and never change.
 * - refcount is atomic: the registry holds one reference, each open
 *   backend another.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <godwit/log.h>
#include <godwit/sandbox.h>
#include <godwit/util.h>
#include <godwit/vdpa-sim.h>
#include "sim-priv.h"

void
gw_sim_signal(int fd)
{
    if (fd >= 0) {
        eventfd_write(fd, 1);
    }
}

void
gw_sim_dev_schedule(GwVdpaSimDev *d)
{
    d->work_pending = true;
    eventfd_write(d->wake_fd, 1);
}

/* vdpasim_kick_vq */
void
gw_sim_dev_kick_vq(GwVdpaSimDev *d, unsigned idx)
{
    if (!d->running && (d->status & VIRTIO_CONFIG_S_DRIVER_OK)) {
        d->pending_kick = true;
        return;
    }
    if (d->vqs[idx].ready) {
        gw_sim_dev_schedule(d);
    }
}

void
gw_sim_dev_fail(GwVdpaSimDev *d, const char *why)
{
    if (!(d->status & VIRTIO_CONFIG_S_NEEDS_RESET)) {
        gw_message_ratelimited("vdpa-sim %s: %s: device needs reset", d->name,
                               why);
    }
    d->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
    gw_sim_signal(d->config_call_fd);
}

void
gw_sim_dev_retire_kick(GwVdpaSimDev *d, SimVq *vq)
{
    if (vq->kick_fd >= 0) {
        g_array_append_val(d->retired_fds, vq->kick_fd);
        vq->kick_fd = -1;
        eventfd_write(d->wake_fd, 1);
    }
}

/* vdpasim_do_reset: the device forgets vq addresses, callbacks, state. */
void
gw_sim_dev_reset(GwVdpaSimDev *d, bool clean_map)
{
    for (unsigned i = 0; i < d->nvqs; i++) {
        SimVq *vq = &d->vqs[i];

        vq->ready = false;
        vq->cb = false;
        vq->desc = vq->driver = vq->device = 0;
        vq->last_avail = vq->last_used = 0;
        vq->asid = 0;
    }
    for (unsigned a = 0; clean_map && a < d->type->nas; a++) {
        GArray *maps = d->as[a].maps;

        for (guint i = 0; i < maps->len; i++) {
            g_array_index(maps, SimMap, i).dev = false;
        }
    }
    if (d->type->device_id == VIRTIO_ID_NET) {
        gw_sim_net_reset(d);
    }
    d->running = true;
    d->features = 0;
    d->features_valid = false;
    d->status = 0;
}

/* Runs queued work, releasing the lock between batches. */
static void
run_work(GwVdpaSimDev *d)
{
    pthread_mutex_lock(&d->lock);
    while (d->work_pending && !d->stop) {
        d->work_pending = false;
        /*
         * Work queued before a SUSPEND is remembered for RESUME.  The
         * kernel sim drops it here (its work item sees !running and
         * returns), leaving requests until the next kick.
         */
        if ((d->status & VIRTIO_CONFIG_S_DRIVER_OK) && !d->running) {
            d->pending_kick = true;
        }
        if ((d->status & VIRTIO_CONFIG_S_DRIVER_OK) && d->running &&
            !(d->status & VIRTIO_CONFIG_S_NEEDS_RESET) && d->type->work(d)) {
            d->work_pending = true;
        }
        pthread_mutex_unlock(&d->lock);
        pthread_mutex_lock(&d->lock);
    }
    pthread_mutex_unlock(&d->lock);
}

/* Fills fds (wake fd first) and idx; false once the device stops. */
static bool
build_poll(GwVdpaSimDev *d, struct pollfd *fds, int *idx, nfds_t *n)
{
    bool go;

    pthread_mutex_lock(&d->lock);
    for (guint i = 0; i < d->retired_fds->len; i++) {
        close(g_array_index(d->retired_fds, int, i));
    }
    g_array_set_size(d->retired_fds, 0);
    fds[0] = (struct pollfd){.fd = d->wake_fd, .events = POLLIN};
    *n = 1;
    for (unsigned i = 0; i < d->nvqs; i++) {
        if (d->vqs[i].kick_fd >= 0) {
            idx[*n] = i;
            fds[(*n)++] =
                (struct pollfd){.fd = d->vqs[i].kick_fd, .events = POLLIN};
        }
    }
    go = !d->stop;
    pthread_mutex_unlock(&d->lock);
    return go;
}

static gpointer
worker_main(gpointer data)
{
    GwVdpaSimDev *d = data;
    struct pollfd fds[1 + SIM_MAX_VQS];
    int idx[1 + SIM_MAX_VQS];
    nfds_t n;
    eventfd_t v;

    gw_sandbox_enter_thread(GW_SANDBOX_VDPA_SIM);
    while (build_poll(d, fds, idx, &n)) {
        if (poll(fds, n, -1) < 0) {
            continue; /* EINTR */
        }
        if (fds[0].revents & POLLIN) {
            eventfd_read(d->wake_fd, &v);
        }
        for (nfds_t i = 1; i < n; i++) {
            if ((fds[i].revents & POLLIN) && eventfd_read(fds[i].fd, &v) == 0) {
                pthread_mutex_lock(&d->lock);
                gw_sim_dev_kick_vq(d, idx[i]);
                pthread_mutex_unlock(&d->lock);
            }
        }
        run_work(d);
    }
    return NULL;
}

static bool
blk_storage_anon(GwVdpaSimDev *d, const GwVdpaSimConfig *cfg, GError **errp)
{
    void *p;

    d->capacity = cfg->capacity ? cfg->capacity : 128ull << 20;
    p = mmap(NULL, d->capacity, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        return gw_error_errno(
            errp, errno, "vdpa-sim %s: %" G_GUINT64_FORMAT " bytes of storage",
            cfg->name, d->capacity);
    }
    d->storage = p;
    d->storage_len = d->capacity;
    return true;
}

/* backing=FILE: shared mapping, extended (never shrunk) to capacity. */
static bool
blk_storage_file(GwVdpaSimDev *d, const GwVdpaSimConfig *cfg, GError **errp)
{
    gw_autofd fd = open(cfg->backing, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    struct stat st;
    void *p;

    if (fd < 0 || fstat(fd, &st) < 0) {
        return gw_error_errno(errp, errno, "vdpa-sim %s: backing file %s",
                              cfg->name, cfg->backing);
    }
    d->capacity = cfg->capacity;
    if (!d->capacity) {
        d->capacity =
            st.st_size >= 512 ? (uint64_t)st.st_size & ~511ull : 128ull << 20;
    }
    if ((uint64_t)st.st_size < d->capacity && ftruncate(fd, d->capacity) < 0) {
        return gw_error_errno(errp, errno, "vdpa-sim %s: extending %s",
                              cfg->name, cfg->backing);
    }
    p = mmap(NULL, d->capacity, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        return gw_error_errno(errp, errno, "vdpa-sim %s: mapping %s", cfg->name,
                              cfg->backing);
    }
    d->storage = p;
    d->storage_len = d->capacity;
    d->storage_shared = true;
    return true;
}

static void
dev_init_state(GwVdpaSimDev *d)
{
    pthread_mutex_init(&d->lock, NULL);
    d->retired_fds = g_array_new(false, false, sizeof(int));
    d->config_call_fd = -1;
    for (unsigned i = 0; i < SIM_MAX_VQS; i++) {
        d->vqs[i].kick_fd = d->vqs[i].call_fd = d->vqs[i].err_fd = -1;
        d->vqs[i].dev_num = SIM_QUEUE_MAX;
    }
    for (unsigned a = 0; a < SIM_MAX_AS; a++) {
        d->as[a].maps = g_array_new(false, false, sizeof(SimMap));
    }
    gw_sim_dev_reset(d, true);
}

GwVdpaSimDev *
gw_sim_dev_new(const GwVdpaSimConfig *cfg, GError **errp)
{
    GwVdpaSimDev *d = g_new0(GwVdpaSimDev, 1);
    bool ok;

    d->refcount = 1;
    d->name = g_strdup(cfg->name);
    d->wake_fd = -1;
    d->type =
        cfg->type == GW_VDPA_SIM_BLK ? &gw_sim_blk_type : &gw_sim_net_type;
    d->nvqs = d->type->nvqs;
    dev_init_state(d);
    if (cfg->type == GW_VDPA_SIM_BLK) {
        ok = cfg->backing ? blk_storage_file(d, cfg, errp)
                          : blk_storage_anon(d, cfg, errp);
    } else {
        ok = gw_sim_net_setup(d, cfg, errp);
    }
    d->wake_fd = ok ? eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) : -1;
    if (ok && d->wake_fd < 0) {
        ok = gw_error_errno(errp, errno, "vdpa-sim %s: eventfd", d->name);
    }
    if (!ok) {
        gw_sim_dev_unref(d);
        return NULL;
    }
    d->thread = g_thread_new("vdpa-sim", worker_main, d);
    return d;
}

GwVdpaSimDev *
gw_sim_dev_ref(GwVdpaSimDev *d)
{
    g_atomic_int_inc(&d->refcount);
    return d;
}

static void
close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

void
gw_sim_dev_unref(GwVdpaSimDev *d)
{
    if (!d || !g_atomic_int_dec_and_test(&d->refcount)) {
        return;
    }
    if (d->thread) {
        pthread_mutex_lock(&d->lock);
        d->stop = true;
        eventfd_write(d->wake_fd, 1);
        pthread_mutex_unlock(&d->lock);
        g_thread_join(d->thread);
    }
    for (guint i = 0; i < d->retired_fds->len; i++) {
        close(g_array_index(d->retired_fds, int, i));
    }
    for (unsigned i = 0; i < SIM_MAX_VQS; i++) {
        close_fd(&d->vqs[i].kick_fd);
        close_fd(&d->vqs[i].call_fd);
        close_fd(&d->vqs[i].err_fd);
        g_free(d->vqs[i].chain.segs);
    }
    for (unsigned a = 0; a < SIM_MAX_AS; a++) {
        g_array_unref(d->as[a].maps);
    }
    close_fd(&d->config_call_fd);
    close_fd(&d->wake_fd);
    if (d->storage) {
        munmap(d->storage, d->storage_len);
    }
    g_array_unref(d->retired_fds);
    g_clear_pointer(&d->vmas, g_array_unref);
    pthread_mutex_destroy(&d->lock);
    g_free(d->name);
    g_free(d);
}

/* The vhost-level state a fresh open/release starts from. */
static void
vhost_state_clear(GwVdpaSimDev *d)
{
    for (unsigned i = 0; i < d->nvqs; i++) {
        SimVq *vq = &d->vqs[i];

        gw_sim_dev_retire_kick(d, vq);
        close_fd(&vq->call_fd);
        close_fd(&vq->err_fd);
        vq->num = 0;
        vq->busyloop_timeout = 0;
    }
    for (unsigned a = 0; a < SIM_MAX_AS; a++) {
        gw_sim_as_clear(&d->as[a]);
    }
    close_fd(&d->config_call_fd);
    d->owned = false;
    d->backend_features = 0;
    d->in_batch = false;
    d->suspended = false;
}

/* vhost_vdpa_open: exclusive, resets the device and cleans its maps. */
bool
gw_sim_dev_open(GwVdpaSimDev *d)
{
    bool ok;

    pthread_mutex_lock(&d->lock);
    ok = !d->opened;
    if (ok) {
        d->opened = true;
        vhost_state_clear(d);
        gw_sim_dev_reset(d, true);
    }
    pthread_mutex_unlock(&d->lock);
    return ok;
}

/* vhost_vdpa_release: reset, every mapping and fd dropped. */
void
gw_sim_dev_close(GwVdpaSimDev *d)
{
    pthread_mutex_lock(&d->lock);
    gw_sim_dev_reset(d, true);
    vhost_state_clear(d);
    d->opened = false;
    pthread_mutex_unlock(&d->lock);
}

bool
gw_sim_dev_is_open(GwVdpaSimDev *d)
{
    bool open;

    pthread_mutex_lock(&d->lock);
    open = d->opened;
    pthread_mutex_unlock(&d->lock);
    return open;
}

void
gw_sim_dev_inject(GwVdpaSimDev *d, int what)
{
    pthread_mutex_lock(&d->lock);
    switch ((GwVdpaSimFailure)what) {
    case GW_VDPA_SIM_FAIL_NEEDS_RESET:
        gw_sim_dev_fail(d, "injected failure");
        break;
    case GW_VDPA_SIM_FAIL_SUSPEND:
        d->fail_suspend = true;
        break;
    case GW_VDPA_SIM_FAIL_RESUME:
        d->fail_resume = true;
        break;
    case GW_VDPA_SIM_FAIL_IGNORE_MAC_CONFIG:
        d->ignore_mac_config = true;
        break;
    case GW_VDPA_SIM_FAIL_NO_ENABLE_AFTER_DRIVER_OK:
        d->no_late_enable = true;
        break;
    case GW_VDPA_SIM_FAIL_OFFER_CTRL_RX:
        if (d->type->device_id == VIRTIO_ID_NET) {
            d->extra_features |= 1ull << VIRTIO_NET_F_CTRL_RX;
        }
        break;
    case GW_VDPA_SIM_FAIL_REFUSE_CTRL:
        d->net.refuse = true;
        break;
    case GW_VDPA_SIM_FAIL_NO_SUSPEND:
        d->no_suspend = true;
        break;
    case GW_VDPA_SIM_FAIL_NARROW_IOVA:
        d->narrow_iova = true;
        break;
    }
    pthread_mutex_unlock(&d->lock);
}
