/*
 * Every validation rule and errno of the vhost-vdpa reference that the
 * simulator implements, one case each, table-driven: a starting state,
 * one ioctl or IOTLB write through the seam, the expected result.
 */
#include <fcntl.h>
#include <sys/eventfd.h>
#include "vdpa-fixture.h"

#define BIT(n) (1ull << (n))

typedef enum {
    ST_OPEN,        /* opened, no owner */
    ST_OWNED,       /* SET_OWNER done */
    ST_FEATURES_OK, /* init up to FEATURES_OK */
    ST_DRIVER_OK,   /* started */
    ST_SUSPENDED,   /* started, then SUSPEND */
} State;

typedef enum {
    A_NONE,
    A_NULL,
    A_STATE,
    A_ADDR,
    A_FILE,
    A_U64,
    A_U8,
    A_CONFIG,
    A_FD,
    A_U32
} ArgKind;

enum { FD_BAD = -100, FD_NOT_EVENTFD = -101, FD_EVENTFD = -102 };

typedef struct {
    const char *path;
    const char *mgmtdev; /* NULL = vdpasim_blk */
    State state;
    unsigned long request;
    ArgKind kind;
    uint64_t a, b, c, d; /* meaning depends on kind */
    int want;            /* 0 or -errno */
    int64_t want_num;    /* >= 0: expected vhost_vring_state.num after */
} Case;

#define BLK NULL
#define NET "vdpasim_net"
#define DOK                                                                    \
    (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |                    \
     VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK)
#define AP BIT(VIRTIO_F_ACCESS_PLATFORM)

