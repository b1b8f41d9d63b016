/*
 * The migration stream's framing, encoding helpers and RAM batches:
 * every record type round-trips, and no corruption or truncation of a
 * stream is ever accepted.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xxhash.h>
#include <godwit/mig-stream.h>
#include <godwit/util.h>

/* --- helpers ----------------------------------------------------------- */

/* A memfd holding `len` bytes, positioned at 0. */
static int
memfd_with(const void *data, size_t len)
{
    int fd = memfd_create("mig-test", MFD_CLOEXEC);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(write(fd, data, len), ==, (ssize_t)len);
    g_assert_cmpint(lseek(fd, 0, SEEK_SET), ==, 0);
    return fd;
}

/* Everything in fd from offset 0. */
static GBytes *
slurp(int fd)
{
    off_t len = lseek(fd, 0, SEEK_END);
    uint8_t *buf = g_malloc(len);

    g_assert_cmpint(pread(fd, buf, len, 0), ==, len);
    return g_bytes_new_take(buf, len);
}

typedef struct {
    uint32_t type;
    const char *payload;
} Rec;

/* A small stream of every kind of record the source sends. */
static const Rec small_stream[] = {
    {GW_MIG_REC_MANIFEST, "{\"machine\":\"q35\",\"ram\":1048576}"},
    {GW_MIG_REC_DEVICE, "device-bytes"},
    {GW_MIG_REC_ROUND_END, ""},
    {GW_MIG_REC_END, ""},
};

/* Writes small_stream; offsets[i] is where record i starts (and
 * offsets[n] the end).  Returns the bytes. */
static GBytes *
write_small_stream(uint64_t *offsets)
{
    gw_autofd fd = memfd_create("mig-test", MFD_CLOEXEC);
    g_autoptr(GwMigWriter) w = gw_mig_writer_new(fd);

    g_assert_true(gw_mig_writer_header(w, NULL));
    for (size_t i = 0; i < G_N_ELEMENTS(small_stream); i++) {
        const char *p = small_stream[i].payload;
        offsets[i] = gw_mig_writer_bytes(w);
        g_assert_true(
            gw_mig_write(w, small_stream[i].type, p, strlen(p), NULL));
    }
    offsets[G_N_ELEMENTS(small_stream)] = gw_mig_writer_bytes(w);
    return slurp(fd);
}

/* Reads a whole stream (header, records to END, then EOF). */
static bool
read_stream(const void *data, size_t len, GError **errp)
{
    gw_autofd fd = memfd_with(data, len);
    g_autoptr(GwMigReader) r = gw_mig_reader_new(fd);
    uint32_t type = 0;

    if (!gw_mig_reader_header(r, errp)) {
        return false;
    }
    while (type != GW_MIG_REC_END) {
        g_autoptr(GBytes) payload = NULL;
        if (!gw_mig_read(r, &type, &payload, errp)) {
            return false;
        }
    }
    return true;
}

/* --- records ----------------------------------------------------------- */

typedef struct {
    int fd;
    GBytes *big; /* sent as many small iovecs */
    pthread_t self;
    gint started, done;
    gint pester; /* a pester_thread signals this thread until done */
} Source;

static const uint32_t every_type[] = {
    GW_MIG_REC_MANIFEST,  GW_MIG_REC_RAM,   GW_MIG_REC_DEVICE,
    GW_MIG_REC_ROUND_END, GW_MIG_REC_RP_OK, GW_MIG_REC_RP_ERROR,
    GW_MIG_REC_RP_READY,  0x7777, /* unknown */
};

static char *
payload_for(uint32_t type)
{
    return g_strdup_printf("payload of %s (%u)", gw_mig_record_type_name(type),
                           type);
}

/* 3000 iovecs of 1..997 bytes: more than IOV_MAX, short writes on a
 * socket. */
static bool
send_big(GwMigWriter *w, GBytes *big)
{
    gsize len;
    const uint8_t *p = g_bytes_get_data(big, &len);
    g_autofree struct iovec *iov = g_new(struct iovec, 3000);
    size_t off = 0;
    int n = 0;

    for (; n < 3000 && off < len; n++) {
        size_t step = MIN(len - off, 1 + (size_t)(n * 7919) % 997);
        iov[n] = (struct iovec){(void *)(p + off), step};
        off += step;
    }
    g_assert_cmpuint(off, ==, len);
    return gw_mig_writev(w, GW_MIG_REC_RAM, iov, n, NULL);
}

/* SIGUSR1s the pestered writer took (test_round_trip_short_writes). */
static volatile sig_atomic_t interrupts;

