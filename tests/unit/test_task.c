/* test_task.c - the task and result wire formats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kp_task.h"

#define LIMIT 262144

/* Decodes a NUL-terminated value with a key; returns the status. */
static int decode(kp_task_t *task, const char *value, const char *key,
                  const char **kind, char *err, size_t err_size) {
        return kp_task_decode(task, value, strlen(value), key,
                              key ? strlen(key) : 0, 3, 42, LIMIT, kind, err,
                              err_size);
}

/* Decodes a value that must fail with `kind`; checks the id is set and
 * returns nothing else. */
static void expect_fail(const char *value, const char *kind,
                        const char *msg_part) {
        kp_task_t task;
        const char *got;
        char err[256];

        assert_int_equal(decode(&task, value, "k1", &got, err, sizeof(err)),
                         -1);
        assert_non_null(got);
        assert_string_equal(got, kind);
        assert_non_null(task.id);
        assert_null(task.input);
        if (msg_part && !strstr(err, msg_part))
                fail_msg("error \"%s\" lacks \"%s\"", err, msg_part);
        kp_task_clear(&task);
}

static json_object *parse(const char *s) {
        json_object *obj = json_tokener_parse(s);

        assert_non_null(obj);
        return obj;
}

static const char *get_str(json_object *obj, const char *name) {
        json_object *v;

        if (!json_object_object_get_ex(obj, name, &v))
                fail_msg("no member \"%s\"", name);
        assert_true(json_object_is_type(v, json_type_string));
        return json_object_get_string(v);
}

static int has(json_object *obj, const char *name) {
        return json_object_object_get_ex(obj, name, NULL);
}

/* ---- UTF-8 ---- */

static void utf8_accepts_well_formed_text(void **state) {
        (void)state;
        assert_true(kp_utf8_valid("", 0));
        assert_true(kp_utf8_valid("plain ascii text, long enough", 29));
        assert_true(kp_utf8_valid("\xc3\xa9", 2));         /* é */
        assert_true(kp_utf8_valid("\xe2\x82\xac", 3));     /* € */
        assert_true(kp_utf8_valid("\xf0\x9f\x98\x80", 4)); /* 😀 */
        assert_true(kp_utf8_valid("\xed\x9f\xbf", 3));     /* U+D7FF */
        assert_true(kp_utf8_valid("\xee\x80\x80", 3));     /* U+E000 */
        assert_true(kp_utf8_valid("\xf4\x8f\xbf\xbf", 4)); /* U+10FFFF */
        assert_true(kp_utf8_valid("\xc2\x80", 2));         /* U+0080 */
        assert_true(kp_utf8_valid("\xe0\xa0\x80", 3));     /* U+0800 */
        assert_true(kp_utf8_valid("\xf0\x90\x80\x80", 4)); /* U+10000 */
        assert_true(kp_utf8_valid("a\0b", 3));             /* NUL is text */
}

static void utf8_rejects_overlongs(void **state) {
        (void)state;
        assert_false(kp_utf8_valid("\xc0\x80", 2));
        assert_false(kp_utf8_valid("\xc1\xbf", 2));
        assert_false(kp_utf8_valid("\xe0\x80\x80", 3));
        assert_false(kp_utf8_valid("\xe0\x9f\xbf", 3));
        assert_false(kp_utf8_valid("\xf0\x80\x80\x80", 4));
        assert_false(kp_utf8_valid("\xf0\x8f\xbf\xbf", 4));
}

static void utf8_rejects_surrogates(void **state) {
        (void)state;
        assert_false(kp_utf8_valid("\xed\xa0\x80", 3)); /* U+D800 */
        assert_false(kp_utf8_valid("\xed\xbf\xbf", 3)); /* U+DFFF */
        /* A surrogate pair spelt as two CESU-8 sequences. */
        assert_false(kp_utf8_valid("\xed\xa0\xbd\xed\xb8\x80", 6));
}

static void utf8_rejects_beyond_unicode(void **state) {
        (void)state;
        assert_false(kp_utf8_valid("\xf4\x90\x80\x80", 4));
        assert_false(kp_utf8_valid("\xf5\x80\x80\x80", 4));
        assert_false(kp_utf8_valid("\xff", 1));
        assert_false(kp_utf8_valid("\xfe", 1));
}

