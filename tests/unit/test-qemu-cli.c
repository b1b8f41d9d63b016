/*
 * QEMU's command line (src/qemu-cli*.c), table-driven: libvirt 9.0's
 * probe and domain command lines (tests/data/libvirt-9.0-argv.txt's
 * shapes) translate into the config godwit runs, and every option godwit
 * cannot honour is refused with a message naming it.  "@FD" in a case
 * stands for an open fd (a socketpair end or /dev/null).
 */
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <godwit/config.h>
#include <godwit/qemu-cli.h>
#include <godwit/util.h>

typedef struct {
    const char *name;
    const char *args; /* split on spaces */
    const char *want; /* good: "path=json" (several, ';'); bad: error text */
} Case;

#define PROBE                                                                  \
    "-S -no-user-config -nodefaults -nographic -machine none,accel=kvm:tcg "   \
    "-qmp unix:/tmp/q/qmp.monitor,server=on,wait=off -pidfile /tmp/q/qmp.pid " \
    "-daemonize"

/* libvirt 9.0's domain start (libvirt-capture/qemu-argv.txt) with
 * <acpi/> and <cpu mode='host-passthrough'/>: @FD is the monitor. */
#define DOMAIN                                                                 \
    "-name guest=qm1,debug-threads=on -S -object "                             \
    "{\"qom-type\":\"secret\",\"id\":\"masterKey0\",\"format\":\"raw\","       \
    "\"file\":\"/var/lib/libvirt/qemu/domain-1-qm1/master-key.aes\"} "         \
    "-machine "                                                                \
    "pc-i440fx-8.2,usb=off,dump-guest-core=off,memory-backend=pc.ram "         \
    "-accel kvm -cpu host,migratable=on -m 64 -object "                        \
    "{\"qom-type\":\"memory-backend-ram\",\"id\":\"pc.ram\",\"size\":"         \
    "67108864} -overcommit mem-lock=off -smp 1,sockets=1,cores=1,threads=1 "   \
    "-uuid bcf51d7c-0e6b-4b18-ba5e-78aa1d2958c4 -display none "                \
    "-no-user-config -nodefaults -chardev "                                    \
    "socket,id=charmonitor,fd=@FD,server=on,wait=off -mon "                    \
    "chardev=charmonitor,id=monitor,mode=control -rtc base=utc -no-shutdown "  \
    "-boot strict=on -kernel /g/guest.elf -append hotplug "                    \
    "-audiodev {\"id\":\"audio1\",\"driver\":\"none\"} -sandbox "              \
    "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny " \
    "-msg timestamp=on"

