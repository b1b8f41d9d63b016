/*
 * --platform: num_pci_segments and iommu_segments (Cloud Hypervisor's
 * names and meanings), and the rule both impose on a vDPA device's
 * iommu= and pci_segment=.
 *
 * iommu_segments is a list as CH's CLI writes it, `[1,2]` or with
 * ranges `[1-3]`; inside brackets a comma needs no doubling (optstr's
 * `,,` is taken too), and a single segment may go without brackets
 * (`iommu_segments=1`).
 */
#include <string.h>
#include <godwit/config.h>
#include <godwit/optstr.h>
#include <godwit/util.h>

typedef struct {
    uint16_t num_pci_segments;
    char *iommu_segments;
} PlatformOpts;

/* `str` with each comma inside [...] doubled (a run of commas counts as
 * one), so optstr keeps a bracketed list in one value. */
static char *
escape_lists(const char *str)
{
    GString *out = g_string_sized_new(strlen(str) + 8);
    int depth = 0;

    for (const char *p = str; *p; p++) {
        depth += *p == '[' ? 1 : *p == ']' ? -1 : 0;
        if (*p == ',' && depth > 0) {
            while (p[1] == ',') {
                p++;
            }
            g_string_append(out, ",,");
            continue;
        }
        g_string_append_c(out, *p);
    }
    return g_string_free(out, false);
}

static bool
parse_segment(const char *s, uint16_t n_segments, unsigned *out, GError **errp)
{
    guint64 v;

    if (!g_ascii_string_to_unsigned(s, 10, 0, UINT16_MAX, &v, NULL)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "--platform: iommu_segments: '%s' is not a segment number",
                    s);
        return false;
    }
    if (v >= n_segments) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "--platform: iommu_segments: segment %u does not exist "
                    "(the platform has num_pci_segments=%u)",
                    (unsigned)v, n_segments);
        return false;
    }
    *out = (unsigned)v;
    return true;
}

/* One item, "S" or "A-B", into the bitmap. */
static bool
parse_item(const char *item, uint16_t n_segments, uint32_t *mask, GError **errp)
{
    g_auto(GStrv) ends = g_strsplit(item, "-", 2);
    unsigned lo, hi;

    if (!parse_segment(g_strstrip(ends[0]), n_segments, &lo, errp) ||
        !parse_segment(g_strstrip(ends[1] ? ends[1] : ends[0]), n_segments, &hi,
                       errp)) {
        return false;
    }
    if (hi < lo) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "--platform: iommu_segments: range '%s' is backwards",
                    item);
        return false;
    }
    for (unsigned s = lo; s <= hi; s++) {
        *mask |= 1u << s;
    }
    return true;
}

static bool
parse_list(const char *val, uint16_t n_segments, uint32_t *mask, GError **errp)
{
    g_autofree char *body = g_strdup(val);
    g_auto(GStrv) items = NULL;
    size_t len = strlen(body);

    if (body[0] == '[') {
        if (len < 2 || body[len - 1] != ']') {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "--platform: iommu_segments: '%s' has no closing ']'",
                        val);
            return false;
        }
        body[len - 1] = '\0';
        memmove(body, body + 1, len - 1);
    }
    *mask = 0;
    if (!*body) {
        return true; /* [] */
    }
    items = g_strsplit(body, ",", -1);
    for (guint i = 0; items[i]; i++) {
        if (!parse_item(items[i], n_segments, mask, errp)) {
            return false;
        }
    }
    return true;
}

bool
gw_platform_config_parse(GwConfig *cfg, const char *str, GError **errp)
{
    static const GwOptKey keys[] = {
        {"num_pci_segments", GW_OPT_U16,
         offsetof(PlatformOpts, num_pci_segments), false, 1,
         GW_MAX_PCI_SEGMENTS},
        {"iommu_segments", GW_OPT_STR, offsetof(PlatformOpts, iommu_segments)},
        {NULL},
    };
    g_autofree char *escaped = escape_lists(str);
    PlatformOpts o = {.num_pci_segments = cfg->num_pci_segments};
    g_autofree char *list = NULL;
    bool ok = gw_optstr_parse("--platform", escaped, keys, &o, errp);

    list = o.iommu_segments;
    if (!ok) {
        return false;
    }
    cfg->num_pci_segments = o.num_pci_segments;
    return !list ||
           parse_list(list, cfg->num_pci_segments, &cfg->iommu_segments, errp);
}

bool
gw_vdpa_config_check_iommu(const char *opt, const GwVdpaConfig *v,
                           uint32_t iommu_segments, bool hotplug, GError **errp)
{
    bool on_iommu_segment = iommu_segments & (1u << v->pci_segment);

    if (on_iommu_segment && !v->iommu) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "%s: pci_segment %u is behind the IOMMU "
                    "(--platform iommu_segments): the device needs iommu=on",
                    opt, v->pci_segment);
        return false;
    }
    if (hotplug && v->iommu && !on_iommu_segment) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "%s: iommu=on can be hot-plugged only on a segment "
                    "behind the IOMMU, which pci_segment %u is not "
                    "(list it in --platform iommu_segments)",
                    opt, v->pci_segment);
        return false;
    }
    return true;
}

json_object *
gw_iommu_segments_to_json(uint32_t iommu_segments)
{
    json_object *a = json_object_new_array();

    for (unsigned s = 0; s < GW_MAX_PCI_SEGMENTS; s++) {
        if (iommu_segments & (1u << s)) {
            json_object_array_add(a, json_object_new_int(s));
        }
    }
    return a;
}

bool
gw_config_wants_iommu(const GwConfig *cfg)
{
    for (guint i = 0; i < cfg->vdpa->len; i++) {
        if (((const GwVdpaConfig *)cfg->vdpa->pdata[i])->iommu) {
            return true;
        }
    }
    return cfg->iommu_segments != 0;
}