static const Case cases[] = {
    {"set-owner/twice-is-ebusy", BLK, ST_OWNED, VHOST_SET_OWNER, A_NONE, 0, 0,
     0, 0, -EBUSY, -1},
    {"set-vring-num/needs-owner", BLK, ST_OPEN, VHOST_SET_VRING_NUM, A_STATE, 0,
     256, 0, 0, -EPERM, -1},
    {"set-vring-num/rejects-zero", BLK, ST_OWNED, VHOST_SET_VRING_NUM, A_STATE,
     0, 0, 0, 0, -EINVAL, -1},
    {"set-vring-num/rejects-non-power-of-two", BLK, ST_OWNED,
     VHOST_SET_VRING_NUM, A_STATE, 0, 100, 0, 0, -EINVAL, -1},
    {"set-vring-num/rejects-above-0xffff", BLK, ST_OWNED, VHOST_SET_VRING_NUM,
     A_STATE, 0, 0x10000, 0, 0, -EINVAL, -1},
    {"set-vring-num/accepts-power-of-two", BLK, ST_OWNED, VHOST_SET_VRING_NUM,
     A_STATE, 0, 64, 0, 0, 0, -1},
    {"set-vring-num/bad-index-is-enobufs", BLK, ST_OWNED, VHOST_SET_VRING_NUM,
     A_STATE, 1, 256, 0, 0, -ENOBUFS, -1},
    {"set-vring-num/bad-index-net-is-enobufs", NET, ST_OWNED,
     VHOST_SET_VRING_NUM, A_STATE, 3, 256, 0, 0, -ENOBUFS, -1},
    {"set-vring-addr/rejects-unknown-flags", BLK, ST_OWNED,
     VHOST_SET_VRING_ADDR, A_ADDR, 2, 0x1000, 0x2000, 0x3000, -EOPNOTSUPP, -1},
    {"set-vring-addr/rejects-odd-avail", BLK, ST_OWNED, VHOST_SET_VRING_ADDR,
     A_ADDR, 0, 0x1000, 0x2001, 0x3000, -EINVAL, -1},
    {"set-vring-addr/rejects-misaligned-used", BLK, ST_OWNED,
     VHOST_SET_VRING_ADDR, A_ADDR, 0, 0x1000, 0x2000, 0x3002, -EINVAL, -1},
    {"set-vring-addr/rejects-while-driver-ok", BLK, ST_DRIVER_OK,
     VHOST_SET_VRING_ADDR, A_ADDR, 0, 0x1000, 0x2000, 0x3000, -EINVAL, -1},
    {"set-vring-addr/accepted-while-suspended", BLK, ST_SUSPENDED,
     VHOST_SET_VRING_ADDR, A_ADDR, 0, 0x1000, 0x2000, 0x3000, 0, -1},
    {"set-vring-base/rejects-above-0xffff", BLK, ST_OWNED, VHOST_SET_VRING_BASE,
     A_STATE, 0, 0x10000, 0, 0, -EINVAL, -1},
    {"set-vring-base/rejects-while-driver-ok", BLK, ST_DRIVER_OK,
     VHOST_SET_VRING_BASE, A_STATE, 0, 5, 0, 0, -EINVAL, -1},
    {"set-vring-base/accepted-while-suspended", BLK, ST_SUSPENDED,
     VHOST_SET_VRING_BASE, A_STATE, 0, 5, 0, 0, 0, -1},
    {"get-vring-base/any-state", BLK, ST_DRIVER_OK, VHOST_GET_VRING_BASE,
     A_STATE, 0, 77, 0, 0, 0, 0},
    {"get-vring-base/bad-index-is-enobufs", BLK, ST_OWNED, VHOST_GET_VRING_BASE,
     A_STATE, 1, 0, 0, 0, -ENOBUFS, -1},
    {"set-vring-kick/bad-fd-is-ebadf", BLK, ST_OWNED, VHOST_SET_VRING_KICK,
     A_FILE, 0, FD_BAD, 0, 0, -EBADF, -1},
    {"set-vring-kick/not-an-eventfd-is-einval", BLK, ST_OWNED,
     VHOST_SET_VRING_KICK, A_FILE, 0, FD_NOT_EVENTFD, 0, 0, -EINVAL, -1},
    {"set-vring-kick/minus-one-unbinds", BLK, ST_OWNED, VHOST_SET_VRING_KICK,
     A_FILE, 0, -1, 0, 0, 0, -1},
    {"set-vring-call/bad-fd-is-ebadf", BLK, ST_OWNED, VHOST_SET_VRING_CALL,
     A_FILE, 0, FD_BAD, 0, 0, -EBADF, -1},
    {"set-vring-call/not-an-eventfd-is-einval", BLK, ST_OWNED,
     VHOST_SET_VRING_CALL, A_FILE, 0, FD_NOT_EVENTFD, 0, 0, -EINVAL, -1},
    {"set-vring-call/eventfd-accepted", BLK, ST_OWNED, VHOST_SET_VRING_CALL,
     A_FILE, 0, FD_EVENTFD, 0, 0, 0, -1},
    {"set-vring-err/not-an-eventfd-is-einval", BLK, ST_OWNED,
     VHOST_SET_VRING_ERR, A_FILE, 0, FD_NOT_EVENTFD, 0, 0, -EINVAL, -1},
    {"set-config-call/bad-fd-is-ebadf", BLK, ST_OPEN,
     VHOST_VDPA_SET_CONFIG_CALL, A_FD, FD_BAD, 0, 0, 0, -EBADF, -1},
    {"set-config-call/not-an-eventfd-is-einval", BLK, ST_OPEN,
     VHOST_VDPA_SET_CONFIG_CALL, A_FD, FD_NOT_EVENTFD, 0, 0, 0, -EINVAL, -1},
    {"set-vring-enable/never-fails", BLK, ST_OWNED, VHOST_VDPA_SET_VRING_ENABLE,
     A_STATE, 0, 1, 0, 0, 0, -1},
    {"set-features/ebusy-after-features-ok", BLK, ST_FEATURES_OK,
     VHOST_SET_FEATURES, A_U64, AP, 0, 0, 0, -EBUSY, -1},
    {"set-features/requires-access-platform", BLK, ST_OPEN, VHOST_SET_FEATURES,
     A_U64, BIT(VIRTIO_F_VERSION_1), 0, 0, 0, -EINVAL, -1},
    {"set-features/unknown-bits-dropped", BLK, ST_OPEN, VHOST_SET_FEATURES,
     A_U64, AP | BIT(60), 0, 0, 0, 0, -1},
    {"set-backend-features/unknown-bit-is-eopnotsupp", BLK, ST_OPEN,
     VHOST_SET_BACKEND_FEATURES, A_U64, BIT(0), 0, 0, 0, -EOPNOTSUPP, -1},
    {"set-backend-features/high-bit-is-eopnotsupp", BLK, ST_OPEN,
     VHOST_SET_BACKEND_FEATURES, A_U64, BIT(9), 0, 0, 0, -EOPNOTSUPP, -1},
    {"set-backend-features/desc-asid-needs-iotlb-asid", BLK, ST_OPEN,
     VHOST_SET_BACKEND_FEATURES, A_U64, BIT(VHOST_BACKEND_F_DESC_ASID), 0, 0, 0,
     -EINVAL, -1},
    {"set-backend-features/desc-asid-unsupported", BLK, ST_OPEN,
     VHOST_SET_BACKEND_FEATURES, A_U64,
     BIT(VHOST_BACKEND_F_DESC_ASID) | BIT(VHOST_BACKEND_F_IOTLB_ASID), 0, 0, 0,
     -EOPNOTSUPP, -1},
    {"set-backend-features/all-offered-accepted", BLK, ST_OPEN,
     VHOST_SET_BACKEND_FEATURES, A_U64, 0x17E, 0, 0, 0, 0, -1},
    {"set-log-base/enotty", BLK, ST_OWNED, VHOST_SET_LOG_BASE, A_U64, 0, 0, 0,
     0, -ENOTTY, -1},
    {"set-log-fd/enotty", BLK, ST_OWNED, VHOST_SET_LOG_FD, A_FD, -1, 0, 0, 0,
     -ENOTTY, -1},
    {"reset-owner/enotty", BLK, ST_OWNED, VHOST_RESET_OWNER, A_U32, 0, 0, 0, 0,
     -ENOTTY, -1},
    {"unknown-ioctl/enotty", BLK, ST_OWNED, _IO(VHOST_VIRTIO, 0x99), A_U32, 0,
     0, 0, 0, -ENOTTY, -1},
    {"unknown-ioctl/eperm-without-owner", BLK, ST_OPEN, _IO(VHOST_VIRTIO, 0x99),
     A_U32, 0, 0, 0, 0, -EPERM, -1},
    {"vring-ioctl/null-arg-is-efault", BLK, ST_OWNED, VHOST_SET_VRING_NUM,
     A_NULL, 0, 0, 0, 0, -EFAULT, -1},
    {"set-status/rejects-clearing-a-bit", BLK, ST_FEATURES_OK,
     VHOST_VDPA_SET_STATUS, A_U8, VIRTIO_CONFIG_S_ACKNOWLEDGE, 0, 0, 0, -EINVAL,
     -1},
    {"set-status/zero-resets", BLK, ST_DRIVER_OK, VHOST_VDPA_SET_STATUS, A_U8,
     0, 0, 0, 0, 0, -1},
    {"get-config/rejects-zero-length", BLK, ST_OPEN, VHOST_VDPA_GET_CONFIG,
     A_CONFIG, 0, 0, 0, 0, -EINVAL, -1},
    {"get-config/rejects-offset-beyond-size", BLK, ST_OPEN,
     VHOST_VDPA_GET_CONFIG, A_CONFIG, 97, 1, 0, 0, -EINVAL, -1},
    {"get-config/rejects-length-beyond-end", BLK, ST_OPEN,
     VHOST_VDPA_GET_CONFIG, A_CONFIG, 90, 7, 0, 0, -EINVAL, -1},
    {"get-config/accepts-whole-space", BLK, ST_OPEN, VHOST_VDPA_GET_CONFIG,
     A_CONFIG, 0, 96, 0, 0, 0, -1},
    {"get-config/net-is-24-bytes", NET, ST_OPEN, VHOST_VDPA_GET_CONFIG,
     A_CONFIG, 0, 25, 0, 0, -EINVAL, -1},
    {"set-config/rejects-zero-length", BLK, ST_OPEN, VHOST_VDPA_SET_CONFIG,
     A_CONFIG, 0, 0, 0, 0, -EINVAL, -1},
    {"set-config/rejects-offset-beyond-size", BLK, ST_OPEN,
     VHOST_VDPA_SET_CONFIG, A_CONFIG, 97, 1, 0, 0, -EINVAL, -1},
    {"set-config/rejects-length-beyond-end", BLK, ST_OPEN,
     VHOST_VDPA_SET_CONFIG, A_CONFIG, 90, 7, 0, 0, -EINVAL, -1},
    {"set-group-asid/rejects-asid-ge-nas", BLK, ST_OWNED,
     VHOST_VDPA_SET_GROUP_ASID, A_STATE, 0, 1, 0, 0, -EINVAL, -1},
    /* vhost_vdpa checks the group against ngroups since 6.19 (cd025c1e876b,
     * also in 6.18 stable): vdpa_sim's own check was `>`, off by one. */
    {"set-group-asid/rejects-group-ge-ngroups", NET, ST_OWNED,
     VHOST_VDPA_SET_GROUP_ASID, A_STATE, 2, 0, 0, 0, -EINVAL, -1},
    {"set-group-asid/net-cvq-group-to-as-1", NET, ST_OWNED,
     VHOST_VDPA_SET_GROUP_ASID, A_STATE, 1, 1, 0, 0, 0, -1},
    {"get-vring-group/net-cvq-is-group-1", NET, ST_OWNED,
     VHOST_VDPA_GET_VRING_GROUP, A_STATE, 2, 0, 0, 0, 0, 1},
    {"get-vring-desc-group/eopnotsupp", NET, ST_OWNED,
     VHOST_VDPA_GET_VRING_DESC_GROUP, A_STATE, 0, 0, 0, 0, -EOPNOTSUPP, -1},
    {"get-vring-size/max-before-driver-ok", BLK, ST_OWNED,
     VHOST_VDPA_GET_VRING_SIZE, A_STATE, 0, 0, 0, 0, 0, 256},
    {"suspend/no-op-before-driver-ok", BLK, ST_OPEN, VHOST_VDPA_SUSPEND, A_NONE,
     0, 0, 0, 0, 0, -1},
    {"resume/no-op-before-driver-ok", BLK, ST_OPEN, VHOST_VDPA_RESUME, A_NONE,
     0, 0, 0, 0, 0, -1},
    {"suspend/works-without-owner", BLK, ST_DRIVER_OK, VHOST_VDPA_SUSPEND,
     A_NONE, 0, 0, 0, 0, 0, -1},
};

