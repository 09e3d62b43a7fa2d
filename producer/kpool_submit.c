/* kpool_submit.c - `kpool submit`: read tasks, check them all, pick each
 * one's partition, publish, and print the ids the broker acknowledged. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "kp_admin.h"
#include "kp_exit.h"
#include "kp_log.h"
#include "kp_task.h"
#include "kpool.h"

typedef enum {
        TASK_PENDING,
        TASK_ACKED,
        TASK_FAILED,
} task_state_t;

typedef struct submit_task {
        int lineno; /* line, or argument number */
        char *id;
        char *value; /* the encoded task */
        size_t len;
        int32_t partition;
        task_state_t state;
        rd_kafka_resp_err_t err;
} submit_task_t;

typedef struct submit {
        kpool_ctx_t *ctx;
        const char *source; /* NULL: arguments; "stdin" or a path */
        const char *format; /* auto, text or json */
        submit_task_t *tasks;
        size_t n, cap;
        size_t printed; /* tasks[0..printed) are reported on stdout */
} submit_t;

/* Where a task came from, for messages: "argument 2", "stdin line 7". */
static const char *task_where(const submit_t *s, int lineno, char *buf,
                              size_t size) {
        if (!s->source)
                snprintf(buf, size, "argument %d", lineno);
        else
                snprintf(buf, size, "%s line %d", s->source, lineno);
        return buf;
}

/* Parses a whole line as one JSON object. Returns it (caller puts it) or
 * NULL with errstr set. */
static json_object *parse_object(const char *text, char *errstr,
                                 size_t errstr_size) {
        size_t len = strlen(text), end;
        enum json_tokener_error jerr;
        json_tokener *tok;
        json_object *obj;

        tok = json_tokener_new();
        if (!tok) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        obj = json_tokener_parse_ex(tok, text, (int)len);
        jerr = json_tokener_get_error(tok);
        end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);

        if (!obj && jerr == json_tokener_continue)
                jerr = json_tokener_error_parse_eof;
        if (jerr != json_tokener_success) {
                json_object_put(obj);
                snprintf(errstr, errstr_size, "invalid JSON: %s",
                         json_tokener_error_desc(jerr));
                return NULL;
        }
        while (end < len && strchr(" \t", text[end]))
                end++;
        if (end < len) {
                json_object_put(obj);
                snprintf(errstr, errstr_size,
                         "invalid JSON: unexpected text after the object at "
                         "column %zu",
                         end + 1);
                return NULL;
        }
        if (!json_object_is_type(obj, json_type_object)) {
                json_object_put(obj);
                snprintf(errstr, errstr_size,
                         "a JSON task must be an object such as "
                         "{\"input\": \"...\"}");
                return NULL;
        }
        return obj;
}

static int blank(const char *text) {
        return text[strspn(text, " \t")] == '\0';
}

/* Checks and encodes one task. Blank text is skipped. Returns 0, or -1
 * after logging what is wrong with it. */
static int add_task(submit_t *s, const char *text, int lineno) {
        char errstr[512], where[300];
        json_object *obj = NULL;
        submit_task_t *t;
        char *value, *id;
        int json;

        if (blank(text))
                return 0;

        json = !strcmp(s->format, "json") ||
               (!strcmp(s->format, "auto") && text[0] == '{');
        if (json) {
                obj = parse_object(text, errstr, sizeof(errstr));
                if (!obj)
                        goto bad;
        }
        value = kp_task_encode(json ? NULL : text, obj, NULL, &id, errstr,
                               sizeof(errstr));
        json_object_put(obj);
        if (!value)
                goto bad;

        if (s->n == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 64;
                s->tasks = realloc(s->tasks, s->cap * sizeof(*s->tasks));
                if (!s->tasks) {
                        kp_err("Out of memory reading tasks");
                        abort();
                }
        }
        t = &s->tasks[s->n++];
        memset(t, 0, sizeof(*t));
        t->lineno = lineno;
        t->id = id;
        t->value = value;
        t->len = strlen(value);
        t->partition = -1;
        return 0;

bad:
        kp_err("%s: %s", task_where(s, lineno, where, sizeof(where)), errstr);
        return -1;
}

/* Reads tasks one per line from fp. Returns 0, or -1 after logging. */
static int read_lines(submit_t *s, FILE *fp) {
        char *line = NULL, where[300];
        size_t cap = 0;
        ssize_t len;
        int lineno = 0, rc = 0;

        while ((len = getline(&line, &cap, fp)) != -1) {
                lineno++;
                if (len > 0 && line[len - 1] == '\n')
                        line[--len] = '\0';
                if (len > 0 && line[len - 1] == '\r')
                        line[--len] = '\0';
                if (strlen(line) != (size_t)len) {
                        kp_err("%s: contains a NUL byte",
                               task_where(s, lineno, where, sizeof(where)));
                        rc = -1;
                        break;
                }
                if (add_task(s, line, lineno) == -1) {
                        rc = -1;
                        break;
                }
        }
        if (rc == 0 && ferror(fp)) {
                kp_err("Failed to read tasks from %s: %s", s->source,
                       strerror(errno));
                rc = -1;
        }
        free(line);
        return rc;
}

