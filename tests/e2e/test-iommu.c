/*
 * iommu=on end to end under --qtest, the test playing the guest: it
 * reads the ACPI VIOT from guest RAM and finds the disk's endpoint,
 * drives the virtio-iommu (slot 31 of segment 0) as a driver does —
 * ATTACH the disk to a domain, MAP its rings and buffers at IOVAs that
 * are not their guest-physical addresses — and runs blk writes and reads
 * through those IOVAs, checking the data in the simulator's backing
 * file.  An UNMAPped buffer makes the next request fail inside the
 * device (NEEDS_RESET) with memory untouched and the VM running.  Also:
 * the disk on segment 1 behind an iommu segment, hot-plugged there,
 * bad requests (MAP outside RAM, a missing segment's endpoint, a bad
 * length), and iommu=on hotplug off an iommu segment.  (Migration:
 * test-migration-iommu.c.)
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_iommu.h>
#include <glib/gstdio.h>
#include <godwit/util.h>
#include "qiommu.h"
#include "qtest-vm.h"
#include "qvirtio.h"

#define T           GW_TEST_VM_WAIT_MS
#define IOMMU_SLOT  GW_QIOMMU_SLOT
#define DISK_SLOT   1
#define OFF         GW_QIOMMU_OFF /* IOVA = guest-physical + 4 GiB */
#define PAGE        GW_QIOMMU_PAGE
#define RAM_SIZE    (64ull << 20)
#define DISK_SECTOR 16

static const char *disk;
static char *sim_arg;

/* ---- the disk, behind it ---- */

typedef struct {
    GwQVirtio *vd;
    uint64_t area; /* data area: page 0 header + status, pages 1.. data */
} Disk;

/* The disk's driver with its rings, and 4 data pages, at IOVA = gpa +
 * OFF in domain 1 (gw_qiommu_disk_start). */
static void
disk_init(Disk *dk, GwQIommu *io, unsigned seg, unsigned slot, uint32_t ep)
{
    size_t len;

    dk->vd = gw_qiommu_disk_start(io, seg, slot, ep, 1, 4);
    dk->area = gw_qvirtio_data_area(dk->vd, &len);
}

/* A blk request on data page `page` through its IOVA; the status byte
 * (0xff: the device never wrote it), or -1 if nothing was used. */
static int
disk_request(Disk *dk, GwQt *qt, uint32_t type, unsigned page, int wait_ms)
{
    struct virtio_blk_outhdr hdr = {.type = type, .sector = DISK_SECTOR};
    uint64_t data = dk->area + page * PAGE;
    GwQVirtioBuf b[3] = {{dk->area + OFF, sizeof(hdr), false},
                         {data + OFF, PAGE, type == VIRTIO_BLK_T_IN},
                         {dk->area + 0x100 + OFF, 1, true}};
    uint32_t id, used;

    gw_qt_memwrite(qt, dk->area, &hdr, sizeof(hdr));
    gw_qt_writeb(qt, dk->area + 0x100, 0xff);
    gw_qvirtio_vq_add(dk->vd, 0, b, 3);
    gw_qvirtio_vq_kick(dk->vd, 0);
    if (!gw_qvirtio_vq_wait(dk->vd, 0, wait_ms, &id, &used)) {
        return -1;
    }
    return gw_qt_readb(qt, dk->area + 0x100);
}

static void
fill(uint8_t *buf, size_t len, uint8_t seed)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(i * 7 + seed);
    }
}

