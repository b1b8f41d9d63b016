/*
 * The test guest's virtio-iommu driver on godwit (KVM): simulated vDPA
 * disks with iommu=on behind godwit's virtio-iommu, found through the
 * ACPI VIOT; the guest attaches each disk to a domain, maps only the
 * buffers it uses at IOVAs that are not their physical addresses, runs
 * the blk checks through them, and shows a request into an unmapped
 * buffer failing (the simulator sets NEEDS_RESET) while the VM keeps
 * running.  The same workload is cross-checked on QEMU in
 * test-guest-qemu.c.  Skips visibly without a usable /dev/kvm.
 */
#include <glib/gstdio.h>
#include <godwit/qmp-client.h>
#include <godwit/util.h>
#include "guest-report.h"
#include "spawn-util.h"

#define T     120000 /* 32-bit guest code may be emulated: be generous */
#define QMP_T 30000  /* each QMP exchange and event */

/* IOVA = physical address + this, as the guest reports it */
#define DMA_OFFSET 0x100000000ull

static char *runtime_dir;

/* A VM under QMP whose report lines a test acts on. */
typedef struct {
    char *sock;
    GwQmpConn *qmp;
    char *error;        /* the first thing that went wrong on the host side */
    guint round;        /* hotplug: hp<round> was plugged last */
    char *bdf;          /* hotplug: what x-godwit-vdpa-add answered */
    char *status;       /* query-status while the guest ran on */
    json_object *iommu; /* x-godwit-query-iommu while the disk ran */
} Host;

static bool
host_fail(Host *h, char *msg)
{
    if (!h->error) {
        h->error = msg;
    } else {
        g_free(msg);
    }
    return false;
}

static bool
host_connect(Host *h)
{
    g_autoptr(GError) err = NULL;

    if (h->qmp) {
        return true;
    }
    h->qmp = gw_qmp_conn_new(h->sock, QMP_T, &err);
    if (!h->qmp || !gw_qmp_conn_negotiate(h->qmp, QMP_T, &err)) {
        return host_fail(h, g_strdup_printf("qmp: %s", err->message));
    }
    return true;
}

/* Runs a command; its "return" (caller's), or NULL and h->error. */
static json_object *
host_qmp(Host *h, const char *cmd, const char *args_json)
{
    g_autoptr(GError) err = NULL;
    json_object *args = args_json ? json_tokener_parse(args_json) : NULL;
    json_object *ret;

    if (!host_connect(h)) {
        json_object_put(args);
        return NULL;
    }
    g_autoptr(json_object) r =
        gw_qmp_conn_execute(h->qmp, cmd, args, -1, QMP_T, &err);
    if (!r || !json_object_object_get_ex(r, "return", &ret)) {
        host_fail(h, g_strdup_printf("%s: %s", cmd,
                                     r ? json_object_to_json_string(r)
                                       : err->message));
        return NULL;
    }
    return json_object_get(ret);
}

static void
host_clear(Host *h)
{
    g_clear_pointer(&h->qmp, gw_qmp_conn_free);
    g_clear_pointer(&h->iommu, json_object_put);
    g_free(h->sock);
    g_free(h->error);
    g_free(h->bdf);
    g_free(h->status);
}

/* godwit --kernel guest.elf --cmdline `cmdline` --qmp <sock> plus `extra`
 * (split at spaces, "@DIR@" the runtime directory); `on_line` sees each
 * report line. */
static GuestReport *
boot(Host *h, const char *cmdline, const char *extra,
     GuestReportLineFunc on_line)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_auto(GStrv) parts = g_strsplit(extra, "@DIR@", -1);
    g_autofree char *joined = g_strjoinv(runtime_dir, parts);
    g_auto(GStrv) more = g_strsplit(joined, " ", -1);
    const char *base[] = {g_getenv("GODWIT_BIN"),
                          "--kernel",
                          g_getenv("GODWIT_GUEST"),
                          "--cmdline",
                          cmdline,
                          "--serial",
                          "stdio",
                          "--qmp",
                          h->sock};
    GuestReport *r;

    for (guint i = 0; i < G_N_ELEMENTS(base); i++) {
        g_ptr_array_add(argv, (char *)base[i]);
    }
    for (guint i = 0; more[i]; i++) {
        if (*more[i]) {
            g_ptr_array_add(argv, more[i]);
        }
    }
    g_ptr_array_add(argv, NULL);
    r = guest_report_run_full((const char *const *)argv->pdata, T, false,
                              on_line, h, &err);
    g_assert_no_error(err);
    if (h->error || guest_report_find(r, "GUEST fail")) {
        guest_report_dump(r);
    }
    g_assert_null(h->error);
    return r;
}

