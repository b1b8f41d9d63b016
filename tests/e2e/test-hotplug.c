/*
 * Hotplug end to end: a real godwit process with the qtest accelerator
 * (no /dev/kvm needed), its QMP socket driven as a management tool
 * would, and the test playing the guest over qtest: it takes the ACPI
 * hotplug GPE, finds the new function by configuration-space scan, runs
 * a virtio-blk workload on it through the simulated vDPA device, and on
 * an eject request stops the device and writes B0EJ.
 */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <glib/gstdio.h>
#include <godwit/qmp-client.h>
#include <godwit/util.h>
#include "qtest-client.h"
#include "qtest-vm.h"
#include "qvirtio.h"
#include "spawn-util.h"

#define T         GW_TEST_VM_WAIT_MS
#define SCI       9
#define GPE0_STS  0xafe0
#define GPE0_EN   0xafe2
#define PCIHP     0xae00
#define PCIU      (PCIHP + 0x0)
#define PCID      (PCIHP + 0x4)
#define B0EJ      (PCIHP + 0x8)
#define GPE_PCIHP 0x2
#define NET_MAC   "52:54:00:12:34:56"

typedef struct {
    GwTestVm vm;
    char *blk_node, *net_node;
} Fx;

/* Starts godwit; `vdpa` (may be NULL) is a --vdpa value, where @DIR@
 * stands for the runtime directory. */
static void
fx_start_with(Fx *f, const char *vdpa)
{
    const char *args[] = {
        "--vdpa-sim",
        "name=blk0,mgmtdev=vdpasim_blk",
        "--vdpa-sim",
        "name=net0,mgmtdev=vdpasim_net,mac=" NET_MAC,
        "--vdpa-sim",
        "name=blk1,mgmtdev=vdpasim_blk",
        vdpa ? "--vdpa" : NULL,
        vdpa,
        NULL,
    };

    gw_test_vm_start(&f->vm, args);
    f->blk_node = g_build_filename(f->vm.dir, "vdpa", "blk0", NULL);
    f->net_node = g_build_filename(f->vm.dir, "vdpa", "net0", NULL);
    /* The guest's ACPI setup: hotplug GPE enabled, SCI watched. */
    gw_qt_irq_intercept(f->vm.qt, "ioapic");
    gw_qt_outw(f->vm.qt, GPE0_EN, GPE_PCIHP);
}

static void
fx_start(Fx *f)
{
    fx_start_with(f, NULL);
}

static void
fx_stop(Fx *f)
{
    g_free(f->blk_node);
    g_free(f->net_node);
    gw_test_vm_stop(&f->vm);
}

static json_object *
qmp(Fx *f, const char *cmd, const char *args_json, int fd)
{
    return gw_test_vm_qmp(&f->vm, cmd, args_json, fd);
}

static json_object *
qmp_ok(Fx *f, const char *cmd, const char *args_json)
{
    return gw_test_vm_qmp_ok(&f->vm, cmd, args_json);
}

static unsigned
count_fds(GPid pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/fd", pid);
    g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
    unsigned n = 0;

    g_assert_nonnull(d);
    while (g_dir_read_name(d)) {
        n++;
    }
    return n;
}

/* What the outside world can see of the machine and the fds it holds. */
static char *
snapshot(Fx *f)
{
    g_autoptr(json_object) pci = qmp_ok(f, "query-pci", NULL);
    g_autoptr(json_object) sets = qmp_ok(f, "query-fdsets", NULL);

    return g_strdup_printf(
        "pci=%s fdsets=%s fds=%u", json_object_to_json_string(pci),
        json_object_to_json_string(sets), count_fds(f->vm.pid));
}

/*
 * The snapshot once it settles: the simulator's worker thread closes the
 * eventfds of a released device when it next wakes (as the kernel drops
 * its eventfd references), so the fd count may lag a moment behind.
 */
static void
assert_back_to(Fx *f, const char *before)
{
    gint64 deadline = g_get_monotonic_time() + T * 1000ll;
    g_autofree char *now = snapshot(f);

    while (strcmp(now, before) != 0 && g_get_monotonic_time() < deadline) {
        g_usleep(10000); /* bounded by the deadline */
        g_free(now);
        now = snapshot(f);
    }
    g_assert_cmpstr(now, ==, before);
}

/* ---- the guest's side ---- */

/* Takes the hotplug GPE: returns PCIU (slots plugged) and acknowledges. */
static uint32_t
guest_take_event(Fx *f, uint32_t *down)
{
    uint32_t up;

    g_assert_true(gw_qt_irq_wait(f->vm.qt, SCI, true));
    g_assert_cmphex(gw_qt_inw(f->vm.qt, GPE0_STS) & GPE_PCIHP, ==, GPE_PCIHP);
    up = gw_qt_inl(f->vm.qt, PCIU);
    *down = gw_qt_inl(f->vm.qt, PCID);
    gw_qt_outw(f->vm.qt, GPE0_STS, GPE_PCIHP); /* write 1 to clear */
    g_assert_true(gw_qt_irq_wait(f->vm.qt, SCI, false));
    return up;
}

