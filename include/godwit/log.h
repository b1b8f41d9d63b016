/*
 * log: where g_log output goes.  Every module logs with g_log/g_debug
 * under its directory's G_LOG_DOMAIN ("godwit", "godwit-vdpa",
 * "godwit-qmp", "godwit-mig"); this module filters by --log-level and
 * lets G_MESSAGES_DEBUG=<domain>|all show one module's debug output.
 *
 * Thread: gw_log_setup from main() before any other thread starts; the
 * writer itself is thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <glib.h>

/* Shows messages at `max_level` and more severe (G_LOG_LEVEL_DEBUG: all). */
void gw_log_setup(GLogLevelFlags max_level);

/*
 * A rate limit for messages a guest can cause at will (a BAR it places
 * on top of another, a device it breaks again and again): at most
 * `burst` messages per `interval_us`.  The first message shown in a
 * later interval is preceded by one line counting those dropped since;
 * a count with no later message is never shown.
 *
 * One GwRateLimit per call site, through gw_warning_ratelimited() or
 * gw_message_ratelimited(): a static at the call site, the one kind of
 * mutable static godwit has (docs/architecture.md says why).
 * Thread-safe: vCPU threads and the main loop may share one.
 */
typedef struct {
    unsigned burst;
    gint64 interval_us;
    GMutex lock;
    bool started;
    gint64 start; /* of the current interval, once started */
    unsigned shown, suppressed;
} GwRateLimit;

#define GW_LOG_BURST      10
#define GW_LOG_INTERVAL_S 5
#define GW_RATELIMIT_INIT(burst_, interval_s)                                  \
    {                                                                          \
        .burst = (burst_), .interval_us = (interval_s)*G_USEC_PER_SEC          \
    }

/*
 * Whether a message at monotonic time `now_us` may be shown.  When it
 * may, *suppressed is how many were refused since the last one shown
 * (the caller reports them first); else 0.
 */
bool gw_ratelimit_check(GwRateLimit *rl, gint64 now_us, unsigned *suppressed);

/* g_log(domain, level, fmt, …) within `rl`, with the suppressed line. */
void gw_log_ratelimited(GwRateLimit *rl, const char *domain,
                        GLogLevelFlags level, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);

#define gw_log_ratelimited_at(level, ...)                                      \
    do {                                                                       \
        static GwRateLimit gw_rl_ =                                            \
            GW_RATELIMIT_INIT(GW_LOG_BURST, GW_LOG_INTERVAL_S);                \
        gw_log_ratelimited(&gw_rl_, G_LOG_DOMAIN, (level), __VA_ARGS__);       \
    } while (0)
#define gw_warning_ratelimited(...)                                            \
    gw_log_ratelimited_at(G_LOG_LEVEL_WARNING, __VA_ARGS__)
#define gw_message_ratelimited(...)                                            \
    gw_log_ratelimited_at(G_LOG_LEVEL_MESSAGE, __VA_ARGS__)