static void utf8_rejects_truncated_and_stray_bytes(void **state) {
        (void)state;
        assert_false(kp_utf8_valid("\xe2\x82", 2));
        assert_false(kp_utf8_valid("\xf0\x9f\x98", 3));
        assert_false(kp_utf8_valid("\xc3", 1));
        assert_false(kp_utf8_valid("\x80", 1));
        assert_false(kp_utf8_valid("\xc3x", 2));
        assert_false(kp_utf8_valid("\xe2\x28\xa1", 3));
        /* Only the given length counts: a full sequence cut short. */
        assert_false(kp_utf8_valid("\xe2\x82\xac", 2));
}

static void utf8_finds_bad_bytes_after_ascii_runs(void **state) {
        char buf[100];
        size_t i;

        (void)state;
        /* A bad byte at every position, behind and between the 8-byte
         * chunks of the ASCII fast path. */
        for (i = 0; i < sizeof(buf); i++) {
                memset(buf, 'a', sizeof(buf));
                buf[i] = (char)0x80;
                assert_false(kp_utf8_valid(buf, sizeof(buf)));
        }
        memset(buf, 'a', sizeof(buf));
        memcpy(buf + 61, "\xe2\x82\xac", 3);
        assert_true(kp_utf8_valid(buf, sizeof(buf)));
        buf[63] = 'a';
        assert_false(kp_utf8_valid(buf, sizeof(buf)));
}

/* ---- ids and time ---- */

static void new_id_is_32_lowercase_hex_and_fresh(void **state) {
        char a[33], b[33];
        size_t i;

        (void)state;
        kp_task_new_id(a);
        kp_task_new_id(b);
        assert_int_equal(strlen(a), 32);
        for (i = 0; i < 32; i++)
                assert_non_null(strchr("0123456789abcdef", a[i]));
        assert_string_not_equal(a, b);
}

static void time_is_rfc3339_utc_with_microseconds(void **state) {
        char t[40];
        int y, mo, d, h, mi, s, us;
        char z;

        (void)state;
        kp_time_rfc3339(t, sizeof(t));
        assert_int_equal(strlen(t), 27);
        assert_int_equal(sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d.%6d%c", &y, &mo, &d,
                                &h, &mi, &s, &us, &z),
                         8);
        assert_true(y >= 2024);
        assert_int_equal(z, 'Z');
}

/* ---- decode: plain text ---- */

static void decode_plain_text_trims_one_newline(void **state) {
        kp_task_t task;
        const char *kind;
        char err[256];

        (void)state;
        assert_int_equal(
            decode(&task, "What is 2+2?\n", "key-1", &kind, err, sizeof(err)),
            0);
        assert_string_equal(task.input, "What is 2+2?");
        assert_string_equal(task.id, "key-1");
        assert_int_equal(task.plain, 1);
        assert_null(task.role);
        assert_int_equal(task.max_tokens, 0);
        assert_null(task.meta);
        kp_task_clear(&task);

        assert_int_equal(
            decode(&task, "two\n\n", NULL, &kind, err, sizeof(err)), 0);
        assert_string_equal(task.input, "two\n");
        kp_task_clear(&task);

        assert_int_equal(
            decode(&task, "crlf\r\n", NULL, &kind, err, sizeof(err)), 0);
        assert_string_equal(task.input, "crlf");
        kp_task_clear(&task);

        assert_int_equal(
            decode(&task, "  spaced  ", NULL, &kind, err, sizeof(err)), 0);
        assert_string_equal(task.input, "  spaced  ");
        kp_task_clear(&task);
}

static void decode_non_object_json_is_plain_text(void **state) {
        kp_task_t task;
        const char *kind;
        char err[256];

        (void)state;
        assert_int_equal(decode(&task, "[1, 2]", NULL, &kind, err, sizeof(err)),
                         0);
        assert_string_equal(task.input, "[1, 2]");
        assert_int_equal(task.plain, 1);
        kp_task_clear(&task);
}

