/*
 * The vDPA simulator driven through the seam only, as a VMM would:
 * virtio init, feature negotiation, IOTLB mapping of memfd memory, vring
 * setup, then blk and net traffic and the failure paths.
 */
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include "vdpa-fixture.h"

static void
test_blk_identity(void)
{
    Fx f;
    uint32_t id, size, vqs, u32;
    uint64_t features, backend, first, last;
    uint16_t num;
    uint8_t cfg[96];
    g_autoptr(GError) err = NULL;

    fx_open(&f, "vdpasim_blk", NULL);
    g_assert_true(gw_vdpa_get_device_id(f.b, &id, &err));
    g_assert_cmpuint(id, ==, VIRTIO_ID_BLOCK);
    g_assert_true(gw_vdpa_get_features(f.b, &features, &err));
    g_assert_cmphex(features, ==, 0x308007646ull);
    g_assert_true(gw_vdpa_get_backend_features(f.b, &backend, &err));
    g_assert_cmphex(backend, ==, 0x17E);
    g_assert_true(gw_vdpa_get_config_size(f.b, &size, &err));
    g_assert_cmpuint(size, ==, 96);
    g_assert_true(gw_vdpa_get_vqs_count(f.b, &vqs, &err));
    g_assert_cmpuint(vqs, ==, 1);
    g_assert_true(gw_vdpa_get_vring_num_max(f.b, &num, &err));
    g_assert_cmpuint(num, ==, 256);
    g_assert_true(gw_vdpa_get_iova_range(f.b, &first, &last, &err));
    g_assert_cmphex(first, ==, 0);
    g_assert_cmphex(last, ==, UINT64_MAX);
    g_assert_cmpint(gw_vdpa_backend_ioctl(f.b, VHOST_VDPA_GET_GROUP_NUM, &u32),
                    ==, 0);
    g_assert_cmpuint(u32, ==, 1);
    g_assert_cmpint(gw_vdpa_backend_ioctl(f.b, VHOST_VDPA_GET_AS_NUM, &u32), ==,
                    0);
    g_assert_cmpuint(u32, ==, 1);
    g_assert_true(gw_vdpa_get_config(f.b, 0, cfg, sizeof(cfg), &err));
    g_assert_cmphex(*(uint64_t *)cfg, ==, 0x40000);     /* capacity */
    g_assert_cmpuint(*(uint32_t *)(cfg + 8), ==, 4096); /* size_max */
    g_assert_cmpuint(*(uint32_t *)(cfg + 12), ==, 32);  /* seg_max */
    g_assert_cmpuint(*(uint32_t *)(cfg + 20), ==, 512); /* blk_size */
    g_assert_cmpuint(*(uint16_t *)(cfg + 34), ==, 1);   /* num_queues */
    g_assert_cmphex(*(uint32_t *)(cfg + 36), ==, 0xFFFFFFFF);
    g_assert_no_error(err);
    fx_close(&f);
}

static void
test_blk_config_rebuilt(void)
{
    Fx f;
    uint8_t junk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint64_t cap;
    g_autoptr(GError) err = NULL;

    fx_open(&f, "vdpasim_blk", ",capacity=1M");
    g_assert_true(gw_vdpa_set_config(f.b, 0, junk, 8, &err));
    g_assert_true(gw_vdpa_get_config(f.b, 0, &cap, 8, &err));
    g_assert_cmpuint(cap, ==, 2048); /* capacity= in sectors, not junk */
    fx_close(&f);
}

static void
test_blk_round_trip(void)
{
    Fx f;
    uint32_t used;

    fx_open(&f, "vdpasim_blk", NULL);
    fx_start(&f, 1);
    for (unsigned i = 0; i < 8192; i++) {
        f.data[i] = (uint8_t)(i * 7 + 3);
    }
    g_assert_cmpuint(fx_blk(&f, VIRTIO_BLK_T_OUT, 100, 8192, &used), ==,
                     VIRTIO_BLK_S_OK);
    g_assert_cmpuint(used, ==, 1); /* only the status byte is written */
    memset(f.data, 0, 8192);
    g_assert_cmpuint(fx_blk(&f, VIRTIO_BLK_T_IN, 100, 8192, &used), ==,
                     VIRTIO_BLK_S_OK);
    g_assert_cmpuint(used, ==, 8192 + 1);
    for (unsigned i = 0; i < 8192; i++) {
        g_assert_cmpuint(f.data[i], ==, (uint8_t)(i * 7 + 3));
    }
    fx_close(&f);
}