static gpointer
source_thread(gpointer opaque)
{
    Source *s = opaque;
    g_autoptr(GwMigWriter) w = gw_mig_writer_new(s->fd);

    s->self = pthread_self();
    g_atomic_int_set(&s->started, 1);
    /* Pestered: not before the first signal came (a loaded machine may
     * not run the pest before a fast transfer is over). */
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (s->pester && !interrupts && g_get_monotonic_time() < deadline) {
        g_usleep(100);
    }
    bool ok = gw_mig_writer_header(w, NULL);

    for (size_t i = 0; ok && i < G_N_ELEMENTS(every_type); i++) {
        g_autofree char *p = payload_for(every_type[i]);
        ok = gw_mig_write(w, every_type[i], p, strlen(p), NULL);
    }
    ok = ok && send_big(w, s->big) &&
         gw_mig_write(w, GW_MIG_REC_END, NULL, 0, NULL);
    shutdown(s->fd, SHUT_WR);
    g_atomic_int_set(&s->done, 1);
    while (g_atomic_int_get(&s->pester)) { /* no signal to a dead thread */
        g_usleep(100);
    }
    return GUINT_TO_POINTER(ok ? gw_mig_writer_bytes(w) : 0);
}

static void
expect_record(GwMigReader *r, uint32_t type, const void *data, size_t len)
{
    g_autoptr(GBytes) payload = NULL;
    g_autoptr(GError) err = NULL;
    uint32_t got;

    g_assert_true(gw_mig_read(r, &got, &payload, &err));
    g_assert_no_error(err);
    g_assert_cmphex(got, ==, type);
    g_assert_cmpmem(g_bytes_get_data(payload, NULL), g_bytes_get_size(payload),
                    data, len);
}

/* Reads what source_thread sends on fd, checking every record. */
static void
expect_every_type(int fd, GThread *t, GBytes *big)
{
    g_autoptr(GwMigReader) r = gw_mig_reader_new(fd);
    g_autoptr(GError) err = NULL;

    g_assert_true(gw_mig_reader_header(r, &err));
    for (size_t i = 0; i < G_N_ELEMENTS(every_type); i++) {
        g_autofree char *p = payload_for(every_type[i]);
        expect_record(r, every_type[i], p, strlen(p));
    }
    expect_record(r, GW_MIG_REC_RAM, g_bytes_get_data(big, NULL),
                  g_bytes_get_size(big));
    expect_record(r, GW_MIG_REC_END, NULL, 0);
    uint64_t sent = GPOINTER_TO_UINT(g_thread_join(t));
    g_assert_cmpuint(sent, ==, gw_mig_reader_bytes(r));
    g_assert_cmpuint(sent, >, g_bytes_get_size(big));
}

static GBytes *
pattern_bytes(size_t len, unsigned seed)
{
    uint8_t *p = g_malloc(len);

    for (size_t i = 0; i < len; i++) {
        p[i] = (i * 131 + seed * 7 + (i >> 9)) & 0xff;
    }
    return g_bytes_new_take(p, len);
}

static void
test_round_trip_every_type(void)
{
    int sv[2];
    g_autoptr(GBytes) big = pattern_bytes(1400000, 1);

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    Source s = {sv[0], big};
    GThread *t = g_thread_new("mig-source", source_thread, &s);
    expect_every_type(sv[1], t, big);
    close(sv[0]);
    close(sv[1]);
}

static void
count_interrupt(int sig)
{
    interrupts++;
}

static gpointer
pester_thread(gpointer opaque)
{
    Source *s = opaque;

    while (!g_atomic_int_get(&s->started)) {
        g_usleep(100);
    }
    while (!g_atomic_int_get(&s->done)) {
        pthread_kill(s->self, SIGUSR1);
        g_usleep(20);
    }
    g_atomic_int_set(&s->pester, 0);
    return NULL;
}

/*
 * Over a 4 KiB pipe, the writer is signalled (no SA_RESTART) all along:
 * its writes return short or fail with EINTR, and nothing is lost.
 */
static void
test_round_trip_short_writes(void)
{
    struct sigaction sa = {.sa_handler = count_interrupt}, old;
    g_autoptr(GBytes) big = pattern_bytes(1400000, 3);
    int p[2];

    g_assert_cmpint(pipe(p), ==, 0);
    g_assert_cmpint(fcntl(p[1], F_SETPIPE_SZ, 4096), >=, 4096);
    g_assert_cmpint(sigaction(SIGUSR1, &sa, &old), ==, 0);
    Source s = {p[1], big, .pester = 1};
    GThread *t = g_thread_new("mig-source", source_thread, &s);
    GThread *pest = g_thread_new("mig-pest", pester_thread, &s);
    expect_every_type(p[0], t, big);
    g_thread_join(pest);
    g_test_message("%d signals during the transfer", (int)interrupts);
    g_assert_cmpint(interrupts, >, 0);
    sigaction(SIGUSR1, &old, NULL);
    close(p[0]);
    close(p[1]);
}

