/*
 * Multiboot v1 loader for 32-bit ELF kernels: the GRUB-compatible subset
 * that a freestanding kernel needs (memory info, command line, memory map,
 * boot loader name).  Every field of the file is untrusted.
 */
#include <elf.h>
#include <string.h>
#include <godwit/boot.h>
#include <godwit/util.h>

#define MB_HEADER_MAGIC  0x1BADB002u
#define MB_SEARCH        8192
#define MB_SUPPORTED_REQ 0x3u /* bits 0-15 we honour: page align, mem info */
#define MB_INFO_MEMORY   (1u << 0)
#define MB_INFO_CMDLINE  (1u << 2)
#define MB_INFO_MMAP     (1u << 6)
#define MB_INFO_LOADER   (1u << 9)
#define LOW_MEM_END      0x9FC00u
#define IMAGE_MIN        0x100000u
#define MAX_IMAGE        (64u << 20)

typedef struct __attribute__((packed)) {
    uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
    uint32_t mods_count, mods_addr, syms[4];
    uint32_t mmap_length, mmap_addr, drives_length, drives_addr;
    uint32_t config_table, boot_loader_name, apm_table;
    uint32_t vbe[6];
} MbInfo;

typedef struct __attribute__((packed)) {
    uint32_t size;
    uint64_t addr, len;
    uint32_t type;
} MbMmap;

static bool
fail(GError **errp, const char *name, const char *what)
{
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID, "--kernel: %s %s", name,
                what);
    return false;
}

static bool
check_header(const uint8_t *buf, size_t len, const char *name, GError **errp)
{
    for (size_t off = 0; off + 12 <= MIN(len, MB_SEARCH); off += 4) {
        uint32_t h[3];
        memcpy(h, buf + off, sizeof(h));
        if (h[0] != MB_HEADER_MAGIC || h[0] + h[1] + h[2] != 0) {
            continue;
        }
        if (h[1] & 0xffffu & ~MB_SUPPORTED_REQ) {
            return fail(errp, name,
                        "asks for Multiboot features godwit "
                        "does not provide (video mode)");
        }
        return true;
    }
    return fail(errp, name, "has no Multiboot v1 header in its first 8 KiB");
}

static bool
check_elf(const Elf32_Ehdr *eh, size_t len, const char *name, GError **errp)
{
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0) {
        return fail(errp, name, "is not an ELF file");
    }
    if (eh->e_ident[EI_CLASS] != ELFCLASS32 || eh->e_machine != EM_386) {
        return fail(errp, name,
                    "is not a 32-bit x86 ELF (godwit boots "
                    "32-bit Multiboot kernels)");
    }
    if (eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_type != ET_EXEC) {
        return fail(errp, name, "is not a little-endian ELF executable");
    }
    if (eh->e_phentsize != sizeof(Elf32_Phdr) || eh->e_phnum == 0 ||
        eh->e_phoff > len ||
        (size_t)eh->e_phnum * sizeof(Elf32_Phdr) > len - eh->e_phoff) {
        return fail(errp, name, "has a corrupt program header table");
    }
    return true;
}

static bool
load_segment(GwGuestMemory *mem, const Elf32_Phdr *ph, const uint8_t *buf,
             size_t len, const char *name, GError **errp)
{
    uint8_t *dst;

    if (ph->p_filesz > ph->p_memsz || ph->p_offset > len ||
        ph->p_filesz > len - ph->p_offset) {
        return fail(errp, name, "has a segment outside the file");
    }
    if (ph->p_paddr < IMAGE_MIN) {
        return fail(errp, name,
                    "loads below 1 MiB, which is reserved for "
                    "boot data");
    }
    dst = gw_mem_ptr(mem, ph->p_paddr, ph->p_memsz);
    if (!dst) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "--kernel: %s loads at 0x%x-0x%x, outside guest RAM "
                    "(--memory size too small?)",
                    name, ph->p_paddr, ph->p_paddr + ph->p_memsz);
        return false;
    }
    memcpy(dst, buf + ph->p_offset, ph->p_filesz);
    memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
    gw_mem_mark_dirty(mem, ph->p_paddr, ph->p_memsz);
    return true;
}