static const Case good[] = {
    {"probe", PROBE,
     "machine=\"none\";kvm=true;daemonize=true;pidfile=\"/tmp/q/qmp.pid\";"
     "config.qmp=\"/tmp/q/qmp.monitor\";config.kernel=null;start_paused=true"},
    {"probe-tcg", "-S -machine none,accel=tcg -qmp unix:/q,server=on,wait=off",
     "kvm=false;machine=\"none\""},
    {"domain", DOMAIN,
     "machine=\"pc-i440fx-8.2\";kvm=true;name=\"qm1\";"
     "uuid=\"bcf51d7c-0e6b-4b18-ba5e-78aa1d2958c4\";"
     "config.memory.size=67108864;config.cpus.boot_vcpus=1;"
     "config.kernel=\"/g/guest.elf\";config.cmdline=\"hotplug\";"
     "qmp_fd=true;config.qmp=null;start_paused=true;daemonize=false;"
     "config.serial.mode=\"off\";config.seccomp=\"true\""},
    {"serial-fdset",
     "-machine pc -kernel /k -add-fd set=0,fd=@FD,opaque=serial0-source "
     "-chardev file,id=charserial0,path=/dev/fdset/0,append=on -device "
     "{\"driver\":\"isa-serial\",\"chardev\":\"charserial0\",\"id\":"
     "\"serial0\",\"index\":0}",
     "config.serial.mode=\"fd\";fds=1"},
    {"serial-file-kv",
     "-machine pc -kernel /k -chardev file,id=s,path=/tmp/log -device "
     "isa-serial,chardev=s",
     "config.serial.mode=\"file\";config.serial.path=\"/tmp/log\""},
    {"memfd-hugetlb",
     "-kernel /k -m 2G -object "
     "memory-backend-memfd,id=pc.ram,size=2G,share=on,hugetlb=on -machine "
     "pc,memory-backend=pc.ram",
     "config.memory.size=2147483648;config.memory.hugepages=true"},
    {"m-suffix", "-kernel /k -m size=1G", "config.memory.size=1073741824"},
    {"smp-4", "-kernel /k -smp 4,sockets=1,cores=2,threads=2",
     "config.cpus.boot_vcpus=4"},
    {"incoming-defer", "-kernel /k -incoming defer",
     "config.incoming=\"defer\""},
    {"sandbox-off", "-kernel /k -sandbox off", "config.seccomp=\"false\""},
    {"double-dash", "-kernel /k --nodefaults --m 128",
     "config.memory.size=134217728"},
    {"enable-kvm", "-enable-kvm -machine pc -kernel /k", "kvm=true"},
    {"default-machine-is-pc", "-kernel /k", "machine=\"pc-i440fx-8.2\""},
};

static const Case bad[] = {
    {"no-acpi", "-kernel /k -no-acpi", "-no-acpi: godwit's board needs ACPI"},
    {"unknown-option", "-kernel /k -vga std", "-vga: not an option"},
    {"missing-argument", "-kernel", "-kernel: requires an argument"},
    {"q35", "-machine q35 -kernel /k", "-machine q35: godwit has one board"},
    {"machine-unknown-key", "-machine pc,hpet=off -kernel /k",
     "-machine: 'hpet=off' is not supported"},
    {"usb-on", "-machine pc,usb=on -kernel /k", "no USB controller"},
    {"tcg-guest", "-machine pc,accel=tcg -kernel /k", "KVM only"},
    {"accel-hvf", "-accel hvf -kernel /k", "accelerator 'hvf'"},
    {"cpu-qemu64", "-kernel /k -cpu qemu64", "-cpu qemu64: godwit gives"},
    {"cpu-flags", "-kernel /k -cpu host,+vmx", "-cpu: expected key=value"},
    {"cpu-key", "-kernel /k -cpu host,vmx=on", "'vmx=on' is not supported"},
    {"no-kernel", "-machine pc", "boots a Multiboot kernel given with -kernel"},
    {"none-with-kernel", "-machine none -kernel /k", "-machine none runs no"},
    {"initrd", "-kernel /k -initrd /i", "-initrd: godwit boots"},
    {"maxmem", "-kernel /k -m 64,slots=2,maxmem=1G", "no memory hotplug"},
    {"m-tiny", "-kernel /k -m 512K", "godwit takes 1 MiB"},
    {"maxcpus", "-kernel /k -smp 1,maxcpus=2", "no CPU hotplug"},
    {"topology", "-kernel /k -smp 2,sockets=2,cores=2", "no CPU hotplug"},
    {"memory-file",
     "-kernel /k -object memory-backend-file,id=r,size=64M,mem-path=/h",
     "memory-backend-file: godwit keeps guest RAM in a memfd"},
    {"backend-mismatch",
     "-kernel /k -object memory-backend-ram,id=a,size=64M -machine "
     "pc,memory-backend=b",
     "memory-backend=b: it must name"},
    {"backend-size-mismatch",
     "-kernel /k -m 128 -object memory-backend-ram,id=a,size=64M -machine "
     "pc,memory-backend=a",
     "disagree on the RAM size"},
    {"object-iothread", "-kernel /k -object iothread,id=io1",
     "-object iothread: not an object type"},
    {"netdev", "-kernel /k -netdev {\"type\":\"vhost-vdpa\",\"id\":\"n\"}",
     "-netdev: godwit does not cold-plug"},
    {"device-virtio-blk", "-kernel /k -device virtio-blk-pci,drive=d",
     "-device virtio-blk-pci: not a device godwit has"},
    {"device-virtio-net", "-kernel /k -device virtio-net-pci,netdev=n",
     "attach it to the running domain"},
    {"chardev-pty", "-kernel /k -chardev pty,id=c",
     "-chardev pty: godwit's character devices"},
    {"chardev-client", "-kernel /k -chardev socket,id=c,path=/s",
     "godwit listens only"},
    {"mon-readline",
     "-kernel /k -chardev socket,id=c,path=/s,server=on,wait=off -mon "
     "chardev=c,mode=readline",
     "mode=readline: godwit's monitor speaks QMP only"},
    {"two-monitors",
     "-kernel /k -qmp unix:/a,server=on,wait=off -qmp "
     "unix:/b,server=on,wait=off",
     "godwit serves one QMP monitor"},
    {"serial-index-1",
     "-kernel /k -chardev file,id=s,path=/l -device "
     "isa-serial,chardev=s,index=1",
     "one UART, COM1"},
    {"serial-fdset-missing",
     "-kernel /k -chardev file,id=s,path=/dev/fdset/3 -device "
     "isa-serial,chardev=s",
     "no writable fd in /dev/fdset/3"},
    {"add-fd-closed", "-kernel /k -add-fd set=0,fd=999", "-add-fd: fd 999"},
    {"display-gtk", "-kernel /k -display gtk", "only -display none"},
    {"rtc-localtime", "-kernel /k -rtc base=localtime", "no RTC"},
    {"boot-order", "-kernel /k -boot order=c", "no firmware to choose"},
    {"mem-lock", "-kernel /k -overcommit mem-lock=on", "does not lock"},
    {"audiodev-pa", "-kernel /k -audiodev pa,id=a", "no sound device"},
    {"sandbox-allow", "-kernel /k -sandbox on,spawn=allow", "spawn=allow"},
    {"uuid-bad", "-kernel /k -uuid xyz", "-uuid: 'xyz' is not a UUID"},
    {"json-nested", "-kernel /k -object {\"qom-type\":\"secret\",\"x\":[1]}",
     "'x' must be a string"},
    {"key-twice", "-kernel /k -machine pc,usb=off,usb=off", "given twice"},
};

