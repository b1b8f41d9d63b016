/*
 * cpr-transfer: same-host migration by handing guest RAM's memfd to the
 * destination process (SCM_RIGHTS on the main unix: socket) instead of
 * copying its pages; only device and vCPU state travel.  QEMU's name
 * and migration parameter (`mode`); where godwit differs is in
 * docs/migration.md ("Same-host handover").  The checks each side makes
 * and the CPR_RAM record's payload live here; the sender and receiver
 * call them.  Main thread, except gw_mig_cpr_layout_*, which any thread
 * may call.
 */
#include <string.h>
#include <sys/socket.h>
#include <godwit/machine.h>
#include <godwit/memory.h>
#include <godwit/util.h>
#include <godwit/vm.h>
#include "mig-job.h"
#include "mig-priv.h"

#define REGION_LEN 24 /* gpa, size, offset */

const char *
gw_mig_cpr_mode_name(bool cpr)
{
    return cpr ? "cpr-transfer" : "normal";
}

bool
gw_mig_cpr_parse_mode(json_object *params, bool *cpr, GError **errp)
{
    json_object *v;
    const char *mode;

    if (!json_object_object_get_ex(params, "mode", &v)) {
        return true;
    }
    mode = json_object_get_string(v);
    if (g_strcmp0(mode, "normal") == 0 ||
        g_strcmp0(mode, "cpr-transfer") == 0) {
        *cpr = g_str_equal(mode, "cpr-transfer");
        return true;
    }
    if (g_strcmp0(mode, "cpr-reboot") == 0 ||
        g_strcmp0(mode, "cpr-exec") == 0) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "Migration mode '%s' is not supported by godwit "
                    "(cpr-transfer is)",
                    mode);
        return false;
    }
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "Parameter 'mode' does not accept value '%s'",
                mode ? mode : "");
    return false;
}

static bool
is_unix_socket(int fd)
{
    int domain = 0;
    socklen_t len = sizeof(domain);

    return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
           domain == AF_UNIX;
}

/* unix:PATH, or an fd that is a unix socket: SCM_RIGHTS needs one. */
static bool
check_transport(const char *uri, int fd, GError **errp)
{
    if (fd >= 0 ? is_unix_socket(fd) : g_str_has_prefix(uri, "unix:")) {
        return true;
    }
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "migration mode cpr-transfer hands guest RAM over a unix "
                "socket (SCM_RIGHTS): '%s' is not one",
                uri);
    return false;
}

bool
gw_mig_cpr_check_source(GwMig *mig, const char *uri, int fd, GError **errp)
{
    GwMachine *m = gw_vm_machine(mig->vm);

    if (!mig->cpr) {
        return true;
    }
    if (mig->multifd) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "migration mode cpr-transfer sends no RAM: turn the "
                    "multifd capability off");
        return false;
    }
    return check_transport(uri, fd, errp) &&
           (!m || gw_mem_can_hand_over(gw_machine_memory(m), errp));
}

bool
gw_mig_cpr_check_incoming(GwMig *mig, const char *uri, int fd, GError **errp)
{
    GwMachine *m = gw_vm_machine(mig->vm);

    if (!mig->cpr) {
        return true;
    }
    if (mig->multifd) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "migration mode cpr-transfer receives no RAM: turn the "
                    "multifd capability off");
        return false;
    }
    return check_transport(uri, fd, errp) &&
           (!m || gw_mem_can_hand_over(gw_machine_memory(m), errp));
}

/* ---- the CPR_RAM record ---- */

GBytes *
gw_mig_cpr_layout(const GwGuestMemory *mem)
{
    size_t len = 12 + REGION_LEN * mem->n_regions;
    uint8_t *p = g_malloc(len);

    gw_mig_st64(p, mem->size);
    gw_mig_st32(p + 8, mem->n_regions);
    for (guint i = 0; i < mem->n_regions; i++) {
        uint8_t *r = p + 12 + REGION_LEN * i;
        gw_mig_st64(r, mem->regions[i].gpa);
        gw_mig_st64(r + 8, mem->regions[i].size);
        gw_mig_st64(r + 16, mem->regions[i].offset);
    }
    return g_bytes_new_take(p, len);
}

static bool
layout_differs(GError **errp, const char *what)
{
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "migration: the source's guest RAM fd: %s", what);
    return false;
}

bool
gw_mig_cpr_layout_check(const GwGuestMemory *mem, const void *data, size_t len,
                        GError **errp)
{
    const uint8_t *p = data;
    uint32_t n = len >= 12 ? gw_mig_ld32(p + 8) : 0;

    if (len < 12 || n < 1 || n > G_N_ELEMENTS(mem->regions) ||
        len != 12 + (size_t)REGION_LEN * n) {
        return layout_differs(errp, "malformed CPR_RAM record");
    }
    if (gw_mig_ld64(p) != mem->size || n != mem->n_regions) {
        return layout_differs(errp, "its size or region count is not this "
                                    "VM's");
    }
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *r = p + 12 + REGION_LEN * i;
        if (gw_mig_ld64(r) != mem->regions[i].gpa ||
            gw_mig_ld64(r + 8) != mem->regions[i].size ||
            gw_mig_ld64(r + 16) != mem->regions[i].offset) {
            return layout_differs(errp, "its RAM regions are not this VM's");
        }
    }
    return true;
}

/*
 * The destination's main-thread half: check the fd, map it, and point
 * the vDPA devices at it, read-only: until COMMIT the pages are the
 * source's, and a device restored running must not write them (its
 * writes fail in the IOTLB instead).
 */
bool
gw_mig_cpr_adopt_main(GwMigJob *j, GError **errp)
{
    GwMachine *m = gw_vm_machine(gw_mig_vm(j->mig));
    GwGuestMemory *mem = gw_machine_memory(m);

    if (!gw_mem_check_handover(mem, j->cpr_fd, errp) ||
        !gw_mem_adopt(mem, j->cpr_fd, errp)) {
        return false;
    }
    j->cpr_fd = -1; /* guest RAM's now */
    return gw_machine_remap_vdpa(m, false, errp);
}

/* After COMMIT: the guest is this process's; its RAM becomes writable,
 * for the vCPUs and for the vDPA devices. */
bool
gw_mig_cpr_own_main(GwMigJob *j, GError **errp)
{
    GwMachine *m = gw_vm_machine(gw_mig_vm(j->mig));

    return gw_mem_take_ownership(gw_machine_memory(m), errp) &&
           gw_machine_remap_vdpa(m, true, errp);
}
