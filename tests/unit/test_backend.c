/* test_backend.c - request bodies and headers, reply parsing, error text,
 * retry decisions and backoff of the backends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "kp_backend.h"

#define KEY "sk-test-0123456789"

static kp_backend_conf_t make_conf(kp_backend_kind_t kind) {
        kp_backend_conf_t c;

        memset(&c, 0, sizeof(c));
        c.kind = kind;
        c.url = (char *)"http://127.0.0.1:1/v1";
        c.model = (char *)"m-1";
        c.role = (char *)"You are terse.";
        c.max_tokens = 100;
        c.api_key = (char *)KEY;
        c.anthropic_version = (char *)"2023-06-01";
        c.timeout_ms = 1000;
        c.attempts = 3;
        c.backoff_ms = 500;
        c.backoff_max_ms = 8000;
        return c;
}

static kp_task_t make_task(const char *input) {
        kp_task_t t;

        memset(&t, 0, sizeof(t));
        t.id = (char *)"t-1";
        t.input = (char *)input;
        return t;
}

static int has_header(const struct curl_slist *l, const char *line) {
        for (; l; l = l->next) {
                if (!strcmp(l->data, line))
                        return 1;
        }
        return 0;
}

/* 1 if some header's name (before ':') equals name, any case. */
static int has_header_name(const struct curl_slist *l, const char *name) {
        size_t n = strlen(name);

        for (; l; l = l->next) {
                if (!strncasecmp(l->data, name, n) && l->data[n] == ':')
                        return 1;
        }
        return 0;
}

static json_object *parse(const char *s) {
        json_object *obj = json_tokener_parse(s);

        if (!obj)
                fail_msg("not JSON: %s", s);
        return obj;
}

static json_object *get(json_object *obj, const char *name) {
        json_object *v;

        if (!json_object_object_get_ex(obj, name, &v))
                fail_msg("no member \"%s\"", name);
        return v;
}

static const char *get_str(json_object *obj, const char *name) {
        json_object *v = get(obj, name);

        assert_true(json_object_is_type(v, json_type_string));
        return json_object_get_string(v);
}

/* Builds a request that must succeed; returns the parsed body. */
static json_object *request(const kp_backend_conf_t *conf,
                            const kp_task_t *task, struct curl_slist **hp) {
        char err[256], *body = NULL;
        json_object *obj;

        if (kp_backend_request(conf, task, NULL, 0, &body, hp, err,
                               sizeof(err)) < 0)
                fail_msg("request failed: %s", err);
        obj = parse(body);
        free(body);
        return obj;
}

/* ---- kinds ---- */

static void kind_names_parse_both_ways(void **state) {
        kp_backend_kind_t k;

        (void)state;
        assert_int_equal(kp_backend_kind_parse("anthropic", &k), 0);
        assert_int_equal(k, KP_BACKEND_ANTHROPIC);
        assert_int_equal(kp_backend_kind_parse("openai", &k), 0);
        assert_int_equal(k, KP_BACKEND_OPENAI);
        assert_int_equal(kp_backend_kind_parse("http", &k), 0);
        assert_int_equal(k, KP_BACKEND_HTTP);
        assert_int_equal(kp_backend_kind_parse("HTTP", &k), -1);
        assert_int_equal(kp_backend_kind_parse("", &k), -1);
        assert_string_equal(kp_backend_kind_name(KP_BACKEND_OPENAI), "openai");
        assert_string_equal(kp_backend_kind_name(KP_BACKEND_ANTHROPIC),
                            "anthropic");
        assert_string_equal(kp_backend_kind_name(KP_BACKEND_HTTP), "http");
}

/* ---- requests ---- */