/* Argv from a case, "@FD" replaced by `fd`. */
static char **
make_argv(const char *args, int fd, int *argc)
{
    g_autofree char *num = g_strdup_printf("%d", fd);
    g_auto(GStrv) words = g_strsplit(args, " ", -1);
    GPtrArray *a = g_ptr_array_new();
    GString *w;

    g_ptr_array_add(a, g_strdup("godwit"));
    for (guint i = 0; words[i]; i++) {
        w = g_string_new(words[i]);
        g_string_replace(w, "@FD", num, 0);
        g_ptr_array_add(a, g_string_free(w, FALSE));
    }
    *argc = (int)a->len;
    g_ptr_array_add(a, NULL);
    return (char **)g_ptr_array_free(a, FALSE);
}

static json_object *
to_json(const GwQemuCli *q)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "config", gw_config_to_json(q->cfg));
    json_object_object_add(o, "machine", json_object_new_string(q->machine));
    json_object_object_add(o, "kvm", json_object_new_boolean(q->kvm));
    json_object_object_add(o, "name", json_object_new_string(q->name ?: ""));
    json_object_object_add(o, "uuid", json_object_new_string(q->uuid ?: ""));
    json_object_object_add(o, "pidfile",
                           json_object_new_string(q->pidfile ?: ""));
    json_object_object_add(o, "daemonize",
                           json_object_new_boolean(q->daemonize));
    json_object_object_add(o, "start_paused",
                           json_object_new_boolean(q->cfg->start_paused));
    json_object_object_add(o, "qmp_fd",
                           json_object_new_boolean(q->cfg->qmp_fd >= 0));
    json_object_object_add(o, "fds", json_object_new_int(q->fds->len));
    return o;
}

