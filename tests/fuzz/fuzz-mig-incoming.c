/*
 * libFuzzer target for the destination's whole loader: each input is a
 * migration stream handed, as `migrate-incoming fd:`, to a fresh
 * `godwit --qtest --incoming defer` board (in process) with a vdpasim_blk
 * and a vdpasim_net function — the receiver thread, the manifest check,
 * RAM batches written into guest RAM, and every device section loaded
 * into the real devices with their post_load hooks.  The input must
 * never crash godwit, and a stream the board refuses must never leave
 * it running.  Seed: a real stream of the same board saved with
 * `migrate file:` (tests/fuzz/corpus/mig-incoming).
 *
 *   build-fuzz/tests/fuzz/fuzz-mig-incoming tests/fuzz/corpus/mig-incoming
 */
#include <sys/mman.h>
#include <godwit/config.h>
#include <godwit/migration.h>
#include <godwit/util.h>
#include <godwit/vm.h>
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static GwConfig *cfg;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = fuzz_runtime_dir();
    g_autofree char *blk = g_strdup_printf("path=%s/vdpa/blk0,id=disk0", dir);
    g_autofree char *net = g_strdup_printf("path=%s/vdpa/net0,id=nic0", dir);
    g_autofree char *qt = g_build_filename(dir, "qtest.sock", NULL);
    g_autofree char *disk = g_build_filename(dir, "disk.img", NULL);
    g_autofree char *sim = g_strdup_printf(
        "name=blk0,mgmtdev=vdpasim_blk,capacity=64K,backing=%s", disk);
    char *args[] = {"godwit",
                    "--qtest",
                    qt,
                    "--memory",
                    "size=4M",
                    "--serial",
                    "off",
                    "--vdpa-sim",
                    sim,
                    "--vdpa-sim",
                    "name=net0,mgmtdev=vdpasim_net,mac=52:54:00:12:34:56",
                    "--vdpa",
                    blk,
                    "--vdpa",
                    net,
                    "--incoming",
                    "defer",
                    NULL};
    g_autoptr(GError) err = NULL;

    cfg = gw_config_parse_argv(G_N_ELEMENTS(args) - 1, args, &err);
    g_assert_no_error(err);
    return 0;
}

/* The stream as a file descriptor the receiver reads to its end. */
static int
stream_fd(const uint8_t *data, size_t len)
{
    int fd = memfd_create("stream", MFD_CLOEXEC);

    g_assert(fd >= 0);
    g_assert(write(fd, data, len) == (ssize_t)len);
    g_assert(lseek(fd, 0, SEEK_SET) == 0);
    return fd;
}

/* Until the migration ended (or the VM shut down), bounded. */
static void
run_until_done(GwVm *vm, GMainLoop *loop)
{
    gint64 deadline = g_get_monotonic_time() + FUZZ_WAIT_US;

    for (;;) {
        GwMigStatus s = gw_mig_status(gw_vm_migration(vm));
        if (s == GW_MIG_COMPLETED || s == GW_MIG_FAILED ||
            gw_vm_run_state(vm) == GW_RUN_SHUTDOWN) {
            return;
        }
        g_assert(g_get_monotonic_time() < deadline); /* a stuck loader */
        g_main_context_iteration(NULL, FALSE);
        g_usleep(200);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    g_autoptr(GError) err = NULL;
    g_autoptr(GwVm) vm = gw_vm_new(cfg, loop, &err);
    GwMigStatus s;

    g_assert(vm);
    g_assert(gw_vm_start(vm, &err));
    g_assert(gw_mig_incoming(gw_vm_migration(vm), "fd:stream",
                             stream_fd(data, len), &err));
    run_until_done(vm, loop);
    s = gw_mig_status(gw_vm_migration(vm));
    /* Refused: never running.  Loaded: running (or paused, as the
     * source was). */
    if (s != GW_MIG_COMPLETED) {
        g_assert(gw_vm_run_state(vm) != GW_RUN_RUNNING);
    }
    while (g_main_context_iteration(NULL, FALSE)) {
    }
    return 0;
}