static void anthropic_request_body_and_headers(void **state) {
        kp_backend_conf_t conf = make_conf(KP_BACKEND_ANTHROPIC);
        kp_task_t task = make_task("What is \"2+2\"?\n");
        struct curl_slist *h = NULL;
        json_object *body, *msgs, *m;

        (void)state;
        body = request(&conf, &task, &h);
        assert_string_equal(get_str(body, "model"), "m-1");
        assert_int_equal(json_object_get_int(get(body, "max_tokens")), 100);
        assert_string_equal(get_str(body, "system"), "You are terse.");
        msgs = get(body, "messages");
        assert_true(json_object_is_type(msgs, json_type_array));
        assert_int_equal(json_object_array_length(msgs), 1);
        m = json_object_array_get_idx(msgs, 0);
        assert_string_equal(get_str(m, "role"), "user");
        assert_string_equal(get_str(m, "content"), "What is \"2+2\"?\n");

        assert_true(has_header(h, "content-type: application/json"));
        assert_true(has_header(h, "x-api-key: " KEY));
        assert_true(has_header(h, "anthropic-version: 2023-06-01"));
        assert_true(has_header(h, "Expect:"));
        assert_false(has_header_name(h, "authorization"));
        curl_slist_free_all(h);
        json_object_put(body);
}

static void anthropic_task_overrides_role_and_max_tokens(void **state) {
        kp_backend_conf_t conf = make_conf(KP_BACKEND_ANTHROPIC);
        kp_task_t task = make_task("hi");
        struct curl_slist *h = NULL;
        json_object *body;

        (void)state;
        task.role = (char *)"You are a pirate.";
        task.max_tokens = 7;
        body = request(&conf, &task, &h);
        assert_string_equal(get_str(body, "system"), "You are a pirate.");
        assert_int_equal(json_object_get_int(get(body, "max_tokens")), 7);
        curl_slist_free_all(h);
        json_object_put(body);
}

static void anthropic_without_key_or_role_omits_them(void **state) {
        kp_backend_conf_t conf = make_conf(KP_BACKEND_ANTHROPIC);
        kp_task_t task = make_task("hi");
        struct curl_slist *h = NULL;
        json_object *body;

        (void)state;
        conf.api_key = NULL;
        conf.role = NULL;
        conf.anthropic_version = NULL;
        body = request(&conf, &task, &h);
        assert_false(json_object_object_get_ex(body, "system", NULL));
        assert_false(has_header_name(h, "x-api-key"));
        /* A default version is always sent. */
        assert_true(has_header_name(h, "anthropic-version"));
        curl_slist_free_all(h);
        json_object_put(body);
}

static void anthropic_needs_model_and_max_tokens(void **state) {
        kp_backend_conf_t conf = make_conf(KP_BACKEND_ANTHROPIC);
        kp_task_t task = make_task("hi");
        struct curl_slist *h = (struct curl_slist *)&h;
        char err[256], *body = (char *)"x";

        (void)state;
        conf.model = NULL;
        assert_int_equal(kp_backend_request(&conf, &task, NULL, 0, &body, &h,
                                            err, sizeof(err)),
                         -1);
        assert_null(body);
        assert_null(h);
        assert_non_null(strstr(err, "model"));

        conf = make_conf(KP_BACKEND_ANTHROPIC);
        conf.max_tokens = 0;
        assert_int_equal(kp_backend_request(&conf, &task, NULL, 0, &body, &h,
                                            err, sizeof(err)),
                         -1);
        assert_non_null(strstr(err, "max_tokens"));
}

static void openai_request_body_and_headers(void **state) {
        kp_backend_conf_t conf = make_conf(KP_BACKEND_OPENAI);
        kp_task_t task = make_task("Name a colour.");
        struct curl_slist *h = NULL;
        json_object *body, *msgs, *m;

        (void)state;
        task.max_tokens = 33;
        body = request(&conf, &task, &h);
        assert_string_equal(get_str(body, "model"), "m-1");
        assert_int_equal(json_object_get_int(get(body, "max_tokens")), 33);
        assert_false(json_object_object_get_ex(body, "system", NULL));
        msgs = get(body, "messages");
        assert_int_equal(json_object_array_length(msgs), 2);
        m = json_object_array_get_idx(msgs, 0);
        assert_string_equal(get_str(m, "role"), "system");
        assert_string_equal(get_str(m, "content"), "You are terse.");
        m = json_object_array_get_idx(msgs, 1);
        assert_string_equal(get_str(m, "role"), "user");
        assert_string_equal(get_str(m, "content"), "Name a colour.");

        assert_true(has_header(h, "content-type: application/json"));
        assert_true(has_header(h, "Authorization: Bearer " KEY));
        assert_true(has_header(h, "Expect:"));
        assert_false(has_header_name(h, "x-api-key"));
        assert_false(has_header_name(h, "anthropic-version"));
        curl_slist_free_all(h);
        json_object_put(body);
}