static void
test_type_names(void)
{
    g_assert_cmpstr(gw_mig_record_type_name(GW_MIG_REC_MANIFEST), ==,
                    "MANIFEST");
    g_assert_cmpstr(gw_mig_record_type_name(GW_MIG_REC_END), ==, "END");
    g_assert_cmpstr(gw_mig_record_type_name(GW_MIG_REC_RP_ERROR), ==,
                    "RP_ERROR");
    g_assert_cmpstr(gw_mig_record_type_name(0x7777), ==, "unknown");
}

static void
test_writev_equals_write(void)
{
    gw_autofd a = memfd_create("a", MFD_CLOEXEC);
    gw_autofd b = memfd_create("b", MFD_CLOEXEC);
    g_autoptr(GwMigWriter) wa = gw_mig_writer_new(a);
    g_autoptr(GwMigWriter) wb = gw_mig_writer_new(b);
    g_autoptr(GBytes) big = pattern_bytes(200000, 2);

    g_assert_true(gw_mig_write(wa, GW_MIG_REC_RAM, g_bytes_get_data(big, NULL),
                               g_bytes_get_size(big), NULL));
    g_assert_true(send_big(wb, big));
    g_autoptr(GBytes) sa = slurp(a);
    g_autoptr(GBytes) sb = slurp(b);
    g_assert_true(g_bytes_equal(sa, sb));
}

/* Every offset, three ways of flipping: no corruption ever reads clean. */
static void
test_corrupt_byte_at_every_offset(void)
{
    uint64_t offsets[G_N_ELEMENTS(small_stream) + 1];
    g_autoptr(GBytes) stream = write_small_stream(offsets);
    gsize len;
    const uint8_t *orig = g_bytes_get_data(stream, &len);
    static const uint8_t masks[] = {0x01, 0x80, 0xff};
    g_autofree uint8_t *buf = g_memdup2(orig, len);

    g_assert_true(read_stream(orig, len, NULL));
    for (size_t off = 0; off < len; off++) {
        for (size_t m = 0; m < G_N_ELEMENTS(masks); m++) {
            g_autoptr(GError) err = NULL;
            buf[off] = orig[off] ^ masks[m];
            if (off == 8 && buf[off] >= 1 && buf[off] <= GW_MIG_VERSION) {
                buf[off] = orig[off]; /* another version this godwit
                                         reads: a valid header */
                continue;
            }
            if (read_stream(buf, len, &err)) {
                g_error("flipping 0x%02x at offset %zu went unnoticed",
                        masks[m], off);
            }
            g_assert_true(err->domain == GW_MIG_ERROR);
            g_assert_cmpint(err->code, !=, GW_MIG_ERROR_IO);
            buf[off] = orig[off];
        }
    }
}

static bool
is_boundary(const uint64_t *offsets, size_t n, size_t off)
{
    for (size_t i = 0; i < n; i++) {
        if (offsets[i] == off) {
            return true;
        }
    }
    return off == 0;
}

static void
test_truncated_at_every_offset(void)
{
    uint64_t offsets[G_N_ELEMENTS(small_stream) + 1];
    g_autoptr(GBytes) stream = write_small_stream(offsets);
    gsize len;
    const uint8_t *data = g_bytes_get_data(stream, &len);

    for (size_t cut = 0; cut < len; cut++) {
        g_autoptr(GError) err = NULL;
        g_assert_false(read_stream(data, cut, &err));
        g_assert_true(err->domain == GW_MIG_ERROR);
        if (is_boundary(offsets, G_N_ELEMENTS(small_stream), cut)) {
            g_assert_cmpint(err->code, ==, GW_MIG_ERROR_EOF);
            g_assert_nonnull(strstr(err->message, cut ? "before the end marker"
                                                      : "before its header"));
        } else {
            g_assert_cmpint(err->code, ==, GW_MIG_ERROR_TRUNCATED);
            g_assert_nonnull(strstr(err->message, "ended inside"));
        }
    }
}

static void
test_checksum_error_names_type_and_offset(void)
{
    uint64_t offsets[G_N_ELEMENTS(small_stream) + 1];
    g_autoptr(GBytes) stream = write_small_stream(offsets);
    gsize len = g_bytes_get_size(stream);
    g_autofree uint8_t *buf = g_memdup2(g_bytes_get_data(stream, NULL), len);
    g_autoptr(GError) err = NULL;

    buf[offsets[1] + GW_MIG_RECORD_HEADER + 3] ^= 0x20; /* DEVICE payload */
    g_assert_false(read_stream(buf, len, &err));
    g_assert_error(err, GW_MIG_ERROR, GW_MIG_ERROR_CHECKSUM);
    g_autofree char *want = g_strdup_printf(
        "DEVICE record at offset %" G_GUINT64_FORMAT, offsets[1]);
    g_assert_nonnull(strstr(err->message, want));
}

