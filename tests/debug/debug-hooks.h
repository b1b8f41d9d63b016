/*
 * Test-only QMP commands, compiled into tests/debug/godwit-debug alone
 * (src/main.c with GW_DEBUG_HOOKS).
 */
#pragma once

#include <godwit/qmp.h>

/* Registers x-godwit-debug-syscall on s and installs its signal
 * handler (SIGUSR2).  Main thread, once, before the loop runs. */
void gw_debug_hooks_register(GwQmpServer *s);
