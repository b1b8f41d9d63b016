/*
 * KVM state for migration: a guest moved between two VMs carries on
 * where it stopped, get/set round trips, dirty logging, CPUID checks.
 *
 * The guests are a few bytes of 32-bit code placed at CODE_GPA and
 * started by gw_vcpus_load_boot (flat protected mode, EBX = 0).
 */
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <glib.h>
#include <godwit/kvm-state.h>
#include <godwit/memory.h>
#include <godwit/util.h>
#include <godwit/vcpu.h>

#define RAM_SIZE    (2u << 20)
#define CODE_GPA    0x10000u
#define COUNTER_GPA 0x2000u
#define GO_GPA      0x3000u
#define TARGET_GPA  0x15000u
#define PORT        0x80u
#define WAIT_US     (20 * G_USEC_PER_SEC)

/*
 * loop: inc ebx; mov [COUNTER_GPA], ebx; in eax, PORT; mov esi, eax;
 *       jmp loop
 * The device answers the n-th IN with n.  IN is the instruction KVM
 * finishes only on the KVM_RUN after the exit (it stores EAX and moves
 * RIP then), also when it emulates it, as PVM does with 32-bit code;
 * KVM's emulator finishes an OUT before exiting.
 */
static const uint8_t counter_code[] = {
    0x43, 0x89, 0x1d, 0x00, 0x20, 0x00, 0x00,
    0xe5, PORT, 0x89, 0xc6, 0xeb, 0xf3,
};
#define RIP_LOOP (CODE_GPA + 0)
#define RIP_MOV  (CODE_GPA + 1)
#define RIP_IN   (CODE_GPA + 7)
#define RIP_ESI  (CODE_GPA + 9)
#define RIP_JMP  (CODE_GPA + 11)

/*
 * wait: mov eax, [GO_GPA]; test eax, eax; jz wait
 *       mov dword [TARGET_GPA], 0xdeadbeef; cli; hlt; jmp hlt
 */
static const uint8_t dirty_code[] = {
    0xa1, 0x00, 0x30, 0x00, 0x00, 0x85, 0xc0, 0x74, 0xf7, 0xc7, 0x05, 0x00,
    0x50, 0x01, 0x00, 0xef, 0xbe, 0xad, 0xde, 0xfa, 0xf4, 0xeb, 0xfd,
};

/* The INs the guest did from PORT; under the VM's device lock. */
typedef struct {
    uint64_t reads;
    gulong delay_us;
} PortLog;

static uint64_t
port_read(void *dev, uint64_t offset, unsigned size)
{
    PortLog *p = dev;

    /* A slow device: a pause request then almost always finds the vCPU
     * between an IN exit and the KVM_RUN that completes it. */
    if (p->delay_us) {
        g_usleep(p->delay_us);
    }
    return ++p->reads;
}

static const GwDeviceOps port_ops = {"test-port", port_read, NULL};

static bool
have_kvm(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

    if (fd < 0) {
        g_test_skip("no /dev/kvm");
        return false;
    }
    close(fd);
    return true;
}

typedef struct {
    GwGuestMemory *mem;
    GwKvm *kvm;
    GwBus *pio, *mmio;
    GMutex dev_lock;
    GwVcpus *vcpus;
    PortLog port;
    gint fatal;
} TestVm;

static void
on_fatal(gpointer opaque, unsigned cpu, const char *why)
{
    TestVm *vm = opaque;

    g_printerr("vCPU %u died: %s\n", cpu, why);
    g_atomic_int_set(&vm->fatal, 1);
}

static const GwVcpuHooks hooks = {on_fatal};