/* A record header with a valid check, for lengths the writer refuses. */
static void
forge_record_header(uint8_t *h, uint32_t type, uint32_t len)
{
    for (int i = 0; i < 4; i++) {
        h[i] = type >> (8 * i);
        h[4 + i] = len >> (8 * i);
    }
    memset(h + 8, 0, 8);
    uint64_t check = XXH3_64bits(h, 16);
    for (int i = 0; i < 8; i++) {
        h[16 + i] = check >> (8 * i);
    }
}

static void
test_oversize_length_is_too_large(void)
{
    uint64_t offsets[G_N_ELEMENTS(small_stream) + 1];
    g_autoptr(GBytes) stream = write_small_stream(offsets);
    uint8_t buf[GW_MIG_STREAM_HEADER + GW_MIG_RECORD_HEADER];
    static const uint32_t lens[] = {GW_MIG_MAX_RECORD + 1, UINT32_MAX};

    memcpy(buf, g_bytes_get_data(stream, NULL), GW_MIG_STREAM_HEADER);
    for (size_t i = 0; i < G_N_ELEMENTS(lens); i++) {
        g_autoptr(GError) err = NULL;
        forge_record_header(buf + GW_MIG_STREAM_HEADER, GW_MIG_REC_RAM,
                            lens[i]);
        /* no payload follows: TRUNCATED would mean it tried to read one */
        g_assert_false(read_stream(buf, sizeof(buf), &err));
        g_assert_error(err, GW_MIG_ERROR, GW_MIG_ERROR_TOO_LARGE);
    }
}

static void
test_writer_refuses_oversize(void)
{
    gw_autofd fd = memfd_create("mig-test", MFD_CLOEXEC);
    g_autoptr(GwMigWriter) w = gw_mig_writer_new(fd);
    g_autoptr(GError) err = NULL;
    uint8_t tiny[1];
    /* the lengths lie: the writer must refuse before touching memory */
    struct iovec iov[2] = {{tiny, GW_MIG_MAX_RECORD}, {tiny, 1}};

    g_assert_false(gw_mig_writev(w, GW_MIG_REC_RAM, iov, 2, &err));
    g_assert_error(err, GW_MIG_ERROR, GW_MIG_ERROR_TOO_LARGE);
    g_assert_cmpuint(gw_mig_writer_bytes(w), ==, 0);
}

static void
test_bad_magic(void)
{
    g_autoptr(GError) err = NULL;
    static const char junk[] = "QEVMxxxxxxxxxxxxxxxx";

    g_assert_false(read_stream(junk, sizeof(junk), &err));
    g_assert_error(err, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT);
    g_assert_cmpstr(err->message, ==, "not a godwit migration stream");
}

static void
test_newer_version(void)
{
    uint8_t h[GW_MIG_STREAM_HEADER] = "GODWITMS\x04\0\0\0\0\0\0\0";
    g_autoptr(GError) err = NULL;

    g_assert_false(read_stream(h, sizeof(h), &err));
    g_assert_error(err, GW_MIG_ERROR, GW_MIG_ERROR_VERSION);
    g_assert_cmpstr(err->message, ==,
                    "stream version 4 is newer than this godwit's 3");
}

static void
test_empty_stream_is_eof(void)
{
    g_autoptr(GError) err = NULL;

    g_assert_false(read_stream("", 0, &err));
    g_assert_error(err, GW_MIG_ERROR, GW_MIG_ERROR_EOF);
}

static void
test_write_error_breaks_the_writer(void)
{
    int p[2];
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) err2 = NULL;

    g_assert_cmpint(pipe(p), ==, 0);
    close(p[0]);
    g_autoptr(GwMigWriter) w = gw_mig_writer_new(p[1]);
    g_assert_false(gw_mig_writer_header(w, &err)); /* EPIPE */
    g_assert_error(err, GW_MIG_ERROR, GW_MIG_ERROR_IO);
    g_assert_false(gw_mig_write(w, GW_MIG_REC_END, NULL, 0, &err2));
    g_assert_error(err2, GW_MIG_ERROR, GW_MIG_ERROR_IO);
    close(p[1]);
}

/* --- GwMigBuf / GwMigCursor -------------------------------------------- */

