/*
 * mig-stream: the building blocks of the migration stream, as described
 * byte for byte in docs/migration.md.
 *
 *   - GwMigWriter / GwMigReader: framed, checksummed records over a file
 *     descriptor (socket, pipe or file), blocking I/O.
 *   - GwMigBuf / GwMigCursor: explicit little-endian encoding into a
 *     growable buffer and bounds-checked decoding out of a byte range.
 *   - GwMigRamBatch and gw_mig_ram_batch_parse: the payload of a RAM
 *     record, a table of page addresses followed by the data pages.
 *
 * Threads: nothing here has global state.  A writer, reader, buffer,
 * cursor or batch is used by one thread at a time (a migration thread);
 * distinct objects may be used on distinct threads at once.  That is
 * what several parallel RAM channels need: one fd, one stream (header
 * included) and one writer or reader per channel, RAM batches carrying
 * absolute guest addresses so that they can be applied in any order
 * between two ROUND_END records.
 *
 * Errors: every function that can fail sets a GW_MIG_ERROR error (code
 * below) with a message naming what failed, and returns false or NULL.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <glib.h>

#define GW_MIG_MAGIC "GODWITMS" /* 8 bytes, no NUL on the wire */
/* The newest version read: 2 added ZERO_RANGE, 3 compressed channels
 * (RAM_ZSTD, CHANNEL's compression); 1 is still read. */
#define GW_MIG_VERSION 3u
/* What a stream without compression is written as, so that a godwit
 * that reads only 2 still takes it. */
#define GW_MIG_VERSION_PLAIN 2u
/* What a compressed channel stream is written as. */
#define GW_MIG_VERSION_ZSTD  3u
#define GW_MIG_STREAM_HEADER 16u /* magic, u32 version, u32 flags */
#define GW_MIG_RECORD_HEADER 24u /* u32 type, u32 len, u64 xxh3, u64 check */
#define GW_MIG_MAX_RECORD    (64u << 20) /* largest payload, bytes */

#define GW_MIG_ERROR gw_mig_error_quark()
GQuark gw_mig_error_quark(void);

typedef enum {
    GW_MIG_ERROR_EOF,       /* the stream ended at a record boundary */
    GW_MIG_ERROR_TRUNCATED, /* the stream ended inside a record or header */
    GW_MIG_ERROR_CHECKSUM,  /* a record's header or payload is corrupt */
    GW_MIG_ERROR_FORMAT,    /* well framed, but not what the format says */
    GW_MIG_ERROR_VERSION,   /* written by a newer godwit */
    GW_MIG_ERROR_TOO_LARGE, /* a length beyond the format's limits */
    GW_MIG_ERROR_IO,        /* read/write failed (errno in the message) */
} GwMigErrorCode;

typedef enum {
    GW_MIG_REC_MANIFEST = 1,     /* JSON text: the source's configuration */
    GW_MIG_REC_RAM = 2,          /* a RAM batch (gw_mig_ram_batch_*) */
    GW_MIG_REC_DEVICE = 3,       /* a device section (vmstate.h) */
    GW_MIG_REC_ROUND_END = 4,    /* one pre-copy pass done; empty */
    GW_MIG_REC_END = 5,          /* end of the stream; u8: source ran */
    GW_MIG_REC_COMMIT = 6,       /* after RP_OK: the destination runs */
    GW_MIG_REC_ZERO_RANGE = 7,   /* u64 gpa, u64 len: all zero (v2) */
    GW_MIG_REC_CHANNELS = 8,     /* u32 n: n channel streams follow (v2) */
    GW_MIG_REC_CHANNEL = 9,      /* u32 i: a channel stream's first (v2);
                                    v3: and u32 compression */
    GW_MIG_REC_RAM_ZSTD = 10,    /* a RAM batch, zstd-compressed (v3) */
    GW_MIG_REC_RP_OK = 0x100,    /* return path: destination loaded all */
    GW_MIG_REC_RP_ERROR = 0x101, /* return path: UTF-8 reason */
    GW_MIG_REC_RP_READY = 0x102, /* return path: manifest accepted */
    GW_MIG_REC_CPR_RAM = 11,     /* guest RAM's memfd, SCM_RIGHTS (cpr) */
} GwMigRecordType;

