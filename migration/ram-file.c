/*
 * Guest RAM as a file: a shared memfd's holes are pages nobody ever
 * wrote, so the sender need not read them (reading a hole of a shared
 * shmem mapping would allocate a page for it) and the receiver need not
 * zero them.  Any thread; nothing here changes guest RAM.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>
#include <godwit/memory.h>
#include "mig-job.h"

/*
 * The mapping's own line of /proc/self/maps: "start-end perms ...", and
 * perms[3] is 's' for MAP_SHARED.  godwit maps guest RAM shared unless
 * --memory shared=off, and that flag is not kept in GwGuestMemory.
 */
static bool
mapped_shared(const GwGuestMemory *mem)
{
    g_autofree char *maps = NULL;
    g_autofree char *want =
        g_strdup_printf("%" PRIxPTR "-", (uintptr_t)mem->host);

    if (!g_file_get_contents("/proc/self/maps", &maps, NULL, NULL)) {
        return false;
    }
    for (char *line = maps; line && *line;) {
        char *next = strchr(line, '\n');
        char perms[5] = "";
        if (g_str_has_prefix(line, want)) {
            return sscanf(line, "%*[0-9a-f]-%*[0-9a-f] %4s", perms) == 1 &&
                   perms[3] == 's';
        }
        line = next ? next + 1 : NULL;
    }
    return false;
}

bool
gw_mig_ram_is_file(const GwGuestMemory *mem)
{
    return !mem->hugepages && mem->fd >= 0 && mapped_shared(mem);
}

bool
gw_mig_ram_next_data(const GwGuestMemory *mem, uint64_t off, uint64_t end,
                     uint64_t *start, uint64_t *stop)
{
    off_t data = lseek(mem->fd, (off_t)off, SEEK_DATA), hole;

    if (data < 0 && errno == ENXIO) {
        return false; /* only a hole from off to the end of the file */
    }
    if (data < 0) {
        data = (off_t)off; /* cannot tell: treat it all as data */
    }
    if ((uint64_t)data >= end) {
        return false;
    }
    hole = lseek(mem->fd, data, SEEK_HOLE);
    *start = (uint64_t)data & ~(GW_MEM_PAGE - 1);
    *stop =
        hole < 0
            ? end
            : MIN(end, ((uint64_t)hole + GW_MEM_PAGE - 1) & ~(GW_MEM_PAGE - 1));
    return true;
}
