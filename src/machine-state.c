/*
 * The board's migration: its manifest, its device sections (the
 * platform table of machine.c, the vDPA functions, the vCPUs and KVM's
 * own devices), what blocks a migration, and dirty tracking.
 *
 * Threads: the main thread, with the device lock taken here around
 * device state, except gw_machine_dirty_sync, which the migration
 * sender calls (see machine.h).
 */
#include <string.h>
#include <godwit/kvm-state.h>
#include <godwit/util.h>
#include <godwit/vdpa-device.h>
#include <godwit/vdpa-svq.h>
#include <godwit/virtio-iommu.h>
#include <godwit/virtio-pci.h>
#include <godwit/vmstate.h>
#include "machine-priv.h"

#define WORD_BITS (8 * sizeof(unsigned long))
/* The virtio-iommu's section id (docs/migration.md). */
#define GW_MACHINE_IOMMU_SECTION "virtio-iommu"

/* ---- KVM's state as sections ---- */

static const GwVmsdField vcpu_fields[] = {
    GW_VMSD_FIELD(GwVcpuState, regs, 1),
    GW_VMSD_FIELD(GwVcpuState, sregs, 1),
    GW_VMSD_FIELD(GwVcpuState, xcrs, 1),
    GW_VMSD_FIELD(GwVcpuState, debugregs, 1),
    GW_VMSD_FIELD(GwVcpuState, events, 1),
    GW_VMSD_FIELD(GwVcpuState, mp_state, 1),
    GW_VMSD_FIELD(GwVcpuState, lapic, 1),
    GW_VMSD_FIELD(GwVcpuState, xsave_size, 1),
    GW_VMSD_FIELD(GwVcpuState, n_msrs, 1),
    GW_VMSD_ARRAY(GwVcpuState, msrs, 1),
    GW_VMSD_ARRAY(GwVcpuState, xsave, 1),
    GW_VMSD_END,
};

static bool
vcpu_post_load(void *obj, unsigned version, GError **errp)
{
    const GwVcpuState *st = obj;

    if (st->n_msrs > GW_VCPU_MAX_MSRS || st->xsave_size > GW_VCPU_XSAVE_MAX) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vcpu: %u MSRs or %u bytes of XSAVE is more than this "
                    "godwit holds",
                    st->n_msrs, st->xsave_size);
        return false;
    }
    return true;
}

static const GwVmsd vcpu_vmsd = {
    .name = "vcpu",
    .version = 1,
    .fields = vcpu_fields,
    .post_load = vcpu_post_load,
    .size = sizeof(GwVcpuState),
};

static const GwVmsdField kvm_fields[] = {
    GW_VMSD_FIELD(GwKvmVmState, pic_master, 1),
    GW_VMSD_FIELD(GwKvmVmState, pic_slave, 1),
    GW_VMSD_FIELD(GwKvmVmState, ioapic, 1),
    GW_VMSD_FIELD(GwKvmVmState, pit, 1),
    GW_VMSD_FIELD(GwKvmVmState, clock, 1),
    GW_VMSD_END,
};

static const GwVmsd kvm_vmsd = {
    .name = "kvm",
    .version = 1,
    .fields = kvm_fields,
    .size = sizeof(GwKvmVmState),
};

/* ---- the manifest ---- */

static json_object *
jstr(const char *s)
{
    return json_object_new_string(s);
}

static json_object *
manifest_devices(GwMachine *m)
{
    json_object *list = json_object_new_array();

    for (guint i = 0; i < m->vdpa->len; i++) {
        GwVdpaDevice *d = m->vdpa->pdata[i];
        const GwVdpaConfig *cfg = gw_vdpa_device_config(d);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", jstr(cfg->id));
        g_autofree char *addr = g_strdup_printf(
            "%04x:00:%02x.0", cfg->pci_segment, gw_vdpa_device_pci(d)->slot);
        g_autofree char *features = g_strdup_printf(
            "0x%016" G_GINT64_MODIFIER "x", gw_vdpa_device_features(d));
        json_object_object_add(
            o, "type", jstr(gw_virtio_device_name(gw_vdpa_device_type(d))));
        json_object_object_add(
            o, "virtio-id", json_object_new_int((int)gw_vdpa_device_type(d)));
        json_object_object_add(o, "address", jstr(addr));
        json_object_object_add(o, "features", jstr(features));
        json_object_object_add(o, "num-queues",
                               json_object_new_int((int)cfg->num_queues));
        json_object_array_add(list, o);
    }
    return list;
}