static void openai_without_key_or_role_sends_neither(void **state) {
        kp_backend_conf_t conf = make_conf(KP_BACKEND_OPENAI);
        kp_task_t task = make_task("hi");
        struct curl_slist *h = NULL;
        json_object *body, *msgs;

        (void)state;
        conf.api_key = (char *)"";
        conf.role = NULL;
        body = request(&conf, &task, &h);
        msgs = get(body, "messages");
        assert_int_equal(json_object_array_length(msgs), 1);
        assert_string_equal(get_str(json_object_array_get_idx(msgs, 0), "role"),
                            "user");
        assert_false(has_header_name(h, "authorization"));
        assert_true(has_header(h, "content-type: application/json"));
        curl_slist_free_all(h);
        json_object_put(body);
}

static void http_request_sends_the_json_task_as_is(void **state) {
        static const char raw[] = "{\"id\":\"t-1\",\"input\":\"x\",\"meta\":"
                                  "{\"k\":[1,2]}}";
        kp_backend_conf_t conf = make_conf(KP_BACKEND_HTTP);
        kp_task_t task = make_task("x");
        struct curl_slist *h = NULL;
        char err[256], *body = NULL;

        (void)state;
        assert_int_equal(kp_backend_request(&conf, &task, raw, strlen(raw),
                                            &body, &h, err, sizeof(err)),
                         0);
        assert_string_equal(body, raw);
        assert_true(has_header(h, "content-type: application/json"));
        assert_true(has_header(h, "Authorization: Bearer " KEY));
        assert_true(has_header(h, "Expect:"));
        assert_false(has_header_name(h, "x-api-key"));
        curl_slist_free_all(h);
        free(body);
}

static void http_request_wraps_plain_text(void **state) {
        kp_backend_conf_t conf = make_conf(KP_BACKEND_HTTP);
        static const char raw[] = "just text\twith a tab\n";
        kp_task_t task = make_task("just text\twith a tab");
        struct curl_slist *h = NULL;
        char err[256], *body = NULL;
        json_object *obj;
        int n = 0;

        (void)state;
        conf.api_key = NULL;
        task.plain = 1;
        assert_int_equal(kp_backend_request(&conf, &task, raw, strlen(raw),
                                            &body, &h, err, sizeof(err)),
                         0);
        obj = parse(body);
        assert_string_equal(get_str(obj, "id"), "t-1");
        assert_string_equal(get_str(obj, "input"), "just text\twith a tab");
        json_object_object_foreach(obj, k, v) {
                (void)k;
                (void)v;
                n++;
        }
        assert_int_equal(n, 2);
        assert_false(has_header_name(h, "authorization"));
        curl_slist_free_all(h);
        json_object_put(obj);
        free(body);
}

static void request_refuses_key_that_would_split_headers(void **state) {
        kp_backend_conf_t conf = make_conf(KP_BACKEND_OPENAI);
        kp_task_t task = make_task("hi");
        struct curl_slist *h = NULL;
        char err[256], *body = NULL;

        (void)state;
        conf.api_key = (char *)"sk-secret\r\nX-Evil: 1";
        assert_int_equal(kp_backend_request(&conf, &task, NULL, 0, &body, &h,
                                            err, sizeof(err)),
                         -1);
        assert_null(body);
        assert_null(h);
        assert_null(strstr(err, "sk-secret"));
        assert_non_null(strstr(err, "API key"));
}

/* ---- replies ---- */

static int parse_reply(kp_backend_kind_t kind, const char *body,
                       kp_backend_reply_t *r, char *err, size_t err_size) {
        kp_backend_conf_t conf = make_conf(kind);

        return kp_backend_parse(&conf, body, strlen(body), r, err, err_size);
}

