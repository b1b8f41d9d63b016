/*
 * PCI config access, BAR mapping, MSI-X and the virtio-pci transport,
 * driven as a guest drives them (config cycles, MMIO on the bus), with a
 * recording interrupt controller and a fake virtio backend.
 */
#include <string.h>
#include <sys/eventfd.h>
#include <godwit/msix.h>
#include <godwit/pci.h>
#include <godwit/util.h>
#include <godwit/virtio-pci.h>
#include "irq-recorder.h"

/* ---- a fake virtio backend ---- */

typedef struct {
    int activations, resets;
    bool fail;
    GwVirtioActivation last;
    GwVirtqueueSetup q0;
    uint8_t config[8];
} Fake;

static bool
fake_activate(void *opaque, const GwVirtioActivation *a, GError **errp)
{
    Fake *f = opaque;
    f->activations++;
    f->last = *a;
    f->q0 = a->queues[0];
    if (f->fail) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED, "injected");
        return false;
    }
    return true;
}

static void
fake_reset(void *opaque)
{
    ((Fake *)opaque)->resets++;
}

static void
fake_config_read(void *opaque, unsigned off, void *buf, unsigned len)
{
    memcpy(buf, ((Fake *)opaque)->config + off, len);
}

static void
fake_config_write(void *opaque, unsigned off, const void *buf, unsigned len)
{
    memcpy(((Fake *)opaque)->config + off, buf, len);
}

static const GwVirtioDeviceOps fake_ops = {fake_activate, fake_reset,
                                           fake_config_read, fake_config_write};

/* ---- fixture: a bus with one virtio-blk-like function in slot 3 ---- */

typedef struct {
    GwBus *mmio;
    GwPciBus *pci;
    GwIrqRecorder rec;
    GwIrqChip irq;
    Fake fake;
    GwVirtioPci *vp;
    uint64_t bar0, bar1;
} Fx;

static uint32_t
cfg_read(Fx *fx, unsigned slot, unsigned off, unsigned size)
{
    uint32_t addr = 0x80000000u | slot << 11 | (off & 0xfc);
    gw_pci_cf8_ops.write(fx->pci, 0, addr, 4);
    return (uint32_t)gw_pci_cfc_ops.read(fx->pci, off & 3, size);
}

static void
cfg_write(Fx *fx, unsigned slot, unsigned off, unsigned size, uint32_t v)
{
    /* Through ECAM, so both access methods are exercised. */
    gw_pci_ecam_ops.write(fx->pci, (uint64_t)slot << 15 | off, v, size);
}

static void
fx_setup(Fx *fx, gconstpointer data)
{
    GwVirtioDeviceInfo info = {2, 0x1ull << 9, 2, 256, 8};

    fx->mmio = gw_bus_new("mmio");
    fx->pci = gw_pci_bus_new(0, fx->mmio);
    fx->irq = gw_irq_recorder_chip(&fx->rec);
    fx->vp = gw_virtio_pci_new(&info, &fake_ops, &fx->fake, &fx->irq, NULL);
    g_assert_nonnull(fx->vp);
    g_assert_true(
        gw_pci_bus_plug(fx->pci, gw_virtio_pci_device(fx->vp), 3, NULL));
    fx->bar0 = cfg_read(fx, 3, 0x10, 4) & ~0xfu;
    fx->bar1 = cfg_read(fx, 3, 0x14, 4) & ~0xfu;
    cfg_write(fx, 3, 0x04, 2, PCI_COMMAND_MEMORY);
}

static void
fx_teardown(Fx *fx, gconstpointer data)
{
    gw_pci_bus_unplug(fx->pci, gw_virtio_pci_device(fx->vp));
    gw_virtio_pci_free(fx->vp);
    gw_pci_bus_free(fx->pci);
    gw_bus_free(fx->mmio);
    g_assert_cmpint(fx->rec.routes, ==, 0); /* every route released */
}

static unsigned
find_cap(Fx *fx, unsigned slot, uint8_t id)
{
    unsigned off = cfg_read(fx, slot, 0x34, 1);

    for (int guard = 0; off && guard < 16; guard++) {
        if (cfg_read(fx, slot, off, 1) == id) {
            return off;
        }
        off = cfg_read(fx, slot, off + 1, 1);
    }
    g_assert_not_reached();
}

