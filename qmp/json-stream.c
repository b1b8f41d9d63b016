/*
 * Splits a QMP byte stream into JSON texts by QEMU's rules and parses each
 * strictly.  See qmp-priv.h.  Main thread only (one stream per client).
 *
 * The lexer follows QEMU's qobject/json-lexer.c token for token: strings
 * in double or single quotes (no control characters, no 0xFE/0xFF),
 * RFC 8259 numbers, [a-z]+ keywords, the six structural characters, and
 * only space, tab, CR and LF between tokens.  Anything else is a lexical
 * error: it is reported at once, the text so far is dropped, and bytes
 * are skipped up to the next structural character, control character
 * or 0xFE/0xFF, where lexing starts afresh.  As in QEMU's
 * json-streamer.c, a text ends when its {} and [] counts are both zero
 * again, or one of them goes negative.
 *
 * Each text is then handed to json-c in strict mode, after the lexer has
 * rewritten QEMU's extensions (single quotes, \') into plain JSON and
 * checked what json-c lets through (invalid UTF-8, lone surrogates,
 * \u0000, duplicate keys).
 */
#include <string.h>
#include <godwit/util.h>
#include "qmp-priv.h"

/* QEMU's json-streamer.c: MAX_TOKEN_COUNT.  A token takes a byte at least. */
G_STATIC_ASSERT(GW_QMP_MAX_REQUEST < (2u << 20));

typedef enum {
    L_START,
    L_RECOVERY,
    L_DQ,
    L_DQ_ESC,
    L_SQ,
    L_SQ_ESC,
    L_ZERO,
    L_SIGN,
    L_DIGITS,
    L_MANT,
    L_MANT_DIGITS,
    L_EXP_E,
    L_EXP_SIGN,
    L_EXP_DIGITS,
    L_KEYWORD,
} LexState;

/* What one byte did: went into the current token, ended it, or failed. */
typedef enum {
    B_MORE,       /* consumed, token goes on */
    B_TOKEN,      /* consumed, token complete */
    B_TOKEN_BACK, /* token complete without it: look at it again */
    B_SKIP,       /* consumed, not part of any token */
    B_ERROR,      /* consumed, lexical error */
} Step;

struct GwJsonStream {
    GString *in; /* bytes fed, not yet looked at from `pos` on */
    gsize pos;
    LexState state;
    GString *text; /* the text being collected */
    gsize tok;     /* where its last token starts */
    int braces, brackets;
    guint pairs; /* ':' tokens: one per object member */
    GError *bad; /* the first string error of this text */
    json_object *value;
    GError *err; /* the result ready to be taken: value or err */
    bool ready, dead;
    json_tokener *parser;
};

