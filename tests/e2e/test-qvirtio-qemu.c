/*
 * The test-side virtio-net driver (qvirtio-net) against QEMU's own
 * virtio-net-pci under qtest: what the vDPA net tests expect of godwit's
 * device, QEMU's device does too, so the driver, not just the device
 * under test, is checked against a reference.  A dgram netdev on a unix
 * socket that sends to itself loops every frame back.  QEMU's virtio-net
 * starts promiscuous, so "other MACs are dropped" is not checked here.
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <glib/gstdio.h>
#include "qtest-client.h"
#include "qvirtio-net.h"
#include "spawn-util.h"

#define T      10000
#define SLOT   3
#define MAC    "52:54:00:12:34:56"
#define FRAMES 24
#define F(n)   (1ull << (n))

static const uint8_t qemu_mac[] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
static const uint8_t new_mac[] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};

typedef struct {
    char *dir, *qt_sock, *net_sock, *bios;
    GPid pid;
    GwQt *qt;
} QemuVm;

/*
 * Firmware that halts at the reset vector (64 KiB of HLT, interrupts off
 * after reset): the machine runs, as virtio-net needs to move frames,
 * but nothing but the test touches the PCI devices.  With -S instead the
 * device takes no frames from a stopped VM; Debian's QEMU has no qtest
 * accelerator.
 */
static char *
halt_bios(const char *dir)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *hlt = g_malloc(64 << 10);
    char *path = g_build_filename(dir, "halt.bin", NULL);

    memset(hlt, 0xf4, 64 << 10);
    g_assert_true(g_file_set_contents(path, hlt, 64 << 10, &err));
    g_assert_no_error(err);
    return path;
}

static void
qemu_start(QemuVm *vm, const char *qemu)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *qt_arg = NULL, *netdev = NULL;

    vm->dir = g_dir_make_tmp("godwit-qvirtio-qemu-XXXXXX", NULL);
    g_assert_nonnull(vm->dir);
    vm->qt_sock = g_build_filename(vm->dir, "qtest.sock", NULL);
    vm->net_sock = g_build_filename(vm->dir, "net.sock", NULL);
    vm->bios = halt_bios(vm->dir);
    qt_arg = g_strdup_printf("unix:%s,server=on,wait=off", vm->qt_sock);
    netdev = g_strdup_printf("dgram,id=n0,local.type=unix,local.path=%s,"
                             "remote.type=unix,remote.path=%s",
                             vm->net_sock, vm->net_sock);
    const char *argv[] = {
        qemu,
        "-machine",
        "pc",
        "-accel",
        "tcg",
        "-bios",
        vm->bios,
        "-m",
        "64M",
        "-qtest",
        qt_arg,
        "-qtest-log",
        "/dev/null",
        "-display",
        "none",
        "-nodefaults",
        "-netdev",
        netdev,
        "-device",
        "virtio-net-pci,netdev=n0,disable-legacy=on,romfile=,addr=3,mac=" MAC,
        NULL};
    g_assert_true(
        g_spawn_async(NULL, (char **)argv, NULL,
                      G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL,
                      die_with_parent, NULL, &vm->pid, &err));
    g_assert_no_error(err);
    vm->qt = gw_qt_connect(vm->qt_sock, T, &err);
    g_assert_no_error(err);
}

static void
qemu_stop(QemuVm *vm)
{
    int status = -1;

    gw_qt_free(vm->qt);
    kill(vm->pid, SIGTERM);
    waitpid(vm->pid, &status, 0);
    g_spawn_close_pid(vm->pid);
    g_remove(vm->qt_sock);
    g_remove(vm->net_sock);
    g_remove(vm->bios);
    g_free(vm->bios);
    g_assert_cmpint(g_rmdir(vm->dir), ==, 0);
    g_free(vm->qt_sock);
    g_free(vm->net_sock);
    g_free(vm->dir);
    *vm = (QemuVm){0};
}

static void
must_loop(GwQNet *n, const uint8_t *to, unsigned frames)
{
    g_autoptr(GError) err = NULL;
    bool ok = gw_qvirtio_net_loopback(n, to, frames, &err);

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

static void
test_net_on_qemu(void)
{
    g_autofree char *qemu = g_find_program_in_path("qemu-system-x86_64");
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQNet) n = NULL;
    QemuVm vm = {0};
    bool ok;

    if (!qemu) {
        g_test_skip("qemu-system-x86_64 is not installed (apt-get install "
                    "qemu-system-x86)");
        return;
    }
    qemu_start(&vm, qemu);
    n = gw_qvirtio_net_init(vm.qt, SLOT, &err);
    g_assert_no_error(err);
    /* QEMU offers no ACCESS_PLATFORM unless iommu_platform=on. */
    g_assert_cmphex(gw_qvirtio_features(gw_qvirtio_net_dev(n)), ==,
                    F(VIRTIO_F_VERSION_1) | F(VIRTIO_NET_F_MAC) |
                        F(VIRTIO_NET_F_CTRL_VQ) |
                        F(VIRTIO_NET_F_CTRL_MAC_ADDR));
    must_mac(n, qemu_mac);
    must_loop(n, qemu_mac, FRAMES);
    ok = gw_qvirtio_net_set_mac(n, new_mac, &err);
    g_assert_no_error(err);
    g_assert_true(ok);
    must_mac(n, new_mac);
    must_loop(n, new_mac, FRAMES);
    gw_qvirtio_reset(gw_qvirtio_net_dev(n));
    qemu_stop(&vm);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qvirtio/qemu/net-loopback-and-mac", test_net_on_qemu);
    return g_test_run();
}
