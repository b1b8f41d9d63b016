/*
 * libvirt manages godwit: a private libvirtd (tests/e2e/libvirt/ns.sh, in
 * its own mount and pid namespace, with private copies of libvirt's
 * directories) defines a domain whose <emulator> is godwit, with the
 * test guest as its direct-boot kernel and a serial log, and drives it
 * with virsh: domcapabilities, start (the guest's report appears in the
 * log), suspend (the log stops) and resume (it goes on), destroy; and a
 * vDPA NIC attached and detached.  The same steps run with QEMU as the
 * emulator, so the test asks nothing of godwit that QEMU would not do.
 *
 * And, on a host without KVM (no /dev/kvm in the namespace), libvirt
 * refusing godwit for kvm domains with a clear reason.
 *
 * Skips, saying why, without root, libvirtd, /dev/kvm, or (for vDPA) the
 * right to raise another process's locked-memory limit.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>
#include "libvirt-ns.h"

typedef struct {
    const char *emulator; /* NULL: godwit */
    const char *cpu;      /* the domain's <cpu>, or "" */
} Variant;

static const char *
emulator_of(const Variant *v)
{
    return v->emulator ? v->emulator : g_getenv("GODWIT_BIN");
}

/* Whether godwit answers the one probe command it may not have yet. */
static bool
has_migrate_caps(Ns *ns)
{
    int status;
    g_autofree char *out = ns_run(
        ns, &status,
        "%s -machine none -qmp unix:%s/p.sock,server=on,wait=off -daemonize "
        "&& printf '{\"execute\":\"qmp_capabilities\"}"
        "{\"execute\":\"query-migrate-capabilities\"}"
        "{\"execute\":\"quit\"}' | socat -t 5 - UNIX-CONNECT:%s/p.sock",
        g_getenv("GODWIT_BIN"), ns->dir, ns->dir);

    g_assert_cmpint(status, ==, 0);
    return !strstr(out, "CommandNotFound");
}

/* Sets up the namespace and defines the domain; false: skipped. */
static bool
setup(Ns *ns, const Variant *v, const char *cmdline)
{
    g_autofree char *why = NULL, *xml = NULL, *path = NULL, *caps = NULL;
    g_autofree char *out = NULL;
    int status;

    ns->in = ns->out = -1;
    if (!have_tools(&why, true) ||
        (v->emulator && !g_file_test(v->emulator, G_FILE_TEST_EXISTS))) {
        g_test_skip(why ? why : "the emulator is not installed");
        return false;
    }
    ns->dir = g_dir_make_tmp("gw-libvirt-XXXXXX", NULL);
    g_assert_nonnull(ns->dir);
    if (!ns_start(ns, "", &why)) {
        g_test_skip(why);
        return false;
    }
    if (!v->emulator && !has_migrate_caps(ns)) {
        g_test_skip("libvirt's probe needs query-migrate-capabilities, "
                    "which comes with live migration");
        return false;
    }
    caps = ns_run(ns, &status,
                  "virsh domcapabilities --emulatorbin %s --virttype kvm",
                  emulator_of(v));
    g_assert_cmpint(status, ==, 0);
    g_assert_nonnull(strstr(caps, "<domain>kvm</domain>"));
    if (!v->emulator) {
        g_assert_nonnull(strstr(caps, "<mode name='host-passthrough' "
                                      "supported='yes'>"));
    }
    xml = domain_xml(ns->dir, emulator_of(v), v->cpu, cmdline);
    path = g_build_filename(ns->dir, "dom.xml", NULL);
    g_assert_true(g_file_set_contents(path, xml, -1, NULL));
    out = ns_run(ns, &status, "virsh define %s", path);
    g_assert_cmpint(status, ==, 0);
    return true;
}

