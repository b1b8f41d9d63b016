/*
 * ACPI PCI hotplug as the test guest sees it, on QEMU's pc machine
 * (virtio-blk-pci) and on godwit (simulated vDPA block devices): the
 * guest's hotplug workload polls the PCI hotplug registers (godwit's are
 * QEMU's), drives each added device with the blk checks, and ejects it
 * when removal is requested; the test plugs and unplugs over QMP in step
 * with the guest's report.  QEMU runs under TCG and is skipped when not
 * installed; godwit needs /dev/kvm and is skipped visibly without it.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>
#include <glib/gstdio.h>
#include <godwit/qmp-client.h>
#include "guest-report.h"
#include "spawn-util.h"

#define QEMU    "qemu-system-x86_64"
#define T       30000  /* each QMP exchange and event */
#define WAIT_MS 120000 /* the whole guest run */
#define ROUNDS  3   /* at most: QEMU runs 2, godwit one per device_add shape */
#define SLOT    "3" /* not the first free slot: the guest must look */

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)

static char *qemu_path;

typedef struct {
    bool godwit; /* else QEMU */
    char *dir, *sock;
    char *disks[ROUNDS + 1]; /* [n]: QEMU's image of round n */
    int fdset;               /* godwit: the fd set of the round using one */
    GwQmpConn *qmp;
    guint round;   /* hp<round> is plugged, or was last */
    guint deleted; /* DEVICE_DELETED seen for hp1 .. hp<deleted> */
    bool plug;     /* device_add when the guest is ready */
    bool unplug;   /* device_del once the guest has checked the disk */
    guint rounds;  /* how many devices to plug */
    char *error;   /* the first thing that went wrong on the host side */
} Hotplug;

static bool
fail(Hotplug *h, char *msg)
{
    if (!h->error) {
        h->error = msg;
    } else {
        g_free(msg);
    }
    return false;
}

/* Runs a command; false (and h->error) unless it returned success. */
static bool
qmp_ok(Hotplug *h, const char *cmd, json_object *args)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) r =
        gw_qmp_conn_execute(h->qmp, cmd, args, -1, T, &err);

    if (!r) {
        return fail(h, g_strdup_printf("%s: %s", cmd, err->message));
    }
    if (!json_object_object_get_ex(r, "return", NULL)) {
        return fail(
            h, g_strdup_printf("%s: %s", cmd, json_object_to_json_string(r)));
    }
    return true;
}

static bool
connect_qmp(Hotplug *h)
{
    g_autoptr(GError) err = NULL;

    h->qmp = gw_qmp_conn_new(h->sock, T, &err);
    if (!h->qmp || !gw_qmp_conn_negotiate(h->qmp, T, &err)) {
        return fail(h, g_strdup_printf("qmp: %s", err->message));
    }
    return true;
}

/*
 * godwit, one device_add shape per round, each a simulated disk of n MiB
 * (d<n>): 1 the generic vhost-vdpa-device-pci on a path, 2 the same on
 * /dev/fdset/N after add-fd (libvirt's way), 3 Cloud Hypervisor's
 * x-godwit-vdpa-add (no address: the lowest free slot).
 */
static bool
plug_godwit(Hotplug *h, guint n)
{
    g_autofree char *node = g_strdup_printf("%s/vdpa/d%u", h->dir, n);
    g_autofree char *id = g_strdup_printf("hp%u", n);
    g_autofree char *fdset = NULL;
    json_object *dev = json_object_new_object();

    json_object_object_add(dev, "id", json_object_new_string(id));
    if (n == 3) {
        json_object_object_add(dev, "path", json_object_new_string(node));
        return qmp_ok(h, "x-godwit-vdpa-add", dev);
    }
    if (n == 2) {
        g_autoptr(GError) err = NULL;
        g_autoptr(json_object) r = NULL;
        json_object *ret, *set;
        int fd = open(node, O_RDWR | O_CLOEXEC);

        if (fd < 0) {
            json_object_put(dev);
            return fail(
                h, g_strdup_printf("open %s: %s", node, g_strerror(errno)));
        }
        r = gw_qmp_conn_execute(h->qmp, "add-fd", NULL, fd, T, &err);
        close(fd);
        if (!r || !json_object_object_get_ex(r, "return", &ret) ||
            !json_object_object_get_ex(ret, "fdset-id", &set)) {
            json_object_put(dev);
            return fail(h, g_strdup_printf("add-fd: %s",
                                           r ? json_object_to_json_string(r)
                                             : err->message));
        }
        h->fdset = json_object_get_int(set);
        fdset = g_strdup_printf("/dev/fdset/%d", h->fdset);
    }
    json_object_object_add(dev, "driver",
                           json_object_new_string("vhost-vdpa-device-pci"));
    json_object_object_add(dev, "vhostdev",
                           json_object_new_string(fdset ? fdset : node));
    json_object_object_add(dev, "bus", json_object_new_string("pci.0"));
    json_object_object_add(dev, "addr", json_object_new_string(SLOT));
    return qmp_ok(h, "device_add", dev);
}

