/*
 * vmstate: a device's migratable state declared once, as a table of
 * fields next to its struct, and saved/loaded by walking that table
 * (QEMU's VMStateDescription idea, much smaller).  The encoding is in
 * docs/migration.md.
 *
 * Plain fields are copied as raw host bytes: integers inside them are
 * NOT byte-swapped, so a stream moves only between hosts of the same
 * byte order and ABI (godwit is x86-64 only).  Pointers must not be
 * described as fields; derived state (mappings, routes, fds) is rebuilt
 * by post_load instead.
 *
 * Versions: a description's version is the newest of its fields'.  A
 * field added later carries the version that added it; a stream from
 * before that version lacks the field, which then keeps its value.
 *
 * Threads: the functions have no state of their own; they run on the
 * caller's thread with the object quiescent (VM stopped).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <glib.h>
#include <godwit/mig-stream.h>

struct GwVmsd;

typedef struct GwVmsdField {
    const char *name;
    size_t offset;
    size_t size; /* of one element */
    unsigned count;
    unsigned version; /* the description version that added it */
    /* plain bytes of C bool: each loaded byte must be 0 or 1 */
    bool is_bool;
    /* `count` structs of `size` bytes each described by sub, or NULL for
     * plain bytes */
    const struct GwVmsd *sub;
} GwVmsdField;

typedef struct GwVmsd {
    const char *name;
    unsigned version;
    const GwVmsdField *fields; /* terminated by GW_VMSD_END */
    /* Optional; may update fields from derived state before saving. */
    bool (*pre_save)(void *obj, GError **errp);
    /* Optional; rebuilds derived state from loaded fields.  `version` is
     * the stream's version of this description. */
    bool (*post_load)(void *obj, unsigned version, GError **errp);
    size_t size; /* sizeof the object described */
} GwVmsd;

/* Fails to compile unless `a` is an array (the kernel's __must_be_array). */
#define GW_VMSD_MUST_BE_ARRAY(a)                                               \
    (0 * sizeof(struct {                                                       \
         int : (-!!__builtin_types_compatible_p(__typeof__(a),                 \
                                                __typeof__(&(a)[0])));         \
     }))

#define GW_VMSD_MEMBER(Type, member) (((Type *)0)->member)

/* True when `x` is a C bool, whose bytes other than 0 and 1 are not
 * values (reading one is undefined behaviour). */
#define GW_VMSD_IS_BOOL(x) __builtin_types_compatible_p(__typeof__(x), bool)

/* A member of any type but a pointer, as its bytes (one element). */
#define GW_VMSD_FIELD(Type, member, ver)                                       \
    {                                                                          \
        .name = #member, .offset = offsetof(Type, member),                     \
        .size = sizeof(GW_VMSD_MEMBER(Type, member)), .count = 1,              \
        .version = (ver),                                                      \
        .is_bool = GW_VMSD_IS_BOOL(GW_VMSD_MEMBER(Type, member)),              \
    }

/* An array member, as `count` elements of its element's size. */
#define GW_VMSD_ARRAY(Type, member, ver)                                       \
    {                                                                          \
        .name = #member, .offset = offsetof(Type, member),                     \
        .size = sizeof(GW_VMSD_MEMBER(Type, member)[0]),                       \
        .count = G_N_ELEMENTS(GW_VMSD_MEMBER(Type, member)) +                  \
                 GW_VMSD_MUST_BE_ARRAY(GW_VMSD_MEMBER(Type, member)),          \
        .version = (ver),                                                      \
        .is_bool = GW_VMSD_IS_BOOL(GW_VMSD_MEMBER(Type, member)[0]),           \
    }

/* One nested struct described by `subd` (a const GwVmsd *). */
#define GW_VMSD_STRUCT(Type, member, ver, subd)                                \
    {                                                                          \
        .name = #member, .offset = offsetof(Type, member),                     \
        .size = sizeof(GW_VMSD_MEMBER(Type, member)), .count = 1,              \
        .version = (ver), .sub = (subd),                                       \
    }

/* An array of structs, each described by `subd`. */
#define GW_VMSD_STRUCT_ARRAY(Type, member, ver, subd)                          \
    {                                                                          \
        .name = #member, .offset = offsetof(Type, member),                     \
        .size = sizeof(GW_VMSD_MEMBER(Type, member)[0]),                       \
        .count = G_N_ELEMENTS(GW_VMSD_MEMBER(Type, member)) +                  \
                 GW_VMSD_MUST_BE_ARRAY(GW_VMSD_MEMBER(Type, member)),          \
        .version = (ver), .sub = (subd),                                       \
    }

#define GW_VMSD_END                                                            \
    {                                                                          \
        NULL                                                                   \
    }

/*
 * Checks a description once (tests, or the registry at startup): unique
 * field names, each inside `size`, versions 1..d->version, nested
 * descriptions the size of their elements.  FORMAT error naming the
 * device and field.  save and load assume a valid description.
 */
bool gw_vmsd_validate(const GwVmsd *d, GError **errp);

/*
 * Runs d->pre_save (and nested pre_saves, per element, before each is
 * encoded) and appends the encoding of `obj` to `out`.  On error `out`
 * may hold a partial encoding: discard it.
 */
bool gw_vmsd_save(const GwVmsd *d, void *obj, GwMigBuf *out, GError **errp);

/*
 * Decodes one encoding of `d` from `in` into `obj`.  Refused, with a
 * FORMAT or VERSION error naming the device (and field): another name;
 * a stream version newer than d->version ("device X: state version N is
 * newer than M"; inside a nested struct, X is the nested description); a field
 * unknown here, out of order, or of another element size or count; a field
 * missing that is not newer than the stream; a bool field holding a byte
 * other than 0 or 1; a truncated or malformed encoding.
 *
 * A refused section never modifies `obj`: everything is decoded into a
 * scratch copy first, and only the described fields are copied into
 * `obj` once the whole encoding decoded.  Then the post_load hooks run
 * on `obj`: nested ones per element, innermost first, then d's.  If a
 * post_load fails, `obj` keeps the loaded fields and whatever the hooks
 * did so far, and the error is returned: the caller must not run the
 * device (the destination fails the migration and discards the VM).
 * `in` is left after the encoding on success, anywhere on error.
 */
bool gw_vmsd_load(const GwVmsd *d, void *obj, GwMigCursor *in, GError **errp);

/*
 * Writes a DEVICE record: str `id` (the device's id in the VM) then the
 * encoding of `obj` by `d`.
 */
bool gw_mig_device_section_write(GwMigWriter *w, const char *id,
                                 const GwVmsd *d, void *obj, GError **errp);

/*
 * Starts parsing a DEVICE record whose payload `c` covers: returns the
 * device id (the caller's, g_free) and leaves `c` at the encoding, for
 * the caller to find the device and call gw_mig_device_section_load.
 * NULL with a FORMAT error if the id is malformed.
 */
char *gw_mig_device_section_parse_id(GwMigCursor *c, GError **errp);

/*
 * gw_vmsd_load over the rest of `c`, which must end with the encoding:
 * trailing bytes refuse the section too, before `obj` is touched.
 */
bool gw_mig_device_section_load(GwMigCursor *c, const GwVmsd *d, void *obj,
                                GError **errp);