/* start, the report; suspend, the log stops; resume, it goes on; destroy */
static void
test_lifecycle(gconstpointer data)
{
    const Variant *v = data;
    Ns ns = {0};
    g_autofree char *log = NULL;
    unsigned rounds;

    if (!setup(&ns, v, "pci-list; dirty pages=16 rounds=0")) {
        teardown(&ns);
        return;
    }
    log = g_build_filename(ns.dir, "serial.log", NULL);
    g_free(must_run(&ns, "virsh start gw1"));
    g_assert_true(wait_log(log, "GUEST pci-count", 1));
    g_assert_true(wait_log(log, "GUEST dirty round=", 2));
    assert_state(&ns, "running");

    g_free(must_run(&ns, "virsh suspend gw1"));
    assert_state(&ns, "paused");
    rounds = log_count(log, "GUEST dirty round=");
    g_usleep(G_USEC_PER_SEC); /* a paused guest writes nothing: look */
    g_assert_cmpuint(log_count(log, "GUEST dirty round="), ==, rounds);
    g_free(must_run(&ns, "virsh resume gw1"));
    assert_state(&ns, "running");
    g_assert_true(wait_log(log, "GUEST dirty round=", rounds + 2));
    g_assert_cmpuint(log_count(log, "GUEST fail"), ==, 0);

    g_free(must_run(&ns, "virsh destroy gw1"));
    assert_state(&ns, "shut off");
    teardown(&ns);
}

/* virsh shutdown: libvirt's system_powerdown presses the ACPI power
 * button, the guest's handler (wait-button) sees it and powers off. */
static void
test_shutdown(gconstpointer data)
{
    const Variant *v = data;
    Ns ns = {0};
    g_autofree char *log = NULL;

    if (!setup(&ns, v, "pci-list; wait-button; poweroff")) {
        teardown(&ns);
        return;
    }
    log = g_build_filename(ns.dir, "serial.log", NULL);
    g_free(must_run(&ns, "virsh start gw1"));
    g_assert_true(wait_log(log, "GUEST acpi wait-button", 1));
    assert_state(&ns, "running");
    g_free(must_run(&ns, "virsh shutdown gw1"));
    g_assert_true(wait_state(&ns, "shut off"));
    g_assert_cmpuint(log_count(log, "GUEST acpi power-button"), ==, 1);
    g_assert_cmpuint(log_count(log, "GUEST acpi pm1a_cnt="), ==, 1);
    g_assert_cmpuint(log_count(log, "GUEST fail"), ==, 0);
    teardown(&ns);
}

/*
 * A host without KVM (no /dev/kvm in the namespace).  godwit answers
 * libvirt's probe but, honestly, with no accelerator it has: no KVM here
 * and no TCG at all (it lists no tcg-accel type).  So libvirt probes it
 * (no "failed to probe"), finds no virt type, and refuses a kvm domain
 * at `virsh define` naming godwit and kvm: the clear reason a user gets.
 * (QEMU would offer TCG here; godwit does not pretend to.)
 */
static void
test_no_kvm(void)
{
    Ns ns = {.in = -1, .out = -1};
    g_autofree char *why = NULL, *caps = NULL, *xml = NULL, *path = NULL;
    g_autofree char *out = NULL, *want = NULL;
    int status;

    if (!have_tools(&why, false)) {
        g_test_skip(why);
        return;
    }
    ns.dir = g_dir_make_tmp("gw-libvirt-XXXXXX", NULL);
    if (!ns_start(&ns, "GW_NO_KVM=1", &why)) {
        g_test_skip(why);
        teardown(&ns);
        return;
    }
    g_free(must_run(&ns, "test ! -e /dev/kvm"));
    caps = ns_run(&ns, &status, "virsh domcapabilities --emulatorbin %s",
                  g_getenv("GODWIT_BIN"));
    g_assert_cmpint(status, !=, 0);
    g_assert_nonnull(strstr(caps, "does not support virt type"));
    g_assert_null(strstr(caps, "probing"));
    xml = domain_xml(ns.dir, g_getenv("GODWIT_BIN"), "", "pci-list");
    path = g_build_filename(ns.dir, "dom.xml", NULL);
    g_assert_true(g_file_set_contents(path, xml, -1, NULL));
    out = ns_run(&ns, &status, "virsh define %s", path);
    g_assert_cmpint(status, !=, 0);
    want = g_strdup_printf("Emulator '%s' does not support virt type 'kvm'",
                           g_getenv("GODWIT_BIN"));
    g_assert_nonnull(strstr(out, want));
    teardown(&ns);
}

