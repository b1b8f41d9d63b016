/*
 * Bounded resources, end to end on a real godwit (qtest accelerator):
 * each limit is reached through QMP as a management client would reach
 * it, answered with a clear error, and leaves the VM running and
 * serving.  Limits documented in docs/security.md.
 */
#include <string.h>
#include <sys/socket.h>
#include <godwit/qmp.h>
#include <godwit/util.h>
#include <godwit/vdpa-sim.h>
#include "qtest-vm.h"

static void
assert_running(GwTestVm *vm)
{
    g_autoptr(json_object) r = gw_test_vm_qmp_ok(vm, "query-status", NULL);

    g_assert_cmpstr(json_object_get_string(json_object_object_get(r, "status")),
                    ==, "running");
}

static char *
sim_add(GwTestVm *vm, unsigned i)
{
    g_autofree char *args =
        g_strdup_printf("{\"name\":\"s%u\",\"mgmtdev\":\"vdpasim_net\"}", i);
    g_autoptr(json_object) r =
        gw_test_vm_qmp_ok(vm, "x-godwit-vdpa-sim-add", args);

    return g_strdup(json_object_get_string(json_object_object_get(r, "path")));
}

/* Slots 1–31 of bus 0 take a device each; the 32nd is refused. */
static void
test_hotplug_slots(void)
{
    GwTestVm vm = {0};
    g_autofree char *class = NULL, *desc = NULL;
    g_autoptr(json_object) pci = NULL;

    gw_test_vm_start(&vm, NULL);
    for (unsigned i = 0; i <= 31; i++) {
        g_autofree char *path = sim_add(&vm, i);
        g_autofree char *args =
            g_strdup_printf("{\"path\":\"%s\",\"id\":\"d%u\"}", path, i);
        if (i < 31) {
            json_object_put(gw_test_vm_qmp_ok(&vm, "x-godwit-vdpa-add", args));
            continue;
        }
        gw_test_vm_qmp_err(&vm, "x-godwit-vdpa-add", args, &class, &desc);
    }
    g_assert_cmpstr(class, ==, "GenericError");
    g_assert_nonnull(strstr(desc, "no free slot on bus 0"));
    assert_running(&vm);
    pci = gw_test_vm_qmp_ok(&vm, "query-pci", NULL);
    g_assert_cmpuint(json_object_array_length(json_object_object_get(
                         json_object_array_get_idx(pci, 0), "devices")),
                     ==, 32); /* the host bridge and 31 devices */
    gw_test_vm_stop(&vm);
}

/* GW_VDPA_SIM_MAX_DEVICES simulated devices; one more is refused. */
static void
test_sim_devices(void)
{
    GwTestVm vm = {0};
    g_autofree char *class = NULL, *desc = NULL;

    gw_test_vm_start(&vm, NULL);
    for (unsigned i = 0; i < GW_VDPA_SIM_MAX_DEVICES; i++) {
        g_free(sim_add(&vm, i));
    }
    gw_test_vm_qmp_err(&vm, "x-godwit-vdpa-sim-add",
                       "{\"name\":\"one-more\",\"mgmtdev\":\"vdpasim_blk\"}",
                       &class, &desc);
    g_assert_cmpstr(class, ==, "GenericError");
    g_assert_nonnull(strstr(desc, "too many devices (at most 64)"));
    assert_running(&vm);
    json_object_put(
        gw_test_vm_qmp_ok(&vm, "x-godwit-vdpa-sim-del", "{\"name\":\"s0\"}"));
    g_free(sim_add(&vm, 0));
    gw_test_vm_stop(&vm);
}

/* Over the real socket: GW_QMP_MAX_CLIENTS at once (the test VM's own
 * connection is one), the next told why and closed. */
static void
test_qmp_clients(void)
{
    GwTestVm vm = {0};
    int fds[GW_QMP_MAX_CLIENTS];
    char buf[256];
    g_autoptr(GString) in = g_string_new(NULL);
    ssize_t n;

    gw_test_vm_start(&vm, NULL);
    for (unsigned i = 0; i < GW_QMP_MAX_CLIENTS; i++) {
        fds[i] = gw_unix_connect(vm.qmp_sock);
        g_assert_cmpint(fds[i], >=, 0);
    }
    /* fds[GW_QMP_MAX_CLIENTS - 1] is the 65th client */
    while ((n = read(fds[GW_QMP_MAX_CLIENTS - 1], buf, sizeof(buf))) > 0) {
        g_string_append_len(in, buf, n);
    }
    g_assert_cmpint(n, ==, 0);
    g_assert_nonnull(strstr(in->str, "too many QMP clients (at most 64)"));
    assert_running(&vm);
    for (unsigned i = 0; i < GW_QMP_MAX_CLIENTS; i++) {
        close(fds[i]);
    }
    gw_test_vm_stop(&vm);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/limits/hotplug/31-slots-then-refused",
                    test_hotplug_slots);
    g_test_add_func("/limits/vdpa-sim/64-devices-then-refused",
                    test_sim_devices);
    g_test_add_func("/limits/qmp/64-clients-then-refused", test_qmp_clients);
    return g_test_run();
}
