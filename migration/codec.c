/*
 * Little-endian encoding into a GwMigBuf and bounds-checked decoding out
 * of a GwMigCursor.  No state beyond the objects passed in.
 */
#include <string.h>
#include <godwit/mig-stream.h>

struct GwMigBuf {
    GByteArray *a;
};

GwMigBuf *
gw_mig_buf_new(void)
{
    GwMigBuf *b = g_new(GwMigBuf, 1);

    b->a = g_byte_array_new();
    return b;
}

void
gw_mig_buf_free(GwMigBuf *b)
{
    if (b) {
        g_byte_array_unref(b->a);
        g_free(b);
    }
}

GBytes *
gw_mig_buf_free_to_bytes(GwMigBuf *b)
{
    GBytes *bytes = g_byte_array_free_to_bytes(b->a);

    g_free(b);
    return bytes;
}

const uint8_t *
gw_mig_buf_data(const GwMigBuf *b)
{
    return b->a->data;
}

size_t
gw_mig_buf_len(const GwMigBuf *b)
{
    return b->a->len;
}

static void
put_le(GwMigBuf *b, uint64_t v, unsigned n)
{
    uint8_t p[8];

    for (unsigned i = 0; i < n; i++) {
        p[i] = v >> (8 * i);
    }
    g_byte_array_append(b->a, p, n);
}

void
gw_mig_buf_put_u8(GwMigBuf *b, uint8_t v)
{
    put_le(b, v, 1);
}

void
gw_mig_buf_put_u16(GwMigBuf *b, uint16_t v)
{
    put_le(b, v, 2);
}

void
gw_mig_buf_put_u32(GwMigBuf *b, uint32_t v)
{
    put_le(b, v, 4);
}

void
gw_mig_buf_put_u64(GwMigBuf *b, uint64_t v)
{
    put_le(b, v, 8);
}

void
gw_mig_buf_put_bytes(GwMigBuf *b, const void *data, size_t len)
{
    g_assert(len <= G_MAXUINT);
    g_byte_array_append(b->a, data, len);
}

void
gw_mig_buf_put_str(GwMigBuf *b, const char *s)
{
    size_t len = strlen(s);

    g_assert(len <= UINT32_MAX);
    gw_mig_buf_put_u32(b, len);
    gw_mig_buf_put_bytes(b, s, len);
}

/* --- cursor ------------------------------------------------------------ */

void
gw_mig_cursor_init(GwMigCursor *c, const void *data, size_t len)
{
    *c = (GwMigCursor){.data = data, .len = len};
}

void
gw_mig_cursor_init_bytes(GwMigCursor *c, GBytes *bytes)
{
    gsize len;
    const void *data = g_bytes_get_data(bytes, &len);

    gw_mig_cursor_init(c, data, len);
}

static void
cursor_fail(GwMigCursor *c, const char *why)
{
    if (!c->error) {
        c->error = why;
        c->error_pos = c->pos;
    }
}

/* The next `len` bytes, consumed, or NULL (cursor failed) on overrun. */
static const uint8_t *
take(GwMigCursor *c, size_t len)
{
    if (c->error) {
        return NULL;
    }
    if (len > c->len - c->pos) {
        cursor_fail(c, "data ends early");
        return NULL;
    }
    const uint8_t *p = c->data + c->pos;
    c->pos += len;
    return p;
}

static uint64_t
get_le(GwMigCursor *c, unsigned n)
{
    const uint8_t *p = take(c, n);
    uint64_t v = 0;

    for (unsigned i = 0; p && i < n; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

uint8_t
gw_mig_get_u8(GwMigCursor *c)
{
    return get_le(c, 1);
}

uint16_t
gw_mig_get_u16(GwMigCursor *c)
{
    return get_le(c, 2);
}

uint32_t
gw_mig_get_u32(GwMigCursor *c)
{
    return get_le(c, 4);
}

uint64_t
gw_mig_get_u64(GwMigCursor *c)
{
    return get_le(c, 8);
}

const void *
gw_mig_get_ptr(GwMigCursor *c, size_t len)
{
    return take(c, len);
}

bool
gw_mig_get_bytes(GwMigCursor *c, void *dst, size_t len)
{
    const uint8_t *p = take(c, len);

    if (p && len) {
        memcpy(dst, p, len);
    }
    return p != NULL;
}

char *
gw_mig_get_str(GwMigCursor *c)
{
    size_t start = c->pos;
    uint32_t len = gw_mig_get_u32(c);
    const uint8_t *p = take(c, len);

    if (!p) {
        return NULL;
    }
    if (memchr(p, 0, len)) {
        c->pos = start;
        cursor_fail(c, "a string contains a NUL byte");
        return NULL;
    }
    return g_strndup((const char *)p, len);
}

size_t
gw_mig_cursor_remaining(const GwMigCursor *c)
{
    return c->error ? 0 : c->len - c->pos;
}

bool
gw_mig_cursor_ok(const GwMigCursor *c, GError **errp)
{
    if (c->error) {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT,
                    "%s at byte %zu of %zu", c->error, c->error_pos, c->len);
        return false;
    }
    return true;
}

bool
gw_mig_cursor_finish(const GwMigCursor *c, GError **errp)
{
    if (!gw_mig_cursor_ok(c, errp)) {
        return false;
    }
    if (c->pos != c->len) {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT,
                    "%zu unexpected bytes after byte %zu", c->len - c->pos,
                    c->pos);
        return false;
    }
    return true;
}
