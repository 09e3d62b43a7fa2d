/* worker.c - kpool-worker: owns a partition of <pool>.tasks, calls the
 * backend for each task and publishes each result to <pool>.results.
 *
 * The loop, once per turn (at least every 100 ms):
 *   1. take records off the consumer's queue (tasks, rebalances, errors);
 *   2. start backend calls while fewer than `concurrency` are in flight;
 *   3. advance the calls; a finished call's result is produced;
 *   4. serve delivery reports; a delivered result finishes its task;
 *   5. pause or resume fetching by how full the local queue is;
 *   6. commit what finished: at once when idle, else every interval;
 *   7. sleep until a queue or a socket needs attention. */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kp_admin.h"
#include "kp_exit.h"
#include "kp_kafka.h"
#include "kp_log.h"
#include "kp_opts.h"
#include "wk_setup.h"

volatile sig_atomic_t wk_stop;

int64_t wk_now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_signal(int sig) {
        wk_stop = wk_stop ? 2 : 1;
}

/* The partition's state, created on first sight. */
static wk_part_t *part_get(worker_t *w, int32_t partition) {
        if (partition >= w->nparts) {
                int32_t n = partition + 1, i;

                w->parts = realloc(w->parts, (size_t)n * sizeof(*w->parts));
                if (!w->parts)
                        abort();
                for (i = w->nparts; i < n; i++)
                        w->parts[i] = NULL;
                w->nparts = n;
        }
        if (!w->parts[partition]) {
                wk_part_t *part = calloc(1, sizeof(*part));

                if (!part)
                        abort();
                part->partition = partition;
                part->track = kp_track_new();
                part->committed = -1;
                w->parts[partition] = part;
        }
        return w->parts[partition];
}

static void slot_free(worker_t *w, wk_slot_t *slot) {
        if (slot->part && slot->gen == slot->part->gen)
                slot->part->outstanding--;
        if (slot->rkm)
                rd_kafka_message_destroy(slot->rkm);
        kp_task_clear(&slot->task);
        free(slot->payload);
        free(slot);
}

static const char *slot_id(const wk_slot_t *slot) {
        return slot->task.id ? slot->task.id : "-";
}

/* ---- step 1: receiving tasks ---- */

static void receive_task(worker_t *w, rd_kafka_message_t *rkm) {
        wk_part_t *part = part_get(w, rkm->partition);
        wk_slot_t *slot;

        if (!part->assigned) {
                rd_kafka_message_destroy(rkm);
                return;
        }
        if (kp_track_add(part->track, rkm->offset) == -1) {
                kp_warn("ignoring a record received twice: " KP_TASK_FMT,
                        KP_TASK_ARGS(w->pool, w->tasks_topic, rkm->partition,
                                     rkm->offset, NULL));
                rd_kafka_message_destroy(rkm);
                return;
        }

        slot = calloc(1, sizeof(*slot));
        if (!slot)
                abort();
        slot->state = WK_QUEUED;
        slot->part = part;
        slot->gen = part->gen;
        slot->partition = rkm->partition;
        slot->offset = rkm->offset;
        slot->rkm = rkm;
        part->outstanding++;

        if (w->queue_tail)
                w->queue_tail->next = slot;
        else
                w->queue_head = slot;
        w->queue_tail = slot;
        w->queued++;
}

static void consumer_event(worker_t *w, rd_kafka_message_t *rkm) {
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                rd_kafka_message_destroy(rkm);
                return;
        }
        if (rkm->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
            rkm->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
            rkm->err == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED)
                kp_err("consumer error on %s: %s", w->tasks_topic,
                       rd_kafka_message_errstr(rkm));
        else
                kp_warn("consumer error on %s: %s", w->tasks_topic,
                        rd_kafka_message_errstr(rkm));
        rd_kafka_message_destroy(rkm);
}

/* Takes what the consumer's queue holds, up to a budget so the other
 * steps get their turn. Returns 1 if the budget ran out. */
