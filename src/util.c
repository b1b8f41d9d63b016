#include <godwit/util.h>

G_DEFINE_QUARK(godwit - error - quark, gw_error)

bool
gw_error_errno(GError **errp, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(errp, GW_ERROR, GW_ERROR_FAILED, "%s: %s", what,
                g_strerror(err));
    return false;
}
