/*
 * 16550A UART.  Transmission completes at once (THR is always empty
 * again by the next access), so the transmit side is a byte handed to
 * the output callback plus the THRE interrupt; the receive side is a
 * 16-byte FIFO.
 */
#include <godwit/serial.h>
#include <godwit/vmstate.h>

enum {
    REG_DATA = 0, /* RBR / THR, DLL with DLAB */
    REG_IER = 1,  /* DLM with DLAB */
    REG_IIR = 2,  /* FCR on write */
    REG_LCR = 3,
    REG_MCR = 4,
    REG_LSR = 5,
    REG_MSR = 6,
    REG_SCR = 7,
};

#define IER_RDI    0x01
#define IER_THRI   0x02
#define IIR_NONE   0x01
#define IIR_THRI   0x02
#define IIR_RDI    0x04
#define IIR_FIFO   0xc0
#define LCR_DLAB   0x80
#define LSR_DR     0x01
#define LSR_THRE   0x20
#define LSR_TEMT   0x40
#define MCR_LOOP   0x10
#define FCR_ENABLE 0x01
#define FCR_CLR_RX 0x02
#define RX_FIFO    16

struct GwSerial {
    GwSerialOutFn out;
    GwSerialIrqFn irq;
    gpointer opaque;
    uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
    bool thr_pending; /* THRE interrupt raised and not yet acknowledged */
    bool irq_level;
    uint8_t rx[RX_FIFO];
    unsigned rx_head, rx_count;
};

static uint8_t
iir(const GwSerial *s)
{
    uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO : 0;

    if ((s->ier & IER_RDI) && s->rx_count) {
        return fifo | IIR_RDI;
    }
    if ((s->ier & IER_THRI) && s->thr_pending) {
        return fifo | IIR_THRI;
    }
    return fifo | IIR_NONE;
}

static void
update_irq(GwSerial *s)
{
    bool level = !(iir(s) & IIR_NONE);

    if (level != s->irq_level) {
        s->irq_level = level;
        s->irq(s->opaque, level);
    }
}

static void
rx_push(GwSerial *s, uint8_t byte)
{
    if (s->rx_count < RX_FIFO) {
        s->rx[(s->rx_head + s->rx_count++) % RX_FIFO] = byte;
    }
}

static uint8_t
rx_pop(GwSerial *s)
{
    uint8_t byte;

    if (!s->rx_count) {
        return 0;
    }
    byte = s->rx[s->rx_head];
    s->rx_head = (s->rx_head + 1) % RX_FIFO;
    s->rx_count--;
    return byte;
}

static void
transmit(GwSerial *s, uint8_t byte)
{
    if (s->mcr & MCR_LOOP) {
        rx_push(s, byte);
    } else {
        s->out(s->opaque, byte);
    }
    s->thr_pending = true;
}

static uint64_t
serial_read(void *dev, uint64_t offset, unsigned size)
{
    GwSerial *s = dev;
    bool dlab = s->lcr & LCR_DLAB;
    uint8_t v = 0;

    switch (offset) {
    case REG_DATA:
        v = dlab ? s->dll : rx_pop(s);
        break;
    case REG_IER:
        v = dlab ? s->dlm : s->ier;
        break;
    case REG_IIR:
        v = iir(s);
        if ((v & 0x0f) == IIR_THRI) {
            s->thr_pending = false; /* reading IIR acknowledges THRE */
        }
        break;
    case REG_LCR:
        v = s->lcr;
        break;
    case REG_MCR:
        v = s->mcr;
        break;
    case REG_LSR:
        v = LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0);
        break;
    case REG_MSR:
        /* Loopback wires DTR/RTS/OUT1/OUT2 to DSR/CTS/RI/DCD. */
        v = (s->mcr & MCR_LOOP) ? (uint8_t)((s->mcr & 0x0f) << 4) : 0xb0;
        break;
    case REG_SCR:
        v = s->scr;
        break;
    }
    update_irq(s);
    return v;
}

