/* test_conf.c - kp_conf: precedence, flags, config file, environment,
 * error messages, usage, and the example config/kpool.conf. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kp_conf.h"
#include "kp_opts.h"

#define MAX_ARGS 32

/* A table with secrets, for the checks that errors never show them. */
static const kp_opt_def_t secret_opts[] = {
    {"token", 0, KP_OPT_STR, NULL, 0, 0, NULL, KP_OPT_F_SECRET, "TOKEN",
     "a secret token"},
    {"pin", 0, KP_OPT_INT, "1234", 0, 9999, NULL, KP_OPT_F_SECRET, "PIN",
     "a secret number"},
    {"cipher", 0, KP_OPT_ENUM, "aes", 0, 0, "aes|chacha", KP_OPT_F_SECRET, "C",
     "a secret choice"},
    {"flagged", 0, KP_OPT_BOOL, "false", 0, 0, NULL, KP_OPT_F_SECRET, "B",
     "a secret boolean"},
};

static char tmp_paths[8][64];
static int ntmp;

/* Writes `text` to a new temporary file; returns its path. */
static const char *tmp_file(const char *text) {
        char *path;
        int fd;

        assert_true(ntmp < 8);
        path = tmp_paths[ntmp++];
        snprintf(path, 64, "/tmp/kp_conf_test_XXXXXX");
        fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
        return path;
}

static void unset_env_table(const kp_opt_def_t *defs, size_t n) {
        char var[128];
        size_t i, j;

        for (i = 0; i < n; i++) {
                snprintf(var, sizeof(var), "KPOOL_%s", defs[i].name);
                for (j = 6; var[j]; j++)
                        var[j] = var[j] == '-'
                                     ? '_'
                                     : (char)toupper((unsigned char)var[j]);
                unsetenv(var);
        }
}

/* Each test starts from a clean environment and no temporary files. */
static int setup(void **state) {
        unset_env_table(kp_opts_common, kp_opts_common_count);
        unset_env_table(kp_opts_worker, kp_opts_worker_count);
        unset_env_table(kp_opts_kpool, kp_opts_kpool_count);
        unset_env_table(secret_opts,
                        sizeof(secret_opts) / sizeof(secret_opts[0]));
        ntmp = 0;
        return 0;
}

static int teardown(void **state) {
        int i;

        for (i = 0; i < ntmp; i++)
                unlink(tmp_paths[i]);
        ntmp = 0;
        setup(state);
        return 0;
}

/* Loads `conf` from the NULL-terminated flags that follow. */
static int load_args(kp_conf_t *conf, char *errstr, size_t size, ...) {
        char *argv[MAX_ARGS];
        int argc = 0;
        va_list ap;
        char *a;

        argv[argc++] = "prog";
        va_start(ap, size);
        while ((a = va_arg(ap, char *)) != NULL) {
                assert_true(argc < MAX_ARGS - 1);
                argv[argc++] = a;
        }
        va_end(ap);
        argv[argc] = NULL;
        errstr[0] = '\0';
        return kp_conf_load(conf, argc, argv, errstr, size);
}

static kp_conf_t *worker_conf(void) {
        return kp_conf_new(kp_opts_worker, kp_opts_worker_count);
}

static kp_conf_t *kpool_conf(void) {
        return kp_conf_new(kp_opts_kpool, kp_opts_kpool_count);
}

static kp_conf_t *secret_conf(void) {
        return kp_conf_new(secret_opts,
                           sizeof(secret_opts) / sizeof(secret_opts[0]));
}

/*
 * Defaults and precedence
 */

static void test_defaults_before_load(void **state) {
        kp_conf_t *conf = worker_conf();

        assert_int_equal(kp_conf_int(conf, "concurrency"), 1);
        assert_int_equal(kp_conf_int(conf, "partition"), -1);
        assert_string_equal(kp_conf_str(conf, "brokers"), "127.0.0.1:9092");
        assert_string_equal(kp_conf_str(conf, "backend"), "anthropic");
        assert_null(kp_conf_str(conf, "name"));
        assert_false(kp_conf_bool(conf, "help"));
        assert_string_equal(kp_conf_origin(conf, "concurrency"), "default");
        kp_conf_destroy(conf);
}

static void test_load_without_anything_keeps_defaults(void **state) {
        kp_conf_t *conf = worker_conf();
        char err[256];
        int argc;

        assert_int_equal(load_args(conf, err, sizeof(err), NULL), 0);
        assert_int_equal(kp_conf_int(conf, "max-tokens"), 1024);
        assert_null(kp_conf_str(conf, "config"));
        kp_conf_args(conf, &argc);
        assert_int_equal(argc, 0);
        assert_int_equal(kp_conf_kafka_count(conf), 0);
        kp_conf_destroy(conf);
}

static void test_file_overrides_default(void **state) {
        const char *path = tmp_file("brokers = k1:9092\nconcurrency = 2\n");
        kp_conf_t *conf = worker_conf();
        char err[256], origin[128];

        assert_int_equal(load_args(conf, err, sizeof(err), "-c", path, NULL),
                         0);
        assert_int_equal(kp_conf_int(conf, "concurrency"), 2);
        assert_string_equal(kp_conf_str(conf, "brokers"), "k1:9092");
        snprintf(origin, sizeof(origin), "%s:2", path);
        assert_string_equal(kp_conf_origin(conf, "concurrency"), origin);
        assert_string_equal(kp_conf_str(conf, "config"), path);
        assert_string_equal(kp_conf_origin(conf, "config"), "-c");
        assert_string_equal(kp_conf_origin(conf, "pool"), "default");
        kp_conf_destroy(conf);
}

