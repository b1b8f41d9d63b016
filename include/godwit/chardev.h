/*
 * chardev: where a serial port's bytes go and come from, per --serial:
 * off, stdio, file=<path> (output only) or socket=<path> (a Unix socket
 * server; one client at a time, output dropped while none is connected),
 * or an fd another process opened (GW_SERIAL_FD, output only; QEMU's
 * -chardev file,path=/dev/fdset/N).
 * The file and the socket are created 0600 whatever the umask; the
 * socket is a GwListener (include/godwit/listener.h).
 *
 * Threads: gw_chardev_write may be called from any thread (vCPU threads
 * hold the device lock when they call it).  A socket client's fd is
 * non-blocking, so a slow client loses output rather than stalling a vCPU;
 * stdio and files are written as they are.  Everything else,
 * including the input callback, runs on the main thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>
#include <godwit/config.h>

typedef void (*GwChardevInputFn)(gpointer opaque, const uint8_t *buf,
                                 size_t len);

typedef struct GwChardev GwChardev;

/* NULL with *errp if the file or socket cannot be created. */
GwChardev *gw_chardev_new(GwSerialMode mode, const char *path,
                          GwChardevInputFn input, gpointer opaque,
                          GError **errp);
void gw_chardev_free(GwChardev *ch);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwChardev, gw_chardev_free)

void gw_chardev_write(GwChardev *ch, uint8_t byte);
