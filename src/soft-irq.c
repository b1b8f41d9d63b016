/*
 * The software interrupt controller.  See include/godwit/soft-irq.h for
 * threads and locking.
 */
#include <errno.h>
#include <unistd.h>
#include <glib-unix.h>
#include <godwit/soft-irq.h>
#include <godwit/util.h>

#define FIRST_MSI_GSI 24 /* below: the IOAPIC's pins, as with KVM */
#define MAX_GSI       1024

typedef struct {
    uint64_t addr;
    uint32_t data;
    bool used;
} Route;

typedef struct {
    uint64_t addr;
    unsigned len;
    int fd;
} Ioeventfd;

typedef struct {
    GwSoftIrq *s;
    int fd, gsi;
    guint watch;
} Irqfd;

struct GwSoftIrq {
    GwIrqChip chip;
    GMutex *lock;
    GwMsiDeliverFn deliver;
    gpointer opaque;
    Route routes[MAX_GSI];
    GArray *ioeventfds; /* Ioeventfd */
    GPtrArray *irqfds;  /* Irqfd * */
    uint64_t msis;
    uint64_t kicks; /* ioeventfd writes matched */
};

static int
msi_route_add(void *ctx, uint64_t addr, uint32_t data, GError **errp)
{
    GwSoftIrq *s = ctx;

    for (int gsi = FIRST_MSI_GSI; gsi < MAX_GSI; gsi++) {
        if (!s->routes[gsi].used) {
            s->routes[gsi] = (Route){addr, data, true};
            return gsi;
        }
    }
    g_set_error(errp, GW_ERROR, GW_ERROR_BUSY, "no free GSI for MSI");
    return -1;
}

static bool
msi_route_set(void *ctx, int gsi, uint64_t addr, uint32_t data, GError **errp)
{
    GwSoftIrq *s = ctx;

    (void)errp;
    g_assert(gsi >= FIRST_MSI_GSI && gsi < MAX_GSI && s->routes[gsi].used);
    s->routes[gsi] = (Route){addr, data, true};
    return true;
}

static void
msi_route_del(void *ctx, int gsi)
{
    GwSoftIrq *s = ctx;

    if (gsi >= FIRST_MSI_GSI && gsi < MAX_GSI) {
        s->routes[gsi].used = false;
    }
}

static void
deliver(GwSoftIrq *s, uint64_t addr, uint32_t data)
{
    __atomic_fetch_add(&s->msis, 1, __ATOMIC_RELAXED);
    s->deliver(s->opaque, addr, data);
}

/* The eventfd was written: consume it and raise its GSI's MSI, if routed. */
static gboolean
irqfd_ready(int fd, GIOCondition cond, gpointer data)
{
    Irqfd *q = data;
    GwSoftIrq *s = q->s;
    uint64_t count;
    Route r;

    (void)cond;
    if (read(fd, &count, sizeof(count)) != sizeof(count)) {
        return G_SOURCE_CONTINUE; /* raced with nothing: no event */
    }
    g_mutex_lock(s->lock);
    r = s->routes[q->gsi];
    g_mutex_unlock(s->lock);
    if (r.used) {
        deliver(s, r.addr, r.data);
    }
    return G_SOURCE_CONTINUE;
}

static Irqfd *
find_irqfd(GwSoftIrq *s, int fd, guint *index)
{
    for (guint i = 0; i < s->irqfds->len; i++) {
        Irqfd *q = s->irqfds->pdata[i];
        if (q->fd == fd) {
            *index = i;
            return q;
        }
    }
    return NULL;
}

static void
irqfd_free(gpointer data)
{
    Irqfd *q = data;

    g_source_remove(q->watch);
    g_free(q);
}

