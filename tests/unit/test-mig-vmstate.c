/*
 * Device state tables: nested round trips, older streams, and every kind
 * of section a destination must refuse without touching the device.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <godwit/util.h>
#include <godwit/vmstate.h>

typedef struct {
    uint16_t num;
    uint64_t desc;
    uint8_t ready;
    int post_loads; /* not state: counts the hook */
} Queue;

typedef struct {
    uint32_t status;
    uint8_t regs[16];
    Queue q[3];
    uint64_t features; /* added in version 2 */
    void *derived;     /* rebuilt by post_load, never migrated */
    int post_loads, pre_saves;
    GString *order; /* which hooks ran, in order */
    bool fail_post_load;
} Dev;

static bool
queue_post_load(void *obj, unsigned version, GError **errp)
{
    Queue *q = obj;

    q->post_loads++;
    return true;
}

static const GwVmsdField queue_fields[] = {
    GW_VMSD_FIELD(Queue, num, 1),
    GW_VMSD_FIELD(Queue, desc, 1),
    GW_VMSD_FIELD(Queue, ready, 1),
    GW_VMSD_END,
};

static const GwVmsd queue_vmsd = {
    .name = "queue",
    .version = 1,
    .fields = queue_fields,
    .post_load = queue_post_load,
    .size = sizeof(Queue),
};

static bool
dev_pre_save(void *obj, GError **errp)
{
    Dev *d = obj;

    d->pre_saves++;
    return true;
}

static bool
dev_post_load(void *obj, unsigned version, GError **errp)
{
    Dev *d = obj;

    /* the nested hooks ran first, on the real object */
    g_string_append_printf(d->order, "q%d%d%d,dev-v%u", d->q[0].post_loads,
                           d->q[1].post_loads, d->q[2].post_loads, version);
    d->post_loads++;
    if (d->fail_post_load) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "dev: status 0x%x cannot be restored", d->status);
        return false;
    }
    d->derived = d;
    return true;
}

#define DEV_FIELDS_V1                                                          \
    GW_VMSD_FIELD(Dev, status, 1), GW_VMSD_ARRAY(Dev, regs, 1),                \
        GW_VMSD_STRUCT_ARRAY(Dev, q, 1, &queue_vmsd)

static const GwVmsdField dev_fields[] = {
    DEV_FIELDS_V1,
    GW_VMSD_FIELD(Dev, features, 2),
    GW_VMSD_END,
};

static const GwVmsd dev_vmsd = {
    .name = "dev",
    .version = 2,
    .fields = dev_fields,
    .pre_save = dev_pre_save,
    .post_load = dev_post_load,
    .size = sizeof(Dev),
};

/* --- helpers ----------------------------------------------------------- */

static void
dev_fill(Dev *d, unsigned seed)
{
    memset(d, 0, sizeof(*d));
    d->status = 0x0f000000 + seed;
    for (unsigned i = 0; i < 16; i++) {
        d->regs[i] = seed + i;
    }
    for (unsigned i = 0; i < 3; i++) {
        d->q[i] = (Queue){256 >> i, 0x10000ull * (i + 1) + seed, i & 1};
    }
    d->features = 0x100000000ull | seed;
    d->order = g_string_new("");
}

static void
dev_clear(Dev *d)
{
    g_string_free(d->order, true);
}

static GwMigBuf *
save(const GwVmsd *vmsd, Dev *d)
{
    GwMigBuf *b = gw_mig_buf_new();
    g_autoptr(GError) err = NULL;

    g_assert_true(gw_vmsd_save(vmsd, d, b, &err));
    g_assert_no_error(err);
    return b;
}

static bool
load(const GwVmsd *vmsd, Dev *d, const void *data, size_t len, GError **errp)
{
    GwMigCursor c;

    gw_mig_cursor_init(&c, data, len);
    return gw_vmsd_load(vmsd, d, &c, errp) && gw_mig_cursor_finish(&c, errp);
}

/* The migrated state of two devices is the same. */
static void
assert_same_state(const Dev *a, const Dev *b)
{
    g_assert_cmphex(a->status, ==, b->status);
    g_assert_cmpmem(a->regs, 16, b->regs, 16);
    for (unsigned i = 0; i < 3; i++) {
        g_assert_cmpuint(a->q[i].num, ==, b->q[i].num);
        g_assert_cmphex(a->q[i].desc, ==, b->q[i].desc);
        g_assert_cmpuint(a->q[i].ready, ==, b->q[i].ready);
    }
    g_assert_cmphex(a->features, ==, b->features);
}