static void
reach(Fx *f, State st)
{
    g_autoptr(GError) err = NULL;

    if (st == ST_OWNED) {
        g_assert_true(gw_vdpa_set_owner(f->b, &err));
    } else if (st >= ST_FEATURES_OK) {
        g_assert_true(gw_test_vdpa_init(f->b, ~0ull, &err));
    }
    if (st >= ST_DRIVER_OK) {
        g_assert_true(gw_vdpa_set_status(f->b, DOK, &err));
    }
    if (st == ST_SUSPENDED) {
        g_assert_true(gw_vdpa_suspend(f->b, &err));
    }
}

static int
fd_of(int64_t v, int *tmp)
{
    switch (v) {
    case FD_BAD:
        return 9999;
    case FD_NOT_EVENTFD:
        return *tmp = open("/dev/null", O_RDONLY | O_CLOEXEC);
    case FD_EVENTFD:
        return *tmp = eventfd(0, EFD_CLOEXEC);
    default:
        return (int)v;
    }
}

static void
run_case(gconstpointer data)
{
    const Case *c = data;
    union {
        struct vhost_vring_state s;
        struct vhost_vring_addr a;
        struct vhost_vring_file f;
        uint64_t u64;
        uint32_t u32;
        uint8_t u8;
        int fd;
        uint8_t cfg[8 + 128];
    } arg = {0};
    struct vhost_vdpa_config *cfg = (void *)arg.cfg;
    void *p = &arg;
    int tmp = -1;
    Fx f;

    fx_open(&f, c->mgmtdev ? c->mgmtdev : "vdpasim_blk", NULL);
    reach(&f, c->state);
    switch (c->kind) {
    case A_NONE:
    case A_NULL:
        p = NULL;
        break;
    case A_STATE:
        arg.s = (struct vhost_vring_state){.index = c->a, .num = c->b};
        break;
    case A_ADDR:
        arg.a = (struct vhost_vring_addr){.flags = c->a,
                                          .desc_user_addr = c->b,
                                          .avail_user_addr = c->c,
                                          .used_user_addr = c->d};
        break;
    case A_FILE:
        arg.f = (struct vhost_vring_file){.index = c->a,
                                          .fd = fd_of((int64_t)c->b, &tmp)};
        break;
    case A_U64:
        arg.u64 = c->a;
        break;
    case A_U32:
        arg.u32 = c->a;
        break;
    case A_U8:
        arg.u8 = c->a;
        break;
    case A_FD:
        arg.fd = fd_of((int64_t)c->a, &tmp);
        break;
    case A_CONFIG:
        cfg->off = c->a;
        cfg->len = c->b;
        break;
    }
    g_assert_cmpint(gw_vdpa_backend_ioctl(f.b, c->request, p), ==, c->want);
    if (c->want_num >= 0) {
        g_assert_cmpint(arg.s.num, ==, c->want_num);
    }
    if (tmp >= 0) {
        close(tmp);
    }
    fx_close(&f);
}

