/*
 * A migration job's life and its hops between its thread and the main
 * thread.  See mig-job.h for who may touch what.
 */
#include <sys/socket.h>
#include <godwit/util.h>
#include "mig-job.h"

GwMigJob *
gw_mig_job_new(GwMig *mig, int fd, bool outgoing)
{
    GwMigJob *j = g_new0(GwMigJob, 1);

    j->ref = 1;
    j->mig = mig;
    j->fd = fd;
    j->listen_fd = -1;
    j->outgoing = outgoing;
    j->start_us = g_get_monotonic_time();
    g_mutex_init(&j->lock);
    g_cond_init(&j->cond);
    return j;
}

GwMigJob *
gw_mig_job_ref(GwMigJob *j)
{
    g_atomic_int_inc(&j->ref);
    return j;
}

void
gw_mig_job_unref(GwMigJob *j)
{
    if (!j || !g_atomic_int_dec_and_test(&j->ref)) {
        return;
    }
    if (j->fd >= 0) {
        close(j->fd);
    }
    g_clear_pointer(&j->sections, g_ptr_array_unref);
    g_free(j->error);
    g_free(j->manifest);
    g_free(j->uri);
    g_free(j->not_converging);
    g_mutex_clear(&j->lock);
    g_cond_clear(&j->cond);
    g_free(j);
}

bool
gw_mig_job_cancelled(GwMigJob *j)
{
    return g_atomic_int_get(&j->cancel) || g_atomic_int_get(&j->abandoned);
}

/* One main-thread call in flight, held by the waiter and the source. */
typedef struct {
    gint ref;
    GwMigJob *job; /* a reference */
    GwMigMainFn fn;
    bool done, ok;
    GError *err;
} Call;

static void
call_unref(Call *c)
{
    if (!g_atomic_int_dec_and_test(&c->ref)) {
        return;
    }
    gw_mig_job_unref(c->job);
    if (c->err) {
        g_error_free(c->err);
    }
    g_free(c);
}

static gboolean
run_call(gpointer data)
{
    Call *c = data;
    GwMigJob *j = c->job;
    bool ok = false;
    GError *err = NULL;

    if (j->mig && !g_atomic_int_get(&j->abandoned)) {
        ok = c->fn(j, &err);
        g_assert(ok || err);
    } else {
        g_set_error(&err, GW_ERROR, GW_ERROR_FAILED, "migration cancelled");
    }
    g_mutex_lock(&j->lock);
    c->ok = ok;
    c->err = err;
    c->done = true;
    g_cond_broadcast(&j->cond);
    g_mutex_unlock(&j->lock);
    return G_SOURCE_REMOVE;
}

static void
free_call(gpointer data)
{
    call_unref(data);
}

/* An idle source on the default context: never run on this thread. */
static void
post_main(GSourceFunc fn, gpointer data, GDestroyNotify destroy)
{
    GSource *src = g_idle_source_new();

    g_source_set_callback(src, fn, data, destroy);
    g_source_attach(src, NULL);
    g_source_unref(src);
}

bool
gw_mig_job_call_main(GwMigJob *j, GwMigMainFn fn, GError **errp)
{
    Call *c = g_new0(Call, 1);
    bool ok;

    c->ref = 2;
    c->job = gw_mig_job_ref(j);
    c->fn = fn;
    post_main(run_call, c, free_call);
    g_mutex_lock(&j->lock);
    while (!c->done && !g_atomic_int_get(&j->abandoned)) {
        g_cond_wait(&j->cond, &j->lock);
    }
    ok = c->done && c->ok;
    if (!ok) {
        if (c->done && c->err) {
            g_propagate_error(errp, g_steal_pointer(&c->err));
        } else {
            g_set_error(errp, GW_ERROR, GW_ERROR_FAILED, "migration cancelled");
        }
    }
    g_mutex_unlock(&j->lock);
    call_unref(c);
    return ok;
}

typedef struct {
    GwMigJob *job; /* the thread's reference, handed over */
    bool ok;
    char *error;
} Finish;

static gboolean
run_finish(gpointer data)
{
    Finish *f = data;
    GwMigJob *j = f->job;

    if (j->thread) {
        g_thread_join(g_steal_pointer(&j->thread));
    }
    if (j->mig) {
        gw_mig_job_done(j->mig, j, f->ok, f->error);
    }
    return G_SOURCE_REMOVE;
}

static void
free_finish(gpointer data)
{
    Finish *f = data;

    gw_mig_job_unref(f->job);
    g_free(f->error);
    g_free(f);
}

void
gw_mig_job_finish(GwMigJob *j, bool ok, GError *err)
{
    Finish *f = g_new0(Finish, 1);

    f->job = j;
    f->ok = ok;
    f->error = err ? g_strdup(err->message) : NULL;
    post_main(run_finish, f, free_finish);
}
