/*
 * The board's virtio-iommu section (src/machine-state.c), on in-process
 * `--qtest` boards with a simulated disk: where the section goes among
 * the others, that it loads into a board like the source, and that a
 * board with an IOMMU and one without refuse each other's state and
 * manifest.  gw_vm_migration_save is called directly (a real
 * migration of such a VM: tests/e2e/test-migration-iommu.c).
 */
#include <string.h>
#include <glib/gstdio.h>
#include <godwit/config.h>
#include <godwit/mig-stream.h>
#include <godwit/util.h>
#include <godwit/vm.h>
#include <godwit/vmstate.h>

static char *dir;
static GPtrArray *configs; /* the boards keep pointers into theirs */

/* A board with disk `name` (iommu=on or off) behind `--vdpa id=disk0`. */
static GwVm *
board(GMainLoop *loop, const char *name, bool iommu)
{
    g_autofree char *disk = g_strdup_printf("%s/%s.img", dir, name);
    g_autofree char *sim = g_strdup_printf(
        "name=%s,mgmtdev=vdpasim_blk,capacity=64K,backing=%s", name, disk);
    g_autofree char *vdpa = g_strdup_printf("path=%s/vdpa/%s,id=disk0,iommu=%s",
                                            dir, name, iommu ? "on" : "off");
    g_autofree char *qt = g_strdup_printf("%s/%s.qtest", dir, name);
    char *args[] = {"godwit",  "--qtest",  qt,    "--memory",
                    "size=4M", "--serial", "off", "--vdpa-sim",
                    sim,       "--vdpa",   vdpa,  "--incoming",
                    "defer",   NULL};
    g_autoptr(GError) err = NULL;
    GwConfig *cfg;
    GwVm *vm;

    g_assert_true(g_file_set_contents(disk, "", 0, NULL));
    g_assert_cmpint(truncate(disk, 64 << 10), ==, 0);
    cfg = gw_config_parse_argv(G_N_ELEMENTS(args) - 1, args, &err);
    g_assert_no_error(err);
    g_ptr_array_add(configs, cfg);
    vm = gw_vm_new(cfg, loop, &err);
    g_assert_no_error(err);
    g_assert_true(gw_vm_start(vm, &err));
    g_assert_no_error(err);
    return vm;
}

static char *
section_id(GBytes *b)
{
    GwMigCursor c;

    gw_mig_cursor_init_bytes(&c, b);
    return gw_mig_device_section_parse_id(&c, NULL);
}

static int
index_of(GPtrArray *sections, const char *id)
{
    for (guint i = 0; i < sections->len; i++) {
        g_autofree char *s = section_id(sections->pdata[i]);

        if (g_str_equal(s, id)) {
            return (int)i;
        }
    }
    return -1;
}

static GPtrArray *
save(GwVm *vm)
{
    g_autoptr(GError) err = NULL;
    GPtrArray *s = gw_vm_migration_save(vm, &err);

    g_assert_no_error(err);
    return s;
}

static void
test_section_order_and_load(void)
{
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    g_autoptr(GwVm) src = board(loop, "src0", true);
    g_autoptr(GwVm) dst = board(loop, "dst0", true);
    g_autoptr(GPtrArray) s = save(src);
    g_autoptr(GError) err = NULL;
    g_autofree char *manifest = gw_vm_migration_manifest(src, &err);
    int at = index_of(s, "virtio-iommu");

    g_assert_cmpint(at, >, index_of(s, "pci"));
    g_assert_cmpint(at, <, index_of(s, "vdpa:disk0"));
    g_assert_nonnull(strstr(manifest, "\"virtio-iommu\":{\"endpoints\":[8]}"));
    g_assert_true(gw_vm_migration_check_manifest(dst, manifest, &err));
    g_assert_no_error(err);
    g_assert_true(gw_vm_migration_load(dst, s, &err));
    g_assert_no_error(err);
}

static void
expect_refused(GwVm *src, GwVm *dst, const char *manifest_msg,
               const char *load_msg)
{
    g_autoptr(GPtrArray) s = save(src);
    g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL;
    g_autofree char *manifest = gw_vm_migration_manifest(src, &e1);

    g_assert_no_error(e1);
    g_assert_false(gw_vm_migration_check_manifest(dst, manifest, &e2));
    g_assert_nonnull(e2);
    g_assert_nonnull(strstr(e2->message, manifest_msg));
    g_assert_false(gw_vm_migration_load(dst, s, &e3));
    g_assert_nonnull(e3);
    g_assert_cmpstr(e3->message, ==, load_msg);
}

static void
test_iommu_on_one_side(void)
{
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    g_autoptr(GwVm) with = board(loop, "on1", true);
    g_autoptr(GwVm) without = board(loop, "off1", false);

    expect_refused(with, without, "the source's virtio-iommu is",
                   "loading device state: the source has a virtio-iommu, "
                   "this VM has none");
    expect_refused(without, with, "virtio-iommu is absent",
                   "loading device state: this VM has a virtio-iommu, the "
                   "source has none");
}

static void
remove_dir(void)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);

    for (const char *e; d && (e = g_dir_read_name(d));) {
        g_autofree char *p = g_build_filename(dir, e, NULL);
        g_unlink(p);
    }
    g_rmdir(dir);
}

int
main(int argc, char **argv)
{
    int rc;

    g_test_init(&argc, &argv, NULL);
    dir = g_dir_make_tmp("gw-iommu-state-XXXXXX", NULL);
    g_assert_nonnull(dir);
    configs = g_ptr_array_new_with_free_func((GDestroyNotify)gw_config_free);
    g_setenv("GODWIT_RUNTIME_DIR", dir, true);
    g_test_add_func("/machine/iommu-state/section-between-pci-and-vdpa",
                    test_section_order_and_load);
    g_test_add_func("/machine/iommu-state/refused-with-iommu-on-one-side",
                    test_iommu_on_one_side);
    rc = g_test_run();
    g_ptr_array_unref(configs);
    remove_dir();
    return rc;
}
