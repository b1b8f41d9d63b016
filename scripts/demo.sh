#!/bin/bash
# README command 1: install what is missing, build, run the demo.
#
# Today's demo: godwit as a vDPA-capable VMM under QMP control — a
# simulated vDPA block device created and plugged the way the kernel's
# vdpa_sim is, the QEMU-compatible control socket driven by godwit-ctl,
# where /dev/kvm works, the test guest booted, and a live migration of a
# running guest with a vDPA disk under I/O from one godwit to another,
# its downtime, and the guest's disk rounds passing on the destination
# (under --qtest where there is no /dev/kvm: the same migration of the
# board and its disk, no guest code).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
gw_install_deps $GW_BUILD_DEPS

[ -d build/meson-private ] || meson setup build >/dev/null
ninja -C build >/dev/null
gw=./build/godwit
ctl=./build/godwit-ctl
run=$(mktemp -d /tmp/godwit-demo-XXXXXX)
export GODWIT_RUNTIME_DIR=$run
trap 'kill $pid 2>/dev/null || true; rm -rf "$run"' EXIT
step() { printf '\n== %s\n' "$*"; }

step "godwit $($gw --version | cut -d' ' -f2): the command line is checked before anything is created"
( set -x; $gw --vdpa path=/dev/vhost-vdpa-0,num_queues=0 ) || true

step "what godwit understood (Cloud Hypervisor's --vdpa grammar, ids filled in)"
( set -x; $gw --vdpa-sim name=vdpa0,mgmtdev=vdpasim_blk \
    --vdpa path=$run/vdpa/vdpa0,num_queues=1 --vdpa path=/dev/vhost-vdpa-1,id=disk1 \
    --print-config )

step "a running godwit with a simulated vDPA disk (like 'vdpa dev add'), under QMP"
$gw --qmp $run/qmp.sock --vdpa-sim name=vdpa0,mgmtdev=vdpasim_blk,capacity=128M \
    --log-level info &
pid=$!
( set -x
  $ctl --qmp $run/qmp.sock --human query-version
  $ctl --qmp $run/qmp.sock --human x-godwit-query-vdpa-sim
  $ctl --qmp $run/qmp.sock --human x-godwit-vdpa-sim-add name=net0 mgmtdev=vdpasim_net mac=52:54:00:12:34:56
  $ctl --qmp $run/qmp.sock --human stop
  $ctl --qmp $run/qmp.sock --human query-status
  $ctl --qmp $run/qmp.sock --human cont
  $ctl --qmp $run/qmp.sock --human query-kvm
  $ctl --qmp $run/qmp.sock --human quit )
wait $pid

step "the whole board without vCPUs (--qtest: no /dev/kvm needed), a second vDPA disk hot-plugged over QMP"
$gw --qtest $run/qtest.sock --qmp $run/qmp.sock \
    --vdpa-sim name=vdpa0,mgmtdev=vdpasim_blk --vdpa path=$run/vdpa/vdpa0,id=disk0 \
    --vdpa-sim name=vdpa2,mgmtdev=vdpasim_blk,capacity=64M &
pid=$!
( set -x
  $ctl --qmp $run/qmp.sock device_add driver=vhost-vdpa-device-pci vhostdev=$run/vdpa/vdpa2 id=disk1
  $ctl --qmp $run/qmp.sock --human x-query-virtio )
( set -x; $ctl --qmp $run/qmp.sock --human x-query-virtio-status \
    path=/machine/peripheral/disk1/virtio-backend ) | grep -E '^(\+|name|num-vqs|host-features|broken)'
( set -x; $ctl --qmp $run/qmp.sock quit )
wait $pid

kvm_ok=
step "booting the test guest with the vDPA disk plugged"
if $gw --kernel build/tests/guest/guest.elf --cmdline "memtest mib=1; pci-list; poweroff" \
       --vdpa-sim name=vdpa1,mgmtdev=vdpasim_blk --vdpa path=$run/vdpa/vdpa1 \
       --serial stdio 2>$run/boot.err; then
    echo "(the guest powered itself off)"
    kvm_ok=1
else
    echo "godwit could not boot here: $(cat $run/boot.err)"
    echo "(this host has no usable /dev/kvm; on a KVM host the guest runs)"
fi

# Waits (at most 60 s) until file $1 holds $2 lines matching $3.
wait_lines() {
    for _ in $(seq 600); do
        [ "$(grep -c "$3" "$1" 2>/dev/null || true)" -ge "$2" ] && return 0
        sleep 0.1
    done
    echo "timed out waiting for '$3' in $1"; return 1
}

step "live migration: a running VM with a vDPA disk moves to a second godwit process"
guest=(--kernel build/tests/guest/guest.elf --cmdline "blk rounds=0")
[ -n "${kvm_ok:-}" ] || guest=(--qtest $run/qt.sock)
# The disk is a file both "hosts" share, as a real vDPA disk sits on
# shared storage; each process has its own simulated device on it.
disk() { echo "--vdpa-sim name=$1,mgmtdev=vdpasim_blk,capacity=1M,backing=$run/disk.img --vdpa path=$run/vdpa/$1,id=disk0"; }
$gw "${guest[@]/qt.sock/qt-src.sock}" $(disk src-disk) --serial file=$run/src.log \
    --qmp $run/src.sock &
pid=$!
$gw "${guest[@]/qt.sock/qt-dst.sock}" $(disk dst-disk) --serial file=$run/dst.log \
    --qmp $run/dst.sock --incoming unix:$run/mig.sock &
dpid=$!
trap 'kill $pid $dpid 2>/dev/null || true; rm -rf "$run"' EXIT
sleep 0.5
if [ "${guest[0]}" = --kernel ]; then
    echo "(the guest rewrites three regions of its vDPA disk each round and reads them back)"
    wait_lines $run/src.log 2 "round=" && tail -n 2 $run/src.log
else
    echo "(no usable /dev/kvm: the board runs under --qtest, no guest code)"
fi
( set -x; $ctl --qmp $run/src.sock migrate unix:$run/mig.sock
  $ctl --qmp $run/src.sock --human query-migrate ) | grep -E '^(\+|status|downtime|total-time)'
( set -x; $ctl --qmp $run/src.sock --human query-status
  $ctl --qmp $run/dst.sock --human query-status )
if [ "${guest[0]}" = --kernel ]; then
    echo "(the destination's console: the guest goes on with the same disk and rings, every round verified)"
    wait_lines $run/dst.log 2 "round=" && tail -n 2 $run/dst.log
fi
( set -x; $ctl --qmp $run/src.sock quit; $ctl --qmp $run/dst.sock quit )
wait $pid $dpid
