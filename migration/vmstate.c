/*
 * Device state tables: save and load walk a GwVmsd.  See
 * include/godwit/vmstate.h; the encoding is in docs/migration.md.
 */
#include <string.h>
#include <godwit/vmstate.h>

/* A post_load to run once the whole section is in the object. */
typedef struct {
    const GwVmsd *d;
    size_t off; /* of the element within the top-level object */
    unsigned version;
} PostLoad;

typedef struct {
    GwMigCursor *in;
    uint8_t *scratch; /* a copy of the top-level object */
    GArray *post;     /* PostLoad, innermost first */
} Load;

static bool vmsd_error(GError **errp, int code, const GwVmsd *d,
                       const char *fmt, ...) G_GNUC_PRINTF(4, 5);

static bool
vmsd_error(GError **errp, int code, const GwVmsd *d, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(errp, GW_MIG_ERROR, code, "device %s: %s", d->name, msg);
    return false;
}

static unsigned
field_count(const GwVmsd *d)
{
    unsigned n = 0;

    while (d->fields[n].name) {
        n++;
    }
    return n;
}

/* --- validate ---------------------------------------------------------- */

static bool
validate_field(const GwVmsd *d, const GwVmsdField *f, GError **errp)
{
    for (const GwVmsdField *g = d->fields; g != f; g++) {
        if (strcmp(g->name, f->name) == 0) {
            return vmsd_error(errp, GW_MIG_ERROR_FORMAT, d,
                              "field %s described twice", f->name);
        }
    }
    if (f->size == 0 || f->count == 0 || f->size > UINT32_MAX ||
        f->offset > d->size || (d->size - f->offset) / f->size < f->count) {
        return vmsd_error(errp, GW_MIG_ERROR_FORMAT, d,
                          "field %s (%zu×%u at %zu) is outside the %zu-byte "
                          "object",
                          f->name, f->size, f->count, f->offset, d->size);
    }
    if (f->version < 1 || f->version > d->version) {
        return vmsd_error(errp, GW_MIG_ERROR_FORMAT, d,
                          "field %s has version %u, not 1..%u", f->name,
                          f->version, d->version);
    }
    if (f->is_bool && (f->sub || f->size != 1)) {
        return vmsd_error(errp, GW_MIG_ERROR_FORMAT, d,
                          "field %s: a bool of %zu bytes", f->name, f->size);
    }
    if (f->sub && f->sub->size != f->size) {
        return vmsd_error(errp, GW_MIG_ERROR_FORMAT, d,
                          "field %s: elements of %zu bytes described by %s "
                          "of %zu",
                          f->name, f->size, f->sub->name, f->sub->size);
    }
    return !f->sub || gw_vmsd_validate(f->sub, errp);
}

bool
gw_vmsd_validate(const GwVmsd *d, GError **errp)
{
    if (!d->name || d->version < 1 || d->size == 0 || !d->fields) {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT,
                    "device %s: description needs a name, a version, a "
                    "size and fields",
                    d->name ? d->name : "(unnamed)");
        return false;
    }
    for (const GwVmsdField *f = d->fields; f->name; f++) {
        if (!validate_field(d, f, errp)) {
            return false;
        }
    }
    return true;
}

/* --- save -------------------------------------------------------------- */

static bool
save_field(const GwVmsdField *f, uint8_t *obj, GwMigBuf *out, GError **errp)
{
    uint8_t *p = obj + f->offset;

    gw_mig_buf_put_str(out, f->name);
    gw_mig_buf_put_u32(out, f->size);
    gw_mig_buf_put_u32(out, f->count);
    if (!f->sub) {
        gw_mig_buf_put_bytes(out, p, f->size * f->count);
        return true;
    }
    for (unsigned k = 0; k < f->count; k++) {
        if (!gw_vmsd_save(f->sub, p + k * f->size, out, errp)) {
            return false;
        }
    }
    return true;
}

bool
gw_vmsd_save(const GwVmsd *d, void *obj, GwMigBuf *out, GError **errp)
{
    if (d->pre_save && !d->pre_save(obj, errp)) {
        return false;
    }
    gw_mig_buf_put_str(out, d->name);
    gw_mig_buf_put_u32(out, d->version);
    gw_mig_buf_put_u32(out, field_count(d));
    for (const GwVmsdField *f = d->fields; f->name; f++) {
        if (!save_field(f, obj, out, errp)) {
            return false;
        }
    }
    return true;
}

