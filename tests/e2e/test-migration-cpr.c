/*
 * Same-host migration by memfd handover (migrate-set-parameters mode
 * cpr-transfer) between real godwit processes under --qtest: the test
 * writes guest RAM on the source, the destination must show it byte for
 * byte without a page being sent, through the very same pages (a write
 * on one side is seen on the other; the same inode).  Every refusal is
 * checked by its words, and every failure before COMMIT — a refused
 * request, a destination in the wrong mode, a hostile source handing
 * over a wrong fd, the destination killed holding the memfd — must leave
 * the source running with its RAM as it was.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <glib/gstdio.h>
#include <godwit/mig-stream.h>
#include <godwit/util.h>
#include "mig-util.h"
#include "qtest-vm.h"
#include "qvirtio.h"

#define T     GW_TEST_VM_WAIT_MS
#define PAGE  4096
#define NPAGE 64
#define RAM   (64ull << 20) /* gw_test_vm_start's --memory */

static uint64_t
page_addr(unsigned i)
{
    return 0x100000ull + (uint64_t)i * 0xf3000; /* 1 MiB .. 61 MiB */
}

static void
write_patterns(GwQt *qt, unsigned seed)
{
    uint8_t buf[PAGE];

    for (unsigned i = 0; i < NPAGE; i++) {
        for (unsigned k = 0; k < PAGE; k++) {
            buf[k] = (uint8_t)(seed * 131 + i * 17 + k * 7 + (k >> 8));
        }
        gw_qt_memwrite(qt, page_addr(i), buf, PAGE);
    }
}

/* ---- guest RAM as the kernel sees it ---- */

typedef struct {
    uint64_t start, end, inode;
    char perms[5];
} RamMap;

/* The memfd mapping named godwit-ram in /proc/PID/maps. */
static RamMap
ram_map(GPid pid)
{
    g_autofree char *maps = NULL, *path = g_strdup_printf("/proc/%d/maps", pid);
    g_auto(GStrv) lines = NULL;
    RamMap m = {0};

    g_assert_true(g_file_get_contents(path, &maps, NULL, NULL));
    lines = g_strsplit(maps, "\n", -1);
    for (guint i = 0; lines[i]; i++) {
        if (strstr(lines[i], "memfd:godwit-ram")) {
            g_assert_cmpint(
                sscanf(lines[i], "%" SCNx64 "-%" SCNx64 " %4s %*s %*s %" SCNu64,
                       &m.start, &m.end, m.perms, &m.inode),
                ==, 4);
            return m;
        }
    }
    g_error("no guest RAM mapping in %s", path);
}

/* All of a godwit's guest RAM, through /proc/PID/mem. */
static uint8_t *
whole_ram(GPid pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/mem", pid);
    RamMap m = ram_map(pid);
    uint8_t *buf;
    int fd;

    g_assert_cmpuint(m.end - m.start, ==, RAM);
    buf = g_malloc(RAM);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, buf, RAM, (off_t)m.start), ==, (ssize_t)RAM);
    close(fd);
    return buf;
}

static void
assert_ram_is(GPid pid, const uint8_t *want)
{
    g_autofree uint8_t *got = whole_ram(pid);

    if (memcmp(got, want, RAM)) {
        gsize off = 0;
        while (got[off] == want[off]) {
            off++;
        }
        g_error("guest RAM differs at offset 0x%" G_GSIZE_MODIFIER "x", off);
    }
}

/* ---- QMP ---- */

static void
set_mode(GwTestVm *vm, const char *mode)
{
    g_autofree char *args = g_strdup_printf("{\"mode\": \"%s\"}", mode);
    g_autoptr(json_object) r = NULL;

    qmp_void(vm, "migrate-set-parameters", args);
    r = gw_test_vm_qmp_ok(vm, "query-migrate-parameters", NULL);
    g_assert_cmpstr(status_of(r, "mode"), ==, mode);
}

static void
start_vm(GwTestVm *vm, const char *memory)
{
    const char *args[] = {memory ? "--memory" : NULL, memory, NULL};

    gw_test_vm_start(vm, args);
}

static char *
dst_uri(GwTestVm *dst)
{
    return g_strdup_printf("{\"uri\": \"unix:%s/mig.sock\"}", dst->dir);
}

/* A destination listening on its runtime directory's mig.sock in
 * `mode`. */
