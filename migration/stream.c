/*
 * Framed, checksummed records over a file descriptor: the writer and the
 * reader of docs/migration.md.  Each object is used by one thread at a
 * time; see include/godwit/mig-stream.h.
 */
#include <errno.h>
#include <poll.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xxhash.h>
#include <godwit/mig-stream.h>
#include "mig-priv.h"

G_DEFINE_QUARK(godwit - mig - error - quark, gw_mig_error)

struct GwMigWriter {
    int fd;
    bool not_socket; /* sendmsg said ENOTSOCK: use writev */
    bool broken;     /* a write failed: no record boundary any more */
    uint64_t bytes;
    GwMigXxh *xxh;
    const int *fds; /* to go with the next sendmsg (SCM_RIGHTS) */
    unsigned n_fds;
};

#define MAX_FDS 4 /* a reader keeps at most this many received fds */

struct GwMigReader {
    int fd;
    uint64_t bytes;
    bool not_socket; /* recvmsg said ENOTSOCK: use read */
    bool fds_lost;   /* more fds came than it keeps, or were cut off */
    unsigned n_fds;
    int fds[MAX_FDS]; /* received with SCM_RIGHTS, not yet taken */
};

static const struct {
    uint32_t type;
    const char *name;
} record_names[] = {
    {GW_MIG_REC_MANIFEST, "MANIFEST"}, {GW_MIG_REC_RAM, "RAM"},
    {GW_MIG_REC_DEVICE, "DEVICE"},     {GW_MIG_REC_ROUND_END, "ROUND_END"},
    {GW_MIG_REC_END, "END"},           {GW_MIG_REC_COMMIT, "COMMIT"},
    {GW_MIG_REC_RP_OK, "RP_OK"},       {GW_MIG_REC_RP_ERROR, "RP_ERROR"},
    {GW_MIG_REC_RP_READY, "RP_READY"}, {GW_MIG_REC_ZERO_RANGE, "ZERO_RANGE"},
    {GW_MIG_REC_CHANNELS, "CHANNELS"}, {GW_MIG_REC_CHANNEL, "CHANNEL"},
    {GW_MIG_REC_CPR_RAM, "CPR_RAM"},   {GW_MIG_REC_RAM_ZSTD, "RAM_ZSTD"},
};

const char *
gw_mig_record_type_name(uint32_t type)
{
    for (size_t i = 0; i < G_N_ELEMENTS(record_names); i++) {
        if (record_names[i].type == type) {
            return record_names[i].name;
        }
    }
    return "unknown";
}

/* The record header: type, len, payload hash, and a hash of those 16. */
static void
encode_record_header(uint8_t *h, uint32_t type, uint32_t len, uint64_t sum)
{
    gw_mig_st32(h, type);
    gw_mig_st32(h + 4, len);
    gw_mig_st64(h + 8, sum);
    gw_mig_st64(h + 16, XXH3_64bits(h, 16));
}

/* --- writer ------------------------------------------------------------ */

GwMigWriter *
gw_mig_writer_new(int fd)
{
    GwMigWriter *w = g_new0(GwMigWriter, 1);

    w->fd = fd;
    w->xxh = gw_mig_xxh_new();
    return w;
}

void
gw_mig_writer_free(GwMigWriter *w)
{
    if (w) {
        gw_mig_xxh_free(w->xxh);
        g_free(w);
    }
}

uint64_t
gw_mig_writer_bytes(const GwMigWriter *w)
{
    return w->bytes;
}

/* The SCM_RIGHTS message for w->fds, into `buf` (CMSG_SPACE of them). */
static void
attach_fds(GwMigWriter *w, struct msghdr *msg, void *buf)
{
    struct cmsghdr *c;

    msg->msg_control = buf;
    msg->msg_controllen = CMSG_SPACE(sizeof(int) * w->n_fds);
    c = CMSG_FIRSTHDR(msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * w->n_fds);
    memcpy(CMSG_DATA(c), w->fds, sizeof(int) * w->n_fds);
}

