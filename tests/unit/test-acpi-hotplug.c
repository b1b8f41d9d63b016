/*
 * The GPE0 block of acpi-pm and the ACPI PCI hotplug registers, driven
 * the way a guest's AML and ACPICA drive them.
 */
#include <glib.h>
#include <godwit/acpi-pcihp.h>
#include <godwit/acpi-pm.h>
#include <godwit/boot.h>

#define PM1_STS (GW_ACPI_PM1_STS - GW_ACPI_PM_BASE)
#define PM1_EN  (GW_ACPI_PM1_EN - GW_ACPI_PM_BASE)
#define GPE_STS 0
#define GPE_EN  2
#define HP_GPE  (1u << GW_ACPI_PCIHP_GPE_BIT)

/* ---- GPE0 ---- */

typedef struct {
    bool sci;
    unsigned sci_edges;
} PmSink;

static void
pm_sleep(gpointer o, unsigned t)
{
}

static void
pm_reset(gpointer o)
{
}

static void
pm_sci(gpointer o, bool level)
{
    PmSink *s = o;
    s->sci = level;
    s->sci_edges++;
}

static const GwAcpiPmHooks pm_hooks = {pm_sleep, pm_reset, pm_sci};

static void
test_gpe_status_write_one_to_clear(void)
{
    PmSink sink = {0};
    g_autoptr(GwAcpiPm) pm = gw_acpi_pm_new(&pm_hooks, &sink);

    gw_acpi_pm_set_gpe(pm, 1);
    gw_acpi_pm_set_gpe(pm, 9);
    g_assert_cmphex(gw_acpi_gpe_ops.read(pm, GPE_STS, 2), ==, 0x202);
    gw_acpi_gpe_ops.write(pm, GPE_STS, 0x1, 2); /* not set: no effect */
    g_assert_cmphex(gw_acpi_gpe_ops.read(pm, GPE_STS, 2), ==, 0x202);
    gw_acpi_gpe_ops.write(pm, GPE_STS, 0x2, 1);
    g_assert_cmphex(gw_acpi_gpe_ops.read(pm, GPE_STS, 2), ==, 0x200);
    gw_acpi_gpe_ops.write(pm, GPE_STS + 1, 0x2, 1); /* bit 9, high byte */
    g_assert_cmphex(gw_acpi_gpe_ops.read(pm, GPE_STS, 2), ==, 0);
}

static void
test_gpe_enable_read_write_any_width(void)
{
    PmSink sink = {0};
    g_autoptr(GwAcpiPm) pm = gw_acpi_pm_new(&pm_hooks, &sink);

    gw_acpi_gpe_ops.write(pm, GPE_EN, 0x0302, 2);
    g_assert_cmphex(gw_acpi_gpe_ops.read(pm, GPE_EN, 2), ==, 0x0302);
    g_assert_cmphex(gw_acpi_gpe_ops.read(pm, GPE_EN + 1, 1), ==, 0x03);
    gw_acpi_gpe_ops.write(pm, GPE_EN + 1, 0x80, 1); /* high byte only */
    g_assert_cmphex(gw_acpi_gpe_ops.read(pm, GPE_EN, 2), ==, 0x8002);
    gw_acpi_pm_set_gpe(pm, 0);
    g_assert_cmphex(gw_acpi_gpe_ops.read(pm, 0, 4), ==, 0x80020001);
    /* A dword write: status half clears, enable half is written. */
    gw_acpi_gpe_ops.write(pm, 0, 0x00040001, 4);
    g_assert_cmphex(gw_acpi_gpe_ops.read(pm, 0, 4), ==, 0x00040000);
}

