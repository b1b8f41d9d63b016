/*
 * The AML encoder, byte for byte, and the DSDT/FADT/MCFG that
 * gw_acpi_build writes with PCI hotplug on and off and with 1 or 3 PCI
 * segments; with iasl installed, the DSDT is also disassembled and
 * compiled back, and the MCFG disassembled.
 */
#include <string.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <godwit/acpi-pcihp.h>
#include <godwit/aml.h>
#include <godwit/boot.h>
#include <godwit/memory.h>
#include <godwit/util.h>

static void
assert_bytes(GwAml *a, const char *want, size_t len)
{
    g_autoptr(GByteArray) got = gw_aml_encode(a);

    g_assert_cmpmem(got->data, got->len, want, len);
}

#define ASSERT_AML(a, lit) assert_bytes((a), (lit), sizeof(lit) - 1)

typedef struct {
    uint64_t v;
    const char *bytes;
    size_t len;
} IntCase;

static const IntCase int_cases[] = {
    {0, "\x00", 1},
    {1, "\x01", 1},
    {2, "\x0a\x02", 2},
    {0xff, "\x0a\xff", 2},
    {0x100, "\x0b\x00\x01", 3},
    {0x10000, "\x0c\x00\x00\x01\x00", 5},
    {0x100000000ull, "\x0e\x00\x00\x00\x00\x01\x00\x00\x00", 9},
    {UINT64_MAX, "\xff", 1},
};

static void
test_int_shortest_encoding(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(int_cases); i++) {
        assert_bytes(gw_aml_int(int_cases[i].v), int_cases[i].bytes,
                     int_cases[i].len);
    }
}

static void
test_name_strings(void)
{
    ASSERT_AML(gw_aml_path("S1"), "S1__");
    ASSERT_AML(gw_aml_path("\\_SB.PCI0"), "\\\x2e_SB_PCI0");
    ASSERT_AML(gw_aml_path("\\_SB.PCI0.BLCK"), "\\\x2f\x03_SB_PCI0BLCK");
    ASSERT_AML(gw_aml_name("_SUN", gw_aml_int(3)), "\x08_SUN\x0a\x03");
}

static void
test_eisaid(void)
{
    ASSERT_AML(gw_aml_eisaid("PNP0A03"), "\x0c\x41\xd0\x0a\x03");
    ASSERT_AML(gw_aml_eisaid("PNP0C02"), "\x0c\x41\xd0\x0c\x02");
}

/* A package of n Zeros: PkgLength counts itself and NumElements. */
static GByteArray *
zeros_package(unsigned n)
{
    GwAml *p = gw_aml_package();

    for (unsigned i = 0; i < n; i++) {
        gw_aml_append(p, gw_aml_int(0));
    }
    return gw_aml_encode(p);
}

static void
test_pkg_length_boundaries(void)
{
    g_autoptr(GByteArray) one = zeros_package(61); /* 1 + 1 + 61 = 63 */
    g_autoptr(GByteArray) two = zeros_package(62); /* 2 + 1 + 62 = 65 */
    g_autoptr(GByteArray) big = NULL;
    g_autofree char *s = g_strnfill(5000, 'x');
    GwAml *scope = gw_aml_scope("BIG");
    size_t total;

    g_assert_cmphex(one->data[1], ==, 63);
    g_assert_cmpuint(one->data[2], ==, 61);
    g_assert_cmpuint(one->len, ==, 1 + 63);
    g_assert_cmphex(two->data[1], ==, 0x40 | (65 & 0xf));
    g_assert_cmphex(two->data[2], ==, 65 >> 4);
    g_assert_cmpuint(two->len, ==, 1 + 65);
    gw_aml_append(scope, gw_aml_string(s));
    big = gw_aml_encode(scope);
    total = 3 + 4 + 1 + 5000 + 1; /* 3-byte PkgLength from 4096 on */
    g_assert_cmpuint(big->len, ==, 1 + total);
    g_assert_cmphex(big->data[1], ==, 0x80 | (total & 0xf));
    g_assert_cmphex(big->data[2], ==, (total >> 4) & 0xff);
    g_assert_cmphex(big->data[3], ==, total >> 12);
}

