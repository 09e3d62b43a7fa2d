/* kp_conf.c - one configuration system for kpool's programs.
 *
 * A conf holds one slot per option of kp_opts_common plus the program's
 * table. kp_conf_load() first reads argv without applying it (to find
 * -c/--config and to report bad flags early), then applies the file, the
 * environment and finally the flags, so each later source overrides the
 * earlier ones.
 *
 * An empty value given to a text option means "its default" (unset when
 * it has none); other types reject an empty value. */
#include "kp_conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kp_log.h"
#include "kp_opts.h"

/* Help text starts at this column, unless the flag part is longer. */
#define USAGE_HELP_COL 32
#define USAGE_WIDTH    80

typedef struct conf_slot {
        const kp_opt_def_t *def;
        char *text;    /* the value as text (canonical for enums) */
        long long num; /* KP_OPT_INT value, KP_OPT_BOOL 0/1 */
        char *origin;  /* "default", "FILE:LINE", "KPOOL_X", "--flag" */
} conf_slot_t;

typedef struct conf_kafka {
        char *key;
        char *value;
        char *origin;
} conf_kafka_t;

struct kp_conf {
        const kp_opt_def_t *defs; /* the program's table */
        size_t ndefs;
        conf_slot_t *slots; /* common options, then the program's */
        size_t nslots;

        conf_kafka_t *kafka;
        size_t nkafka, kafka_cap;

        char **args; /* positional arguments, NULL-terminated */
        size_t nargs, args_cap;
};

/* A flag read from argv, applied after the file and the environment. */
typedef struct pending {
        conf_slot_t *slot; /* NULL for -X */
        const char *value; /* points into argv or into `own` */
        char *own;         /* owned copy when the value had to be built */
        char origin[64];
} pending_t;

static void *xmalloc(size_t size) {
        void *p = malloc(size ? size : 1);

        if (!p)
                abort();
        return p;
}

static void *xcalloc(size_t n, size_t size) {
        void *p = calloc(n ? n : 1, size ? size : 1);

        if (!p)
                abort();
        return p;
}

static void *xrealloc(void *p, size_t size) {
        p = realloc(p, size ? size : 1);
        if (!p)
                abort();
        return p;
}

static char *xstrdup(const char *s) {
        char *p = strdup(s);

        if (!p)
                abort();
        return p;
}

static char *xstrndup(const char *s, size_t n) {
        char *p = strndup(s, n);

        if (!p)
                abort();
        return p;
}