static void
test_gpe_raises_sci_when_enabled(void)
{
    PmSink sink = {0};
    g_autoptr(GwAcpiPm) pm = gw_acpi_pm_new(&pm_hooks, &sink);

    gw_acpi_pm_set_gpe(pm, 1);
    g_assert_false(sink.sci); /* not enabled yet */
    gw_acpi_gpe_ops.write(pm, GPE_EN, 0x2, 1);
    g_assert_true(sink.sci);
    gw_acpi_gpe_ops.write(pm, GPE_STS, 0x2, 1);
    g_assert_false(sink.sci);
    gw_acpi_pm_set_gpe(pm, 1); /* enabled: straight to the line */
    g_assert_true(sink.sci);
    gw_acpi_gpe_ops.write(pm, GPE_EN, 0, 1); /* masking lowers it */
    g_assert_false(sink.sci);
}

/* One SCI line, two sources: it drops only when neither is pending. */
static void
test_sci_is_pm1_or_gpe(void)
{
    PmSink sink = {0};
    g_autoptr(GwAcpiPm) pm = gw_acpi_pm_new(&pm_hooks, &sink);

    gw_acpi_pm_ops.write(pm, PM1_EN, 1 << 8, 2);
    gw_acpi_gpe_ops.write(pm, GPE_EN, 0x2, 2);
    gw_acpi_pm_press_power_button(pm);
    gw_acpi_pm_set_gpe(pm, 1);
    g_assert_true(sink.sci);
    gw_acpi_gpe_ops.write(pm, GPE_STS, 0x2, 2);
    g_assert_true(sink.sci); /* the power button still holds it */
    gw_acpi_pm_set_gpe(pm, 1);
    gw_acpi_pm_ops.write(pm, PM1_STS, 1 << 8, 2);
    g_assert_true(sink.sci); /* the GPE still holds it */
    gw_acpi_gpe_ops.write(pm, GPE_STS, 0x2, 2);
    g_assert_false(sink.sci);
}

static void
test_gpe_reset_clears(void)
{
    PmSink sink = {0};
    g_autoptr(GwAcpiPm) pm = gw_acpi_pm_new(&pm_hooks, &sink);

    gw_acpi_gpe_ops.write(pm, GPE_EN, 0xffff, 2);
    gw_acpi_pm_set_gpe(pm, 1);
    g_assert_true(sink.sci);
    gw_acpi_pm_reset(pm);
    g_assert_false(sink.sci);
    g_assert_cmphex(gw_acpi_gpe_ops.read(pm, 0, 4), ==, 0);
}

/* ---- PCI hotplug registers ---- */

typedef struct {
    unsigned gpes;
    GArray *ejected; /* unsigned: bus << 8 | slot, in order */
} HpSink;

static void
hp_gpe(gpointer o)
{
    ((HpSink *)o)->gpes++;
}

static void
hp_eject(gpointer o, unsigned bus, unsigned slot)
{
    unsigned v = bus << 8 | slot;
    g_array_append_val(((HpSink *)o)->ejected, v);
}

static const GwAcpiPcihpHooks hp_hooks = {hp_gpe, hp_eject};

typedef struct {
    HpSink sink;
    GwAcpiPcihp *hp;
} Fixture;

static void
fx_setup(Fixture *f, gconstpointer data)
{
    f->sink.ejected = g_array_new(false, false, sizeof(unsigned));
    f->hp = gw_acpi_pcihp_new(&hp_hooks, &f->sink, 1);
}

static void
fx_teardown(Fixture *f, gconstpointer data)
{
    gw_acpi_pcihp_free(f->hp);
    g_array_unref(f->sink.ejected);
}

static uint32_t
rd(Fixture *f, unsigned reg)
{
    return (uint32_t)gw_acpi_pcihp_ops.read(f->hp, reg, 4);
}

static void
wr(Fixture *f, unsigned reg, uint32_t v)
{
    gw_acpi_pcihp_ops.write(f->hp, reg, v, 4);
}

static void
assert_ejected(Fixture *f, unsigned n, const unsigned *slots)
{
    g_assert_cmpuint(f->sink.ejected->len, ==, n);
    for (unsigned i = 0; i < n; i++) {
        g_assert_cmpuint(g_array_index(f->sink.ejected, unsigned, i), ==,
                         slots[i]);
    }
}

