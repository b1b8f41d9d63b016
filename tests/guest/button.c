/* wait-button [timeout-ms=N]: an OS's ACPI power-button handler, polled.
 * Enables the button (PWRBTN_EN in PM1a_EN; QEMU sets the status only
 * when it is enabled) at the FADT's PM1a_EVT_BLK, then polls PM1a_STS
 * until PWRBTN_STS shows a press, interrupts staying off (the SCI is
 * never taken); clears it (write 1), prints `GUEST acpi power-button`
 * and returns, so a following `poweroff` turns the machine off as the
 * OS would.  timeout-ms=0 (the default) waits forever. */
#include "guest.h"

#define FADT_PM1A_EVT 56
#define FADT_PM1_EVT_LEN 88
#define PWRBTN (1u << 8)

void
wl_wait_button(const struct args *a)
{
    static const char *const allowed[] = {"timeout-ms", NULL};
    if (!args_check(a, allowed)) {
        return;
    }
    u32 timeout = arg_u32(a, "timeout-ms", 0);
    const struct sdt_hdr *fadt = acpi_find("FACP");
    if (!fadt || fadt->length < FADT_PM1_EVT_LEN + 1) {
        gprintf("GUEST fail wait-button no-fadt\n");
        return;
    }
    const u8 *f = (const u8 *)fadt;
    u32 evt = *(const u32 *)(f + FADT_PM1A_EVT);
    u32 len = f[FADT_PM1_EVT_LEN];
    if (!evt || evt > 0xFFFF || len < 4) {
        gprintf("GUEST fail wait-button no-pm1a-evt\n");
        return;
    }
    outw(evt, PWRBTN); /* a press from before we looked: forget it */
    outw(evt + len / 2, inw(evt + len / 2) | PWRBTN);
    gprintf("GUEST acpi wait-button pm1a_evt=0x%x\n", evt);
    bool pressed = timeout ? WAIT_MS(inw(evt) & PWRBTN, timeout) : false;
    while (!timeout && !pressed) {
        pressed = inw(evt) & PWRBTN;
        delay_ms(1);
    }
    if (!pressed) {
        gprintf("GUEST fail wait-button timeout\n");
        return;
    }
    outw(evt, PWRBTN);
    gprintf("GUEST acpi power-button\n");
}
