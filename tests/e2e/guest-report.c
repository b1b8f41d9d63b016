/*
 * Collects the test guest's "GUEST ..." report lines from a child's stdout
 * with a private GLib main loop and an overall deadline.
 */
#include "guest-report.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib-unix.h>
#include "spawn-util.h"

#define PREFIX "GUEST "

typedef struct {
    GuestReport *r;
    GMainLoop *loop;
    GString *partial;
    GuestReportLineFunc func;
    gpointer data;
    bool wait_exit;
    bool eof;
    bool stop;
    bool child_gone;
} Run;

static void
check_finished(Run *run)
{
    bool complete = run->r->done || run->eof;

    if (run->stop || (complete && (!run->wait_exit || run->child_gone)) ||
        (run->child_gone && run->eof)) {
        g_main_loop_quit(run->loop);
    }
}

static void
take_line(Run *run, char *line)
{
    gsize n = strlen(line);

    while (n && (line[n - 1] == '\r' || line[n - 1] == '\n')) {
        line[--n] = '\0';
    }
    if (!g_str_has_prefix(line, PREFIX) || run->r->done || run->stop) {
        return;
    }
    g_ptr_array_add(run->r->lines, g_strdup(line));
    if (g_str_equal(line, PREFIX "done")) {
        run->r->done = true;
    }
    if (run->func && !run->func(line, run->data)) {
        run->stop = true;
    }
}

static gboolean
on_stdout(gint fd, GIOCondition cond, gpointer user_data)
{
    Run *run = user_data;
    char buf[4096];
    ssize_t n;

    do {
        n = read(fd, buf, sizeof(buf));
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN) {
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0) {
        if (run->partial->len) {
            g_string_append_c(run->partial, '\n');
            g_string_append_len(run->r->output, run->partial->str,
                                run->partial->len);
            take_line(run, run->partial->str);
            g_string_truncate(run->partial, 0);
        }
        run->eof = true;
        check_finished(run);
        return G_SOURCE_REMOVE;
    }
    g_string_append_len(run->r->output, buf, n);
    g_string_append_len(run->partial, buf, n);
    char *nl;
    while ((nl = memchr(run->partial->str, '\n', run->partial->len))) {
        gsize len = nl - run->partial->str + 1;
        g_autofree char *line = g_strndup(run->partial->str, len);
        g_string_erase(run->partial, 0, len);
        take_line(run, line);
    }
    check_finished(run);
    return G_SOURCE_CONTINUE;
}

static void
on_child(GPid pid, gint status, gpointer user_data)
{
    Run *run = user_data;

    run->child_gone = true;
    run->r->exited = true;
    run->r->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    check_finished(run);
}

static gboolean
on_timeout(gpointer user_data)
{
    Run *run = user_data;

    run->r->timed_out = true;
    g_main_loop_quit(run->loop);
    return G_SOURCE_REMOVE;
}

GuestReport *
guest_report_run_full(const char *const *argv, guint timeout_ms, bool wait_exit,
                      GuestReportLineFunc func, gpointer data, GError **error)
{
    g_autoptr(GMainContext) ctx = g_main_context_new();
    g_autoptr(GMainLoop) loop = g_main_loop_new(ctx, FALSE);
    g_autoptr(GString) partial = g_string_new(NULL);
    GuestReport *r = g_new0(GuestReport, 1);
    Run run = {.r = r,
               .loop = loop,
               .partial = partial,
               .func = func,
               .data = data,
               .wait_exit = wait_exit};
    gint64 start = g_get_monotonic_time();
    GPid pid;
    int out_fd;

    r->lines = g_ptr_array_new_with_free_func(g_free);
    r->output = g_string_new(NULL);
    r->exit_status = -1;
    if (!g_spawn_async_with_pipes(
            NULL, (char **)argv, NULL,
            G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                G_SPAWN_STDIN_FROM_DEV_NULL,
            die_with_parent, NULL, &pid, NULL, &out_fd, NULL, error)) {
        guest_report_free(r);
        return NULL;
    }
    g_unix_set_fd_nonblocking(out_fd, TRUE, NULL);

    g_main_context_push_thread_default(ctx);
    GSource *out_src =
        g_unix_fd_source_new(out_fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
    g_source_set_callback(out_src, G_SOURCE_FUNC(on_stdout), &run, NULL);
    g_source_attach(out_src, ctx);
    GSource *child_src = g_child_watch_source_new(pid);
    g_source_set_callback(child_src, G_SOURCE_FUNC(on_child), &run, NULL);
    g_source_attach(child_src, ctx);
    GSource *timer = g_timeout_source_new(timeout_ms);
    g_source_set_callback(timer, on_timeout, &run, NULL);
    g_source_attach(timer, ctx);

    g_main_loop_run(loop);

    g_source_destroy(timer);
    g_source_unref(timer);
    g_source_destroy(out_src);
    g_source_unref(out_src);
    if (!run.child_gone) {
        r->killed = true;
        g_source_destroy(child_src);
        stop_child(pid);
    }
    g_source_unref(child_src);
    g_spawn_close_pid(pid);
    close(out_fd);
    g_main_context_pop_thread_default(ctx);
    r->elapsed_us = g_get_monotonic_time() - start;
    return r;
}

GuestReport *
guest_report_run(const char *const *argv, guint timeout_ms, GError **error)
{
    return guest_report_run_full(argv, timeout_ms, false, NULL, NULL, error);
}

void
guest_report_free(GuestReport *r)
{
    if (!r) {
        return;
    }
    g_ptr_array_unref(r->lines);
    g_string_free(r->output, TRUE);
    g_free(r);
}

bool
guest_report_has(const GuestReport *r, const char *line)
{
    for (guint i = 0; i < r->lines->len; i++) {
        if (g_str_equal(g_ptr_array_index(r->lines, i), line)) {
            return true;
        }
    }
    return false;
}

const char *
guest_report_find(const GuestReport *r, const char *prefix)
{
    for (guint i = 0; i < r->lines->len; i++) {
        const char *l = g_ptr_array_index(r->lines, i);
        if (g_str_has_prefix(l, prefix)) {
            return l;
        }
    }
    return NULL;
}

guint
guest_report_count(const GuestReport *r, const char *prefix)
{
    guint n = 0;

    for (guint i = 0; i < r->lines->len; i++) {
        n += g_str_has_prefix(g_ptr_array_index(r->lines, i), prefix);
    }
    return n;
}

void
guest_report_dump(const GuestReport *r)
{
    g_test_message(
        "guest output (%s%s%s, %.1f s):\n%s", r->done ? "done" : "not done",
        r->timed_out ? ", timed out" : "", r->exited ? ", exited" : "",
        r->elapsed_us / 1e6, r->output->str);
}

bool
guest_sector_written(const char *path, guint64 s)
{
    guint8 buf[512];
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, buf, sizeof(buf), (off_t)s * 512), ==,
                    sizeof(buf));
    close(fd);
    for (size_t i = 0; i < sizeof(buf); i++) {
        if (buf[i]) {
            return true;
        }
    }
    return false;
}