static void
test_blk_get_id_flush(void)
{
    Fx f;
    uint32_t used;

    fx_open(&f, "vdpasim_blk", NULL);
    fx_start(&f, 1);
    memset(f.data, 0xaa, 20);
    g_assert_cmpuint(fx_blk(&f, VIRTIO_BLK_T_GET_ID, 0, 20, &used), ==,
                     VIRTIO_BLK_S_OK);
    g_assert_cmpuint(used, ==, 21);
    g_assert_cmpmem(f.data, 20, "vdpa_blk_sim\0\0\0\0\0\0\0\0", 20);
    g_assert_cmpuint(fx_blk(&f, VIRTIO_BLK_T_FLUSH, 0, 0, &used), ==,
                     VIRTIO_BLK_S_OK);
    g_assert_cmpuint(used, ==, 1);
    /* Non-IN/OUT requests need sector 0. */
    g_assert_cmpuint(fx_blk(&f, VIRTIO_BLK_T_FLUSH, 1, 0, &used), ==,
                     VIRTIO_BLK_S_IOERR);
    g_assert_cmpuint(fx_blk(&f, 99, 0, 0, &used), ==, VIRTIO_BLK_S_IOERR);
    fx_close(&f);
}

static uint8_t
dwz(Fx *f, uint32_t type, uint64_t sector, uint32_t n, uint32_t flags)
{
    struct virtio_blk_discard_write_zeroes *r = (void *)f->data;

    r->sector = sector;
    r->num_sectors = n;
    r->flags = flags;
    /* The range goes device-readable: post by hand. */
    f->hdr->type = type;
    f->hdr->sector = 0;
    *f->status = 0xee;
    GwTestBuf bufs[] = {{f->hdr_iova, 16, false},
                        {f->data_iova, sizeof(*r), false},
                        {f->status_iova, 1, true}};
    g_assert_true(gw_test_vring_add(f->vq[0], bufs, 3, NULL));
    gw_test_vring_kick(f->vq[0]);
    g_assert_true(gw_test_vring_wait_used(f->vq[0], FX_TIMEOUT, NULL, NULL));
    return *f->status;
}

static void
test_blk_discard_write_zeroes(void)
{
    Fx f;

    fx_open(&f, "vdpasim_blk", NULL);
    fx_start(&f, 1);
    memset(f.data, 0x5a, 4096);
    g_assert_cmpuint(fx_blk(&f, VIRTIO_BLK_T_OUT, 8, 4096, NULL), ==, 0);
    g_assert_cmpuint(dwz(&f, VIRTIO_BLK_T_WRITE_ZEROES, 9, 2, 0), ==,
                     VIRTIO_BLK_S_OK);
    g_assert_cmpuint(fx_blk(&f, VIRTIO_BLK_T_IN, 8, 4096, NULL), ==, 0);
    g_assert_cmpuint(f.data[0], ==, 0x5a);
    g_assert_cmpuint(f.data[512], ==, 0);
    g_assert_cmpuint(f.data[1535], ==, 0);
    g_assert_cmpuint(f.data[1536], ==, 0x5a);
    g_assert_cmpuint(dwz(&f, VIRTIO_BLK_T_DISCARD, 0, 8, 0), ==,
                     VIRTIO_BLK_S_OK);
    g_assert_cmpuint(dwz(&f, VIRTIO_BLK_T_DISCARD, 0, 8, 1), ==,
                     VIRTIO_BLK_S_UNSUPP);
    g_assert_cmpuint(dwz(&f, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 2), ==,
                     VIRTIO_BLK_S_UNSUPP);
    g_assert_cmpuint(dwz(&f, VIRTIO_BLK_T_WRITE_ZEROES, 0x40000 - 1, 2, 0), ==,
                     VIRTIO_BLK_S_IOERR);
    fx_close(&f);
}

