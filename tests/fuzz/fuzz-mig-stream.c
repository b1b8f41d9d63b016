/*
 * libFuzzer target for everything that decodes a migration stream: the
 * record reader, the RAM batch parser and the vmstate loader.  The first
 * input byte picks the decoder, the rest is its input; mode 3 frames the
 * input into valid records, so the fuzzer gets past the checksums and
 * checks that what is written is what is read; mode 4 is a RAM_ZSTD
 * payload (decompressed, never past a batch, then parsed); mode 5
 * compresses the input as pages and checks they come back.
 *
 *   clang build: meson setup build-fuzz -Dfuzz=true (CC=clang)
 *   ninja -C build-fuzz tests/fuzz/fuzz-mig-stream
 *   build-fuzz/tests/fuzz/fuzz-mig-stream -max_total_time=60
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <godwit/mig-stream.h>
#include <godwit/vmstate.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

typedef struct {
    uint16_t num;
    uint64_t addr;
} Ring;

typedef struct {
    uint32_t status;
    uint8_t cfg[8];
    Ring rings[2];
    uint64_t added_later;
} State;

static const GwVmsdField ring_fields[] = {
    GW_VMSD_FIELD(Ring, num, 1),
    GW_VMSD_FIELD(Ring, addr, 1),
    GW_VMSD_END,
};
static const GwVmsd ring_vmsd = {"ring", 1, ring_fields, .size = sizeof(Ring)};
static const GwVmsdField state_fields[] = {
    GW_VMSD_FIELD(State, status, 1),
    GW_VMSD_ARRAY(State, cfg, 1),
    GW_VMSD_STRUCT_ARRAY(State, rings, 1, &ring_vmsd),
    GW_VMSD_FIELD(State, added_later, 2),
    GW_VMSD_END,
};
static const GwVmsd state_vmsd = {"state", 2, state_fields,
                                  .size = sizeof(State)};

static int
memfd_with(const uint8_t *data, size_t len)
{
    int fd = memfd_create("fuzz", MFD_CLOEXEC);

    g_assert(fd >= 0);
    g_assert(write(fd, data, len) == (ssize_t)len);
    g_assert(lseek(fd, 0, SEEK_SET) == 0);
    return fd;
}

static void
fuzz_reader(const uint8_t *data, size_t len)
{
    int fd = memfd_with(data, len);
    g_autoptr(GwMigReader) r = gw_mig_reader_new(fd);
    bool ok = gw_mig_reader_header(r, NULL);

    while (ok) {
        g_autoptr(GBytes) payload = NULL;
        uint32_t type;
        ok = gw_mig_read(r, &type, &payload, NULL);
        g_assert(!ok || g_bytes_get_size(payload) <= GW_MIG_MAX_RECORD);
    }
    g_assert(gw_mig_reader_bytes(r) <= len);
    close(fd);
}

static bool
touch_page(void *opaque, uint64_t gpa, const void *page, GError **errp)
{
    uint64_t *sum = opaque;

    g_assert((gpa & GW_MIG_PAGE_FLAGS_MASK) == 0);
    *sum += page ? ((const uint8_t *)page)[GW_MIG_PAGE_SIZE - 1] : 1;
    return true;
}

/* The page at gpa must be what the round trip put there. */
static bool
check_page(void *opaque, uint64_t gpa, const void *page, GError **errp)
{
    const uint8_t *pages = opaque;
    static const uint8_t zero[GW_MIG_PAGE_SIZE];

    g_assert(gpa < 16 * GW_MIG_PAGE_SIZE);
    g_assert(memcmp(pages + gpa, page ? page : zero, GW_MIG_PAGE_SIZE) == 0);
    return true;
}

static void
fuzz_batch(const uint8_t *data, size_t len)
{
    uint64_t sum = 0;

    gw_mig_ram_batch_parse(data, len, touch_page, &sum, NULL);
}

/* A refused section must leave the state exactly as it was. */
static void
fuzz_vmstate(const uint8_t *data, size_t len)
{
    State s, before;
    GwMigCursor c;

    memset(&s, 0x5a, sizeof(s));
    memcpy(&before, &s, sizeof(s));
    gw_mig_cursor_init(&c, data, len);
    g_autofree char *id = gw_mig_device_section_parse_id(&c, NULL);
    if (id && !gw_mig_device_section_load(&c, &state_vmsd, &s, NULL)) {
        g_assert(memcmp(&s, &before, sizeof(s)) == 0);
    }
}

/* An untrusted RAM_ZSTD payload: refused, or exactly the claimed
 * length (at most a batch), which then goes to the batch parser. */
