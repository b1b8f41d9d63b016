/*
 * The QMP schema: see include/godwit/qmp-schema.h.  Error texts are
 * QEMU 7.2's (tests/e2e compares them with a running QEMU).
 */
#include <stdlib.h>
#include <string.h>
#include <godwit/qmp-schema.h>
#include <godwit/util.h>

extern const char gw_qmp_schema_json[];

struct GwQmpSchema {
    json_object *root;
    json_object *types;   /* borrowed from root */
    json_object *events;  /* borrowed */
    GHashTable *commands; /* name → command object (borrowed) */
};

GwQmpSchema *
gw_qmp_schema_load(void)
{
    GwQmpSchema *s = g_new0(GwQmpSchema, 1);
    json_object *cmds;

    s->root = json_tokener_parse(gw_qmp_schema_json);
    g_assert(s->root);
    g_assert(json_object_object_get_ex(s->root, "types", &s->types));
    g_assert(json_object_object_get_ex(s->root, "events", &s->events));
    g_assert(json_object_object_get_ex(s->root, "commands", &cmds));
    s->commands = g_hash_table_new(g_str_hash, g_str_equal);
    for (size_t i = 0; i < json_object_array_length(cmds); i++) {
        json_object *c = json_object_array_get_idx(cmds, i);
        json_object *name;
        g_assert(json_object_object_get_ex(c, "name", &name));
        g_hash_table_insert(s->commands, (char *)json_object_get_string(name),
                            c);
    }
    return s;
}

void
gw_qmp_schema_free(GwQmpSchema *s)
{
    if (s) {
        g_hash_table_unref(s->commands);
        json_object_put(s->root);
        g_free(s);
    }
}

bool
gw_qmp_schema_has_command(const GwQmpSchema *s, const char *name)
{
    return g_hash_table_contains(s->commands, name);
}

static json_object *
member(json_object *obj, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(obj, key, &v) ? v : NULL;
}

static bool check_value(const GwQmpSchema *s, json_object *type,
                        const char *name, json_object *v, GError **errp);
static bool check_union(const GwQmpSchema *s, json_object *u, json_object *v,
                        GError **errp);

static bool
type_error(const char *name, const char *expected, GError **errp)
{
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "Invalid parameter type for '%s', expected: %s", name,
                expected);
    return false;
}

typedef enum { NOT_BUILTIN, BUILTIN_OK, BUILTIN_BAD } BuiltinCheck;

static BuiltinCheck
check_builtin(const char *type, const char *name, json_object *v, GError **errp)
{
    static const struct {
        const char *type, *expected;
        json_type ok1, ok2;
    } builtins[] = {
        {"str", "string", json_type_string, json_type_string},
        {"int", "integer", json_type_int, json_type_int},
        {"bool", "boolean", json_type_boolean, json_type_boolean},
        {"number", "number", json_type_int, json_type_double},
    };

    if (g_str_equal(type, "any")) {
        return BUILTIN_OK;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(builtins); i++) {
        if (g_str_equal(type, builtins[i].type)) {
            json_type t = json_object_get_type(v);
            if (t == builtins[i].ok1 || t == builtins[i].ok2) {
                return BUILTIN_OK;
            }
            type_error(name, builtins[i].expected, errp);
            return BUILTIN_BAD;
        }
    }
    return NOT_BUILTIN;
}

static bool
check_enum(json_object *values, const char *name, json_object *v, GError **errp)
{
    const char *str;

    if (!json_object_is_type(v, json_type_string)) {
        return type_error(name, "string", errp);
    }
    str = json_object_get_string(v);
    for (size_t i = 0; i < json_object_array_length(values); i++) {
        if (g_str_equal(
                json_object_get_string(json_object_array_get_idx(values, i)),
                str)) {
            return true;
        }
    }
    g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                "Parameter '%s' does not accept value '%s'", name, str);
    return false;
}

/*
 * Members of a struct (or a command's arguments); `obj` may be NULL.
 * With `extra`, keys `decl` does not list are the handler's to check.
 */
static bool
check_members(const GwQmpSchema *s, json_object *decl, json_object *obj,
              bool extra, GError **errp)
{
    g_autoptr(json_object) empty = NULL;

    if (!obj) {
        obj = empty = json_object_new_object();
    }
    json_object_object_foreach(obj, key, val)
    {
        g_autofree char *opt = g_strconcat("*", key, NULL);
        json_object *type = member(decl, key);
        if (!type) {
            type = member(decl, opt);
        }
        if (!type && extra) {
            continue;
        }
        if (!type) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "Parameter '%s' is unexpected", key);
            return false;
        }
        if (!check_value(s, type, key, val, errp)) {
            return false;
        }
    }
    json_object_object_foreach(decl, dkey, dval)
    {
        (void)dval;
        if (dkey[0] != '*' && !member(obj, dkey)) {
            g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                        "Parameter '%s' is missing", dkey);
            return false;
        }
    }
    return true;
}

/*
 * A flat union: the tag is checked first (its value picks the variant),
 * then the base's and the variant's members together, as QEMU does.
 */