/* libvirt raises the emulator's RLIMIT_MEMLOCK for vDPA: CAP_SYS_RESOURCE */
static bool
can_raise_memlock(void)
{
    g_autofree char *status = NULL;
    const char *cap;
    guint64 eff;

    if (!g_file_get_contents("/proc/self/status", &status, NULL, NULL) ||
        !(cap = strstr(status, "CapEff:"))) {
        return false;
    }
    eff = g_ascii_strtoull(cap + strlen("CapEff:"), NULL, 16);
    return eff & (1ull << 24); /* CAP_SYS_RESOURCE */
}

/*
 * <interface type='vdpa'> on a simulated vdpa-net node: the guest sees a
 * new function in a slot; detach: it ejects it, DEVICE_DELETED completes
 * libvirt's detach, and the fd set is gone.
 */
static void
test_vdpa(gconstpointer data)
{
    const Variant *v = data;
    Ns ns = {0};
    g_autofree char *log = NULL, *net = NULL, *out = NULL;

    if (!can_raise_memlock()) {
        g_test_skip("no CAP_SYS_RESOURCE: libvirt cannot raise the "
                    "emulator's locked-memory limit, which it does for vDPA");
        return;
    }
    if (!setup(&ns, v, "hotplug rounds=1 timeout-ms=600000")) {
        teardown(&ns);
        return;
    }
    log = g_build_filename(ns.dir, "serial.log", NULL);
    net = g_build_filename(ns.dir, "net.xml", NULL);
    g_assert_true(g_file_set_contents(
        net,
        "<interface type='vdpa'><source dev='/run/godwit/vdpa/n0'/>"
        "<model type='virtio'/></interface>",
        -1, NULL));
    g_free(must_run(&ns, "virsh start gw1"));
    g_assert_true(wait_log(log, "GUEST hotplug ready", 1));
    g_free(must_run(&ns,
                    "virsh qemu-monitor-command gw1 "
                    "'{\"execute\":\"x-godwit-vdpa-sim-add\",\"arguments\":"
                    "{\"name\":\"n0\",\"mgmtdev\":\"vdpasim_net\"}}'"));
    out = g_strdup_printf("virsh attach-device gw1 %s --live", net);
    g_free(must_run(&ns, out));
    g_assert_true(wait_log(log, "GUEST hotplug add slot=", 1));
    g_free(out);
    out = must_run(&ns, "virsh domiflist gw1");
    g_assert_nonnull(strstr(out, "vdpa"));
    g_free(out);
    out = g_strdup_printf("virsh detach-device gw1 %s --live", net);
    g_free(must_run(&ns, out));
    g_assert_true(wait_log(log, "GUEST hotplug ejected slot=", 1));
    g_free(out);
    out = must_run(&ns, "virsh qemu-monitor-command gw1 "
                        "'{\"execute\":\"query-fdsets\"}'");
    g_assert_null(strstr(out, "-vdpa"));
    g_free(must_run(&ns, "virsh destroy gw1"));
    teardown(&ns);
}

int
main(int argc, char **argv)
{
    /* godwit's guest CPU is the host's (-cpu host); QEMU's -cpu host fails
     * on PVM hosts (MSR 0x10a), so QEMU gets libvirt's default, qemu64. */
    static const Variant godwit = {NULL, "<cpu mode='host-passthrough'/>"};
    static const Variant qemu = {"/usr/bin/qemu-system-x86_64", ""};

    g_test_init(&argc, &argv, NULL);
    g_test_add_data_func("/libvirt/godwit/start-suspend-resume-destroy",
                         &godwit, test_lifecycle);
    g_test_add_data_func("/libvirt/godwit/vdpa-attach-detach", &godwit,
                         test_vdpa);
    g_test_add_data_func("/libvirt/godwit/shutdown-through-acpi", &godwit,
                         test_shutdown);
    g_test_add_func("/libvirt/godwit/no-kvm-start-fails-clearly", test_no_kvm);
    g_test_add_data_func("/libvirt/qemu/start-suspend-resume-destroy", &qemu,
                         test_lifecycle);
    g_test_add_data_func("/libvirt/qemu/shutdown-through-acpi", &qemu,
                         test_shutdown);
    return g_test_run();
}
