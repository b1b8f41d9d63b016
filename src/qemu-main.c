/*
 * godwit run with QEMU's command line (include/godwit/qemu-cli.h): what
 * libvirt's QEMU driver execs.  Beyond main.c's run: -daemonize (the
 * parent exits 0 once the monitor listens, 1 if the child fails before),
 * -pidfile, the monitor on an inherited socket and -add-fd's fd sets.
 *
 * Threads: the main thread; the fork happens before any other exists.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib-unix.h>
#include <godwit/log.h>
#include <godwit/qemu-cli.h>
#include <godwit/qmp-probe.h>
#include <godwit/qmp.h>
#include <godwit/sandbox.h>
#include <godwit/util.h>
#include <godwit/vm.h>

/*
 * -daemonize: returns in the child with *ready the pipe to write to once
 * it is ready; the parent never returns (exit 0 when the child said so,
 * 1 when it died or failed first, having printed why on stderr).
 */
static bool
daemonize(int *ready, GError **errp)
{
    int p[2];
    pid_t pid;
    char c;

    if (pipe2(p, O_CLOEXEC) < 0) {
        return gw_error_errno(errp, errno, "-daemonize: pipe");
    }
    pid = fork();
    if (pid < 0) {
        return gw_error_errno(errp, errno, "-daemonize: fork");
    }
    if (pid > 0) {
        close(p[1]);
        _exit(read(p[0], &c, 1) == 1 ? 0 : 1);
    }
    close(p[0]);
    setsid();
    *ready = p[1];
    return true;
}

/* The child is serving: let the parent go, and leave the terminal. */
static void
detach(int ready)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);

    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        close(null);
    }
    if (write(ready, "1", 1) != 1) {
        g_debug("-daemonize: the parent is gone");
    }
    close(ready);
}

static bool
write_pidfile(const char *path, GError **errp)
{
    g_autofree char *pid = g_strdup_printf("%d\n", (int)getpid());

    if (!g_file_set_contents_full(path, pid, -1, G_FILE_SET_CONTENTS_NONE, 0644,
                                  errp)) {
        g_prefix_error(errp, "-pidfile: ");
        return false;
    }
    return true;
}

/* The monitor and the fd sets go to the QMP server, which owns them. */
static GwQmpServer *
make_qmp(GwQemuCli *q, GError **errp)
{
    g_autoptr(GwQmpServer) s = gw_qmp_server_new(q->cfg->qmp_path, errp);
    int fd = q->cfg->qmp_fd;

    if (!s) {
        return NULL;
    }
    q->cfg->qmp_fd = -1;
    if (fd >= 0 && !gw_qmp_server_listen_fd(s, fd, errp)) {
        return NULL;
    }
    for (guint i = 0; i < q->fds->len; i++) {
        GwQemuFd *f = q->fds->pdata[i];
        gw_qmp_server_add_fdset_fd(s, f->set, f->fd, f->opaque);
        f->fd = -1;
    }
    return g_steal_pointer(&s);
}

/* What a signal needs; `vm` is NULL until the VM exists (main.c's). */
typedef struct {
    GwVm *vm;
} App;

static gboolean
on_signal(gpointer data)
{
    App *app = data;

    if (app->vm) {
        gw_vm_shutdown(app->vm, false, "host-signal");
    }
    return G_SOURCE_CONTINUE;
}

static bool
build(GwQemuCli *q, GMainLoop *loop, GwVm **vm, GwQmpServer **qmp,
      GwQmpProbe **probe, GError **errp)
{
    if (q->cfg->qmp_fd < 0 && !q->cfg->qmp_path && !q->cfg->kernel) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "nothing to do: give -kernel to run a guest, or a "
                    "monitor (-qmp, -mon) to control an empty machine");
        return false;
    }
    *vm = gw_vm_new(q->cfg, loop, errp);
    if (!*vm || !(*qmp = make_qmp(q, errp))) {
        return false;
    }
    gw_vm_qmp_register(*vm, *qmp);
    *probe = gw_qmp_probe_new(*vm, q);
    gw_qmp_probe_register(*probe, *qmp);
    return (!q->pidfile || write_pidfile(q->pidfile, errp)) &&
           gw_vm_start(*vm, errp);
}

static int
run(GwQemuCli *q, int ready)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    g_autoptr(GwQmpProbe) probe = NULL; /* freed after the server */
    g_autoptr(GwVm) vm = NULL;
    g_autoptr(GwQmpServer) qmp = NULL;
    App app = {NULL};
    guint sigs[2] = {g_unix_signal_add(SIGINT, on_signal, &app),
                     g_unix_signal_add(SIGTERM, on_signal, &app)};
    int status = 1;

    if (build(q, loop, &vm, &qmp, &probe, &err)) {
        app.vm = vm;
        if (ready >= 0) {
            detach(ready);
        }
        g_main_loop_run(loop);
        status = gw_vm_exit_status(vm);
    } else {
        fprintf(stderr, "godwit: %s\n", err->message);
    }
    g_source_remove(sigs[0]);
    g_source_remove(sigs[1]);
    return status;
}

int
gw_qemu_main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GwQemuCli) q = gw_qemu_cli_parse(argc, argv, &err);
    int ready = -1, status;

    if (!q) {
        fprintf(stderr, "godwit: %s\n", err->message);
        return 1;
    }
    gw_log_setup(q->cfg->log_level);
    if (q->daemonize && !daemonize(&ready, &err)) {
        fprintf(stderr, "godwit: %s\n", err->message);
        return 1;
    }
    /* After the fork (the pid the filter names is the child's), before
     * anything is made, so every thread starts under it. */
    if (!gw_sandbox_enter(GW_SANDBOX_MAIN, q->cfg->seccomp, &err)) {
        fprintf(stderr, "godwit: %s\n", err->message);
        return 1;
    }
    status = run(q, ready);
    if (q->pidfile) {
        unlink(q->pidfile); /* last: the socket and devices are gone */
    }
    return status;
}
