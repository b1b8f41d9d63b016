/* kmain: report boot facts, run the workloads named on the command line
 * in order, say "GUEST done", halt. */
#include "guest.h"

struct idt_gate {
    u16 off_lo;
    u16 sel;
    u8 zero;
    u8 type;
    u16 off_hi;
} PACKED;

static struct idt_gate idt[32];
extern const u32 exc_stubs[32];

static void
idt_init(void)
{
    struct {
        u16 limit;
        u32 base;
    } PACKED desc = {sizeof(idt) - 1, (u32)(uptr)idt};

    for (int i = 0; i < 32; i++) {
        idt[i].off_lo = exc_stubs[i] & 0xffff;
        idt[i].off_hi = exc_stubs[i] >> 16;
        idt[i].sel = 0x10;
        idt[i].zero = 0;
        idt[i].type = 0x8E;
    }
    __asm__ volatile("lidt %0" : : "m"(desc));
}

struct exc_frame {
    u32 vector, error, eip, cs, eflags;
};

void exception_handler(const struct exc_frame *f);
void
exception_handler(const struct exc_frame *f)
{
    gprintf("GUEST fail exception vector=%u error=0x%x eip=0x%x\n", f->vector,
            f->error, f->eip);
    gprintf("GUEST done\n");
    halt_forever();
}

static const struct {
    const char *name;
    void (*run)(const struct args *a);
} workloads[] = {
    {"memtest", wl_memtest}, {"dirty", wl_dirty}, {"pci-list", wl_pci_list},
    {"poweroff", wl_poweroff}, {"smp", wl_smp}, {"blk", wl_blk},
    {"hotplug", wl_hotplug}, {"net", wl_net}, {"wait-button", wl_wait_button},
    {"iommu-blk", wl_iommu_blk},
};

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void
run_one(struct args *a)
{
    for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++) {
        if (!strcmp(workloads[i].name, a->name)) {
            workloads[i].run(a);
            return;
        }
    }
    gprintf("GUEST fail workload unknown=%s\n", a->name);
}

/* Splits the command line in place: "name k=v ...; name ...". */
static void
run_cmdline(char *s)
{
    bool first = true;

    while (*s) {
        struct args a = {0};
        char *seg = s;
        while (*s && *s != ';') {
            s++;
        }
        if (*s) {
            *s++ = '\0';
        }
        /* words of this segment */
        char *w = seg;
        for (;;) {
            while (is_space(*w)) {
                w++;
            }
            if (!*w) {
                break;
            }
            char *word = w;
            while (*w && !is_space(*w)) {
                w++;
            }
            if (*w) {
                *w++ = '\0';
            }
            bool is_path = false;
            for (char *c = word; *c; c++) {
                is_path |= *c == '/';
            }
            if (first && !a.name && is_path) {
                continue; /* the kernel path QEMU and GRUB prepend */
            }
            if (!a.name) {
                a.name = word;
                continue;
            }
            if (a.n == MAX_ARGS) {
                gprintf("GUEST fail %s too-many-arguments\n", a.name);
                break;
            }
            char *eq = word;
            while (*eq && *eq != '=') {
                eq++;
            }
            a.key[a.n] = word;
            a.val[a.n] = "1";
            if (*eq) {
                *eq = '\0';
                a.val[a.n] = eq + 1;
            }
            a.n++;
        }
        first = false;
        if (a.name) {
            run_one(&a);
        }
    }
}

static char cmd_copy[1024];

void kmain(u32 magic, u32 info);
void
kmain(u32 magic, u32 info)
{
    serial_init();
    idt_init();
    if (magic != 0x2BADB002) {
        gprintf("GUEST fail boot magic=0x%x\n", magic);
    }
    mb_parse(magic, info);
    gprintf("GUEST boot cmdline=\"%s\"\n", mb_cmdline());
    if (mb_loader()[0]) {
        gprintf("GUEST boot loader=\"%s\"\n", mb_loader());
    }
    gprintf("GUEST mem-total %llu\n", mb_mem_total());

    memcpy(cmd_copy, mb_cmdline(), strlen(mb_cmdline()) + 1);
    run_cmdline(cmd_copy);

    gprintf("GUEST done\n");
    halt_forever();
}
