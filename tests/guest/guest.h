/* The godwit test guest: freestanding, 32-bit, no libc. */
#ifndef GUEST_H
#define GUEST_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef int s32;
typedef unsigned long uptr;
typedef unsigned int size_t;
typedef _Bool bool;
#define true  1
#define false 0
#define NULL  ((void *)0)

#define PACKED __attribute__((packed))

static inline void
outb(u16 port, u8 v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline void
outw(u16 port, u16 v)
{
    __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}
static inline void
outl(u16 port, u32 v)
{
    __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}
static inline u8
inb(u16 port)
{
    u8 v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline u16
inw(u16 port)
{
    u16 v;
    __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline u32
inl(u16 port)
{
    u32 v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
/* About a microsecond on real hardware; one port exit under a VMM. */
static inline void
io_delay(void)
{
    outb(0x80, 0);
}
static inline void
cpu_relax(void)
{
    __asm__ volatile("pause" ::: "memory");
}
__attribute__((noreturn)) void halt_forever(void);

/* lib.c */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

/* serial.c */
void serial_init(void);
void serial_putc(char c);

/* print.c: %s %c %d %u %x, l/ll, width, 0-pad; '\n' ends a line. */
void gprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* mb.c: Multiboot v1 information, copied at boot. */
void mb_parse(u32 magic, u32 info);
const char *mb_cmdline(void);
const char *mb_loader(void);
u64 mb_mem_total(void);
/* True when [base, base+len) is RAM the loader reported as available. */
bool mb_ram_ok(u32 base, u32 len);
/* First byte above the guest image, rounded up to 1 MiB (>= 2 MiB). */
u32 work_base(void);

/* Arguments of one workload: "name key=value ...". */
#define MAX_ARGS 16
struct args {
    const char *name;
    int n;
    const char *key[MAX_ARGS];
    const char *val[MAX_ARGS];
};
/* Prints a fail line and returns false if a key is not in `allowed`. */
bool args_check(const struct args *a, const char *const *allowed);
u32 arg_u32(const struct args *a, const char *key, u32 dflt);
/* The value of the last `key`, or NULL when it is not given. */
const char *arg_str(const struct args *a, const char *key);

/* acpi.c */
struct sdt_hdr {
    char sig[4];
    u32 length;
    u8 revision;
    u8 checksum;
    char oem_id[6];
    char oem_table_id[8];
    u32 oem_revision;
    u32 creator_id;
    u32 creator_revision;
} PACKED;
/* The first table with this signature, checksum verified, or NULL. */
const struct sdt_hdr *acpi_find(const char *sig);
/* MCFG entry `i` (ECAM window below 4 GiB of a segment's bus range);
 * false past the last entry or without an MCFG. */
struct mcfg_entry {
    u32 base, segment, bus_start, bus_end;
};
bool acpi_mcfg_entry(u32 i, struct mcfg_entry *e);

/* pci.c: bdf = segment << 16 | bus << 8 | dev << 3 | fn.  Segment 0
 * through configuration mechanism #1 (0xCF8/0xCFC, what QEMU pc has);
 * other segments through their ECAM window from the MCFG (a function on
 * a segment or bus the MCFG does not cover reads all ones). */
#define PCI_BDF(b, d, f)     ((b) << 8 | (d) << 3 | (f))
#define PCI_SBDF(s, b, d, f) ((u32)(s) << 16 | PCI_BDF(b, d, f))
u32 pci_cfg_read(u32 bdf, u32 reg, u32 size);
void pci_cfg_write(u32 bdf, u32 reg, u32 size, u32 v);

/* timer.c: milliseconds counted on PIT channel 2 (port 0x61 bit 5). */
void delay_ms(u32 ms);

/* Polls `cond` about once a millisecond for at most `ms` milliseconds;
 * true as soon as it holds. */
#define WAIT_MS(cond, ms)                                                     \
    ({                                                                        \
        u32 t_ = 0;                                                           \
        bool ok_;                                                             \
        while (!(ok_ = (cond)) && t_++ < (ms)) {                              \
            delay_ms(1);                                                      \
        }                                                                     \
        ok_;                                                                  \
    })

/* workloads */
void wl_memtest(const struct args *a);
void wl_dirty(const struct args *a);
void wl_pci_list(const struct args *a);
void wl_poweroff(const struct args *a);
void wl_smp(const struct args *a);
void wl_blk(const struct args *a);
void wl_hotplug(const struct args *a);
void wl_net(const struct args *a);
void wl_wait_button(const struct args *a);
void wl_iommu_blk(const struct args *a);

#endif