static bool
plug(Hotplug *h)
{
    guint n = ++h->round;

    if (h->godwit) {
        return plug_godwit(h, n);
    }
    g_autofree char *node = g_strdup_printf("d%u", n);
    g_autofree char *id = g_strdup_printf("hp%u", n);
    json_object *file = json_object_new_object();
    json_object *bd = json_object_new_object();
    json_object *dev = json_object_new_object();

    json_object_object_add(file, "driver", json_object_new_string("file"));
    json_object_object_add(file, "filename",
                           json_object_new_string(h->disks[n]));
    json_object_object_add(bd, "driver", json_object_new_string("raw"));
    json_object_object_add(bd, "node-name", json_object_new_string(node));
    json_object_object_add(bd, "file", file);
    json_object_object_add(dev, "driver",
                           json_object_new_string("virtio-blk-pci"));
    json_object_object_add(dev, "id", json_object_new_string(id));
    json_object_object_add(dev, "drive", json_object_new_string(node));
    json_object_object_add(dev, "bus", json_object_new_string("pci.0"));
    json_object_object_add(dev, "addr", json_object_new_string(SLOT));
    json_object_object_add(dev, "disable-legacy", json_object_new_string("on"));
    if (!qmp_ok(h, "blockdev-add", bd)) {
        json_object_put(dev);
        return false;
    }
    return qmp_ok(h, "device_add", dev);
}

static bool
unplug(Hotplug *h)
{
    json_object *args = json_object_new_object();
    g_autofree char *id = g_strdup_printf("hp%u", h->round);

    json_object_object_add(args, "id", json_object_new_string(id));
    return qmp_ok(h, "device_del", args);
}

/* QEMU also reports the device's virtio backend child; wait for ours. */
static bool
wait_deleted(Hotplug *h)
{
    g_autofree char *id = g_strdup_printf("hp%u", h->round);
    g_autofree char *node = g_strdup_printf("d%u", h->round);

    for (;;) {
        g_autoptr(GError) err = NULL;
        g_autoptr(json_object) ev =
            gw_qmp_conn_wait_event(h->qmp, "DEVICE_DELETED", T, &err);
        json_object *data, *dev;
        if (!ev) {
            return fail(h, g_strdup_printf("no DEVICE_DELETED for %s: %s", id,
                                           err->message));
        }
        if (json_object_object_get_ex(ev, "data", &data) &&
            json_object_object_get_ex(data, "device", &dev) &&
            g_str_equal(json_object_get_string(dev), id)) {
            break;
        }
    }
    h->deleted = h->round;
    json_object *args = json_object_new_object();
    if (h->godwit) {
        /* The device closed its dup; libvirt then drops the set. */
        if (h->round != 2) {
            json_object_put(args);
            return true;
        }
        json_object_object_add(args, "fdset-id", json_object_new_int(h->fdset));
        return qmp_ok(h, "remove-fd", args);
    }
    json_object_object_add(args, "node-name", json_object_new_string(node));
    return qmp_ok(h, "blockdev-del", args);
}

/* Acts on the guest's report as it arrives; false stops the run. */
static bool
on_line(const char *line, gpointer data)
{
    Hotplug *h = data;

    if (g_str_has_prefix(line, "GUEST fail")) {
        return false;
    }
    if (g_str_equal(line, "GUEST hotplug ready")) {
        return connect_qmp(h) && (!h->plug || plug(h));
    }
    if (g_str_equal(line, "GUEST pass blk") && h->unplug) {
        return unplug(h);
    }
    if (g_str_has_prefix(line, "GUEST hotplug remove ")) {
        return wait_deleted(h);
    }
    /* Only once the guest saw the slot empty may the next device come. */
    if (g_str_has_prefix(line, "GUEST hotplug ejected ")) {
        return h->round == h->rounds || plug(h);
    }
    return true;
}

static bool
need_qemu(void)
{
    if (!qemu_path) {
        g_test_skip(QEMU " is not installed");
        return false;
    }
    return true;
}

