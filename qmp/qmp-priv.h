/* Internals shared by qmp/server.c, qmp/fds.c and qmp/json-stream.c. */
#pragma once

#include <godwit/qmp-schema.h>
#include <godwit/qmp.h>

typedef struct GwFdSets GwFdSets;
typedef struct GwJsonStream GwJsonStream;

struct GwQmpClient {
    GwQmpServer *server;
    int fd;
    guint in_watch, out_watch;
    GwJsonStream *in; /* requests being received */
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
/* fds in every set. */
unsigned gw_fdsets_count(GwFdSets *f);
/* fds QMP holds for its clients: every fd set and every getfd name. */
unsigned gw_qmp_server_held_fds(GwQmpServer *s);

/* Registers getfd, closefd, add-fd, remove-fd, query-fdsets. */
void gw_qmp_fds_register(GwQmpServer *s);

/*
 * A client's input: bytes in, JSON texts out, split as QEMU's JSON
 * streamer splits them (qobject/json-streamer.c) and parsed strictly
 * (json-c's STRICT mode; QEMU's single-quoted strings and \' are
 * accepted).  After a malformed text the stream resynchronises as
 * QEMU's does and goes on with what follows.  Limits: GW_QMP_MAX_NESTING
 * levels of {} and [], GW_QMP_MAX_REQUEST bytes per text.
 */
GwJsonStream *gw_json_stream_new(void);
void gw_json_stream_free(GwJsonStream *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwJsonStream, gw_json_stream_free)
/* Keeps a copy of `buf` for gw_json_stream_next.  Ignored once dead. */
void gw_json_stream_feed(GwJsonStream *s, const char *buf, size_t len);
/*
 * Takes the next complete text from what was fed.  True with *value (a
 * new reference; NULL for the text `null`) if it is JSON.  False with
 * *errp set if it is not: GW_ERROR_INVALID, the stream has gone past it
 * and may be read on; GW_ERROR_FAILED, it grew beyond GW_QMP_MAX_REQUEST
 * and the stream is dead (nothing more comes out of it).  False without
 * an error when more bytes are needed.
 */
bool gw_json_stream_next(GwJsonStream *s, json_object **value, GError **errp);
