/*
 * The board's virtio-iommu: made when a boot --vdpa has iommu=on or
 * --platform iommu_segments lists a segment, before any vDPA device, in
 * a fixed slot of segment 0 (GW_MACHINE_IOMMU_SLOT, the last one, so the
 * vDPA devices keep the slots they have without it); its endpoints are
 * the iommu=on devices, named (segment << 16) | BDF as the VIOT the
 * board writes names them.  Threads as in include/godwit/machine.h.
 */
#include <godwit/util.h>
#include <godwit/vdpa-device.h>
#include <godwit/virtio-iommu.h>
#include "machine-priv.h"

/* query-pci's qdev_id for it: QEMU's device name. */
#define IOMMU_QDEV "virtio-iommu-pci"

static GwPciDevice *
iommu_pci(GwMachine *m)
{
    return gw_virtio_pci_device(gw_virtio_iommu_pci(m->iommu));
}

bool
gw_machine_create_iommu(GwMachine *m, GError **errp)
{
    GwPciDevice *pci;

    if (!gw_config_wants_iommu(m->cfg)) {
        return true;
    }
    m->iommu = gw_virtio_iommu_new(m->mem, m->irqchip, &m->dev_lock, errp);
    if (!m->iommu) {
        g_prefix_error(errp, "virtio-iommu: ");
        return false;
    }
    pci = iommu_pci(m);
    if (!pci->id) {
        pci->id = IOMMU_QDEV;
    }
    if (!gw_pci_bus_plug(m->pci[0], pci, GW_MACHINE_IOMMU_SLOT, errp)) {
        g_prefix_error(errp, "virtio-iommu: ");
        return false;
    }
    return true;
}

void
gw_machine_free_iommu(GwMachine *m)
{
    GwPciDevice *pci;

    if (!m->iommu) {
        return;
    }
    pci = iommu_pci(m);
    if (pci->bus) {
        gw_pci_bus_unplug(pci->bus, pci);
    }
    g_clear_pointer(&m->iommu, gw_virtio_iommu_free);
}

void
gw_machine_reset_iommu(GwMachine *m)
{
    if (m->iommu) {
        gw_virtio_pci_reset(gw_virtio_iommu_pci(m->iommu));
        gw_pci_device_reset(iommu_pci(m));
    }
}

bool
gw_machine_attach_iommu(GwMachine *m, GwVdpaDevice *d, GError **errp)
{
    if (!gw_vdpa_device_config(d)->iommu) {
        return true;
    }
    g_assert(m->iommu); /* the config's rules saw to it */
    return gw_vdpa_device_attach_iommu(d, m->iommu, errp);
}

void
gw_machine_iommu_acpi(GwMachine *m, GwAcpiConfig *acpi, GArray *endpoints)
{
    if (!m->iommu) {
        return;
    }
    for (guint i = 0; i < m->vdpa->len; i++) {
        uint32_t ep = gw_vdpa_device_endpoint(m->vdpa->pdata[i]);
        if (ep != UINT32_MAX) {
            g_array_append_val(endpoints, ep);
        }
    }
    acpi->viot = true;
    acpi->viommu_bdf = GW_MACHINE_IOMMU_SLOT << 3;
    acpi->iommu_segments = m->cfg->iommu_segments;
    acpi->endpoints = (const uint32_t *)endpoints->data;
    acpi->n_endpoints = endpoints->len;
}

json_object *
gw_machine_query_iommu(GwMachine *m, GError **errp)
{
    json_object *o;

    if (!m->iommu) {
        g_set_error(errp, GW_ERROR, GW_ERROR_NOT_FOUND,
                    "there is no virtio-iommu: start with a --vdpa "
                    "iommu=on device or --platform iommu_segments");
        return NULL;
    }
    g_mutex_lock(&m->dev_lock);
    o = gw_virtio_iommu_query(m->iommu);
    g_mutex_unlock(&m->dev_lock);
    return o;
}
