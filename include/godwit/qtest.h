/*
 * The qtest accelerator's server: QEMU's qtest line protocol on a unix
 * socket, so a test process can play the CPU of a board that has no
 * vCPUs (this machine may have no /dev/kvm).  The client sends one
 * command a line ("outl 0xcf8 0x80000000", "readq 0x1000", "write ADDR
 * LEN 0xHEX", …) and gets one reply line ("OK", "OK 0x…", "FAIL
 * reason"); "IRQ raise N" / "IRQ lower N" lines arrive between replies
 * once the client has sent "irq_intercept_in PATH".
 *
 * Replies match QEMU's system/qtest.c byte for byte for well-formed
 * commands.  Where QEMU asserts (an empty line, a port above 0xffff,
 * "read ADDR 0", a bad number), this server replies "FAIL <reason>" and
 * carries on: the input is untrusted.  Differences, by design:
 *  - "write" with too little data replies "FAIL …", not QEMU's "ERR …";
 *    bad hex digits fail instead of writing garbage.
 *  - "b64write" with fewer bytes than LEN zero-fills the rest; QEMU
 *    7.2 writes what follows the decoded bytes in its buffer (the
 *    base64 text itself) and logs "data length mismatch".
 *  - there is no virtual clock: "clock_step NS" and "clock_set NS" move
 *    a counter that only the client moves, and reply "OK <counter>";
 *    "clock_step" alone leaves it unchanged (no timer deadlines exist).
 *    No device timer depends on it.  (QEMU has these commands only
 *    with its qtest accelerator; under "-accel tcg -qtest" it replies
 *    "FAIL Unknown command".)
 *  - "irq_intercept_in" accepts any PATH (there is one interrupt
 *    controller) and then reports lines that are already high.
 *  - words may be separated by runs of spaces; a trailing '\r' is
 *    dropped; extra words fail.
 *
 * Threads: everything runs on the main thread, on the default
 * GMainContext; the ops are called from there.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

/* Longest accepted command line, the newline excluded. */
#define GW_QTEST_MAX_LINE (1024 * 1024)
/* Longest "read", "b64read", "write", "b64write" transfer. */
#define GW_QTEST_MAX_DATA (16 * 1024 * 1024)
/* Interrupt lines reported to the client: 0 … GW_QTEST_MAX_IRQ - 1. */
#define GW_QTEST_MAX_IRQ 256

/*
 * What the test's CPU reaches.  All callbacks are mandatory and run on
 * the main thread, one at a time.  Values are little-endian, as an x86
 * CPU sees them.  A read of nothing (no device, no RAM) should return
 * all ones and a write to nothing be dropped, as on real hardware: the
 * server always answers "OK" to in*, out*, read*, write*, like QEMU.
 */
typedef struct {
    uint32_t (*pio_read)(void *opaque, uint16_t port,
                         unsigned size); /* size 1,2,4 */
    void (*pio_write)(void *opaque, uint16_t port, unsigned size, uint32_t val);
    uint64_t (*mem_read)(void *opaque, uint64_t addr,
                         unsigned size); /* size 1,2,4,8: RAM or MMIO */
    void (*mem_write)(void *opaque, uint64_t addr, unsigned size, uint64_t val);
    /*
     * Bulk guest-physical access (read/write/memset/b64read/b64write),
     * len ≥ 1 and addr + len does not wrap; false if not all of it is
     * RAM or MMIO (the client then gets "FAIL").
     */
    bool (*mem_rw)(void *opaque, uint64_t addr, void *buf, size_t len,
                   bool write);
} GwQtestOps;

typedef struct GwQtest GwQtest;

/*
 * Listens on `path` (created 0600; a stale socket nobody listens on is
 * replaced, anything else is an error), one client at a time on the
 * default GMainContext: while a client is connected, the next waits in
 * the listen backlog, as with QEMU's chardev.  `ops` and `opaque` must
 * outlive the server.  Main thread.  NULL with *errp set if the socket
 * cannot be created.
 */
GwQtest *gw_qtest_new(const char *path, const GwQtestOps *ops, void *opaque,
                      GError **errp);

/* Closes the client and the socket and removes the socket file.  NULL ok. */
void gw_qtest_free(GwQtest *q);

/*
 * A legacy interrupt line changed: sent as "IRQ raise N" / "IRQ lower N"
 * to the client once it has sent irq_intercept_in; repeated levels are
 * not sent again.  Lines ≥ GW_QTEST_MAX_IRQ are ignored.  Main thread.
 */
void gw_qtest_set_irq(GwQtest *q, unsigned line, bool level);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwQtest, gw_qtest_free)