/* A reply that must be refused with `why` in the error text. */
static void expect_bad(kp_backend_kind_t kind, const char *body,
                       const char *why) {
        kp_backend_reply_t r;
        char err[256];

        if (parse_reply(kind, body, &r, err, sizeof(err)) != -1)
                fail_msg("accepted: %s", body);
        assert_null(r.output);
        if (!strstr(err, why))
                fail_msg("error \"%s\" lacks \"%s\"", err, why);
}

static void anthropic_reply_text_and_usage(void **state) {
        kp_backend_reply_t r;
        char err[256];

        (void)state;
        assert_int_equal(
            parse_reply(KP_BACKEND_ANTHROPIC,
                        "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":"
                        "\"assistant\",\"content\":[{\"type\":\"text\","
                        "\"text\":\"Four.\"}],\"stop_reason\":\"end_turn\","
                        "\"usage\":{\"input_tokens\":12,\"output_tokens\":3}}",
                        &r, err, sizeof(err)),
            0);
        assert_string_equal(r.output, "Four.");
        assert_int_equal(r.has_usage, 1);
        assert_int_equal(r.input_tokens, 12);
        assert_int_equal(r.output_tokens, 3);
        kp_backend_reply_clear(&r);
        assert_null(r.output);
}

static void anthropic_reply_joins_text_blocks(void **state) {
        kp_backend_reply_t r;
        char err[256];

        (void)state;
        assert_int_equal(
            parse_reply(KP_BACKEND_ANTHROPIC,
                        "{\"type\":\"message\",\"content\":["
                        "{\"type\":\"thinking\",\"thinking\":\"hmm\"},"
                        "{\"type\":\"text\",\"text\":\"one \"},"
                        "{\"type\":\"tool_use\",\"id\":\"x\",\"input\":{}},"
                        "{\"type\":\"text\",\"text\":5},"
                        "{\"type\":\"text\",\"text\":\"two \\u00e9\\n\"},"
                        "{\"type\":\"text\",\"text\":\"\"}]}",
                        &r, err, sizeof(err)),
            0);
        assert_string_equal(r.output, "one two \xc3\xa9\n");
        assert_int_equal(r.has_usage, 0);
        kp_backend_reply_clear(&r);
}

static void anthropic_reply_with_odd_usage_has_none(void **state) {
        kp_backend_reply_t r;
        char err[256];

        (void)state;
        assert_int_equal(
            parse_reply(KP_BACKEND_ANTHROPIC,
                        "{\"content\":[{\"type\":\"text\",\"text\":\"a\"}],"
                        "\"usage\":{\"input_tokens\":\"12\","
                        "\"output_tokens\":3}}",
                        &r, err, sizeof(err)),
            0);
        assert_int_equal(r.has_usage, 0);
        kp_backend_reply_clear(&r);

        assert_int_equal(
            parse_reply(KP_BACKEND_ANTHROPIC,
                        "{\"content\":[{\"type\":\"text\",\"text\":\"a\"}],"
                        "\"usage\":[]}",
                        &r, err, sizeof(err)),
            0);
        assert_int_equal(r.has_usage, 0);
        kp_backend_reply_clear(&r);
}

static void anthropic_reply_errors(void **state) {
        (void)state;
        expect_bad(KP_BACKEND_ANTHROPIC,
                   "{\"type\":\"error\",\"error\":{\"type\":"
                   "\"overloaded_error\",\"message\":\"Overloaded\"}}",
                   "Overloaded");
        expect_bad(KP_BACKEND_ANTHROPIC, "{\"content\":[]}",
                   "response has no text content");
        expect_bad(KP_BACKEND_ANTHROPIC,
                   "{\"content\":[{\"type\":\"tool_use\",\"text\":\"x\"}]}",
                   "response has no text content");
        expect_bad(KP_BACKEND_ANTHROPIC, "{\"content\":\"text\"}",
                   "response has no text content");
        expect_bad(KP_BACKEND_ANTHROPIC, "{}", "response has no text content");
        expect_bad(KP_BACKEND_ANTHROPIC, "{\"content\":[", "not valid JSON");
        expect_bad(KP_BACKEND_ANTHROPIC, "{\"content\":[]} trailing",
                   "not valid JSON");
        expect_bad(KP_BACKEND_ANTHROPIC, "", "not valid JSON");
        expect_bad(KP_BACKEND_ANTHROPIC, "[1]", "not a JSON object");
        expect_bad(KP_BACKEND_ANTHROPIC, "<html>busy</html>", "not valid JSON");
        expect_bad(KP_BACKEND_ANTHROPIC,
                   "{\"content\":[{\"type\":\"text\",\"text\":\"\xff\"}]}",
                   "UTF-8");
}