static gint
cmp_u32(gconstpointer a, gconstpointer b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* The virtio-iommu and its endpoints (sorted), or NULL without one. */
static json_object *
manifest_iommu(GwMachine *m)
{
    g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    json_object *o, *list;

    if (!m->iommu) {
        return NULL;
    }
    for (guint i = 0; i < m->vdpa->len; i++) {
        uint32_t ep = gw_vdpa_device_endpoint(m->vdpa->pdata[i]);
        if (ep != UINT32_MAX) {
            g_array_append_val(ids, ep);
        }
    }
    g_array_sort(ids, cmp_u32);
    o = json_object_new_object();
    list = json_object_new_array();
    for (guint i = 0; i < ids->len; i++) {
        json_object_array_add(
            list, json_object_new_int64(g_array_index(ids, uint32_t, i)));
    }
    json_object_object_add(o, "endpoints", list);
    return o;
}

static json_object *
manifest_cpuid(GwMachine *m)
{
    g_autofree struct kvm_cpuid2 *c = gw_vcpus_cpuid(m->vcpus);
    json_object *list = json_object_new_array();

    for (uint32_t i = 0; i < c->nent; i++) {
        const struct kvm_cpuid_entry2 *e = &c->entries[i];
        json_object *o = json_object_new_array();
        uint32_t v[] = {e->function, e->index, e->flags, e->eax,
                        e->ebx,      e->ecx,   e->edx};
        for (size_t k = 0; k < G_N_ELEMENTS(v); k++) {
            json_object_array_add(o, json_object_new_int64(v[k]));
        }
        json_object_array_add(list, o);
    }
    return list;
}

json_object *
gw_machine_manifest(GwMachine *m)
{
    json_object *o = json_object_new_object();

    json_object *regions = json_object_new_array();

    json_object_object_add(o, "memory-size",
                           json_object_new_int64((int64_t)m->mem->size));
    for (guint i = 0; i < m->mem->n_regions; i++) {
        json_object *r = json_object_new_object();
        json_object_object_add(
            r, "gpa", json_object_new_int64((int64_t)m->mem->regions[i].gpa));
        json_object_object_add(
            r, "size", json_object_new_int64((int64_t)m->mem->regions[i].size));
        json_object_array_add(regions, r);
    }
    json_object_object_add(o, "memory-regions", regions);
    json_object_object_add(o, "accel", jstr(m->kvm ? "kvm" : "qtest"));
    json_object_object_add(o, "vcpus",
                           json_object_new_int((int)m->cfg->boot_vcpus));
    json_object_object_add(o, "pci-segments",
                           json_object_new_int((int)gw_machine_n_segments(m)));
    g_mutex_lock(&m->dev_lock);
    json_object_object_add(o, "devices", manifest_devices(m));
    if (m->iommu) {
        json_object_object_add(o, "virtio-iommu", manifest_iommu(m));
    }
    g_mutex_unlock(&m->dev_lock);
    if (m->vcpus) {
        json_object_object_add(o, "cpuid", manifest_cpuid(m));
    }
    return o;
}

static bool
differs(GError **errp, const char *what, json_object *src, json_object *dst)
{
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "the source's %s is %s, this VM's is %s", what,
                src ? json_object_to_json_string(src) : "absent",
                dst ? json_object_to_json_string(dst) : "absent");
    return false;
}

static bool
same_member(json_object *src, json_object *dst, const char *key,
            const char *what, GError **errp)
{
    json_object *a = json_object_object_get(src, key);
    json_object *b = json_object_object_get(dst, key);

    return json_object_equal(a, b) || differs(errp, what, a, b);
}

/* A source from before segments sent no "pci-segments": it had one. */
static bool
same_segments(json_object *src, json_object *dst, GError **errp)
{
    json_object *a = json_object_object_get(src, "pci-segments");
    json_object *b = json_object_object_get(dst, "pci-segments");
    g_autoptr(json_object) one = json_object_new_int(1);

    return json_object_equal(a ? a : one, b) ||
           differs(errp, "number of PCI segments", a, b);
}

static json_object *
find_device(json_object *list, const char *id)
{
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *d = json_object_array_get_idx(list, i);
        const char *did =
            json_object_get_string(json_object_object_get(d, "id"));
        if (did && g_str_equal(did, id)) {
            return d;
        }
    }
    return NULL;
}