static void
serial_write(void *dev, uint64_t offset, uint64_t value, unsigned size)
{
    GwSerial *s = dev;
    bool dlab = s->lcr & LCR_DLAB;
    uint8_t v = (uint8_t)value;

    switch (offset) {
    case REG_DATA:
        if (dlab) {
            s->dll = v;
        } else {
            transmit(s, v);
        }
        break;
    case REG_IER:
        if (dlab) {
            s->dlm = v;
        } else {
            /* Enabling THRI with THR empty raises it, as on a 16550. */
            if (!(s->ier & IER_THRI) && (v & IER_THRI)) {
                s->thr_pending = true;
            }
            s->ier = v & 0x0f;
        }
        break;
    case REG_IIR:
        s->fcr = v & 0xc9;
        if (v & FCR_CLR_RX) {
            s->rx_count = 0;
        }
        break;
    case REG_LCR:
        s->lcr = v;
        break;
    case REG_MCR:
        s->mcr = v & 0x1f;
        break;
    case REG_SCR:
        s->scr = v;
        break;
    }
    update_irq(s);
}

const GwDeviceOps gw_serial_ops = {
    .name = "serial",
    .read = serial_read,
    .write = serial_write,
};

GwSerial *
gw_serial_new(GwSerialOutFn out, GwSerialIrqFn irq, gpointer opaque)
{
    GwSerial *s = g_new0(GwSerial, 1);
    s->out = out;
    s->irq = irq;
    s->opaque = opaque;
    gw_serial_reset(s);
    return s;
}

void
gw_serial_free(GwSerial *s)
{
    g_free(s);
}

void
gw_serial_reset(GwSerial *s)
{
    s->ier = s->lcr = s->mcr = s->scr = s->fcr = s->dlm = 0;
    s->dll = 12; /* 9600 baud */
    s->thr_pending = false;
    s->rx_head = s->rx_count = 0;
    update_irq(s);
}

/* Checks what indexes the FIFO, then puts the line where the source had
 * it: the destination's interrupt controller starts with it low. */
static bool
serial_post_load(void *obj, unsigned version, GError **errp)
{
    GwSerial *s = obj;

    if (s->rx_head >= RX_FIFO || s->rx_count > RX_FIFO) {
        g_set_error(errp, GW_MIG_ERROR, GW_MIG_ERROR_FORMAT,
                    "device serial: rx FIFO head %u, count %u out of range",
                    s->rx_head, s->rx_count);
        return false;
    }
    s->irq(s->opaque, s->irq_level);
    return true;
}

static const GwVmsdField serial_fields[] = {
    GW_VMSD_FIELD(GwSerial, ier, 1),
    GW_VMSD_FIELD(GwSerial, lcr, 1),
    GW_VMSD_FIELD(GwSerial, mcr, 1),
    GW_VMSD_FIELD(GwSerial, scr, 1),
    GW_VMSD_FIELD(GwSerial, fcr, 1),
    GW_VMSD_FIELD(GwSerial, dll, 1),
    GW_VMSD_FIELD(GwSerial, dlm, 1),
    GW_VMSD_FIELD(GwSerial, thr_pending, 1),
    GW_VMSD_FIELD(GwSerial, irq_level, 1),
    GW_VMSD_ARRAY(GwSerial, rx, 1),
    GW_VMSD_FIELD(GwSerial, rx_head, 1),
    GW_VMSD_FIELD(GwSerial, rx_count, 1),
    GW_VMSD_END,
};

const GwVmsd gw_serial_vmsd = {
    .name = "serial",
    .version = 1,
    .fields = serial_fields,
    .post_load = serial_post_load,
    .size = sizeof(GwSerial),
};

size_t
gw_serial_receive(GwSerial *s, const uint8_t *buf, size_t len)
{
    size_t n = MIN(len, (size_t)(RX_FIFO - s->rx_count));

    for (size_t i = 0; i < n; i++) {
        rx_push(s, buf[i]);
    }
    update_irq(s);
    return n;
}
