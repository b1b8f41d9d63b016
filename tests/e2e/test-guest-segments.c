/*
 * The test guest (tests/guest) on KVM with several PCI segments: it
 * parses the MCFG, enumerates each segment through its ECAM window,
 * finds the vDPA disk on the segment it was put on and runs the blk
 * workload there.  Skips visibly without a usable /dev/kvm.
 */
#include <glib/gstdio.h>
#include <godwit/qmp-client.h>
#include <godwit/util.h>
#include "guest-report.h"
#include "spawn-util.h"

#define T     120000 /* 32-bit guest code may be emulated: be generous */
#define QMP_T 30000  /* each QMP exchange and event */

static char *runtime_dir;

/* godwit --kernel guest.elf --cmdline `cmdline` plus `extra` (split at
 * spaces, "@DIR@" the runtime directory). */
static GuestReport *
boot(const char *cmdline, const char *extra)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_auto(GStrv) parts = g_strsplit(extra, "@DIR@", -1);
    g_autofree char *joined = g_strjoinv(runtime_dir, parts);
    g_auto(GStrv) more = g_strsplit(joined, " ", -1);
    GuestReport *r;

    g_ptr_array_add(argv, (char *)g_getenv("GODWIT_BIN"));
    g_ptr_array_add(argv, "--kernel");
    g_ptr_array_add(argv, (char *)g_getenv("GODWIT_GUEST"));
    g_ptr_array_add(argv, "--cmdline");
    g_ptr_array_add(argv, (char *)cmdline);
    g_ptr_array_add(argv, "--serial");
    g_ptr_array_add(argv, "stdio");
    for (guint i = 0; more[i]; i++) {
        if (*more[i]) {
            g_ptr_array_add(argv, more[i]);
        }
    }
    g_ptr_array_add(argv, NULL);
    r = guest_report_run((const char *const *)argv->pdata, T, &err);
    g_assert_no_error(err);
    if (!r->done || guest_report_find(r, "GUEST fail")) {
        guest_report_dump(r);
    }
    return r;
}

/* The spec's example: a disk on segment 1 of 2, nothing on segment 0
 * but its host bridge. */
static void
test_blk_on_segment_1(void)
{
    g_autoptr(GuestReport) r = NULL;

    if (!kvm_usable()) {
        return;
    }
    r = boot("pci-list; blk sectors=8 expect-capacity=262144",
             "--platform num_pci_segments=2 "
             "--vdpa-sim name=seg1,mgmtdev=vdpasim_blk "
             "--vdpa path=@DIR@/vdpa/seg1,num_queues=1,pci_segment=1");
    g_assert_true(r->done);
    g_assert_true(
        guest_report_has(r, "GUEST mcfg segment=0 base=0xe0000000 buses=0-0"));
    g_assert_true(
        guest_report_has(r, "GUEST mcfg segment=1 base=0xe0100000 buses=0-0"));
    g_assert_null(guest_report_find(r, "GUEST mcfg segment=2"));
    g_assert_true(
        guest_report_has(r, "GUEST pci 00:00.0 1b36:0008 class=060000"));
    g_assert_true(
        guest_report_has(r, "GUEST pci 0001:00:00.0 1b36:0008 class=060000"));
    g_assert_true(
        guest_report_has(r, "GUEST pci 0001:00:01.0 1af4:1042 class=010000"));
    g_assert_null(guest_report_find(r, "GUEST pci 00:01.0"));
    g_assert_true(guest_report_has(r, "GUEST pci-count 3"));
    g_assert_true(
        guest_report_has(r, "GUEST blk 0001:00:01.0 capacity=262144"));
    g_assert_true(guest_report_has(r, "GUEST pass blk"));
    g_assert_null(guest_report_find(r, "GUEST fail"));
}

/* Three segments, a disk on 0 and one on 2: each found where it was put,
 * each workload on its own disk (the capacities differ). */