static uint64_t
mmio_read(Fx *fx, uint64_t addr, unsigned size)
{
    uint64_t v;
    g_assert_true(gw_bus_read(fx->mmio, addr, size, &v));
    return v;
}

static void
mmio_write(Fx *fx, uint64_t addr, unsigned size, uint64_t v)
{
    g_assert_true(gw_bus_write(fx->mmio, addr, size, v));
}

static void
common_write(Fx *fx, unsigned off, unsigned size, uint64_t v)
{
    mmio_write(fx, fx->bar0 + off, size, v);
}

static uint64_t
common_read(Fx *fx, unsigned off, unsigned size)
{
    return mmio_read(fx, fx->bar0 + off, size);
}

/* Negotiates and sets queue 0 up with vector 1, as a driver would. */
static void
driver_init(Fx *fx, bool driver_ok)
{
    common_write(fx, 0x14, 1, 0); /* reset */
    common_write(fx, 0x14, 1, 1 | 2);
    common_write(fx, 0x08, 4, 1);
    common_write(fx, 0x0c, 4, 1); /* VERSION_1 */
    common_write(fx, 0x14, 1, 1 | 2 | 8);
    g_assert_cmpuint(common_read(fx, 0x14, 1) & 8, ==, 8);
    /* MSI-X: entry 1 → addr/data, enable. */
    mmio_write(fx, fx->bar1 + 16, 4, 0xfee00000);
    mmio_write(fx, fx->bar1 + 16 + 8, 4, 0x4041);
    mmio_write(fx, fx->bar1 + 16 + 12, 4, 0);
    cfg_write(fx, 3, find_cap(fx, 3, 0x11) + 3, 1, 0x80); /* MSI-X on */
    common_write(fx, 0x16, 2, 0);
    common_write(fx, 0x18, 2, 128);
    common_write(fx, 0x1a, 2, 1);
    common_write(fx, 0x20, 4, 0x100000);
    common_write(fx, 0x24, 4, 0);
    common_write(fx, 0x28, 8, 0x101000);
    common_write(fx, 0x30, 8, 0x102000);
    common_write(fx, 0x1c, 2, 1);
    if (driver_ok) {
        common_write(fx, 0x14, 1, 1 | 2 | 8 | 4);
    }
}

static void
test_config_access(Fx *fx, gconstpointer data)
{
    g_assert_cmphex(cfg_read(fx, 0, 0, 4), ==, 0x00081b36);
    g_assert_cmphex(cfg_read(fx, 3, 0, 4), ==, 0x10421af4);
    g_assert_cmphex(cfg_read(fx, 3, 0x08, 4) >> 8, ==, 0x010000);
    g_assert_cmphex(cfg_read(fx, 7, 0, 4), ==, 0xffffffff);
    g_assert_cmphex(cfg_read(fx, 3, 0x02, 2), ==, 0x1042);
    /* Read-only bytes ignore writes. */
    cfg_write(fx, 3, 0, 4, 0x12345678);
    g_assert_cmphex(cfg_read(fx, 3, 0, 4), ==, 0x10421af4);
}

static void
test_caps(Fx *fx, gconstpointer data)
{
    unsigned types = 0, off = cfg_read(fx, 3, 0x34, 1);
    bool msix = false;

    g_assert_cmphex(cfg_read(fx, 3, 0x06, 2) & PCI_STATUS_CAP_LIST, !=, 0);
    for (int guard = 0; off && guard < 16; guard++) {
        uint8_t id = (uint8_t)cfg_read(fx, 3, off, 1);
        if (id == 0x09) {
            types |= 1u << cfg_read(fx, 3, off + 3, 1);
        } else if (id == 0x11) {
            msix = true;
            g_assert_cmpuint(cfg_read(fx, 3, off + 2, 2) & 0x7ff, ==, 2);
        }
        off = cfg_read(fx, 3, off + 1, 1);
    }
    g_assert_true(msix);
    /* common, notify, ISR, device, PCI configuration access */
    g_assert_cmphex(types, ==,
                    (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5));
}