static unsigned
only_slot(uint32_t bits)
{
    g_assert_cmpuint(bits, !=, 0);
    g_assert_cmpuint(bits & (bits - 1), ==, 0);
    return (unsigned)g_bit_nth_lsf(bits, -1);
}

/* The guest found a new function: it must be `device_id`, and work. */
static unsigned
guest_add(Fx *f, uint16_t device_id)
{
    uint32_t down, up = guest_take_event(f, &down);
    unsigned slot = only_slot(up);

    g_assert_cmphex(down, ==, 0);
    g_assert_cmphex(gw_qt_pci_read(f->vm.qt, GW_QT_BDF(0, slot, 0), 0, 4), ==,
                    0x1af4u | (uint32_t)device_id << 16);
    return slot;
}

/* virtio-blk: the workload of the test guest, through the vDPA device. */
static void
guest_blk_workload(Fx *f, unsigned slot)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQVirtio) vd = gw_qvirtio_init(f->vm.qt, slot, &err);

    g_assert_no_error(err);
    g_assert_cmpuint(gw_qvirtio_blk_capacity(vd), ==, 262144);
    g_assert_true(gw_qvirtio_blk_workload(vd, &err));
    g_assert_no_error(err);
    gw_qvirtio_reset(vd); /* what a driver's remove() does */
}

/* The eject request for `slot`: stop using it, acknowledge with B0EJ. */
static void
guest_eject(Fx *f, unsigned slot)
{
    uint32_t down, up = guest_take_event(f, &down);

    g_assert_cmphex(up, ==, 0);
    g_assert_cmphex(down, ==, 1u << slot);
    gw_qt_outl(f->vm.qt, B0EJ, 1u << slot);
}

static void
wait_deleted(Fx *f, const char *id)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) ev =
        gw_qmp_conn_wait_event(f->vm.c, "DEVICE_DELETED", T, &err);
    g_autofree char *path = g_strdup_printf("/machine/peripheral/%s", id);
    json_object *data;

    g_assert_no_error(err);
    data = json_object_object_get(ev, "data");
    g_assert_cmpstr(
        json_object_get_string(json_object_object_get(data, "device")), ==, id);
    g_assert_cmpstr(
        json_object_get_string(json_object_object_get(data, "path")), ==, path);
}

/* device_del → eject request → guest lets go → DEVICE_DELETED, slot empty. */
static void
unplug(Fx *f, const char *id, unsigned slot)
{
    g_autofree char *args = g_strdup_printf("{\"id\":\"%s\"}", id);
    g_autoptr(json_object) r = qmp_ok(f, "device_del", args);

    guest_eject(f, slot);
    wait_deleted(f, id);
    g_assert_cmphex(gw_qt_pci_read(f->vm.qt, GW_QT_BDF(0, slot, 0), 0, 4), ==,
                    0xffffffffu);
}

static bool
pci_has(Fx *f, const char *id)
{
    g_autoptr(json_object) pci = qmp_ok(f, "query-pci", NULL);
    g_autofree char *want = g_strdup_printf("\"qdev_id\":\"%s\"", id);

    return strstr(json_object_to_json_string_ext(pci, JSON_C_TO_STRING_PLAIN),
                  want) != NULL;
}

/* add-fd with the simulated device's node opened read-write. */
static int
add_fd(Fx *f, const char *node)
{
    int fd = open(node, O_RDWR | O_CLOEXEC);
    g_autoptr(json_object) r = NULL;
    json_object *ret;

    g_assert_cmpint(fd, >=, 0);
    r = qmp(f, "add-fd", "{\"opaque\":\"net0-vdpa\"}", fd);
    close(fd);
    g_assert_true(json_object_object_get_ex(r, "return", &ret));
    return json_object_get_int(json_object_object_get(ret, "fdset-id"));
}

/* ---- the three shapes of a hot-added vDPA block device ---- */

static void
test_generic_device(void)
{
    Fx f = {0};
    g_autofree char *before = NULL, *args = NULL;
    g_autoptr(json_object) r = NULL;
    unsigned slot;

    fx_start(&f);
    before = snapshot(&f);
    args = g_strdup_printf("{\"driver\":\"vhost-vdpa-device-pci\","
                           "\"vhostdev\":\"%s\",\"id\":\"disk0\"}",
                           f.blk_node);
    r = qmp_ok(&f, "device_add", args);
    slot = guest_add(&f, 0x1042);
    g_assert_true(pci_has(&f, "disk0"));
    guest_blk_workload(&f, slot);
    unplug(&f, "disk0", slot);
    g_assert_false(pci_has(&f, "disk0"));
    assert_back_to(&f, before);
    /* And again: the device is whole after a hot-remove. */
    json_object_put(qmp_ok(&f, "device_add", args));
    slot = guest_add(&f, 0x1042);
    guest_blk_workload(&f, slot);
    unplug(&f, "disk0", slot);
    fx_stop(&f);
}