static int seterr(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int seterr(char *errstr, size_t errstr_size, const char *fmt, ...) {
        va_list ap;

        if (errstr && errstr_size) {
                va_start(ap, fmt);
                vsnprintf(errstr, errstr_size, fmt, ap);
                va_end(ap);
        }
        return -1;
}

/*
 * Lookup
 */

static conf_slot_t *slot_find(const kp_conf_t *conf, const char *name) {
        size_t i;

        for (i = 0; i < conf->nslots; i++)
                if (!strcmp(conf->slots[i].def->name, name))
                        return &conf->slots[i];
        return NULL;
}

static conf_slot_t *slot_find_short(const kp_conf_t *conf, int c) {
        size_t i;

        for (i = 0; i < conf->nslots; i++)
                if (conf->slots[i].def->short_name == c)
                        return &conf->slots[i];
        return NULL;
}

/* The slot of an option the program must have: a miss is a bug. */
static conf_slot_t *slot_must(const kp_conf_t *conf, const char *name) {
        conf_slot_t *slot = slot_find(conf, name);

        if (!slot) {
                kp_err("kp_conf: no option named \"%s\" in the tables", name);
                abort();
        }
        return slot;
}

static int table_has(const kp_opt_def_t *defs, size_t n, const char *name) {
        size_t i;

        for (i = 0; i < n; i++)
                if (!strcmp(defs[i].name, name))
                        return 1;
        return 0;
}

/* Whether any program knows `name`: a config file serves them all. */
static int key_known_anywhere(const kp_conf_t *conf, const char *name) {
        return table_has(kp_opts_common, kp_opts_common_count, name) ||
               table_has(kp_opts_worker, kp_opts_worker_count, name) ||
               table_has(kp_opts_kpool, kp_opts_kpool_count, name) ||
               table_has(conf->defs, conf->ndefs, name);
}

/* Whether a table other than this program's reads `name` from files. */
static int key_in_file_elsewhere(const kp_conf_t *conf, const char *name) {
        const kp_opt_def_t *tables[] = {kp_opts_worker, kp_opts_kpool};
        const size_t counts[] = {kp_opts_worker_count, kp_opts_kpool_count};
        size_t t, i;

        for (t = 0; t < 2; t++) {
                if (tables[t] == conf->defs)
                        continue;
                for (i = 0; i < counts[t]; i++)
                        if (!strcmp(tables[t][i].name, name) &&
                            !(tables[t][i].flags & KP_OPT_F_CLIONLY))
                                return 1;
        }
        return 0;
}

/*
 * Suggestions
 */

static size_t levenshtein(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        size_t *row = xmalloc((lb + 1) * sizeof(*row));
        size_t i, j, diag, up, d;

        for (j = 0; j <= lb; j++)
                row[j] = j;
        for (i = 1; i <= la; i++) {
                diag = row[0];
                row[0] = i;
                for (j = 1; j <= lb; j++) {
                        up = row[j];
                        d = diag + (a[i - 1] != b[j - 1]);
                        if (up + 1 < d)
                                d = up + 1;
                        if (row[j - 1] + 1 < d)
                                d = row[j - 1] + 1;
                        row[j] = d;
                        diag = up;
                }
        }
        d = row[lb];
        free(row);
        return d;
}

typedef struct suggest_best {
        const char *name;
        size_t dist;
} suggest_best_t;

static void suggest_scan(suggest_best_t *best, const kp_opt_def_t *defs,
                         size_t n, const char *name) {
        size_t i, d;

        for (i = 0; i < n; i++) {
                d = levenshtein(name, defs[i].name);
                if (!best->name || d < best->dist) {
                        best->name = defs[i].name;
                        best->dist = d;
                }
        }
}

static const char *suggest_pick(const suggest_best_t *best, const char *name) {
        if (!best->name)
                return NULL;
        if (best->dist <= 2 || best->dist * 3 <= strlen(name))
                return best->name;
        return NULL;
}

const char *kp_conf_suggest(const kp_conf_t *conf, const char *name) {
        suggest_best_t best = {NULL, 0};

        suggest_scan(&best, kp_opts_common, kp_opts_common_count, name);
        suggest_scan(&best, conf->defs, conf->ndefs, name);
        return suggest_pick(&best, name);
}

/* The nearest key of any program, for config-file lines. */
static const char *suggest_any(const kp_conf_t *conf, const char *name) {
        suggest_best_t best = {NULL, 0};

        suggest_scan(&best, kp_opts_common, kp_opts_common_count, name);
        suggest_scan(&best, conf->defs, conf->ndefs, name);
        suggest_scan(&best, kp_opts_worker, kp_opts_worker_count, name);
        suggest_scan(&best, kp_opts_kpool, kp_opts_kpool_count, name);
        return suggest_pick(&best, name);
}

/*
 * Values
 */

static int parse_bool(const char *s, int *out) {
        static const char *const yes[] = {"true", "yes", "on", "1"};
        static const char *const no[] = {"false", "no", "off", "0"};
        size_t i;

        for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
                if (!strcasecmp(s, yes[i])) {
                        *out = 1;
                        return 0;
                }
                if (!strcasecmp(s, no[i])) {
                        *out = 0;
                        return 0;
                }
        }
        return -1;
}

/* The choice of `choices` ("a|b|c") equal to `s` ignoring case, copied;
 * NULL if none. */
static char *enum_match(const char *choices, const char *s) {
        const char *p = choices, *end;
        size_t len = strlen(s);

        while (*p) {
                end = strchr(p, '|');
                if (!end)
                        end = p + strlen(p);
                if ((size_t)(end - p) == len && !strncasecmp(p, s, len))
                        return xstrndup(p, len);
                p = *end ? end + 1 : end;
        }
        return NULL;
}

/* Prefix of an error about `slot` set from `origin`: a flag or an
 * environment variable names the option itself, anything else (a file
 * position) is followed by the key. */
static void err_where(char *buf, size_t size, const conf_slot_t *slot,
                      const char *origin) {
        if (origin[0] == '-' || !strncmp(origin, "KPOOL_", 6))
                snprintf(buf, size, "%s", origin);
        else
                snprintf(buf, size, "%s: %s", origin, slot->def->name);
}

