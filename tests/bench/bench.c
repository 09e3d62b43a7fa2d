/* bench.c - kpool-bench: measures a running pool (throughput, added
 * latency, workers' memory). Options, clients and helpers shared by the
 * phases; the phases are in bench_phases.c. scripts/bench starts the
 * pool and runs this. */
#include "bench.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "kp_admin.h"
#include "kp_exit.h"
#include "kp_kafka.h"
#include "kp_log.h"
#include "kp_task.h"

#define COUNT(A) (sizeof(A) / sizeof((A)[0]))

static const kp_opt_def_t bench_opts[] = {
    {"tasks", 'n', KP_OPT_INT, "20000", 1, 100000000, NULL, 0, "N",
     "throughput: tasks to send"},
    {"samples", 's', KP_OPT_INT, "200", 1, 1000000, NULL, 0, "N",
     "latency: tasks sent one at a time"},
    {"pause-ms", 0, KP_OPT_INT, "20", 0, 60000, NULL, 0, "MS",
     "latency: pause between samples, so the pool is idle for each"},
    {"worker-pids", 'w', KP_OPT_STR, NULL, 0, 0, NULL, 0, "PIDS",
     "rss: the workers' process ids, comma-separated"},
    {"idle-ms", 0, KP_OPT_INT, "3000", 0, 600000, NULL, 0, "MS",
     "rss: wait this long first, so the pool has been idle"},
    {"label", 'l', KP_OPT_STR, "idle", 0, 0, NULL, 0, "NAME",
     "rss: names the measurement in the record (fresh, after-load)"},
    {"timeout-s", 'T', KP_OPT_INT, "300", 1, 86400, NULL, 0, "S",
     "give up on a phase after S seconds"},
    {"record", 'o', KP_OPT_STR, NULL, 0, 0, NULL, 0, "FILE",
     "append the figures as \"key value\" lines to FILE"},
};

int64_t bench_now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bench_record(bench_t *b, const char *key, const char *fmt, ...) {
        va_list ap;

        if (!b->record)
                return;
        fprintf(b->record, "%s ", key);
        va_start(ap, fmt);
        vfprintf(b->record, fmt, ap);
        va_end(ap);
        fputc('\n', b->record);
        fflush(b->record);
}

/* ---- clients ---- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                        void *opaque) {
        bench_t *b = opaque;

        if (!rkm->err)
                return;
        if (b->delivery_errors++ == 0)
                kp_err("task not delivered to %s [%d]: %s", b->tasks_topic,
                       (int)rkm->partition, rd_kafka_err2str(rkm->err));
}

rd_kafka_t *bench_producer_new(bench_t *b, const char *linger_ms, char *errstr,
                               size_t errstr_size) {
        rd_kafka_conf_t *kconf;
        rd_kafka_t *rk;

        kconf =
            kp_kafka_conf_new(b->conf, KP_KAFKA_PRODUCER, errstr, errstr_size);
        if (!kconf)
                return NULL;
        /* acks=all as `kpool submit` does; linger as the phase asks. */
        if (kp_kafka_set(kconf, "client.id", "kpool-bench", errstr,
                         errstr_size) ||
            kp_kafka_set(kconf, "acks", "all", errstr, errstr_size) ||
            kp_kafka_set(kconf, "linger.ms", linger_ms, errstr, errstr_size) ||
            kp_kafka_set(kconf, "queue.buffering.max.messages", "1000000",
                         errstr, errstr_size)) {
                rd_kafka_conf_destroy(kconf);
                return NULL;
        }
        rd_kafka_conf_set_opaque(kconf, b);
        rd_kafka_conf_set_dr_msg_cb(kconf, on_delivery);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr, errstr_size);
        if (!rk)
                rd_kafka_conf_destroy(kconf);
        return rk;
}

/* The results consumer's settings: a fetch returns as soon as a record
 * arrives (fetch.min.bytes=1), so the bench's own consumer adds little
 * to what it measures. */