static void
host_init(Host *h, const char *name)
{
    *h = (Host){0};
    h->sock = g_strdup_printf("%s/%s.sock", runtime_dir, name);
}

/* The guest ran iommu-blk keep=1 and waits (wait-button) with its disk
 * attached and mapped: the IOMMU's view then, and the run ends.
 * Failure lines do not stop the run: some are expected. */
static bool
on_line_query(const char *line, gpointer data)
{
    Host *h = data;

    if (g_str_equal(line, "GUEST pass iommu-blk")) {
        h->iommu = host_qmp(h, "x-godwit-query-iommu", NULL);
        return false;
    }
    return true;
}

/* The domain holding endpoint `ep` in x-godwit-query-iommu's answer. */
static json_object *
domain_of(json_object *q, guint ep)
{
    json_object *eps = json_object_object_get(q, "endpoints");
    json_object *doms = json_object_object_get(q, "domains");
    gint64 dom = -1;

    for (size_t i = 0; i < json_object_array_length(eps); i++) {
        json_object *e = json_object_array_get_idx(eps, i);
        json_object *d = json_object_object_get(e, "domain");
        if (json_object_get_int64(json_object_object_get(e, "id")) == ep && d) {
            dom = json_object_get_int64(d);
        }
    }
    for (size_t i = 0; dom >= 0 && i < json_object_array_length(doms); i++) {
        json_object *d = json_object_array_get_idx(doms, i);
        if (json_object_get_int64(json_object_object_get(d, "id")) == dom) {
            return d;
        }
    }
    return NULL;
}

/* What the IOMMU held while the guest's disk ran: endpoint `ep` in
 * domain 1 with the guest's maps, every one at IOVA = phys + offset. */
static void
assert_guest_maps(json_object *q, guint ep, guint maps)
{
    g_assert_nonnull(q);
    g_test_message("iommu: %s", json_object_to_json_string(q));
    json_object *d = domain_of(q, ep);
    g_assert_nonnull(d);
    g_assert_cmpint(json_object_get_int64(json_object_object_get(d, "id")), ==,
                    1);
    json_object *m = json_object_object_get(d, "mappings");
    g_assert_cmpuint(json_object_array_length(m), ==, maps);
    for (size_t i = 0; i < json_object_array_length(m); i++) {
        json_object *e = json_object_array_get_idx(m, i);
        guint64 v = (guint64)json_object_get_int64(
            json_object_object_get(e, "virt-start"));
        guint64 p = (guint64)json_object_get_int64(
            json_object_object_get(e, "phys-start"));
        g_assert_cmphex(v - p, ==, DMA_OFFSET);
        g_assert_cmphex(p & 0xfff, ==, 0);
    }
}

/* A disk with iommu=on at 00:01.0 and one with iommu=off at 00:02.0: the
 * first is behind the IOMMU (endpoint = BDF 0x8, as VIOT says), its
 * checks pass through IOVAs the IOMMU holds; the second is in no VIOT
 * range, so the guest says it is not behind the IOMMU. */
static void
test_blk_behind_iommu(void)
{
    g_autoptr(GuestReport) r = NULL;
    Host h;

    if (!kvm_usable()) {
        return;
    }
    host_init(&h, "blk");
    r = boot(&h,
             "iommu-blk dev=00:02.0; "
             "iommu-blk sectors=8 expect-capacity=262144 rounds=3 keep=1; "
             "wait-button",
             "--vdpa-sim name=on0,mgmtdev=vdpasim_blk "
             "--vdpa-sim name=off0,mgmtdev=vdpasim_blk,capacity=1M "
             "--vdpa path=@DIR@/vdpa/on0,num_queues=1,iommu=on "
             "--vdpa path=@DIR@/vdpa/off0,num_queues=1",
             on_line_query);
    g_assert_true(guest_report_has(r, "GUEST iommu viot range segments=0-0 "
                                      "bdfs=0x0008-0x0008 "
                                      "endpoint-start=0x8"));
    g_assert_nonnull(guest_report_find(r, "GUEST iommu viot iommu="));
    g_assert_nonnull(guest_report_find(r, "GUEST iommu 00:1f.0 features="));
    g_assert_true(guest_report_has(r, "GUEST iommu 00:01.0 endpoint=0x8 "
                                      "domain=1 dma-offset=0x100000000 "
                                      "maps=4"));
    g_assert_true(guest_report_has(r, "GUEST blk 00:01.0 round=3 pass"));
    g_assert_true(guest_report_has(r, "GUEST pass iommu-blk"));
    assert_guest_maps(h.iommu, 0x8, 4);
    g_assert_true(
        guest_report_has(r, "GUEST fail iommu 00:02.0 not-behind-iommu"));
    g_assert_cmpuint(guest_report_count(r, "GUEST fail"), ==, 1);
    host_clear(&h);
}

