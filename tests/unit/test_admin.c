/* test_admin.c - kp_admin against librdkafka's in-process mock cluster,
 * so no broker is needed. The mock has no controller and no group
 * descriptions, so topics, owners and lag are covered by the integration
 * tests (tests/integration/1*.sh) instead; here: reaching the cluster,
 * watermarks, and requests that go unanswered failing in time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "kp_admin.h"

#define TIMEOUT_MS 5000

typedef struct fixture {
        rd_kafka_t *mock_rk; /* owns the mock cluster */
        rd_kafka_mock_cluster_t *mcluster;
        rd_kafka_t *rk; /* the client under test */
        char bootstraps[256];
} fixture_t;

static rd_kafka_t *client(const fixture_t *f) {
        rd_kafka_conf_t *kconf = rd_kafka_conf_new();
        char err[256];
        rd_kafka_t *rk;

        assert_int_equal(rd_kafka_conf_set(kconf, "bootstrap.servers",
                                           f->bootstraps, err, sizeof(err)),
                         RD_KAFKA_CONF_OK);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, err, sizeof(err));
        assert_non_null(rk);
        return rk;
}

static int setup(void **state) {
        fixture_t *f = calloc(1, sizeof(*f));
        rd_kafka_conf_t *kconf = rd_kafka_conf_new();
        char err[256];

        assert_non_null(f);
        rd_kafka_conf_set(kconf, "log_level", "0", err, sizeof(err));
        f->mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, err, sizeof(err));
        assert_non_null(f->mock_rk);
        f->mcluster = rd_kafka_mock_cluster_new(f->mock_rk, 1);
        assert_non_null(f->mcluster);
        snprintf(f->bootstraps, sizeof(f->bootstraps), "%s",
                 rd_kafka_mock_cluster_bootstraps(f->mcluster));
        f->rk = client(f);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        fixture_t *f = *state;

        rd_kafka_destroy(f->rk);
        rd_kafka_mock_cluster_destroy(f->mcluster);
        rd_kafka_destroy(f->mock_rk);
        free(f);
        return 0;
}

/* Produces n records to topic [partition] and waits for them. */
static void produce(fixture_t *f, const char *topic, int32_t partition, int n) {
        int i;

        for (i = 0; i < n; i++)
                assert_int_equal(
                    rd_kafka_producev(f->rk, RD_KAFKA_V_TOPIC(topic),
                                      RD_KAFKA_V_PARTITION(partition),
                                      RD_KAFKA_V_VALUE("x", 1),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_END),
                    RD_KAFKA_RESP_ERR_NO_ERROR);
        assert_int_equal(rd_kafka_flush(f->rk, TIMEOUT_MS),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
}

static void test_ping_answers(void **state) {
        fixture_t *f = *state;
        char err[256];

        assert_int_equal(kp_admin_ping(f->rk, TIMEOUT_MS, err, sizeof(err)), 0);
}

static void test_watermarks_count_records(void **state) {
        fixture_t *f = *state;
        int64_t low[3], high[3];
        char err[256];

        rd_kafka_mock_topic_create(f->mcluster, "wm.tasks", 3, 1);
        produce(f, "wm.tasks", 1, 5);
        produce(f, "wm.tasks", 2, 2);

        assert_int_equal(kp_admin_watermarks(f->rk, "wm.tasks", 3, low, high,
                                             TIMEOUT_MS, err, sizeof(err)),
                         0);
        assert_int_equal(low[0], 0);
        assert_int_equal(high[0], 0);
        assert_int_equal(high[1], 5);
        assert_int_equal(high[2], 2);
}

static void test_unanswered_request_fails_in_time(void **state) {
        fixture_t *f = *state;
        kp_admin_lag_t *rows = NULL;
        char err[256];
        time_t start = time(NULL);

        /* Topic descriptions need a controller, which the mock lacks. */
        assert_int_equal(
            kp_admin_topic_partitions(f->rk, "t.tasks", 500, err, sizeof(err)),
            -1);
        assert_non_null(strstr(err, "describing topic t.tasks: "));
        assert_int_equal(kp_admin_lag(f->rk, "t.tasks", "t.workers", 500, &rows,
                                      err, sizeof(err)),
                         -1);
        assert_null(rows);
        assert_true(time(NULL) - start <= 8);
}

static void test_unreachable_cluster_fails_ping(void **state) {
        rd_kafka_conf_t *kconf = rd_kafka_conf_new();
        char err[256];
        rd_kafka_t *rk;

        (void)state;
        rd_kafka_conf_set(kconf, "bootstrap.servers", "127.0.0.1:1", err,
                          sizeof(err));
        rd_kafka_conf_set(kconf, "log_level", "0", err, sizeof(err));
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, err, sizeof(err));
        assert_non_null(rk);
        err[0] = '\0';
        assert_int_equal(kp_admin_ping(rk, 300, err, sizeof(err)), -1);
        assert_true(strlen(err) > 0);
        rd_kafka_destroy(rk);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_ping_answers, setup, teardown),
            cmocka_unit_test_setup_teardown(test_watermarks_count_records,
                                            setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_unanswered_request_fails_in_time, setup, teardown),
            cmocka_unit_test(test_unreachable_cluster_fails_ping),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
