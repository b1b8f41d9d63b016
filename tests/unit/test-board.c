/*
 * The parts of the KVM board that need no /dev/kvm: guest memory, the
 * address bus, the 16550 UART, the ACPI PM block, the Multiboot loader
 * and the ACPI tables.
 */
#include <elf.h>
#include <string.h>
#include <godwit/acpi-pm.h>
#include <godwit/boot.h>
#include <godwit/bus.h>
#include <godwit/memory.h>
#include <godwit/serial.h>
#include <godwit/util.h>

#define MiB (1ull << 20)

/* ---- memory ---- */

static void
test_mem_bounds(void)
{
    g_autoptr(GwGuestMemory) mem = gw_mem_new(8 * MiB, false, true, NULL);

    g_assert_nonnull(mem);
    g_assert_true(gw_mem_ptr(mem, 0, 8 * MiB) == mem->host);
    g_assert_nonnull(gw_mem_ptr(mem, 8 * MiB - 1, 1));
    g_assert_null(gw_mem_ptr(mem, 8 * MiB - 1, 2));
    g_assert_null(gw_mem_ptr(mem, UINT64_MAX, 2));
    g_assert_null(gw_mem_ptr(mem, 1, UINT64_MAX));
}

static void
test_mem_pci_hole(void)
{
    uint64_t size = GW_MEM_LOW_END + 64 * MiB;
    g_autoptr(GwGuestMemory) mem = gw_mem_new(size, false, true, NULL);
    uint32_t v = 0xfeedf00d, got = 0;

    g_assert_nonnull(mem);
    g_assert_cmpuint(mem->n_regions, ==, 2);
    g_assert_cmpuint(mem->regions[1].gpa, ==, GW_MEM_HIGH_GPA);
    g_assert_cmpuint(mem->regions[1].size, ==, 64 * MiB);
    g_assert_null(gw_mem_ptr(mem, GW_MEM_LOW_END, 4)); /* the hole */
    g_assert_true(gw_mem_write(mem, GW_MEM_HIGH_GPA, &v, 4));
    g_assert_true(gw_mem_read(mem, GW_MEM_HIGH_GPA, &got, 4));
    g_assert_cmphex(got, ==, v);
    /* The high region is the memfd right after the low one. */
    g_assert_true(memcmp(mem->host + GW_MEM_LOW_END, &v, 4) == 0);
}

static void
test_mem_hugepages_unreserved(void)
{
    g_autofree char *nr = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(GwGuestMemory) mem = NULL;

    if (!g_file_get_contents("/proc/sys/vm/nr_hugepages", &nr, NULL, NULL) ||
        atoi(nr) != 0) {
        g_test_skip("huge pages are reserved on this host");
        return;
    }
    mem = gw_mem_new(4 * MiB, true, true, &err);
    g_assert_null(mem);
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, "huge pages"));
}

