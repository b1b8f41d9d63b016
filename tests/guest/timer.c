/* delay_ms: milliseconds counted by PIT channel 2 in mode 0 (interrupt on
 * terminal count), gated through port 0x61 bit 0, its output read back
 * as port 0x61 bit 5.  QEMU's pcspk and KVM's in-kernel PIT (with
 * KVM_PIT_SPEAKER_DUMMY) both model that port.  Where the output is not
 * low right after the count is loaded there is no PIT: a millisecond
 * then falls back to 1000 port-0x80 writes, about right on hardware and
 * longer under a VMM, so a timeout is still bounded. */
#include "guest.h"

#define PIT_CH2      0x42
#define PIT_CMD      0x43
#define PORT_B       0x61
#define PORT_B_GATE2 0x01
#define PORT_B_SPKR  0x02
#define PORT_B_OUT2  0x20
#define PIT_PER_MS   1193 /* 1.193182 MHz */

static void
one_ms(void)
{
    outb(PORT_B, (inb(PORT_B) & ~PORT_B_SPKR) | PORT_B_GATE2);
    outb(PIT_CMD, 0xB0); /* channel 2, lobyte/hibyte, mode 0, binary */
    outb(PIT_CH2, PIT_PER_MS & 0xff);
    outb(PIT_CH2, PIT_PER_MS >> 8);
    if (inb(PORT_B) & PORT_B_OUT2) {
        for (u32 i = 0; i < 1000; i++) {
            io_delay();
        }
        return;
    }
    /* The cap only matters if the counter stops mid-count. */
    for (u32 i = 0; i < 1000000 && !(inb(PORT_B) & PORT_B_OUT2); i++) {
        cpu_relax();
    }
}

void
delay_ms(u32 ms)
{
    while (ms--) {
        one_ms();
    }
}