static void
test_fdset_path(void)
{
    Fx f = {0};
    g_autofree char *before = NULL, *args = NULL;
    g_autoptr(json_object) r = NULL, rm = NULL;
    unsigned slot;
    int set;

    fx_start(&f);
    before = snapshot(&f);
    set = add_fd(&f, f.blk_node);
    args = g_strdup_printf("{\"driver\":\"vhost-vdpa-device-pci\","
                           "\"vhostdev\":\"/dev/fdset/%d\",\"id\":\"disk1\"}",
                           set);
    r = qmp_ok(&f, "device_add", args);
    slot = guest_add(&f, 0x1042);
    guest_blk_workload(&f, slot);
    unplug(&f, "disk1", slot);
    g_free(args);
    args = g_strdup_printf("{\"fdset-id\":%d}", set);
    rm = qmp_ok(&f, "remove-fd", args);
    assert_back_to(&f, before);
    fx_stop(&f);
}

static void
test_cloud_hypervisor_shape(void)
{
    Fx f = {0};
    g_autofree char *args = NULL, *bdf = NULL;
    g_autoptr(json_object) r = NULL;
    unsigned slot;

    fx_start(&f);
    args = g_strdup_printf("{\"path\":\"%s\",\"id\":\"disk2\"}", f.blk_node);
    r = qmp_ok(&f, "x-godwit-vdpa-add", args);
    slot = guest_add(&f, 0x1042);
    bdf = g_strdup_printf("0000:00:%02x.0", slot);
    g_assert_cmpstr(json_object_get_string(json_object_object_get(r, "id")), ==,
                    "disk2");
    g_assert_cmpstr(json_object_get_string(json_object_object_get(r, "bdf")),
                    ==, bdf);
    guest_blk_workload(&f, slot);
    unplug(&f, "disk2", slot);
    fx_stop(&f);
}

/* ---- libvirt's vDPA interface: netdev_add + virtio-net-pci ---- */

static void
test_netdev_and_virtio_net(void)
{
    Fx f = {0};
    g_autofree char *before = NULL, *args = NULL;
    g_autoptr(json_object) r = NULL;
    uint8_t mac[6];
    unsigned slot;
    int set;

    fx_start(&f);
    before = snapshot(&f);
    set = add_fd(&f, f.net_node);
    args = g_strdup_printf("{\"type\":\"vhost-vdpa\",\"vhostdev\":"
                           "\"/dev/fdset/%d\",\"id\":\"hostnet0\"}",
                           set);
    json_object_put(qmp_ok(&f, "netdev_add", args));
    r = qmp_ok(&f, "device_add",
               "{\"driver\":\"virtio-net-pci\",\"netdev\":\"hostnet0\","
               "\"id\":\"net0\",\"mac\":\"52:54:00:ab:cd:ef\","
               "\"bus\":\"pci.0\",\"addr\":\"0x5\"}");
    slot = guest_add(&f, 0x1041);
    g_assert_cmpuint(slot, ==, 5);
    {
        g_autoptr(GError) err = NULL;
        g_autoptr(GwQVirtio) vd = gw_qvirtio_init(f.vm.qt, slot, &err);
        g_assert_no_error(err);
        gw_qvirtio_read_config(vd, 0, mac, sizeof(mac));
        gw_qvirtio_reset(vd);
    }
    g_assert_cmpmem(mac, 6,
                    ((const uint8_t[]){0x52, 0x54, 0, 0xab, 0xcd, 0xef}), 6);
    /* libvirt's order: the netdev only after DEVICE_DELETED. */
    unplug(&f, "net0", slot);
    json_object_put(qmp_ok(&f, "netdev_del", "{\"id\":\"hostnet0\"}"));
    g_free(args);
    args = g_strdup_printf("{\"fdset-id\":%d}", set);
    json_object_put(qmp_ok(&f, "remove-fd", args));
    assert_back_to(&f, before);
    fx_stop(&f);
}

/* ---- libvirt 9.0's <interface type='vdpa'>, message by message ---- */

/*
 * Sends one message as libvirt's qemuMonitorJSONCommandWithFd does
 * (compact JSON, "id" last, CRLF, the fd on the same sendmsg) and checks
 * the reply is a success for it.  Returns "return" (caller owns).
 */
