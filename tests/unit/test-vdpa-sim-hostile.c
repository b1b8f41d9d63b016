/*
 * A hostile guest against the simulator's data path: every malformed
 * ring or buffer a driver can publish, table-driven.  Each case writes
 * its descriptors straight into the ring (as a guest would, past what
 * tests/unit/vring-driver.c ever builds), kicks, and asserts the
 * outcome the virtio spec and the kernel's vdpa_sim give: NEEDS_RESET
 * (a malformed ring, DMA outside the IOTLB) or an IOERR completion (a
 * well-formed request the disk cannot serve), with nothing written
 * outside what the guest designated and no CPU spin afterwards (the
 * process's CPU time over half a second of idleness stays small).
 */
#include <sys/eventfd.h>
#include <linux/virtio_net.h>
#include "vdpa-fixture.h"

#define RING_END (FX_IOVA + FX_MEM_SIZE) /* first IOVA past "RAM" */

typedef enum {
    NEEDS_RESET, /* the device stops, used ring untouched */
    IOERR,       /* one completion, status VIRTIO_BLK_S_IOERR */
} Outcome;

typedef struct {
    const char *path;
    /* Writes the hostile chain(s) into the queue's table and returns the
     * avail idx to publish. */
    uint16_t (*build)(Fx *f, struct vring_desc *d);
    Outcome want;
    unsigned queue; /* vdpasim_net's queue (rx 0, tx 1, cvq 2); blk: 0 */
} Case;

#define NET(path, build, q)                                                    \
    {                                                                          \
        path, build, NEEDS_RESET, q                                            \
    }

static void
set_desc(struct vring_desc *d, uint64_t addr, uint32_t len, uint16_t flags,
         uint16_t next)
{
    *d = (struct vring_desc){addr, len, flags, next};
}