/* A VM with one vCPU; with `code`, booted into it. */
static TestVm *
test_vm_new(const uint8_t *code, size_t len)
{
    TestVm *vm = g_new0(TestVm, 1);
    GwBootImage img = {.entry = CODE_GPA};
    GError *err = NULL;

    g_mutex_init(&vm->dev_lock);
    vm->mem = gw_mem_new(RAM_SIZE, false, true, &err);
    g_assert_no_error(err);
    vm->kvm = gw_kvm_new(&err);
    g_assert_no_error(err);
    g_assert_true(gw_kvm_add_memory(vm->kvm, vm->mem, &err));
    vm->pio = gw_bus_new("pio");
    vm->mmio = gw_bus_new("mmio");
    g_assert_true(gw_bus_add(vm->pio, PORT, 4, &port_ops, &vm->port, &err));
    vm->vcpus = gw_vcpus_new(vm->kvm, 1, vm->pio, vm->mmio, &vm->dev_lock,
                             &hooks, vm, &err);
    g_assert_no_error(err);
    if (code) {
        g_assert_true(gw_mem_write(vm->mem, CODE_GPA, code, len));
        g_assert_true(gw_vcpus_load_boot(vm->vcpus, vm->mem, &img, &err));
        g_assert_no_error(err);
    }
    return vm;
}

static void
test_vm_free(TestVm *vm)
{
    gw_vcpus_free(vm->vcpus);
    gw_bus_free(vm->pio);
    gw_bus_free(vm->mmio);
    gw_kvm_free(vm->kvm);
    gw_mem_free(vm->mem);
    g_mutex_clear(&vm->dev_lock);
    g_free(vm);
}

static uint64_t
port_reads(TestVm *vm)
{
    uint64_t n;

    g_mutex_lock(&vm->dev_lock);
    n = vm->port.reads;
    g_mutex_unlock(&vm->dev_lock);
    return n;
}

/* Bounded wait until the guest has done `n` INs. */
static void
wait_port_reads(TestVm *vm, uint64_t n)
{
    gint64 deadline = g_get_monotonic_time() + WAIT_US;

    while (port_reads(vm) < n && !g_atomic_int_get(&vm->fatal)) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
    g_assert_false(g_atomic_int_get(&vm->fatal));
}

static uint32_t
guest_u32(TestVm *vm, uint64_t gpa)
{
    uint32_t v;

    g_assert_true(gw_mem_read(vm->mem, gpa, &v, sizeof(v)));
    return v;
}

/* INs done, by the registers. */
static uint64_t
ins_done(const GwVcpuState *st)
{
    uint64_t rip = st->regs.rip;

    return (uint32_t)st->regs.rbx - (rip == RIP_MOV || rip == RIP_IN);
}

/*
 * The INs the device answered (plus `before`, answered on another VM)
 * are exactly those the registers say were done, and the last answer is
 * in ESI (or still in EAX, just before the MOV).  A vCPU paused with its
 * IN half done sits at RIP_IN one IN ahead, its EAX not yet loaded.
 */
static void
assert_consistent(TestVm *vm, const GwVcpuState *st, uint64_t before)
{
    uint64_t rip = st->regs.rip, done = ins_done(st);
    uint32_t ebx = (uint32_t)st->regs.rbx;

    g_assert_cmphex(rip, >=, RIP_LOOP);
    g_assert_cmphex(rip, <=, RIP_JMP);
    g_assert_cmpuint(port_reads(vm) + before, ==, done);
    if (rip == RIP_ESI) {
        g_assert_cmpuint((uint32_t)st->regs.rax, ==, port_reads(vm));
    } else if (port_reads(vm)) {
        g_assert_cmpuint((uint32_t)st->regs.rsi, ==, port_reads(vm));
    }
    g_assert_cmpuint(guest_u32(vm, COUNTER_GPA), ==,
                     rip == RIP_MOV ? ebx - 1 : ebx);
}

static void
get_state(TestVm *vm, GwVcpuState *st)
{
    GError *err = NULL;

    g_assert_true(gw_vcpus_get_state(vm->vcpus, 0, st, &err));
    g_assert_no_error(err);
}

static void
set_state(TestVm *vm, const GwVcpuState *st)
{
    GError *err = NULL;

    g_assert_true(gw_vcpus_set_state(vm->vcpus, 0, st, &err));
    g_assert_no_error(err);
}

/*
 * `b` was read after `a` was written.  The TSC is the only field KVM
 * moves on its own: it kept counting between the set and the get.
 */
