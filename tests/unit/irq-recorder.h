/*
 * A GwIrqOps that records what devices ask of the interrupt controller
 * (routes, irqfds, ioeventfds, MSIs) instead of doing it, for unit tests
 * of PCI devices without KVM.
 */
#pragma once

#include <stdbool.h>
#include <godwit/irq.h>

#define REC_FIRST_GSI 24
#define REC_MAX_GSI   64

typedef struct {
    int routes;
    bool in_use[REC_MAX_GSI]; /* a deleted route's GSI is used again */
    uint64_t route_addr[REC_MAX_GSI];
    uint32_t route_data[REC_MAX_GSI];
    int irqfds;     /* bound now */
    int irqfd_gsi;  /* last bound, -1 after an unbind */
    int irqfd_fd;   /* the eventfd last bound: the guest's interrupt */
    int ioeventfds; /* registered now */
    uint64_t ioeventfd_addr;
    int msis;
    uint32_t last_msi_data;
} GwIrqRecorder;

/* A chip whose ctx is `r` (zeroed by the caller). */
GwIrqChip gw_irq_recorder_chip(GwIrqRecorder *r);