/* hdr → data → status, the blk request every case starts from. */
static void
blk_chain(Fx *f, struct vring_desc *d, uint64_t data, uint32_t len)
{
    f->hdr->type = VIRTIO_BLK_T_IN;
    f->hdr->sector = 0;
    set_desc(&d[0], f->hdr_iova, 16, VRING_DESC_F_NEXT, 1);
    set_desc(&d[1], data, len, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
    set_desc(&d[2], f->status_iova, 1, VRING_DESC_F_WRITE, 0);
}

static uint16_t
self_loop(Fx *f, struct vring_desc *d)
{
    blk_chain(f, d, f->data_iova, 512);
    d[1].next = 1;
    return 1;
}

static uint16_t
loop_of_two(Fx *f, struct vring_desc *d)
{
    blk_chain(f, d, f->data_iova, 512);
    set_desc(&d[1], f->data_iova, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE,
             3);
    set_desc(&d[3], f->data_iova, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE,
             1);
    return 1;
}

/* 257 descriptors in a 256-entry table: all distinct cannot be. */
static uint16_t
longer_than_queue(Fx *f, struct vring_desc *d)
{
    set_desc(&d[0], f->hdr_iova, 16, VRING_DESC_F_NEXT, 1);
    for (unsigned i = 1; i < 256; i++) {
        set_desc(&d[i], f->data_iova, 1, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE,
                 (i + 1) % 256);
    }
    return 1;
}

static uint16_t
head_out_of_range(Fx *f, struct vring_desc *d)
{
    blk_chain(f, d, f->data_iova, 512);
    f->vq[0]->avail->ring[0] = 256;
    return 1;
}

static uint16_t
next_out_of_range(Fx *f, struct vring_desc *d)
{
    blk_chain(f, d, f->data_iova, 512);
    d[1].next = 0xffff;
    return 1;
}

/* VIRTIO_F_INDIRECT_DESC is not offered: a table is malformed. */
static uint16_t
indirect_not_negotiated(Fx *f, struct vring_desc *d)
{
    set_desc(&d[0], f->data_iova, 48, VRING_DESC_F_INDIRECT, 0);
    blk_chain(f, (struct vring_desc *)f->data, f->data_iova, 512);
    return 1;
}

static uint16_t
indirect_out_of_bounds(Fx *f, struct vring_desc *d)
{
    set_desc(&d[0], RING_END - 16, 0x10000, VRING_DESC_F_INDIRECT, 0);
    return 1;
}

static uint16_t
addr_past_ram(Fx *f, struct vring_desc *d)
{
    blk_chain(f, d, RING_END, 512);
    return 1;
}

static uint16_t
addr_straddles_end_of_ram(Fx *f, struct vring_desc *d)
{
    blk_chain(f, d, RING_END - 256, 512);
    return 1;
}

static uint16_t
addr_wraps_2_64(Fx *f, struct vring_desc *d)
{
    blk_chain(f, d, UINT64_MAX - 255, 512);
    return 1;
}

/* The PCI hole: MMIO is never in a device's IOTLB. */
static uint16_t
addr_into_mmio(Fx *f, struct vring_desc *d)
{
    blk_chain(f, d, 0xc0000000, 512);
    return 1;
}

/* Well-formed but beyond the 128 MiB disk: the request fails alone. */
static uint16_t
len_0xffffffff(Fx *f, struct vring_desc *d)
{
    blk_chain(f, d, f->data_iova, 0xffffffff);
    return 1;
}

static uint16_t
hdr_addr_wraps(Fx *f, struct vring_desc *d)
{
    blk_chain(f, d, f->data_iova, 512);
    d[0].addr = UINT64_MAX - 7;
    return 1;
}

static uint16_t
status_past_ram(Fx *f, struct vring_desc *d)
{
    blk_chain(f, d, f->data_iova, 512);
    d[2].addr = RING_END;
    return 1;
}

/* More entries published than the ring has. */
static uint16_t
avail_idx_far_ahead(Fx *f, struct vring_desc *d)
{
    blk_chain(f, d, f->data_iova, 512);
    return 0x8000;
}

/* net TX: a readable self-loop. */
static uint16_t
net_tx_self_loop(Fx *f, struct vring_desc *d)
{
    set_desc(&d[0], f->data_iova, 64, VRING_DESC_F_NEXT, 0);
    return 1;
}

/* net TX: a frame whose buffer starts past RAM. */
static uint16_t
net_tx_past_ram(Fx *f, struct vring_desc *d)
{
    set_desc(&d[0], RING_END, 64, 0, 0);
    return 1;
}

/* net CVQ: MAC_ADDR_SET whose ack byte is past RAM. */
static uint16_t
net_cvq_ack_past_ram(Fx *f, struct vring_desc *d)
{
    f->data[0] = VIRTIO_NET_CTRL_MAC;
    f->data[1] = VIRTIO_NET_CTRL_MAC_ADDR_SET;
    memcpy(f->data + 16, "\x52\x54\x00\x01\x02\x03", 6);
    set_desc(&d[0], f->data_iova, 2, VRING_DESC_F_NEXT, 1);
    set_desc(&d[1], f->data_iova + 16, 6, VRING_DESC_F_NEXT, 2);
    set_desc(&d[2], RING_END, 1, VRING_DESC_F_WRITE, 0);
    return 1;
}

static const Case cases[] = {
    {"/vdpa/sim/hostile/desc-self-loop", self_loop, NEEDS_RESET},
    {"/vdpa/sim/hostile/desc-loop-of-two", loop_of_two, NEEDS_RESET},
    {"/vdpa/sim/hostile/chain-longer-than-queue", longer_than_queue,
     NEEDS_RESET},
    {"/vdpa/sim/hostile/head-out-of-range", head_out_of_range, NEEDS_RESET},
    {"/vdpa/sim/hostile/next-out-of-range", next_out_of_range, NEEDS_RESET},
    {"/vdpa/sim/hostile/indirect-not-negotiated", indirect_not_negotiated,
     NEEDS_RESET},
    {"/vdpa/sim/hostile/indirect-out-of-bounds", indirect_out_of_bounds,
     NEEDS_RESET},
    {"/vdpa/sim/hostile/addr-past-ram", addr_past_ram, NEEDS_RESET},
    {"/vdpa/sim/hostile/addr-straddles-end-of-ram", addr_straddles_end_of_ram,
     NEEDS_RESET},
    {"/vdpa/sim/hostile/addr-wraps-2-64", addr_wraps_2_64, NEEDS_RESET},
    {"/vdpa/sim/hostile/addr-into-mmio", addr_into_mmio, NEEDS_RESET},
    {"/vdpa/sim/hostile/len-0xffffffff-is-ioerr", len_0xffffffff, IOERR},
    {"/vdpa/sim/hostile/hdr-addr-wraps", hdr_addr_wraps, NEEDS_RESET},
    {"/vdpa/sim/hostile/status-past-ram", status_past_ram, NEEDS_RESET},
    {"/vdpa/sim/hostile/avail-idx-far-ahead", avail_idx_far_ahead, NEEDS_RESET},
    NET("/vdpa/sim/hostile/net/tx-self-loop", net_tx_self_loop, 1),
    NET("/vdpa/sim/hostile/net/tx-past-ram", net_tx_past_ram, 1),
    NET("/vdpa/sim/hostile/net/cvq-ack-past-ram", net_cvq_ack_past_ram, 2),
};

/* utime + stime of this process, in clock ticks. */
static unsigned long long
cpu_ticks(void)
{
    g_autofree char *stat = NULL;
    unsigned long long ut, st;
    char *p;

    g_assert_true(g_file_get_contents("/proc/self/stat", &stat, NULL, NULL));
    p = strrchr(stat, ')'); /* the command name may hold spaces */
    g_assert_nonnull(p);
    g_assert_cmpint(sscanf(p + 2,
                           "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                           "%llu %llu",
                           &ut, &st),
                    ==, 2);
    return ut + st;
}

/* Over 500 ms of idleness the worker must sleep: < 100 ms of CPU. */
static void
assert_no_spin(void)
{
    unsigned long long before = cpu_ticks();

    g_usleep(500 * 1000);
    g_assert_cmpuint((cpu_ticks() - before) * 1000 / sysconf(_SC_CLK_TCK), <,
                     100);
}

/* Everything outside the data buffer and the status byte is as it was. */
static void
snapshot(Fx *f, GBytes **out)
{
    *out = g_bytes_new(f->data + 4096, 128 * 1024 - 4096);
}

static void
test_hostile(gconstpointer data)
{
    const Case *c = data;
    Fx f;
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) before = NULL;
    int cfg_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    uint8_t status;
    uint32_t used_len;

    bool net = g_str_has_prefix(c->path, "/vdpa/sim/hostile/net/");
    fx_open(&f, net ? "vdpasim_net" : "vdpasim_blk", NULL);
    fx_start(&f, net ? 3 : 1);
    g_assert_true(gw_vdpa_set_config_call(f.b, cfg_fd, &err));
    *f.status = 0xee;
    GwTestVring *vq = f.vq[c->queue];
    uint16_t idx = c->build(&f, vq->desc);
    if (c->build != head_out_of_range) {
        vq->avail->ring[0] = 0;
    }
    snapshot(&f, &before);
    g_assert_nonnull(before);
    __atomic_store_n(&vq->avail->idx, idx, __ATOMIC_RELEASE);
    gw_test_vring_kick(vq);
    if (c->want == NEEDS_RESET) {
        g_assert_true(gw_test_wait_fd(cfg_fd, FX_TIMEOUT));
        g_assert_true(gw_vdpa_get_status(f.b, &status, &err));
        g_assert_cmphex(status & VIRTIO_CONFIG_S_NEEDS_RESET, !=, 0);
        g_assert_cmpuint(gw_test_vring_used_idx(vq), ==, 0);
    } else {
        g_assert_true(gw_test_vring_wait_used(vq, FX_TIMEOUT, NULL, &used_len));
        g_assert_cmpuint(*f.status, ==, VIRTIO_BLK_S_IOERR);
        g_assert_true(gw_vdpa_get_status(f.b, &status, &err));
        g_assert_cmphex(status & VIRTIO_CONFIG_S_NEEDS_RESET, ==, 0);
    }
    g_assert_cmpmem(f.data + 4096, 128 * 1024 - 4096,
                    g_bytes_get_data(before, NULL), g_bytes_get_size(before));
    assert_no_spin();
    /* The device comes back after a reset, as the spec requires. */
    g_assert_true(gw_vdpa_set_status(f.b, 0, &err));
    g_assert_true(gw_vdpa_get_status(f.b, &status, &err));
    g_assert_cmphex(status, ==, 0);
    close(cfg_fd);
    fx_close(&f);
}

int
main(int argc, char **argv)
{
    fx_runtime_dir();
    g_test_init(&argc, &argv, NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_test_add_data_func(cases[i].path, &cases[i], test_hostile);
    }
    return g_test_run();
}