static bool
irqfd(void *ctx, int fd, int gsi, bool assign, GError **errp)
{
    GwSoftIrq *s = ctx;
    guint i;
    Irqfd *q = find_irqfd(s, fd, &i);

    if (!assign) {
        if (q) {
            g_ptr_array_remove_index_fast(s->irqfds, i);
        }
        return true;
    }
    if (q || gsi < 0 || gsi >= MAX_GSI) {
        g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                    "irqfd %d: already bound or GSI %d out of range", fd, gsi);
        return false;
    }
    q = g_new0(Irqfd, 1);
    *q = (Irqfd){s, fd, gsi, g_unix_fd_add(fd, G_IO_IN, irqfd_ready, q)};
    g_ptr_array_add(s->irqfds, q);
    return true;
}

static bool
ioeventfd(void *ctx, uint64_t addr, unsigned len, int fd, bool assign,
          GError **errp)
{
    GwSoftIrq *s = ctx;

    for (guint i = 0; i < s->ioeventfds->len; i++) {
        Ioeventfd *e = &g_array_index(s->ioeventfds, Ioeventfd, i);
        if (e->addr == addr && e->len == len && e->fd == fd) {
            if (!assign) {
                g_array_remove_index_fast(s->ioeventfds, i);
                return true;
            }
            g_set_error(errp, GW_ERROR, GW_ERROR_BUSY,
                        "ioeventfd at 0x%" G_GINT64_MODIFIER "x exists", addr);
            return false;
        }
    }
    if (assign) {
        Ioeventfd e = {addr, len, fd};
        g_array_append_val(s->ioeventfds, e);
        return true;
    }
    g_set_error(errp, GW_ERROR, GW_ERROR_NOT_FOUND,
                "no ioeventfd at 0x%" G_GINT64_MODIFIER "x", addr);
    return false;
}

static void
signal_msi(void *ctx, uint64_t addr, uint32_t data)
{
    deliver(ctx, addr, data);
}

static const GwIrqOps soft_irq_ops = {
    msi_route_add, msi_route_set, msi_route_del, irqfd, ioeventfd, signal_msi,
};

GwSoftIrq *
gw_soft_irq_new(GMutex *lock, GwMsiDeliverFn deliver_fn, gpointer opaque)
{
    GwSoftIrq *s = g_new0(GwSoftIrq, 1);

    s->chip = (GwIrqChip){&soft_irq_ops, s};
    s->lock = lock;
    s->deliver = deliver_fn;
    s->opaque = opaque;
    s->ioeventfds = g_array_new(FALSE, FALSE, sizeof(Ioeventfd));
    s->irqfds = g_ptr_array_new_with_free_func(irqfd_free);
    return s;
}

void
gw_soft_irq_free(GwSoftIrq *s)
{
    if (!s) {
        return;
    }
    g_ptr_array_unref(s->irqfds);
    g_array_unref(s->ioeventfds);
    g_free(s);
}

const GwIrqChip *
gw_soft_irq_chip(GwSoftIrq *s)
{
    return &s->chip;
}

bool
gw_soft_irq_match_ioeventfd(GwSoftIrq *s, uint64_t addr, unsigned len)
{
    static const uint64_t one = 1;

    for (guint i = 0; i < s->ioeventfds->len; i++) {
        Ioeventfd *e = &g_array_index(s->ioeventfds, Ioeventfd, i);
        if (e->addr == addr && (e->len == 0 || e->len == len)) {
            __atomic_fetch_add(&s->kicks, 1, __ATOMIC_RELAXED);
            if (write(e->fd, &one, sizeof(one)) != sizeof(one)) {
                g_warning("ioeventfd at 0x%" G_GINT64_MODIFIER "x: %s", addr,
                          g_strerror(errno));
            }
            return true;
        }
    }
    return false;
}

uint64_t
gw_soft_irq_msi_count(const GwSoftIrq *s)
{
    return __atomic_load_n(&s->msis, __ATOMIC_RELAXED);
}

uint64_t
gw_soft_irq_ioeventfd_count(const GwSoftIrq *s)
{
    return __atomic_load_n(&s->kicks, __ATOMIC_RELAXED);
}
