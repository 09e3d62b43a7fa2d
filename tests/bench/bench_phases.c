/* bench_phases.c - kpool-bench's phases: throughput, added latency on an
 * idle pool, and the workers' resident memory. */
#include "bench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kp_log.h"

/* ---- throughput ---- */

typedef struct tally {
        const char *prefix; /* "b<run>-t-": this phase's task ids */
        size_t prefix_len;
        unsigned char *seen; /* one byte per task */
        long n;
        long distinct;
        long duplicates;
        long errors;
        int64_t last_ns; /* when the last new result came */
} tally_t;

static void tally_add(tally_t *t, const bench_result_t *res) {
        char *end;
        long i;

        if (strncmp(res->id, t->prefix, t->prefix_len))
                return;
        i = strtol(res->id + t->prefix_len, &end, 10);
        if (*end || i < 0 || i >= t->n)
                return;
        if (t->seen[i]) {
                t->duplicates++;
                return;
        }
        t->seen[i] = 1;
        t->distinct++;
        t->last_ns = bench_now_ns();
        if (!res->ok)
                t->errors++;
}

/* Takes the results waiting, without blocking longer than timeout_ms.
 * Returns 0, or -1 on a consumer error. */
static int take_results(rd_kafka_t *cons, tally_t *t, int timeout_ms) {
        bench_result_t res;
        char errstr[512];
        int r;

        while ((r = bench_next_result(cons, timeout_ms, &res, errstr,
                                      sizeof(errstr))) == 1) {
                tally_add(t, &res);
                timeout_ms = 0;
        }
        if (r == -1) {
                kp_err("reading results: %s", errstr);
                return -1;
        }
        return 0;
}

/* Produces every task, round-robin over the partitions, taking results
 * as they come. Returns 0, or -1 after logging. */
static int send_all(bench_t *b, rd_kafka_t *prod, rd_kafka_t *cons,
                    tally_t *t) {
        char errstr[512], id[64], input[64];
        long i;

        for (i = 0; i < t->n; i++) {
                snprintf(id, sizeof(id), "%s%ld", t->prefix, i);
                snprintf(input, sizeof(input), "bench task %ld", i);
                if (bench_produce(b, prod, (int32_t)(i % b->nparts), id, input,
                                  errstr, sizeof(errstr)) == -1) {
                        kp_err("%s", errstr);
                        return -1;
                }
                if (i % 500 == 499) {
                        rd_kafka_poll(prod, 0);
                        if (take_results(cons, t, 0) == -1)
                                return -1;
                }
        }
        return 0;
}

int bench_throughput(bench_t *b) {
        rd_kafka_t *prod = NULL, *cons = NULL;
        char errstr[512], prefix[64];
        int64_t t0, t_sent, deadline, next_note;
        double secs, rate;
        tally_t t = {0};
        int rc = -1;

        if (bench_warm_up(b, errstr, sizeof(errstr)) == -1) {
                kp_err("warm-up: %s", errstr);
                return -1;
        }
        snprintf(prefix, sizeof(prefix), "b%s-t-", b->run);
        t.prefix = prefix;
        t.prefix_len = strlen(prefix);
        t.n = (long)kp_conf_int(b->conf, "tasks");
        t.seen = calloc((size_t)t.n, 1);
        if (!t.seen)
                abort();

        /* The consumer first: it starts at the end offsets of now. */
        cons = bench_results_consumer_new(b, errstr, sizeof(errstr));
        if (cons)
                prod = bench_producer_new(b, "5", errstr, sizeof(errstr));
        if (!cons || !prod) {
                kp_err("%s", errstr);
                goto out;
        }

        t0 = bench_now_ns();
        if (send_all(b, prod, cons, &t) == -1)
                goto out;
        t_sent = bench_now_ns();

        deadline = t0 + kp_conf_int(b->conf, "timeout-s") * 1000000000LL;
        next_note = t0 + 1000000000LL;
        while (t.distinct < t.n && bench_now_ns() < deadline) {
                rd_kafka_poll(prod, 0);
                if (take_results(cons, &t, 100) == -1)
                        goto out;
                if (bench_now_ns() >= next_note) {
                        kp_info("throughput: %ld of %ld results after %.1f s",
                                t.distinct, t.n,
                                (double)(bench_now_ns() - t0) / 1e9);
                        next_note += 1000000000LL;
                }
        }
        rd_kafka_flush(prod, 10000);
        if (t.distinct < t.n) {
                kp_err("throughput: only %ld of %ld results within %lld s",
                       t.distinct, t.n, kp_conf_int(b->conf, "timeout-s"));
                goto out;
        }

        secs = (double)(t.last_ns - t0) / 1e9;
        rate = (double)t.n / secs;
        printf("throughput: %ld tasks over %d partitions, sent in %.2f s, "
               "last result at %.2f s: %.0f tasks/s (target >= 2,000); %ld "
               "error results, %ld duplicates, %lld tasks not delivered\n",
               t.n, b->nparts, (double)(t_sent - t0) / 1e9, secs, rate,
               t.errors, t.duplicates, (long long)b->delivery_errors);
        bench_record(b, "throughput.tasks", "%ld", t.n);
        bench_record(b, "throughput.seconds", "%.3f", secs);
        bench_record(b, "throughput.send_seconds", "%.3f",
                     (double)(t_sent - t0) / 1e9);
        bench_record(b, "throughput.tasks_per_s", "%.0f", rate);
        bench_record(b, "throughput.errors", "%ld", t.errors);
        rc = 0;

out:
        if (cons) {
                rd_kafka_consumer_close(cons);
                rd_kafka_destroy(cons);
        }
        if (prod)
                rd_kafka_destroy(prod);
        free(t.seen);
        return rc;
}

