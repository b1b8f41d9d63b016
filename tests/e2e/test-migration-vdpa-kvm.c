/*
 * Live migration of the real test guest on KVM with a vDPA disk
 * attached: its `blk rounds=0` workload rewrites three regions of the
 * disk with a new pattern every round and reads each back, forever, so
 * a request lost or run twice across the switch-over, a ring index off
 * by one, or a page the device wrote during pre-copy (on shadow
 * virtqueues) that did not travel shows as `GUEST fail` or as rounds
 * that stop.  The disk is a file both "hosts" share (backing=), as a
 * real vDPA disk sits on shared storage.  And the failure matrix with
 * that I/O running: afterwards the source's guest goes on passing
 * rounds (its device back in passthrough) and a second migration
 * succeeds.  The same for a vDPA NIC (`net frames=0`: frames to the MAC
 * the guest set over the control queue loop back, each checked, on the
 * destination too).  And the disk behind the virtio-iommu (iommu=on,
 * `iommu-blk rounds=0`: the guest maps its buffers at IOVAs that are not
 * their physical addresses, the shadow virtqueues translate them during
 * pre-copy, and the destination must have the IOMMU's state to go on;
 * and a cut link and a corrupted stream with it, the source going on).
 * Skipped visibly without /dev/kvm.
 */
#include <signal.h>
#include <sys/wait.h>
#include <glib/gstdio.h>
#include "guest-vm.h"
#include "mig-proxy.h"
#include "spawn-util.h"

typedef struct {
    char *dir;  /* the shared storage and the migration socket */
    char *disk; /* the vDPA disk's backing file, on "both hosts" */
    char *uri;  /* unix:DIR/mig.sock */
    char *sim;  /* --vdpa-sim's value */
    const char *extra[5];
    const char *cmdline; /* the guest's workload */
    const char *round;   /* the line it prints as it goes on passing */
} Hosts;

typedef enum {
    KIND_BLK,       /* a vDPA disk */
    KIND_NET,       /* a vDPA NIC */
    KIND_IOMMU_BLK, /* a vDPA disk behind the virtio-iommu */
} Kind;

/* Shared storage and a vDPA disk (behind the IOMMU for KIND_IOMMU_BLK),
 * or a vDPA NIC whose MAC the guest sets over the control queue: frames
 * to that MAC loop back only if the destination's device has it too. */
static void
hosts_init(Hosts *h, Kind kind)
{
    static const char *const vdpa[] = {
        [KIND_BLK] = "path=@DIR@/vdpa/d0,id=disk0",
        [KIND_NET] = "path=@DIR@/vdpa/d0,id=nic0,num_queues=3",
        [KIND_IOMMU_BLK] = "path=@DIR@/vdpa/d0,id=disk0,iommu=on",
    };
    static const char *const cmdline[] = {
        [KIND_BLK] = "blk rounds=0 sectors=8",
        [KIND_NET] = "net frames=0 every=20 mac=52:54:00:00:00:07",
        [KIND_IOMMU_BLK] = "iommu-blk rounds=0 sectors=8",
    };
    bool net = kind == KIND_NET;

    h->dir = g_dir_make_tmp("godwit-migvdpa-XXXXXX", NULL);
    h->disk = g_build_filename(h->dir, "disk.img", NULL);
    h->uri = g_strdup_printf("unix:%s/mig.sock", h->dir);
    h->sim = net ? g_strdup("name=d0,mgmtdev=vdpasim_net,mac=52:54:00:12:34:56")
                 : g_strdup_printf("name=d0,mgmtdev=vdpasim_blk,capacity=1M,"
                                   "backing=%s",
                                   h->disk);
    h->extra[0] = "--vdpa-sim";
    h->extra[1] = h->sim;
    h->extra[2] = "--vdpa";
    h->extra[3] = vdpa[kind];
    h->extra[4] = NULL;
    h->cmdline = cmdline[kind];
    h->round = net ? "GUEST net 00:01.0 frames=" : "GUEST blk 00:01.0 round=";
}