GwJsonStream *
gw_json_stream_new(void)
{
    GwJsonStream *s = g_new0(GwJsonStream, 1);

    s->in = g_string_new(NULL);
    s->text = g_string_new(NULL);
    s->parser = json_tokener_new_ex(GW_QMP_MAX_NESTING);
    json_tokener_set_flags(s->parser,
                           JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    return s;
}

void
gw_json_stream_free(GwJsonStream *s)
{
    if (!s) {
        return;
    }
    g_string_free(s->in, TRUE);
    g_string_free(s->text, TRUE);
    g_clear_error(&s->bad);
    g_clear_error(&s->err);
    json_object_put(s->value);
    json_tokener_free(s->parser);
    g_free(s);
}

/* ---- the lexer: one byte in one state ---- */

static bool
is_ws(guchar ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static Step
lex_start(GwJsonStream *s, guchar ch)
{
    if (is_ws(ch)) {
        return B_SKIP;
    }
    s->tok = s->text->len;
    if (ch && strchr("{}[],:", ch)) {
        return B_TOKEN;
    }
    if (ch == '"' || ch == '\'') {
        s->state = ch == '"' ? L_DQ : L_SQ;
    } else if (ch == '0') {
        s->state = L_ZERO;
    } else if (ch >= '1' && ch <= '9') {
        s->state = L_DIGITS;
    } else if (ch == '-') {
        s->state = L_SIGN;
    } else if (ch >= 'a' && ch <= 'z') {
        s->state = L_KEYWORD;
    } else {
        return B_ERROR;
    }
    return B_MORE;
}

/* Inside a string whose closing quote is `quote`. */
static Step
lex_string(GwJsonStream *s, guchar ch, guchar quote, LexState esc)
{
    if (ch < 0x20 || ch >= 0xFE) {
        return B_ERROR;
    }
    if (ch == quote) {
        return B_TOKEN;
    }
    if (ch == '\\') {
        s->state = esc;
    }
    return B_MORE;
}

static Step
lex_escape(GwJsonStream *s, guchar ch, LexState str)
{
    if (ch < 0x20 || ch >= 0xFE) {
        return B_ERROR;
    }
    s->state = str; /* which escapes mean something: check_string */
    return B_MORE;
}

/* Numbers: 0 | -?[1-9][0-9]* then (.[0-9]+)? ([eE][+-]?[0-9]+)? */
static Step
lex_number(GwJsonStream *s, guchar ch)
{
    bool digit = g_ascii_isdigit(ch);

    switch (s->state) {
    case L_SIGN:
        s->state = ch == '0' ? L_ZERO : L_DIGITS;
        return digit ? B_MORE : B_ERROR;
    case L_ZERO:
    case L_DIGITS:
        if (digit) {
            return s->state == L_ZERO ? B_ERROR : B_MORE;
        }
        if (ch == '.') {
            s->state = L_MANT;
            return B_MORE;
        }
        break;
    case L_MANT:
    case L_EXP_SIGN:
        s->state = s->state == L_MANT ? L_MANT_DIGITS : L_EXP_DIGITS;
        return digit ? B_MORE : B_ERROR;
    case L_EXP_E:
        if (ch == '+' || ch == '-') {
            s->state = L_EXP_SIGN;
            return B_MORE;
        }
        s->state = L_EXP_DIGITS;
        return digit ? B_MORE : B_ERROR;
    default: /* L_MANT_DIGITS, L_EXP_DIGITS */
        if (digit) {
            return B_MORE;
        }
        break;
    }
    if ((ch == 'e' || ch == 'E') && s->state != L_ZERO &&
        s->state != L_EXP_DIGITS) {
        s->state = L_EXP_E;
        return B_MORE;
    }
    return B_TOKEN_BACK;
}

/* After an error: up to a structural or control character, or 0xFE/FF. */
static bool
recovers_at(guchar ch)
{
    return (ch < 0x20 && ch != '\t') || ch >= 0xFE ||
           (ch && strchr("[]{}:,", ch));
}

static Step
lex(GwJsonStream *s, guchar ch)
{
    switch (s->state) {
    case L_START:
        return lex_start(s, ch);
    case L_RECOVERY:
        if (recovers_at(ch)) {
            s->state = L_START;
            return lex_start(s, ch);
        }
        return B_SKIP;
    case L_DQ:
        return lex_string(s, ch, '"', L_DQ_ESC);
    case L_SQ:
        return lex_string(s, ch, '\'', L_SQ_ESC);
    case L_DQ_ESC:
        return lex_escape(s, ch, L_DQ);
    case L_SQ_ESC:
        return lex_escape(s, ch, L_SQ);
    case L_KEYWORD:
        return ch >= 'a' && ch <= 'z' ? B_MORE : B_TOKEN_BACK;
    default:
        return lex_number(s, ch);
    }
}

/* ---- strings: what json-c would let through, and QEMU's extensions ---- */

static int
hex4(const char *p, const char *end)
{
    int cp = 0;

    for (int i = 0; i < 4; i++) {
        if (p + i >= end || !g_ascii_isxdigit(p[i])) {
            return -1;
        }
        cp = cp << 4 | g_ascii_xdigit_value(p[i]);
    }
    return cp;
}

/*
 * The code point of the \u escape at `p` (one or a surrogate pair), -1
 * if there is none; *len is the length of the escape text.
 */
static int
unicode_escape(const char *p, const char *end, int *len)
{
    int cp = hex4(p + 2, end);
    int lo;

    *len = 6;
    if (cp >= 0xD800 && cp <= 0xDBFF && p + 7 < end && p[6] == '\\' &&
        p[7] == 'u') {
        lo = hex4(p + 8, end);
        *len = 12;
        if (lo < 0xDC00 || lo > 0xDFFF) {
            return -1;
        }
        return 0x10000 + ((cp & 0x3FF) << 10) + (lo & 0x3FF);
    }
    return cp >= 0xD800 && cp <= 0xDFFF ? -1 : cp;
}

/* Checks one escape at `p`; appends its plain JSON form to `out`. */
static bool
escape(const char *p, const char *end, int *len, GString *out, GError **errp)
{
    int cp;

    *len = 2;
    if (p[1] == '\'') {
        g_string_append_c(out, '\'');
        return true;
    }
    if (p[1] != 'u') {
        if (!strchr("\"\\/bfnrt", p[1])) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "JSON parse error, invalid escape sequence in string");
            return false;
        }
        g_string_append_len(out, p, 2);
        return true;
    }
    cp = unicode_escape(p, end, len);
    *len = MIN(*len, (int)(end - p));
    if (cp < 0) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "JSON parse error, %.*s is not a valid Unicode character",
                    *len, p);
        return false;
    }
    if (cp == 0) { /* json-c's C strings would end there, cutting names */
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "JSON parse error, \\u0000 is not accepted in strings");
        return false;
    }
    g_string_append_len(out, p, *len);
    return true;
}

