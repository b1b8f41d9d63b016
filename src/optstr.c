#include <stdio.h>
#include <string.h>
#include <godwit/config.h>
#include <godwit/optstr.h>
#include <godwit/util.h>

/* Splits on single commas; ",," is a literal comma. */
static GPtrArray *
split_items(const char *str)
{
    GPtrArray *items = g_ptr_array_new_with_free_func(g_free);
    GString *cur = g_string_new(NULL);

    for (const char *p = str; *p; p++) {
        if (*p == ',' && p[1] == ',') {
            g_string_append_c(cur, ',');
            p++;
        } else if (*p == ',') {
            g_ptr_array_add(items, g_string_free(cur, FALSE));
            cur = g_string_new(NULL);
        } else {
            g_string_append_c(cur, *p);
        }
    }
    g_ptr_array_add(items, g_string_free(cur, FALSE));
    return items;
}

char *
gw_optstr_head(const char *str, const char **rest)
{
    GString *head = g_string_new(NULL);
    const char *p = str;

    for (; *p && (*p != ',' || p[1] == ','); p++) {
        p += *p == ','; /* ",," is one literal comma */
        g_string_append_c(head, *p);
    }
    *rest = *p ? p + 1 : NULL;
    return g_string_free(head, FALSE);
}

char **
gw_optstr_split(const char *option, const char *str, GError **errp)
{
    g_autoptr(GPtrArray) items = split_items(str);
    g_autoptr(GPtrArray) kv = g_ptr_array_new_with_free_func(g_free);

    for (guint i = 0; i < items->len; i++) {
        const char *item = items->pdata[i];
        const char *eq = strchr(item, '=');
        if (!eq || eq == item) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "%s: expected key=value, got '%s'", option, item);
            return NULL;
        }
        g_ptr_array_add(kv, g_strndup(item, eq - item));
        g_ptr_array_add(kv, g_strdup(eq + 1));
    }
    g_ptr_array_add(kv, NULL);
    return (char **)g_ptr_array_free(g_steal_pointer(&kv), FALSE);
}

static const GwOptKey *
find_key(const GwOptKey *keys, const char *name)
{
    for (const GwOptKey *k = keys; k->name; k++) {
        if (strcmp(k->name, name) == 0) {
            return k;
        }
    }
    return NULL;
}

static bool
parse_number(const char *option, const GwOptKey *k, const char *val,
             uint64_t type_max, uint64_t *out, GError **errp)
{
    uint64_t max = k->max ? k->max : type_max;
    g_autoptr(GError) err = NULL;
    bool ok;

    if (k->type == GW_OPT_SIZE) {
        ok = gw_parse_size(val, out, &err);
    } else {
        ok = g_ascii_string_to_unsigned(val, 10, 0, UINT64_MAX, out, &err);
    }
    if (!ok) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "%s: %s: '%s' is not a valid %s", option, k->name, val,
                    k->type == GW_OPT_SIZE ? "size" : "number");
        return false;
    }
    if (*out < k->min || *out > max) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "%s: %s: %s is out of range (%" G_GUINT64_FORMAT
                    "..%" G_GUINT64_FORMAT ")",
                    option, k->name, val, k->min, max);
        return false;
    }
    return true;
}

static bool
store_value(const char *option, const GwOptKey *k, const char *val, void *out,
            GError **errp)
{
    void *field = (char *)out + k->offset;
    uint64_t n = 0;

    if (*val == '\0') {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID, "%s: %s: empty value",
                    option, k->name);
        return false;
    }
    switch (k->type) {
    case GW_OPT_STR:
        g_free(*(char **)field);
        *(char **)field = g_strdup(val);
        return true;
    case GW_OPT_ONOFF:
        if (strcmp(val, "on") != 0 && strcmp(val, "off") != 0) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "%s: %s: expected on or off, got '%s'", option, k->name,
                        val);
            return false;
        }
        *(bool *)field = strcmp(val, "on") == 0;
        return true;
    case GW_OPT_U16:
        if (!parse_number(option, k, val, UINT16_MAX, &n, errp)) {
            return false;
        }
        *(uint16_t *)field = (uint16_t)n;
        return true;
    case GW_OPT_U32:
        if (!parse_number(option, k, val, UINT32_MAX, &n, errp)) {
            return false;
        }
        *(uint32_t *)field = (uint32_t)n;
        return true;
    case GW_OPT_SIZE:
        if (!parse_number(option, k, val, UINT64_MAX, &n, errp)) {
            return false;
        }
        *(uint64_t *)field = n;
        return true;
    }
    g_assert_not_reached();
}

bool
gw_optstr_parse(const char *option, const char *str, const GwOptKey *keys,
                void *out, GError **errp)
{
    g_auto(GStrv) kv = gw_optstr_split(option, str, errp);
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);

    if (!kv) {
        return false;
    }
    for (guint i = 0; kv[i]; i += 2) {
        const GwOptKey *k = find_key(keys, kv[i]);
        if (!k) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "%s: unknown key '%s'", option, kv[i]);
            return false;
        }
        if (!g_hash_table_add(seen, (gpointer)k->name)) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "%s: key '%s' given more than once", option, k->name);
            return false;
        }
        if (!store_value(option, k, kv[i + 1], out, errp)) {
            return false;
        }
    }
    for (const GwOptKey *k = keys; k->name; k++) {
        if (k->required && !g_hash_table_contains(seen, k->name)) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "%s: '%s' is required", option, k->name);
            return false;
        }
    }
    return true;
}

bool
gw_parse_size(const char *str, uint64_t *out, GError **errp)
{
    static const char suffixes[] = "KMGT";
    g_autofree char *digits = g_strdup(str);
    size_t len = strlen(digits);
    unsigned shift = 0;
    uint64_t n;

    if (len > 0) {
        const char *s = strchr(suffixes, g_ascii_toupper(digits[len - 1]));
        if (s) {
            shift = 10 * (unsigned)(s - suffixes + 1);
            digits[len - 1] = '\0';
        }
    }
    if (!g_ascii_string_to_unsigned(digits, 10, 0, UINT64_MAX, &n, NULL)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "'%s' is not a size (a number with an optional "
                    "K, M, G or T suffix)",
                    str);
        return false;
    }
    if (shift && n > (UINT64_MAX >> shift)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "size '%s' overflows 64 bits", str);
        return false;
    }
    *out = n << shift;
    return true;
}

bool
gw_parse_mac(const char *str, uint8_t mac[6], GError **errp)
{
    unsigned b[6];
    char tail;

    if (strlen(str) != 17 ||
        sscanf(str, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3],
               &b[4], &b[5], &tail) != 6) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "'%s' is not a MAC address (aa:bb:cc:dd:ee:ff)", str);
        return false;
    }
    for (int i = 0; i < 6; i++) {
        if (!g_ascii_isxdigit(str[i * 3]) ||
            !g_ascii_isxdigit(str[i * 3 + 1])) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "'%s' is not a MAC address (aa:bb:cc:dd:ee:ff)", str);
            return false;
        }
        mac[i] = (uint8_t)b[i];
    }
    return true;
}