static void
test_blk_out_of_range(void)
{
    Fx f;
    uint32_t used;

    fx_open(&f, "vdpasim_blk", NULL);
    fx_start(&f, 1);
    g_assert_cmpuint(fx_blk(&f, VIRTIO_BLK_T_IN, 0x40000 - 1, 512, &used), ==,
                     VIRTIO_BLK_S_OK);
    g_assert_cmpuint(fx_blk(&f, VIRTIO_BLK_T_IN, 0x40000 - 1, 1024, &used), ==,
                     VIRTIO_BLK_S_IOERR);
    /* Used length still counts the skipped data bytes? No: status only. */
    g_assert_cmpuint(used, ==, 1);
    g_assert_cmpuint(fx_blk(&f, VIRTIO_BLK_T_OUT, 0x40000, 512, &used), ==,
                     VIRTIO_BLK_S_IOERR);
    g_assert_cmpuint(fx_blk(&f, VIRTIO_BLK_T_OUT, UINT64_MAX / 512, 512, &used),
                     ==, VIRTIO_BLK_S_IOERR);
    /* sector << 9 is 2^63: a pointer from it overflows (UBSan caught it). */
    g_assert_cmpuint(
        fx_blk(&f, VIRTIO_BLK_T_IN, 0x40000000000000ull, 512, &used), ==,
        VIRTIO_BLK_S_IOERR);
    g_assert_cmpuint(
        fx_blk(&f, VIRTIO_BLK_T_OUT, 0x40000000000000ull, 512, &used), ==,
        VIRTIO_BLK_S_IOERR);
    /* More than size_max * seg_max sectors in one request. */
    fx_close(&f);
}

static void
test_blk_backing_file(void)
{
    g_autofree char *file =
        g_build_filename(g_getenv("GODWIT_RUNTIME_DIR"), "disk.img", NULL);
    g_autofree char *extra = g_strdup_printf(",backing=%s,capacity=1M", file);
    g_autofree char *contents = NULL;
    gsize len;
    Fx f;

    fx_open(&f, "vdpasim_blk", extra);
    fx_start(&f, 1);
    memcpy(f.data, "persisted!", 10);
    g_assert_cmpuint(fx_blk(&f, VIRTIO_BLK_T_OUT, 3, 512, NULL), ==, 0);
    g_assert_true(g_file_get_contents(file, &contents, &len, NULL));
    g_assert_cmpuint(len, ==, 1 << 20);
    g_assert_cmpmem(contents + 3 * 512, 10, "persisted!", 10);
    fx_close(&f);
    /* A second "host" on the same file sees the data. */
    g_autofree char *extra2 = g_strdup_printf(",backing=%s", file);
    fx_open(&f, "vdpasim_blk", extra2);
    fx_start(&f, 1);
    g_assert_cmpuint(fx_blk(&f, VIRTIO_BLK_T_IN, 3, 512, NULL), ==, 0);
    g_assert_cmpmem(f.data, 10, "persisted!", 10);
    uint64_t cap;
    g_assert_true(gw_vdpa_get_config(f.b, 0, &cap, 8, NULL));
    g_assert_cmpuint(cap, ==, 2048); /* file size is the capacity */
    fx_close(&f);
    unlink(file);
}

static void
test_blk_kicks(void)
{
    Fx f;
    g_autoptr(GError) err = NULL;
    uint32_t base;

    fx_open(&f, "vdpasim_blk", NULL);
    fx_start(&f, 1);
    g_assert_true(gw_vdpa_suspend(f.b, &err));
    fx_blk_post(&f, VIRTIO_BLK_T_FLUSH, 0, 0);
    gw_test_vring_kick(f.vq[0]);
    /* Suspended: nothing is used, the kick is remembered. */
    g_assert_false(gw_test_vring_wait_used(f.vq[0], 200, NULL, NULL));
    g_assert_true(gw_vdpa_get_vring_base(f.b, 0, &base, &err));
    g_assert_cmpuint(base, ==, 0);
    g_assert_true(gw_vdpa_resume(f.b, &err));
    g_assert_true(gw_test_vring_wait_used(f.vq[0], FX_TIMEOUT, NULL, NULL));
    g_assert_true(gw_vdpa_get_vring_base(f.b, 0, &base, &err));
    g_assert_cmpuint(base, ==, 1);
    /* A disabled vq drops kicks. */
    g_assert_true(gw_vdpa_set_vring_enable(f.b, 0, false, &err));
    fx_blk_post(&f, VIRTIO_BLK_T_FLUSH, 0, 0);
    gw_test_vring_kick(f.vq[0]);
    g_assert_false(gw_test_vring_wait_used(f.vq[0], 200, NULL, NULL));
    g_assert_true(gw_vdpa_set_vring_enable(f.b, 0, true, &err));
    g_assert_false(gw_test_vring_wait_used(f.vq[0], 200, NULL, NULL));
    gw_test_vring_kick(f.vq[0]);
    g_assert_true(gw_test_vring_wait_used(f.vq[0], FX_TIMEOUT, NULL, NULL));
    fx_close(&f);
}