static void
test_bar_sizing_and_moving(Fx *fx, gconstpointer data)
{
    uint64_t v, moved = fx->bar0 + 0x100000;

    g_assert_cmphex(fx->bar0, ==, GW_PCI_MMIO_BASE + 3 * GW_PCI_SLOT_WINDOW);
    g_assert_cmpuint(mmio_read(fx, fx->bar0 + 0x12, 2), ==, 2); /* queues */
    cfg_write(fx, 3, 0x04, 2, 0); /* decode off: BARs leave the bus */
    g_assert_false(gw_bus_read(fx->mmio, fx->bar0 + 0x12, 2, &v));
    cfg_write(fx, 3, 0x10, 4, 0xffffffff);
    g_assert_cmphex(cfg_read(fx, 3, 0x10, 4), ==, 0xffffc000);
    cfg_write(fx, 3, 0x10, 4, (uint32_t)moved);
    cfg_write(fx, 3, 0x04, 2, PCI_COMMAND_MEMORY);
    g_assert_cmpuint(mmio_read(fx, moved + 0x12, 2), ==, 2);
    g_assert_false(gw_bus_read(fx->mmio, fx->bar0 + 0x12, 2, &v));
}

static void
test_features_ok_needs_version_1(Fx *fx, gconstpointer data)
{
    common_write(fx, 0x14, 1, 1 | 2);
    common_write(fx, 0x00, 4, 1);
    g_assert_cmphex(common_read(fx, 0x04, 4), ==, 1); /* VERSION_1 offered */
    common_write(fx, 0x08, 4, 0);
    common_write(fx, 0x0c, 4, 1u << 9);
    common_write(fx, 0x14, 1, 1 | 2 | 8);
    g_assert_cmpuint(common_read(fx, 0x14, 1) & 8, ==, 0);
    /* A feature the device does not offer is refused too. */
    common_write(fx, 0x08, 4, 1);
    common_write(fx, 0x0c, 4, 1 | 2);
    common_write(fx, 0x14, 1, 1 | 2 | 8);
    g_assert_cmpuint(common_read(fx, 0x14, 1) & 8, ==, 0);
}

static void
test_driver_ok_activates(Fx *fx, gconstpointer data)
{
    driver_init(fx, true);
    g_assert_cmpint(fx->fake.activations, ==, 1);
    g_assert_cmphex(fx->fake.last.features, ==, 1ull << 32);
    g_assert_cmpuint(fx->fake.last.n_queues, ==, 2);
    g_assert_cmpuint(fx->fake.q0.size, ==, 128);
    g_assert_cmphex(fx->fake.q0.desc, ==, 0x100000);
    g_assert_cmphex(fx->fake.q0.avail, ==, 0x101000);
    g_assert_cmphex(fx->fake.q0.used, ==, 0x102000);
    g_assert_true(fx->fake.q0.enabled);
    /* The VMM is out of the data path: irqfd and ioeventfd in place. */
    g_assert_cmpint(fx->rec.irqfds, ==, 1);
    g_assert_cmpint(fx->rec.irqfd_gsi, >=, 24);
    g_assert_cmphex(fx->rec.route_data[fx->rec.irqfd_gsi - REC_FIRST_GSI], ==,
                    0x4041);
    g_assert_cmpint(fx->rec.ioeventfds, ==, 1);
    g_assert_cmphex(fx->rec.ioeventfd_addr, ==, fx->bar0 + 0x3000);
}

static void
test_notify_reaches_kick_fd(Fx *fx, gconstpointer data)
{
    eventfd_t n = 0;

    driver_init(fx, true);
    /* Without a kernel ioeventfd the write lands here and is forwarded. */
    mmio_write(fx, fx->bar0 + 0x3000, 2, 0);
    g_assert_cmpint(eventfd_read(fx->fake.q0.kick_fd, &n), ==, 0);
    g_assert_cmpuint(n, ==, 1);
}

static void
test_reset_unbinds(Fx *fx, gconstpointer data)
{
    driver_init(fx, true);
    common_write(fx, 0x14, 1, 0);
    g_assert_cmpint(fx->fake.resets, ==, 1);
    g_assert_cmpint(fx->rec.irqfds, ==, 0);
    g_assert_cmpint(fx->rec.ioeventfds, ==, 0);
    g_assert_cmpuint(common_read(fx, 0x14, 1), ==, 0);
    g_assert_cmpuint(common_read(fx, 0x18, 2), ==, 256); /* size back to max */
    /* And it comes up again. */
    driver_init(fx, true);
    g_assert_cmpint(fx->fake.activations, ==, 2);
}

