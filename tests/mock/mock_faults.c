/* mock_faults.c - kpool-mock-faults: a real kpool-worker against
 * librdkafka's mock cluster, with faults injected while it works.
 *
 * Each scenario builds a fresh mock cluster inside this process: three
 * brokers carry the data (<pool>.tasks led by broker 1, <pool>.results,
 * one partition, by broker 2; broker 3 coordinates the group
 * <pool>.workers) and a broker 0 is added because the mock names broker
 * 0 its controller, which the worker's DescribeTopics asks. The scenario
 * produces tasks, starts kpool-stub-llm and kpool-worker (found next to
 * this program) as child processes, injects its faults, and checks what
 * a user of the pool sees: the results in <pool>.results (one per task,
 * none twice) and the offsets the group committed, which must never pass
 * a task whose result is not there, nor stay gone back. Every wait is
 * bounded.
 *
 *   kpool-mock-faults [-v] [-vv] [-k] [SCENARIO...]
 *
 * -v logs progress (-vv: each result and librdkafka's lines too), -k
 * keeps the scenarios' logs (kept anyway for a failed one). Prints
 * "ok N - name" or "not ok N - name: why" per scenario, then "N passed,
 * M failed"; exits 1 on any failure. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "kp_kafka.h"
#include "kp_log.h"
#include "kp_task.h"

/* Kafka protocol request types (ApiKey) the faults are aimed at;
 * librdkafka does not install its protocol header. */
#define MF_API_PRODUCE       0
#define MF_API_OFFSET_COMMIT 8

#define MF_BROKERS        3
#define MF_TASKS_LEADER   1
#define MF_RESULTS_LEADER 2
#define MF_COORDINATOR    3
#define MF_CONTROLLER     0 /* the mock names broker 0 controller */
#define MF_MAX_TASKS      128
#define MF_MAX_PARTS      8
#define MF_WAIT_MS        60000 /* the longest any one wait may take */
#define MF_BEHIND_MS      5000  /* a committed offset gone back, at most */
#define MF_KAFKA_WAIT_MS  5000  /* one request of this program's own */
#define MF_STOP_GRACE_MS  5000  /* SIGTERM to SIGKILL */
#define MF_LOG_TAIL       30    /* worker log lines shown on failure */

typedef struct mf {
        int num;
        const char *name;
        char dir[PATH_MAX]; /* this scenario's logs */
        char pool[64];
        char tasks[256];
        char results[256];
        char group[256];
        int nparts;

        rd_kafka_t *mk; /* owns the mock cluster */
        rd_kafka_mock_cluster_t *mc;
        char brokers[512];
        rd_kafka_t *prod;    /* produces the tasks */
        rd_kafka_t *reader;  /* reads <pool>.results from the start */
        rd_kafka_t *offsets; /* reads the group's committed offsets */

        int ntasks;
        int32_t task_part[MF_MAX_TASKS];
        int64_t task_off[MF_MAX_TASKS];
        int seen[MF_MAX_TASKS];          /* results read, per task */
        int64_t result_at[MF_MAX_TASKS]; /* offset of its first result */
        int64_t end[MF_MAX_PARTS];       /* tasks produced, per partition */
        int64_t committed[MF_MAX_PARTS]; /* last read; -1: none */
        int64_t max_committed[MF_MAX_PARTS];
        int64_t behind_since[MF_MAX_PARTS]; /* went back at (ms), or 0 */

        pid_t stub_pid, worker_pid;
        int stub_port;
        char why[2048]; /* the first failure */
} mf_t;

static char bin_dir[PATH_MAX];
static char work_dir[256];
static int keep_logs;

static int64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

        while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
                ;
}

/* Records the scenario's first failure. Returns -1. */
__attribute__((format(printf, 2, 3))) static int fail(mf_t *f, const char *fmt,
                                                      ...) {
        va_list ap;

        if (f->why[0])
                return -1;
        va_start(ap, fmt);
        vsnprintf(f->why, sizeof(f->why), fmt, ap);
        va_end(ap);
        return -1;
}

/* ---- this program's Kafka clients ---- */

static void rk_log(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf) {
        kp_debug("%s: %s: %s", rd_kafka_name(rk), fac, buf);
}

static void on_task_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                             void *opaque) {
        mf_t *f = opaque;
        int i = (int)(intptr_t)rkm->_private;

        if (rkm->err) {
                fail(f, "task t%03d was not produced: %s", i,
                     rd_kafka_err2str(rkm->err));
                return;
        }
        f->task_off[i] = rkm->offset;
}

/* A client of the mock cluster; props is a NULL-ended list of name,
 * value pairs. Returns the handle, or NULL after fail(). */
