/* wk_setup.c - kpool-worker's start and end. */
#include "wk_setup.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kp_admin.h"
#include "kp_backend.h"
#include "kp_exit.h"
#include "kp_kafka.h"
#include "kp_log.h"
#include "kp_opts.h"

#ifndef KPOOL_VERSION
#define KPOOL_VERSION "0.1.0"
#endif

static worker_t the_worker;

worker_t *wk_setup_worker(void) {
        return &the_worker;
}

static void usage(const kp_conf_t *conf) {
        printf("Usage: kpool-worker [OPTIONS]\n"
               "\n"
               "A long-lived worker of a kpool pool: owns a partition of "
               "<pool>.tasks,\n"
               "calls the backend for each task and publishes each result "
               "to\n"
               "<pool>.results. Stops on SIGTERM or SIGINT after in-flight "
               "calls\n"
               "finish (a second signal exits at once).\n"
               "\nOptions:\n");
        kp_conf_usage(conf, stdout);
        printf("\nAPI keys come from the environment (ANTHROPIC_API_KEY, "
               "OPENAI_API_KEY,\n"
               "or the variable --api-key-env names) or --api-key-file; "
               "never from a flag.\n"
               "\nExit codes:\n"
               "  0  stopped cleanly: every finished task's result is "
               "durable and committed\n"
               "  1  failed, or stopped with tasks left to run again\n"
               "  2  bad flags or configuration\n");
}

/* The API key, from --api-key-file or an environment variable. Returns
 * a malloc'd key, NULL with *errstr empty when none is configured, or NULL
 * with errstr set. The key's text never reaches a message. */
static char *load_api_key(const kp_conf_t *conf, kp_backend_kind_t kind,
                          char *errstr, size_t errstr_size) {
        const char *file = kp_conf_str(conf, "api-key-file");
        const char *var = kp_conf_str(conf, "api-key-env");
        const char *value;

        *errstr = '\0';
        if (file) {
                char line[4096];
                FILE *fp = fopen(file, "r");
                size_t n;

                if (!fp) {
                        snprintf(errstr, errstr_size,
                                 "cannot read the API key file %s: %s", file,
                                 strerror(errno));
                        return NULL;
                }
                n = fread(line, 1, sizeof(line) - 1, fp);
                fclose(fp);
                line[n] = '\0';
                line[strcspn(line, "\r\n")] = '\0';
                if (!*line) {
                        snprintf(errstr, errstr_size,
                                 "the API key file %s is empty", file);
                        return NULL;
                }
                return strdup(line);
        }

        if (!var)
                var = kind == KP_BACKEND_ANTHROPIC ? "ANTHROPIC_API_KEY"
                      : kind == KP_BACKEND_OPENAI  ? "OPENAI_API_KEY"
                                                   : NULL;
        if (!var)
                return NULL;
        value = getenv(var);
        if (!value || !*value) {
                if (kind == KP_BACKEND_ANTHROPIC ||
                    kp_conf_str(conf, "api-key-env"))
                        snprintf(errstr, errstr_size,
                                 "no API key: set %s, or use --api-key-env "
                                 "VAR or --api-key-file FILE",
                                 var);
                return NULL;
        }
        return strdup(value);
}

