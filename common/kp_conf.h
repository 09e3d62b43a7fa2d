/* kp_conf.h - one configuration system for kpool's programs.
 *
 * Each program describes its options in a table (kp_opts.c). A value
 * comes from, in rising precedence: the option's default, the config file
 * (-c FILE or $KPOOL_CONFIG), the environment (KPOOL_<NAME>, upper case,
 * '-' as '_'), then command-line flags. The file uses the flags' long
 * names:
 *
 *   # comment
 *   concurrency = 4
 *   kafka.security.protocol = SASL_SSL   (a librdkafka property)
 *
 * and -X key=value on the command line passes a librdkafka property too.
 * A bad line is reported as "FILE:LINE: key: reason", with the nearest
 * known key suggested for an unknown one.
 *
 * One file serves every program: a key another program's table knows is
 * skipped, a key no table knows is an error. Flags and the environment
 * only take the program's own options; an empty KPOOL_<NAME> counts as
 * unset. '#' and ';' start comment lines only (a '#' inside a value is
 * kept); a value may be double-quoted. An empty value for a KP_OPT_STR
 * option means its default (NULL if it has none); other types reject
 * it. A KP_OPT_F_CLIONLY key in the file is an error. */
#ifndef KP_CONF_H
#define KP_CONF_H

#include <stddef.h>
#include <stdio.h>

typedef enum {
        KP_OPT_STR,  /* any text */
        KP_OPT_INT,  /* integer within [min, max] */
        KP_OPT_BOOL, /* true/false, yes/no, on/off, 1/0 */
        KP_OPT_ENUM, /* one of the '|'-separated choices */
} kp_opt_type_t;

/* Option flags. */
#define KP_OPT_F_FLAG    0x1 /* a flag without argument (bools only) */
#define KP_OPT_F_SECRET  0x2 /* value never printed or logged */
#define KP_OPT_F_CLIONLY 0x4 /* not read from the file or environment */

typedef struct kp_opt_def {
        const char *name; /* long flag, file key: "concurrency" */
        int short_name;   /* 'b', or 0 for none */
        kp_opt_type_t type;
        const char *def;     /* default as text; NULL: unset */
        long long min, max;  /* bounds of a KP_OPT_INT */
        const char *choices; /* KP_OPT_ENUM: "anthropic|openai|http" */
        unsigned flags;      /* KP_OPT_F_* */
        const char *arg;     /* placeholder in --help: "N", "URL" */
        const char *help;    /* one line for --help and config/ */
} kp_opt_def_t;

typedef struct kp_conf kp_conf_t;

/* Creates a configuration over the common options (kp_opts_common) plus
 * the program's own table, holding defaults. Never returns NULL (aborts
 * on out of memory). The tables must outlive the configuration. */
kp_conf_t *kp_conf_new(const kp_opt_def_t *defs, size_t ndefs);

void kp_conf_destroy(kp_conf_t *conf);

/* Loads everything in precedence order: defaults, the file named by
 * -c/--config (else $KPOOL_CONFIG, if set), the environment, then the
 * flags in argv[1..argc-1]. Arguments that are not flags ("-" included)
 * are kept in order, see kp_conf_args(); "--" ends the flags.
 * Returns 0, or -1 with a message in errstr (the caller exits
 * KP_EXIT_USAGE). */
int kp_conf_load(kp_conf_t *conf, int argc, char **argv, char *errstr,
                 size_t errstr_size);

/* Sets one option by name from text, as if from `origin` (used in error
 * messages, e.g. "kpool.conf:12" or "--concurrency").
 * "kafka.<prop>" names a librdkafka property.
 * Returns 0, or -1 with a message in errstr. */
int kp_conf_set(kp_conf_t *conf, const char *name, const char *value,
                const char *origin, char *errstr, size_t errstr_size);

/* Loads one config file. Returns 0, or -1 with "FILE:LINE: key: reason"
 * (or the open error) in errstr. */
int kp_conf_load_file(kp_conf_t *conf, const char *path, char *errstr,
                      size_t errstr_size);

/* Accessors; the name must be in the tables (aborts otherwise: a
 * programming error). Strings are owned by conf; NULL when unset. */
const char *kp_conf_str(const kp_conf_t *conf, const char *name);
long long kp_conf_int(const kp_conf_t *conf, const char *name);
int kp_conf_bool(const kp_conf_t *conf, const char *name);

/* Where the current value came from: "default", "FILE:LINE", "KPOOL_X"
 * or "--flag". */
const char *kp_conf_origin(const kp_conf_t *conf, const char *name);

/* The positional arguments, in order; owned by conf. */
char **kp_conf_args(const kp_conf_t *conf, int *countp);

/* The librdkafka properties from the file and -X, in the order given. */
size_t kp_conf_kafka_count(const kp_conf_t *conf);
void kp_conf_kafka_get(const kp_conf_t *conf, size_t i, const char **key,
                       const char **value);

/* Prints the options (common and the program's) for --help, one per
 * line with flag, placeholder, help and default. */
void kp_conf_usage(const kp_conf_t *conf, FILE *out);

/* The known option nearest to `name` by edit distance, or NULL if none is
 * close. For "did you mean" hints. */
const char *kp_conf_suggest(const kp_conf_t *conf, const char *name);

#endif
