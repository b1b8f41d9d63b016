#include <godwit/bus.h>
#include <godwit/util.h>

typedef struct {
    uint64_t base, len;
    const GwDeviceOps *ops;
    void *dev;
    uint64_t reads, writes; /* accesses dispatched to `dev` */
} Range;

struct GwBus {
    char *name;
    GArray *ranges;     /* Range, sorted by base, never overlapping */
    uint64_t unclaimed; /* accesses no device took */
};

GwBus *
gw_bus_new(const char *name)
{
    GwBus *bus = g_new0(GwBus, 1);
    bus->name = g_strdup(name);
    bus->ranges = g_array_new(FALSE, FALSE, sizeof(Range));
    return bus;
}

void
gw_bus_free(GwBus *bus)
{
    if (bus) {
        g_array_unref(bus->ranges);
        g_free(bus->name);
        g_free(bus);
    }
}

/* Index of the first range whose end is above addr. */
static guint
lower_bound(const GwBus *bus, uint64_t addr)
{
    guint lo = 0, hi = bus->ranges->len;

    while (lo < hi) {
        guint mid = lo + (hi - lo) / 2;
        const Range *r = &g_array_index(bus->ranges, Range, mid);
        if (r->base + r->len <= addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

bool
gw_bus_add(GwBus *bus, uint64_t base, uint64_t len, const GwDeviceOps *ops,
           void *dev, GError **errp)
{
    guint i = lower_bound(bus, base);
    Range r = {base, len, ops, dev, 0, 0};

    if (len == 0 || base + len < base) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "%s: bad range 0x%" G_GINT64_MODIFIER
                    "x+0x%" G_GINT64_MODIFIER "x for %s",
                    bus->name, base, len, ops->name);
        return false;
    }
    if (i < bus->ranges->len) {
        const Range *next = &g_array_index(bus->ranges, Range, i);
        if (next->base < base + len) {
            g_set_error(errp, GW_ERROR, GW_ERROR_EXISTS,
                        "%s: %s at 0x%" G_GINT64_MODIFIER "x overlaps %s at "
                        "0x%" G_GINT64_MODIFIER "x",
                        bus->name, ops->name, base, next->ops->name,
                        next->base);
            return false;
        }
    }
    g_array_insert_val(bus->ranges, i, r);
    return true;
}

bool
gw_bus_remove(GwBus *bus, uint64_t base)
{
    guint i = lower_bound(bus, base);

    if (i < bus->ranges->len &&
        g_array_index(bus->ranges, Range, i).base == base) {
        g_array_remove_index(bus->ranges, i);
        return true;
    }
    return false;
}

uint64_t
gw_bus_next_claimed(const GwBus *bus, uint64_t addr)
{
    guint i = lower_bound(bus, addr);
    const Range *r;

    if (i >= bus->ranges->len) {
        return UINT64_MAX;
    }
    r = &g_array_index(bus->ranges, Range, i);
    return MAX(addr, r->base);
}

static Range *
find(GwBus *bus, uint64_t addr, unsigned size)
{
    guint i = lower_bound(bus, addr);
    Range *r;

    if (i >= bus->ranges->len) {
        return NULL;
    }
    r = &g_array_index(bus->ranges, Range, i);
    if (addr < r->base || addr + size > r->base + r->len) {
        return NULL;
    }
    return r;
}

bool
gw_bus_read(GwBus *bus, uint64_t addr, unsigned size, uint64_t *value)
{
    Range *r = find(bus, addr, size);

    if (!r || !r->ops->read) {
        bus->unclaimed++;
        *value = size >= 8 ? UINT64_MAX : (1ull << (size * 8)) - 1;
        return false;
    }
    r->reads++;
    *value = r->ops->read(r->dev, addr - r->base, size);
    return true;
}

bool
gw_bus_write(GwBus *bus, uint64_t addr, unsigned size, uint64_t value)
{
    Range *r = find(bus, addr, size);

    if (!r || !r->ops->write) {
        bus->unclaimed++;
        return false;
    }
    r->writes++;
    r->ops->write(r->dev, addr - r->base, value, size);
    return true;
}

GArray *
gw_bus_stats(const GwBus *bus, uint64_t *unclaimed)
{
    GArray *out = g_array_sized_new(FALSE, FALSE, sizeof(GwBusRangeStats),
                                    bus->ranges->len);

    for (guint i = 0; i < bus->ranges->len; i++) {
        const Range *r = &g_array_index(bus->ranges, Range, i);
        GwBusRangeStats st = {r->ops->name, r->base, r->len, r->reads,
                              r->writes};
        g_array_append_val(out, st);
    }
    *unclaimed = bus->unclaimed;
    return out;
}