/* One writev or, on a socket, sendmsg without SIGPIPE (with the fds
 * to pass, on the first one that writes). */
static ssize_t
write_some(GwMigWriter *w, struct iovec *iov, int iovcnt)
{
    if (!w->not_socket) {
        union {
            struct cmsghdr align;
            char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
        } u;
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = iovcnt};
        ssize_t n;
        if (w->n_fds) {
            attach_fds(w, &msg, u.buf);
        }
        n = sendmsg(w->fd, &msg, MSG_NOSIGNAL);
        if (n > 0) {
            w->n_fds = 0; /* they went with the first byte */
        }
        if (n >= 0 || errno != ENOTSOCK) {
            return n;
        }
        w->not_socket = true;
    }
    return writev(w->fd, iov, iovcnt);
}

/* Drops `n` written bytes from the front of iov[*first..]. */
static void
advance(struct iovec *iov, int *first, size_t n)
{
    while (n > 0) {
        size_t step = MIN(n, iov[*first].iov_len);
        iov[*first].iov_base = (uint8_t *)iov[*first].iov_base + step;
        iov[*first].iov_len -= step;
        n -= step;
        if (iov[*first].iov_len == 0) {
            (*first)++;
        }
    }
}

/* Writes all of iov[0..iovcnt), modifying the array as it goes. */
static bool
write_all(GwMigWriter *w, struct iovec *iov, int iovcnt, GError **errp)
{
    int first = 0;

    while (first < iovcnt && iov[first].iov_len == 0) {
        first++;
    }
    while (first < iovcnt) {
        ssize_t n = write_some(w, iov + first, MIN(iovcnt - first, IOV_MAX));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            w->broken = true;
            g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_IO,
                        "migration stream: write failed: %s",
                        n < 0 ? g_strerror(errno) : "wrote nothing");
            return false;
        }
        w->bytes += n;
        advance(iov, &first, n);
        while (first < iovcnt && iov[first].iov_len == 0) {
            first++;
        }
    }
    return true;
}

static bool
check_not_broken(const GwMigWriter *w, GError **errp)
{
    if (w->broken) {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_IO,
                    "migration stream: an earlier write failed");
        return false;
    }
    return true;
}

bool
gw_mig_writer_header(GwMigWriter *w, GError **errp)
{
    return gw_mig_writer_header_version(w, GW_MIG_VERSION_PLAIN, errp);
}

bool
gw_mig_writer_header_version(GwMigWriter *w, uint32_t version, GError **errp)
{
    uint8_t h[GW_MIG_STREAM_HEADER];
    struct iovec iov = {h, sizeof(h)};

    g_assert(version >= 1 && version <= GW_MIG_VERSION);
    memcpy(h, GW_MIG_MAGIC, 8);
    gw_mig_st32(h + 8, version);
    gw_mig_st32(h + 12, 0);
    return check_not_broken(w, errp) && write_all(w, &iov, 1, errp);
}

/* The payload's length, or false if too large (before touching it). */
static bool
payload_len(uint32_t type, const struct iovec *iov, int iovcnt, size_t *len,
            GError **errp)
{
    *len = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > GW_MIG_MAX_RECORD - *len) {
            g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_TOO_LARGE,
                        "migration stream: %s record larger than %u bytes",
                        gw_mig_record_type_name(type), GW_MIG_MAX_RECORD);
            return false;
        }
        *len += iov[i].iov_len;
    }
    return true;
}

static uint64_t
hash_payload(GwMigWriter *w, const struct iovec *iov, int iovcnt)
{
    gw_mig_xxh_reset(w->xxh);
    for (int i = 0; i < iovcnt; i++) {
        gw_mig_xxh_update(w->xxh, iov[i].iov_base, iov[i].iov_len);
    }
    return gw_mig_xxh_digest(w->xxh);
}