/* IOTLB writes: every handler error is EFAULT, framing errors EINVAL. */
typedef struct {
    const char *path;
    const char *mgmtdev;
    bool owned;
    uint64_t backend_features;
    uint32_t msg_type;   /* vhost_msg_v2.type */
    uint32_t asid;       /* vhost_msg_v2.asid */
    uint8_t iotlb_type;  /* vhost_iotlb_msg.type */
    uint64_t iova, size; /* size 0 = the test memory's size */
    size_t len;          /* bytes written; 0 = 72 */
    bool pre_update;     /* map the memory at FX_IOVA first */
    bool pre_batch;      /* BATCH_BEGIN on asid 0 first */
    int want;
} IotlbCase;

#define ASIDF BIT(VHOST_BACKEND_F_IOTLB_ASID)

static const IotlbCase iotlb_cases[] = {
    {"update/accepted", BLK, true, 0, 2, 0, VHOST_IOTLB_UPDATE, FX_IOVA, 0, 0,
     false, false, 72},
    {"update/needs-owner-efault", BLK, false, 0, 2, 0, VHOST_IOTLB_UPDATE,
     FX_IOVA, 0, 0, false, false, -EFAULT},
    {"update/size-zero-is-einval", BLK, true, 0, 2, 0, VHOST_IOTLB_UPDATE,
     FX_IOVA, 1, 0, false, false, -EINVAL},
    {"update/iova-overflow-efault", BLK, true, 0, 2, 0, VHOST_IOTLB_UPDATE,
     UINT64_MAX - 10, 4096, 0, false, false, -EFAULT},
    {"update/overlap-efault", BLK, true, 0, 2, 0, VHOST_IOTLB_UPDATE,
     FX_IOVA + 4096, 4096, 0, true, false, -EFAULT},
    {"update/asid-ignored-without-iotlb-asid", BLK, true, 0, 2, 7,
     VHOST_IOTLB_UPDATE, FX_IOVA, 0, 0, false, false, 72},
    {"update/asid-ge-nas-efault", BLK, true, ASIDF, 2, 1, VHOST_IOTLB_UPDATE,
     FX_IOVA, 0, 0, false, false, -EFAULT},
    {"update/net-asid-1-accepted", NET, true, ASIDF, 2, 1, VHOST_IOTLB_UPDATE,
     FX_IOVA, 0, 0, false, false, 72},
    {"update/other-asid-inside-batch-efault", NET, true, ASIDF, 2, 1,
     VHOST_IOTLB_UPDATE, FX_IOVA, 0, 0, false, true, -EFAULT},
    {"invalidate/accepted", BLK, true, 0, 2, 0, VHOST_IOTLB_INVALIDATE, FX_IOVA,
     4096, 0, true, false, 72},
    {"invalidate/never-mapped-as-efault", BLK, true, 0, 2, 0,
     VHOST_IOTLB_INVALIDATE, FX_IOVA, 4096, 0, false, false, -EFAULT},
    {"batch-begin/accepted", BLK, true, 0, 2, 0, VHOST_IOTLB_BATCH_BEGIN, 0, 0,
     0, false, false, 72},
    {"batch-end/accepted-after-begin", BLK, true, 0, 2, 0,
     VHOST_IOTLB_BATCH_END, 0, 0, 0, false, true, 72},
    {"msg/unknown-iotlb-type-efault", BLK, true, 0, 2, 0, 9, 0, 0, 0, true,
     false, -EFAULT},
    {"msg/unknown-msg-type-einval", BLK, true, 0, 3, 0, VHOST_IOTLB_UPDATE,
     FX_IOVA, 0, 0, false, false, -EINVAL},
    {"msg/short-write-einval", BLK, true, 0, 2, 0, VHOST_IOTLB_UPDATE, FX_IOVA,
     0, 20, false, false, -EINVAL},
    {"msg/v1-message-accepted", BLK, true, 0, 1, 0, VHOST_IOTLB_UPDATE, FX_IOVA,
     0, 0, false, false, 72},
};