static rd_kafka_t *client_new(mf_t *f, rd_kafka_type_t type,
                              const char *const *props) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[512];
        rd_kafka_t *rk;

        rd_kafka_conf_set_log_cb(conf, rk_log);
        rd_kafka_conf_set_opaque(conf, f);
        /* Brokers come back in seconds here: look for them often. */
        if (rd_kafka_conf_set(conf, "reconnect.backoff.max.ms", "500", errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK)
                goto bad;
        if (f->brokers[0] &&
            rd_kafka_conf_set(conf, "bootstrap.servers", f->brokers, errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK)
                goto bad;
        for (; props && props[0]; props += 2)
                if (rd_kafka_conf_set(conf, props[0], props[1], errstr,
                                      sizeof(errstr)) != RD_KAFKA_CONF_OK)
                        goto bad;
        if (type == RD_KAFKA_PRODUCER)
                rd_kafka_conf_set_dr_msg_cb(conf, on_task_delivery);
        rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
        if (rk)
                return rk;
        fail(f, "cannot create a Kafka client: %s", errstr);
        return NULL;
bad:
        rd_kafka_conf_destroy(conf);
        fail(f, "cannot configure a Kafka client: %s", errstr);
        return NULL;
}

/* The mock cluster, its topics, leaders and coordinator, and the three
 * clients of this program. Returns 0, or -1 after fail(). */
static int cluster_open(mf_t *f) {
        static const char *const reader_props[] = {"group.id",
                                                   "kpool-mock-faults-reader",
                                                   "enable.auto.commit",
                                                   "false",
                                                   "auto.offset.reset",
                                                   "earliest",
                                                   "fetch.wait.max.ms",
                                                   "50",
                                                   NULL};
        const char *offsets_props[] = {"group.id", f->group,
                                       "enable.auto.commit", "false", NULL};
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_resp_err_t err;
        int32_t p;

        f->mk = client_new(f, RD_KAFKA_PRODUCER, NULL);
        if (!f->mk)
                return -1;
        f->mc = rd_kafka_mock_cluster_new(f->mk, MF_BROKERS);
        if (!f->mc)
                return fail(f, "cannot create the mock cluster");
        snprintf(f->brokers, sizeof(f->brokers), "%s",
                 rd_kafka_mock_cluster_bootstraps(f->mc));
        /* The mock cluster names broker 0 its controller, and the worker
         * asks the controller about its topics (DescribeTopics). */
        if ((err = rd_kafka_mock_broker_add(f->mc, MF_CONTROLLER)))
                return fail(f, "cannot add broker %d: %s", MF_CONTROLLER,
                            rd_kafka_err2str(err));
        rd_kafka_mock_group_initial_rebalance_delay_ms(f->mc, 0);

        if ((err = rd_kafka_mock_topic_create(f->mc, f->tasks, f->nparts,
                                              MF_BROKERS)) ||
            (err =
                 rd_kafka_mock_topic_create(f->mc, f->results, 1, MF_BROKERS)))
                return fail(f, "cannot create the topics: %s",
                            rd_kafka_err2str(err));
        for (p = 0; p < f->nparts; p++)
                rd_kafka_mock_partition_set_leader(f->mc, f->tasks, p,
                                                   MF_TASKS_LEADER);
        rd_kafka_mock_partition_set_leader(f->mc, f->results, 0,
                                           MF_RESULTS_LEADER);
        rd_kafka_mock_coordinator_set(f->mc, "group", f->group, MF_COORDINATOR);

        f->prod = client_new(f, RD_KAFKA_PRODUCER, NULL);
        f->reader = client_new(f, RD_KAFKA_CONSUMER, reader_props);
        f->offsets = client_new(f, RD_KAFKA_CONSUMER, offsets_props);
        if (!f->prod || !f->reader || !f->offsets)
                return -1;

        list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, f->results, 0)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
        err = rd_kafka_assign(f->reader, list);
        rd_kafka_topic_partition_list_destroy(list);
        if (err)
                return fail(f, "cannot read %s: %s", f->results,
                            rd_kafka_err2str(err));
        return 0;
}

static void cluster_close(mf_t *f) {
        if (f->reader) {
                rd_kafka_consumer_close(f->reader);
                rd_kafka_destroy(f->reader);
        }
        if (f->offsets) {
                rd_kafka_consumer_close(f->offsets);
                rd_kafka_destroy(f->offsets);
        }
        if (f->prod) {
                rd_kafka_purge(f->prod, RD_KAFKA_PURGE_F_QUEUE |
                                            RD_KAFKA_PURGE_F_INFLIGHT);
                rd_kafka_destroy(f->prod);
        }
        if (f->mc)
                rd_kafka_mock_cluster_destroy(f->mc);
        if (f->mk)
                rd_kafka_destroy(f->mk);
}

/* Produces n tasks "tNNN", round-robin over the partitions, and waits
 * for their acknowledgement. Returns 0, or -1 after fail(). */
static int produce_tasks(mf_t *f, int n) {
        char errstr[512], input[64], id[16];
        int i;

        if (f->ntasks + n > MF_MAX_TASKS)
                return fail(f, "too many tasks");
        for (i = f->ntasks; i < f->ntasks + n; i++) {
                int32_t p = i % f->nparts;
                rd_kafka_resp_err_t err;
                char *value;

                snprintf(id, sizeof(id), "t%03d", i);
                snprintf(input, sizeof(input), "question number %d", i);
                value = kp_task_encode(input, NULL, id, NULL, errstr,
                                       sizeof(errstr));
                if (!value)
                        return fail(f, "cannot encode task %s: %s", id, errstr);
                f->task_part[i] = p;
                f->task_off[i] = -1;
                err = rd_kafka_producev(
                    f->prod, RD_KAFKA_V_TOPIC(f->tasks),
                    RD_KAFKA_V_PARTITION(p), RD_KAFKA_V_KEY(id, strlen(id)),
                    RD_KAFKA_V_VALUE(value, strlen(value)),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_OPAQUE((void *)(intptr_t)i), RD_KAFKA_V_END);
                free(value);
                if (err)
                        return fail(f, "cannot produce task %s: %s", id,
                                    rd_kafka_err2str(err));
                f->end[p]++;
        }
        f->ntasks += n;
        rd_kafka_flush(f->prod, 10000);
        if (rd_kafka_outq_len(f->prod) > 0)
                return fail(f, "the tasks were not acknowledged in 10 s");
        if (f->why[0])
                return -1;
        kp_info("scenario %d: %d tasks in %s", f->num, f->ntasks, f->tasks);
        return 0;
}

/* ---- reading results and committed offsets ---- */

/* The index of task "tNNN", or -1 if no such task was produced. */
static int task_index(const mf_t *f, const char *id) {
        char *end;
        long i;

        if (id[0] != 't' || strlen(id) != 4 || !strchr("0123456789", id[1]))
                return -1;
        i = strtol(id + 1, &end, 10);
        return *end || i >= f->ntasks ? -1 : (int)i;
}

