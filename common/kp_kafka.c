/* kp_kafka.c - Kafka helpers shared by kpool and kpool-worker. */
#include "kp_kafka.h"

#include <stdio.h>
#include <string.h>

#include "kp_log.h"

int kp_kafka_set(rd_kafka_conf_t *kconf, const char *name, const char *value,
                 char *errstr, size_t errstr_size) {
        if (rd_kafka_conf_set(kconf, name, value, errstr, errstr_size) !=
            RD_KAFKA_CONF_OK)
                return -1;
        return 0;
}

int kp_kafka_secret_name(const char *name) {
        static const char *const words[] = {"password", "secret", "key",
                                            "token",    "jaas",   "credential"};
        size_t i;

        for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
                if (strcasestr(name, words[i]))
                        return 1;
        return 0;
}

/* librdkafka's log lines go through kp_log, tagged with its facility. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf) {
        int lvl;

        if (level <= 3)
                lvl = KP_LOG_ERROR;
        else if (level <= 4)
                lvl = KP_LOG_WARN;
        else if (level <= 6)
                lvl = KP_LOG_INFO;
        else
                lvl = KP_LOG_DEBUG;
        kp_log(lvl, "librdkafka %s: %s: %s", rd_kafka_name(rk), fac, buf);
}

/* Whether a "producer."/"consumer."-prefixed property applies to `role`;
 * strips the prefix into *namep. */
static int property_applies(const char *key, kp_kafka_role_t role,
                            const char **namep) {
        static const char producer[] = "producer.";
        static const char consumer[] = "consumer.";

        if (!strncmp(key, producer, sizeof(producer) - 1)) {
                *namep = key + sizeof(producer) - 1;
                return role != KP_KAFKA_CONSUMER;
        }
        if (!strncmp(key, consumer, sizeof(consumer) - 1)) {
                *namep = key + sizeof(consumer) - 1;
                return role == KP_KAFKA_CONSUMER;
        }
        *namep = key;
        return 1;
}

rd_kafka_conf_t *kp_kafka_conf_new(const kp_conf_t *conf, kp_kafka_role_t role,
                                   char *errstr, size_t errstr_size) {
        rd_kafka_conf_t *kconf = rd_kafka_conf_new();
        char reason[512];
        size_t i, n;

        rd_kafka_conf_set_log_cb(kconf, log_cb);

        if (kp_kafka_set(kconf, "bootstrap.servers",
                         kp_conf_str(conf, "brokers"), reason,
                         sizeof(reason)) == -1) {
                snprintf(errstr, errstr_size, "--brokers: %s", reason);
                goto fail;
        }

        /* The file's and -X properties, in the order given; later ones
         * win. Values are not echoed back: they may be passwords. */
        n = kp_conf_kafka_count(conf);
        for (i = 0; i < n; i++) {
                const char *key, *value, *name;

                kp_conf_kafka_get(conf, i, &key, &value);
                if (!property_applies(key, role, &name))
                        continue;
                if (kp_kafka_set(kconf, name, value, reason, sizeof(reason)) ==
                    -1) {
                        /* librdkafka's reason quotes the value. */
                        if (kp_kafka_secret_name(name))
                                snprintf(errstr, errstr_size,
                                         "-X %s: invalid value (not shown)",
                                         key);
                        else
                                snprintf(errstr, errstr_size, "-X %s: %s", key,
                                         reason);
                        goto fail;
                }
        }
        return kconf;

fail:
        rd_kafka_conf_destroy(kconf);
        return NULL;
}

char *kp_kafka_topic_tasks(const char *pool, char *out, size_t size) {
        snprintf(out, size, "%s.tasks", pool);
        return out;
}

char *kp_kafka_topic_results(const char *pool, char *out, size_t size) {
        snprintf(out, size, "%s.results", pool);
        return out;
}

char *kp_kafka_group(const char *pool, char *out, size_t size) {
        snprintf(out, size, "%s.workers", pool);
        return out;
}