static json_object *
libvirt_send(Fx *f, const char *msg, int fd)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *line = g_strconcat(msg, "\r\n", NULL);
    g_autoptr(json_object) sent = json_tokener_parse(msg);
    g_autoptr(json_object) r = NULL;
    json_object *ret;

    g_assert_true(gw_qmp_conn_send_raw(f->vm.c, line, strlen(line), fd, &err));
    r = gw_qmp_conn_read_reply(f->vm.c, T, &err);
    g_assert_no_error(err);
    g_test_message("%s → %s", msg, json_object_to_json_string(r));
    g_assert_cmpstr(json_object_get_string(json_object_object_get(r, "id")), ==,
                    json_object_get_string(json_object_object_get(sent, "id")));
    g_assert_true(json_object_object_get_ex(r, "return", &ret));
    return json_object_get(ret);
}

static void
test_libvirt_vdpa_interface(void)
{
    Fx f = {0};
    g_autofree char *before = NULL;
    g_autoptr(json_object) qom = NULL, sets = NULL, gone = NULL;
    int fd;

    fx_start(&f);
    before = snapshot(&f);
    /* Attach (qemuDomainAttachNetDevice, then qemuDomainUpdateDeviceList). */
    json_object_put(libvirt_send(
        &f, "{\"execute\":\"query-fdsets\",\"id\":\"libvirt-401\"}", -1));
    fd = open(f.net_node, O_RDWR | O_CLOEXEC); /* qemuInterfaceVDPAConnect */
    g_assert_cmpint(fd, >=, 0);
    json_object_put(libvirt_send(
        &f,
        "{\"execute\":\"add-fd\",\"arguments\":{\"opaque\":\"net0-vdpa\","
        "\"fdset-id\":0},\"id\":\"libvirt-402\"}",
        fd));
    close(fd);
    json_object_put(libvirt_send(
        &f,
        "{\"execute\":\"netdev_add\",\"arguments\":{\"type\":\"vhost-vdpa\","
        "\"vhostdev\":\"/dev/fdset/0\",\"id\":\"hostnet0\"},\"id\":"
        "\"libvirt-403\"}",
        -1));
    json_object_put(libvirt_send(
        &f,
        "{\"execute\":\"device_add\",\"arguments\":{\"driver\":"
        "\"virtio-net-pci\",\"netdev\":\"hostnet0\",\"id\":\"net0\","
        "\"mac\":\"52:54:00:39:5f:04\",\"bus\":\"pci.0\",\"addr\":\"0x2\"},"
        "\"id\":\"libvirt-404\"}",
        -1));
    qom = libvirt_send(&f,
                       "{\"execute\":\"qom-list\",\"arguments\":{\"path\":"
                       "\"/machine/peripheral\"},\"id\":\"libvirt-405\"}",
                       -1);
    g_assert_nonnull(
        strstr(json_object_to_json_string(qom), "\"child<virtio-net-pci>\""));
    g_assert_cmpuint(guest_add(&f, 0x1041), ==, 2);
    /* Detach: device_del, DEVICE_DELETED, netdev_del, the fd set. */
    json_object_put(libvirt_send(
        &f,
        "{\"execute\":\"device_del\",\"arguments\":{\"id\":\"net0\"},"
        "\"id\":\"libvirt-501\"}",
        -1));
    guest_eject(&f, 2);
    wait_deleted(&f, "net0");
    json_object_put(libvirt_send(
        &f,
        "{\"execute\":\"netdev_del\",\"arguments\":{\"id\":\"hostnet0\"},"
        "\"id\":\"libvirt-502\"}",
        -1));
    sets = libvirt_send(
        &f, "{\"execute\":\"query-fdsets\",\"id\":\"libvirt-503\"}", -1);
    g_assert_nonnull(strstr(json_object_to_json_string(sets), "\"net0-vdpa\""));
    json_object_put(libvirt_send(
        &f,
        "{\"execute\":\"remove-fd\",\"arguments\":{\"fdset-id\":0},"
        "\"id\":\"libvirt-504\"}",
        -1));
    gone = libvirt_send(&f,
                        "{\"execute\":\"qom-list\",\"arguments\":{\"path\":"
                        "\"/machine/peripheral\"},\"id\":\"libvirt-505\"}",
                        -1);
    g_assert_null(strstr(json_object_to_json_string(gone), "net0"));
    assert_back_to(&f, before);
    fx_stop(&f);
}