static void
test_blk_kick_before_driver_ok(void)
{
    Fx f;
    g_autoptr(GError) err = NULL;

    fx_open(&f, "vdpasim_blk", NULL);
    g_assert_true(gw_test_vdpa_init(f.b, ~0ull, &err));
    g_assert_true(gw_vdpa_iotlb_update(f.b, 0, FX_IOVA, FX_MEM_SIZE,
                                       f.mem->base, VHOST_ACCESS_RW, &err));
    f.vq[0] = gw_test_vring_new(f.mem, 0, 256);
    g_assert_true(gw_test_vring_setup(f.vq[0], f.b, 0, &err));
    f.hdr = gw_test_mem_alloc(f.mem, 16, 16, &f.hdr_iova);
    f.status = gw_test_mem_alloc(f.mem, 1, 1, &f.status_iova);
    fx_blk_post(&f, VIRTIO_BLK_T_FLUSH, 0, 0);
    gw_test_vring_kick(f.vq[0]);
    g_assert_false(gw_test_vring_wait_used(f.vq[0], 200, NULL, NULL));
    g_assert_true(gw_vdpa_set_status(
        f.b,
        VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
            VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK,
        &err));
    /* The early kick was dropped, not remembered. */
    g_assert_false(gw_test_vring_wait_used(f.vq[0], 200, NULL, NULL));
    gw_test_vring_kick(f.vq[0]);
    g_assert_true(gw_test_vring_wait_used(f.vq[0], FX_TIMEOUT, NULL, NULL));
    fx_close(&f);
}

static void
test_blk_unmapped_dma(void)
{
    Fx f;
    g_autoptr(GError) err = NULL;
    uint8_t status;
    int cfg_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

    fx_open(&f, "vdpasim_blk", NULL);
    fx_start(&f, 1);
    g_assert_true(gw_vdpa_set_config_call(f.b, cfg_fd, &err));
    GwTestBuf bufs[] = {{f.hdr_iova, 16, false},
                        {0x40000000, 512, true}, /* not mapped */
                        {f.status_iova, 1, true}};
    f.hdr->type = VIRTIO_BLK_T_IN;
    g_assert_true(gw_test_vring_add(f.vq[0], bufs, 3, NULL));
    gw_test_vring_kick(f.vq[0]);
    g_assert_true(gw_test_wait_fd(cfg_fd, FX_TIMEOUT));
    g_assert_true(gw_vdpa_get_status(f.b, &status, &err));
    g_assert_cmphex(status & VIRTIO_CONFIG_S_NEEDS_RESET, !=, 0);
    g_assert_cmpuint(gw_test_vring_used_idx(f.vq[0]), ==, 0);
    /* A reset brings the device back. */
    g_assert_true(gw_vdpa_set_status(f.b, 0, &err));
    g_assert_true(gw_vdpa_get_status(f.b, &status, &err));
    g_assert_cmphex(status, ==, 0);
    close(cfg_fd);
    fx_close(&f);
}

static void
test_inject_needs_reset(void)
{
    Fx f;
    g_autoptr(GError) err = NULL;
    uint8_t status;

    fx_open(&f, "vdpasim_blk", NULL);
    fx_start(&f, 1);
    g_assert_true(gw_vdpa_sim_inject_failure(
        f.reg, "dev0", GW_VDPA_SIM_FAIL_NEEDS_RESET, &err));
    g_assert_true(gw_vdpa_get_status(f.b, &status, &err));
    g_assert_cmphex(status & VIRTIO_CONFIG_S_NEEDS_RESET, !=, 0);
    fx_blk_post(&f, VIRTIO_BLK_T_FLUSH, 0, 0);
    gw_test_vring_kick(f.vq[0]);
    g_assert_false(gw_test_vring_wait_used(f.vq[0], 200, NULL, NULL));
    g_assert_true(gw_vdpa_sim_inject_failure(f.reg, "dev0",
                                             GW_VDPA_SIM_FAIL_SUSPEND, &err));
    g_assert_false(gw_vdpa_suspend(f.b, &err));
    g_assert_error(err, GW_VDPA_ERRNO_ERROR, EIO);
    g_clear_error(&err);
    g_assert_true(gw_vdpa_suspend(f.b, &err));
    g_assert_true(gw_vdpa_sim_inject_failure(f.reg, "dev0",
                                             GW_VDPA_SIM_FAIL_RESUME, &err));
    g_assert_false(gw_vdpa_resume(f.b, &err));
    g_assert_error(err, GW_VDPA_ERRNO_ERROR, EIO);
    g_assert_false(gw_vdpa_sim_inject_failure(f.reg, "nope",
                                              GW_VDPA_SIM_FAIL_RESUME, NULL));
    fx_close(&f);
}