/*
 * A static name for a record type ("MANIFEST", "RAM", "RP_ERROR", …), or
 * "unknown" for a type this godwit does not know.  Any thread.
 */
const char *gw_mig_record_type_name(uint32_t type);

/* --- the payload checksum ----------------------------------------------- */

/*
 * XXH3-64 (seed 0) of `len` bytes, as libxxhash's XXH3_64bits computes
 * it, with AVX2 where the CPU has it.  Any thread.
 */
uint64_t gw_mig_xxh3(const void *p, size_t len);

/* The same over pieces: reset, update…, digest.  One thread at a time. */
typedef struct GwMigXxh GwMigXxh;
GwMigXxh *gw_mig_xxh_new(void);
void gw_mig_xxh_free(GwMigXxh *h);
void gw_mig_xxh_reset(GwMigXxh *h);
void gw_mig_xxh_update(GwMigXxh *h, const void *p, size_t len);
uint64_t gw_mig_xxh_digest(const GwMigXxh *h);

/* --- writer ------------------------------------------------------------ */

typedef struct GwMigWriter GwMigWriter;

/*
 * A writer over `fd`, which it never owns: the caller closes fd after
 * gw_mig_writer_free.  fd must be blocking.  Never fails.
 */
GwMigWriter *gw_mig_writer_new(int fd);
void gw_mig_writer_free(GwMigWriter *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwMigWriter, gw_mig_writer_free)

/*
 * Writes the stream header (version GW_MIG_VERSION_PLAIN); call once,
 * before any record.  On a write error the writer is broken: every
 * later call fails with the same kind of error, since the peer can no
 * longer find a record boundary.
 */
bool gw_mig_writer_header(GwMigWriter *w, GError **errp);
/* The same with `version` (1 … GW_MIG_VERSION): a stream that uses
 * what a later version added says so, so an older reader refuses it. */
bool gw_mig_writer_header_version(GwMigWriter *w, uint32_t version,
                                  GError **errp);

/*
 * Writes one record of `type` with `len` bytes of `payload` (NULL when
 * len is 0).  len > GW_MIG_MAX_RECORD is TOO_LARGE, nothing written.
 */
bool gw_mig_write(GwMigWriter *w, uint32_t type, const void *payload,
                  size_t len, GError **errp);

/*
 * Writes one record whose payload is the concatenation of `iov`: the
 * checksum is computed over the iovecs in place and they are sent with
 * sendmsg/writev, without copying, retrying short writes and EINTR.
 * The memory must not change until the call returns (the checksum
 * would not match what was sent): for guest RAM under running vCPUs,
 * see GW_MIG_RAM_BATCH_BOUNCE.
 */
bool gw_mig_writev(GwMigWriter *w, uint32_t type, const struct iovec *iov,
                   int iovcnt, GError **errp);

/*
 * gw_mig_write, with `n_fds` (1 … 4) file descriptors passed along
 * (SCM_RIGHTS, attached to the record's first byte; the caller keeps
 * its own).  Only on a unix socket: IO error otherwise.
 */
bool gw_mig_write_fds(GwMigWriter *w, uint32_t type, const void *payload,
                      size_t len, const int *fds, unsigned n_fds,
                      GError **errp);

/* Bytes written to the fd so far, headers included (query-migrate). */
uint64_t gw_mig_writer_bytes(const GwMigWriter *w);

/* --- reader ------------------------------------------------------------ */

typedef struct GwMigReader GwMigReader;

/* A reader over `fd`, which it never owns (as for the writer). */
GwMigReader *gw_mig_reader_new(int fd);
void gw_mig_reader_free(GwMigReader *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwMigReader, gw_mig_reader_free)

/*
 * Reads and checks the stream header.  Errors: FORMAT "not a godwit
 * migration stream" (bad magic) or unknown flags; VERSION "stream version
 * N is newer than this godwit's M"; EOF if the fd ends before a byte;
 * TRUNCATED if it ends inside the header; IO.
 */
