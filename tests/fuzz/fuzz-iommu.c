/*
 * libFuzzer target for the virtio-iommu device model
 * (src/devices/virtio-iommu*.c) over the unit tests' fixture
 * (tests/unit/iommu-fixture.c): its PCI function driven as a driver
 * does, two fake endpoints whose ops keep the IOTLB they were told
 * about and assert the header's promises (whole pages, never mapped
 * twice, never an unmap that cuts a mapping).
 *
 * The input: byte 0 picks the features (bit 0 BYPASS_CONFIG, bit 1
 * MAP_UNMAP, bit 2 PROBE), byte 1 makes the n-th (bits 0-6; 0: none)
 * ops call of endpoint A (bit 7 clear) or B fail: one endpoint only,
 * so undoing is never refused too; the rest, in rounds of 8 KiB,
 * is copied over the request area of guest RAM (descriptor table at
 * 0x10000, avail ring at 0x10400, used ring at 0x10600, buffers from
 * 0x11000 on) and each round is kicked.  Descriptors may point
 * anywhere.  After the input, a device reset must leave both endpoints
 * with exactly the identity map: the IOMMU's view and theirs agree.
 *
 *   build-fuzz/tests/fuzz/fuzz-iommu tests/fuzz/corpus/iommu
 */
#include <stdbool.h>
#include <string.h>
#include "unit/iommu-fixture.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define AREA       0x10000u
#define AREA_SIZE  0x2000u
#define DESC       (AREA + 0x000)
#define AVAIL      (AREA + 0x400)
#define USED       (AREA + 0x600)
#define MAX_ROUNDS 16

static Fx fx;
static size_t fx_used; /* the fixture's RAM allocator after fx_init */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_runtime_dir();
    fx_init(&fx);
    fx_used = fx.tm->used;
    return 0;
}

static void
start(Fx *f, uint8_t pick)
{
    uint64_t features = 0x3; /* INPUT_RANGE, DOMAIN_RANGE */

    features |= pick & 1 ? 1ull << VIRTIO_IOMMU_F_BYPASS_CONFIG : 0;
    features |= pick & 2 ? 1ull << VIRTIO_IOMMU_F_MAP_UNMAP : 0;
    features |= pick & 4 ? 1ull << VIRTIO_IOMMU_F_PROBE : 0;
    fx_driver_features(f, features);
    fx_mmio_write(f, 0x16, 2, 0);
    fx_mmio_write(f, 0x20, 8, DESC);
    fx_mmio_write(f, 0x28, 8, AVAIL);
    fx_mmio_write(f, 0x30, 8, USED);
    fx_driver_ok(f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    uint8_t *area = fx.tm->base + AREA;

    if (len < 2) {
        return 0;
    }
    memset(area, 0, AREA_SIZE);
    fx.ep[data[1] >> 7].fail_op = data[1] & 0x7f;
    fx.tm->used = fx_used; /* the driver's rings again where they were */
    start(&fx, data[0]);
    data += 2;
    len -= 2;
    for (unsigned r = 0; r < MAX_ROUNDS && len; r++) {
        size_t n = MIN(len, (size_t)AREA_SIZE);

        memcpy(area, data, n);
        data += n;
        len -= n;
        fx_mmio_write(&fx, 0x3000, 2, 0);
        fx_run(&fx);
    }
    fx.ep[0].fail_op = fx.ep[1].fail_op = 0;
    fx_mmio_write(&fx, 0x14, 1, 0); /* device reset */
    fx_assert_identity(&fx.ep[0]);
    fx_assert_identity(&fx.ep[1]);
    fx_clear_calls(&fx);
    return 0;
}