/* A device without .suspend/.resume, as vhost_vdpa_can_suspend sees it. */
static void
test_no_suspend(void)
{
    Fx f;
    g_autoptr(GError) err = NULL;
    uint64_t bf;
    const uint64_t sr =
        (1ull << VHOST_BACKEND_F_SUSPEND) | (1ull << VHOST_BACKEND_F_RESUME);

    fx_open(&f, "vdpasim_blk", NULL);
    g_assert_true(gw_vdpa_sim_inject_failure(
        f.reg, "dev0", GW_VDPA_SIM_FAIL_NO_SUSPEND, &err));
    g_assert_true(gw_vdpa_get_backend_features(f.b, &bf, &err));
    g_assert_cmphex(bf, ==, 0x17e & ~sr);
    g_assert_false(gw_vdpa_set_backend_features(
        f.b, (1ull << VHOST_BACKEND_F_IOTLB_MSG_V2) | sr, &err));
    g_assert_error(err, GW_VDPA_ERRNO_ERROR, EOPNOTSUPP);
    g_clear_error(&err);
    /* Before DRIVER_OK SUSPEND is the kernel's early no-op, after it
     * the missing op. */
    g_assert_true(gw_vdpa_suspend(f.b, &err));
    fx_start(&f, 1);
    g_assert_false(gw_vdpa_suspend(f.b, &err));
    g_assert_error(err, GW_VDPA_ERRNO_ERROR, EOPNOTSUPP);
    g_clear_error(&err);
    g_assert_false(gw_vdpa_resume(f.b, &err));
    g_assert_error(err, GW_VDPA_ERRNO_ERROR, EOPNOTSUPP);
    g_clear_error(&err);
    /* It still works, unsuspended. */
    g_assert_cmpuint(fx_blk(&f, VIRTIO_BLK_T_FLUSH, 0, 0, NULL), ==, 0);
    fx_close(&f);
}

/* net: a frame in TX; returns the RX used length (0 if none came). */
static uint32_t
net_send(Fx *f, const uint8_t dst[6], uint8_t **rx_out)
{
    uint64_t tx_iova, rx_iova;
    uint8_t *tx = gw_test_mem_alloc(f->mem, 64, 8, &tx_iova);
    uint8_t *rx = gw_test_mem_alloc(f->mem, 1536, 8, &rx_iova);
    GwTestBuf t = {tx_iova, 64, false}, r = {rx_iova, 1536, true};
    uint32_t len = 0;

    memcpy(tx + 12, dst, 6); /* after the 12-byte virtio_net_hdr_v1 */
    memcpy(tx + 12 + 12, "\x08\x00payload", 9);
    g_assert_true(gw_test_vring_add(f->vq[0], &r, 1, NULL));
    g_assert_true(gw_test_vring_add(f->vq[1], &t, 1, NULL));
    gw_test_vring_kick(f->vq[1]);
    g_assert_true(gw_test_vring_wait_used(f->vq[1], FX_TIMEOUT, NULL, NULL));
    /*
     * TX and RX complete under one hold of the device lock: once an ioctl
     * (which takes it) returns, the RX completion, if any, is visible.
     */
    uint32_t base;
    g_assert_true(gw_vdpa_get_vring_base(f->b, 0, &base, NULL));
    if (gw_test_vring_get_used(f->vq[0], NULL, &len)) {
        g_assert_cmpmem(rx, 64, tx, 64);
    }
    *rx_out = rx;
    return len;
}

