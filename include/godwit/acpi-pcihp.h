/*
 * acpi-pcihp: ACPI PCI hotplug for bus 0 of each PCI segment,
 * register-compatible with QEMU pc's (PIIX4,
 * "acpi-pci-hotplug-with-bridge-support" on) so that the same guest and
 * the same DSDT logic work on both.  The DSDT's \_GPE._E01 selects each
 * host bridge's bus (its BSEL) in turn, reads PCIU/PCID and notifies the
 * slots; a slot's _EJ0 selects its bus and writes B0EJ.
 *
 * Where QEMU's selector numbers the bridges below bus 0, here it numbers
 * the PCI segments: bus selector s is bus 0 of segment s (the DSDT's
 * host bridge for segment s has BSEL s), one register block for all.
 *
 * Registers, 4-byte accesses at GW_ACPI_PCIHP_BASE + offset:
 *   0x00 PCIU   R   slots plugged since the last read (reading clears)
 *   0x04 PCID   R   slots with an unplug request pending
 *   0x08 B0EJ   W   eject the lowest slot set; reads 0 (no feature bits)
 *   0x0c PCIRMV R   hotpluggable slots
 *   0x10 SEL    RW  bus selector: segment; selecting one that does not
 *                   exist makes PCIU/PCID/PCIRMV read 0, B0EJ do nothing
 *   0x14 AIDX   RW  acpi-index of a slot; no device here has one: 0
 * A selector of 256 or more makes every register read 0 (QEMU).  QEMU
 * accepts only aligned 4-byte accesses; here other widths are not
 * decoded: reads return all ones, like an unclaimed port, writes do
 * nothing.
 *
 * Unlike QEMU, the guest cannot eject a slot the host did not ask to
 * unplug: B0EJ for a slot without a pending request is ignored.
 *
 * A pure model with hooks, like acpi-pm.  Threads: callers hold the VM's
 * device lock; the hooks run with it held (from a vCPU's B0EJ write or
 * from the caller's own plug/unplug/reset call).
 */
#pragma once

#include <stdbool.h>
#include <godwit/bus.h>
#include <godwit/vmstate.h>

#define GW_ACPI_PCIHP_BASE      0xae00
#define GW_ACPI_PCIHP_LEN       0x18
#define GW_ACPI_PCIHP_GPE_BIT   1
#define GW_ACPI_PCIHP_MAX_BUSES 16 /* = GW_PCI_MAX_SEGMENTS */

#define GW_ACPI_PCIHP_PCIU   0x00
#define GW_ACPI_PCIHP_PCID   0x04
#define GW_ACPI_PCIHP_B0EJ   0x08
#define GW_ACPI_PCIHP_PCIRMV 0x0c
#define GW_ACPI_PCIHP_SEL    0x10
#define GW_ACPI_PCIHP_AIDX   0x14

typedef struct {
    /* Raise the hotplug GPE: gw_acpi_pm_set_gpe(pm, GPE_BIT). */
    void (*gpe)(gpointer opaque);
    /*
     * The guest ejected `slot` of bus selector `bus` (the segment), whose
     * unplug the host requested: take the device out (gw_pci_bus_unplug
     * and free it, or defer that to the main loop).  Must not re-enter
     * this module.
     */
    void (*eject)(gpointer opaque, unsigned bus, unsigned slot);
} GwAcpiPcihpHooks;

typedef struct GwAcpiPcihp GwAcpiPcihp;

/* GW_ACPI_PCIHP_LEN ports at GW_ACPI_PCIHP_BASE; opaque is GwAcpiPcihp. */
extern const GwDeviceOps gw_acpi_pcihp_ops;

/*
 * The migratable state (object: GwAcpiPcihp): PCIU, PCID, PCIRMV of every
 * bus (version 1 had bus 0 only; its streams load into bus 0) and SEL.
 * Loading raises no GPE: a notice the guest has not read yet is already
 * in GPE0_STS, which acpi-pm migrates.  Saved and loaded on the main
 * thread with the device lock held.
 */
extern const GwVmsd gw_acpi_pcihp_vmsd;

/*
 * Creates the model in its power-on state for buses 0..n_buses-1
 * (1..GW_ACPI_PCIHP_MAX_BUSES): nothing pending, slots 1-31 of each
 * hotpluggable.  `h` must outlive it.  Never fails; free with
 * gw_acpi_pcihp_free.
 */
GwAcpiPcihp *gw_acpi_pcihp_new(const GwAcpiPcihpHooks *h, gpointer opaque,
                               unsigned n_buses);
void gw_acpi_pcihp_free(GwAcpiPcihp *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwAcpiPcihp, gw_acpi_pcihp_free)

/*
 * In what follows `bus` is a bus selector below n_buses (a segment); a
 * bus that does not exist is a programming error (g_return_if_fail, or
 * false).
 *
 * A device was hot-plugged into `slot` (1-31, already on the PCI bus):
 * sets its PCIU bit and raises the GPE, so the guest rescans the slot.
 * Not for devices present at boot: the guest finds those by enumeration.
 */
void gw_acpi_pcihp_plugged(GwAcpiPcihp *p, unsigned bus, unsigned slot);

/*
 * Asks the guest to release the device in `slot`: sets its PCID bit and
 * raises the GPE.  The device stays until the guest ejects it (the eject
 * hook) or the machine resets.  Asking again while a request is pending
 * raises the GPE again (a retry, as QEMU's repeated device_del) and is
 * otherwise harmless.  Returns false, changing nothing, if `slot` is not
 * hotpluggable.
 */
bool gw_acpi_pcihp_request_unplug(GwAcpiPcihp *p, unsigned bus, unsigned slot);

/* Whether an unplug of `slot` was requested and not yet ejected. */
bool gw_acpi_pcihp_unplug_pending(const GwAcpiPcihp *p, unsigned bus,
                                  unsigned slot);

/*
 * Sets whether `slot` may be hot-unplugged (its PCIRMV bit).  Slot 0, the
 * host bridge, never is: turning it on is ignored.  Turning a slot off
 * while its unplug is pending keeps the device: the guest's eject then
 * clears the request without the eject hook (QEMU never removes a
 * device that is not hotpluggable either).
 */
void gw_acpi_pcihp_set_hotpluggable(GwAcpiPcihp *p, unsigned bus, unsigned slot,
                                    bool on);
bool gw_acpi_pcihp_hotpluggable(const GwAcpiPcihp *p, unsigned bus,
                                unsigned slot);

/*
 * System reset: completes every pending unplug (the eject hook runs for
 * each, lowest bus and slot first, as QEMU does, since no guest is left to
 * acknowledge it), forgets plug notices (the booting guest enumerates the
 * buses) and selects bus 0.  Hotpluggable slots stay as they were set.
 */
void gw_acpi_pcihp_reset(GwAcpiPcihp *p);
