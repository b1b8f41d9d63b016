/*
 * Live migration of a VM whose vDPA disk is behind the virtio-iommu
 * (iommu=on), between two real godwit processes under --qtest, the test
 * playing the guest: it reads the VIOT, attaches the disk's endpoint to
 * a domain and maps its ring and buffers at IOVAs that are not their
 * guest-physical addresses (qiommu.h), and keeps blk requests in flight
 * through those IOVAs before, during (the device on shadow virtqueues,
 * which translate through the IOMMU) and into the switch-over; one read
 * lands, after the first pass carried its page, where nothing else
 * writes, so only the relay's dirty mark at the GPA behind the IOVA can
 * carry it.  On the destination x-godwit-query-iommu must be the
 * source's, the requests in flight complete there once through the same
 * IOVAs, the data reads back, and the IOMMU itself goes on taking
 * requests (a remap there is followed by the disk).  Also: the guest
 * remapping during pre-copy, the disk hot-added on an iommu segment
 * (segment 1), and failures — a cut link, a corrupted stream, a
 * destination whose disk is not behind its IOMMU — after which the
 * source's disk goes on through its IOVAs and a second migration
 * succeeds.
 */
#include <string.h>
#include <linux/virtio_iommu.h>
#include <glib/gstdio.h>
#include <godwit/util.h>
#include "mig-blk-io.h"
#include "mig-precopy.h"
#include "mig-proxy.h"
#include "mig-util.h"
#include "qiommu.h"
#include "qtest-vm.h"
#include "qvirtio.h"

#define SLOT   1
#define NODE   "d0"
#define ID     "disk0"
#define DOMAIN 1
#define PAGE   GW_QIOMMU_PAGE
#define OFF    GW_QIOMMU_OFF
#define OFF2   (3 * GW_QIOMMU_OFF) /* the data page moved during pre-copy */
#define OFF3   (5 * GW_QIOMMU_OFF) /* and again, on the destination */
#define SLOW   150000              /* bytes/s: pre-copy lasts seconds */

static const char *disk;

/* ---- the VMs ---- */

typedef enum {
    PLACE_BOOT,     /* --vdpa …,iommu=on on segment 0 */
    PLACE_SEGMENT1, /* hot-added on iommu segment 1 (x-godwit-vdpa-add) */
    /* --vdpa …,iommu=on on segment 0, with --platform
     * num_pci_segments=2,iommu_segments=[1] (the refused case's source) */
    PLACE_BOOT_2SEG,
    /* the same board, but the disk left at iommu=off: its endpoint is
     * none of the IOMMU's */
    PLACE_BOOT_2SEG_NO_IOMMU,
} Place;

static unsigned
segment_of(Place p)
{
    return p == PLACE_SEGMENT1 ? 1 : 0;
}

static void
hot_add(GwTestVm *vm)
{
    g_autofree char *args =
        g_strdup_printf("{\"path\": \"%s/vdpa/" NODE "\", \"id\": \"" ID "\", "
                        "\"pci_segment\": 1, \"iommu\": true}",
                        vm->dir);
    g_autoptr(json_object) r = gw_test_vm_qmp_ok(vm, "x-godwit-vdpa-add", args);

    g_assert_cmpstr(status_of(r, "bdf"), ==, "0001:00:01.0");
}

/* A VM with the disk placed as `p`; a destination (`incoming`) listens
 * on unix:DIR/mig.sock, from its command line for a disk given at boot,
 * else with migrate-incoming after hot-adding it. */
static void
start_vm(GwTestVm *vm, Place p, bool incoming)
{
    g_autofree char *sim =
        g_strdup_printf("--vdpa-sim=name=" NODE ",mgmtdev=vdpasim_blk,"
                        "capacity=1M,backing=%s",
                        disk);
    g_autoptr(GPtrArray) args = g_ptr_array_new();

    g_ptr_array_add(args, sim);
    if (p != PLACE_BOOT) {
        g_ptr_array_add(args, "--platform");
        g_ptr_array_add(args, "num_pci_segments=2,iommu_segments=[1]");
    }
    if (p == PLACE_BOOT || p == PLACE_BOOT_2SEG) {
        g_ptr_array_add(args,
                        "--vdpa=path=@DIR@/vdpa/" NODE ",id=" ID ",iommu=on");
    } else if (p == PLACE_BOOT_2SEG_NO_IOMMU) {
        g_ptr_array_add(args, "--vdpa=path=@DIR@/vdpa/" NODE ",id=" ID);
    }
    if (incoming) {
        g_ptr_array_add(args, "--incoming");
        g_ptr_array_add(args,
                        p == PLACE_SEGMENT1 ? "defer" : "unix:@DIR@/mig.sock");
    }
    g_ptr_array_add(args, NULL);
    gw_test_vm_start(vm, (const char *const *)args->pdata);
    if (p == PLACE_SEGMENT1) {
        hot_add(vm);
    }
    if (incoming) {
        set_caps(vm, false);
    }
    if (incoming && p == PLACE_SEGMENT1) {
        g_autofree char *uri =
            g_strdup_printf("{\"uri\":\"unix:%s/mig.sock\"}", vm->dir);
        qmp_void(vm, "migrate-incoming", uri);
    }
}

