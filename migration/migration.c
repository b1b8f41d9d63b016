/*
 * The migration controller: state, parameters, capabilities, the QMP
 * views of them, and starting and ending jobs.  Main thread only; see
 * include/godwit/migration.h.
 */
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <godwit/machine.h>
#include <godwit/mig-transport.h>
#include <godwit/util.h>
#include <godwit/vm.h>
#include "mig-job.h"

const char *
gw_mig_status_name(GwMigStatus s)
{
    static const char *const names[] = {
        [GW_MIG_NONE] = "none",
        [GW_MIG_SETUP] = "setup",
        [GW_MIG_ACTIVE] = "active",
        [GW_MIG_PRE_SWITCHOVER] = "pre-switchover",
        [GW_MIG_DEVICE] = "device",
        [GW_MIG_COMPLETED] = "completed",
        [GW_MIG_FAILED] = "failed",
        [GW_MIG_CANCELLING] = "cancelling",
        [GW_MIG_CANCELLED] = "cancelled",
    };
    g_assert((unsigned)s < G_N_ELEMENTS(names));
    return names[s];
}

GwMig *
gw_mig_new(GwVm *vm)
{
    GwMig *mig = g_new0(GwMig, 1);

    mig->vm = vm;
    mig->events = false; /* QEMU's defaults */
    mig->return_path = false;
    mig->downtime_limit_ms = GW_MIG_DOWNTIME_LIMIT_MS;
    mig->max_bandwidth = GW_MIG_MAX_BANDWIDTH;
    mig->multifd_channels = 2;   /* QEMU's default */
    mig->multifd_zstd_level = 1; /* QEMU's default */
    mig->throttle = (GwMigThrottle){.initial = 20, .increment = 10, .max = 99};
    mig->listen_fd = -1;
    return mig;
}

static void
stop_listening(GwMig *mig)
{
    g_clear_handle_id(&mig->listen_watch, g_source_remove);
    if (mig->listen_fd >= 0) {
        close(mig->listen_fd);
        mig->listen_fd = -1;
    }
    if (mig->listen_path) {
        g_unlink(mig->listen_path);
        g_clear_pointer(&mig->listen_path, g_free);
    }
}

/* Lets the job go: its thread stops at its next step and is joined. */
static void
release_job(GwMig *mig)
{
    GwMigJob *j = g_steal_pointer(&mig->job);

    if (!j) {
        return;
    }
    if (j->thread) {
        g_atomic_int_set(&j->abandoned, 1);
        shutdown(j->fd, SHUT_RDWR);
        g_mutex_lock(&j->lock);
        g_cond_broadcast(&j->cond);
        g_mutex_unlock(&j->lock);
        g_thread_join(g_steal_pointer(&j->thread));
    }
    j->mig = NULL;
    gw_mig_job_unref(j);
}

void
gw_mig_free(GwMig *mig)
{
    if (!mig) {
        return;
    }
    release_job(mig); /* first: its thread may accept channels */
    stop_listening(mig);
    g_free(mig->error);
    g_free(mig);
}

GwMigStatus
gw_mig_status(const GwMig *mig)
{
    return mig->status;
}

GwVm *
gw_mig_vm(GwMig *mig)
{
    return mig->vm;
}

/* The one place the status changes: MIGRATION follows when asked for. */
void
gw_mig_set_status(GwMig *mig, GwMigStatus s)
{
    json_object *data;

    if (mig->status == s) {
        return;
    }
    mig->status = s;
    g_debug("migration: %s", gw_mig_status_name(s));
    if (!mig->events) {
        return;
    }
    data = json_object_new_object();
    json_object_object_add(data, "status",
                           json_object_new_string(gw_mig_status_name(s)));
    gw_vm_emit(mig->vm, "MIGRATION", data);
}

static bool
running(const GwMig *mig)
{
    switch (mig->status) {
    case GW_MIG_SETUP:
    case GW_MIG_ACTIVE:
    case GW_MIG_PRE_SWITCHOVER:
    case GW_MIG_DEVICE:
    case GW_MIG_CANCELLING:
        return true;
    default:
        return false;
    }
}

bool
gw_mig_is_running(const GwMig *mig)
{
    return running(mig);
}

bool
gw_mig_handed_over(const GwMig *mig)
{
    return mig->handed_over;
}

static bool
busy(GError **errp)
{
    g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                "There's a migration process in progress");
    return false;
}