static void
hosts_free(Hosts *h)
{
    g_assert_true(rm_tree(h->dir));
    g_free(h->dir);
    g_free(h->disk);
    g_free(h->uri);
    g_free(h->sim);
}

static void
vdpa_vm_start(Vm *vm, Hosts *h, const char *incoming)
{
    vm->cmdline = h->cmdline;
    vm->extra = h->extra;
    vm_start(vm, "boot=1", incoming);
}

static void
migrate(Vm *src, Hosts *h)
{
    g_autofree char *args = g_strdup_printf("{\"uri\": \"%s\"}", h->uri);

    qmp_void(src, "migrate", args);
}

static void
set_cap(Vm *vm, const char *cap, bool on)
{
    g_autofree char *args = g_strdup_printf(
        "{\"capabilities\": [{\"capability\": \"%s\", \"state\": %s}]}", cap,
        on ? "true" : "false");

    qmp_void(vm, "migrate-set-capabilities", args);
}

/* Whether every enabled queue of the VM's vDPA disk runs on a shadow
 * ring (`want`) or on the guest's own. */
static void
assert_shadowed(Vm *vm, bool want)
{
    g_autoptr(json_object) r =
        qmp(vm, "x-godwit-query-vdpa-vrings", "{\"id\": \"disk0\"}");
    guint enabled = 0;

    for (size_t i = 0; i < json_object_array_length(r); i++) {
        json_object *q = json_object_array_get_idx(r, i);
        if (json_object_get_boolean(json_object_object_get(q, "enabled"))) {
            enabled++;
            g_assert_cmpint(
                json_object_get_boolean(json_object_object_get(q, "shadowed")),
                ==, want);
        }
    }
    g_assert_cmpuint(enabled, >, 0);
}

/* The source's guest goes on passing rounds, unharmed. */
static void
check_source_runs_on(Vm *src, Hosts *h)
{
    g_autofree char *st = field(src, "query-status", "status");

    g_assert_cmpstr(st, ==, "running");
    wait_lines(src->serial, h->round, count(src->serial, h->round) + 3);
}

/* After a completed migration: the source in postmigrate and silent, the
 * destination's guest passing rounds on the same disk and rings. */
static void
check_moved_with_device(Vm *src, Vm *dst, Hosts *h)
{
    g_autofree char *st = field(src, "query-status", "status");
    g_autoptr(json_object) info = qmp(src, "query-migrate", NULL);
    guint before = count(src->serial, h->round);
    json_object *downtime;

    g_assert_cmpstr(st, ==, "postmigrate");
    g_assert_true(json_object_object_get_ex(info, "downtime", &downtime));
    g_test_message("downtime %" G_GINT64_FORMAT " ms",
                   json_object_get_int64(downtime));
    wait_state(dst, "running");
    wait_lines(dst->serial, h->round, 3);
    g_assert_cmpuint(count(dst->serial, "GUEST fail"), ==, 0);
    g_assert_cmpuint(count(src->serial, h->round), ==, before);
}

/* A second migration of the source, to a new destination, succeeds. */
static void
migrate_again(Vm *src, Hosts *h)
{
    Vm again = {0};

    vdpa_vm_start(&again, h, h->uri);
    migrate(src, h);
    wait_completed(src);
    check_moved_with_device(src, &again, h);
    vm_stop(&again);
}

static void
kill_vm(Vm *vm)
{
    int status;

    kill(vm->pid, SIGKILL);
    g_assert_cmpint(waitpid(vm->pid, &status, 0), ==, vm->pid);
    g_spawn_close_pid(vm->pid);
    vm_forget(vm);
}

/* x-godwit-query-iommu of the destination is the source's. */
static void
assert_iommu_moved(Vm *src, Vm *dst)
{
    g_autoptr(json_object) a = qmp(src, "x-godwit-query-iommu", NULL);
    g_autoptr(json_object) b = qmp(dst, "x-godwit-query-iommu", NULL);

    g_test_message("source's IOMMU: %s", json_object_to_json_string(a));
    g_assert_cmpuint(
        json_object_array_length(json_object_object_get(a, "domains")), >, 0);
    g_assert_cmpstr(json_object_to_json_string(b), ==,
                    json_object_to_json_string(a));
}