static int poll_consumer(worker_t *w) {
        int budget = 1000;
        rd_kafka_message_t *rkm;

        while (budget-- > 0) {
                rkm = rd_kafka_consumer_poll(w->rk, 0);
                if (!rkm)
                        return 0;
                if (rkm->err)
                        consumer_event(w, rkm);
                else
                        receive_task(w, rkm);
        }
        return 1;
}

/* ---- steps 2 and 3: backend calls, results ---- */

static void publish(worker_t *w, wk_slot_t *slot);

/* Encodes the task's result and produces it. */
static void finish_call(worker_t *w, wk_slot_t *slot,
                        const kp_call_result_t *res) {
        kp_result_t result = {
            .id = slot_id(slot),
            .ok = res->ok,
            .output = res->output,
            .err_kind = res->err_kind,
            .err_message = res->err_message,
            .http_status = res->http_status,
            .worker = w->name,
            .partition = slot->partition,
            .offset = slot->offset,
            .attempts = res->attempts,
            .has_usage = res->has_usage,
            .input_tokens = res->input_tokens,
            .output_tokens = res->output_tokens,
            .duration_ms = res->duration_ms,
            .submitted_at = slot->task.submitted_at,
        };

        if (res->ok) {
                w->n_ok++;
                kp_info("task ok (%d attempt%s, %.1f ms): " KP_TASK_FMT,
                        res->attempts, res->attempts == 1 ? "" : "s",
                        res->duration_ms,
                        KP_TASK_ARGS(w->pool, w->tasks_topic, slot->partition,
                                     slot->offset, slot_id(slot)));
        } else {
                w->n_error++;
                kp_warn("task failed: %s: %s: " KP_TASK_FMT, res->err_kind,
                        res->err_message,
                        KP_TASK_ARGS(w->pool, w->tasks_topic, slot->partition,
                                     slot->offset, slot_id(slot)));
        }

        slot->payload = kp_result_encode(&result, &slot->payload_len);
        if (slot->rkm) {
                rd_kafka_message_destroy(slot->rkm);
                slot->rkm = NULL;
        }
        publish(w, slot);
}

/* A task that cannot be processed gets an error result at once. */
static void reject_task(worker_t *w, wk_slot_t *slot, const char *kind,
                        const char *message) {
        kp_call_result_t res = {
            .ok = 0, .err_kind = kind, .err_message = message};

        finish_call(w, slot, &res);
}

static void on_call_done(void *opaque, const kp_call_result_t *res) {
        wk_slot_t *slot = opaque;
        worker_t *w = wk_setup_worker();

        w->calling--;
        finish_call(w, slot, res);
}

static wk_slot_t *queue_pop(worker_t *w) {
        wk_slot_t *slot = w->queue_head;

        if (!slot)
                return NULL;
        w->queue_head = slot->next;
        if (!w->queue_head)
                w->queue_tail = NULL;
        slot->next = NULL;
        w->queued--;
        return slot;
}

static void start_calls(worker_t *w) {
        char errstr[512];
        const char *kind;
        wk_slot_t *slot;

        while (w->calling < w->concurrency && (slot = queue_pop(w))) {
                rd_kafka_message_t *rkm = slot->rkm;

                if (!slot->part->assigned || slot->gen != slot->part->gen) {
                        slot_free(w, slot);
                        continue;
                }

                kp_debug("task received: " KP_TASK_FMT,
                         KP_TASK_ARGS(w->pool, w->tasks_topic, slot->partition,
                                      slot->offset, NULL));
                if (kp_task_decode(&slot->task, rkm->payload, rkm->len,
                                   rkm->key, rkm->key_len, slot->partition,
                                   slot->offset, w->max_input, &kind, errstr,
                                   sizeof(errstr)) == -1) {
                        reject_task(w, slot, kind, errstr);
                        continue;
                }
                if (kp_client_start(w->client, &slot->task, rkm->payload,
                                    rkm->len, slot, errstr,
                                    sizeof(errstr)) == -1) {
                        reject_task(w, slot, KP_ERR_BACKEND, errstr);
                        continue;
                }
                slot->state = WK_CALLING;
                w->calling++;
        }
}