/* ---- the guest: the IOMMU's driver and the disk's ---- */

typedef struct {
    GwQIommu mmu;
    Io io;
    uint32_t ep;
} Guest;

/*
 * On the source: ballast in RAM, the disk's endpoint found in the VIOT
 * and attached, its ring and two data pages mapped at IOVA = GPA + OFF
 * (page 0 the slots of `io`, page 1 its lone page, IO_LONE),
 * and a write in every slot in flight.
 */
static void
guest_start(Guest *g, GwTestVm *src, unsigned seg)
{
    GwQViot v;
    size_t len;

    write_ballast(src->qt);
    g_assert_true(gw_qiommu_find_viot(src->qt, &v));
    g->ep = gw_qiommu_viot_endpoint(&v, seg, SLOT << 3);
    g_assert_cmphex(g->ep, ==, seg << 16 | SLOT << 3);
    gw_qiommu_init(&g->mmu, src->qt);
    g->io = (Io){.head = {-1, -1, -1, -1},
                 .last_read = {-1, -1, -1, -1},
                 .qt = src->qt,
                 .dma = OFF};
    g->io.vd = gw_qiommu_disk_start(&g->mmu, seg, SLOT, g->ep, DOMAIN, 2);
    g->io.area = gw_qvirtio_data_area(g->io.vd, &len);
    io_lone_prepare(&g->io);
    for (unsigned i = 0; i < IO_SLOTS; i++) {
        io_submit(&g->io, i, i, false);
    }
}

/* The guest's data page moves from IOVA area + io.dma to area + `off`
 * (nothing in flight: a request would fault half way). */