static void test_env_overrides_file(void **state) {
        const char *path = tmp_file("concurrency = 2\npool = p1\n");
        kp_conf_t *conf = worker_conf();
        char err[256];

        setenv("KPOOL_CONCURRENCY", "3", 1);
        setenv("KPOOL_MAX_INPUT_BYTES", "777", 1);
        assert_int_equal(
            load_args(conf, err, sizeof(err), "--config", path, NULL), 0);
        assert_int_equal(kp_conf_int(conf, "concurrency"), 3);
        assert_string_equal(kp_conf_origin(conf, "concurrency"),
                            "KPOOL_CONCURRENCY");
        assert_int_equal(kp_conf_int(conf, "max-input-bytes"), 777);
        assert_string_equal(kp_conf_origin(conf, "max-input-bytes"),
                            "KPOOL_MAX_INPUT_BYTES");
        assert_string_equal(kp_conf_str(conf, "pool"), "p1");
        kp_conf_destroy(conf);
}

static void test_flag_overrides_env_and_file(void **state) {
        const char *path = tmp_file("concurrency = 2\n");
        kp_conf_t *conf = worker_conf();
        char err[256];

        setenv("KPOOL_CONCURRENCY", "3", 1);
        assert_int_equal(load_args(conf, err, sizeof(err), "--concurrency", "4",
                                   "-c", path, NULL),
                         0);
        assert_int_equal(kp_conf_int(conf, "concurrency"), 4);
        assert_string_equal(kp_conf_origin(conf, "concurrency"),
                            "--concurrency");
        kp_conf_destroy(conf);
}

static void test_kpool_config_env_names_the_file(void **state) {
        const char *path = tmp_file("pool = from-env-file\n");
        kp_conf_t *conf = worker_conf();
        char err[256];

        setenv("KPOOL_CONFIG", path, 1);
        assert_int_equal(load_args(conf, err, sizeof(err), NULL), 0);
        assert_string_equal(kp_conf_str(conf, "pool"), "from-env-file");
        assert_string_equal(kp_conf_origin(conf, "config"), "KPOOL_CONFIG");
        kp_conf_destroy(conf);
}

static void test_config_flag_beats_kpool_config_env(void **state) {
        const char *env_path = tmp_file("pool = env\n");
        const char *flag_path = tmp_file("pool = flag\n");
        kp_conf_t *conf = worker_conf();
        char err[256];

        setenv("KPOOL_CONFIG", env_path, 1);
        assert_int_equal(
            load_args(conf, err, sizeof(err), "-c", flag_path, NULL), 0);
        assert_string_equal(kp_conf_str(conf, "pool"), "flag");
        kp_conf_destroy(conf);
}

static void test_missing_config_file_is_an_error(void **state) {
        kp_conf_t *conf = worker_conf();
        char err[256];

        assert_int_equal(load_args(conf, err, sizeof(err), "-c",
                                   "/nonexistent/kpool.conf", NULL),
                         -1);
        assert_non_null(strstr(err, "/nonexistent/kpool.conf"));
        assert_non_null(strstr(err, "No such file"));
        kp_conf_destroy(conf);
}

static void test_env_empty_value_is_ignored(void **state) {
        kp_conf_t *conf = worker_conf();
        char err[256];

        setenv("KPOOL_CONCURRENCY", "", 1);
        assert_int_equal(load_args(conf, err, sizeof(err), NULL), 0);
        assert_int_equal(kp_conf_int(conf, "concurrency"), 1);
        kp_conf_destroy(conf);
}

static void test_env_bad_value_names_the_variable(void **state) {
        kp_conf_t *conf = worker_conf();
        char err[256];

        setenv("KPOOL_CONCURRENCY", "lots", 1);
        assert_int_equal(load_args(conf, err, sizeof(err), NULL), -1);
        assert_string_equal(err, "KPOOL_CONCURRENCY: \"lots\" is not an "
                                 "integer (1..1024)");
        kp_conf_destroy(conf);
}

static void test_clionly_options_ignore_env(void **state) {
        kp_conf_t *conf = kpool_conf();
        char err[256];

        setenv("KPOOL_HELP", "true", 1);
        setenv("KPOOL_FILE", "tasks.txt", 1);
        assert_int_equal(load_args(conf, err, sizeof(err), NULL), 0);
        assert_false(kp_conf_bool(conf, "help"));
        assert_null(kp_conf_str(conf, "file"));
        kp_conf_destroy(conf);
}

static void test_env_only_for_this_programs_options(void **state) {
        kp_conf_t *conf = kpool_conf();
        char err[256];

        /* A worker option in the environment is not kpool's business. */
        setenv("KPOOL_CONCURRENCY", "not-a-number", 1);
        assert_int_equal(load_args(conf, err, sizeof(err), NULL), 0);
        kp_conf_destroy(conf);
}

/*
 * Flags
 */

static void test_long_flag_forms(void **state) {
        kp_conf_t *conf = worker_conf();
        char err[256];

        assert_int_equal(load_args(conf, err, sizeof(err), "--pool", "p1",
                                   "--brokers=k:1", "--model=", NULL),
                         0);
        assert_string_equal(kp_conf_str(conf, "pool"), "p1");
        assert_string_equal(kp_conf_str(conf, "brokers"), "k:1");
        assert_string_equal(kp_conf_origin(conf, "brokers"), "--brokers");
        assert_null(kp_conf_str(conf, "model"));
        kp_conf_destroy(conf);
}

static void test_short_flag_forms(void **state) {
        kp_conf_t *conf = worker_conf();
        char err[256];

        assert_int_equal(load_args(conf, err, sizeof(err), "-b", "k:1", "-p3",
                                   "-t", "500", NULL),
                         0);
        assert_string_equal(kp_conf_str(conf, "brokers"), "k:1");
        assert_string_equal(kp_conf_origin(conf, "brokers"), "-b");
        assert_int_equal(kp_conf_int(conf, "partition"), 3);
        assert_int_equal(kp_conf_int(conf, "timeout-ms"), 500);
        kp_conf_destroy(conf);
}