/* --- tests ------------------------------------------------------------- */

static void
test_validate(void)
{
    static const GwVmsdField dup[] = {
        GW_VMSD_FIELD(Dev, status, 1),
        {.name = "status", .offset = 0, .size = 4, .count = 1, .version = 1},
        GW_VMSD_END,
    };
    static const GwVmsdField outside[] = {
        {.name = "x",
         .offset = sizeof(Dev) - 4,
         .size = 8,
         .count = 1,
         .version = 1},
        GW_VMSD_END,
    };
    static const GwVmsdField future[] = {GW_VMSD_FIELD(Dev, status, 3),
                                         GW_VMSD_END};
    static const GwVmsdField wrong_sub[] = {
        {.name = "q",
         .offset = 0,
         .size = 4,
         .count = 1,
         .version = 1,
         .sub = &queue_vmsd},
        GW_VMSD_END,
    };
    const GwVmsdField *bad[] = {dup, outside, future, wrong_sub};

    g_assert_true(gw_vmsd_validate(&dev_vmsd, NULL));
    g_assert_cmpuint(dev_fields[1].count, ==, 16);
    g_assert_cmpuint(dev_fields[2].size, ==, sizeof(Queue));
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        GwVmsd d = {"bad", 2, bad[i], .size = sizeof(Dev)};
        g_autoptr(GError) err = NULL;
        g_assert_false(gw_vmsd_validate(&d, &err));
        g_assert_error(err, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT);
        g_assert_true(g_str_has_prefix(err->message, "device bad: field "));
    }
}

static void
test_round_trip_nested(void)
{
    Dev src, dst;

    dev_fill(&src, 7);
    dev_fill(&dst, 0);
    memset(dst.q, 0, sizeof(dst.q));
    g_autoptr(GwMigBuf) b = save(&dev_vmsd, &src);
    g_assert_cmpint(src.pre_saves, ==, 1);
    g_assert_true(
        load(&dev_vmsd, &dst, gw_mig_buf_data(b), gw_mig_buf_len(b), NULL));
    assert_same_state(&src, &dst);
    g_assert_cmpstr(dst.order->str, ==, "q111,dev-v2");
    g_assert_true(dst.derived == &dst); /* post_load ran on the real object */
    g_assert_cmpint(dst.post_loads, ==, 1);
    dev_clear(&src);
    dev_clear(&dst);
}

/* godwit of yesterday: version 1, no `features`. */
static const GwVmsdField dev_fields_v1[] = {DEV_FIELDS_V1, GW_VMSD_END};
static const GwVmsd dev_vmsd_v1 = {"dev", 1, dev_fields_v1,
                                   .size = sizeof(Dev)};

static void
test_older_stream_loads(void)
{
    Dev src, dst;

    dev_fill(&src, 9);
    dev_fill(&dst, 1);
    g_autoptr(GwMigBuf) b = save(&dev_vmsd_v1, &src);
    g_assert_true(
        load(&dev_vmsd, &dst, gw_mig_buf_data(b), gw_mig_buf_len(b), NULL));
    g_assert_cmphex(dst.status, ==, src.status);
    g_assert_cmphex(dst.q[2].desc, ==, src.q[2].desc);
    g_assert_cmphex(dst.features, ==, 0x100000001ull); /* left as it was */
    g_assert_cmpstr(dst.order->str, ==, "q111,dev-v1");
    dev_clear(&src);
    dev_clear(&dst);
}

/* Sections written from descriptions a destination must refuse. */
static const GwVmsdField f_unknown[] = {
    DEV_FIELDS_V1,
    {.name = "bogus",
     .offset = offsetof(Dev, features),
     .size = 8,
     .count = 1,
     .version = 2},
    GW_VMSD_END,
};
static const GwVmsdField f_size[] = {
    {.name = "status", .offset = 0, .size = 2, .count = 1, .version = 1},
    GW_VMSD_ARRAY(Dev, regs, 1),
    GW_VMSD_STRUCT_ARRAY(Dev, q, 1, &queue_vmsd),
    GW_VMSD_END,
};
static const GwVmsdField f_count[] = {
    GW_VMSD_FIELD(Dev, status, 1),
    {.name = "regs",
     .offset = offsetof(Dev, regs),
     .size = 1,
     .count = 8,
     .version = 1},
    GW_VMSD_STRUCT_ARRAY(Dev, q, 1, &queue_vmsd),
    GW_VMSD_END,
};
static const GwVmsdField f_missing[] = {
    GW_VMSD_FIELD(Dev, status, 1),
    GW_VMSD_STRUCT_ARRAY(Dev, q, 1, &queue_vmsd),
    GW_VMSD_FIELD(Dev, features, 2),
    GW_VMSD_END,
};
static const GwVmsdField f_order[] = {
    GW_VMSD_ARRAY(Dev, regs, 1),
    GW_VMSD_FIELD(Dev, status, 1),
    GW_VMSD_STRUCT_ARRAY(Dev, q, 1, &queue_vmsd),
    GW_VMSD_FIELD(Dev, features, 2),
    GW_VMSD_END,
};
static const GwVmsdField f_last_missing[] = {
    GW_VMSD_FIELD(Dev, status, 1),
    GW_VMSD_ARRAY(Dev, regs, 1),
    GW_VMSD_END,
};
/* a nested queue of a newer version: refused inside the nesting */
static const GwVmsd queue_v2 = {"queue", 2, queue_fields,
                                .size = sizeof(Queue)};
