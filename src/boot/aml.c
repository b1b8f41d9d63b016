/*
 * AML encoding (ACPI 6.x, chapter 20).  A node is the bytes it encodes
 * to; a block keeps its opcode apart until it is closed, because its
 * package length, which precedes the body, is known only then.
 */
#include <stdarg.h>
#include <string.h>
#include <godwit/aml.h>

#define EXT_OP(op) (0x5b00u | (op))

enum {
    ZERO_OP = 0x00,
    ONE_OP = 0x01,
    NAME_OP = 0x08,
    BYTE_PREFIX = 0x0a,
    WORD_PREFIX = 0x0b,
    DWORD_PREFIX = 0x0c,
    STRING_PREFIX = 0x0d,
    QWORD_PREFIX = 0x0e,
    SCOPE_OP = 0x10,
    BUFFER_OP = 0x11,
    PACKAGE_OP = 0x12,
    METHOD_OP = 0x14,
    DUAL_NAME_PREFIX = 0x2e,
    MULTI_NAME_PREFIX = 0x2f,
    ARG0_OP = 0x68,
    STORE_OP = 0x70,
    SHIFT_LEFT_OP = 0x79,
    AND_OP = 0x7b,
    NOTIFY_OP = 0x86,
    IF_OP = 0xa0,
    RETURN_OP = 0xa4,
    ONES_OP = 0xff,
    MUTEX_OP = EXT_OP(0x01),
    ACQUIRE_OP = EXT_OP(0x23),
    RELEASE_OP = EXT_OP(0x27),
    OPREGION_OP = EXT_OP(0x80),
    FIELD_OP = EXT_OP(0x81),
    DEVICE_OP = EXT_OP(0x82),
};

typedef enum { PLAIN, BLOCK, PACKAGE } Kind;

struct GwAml {
    Kind kind;
    unsigned op; /* BLOCK and PACKAGE: the opcode before the length */
    GByteArray *buf;
};

static GwAml *
node(Kind kind, unsigned op)
{
    GwAml *a = g_new0(GwAml, 1);

    a->kind = kind;
    a->op = op;
    a->buf = g_byte_array_new();
    return a;
}

void
gw_aml_free(GwAml *a)
{
    if (a) {
        g_byte_array_unref(a->buf);
        g_free(a);
    }
}

static void
put(GByteArray *b, const void *p, size_t len)
{
    g_byte_array_append(b, p, (guint)len);
}

static void
put8(GByteArray *b, uint8_t v)
{
    put(b, &v, 1);
}

static void
put_le(GByteArray *b, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++) {
        put8(b, (uint8_t)(v >> (i * 8)));
    }
}

static void
put_op(GByteArray *b, unsigned op)
{
    if (op > 0xff) {
        put8(b, (uint8_t)(op >> 8));
    }
    put8(b, (uint8_t)op);
}

/*
 * PkgLength: 1 byte up to 63, else a lead byte (count of following
 * bytes in bits 6-7, low nibble) and up to 3 more bytes.  When it
 * prefixes a package it counts itself, hence `self`.
 */
static size_t
pkg_length_limit(unsigned n)
{
    return n == 1 ? 64 : (size_t)1 << (4 + 8 * (n - 1));
}

static void
put_pkg_length(GByteArray *b, size_t len, bool self)
{
    unsigned n = 1;

    while (n < 4 && len + (self ? n : 0) >= pkg_length_limit(n)) {
        n++;
    }
    len += self ? n : 0;
    g_assert(len < (1u << 28));
    if (n == 1) {
        put8(b, (uint8_t)len);
        return;
    }
    put8(b, (uint8_t)((n - 1) << 6 | (len & 0xf)));
    put_le(b, len >> 4, n - 1);
}

/* Moves `a`'s encoding to the end of `out` and frees `a`. */
static void
take(GByteArray *out, GwAml *a)
{
    if (a->kind != PLAIN) {
        put_op(out, a->op);
        put_pkg_length(out, a->buf->len, true);
    }
    put(out, a->buf->data, a->buf->len);
    gw_aml_free(a);
}

GByteArray *
gw_aml_encode(GwAml *a)
{
    GByteArray *out = g_byte_array_new();

    take(out, a);
    return out;
}

void
gw_aml_append(GwAml *parent, GwAml *child)
{
    g_assert(parent->kind != PLAIN);
    if (parent->kind == PACKAGE) {
        g_assert(parent->buf->data[0] < 255);
        parent->buf->data[0]++;
    }
    take(parent->buf, child);
}

static void
put_name_seg(GByteArray *b, const char *seg, size_t len)
{
    char s[4] = {'_', '_', '_', '_'};

    g_assert(len >= 1 && len <= 4);
    memcpy(s, seg, len);
    put(b, s, 4);
}

