/*
 * libFuzzer target for the simulators' virtqueue walkers and request
 * handlers (src/vdpa/sim/vring.c, blk.c, net.c): the guest controls
 * the descriptor table, the avail ring and every buffer.  The input is
 * guest memory: byte 0 picks the device (even: blk, odd: net) and the
 * queue, the rest is copied over the rings and buffers (a 64 KiB
 * region mapped at IOVA 0x10000; descriptors may point anywhere).  The
 * device's work function runs synchronously under its lock, as its
 * worker runs it.  Expected outcomes: completions, or NEEDS_RESET for
 * a malformed ring or DMA outside the IOTLB — never an access outside
 * the mapping (the region is surrounded by unmapped guard pages).
 *
 *   build-fuzz/tests/fuzz/fuzz-vring tests/fuzz/corpus/vring
 */
#include <sys/mman.h>
#include <godwit/config.h>
#include <godwit/vhost-uapi.h>
#include "fuzz-util.h"
#include "sim-priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define IOVA     0x10000ull
#define MEM_SIZE 0x10000u
#define QNUM     16u
#define DESC     0x0000u /* offsets in the region */
#define AVAIL    0x0100u
#define USED     0x0200u
#define MAX_RUNS 64 /* work() calls per input: a loop would be a hang */

static GwVdpaSimDev *devs[2];
static uint8_t *mem;

static void must_ioctl(GwVdpaSimDev *d, unsigned long req, void *arg);

static GwVdpaSimDev *
new_dev(const char *spec)
{
    g_autoptr(GwVdpaSimConfig) c = gw_vdpa_sim_config_parse(spec, NULL);
    GwVdpaSimDev *d = gw_sim_dev_new(c, NULL);

    g_assert(d && gw_sim_dev_open(d));
    g_assert(gw_sim_dev_ioctl(d, VHOST_SET_OWNER, NULL) == 0);
    return d;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    int fd = memfd_create("guest", MFD_CLOEXEC);
    uint8_t *area = mmap(NULL, MEM_SIZE + 2 * 4096, PROT_NONE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    fuzz_runtime_dir();
    g_assert(fd >= 0 && area != MAP_FAILED && ftruncate(fd, MEM_SIZE) == 0);
    mem = mmap(area + 4096, MEM_SIZE, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_FIXED, fd, 0);
    g_assert(mem != MAP_FAILED);
    devs[0] = new_dev("name=b,mgmtdev=vdpasim_blk,capacity=64K");
    devs[1] = new_dev("name=n,mgmtdev=vdpasim_net");
    return 0;
}

static void
must_ioctl(GwVdpaSimDev *d, unsigned long req, void *arg)
{
    g_assert(gw_sim_dev_ioctl(d, req, arg) == 0);
}

static void
set_status(GwVdpaSimDev *d, uint8_t s)
{
    must_ioctl(d, VHOST_VDPA_SET_STATUS, &s);
}

static ssize_t
iotlb(GwVdpaSimDev *d, uint8_t type)
{
    struct vhost_msg_v2 m = {
        .type = VHOST_IOTLB_MSG_V2,
        .iotlb = {.iova = IOVA,
                  .size = MEM_SIZE,
                  .uaddr = (uint64_t)(uintptr_t)mem,
                  .perm = VHOST_ACCESS_RW,
                  .type = type},
    };

    return gw_sim_dev_write(d, &m, sizeof(m));
}

/* A reset keeps vhost-vdpa's map: invalidate (EFAULT before the first
 * map), then map again. */
static void
map_memory(GwVdpaSimDev *d)
{
    iotlb(d, VHOST_IOTLB_INVALIDATE);
    g_assert(iotlb(d, VHOST_IOTLB_UPDATE) == sizeof(struct vhost_msg_v2));
}

/* Reset, features, the map, queue `q` at DESC/AVAIL/USED, DRIVER_OK. */
static void
start(GwVdpaSimDev *d, unsigned q)
{
    uint64_t f;
    struct vhost_vring_state num = {q, QNUM}, base = {q, 0}, on = {q, 1};
    struct vhost_vring_addr addr = {.index = q,
                                    .desc_user_addr = IOVA + DESC,
                                    .avail_user_addr = IOVA + AVAIL,
                                    .used_user_addr = IOVA + USED};

    set_status(d, 0);
    must_ioctl(d, VHOST_GET_BACKEND_FEATURES, &f);
    must_ioctl(d, VHOST_SET_BACKEND_FEATURES, &f);
    must_ioctl(d, VHOST_GET_FEATURES, &f);
    set_status(d, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    must_ioctl(d, VHOST_SET_FEATURES, &f);
    set_status(d, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                      VIRTIO_CONFIG_S_FEATURES_OK);
    map_memory(d);
    must_ioctl(d, VHOST_SET_VRING_NUM, &num);
    must_ioctl(d, VHOST_SET_VRING_BASE, &base);
    must_ioctl(d, VHOST_SET_VRING_ADDR, &addr);
    must_ioctl(d, VHOST_VDPA_SET_VRING_ENABLE, &on);
    set_status(d, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                      VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
}

/* What the worker does after a kick, here on this thread. */
static void
run(GwVdpaSimDev *d)
{
    unsigned n = 0;

    pthread_mutex_lock(&d->lock);
    while (d->type->work(d) && ++n < MAX_RUNS) {
    }
    pthread_mutex_unlock(&d->lock);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    GwVdpaSimDev *d;
    unsigned q;

    if (len < 1) {
        return 0;
    }
    d = devs[data[0] & 1];
    q = (data[0] >> 1) % d->type->nvqs;
    memset(mem, 0, MEM_SIZE);
    memcpy(mem, data + 1, MIN(len - 1, MEM_SIZE));
    pthread_mutex_lock(&d->lock);
    d->config_call_fd = -1;
    pthread_mutex_unlock(&d->lock);
    start(d, q);
    run(d);
    return 0;
}