static const GwVmsdField f_nested[] = {
    GW_VMSD_FIELD(Dev, status, 1),
    GW_VMSD_ARRAY(Dev, regs, 1),
    GW_VMSD_STRUCT_ARRAY(Dev, q, 1, &queue_v2),
    GW_VMSD_END,
};

typedef struct {
    const char *name;
    GwVmsd writer; /* what the source described */
    int code;
    const char *message; /* a part of the error */
} Refusal;

#define WRITER(n, v, f)                                                        \
    {                                                                          \
        n, v, f, .size = sizeof(Dev)                                           \
    }

static const Refusal refusals[] = {
    {"unknown-field", WRITER("dev", 2, f_unknown), GW_MIG_ERROR_FORMAT,
     "device dev: unknown field bogus in the stream"},
    {"size-mismatch", WRITER("dev", 1, f_size), GW_MIG_ERROR_FORMAT,
     "device dev: field status: 1×2 bytes in the stream, 1×4 here"},
    {"count-mismatch", WRITER("dev", 1, f_count), GW_MIG_ERROR_FORMAT,
     "device dev: field regs: 8×1"},
    {"newer-version", WRITER("dev", 3, dev_fields), GW_MIG_ERROR_VERSION,
     "device dev: state version 3 is newer than 2"},
    {"old-field-missing", WRITER("dev", 2, f_missing), GW_MIG_ERROR_FORMAT,
     "device dev: field regs (version 1) expected before q in a version 2 "
     "stream"},
    {"last-field-missing", WRITER("dev", 1, f_last_missing),
     GW_MIG_ERROR_FORMAT,
     "device dev: field q (version 1) missing from a version 1 stream"},
    {"out-of-order", WRITER("dev", 2, f_order), GW_MIG_ERROR_FORMAT,
     "device dev: field status (version 1) expected before regs in a "
     "version 2 stream"},
    {"other-device", WRITER("serial", 1, dev_fields_v1), GW_MIG_ERROR_FORMAT,
     "device dev: the stream holds state for serial"},
    {"nested-newer-version", WRITER("dev", 1, f_nested), GW_MIG_ERROR_VERSION,
     "device queue: state version 2 is newer than 1"},
};

static void
assert_refused_untouched(const void *data, size_t len, int code,
                         const char *message)
{
    Dev dst, before;
    g_autoptr(GError) err = NULL;

    dev_fill(&dst, 3);
    memcpy(&before, &dst, sizeof(dst));
    g_assert_false(load(&dev_vmsd, &dst, data, len, &err));
    g_assert_error(err, GW_MIG_ERROR, code);
    if (message && !strstr(err->message, message)) {
        g_error("\"%s\" does not say \"%s\"", err->message, message);
    }
    g_assert_cmpmem(&dst, sizeof(dst), &before, sizeof(before));
    dev_clear(&dst);
}

static void
test_refused(gconstpointer data)
{
    const Refusal *r = data;
    Dev src;

    dev_fill(&src, 5);
    g_autoptr(GwMigBuf) b = save(&r->writer, &src);
    assert_refused_untouched(gw_mig_buf_data(b), gw_mig_buf_len(b), r->code,
                             r->message);
    dev_clear(&src);
}

static void
test_truncated_at_every_offset(void)
{
    Dev src;

    dev_fill(&src, 5);
    g_autoptr(GwMigBuf) b = save(&dev_vmsd, &src);
    for (size_t cut = 0; cut < gw_mig_buf_len(b); cut++) {
        assert_refused_untouched(gw_mig_buf_data(b), cut, GW_MIG_ERROR_FORMAT,
                                 "data ends early");
    }
    dev_clear(&src);
}