static GwMigJob *
new_job(GwMig *mig, int fd, bool outgoing)
{
    GwMigJob *j = gw_mig_job_new(mig, fd, outgoing);

    j->cpr = mig->cpr;
    j->downtime_limit_ms = (int)mig->downtime_limit_ms;
    j->max_bandwidth = (gpointer)(uintptr_t)mig->max_bandwidth;
    j->pause_before_switchover = mig->pause_before_switchover;
    j->channels = mig->multifd ? mig->multifd_channels : 0;
    j->compression = mig->multifd_compression;
    j->zstd_level = mig->multifd_zstd_level;
    j->auto_converge = mig->auto_converge;
    j->throttle = mig->throttle;
    if (gw_vm_machine(mig->vm)) {
        j->ram_file =
            gw_mig_ram_is_file(gw_machine_memory(gw_vm_machine(mig->vm)));
    }
    return j;
}

static void
launch(GwMig *mig, GwMigJob *j)
{
    release_job(mig);
    g_clear_pointer(&mig->error, g_free);
    memset(&mig->last, 0, sizeof(mig->last));
    mig->job = j;
    gw_mig_set_status(mig, GW_MIG_SETUP);
    j->thread = g_thread_new(j->outgoing ? "gw-mig-send" : "gw-mig-recv",
                             j->outgoing ? gw_mig_out_thread : gw_mig_in_thread,
                             gw_mig_job_ref(j));
}

static int
connect_uri(const char *uri, bool *return_path, GError **errp)
{
    GwMigUri u;
    int fd;

    if (!gw_mig_uri_parse(uri, &u, errp)) {
        return -1;
    }
    if (u.kind == GW_MIG_URI_FD) {
        gw_mig_uri_clear(&u);
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "migration URI '%s': no fd of that name (getfd first)",
                    uri);
        return -1;
    }
    *return_path = gw_mig_uri_has_return_path(&u);
    fd = gw_mig_uri_connect(&u, errp);
    gw_mig_uri_clear(&u);
    return fd;
}

/* A return path needs a socket: fd: may be a pipe or a file too. */
static bool
is_socket(int fd)
{
    struct stat st;

    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

bool
gw_mig_start(GwMig *mig, const char *uri, int fd, GError **errp)
{
    g_autofree char *blocker = NULL;
    bool rp = true, given = fd >= 0;
    GwMigJob *j;

    if (running(mig)) {
        return busy(errp);
    }
    if (gw_vm_run_state(mig->vm) == GW_RUN_INMIGRATE) {
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                    "Guest is waiting for an incoming migration");
        return false;
    }
    if ((blocker = gw_vm_migration_blocker(mig->vm))) {
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY, "%s", blocker);
        return false;
    }
    if (mig->handed_over) {
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                    "The guest was handed over to another process "
                    "(cpr-transfer): there is nothing left to migrate");
        return false;
    }
    if (!gw_mig_cpr_check_source(mig, uri, fd, errp)) {
        return false; /* the caller closes fd */
    }
    if (mig->multifd && (fd >= 0 || !(g_str_has_prefix(uri, "tcp:") ||
                                      g_str_has_prefix(uri, "unix:")))) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "multifd needs a tcp: or unix: migration URI, not '%s'",
                    uri);
        return false; /* the caller closes fd */
    }
    if (given) {
        rp = is_socket(fd);
    } else if ((fd = connect_uri(uri, &rp, errp)) < 0) {
        return false;
    }
    j = new_job(mig, fd, true);
    j->return_path = rp;
    j->uri = g_strdup(uri);
    /* cpr-transfer copies nothing: no dirty tracking, no shadow rings */
    if (!j->cpr && !gw_vm_migration_begin(mig->vm, errp)) {
        if (given) {
            j->fd = -1; /* the caller's to close */
        }
        gw_mig_job_unref(j);
        return false;
    }
    launch(mig, j);
    return true;
}

/* `listen_fd`: the controller's, where multifd channels connect, or -1. */
static void
begin_incoming(GwMig *mig, int fd, bool return_path, int listen_fd)
{
    GwMigJob *j = new_job(mig, fd, false);

    j->return_path = return_path;
    j->listen_fd = listen_fd;
    mig->incoming_started = true;
    launch(mig, j);
}

static gboolean
on_source(int fd, GIOCondition cond, gpointer data)
{
    GwMig *mig = data;
    int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

    if (conn < 0) {
        return G_SOURCE_CONTINUE; /* EAGAIN, a connection that went away */
    }
    gw_mig_socket_tune(conn);
    mig->listen_watch = 0;
    if (!mig->multifd) {
        stop_listening(mig);
    }
    /* multifd: the receiver accepts the channels on the listening
     * socket, closed when the job ends */
    begin_incoming(mig, conn, true, mig->listen_fd);
    return G_SOURCE_REMOVE;
}