static void
test_blk_on_segments_0_and_2(void)
{
    g_autoptr(GuestReport) r = NULL;

    if (!kvm_usable()) {
        return;
    }
    r = boot("pci-list; blk dev=00:01.0 expect-capacity=2048; "
             "blk dev=0002:00:01.0 expect-capacity=4096; "
             "blk dev=0001:00:01.0",
             "--platform num_pci_segments=3 "
             "--vdpa-sim name=s0,mgmtdev=vdpasim_blk,capacity=1M "
             "--vdpa-sim name=s2,mgmtdev=vdpasim_blk,capacity=2M "
             "--vdpa path=@DIR@/vdpa/s0 "
             "--vdpa path=@DIR@/vdpa/s2,pci_segment=2");
    g_assert_true(r->done);
    g_assert_true(
        guest_report_has(r, "GUEST mcfg segment=2 base=0xe0200000 buses=0-0"));
    g_assert_true(
        guest_report_has(r, "GUEST pci 00:01.0 1af4:1042 class=010000"));
    g_assert_true(
        guest_report_has(r, "GUEST pci 0002:00:01.0 1af4:1042 class=010000"));
    g_assert_true(
        guest_report_has(r, "GUEST pci 0001:00:00.0 1b36:0008 class=060000"));
    g_assert_true(guest_report_has(r, "GUEST blk 00:01.0 capacity=2048"));
    g_assert_true(guest_report_has(r, "GUEST blk 0002:00:01.0 capacity=4096"));
    g_assert_cmpuint(guest_report_count(r, "GUEST pass blk"), ==, 2);
    /* segment 1 has only its host bridge: the third blk finds nothing */
    g_assert_true(guest_report_has(
        r, "GUEST fail blk 0001:00:01.0 not-virtio-blk id=ffff:ffff"));
    g_assert_cmpuint(guest_report_count(r, "GUEST fail"), ==, 1);
}

/* ---- hotplug onto segment 1 with the guest's hotplug workload ---- */

typedef struct {
    char *sock;
    GwQmpConn *qmp;
    guint round; /* hp<round> was plugged last */
    char *error; /* the first thing that went wrong on the host side */
    char *bdf;   /* what x-godwit-vdpa-add answered */
} Hp;

static bool
hp_fail(Hp *h, char *msg)
{
    if (!h->error) {
        h->error = msg;
    } else {
        g_free(msg);
    }
    return false;
}

/* Runs a command; its "return" (caller's), or NULL and h->error. */
static json_object *
hp_qmp(Hp *h, const char *cmd, const char *args_json)
{
    g_autoptr(GError) err = NULL;
    json_object *args = json_tokener_parse(args_json);
    g_autoptr(json_object) r =
        gw_qmp_conn_execute(h->qmp, cmd, args, -1, QMP_T, &err);
    json_object *ret;

    if (!r || !json_object_object_get_ex(r, "return", &ret)) {
        hp_fail(h, g_strdup_printf("%s: %s", cmd,
                                   r ? json_object_to_json_string(r)
                                     : err->message));
        return NULL;
    }
    return json_object_get(ret);
}

/* Round 1: x-godwit-vdpa-add on segment 1; round 2: device_add on bus
 * pci.1, slot 4. */
static bool
hp_plug(Hp *h)
{
    g_autofree char *args = NULL;
    g_autoptr(json_object) r = NULL;
    guint n = ++h->round;

    if (n == 1) {
        args = g_strdup_printf("{\"path\":\"%s/vdpa/hp1\",\"id\":\"hp1\","
                               "\"pci_segment\":1}",
                               runtime_dir);
        r = hp_qmp(h, "x-godwit-vdpa-add", args);
        if (r) {
            h->bdf = g_strdup(
                json_object_get_string(json_object_object_get(r, "bdf")));
        }
        return r != NULL;
    }
    args = g_strdup_printf("{\"driver\":\"vhost-vdpa-device-pci\","
                           "\"vhostdev\":\"%s/vdpa/hp2\",\"id\":\"hp2\","
                           "\"bus\":\"pci.1\",\"addr\":\"4\"}",
                           runtime_dir);
    r = hp_qmp(h, "device_add", args);
    return r != NULL;
}

static bool
hp_wait_deleted(Hp *h)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) ev =
        gw_qmp_conn_wait_event(h->qmp, "DEVICE_DELETED", QMP_T, &err);

    return ev ||
           hp_fail(h, g_strdup_printf("no DEVICE_DELETED: %s", err->message));
}

static bool
hp_on_line(const char *line, gpointer data)
{
    Hp *h = data;
    g_autoptr(GError) err = NULL;

    if (g_str_has_prefix(line, "GUEST fail")) {
        return false;
    }
    if (g_str_equal(line, "GUEST hotplug ready")) {
        h->qmp = gw_qmp_conn_new(h->sock, QMP_T, &err);
        if (!h->qmp || !gw_qmp_conn_negotiate(h->qmp, QMP_T, &err)) {
            return hp_fail(h, g_strdup_printf("qmp: %s", err->message));
        }
        return hp_plug(h);
    }
    if (g_str_equal(line, "GUEST pass blk")) {
        g_autofree char *args = g_strdup_printf("{\"id\":\"hp%u\"}", h->round);
        g_autoptr(json_object) r = hp_qmp(h, "device_del", args);
        return r != NULL;
    }
    if (g_str_has_prefix(line, "GUEST hotplug remove ")) {
        return hp_wait_deleted(h);
    }
    if (g_str_has_prefix(line, "GUEST hotplug ejected ")) {
        return h->round == 2 || hp_plug(h);
    }
    return true;
}

