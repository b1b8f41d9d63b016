/* The few libc functions the compiler may call, written so it cannot
 * turn them back into calls to themselves. */
#include "guest.h"

void *
memset(void *d, int c, size_t n)
{
    void *r = d;
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return r;
}

void *
memcpy(void *d, const void *s, size_t n)
{
    void *r = d;
    __asm__ volatile("rep movsb"
                     : "+D"(d), "+S"(s), "+c"(n)
                     :
                     : "memory");
    return r;
}

int
memcmp(const void *a, const void *b, size_t n)
{
    const volatile u8 *x = a, *y = b;
    for (size_t i = 0; i < n; i++) {
        if (x[i] != y[i]) {
            return x[i] < y[i] ? -1 : 1;
        }
    }
    return 0;
}

size_t
strlen(const char *s)
{
    const volatile char *p = s;
    size_t n = 0;
    while (p[n]) {
        n++;
    }
    return n;
}

int
strncmp(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            return (u8)a[i] < (u8)b[i] ? -1 : 1;
        }
        if (!a[i]) {
            return 0;
        }
    }
    return 0;
}

int
strcmp(const char *a, const char *b)
{
    return strncmp(a, b, 0xffffffffu);
}

void
halt_forever(void)
{
    for (;;) {
        __asm__ volatile("cli; hlt");
    }
}
