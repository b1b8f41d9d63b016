/*
 * Opening vDPA devices: a simulator node is reachable by path and by an
 * fd matched on st_dev/st_ino, exclusively; anything else is refused with
 * a message naming it.  Management: add/del/list and node files.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <glib/gstdio.h>
#include "vdpa-fixture.h"

static GwVdpaSimRegistry *
reg_with(const char *spec, char **path)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GwVdpaSimConfig) cfg = gw_vdpa_sim_config_parse(spec, &err);
    GwVdpaSimRegistry *reg = gw_vdpa_sim_registry_new(NULL, &err);

    g_assert_no_error(err);
    g_assert_true(gw_vdpa_sim_add(reg, cfg, path, &err));
    return reg;
}

static void
test_open_by_path_and_fd(void)
{
    g_autofree char *path = NULL;
    g_autoptr(GwVdpaSimRegistry) reg =
        reg_with("name=d0,mgmtdev=vdpasim_blk", &path);
    g_autoptr(GError) err = NULL;
    GwVdpaBackend *b;
    uint32_t id;
    int fd;

    g_assert_true(g_str_has_prefix(path, gw_vdpa_sim_registry_dir(reg)));
    b = gw_vdpa_open(reg, path, &err);
    g_assert_no_error(err);
    g_assert_true(gw_vdpa_get_device_id(b, &id, &err));
    g_assert_cmpuint(id, ==, VIRTIO_ID_BLOCK);
    gw_vdpa_backend_unref(b);
    fd = open(path, O_RDWR | O_CLOEXEC);
    g_assert_cmpint(fd, >=, 0);
    b = gw_vdpa_open_fd(reg, fd, &err);
    g_assert_no_error(err);
    g_assert_true(gw_vdpa_get_device_id(b, &id, &err));
    gw_vdpa_backend_unref(b);
}

static void
test_second_open_busy(void)
{
    g_autofree char *path = NULL;
    g_autoptr(GwVdpaSimRegistry) reg =
        reg_with("name=d0,mgmtdev=vdpasim_net", &path);
    g_autoptr(GError) err = NULL;
    g_autoptr(GwVdpaBackend) b = gw_vdpa_open(reg, path, &err);

    g_assert_nonnull(b);
    g_assert_null(gw_vdpa_open(reg, path, &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_BUSY);
    g_clear_error(&err);
    g_assert_null(gw_vdpa_open_fd(reg, open(path, O_RDONLY), &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_BUSY);
    g_clear_error(&err);
    /* del is refused while open, and works after close. */
    g_assert_false(gw_vdpa_sim_del(reg, "d0", &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_BUSY);
    g_clear_error(&err);
    g_clear_pointer(&b, gw_vdpa_backend_unref);
    g_assert_true(gw_vdpa_sim_del(reg, "d0", &err));
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    g_assert_false(gw_vdpa_sim_del(reg, "d0", &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_NOT_FOUND);
}

static void
test_rejects_non_devices(void)
{
    g_autofree char *path = NULL;
    g_autoptr(GwVdpaSimRegistry) reg =
        reg_with("name=d0,mgmtdev=vdpasim_blk", &path);
    g_autofree char *plain =
        g_build_filename(gw_vdpa_sim_registry_dir(reg), "plain", NULL);
    g_autoptr(GError) err = NULL;

    g_assert_null(gw_vdpa_open(reg, "/dev/null", &err));
    g_assert_cmpstr(err->message, ==,
                    "vdpa: /dev/null is not a vhost-vdpa device");
    g_clear_error(&err);
    g_assert_true(g_file_set_contents(plain, "x", 1, NULL));
    g_assert_null(gw_vdpa_open(reg, plain, &err));
    g_assert_true(g_str_has_suffix(err->message, "is not a vhost-vdpa device"));
    g_clear_error(&err);
    g_assert_null(gw_vdpa_open(reg, "/nonexistent/vdpa", &err));
    g_assert_nonnull(strstr(err->message, "/nonexistent/vdpa"));
    g_clear_error(&err);
    g_assert_null(gw_vdpa_open_fd(reg, open("/dev/null", O_RDWR), &err));
    g_assert_cmpstr(err->message + strlen(err->message) - 26, ==,
                    "is not a vhost-vdpa device");
    g_clear_error(&err);
    /* A node is a device only for the registry that published it. */
    g_assert_null(gw_vdpa_open(NULL, path, &err));
    g_clear_error(&err);
    unlink(plain);
}

static void
test_names_are_per_host(void)
{
    g_autofree char *p1 = NULL, *p3 = NULL, *want = NULL;
    g_autofree char *other = g_dir_make_tmp("godwit-host2-XXXXXX", NULL);
    g_autoptr(GwVdpaSimConfig) cfg =
        gw_vdpa_sim_config_parse("name=same,mgmtdev=vdpasim_blk", NULL);
    g_autoptr(GwVdpaSimRegistry) r1 =
        reg_with("name=same,mgmtdev=vdpasim_blk", &p1);
    g_autoptr(GwVdpaSimRegistry) r2 = gw_vdpa_sim_registry_new(NULL, NULL);
    g_autoptr(GwVdpaSimRegistry) r3 = gw_vdpa_sim_registry_new(other, NULL);
    g_autoptr(GError) err = NULL;

    /* The path follows from the name. */
    want =
        g_build_filename(g_getenv("GODWIT_RUNTIME_DIR"), "vdpa", "same", NULL);
    g_assert_cmpstr(p1, ==, want);
    /* Same host, same name: refused, as `vdpa dev add` refuses it. */
    g_assert_false(gw_vdpa_sim_add(r2, cfg, NULL, &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_EXISTS);
    g_clear_error(&err);
    /* Another host (base) has its own names and cannot open ours. */
    g_assert_true(gw_vdpa_sim_add(r3, cfg, &p3, &err));
    g_assert_cmpstr(p1, !=, p3);
    g_assert_null(gw_vdpa_open(r3, p1, &err));
    g_clear_pointer(&r3, gw_vdpa_sim_registry_free);
    g_rmdir(other);
}

static void
test_stale_node_is_reclaimed(void)
{
    g_autofree char *dir = NULL, *node = NULL, *text = NULL, *path = NULL;
    g_autoptr(GwVdpaSimRegistry) reg = gw_vdpa_sim_registry_new(NULL, NULL);
    g_autoptr(GwVdpaSimConfig) cfg =
        gw_vdpa_sim_config_parse("name=stale,mgmtdev=vdpasim_blk", NULL);
    const char *argv[] = {"true", NULL};
    GPid pid;
    int status;

    /* A pid that certainly existed and is certainly gone: a reaped child. */
    g_assert_true(g_spawn_async(NULL, (char **)argv, NULL,
                                G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
                                NULL, NULL, &pid, NULL));
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    node = g_build_filename(gw_vdpa_sim_registry_dir(reg), "stale", NULL);
    text = g_strdup_printf("godwit vdpa simulator node: stale vdpasim_blk "
                           "pid %d\n",
                           (int)pid);
    g_assert_true(g_file_set_contents(node, text, -1, NULL));
    g_test_expect_message("godwit-vdpa", G_LOG_LEVEL_MESSAGE, "*reclaiming*");
    g_assert_true(gw_vdpa_sim_add(reg, cfg, &path, NULL));
    g_test_assert_expected_messages();
    g_assert_cmpstr(path, ==, node);
}

static void
test_add_list_and_cleanup(void)
{
    g_autofree char *path = NULL, *dir = NULL;
    GwVdpaSimRegistry *reg = reg_with("name=b,mgmtdev=vdpasim_blk", &path);
    g_autoptr(GError) err = NULL;
    g_autoptr(GwVdpaSimConfig) dup =
        gw_vdpa_sim_config_parse("name=b,mgmtdev=vdpasim_net", NULL);
    g_autoptr(GwVdpaSimConfig) net = gw_vdpa_sim_config_parse(
        "name=n,mgmtdev=vdpasim_net,mac=02:00:00:00:00:01", NULL);
    g_autoptr(json_object) list = NULL;
    g_autoptr(GwVdpaBackend) b = NULL;
    g_autofree char *want = NULL;

    g_assert_false(gw_vdpa_sim_add(reg, dup, NULL, &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_EXISTS);
    g_assert_true(gw_vdpa_sim_add(reg, net, NULL, NULL));
    b = gw_vdpa_open(reg, path, NULL);
    list = gw_vdpa_sim_list_json(reg);
    want = g_strdup_printf(
        "[{\"name\":\"b\",\"mgmtdev\":\"vdpasim_blk\",\"path\":\"%s\","
        "\"device-id\":2,\"open\":true},{\"name\":\"n\",\"mgmtdev\":"
        "\"vdpasim_net\",\"path\":\"%s/n\",\"device-id\":1,\"open\":"
        "false}]",
        path, gw_vdpa_sim_registry_dir(reg));
    g_assert_cmpstr(
        json_object_to_json_string_ext(
            list, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
        ==, want);
    dir = g_strdup(gw_vdpa_sim_registry_dir(reg));
    gw_vdpa_sim_registry_free(reg);
    g_assert_false(g_file_test(dir, G_FILE_TEST_EXISTS));
    /* The open backend still works after its registry is gone. */
    uint32_t id;
    g_assert_true(gw_vdpa_get_device_id(b, &id, NULL));
}

typedef struct {
    const char *name;
    const char *dir;     /* "" the base, or "vdpa" inside it */
    mode_t mode;         /* chmod'ed to this, */
    uid_t uid;           /* and chown'ed to this unless 0 */
    const char *problem; /* in the message */
} UnsafeDir;

static const UnsafeDir unsafe_dirs[] = {
    {"others-can-write", "", 0777, 0, "can be written by other users"},
    {"group-can-write", "", 0770, 0, "can be written by other users"},
    {"sticky-world-writable", "", 01777, 0, "can be written by other users"},
    {"owned-by-another-user", "", 0700, 65534, "belongs to uid 65534"},
    {"vdpa-subdir-others-can-write", "vdpa", 0777, 0,
     "can be written by other users"},
};

/* A runtime directory someone else could write is refused, by name,
 * before anything is made in it. */
static void
test_unsafe_runtime_dir(gconstpointer data)
{
    const UnsafeDir *c = data;
    g_autofree char *base = g_dir_make_tmp("godwit-rt-XXXXXX", NULL);
    g_autofree char *vdpa = g_build_filename(base, "vdpa", NULL);
    g_autofree char *dir = g_build_filename(base, c->dir, NULL);
    g_autoptr(GError) err = NULL;
    g_autofree char *want = NULL;

    if (c->uid && geteuid() != 0) {
        g_test_skip("chown to another user needs root");
        g_rmdir(base);
        return;
    }
    if (*c->dir) {
        g_assert_cmpint(g_mkdir(dir, 0700), ==, 0);
    }
    g_assert_cmpint(chmod(dir, c->mode), ==, 0);
    g_assert_cmpint(c->uid ? chown(dir, c->uid, (gid_t)-1) : 0, ==, 0);
    g_assert_null(gw_vdpa_sim_registry_new(base, &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_INVALID);
    want = g_strdup_printf("runtime directory %s ", dir);
    g_assert_nonnull(strstr(err->message, want));
    g_assert_nonnull(strstr(err->message, c->problem));
    g_assert_cmpint(g_file_test(vdpa, G_FILE_TEST_EXISTS), ==, *c->dir != 0);
    g_rmdir(vdpa);
    g_assert_cmpint(g_rmdir(base), ==, 0);
}

/* GW_VDPA_SIM_MAX_DEVICES at once; one more is refused until one goes. */
static void
test_device_limit(void)
{
    g_autoptr(GError) err = NULL;
    GwVdpaSimRegistry *reg = gw_vdpa_sim_registry_new(NULL, &err);

    g_assert_no_error(err);
    for (unsigned i = 0; i <= GW_VDPA_SIM_MAX_DEVICES; i++) {
        g_autofree char *spec =
            g_strdup_printf("name=lim%u,mgmtdev=vdpasim_net", i);
        g_autoptr(GwVdpaSimConfig) cfg = gw_vdpa_sim_config_parse(spec, NULL);
        bool ok = gw_vdpa_sim_add(reg, cfg, NULL, &err);

        g_assert_true(ok == (i < GW_VDPA_SIM_MAX_DEVICES));
    }
    g_assert_error(err, GW_ERROR, GW_ERROR_INVALID);
    g_assert_cmpstr(err->message, ==,
                    "vdpa-sim: too many devices (at most 64): delete one "
                    "first");
    g_clear_error(&err);
    g_assert_true(gw_vdpa_sim_del(reg, "lim0", &err));
    g_autoptr(GwVdpaSimConfig) again =
        gw_vdpa_sim_config_parse("name=again,mgmtdev=vdpasim_blk", NULL);
    g_assert_true(gw_vdpa_sim_add(reg, again, NULL, &err));
    g_assert_no_error(err);
    gw_vdpa_sim_registry_free(reg);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    fx_runtime_dir();
    g_test_add_func("/vdpa/sim/limit/devices-at-once", test_device_limit);
    g_test_add_func("/vdpa/open/sim-node-by-path-and-by-fd",
                    test_open_by_path_and_fd);
    g_test_add_func("/vdpa/open/second-open-busy-and-del-refused",
                    test_second_open_busy);
    g_test_add_func("/vdpa/open/rejects-dev-null-regular-file-missing",
                    test_rejects_non_devices);
    g_test_add_func("/vdpa/sim/names-are-unique-per-host",
                    test_names_are_per_host);
    g_test_add_func("/vdpa/sim/stale-node-of-dead-process-is-reclaimed",
                    test_stale_node_is_reclaimed);
    g_test_add_func("/vdpa/sim/registry/add-list-free-removes-nodes",
                    test_add_list_and_cleanup);
    for (size_t i = 0; i < G_N_ELEMENTS(unsafe_dirs); i++) {
        g_autofree char *path = g_strdup_printf(
            "/vdpa/sim/registry/runtime-dir-refused/%s", unsafe_dirs[i].name);
        g_test_add_data_func(path, &unsafe_dirs[i], test_unsafe_runtime_dir);
    }
    return g_test_run();
}