static void decode_id_falls_back_to_key_then_position(void **state) {
        kp_task_t task;
        const char *kind;
        char err[256];

        (void)state;
        assert_int_equal(kp_task_decode(&task, "hi", 2, NULL, 0, 7, 1234, LIMIT,
                                        &kind, err, sizeof(err)),
                         0);
        assert_string_equal(task.id, "p7-o1234");
        kp_task_clear(&task);

        /* An empty key and a key that is not UTF-8 are not ids. */
        assert_int_equal(kp_task_decode(&task, "hi", 2, "", 0, 0, 0, LIMIT,
                                        &kind, err, sizeof(err)),
                         0);
        assert_string_equal(task.id, "p0-o0");
        kp_task_clear(&task);

        assert_int_equal(kp_task_decode(&task, "hi", 2, "\xff\xfe", 2, 1, 9,
                                        LIMIT, &kind, err, sizeof(err)),
                         0);
        assert_string_equal(task.id, "p1-o9");
        kp_task_clear(&task);

        /* The key is taken by its length, not up to a NUL. */
        assert_int_equal(kp_task_decode(&task, "hi", 2, "abcdef", 3, 1, 9,
                                        LIMIT, &kind, err, sizeof(err)),
                         0);
        assert_string_equal(task.id, "abc");
        kp_task_clear(&task);
}

/* ---- decode: JSON ---- */

static void decode_json_reads_every_field(void **state) {
        kp_task_t task;
        const char *kind;
        char err[256];
        json_object *v;

        (void)state;
        assert_int_equal(
            decode(&task,
                   "  {\"id\":\"t-1\",\"input\":\"Hi \\\"there\\\"\\n\","
                   "\"role\":\"terse\",\"max_tokens\":77,"
                   "\"meta\":{\"user\":\"u9\"},\"reply_to\":\"x.results\","
                   "\"submitted_at\":\"2026-01-02T03:04:05.000006Z\"}\n",
                   "key-ignored", &kind, err, sizeof(err)),
            0);
        assert_string_equal(task.id, "t-1");
        assert_string_equal(task.input, "Hi \"there\"\n");
        assert_string_equal(task.role, "terse");
        assert_int_equal(task.max_tokens, 77);
        assert_int_equal(task.plain, 0);
        assert_string_equal(task.submitted_at, "2026-01-02T03:04:05.000006Z");
        assert_non_null(task.meta);
        assert_true(json_object_object_get_ex(task.meta, "user", &v));
        assert_string_equal(json_object_get_string(v), "u9");
        kp_task_clear(&task);
        assert_null(task.id);
}

static void decode_json_without_id_uses_key(void **state) {
        kp_task_t task;
        const char *kind;
        char err[256];

        (void)state;
        assert_int_equal(decode(&task, "{\"input\":\"x\"}", "the-key", &kind,
                                err, sizeof(err)),
                         0);
        assert_string_equal(task.id, "the-key");
        assert_string_equal(task.input, "x");
        kp_task_clear(&task);
}

static void decode_json_empty_role_means_pool_role(void **state) {
        kp_task_t task;
        const char *kind;
        char err[256];

        (void)state;
        assert_int_equal(decode(&task, "{\"input\":\"x\",\"role\":\"\"}", NULL,
                                &kind, err, sizeof(err)),
                         0);
        assert_null(task.role);
        kp_task_clear(&task);
}

static void
decode_json_escaped_lone_surrogate_becomes_replacement(void **state) {
        kp_task_t task;
        const char *kind;
        char err[256];

        (void)state;
        assert_int_equal(decode(&task, "{\"input\":\"a\\ud800b\"}", NULL, &kind,
                                err, sizeof(err)),
                         0);
        assert_string_equal(task.input, "a\xef\xbf\xbd"
                                        "b");
        assert_true(kp_utf8_valid(task.input, strlen(task.input)));
        kp_task_clear(&task);
}

/* ---- decode: every error kind ---- */

static void decode_rejects_invalid_utf8_first(void **state) {
        (void)state;
        expect_fail("plain \xc0\x80 text", KP_ERR_INVALID_UTF8, "offset 6");
        /* Even when the JSON would be broken too. */
        expect_fail("{\"input\":\"\xed\xa0\x80\"", KP_ERR_INVALID_UTF8,
                    "UTF-8");
        expect_fail("{\"input\":\"x\"}\xf4\x90\x80\x80", KP_ERR_INVALID_UTF8,
                    NULL);
}

