/*
 * vhost-uapi: the vhost-vdpa kernel ABI, complete.
 *
 * Debian 12 ships the Linux 6.1 uapi headers; the vhost-vdpa interface
 * grew after that (RESUME 6.3, ENABLE_AFTER_DRIVER_OK 6.5, DESC_ASID and
 * IOTLB_PERSIST 6.7, VRING_SIZE 6.10).  This header adds what is missing,
 * each definition guarded so a newer system header wins, and pins the
 * numbers and struct sizes the rest of godwit relies on with static
 * asserts: a wrong number here would be a silent ABI break with a real
 * /dev/vhost-vdpa-N.
 */
#pragma once

#include <stddef.h>
#include <linux/vhost.h>
#include <linux/vhost_types.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#ifndef VHOST_VDPA_SUSPEND
#define VHOST_VDPA_SUSPEND _IO(VHOST_VIRTIO, 0x7D)
#endif
#ifndef VHOST_VDPA_RESUME
#define VHOST_VDPA_RESUME _IO(VHOST_VIRTIO, 0x7E)
#endif
#ifndef VHOST_VDPA_GET_VRING_DESC_GROUP
#define VHOST_VDPA_GET_VRING_DESC_GROUP                                        \
    _IOWR(VHOST_VIRTIO, 0x7F, struct vhost_vring_state)
#endif
#ifndef VHOST_VDPA_GET_VRING_SIZE
#define VHOST_VDPA_GET_VRING_SIZE                                              \
    _IOWR(VHOST_VIRTIO, 0x82, struct vhost_vring_state)
#endif

/* Backend feature bit numbers (VHOST_SET_BACKEND_FEATURES takes 1 << n). */
#ifndef VHOST_BACKEND_F_SUSPEND
#define VHOST_BACKEND_F_SUSPEND 0x4
#endif
#ifndef VHOST_BACKEND_F_RESUME
#define VHOST_BACKEND_F_RESUME 0x5
#endif
#ifndef VHOST_BACKEND_F_ENABLE_AFTER_DRIVER_OK
#define VHOST_BACKEND_F_ENABLE_AFTER_DRIVER_OK 0x6
#endif
#ifndef VHOST_BACKEND_F_DESC_ASID
#define VHOST_BACKEND_F_DESC_ASID 0x7
#endif
#ifndef VHOST_BACKEND_F_IOTLB_PERSIST
#define VHOST_BACKEND_F_IOTLB_PERSIST 0x8
#endif

#ifndef VIRTIO_CONFIG_S_NEEDS_RESET
#define VIRTIO_CONFIG_S_NEEDS_RESET 0x40
#endif
#ifndef VIRTIO_F_ACCESS_PLATFORM
#define VIRTIO_F_ACCESS_PLATFORM 33
#endif
#ifndef VIRTIO_BLK_T_WRITE_ZEROES
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#endif
#ifndef VIRTIO_BLK_T_DISCARD
#define VIRTIO_BLK_T_DISCARD 11
#endif
#ifndef VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP
#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 0x00000001
#endif

/*
 * The virtio-blk config space as Linux >= 6.3 defines it (zoned fields
 * included): 96 bytes.  Debian 12's struct virtio_blk_config stops at 72,
 * so the size is stated here rather than taken from sizeof.
 */
#define GW_VIRTIO_BLK_CONFIG_SIZE 96

_Static_assert(sizeof(struct vhost_msg_v2) == 72, "vhost_msg_v2 is 72 bytes");
_Static_assert(sizeof(struct vhost_msg) == 72, "vhost_msg is 72 bytes");
_Static_assert(offsetof(struct vhost_msg_v2, iotlb) == 8, "iotlb at 8");
_Static_assert(sizeof(struct vhost_iotlb_msg) == 32, "iotlb msg 32 bytes");
_Static_assert(sizeof(struct vhost_vring_state) == 8, "vring_state 8 bytes");
_Static_assert(sizeof(struct vhost_vring_file) == 8, "vring_file 8 bytes");
_Static_assert(sizeof(struct vhost_vring_addr) == 40, "vring_addr 40 bytes");
_Static_assert(sizeof(struct vhost_vdpa_config) == 8, "vdpa_config hdr 8");
_Static_assert(sizeof(struct vhost_vdpa_iova_range) == 16, "iova_range 16");
_Static_assert(sizeof(struct virtio_net_config) >= 24, "net config >= 24");