static void take_result(mf_t *f, const rd_kafka_message_t *rkm) {
        json_tokener *tok = json_tokener_new();
        json_object *obj, *v;
        const char *id = "?", *status = "?";
        int i;

        obj = json_tokener_parse_ex(tok, rkm->payload, (int)rkm->len);
        json_tokener_free(tok);
        if (!obj || !json_object_is_type(obj, json_type_object)) {
                fail(f, "a result at offset %lld is not a JSON object",
                     (long long)rkm->offset);
                json_object_put(obj);
                return;
        }
        if (json_object_object_get_ex(obj, "id", &v))
                id = json_object_get_string(v);
        if (json_object_object_get_ex(obj, "status", &v))
                status = json_object_get_string(v);
        i = task_index(f, id);
        if (i < 0) {
                fail(f, "a result for a task never submitted: id %s", id);
        } else if (strcmp(status, "ok")) {
                fail(f, "task %s failed: %s", id,
                     json_object_to_json_string(obj));
        } else {
                int64_t off = -2;
                int32_t part = -2;

                if (json_object_object_get_ex(obj, "partition", &v))
                        part = json_object_get_int(v);
                if (json_object_object_get_ex(obj, "offset", &v))
                        off = json_object_get_int64(v);
                if (part != f->task_part[i] || off != f->task_off[i])
                        fail(f,
                             "the result of task %s names partition %d "
                             "offset %lld, the task is at %d/%lld",
                             id, part, (long long)off, f->task_part[i],
                             (long long)f->task_off[i]);
                if (!f->seen[i]++)
                        f->result_at[i] = rkm->offset;
                kp_debug("result %d of task %s at results offset %lld",
                         f->seen[i], id, (long long)rkm->offset);
        }
        json_object_put(obj);
}

/* Reads what results arrived, waiting up to wait_ms for the first. */
static void read_results(mf_t *f, int wait_ms) {
        rd_kafka_message_t *rkm;

        for (rkm = rd_kafka_consumer_poll(f->reader, wait_ms); rkm;
             rkm = rd_kafka_consumer_poll(f->reader, 0)) {
                if (rkm->err)
                        kp_debug("reading %s: %s", f->results,
                                 rd_kafka_message_errstr(rkm));
                else
                        take_result(f, rkm);
                rd_kafka_message_destroy(rkm);
        }
}

/* Refreshes f->committed; a failed query keeps the last values (the
 * faults may hit this program's requests too). */
static void read_committed(mf_t *f) {
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_resp_err_t err;
        int32_t p;

        list = rd_kafka_topic_partition_list_new(f->nparts);
        for (p = 0; p < f->nparts; p++)
                rd_kafka_topic_partition_list_add(list, f->tasks, p);
        err = rd_kafka_committed(f->offsets, list, MF_KAFKA_WAIT_MS);
        if (err) {
                kp_info("reading the committed offsets: %s",
                        rd_kafka_err2str(err));
        } else {
                for (p = 0; p < list->cnt; p++) {
                        rd_kafka_topic_partition_t *el = &list->elems[p];

                        if (el->err || el->partition >= f->nparts)
                                continue;
                        f->committed[el->partition] =
                            el->offset < 0 ? -1 : el->offset;
                        if (f->committed[el->partition] >
                            f->max_committed[el->partition])
                                f->max_committed[el->partition] =
                                    f->committed[el->partition];
                }
        }
        rd_kafka_topic_partition_list_destroy(list);
}

