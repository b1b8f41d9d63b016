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
        if (!verbose || g_log_writer_default_would_drop(
                            lvl, field_domain(fields, n_fields))) {
            return G_LOG_WRITER_HANDLED;
        }
    }
    return g_log_writer_standard_streams(level, fields, n_fields, NULL);
}

void
gw_log_setup(GLogLevelFlags max_level)
{
    max_shown = max_level;
    g_log_set_writer_func(writer, NULL, NULL);
}
