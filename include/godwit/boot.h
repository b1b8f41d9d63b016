/*
 * boot: what the guest finds in memory at power-on.  A Multiboot v1
 * loader for 32-bit ELF kernels (segments, info block, command line,
 * memory map) and the ACPI tables (RSDP in the BIOS area, RSDT/XSDT,
 * FADT with its PM1 and GPE0 blocks, FACS, MADT, MCFG, DSDT with a PCI
 * host bridge per segment and, optionally, their hotplug slots).
 *
 * Threads: main thread, while no vCPU runs.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <godwit/memory.h>

#define GW_MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002u
#define GW_MULTIBOOT_INFO_GPA         0x9000u
#define GW_MAX_CMDLINE                2048

typedef struct {
    uint32_t entry;    /* EIP at start */
    uint32_t info_gpa; /* EBX at start; EAX is the bootloader magic */
    uint32_t image_start, image_end;
} GwBootImage;

/*
 * Loads the Multiboot v1 ELF `path` into guest RAM and writes the
 * Multiboot info (command line, memory map) for it.  Fails with one line
 * naming the file and the problem: unreadable, not ELF, not 32-bit x86,
 * no Multiboot header, segments outside RAM or below 1 MiB.
 */
bool gw_multiboot_load(GwGuestMemory *mem, const char *path,
                       const char *cmdline, GwBootImage *out, GError **errp);

/* The same from a buffer (tests); `name` is used in messages. */
bool gw_multiboot_load_buf(GwGuestMemory *mem, const char *name,
                           const uint8_t *buf, size_t len, const char *cmdline,
                           GwBootImage *out, GError **errp);

/* I/O ports of the ACPI PM block that the FADT points at. */
#define GW_ACPI_PM_BASE     0x600
#define GW_ACPI_PM1_STS     0x600 /* 2 bytes, write 1 to clear */
#define GW_ACPI_PM1_EN      0x602 /* 2 bytes */
#define GW_ACPI_PM1_CNT     0x604 /* 2 bytes */
#define GW_ACPI_RESET       0x608 /* 1 byte; the FADT's RESET_REG */
#define GW_ACPI_PM_LEN      0x10
#define GW_ACPI_SCI_IRQ     9
#define GW_ACPI_S5_SLP_TYP  5
#define GW_ACPI_RESET_VALUE 0x06
/* GPE0 block at QEMU pc's (PIIX4) address: status word, then enable word. */
#define GW_ACPI_GPE0_BASE 0xafe0
#define GW_ACPI_GPE0_LEN  4
#define GW_ACPI_RSDP_GPA  0xE0000u
#define GW_IOAPIC_GPA     0xFEC00000u
#define GW_LAPIC_GPA      0xFEE00000u

typedef struct {
    unsigned n_cpus;
    uint64_t ecam_base; /* MCFG: segment 0, bus 0 */
    /*
     * PCI segments (0 means 1): segment 0 is PCI0 with ecam_base; each
     * further segment s gets an MCFG entry and a host bridge PC0s (_SEG
     * s, its own 32-bit window) where gw_pci_segment_layout puts them;
     * with pci_hotplug, its slots (BSEL s) too.
     */
    unsigned n_pci_segments;
    /*
     * ACPI PCI hotplug (QEMU's interface): the FADT gets GPE0_BLK and the
     * DSDT slots S01..S1F with _EJ0, the 0xae00 registers and \_GPE._E01.
     * Set it only when the GPE0 block (gw_acpi_gpe_ops) and the hotplug
     * registers (gw_acpi_pcihp_ops) are on the port bus.
     */
    bool pci_hotplug;
    /*
     * ACPI VIOT (revision 0, as QEMU's and Cloud Hypervisor's), written
     * only with `viot`: one virtio-pci IOMMU node for the virtio-iommu at
     * segment 0, BDF `viommu_bdf`, and PCI range nodes pointing at it:
     * each segment in the `iommu_segments` bitmap whole (less the
     * IOMMU's own BDF), then each of `endpoints` ((segment << 16) | BDF,
     * as the IOMMU names them) not on such a segment.  Endpoint ids are
     * (segment << 16) | BDF throughout.
     */
    bool viot;
    uint16_t viommu_bdf;
    uint32_t iommu_segments;
    const uint32_t *endpoints;
    unsigned n_endpoints;
} GwAcpiConfig;

/* Writes every table below 1 MiB, RSDP at GW_ACPI_RSDP_GPA. */
bool gw_acpi_build(GwGuestMemory *mem, const GwAcpiConfig *cfg, GError **errp);
