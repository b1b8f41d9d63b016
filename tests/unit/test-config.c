/*
 * The command line: every validation rule, good and bad, table-driven.
 * Good cases compare a JSON path of --print-config's document with the
 * expected value; bad cases check the error names the option and the
 * problem.
 */
#include <string.h>
#include <godwit/config.h>
#include <godwit/optstr.h>
#include <godwit/util.h>

typedef struct {
    const char *name;
    const char *args; /* split on spaces */
    const char *want; /* good: "json.path=value"; bad: error substring */
} Case;

static const Case good[] = {
    {"vdpa-defaults", "--vdpa path=/dev/vhost-vdpa-0",
     "vdpa.0={\"path\":\"/dev/vhost-vdpa-0\",\"num_queues\":1,"
     "\"iommu\":false,\"id\":\"_vdpa0\",\"pci_segment\":0}"},
    {"vdpa-all-keys",
     "--platform num_pci_segments=2 --vdpa path=/x,num_queues=4,iommu=on,"
     "id=d0,pci_segment=1",
     "vdpa.0={\"path\":\"/x\",\"num_queues\":4,\"iommu\":true,\"id\":"
     "\"d0\",\"pci_segment\":1}"},
    {"vdpa-auto-ids-in-order",
     "--vdpa path=/a --vdpa path=/b,id=disk1 --vdpa path=/c",
     "vdpa.2.id=\"_vdpa1\""},
    {"vdpa-comma-escape", "--vdpa path=/odd,,name",
     "vdpa.0.path=\"/odd,name\""},
    {"platform-iommu-segments-list",
     "--platform num_pci_segments=3,iommu_segments=[1,2]",
     "platform.iommu_segments=[1,2]"},
    {"platform-iommu-segments-escaped-and-range",
     "--platform iommu_segments=[0,,2-3],num_pci_segments=4",
     "platform.iommu_segments=[0,2,3]"},
    {"platform-iommu-segments-one",
     "--platform num_pci_segments=2,"
     "iommu_segments=1 --vdpa path=/x,pci_segment=1,iommu=on",
     "platform.iommu_segments=[1]"},
    {"platform-iommu-segments-default", "", "platform.iommu_segments=[]"},
    {"memory-size-g", "--memory size=1G", "memory.size=1073741824"},
    {"memory-size-m-lower", "--memory size=512m", "memory.size=536870912"},
    {"memory-default", "", "memory.size=268435456"},
    {"memory-hugepages", "--memory size=2M,hugepages=on",
     "memory.hugepages=true"},
    {"memory-not-shared", "--memory size=2M,shared=off", "memory.shared=false"},
    {"cpus", "--cpus boot=2", "cpus.boot_vcpus=2"},
    {"serial-file", "--serial file=/tmp/s", "serial.path=\"/tmp/s\""},
    {"serial-off", "--serial off", "serial.mode=\"off\""},
    {"qmp-plain", "--qmp /tmp/q.sock", "qmp=\"/tmp/q.sock\""},
    {"qmp-qemu-spelling", "--qmp unix:/tmp/q.sock,server=on,wait=off",
     "qmp=\"/tmp/q.sock\""},
    {"qmp-qemu-comma-escape", "--qmp unix:run/a,,b,server=on",
     "qmp=\"run/a,b\""},
    {"qmp-qemu-comma-escape-last", "--qmp unix:/q,,", "qmp=\"/q,\""},
    {"qmp-plain-comma-literal", "--qmp run/a,,b", "qmp=\"run/a,,b\""},
    {"qtest-qemu-comma-escape", "--qtest unix:/t,,,,u,wait=off",
     "qtest=\"/t,,u\""},
    {"qtest-plain", "--qtest /tmp/t.sock", "qtest=\"/tmp/t.sock\""},
    {"qtest-qemu-spelling", "--qtest unix:/tmp/t.sock,server=on",
     "qtest=\"/tmp/t.sock\""},
    {"incoming-defer", "--incoming defer", "incoming=\"defer\""},
    {"incoming-tcp", "--incoming tcp:127.0.0.1:4444",
     "incoming=\"tcp:127.0.0.1:4444\""},
    {"seccomp-log", "--seccomp log", "seccomp=\"log\""},
    {"vdpa-sim-blk",
     "--vdpa-sim name=s0,mgmtdev=vdpasim_blk,capacity=64M,backing=/tmp/d",
     "vdpa_sim.0.capacity=67108864"},
    {"vdpa-sim-net",
     "--vdpa-sim name=n0,mgmtdev=vdpasim_net,mac=52:54:00:"
     "12:34:56",
     "vdpa_sim.0.mac=\"52:54:00:12:34:56\""},
};