/* NameString: optional root prefix, then one, two or more segments. */
static void
put_name_string(GByteArray *b, const char *path)
{
    g_auto(GStrv) segs = NULL;
    guint n;

    if (*path == '\\') {
        put8(b, '\\');
        path++;
    }
    segs = g_strsplit(path, ".", -1);
    n = g_strv_length(segs);
    g_assert(n >= 1 && n <= 255);
    if (n == 2) {
        put8(b, DUAL_NAME_PREFIX);
    } else if (n > 2) {
        put8(b, MULTI_NAME_PREFIX);
        put8(b, (uint8_t)n);
    }
    for (guint i = 0; i < n; i++) {
        put_name_seg(b, segs[i], strlen(segs[i]));
    }
}

/* ---- data ---- */

GwAml *
gw_aml_int(uint64_t v)
{
    GwAml *a = node(PLAIN, 0);

    if (v == 0 || v == 1 || v == UINT64_MAX) {
        put8(a->buf, v == 0 ? ZERO_OP : v == 1 ? ONE_OP : ONES_OP);
    } else if (v <= 0xff) {
        put8(a->buf, BYTE_PREFIX);
        put_le(a->buf, v, 1);
    } else if (v <= 0xffff) {
        put8(a->buf, WORD_PREFIX);
        put_le(a->buf, v, 2);
    } else if (v <= 0xffffffffu) {
        put8(a->buf, DWORD_PREFIX);
        put_le(a->buf, v, 4);
    } else {
        put8(a->buf, QWORD_PREFIX);
        put_le(a->buf, v, 8);
    }
    return a;
}

GwAml *
gw_aml_string(const char *s)
{
    GwAml *a = node(PLAIN, 0);

    put8(a->buf, STRING_PREFIX);
    put(a->buf, s, strlen(s) + 1);
    return a;
}

/* Three letters in 5 bits each, then four hex digits; big-endian. */
GwAml *
gw_aml_eisaid(const char *id)
{
    GwAml *a = node(PLAIN, 0);
    uint32_t v;

    g_assert(strlen(id) == 7);
    v = (uint32_t)(id[0] - '@') << 26 | (uint32_t)(id[1] - '@') << 21 |
        (uint32_t)(id[2] - '@') << 16 |
        (uint32_t)g_ascii_strtoull(id + 3, NULL, 16);
    put8(a->buf, DWORD_PREFIX);
    put_le(a->buf, GUINT32_SWAP_LE_BE(v), 4);
    return a;
}

GwAml *
gw_aml_path(const char *path)
{
    GwAml *a = node(PLAIN, 0);

    put_name_string(a->buf, path);
    return a;
}

GwAml *
gw_aml_arg(unsigned n)
{
    GwAml *a = node(PLAIN, 0);

    g_assert(n <= 6);
    put8(a->buf, (uint8_t)(ARG0_OP + n));
    return a;
}

GwAml *
gw_aml_package(void)
{
    GwAml *a = node(PACKAGE, PACKAGE_OP);

    put8(a->buf, 0); /* NumElements, counted by gw_aml_append */
    return a;
}

GwAml *
gw_aml_resource_template(GByteArray *res)
{
    GwAml *a = node(BLOCK, BUFFER_OP);
    GwAml *size = gw_aml_int(res->len + 2);

    take(a->buf, size);
    put(a->buf, res->data, res->len);
    put8(a->buf, 0x79); /* end tag; checksum 0: "treat as valid" */
    put8(a->buf, 0);
    return a;
}

/* ---- resource descriptors (ACPI 6.x, 6.4) ---- */

/* Word or DWord address space descriptor, producer, fixed min and max. */
static void
put_addr_space(GByteArray *r, uint8_t tag, unsigned width, uint8_t type,
               uint8_t type_flags, uint64_t min, uint64_t max)
{
    put8(r, tag);
    put_le(r, 3 + 5 * width, 2);
    put8(r, type);
    put8(r, 0x0c); /* MinFixed, MaxFixed, PosDecode, ResourceProducer */
    put8(r, type_flags);
    put_le(r, 0, width); /* granularity */
    put_le(r, min, width);
    put_le(r, max, width);
    put_le(r, 0, width); /* translation */
    put_le(r, max - min + 1, width);
}

void
gw_aml_res_bus(GByteArray *r, uint16_t min, uint16_t max)
{
    put_addr_space(r, 0x88, 2, 2, 0, min, max);
}

void
gw_aml_res_io(GByteArray *r, uint16_t port, uint8_t len)
{
    put8(r, 0x47);
    put8(r, 1); /* Decode16 */
    put_le(r, port, 2);
    put_le(r, port, 2);
    put8(r, 1); /* alignment */
    put8(r, len);
}

void
gw_aml_res_io_window(GByteArray *r, uint16_t min, uint16_t max)
{
    put_addr_space(r, 0x88, 2, 1, 3 /* EntireRange */, min, max);
}

void
gw_aml_res_mem32_window(GByteArray *r, uint32_t min, uint32_t max)
{
    put_addr_space(r, 0x87, 4, 0, 1 /* ReadWrite, NonCacheable */, min, max);
}

