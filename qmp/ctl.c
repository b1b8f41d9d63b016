/*
 * godwit-ctl: run one QMP command against godwit (or QEMU) and print the
 * reply, or wait for an event.
 *
 *   godwit-ctl --qmp PATH [--human] [--timeout S] COMMAND [key=value ...]
 *   godwit-ctl --qmp PATH [--human] [--timeout S] --json '{...}' COMMAND
 *   godwit-ctl --qmp PATH wait-event NAME [--timeout S]
 *   godwit-ctl --qmp PATH migrate [--downtime-limit MS]
 *              [--max-bandwidth BYTES] URI
 *   godwit-ctl --qmp PATH migrate-incoming URI
 *
 * Values are JSON when they parse as a number, true, false, null, an
 * array or an object, else strings.  Exit status 0 on success; 1 with the
 * error's desc on stderr on an error reply, a timeout or bad usage.
 * `migrate` follows the migration to its end (ctl-migrate below): 0 once
 * it completed, 1 when it failed or was cancelled.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <godwit/qmp-client.h>
#include <godwit/util.h>

typedef struct {
    char *qmp, *json;
    gboolean human;
    double timeout;
    gint64 downtime_limit, max_bandwidth; /* -1: leave as they are */
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

/* ---- migrate: a progress bar on a terminal, plain lines otherwise ---- */

#define POLL_MS      200 /* query-migrate this often, or on MIGRATION */
#define PLAIN_US     G_USEC_PER_SEC /* a plain line at least this often */
#define BAR_WIDTH    10
#define EXIT_PENDING -1

typedef struct {
    GwQmpConn *c;
    int ms;    /* for each reply */
    bool tty;  /* stdout is a terminal: redraw one line */
    int sigfd; /* SIGINT and SIGTERM, blocked and read here */
    int interrupts;
    char *status; /* the last one shown */
    int64_t pass, total;
    gint64 shown_us;
    int64_t prev_bytes; /* for the rate, between two polls */
    gint64 prev_us;
    double rate; /* bytes/s, smoothed; 0 until known */
    bool drawn;  /* the terminal's line holds a bar */
} Progress;

/* cmd's "return" (caller owns), or NULL with the error's desc. */
static json_object *
call(Progress *p, const char *cmd, json_object *args, GError **errp)
{
    g_autoptr(json_object) reply =
        gw_qmp_conn_execute(p->c, cmd, args, -1, p->ms, errp);
    json_object *part;

    if (!reply) {
        return NULL;
    }
    if (json_object_object_get_ex(reply, "error", &part)) {
        g_set_error(
            errp, GW_ERROR, GW_ERROR_FAILED, "%s: %s", cmd,
            json_object_get_string(json_object_object_get(part, "desc")));
        return NULL;
    }
    part = json_object_object_get(reply, "return");
    return part ? json_object_get(part) : json_object_new_object();
}

static bool
call_ok(Progress *p, const char *cmd, json_object *args, GError **errp)
{
    g_autoptr(json_object) r = call(p, cmd, args, errp);
    return r != NULL;
}

static int64_t
int_of(json_object *o, const char *key)
{
    return json_object_get_int64(json_object_object_get(o, key));
}

/* 1536 -> "1.5 KiB" */
static void
fmt_bytes(char *buf, size_t len, double b)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;

    while (b >= 1024 && u + 1 < G_N_ELEMENTS(units)) {
        b /= 1024;
        u++;
    }
    g_snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", b, units[u]);
}

/* The rate from two polls' transferred bytes, smoothed. */
static void
update_rate(Progress *p, json_object *ram)
{
    int64_t bytes = int_of(ram, "transferred");
    gint64 now = g_get_monotonic_time();
    double r;

    if (p->prev_us && now - p->prev_us >= POLL_MS * 1000 / 2 &&
        bytes >= p->prev_bytes) {
        r = (double)(bytes - p->prev_bytes) * G_USEC_PER_SEC /
            (double)(now - p->prev_us);
        p->rate = p->rate > 0 ? (p->rate + r) / 2 : r;
    }
    if (!p->prev_us || now - p->prev_us >= POLL_MS * 1000 / 2) {
        p->prev_us = now;
        p->prev_bytes = bytes;
    }
    if (p->rate <= 0) { /* the server's figure for the last pass */
        p->rate = json_object_get_double(json_object_object_get(ram, "mbps")) *
                  1e6 / 8;
    }
}

