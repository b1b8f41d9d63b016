/*
 * The kernel backend: a real vhost-vdpa char device fd.  Every call is
 * the plain system call; the only translation is errno into -errno.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <godwit/util.h>
#include "vdpa-priv.h"

typedef struct {
    GwVdpaBackend base;
    int fd;
} GwVdpaKernel;

static int
kernel_ioctl(GwVdpaBackend *b, unsigned long request, void *arg)
{
    GwVdpaKernel *k = (GwVdpaKernel *)b;

    return ioctl(k->fd, request, arg) < 0 ? -errno : 0;
}

static ssize_t
kernel_write(GwVdpaBackend *b, const void *buf, size_t len)
{
    GwVdpaKernel *k = (GwVdpaKernel *)b;
    ssize_t n = write(k->fd, buf, len);

    return n < 0 ? -errno : n;
}

static ssize_t
kernel_read(GwVdpaBackend *b, void *buf, size_t len)
{
    GwVdpaKernel *k = (GwVdpaKernel *)b;
    ssize_t n = read(k->fd, buf, len);

    return n < 0 ? -errno : n;
}

static void
kernel_free(GwVdpaBackend *b)
{
    GwVdpaKernel *k = (GwVdpaKernel *)b;

    /* The kernel resets the device and drops its maps on release. */
    close(k->fd);
    gw_vdpa_backend_finalize(b);
    g_free(k);
}

static const GwVdpaBackendOps kernel_ops = {
    .ioctl = kernel_ioctl,
    .write = kernel_write,
    .read = kernel_read,
    .free = kernel_free,
};

GwVdpaBackend *
gw_vdpa_kernel_new(int fd, const char *label)
{
    GwVdpaKernel *k = g_new0(GwVdpaKernel, 1);

    gw_vdpa_backend_init(&k->base, &kernel_ops, label);
    k->fd = fd;
    return &k->base;
}

/* The major of "vhost-vdpa" under "Character devices:", or -1. */
static int
vdpa_major(GError **errp)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    bool chr = false;

    if (!g_file_get_contents("/proc/devices", &text, NULL, errp)) {
        return -1;
    }
    lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        int major;
        char name[64];

        if (g_str_has_prefix(*l, "Character devices:")) {
            chr = true;
        } else if (g_str_has_prefix(*l, "Block devices:")) {
            chr = false;
        } else if (chr && sscanf(*l, "%d %63s", &major, name) == 2 &&
                   strcmp(name, "vhost-vdpa") == 0) {
            return major;
        }
    }
    return -1;
}

bool
gw_vdpa_kernel_is_vdpa_chrdev(dev_t rdev, GError **errp)
{
    int major = vdpa_major(errp);

    return major >= 0 && (unsigned)major == major(rdev);
}