void
gw_aml_res_mem32_fixed(GByteArray *r, uint32_t base, uint32_t len)
{
    put8(r, 0x86);
    put_le(r, 9, 2);
    put8(r, 1); /* ReadWrite */
    put_le(r, base, 4);
    put_le(r, len, 4);
}

/* ---- named objects ---- */

GwAml *
gw_aml_name(const char *name, GwAml *value)
{
    GwAml *a = node(PLAIN, 0);

    put8(a->buf, NAME_OP);
    put_name_string(a->buf, name);
    take(a->buf, value);
    return a;
}

GwAml *
gw_aml_mutex(const char *name, uint8_t sync_level)
{
    GwAml *a = node(PLAIN, 0);

    put_op(a->buf, MUTEX_OP);
    put_name_string(a->buf, name);
    put8(a->buf, sync_level & 0xf);
    return a;
}

GwAml *
gw_aml_opregion_io(const char *name, uint16_t port, uint8_t len)
{
    GwAml *a = node(PLAIN, 0);

    put_op(a->buf, OPREGION_OP);
    put_name_string(a->buf, name);
    put8(a->buf, 1); /* SystemIO */
    take(a->buf, gw_aml_int(port));
    take(a->buf, gw_aml_int(len));
    return a;
}

GwAml *
gw_aml_field(const char *region, GwAmlAccess acc, GwAmlUpdate upd)
{
    GwAml *a = node(BLOCK, FIELD_OP);

    put_name_string(a->buf, region);
    put8(a->buf, (uint8_t)(acc | upd << 5)); /* NoLock: bit 4 clear */
    return a;
}

GwAml *
gw_aml_field_unit(const char *name, unsigned bits)
{
    GwAml *a = node(PLAIN, 0);

    put_name_seg(a->buf, name, strlen(name));
    put_pkg_length(a->buf, bits, false);
    return a;
}

/* ---- blocks ---- */

static GwAml *
named_block(unsigned op, const char *name)
{
    GwAml *a = node(BLOCK, op);

    put_name_string(a->buf, name);
    return a;
}

GwAml *
gw_aml_scope(const char *path)
{
    return named_block(SCOPE_OP, path);
}

GwAml *
gw_aml_device(const char *name)
{
    return named_block(DEVICE_OP, name);
}

GwAml *
gw_aml_method(const char *name, unsigned nargs, bool serialized)
{
    GwAml *a = named_block(METHOD_OP, name);

    g_assert(nargs <= 7);
    put8(a->buf, (uint8_t)(nargs | (serialized ? 1u << 3 : 0)));
    return a;
}

GwAml *
gw_aml_if(GwAml *predicate)
{
    GwAml *a = node(BLOCK, IF_OP);

    take(a->buf, predicate);
    return a;
}

/* ---- statements and expressions ---- */

/* An opcode followed by its operands, each consumed. */
static GwAml *
op_of(unsigned op, GwAml *x, GwAml *y, GwAml *z)
{
    GwAml *a = node(PLAIN, 0);

    put_op(a->buf, op);
    take(a->buf, x);
    if (y) {
        take(a->buf, y);
    }
    if (z) {
        take(a->buf, z);
    }
    return a;
}

/* A NullName target: the result is only the operator's value. */
static GwAml *
no_target(void)
{
    return gw_aml_int(0);
}

GwAml *
gw_aml_store(GwAml *src, GwAml *dst)
{
    return op_of(STORE_OP, src, dst, NULL);
}

GwAml *
gw_aml_and(GwAml *a, GwAml *b)
{
    return op_of(AND_OP, a, b, no_target());
}

GwAml *
gw_aml_shift_left(GwAml *a, GwAml *n)
{
    return op_of(SHIFT_LEFT_OP, a, n, no_target());
}

GwAml *
gw_aml_notify(GwAml *object, GwAml *value)
{
    return op_of(NOTIFY_OP, object, value, NULL);
}

GwAml *
gw_aml_acquire(const char *mutex, uint16_t timeout)
{
    GwAml *a = op_of(ACQUIRE_OP, gw_aml_path(mutex), NULL, NULL);

    put_le(a->buf, timeout, 2); /* a raw WordData, not an integer */
    return a;
}

GwAml *
gw_aml_release(const char *mutex)
{
    return op_of(RELEASE_OP, gw_aml_path(mutex), NULL, NULL);
}

GwAml *
gw_aml_return(GwAml *value)
{
    return op_of(RETURN_OP, value, NULL, NULL);
}

GwAml *
gw_aml_call(const char *path, unsigned nargs, ...)
{
    GwAml *a = gw_aml_path(path);
    va_list ap;

    va_start(ap, nargs);
    for (unsigned i = 0; i < nargs; i++) {
        take(a->buf, va_arg(ap, GwAml *));
    }
    va_end(ap);
    return a;
}