/*
 * The string token ending the text: valid UTF-8, valid escapes, and
 * rewritten as a double-quoted string with only JSON's escapes.
 */
static bool
check_string(GwJsonStream *s, GError **errp)
{
    const char *p = s->text->str + s->tok + 1;
    const char *end = s->text->str + s->text->len - 1;
    g_autoptr(GString) out = g_string_new("\"");
    int len;

    if (!g_utf8_validate_len(p, end - p, NULL)) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "JSON parse error, invalid UTF-8 sequence in string");
        return false;
    }
    for (; p < end; p += len) {
        len = 1;
        if (*p == '\\') {
            if (!escape(p, end, &len, out, errp)) {
                return false;
            }
        } else if (*p == '"') {
            g_string_append(out, "\\\""); /* single-quoted strings */
        } else {
            g_string_append_c(out, *p);
        }
    }
    g_string_append_c(out, '"');
    g_string_truncate(s->text, s->tok);
    g_string_append_len(s->text, out->str, out->len);
    return true;
}

/* ---- the streamer ---- */

static void
reset(GwJsonStream *s)
{
    g_string_truncate(s->text, 0);
    s->braces = s->brackets = 0;
    s->pairs = 0;
    g_clear_error(&s->bad);
}

static void
set_result(GwJsonStream *s, json_object *value, GError *err)
{
    s->value = value;
    s->err = err;
    s->ready = true;
    reset(s);
}

/* Members of every object in `v`: fewer than ':' tokens means a key
 * was repeated (json-c keeps the last silently; QEMU refuses). */
static guint
members(json_object *v)
{
    guint n = 0;

    if (json_object_is_type(v, json_type_object)) {
        json_object_object_foreach(v, key, val)
        {
            (void)key;
            n += 1 + members(val);
        }
    } else if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            n += members(json_object_array_get_idx(v, i));
        }
    }
    return n;
}

/* The text is complete: its value (NULL for null), or why it is not JSON. */
static json_object *
parse_text(GwJsonStream *s, GError **errp)
{
    json_object *v;
    enum json_tokener_error e;

    if (s->bad) {
        g_propagate_error(errp, g_steal_pointer(&s->bad));
        return NULL;
    }
    json_tokener_reset(s->parser);
    /* The NUL ends a top-level number, as a following byte did. */
    v = json_tokener_parse_ex(s->parser, s->text->str, (int)s->text->len + 1);
    e = json_tokener_get_error(s->parser);
    if (!v && e != json_tokener_success) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID, "JSON parse error, %s",
                    json_tokener_error_desc(e));
        return NULL;
    }
    if (v && members(v) != s->pairs) {
        json_object_put(v);
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "JSON parse error, duplicate key");
        return NULL;
    }
    return v;
}