static void
test_codec_round_trip(void)
{
    g_autoptr(GwMigBuf) b = gw_mig_buf_new();
    GwMigCursor c;
    uint8_t raw[3];

    gw_mig_buf_put_u8(b, 0xab);
    gw_mig_buf_put_u16(b, 0x1234);
    gw_mig_buf_put_u32(b, 0xdeadbeef);
    gw_mig_buf_put_u64(b, 0x0102030405060708ull);
    gw_mig_buf_put_bytes(b, "xyz", 3);
    gw_mig_buf_put_str(b, "vdpa0");
    /* little-endian whatever the host */
    static const uint8_t head[] = {0xab, 0x34, 0x12, 0xef, 0xbe, 0xad, 0xde};
    g_assert_cmpmem(gw_mig_buf_data(b), sizeof(head), head, sizeof(head));
    gw_mig_cursor_init(&c, gw_mig_buf_data(b), gw_mig_buf_len(b));
    g_assert_cmphex(gw_mig_get_u8(&c), ==, 0xab);
    g_assert_cmphex(gw_mig_get_u16(&c), ==, 0x1234);
    g_assert_cmphex(gw_mig_get_u32(&c), ==, 0xdeadbeef);
    g_assert_cmphex(gw_mig_get_u64(&c), ==, 0x0102030405060708ull);
    g_assert_true(gw_mig_get_bytes(&c, raw, 3));
    g_assert_cmpmem(raw, 3, "xyz", 3);
    g_autofree char *s = gw_mig_get_str(&c);
    g_assert_cmpstr(s, ==, "vdpa0");
    g_assert_true(gw_mig_cursor_finish(&c, NULL));
}

static void
test_codec_overrun_is_sticky(void)
{
    static const uint8_t two[] = {1, 2, 3, 4, 5, 6};
    GwMigCursor c;
    g_autoptr(GError) err = NULL;

    gw_mig_cursor_init(&c, two, sizeof(two));
    g_assert_cmpuint(gw_mig_get_u32(&c), ==, 0x04030201);
    g_assert_cmpuint(gw_mig_get_u32(&c), ==, 0); /* 2 bytes left */
    g_assert_cmpuint(gw_mig_get_u8(&c), ==, 0);  /* sticky: not 5 */
    g_assert_null(gw_mig_get_ptr(&c, 0));
    g_assert_cmpuint(gw_mig_cursor_remaining(&c), ==, 0);
    g_assert_false(gw_mig_cursor_ok(&c, &err));
    g_assert_error(err, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT);
    g_assert_nonnull(strstr(err->message, "at byte 4 of 6"));
}

static void
test_codec_refusals(void)
{
    /* a string with a NUL; a string longer than the data; trailing byte */
    static const uint8_t nul[] = {3, 0, 0, 0, 'a', 0, 'b'};
    static const uint8_t lie[] = {0xff, 0xff, 0xff, 0xff, 'a'};
    static const uint8_t extra[] = {1, 0, 0, 0, 'a', '!'};
    GwMigCursor c;
    g_autoptr(GError) err = NULL;

    gw_mig_cursor_init(&c, nul, sizeof(nul));
    g_assert_null(gw_mig_get_str(&c));
    g_assert_false(gw_mig_cursor_ok(&c, NULL));
    gw_mig_cursor_init(&c, lie, sizeof(lie));
    g_assert_null(gw_mig_get_str(&c));
    g_assert_false(gw_mig_cursor_ok(&c, NULL));
    gw_mig_cursor_init(&c, extra, sizeof(extra));
    g_autofree char *s = gw_mig_get_str(&c);
    g_assert_cmpstr(s, ==, "a");
    g_assert_true(gw_mig_cursor_ok(&c, NULL));
    g_assert_false(gw_mig_cursor_finish(&c, &err));
    g_assert_error(err, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT);
}

/* --- RAM batches ------------------------------------------------------- */

static void
test_page_is_zero(void)
{
    uint64_t *page = g_aligned_alloc0(1, GW_MIG_PAGE_SIZE, GW_MIG_PAGE_SIZE);
    uint8_t *bytes = (uint8_t *)page;

    g_assert_true(gw_mig_page_is_zero(page));
    for (size_t off = 0; off < GW_MIG_PAGE_SIZE; off++) {
        bytes[off] = off == GW_MIG_PAGE_SIZE / 2 ? 0x80 : 0x01;
        if (gw_mig_page_is_zero(page)) {
            g_error("a nonzero byte at %zu went unseen", off);
        }
        bytes[off] = 0;
    }
    g_assert_true(gw_mig_page_is_zero(page));
    g_aligned_free(page);
}

typedef struct {
    GArray *gpas;
    GByteArray *data; /* DATA pages' bytes, in order */
    unsigned zeros;
    int fail_at; /* callback index that fails, or -1 */
} Pages;

static bool
collect_page(void *opaque, uint64_t gpa, const void *data, GError **errp)
{
    Pages *p = opaque;

    if ((int)p->gpas->len == p->fail_at) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "gpa 0x%" PRIx64 " outside guest RAM", gpa);
        return false;
    }
    g_array_append_val(p->gpas, gpa);
    if (data) {
        g_byte_array_append(p->data, data, GW_MIG_PAGE_SIZE);
    } else {
        p->zeros++;
    }
    return true;
}

