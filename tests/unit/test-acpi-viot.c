/*
 * The ACPI VIOT gw_acpi_build writes for a virtio-iommu: found through
 * the RSDT and XSDT, checksummed, revision 0, its IOMMU node and PCI
 * range nodes field by field (boot endpoints, whole iommu segments,
 * the IOMMU's own BDF left out); absent without an IOMMU.  With iasl
 * installed the table is disassembled too.
 */
#include <string.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <godwit/boot.h>
#include <godwit/memory.h>
#include <godwit/util.h>

#define BDF(slot) ((uint16_t)((slot) << 3))

typedef struct {
    GwGuestMemory *mem;
    const uint8_t *viot; /* NULL: none listed */
    uint32_t len;
    unsigned n_rsdt; /* tables the RSDT lists */
} Viot;

static uint16_t
u16_at(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static uint32_t
u32_at(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static const uint8_t *
checked_table(GwGuestMemory *mem, uint64_t gpa)
{
    const uint8_t *t = gw_mem_ptr(mem, gpa, 36);
    uint8_t sum = 0;
    uint32_t len;

    g_assert_nonnull(t);
    len = u32_at(t + 4);
    t = gw_mem_ptr(mem, gpa, len);
    g_assert_nonnull(t);
    for (uint32_t i = 0; i < len; i++) {
        sum += t[i];
    }
    g_assert_cmpuint(sum, ==, 0);
    return t;
}

/* Builds the tables for `cfg`; finds the VIOT in the RSDT and checks the
 * XSDT lists the same address. */
static void
build(Viot *v, GwAcpiConfig *cfg)
{
    const uint8_t *rsdp, *rsdt, *xsdt;

    cfg->n_cpus = 1;
    cfg->ecam_base = 0xE0000000ull;
    cfg->pci_hotplug = true;
    memset(v, 0, sizeof(*v));
    v->mem = gw_mem_new(16 << 20, false, true, NULL);
    g_assert_nonnull(v->mem);
    g_assert_true(gw_acpi_build(v->mem, cfg, NULL));
    rsdp = gw_mem_ptr(v->mem, GW_ACPI_RSDP_GPA, 36);
    rsdt = checked_table(v->mem, u32_at(rsdp + 16));
    xsdt = checked_table(v->mem, u32_at(rsdp + 24));
    v->n_rsdt = (u32_at(rsdt + 4) - 36) / 4;
    for (unsigned i = 0; i < v->n_rsdt; i++) {
        uint32_t at = u32_at(rsdt + 36 + 4 * i);
        const uint8_t *t = checked_table(v->mem, at);
        uint64_t x;
        memcpy(&x, xsdt + 36 + 8 * i, 8);
        g_assert_cmphex(x, ==, at);
        if (memcmp(t, "VIOT", 4) == 0) {
            v->viot = t;
            v->len = u32_at(t + 4);
        }
    }
}

/* PCI range node `i` (after the IOMMU node at 48) is `seg`:first-last,
 * endpoint ids from (seg << 16) | first, output node the IOMMU's. */
static void
assert_range(const Viot *v, unsigned i, uint16_t seg, uint16_t first,
             uint16_t last)
{
    const uint8_t *n = v->viot + 48 + 16 + 24 * i;

    g_assert_cmpuint(48 + 16 + 24 * (i + 1), <=, v->len);
    g_assert_cmpuint(n[0], ==, 1); /* PCI range */
    g_assert_cmpuint(u16_at(n + 2), ==, 24);
    g_assert_cmphex(u32_at(n + 4), ==, (uint32_t)seg << 16 | first);
    g_assert_cmpuint(u16_at(n + 8), ==, seg);
    g_assert_cmpuint(u16_at(n + 10), ==, seg);
    g_assert_cmphex(u16_at(n + 12), ==, first);
    g_assert_cmphex(u16_at(n + 14), ==, last);
    g_assert_cmpuint(u16_at(n + 16), ==, 48);
}

static void
assert_iommu_node(const Viot *v, unsigned n_nodes, uint16_t bdf)
{
    const uint8_t *n = v->viot + 48;

    g_assert_nonnull(v->viot);
    g_assert_cmpuint(v->viot[8], ==, 0); /* revision 0 */
    g_assert_cmpuint(v->len, ==, 48 + 16 + 24 * (n_nodes - 1));
    g_assert_cmpuint(u16_at(v->viot + 36), ==, n_nodes);
    g_assert_cmpuint(u16_at(v->viot + 38), ==, 48);
    g_assert_cmpuint(n[0], ==, 3); /* virtio-pci IOMMU */
    g_assert_cmpuint(u16_at(n + 2), ==, 16);
    g_assert_cmpuint(u16_at(n + 4), ==, 0); /* segment 0 */
    g_assert_cmphex(u16_at(n + 6), ==, bdf);
}

static void
test_absent_without_iommu(void)
{
    GwAcpiConfig cfg = {0};
    Viot v;

    build(&v, &cfg);
    g_assert_null(v.viot);
    g_assert_cmpuint(v.n_rsdt, ==, 3);
    gw_mem_free(v.mem);
}

/* Two boot endpoints: one exact range each, nothing else. */
static void
test_boot_endpoints(void)
{
    const uint32_t eps[] = {BDF(1), 1u << 16 | BDF(2)};
    GwAcpiConfig cfg = {.n_pci_segments = 2,
                        .viot = true,
                        .viommu_bdf = BDF(31),
                        .endpoints = eps,
                        .n_endpoints = 2};
    Viot v;

    build(&v, &cfg);
    g_assert_cmpuint(v.n_rsdt, ==, 4);
    assert_iommu_node(&v, 3, BDF(31));
    assert_range(&v, 0, 0, BDF(1), BDF(1));
    assert_range(&v, 1, 1, BDF(2), BDF(2));
    gw_mem_free(v.mem);
}

/* Segment 0 whole but for the IOMMU (two ranges around it), segment 2
 * whole; the endpoint on segment 2 is inside its range, not repeated. */
static void
test_iommu_segments(void)
{
    const uint32_t eps[] = {2u << 16 | BDF(1), 1u << 16 | BDF(3)};
    GwAcpiConfig cfg = {.n_pci_segments = 3,
                        .viot = true,
                        .viommu_bdf = BDF(31),
                        .iommu_segments = 1u << 0 | 1u << 2,
                        .endpoints = eps,
                        .n_endpoints = 2};
    Viot v;

    build(&v, &cfg);
    assert_iommu_node(&v, 5, BDF(31));
    assert_range(&v, 0, 0, 0, BDF(31) - 1);
    assert_range(&v, 1, 0, BDF(31) + 1, 0xffff);
    assert_range(&v, 2, 2, 0, 0xffff);
    assert_range(&v, 3, 1, BDF(3), BDF(3));
    gw_mem_free(v.mem);
}

static char *
disassemble(const char *dir, const uint8_t *t, size_t len, int *status)
{
    g_autofree char *dat = g_build_filename(dir, "viot.dat", NULL);
    g_autofree char *dsl = g_build_filename(dir, "viot.dsl", NULL);
    g_autofree char *out = NULL, *err = NULL;
    const char *argv[] = {"iasl", "-d", "viot.dat", NULL};
    char *text = NULL;

    g_assert_true(g_file_set_contents(dat, (const char *)t, len, NULL));
    g_assert_true(g_spawn_sync(dir, (char **)argv, NULL, G_SPAWN_SEARCH_PATH,
                               NULL, NULL, &out, &err, status, NULL));
    g_test_message("%s%s", out, err);
    g_assert_true(g_file_get_contents(dsl, &text, NULL, NULL));
    g_unlink(dat);
    g_unlink(dsl);
    return text;
}

/* iasl -d takes the table without an error.  An iasl that knows VIOT
 * (ACPICA 20210604 and later) shows its fields; an older one dumps it
 * as an unknown table, whose header it still checks. */
static void
test_iasl(void)
{
    g_autofree char *iasl = g_find_program_in_path("iasl");
    g_autofree char *dir = NULL, *text = NULL;
    const uint32_t eps[] = {1u << 16 | BDF(2)};
    GwAcpiConfig cfg = {.n_pci_segments = 2,
                        .viot = true,
                        .viommu_bdf = BDF(31),
                        .iommu_segments = 1,
                        .endpoints = eps,
                        .n_endpoints = 1};
    int status;
    Viot v;

    if (!iasl) {
        g_test_skip("iasl not installed (apt-get install acpica-tools)");
        return;
    }
    build(&v, &cfg);
    dir = g_dir_make_tmp("godwit-viot-XXXXXX", NULL);
    text = disassemble(dir, v.viot, v.len, &status);
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    g_assert_nonnull(strstr(text, "Signature : \"VIOT\""));
    g_assert_nonnull(strstr(text, "Revision : 00"));
    g_assert_null(strstr(text, "Invalid checksum"));
    g_assert_null(strstr(text, "Error"));
    if (!strstr(text, "Unknown ACPI table signature")) {
        g_assert_nonnull(strstr(text, "Node count : 0004"));
        g_assert_nonnull(strstr(text, "Node offset : 0030"));
    } else {
        g_test_message("this iasl does not decode VIOT's nodes");
    }
    g_rmdir(dir);
    gw_mem_free(v.mem);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/acpi/viot/absent-without-iommu",
                    test_absent_without_iommu);
    g_test_add_func("/acpi/viot/boot-endpoints-exact-ranges",
                    test_boot_endpoints);
    g_test_add_func("/acpi/viot/iommu-segments-whole-less-the-iommu",
                    test_iommu_segments);
    g_test_add_func("/acpi/viot/iasl-disassembles", test_iasl);
    return g_test_run();
}