/* Writes page 1, reads it back into page 2, checks both and the disk. */
static void
disk_io(Disk *dk, GwQt *qt, uint8_t seed)
{
    uint8_t out[PAGE], in[PAGE], file[PAGE];
    int fd;

    fill(out, sizeof(out), seed);
    gw_qt_memwrite(qt, dk->area + PAGE, out, sizeof(out));
    g_assert_cmpint(disk_request(dk, qt, VIRTIO_BLK_T_OUT, 1, T), ==,
                    VIRTIO_BLK_S_OK);
    gw_qt_memset(qt, dk->area + 2 * PAGE, 0, PAGE);
    g_assert_cmpint(disk_request(dk, qt, VIRTIO_BLK_T_IN, 2, T), ==,
                    VIRTIO_BLK_S_OK);
    gw_qt_memread(qt, dk->area + 2 * PAGE, in, sizeof(in));
    g_assert_cmpmem(in, sizeof(in), out, sizeof(out));
    fd = open(disk, O_RDONLY);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, file, sizeof(file), DISK_SECTOR * 512), ==,
                    sizeof(file));
    close(fd);
    g_assert_cmpmem(file, sizeof(file), out, sizeof(out));
}

static void
must_run(GwTestVm *vm)
{
    g_autoptr(json_object) r = gw_test_vm_qmp_ok(vm, "query-status", NULL);
    g_assert_cmpstr(json_object_get_string(json_object_object_get(r, "status")),
                    ==, "running");
}

/* x-godwit-query-iommu: endpoint `ep` in domain 1, which maps `n`. */
static void
assert_query(GwTestVm *vm, uint32_t ep, size_t n)
{
    g_autoptr(json_object) q =
        gw_test_vm_qmp_ok(vm, "x-godwit-query-iommu", NULL);
    json_object *eps = json_object_object_get(q, "endpoints");
    json_object *doms = json_object_object_get(q, "domains");
    bool found = false;

    for (size_t i = 0; i < json_object_array_length(eps); i++) {
        json_object *e = json_object_array_get_idx(eps, i);
        if (json_object_get_int64(json_object_object_get(e, "id")) == ep) {
            g_assert_cmpint(
                json_object_get_int(json_object_object_get(e, "domain")), ==,
                1);
            found = true;
        }
    }
    g_assert_true(found);
    g_assert_cmpuint(json_object_array_length(doms), ==, 1);
    g_assert_cmpuint(json_object_array_length(json_object_object_get(
                         json_object_array_get_idx(doms, 0), "mappings")),
                     ==, n);
}

/* query-pci lists it in slot 31 of segment 0 by QEMU's name. */
static void
assert_listed(GwTestVm *vm)
{
    g_autoptr(json_object) list = gw_test_vm_qmp_ok(vm, "query-pci", NULL);
    json_object *devs =
        json_object_object_get(json_object_array_get_idx(list, 0), "devices");
    bool found = false;

    for (size_t i = 0; i < json_object_array_length(devs); i++) {
        json_object *d = json_object_array_get_idx(devs, i);
        if (json_object_get_int(json_object_object_get(d, "slot")) ==
            IOMMU_SLOT) {
            g_assert_cmpstr(
                json_object_get_string(json_object_object_get(d, "qdev_id")),
                ==, "virtio-iommu-pci");
            found = true;
        }
    }
    g_assert_true(found);
}

static const char *const boot_args[] = {
    "--vdpa",
    "path=@DIR@/vdpa/d0,num_queues=1,id=disk0,iommu=on",
    NULL,
};

static void
start(GwTestVm *vm, const char *const *args)
{
    const char *argv[16];
    unsigned n = 0;

    for (; args[n]; n++) {
        argv[n] = args[n];
    }
    argv[n++] = sim_arg;
    argv[n] = NULL;
    g_unlink(disk);
    gw_test_vm_start(vm, argv);
}

/*
 * The spec's `--vdpa path=…,num_queues=1,iommu=on`: VIOT names the disk
 * (00:01.0, endpoint 8) behind the IOMMU at 00:1f.0; blk I/O through
 * IOVAs ≠ GPAs lands in the backing file; after UNMAP of a buffer a
 * request to it fails inside the device, which asks for a reset, with
 * the buffer and the status byte untouched and the VM running.
 */
