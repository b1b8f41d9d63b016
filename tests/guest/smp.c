/* smp: start every enabled LAPIC in the MADT with INIT-SIPI-SIPI through
 * a real-mode trampoline; each AP reaching 32-bit C code counts itself. */
#include "guest.h"

#define TRAMPOLINE 0x7000 /* SIPI vector 0x07; below godwit's MB info */
#define MAX_CPUS   32

#define LAPIC_ID      0x20
#define LAPIC_SVR     0xF0
#define LAPIC_ICR_LO  0x300
#define LAPIC_ICR_HI  0x310
#define ICR_PENDING   (1u << 12)
#define ICR_INIT      0x00004500u /* INIT, level assert */
#define ICR_STARTUP   0x00004600u

extern char ap_tramp_start[], ap_tramp_end[];
static volatile u32 ap_count;
static u32 lapic_base = 0xFEE00000;

void ap_main(void);
void
ap_main(void)
{
    __atomic_fetch_add(&ap_count, 1, __ATOMIC_SEQ_CST);
    halt_forever();
}

static u32
lapic_rd(u32 reg)
{
    return *(volatile u32 *)(uptr)(lapic_base + reg);
}

static void
lapic_wr(u32 reg, u32 v)
{
    *(volatile u32 *)(uptr)(lapic_base + reg) = v;
}

static void
delay(u32 n)
{
    while (n--) {
        io_delay();
    }
}

static bool
send_ipi(u32 apic_id, u32 icr)
{
    lapic_wr(LAPIC_ICR_HI, apic_id << 24);
    lapic_wr(LAPIC_ICR_LO, icr);
    for (u32 i = 0; i < 100000; i++) {
        if (!(lapic_rd(LAPIC_ICR_LO) & ICR_PENDING)) {
            return true;
        }
        cpu_relax();
    }
    return false;
}

void
wl_smp(const struct args *a)
{
    static const char *const allowed[] = {NULL};
    if (!args_check(a, allowed)) {
        return;
    }
    const struct sdt_hdr *madt = acpi_find("APIC");
    if (!madt) {
        gprintf("GUEST fail smp no-madt\n");
        return;
    }
    const u8 *m = (const u8 *)madt;
    u32 ids[MAX_CPUS], n = 0;
    lapic_base = *(const u32 *)(m + 36);
    for (u32 off = 44; off + 2 <= madt->length;) {
        u8 type = m[off], len = m[off + 1];
        if (len < 2 || off + len > madt->length) {
            break;
        }
        if (type == 0 && len >= 8 && (*(const u32 *)(m + off + 4) & 1) &&
            n < MAX_CPUS) {
            ids[n++] = m[off + 3];
        } else if (type == 5 && len >= 12) {
            u64 addr = *(const u64 *)(m + off + 4);
            if (addr < 0xFFFFFFFFull) {
                lapic_base = (u32)addr;
            }
        }
        off += len;
    }
    for (u32 i = 0; i < n; i++) {
        gprintf("GUEST madt lapic-id=%u\n", ids[i]);
    }

    u32 size = ap_tramp_end - ap_tramp_start;
    memcpy((void *)(uptr)TRAMPOLINE, ap_tramp_start, size);
    lapic_wr(LAPIC_SVR, lapic_rd(LAPIC_SVR) | 0x1FF); /* enable, vector FF */
    u32 bsp = lapic_rd(LAPIC_ID) >> 24;
    u32 expected = 1;
    for (u32 i = 0; i < n; i++) {
        if (ids[i] == bsp) {
            continue;
        }
        expected++;
        u32 before = ap_count;
        if (!send_ipi(ids[i], ICR_INIT)) {
            gprintf("GUEST fail smp lapic-id=%u init-not-delivered\n", ids[i]);
            continue;
        }
        delay(10000); /* 10 ms */
        for (int s = 0; s < 2 && ap_count == before; s++) {
            send_ipi(ids[i], ICR_STARTUP | (TRAMPOLINE >> 12));
            delay(200); /* 200 us */
        }
        /* Bounded: about a second on hardware, longer under emulation. */
        for (u32 t = 0; t < 1000000 && ap_count == before; t++) {
            io_delay();
        }
        if (ap_count == before) {
            gprintf("GUEST fail smp lapic-id=%u did-not-start\n", ids[i]);
        }
    }
    u32 online = 1 + ap_count;
    gprintf("GUEST cpus-online %u\n", online);
    if (online != expected) {
        gprintf("GUEST fail smp expected=%u online=%u\n", expected, online);
    }
}
