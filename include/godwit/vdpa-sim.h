/*
 * vdpa-sim: the userspace vDPA simulator, vdpasim_blk and vdpasim_net as
 * in Linux's drivers/vdpa/vdpa_sim, behind the same seam as a real
 * /dev/vhost-vdpa-N (see <godwit/vdpa.h>).
 *
 * A GwVdpaSimRegistry is the management side (`vdpa dev add/del/show`).
 * Each device it creates publishes a node file, a regular file at
 *   <base>/vdpa/<name>
 * where <base> is the host's runtime directory: $GODWIT_RUNTIME_DIR, else
 * $XDG_RUNTIME_DIR/godwit, else /run/godwit (root) or
 * <tmpdir>/godwit-<uid>.  The path follows from the name, so a command
 * line can create a device and use it at once, and names are unique per
 * host like the kernel's: a second process adding a name that a live
 * process holds gets GW_ERROR_EXISTS; a node left by a dead process is
 * reclaimed.  Two "hosts" on one machine are two bases.
 * gw_vdpa_open() on that path, or gw_vdpa_open_fd() on an fd opened on it
 * (matched by st_dev/st_ino), yields the device's backend.
 *
 * Threads: registry functions are for one thread at a time (the main
 * loop), except opening (gw_vdpa_open, gw_vdpa_open_fd), which may run
 * anywhere.  Each device runs one worker thread of its own (see
 * src/vdpa/sim/device.c).
 */
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <json-c/json.h>
#include <godwit/config.h>

typedef struct GwVdpaSimRegistry GwVdpaSimRegistry;

/*
 * Creates a registry publishing under `base` (NULL: the default runtime
 * directory above), creating <base>/vdpa.  NULL with *errp set if the
 * directory cannot be created, or if <base> or <base>/vdpa is not this
 * user's alone (owned by another uid, or writable by group or others):
 * GW_ERROR_INVALID, naming the directory.
 */
GwVdpaSimRegistry *gw_vdpa_sim_registry_new(const char *base, GError **errp);

/*
 * Removes every node file (and the directory if no other process has
 * nodes there), and drops the registry's
 * hold on its devices.  A device still open stays alive until its last
 * backend reference goes, but can no longer be opened.
 */
void gw_vdpa_sim_registry_free(GwVdpaSimRegistry *reg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwVdpaSimRegistry, gw_vdpa_sim_registry_free)

/* The registry's runtime directory (owned by the registry). */
const char *gw_vdpa_sim_registry_dir(GwVdpaSimRegistry *reg);

/* Devices one registry holds at once (each has a worker thread). */
#define GW_VDPA_SIM_MAX_DEVICES 64

/*
 * Creates a device like `vdpa dev add name N mgmtdev M`: storage (blk),
 * worker thread, node file.  *path_out (if not NULL) receives the node
 * path, caller frees.  Fails with GW_ERROR_EXISTS for a taken name,
 * GW_ERROR_INVALID for a bad name/mac or when the registry already
 * holds GW_VDPA_SIM_MAX_DEVICES, GW_ERROR_FAILED for system errors
 * (backing file, memory).
 *
 * net: the kernel sim's features, plus those `features` names
 * ("mq+ctrl-rx+ctrl-rx-extra+ctrl-vlan", any subset, '+'-separated):
 * mq with `max_vq_pairs` pairs (default 2; a frame sent on the tx queue
 * of pair i loops back on the rx queue of pair i, for pairs below the
 * VQ_PAIRS_SET count), ctrl-rx / ctrl-rx-extra with the RX mode and the
 * MAC tables applied to looped frames as QEMU's virtio-net filters, and
 * ctrl-vlan with a 4096-bit VLAN filter for tagged frames,
 * guest-announce (ANNOUNCE_ACK acked, nothing else).  An unknown
 * name, or max_vq_pairs without mq, is GW_ERROR_INVALID.
 *
 * blk storage: anonymous zeroed memory of `capacity` bytes (default
 * 128 MiB), or `backing` mapped MAP_SHARED: created if missing, extended
 * to the capacity if smaller.  A larger file is left as it is and only
 * its first `capacity` bytes are the disk; with no capacity given, a
 * non-empty backing file's size (rounded down to 512) is the capacity.
 */