static void openai_reply_content_and_usage(void **state) {
        kp_backend_reply_t r;
        char err[256];

        (void)state;
        assert_int_equal(
            parse_reply(KP_BACKEND_OPENAI,
                        "{\"id\":\"c1\",\"object\":\"chat.completion\","
                        "\"choices\":[{\"index\":0,\"message\":{\"role\":"
                        "\"assistant\",\"content\":\"Blue.\"},"
                        "\"finish_reason\":\"stop\"},{\"index\":1,"
                        "\"message\":{\"content\":\"Red.\"}}],"
                        "\"usage\":{\"prompt_tokens\":20,"
                        "\"completion_tokens\":2,\"total_tokens\":22}}",
                        &r, err, sizeof(err)),
            0);
        assert_string_equal(r.output, "Blue.");
        assert_int_equal(r.has_usage, 1);
        assert_int_equal(r.input_tokens, 20);
        assert_int_equal(r.output_tokens, 2);
        kp_backend_reply_clear(&r);

        assert_int_equal(parse_reply(KP_BACKEND_OPENAI,
                                     "{\"choices\":[{\"message\":"
                                     "{\"content\":\"\"}}]}",
                                     &r, err, sizeof(err)),
                         0);
        assert_string_equal(r.output, "");
        assert_int_equal(r.has_usage, 0);
        kp_backend_reply_clear(&r);
}

static void openai_reply_errors(void **state) {
        (void)state;
        expect_bad(KP_BACKEND_OPENAI, "{\"choices\":[]}", "no choices");
        expect_bad(KP_BACKEND_OPENAI, "{\"choices\":{}}", "no choices");
        expect_bad(KP_BACKEND_OPENAI, "{\"choices\":[{}]}", "no message");
        expect_bad(KP_BACKEND_OPENAI, "{\"choices\":[{\"message\":\"hi\"}]}",
                   "no message");
        expect_bad(KP_BACKEND_OPENAI,
                   "{\"choices\":[{\"message\":{\"content\":null,"
                   "\"tool_calls\":[]}}]}",
                   "response has no text content");
        expect_bad(KP_BACKEND_OPENAI,
                   "{\"choices\":[{\"message\":{\"content\":42}}]}",
                   "response has no text content");
        expect_bad(KP_BACKEND_OPENAI,
                   "{\"error\":{\"message\":\"quota exceeded\",\"type\":"
                   "\"insufficient_quota\"}}",
                   "quota exceeded");
        expect_bad(KP_BACKEND_OPENAI, "not json", "not valid JSON");
}

static void http_reply_is_the_whole_body(void **state) {
        kp_backend_conf_t conf = make_conf(KP_BACKEND_HTTP);
        kp_backend_reply_t r;
        char err[256];

        (void)state;
        assert_int_equal(parse_reply(KP_BACKEND_HTTP,
                                     "{\"not\":\"parsed\"} \xc3\xa9\n", &r, err,
                                     sizeof(err)),
                         0);
        assert_string_equal(r.output, "{\"not\":\"parsed\"} \xc3\xa9\n");
        assert_int_equal(r.has_usage, 0);
        kp_backend_reply_clear(&r);

        /* Only len bytes count. */
        assert_int_equal(
            kp_backend_parse(&conf, "abcdef", 3, &r, err, sizeof(err)), 0);
        assert_string_equal(r.output, "abc");
        kp_backend_reply_clear(&r);

        assert_int_equal(parse_reply(KP_BACKEND_HTTP, "", &r, err, sizeof(err)),
                         0);
        assert_string_equal(r.output, "");
        kp_backend_reply_clear(&r);

        expect_bad(KP_BACKEND_HTTP, "bad \xc0\x80", "UTF-8");
        assert_int_equal(
            kp_backend_parse(&conf, "a\0b", 3, &r, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "NUL"));
}