static void
pages_init(Pages *p)
{
    *p = (Pages){g_array_new(false, false, sizeof(uint64_t)),
                 g_byte_array_new(), 0, -1};
}

static void
pages_clear(Pages *p)
{
    g_array_unref(p->gpas);
    g_byte_array_unref(p->data);
}

#define NPAGES 8

/* Guest RAM of NPAGES pages: odd pages hold data, even ones are zero. */
static uint8_t *
fake_ram(void)
{
    uint8_t *ram = g_malloc0(NPAGES * GW_MIG_PAGE_SIZE); /* 16-aligned */

    for (unsigned i = 1; i < NPAGES; i += 2) {
        memset(ram + i * GW_MIG_PAGE_SIZE, 0x10 + i, GW_MIG_PAGE_SIZE);
        ram[i * GW_MIG_PAGE_SIZE + 4095] = i; /* not uniform */
    }
    return ram;
}

/* Sends a batch of all pages through a writer; the RAM record's payload. */
static GBytes *
send_batch(GwMigRamBatch *b, const uint8_t *ram)
{
    gw_autofd fd = memfd_create("mig-test", MFD_CLOEXEC);
    g_autoptr(GwMigWriter) w = gw_mig_writer_new(fd);
    g_autoptr(GwMigReader) r = gw_mig_reader_new(fd);
    GBytes *payload = NULL;
    uint32_t type;

    g_assert_true(gw_mig_ram_batch_send(b, w, NULL));
    g_assert_cmpuint(gw_mig_ram_batch_count(b), ==, 0);
    g_assert_cmpint(lseek(fd, 0, SEEK_SET), ==, 0);
    g_assert_true(gw_mig_read(r, &type, &payload, NULL));
    g_assert_cmpuint(type, ==, GW_MIG_REC_RAM);
    return payload;
}

static void
check_parsed(GBytes *payload, const uint8_t *ram, uint64_t base)
{
    Pages p;

    pages_init(&p);
    g_assert_true(gw_mig_ram_batch_parse(g_bytes_get_data(payload, NULL),
                                         g_bytes_get_size(payload),
                                         collect_page, &p, NULL));
    g_assert_cmpuint(p.gpas->len, ==, NPAGES);
    g_assert_cmpuint(p.zeros, ==, NPAGES / 2);
    for (unsigned i = 0; i < NPAGES; i++) {
        g_assert_cmphex(g_array_index(p.gpas, uint64_t, i), ==,
                        base + i * GW_MIG_PAGE_SIZE);
    }
    for (unsigned k = 0; k < NPAGES / 2; k++) {
        g_assert_cmpmem(p.data->data + k * GW_MIG_PAGE_SIZE, GW_MIG_PAGE_SIZE,
                        ram + (2 * k + 1) * GW_MIG_PAGE_SIZE, GW_MIG_PAGE_SIZE);
    }
    pages_clear(&p);
}

static void
fill_batch(GwMigRamBatch *b, const uint8_t *ram, uint64_t base)
{
    for (unsigned i = 0; i < NPAGES; i++) {
        gw_mig_ram_batch_add(b, base + i * GW_MIG_PAGE_SIZE,
                             ram + i * GW_MIG_PAGE_SIZE);
    }
    g_assert_true(gw_mig_ram_batch_full(b));
}

static void
test_batch_zero_copy(void)
{
    g_autofree uint8_t *ram = fake_ram();
    g_autoptr(GwMigRamBatch) b =
        gw_mig_ram_batch_new(NPAGES, GW_MIG_RAM_BATCH_ZERO_COPY);
    const uint64_t base = 0x100000000ull;
    int iovcnt;

    fill_batch(b, ram, base);
    const struct iovec *iov = gw_mig_ram_batch_iov(b, &iovcnt);
    g_assert_cmpint(iovcnt, ==, 1 + NPAGES / 2);
    g_assert_cmpuint(iov[0].iov_len, ==, 4 + 8 * NPAGES);
    for (int i = 1; i < iovcnt; i++) { /* straight from "guest RAM" */
        g_assert_true(iov[i].iov_base == ram + (2 * i - 1) * GW_MIG_PAGE_SIZE);
    }
    g_autoptr(GBytes) payload = send_batch(b, ram);
    g_assert_cmpuint(g_bytes_get_size(payload), ==,
                     4 + 8 * NPAGES + NPAGES / 2 * GW_MIG_PAGE_SIZE);
    check_parsed(payload, ram, base);
}