static void
test_failed_activation_needs_reset(Fx *fx, gconstpointer data)
{
    fx->fake.fail = true;
    driver_init(fx, false);
    mmio_write(fx, fx->bar1 + 0, 4, 0xfee00000); /* vector 0 for config */
    mmio_write(fx, fx->bar1 + 8, 4, 0x4040);
    mmio_write(fx, fx->bar1 + 12, 4, 0);
    common_write(fx, 0x10, 2, 0);
    g_test_expect_message("godwit", G_LOG_LEVEL_WARNING,
                          "*device failed to start: injected");
    common_write(fx, 0x14, 1, 1 | 2 | 8 | 4);
    g_test_assert_expected_messages();
    g_assert_cmphex(common_read(fx, 0x14, 1) & 0x40, ==, 0x40);
    g_assert_cmpint(fx->rec.msis, ==, 1);
    g_assert_cmphex(fx->rec.last_msi_data, ==, 0x4040);
    g_assert_cmphex(mmio_read(fx, fx->bar0 + 0x1000, 1), ==, 2); /* ISR */
    g_assert_cmphex(mmio_read(fx, fx->bar0 + 0x1000, 1), ==, 0);
}

static void
test_masked_vector_pends(Fx *fx, gconstpointer data)
{
    driver_init(fx, true);
    mmio_write(fx, fx->bar1 + 16 + 12, 4, 1); /* mask vector 1 */
    g_assert_cmpint(fx->rec.irqfds, ==, 0);   /* irqfd follows the mask */
    mmio_write(fx, fx->bar1 + 0, 4, 0xfee00000);
    mmio_write(fx, fx->bar1 + 8, 4, 0x4040);
    mmio_write(fx, fx->bar1 + 12, 4, 1); /* vector 0 masked */
    common_write(fx, 0x10, 2, 0);
    gw_virtio_pci_config_changed(fx->vp);
    g_assert_cmpint(fx->rec.msis, ==, 0);
    g_assert_cmphex(mmio_read(fx, fx->bar1 + 0x800, 8) & 1, ==, 1); /* PBA */
    mmio_write(fx, fx->bar1 + 12, 4, 0); /* unmask: delivered */
    g_assert_cmpint(fx->rec.msis, ==, 1);
    g_assert_cmphex(mmio_read(fx, fx->bar1 + 0x800, 8) & 1, ==, 0);
    mmio_write(fx, fx->bar1 + 16 + 12, 4, 0);
    g_assert_cmpint(fx->rec.irqfds, ==, 1);
}

static void
test_device_config(Fx *fx, gconstpointer data)
{
    fx->fake.config[0] = 0xab;
    g_assert_cmphex(mmio_read(fx, fx->bar0 + 0x2000, 1), ==, 0xab);
    mmio_write(fx, fx->bar0 + 0x2004, 2, 0x1234);
    g_assert_cmphex(fx->fake.config[4], ==, 0x34);
    /* Past the device's config: nothing read, nothing written. */
    g_assert_cmphex(mmio_read(fx, fx->bar0 + 0x2008, 1), ==, 0);
}

/* ---- a hostile guest ---- */

/* DRIVER_OK again, or cleared and set again without a reset, starts
 * nothing a second time (vhost_vdpa_set_status refuses to clear bits). */
static void
test_driver_ok_twice(Fx *fx, gconstpointer data)
{
    driver_init(fx, true);
    common_write(fx, 0x14, 1, 1 | 2 | 8 | 4);
    common_write(fx, 0x14, 1, 1 | 2 | 8);
    g_assert_cmphex(common_read(fx, 0x14, 1), ==, 1 | 2 | 8 | 4);
    common_write(fx, 0x14, 1, 1 | 2 | 8 | 4);
    g_assert_cmpint(fx->fake.activations, ==, 1);
    g_assert_cmpint(fx->rec.irqfds, ==, 1);
    g_assert_cmpint(fx->rec.ioeventfds, ==, 1);
    /* A reset still resets. */
    common_write(fx, 0x14, 1, 0);
    g_assert_cmphex(common_read(fx, 0x14, 1), ==, 0);
    g_assert_cmpint(fx->fake.resets, ==, 1);
}

/* Sizes other than a power of two up to the maximum are ignored, and
 * the layout cannot change once the device runs. */