static json_object *
lookup(json_object *root, const char *path)
{
    g_auto(GStrv) parts = g_strsplit(path, ".", -1);
    json_object *cur = root;

    for (guint i = 0; parts[i] && cur; i++) {
        json_object *next = NULL;
        json_object_object_get_ex(cur, parts[i], &next);
        cur = next;
    }
    return cur;
}

/* The fd a case's @FD names: a listening socket, owned by the case. */
static int
case_fd(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};

    g_assert_cmpint(fd, >=, 0);
    /* An address length of just the family: the kernel picks a name. */
    g_assert_cmpint(bind(fd, (struct sockaddr *)&addr, sizeof(sa_family_t)), ==,
                    0);
    g_assert_cmpint(listen(fd, 1), ==, 0);
    return fd;
}

static void
test_good(gconstpointer data)
{
    const Case *c = data;
    g_autoptr(GError) err = NULL;
    int fd = case_fd(), argc;
    g_auto(GStrv) argv = make_argv(c->args, fd, &argc);
    g_autoptr(GwQemuCli) q = NULL;
    g_autoptr(json_object) j = NULL;
    g_auto(GStrv) checks = g_strsplit(c->want, ";", -1);

    g_assert_true(gw_qemu_cli_detect(argc, argv));
    q = gw_qemu_cli_parse(argc, argv, &err);
    g_assert_no_error(err);
    j = to_json(q);
    for (guint i = 0; checks[i]; i++) {
        g_auto(GStrv) kv = g_strsplit(checks[i], "=", 2);
        json_object *got = lookup(j, kv[0]);
        const char *s = got ? json_object_to_json_string_ext(
                                  got, JSON_C_TO_STRING_PLAIN |
                                           JSON_C_TO_STRING_NOSLASHESCAPE)
                            : "null";
        g_test_message("%s: %s", kv[0], s);
        g_assert_cmpstr(s, ==, kv[1]);
    }
    if (!q->fds->len && q->cfg->qmp_fd != fd) {
        close(fd); /* else the translation owns it now */
    }
}

static void
test_bad(gconstpointer data)
{
    const Case *c = data;
    g_autoptr(GError) err = NULL;
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC), argc;
    g_auto(GStrv) argv = make_argv(c->args, fd, &argc);
    g_autoptr(GwQemuCli) q = gw_qemu_cli_parse(argc, argv, &err);

    g_assert_null(q);
    g_assert_nonnull(err);
    g_test_message("%s", err->message);
    g_assert_nonnull(strstr(err->message, c->want));
    close(fd);
}

/* godwit's own grammar is not taken for QEMU's, nor the reverse. */
static void
test_detect(void)
{
    char *own[] = {"godwit", "--kernel", "/k", NULL};
    char *help[] = {"godwit", "-h", NULL};
    char *qemu[] = {"godwit", "-machine", "none", NULL};

    g_assert_false(gw_qemu_cli_detect(3, own));
    g_assert_false(gw_qemu_cli_detect(2, help));
    g_assert_false(gw_qemu_cli_detect(1, own));
    g_assert_true(gw_qemu_cli_detect(3, qemu));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
        g_autofree char *p =
            g_strdup_printf("/qemu-cli/accepts/%s", good[i].name);
        g_test_add_data_func(p, &good[i], test_good);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *p =
            g_strdup_printf("/qemu-cli/refuses/%s", bad[i].name);
        g_test_add_data_func(p, &bad[i], test_bad);
    }
    g_test_add_func("/qemu-cli/detect/single-dash-qemu-options-only",
                    test_detect);
    return g_test_run();
}
