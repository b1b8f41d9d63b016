/*
 * fd passing: getfd/closefd (named fds, per client, as QEMU's monitors)
 * and add-fd/remove-fd/query-fdsets (fd sets, server-wide), with QEMU
 * 7.2's error texts; /dev/fdset/N opens by access mode.  Main thread.
 */
#include <fcntl.h>
#include <string.h>
#include <godwit/util.h>
#include "qmp-priv.h"

typedef struct {
    int fd;
    char *opaque;
} SetFd;

typedef struct {
    long id;
    GArray *fds; /* SetFd */
} FdSet;

struct GwFdSets {
    GList *sets; /* FdSet *, by id */
};

static void
set_free(FdSet *set)
{
    for (guint i = 0; i < set->fds->len; i++) {
        SetFd *f = &g_array_index(set->fds, SetFd, i);
        close(f->fd);
        g_free(f->opaque);
    }
    g_array_unref(set->fds);
    g_free(set);
}

GwFdSets *
gw_fdsets_new(void)
{
    return g_new0(GwFdSets, 1);
}

void
gw_fdsets_free(GwFdSets *f)
{
    g_list_free_full(f->sets, (GDestroyNotify)set_free);
    g_free(f);
}

static FdSet *
find_set(GwFdSets *f, long id)
{
    for (GList *l = f->sets; l; l = l->next) {
        if (((FdSet *)l->data)->id == id) {
            return l->data;
        }
    }
    return NULL;
}

static gint
by_id(gconstpointer a, gconstpointer b)
{
    long x = ((const FdSet *)a)->id, y = ((const FdSet *)b)->id;
    return x < y ? -1 : x > y;
}

static FdSet *
get_set(GwFdSets *f, long id)
{
    FdSet *set = find_set(f, id);

    if (!set) {
        set = g_new0(FdSet, 1);
        set->id = id;
        set->fds = g_array_new(FALSE, FALSE, sizeof(SetFd));
        f->sets = g_list_insert_sorted(f->sets, set, by_id);
    }
    return set;
}

/* QEMU: the first id no set uses. */
static long
free_id(GwFdSets *f)
{
    long id = 0;
    while (find_set(f, id)) {
        id++;
    }
    return id;
}

int
gw_fdsets_open(GwFdSets *f, unsigned long id, int flags, GError **errp)
{
    FdSet *set = find_set(f, (long)id);

    if (!set) {
        g_set_error(errp, GW_ERROR, GW_ERROR_NOT_FOUND,
                    "Could not open '/dev/fdset/%lu': No such fdset", id);
        return -1;
    }
    for (guint i = 0; i < set->fds->len; i++) {
        int fd = g_array_index(set->fds, SetFd, i).fd;
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0 && (fl & O_ACCMODE) == (flags & O_ACCMODE)) {
            int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
            if (dup < 0) {
                gw_error_errno(errp, errno, "Could not dup fd of fdset %lu",
                               id);
            }
            return dup;
        }
    }
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "Could not open '/dev/fdset/%lu': fdset has no fd with the "
                "access mode the device needs",
                id);
    return -1;
}

unsigned
gw_fdsets_count(GwFdSets *f)
{
    unsigned n = 0;

    for (GList *l = f->sets; l; l = l->next) {
        n += ((FdSet *)l->data)->fds->len;
    }
    return n;
}

/* Whether one more fd may be held (in `set`, if not NULL); closes it if not. */
static bool
fd_room(GwQmpSession *c, FdSet *set, int fd, GError **errp)
{
    if (set && set->fds->len >= GW_QMP_MAX_SET_FDS) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "fdset %ld is full (at most %u fds)", set->id,
                    GW_QMP_MAX_SET_FDS);
    } else if (gw_qmp_server_held_fds(c->server) >= GW_QMP_MAX_FDS) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "too many fds passed to QMP (at most %u at once): "
                    "close or remove some first",
                    GW_QMP_MAX_FDS);
    } else {
        return true;
    }
    close(fd);
    return false;
}

/* ---- commands ---- */

static json_object *
getfd(GwQmpSession *c, json_object *args, gpointer opaque, GError **errp)
{
    const char *name =
        json_object_get_string(json_object_object_get(args, "fdname"));
    int fd = gw_qmp_session_take_fd(c);

    if (fd < 0) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "No file descriptor supplied via SCM_RIGHTS");
        return NULL;
    }
    if (g_ascii_isdigit(name[0])) {
        close(fd);
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "Parameter 'fdname' expects a name not starting with a "
                    "digit");
        return NULL;
    }
    if (!g_hash_table_contains(c->named, name) && !fd_room(c, NULL, fd, errp)) {
        return NULL; /* a name given again replaces its fd: no room needed */
    }
    g_hash_table_replace(c->named, g_strdup(name), GINT_TO_POINTER(fd));
    return json_object_new_object();
}