static void
test_plugged_sets_pciu_read_clears(Fixture *f, gconstpointer d)
{
    gw_acpi_pcihp_plugged(f->hp, 0, 3);
    g_assert_cmpuint(f->sink.gpes, ==, 1);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCID), ==, 0);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCIU), ==, 1u << 3);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCIU), ==, 0);
    gw_acpi_pcihp_plugged(f->hp, 0, 31);
    gw_acpi_pcihp_plugged(f->hp, 0, 4);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCIU), ==, 1u << 31 | 1u << 4);
}

static void
test_unplug_pending_until_ejected(Fixture *f, gconstpointer d)
{
    static const unsigned five[] = {5};

    g_assert_true(gw_acpi_pcihp_request_unplug(f->hp, 0, 5));
    g_assert_cmpuint(f->sink.gpes, ==, 1);
    g_assert_true(gw_acpi_pcihp_unplug_pending(f->hp, 0, 5));
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCID), ==, 1u << 5);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCID), ==, 1u << 5); /* not r/c */
    assert_ejected(f, 0, NULL);
    wr(f, GW_ACPI_PCIHP_B0EJ, 1u << 5);
    assert_ejected(f, 1, five);
    g_assert_false(gw_acpi_pcihp_unplug_pending(f->hp, 0, 5));
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCID), ==, 0);
    wr(f, GW_ACPI_PCIHP_B0EJ, 1u << 5); /* done: a second eject is moot */
    assert_ejected(f, 1, five);
}

/* The guest cannot yank a device the host did not ask to remove. */
static void
test_eject_without_request_ignored(Fixture *f, gconstpointer d)
{
    gw_acpi_pcihp_plugged(f->hp, 0, 4);
    wr(f, GW_ACPI_PCIHP_B0EJ, 1u << 4);
    wr(f, GW_ACPI_PCIHP_B0EJ, 1u << 9);
    wr(f, GW_ACPI_PCIHP_B0EJ, 0);
    assert_ejected(f, 0, NULL);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCIU), ==, 1u << 4);
}

static void
test_eject_takes_lowest_slot(Fixture *f, gconstpointer d)
{
    static const unsigned three[] = {3};

    gw_acpi_pcihp_request_unplug(f->hp, 0, 3);
    gw_acpi_pcihp_request_unplug(f->hp, 0, 6);
    wr(f, GW_ACPI_PCIHP_B0EJ, 1u << 3 | 1u << 6);
    assert_ejected(f, 1, three);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCID), ==, 1u << 6);
}

static void
test_second_request_is_a_retry(Fixture *f, gconstpointer d)
{
    static const unsigned five[] = {5};

    g_assert_true(gw_acpi_pcihp_request_unplug(f->hp, 0, 5));
    g_assert_true(gw_acpi_pcihp_request_unplug(f->hp, 0, 5));
    g_assert_cmpuint(f->sink.gpes, ==, 2);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCID), ==, 1u << 5);
    wr(f, GW_ACPI_PCIHP_B0EJ, 1u << 5);
    wr(f, GW_ACPI_PCIHP_B0EJ, 1u << 5);
    assert_ejected(f, 1, five);
}

/* Plugged then unplugged before the guest looked: no stale notice. */
static void
test_eject_clears_plug_notice(Fixture *f, gconstpointer d)
{
    gw_acpi_pcihp_plugged(f->hp, 0, 5);
    gw_acpi_pcihp_request_unplug(f->hp, 0, 5);
    wr(f, GW_ACPI_PCIHP_B0EJ, 1u << 5);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCIU), ==, 0);
}

