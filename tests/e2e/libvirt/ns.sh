#!/bin/sh
# Runs inside `unshare -m -p -f --kill-child --mount-proc`: gives libvirt
# private copies of its directories (and of /etc/passwd and /etc/group,
# with the libvirt-qemu user and group it needs), starts libvirtd, then
# runs each line read on stdin as a shell command, printing its output
# and then "@@END <status>".  The host's configuration is never touched:
# everything lives under WORKDIR and disappears with the namespace.
# Usage: ns.sh WORKDIR
set -eu
W=$1
mount --make-rprivate /
for d in /etc/libvirt /run/libvirt /var/lib/libvirt /var/cache/libvirt \
         /var/log/libvirt; do
    mkdir -p "$W/root$d" "$d"
    [ "$d" = /etc/libvirt ] && cp -a /etc/libvirt/. "$W/root$d/"
    mount --bind "$W/root$d" "$d"
done
# godwit's simulated vDPA nodes (root's runtime directory), private too.
mkdir -p "$W/root/run/godwit" /run/godwit
chmod 0700 "$W/root/run/godwit"
mount --bind "$W/root/run/godwit" /run/godwit
mkdir -p /var/lib/libvirt/qemu /var/cache/libvirt/qemu /var/log/libvirt/qemu \
         /run/libvirt/qemu
cp /etc/passwd "$W/passwd"
cp /etc/group "$W/group"
grep -q '^libvirt-qemu:' "$W/group" || echo 'libvirt-qemu:x:64055:' >>"$W/group"
grep -q '^kvm:' "$W/group" || echo 'kvm:x:64056:' >>"$W/group"
grep -q '^libvirt-qemu:' "$W/passwd" ||
    echo 'libvirt-qemu:x:64055:64055::/var/lib/libvirt:/usr/sbin/nologin' \
        >>"$W/passwd"
mount --bind "$W/passwd" /etc/passwd
mount --bind "$W/group" /etc/group
cat >/etc/libvirt/qemu.conf <<'CONF'
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
cgroup_controllers = [ ]
stdio_handler = "file"
CONF
# GW_NO_KVM: a host without KVM, as far as this namespace sees: a private
# /dev with the usual nodes and no kvm.
if [ -n "${GW_NO_KVM:-}" ]; then
    mkdir -p "$W/dev"
    mount -t tmpfs -o mode=0755 gw-dev "$W/dev"
    for n in null zero full random urandom tty ptmx; do
        [ -e "/dev/$n" ] || continue
        touch "$W/dev/$n"
        mount --bind "/dev/$n" "$W/dev/$n"
    done
    mkdir -p "$W/dev/pts" "$W/dev/shm"
    mount --rbind /dev/pts "$W/dev/pts"
    mount -t tmpfs -o mode=1777 gw-shm "$W/dev/shm"
    ln -s /proc/self/fd "$W/dev/fd"
    mount --move "$W/dev" /dev
fi
# GW_HOST_UUID: this libvirtd's host UUID, so that two of them on one
# machine can migrate to each other (libvirt refuses its own UUID).
[ -n "${GW_HOST_UUID:-}" ] &&
    echo "host_uuid = \"$GW_HOST_UUID\"" >>/etc/libvirt/libvirtd.conf
[ -n "${GW_LIBVIRT_DEBUG:-}" ] && printf "log_filters=\"1:qemu 3:util 3:rpc 3:object 3:event\"\nlog_outputs=\"1:file:/var/log/libvirt/libvirtd.log\"\n" >>/etc/libvirt/libvirtd.conf
libvirtd -d -p "$W/libvirtd.pid"
i=0
until virsh -c qemu:///system version >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -lt 100 ] || { echo "libvirtd did not start"; exit 1; }
    sleep 0.1
done
echo "@@READY"
while IFS= read -r line; do
    set +e
    sh -c "$line" 2>&1
    echo "@@END $?"
    set -e
done
