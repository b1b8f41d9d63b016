/*
 * vCPU threads.  The thread model and the pause protocol are described
 * in include/godwit/vcpu.h; in short: `lock` guards pause_req, quit,
 * parked and each Vcpu's tid; `dev_lock` (the machine's) guards device
 * state and is held only around one exit's device access.
 *
 * The throttle (auto-converge), as QEMU's softmmu/cpu-throttle.c: while
 * `throttle_pct` (an atomic) is p > 0, a main-loop timer kicks every
 * vCPU out of KVM_RUN each THROTTLE_SLICE_US, and a vCPU that ran that
 * long since it last slept sleeps p / (1 - p) of a slice, on `cond`, so
 * that a pause or quit wakes it at once.
 */
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/kvm.h>
#include <godwit/kvm-state.h>
#include <godwit/sandbox.h>
#include <godwit/util.h>
#include <godwit/vcpu.h>

#define KICK_SIGNAL       SIGUSR1
#define THROTTLE_SLICE_US 10000 /* QEMU's CPU_THROTTLE_TIMESLICE_NS */
#define BOOT_GDT_GPA      0x500u
#define BOOT_CS           0x10
#define BOOT_DS           0x18

typedef struct {
    struct GwVcpus *owner;
    unsigned index;
    int fd;
    struct kvm_run *run;
    GThread *thread;
    pthread_t pthread;
    pid_t tid; /* 0 until the thread runs */
    bool dead; /* stopped by a fatal exit until a reset; under `lock` */
    /* The last exit was IO/MMIO: KVM finishes that instruction only on
     * the next KVM_RUN.  Owned by the vCPU's thread. */
    bool io_pending;
    gint64 slice_start; /* throttle: when it last woke; vCPU thread only */
} Vcpu;

struct GwVcpus {
    GwKvm *kvm;
    GwBus *pio, *mmio;
    GMutex *dev_lock;
    const GwVcpuHooks *hooks;
    gpointer opaque;
    unsigned n;
    Vcpu *cpus;
    struct kvm_cpuid2 *cpuid; /* what vCPU 0 was given */
    GwKvmVcpuLayout *layout;  /* probed on the first state access */
    GMutex lock;
    GCond cond;
    bool pause_req, quit;
    unsigned parked;
    int throttle_pct;    /* atomic: auto-converge's, 0 … 99 */
    guint throttle_tick; /* main thread: the kicking timer, or 0 */
};

static void
kick_handler(int sig)
{
    (void)sig; /* only there to interrupt KVM_RUN with EINTR */
}

/* Called with v->lock held, so tids are stable. */
static void
kick(GwVcpus *v)
{
    for (unsigned i = 0; i < v->n; i++) {
        Vcpu *c = &v->cpus[i];
        if (!c->run) {
            continue;
        }
        __atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
        if (c->tid) {
            pthread_kill(c->pthread, KICK_SIGNAL);
        }
    }
}

static void
log_registers(Vcpu *c, const char *why)
{
    struct kvm_regs r;
    struct kvm_sregs s;

    if (ioctl(c->fd, KVM_GET_REGS, &r) < 0 ||
        ioctl(c->fd, KVM_GET_SREGS, &s) < 0) {
        g_critical("vCPU %u: %s (registers unavailable: %s)", c->index, why,
                   g_strerror(errno));
        return;
    }
    g_critical("vCPU %u: %s: rip=0x%llx rsp=0x%llx rflags=0x%llx "
               "rax=0x%llx rbx=0x%llx rcx=0x%llx rdx=0x%llx rsi=0x%llx "
               "rdi=0x%llx rbp=0x%llx cr0=0x%llx cr3=0x%llx cr4=0x%llx "
               "efer=0x%llx cs=0x%x ss=0x%x",
               c->index, why, r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx,
               r.rdx, r.rsi, r.rdi, r.rbp, s.cr0, s.cr3, s.cr4, s.efer,
               s.cs.selector, s.ss.selector);
}

static void
handle_io(Vcpu *c)
{
    GwVcpus *v = c->owner;
    struct kvm_run *run = c->run;
    uint8_t *p = (uint8_t *)run + run->io.data_offset;
    unsigned size = run->io.size;

    for (uint32_t i = 0; i < run->io.count; i++, p += size) {
        uint64_t val = 0;
        g_mutex_lock(v->dev_lock);
        if (run->io.direction == KVM_EXIT_IO_OUT) {
            memcpy(&val, p, size);
            gw_bus_write(v->pio, run->io.port, size, val);
        } else {
            gw_bus_read(v->pio, run->io.port, size, &val);
            memcpy(p, &val, size);
        }
        g_mutex_unlock(v->dev_lock);
    }
}