static void
test_boot_blk_through_iovas(void)
{
    GwTestVm vm = {0};
    GwQIommu io = {0};
    Disk dk = {0};
    uint8_t canary[PAGE], after[PAGE];
    GwQViot v;
    uint32_t ep;
    gint64 until;

    start(&vm, boot_args);
    g_assert_true(gw_qiommu_find_viot(vm.qt, &v));
    g_assert_cmphex(v.iommu_bdf, ==, IOMMU_SLOT << 3);
    g_assert_cmpuint(v.n_ranges, ==, 1);
    ep = gw_qiommu_viot_endpoint(&v, 0, DISK_SLOT << 3);
    g_assert_cmphex(ep, ==, DISK_SLOT << 3);
    g_assert_cmphex(gw_qt_pci_read(vm.qt, GW_QT_BDF(0, IOMMU_SLOT, 0), 0, 4),
                    ==, 0x10571af4u);
    assert_listed(&vm);
    gw_qiommu_init(&io, vm.qt);
    disk_init(&dk, &io, 0, DISK_SLOT, ep);
    disk_io(&dk, vm.qt, 3);
    assert_query(&vm, ep, 5);
    /* Page 3 unmapped: a read into it cannot land anywhere. */
    g_assert_cmpint(gw_qiommu_unmap(&io, 1, dk.area + 3 * PAGE + OFF, PAGE), ==,
                    VIRTIO_IOMMU_S_OK);
    assert_query(&vm, ep, 4);
    fill(canary, sizeof(canary), 0x5a);
    gw_qt_memwrite(vm.qt, dk.area + 3 * PAGE, canary, sizeof(canary));
    g_assert_cmpint(disk_request(&dk, vm.qt, VIRTIO_BLK_T_IN, 3, 1000), !=,
                    VIRTIO_BLK_S_OK);
    until = g_get_monotonic_time() + T * 1000;
    while (!(gw_qvirtio_status(dk.vd) & VIRTIO_CONFIG_S_NEEDS_RESET) &&
           g_get_monotonic_time() < until) {
        g_usleep(1000);
    }
    g_assert_cmphex(gw_qvirtio_status(dk.vd) & VIRTIO_CONFIG_S_NEEDS_RESET, ==,
                    VIRTIO_CONFIG_S_NEEDS_RESET);
    gw_qt_memread(vm.qt, dk.area + 3 * PAGE, after, sizeof(after));
    g_assert_cmpmem(after, sizeof(after), canary, sizeof(canary));
    g_assert_cmphex(gw_qt_readb(vm.qt, dk.area + 0x100), ==, 0xff);
    must_run(&vm);
    gw_qvirtio_free(dk.vd);
    gw_qiommu_free(&io);
    gw_test_vm_stop(&vm);
}

/* Requests the IOMMU must refuse, each with its status, the VM going on
 * and the disk's domain unchanged. */
static void
test_bad_requests(void)
{
    struct virtio_iommu_req_map short_map = {.head.type = VIRTIO_IOMMU_T_MAP,
                                             .domain = 1};
    GwTestVm vm = {0};
    GwQIommu io = {0};
    Disk dk = {0};

    start(&vm, boot_args);
    gw_qiommu_init(&io, vm.qt);
    disk_init(&dk, &io, 0, DISK_SLOT, DISK_SLOT << 3);
    /* MAP of guest-physical memory past the end of RAM */
    g_assert_cmpint(gw_qiommu_map(&io, 1, 0x200000000ull, RAM_SIZE, PAGE), ==,
                    VIRTIO_IOMMU_S_INVAL);
    /* an endpoint on a segment that does not exist */
    g_assert_cmpint(gw_qiommu_attach(&io, 2, 5u << 16 | DISK_SLOT << 3), ==,
                    VIRTIO_IOMMU_S_NOENT);
    /* a MAP 8 bytes short */
    g_assert_cmpint(
        gw_qiommu_request(&io, &short_map,
                          sizeof(short_map) - sizeof(short_map.tail) - 8,
                          sizeof(short_map.tail)),
        ==, VIRTIO_IOMMU_S_INVAL);
    assert_query(&vm, DISK_SLOT << 3, 5);
    disk_io(&dk, vm.qt, 9);
    must_run(&vm);
    gw_qvirtio_free(dk.vd);
    gw_qiommu_free(&io);
    gw_test_vm_stop(&vm);
}