bool
gw_mig_writev(GwMigWriter *w, uint32_t type, const struct iovec *iov,
              int iovcnt, GError **errp)
{
    uint8_t h[GW_MIG_RECORD_HEADER];
    size_t len;

    g_assert(iovcnt >= 0 && iovcnt < INT_MAX);
    if (!check_not_broken(w, errp) ||
        !payload_len(type, iov, iovcnt, &len, errp)) {
        return false;
    }
    encode_record_header(h, type, len, hash_payload(w, iov, iovcnt));

    g_autofree struct iovec *all = g_new(struct iovec, iovcnt + 1);
    all[0] = (struct iovec){h, sizeof(h)};
    memcpy(all + 1, iov, sizeof(*iov) * iovcnt);
    return write_all(w, all, iovcnt + 1, errp);
}

bool
gw_mig_write(GwMigWriter *w, uint32_t type, const void *payload, size_t len,
             GError **errp)
{
    struct iovec iov = {(void *)payload, len};

    return gw_mig_writev(w, type, &iov, len ? 1 : 0, errp);
}

bool
gw_mig_write_fds(GwMigWriter *w, uint32_t type, const void *payload, size_t len,
                 const int *fds, unsigned n_fds, GError **errp)
{
    bool ok;

    g_assert(n_fds >= 1 && n_fds <= MAX_FDS);
    if (w->not_socket) {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_IO,
                    "migration stream: file descriptors go over a unix "
                    "socket only");
        return false;
    }
    w->fds = fds;
    w->n_fds = n_fds;
    ok = gw_mig_write(w, type, payload, len, errp);
    if (ok && w->n_fds) {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_IO,
                    "migration stream: file descriptors go over a unix "
                    "socket only");
        ok = false;
    }
    w->fds = NULL;
    w->n_fds = 0;
    return ok;
}

/* --- reader ------------------------------------------------------------ */

GwMigReader *
gw_mig_reader_new(int fd)
{
    GwMigReader *r = g_new0(GwMigReader, 1);

    r->fd = fd;
    return r;
}

void
gw_mig_reader_free(GwMigReader *r)
{
    if (r) {
        for (unsigned i = 0; i < r->n_fds; i++) {
            close(r->fds[i]);
        }
    }
    g_free(r);
}

/* Keeps the fds of an SCM_RIGHTS message (closing what it cannot). */
static void
keep_fds(GwMigReader *r, struct msghdr *msg)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        size_t n;
        int fd;
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (r->n_fds < MAX_FDS) {
                r->fds[r->n_fds++] = fd;
            } else {
                close(fd);
                r->fds_lost = true;
            }
        }
    }
    if (msg->msg_flags & MSG_CTRUNC) {
        r->fds_lost = true;
    }
}

/* One read or, on a socket, recvmsg keeping any fds that come along. */
static ssize_t
read_some(GwMigReader *r, void *buf, size_t len)
{
    if (!r->not_socket) {
        union {
            struct cmsghdr align;
            char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
        } u;
        struct iovec iov = {buf, len};
        struct msghdr msg = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = u.buf,
                             .msg_controllen = sizeof(u.buf)};
        ssize_t n = recvmsg(r->fd, &msg, MSG_CMSG_CLOEXEC);
        if (n > 0) {
            keep_fds(r, &msg);
        }
        if (n >= 0 || errno != ENOTSOCK) {
            return n;
        }
        r->not_socket = true;
    }
    return read(r->fd, buf, len);
}

int
gw_mig_reader_take_fd(GwMigReader *r, unsigned *n_fds)
{
    int fd = r->n_fds ? r->fds[0] : -1;

    *n_fds = r->n_fds + (r->fds_lost ? 1 : 0);
    if (r->n_fds) {
        memmove(r->fds, r->fds + 1, sizeof(int) * --r->n_fds);
    }
    return fd;
}

uint64_t
gw_mig_reader_bytes(const GwMigReader *r)
{
    return r->bytes;
}

