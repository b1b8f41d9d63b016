/*
 * godwit's entry point: parse and validate the whole command line before
 * creating anything, then create the VM and run the main loop until it
 * shuts down.
 *
 * Threads: this is the main thread; it owns the GLib main loop.
 */
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <glib-unix.h>
#include <godwit/config.h>
#include <godwit/log.h>
#include <godwit/qemu-cli.h>
#include <godwit/qmp-probe.h>
#include <godwit/qmp.h>
#include <godwit/sandbox.h>
#include <godwit/util.h>
#include <godwit/vm.h>

#ifdef GW_DEBUG_HOOKS
#include "debug-hooks.h"
#endif

#ifndef GODWIT_VERSION
#define GODWIT_VERSION "unknown"
#endif

static int
print_config(const GwConfig *cfg)
{
    g_autoptr(json_object) j = gw_config_to_json(cfg);
    puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY |
                                               JSON_C_TO_STRING_NOSLASHESCAPE));
    return 0;
}

/* What a signal needs; `vm` is NULL until the VM exists. */
typedef struct {
    GwVm *vm;
} App;

/* Dispatched by the main loop only, so never while the VM is half made. */
static gboolean
on_signal(gpointer data)
{
    App *app = data;

    if (app->vm) {
        gw_vm_shutdown(app->vm, false, "host-signal");
    }
    return G_SOURCE_CONTINUE;
}

static int
run(const GwConfig *cfg)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    g_autoptr(GwQmpProbe) probe = NULL; /* freed after the server */
    g_autoptr(GwVm) vm = NULL;
    g_autoptr(GwQmpServer) qmp = NULL;
    App app = {NULL};
    /* First: a SIGTERM while the VM is being built must not kill us
     * before we can clean up; it waits for the loop. */
    guint sigs[2] = {g_unix_signal_add(SIGINT, on_signal, &app),
                     g_unix_signal_add(SIGTERM, on_signal, &app)};
    int status = 1;

    if (!cfg->kernel && !cfg->qmp_path) {
        fprintf(stderr, "godwit: nothing to do: give --kernel to run a "
                        "guest, or --qmp to control an empty machine\n");
    } else if (!(vm = gw_vm_new(cfg, loop, &err)) ||
               (cfg->qmp_path &&
                !(qmp = gw_qmp_server_new(cfg->qmp_path, &err))) ||
               !gw_vm_start(vm, &err)) {
        fprintf(stderr, "godwit: %s\n", err->message);
    } else {
        app.vm = vm;
        if (qmp) {
            gw_vm_qmp_register(vm, qmp);
            probe = gw_qmp_probe_new(vm, NULL);
            gw_qmp_probe_register(probe, qmp);
#ifdef GW_DEBUG_HOOKS
            gw_debug_hooks_register(qmp);
#endif
        }
        g_main_loop_run(loop);
        status = gw_vm_exit_status(vm);
    }
    g_source_remove(sigs[0]);
    g_source_remove(sigs[1]);
    return status;
}

int
main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GwConfig) cfg = NULL;

    /* GLib writes UTF-8 names to the terminal only if it knows the
     * terminal takes UTF-8.  Numbers stay "C": json-c and our own
     * output must not turn 1.5 into 1,5. */
    setlocale(LC_ALL, "");
    setlocale(LC_NUMERIC, "C");
    signal(SIGPIPE, SIG_IGN);
    if (gw_qemu_cli_detect(argc, argv)) {
        return gw_qemu_main(argc, argv);
    }
    cfg = gw_config_parse_argv(argc, argv, &err);
    if (!cfg) {
        fprintf(stderr, "godwit: %s\n", err->message);
        return 1;
    }
    if (cfg->help) {
        g_autofree char *help = gw_config_help();
        fputs(help, stdout);
        return 0;
    }
    if (cfg->version) {
        printf("godwit %s\n", GODWIT_VERSION);
        return 0;
    }
    gw_log_setup(cfg->log_level);
    if (cfg->print_config) {
        return print_config(cfg);
    }
    /* Before anything is made, so every thread starts under it. */
    if (!gw_sandbox_enter(GW_SANDBOX_MAIN, cfg->seccomp, &err)) {
        fprintf(stderr, "godwit: %s\n", err->message);
        return 1;
    }
    return run(cfg);
}