static const Case bad[] = {
    {"vdpa-missing-path", "--vdpa num_queues=2", "--vdpa: 'path' is required"},
    {"vdpa-unknown-key", "--vdpa path=/x,foo=1", "--vdpa: unknown key 'foo'"},
    {"vdpa-duplicate-key", "--vdpa path=/x,path=/y",
     "--vdpa: key 'path' given more than once"},
    {"vdpa-num-queues-zero", "--vdpa path=/x,num_queues=0",
     "--vdpa: num_queues: 0 is out of range"},
    {"vdpa-num-queues-word", "--vdpa path=/x,num_queues=two",
     "--vdpa: num_queues: 'two' is not a valid number"},
    {"vdpa-num-queues-negative", "--vdpa path=/x,num_queues=-1",
     "--vdpa: num_queues: '-1' is not a valid number"},
    {"vdpa-num-queues-overflow",
     "--vdpa path=/x,num_queues=99999999999999999999",
     "--vdpa: num_queues: '99999999999999999999' is not a valid number"},
    {"vdpa-num-queues-too-many", "--vdpa path=/x,num_queues=4294967296",
     "--vdpa: num_queues: 4294967296 is out of range"},
    {"vdpa-iommu-yes", "--vdpa path=/x,iommu=yes",
     "--vdpa: iommu: expected on or off, got 'yes'"},
    {"vdpa-duplicate-id", "--vdpa path=/x,id=a --vdpa path=/y,id=a",
     "--vdpa: id 'a' is already in use"},
    {"vdpa-reserved-id", "--vdpa path=/x,id=_vdpa0",
     "ids starting with '_' are reserved"},
    {"vdpa-segment-missing", "--vdpa path=/x,pci_segment=1",
     "--vdpa: pci_segment 1 does not exist (the platform has "
     "num_pci_segments=1)"},
    {"vdpa-segment-overflow", "--vdpa path=/x,pci_segment=65536",
     "--vdpa: pci_segment: 65536 is out of range"},
    {"vdpa-empty-path", "--vdpa path=", "--vdpa: path: empty value"},
    {"vdpa-no-equals", "--vdpa /dev/vhost-vdpa-0",
     "--vdpa: expected key=value, got '/dev/vhost-vdpa-0'"},
    {"memory-bad-suffix", "--memory size=1X",
     "--memory: size: '1X' is not a valid size"},
    {"memory-suffix-overflow", "--memory size=99999999999T",
     "--memory: size: '99999999999T' is not a valid size"},
    {"memory-too-small", "--memory size=4K",
     "--memory: size: 4K is out of range"},
    {"memory-unaligned", "--memory size=1048577",
     "--memory: size must be a multiple of 4 KiB"},
    {"memory-duplicate-key", "--memory size=1G,size=2G",
     "--memory: key 'size' given more than once"},
    {"cpus-zero", "--cpus boot=0", "--cpus: boot: 0 is out of range"},
    {"cpus-unknown", "--cpus max=2", "--cpus: unknown key 'max'"},
    {"serial-bad", "--serial tty", "--serial: expected off, stdio"},
    {"qmp-bad-qemu-key", "--qmp unix:/q,server=off",
     "--qmp: only server=on and wait=off are supported"},
    {"qtest-empty", "--qtest unix:", "--qtest: empty path"},
    {"serial-not-utf8", "--serial file=/a\xff",
     "--serial: byte 0xff after 'file=/a' is not valid UTF-8"},
    {"sim-name-not-utf8", "--vdpa-sim name=\xe9,mgmtdev=vdpasim_blk",
     "--vdpa-sim: byte 0xe9 after 'name=' is not valid UTF-8"},
    {"qmp-qemu-comma-then-bad-key", "--qmp unix:/a,,b,c=d",
     "--qmp: only server=on and wait=off are supported, got 'c=d'"},
    {"qtest-bad-qemu-key", "--qtest unix:/t,wait=on",
     "--qtest: only server=on and wait=off are supported"},
    {"qtest-with-kernel", "--qtest /t --kernel /k",
     "--qtest: a qtest machine runs no kernel"},
    {"incoming-bad-scheme", "--incoming http://x",
     "--incoming: expected defer"},
    {"platform-zero", "--platform num_pci_segments=0",
     "--platform: num_pci_segments: 0 is out of range"},
    {"platform-too-many", "--platform num_pci_segments=17",
     "--platform: num_pci_segments: 17 is out of range (1..16)"},
    {"vdpa-segment-past-platform",
     "--platform num_pci_segments=2 --vdpa path=/x,pci_segment=2",
     "--vdpa: pci_segment 2 does not exist (the platform has "
     "num_pci_segments=2)"},
    {"platform-iommu-segment-missing",
     "--platform num_pci_segments=2,iommu_segments=[1,2]",
     "--platform: iommu_segments: segment 2 does not exist (the platform "
     "has num_pci_segments=2)"},
    {"platform-iommu-segments-not-a-number", "--platform iommu_segments=[a]",
     "--platform: iommu_segments: 'a' is not a segment number"},
    {"platform-iommu-segments-unclosed", "--platform iommu_segments=[0",
     "--platform: iommu_segments: '[0' has no closing ']'"},
    {"platform-iommu-segments-backwards",
     "--platform num_pci_segments=3,iommu_segments=[2-1]",
     "--platform: iommu_segments: range '2-1' is backwards"},
    {"vdpa-iommu-off-on-iommu-segment",
     "--platform num_pci_segments=2,iommu_segments=[1] "
     "--vdpa path=/x,pci_segment=1",
     "--vdpa: pci_segment 1 is behind the IOMMU (--platform "
     "iommu_segments): the device needs iommu=on"},
    {"seccomp-bad", "--seccomp yes", "--seccomp: expected true, false or log"},
    {"log-level-bad", "--log-level loud", "--log-level: expected error"},
    {"unknown-option", "--frobnicate", "Unknown option --frobnicate"},
    {"stray-argument", "guest.elf", "unexpected argument 'guest.elf'"},
    /* found by fuzz-config: the message quoted the bytes as given */
    {"unknown-option-not-utf8", "--ser\x80x",
     "Unknown option --ser\xef\xbf\xbdx"},
    {"stray-argument-not-utf8", "a\xff", "unexpected argument 'a\xef\xbf\xbd'"},
    {"sim-missing-mgmtdev", "--vdpa-sim name=a",
     "--vdpa-sim: 'mgmtdev' is required"},
    {"sim-bad-mgmtdev", "--vdpa-sim name=a,mgmtdev=vdpasim_gpu",
     "--vdpa-sim: mgmtdev: 'vdpasim_gpu' is not vdpasim_blk or vdpasim_net"},
    {"sim-duplicate-name",
     "--vdpa-sim name=a,mgmtdev=vdpasim_blk --vdpa-sim name=a,mgmtdev="
     "vdpasim_net",
     "--vdpa-sim: name 'a' is already in use"},
    {"sim-net-backing", "--vdpa-sim name=a,mgmtdev=vdpasim_net,backing=/f",
     "backing and capacity are for vdpasim_blk"},
    {"sim-blk-mac",
     "--vdpa-sim name=a,mgmtdev=vdpasim_blk,mac=52:54:00:00:00:01",
     "mac is for vdpasim_net"},
    {"sim-bad-mac", "--vdpa-sim name=a,mgmtdev=vdpasim_net,mac=52:54:00:00:00",
     "is not a MAC address"},
    {"sim-capacity-unaligned",
     "--vdpa-sim name=a,mgmtdev=vdpasim_blk,"
     "capacity=1000",
     "capacity must be a multiple of 512"},
    {"sim-slash-name", "--vdpa-sim name=a/b,mgmtdev=vdpasim_blk",
     "must not contain '/'"},
};