/* Every device on both sides, with the same shape. */
static bool
same_devices(json_object *src, json_object *dst, GError **errp)
{
    json_object *s = json_object_object_get(src, "devices");
    json_object *d = json_object_object_get(dst, "devices");

    if (!json_object_is_type(s, json_type_array)) {
        return differs(errp, "device list", s, d);
    }
    for (size_t i = 0; i < json_object_array_length(d); i++) {
        json_object *mine = json_object_array_get_idx(d, i);
        const char *id =
            json_object_get_string(json_object_object_get(mine, "id"));
        json_object *theirs = find_device(s, id);
        g_autofree char *what = g_strdup_printf("device %s", id);
        if (!json_object_equal(theirs, mine)) {
            return differs(errp, what, theirs, mine);
        }
    }
    if (json_object_array_length(s) != json_object_array_length(d)) {
        return differs(errp, "device list", s, d);
    }
    return true;
}

static struct kvm_cpuid2 *
cpuid_from_json(json_object *list)
{
    size_t n = json_object_array_length(list);
    struct kvm_cpuid2 *c =
        g_malloc0(sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));

    c->nent = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(list, i);
        uint32_t v[7] = {0};
        for (size_t k = 0; k < 7; k++) {
            v[k] = (uint32_t)json_object_get_int64(
                json_object_array_get_idx(e, k));
        }
        c->entries[i] = (struct kvm_cpuid_entry2){.function = v[0],
                                                  .index = v[1],
                                                  .flags = v[2],
                                                  .eax = v[3],
                                                  .ebx = v[4],
                                                  .ecx = v[5],
                                                  .edx = v[6]};
    }
    return c;
}

static bool
same_cpu(GwMachine *m, json_object *src, GError **errp)
{
    json_object *list = json_object_object_get(src, "cpuid");
    g_autofree struct kvm_cpuid2 *theirs = NULL;
    g_autofree struct kvm_cpuid2 *mine = NULL;

    if (!m->vcpus) {
        return true;
    }
    if (!json_object_is_type(list, json_type_array)) {
        return differs(errp, "CPUID", list, NULL);
    }
    theirs = cpuid_from_json(list);
    mine = gw_kvm_supported_cpuid(m->kvm, errp);
    return mine && gw_kvm_cpuid_compatible(theirs, mine, errp);
}

bool
gw_machine_manifest_check(GwMachine *m, json_object *src, GError **errp)
{
    g_autoptr(json_object) mine = gw_machine_manifest(m);

    if (!json_object_is_type(src, json_type_object)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "the source's manifest is not a JSON object");
        return false;
    }
    if (!same_member(src, mine, "memory-size", "memory size", errp) ||
        !same_member(src, mine, "memory-regions", "memory layout", errp) ||
        !same_member(src, mine, "accel", "accelerator", errp) ||
        !same_member(src, mine, "vcpus", "vCPU count", errp) ||
        !same_segments(src, mine, errp) || !same_devices(src, mine, errp) ||
        !same_member(src, mine, "virtio-iommu", "virtio-iommu", errp) ||
        !same_cpu(m, src, errp)) {
        g_prefix_error(errp, "configuration mismatch: ");
        return false;
    }
    return true;
}

/* ---- what blocks a migration ---- */

char *
gw_machine_migration_blocker(GwMachine *m)
{
    char *why = NULL;

    g_mutex_lock(&m->dev_lock);
    for (guint i = 0; i < m->vdpa->len && !why; i++) {
        GwVdpaDevice *d = m->vdpa->pdata[i];
        why = gw_vdpa_device_migration_blocker(d);
        /* Started after the migration began: not on shadow rings. */
        if (!why && m->migrating && gw_vdpa_device_is_running(d) &&
            !gw_vdpa_device_svq_active(d)) {
            why = g_strdup_printf("vDPA device %s was started during the "
                                  "migration: what it writes into guest "
                                  "RAM is not tracked",
                                  gw_vdpa_device_config(d)->id);
        }
    }
    if (!why && m->ejected->len) {
        why = g_strdup("a device is being ejected");
    }
    g_mutex_unlock(&m->dev_lock);
    return why;
}

json_object *
gw_machine_query_vdpa_vrings(GwMachine *m, const char *id, GError **errp)
{
    json_object *ret = NULL;

    g_mutex_lock(&m->dev_lock);
    for (guint i = 0; i < m->vdpa->len && !ret; i++) {
        GwVdpaDevice *d = m->vdpa->pdata[i];
        if (g_str_equal(gw_vdpa_device_config(d)->id, id)) {
            ret = gw_vdpa_device_query_vrings(d);
        }
    }
    g_mutex_unlock(&m->dev_lock);
    if (!ret) {
        g_set_error(errp, GW_ERROR, GW_ERROR_NOT_FOUND,
                    "Device '%s' is no vDPA device", id);
    }
    return ret;
}