/* ---- step 4: publishing results ---- */

static void publish_later(worker_t *w, wk_slot_t *slot, long delay_ms) {
        slot->publish_at = wk_now_ms() + delay_ms;
        slot->next = w->publish_retry;
        w->publish_retry = slot;
}

static void publish(worker_t *w, wk_slot_t *slot) {
        rd_kafka_resp_err_t err;

        if (slot->state != WK_PUBLISHING) {
                slot->state = WK_PUBLISHING;
                w->publishing++;
        }

        /* The payload stays ours until the delivery report: a failed
         * delivery is produced again from it. */
        err = rd_kafka_producev(
            w->prod, RD_KAFKA_V_TOPIC(w->results_topic),
            RD_KAFKA_V_KEY(slot->task.id, strlen(slot->task.id)),
            RD_KAFKA_V_VALUE(slot->payload, slot->payload_len),
            RD_KAFKA_V_OPAQUE(slot), RD_KAFKA_V_END);
        if (!err)
                return;

        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                kp_warn("cannot produce result to %s: %s: " KP_TASK_FMT,
                        w->results_topic, rd_kafka_err2str(err),
                        KP_TASK_ARGS(w->pool, w->tasks_topic, slot->partition,
                                     slot->offset, slot_id(slot)));
        publish_later(w, slot,
                      err == RD_KAFKA_RESP_ERR__QUEUE_FULL ? 10 : 1000);
}

static void retry_publishes(worker_t *w) {
        wk_slot_t *slot = w->publish_retry, *due = NULL, *next;
        int64_t now;

        if (!slot)
                return;
        now = wk_now_ms();
        w->publish_retry = NULL;
        for (; slot; slot = next) {
                next = slot->next;
                if (slot->publish_at <= now) {
                        slot->next = due;
                        due = slot;
                } else {
                        slot->next = w->publish_retry;
                        w->publish_retry = slot;
                }
        }
        for (; due; due = next) {
                next = due->next;
                due->next = NULL;
                publish(w, due);
        }
}

/* The result is durable: the task is finished, its offset may be
 * committed. */
static void task_finished(worker_t *w, wk_slot_t *slot) {
        wk_part_t *part = slot->part;

        w->publishing--;
        if (part->assigned && slot->gen == part->gen &&
            kp_track_done(part->track, slot->offset) == 1)
                w->dirty = 1;
        kp_debug("result delivered: " KP_TASK_FMT,
                 KP_TASK_ARGS(w->pool, w->tasks_topic, slot->partition,
                              slot->offset, slot_id(slot)));
        slot_free(w, slot);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                        void *opaque) {
        worker_t *w = opaque;
        wk_slot_t *slot = rkm->_private;
        long delay;

        if (!rkm->err) {
                task_finished(w, slot);
                return;
        }

        /* Not delivered: produce it again later, and never commit past
         * it meanwhile. A fatal producer error ends the worker. */
        w->n_publish_failed++;
        slot->publish_failures++;
        delay =
            250L << (slot->publish_failures < 7 ? slot->publish_failures : 7);
        kp_warn("result not delivered to %s (%s), producing it again in "
                "%ld ms: " KP_TASK_FMT,
                w->results_topic, rd_kafka_err2str(rkm->err), delay,
                KP_TASK_ARGS(w->pool, w->tasks_topic, slot->partition,
                             slot->offset, slot_id(slot)));
        publish_later(w, slot, delay);
}

/* ---- step 5: flow control ---- */

/* Takes records from each assigned partition's own queue while the local
 * queue has room, starting with a different partition each turn. Records
 * left behind stay in librdkafka's prefetch, which stops fetching once it
 * holds queued.min.messages: a full worker stops pulling from its
 * mailbox without pausing (see docs/operations.md). Returns 1 if the
 * local queue filled up. */