static void
test_queue_size_and_frozen_layout(Fx *fx, gconstpointer data)
{
    static const uint16_t bad[] = {0, 3, 100, 255, 512, 0xffff};

    common_write(fx, 0x16, 2, 0);
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        common_write(fx, 0x18, 2, bad[i]);
        g_assert_cmpuint(common_read(fx, 0x18, 2), ==, 256);
    }
    driver_init(fx, true);
    common_write(fx, 0x18, 2, 64);
    common_write(fx, 0x20, 8, 0xdead0000);
    common_write(fx, 0x1c, 2, 0);
    g_assert_cmpuint(common_read(fx, 0x18, 2), ==, 128);
    g_assert_cmphex(common_read(fx, 0x20, 8), ==, 0x100000);
    g_assert_cmpuint(common_read(fx, 0x1c, 2), ==, 1);
    /* a queue the device does not have */
    common_write(fx, 0x16, 2, 7);
    g_assert_cmpuint(common_read(fx, 0x18, 2), ==, 0);
}

/* Past the table and into the PBA: ignored, no route made or changed. */
static void
test_msix_past_table_and_pba(Fx *fx, gconstpointer data)
{
    uint64_t pba;
    int routes;

    driver_init(fx, true);
    routes = fx->rec.routes;
    pba = mmio_read(fx, fx->bar1 + GW_MSIX_PBA_OFFSET, 8);
    for (uint64_t off = 3 * 16; off < GW_MSIX_BAR_SIZE; off += 4) {
        mmio_write(fx, fx->bar1 + off, 4, 0xfee01234);
    }
    mmio_write(fx, fx->bar1 + GW_MSIX_BAR_SIZE - 8, 8, ~0ull);
    g_assert_cmphex(mmio_read(fx, fx->bar1 + 3 * 16, 4), ==, 0);
    g_assert_cmphex(mmio_read(fx, fx->bar1 + GW_MSIX_PBA_OFFSET, 8), ==, pba);
    g_assert_cmphex(mmio_read(fx, fx->bar1 + GW_MSIX_BAR_SIZE - 4, 4), ==, 0);
    g_assert_cmpint(fx->rec.routes, ==, routes);
    /* vector 1 is as the driver left it */
    g_assert_cmphex(mmio_read(fx, fx->bar1 + 16 + 8, 4), ==, 0x4041);
    /* a QWORD across entries 0 and 1 is not decoded: entry 1's address
     * and its route stay what they were */
    uint64_t ctrl0 = mmio_read(fx, fx->bar1 + 12, 4);
    mmio_write(fx, fx->bar1 + 12, 8, 0x12345678ull << 32);
    g_assert_cmphex(mmio_read(fx, fx->bar1 + 16, 4), ==, 0xfee00000);
    g_assert_cmphex(mmio_read(fx, fx->bar1 + 12, 4), ==, ctrl0);
    /* a queue vector beyond the table is refused: NO_VECTOR */
    common_write(fx, 0x16, 2, 0);
    common_write(fx, 0x1a, 2, 3);
    g_assert_cmphex(common_read(fx, 0x1a, 2), ==, GW_MSIX_NO_VECTOR);
}

static void
move_bar(Fx *fx, unsigned n, uint64_t addr)
{
    cfg_write(fx, 3, 0x04, 2, 0);
    cfg_write(fx, 3, 0x10 + 4 * n, 4, (uint32_t)addr);
    cfg_write(fx, 3, 0x04, 2, PCI_COMMAND_MEMORY);
}

/* A BAR moved over the other BAR, over ECAM, or out of the PCI hole is
 * not mapped; what it would have covered keeps working. */