static void test_option_argument_may_start_with_dash(void **state) {
        kp_conf_t *conf = kpool_conf();
        char err[256];

        assert_int_equal(
            load_args(conf, err, sizeof(err), "-p", "5", "-p", "-1", NULL), 0);
        assert_int_equal(kp_conf_int(conf, "partition"), -1);
        kp_conf_destroy(conf);
}

static void test_bool_flags(void **state) {
        kp_conf_t *conf = kpool_conf();
        char err[256];

        assert_int_equal(
            load_args(conf, err, sizeof(err), "--json", "-wa", NULL), 0);
        assert_true(kp_conf_bool(conf, "json"));
        assert_true(kp_conf_bool(conf, "by-worker"));
        assert_true(kp_conf_bool(conf, "all"));
        kp_conf_destroy(conf);

        conf = kpool_conf();
        assert_int_equal(load_args(conf, err, sizeof(err), "--json",
                                   "--json=false", "--all=yes",
                                   "--by-worker=OFF", NULL),
                         0);
        assert_false(kp_conf_bool(conf, "json"));
        assert_true(kp_conf_bool(conf, "all"));
        assert_false(kp_conf_bool(conf, "by-worker"));
        kp_conf_destroy(conf);
}

static void test_bool_flag_takes_no_argument(void **state) {
        kp_conf_t *conf = kpool_conf();
        char err[256];
        char **args;
        int argc;

        assert_int_equal(
            load_args(conf, err, sizeof(err), "--json", "false", NULL), 0);
        assert_true(kp_conf_bool(conf, "json"));
        args = kp_conf_args(conf, &argc);
        assert_int_equal(argc, 1);
        assert_string_equal(args[0], "false");
        kp_conf_destroy(conf);
}

static void test_bad_bool_is_an_error(void **state) {
        kp_conf_t *conf = kpool_conf();
        char err[256];

        assert_int_equal(
            load_args(conf, err, sizeof(err), "--json=maybe", NULL), -1);
        assert_string_equal(err, "--json: \"maybe\" is not a boolean "
                                 "(true/false, yes/no, on/off, 1/0)");
        kp_conf_destroy(conf);
}

static void test_unknown_long_flag_suggests(void **state) {
        kp_conf_t *conf = worker_conf();
        char err[256];

        assert_int_equal(
            load_args(conf, err, sizeof(err), "--concurency", "4", NULL), -1);
        assert_string_equal(
            err, "unknown option --concurency (did you mean --concurrency?)");
        kp_conf_destroy(conf);
}

static void test_unknown_flag_without_near_miss(void **state) {
        kp_conf_t *conf = worker_conf();
        char err[256];

        assert_int_equal(
            load_args(conf, err, sizeof(err), "--zzzzzzzzzz", NULL), -1);
        assert_string_equal(err, "unknown option --zzzzzzzzzz");
        kp_conf_destroy(conf);

        conf = worker_conf();
        assert_int_equal(load_args(conf, err, sizeof(err), "-z", NULL), -1);
        assert_string_equal(err, "unknown option -z");
        kp_conf_destroy(conf);
}

static void test_flags_are_strict_about_other_programs(void **state) {
        kp_conf_t *conf = kpool_conf();
        char err[256];

        assert_int_equal(
            load_args(conf, err, sizeof(err), "--concurrency", "2", NULL), -1);
        assert_non_null(strstr(err, "unknown option --concurrency"));
        kp_conf_destroy(conf);
}

static void test_missing_argument(void **state) {
        kp_conf_t *conf = worker_conf();
        char err[256];

        assert_int_equal(load_args(conf, err, sizeof(err), "--brokers", NULL),
                         -1);
        assert_string_equal(err, "option --brokers requires an argument "
                                 "BROKERS");
        kp_conf_destroy(conf);

        conf = worker_conf();
        assert_int_equal(load_args(conf, err, sizeof(err), "-b", NULL), -1);
        assert_string_equal(err, "option -b requires an argument BROKERS");
        kp_conf_destroy(conf);
}

static void test_bad_integer(void **state) {
        kp_conf_t *conf = worker_conf();
        char err[256];

        assert_int_equal(
            load_args(conf, err, sizeof(err), "--concurrency", "4x", NULL), -1);
        assert_string_equal(err, "--concurrency: \"4x\" is not an integer "
                                 "(1..1024)");
        kp_conf_destroy(conf);

        conf = worker_conf();
        assert_int_equal(
            load_args(conf, err, sizeof(err), "--concurrency=", NULL), -1);
        assert_string_equal(err, "--concurrency: missing value");
        kp_conf_destroy(conf);
}

static void test_integer_bounds(void **state) {
        kp_conf_t *conf = worker_conf();
        char err[256];

        assert_int_equal(
            load_args(conf, err, sizeof(err), "--concurrency", "1025", NULL),
            -1);
        assert_string_equal(err, "--concurrency: 1025 is out of range "
                                 "1..1024");
        kp_conf_destroy(conf);

        conf = worker_conf();
        assert_int_equal(load_args(conf, err, sizeof(err), "-p", "-2", NULL),
                         -1);
        assert_string_equal(err, "-p: -2 is out of range -1..1000000");
        kp_conf_destroy(conf);

        conf = worker_conf();
        assert_int_equal(load_args(conf, err, sizeof(err), "--concurrency",
                                   "99999999999999999999999", NULL),
                         -1);
        assert_non_null(strstr(err, "out of range 1..1024"));
        kp_conf_destroy(conf);

        conf = worker_conf();
        assert_int_equal(load_args(conf, err, sizeof(err), "--concurrency",
                                   "1024", "--partition", "1000000", NULL),
                         0);
        assert_int_equal(kp_conf_int(conf, "concurrency"), 1024);
        assert_int_equal(kp_conf_int(conf, "partition"), 1000000);
        kp_conf_destroy(conf);
}

