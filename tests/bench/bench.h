/* bench.h - kpool-bench's shared state: the pool under test, the clients
 * the phases use, and the helpers they share.
 *
 * A phase measures one figure against a running pool (started by
 * scripts/bench): throughput, added latency, or the workers' resident
 * memory. Each prints its figures on stdout and, with --record FILE,
 * appends "key value" lines to FILE for the summary. */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "kp_conf.h"

typedef struct bench {
        kp_conf_t *conf;
        const char *pool;
        char tasks_topic[256];
        char results_topic[256];
        char group[256];
        int nparts;   /* partitions of <pool>.tasks */
        int nresults; /* partitions of <pool>.results */
        char run[16]; /* tags this run's task ids: "b<run>-<phase>-<n>" */
        FILE *record; /* --record, or NULL */
        int64_t delivery_errors;
} bench_t;

/* A result record, as much of it as the phases need. */
typedef struct bench_result {
        char id[128];
        int ok;
        double duration_ms;
} bench_result_t;

/* Nanoseconds on the monotonic clock. */
int64_t bench_now_ns(void);

/* Appends "key value" to the --record file, if any. */
void bench_record(bench_t *b, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A producer of tasks with the given linger.ms. Returns it (caller
 * destroys) or NULL with errstr set. */
rd_kafka_t *bench_producer_new(bench_t *b, const char *linger_ms, char *errstr,
                               size_t errstr_size);

/* A consumer of <pool>.results, assigned (no group) at the end offsets
 * the topic has now: it sees only results written from here on.
 * Returns it (caller closes and destroys) or NULL with errstr set. */
rd_kafka_t *bench_results_consumer_new(bench_t *b, char *errstr,
                                       size_t errstr_size);

/* Waits up to timeout_ms for the next result. Returns 1 with *res
 * filled, 0 if none came in time, -1 on a consumer error (errstr set).
 * Records that do not parse are skipped. */
int bench_next_result(rd_kafka_t *cons, int timeout_ms, bench_result_t *res,
                      char *errstr, size_t errstr_size);

/* Produces one task to `partition`; polls the producer while its queue is
 * full. Returns 0, or -1 with errstr set. */
int bench_produce(bench_t *b, rd_kafka_t *prod, int32_t partition,
                  const char *id, const char *input, char *errstr,
                  size_t errstr_size);

/* Waits until the group has one live owner per partition of the tasks
 * topic, then sends one task per partition and waits for their results,
 * so connections and fetchers are warm. Returns 0, or -1 with errstr
 * set. */
int bench_warm_up(bench_t *b, char *errstr, size_t errstr_size);

/* The phases. Each returns 0, or -1 after logging why. */
int bench_throughput(bench_t *b);
int bench_latency(bench_t *b);
int bench_rss(bench_t *b);

#endif
