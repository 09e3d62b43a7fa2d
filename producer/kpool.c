/* kpool.c - the command-line tool: subcommands, help, shared client setup
 * and `kpool topics`.
 *
 *   kpool SUBCOMMAND [OPTIONS] [ARGS]
 *
 * Options may come before or after the subcommand; the first argument
 * that is not an option names it. */
#include "kpool.h"

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kp_admin.h"
#include "kp_exit.h"
#include "kp_log.h"
#include "kp_opts.h"

volatile sig_atomic_t kpool_interrupted;

typedef struct kpool_cmd {
        const char *name;
        int (*run)(kpool_ctx_t *ctx);
        const char *synopsis;
        const char *summary;
        const char *details;
} kpool_cmd_t;

static const kpool_cmd_t commands[] = {
    {"topics", kpool_cmd_topics,
     "kpool topics [--partitions N] [--replication-factor R]",
     "create <pool>.tasks and <pool>.results, or check them",
     "Creates <pool>.tasks with N partitions (one per worker) and\n"
     "<pool>.results with as many, or checks topics that exist. An existing\n"
     "tasks topic whose partition count differs from an explicit\n"
     "--partitions is an error; without --partitions its count is kept.\n"
     "Prints one line per topic: created or exists, with its partitions.\n"},
    {"submit", kpool_cmd_submit,
     "kpool submit [TASK...] [-f FILE|-] [--format auto|text|json]\n"
     "             [--partition P] [--dispatch round-robin|least-loaded]",
     "publish tasks to <pool>.tasks, printing their ids",
     "Tasks come from the arguments (one task each), else from -f FILE,\n"
     "else from standard input ('-' also means standard input), one per\n"
     "line; blank lines are skipped. A line is plain text, or a JSON task\n"
     "object such as {\"input\": \"...\", \"max_tokens\": 200, \"meta\": {}}:\n"
     "with --format auto a line starting with '{' is JSON. Every line is\n"
     "checked before anything is sent; a bad one is a usage error that\n"
     "names its line.\n"
     "\n"
     "Each task gets an id, its record's key; the ids are printed in input\n"
     "order as the broker acknowledges them. round-robin sends each task to\n"
     "the partition holding the fewest records so far, which stays even\n"
     "across separate invocations; least-loaded sends it to the partition\n"
     "with the least lag of the group <pool>.workers. --partition P sends\n"
     "them all to P. Exits 1, naming each task the broker did not\n"
     "acknowledge, unless all were.\n"},
    {"status", kpool_cmd_status, "kpool status [--json]",
     "per-partition owner, committed offset, end offset and lag",
     "Shows, for each partition of <pool>.tasks, the worker that owns it\n"
     "(a member of the group <pool>.workers holding it, else the worker\n"
     "that committed last, marked \"(last commit)\"), the group's committed\n"
     "offset, the end offset and the lag; then the totals, the group's\n"
     "state and its member count. A partition never committed counts its\n"
     "whole backlog as lag. --json prints one JSON object instead.\n"},
    {"wait", kpool_cmd_wait, "kpool wait [--timeout S] [--interval-ms MS]",
     "wait until every submitted task has a durable result (lag 0)",
     "Polls the group's lag over <pool>.tasks until it is 0: every task\n"
     "submitted has a durable result. On a terminal it shows the lag as it\n"
     "falls; otherwise it prints only the final line. On timeout it exits\n"
     "1, printing what remains per partition.\n"},
    {"results", kpool_cmd_results,
     "kpool results [--by-worker] [--json] [--all]",
     "print the results recorded in <pool>.results",
     "Reads <pool>.results from the beginning up to its end at the time of\n"
     "the call, then exits; it joins no group and commits nothing. One line\n"
     "per result:\n"
     "  ID  WORKER  pPARTITION@OFFSET  ok|error  OUTPUT or KIND: MESSAGE\n"
     "with line breaks in the text escaped. A task delivered more than once\n"
     "can have several results: only the last is shown unless --all.\n"
     "--by-worker groups them under each worker with its count; --json\n"
     "prints each record as stored, one per line. Records that are not\n"
     "JSON are reported on stderr and skipped.\n"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void on_signal(int sig) {
        (void)sig;
        if (kpool_interrupted < 100)
                kpool_interrupted++;
}

static void print_exit_codes(FILE *out) {
        fprintf(out,
                "\nExit codes:\n"
                "  %d  success; for wait: the pool is quiescent\n"
                "  %d  failed; for wait: timed out\n"
                "  %d  usage: bad flags, configuration or arguments\n",
                KP_EXIT_OK, KP_EXIT_FAIL, KP_EXIT_USAGE);
}

static void usage(const kp_conf_t *conf, FILE *out) {
        size_t i;

        fprintf(out,
                "Usage: kpool SUBCOMMAND [OPTIONS] [ARGS]\n"
                "\n"
                "Publishes tasks to a pool of kpool-worker processes through "
                "Kafka, and\nwatches the pool work through them.\n"
                "\nSubcommands:\n");
        for (i = 0; i < NCOMMANDS; i++)
                fprintf(out, "  %-9s %s\n", commands[i].name,
                        commands[i].summary);
        fprintf(out, "\nOptions (each subcommand uses the ones that name "
                     "it):\n");
        kp_conf_usage(conf, out);
        print_exit_codes(out);
        fprintf(out, "\nRun `kpool SUBCOMMAND --help` for one subcommand's "
                     "details.\n");
}

static void usage_cmd(const kp_conf_t *conf, const kpool_cmd_t *cmd,
                      FILE *out) {
        fprintf(out, "Usage: %s\n\n%s\nOptions:\n", cmd->synopsis,
                cmd->details);
        kp_conf_usage(conf, out);
        print_exit_codes(out);
}

static const kpool_cmd_t *find_command(const char *name) {
        size_t i;

        for (i = 0; i < NCOMMANDS; i++)
                if (!strcmp(commands[i].name, name))
                        return &commands[i];
        return NULL;
}

/* The subcommand whose name starts like `name`, for a hint. */
static const char *near_command(const char *name) {
        size_t i;

        for (i = 0; i < NCOMMANDS; i++)
                if (!strncmp(commands[i].name, name, 2))
                        return commands[i].name;
        return NULL;
}

/* A pool name must make valid topic names: Kafka allows letters, digits,
 * '.', '_' and '-', up to 249 characters in all. */
static int pool_valid(const char *pool, char *errstr, size_t errstr_size) {
        size_t i, len = strlen(pool);

        if (!len) {
                snprintf(errstr, errstr_size, "--pool: empty pool name");
                return 0;
        }
        if (len > 249 - strlen(".results")) {
                snprintf(errstr, errstr_size,
                         "--pool: name longer than %zu characters",
                         249 - strlen(".results"));
                return 0;
        }
        for (i = 0; i < len; i++) {
                if (!isalnum((unsigned char)pool[i]) && pool[i] != '.' &&
                    pool[i] != '_' && pool[i] != '-') {
                        snprintf(errstr, errstr_size,
                                 "--pool: \"%s\": only letters, digits, '.', "
                                 "'_' and '-' are allowed",
                                 pool);
                        return 0;
                }
        }
        return 1;
}

/* Whether the user set librdkafka property `name` (or one of its
 * aliases, '|'-separated) themselves, for all clients or for `role`. */
static int user_set(const kpool_ctx_t *ctx, kp_kafka_role_t role,
                    const char *names) {
        const char *key, *value, *p;
        size_t i, n = kp_conf_kafka_count(ctx->conf), len;

        for (i = 0; i < n; i++) {
                kp_conf_kafka_get(ctx->conf, i, &key, &value);
                if (!strncmp(key, "producer.", 9)) {
                        if (role == KP_KAFKA_CONSUMER)
                                continue;
                        key += 9;
                } else if (!strncmp(key, "consumer.", 9)) {
                        if (role != KP_KAFKA_CONSUMER)
                                continue;
                        key += 9;
                }
                for (p = names; *p; p += len + (p[len] == '|')) {
                        len = strcspn(p, "|");
                        if (strlen(key) == len && !strncmp(key, p, len))
                                return 1;
                }
        }
        return 0;
}

/* librdkafka retries what its errors report (a broker down), and a
 * request that needed it fails with its own error, so these are logged
 * only at debug level, except a fatal one. Without this callback it logs
 * them itself, many times a second while no broker answers. */
static void on_error(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque) {
        (void)opaque;
        if (err == RD_KAFKA_RESP_ERR__FATAL) {
                char fatal[512];

                rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
                kp_err("librdkafka fatal error: %s", fatal);
                return;
        }
        kp_debug("librdkafka %s: %s: %s", rd_kafka_name(rk),
                 rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

rd_kafka_conf_t *kpool_kafka_conf(const kpool_ctx_t *ctx,
                                  kp_kafka_role_t role) {
        /* kpool's own defaults; -X and the config file override them. */
        static const struct {
                int producer_only;
                const char *names; /* the property, then its aliases */
                const char *value;
        } defaults[] = {
            {0, "client.id", "kpool"},
            {0, "log.connection.close", "false"},
            /* Every task is written exactly once, durably. */
            {1, "enable.idempotence", "true"},
            {1, "acks|request.required.acks", "all"},
            {1, "linger.ms|queue.buffering.max.ms", "5"},
        };
        rd_kafka_conf_t *kconf;
        char errstr[512], name[64];
        size_t i;

        kconf = kp_kafka_conf_new(ctx->conf, role, errstr, sizeof(errstr));
        if (!kconf) {
                kp_err("%s", errstr);
                return NULL;
        }

        for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
                if (defaults[i].producer_only && role != KP_KAFKA_PRODUCER)
                        continue;
                if (user_set(ctx, role, defaults[i].names))
                        continue;
                snprintf(name, sizeof(name), "%.*s",
                         (int)strcspn(defaults[i].names, "|"),
                         defaults[i].names);
                if (kp_kafka_set(kconf, name, defaults[i].value, errstr,
                                 sizeof(errstr)) == -1) {
                        kp_err("librdkafka property %s: %s", name, errstr);
                        rd_kafka_conf_destroy(kconf);
                        return NULL;
                }
        }
        rd_kafka_conf_set_error_cb(kconf, on_error);
        return kconf;
}

rd_kafka_t *kpool_kafka_new(const kpool_ctx_t *ctx, rd_kafka_type_t type,
                            rd_kafka_conf_t *kconf) {
        char errstr[512];
        rd_kafka_t *rk;

        rk = rd_kafka_new(type, kconf, errstr, sizeof(errstr));
        if (!rk) {
                rd_kafka_conf_destroy(kconf);
                kp_err("Failed to create the Kafka client: %s", errstr);
                return NULL;
        }

        if (kp_admin_ping(rk, KPOOL_ADMIN_TIMEOUT_MS, errstr, sizeof(errstr)) ==
            -1) {
                kp_err("cannot reach the brokers at %s: %s", ctx->brokers,
                       errstr);
                rd_kafka_destroy(rk);
                return NULL;
        }
        return rk;
}

int kpool_partitions(const kpool_ctx_t *ctx, rd_kafka_t *rk,
                     const char *topic) {
        char errstr[512];
        int n;

        n = kp_admin_topic_partitions(rk, topic, KPOOL_ADMIN_TIMEOUT_MS, errstr,
                                      sizeof(errstr));
        if (n == 0)
                kp_err("topic %s does not exist: create the pool's topics "
                       "with `kpool topics --pool %s`",
                       topic, ctx->pool);
        else if (n < 0)
                kp_err("%s", errstr);
        return n > 0 ? n : -1;
}

void kpool_put_escaped(FILE *out, const char *s) {
        const unsigned char *p;

        for (p = (const unsigned char *)s; *p; p++) {
                switch (*p) {
                case '\n':
                        fputs("\\n", out);
                        break;
                case '\r':
                        fputs("\\r", out);
                        break;
                case '\t':
                        fputs("\\t", out);
                        break;
                case '\\':
                        fputs("\\\\", out);
                        break;
                default:
                        if (*p < 0x20 || *p == 0x7f)
                                fprintf(out, "\\x%02x", *p);
                        else
                                fputc(*p, out);
                }
        }
}

/* "topic: created (3 partitions)", or exists. */
static void topic_line(const char *topic, const char *what, int partitions) {
        printf("%s: %s (%d partition%s)\n", topic, what, partitions,
               partitions == 1 ? "" : "s");
}

/* Makes sure `topic` exists; `partitions` is what it is created with.
 * Prints its line. Returns 0 or -1 (logged). */
static int ensure_topic(kpool_ctx_t *ctx, rd_kafka_t *rk, const char *topic,
                        int existing, int partitions) {
        char errstr[512];
        int replication = (int)kp_conf_int(ctx->conf, "replication-factor");
        int r;

        if (existing > 0) {
                topic_line(topic, "exists", existing);
                return 0;
        }

        r = kp_admin_create_topic(rk, topic, partitions, replication,
                                  KPOOL_ADMIN_TIMEOUT_MS, errstr,
                                  sizeof(errstr));
        if (r == -1) {
                kp_err("%s", errstr);
                return -1;
        }
        if (r == 1) {
                topic_line(topic, "created", partitions);
                return 0;
        }

        /* Someone else created it between our look and our request. */
        existing = kp_admin_topic_partitions(rk, topic, KPOOL_ADMIN_TIMEOUT_MS,
                                             errstr, sizeof(errstr));
        if (existing <= 0) {
                kp_err("%s", errstr);
                return -1;
        }
        topic_line(topic, "exists", existing);
        return 0;
}

int kpool_cmd_topics(kpool_ctx_t *ctx) {
        const char *origin = kp_conf_origin(ctx->conf, "partitions");
        int asked = (int)kp_conf_int(ctx->conf, "partitions");
        int explicit = strcmp(origin, "default") != 0;
        int ntasks, nresults, partitions, rc = KP_EXIT_FAIL;
        rd_kafka_conf_t *kconf;
        rd_kafka_t *rk = NULL;
        char errstr[512];

        if (ctx->nargs > 0) {
                kp_err("topics takes no arguments (got \"%s\")", ctx->args[0]);
                return KP_EXIT_USAGE;
        }

        kconf = kpool_kafka_conf(ctx, KP_KAFKA_ADMIN);
        if (!kconf)
                return KP_EXIT_USAGE;
        rk = kpool_kafka_new(ctx, RD_KAFKA_PRODUCER, kconf);
        if (!rk)
                return KP_EXIT_FAIL;

        ntasks = kp_admin_topic_partitions(
            rk, ctx->tasks, KPOOL_ADMIN_TIMEOUT_MS, errstr, sizeof(errstr));
        if (ntasks < 0)
                goto fail;
        nresults = kp_admin_topic_partitions(
            rk, ctx->results, KPOOL_ADMIN_TIMEOUT_MS, errstr, sizeof(errstr));
        if (nresults < 0)
                goto fail;

        /* Partitions cannot be changed here: an explicit count must match
         * what exists. Without one, an existing tasks topic sets it. */
        if (ntasks > 0 && explicit && ntasks != asked) {
                kp_err("topic %s exists with %d partitions, but %s asked for "
                       "%d; kpool does not change a topic's partitions (use "
                       "another --pool, or delete the topics first)",
                       ctx->tasks, ntasks, origin, asked);
                goto out;
        }
        partitions = ntasks > 0 ? ntasks : asked;

        if (ensure_topic(ctx, rk, ctx->tasks, ntasks, partitions) == -1 ||
            ensure_topic(ctx, rk, ctx->results, nresults, partitions) == -1)
                goto out;
        rc = KP_EXIT_OK;
        goto out;

fail:
        kp_err("%s", errstr);
out:
        fflush(stdout);
        rd_kafka_destroy(rk);
        return rc;
}

int main(int argc, char **argv) {
        const kpool_cmd_t *cmd = NULL;
        struct sigaction sa;
        kpool_ctx_t ctx;
        char errstr[1024];
        const char *hint;
        char **args;
        int nargs, rc;

        kp_log_init("kpool", NULL);
        memset(&ctx, 0, sizeof(ctx));
        ctx.conf = kp_conf_new(kp_opts_kpool, kp_opts_kpool_count);

        if (kp_conf_load(ctx.conf, argc, argv, errstr, sizeof(errstr)) == -1) {
                kp_err("%s (see `kpool --help`)", errstr);
                kp_conf_destroy(ctx.conf);
                return KP_EXIT_USAGE;
        }
        kp_log_set_level_name(kp_conf_str(ctx.conf, "log-level"));

        args = kp_conf_args(ctx.conf, &nargs);
        if (nargs > 0) {
                cmd = find_command(args[0]);
                if (!cmd) {
                        hint = near_command(args[0]);
                        if (hint)
                                kp_err("unknown subcommand \"%s\" (did you "
                                       "mean %s?)",
                                       args[0], hint);
                        else
                                kp_err("unknown subcommand \"%s\" (see "
                                       "`kpool --help`)",
                                       args[0]);
                        kp_conf_destroy(ctx.conf);
                        return KP_EXIT_USAGE;
                }
        }

        if (kp_conf_bool(ctx.conf, "version")) {
                printf("kpool %s (librdkafka %s)\n", KPOOL_VERSION,
                       rd_kafka_version_str());
                kp_conf_destroy(ctx.conf);
                return KP_EXIT_OK;
        }
        if (kp_conf_bool(ctx.conf, "help")) {
                if (cmd)
                        usage_cmd(ctx.conf, cmd, stdout);
                else
                        usage(ctx.conf, stdout);
                kp_conf_destroy(ctx.conf);
                return KP_EXIT_OK;
        }
        if (!cmd) {
                kp_err("no subcommand given: one of topics, submit, status, "
                       "wait, results (see `kpool --help`)");
                kp_conf_destroy(ctx.conf);
                return KP_EXIT_USAGE;
        }

        ctx.pool = kp_conf_str(ctx.conf, "pool");
        ctx.brokers = kp_conf_str(ctx.conf, "brokers");
        if (!ctx.brokers || !*ctx.brokers) {
                kp_err("--brokers: no bootstrap servers given");
                kp_conf_destroy(ctx.conf);
                return KP_EXIT_USAGE;
        }
        if (!ctx.pool || !pool_valid(ctx.pool, errstr, sizeof(errstr))) {
                kp_err("%s", ctx.pool ? errstr : "--pool: no pool name");
                kp_conf_destroy(ctx.conf);
                return KP_EXIT_USAGE;
        }
        kp_kafka_topic_tasks(ctx.pool, ctx.tasks, sizeof(ctx.tasks));
        kp_kafka_topic_results(ctx.pool, ctx.results, sizeof(ctx.results));
        kp_kafka_group(ctx.pool, ctx.group, sizeof(ctx.group));
        ctx.args = args + 1;
        ctx.nargs = nargs - 1;

        /* Handlers only count; long loops look at the count. */
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);

        rc = cmd->run(&ctx);

        kp_conf_destroy(ctx.conf);
        return rc;
}