static void
test_net_loopback(void)
{
    static const uint8_t own[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t mcast[6] = {0x01, 0, 0x5e, 0, 0, 1};
    static const uint8_t other[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x57};
    uint8_t cfg[24], *rx;
    uint32_t u32, group;
    struct vhost_vring_state s = {.index = 2};
    Fx f;

    fx_open(&f, "vdpasim_net", ",mac=52:54:00:12:34:56");
    g_assert_true(gw_vdpa_get_config(f.b, 0, cfg, 24, NULL));
    g_assert_cmpmem(cfg, 6, own, 6);
    g_assert_cmpuint(*(uint16_t *)(cfg + 6), ==, VIRTIO_NET_S_LINK_UP);
    g_assert_cmpuint(*(uint16_t *)(cfg + 10), ==, 1500);
    g_assert_true(gw_vdpa_get_vqs_count(f.b, &u32, NULL));
    g_assert_cmpuint(u32, ==, 3);
    g_assert_true(gw_vdpa_set_owner(f.b, NULL));
    g_assert_cmpint(gw_vdpa_backend_ioctl(f.b, VHOST_VDPA_GET_VRING_GROUP, &s),
                    ==, 0);
    group = s.num;
    g_assert_cmpuint(group, ==, 1);
    g_assert_cmpint(gw_vdpa_backend_ioctl(f.b, VHOST_VDPA_GET_AS_NUM, &u32), ==,
                    0);
    g_assert_cmpuint(u32, ==, 2);
    fx_close(&f);

    fx_open(&f, "vdpasim_net", ",mac=52:54:00:12:34:56");
    fx_start(&f, 3);
    g_assert_cmpuint(net_send(&f, bcast, &rx), ==, 64);
    g_assert_cmpuint(net_send(&f, own, &rx), ==, 64);
    g_assert_cmpuint(net_send(&f, mcast, &rx), ==, 64);
    g_assert_cmpuint(net_send(&f, other, &rx), ==, 0); /* dropped */
    fx_close(&f);
}

static void
test_net_cvq_mac(void)
{
    static const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0x42};
    uint64_t out_iova, ack_iova;
    uint8_t *out, *ack, cfg[6], *rx;
    uint32_t len;
    Fx f;

    fx_open(&f, "vdpasim_net", NULL);
    fx_start(&f, 3);
    out = gw_test_mem_alloc(f.mem, 8, 8, &out_iova);
    ack = gw_test_mem_alloc(f.mem, 1, 1, &ack_iova);
    out[0] = VIRTIO_NET_CTRL_MAC;
    out[1] = VIRTIO_NET_CTRL_MAC_ADDR_SET;
    memcpy(out + 2, mac, 6);
    GwTestBuf b[] = {{out_iova, 8, false}, {ack_iova, 1, true}};
    *ack = 0xee;
    g_assert_true(gw_test_vring_add(f.vq[2], b, 2, NULL));
    gw_test_vring_kick(f.vq[2]);
    g_assert_true(gw_test_vring_wait_used(f.vq[2], FX_TIMEOUT, NULL, &len));
    g_assert_cmpuint(len, ==, 1);
    g_assert_cmpuint(*ack, ==, VIRTIO_NET_OK);
    g_assert_true(gw_vdpa_get_config(f.b, 0, cfg, 6, NULL));
    g_assert_cmpmem(cfg, 6, mac, 6);
    g_assert_cmpuint(net_send(&f, mac, &rx), ==, 64); /* new MAC is ours */
    /* Any other command: ERR, config unchanged. */
    out[0] = VIRTIO_NET_CTRL_RX;
    out[1] = 0;
    *ack = 0xee;
    g_assert_true(gw_test_vring_add(f.vq[2], b, 2, NULL));
    gw_test_vring_kick(f.vq[2]);
    g_assert_true(gw_test_vring_wait_used(f.vq[2], FX_TIMEOUT, NULL, &len));
    g_assert_cmpuint(*ack, ==, VIRTIO_NET_ERR);
    fx_close(&f);
}

/*
 * ignore-mac-config: SET_CONFIG writes the bytes past the MAC and leaves
 * the MAC (as mlx5_vdpa); offer-ctrl-rx: CTRL_RX offered and taken.
 */