static const char *describe_status(int status, char *buf, size_t size) {
        if (WIFEXITED(status))
                snprintf(buf, size, "exit %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
                snprintf(buf, size, "killed by signal %d", WTERMSIG(status));
        else
                snprintf(buf, size, "status %d", status);
        return buf;
}

static int read_to_end(mf_t *f, int wait_ms, char *buf, size_t size);

/* The worker's promise: the group's committed offset lies past a task
 * only once the task's result is durable. A task below the committed
 * offset without a result read yet makes it read <pool>.results to its
 * end (the commit may be newer than what was read); if it cannot be read
 * now, the next look checks again. Returns 0, or -1 after fail(). */
static int check_durable(mf_t *f) {
        char why[600];
        int i, caught_up = 0;

        for (i = 0; i < f->ntasks; i++) {
                int32_t p = f->task_part[i];

                if (f->seen[i] || f->task_off[i] < 0 ||
                    f->task_off[i] >= f->committed[p])
                        continue;
                if (!caught_up) {
                        if (read_to_end(f, 2000, why, sizeof(why)) == -1) {
                                kp_info("cannot check the commit yet: %s", why);
                                return 0;
                        }
                        caught_up = 1;
                        if (f->seen[i])
                                continue;
                }
                return fail(f,
                            "the group committed offset %lld of %s [%d], "
                            "past task t%03d at offset %lld whose result is "
                            "not in %s",
                            (long long)f->committed[p], f->tasks, (int)p, i,
                            (long long)f->task_off[i], f->results);
        }
        return 0;
}

/* A group's committed offset may go back: librdkafka retries a failed
 * commit, which may land after a newer one. The worker must then commit
 * again. Returns 0, or -1 after fail() once an offset stayed behind
 * for MF_BEHIND_MS. */
static int check_not_behind(mf_t *f) {
        int64_t now = now_ms();
        int32_t p;

        for (p = 0; p < f->nparts; p++) {
                if (f->committed[p] >= f->max_committed[p]) {
                        f->behind_since[p] = 0;
                        continue;
                }
                if (!f->behind_since[p]) {
                        kp_info("scenario %d: the committed offset of %s [%d] "
                                "went back from %lld to %lld",
                                f->num, f->tasks, (int)p,
                                (long long)f->max_committed[p],
                                (long long)f->committed[p]);
                        f->behind_since[p] = now;
                }
                if (now - f->behind_since[p] > MF_BEHIND_MS)
                        return fail(
                            f,
                            "the group's committed offset of %s "
                            "[%d] went back from %lld to %lld (an "
                            "older commit landed after a newer one) "
                            "and kpool-worker left it there for %d "
                            "s",
                            f->tasks, (int)p, (long long)f->max_committed[p],
                            (long long)f->committed[p], MF_BEHIND_MS / 1000);
        }
        return 0;
}

/* One look at the world: results, committed offsets (checked against
 * the results, and for going back), the worker still running. Returns
 * 0, or -1 once the scenario failed. */
static int look(mf_t *f, int wait_ms) {
        char how[64];
        int status;

        read_results(f, wait_ms);
        read_committed(f);
        check_durable(f);
        check_not_behind(f);
        if (f->worker_pid > 0 &&
            waitpid(f->worker_pid, &status, WNOHANG) == f->worker_pid) {
                f->worker_pid = 0;
                fail(f, "kpool-worker ended by itself (%s)",
                     describe_status(status, how, sizeof(how)));
        }
        return f->why[0] ? -1 : 0;
}

/* How many of tasks [0, upto) have no result yet; their ids go to buf. */
static int missing(const mf_t *f, int upto, char *buf, size_t size) {
        size_t len = 0;
        int i, n = 0;

        buf[0] = '\0';
        for (i = 0; i < upto; i++) {
                if (f->seen[i])
                        continue;
                if (++n <= 8 && len < size)
                        len += (size_t)snprintf(buf + len, size - len,
                                                "%st%03d", n > 1 ? " " : "", i);
        }
        if (n > 8 && len < size)
                snprintf(buf + len, size - len, " ...");
        return n;
}

/* "p0 10/10 p1 3/10": committed against end, per partition. */
static const char *describe_commits(const mf_t *f, char *buf, size_t size) {
        size_t len = 0;
        int32_t p;

        buf[0] = '\0';
        for (p = 0; p < f->nparts && len < size; p++)
                len += (size_t)snprintf(
                    buf + len, size - len, "%sp%d %lld/%lld", p ? " " : "",
                    (int)p, (long long)f->committed[p], (long long)f->end[p]);
        return buf;
}

/* The end offset of <pool>.results, or -1 if it cannot be read. */
static int64_t results_end(mf_t *f) {
        int64_t lo, hi;

        if (rd_kafka_query_watermark_offsets(f->reader, f->results, 0, &lo, &hi,
                                             MF_KAFKA_WAIT_MS))
                return -1;
        return hi;
}

static int commits_done(const mf_t *f) {
        int32_t p;

        for (p = 0; p < f->nparts; p++)
                if (f->committed[p] < f->end[p])
                        return 0;
        return 1;
}

/* Waits until every task so far has a result and the group committed
 * the end of every partition. Returns 0, or -1 after fail(). */
static int wait_done(mf_t *f, const char *what) {
        int64_t start = now_ms();
        char ids[256], commits[256];
        int left;

        for (;;) {
                if (look(f, 100) == -1)
                        return -1;
                left = missing(f, f->ntasks, ids, sizeof(ids));
                if (!left && commits_done(f))
                        return 0;
                if (now_ms() - start > MF_WAIT_MS)
                        break;
        }
        if (left)
                return fail(f,
                            "%s: after %d s, %d of %d tasks have no result "
                            "(%s) in the %lld records of %s; committed %s",
                            what, MF_WAIT_MS / 1000, left, f->ntasks, ids,
                            (long long)results_end(f), f->results,
                            describe_commits(f, commits, sizeof(commits)));
        return fail(f,
                    "%s: after %d s every task has a result but the "
                    "committed offsets did not reach the end: %s",
                    what, MF_WAIT_MS / 1000,
                    describe_commits(f, commits, sizeof(commits)));
}

/* Waits until tasks [0, upto) have results. */
static int wait_results(mf_t *f, int upto, const char *what) {
        int64_t start = now_ms();
        char ids[256];

        while (missing(f, upto, ids, sizeof(ids))) {
                if (look(f, 100) == -1)
                        return -1;
                if (now_ms() - start > MF_WAIT_MS)
                        return fail(f, "%s: after %d s no result for %s", what,
                                    MF_WAIT_MS / 1000, ids);
        }
        return 0;
}

/* Reads <pool>.results up to the end it has now. Returns 0, or -1 if
 * the end cannot be learnt or reached within wait_ms (reason in buf). */
static int read_to_end(mf_t *f, int wait_ms, char *buf, size_t size) {
        rd_kafka_topic_partition_list_t *list;
        int64_t lo, hi, pos = -1, start = now_ms();
        rd_kafka_resp_err_t err;

        err = rd_kafka_query_watermark_offsets(f->reader, f->results, 0, &lo,
                                               &hi, wait_ms);
        if (err) {
                snprintf(buf, size, "cannot read the end of %s: %s", f->results,
                         rd_kafka_err2str(err));
                return -1;
        }
        list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, f->results, 0);
        while (now_ms() - start < wait_ms) {
                rd_kafka_position(f->reader, list);
                pos = list->elems[0].offset;
                if (pos >= hi)
                        break;
                read_results(f, 100);
        }
        rd_kafka_topic_partition_list_destroy(list);
        if (pos < hi) {
                snprintf(buf, size, "read %s only up to offset %lld of %lld",
                         f->results, (long long)pos, (long long)hi);
                return -1;
        }
        return 0;
}

/* Reads <pool>.results to its end, then checks each task has exactly
 * one result. Returns 0, or -1 after fail(). */
static int exactly_once(mf_t *f) {
        char dups[256], why[600];
        size_t len = 0;
        int i, n = 0;

        if (read_to_end(f, 10000, why, sizeof(why)) == -1)
                return fail(f, "%s", why);
        if (f->why[0])
                return -1;

        dups[0] = '\0';
        for (i = 0; i < f->ntasks; i++) {
                if (f->seen[i] == 1)
                        continue;
                n++;
                if (len < sizeof(dups))
                        len += (size_t)snprintf(
                            dups + len, sizeof(dups) - len, "%st%03d: %d",
                            n > 1 ? ", " : "", i, f->seen[i]);
        }
        if (n)
                return fail(f,
                            "%d of %d tasks do not have exactly one result "
                            "in %s: %s",
                            n, f->ntasks, f->results, dups);
        return 0;
}

/* ---- child processes ---- */

/* Forks and runs argv; the child writes stdout to out_path and stderr
 * to err_path (NULL: out_path too), keeps no other file descriptor,
 * loses every KPOOL_* variable (flags say all it needs), gets a test
 * API key, and dies with this process. Everything is prepared before
 * the fork: librdkafka's threads run here. Returns the pid, or -1. */
