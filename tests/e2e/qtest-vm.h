/*
 * A real godwit process for end-to-end tests without /dev/kvm: the
 * qtest accelerator (the test plays the CPU over `qt`) and its QMP
 * socket (`c`, negotiated), in a fresh runtime directory.
 */
#pragma once

#include <glib.h>
#include <json-c/json.h>
#include <godwit/qmp-client.h>
#include "qtest-client.h"

#define GW_TEST_VM_WAIT_MS 10000 /* every wait is bounded by this */

typedef struct {
    char *dir, *qmp_sock, *qt_sock;
    GPid pid;
    GwQmpConn *c;
    GwQt *qt;
    int trace_fd; /* with GW_TEST_TRACE_DIR: the session, for seeds; else
                   * -1 (0 in a GwTestVm built by hand: none either) */
} GwTestVm;

/*
 * Starts `godwit --qtest --qmp --memory size=64M --serial off` plus
 * `args` (NULL-terminated, may be NULL), where "@DIR@" in an argument
 * stands for the runtime directory, and connects to both sockets.
 */
void gw_test_vm_start(GwTestVm *vm, const char *const *args);
/*
 * With GW_TEST_TRACE_DIR set, every qtest line and QMP command (one JSON
 * text a line) a GwTestVm sends is appended to a file in that directory,
 * one per VM: the seeds of tests/fuzz/corpus/board (scripts/fuzz.sh).
 */

/*
 * For a godwit that has already ended (the test reaped its pid): closes
 * the connections and removes its runtime directory with what is left.
 */
void gw_test_vm_release(GwTestVm *vm);

/* SIGTERM; godwit must exit 0 and leave its runtime directory empty. */
void gw_test_vm_stop(GwTestVm *vm);

/* Sends a command (`args_json` may be NULL, `fd` -1); its whole reply. */
json_object *gw_test_vm_qmp(GwTestVm *vm, const char *cmd,
                            const char *args_json, int fd);

/* A command that must succeed: its "return" (caller owns). */
json_object *gw_test_vm_qmp_ok(GwTestVm *vm, const char *cmd,
                               const char *args_json);

/* A command that must fail: its error "class" and "desc" (new strings). */
void gw_test_vm_qmp_err(GwTestVm *vm, const char *cmd, const char *args_json,
                        char **class_out, char **desc_out);

/*
 * A path for a test program's disk image: disk.img in a new temporary
 * directory named PREFIX-XXXXXX; the image (if the test made one) and
 * the directory go when the program exits.  Once per program; the
 * string is the helper's.
 */
const char *gw_test_disk_path(const char *prefix);