static void
test_net_mlx5_hooks(void)
{
    /* mac, status, max_virtqueue_pairs */
    static const uint8_t cfg_in[10] = {2, 0, 0, 0, 0, 0x42, 1, 0, 0x34, 0x12};
    static const uint8_t sim_mac[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
    uint8_t cfg[10];
    uint64_t features;
    g_autoptr(GError) err = NULL;
    Fx f;

    fx_open(&f, "vdpasim_net", ",mac=52:54:00:12:34:56");
    g_assert_true(gw_vdpa_sim_inject_failure(
        f.reg, "dev0", GW_VDPA_SIM_FAIL_IGNORE_MAC_CONFIG, &err));
    g_assert_true(gw_vdpa_sim_inject_failure(
        f.reg, "dev0", GW_VDPA_SIM_FAIL_OFFER_CTRL_RX, &err));
    g_assert_true(gw_vdpa_set_config(f.b, 0, cfg_in, 10, &err));
    g_assert_true(gw_vdpa_get_config(f.b, 0, cfg, 10, &err));
    g_assert_cmpmem(cfg, 6, sim_mac, 6);
    g_assert_cmphex(cfg[8] | cfg[9] << 8, ==, 0x1234);
    g_assert_true(gw_vdpa_get_features(f.b, &features, &err));
    g_assert_cmphex(features & (1ull << VIRTIO_NET_F_CTRL_RX), !=, 0);
    g_assert_no_error(err);
    fx_close(&f);
}

/* no-enable-after-driver-ok: not offered, refused, and a queue enabled
 * after DRIVER_OK is refused (one enabled before stays usable). */
static void
test_no_late_enable(void)
{
    const uint64_t late = 1ull << VHOST_BACKEND_F_ENABLE_AFTER_DRIVER_OK;
    g_autoptr(GError) err = NULL;
    uint64_t bf;
    Fx f;

    fx_open(&f, "vdpasim_net", NULL);
    g_assert_true(gw_vdpa_sim_inject_failure(
        f.reg, "dev0", GW_VDPA_SIM_FAIL_NO_ENABLE_AFTER_DRIVER_OK, &err));
    g_assert_true(gw_vdpa_get_backend_features(f.b, &bf, &err));
    g_assert_cmphex(bf & late, ==, 0);
    g_assert_false(gw_vdpa_set_backend_features(
        f.b, (1ull << VHOST_BACKEND_F_IOTLB_MSG_V2) | late, &err));
    g_assert_error(err, GW_VDPA_ERRNO_ERROR, EOPNOTSUPP);
    g_clear_error(&err);
    fx_start(&f, 2); /* rx and tx enabled before DRIVER_OK */
    g_assert_false(gw_vdpa_set_vring_enable(f.b, 2, true, &err));
    g_assert_error(err, GW_VDPA_ERRNO_ERROR, EINVAL);
    fx_close(&f);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    fx_runtime_dir();
    g_test_add_func("/vdpa/sim/blk/identity-and-config", test_blk_identity);
    g_test_add_func("/vdpa/sim/blk/config-rebuilt-on-read",
                    test_blk_config_rebuilt);
    g_test_add_func("/vdpa/sim/blk/write-read-round-trip", test_blk_round_trip);
    g_test_add_func("/vdpa/sim/blk/get-id-and-flush", test_blk_get_id_flush);
    g_test_add_func("/vdpa/sim/blk/discard-write-zeroes",
                    test_blk_discard_write_zeroes);
    g_test_add_func("/vdpa/sim/blk/out-of-range-is-ioerr",
                    test_blk_out_of_range);
    g_test_add_func("/vdpa/sim/blk/backing-file-holds-data",
                    test_blk_backing_file);
    g_test_add_func("/vdpa/sim/blk/kicks-suspended-replayed-disabled-dropped",
                    test_blk_kicks);
    g_test_add_func("/vdpa/sim/blk/unmapped-dma-sets-needs-reset",
                    test_blk_unmapped_dma);
    g_test_add_func("/vdpa/sim/inject-failure", test_inject_needs_reset);
    g_test_add_func("/vdpa/sim/no-suspend-hides-and-refuses-suspend",
                    test_no_suspend);
    g_test_add_func("/vdpa/sim/net/loopback-broadcast-multicast-own-mac",
                    test_net_loopback);
    g_test_add_func("/vdpa/sim/net/cvq-mac-set-changes-config",
                    test_net_cvq_mac);
    g_test_add_func("/vdpa/sim/net/mac-config-ignored-and-ctrl-rx-offered",
                    test_net_mlx5_hooks);
    g_test_add_func("/vdpa/sim/no-enable-after-driver-ok-refuses-late-enable",
                    test_no_late_enable);
    g_test_add_func("/vdpa/sim/blk/kick-before-driver-ok-dropped",
                    test_blk_kick_before_driver_ok);
    return g_test_run();
}
