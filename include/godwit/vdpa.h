/*
 * vdpa: the backend seam — one interface to a vhost-vdpa device, whether
 * it is a real /dev/vhost-vdpa-N (kernel backend) or a device of the
 * in-process simulator.  Everything above this header is the same code
 * for both; nothing here says which one a GwVdpaBackend is.
 *
 * Conventions of the raw calls (gw_vdpa_backend_ioctl/write/read): they
 * are the kernel's char-device ABI (request numbers and structs from
 * <godwit/vhost-uapi.h>), and they return like the system call would but
 * with the error folded in: 0 (ioctl) or a byte count (write/read) on
 * success, -errno on failure.  They never touch errno.
 *
 * The gw_vdpa_* convenience wrappers below return bool and set *errp
 * with "vdpa <label>: <REQUEST>: <strerror>" on failure; the errno is
 * also available as the error code of GW_VDPA_ERRNO_ERROR.
 *
 * Threads: a backend may be used from any thread, one call at a time per
 * backend unless a function says otherwise (the simulator serialises
 * calls itself; the kernel does too).  References are atomic.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <glib.h>
#include <godwit/vhost-uapi.h>

typedef struct GwVdpaBackend GwVdpaBackend;
typedef struct GwVdpaSimRegistry GwVdpaSimRegistry;

/* Errors of the wrappers carry the errno as code in this domain. */
#define GW_VDPA_ERRNO_ERROR gw_vdpa_errno_error_quark()
GQuark gw_vdpa_errno_error_quark(void);

/*
 * Opens the vhost-vdpa device at `path`: a vhost-vdpa character device
 * (kernel backend) or a node file published by `reg` (simulator; reg may
 * be NULL when no simulator exists).  Opening is exclusive like the
 * kernel's: a device already open fails with GW_ERROR_BUSY.  Anything
 * else (missing path, /dev/null, a regular file that is no node) fails
 * with a message naming the path.  Returns a new reference.
 * Thread: any.
 */
GwVdpaBackend *gw_vdpa_open(GwVdpaSimRegistry *reg, const char *path,
                            GError **errp);

/*
 * Same for an fd that is already open (e.g. received over QMP add-fd /
 * getfd): a vhost-vdpa char device fd becomes a kernel backend; an fd on
 * a simulator node is matched to its device by st_dev/st_ino.  Takes
 * ownership of `fd` in every case (it is closed on failure, and for a
 * simulator node once matched).
 */
GwVdpaBackend *gw_vdpa_open_fd(GwVdpaSimRegistry *reg, int fd, GError **errp);

GwVdpaBackend *gw_vdpa_backend_ref(GwVdpaBackend *b);
/* Dropping the last reference closes the device (reset, maps removed). */
void gw_vdpa_backend_unref(GwVdpaBackend *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwVdpaBackend, gw_vdpa_backend_unref)

/* The path or "fd N" the backend was opened from, for messages. */
const char *gw_vdpa_backend_label(GwVdpaBackend *b);

/*
 * Whether the device keeps its data in storage that exists on this host
 * only, which another host's device cannot reach: a disk that cannot
 * follow its VM.  What storage a real vhost-vdpa device has is the
 * device's business (false); the simulator's blk device without
 * backing= keeps its disk in private memory (true).
 */
bool gw_vdpa_backend_has_private_storage(GwVdpaBackend *b);

/* ioctl(2) on the device: 0 or -errno. */
int gw_vdpa_backend_ioctl(GwVdpaBackend *b, unsigned long request, void *arg);
/* write(2) on the device (IOTLB messages): bytes written or -errno. */
ssize_t gw_vdpa_backend_write(GwVdpaBackend *b, const void *buf, size_t len);
/* read(2) on the device: vhost-vdpa has none (-EINVAL). */
ssize_t gw_vdpa_backend_read(GwVdpaBackend *b, void *buf, size_t len);
/* One IOTLB message: 72 or -errno (every handler error is -EFAULT). */
ssize_t gw_vdpa_backend_write_msg(GwVdpaBackend *b,
                                  const struct vhost_msg_v2 *msg);