static void
assert_state_equal(const GwVcpuState *a, const GwVcpuState *b)
{
    g_assert_cmpmem(&a->regs, sizeof(a->regs), &b->regs, sizeof(b->regs));
    g_assert_cmpmem(&a->sregs, sizeof(a->sregs), &b->sregs, sizeof(b->sregs));
    g_assert_cmpmem(&a->xcrs, sizeof(a->xcrs), &b->xcrs, sizeof(b->xcrs));
    g_assert_cmpmem(&a->debugregs, sizeof(a->debugregs), &b->debugregs,
                    sizeof(b->debugregs));
    g_assert_cmpmem(&a->events, sizeof(a->events), &b->events,
                    sizeof(b->events));
    g_assert_cmpuint(a->mp_state.mp_state, ==, b->mp_state.mp_state);
    g_assert_cmpmem(&a->lapic, sizeof(a->lapic), &b->lapic, sizeof(b->lapic));
    g_assert_cmpuint(a->xsave_size, ==, b->xsave_size);
    g_assert_cmpmem(a->xsave, a->xsave_size, b->xsave, b->xsave_size);
    g_assert_cmpuint(a->n_msrs, ==, b->n_msrs);
    for (uint32_t i = 0; i < a->n_msrs; i++) {
        g_assert_cmphex(a->msrs[i].index, ==, b->msrs[i].index);
        if (a->msrs[i].index == GW_MSR_IA32_TSC) {
            g_assert_cmpuint(b->msrs[i].data, >=, a->msrs[i].data);
        } else if (a->msrs[i].data != b->msrs[i].data) {
            g_error("MSR 0x%x: 0x%llx became 0x%llx", a->msrs[i].index,
                    a->msrs[i].data, b->msrs[i].data);
        }
    }
}

static uint64_t
msr_value(const GwVcpuState *st, uint32_t index)
{
    for (uint32_t i = 0; i < st->n_msrs; i++) {
        if (st->msrs[i].index == index) {
            return st->msrs[i].data;
        }
    }
    g_error("MSR 0x%x not in the vCPU state", index);
}

/* Runs the counter guest on A, pausing it several times, then moves it
 * to B (vCPU state, VM state, RAM) and lets B go on. */
static void
test_migrate_counter(void)
{
    g_autofree GwVcpuState *st = g_new0(GwVcpuState, 1);
    g_autofree GwVcpuState *back = g_new0(GwVcpuState, 1);
    GwKvmVmState vm_st;
    GError *err = NULL;
    TestVm *a, *b;
    uint64_t a_reads;
    uint32_t a_counter;

    if (!have_kvm()) {
        return;
    }
    a = test_vm_new(counter_code, sizeof(counter_code));
    a->port.delay_us = 200;
    g_assert_true(gw_vcpus_start(a->vcpus, false, &err));
    for (unsigned round = 1; round <= 8; round++) {
        wait_port_reads(a, round * 10);
        gw_vcpus_pause(a->vcpus);
        get_state(a, st);
        assert_consistent(a, st, 0);
        if (round < 8) {
            gw_vcpus_resume(a->vcpus);
        }
    }
    g_assert_cmpuint(msr_value(st, GW_MSR_IA32_TSC), >, 0);
    g_assert_true(gw_kvm_get_vm_state(a->kvm, &vm_st, &err));
    a_reads = port_reads(a);
    a_counter = guest_u32(a, COUNTER_GPA);

    b = test_vm_new(NULL, 0);
    memcpy(b->mem->host, a->mem->host, RAM_SIZE);
    test_vm_free(a);
    set_state(b, st);
    g_assert_true(gw_kvm_set_vm_state(b->kvm, &vm_st, &err));
    g_assert_no_error(err);
    get_state(b, back);
    assert_state_equal(st, back);

    g_assert_true(gw_vcpus_start(b->vcpus, false, &err));
    wait_port_reads(b, 10);
    gw_vcpus_pause(b->vcpus);
    /* B counts on from A, not from 0, and no IN was lost or repeated:
     * A's and B's answers add up to what B's registers say. */
    g_assert_cmpuint(guest_u32(b, COUNTER_GPA), >=, a_counter + 10);
    get_state(b, back);
    g_assert_cmpuint(back->regs.rbx, >=, st->regs.rbx + 10);
    g_assert_cmpuint(ins_done(back), ==, a_reads + port_reads(b));
    test_vm_free(b);
}