static void
start_dst(GwTestVm *dst, const char *mode)
{
    const char *args[] = {"--incoming", "defer", NULL};

    g_autofree char *uri = NULL;

    gw_test_vm_start(dst, args);
    set_mode(dst, mode);
    uri = dst_uri(dst);
    qmp_void(dst, "migrate-incoming", uri);
}

/* The source failed with `words` in its reason, runs, and its RAM is
 * `before`; then it can still write its RAM. */
static void
assert_source_intact(GwTestVm *src, const char *words, const uint8_t *before)
{
    g_autoptr(json_object) r = poll_status(src, "failed");
    g_autofree char *state = run_state(src);
    uint8_t buf[PAGE] = {0x5a}, back[PAGE];

    g_test_message("source: %s", status_of(r, "error-desc"));
    g_assert_nonnull(strstr(status_of(r, "error-desc"), words));
    g_assert_cmpstr(state, ==, "running");
    assert_ram_is(src->pid, before);
    gw_qt_memwrite(src->qt, page_addr(0), buf, PAGE);
    gw_qt_memread(src->qt, page_addr(0), back, PAGE);
    g_assert_cmpmem(buf, PAGE, back, PAGE);
}

/* ---- the handover ---- */

static void
test_handover(void)
{
    GwTestVm src, dst;
    g_autofree char *uri = NULL, *s = NULL, *d = NULL;
    g_autofree uint8_t *before = NULL;
    g_autoptr(json_object) r = NULL;
    uint8_t buf[PAGE], back[PAGE];
    json_object *ram;
    RamMap ms, md;

    start_vm(&src, NULL);
    write_patterns(src.qt, 3);
    gw_qt_outb(src.qt, 0x3ff, 0x5a); /* serial scratch: state that travels */
    before = whole_ram(src.pid);
    start_dst(&dst, "cpr-transfer");
    set_mode(&src, "cpr-transfer");
    uri = dst_uri(&dst);
    qmp_void(&src, "migrate", uri);
    r = poll_status(&src, "completed");
    json_object_put(poll_status(&dst, "completed"));
    s = run_state(&src);
    d = run_state(&dst);
    g_assert_cmpstr(s, ==, "postmigrate");
    g_assert_cmpstr(d, ==, "running");

    /* No page went over the socket: device state only. */
    ram = json_object_object_get(r, "ram");
    g_assert_cmpint(
        json_object_get_int64(json_object_object_get(ram, "normal")), ==, 0);
    g_assert_cmpint(
        json_object_get_int64(json_object_object_get(ram, "transferred")), <,
        64 << 10);
    g_assert_cmpint(json_object_get_int64(json_object_object_get(ram, "total")),
                    ==, (int64_t)RAM);
    g_assert_cmpint(gw_qt_inb(dst.qt, 0x3ff), ==, 0x5a);

    /* Byte for byte, and the same pages: one inode, writes seen across. */
    assert_ram_is(dst.pid, before);
    assert_ram_is(src.pid, before);
    ms = ram_map(src.pid);
    md = ram_map(dst.pid);
    g_assert_cmpuint(ms.inode, ==, md.inode);
    g_assert_cmpstr(md.perms, ==, "rw-s"); /* the destination owns it */
    g_assert_cmpstr(ms.perms, ==, "r--s"); /* the source gave it up */
    memset(buf, 0xc3, PAGE);
    gw_qt_memwrite(dst.qt, page_addr(5), buf, PAGE);
    gw_qt_memread(src.qt, page_addr(5), back, PAGE);
    g_assert_cmpmem(buf, PAGE, back, PAGE);

    /* The source may not run, reset or migrate the guest again. */
    for (int i = 0; i < 3; i++) {
        static const char *const cmds[] = {"cont", "system_reset", "migrate"};
        g_autofree char *cls = NULL, *why = NULL;
        gw_test_vm_qmp_err(&src, cmds[i], i == 2 ? uri : NULL, &cls, &why);
        g_assert_nonnull(strstr(why, "handed over to another process"));
    }
    gw_test_vm_stop(&src);
    /* The destination runs on after the source is gone. */
    gw_qt_memread(dst.qt, page_addr(5), back, PAGE);
    g_assert_cmpmem(buf, PAGE, back, PAGE);
    gw_test_vm_stop(&dst);
}