static void
test_removability(Fixture *f, gconstpointer d)
{
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCIRMV), ==, 0xfffffffe);
    g_assert_false(gw_acpi_pcihp_hotpluggable(f->hp, 0, 0));
    gw_acpi_pcihp_set_hotpluggable(f->hp, 0, 0, true); /* the host bridge */
    gw_acpi_pcihp_set_hotpluggable(f->hp, 0, 2, false);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCIRMV), ==, 0xfffffffa);
    g_assert_false(gw_acpi_pcihp_hotpluggable(f->hp, 0, 2));
    g_assert_false(gw_acpi_pcihp_request_unplug(f->hp, 0, 2));
    g_assert_false(gw_acpi_pcihp_request_unplug(f->hp, 0, 0));
    g_assert_false(gw_acpi_pcihp_request_unplug(f->hp, 0, 32));
    g_assert_cmpuint(f->sink.gpes, ==, 0);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCID), ==, 0);
    gw_acpi_pcihp_set_hotpluggable(f->hp, 0, 2, true);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCIRMV), ==, 0xfffffffe);
}

static void
test_fixed_while_pending_keeps_device(Fixture *f, gconstpointer d)
{
    gw_acpi_pcihp_request_unplug(f->hp, 0, 7);
    gw_acpi_pcihp_set_hotpluggable(f->hp, 0, 7, false);
    wr(f, GW_ACPI_PCIHP_B0EJ, 1u << 7);
    assert_ejected(f, 0, NULL);
    g_assert_false(gw_acpi_pcihp_unplug_pending(f->hp, 0, 7));
}

static void
test_selector(Fixture *f, gconstpointer d)
{
    gw_acpi_pcihp_plugged(f->hp, 0, 3);
    gw_acpi_pcihp_request_unplug(f->hp, 0, 6);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_SEL), ==, 0);
    wr(f, GW_ACPI_PCIHP_SEL, 1); /* a bus that does not exist here */
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_SEL), ==, 1);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCIU), ==, 0);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCID), ==, 0);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCIRMV), ==, 0);
    wr(f, GW_ACPI_PCIHP_B0EJ, 1u << 6);
    assert_ejected(f, 0, NULL);
    wr(f, GW_ACPI_PCIHP_SEL, 256); /* out of QEMU's range: all zero */
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_SEL), ==, 0);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCIRMV), ==, 0);
    wr(f, GW_ACPI_PCIHP_SEL, 0);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCIU), ==, 1u << 3); /* kept */
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCID), ==, 1u << 6);
}

static void
test_feature_and_acpi_index_read_zero(Fixture *f, gconstpointer d)
{
    gw_acpi_pcihp_request_unplug(f->hp, 0, 6);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_B0EJ), ==, 0);
    wr(f, GW_ACPI_PCIHP_AIDX, 1u << 6);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_AIDX), ==, 0);
    assert_ejected(f, 0, NULL); /* AIDX is not an eject */
}

static void
test_other_widths_not_decoded(Fixture *f, gconstpointer d)
{
    gw_acpi_pcihp_plugged(f->hp, 0, 3);
    gw_acpi_pcihp_request_unplug(f->hp, 0, 3);
    g_assert_cmphex(gw_acpi_pcihp_ops.read(f->hp, GW_ACPI_PCIHP_PCID, 2), ==,
                    0xffff);
    g_assert_cmphex(gw_acpi_pcihp_ops.read(f->hp, 1, 4), ==, 0xffffffff);
    gw_acpi_pcihp_ops.write(f->hp, GW_ACPI_PCIHP_B0EJ, 1u << 3, 1);
    gw_acpi_pcihp_ops.write(f->hp, GW_ACPI_PCIHP_SEL, 5, 2);
    assert_ejected(f, 0, NULL);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_SEL), ==, 0);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCIU), ==, 1u << 3); /* not read */
}

static void
test_reset_completes_pending_unplugs(Fixture *f, gconstpointer d)
{
    static const unsigned both[] = {3, 9};

    gw_acpi_pcihp_set_hotpluggable(f->hp, 0, 2, false);
    gw_acpi_pcihp_request_unplug(f->hp, 0, 9);
    gw_acpi_pcihp_request_unplug(f->hp, 0, 3);
    gw_acpi_pcihp_plugged(f->hp, 0, 4);
    wr(f, GW_ACPI_PCIHP_SEL, 7);
    gw_acpi_pcihp_reset(f->hp);
    assert_ejected(f, 2, both);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_SEL), ==, 0);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCID), ==, 0);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCIU), ==, 0);
    g_assert_cmphex(rd(f, GW_ACPI_PCIHP_PCIRMV), ==, 0xfffffffa);
}

