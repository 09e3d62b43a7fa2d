/* test_kafka.c - librdkafka configurations built from kpool's config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kp_kafka.h"
#include "kp_opts.h"

static kp_conf_t *load(int argc, char **argv) {
        kp_conf_t *conf = kp_conf_new(kp_opts_worker, kp_opts_worker_count);
        char err[256];

        assert_int_equal(kp_conf_load(conf, argc, argv, err, sizeof(err)), 0);
        return conf;
}

static void get(rd_kafka_conf_t *kconf, const char *name, char *out,
                size_t size) {
        assert_int_equal(rd_kafka_conf_get(kconf, name, out, &size),
                         RD_KAFKA_CONF_OK);
}

static void test_brokers_become_bootstrap_servers(void **state) {
        char *argv[] = {"w", "-b", "k1:9092,k2:9092", NULL};
        kp_conf_t *conf = load(3, argv);
        char err[256], value[256];
        rd_kafka_conf_t *kconf;

        kconf = kp_kafka_conf_new(conf, KP_KAFKA_CONSUMER, err, sizeof(err));
        assert_non_null(kconf);
        get(kconf, "bootstrap.servers", value, sizeof(value));
        assert_string_equal(value, "k1:9092,k2:9092");
        rd_kafka_conf_destroy(kconf);
        kp_conf_destroy(conf);
}

static void test_prefixes_target_one_kind_of_client(void **state) {
        char *argv[] = {"w",
                        "-X",
                        "consumer.fetch.wait.max.ms=7",
                        "-X",
                        "producer.linger.ms=9",
                        "-X",
                        "client.id=both",
                        NULL};
        kp_conf_t *conf = load(7, argv);
        char err[256], value[256];
        rd_kafka_conf_t *cons, *prod;

        cons = kp_kafka_conf_new(conf, KP_KAFKA_CONSUMER, err, sizeof(err));
        prod = kp_kafka_conf_new(conf, KP_KAFKA_PRODUCER, err, sizeof(err));
        assert_non_null(cons);
        assert_non_null(prod);
        get(cons, "fetch.wait.max.ms", value, sizeof(value));
        assert_string_equal(value, "7");
        get(prod, "linger.ms", value, sizeof(value));
        assert_string_equal(value, "9");
        get(cons, "linger.ms", value, sizeof(value));
        assert_string_not_equal(value, "9");
        get(cons, "client.id", value, sizeof(value));
        assert_string_equal(value, "both");
        get(prod, "client.id", value, sizeof(value));
        assert_string_equal(value, "both");
        rd_kafka_conf_destroy(cons);
        rd_kafka_conf_destroy(prod);
        kp_conf_destroy(conf);
}

static void test_bad_property_names_it_with_librdkafkas_reason(void **state) {
        char *argv[] = {"w", "-X", "no.such.property=1", NULL};
        kp_conf_t *conf = load(3, argv);
        char err[256];

        assert_null(
            kp_kafka_conf_new(conf, KP_KAFKA_PRODUCER, err, sizeof(err)));
        assert_non_null(strstr(err, "-X no.such.property"));
        assert_non_null(strstr(err, "No such configuration property"));
        kp_conf_destroy(conf);
}

static void test_secret_names_are_recognised(void **state) {
        assert_true(kp_kafka_secret_name("sasl.password"));
        assert_true(kp_kafka_secret_name("ssl.key.password"));
        assert_true(kp_kafka_secret_name("sasl.oauthbearer.client.secret"));
        assert_true(kp_kafka_secret_name("ssl.key.pem"));
        assert_true(
            kp_kafka_secret_name("sasl.oauthbearer.token.endpoint.url"));
        assert_false(kp_kafka_secret_name("bootstrap.servers"));
        assert_false(kp_kafka_secret_name("linger.ms"));
}

static void test_pool_names_its_topics_and_group(void **state) {
        char buf[64];

        assert_string_equal(kp_kafka_topic_tasks("docs", buf, sizeof(buf)),
                            "docs.tasks");
        assert_string_equal(kp_kafka_topic_results("docs", buf, sizeof(buf)),
                            "docs.results");
        assert_string_equal(kp_kafka_group("docs", buf, sizeof(buf)),
                            "docs.workers");
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_brokers_become_bootstrap_servers),
            cmocka_unit_test(test_prefixes_target_one_kind_of_client),
            cmocka_unit_test(
                test_bad_property_names_it_with_librdkafkas_reason),
            cmocka_unit_test(test_secret_names_are_recognised),
            cmocka_unit_test(test_pool_names_its_topics_and_group),
        };

        unsetenv("KPOOL_CONFIG");
        return cmocka_run_group_tests(tests, NULL, NULL);
}
