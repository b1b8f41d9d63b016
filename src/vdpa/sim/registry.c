/*
 * The simulator's management side (`vdpa dev add/del/show`) and its
 * half of opening: node files in the host's runtime directory, matched
 * back to devices by st_dev/st_ino.  Also the simulator's GwVdpaBackend.
 *
 * Threads: the registry is used from one thread at a time (the main
 * loop); gw_vdpa_sim_open_node may be called from any thread but reads
 * only `devices`, which changes on that same main thread.  Backends are
 * used from any thread; the device serialises them (device.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <godwit/util.h>
#include <godwit/vdpa-sim.h>
#include "../vdpa-priv.h"
#include "sim-priv.h"

typedef struct {
    GwVdpaSimDev *dev;
    char *path;
    dev_t st_dev;
    ino_t st_ino;
} SimNode;

struct GwVdpaSimRegistry {
    char *dir;
    GPtrArray *nodes; /* SimNode *, creation order */
};

typedef struct {
    GwVdpaBackend base;
    GwVdpaSimDev *dev;
} SimBackend;

static int
sim_ioctl(GwVdpaBackend *b, unsigned long request, void *arg)
{
    return gw_sim_dev_ioctl(((SimBackend *)b)->dev, request, arg);
}

static ssize_t
sim_write(GwVdpaBackend *b, const void *buf, size_t len)
{
    return gw_sim_dev_write(((SimBackend *)b)->dev, buf, len);
}

static ssize_t
sim_read(GwVdpaBackend *b, void *buf, size_t len)
{
    return -EINVAL; /* vhost-vdpa has no read */
}

static void
sim_free(GwVdpaBackend *b)
{
    SimBackend *s = (SimBackend *)b;

    gw_sim_dev_close(s->dev);
    gw_sim_dev_unref(s->dev);
    gw_vdpa_backend_finalize(b);
    g_free(s);
}

/* Immutable after creation: no lock. */
static bool
sim_private_storage(GwVdpaBackend *b)
{
    GwVdpaSimDev *d = ((SimBackend *)b)->dev;

    return d->storage && !d->storage_shared;
}

static const GwVdpaBackendOps sim_ops = {
    .ioctl = sim_ioctl,
    .write = sim_write,
    .read = sim_read,
    .free = sim_free,
    .private_storage = sim_private_storage,
};

static void
node_free(gpointer p)
{
    SimNode *n = p;

    if (unlink(n->path) < 0 && errno != ENOENT) {
        g_message("vdpa-sim: removing %s: %s", n->path, g_strerror(errno));
    }
    gw_sim_dev_unref(n->dev);
    g_free(n->path);
    g_free(n);
}

static char *
runtime_base(void)
{
    const char *env = g_getenv("GODWIT_RUNTIME_DIR");
    const char *xdg = g_getenv("XDG_RUNTIME_DIR");

    if (env && *env) {
        return g_strdup(env);
    }
    if (xdg && *xdg) {
        return g_build_filename(xdg, "godwit", NULL);
    }
    if (geteuid() == 0) {
        return g_strdup("/run/godwit");
    }
    return g_strdup_printf("%s/godwit-%u", g_get_tmp_dir(), (unsigned)getuid());
}

/*
 * Other processes open the nodes in the runtime directory: whoever else
 * can write it (or the link to it) could plant or swap them, as anyone
 * can pre-create /tmp/godwit-<uid>.  It must be this user's alone.
 */
static bool
check_private(const char *dir, GError **errp)
{
    struct stat st, link;

    if (lstat(dir, &link) < 0 || stat(dir, &st) < 0) {
        return gw_error_errno(errp, errno, "vdpa-sim: runtime directory %s",
                              dir);
    }
    if (st.st_uid != geteuid() || link.st_uid != geteuid()) {
        g_set_error(
            errp, GW_ERROR, GW_ERROR_INVALID,
            "vdpa-sim: runtime directory %s belongs to uid %u, not "
            "to this user (uid %u): refusing to use it (set "
            "GODWIT_RUNTIME_DIR to a directory of your own)",
            dir, (unsigned)(st.st_uid != geteuid() ? st.st_uid : link.st_uid),
            (unsigned)geteuid());
        return false;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vdpa-sim: runtime directory %s can be written by other "
                    "users (mode %04o): refusing to use it (chmod go-w it, "
                    "or set GODWIT_RUNTIME_DIR to a directory of your own)",
                    dir, (unsigned)(st.st_mode & 07777));
        return false;
    }
    return true;
}