/* Over fd: with both ends of a unix socketpair (getfd on each side). */
static void
test_fd(void)
{
    const char *args[] = {"--incoming", "defer", NULL};
    GwTestVm src, dst;
    g_autofree uint8_t *before = NULL;
    int sv[2];

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==,
                    0);
    start_vm(&src, NULL);
    write_patterns(src.qt, 13);
    before = whole_ram(src.pid);
    gw_test_vm_start(&dst, args);
    json_object_put(
        gw_test_vm_qmp(&src, "getfd", "{\"fdname\": \"mig\"}", sv[0]));
    json_object_put(
        gw_test_vm_qmp(&dst, "getfd", "{\"fdname\": \"mig\"}", sv[1]));
    close(sv[0]);
    close(sv[1]);
    set_mode(&dst, "cpr-transfer");
    set_mode(&src, "cpr-transfer");
    qmp_void(&dst, "migrate-incoming", "{\"uri\": \"fd:mig\"}");
    qmp_void(&src, "migrate", "{\"uri\": \"fd:mig\"}");
    json_object_put(poll_status(&src, "completed"));
    json_object_put(poll_status(&dst, "completed"));
    assert_ram_is(dst.pid, before);
    g_assert_cmpuint(ram_map(src.pid).inode, ==, ram_map(dst.pid).inode);
    gw_test_vm_stop(&src);
    gw_test_vm_stop(&dst);
}

/* fd: that is a pipe: no SCM_RIGHTS, refused at migrate. */
static void
test_fd_pipe(void)
{
    GwTestVm src;
    g_autofree char *cls = NULL, *why = NULL, *state = NULL;
    int p[2];

    g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
    start_vm(&src, NULL);
    json_object_put(
        gw_test_vm_qmp(&src, "getfd", "{\"fdname\": \"mig\"}", p[1]));
    close(p[0]);
    close(p[1]);
    set_mode(&src, "cpr-transfer");
    gw_test_vm_qmp_err(&src, "migrate", "{\"uri\": \"fd:mig\"}", &cls, &why);
    g_assert_nonnull(strstr(why, "'fd:mig' is not one"));
    state = run_state(&src);
    g_assert_cmpstr(state, ==, "running");
    gw_test_vm_stop(&src);
}

/* ---- a vDPA disk across the handover ---- */

static char *sim_arg;
#define VDPA "--vdpa=path=@DIR@/vdpa/d0,id=disk0"
#define SLOT 1

static void
start_vdpa_vm(GwTestVm *vm, bool incoming)
{
    const char *args[] = {sim_arg, VDPA, incoming ? "--incoming" : NULL,
                          "defer", NULL};
    g_autofree char *uri = NULL;

    gw_test_vm_start(vm, args);
    if (incoming) {
        set_mode(vm, "cpr-transfer");
        uri = dst_uri(vm);
        qmp_void(vm, "migrate-incoming", uri);
    }
}

/*
 * The destination's device DMAs into the guest RAM it was handed: a disk
 * the guest's driver started on the source (restored running, its rings
 * where they were) or one it never started (set up on the destination),
 * reads and writes sectors through guest RAM buffers after the handover.
 */
static void
test_vdpa(gconstpointer data)
{
    bool running = GPOINTER_TO_INT(data);
    GwTestVm src, dst;
    g_autoptr(GError) err = NULL;
    g_autofree char *uri = NULL;
    GwQVirtio *vd = NULL;

    start_vdpa_vm(&src, false);
    if (running) {
        vd = gw_qvirtio_init(src.qt, SLOT, &err);
        g_assert_no_error(err);
        g_assert_true(gw_qvirtio_blk_workload(vd, &err));
        g_assert_no_error(err);
    }
    start_vdpa_vm(&dst, true);
    set_mode(&src, "cpr-transfer");
    uri = dst_uri(&dst);
    qmp_void(&src, "migrate", uri);
    json_object_put(poll_status(&src, "completed"));
    json_object_put(poll_status(&dst, "completed"));
    if (running) {
        gw_qvirtio_set_qt(vd, dst.qt);
    } else {
        vd = gw_qvirtio_init(dst.qt, SLOT, &err);
        g_assert_no_error(err);
    }
    g_assert_true(gw_qvirtio_blk_workload(vd, &err));
    g_assert_no_error(err);
    gw_qvirtio_free(vd);
    gw_test_vm_stop(&src);
    gw_test_vm_stop(&dst);
}

/* ---- refused before anything is sent ---- */