static void
test_round_trip(void)
{
    g_autofree GwVcpuState *st = g_new0(GwVcpuState, 1);
    g_autofree GwVcpuState *back = g_new0(GwVcpuState, 1);
    GwKvmVmState v1, v2;
    GError *err = NULL;
    TestVm *vm;

    if (!have_kvm()) {
        return;
    }
    vm = test_vm_new(counter_code, sizeof(counter_code));
    get_state(vm, st);
    g_assert_cmphex(st->regs.rip, ==, CODE_GPA);
    g_assert_cmpuint(st->xsave_size, >=, 4096);
    set_state(vm, st);
    get_state(vm, back);
    assert_state_equal(st, back);

    g_assert_true(gw_kvm_get_vm_state(vm->kvm, &v1, &err));
    g_assert_true(gw_kvm_set_vm_state(vm->kvm, &v1, &err));
    g_assert_true(gw_kvm_get_vm_state(vm->kvm, &v2, &err));
    g_assert_no_error(err);
    g_assert_cmpmem(&v1.pic_master, sizeof(v1.pic_master), &v2.pic_master,
                    sizeof(v2.pic_master));
    g_assert_cmpmem(&v1.pic_slave, sizeof(v1.pic_slave), &v2.pic_slave,
                    sizeof(v2.pic_slave));
    g_assert_cmpmem(&v1.ioapic, sizeof(v1.ioapic), &v2.ioapic,
                    sizeof(v2.ioapic));
    /* KVM_SET_PIT2 reloads each counter "now": count_load_time moves. */
    for (unsigned i = 0; i < 3; i++) {
        v1.pit.channels[i].count_load_time = 0;
        v2.pit.channels[i].count_load_time = 0;
    }
    g_assert_cmpmem(&v1.pit, sizeof(v1.pit), &v2.pit, sizeof(v2.pit));
    /* kvmclock runs on from the value set. */
    g_assert_cmpuint(v2.clock.clock, >=, v1.clock.clock);
    test_vm_free(vm);
}

