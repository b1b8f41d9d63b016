/*
 * The names x-query-virtio-status gives feature and status bits (the
 * spec's macro names), apart from the transport that reports them.
 */
#include <godwit/virtio-pci.h>

typedef struct {
    unsigned bit;
    const char *name;
} Name;

static const Name transport_names[] = {
    {24, "VIRTIO_F_NOTIFY_ON_EMPTY"},    {27, "VIRTIO_F_ANY_LAYOUT"},
    {28, "VIRTIO_RING_F_INDIRECT_DESC"}, {29, "VIRTIO_RING_F_EVENT_IDX"},
    {32, "VIRTIO_F_VERSION_1"},          {33, "VIRTIO_F_IOMMU_PLATFORM"},
    {34, "VIRTIO_F_RING_PACKED"},        {35, "VIRTIO_F_IN_ORDER"},
    {36, "VIRTIO_F_ORDER_PLATFORM"},     {37, "VIRTIO_F_SR_IOV"},
    {40, "VIRTIO_F_RING_RESET"},         {0, NULL},
};

static const Name net_names[] = {
    {0, "VIRTIO_NET_F_CSUM"},
    {1, "VIRTIO_NET_F_GUEST_CSUM"},
    {2, "VIRTIO_NET_F_CTRL_GUEST_OFFLOADS"},
    {3, "VIRTIO_NET_F_MTU"},
    {5, "VIRTIO_NET_F_MAC"},
    {7, "VIRTIO_NET_F_GUEST_TSO4"},
    {8, "VIRTIO_NET_F_GUEST_TSO6"},
    {9, "VIRTIO_NET_F_GUEST_ECN"},
    {10, "VIRTIO_NET_F_GUEST_UFO"},
    {11, "VIRTIO_NET_F_HOST_TSO4"},
    {12, "VIRTIO_NET_F_HOST_TSO6"},
    {13, "VIRTIO_NET_F_HOST_ECN"},
    {14, "VIRTIO_NET_F_HOST_UFO"},
    {15, "VIRTIO_NET_F_MRG_RXBUF"},
    {16, "VIRTIO_NET_F_STATUS"},
    {17, "VIRTIO_NET_F_CTRL_VQ"},
    {18, "VIRTIO_NET_F_CTRL_RX"},
    {19, "VIRTIO_NET_F_CTRL_VLAN"},
    {20, "VIRTIO_NET_F_CTRL_RX_EXTRA"},
    {21, "VIRTIO_NET_F_GUEST_ANNOUNCE"},
    {22, "VIRTIO_NET_F_MQ"},
    {23, "VIRTIO_NET_F_CTRL_MAC_ADDR"},
    {0, NULL},
};

static const Name blk_names[] = {
    {1, "VIRTIO_BLK_F_SIZE_MAX"},      {2, "VIRTIO_BLK_F_SEG_MAX"},
    {4, "VIRTIO_BLK_F_GEOMETRY"},      {5, "VIRTIO_BLK_F_RO"},
    {6, "VIRTIO_BLK_F_BLK_SIZE"},      {9, "VIRTIO_BLK_F_FLUSH"},
    {10, "VIRTIO_BLK_F_TOPOLOGY"},     {11, "VIRTIO_BLK_F_CONFIG_WCE"},
    {12, "VIRTIO_BLK_F_MQ"},           {13, "VIRTIO_BLK_F_DISCARD"},
    {14, "VIRTIO_BLK_F_WRITE_ZEROES"}, {0, NULL},
};

static const Name iommu_names[] = {
    {0, "VIRTIO_IOMMU_F_INPUT_RANGE"},   {1, "VIRTIO_IOMMU_F_DOMAIN_RANGE"},
    {2, "VIRTIO_IOMMU_F_MAP_UNMAP"},     {3, "VIRTIO_IOMMU_F_BYPASS"},
    {4, "VIRTIO_IOMMU_F_PROBE"},         {5, "VIRTIO_IOMMU_F_MMIO"},
    {6, "VIRTIO_IOMMU_F_BYPASS_CONFIG"}, {0, NULL},
};

static const Name status_names[] = {
    {2, "VIRTIO_CONFIG_S_DRIVER_OK"},
    {3, "VIRTIO_CONFIG_S_FEATURES_OK"},
    {1, "VIRTIO_CONFIG_S_DRIVER"},
    {6, "VIRTIO_CONFIG_S_NEEDS_RESET"},
    {7, "VIRTIO_CONFIG_S_FAILED"},
    {0, "VIRTIO_CONFIG_S_ACKNOWLEDGE"},
    {0, NULL},
};

/* The names of `bits` set in `*left` into a new array; clears them. */
static json_object *
decode(const Name *names, uint64_t *left)
{
    json_object *a = json_object_new_array();

    for (const Name *n = names; n->name; n++) {
        if (*left & (1ull << n->bit)) {
            json_object_array_add(a, json_object_new_string(n->name));
            *left &= ~(1ull << n->bit);
        }
    }
    return a;
}

json_object *
gw_virtio_features_json(uint32_t device_id, uint64_t features)
{
    json_object *o = json_object_new_object();
    const Name *dev = device_id == 1    ? net_names
                      : device_id == 2  ? blk_names
                      : device_id == 23 ? iommu_names
                                        : NULL;

    json_object_object_add(o, "transports", decode(transport_names, &features));
    json_object_object_add(o, "dev-features",
                           dev ? decode(dev, &features)
                               : json_object_new_array());
    if (features) {
        json_object_object_add(o, "unknown-dev-features",
                               json_object_new_uint64(features));
    }
    return o;
}

const char *
gw_virtio_device_name(uint32_t device_id)
{
    switch (device_id) {
    case 1:
        return "virtio-net";
    case 2:
        return "virtio-blk";
    case 23:
        return "virtio-iommu";
    default:
        return "virtio";
    }
}

json_object *
gw_virtio_status_json(uint8_t status)
{
    json_object *st = json_object_new_object();
    uint64_t left = status;

    json_object_object_add(st, "statuses", decode(status_names, &left));
    if (left) {
        json_object_object_add(st, "unknown-statuses",
                               json_object_new_int((int)left));
    }
    return st;
}