typedef struct {
    const char *name;
    const char *memory;  /* the source's --memory, or NULL */
    const char *caps;    /* capabilities to set first, or NULL */
    const char *uri_fmt; /* %s: the destination's runtime directory */
    const char *words;   /* in the error */
} Refusal;

static const Refusal refusals[] = {
    {"tcp", NULL, NULL, "{\"uri\": \"tcp:127.0.0.1:1\"}",
     "hands guest RAM over a unix socket"},
    {"file", NULL, NULL, "{\"uri\": \"file:%s/state\"}",
     "hands guest RAM over a unix socket"},
    {"multifd", NULL,
     "{\"capabilities\": [{\"capability\": \"multifd\", \"state\": true}]}",
     "{\"uri\": \"unix:%s/mig.sock\"}", "turn the multifd capability off"},
    {"shared-off", "size=64M,shared=off", NULL,
     "{\"uri\": \"unix:%s/mig.sock\"}", "shared=off"},
};

static void
test_refused(gconstpointer data)
{
    const Refusal *c = data;
    GwTestVm src;
    g_autofree char *uri = NULL, *cls = NULL, *why = NULL, *state = NULL;
    g_autoptr(json_object) r = NULL;

    start_vm(&src, c->memory);
    write_patterns(src.qt, 9);
    if (c->caps) {
        qmp_void(&src, "migrate-set-capabilities", c->caps);
    }
    set_mode(&src, "cpr-transfer");
    uri = g_strdup_printf(c->uri_fmt, src.dir);
    gw_test_vm_qmp_err(&src, "migrate", uri, &cls, &why);
    g_test_message("%s: %s", c->name, why);
    g_assert_nonnull(strstr(why, c->words));
    r = gw_test_vm_qmp_ok(&src, "query-migrate", NULL);
    g_assert_false(json_object_object_get_ex(r, "status", NULL) &&
                   g_str_equal(status_of(r, "status"), "setup"));
    state = run_state(&src);
    g_assert_cmpstr(state, ==, "running");
    gw_test_vm_stop(&src);
}

static void
test_mode_values(void)
{
    GwTestVm vm;
    g_autofree char *cls = NULL, *why = NULL, *cls2 = NULL, *why2 = NULL;

    start_vm(&vm, NULL);
    gw_test_vm_qmp_err(&vm, "migrate-set-parameters",
                       "{\"mode\": \"cpr-reboot\"}", &cls, &why);
    g_assert_nonnull(strstr(why, "not supported by godwit"));
    gw_test_vm_qmp_err(&vm, "migrate-set-parameters", "{\"mode\": \"bogus\"}",
                       &cls2, &why2);
    g_assert_nonnull(strstr(why2, "does not accept value 'bogus'"));
    set_mode(&vm, "cpr-transfer");
    set_mode(&vm, "normal");
    gw_test_vm_stop(&vm);
}

/* The destination refuses what its mode does not expect. */
static void
mode_mismatch(const char *src_mode, const char *dst_mode, const char *words)
{
    GwTestVm src, dst;
    g_autofree char *uri = NULL;
    g_autofree uint8_t *before = NULL;

    start_vm(&src, NULL);
    write_patterns(src.qt, 5);
    before = whole_ram(src.pid);
    start_dst(&dst, dst_mode);
    set_mode(&src, src_mode);
    uri = dst_uri(&dst);
    qmp_void(&src, "migrate", uri);
    assert_source_intact(&src, words, before);
    reap(&dst, 1);
    gw_test_vm_stop(&src);
}

static void
test_dst_normal(void)
{
    mode_mismatch("cpr-transfer", "normal",
                  "set migrate-set-parameters mode cpr-transfer on the "
                  "destination too");
}

static void
test_src_normal(void)
{
    mode_mismatch("normal", "cpr-transfer",
                  "set mode cpr-transfer on the source too");
}

static void
test_dst_tcp(void)
{
    const char *args[] = {"--incoming", "defer", NULL};
    GwTestVm dst;
    g_autofree char *cls = NULL, *why = NULL;

    gw_test_vm_start(&dst, args);
    set_mode(&dst, "cpr-transfer");
    gw_test_vm_qmp_err(&dst, "migrate-incoming",
                       "{\"uri\": \"tcp:127.0.0.1:0\"}", &cls, &why);
    g_assert_nonnull(strstr(why, "hands guest RAM over a unix socket"));
    gw_test_vm_stop(&dst);
}

