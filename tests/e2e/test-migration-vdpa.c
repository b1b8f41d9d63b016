/*
 * Live migration of VMs with vDPA devices between two real godwit
 * processes under --qtest, the test driving each device as a guest
 * would (qvirtio.h, qvirtio-net.h) with work in flight before, during
 * (the device on shadow virtqueues: what it writes into guest RAM is
 * tracked only by the relay) and into the switch-over, then going on
 * with the same rings on the destination.  Each device in each shape it
 * can be given: --vdpa at boot, hot-added with device_add
 * vhost-vdpa-device-pci, and libvirt's netdev_add vhost-vdpa +
 * device_add virtio-net-pci (the destination hot-adds the same device
 * before migrate-incoming, as libvirt does).  The destination's ring
 * indices must be the source's at SUSPEND (x-godwit-query-vdpa-vrings).
 */
#include <signal.h>
#include <string.h>
#include <glib/gstdio.h>
#include <godwit/util.h>
#include "mig-proxy.h"
#include "mig-util.h"
#include "mig-blk-io.h"
#include "mig-precopy.h"
#include "qtest-vm.h"
#include "qvirtio-net.h"
#include "qvirtio.h"

#define T    GW_TEST_VM_WAIT_MS
#define SLOT 1

static const char *disk;

/* ---- the shapes of a vDPA device ---- */

typedef enum {
    PLUG_BOOT,    /* --vdpa=path=…,id=… */
    PLUG_GENERIC, /* device_add vhost-vdpa-device-pci */
    PLUG_NETDEV,  /* netdev_add vhost-vdpa + device_add virtio-net-pci */
} Plug;

typedef struct {
    const char *mgmtdev; /* vdpasim_blk or vdpasim_net */
    Plug plug;
    bool mlx5;            /* the simulators ignore SET_CONFIG of the MAC */
    const char *features; /* the simulator's opt-in (features=…) */
    bool no_suspend;      /* the simulator cannot suspend (hot-added only) */
    bool refuse_ctrl;     /* the simulator answers control commands ERR */
    /* No ENABLE_AFTER_DRIVER_OK (hot-added only): the data queues are
     * enabled before DRIVER_OK while the control queue is replayed. */
    bool no_late_enable;
} Shape;

#define NODE "dev0"
#define ID   "vdpa0"

static const uint8_t sim_mac[] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
static const uint8_t new_mac[] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};

static void
hot_add(GwTestVm *vm, const Shape *s)
{
    g_autofree char *node = g_build_filename(vm->dir, "vdpa", NODE, NULL);
    g_autofree char *args = NULL;

    if (s->plug == PLUG_GENERIC) {
        args = g_strdup_printf("{\"driver\":\"vhost-vdpa-device-pci\","
                               "\"vhostdev\":\"%s\",\"id\":\"" ID "\","
                               "\"addr\":\"0x%x\"}",
                               node, SLOT);
        qmp_void(vm, "device_add", args);
        return;
    }
    args = g_strdup_printf("{\"type\":\"vhost-vdpa\",\"vhostdev\":\"%s\","
                           "\"id\":\"hostnet0\"}",
                           node);
    qmp_void(vm, "netdev_add", args);
    g_free(args);
    args = g_strdup_printf("{\"driver\":\"virtio-net-pci\",\"netdev\":"
                           "\"hostnet0\",\"id\":\"" ID "\",\"addr\":\"0x%x\"}",
                           SLOT);
    qmp_void(vm, "device_add", args);
}

/*
 * A VM with the shape's device in SLOT; a destination (`incoming`)
 * listens on unix:DIR/mig.sock: from its command line for a device
 * given at boot, else after hot-adding the device, with migrate-incoming.
 */