static int fetch_tasks(worker_t *w) {
        int32_t i, n = w->nparts;

        for (i = 0; i < n && w->queued < w->queue_high; i++) {
                wk_part_t *part = w->parts[(w->next_part + i) % n];
                rd_kafka_message_t *rkm;

                if (!part || !part->assigned || !part->rkqu)
                        continue;
                while (w->queued < w->queue_high &&
                       (rkm = rd_kafka_consume_queue(part->rkqu, 0))) {
                        if (rkm->err)
                                consumer_event(w, rkm);
                        else
                                receive_task(w, rkm);
                }
        }
        if (n > 0)
                w->next_part = (w->next_part + 1) % n;
        return w->queued >= w->queue_high;
}

/* ---- step 6: commits ---- */

/* Adds each assigned partition whose committable offset moved past its
 * last commit. When nothing of a partition is open, the consumer's
 * position is committed: it lies past transaction markers that carry no
 * task, so lag still reaches 0 behind transactional producers. */
static rd_kafka_topic_partition_list_t *commit_list(worker_t *w) {
        rd_kafka_topic_partition_list_t *list, *pos;
        int32_t i;

        list = rd_kafka_topic_partition_list_new(w->nparts ? w->nparts : 1);
        pos = rd_kafka_topic_partition_list_new(w->nparts ? w->nparts : 1);
        for (i = 0; i < w->nparts; i++)
                if (w->parts[i] && w->parts[i]->assigned &&
                    kp_track_open(w->parts[i]->track) == 0)
                        rd_kafka_topic_partition_list_add(pos, w->tasks_topic,
                                                          i);
        if (pos->cnt > 0)
                rd_kafka_position(w->rk, pos);

        for (i = 0; i < w->nparts; i++) {
                wk_part_t *part = w->parts[i];
                rd_kafka_topic_partition_t *rktpar;
                int64_t off;

                if (!part || !part->assigned)
                        continue;
                off = kp_track_commit_offset(part->track);
                rktpar =
                    rd_kafka_topic_partition_list_find(pos, w->tasks_topic, i);
                if (rktpar && rktpar->offset > off)
                        off = rktpar->offset;
                if (off < 0 || off <= part->committed)
                        continue;

                rktpar =
                    rd_kafka_topic_partition_list_add(list, w->tasks_topic, i);
                rktpar->offset = off;
                /* The worker's name rides along, so `kpool status` can
                 * tell who last worked a partition. */
                rktpar->metadata = strdup(w->name);
                rktpar->metadata_size = strlen(w->name);
        }
        rd_kafka_topic_partition_list_destroy(pos);
        return list;
}

/* The broker's answer to a commit. A partition whose commit failed is
 * forgotten, so the next turn commits it again; one whose answer is below
 * what was sent since (an older commit retried late) is committed again
 * too, or the group's offset would stay behind. */
static void commit_result(worker_t *w, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t *offsets) {
        int i;

        if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
                return;
        for (i = 0; offsets && i < offsets->cnt; i++) {
                rd_kafka_topic_partition_t *rktpar = &offsets->elems[i];
                rd_kafka_resp_err_t perr = err ? err : rktpar->err;
                wk_part_t *part = rktpar->partition < w->nparts
                                      ? w->parts[rktpar->partition]
                                      : NULL;

                if (!perr) {
                        kp_debug("committed %s [%d] at offset %lld",
                                 rktpar->topic, (int)rktpar->partition,
                                 (long long)rktpar->offset);
                        if (part && part->assigned &&
                            rktpar->offset < part->committed) {
                                part->committed = rktpar->offset;
                                w->dirty = 1;
                        }
                        continue;
                }
                kp_warn("commit of %s [%d] at offset %lld failed: %s",
                        rktpar->topic, (int)rktpar->partition,
                        (long long)rktpar->offset, rd_kafka_err2str(perr));
                if (part)
                        part->committed = -1;
                w->dirty = 1;
        }
}

static void on_commit_sync(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t *offsets,
                           void *opaque) {
        commit_result(opaque, err, offsets);
}

/* Serves the answers to asynchronous commits, waiting up to timeout_ms
 * for the first. */