/* ---- error text ---- */

static void error_text(const char *body, char *out, size_t size) {
        kp_backend_error_text(body, strlen(body), out, size);
}

static void error_text_takes_the_api_message(void **state) {
        char e[256];

        (void)state;
        error_text("{\"type\":\"error\",\"error\":{\"type\":"
                   "\"invalid_request_error\",\"message\":\"max_tokens: "
                   "too big\"}}",
                   e, sizeof(e));
        assert_string_equal(e, "max_tokens: too big");

        error_text("{\"error\":{\"message\":\"Rate limit\\nreached\","
                   "\"type\":\"requests\",\"code\":null}}",
                   e, sizeof(e));
        assert_string_equal(e, "Rate limit reached");

        error_text("{\"error\":\"model not loaded\"}", e, sizeof(e));
        assert_string_equal(e, "model not loaded");

        error_text("{\"detail\":\"Not Found\"}", e, sizeof(e));
        assert_string_equal(e, "Not Found");
}

static void error_text_falls_back_to_the_body_start(void **state) {
        char e[512], body[600];

        (void)state;
        error_text("<html>\r\n<body>502 Bad Gateway</body>\r\n</html>\r\n", e,
                   sizeof(e));
        assert_string_equal(e, "<html> <body>502 Bad Gateway</body> </html>");

        /* A JSON body without a message: its start. */
        error_text("{\"error\":{\"code\":5}}", e, sizeof(e));
        assert_string_equal(e, "{\"error\":{\"code\":5}}");

        memset(body, 'z', sizeof(body) - 1);
        body[sizeof(body) - 1] = '\0';
        error_text(body, e, sizeof(e));
        assert_int_equal(strlen(e), 200);
}

static void error_text_is_printable_utf8(void **state) {
        char e[256], body[300];
        size_t i;

        (void)state;
        error_text("bad\x01\x02 bytes \xff\xfe and \xc2\x85 C1 \x7f end", e,
                   sizeof(e));
        assert_string_equal(e, "bad bytes ?? and C1 end");

        /* A character across the 200-byte line is left out whole. */
        memset(body, 'a', 199);
        memcpy(body + 199, "\xe2\x82\xac tail", 9);
        error_text(body, e, sizeof(e));
        assert_int_equal(strlen(e), 199);
        assert_true(kp_utf8_valid(e, strlen(e)));

        /* A small buffer never ends inside a character (from 4 bytes,
         * room for one). */
        for (i = 0; i < 100; i++)
                memcpy(body + 3 * i, "\xe2\x82\xac", 3);
        body[300 - 1] = '\0';
        for (i = 4; i < 12; i++) {
                kp_backend_error_text(body, 297, e, i);
                assert_true(strlen(e) % 3 == 0);
                assert_true(strlen(e) < i);
                assert_true(kp_utf8_valid(e, strlen(e)));
        }
}

static void error_text_of_an_empty_body(void **state) {
        char e[64];

        (void)state;
        kp_backend_error_text(NULL, 0, e, sizeof(e));
        assert_string_equal(e, "empty response body");
        error_text(" \r\n", e, sizeof(e));
        assert_string_equal(e, "empty response body");
        error_text("{\"error\":{\"message\":\"\"}}", e, sizeof(e));
        assert_string_equal(e, "{\"error\":{\"message\":\"\"}}");
}

/* ---- retries ---- */