/* The spec's layout: two segments, segment 1 behind the IOMMU, the disk
 * there: endpoint (1 << 16) | BDF. */
static void
test_blk_on_iommu_segment(void)
{
    g_autoptr(GuestReport) r = NULL;
    Host h;

    if (!kvm_usable()) {
        return;
    }
    host_init(&h, "seg");
    r = boot(&h, "iommu-blk rounds=2 keep=1; wait-button",
             "--platform num_pci_segments=2,iommu_segments=[1] "
             "--vdpa-sim name=seg1,mgmtdev=vdpasim_blk "
             "--vdpa path=@DIR@/vdpa/seg1,num_queues=1,pci_segment=1,"
             "iommu=on",
             on_line_query);
    g_assert_nonnull(guest_report_find(r, "GUEST iommu viot range "
                                          "segments=1-1 "));
    g_assert_true(guest_report_has(r, "GUEST iommu 0001:00:01.0 "
                                      "endpoint=0x10008 domain=1 "
                                      "dma-offset=0x100000000 maps=4"));
    g_assert_true(guest_report_has(r, "GUEST blk 0001:00:01.0 round=2 pass"));
    g_assert_true(guest_report_has(r, "GUEST pass iommu-blk"));
    assert_guest_maps(h.iommu, 0x10008, 4);
    g_assert_null(guest_report_find(r, "GUEST fail"));
    host_clear(&h);
}

/*
 * After iommu-blk the guest resets the IOMMU, which puts boot bypass
 * back: the disk is identity-mapped again, from the vCPU thread that
 * wrote the reset (whose sandbox cannot read /proc/self/maps, which the
 * simulator's IOTLB checks), and a plain blk on it passes.
 */
static void
test_disk_after_iommu_reset(void)
{
    g_autoptr(GuestReport) r = NULL;
    Host h;

    if (!kvm_usable()) {
        return;
    }
    host_init(&h, "reset");
    r = boot(&h, "iommu-blk sectors=1; blk sectors=1; poweroff",
             "--vdpa-sim name=rst,mgmtdev=vdpasim_blk "
             "--vdpa path=@DIR@/vdpa/rst,num_queues=1,iommu=on",
             NULL);
    g_assert_true(guest_report_has(r, "GUEST pass iommu-blk"));
    g_assert_true(guest_report_has(r, "GUEST pass blk"));
    g_assert_null(guest_report_find(r, "GUEST fail"));
    host_clear(&h);
}

/* The unmapped read buffer: the simulator fails the request (NEEDS_RESET),
 * query-status says running, and the guest goes on to its next workload. */
static bool
on_line_unmap(const char *line, gpointer data)
{
    Host *h = data;

    if (g_str_has_prefix(line, "GUEST fail")) {
        return false;
    }
    if (g_str_has_prefix(line, "GUEST iommu 00:01.0 unmapped-request "
                               "failed ")) {
        g_autoptr(json_object) st = host_qmp(h, "query-status", NULL);
        if (st) {
            h->status = g_strdup(
                json_object_get_string(json_object_object_get(st, "status")));
        }
        return st != NULL;
    }
    return true;
}

static void
test_unmapped_request_fails(void)
{
    g_autoptr(GuestReport) r = NULL;
    Host h;

    if (!kvm_usable()) {
        return;
    }
    host_init(&h, "unmap");
    r = boot(&h, "iommu-blk unmap-test=1; dirty pages=4 rounds=2",
             "--vdpa-sim name=u0,mgmtdev=vdpasim_blk "
             "--vdpa path=@DIR@/vdpa/u0,num_queues=1,iommu=on",
             on_line_unmap);
    g_assert_true(r->done);
    g_assert_true(guest_report_has(r, "GUEST pass blk"));
    g_assert_nonnull(guest_report_find(r, "GUEST iommu 00:01.0 unmapped rbuf "
                                          "iova=0x1"));
    g_assert_nonnull(guest_report_find(r, "GUEST iommu 00:01.0 "
                                          "unmapped-request failed "
                                          "needs-reset faults="));
    g_assert_cmpstr(h.status, ==, "running");
    g_assert_true(guest_report_has(r, "GUEST iommu 00:01.0 still-running "
                                      "after-unmapped-request"));
    g_assert_true(guest_report_has(r, "GUEST pass iommu-blk"));
    g_assert_true(guest_report_has(r, "GUEST pass dirty"));
    g_assert_null(guest_report_find(r, "GUEST fail"));
    host_clear(&h);
}