static json_object *
closefd(GwQmpSession *c, json_object *args, gpointer opaque, GError **errp)
{
    const char *name =
        json_object_get_string(json_object_object_get(args, "fdname"));

    if (!g_hash_table_remove(c->named, name)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "File descriptor named '%s' not found", name);
        return NULL;
    }
    return json_object_new_object();
}

void
gw_qmp_server_add_fdset_fd(GwQmpServer *s, unsigned id, int fd,
                           const char *opaque)
{
    SetFd entry = {fd, g_strdup(opaque)};

    g_array_append_val(get_set(gw_qmp_server_fdsets(s), id)->fds, entry);
}

static json_object *
add_fd(GwQmpSession *c, json_object *args, gpointer opaque, GError **errp)
{
    GwFdSets *f = gw_qmp_server_fdsets(c->server);
    json_object *jid = NULL, *jop = NULL, *ret;
    SetFd entry;
    long id;

    entry.fd = gw_qmp_session_take_fd(c);
    if (entry.fd < 0) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "No file descriptor supplied via SCM_RIGHTS");
        return NULL;
    }
    json_object_object_get_ex(args, "fdset-id", &jid);
    json_object_object_get_ex(args, "opaque", &jop);
    id = jid ? (long)json_object_get_int64(jid) : free_id(f);
    if (id < 0) {
        close(entry.fd);
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "Parameter 'fdset-id' expects a non-negative value");
        return NULL;
    }
    if (!fd_room(c, find_set(f, id), entry.fd, errp)) {
        return NULL;
    }
    entry.opaque = jop ? g_strdup(json_object_get_string(jop)) : NULL;
    g_array_append_val(get_set(f, id)->fds, entry);
    ret = json_object_new_object();
    json_object_object_add(ret, "fdset-id", json_object_new_int64(id));
    json_object_object_add(ret, "fd", json_object_new_int(entry.fd));
    return ret;
}

static bool
remove_from_set(GwFdSets *f, FdSet *set, json_object *jfd)
{
    bool found = false;

    for (guint i = set->fds->len; i-- > 0;) {
        SetFd *e = &g_array_index(set->fds, SetFd, i);
        if (!jfd || e->fd == json_object_get_int(jfd)) {
            close(e->fd);
            g_free(e->opaque);
            g_array_remove_index(set->fds, i);
            found = true;
        }
    }
    if (set->fds->len == 0) {
        f->sets = g_list_remove(f->sets, set);
        set_free(set);
    }
    return found;
}

static json_object *
remove_fd(GwQmpSession *c, json_object *args, gpointer opaque, GError **errp)
{
    GwFdSets *f = gw_qmp_server_fdsets(c->server);
    long id =
        (long)json_object_get_int64(json_object_object_get(args, "fdset-id"));
    json_object *jfd = NULL;
    FdSet *set = find_set(f, id);

    json_object_object_get_ex(args, "fd", &jfd);
    if (!set || !remove_from_set(f, set, jfd)) {
        if (jfd) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "File descriptor named 'fdset-id:%ld, fd:%d' not "
                        "found",
                        id, json_object_get_int(jfd));
        } else {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "File descriptor named 'fdset-id:%ld' not found", id);
        }
        return NULL;
    }
    return json_object_new_object();
}

static json_object *
query_fdsets(GwQmpSession *c, json_object *args, gpointer opaque, GError **errp)
{
    GwFdSets *f = gw_qmp_server_fdsets(c->server);
    json_object *list = json_object_new_array();

    for (GList *l = f->sets; l; l = l->next) {
        FdSet *set = l->data;
        json_object *o = json_object_new_object();
        json_object *fds = json_object_new_array();
        for (guint i = 0; i < set->fds->len; i++) {
            SetFd *e = &g_array_index(set->fds, SetFd, i);
            json_object *fo = json_object_new_object();
            json_object_object_add(fo, "fd", json_object_new_int(e->fd));
            if (e->opaque) {
                json_object_object_add(fo, "opaque",
                                       json_object_new_string(e->opaque));
            }
            json_object_array_add(fds, fo);
        }
        json_object_object_add(o, "fdset-id", json_object_new_int64(set->id));
        json_object_object_add(o, "fds", fds);
        json_object_array_add(list, o);
    }
    return list;
}

void
gw_qmp_fds_register(GwQmpServer *s)
{
    gw_qmp_server_register(s, "getfd", getfd, NULL);
    gw_qmp_server_register(s, "closefd", closefd, NULL);
    gw_qmp_server_register(s, "add-fd", add_fd, NULL);
    gw_qmp_server_register(s, "remove-fd", remove_fd, NULL);
    gw_qmp_server_register(s, "query-fdsets", query_fdsets, NULL);
}

GwQmpServer *
gw_qmp_session_server(GwQmpSession *c)
{
    return c->server;
}