static pid_t spawn(char *const argv[], const char *out_path,
                   const char *err_path) {
        extern char **environ;
        static char key[] = "ANTHROPIC_API_KEY=test";
        char **envp, **e;
        size_t n = 0;
        int out, err;
        pid_t pid;

        for (e = environ; *e; e++)
                n++;
        envp = calloc(n + 2, sizeof(*envp));
        if (!envp)
                abort();
        n = 0;
        for (e = environ; *e; e++)
                if (strncmp(*e, "KPOOL_", 6) &&
                    strncmp(*e, "ANTHROPIC_API_KEY=", 18))
                        envp[n++] = *e;
        envp[n++] = key;

        out = open(out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        err = err_path ? open(err_path,
                              O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)
                       : out;
        if (out < 0 || err < 0) {
                kp_err("cannot open the log of %s: %s", argv[0],
                       strerror(errno));
                pid = -1;
                goto out;
        }

        pid = fork();
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                dup2(out, 1);
                dup2(err, 2);
                /* The mock brokers' sockets live in this process: a copy
                 * held by a child would keep a "down" broker's
                 * connections and listener open. */
                closefrom(3);
                execve(argv[0], argv, envp);
                _exit(127);
        }
out:
        if (out >= 0)
                close(out);
        if (err >= 0 && err != out)
                close(err);
        free(envp);
        return pid;
}

/* Sends SIGTERM, then SIGKILL after the grace period. Returns the wait
 * status, or -1 if there was no child. */
static int stop_child(pid_t *pidp, int grace_ms) {
        int64_t start = now_ms();
        int status = -1;
        pid_t pid = *pidp;

        if (pid <= 0)
                return -1;
        *pidp = 0;
        kill(pid, SIGTERM);
        while (now_ms() - start < grace_ms) {
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return status;
                sleep_ms(20);
        }
        kp_warn("pid %d ignored SIGTERM for %d ms; killing it", (int)pid,
                grace_ms);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return status;
}

static int start_stub(mf_t *f, long latency_ms) {
        char path[PATH_MAX + 32], out[PATH_MAX + 32], err[PATH_MAX + 32];
        char latency[32], line[256];
        char *argv[] = {path, "--port", "0", "--latency-ms", latency, NULL};
        int64_t start = now_ms();

        snprintf(path, sizeof(path), "%s/kpool-stub-llm", bin_dir);
        snprintf(out, sizeof(out), "%s/stub.out", f->dir);
        snprintf(err, sizeof(err), "%s/stub.log", f->dir);
        snprintf(latency, sizeof(latency), "%ld", latency_ms);
        f->stub_pid = spawn(argv, out, err);
        if (f->stub_pid < 0)
                return fail(f, "fork: %s", strerror(errno));

        while (now_ms() - start < 10000) {
                FILE *fp = fopen(out, "r");

                while (fp && fgets(line, sizeof(line), fp)) {
                        const char *colon = strrchr(line, ':');

                        if (!strncmp(line, "listening on ", 13) && colon) {
                                f->stub_port = (int)strtol(colon + 1, NULL, 10);
                                break;
                        }
                }
                if (fp)
                        fclose(fp);
                if (f->stub_port > 0)
                        return 0;
                sleep_ms(20);
        }
        return fail(f, "kpool-stub-llm did not say where it listens (see %s)",
                    err);
}

/* Starts kpool-worker "w1" of the pool; extra is a NULL-ended list of
 * further arguments. */
static int start_worker(mf_t *f, int concurrency, const char *const *extra) {
        char path[PATH_MAX + 32], log[PATH_MAX + 32], url[128], conc[16];
        char *argv[64];
        int n = 0;

        snprintf(path, sizeof(path), "%s/kpool-worker", bin_dir);
        snprintf(log, sizeof(log), "%s/worker.log", f->dir);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/messages",
                 f->stub_port);
        snprintf(conc, sizeof(conc), "%d", concurrency);
        argv[n++] = path;
        argv[n++] = "--brokers";
        argv[n++] = f->brokers;
        argv[n++] = "--pool";
        argv[n++] = f->pool;
        argv[n++] = "--name";
        argv[n++] = "w1";
        argv[n++] = "--backend-url";
        argv[n++] = url;
        argv[n++] = "--concurrency";
        argv[n++] = conc;
        argv[n++] = "--log-level";
        argv[n++] = "debug";
        /* The mock cluster checks the sequence numbers of an idempotent
         * producer only when it is transactional: a batch sent behind a
         * failed one would be taken out of order (a real broker refuses
         * it), and librdkafka would count the failed one as delivered.
         * One request in flight keeps the mock honest. */
        argv[n++] = "-X";
        argv[n++] = "producer.max.in.flight.requests.per.connection=1";
        for (; extra && *extra && n < 63; extra++)
                argv[n++] = (char *)*extra;
        argv[n] = NULL;

        f->worker_pid = spawn(argv, log, NULL);
        if (f->worker_pid < 0)
                return fail(f, "fork: %s", strerror(errno));
        kp_info("scenario %d: kpool-worker pid %d, log %s", f->num,
                (int)f->worker_pid, log);
        return 0;
}

/* Lines of the worker's log that contain `text`. */
static int worker_log_count(const mf_t *f, const char *text) {
        char path[PATH_MAX + 32], line[4096];
        FILE *fp;
        int n = 0;

        snprintf(path, sizeof(path), "%s/worker.log", f->dir);
        fp = fopen(path, "r");
        if (!fp)
                return 0;
        while (fgets(line, sizeof(line), fp))
                if (strstr(line, text))
                        n++;
        fclose(fp);
        return n;
}