/* The request numbers of the reference table, checked once. */
_Static_assert(VHOST_GET_FEATURES == 0x8008AF00, "GET_FEATURES");
_Static_assert(VHOST_SET_FEATURES == 0x4008AF00, "SET_FEATURES");
_Static_assert(VHOST_SET_OWNER == 0xAF01, "SET_OWNER");
_Static_assert(VHOST_RESET_OWNER == 0xAF02, "RESET_OWNER");
_Static_assert(VHOST_SET_LOG_BASE == 0x4008AF04, "SET_LOG_BASE");
_Static_assert(VHOST_SET_LOG_FD == 0x4004AF07, "SET_LOG_FD");
_Static_assert(VHOST_SET_VRING_NUM == 0x4008AF10, "SET_VRING_NUM");
_Static_assert(VHOST_SET_VRING_ADDR == 0x4028AF11, "SET_VRING_ADDR");
_Static_assert(VHOST_SET_VRING_BASE == 0x4008AF12, "SET_VRING_BASE");
_Static_assert(VHOST_GET_VRING_BASE == 0xC008AF12, "GET_VRING_BASE");
_Static_assert(VHOST_SET_VRING_KICK == 0x4008AF20, "SET_VRING_KICK");
_Static_assert(VHOST_SET_VRING_CALL == 0x4008AF21, "SET_VRING_CALL");
_Static_assert(VHOST_SET_VRING_ERR == 0x4008AF22, "SET_VRING_ERR");
_Static_assert(VHOST_SET_BACKEND_FEATURES == 0x4008AF25, "SET_BACKEND_F");
_Static_assert(VHOST_GET_BACKEND_FEATURES == 0x8008AF26, "GET_BACKEND_F");
_Static_assert(VHOST_VDPA_GET_DEVICE_ID == 0x8004AF70, "GET_DEVICE_ID");
_Static_assert(VHOST_VDPA_GET_STATUS == 0x8001AF71, "GET_STATUS");
_Static_assert(VHOST_VDPA_SET_STATUS == 0x4001AF72, "SET_STATUS");
_Static_assert(VHOST_VDPA_GET_CONFIG == 0x8008AF73, "GET_CONFIG");
_Static_assert(VHOST_VDPA_SET_CONFIG == 0x4008AF74, "SET_CONFIG");
_Static_assert(VHOST_VDPA_SET_VRING_ENABLE == 0x4008AF75, "VRING_ENABLE");
_Static_assert(VHOST_VDPA_GET_VRING_NUM == 0x8002AF76, "GET_VRING_NUM");
_Static_assert(VHOST_VDPA_SET_CONFIG_CALL == 0x4004AF77, "CONFIG_CALL");
_Static_assert(VHOST_VDPA_GET_IOVA_RANGE == 0x8010AF78, "IOVA_RANGE");
_Static_assert(VHOST_VDPA_GET_CONFIG_SIZE == 0x8004AF79, "CONFIG_SIZE");
_Static_assert(VHOST_VDPA_GET_AS_NUM == 0x8004AF7A, "GET_AS_NUM");
_Static_assert(VHOST_VDPA_GET_VRING_GROUP == 0xC008AF7B, "VRING_GROUP");
_Static_assert(VHOST_VDPA_SET_GROUP_ASID == 0x4008AF7C, "GROUP_ASID");
_Static_assert(VHOST_VDPA_SUSPEND == 0xAF7D, "SUSPEND");
_Static_assert(VHOST_VDPA_RESUME == 0xAF7E, "RESUME");
_Static_assert(VHOST_VDPA_GET_VRING_DESC_GROUP == 0xC008AF7F, "DESC_GROUP");
_Static_assert(VHOST_VDPA_GET_VQS_COUNT == 0x8004AF80, "GET_VQS_COUNT");
_Static_assert(VHOST_VDPA_GET_GROUP_NUM == 0x8004AF81, "GET_GROUP_NUM");
_Static_assert(VHOST_VDPA_GET_VRING_SIZE == 0xC008AF82, "GET_VRING_SIZE");