/* How an error shows `value`: quoted, or not at all for a secret. */
static void err_value(char *buf, size_t size, const conf_slot_t *slot,
                      const char *value, int quote) {
        if (slot->def->flags & KP_OPT_F_SECRET)
                snprintf(buf, size, "the value");
        else if (quote)
                snprintf(buf, size, "\"%.100s\"", value);
        else
                snprintf(buf, size, "%.100s", value);
}

static int parse_int(const conf_slot_t *slot, const char *value,
                     const char *where, long long *nump, char *errstr,
                     size_t errstr_size) {
        const kp_opt_def_t *def = slot->def;
        char shown[128];
        char *end;
        long long n;

        errno = 0;
        n = strtoll(value, &end, 10);
        if (end == value || *end || isspace((unsigned char)*value)) {
                err_value(shown, sizeof(shown), slot, value, 1);
                return seterr(errstr, errstr_size,
                              "%s: %s is not an integer (%lld..%lld)", where,
                              shown, def->min, def->max);
        }
        if (errno == ERANGE || n < def->min || n > def->max) {
                err_value(shown, sizeof(shown), slot, value, 0);
                return seterr(errstr, errstr_size,
                              "%s: %s is out of range %lld..%lld", where, shown,
                              def->min, def->max);
        }
        *nump = n;
        return 0;
}

/* Parses `value` for `slot` into its text (owned by the caller) and
 * number. Returns 0, or -1 with a message that shows the value only if
 * the option is not secret. */
static int slot_parse(const conf_slot_t *slot, const char *value,
                      const char *origin, char **textp, long long *nump,
                      char *errstr, size_t errstr_size) {
        const kp_opt_def_t *def = slot->def;
        char where[160], shown[128], num[32];
        int b;

        err_where(where, sizeof(where), slot, origin);
        *nump = 0;

        switch (def->type) {
        case KP_OPT_STR:
                *textp = xstrdup(value);
                return 0;

        case KP_OPT_INT:
                if (parse_int(slot, value, where, nump, errstr, errstr_size) ==
                    -1)
                        return -1;
                snprintf(num, sizeof(num), "%lld", *nump);
                *textp = xstrdup(num);
                return 0;

        case KP_OPT_BOOL:
                if (parse_bool(value, &b) == -1) {
                        err_value(shown, sizeof(shown), slot, value, 1);
                        return seterr(errstr, errstr_size,
                                      "%s: %s is not a boolean (true/false, "
                                      "yes/no, on/off, 1/0)",
                                      where, shown);
                }
                *textp = xstrdup(b ? "true" : "false");
                *nump = b;
                return 0;

        case KP_OPT_ENUM:
                *textp = enum_match(def->choices, value);
                if (!*textp) {
                        err_value(shown, sizeof(shown), slot, value, 1);
                        return seterr(errstr, errstr_size,
                                      "%s: %s is not one of %s", where, shown,
                                      def->choices);
                }
                return 0;
        }
        abort();
}

/* Stores `value` (NULL: unset) into `slot` from `origin`. */
static int slot_set(conf_slot_t *slot, const char *value, const char *origin,
                    char *errstr, size_t errstr_size) {
        const kp_opt_def_t *def = slot->def;
        char *text = NULL;
        long long num = 0;
        char where[160];

        /* An empty text value falls back to the default. */
        if (value && !*value && def->type == KP_OPT_STR)
                value = def->def;

        if (value && !*value) {
                err_where(where, sizeof(where), slot, origin);
                return seterr(errstr, errstr_size, "%s: missing value", where);
        }

        if (value && slot_parse(slot, value, origin, &text, &num, errstr,
                                errstr_size) == -1)
                return -1;

        free(slot->text);
        free(slot->origin);
        slot->text = text;
        slot->num = num;
        slot->origin = xstrdup(origin);
        return 0;
}

