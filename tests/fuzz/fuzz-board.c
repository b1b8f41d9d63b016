/*
 * libFuzzer target for the qtest protocol and the whole board behind
 * it: PCI configuration (0xCF8/0xCFC and ECAM), BARs, virtio-pci's
 * common/notify/ISR/device configuration, MSI-X, the vDPA device model,
 * the simulators' data path on their worker threads, ACPI and hotplug
 * ports — everything a guest reaches.  Each input runs on a fresh
 * `godwit --qtest` board (in process) with a vdpasim_blk and a
 * vdpasim_net device plugged, as tests/e2e/test-vdpa-qtest.c starts it.
 *
 * The input is lines: one starting with '{' that is a JSON object is a
 * QMP command (sent on a negotiated QMP connection, its reply waited
 * for), any other is a qtest command; qtest lines are sent in runs and
 * their replies (one per line) waited for, so QMP and qtest interleave
 * as written.  Seeds: sessions of the e2e tests (GW_TEST_TRACE_DIR).
 *
 *   build-fuzz/tests/fuzz/fuzz-board -dict=tests/fuzz/board.dict \
 *       tests/fuzz/corpus/board
 */
#include <sys/un.h>
#include <json-c/json.h>
#include <godwit/config.h>
#include <godwit/qmp.h>
#include <godwit/util.h>
#include <godwit/vm.h>
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static GwConfig *cfg;
static char *qtest_path;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = fuzz_runtime_dir();
    g_autofree char *blk = g_strdup_printf("path=%s/vdpa/blk0,id=disk0", dir);
    g_autofree char *net = g_strdup_printf("path=%s/vdpa/net0,id=nic0", dir);
    char *args[] = {"godwit",
                    "--qtest",
                    NULL,
                    "--memory",
                    "size=16M",
                    "--serial",
                    "off",
                    "--platform", /* segment 1 empty: hotplug reaches it */
                    "num_pci_segments=2",
                    "--vdpa-sim",
                    "name=blk0,mgmtdev=vdpasim_blk,capacity=64K",
                    "--vdpa-sim",
                    "name=net0,mgmtdev=vdpasim_net,mac=52:54:00:12:34:56",
                    "--vdpa",
                    blk,
                    "--vdpa",
                    net,
                    NULL};
    g_autoptr(GError) err = NULL;

    qtest_path = g_build_filename(dir, "qtest.sock", NULL);
    args[2] = qtest_path;
    cfg = gw_config_parse_argv(G_N_ELEMENTS(args) - 1, args, &err);
    g_assert_no_error(err);
    return 0;
}

typedef struct {
    int qt, qmp;
    GString *qt_in, *qmp_in;
    unsigned qmp_replies; /* replies to wait for, the greeting included */
} Session;

/* Counts complete reply lines, IRQ notices aside. */
static bool
has_replies(GString *in, void *opaque)
{
    unsigned want = GPOINTER_TO_UINT(opaque), got = 0;

    for (char *p = in->str, *nl; (nl = strchr(p, '\n')); p = nl + 1) {
        got += !g_str_has_prefix(p, "IRQ ");
    }
    return got >= want;
}

/* Every QMP reply (events aside) waited for has arrived. */
static bool
has_qmp_replies(GString *in, void *opaque)
{
    unsigned want = GPOINTER_TO_UINT(opaque), got = 0;

    for (char *p = in->str, *nl; (nl = strstr(p, "\r\n")); p = nl + 2) {
        got += !g_str_has_prefix(p, "{\"timestamp\"");
    }
    return got >= want;
}

/* One JSON object: exactly one reply. */
static bool
send_qmp(Session *s, const char *line, size_t len)
{
    s->qmp_replies++;
    return fuzz_send(s->qmp, line, len, s->qmp_in, has_qmp_replies,
                     GUINT_TO_POINTER(s->qmp_replies));
}

/* Sends a run of `n` qtest lines and waits for their `n` replies. */
static bool
send_qtest(Session *s, const char *text, size_t len, unsigned n)
{
    g_string_truncate(s->qt_in, 0);
    return fuzz_send(s->qt, text, len, s->qt_in, has_replies,
                     GUINT_TO_POINTER(n));
}

static bool
is_qmp_line(const char *line, size_t len)
{
    g_autoptr(json_object) v = NULL;
    g_autofree char *text = NULL;

    if (!len || line[0] != '{') {
        return false;
    }
    text = g_strndup(line, len);
    v = json_tokener_parse(text);
    return v && json_object_is_type(v, json_type_object);
}

static void
run_lines(Session *s, const char *text, size_t len)
{
    size_t run = 0, pos = 0;
    unsigned n = 0;

    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) + 1 : len;
        if (is_qmp_line(text + pos, end - pos)) {
            if (n && !send_qtest(s, text + run, pos - run, n)) {
                return;
            }
            if (!send_qmp(s, text + pos, end - pos)) {
                return;
            }
            run = end;
            n = 0;
        } else {
            n += nl != NULL;
        }
        pos = end;
    }
    if (run < len) {
        send_qtest(s, text + run, len - run, n);
    }
}

static int
connect_qtest(void)
{
    int fd = gw_unix_connect(qtest_path);

    g_assert(fd >= 0);
    return fd;
}

static const char negotiate[] = "{\"execute\":\"qmp_capabilities\"}\n";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    g_autoptr(GError) err = NULL;
    g_autoptr(GwVm) vm = gw_vm_new(cfg, loop, &err);
    g_autoptr(GwQmpServer) qmp = gw_qmp_server_new(NULL, NULL);
    g_autoptr(GString) qt_in = g_string_new(NULL);
    g_autoptr(GString) qmp_in = g_string_new(NULL);
    Session s = {.qt_in = qt_in, .qmp_in = qmp_in, .qmp_replies = 1};
    int sv[2];

    g_assert_no_error(err);
    g_assert(gw_vm_start(vm, &err));
    gw_vm_qmp_register(vm, qmp);
    g_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    gw_qmp_server_add_client(qmp, sv[1]);
    s.qmp = sv[0];
    s.qt = connect_qtest();
    send_qmp(&s, negotiate, strlen(negotiate));
    run_lines(&s, (const char *)data, len);
    fuzz_finish(s.qt);
    fuzz_finish(s.qmp);
    return 0;
}
