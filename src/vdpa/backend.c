/*
 * The backend seam: dispatch to the implementation, opening by path or
 * fd, and the GError-returning wrappers the layers above use.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <godwit/util.h>
#include <godwit/vdpa.h>
#include "vdpa-priv.h"

G_DEFINE_QUARK(godwit - vdpa - errno - error - quark, gw_vdpa_errno_error)

void
gw_vdpa_backend_init(GwVdpaBackend *b, const GwVdpaBackendOps *ops,
                     const char *label)
{
    b->ops = ops;
    b->refcount = 1;
    b->label = g_strdup(label);
}

void
gw_vdpa_backend_finalize(GwVdpaBackend *b)
{
    g_free(b->label);
}

GwVdpaBackend *
gw_vdpa_backend_ref(GwVdpaBackend *b)
{
    g_atomic_int_inc(&b->refcount);
    return b;
}

void
gw_vdpa_backend_unref(GwVdpaBackend *b)
{
    if (b && g_atomic_int_dec_and_test(&b->refcount)) {
        b->ops->free(b);
    }
}

const char *
gw_vdpa_backend_label(GwVdpaBackend *b)
{
    return b->label;
}

bool
gw_vdpa_backend_has_private_storage(GwVdpaBackend *b)
{
    return b->ops->private_storage && b->ops->private_storage(b);
}

int
gw_vdpa_backend_ioctl(GwVdpaBackend *b, unsigned long request, void *arg)
{
    return b->ops->ioctl(b, request, arg);
}

ssize_t
gw_vdpa_backend_write(GwVdpaBackend *b, const void *buf, size_t len)
{
    return b->ops->write(b, buf, len);
}

ssize_t
gw_vdpa_backend_read(GwVdpaBackend *b, void *buf, size_t len)
{
    return b->ops->read(b, buf, len);
}

ssize_t
gw_vdpa_backend_write_msg(GwVdpaBackend *b, const struct vhost_msg_v2 *msg)
{
    return b->ops->write(b, msg, sizeof(*msg));
}

static bool
not_vdpa(const char *label, GError **errp)
{
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "vdpa: %s is not a vhost-vdpa device", label);
    return false;
}

/* Opens what `st` describes; `fd` is consumed. */
static GwVdpaBackend *
open_stat(GwVdpaSimRegistry *reg, int fd, const struct stat *st,
          const char *label, GError **errp)
{
    gw_autofd owned = fd;
    g_autoptr(GError) err = NULL;

    if (S_ISCHR(st->st_mode)) {
        if (!gw_vdpa_kernel_is_vdpa_chrdev(st->st_rdev, NULL)) {
            not_vdpa(label, errp);
            return NULL;
        }
        return gw_vdpa_kernel_new(gw_steal_fd(&owned), label);
    }
    if (S_ISREG(st->st_mode) && reg) {
        GwVdpaBackend *b =
            gw_vdpa_sim_open_node(reg, st->st_dev, st->st_ino, label, &err);
        if (b) {
            return b;
        }
        if (!g_error_matches(err, GW_ERROR, GW_ERROR_NOT_FOUND)) {
            g_propagate_error(errp, g_steal_pointer(&err));
            return NULL;
        }
    }
    not_vdpa(label, errp);
    return NULL;
}

GwVdpaBackend *
gw_vdpa_open(GwVdpaSimRegistry *reg, const char *path, GError **errp)
{
    struct stat st;
    gw_autofd fd = -1;

    if (stat(path, &st) < 0) {
        gw_error_errno(errp, errno, "vdpa: %s", path);
        return NULL;
    }
    if (S_ISCHR(st.st_mode)) {
        if (!gw_vdpa_kernel_is_vdpa_chrdev(st.st_rdev, NULL)) {
            not_vdpa(path, errp);
            return NULL;
        }
        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            g_set_error(errp, GW_ERROR,
                        errno == EBUSY ? GW_ERROR_BUSY : GW_ERROR_FAILED,
                        "vdpa: cannot open %s: %s", path, g_strerror(errno));
            return NULL;
        }
        return gw_vdpa_kernel_new(gw_steal_fd(&fd), path);
    }
    return open_stat(reg, -1, &st, path, errp);
}

GwVdpaBackend *
gw_vdpa_open_fd(GwVdpaSimRegistry *reg, int fd, GError **errp)
{
    g_autofree char *label = g_strdup_printf("fd %d", fd);
    struct stat st;

    if (fstat(fd, &st) < 0) {
        gw_error_errno(errp, errno, "vdpa: %s", label);
        if (fd >= 0) {
            close(fd);
        }
        return NULL;
    }
    return open_stat(reg, fd, &st, label, errp);
}

