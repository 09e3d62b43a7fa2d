/* kpool_status.c - `kpool status` and `kpool wait`: the group's lag over
 * the pool's tasks topic, shown once or watched until it reaches 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "kp_admin.h"
#include "kp_exit.h"
#include "kp_log.h"
#include "kpool.h"

typedef struct totals {
        int64_t end;       /* sum of end offsets */
        int64_t submitted; /* sum of end - low: records still there */
        int64_t lag;
        int64_t done; /* submitted - lag, at least 0 */
} totals_t;

static void sum_rows(const kp_admin_lag_t *rows, int n, totals_t *t) {
        int i;

        memset(t, 0, sizeof(*t));
        for (i = 0; i < n; i++) {
                t->end += rows[i].high;
                t->submitted += rows[i].high - rows[i].low;
                t->lag += rows[i].lag;
        }
        t->done = t->submitted - t->lag;
        if (t->done < 0)
                t->done = 0;
}

/* Who owns a partition, for people: the member holding it, else the
 * worker that committed last, else "-". */
static const char *owner_text(const kp_admin_lag_t *row, char *buf,
                              size_t size) {
        if (*row->owner)
                snprintf(buf, size, "%s%s%s", row->owner,
                         *row->owner_host ? "@" : "", row->owner_host);
        else if (*row->last_owner)
                snprintf(buf, size, "%s (last commit)", row->last_owner);
        else
                snprintf(buf, size, "-");
        return buf;
}

static const char *offset_text(int64_t off, char *buf, size_t size) {
        if (off < 0)
                snprintf(buf, size, "-");
        else
                snprintf(buf, size, "%lld", (long long)off);
        return buf;
}