/* A token ended (the text holds it): QEMU's json_message_process_token. */
static void
token(GwJsonStream *s)
{
    char ch = s->text->str[s->tok];
    GError *err = NULL;
    json_object *v;

    s->braces += (ch == '{') - (ch == '}');
    s->brackets += (ch == '[') - (ch == ']');
    s->pairs += ch == ':';
    if (s->braces + s->brackets > GW_QMP_MAX_NESTING) {
        set_result(s, NULL,
                   g_error_new(GW_ERROR, GW_ERROR_INVALID,
                               "JSON nesting depth limit exceeded"));
        return;
    }
    if ((ch == '"' || ch == '\'') && !s->bad) {
        check_string(s, &s->bad);
    }
    if ((s->braces > 0 || s->brackets > 0) && s->braces >= 0 &&
        s->brackets >= 0) {
        return;
    }
    v = parse_text(s, &err);
    set_result(s, v, err);
}

/* QEMU says "stray '<the token so far>'"; bytes it cannot show, we name. */
static void
lex_error(GwJsonStream *s)
{
    const char *t = s->text->str + s->tok;
    guchar last = s->text->str[s->text->len - 1];
    GError *err;

    if (last >= 0xFE) {
        err = g_error_new(GW_ERROR, GW_ERROR_INVALID,
                          "JSON parse error, invalid UTF-8 byte 0x%02X", last);
    } else if (last >= 0x80) {
        err = g_error_new(GW_ERROR, GW_ERROR_INVALID,
                          "JSON parse error, stray byte 0x%02X outside a "
                          "string",
                          last);
    } else {
        err = g_error_new(GW_ERROR, GW_ERROR_INVALID,
                          "JSON parse error, stray '%s'", t);
    }
    set_result(s, NULL, err);
    s->state = L_RECOVERY;
}

/* Looks at one byte; false if it must be looked at again. */
static bool
step(GwJsonStream *s, guchar ch)
{
    Step st = lex(s, ch);

    /* Whitespace inside a text, and after a number or keyword, separates
     * tokens json-c would otherwise read as one ("0e5" is two for QEMU). */
    if ((st == B_SKIP && s->state == L_START && s->text->len) ||
        st == B_TOKEN_BACK) {
        if (s->text->str[s->text->len - 1] != ' ') {
            g_string_append_c(s->text, ' ');
        }
    }
    if (st == B_SKIP) {
        return true;
    }
    if (st != B_TOKEN_BACK) {
        g_string_append_c(s->text, (char)ch);
    }
    /* Before the byte can complete a text: the limit is exact. */
    if (s->text->len > GW_QMP_MAX_REQUEST) {
        set_result(s, NULL,
                   g_error_new(GW_ERROR, GW_ERROR_FAILED,
                               "JSON parse error, request too large"));
        s->dead = true;
        return true;
    }
    if (st == B_ERROR) {
        lex_error(s);
    } else if (st == B_TOKEN || st == B_TOKEN_BACK) {
        s->state = L_START;
        token(s);
    }
    return st != B_TOKEN_BACK;
}

void
gw_json_stream_feed(GwJsonStream *s, const char *buf, size_t len)
{
    if (!s->dead) {
        g_string_append_len(s->in, buf, (gssize)len);
    }
}

bool
gw_json_stream_next(GwJsonStream *s, json_object **value, GError **errp)
{
    while (!s->ready && !s->dead && s->pos < s->in->len) {
        if (step(s, (guchar)s->in->str[s->pos])) {
            s->pos++;
        }
    }
    if (s->pos == s->in->len || s->dead) {
        g_string_truncate(s->in, 0);
        s->pos = 0;
    }
    if (!s->ready) {
        return false;
    }
    s->ready = false;
    if (s->err) {
        g_propagate_error(errp, g_steal_pointer(&s->err));
        return false;
    }
    *value = g_steal_pointer(&s->value);
    return true;
}