static void retryable_statuses_and_transport_errors(void **state) {
        static const long yes[] = {408, 409, 425, 429, 500,
                                   502, 503, 504, 529, 599};
        static const long no[] = {200, 201, 301, 400, 401,
                                  403, 404, 413, 422, 600};
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
                if (!kp_backend_retryable(yes[i], CURLE_OK))
                        fail_msg("%ld not retried", yes[i]);
        }
        for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
                if (kp_backend_retryable(no[i], CURLE_OK))
                        fail_msg("%ld retried", no[i]);
        }

        assert_true(kp_backend_retryable(0, CURLE_COULDNT_CONNECT));
        assert_true(kp_backend_retryable(0, CURLE_OPERATION_TIMEDOUT));
        assert_true(kp_backend_retryable(0, CURLE_RECV_ERROR));
        assert_true(kp_backend_retryable(0, CURLE_GOT_NOTHING));
        assert_true(kp_backend_retryable(0, CURLE_COULDNT_RESOLVE_HOST));
        /* A body cut short after a 200 status. */
        assert_true(kp_backend_retryable(200, CURLE_PARTIAL_FILE));

        /* Setup mistakes fail the same way every time. */
        assert_false(kp_backend_retryable(0, CURLE_URL_MALFORMAT));
        assert_false(kp_backend_retryable(0, CURLE_UNSUPPORTED_PROTOCOL));
        assert_false(kp_backend_retryable(0, CURLE_PEER_FAILED_VERIFICATION));
}

static void retry_after_in_seconds(void **state) {
        (void)state;
        assert_int_equal(kp_backend_retry_after_ms("120", 0), 120000);
        assert_int_equal(kp_backend_retry_after_ms("0", 0), 0);
        assert_int_equal(kp_backend_retry_after_ms(" 5 ", 0), 5000);
        assert_int_equal(kp_backend_retry_after_ms("99999999999999999999", 0),
                         LONG_MAX);
        assert_int_equal(kp_backend_retry_after_ms("-1", 0), -1);
        assert_int_equal(kp_backend_retry_after_ms("+1", 0), -1);
        assert_int_equal(kp_backend_retry_after_ms("1.5", 0), -1);
        assert_int_equal(kp_backend_retry_after_ms("5s", 0), -1);
        assert_int_equal(kp_backend_retry_after_ms("", 0), -1);
        assert_int_equal(kp_backend_retry_after_ms("  ", 0), -1);
        assert_int_equal(kp_backend_retry_after_ms("soon", 0), -1);
        assert_int_equal(kp_backend_retry_after_ms(NULL, 0), -1);
}