/* ---- latency ---- */

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

/* The nearest-rank percentile q (0..1] of sorted v[0..n). */
static double pct(const double *v, int n, double q) {
        int i = (int)(q * n + 0.999999) - 1;

        if (i < 0)
                i = 0;
        if (i >= n)
                i = n - 1;
        return v[i];
}

/* Sends one task and waits for its result. Returns 0 with the end-to-end
 * time and the backend's time in ms, or -1 after logging. */
static int one_sample(bench_t *b, rd_kafka_t *prod, rd_kafka_t *cons, int s,
                      double *e2e, double *backend) {
        char errstr[512], id[64], input[64];
        bench_result_t res;
        int64_t t0, deadline;
        int r;

        snprintf(id, sizeof(id), "b%s-l-%d", b->run, s);
        snprintf(input, sizeof(input), "latency sample %d", s);
        deadline = bench_now_ns() + 30 * 1000000000LL;

        t0 = bench_now_ns();
        if (bench_produce(b, prod, s % b->nparts, id, input, errstr,
                          sizeof(errstr)) == -1) {
                kp_err("%s", errstr);
                return -1;
        }
        while (bench_now_ns() < deadline) {
                r = bench_next_result(cons, 100, &res, errstr, sizeof(errstr));
                if (r == -1) {
                        kp_err("reading results: %s", errstr);
                        return -1;
                }
                if (r == 1 && !strcmp(res.id, id)) {
                        *e2e = (double)(bench_now_ns() - t0) / 1e6;
                        *backend = res.duration_ms;
                        rd_kafka_poll(prod, 0);
                        return 0;
                }
        }
        kp_err("latency: no result for task %s within 30 s", id);
        return -1;
}

static void report_latency(bench_t *b, double *added, double *e2e,
                           double *backend, int n) {
        qsort(added, (size_t)n, sizeof(*added), cmp_double);
        qsort(e2e, (size_t)n, sizeof(*e2e), cmp_double);
        qsort(backend, (size_t)n, sizeof(*backend), cmp_double);

        printf("latency: %d tasks one at a time; added latency (submit to "
               "result minus backend time): p50 %.2f ms, p90 %.2f, p99 "
               "%.2f, max %.2f (target p50 < 5 ms)\n",
               n, pct(added, n, 0.5), pct(added, n, 0.9), pct(added, n, 0.99),
               added[n - 1]);
        printf("latency: submit to result p50 %.2f ms, max %.2f; backend "
               "time p50 %.2f ms, max %.2f\n",
               pct(e2e, n, 0.5), e2e[n - 1], pct(backend, n, 0.5),
               backend[n - 1]);
        bench_record(b, "latency.samples", "%d", n);
        bench_record(b, "latency.p50_ms", "%.2f", pct(added, n, 0.5));
        bench_record(b, "latency.p90_ms", "%.2f", pct(added, n, 0.9));
        bench_record(b, "latency.p99_ms", "%.2f", pct(added, n, 0.99));
        bench_record(b, "latency.max_ms", "%.2f", added[n - 1]);
        bench_record(b, "latency.e2e_p50_ms", "%.2f", pct(e2e, n, 0.5));
        bench_record(b, "latency.backend_p50_ms", "%.2f", pct(backend, n, 0.5));
}

int bench_latency(bench_t *b) {
        int n = (int)kp_conf_int(b->conf, "samples");
        long pause_ms = (long)kp_conf_int(b->conf, "pause-ms");
        double *added, *e2e, *backend;
        rd_kafka_t *prod = NULL, *cons = NULL;
        char errstr[512];
        int s, rc = -1;

        if (bench_warm_up(b, errstr, sizeof(errstr)) == -1) {
                kp_err("warm-up: %s", errstr);
                return -1;
        }
        added = calloc((size_t)n, sizeof(*added));
        e2e = calloc((size_t)n, sizeof(*e2e));
        backend = calloc((size_t)n, sizeof(*backend));
        if (!added || !e2e || !backend)
                abort();

        /* linger.ms=0: a task leaves for the broker at once. */
        cons = bench_results_consumer_new(b, errstr, sizeof(errstr));
        if (cons)
                prod = bench_producer_new(b, "0", errstr, sizeof(errstr));
        if (!cons || !prod) {
                kp_err("%s", errstr);
                goto out;
        }

        for (s = 0; s < n; s++) {
                usleep((useconds_t)pause_ms * 1000);
                if (one_sample(b, prod, cons, s, &e2e[s], &backend[s]) == -1)
                        goto out;
                added[s] = e2e[s] - backend[s];
        }
        report_latency(b, added, e2e, backend, n);
        rc = 0;

out:
        if (cons) {
                rd_kafka_consumer_close(cons);
                rd_kafka_destroy(cons);
        }
        if (prod)
                rd_kafka_destroy(prod);
        free(added);
        free(e2e);
        free(backend);
        return rc;
}