/* Prints the tail of the worker's log as "# " lines. */
static void show_worker_log(const mf_t *f) {
        char path[PATH_MAX + 32], line[4096];
        char *ring[MF_LOG_TAIL] = {0};
        int n = 0, i;
        FILE *fp;

        snprintf(path, sizeof(path), "%s/worker.log", f->dir);
        fp = fopen(path, "r");
        if (!fp)
                return;
        while (fgets(line, sizeof(line), fp)) {
                free(ring[n % MF_LOG_TAIL]);
                ring[n % MF_LOG_TAIL] = strdup(line);
                n++;
        }
        fclose(fp);
        printf("# last lines of %s:\n", path);
        for (i = n > MF_LOG_TAIL ? n - MF_LOG_TAIL : 0; i < n; i++) {
                char *l = ring[i % MF_LOG_TAIL];

                if (l)
                        printf("#   %s%s", l,
                               l[strlen(l) - 1] == '\n' ? "" : "\n");
        }
        for (i = 0; i < MF_LOG_TAIL; i++)
                free(ring[i]);
}

/* ---- scenarios ---- */

/* Produce requests for results fail with a retriable error a dozen times
 * while tasks run: librdkafka retries them, and the idempotent producer
 * writes each result once. */
static int sc_produce_errors(mf_t *f) {
        const int errors = 12;
        size_t left = 0;
        int i;

        if (produce_tasks(f, 30) == -1 || start_stub(f, 20) == -1)
                return -1;
        for (i = 0; i < errors; i++)
                rd_kafka_mock_broker_push_request_error_rtts(
                    f->mc, MF_RESULTS_LEADER, MF_API_PRODUCE, 1,
                    RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, 0);
        if (start_worker(f, 4, NULL) == -1 ||
            wait_done(f, "with Produce errors on the results") == -1)
                return -1;
        rd_kafka_mock_broker_error_stack_cnt(f->mc, MF_RESULTS_LEADER,
                                             MF_API_PRODUCE, &left);
        if (left)
                return fail(f,
                            "only %d of %d injected Produce errors were "
                            "met; the fault did not happen",
                            errors - (int)left, errors);
        return exactly_once(f);
}

/* Counts requests of one type the mock cluster saw since tracking
 * started. */
static int count_requests(mf_t *f, int16_t api_key) {
        rd_kafka_mock_request_t **reqs;
        size_t cnt, i;
        int n = 0;

        reqs = rd_kafka_mock_get_requests(f->mc, &cnt);
        for (i = 0; i < cnt; i++)
                if (rd_kafka_mock_request_api_key(reqs[i]) == api_key)
                        n++;
        rd_kafka_mock_request_destroy_array(reqs, cnt);
        return n;
}

/* Makes the next `n` OffsetCommit requests fail with `err`. */
static void fail_commits(mf_t *f, int n, rd_kafka_resp_err_t err) {
        while (n-- > 0)
                rd_kafka_mock_push_request_errors(f->mc, MF_API_OFFSET_COMMIT,
                                                  1, err);
}

/* The group's coordinator moves to another broker and the next commits
 * fail with NOT_COORDINATOR while tasks stream in (librdkafka finds the
 * new coordinator and retries, or reports the failure); then the last
 * commit before the worker falls idle is refused with
 * REBALANCE_IN_PROGRESS, which librdkafka leaves to the worker. Each
 * failed commit is made again, and nothing is lost. */
static int sc_lost_coordinator(mf_t *f) {
        const int errors = 6;
        int commits;

        if (produce_tasks(f, 12) == -1 || start_stub(f, 100) == -1 ||
            start_worker(f, 1, NULL) == -1 ||
            wait_results(f, 2, "before the coordinator moved") == -1)
                return -1;

        rd_kafka_mock_start_request_tracking(f->mc);
        rd_kafka_mock_coordinator_set(f->mc, "group", f->group,
                                      MF_TASKS_LEADER);
        fail_commits(f, errors, RD_KAFKA_RESP_ERR_NOT_COORDINATOR);
        kp_info("scenario %d: coordinator moved, %d commits to fail", f->num,
                errors);
        if (produce_tasks(f, 12) == -1 ||
            wait_done(f, "after the coordinator moved") == -1)
                return -1;
        commits = count_requests(f, MF_API_OFFSET_COMMIT);
        if (commits <= errors)
                return fail(f,
                            "the mock cluster saw only %d OffsetCommit "
                            "requests after the move, fewer than the %d "
                            "failures injected plus one that succeeded",
                            commits, errors);

        fail_commits(f, 2, RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS);
        if (produce_tasks(f, 1) == -1 ||
            wait_done(f, "after the idle worker's commit was refused") == -1)
                return -1;
        if (!worker_log_count(f, "failed: Broker: Group rebalance in progress"))
                return fail(f, "kpool-worker never saw its commit refused");
        return exactly_once(f);
}

/* Broker 1 (leader of the tasks) goes down and comes back, then broker
 * 2 (leader of the results) does, each while tasks are in flight. */
static int sc_broker_down(mf_t *f) {
        if (produce_tasks(f, 9) == -1 || start_stub(f, 100) == -1 ||
            start_worker(f, 2, NULL) == -1 ||
            wait_results(f, 2, "before any broker went down") == -1)
                return -1;

        kp_info("scenario %d: broker %d (tasks) down", f->num, MF_TASKS_LEADER);
        rd_kafka_mock_broker_set_down(f->mc, MF_TASKS_LEADER);
        sleep_ms(3000);
        rd_kafka_mock_broker_set_up(f->mc, MF_TASKS_LEADER);
        kp_info("scenario %d: broker %d (tasks) up", f->num, MF_TASKS_LEADER);
        if (produce_tasks(f, 9) == -1 ||
            wait_done(f, "after the tasks' leader came back") == -1)
                return -1;

        if (produce_tasks(f, 9) == -1 ||
            wait_results(f, 20, "before the results' leader went down") == -1)
                return -1;
        kp_info("scenario %d: broker %d (results) down", f->num,
                MF_RESULTS_LEADER);
        rd_kafka_mock_broker_set_down(f->mc, MF_RESULTS_LEADER);
        sleep_ms(3000);
        rd_kafka_mock_broker_set_up(f->mc, MF_RESULTS_LEADER);
        kp_info("scenario %d: broker %d (results) up", f->num,
                MF_RESULTS_LEADER);
        if (wait_done(f, "after the results' leader came back") == -1)
                return -1;
        return exactly_once(f);
}