static void
start_vm(GwTestVm *vm, const Shape *s, bool incoming)
{
    g_autofree char *sim =
        g_str_equal(s->mgmtdev, "vdpasim_blk")
            ? g_strdup_printf("--vdpa-sim=name=" NODE ",mgmtdev=vdpasim_blk,"
                              "capacity=1M,backing=%s",
                              disk)
            : g_strdup_printf("--vdpa-sim=name=" NODE ",mgmtdev=vdpasim_net,"
                              "mac=52:54:00:12:34:56%s%s",
                              s->features ? ",features=" : "",
                              s->features ? s->features : "");
    g_autoptr(GPtrArray) args = g_ptr_array_new();

    g_ptr_array_add(args, sim);
    if (s->plug == PLUG_BOOT) {
        /* --vdpa's num_queues is 1 unless given (Cloud Hypervisor's). */
        g_ptr_array_add(args, g_str_equal(s->mgmtdev, "vdpasim_blk")
                                  ? "--vdpa=path=@DIR@/vdpa/" NODE ",id=" ID
                                  : "--vdpa=path=@DIR@/vdpa/" NODE
                                    ",num_queues=3,id=" ID);
    }
    if (incoming) {
        g_ptr_array_add(args, "--incoming");
        g_ptr_array_add(args,
                        s->plug == PLUG_BOOT ? "unix:@DIR@/mig.sock" : "defer");
    }
    g_ptr_array_add(args, NULL);
    gw_test_vm_start(vm, (const char *const *)args->pdata);
    if (s->mlx5) {
        qmp_void(vm, "x-godwit-vdpa-sim-fail",
                 "{\"name\":\"" NODE "\",\"failure\":\"ignore-mac-config\"}");
    }
    if (s->no_late_enable) {
        qmp_void(vm, "x-godwit-vdpa-sim-fail",
                 "{\"name\":\"" NODE "\",\"failure\":"
                 "\"no-enable-after-driver-ok\"}");
    }
    if (s->no_suspend) {
        qmp_void(vm, "x-godwit-vdpa-sim-fail",
                 "{\"name\":\"" NODE "\",\"failure\":\"no-suspend\"}");
    }
    if (s->refuse_ctrl) {
        qmp_void(vm, "x-godwit-vdpa-sim-fail",
                 "{\"name\":\"" NODE "\",\"failure\":\"refuse-ctrl\"}");
    }
    if (s->plug != PLUG_BOOT) {
        hot_add(vm, s);
    }
    if (incoming) {
        set_caps(vm, false);
    }
    if (incoming && s->plug != PLUG_BOOT) {
        g_autofree char *uri =
            g_strdup_printf("{\"uri\":\"unix:%s/mig.sock\"}", vm->dir);
        qmp_void(vm, "migrate-incoming", uri);
    }
}

/* ---- the vring indices (x-godwit-query-vdpa-vrings) ---- */

static json_object *
vrings(GwTestVm *vm)
{
    return gw_test_vm_qmp_ok(vm, "x-godwit-query-vdpa-vrings",
                             "{\"id\":\"" ID "\"}");
}

static json_object *
vring(json_object *all, unsigned q)
{
    json_object *o = json_object_array_get_idx(all, q);

    g_assert_nonnull(o);
    g_assert_cmpint(json_object_get_int(json_object_object_get(o, "index")), ==,
                    q);
    return o;
}

/* Queues 0..n-1 run on shadow rings (during pre-copy), or do not; a
 * network device's control queue (queue 2 of its 3) never does: the VMM
 * relays it from the device's start. */
static void
assert_shadowed(GwTestVm *vm, unsigned n, bool want)
{
    g_autoptr(json_object) all = vrings(vm);

    for (unsigned q = 0; q < n; q++) {
        json_object *o = vring(all, q);
        bool cvq = n == 3 && q == 2;
        g_assert_true(
            json_object_get_boolean(json_object_object_get(o, "enabled")));
        g_assert_cmpint(
            json_object_get_boolean(json_object_object_get(o, "shadowed")), ==,
            want && !cvq);
        g_assert_cmpint(
            json_object_get_boolean(json_object_object_get(o, "control-relay")),
            ==, cvq);
    }
}

/*
 * Queue q's index on the source at SUSPEND, and the destination's as
 * restored, are both want[q]: what the test's driver made available
 * there (the device finished all it took before SUSPEND returned).
 */
static void
assert_vrings_moved(GwTestVm *src, GwTestVm *dst, const uint32_t *want,
                    unsigned n)
{
    g_autoptr(json_object) s = vrings(src);
    g_autoptr(json_object) d = vrings(dst);

    for (unsigned q = 0; q < n; q++) {
        json_object *a = vring(s, q), *b = vring(d, q);
        g_test_message("queue %u: source %s, destination %s", q,
                       json_object_to_json_string(a),
                       json_object_to_json_string(b));
        g_assert_cmpstr(status_of(a, "vring-base-at"), ==, "suspend");
        g_assert_cmpstr(status_of(b, "vring-base-at"), ==, "restore");
        g_assert_cmpint(
            json_object_get_int64(json_object_object_get(a, "vring-base")), ==,
            want[q]);
        g_assert_cmpint(
            json_object_get_int64(json_object_object_get(b, "vring-base")), ==,
            want[q]);
        g_assert_false(
            json_object_get_boolean(json_object_object_get(a, "shadowed")));
        g_assert_false(
            json_object_get_boolean(json_object_object_get(b, "shadowed")));
    }
}