/* netdev_add vhostfd: an fd named with getfd (QEMU ≥ 8.1's spelling). */
static void
test_netdev_vhostfd(void)
{
    Fx f = {0};
    g_autofree char *before = NULL;
    g_autoptr(json_object) named = NULL;
    int fd;

    fx_start(&f);
    before = snapshot(&f);
    fd = open(f.net_node, O_RDWR | O_CLOEXEC);
    g_assert_cmpint(fd, >=, 0);
    named = qmp(&f, "getfd", "{\"fdname\":\"vdpa0\"}", fd);
    close(fd);
    g_assert_nonnull(json_object_object_get(named, "return"));
    json_object_put(qmp_ok(&f, "netdev_add",
                           "{\"type\":\"vhost-vdpa\",\"vhostfd\":\"vdpa0\","
                           "\"id\":\"hostnet1\"}"));
    json_object_put(qmp_ok(&f, "device_add",
                           "{\"driver\":\"virtio-net-pci\",\"netdev\":"
                           "\"hostnet1\",\"id\":\"net1\"}"));
    unplug(&f, "net1", guest_add(&f, 0x1041));
    json_object_put(qmp_ok(&f, "netdev_del", "{\"id\":\"hostnet1\"}"));
    json_object_put(qmp_ok(&f, "closefd", "{\"fdname\":\"vdpa0\"}"));
    assert_back_to(&f, before);
    fx_stop(&f);
}

/* ---- what a guest that never lets go, or a reset, does ---- */

static void
test_unacknowledged_unplug_keeps_device(void)
{
    Fx f = {0};
    g_autofree char *args = NULL;
    uint32_t down;
    unsigned slot;

    fx_start(&f);
    args = g_strdup_printf("{\"driver\":\"vhost-vdpa-device-pci\","
                           "\"vhostdev\":\"%s\",\"id\":\"disk0\"}",
                           f.blk_node);
    json_object_put(qmp_ok(&f, "device_add", args));
    slot = guest_add(&f, 0x1042);
    json_object_put(qmp_ok(&f, "device_del", "{\"id\":\"disk0\"}"));
    g_assert_cmphex(guest_take_event(&f, &down), ==, 0);
    g_assert_cmphex(down, ==, 1u << slot);
    /* The guest ignores it: the device stays, and asking again is fine. */
    json_object_put(qmp_ok(&f, "device_del", "{\"id\":\"disk0\"}"));
    g_assert_true(pci_has(&f, "disk0"));
    guest_blk_workload(&f, slot);
    /* A reset completes the unplug: no guest is left to answer. */
    json_object_put(qmp_ok(&f, "system_reset", NULL));
    wait_deleted(&f, "disk0");
    g_assert_false(pci_has(&f, "disk0"));
    fx_stop(&f);
}

/* ---- a cold-plugged --vdpa device: MSI-X, then unplugged ---- */

static void
test_cold_plugged_device(void)
{
    const uint64_t msi_at = 0x100000; /* a RAM word the "guest" watches */
    const uint32_t msi_data = 0x4041;
    Fx f = {0};
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQVirtio) vd = NULL;
    g_autofree char *args = NULL;

    fx_start_with(&f, "path=@DIR@/vdpa/blk1,num_queues=1,id=boot0");
    g_assert_true(pci_has(&f, "boot0"));
    g_assert_cmphex(gw_qt_pci_read(f.vm.qt, GW_QT_BDF(0, 1, 0), 0, 4), ==,
                    0x10421af4u);
    gw_qt_writel(f.vm.qt, msi_at, 0);
    vd = gw_qvirtio_init_msix(f.vm.qt, 1, msi_at, msi_data, &err);
    g_assert_no_error(err);
    g_assert_true(gw_qvirtio_blk_workload(vd, &err));
    g_assert_no_error(err);
    /* Completions went device → call eventfd → irqfd → MSI → RAM. */
    g_assert_cmphex(gw_qt_readl(f.vm.qt, msi_at), ==, msi_data);
    gw_qvirtio_reset(vd);
    /* A device given on the command line unplugs like a hot-plugged one,
     * and its backend is closed: the node can be opened again. */
    unplug(&f, "boot0", 1);
    args = g_strdup_printf("{\"path\":\"%s/vdpa/blk1\",\"id\":\"again\"}",
                           f.vm.dir);
    json_object_put(qmp_ok(&f, "x-godwit-vdpa-add", args));
    g_assert_cmpuint(guest_add(&f, 0x1042), ==, 1);
    fx_stop(&f);
}

/* ---- 50 rounds without a leak ---- */