bool gw_mig_reader_header(GwMigReader *r, GError **errp);

/*
 * Reads the next record: its type into *type and its payload into
 * *payload (the caller's; empty, never NULL, for an empty record).  A
 * type this godwit does not know is returned like any other.  Errors,
 * with *payload untouched: EOF when the fd ends exactly at a record
 * boundary ("... ended before the end marker"); TRUNCATED inside one;
 * CHECKSUM (record type and stream offset in the message); TOO_LARGE
 * for a length over GW_MIG_MAX_RECORD, found before allocating; IO.
 * After an error other than EOF the reader cannot find the next record.
 */
bool gw_mig_read(GwMigReader *r, uint32_t *type, GBytes **payload,
                 GError **errp);

/*
 * File descriptors that came with the bytes read so far (SCM_RIGHTS, on
 * a socket; up to four are kept O_CLOEXEC, more are closed): the first
 * one, the caller's from now on, or -1 if none.  *n_fds is how many had
 * come before this call, one more if some were lost, so a caller can
 * refuse anything but exactly what it expects.  A freed reader closes
 * the fds nobody took.
 */
int gw_mig_reader_take_fd(GwMigReader *r, unsigned *n_fds);

/* Bytes consumed from the fd so far, headers included. */
uint64_t gw_mig_reader_bytes(const GwMigReader *r);

/* Whether the reader's fd becomes readable (or closed) within
 * `timeout_ms`; for a peer's last word after a failed write. */
bool gw_mig_reader_wait(GwMigReader *r, int timeout_ms);

/* --- encoding: GwMigBuf ----------------------------------------------- */

/*
 * A growable byte buffer that encodes integers little-endian, whatever
 * the host.  Puts never fail (GLib aborts on out-of-memory).
 */
typedef struct GwMigBuf GwMigBuf;

GwMigBuf *gw_mig_buf_new(void);
void gw_mig_buf_free(GwMigBuf *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwMigBuf, gw_mig_buf_free)

void gw_mig_buf_put_u8(GwMigBuf *b, uint8_t v);
void gw_mig_buf_put_u16(GwMigBuf *b, uint16_t v);
void gw_mig_buf_put_u32(GwMigBuf *b, uint32_t v);
void gw_mig_buf_put_u64(GwMigBuf *b, uint64_t v);
void gw_mig_buf_put_bytes(GwMigBuf *b, const void *data, size_t len);
/* u32 length, then the bytes of `s` without its NUL; s must be < 4 GiB. */
void gw_mig_buf_put_str(GwMigBuf *b, const char *s);

/* The bytes so far; valid until the next put or free. */
const uint8_t *gw_mig_buf_data(const GwMigBuf *b);
size_t gw_mig_buf_len(const GwMigBuf *b);
/* Frees the buffer, handing its bytes out as the caller's GBytes. */
GBytes *gw_mig_buf_free_to_bytes(GwMigBuf *b);

/* --- decoding: GwMigCursor -------------------------------------------- */

/*
 * A read position over bytes the caller keeps alive.  Getters never read
 * past the end: the first overrun (or malformed string) marks the cursor
 * failed, and from then on every getter returns 0/NULL/false without
 * reading, so a decoder can get a whole structure and check once with
 * gw_mig_cursor_ok.  On the stack; nothing to free.
 */
typedef struct {
    const uint8_t *data;
    size_t len;
    size_t pos;
    const char *error; /* static text of the first failure, or NULL */
    size_t error_pos;  /* where it happened */
} GwMigCursor;

void gw_mig_cursor_init(GwMigCursor *c, const void *data, size_t len);
/* Over a GBytes, which the caller keeps alive while the cursor is used. */
void gw_mig_cursor_init_bytes(GwMigCursor *c, GBytes *bytes);

uint8_t gw_mig_get_u8(GwMigCursor *c);
uint16_t gw_mig_get_u16(GwMigCursor *c);
uint32_t gw_mig_get_u32(GwMigCursor *c);
uint64_t gw_mig_get_u64(GwMigCursor *c);
/* Copies `len` bytes to dst; false (dst untouched) on overrun. */
bool gw_mig_get_bytes(GwMigCursor *c, void *dst, size_t len);
/* Points at the next `len` bytes without copying; NULL on overrun. */
const void *gw_mig_get_ptr(GwMigCursor *c, size_t len);
/* A u32-length string, NUL-terminated, the caller's (g_free); NULL on
 * overrun or if it contains a NUL byte. */