static void
test_statements(void)
{
    GwAml *m = gw_aml_method("PCEJ", 2, false);

    gw_aml_append(m, gw_aml_acquire("BLCK", 0xffff));
    gw_aml_append(m,
                  gw_aml_store(gw_aml_shift_left(gw_aml_int(1), gw_aml_arg(1)),
                               gw_aml_path("B0EJ")));
    gw_aml_append(m, gw_aml_release("BLCK"));
    ASSERT_AML(m, "\x14\x1d"
                  "PCEJ\x02"
                  "\x5b\x23"
                  "BLCK\xff\xff"
                  "\x70\x79\x01\x69\x00"
                  "B0EJ"
                  "\x5b\x27"
                  "BLCK");
    ASSERT_AML(gw_aml_if(gw_aml_and(gw_aml_arg(0), gw_aml_int(2))),
               "\xa0\x06\x7b\x68\x0a\x02\x00");
    ASSERT_AML(gw_aml_call("DVNT", 2, gw_aml_path("PCIU"), gw_aml_int(1)),
               "DVNTPCIU\x01");
    ASSERT_AML(gw_aml_field_unit("PCIU", 32), "PCIU\x20");
    ASSERT_AML(gw_aml_opregion_io("PCST", 0xae00, 0x18),
               "\x5b\x80PCST\x01\x0b\x00\xae\x0a\x18");
}

static void
test_resource_template(void)
{
    g_autoptr(GByteArray) r = g_byte_array_new();

    gw_aml_res_io(r, 0xcf8, 8);
    ASSERT_AML(gw_aml_resource_template(r), "\x11\x0d\x0a\x0a"
                                            "\x47\x01\xf8\x0c\xf8\x0c\x01\x08"
                                            "\x79\x00");
}

/* ---- the tables ---- */

static const uint8_t *
table_at(GwGuestMemory *mem, uint32_t gpa, const char *sig)
{
    const uint8_t *t = gw_mem_ptr(mem, gpa, 36);
    uint32_t len;
    uint8_t sum = 0;

    g_assert_nonnull(t);
    g_assert_cmpmem(t, 4, sig, 4);
    memcpy(&len, t + 4, 4);
    t = gw_mem_ptr(mem, gpa, len);
    for (uint32_t i = 0; i < len; i++) {
        sum += t[i];
    }
    g_assert_cmpuint(sum, ==, 0);
    return t;
}

typedef struct {
    GwGuestMemory *mem;
    const uint8_t *fadt, *dsdt, *mcfg;
    uint32_t dsdt_len, mcfg_len;
} Tables;

static void
build_segments(Tables *t, bool hotplug, unsigned n_segments)
{
    GwAcpiConfig cfg = {.n_cpus = 1,
                        .ecam_base = 0xE0000000ull,
                        .n_pci_segments = n_segments,
                        .pci_hotplug = hotplug};
    uint32_t a, rsdt;

    t->mem = gw_mem_new(16 << 20, false, true, NULL);
    g_assert_nonnull(t->mem);
    g_assert_true(gw_acpi_build(t->mem, &cfg, NULL));
    memcpy(&rsdt,
           (const uint8_t *)gw_mem_ptr(t->mem, GW_ACPI_RSDP_GPA, 20) + 16, 4);
    memcpy(&a, table_at(t->mem, rsdt, "RSDT") + 36, 4);
    t->fadt = table_at(t->mem, a, "FACP");
    memcpy(&a, table_at(t->mem, rsdt, "RSDT") + 44, 4);
    t->mcfg = table_at(t->mem, a, "MCFG");
    memcpy(&t->mcfg_len, t->mcfg + 4, 4);
    memcpy(&a, t->fadt + 40, 4);
    t->dsdt = table_at(t->mem, a, "DSDT");
    memcpy(&t->dsdt_len, t->dsdt + 4, 4);
}

static void
build(Tables *t, bool hotplug)
{
    build_segments(t, hotplug, 1);
}

static bool
dsdt_has(const Tables *t, const char *bytes, size_t len)
{
    return memmem(t->dsdt, t->dsdt_len, bytes, len) != NULL;
}

#define HAS(t, lit) dsdt_has((t), (lit), sizeof(lit) - 1)

/* \_S5 first, PCI0 and its windows, whatever the hotplug setting. */
static void
assert_common(const Tables *t)
{
    g_assert_true(memcmp(t->dsdt + 36, "\x08_S5_\x12\x08\x04\x0a\x05", 10) ==
                  0);
    g_assert_true(HAS(t, "\x5b\x82")); /* a Device */
    g_assert_true(HAS(t, "PCI0\x08_HID\x0c\x41\xd0\x0a\x08"));
    /* DWordMemory 0xC0000000-0xDFFFFFFF, length 512 MiB */
    g_assert_true(HAS(t, "\x00\x00\x00\xc0\xff\xff\xff\xdf\x00\x00\x00\x00"
                         "\x00\x00\x00\x20"));
    /* Memory32Fixed over ECAM */
    g_assert_true(HAS(t, "\x86\x09\x00\x01\x00\x00\x00\xe0\x00\x00\x10\x00"));
}

