/*
 * The allow-lists (src/sandbox-rules.c) as src/sandbox.c reads them.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <seccomp.h>
#include <godwit/sandbox.h>

/*
 * One allowed syscall, with at most one argument comparison: a syscall
 * listed several times is allowed when any of its rules matches.
 */
typedef struct {
    const char *name;
    int arg; /* -1: any arguments; else the argument compared */
    enum scmp_compare op;
    uint64_t a, b;  /* as struct scmp_arg_cmp's datum_a, datum_b */
    bool a_is_pid;  /* datum_a is the process's pid, known at compile */
    int fail_errno; /* 0: allow; else the syscall fails with this errno */
} GwSandboxRule;

typedef struct {
    const GwSandboxRule *rules;
    unsigned n;
} GwSandboxRules;

/* The rule tables making up role's list, ending with {NULL, 0}. */
const GwSandboxRules *gw_sandbox_role_rules(GwSandboxRole role);
