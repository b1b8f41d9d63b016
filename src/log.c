#include <stdbool.h>
#include <godwit/log.h>

/* Written once in gw_log_setup before other threads exist; read-only after. */
static GLogLevelFlags max_shown = G_LOG_LEVEL_WARNING;

static const char *
field_domain(const GLogField *fields, gsize n_fields)
{
    for (gsize i = 0; i < n_fields; i++) {
        if (g_strcmp0(fields[i].key, "GLIB_DOMAIN") == 0) {
            return fields[i].value;
        }
    }
    return NULL;
}

/*
 * Whether G_MESSAGES_DEBUG names `domain` (or "all").  GLib matches by
 * substring, so "godwit-qmp" would also enable "godwit": match whole
 * names, separated by spaces, commas or colons.
 */
static bool
debug_enabled(const char *domain)
{
    const char *env = g_getenv("G_MESSAGES_DEBUG");
    g_auto(GStrv) names = NULL;

    if (!env) {
        return false;
    }
    names = g_strsplit_set(env, " ,:", -1);
    for (guint i = 0; names[i]; i++) {
        if (g_str_equal(names[i], "all") ||
            (domain && g_str_equal(names[i], domain))) {
            return true;
        }
    }
    return false;
}

static GLogWriterOutput
writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
       gpointer user_data)
{
    GLogLevelFlags lvl = level & G_LOG_LEVEL_MASK;

    (void)user_data;
    /* Severity bits grow as severity drops: ERROR=1<<2 ... DEBUG=1<<7. */
    if (lvl > max_shown) {
        /* Above --log-level: only G_MESSAGES_DEBUG can still show it. */
        bool verbose = lvl & (G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG);
        if (!verbose || !debug_enabled(field_domain(fields, n_fields))) {
            return G_LOG_WRITER_HANDLED;
        }
    }
    return g_log_writer_standard_streams(level, fields, n_fields, NULL);
}

/*
 * g_log()'s default handler drops info and debug unless G_MESSAGES_DEBUG
 * names the domain, before any writer runs: route plain g_log() calls to
 * our writer so --log-level decides.
 */
static void
handler(const char *domain, GLogLevelFlags level, const char *message,
        gpointer user_data)
{
    const GLogField fields[] = {
        {"MESSAGE", message, -1},
        {"GLIB_DOMAIN", domain, -1},
    };

    writer(level, fields, domain ? 2 : 1, user_data);
}

void
gw_log_setup(GLogLevelFlags max_level)
{
    max_shown = max_level;
    /* GLib puts info and debug on stdout, which is the guest's serial
     * console with --serial stdio: every message goes to stderr. */
    g_log_writer_default_set_use_stderr(TRUE);
    g_log_set_default_handler(handler, NULL);
    g_log_set_writer_func(writer, NULL, NULL);
}

bool
gw_ratelimit_check(GwRateLimit *rl, gint64 now_us, unsigned *suppressed)
{
    bool ok;

    g_mutex_lock(&rl->lock);
    *suppressed = 0;
    if (!rl->started || now_us - rl->start >= rl->interval_us) {
        *suppressed = rl->suppressed;
        rl->started = true;
        rl->start = now_us;
        rl->shown = rl->suppressed = 0;
    }
    ok = rl->shown < rl->burst;
    if (ok) {
        rl->shown++;
    } else {
        rl->suppressed++;
    }
    g_mutex_unlock(&rl->lock);
    return ok;
}

void
gw_log_ratelimited(GwRateLimit *rl, const char *domain, GLogLevelFlags level,
                   const char *fmt, ...)
{
    unsigned suppressed;
    va_list ap;

    if (!gw_ratelimit_check(rl, g_get_monotonic_time(), &suppressed)) {
        return;
    }
    if (suppressed) {
        g_log(domain, level, "%u similar messages suppressed", suppressed);
    }
    va_start(ap, fmt);
    g_logv(domain, level, fmt, ap);
    va_end(ap);
}
