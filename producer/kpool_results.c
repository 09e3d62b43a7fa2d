/* kpool_results.c - `kpool results`: read <pool>.results from its start to
 * the end offsets seen at the start, and print the results. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "kp_admin.h"
#include "kp_exit.h"
#include "kp_log.h"
#include "kpool.h"

/* Give up when the brokers send nothing for this long. */
#define RESULTS_IDLE_MS 10000

typedef struct result_rec {
        json_object *obj;
        char *raw; /* the value as stored */
        size_t len;
        char *id; /* the result's "id", else the record's key */
        const char *worker;
        const char *completed_at; /* NULL if absent */
        int32_t partition;        /* where the record is in the topic */
        int64_t offset;
        int keep;
} result_rec_t;

typedef struct results {
        kpool_ctx_t *ctx;
        result_rec_t *recs;
        size_t n, cap;
        size_t skipped;
} results_t;

static const char *json_str(json_object *obj, const char *name) {
        json_object *v;

        if (!json_object_object_get_ex(obj, name, &v) ||
            !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

/* Keeps one record if its value is a JSON object; reports and skips it
 * otherwise. */
static void add_record(results_t *r, const rd_kafka_message_t *rkm) {
        enum json_tokener_error jerr = json_tokener_success;
        json_object *obj = NULL;
        json_tokener *tok;
        result_rec_t *rec;
        const char *id;

        if (rkm->payload && rkm->len > 0) {
                tok = json_tokener_new();
                if (tok) {
                        obj = json_tokener_parse_ex(tok, rkm->payload,
                                                    (int)rkm->len);
                        jerr = json_tokener_get_error(tok);
                        json_tokener_free(tok);
                }
        }
        if (!obj || jerr != json_tokener_success ||
            !json_object_is_type(obj, json_type_object)) {
                kp_warn("%s [%d] at offset %lld: not a JSON result record, "
                        "skipped",
                        rd_kafka_topic_name(rkm->rkt), (int)rkm->partition,
                        (long long)rkm->offset);
                json_object_put(obj);
                r->skipped++;
                return;
        }

        if (r->n == r->cap) {
                r->cap = r->cap ? r->cap * 2 : 256;
                r->recs = realloc(r->recs, r->cap * sizeof(*r->recs));
                if (!r->recs) {
                        kp_err("Out of memory reading results");
                        abort();
                }
        }
        rec = &r->recs[r->n++];
        memset(rec, 0, sizeof(*rec));
        rec->obj = obj;
        rec->raw = strndup(rkm->payload, rkm->len);
        rec->len = rkm->len;
        id = json_str(obj, "id");
        if (id)
                rec->id = strdup(id);
        else if (rkm->key && rkm->key_len)
                rec->id = strndup(rkm->key, rkm->key_len);
        else
                rec->id = strdup("-");
        if (!rec->raw || !rec->id) {
                kp_err("Out of memory reading results");
                abort();
        }
        rec->worker = json_str(obj, "worker");
        if (!rec->worker)
                rec->worker = "-";
        rec->completed_at = json_str(obj, "completed_at");
        rec->partition = rkm->partition;
        rec->offset = rkm->offset;
        rec->keep = 1;
}

static int64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Consumes every assigned partition up to high[]. Returns 0, or -1 after
 * logging. */
static int consume(results_t *r, rd_kafka_t *rk, int count, const int64_t *high,
                   char *done, int remaining) {
        int64_t last = now_ms();
        rd_kafka_message_t *rkm;
        int32_t p;

        while (remaining > 0) {
                if (kpool_interrupted) {
                        kp_err("interrupted");
                        return -1;
                }
                rkm = rd_kafka_consumer_poll(rk, 100);
                if (!rkm) {
                        if (now_ms() - last > RESULTS_IDLE_MS) {
                                kp_err("no records from %s for %d s; %d "
                                       "partitions were not read to the end",
                                       r->ctx->results, RESULTS_IDLE_MS / 1000,
                                       remaining);
                                return -1;
                        }
                        continue;
                }
                last = now_ms();
                p = rkm->partition;

                if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        if (p >= 0 && p < count && !done[p]) {
                                done[p] = 1;
                                remaining--;
                        }
                } else if (rkm->err) {
                        kp_warn("Failed to read %s [%d]: %s", r->ctx->results,
                                (int)p, rd_kafka_message_errstr(rkm));
                } else if (p >= 0 && p < count && !done[p] &&
                           rkm->offset < high[p]) {
                        add_record(r, rkm);
                        if (rkm->offset >= high[p] - 1) {
                                done[p] = 1;
                                remaining--;
                        }
                }
                rd_kafka_message_destroy(rkm);
        }
        return 0;
}

/* Reads the topic. Returns a KP_EXIT_* code (logged if not OK). */
static int read_results(results_t *r) {
        rd_kafka_topic_partition_list_t *rktparlist = NULL;
        kpool_ctx_t *ctx = r->ctx;
        int64_t *low = NULL, *high = NULL;
        rd_kafka_resp_err_t err;
        rd_kafka_conf_t *kconf;
        rd_kafka_t *rk;
        char errstr[512], group[300], *done = NULL;
        int count, p, remaining = 0, rc = KP_EXIT_FAIL;

        kconf = kpool_kafka_conf(ctx, KP_KAFKA_CONSUMER);
        if (!kconf)
                return KP_EXIT_USAGE;
        /* A plain reader: partitions assigned, nothing ever committed, and
         * told when a partition's end is reached. librdkafka's assign()
         * wants a group.id, which is never joined here. */
        snprintf(group, sizeof(group), "%s.results-reader", ctx->pool);
        if (kp_kafka_set(kconf, "group.id", group, errstr, sizeof(errstr)) ==
                -1 ||
            kp_kafka_set(kconf, "enable.partition.eof", "true", errstr,
                         sizeof(errstr)) == -1 ||
            kp_kafka_set(kconf, "enable.auto.commit", "false", errstr,
                         sizeof(errstr)) == -1 ||
            kp_kafka_set(kconf, "enable.auto.offset.store", "false", errstr,
                         sizeof(errstr)) == -1) {
                kp_err("%s", errstr);
                rd_kafka_conf_destroy(kconf);
                return KP_EXIT_FAIL;
        }
        rk = kpool_kafka_new(ctx, RD_KAFKA_CONSUMER, kconf);
        if (!rk)
                return KP_EXIT_FAIL;

        count = kpool_partitions(ctx, rk, ctx->results);
        if (count < 0)
                goto out;

        low = calloc((size_t)count, sizeof(*low));
        high = calloc((size_t)count, sizeof(*high));
        done = calloc((size_t)count, 1);
        if (!low || !high || !done) {
                kp_err("Out of memory");
                goto out;
        }
        if (kp_admin_watermarks(rk, ctx->results, count, low, high,
                                KPOOL_ADMIN_TIMEOUT_MS, errstr,
                                sizeof(errstr)) == -1) {
                kp_err("%s", errstr);
                goto out;
        }

        /* Read each non-empty partition from its first record. */
        rktparlist = rd_kafka_topic_partition_list_new(count);
        for (p = 0; p < count; p++) {
                if (high[p] <= low[p]) {
                        done[p] = 1;
                        continue;
                }
                rd_kafka_topic_partition_list_add(rktparlist, ctx->results, p)
                    ->offset = low[p];
                remaining++;
        }
        if (remaining > 0) {
                err = rd_kafka_assign(rk, rktparlist);
                if (err) {
                        kp_err("Failed to assign %s: %s", ctx->results,
                               rd_kafka_err2str(err));
                        goto out;
                }
                if (consume(r, rk, count, high, done, remaining) == -1)
                        goto out;
        }
        rc = KP_EXIT_OK;

out:
        if (rktparlist)
                rd_kafka_topic_partition_list_destroy(rktparlist);
        free(low);
        free(high);
        free(done);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return rc;
}

static int cmp_id(const void *a, const void *b) {
        const result_rec_t *x = *(result_rec_t *const *)a;
        const result_rec_t *y = *(result_rec_t *const *)b;
        int c = strcmp(x->id, y->id);

        if (c)
                return c;
        return x < y ? -1 : x > y;
}

/* Whether b is a later result than a for the same task: later in the
 * same partition, else completed later, else in a higher partition. */
static int later(const result_rec_t *a, const result_rec_t *b) {
        int c;

        if (a->partition == b->partition)
                return b->offset > a->offset;
        if (a->completed_at && b->completed_at) {
                c = strcmp(b->completed_at, a->completed_at);
                if (c)
                        return c > 0;
        }
        return b->partition > a->partition;
}

/* Keeps only the last result of each task id. */
static void dedupe(results_t *r) {
        result_rec_t **by_id, *best;
        size_t i, j;

        if (r->n == 0)
                return;
        by_id = malloc(r->n * sizeof(*by_id));
        if (!by_id) {
                kp_err("Out of memory");
                abort();
        }
        for (i = 0; i < r->n; i++)
                by_id[i] = &r->recs[i];
        qsort(by_id, r->n, sizeof(*by_id), cmp_id);

        for (i = 0; i < r->n; i = j) {
                best = by_id[i];
                for (j = i + 1; j < r->n && !strcmp(by_id[j]->id, best->id);
                     j++) {
                        if (later(best, by_id[j])) {
                                best->keep = 0;
                                best = by_id[j];
                        } else {
                                by_id[j]->keep = 0;
                        }
                }
        }
        free(by_id);
}

static int cmp_position(const void *a, const void *b) {
        const result_rec_t *x = a, *y = b;

        if (x->partition != y->partition)
                return x->partition < y->partition ? -1 : 1;
        return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int cmp_worker(const void *a, const void *b) {
        const result_rec_t *x = a, *y = b;
        int c = strcmp(x->worker, y->worker);

        return c ? c : cmp_position(a, b);
}

/* "ok  <output>" or "error  <kind>: <message>", on one line. */
static void print_outcome(const result_rec_t *rec) {
        const char *status = json_str(rec->obj, "status");
        const char *kind = NULL, *message = NULL, *output;
        json_object *err;

        if (!status)
                status = "-";
        kpool_put_escaped(stdout, status);
        fputs("  ", stdout);
        if (!strcmp(status, "ok")) {
                output = json_str(rec->obj, "output");
                kpool_put_escaped(stdout, output ? output : "");
        } else if (json_object_object_get_ex(rec->obj, "error", &err)) {
                kind = json_str(err, "kind");
                message = json_str(err, "message");
                kpool_put_escaped(stdout, kind ? kind : "-");
                fputs(": ", stdout);
                kpool_put_escaped(stdout, message ? message : "");
        }
        fputc('\n', stdout);
}

/* The task's own partition and offset, from the result: "p1@42". */
static void print_origin(const result_rec_t *rec) {
        json_object *p, *o;

        if (json_object_object_get_ex(rec->obj, "partition", &p) &&
            json_object_object_get_ex(rec->obj, "offset", &o) &&
            json_object_is_type(p, json_type_int) &&
            json_object_is_type(o, json_type_int))
                printf("p%lld@%lld", (long long)json_object_get_int64(p),
                       (long long)json_object_get_int64(o));
        else
                fputs("-", stdout);
}

static void print_json(const result_rec_t *rec) {
        /* As stored, unless a line break would split it. */
        if (!memchr(rec->raw, '\n', rec->len) &&
            !memchr(rec->raw, '\r', rec->len))
                printf("%s\n", rec->raw);
        else
                printf("%s\n",
                       json_object_to_json_string_ext(
                           rec->obj, JSON_C_TO_STRING_PLAIN |
                                         JSON_C_TO_STRING_NOSLASHESCAPE));
}

static void print_results(const results_t *r, int json, int by_worker) {
        const result_rec_t *rec;
        const char *worker = NULL;
        size_t i, j, count;

        for (i = 0; i < r->n; i++) {
                rec = &r->recs[i];
                if (!rec->keep)
                        continue;
                if (json) {
                        print_json(rec);
                        continue;
                }
                if (!by_worker) {
                        kpool_put_escaped(stdout, rec->id);
                        fputs("  ", stdout);
                        kpool_put_escaped(stdout, rec->worker);
                        fputs("  ", stdout);
                        print_origin(rec);
                        fputs("  ", stdout);
                        print_outcome(rec);
                        continue;
                }
                if (!worker || strcmp(worker, rec->worker)) {
                        worker = rec->worker;
                        for (count = 0, j = i;
                             j < r->n && !strcmp(r->recs[j].worker, worker);
                             j++)
                                count += r->recs[j].keep;
                        fputs("worker ", stdout);
                        kpool_put_escaped(stdout, worker);
                        printf(" (%zu result%s)\n", count,
                               count == 1 ? "" : "s");
                }
                fputs("  ", stdout);
                kpool_put_escaped(stdout, rec->id);
                fputs("  ", stdout);
                print_outcome(rec);
        }
}

int kpool_cmd_results(kpool_ctx_t *ctx) {
        int json = kp_conf_bool(ctx->conf, "json");
        int by_worker = kp_conf_bool(ctx->conf, "by-worker");
        results_t r;
        size_t i;
        int rc;

        if (ctx->nargs > 0) {
                kp_err("results takes no arguments (got \"%s\")", ctx->args[0]);
                return KP_EXIT_USAGE;
        }

        memset(&r, 0, sizeof(r));
        r.ctx = ctx;
        rc = read_results(&r);
        if (rc == KP_EXIT_OK) {
                if (!kp_conf_bool(ctx->conf, "all"))
                        dedupe(&r);
                if (r.n > 1)
                        qsort(r.recs, r.n, sizeof(*r.recs),
                              by_worker ? cmp_worker : cmp_position);
                print_results(&r, json, by_worker);
                fflush(stdout);
                if (r.skipped)
                        kp_warn("%zu records of %s were not JSON results and "
                                "were skipped",
                                r.skipped, ctx->results);
        }

        for (i = 0; i < r.n; i++) {
                json_object_put(r.recs[i].obj);
                free(r.recs[i].raw);
                free(r.recs[i].id);
        }
        free(r.recs);
        return rc;
}