static void decode_rejects_nul_bytes(void **state) {
        kp_task_t task;
        const char *kind;
        char err[256];

        (void)state;
        assert_int_equal(kp_task_decode(&task, "ab\0cd", 5, "k", 1, 0, 0, LIMIT,
                                        &kind, err, sizeof(err)),
                         -1);
        assert_string_equal(kind, KP_ERR_INVALID_UTF8);
        assert_non_null(strstr(err, "NUL"));
        assert_string_equal(task.id, "k");
        kp_task_clear(&task);

        expect_fail("{\"input\":\"a\\u0000b\"}", KP_ERR_INVALID_JSON, "NUL");
}

static void decode_rejects_broken_json(void **state) {
        kp_task_t task;
        const char *kind;
        char err[256];

        (void)state;
        expect_fail("{\"input\":\"x\"} junk", KP_ERR_INVALID_JSON,
                    "unexpected character");
        expect_fail("{\"input\":\"x\"}{}", KP_ERR_INVALID_JSON, NULL);
        expect_fail("{\"input\":\"x\"", KP_ERR_INVALID_JSON,
                    "unexpected end of data");
        expect_fail("{\"input\":'x'}", KP_ERR_INVALID_JSON, NULL);
        expect_fail("{\"input\":\"x\",}", KP_ERR_INVALID_JSON, NULL);
        expect_fail("{", KP_ERR_INVALID_JSON, NULL);

        /* The id of broken JSON is the key, else the position. */
        assert_int_equal(kp_task_decode(&task, "{\"id\":\"lost\"", 12, NULL, 0,
                                        2, 5, LIMIT, &kind, err, sizeof(err)),
                         -1);
        assert_string_equal(kind, KP_ERR_INVALID_JSON);
        assert_string_equal(task.id, "p2-o5");
        kp_task_clear(&task);
}

static void decode_rejects_missing_input(void **state) {
        (void)state;
        expect_fail("", KP_ERR_MISSING_INPUT, "empty");
        expect_fail(" \n\t ", KP_ERR_MISSING_INPUT, "whitespace");
        expect_fail("\n", KP_ERR_MISSING_INPUT, NULL);
        expect_fail("{}", KP_ERR_MISSING_INPUT, "missing");
        expect_fail("{\"id\":\"a\"}", KP_ERR_MISSING_INPUT, "missing");
        expect_fail("{\"input\":\"\"}", KP_ERR_MISSING_INPUT, "empty");
        expect_fail("{\"input\":42}", KP_ERR_MISSING_INPUT, "a number");
        expect_fail("{\"input\":null}", KP_ERR_MISSING_INPUT, "null");
        expect_fail("{\"input\":[\"x\"]}", KP_ERR_MISSING_INPUT, "an array");
}

static void decode_names_the_bad_field(void **state) {
        (void)state;
        expect_fail("{\"input\":\"x\",\"role\":5}", KP_ERR_INVALID_JSON,
                    "\"role\"");
        expect_fail("{\"input\":\"x\",\"role\":null}", KP_ERR_INVALID_JSON,
                    "\"role\"");
        expect_fail("{\"input\":\"x\",\"max_tokens\":0}", KP_ERR_INVALID_JSON,
                    "\"max_tokens\"");
        expect_fail("{\"input\":\"x\",\"max_tokens\":-3}", KP_ERR_INVALID_JSON,
                    "\"max_tokens\"");
        expect_fail("{\"input\":\"x\",\"max_tokens\":1.5}", KP_ERR_INVALID_JSON,
                    "\"max_tokens\"");
        expect_fail("{\"input\":\"x\",\"max_tokens\":\"10\"}",
                    KP_ERR_INVALID_JSON, "\"max_tokens\"");
        expect_fail("{\"input\":\"x\",\"max_tokens\":3000000000}",
                    KP_ERR_INVALID_JSON, "\"max_tokens\"");
        expect_fail("{\"input\":\"x\",\"id\":7}", KP_ERR_INVALID_JSON,
                    "\"id\"");
        expect_fail("{\"input\":\"x\",\"id\":\"\"}", KP_ERR_INVALID_JSON,
                    "\"id\"");
}

