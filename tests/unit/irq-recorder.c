#include "irq-recorder.h"

static int
route_add(void *ctx, uint64_t addr, uint32_t data, GError **errp)
{
    GwIrqRecorder *r = ctx;
    int slot = 0;

    while (slot < REC_MAX_GSI && r->in_use[slot]) {
        slot++;
    }
    g_assert_cmpint(slot, <, REC_MAX_GSI);
    r->in_use[slot] = true;
    r->routes++;
    r->route_addr[slot] = addr;
    r->route_data[slot] = data;
    return REC_FIRST_GSI + slot;
}

static bool
route_set(void *ctx, int gsi, uint64_t addr, uint32_t data, GError **errp)
{
    GwIrqRecorder *r = ctx;
    r->route_addr[gsi - REC_FIRST_GSI] = addr;
    r->route_data[gsi - REC_FIRST_GSI] = data;
    return true;
}

static void
route_del(void *ctx, int gsi)
{
    GwIrqRecorder *r = ctx;

    g_assert_true(r->in_use[gsi - REC_FIRST_GSI]);
    r->in_use[gsi - REC_FIRST_GSI] = false;
    r->routes--;
}

static bool
irqfd(void *ctx, int fd, int gsi, bool assign, GError **errp)
{
    GwIrqRecorder *r = ctx;
    r->irqfds += assign ? 1 : -1;
    r->irqfd_gsi = assign ? gsi : -1;
    r->irqfd_fd = fd;
    return true;
}

static bool
ioeventfd(void *ctx, uint64_t addr, unsigned len, int fd, bool assign,
          GError **errp)
{
    GwIrqRecorder *r = ctx;
    r->ioeventfds += assign ? 1 : -1;
    r->ioeventfd_addr = assign ? addr : 0;
    return true;
}

static void
signal_msi(void *ctx, uint64_t addr, uint32_t data)
{
    GwIrqRecorder *r = ctx;
    r->msis++;
    r->last_msi_data = data;
}

static const GwIrqOps ops = {route_add, route_set, route_del,
                             irqfd,     ioeventfd, signal_msi};

GwIrqChip
gw_irq_recorder_chip(GwIrqRecorder *r)
{
    return (GwIrqChip){&ops, r};
}