/* ---- a hostile source: the wrong fd ---- */

/* The manifest of start_vm's board (src/machine-state.c). */
#define MANIFEST                                                               \
    "{\"memory-size\": 67108864, \"memory-regions\": [{\"gpa\": 0, "           \
    "\"size\": 67108864}], \"accel\": \"qtest\", \"vcpus\": 1, "               \
    "\"devices\": []}"

typedef enum {
    FD_PIPE,
    FD_SMALL,
    FD_UNSEALED,
    FD_WRITE_SEALED,
    FD_READ_ONLY,
    FD_NONE,
    FD_TWO,
    FD_LAYOUT,
} BadFd;

static int
memfd(uint64_t size, int seals)
{
    int fd = memfd_create("godwit-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, (off_t)size), ==, 0);
    g_assert_cmpint(fcntl(fd, F_ADD_SEALS, seals), ==, 0);
    return fd;
}

/* The CPR_RAM payload of docs/migration.md for start_vm's board. */
static GBytes *
layout(uint64_t offset)
{
    g_autoptr(GwMigBuf) b = gw_mig_buf_new();

    gw_mig_buf_put_u64(b, RAM);
    gw_mig_buf_put_u32(b, 1);
    gw_mig_buf_put_u64(b, 0);
    gw_mig_buf_put_u64(b, RAM);
    gw_mig_buf_put_u64(b, offset);
    return gw_mig_buf_free_to_bytes(g_steal_pointer(&b));
}

/* The fd(s) a case hands over (-1 ends the list). */
static void
bad_fds(BadFd kind, int fds[2])
{
    int good = F_SEAL_SHRINK | F_SEAL_GROW, p[2];
    g_autofree char *path = NULL;

    fds[1] = -1;
    switch (kind) {
    case FD_PIPE:
        g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
        close(p[1]);
        fds[0] = p[0];
        return;
    case FD_SMALL:
        fds[0] = memfd(RAM / 2, good);
        return;
    case FD_UNSEALED:
        fds[0] = memfd(RAM, 0);
        return;
    case FD_WRITE_SEALED:
        fds[0] = memfd(RAM, good | F_SEAL_WRITE);
        return;
    case FD_READ_ONLY:
        fds[1] = memfd(RAM, good);
        path = g_strdup_printf("/proc/self/fd/%d", fds[1]);
        fds[0] = open(path, O_RDONLY | O_CLOEXEC);
        g_assert_cmpint(fds[0], >=, 0);
        close(fds[1]);
        fds[1] = -1;
        return;
    case FD_NONE:
        fds[0] = -1;
        return;
    case FD_TWO:
        fds[0] = memfd(RAM, good);
        fds[1] = memfd(RAM, good);
        return;
    case FD_LAYOUT:
        fds[0] = memfd(RAM, good);
        return;
    }
}

/* The destination's answer to the handover: its RP_ERROR text. */
static char *
rp_error(GwMigReader *r)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) p = NULL;
    uint32_t type = 0;
    gsize len;
    const char *text;

    g_assert_true(gw_mig_read(r, &type, &p, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(type, ==, GW_MIG_REC_RP_ERROR);
    text = g_bytes_get_data(p, &len);
    return g_strndup(text, len);
}

/* Plays the source: manifest, then a CPR_RAM record with `kind`'s fds. */
static char *
hand_over(GwTestVm *dst, BadFd kind)
{
    g_autofree char *path = g_strdup_printf("%s/mig.sock", dst->dir);
    g_autoptr(GwMigWriter) w = NULL;
    g_autoptr(GwMigReader) r = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) payload = layout(kind == FD_LAYOUT ? 4096 : 0);
    g_autoptr(GBytes) ready = NULL;
    int sock = gw_unix_connect(path), fds[2];
    uint32_t type = 0;
    gsize len;
    const void *p = g_bytes_get_data(payload, &len);
    char *why;

    g_assert_cmpint(sock, >=, 0);
    w = gw_mig_writer_new(sock);
    r = gw_mig_reader_new(sock);
    g_assert_true(gw_mig_writer_header(w, &err));
    g_assert_true(
        gw_mig_write(w, GW_MIG_REC_MANIFEST, MANIFEST, strlen(MANIFEST), &err));
    g_assert_true(gw_mig_reader_header(r, &err));
    g_assert_true(gw_mig_read(r, &type, &ready, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(type, ==, GW_MIG_REC_RP_READY);
    bad_fds(kind, fds);
    if (fds[0] < 0) {
        g_assert_true(gw_mig_write(w, GW_MIG_REC_CPR_RAM, p, len, &err));
    } else {
        g_assert_true(gw_mig_write_fds(w, GW_MIG_REC_CPR_RAM, p, len, fds,
                                       fds[1] >= 0 ? 2 : 1, &err));
    }
    g_assert_no_error(err);
    why = rp_error(r);
    for (int i = 0; i < 2; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
    gw_mig_writer_free(g_steal_pointer(&w));
    gw_mig_reader_free(g_steal_pointer(&r));
    close(sock);
    return why;
}

typedef struct {
    const char *name;
    BadFd kind;
    const char *words;
} BadFdCase;

static const BadFdCase bad_fd_cases[] = {
    {"not-memfd", FD_PIPE, "not a memfd"},
    {"wrong-size", FD_SMALL, "33554432 bytes, this VM has 67108864"},
    {"unsealed", FD_UNSEALED, "not sealed against shrinking and growing"},
    {"write-sealed", FD_WRITE_SEALED, "sealed against writing"},
    {"read-only", FD_READ_ONLY, "not open for reading and writing"},
    {"no-fd", FD_NONE, "CPR_RAM came with 0 file descriptors"},
    {"two-fds", FD_TWO, "CPR_RAM came with 2 file descriptors"},
    {"layout", FD_LAYOUT, "RAM regions are not this VM's"},
};

static void
test_bad_fd(gconstpointer data)
{
    const BadFdCase *c = data;
    GwTestVm dst;
    g_autofree char *why = NULL;

    start_dst(&dst, "cpr-transfer");
    why = hand_over(&dst, c->kind);
    g_test_message("%s: %s", c->name, why);
    g_assert_nonnull(strstr(why, c->words));
    reap(&dst, 1);
}

/* ---- the destination killed while it holds the memfd ---- */

/*
 * Between source and destination: passes everything on, fds included,
 * but of the destination's return path only its header and RP_READY, so
 * the source waits for RP_OK while the destination, loaded, waits for
 * COMMIT.  When one side closes, it closes the other.
 */
typedef struct {
    int listen_fd, dst_fd, src_fd;
    GThread *thread;
} Holder;

static bool
forward(int from, int to, size_t *budget)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * 4)];
    } u;
    char buf[65536];
    struct iovec iov = {buf, sizeof(buf)};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = u.buf,
                         .msg_controllen = sizeof(u.buf)};
    ssize_t n = recvmsg(from, &msg, MSG_CMSG_CLOEXEC);

    if (n <= 0) {
        return false;
    }
    if (budget) {
        n = (ssize_t)MIN((size_t)n, *budget);
        *budget -= (size_t)n;
        msg.msg_controllen = 0;
    }
    iov.iov_len = (size_t)n;
    if (n && sendmsg(to, &msg, MSG_NOSIGNAL) != n) {
        return false;
    }
    for (struct cmsghdr *c = msg.msg_controllen ? CMSG_FIRSTHDR(&msg) : NULL; c;
         c = CMSG_NXTHDR(&msg, c)) {
        for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            close(fd); /* passed on: the test's copy goes */
        }
    }
    return true;
}

