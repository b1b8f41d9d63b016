/* ACPI: find tables from the RSDP; poweroff through PM1a_CNT. */
#include "guest.h"

void
wl_poweroff(const struct args *a)
{
    gprintf("GUEST fail poweroff not-implemented\n");
}