/* Every vDPA device on shadow virtqueues (on) or back in passthrough;
 * with the device lock held. */
static bool
shadow_all(GwMachine *m, bool on, GError **errp)
{
    for (guint i = 0; i < m->vdpa->len; i++) {
        GwVdpaDevice *d = m->vdpa->pdata[i];
        g_autoptr(GError) err = NULL;
        if (on && gw_vdpa_device_is_running(d) &&
            !gw_vdpa_device_svq_start(d, errp)) {
            shadow_all(m, false, NULL);
            return false;
        }
        if (!on && gw_vdpa_device_svq_active(d) &&
            !gw_vdpa_device_svq_stop(d, &err)) {
            if (!errp) {
                g_warning("%s", err->message);
                continue;
            }
            g_propagate_error(errp, g_steal_pointer(&err));
            return false;
        }
    }
    return true;
}

/* ---- device sections ---- */

static GBytes *
section(const char *id, const GwVmsd *d, void *obj, GError **errp)
{
    g_autoptr(GwMigBuf) b = gw_mig_buf_new();

    gw_mig_buf_put_str(b, id);
    if (!gw_vmsd_save(d, obj, b, errp)) {
        return NULL;
    }
    return gw_mig_buf_free_to_bytes(g_steal_pointer(&b));
}

static GBytes *
vdpa_section(GwVdpaDevice *dev, GError **errp)
{
    g_autofree char *id =
        g_strdup_printf("vdpa:%s", gw_vdpa_device_config(dev)->id);
    g_autoptr(GwMigBuf) b = gw_mig_buf_new();

    gw_mig_buf_put_str(b, id);
    if (!gw_vdpa_device_save(dev, b, errp)) {
        return NULL;
    }
    return gw_mig_buf_free_to_bytes(g_steal_pointer(&b));
}

static GBytes *
iommu_section(GwVirtioIommu *iommu, GError **errp)
{
    g_autoptr(GwMigBuf) b = gw_mig_buf_new();

    gw_mig_buf_put_str(b, GW_MACHINE_IOMMU_SECTION);
    if (!gw_virtio_iommu_save(iommu, b, errp)) {
        return NULL;
    }
    return gw_mig_buf_free_to_bytes(g_steal_pointer(&b));
}

static bool
save_kvm(GwMachine *m, GPtrArray *out, GError **errp)
{
    g_autofree GwVcpuState *st = g_new0(GwVcpuState, 1);
    GwKvmVmState vs;
    GBytes *b;

    for (unsigned i = 0; i < gw_vcpus_count(m->vcpus); i++) {
        g_autofree char *id = g_strdup_printf("cpu:%u", i);
        if (!gw_vcpus_get_state(m->vcpus, i, st, errp) ||
            !(b = section(id, &vcpu_vmsd, st, errp))) {
            return false;
        }
        g_ptr_array_add(out, b);
    }
    if (!gw_kvm_get_vm_state(m->kvm, &vs, errp) ||
        !(b = section("kvm", &kvm_vmsd, &vs, errp))) {
        return false;
    }
    g_ptr_array_add(out, b);
    return true;
}

static bool
save_devices(GwMachine *m, GPtrArray *out, GError **errp)
{
    size_t n;
    const GwMachineDevice *devs = gw_machine_devices(&n);
    GBytes *b;

    for (size_t i = 0; i < n; i++) {
        if (!(b = section(devs[i].id, devs[i].vmsd,
                          gw_machine_device(m, &devs[i]), errp))) {
            return false;
        }
        g_ptr_array_add(out, b);
    }
    for (unsigned s = 1; s < gw_machine_n_segments(m); s++) {
        g_autofree char *id = g_strdup_printf("pci:%u", s);
        if (!(b = section(id, &gw_pci_bus_vmsd, m->pci[s], errp))) {
            return false;
        }
        g_ptr_array_add(out, b);
    }
    if (m->iommu) {
        if (!(b = iommu_section(m->iommu, errp))) {
            return false;
        }
        g_ptr_array_add(out, b);
    }
    for (guint i = 0; i < m->vdpa->len; i++) {
        if (!(b = vdpa_section(m->vdpa->pdata[i], errp))) {
            return false;
        }
        g_ptr_array_add(out, b);
    }
    return true;
}