/* ---- a vDPA disk with I/O in flight across the migration ---- */

/* A source VM with the shape's disk, ballast in its RAM, and a write in
 * every slot of `io` in flight (at `migrate`). */
static void
io_start(Io *io, GwTestVm *src, const Shape *s)
{
    g_autoptr(GError) err = NULL;
    size_t len;

    start_vm(src, s, false);
    write_ballast(src->qt);
    *io = (Io){.head = {-1, -1, -1, -1}, .last_read = {-1, -1, -1, -1}};
    io->qt = src->qt;
    io->vd =
        gw_qvirtio_init_queues(src->qt, SLOT, 1ull << 32 | 1ull << 33, 1, &err);
    g_assert_no_error(err);
    io->area = gw_qvirtio_data_area(io->vd, &len);
    for (unsigned i = 0; i < IO_SLOTS; i++) {
        io_submit(io, i, i, false);
    }
}

static void
test_blk(gconstpointer data)
{
    const Shape *s = data;
    GwTestVm src, dst;
    Io io;
    uint32_t base;
    uint64_t before;

    io_start(&io, &src, s);
    io_lone_prepare(&io);
    start_vm(&dst, s, true);
    begin_migration(&src, &dst, 150000);
    assert_shadowed(&src, 1, true);
    io_lone_read(&io, &src, io.area + IO_LONE);
    before = io_during_precopy(&io);
    assert_still_active(&src); /* all that ran on shadow rings */
    base = io.submitted;       /* all of it taken and done at SUSPEND */
    finish_migration(&src, &dst);
    assert_vrings_moved(&src, &dst, &base, 1);
    io_assert_lone_read_moved(&io, &dst);
    io_on_destination(&io, &dst);
    g_test_message("%u requests, %" G_GUINT64_FORMAT
                   " of them before the switch-over",
                   io.submitted, before);
    gw_qvirtio_free(io.vd);
    gw_test_vm_stop(&src);
    gw_test_vm_stop(&dst);
}

/* ---- the failure matrix, with the disk's I/O in flight ---- */

typedef enum { FAIL_KILL, FAIL_CANCEL, FAIL_CUT, FAIL_CORRUPT } Fault;

typedef struct {
    bool at_switchover; /* else during pre-copy, on shadow rings */
    Fault fault;
} FailCase;

/* Makes the migration fail as `c` says, and waits until it has: the
 * source failed (cancelled), the destination gone without running. */
static void
break_migration(GwTestVm *src, GwTestVm *dst, Proxy *p, const FailCase *c)
{
    if (c->fault == FAIL_CANCEL) {
        qmp_void(src, "migrate_cancel", NULL);
        wait_status(src, "cancelled");
        reap(dst, 1); /* the stream ended early: it never runs */
        return;
    }
    if (c->fault == FAIL_KILL) {
        kill(dst->pid, SIGKILL);
    } else {
        g_atomic_int_set(&p->fault,
                         c->fault == FAIL_CUT ? LINK_CUT : LINK_CORRUPT);
    }
    if (c->at_switchover) {
        qmp_void(src, "migrate-continue", "{\"state\": \"pre-switchover\"}");
    }
    wait_status(src, "failed");
    if (c->fault == FAIL_KILL) {
        reap_killed(dst);
    } else {
        reap(dst, 1); /* it refused the damaged stream */
    }
}

/*
 * A migration of the disk with requests in flight fails: killed or
 * cancelled, or its link cut or a byte of its stream corrupted (a proxy
 * in between, mig-proxy.c), during pre-copy or after the source
 * suspended the device (pre-switchover).  Afterwards the source's device
 * is back on the guest's rings, running; what was in flight completes
 * there exactly once, what was written reads back, and a second
 * migration moves it all, as test_blk checks.
 */
