/* 16550 UART on COM1, polled: 115200 8N1, FIFOs on. */
#include "guest.h"

#define COM1 0x3F8
#define THR  0
#define IER  1
#define FCR  2
#define LCR  3
#define MCR  4
#define LSR  5
#define DLL  0
#define DLM  1

#define LSR_THRE 0x20

void
serial_init(void)
{
    outb(COM1 + IER, 0x00);
    outb(COM1 + LCR, 0x80); /* DLAB */
    outb(COM1 + DLL, 0x01); /* 115200 baud */
    outb(COM1 + DLM, 0x00);
    outb(COM1 + LCR, 0x03); /* 8N1 */
    outb(COM1 + FCR, 0xC7); /* enable, clear, 14-byte threshold */
    outb(COM1 + MCR, 0x03); /* DTR, RTS */
}

void
serial_putc(char c)
{
    /* Bounded: a missing UART (reads 0xFF) or a stuck one never hangs us. */
    for (u32 i = 0; i < 1000000; i++) {
        if (inb(COM1 + LSR) & LSR_THRE) {
            break;
        }
        cpu_relax();
    }
    outb(COM1 + THR, (u8)c);
}
