/*
 * The rate limit on guest-triggerable messages: a burst per interval,
 * then one line counting what was dropped; one limit shared by threads.
 */
#include <string.h>
#include <godwit/log.h>

#define SEC G_USEC_PER_SEC

static void
test_burst_then_count(void)
{
    GwRateLimit rl = GW_RATELIMIT_INIT(3, 1);
    unsigned n;

    for (int i = 0; i < 3; i++) {
        g_assert_true(gw_ratelimit_check(&rl, 100 * SEC, &n));
        g_assert_cmpuint(n, ==, 0);
    }
    for (int i = 0; i < 6; i++) {
        g_assert_false(gw_ratelimit_check(&rl, 100 * SEC + i, &n));
        g_assert_cmpuint(n, ==, 0);
    }
    g_assert_false(gw_ratelimit_check(&rl, 101 * SEC - 1, &n));
    /* A new interval: shown again, with the count of the 7 dropped. */
    g_assert_true(gw_ratelimit_check(&rl, 101 * SEC, &n));
    g_assert_cmpuint(n, ==, 7);
    g_assert_true(gw_ratelimit_check(&rl, 101 * SEC, &n));
    g_assert_cmpuint(n, ==, 0);
}

static void
test_slow_messages_all_shown(void)
{
    GwRateLimit rl = GW_RATELIMIT_INIT(1, 1);
    unsigned n;

    for (gint64 t = 0; t < 10; t++) {
        g_assert_true(gw_ratelimit_check(&rl, t * SEC, &n));
        g_assert_cmpuint(n, ==, 0);
    }
}

#define THREADS 4
#define CALLS   1000

static gpointer
hammer(gpointer data)
{
    GwRateLimit *rl = data;
    guint shown = 0;
    unsigned n;

    for (int i = 0; i < CALLS; i++) {
        shown += gw_ratelimit_check(rl, 5 * SEC, &n);
    }
    return GUINT_TO_POINTER(shown);
}

static void
test_threads_share_one_limit(void)
{
    GwRateLimit rl = GW_RATELIMIT_INIT(10, 1);
    GThread *t[THREADS];
    guint shown = 0;
    unsigned n;

    for (int i = 0; i < THREADS; i++) {
        t[i] = g_thread_new("hammer", hammer, &rl);
    }
    for (int i = 0; i < THREADS; i++) {
        shown += GPOINTER_TO_UINT(g_thread_join(t[i]));
    }
    g_assert_cmpuint(shown, ==, 10);
    g_assert_true(gw_ratelimit_check(&rl, 6 * SEC, &n));
    g_assert_cmpuint(n, ==, THREADS * CALLS - 10);
}

typedef struct {
    guint lines;
    char *first;
} Seen;

static void
count_line(const char *domain, GLogLevelFlags level, const char *msg,
           gpointer data)
{
    Seen *s = data;

    if (!s->lines++) {
        s->first = g_strdup(msg);
    }
}

static void
test_lines_logged(void)
{
    GwRateLimit rl = GW_RATELIMIT_INIT(GW_LOG_BURST, GW_LOG_INTERVAL_S);
    Seen seen = {0};
    guint h = g_log_set_handler("godwit-test-rl", G_LOG_LEVEL_MASK, count_line,
                                &seen);

    for (int i = 0; i < 1000; i++) {
        gw_log_ratelimited(&rl, "godwit-test-rl", G_LOG_LEVEL_MESSAGE,
                           "BAR rejected %d", i);
    }
    g_assert_cmpuint(seen.lines, ==, GW_LOG_BURST);
    g_assert_cmpstr(seen.first, ==, "BAR rejected 0");
    /* The interval is over: one count line, then the message. */
    g_clear_pointer(&seen.first, g_free);
    seen.lines = 0;
    rl.start -= rl.interval_us;
    gw_log_ratelimited(&rl, "godwit-test-rl", G_LOG_LEVEL_MESSAGE, "again");
    g_assert_cmpuint(seen.lines, ==, 2);
    g_assert_cmpstr(seen.first, ==, "990 similar messages suppressed");
    g_free(seen.first);
    g_log_remove_handler("godwit-test-rl", h);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/log/ratelimit/burst-then-one-count-of-the-dropped",
                    test_burst_then_count);
    g_test_add_func("/log/ratelimit/slow-messages-all-shown",
                    test_slow_messages_all_shown);
    g_test_add_func("/log/ratelimit/threads-share-one-limit",
                    test_threads_share_one_limit);
    g_test_add_func("/log/ratelimit/burst-lines-then-suppressed-line",
                    test_lines_logged);
    return g_test_run();
}