static void print_json(const kpool_ctx_t *ctx, const kp_admin_group_t *group,
                       const kp_admin_lag_t *rows, int n) {
        json_object *obj, *parts, *part, *member;
        char owner[600];
        totals_t t;
        int i;

        sum_rows(rows, n, &t);
        obj = json_object_new_object();
        json_object_object_add(obj, "pool", json_object_new_string(ctx->pool));
        json_object_object_add(obj, "group",
                               json_object_new_string(ctx->group));
        json_object_object_add(obj, "state",
                               json_object_new_string(group->state));
        json_object_object_add(obj, "members",
                               json_object_new_int(group->members));

        parts = json_object_new_array();
        for (i = 0; i < n; i++) {
                part = json_object_new_object();
                json_object_object_add(part, "partition",
                                       json_object_new_int(rows[i].partition));
                owner_text(&rows[i], owner, sizeof(owner));
                json_object_object_add(
                    part, "owner",
                    strcmp(owner, "-") ? json_object_new_string(owner) : NULL);
                member = NULL;
                if (*rows[i].owner) {
                        member = json_object_new_object();
                        json_object_object_add(
                            member, "name",
                            json_object_new_string(rows[i].owner));
                        json_object_object_add(
                            member, "host",
                            json_object_new_string(rows[i].owner_host));
                }
                json_object_object_add(part, "member", member);
                json_object_object_add(
                    part, "last_commit_by",
                    *rows[i].last_owner
                        ? json_object_new_string(rows[i].last_owner)
                        : NULL);
                json_object_object_add(
                    part, "committed",
                    rows[i].committed >= 0
                        ? json_object_new_int64(rows[i].committed)
                        : NULL);
                json_object_object_add(part, "low",
                                       json_object_new_int64(rows[i].low));
                json_object_object_add(part, "end",
                                       json_object_new_int64(rows[i].high));
                json_object_object_add(part, "lag",
                                       json_object_new_int64(rows[i].lag));
                json_object_array_add(parts, part);
        }
        json_object_object_add(obj, "partitions", parts);
        json_object_object_add(obj, "total_lag", json_object_new_int64(t.lag));
        json_object_object_add(obj, "total_end", json_object_new_int64(t.end));
        json_object_object_add(obj, "total_submitted",
                               json_object_new_int64(t.submitted));

        printf("%s\n", json_object_to_json_string_ext(
                           obj, JSON_C_TO_STRING_PLAIN |
                                    JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(obj);
}

static int max_int(int a, int b) {
        return a > b ? a : b;
}

static void print_table(const kpool_ctx_t *ctx, const kp_admin_group_t *group,
                        const kp_admin_lag_t *rows, int n) {
        int wo = 5, wc = 9, we = 3, wl = 3, i;
        char owner[600], c[32], e[32], l[32];
        totals_t t;

        sum_rows(rows, n, &t);
        printf("pool %s  group %s  state %s  members %d\n", ctx->pool,
               ctx->group, group->state, group->members);

        /* Columns as wide as their widest cell. */
        for (i = 0; i < n; i++) {
                wo = max_int(wo, (int)strlen(owner_text(&rows[i], owner,
                                                        sizeof(owner))));
                wc = max_int(wc, snprintf(c, sizeof(c), "%lld",
                                          (long long)rows[i].committed));
        }
        we = max_int(we, snprintf(e, sizeof(e), "%lld", (long long)t.end));
        wl = max_int(wl, snprintf(l, sizeof(l), "%lld", (long long)t.lag));

        printf("%-9s  %-*s  %*s  %*s  %*s\n", "PARTITION", wo, "OWNER", wc,
               "COMMITTED", we, "END", wl, "LAG");
        for (i = 0; i < n; i++)
                printf("%9d  %-*s  %*s  %*lld  %*lld\n", (int)rows[i].partition,
                       wo, owner_text(&rows[i], owner, sizeof(owner)), wc,
                       offset_text(rows[i].committed, c, sizeof(c)), we,
                       (long long)rows[i].high, wl, (long long)rows[i].lag);
        printf("%9s  %-*s  %*s  %*lld  %*lld\n", "total", wo, "", wc, "", we,
               (long long)t.end, wl, (long long)t.lag);
        printf("tasks submitted %lld, done %lld, lag %lld\n",
               (long long)t.submitted, (long long)t.done, (long long)t.lag);
}

/* A client for admin calls, after checking the tasks topic exists.
 * Returns it, or NULL with *rcp set to the exit code (logged). */
static rd_kafka_t *admin_client(kpool_ctx_t *ctx, const char *cmd, int *rcp) {
        rd_kafka_conf_t *kconf;
        rd_kafka_t *rk;

        *rcp = KP_EXIT_FAIL;
        if (ctx->nargs > 0) {
                kp_err("%s takes no arguments (got \"%s\")", cmd, ctx->args[0]);
                *rcp = KP_EXIT_USAGE;
                return NULL;
        }
        kconf = kpool_kafka_conf(ctx, KP_KAFKA_ADMIN);
        if (!kconf) {
                *rcp = KP_EXIT_USAGE;
                return NULL;
        }
        rk = kpool_kafka_new(ctx, RD_KAFKA_PRODUCER, kconf);
        if (!rk)
                return NULL;
        if (kpool_partitions(ctx, rk, ctx->tasks) < 0) {
                rd_kafka_destroy(rk);
                return NULL;
        }
        return rk;
}

int kpool_cmd_status(kpool_ctx_t *ctx) {
        kp_admin_lag_t *rows = NULL;
        kp_admin_group_t group;
        char errstr[512];
        rd_kafka_t *rk;
        int n, rc;

        rk = admin_client(ctx, "status", &rc);
        if (!rk)
                return rc;

        n = kp_admin_group_lag(rk, ctx->tasks, ctx->group,
                               KPOOL_ADMIN_TIMEOUT_MS, &rows, &group, errstr,
                               sizeof(errstr));
        if (n < 0) {
                kp_err("%s", errstr);
                rd_kafka_destroy(rk);
                return KP_EXIT_FAIL;
        }

        if (kp_conf_bool(ctx->conf, "json"))
                print_json(ctx, &group, rows, n);
        else
                print_table(ctx, &group, rows, n);
        fflush(stdout);

        free(rows);
        rd_kafka_destroy(rk);
        return KP_EXIT_OK;
}

static int64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The progress display: one line on the terminal, rewritten in place. It
 * is not a log line, so it is written here rather than through kp_log. */
static void progress(const char *text) {
        struct winsize ws;
        int width = 80;

        if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1)
                width = ws.ws_col;
        if (*text)
                fprintf(stderr, "\r%.*s\033[K", width - 1, text);
        else
                fputs("\r\033[K", stderr);
        fflush(stderr);
}

/* "lag 12 (p0 4, p1 4, p2 4)  done 30/42", naming the partitions with
 * lag (the first ones, if there are many). */
static void progress_text(const kp_admin_lag_t *rows, int n, char *buf,
                          size_t size) {
        char parts[512];
        size_t len = 0;
        totals_t t;
        int i, shown = 0;

        sum_rows(rows, n, &t);
        parts[0] = '\0';
        for (i = 0; i < n && len + 40 < sizeof(parts); i++) {
                if (rows[i].lag == 0)
                        continue;
                len += (size_t)snprintf(parts + len, sizeof(parts) - len,
                                        "%sp%d %lld", shown ? ", " : "",
                                        (int)rows[i].partition,
                                        (long long)rows[i].lag);
                shown++;
        }
        if (i < n)
                snprintf(parts + len, sizeof(parts) - len, ", ...");
        snprintf(buf, size, "lag %lld (%s)  done %lld/%lld", (long long)t.lag,
                 parts, (long long)t.done, (long long)t.submitted);
}

/* What is left, per partition, on stderr. */
static void report_remaining(const char *why, const kp_admin_lag_t *rows,
                             int n) {
        char owner[600], c[32];
        totals_t t;
        int i;

        sum_rows(rows, n, &t);
        kp_err("%s: lag %lld remains, done %lld/%lld", why, (long long)t.lag,
               (long long)t.done, (long long)t.submitted);
        for (i = 0; i < n; i++) {
                if (rows[i].lag == 0)
                        continue;
                kp_err("  partition %d: lag %lld (committed %s, end %lld, "
                       "owner %s)",
                       (int)rows[i].partition, (long long)rows[i].lag,
                       offset_text(rows[i].committed, c, sizeof(c)),
                       (long long)rows[i].high,
                       owner_text(&rows[i], owner, sizeof(owner)));
        }
}

/* Sleeps up to ms in short steps, waking early on an interrupt or at the
 * deadline (0: none). */
static void nap(int64_t ms, int64_t deadline) {
        struct timespec ts;
        int64_t until = now_ms() + ms, step;

        while (!kpool_interrupted) {
                step = until - now_ms();
                if (deadline && deadline - now_ms() < step)
                        step = deadline - now_ms();
                if (step <= 0)
                        return;
                if (step > 100)
                        step = 100;
                ts.tv_sec = 0;
                ts.tv_nsec = (long)step * 1000000;
                nanosleep(&ts, NULL);
        }
}

int kpool_cmd_wait(kpool_ctx_t *ctx) {
        long long timeout_s = kp_conf_int(ctx->conf, "timeout");
        int64_t interval = kp_conf_int(ctx->conf, "interval-ms");
        int tty = isatty(STDERR_FILENO), n = -1, rc;
        int64_t deadline = 0;
        kp_admin_lag_t *rows = NULL, *fresh;
        char errstr[512], line[700], shown[700] = "", why[64];
        rd_kafka_t *rk;
        totals_t t;

        if (timeout_s > 0)
                deadline = now_ms() + timeout_s * 1000;

        rk = admin_client(ctx, "wait", &rc);
        if (!rk)
                return rc;

        for (;;) {
                rc = kp_admin_lag(rk, ctx->tasks, ctx->group,
                                  KPOOL_ADMIN_TIMEOUT_MS, &fresh, errstr,
                                  sizeof(errstr));
                if (rc < 0) {
                        /* Keep the last good view; the cluster may come
                         * back before the deadline. */
                        if (tty)
                                progress("");
                        shown[0] = '\0';
                        kp_warn("%s", errstr);
                } else {
                        free(rows);
                        rows = fresh;
                        n = rc;
                        sum_rows(rows, n, &t);
                        if (t.lag == 0) {
                                if (tty)
                                        progress("");
                                printf("quiescent: lag 0, done %lld/%lld\n",
                                       (long long)t.done,
                                       (long long)t.submitted);
                                rc = KP_EXIT_OK;
                                break;
                        }
                        if (tty) {
                                progress_text(rows, n, line, sizeof(line));
                                if (strcmp(line, shown))
                                        progress(line);
                                snprintf(shown, sizeof(shown), "%s", line);
                        }
                }

                if (kpool_interrupted || (deadline && now_ms() >= deadline)) {
                        if (tty)
                                progress("");
                        if (kpool_interrupted)
                                snprintf(why, sizeof(why), "interrupted");
                        else
                                snprintf(why, sizeof(why),
                                         "timed out after %llds", timeout_s);
                        if (n >= 0)
                                report_remaining(why, rows, n);
                        else
                                kp_err("%s before the lag could be read", why);
                        rc = KP_EXIT_FAIL;
                        break;
                }
                nap(interval, deadline);
        }

        fflush(stdout);
        free(rows);
        rd_kafka_destroy(rk);
        return rc;
}
