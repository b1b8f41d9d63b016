/*
 * acpi-pm: the ACPI fixed-hardware PM block the FADT describes: PM1
 * status/enable (power button), PM1 control (sleep: S5 powers off) and
 * the reset register.  A pure model with callbacks, like the UART.
 *
 * Threads: callers hold the VM's device lock.
 */
#pragma once

#include <stdbool.h>
#include <godwit/bus.h>

typedef struct {
    void (*sleep)(gpointer opaque, unsigned slp_typ); /* SLP_EN written */
    void (*reset)(gpointer opaque);                   /* reset register */
    void (*sci)(gpointer opaque, bool level);         /* SCI line */
} GwAcpiPmHooks;

typedef struct GwAcpiPm GwAcpiPm;

extern const GwDeviceOps gw_acpi_pm_ops;

GwAcpiPm *gw_acpi_pm_new(const GwAcpiPmHooks *hooks, gpointer opaque);
void gw_acpi_pm_free(GwAcpiPm *pm);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwAcpiPm, gw_acpi_pm_free)

void gw_acpi_pm_reset(GwAcpiPm *pm);

/* Sets PWRBTN_STS (and raises SCI if the guest enabled it). */
void gw_acpi_pm_press_power_button(GwAcpiPm *pm);

/* PWRBTN_STS, so callers and tests can see a press is pending. */
bool gw_acpi_pm_power_button_pending(const GwAcpiPm *pm);
