/* worker.h - kpool-worker's state, shared by its modules.
 *
 * One event loop drives everything: the consumer's queue (tasks,
 * rebalances, commit results), the producer's queue (delivery reports of
 * results) and the backend calls (curl multi). A task moves through
 *   QUEUED -> CALLING -> PUBLISHING -> (freed)
 * and its partition's committed offset advances over it only once its
 * result's delivery was acknowledged (acks=all). */
#ifndef WORKER_H
#define WORKER_H

#include <signal.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "kp_client.h"
#include "kp_conf.h"
#include "kp_task.h"
#include "kp_track.h"

/* The local queue holds at most this many received tasks, or twice the
 * concurrency if that is more. */
#define WK_QUEUE_MIN_HIGH 64

typedef enum {
        WK_QUEUED,     /* received, waiting for a free call slot */
        WK_CALLING,    /* backend call in flight */
        WK_PUBLISHING, /* result produced, waiting for its delivery report */
} wk_state_t;

typedef struct wk_part wk_part_t;

typedef struct wk_slot {
        wk_state_t state;
        wk_part_t *part;
        uint32_t gen; /* the partition's generation when received */
        int32_t partition;
        int64_t offset;
        rd_kafka_message_t *rkm; /* the task record, until called */
        kp_task_t task;
        char *payload; /* the encoded result, until delivered */
        size_t payload_len;
        int64_t publish_at; /* re-produce not before (ms, monotonic) */
        int publish_failures;
        struct wk_slot *next; /* queue link */
} wk_slot_t;

struct wk_part {
        int32_t partition;
        int assigned;
        uint32_t gen;
        rd_kafka_queue_t *rkqu; /* the partition's own queue of records */
        kp_track_t *track;
        int64_t committed; /* last offset committed, -1: none */
        int outstanding;   /* slots of this generation not yet freed */
};

typedef struct worker {
        kp_conf_t *conf;
        const char *pool;
        char name[256];
        char tasks_topic[256];
        char results_topic[256];
        char group[256];
        int concurrency;
        int32_t pinned; /* --partition, or -1 */
        size_t max_input;
        long drain_ms;
        long revoke_drain_ms; /* half of max.poll.interval.ms */
        long commit_interval_ms;

        rd_kafka_t *rk;   /* consumer of <pool>.tasks */
        rd_kafka_t *prod; /* producer of results */
        rd_kafka_queue_t *rkqu_cons, *rkqu_prod;
        rd_kafka_queue_t *rkqu_commit; /* answers to asynchronous commits */
        int commit_inflight;           /* an asynchronous commit is out */
        int wake[2]; /* both queues write here when they become non-empty */
        kp_client_t *client;

        wk_part_t **parts; /* indexed by partition number */
        int32_t nparts;

        wk_slot_t *queue_head, *queue_tail; /* WK_QUEUED, in order */
        wk_slot_t *publish_retry;           /* failed deliveries to redo */
        int calling;                        /* slots in WK_CALLING */
        int publishing;                     /* slots in WK_PUBLISHING */
        int queued;                         /* slots in WK_QUEUED */
        int queue_high;                     /* take no records above this */
        int32_t next_part;                  /* fairness among partitions */
        int dirty;                          /* progress not committed */
        int64_t last_commit_ms;
        int64_t last_idle_check_ms;
        int fatal;

        /* Counters for the final log line. */
        uint64_t n_ok, n_error, n_publish_failed;
} worker_t;

/* Set by the signal handler: 1 on the first signal, 2 on the second. */
extern volatile sig_atomic_t wk_stop;

/* Milliseconds on the monotonic clock. */
int64_t wk_now_ms(void);

#endif