char *gw_mig_get_str(GwMigCursor *c);

/* Bytes left after the position (0 once failed). */
size_t gw_mig_cursor_remaining(const GwMigCursor *c);
/* false with a FORMAT error if any getter failed. */
bool gw_mig_cursor_ok(const GwMigCursor *c, GError **errp);
/* gw_mig_cursor_ok, and also a FORMAT error for trailing bytes. */
bool gw_mig_cursor_finish(const GwMigCursor *c, GError **errp);

/* --- zero ranges (stream version 2) ---------------------------------- */

#define GW_MIG_ZERO_RANGE_LEN 16u /* u64 gpa, u64 length */

/* The payload of a ZERO_RANGE record; both page aligned, len > 0. */
void gw_mig_zero_range_encode(uint8_t out[GW_MIG_ZERO_RANGE_LEN], uint64_t gpa,
                              uint64_t len);

/*
 * Decodes a ZERO_RANGE payload: exactly 16 bytes, gpa and length page
 * aligned, length not 0, gpa + length not past 2^64.  A FORMAT error
 * otherwise.  The caller checks the range against guest RAM.
 */
bool gw_mig_zero_range_parse(const void *payload, size_t len, uint64_t *gpa,
                             uint64_t *n, GError **errp);

/* --- RAM batches ------------------------------------------------------- */

#define GW_MIG_PAGE_SIZE       4096u
#define GW_MIG_PAGE_FLAGS_MASK 0xfffu /* the low 12 bits of an entry */
#define GW_MIG_PAGE_ZERO       0x1u   /* all-zero page, no data follows */
#define GW_MIG_PAGE_DATA       0x2u   /* 4096 bytes follow the table */
#define GW_MIG_RAM_BATCH_PAGES 256u   /* the builder's default capacity */
/* So that the entry table and the pages fit in one record. */
#define GW_MIG_RAM_BATCH_MAX_PAGES                                             \
    ((GW_MIG_MAX_RECORD - 4u) / (8u + GW_MIG_PAGE_SIZE))

/*
 * Whether the page at `page` (8-byte aligned, GW_MIG_PAGE_SIZE bytes) is
 * all zero; word-wise, 64 bytes per step.  Any thread.
 */
bool gw_mig_page_is_zero(const void *page);

typedef enum {
    /* Data entries point into the caller's memory until send returns:
     * for memory nobody writes meanwhile (vCPUs paused). */
    GW_MIG_RAM_BATCH_ZERO_COPY,
    /* Data pages are copied into the batch when added, so the checksum
     * matches what is sent even if vCPUs keep writing guest RAM (the
     * dirty log sends the page again). */
    GW_MIG_RAM_BATCH_BOUNCE,
} GwMigRamBatchMode;

typedef struct GwMigRamBatch GwMigRamBatch;

/* An empty batch for up to `max_pages` (1..GW_MIG_RAM_BATCH_MAX_PAGES). */
GwMigRamBatch *gw_mig_ram_batch_new(unsigned max_pages, GwMigRamBatchMode mode);
void gw_mig_ram_batch_free(GwMigRamBatch *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwMigRamBatch, gw_mig_ram_batch_free)

unsigned gw_mig_ram_batch_count(const GwMigRamBatch *b);
bool gw_mig_ram_batch_full(const GwMigRamBatch *b);

/*
 * Adds the page at guest address `gpa` (page aligned) whose contents are
 * at `page`: a ZERO entry if gw_mig_page_is_zero, else a DATA entry
 * (referenced or copied, per the mode).  The batch must not be full:
 * both are the caller's invariants (asserted).
 */
void gw_mig_ram_batch_add(GwMigRamBatch *b, uint64_t gpa, const void *page);
/* Adds a ZERO entry without looking at memory (a page known to be zero). */
void gw_mig_ram_batch_add_zero(GwMigRamBatch *b, uint64_t gpa);

