/*
 * A blocking qtest client for tests: plays the CPU against a qtest
 * server (godwit --qtest, or qemu -qtest) over its unix socket.
 *
 * Two layers.  gw_qt_request() sends a line and returns the reply, or
 * an error on timeout or a closed connection: for tests of the protocol
 * itself.  Everything else asserts that the server said "OK" and
 * returns the value, as a test wants: a test that breaks the device
 * fails at the first access that goes wrong, with both lines logged.
 *
 * "IRQ raise N" / "IRQ lower N" lines may arrive before any reply; they
 * are taken out and remembered per line (gw_qt_irq_level(),
 * gw_qt_irq_raises()).
 *
 * Not thread-safe: one thread per GwQt.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#define GW_QT_MAX_IRQ 256

typedef struct GwQt GwQt;

/*
 * Connects to the socket at `path`, retrying until it exists or
 * `timeout_ms` have passed; every later reply must also come within
 * `timeout_ms`.  NULL with *errp on failure.
 */
GwQt *gw_qt_connect(const char *path, int timeout_ms, GError **errp);
void gw_qt_free(GwQt *qt);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwQt, gw_qt_free)

/*
 * Sends `line` (no newline) and returns the reply line without its
 * newline ("OK …", "FAIL …"), IRQ lines set aside.  Caller frees.  NULL
 * with *errp if the connection closes or no reply comes in time.
 */
char *gw_qt_request(GwQt *qt, const char *line, GError **errp);

/* Copies everything sent from now on to `fd` (-1: stop; not closed). */
void gw_qt_set_trace(GwQt *qt, int fd);

/* Sends raw bytes as they are (for malformed-input tests). */
bool gw_qt_send_raw(GwQt *qt, const void *buf, size_t len, GError **errp);
/* The next reply line, IRQ lines set aside; NULL with *errp as above. */
char *gw_qt_read_reply(GwQt *qt, GError **errp);

/* Asserts an "OK" reply; returns what follows "OK " ("" if nothing). */
char *gw_qt_must(GwQt *qt, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

void gw_qt_outb(GwQt *qt, uint16_t port, uint8_t v);
void gw_qt_outw(GwQt *qt, uint16_t port, uint16_t v);
void gw_qt_outl(GwQt *qt, uint16_t port, uint32_t v);
uint8_t gw_qt_inb(GwQt *qt, uint16_t port);
uint16_t gw_qt_inw(GwQt *qt, uint16_t port);
uint32_t gw_qt_inl(GwQt *qt, uint16_t port);

void gw_qt_writeb(GwQt *qt, uint64_t addr, uint8_t v);
void gw_qt_writew(GwQt *qt, uint64_t addr, uint16_t v);
void gw_qt_writel(GwQt *qt, uint64_t addr, uint32_t v);
void gw_qt_writeq(GwQt *qt, uint64_t addr, uint64_t v);
uint8_t gw_qt_readb(GwQt *qt, uint64_t addr);
uint16_t gw_qt_readw(GwQt *qt, uint64_t addr);
uint32_t gw_qt_readl(GwQt *qt, uint64_t addr);
uint64_t gw_qt_readq(GwQt *qt, uint64_t addr);

/* Bulk guest-physical access: "read"/"write" when small, base64 else. */
void gw_qt_memread(GwQt *qt, uint64_t addr, void *buf, size_t len);
void gw_qt_memwrite(GwQt *qt, uint64_t addr, const void *buf, size_t len);
void gw_qt_memset(GwQt *qt, uint64_t addr, uint8_t v, size_t len);

/* "clock_step NS"; returns the server's clock. */
int64_t gw_qt_clock_step(GwQt *qt, int64_t ns);

/* "irq_intercept_in PATH" ("ioapic" on QEMU's pc machine). */
void gw_qt_irq_intercept(GwQt *qt, const char *path);
/*
 * The level of `line` as last reported, after taking in whatever IRQ
 * lines have already arrived (does not block).
 */
bool gw_qt_irq_level(GwQt *qt, unsigned line);
/* How many times `line` was raised so far (same intake as above). */
unsigned gw_qt_irq_raises(GwQt *qt, unsigned line);
/* Waits up to the timeout for `line` to reach `level`; false if not. */
bool gw_qt_irq_wait(GwQt *qt, unsigned line, bool level);

/* PCI configuration space through 0xCF8/0xCFC (mechanism #1); with a
 * segment other than 0 (GW_QT_SBDF), through that segment's ECAM window
 * (godwit's: 1 MiB per segment from 0xE0000000). */
#define GW_QT_BDF(bus, dev, fn) ((bus) << 8 | (dev) << 3 | (fn))
#define GW_QT_SBDF(seg, bus, dev, fn)                                          \
    ((unsigned)(seg) << 16 | GW_QT_BDF(bus, dev, fn))
uint32_t gw_qt_pci_read(GwQt *qt, unsigned bdf, unsigned off, unsigned size);
void gw_qt_pci_write(GwQt *qt, unsigned bdf, unsigned off, unsigned size,
                     uint32_t v);