/* Collects every task before anything is sent. Returns 0, or a KP_EXIT_*
 * code after logging. */
static int collect(submit_t *s) {
        kpool_ctx_t *ctx = s->ctx;
        const char *file = kp_conf_str(ctx->conf, "file");
        int stdin_arg = ctx->nargs == 1 && !strcmp(ctx->args[0], "-");
        FILE *fp;
        int i, rc;

        if (file && ctx->nargs > 0) {
                kp_err("give tasks as arguments or with -f FILE, not both");
                return KP_EXIT_USAGE;
        }

        if (ctx->nargs > 0 && !stdin_arg) {
                for (i = 0; i < ctx->nargs; i++)
                        if (add_task(s, ctx->args[i], i + 1) == -1)
                                return KP_EXIT_USAGE;
                return 0;
        }

        if (!file || !strcmp(file, "-")) {
                s->source = "stdin";
                if (isatty(STDIN_FILENO))
                        kp_info("reading tasks from the terminal, one per "
                                "line; end with Ctrl-D");
                return read_lines(s, stdin) == -1 ? KP_EXIT_USAGE : 0;
        }

        s->source = file;
        fp = fopen(file, "r");
        if (!fp) {
                kp_err("Failed to open %s: %s", file, strerror(errno));
                return KP_EXIT_USAGE;
        }
        rc = read_lines(s, fp);
        fclose(fp);
        return rc == -1 ? KP_EXIT_USAGE : 0;
}

/* Delivery report: the broker acknowledged the task, or gave up. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                        void *opaque) {
        submit_task_t *t = rkm->_private;

        (void)rk;
        (void)opaque;
        if (rkm->err) {
                t->state = TASK_FAILED;
                t->err = rkm->err;
        } else {
                t->state = TASK_ACKED;
                t->partition = rkm->partition;
        }
}

/* Prints the ids of the acknowledged tasks at the head of the input that
 * were not printed yet, keeping input order. */
static void print_acked(submit_t *s) {
        size_t before = s->printed;
        submit_task_t *t;

        while (s->printed < s->n) {
                t = &s->tasks[s->printed];
                if (t->state == TASK_PENDING)
                        break;
                if (t->state == TASK_ACKED)
                        printf("%s\n", t->id);
                s->printed++;
        }
        if (s->printed != before)
                fflush(stdout);
}

/* How full each partition is, by the chosen dispatch: records so far
 * (round-robin) or the group's lag (least-loaded). load[count].
 * Returns 0 or -1 after logging. */
static int partition_load(submit_t *s, rd_kafka_t *rk, int count,
                          int64_t *load) {
        const char *dispatch = kp_conf_str(s->ctx->conf, "dispatch");
        kp_admin_lag_t *rows = NULL;
        char errstr[512];
        int64_t *low;
        int i, n;

        if (!strcmp(dispatch, "least-loaded")) {
                n = kp_admin_lag(rk, s->ctx->tasks, s->ctx->group,
                                 KPOOL_ADMIN_TIMEOUT_MS, &rows, errstr,
                                 sizeof(errstr));
                if (n < 0) {
                        kp_err("%s", errstr);
                        return -1;
                }
                for (i = 0; i < n && i < count; i++)
                        load[rows[i].partition] = rows[i].lag;
                free(rows);
                return 0;
        }

        /* The end offset counts every record the partition ever got, so
         * topping up the lowest keeps separate invocations even. */
        low = calloc((size_t)count, sizeof(*low));
        if (!low) {
                kp_err("Out of memory");
                return -1;
        }
        if (kp_admin_watermarks(rk, s->ctx->tasks, count, low, load,
                                KPOOL_ADMIN_TIMEOUT_MS, errstr,
                                sizeof(errstr)) == -1) {
                kp_err("%s", errstr);
                free(low);
                return -1;
        }
        free(low);
        return 0;
}

/* Chooses each task's partition. Returns 0, or a KP_EXIT_* code after
 * logging. */
static int dispatch(submit_t *s, rd_kafka_t *rk, int count) {
        long long fixed = kp_conf_int(s->ctx->conf, "partition");
        int64_t *load;
        size_t i;
        int p, best;

        if (fixed >= count) {
                kp_err("--partition %lld: %s has %d partitions (0..%d)", fixed,
                       s->ctx->tasks, count, count - 1);
                return KP_EXIT_USAGE;
        }
        if (fixed >= 0) {
                for (i = 0; i < s->n; i++)
                        s->tasks[i].partition = (int32_t)fixed;
                return 0;
        }

        load = calloc((size_t)count, sizeof(*load));
        if (!load) {
                kp_err("Out of memory");
                return KP_EXIT_FAIL;
        }
        if (partition_load(s, rk, count, load) == -1) {
                free(load);
                return KP_EXIT_FAIL;
        }

        /* The least loaded partition, the lowest number on a tie; each
         * task sent adds to its partition's load. */
        for (i = 0; i < s->n; i++) {
                best = 0;
                for (p = 1; p < count; p++)
                        if (load[p] < load[best])
                                best = p;
                s->tasks[i].partition = best;
                load[best]++;
        }
        free(load);
        return 0;
}