static void serve_commits(worker_t *w, int timeout_ms) {
        rd_kafka_event_t *rkev;

        while ((rkev = rd_kafka_queue_poll(w->rkqu_commit, timeout_ms))) {
                timeout_ms = 0;
                if (rd_kafka_event_type(rkev) == RD_KAFKA_EVENT_OFFSET_COMMIT) {
                        w->commit_inflight = 0;
                        commit_result(
                            w, rd_kafka_event_error(rkev),
                            rd_kafka_event_topic_partition_list(rkev));
                }
                rd_kafka_event_destroy(rkev);
        }
}

/* Commits finished work. One asynchronous commit is in flight at a time,
 * and a synchronous one waits for it first: commits that overlap can
 * land out of order and leave the group's offset behind.
 * Returns 0, or -1 if a synchronous commit failed. */
static int commit(worker_t *w, int sync) {
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_resp_err_t err;
        int64_t deadline;
        int i;

        if (!sync && w->commit_inflight)
                return 0; /* dirty stays set: the next turn commits */
        deadline = wk_now_ms() + 10000;
        while (sync && w->commit_inflight && wk_now_ms() < deadline &&
               wk_stop != 2)
                serve_commits(w, 100);

        list = commit_list(w);
        w->dirty = 0;
        w->last_commit_ms = wk_now_ms();
        if (list->cnt == 0) {
                rd_kafka_topic_partition_list_destroy(list);
                return 0;
        }
        for (i = 0; i < list->cnt; i++)
                part_get(w, list->elems[i].partition)->committed =
                    list->elems[i].offset;

        if (sync)
                err =
                    rd_kafka_commit_queue(w->rk, list, NULL, on_commit_sync, w);
        else
                err =
                    rd_kafka_commit_queue(w->rk, list, w->rkqu_commit, NULL, w);
        if (!err && !sync)
                w->commit_inflight = 1;
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
                kp_warn("commit to group %s failed: %s", w->group,
                        rd_kafka_err2str(err));
                for (i = 0; i < list->cnt; i++)
                        part_get(w, list->elems[i].partition)->committed = -1;
                w->dirty = 1;
        }
        rd_kafka_topic_partition_list_destroy(list);
        return err && err != RD_KAFKA_RESP_ERR__NO_OFFSET ? -1 : 0;
}

static int idle(const worker_t *w) {
        return w->calling + w->publishing + w->queued == 0;
}

static void maybe_commit(worker_t *w) {
        int64_t now = wk_now_ms();
        int due = now - w->last_commit_ms >= w->commit_interval_ms;

        if (w->dirty && (idle(w) || due)) {
                commit(w, 0);
                return;
        }
        /* Idle: the position may have moved past transaction markers. */
        if (idle(w) && now - w->last_idle_check_ms >= w->commit_interval_ms) {
                w->last_idle_check_ms = now;
                commit(w, 0);
        }
}

/* ---- rebalances ---- */

/* Runs the backend calls and deliveries of in-flight tasks until none of
 * the partitions in `revoked` (NULL: all) has any left, or the drain
 * deadline passes. Returns the number of tasks still unfinished. */
static int drain(worker_t *w, const rd_kafka_topic_partition_list_t *revoked) {
        int64_t deadline;
        int left;

        /* A revocation drains inside the consumer's poll, and the group
         * expects the member back within max.poll.interval.ms. */
        deadline = wk_now_ms() + (revoked && w->revoke_drain_ms < w->drain_ms
                                      ? w->revoke_drain_ms
                                      : w->drain_ms);

        for (;;) {
                int i;

                left = 0;
                if (!revoked) {
                        left = w->calling + w->publishing;
                } else {
                        for (i = 0; i < revoked->cnt; i++) {
                                int32_t p = revoked->elems[i].partition;

                                if (p < w->nparts && w->parts[p])
                                        left += w->parts[p]->outstanding;
                        }
                }
                if (left == 0 || wk_now_ms() >= deadline || wk_stop == 2 ||
                    w->fatal)
                        return left;

                wk_setup_drain_wake(w);
                kp_client_run(w->client);
                rd_kafka_poll(w->prod, 0);
                serve_commits(w, 0);
                retry_publishes(w);
                kp_client_wait(w->client, &w->wake[0], 1, 50);
        }
}