static void kafka_add(kp_conf_t *conf, const char *key, const char *value,
                      const char *origin) {
        conf_kafka_t *k;

        if (conf->nkafka == conf->kafka_cap) {
                conf->kafka_cap = conf->kafka_cap ? conf->kafka_cap * 2 : 8;
                conf->kafka = xrealloc(conf->kafka,
                                       conf->kafka_cap * sizeof(*conf->kafka));
        }
        k = &conf->kafka[conf->nkafka++];
        k->key = xstrdup(key);
        k->value = xstrdup(value);
        k->origin = xstrdup(origin);
}

static void args_add(kp_conf_t *conf, const char *arg) {
        if (conf->nargs + 1 >= conf->args_cap) {
                conf->args_cap = conf->args_cap ? conf->args_cap * 2 : 8;
                conf->args =
                    xrealloc(conf->args, conf->args_cap * sizeof(*conf->args));
        }
        conf->args[conf->nargs++] = xstrdup(arg);
        conf->args[conf->nargs] = NULL;
}

/*
 * Creation
 */

static void slot_init(conf_slot_t *slot, const kp_opt_def_t *def) {
        char errstr[256];

        slot->def = def;
        if (slot_set(slot, def->def, "default", errstr, sizeof(errstr)) == -1) {
                kp_err("kp_conf: bad default of option \"%s\": %s", def->name,
                       errstr);
                abort();
        }
        if (def->short_name == 'X') {
                kp_err("kp_conf: option \"%s\" takes -X, kept for librdkafka",
                       def->name);
                abort();
        }
        if ((def->flags & KP_OPT_F_FLAG) && def->type != KP_OPT_BOOL) {
                kp_err("kp_conf: option \"%s\" is a flag but not a boolean",
                       def->name);
                abort();
        }
}

kp_conf_t *kp_conf_new(const kp_opt_def_t *defs, size_t ndefs) {
        kp_conf_t *conf = xcalloc(1, sizeof(*conf));
        size_t i, j;

        conf->defs = defs;
        conf->ndefs = ndefs;
        conf->nslots = kp_opts_common_count + ndefs;
        conf->slots = xcalloc(conf->nslots, sizeof(*conf->slots));

        for (i = 0; i < kp_opts_common_count; i++)
                slot_init(&conf->slots[i], &kp_opts_common[i]);
        for (i = 0; i < ndefs; i++)
                slot_init(&conf->slots[kp_opts_common_count + i], &defs[i]);

        /* Two options with one name or one short flag are a table bug. */
        for (i = 0; i < conf->nslots; i++) {
                for (j = i + 1; j < conf->nslots; j++) {
                        const kp_opt_def_t *a = conf->slots[i].def;
                        const kp_opt_def_t *b = conf->slots[j].def;

                        if (strcmp(a->name, b->name) &&
                            (!a->short_name || a->short_name != b->short_name))
                                continue;
                        kp_err("kp_conf: options \"%s\" and \"%s\" clash",
                               a->name, b->name);
                        abort();
                }
        }

        conf->args_cap = 8;
        conf->args = xmalloc(conf->args_cap * sizeof(*conf->args));
        conf->args[0] = NULL;
        return conf;
}

void kp_conf_destroy(kp_conf_t *conf) {
        size_t i;

        if (!conf)
                return;
        for (i = 0; i < conf->nslots; i++) {
                free(conf->slots[i].text);
                free(conf->slots[i].origin);
        }
        free(conf->slots);
        for (i = 0; i < conf->nkafka; i++) {
                free(conf->kafka[i].key);
                free(conf->kafka[i].value);
                free(conf->kafka[i].origin);
        }
        free(conf->kafka);
        for (i = 0; i < conf->nargs; i++)
                free(conf->args[i]);
        free(conf->args);
        free(conf);
}

/*
 * Setting by name
 */

/* "ORIGIN: KEY: unknown key", with the near miss when there is one.
 * Returns -1. */
static int unknown_key(const char *origin, const char *key, const char *hint,
                       char *errstr, size_t errstr_size) {
        if (hint)
                return seterr(errstr, errstr_size,
                              "%s: %s: unknown key (did you mean %s?)", origin,
                              key, hint);
        return seterr(errstr, errstr_size, "%s: %s: unknown key", origin, key);
}

