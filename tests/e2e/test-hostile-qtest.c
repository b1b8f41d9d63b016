/*
 * A hostile guest against a real godwit (qtest accelerator, the test
 * plays the CPU): each case programs the vdpasim_blk function through
 * virtio-pci as a driver would, then publishes a malformed ring or
 * points the device where it must not go.  Each must end with the
 * device in NEEDS_RESET (the guest reads it in device_status), the VM
 * running, godwit idle (its CPU time over a second of idleness small:
 * no spinning worker or main loop), config space and RAM outside what
 * the guest designated intact, and the device working again after the
 * driver resets it.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>
#include <godwit/util.h>
#include "qtest-vm.h"
#include "qvirtio.h"

#define SLOT     1
#define RAM_SIZE (64ull << 20) /* qtest-vm.c's --memory */
#define ECAM     0xE0000000ull
#define CANARY   0x1000 /* in the data area: no descriptor points there */

static const char *const blk_args[] = {
    "--vdpa-sim", "name=blk0,mgmtdev=vdpasim_blk,capacity=1M",
    "--vdpa",     "path=@DIR@/vdpa/blk0,id=disk0",
    NULL,
};

typedef struct {
    GwTestVm *vm;
    GwQVirtio *vd;
    uint64_t desc, avail, used, data; /* guest-physical */
} Ctx;

typedef struct {
    const char *path;
    /* Before DRIVER_OK: may move the rings. */
    void (*before)(Ctx *c);
    /* After DRIVER_OK: writes descriptors and avail, returns avail idx;
     * NULL: DRIVER_OK alone must fail the device. */
    uint16_t (*publish)(Ctx *c);
} Case;

static void
put_desc(Ctx *c, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
         uint16_t next)
{
    struct vring_desc d = {addr, len, flags, next};

    gw_qt_memwrite(c->vm->qt, c->desc + 16ull * i, &d, sizeof(d));
}

/* hdr (IN, sector 0) → `addr`/`len` → status, at head 0. */
static void
blk_chain(Ctx *c, uint64_t addr, uint32_t len)
{
    struct virtio_blk_outhdr h = {.type = VIRTIO_BLK_T_IN};

    gw_qt_memwrite(c->vm->qt, c->data, &h, sizeof(h));
    put_desc(c, 0, c->data, sizeof(h), VRING_DESC_F_NEXT, 1);
    put_desc(c, 1, addr, len, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
    put_desc(c, 2, c->data + 0x100, 1, VRING_DESC_F_WRITE, 0);
}

static uint16_t
self_loop(Ctx *c)
{
    put_desc(c, 0, c->data + 0x200, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE,
             0);
    return 1;
}

static uint16_t
avail_far_ahead(Ctx *c)
{
    blk_chain(c, c->data + 0x200, 512);
    return 0x8000;
}

static uint16_t
head_out_of_range(Ctx *c)
{
    blk_chain(c, c->data + 0x200, 512);
    gw_qt_writew(c->vm->qt, c->avail + 4, 999);
    return 1;
}

static uint16_t
buffer_into_ecam(Ctx *c)
{
    blk_chain(c, ECAM, 512);
    return 1;
}

static uint16_t
buffer_past_ram(Ctx *c)
{
    blk_chain(c, RAM_SIZE - 256, 512);
    return 1;
}

static uint16_t
buffer_wraps(Ctx *c)
{
    blk_chain(c, UINT64_MAX - 255, 512);
    return 1;
}

static uint16_t
plain_request(Ctx *c)
{
    blk_chain(c, c->data + 0x200, 512);
    return 1;
}

static void
rings_past_ram(Ctx *c)
{
    c->desc = RAM_SIZE + 0x10000;
    c->avail = c->desc + 0x400;
    c->used = c->desc + 0x800;
    gw_qvirtio_vq_move(c->vd, 0, c->desc, c->avail, c->used);
}

static void
used_ring_unaligned(Ctx *c)
{
    gw_qvirtio_vq_move(c->vd, 0, c->desc, c->avail, c->used + 1);
}

static const Case cases[] = {
    {"/hostile-qtest/desc-self-loop", NULL, self_loop},
    {"/hostile-qtest/avail-idx-far-ahead", NULL, avail_far_ahead},
    {"/hostile-qtest/head-out-of-range", NULL, head_out_of_range},
    {"/hostile-qtest/buffer-into-ecam", NULL, buffer_into_ecam},
    {"/hostile-qtest/buffer-straddles-end-of-ram", NULL, buffer_past_ram},
    {"/hostile-qtest/buffer-wraps-2-64", NULL, buffer_wraps},
    {"/hostile-qtest/rings-past-ram", rings_past_ram, plain_request},
    {"/hostile-qtest/used-ring-unaligned", used_ring_unaligned, NULL},
};

/* utime + stime of `pid`, in clock ticks. */
static unsigned long long
cpu_ticks(GPid pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)pid);
    g_autofree char *stat = NULL;
    unsigned long long ut = 0, st = 0;
    char *p;

    g_assert_true(g_file_get_contents(path, &stat, NULL, NULL));
    p = strrchr(stat, ')');
    g_assert_nonnull(p);
    g_assert_cmpint(sscanf(p + 2,
                           "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                           "%llu %llu",
                           &ut, &st),
                    ==, 2);
    return ut + st;
}