/* "active: pass 1, 12.3 MiB sent, …" for query-migrate `r`. */
static char *
describe(Progress *p, json_object *r, const char *status, int *percent)
{
    json_object *ram = json_object_object_get(r, "ram");
    int64_t total = ram ? int_of(ram, "total") : 0;
    int64_t left = ram ? int_of(ram, "remaining") : 0;
    int64_t passes = ram ? int_of(ram, "dirty-sync-count") : 0;
    char sent[32], all[32], rate[32], rem[32], down[32] = "?";
    g_autofree char *pass = NULL;

    *percent = total ? (int)((total - MIN(left, total)) * 100 / total) : 0;
    if (!ram || !total) {
        return g_strdup(status);
    }
    update_rate(p, ram);
    fmt_bytes(sent, sizeof(sent), (double)int_of(ram, "transferred"));
    fmt_bytes(all, sizeof(all), (double)total);
    fmt_bytes(rate, sizeof(rate), p->rate);
    fmt_bytes(rem, sizeof(rem), (double)left);
    if (passes > 0) { /* known once a pass has been measured */
        g_snprintf(down, sizeof(down), "%" G_GINT64_FORMAT " ms",
                   int_of(r, "expected-downtime"));
    }
    /* While pre-copy runs, the pass being sent; the count done after. */
    pass = g_str_equal(status, "active")
               ? g_strdup_printf("pass %" G_GINT64_FORMAT, passes + 1)
               : g_strdup_printf("%" G_GINT64_FORMAT " pass%s done", passes,
                                 passes == 1 ? "" : "es");
    return g_strdup_printf("%s: %s, %s sent, %s/s, %s of %s left, "
                           "downtime ~%s%s",
                           status, pass, sent, rate, rem, all, down,
                           g_str_equal(status, "pre-switchover")
                               ? " (waiting for migrate-continue)"
                               : "");
}

static void
draw_bar(Progress *p, const char *text, int percent)
{
    struct winsize ws = {0};
    int cols = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col
                   ? ws.ws_col
                   : 80;
    int fill = percent * BAR_WIDTH / 100;
    g_autofree char *line = g_strdup_printf(
        "[%.*s%.*s] %3d%% %s", fill, "##########", BAR_WIDTH - fill,
        "--------------------", percent, text);

    /* One terminal line, redrawn: never wider than the terminal. */
    printf("\r\033[K%.*s", MAX(cols - 1, 1), line);
    fflush(stdout);
    p->drawn = true;
}

static bool
ended(const char *status)
{
    return g_str_equal(status, "completed") || g_str_equal(status, "failed") ||
           g_str_equal(status, "cancelled");
}

/* Shows one query-migrate reply: the bar, or a plain line on a change. */
static void
render(Progress *p, json_object *r, const char *status)
{
    json_object *ram = json_object_object_get(r, "ram");
    int64_t pass = ram ? int_of(ram, "dirty-sync-count") : 0;
    int64_t total = ram ? int_of(ram, "total") : 0;
    gint64 now = g_get_monotonic_time();
    int percent;
    g_autofree char *text = describe(p, r, status, &percent);
    bool changed = !p->status || !g_str_equal(p->status, status) ||
                   pass != p->pass || total != p->total;

    if (p->tty) {
        draw_bar(p, text, percent);
    } else if (!ended(status) && (changed || now - p->shown_us >= PLAIN_US)) {
        printf("%s\n", text);
        fflush(stdout);
        p->shown_us = now;
    }
    g_free(p->status);
    p->status = g_strdup(status);
    p->pass = pass;
    p->total = total;
}

/* The last line: downtime and total time, or why it did not complete. */
static int
finish(Progress *p, json_object *r, const char *status)
{
    json_object *ram = json_object_object_get(r, "ram");
    const char *why =
        json_object_get_string(json_object_object_get(r, "error-desc"));
    char sent[32] = "?";

    if (p->drawn) {
        putchar('\n');
    }
    if (!g_str_equal(status, "completed")) {
        fflush(stdout);
        if (why && g_str_has_prefix(why, "migration cancelled")) {
            fprintf(stderr, "godwit-ctl: %s\n", why);
        } else {
            fprintf(stderr, "godwit-ctl: migration %s: %s\n", status,
                    why ? why : "no reason given");
        }
        return 1;
    }
    if (ram) {
        fmt_bytes(sent, sizeof(sent), (double)int_of(ram, "transferred"));
    }
    printf("completed: downtime %" G_GINT64_FORMAT
           " ms, total time %" G_GINT64_FORMAT " ms, %s sent\n",
           int_of(r, "downtime"), int_of(r, "total-time"), sent);
    fflush(stdout);
    return 0;
}

/* SIGINT/SIGTERM: the first cancels the migration, a second gives up. */
static int
on_signal(Progress *p, GError **errp)
{
    struct signalfd_siginfo si;

    if (p->sigfd < 0 || read(p->sigfd, &si, sizeof(si)) != sizeof(si)) {
        return EXIT_PENDING;
    }
    if (p->interrupts++) {
        g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                    "interrupted again: not waiting for the cancellation");
        return 1;
    }
    if (p->drawn) {
        putchar('\n');
        p->drawn = false;
    }
    fprintf(stderr, "godwit-ctl: cancelling the migration (again to give "
                    "up waiting)\n");
    return call_ok(p, "migrate_cancel", NULL, errp) ? EXIT_PENDING : 1;
}