static void
test_bar_overlaps(Fx *fx, gconstpointer data)
{
    uint64_t v;

    g_assert_true(gw_bus_add(fx->mmio, GW_PCI_ECAM_BASE, GW_PCI_ECAM_SIZE,
                             &gw_pci_ecam_ops, fx->pci, NULL));
    g_test_expect_message("godwit", G_LOG_LEVEL_WARNING,
                          "pci 03.0: BAR 1 not mapped*overlaps*");
    move_bar(fx, 1, fx->bar0);
    g_test_assert_expected_messages();
    g_assert_cmpuint(mmio_read(fx, fx->bar0 + 0x12, 2), ==, 2);
    g_assert_false(gw_bus_read(fx->mmio, fx->bar1, 4, &v));
    move_bar(fx, 1, fx->bar1);
    g_assert_true(gw_bus_read(fx->mmio, fx->bar1, 4, &v));
    g_test_expect_message("godwit", G_LOG_LEVEL_WARNING,
                          "pci 03.0: BAR 0 not mapped*overlaps pci-ecam*");
    move_bar(fx, 0, GW_PCI_ECAM_BASE);
    g_test_assert_expected_messages();
    g_assert_true(gw_bus_read(fx->mmio, GW_PCI_ECAM_BASE + (3 << 15), 4, &v));
    g_assert_cmphex(v, ==, 0x10421af4);
    /* into RAM, into the IOAPIC, wrapping: nothing decodes */
    static const uint64_t outside[] = {0x1000, 0xfec00000, 0xffffc000};
    for (size_t i = 0; i < G_N_ELEMENTS(outside); i++) {
        move_bar(fx, 0, outside[i]);
        g_assert_false(gw_bus_read(fx->mmio, outside[i] + 0x12, 2, &v));
    }
    move_bar(fx, 0, fx->bar0);
    g_assert_cmpuint(mmio_read(fx, fx->bar0 + 0x12, 2), ==, 2);
    gw_bus_remove(fx->mmio, GW_PCI_ECAM_BASE);
}