static void
migrate_live(Kind kind)
{
    Hosts h;
    Vm src = {0}, dst = {0};

    if (!kvm_usable()) {
        return;
    }
    hosts_init(&h, kind);
    vdpa_vm_start(&src, &h, NULL);
    if (kind == KIND_IOMMU_BLK) {
        /* its buffers at IOVAs 4 GiB above their physical addresses (the
         * guest prints the line in pieces: wait for its end) */
        wait_lines(src.serial, " dma-offset=0x100000000 maps=", 1);
        g_assert_cmpuint(count(src.serial, "GUEST iommu 00:01.0 endpoint=0x8 "),
                         ==, 1);
    }
    wait_lines(src.serial, h.round, 3);
    vdpa_vm_start(&dst, &h, h.uri);
    events_on(&src);
    if (kind == KIND_IOMMU_BLK) {
        /* Rounds on shadow virtqueues, which translate the IOVAs. */
        qmp_void(&src, "migrate-set-parameters", "{\"max-bandwidth\": 65536}");
        migrate(&src, &h);
        wait_migration(&src, "active");
        assert_shadowed(&src, true);
        wait_lines(src.serial, h.round, count(src.serial, h.round) + 2);
        qmp_void(&src, "migrate-set-parameters", "{\"max-bandwidth\": 0}");
    } else {
        migrate(&src, &h);
    }
    wait_completed(&src);
    check_moved_with_device(&src, &dst, &h);
    if (kind == KIND_IOMMU_BLK) {
        assert_iommu_moved(&src, &dst);
    }
    vm_stop(&src);
    vm_stop(&dst);
    hosts_free(&h);
}

static void
test_blk(void)
{
    migrate_live(KIND_BLK);
}

static void
test_net(void)
{
    migrate_live(KIND_NET);
}

static void
test_iommu_blk(void)
{
    migrate_live(KIND_IOMMU_BLK);
}

/* How a migration is made to fail. */
typedef enum {
    FAIL_KILL,    /* the destination killed */
    FAIL_CANCEL,  /* migrate_cancel */
    FAIL_CUT,     /* the link cut: the destination's stream ends early */
    FAIL_CORRUPT, /* one byte of the stream flipped on the way */
} Fault;

static void
inject(Vm *src, Vm *dst, Proxy *p, Fault f)
{
    switch (f) {
    case FAIL_KILL:
        kill_vm(dst);
        break;
    case FAIL_CANCEL:
        qmp_void(src, "migrate_cancel", NULL);
        break;
    case FAIL_CUT:
        g_atomic_int_set(&p->fault, LINK_CUT);
        break;
    case FAIL_CORRUPT:
        g_atomic_int_set(&p->fault, LINK_CORRUPT);
        break;
    }
}

/* After inject(): the source's migration ends failed (cancelled), and a
 * destination that saw a damaged stream refuses it and exits 1. */
static void
await_failure(Vm *src, Vm *dst, Fault f)
{
    int status;

    if (f == FAIL_CANCEL) {
        wait_migration(src, "cancelled");
        vm_stop(dst);
        return;
    }
    wait_migration(src, "failed");
    if (f == FAIL_KILL) {
        return;
    }
    g_assert_cmpint(waitpid(dst->pid, &status, 0), ==, dst->pid);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 1);
    g_spawn_close_pid(dst->pid);
    vm_forget(dst);
}

/*
 * A migration that fails with the disk's I/O running: at the switch-over
 * (the source paused, its device suspended: pre-switchover) or during
 * pre-copy (the device on shadow virtqueues, the bandwidth so low that
 * pre-copy lasts), by any Fault; the damaged-link cases go through a
 * proxy (mig-proxy.c).  The source's device goes back to the guest's
 * rings and resumes, the guest passes rounds, and a second migration
 * succeeds.  The disk `kind` is KIND_BLK or KIND_IOMMU_BLK.
 */
