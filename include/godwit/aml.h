/*
 * aml: a small encoder for the ACPI Machine Language the DSDT is made
 * of — just what godwit's tables use.  Code reads like the ASL it
 * encodes:
 *
 *     GwAml *dev = gw_aml_device("S01");
 *     gw_aml_append(dev, gw_aml_name("_ADR", gw_aml_int(0x10000)));
 *     gw_aml_append(scope, dev);
 *
 * Every constructor returns a new node; every function that takes a node
 * as an argument takes ownership of it (frees it once encoded), so a
 * tree is built without temporaries.  Blocks (scope, device, method, if,
 * field) collect children with gw_aml_append and are closed, with their
 * package length, when appended to their parent or by gw_aml_encode.
 * Bad names (longer than 4 characters a segment) are programming errors
 * (g_assert).
 *
 * Threads: none of its own; a tree belongs to the thread building it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

typedef struct GwAml GwAml;

/* Frees a node and whatever it holds (for trees abandoned half-built). */
void gw_aml_free(GwAml *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwAml, gw_aml_free)

/* Encodes `a` (closing it if it is a block) and frees it. */
GByteArray *gw_aml_encode(GwAml *a);

/* Appends `child`, encoded, to the block or list `parent`. */
void gw_aml_append(GwAml *parent, GwAml *child);

/* ---- data ---- */
GwAml *gw_aml_int(uint64_t v); /* shortest encoding: Zero, One, Byte… */
GwAml *gw_aml_string(const char *s);
GwAml *gw_aml_eisaid(const char *id); /* "PNP0A03", as EisaId() */
GwAml *gw_aml_path(const char *path); /* reference: "PCIU", "\\_SB.PCI0" */
GwAml *gw_aml_arg(unsigned n);        /* Arg0-Arg6 */
GwAml *gw_aml_package(void);          /* Package () { appended items } */
/* Buffer holding a resource template: `res` plus the end tag. */
GwAml *gw_aml_resource_template(GByteArray *res);

/* ---- resource descriptors, appended to a byte array ---- */
void gw_aml_res_bus(GByteArray *r, uint16_t min, uint16_t max);
void gw_aml_res_io(GByteArray *r, uint16_t port, uint8_t len);
void gw_aml_res_io_window(GByteArray *r, uint16_t min, uint16_t max);
void gw_aml_res_mem32_window(GByteArray *r, uint32_t min, uint32_t max);
void gw_aml_res_mem32_fixed(GByteArray *r, uint32_t base, uint32_t len);

/* ---- named objects ---- */
GwAml *gw_aml_name(const char *name, GwAml *value);
GwAml *gw_aml_mutex(const char *name, uint8_t sync_level);
GwAml *gw_aml_opregion_io(const char *name, uint16_t port, uint8_t len);

/* Field (region, access, NoLock, update) { appended field units } */
typedef enum {
    GW_AML_DWORD_ACC = 3,
} GwAmlAccess;
typedef enum {
    GW_AML_PRESERVE = 0,
    GW_AML_WRITE_AS_ZEROS = 2,
} GwAmlUpdate;
GwAml *gw_aml_field(const char *region, GwAmlAccess acc, GwAmlUpdate upd);
GwAml *gw_aml_field_unit(const char *name, unsigned bits);

/* ---- blocks ---- */
GwAml *gw_aml_scope(const char *path);
GwAml *gw_aml_device(const char *name);
GwAml *gw_aml_method(const char *name, unsigned nargs, bool serialized);
GwAml *gw_aml_if(GwAml *predicate);

/* ---- statements and expressions ---- */
GwAml *gw_aml_store(GwAml *src, GwAml *dst);       /* dst = src */
GwAml *gw_aml_and(GwAml *a, GwAml *b);             /* a & b */
GwAml *gw_aml_shift_left(GwAml *a, GwAml *n);      /* a << n */
GwAml *gw_aml_notify(GwAml *object, GwAml *value); /* Notify (o, v) */
GwAml *gw_aml_acquire(const char *mutex, uint16_t timeout);
GwAml *gw_aml_release(const char *mutex);
GwAml *gw_aml_return(GwAml *value);
/* Calls method `path` with `nargs` arguments (nodes, consumed). */
GwAml *gw_aml_call(const char *path, unsigned nargs, ...);
