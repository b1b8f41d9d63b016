/*
 * serial: a 16550A UART (COM1 at 0x3f8, IRQ 4).  A pure model: bytes
 * the guest transmits go to an output callback, bytes for the guest come
 * in through gw_serial_receive, and the interrupt line is a callback, so
 * the model is tested without a VM.
 *
 * Threads: callers hold the VM's device lock around every call
 * (bus accesses from vCPU threads, receive from the main thread).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <godwit/bus.h>
#include <godwit/vmstate.h>

#define GW_SERIAL_COM1_BASE 0x3f8
#define GW_SERIAL_COM1_IRQ  4
#define GW_SERIAL_PORTS     8

typedef void (*GwSerialOutFn)(gpointer opaque, uint8_t byte);
typedef void (*GwSerialIrqFn)(gpointer opaque, bool level);

typedef struct GwSerial GwSerial;

extern const GwDeviceOps gw_serial_ops;

/*
 * The UART's migratable state (object: GwSerial): the registers, the rx
 * FIFO, the pending THRE interrupt and the interrupt line's level.  The
 * callbacks are the destination's own.  Its post_load refuses FIFO
 * indexes out of range and drives the irq callback to the loaded level.
 * Saved and loaded on the main thread with the device lock held.
 */
extern const GwVmsd gw_serial_vmsd;

GwSerial *gw_serial_new(GwSerialOutFn out, GwSerialIrqFn irq, gpointer opaque);
void gw_serial_free(GwSerial *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwSerial, gw_serial_free)

/* Back to power-on state. */
void gw_serial_reset(GwSerial *s);

/* Queues bytes for the guest; returns how many fit in the FIFO. */
size_t gw_serial_receive(GwSerial *s, const uint8_t *buf, size_t len);
