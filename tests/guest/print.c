/* A small printf to the serial port. */
#include "guest.h"

/* n /= 10 without libgcc's 64-bit division; returns the remainder. */
static u32
divmod10(u64 *n)
{
    u32 hi = (u32)(*n >> 32), lo = (u32)*n;
    u32 qhi = hi / 10, r = hi % 10;
    u32 a = (r << 16) | (lo >> 16);
    u32 qa = a / 10;
    r = a % 10;
    u32 b = (r << 16) | (lo & 0xffff);
    u32 qb = b / 10;
    r = b % 10;
    *n = ((u64)qhi << 32) | (qa << 16) | qb;
    return r;
}

static void
put_num(u64 v, bool neg, u32 base, int width, char pad)
{
    char buf[24];
    int n = 0;

    do {
        u32 d;
        if (base == 16) {
            d = (u32)v & 15;
            v >>= 4;
        } else {
            d = divmod10(&v);
        }
        buf[n++] = "0123456789abcdef"[d];
    } while (v);
    if (neg) {
        buf[n++] = '-';
    }
    while (n < width--) {
        serial_putc(pad);
    }
    while (n) {
        serial_putc(buf[--n]);
    }
}

void
gprintf(const char *fmt, ...)
{
    __builtin_va_list ap;

    __builtin_va_start(ap, fmt);
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            serial_putc(*p);
            continue;
        }
        p++;
        char pad = ' ';
        int width = 0, lng = 0;
        if (*p == '0') {
            pad = '0';
            p++;
        }
        while (*p >= '0' && *p <= '9') {
            width = width * 10 + (*p++ - '0');
        }
        while (*p == 'l') {
            lng++;
            p++;
        }
        switch (*p) {
        case 's': {
            const char *s = __builtin_va_arg(ap, const char *);
            if (!s) {
                s = "(null)";
            }
            int len = (int)strlen(s);
            while (len < width--) {
                serial_putc(' ');
            }
            while (*s) {
                serial_putc(*s++);
            }
            break;
        }
        case 'c':
            serial_putc((char)__builtin_va_arg(ap, int));
            break;
        case 'd': {
            long long v = lng >= 2 ? __builtin_va_arg(ap, long long)
                                   : __builtin_va_arg(ap, int);
            put_num(v < 0 ? -(u64)v : (u64)v, v < 0, 10, width, pad);
            break;
        }
        case 'u':
        case 'x': {
            u64 v = lng >= 2 ? __builtin_va_arg(ap, u64)
                             : __builtin_va_arg(ap, u32);
            put_num(v, false, *p == 'x' ? 16 : 10, width, pad);
            break;
        }
        case '%':
            serial_putc('%');
            break;
        case '\0':
            p--;
            break;
        default:
            serial_putc('%');
            serial_putc(*p);
        }
    }
    __builtin_va_end(ap);
}