static rd_kafka_conf_t *results_conf(bench_t *b, char *errstr,
                                     size_t errstr_size) {
        rd_kafka_conf_t *kconf;
        char group[64];

        kconf =
            kp_kafka_conf_new(b->conf, KP_KAFKA_CONSUMER, errstr, errstr_size);
        if (!kconf)
                return NULL;
        /* librdkafka wants a group.id even for an assignment; this one
         * never joins, nor commits. */
        snprintf(group, sizeof(group), "kpool-bench-%s", b->run);
        if (kp_kafka_set(kconf, "client.id", "kpool-bench-results", errstr,
                         errstr_size) ||
            kp_kafka_set(kconf, "group.id", group, errstr, errstr_size) ||
            kp_kafka_set(kconf, "enable.auto.commit", "false", errstr,
                         errstr_size) ||
            kp_kafka_set(kconf, "enable.partition.eof", "false", errstr,
                         errstr_size) ||
            kp_kafka_set(kconf, "fetch.wait.max.ms", "100", errstr,
                         errstr_size) ||
            kp_kafka_set(kconf, "fetch.min.bytes", "1", errstr, errstr_size) ||
            kp_kafka_set(kconf, "fetch.queue.backoff.ms", "0", errstr,
                         errstr_size)) {
                rd_kafka_conf_destroy(kconf);
                return NULL;
        }
        return kconf;
}

rd_kafka_t *bench_results_consumer_new(bench_t *b, char *errstr,
                                       size_t errstr_size) {
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_conf_t *kconf;
        rd_kafka_resp_err_t err;
        int64_t *low, *high;
        rd_kafka_t *rk;
        int i;

        kconf = results_conf(b, errstr, errstr_size);
        if (!kconf)
                return NULL;
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, errstr, errstr_size);
        if (!rk) {
                rd_kafka_conf_destroy(kconf);
                return NULL;
        }
        rd_kafka_poll_set_consumer(rk);

        /* The end offsets before anything of this phase is produced. */
        low = calloc((size_t)b->nresults, sizeof(*low));
        high = calloc((size_t)b->nresults, sizeof(*high));
        if (!low || !high)
                abort();
        if (kp_admin_watermarks(rk, b->results_topic, b->nresults, low, high,
                                10000, errstr, errstr_size) == -1) {
                free(low);
                free(high);
                rd_kafka_destroy(rk);
                return NULL;
        }
        list = rd_kafka_topic_partition_list_new(b->nresults);
        for (i = 0; i < b->nresults; i++)
                rd_kafka_topic_partition_list_add(list, b->results_topic, i)
                    ->offset = high[i];
        free(low);
        free(high);

        err = rd_kafka_assign(rk, list);
        rd_kafka_topic_partition_list_destroy(list);
        if (err) {
                snprintf(errstr, errstr_size, "cannot consume %s: %s",
                         b->results_topic, rd_kafka_err2str(err));
                rd_kafka_destroy(rk);
                return NULL;
        }
        return rk;
}

/* Fills *res from a result's JSON. Returns 0, or -1 if it is not one. */
static int parse_result(const rd_kafka_message_t *rkm, bench_result_t *res) {
        json_tokener *tok = json_tokener_new();
        json_object *obj, *v;
        int rc = -1;

        obj = json_tokener_parse_ex(tok, rkm->payload, (int)rkm->len);
        json_tokener_free(tok);
        if (!obj)
                return -1;
        if (json_object_object_get_ex(obj, "id", &v) &&
            json_object_is_type(v, json_type_string)) {
                snprintf(res->id, sizeof(res->id), "%s",
                         json_object_get_string(v));
                res->ok = json_object_object_get_ex(obj, "status", &v) &&
                          !strcmp(json_object_get_string(v), "ok");
                res->duration_ms = 0;
                if (json_object_object_get_ex(obj, "duration_ms", &v))
                        res->duration_ms = json_object_get_double(v);
                rc = 0;
        }
        json_object_put(obj);
        return rc;
}

int bench_next_result(rd_kafka_t *cons, int timeout_ms, bench_result_t *res,
                      char *errstr, size_t errstr_size) {
        int64_t deadline = bench_now_ns() + (int64_t)timeout_ms * 1000000;
        rd_kafka_message_t *rkm;

        for (;;) {
                int64_t left = (deadline - bench_now_ns()) / 1000000;

                if (left < 0)
                        left = 0;
                rkm = rd_kafka_consumer_poll(cons, (int)left);
                if (!rkm)
                        return 0;
                if (rkm->err) {
                        snprintf(errstr, errstr_size, "%s",
                                 rd_kafka_message_errstr(rkm));
                        rd_kafka_message_destroy(rkm);
                        return -1;
                }
                if (parse_result(rkm, res) == 0) {
                        rd_kafka_message_destroy(rkm);
                        return 1;
                }
                rd_kafka_message_destroy(rkm);
                if (left == 0)
                        return 0;
        }
}