int kp_conf_set(kp_conf_t *conf, const char *name, const char *value,
                const char *origin, char *errstr, size_t errstr_size) {
        conf_slot_t *slot;

        if (!strncmp(name, "kafka.", 6)) {
                if (!name[6])
                        return seterr(errstr, errstr_size,
                                      "%s: %s: missing librdkafka property "
                                      "name",
                                      origin, name);
                kafka_add(conf, name + 6, value ? value : "", origin);
                return 0;
        }

        slot = slot_find(conf, name);
        if (!slot) {
                return unknown_key(origin, name, kp_conf_suggest(conf, name),
                                   errstr, errstr_size);
        }
        return slot_set(slot, value, origin, errstr, errstr_size);
}

/*
 * Config file
 */

static char *trim(char *s) {
        char *end;

        while (isspace((unsigned char)*s))
                s++;
        end = s + strlen(s);
        while (end > s && isspace((unsigned char)end[-1]))
                *--end = '\0';
        return s;
}

/* Applies one line of a config file. Returns 0 or -1. */
static int file_line(kp_conf_t *conf, const char *path, int lineno, char *line,
                     char *errstr, size_t errstr_size) {
        char origin[512];
        char *key, *value, *eq;
        size_t vlen;
        conf_slot_t *slot;

        line = trim(line);
        if (!*line || *line == '#' || *line == ';')
                return 0;

        snprintf(origin, sizeof(origin), "%s:%d", path, lineno);

        /* The line itself is not quoted back: it may hold a secret. */
        eq = strchr(line, '=');
        if (!eq)
                return seterr(errstr, errstr_size,
                              "%s: expected \"key = value\" (no '=' on the "
                              "line)",
                              origin);
        *eq = '\0';
        key = trim(line);
        value = trim(eq + 1);
        if (!*key)
                return seterr(errstr, errstr_size, "%s: missing key before '='",
                              origin);

        /* Optional double quotes around the value. */
        vlen = strlen(value);
        if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
                value[vlen - 1] = '\0';
                value++;
        }

        if (!strncmp(key, "kafka.", 6))
                return kp_conf_set(conf, key, value, origin, errstr,
                                   errstr_size);

        slot = slot_find(conf, key);
        if (!slot) {
                /* Another program's key: one file serves them all. */
                if (key_known_anywhere(conf, key))
                        return 0;
                return unknown_key(origin, key, suggest_any(conf, key), errstr,
                                   errstr_size);
        }
        /* This program takes the key from flags only, but another may
         * take it from the file (`partition`: the worker's own). */
        if ((slot->def->flags & KP_OPT_F_CLIONLY) &&
            key_in_file_elsewhere(conf, key))
                return 0;
        if (slot->def->flags & KP_OPT_F_CLIONLY)
                return seterr(errstr, errstr_size,
                              "%s: %s: only accepted on the command line "
                              "(--%s)",
                              origin, key, key);
        return slot_set(slot, value, origin, errstr, errstr_size);
}

int kp_conf_load_file(kp_conf_t *conf, const char *path, char *errstr,
                      size_t errstr_size) {
        FILE *fp;
        char *line = NULL;
        size_t cap = 0;
        int lineno = 0;
        int r = 0;

        fp = fopen(path, "r");
        if (!fp)
                return seterr(errstr, errstr_size,
                              "Failed to open config file %s: %s", path,
                              strerror(errno));

        while (getline(&line, &cap, fp) != -1) {
                lineno++;
                /* A UTF-8 byte order mark some editors write. */
                if (lineno == 1 && !strncmp(line, "\xef\xbb\xbf", 3))
                        memmove(line, line + 3, strlen(line + 3) + 1);
                r = file_line(conf, path, lineno, line, errstr, errstr_size);
                if (r == -1)
                        break;
        }
        if (r == 0 && ferror(fp))
                r = seterr(errstr, errstr_size,
                           "Failed to read config file %s: %s", path,
                           strerror(errno));

        free(line);
        fclose(fp);
        return r;
}

/*
 * Environment
 */

/* "max-input-bytes" -> "KPOOL_MAX_INPUT_BYTES". */
static void env_name(char *buf, size_t size, const char *name) {
        size_t i, n;

        n = (size_t)snprintf(buf, size, "KPOOL_");
        for (i = 0; name[i] && n + 1 < size; i++, n++)
                buf[n] = name[i] == '-' ? '_'
                                        : (char)toupper((unsigned char)name[i]);
        buf[n] = '\0';
}

/* Applies KPOOL_<NAME> for each of the program's options. An empty
 * variable counts as unset. */
