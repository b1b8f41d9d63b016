/*
 * libFuzzer target for the command line: the input is argv, its
 * arguments separated by NUL bytes (argv[0] is added).  Every option and
 * every key=value parser (--vdpa, --vdpa-sim, --memory, --serial, …) is
 * reached through gw_config_parse_argv, as main() calls it; a config
 * that parses must also print (--print-config's path).
 *
 *   build-fuzz/tests/fuzz/fuzz-config -dict=tests/fuzz/config.dict \
 *       tests/fuzz/corpus/config
 */
#include <string.h>
#include <godwit/config.h>
#include <godwit/util.h>

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    g_autofree char *text = g_malloc(len + 1);
    char *argv[MAX_ARGS + 1] = {"godwit"};
    int argc = 1;
    g_autoptr(GError) err = NULL;
    g_autoptr(GwConfig) cfg = NULL;

    memcpy(text, data, len);
    text[len] = '\0';
    for (size_t off = 0; off < len && argc < MAX_ARGS;) {
        argv[argc++] = text + off;
        off += strlen(text + off) + 1;
    }
    argv[argc] = NULL;
    cfg = gw_config_parse_argv(argc, argv, &err);
    g_assert(!cfg == !!err);
    if (cfg) {
        g_autoptr(json_object) j = gw_config_to_json(cfg);
        g_assert(j);
    } else {
        g_assert(err->message[0] && g_utf8_validate(err->message, -1, NULL));
    }
    return 0;
}