GwVdpaSimRegistry *
gw_vdpa_sim_registry_new(const char *base, GError **errp)
{
    g_autofree char *dflt = base ? NULL : runtime_base();
    const char *top = base ? base : dflt;
    g_autofree char *dir = g_build_filename(top, "vdpa", NULL);
    GwVdpaSimRegistry *reg;

    /* Checked before anything is made inside. */
    if (g_mkdir_with_parents(top, 0700) < 0) {
        gw_error_errno(errp, errno, "vdpa-sim: runtime directory %s", top);
        return NULL;
    }
    if (!check_private(top, errp)) {
        return NULL;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        gw_error_errno(errp, errno, "vdpa-sim: runtime directory %s", dir);
        return NULL;
    }
    if (!check_private(dir, errp)) {
        return NULL;
    }
    reg = g_new0(GwVdpaSimRegistry, 1);
    reg->dir = g_steal_pointer(&dir);
    reg->nodes = g_ptr_array_new_with_free_func(node_free);
    return reg;
}

void
gw_vdpa_sim_registry_free(GwVdpaSimRegistry *reg)
{
    if (!reg) {
        return;
    }
    g_ptr_array_unref(reg->nodes);
    /* Shared with other godwit processes of this host: only if empty. */
    if (rmdir(reg->dir) < 0 && errno != ENOTEMPTY && errno != EEXIST &&
        errno != ENOENT) {
        g_message("vdpa-sim: removing %s: %s", reg->dir, g_strerror(errno));
    }
    g_free(reg->dir);
    g_free(reg);
}

const char *
gw_vdpa_sim_registry_dir(GwVdpaSimRegistry *reg)
{
    return reg->dir;
}

static SimNode *
find(GwVdpaSimRegistry *reg, const char *name, guint *index)
{
    for (guint i = 0; i < reg->nodes->len; i++) {
        SimNode *n = g_ptr_array_index(reg->nodes, i);

        if (g_str_equal(n->dev->name, name)) {
            if (index) {
                *index = i;
            }
            return n;
        }
    }
    return NULL;
}

static bool
check_name(GwVdpaSimRegistry *reg, const char *name, GError **errp)
{
    if (!name || !*name || strchr(name, '/') || g_str_equal(name, ".") ||
        g_str_equal(name, "..")) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vdpa-sim: '%s' is not a valid device name",
                    name ? name : "");
        return false;
    }
    if (find(reg, name, NULL)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_EXISTS,
                    "vdpa-sim: a device named '%s' exists", name);
        return false;
    }
    return true;
}

/* The pid a node file names, or 0 if it names none. */
static long
node_owner(const char *path)
{
    g_autofree char *text = NULL;
    const char *p;

    if (!g_file_get_contents(path, &text, NULL, NULL) ||
        !(p = strstr(text, " pid "))) {
        return 0;
    }
    return strtol(p + 5, NULL, 10);
}

/*
 * Names are unique per host, as `vdpa dev add` names are: a node of a
 * live process is a clash; one left by a process that died is reclaimed.
 */
static int
create_node(const char *path, const char *name, GError **errp)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    long owner;

    if (fd >= 0 || errno != EEXIST) {
        return fd;
    }
    owner = node_owner(path);
    if (owner > 0 && (kill((pid_t)owner, 0) == 0 || errno != ESRCH)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_EXISTS,
                    "vdpa-sim: a device named '%s' exists on this host "
                    "(%s, pid %ld)",
                    name, path, owner);
        return -1;
    }
    g_message("vdpa-sim: reclaiming %s, left by a process that is gone", path);
    unlink(path);
    return open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
}

/* The node: a small regular file whose inode identifies the device. */
static bool
publish(SimNode *n, const char *mgmtdev, GError **errp)
{
    g_autoptr(GError) err = NULL;
    gw_autofd fd = create_node(n->path, n->dev->name, &err);
    g_autofree char *text = NULL;
    struct stat st;

    if (err) {
        g_propagate_error(errp, g_steal_pointer(&err));
        return false;
    }
    if (fd < 0 || fstat(fd, &st) < 0) {
        return gw_error_errno(errp, errno, "vdpa-sim: creating %s", n->path);
    }
    text = g_strdup_printf("godwit vdpa simulator node: %s %s pid %d\n",
                           n->dev->name, mgmtdev, (int)getpid());
    if (write(fd, text, strlen(text)) < 0) {
        gw_error_errno(errp, errno, "vdpa-sim: writing %s", n->path);
        unlink(n->path);
        return false;
    }
    n->st_dev = st.st_dev;
    n->st_ino = st.st_ino;
    return true;
}