static void
test_mem_rejects_unaligned(void)
{
    g_autoptr(GError) err = NULL;
    g_assert_null(gw_mem_new(MiB + 1, false, true, &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_INVALID);
}

/* ---- bus ---- */

typedef struct {
    uint64_t last_off, last_val;
    unsigned last_size;
} Recorder;

static uint64_t
rec_read(void *dev, uint64_t off, unsigned size)
{
    Recorder *r = dev;
    r->last_off = off;
    r->last_size = size;
    return 0x1234 + off;
}

static void
rec_write(void *dev, uint64_t off, uint64_t val, unsigned size)
{
    Recorder *r = dev;
    r->last_off = off;
    r->last_val = val;
    r->last_size = size;
}

static const GwDeviceOps rec_ops = {"rec", rec_read, rec_write};

static void
test_bus_dispatch(void)
{
    g_autoptr(GwBus) bus = gw_bus_new("pio");
    Recorder a = {0}, b = {0};
    g_autoptr(GError) err = NULL;
    uint64_t v;

    g_assert_true(gw_bus_add(bus, 0x100, 0x10, &rec_ops, &a, NULL));
    g_assert_true(gw_bus_add(bus, 0x200, 0x8, &rec_ops, &b, NULL));
    g_assert_false(gw_bus_add(bus, 0x10f, 2, &rec_ops, &b, &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_EXISTS);
    g_assert_true(gw_bus_read(bus, 0x104, 2, &v));
    g_assert_cmphex(v, ==, 0x1238);
    g_assert_cmpuint(a.last_size, ==, 2);
    g_assert_true(gw_bus_write(bus, 0x207, 1, 0xab));
    g_assert_cmpuint(b.last_off, ==, 7);
    g_assert_cmphex(b.last_val, ==, 0xab);
    /* Unmapped, or straddling the end of a range: all ones, not handled. */
    g_assert_false(gw_bus_read(bus, 0x180, 4, &v));
    g_assert_cmphex(v, ==, 0xffffffff);
    g_assert_false(gw_bus_read(bus, 0x10f, 2, &v));
    g_assert_false(gw_bus_write(bus, 0x300, 1, 0));
    g_assert_true(gw_bus_remove(bus, 0x100));
    g_assert_false(gw_bus_read(bus, 0x104, 1, &v));
    g_assert_false(gw_bus_remove(bus, 0x100));
}

/* Every access is counted where it went: the exits a device model ran. */
static void
test_bus_counts(void)
{
    g_autoptr(GwBus) bus = gw_bus_new("mmio");
    Recorder a = {0}, b = {0};
    uint64_t v, unclaimed;

    g_assert_true(gw_bus_add(bus, 0x200, 0x8, &rec_ops, &b, NULL));
    g_assert_true(gw_bus_add(bus, 0x100, 0x10, &rec_ops, &a, NULL));
    gw_bus_read(bus, 0x104, 4, &v);
    gw_bus_write(bus, 0x108, 4, 1);
    gw_bus_write(bus, 0x10c, 4, 1);
    gw_bus_write(bus, 0x200, 1, 1);
    gw_bus_read(bus, 0x180, 4, &v); /* nothing there */
    gw_bus_write(bus, 0x10f, 2, 0); /* straddles the end */
    g_autoptr(GArray) st = gw_bus_stats(bus, &unclaimed);
    g_assert_cmpuint(st->len, ==, 2);
    GwBusRangeStats *r = &g_array_index(st, GwBusRangeStats, 0);
    g_assert_cmpstr(r->name, ==, "rec");
    g_assert_cmphex(r->base, ==, 0x100); /* address order */
    g_assert_cmpuint(r->len, ==, 0x10);
    g_assert_cmpuint(r->reads, ==, 1);
    g_assert_cmpuint(r->writes, ==, 2);
    r = &g_array_index(st, GwBusRangeStats, 1);
    g_assert_cmpuint(r->reads, ==, 0);
    g_assert_cmpuint(r->writes, ==, 1);
    g_assert_cmpuint(unclaimed, ==, 2);
}

/* ---- serial ---- */

typedef struct {
    GString *out;
    bool irq;
    unsigned irq_changes;
} SerialSink;

static void
sink_out(gpointer opaque, uint8_t byte)
{
    SerialSink *s = opaque;
    g_string_append_c(s->out, (char)byte);
}

static void
sink_irq(gpointer opaque, bool level)
{
    SerialSink *s = opaque;
    s->irq = level;
    s->irq_changes++;
}

static void
test_serial_transmit(void)
{
    SerialSink sink = {g_string_new(NULL)};
    g_autoptr(GwSerial) s = gw_serial_new(sink_out, sink_irq, &sink);

    g_assert_cmphex(gw_serial_ops.read(s, 5, 1) & 0x60, ==, 0x60); /* LSR */
    for (const char *p = "GUEST ok\n"; *p; p++) {
        gw_serial_ops.write(s, 0, (uint8_t)*p, 1);
    }
    g_assert_cmpstr(sink.out->str, ==, "GUEST ok\n");
    g_assert_false(sink.irq); /* IER is 0: no interrupt */
    g_string_free(sink.out, TRUE);
}

static void
test_serial_thre_interrupt(void)
{
    SerialSink sink = {g_string_new(NULL)};
    g_autoptr(GwSerial) s = gw_serial_new(sink_out, sink_irq, &sink);

    gw_serial_ops.write(s, 1, 0x02, 1); /* IER: THRI */
    g_assert_true(sink.irq);
    g_assert_cmphex(gw_serial_ops.read(s, 2, 1) & 0x0f, ==, 0x02);
    g_assert_false(sink.irq); /* reading IIR acknowledged it */
    g_assert_cmphex(gw_serial_ops.read(s, 2, 1) & 0x0f, ==, 0x01);
    gw_serial_ops.write(s, 0, 'x', 1);
    g_assert_true(sink.irq);
    g_string_free(sink.out, TRUE);
}

static void
test_serial_receive(void)
{
    SerialSink sink = {g_string_new(NULL)};
    g_autoptr(GwSerial) s = gw_serial_new(sink_out, sink_irq, &sink);
    uint8_t many[40];

    memset(many, 'a', sizeof(many));
    gw_serial_ops.write(s, 1, 0x01, 1); /* IER: RDI */
    g_assert_cmpuint(gw_serial_receive(s, (const uint8_t *)"hi", 2), ==, 2);
    g_assert_true(sink.irq);
    g_assert_cmphex(gw_serial_ops.read(s, 5, 1) & 1, ==, 1); /* DR */
    g_assert_cmpuint(gw_serial_ops.read(s, 0, 1), ==, 'h');
    g_assert_cmpuint(gw_serial_ops.read(s, 0, 1), ==, 'i');
    g_assert_false(sink.irq);
    g_assert_cmphex(gw_serial_ops.read(s, 5, 1) & 1, ==, 0);
    g_assert_cmpuint(gw_serial_receive(s, many, sizeof(many)), ==, 16);
    g_string_free(sink.out, TRUE);
}

static void
test_serial_divisor_and_loopback(void)
{
    SerialSink sink = {g_string_new(NULL)};
    g_autoptr(GwSerial) s = gw_serial_new(sink_out, sink_irq, &sink);

    gw_serial_ops.write(s, 3, 0x80, 1); /* DLAB */
    gw_serial_ops.write(s, 0, 0x01, 1);
    gw_serial_ops.write(s, 1, 0x00, 1);
    g_assert_cmpuint(gw_serial_ops.read(s, 0, 1), ==, 1);
    gw_serial_ops.write(s, 3, 0x03, 1); /* 8N1 */
    g_assert_cmpuint(sink.out->len, ==, 0);
    gw_serial_ops.write(s, 4, 0x10, 1); /* loopback */
    gw_serial_ops.write(s, 0, 0x5a, 1);
    g_assert_cmpuint(sink.out->len, ==, 0);
    g_assert_cmpuint(gw_serial_ops.read(s, 0, 1), ==, 0x5a);
    g_string_free(sink.out, TRUE);
}

/* ---- ACPI PM ---- */

typedef struct {
    int slept, resets;
    unsigned slp_typ;
    bool sci;
} PmSink;

static void
pm_sleep(gpointer o, unsigned t)
{
    ((PmSink *)o)->slept++;
    ((PmSink *)o)->slp_typ = t;
}

static void
pm_reset(gpointer o)
{
    ((PmSink *)o)->resets++;
}

static void
pm_sci(gpointer o, bool level)
{
    ((PmSink *)o)->sci = level;
}

static const GwAcpiPmHooks pm_hooks = {pm_sleep, pm_reset, pm_sci};

static void
test_pm_s5(void)
{
    PmSink sink = {0};
    g_autoptr(GwAcpiPm) pm = gw_acpi_pm_new(&pm_hooks, &sink);
    uint64_t cnt = GW_ACPI_PM1_CNT - GW_ACPI_PM_BASE;

    g_assert_cmphex(gw_acpi_pm_ops.read(pm, cnt, 2) & 1, ==, 1); /* SCI_EN */
    gw_acpi_pm_ops.write(pm, cnt, GW_ACPI_S5_SLP_TYP << 10, 2);
    g_assert_cmpint(sink.slept, ==, 0); /* no SLP_EN */
    gw_acpi_pm_ops.write(pm, cnt, (GW_ACPI_S5_SLP_TYP << 10) | (1 << 13), 2);
    g_assert_cmpint(sink.slept, ==, 1);
    g_assert_cmpuint(sink.slp_typ, ==, GW_ACPI_S5_SLP_TYP);
    gw_acpi_pm_ops.write(pm, GW_ACPI_RESET - GW_ACPI_PM_BASE, 0x01, 1);
    g_assert_cmpint(sink.resets, ==, 0);
    gw_acpi_pm_ops.write(pm, GW_ACPI_RESET - GW_ACPI_PM_BASE,
                         GW_ACPI_RESET_VALUE, 1);
    g_assert_cmpint(sink.resets, ==, 1);
}

static void
test_pm_power_button(void)
{
    PmSink sink = {0};
    g_autoptr(GwAcpiPm) pm = gw_acpi_pm_new(&pm_hooks, &sink);
    uint64_t sts = GW_ACPI_PM1_STS - GW_ACPI_PM_BASE;
    uint64_t en = GW_ACPI_PM1_EN - GW_ACPI_PM_BASE;

    gw_acpi_pm_press_power_button(pm);
    g_assert_true(gw_acpi_pm_power_button_pending(pm));
    g_assert_false(sink.sci); /* not enabled yet */
    gw_acpi_pm_ops.write(pm, en, 1 << 8, 2);
    g_assert_true(sink.sci);
    g_assert_cmphex(gw_acpi_pm_ops.read(pm, sts, 2), ==, 1 << 8);
    gw_acpi_pm_ops.write(pm, sts, 1 << 8, 2); /* write 1 to clear */
    g_assert_false(sink.sci);
    g_assert_false(gw_acpi_pm_power_button_pending(pm));
}

/* ---- Multiboot ---- */

#define IMG_PADDR 0x200000u
#define IMG_ENTRY (IMG_PADDR + 0x20)

/* A minimal Multiboot ELF: header, one PT_LOAD with 64 file bytes + bss. */
static GByteArray *
make_elf(void)
{
    GByteArray *b = g_byte_array_new();
    Elf32_Ehdr eh = {
        .e_ident = {ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS32, ELFDATA2LSB,
                    EV_CURRENT},
        .e_type = ET_EXEC,
        .e_machine = EM_386,
        .e_version = EV_CURRENT,
        .e_entry = IMG_ENTRY,
        .e_phoff = sizeof(Elf32_Ehdr),
        .e_ehsize = sizeof(Elf32_Ehdr),
        .e_phentsize = sizeof(Elf32_Phdr),
        .e_phnum = 1,
    };
    Elf32_Phdr ph = {
        .p_type = PT_LOAD,
        .p_offset = 0x100,
        .p_paddr = IMG_PADDR,
        .p_vaddr = IMG_PADDR,
        .p_filesz = 64,
        .p_memsz = 4096,
    };
    uint32_t mb[3] = {0x1BADB002u, 0x3, -(0x1BADB002u + 0x3)};
    uint8_t payload[64];

    for (unsigned i = 0; i < sizeof(payload); i++) {
        payload[i] = (uint8_t)(i + 1);
    }
    memcpy(payload, mb, sizeof(mb));
    g_byte_array_set_size(b, 0x100 + sizeof(payload));
    memset(b->data, 0, b->len);
    memcpy(b->data, &eh, sizeof(eh));
    memcpy(b->data + sizeof(eh), &ph, sizeof(ph));
    memcpy(b->data + 0x100, payload, sizeof(payload));
    return b;
}

static GwGuestMemory *
small_ram(void)
{
    GwGuestMemory *mem = gw_mem_new(16 * MiB, false, true, NULL);
    g_assert_nonnull(mem);
    memset(mem->host, 0xcc, mem->size);
    return mem;
}

static void
test_multiboot_loads(void)
{
    g_autoptr(GByteArray) elf = make_elf();
    g_autoptr(GwGuestMemory) mem = small_ram();
    g_autoptr(GError) err = NULL;
    GwBootImage img;
    uint32_t info[13], mmap[3 * 6]; /* info up to mmap_addr */
    const char *cmdline;

    g_assert_true(gw_multiboot_load_buf(mem, "k", elf->data, elf->len,
                                        "memtest mib=4", &img, &err));
    g_assert_no_error(err);
    g_assert_cmphex(img.entry, ==, IMG_ENTRY);
    g_assert_cmphex(img.info_gpa, ==, GW_MULTIBOOT_INFO_GPA);
    g_assert_true(memcmp(gw_mem_ptr(mem, IMG_PADDR + 12, 52),
                         elf->data + 0x100 + 12, 52) == 0);
    g_assert_cmpuint(*(uint8_t *)gw_mem_ptr(mem, IMG_PADDR + 4095, 1), ==, 0);
    gw_mem_read(mem, GW_MULTIBOOT_INFO_GPA, info, sizeof(info));
    g_assert_cmphex(info[0] & 0x245, ==, 0x245); /* mem, cmdline, mmap, name */
    g_assert_cmpuint(info[2], ==, (16 * MiB - MiB) / 1024);
    cmdline = gw_mem_ptr(mem, info[4], 14);
    g_assert_cmpstr(cmdline, ==, "memtest mib=4");
    g_assert_cmpuint(info[11], ==, 3 * 24); /* three mmap entries */
    g_assert_true(gw_mem_read(mem, info[12], mmap, 3 * 24));
    /* Third entry: RAM from 1 MiB to the end, type 1. */
    g_assert_cmpuint(*(uint64_t *)((uint8_t *)mmap + 48 + 4), ==, MiB);
    g_assert_cmpuint(*(uint64_t *)((uint8_t *)mmap + 48 + 12), ==, 15 * MiB);
    g_assert_cmpuint(*(uint32_t *)((uint8_t *)mmap + 48 + 20), ==, 1);
}

typedef struct {
    const char *name;
    size_t offset; /* byte to patch in the image */
    uint32_t value;
    unsigned width;
    const char *want;
} ElfCase;

static const ElfCase elf_cases[] = {
    {"not-elf", 0, 0x7f454c47, 4, "is not an ELF file"},
    {"64-bit", 4, ELFCLASS64, 1, "is not a 32-bit x86 ELF"},
    {"arm", 18, EM_ARM, 2, "is not a 32-bit x86 ELF"},
    {"shared-object", 16, ET_DYN, 2, "is not a little-endian ELF executable"},
    {"phdrs-past-end", 28, 0x7fffff00, 4, "corrupt program header table"},
    {"no-multiboot", 0x100, 0x1BADB003, 4, "has no Multiboot v1 header"},
    {"video-mode", 0x104, 0x7, 4, "does not provide (video mode)"},
    {"below-1mib", sizeof(Elf32_Ehdr) + 12, 0x8000, 4, "loads below 1 MiB"},
    {"beyond-ram", sizeof(Elf32_Ehdr) + 12, 0x7fff0000, 4, "outside guest RAM"},
    {"segment-past-file", sizeof(Elf32_Ehdr) + 16, 0x10000, 4,
     "segment outside the file"},
    {"entry-outside", 24, 0x300000, 4, "entry point outside"},
};

static void
test_multiboot_rejects(gconstpointer data)
{
    const ElfCase *c = data;
    g_autoptr(GByteArray) elf = make_elf();
    g_autoptr(GwGuestMemory) mem = small_ram();
    g_autoptr(GError) err = NULL;
    GwBootImage img;

    memcpy(elf->data + c->offset, &c->value, c->width);
    if (c->offset == 0x104) { /* keep the checksum right */
        uint32_t sum = -(0x1BADB002u + c->value);
        memcpy(elf->data + 0x108, &sum, 4);
    }
    g_assert_false(gw_multiboot_load_buf(mem, "k.elf", elf->data, elf->len, "",
                                         &img, &err));
    g_assert_nonnull(err);
    if (!strstr(err->message, c->want)) {
        g_test_message("error '%s' lacks '%s'", err->message, c->want);
        g_test_fail();
    }
    g_assert_true(g_str_has_prefix(err->message, "--kernel: k.elf "));
}

static void
test_multiboot_missing_file(void)
{
    g_autoptr(GwGuestMemory) mem = small_ram();
    g_autoptr(GError) err = NULL;
    GwBootImage img;

    g_assert_false(
        gw_multiboot_load(mem, "/nonexistent/guest.elf", "", &img, &err));
    g_assert_nonnull(strstr(err->message, "/nonexistent/guest.elf"));
}

static void
test_multiboot_long_cmdline(void)
{
    g_autoptr(GByteArray) elf = make_elf();
    g_autoptr(GwGuestMemory) mem = small_ram();
    g_autoptr(GError) err = NULL;
    g_autofree char *longline = g_strnfill(GW_MAX_CMDLINE, 'x');
    GwBootImage img;

    g_assert_false(gw_multiboot_load_buf(mem, "k", elf->data, elf->len,
                                         longline, &img, &err));
    g_assert_nonnull(strstr(err->message, "--cmdline: longer than"));
}

/* ---- ACPI tables ---- */

static uint8_t
sum(const uint8_t *p, size_t len)
{
    uint8_t s = 0;
    while (len--) {
        s += *p++;
    }
    return s;
}

/* The table at gpa, after checking its signature and checksum. */
static const uint8_t *
table(GwGuestMemory *mem, uint32_t gpa, const char *sig)
{
    const uint8_t *t = gw_mem_ptr(mem, gpa, 36);
    uint32_t len;

    g_assert_nonnull(t);
    g_assert_true(memcmp(t, sig, 4) == 0);
    memcpy(&len, t + 4, 4);
    g_assert_cmpuint(sum(gw_mem_ptr(mem, gpa, len), len), ==, 0);
    return t;
}

static void
test_acpi_tables(void)
{
    g_autoptr(GwGuestMemory) mem = small_ram();
    GwAcpiConfig cfg = {.n_cpus = 2, .ecam_base = 0xE0000000ull};
    const uint8_t *rsdp, *rsdt, *fadt, *madt, *dsdt, *mcfg;
    uint32_t a, len, lapics = 0;
    uint64_t x;

    g_assert_true(gw_acpi_build(mem, &cfg, NULL));
    rsdp = gw_mem_ptr(mem, GW_ACPI_RSDP_GPA, 36);
    g_assert_true(memcmp(rsdp, "RSD PTR ", 8) == 0);
    g_assert_cmpuint(sum(rsdp, 20), ==, 0);
    g_assert_cmpuint(sum(rsdp, 36), ==, 0);
    memcpy(&a, rsdp + 16, 4);
    rsdt = table(mem, a, "RSDT");
    memcpy(&x, rsdp + 24, 8);
    table(mem, (uint32_t)x, "XSDT");
    memcpy(&a, rsdt + 36, 4);
    fadt = table(mem, a, "FACP");
    memcpy(&a, rsdt + 40, 4);
    madt = table(mem, a, "APIC");
    memcpy(&a, rsdt + 44, 4);
    mcfg = table(mem, a, "MCFG");
    memcpy(&x, mcfg + 44, 8);
    g_assert_cmphex(x, ==, cfg.ecam_base);
    g_assert_cmpuint(mcfg[44 + 8 + 3], ==, 0); /* end bus */
    memcpy(&a, fadt + 64, 4);
    g_assert_cmphex(a, ==, GW_ACPI_PM1_CNT);
    memcpy(&a, fadt + 40, 4);
    dsdt = table(mem, a, "DSDT");
    g_assert_nonnull(memmem(dsdt, 36 + 14, "_S5_\x12\x08\x04\x0a\x05", 9));
    memcpy(&len, madt + 4, 4);
    for (uint32_t off = 44; off < len; off += madt[off + 1]) {
        lapics += madt[off] == 0 && (madt[off + 4] & 1);
    }
    g_assert_cmpuint(lapics, ==, 2);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/board/mem/ptr-rejects-ranges-outside-ram",
                    test_mem_bounds);
    g_test_add_func("/board/mem/splits-around-pci-hole", test_mem_pci_hole);
    g_test_add_func("/board/mem/hugepages-unreserved-is-clear-error",
                    test_mem_hugepages_unreserved);
    g_test_add_func("/board/mem/rejects-unaligned-size",
                    test_mem_rejects_unaligned);
    g_test_add_func("/board/bus/dispatches-and-rejects-overlap",
                    test_bus_dispatch);
    g_test_add_func("/board/bus/counts-accesses-per-device-and-unclaimed",
                    test_bus_counts);
    g_test_add_func("/board/serial/transmits-to-output", test_serial_transmit);
    g_test_add_func("/board/serial/thre-interrupt-acked-by-iir",
                    test_serial_thre_interrupt);
    g_test_add_func("/board/serial/receive-fifo-and-rdi", test_serial_receive);
    g_test_add_func("/board/serial/divisor-latch-and-loopback",
                    test_serial_divisor_and_loopback);
    g_test_add_func("/board/acpi-pm/s5-and-reset-register", test_pm_s5);
    g_test_add_func("/board/acpi-pm/power-button-raises-sci",
                    test_pm_power_button);
    g_test_add_func("/board/multiboot/loads-segments-and-info",
                    test_multiboot_loads);
    for (size_t i = 0; i < G_N_ELEMENTS(elf_cases); i++) {
        g_autofree char *p =
            g_strdup_printf("/board/multiboot/rejects/%s", elf_cases[i].name);
        g_test_add_data_func(p, &elf_cases[i], test_multiboot_rejects);
    }
    g_test_add_func("/board/multiboot/rejects/missing-file",
                    test_multiboot_missing_file);
    g_test_add_func("/board/multiboot/rejects/long-cmdline",
                    test_multiboot_long_cmdline);
    g_test_add_func("/board/acpi/tables-found-and-checksummed",
                    test_acpi_tables);
    return g_test_run();
}