/* Each segment is its own bus selector: its notices, requests and
 * ejects stay on it; a selector past the last segment shows nothing. */
static void
test_buses_are_separate(void)
{
    HpSink sink = {.ejected = g_array_new(false, false, sizeof(unsigned))};
    g_autoptr(GwAcpiPcihp) hp = gw_acpi_pcihp_new(&hp_hooks, &sink, 3);
    const GwDeviceOps *ops = &gw_acpi_pcihp_ops;

    gw_acpi_pcihp_plugged(hp, 2, 5);
    g_assert_true(gw_acpi_pcihp_request_unplug(hp, 1, 7));
    g_assert_false(gw_acpi_pcihp_request_unplug(hp, 3, 7));
    g_assert_false(gw_acpi_pcihp_unplug_pending(hp, 0, 7));
    g_assert_cmphex(ops->read(hp, GW_ACPI_PCIHP_PCIU, 4), ==, 0); /* bus 0 */
    ops->write(hp, GW_ACPI_PCIHP_SEL, 2, 4);
    g_assert_cmphex(ops->read(hp, GW_ACPI_PCIHP_PCIU, 4), ==, 1u << 5);
    g_assert_cmphex(ops->read(hp, GW_ACPI_PCIHP_PCID, 4), ==, 0);
    ops->write(hp, GW_ACPI_PCIHP_B0EJ, 1u << 7, 4); /* not bus 2's */
    g_assert_cmpuint(sink.ejected->len, ==, 0);
    ops->write(hp, GW_ACPI_PCIHP_SEL, 3, 4); /* no segment 3 */
    g_assert_cmphex(ops->read(hp, GW_ACPI_PCIHP_PCIRMV, 4), ==, 0);
    ops->write(hp, GW_ACPI_PCIHP_SEL, 1, 4);
    g_assert_cmphex(ops->read(hp, GW_ACPI_PCIHP_PCID, 4), ==, 1u << 7);
    ops->write(hp, GW_ACPI_PCIHP_B0EJ, 1u << 7, 4);
    g_assert_cmpuint(sink.ejected->len, ==, 1);
    g_assert_cmphex(g_array_index(sink.ejected, unsigned, 0), ==, 1u << 8 | 7);
    gw_acpi_pcihp_request_unplug(hp, 2, 4);
    gw_acpi_pcihp_request_unplug(hp, 0, 9);
    gw_acpi_pcihp_reset(hp);
    g_assert_cmpuint(sink.ejected->len, ==, 3);
    g_assert_cmphex(g_array_index(sink.ejected, unsigned, 1), ==, 9);
    g_assert_cmphex(g_array_index(sink.ejected, unsigned, 2), ==, 2u << 8 | 4);
    g_array_unref(sink.ejected);
}

/* ---- both together, as the machine wires them ---- */

typedef struct {
    GwAcpiPm *pm;
    HpSink hp;
} Board;

static void
board_gpe(gpointer o)
{
    gw_acpi_pm_set_gpe(((Board *)o)->pm, GW_ACPI_PCIHP_GPE_BIT);
}

static void
board_eject(gpointer o, unsigned bus, unsigned slot)
{
    hp_eject(&((Board *)o)->hp, bus, slot);
}

static const GwAcpiPcihpHooks board_hooks = {board_gpe, board_eject};