/* A corrupt byte may load as other data (the record checksum is what
 * catches it); it must never crash, and a refusal touches nothing. */
static void
test_corrupt_byte_never_half_loads(void)
{
    Dev src;

    dev_fill(&src, 5);
    g_autoptr(GwMigBuf) b = save(&dev_vmsd, &src);
    size_t len = gw_mig_buf_len(b);
    g_autofree uint8_t *buf = g_memdup2(gw_mig_buf_data(b), len);
    unsigned refused = 0;

    for (size_t off = 0; off < len; off++) {
        Dev dst, before;
        dev_fill(&dst, 3);
        memcpy(&before, &dst, sizeof(dst));
        buf[off] ^= 0x41;
        if (!load(&dev_vmsd, &dst, buf, len, NULL)) {
            g_assert_cmpmem(&dst, sizeof(dst), &before, sizeof(before));
            refused++;
        }
        buf[off] ^= 0x41;
        dev_clear(&dst);
    }
    g_assert_cmpuint(refused, >, 0);
    dev_clear(&src);
}

/* A bool field's byte must be 0 or 1: any other byte is no value of C's
 * bool, and a device reading it would be undefined behaviour. */
typedef struct {
    bool on;
    bool flags[3];
} Flags;

typedef struct {
    uint8_t on;
    uint8_t flags[3];
} FlagBytes;

static const GwVmsdField flags_fields[] = {
    GW_VMSD_FIELD(Flags, on, 1),
    GW_VMSD_ARRAY(Flags, flags, 1),
    GW_VMSD_END,
};

static const GwVmsdField flag_bytes_fields[] = {
    GW_VMSD_FIELD(FlagBytes, on, 1),
    GW_VMSD_ARRAY(FlagBytes, flags, 1),
    GW_VMSD_END,
};

static void
test_bool_not_0_or_1(void)
{
    const GwVmsd flags_vmsd = {"flags", 1, flags_fields, .size = sizeof(Flags)};
    const GwVmsd bytes_vmsd = {"flags", 1, flag_bytes_fields,
                               .size = sizeof(FlagBytes)};
    const FlagBytes cases[] = {
        {1, {0, 1, 0}}, {2, {0, 0, 0}}, {0, {0, 0, 0x80}}, {0xff, {1, 1, 1}}};

    g_assert_true(flags_fields[0].is_bool && flags_fields[1].is_bool);
    g_assert_false(flag_bytes_fields[0].is_bool);
    g_assert_true(gw_vmsd_validate(&flags_vmsd, NULL));
    for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
        FlagBytes src = cases[i];
        Flags dst = {true, {true, false, true}}, before = dst;
        g_autoptr(GError) err = NULL;
        g_autoptr(GwMigBuf) b = gw_mig_buf_new();
        GwMigCursor c;

        g_assert_true(gw_vmsd_save(&bytes_vmsd, &src, b, NULL));
        gw_mig_cursor_init(&c, gw_mig_buf_data(b), gw_mig_buf_len(b));
        if (i == 0) {
            g_assert_true(gw_vmsd_load(&flags_vmsd, &dst, &c, &err));
            g_assert_no_error(err);
            g_assert_true(dst.on && !dst.flags[0] && dst.flags[1]);
            continue;
        }
        g_assert_false(gw_vmsd_load(&flags_vmsd, &dst, &c, &err));
        g_assert_error(err, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT);
        g_assert_nonnull(strstr(err->message, "is not a bool"));
        g_assert_cmpmem(&dst, sizeof(dst), &before, sizeof(before));
    }
}