static GwConfig *
parse(const char *args, GError **errp)
{
    g_autofree char *line = g_strconcat("godwit ", args, NULL);
    g_auto(GStrv) argv = g_strsplit(g_strstrip(line), " ", -1);
    return gw_config_parse_argv((int)g_strv_length(argv), argv, errp);
}

/* Follows "a.0.b" through objects and arrays. */
static json_object *
lookup(json_object *root, const char *path)
{
    g_auto(GStrv) parts = g_strsplit(path, ".", -1);
    json_object *cur = root;

    for (guint i = 0; parts[i] && cur; i++) {
        if (json_object_is_type(cur, json_type_array)) {
            cur = json_object_array_get_idx(cur, atoi(parts[i]));
        } else if (!json_object_object_get_ex(cur, parts[i], &cur)) {
            return NULL;
        }
    }
    return cur;
}

static void
test_good(gconstpointer data)
{
    const Case *c = data;
    g_autoptr(GError) err = NULL;
    g_autoptr(GwConfig) cfg = parse(c->args, &err);
    g_autofree char *path = g_strndup(c->want, strcspn(c->want, "="));
    const char *want = c->want + strlen(path) + 1;

    g_assert_no_error(err);
    g_assert_nonnull(cfg);
    g_autoptr(json_object) j = gw_config_to_json(cfg);
    json_object *got = lookup(j, path);
    g_autoptr(json_object) expect = json_tokener_parse(want);
    g_assert_nonnull(expect);
    if (!json_object_equal(got, expect)) {
        g_test_message("%s: got %s, want %s", path,
                       json_object_to_json_string(got), want);
        g_test_fail();
    }
}