/* Checks that the committed offset of partition 0 never passes `limit`
 * (the offset of a task whose result is undelivered): until the worker
 * logs `until` (NULL: at once), then for hold_ms more. */
static int hold_commit(mf_t *f, int64_t limit, const char *until, int hold_ms) {
        int64_t start = now_ms(), since = until ? -1 : start;

        while (since < 0 || now_ms() - since < hold_ms) {
                if (look(f, 100) == -1)
                        return -1;
                if (f->max_committed[0] > limit)
                        return fail(f,
                                    "the group committed offset %lld of %s "
                                    "[0] while the result of the task at "
                                    "offset %lld was not delivered",
                                    (long long)f->max_committed[0], f->tasks,
                                    (long long)limit);
                if (since < 0 && worker_log_count(f, until))
                        since = now_ms();
                if (since < 0 && now_ms() - start > 20000)
                        return fail(f,
                                    "kpool-worker never logged \"%s\" in "
                                    "20 s",
                                    until);
        }
        return 0;
}

/* The results' leader is down longer than message.timeout.ms: the
 * deliveries fail, the tasks' offsets stay uncommitted, and once the
 * broker is back the results arrive and the commit moves on. */
static int sc_undeliverable(mf_t *f) {
        static const char *const extra[] = {
            "-X", "producer.message.timeout.ms=3000", NULL};
        int64_t held;

        if (produce_tasks(f, 2) == -1 || start_stub(f, 20) == -1 ||
            start_worker(f, 1, extra) == -1 ||
            wait_done(f, "before the results' leader went down") == -1)
                return -1;

        held = f->end[0];
        rd_kafka_mock_broker_set_down(f->mc, MF_RESULTS_LEADER);
        kp_info("scenario %d: broker %d (results) down", f->num,
                MF_RESULTS_LEADER);
        if (produce_tasks(f, 2) == -1 ||
            hold_commit(f, held, "result not delivered", 2000) == -1)
                return -1;

        rd_kafka_mock_broker_set_up(f->mc, MF_RESULTS_LEADER);
        kp_info("scenario %d: broker %d (results) up", f->num,
                MF_RESULTS_LEADER);
        if (wait_done(f, "after the results' leader came back") == -1)
                return -1;
        return exactly_once(f);
}

/* Produce requests fail with an error librdkafka does not retry: each
 * delivery report says so and the worker produces the result again
 * later. Meanwhile the results of the next tasks, on every partition,
 * get through and are committed; the commit of the refused tasks'
 * partitions must still wait for them (look() checks every commit
 * against the results read). */
static int sc_rejected(mf_t *f) {
        /* Commits come often, while a refused result waits 500 ms. */
        static const char *const extra[] = {"--commit-interval-ms", "100",
                                            NULL};
        const int errors = 2;
        int64_t start;
        size_t left = 0;
        int i, first;

        if (produce_tasks(f, 3) == -1 || start_stub(f, 20) == -1 ||
            start_worker(f, 1, extra) == -1 ||
            wait_done(f, "before Produce was refused") == -1)
                return -1;

        first = f->ntasks;
        for (i = 0; i < errors; i++)
                rd_kafka_mock_broker_push_request_error_rtts(
                    f->mc, MF_RESULTS_LEADER, MF_API_PRODUCE, 1,
                    RD_KAFKA_RESP_ERR_INVALID_RECORD, 0);
        if (produce_tasks(f, 9) == -1)
                return -1;
        start = now_ms();
        while (!rd_kafka_mock_broker_error_stack_cnt(f->mc, MF_RESULTS_LEADER,
                                                     MF_API_PRODUCE, &left) &&
               left > 0) {
                if (look(f, 100) == -1)
                        return -1;
                if (now_ms() - start > MF_WAIT_MS)
                        return fail(f,
                                    "after %d s, %d of %d refusals were "
                                    "not met",
                                    MF_WAIT_MS / 1000, (int)left, errors);
        }
        if (wait_done(f, "after Produce was accepted again") == -1 ||
            exactly_once(f) == -1)
                return -1;
        if (!worker_log_count(f, "result not delivered"))
                return fail(f, "kpool-worker never logged a refused result");
        /* The point of the scenario: later results landed first. */
        for (i = first + 1; i < f->ntasks; i++)
                if (f->result_at[i] < f->result_at[first])
                        return 0;
        return fail(f,
                    "no result landed before the refused one of t%03d, so "
                    "the commit was never tempted to pass it",
                    first);
}

/* A commit fails with NOT_COORDINATOR, its answer held back 3 s; the
 * worker's next commit, of a higher offset, is applied meanwhile, and
 * librdkafka's retry of the first sets the group's offset back. The
 * worker must commit again (look() fails an offset left behind). */
static int sc_reordered_commit(mf_t *f) {
        static const char *const extra[] = {"--commit-interval-ms", "100",
                                            NULL};
        int64_t start;
        size_t left = 0;

        if (produce_tasks(f, 2) == -1 || start_stub(f, 20) == -1 ||
            start_worker(f, 1, extra) == -1 ||
            wait_done(f, "before the commits") == -1)
                return -1;

        rd_kafka_mock_start_request_tracking(f->mc);
        rd_kafka_mock_broker_push_request_error_rtts(
            f->mc, MF_COORDINATOR, MF_API_OFFSET_COMMIT, 1,
            RD_KAFKA_RESP_ERR_NOT_COORDINATOR, 3000);
        if (produce_tasks(f, 1) == -1)
                return -1;
        start = now_ms();
        while (count_requests(f, MF_API_OFFSET_COMMIT) == 0) {
                if (look(f, 50) == -1)
                        return -1;
                if (now_ms() - start > 10000)
                        return fail(f, "kpool-worker did not commit task "
                                       "t002 within 10 s");
        }
        kp_info("scenario %d: a commit is failing slowly; one more task",
                f->num);
        if (produce_tasks(f, 1) == -1 ||
            wait_done(f, "after an older commit was retried") == -1)
                return -1;
        rd_kafka_mock_broker_error_stack_cnt(f->mc, MF_COORDINATOR,
                                             MF_API_OFFSET_COMMIT, &left);
        if (left)
                return fail(f, "the slow NOT_COORDINATOR was never met");
        /* The retry lands about 3 s after the first try: watch the
         * group's offset well past that. */
        start = now_ms();
        while (now_ms() - start < 5000)
                if (look(f, 100) == -1)
                        return -1;
        if (f->committed[0] < f->end[0])
                return fail(f,
                            "the group's committed offset of %s [0] went "
                            "back from %lld to %lld (librdkafka's retry of "
                            "an older commit landed after a newer one) and "
                            "kpool-worker did not commit again",
                            f->tasks, (long long)f->max_committed[0],
                            (long long)f->committed[0]);
        return exactly_once(f);
}