static void
test_repeat_without_leaks(void)
{
    Fx f = {0};
    g_autofree char *args = NULL;
    unsigned fds_before, fds_after;
    gint64 deadline;
    long rss_before, rss_after;

    fx_start(&f);
    args = g_strdup_printf("{\"driver\":\"vhost-vdpa-device-pci\","
                           "\"vhostdev\":\"%s\",\"id\":\"disk0\"}",
                           f.blk_node);
    /* One round first, so lazily built state is not counted as a leak. */
    json_object_put(qmp_ok(&f, "device_add", args));
    unplug(&f, "disk0", guest_add(&f, 0x1042));
    fds_before = count_fds(f.vm.pid);
    rss_before = proc_rss_kib(f.vm.pid);
    for (int i = 0; i < 50; i++) {
        json_object_put(qmp_ok(&f, "device_add", args));
        unplug(&f, "disk0", guest_add(&f, 0x1042));
    }
    deadline = g_get_monotonic_time() + T * 1000ll;
    while ((fds_after = count_fds(f.vm.pid)) != fds_before &&
           g_get_monotonic_time() < deadline) {
        g_usleep(10000); /* retired eventfds close on the sim's thread */
    }
    rss_after = proc_rss_kib(f.vm.pid);
    g_test_message("RSS %ld → %ld KiB", rss_before, rss_after);
    g_assert_cmpuint(fds_after, ==, fds_before);
#ifndef __SANITIZE_ADDRESS__
    /* 50 leaked devices (config space, transport, tables: tens of KiB
     * each) would be far more.  Under ASan its quarantine and shadow
     * make RSS meaningless; LeakSanitizer's check at godwit's exit
     * (fx_stop wants status 0) is the stronger test there. */
    g_assert_cmpint(rss_after, <, rss_before + 2048);
#endif
    fx_stop(&f);
}

/* ---- every bad request: an error, and nothing changed ---- */

typedef struct {
    /* args: @BLK@ the blk node (in use), @NET@ the net node, @FREE@ a
     * free blk node */
    const char *name, *cmd, *args;
    const char *cls, *desc; /* desc: a prefix */
} BadCase;

