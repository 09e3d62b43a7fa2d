/* kpool.h - what kpool's subcommands share: the parsed configuration,
 * the pool's names, and how a Kafka client is made. Internal to kpool. */
#ifndef KPOOL_H
#define KPOOL_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "kp_conf.h"
#include "kp_kafka.h"

/* The version --version prints; the build may set it. */
#ifndef KPOOL_VERSION
#define KPOOL_VERSION "0.1.0"
#endif

/* Admin and metadata calls wait this long for the cluster. */
#define KPOOL_ADMIN_TIMEOUT_MS 10000

typedef struct kpool_ctx {
        kp_conf_t *conf;
        const char *pool;
        const char *brokers;
        char tasks[256];   /* <pool>.tasks */
        char results[256]; /* <pool>.results */
        char group[256];   /* <pool>.workers */
        char **args;       /* the subcommand's arguments */
        int nargs;
} kpool_ctx_t;

/* Set by SIGINT/SIGTERM: how many times one arrived. */
extern volatile sig_atomic_t kpool_interrupted;

/* A librdkafka configuration for `role` from the user's settings.
 * Returns it (caller owns it), or NULL after logging why. */
rd_kafka_conf_t *kpool_kafka_conf(const kpool_ctx_t *ctx, kp_kafka_role_t role);

/* Creates a client from kconf (always consumed) and checks that a broker
 * answers. Returns the handle (caller destroys it), or NULL after logging
 * why ("cannot reach the brokers at ..."). */
rd_kafka_t *kpool_kafka_new(const kpool_ctx_t *ctx, rd_kafka_type_t type,
                            rd_kafka_conf_t *kconf);

/* The partition count of `topic`, or -1 after logging why; a missing
 * topic is reported with a hint to run `kpool topics`. */
int kpool_partitions(const kpool_ctx_t *ctx, rd_kafka_t *rk, const char *topic);

/* Writes `s` to out on one line: newlines, tabs, backslashes and other
 * control characters escaped. */
void kpool_put_escaped(FILE *out, const char *s);

/* The subcommands. Each returns a KP_EXIT_* code. */
int kpool_cmd_topics(kpool_ctx_t *ctx);
int kpool_cmd_submit(kpool_ctx_t *ctx);
int kpool_cmd_status(kpool_ctx_t *ctx);
int kpool_cmd_wait(kpool_ctx_t *ctx);
int kpool_cmd_results(kpool_ctx_t *ctx);

#endif
