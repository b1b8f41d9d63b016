/*
 * Internals shared by src/qemu-cli.c (the option table, value parsing,
 * the simple options) and src/qemu-cli-machine.c (machine, memory, CPUs,
 * objects, chardevs, monitors, devices, and the checks across options).
 */
#pragma once

#include <godwit/qemu-cli.h>

/* A -chardev before anything uses it. */
typedef struct {
    char *id;
    char *backend; /* "socket" or "file" */
    int fd;        /* socket,fd=N: inherited; -1 otherwise */
    char *path;    /* socket,path= or file,path= */
    bool append;   /* file,append=on */
    bool used;     /* by -mon or a serial device */
} GwQemuCharSpec;

void gw_qemu_chardev_free(GwQemuCharSpec *c);

/* What parsing carries between options until gw_qemu_cli_finish. */
typedef struct {
    GwQemuCli *q;
    char *accel;           /* "kvm", "kvm:tcg", "tcg", or NULL */
    bool have_m;           /* -m given */
    char *mem_backend;     /* -object memory-backend-*'s id */
    uint64_t backend_size; /* and its size */
    char *machine_backend; /* -machine memory-backend= */
    bool have_monitor;
    char *serial_chardev; /* isa-serial's chardev= */
    GHashTable *chardevs; /* id → GwQemuCharSpec * */
} GwQemuParse;

/*
 * A value parsed into key → value (both newly allocated strings): JSON
 * when it starts with '{' (booleans become on/off, numbers decimal),
 * else QemuOpts' "[implied,]k=v,…" where a first item without '=' is the
 * value of `implied` (NULL: every item must be k=v).  NULL with *errp
 * on a malformed value or a key given twice.
 */
GHashTable *gw_qemu_opts(const char *opt, const char *val, const char *implied,
                         GError **errp);
/* Removes `key` and returns its value (caller frees), or NULL. */
char *gw_qemu_take(GHashTable *kv, const char *key);
/* Takes an on|off (yes|no, true|false) key into *out if present. */
bool gw_qemu_take_bool(const char *opt, GHashTable *kv, const char *key,
                       bool *out, GError **errp);
/* Takes `key`; if present it must be `want`, else the error says `why`. */
bool gw_qemu_take_expect(const char *opt, GHashTable *kv, const char *key,
                         const char *want, const char *why, GError **errp);
/* Fails naming the first key nobody took. */
bool gw_qemu_no_leftovers(const char *opt, GHashTable *kv, GError **errp);

bool gw_qemu_opt_machine(GwQemuParse *p, const char *val, GError **errp);
bool gw_qemu_opt_accel(GwQemuParse *p, const char *val, GError **errp);
bool gw_qemu_opt_cpu(GwQemuParse *p, const char *val, GError **errp);
bool gw_qemu_opt_m(GwQemuParse *p, const char *val, GError **errp);
bool gw_qemu_opt_smp(GwQemuParse *p, const char *val, GError **errp);
bool gw_qemu_opt_object(GwQemuParse *p, const char *val, GError **errp);
bool gw_qemu_opt_chardev(GwQemuParse *p, const char *val, GError **errp);
bool gw_qemu_opt_mon(GwQemuParse *p, const char *val, GError **errp);
bool gw_qemu_opt_qmp(GwQemuParse *p, const char *val, GError **errp);
bool gw_qemu_opt_device(GwQemuParse *p, const char *val, GError **errp);
bool gw_qemu_opt_netdev(GwQemuParse *p, const char *val, GError **errp);

/* The checks across options (machine and kernel, memory backend, serial,
 * accelerator), once every option is read. */
bool gw_qemu_cli_finish(GwQemuParse *p, GError **errp);
