/*
 * libFuzzer target for the virtio-iommu section's loader
 * (gw_virtio_iommu_load, src/devices/virtio-iommu-state.c) over the unit
 * tests' fixture (tests/unit/iommu-fixture.c): each input is a section's
 * state (what follows the device id) loaded into a fresh IOMMU with
 * endpoints A and B, whose fake ops assert the header's promises (whole
 * pages, known flags, never mapped twice, never an unmap that cuts a
 * mapping).  A refused input must leave the IOMMU as it was (the same
 * query, both endpoints with the boot-bypass identity); a loaded one,
 * reset, must leave both with exactly the identity again: the IOMMU's
 * view and the endpoints' agree.  Seeds: sections saved by the source
 * of tests/unit/test-virtio-iommu-state.c (tests/fuzz/corpus/iommu-state).
 *
 *   build-fuzz/tests/fuzz/fuzz-iommu-state tests/fuzz/corpus/iommu-state
 */
#include <stdbool.h>
#include <string.h>
#include <godwit/mig-stream.h>
#include <godwit/util.h>
#include <godwit/virtio-pci.h>
#include "unit/iommu-fixture.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_runtime_dir(); /* quiet logs */
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    g_autofree char *before = NULL, *after = NULL;
    GwMigCursor c;
    bool ok;
    Fx f;

    fx_init(&f);
    before = fx_query(&f);
    gw_mig_cursor_init(&c, data, len);
    g_mutex_lock(&f.lock);
    ok = gw_virtio_iommu_load(f.iommu, &c, NULL);
    g_mutex_unlock(&f.lock);
    fx_run(&f);
    if (!ok) {
        after = fx_query(&f);
        g_assert(g_str_equal(before, after));
        fx_assert_identity(&f.ep[0]);
        fx_assert_identity(&f.ep[1]);
    }
    /* A system reset (MSI-X off too, whatever the input enabled): boot
     * bypass again. */
    g_mutex_lock(&f.lock);
    gw_virtio_pci_reset(gw_virtio_iommu_pci(f.iommu));
    g_mutex_unlock(&f.lock);
    fx_assert_identity(&f.ep[0]);
    fx_assert_identity(&f.ep[1]);
    fx_fini(&f);
    return 0;
}
