/*
 * config: the command line, parsed and validated in one place.
 *
 * Everything a user can say on the command line ends up in a GwConfig
 * before any object (socket, memory, device) is created, so a bad option
 * never leaves anything behind.  The same key=value parser serves the
 * Cloud Hypervisor-style options here and the QMP commands that take the
 * same keys, so a rule is written once.
 *
 * Thread: main thread only.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <json-c/json.h>

#define GW_MAX_VCPUS        255
#define GW_MAX_PCI_SEGMENTS 16 /* CH: 96; what our PCI hole holds (pci.h) */
#define GW_MAX_VDPA_QUEUES  256

typedef struct {
    char *path;          /* required */
    uint32_t num_queues; /* default 1 */
    bool iommu;          /* default off */
    char *id;            /* auto "_vdpaN" when absent */
    uint16_t pci_segment;
} GwVdpaConfig;

typedef enum {
    GW_VDPA_SIM_BLK,
    GW_VDPA_SIM_NET,
} GwVdpaSimType;

typedef struct {
    char *name;         /* required, like `vdpa dev add name NAME` */
    char *mgmtdev;      /* required: "vdpasim_blk" or "vdpasim_net" */
    GwVdpaSimType type; /* derived from mgmtdev */
    char *backing;      /* blk only: a file mapped shared as the disk */
    char *mac;          /* net only: "52:54:00:12:34:56" */
    uint64_t capacity;  /* blk only, bytes; 0 = the kernel sim's 128 MiB */
} GwVdpaSimConfig;

typedef enum {
    GW_SERIAL_OFF,
    GW_SERIAL_STDIO,
    GW_SERIAL_FILE,
    GW_SERIAL_SOCKET,
    GW_SERIAL_FD, /* serial_path is the decimal number of an open fd, which
                     the config's maker owns; the chardev writes to a dup */
} GwSerialMode;

typedef enum {
    GW_SECCOMP_ON,
    GW_SECCOMP_OFF,
    GW_SECCOMP_LOG,
} GwSeccompMode;

typedef struct {
    uint64_t mem_size;
    bool hugepages;
    bool mem_shared;
    uint32_t boot_vcpus;
    char *kernel;
    char *cmdline;
    GwSerialMode serial;
    char *serial_path;
    char *qmp_path;
    char *qtest_path;  /* the qtest accelerator's socket, or NULL */
    char *incoming;    /* NULL, "defer" or a migration URI */
    bool start_paused; /* QEMU's -S: vCPUs made but parked, in prelaunch */
    int qmp_fd; /* a listening socket QMP serves (QEMU's -chardev socket,fd=N),
                   owned by the config's maker; -1: none */
    uint16_t num_pci_segments;
    /* --platform iommu_segments: bit s set = every device on segment s
     * is behind the virtio-iommu (and must have iommu=on). */
    uint32_t iommu_segments;
    GwSeccompMode seccomp;
    GLogLevelFlags log_level; /* most verbose level shown */
    bool print_config;
    bool version;
    bool help;
    GPtrArray *vdpa;     /* GwVdpaConfig * */
    GPtrArray *vdpa_sim; /* GwVdpaSimConfig * */
} GwConfig;

/*
 * Parses and validates argv.  Returns a new config (free with
 * gw_config_free) or NULL with *errp set to one line naming the option
 * and the problem.  argv is not modified.
 */
GwConfig *gw_config_parse_argv(int argc, char **argv, GError **errp);

/* The --help text (caller frees). */
char *gw_config_help(void);

/* A config holding every default, as an empty command line gives. */
GwConfig *gw_config_new(void);

void gw_config_free(GwConfig *cfg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwConfig, gw_config_free)

/* The parsed configuration as JSON, auto ids filled in (caller owns). */
json_object *gw_config_to_json(const GwConfig *cfg);

/*
 * Parses one --vdpa value ("path=…,num_queues=…") into a new
 * GwVdpaConfig with defaults applied (id stays NULL when absent).
 */
GwVdpaConfig *gw_vdpa_config_parse(const char *str, GError **errp);

/*
 * Checks a --vdpa device against the machine (messages start with
 * `opt`, the option or command): id unique among
 * `taken_ids` (a set of char *, may be NULL), pci_segment below
 * num_pci_segments, num_queues in range.  Fills in an auto id from
 * *next_auto_id if none was given.  Used by the CLI and by hotplug.
 */
bool gw_vdpa_config_check(const char *opt, GwVdpaConfig *v,
                          GHashTable *taken_ids, uint16_t num_pci_segments,
                          unsigned *next_auto_id, GError **errp);

/*
 * --platform's value (num_pci_segments=<n>,iommu_segments=<list>) into
 * `cfg`: the list is Cloud Hypervisor's `[1,2]`, `[1-3]` or one number;
 * a segment that does not exist is an error (src/config-platform.c).
 */
bool gw_platform_config_parse(GwConfig *cfg, const char *str, GError **errp);

/*
 * The IOMMU rules for device `v` (messages start with `opt`), as Cloud
 * Hypervisor's: a device on a segment in `iommu_segments` needs
 * iommu=on; with `hotplug`, an iommu=on device must go on such a
 * segment (the VIOT, written at boot, covers no other new BDF).
 */
bool gw_vdpa_config_check_iommu(const char *opt, const GwVdpaConfig *v,
                                uint32_t iommu_segments, bool hotplug,
                                GError **errp);

/* Whether the machine needs a virtio-iommu: an iommu segment, or a
 * boot --vdpa with iommu=on. */
bool gw_config_wants_iommu(const GwConfig *cfg);

/* The segments of an iommu_segments bitmap as a JSON array of ints. */
json_object *gw_iommu_segments_to_json(uint32_t iommu_segments);

GwVdpaConfig *gw_vdpa_config_copy(const GwVdpaConfig *v);
void gw_vdpa_config_free(GwVdpaConfig *v);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwVdpaConfig, gw_vdpa_config_free)
json_object *gw_vdpa_config_to_json(const GwVdpaConfig *v);

/*
 * Checks a simulated device's settings (mgmtdev known, mac/backing for
 * the right type, capacity aligned, name usable) and sets `type`.  The
 * CLI and QMP both use it; messages carry no option prefix.
 */
bool gw_vdpa_sim_config_check(GwVdpaSimConfig *s, GError **errp);

/* Parses one --vdpa-sim value ("name=…,mgmtdev=…"). */
GwVdpaSimConfig *gw_vdpa_sim_config_parse(const char *str, GError **errp);
void gw_vdpa_sim_config_free(GwVdpaSimConfig *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwVdpaSimConfig, gw_vdpa_sim_config_free)

/* Parses "<n>[K|M|G|T]" (binary units); false with *errp on bad input. */
bool gw_parse_size(const char *str, uint64_t *out, GError **errp);

/* Parses "aa:bb:cc:dd:ee:ff"; false with *errp on bad input. */
bool gw_parse_mac(const char *str, uint8_t mac[6], GError **errp);