static void
test_dsdt_without_hotplug(void)
{
    Tables t;
    uint32_t gpe0;

    build(&t, false);
    assert_common(&t);
    g_assert_false(HAS(&t, "_GPE"));
    g_assert_false(HAS(&t, "PCST"));
    g_assert_false(HAS(&t, "_EJ0"));
    memcpy(&gpe0, t.fadt + 80, 4);
    g_assert_cmphex(gpe0, ==, 0);
    g_assert_cmpuint(t.fadt[92], ==, 0);
    gw_mem_free(t.mem);
}

static void
test_dsdt_with_hotplug(void)
{
    Tables t;
    uint32_t gpe0;
    uint64_t x_gpe0;

    build(&t, true);
    assert_common(&t);
    memcpy(&gpe0, t.fadt + 80, 4);
    g_assert_cmphex(gpe0, ==, GW_ACPI_GPE0_BASE);
    g_assert_cmpuint(t.fadt[92], ==, GW_ACPI_GPE0_LEN);
    g_assert_cmpmem(t.fadt + 220, 4, "\x01\x20\x00\x01", 4); /* IO, 32, byte */
    memcpy(&x_gpe0, t.fadt + 224, 8);
    g_assert_cmphex(x_gpe0, ==, GW_ACPI_GPE0_BASE);
    g_assert_true(HAS(&t, "\x5b\x80PCST\x01\x0b\x00\xae\x0a\x18"));
    g_assert_true(HAS(&t, "\x43PCIU\x20PCID\x20" /* DWordAcc, WriteAsZeros */
                          "B0EJ\x20PCRM\x20"
                          "BNUM\x20PIDX\x20"));
    for (unsigned slot = 1; slot < 32; slot++) {
        g_autofree char *dev = g_strdup_printf(
            "S%02X_\x08_ADR\x0c%c%c%c%c\x08_SUN", slot, 0, 0, slot, 0);
        g_autofree char *notify =
            g_strdup_printf("\x86S%02X_\x69", slot); /* Notify (Sxx, Arg1) */
        g_assert_true(dsdt_has(&t, dev, 19)); /* 3 fields of 5 after it */
        g_assert_true(dsdt_has(&t, notify, 6));
    }
    g_assert_false(HAS(&t, "S00_"));
    g_assert_true(HAS(&t, "_EJ0\x01PCEJBSEL_SUN"));
    g_assert_true(HAS(&t, "_E01\x00"));
    g_assert_false(HAS(&t, "PC01"));
    g_assert_cmpuint(t.mcfg_len, ==, 36 + 8 + 16); /* one segment */
    gw_mem_free(t.mem);
}

/* MCFG entry `i`: ECAM base and segment, start and end bus 0. */
static void
assert_mcfg_entry(const Tables *t, unsigned i, uint64_t base, uint16_t seg)
{
    const uint8_t *e = t->mcfg + 36 + 8 + 16 * i;
    uint64_t got_base;
    uint16_t got_seg;

    memcpy(&got_base, e, 8);
    memcpy(&got_seg, e + 8, 2);
    g_assert_cmphex(got_base, ==, base);
    g_assert_cmpuint(got_seg, ==, seg);
    g_assert_cmpuint(e[10], ==, 0);
    g_assert_cmpuint(e[11], ==, 0);
}

/* Three segments: an MCFG entry and a host bridge each, segment 0's
 * unchanged; each bridge's own window, slots and hotplug selector. */
static void
test_three_segments(void)
{
    Tables t;

    build_segments(&t, true, 3);
    assert_common(&t);
    g_assert_cmpuint(t.mcfg_len, ==, 36 + 8 + 3 * 16);
    assert_mcfg_entry(&t, 0, 0xE0000000ull, 0);
    assert_mcfg_entry(&t, 1, 0xE0100000ull, 1);
    assert_mcfg_entry(&t, 2, 0xE0200000ull, 2);
    g_assert_true(HAS(&t, "PC01\x08_HID\x0c\x41\xd0\x0a\x08"));
    g_assert_true(HAS(&t, "PC02\x08_HID\x0c\x41\xd0\x0a\x08"));
    g_assert_false(HAS(&t, "PC03"));
    g_assert_true(HAS(&t, "_SEG\x0a\x02")); /* _SEG 2, _BBN 0, _UID 2 */
    g_assert_true(HAS(&t, "_UID\x0a\x02"));
    /* PC02's window: 0xE2000000-0xE2FFFFFF, 16 MiB */
    g_assert_true(HAS(&t, "\x00\x00\x00\xe2\xff\xff\xff\xe2\x00\x00\x00\x00"
                          "\x00\x00\x00\x01"));
    /* segment 2's ECAM reserved as a motherboard resource */
    g_assert_true(HAS(&t, "\x86\x09\x00\x01\x00\x00\x20\xe0\x00\x00\x10\x00"));
    g_assert_true(HAS(&t, "BSEL\x0a\x02"));
    gw_mem_free(t.mem);
    /* without hotplug: the bridges, none of the hotplug objects */
    build_segments(&t, false, 3);
    g_assert_true(HAS(&t, "PC02\x08_HID"));
    g_assert_cmpuint(t.mcfg_len, ==, 36 + 8 + 3 * 16);
    g_assert_false(HAS(&t, "BSEL"));
    g_assert_false(HAS(&t, "_EJ0"));
    g_assert_false(HAS(&t, "_GPE"));
    gw_mem_free(t.mem);
}