static void
test_blk_fail(gconstpointer data)
{
    static const Shape s = {"vdpasim_blk", PLUG_BOOT};
    const FailCase *c = data;
    GwTestVm src, dst, again;
    Proxy p = {0};
    g_autofree char *to = NULL, *uri = NULL, *st = NULL;
    Io io;

    io_start(&io, &src, &s);
    start_vm(&dst, &s, true);
    to = g_strdup_printf("%s/mig.sock", dst.dir);
    proxy_start(&p, src.dir, to);
    uri = g_strdup_printf("{\"uri\": \"unix:%s\"}", p.path);
    drain_events(&src);
    set_caps(&src, true);
    qmp_void(&src, "migrate-set-parameters", "{\"max-bandwidth\": 150000}");
    qmp_void(&src, "migrate", uri);
    wait_status(&src, "active");
    assert_shadowed(&src, 1, true);
    io_during_precopy(&io); /* leaves two reads in flight */
    if (c->at_switchover) {
        qmp_void(&src, "migrate-set-parameters", "{\"max-bandwidth\": 0}");
        wait_status(&src, "pre-switchover");
    }
    break_migration(&src, &dst, &p, c);
    proxy_stop(&p);
    assert_shadowed(&src, 1, false);
    st = run_state(&src);
    g_assert_cmpstr(st, ==, "running");
    io_drain(&io); /* the two reads, once each, on the source */
    io_read_back(&io, IO_WRITES);
    io_submit(&io, 0, 1, true); /* in flight into the second migration */
    start_vm(&again, &s, true);
    begin_migration(&src, &again, 0);
    finish_migration(&src, &again);
    io_on_destination(&io, &again);
    gw_qvirtio_free(io.vd);
    gw_test_vm_stop(&src);
    gw_test_vm_stop(&again);
}

/* ---- a vDPA NIC with frames looping across the migration ---- */

#define NET_QUEUES 3 /* rx, tx, ctrl */

static void
must(bool ok, GError *err)
{
    g_assert_no_error(err);
    g_assert_true(ok);
}

static void
must_mac(GwQNet *n, const uint8_t *want)
{
    uint8_t mac[GW_QNET_ETH_LEN];

    gw_qvirtio_net_read_mac(n, mac);
    g_assert_cmpmem(mac, sizeof(mac), want, GW_QNET_ETH_LEN);
}

/*
 * Before: the MAC set over the control queue, frames looped (TX -> RX,
 * which the simulator delivers only to its MAC).  During pre-copy, on
 * shadow virtqueues: frames looped, then frames sent whose RX buffers
 * the device fills and the driver reads only on the destination.  After:
 * those frames, then new ones, each exactly once and intact; the MAC is
 * the one set before, in config and in the device's filter (frames to
 * it loop back, frames to the old one do not).
 */
static void
test_net(gconstpointer data)
{
    const Shape *s = data;
    GwTestVm src, dst;
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQNet) n = NULL;
    uint32_t want[NET_QUEUES];
    bool ok;

    start_vm(&src, s, false);
    write_ballast(src.qt);
    n = gw_qvirtio_net_init(src.qt, SLOT, &err);
    g_assert_no_error(err);
    must(gw_qvirtio_net_set_mac(n, new_mac, &err), err);
    must_mac(n, new_mac);
    must(gw_qvirtio_net_loopback(n, new_mac, 8, &err), err);
    start_vm(&dst, s, true);
    begin_migration(&src, &dst, 150000);
    assert_shadowed(&src, NET_QUEUES, true);
    must(gw_qvirtio_net_loopback(n, new_mac, 16, &err), err);
    must(gw_qvirtio_net_send(n, new_mac, 6, &err), err);
    assert_still_active(&src); /* all that ran on shadow rings */
    /* rx: every frame was delivered; tx: every frame sent; ctrl: one. */
    want[0] = want[1] = gw_qvirtio_net_sent(n);
    want[2] = 1;
    finish_migration(&src, &dst);
    assert_vrings_moved(&src, &dst, want, NET_QUEUES);
    gw_qvirtio_net_set_qt(n, dst.qt);
    ok = gw_qvirtio_net_receive_sent(n, &err);
    must(ok, err);
    must_mac(n, new_mac);
    must(gw_qvirtio_net_loopback(n, new_mac, 16, &err), err);
    must(gw_qvirtio_net_not_looped(n, sim_mac, 200, &err), err);
    must(gw_qvirtio_net_loopback(n, new_mac, 2, &err), err);
    g_test_message("%u frames, %u of them before the switch-over",
                   gw_qvirtio_net_sent(n), want[1]);
    gw_qvirtio_net_free(g_steal_pointer(&n));
    gw_test_vm_stop(&src);
    gw_test_vm_stop(&dst);
}