static int backend_setup(worker_t *w, kp_call_done_cb *on_call_done,
                         char *errstr, size_t errstr_size) {
        const kp_conf_t *conf = w->conf;
        kp_backend_conf_t bconf = {0};
        const char *url = kp_conf_str(conf, "backend-url");
        const char *model = kp_conf_str(conf, "model");
        int rc = -1;

        if (kp_backend_kind_parse(kp_conf_str(conf, "backend"), &bconf.kind) ==
            -1) {
                snprintf(errstr, errstr_size, "unknown backend %s",
                         kp_conf_str(conf, "backend"));
                return -1;
        }
        if (!url && bconf.kind == KP_BACKEND_HTTP) {
                snprintf(errstr, errstr_size,
                         "--backend http needs --backend-url URL");
                return -1;
        }
        if (!url)
                url = bconf.kind == KP_BACKEND_ANTHROPIC
                          ? "https://api.anthropic.com/v1/messages"
                          : "https://api.openai.com/v1/chat/completions";
        if (!model)
                model = bconf.kind == KP_BACKEND_ANTHROPIC ? "claude-sonnet-4-5"
                                                           : "gpt-4o-mini";

        bconf.api_key = load_api_key(conf, bconf.kind, errstr, errstr_size);
        if (!bconf.api_key && *errstr)
                return -1;

        bconf.url = (char *)url;
        bconf.model = (char *)model;
        bconf.role = (char *)kp_conf_str(conf, "role");
        bconf.max_tokens = (int)kp_conf_int(conf, "max-tokens");
        bconf.anthropic_version =
            (char *)kp_conf_str(conf, "anthropic-version");
        bconf.timeout_ms = (long)kp_conf_int(conf, "timeout-ms");
        bconf.attempts = (int)kp_conf_int(conf, "attempts");
        bconf.backoff_ms = (long)kp_conf_int(conf, "retry-backoff-ms");
        bconf.backoff_max_ms = (long)kp_conf_int(conf, "retry-backoff-max-ms");

        w->client = kp_client_new(&bconf, on_call_done, errstr, errstr_size);
        if (w->client) {
                rc = 0;
                kp_info("backend %s at %s, model %s, %s API key",
                        kp_backend_kind_name(bconf.kind), url, model,
                        bconf.api_key ? "with an" : "without");
        }
        if (bconf.api_key) {
                memset(bconf.api_key, 0, strlen(bconf.api_key));
                free(bconf.api_key);
        }
        return rc;
}

/* Whether the user set a librdkafka property for this kind of client. */
static int user_set(const kp_conf_t *conf, const char *prefix,
                    const char *name) {
        size_t i, n = kp_conf_kafka_count(conf), plen = strlen(prefix);

        for (i = 0; i < n; i++) {
                const char *key, *value;

                kp_conf_kafka_get(conf, i, &key, &value);
                if (!strcmp(key, name) ||
                    (!strncmp(key, prefix, plen) && !strcmp(key + plen, name)))
                        return 1;
        }
        return 0;
}

/* Sets kpool's default for a property the user did not set. */
static int set_default(rd_kafka_conf_t *kconf, const kp_conf_t *conf,
                       const char *prefix, const char *name, const char *value,
                       char *errstr, size_t errstr_size) {
        if (user_set(conf, prefix, name))
                return 0;
        return kp_kafka_set(kconf, name, value, errstr, errstr_size);
}

/* Sets a property kpool's correctness depends on; a user's attempt to
 * change it is refused. */
static int set_required(rd_kafka_conf_t *kconf, const kp_conf_t *conf,
                        const char *prefix, const char *name, const char *value,
                        char *errstr, size_t errstr_size) {
        if (user_set(conf, prefix, name)) {
                snprintf(errstr, errstr_size,
                         "-X %s cannot be changed: kpool-worker needs %s=%s",
                         name, name, value);
                return -1;
        }
        return kp_kafka_set(kconf, name, value, errstr, errstr_size);
}

