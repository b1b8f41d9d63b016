/* hotplug [rounds=N] [timeout-ms=N] [sectors=N] [inject-error=1]
 * [pcihp=0xae00] [gpe0=0xafe0] [segment=N] [iommu=1]: QEMU's ACPI PCI hotplug
 * interface (hw/acpi/pcihp.c, piix4 PM), used without an ACPI
 * interpreter.  With segment=N (godwit's several PCI segments) SEL is N,
 * godwit's selector of segment N's bus 0, and the device is reached
 * through that segment's ECAM window.
 *
 * Registers, 32-bit accesses only, at `pcihp`: PCIU +0x00 (slots added;
 * QEMU clears it on read unless in legacy PIIX mode), PCID +0x04 (slots
 * whose removal is requested), B0EJ +0x08 (write 1 << slot to eject),
 * PCIRMV +0x0c, SEL +0x10 (hotplug bus selector; 0 = the root bus).
 * GPE0 at `gpe0`: STS (2 bytes, write 1 to clear), EN (2 bytes); bit 1 is
 * PCI hotplug.
 *
 * What this relies on: only PCIU and PCID, polled once a millisecond.  The
 * GPE enable bit stays clear and interrupts stay off, so no SCI is taken;
 * the GPE status bit is acknowledged (written back) when set, so the SCI
 * line and STS do not stay asserted.  For each round: wait for an up bit,
 * run the blk checks on bb:slot.0, keep the device running, wait for its
 * down bit, reset the device, report, eject, wait for the slot to read
 * as empty and report that too: the host plugs the next device only
 * after "ejected", or a descheduled vCPU might never see the slot empty.
 * With iommu=1 each added device is behind the virtio-iommu the VIOT
 * names (as for iommu-blk): attached and its buffers mapped before the
 * blk checks, unmapped and detached after its reset. */
#include "iommu.h"

#define PCIHP_UP   0x00
#define PCIHP_DOWN 0x04
#define PCIHP_EJ   0x08
#define PCIHP_SEL  0x10
#define GPE_PCIHP  0x02

struct hp {
    u16 pcihp, gpe0;
    u32 sel; /* the bus selector: 0, or a segment */
    u32 timeout_ms;
    u32 up; /* add events seen, not yet handled */
    struct iommu_blk *iommu; /* iommu=1, else NULL */
};

/* The blk checks on `sbdf`, behind the IOMMU with iommu=1. */
static bool
check_dev(struct hp *h, struct virtio_dev *d, u32 sbdf,
          const struct blk_opts *o)
{
    struct blk_opts io = *o;

    memset(d, 0, sizeof(*d));
    if (h->iommu) {
        if (!iommu_blk_attach(h->iommu, sbdf, o->sectors, false)) {
            return false;
        }
        io.dma_offset = h->iommu->offset;
    }
    return blk_check(d, sbdf, &io);
}

static void
gpe_ack(const struct hp *h)
{
    if (inb(h->gpe0) & GPE_PCIHP) {
        outb(h->gpe0, GPE_PCIHP);
    }
}

static u32
poll_up(struct hp *h)
{
    gpe_ack(h);
    outl(h->pcihp + PCIHP_SEL, h->sel);
    h->up |= inl(h->pcihp + PCIHP_UP);
    return h->up;
}

static u32
poll_down(struct hp *h)
{
    gpe_ack(h);
    outl(h->pcihp + PCIHP_SEL, h->sel);
    return inl(h->pcihp + PCIHP_DOWN);
}

static bool
slot_empty(const struct hp *h, u32 slot)
{
    return (pci_cfg_read(PCI_SBDF(h->sel, 0, slot, 0), 0, 4) & 0xffff) ==
           0xffff;
}

/* One add/remove cycle; false when the protocol itself broke down. */
static bool
one_round(struct hp *h, u32 round, const struct blk_opts *o, bool *blk_ok)
{
    struct virtio_dev d;
    u32 slot = 0;

    if (!WAIT_MS(poll_up(h), h->timeout_ms)) {
        gprintf("GUEST fail hotplug round=%u waiting=add timeout\n", round);
        return false;
    }
    while (!(h->up >> slot & 1)) {
        slot++;
    }
    h->up &= ~(1u << slot);
    gprintf("GUEST hotplug add slot=%u\n", slot);
    if (!check_dev(h, &d, PCI_SBDF(h->sel, 0, slot, 0), o)) {
        gprintf("GUEST fail hotplug round=%u slot=%u blk\n", round, slot);
        *blk_ok = false;
    }
    if (!WAIT_MS(poll_down(h) >> slot & 1, h->timeout_ms)) {
        gprintf("GUEST fail hotplug round=%u slot=%u waiting=remove timeout\n",
                round, slot);
        return false;
    }
    if (d.common && !virtio_stop(&d)) {
        gprintf("GUEST fail hotplug round=%u slot=%u reset-timeout\n", round,
                slot);
    }
    if (h->iommu && !iommu_blk_detach(h->iommu)) {
        gprintf("GUEST fail hotplug round=%u slot=%u iommu-detach\n", round,
                slot);
        *blk_ok = false;
    }
    gprintf("GUEST hotplug remove slot=%u\n", slot);
    outl(h->pcihp + PCIHP_SEL, h->sel);
    outl(h->pcihp + PCIHP_EJ, 1u << slot);
    if (!WAIT_MS(slot_empty(h, slot), h->timeout_ms)) {
        gprintf("GUEST fail hotplug round=%u slot=%u still-present\n", round,
                slot);
        return false;
    }
    gprintf("GUEST hotplug ejected slot=%u\n", slot);
    h->up &= ~(1u << slot); /* legacy PIIX mode keeps it until the eject */
    return true;
}

void
wl_hotplug(const struct args *a)
{
    static const char *const allowed[] = {
        "rounds", "timeout-ms", "sectors", "inject-error",
        "pcihp",  "gpe0",       "segment", "iommu", NULL};
    static struct iommu_blk iommu;
    struct blk_opts o;
    struct hp h = {0};

    if (!args_check(a, allowed) || !blk_opts_parse(a, &o)) {
        return;
    }
    u32 rounds = arg_u32(a, "rounds", 1);
    h.pcihp = (u16)arg_u32(a, "pcihp", 0xae00);
    h.gpe0 = (u16)arg_u32(a, "gpe0", 0xafe0);
    h.timeout_ms = arg_u32(a, "timeout-ms", 30000);
    h.sel = arg_u32(a, "segment", 0) & 0xffff;
    o.timeout_ms = h.timeout_ms;
    if (arg_u32(a, "iommu", 0)) {
        if (!iommu_blk_open(&iommu, h.timeout_ms)) {
            gprintf("GUEST fail hotplug iommu\n");
            return;
        }
        h.iommu = &iommu;
    }
    gpe_ack(&h);
    outl(h.pcihp + PCIHP_SEL, h.sel);
    (void)inl(h.pcihp + PCIHP_UP); /* nothing from before we were ready */
    gprintf("GUEST hotplug ready\n");
    bool blk_ok = true;
    bool ok = true;
    for (u32 r = 1; r <= rounds && ok; r++) {
        ok = one_round(&h, r, &o, &blk_ok);
    }
    if (h.iommu) {
        iommu_stop(&h.iommu->m);
    }
    if (ok && blk_ok) {
        gprintf("GUEST pass hotplug\n");
    }
}