/* ---- iasl ---- */

static char *
run(const char *dir, const char *const *argv, int *status)
{
    g_autofree char *out = NULL, *err = NULL;
    g_autoptr(GError) e = NULL;

    g_assert_true(g_spawn_sync(dir, (char **)argv, NULL, G_SPAWN_SEARCH_PATH,
                               NULL, NULL, &out, &err, status, &e));
    return g_strconcat(out, err, NULL);
}

static void
remove_dir(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *f;

    while (d && (f = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(dir, f, NULL);
        g_unlink(p);
    }
    g_rmdir(dir);
}

/* The most segments godwit allows fit below 1 MiB, hotplug AML and
 * all; one more is refused, not written. */
static void
test_sixteen_segments_fit(void)
{
    g_autoptr(GError) err = NULL;
    GwAcpiConfig cfg = {.n_cpus = 1,
                        .ecam_base = 0xE0000000ull,
                        .n_pci_segments = 17,
                        .pci_hotplug = true};
    GwGuestMemory *mem = gw_mem_new(16 << 20, false, true, NULL);
    Tables t;

    g_assert_false(gw_acpi_build(mem, &cfg, &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_INVALID);
    g_assert_nonnull(strstr(err->message, "17 PCI segments"));
    gw_mem_free(mem);
    build_segments(&t, true, 16);
    g_assert_cmpuint(t.mcfg_len, ==, 36 + 8 + 16 * 16);
    assert_mcfg_entry(&t, 15, 0xE0F00000ull, 15);
    g_assert_true(HAS(&t, "PC0F\x08_HID"));
    gw_mem_free(t.mem);
}

/* Writes `len` bytes as dir/name.dat, runs iasl -d on it and returns
 * the disassembly (dir/name.dsl); the test fails if iasl does. */
static char *
disassemble(const char *dir, const char *name, const uint8_t *t, size_t len)
{
    g_autofree char *dat_name = g_strdup_printf("%s.dat", name);
    g_autofree char *dat = g_build_filename(dir, dat_name, NULL);
    g_autofree char *dsl = g_strdup_printf("%s/%s.dsl", dir, name);
    const char *dis[] = {"iasl", "-d", dat_name, NULL};
    g_autofree char *log = NULL;
    char *text = NULL;
    int status;

    g_assert_true(g_file_set_contents(dat, (const char *)t, len, NULL));
    log = run(dir, dis, &status);
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_test_message("%s", log);
    }
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    g_assert_true(g_file_get_contents(dsl, &text, NULL, NULL));
    return text;
}

/* Compiles dir/name.dsl back: no errors, no warnings. */
static void
recompile(const char *dir, const char *name)
{
    g_autofree char *dsl = g_strdup_printf("%s.dsl", name);
    const char *asl[] = {"iasl", "-p", "again", dsl, NULL};
    g_autofree char *log = NULL;
    int status;

    log = run(dir, asl, &status);
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_test_message("%s", log);
    }
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    g_assert_nonnull(strstr(log, "0 Errors, 0 Warnings"));
}