static int env_load(kp_conf_t *conf, char *errstr, size_t errstr_size) {
        char var[128];
        const char *value;
        size_t i;

        for (i = 0; i < conf->nslots; i++) {
                if (conf->slots[i].def->flags & KP_OPT_F_CLIONLY)
                        continue;
                env_name(var, sizeof(var), conf->slots[i].def->name);
                value = getenv(var);
                if (!value || !*value)
                        continue;
                if (slot_set(&conf->slots[i], value, var, errstr,
                             errstr_size) == -1)
                        return -1;
        }
        return 0;
}

/*
 * Command line
 */

static void pending_free(pending_t *p, size_t n) {
        size_t i;

        for (i = 0; i < n; i++)
                free(p[i].own);
        free(p);
}

/* An unknown "--name[=value]": the value is never quoted back. */
static int err_unknown_long(const kp_conf_t *conf, const char *arg,
                            char *errstr, size_t errstr_size) {
        const char *eq = strchr(arg, '=');
        char *name = xstrndup(arg, eq ? (size_t)(eq - arg) : strlen(arg));
        const char *hint = kp_conf_suggest(conf, name);

        if (hint)
                seterr(errstr, errstr_size,
                       "unknown option --%s (did you mean --%s?)", name, hint);
        else
                seterr(errstr, errstr_size, "unknown option --%s", name);
        free(name);
        return -1;
}

static int err_missing_arg(const char *flag, const kp_opt_def_t *def,
                           char *errstr, size_t errstr_size) {
        return seterr(errstr, errstr_size, "option %s requires an argument%s%s",
                      flag, def->arg ? " " : "", def->arg ? def->arg : "");
}

/* Reads "-X key=value" (value in `kv`) into `p`. */
static int parse_x(const char *kv, pending_t *p, char *errstr,
                   size_t errstr_size) {
        const char *eq = strchr(kv, '=');

        if (!eq || eq == kv)
                return seterr(errstr, errstr_size,
                              "option -X expects KEY=VALUE (a librdkafka "
                              "property)");
        p->slot = NULL;
        p->own = xstrdup(kv);
        p->value = p->own;
        snprintf(p->origin, sizeof(p->origin), "-X");
        return 0;
}

/* Reads one "--name[=value]" at argv[*ip] into `p`. */
static int parse_long(kp_conf_t *conf, int argc, char **argv, int *ip,
                      pending_t *p, char *errstr, size_t errstr_size) {
        const char *arg = argv[*ip] + 2;
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        char *name = xstrndup(arg, len);
        conf_slot_t *slot = slot_find(conf, name);

        free(name);
        if (!slot)
                return err_unknown_long(conf, arg, errstr, errstr_size);

        p->slot = slot;
        snprintf(p->origin, sizeof(p->origin), "--%s", slot->def->name);
        if (eq) {
                p->value = eq + 1;
        } else if (slot->def->flags & KP_OPT_F_FLAG) {
                p->value = "true";
        } else if (*ip + 1 < argc) {
                p->value = argv[++*ip];
        } else {
                return err_missing_arg(p->origin, slot->def, errstr,
                                       errstr_size);
        }
        return 0;
}

/* Reads a cluster of short flags at argv[*ip] ("-jw", "-b host",
 * "-bhost", "-Xkey=value"), appending to `pv`. */
static int parse_short(kp_conf_t *conf, int argc, char **argv, int *ip,
                       pending_t **pv, size_t *np, char *errstr,
                       size_t errstr_size) {
        const char *s = argv[*ip] + 1;
        conf_slot_t *slot;
        pending_t *p;
        char flag[3] = {'-', 0, 0};

        while (*s) {
                flag[1] = *s;
                *pv = xrealloc(*pv, (*np + 1) * sizeof(**pv));
                p = &(*pv)[*np];
                memset(p, 0, sizeof(*p));

                if (*s == 'X') {
                        if (s[1])
                                s++;
                        else if (*ip + 1 < argc)
                                s = argv[++*ip];
                        else
                                return seterr(errstr, errstr_size,
                                              "option -X requires an "
                                              "argument KEY=VALUE");
                        if (parse_x(s, p, errstr, errstr_size) == -1)
                                return -1;
                        (*np)++;
                        return 0;
                }

                slot = slot_find_short(conf, (unsigned char)*s);
                if (!slot)
                        return seterr(errstr, errstr_size, "unknown option %s",
                                      flag);
                p->slot = slot;
                snprintf(p->origin, sizeof(p->origin), "%s", flag);

                if (slot->def->flags & KP_OPT_F_FLAG) {
                        p->value = "true";
                        (*np)++;
                        s++;
                        continue;
                }
                if (s[1])
                        p->value = s + 1;
                else if (*ip + 1 < argc)
                        p->value = argv[++*ip];
                else
                        return err_missing_arg(flag, slot->def, errstr,
                                               errstr_size);
                (*np)++;
                return 0;
        }
        return 0;
}

