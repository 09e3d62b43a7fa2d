/* kp_opts.c - the option tables of kpool's programs.
 *
 * One row per option: the flag, the config-file key and the environment
 * variable (KPOOL_<NAME>) are all derived from its name. */
#include "kp_opts.h"

#define COUNT(A) (sizeof(A) / sizeof((A)[0]))

const kp_opt_def_t kp_opts_common[] = {
    {"brokers", 'b', KP_OPT_STR, "127.0.0.1:9092", 0, 0, NULL, 0, "BROKERS",
     "Kafka bootstrap servers, host:port[,host:port...]"},
    {"pool", 0, KP_OPT_STR, "kpool", 0, 0, NULL, 0, "NAME",
     "pool name: topics <pool>.tasks and <pool>.results, group "
     "<pool>.workers"},
    {"config", 'c', KP_OPT_STR, NULL, 0, 0, NULL, KP_OPT_F_CLIONLY, "FILE",
     "config file (default: $KPOOL_CONFIG if set)"},
    {"log-level", 0, KP_OPT_ENUM, "info", 0, 0, "error|warn|info|debug", 0,
     "LEVEL", "diagnostics written to stderr"},
    {"help", 'h', KP_OPT_BOOL, "false", 0, 0, NULL,
     KP_OPT_F_FLAG | KP_OPT_F_CLIONLY, NULL, "print this help and exit 0"},
    {"version", 'V', KP_OPT_BOOL, "false", 0, 0, NULL,
     KP_OPT_F_FLAG | KP_OPT_F_CLIONLY, NULL, "print the version and exit 0"},
};
const size_t kp_opts_common_count = COUNT(kp_opts_common);

const kp_opt_def_t kp_opts_worker[] = {
    {"name", 'n', KP_OPT_STR, NULL, 0, 0, NULL, 0, "NAME",
     "stable worker name, the group.instance.id (default: host name, "
     "plus -p<N> with --partition)"},
    {"partition", 'p', KP_OPT_INT, "-1", -1, 1000000, NULL, 0, "P",
     "own partition P of <pool>.tasks instead of joining the group's "
     "assignment (-1: assigned by the group)"},
    {"concurrency", 0, KP_OPT_INT, "1", 1, 1024, NULL, 0, "N",
     "backend calls in flight (1: strict mailbox order)"},
    {"backend", 0, KP_OPT_ENUM, "anthropic", 0, 0, "anthropic|openai|http", 0,
     "KIND", "backend called for each task"},
    {"backend-url", 'u', KP_OPT_STR, NULL, 0, 0, NULL, 0, "URL",
     "backend endpoint (default: the vendor's API for anthropic and "
     "openai; required for http)"},
    {"model", 'm', KP_OPT_STR, NULL, 0, 0, NULL, 0, "MODEL",
     "model name (default: claude-sonnet-4-5 for anthropic, gpt-4o-mini "
     "for openai)"},
    {"role", 'r', KP_OPT_STR, "You are a helpful assistant. Answer briefly.", 0,
     0, NULL, 0, "TEXT", "the pool's role: the system prompt of each call"},
    {"max-tokens", 0, KP_OPT_INT, "1024", 1, 1000000, NULL, 0, "N",
     "max_tokens of a call unless the task sets its own"},
    {"max-input-bytes", 0, KP_OPT_INT, "262144", 1, 100000000, NULL, 0, "N",
     "larger task inputs get an error result"},
    {"api-key-env", 0, KP_OPT_STR, NULL, 0, 0, NULL, 0, "VAR",
     "environment variable holding the API key (default: "
     "ANTHROPIC_API_KEY or OPENAI_API_KEY)"},
    {"api-key-file", 0, KP_OPT_STR, NULL, 0, 0, NULL, 0, "FILE",
     "read the API key from FILE instead (first line)"},
    {"anthropic-version", 0, KP_OPT_STR, "2023-06-01", 0, 0, NULL, 0, "DATE",
     "anthropic-version header of Messages API calls"},
    {"timeout-ms", 't', KP_OPT_INT, "120000", 100, 86400000, NULL, 0, "MS",
     "per-task deadline over all attempts of its backend call"},
    {"attempts", 0, KP_OPT_INT, "5", 1, 100, NULL, 0, "N",
     "backend attempts per task (retries on 429, 5xx, transport errors)"},
    {"retry-backoff-ms", 0, KP_OPT_INT, "500", 1, 3600000, NULL, 0, "MS",
     "first retry delay; doubles each attempt, with jitter"},
    {"retry-backoff-max-ms", 0, KP_OPT_INT, "30000", 1, 3600000, NULL, 0, "MS",
     "longest retry delay (a longer Retry-After is honoured)"},
    {"drain-timeout-ms", 0, KP_OPT_INT, "30000", 0, 3600000, NULL, 0, "MS",
     "on shutdown or revocation, how long in-flight calls may finish"},
    {"commit-interval-ms", 0, KP_OPT_INT, "1000", 10, 600000, NULL, 0, "MS",
     "commit stored offsets this often while busy (at once when idle)"},
};
const size_t kp_opts_worker_count = COUNT(kp_opts_worker);

const kp_opt_def_t kp_opts_kpool[] = {
    {"partitions", 'P', KP_OPT_INT, "3", 1, 100000, NULL, 0, "N",
     "topics: partitions of <pool>.tasks (one per worker)"},
    {"replication-factor", 0, KP_OPT_INT, "-1", -1, 32767, NULL, 0, "N",
     "topics: replication factor (-1: the broker's default)"},
    {"partition", 'p', KP_OPT_INT, "-1", -1, 1000000, NULL, KP_OPT_F_CLIONLY,
     "P",
     "submit: send every task to partition P (-1: each to the one "
     "--dispatch picks)"},
    {"dispatch", 'd', KP_OPT_ENUM, "round-robin", 0, 0,
     "round-robin|least-loaded", 0, "HOW",
     "submit: round-robin (even across invocations) or least-loaded "
     "(least lag)"},
    {"file", 'f', KP_OPT_STR, NULL, 0, 0, NULL, KP_OPT_F_CLIONLY, "FILE",
     "submit: read tasks from FILE, one per line ('-': stdin)"},
    {"format", 0, KP_OPT_ENUM, "auto", 0, 0, "auto|text|json", 0, "FMT",
     "submit: lines are plain text, JSON tasks, or auto (JSON if it "
     "starts with '{')"},
    {"json", 'j', KP_OPT_BOOL, "false", 0, 0, NULL, KP_OPT_F_FLAG, NULL,
     "status, results: print JSON (results: one per line)"},
    {"by-worker", 'w', KP_OPT_BOOL, "false", 0, 0, NULL, KP_OPT_F_FLAG, NULL,
     "results: group by worker, with counts"},
    {"all", 'a', KP_OPT_BOOL, "false", 0, 0, NULL, KP_OPT_F_FLAG, NULL,
     "results: keep every record, duplicates of a task id included"},
    {"timeout", 'T', KP_OPT_INT, "0", 0, 31536000, NULL, 0, "S",
     "wait: give up after S seconds (0: never)"},
    {"interval-ms", 0, KP_OPT_INT, "200", 10, 60000, NULL, 0, "MS",
     "wait: how often to check the group's lag"},
};
const size_t kp_opts_kpool_count = COUNT(kp_opts_kpool);