static GuestReport *
run_qemu(Hotplug *h, const char *cmdline)
{
    g_autofree char *qmp_arg =
        g_strdup_printf("unix:%s,server=on,wait=off", h->sock);
    g_autoptr(GError) err = NULL;
    GuestReport *r;

    for (guint n = 1; n <= h->rounds; n++) {
        g_autofree char *name = g_strdup_printf("%u.raw", n);
        int fd;
        h->disks[n] = g_build_filename(h->dir, name, NULL);
        fd = open(h->disks[n], O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(ftruncate(fd, (off_t)n << 20), ==, 0); /* n MiB */
        close(fd);
    }
    const char *argv[] = {qemu_path,  "-machine",    "pc",
                          "-accel",   "tcg",         "-m",
                          "256",      "-kernel",     g_getenv("GODWIT_GUEST"),
                          "-append",  cmdline,       "-display",
                          "none",     "-serial",     "stdio",
                          "-monitor", "none",        "-qmp",
                          qmp_arg,    "-nodefaults", "-no-reboot",
                          NULL};
    r = guest_report_run_full(argv, WAIT_MS, false, on_line, h, &err);
    g_assert_no_error(err);
    for (guint n = 1; n <= h->rounds; n++) {
        g_unlink(h->disks[n]);
        g_free(h->disks[n]);
    }
    return r;
}

/* godwit with a simulated disk of n MiB, d<n>, for each round. */
static GuestReport *
run_godwit(Hotplug *h, const char *cmdline)
{
    g_autofree char *env = g_strdup_printf("GODWIT_RUNTIME_DIR=%s", h->dir);
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    const char *base[] = {"env",
                          env,
                          g_getenv("GODWIT_BIN"),
                          "--kernel",
                          g_getenv("GODWIT_GUEST"),
                          "--cmdline",
                          cmdline,
                          "--memory",
                          "size=256M",
                          "--serial",
                          "stdio",
                          "--qmp",
                          h->sock};
    g_autoptr(GError) err = NULL;
    GuestReport *r;

    for (size_t i = 0; i < G_N_ELEMENTS(base); i++) {
        g_ptr_array_add(argv, g_strdup(base[i]));
    }
    for (guint n = 1; n <= h->rounds; n++) {
        g_ptr_array_add(argv, g_strdup("--vdpa-sim"));
        g_ptr_array_add(
            argv,
            g_strdup_printf("name=d%u,mgmtdev=vdpasim_blk,capacity=%uM", n, n));
    }
    g_ptr_array_add(argv, NULL);
    r = guest_report_run_full((const char *const *)argv->pdata, WAIT_MS, false,
                              on_line, h, &err);
    g_assert_no_error(err);
    return r;
}

static GuestReport *
run_hotplug(Hotplug *h, const char *cmdline)
{
    GuestReport *r;

    h->dir = g_dir_make_tmp("godwit-hotplug-XXXXXX", NULL);
    g_assert_nonnull(h->dir);
    g_assert_nonnull(g_getenv("GODWIT_GUEST"));
    h->sock = g_build_filename(h->dir, "qmp.sock", NULL);
    if (!h->rounds) {
        h->rounds = 2;
    }
    r = h->godwit ? run_godwit(h, cmdline) : run_qemu(h, cmdline);
    guest_report_dump(r);
    if (h->error) {
        g_test_message("host side: %s", h->error);
    }
    g_clear_pointer(&h->qmp, gw_qmp_conn_free);
    g_unlink(h->sock);
    g_assert_true(rm_tree(h->dir));
    g_free(h->dir);
    g_free(h->sock);
    return r;
}

/* Every line of `expect` appears in the report, in this order. */
static void
assert_in_order(const GuestReport *r, const char *const *expect, guint n)
{
    guint at = 0;

    for (guint i = 0; i < r->lines->len && at < n; i++) {
        at += g_str_equal(g_ptr_array_index(r->lines, i), expect[at]);
    }
    if (at < n) {
        g_test_message("missing, in order: \"%s\"", expect[at]);
    }
    g_assert_cmpuint(at, ==, n);
}

static void
test_add_remove_rounds(void)
{
    if (!need_qemu()) {
        return;
    }
    Hotplug h = {.plug = true, .unplug = true};
    g_autoptr(GuestReport) r = run_hotplug(&h, "hotplug rounds=2 sectors=8");
    const char *expect[] = {
        "GUEST hotplug ready",
        "GUEST hotplug add slot=" SLOT,
        "GUEST blk 00:03.0 capacity=2048",
        /* no firmware ran for it: the guest placed the BARs */
        "GUEST blk 00:03.0 features=0x100000000 bars=guest",
        "GUEST pass blk",
        "GUEST hotplug remove slot=" SLOT,
        "GUEST hotplug ejected slot=" SLOT,
        "GUEST hotplug add slot=" SLOT,
        "GUEST blk 00:03.0 capacity=4096",
        "GUEST pass blk",
        "GUEST hotplug remove slot=" SLOT,
        "GUEST hotplug ejected slot=" SLOT,
        "GUEST pass hotplug",
        "GUEST done",
    };

    g_assert_null(h.error);
    g_assert_true(r->done);
    assert_in_order(r, expect, G_N_ELEMENTS(expect));
    g_assert_cmpuint(h.deleted, ==, 2);
    g_assert_null(guest_report_find(r, "GUEST fail"));
    g_free(h.error);
}

/*
 * godwit: each device_add shape in turn (generic on a path, on an fd set,
 * Cloud Hypervisor's), the guest finds each, its blk checks pass, it
 * ejects each on request, DEVICE_DELETED follows.
 */
static void
test_godwit_three_shapes(void)
{
    if (!kvm_usable()) {
        return;
    }
    Hotplug h = {.godwit = true, .plug = true, .unplug = true, .rounds = 3};
    g_autoptr(GuestReport) r = run_hotplug(&h, "hotplug rounds=3 sectors=8");
    const char *expect[] = {
        "GUEST hotplug ready",
        "GUEST hotplug add slot=" SLOT,
        "GUEST blk 00:03.0 capacity=2048",
        "GUEST pass blk",
        "GUEST hotplug remove slot=" SLOT,
        "GUEST hotplug ejected slot=" SLOT,
        "GUEST hotplug add slot=" SLOT,
        "GUEST blk 00:03.0 capacity=4096",
        "GUEST pass blk",
        "GUEST hotplug remove slot=" SLOT,
        "GUEST hotplug ejected slot=" SLOT,
        "GUEST hotplug add slot=1", /* x-godwit-vdpa-add: lowest free */
        "GUEST blk 00:01.0 capacity=6144",
        "GUEST pass blk",
        "GUEST hotplug remove slot=1",
        "GUEST hotplug ejected slot=1",
        "GUEST pass hotplug",
        "GUEST done",
    };

    g_assert_null(h.error);
    g_assert_true(r->done);
    assert_in_order(r, expect, G_N_ELEMENTS(expect));
    g_assert_cmpuint(h.deleted, ==, 3);
    g_assert_null(guest_report_find(r, "GUEST fail"));
    g_free(h.error);
}

/* Nobody plugs anything: the wait for an add is bounded. */
static void
test_add_times_out(void)
{
    if (!need_qemu()) {
        return;
    }
    Hotplug h = {0};
    g_autoptr(GuestReport) r = run_hotplug(&h, "hotplug timeout-ms=300");

    g_assert_true(guest_report_has(r, "GUEST hotplug ready"));
    g_assert_true(
        guest_report_has(r, "GUEST fail hotplug round=1 waiting=add timeout"));
    g_assert_false(guest_report_has(r, "GUEST pass hotplug"));
    g_assert_null(h.error);
    g_free(h.error);
}

/* The device is plugged but never unplugged: the wait for removal is
 * bounded too, after the blk checks passed. */
static void
test_remove_times_out(void)
{
    if (!need_qemu()) {
        return;
    }
    Hotplug h = {.plug = true};
    g_autoptr(GuestReport) r = run_hotplug(&h, "hotplug timeout-ms=1000");

    g_assert_null(h.error);
    g_assert_true(guest_report_has(r, "GUEST hotplug add slot=" SLOT));
    g_assert_true(guest_report_has(r, "GUEST pass blk"));
    g_assert_true(guest_report_has(r, "GUEST fail hotplug round=1 slot=" SLOT
                                      " waiting=remove timeout"));
    g_assert_false(guest_report_has(r, "GUEST pass hotplug"));
    g_assert_cmpuint(h.deleted, ==, 0);
    g_free(h.error);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qemu_path = g_find_program_in_path(QEMU);
    g_test_add_func("/guest/qemu/hotplug/add-check-remove-twice",
                    test_add_remove_rounds);
    g_test_add_func("/guest/qemu/hotplug/add-wait-times-out",
                    test_add_times_out);
    g_test_add_func("/guest/qemu/hotplug/remove-wait-times-out",
                    test_remove_times_out);
    g_test_add_func("/guest/godwit/hotplug/three-device-add-shapes",
                    test_godwit_three_shapes);
    int ret = g_test_run();
    g_free(qemu_path);
    return ret;
}
