/*
 * The board's PCI segments (--platform num_pci_segments): bus 0 of each
 * with its ECAM window, and what finds or lists them.  Segment 0's bus
 * is a platform device of machine.c (its 0xCF8/0xCFC ports too); the
 * others have ECAM only, as on real multi-segment hosts.
 *
 * Threads: creation and freeing on the main thread before any vCPU or
 * test runs; the lookups with the device lock held.
 */
#include <godwit/pci.h>
#include <godwit/util.h>
#include "machine-priv.h"

G_STATIC_ASSERT(GW_MAX_PCI_SEGMENTS == GW_PCI_MAX_SEGMENTS);
G_STATIC_ASSERT(GW_ACPI_PCIHP_MAX_BUSES == GW_PCI_MAX_SEGMENTS);

unsigned
gw_machine_n_segments(const GwMachine *m)
{
    return m->cfg->num_pci_segments ? m->cfg->num_pci_segments : 1;
}

bool
gw_machine_create_segments(GwMachine *m, GError **errp)
{
    unsigned n = gw_machine_n_segments(m);

    if (n > GW_PCI_MAX_SEGMENTS) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "--platform: num_pci_segments=%u: at most %u PCI "
                    "segments fit the 32-bit PCI hole",
                    n, GW_PCI_MAX_SEGMENTS);
        return false;
    }
    for (unsigned s = 1; s < n; s++) {
        GwPciSegmentLayout l;

        gw_pci_segment_layout((uint16_t)s, &l);
        m->pci[s] = gw_pci_bus_new((uint16_t)s, m->mmio);
        if (!gw_bus_add(m->mmio, l.ecam, GW_PCI_ECAM_SIZE, &gw_pci_ecam_ops,
                        m->pci[s], errp)) {
            return false;
        }
    }
    return true;
}

void
gw_machine_free_segments(GwMachine *m)
{
    for (unsigned s = 1; s < GW_PCI_MAX_SEGMENTS; s++) {
        g_clear_pointer(&m->pci[s], gw_pci_bus_free);
    }
}

GwPciBus *
gw_machine_segment(GwMachine *m, unsigned s, GError **errp)
{
    unsigned n = gw_machine_n_segments(m);

    if (s >= n || !m->pci[s]) {
        g_set_error(errp, GW_ERROR, GW_ERROR_NOT_FOUND,
                    "PCI segment %u does not exist (the platform has "
                    "num_pci_segments=%u)",
                    s, n);
        return NULL;
    }
    return m->pci[s];
}

/* QEMU's PciInfo per segment; segments past 0 say which they are in
 * "x-godwit-segment" (QEMU has one segment, and no such member). */
json_object *
gw_machine_query_pci(GwMachine *m)
{
    json_object *list = json_object_new_array();

    g_mutex_lock(&m->dev_lock);
    for (unsigned s = 0; s < gw_machine_n_segments(m); s++) {
        json_object *bus = json_object_new_object();

        json_object_object_add(bus, "bus", json_object_new_int(0));
        if (s) {
            json_object_object_add(bus, "x-godwit-segment",
                                   json_object_new_int((int)s));
        }
        json_object_object_add(bus, "devices", gw_pci_bus_query(m->pci[s]));
        json_object_array_add(list, bus);
    }
    g_mutex_unlock(&m->dev_lock);
    return list;
}

bool
gw_machine_check_slot(GwMachine *m, unsigned segment, unsigned slot,
                      GError **errp)
{
    GwPciBus *bus;
    bool ok;

    g_mutex_lock(&m->dev_lock);
    bus = gw_machine_segment(m, segment, errp);
    ok = bus && gw_pci_bus_free_slot(bus, &slot, errp);
    g_mutex_unlock(&m->dev_lock);
    return ok;
}
