/*
 * acpi-pm: the ACPI fixed-hardware PM block the FADT describes: PM1
 * status/enable (power button), PM1 control (sleep: S5 powers off) and
 * the reset register; and the GPE0 block (general-purpose events: PCI
 * hotplug is GPE 1).  A pure model with callbacks, like the UART.
 *
 * Both blocks drive the one SCI line: it is high while any PM1 or GPE0
 * status bit is set whose enable bit is set too.
 *
 * Threads: callers hold the VM's device lock.
 */
#pragma once

#include <stdbool.h>
#include <godwit/bus.h>
#include <godwit/vmstate.h>

typedef struct {
    void (*sleep)(gpointer opaque, unsigned slp_typ); /* SLP_EN written */
    void (*reset)(gpointer opaque);                   /* reset register */
    void (*sci)(gpointer opaque, bool level);         /* SCI line */
} GwAcpiPmHooks;

typedef struct GwAcpiPm GwAcpiPm;

/* The PM1 block: GW_ACPI_PM_LEN ports at GW_ACPI_PM_BASE. */
extern const GwDeviceOps gw_acpi_pm_ops;

/*
 * The GPE0 block, same opaque GwAcpiPm: GW_ACPI_GPE0_LEN ports at
 * GW_ACPI_GPE0_BASE, as QEMU pc's.  Bytes 0-1 GPE0_STS (write 1 to
 * clear), bytes 2-3 GPE0_EN; any access width, byte by byte.
 */
extern const GwDeviceOps gw_acpi_gpe_ops;

/*
 * The migratable state (object: GwAcpiPm): PM1 status, enable and
 * control, GPE0 status and enable, and the SCI level; its post_load
 * drives the sci hook to the loaded level.  Saved and loaded on the main
 * thread with the device lock held.
 */
extern const GwVmsd gw_acpi_pm_vmsd;

GwAcpiPm *gw_acpi_pm_new(const GwAcpiPmHooks *hooks, gpointer opaque);
void gw_acpi_pm_free(GwAcpiPm *pm);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwAcpiPm, gw_acpi_pm_free)

/* Power-on state: PM1 and GPE0 status and enable bits all clear. */
void gw_acpi_pm_reset(GwAcpiPm *pm);

/*
 * Sets GPE0 status bit `bit` (< 16), raising SCI if the guest enabled
 * that GPE.  The bit stays set until the guest writes 1 to clear it.
 */
void gw_acpi_pm_set_gpe(GwAcpiPm *pm, unsigned bit);

/* Sets PWRBTN_STS (and raises SCI if the guest enabled it). */
void gw_acpi_pm_press_power_button(GwAcpiPm *pm);

/* PWRBTN_STS, so callers and tests can see a press is pending. */
bool gw_acpi_pm_power_button_pending(const GwAcpiPm *pm);