static rd_kafka_t *consumer_new(worker_t *w, const wk_callbacks_t *cbs,
                                char *errstr, size_t errstr_size) {
        rd_kafka_conf_t *kconf;
        char client_id[300];
        const char *c = "consumer.";
        rd_kafka_t *rk;

        kconf =
            kp_kafka_conf_new(w->conf, KP_KAFKA_CONSUMER, errstr, errstr_size);
        if (!kconf)
                return NULL;
        snprintf(client_id, sizeof(client_id), "kpool-worker-%s", w->name);
        if (set_required(kconf, w->conf, c, "group.id", w->group, errstr,
                         errstr_size) ||
            set_required(kconf, w->conf, c, "enable.auto.commit", "false",
                         errstr, errstr_size) ||
            set_required(kconf, w->conf, c, "enable.auto.offset.store", "false",
                         errstr, errstr_size) ||
            set_default(kconf, w->conf, c, "client.id", client_id, errstr,
                        errstr_size) ||
            set_default(kconf, w->conf, c, "auto.offset.reset", "earliest",
                        errstr, errstr_size) ||
            set_default(kconf, w->conf, c, "partition.assignment.strategy",
                        "cooperative-sticky", errstr, errstr_size) ||
            set_default(kconf, w->conf, c, "queued.max.messages.kbytes",
                        "16384", errstr, errstr_size) ||
            set_default(kconf, w->conf, c, "queued.min.messages", "1000",
                        errstr, errstr_size) ||
            set_default(kconf, w->conf, c, "fetch.wait.max.ms", "100", errstr,
                        errstr_size) ||
            set_default(kconf, w->conf, c, "fetch.queue.backoff.ms", "10",
                        errstr, errstr_size))
                goto fail;
        /* A stable name makes the worker a static member: a restart takes
         * its partitions back without a rebalance of the fleet. */
        if (w->pinned < 0 && set_default(kconf, w->conf, c, "group.instance.id",
                                         w->name, errstr, errstr_size))
                goto fail;

        rd_kafka_conf_set_opaque(kconf, w);
        rd_kafka_conf_set_rebalance_cb(kconf, cbs->rebalance);
        rd_kafka_conf_set_error_cb(kconf, cbs->error);

        rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, errstr, errstr_size);
        if (!rk)
                goto fail;
        rd_kafka_poll_set_consumer(rk);
        return rk;

fail:
        rd_kafka_conf_destroy(kconf);
        return NULL;
}

static rd_kafka_t *producer_new(worker_t *w, const wk_callbacks_t *cbs,
                                char *errstr, size_t errstr_size) {
        rd_kafka_conf_t *kconf;
        char client_id[300];
        const char *p = "producer.";
        rd_kafka_t *rk;

        kconf =
            kp_kafka_conf_new(w->conf, KP_KAFKA_PRODUCER, errstr, errstr_size);
        if (!kconf)
                return NULL;
        snprintf(client_id, sizeof(client_id), "kpool-worker-%s-results",
                 w->name);
        /* Idempotent with acks=all: a result acknowledged is durable and
         * written once, so its task's offset may be committed. */
        if (set_required(kconf, w->conf, p, "enable.idempotence", "true",
                         errstr, errstr_size) ||
            set_required(kconf, w->conf, p, "acks", "all", errstr,
                         errstr_size) ||
            set_default(kconf, w->conf, p, "client.id", client_id, errstr,
                        errstr_size) ||
            set_default(kconf, w->conf, p, "linger.ms", "0", errstr,
                        errstr_size))
                goto fail;

        rd_kafka_conf_set_opaque(kconf, w);
        rd_kafka_conf_set_dr_msg_cb(kconf, cbs->delivery);
        rd_kafka_conf_set_error_cb(kconf, cbs->error);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr, errstr_size);
        if (!rk)
                goto fail;
        return rk;

fail:
        rd_kafka_conf_destroy(kconf);
        return NULL;
}

/* The consumer's max.poll.interval.ms, as configured. */
static long max_poll_interval_ms(rd_kafka_t *rk) {
        char value[32];
        size_t size = sizeof(value);

        if (rd_kafka_conf_get(rd_kafka_conf(rk), "max.poll.interval.ms", value,
                              &size) != RD_KAFKA_CONF_OK)
                return 300000;
        return strtol(value, NULL, 10);
}

/* The queues write a byte to the pipe when they turn non-empty, which
 * wakes the loop's poll alongside curl's sockets. */
static int wake_setup(worker_t *w, char *errstr, size_t errstr_size) {
        if (pipe2(w->wake, O_NONBLOCK | O_CLOEXEC) == -1) {
                snprintf(errstr, errstr_size, "pipe: %s", strerror(errno));
                return -1;
        }
        w->rkqu_cons = rd_kafka_queue_get_consumer(w->rk);
        w->rkqu_prod = rd_kafka_queue_get_main(w->prod);
        w->rkqu_commit = rd_kafka_queue_new(w->rk);
        rd_kafka_queue_io_event_enable(w->rkqu_cons, w->wake[1], "c", 1);
        rd_kafka_queue_io_event_enable(w->rkqu_prod, w->wake[1], "p", 1);
        rd_kafka_queue_io_event_enable(w->rkqu_commit, w->wake[1], "o", 1);
        return 0;
}