GPtrArray *
gw_machine_save_state(GwMachine *m, GError **errp)
{
    g_autoptr(GPtrArray) out =
        g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    bool ok;

    g_mutex_lock(&m->dev_lock);
    /* Suspended with the VM: back on their own rings, the relay's last
     * completions copied to the guest and marked before the last sync. */
    ok = shadow_all(m, false, errp) && save_devices(m, out, errp);
    g_mutex_unlock(&m->dev_lock);
    if (!ok || (m->vcpus && !save_kvm(m, out, errp))) {
        g_prefix_error(errp, "saving device state: ");
        return NULL;
    }
    return g_steal_pointer(&out);
}

/* Each section by its id; duplicates and malformed ids refused. */
static GHashTable *
index_sections(GPtrArray *sections, GError **errp)
{
    g_autoptr(GHashTable) by_id =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

    for (guint i = 0; i < sections->len; i++) {
        GwMigCursor c;
        char *id;
        gw_mig_cursor_init_bytes(&c, sections->pdata[i]);
        if (!(id = gw_mig_device_section_parse_id(&c, errp))) {
            return NULL;
        }
        if (g_hash_table_contains(by_id, id)) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "device section %s appears twice", id);
            g_free(id);
            return NULL;
        }
        g_hash_table_insert(by_id, id, sections->pdata[i]);
    }
    return g_steal_pointer(&by_id);
}

/* The cursor of section `id`, past its id; taken out of `by_id`. */
static bool
take_section(GHashTable *by_id, const char *id, GwMigCursor *c, GError **errp)
{
    GBytes *b = g_hash_table_lookup(by_id, id);

    if (!b) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "the stream has no state for device %s", id);
        return false;
    }
    g_hash_table_remove(by_id, id);
    gw_mig_cursor_init_bytes(c, b);
    g_free(gw_mig_device_section_parse_id(c, NULL));
    return true;
}

/* Before the vDPA functions: their restored rings are at IOVAs, which
 * their IOTLBs must translate when they start.  Either side without an
 * IOMMU is refused here, before any device of it is loaded. */
static bool
load_iommu(GwMachine *m, GHashTable *by_id, GError **errp)
{
    GwMigCursor c;

    if (!m->iommu) {
        if (!g_hash_table_contains(by_id, GW_MACHINE_IOMMU_SECTION)) {
            return true;
        }
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "the source has a virtio-iommu, this VM has none");
        return false;
    }
    if (!g_hash_table_contains(by_id, GW_MACHINE_IOMMU_SECTION)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "this VM has a virtio-iommu, the source has none");
        return false;
    }
    return take_section(by_id, GW_MACHINE_IOMMU_SECTION, &c, errp) &&
           gw_virtio_iommu_load(m->iommu, &c, errp);
}

static bool
load_devices(GwMachine *m, GHashTable *by_id, GError **errp)
{
    size_t n;
    const GwMachineDevice *devs = gw_machine_devices(&n);
    GwMigCursor c;

    for (size_t i = 0; i < n; i++) {
        if (!take_section(by_id, devs[i].id, &c, errp) ||
            !gw_mig_device_section_load(&c, devs[i].vmsd,
                                        gw_machine_device(m, &devs[i]), errp)) {
            return false;
        }
    }
    for (unsigned s = 1; s < gw_machine_n_segments(m); s++) {
        g_autofree char *id = g_strdup_printf("pci:%u", s);
        if (!take_section(by_id, id, &c, errp) ||
            !gw_mig_device_section_load(&c, &gw_pci_bus_vmsd, m->pci[s],
                                        errp)) {
            return false;
        }
    }
    if (!load_iommu(m, by_id, errp)) {
        return false;
    }
    for (guint i = 0; i < m->vdpa->len; i++) {
        GwVdpaDevice *d = m->vdpa->pdata[i];
        g_autofree char *id =
            g_strdup_printf("vdpa:%s", gw_vdpa_device_config(d)->id);
        if (!take_section(by_id, id, &c, errp) ||
            !gw_vdpa_device_load(d, &c, errp) ||
            !gw_mig_cursor_finish(&c, errp)) {
            return false;
        }
    }
    return true;
}