static void
remap(Guest *g, uint64_t off)
{
    uint64_t gpa = g->io.area;

    io_drain(&g->io);
    g_assert_cmpint(gw_qiommu_unmap(&g->mmu, DOMAIN, gpa + g->io.dma, PAGE), ==,
                    VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(gw_qiommu_map(&g->mmu, DOMAIN, gpa + off, gpa, PAGE), ==,
                    VIRTIO_IOMMU_S_OK);
    g->io.dma = off;
}

static void
guest_free(Guest *g)
{
    g_clear_pointer(&g->io.vd, gw_qvirtio_free);
    gw_qiommu_free(&g->mmu);
}

/* ---- what the host sees ---- */

/* Domain DOMAIN maps IOVA `iova` (to `gpa`), or maps nothing there,
 * and endpoint `ep` is attached to it. */
static void
assert_mapping(json_object *q, uint32_t ep, uint64_t iova, uint64_t gpa,
               bool want)
{
    json_object *eps = json_object_object_get(q, "endpoints");
    json_object *doms = json_object_object_get(q, "domains");
    json_object *maps = NULL;
    bool attached = false, found = false;

    for (size_t i = 0; i < json_object_array_length(eps); i++) {
        json_object *e = json_object_array_get_idx(eps, i);
        attached |=
            json_object_get_int64(json_object_object_get(e, "id")) == ep &&
            json_object_get_int64(json_object_object_get(e, "domain")) ==
                DOMAIN;
    }
    g_assert_true(attached);
    for (size_t i = 0; i < json_object_array_length(doms); i++) {
        json_object *d = json_object_array_get_idx(doms, i);
        if (json_object_get_int64(json_object_object_get(d, "id")) == DOMAIN) {
            maps = json_object_object_get(d, "mappings");
        }
    }
    g_assert_nonnull(maps);
    for (size_t i = 0; i < json_object_array_length(maps); i++) {
        json_object *m = json_object_array_get_idx(maps, i);
        if ((uint64_t)json_object_get_int64(
                json_object_object_get(m, "virt-start")) == iova) {
            g_assert_cmphex(
                json_object_get_int64(json_object_object_get(m, "phys-start")),
                ==, gpa);
            found = true;
        }
    }
    g_assert_cmpint(found, ==, want);
}

/* Queue 0 of the disk runs on a shadow ring (`want`) or on the
 * guest's. */
static void
assert_shadowed(GwTestVm *vm, bool want)
{
    g_autoptr(json_object) all = gw_test_vm_qmp_ok(
        vm, "x-godwit-query-vdpa-vrings", "{\"id\":\"" ID "\"}");
    json_object *q = json_object_array_get_idx(all, 0);

    g_assert_true(
        json_object_get_boolean(json_object_object_get(q, "enabled")));
    g_assert_cmpint(
        json_object_get_boolean(json_object_object_get(q, "shadowed")), ==,
        want);
}

static void
assert_running(GwTestVm *vm)
{
    g_autofree char *st = run_state(vm);

    g_assert_cmpstr(st, ==, "running");
}

/*
 * After a completed migration: the IOMMU's state moved; the disk goes on
 * through the IOVAs the guest had (what was in flight completes once,
 * what was written reads back); then the IOMMU on the destination takes
 * a remap of the data page, and the disk follows it.
 */
static void
go_on_destination(Guest *g, GwTestVm *src, GwTestVm *dst)
{
    g_autoptr(json_object) q = assert_iommu_moved(src, dst);

    assert_mapping(q, g->ep, g->io.area + g->io.dma, g->io.area, true);
    gw_qiommu_set_qt(&g->mmu, dst->qt);
    io_on_destination(&g->io, dst);
    remap(g, OFF3);
    io_read_back(&g->io, IO_WRITES);
    g_clear_pointer(&q, json_object_put);
    q = query_iommu(dst);
    assert_mapping(q, g->ep, g->io.area + OFF3, g->io.area, true);
    assert_running(dst);
}

/* ---- migrations that complete ---- */

typedef struct {
    Place place;
    bool remap; /* the guest moves its data page during pre-copy */
} Case;

static void
test_migrate(gconstpointer data)
{
    const Case *c = data;
    GwTestVm src, dst;
    Guest g;
    g_autoptr(json_object) q = NULL;

    start_vm(&src, c->place, false);
    guest_start(&g, &src, segment_of(c->place));
    start_vm(&dst, c->place, true);
    begin_migration(&src, &dst, SLOW);
    assert_shadowed(&src, true);
    if (c->remap) {
        remap(&g, OFF2);
        q = query_iommu(&src);
        assert_mapping(q, g.ep, g.io.area + OFF, g.io.area, false);
        assert_mapping(q, g.ep, g.io.area + OFF2, g.io.area, true);
    }
    io_lone_read(&g.io, &src, g.io.area + IO_LONE + OFF);
    io_during_precopy(&g.io);
    assert_still_active(&src); /* all that ran on shadow rings */
    finish_migration(&src, &dst);
    io_assert_lone_read_moved(&g.io, &dst);
    go_on_destination(&g, &src, &dst);
    if (c->remap) {
        g_clear_pointer(&q, json_object_put);
        q = query_iommu(&dst);
        assert_mapping(q, g.ep, g.io.area + OFF, g.io.area, false);
    }
    g_test_message("%u requests through IOVAs", g.io.submitted);
    guest_free(&g);
    gw_test_vm_stop(&src);
    gw_test_vm_stop(&dst);
}

/* ---- migrations that fail ---- */

typedef enum {
    FAIL_CUT,     /* the link cut during pre-copy */
    FAIL_CORRUPT, /* a byte of the stream flipped at the switch-over */
    FAIL_REFUSED, /* the destination lacks the IOMMU's endpoint */
} Fault;

/* Migrates `src` to `dst` through a proxy, with the disk's I/O going;
 * breaks it as `f` says and waits until both ends gave up (the
 * destination exits 1, never ran).  The source's reason (caller frees). */
static char *
migrate_and_fail(GwTestVm *src, GwTestVm *dst, Guest *g, Fault f)
{
    Proxy p = {0};
    g_autofree char *to = g_strdup_printf("%s/mig.sock", dst->dir);
    g_autofree char *uri = NULL;
    g_autoptr(json_object) r = NULL;

    proxy_start(&p, src->dir, to);
    uri = g_strdup_printf("{\"uri\": \"unix:%s\"}", p.path);
    drain_events(src);
    set_caps(src, true);
    qmp_void(src, "migrate-set-parameters", "{\"max-bandwidth\": 150000}");
    qmp_void(src, "migrate", uri);
    if (f != FAIL_REFUSED) {
        /* refused, it never gets as far as pre-copy */
        wait_status(src, "active");
        assert_shadowed(src, true);
    }
    io_during_precopy(&g->io); /* leaves two reads in flight */
    if (f == FAIL_CUT) {
        g_atomic_int_set(&p.fault, LINK_CUT);
    } else if (f == FAIL_CORRUPT) {
        qmp_void(src, "migrate-set-parameters", "{\"max-bandwidth\": 0}");
        wait_status(src, "pre-switchover");
        g_atomic_int_set(&p.fault, LINK_CORRUPT);
        qmp_void(src, "migrate-continue", "{\"state\": \"pre-switchover\"}");
    }
    r = poll_status(src, "failed");
    g_test_message("source: %s", status_of(r, "error-desc"));
    reap(dst, 1);
    proxy_stop(&p);
    return g_strdup(status_of(r, "error-desc"));
}

/*
 * A migration of the iommu=on disk with requests in flight fails: its
 * link cut in pre-copy, a byte of its stream corrupted at the
 * switch-over, or a destination whose disk is not behind its IOMMU
 * (iommu=off) refusing the source's IOMMU state (the manifest's
 * virtio-iommu endpoints differ), before any RAM moved.  The source's disk is
 * back on the guest's rings, what was in flight completes there once
 * through the IOVAs, the IOMMU state is what it was, and a second
 * migration moves it all.
 */
static void
test_fail(gconstpointer data)
{
    Fault f = GPOINTER_TO_INT(data);
    Place place = f == FAIL_REFUSED ? PLACE_BOOT_2SEG : PLACE_BOOT;
    GwTestVm src, dst, again;
    Guest g;
    g_autoptr(json_object) before = NULL, after = NULL;
    g_autofree char *why = NULL;

    start_vm(&src, place, false);
    guest_start(&g, &src, 0);
    before = query_iommu(&src);
    start_vm(&dst, f == FAIL_REFUSED ? PLACE_BOOT_2SEG_NO_IOMMU : place, true);
    why = migrate_and_fail(&src, &dst, &g, f);
    if (f == FAIL_REFUSED) {
        g_assert_nonnull(strstr(why, "the source's virtio-iommu is"));
    }
    assert_running(&src);
    assert_shadowed(&src, false);
    after = query_iommu(&src);
    g_assert_cmpstr(json_object_to_json_string(after), ==,
                    json_object_to_json_string(before));
    io_drain(&g.io); /* the two reads, once each, on the source */
    io_read_back(&g.io, IO_WRITES);
    io_submit(&g.io, 0, 1, true); /* in flight into the second migration */
    start_vm(&again, place, true);
    begin_migration(&src, &again, 0);
    finish_migration(&src, &again);
    go_on_destination(&g, &src, &again);
    guest_free(&g);
    gw_test_vm_stop(&src);
    gw_test_vm_stop(&again);
}

int
main(int argc, char **argv)
{
    static const Case boot = {PLACE_BOOT, false};
    static const Case remapped = {PLACE_BOOT, true};
    static const Case seg1 = {PLACE_SEGMENT1, false};

    g_test_init(&argc, &argv, NULL);
    disk = gw_test_disk_path("godwit-mig-iommu");
    g_test_add_data_func(
        "/migration-iommu/blk/boot/io-through-iovas-state-moved", &boot,
        test_migrate);
    g_test_add_data_func(
        "/migration-iommu/blk/boot/remapped-during-pre-copy-state-follows",
        &remapped, test_migrate);
    g_test_add_data_func("/migration-iommu/blk/segment-1-hot-added/"
                         "io-through-iovas-state-moved",
                         &seg1, test_migrate);
    g_test_add_data_func("/migration-iommu/blk/fail/link-cut-in-pre-copy",
                         GINT_TO_POINTER(FAIL_CUT), test_fail);
    g_test_add_data_func(
        "/migration-iommu/blk/fail/stream-corrupt-at-switch-over",
        GINT_TO_POINTER(FAIL_CORRUPT), test_fail);
    g_test_add_data_func(
        "/migration-iommu/blk/fail/destination-lacking-the-endpoint-refuses",
        GINT_TO_POINTER(FAIL_REFUSED), test_fail);
    return g_test_run();
}