static void
fuzz_zstd(const uint8_t *data, size_t len)
{
    g_autoptr(GwMigZstd) z = gw_mig_zstd_new(1);
    const uint8_t *raw;
    size_t raw_len;
    uint64_t sum = 0;

    if (!gw_mig_zstd_decompress(z, data, len, &raw, &raw_len, NULL)) {
        return;
    }
    g_assert(len >= 4 && raw_len == (data[0] | data[1] << 8 | data[2] << 16 |
                                     (size_t)data[3] << 24));
    g_assert(raw_len <= GW_MIG_ZSTD_MAX_RAW);
    gw_mig_ram_batch_parse(raw, raw_len, touch_page, &sum, NULL);
}

/* The input as up to 16 pages (the rest zero), compressed and read
 * back: the same pages, zero ones as flags. */
static void
fuzz_zstd_round_trip(const uint8_t *data, size_t len)
{
    g_autoptr(GwMigRamBatch) b =
        gw_mig_ram_batch_new(16, GW_MIG_RAM_BATCH_BOUNCE);
    g_autoptr(GwMigZstd) z = gw_mig_zstd_new(data[0] % 4);
    int fd = memfd_create("fuzz", MFD_CLOEXEC);
    g_autoptr(GwMigWriter) w = gw_mig_writer_new(fd);
    g_autoptr(GwMigReader) r = gw_mig_reader_new(fd);
    g_autoptr(GBytes) payload = NULL;
    g_autofree uint8_t *pages = g_malloc0(16 * GW_MIG_PAGE_SIZE);
    const uint8_t *raw;
    size_t raw_len;
    uint32_t type;

    memcpy(pages, data, MIN(len, 16 * GW_MIG_PAGE_SIZE));
    for (unsigned i = 0; i < 16; i++) {
        gw_mig_ram_batch_add(b, (uint64_t)i * GW_MIG_PAGE_SIZE,
                             pages + i * GW_MIG_PAGE_SIZE);
    }
    g_assert(gw_mig_ram_batch_send_zstd(b, w, z, NULL));
    g_assert(lseek(fd, 0, SEEK_SET) == 0);
    g_assert(gw_mig_read(r, &type, &payload, NULL) &&
             type == GW_MIG_REC_RAM_ZSTD);
    g_assert(gw_mig_zstd_decompress(z, g_bytes_get_data(payload, NULL),
                                    g_bytes_get_size(payload), &raw, &raw_len,
                                    NULL));
    g_assert(gw_mig_ram_batch_parse(raw, raw_len, check_page, pages, NULL));
    close(fd);
}

/* Splits the input into records (u8 type, u8 length, payload), writes
 * them, and checks that they read back unchanged. */
static void
fuzz_round_trip(const uint8_t *data, size_t len)
{
    int fd = memfd_create("fuzz", MFD_CLOEXEC);
    g_autoptr(GwMigWriter) w = gw_mig_writer_new(fd);
    g_autoptr(GwMigReader) r = gw_mig_reader_new(fd);
    size_t off = 0, n = 0;

    g_assert(gw_mig_writer_header(w, NULL));
    for (; off + 2 <= len; n++) {
        size_t plen = MIN(data[off + 1], len - off - 2);
        g_assert(gw_mig_write(w, data[off], data + off + 2, plen, NULL));
        off += 2 + plen;
    }
    g_assert(lseek(fd, 0, SEEK_SET) == 0 && gw_mig_reader_header(r, NULL));
    for (off = 0; n > 0; n--) {
        g_autoptr(GBytes) payload = NULL;
        uint32_t type;
        size_t plen = MIN(data[off + 1], len - off - 2);
        g_assert(gw_mig_read(r, &type, &payload, NULL));
        g_assert(type == data[off] && g_bytes_get_size(payload) == plen);
        g_assert(plen == 0 || memcmp(g_bytes_get_data(payload, NULL),
                                     data + off + 2, plen) == 0);
        off += 2 + plen;
    }
    g_assert(gw_mig_reader_bytes(r) == gw_mig_writer_bytes(w));
    close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    if (len < 1) {
        return 0;
    }
    switch (data[0] % 6) {
    case 0:
        fuzz_reader(data + 1, len - 1);
        break;
    case 1:
        fuzz_batch(data + 1, len - 1);
        break;
    case 2:
        fuzz_vmstate(data + 1, len - 1);
        break;
    case 4:
        fuzz_zstd(data + 1, len - 1);
        break;
    case 5:
        fuzz_zstd_round_trip(data, len);
        break;
    default:
        fuzz_round_trip(data + 1, len - 1);
    }
    return 0;
}
