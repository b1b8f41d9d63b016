/*
 * Small helpers shared by every module: fd ownership, json-c ownership,
 * the error domain.  No state lives here.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <unistd.h>
#include <glib.h>
#include <json-c/json.h>

/* The single error domain of godwit; codes say what kind of failure. */
#define GW_ERROR gw_error_quark()
GQuark gw_error_quark(void);

typedef enum {
    GW_ERROR_FAILED,    /* generic: the message says it all */
    GW_ERROR_INVALID,   /* bad input from a user or a peer */
    GW_ERROR_NOT_FOUND, /* a named object does not exist */
    GW_ERROR_EXISTS,    /* a name is taken */
    GW_ERROR_BUSY,      /* the object is in a state that forbids this */
    GW_ERROR_NO_KVM,    /* /dev/kvm missing or lacking a capability */
} GwErrorCode;

/* GLib 2.76's g_autofd is not in Debian 12: an int that closes itself. */
typedef int GwFd;
static inline void
gw_fd_cleanup(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
}
#define gw_autofd __attribute__((cleanup(gw_fd_cleanup))) GwFd

/* Hands an fd out of a gw_autofd variable. */
static inline int
gw_steal_fd(int *fd)
{
    int ret = *fd;
    *fd = -1;
    return ret;
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)

/* Sets *errp from errno with "<what>: <strerror>"; returns false. */
bool gw_error_errno(GError **errp, int err, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

/*
 * Creates a listening Unix socket at `path`, mode 0600.  A socket file
 * nobody listens on (left by a crash) is replaced; a live one or any
 * other file is an error.  Messages start with `opt` ("--qmp").  Returns
 * the fd (O_CLOEXEC; the caller removes `path` when done), or -1 with
 * *errp set and nothing left behind.
 */
int gw_unix_listen(const char *opt, const char *path, int backlog,
                   GError **errp);

/* Connects to the Unix socket at `path`; the fd (O_CLOEXEC), or -1 with
 * errno set (ENAMETOOLONG for a path too long). */
int gw_unix_connect(const char *path);