/* Sets *errp from a negative return of the seam. */
static bool
call_failed(GwVdpaBackend *b, const char *what, int err, GError **errp)
{
    g_set_error(errp, GW_VDPA_ERRNO_ERROR, err, "vdpa %s: %s: %s", b->label,
                what, g_strerror(err));
    return false;
}

static bool
call(GwVdpaBackend *b, unsigned long req, void *arg, const char *what,
     GError **errp)
{
    int r = b->ops->ioctl(b, req, arg);

    return r == 0 || call_failed(b, what, -r, errp);
}

#define CALL(b, req, arg, errp) call(b, req, arg, #req, errp)

bool
gw_vdpa_set_owner(GwVdpaBackend *b, GError **errp)
{
    return CALL(b, VHOST_SET_OWNER, NULL, errp);
}

bool
gw_vdpa_get_device_id(GwVdpaBackend *b, uint32_t *id, GError **errp)
{
    return CALL(b, VHOST_VDPA_GET_DEVICE_ID, id, errp);
}

bool
gw_vdpa_get_features(GwVdpaBackend *b, uint64_t *features, GError **errp)
{
    return CALL(b, VHOST_GET_FEATURES, features, errp);
}

bool
gw_vdpa_set_features(GwVdpaBackend *b, uint64_t features, GError **errp)
{
    return CALL(b, VHOST_SET_FEATURES, &features, errp);
}

bool
gw_vdpa_get_backend_features(GwVdpaBackend *b, uint64_t *features,
                             GError **errp)
{
    return CALL(b, VHOST_GET_BACKEND_FEATURES, features, errp);
}

bool
gw_vdpa_set_backend_features(GwVdpaBackend *b, uint64_t features, GError **errp)
{
    return CALL(b, VHOST_SET_BACKEND_FEATURES, &features, errp);
}

bool
gw_vdpa_get_status(GwVdpaBackend *b, uint8_t *status, GError **errp)
{
    return CALL(b, VHOST_VDPA_GET_STATUS, status, errp);
}

bool
gw_vdpa_set_status(GwVdpaBackend *b, uint8_t status, GError **errp)
{
    return CALL(b, VHOST_VDPA_SET_STATUS, &status, errp);
}

bool
gw_vdpa_get_config_size(GwVdpaBackend *b, uint32_t *size, GError **errp)
{
    return CALL(b, VHOST_VDPA_GET_CONFIG_SIZE, size, errp);
}

/* struct vhost_vdpa_config is a header followed by the data. */
static struct vhost_vdpa_config *
config_new(uint32_t off, uint32_t len)
{
    struct vhost_vdpa_config *c = g_malloc0(sizeof(*c) + len);

    c->off = off;
    c->len = len;
    return c;
}

bool
gw_vdpa_get_config(GwVdpaBackend *b, uint32_t off, void *buf, uint32_t len,
                   GError **errp)
{
    g_autofree struct vhost_vdpa_config *c = config_new(off, len);

    if (!CALL(b, VHOST_VDPA_GET_CONFIG, c, errp)) {
        return false;
    }
    memcpy(buf, c->buf, len);
    return true;
}

bool
gw_vdpa_set_config(GwVdpaBackend *b, uint32_t off, const void *buf,
                   uint32_t len, GError **errp)
{
    g_autofree struct vhost_vdpa_config *c = config_new(off, len);

    memcpy(c->buf, buf, len);
    return CALL(b, VHOST_VDPA_SET_CONFIG, c, errp);
}

bool
gw_vdpa_get_vqs_count(GwVdpaBackend *b, uint32_t *count, GError **errp)
{
    return CALL(b, VHOST_VDPA_GET_VQS_COUNT, count, errp);
}

bool
gw_vdpa_get_vring_num_max(GwVdpaBackend *b, uint16_t *num, GError **errp)
{
    return CALL(b, VHOST_VDPA_GET_VRING_NUM, num, errp);
}

bool
gw_vdpa_get_iova_range(GwVdpaBackend *b, uint64_t *first, uint64_t *last,
                       GError **errp)
{
    struct vhost_vdpa_iova_range r;

    if (!CALL(b, VHOST_VDPA_GET_IOVA_RANGE, &r, errp)) {
        return false;
    }
    *first = r.first;
    *last = r.last;
    return true;
}

bool
gw_vdpa_set_vring_num(GwVdpaBackend *b, uint32_t idx, uint32_t num,
                      GError **errp)
{
    struct vhost_vring_state s = {.index = idx, .num = num};

    return CALL(b, VHOST_SET_VRING_NUM, &s, errp);
}

