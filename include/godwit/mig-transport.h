/*
 * mig-transport: the URIs a migration goes over, as QEMU spells them:
 * tcp:HOST:PORT, unix:PATH, fd:NAME (a getfd name on QMP; a number on
 * the command line), file:PATH.  Connecting and accepting are blocking
 * and meant for the migration threads; listening is for the main thread.
 *
 * Threads: any; nothing here keeps state.
 */
#pragma once

#include <stdbool.h>
#include <glib.h>

typedef enum {
    GW_MIG_URI_TCP,
    GW_MIG_URI_UNIX,
    GW_MIG_URI_FD,
    GW_MIG_URI_FILE,
} GwMigUriKind;

typedef struct {
    GwMigUriKind kind;
    char *host, *port; /* tcp: (host without [] for IPv6) */
    char *path;        /* unix:, file: */
    char *fd_name;     /* fd: */
} GwMigUri;

/*
 * Parses `uri`; false with a message naming what is wrong ("migration
 * URI 'x': expected tcp:HOST:PORT, unix:PATH, fd:NAME or file:PATH").
 */
bool gw_mig_uri_parse(const char *uri, GwMigUri *out, GError **errp);
void gw_mig_uri_clear(GwMigUri *u);

/* Whether the transport can carry the destination's answers back. */
bool gw_mig_uri_has_return_path(const GwMigUri *u);

/*
 * The source's end: connects (tcp:, unix:) or creates the file 0600
 * (file:), with TCP_NODELAY and large socket buffers.  fd: is resolved
 * by the caller.  The fd (O_CLOEXEC), or -1 with *errp.
 */
int gw_mig_uri_connect(const GwMigUri *u, GError **errp);

/*
 * The destination's end: a listening socket (tcp:, unix: — the path is
 * created 0600 and the caller removes it) or the file opened for reading
 * (file:, nothing to accept).  *listening says which.  -1 with *errp.
 */
int gw_mig_uri_listen(const GwMigUri *u, bool *listening, GError **errp);

/* Gives an accepted or connected stream socket migration's options. */
void gw_mig_socket_tune(int fd);