static const BadCase bad[] = {
    {"unknown-driver", "device_add", "{\"driver\":\"e1000\",\"id\":\"x\"}",
     "GenericError", "'e1000' is not a valid device model name"},
    {"missing-driver", "device_add", "{\"id\":\"x\"}", "GenericError",
     "Parameter 'driver' is missing"},
    {"unknown-property", "device_add",
     "{\"driver\":\"vhost-vdpa-device-pci\",\"vhostdev\":\"@BLK@\","
     "\"id\":\"x\",\"colour\":\"red\"}",
     "GenericError", "Property 'vhost-vdpa-device-pci.colour' not found"},
    {"mistyped-property", "device_add",
     "{\"driver\":\"vhost-vdpa-device-pci\",\"vhostdev\":7,\"id\":\"x\"}",
     "GenericError", "Invalid parameter type for 'vhostdev', expected: string"},
    {"missing-vhostdev", "device_add",
     "{\"driver\":\"vhost-vdpa-device-pci\",\"id\":\"x\"}", "GenericError",
     "vhost-vdpa-device-pci: property 'vhostdev' is required"},
    {"duplicate-id", "device_add",
     "{\"driver\":\"vhost-vdpa-device-pci\",\"vhostdev\":\"@BLK@\","
     "\"id\":\"taken\"}",
     "GenericError", "Duplicate device ID 'taken'"},
    {"bad-id", "device_add",
     "{\"driver\":\"vhost-vdpa-device-pci\",\"vhostdev\":\"@BLK@\","
     "\"id\":\"9lives\"}",
     "GenericError", "Parameter 'id' expects an identifier"},
    {"not-a-vdpa-device", "device_add",
     "{\"driver\":\"vhost-vdpa-device-pci\",\"vhostdev\":\"/dev/null\","
     "\"id\":\"x\"}",
     "GenericError", "vdpa: /dev/null is not a vhost-vdpa device"},
    {"no-such-path", "device_add",
     "{\"driver\":\"vhost-vdpa-device-pci\",\"vhostdev\":\"/nonexistent\","
     "\"id\":\"x\"}",
     "GenericError", "vdpa: /nonexistent: "},
    {"no-such-fdset", "device_add",
     "{\"driver\":\"vhost-vdpa-device-pci\",\"vhostdev\":\"/dev/fdset/42\","
     "\"id\":\"x\"}",
     "DeviceNotFound", ""},
    {"fdset-wrong-mode", "device_add",
     "{\"driver\":\"vhost-vdpa-device-pci\",\"vhostdev\":\"/dev/fdset/0\","
     "\"id\":\"x\"}",
     "GenericError", ""},
    {"unknown-bus", "device_add",
     "{\"driver\":\"vhost-vdpa-device-pci\",\"vhostdev\":\"@BLK@\","
     "\"id\":\"x\",\"bus\":\"pcie.1\"}",
     "DeviceNotFound", "Bus 'pcie.1' not found"},
    {"slot-taken", "device_add",
     "{\"driver\":\"vhost-vdpa-device-pci\",\"vhostdev\":\"@BLK@\","
     "\"id\":\"x\",\"addr\":\"0x3\"}",
     "GenericError", "PCI segment 0: slot 3 is taken"},
    {"bad-addr", "device_add",
     "{\"driver\":\"vhost-vdpa-device-pci\",\"vhostdev\":\"@BLK@\","
     "\"id\":\"x\",\"addr\":\"0x20\"}",
     "GenericError", "Property 'vhost-vdpa-device-pci.addr' doesn't take"},
    {"unknown-netdev", "device_add",
     "{\"driver\":\"virtio-net-pci\",\"netdev\":\"nope\",\"id\":\"x\"}",
     "GenericError", "Property 'virtio-net-pci.netdev' can't find value"},
    {"netdev-not-net", "netdev_add",
     "{\"type\":\"vhost-vdpa\",\"vhostdev\":\"@FREE@\",\"id\":\"n1\"}",
     "GenericError", "vhost-vdpa: "},
    {"backend-busy", "device_add",
     "{\"driver\":\"vhost-vdpa-device-pci\",\"vhostdev\":\"@BLK@\","
     "\"id\":\"x\"}",
     "GenericError", "vdpa: cannot open "},
    {"netdev-unknown-vhostfd", "netdev_add",
     "{\"type\":\"vhost-vdpa\",\"vhostfd\":\"nope\",\"id\":\"n1\"}",
     "DeviceNotFound", "File descriptor named 'nope' not found"},
    {"generic-queue-size", "device_add",
     "{\"driver\":\"vhost-vdpa-device-pci\",\"vhostdev\":\"@FREE@\","
     "\"id\":\"x\",\"queue-size\":64}",
     "GenericError", "vhost-vdpa-device-pci: queue-size: the device's own"},
    {"netdev-unknown-type", "netdev_add", "{\"type\":\"tap\",\"id\":\"n1\"}",
     "GenericError", "Parameter 'type' does not accept value 'tap'"},
    {"netdev-no-source", "netdev_add",
     "{\"type\":\"vhost-vdpa\",\"id\":\"n1\"}", "GenericError",
     "vhost-vdpa: exactly one of 'vhostdev' and 'vhostfd' is required"},
    {"netdev-duplicate", "netdev_add",
     "{\"type\":\"vhost-vdpa\",\"vhostdev\":\"@NET@\",\"id\":\"hostnet9\"}",
     "GenericError", "Duplicate ID 'hostnet9' for netdev"},
    {"netdev-in-use", "netdev_del", "{\"id\":\"hostnet9\"}", "GenericError",
     "netdev 'hostnet9' is in use by device 'nic9'"},
    {"netdev-del-unknown", "netdev_del", "{\"id\":\"nope\"}", "DeviceNotFound",
     "Device 'nope' not found"},
    {"device-del-unknown", "device_del", "{\"id\":\"nope\"}", "DeviceNotFound",
     "Device 'nope' not found"},
    {"ch-num-queues", "x-godwit-vdpa-add",
     "{\"path\":\"@FREE@\",\"num_queues\":0}", "GenericError",
     "x-godwit-vdpa-add: num_queues must be 1..256"},
    {"ch-iommu", "x-godwit-vdpa-add", "{\"path\":\"@FREE@\",\"iommu\":true}",
     "GenericError",
     "x-godwit-vdpa-add: iommu=on can be hot-plugged only on a segment "
     "behind the IOMMU, which pci_segment 0 is not (list it in --platform "
     "iommu_segments)"},
    {"iommu-platform-off-iommu-segment", "device_add",
     "{\"driver\":\"vhost-vdpa-device-pci\",\"vhostdev\":\"@FREE@\","
     "\"id\":\"x\",\"iommu_platform\":true}",
     "GenericError",
     "vhost-vdpa-device-pci: iommu=on can be hot-plugged only on a segment "
     "behind the IOMMU"},
    {"ch-segment", "x-godwit-vdpa-add",
     "{\"path\":\"@FREE@\",\"pci_segment\":1}", "GenericError",
     "x-godwit-vdpa-add: pci_segment 1 does not exist"},
    {"ch-reserved-id", "x-godwit-vdpa-add",
     "{\"path\":\"@FREE@\",\"id\":\"_vdpa7\"}", "GenericError",
     "x-godwit-vdpa-add: id '_vdpa7': ids starting with '_' are reserved"},
};

static char *
replace(const char *text, const char *token, const char *with)
{
    g_auto(GStrv) parts = g_strsplit(text, token, -1);
    return g_strjoinv(with, parts);
}

static char *
subst(const char *text, const char *blk, const char *net, const char *free)
{
    g_autofree char *a = replace(text, "@BLK@", blk);
    g_autofree char *b = replace(a, "@NET@", net);
    return replace(b, "@FREE@", free);
}

/* The state the bad requests run against: a device, a netdev in use, an
 * fd set whose only fd is read-only. */