bool
gw_mig_incoming(GwMig *mig, const char *uri, int fd, GError **errp)
{
    GwMigUri u;
    bool listening = false;

    if (gw_vm_run_state(mig->vm) != GW_RUN_INMIGRATE || mig->incoming_started ||
        mig->listen_fd >= 0) {
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                    "The incoming migration has already been started");
        return false;
    }
    if (!gw_mig_cpr_check_incoming(mig, uri, fd, errp)) {
        return false;
    }
    if (fd >= 0) {
        begin_incoming(mig, fd, is_socket(fd), -1);
        return true;
    }
    if (!gw_mig_uri_parse(uri, &u, errp)) {
        return false;
    }
    fd = u.kind == GW_MIG_URI_FD ? -1 : gw_mig_uri_listen(&u, &listening, errp);
    if (u.kind == GW_MIG_URI_FD) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "migration URI '%s': no fd of that name", uri);
    }
    if (fd >= 0 && listening) {
        mig->listen_fd = fd;
        mig->listen_path = u.kind == GW_MIG_URI_UNIX ? g_strdup(u.path) : NULL;
        mig->listen_watch = g_unix_fd_add(fd, G_IO_IN, on_source, mig);
    } else if (fd >= 0) {
        begin_incoming(mig, fd, false, -1);
    }
    gw_mig_uri_clear(&u);
    return fd >= 0;
}

void
gw_mig_cancel(GwMig *mig)
{
    GwMigJob *j = mig->job;

    if (!running(mig) || !j || !j->outgoing) {
        return;
    }
    gw_mig_set_status(mig, GW_MIG_CANCELLING);
    g_atomic_int_set(&j->cancel, 1);
    shutdown(j->fd, SHUT_RDWR); /* unblocks the sender's I/O */
    g_mutex_lock(&j->lock);
    g_cond_broadcast(&j->cond); /* and a wait for migrate-continue */
    g_mutex_unlock(&j->lock);
}

bool
gw_mig_continue(GwMig *mig, GError **errp)
{
    GwMigJob *j = mig->job;

    if (mig->status != GW_MIG_PRE_SWITCHOVER || !j) {
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                    "Migration not in expected state: %s",
                    gw_mig_status_name(mig->status));
        return false;
    }
    g_atomic_int_set(&j->continued, 1);
    g_mutex_lock(&j->lock);
    g_cond_broadcast(&j->cond);
    g_mutex_unlock(&j->lock);
    return true;
}

/* After a cpr-transfer: the guest's RAM is the destination's now. */
static void
give_up_guest(GwMig *mig)
{
    g_autoptr(GError) err = NULL;
    GwMachine *m = gw_vm_machine(mig->vm);

    mig->handed_over = true;
    if (m && !gw_mem_give_up(gw_machine_memory(m), &err)) {
        g_warning("%s", err->message);
    }
}

/* The job's thread ended (joined): settle the state. */
void
gw_mig_job_done(GwMig *mig, GwMigJob *j, bool ok, const char *error)
{
    if (mig->job != j) {
        return;
    }
    /* The thread is joined: the link goes now, so the peer learns the
     * end at once, not when the next migration replaces this job. */
    if (j->fd >= 0) {
        close(j->fd);
        j->fd = -1;
    }
    g_mutex_lock(&j->lock);
    mig->last = j->stats;
    g_mutex_unlock(&j->lock);
    mig->total_ms = (g_get_monotonic_time() - j->start_us) / 1000;
    if (!j->outgoing) {
        stop_listening(mig); /* multifd kept it for the channels */
    }
    if (j->outgoing) {
        gw_vm_migration_end(mig->vm, ok, j->paused_vm && j->was_running);
    }
    if (ok && j->outgoing && j->cpr) {
        give_up_guest(mig);
    }
    if (ok) {
        gw_mig_set_status(mig, GW_MIG_COMPLETED);
        return;
    }
    g_free(mig->error);
    if (j->outgoing && g_atomic_int_get(&j->cancel)) {
        error = "migration cancelled"; /* whatever I/O it interrupted */
    }
    mig->error = g_strdup(error ? error : "migration failed");
    if (j->outgoing) {
        g_warning("migration failed: %s", mig->error);
        gw_mig_set_status(mig, g_atomic_int_get(&j->cancel) ? GW_MIG_CANCELLED
                                                            : GW_MIG_FAILED);
        return;
    }
    /* A destination that could not load never runs the guest. */
    g_critical("incoming migration failed: %s", mig->error);
    gw_mig_set_status(mig, GW_MIG_FAILED);
    gw_vm_exit(mig->vm, 1, "host-error");
}