static bool
load_kvm(GwMachine *m, GHashTable *by_id, GError **errp)
{
    g_autofree GwVcpuState *st = g_new0(GwVcpuState, 1);
    GwKvmVmState vs;
    GwMigCursor c;

    for (unsigned i = 0; i < gw_vcpus_count(m->vcpus); i++) {
        g_autofree char *id = g_strdup_printf("cpu:%u", i);
        if (!take_section(by_id, id, &c, errp) ||
            !gw_mig_device_section_load(&c, &vcpu_vmsd, st, errp) ||
            !gw_vcpus_set_state(m->vcpus, i, st, errp)) {
            return false;
        }
    }
    /* Last, after every vCPU: the clock and the irqchips' pins. */
    return take_section(by_id, "kvm", &c, errp) &&
           gw_mig_device_section_load(&c, &kvm_vmsd, &vs, errp) &&
           gw_kvm_set_vm_state(m->kvm, &vs, errp);
}

static bool
nothing_left(GHashTable *by_id, GError **errp)
{
    GHashTableIter it;
    gpointer id;

    g_hash_table_iter_init(&it, by_id);
    if (!g_hash_table_iter_next(&it, &id, NULL)) {
        return true;
    }
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "the stream has state for device %s, which this VM lacks",
                (const char *)id);
    return false;
}

bool
gw_machine_load_state(GwMachine *m, GPtrArray *sections, GError **errp)
{
    g_autoptr(GHashTable) by_id = index_sections(sections, errp);
    bool ok;

    if (!by_id) {
        return false;
    }
    g_mutex_lock(&m->dev_lock);
    ok = load_devices(m, by_id, errp);
    g_mutex_unlock(&m->dev_lock);
    ok = ok && (!m->vcpus || load_kvm(m, by_id, errp)) &&
         nothing_left(by_id, errp);
    if (!ok) {
        g_prefix_error(errp, "loading device state: ");
    }
    return ok;
}

/* ---- dirty tracking ---- */

bool
gw_machine_migration_begin(GwMachine *m, GError **errp)
{
    bool ok;

    gw_mem_dirty_start(m->mem);
    if (m->kvm && !gw_kvm_dirty_log_start(m->kvm, errp)) {
        gw_mem_dirty_stop(m->mem);
        return false;
    }
    /* After dirty tracking starts: what the devices write from here on
     * is marked by the relay, what they wrote before by the first pass. */
    g_mutex_lock(&m->dev_lock);
    ok = shadow_all(m, true, errp);
    m->migrating = ok;
    g_mutex_unlock(&m->dev_lock);
    if (!ok) {
        gw_machine_migration_end(m);
    }
    return ok;
}

bool
gw_machine_remap_vdpa(GwMachine *m, bool writable, GError **errp)
{
    bool ok = true;

    g_mutex_lock(&m->dev_lock);
    for (guint i = 0; i < m->vdpa->len && ok; i++) {
        ok = gw_vdpa_device_remap_memory(m->vdpa->pdata[i], writable, errp);
    }
    g_mutex_unlock(&m->dev_lock);
    return ok;
}

void
gw_machine_migration_end(GwMachine *m)
{
    g_autoptr(GError) err = NULL;

    g_mutex_lock(&m->dev_lock);
    shadow_all(m, false, NULL);
    m->migrating = false;
    g_mutex_unlock(&m->dev_lock);
    gw_mem_dirty_stop(m->mem);
    if (m->kvm && !gw_kvm_dirty_log_stop(m->kvm, &err)) {
        g_warning("stopping KVM's dirty log: %s", err->message);
    }
}

typedef struct {
    const GwGuestMemory *mem;
    unsigned long *out;
} DirtyCtx;

/* One KVM slot's bits, moved to their memfd pages. */
static void
merge_slot(void *opaque, uint64_t gpa_base, const unsigned long *bits,
           uint64_t npages)
{
    DirtyCtx *d = opaque;
    uint64_t first = 0;

    for (guint i = 0; i < d->mem->n_regions; i++) {
        if (d->mem->regions[i].gpa == gpa_base) {
            first = d->mem->regions[i].offset / GW_MEM_PAGE;
        }
    }
    g_assert(first % WORD_BITS == 0); /* regions start on 256 KiB */
    for (uint64_t w = 0; w < (npages + WORD_BITS - 1) / WORD_BITS; w++) {
        d->out[first / WORD_BITS + w] |= bits[w];
    }
}

bool
gw_machine_dirty_sync(GwMachine *m, unsigned long *out, GError **errp)
{
    DirtyCtx d = {m->mem, out};

    gw_mem_dirty_collect(m->mem, out);
    return !m->kvm || gw_kvm_dirty_log_sync(m->kvm, merge_slot, &d, errp);
}
