/*
 * godwit-ctl: run one QMP command against godwit (or QEMU) and print the
 * reply, or wait for an event.
 *
 *   godwit-ctl --qmp PATH [--human] [--timeout S] COMMAND [key=value ...]
 *   godwit-ctl --qmp PATH [--human] [--timeout S] --json '{...}' COMMAND
 *   godwit-ctl --qmp PATH wait-event NAME [--timeout S]
 *
 * Values are JSON when they parse as a number, true, false, null, an
 * array or an object, else strings.  Exit status 0 on success; 1 with the
 * error's desc on stderr on an error reply, a timeout or bad usage.
 */
#include <stdio.h>
#include <string.h>
#include <godwit/qmp-client.h>
#include <godwit/util.h>

typedef struct {
    char *qmp, *json;
    gboolean human;
    double timeout;
    char **rest;
} Opts;

/* JSON if all of `text` is one JSON value (not a string), else a string. */
static json_object *
value_of(const char *text)
{
    json_tokener *tok = json_tokener_new();
    int len = (int)strlen(text);
    /* The terminating NUL ends a trailing number, as json_tokener_parse. */
    json_object *v = json_tokener_parse_ex(tok, text, len + 1);
    bool whole = v && json_tokener_get_parse_end(tok) >= (size_t)len;

    json_tokener_free(tok);
    if (!whole || json_object_is_type(v, json_type_string)) {
        json_object_put(v); /* "52:54:…" starts with a number: a string */
        return json_object_new_string(text);
    }
    return v;
}

static json_object *
build_args(Opts *o, GError **errp)
{
    json_object *args = NULL;

    if (o->json) {
        args = json_tokener_parse(o->json);
        if (!args || !json_object_is_type(args, json_type_object)) {
            json_object_put(args);
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "--json: not a JSON object");
            return NULL;
        }
    }
    for (int i = 1; o->rest[i]; i++) {
        const char *eq = strchr(o->rest[i], '=');
        g_autofree char *key = NULL;
        if (!eq || eq == o->rest[i]) {
            json_object_put(args);
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "expected key=value, got '%s'", o->rest[i]);
            return NULL;
        }
        if (!args) {
            args = json_object_new_object();
        }
        key = g_strndup(o->rest[i], eq - o->rest[i]);
        json_object_object_add(args, key, value_of(eq + 1));
    }
    return args;
}

static void
print_human(json_object *ret)
{
    if (json_object_is_type(ret, json_type_object) &&
        json_object_object_length(ret) == 0) {
        puts("OK");
    } else if (json_object_is_type(ret, json_type_object)) {
        json_object_object_foreach(ret, k, v)
        {
            printf("%s: %s\n", k,
                   json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : json_object_to_json_string_ext(
                             v, JSON_C_TO_STRING_PLAIN |
                                    JSON_C_TO_STRING_NOSLASHESCAPE));
        }
    } else if (json_object_is_type(ret, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(ret); i++) {
            puts(json_object_to_json_string_ext(
                json_object_array_get_idx(ret, i),
                JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        }
    } else {
        puts(json_object_to_json_string(ret));
    }
}

static int
show(Opts *o, json_object *msg)
{
    json_object *part;

    if (json_object_object_get_ex(msg, "error", &part)) {
        fprintf(stderr, "godwit-ctl: %s\n",
                json_object_get_string(json_object_object_get(part, "desc")));
        return 1;
    }
    if (!json_object_object_get_ex(msg, "return", &part)) {
        part = msg; /* an event */
    }
    if (o->human) {
        print_human(part);
    } else {
        puts(json_object_to_json_string_ext(
            part, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
    }
    return 0;
}

static int
run(Opts *o, GError **errp)
{
    int ms = (int)(o->timeout * 1000);
    g_autoptr(GwQmpConn) c = gw_qmp_conn_new(o->qmp, ms, errp);
    g_autoptr(json_object) reply = NULL;
    g_autoptr(GError) err = NULL;
    json_object *args;

    if (!c || !gw_qmp_conn_negotiate(c, ms, errp)) {
        return 1;
    }
    if (g_str_equal(o->rest[0], "wait-event")) {
        if (!o->rest[1] || o->rest[2]) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "usage: wait-event NAME [--timeout S]");
            return 1;
        }
        reply = gw_qmp_conn_wait_event(c, o->rest[1], ms, errp);
        return reply ? show(o, reply) : 1;
    }
    args = build_args(o, &err); /* NULL is also "no arguments" */
    if (err) {
        g_propagate_error(errp, g_steal_pointer(&err));
        return 1;
    }
    reply = gw_qmp_conn_execute(c, o->rest[0], args, -1, ms, errp);
    return reply ? show(o, reply) : 1;
}

int
main(int argc, char **argv)
{
    Opts o = {.timeout = 10};
    const GOptionEntry entries[] = {
        {"qmp", 0, 0, G_OPTION_ARG_FILENAME, &o.qmp, "QMP socket", "PATH"},
        {"human", 0, 0, G_OPTION_ARG_NONE, &o.human, "Short human output",
         NULL},
        {"timeout", 0, 0, G_OPTION_ARG_DOUBLE, &o.timeout,
         "Seconds to wait (default 10)", "S"},
        {"json", 0, 0, G_OPTION_ARG_STRING, &o.json, "Arguments as JSON",
         "OBJECT"},
        {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.rest, NULL,
         "COMMAND [key=value ...] | wait-event NAME"},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
    g_autoptr(GError) err = NULL;
    int status;

    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_summary(ctx, "Runs a QMP command against godwit.");
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        fprintf(stderr, "godwit-ctl: %s\n", err->message);
        return 1;
    }
    if (!o.qmp || !o.rest || !o.rest[0]) {
        fprintf(stderr, "godwit-ctl: usage: godwit-ctl --qmp PATH COMMAND "
                        "[key=value ...]\n");
        return 1;
    }
    status = run(&o, &err);
    if (err) {
        fprintf(stderr, "godwit-ctl: %s\n", err->message);
    }
    g_free(o.qmp);
    g_free(o.json);
    g_strfreev(o.rest);
    return status;
}