static void
test_post_load_failure(void)
{
    Dev src, dst;
    g_autoptr(GError) err = NULL;

    dev_fill(&src, 4);
    dev_fill(&dst, 0);
    dst.fail_post_load = true;
    g_autoptr(GwMigBuf) b = save(&dev_vmsd, &src);
    g_assert_false(
        load(&dev_vmsd, &dst, gw_mig_buf_data(b), gw_mig_buf_len(b), &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_INVALID);
    /* documented: the fields are loaded, the hook's error is returned */
    assert_same_state(&src, &dst);
    g_assert_cmpint(dst.post_loads, ==, 1);
    g_assert_null(dst.derived);
    dev_clear(&src);
    dev_clear(&dst);
}

static bool
failing_pre_save(void *obj, GError **errp)
{
    g_set_error(errp, GW_ERROR, GW_ERROR_BUSY, "dev: busy");
    return false;
}

static void
test_pre_save_failure(void)
{
    GwVmsd d = dev_vmsd;
    Dev src;
    g_autoptr(GwMigBuf) b = gw_mig_buf_new();
    g_autoptr(GError) err = NULL;

    d.pre_save = failing_pre_save;
    dev_fill(&src, 4);
    g_assert_false(gw_vmsd_save(&d, &src, b, &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_BUSY);
    dev_clear(&src);
}

/* A DEVICE record through a real writer and reader. */
static GBytes *
device_record(Dev *src, const char *id)
{
    gw_autofd fd = memfd_create("mig-test", MFD_CLOEXEC);
    g_autoptr(GwMigWriter) w = gw_mig_writer_new(fd);
    g_autoptr(GwMigReader) r = gw_mig_reader_new(fd);
    GBytes *payload = NULL;
    uint32_t type;

    g_assert_true(gw_mig_device_section_write(w, id, &dev_vmsd, src, NULL));
    g_assert_cmpint(lseek(fd, 0, SEEK_SET), ==, 0);
    g_assert_true(gw_mig_read(r, &type, &payload, NULL));
    g_assert_cmpuint(type, ==, GW_MIG_REC_DEVICE);
    return payload;
}

static void
test_device_section(void)
{
    Dev src, dst;
    GwMigCursor c;

    dev_fill(&src, 6);
    dev_fill(&dst, 0);
    g_autoptr(GBytes) payload = device_record(&src, "vdpa-net0");
    gw_mig_cursor_init_bytes(&c, payload);
    g_autofree char *id = gw_mig_device_section_parse_id(&c, NULL);
    g_assert_cmpstr(id, ==, "vdpa-net0");
    g_assert_true(gw_mig_device_section_load(&c, &dev_vmsd, &dst, NULL));
    assert_same_state(&src, &dst);
    dev_clear(&src);
    dev_clear(&dst);
}

static void
test_device_section_trailing_bytes(void)
{
    Dev src, dst, before;
    g_autoptr(GwMigBuf) b = gw_mig_buf_new();
    g_autoptr(GError) err = NULL;
    GwMigCursor c;

    dev_fill(&src, 6);
    dev_fill(&dst, 0);
    memcpy(&before, &dst, sizeof(dst));
    gw_mig_buf_put_str(b, "vdpa-net0");
    g_assert_true(gw_vmsd_save(&dev_vmsd, &src, b, NULL));
    gw_mig_buf_put_u8(b, 0);
    gw_mig_cursor_init(&c, gw_mig_buf_data(b), gw_mig_buf_len(b));
    g_autofree char *id = gw_mig_device_section_parse_id(&c, NULL);
    g_assert_false(gw_mig_device_section_load(&c, &dev_vmsd, &dst, &err));
    g_assert_error(err, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT);
    g_assert_cmpmem(&dst, sizeof(dst), &before, sizeof(before));
    dev_clear(&src);
    dev_clear(&dst);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/mig/vmstate/validate-catches-bad-tables", test_validate);
    g_test_add_func("/mig/vmstate/round-trip/nested-struct-arrays",
                    test_round_trip_nested);
    g_test_add_func("/mig/vmstate/older-stream-without-newer-field-loads",
                    test_older_stream_loads);
    for (size_t i = 0; i < G_N_ELEMENTS(refusals); i++) {
        g_autofree char *path = g_strdup_printf(
            "/mig/vmstate/refused-untouched/%s", refusals[i].name);
        g_test_add_data_func(path, &refusals[i], test_refused);
    }
    g_test_add_func("/mig/vmstate/refused-untouched/truncated-at-every-offset",
                    test_truncated_at_every_offset);
    g_test_add_func("/mig/vmstate/corrupt-byte-never-half-loads",
                    test_corrupt_byte_never_half_loads);
    g_test_add_func("/mig/vmstate/refused-untouched/bool-not-0-or-1",
                    test_bool_not_0_or_1);
    g_test_add_func("/mig/vmstate/post-load-failure-keeps-loaded-fields",
                    test_post_load_failure);
    g_test_add_func("/mig/vmstate/pre-save-failure-is-returned",
                    test_pre_save_failure);
    g_test_add_func("/mig/vmstate/device-section/round-trip",
                    test_device_section);
    g_test_add_func("/mig/vmstate/device-section/trailing-bytes-refused",
                    test_device_section_trailing_bytes);
    return g_test_run();
}