static void
run_iotlb_case(gconstpointer data)
{
    const IotlbCase *c = data;
    g_autoptr(GError) err = NULL;
    struct vhost_msg_v2 m = {.type = c->msg_type, .asid = c->asid};
    Fx f;

    fx_open(&f, c->mgmtdev ? c->mgmtdev : "vdpasim_blk", NULL);
    if (c->owned) {
        g_assert_true(gw_vdpa_set_owner(f.b, &err));
    }
    g_assert_true(gw_vdpa_set_backend_features(f.b, c->backend_features, &err));
    if (c->pre_update) {
        g_assert_true(gw_vdpa_iotlb_update(f.b, 0, FX_IOVA, FX_MEM_SIZE,
                                           f.mem->base, VHOST_ACCESS_RW, &err));
    }
    if (c->pre_batch) {
        g_assert_true(gw_vdpa_iotlb_batch_begin(f.b, 0, &err));
    }
    m.iotlb = (struct vhost_iotlb_msg){
        .iova = c->iova,
        .size = c->size == 1 ? 0
                : c->size    ? c->size
                             : FX_MEM_SIZE,
        .uaddr = (uintptr_t)f.mem->base,
        .perm = VHOST_ACCESS_RW,
        .type = c->iotlb_type,
    };
    g_assert_cmpint(gw_vdpa_backend_write(f.b, &m, c->len ? c->len : 72), ==,
                    c->want);
    fx_close(&f);
}

