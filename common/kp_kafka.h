/* kp_kafka.h - Kafka helpers shared by kpool and kpool-worker: client
 * configuration from kp_conf, topic names, group offsets and lag. */
#ifndef KP_KAFKA_H
#define KP_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "kp_conf.h"

typedef enum {
        KP_KAFKA_PRODUCER,
        KP_KAFKA_CONSUMER,
        KP_KAFKA_ADMIN, /* a producer handle used for admin and metadata */
} kp_kafka_role_t;

/* Builds a librdkafka configuration: bootstrap.servers from --brokers,
 * then the file's and -X properties in order. A property prefixed
 * "producer." or "consumer." applies only to that kind of client; an
 * unprefixed one applies to all. Logs go through kp_log.
 * Returns a conf (caller owns it) or NULL with librdkafka's error text in
 * errstr. */
rd_kafka_conf_t *kp_kafka_conf_new(const kp_conf_t *conf, kp_kafka_role_t role,
                                   char *errstr, size_t errstr_size);

/* Sets one property, failing with librdkafka's error text.
 * Returns 0 or -1. */
int kp_kafka_set(rd_kafka_conf_t *kconf, const char *name, const char *value,
                 char *errstr, size_t errstr_size);

/* 1 if a librdkafka property's value may be a secret (passwords, keys,
 * tokens): such values are never echoed in messages. 0 otherwise. */
int kp_kafka_secret_name(const char *name);

/* "<pool>.tasks", "<pool>.results", "<pool>.workers" into out.
 * Returns out. */
char *kp_kafka_topic_tasks(const char *pool, char *out, size_t size);
char *kp_kafka_topic_results(const char *pool, char *out, size_t size);
char *kp_kafka_group(const char *pool, char *out, size_t size);

#endif