bool gw_vdpa_sim_add(GwVdpaSimRegistry *reg, const GwVdpaSimConfig *cfg,
                     char **path_out, GError **errp);

/*
 * Deletes a device like `vdpa dev del`: GW_ERROR_NOT_FOUND if there is
 * none, GW_ERROR_BUSY while it is open.
 */
bool gw_vdpa_sim_del(GwVdpaSimRegistry *reg, const char *name, GError **errp);

/*
 * The devices as a JSON array of {"name", "mgmtdev", "path",
 * "device-id", "open"} in creation order (caller owns).
 */
json_object *gw_vdpa_sim_list_json(GwVdpaSimRegistry *reg);

typedef enum {
    /* The device breaks now: NEEDS_RESET, config interrupt. */
    GW_VDPA_SIM_FAIL_NEEDS_RESET,
    /* The next VHOST_VDPA_SUSPEND fails with EIO (device unchanged). */
    GW_VDPA_SIM_FAIL_SUSPEND,
    /* The next VHOST_VDPA_RESUME fails with EIO (device stays suspended). */
    GW_VDPA_SIM_FAIL_RESUME,
    /*
     * From now on the device is one without suspend and resume (as
     * hardware whose driver has no .suspend/.resume): GET_BACKEND_FEATURES
     * leaves out SUSPEND and RESUME, SET_BACKEND_FEATURES with them and
     * SUSPEND/RESUME of a started device fail with EOPNOTSUPP.  Give it
     * before the device is opened, as the VMM negotiates at open.
     */
    GW_VDPA_SIM_FAIL_NO_SUSPEND,
    /*
     * From now on VHOST_VDPA_SET_CONFIG leaves a network device's MAC
     * as it is (the other bytes are written), as mlx5_vdpa's set_config
     * does nothing: the MAC then changes only by
     * VIRTIO_NET_CTRL_MAC_ADDR_SET on the control queue.
     */
    GW_VDPA_SIM_FAIL_IGNORE_MAC_CONFIG,
    /*
     * From now on a network device also offers VIRTIO_NET_F_CTRL_RX
     * (whose commands it refuses with VIRTIO_NET_ERR, as it knows only
     * MAC_ADDR_SET): a device with control-queue state godwit does not
     * carry across a migration.  Give it before the device is opened.
     */
    GW_VDPA_SIM_FAIL_OFFER_CTRL_RX,
    /*
     * From now on the device does not offer
     * VHOST_BACKEND_F_ENABLE_AFTER_DRIVER_OK (SET_BACKEND_FEATURES with
     * it fails with EOPNOTSUPP) and enabling a queue after DRIVER_OK
     * fails with EINVAL: a device whose queues must all be enabled
     * before DRIVER_OK.  Give it before the device is opened.
     */
    GW_VDPA_SIM_FAIL_NO_ENABLE_AFTER_DRIVER_OK,
    /*
     * From now on a network device answers every control command with
     * VIRTIO_NET_ERR and changes nothing: a device refusing what a
     * migration's destination replays.
     */
    GW_VDPA_SIM_FAIL_REFUSE_CTRL,
    /*
     * From now on GET_IOVA_RANGE reports [0, 2^39 - 1] and an IOTLB
     * update reaching past it fails with EINVAL, as vhost_vdpa checks
     * its device's range: a device that cannot reach IOVAs above a
     * guest's.  Give it before the device is opened.
     */
    GW_VDPA_SIM_FAIL_NARROW_IOVA,
} GwVdpaSimFailure;

/*
 * Test hook: makes device `name` fail as `what` says.  Thread: any.
 * GW_ERROR_NOT_FOUND if there is no such device.
 */
bool gw_vdpa_sim_inject_failure(GwVdpaSimRegistry *reg, const char *name,
                                GwVdpaSimFailure what, GError **errp);