/* Reads argv into flags to apply later and positional arguments. */
static int parse_argv(kp_conf_t *conf, int argc, char **argv, pending_t **pv,
                      size_t *np, char *errstr, size_t errstr_size) {
        int i, only_args = 0;
        const char *arg;

        for (i = 1; i < argc; i++) {
                arg = argv[i];
                if (only_args || arg[0] != '-' || !arg[1]) {
                        args_add(conf, arg);
                        continue;
                }
                if (!strcmp(arg, "--")) {
                        only_args = 1;
                        continue;
                }
                if (arg[1] == '-') {
                        *pv = xrealloc(*pv, (*np + 1) * sizeof(**pv));
                        memset(&(*pv)[*np], 0, sizeof(**pv));
                        if (parse_long(conf, argc, argv, &i, &(*pv)[*np],
                                       errstr, errstr_size) == -1)
                                return -1;
                        (*np)++;
                        continue;
                }
                if (parse_short(conf, argc, argv, &i, pv, np, errstr,
                                errstr_size) == -1)
                        return -1;
        }
        return 0;
}

/* Applies one flag read by parse_argv(). */
static int pending_apply(kp_conf_t *conf, const pending_t *p, char *errstr,
                         size_t errstr_size) {
        const char *eq;
        char *key;

        if (p->slot)
                return slot_set(p->slot, p->value, p->origin, errstr,
                                errstr_size);

        eq = strchr(p->value, '=');
        key = xstrndup(p->value, (size_t)(eq - p->value));
        kafka_add(conf, key, eq + 1, p->origin);
        free(key);
        return 0;
}

int kp_conf_load(kp_conf_t *conf, int argc, char **argv, char *errstr,
                 size_t errstr_size) {
        pending_t *pv = NULL;
        size_t np = 0, i;
        const char *path = NULL;
        const char *path_origin = NULL;
        conf_slot_t *cslot = slot_must(conf, "config");
        int r = -1;

        if (parse_argv(conf, argc, argv, &pv, &np, errstr, errstr_size) == -1)
                goto out;

        /* The file: the last -c/--config, else $KPOOL_CONFIG. */
        for (i = 0; i < np; i++) {
                if (pv[i].slot == cslot) {
                        path = pv[i].value;
                        path_origin = pv[i].origin;
                }
        }
        if (!path) {
                path = getenv("KPOOL_CONFIG");
                path_origin = "KPOOL_CONFIG";
                if (path && !*path)
                        path = NULL;
        }
        if (path) {
                if (!*path) {
                        seterr(errstr, errstr_size,
                               "%s: missing config file name", path_origin);
                        goto out;
                }
                if (slot_set(cslot, path, path_origin, errstr, errstr_size))
                        goto out;
                if (kp_conf_load_file(conf, path, errstr, errstr_size) == -1)
                        goto out;
        }

        if (env_load(conf, errstr, errstr_size) == -1)
                goto out;

        for (i = 0; i < np; i++)
                if (pending_apply(conf, &pv[i], errstr, errstr_size) == -1)
                        goto out;
        r = 0;

out:
        pending_free(pv, np);
        return r;
}

/*
 * Accessors
 */

const char *kp_conf_str(const kp_conf_t *conf, const char *name) {
        return slot_must(conf, name)->text;
}

long long kp_conf_int(const kp_conf_t *conf, const char *name) {
        const conf_slot_t *slot = slot_must(conf, name);

        if (slot->def->type != KP_OPT_INT) {
                kp_err("kp_conf: option \"%s\" is not an integer", name);
                abort();
        }
        return slot->num;
}