static void
handle_mmio(Vcpu *c)
{
    GwVcpus *v = c->owner;
    struct kvm_run *run = c->run;
    unsigned len = MIN(run->mmio.len, 8u);
    uint64_t val = 0;

    g_mutex_lock(v->dev_lock);
    if (run->mmio.is_write) {
        memcpy(&val, run->mmio.data, len);
        gw_bus_write(v->mmio, run->mmio.phys_addr, len, val);
    } else {
        gw_bus_read(v->mmio, run->mmio.phys_addr, len, &val);
        memcpy(run->mmio.data, &val, len);
    }
    g_mutex_unlock(v->dev_lock);
}

/* NULL when handled, else why the vCPU cannot go on. */
static const char *
handle_exit(Vcpu *c)
{
    switch (c->run->exit_reason) {
    case KVM_EXIT_IO:
        handle_io(c);
        return NULL;
    case KVM_EXIT_MMIO:
        handle_mmio(c);
        return NULL;
    case KVM_EXIT_INTR:
    case KVM_EXIT_HLT:
        return NULL;
    case KVM_EXIT_SHUTDOWN:
        return "triple fault";
    case KVM_EXIT_FAIL_ENTRY:
        return "VM entry failed";
    case KVM_EXIT_INTERNAL_ERROR:
        return "KVM internal error (emulation failure?)";
    default:
        return "unhandled exit";
    }
}

static void complete_pending_io(Vcpu *c);

/* Throttled: after a slice of running, sleep pct / (1 - pct) of one. */
static void
throttle_sleep(Vcpu *c)
{
    GwVcpus *v = c->owner;
    int pct = g_atomic_int_get(&v->throttle_pct);
    gint64 now = g_get_monotonic_time(), end;

    if (!pct || now - c->slice_start < THROTTLE_SLICE_US) {
        c->slice_start = pct ? c->slice_start : now;
        return;
    }
    end = now + (gint64)(THROTTLE_SLICE_US * (pct / (100.0 - pct))) + 1;
    g_mutex_lock(&v->lock);
    while (!v->quit && !v->pause_req && g_atomic_int_get(&v->throttle_pct) &&
           g_cond_wait_until(&v->cond, &v->lock, end)) {
    }
    g_mutex_unlock(&v->lock);
    c->slice_start = g_get_monotonic_time();
}

/*
 * Parks while paused (or dead); false once told to quit.  A vCPU never
 * parks with an IO/MMIO instruction half done, so that its state read
 * while paused is the state after that instruction.
 */
static bool
wait_while_paused(Vcpu *c)
{
    GwVcpus *v = c->owner;
    bool go_on;

    g_mutex_lock(&v->lock);
    while (!v->quit && (v->pause_req || c->dead)) {
        if (c->io_pending && !c->dead) {
            g_mutex_unlock(&v->lock);
            complete_pending_io(c);
            g_mutex_lock(&v->lock);
            continue;
        }
        v->parked++;
        g_cond_broadcast(&v->cond);
        g_cond_wait(&v->cond, &v->lock);
        v->parked--;
    }
    go_on = !v->quit;
    g_mutex_unlock(&v->lock);
    return go_on;
}

static void
die(Vcpu *c, const char *why)
{
    g_autofree char *what =
        g_strdup_printf("%s (exit reason %u)", why, c->run->exit_reason);

    log_registers(c, what);
    g_mutex_lock(&c->owner->lock);
    c->dead = true;
    g_mutex_unlock(&c->owner->lock);
    c->owner->hooks->fatal(c->owner->opaque, c->index, what);
}

/* One KVM_RUN and the exit it returned with. */
static void
run_once(Vcpu *c)
{
    const char *why;

    c->io_pending = false;
    if (ioctl(c->fd, KVM_RUN, 0) < 0) {
        if (errno != EINTR && errno != EAGAIN) {
            die(c, g_strerror(errno));
        }
        return;
    }
    why = handle_exit(c);
    if (why) {
        die(c, why);
        return;
    }
    c->io_pending = c->run->exit_reason == KVM_EXIT_IO ||
                    c->run->exit_reason == KVM_EXIT_MMIO;
}

/*
 * The KVM API: "KVM_RUN with immediate_exit set ... complete pending
 * operations" and return EINTR without entering the guest.  Completing
 * one may need userspace again (a string IO), hence the loop.
 */
