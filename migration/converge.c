/*
 * auto-converge, as QEMU's migration_trigger_throttle and
 * mig_throttle_guest_down (docs/migration.md, "auto-converge"): the
 * sender thread calls gw_mig_converge_sync after each dirty-log sync;
 * the vCPUs are throttled on the main thread (throttle_main), and
 * GwMigJob.throttle_pct, under the job's lock, is what query-migrate
 * shows.  A GwMigConverge belongs to the sender thread.
 */
#include <godwit/machine.h>
#include <godwit/memory.h>
#include <godwit/vm.h>
#include "mig-job.h"

#define PERIOD_US    G_USEC_PER_SEC /* QEMU: bitmap syncs 1 s apart */
#define TRIGGER_PCT  50             /* QEMU's throttle-trigger-threshold */
#define HIGH_PERIODS 2

/* Main thread: the vCPUs get j->throttle_pct. */
static bool
throttle_main(GwMigJob *j, GError **errp)
{
    int pct;

    g_mutex_lock(&j->lock);
    pct = j->throttle_pct;
    g_mutex_unlock(&j->lock);
    g_debug("migration: auto-converge: vCPUs throttled to %d %%", pct);
    gw_machine_set_cpu_throttle(gw_vm_machine(gw_mig_vm(j->mig)),
                                (unsigned)pct);
    return true;
}

/* The next percentage: the initial one, then up by the increment (or,
 * with tailslow, by no more than what would bring the dirtying down to
 * the threshold), up to max. */
static int
next_pct(const GwMigConverge *c, GwMigJob *j, uint64_t dirty_bytes,
         uint64_t threshold)
{
    GwMigThrottle *t = &j->throttle;
    int max = g_atomic_int_get(&t->max);
    int inc = g_atomic_int_get(&t->increment);

    if (!c->pct) {
        return MIN(g_atomic_int_get(&t->initial), max);
    }
    if (g_atomic_int_get(&t->tailslow)) {
        double cpu_now = 100 - c->pct;
        double cpu_ideal = cpu_now * ((double)threshold / (double)dirty_bytes);
        inc = MIN((int)(cpu_now - cpu_ideal), inc);
    }
    return MIN(c->pct + inc, max);
}

static bool
set_pct(GwMigConverge *c, GwMigJob *j, int pct, GError **errp)
{
    if (pct == c->pct) {
        return true;
    }
    g_mutex_lock(&j->lock);
    j->throttle_pct = pct;
    g_mutex_unlock(&j->lock);
    c->pct = pct;
    return gw_mig_job_call_main(j, throttle_main, errp);
}

void
gw_mig_converge_start(GwMigConverge *c, uint64_t sent)
{
    *c = (GwMigConverge){.period_start = g_get_monotonic_time(),
                         .period_bytes = sent};
}

bool
gw_mig_converge_sync(GwMigConverge *c, GwMigJob *j, uint64_t sent,
                     uint64_t dirty, GError **errp)
{
    gint64 now = g_get_monotonic_time();
    uint64_t dirty_bytes, threshold;

    if (!j->auto_converge) {
        return true;
    }
    c->period_dirty += dirty;
    if (now - c->period_start < PERIOD_US) {
        return true;
    }
    dirty_bytes = c->period_dirty * GW_MEM_PAGE;
    threshold = (sent - c->period_bytes) * TRIGGER_PCT / 100;
    c->period_start = now;
    c->period_bytes = sent;
    c->period_dirty = 0;
    if (dirty_bytes <= threshold || ++c->dirty_high < HIGH_PERIODS) {
        return true;
    }
    c->dirty_high = 0;
    return set_pct(c, j, next_pct(c, j, dirty_bytes, threshold), errp);
}

void
gw_mig_converge_stop(GwMigConverge *c, GwMigJob *j)
{
    set_pct(c, j, 0, NULL);
}