int kp_conf_bool(const kp_conf_t *conf, const char *name) {
        const conf_slot_t *slot = slot_must(conf, name);

        if (slot->def->type != KP_OPT_BOOL) {
                kp_err("kp_conf: option \"%s\" is not a boolean", name);
                abort();
        }
        return (int)slot->num;
}

const char *kp_conf_origin(const kp_conf_t *conf, const char *name) {
        return slot_must(conf, name)->origin;
}

char **kp_conf_args(const kp_conf_t *conf, int *countp) {
        if (countp)
                *countp = (int)conf->nargs;
        return conf->args;
}

size_t kp_conf_kafka_count(const kp_conf_t *conf) {
        return conf->nkafka;
}

void kp_conf_kafka_get(const kp_conf_t *conf, size_t i, const char **key,
                       const char **value) {
        if (i >= conf->nkafka) {
                kp_err("kp_conf: librdkafka property %zu of %zu", i,
                       conf->nkafka);
                abort();
        }
        if (key)
                *key = conf->kafka[i].key;
        if (value)
                *value = conf->kafka[i].value;
}

/*
 * Usage
 */

/* Joins words that must stay on one line in usage text. */
#define USAGE_NBSP '\001'

/* Writes `text` from column `col`, wrapping at USAGE_WIDTH with
 * continuation lines starting at `indent`. */
static void usage_wrap(FILE *out, const char *text, size_t col, size_t indent) {
        const char *p = text, *end;
        size_t len, i;
        int first = 1;

        while (*p) {
                while (*p == ' ')
                        p++;
                if (!*p)
                        break;
                end = strchr(p, ' ');
                len = end ? (size_t)(end - p) : strlen(p);
                if (!first && col + 1 + len > USAGE_WIDTH) {
                        fprintf(out, "\n%*s", (int)indent, "");
                        col = indent;
                        first = 1;
                }
                if (!first) {
                        fputc(' ', out);
                        col++;
                }
                for (i = 0; i < len; i++)
                        fputc(p[i] == USAGE_NBSP ? ' ' : p[i], out);
                col += len;
                first = 0;
                p += len;
        }
        fputc('\n', out);
}

static void usage_line(FILE *out, const char *left, const char *help) {
        size_t col = strlen(left);

        fputs(left, out);
        if (col + 2 > USAGE_HELP_COL) {
                fprintf(out, "\n%*s", USAGE_HELP_COL, "");
        } else {
                fprintf(out, "%*s", (int)(USAGE_HELP_COL - col), "");
        }
        usage_wrap(out, help, USAGE_HELP_COL, USAGE_HELP_COL);
}

static void usage_opt(FILE *out, const kp_opt_def_t *def) {
        char left[128];
        char *help = NULL;
        size_t hlen;
        FILE *hf;
        int n;

        if (def->short_name)
                n = snprintf(left, sizeof(left), "  -%c, --%s", def->short_name,
                             def->name);
        else
                n = snprintf(left, sizeof(left), "      --%s", def->name);
        if (def->arg && n > 0 && (size_t)n < sizeof(left))
                snprintf(left + n, sizeof(left) - (size_t)n, " %s", def->arg);

        hf = open_memstream(&help, &hlen);
        if (!hf)
                abort();
        fputs(def->help ? def->help : "", hf);
        if (def->type == KP_OPT_ENUM)
                fprintf(hf, " (%s", def->choices);
        if (def->def && !(def->flags & (KP_OPT_F_SECRET | KP_OPT_F_FLAG)))
                fprintf(hf, "%sdefault:%c%s)",
                        def->type == KP_OPT_ENUM ? "; " : " (", USAGE_NBSP,
                        def->def);
        else if (def->type == KP_OPT_ENUM)
                fputc(')', hf);
        fclose(hf);

        usage_line(out, left, help);
        free(help);
}

void kp_conf_usage(const kp_conf_t *conf, FILE *out) {
        size_t i;

        for (i = 0; i < conf->nslots; i++)
                usage_opt(out, conf->slots[i].def);
        usage_line(out, "  -X KEY=VALUE",
                   "set a librdkafka property (repeatable), e.g. "
                   "-X\001security.protocol=SASL_SSL; in the config file: "
                   "kafka.KEY\001=\001VALUE");
}