static void retry_after_as_a_date(void **state) {
        /* Sun, 06 Nov 1994 08:49:37 GMT */
        const time_t t = 784111777;

        (void)state;
        assert_int_equal(
            kp_backend_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", t - 30),
            30000);
        assert_int_equal(
            kp_backend_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", t), 0);
        assert_int_equal(kp_backend_retry_after_ms(
                             "Sun, 06 Nov 1994 08:49:37 GMT", t + 3600),
                         0);
        /* The two obsolete forms HTTP still allows. */
        assert_int_equal(
            kp_backend_retry_after_ms("Sunday, 06-Nov-94 08:49:37 GMT", t - 2),
            2000);
        assert_int_equal(
            kp_backend_retry_after_ms("Sun Nov  6 08:49:37 1994", t - 1), 1000);
        assert_int_equal(kp_backend_retry_after_ms(
                             "Sun, 06 Nov 1994 08:49:37 GMT junk", t - 1),
                         -1);
        assert_int_equal(
            kp_backend_retry_after_ms("Sun, 06 Nov 1994 08:49:37", t - 1), -1);
        assert_int_equal(
            kp_backend_retry_after_ms("Sun, 32 Nov 1994 08:49:37 GMT", 0), -1);
}

static void backoff_stays_within_half_to_full_delay(void **state) {
        kp_backend_conf_t conf = make_conf(KP_BACKEND_OPENAI);
        unsigned seed;
        long d, lo = LONG_MAX, hi = 0;
        int attempt;

        (void)state;
        /* 500, 1000, 2000, 4000, then the 8000 cap. */
        for (attempt = 2; attempt <= 12; attempt++) {
                long full = 500L << (attempt - 2);

                if (full > 8000)
                        full = 8000;
                for (seed = 0; seed < 2000; seed++) {
                        unsigned s = seed * 2654435761u;

                        d = kp_backend_backoff_ms(&conf, attempt, -1, &s);
                        if (d < full / 2 || d > full)
                                fail_msg("attempt %d: %ld outside [%ld, %ld]",
                                         attempt, d, full / 2, full);
                        if (attempt == 2) {
                                lo = d < lo ? d : lo;
                                hi = d > hi ? d : hi;
                        }
                }
        }
        /* The jitter spreads over the range. */
        assert_true(lo < 300);
        assert_true(hi > 450);

        /* Huge attempt numbers do not overflow. */
        seed = 1;
        d = kp_backend_backoff_ms(&conf, 1000, -1, &seed);
        assert_true(d >= 4000 && d <= 8000);
}

static void backoff_never_below_retry_after(void **state) {
        kp_backend_conf_t conf = make_conf(KP_BACKEND_OPENAI);
        unsigned seed;

        (void)state;
        for (seed = 0; seed < 1000; seed++) {
                unsigned s = seed;

                assert_true(kp_backend_backoff_ms(&conf, 2, 700, &s) >= 700);
                s = seed;
                /* Retry-After wins over the cap. */
                assert_int_equal(kp_backend_backoff_ms(&conf, 9, 60000, &s),
                                 60000);
                s = seed;
                assert_true(kp_backend_backoff_ms(&conf, 2, 0, &s) >= 250);
        }
}

static void backoff_is_repeatable_from_the_seed(void **state) {
        kp_backend_conf_t conf = make_conf(KP_BACKEND_OPENAI);
        unsigned a = 42, b = 42;
        int i;

        (void)state;
        for (i = 0; i < 50; i++)
                assert_int_equal(kp_backend_backoff_ms(&conf, 3, -1, &a),
                                 kp_backend_backoff_ms(&conf, 3, -1, &b));
}

static void backoff_with_a_cap_below_the_base(void **state) {
        kp_backend_conf_t conf = make_conf(KP_BACKEND_OPENAI);
        unsigned s = 7;
        long d;

        (void)state;
        conf.backoff_ms = 5000;
        conf.backoff_max_ms = 1000;
        d = kp_backend_backoff_ms(&conf, 2, -1, &s);
        assert_true(d >= 500 && d <= 1000);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(kind_names_parse_both_ways),
            cmocka_unit_test(anthropic_request_body_and_headers),
            cmocka_unit_test(anthropic_task_overrides_role_and_max_tokens),
            cmocka_unit_test(anthropic_without_key_or_role_omits_them),
            cmocka_unit_test(anthropic_needs_model_and_max_tokens),
            cmocka_unit_test(openai_request_body_and_headers),
            cmocka_unit_test(openai_without_key_or_role_sends_neither),
            cmocka_unit_test(http_request_sends_the_json_task_as_is),
            cmocka_unit_test(http_request_wraps_plain_text),
            cmocka_unit_test(request_refuses_key_that_would_split_headers),
            cmocka_unit_test(anthropic_reply_text_and_usage),
            cmocka_unit_test(anthropic_reply_joins_text_blocks),
            cmocka_unit_test(anthropic_reply_with_odd_usage_has_none),
            cmocka_unit_test(anthropic_reply_errors),
            cmocka_unit_test(openai_reply_content_and_usage),
            cmocka_unit_test(openai_reply_errors),
            cmocka_unit_test(http_reply_is_the_whole_body),
            cmocka_unit_test(error_text_takes_the_api_message),
            cmocka_unit_test(error_text_falls_back_to_the_body_start),
            cmocka_unit_test(error_text_is_printable_utf8),
            cmocka_unit_test(error_text_of_an_empty_body),
            cmocka_unit_test(retryable_statuses_and_transport_errors),
            cmocka_unit_test(retry_after_in_seconds),
            cmocka_unit_test(retry_after_as_a_date),
            cmocka_unit_test(backoff_stays_within_half_to_full_delay),
            cmocka_unit_test(backoff_never_below_retry_after),
            cmocka_unit_test(backoff_is_repeatable_from_the_seed),
            cmocka_unit_test(backoff_with_a_cap_below_the_base),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
