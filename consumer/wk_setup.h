/* wk_setup.h - kpool-worker's start and end: configuration, backend,
 * Kafka clients, the wake-up pipe. */
#ifndef WK_SETUP_H
#define WK_SETUP_H

#include "worker.h"

/* The worker's callbacks, handed to libcurl's and librdkafka's clients. */
typedef struct wk_callbacks {
        kp_call_done_cb *call_done;
        void (*delivery)(rd_kafka_t *, const rd_kafka_message_t *, void *);
        void (*rebalance)(rd_kafka_t *, rd_kafka_resp_err_t,
                          rd_kafka_topic_partition_list_t *, void *);
        void (*error)(rd_kafka_t *, int, const char *, void *);
} wk_callbacks_t;

/* Reads the configuration and builds the worker: backend client,
 * consumer (subscribed, or assigned its --partition), producer. `cbs`
 * must outlive the worker.
 * Returns -1 when the worker is ready (see wk_setup_worker()), else the
 * exit code to return at once (0 after --help or --version, else an
 * error was logged). */
int wk_setup(int argc, char **argv, const wk_callbacks_t *cbs);

/* The one worker of this process. */
worker_t *wk_setup_worker(void);

/* Empties the wake-up pipe, so the next sleep waits for new events. */
void wk_setup_drain_wake(worker_t *w);

/* Leaves the group (or the pinned partition) and frees everything. */
void wk_teardown(worker_t *w);

#endif
