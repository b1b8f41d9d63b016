/*
 * qmp-probe: the QMP commands libvirt's QEMU driver sends to learn what
 * an emulator is (its capability probe) and to read a domain back at
 * start: query-target, qom-list-types, device-list-properties,
 * qom-list-properties, query-machines, query-cpu-definitions, the TPM,
 * SEV and SGX queries, query-command-line-options, query-chardev,
 * query-iothreads, query-named-block-nodes, query-block, and query-kvm
 * and query-name as the QEMU command line asked.
 *
 * Every answer describes what godwit has, no more: the types it can
 * create, the properties it takes, one machine; a type it lacks is
 * DeviceNotFound (which libvirt takes as "absent"), TPM models none, SEV
 * and SGX unavailable (GenericError, QEMU's answer on such hosts).
 *
 * Thread: main thread only.
 */
#pragma once

#include <godwit/qemu-cli.h>
#include <godwit/qmp.h>
#include <godwit/vm.h>

typedef struct GwQmpProbe GwQmpProbe;

/*
 * The commands' state for `vm`.  `q` is the QEMU command line the
 * process was started with, or NULL for godwit's own: then KVM is
 * "enabled" exactly when a machine runs on it.  Both must outlive the
 * probe, and the probe the server it is registered on.
 */
GwQmpProbe *gw_qmp_probe_new(GwVm *vm, const GwQemuCli *q);
void gw_qmp_probe_free(GwQmpProbe *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GwQmpProbe, gw_qmp_probe_free)

/* Registers the commands on `s` (replacing query-kvm and query-name). */
void gw_qmp_probe_register(GwQmpProbe *p, GwQmpServer *s);