static void
wait_needs_reset(Ctx *c)
{
    gint64 deadline = g_get_monotonic_time() + GW_TEST_VM_WAIT_MS * 1000;

    while (!(gw_qvirtio_status(c->vd) & VIRTIO_CONFIG_S_NEEDS_RESET)) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
}

/* Running, idle, config space intact. */
static void
assert_vm_healthy(Ctx *c)
{
    g_autoptr(json_object) r = gw_test_vm_qmp_ok(c->vm, "query-status", NULL);
    unsigned long long before = cpu_ticks(c->vm->pid);

    g_assert_cmpstr(json_object_get_string(json_object_object_get(r, "status")),
                    ==, "running");
    g_usleep(G_USEC_PER_SEC);
    g_assert_cmpuint(
        (cpu_ticks(c->vm->pid) - before) * 1000 / sysconf(_SC_CLK_TCK), <, 200);
    g_assert_cmphex(gw_qt_readl(c->vm->qt, ECAM + (SLOT << 15)), ==,
                    0x10421af4);
}

static void
test_hostile(gconstpointer data)
{
    const Case *k = data;
    GwTestVm vm = {0};
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQVirtio) again = NULL;
    Ctx c = {&vm};
    size_t len;
    uint8_t canary[4096], seen[4096];

    gw_test_vm_start(&vm, blk_args);
    c.vd = gw_qvirtio_start(vm.qt, SLOT, 1ull << 32, &err);
    g_assert_no_error(err);
    g_assert_true(gw_qvirtio_setup_vq(c.vd, 0, &err));
    gw_qvirtio_vq_rings(c.vd, 0, &c.desc, &c.avail, &c.used);
    c.data = gw_qvirtio_data_area(c.vd, &len);
    if (k->before) {
        k->before(&c);
    }
    gw_qvirtio_driver_ok(c.vd);
    memset(canary, 0xa5, sizeof(canary));
    gw_qt_memwrite(vm.qt, c.data + CANARY, canary, sizeof(canary));
    if (k->publish) {
        gw_qt_writew(vm.qt, c.avail + 4, 0); /* head 0 unless it says */
        uint16_t idx = k->publish(&c);
        gw_qt_writew(vm.qt, c.avail + 2, idx);
        gw_qvirtio_vq_kick(c.vd, 0);
    }
    wait_needs_reset(&c);
    assert_vm_healthy(&c);
    gw_qt_memread(vm.qt, c.data + CANARY, seen, sizeof(seen));
    g_assert_cmpmem(seen, sizeof(seen), canary, sizeof(canary));
    /* The driver resets; the device works again. */
    gw_qvirtio_reset(c.vd);
    again = gw_qvirtio_init(vm.qt, SLOT, &err);
    g_assert_no_error(err);
    g_assert_true(gw_qvirtio_blk_workload(again, &err));
    g_assert_no_error(err);
    gw_qvirtio_reset(again);
    g_clear_pointer(&c.vd, gw_qvirtio_free);
    gw_test_vm_stop(&vm);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_test_add_data_func(cases[i].path, &cases[i], test_hostile);
    }
    return g_test_run();
}