/*
 * The RAM record payload as iovecs: [0] the count and entry table, then
 * one per DATA page.  Valid until the next add, reset or free.
 */
const struct iovec *gw_mig_ram_batch_iov(GwMigRamBatch *b, int *iovcnt);

/* The batch's RAM record size on the wire, header included (0 when
 * empty). */
uint64_t gw_mig_ram_batch_wire_size(GwMigRamBatch *b);

/* Empties the batch (capacity and mode kept). */
void gw_mig_ram_batch_reset(GwMigRamBatch *b);

/* Changes the mode of an empty batch; BOUNCE only for a batch created
 * BOUNCE (it has the buffer). */
void gw_mig_ram_batch_set_mode(GwMigRamBatch *b, GwMigRamBatchMode mode);

/*
 * Writes the batch as one RAM record with gw_mig_writev and empties it,
 * also on error.  An empty batch writes nothing and succeeds.
 */
bool gw_mig_ram_batch_send(GwMigRamBatch *b, GwMigWriter *w, GError **errp);

/*
 * Called per page of a batch, in order: `data` is the page's 4096 bytes
 * (inside the payload, not aligned) or NULL for a ZERO page, which the
 * callee must make all zero.  The callee checks that gpa is guest RAM.
 */
typedef bool (*GwMigPageFn)(void *opaque, uint64_t gpa, const void *data,
                            GError **errp);

/*
 * Validates a RAM record payload whole (count > 0 and consistent with
 * len, page-aligned addresses, exactly one known flag per entry), then
 * hands each page to `page`.  A malformed batch is a FORMAT error before
 * any callback; a callback's error stops the walk and is returned.
 */
bool gw_mig_ram_batch_parse(const void *payload, size_t len, GwMigPageFn page,
                            void *opaque, GError **errp);

/* --- compressed RAM batches (RAM_ZSTD, stream version 3) -------------- */

/* A channel's compression method, as the CHANNEL record names it. */
typedef enum {
    GW_MIG_COMPRESS_NONE = 0,
    GW_MIG_COMPRESS_ZSTD = 1,
} GwMigCompression;

#define GW_MIG_ZSTD_LEVEL_MAX 20 /* QEMU's multifd-zstd-level bound */
/* The largest batch a RAM_ZSTD record may decompress to: a batch of
 * GW_MIG_RAM_BATCH_PAGES data pages. */
#define GW_MIG_ZSTD_MAX_RAW                                                    \
    (4u + GW_MIG_RAM_BATCH_PAGES * (8u + GW_MIG_PAGE_SIZE))

/*
 * One channel's zstd state: a compression context at `level` (0 …
 * GW_MIG_ZSTD_LEVEL_MAX; 0 is zstd's default, as in QEMU) and a
 * decompression context, with their buffers.  One thread at a time.
 */
typedef struct GwMigZstd GwMigZstd;
GwMigZstd *gw_mig_zstd_new(int level);
void gw_mig_zstd_free(GwMigZstd *z);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwMigZstd, gw_mig_zstd_free)

/*
 * Writes the batch as one RAM_ZSTD record (u32 length of the RAM batch
 * payload, then one zstd frame of it) and empties it, also on error.
 * An empty batch writes nothing.
 */
bool gw_mig_ram_batch_send_zstd(GwMigRamBatch *b, GwMigWriter *w, GwMigZstd *z,
                                GError **errp);

/*
 * Decompresses a RAM_ZSTD payload into z's buffer: *raw points at the
 * RAM batch payload (valid until the next call on z), *raw_len its
 * length.  FORMAT errors: a length of 0 or over GW_MIG_ZSTD_MAX_RAW, a
 * frame that is not zstd or is corrupt, or one that decompresses to
 * another length than the header says.  The batch itself is not
 * checked: that is gw_mig_ram_batch_parse's.
 */
bool gw_mig_zstd_decompress(GwMigZstd *z, const void *payload, size_t len,
                            const uint8_t **raw, size_t *raw_len,
                            GError **errp);
