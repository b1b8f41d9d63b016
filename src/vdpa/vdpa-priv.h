/*
 * vdpa-priv: what a backend implementation provides to the seam.  Only
 * src/vdpa/ includes this; layers above see the opaque GwVdpaBackend.
 */
#pragma once

#include <godwit/vdpa.h>

typedef struct {
    int (*ioctl)(GwVdpaBackend *b, unsigned long request, void *arg);
    ssize_t (*write)(GwVdpaBackend *b, const void *buf, size_t len);
    ssize_t (*read)(GwVdpaBackend *b, void *buf, size_t len);
    /* Last reference gone: close the device and free the backend. */
    void (*free)(GwVdpaBackend *b);
    /* Optional: gw_vdpa_backend_has_private_storage (NULL: false). */
    bool (*private_storage)(GwVdpaBackend *b);
} GwVdpaBackendOps;

/* Embedded first in every implementation's struct. */
struct GwVdpaBackend {
    const GwVdpaBackendOps *ops;
    gint refcount;
    char *label;
};

/* Initialises the common part (refcount 1, label copied). */
void gw_vdpa_backend_init(GwVdpaBackend *b, const GwVdpaBackendOps *ops,
                          const char *label);
/* Frees the common part (the label); implementations call it last. */
void gw_vdpa_backend_finalize(GwVdpaBackend *b);

/* The kernel backend over an open vhost-vdpa fd (takes ownership). */
GwVdpaBackend *gw_vdpa_kernel_new(int fd, const char *label);

/* True if st_rdev is a vhost-vdpa char device (major from /proc/devices). */
bool gw_vdpa_kernel_is_vdpa_chrdev(dev_t rdev, GError **errp);

/* Simulator side of opening (src/vdpa/sim/registry.c). */
GwVdpaBackend *gw_vdpa_sim_open_node(GwVdpaSimRegistry *reg, dev_t dev,
                                     ino_t ino, const char *label,
                                     GError **errp);
