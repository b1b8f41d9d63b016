/*
 * bench-proc: a VMM process (godwit or QEMU) driven over QMP by the
 * migration benchmarks (migrate.c, cpr.c), and their small helpers.
 * Every wait is bounded by BENCH_WAIT_MS; anything unexpected ends the
 * benchmark with g_error.
 */
#pragma once

#include <stdint.h>
#include <glib.h>
#include <json-c/json.h>
#include <godwit/qmp-client.h>

#define BENCH_WAIT_MS (120 * 1000)

typedef struct {
    GPid pid;
    GwQmpConn *qmp;
} Proc;

/* Starts argv with env (NULL: ours), connected and negotiated on the
 * QMP socket `qmp_sock` (removed first).  QEMU's stderr is dropped. */
void proc_spawn(Proc *p, char **argv, char **env, const char *qmp_sock);
/* SIGTERM, reaped, disconnected. */
void proc_reap(Proc *p);
/* `cmd` with `args` (JSON text or NULL): the whole reply (caller owns);
 * an error reply ends the benchmark. */
json_object *proc_qmp(Proc *p, const char *cmd, const char *args);
void proc_qmp_void(Proc *p, const char *cmd, const char *args);
/* Until the MIGRATION event with status `want`; "failed" ends it. */
void proc_wait_migration(Proc *p, const char *want);

/* The median of t[0..n) (sorted in place). */
double bench_median(double *t, int n);
/* splitmix64: the same random bytes for every VMM from one seed. */
uint64_t bench_splitmix64(uint64_t *s);