static void
errors_setup(Fx *f)
{
    g_autofree char *args = NULL;
    int ro = open("/dev/null", O_RDONLY | O_CLOEXEC);
    g_autoptr(json_object) r = qmp(f, "add-fd", NULL, ro);

    close(ro);
    g_assert_nonnull(json_object_object_get(r, "return"));
    args = g_strdup_printf("{\"driver\":\"vhost-vdpa-device-pci\","
                           "\"vhostdev\":\"%s\",\"id\":\"taken\","
                           "\"addr\":\"0x3\"}",
                           f->blk_node);
    json_object_put(qmp_ok(f, "device_add", args));
    g_free(args);
    args = g_strdup_printf("{\"type\":\"vhost-vdpa\",\"vhostdev\":\"%s\","
                           "\"id\":\"hostnet9\"}",
                           f->net_node);
    json_object_put(qmp_ok(f, "netdev_add", args));
    json_object_put(qmp_ok(f, "device_add",
                           "{\"driver\":\"virtio-net-pci\",\"netdev\":"
                           "\"hostnet9\",\"id\":\"nic9\"}"));
}

static void
test_errors_change_nothing(void)
{
    Fx f = {0};
    g_autofree char *before = NULL;

    fx_start(&f);
    errors_setup(&f);
    before = snapshot(&f);
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *free_blk =
            g_build_filename(f.vm.dir, "vdpa", "blk1", NULL);
        g_autofree char *args =
            subst(bad[i].args, f.blk_node, f.net_node, free_blk);
        g_autoptr(json_object) r = qmp(&f, bad[i].cmd, args, -1);
        json_object *e;

        g_test_message("%s: %s", bad[i].name, json_object_to_json_string(r));
        g_assert_true(json_object_object_get_ex(r, "error", &e));
        g_assert_cmpstr(
            json_object_get_string(json_object_object_get(e, "class")), ==,
            bad[i].cls);
        g_assert_true(g_str_has_prefix(
            json_object_get_string(json_object_object_get(e, "desc")),
            bad[i].desc));
        assert_back_to(&f, before);
    }
    fx_stop(&f);
}

/* Without a machine (no --kernel, no --qtest) there is no bus. */
static void
test_no_machine_no_bus(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("godwit-hotplug-XXXXXX", NULL);
    g_autofree char *sock = g_build_filename(dir, "qmp.sock", NULL);
    const char *argv[] = {g_getenv("GODWIT_BIN"), "--qmp", sock, NULL};
    g_auto(GStrv) env =
        g_environ_setenv(g_get_environ(), "GODWIT_RUNTIME_DIR", dir, TRUE);
    Fx f = {0};
    g_autoptr(json_object) r = NULL;
    int status;

    g_assert_true(g_spawn_async(NULL, (char **)argv, env,
                                G_SPAWN_DO_NOT_REAP_CHILD, die_with_parent,
                                NULL, &f.vm.pid, &err));
    f.vm.c = gw_qmp_conn_new(sock, T, &err);
    g_assert_no_error(err);
    g_assert_true(gw_qmp_conn_negotiate(f.vm.c, T, &err));
    r = qmp(&f, "device_add",
            "{\"driver\":\"vhost-vdpa-device-pci\",\"vhostdev\":\"/x\"}", -1);
    g_assert_cmpstr(json_object_get_string(json_object_object_get(
                        json_object_object_get(r, "error"), "desc")),
                    ==,
                    "No 'PCI' bus found for device 'vhost-vdpa-device-pci'");
    gw_qmp_conn_free(f.vm.c);
    kill(f.vm.pid, SIGTERM);
    waitpid(f.vm.pid, &status, 0);
    g_remove(sock);
    g_rmdir(dir);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/hotplug/generic-vhost-vdpa-device-pci",
                    test_generic_device);
    g_test_add_func("/hotplug/fdset-path", test_fdset_path);
    g_test_add_func("/hotplug/cloud-hypervisor-shape",
                    test_cloud_hypervisor_shape);
    g_test_add_func("/hotplug/netdev-and-virtio-net-pci",
                    test_netdev_and_virtio_net);
    g_test_add_func("/hotplug/netdev-vhostfd", test_netdev_vhostfd);
    g_test_add_func("/hotplug/libvirt-9.0-vdpa-interface",
                    test_libvirt_vdpa_interface);
    g_test_add_func("/hotplug/unacknowledged-unplug-keeps-device",
                    test_unacknowledged_unplug_keeps_device);
    g_test_add_func("/hotplug/cold-plugged-device-msix-and-unplug",
                    test_cold_plugged_device);
    g_test_add_func("/hotplug/repeat-50-without-leaks",
                    test_repeat_without_leaks);
    g_test_add_func("/hotplug/errors-change-nothing",
                    test_errors_change_nothing);
    g_test_add_func("/hotplug/no-machine-no-bus", test_no_machine_no_bus);
    return g_test_run();
}
