/*
 * Block throughput through the simulator, driven through the seam like a
 * VMM: requests/s and MB/s for 4 KiB and 64 KiB reads and writes at a
 * fixed queue depth.  Usage: vdpa-sim-bench [seconds-per-run] [depth]
 * (defaults 2 s, depth 32).  Prints one line per run.  Each request is
 * header + one data buffer + status; the driver refills and kicks as
 * soon as completions arrive, so the device always has `depth` queued.
 */
#include <stdio.h>
#include <stdlib.h>
#include <glib/gstdio.h>
#include "../unit/vdpa-fixture.h"

typedef struct {
    struct virtio_blk_outhdr *hdr;
    uint64_t hdr_iova;
    uint64_t data_iova;
    uint8_t *status;
    uint64_t status_iova;
} Slot;

static void
post(Fx *f, Slot *s, uint32_t type, uint32_t size, uint64_t n, uint16_t *h)
{
    GwTestBuf b[] = {{s->hdr_iova, 16, false},
                     {s->data_iova, size, type == VIRTIO_BLK_T_IN},
                     {s->status_iova, 1, true}};

    s->hdr->type = type;
    s->hdr->sector = (n * (size / 512)) % (0x40000 - size / 512);
    g_assert_true(gw_test_vring_add(f->vq[0], b, 3, h));
}

static void
run(Fx *f, Slot *slots, unsigned depth, uint32_t type, uint32_t size,
    double secs)
{
    uint16_t slot_of[256], head;
    uint64_t done = 0, posted = 0;
    gint64 start = g_get_monotonic_time(), end = start + secs * 1e6, now;

    for (unsigned i = 0; i < depth; i++) {
        post(f, &slots[i], type, size, posted++, &head);
        slot_of[head] = i;
    }
    gw_test_vring_kick(f->vq[0]);
    while ((now = g_get_monotonic_time()) < end) {
        bool any = false;

        while (gw_test_vring_get_used(f->vq[0], &head, NULL)) {
            unsigned i = slot_of[head];

            g_assert_cmpuint(*slots[i].status, ==, VIRTIO_BLK_S_OK);
            done++;
            post(f, &slots[i], type, size, posted++, &head);
            slot_of[head] = i;
            any = true;
        }
        if (any) {
            gw_test_vring_kick(f->vq[0]);
        } else {
            gw_test_wait_fd(f->vq[0]->call_fd, 100);
        }
    }
    while (done < posted) { /* drain */
        g_assert_true(gw_test_vring_wait_used(f->vq[0], 5000, NULL, NULL));
        done++;
    }
    double t = (g_get_monotonic_time() - start) / 1e6;
    printf("%-5s %3u KiB depth %2u: %9.0f req/s %8.1f MB/s\n",
           type == VIRTIO_BLK_T_IN ? "read" : "write", size / 1024, depth,
           done / t, done * (double)size / t / 1e6);
}

int
main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 2.0;
    unsigned depth = argc > 2 ? (unsigned)atoi(argv[2]) : 32;
    g_autofree char *dir = g_dir_make_tmp("gw-vdpa-bench-XXXXXX", NULL);
    static const uint32_t sizes[] = {4096, 65536};
    Fx f;

    g_assert_true(depth >= 1 && depth <= 64);
    g_setenv("GODWIT_RUNTIME_DIR", dir, true);
    fx_open(&f, "vdpasim_blk", NULL);
    fx_start(&f, 1);
    Slot *slots = g_new0(Slot, depth);
    for (unsigned i = 0; i < depth; i++) {
        slots[i].hdr = gw_test_mem_alloc(f.mem, 16, 16, &slots[i].hdr_iova);
        gw_test_mem_alloc(f.mem, 65536, 4096, &slots[i].data_iova);
        slots[i].status = gw_test_mem_alloc(f.mem, 1, 1, &slots[i].status_iova);
    }
    /* Fault the anonymous storage in first: fresh pages cost a fault. */
    printf("warm-up (first touch of the 128 MiB storage):\n");
    run(&f, slots, depth, VIRTIO_BLK_T_OUT, 65536, 0.5);
    printf("measured:\n");
    for (unsigned s = 0; s < G_N_ELEMENTS(sizes); s++) {
        run(&f, slots, depth, VIRTIO_BLK_T_OUT, sizes[s], secs);
        run(&f, slots, depth, VIRTIO_BLK_T_IN, sizes[s], secs);
    }
    g_free(slots);
    fx_close(&f);
    g_rmdir(dir);
    return 0;
}