static void decode_error_keeps_the_json_id(void **state) {
        kp_task_t task;
        const char *kind;
        char err[256];

        (void)state;
        assert_int_equal(decode(&task, "{\"id\":\"mine\",\"input\":5}", "k",
                                &kind, err, sizeof(err)),
                         -1);
        assert_string_equal(task.id, "mine");
        assert_string_equal(kind, KP_ERR_MISSING_INPUT);
        kp_task_clear(&task);

        /* A bad id is not used: the key stands in. */
        assert_int_equal(decode(&task, "{\"id\":[],\"input\":\"x\"}", "k",
                                &kind, err, sizeof(err)),
                         -1);
        assert_string_equal(task.id, "k");
        kp_task_clear(&task);
}

static void decode_rejects_input_over_the_limit(void **state) {
        kp_task_t task;
        const char *kind;
        char err[256];
        size_t n = 300000;
        char *big = malloc(n + 32);

        (void)state;
        memset(big, 'x', n);
        assert_int_equal(kp_task_decode(&task, big, n, "k", 1, 0, 0, LIMIT,
                                        &kind, err, sizeof(err)),
                         -1);
        assert_string_equal(kind, KP_ERR_INPUT_TOO_LARGE);
        assert_string_equal(err,
                            "input is 300000 bytes, over the limit of 262144");
        assert_string_equal(task.id, "k");
        kp_task_clear(&task);

        /* Exactly at the limit is fine; the trimmed newline is free. */
        big[LIMIT] = '\n';
        assert_int_equal(kp_task_decode(&task, big, LIMIT + 1, "k", 1, 0, 0,
                                        LIMIT, &kind, err, sizeof(err)),
                         0);
        assert_int_equal(strlen(task.input), LIMIT);
        kp_task_clear(&task);

        /* The same limit applies to a JSON input. */
        big[LIMIT] = 'x';
        memcpy(big, "{\"input\":\"", 10);
        memcpy(big + n - 2, "\"}", 2);
        assert_int_equal(kp_task_decode(&task, big, n, "k", 1, 0, 0, LIMIT,
                                        &kind, err, sizeof(err)),
                         -1);
        assert_string_equal(kind, KP_ERR_INPUT_TOO_LARGE);
        assert_non_null(strstr(err, "299988 bytes"));
        kp_task_clear(&task);
        free(big);
}

/* ---- encode ---- */

static void encode_plain_input_gets_id_and_time(void **state) {
        char err[256], *id = NULL, *s;
        json_object *obj;

        (void)state;
        s = kp_task_encode("Hello", NULL, NULL, &id, err, sizeof(err));
        assert_non_null(s);
        assert_non_null(id);
        assert_int_equal(strlen(id), 32);

        obj = parse(s);
        assert_string_equal(get_str(obj, "id"), id);
        assert_string_equal(get_str(obj, "input"), "Hello");
        assert_int_equal(strlen(get_str(obj, "submitted_at")), 27);
        assert_false(has(obj, "role"));
        json_object_put(obj);
        free(s);
        free(id);
}

static void encode_keeps_extra_members(void **state) {
        char err[256], *id = NULL, *s;
        json_object *extra, *obj, *v;

        (void)state;
        extra = parse("{\"id\":\"from-json\",\"role\":\"r\",\"max_tokens\":9,"
                      "\"meta\":{\"a\":[1,2]},\"reply_to\":\"t\","
                      "\"submitted_at\":\"2020-01-01T00:00:00.000000Z\"}");
        s = kp_task_encode("q/1", extra, NULL, &id, err, sizeof(err));
        assert_non_null(s);
        assert_string_equal(id, "from-json");
        /* No escaped slash in the output. */
        assert_non_null(strstr(s, "\"q/1\""));

        obj = parse(s);
        assert_string_equal(get_str(obj, "id"), "from-json");
        assert_string_equal(get_str(obj, "role"), "r");
        assert_string_equal(get_str(obj, "reply_to"), "t");
        assert_string_equal(get_str(obj, "submitted_at"),
                            "2020-01-01T00:00:00.000000Z");
        assert_true(json_object_object_get_ex(obj, "max_tokens", &v));
        assert_int_equal(json_object_get_int(v), 9);
        assert_true(json_object_object_get_ex(obj, "meta", &v));
        assert_true(json_object_is_type(v, json_type_object));
        json_object_put(obj);
        free(s);
        free(id);

        /* A given id wins over the JSON's. */
        s = kp_task_encode("q", extra, "given", &id, err, sizeof(err));
        assert_non_null(s);
        assert_string_equal(id, "given");
        obj = parse(s);
        assert_string_equal(get_str(obj, "id"), "given");
        json_object_put(obj);
        free(s);
        free(id);
        json_object_put(extra);
}

