/*
 * Multiboot v1 entry of the godwit test guest.  The loader leaves us in
 * 32-bit protected mode with paging off; we load our own GDT (selectors
 * 0x10 code, 0x18 data, as godwit's boot GDT), a stack and an IDT for
 * exceptions, then call kmain(magic, info).
 *
 * Also holds the real-mode AP trampoline used by the smp workload: it is
 * copied below 1 MiB and entered by a SIPI with CS = vector << 8, IP = 0.
 */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003 /* page-align modules, provide mem info */

#define STACK_SIZE    16384
#define AP_STACK_SIZE 4096
#define AP_MAX        31

    .section .multiboot, "a"
    .align 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .text
    .code32
    .globl _start
_start:
    cli
    cld
    movl %eax, %esi
    movl %ebx, %edi
    lgdt gdt_desc
    ljmp $0x10, $1f
1:  movw $0x18, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movl $stack_top, %esp
    xorl %ebp, %ebp
    pushl $0
    popfl
    pushl %edi
    pushl %esi
    call kmain
2:  cli
    hlt
    jmp 2b

/* Exception stubs: push a dummy error code where the CPU pushes none. */
    .macro EXC vec
exc_\vec:
    .if (\vec == 8) || (\vec >= 10 && \vec <= 14) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
    .else
    pushl $0
    .endif
    pushl $\vec
    jmp exc_common
    .endm

    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    EXC \v
    .endr

exc_common:
    movl %esp, %eax
    pushl %eax
    call exception_handler
3:  cli
    hlt
    jmp 3b

    .section .rodata
    .align 4
    .globl exc_stubs
exc_stubs:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .long exc_\v
    .endr

/* ---- AP trampoline (position independent, runs at vector << 12) ---- */
    .text
    .code16
    .globl ap_tramp_start, ap_tramp_end
ap_tramp_start:
    cli
    cld
    movw %cs, %ax
    movw %ax, %ds
    lgdtl (ap_gdtr - ap_tramp_start)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x10, $ap_pm32
    .align 4
ap_gdtr:
    .word gdt_end - gdt - 1
    .long gdt
ap_tramp_end:

    .code32
ap_pm32:
    movw $0x18, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movl $1, %eax
    lock xaddl %eax, ap_next
    cmpl $AP_MAX, %eax
    jae 5f
    incl %eax
    shll $12, %eax              /* AP_STACK_SIZE */
    addl $ap_stacks, %eax
    movl %eax, %esp
    xorl %ebp, %ebp
    call ap_main
5:  cli
    hlt
    jmp 5b

    .data
    .align 8
    .globl gdt
gdt:
    .quad 0
    .quad 0
    .quad 0x00CF9A000000FFFF    /* 0x10: code, flat 4 GiB */
    .quad 0x00CF92000000FFFF    /* 0x18: data, flat 4 GiB */
gdt_end:
gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt
    .align 4
ap_next:
    .long 0

    .bss
    .align 16
stack_bottom:
    .skip STACK_SIZE
stack_top:
    .align 4096
ap_stacks:
    .skip AP_STACK_SIZE * AP_MAX

    .section .note.GNU-stack, "", @progbits