typedef struct mf_scenario {
        const char *name;
        int nparts;
        int (*run)(mf_t *f);
} mf_scenario_t;

static const mf_scenario_t scenarios[] = {
    {"retriable Produce errors on results: one result per task", 3,
     sc_produce_errors},
    {"group coordinator lost, a commit refused: commits made again", 3,
     sc_lost_coordinator},
    {"tasks' and results' leaders down and up: the worker carries on", 3,
     sc_broker_down},
    {"results undeliverable past message.timeout.ms: no commit until "
     "delivered",
     1, sc_undeliverable},
    {"Produce refused (not retriable): produced again, no commit until "
     "delivered",
     3, sc_rejected},
    {"an older commit retried after a newer one: the worker commits again", 1,
     sc_reordered_commit},
};

#define MF_NSCENARIOS ((int)(sizeof(scenarios) / sizeof(scenarios[0])))

static void remove_dir(const char *dir) {
        static const char *const files[] = {"worker.log", "stub.out",
                                            "stub.log"};
        char path[PATH_MAX + 32];
        size_t i;

        for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
                unlink(path);
        }
        rmdir(dir);
}

/* Runs scenario num (1-based). Returns 0 if it passed. */
static int run_scenario(int num) {
        const mf_scenario_t *sc = &scenarios[num - 1];
        mf_t *f = calloc(1, sizeof(*f));
        int64_t start = now_ms();
        char how[64];
        int status, ok;
        int32_t p;

        if (!f)
                abort();
        f->num = num;
        f->name = sc->name;
        f->nparts = sc->nparts;
        for (p = 0; p < MF_MAX_PARTS; p++)
                f->committed[p] = f->max_committed[p] = -1;
        snprintf(f->pool, sizeof(f->pool), "mf%d-%d", num, (int)getpid());
        kp_kafka_topic_tasks(f->pool, f->tasks, sizeof(f->tasks));
        kp_kafka_topic_results(f->pool, f->results, sizeof(f->results));
        kp_kafka_group(f->pool, f->group, sizeof(f->group));
        snprintf(f->dir, sizeof(f->dir), "%s/%d", work_dir, num);
        if (mkdir(f->dir, 0755) == -1)
                fail(f, "mkdir %s: %s", f->dir, strerror(errno));

        kp_info("scenario %d: %s", num, sc->name);
        if (!f->why[0] && cluster_open(f) == 0)
                sc->run(f);

        status = stop_child(&f->worker_pid, MF_STOP_GRACE_MS);
        if (status != -1)
                kp_info("scenario %d: kpool-worker stopped (%s)", num,
                        describe_status(status, how, sizeof(how)));
        stop_child(&f->stub_pid, MF_STOP_GRACE_MS);
        cluster_close(f);

        ok = !f->why[0];
        if (ok) {
                printf("ok %d - %s (%.1f s)\n", num, sc->name,
                       (double)(now_ms() - start) / 1000);
                if (!keep_logs)
                        remove_dir(f->dir);
        } else {
                printf("not ok %d - %s: %s\n", num, sc->name, f->why);
                show_worker_log(f);
                printf("# logs kept in %s\n", f->dir);
        }
        fflush(stdout);
        free(f);
        return ok ? 0 : -1;
}

static int find_bin_dir(void) {
        ssize_t n = readlink("/proc/self/exe", bin_dir, sizeof(bin_dir) - 1);
        char *slash;

        if (n <= 0)
                return -1;
        bin_dir[n] = '\0';
        slash = strrchr(bin_dir, '/');
        if (!slash)
                return -1;
        *slash = '\0';
        return 0;
}

int main(int argc, char **argv) {
        int run[MF_NSCENARIOS + 1] = {0};
        int i, any = 0, passed = 0, failed = 0, verbose = 0;

        kp_log_init("kpool-mock-faults", NULL);
        for (i = 1; i < argc; i++) {
                char *end;
                long n;

                if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "-vv")) {
                        verbose += (int)strlen(argv[i]) - 1;
                        continue;
                }
                if (!strcmp(argv[i], "-k")) {
                        keep_logs = 1;
                        continue;
                }
                n = strtol(argv[i], &end, 10);
                if (*end || n < 1 || n > MF_NSCENARIOS) {
                        fprintf(stderr,
                                "usage: kpool-mock-faults [-v] [-vv] [-k] "
                                "[SCENARIO 1-%d]...\n",
                                MF_NSCENARIOS);
                        return 2;
                }
                run[n] = any = 1;
        }
        kp_log_set_level_name(verbose >= 2   ? "debug"
                              : verbose == 1 ? "info"
                                             : "warn");
        signal(SIGPIPE, SIG_IGN);

        if (find_bin_dir() == -1) {
                kp_err("cannot tell where this program lives");
                return 1;
        }
        snprintf(work_dir, sizeof(work_dir), "/tmp/kpool-mock-faults.XXXXXX");
        if (!mkdtemp(work_dir)) {
                kp_err("mkdtemp: %s", strerror(errno));
                return 1;
        }

        for (i = 1; i <= MF_NSCENARIOS; i++) {
                if (any && !run[i])
                        continue;
                if (run_scenario(i) == 0)
                        passed++;
                else
                        failed++;
        }
        if (!failed && !keep_logs)
                rmdir(work_dir);
        printf("%d passed, %d failed\n", passed, failed);
        return failed ? 1 : 0;
}
