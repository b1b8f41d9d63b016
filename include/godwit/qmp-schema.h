/*
 * qmp-schema: the QMP commands and events as declared in qmp/schema.json
 * (embedded at build time).  Validates a command's arguments against its
 * declaration with QEMU's error texts, and renders query-qmp-schema in
 * QEMU's SchemaInfo shape.
 *
 * Threads: main thread (immutable after load, so any thread could read).
 */
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <json-c/json.h>

typedef struct GwQmpSchema GwQmpSchema;

/* Parses the embedded schema; a broken schema is a build bug (asserts). */
GwQmpSchema *gw_qmp_schema_load(void);
void gw_qmp_schema_free(GwQmpSchema *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwQmpSchema, gw_qmp_schema_free)

bool gw_qmp_schema_has_command(const GwQmpSchema *s, const char *name);

/*
 * Checks `args` (an object, or NULL for none) against command `name`:
 * unknown, missing and mistyped members, recursively.  false with a
 * GenericError-worthy message in *errp ("Parameter 'x' is unexpected").
 */
bool gw_qmp_schema_check_args(const GwQmpSchema *s, const char *name,
                              json_object *args, GError **errp);

/* query-qmp-schema's return for the commands `registered` (name set). */
json_object *gw_qmp_schema_introspect(const GwQmpSchema *s,
                                      GHashTable *registered);