static void
test_read_unsupported(void)
{
    uint8_t buf[72];
    Fx f;

    fx_open(&f, "vdpasim_blk", NULL);
    g_assert_cmpint(gw_vdpa_backend_read(f.b, buf, sizeof(buf)), ==, -EINVAL);
    fx_close(&f);
}

/* Without IOTLB_PERSIST a reset empties the device's map, not vhost's. */
static void
test_reset_without_persist(void)
{
    g_autoptr(GError) err = NULL;
    Fx f;

    fx_open(&f, "vdpasim_blk", NULL);
    fx_start(&f, 1);
    g_assert_true(gw_vdpa_set_status(f.b, 0, &err));
    g_assert_false(gw_vdpa_iotlb_update(f.b, 0, FX_IOVA, FX_MEM_SIZE,
                                        f.mem->base, VHOST_ACCESS_RW, &err));
    g_assert_error(err, GW_VDPA_ERRNO_ERROR, EFAULT); /* EEXIST inside */
    g_clear_error(&err);
    g_assert_true(gw_vdpa_iotlb_invalidate(f.b, 0, FX_IOVA, FX_MEM_SIZE, &err));
    g_assert_true(gw_vdpa_iotlb_update(f.b, 0, FX_IOVA, FX_MEM_SIZE,
                                       f.mem->base, VHOST_ACCESS_RW, &err));
    fx_close(&f);
}

/* VA devices map only shared memory: private pages are skipped. */
static void
test_private_memory_not_mapped(void)
{
    g_autoptr(GError) err = NULL;
    uint8_t *priv = g_malloc0(1 << 20);
    Fx f;

    fx_open(&f, "vdpasim_blk", NULL);
    g_assert_true(gw_vdpa_set_owner(f.b, &err));
    g_assert_true(gw_vdpa_iotlb_update(f.b, 0, 0x10000000, 1 << 20, priv,
                                       VHOST_ACCESS_RW, &err));
    /* Nothing was mapped, so the same range can be mapped again. */
    g_assert_true(gw_vdpa_iotlb_update(f.b, 0, 0x10000000, FX_MEM_SIZE,
                                       f.mem->base, VHOST_ACCESS_RW, &err));
    g_free(priv);
    fx_close(&f);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    fx_runtime_dir();
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *p = g_strdup_printf("/vdpa/sim/%s", cases[i].path);
        g_test_add_data_func(p, &cases[i], run_case);
    }
    for (gsize i = 0; i < G_N_ELEMENTS(iotlb_cases); i++) {
        g_autofree char *p =
            g_strdup_printf("/vdpa/sim/iotlb/%s", iotlb_cases[i].path);
        g_test_add_data_func(p, &iotlb_cases[i], run_iotlb_case);
    }
    g_test_add_func("/vdpa/sim/read/einval", test_read_unsupported);
    g_test_add_func("/vdpa/sim/iotlb/reset-without-persist-keeps-vhost-map",
                    test_reset_without_persist);
    g_test_add_func("/vdpa/sim/iotlb/private-memory-is-skipped",
                    test_private_memory_not_mapped);
    return g_test_run();
}
