/*
 * The migration QMP commands, as QEMU names and shapes them: thin
 * shells over include/godwit/migration.h.  Main thread.
 */
#include <fcntl.h>
#include <godwit/migration.h>
#include <godwit/qmp.h>
#include <godwit/util.h>
#include <godwit/vm.h>

static json_object *
empty(void)
{
    return json_object_new_object();
}

/* fd:NAME: a dup of the fd `getfd` gave that name on this session. */
static int
named_fd(GwQmpSession *c, const char *uri, GError **errp)
{
    int fd;

    if (!g_str_has_prefix(uri, "fd:")) {
        return -1;
    }
    fd = gw_qmp_session_named_fd(c, uri + 3);
    if (fd < 0) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "File descriptor named '%s' not found", uri + 3);
        return -2;
    }
    fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        gw_error_errno(errp, errno, "migration: cannot use fd '%s'", uri + 3);
        return -2;
    }
    return fd;
}

static const char *
uri_arg(json_object *args)
{
    return json_object_get_string(json_object_object_get(args, "uri"));
}

/* QEMU's block migration and postcopy recovery are not godwit's. */
static bool
unsupported_flag(json_object *args, GError **errp)
{
    static const char *const flags[] = {"blk", "inc", "resume"};

    for (size_t i = 0; i < G_N_ELEMENTS(flags); i++) {
        json_object *v;
        if (json_object_object_get_ex(args, flags[i], &v) &&
            json_object_get_boolean(v)) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "migrate: '%s' is not supported by godwit", flags[i]);
            return true;
        }
    }
    return false;
}

static json_object *
migrate(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    const char *uri = uri_arg(args);
    int fd;

    if (unsupported_flag(args, errp)) {
        return NULL;
    }
    fd = named_fd(c, uri, errp);

    if (fd == -2) {
        return NULL;
    }
    if (!gw_mig_start(gw_vm_migration(vm), uri, fd, errp)) {
        if (fd >= 0) {
            close(fd);
        }
        return NULL;
    }
    return empty();
}

static json_object *
migrate_incoming(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    const char *uri = uri_arg(args);
    int fd = named_fd(c, uri, errp);

    if (fd == -2) {
        return NULL;
    }
    if (!gw_mig_incoming(gw_vm_migration(vm), uri, fd, errp)) {
        if (fd >= 0) {
            close(fd);
        }
        return NULL;
    }
    return empty();
}

static json_object *
migrate_cancel(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    gw_mig_cancel(gw_vm_migration(vm));
    return empty();
}

static json_object *
migrate_continue(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    const char *state =
        json_object_get_string(json_object_object_get(args, "state"));
    GwMig *mig = gw_vm_migration(vm);

    if (!g_str_equal(state, gw_mig_status_name(gw_mig_status(mig)))) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "Migration not in expected state: %s",
                    gw_mig_status_name(gw_mig_status(mig)));
        return NULL;
    }
    return gw_mig_continue(mig, errp) ? empty() : NULL;
}

static json_object *
query_migrate(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    return gw_mig_query(gw_vm_migration(vm));
}

static json_object *
set_capabilities(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    json_object *caps = json_object_object_get(args, "capabilities");

    return gw_mig_set_capabilities(gw_vm_migration(vm), caps, errp) ? empty()
                                                                    : NULL;
}

static json_object *
query_capabilities(GwQmpSession *c, json_object *args, gpointer vm,
                   GError **errp)
{
    return gw_mig_query_capabilities(gw_vm_migration(vm));
}

static json_object *
set_parameters(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    return gw_mig_set_parameters(gw_vm_migration(vm), args, errp) ? empty()
                                                                  : NULL;
}

static json_object *
query_parameters(GwQmpSession *c, json_object *args, gpointer vm, GError **errp)
{
    return gw_mig_query_parameters(gw_vm_migration(vm));
}

void
gw_vm_migrate_register(GwVm *vm, GwQmpServer *s)
{
    static const struct {
        const char *name;
        GwQmpHandler fn;
    } cmds[] = {
        {"migrate", migrate},
        {"migrate-incoming", migrate_incoming},
        {"migrate_cancel", migrate_cancel},
        {"migrate-continue", migrate_continue},
        {"query-migrate", query_migrate},
        {"migrate-set-capabilities", set_capabilities},
        {"query-migrate-capabilities", query_capabilities},
        {"migrate-set-parameters", set_parameters},
        {"query-migrate-parameters", query_parameters},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++) {
        gw_qmp_server_register(s, cmds[i].name, cmds[i].fn, vm);
    }
}