/*
 * Wrappers: one ioctl or message each, false with *errp set on failure.
 * Vring wrappers take the vring index `idx`.
 */
bool gw_vdpa_set_owner(GwVdpaBackend *b, GError **errp);
bool gw_vdpa_get_device_id(GwVdpaBackend *b, uint32_t *id, GError **errp);
bool gw_vdpa_get_features(GwVdpaBackend *b, uint64_t *features, GError **errp);
bool gw_vdpa_set_features(GwVdpaBackend *b, uint64_t features, GError **errp);
bool gw_vdpa_get_backend_features(GwVdpaBackend *b, uint64_t *features,
                                  GError **errp);
bool gw_vdpa_set_backend_features(GwVdpaBackend *b, uint64_t features,
                                  GError **errp);
bool gw_vdpa_get_status(GwVdpaBackend *b, uint8_t *status, GError **errp);
bool gw_vdpa_set_status(GwVdpaBackend *b, uint8_t status, GError **errp);
bool gw_vdpa_get_config_size(GwVdpaBackend *b, uint32_t *size, GError **errp);
bool gw_vdpa_get_config(GwVdpaBackend *b, uint32_t off, void *buf, uint32_t len,
                        GError **errp);
bool gw_vdpa_set_config(GwVdpaBackend *b, uint32_t off, const void *buf,
                        uint32_t len, GError **errp);
bool gw_vdpa_get_vqs_count(GwVdpaBackend *b, uint32_t *count, GError **errp);
bool gw_vdpa_get_vring_num_max(GwVdpaBackend *b, uint16_t *num, GError **errp);
bool gw_vdpa_get_iova_range(GwVdpaBackend *b, uint64_t *first, uint64_t *last,
                            GError **errp);
bool gw_vdpa_set_vring_num(GwVdpaBackend *b, uint32_t idx, uint32_t num,
                           GError **errp);
bool gw_vdpa_set_vring_addr(GwVdpaBackend *b, uint32_t idx, uint64_t desc,
                            uint64_t avail, uint64_t used, GError **errp);
bool gw_vdpa_set_vring_base(GwVdpaBackend *b, uint32_t idx, uint32_t base,
                            GError **errp);
bool gw_vdpa_get_vring_base(GwVdpaBackend *b, uint32_t idx, uint32_t *base,
                            GError **errp);
bool gw_vdpa_set_vring_kick(GwVdpaBackend *b, uint32_t idx, int fd,
                            GError **errp);
bool gw_vdpa_set_vring_call(GwVdpaBackend *b, uint32_t idx, int fd,
                            GError **errp);
bool gw_vdpa_set_vring_enable(GwVdpaBackend *b, uint32_t idx, bool enable,
                              GError **errp);
bool gw_vdpa_set_config_call(GwVdpaBackend *b, int fd, GError **errp);
bool gw_vdpa_suspend(GwVdpaBackend *b, GError **errp);
bool gw_vdpa_resume(GwVdpaBackend *b, GError **errp);

/* IOTLB messages (vhost_msg_v2; asid is ignored unless IOTLB_ASID). */
bool gw_vdpa_iotlb_update(GwVdpaBackend *b, uint32_t asid, uint64_t iova,
                          uint64_t size, void *uaddr, uint8_t perm,
                          GError **errp);
bool gw_vdpa_iotlb_invalidate(GwVdpaBackend *b, uint32_t asid, uint64_t iova,
                              uint64_t size, GError **errp);
bool gw_vdpa_iotlb_batch_begin(GwVdpaBackend *b, uint32_t asid, GError **errp);
bool gw_vdpa_iotlb_batch_end(GwVdpaBackend *b, uint32_t asid, GError **errp);
