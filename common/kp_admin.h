/* kp_admin.h - what kpool asks the cluster: topics, partition counts,
 * group offsets and lag. */
#ifndef KP_ADMIN_H
#define KP_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

/* The partition count of a topic. Returns it (> 0), or -1 with errstr set
 * (the topic does not exist, or the broker did not answer within
 * timeout_ms). */
int kp_admin_partition_count(rd_kafka_t *rk, const char *topic,
                             int timeout_ms, char *errstr, size_t errstr_size);

/* Per-partition view of a pool's queue. */
typedef struct kp_admin_lag {
        int32_t partition;
        int64_t low, high;   /* low and end (high) offsets */
        int64_t committed;   /* -1: the group never committed */
        int64_t lag;         /* end - committed, or end - low if never */
        char owner[256];     /* member owning it now: client id / host */
} kp_admin_lag_t;

/* Fills one row per partition of `topic` for `group`: watermarks,
 * committed offsets, lag, and the owning member's client.id and
 * group.instance.id (empty if none) from the group's description.
 * Returns the number of rows written into an array it allocates
 * (*rowsp, caller frees), or -1 with errstr set. */
int kp_admin_lag(rd_kafka_t *rk, const char *topic, const char *group,
                 int timeout_ms, kp_admin_lag_t **rowsp, char *errstr,
                 size_t errstr_size);

#endif