/* ---- resident memory ---- */

/* One process's memory, in kB. */
typedef struct mem {
        long pid;
        long rss;  /* VmRSS: all resident pages */
        long anon; /* RssAnon: its own (not shared library) pages */
} mem_t;

/* A "Name:   N kB" field of /proc/<pid>/status, or -1. */
static long status_kb(const char *text, const char *name) {
        const char *p = strstr(text, name);
        char *end;
        long kb;

        if (!p)
                return -1;
        p += strlen(name);
        kb = strtol(p, &end, 10);
        return end == p ? -1 : kb;
}

/* Fills m->rss and m->anon from /proc. Returns 0, or -1 with errno set
 * (the process is gone, or its status lacks the fields). */
static int read_mem(mem_t *m) {
        char path[64], text[4096];
        size_t n;
        FILE *fp;

        snprintf(path, sizeof(path), "/proc/%ld/status", m->pid);
        fp = fopen(path, "r");
        if (!fp)
                return -1;
        n = fread(text, 1, sizeof(text) - 1, fp);
        fclose(fp);
        text[n] = '\0';
        m->rss = status_kb(text, "\nVmRSS:");
        m->anon = status_kb(text, "\nRssAnon:");
        if (m->rss < 0 || m->anon < 0) {
                errno = ENODATA;
                return -1;
        }
        return 0;
}

/* Reads the memory of each process in the comma-separated `pids` into
 * mv[0..max). Returns the count, or -1 after logging. */
static int read_mems(const char *pids, mem_t *mv, int max) {
        const char *p = pids;
        int n = 0;

        while (*p) {
                char *end;
                long pid = strtol(p, &end, 10);

                if (end == p || pid <= 0 || (*end && *end != ',') || n == max) {
                        kp_err("rss: bad process id list '%s'", pids);
                        return -1;
                }
                mv[n].pid = pid;
                if (read_mem(&mv[n]) == -1) {
                        kp_err("rss: cannot read /proc/%ld/status: %s", pid,
                               strerror(errno));
                        return -1;
                }
                n++;
                p = *end ? end + 1 : end;
        }
        return n;
}

static void record_rss(bench_t *b, const char *label, const mem_t *mv, int n) {
        char key[128], each[64 * 12] = "";
        long max_rss = 0, max_anon = 0;
        int i;

        for (i = 0; i < n; i++) {
                snprintf(each + strlen(each), sizeof(each) - strlen(each),
                         "%s%.1f", i ? "," : "", (double)mv[i].rss / 1024);
                if (mv[i].rss > max_rss)
                        max_rss = mv[i].rss;
                if (mv[i].anon > max_anon)
                        max_anon = mv[i].anon;
        }
        snprintf(key, sizeof(key), "rss.%s.max_mb", label);
        bench_record(b, key, "%.1f", (double)max_rss / 1024);
        snprintf(key, sizeof(key), "rss.%s.anon_max_mb", label);
        bench_record(b, key, "%.1f", (double)max_anon / 1024);
        snprintf(key, sizeof(key), "rss.%s.each_mb", label);
        bench_record(b, key, "%s", each);
        snprintf(key, sizeof(key), "rss.%s.workers", label);
        bench_record(b, key, "%d", n);
}

int bench_rss(bench_t *b) {
        const char *pids = kp_conf_str(b->conf, "worker-pids");
        const char *label = kp_conf_str(b->conf, "label");
        long idle_ms = (long)kp_conf_int(b->conf, "idle-ms");
        long max_rss = 0;
        mem_t mv[64];
        int n, i;

        if (!pids || !*pids) {
                kp_err("rss: --worker-pids PIDS is required");
                return -1;
        }
        usleep((useconds_t)idle_ms * 1000);
        n = read_mems(pids, mv, 64);
        if (n <= 0)
                return -1;

        printf("rss (%s, after %ld ms idle):", label, idle_ms);
        for (i = 0; i < n; i++) {
                printf(" pid %ld %.1f MB (own %.1f)", mv[i].pid,
                       (double)mv[i].rss / 1024, (double)mv[i].anon / 1024);
                if (mv[i].rss > max_rss)
                        max_rss = mv[i].rss;
        }
        printf("; max %.1f MB of %d (target < 20 MB)\n", (double)max_rss / 1024,
               n);
        record_rss(b, label, mv, n);
        return 0;
}