/* Hands every task to librdkafka. Tasks not handed over because of an
 * interrupt or a local error are marked failed. */
static void produce_all(submit_t *s, rd_kafka_t *rk) {
        rd_kafka_resp_err_t err;
        submit_task_t *t;
        size_t i;

        for (i = 0; i < s->n; i++) {
                t = &s->tasks[i];
                err = RD_KAFKA_RESP_ERR__INTR;
                while (!kpool_interrupted) {
                        err = rd_kafka_producev(
                            rk, RD_KAFKA_V_TOPIC(s->ctx->tasks),
                            RD_KAFKA_V_PARTITION(t->partition),
                            RD_KAFKA_V_KEY(t->id, strlen(t->id)),
                            RD_KAFKA_V_VALUE(t->value, t->len),
                            RD_KAFKA_V_OPAQUE(t), RD_KAFKA_V_END);
                        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                                break;
                        /* The local queue is full: let it drain. */
                        rd_kafka_poll(rk, 100);
                        print_acked(s);
                }
                if (err) {
                        t->state = TASK_FAILED;
                        t->err = err;
                }
                rd_kafka_poll(rk, 0);
                print_acked(s);
        }
}

/* Waits until the broker has acknowledged or refused every task handed
 * over. A first interrupt only stops new tasks; a second abandons the
 * rest. */
static void drain(submit_t *s, rd_kafka_t *rk) {
        int warned = 0, purged = 0;

        while (rd_kafka_outq_len(rk) > 0) {
                rd_kafka_poll(rk, 100);
                print_acked(s);
                if (kpool_interrupted && !warned) {
                        kp_warn("interrupted: sending no more tasks, waiting "
                                "for the broker to acknowledge the ones sent "
                                "(interrupt again to give up on them)");
                        warned = 1;
                }
                if (kpool_interrupted >= 2 && !purged) {
                        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE |
                                               RD_KAFKA_PURGE_F_INFLIGHT);
                        purged = 1;
                }
        }
        print_acked(s);
}

/* Names each task the broker did not acknowledge. Returns how many. */
static size_t report_failed(submit_t *s) {
        char where[300];
        submit_task_t *t;
        size_t i, nfailed = 0;

        for (i = 0; i < s->n; i++) {
                t = &s->tasks[i];
                if (t->state == TASK_ACKED)
                        continue;
                if (t->state == TASK_PENDING)
                        t->err = RD_KAFKA_RESP_ERR__INTR;
                nfailed++;
                kp_err("Failed to submit task %s (%s) to %s [%d]: %s", t->id,
                       task_where(s, t->lineno, where, sizeof(where)),
                       s->ctx->tasks, (int)t->partition,
                       rd_kafka_err2str(t->err));
        }
        if (nfailed)
                kp_err("%zu of %zu tasks were not acknowledged by the broker",
                       nfailed, s->n);
        return nfailed;
}

int kpool_cmd_submit(kpool_ctx_t *ctx) {
        rd_kafka_conf_t *kconf;
        rd_kafka_t *rk = NULL;
        submit_t s;
        size_t i;
        int count, rc;

        memset(&s, 0, sizeof(s));
        s.ctx = ctx;
        s.format = kp_conf_str(ctx->conf, "format");

        /* Every task is checked before anything is sent. */
        rc = collect(&s);
        if (rc != 0)
                goto out;
        if (s.n == 0) {
                kp_warn("no tasks to submit");
                goto out;
        }

        /* A closed stdout must not kill us before the broker answers. */
        signal(SIGPIPE, SIG_IGN);

        kconf = kpool_kafka_conf(ctx, KP_KAFKA_PRODUCER);
        if (!kconf) {
                rc = KP_EXIT_USAGE;
                goto out;
        }
        rd_kafka_conf_set_dr_msg_cb(kconf, on_delivery);
        rk = kpool_kafka_new(ctx, RD_KAFKA_PRODUCER, kconf);
        if (!rk) {
                rc = KP_EXIT_FAIL;
                goto out;
        }

        count = kpool_partitions(ctx, rk, ctx->tasks);
        if (count < 0) {
                rc = KP_EXIT_FAIL;
                goto out;
        }
        rc = dispatch(&s, rk, count);
        if (rc != 0)
                goto out;

        produce_all(&s, rk);
        drain(&s, rk);
        if (report_failed(&s) > 0)
                rc = KP_EXIT_FAIL;
        kp_debug("submitted %zu tasks to %s", s.n, ctx->tasks);

out:
        if (rk)
                rd_kafka_destroy(rk);
        for (i = 0; i < s.n; i++) {
                free(s.tasks[i].id);
                free(s.tasks[i].value);
        }
        free(s.tasks);
        return rc;
}
