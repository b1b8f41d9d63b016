/*
 * A slow pre-copy for the vDPA migration e2e tests: see mig-precopy.h.
 */
#include <godwit/util.h>
#include "mig-precopy.h"

void
write_ballast(GwQt *qt)
{
    g_autofree uint8_t *buf = g_malloc(BALLAST_SIZE);

    for (unsigned i = 0; i < BALLAST_SIZE; i++) {
        buf[i] = (uint8_t)(i * 7 + 3);
    }
    gw_qt_memwrite(qt, BALLAST, buf, BALLAST_SIZE);
}

void
begin_migration(GwTestVm *src, GwTestVm *dst, unsigned bandwidth)
{
    g_autofree char *uri =
        g_strdup_printf("{\"uri\": \"unix:%s/mig.sock\"}", dst->dir);
    g_autofree char *bw = g_strdup_printf("{\"max-bandwidth\": %u}", bandwidth);

    drain_events(src);
    set_caps(src, true);
    qmp_void(src, "migrate-set-parameters", bw);
    qmp_void(src, "migrate", uri);
    wait_status(src, "active");
}

void
finish_migration(GwTestVm *src, GwTestVm *dst)
{
    wait_status(src, "pre-switchover");
    qmp_void(src, "migrate-continue", "{\"state\": \"pre-switchover\"}");
    wait_status(src, "completed");
    json_put_ok(poll_status(dst, "completed"));
}

void
assert_still_active(GwTestVm *src)
{
    g_autoptr(json_object) r = query_migrate(src);

    g_assert_cmpstr(status_of(r, "status"), ==, "active");
}