static void test_integer_text_is_canonical(void **state) {
        kp_conf_t *conf = worker_conf();
        char err[256];

        assert_int_equal(
            load_args(conf, err, sizeof(err), "--concurrency", "+007", NULL),
            0);
        assert_int_equal(kp_conf_int(conf, "concurrency"), 7);
        assert_string_equal(kp_conf_str(conf, "concurrency"), "7");
        kp_conf_destroy(conf);

        conf = worker_conf();
        assert_int_equal(
            load_args(conf, err, sizeof(err), "--concurrency", " 7", NULL), -1);
        kp_conf_destroy(conf);
}

static void test_enum_choices(void **state) {
        kp_conf_t *conf = worker_conf();
        char err[256];

        assert_int_equal(
            load_args(conf, err, sizeof(err), "--backend", "OpenAI", NULL), 0);
        assert_string_equal(kp_conf_str(conf, "backend"), "openai");
        kp_conf_destroy(conf);

        conf = worker_conf();
        assert_int_equal(
            load_args(conf, err, sizeof(err), "--backend", "open", NULL), -1);
        assert_string_equal(err, "--backend: \"open\" is not one of "
                                 "anthropic|openai|http");
        kp_conf_destroy(conf);
}

static void test_positional_args_and_double_dash(void **state) {
        kp_conf_t *conf = kpool_conf();
        char err[256];
        char **args;
        int argc;

        assert_int_equal(load_args(conf, err, sizeof(err), "submit", "-j", "-",
                                   "x", "--", "--all", "-p", NULL),
                         0);
        args = kp_conf_args(conf, &argc);
        assert_int_equal(argc, 5);
        assert_string_equal(args[0], "submit");
        assert_string_equal(args[1], "-");
        assert_string_equal(args[2], "x");
        assert_string_equal(args[3], "--all");
        assert_string_equal(args[4], "-p");
        assert_null(args[5]);
        assert_true(kp_conf_bool(conf, "json"));
        assert_false(kp_conf_bool(conf, "all"));
        kp_conf_destroy(conf);
}

static void test_help_and_version_flags(void **state) {
        kp_conf_t *conf = kpool_conf();
        char err[256];

        assert_int_equal(load_args(conf, err, sizeof(err), "-h", "-V", NULL),
                         0);
        assert_true(kp_conf_bool(conf, "help"));
        assert_true(kp_conf_bool(conf, "version"));
        kp_conf_destroy(conf);
}

/*
 * librdkafka properties
 */

static void test_kafka_properties_in_order(void **state) {
        const char *path = tmp_file("kafka.a = 1\n"
                                    "kafka.security.protocol = SASL_SSL\n");
        kp_conf_t *conf = worker_conf();
        char err[256];
        const char *k, *v;

        /* -X before -c on the line still comes after the file's. */
        assert_int_equal(load_args(conf, err, sizeof(err), "-X", "c=3",
                                   "-Xd=x=y", "-c", path, "-X", "a=9", NULL),
                         0);
        assert_int_equal(kp_conf_kafka_count(conf), 5);
        kp_conf_kafka_get(conf, 0, &k, &v);
        assert_string_equal(k, "a");
        assert_string_equal(v, "1");
        kp_conf_kafka_get(conf, 1, &k, &v);
        assert_string_equal(k, "security.protocol");
        assert_string_equal(v, "SASL_SSL");
        kp_conf_kafka_get(conf, 2, &k, &v);
        assert_string_equal(k, "c");
        assert_string_equal(v, "3");
        kp_conf_kafka_get(conf, 3, &k, &v);
        assert_string_equal(k, "d");
        assert_string_equal(v, "x=y");
        kp_conf_kafka_get(conf, 4, &k, &v);
        assert_string_equal(k, "a");
        assert_string_equal(v, "9");
        kp_conf_destroy(conf);
}

static void test_x_without_equals_is_an_error(void **state) {
        kp_conf_t *conf = worker_conf();
        char err[256];

        assert_int_equal(
            load_args(conf, err, sizeof(err), "-X", "security.protocol", NULL),
            -1);
        assert_non_null(strstr(err, "-X"));
        assert_non_null(strstr(err, "KEY=VALUE"));
        kp_conf_destroy(conf);

        conf = worker_conf();
        assert_int_equal(load_args(conf, err, sizeof(err), "-X", NULL), -1);
        assert_non_null(strstr(err, "option -X requires an argument"));
        kp_conf_destroy(conf);
}

static void test_kafka_key_without_property_is_an_error(void **state) {
        const char *path = tmp_file("kafka. = 1\n");
        kp_conf_t *conf = worker_conf();
        char err[256], want[256];

        assert_int_equal(load_args(conf, err, sizeof(err), "-c", path, NULL),
                         -1);
        snprintf(want, sizeof(want),
                 "%s:1: kafka.: missing librdkafka property name", path);
        assert_string_equal(err, want);
        kp_conf_destroy(conf);
}

/*
 * Config file
 */

static void test_file_syntax(void **state) {
        const char *path = tmp_file("# a comment\n"
                                    "; another comment\n"
                                    "\n"
                                    "   \t\n"
                                    "  pool   =   spaced  \n"
                                    "role = \"Be brief = be kind.\"\n"
                                    "model=m1\n"
                                    "brokers = \"\"\n");
        kp_conf_t *conf = worker_conf();
        char err[256];

        assert_int_equal(kp_conf_load_file(conf, path, err, sizeof(err)), 0);
        assert_string_equal(kp_conf_str(conf, "pool"), "spaced");
        assert_string_equal(kp_conf_str(conf, "role"), "Be brief = be kind.");
        assert_string_equal(kp_conf_str(conf, "model"), "m1");
        /* An empty text value means the default. */
        assert_string_equal(kp_conf_str(conf, "brokers"), "127.0.0.1:9092");
        kp_conf_destroy(conf);
}

