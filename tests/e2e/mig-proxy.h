/*
 * A proxy between a migration's source and destination for the
 * migration e2e tests: it relays every connection (the main one, then
 * multifd channels, in accept order) both ways, and breaks one of them
 * on demand — cut (the stream ends there: a truncated stream) or
 * corrupted (one byte flipped, once) — at the next byte from the
 * source, or at a given offset of the source's stream.  Every call
 * asserts (tests only).
 */
#pragma once

#include <stdint.h>
#include <glib.h>

typedef enum { LINK_OK, LINK_CUT, LINK_CORRUPT } LinkFault;

#define PROXY_LINKS 8 /* connections: the main one, then channels */

typedef struct {
    int listen_fd;
    char *path, *to; /* where the source connects; the destination */
    GThread *thread; /* accepts, relays the main connection */
    GThread *links[PROXY_LINKS];
    int fault;        /* atomic LinkFault, acted on at the next byte */
    uint64_t auto_at; /* or at this source→destination offset (0: off) */
    int auto_fault;
    unsigned fault_link; /* the connection (in accept order) it hits */
    int stop;            /* atomic: accept no more */
} Proxy;

/* Listens on DIR/proxy.sock (p->path) and relays to the Unix socket at
 * `to`.  Set fault_link / auto_at / auto_fault before; `fault`
 * (g_atomic_int_set) at any time. */
void proxy_start(Proxy *p, const char *dir, const char *to);
/* Accepts no more connections and joins every relay (they end when
 * either side closes). */
void proxy_stop(Proxy *p);
