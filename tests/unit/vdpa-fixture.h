/*
 * Shared setup of the vDPA simulator tests: a registry in a private
 * runtime directory, one device opened through the seam, "guest RAM"
 * mapped into its IOTLB, and a blk request helper.
 */
#pragma once

#include <stdlib.h>
#include <string.h>
#include <glib/gstdio.h>
#include <godwit/util.h>
#include <godwit/vdpa-sim.h>
#include <godwit/vdpa.h>
#include "vring-driver.h"

#define FX_IOVA     0x100000ull /* IOVA != user address on purpose */
#define FX_MEM_SIZE (8u << 20)
#define FX_TIMEOUT  5000 /* ms: bounded waits only */

typedef struct {
    GwVdpaSimRegistry *reg;
    char *path;
    GwVdpaBackend *b;
    GwTestMem *mem;
    GwTestVring *vq[9]; /* up to 4 net queue pairs and the control queue */
    struct virtio_blk_outhdr *hdr;
    uint64_t hdr_iova;
    uint8_t *data;
    uint64_t data_iova;
    uint8_t *status;
    uint64_t status_iova;
} Fx;

/* Removes a directory tree the tests made (files and directories). */
static inline void
fx_rmtree(const char *path)
{
    g_autoptr(GDir) d = g_dir_open(path, 0, NULL);

    for (const char *e; d && (e = g_dir_read_name(d));) {
        g_autofree char *p = g_build_filename(path, e, NULL);
        if (g_file_test(p, G_FILE_TEST_IS_DIR)) {
            fx_rmtree(p);
        } else {
            g_unlink(p);
        }
    }
    g_rmdir(path);
}

static inline void
fx_runtime_dir_remove(void)
{
    fx_rmtree(g_getenv("GODWIT_RUNTIME_DIR"));
}

/*
 * Points GODWIT_RUNTIME_DIR at a fresh temporary directory, removed when
 * the test program exits.  Call first in main(), before any thread.
 */
static inline void
fx_runtime_dir(void)
{
    g_autofree char *dir = g_dir_make_tmp("gw-vdpa-test-XXXXXX", NULL);

    g_assert_nonnull(dir);
    g_setenv("GODWIT_RUNTIME_DIR", dir, true);
    atexit(fx_runtime_dir_remove);
}

/* Registry + device `mgmtdev` named `name`, opened; no init. */
static inline void
fx_open(Fx *f, const char *mgmtdev, const char *extra)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *spec =
        g_strdup_printf("name=dev0,mgmtdev=%s%s", mgmtdev, extra ? extra : "");
    g_autoptr(GwVdpaSimConfig) cfg = gw_vdpa_sim_config_parse(spec, &err);

    g_assert_no_error(err);
    memset(f, 0, sizeof(*f));
    f->reg = gw_vdpa_sim_registry_new(NULL, &err);
    g_assert_no_error(err);
    g_assert_true(gw_vdpa_sim_add(f->reg, cfg, &f->path, &err));
    f->b = gw_vdpa_open(f->reg, f->path, &err);
    g_assert_no_error(err);
    f->mem = gw_test_mem_new(FX_MEM_SIZE, FX_IOVA);
}

/* Init (features), map the RAM, set up `nvqs` rings, DRIVER_OK. */
static inline void
fx_start(Fx *f, unsigned nvqs)
{
    g_autoptr(GError) err = NULL;

    g_assert_true(gw_test_vdpa_init(f->b, ~0ull, &err));
    g_assert_no_error(err);
    g_assert_true(gw_vdpa_iotlb_update(f->b, 0, FX_IOVA, FX_MEM_SIZE,
                                       f->mem->base, VHOST_ACCESS_RW, &err));
    for (unsigned i = 0; i < nvqs; i++) {
        f->vq[i] = gw_test_vring_new(f->mem, i, 256);
        g_assert_true(gw_test_vring_setup(f->vq[i], f->b, 0, &err));
        g_assert_no_error(err);
    }
    f->hdr = gw_test_mem_alloc(f->mem, sizeof(*f->hdr), 16, &f->hdr_iova);
    f->data = gw_test_mem_alloc(f->mem, 128 * 1024, 4096, &f->data_iova);
    f->status = gw_test_mem_alloc(f->mem, 1, 1, &f->status_iova);
    g_assert_true(gw_vdpa_set_status(
        f->b,
        VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
            VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK,
        &err));
}

static inline void
fx_close(Fx *f)
{
    for (unsigned i = 0; i < G_N_ELEMENTS(f->vq); i++) {
        g_clear_pointer(&f->vq[i], gw_test_vring_free);
    }
    g_clear_pointer(&f->b, gw_vdpa_backend_unref);
    g_clear_pointer(&f->reg, gw_vdpa_sim_registry_free);
    g_clear_pointer(&f->mem, gw_test_mem_free);
    g_clear_pointer(&f->path, g_free);
}

/* Posts one blk request with `len` data bytes at f->data (no kick). */
static inline void
fx_blk_post(Fx *f, uint32_t type, uint64_t sector, uint32_t len)
{
    bool in = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
    GwTestBuf bufs[3] = {{f->hdr_iova, sizeof(*f->hdr), false}};
    unsigned n = 1;

    f->hdr->type = type;
    f->hdr->sector = sector;
    *f->status = 0xee;
    if (len) {
        bufs[n++] = (GwTestBuf){f->data_iova, len, in};
    }
    bufs[n++] = (GwTestBuf){f->status_iova, 1, true};
    g_assert_true(gw_test_vring_add(f->vq[0], bufs, n, NULL));
}

/* One blk request, waited for; returns the status byte. */
static inline uint8_t
fx_blk(Fx *f, uint32_t type, uint64_t sector, uint32_t len, uint32_t *used_len)
{
    fx_blk_post(f, type, sector, len);
    gw_test_vring_kick(f->vq[0]);
    g_assert_true(
        gw_test_vring_wait_used(f->vq[0], FX_TIMEOUT, NULL, used_len));
    return *f->status;
}