static bool
check_union(const GwQmpSchema *s, json_object *u, json_object *v, GError **errp)
{
    const char *tag = json_object_get_string(member(u, "tag"));
    json_object *base = member(u, "base"), *tag_val = member(v, tag);
    g_autoptr(json_object) all = NULL;
    json_object *variant;

    if (!tag_val) {
        g_set_error(errp, GW_ERROR, GW_ERROR_INVALID,
                    "Parameter '%s' is missing", tag);
        return false;
    }
    if (!check_value(s, member(base, tag), tag, tag_val, errp)) {
        return false;
    }
    variant = member(member(u, "variants"), json_object_get_string(tag_val));
    g_assert(variant); /* the tag's enum lists exactly the variants */
    all = json_object_new_object();
    json_object_object_foreach(base, bkey, btype)
    {
        json_object_object_add(all, bkey, json_object_get(btype));
    }
    json_object_object_foreach(
        member(member(s->types, json_object_get_string(variant)), "struct"),
        vkey, vtype)
    {
        json_object_object_add(all, vkey, json_object_get(vtype));
    }
    return check_members(s, all, v, false, errp);
}

static bool
check_value(const GwQmpSchema *s, json_object *type, const char *name,
            json_object *v, GError **errp)
{
    json_object *def, *sub;
    BuiltinCheck b;

    if (json_object_is_type(type, json_type_array)) {
        if (!json_object_is_type(v, json_type_array)) {
            return type_error(name, "array", errp);
        }
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            /* QEMU 7.2 names list elements 'null' in its messages. */
            if (!check_value(s, json_object_array_get_idx(type, 0), "null",
                             json_object_array_get_idx(v, i), errp)) {
                return false;
            }
        }
        return true;
    }
    b = check_builtin(json_object_get_string(type), name, v, errp);
    if (b != NOT_BUILTIN) {
        return b == BUILTIN_OK;
    }
    def = member(s->types, json_object_get_string(type));
    g_assert(def);
    if ((sub = member(def, "enum"))) {
        return check_enum(sub, name, v, errp);
    }
    if (!json_object_is_type(v, json_type_object)) {
        return type_error(name, "object", errp);
    }
    if ((sub = member(def, "union"))) {
        return check_union(s, sub, v, errp);
    }
    return check_members(s, member(def, "struct"), v, false, errp);
}

bool
gw_qmp_schema_check_args(const GwQmpSchema *s, const char *name,
                         json_object *args, GError **errp)
{
    json_object *cmd = g_hash_table_lookup(s->commands, name);
    json_object *decl = cmd ? member(cmd, "args") : NULL;
    g_autoptr(json_object) none = NULL;

    g_assert(cmd);
    if (decl && json_object_is_type(decl, json_type_string)) { /* boxed */
        if (!args) {
            args = none = json_object_new_object();
        }
        return check_value(s, decl, "", args, errp);
    }
    if (!decl) {
        decl = none = json_object_new_object();
    }
    return check_members(s, decl, args, member(cmd, "extra-args") != NULL,
                         errp);
}

/* ---- query-qmp-schema (QEMU's SchemaInfo) ---- */

typedef struct {
    const GwQmpSchema *s;
    json_object *out;
    GHashTable *done; /* type names already emitted */
} Introspect;

static const char *add_type(Introspect *in, json_object *type);

static json_object *
info(const char *name, const char *meta)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "meta-type", json_object_new_string(meta));
    return o;
}

static bool
first_time(Introspect *in, const char *name)
{
    return g_hash_table_add(in->done, g_strdup(name));
}

static json_object *
object_members(Introspect *in, json_object *decl)
{
    json_object *members = json_object_new_array();

    json_object_object_foreach(decl, key, type)
    {
        json_object *m = json_object_new_object();
        const char *plain = key[0] == '*' ? key + 1 : key;
        json_object_object_add(m, "name", json_object_new_string(plain));
        json_object_object_add(m, "type",
                               json_object_new_string(add_type(in, type)));
        if (key[0] == '*') {
            json_object_object_add(m, "default", NULL);
        }
        json_object_array_add(members, m);
    }
    return members;
}

/* An object type for `decl` (member → type); returns its name. */
static const char *
add_object(Introspect *in, const char *name, json_object *decl)
{
    json_object *o;

    if (!first_time(in, name)) {
        return name;
    }
    o = info(name, "object");
    json_object_object_add(o, "members", object_members(in, decl));
    json_object_array_add(in->out, o);
    return name;
}

/* A flat union: the base's members, the tag, a variant per tag value. */
static const char *
add_union(Introspect *in, const char *name, json_object *u)
{
    json_object *o, *variants;

    if (!first_time(in, name)) {
        return name;
    }
    o = info(name, "object");
    json_object_object_add(o, "members", object_members(in, member(u, "base")));
    json_object_object_add(o, "tag", json_object_get(member(u, "tag")));
    variants = json_object_new_array();
    json_object_object_foreach(member(u, "variants"), tag_value, type)
    {
        json_object *v = json_object_new_object();
        json_object_object_add(v, "case", json_object_new_string(tag_value));
        json_object_object_add(v, "type",
                               json_object_new_string(add_type(in, type)));
        json_object_array_add(variants, v);
    }
    json_object_object_add(o, "variants", variants);
    json_object_array_add(in->out, o);
    return name;
}