static void test_file_bom_and_crlf(void **state) {
        const char *path = tmp_file("\xef\xbb\xbfpool = win\r\n"
                                    "concurrency = 3\r\n");
        kp_conf_t *conf = worker_conf();
        char err[256];

        assert_int_equal(kp_conf_load_file(conf, path, err, sizeof(err)), 0);
        assert_string_equal(kp_conf_str(conf, "pool"), "win");
        assert_int_equal(kp_conf_int(conf, "concurrency"), 3);
        kp_conf_destroy(conf);
}

static void test_file_unknown_key_suggests(void **state) {
        const char *path = tmp_file("pool = a\n\nconcurency = 4\n");
        kp_conf_t *conf = worker_conf();
        char err[256], want[256];

        assert_int_equal(kp_conf_load_file(conf, path, err, sizeof(err)), -1);
        snprintf(want, sizeof(want),
                 "%s:3: concurency: unknown key (did you mean concurrency?)",
                 path);
        assert_string_equal(err, want);
        kp_conf_destroy(conf);
}

static void test_file_unknown_key_suggests_other_programs_keys(void **state) {
        const char *path = tmp_file("concurency = 4\n");
        kp_conf_t *conf = kpool_conf();
        char err[256], want[256];

        assert_int_equal(kp_conf_load_file(conf, path, err, sizeof(err)), -1);
        snprintf(want, sizeof(want),
                 "%s:1: concurency: unknown key (did you mean concurrency?)",
                 path);
        assert_string_equal(err, want);
        kp_conf_destroy(conf);
}

static void test_file_unknown_key_without_near_miss(void **state) {
        const char *path = tmp_file("flux-capacitor = 1.21\n");
        kp_conf_t *conf = worker_conf();
        char err[256], want[256];

        assert_int_equal(kp_conf_load_file(conf, path, err, sizeof(err)), -1);
        snprintf(want, sizeof(want), "%s:1: flux-capacitor: unknown key", path);
        assert_string_equal(err, want);
        kp_conf_destroy(conf);
}

static void test_file_line_without_equals(void **state) {
        const char *path = tmp_file("pool = a\nhunter2\n");
        kp_conf_t *conf = worker_conf();
        char err[256], want[256];

        assert_int_equal(kp_conf_load_file(conf, path, err, sizeof(err)), -1);
        snprintf(want, sizeof(want), "%s:2: ", path);
        assert_memory_equal(err, want, strlen(want));
        assert_non_null(strstr(err, "'='"));
        assert_null(strstr(err, "hunter2"));
        kp_conf_destroy(conf);
}

static void test_file_bad_values(void **state) {
        const char *path = tmp_file("concurrency = 0\n");
        kp_conf_t *conf = worker_conf();
        char err[256], want[256];

        assert_int_equal(kp_conf_load_file(conf, path, err, sizeof(err)), -1);
        snprintf(want, sizeof(want),
                 "%s:1: concurrency: 0 is out of range 1..1024", path);
        assert_string_equal(err, want);
        kp_conf_destroy(conf);

        path = tmp_file("backend = grpc\n");
        conf = worker_conf();
        assert_int_equal(kp_conf_load_file(conf, path, err, sizeof(err)), -1);
        snprintf(want, sizeof(want),
                 "%s:1: backend: \"grpc\" is not one of "
                 "anthropic|openai|http",
                 path);
        assert_string_equal(err, want);
        kp_conf_destroy(conf);

        path = tmp_file("json = perhaps\n");
        conf = kpool_conf();
        assert_int_equal(kp_conf_load_file(conf, path, err, sizeof(err)), -1);
        snprintf(want, sizeof(want),
                 "%s:1: json: \"perhaps\" is not a boolean "
                 "(true/false, yes/no, on/off, 1/0)",
                 path);
        assert_string_equal(err, want);
        kp_conf_destroy(conf);

        path = tmp_file("timeout-ms = \n");
        conf = worker_conf();
        assert_int_equal(kp_conf_load_file(conf, path, err, sizeof(err)), -1);
        snprintf(want, sizeof(want), "%s:1: timeout-ms: missing value", path);
        assert_string_equal(err, want);
        kp_conf_destroy(conf);
}

static void test_file_rejects_clionly_keys(void **state) {
        const char *path = tmp_file("config = other.conf\n");
        kp_conf_t *conf = worker_conf();
        char err[256], want[256];

        assert_int_equal(kp_conf_load_file(conf, path, err, sizeof(err)), -1);
        snprintf(want, sizeof(want),
                 "%s:1: config: only accepted on the command line "
                 "(--config)",
                 path);
        assert_string_equal(err, want);
        kp_conf_destroy(conf);
}

static void test_file_skips_other_programs_keys(void **state) {
        const char *path = tmp_file("concurrency = 4\n"
                                    "backend = openai\n"
                                    "dispatch = least-loaded\n"
                                    "json = true\n"
                                    "pool = shared\n");
        kp_conf_t *conf = kpool_conf();
        char err[256];

        assert_int_equal(load_args(conf, err, sizeof(err), "-c", path, NULL),
                         0);
        assert_string_equal(kp_conf_str(conf, "dispatch"), "least-loaded");
        assert_true(kp_conf_bool(conf, "json"));
        assert_string_equal(kp_conf_str(conf, "pool"), "shared");
        kp_conf_destroy(conf);

        conf = worker_conf();
        assert_int_equal(load_args(conf, err, sizeof(err), "-c", path, NULL),
                         0);
        assert_int_equal(kp_conf_int(conf, "concurrency"), 4);
        assert_string_equal(kp_conf_str(conf, "backend"), "openai");
        kp_conf_destroy(conf);
}

