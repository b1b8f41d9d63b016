/*
 * SUSPEND/RESUME racing the data path: one thread posts and kicks blk
 * writes, each carrying a unique sequence number, while another thread
 * repeatedly SUSPENDs, reads GET_VRING_BASE and the used index, and
 * RESUMEs.  Nothing may be lost or run twice, and after every SUSPEND
 * the device's last_avail_idx equals the used index it published (block
 * requests are never half done across a suspend).
 */
#include "vdpa-fixture.h"

#define NREQ     30000
#define INFLIGHT 32

typedef struct {
    Fx f;
    gint done;
    gint suspends;
} Race;

static gpointer
controller(gpointer data)
{
    Race *r = data;
    g_autoptr(GError) err = NULL;

    while (!g_atomic_int_get(&r->done)) {
        uint32_t base;
        uint16_t used;

        g_assert_true(gw_vdpa_suspend(r->f.b, &err));
        g_assert_true(gw_vdpa_get_vring_base(r->f.b, 0, &base, &err));
        used = gw_test_vring_used_idx(r->f.vq[0]);
        g_assert_cmpuint(base, ==, used);
        g_assert_true(gw_vdpa_get_vring_base(r->f.b, 0, &base, &err));
        g_assert_cmpuint(base, ==, gw_test_vring_used_idx(r->f.vq[0]));
        g_assert_true(gw_vdpa_resume(r->f.b, &err));
        g_atomic_int_inc(&r->suspends);
        g_thread_yield();
    }
    return NULL;
}

static void
test_suspend_race(void)
{
    Race r = {0};
    uint8_t *status, *data;
    struct virtio_blk_outhdr *hdr;
    uint64_t status_iova, data_iova, hdr_iova;
    uint16_t slot_of_head[256];
    unsigned posted = 0, completed = 0;
    g_autofree unsigned *seen = g_new0(unsigned, NREQ);
    GThread *t;

    fx_open(&r.f, "vdpasim_blk", NULL);
    fx_start(&r.f, 1);
    hdr = gw_test_mem_alloc(r.f.mem, 16 * INFLIGHT, 16, &hdr_iova);
    data = gw_test_mem_alloc(r.f.mem, 512 * INFLIGHT, 512, &data_iova);
    status = gw_test_mem_alloc(r.f.mem, INFLIGHT, 1, &status_iova);
    t = g_thread_new("controller", controller, &r);
    GQueue free_slots = G_QUEUE_INIT;
    for (uintptr_t s = 0; s < INFLIGHT; s++) {
        g_queue_push_tail(&free_slots, (gpointer)s);
    }
    gint64 end = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
    while (completed < NREQ) {
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        while (posted < NREQ && !g_queue_is_empty(&free_slots)) {
            unsigned s = GPOINTER_TO_UINT(g_queue_pop_head(&free_slots));
            uint16_t head;
            GwTestBuf b[] = {{hdr_iova + 16 * s, 16, false},
                             {data_iova + 512 * s, 512, false},
                             {status_iova + s, 1, true}};

            hdr[s].type = VIRTIO_BLK_T_OUT;
            hdr[s].sector = posted; /* one sector per request */
            memcpy(data + 512 * s, &posted, sizeof(posted));
            status[s] = 0xee;
            g_assert_true(gw_test_vring_add(r.f.vq[0], b, 3, &head));
            slot_of_head[head] = s;
            posted++;
            gw_test_vring_kick(r.f.vq[0]);
        }
        uint16_t head;
        /* A kick made while suspended must be replayed: no re-kicking. */
        g_assert_true(
            gw_test_vring_wait_used(r.f.vq[0], FX_TIMEOUT, &head, NULL));
        unsigned s = slot_of_head[head];
        g_assert_cmpuint(status[s], ==, VIRTIO_BLK_S_OK);
        g_assert_cmpuint(hdr[s].sector, <, NREQ);
        seen[hdr[s].sector]++;
        completed++;
        g_queue_push_tail(&free_slots, GUINT_TO_POINTER(s));
    }
    g_atomic_int_set(&r.done, 1);
    g_thread_join(t);
    g_queue_clear(&free_slots);
    for (unsigned i = 0; i < NREQ; i++) {
        g_assert_cmpuint(seen[i], ==, 1);
    }
    g_assert_false(gw_test_vring_get_used(r.f.vq[0], NULL, NULL));
    g_assert_cmpuint(gw_test_vring_used_idx(r.f.vq[0]), ==, NREQ % 65536);
    /* Every write landed once, in its own sector: read them back. */
    for (unsigned i = 0; i < NREQ; i += 997) {
        unsigned got;

        g_assert_cmpuint(fx_blk(&r.f, VIRTIO_BLK_T_IN, i, 512, NULL), ==, 0);
        memcpy(&got, r.f.data, sizeof(got));
        g_assert_cmpuint(got, ==, i);
    }
    g_test_message("%d suspend/resume cycles during %d requests",
                   g_atomic_int_get(&r.suspends), NREQ);
    g_assert_cmpint(g_atomic_int_get(&r.suspends), >, 0);
    fx_close(&r.f);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    fx_runtime_dir();
    g_test_add_func("/vdpa/sim/suspend/races-kicks-nothing-lost-or-doubled",
                    test_suspend_race);
    return g_test_run();
}