static gpointer
holder_run(gpointer data)
{
    Holder *h = data;
    /* the return path's stream header and the RP_READY record */
    size_t budget = GW_MIG_STREAM_HEADER + GW_MIG_RECORD_HEADER;

    h->src_fd = accept4(h->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    g_assert_cmpint(h->src_fd, >=, 0);
    for (;;) {
        struct pollfd p[2] = {{h->src_fd, POLLIN, 0}, {h->dst_fd, POLLIN, 0}};
        if (poll(p, 2, T) <= 0 ||
            (p[0].revents && !forward(h->src_fd, h->dst_fd, NULL)) ||
            (p[1].revents && !forward(h->dst_fd, h->src_fd, &budget))) {
            break;
        }
    }
    shutdown(h->src_fd, SHUT_RDWR);
    shutdown(h->dst_fd, SHUT_RDWR);
    return NULL;
}

static void
test_kill_dst(void)
{
    GwTestVm src, dst;
    Holder h = {0};
    g_autofree char *at = NULL, *to = NULL, *uri = NULL;
    g_autofree uint8_t *before = NULL;
    int status;
    RamMap ms, md;

    start_vm(&src, NULL);
    write_patterns(src.qt, 11);
    before = whole_ram(src.pid);
    start_dst(&dst, "cpr-transfer");
    at = g_strdup_printf("%s/hold.sock", src.dir);
    to = g_strdup_printf("%s/mig.sock", dst.dir);
    h.listen_fd = gw_unix_listen("test", at, 1, NULL);
    g_assert_cmpint(h.listen_fd, >=, 0);
    h.dst_fd = gw_unix_connect(to);
    g_assert_cmpint(h.dst_fd, >=, 0);
    h.thread = g_thread_new("holder", holder_run, &h);
    set_mode(&src, "cpr-transfer");
    uri = g_strdup_printf("{\"uri\": \"unix:%s\"}", at);
    qmp_void(&src, "migrate", uri);

    /* Loaded, waiting for COMMIT: the source's pages, mapped read-only. */
    json_object_put(poll_status(&dst, "device"));
    md = ram_map(dst.pid);
    ms = ram_map(src.pid);
    g_assert_cmpuint(md.inode, ==, ms.inode);
    g_assert_cmpstr(md.perms, ==, "r--s");
    assert_ram_is(dst.pid, before);

    kill(dst.pid, SIGKILL);
    g_assert_cmpint(waitpid(dst.pid, &status, 0), ==, dst.pid);
    g_assert_true(WIFSIGNALED(status));
    gw_test_vm_release(&dst);
    g_thread_join(h.thread);
    assert_source_intact(&src, "", before);
    ms = ram_map(src.pid);
    g_assert_cmpstr(ms.perms, ==, "rw-s");
    close(h.src_fd);
    close(h.dst_fd);
    close(h.listen_fd);
    g_unlink(at);

    /* And it can still hand over, to a fresh destination. */
    start_dst(&dst, "cpr-transfer");
    g_free(uri);
    uri = dst_uri(&dst);
    qmp_void(&src, "migrate", uri);
    json_object_put(poll_status(&src, "completed"));
    json_object_put(poll_status(&dst, "completed"));
    g_free(before);
    before = whole_ram(src.pid);
    assert_ram_is(dst.pid, before);
    gw_test_vm_stop(&src);
    gw_test_vm_stop(&dst);
}

int
main(int argc, char **argv)
{
    const char *disk;

    g_test_init(&argc, &argv, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* the disk both processes share (a disk in memory blocks migration) */
    disk = gw_test_disk_path("godwit-cpr-disk");
    sim_arg = g_strdup_printf(
        "--vdpa-sim=name=d0,mgmtdev=vdpasim_blk,capacity=1M,backing=%s", disk);
    g_test_add_func("/migration/cpr/handover", test_handover);
    g_test_add_func("/migration/cpr/mode-values", test_mode_values);
    g_test_add_data_func("/migration/cpr/vdpa-blk/running-disk-goes-on",
                         GINT_TO_POINTER(1), test_vdpa);
    g_test_add_data_func("/migration/cpr/vdpa-blk/started-after-handover",
                         GINT_TO_POINTER(0), test_vdpa);
    for (size_t i = 0; i < G_N_ELEMENTS(refusals); i++) {
        g_autofree char *path =
            g_strdup_printf("/migration/cpr/refused/%s", refusals[i].name);
        g_test_add_data_func(path, &refusals[i], test_refused);
    }
    g_test_add_func("/migration/cpr/refused/destination-tcp", test_dst_tcp);
    g_test_add_func("/migration/cpr/refused/fd-pipe", test_fd_pipe);
    g_test_add_func("/migration/cpr/fd/getfd-socket-pair", test_fd);
    g_test_add_func("/migration/cpr/refused/destination-normal",
                    test_dst_normal);
    g_test_add_func("/migration/cpr/refused/source-normal", test_src_normal);
    for (size_t i = 0; i < G_N_ELEMENTS(bad_fd_cases); i++) {
        g_autofree char *path = g_strdup_printf(
            "/migration/cpr/hostile-source/%s", bad_fd_cases[i].name);
        g_test_add_data_func(path, &bad_fd_cases[i], test_bad_fd);
    }
    g_test_add_func("/migration/cpr/fail/kill-destination-before-commit",
                    test_kill_dst);
    return g_test_run();
}