int bench_produce(bench_t *b, rd_kafka_t *prod, int32_t partition,
                  const char *id, const char *input, char *errstr,
                  size_t errstr_size) {
        rd_kafka_resp_err_t err;
        char *payload;

        payload = kp_task_encode(input, NULL, id, NULL, errstr, errstr_size);
        if (!payload)
                return -1;
        for (;;) {
                /* The payload is handed over: librdkafka frees it. */
                err = rd_kafka_producev(
                    prod, RD_KAFKA_V_TOPIC(b->tasks_topic),
                    RD_KAFKA_V_PARTITION(partition),
                    RD_KAFKA_V_KEY(id, strlen(id)),
                    RD_KAFKA_V_VALUE(payload, strlen(payload)),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_END);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                rd_kafka_poll(prod, 10);
        }
        if (err) {
                free(payload);
                snprintf(errstr, errstr_size, "cannot produce to %s [%d]: %s",
                         b->tasks_topic, (int)partition, rd_kafka_err2str(err));
                return -1;
        }
        return 0;
}

/* ---- readiness ---- */

/* Whether every partition of the tasks topic has an owner in a stable
 * group. */
static int pool_ready(bench_t *b, rd_kafka_t *rk, char *errstr,
                      size_t errstr_size) {
        kp_admin_group_t group;
        kp_admin_lag_t *rows;
        int n, i, ready;

        n = kp_admin_group_lag(rk, b->tasks_topic, b->group, 5000, &rows,
                               &group, errstr, errstr_size);
        if (n < 0)
                return -1;
        ready = n == b->nparts && !strcmp(group.state, "Stable");
        for (i = 0; ready && i < n; i++)
                if (!*rows[i].owner)
                        ready = 0;
        free(rows);
        return ready;
}

static int wait_ready(bench_t *b, rd_kafka_t *rk, char *errstr,
                      size_t errstr_size) {
        int64_t deadline = bench_now_ns() + 60 * 1000000000LL;
        int rc;

        while ((rc = pool_ready(b, rk, errstr, errstr_size)) != 1) {
                if (bench_now_ns() > deadline) {
                        if (rc == 0)
                                snprintf(errstr, errstr_size,
                                         "group %s did not assign all %d "
                                         "partitions of %s within 60 s",
                                         b->group, b->nparts, b->tasks_topic);
                        return -1;
                }
                usleep(200 * 1000);
        }
        return 0;
}

int bench_warm_up(bench_t *b, char *errstr, size_t errstr_size) {
        rd_kafka_t *prod, *cons;
        bench_result_t res;
        int64_t deadline;
        char id[96], prefix[64];
        int i, got = 0, rc = -1;

        prod = bench_producer_new(b, "0", errstr, errstr_size);
        if (!prod)
                return -1;
        cons = NULL;
        if (wait_ready(b, prod, errstr, errstr_size) == -1)
                goto out;
        cons = bench_results_consumer_new(b, errstr, errstr_size);
        if (!cons)
                goto out;

        snprintf(prefix, sizeof(prefix), "b%s-warm-", b->run);
        for (i = 0; i < b->nparts; i++) {
                snprintf(id, sizeof(id), "%s%d", prefix, i);
                if (bench_produce(b, prod, i, id, "warm-up", errstr,
                                  errstr_size) == -1)
                        goto out;
        }
        rd_kafka_flush(prod, 10000);

        deadline = bench_now_ns() + 60 * 1000000000LL;
        while (got < b->nparts && bench_now_ns() < deadline) {
                int r = bench_next_result(cons, 100, &res, errstr, errstr_size);

                if (r == -1)
                        goto out;
                if (r == 1 && !strncmp(res.id, prefix, strlen(prefix)))
                        got++;
        }
        if (got < b->nparts) {
                snprintf(errstr, errstr_size,
                         "only %d of %d warm-up results came back within "
                         "60 s",
                         got, b->nparts);
                goto out;
        }
        rc = 0;

out:
        if (cons) {
                rd_kafka_consumer_close(cons);
                rd_kafka_destroy(cons);
        }
        rd_kafka_destroy(prod);
        return rc;
}

/* ---- main ---- */

static void usage(const kp_conf_t *conf) {
        printf("Usage: kpool-bench [OPTIONS] PHASE...\n"
               "\n"
               "Measures a running kpool pool (scripts/bench starts one: "
               "`make bench`).\n"
               "\nPhases, run in the order given:\n"
               "  throughput  send --tasks tasks round-robin over the "
               "partitions at once;\n"
               "              tasks/s from the first send to the last "
               "result received\n"
               "  latency     send --samples tasks one at a time to an idle "
               "pool; added\n"
               "              latency = submit-to-result time minus the "
               "result's duration_ms\n"
               "  rss         resident memory (VmRSS) of each of "
               "--worker-pids\n"
               "\nOptions:\n");
        kp_conf_usage(conf, stdout);
        printf("\nA benchmark, not a test: it prints figures and the targets "
               "next to them.\n"
               "\nExit codes:\n"
               "  0  every phase ran\n"
               "  1  a phase could not run (no pool, results missing, "
               "timeout)\n"
               "  2  bad flags\n");
}