/* Two rounds on segment 1, each way of plugging: the guest sees each
 * device through segment 1's hotplug registers, drives it, ejects it. */
static void
test_hotplug_on_segment_1(void)
{
    g_autofree char *sock = g_build_filename(runtime_dir, "hp.sock", NULL);
    g_autoptr(GuestReport) r = NULL;
    g_autoptr(GError) err = NULL;
    Hp h = {.sock = sock};
    const char *argv[] = {g_getenv("GODWIT_BIN"),
                          "--kernel",
                          g_getenv("GODWIT_GUEST"),
                          "--cmdline",
                          "hotplug segment=1 rounds=2",
                          "--serial",
                          "stdio",
                          "--qmp",
                          sock,
                          "--platform",
                          "num_pci_segments=2",
                          "--vdpa-sim",
                          "name=hp1,mgmtdev=vdpasim_blk,capacity=1M",
                          "--vdpa-sim",
                          "name=hp2,mgmtdev=vdpasim_blk,capacity=2M",
                          NULL};

    if (!kvm_usable()) {
        return;
    }
    r = guest_report_run_full(argv, T, false, hp_on_line, &h, &err);
    g_assert_no_error(err);
    if (h.error || !r->done) {
        guest_report_dump(r);
    }
    g_assert_null(h.error);
    g_assert_cmpstr(h.bdf, ==, "0001:00:01.0");
    g_assert_true(guest_report_has(r, "GUEST hotplug add slot=1"));
    g_assert_true(guest_report_has(r, "GUEST blk 0001:00:01.0 capacity=2048"));
    g_assert_true(guest_report_has(r, "GUEST hotplug ejected slot=1"));
    g_assert_true(guest_report_has(r, "GUEST hotplug add slot=4"));
    g_assert_true(guest_report_has(r, "GUEST blk 0001:00:04.0 capacity=4096"));
    g_assert_true(guest_report_has(r, "GUEST hotplug ejected slot=4"));
    g_assert_true(guest_report_has(r, "GUEST pass hotplug"));
    g_assert_null(guest_report_find(r, "GUEST fail"));
    g_clear_pointer(&h.qmp, gw_qmp_conn_free);
    g_free(h.bdf);
}

/* The spec's example, word for word but for the device: two queues on
 * segment 1 (a simulated net device, as the blk simulator has one). */
static void
test_spec_example(void)
{
    g_autoptr(GuestReport) r = NULL;

    if (!kvm_usable()) {
        return;
    }
    r = boot("net frames=16", "--platform num_pci_segments=2 "
                              "--vdpa-sim name=vdpa0,mgmtdev=vdpasim_net "
                              "--vdpa path=@DIR@/vdpa/vdpa0,num_queues=2,"
                              "pci_segment=1");
    g_assert_true(r->done);
    g_assert_nonnull(guest_report_find(r, "GUEST net 0001:00:01.0 features="));
    g_assert_true(guest_report_has(r, "GUEST pass net frames=16"));
    g_assert_null(guest_report_find(r, "GUEST fail"));
}

int
main(int argc, char **argv)
{
    int rc;

    g_test_init(&argc, &argv, NULL);
    runtime_dir = g_dir_make_tmp("godwit-guest-seg-XXXXXX", NULL);
    g_setenv("GODWIT_RUNTIME_DIR", runtime_dir, TRUE);
    g_test_add_func("/guest-segments/kvm/blk-on-segment-1",
                    test_blk_on_segment_1);
    g_test_add_func("/guest-segments/kvm/blk-on-segments-0-and-2",
                    test_blk_on_segments_0_and_2);
    g_test_add_func("/guest-segments/kvm/spec-example-two-queues-segment-1",
                    test_spec_example);
    g_test_add_func("/guest-segments/kvm/hotplug-on-segment-1",
                    test_hotplug_on_segment_1);
    rc = g_test_run();
    g_assert_true(rm_tree(runtime_dir));
    return rc;
}