static const char *const seg_args[] = {
    "--platform",
    "num_pci_segments=2,iommu_segments=[1]",
    "--vdpa",
    "path=@DIR@/vdpa/d0,num_queues=1,id=disk0,pci_segment=1,iommu=on",
    NULL,
};

/* Segment 1 behind the IOMMU: VIOT covers all of it, the disk is
 * endpoint 0x10008, and its I/O goes through the IOMMU. */
static void
test_segment_1(void)
{
    GwTestVm vm = {0};
    GwQIommu io = {0};
    Disk dk = {0};
    GwQViot v;
    uint32_t ep;

    start(&vm, seg_args);
    g_assert_true(gw_qiommu_find_viot(vm.qt, &v));
    g_assert_cmpuint(v.n_ranges, ==, 1);
    g_assert_cmpuint(v.r[0].first, ==, 0);
    g_assert_cmphex(v.r[0].last, ==, 0xffff);
    ep = gw_qiommu_viot_endpoint(&v, 1, DISK_SLOT << 3);
    g_assert_cmphex(ep, ==, 1u << 16 | DISK_SLOT << 3);
    g_assert_cmphex(gw_qiommu_viot_endpoint(&v, 0, DISK_SLOT << 3), ==,
                    UINT32_MAX);
    gw_qiommu_init(&io, vm.qt);
    disk_init(&dk, &io, 1, DISK_SLOT, ep);
    disk_io(&dk, vm.qt, 21);
    assert_query(&vm, ep, 5);
    must_run(&vm);
    gw_qvirtio_free(dk.vd);
    gw_qiommu_free(&io);
    gw_test_vm_stop(&vm);
}

static const char *const hot_args[] = {
    "--platform", "num_pci_segments=2,iommu_segments=[1]",
    "--vdpa-sim", "name=d1,mgmtdev=vdpasim_blk,capacity=1M",
    NULL,
};

/* Whether x-godwit-query-iommu lists endpoint `ep`. */
static bool
has_endpoint(GwTestVm *vm, uint32_t ep)
{
    g_autoptr(json_object) q =
        gw_test_vm_qmp_ok(vm, "x-godwit-query-iommu", NULL);
    json_object *eps = json_object_object_get(q, "endpoints");

    for (size_t i = 0; i < json_object_array_length(eps); i++) {
        json_object *e = json_object_array_get_idx(eps, i);
        if (json_object_get_int64(json_object_object_get(e, "id")) == ep) {
            return true;
        }
    }
    return false;
}

/* device_add on the iommu segment: behind the IOMMU (endpoint of its
 * slot) unless iommu_platform=off asks otherwise, which is refused. */
static void
device_add_on_iommu_segment(GwTestVm *vm)
{
    g_autofree char *cls = NULL, *desc = NULL;
    g_autofree char *off = g_strdup_printf(
        "{\"driver\": \"vhost-vdpa-device-pci\", \"vhostdev\": "
        "\"%s/vdpa/d1\", \"bus\": \"pci.1\", \"id\": \"disk2\", "
        "\"iommu_platform\": false}",
        vm->dir);
    g_autofree char *on =
        g_strdup_printf("{\"driver\": \"vhost-vdpa-device-pci\", \"vhostdev\": "
                        "\"%s/vdpa/d1\", \"bus\": \"pci.1\", \"addr\": \"5\", "
                        "\"id\": \"disk2\"}",
                        vm->dir);
    g_autoptr(json_object) r = NULL;

    gw_test_vm_qmp_err(vm, "device_add", off, &cls, &desc);
    g_assert_nonnull(strstr(desc, "needs iommu=on"));
    g_assert_false(has_endpoint(vm, 1u << 16 | 5 << 3));
    r = gw_test_vm_qmp_ok(vm, "device_add", on);
    g_assert_true(has_endpoint(vm, 1u << 16 | 5 << 3));
}

