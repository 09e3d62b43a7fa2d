/* kp_admin.h - what kpool asks the cluster: topics, partition counts,
 * group offsets and lag.
 *
 * Every call waits at most timeout_ms for the cluster and passes
 * librdkafka's own error text on in errstr. Any client handle will do
 * (producer, consumer or a KP_KAFKA_ADMIN one). */
#ifndef KP_ADMIN_H
#define KP_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

/* Asks any broker for cluster metadata. Returns 0, or -1 with
 * librdkafka's error in errstr when no broker answered in time. */
int kp_admin_ping(rd_kafka_t *rk, int timeout_ms, char *errstr,
                  size_t errstr_size);

/* The partition count of a topic. Returns it (> 0), or -1 with errstr set
 * (the topic does not exist, or the broker did not answer within
 * timeout_ms). */
int kp_admin_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms,
                             char *errstr, size_t errstr_size);

/* Like kp_admin_partition_count() but tells a missing topic apart, and
 * never asks the broker to auto-create it. Returns the count (> 0), 0 when
 * the topic does not exist, or -1 on any other failure (errstr set). */
int kp_admin_topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms,
                              char *errstr, size_t errstr_size);

/* Creates a topic with `partitions` partitions and `replication`
 * replicas (-1: the broker's default), waiting up to timeout_ms for the
 * controller to finish. Returns 1 if it was created, 0 if it already
 * existed (nothing checked), or -1 with errstr set. */
int kp_admin_create_topic(rd_kafka_t *rk, const char *topic, int partitions,
                          int replication, int timeout_ms, char *errstr,
                          size_t errstr_size);

/* The low (earliest) and high (end) offsets of partitions 0..count-1 of
 * `topic`, into the caller's arrays low[count] and high[count].
 * Returns 0, or -1 with errstr set. */
int kp_admin_watermarks(rd_kafka_t *rk, const char *topic, int count,
                        int64_t *low, int64_t *high, int timeout_ms,
                        char *errstr, size_t errstr_size);

/* Per-partition view of a pool's queue. */
typedef struct kp_admin_lag {
        int32_t partition;
        int64_t low, high;    /* low and end (high) offsets */
        int64_t committed;    /* -1: the group never committed */
        int64_t lag;          /* end - committed, or end - low if never */
        char owner[256];      /* member owning it now: its group.instance.id
                               * if set, else its client.id; "" if none */
        char owner_host[128]; /* that member's host, "" if none */
        char last_owner[256]; /* metadata committed with the offset (the
                               * worker's name), "" if none */
} kp_admin_lag_t;

/* The group as a whole. */
typedef struct kp_admin_group {
        char state[32]; /* "Stable", "Empty", ..., "Dead" if unknown */
        int members;    /* members right now */
} kp_admin_group_t;

/* Fills one row per partition of `topic` for `group`: watermarks,
 * committed offsets (with their metadata), lag, and the owning member
 * from the group's description. groupp, when not NULL, receives the
 * group's state and member count.
 * Returns the number of rows written into an array it allocates
 * (*rowsp, caller frees), or -1 with errstr set. */
int kp_admin_group_lag(rd_kafka_t *rk, const char *topic, const char *group,
                       int timeout_ms, kp_admin_lag_t **rowsp,
                       kp_admin_group_t *groupp, char *errstr,
                       size_t errstr_size);

/* kp_admin_group_lag() without the group summary. */
int kp_admin_lag(rd_kafka_t *rk, const char *topic, const char *group,
                 int timeout_ms, kp_admin_lag_t **rowsp, char *errstr,
                 size_t errstr_size);

#endif
