/*
 * libFuzzer target for QMP: framing, the JSON streamer, the schema's
 * validation and every command's handler, as a client reaches them.
 * Each input is what one client sends over a socket to a fresh
 * machine-less VM (`godwit --qmp`, QEMU's `-machine none`) with its
 * simulator registry; the server must neither crash nor hang nor leak.
 * Bit 0 of the first byte sends qmp_capabilities first, so mutations
 * of a command get past negotiation.
 *
 *   build-fuzz/tests/fuzz/fuzz-qmp -dict=tests/fuzz/qmp.dict \
 *       tests/fuzz/corpus/qmp
 */
#include <godwit/config.h>
#include <godwit/qmp.h>
#include <godwit/vm.h>
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static GwConfig *cfg;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char *args[] = {"godwit", "--qmp", "unused", NULL};

    fuzz_runtime_dir();
    cfg = gw_config_parse_argv(3, args, NULL);
    g_assert(cfg);
    return 0;
}

static const char negotiate[] = "{\"execute\":\"qmp_capabilities\"}\n";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    g_autoptr(GwVm) vm = gw_vm_new(cfg, loop, NULL);
    g_autoptr(GwQmpServer) s = gw_qmp_server_new(NULL, NULL);
    int sv[2];

    if (len < 1) {
        return 0;
    }
    g_assert(vm && s);
    gw_vm_qmp_register(vm, s);
    g_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    gw_qmp_server_add_client(s, sv[1]);
    if (data[0] & 1) {
        fuzz_send(sv[0], negotiate, strlen(negotiate), NULL, NULL, NULL);
    }
    fuzz_send(sv[0], data + 1, len - 1, NULL, NULL, NULL);
    fuzz_finish(sv[0]);
    return 0;
}
