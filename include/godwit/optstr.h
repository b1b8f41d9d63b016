/*
 * optstr: the "key=value,key=value" grammar of Cloud Hypervisor-style
 * options, driven by a table of keys.  Each key names its type, where
 * its value goes in the caller's struct, and its bounds; the parser
 * rejects unknown keys, keys given twice, missing required keys and
 * values that do not parse, each with a message naming the option and
 * the key.  A literal comma inside a value is written ",," as in QEMU.
 *
 * Thread: any; no state.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

typedef enum {
    GW_OPT_STR,   /* char *, newly allocated; empty value rejected */
    GW_OPT_U32,   /* uint32_t within [min, max] */
    GW_OPT_U16,   /* uint16_t within [min, max] */
    GW_OPT_ONOFF, /* bool from on|off */
    GW_OPT_SIZE,  /* uint64_t bytes from <n>[K|M|G|T], within [min, max] */
} GwOptType;

typedef struct {
    const char *name;
    GwOptType type;
    size_t offset; /* of the field in the caller's struct */
    bool required;
    uint64_t min, max; /* numeric types; max 0 = the type's maximum */
} GwOptKey;

/*
 * Parses `str` against `keys` (terminated by a NULL name) into `out`.
 * Fields of keys that are absent keep their value (the caller's
 * defaults).  `option` ("--vdpa") prefixes every message.  On error,
 * strings already stored in `out` stay owned by `out`.
 */
bool gw_optstr_parse(const char *option, const char *str, const GwOptKey *keys,
                     void *out, GError **errp);

/*
 * Splits "k=v,k2=v2" into a list of (key, value) pairs in order
 * (",," unescaped).  Each item must contain '='.  Caller frees with
 * g_strfreev: even entries are keys, odd entries values.
 */
char **gw_optstr_split(const char *option, const char *str, GError **errp);

/*
 * The first item of `str`, up to the first single comma, with ",,"
 * unescaped (newly allocated; "" when `str` starts with a comma).
 * *rest points after that comma, or is NULL when there is none.
 */
char *gw_optstr_head(const char *str, const char **rest);