/* Drops the queued (not started) tasks of `revoked` (NULL: all): their
 * records are read again by whoever owns the partition next. */
static void drop_queued(worker_t *w,
                        const rd_kafka_topic_partition_list_t *revoked) {
        wk_slot_t *slot = w->queue_head, *keep_head = NULL, *keep_tail = NULL;
        wk_slot_t *next;

        w->queue_head = w->queue_tail = NULL;
        for (; slot; slot = next) {
                next = slot->next;
                slot->next = NULL;
                if (!revoked || rd_kafka_topic_partition_list_find(
                                    revoked, w->tasks_topic, slot->partition)) {
                        w->queued--;
                        slot_free(w, slot);
                        continue;
                }
                if (keep_tail)
                        keep_tail->next = slot;
                else
                        keep_head = slot;
                keep_tail = slot;
        }
        w->queue_head = keep_head;
        w->queue_tail = keep_tail;
}

/* Reads the partition from a queue of its own rather than the consumer's
 * queue, so the loop takes only the records it has room for while still
 * serving the consumer's queue (rebalances, errors) every turn. Done
 * before the partition is assigned, so no record goes the other way. */
static void part_queue_open(worker_t *w, wk_part_t *part) {
        part->rkqu = rd_kafka_queue_get_partition(w->rk, w->tasks_topic,
                                                  part->partition);
        if (!part->rkqu) {
                kp_warn("no queue of its own for %s [%d]: its records come "
                        "through the consumer's queue",
                        w->tasks_topic, (int)part->partition);
                return;
        }
        rd_kafka_queue_forward(part->rkqu, NULL);
        rd_kafka_queue_io_event_enable(part->rkqu, w->wake[1], "t", 1);
}

static void part_queue_close(wk_part_t *part) {
        if (!part->rkqu)
                return;
        rd_kafka_queue_io_event_enable(part->rkqu, -1, NULL, 0);
        rd_kafka_queue_destroy(part->rkqu);
        part->rkqu = NULL;
}

static void assign(worker_t *w, rd_kafka_topic_partition_list_t *parts) {
        int i;

        for (i = 0; i < parts->cnt; i++) {
                wk_part_t *part = part_get(w, parts->elems[i].partition);

                part->assigned = 1;
                part->gen++;
                part_queue_open(w, part);
                part->committed = -1;
                part->outstanding = 0;
                kp_track_reset(part->track);
                kp_info("assigned %s [%d] (pool %s, group %s)", w->tasks_topic,
                        (int)part->partition, w->pool, w->group);
        }
}

/* Lets go of partitions: queued tasks are dropped, in-flight ones get
 * the drain deadline to finish, then what finished is committed. A lost
 * assignment (another worker may own them already) commits nothing. */
