/* test_track.c - the committed offset advances only over finished tasks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kp_track.h"

static void test_nothing_finished_commits_nothing(void **state) {
        kp_track_t *t = kp_track_new();

        assert_int_equal(kp_track_commit_offset(t), -1);
        assert_int_equal(kp_track_add(t, 5), 0);
        assert_int_equal(kp_track_commit_offset(t), -1);
        assert_int_equal(kp_track_open(t), 1);
        kp_track_destroy(t);
}

static void test_in_order_finish_advances_each_time(void **state) {
        kp_track_t *t = kp_track_new();
        int64_t o;

        for (o = 0; o < 3; o++)
                assert_int_equal(kp_track_add(t, o), 0);
        assert_int_equal(kp_track_done(t, 0), 1);
        assert_int_equal(kp_track_commit_offset(t), 1);
        assert_int_equal(kp_track_done(t, 1), 1);
        assert_int_equal(kp_track_done(t, 2), 1);
        assert_int_equal(kp_track_commit_offset(t), 3);
        assert_int_equal(kp_track_open(t), 0);
        kp_track_destroy(t);
}

static void test_out_of_order_finish_waits_for_the_gap(void **state) {
        kp_track_t *t = kp_track_new();
        int64_t o;

        for (o = 10; o < 14; o++)
                assert_int_equal(kp_track_add(t, o), 0);
        assert_int_equal(kp_track_done(t, 12), 0);
        assert_int_equal(kp_track_done(t, 11), 0);
        assert_int_equal(kp_track_commit_offset(t), -1);
        assert_int_equal(kp_track_done(t, 10), 1);
        /* 10..12 finished, 13 open: commit up to 13. */
        assert_int_equal(kp_track_commit_offset(t), 13);
        assert_int_equal(kp_track_open(t), 1);
        kp_track_destroy(t);
}

static void test_gaps_in_offsets_are_allowed(void **state) {
        kp_track_t *t = kp_track_new();

        assert_int_equal(kp_track_add(t, 3), 0);
        assert_int_equal(kp_track_add(t, 7), 0);
        assert_int_equal(kp_track_done(t, 3), 1);
        assert_int_equal(kp_track_commit_offset(t), 7);
        assert_int_equal(kp_track_done(t, 7), 1);
        assert_int_equal(kp_track_commit_offset(t), 8);
        kp_track_destroy(t);
}

static void test_rejects_unknown_and_decreasing_offsets(void **state) {
        kp_track_t *t = kp_track_new();

        assert_int_equal(kp_track_add(t, 4), 0);
        assert_int_equal(kp_track_add(t, 4), -1);
        assert_int_equal(kp_track_add(t, 2), -1);
        assert_int_equal(kp_track_add(t, -1), -1);
        assert_int_equal(kp_track_done(t, 9), -1);
        assert_int_equal(kp_track_done(t, 4), 1);
        assert_int_equal(kp_track_done(t, 4), -1);
        kp_track_destroy(t);
}

static void test_many_offsets_grow_the_ring(void **state) {
        kp_track_t *t = kp_track_new();
        int64_t o;

        for (o = 0; o < 1000; o++)
                assert_int_equal(kp_track_add(t, o), 0);
        /* Finish the odd ones, then the even: only the last even
         * releases everything. */
        for (o = 1; o < 1000; o += 2)
                kp_track_done(t, o);
        assert_int_equal(kp_track_commit_offset(t), -1);
        for (o = 0; o < 1000; o += 2)
                kp_track_done(t, o);
        assert_int_equal(kp_track_commit_offset(t), 1000);
        assert_int_equal(kp_track_open(t), 0);
        kp_track_destroy(t);
}

static void test_wraparound_keeps_order(void **state) {
        kp_track_t *t = kp_track_new();
        int64_t next = 0, o;
        int round;

        /* Keep 10 open while sliding far past the initial capacity. */
        for (o = 0; o < 10; o++)
                kp_track_add(t, next++);
        for (round = 0; round < 100; round++) {
                assert_int_equal(kp_track_done(t, next - 10), 1);
                kp_track_add(t, next++);
        }
        assert_int_equal(kp_track_commit_offset(t), next - 10);
        assert_int_equal(kp_track_open(t), 10);
        kp_track_destroy(t);
}

static void test_reset_forgets_everything(void **state) {
        kp_track_t *t = kp_track_new();

        kp_track_add(t, 1);
        kp_track_done(t, 1);
        kp_track_reset(t);
        assert_int_equal(kp_track_commit_offset(t), -1);
        assert_int_equal(kp_track_open(t), 0);
        assert_int_equal(kp_track_add(t, 0), 0);
        kp_track_destroy(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_nothing_finished_commits_nothing),
            cmocka_unit_test(test_in_order_finish_advances_each_time),
            cmocka_unit_test(test_out_of_order_finish_waits_for_the_gap),
            cmocka_unit_test(test_gaps_in_offsets_are_allowed),
            cmocka_unit_test(test_rejects_unknown_and_decreasing_offsets),
            cmocka_unit_test(test_many_offsets_grow_the_ring),
            cmocka_unit_test(test_wraparound_keeps_order),
            cmocka_unit_test(test_reset_forgets_everything),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