static void
test_bad(gconstpointer data)
{
    const Case *c = data;
    g_autoptr(GError) err = NULL;
    g_autoptr(GwConfig) cfg = parse(c->args, &err);

    g_assert_null(cfg);
    g_assert_nonnull(err);
    if (!strstr(err->message, c->want)) {
        g_test_message("error '%s' lacks '%s'", err->message, c->want);
        g_test_fail();
    }
    g_assert_null(strchr(err->message, '\n'));
    g_assert_true(g_utf8_validate(err->message, -1, NULL));
}

static void
test_auto_id_skips_taken(void)
{
    /* An explicit id equal to the next auto id pushes the auto id on. */
    g_autoptr(GHashTable) ids = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GwVdpaConfig) v = gw_vdpa_config_parse("path=/x", NULL);
    unsigned next = 0;

    g_hash_table_add(ids, "_vdpa0");
    g_assert_true(gw_vdpa_config_check("--vdpa", v, ids, 1, &next, NULL));
    g_assert_cmpstr(v->id, ==, "_vdpa1");
    g_assert_cmpuint(next, ==, 2);
}

static void
test_help_lists_every_option(void)
{
    static const char *const opts[] = {
        "--vdpa",      "--vdpa-sim", "--memory",       "--cpus",
        "--kernel",    "--cmdline",  "--serial",       "--qmp",
        "--qtest",     "--incoming", "--platform",     "--seccomp",
        "--log-level", "--version",  "--print-config",
    };
    g_autofree char *help = gw_config_help();

    for (size_t i = 0; i < G_N_ELEMENTS(opts); i++) {
        g_assert_nonnull(strstr(help, opts[i]));
    }
    g_assert_nonnull(strstr(help, "path=<device_path>,num_queues=<n>,"
                                  "iommu=on|off,id=<id>,pci_segment=<n>"));
}

static void
test_size_units(void)
{
    static const struct {
        const char *s;
        uint64_t v;
    } t[] = {{"0", 0}, {"1K", 1024}, {"3m", 3 << 20}, {"1T", 1ull << 40}};
    uint64_t v;

    for (size_t i = 0; i < G_N_ELEMENTS(t); i++) {
        g_assert_true(gw_parse_size(t[i].s, &v, NULL));
        g_assert_cmpuint(v, ==, t[i].v);
    }
    g_assert_false(gw_parse_size("", &v, NULL));
    g_assert_false(gw_parse_size("K", &v, NULL));
    g_assert_false(gw_parse_size("16E", &v, NULL));
    g_assert_false(gw_parse_size("17179869184G", &v, NULL));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
        g_autofree char *p = g_strdup_printf("/config/good/%s", good[i].name);
        g_test_add_data_func(p, &good[i], test_good);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *p = g_strdup_printf("/config/rejects/%s", bad[i].name);
        g_test_add_data_func(p, &bad[i], test_bad);
    }
    g_test_add_func("/config/vdpa/auto-id-skips-taken-id",
                    test_auto_id_skips_taken);
    g_test_add_func("/config/help/lists-every-option",
                    test_help_lists_every_option);
    g_test_add_func("/config/size/units", test_size_units);
    return g_test_run();
}