/* The spec's hotplug example: a disk hot-added on segment 1 behind the
 * IOMMU (which exists for the iommu segment alone); then the same I/O.
 * iommu=on off an iommu segment, and iommu=off on one, are refused. */
static void
test_hotplug(void)
{
    GwTestVm vm = {0};
    GwQIommu io = {0};
    Disk dk = {0};
    g_autofree char *cls = NULL, *desc = NULL, *cls2 = NULL, *desc2 = NULL;
    g_autofree char *path = NULL, *args = NULL, *args0 = NULL, *off = NULL;
    g_autoptr(json_object) r = NULL;

    start(&vm, hot_args);
    path = g_strdup_printf("%s/vdpa/d0", vm.dir);
    args0 = g_strdup_printf("{\"path\": \"%s\", \"iommu\": true}", path);
    gw_test_vm_qmp_err(&vm, "x-godwit-vdpa-add", args0, &cls, &desc);
    g_assert_cmpstr(cls, ==, "GenericError");
    g_assert_nonnull(strstr(desc, "--platform iommu_segments"));
    off = g_strdup_printf("{\"path\": \"%s\", \"pci_segment\": 1}", path);
    gw_test_vm_qmp_err(&vm, "x-godwit-vdpa-add", off, &cls2, &desc2);
    g_assert_nonnull(strstr(desc2, "needs iommu=on"));
    args = g_strdup_printf("{\"path\": \"%s\", \"id\": \"disk1\", "
                           "\"pci_segment\": 1, \"iommu\": true}",
                           path);
    r = gw_test_vm_qmp_ok(&vm, "x-godwit-vdpa-add", args);
    g_assert_cmpstr(json_object_get_string(json_object_object_get(r, "bdf")),
                    ==, "0001:00:01.0");
    gw_qiommu_init(&io, vm.qt);
    disk_init(&dk, &io, 1, DISK_SLOT, 1u << 16 | DISK_SLOT << 3);
    disk_io(&dk, vm.qt, 33);
    device_add_on_iommu_segment(&vm);
    must_run(&vm);
    gw_qvirtio_free(dk.vd);
    gw_qiommu_free(&io);
    gw_test_vm_stop(&vm);
}

/* Without an IOMMU the query says there is none. */
static void
test_query_without_iommu(void)
{
    static const char *const none[] = {NULL};
    GwTestVm vm = {0};
    g_autofree char *cls = NULL, *desc = NULL;

    start(&vm, none);
    gw_test_vm_qmp_err(&vm, "x-godwit-query-iommu", NULL, &cls, &desc);
    g_assert_nonnull(strstr(desc, "there is no virtio-iommu"));
    g_assert_cmphex(gw_qt_pci_read(vm.qt, GW_QT_BDF(0, IOMMU_SLOT, 0), 0, 4),
                    ==, 0xffffffffu);
    gw_test_vm_stop(&vm);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    disk = gw_test_disk_path("godwit-iommu-disk");
    sim_arg = g_strdup_printf(
        "--vdpa-sim=name=d0,mgmtdev=vdpasim_blk,capacity=1M,backing=%s", disk);
    g_test_add_func("/iommu/qtest/boot/blk-through-iovas-unmap-fails",
                    test_boot_blk_through_iovas);
    g_test_add_func("/iommu/qtest/bad-input/map-outside-ram-segment-length",
                    test_bad_requests);
    g_test_add_func("/iommu/qtest/segments/disk-on-iommu-segment-1",
                    test_segment_1);
    g_test_add_func("/iommu/qtest/hotplug/iommu-segment-only", test_hotplug);
    g_test_add_func("/iommu/qtest/query/no-iommu", test_query_without_iommu);
    return g_test_run();
}
