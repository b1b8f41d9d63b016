/*
 * libFuzzer target for what a guest reaches on the PCI side, without
 * the rest of the board: configuration cycles (0xCF8/0xCFC and ECAM),
 * BAR moves, virtio-pci's common, notify, ISR and device configuration,
 * the PCI_CFG window, MSI-X table and PBA — on the real vDPA device
 * model over a simulator (blk or net), with guest RAM the rings can
 * live in.  Many more inputs a second than fuzz-board: the two boards
 * are made once and each input starts from a system reset (what
 * system_reset does: the device model and the PCI function back to
 * power-on, RAM zeroed).
 *
 * The input is a sequence of operations of 12 bytes: kind, width,
 * where, a 16-bit offset, a 64-bit value (little-endian).  kind % 6:
 * 0/1 config write/read (slot in `where`), 2/3 MMIO write/read at BAR
 * `where % 2` as the guest placed it (or in the hole), 4 an 8-byte RAM
 * write (rings, buffers), 5 runs the main loop (config interrupts).
 * Byte 0 of the input picks the device (even: blk, odd: net).
 *
 *   build-fuzz/tests/fuzz/fuzz-pci tests/fuzz/corpus/pci
 */
#include <sys/mman.h>
#include <godwit/bus.h>
#include <godwit/config.h>
#include <godwit/memory.h>
#include <godwit/pci.h>
#include <godwit/vdpa-device.h>
#include <godwit/vdpa-sim.h>
#include <godwit/vdpa.h>
#include "fuzz-util.h"
#include "unit/irq-recorder.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define RAM_SIZE (1u << 20)
#define SLOT     1
#define OP_SIZE  12

typedef struct {
    GMutex lock; /* the device lock a vCPU exit would hold */
    GwBus *mmio;
    GwPciBus *pci;
    GwIrqRecorder rec;
    GwIrqChip irq;
    GwGuestMemory gm;
    GwVdpaDevice *dev;
} Board;

static GwVdpaSimRegistry *reg;
static int ram_fd;
static uint8_t *ram;
static Board boards[2]; /* blk, net */

static void
board_init(Board *b, const char *path)
{
    g_autofree char *spec = g_strdup_printf("path=%s,id=d0", path);
    g_autoptr(GwVdpaConfig) vc = gw_vdpa_config_parse(spec, NULL);
    g_autoptr(GwVdpaBackend) be = gw_vdpa_open(reg, path, NULL);

    g_assert(vc && be);
    g_mutex_init(&b->lock);
    b->gm = (GwGuestMemory){.fd = ram_fd,
                            .host = ram,
                            .size = RAM_SIZE,
                            .n_regions = 1,
                            .regions = {{0, RAM_SIZE, 0}}};
    b->irq = gw_irq_recorder_chip(&b->rec);
    b->mmio = gw_bus_new("mmio");
    b->pci = gw_pci_bus_new(0, b->mmio);
    g_assert(gw_bus_add(b->mmio, GW_PCI_ECAM_BASE, GW_PCI_ECAM_SIZE,
                        &gw_pci_ecam_ops, b->pci, NULL));
    b->dev = gw_vdpa_device_new(vc, be, &b->gm, &b->irq, &b->lock, NULL);
    g_assert(b->dev);
    g_assert(gw_pci_bus_plug(b->pci, gw_vdpa_device_pci(b->dev), SLOT, NULL));
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const specs[] = {
        "name=blk0,mgmtdev=vdpasim_blk,capacity=64K",
        "name=net0,mgmtdev=vdpasim_net",
    };

    fuzz_runtime_dir();
    reg = gw_vdpa_sim_registry_new(NULL, NULL);
    g_assert(reg);
    ram_fd = memfd_create("guest", MFD_CLOEXEC);
    g_assert(ram_fd >= 0 && ftruncate(ram_fd, RAM_SIZE) == 0);
    ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, ram_fd, 0);
    g_assert(ram != MAP_FAILED);
    for (unsigned i = 0; i < 2; i++) {
        g_autoptr(GwVdpaSimConfig) c = gw_vdpa_sim_config_parse(specs[i], NULL);
        g_autofree char *path = NULL;
        g_assert(gw_vdpa_sim_add(reg, c, &path, NULL));
        board_init(&boards[i], path);
    }
    return 0;
}

/* system_reset for this board: no interrupt route may survive it. */
static void
board_reset(Board *b)
{
    g_mutex_lock(&b->lock);
    gw_vdpa_device_reset(b->dev);
    gw_pci_device_reset(gw_vdpa_device_pci(b->dev));
    g_mutex_unlock(&b->lock);
    fuzz_iterate();
    g_assert(b->rec.irqfds == 0 && b->rec.ioeventfds == 0);
    memset(ram, 0, RAM_SIZE);
}

/* Where BAR n of the slot is now, as the guest programmed it. */
static uint64_t
bar_addr(Board *b, unsigned n)
{
    uint32_t lo = gw_pci_config_read(b->pci, SLOT << 3, 0x10 + 4 * n, 4);
    return lo & ~0xfull;
}

static void
run_op(Board *b, const uint8_t *op)
{
    static const unsigned widths[] = {1, 2, 4, 8};
    unsigned size = widths[op[1] & 3];
    uint16_t off = op[3] | op[4] << 8;
    uint64_t v, addr;

    memcpy(&v, op + 4, 8);
    v >>= 8; /* the offset's high byte is the value's low byte: fine */
    g_mutex_lock(&b->lock);
    switch (op[0] % 6) {
    case 0:
        gw_pci_config_write(b->pci, (op[2] & 31) << 3, off & 0xfff,
                            MIN(size, 4), (uint32_t)v);
        break;
    case 1:
        gw_pci_config_read(b->pci, (op[2] & 31) << 3, off & 0xfff,
                           MIN(size, 4));
        break;
    case 2:
    case 3:
        addr = (op[2] & 2) ? GW_PCI_MMIO_BASE + ((uint64_t)off << 8)
                           : bar_addr(b, op[2] & 1) + off;
        if (op[0] % 6 == 2) {
            gw_bus_write(b->mmio, addr, size, v);
        } else {
            gw_bus_read(b->mmio, addr, size, &v);
        }
        break;
    case 4:
        memcpy(ram + ((uint32_t)off << 4) % (RAM_SIZE - 8), &v, 8);
        break;
    default:
        break;
    }
    g_mutex_unlock(&b->lock);
    if (op[0] % 6 == 5) {
        fuzz_iterate();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    Board *b;

    if (len < 1) {
        return 0;
    }
    b = &boards[data[0] & 1];
    board_reset(b);
    for (size_t at = 1; at + OP_SIZE <= len; at += OP_SIZE) {
        run_op(b, data + at);
    }
    fuzz_iterate();
    return 0;
}