static void
complete_pending_io(Vcpu *c)
{
    while (c->io_pending) {
        __atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
        run_once(c);
    }
}

static gpointer
vcpu_thread(gpointer data)
{
    Vcpu *c = data;
    GwVcpus *v = c->owner;
    sigset_t set;

    gw_sandbox_enter_thread(GW_SANDBOX_VCPU);
    sigemptyset(&set);
    sigaddset(&set, KICK_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    g_mutex_lock(&v->lock);
    c->pthread = pthread_self();
    c->tid = gettid();
    g_mutex_unlock(&v->lock);

    for (;;) {
        __atomic_store_n(&c->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
        if (!wait_while_paused(c)) {
            break;
        }
        run_once(c);
        throttle_sleep(c);
    }
    return NULL;
}

static bool
set_cpuid(GwVcpus *v, Vcpu *c, GError **errp)
{
    g_autofree struct kvm_cpuid2 *cpuid = gw_kvm_supported_cpuid(v->kvm, errp);

    if (!cpuid) {
        return false;
    }
    for (uint32_t i = 0; i < cpuid->nent; i++) {
        struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
        if (e->function == 1) {
            e->ebx = (e->ebx & 0x00ffffffu) | (c->index << 24);
        } else if (e->function == 0xb || e->function == 0x1f) {
            e->edx = c->index; /* x2APIC id */
        }
    }
    if (ioctl(c->fd, KVM_SET_CPUID2, cpuid) < 0) {
        return gw_error_errno(errp, errno, "vCPU %u: KVM_SET_CPUID2", c->index);
    }
    if (c->index == 0) {
        v->cpuid = g_steal_pointer(&cpuid);
    }
    return true;
}

static bool
create_vcpu(GwVcpus *v, unsigned i, GError **errp)
{
    Vcpu *c = &v->cpus[i];
    int size = gw_kvm_vcpu_mmap_size(v->kvm);

    c->owner = v;
    c->index = i;
    c->fd = ioctl(gw_kvm_vm_fd(v->kvm), KVM_CREATE_VCPU, i);
    if (c->fd < 0) {
        return gw_error_errno(errp, errno, "KVM_CREATE_VCPU %u", i);
    }
    c->run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
    if (c->run == MAP_FAILED) {
        c->run = NULL;
        return gw_error_errno(errp, errno, "vCPU %u: mapping kvm_run", i);
    }
    return set_cpuid(v, c, errp);
}

GwVcpus *
gw_vcpus_new(GwKvm *kvm, unsigned n, GwBus *pio, GwBus *mmio, GMutex *dev_lock,
             const GwVcpuHooks *hooks, gpointer opaque, GError **errp)
{
    g_autoptr(GwVcpus) v = g_new0(GwVcpus, 1);
    struct sigaction sa = {.sa_handler = kick_handler};

    v->kvm = kvm;
    v->pio = pio;
    v->mmio = mmio;
    v->dev_lock = dev_lock;
    v->hooks = hooks;
    v->opaque = opaque;
    v->n = n;
    v->cpus = g_new0(Vcpu, n);
    g_mutex_init(&v->lock);
    g_cond_init(&v->cond);
    for (unsigned i = 0; i < n; i++) {
        v->cpus[i].fd = -1;
    }
    /* No SA_RESTART: the signal must make KVM_RUN return EINTR. */
    sigaction(KICK_SIGNAL, &sa, NULL);
    for (unsigned i = 0; i < n; i++) {
        if (!create_vcpu(v, i, errp)) {
            return NULL;
        }
    }
    return g_steal_pointer(&v);
}

void
gw_vcpus_free(GwVcpus *v)
{
    int size;

    if (!v) {
        return;
    }
    g_clear_handle_id(&v->throttle_tick, g_source_remove);
    g_mutex_lock(&v->lock);
    v->quit = true;
    kick(v);
    g_cond_broadcast(&v->cond);
    g_mutex_unlock(&v->lock);
    for (unsigned i = 0; i < v->n; i++) {
        if (v->cpus[i].thread) {
            g_thread_join(v->cpus[i].thread);
        }
    }
    size = gw_kvm_vcpu_mmap_size(v->kvm);
    for (unsigned i = 0; i < v->n; i++) {
        if (v->cpus[i].run) {
            munmap(v->cpus[i].run, size);
        }
        if (v->cpus[i].fd >= 0) {
            close(v->cpus[i].fd);
        }
    }
    g_mutex_clear(&v->lock);
    g_cond_clear(&v->cond);
    g_free(v->cpus);
    g_free(v->cpuid);
    g_free(v->layout);
    g_free(v);
}

static struct kvm_segment
flat_segment(uint16_t selector, uint8_t type)
{
    return (struct kvm_segment){
        .base = 0,
        .limit = 0xffffffff,
        .selector = selector,
        .type = type,
        .present = 1,
        .dpl = 0,
        .db = 1,
        .s = 1,
        .l = 0,
        .g = 1,
    };
}

/* A GDT matching the selectors we load, for a guest that reloads them. */
static void
write_boot_gdt(GwGuestMemory *mem)
{
    static const uint64_t gdt[] = {
        0, 0, 0x00cf9b000000ffffull, /* 0x10: code, base 0, 4 GiB, 32-bit */
        0x00cf93000000ffffull,       /* 0x18: data */
    };
    gw_mem_write(mem, BOOT_GDT_GPA, gdt, sizeof(gdt));
}

static bool
load_bsp(Vcpu *c, const GwBootImage *img, GError **errp)
{
    struct kvm_sregs s;
    struct kvm_regs r = {
        .rip = img->entry,
        .rax = GW_MULTIBOOT_BOOTLOADER_MAGIC,
        .rbx = img->info_gpa,
        .rflags = 0x2,
    };

    if (ioctl(c->fd, KVM_GET_SREGS, &s) < 0) {
        return gw_error_errno(errp, errno, "vCPU 0: KVM_GET_SREGS");
    }
    s.cs = flat_segment(BOOT_CS, 0xb);
    s.ds = s.es = s.fs = s.gs = s.ss = flat_segment(BOOT_DS, 0x3);
    s.gdt.base = BOOT_GDT_GPA;
    s.gdt.limit = 4 * 8 - 1;
    s.cr0 = 0x11; /* PE | ET, no paging */
    s.cr4 = 0;
    s.efer = 0;
    if (ioctl(c->fd, KVM_SET_SREGS, &s) < 0 ||
        ioctl(c->fd, KVM_SET_REGS, &r) < 0) {
        return gw_error_errno(errp, errno, "vCPU 0: loading boot registers");
    }
    return true;
}

bool
gw_vcpus_load_boot(GwVcpus *v, GwGuestMemory *mem, const GwBootImage *img,
                   GError **errp)
{
    write_boot_gdt(mem);
    for (unsigned i = 0; i < v->n; i++) {
        /* The BSP runs; APs wait for INIT/SIPI from the guest. */
        struct kvm_mp_state mp = {i == 0 ? KVM_MP_STATE_RUNNABLE
                                         : KVM_MP_STATE_UNINITIALIZED};
        if (ioctl(v->cpus[i].fd, KVM_SET_MP_STATE, &mp) < 0) {
            return gw_error_errno(errp, errno, "vCPU %u: KVM_SET_MP_STATE", i);
        }
    }
    g_mutex_lock(&v->lock);
    for (unsigned i = 0; i < v->n; i++) {
        v->cpus[i].dead = false; /* a reset revives a vCPU that died */
    }
    g_mutex_unlock(&v->lock);
    return load_bsp(&v->cpus[0], img, errp);
}

bool
gw_vcpus_start(GwVcpus *v, bool paused, GError **errp)
{
    v->pause_req = paused;
    for (unsigned i = 0; i < v->n; i++) {
        g_autofree char *name = g_strdup_printf("vcpu%u", i);
        v->cpus[i].thread =
            g_thread_try_new(name, vcpu_thread, &v->cpus[i], errp);
        if (!v->cpus[i].thread) {
            return false;
        }
    }
    return true;
}

void
gw_vcpus_pause(GwVcpus *v)
{
    if (!v->cpus[0].thread) {
        v->pause_req = true; /* not started: nothing runs */
        return;
    }
    g_mutex_lock(&v->lock);
    v->pause_req = true;
    kick(v);
    g_cond_broadcast(&v->cond); /* a throttled vCPU asleep */
    while (v->parked < v->n) {
        g_cond_wait(&v->cond, &v->lock);
    }
    g_mutex_unlock(&v->lock);
}

void
gw_vcpus_resume(GwVcpus *v)
{
    g_mutex_lock(&v->lock);
    v->pause_req = false;
    g_cond_broadcast(&v->cond);
    g_mutex_unlock(&v->lock);
}

/* Each slice: every vCPU out of KVM_RUN, to see whether it must sleep.
 * A signal alone: unlike a pause, an exit is not required. */
static gboolean
throttle_tick(gpointer data)
{
    GwVcpus *v = data;

    g_mutex_lock(&v->lock);
    for (unsigned i = 0; i < v->n; i++) {
        if (v->cpus[i].tid) {
            pthread_kill(v->cpus[i].pthread, KICK_SIGNAL);
        }
    }
    g_mutex_unlock(&v->lock);
    return G_SOURCE_CONTINUE;
}

void
gw_vcpus_set_throttle(GwVcpus *v, unsigned pct)
{
    g_assert(pct <= 99);
    g_atomic_int_set(&v->throttle_pct, (int)pct);
    if (pct && !v->throttle_tick) {
        v->throttle_tick =
            g_timeout_add(THROTTLE_SLICE_US / 1000, throttle_tick, v);
    } else if (!pct) {
        g_clear_handle_id(&v->throttle_tick, g_source_remove);
        g_mutex_lock(&v->lock);
        g_cond_broadcast(&v->cond); /* sleepers run again now */
        g_mutex_unlock(&v->lock);
    }
}

json_object *
gw_vcpus_query(GwVcpus *v)
{
    json_object *list = json_object_new_array();

    g_mutex_lock(&v->lock);
    for (unsigned i = 0; i < v->n; i++) {
        json_object *cpu = json_object_new_object();
        json_object *props = json_object_new_object();
        g_autofree char *path =
            g_strdup_printf("/machine/unattached/device[%u]", i);
        json_object_object_add(cpu, "cpu-index", json_object_new_int(i));
        json_object_object_add(cpu, "thread-id",
                               json_object_new_int(v->cpus[i].tid));
        json_object_object_add(cpu, "qom-path", json_object_new_string(path));
        json_object_object_add(cpu, "target", json_object_new_string("x86_64"));
        json_object_object_add(props, "core-id", json_object_new_int(0));
        json_object_object_add(props, "thread-id", json_object_new_int(0));
        json_object_object_add(props, "socket-id", json_object_new_int(i));
        json_object_object_add(cpu, "props", props);
        json_object_array_add(list, cpu);
    }
    g_mutex_unlock(&v->lock);
    return list;
}

unsigned
gw_vcpus_count(GwVcpus *v)
{
    return v->n;
}

struct kvm_cpuid2 *
gw_vcpus_cpuid(GwVcpus *v)
{
    return g_memdup2(v->cpuid,
                     sizeof(*v->cpuid) +
                         v->cpuid->nent * sizeof(v->cpuid->entries[0]));
}

/* Paused (every thread parked) or not started, `cpu` valid, layout
 * probed. */
static bool
state_access_ok(GwVcpus *v, unsigned cpu, GError **errp)
{
    bool stopped;

    g_mutex_lock(&v->lock);
    /* Threads started paused may not have parked yet: wait for them, as
     * gw_vcpus_pause does (a parked thread never runs guest code). */
    while (v->cpus[0].thread && v->pause_req && v->parked < v->n) {
        g_cond_wait(&v->cond, &v->lock);
    }
    stopped = !v->cpus[0].thread || (v->pause_req && v->parked == v->n);
    g_mutex_unlock(&v->lock);
    if (cpu >= v->n) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "vCPU %u does not exist (the VM has %u)", cpu, v->n);
        return false;
    }
    if (!stopped) {
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                    "vCPU state is only accessible while the VM is paused");
        return false;
    }
    if (!v->layout) {
        g_autofree GwKvmVcpuLayout *l = g_new0(GwKvmVcpuLayout, 1);
        if (!gw_kvm_vcpu_layout_probe(v->kvm, v->cpus[0].fd, l, errp)) {
            return false;
        }
        v->layout = g_steal_pointer(&l);
    }
    return true;
}

bool
gw_vcpus_get_state(GwVcpus *v, unsigned cpu, GwVcpuState *st, GError **errp)
{
    return state_access_ok(v, cpu, errp) &&
           gw_kvm_vcpu_get_state(v->cpus[cpu].fd, cpu, v->layout, st, errp);
}

bool
gw_vcpus_set_state(GwVcpus *v, unsigned cpu, const GwVcpuState *st,
                   GError **errp)
{
    if (!state_access_ok(v, cpu, errp) ||
        !gw_kvm_vcpu_set_state(v->cpus[cpu].fd, cpu, v->layout, st, errp)) {
        return false;
    }
    g_mutex_lock(&v->lock);
    v->cpus[cpu].dead = false; /* a restored vCPU runs again */
    g_mutex_unlock(&v->lock);
    return true;
}