/* iasl -d of the MCFG and DSDT of 3 segments, the DSDT compiled back. */
static void
test_iasl_three_segments(void)
{
    g_autofree char *dir = NULL, *dsdt = NULL, *mcfg = NULL;
    g_autofree char *iasl = g_find_program_in_path("iasl");
    Tables t;

    if (!iasl) {
        g_test_skip("iasl not installed (apt-get install acpica-tools)");
        return;
    }
    build_segments(&t, true, 3);
    dir = g_dir_make_tmp("godwit-dsdt-XXXXXX", NULL);
    mcfg = disassemble(dir, "mcfg", t.mcfg, t.mcfg_len);
    g_assert_null(strstr(mcfg, "**** Unknown"));
    g_assert_nonnull(strstr(mcfg, "Base Address : 00000000E0200000"));
    g_assert_nonnull(strstr(mcfg, "Segment Group Number : 0002"));
    dsdt = disassemble(dir, "dsdt", t.dsdt, t.dsdt_len);
    g_assert_nonnull(strstr(dsdt, "Device (PCI0)"));
    g_assert_nonnull(strstr(dsdt, "Device (PC01)"));
    g_assert_nonnull(strstr(dsdt, "Device (PC02)"));
    g_assert_nonnull(strstr(dsdt, "Name (_SEG, 0x02)"));
    g_assert_nonnull(strstr(dsdt, "Name (BSEL, 0x02)"));
    g_assert_nonnull(strstr(dsdt, "\\_SB.PCI0.PCEJ (BSEL, _SUN)"));
    g_assert_nonnull(strstr(dsdt, "\\_SB.PC02.PCNT ()"));
    g_assert_nonnull(strstr(dsdt, "0xE2FFFFFF,         // Range Maximum"));
    recompile(dir, "dsdt");
    remove_dir(dir);
    gw_mem_free(t.mem);
}

static void
test_dsdt_iasl_round_trip(void)
{
    g_autofree char *iasl = g_find_program_in_path("iasl");
    g_autofree char *dir = NULL, *text = NULL, *mcfg = NULL;
    Tables t;

    if (!iasl) {
        g_test_skip("iasl not installed (apt-get install acpica-tools)");
        return;
    }
    build(&t, true);
    dir = g_dir_make_tmp("godwit-dsdt-XXXXXX", NULL);
    mcfg = disassemble(dir, "mcfg", t.mcfg, t.mcfg_len);
    g_assert_nonnull(strstr(mcfg, "Base Address : 00000000E0000000"));
    g_assert_null(strstr(mcfg, "Segment Group Number : 0001"));
    text = disassemble(dir, "dsdt", t.dsdt, t.dsdt_len);
    g_assert_nonnull(strstr(text, "Device (PCI0)"));
    g_assert_nonnull(strstr(text, "EisaId (\"PNP0A08\")"));
    g_assert_nonnull(strstr(text, "OperationRegion (PCST, SystemIO, 0xAE00, "
                                  "0x18)"));
    g_assert_nonnull(strstr(text, "B0EJ = (One << Arg1)"));
    g_assert_nonnull(strstr(text, "Device (S1F)"));
    g_assert_nonnull(strstr(text, "Notify (S1F, Arg1)"));
    g_assert_nonnull(strstr(text, "DVNT (PCID, 0x03)"));
    g_assert_nonnull(strstr(text, "Method (_E01, 0, NotSerialized)"));
    g_assert_nonnull(strstr(text, "\\_SB.PCI0.PCNT ()"));
    g_assert_nonnull(strstr(text, "0xDFFFFFFF,         // Range Maximum"));
    g_assert_null(strstr(text, "PC01"));
    recompile(dir, "dsdt");
    remove_dir(dir);
    gw_mem_free(t.mem);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/aml/int/shortest-encoding", test_int_shortest_encoding);
    g_test_add_func("/aml/name-string/segments-padded-and-prefixed",
                    test_name_strings);
    g_test_add_func("/aml/eisaid/compressed-big-endian", test_eisaid);
    g_test_add_func("/aml/pkg-length/one-two-three-bytes",
                    test_pkg_length_boundaries);
    g_test_add_func("/aml/statements/method-acquire-store-shift-if",
                    test_statements);
    g_test_add_func("/aml/resource-template/end-tag-and-size",
                    test_resource_template);
    g_test_add_func("/acpi/dsdt/without-hotplug-no-gpe-no-slots",
                    test_dsdt_without_hotplug);
    g_test_add_func("/acpi/dsdt/with-hotplug-slots-registers-gpe",
                    test_dsdt_with_hotplug);
    g_test_add_func("/acpi/dsdt/iasl-disassembles-and-recompiles",
                    test_dsdt_iasl_round_trip);
    g_test_add_func("/acpi/segments/three-bridges-three-mcfg-entries",
                    test_three_segments);
    g_test_add_func("/acpi/segments/iasl-disassembles-mcfg-and-dsdt",
                    test_iasl_three_segments);
    g_test_add_func("/acpi/segments/sixteen-fit-seventeen-refused",
                    test_sixteen_segments_fit);
    return g_test_run();
}