/* Sizes the topics and tags the run. Returns 0, or -1 after logging. */
static int bench_init(bench_t *b) {
        char errstr[512];
        rd_kafka_t *rk;
        unsigned seed;

        kp_kafka_topic_tasks(b->pool, b->tasks_topic, sizeof(b->tasks_topic));
        kp_kafka_topic_results(b->pool, b->results_topic,
                               sizeof(b->results_topic));
        kp_kafka_group(b->pool, b->group, sizeof(b->group));

        rk = bench_producer_new(b, "0", errstr, sizeof(errstr));
        if (!rk) {
                kp_err("cannot create the producer: %s", errstr);
                return -1;
        }
        b->nparts = kp_admin_partition_count(rk, b->tasks_topic, 10000, errstr,
                                             sizeof(errstr));
        if (b->nparts > 0)
                b->nresults = kp_admin_partition_count(
                    rk, b->results_topic, 10000, errstr, sizeof(errstr));
        rd_kafka_destroy(rk);
        if (b->nparts <= 0 || b->nresults <= 0) {
                kp_err("pool %s: %s (create it with `kpool topics --pool "
                       "%s`)",
                       b->pool, errstr, b->pool);
                return -1;
        }

        seed = (unsigned)(bench_now_ns() ^ getpid());
        snprintf(b->run, sizeof(b->run), "%08x", rand_r(&seed));
        return 0;
}

static int run_phase(bench_t *b, const char *phase) {
        if (!strcmp(phase, "throughput"))
                return bench_throughput(b);
        if (!strcmp(phase, "latency"))
                return bench_latency(b);
        if (!strcmp(phase, "rss"))
                return bench_rss(b);
        kp_err("unknown phase '%s' (throughput, latency or rss)", phase);
        return -1;
}

int main(int argc, char **argv) {
        bench_t b = {0};
        char errstr[1024];
        const char *path;
        char **phases;
        int nphases, i, rc = KP_EXIT_OK;

        kp_log_init("kpool-bench", NULL);
        b.conf = kp_conf_new(bench_opts, COUNT(bench_opts));
        if (kp_conf_load(b.conf, argc, argv, errstr, sizeof(errstr)) == -1) {
                kp_err("%s", errstr);
                kp_conf_destroy(b.conf);
                return KP_EXIT_USAGE;
        }
        if (kp_conf_bool(b.conf, "help")) {
                usage(b.conf);
                kp_conf_destroy(b.conf);
                return KP_EXIT_OK;
        }
        if (kp_conf_bool(b.conf, "version")) {
                printf("kpool-bench (librdkafka %s)\n", rd_kafka_version_str());
                kp_conf_destroy(b.conf);
                return KP_EXIT_OK;
        }
        kp_log_set_level_name(kp_conf_str(b.conf, "log-level"));
        phases = kp_conf_args(b.conf, &nphases);
        for (i = 0; i < nphases; i++) {
                if (strcmp(phases[i], "throughput") &&
                    strcmp(phases[i], "latency") && strcmp(phases[i], "rss")) {
                        kp_err("unknown phase '%s' (throughput, latency or "
                               "rss)",
                               phases[i]);
                        kp_conf_destroy(b.conf);
                        return KP_EXIT_USAGE;
                }
        }
        if (nphases == 0) {
                kp_err("no phase given (throughput, latency or rss); try "
                       "'kpool-bench --help'");
                kp_conf_destroy(b.conf);
                return KP_EXIT_USAGE;
        }

        b.pool = kp_conf_str(b.conf, "pool");
        path = kp_conf_str(b.conf, "record");
        if (path && !(b.record = fopen(path, "a"))) {
                kp_err("cannot open %s: %s", path, strerror(errno));
                kp_conf_destroy(b.conf);
                return KP_EXIT_FAIL;
        }

        /* rss alone needs no broker. */
        for (i = 0; i < nphases; i++)
                if (strcmp(phases[i], "rss"))
                        break;
        if (i < nphases && bench_init(&b) == -1)
                rc = KP_EXIT_FAIL;
        for (i = 0; rc == KP_EXIT_OK && i < nphases; i++)
                if (run_phase(&b, phases[i]) == -1)
                        rc = KP_EXIT_FAIL;

        if (b.record)
                fclose(b.record);
        kp_conf_destroy(b.conf);
        return rc;
}