static void encode_takes_input_from_extra(void **state) {
        char err[256], *id = NULL, *s;
        json_object *extra, *obj;

        (void)state;
        extra = parse("{\"input\":\"from json\"}");
        s = kp_task_encode(NULL, extra, "i", &id, err, sizeof(err));
        assert_non_null(s);
        obj = parse(s);
        assert_string_equal(get_str(obj, "input"), "from json");
        json_object_put(obj);
        free(s);
        free(id);

        /* The input argument wins over the JSON's. */
        s = kp_task_encode("arg", extra, "i", NULL, err, sizeof(err));
        assert_non_null(s);
        obj = parse(s);
        assert_string_equal(get_str(obj, "input"), "arg");
        json_object_put(obj);
        free(s);
        json_object_put(extra);
}

static void encode_refuses_what_a_worker_would(void **state) {
        char err[256], *id = (char *)"unchanged";
        json_object *extra;

        (void)state;
        assert_null(kp_task_encode(NULL, NULL, NULL, &id, err, sizeof(err)));
        assert_null(id);
        assert_non_null(strstr(err, "input"));

        extra = parse("{\"input\":5}");
        assert_null(kp_task_encode(NULL, extra, NULL, &id, err, sizeof(err)));
        json_object_put(extra);

        extra = parse("{\"max_tokens\":0}");
        assert_null(kp_task_encode("x", extra, NULL, &id, err, sizeof(err)));
        assert_non_null(strstr(err, "max_tokens"));
        json_object_put(extra);

        extra = parse("{\"id\":\"\"}");
        assert_null(kp_task_encode("x", extra, NULL, &id, err, sizeof(err)));
        assert_non_null(strstr(err, "id"));
        json_object_put(extra);

        extra = parse("[1]");
        assert_null(kp_task_encode("x", extra, NULL, &id, err, sizeof(err)));
        json_object_put(extra);

        assert_null(
            kp_task_encode("bad \xff", NULL, NULL, &id, err, sizeof(err)));
        assert_non_null(strstr(err, "UTF-8"));
        assert_null(kp_task_encode("", NULL, NULL, &id, err, sizeof(err)));
}

static void encode_then_decode_round_trips(void **state) {
        char err[256], *id = NULL, *s;
        const char *kind;
        json_object *extra;
        kp_task_t task;

        (void)state;
        extra = parse("{\"role\":\"poet\",\"max_tokens\":64,\"meta\":[1]}");
        s = kp_task_encode("line1\nline2 \"q\" \\ \x01 \xc3\xa9", extra, NULL,
                           &id, err, sizeof(err));
        assert_non_null(s);
        assert_int_equal(kp_task_decode(&task, s, strlen(s), NULL, 0, 0, 0,
                                        LIMIT, &kind, err, sizeof(err)),
                         0);
        assert_string_equal(task.id, id);
        assert_string_equal(task.input, "line1\nline2 \"q\" \\ \x01 \xc3\xa9");
        assert_string_equal(task.role, "poet");
        assert_int_equal(task.max_tokens, 64);
        assert_true(json_object_is_type(task.meta, json_type_array));
        assert_non_null(task.submitted_at);
        kp_task_clear(&task);
        json_object_put(extra);
        free(s);
        free(id);
}

/* ---- results ---- */