/* Polls query-migrate (and wakes on MIGRATION events) until the end. */
static int
follow(Progress *p, GError **errp)
{
    for (;;) {
        g_autoptr(json_object) r = NULL;
        g_autoptr(json_object) ev = NULL;
        const char *status;
        int rc = on_signal(p, errp);

        if (rc != EXIT_PENDING) {
            return rc;
        }
        if (!(r = call(p, "query-migrate", NULL, errp))) {
            return 1;
        }
        status = json_object_get_string(json_object_object_get(r, "status"));
        if (!status) {
            g_set_error(errp, GW_ERROR, GW_ERROR_FAILED,
                        "query-migrate: no status");
            return 1;
        }
        render(p, r, status);
        if (ended(status)) {
            return finish(p, r, status);
        }
        /* A timeout is the normal case; a closed connection shows in the
         * next query.  MIGRATION_PASS only wakes us up. */
        json_object_put(
            gw_qmp_conn_wait_event(p->c, "MIGRATION", POLL_MS, NULL));
        while ((ev = gw_qmp_conn_wait_event(p->c, "MIGRATION_PASS", 0, NULL))) {
            g_clear_pointer(&ev, json_object_put);
        }
    }
}

static json_object *
uri_args(const char *arg)
{
    json_object *args = json_object_new_object();

    if (g_str_has_prefix(arg, "uri=")) { /* the key=value spelling */
        arg += 4;
    }
    json_object_object_add(args, "uri", json_object_new_string(arg));
    return args;
}

static json_object *
mig_parameters(Opts *o)
{
    json_object *params = json_object_new_object();

    if (o->downtime_limit >= 0) {
        json_object_object_add(params, "downtime-limit",
                               json_object_new_int64(o->downtime_limit));
    }
    if (o->max_bandwidth >= 0) {
        json_object_object_add(params, "max-bandwidth",
                               json_object_new_int64(o->max_bandwidth));
    }
    return params;
}

/* Signals go to a signalfd, read between polls, not to a handler. */
static int
signal_fd(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
        return -1;
    }
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

static int
migrate(Opts *o, GwQmpConn *c, int ms, GError **errp)
{
    Progress p = {.c = c, .ms = ms, .tty = isatty(STDOUT_FILENO)};
    json_object *caps = json_tokener_parse(
        "{\"capabilities\": [{\"capability\": \"events\", \"state\": true}]}");
    int rc = 1;

    if (!o->rest[1] || o->rest[2]) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "usage: migrate [--downtime-limit MS] [--max-bandwidth "
                    "BYTES] URI");
        json_object_put(caps);
        return 1;
    }
    p.sigfd = signal_fd();
    if (call_ok(&p, "migrate-set-capabilities", caps, errp) &&
        call_ok(&p, "migrate-set-parameters", mig_parameters(o), errp) &&
        call_ok(&p, "migrate", uri_args(o->rest[1]), errp)) {
        rc = follow(&p, errp);
    }
    if (p.sigfd >= 0) {
        close(p.sigfd);
    }
    g_free(p.status);
    return rc;
}

/* migrate-incoming URI: the positional spelling of uri=URI. */
static int
migrate_incoming(Opts *o, GwQmpConn *c, int ms, GError **errp)
{
    g_autoptr(json_object) reply = NULL;

    if (!o->rest[1] || o->rest[2]) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "usage: migrate-incoming URI");
        return 1;
    }
    reply = gw_qmp_conn_execute(c, "migrate-incoming", uri_args(o->rest[1]), -1,
                                ms, errp);
    return reply ? show(o, reply) : 1;
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
    if (!o->json && g_str_equal(o->rest[0], "migrate")) {
        return migrate(o, c, ms, errp);
    }
    if (!o->json && g_str_equal(o->rest[0], "migrate-incoming")) {
        return migrate_incoming(o, c, ms, errp);
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
    Opts o = {.timeout = 10, .downtime_limit = -1, .max_bandwidth = -1};
    const GOptionEntry entries[] = {
        {"qmp", 0, 0, G_OPTION_ARG_FILENAME, &o.qmp, "QMP socket", "PATH"},
        {"human", 0, 0, G_OPTION_ARG_NONE, &o.human, "Short human output",
         NULL},
        {"timeout", 0, 0, G_OPTION_ARG_DOUBLE, &o.timeout,
         "Seconds to wait (default 10)", "S"},
        {"json", 0, 0, G_OPTION_ARG_STRING, &o.json, "Arguments as JSON",
         "OBJECT"},
        {"downtime-limit", 0, 0, G_OPTION_ARG_INT64, &o.downtime_limit,
         "migrate: the longest pause allowed at switch-over", "MS"},
        {"max-bandwidth", 0, 0, G_OPTION_ARG_INT64, &o.max_bandwidth,
         "migrate: the pre-copy's limit (0: none)", "BYTES/S"},
        {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.rest, NULL,
         "COMMAND [key=value ...] | wait-event NAME | migrate URI | "
         "migrate-incoming URI"},
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