/* --- load -------------------------------------------------------------- */

static bool load_one(Load *l, const GwVmsd *d, size_t off, GError **errp);

static bool
cursor_error(const GwVmsd *d, const GwMigCursor *in, GError **errp)
{
    g_autoptr(GError) err = NULL;

    if (gw_mig_cursor_ok(in, &err)) {
        return true;
    }
    return vmsd_error(errp, GW_MIG_ERROR_FORMAT, d, "%s", err->message);
}

/* The field named `name` at or after fields[from], or -1. */
static int
find_field(const GwVmsd *d, int from, const char *name)
{
    for (int i = from; d->fields[i].name; i++) {
        if (strcmp(d->fields[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}

/*
 * Fields [from, to) are absent from a stream of `version`, which has
 * field `next` (NULL: the end) after them: allowed for later fields only.
 */
static bool
check_skipped(const GwVmsd *d, int from, int to, unsigned version,
              const char *next, GError **errp)
{
    for (int i = from; i < to; i++) {
        const GwVmsdField *f = &d->fields[i];
        if (f->version > version) {
            continue;
        }
        if (next) {
            return vmsd_error(errp, GW_MIG_ERROR_FORMAT, d,
                              "field %s (version %u) expected before %s in "
                              "a version %u stream",
                              f->name, f->version, next, version);
        }
        return vmsd_error(errp, GW_MIG_ERROR_FORMAT, d,
                          "field %s (version %u) missing from a version %u "
                          "stream",
                          f->name, f->version, version);
    }
    return true;
}

/* Decodes the data of field `f` of the element at `off` into scratch. */
static bool
load_data(Load *l, const GwVmsd *d, const GwVmsdField *f, size_t off,
          GError **errp)
{
    size_t at = off + f->offset;

    if (!f->sub) {
        gw_mig_get_bytes(l->in, l->scratch + at, f->size * f->count);
        if (!cursor_error(d, l->in, errp)) {
            return false;
        }
        for (unsigned k = 0; f->is_bool && k < f->count; k++) {
            if (l->scratch[at + k] > 1) {
                return vmsd_error(errp, GW_MIG_ERROR_FORMAT, d,
                                  "field %s: %u is not a bool", f->name,
                                  l->scratch[at + k]);
            }
        }
        return true;
    }
    for (unsigned k = 0; k < f->count; k++) {
        if (!load_one(l, f->sub, at + k * f->size, errp)) {
            return false;
        }
    }
    return true;
}

/*
 * Decodes one field of the stream into the element at `off`; *next is
 * the table index after the previous field, then after this one.
 */
static bool
load_field(Load *l, const GwVmsd *d, unsigned version, size_t off, int *next,
           GError **errp)
{
    g_autofree char *name = gw_mig_get_str(l->in);
    uint32_t size = gw_mig_get_u32(l->in), count = gw_mig_get_u32(l->in);

    if (!cursor_error(d, l->in, errp)) {
        return false;
    }
    int i = find_field(d, *next, name);
    if (i < 0) {
        return vmsd_error(errp, GW_MIG_ERROR_FORMAT, d,
                          find_field(d, 0, name) < 0
                              ? "unknown field %s in the stream"
                              : "field %s out of order in the stream",
                          name);
    }
    const GwVmsdField *f = &d->fields[i];
    if (size != f->size || count != f->count) {
        return vmsd_error(errp, GW_MIG_ERROR_FORMAT, d,
                          "field %s: %u×%u bytes in the stream, %u×%zu here",
                          name, count, size, f->count, f->size);
    }
    if (!check_skipped(d, *next, i, version, name, errp)) {
        return false;
    }
    *next = i + 1;
    return load_data(l, d, f, off, errp);
}

static bool
load_header(Load *l, const GwVmsd *d, unsigned *version, uint32_t *n,
            GError **errp)
{
    g_autofree char *name = gw_mig_get_str(l->in);

    *version = gw_mig_get_u32(l->in);
    *n = gw_mig_get_u32(l->in);
    if (!cursor_error(d, l->in, errp)) {
        return false;
    }
    if (strcmp(name, d->name) != 0) {
        return vmsd_error(errp, GW_MIG_ERROR_FORMAT, d,
                          "the stream holds state for %s", name);
    }
    if (*version > d->version) {
        return vmsd_error(errp, GW_MIG_ERROR_VERSION, d,
                          "state version %u is newer than %u", *version,
                          d->version);
    }
    if (*version == 0) {
        return vmsd_error(errp, GW_MIG_ERROR_FORMAT, d, "state version 0");
    }
    return true;
}

/* Decodes one encoding of `d` into the element at scratch + off. */
static bool
load_one(Load *l, const GwVmsd *d, size_t off, GError **errp)
{
    unsigned version;
    uint32_t n;
    int next = 0;

    if (!load_header(l, d, &version, &n, errp)) {
        return false;
    }
    for (uint32_t k = 0; k < n; k++) {
        if (!load_field(l, d, version, off, &next, errp)) {
            return false;
        }
    }
    if (!check_skipped(d, next, field_count(d), version, NULL, errp)) {
        return false;
    }
    if (d->post_load) {
        PostLoad p = {d, off, version};
        g_array_append_val(l->post, p);
    }
    return true;
}

/* Copies the described bytes only: the rest of the object is not ours. */
static void
commit(const GwVmsd *d, uint8_t *dst, const uint8_t *src)
{
    for (const GwVmsdField *f = d->fields; f->name; f++) {
        size_t at = f->offset;
        if (!f->sub) {
            memcpy(dst + at, src + at, f->size * f->count);
            continue;
        }
        for (unsigned k = 0; k < f->count; k++, at += f->size) {
            commit(f->sub, dst + at, src + at);
        }
    }
}

static bool
run_post_loads(GArray *post, uint8_t *obj, GError **errp)
{
    for (guint i = 0; i < post->len; i++) {
        PostLoad *p = &g_array_index(post, PostLoad, i);
        if (!p->d->post_load(obj + p->off, p->version, errp)) {
            return false;
        }
    }
    return true;
}

/* Decodes into scratch; commits and runs the hooks only if all decoded
 * (and, if `whole`, nothing follows). */
static bool
load_top(const GwVmsd *d, void *obj, GwMigCursor *in, bool whole, GError **errp)
{
    g_assert(d->size > 0);
    g_autofree uint8_t *scratch = g_memdup2(obj, d->size);
    g_autoptr(GArray) post = g_array_new(false, false, sizeof(PostLoad));
    Load l = {in, scratch, post};
    g_autoptr(GError) err = NULL;

    if (!load_one(&l, d, 0, errp)) {
        return false;
    }
    if (whole && !gw_mig_cursor_finish(in, &err)) {
        return vmsd_error(errp, GW_MIG_ERROR_FORMAT, d, "%s", err->message);
    }
    commit(d, obj, scratch);
    return run_post_loads(post, obj, errp);
}

bool
gw_vmsd_load(const GwVmsd *d, void *obj, GwMigCursor *in, GError **errp)
{
    return load_top(d, obj, in, false, errp);
}

/* --- device sections --------------------------------------------------- */

bool
gw_mig_device_section_write(GwMigWriter *w, const char *id, const GwVmsd *d,
                            void *obj, GError **errp)
{
    g_autoptr(GwMigBuf) buf = gw_mig_buf_new();

    gw_mig_buf_put_str(buf, id);
    if (!gw_vmsd_save(d, obj, buf, errp)) {
        return false;
    }
    return gw_mig_write(w, GW_MIG_REC_DEVICE, gw_mig_buf_data(buf),
                        gw_mig_buf_len(buf), errp);
}

char *
gw_mig_device_section_parse_id(GwMigCursor *c, GError **errp)
{
    g_autoptr(GError) err = NULL;
    char *id = gw_mig_get_str(c);

    if (!gw_mig_cursor_ok(c, &err)) {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT,
                    "device section: bad device id: %s", err->message);
        return NULL;
    }
    return id;
}

bool
gw_mig_device_section_load(GwMigCursor *c, const GwVmsd *d, void *obj,
                           GError **errp)
{
    return load_top(d, obj, c, true, errp);
}
