/*
 * libFuzzer target for the shadow-virtqueue relay (src/vdpa/svq.c): the
 * guest controls every descriptor, avail entry and index, and buffer the
 * relay thread walks (check_desc / forward_chain / complete) while a
 * migration's pre-copy would run.  The fixture of test-vdpa-svq.c
 * (tests/unit/svq-fixture.c): the vDPA device model over a vdpasim_blk
 * and a vdpasim_net, made once, guest RAM (1 MiB at GPA 0) between
 * unmapped guard pages; each input starts with a driver's reset and
 * start (VERSION_1 only, rings at 0x80000) and gw_vdpa_device_svq_start.
 *
 * Byte 0: bit 0 picks the device (blk, net: rx and tx), bits 1-3 the
 * queue size (2 << n).  Then operations of 20 bytes: kind, queue, a
 * 16-bit index, 16 bytes of payload (little-endian).  kind % 8:
 *   0 descriptor `index` = payload (addr, len, flags, next)
 *   1 publish head `index` in the avail ring, avail idx + 1
 *   2 avail idx = `index`, avail flags = payload[0..1]
 *   3 16 RAM bytes at 16 * `index` (request headers, frames, the rings)
 *   4 kick the queue and let the relay settle
 *   5 shadow rings stopped and started again (a migration's retry)
 *   6 a main-loop turn (NEEDS_RESET from a broken queue)
 *   7 kick every queue, settle
 * "Settle": until every queue but net's rx has its used idx at its
 * avail idx (all completed) or the guest reads NEEDS_RESET, bounded.
 * Then the shadow rings stop; that succeeds or fails with an error, and
 * the device is left running or asking for a reset.
 *
 *   build-fuzz/tests/fuzz/fuzz-svq tests/fuzz/corpus/svq
 */
#include <string.h>
#include <godwit/util.h>
#include <godwit/vdpa-svq.h>
#include "fuzz-util.h"
#include "unit/svq-fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define RAM_SIZE   (1u << 20)
#define RING_BASE  0x80000u
#define OP_SIZE    20
#define SETTLE_US  20000 /* a relay that has not settled by then: next op */
#define MAX_QUEUES 2

typedef struct {
    SvqFx fx;
    unsigned nq;
    bool rx0; /* queue 0 holds buffers the device fills only on receive */
} Target;

static Target targets[2]; /* blk, net */
static unsigned long *dirty;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_runtime_dir();
    for (unsigned i = 0; i < 2; i++) {
        targets[i].fx.ram_size = RAM_SIZE;
        svqfx_device(&targets[i].fx, i ? "vdpasim_net" : "vdpasim_blk");
        gw_mem_dirty_start(&targets[i].fx.gm);
    }
    targets[0].nq = 1;
    targets[1].nq = 2;
    targets[1].rx0 = true;
    dirty = g_new0(unsigned long, gw_mem_dirty_words(&targets[0].fx.gm));
    return 0;
}

static GwTestVring *vrs[MAX_QUEUES];

/* Fresh RAM and rings, the driver's start, shadow rings on. */
static void
begin(Target *t, uint16_t num)
{
    g_autoptr(GError) err = NULL;

    memset(t->fx.tm->base, 0, RAM_SIZE);
    t->fx.tm->used = RING_BASE;
    for (unsigned i = 0; i < t->nq; i++) {
        vrs[i] = gw_test_vring_new(t->fx.tm, i, num);
    }
    svqfx_driver_start_queues(&t->fx, vrs, t->nq);
    g_assert(svqfx_svq(&t->fx, true, &err));
}

static bool
settled(Target *t)
{
    fuzz_iterate();
    if (svqfx_needs_reset(&t->fx)) {
        return true;
    }
    for (unsigned i = t->rx0; i < t->nq; i++) {
        if (__atomic_load_n(&vrs[i]->used->idx, __ATOMIC_ACQUIRE) !=
            vrs[i]->avail->idx) {
            return false;
        }
    }
    return true;
}

static void
settle(Target *t)
{
    gint64 end = g_get_monotonic_time() + SETTLE_US;

    while (!settled(t) && g_get_monotonic_time() < end) {
        g_usleep(50); /* the relay and the simulator run on two threads */
    }
}

/* Stop, as migration does at its end (or on cancel): clean either way. */
static void
stop(Target *t)
{
    g_autoptr(GError) err = NULL;
    bool ok = svqfx_svq(&t->fx, false, &err);

    g_assert(ok == !err);
    g_assert(!ok || !gw_vdpa_device_svq_active(t->fx.dev));
}

static void
run_op(Target *t, const uint8_t *op)
{
    GwTestVring *vr = vrs[op[1] % t->nq];
    uint16_t idx = op[2] | op[3] << 8;
    g_autoptr(GError) err = NULL;

    switch (op[0] % 8) {
    case 0:
        memcpy(&vr->desc[idx % vr->num], op + 4, sizeof(struct vring_desc));
        break;
    case 1:
        vr->avail->ring[vr->avail->idx % vr->num] = idx;
        __atomic_store_n(&vr->avail->idx, vr->avail->idx + 1, __ATOMIC_RELEASE);
        break;
    case 2:
        memcpy(&vr->avail->flags, op + 4, 2);
        __atomic_store_n(&vr->avail->idx, idx, __ATOMIC_RELEASE);
        break;
    case 3:
        memcpy(t->fx.tm->base + 16u * idx, op + 4, 16);
        break;
    case 4:
        svqfx_notify(&t->fx, vr->idx);
        settle(t);
        break;
    case 5:
        stop(t);
        if (!svqfx_svq(&t->fx, true, &err)) {
            g_assert(err); /* busy (stop failed), or not running */
        }
        break;
    case 6:
        fuzz_iterate();
        break;
    default:
        for (unsigned i = 0; i < t->nq; i++) {
            svqfx_notify(&t->fx, i);
        }
        settle(t);
        break;
    }
}

/* Shadow rings off, the device running or asking for a reset; then the
 * driver's reset, which drops shadow rings a failed stop left. */
static void
end(Target *t)
{
    uint8_t status;

    for (unsigned i = 0; i < t->nq; i++) { /* what a driver would do */
        svqfx_notify(&t->fx, i);
    }
    settle(t);
    if (gw_vdpa_device_svq_active(t->fx.dev)) {
        stop(t);
    }
    fuzz_iterate();
    status = svqfx_mmio_read(&t->fx, t->fx.bar0 + 0x14, 1);
    for (unsigned i = 0; i < t->nq; i++) { /* GW_FUZZ_LOG=1: seeds' check */
        g_debug("queue %u: avail idx %u, used idx %u, status 0x%02x", i,
                vrs[i]->avail->idx, vrs[i]->used->idx, status);
    }
    g_assert((status & 0x04) || (status & 0x40));
    svqfx_mmio_write(&t->fx, t->fx.bar0 + 0x14, 1, 0);
    g_assert(!gw_vdpa_device_svq_active(t->fx.dev));
    fuzz_iterate();
    gw_mem_dirty_collect(&t->fx.gm, dirty);
    for (unsigned i = 0; i < t->nq; i++) {
        g_clear_pointer(&vrs[i], gw_test_vring_free);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    Target *t;

    if (len < 1) {
        return 0;
    }
    t = &targets[data[0] & 1];
    begin(t, 2u << ((data[0] >> 1) & 7));
    for (size_t at = 1; at + OP_SIZE <= len; at += OP_SIZE) {
        run_op(t, data + at);
    }
    end(t);
    return 0;
}