static void
test_plug_errors(void)
{
    g_autoptr(GwBus) mmio = gw_bus_new("mmio");
    g_autoptr(GwPciBus) pci = gw_pci_bus_new(0, mmio);
    GwPciDevice devs[GW_PCI_SLOTS];
    g_autoptr(GError) err = NULL;
    static const GwPciDeviceOps ops = {"dummy"};
    g_autoptr(json_object) q = NULL;

    for (unsigned i = 1; i < GW_PCI_SLOTS; i++) {
        gw_pci_device_init(&devs[i], &ops, 0x1234, (uint16_t)i, 0, 0, 0, 0);
        g_assert_true(gw_pci_bus_plug(pci, &devs[i], 0, NULL));
        g_assert_cmpuint(devs[i].slot, ==, i);
    }
    gw_pci_device_init(&devs[0], &ops, 0x1234, 0, 0, 0, 0, 0);
    g_assert_false(gw_pci_bus_plug(pci, &devs[0], 0, &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_BUSY);
    g_clear_error(&err);
    gw_pci_bus_unplug(pci, &devs[5]);
    g_assert_false(gw_pci_bus_plug(pci, &devs[0], 6, &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_EXISTS);
    g_assert_true(gw_pci_bus_plug(pci, &devs[0], 0, NULL));
    g_assert_cmpuint(devs[0].slot, ==, 5);
    q = gw_pci_bus_query(pci);
    g_assert_cmpuint(json_object_array_length(q), ==, GW_PCI_SLOTS);
}

/* Segments: 1 MiB of ECAM each after segment 0's, 16 MiB of slot
 * windows each after the ECAM area, none past the IOAPIC. */
static void
test_segment_layout(void)
{
    GwPciSegmentLayout l;

    gw_pci_segment_layout(0, &l);
    g_assert_cmphex(l.ecam, ==, GW_PCI_ECAM_BASE);
    g_assert_cmphex(l.mmio_base, ==, GW_PCI_MMIO_BASE);
    g_assert_cmphex(l.slot_window, ==, GW_PCI_SLOT_WINDOW);
    gw_pci_segment_layout(1, &l);
    g_assert_cmphex(l.ecam, ==, 0xE0100000ull);
    g_assert_cmphex(l.mmio_base, ==, 0xE1000000ull);
    g_assert_cmphex(l.slot_window, ==, 512 << 10);
    gw_pci_segment_layout(GW_PCI_MAX_SEGMENTS - 1, &l);
    g_assert_cmphex(l.ecam + GW_PCI_ECAM_SIZE, <=, 0xE1000000ull);
    g_assert_cmphex(l.mmio_base + GW_PCI_SLOTS * l.slot_window, <=,
                    0xFEC00000ull);
}

/* A function on segment 2: its BARs in segment 2's slot window, its
 * config space through segment 2's ECAM only; query-pci and errors name
 * the segment; BARs too big for the window are refused. */
static void
test_segment_bus(void)
{
    g_autoptr(GwBus) mmio = gw_bus_new("mmio");
    g_autoptr(GwPciBus) seg0 = gw_pci_bus_new(0, mmio);
    g_autoptr(GwPciBus) seg2 = gw_pci_bus_new(2, mmio);
    static const GwPciDeviceOps ops = {"dummy"};
    GwPciDevice dev, big, other;
    GwPciSegmentLayout l;
    g_autoptr(GError) err = NULL;
    uint32_t bar;

    gw_pci_segment_layout(2, &l);
    g_assert_cmpuint(gw_pci_bus_segment(seg2), ==, 2);
    gw_pci_device_init(&dev, &ops, 0x1af4, 0x1042, 0, 0, 0, 0);
    gw_pci_device_set_bar(&dev, 0, 0x4000, &gw_pci_ecam_ops, seg0);
    g_assert_true(gw_pci_bus_plug(seg2, &dev, 3, NULL));
    bar = gw_pci_ecam_ops.read(seg2, 3 << 15 | 0x10, 4);
    g_assert_cmphex(bar, ==, l.mmio_base + 3 * l.slot_window);
    g_assert_cmphex(gw_pci_ecam_ops.read(seg2, 3 << 15, 4), ==, 0x10421af4);
    g_assert_cmphex(gw_pci_ecam_ops.read(seg0, 3 << 15, 4), ==, 0xffffffff);
    g_assert_cmphex(gw_pci_config_read(seg0, 3 << 3, 0, 4), ==, 0xffffffff);
    gw_pci_device_init(&big, &ops, 0x1234, 1, 0, 0, 0, 0);
    gw_pci_device_set_bar(&big, 0, 1 << 20, &gw_pci_ecam_ops, seg0);
    g_assert_false(gw_pci_bus_plug(seg2, &big, 0, &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_INVALID);
    g_assert_nonnull(strstr(err->message, "PCI segment 2"));
    g_clear_error(&err);
    g_assert_true(gw_pci_bus_plug(seg0, &big, 0, NULL)); /* 16 MiB there */
    gw_pci_device_init(&other, &ops, 0x1234, 2, 0, 0, 0, 0);
    g_assert_false(gw_pci_bus_plug(seg2, &other, 3, &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_EXISTS);
    g_assert_nonnull(strstr(err->message, "PCI segment 2: slot 3"));
    gw_pci_bus_unplug(seg2, &dev);
    gw_pci_bus_unplug(seg0, &big);
}

int
main(int argc, char **argv)
{
    static const struct {
        const char *path;
        void (*fn)(Fx *, gconstpointer);
    } fx_tests[] = {
        {"/pci/config/cf8-and-ecam-access", test_config_access},
        {"/pci/caps/msix-and-virtio-capabilities", test_caps},
        {"/pci/bar/sizing-and-moving-follow-the-guest",
         test_bar_sizing_and_moving},
        {"/virtio-pci/features-ok/needs-version-1-and-offered-features",
         test_features_ok_needs_version_1},
        {"/virtio-pci/driver-ok/activates-with-irqfd-and-ioeventfd",
         test_driver_ok_activates},
        {"/virtio-pci/notify/reaches-kick-eventfd",
         test_notify_reaches_kick_fd},
        {"/virtio-pci/reset/unbinds-and-resets-backend", test_reset_unbinds},
        {"/virtio-pci/activate-failure/sets-needs-reset",
         test_failed_activation_needs_reset},
        {"/virtio-pci/msix/masked-vector-pends-until-unmasked",
         test_masked_vector_pends},
        {"/virtio-pci/device-config/forwarded-within-bounds",
         test_device_config},
        {"/virtio-pci/hostile/driver-ok-twice-starts-once",
         test_driver_ok_twice},
        {"/virtio-pci/hostile/queue-size-power-of-two-and-frozen-layout",
         test_queue_size_and_frozen_layout},
        {"/virtio-pci/hostile/msix-past-table-and-pba-ignored",
         test_msix_past_table_and_pba},
        {"/pci/hostile/bar-over-bar-ecam-or-outside-hole-unmapped",
         test_bar_overlaps},
    };

    g_test_init(&argc, &argv, NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(fx_tests); i++) {
        g_test_add(fx_tests[i].path, Fx, NULL, fx_setup, fx_tests[i].fn,
                   fx_teardown);
    }
    g_test_add_func("/pci/plug/full-bus-and-taken-slot", test_plug_errors);
    g_test_add_func("/pci/segments/layout-fits-the-hole", test_segment_layout);
    g_test_add_func("/pci/segments/bars-ecam-and-errors-per-segment",
                    test_segment_bus);
    return g_test_run();
}
