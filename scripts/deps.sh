# Sourced by demo.sh and test.sh: installs the Debian packages godwit
# needs when any is missing (as root, or through sudo).
GW_BUILD_DEPS="meson ninja-build gcc gcc-multilib pkg-config libglib2.0-dev
libjson-c-dev libseccomp-dev libxxhash-dev libzstd-dev"
# Only tests use these: a reference VMM, a QMP peer, a formatter, Go
# with go-qemu (a QMP client written for QEMU), and iasl, which
# disassembles and recompiles the DSDT (tests/unit/test-aml.c), and
# libvirtd with its QEMU driver and virsh (tests/e2e/test-libvirt.c), and
# iproute2 for the network namespaces a migration crosses as between two
# hosts (tests/e2e/test-migration-kvm.c).
GW_TEST_DEPS="qemu-system-x86 socat clang-format golang-go
golang-github-digitalocean-go-qemu-dev acpica-tools libvirt-daemon
libvirt-daemon-driver-qemu libvirt-clients iproute2"

# The libFuzzer targets (scripts/fuzz.sh): clang and its runtimes.
GW_FUZZ_DEPS="clang libclang-rt-14-dev"

gw_install_deps() {
    missing=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
            missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    echo "== installing:$missing"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
            --no-install-recommends $missing >/dev/null
}