bool
gw_mig_reader_wait(GwMigReader *r, int timeout_ms)
{
    struct pollfd p = {.fd = r->fd, .events = POLLIN};
    int n;

    do {
        n = poll(&p, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    return n > 0;
}

/*
 * Reads exactly `len` bytes.  Returns how many arrived before the end of
 * the fd (len when all did), or -1 with an IO error.
 */
static ssize_t
read_full(GwMigReader *r, void *buf, size_t len, GError **errp)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = read_some(r, (uint8_t *)buf + got, len - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_IO,
                        "migration stream: read failed at offset %" PRIu64
                        ": %s",
                        r->bytes, g_strerror(errno));
            return -1;
        }
        if (n == 0) {
            break;
        }
        got += n;
        r->bytes += n;
    }
    return got;
}

/*
 * read_full, with the end of the fd as an error: EOF with "ended before
 * <at_boundary>" if at_boundary is non-NULL and nothing arrived, else
 * TRUNCATED with "ended <inside>".
 */
static bool
read_exact(GwMigReader *r, void *buf, size_t len, const char *at_boundary,
           const char *inside, GError **errp)
{
    ssize_t n = read_full(r, buf, len, errp);

    if (n < 0) {
        return false;
    }
    if ((size_t)n == len) {
        return true;
    }
    if (n == 0 && at_boundary) {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_EOF,
                    "migration stream ended before %s", at_boundary);
    } else {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_TRUNCATED,
                    "migration stream ended %s (offset %" PRIu64 ")", inside,
                    r->bytes);
    }
    return false;
}

bool
gw_mig_reader_header(GwMigReader *r, GError **errp)
{
    uint8_t h[GW_MIG_STREAM_HEADER];

    if (!read_exact(r, h, sizeof(h), "its header", "inside its header", errp)) {
        return false;
    }
    if (memcmp(h, GW_MIG_MAGIC, 8) != 0) {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT,
                    "not a godwit migration stream");
        return false;
    }
    uint32_t version = gw_mig_ld32(h + 8), flags = gw_mig_ld32(h + 12);
    if (version > GW_MIG_VERSION) {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_VERSION,
                    "stream version %u is newer than this godwit's %u", version,
                    GW_MIG_VERSION);
        return false;
    }
    if (version == 0 || flags != 0) {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT,
                    "migration stream: bad header (version %u, flags 0x%x)",
                    version, flags);
        return false;
    }
    return true;
}

/* Checks a record header; the length is only trusted after this. */
static bool
check_record_header(const uint8_t *h, uint64_t offset, GError **errp)
{
    uint32_t type = gw_mig_ld32(h), len = gw_mig_ld32(h + 4);

    if (XXH3_64bits(h, 16) != gw_mig_ld64(h + 16)) {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_CHECKSUM,
                    "migration stream: corrupt record header at offset "
                    "%" PRIu64,
                    offset);
        return false;
    }
    if (len > GW_MIG_MAX_RECORD) {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_TOO_LARGE,
                    "migration stream: %s record at offset %" PRIu64
                    " has %u bytes, more than the limit of %u",
                    gw_mig_record_type_name(type), offset, len,
                    GW_MIG_MAX_RECORD);
        return false;
    }
    return true;
}

bool
gw_mig_read(GwMigReader *r, uint32_t *type, GBytes **payload, GError **errp)
{
    uint8_t h[GW_MIG_RECORD_HEADER];
    uint64_t offset = r->bytes;

    if (!read_exact(r, h, sizeof(h), "the end marker", "inside a record",
                    errp) ||
        !check_record_header(h, offset, errp)) {
        return false;
    }
    uint32_t len = gw_mig_ld32(h + 4);
    g_autofree uint8_t *data = g_malloc(len);
    if (!read_exact(r, data, len, NULL, "inside a record", errp)) {
        return false;
    }
    if (gw_mig_xxh3(data, len) != gw_mig_ld64(h + 8)) {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_CHECKSUM,
                    "migration stream: %s record at offset %" PRIu64
                    ": payload checksum mismatch",
                    gw_mig_record_type_name(gw_mig_ld32(h)), offset);
        return false;
    }
    *type = gw_mig_ld32(h);
    *payload = g_bytes_new_take(g_steal_pointer(&data), len);
    return true;
}
