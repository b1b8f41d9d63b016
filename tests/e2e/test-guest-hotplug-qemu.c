/*
 * ACPI PCI hotplug of virtio-blk on QEMU's pc machine, as the test guest
 * sees it: the guest's hotplug workload polls QEMU's PCI hotplug
 * registers, drives each added device with the blk checks, and ejects
 * it when removal is requested; the test plugs and unplugs over QMP in
 * step with the guest's report.  Skipped when QEMU is not installed.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <godwit/qmp-client.h>
#include "guest-report.h"

#define QEMU    "qemu-system-x86_64"
#define T       30000  /* each QMP exchange and event */
#define WAIT_MS 120000 /* the whole guest run */
#define ROUNDS  2
#define SLOT    "3" /* not the first free slot (2): the guest must look */

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)

static char *qemu_path;

typedef struct {
    char *sock;
    char *disks[ROUNDS + 1]; /* [n]: the image of round n */
    GwQmpConn *qmp;
    guint round;   /* hp<round> is plugged, or was last */
    guint deleted; /* DEVICE_DELETED seen for hp1 .. hp<deleted> */
    bool plug;     /* device_add when the guest is ready */
    bool unplug;   /* device_del once the guest has checked the disk */
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

static bool
plug(Hotplug *h)
{
    guint n = ++h->round;
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
        return wait_deleted(h) && (h->round == ROUNDS || plug(h));
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
run_hotplug(Hotplug *h, const char *cmdline)
{
    g_autofree char *dir = g_dir_make_tmp("godwit-hotplug-XXXXXX", NULL);
    g_autofree char *qmp_arg = NULL;
    g_autoptr(GError) err = NULL;
    GuestReport *r;

    g_assert_nonnull(dir);
    g_assert_nonnull(g_getenv("GODWIT_GUEST"));
    h->sock = g_build_filename(dir, "qmp.sock", NULL);
    qmp_arg = g_strdup_printf("unix:%s,server=on,wait=off", h->sock);
    for (guint n = 1; n <= ROUNDS; n++) {
        int fd;
        h->disks[n] = g_build_filename(dir, n == 1 ? "1.raw" : "2.raw", NULL);
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
    guest_report_dump(r);
    if (h->error) {
        g_test_message("host side: %s", h->error);
    }
    g_clear_pointer(&h->qmp, gw_qmp_conn_free);
    g_unlink(h->sock);
    for (guint n = 1; n <= ROUNDS; n++) {
        g_unlink(h->disks[n]);
        g_free(h->disks[n]);
    }
    g_rmdir(dir);
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
        "GUEST hotplug add slot=" SLOT,
        "GUEST blk 00:03.0 capacity=4096",
        "GUEST pass blk",
        "GUEST hotplug remove slot=" SLOT,
        "GUEST pass hotplug",
        "GUEST done",
    };

    g_assert_null(h.error);
    g_assert_true(r->done);
    assert_in_order(r, expect, G_N_ELEMENTS(expect));
    g_assert_cmpuint(h.deleted, ==, ROUNDS);
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
    int ret = g_test_run();
    g_free(qemu_path);
    return ret;
}
