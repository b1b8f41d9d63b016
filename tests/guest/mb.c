/* Multiboot v1 information (copied before any workload may overwrite low
 * memory) and workload arguments. */
#include "guest.h"

#define MB_INFO_MEM     (1u << 0)
#define MB_INFO_CMDLINE (1u << 2)
#define MB_INFO_MMAP    (1u << 6)
#define MB_INFO_LOADER  (1u << 9)

struct mb_info {
    u32 flags;
    u32 mem_lower;
    u32 mem_upper;
    u32 boot_device;
    u32 cmdline;
    u32 mods_count;
    u32 mods_addr;
    u32 syms[4];
    u32 mmap_length;
    u32 mmap_addr;
    u32 drives_length;
    u32 drives_addr;
    u32 config_table;
    u32 boot_loader_name;
} PACKED;

struct mb_mmap {
    u32 size;
    u64 addr;
    u64 len;
    u32 type;
} PACKED;

#define MAX_RANGES 32
static struct {
    u64 base, len;
} ram[MAX_RANGES];
static int nram;
static char cmdline[1024];
static char loader[64];
static u64 mem_total;

extern char _end[];

static void
copy_str(char *dst, size_t size, u32 src)
{
    const char *s = (const char *)(uptr)src;
    size_t i = 0;
    while (s && s[i] && i + 1 < size) {
        dst[i] = s[i];
        i++;
    }
    dst[i] = '\0';
}

void
mb_parse(u32 magic, u32 info_addr)
{
    const struct mb_info *mi = (const struct mb_info *)(uptr)info_addr;

    if (magic != 0x2BADB002 || !mi) {
        return;
    }
    if (mi->flags & MB_INFO_CMDLINE) {
        copy_str(cmdline, sizeof(cmdline), mi->cmdline);
    }
    if (mi->flags & MB_INFO_LOADER) {
        copy_str(loader, sizeof(loader), mi->boot_loader_name);
    }
    if (mi->flags & MB_INFO_MMAP) {
        u32 p = mi->mmap_addr, end = mi->mmap_addr + mi->mmap_length;
        while (p + sizeof(struct mb_mmap) <= end) {
            const struct mb_mmap *e = (const struct mb_mmap *)(uptr)p;
            if (e->type == 1 && nram < MAX_RANGES) {
                ram[nram].base = e->addr;
                ram[nram].len = e->len;
                nram++;
                mem_total += e->len;
            }
            p += e->size + 4;
        }
    }
    if (!nram && (mi->flags & MB_INFO_MEM)) {
        ram[0].base = 0;
        ram[0].len = (u64)mi->mem_lower * 1024;
        ram[1].base = 0x100000;
        ram[1].len = (u64)mi->mem_upper * 1024;
        nram = 2;
        mem_total = ram[0].len + ram[1].len;
    }
}

const char *
mb_cmdline(void)
{
    return cmdline;
}

const char *
mb_loader(void)
{
    return loader;
}

u64
mb_mem_total(void)
{
    return mem_total;
}

bool
mb_ram_ok(u32 base, u32 len)
{
    u64 b = base, e = (u64)base + len;
    for (int i = 0; i < nram; i++) {
        if (b >= ram[i].base && e <= ram[i].base + ram[i].len) {
            return true;
        }
    }
    return false;
}

u32
work_base(void)
{
    u32 b = ((u32)(uptr)_end + 0xFFFFF) & ~0xFFFFFu;
    return b < 0x200000 ? 0x200000 : b;
}

bool
args_check(const struct args *a, const char *const *allowed)
{
    for (int i = 0; i < a->n; i++) {
        bool ok = false;
        for (const char *const *k = allowed; *k; k++) {
            if (!strcmp(*k, a->key[i])) {
                ok = true;
            }
        }
        if (!ok) {
            gprintf("GUEST fail %s unknown-argument=%s\n", a->name, a->key[i]);
            return false;
        }
    }
    return true;
}

const char *
arg_str(const struct args *a, const char *key)
{
    const char *v = NULL;

    for (int i = 0; i < a->n; i++) {
        if (!strcmp(a->key[i], key)) {
            v = a->val[i];
        }
    }
    return v;
}

u32
arg_u32(const struct args *a, const char *key, u32 dflt)
{
    for (int i = 0; i < a->n; i++) {
        if (strcmp(a->key[i], key)) {
            continue;
        }
        const char *s = a->val[i];
        u32 v = 0, base = 10;
        if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
            base = 16;
            s += 2;
        }
        for (; *s; s++) {
            u32 d;
            if (*s >= '0' && *s <= '9') {
                d = *s - '0';
            } else if (base == 16 && *s >= 'a' && *s <= 'f') {
                d = *s - 'a' + 10;
            } else if (base == 16 && *s >= 'A' && *s <= 'F') {
                d = *s - 'A' + 10;
            } else {
                break;
            }
            v = v * base + d;
        }
        return v;
    }
    return dflt;
}