static bool
load_elf(GwGuestMemory *mem, const Elf32_Ehdr *eh, const uint8_t *buf,
         size_t len, const char *name, GwBootImage *out, GError **errp)
{
    bool entry_loaded = false;

    out->image_start = UINT32_MAX;
    out->image_end = 0;
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        Elf32_Phdr ph;
        memcpy(&ph, buf + eh->e_phoff + i * sizeof(ph), sizeof(ph));
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0) {
            continue;
        }
        if (!load_segment(mem, &ph, buf, len, name, errp)) {
            return false;
        }
        out->image_start = MIN(out->image_start, ph.p_paddr);
        out->image_end = MAX(out->image_end, ph.p_paddr + ph.p_memsz);
        entry_loaded |=
            eh->e_entry >= ph.p_paddr && eh->e_entry - ph.p_paddr < ph.p_memsz;
    }
    if (!entry_loaded) {
        return fail(errp, name,
                    "has its entry point outside every loaded "
                    "segment");
    }
    out->entry = eh->e_entry;
    return true;
}

/* Usable RAM, reserved BIOS area, RAM above 1 MiB, RAM above 4 GiB. */
static unsigned
fill_mmap(const GwGuestMemory *mem, MbMmap *e)
{
    unsigned n = 0;
    uint64_t low = mem->regions[0].size;

    e[n++] = (MbMmap){20, 0, LOW_MEM_END, 1};
    e[n++] = (MbMmap){20, LOW_MEM_END, IMAGE_MIN - LOW_MEM_END, 2};
    e[n++] = (MbMmap){20, IMAGE_MIN, low - IMAGE_MIN, 1};
    if (mem->n_regions > 1) {
        e[n++] = (MbMmap){20, mem->regions[1].gpa, mem->regions[1].size, 1};
    }
    return n;
}

static bool
write_info(GwGuestMemory *mem, const char *cmdline, GwBootImage *out,
           GError **errp)
{
    static const char loader[] = "godwit";
    MbMmap mmap[4];
    unsigned n = fill_mmap(mem, mmap);
    uint32_t mmap_gpa = GW_MULTIBOOT_INFO_GPA + sizeof(MbInfo);
    uint32_t loader_gpa = mmap_gpa + n * sizeof(MbMmap);
    uint32_t cmdline_gpa = loader_gpa + sizeof(loader);
    size_t cmdlen = strlen(cmdline) + 1;
    MbInfo info = {
        .flags =
            MB_INFO_MEMORY | MB_INFO_CMDLINE | MB_INFO_MMAP | MB_INFO_LOADER,
        .mem_lower = LOW_MEM_END / 1024,
        .mem_upper = (uint32_t)((mem->regions[0].size - IMAGE_MIN) / 1024),
        .cmdline = cmdline_gpa,
        .mmap_length = n * sizeof(MbMmap),
        .mmap_addr = mmap_gpa,
        .boot_loader_name = loader_gpa,
    };

    if (cmdlen > GW_MAX_CMDLINE) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "--cmdline: longer than %d bytes", GW_MAX_CMDLINE - 1);
        return false;
    }
    g_assert(cmdline_gpa + GW_MAX_CMDLINE <= LOW_MEM_END);
    gw_mem_write(mem, GW_MULTIBOOT_INFO_GPA, &info, sizeof(info));
    gw_mem_write(mem, mmap_gpa, mmap, n * sizeof(MbMmap));
    gw_mem_write(mem, loader_gpa, loader, sizeof(loader));
    gw_mem_write(mem, cmdline_gpa, cmdline, cmdlen);
    out->info_gpa = GW_MULTIBOOT_INFO_GPA;
    return true;
}

bool
gw_multiboot_load_buf(GwGuestMemory *mem, const char *name, const uint8_t *buf,
                      size_t len, const char *cmdline, GwBootImage *out,
                      GError **errp)
{
    Elf32_Ehdr eh;

    if (mem->regions[0].size <= IMAGE_MIN) {
        return fail(errp, name,
                    "cannot be loaded: guest RAM must extend "
                    "above 1 MiB (--memory size)");
    }
    if (len < sizeof(eh)) {
        return fail(errp, name, "is not an ELF file");
    }
    memcpy(&eh, buf, sizeof(eh)); /* buf may be unaligned */
    return check_elf(&eh, len, name, errp) &&
           check_header(buf, len, name, errp) &&
           load_elf(mem, &eh, buf, len, name, out, errp) &&
           write_info(mem, cmdline ? cmdline : "", out, errp);
}

bool
gw_multiboot_load(GwGuestMemory *mem, const char *path, const char *cmdline,
                  GwBootImage *out, GError **errp)
{
    g_autofree char *buf = NULL;
    g_autoptr(GError) err = NULL;
    gsize len = 0;

    if (!g_file_get_contents(path, &buf, &len, &err)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID, "--kernel: %s",
                    err->message);
        return false;
    }
    if (len > MAX_IMAGE) {
        return fail(errp, path, "is larger than 64 MiB");
    }
    return gw_multiboot_load_buf(mem, path, (const uint8_t *)buf, len, cmdline,
                                 out, errp);
}