static void
test_batch_bounce_snapshots_pages(void)
{
    g_autofree uint8_t *ram = fake_ram();
    g_autofree uint8_t *orig = g_memdup2(ram, NPAGES * GW_MIG_PAGE_SIZE);
    g_autoptr(GwMigRamBatch) b =
        gw_mig_ram_batch_new(NPAGES, GW_MIG_RAM_BATCH_BOUNCE);

    fill_batch(b, ram, 0);
    /* a vCPU writes after the pages were added: not what gets sent */
    memset(ram, 0x55, NPAGES * GW_MIG_PAGE_SIZE);
    g_autoptr(GBytes) payload = send_batch(b, ram);
    check_parsed(payload, orig, 0);
}

static void
test_batch_empty_sends_nothing(void)
{
    gw_autofd fd = memfd_create("mig-test", MFD_CLOEXEC);
    g_autoptr(GwMigWriter) w = gw_mig_writer_new(fd);
    g_autoptr(GwMigRamBatch) b =
        gw_mig_ram_batch_new(4, GW_MIG_RAM_BATCH_BOUNCE);

    g_assert_true(gw_mig_ram_batch_send(b, w, NULL));
    g_assert_cmpuint(gw_mig_writer_bytes(w), ==, 0);
}

typedef struct {
    const char *name;
    uint32_t count;
    uint64_t entry; /* every entry */
    int extra;      /* bytes added to (or, < 0, cut from) the right length */
} BadBatch;

static const BadBatch bad_batches[] = {
    {"no-flag", 1, 0x1000, 0},
    {"both-flags", 1, 0x1000 | 3, 0},
    {"unknown-flag", 1, 0x1000 | 0x4, 0},
    {"unaligned-gpa", 1, 0x1010 | GW_MIG_PAGE_ZERO, 0},
    {"zero-count", 0, 0, 0},
    {"count-beyond-table", 5, 0x2000 | GW_MIG_PAGE_ZERO, -16},
    {"data-page-missing", 2, 0x3000 | GW_MIG_PAGE_DATA, -GW_MIG_PAGE_SIZE},
    {"data-page-short", 1, 0x3000 | GW_MIG_PAGE_DATA, -1},
    {"trailing-byte", 2, 0x4000 | GW_MIG_PAGE_ZERO, 1},
    {"shorter-than-count", 0, 0, -4},
};

static void
test_batch_rejects(gconstpointer data)
{
    const BadBatch *c = data;
    g_autoptr(GwMigBuf) buf = gw_mig_buf_new();
    g_autoptr(GError) err = NULL;
    size_t ndata = (c->entry & 0xfff) == GW_MIG_PAGE_DATA ? c->count : 0;
    Pages p;

    gw_mig_buf_put_u32(buf, c->count);
    for (uint32_t i = 0; i < c->count; i++) {
        gw_mig_buf_put_u64(buf, c->entry);
    }
    for (size_t i = 0; i < ndata * GW_MIG_PAGE_SIZE + MAX(c->extra, 0); i++) {
        gw_mig_buf_put_u8(buf, 0xaa);
    }
    size_t len = gw_mig_buf_len(buf) + MIN(c->extra, 0);
    pages_init(&p);
    g_assert_false(gw_mig_ram_batch_parse(gw_mig_buf_data(buf), len,
                                          collect_page, &p, &err));
    g_assert_error(err, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT);
    g_assert_cmpuint(p.gpas->len, ==, 0); /* nothing applied */
    pages_clear(&p);
}

