/* Internals shared by qmp/server.c and qmp/fds.c. */
#pragma once

#include <godwit/qmp-schema.h>
#include <godwit/qmp.h>

typedef struct GwFdSets GwFdSets;

struct GwQmpClient {
    GwQmpServer *server;
    int fd;
    guint in_watch, out_watch;
    json_tokener *tok;
    size_t req_bytes; /* bytes of the request being parsed */
    GString *out;     /* replies and events not yet written */
    bool negotiated;
    bool dead;         /* closed; freed from an idle source */
    GArray *fds;       /* int: received with requests, not yet claimed */
    GHashTable *named; /* getfd name → fd (owned) */
};

GwFdSets *gw_fdsets_new(void);
void gw_fdsets_free(GwFdSets *f);
int gw_fdsets_open(GwFdSets *f, unsigned long id, int flags, GError **errp);
GwFdSets *gw_qmp_server_fdsets(GwQmpServer *s);

/* Registers getfd, closefd, add-fd, remove-fd, query-fdsets. */
void gw_qmp_fds_register(GwQmpServer *s);