static void
test_refused_while_running(void)
{
    g_autofree GwVcpuState *st = g_new0(GwVcpuState, 1);
    GError *err = NULL;
    TestVm *vm;

    if (!have_kvm()) {
        return;
    }
    vm = test_vm_new(counter_code, sizeof(counter_code));
    g_assert_true(gw_vcpus_start(vm->vcpus, false, &err));
    g_assert_false(gw_vcpus_get_state(vm->vcpus, 0, st, &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_BUSY);
    g_clear_error(&err);
    g_assert_false(gw_vcpus_set_state(vm->vcpus, 0, st, &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_BUSY);
    g_clear_error(&err);
    gw_vcpus_pause(vm->vcpus);
    g_assert_false(gw_vcpus_get_state(vm->vcpus, 1, st, &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_cmpuint(gw_vcpus_count(vm->vcpus), ==, 1);
    test_vm_free(vm);
}

/* ---- dirty log ---- */

typedef struct {
    GArray *pages; /* uint64_t gpa */
    uint64_t total;
} DirtySet;

static void
collect_dirty(void *opaque, uint64_t gpa_base, const unsigned long *bits,
              uint64_t npages)
{
    DirtySet *d = opaque;

    d->total += npages;
    for (uint64_t n = 0; n < npages; n++) {
        if (bits[n / 64] & (1ul << (n % 64))) {
            uint64_t gpa = gpa_base + n * GW_PAGE_SIZE;
            g_array_append_val(d->pages, gpa);
        }
    }
}

static GArray *
sync_dirty(TestVm *vm)
{
    DirtySet d = {g_array_new(FALSE, FALSE, sizeof(uint64_t)), 0};
    GError *err = NULL;

    g_assert_true(gw_kvm_dirty_log_sync(vm->kvm, collect_dirty, &d, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(d.total, ==, RAM_SIZE / GW_PAGE_SIZE);
    return d.pages;
}

static void
test_dirty_log(void)
{
    const uint32_t go = 1;
    gint64 deadline = g_get_monotonic_time() + WAIT_US;
    GError *err = NULL;
    GArray *pages;
    TestVm *vm;

    if (!have_kvm()) {
        return;
    }
    vm = test_vm_new(dirty_code, sizeof(dirty_code));
    g_assert_true(gw_vcpus_start(vm->vcpus, false, &err));
    g_assert_true(gw_kvm_dirty_log_start(vm->kvm, &err));
    g_assert_no_error(err);
    g_test_message("manual dirty-log protection: %s",
                   gw_kvm_dirty_log_manual(vm->kvm) ? "yes" : "no");

    /* The first sync after start reports all of RAM. */
    pages = sync_dirty(vm);
    g_assert_cmpuint(pages->len, ==, RAM_SIZE / GW_PAGE_SIZE);
    g_array_unref(pages);

    /* Our own write (host mapping) is not logged; the guest's is. */
    g_assert_true(gw_mem_write(vm->mem, GO_GPA, &go, sizeof(go)));
    while (guest_u32(vm, TARGET_GPA) != 0xdeadbeef) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_assert_false(g_atomic_int_get(&vm->fatal));
        g_usleep(1000);
    }
    pages = sync_dirty(vm);
    g_assert_cmpuint(pages->len, ==, 1);
    g_assert_cmphex(g_array_index(pages, uint64_t, 0), ==, TARGET_GPA);
    g_array_unref(pages);

    /* Nothing written since: nothing reported. */
    pages = sync_dirty(vm);
    g_assert_cmpuint(pages->len, ==, 0);
    g_array_unref(pages);

    g_assert_true(gw_kvm_dirty_log_stop(vm->kvm, &err));
    g_assert_false(gw_kvm_dirty_log_sync(vm->kvm, collect_dirty, NULL, &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_BUSY);
    g_clear_error(&err);
    test_vm_free(vm);
}

/* ---- CPUID (no KVM) ---- */

static struct kvm_cpuid2 *
make_cpuid(void)
{
    static const struct kvm_cpuid_entry2 base[] = {
        /* "GenuineIntel" */
        {.function = 0,
         .eax = 0xd,
         .ebx = 0x756e6547,
         .ecx = 0x6c65746e,
         .edx = 0x49656e69},
        {.function = 1, .eax = 0x906ea, .ecx = 0xf7fa3223, .edx = 0x0f8bfbff},
        {.function = 7,
         .index = 0,
         .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
         .ebx = 0x009c27ab},
        {.function = 0xd,
         .index = 1,
         .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
         .eax = 0xf},
    };
    struct kvm_cpuid2 *c = g_malloc0(sizeof(*c) + sizeof(base));

    c->nent = G_N_ELEMENTS(base);
    memcpy(c->entries, base, sizeof(base));
    return c;
}

static struct kvm_cpuid_entry2 *
entry(struct kvm_cpuid2 *c, uint32_t leaf, uint32_t subleaf)
{
    for (uint32_t i = 0; i < c->nent; i++) {
        if (c->entries[i].function == leaf && c->entries[i].index == subleaf) {
            return &c->entries[i];
        }
    }
    g_assert_not_reached();
}

static void
no_change(struct kvm_cpuid2 *dst)
{
}

static void
dst_lacks_avx2(struct kvm_cpuid2 *dst)
{
    entry(dst, 7, 0)->ebx &= ~(1u << 5);
}

static void
dst_lacks_two_leaf1_bits(struct kvm_cpuid2 *dst)
{
    entry(dst, 1, 0)->ecx &= ~((1u << 28) | (1u << 29));
}

static void
dst_has_more(struct kvm_cpuid2 *dst)
{
    entry(dst, 7, 0)->ebx |= 1u << 31;
    entry(dst, 1, 0)->eax = 0x50654; /* another model: not a feature */
}

static void
dst_without_leaf_d1(struct kvm_cpuid2 *dst)
{
    entry(dst, 0xd, 1)->index = 0; /* now subleaf 0: 1 is absent */
}

static void
dst_is_amd(struct kvm_cpuid2 *dst)
{
    /* "AuthenticAMD" */
    entry(dst, 0, 0)->ebx = 0x68747541;
    entry(dst, 0, 0)->edx = 0x69746e65;
    entry(dst, 0, 0)->ecx = 0x444d4163;
}

static const struct {
    const char *path;
    void (*edit)(struct kvm_cpuid2 *dst);
    const char *message; /* NULL: compatible */
} cpuid_cases[] = {
    {"/kvm-state/cpuid/identical-is-compatible", no_change, NULL},
    {"/kvm-state/cpuid/extra-destination-bits-are-compatible", dst_has_more,
     NULL},
    {"/kvm-state/cpuid/missing-bit-named", dst_lacks_avx2,
     "CPUID leaf 0x7 subleaf 0 EBX bit 5: the source vCPU has it, this "
     "host's KVM does not offer it (1 missing bit)"},
    {"/kvm-state/cpuid/missing-bits-counted", dst_lacks_two_leaf1_bits,
     "CPUID leaf 0x1 subleaf 0 ECX bit 28: the source vCPU has it, this "
     "host's KVM does not offer it (2 missing bits)"},
    {"/kvm-state/cpuid/missing-subleaf-named", dst_without_leaf_d1,
     "CPUID leaf 0xd subleaf 1 EAX bit 0: the source vCPU has it, this "
     "host's KVM does not offer it (leaf absent) (4 missing bits)"},
    {"/kvm-state/cpuid/other-vendor-refused", dst_is_amd,
     "CPUID leaf 0x0: the source vCPU is GenuineIntel, this host is "
     "AuthenticAMD"},
};

static void
test_cpuid_case(gconstpointer data)
{
    size_t i = GPOINTER_TO_SIZE(data);
    g_autofree struct kvm_cpuid2 *src = make_cpuid();
    g_autofree struct kvm_cpuid2 *dst = make_cpuid();
    GError *err = NULL;
    bool ok;

    cpuid_cases[i].edit(dst);
    ok = gw_kvm_cpuid_compatible(src, dst, &err);
    if (!cpuid_cases[i].message) {
        g_assert_no_error(err);
        g_assert_true(ok);
        return;
    }
    g_assert_false(ok);
    g_assert_error(err, GW_ERROR, GW_ERROR_INVALID);
    g_assert_cmpstr(err->message, ==, cpuid_cases[i].message);
    g_error_free(err);
}

/* What a vCPU was given runs on the host that gave it. */
static void
test_cpuid_own_host(void)
{
    g_autofree struct kvm_cpuid2 *given = NULL;
    g_autofree struct kvm_cpuid2 *supported = NULL;
    GError *err = NULL;
    TestVm *vm;

    if (!have_kvm()) {
        return;
    }
    vm = test_vm_new(NULL, 0);
    given = gw_vcpus_cpuid(vm->vcpus);
    supported = gw_kvm_supported_cpuid(vm->kvm, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(given->nent, >, 0);
    g_assert_true(gw_kvm_cpuid_compatible(given, supported, &err));
    g_assert_no_error(err);
    entry(supported, 1, 0)->edx = 0;
    g_assert_false(gw_kvm_cpuid_compatible(given, supported, &err));
    g_assert_error(err, GW_ERROR, GW_ERROR_INVALID);
    g_error_free(err);
    test_vm_free(vm);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/kvm-state/migrate/counter-goes-on-in-the-new-vm",
                    test_migrate_counter);
    g_test_add_func("/kvm-state/vcpu/get-set-get-is-identical",
                    test_round_trip);
    g_test_add_func("/kvm-state/vcpu/refused-while-running",
                    test_refused_while_running);
    g_test_add_func("/kvm-state/dirty-log/reports-the-written-page-once",
                    test_dirty_log);
    for (size_t i = 0; i < G_N_ELEMENTS(cpuid_cases); i++) {
        g_test_add_data_func(cpuid_cases[i].path, GSIZE_TO_POINTER(i),
                             test_cpuid_case);
    }
    g_test_add_func("/kvm-state/cpuid/own-host-is-compatible",
                    test_cpuid_own_host);
    return g_test_run();
}