static void test_workers_partition_key_leaves_kpool_alone(void **state) {
        const char *path = tmp_file("partition = 2\n");
        kp_conf_t *conf = kpool_conf();
        char err[256];

        /* kpool takes --partition from the command line only, so the
         * worker's file key neither fails nor steers submits. */
        assert_int_equal(load_args(conf, err, sizeof(err), "-c", path, NULL),
                         0);
        assert_int_equal(kp_conf_int(conf, "partition"), -1);
        kp_conf_destroy(conf);

        conf = worker_conf();
        assert_int_equal(load_args(conf, err, sizeof(err), "-c", path, NULL),
                         0);
        assert_int_equal(kp_conf_int(conf, "partition"), 2);
        kp_conf_destroy(conf);
}

static void test_kp_conf_set_by_name(void **state) {
        kp_conf_t *conf = worker_conf();
        char err[256];

        assert_int_equal(
            kp_conf_set(conf, "attempts", "7", "test:1", err, sizeof(err)), 0);
        assert_int_equal(kp_conf_int(conf, "attempts"), 7);
        assert_string_equal(kp_conf_origin(conf, "attempts"), "test:1");

        assert_int_equal(
            kp_conf_set(conf, "attempts", "0", "test:2", err, sizeof(err)), -1);
        assert_string_equal(err, "test:2: attempts: 0 is out of range 1..100");
        assert_int_equal(kp_conf_int(conf, "attempts"), 7);

        assert_int_equal(
            kp_conf_set(conf, "atempts", "3", "test:3", err, sizeof(err)), -1);
        assert_string_equal(err, "test:3: atempts: unknown key (did you mean "
                                 "attempts?)");

        assert_int_equal(
            kp_conf_set(conf, "kafka.acks", "all", "test:4", err, sizeof(err)),
            0);
        assert_int_equal(kp_conf_kafka_count(conf), 1);
        kp_conf_destroy(conf);
}

/*
 * Secrets
 */

static void test_secrets_never_in_errors(void **state) {
        static const char *const bad[][2] = {
            {"--pin", "hunter2"},
            {"--pin", "99999"},
            {"--cipher", "hunter2"},
            {"--flagged", "hunter2"},
        };
        kp_conf_t *conf;
        char err[256];
        size_t i;

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                conf = secret_conf();
                assert_int_equal(load_args(conf, err, sizeof(err), bad[i][0],
                                           bad[i][1], NULL),
                                 -1);
                assert_non_null(strstr(err, bad[i][0]));
                assert_non_null(strstr(err, "the value"));
                assert_null(strstr(err, bad[i][1]));
                kp_conf_destroy(conf);
        }

        /* Not in the file's errors either. */
        conf = secret_conf();
        assert_int_equal(kp_conf_load_file(conf, tmp_file("pin = hunter2\n"),
                                           err, sizeof(err)),
                         -1);
        assert_non_null(strstr(err, "pin"));
        assert_null(strstr(err, "hunter2"));
        kp_conf_destroy(conf);

        /* Nor the environment's. */
        conf = secret_conf();
        setenv("KPOOL_PIN", "hunter2", 1);
        assert_int_equal(load_args(conf, err, sizeof(err), NULL), -1);
        assert_non_null(strstr(err, "KPOOL_PIN"));
        assert_null(strstr(err, "hunter2"));
        kp_conf_destroy(conf);
}

static void test_unknown_flag_does_not_echo_its_value(void **state) {
        kp_conf_t *conf = secret_conf();
        char err[256];

        assert_int_equal(
            load_args(conf, err, sizeof(err), "--tokn=hunter2", NULL), -1);
        assert_string_equal(err, "unknown option --tokn (did you mean "
                                 "--token?)");
        kp_conf_destroy(conf);
}

static void test_secret_value_is_readable_by_the_program(void **state) {
        kp_conf_t *conf = secret_conf();
        char err[256];

        assert_int_equal(
            load_args(conf, err, sizeof(err), "--token", "hunter2", NULL), 0);
        assert_string_equal(kp_conf_str(conf, "token"), "hunter2");
        kp_conf_destroy(conf);
}

/*
 * Usage, suggestions, accessors
 */

static char *usage_text(kp_conf_t *conf) {
        char *buf = NULL;
        size_t len = 0;
        FILE *fp = open_memstream(&buf, &len);

        assert_non_null(fp);
        kp_conf_usage(conf, fp);
        fclose(fp);
        return buf;
}

static void test_usage_lists_options_in_table_order(void **state) {
        kp_conf_t *conf = worker_conf();
        char *text = usage_text(conf);
        const char *brokers, *pool, *help, *name, *commit, *x;

        brokers = strstr(text, "  -b, --brokers BROKERS ");
        pool = strstr(text, "      --pool NAME ");
        help = strstr(text, "  -h, --help ");
        name = strstr(text, "  -n, --name NAME ");
        commit = strstr(text, "      --commit-interval-ms MS");
        x = strstr(text, "  -X KEY=VALUE ");
        assert_non_null(brokers);
        assert_non_null(pool);
        assert_non_null(help);
        assert_non_null(name);
        assert_non_null(commit);
        assert_non_null(x);
        assert_true(brokers < pool && pool < help && help < name &&
                    name < commit && commit < x);
        assert_non_null(strstr(text, "(default: 127.0.0.1:9092)"));
        assert_non_null(strstr(text, "(anthropic|openai|http; default: "
                                     "anthropic)"));
        assert_null(strstr(text, "--partitions"));
        free(text);
        kp_conf_destroy(conf);
}

static void test_usage_fits_80_columns(void **state) {
        kp_conf_t *conf = kpool_conf();
        char *text = usage_text(conf);
        char *line, *save = NULL;

        for (line = strtok_r(text, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save))
                assert_in_range(strlen(line), 1, 80);
        free(text);
        kp_conf_destroy(conf);
}