bool
gw_vdpa_set_vring_addr(GwVdpaBackend *b, uint32_t idx, uint64_t desc,
                       uint64_t avail, uint64_t used, GError **errp)
{
    struct vhost_vring_addr a = {
        .index = idx,
        .desc_user_addr = desc,
        .avail_user_addr = avail,
        .used_user_addr = used,
    };

    return CALL(b, VHOST_SET_VRING_ADDR, &a, errp);
}

bool
gw_vdpa_set_vring_base(GwVdpaBackend *b, uint32_t idx, uint32_t base,
                       GError **errp)
{
    struct vhost_vring_state s = {.index = idx, .num = base};

    return CALL(b, VHOST_SET_VRING_BASE, &s, errp);
}

bool
gw_vdpa_get_vring_base(GwVdpaBackend *b, uint32_t idx, uint32_t *base,
                       GError **errp)
{
    struct vhost_vring_state s = {.index = idx};

    if (!CALL(b, VHOST_GET_VRING_BASE, &s, errp)) {
        return false;
    }
    *base = s.num;
    return true;
}

bool
gw_vdpa_set_vring_kick(GwVdpaBackend *b, uint32_t idx, int fd, GError **errp)
{
    struct vhost_vring_file f = {.index = idx, .fd = fd};

    return CALL(b, VHOST_SET_VRING_KICK, &f, errp);
}

bool
gw_vdpa_set_vring_call(GwVdpaBackend *b, uint32_t idx, int fd, GError **errp)
{
    struct vhost_vring_file f = {.index = idx, .fd = fd};

    return CALL(b, VHOST_SET_VRING_CALL, &f, errp);
}

bool
gw_vdpa_set_vring_enable(GwVdpaBackend *b, uint32_t idx, bool enable,
                         GError **errp)
{
    struct vhost_vring_state s = {.index = idx, .num = enable};

    return CALL(b, VHOST_VDPA_SET_VRING_ENABLE, &s, errp);
}

bool
gw_vdpa_set_config_call(GwVdpaBackend *b, int fd, GError **errp)
{
    return CALL(b, VHOST_VDPA_SET_CONFIG_CALL, &fd, errp);
}

bool
gw_vdpa_suspend(GwVdpaBackend *b, GError **errp)
{
    return CALL(b, VHOST_VDPA_SUSPEND, NULL, errp);
}

bool
gw_vdpa_resume(GwVdpaBackend *b, GError **errp)
{
    return CALL(b, VHOST_VDPA_RESUME, NULL, errp);
}

static bool
iotlb_msg(GwVdpaBackend *b, uint32_t asid, uint8_t type, uint64_t iova,
          uint64_t size, uint64_t uaddr, uint8_t perm, const char *what,
          GError **errp)
{
    struct vhost_msg_v2 m = {
        .type = VHOST_IOTLB_MSG_V2,
        .asid = asid,
        .iotlb = {.iova = iova,
                  .size = size,
                  .uaddr = uaddr,
                  .perm = perm,
                  .type = type},
    };
    ssize_t n = gw_vdpa_backend_write_msg(b, &m);

    if (n < 0) {
        return call_failed(b, what, (int)-n, errp);
    }
    if (n != sizeof(m)) {
        return call_failed(b, what, EIO, errp);
    }
    return true;
}

bool
gw_vdpa_iotlb_update(GwVdpaBackend *b, uint32_t asid, uint64_t iova,
                     uint64_t size, void *uaddr, uint8_t perm, GError **errp)
{
    return iotlb_msg(b, asid, VHOST_IOTLB_UPDATE, iova, size,
                     (uint64_t)(uintptr_t)uaddr, perm, "VHOST_IOTLB_UPDATE",
                     errp);
}

bool
gw_vdpa_iotlb_invalidate(GwVdpaBackend *b, uint32_t asid, uint64_t iova,
                         uint64_t size, GError **errp)
{
    return iotlb_msg(b, asid, VHOST_IOTLB_INVALIDATE, iova, size, 0, 0,
                     "VHOST_IOTLB_INVALIDATE", errp);
}

bool
gw_vdpa_iotlb_batch_begin(GwVdpaBackend *b, uint32_t asid, GError **errp)
{
    return iotlb_msg(b, asid, VHOST_IOTLB_BATCH_BEGIN, 0, 0, 0, 0,
                     "VHOST_IOTLB_BATCH_BEGIN", errp);
}

bool
gw_vdpa_iotlb_batch_end(GwVdpaBackend *b, uint32_t asid, GError **errp)
{
    return iotlb_msg(b, asid, VHOST_IOTLB_BATCH_END, 0, 0, 0, 0,
                     "VHOST_IOTLB_BATCH_END", errp);
}