/* Hotplug: x-godwit-vdpa-add puts an iommu=on disk on segment 1 (an
 * iommu segment, which the boot VIOT covers); the guest's hotplug
 * workload with iommu=1 attaches and maps it, runs the checks, unmaps
 * and detaches it before the eject. */
static bool
on_line_hotplug(const char *line, gpointer data)
{
    Host *h = data;

    if (g_str_has_prefix(line, "GUEST fail")) {
        return false;
    }
    if (g_str_equal(line, "GUEST hotplug ready")) {
        g_autofree char *args = g_strdup_printf(
            "{\"path\":\"%s/vdpa/hp1\",\"id\":\"hp1\",\"pci_segment\":1,"
            "\"iommu\":true}",
            runtime_dir);
        g_autoptr(json_object) r = host_qmp(h, "x-godwit-vdpa-add", args);
        if (r) {
            h->bdf = g_strdup(
                json_object_get_string(json_object_object_get(r, "bdf")));
        }
        return r != NULL;
    }
    if (g_str_equal(line, "GUEST pass blk")) {
        h->iommu = host_qmp(h, "x-godwit-query-iommu", NULL);
        g_autoptr(json_object) r =
            host_qmp(h, "device_del", "{\"id\":\"hp1\"}");
        return h->iommu && r;
    }
    if (g_str_has_prefix(line, "GUEST hotplug remove ")) {
        g_autoptr(GError) err = NULL;
        g_autoptr(json_object) ev =
            gw_qmp_conn_wait_event(h->qmp, "DEVICE_DELETED", QMP_T, &err);
        return ev || host_fail(h, g_strdup_printf("no DEVICE_DELETED: %s",
                                                  err->message));
    }
    return true;
}

static void
test_hotplug_on_iommu_segment(void)
{
    g_autoptr(GuestReport) r = NULL;
    Host h;

    if (!kvm_usable()) {
        return;
    }
    host_init(&h, "hp");
    r = boot(&h, "hotplug segment=1 iommu=1",
             "--platform num_pci_segments=2,iommu_segments=[1] "
             "--vdpa-sim name=hp1,mgmtdev=vdpasim_blk,capacity=1M",
             on_line_hotplug);
    g_assert_true(r->done);
    g_assert_cmpstr(h.bdf, ==, "0001:00:01.0");
    g_assert_true(guest_report_has(r, "GUEST hotplug add slot=1"));
    g_assert_true(guest_report_has(r, "GUEST iommu 0001:00:01.0 "
                                      "endpoint=0x10008 domain=1 "
                                      "dma-offset=0x100000000 maps=4"));
    g_assert_true(guest_report_has(r, "GUEST blk 0001:00:01.0 capacity=2048"));
    assert_guest_maps(h.iommu, 0x10008, 4);
    g_assert_true(guest_report_has(r, "GUEST hotplug ejected slot=1"));
    g_assert_true(guest_report_has(r, "GUEST pass hotplug"));
    g_assert_null(guest_report_find(r, "GUEST fail"));
    host_clear(&h);
}

int
main(int argc, char **argv)
{
    int rc;

    g_test_init(&argc, &argv, NULL);
    runtime_dir = g_dir_make_tmp("godwit-guest-iommu-XXXXXX", NULL);
    g_setenv("GODWIT_RUNTIME_DIR", runtime_dir, TRUE);
    g_test_add_func("/guest-iommu/kvm/blk-behind-iommu", test_blk_behind_iommu);
    g_test_add_func("/guest-iommu/kvm/blk-on-iommu-segment-1",
                    test_blk_on_iommu_segment);
    g_test_add_func("/guest-iommu/kvm/unmapped-request-fails-vm-running",
                    test_unmapped_request_fails);
    g_test_add_func("/guest-iommu/kvm/disk-works-after-iommu-reset",
                    test_disk_after_iommu_reset);
    g_test_add_func("/guest-iommu/kvm/hotplug-on-iommu-segment-1",
                    test_hotplug_on_iommu_segment);
    rc = g_test_run();
    g_assert_true(rm_tree(runtime_dir));
    return rc;
}