static kp_result_t ok_result(void) {
        kp_result_t r;

        memset(&r, 0, sizeof(r));
        r.id = "t-9";
        r.ok = 1;
        r.output = "four";
        r.worker = "w1";
        r.partition = 2;
        r.offset = 123456789012LL;
        r.attempts = 1;
        r.duration_ms = 12.3456;
        return r;
}

static void result_ok_has_exactly_its_fields(void **state) {
        kp_result_t r = ok_result();
        json_object *obj, *v;
        size_t len;
        char *s;
        int n = 0;

        (void)state;
        s = kp_result_encode(&r, &len);
        assert_int_equal(len, strlen(s));
        assert_non_null(strstr(s, "\"duration_ms\":12.346"));

        obj = parse(s);
        assert_string_equal(get_str(obj, "id"), "t-9");
        assert_string_equal(get_str(obj, "status"), "ok");
        assert_string_equal(get_str(obj, "output"), "four");
        assert_string_equal(get_str(obj, "worker"), "w1");
        assert_true(json_object_object_get_ex(obj, "partition", &v));
        assert_int_equal(json_object_get_int(v), 2);
        assert_true(json_object_object_get_ex(obj, "offset", &v));
        assert_true(json_object_get_int64(v) == 123456789012LL);
        assert_true(json_object_object_get_ex(obj, "attempts", &v));
        assert_int_equal(json_object_get_int(v), 1);
        assert_true(json_object_object_get_ex(obj, "duration_ms", &v));
        assert_true(json_object_get_double(v) > 12.345 &&
                    json_object_get_double(v) < 12.347);
        assert_int_equal(strlen(get_str(obj, "completed_at")), 27);
        assert_false(has(obj, "error"));
        assert_false(has(obj, "usage"));
        assert_false(has(obj, "submitted_at"));

        json_object_object_foreach(obj, key, val) {
                (void)key;
                (void)val;
                n++;
        }
        assert_int_equal(n, 9);
        json_object_put(obj);
        free(s);
}

static void result_carries_usage_and_submitted_at_when_known(void **state) {
        kp_result_t r = ok_result();
        json_object *obj, *usage, *v;
        char *s;

        (void)state;
        r.has_usage = 1;
        r.input_tokens = 10;
        r.output_tokens = 5000000000LL;
        r.submitted_at = "2026-01-01T00:00:00.000001Z";
        s = kp_result_encode(&r, NULL);
        obj = parse(s);
        assert_true(json_object_object_get_ex(obj, "usage", &usage));
        assert_true(json_object_object_get_ex(usage, "input_tokens", &v));
        assert_int_equal(json_object_get_int64(v), 10);
        assert_true(json_object_object_get_ex(usage, "output_tokens", &v));
        assert_true(json_object_get_int64(v) == 5000000000LL);
        assert_string_equal(get_str(obj, "submitted_at"),
                            "2026-01-01T00:00:00.000001Z");
        json_object_put(obj);
        free(s);
}

static void result_error_has_kind_message_and_status(void **state) {
        kp_result_t r = ok_result();
        json_object *obj, *err, *v;
        char *s;

        (void)state;
        r.ok = 0;
        r.output = "must not appear";
        r.err_kind = KP_ERR_BACKEND;
        r.err_message = "model not found";
        r.http_status = 404;
        s = kp_result_encode(&r, NULL);
        obj = parse(s);
        assert_string_equal(get_str(obj, "status"), "error");
        assert_false(has(obj, "output"));
        assert_true(json_object_object_get_ex(obj, "error", &err));
        assert_string_equal(get_str(err, "kind"), "backend_error");
        assert_string_equal(get_str(err, "message"), "model not found");
        assert_true(json_object_object_get_ex(err, "http_status", &v));
        assert_int_equal(json_object_get_int(v), 404);
        json_object_put(obj);
        free(s);

        r.http_status = 0;
        r.err_kind = KP_ERR_MISSING_INPUT;
        s = kp_result_encode(&r, NULL);
        obj = parse(s);
        assert_true(json_object_object_get_ex(obj, "error", &err));
        assert_false(has(err, "http_status"));
        json_object_put(obj);
        free(s);
}