static void
fail_migration(Kind kind, bool at_switchover, Fault f)
{
    Hosts h;
    Vm src = {0}, dst = {0};
    Proxy p = {0};
    bool proxied = f == FAIL_CUT || f == FAIL_CORRUPT;
    g_autofree char *to = NULL, *via = NULL;

    if (!kvm_usable()) {
        return;
    }
    hosts_init(&h, kind);
    vdpa_vm_start(&src, &h, NULL);
    wait_lines(src.serial, h.round, 2);
    vdpa_vm_start(&dst, &h, h.uri);
    if (proxied) {
        to = g_build_filename(h.dir, "mig.sock", NULL);
        proxy_start(&p, h.dir, to);
        via = g_strdup_printf("{\"uri\": \"unix:%s\"}", p.path);
    }
    if (at_switchover) {
        set_cap(&src, "pause-before-switchover", true);
    } else {
        qmp_void(&src, "migrate-set-parameters", "{\"max-bandwidth\": 65536}");
    }
    if (proxied) {
        qmp_void(&src, "migrate", via);
    } else {
        migrate(&src, &h);
    }
    if (at_switchover) {
        wait_migration(&src, "pre-switchover");
    } else {
        wait_migration(&src, "active");
        /* Rounds on shadow virtqueues: the relay carries the disk's I/O. */
        assert_shadowed(&src, true);
        wait_lines(src.serial, h.round, count(src.serial, h.round) + 2);
    }
    inject(&src, &dst, &p, f);
    if (at_switchover && f != FAIL_CANCEL) {
        qmp_void(&src, "migrate-continue", "{\"state\": \"pre-switchover\"}");
    }
    await_failure(&src, &dst, f);
    if (proxied) {
        proxy_stop(&p);
    }
    assert_shadowed(&src, false); /* back on the guest's rings */
    check_source_runs_on(&src, &h);
    if (at_switchover) {
        set_cap(&src, "pause-before-switchover", false);
    } else {
        qmp_void(&src, "migrate-set-parameters", "{\"max-bandwidth\": 0}");
    }
    migrate_again(&src, &h);
    vm_stop(&src);
    hosts_free(&h);
}

typedef struct {
    const char *path;
    bool at_switchover;
    Fault fault;
    Kind kind;
} FailCase;

static void
test_fail(gconstpointer data)
{
    const FailCase *c = data;

    fail_migration(c->kind, c->at_switchover, c->fault);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/migration/vdpa-kvm/blk-rounds-go-on", test_blk);
    g_test_add_func("/migration/vdpa-kvm/net-frames-go-on-mac-kept", test_net);
    g_test_add_func("/migration/vdpa-kvm/iommu-blk-rounds-go-on-state-moved",
                    test_iommu_blk);
    static const FailCase fails[] = {
        {"destination-killed-at-switch-over", true, FAIL_KILL},
        {"destination-killed-in-pre-copy", false, FAIL_KILL},
        {"cancelled-in-pre-copy", false, FAIL_CANCEL},
        {"cancelled-at-switch-over", true, FAIL_CANCEL},
        {"link-cut-in-pre-copy", false, FAIL_CUT},
        {"link-cut-at-switch-over", true, FAIL_CUT},
        {"stream-corrupt-in-pre-copy", false, FAIL_CORRUPT},
        {"stream-corrupt-at-switch-over", true, FAIL_CORRUPT},
        {"iommu-blk/link-cut-in-pre-copy", false, FAIL_CUT, KIND_IOMMU_BLK},
        {"iommu-blk/stream-corrupt-at-switch-over", true, FAIL_CORRUPT,
         KIND_IOMMU_BLK},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(fails); i++) {
        g_autofree char *path =
            g_strdup_printf("/migration/vdpa-kvm/fail/%s", fails[i].path);
        g_test_add_data_func(path, &fails[i], test_fail);
    }
    return g_test_run();
}
