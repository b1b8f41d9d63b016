/*
 * libFuzzer target for the qtest line protocol alone (src/qtest.c):
 * the parser, every command, the reply and IRQ paths, against a fake
 * target — 64 KiB of RAM at RAM_BASE, ports that answer, all ones
 * elsewhere — so inputs run far faster than fuzz-board's whole board.
 * Each input is what one client sends over the real socket.  The fake
 * checks that every access the server makes is one it may make: bulk
 * ranges never wrap, sizes are 1/2/4/8.
 *
 *   build-fuzz/tests/fuzz/fuzz-qtest -dict=tests/fuzz/qtest.dict \
 *       tests/fuzz/corpus/qtest
 */
#include <godwit/qtest.h>
#include <godwit/util.h>
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define RAM_BASE 0x100000u
#define RAM_SIZE 0x10000u
#define IRQ_PORT 0x510 /* writing L | level << 8 sets line L */

static GwQtest *server;
static char *sock_path;
static uint8_t ram[RAM_SIZE];

static bool
in_ram(uint64_t addr, size_t len)
{
    return addr >= RAM_BASE && len <= RAM_SIZE &&
           addr - RAM_BASE <= RAM_SIZE - len;
}

static uint32_t
pio_read(void *opaque, uint16_t port, unsigned size)
{
    g_assert(size == 1 || size == 2 || size == 4);
    return 0x12345678u ^ port;
}

static void
pio_write(void *opaque, uint16_t port, unsigned size, uint32_t val)
{
    g_assert(size == 1 || size == 2 || size == 4);
    if (port == IRQ_PORT) {
        gw_qtest_set_irq(server, val & 0xff, (val >> 8) & 1);
    }
}

static uint64_t
mem_read(void *opaque, uint64_t addr, unsigned size)
{
    uint64_t v = ~0ull;

    g_assert(size == 1 || size == 2 || size == 4 || size == 8);
    if (in_ram(addr, size)) {
        memcpy(&v, ram + (addr - RAM_BASE), size);
    }
    return v;
}

static void
mem_write(void *opaque, uint64_t addr, unsigned size, uint64_t val)
{
    g_assert(size == 1 || size == 2 || size == 4 || size == 8);
    if (in_ram(addr, size)) {
        memcpy(ram + (addr - RAM_BASE), &val, size);
    }
}

static bool
mem_rw(void *opaque, uint64_t addr, void *buf, size_t len, bool write)
{
    g_assert(len >= 1 && addr + (len - 1) >= addr); /* the contract */
    if (!in_ram(addr, len)) {
        return false;
    }
    if (write) {
        memcpy(ram + (addr - RAM_BASE), buf, len);
    } else {
        memcpy(buf, ram + (addr - RAM_BASE), len);
    }
    return true;
}

static const GwQtestOps ops = {pio_read, pio_write, mem_read, mem_write,
                               mem_rw};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = fuzz_runtime_dir();

    sock_path = g_build_filename(dir, "qtest.sock", NULL);
    server = gw_qtest_new(sock_path, &ops, NULL, NULL);
    g_assert(server);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    int fd = gw_unix_connect(sock_path);

    g_assert(fd >= 0);
    memset(ram, 0, sizeof(ram));
    fuzz_send(fd, data, len, NULL, NULL, NULL);
    fuzz_finish(fd);
    /* The server takes the next client only once this one is gone. */
    fuzz_iterate();
    return 0;
}