static void release(worker_t *w, rd_kafka_topic_partition_list_t *parts,
                    int lost) {
        int i, left = 0;

        drop_queued(w, parts);
        if (!lost) {
                left = drain(w, parts);
                commit(w, 1);
        }
        for (i = 0; i < parts->cnt; i++) {
                wk_part_t *part = part_get(w, parts->elems[i].partition);

                part->assigned = 0;
                part->gen++;
                part_queue_close(part);
                part->outstanding = 0;
                kp_track_reset(part->track);
                kp_info("%s %s [%d]%s", lost ? "lost" : "released",
                        w->tasks_topic, (int)part->partition,
                        left ? " with tasks unfinished; they will run again"
                             : "");
        }
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
        worker_t *w = opaque;
        int cooperative =
            !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
        rd_kafka_error_t *error = NULL;

        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                assign(w, parts);
                if (cooperative)
                        error = rd_kafka_incremental_assign(rk, parts);
                else
                        rd_kafka_assign(rk, parts);
        } else {
                release(w, parts, rd_kafka_assignment_lost(rk));
                if (cooperative)
                        error = rd_kafka_incremental_unassign(rk, parts);
                else
                        rd_kafka_assign(rk, NULL);
        }
        if (error) {
                kp_err("rebalance of group %s failed: %s", w->group,
                       rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
}

static void on_error(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque) {
        worker_t *w = opaque;
        char fatal[512];

        if (err == RD_KAFKA_RESP_ERR__FATAL) {
                rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
                kp_err("fatal error in %s: %s", rd_kafka_name(rk), fatal);
                w->fatal = 1;
                return;
        }
        if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
                kp_err("%s: %s", rd_kafka_name(rk), reason);
        else
                kp_warn("%s: %s", rd_kafka_name(rk), reason);
}

/* ---- the loop and shutdown ---- */

static void run(worker_t *w) {
        while (!wk_stop && !w->fatal) {
                int more, full, timeout;

                /* Emptied first: a queue that turns non-empty from here on
                 * leaves a byte in the pipe, and the sleep below ends at
                 * once. */
                wk_setup_drain_wake(w);

                more = poll_consumer(w);
                serve_commits(w, 0);
                full = fetch_tasks(w);
                start_calls(w);
                kp_client_run(w->client);
                rd_kafka_poll(w->prod, 0);
                retry_publishes(w);
                maybe_commit(w);

                /* Sleep unless work is waiting: events beyond the budget, a
                 * queued task with a free call slot, or records left
                 * behind by a full queue that has room again. */
                timeout =
                    more || (w->queue_head && w->calling < w->concurrency) ||
                            (full && w->queued < w->queue_high)
                        ? 0
                        : 100;
                kp_client_wait(w->client, &w->wake[0], 1, timeout);
        }
}

/* Stops taking work, lets in-flight calls finish within the drain
 * deadline, flushes results, commits, leaves. Returns the exit code. */
static int shutdown_worker(worker_t *w) {
        int left, rc = KP_EXIT_OK;
        int64_t deadline;

        if (w->fatal)
                return KP_EXIT_FAIL;
        kp_info("stopping: %d calls in flight, %d results unconfirmed, %d "
                "queued tasks left for later (drain deadline %ld ms)",
                w->calling, w->publishing, w->queued, w->drain_ms);
        drop_queued(w, NULL);
        left = drain(w, NULL);
        if (wk_stop == 2) {
                kp_warn("second signal: exiting without draining");
                return KP_EXIT_FAIL;
        }
        if (left > 0) {
                kp_warn("drain deadline passed with %d tasks unfinished; "
                        "they stay uncommitted and will run again",
                        left);
                rc = KP_EXIT_FAIL;
        }

        /* Whatever was produced gets its delivery report. */
        deadline = wk_now_ms() + 10000;
        while (rd_kafka_outq_len(w->prod) > 0 && wk_now_ms() < deadline &&
               wk_stop != 2)
                rd_kafka_flush(w->prod, 100);
        if (rd_kafka_outq_len(w->prod) > 0) {
                kp_warn("%d results still unconfirmed at exit; their tasks "
                        "stay uncommitted and will run again",
                        rd_kafka_outq_len(w->prod));
                rc = KP_EXIT_FAIL;
        }

        if (commit(w, 1) == -1)
                rc = KP_EXIT_FAIL;
        return rc;
}

int main(int argc, char **argv) {
        static const wk_callbacks_t callbacks = {
            .call_done = on_call_done,
            .delivery = on_delivery,
            .rebalance = on_rebalance,
            .error = on_error,
        };
        worker_t *w;
        int rc;

        kp_log_init("kpool-worker", NULL);
        rc = wk_setup(argc, argv, &callbacks);
        if (rc != -1)
                return rc; /* --help, --version, or a setup error */
        w = wk_setup_worker();

        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGPIPE, SIG_IGN);

        run(w);
        rc = shutdown_worker(w);
        if (wk_stop != 2)
                wk_teardown(w); /* leaves the group */
        kp_info("stopped: %llu ok, %llu errors, %llu result deliveries retried",
                (unsigned long long)w->n_ok, (unsigned long long)w->n_error,
                (unsigned long long)w->n_publish_failed);
        if (wk_stop == 2)
                _exit(rc);
        return rc;
}
