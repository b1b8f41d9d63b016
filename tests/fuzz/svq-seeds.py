#!/usr/bin/env python3
"""Writes the seeds of fuzz-svq (tests/fuzz/corpus/svq/): the rings a
driver builds for the requests of tests/unit/test-vdpa-svq.c (blk writes
and reads of header, data and status, get-id, flush) and net frames (a
broadcast TX frame that loops back into a posted RX buffer), in the
target's input format (see tests/fuzz/fuzz-svq.c), plus a few rings
that break a rule (loop, head out of range, avail idx far ahead,
INDIRECT), so each check is reached from the start.

    python3 tests/fuzz/svq-seeds.py tests/fuzz/corpus/svq
"""
import os
import struct
import sys

NEXT, WRITE, INDIRECT = 1, 2, 4
BLK_IN, BLK_OUT, BLK_FLUSH, BLK_GET_ID = 0, 1, 4, 8


def op(kind, queue=0, idx=0, payload=b""):
    return struct.pack("<BBH", kind, queue, idx) + payload.ljust(16, b"\0")


def desc(q, i, addr, length, flags=0, nxt=0):
    return op(0, q, i, struct.pack("<QIHH", addr, length, flags, nxt))


def ram(gpa, data):
    """16-byte RAM writes covering data at gpa (16-byte aligned)."""
    assert gpa % 16 == 0
    return b"".join(op(3, 0, (gpa + o) // 16, data[o:o + 16])
                    for o in range(0, len(data), 16))


def publish(q, head):
    return op(1, q, head)


def kick(q):
    return op(4, q)


SWITCH = op(5)


def blk_req(first, base, kind, data_len, sector=0):
    """A blk request on descriptors first..first+2 with its buffers at
    base (header), base + 0x1000 (data), base + 0x2000 (status)."""
    hdr = struct.pack("<IIQ", kind, 0, sector)
    out = ram(base, hdr)
    d = first
    ops = [desc(0, d, base, 16, NEXT, d + 1)]
    if data_len:
        d += 1
        ops.append(desc(0, d, base + 0x1000, data_len,
                        NEXT | (WRITE if kind in (BLK_IN, BLK_GET_ID) else 0),
                        d + 1))
        if kind == BLK_OUT:
            out += ram(base + 0x1000, bytes(range(64)))
    d += 1
    ops.append(desc(0, d, base + 0x2000, 1, WRITE))
    return out + b"".join(ops) + publish(0, first)


def blk(size_log=3):
    return bytes([size_log << 1])


def net(size_log=3):
    return bytes([size_log << 1 | 1])


def net_rx_tx():
    frame = b"\xff" * 6 + b"\x02\0\0\0\0\x01" + b"\x08\x00" + bytes(46)
    hdr = bytes(12)  # virtio_net_hdr_v1, no offloads
    return (net() + desc(0, 0, 0x10000, 1526, WRITE) + publish(0, 0) +
            kick(0) + ram(0x20000, hdr + frame[:4]) +
            ram(0x20010, frame[4:]) +
            desc(1, 0, 0x20000, 12 + len(frame)) + publish(1, 0) + kick(1))


SEEDS = {
    "blk-write": blk() + blk_req(0, 0x1000, BLK_OUT, 512) + kick(0),
    "blk-read": blk() + blk_req(0, 0x1000, BLK_IN, 4096, 8) + kick(0),
    "blk-write-read-switch":
        blk() + blk_req(0, 0x1000, BLK_OUT, 512) +
        blk_req(3, 0x4000, BLK_IN, 512) + kick(0) + SWITCH +
        blk_req(6, 0x8000, BLK_IN, 512) + kick(0),
    "blk-get-id-flush":
        blk() + blk_req(0, 0x1000, BLK_GET_ID, 20) +
        blk_req(3, 0x4000, BLK_FLUSH, 0) + kick(0),
    "blk-256-no-interrupt":
        blk(7) + op(2, 0, 0, struct.pack("<H", 1)) +
        blk_req(0, 0x1000, BLK_OUT, 512) + kick(0),
    "net-rx-tx": net_rx_tx(),
    "hostile-loop":
        blk() + desc(0, 0, 0x1000, 16, NEXT, 1) +
        desc(0, 1, 0x2000, 16, NEXT, 0) + publish(0, 0) + kick(0),
    "hostile-head-out-of-range": blk() + publish(0, 0xffff) + kick(0),
    "hostile-avail-far-ahead": blk() + op(2, 0, 0x8000) + kick(0),
    "hostile-indirect":
        blk() + desc(0, 0, 0x1000, 32, INDIRECT) + publish(0, 0) + kick(0),
    "hostile-outside-ram":
        blk() + desc(0, 0, 0xfffffffffffff000, 0xffffffff, NEXT, 1) +
        desc(0, 1, 0x2000, 1, WRITE) + publish(0, 0) + kick(0),
}

if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz/corpus/svq"
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