bool
gw_vdpa_sim_add(GwVdpaSimRegistry *reg, const GwVdpaSimConfig *cfg,
                char **path_out, GError **errp)
{
    SimNode *n;
    GwVdpaSimDev *dev;

    if (!check_name(reg, cfg->name, errp)) {
        return false;
    }
    if (reg->nodes->len >= GW_VDPA_SIM_MAX_DEVICES) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vdpa-sim: too many devices (at most %u): delete one "
                    "first",
                    GW_VDPA_SIM_MAX_DEVICES);
        return false;
    }
    dev = gw_sim_dev_new(cfg, errp);
    if (!dev) {
        return false;
    }
    n = g_new0(SimNode, 1);
    n->dev = dev;
    n->path = g_build_filename(reg->dir, cfg->name, NULL);
    if (!publish(n, dev->type->mgmtdev, errp)) {
        gw_sim_dev_unref(dev);
        g_free(n->path);
        g_free(n);
        return false;
    }
    g_ptr_array_add(reg->nodes, n);
    if (path_out) {
        *path_out = g_strdup(n->path);
    }
    return true;
}

bool
gw_vdpa_sim_del(GwVdpaSimRegistry *reg, const char *name, GError **errp)
{
    guint i;
    SimNode *n = find(reg, name, &i);

    if (!n) {
        g_set_error(errp, GW_ERROR, GW_ERROR_NOT_FOUND,
                    "vdpa-sim: no device named '%s'", name);
        return false;
    }
    if (gw_sim_dev_is_open(n->dev)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                    "vdpa-sim: device '%s' is open (%s)", name, n->path);
        return false;
    }
    g_ptr_array_remove_index(reg->nodes, i);
    return true;
}

json_object *
gw_vdpa_sim_list_json(GwVdpaSimRegistry *reg)
{
    json_object *arr = json_object_new_array();

    for (guint i = 0; i < reg->nodes->len; i++) {
        SimNode *n = g_ptr_array_index(reg->nodes, i);
        json_object *o = json_object_new_object();

        json_object_object_add(o, "name", json_object_new_string(n->dev->name));
        json_object_object_add(o, "mgmtdev",
                               json_object_new_string(n->dev->type->mgmtdev));
        json_object_object_add(o, "path", json_object_new_string(n->path));
        json_object_object_add(o, "device-id",
                               json_object_new_int(n->dev->type->device_id));
        json_object_object_add(
            o, "open", json_object_new_boolean(gw_sim_dev_is_open(n->dev)));
        json_object_array_add(arr, o);
    }
    return arr;
}

bool
gw_vdpa_sim_inject_failure(GwVdpaSimRegistry *reg, const char *name,
                           GwVdpaSimFailure what, GError **errp)
{
    SimNode *n = find(reg, name, NULL);

    if (!n) {
        g_set_error(errp, GW_ERROR, GW_ERROR_NOT_FOUND,
                    "vdpa-sim: no device named '%s'", name);
        return false;
    }
    gw_sim_dev_inject(n->dev, what);
    return true;
}

GwVdpaBackend *
gw_vdpa_sim_open_node(GwVdpaSimRegistry *reg, dev_t dev, ino_t ino,
                      const char *label, GError **errp)
{
    SimBackend *s;

    for (guint i = 0; i < reg->nodes->len; i++) {
        SimNode *n = g_ptr_array_index(reg->nodes, i);

        if (n->st_dev != dev || n->st_ino != ino) {
            continue;
        }
        if (!gw_sim_dev_open(n->dev)) {
            g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                        "vdpa: cannot open %s: %s", label, g_strerror(EBUSY));
            return NULL;
        }
        s = g_new0(SimBackend, 1);
        gw_vdpa_backend_init(&s->base, &sim_ops, label);
        s->dev = gw_sim_dev_ref(n->dev);
        return &s->base;
    }
    g_set_error(errp, GW_ERROR, GW_ERROR_NOT_FOUND, "vdpa: no node");
    return NULL;
}