static void
test_batch_callback_error_stops(void)
{
    g_autofree uint8_t *ram = fake_ram();
    g_autoptr(GwMigRamBatch) b =
        gw_mig_ram_batch_new(NPAGES, GW_MIG_RAM_BATCH_ZERO_COPY);
    g_autoptr(GError) err = NULL;
    Pages p;

    fill_batch(b, ram, 0);
    g_autoptr(GBytes) payload = send_batch(b, ram);
    pages_init(&p);
    p.fail_at = 3;
    g_assert_false(gw_mig_ram_batch_parse(g_bytes_get_data(payload, NULL),
                                          g_bytes_get_size(payload),
                                          collect_page, &p, &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_INVALID);
    g_assert_cmpuint(p.gpas->len, ==, 3);
    pages_clear(&p);
}

/* The stream's own XXH3 (AVX2 where there is AVX2) is the library's. */
static void
test_xxh3_is_the_library(void)
{
    static const size_t lens[] = {
        0,   1,   3,    16,   17,   128,      129,
        240, 241, 1024, 4096, 4099, 1u << 20, (1u << 20) + 77};
    const size_t max = (1u << 20) + 77;
    g_autofree uint8_t *buf = g_malloc(max);
    GwMigXxh *h = gw_mig_xxh_new();

    for (size_t i = 0; i < max; i++) {
        buf[i] = (uint8_t)(i * 2654435761u >> 13);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(lens); i++) {
        size_t n = lens[i], cut = n / 3;
        g_assert_cmphex(gw_mig_xxh3(buf, n), ==, XXH3_64bits(buf, n));
        gw_mig_xxh_reset(h);
        gw_mig_xxh_update(h, buf, cut);
        gw_mig_xxh_update(h, buf + cut, n - cut);
        g_assert_cmphex(gw_mig_xxh_digest(h), ==, XXH3_64bits(buf, n));
    }
    gw_mig_xxh_free(h);
}

/* ZERO_RANGE payloads: 16 bytes of whole pages, anything else refused. */
static void
test_zero_range_parse(void)
{
    uint8_t rec[GW_MIG_ZERO_RANGE_LEN];
    uint64_t gpa, n;
    static const struct {
        uint64_t gpa, len;
    } bad[] = {
        {0x1000, 0}, {0x1001, 0x1000}, {0x1000, 0x10}, {~0xfffull, 0x2000}};

    gw_mig_zero_range_encode(rec, 0x100000000ull, 0x40000000ull);
    g_assert_true(gw_mig_zero_range_parse(rec, sizeof(rec), &gpa, &n, NULL));
    g_assert_cmphex(gpa, ==, 0x100000000ull);
    g_assert_cmphex(n, ==, 0x40000000ull);
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;
        for (int b = 0; b < 8; b++) {
            rec[b] = (uint8_t)(bad[i].gpa >> (8 * b));
            rec[8 + b] = (uint8_t)(bad[i].len >> (8 * b));
        }
        g_assert_false(
            gw_mig_zero_range_parse(rec, sizeof(rec), &gpa, &n, &err));
        g_assert_error(err, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT);
    }
    g_autoptr(GError) err = NULL;
    g_assert_false(gw_mig_zero_range_parse(rec, 15, &gpa, &n, &err));
    g_assert_error(err, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    signal(SIGPIPE, SIG_IGN); /* as godwit's main: EPIPE, not death */
    g_test_add_func("/mig/stream/round-trip/every-record-type",
                    test_round_trip_every_type);
    g_test_add_func("/mig/stream/round-trip/short-writes-and-eintr",
                    test_round_trip_short_writes);
    g_test_add_func("/mig/stream/record-type-names", test_type_names);
    g_test_add_func("/mig/stream/xxh3/same-as-libxxhash",
                    test_xxh3_is_the_library);
    g_test_add_func("/mig/stream/zero-range/rejects-partial-pages-and-wrap",
                    test_zero_range_parse);
    g_test_add_func("/mig/stream/writev-is-byte-identical-to-write",
                    test_writev_equals_write);
    g_test_add_func("/mig/stream/corrupt-byte-at-every-offset",
                    test_corrupt_byte_at_every_offset);
    g_test_add_func("/mig/stream/truncated-at-every-offset",
                    test_truncated_at_every_offset);
    g_test_add_func("/mig/stream/checksum-error-names-type-and-offset",
                    test_checksum_error_names_type_and_offset);
    g_test_add_func("/mig/stream/oversize-length-is-too-large",
                    test_oversize_length_is_too_large);
    g_test_add_func("/mig/stream/writer-refuses-oversize-before-reading",
                    test_writer_refuses_oversize);
    g_test_add_func("/mig/stream/bad-magic", test_bad_magic);
    g_test_add_func("/mig/stream/newer-version", test_newer_version);
    g_test_add_func("/mig/stream/empty-is-eof", test_empty_stream_is_eof);
    g_test_add_func("/mig/stream/write-error-breaks-the-writer",
                    test_write_error_breaks_the_writer);
    g_test_add_func("/mig/codec/round-trip-little-endian",
                    test_codec_round_trip);
    g_test_add_func("/mig/codec/overrun-is-sticky",
                    test_codec_overrun_is_sticky);
    g_test_add_func("/mig/codec/bad-strings-and-trailing-bytes",
                    test_codec_refusals);
    g_test_add_func("/mig/ram/page-is-zero/nonzero-at-every-byte",
                    test_page_is_zero);
    g_test_add_func("/mig/ram/batch/zero-copy-round-trip",
                    test_batch_zero_copy);
    g_test_add_func("/mig/ram/batch/bounce-sends-pages-as-added",
                    test_batch_bounce_snapshots_pages);
    g_test_add_func("/mig/ram/batch/empty-sends-nothing",
                    test_batch_empty_sends_nothing);
    for (size_t i = 0; i < G_N_ELEMENTS(bad_batches); i++) {
        g_autofree char *path =
            g_strdup_printf("/mig/ram/batch/rejects/%s", bad_batches[i].name);
        g_test_add_data_func(path, &bad_batches[i], test_batch_rejects);
    }
    g_test_add_func("/mig/ram/batch/callback-error-stops-the-walk",
                    test_batch_callback_error_stops);
    return g_test_run();
}