/*
 * The destination cannot replay the control queue (its device answers
 * the MAC_ADDR_SET replayed VIRTIO_NET_ERR): its load
 * fails, it exits 1 without running, and the source goes on — its NIC
 * back on its own rings, the frames it delivered during pre-copy
 * received there once, the MAC it had, new frames looping — and a
 * second migration, to a destination that can, succeeds.
 */
static void
test_net_replay_fails(void)
{
    static const Shape ok = {"vdpasim_net", PLUG_NETDEV, .mlx5 = true};
    static const Shape bad = {"vdpasim_net", PLUG_NETDEV, .mlx5 = true,
                              .refuse_ctrl = true};
    GwTestVm src, dst;
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQNet) n = NULL;
    g_autoptr(json_object) r = NULL;
    g_autofree char *st = NULL;
    const char *why;

    start_vm(&src, &ok, false);
    write_ballast(src.qt);
    n = gw_qvirtio_net_init(src.qt, SLOT, &err);
    g_assert_no_error(err);
    must(gw_qvirtio_net_set_mac(n, new_mac, &err), err);
    start_vm(&dst, &bad, true);
    begin_migration(&src, &dst, 150000);
    must(gw_qvirtio_net_loopback(n, new_mac, 4, &err), err);
    must(gw_qvirtio_net_send(n, new_mac, 4, &err), err);
    wait_status(&src, "pre-switchover");
    qmp_void(&src, "migrate-continue", "{\"state\": \"pre-switchover\"}");
    r = poll_status(&src, "failed");
    why = status_of(r, "error-desc");
    g_test_message("source: %s", why);
    g_assert_nonnull(strstr(why, "replaying the control queue's state"));
    g_assert_nonnull(strstr(why, "refused control command 1.1"));
    reap(&dst, 1);
    st = run_state(&src);
    g_assert_cmpstr(st, ==, "running");
    assert_shadowed(&src, NET_QUEUES, false);
    must(gw_qvirtio_net_receive_sent(n, &err), err);
    must_mac(n, new_mac);
    must(gw_qvirtio_net_loopback(n, new_mac, 8, &err), err);
    /* Again, to a destination that can restore it. */
    start_vm(&dst, &ok, true);
    begin_migration(&src, &dst, 150000);
    must(gw_qvirtio_net_loopback(n, new_mac, 4, &err), err);
    finish_migration(&src, &dst);
    gw_qvirtio_net_set_qt(n, dst.qt);
    must_mac(n, new_mac);
    must(gw_qvirtio_net_loopback(n, new_mac, 8, &err), err);
    gw_qvirtio_net_free(g_steal_pointer(&n));
    gw_test_vm_stop(&src);
    gw_test_vm_stop(&dst);
}

/* The blocked-reasons of query-migrate, joined ("" for none). */
static char *
blocked_reasons(GwTestVm *vm)
{
    g_autoptr(json_object) r = query_migrate(vm);
    json_object *reasons = json_object_object_get(r, "blocked-reasons");
    g_autoptr(GString) s = g_string_new("");

    for (size_t i = 0; reasons && i < json_object_array_length(reasons); i++) {
        g_string_append(
            s, json_object_get_string(json_object_array_get_idx(reasons, i)));
    }
    return g_string_free(g_steal_pointer(&s), false);
}

/*
 * A driver that negotiated GUEST_ANNOUNCE has control-queue state godwit
 * does not carry to the destination: the migration is blocked, with a
 * reason naming the device and that feature (not CTRL_RX, whose state
 * is carried), and `migrate` refuses with it; the VM keeps running.
 * Before DRIVER_OK nothing blocks.  (And the vring query refuses an id
 * that is no vDPA device.)
 */
