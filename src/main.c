/*
 * godwit's entry point: parse and validate the whole command line before
 * creating anything, then hand over to the VM and the main loop.
 */
#include <stdio.h>
#include <godwit/config.h>
#include <godwit/log.h>
#include <godwit/util.h>

#ifndef GODWIT_VERSION
#define GODWIT_VERSION "unknown"
#endif

static int
print_config(const GwConfig *cfg)
{
    g_autoptr(json_object) j = gw_config_to_json(cfg);
    puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY |
                                               JSON_C_TO_STRING_NOSLASHESCAPE));
    return 0;
}

int
main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GwConfig) cfg = gw_config_parse_argv(argc, argv, &err);

    if (!cfg) {
        fprintf(stderr, "godwit: %s\n", err->message);
        return 1;
    }
    if (cfg->help) {
        g_autofree char *help = gw_config_help();
        fputs(help, stdout);
        return 0;
    }
    if (cfg->version) {
        printf("godwit %s\n", GODWIT_VERSION);
        return 0;
    }
    gw_log_setup(cfg->log_level);
    if (cfg->print_config) {
        return print_config(cfg);
    }
    fprintf(stderr, "godwit: --kernel is required to run a VM\n");
    return 1;
}