static const char *
add_builtin(Introspect *in, const char *name)
{
    static const char *const json_types[][2] = {
        {"str", "string"},    {"int", "int"},   {"bool", "boolean"},
        {"number", "number"}, {"any", "value"},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(json_types); i++) {
        if (g_str_equal(name, json_types[i][0])) {
            if (first_time(in, name)) {
                json_object *o = info(name, "builtin");
                json_object_object_add(
                    o, "json-type", json_object_new_string(json_types[i][1]));
                json_object_array_add(in->out, o);
            }
            return name;
        }
    }
    return NULL;
}

static const char *
add_enum(Introspect *in, const char *name, json_object *values)
{
    json_object *o = info(name, "enum");
    json_object *members = json_object_new_array();

    for (size_t i = 0; i < json_object_array_length(values); i++) {
        json_object *m = json_object_new_object();
        json_object_object_add(
            m, "name", json_object_get(json_object_array_get_idx(values, i)));
        json_object_array_add(members, m);
    }
    json_object_object_add(o, "values", json_object_get(values));
    json_object_object_add(o, "members", members);
    json_object_array_add(in->out, o);
    return name;
}

/* Emits `type` (and what it refers to) once; returns its name. */
static const char *
add_type(Introspect *in, json_object *type)
{
    const char *name, *b;
    json_object *def, *sub;

    if (json_object_is_type(type, json_type_array)) {
        const char *elem = add_type(in, json_object_array_get_idx(type, 0));
        g_autofree char *arr = g_strdup_printf("[%s]", elem);
        if (first_time(in, arr)) {
            json_object *o = info(arr, "array");
            json_object_object_add(o, "element-type",
                                   json_object_new_string(elem));
            json_object_array_add(in->out, o);
        }
        return g_hash_table_lookup(in->done, arr); /* the stored copy */
    }
    name = json_object_get_string(type);
    if ((b = add_builtin(in, name))) {
        return b;
    }
    def = member(in->s->types, name);
    g_assert(def);
    if ((sub = member(def, "enum"))) {
        return first_time(in, name) ? add_enum(in, name, sub) : name;
    }
    if ((sub = member(def, "union"))) {
        return add_union(in, name, sub);
    }
    return add_object(in, name, member(def, "struct"));
}

static const char *
empty_object(Introspect *in)
{
    if (first_time(in, "0")) {
        json_object *o = info("0", "object");
        json_object_object_add(o, "members", json_object_new_array());
        json_object_array_add(in->out, o);
    }
    return "0";
}

/* Named like QEMU's implicit types: q_obj_<name>-arg. */
static const char *
arg_type(Introspect *in, const char *owner, json_object *decl)
{
    g_autofree char *name = NULL;

    if (decl && json_object_is_type(decl, json_type_string)) {
        return add_type(in, decl); /* boxed */
    }
    if (!decl || json_object_object_length(decl) == 0) {
        return empty_object(in);
    }
    name = g_strdup_printf("q_obj_%s-arg", owner);
    add_object(in, name, decl);
    return g_hash_table_lookup(in->done, name);
}

static void
add_entity(Introspect *in, json_object *decl, const char *meta,
           const char *args_key)
{
    const char *name = json_object_get_string(member(decl, "name"));
    json_object *o = info(name, meta);
    json_object *ret = member(decl, "returns");

    json_object_object_add(
        o, "arg-type",
        json_object_new_string(arg_type(in, name, member(decl, args_key))));
    if (g_str_equal(meta, "command")) {
        json_object_object_add(
            o, "ret-type",
            json_object_new_string(ret ? add_type(in, ret) : empty_object(in)));
        json_object_object_add(o, "allow-oob", json_object_new_boolean(false));
        if (member(decl, "features")) {
            json_object_object_add(o, "features",
                                   json_object_get(member(decl, "features")));
        } else if (member(decl, "x-godwit")) {
            json_object *feat = json_object_new_array();
            json_object_array_add(feat, json_object_new_string("unstable"));
            json_object_object_add(o, "features", feat);
        }
    }
    json_object_array_add(in->out, o);
}

static int
by_name(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_object *
gw_qmp_schema_introspect(const GwQmpSchema *s, GHashTable *registered)
{
    Introspect in = {
        s, json_object_new_array(),
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL)};
    g_autofree gpointer *names = NULL;
    guint n = 0;

    names = g_hash_table_get_keys_as_array(registered, &n);
    qsort(names, n, sizeof(*names), by_name);
    for (guint i = 0; i < n; i++) {
        add_entity(&in, g_hash_table_lookup(s->commands, names[i]), "command",
                   "args");
    }
    for (size_t i = 0; i < json_object_array_length(s->events); i++) {
        add_entity(&in, json_object_array_get_idx(s->events, i), "event",
                   "data");
    }
    g_hash_table_unref(in.done);
    return in.out;
}