/* What ACPICA and the DSDT's _E01 and _EJ0 do, step by step. */
static void
test_guest_acknowledges_unplug(void)
{
    PmSink sci = {0};
    Board b = {.hp.ejected = g_array_new(false, false, sizeof(unsigned))};
    g_autoptr(GwAcpiPcihp) hp = NULL;

    b.pm = gw_acpi_pm_new(&pm_hooks, &sci);
    hp = gw_acpi_pcihp_new(&board_hooks, &b, 1);
    gw_acpi_gpe_ops.write(b.pm, GPE_EN, HP_GPE, 1); /* GPE 1 has _E01 */
    g_assert_true(gw_acpi_pcihp_request_unplug(hp, 0, 8));
    g_assert_true(sci.sci);
    /* SCI handler: GPE 1 is set, clear it (edge), run _E01. */
    g_assert_cmphex(gw_acpi_gpe_ops.read(b.pm, GPE_STS, 1), ==, HP_GPE);
    gw_acpi_gpe_ops.write(b.pm, GPE_STS, HP_GPE, 1);
    g_assert_false(sci.sci);
    gw_acpi_pcihp_ops.write(hp, GW_ACPI_PCIHP_SEL, 0, 4);
    g_assert_cmphex(gw_acpi_pcihp_ops.read(hp, GW_ACPI_PCIHP_PCIU, 4), ==, 0);
    g_assert_cmphex(gw_acpi_pcihp_ops.read(hp, GW_ACPI_PCIHP_PCID, 4), ==,
                    1u << 8);
    /* Notify (S08, 3) → the OS releases the device → _EJ0 → PCEJ. */
    gw_acpi_pcihp_ops.write(hp, GW_ACPI_PCIHP_B0EJ, 1u << 8, 4);
    g_assert_cmpuint(b.hp.ejected->len, ==, 1);
    g_assert_cmpuint(g_array_index(b.hp.ejected, unsigned, 0), ==, 8);
    g_assert_false(gw_acpi_pcihp_unplug_pending(hp, 0, 8));
    gw_acpi_pm_free(b.pm);
    g_array_unref(b.hp.ejected);
}

#define ADD(path, fn)                                                          \
    g_test_add("/acpi-hotplug/pcihp/" path, Fixture, NULL, fx_setup, fn,       \
               fx_teardown)

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/acpi-hotplug/pcihp/segments/separate-buses",
                    test_buses_are_separate);
    g_test_add_func("/acpi-hotplug/gpe/status-write-one-to-clear",
                    test_gpe_status_write_one_to_clear);
    g_test_add_func("/acpi-hotplug/gpe/enable-any-width",
                    test_gpe_enable_read_write_any_width);
    g_test_add_func("/acpi-hotplug/gpe/raises-sci-only-when-enabled",
                    test_gpe_raises_sci_when_enabled);
    g_test_add_func("/acpi-hotplug/gpe/sci-is-pm1-or-gpe",
                    test_sci_is_pm1_or_gpe);
    g_test_add_func("/acpi-hotplug/gpe/reset-clears", test_gpe_reset_clears);
    ADD("plugged-sets-pciu-read-clears", test_plugged_sets_pciu_read_clears);
    ADD("unplug-pending-until-ejected", test_unplug_pending_until_ejected);
    ADD("eject-without-request-ignored", test_eject_without_request_ignored);
    ADD("eject-takes-lowest-slot", test_eject_takes_lowest_slot);
    ADD("second-request-is-a-retry", test_second_request_is_a_retry);
    ADD("eject-clears-plug-notice", test_eject_clears_plug_notice);
    ADD("removability-register", test_removability);
    ADD("fixed-while-pending-keeps-device",
        test_fixed_while_pending_keeps_device);
    ADD("selector-other-buses-read-zero", test_selector);
    ADD("feature-and-acpi-index-read-zero",
        test_feature_and_acpi_index_read_zero);
    ADD("other-widths-not-decoded", test_other_widths_not_decoded);
    ADD("reset-completes-pending-unplugs",
        test_reset_completes_pending_unplugs);
    g_test_add_func("/acpi-hotplug/board/guest-acknowledges-unplug",
                    test_guest_acknowledges_unplug);
    return g_test_run();
}
