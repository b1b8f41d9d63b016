/*
 * libvirt migrates a godwit VM: two private libvirtds on this machine
 * (tests/e2e/libvirt/ns.sh, each in its own namespace, with its own
 * host UUID so that libvirt sees two hosts), the domain running the
 * test guest's `dirty rounds=0` workload on the first; `virsh migrate
 * --live` to the second, whose libvirt starts godwit with -incoming
 * defer and drives migrate-incoming, while the first's drives migrate
 * and query-migrate.  The guest must go on passing rounds on the
 * destination, and the source's domain end shut off.  The same steps
 * run with QEMU as the emulator, so the test asks nothing of godwit that
 * QEMU would not do.
 *
 * Skips, saying why, without root, libvirtd or /dev/kvm.
 */
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include "libvirt-ns.h"

#define CMDLINE "dirty pages=16 rounds=0"

static bool
start_host(Ns *ns, const char *uuid, char **why)
{
    g_autofree char *env = g_strdup_printf("GW_HOST_UUID=%s", uuid);

    ns->in = ns->out = -1;
    ns->dir = g_dir_make_tmp("gw-libvirt-XXXXXX", NULL);
    return ns_start(ns, env, why);
}

typedef struct {
    const char *emulator; /* NULL: godwit */
    const char *cpu;      /* the domain's <cpu>, or "" */
} Variant;

static void
test_migrate(gconstpointer data)
{
    const Variant *v = data;
    Ns a = {.in = -1, .out = -1}, b = {.in = -1, .out = -1};
    g_autofree char *why = NULL, *xml = NULL, *path = NULL, *log = NULL;
    g_autofree char *out = NULL;
    unsigned before;
    int status;

    if (!have_tools(&why, true) ||
        (v->emulator && !g_file_test(v->emulator, G_FILE_TEST_EXISTS))) {
        g_test_skip(why ? why : "the emulator is not installed");
        return;
    }
    if (!start_host(&a, "8f3c1d7e-0000-4000-8000-00000000000a", &why) ||
        !start_host(&b, "8f3c1d7e-0000-4000-8000-00000000000b", &why)) {
        g_test_skip(why);
        teardown(&a);
        teardown(&b);
        return;
    }
    xml = domain_xml(a.dir, v->emulator ? v->emulator : g_getenv("GODWIT_BIN"),
                     v->cpu, CMDLINE);
    path = g_build_filename(a.dir, "dom.xml", NULL);
    log = g_build_filename(a.dir, "serial.log", NULL);
    g_assert_true(g_file_set_contents(path, xml, -1, NULL));
    g_free(ns_run(&a, &status, "virsh define %s && virsh start gw1", path));
    g_assert_cmpint(status, ==, 0);
    g_assert_true(wait_log(log, "GUEST dirty round=", 2));
    out = ns_run(&a, &status,
                 "virsh migrate --live --verbose gw1 "
                 "'qemu+unix:///system?socket=%s/root/run/libvirt/"
                 "libvirt-sock'",
                 b.dir);
    g_assert_cmpint(status, ==, 0);
    assert_state(&a, "shut off");
    assert_state(&b, "running");
    before = log_count(log, "GUEST dirty round=");
    g_assert_true(wait_log(log, "GUEST dirty round=", before + 3));
    g_assert_cmpuint(log_count(log, "GUEST fail"), ==, 0);
    g_free(must_run(&b, "virsh destroy gw1"));
    teardown(&a);
    teardown(&b);
}

int
main(int argc, char **argv)
{
    /* As in test-libvirt.c: QEMU's -cpu host fails on PVM hosts. */
    static const Variant godwit = {NULL, "<cpu mode='host-passthrough'/>"};
    static const Variant qemu = {"/usr/bin/qemu-system-x86_64", ""};

    g_test_init(&argc, &argv, NULL);
    g_test_add_data_func("/libvirt/godwit/migrate-live-between-two-libvirtds",
                         &godwit, test_migrate);
    g_test_add_data_func("/libvirt/qemu/migrate-live-between-two-libvirtds",
                         &qemu, test_migrate);
    return g_test_run();
}
