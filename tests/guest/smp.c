#include "guest.h"

void ap_main(void);
void
ap_main(void)
{
}

void
wl_smp(const struct args *a)
{
    gprintf("GUEST fail smp not-implemented\n");
}