static void test_usage_hides_secret_defaults(void **state) {
        kp_conf_t *conf = secret_conf();
        char *text = usage_text(conf);

        assert_non_null(strstr(text, "--pin PIN"));
        assert_null(strstr(text, "1234"));
        free(text);
        kp_conf_destroy(conf);
}

static void test_suggest_only_near_misses(void **state) {
        kp_conf_t *conf = worker_conf();

        assert_string_equal(kp_conf_suggest(conf, "concurency"), "concurrency");
        assert_string_equal(kp_conf_suggest(conf, "brokers"), "brokers");
        assert_string_equal(kp_conf_suggest(conf, "max_input_bytes"),
                            "max-input-bytes");
        assert_string_equal(kp_conf_suggest(conf, "brocker"), "brokers");
        assert_null(kp_conf_suggest(conf, "zzzzzzzz"));
        assert_null(kp_conf_suggest(conf, "dispatch"));
        kp_conf_destroy(conf);
}

/* Runs `fn` in a child; returns the signal that ended it, or 0. */
static int child_signal(void (*fn)(void)) {
        pid_t pid;
        int status;

        fflush(NULL);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                /* Keep the expected abort's log line out of the output. */
                if (!freopen("/dev/null", "w", stderr))
                        _exit(3);
                fn();
                _exit(0);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

static void read_unknown_option(void) {
        kp_conf_t *conf = worker_conf();

        kp_conf_str(conf, "no-such-option");
}

static void read_option_of_other_program(void) {
        kp_conf_t *conf = worker_conf();

        kp_conf_bool(conf, "json");
}

static void read_int_as_bool(void) {
        kp_conf_t *conf = worker_conf();

        kp_conf_bool(conf, "concurrency");
}

static void test_accessors_abort_on_unknown_names(void **state) {
        assert_int_equal(child_signal(read_unknown_option), SIGABRT);
        assert_int_equal(child_signal(read_option_of_other_program), SIGABRT);
        assert_int_equal(child_signal(read_int_as_bool), SIGABRT);
}

static void new_with_clashing_short(void) {
        static const kp_opt_def_t bad[] = {
            {"bootstrap", 'b', KP_OPT_STR, NULL, 0, 0, NULL, 0, "B", "x"},
        };

        kp_conf_new(bad, 1);
}

static void new_with_bad_default(void) {
        static const kp_opt_def_t bad[] = {
            {"level", 0, KP_OPT_INT, "11", 0, 10, NULL, 0, "N", "x"},
        };

        kp_conf_new(bad, 1);
}

static void new_taking_x(void) {
        static const kp_opt_def_t bad[] = {
            {"extra", 'X', KP_OPT_STR, NULL, 0, 0, NULL, 0, "E", "x"},
        };

        kp_conf_new(bad, 1);
}

static void test_bad_tables_abort(void **state) {
        assert_int_equal(child_signal(new_with_clashing_short), SIGABRT);
        assert_int_equal(child_signal(new_with_bad_default), SIGABRT);
        assert_int_equal(child_signal(new_taking_x), SIGABRT);
}

static void test_real_tables_are_sound(void **state) {
        kp_conf_destroy(worker_conf());
        kp_conf_destroy(kpool_conf());
}

/*
 * The example config/kpool.conf
 */

static int table_has(const kp_opt_def_t *defs, size_t n, const char *name) {
        size_t i;

        for (i = 0; i < n; i++)
                if (!strcmp(defs[i].name, name))
                        return 1;
        return 0;
}

static int known_key(const char *key) {
        return table_has(kp_opts_common, kp_opts_common_count, key) ||
               table_has(kp_opts_worker, kp_opts_worker_count, key) ||
               table_has(kp_opts_kpool, kp_opts_kpool_count, key);
}

/* The key of a commented option line "# key = value", in `key`; 0 if
 * the line is not one. */
static int commented_option(const char *line, char *key, size_t size) {
        const char *p, *eq;
        size_t n;

        if (strncmp(line, "# ", 2))
                return 0;
        p = line + 2;
        eq = strchr(p, '=');
        if (!eq)
                return 0;
        n = (size_t)(eq - p);
        while (n > 0 && p[n - 1] == ' ')
                n--;
        if (n == 0 || n >= size || memchr(p, ' ', n))
                return 0;
        memcpy(key, p, n);
        key[n] = '\0';
        return known_key(key);
}

/* config/kpool.conf with its option lines uncommented, in a temporary
 * file; the keys found are marked in `seen` (common, worker, kpool). */
static const char *example_uncommented(int *seen_common, int *seen_worker,
                                       int *seen_kpool) {
        const char *srcdir = getenv("KPOOL_SRCDIR");
        char path[1024], key[128];
        char *line = NULL, *out = NULL;
        size_t cap = 0, outlen = 0, i;
        FILE *in, *mem;
        const char *tmp;

        snprintf(path, sizeof(path), "%s/config/kpool.conf",
                 srcdir && *srcdir ? srcdir : ".");
        in = fopen(path, "r");
        if (!in)
                fail_msg("cannot open %s (set KPOOL_SRCDIR to the repo root)",
                         path);
        mem = open_memstream(&out, &outlen);
        assert_non_null(mem);

        while (getline(&line, &cap, in) != -1) {
                if (!commented_option(line, key, sizeof(key))) {
                        fputs(line, mem);
                        continue;
                }
                fputs(line + 2, mem);
                for (i = 0; i < kp_opts_common_count; i++)
                        if (!strcmp(kp_opts_common[i].name, key))
                                seen_common[i]++;
                for (i = 0; i < kp_opts_worker_count; i++)
                        if (!strcmp(kp_opts_worker[i].name, key))
                                seen_worker[i]++;
                for (i = 0; i < kp_opts_kpool_count; i++)
                        if (!strcmp(kp_opts_kpool[i].name, key))
                                seen_kpool[i]++;
        }
        free(line);
        fclose(in);
        fclose(mem);
        tmp = tmp_file(out);
        free(out);
        return tmp;
}

/* Each option of `defs` after loading the example has its default. */
static void assert_defaults(const kp_conf_t *conf, const kp_opt_def_t *defs,
                            size_t n) {
        size_t i;

        for (i = 0; i < n; i++) {
                if (defs[i].flags & KP_OPT_F_CLIONLY)
                        continue;
                if (!defs[i].def) {
                        if (kp_conf_str(conf, defs[i].name))
                                fail_msg("example sets %s, which has no "
                                         "default",
                                         defs[i].name);
                        continue;
                }
                if (strcmp(kp_conf_str(conf, defs[i].name), defs[i].def))
                        fail_msg("example's %s is \"%s\", the table's "
                                 "default is \"%s\"",
                                 defs[i].name, kp_conf_str(conf, defs[i].name),
                                 defs[i].def);
        }
}

static void assert_all_seen(const kp_opt_def_t *defs, size_t n,
                            const int *seen) {
        size_t i;

        for (i = 0; i < n; i++) {
                if (defs[i].flags & KP_OPT_F_CLIONLY)
                        continue;
                if (seen[i] != 1)
                        fail_msg("config/kpool.conf has %d lines for %s "
                                 "(want 1)",
                                 seen[i], defs[i].name);
        }
}

static void test_example_config_matches_the_tables(void **state) {
        int seen_common[64] = {0}, seen_worker[64] = {0}, seen_kpool[64] = {0};
        const char *path;
        kp_conf_t *conf;
        char err[512];

        assert_true(kp_opts_common_count <= 64);
        assert_true(kp_opts_worker_count <= 64);
        assert_true(kp_opts_kpool_count <= 64);
        path = example_uncommented(seen_common, seen_worker, seen_kpool);

        assert_all_seen(kp_opts_common, kp_opts_common_count, seen_common);
        assert_all_seen(kp_opts_worker, kp_opts_worker_count, seen_worker);
        assert_all_seen(kp_opts_kpool, kp_opts_kpool_count, seen_kpool);

        conf = worker_conf();
        if (kp_conf_load_file(conf, path, err, sizeof(err)) == -1)
                fail_msg("kpool-worker: %s", err);
        assert_defaults(conf, kp_opts_common, kp_opts_common_count);
        assert_defaults(conf, kp_opts_worker, kp_opts_worker_count);
        assert_int_equal(kp_conf_kafka_count(conf), 0);
        kp_conf_destroy(conf);

        conf = kpool_conf();
        if (kp_conf_load_file(conf, path, err, sizeof(err)) == -1)
                fail_msg("kpool: %s", err);
        assert_defaults(conf, kp_opts_common, kp_opts_common_count);
        assert_defaults(conf, kp_opts_kpool, kp_opts_kpool_count);
        kp_conf_destroy(conf);
}

static void test_example_config_loads_as_shipped(void **state) {
        const char *srcdir = getenv("KPOOL_SRCDIR");
        char path[1024], err[512];
        kp_conf_t *conf = worker_conf();

        snprintf(path, sizeof(path), "%s/config/kpool.conf",
                 srcdir && *srcdir ? srcdir : ".");
        if (kp_conf_load_file(conf, path, err, sizeof(err)) == -1)
                fail_msg("%s", err);
        assert_int_equal(kp_conf_kafka_count(conf), 0);
        kp_conf_destroy(conf);
}

#define T(F) cmocka_unit_test_setup_teardown(F, setup, teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
            T(test_defaults_before_load),
            T(test_load_without_anything_keeps_defaults),
            T(test_file_overrides_default),
            T(test_env_overrides_file),
            T(test_flag_overrides_env_and_file),
            T(test_kpool_config_env_names_the_file),
            T(test_config_flag_beats_kpool_config_env),
            T(test_missing_config_file_is_an_error),
            T(test_env_empty_value_is_ignored),
            T(test_env_bad_value_names_the_variable),
            T(test_clionly_options_ignore_env),
            T(test_env_only_for_this_programs_options),
            T(test_long_flag_forms),
            T(test_short_flag_forms),
            T(test_option_argument_may_start_with_dash),
            T(test_bool_flags),
            T(test_bool_flag_takes_no_argument),
            T(test_bad_bool_is_an_error),
            T(test_unknown_long_flag_suggests),
            T(test_unknown_flag_without_near_miss),
            T(test_flags_are_strict_about_other_programs),
            T(test_missing_argument),
            T(test_bad_integer),
            T(test_integer_bounds),
            T(test_integer_text_is_canonical),
            T(test_enum_choices),
            T(test_positional_args_and_double_dash),
            T(test_help_and_version_flags),
            T(test_kafka_properties_in_order),
            T(test_x_without_equals_is_an_error),
            T(test_kafka_key_without_property_is_an_error),
            T(test_file_syntax),
            T(test_file_bom_and_crlf),
            T(test_file_unknown_key_suggests),
            T(test_file_unknown_key_suggests_other_programs_keys),
            T(test_file_unknown_key_without_near_miss),
            T(test_file_line_without_equals),
            T(test_file_bad_values),
            T(test_file_rejects_clionly_keys),
            T(test_file_skips_other_programs_keys),
            T(test_workers_partition_key_leaves_kpool_alone),
            T(test_kp_conf_set_by_name),
            T(test_secrets_never_in_errors),
            T(test_unknown_flag_does_not_echo_its_value),
            T(test_secret_value_is_readable_by_the_program),
            T(test_usage_lists_options_in_table_order),
            T(test_usage_fits_80_columns),
            T(test_usage_hides_secret_defaults),
            T(test_suggest_only_near_misses),
            T(test_accessors_abort_on_unknown_names),
            T(test_bad_tables_abort),
            T(test_real_tables_are_sound),
            T(test_example_config_matches_the_tables),
            T(test_example_config_loads_as_shipped),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