static void result_output_survives_any_text(void **state) {
        static const char tricky[] =
            "quote \" backslash \\ slash / nl \n tab \t cr \r "
            "ctl \x01\x1f del \x7f bell \a e\xcc\x81 \xe2\x80\xa8 "
            "\xf0\x9f\x98\x80 </script>";
        kp_result_t r = ok_result();
        json_object *obj;
        char *s;

        (void)state;
        r.output = tricky;
        s = kp_result_encode(&r, NULL);
        assert_true(kp_utf8_valid(s, strlen(s)));
        obj = parse(s);
        assert_string_equal(get_str(obj, "output"), tricky);
        json_object_put(obj);
        free(s);
}

static void result_repairs_ill_formed_text(void **state) {
        kp_result_t r = ok_result();
        json_object *obj;
        char *s;

        (void)state;
        r.output = "a\xffz\xed\xa0\x80";
        s = kp_result_encode(&r, NULL);
        assert_true(kp_utf8_valid(s, strlen(s)));
        obj = parse(s);
        assert_string_equal(get_str(obj, "output"),
                            "a\xef\xbf\xbdz\xef\xbf\xbd\xef\xbf\xbd"
                            "\xef\xbf\xbd");
        json_object_put(obj);
        free(s);
}

static void result_duration_has_three_decimals(void **state) {
        kp_result_t r = ok_result();
        char *s;

        (void)state;
        r.duration_ms = 0;
        s = kp_result_encode(&r, NULL);
        assert_non_null(strstr(s, "\"duration_ms\":0.000,"));
        free(s);

        r.duration_ms = 1500.0;
        s = kp_result_encode(&r, NULL);
        assert_non_null(strstr(s, "\"duration_ms\":1500.000,"));
        free(s);

        r.duration_ms = -4;
        s = kp_result_encode(&r, NULL);
        assert_non_null(strstr(s, "\"duration_ms\":0.000,"));
        free(s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(utf8_accepts_well_formed_text),
            cmocka_unit_test(utf8_rejects_overlongs),
            cmocka_unit_test(utf8_rejects_surrogates),
            cmocka_unit_test(utf8_rejects_beyond_unicode),
            cmocka_unit_test(utf8_rejects_truncated_and_stray_bytes),
            cmocka_unit_test(utf8_finds_bad_bytes_after_ascii_runs),
            cmocka_unit_test(new_id_is_32_lowercase_hex_and_fresh),
            cmocka_unit_test(time_is_rfc3339_utc_with_microseconds),
            cmocka_unit_test(decode_plain_text_trims_one_newline),
            cmocka_unit_test(decode_non_object_json_is_plain_text),
            cmocka_unit_test(decode_id_falls_back_to_key_then_position),
            cmocka_unit_test(decode_json_reads_every_field),
            cmocka_unit_test(decode_json_without_id_uses_key),
            cmocka_unit_test(decode_json_empty_role_means_pool_role),
            cmocka_unit_test(
                decode_json_escaped_lone_surrogate_becomes_replacement),
            cmocka_unit_test(decode_rejects_invalid_utf8_first),
            cmocka_unit_test(decode_rejects_nul_bytes),
            cmocka_unit_test(decode_rejects_broken_json),
            cmocka_unit_test(decode_rejects_missing_input),
            cmocka_unit_test(decode_names_the_bad_field),
            cmocka_unit_test(decode_error_keeps_the_json_id),
            cmocka_unit_test(decode_rejects_input_over_the_limit),
            cmocka_unit_test(encode_plain_input_gets_id_and_time),
            cmocka_unit_test(encode_keeps_extra_members),
            cmocka_unit_test(encode_takes_input_from_extra),
            cmocka_unit_test(encode_refuses_what_a_worker_would),
            cmocka_unit_test(encode_then_decode_round_trips),
            cmocka_unit_test(result_ok_has_exactly_its_fields),
            cmocka_unit_test(result_carries_usage_and_submitted_at_when_known),
            cmocka_unit_test(result_error_has_kind_message_and_status),
            cmocka_unit_test(result_output_survives_any_text),
            cmocka_unit_test(result_repairs_ill_formed_text),
            cmocka_unit_test(result_duration_has_three_decimals),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