void wk_setup_drain_wake(worker_t *w) {
        char buf[256];

        while (read(w->wake[0], buf, sizeof(buf)) > 0)
                ;
}

/* The tasks and results topics must exist: `kpool topics` makes them. */
static int check_topics(worker_t *w, char *errstr, size_t errstr_size) {
        char reason[512];
        int n;

        n = kp_admin_partition_count(w->prod, w->tasks_topic, 10000, reason,
                                     sizeof(reason));
        if (n < 0) {
                snprintf(errstr, errstr_size,
                         "%s (create the pool's topics with `kpool topics "
                         "--pool %s`)",
                         reason, w->pool);
                return -1;
        }
        if (w->pinned >= n) {
                snprintf(errstr, errstr_size,
                         "--partition %d: %s has only %d partitions",
                         (int)w->pinned, w->tasks_topic, n);
                return -1;
        }
        if (kp_admin_partition_count(w->prod, w->results_topic, 10000, reason,
                                     sizeof(reason)) < 0) {
                snprintf(errstr, errstr_size,
                         "%s (create the pool's topics with `kpool topics "
                         "--pool %s`)",
                         reason, w->pool);
                return -1;
        }
        return 0;
}

/* The callbacks; the rebalance one is also run by hand for a pinned
 * partition. */
static const wk_callbacks_t *callbacks;

/* The pinned partition, as a one-element list (caller destroys). */
static rd_kafka_topic_partition_list_t *pinned_list(worker_t *w) {
        rd_kafka_topic_partition_list_t *list;

        list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, w->tasks_topic, w->pinned)
            ->offset = RD_KAFKA_OFFSET_INVALID;
        return list;
}

/* Joins the group, or takes the pinned partition by itself: then no
 * rebalance comes, so the assignment goes through the same callback by
 * hand, and starts from the group's committed offset. */
static int start_consuming(worker_t *w, char *errstr, size_t errstr_size) {
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;

        if (w->pinned >= 0) {
                list = pinned_list(w);
                callbacks->rebalance(
                    w->rk, RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, list, w);
        } else {
                list = rd_kafka_topic_partition_list_new(1);
                rd_kafka_topic_partition_list_add(list, w->tasks_topic,
                                                  RD_KAFKA_PARTITION_UA);
                err = rd_kafka_subscribe(w->rk, list);
        }
        rd_kafka_topic_partition_list_destroy(list);
        if (err) {
                snprintf(errstr, errstr_size, "cannot consume %s: %s",
                         w->tasks_topic, rd_kafka_err2str(err));
                return -1;
        }
        return 0;
}

static void default_name(worker_t *w) {
        const char *name = kp_conf_str(w->conf, "name");
        char host[200];

        if (name) {
                snprintf(w->name, sizeof(w->name), "%s", name);
                return;
        }
        if (gethostname(host, sizeof(host)) == -1)
                snprintf(host, sizeof(host), "worker");
        host[sizeof(host) - 1] = '\0';
        if (w->pinned >= 0)
                snprintf(w->name, sizeof(w->name), "%s-p%d", host,
                         (int)w->pinned);
        else
                snprintf(w->name, sizeof(w->name), "%s", host);
}