static void
test_net_uncarried_state_blocks(void)
{
    static const Shape s = {"vdpasim_net", PLUG_NETDEV,
                            .features = "ctrl-rx+guest-announce"};
    const uint64_t want = 1ull << 32 | 1ull << 33 | 1ull << 5 | 1ull << 17 |
                          1ull << 18 | 1ull << 21;
    /* + MAC, CTRL_VQ, CTRL_RX, GUEST_ANNOUNCE */
    GwTestVm vm;
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQVirtio) vd = NULL;
    g_autofree char *none = NULL, *why = NULL, *class = NULL, *desc = NULL;
    g_autofree char *st = NULL;

    start_vm(&vm, &s, false);
    none = blocked_reasons(&vm);
    g_assert_cmpstr(none, ==, "");
    vd = gw_qvirtio_init_queues(vm.qt, SLOT, want, 3, &err);
    g_assert_no_error(err);
    g_assert_cmphex(gw_qvirtio_features(vd) & want, ==, want);
    why = blocked_reasons(&vm);
    g_test_message("%s", why);
    g_assert_nonnull(strstr(why, "vDPA network device " ID));
    g_assert_nonnull(strstr(why, "negotiated GUEST_ANNOUNCE, whose"));
    gw_test_vm_qmp_err(&vm, "migrate", "{\"uri\":\"unix:/nonexistent\"}",
                       &class, &desc);
    g_assert_nonnull(
        strstr(desc, "negotiated GUEST_ANNOUNCE, whose control-queue"));
    st = run_state(&vm);
    g_assert_cmpstr(st, ==, "running");
    g_clear_pointer(&class, g_free);
    g_clear_pointer(&desc, g_free);
    gw_test_vm_qmp_err(&vm, "x-godwit-query-vdpa-vrings", "{\"id\":\"nope\"}",
                       &class, &desc);
    g_assert_cmpstr(class, ==, "DeviceNotFound");
    g_assert_cmpstr(desc, ==, "Device 'nope' is no vDPA device");
    gw_qvirtio_reset(vd);
    gw_test_vm_stop(&vm);
}

int
main(int argc, char **argv)
{
    static const Shape blk_boot = {"vdpasim_blk", PLUG_BOOT};
    static const Shape blk_generic = {"vdpasim_blk", PLUG_GENERIC};
    static const Shape net_boot = {"vdpasim_net", PLUG_BOOT};
    static const Shape net_mlx5 = {"vdpasim_net", PLUG_BOOT, .mlx5 = true};
    static const Shape net_netdev = {"vdpasim_net", PLUG_NETDEV, .mlx5 = true};
    static const Shape net_early = {"vdpasim_net", PLUG_NETDEV, .mlx5 = true,
                                    .no_late_enable = true};

    g_test_init(&argc, &argv, NULL);
    disk = gw_test_disk_path("godwit-mig-vdpa");
    g_test_add_data_func("/migration-vdpa/blk/boot/io-in-flight-completes-once",
                         &blk_boot, test_blk);
    g_test_add_data_func(
        "/migration-vdpa/blk/device-add-generic/io-in-flight-completes-once",
        &blk_generic, test_blk);
    g_test_add_data_func("/migration-vdpa/net/boot/frames-and-mac", &net_boot,
                         test_net);
    g_test_add_data_func(
        "/migration-vdpa/net/boot-mac-config-ignored/mac-replayed-on-cvq",
        &net_mlx5, test_net);
    g_test_add_data_func(
        "/migration-vdpa/net/netdev-add-virtio-net-pci/frames-and-mac",
        &net_netdev, test_net);
    g_test_add_data_func(
        "/migration-vdpa/net/no-enable-after-driver-ok/mac-replayed-on-cvq",
        &net_early, test_net);
    static const struct {
        const char *path;
        FailCase c;
    } fails[] = {
        {"destination-killed-in-pre-copy", {false, FAIL_KILL}},
        {"destination-killed-at-switch-over", {true, FAIL_KILL}},
        {"cancelled-in-pre-copy", {false, FAIL_CANCEL}},
        {"cancelled-at-switch-over", {true, FAIL_CANCEL}},
        {"link-cut-in-pre-copy", {false, FAIL_CUT}},
        {"link-cut-at-switch-over", {true, FAIL_CUT}},
        {"stream-corrupt-in-pre-copy", {false, FAIL_CORRUPT}},
        {"stream-corrupt-at-switch-over", {true, FAIL_CORRUPT}},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(fails); i++) {
        g_autofree char *path =
            g_strdup_printf("/migration-vdpa/blk/fail/%s", fails[i].path);
        g_test_add_data_func(path, &fails[i].c, test_blk_fail);
    }
    g_test_add_func("/migration-vdpa/net/fail/replay-refused-source-goes-on",
                    test_net_replay_fails);
    g_test_add_func("/migration-vdpa/net/guest-announce-negotiated-blocks-"
                    "migration",
                    test_net_uncarried_state_blocks);
    return g_test_run();
}