int wk_setup(int argc, char **argv, const wk_callbacks_t *cbs) {
        worker_t *w = &the_worker;
        char errstr[1024];
        int nargs;

        callbacks = cbs;
        /* Configuration: defaults, file, environment, flags. */
        w->conf = kp_conf_new(kp_opts_worker, kp_opts_worker_count);
        if (kp_conf_load(w->conf, argc, argv, errstr, sizeof(errstr)) == -1) {
                kp_err("%s", errstr);
                fprintf(stderr, "Try 'kpool-worker --help'.\n");
                return KP_EXIT_USAGE;
        }
        if (kp_conf_bool(w->conf, "help")) {
                usage(w->conf);
                return KP_EXIT_OK;
        }
        if (kp_conf_bool(w->conf, "version")) {
                printf("kpool-worker %s (librdkafka %s)\n", KPOOL_VERSION,
                       rd_kafka_version_str());
                return KP_EXIT_OK;
        }
        kp_conf_args(w->conf, &nargs);
        if (nargs > 0) {
                kp_err("unexpected argument '%s'",
                       kp_conf_args(w->conf, &nargs)[0]);
                return KP_EXIT_USAGE;
        }
        kp_log_set_level_name(kp_conf_str(w->conf, "log-level"));

        w->pool = kp_conf_str(w->conf, "pool");
        w->pinned = (int32_t)kp_conf_int(w->conf, "partition");
        w->concurrency = (int)kp_conf_int(w->conf, "concurrency");
        w->max_input = (size_t)kp_conf_int(w->conf, "max-input-bytes");
        w->drain_ms = (long)kp_conf_int(w->conf, "drain-timeout-ms");
        w->queue_high = w->concurrency * 2 > WK_QUEUE_MIN_HIGH
                            ? w->concurrency * 2
                            : WK_QUEUE_MIN_HIGH;
        w->commit_interval_ms =
            (long)kp_conf_int(w->conf, "commit-interval-ms");
        kp_kafka_topic_tasks(w->pool, w->tasks_topic, sizeof(w->tasks_topic));
        kp_kafka_topic_results(w->pool, w->results_topic,
                               sizeof(w->results_topic));
        kp_kafka_group(w->pool, w->group, sizeof(w->group));
        default_name(w);
        kp_log_init("kpool-worker", w->name);

        if (backend_setup(w, cbs->call_done, errstr, sizeof(errstr)) == -1) {
                kp_err("%s", errstr);
                return KP_EXIT_USAGE;
        }

        w->rk = consumer_new(w, cbs, errstr, sizeof(errstr));
        if (!w->rk) {
                kp_err("cannot create the consumer: %s", errstr);
                return KP_EXIT_USAGE;
        }
        w->revoke_drain_ms = max_poll_interval_ms(w->rk) / 2;
        w->prod = producer_new(w, cbs, errstr, sizeof(errstr));
        if (!w->prod) {
                kp_err("cannot create the producer: %s", errstr);
                return KP_EXIT_USAGE;
        }
        if (wake_setup(w, errstr, sizeof(errstr)) == -1 ||
            check_topics(w, errstr, sizeof(errstr)) == -1 ||
            start_consuming(w, errstr, sizeof(errstr)) == -1) {
                kp_err("%s", errstr);
                return KP_EXIT_FAIL;
        }

        kp_info("worker %s of pool %s: %s %s, concurrency %d, results to %s",
                w->name, w->pool,
                w->pinned >= 0 ? "pinned to partition" : "member of group",
                w->pinned >= 0 ? "" : w->group, w->concurrency,
                w->results_topic);
        return -1;
}

void wk_teardown(worker_t *w) {
        rd_kafka_resp_err_t err;
        int32_t i;

        /* Leaving runs the revoke callback, which commits once more. */
        if (w->pinned >= 0) {
                rd_kafka_topic_partition_list_t *list = pinned_list(w);

                callbacks->rebalance(
                    w->rk, RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS, list, w);
                rd_kafka_topic_partition_list_destroy(list);
        }
        err = rd_kafka_consumer_close(w->rk);
        if (err)
                kp_warn("leaving group %s: %s", w->group,
                        rd_kafka_err2str(err));

        rd_kafka_queue_destroy(w->rkqu_cons);
        rd_kafka_queue_destroy(w->rkqu_prod);
        rd_kafka_queue_destroy(w->rkqu_commit);
        rd_kafka_destroy(w->rk);
        rd_kafka_destroy(w->prod);
        kp_client_destroy(w->client);
        close(w->wake[0]);
        close(w->wake[1]);
        for (i = 0; i < w->nparts; i++) {
                if (!w->parts[i])
                        continue;
                kp_track_destroy(w->parts[i]->track);
                free(w->parts[i]);
        }
        free(w->parts);
        kp_conf_destroy(w->conf);
}
