/* test_client.c - backend calls through kp_client against a scripted
 * in-process HTTP server: success for each backend kind, retries with
 * backoff and Retry-After, giving up, deadlines, refused connections,
 * concurrency, keep-alive, and no API key in any error message.
 *
 * The server reads directives from the request body:
 *   @status=N        answer N with an error body
 *   @fail=N          the first N requests with this exact body fail
 *                    (status @failstatus=S, default 500), later ones pass
 *   @retry-after=S   add Retry-After: S to an error
 *   @sleep=MS        answer after MS
 *   @hang            never answer (until the client hangs up)
 *   @malformed       200 with a truncated JSON body
 * Its error bodies echo the API key they received, so a leak would
 * show. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <microhttpd.h>

#include "kp_client.h"
#include "kp_log.h"

#define API_KEY     "sk-test-Sup3rS3cretKey-0042"
#define MAX_RESULTS 16

/* ---- the scripted server ---- */

static struct MHD_Daemon *srv;
static int srv_port;
static int srv_stop[2] = {-1, -1};
static atomic_int srv_requests;
static atomic_int srv_connections;
static pthread_mutex_t srv_lock = PTHREAD_MUTEX_INITIALIZER;
static char srv_last_key[128];        /* x-api-key or Authorization */
static char srv_last_version[64];     /* anthropic-version */
static char srv_fail_bodies[32][512]; /* @fail: bodies seen, with counts */
static int srv_fail_counts[32];

typedef struct srv_req {
        char *body;
        size_t len;
} srv_req_t;

static double now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The number after "@name=" in body, or def. */
static long directive(const char *body, const char *name, long def) {
        char pat[32];
        const char *p;

        snprintf(pat, sizeof(pat), "@%s=", name);
        p = strstr(body, pat);
        return p ? strtol(p + strlen(pat), NULL, 10) : def;
}

/* @fail=N: 1 if this body should still fail, counting it. */
static int fail_take(const char *body, long n) {
        int i, fail = 0;

        pthread_mutex_lock(&srv_lock);
        for (i = 0; i < 32; i++) {
                if (!srv_fail_bodies[i][0]) {
                        snprintf(srv_fail_bodies[i], 512, "%s", body);
                        break;
                }
                if (!strncmp(srv_fail_bodies[i], body, 511))
                        break;
        }
        if (i < 32 && srv_fail_counts[i] < n) {
                srv_fail_counts[i]++;
                fail = 1;
        }
        pthread_mutex_unlock(&srv_lock);
        return fail;
}

/* Sleeps ms, or until the client hangs up or the server stops. */
static void srv_sleep(struct MHD_Connection *conn, long ms) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct pollfd pfd[2] = {{srv_stop[0], POLLIN, 0},
                                {ci ? ci->connect_fd : -1, POLLRDHUP, 0}};
        double end = now_ms() + (double)ms;

        while (now_ms() < end) {
                if (poll(pfd, 2, 50) > 0)
                        return;
        }
}

/* The text of the last message's content, for the answer. */
static char *last_content(const char *body) {
        json_object *obj = json_tokener_parse(body), *msgs, *m, *c;
        char *out = NULL;
        size_t n;

        if (obj && json_object_object_get_ex(obj, "messages", &msgs) &&
            (n = json_object_array_length(msgs)) > 0 &&
            (m = json_object_array_get_idx(msgs, n - 1)) &&
            json_object_object_get_ex(m, "content", &c))
                out = strdup(json_object_get_string(c));
        json_object_put(obj);
        return out ? out : strdup("?");
}

static enum MHD_Result srv_queue(struct MHD_Connection *conn, unsigned status,
                                 const char *ctype, const char *body,
                                 size_t len, long retry_after) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(
            len, (void *)body, MHD_RESPMEM_MUST_COPY);
        enum MHD_Result r;
        char ra[24];

        MHD_add_response_header(resp, "Content-Type", ctype);
        if (retry_after >= 0) {
                snprintf(ra, sizeof(ra), "%ld", retry_after);
                MHD_add_response_header(resp, "Retry-After", ra);
        }
        r = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return r;
}

static enum MHD_Result srv_answer(struct MHD_Connection *conn, const char *url,
                                  const char *body) {
        const char *key, *ver;
        long status = directive(body, "status", 0);
        long retry_after = directive(body, "retry-after", -1);
        char out[2048];
        char *text;

        key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-api-key");
        if (!key)
                key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                  "Authorization");
        ver = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                          "anthropic-version");
        pthread_mutex_lock(&srv_lock);
        snprintf(srv_last_key, sizeof(srv_last_key), "%s", key ? key : "");
        snprintf(srv_last_version, sizeof(srv_last_version), "%s",
                 ver ? ver : "");
        pthread_mutex_unlock(&srv_lock);

        srv_sleep(conn, directive(body, "sleep", 0));
        if (strstr(body, "@hang")) {
                srv_sleep(conn, 3600 * 1000L);
                return MHD_NO;
        }
        if (!status && directive(body, "fail", 0) > 0 &&
            fail_take(body, directive(body, "fail", 0)))
                status = directive(body, "failstatus", 500);

        if (status) {
                /* The key it got, echoed back: kp_client must drop it. */
                snprintf(out, sizeof(out),
                         "{\"type\":\"error\",\"error\":{\"type\":\"x\","
                         "\"message\":\"scripted %ld for key %s\"}}",
                         status, key ? key : "-");
                return srv_queue(conn, (unsigned)status, "application/json",
                                 out, strlen(out), retry_after);
        }

        if (!strcmp(url, "/echo")) {
                snprintf(out, sizeof(out), "echo: %s", body);
                return srv_queue(conn, 200, "text/plain", out, strlen(out), -1);
        }
        text = last_content(body);
        if (!strcmp(url, "/v1/messages"))
                snprintf(out, sizeof(out),
                         "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":"
                         "\"assistant\",\"content\":[{\"type\":\"text\","
                         "\"text\":\"answer: %s\"}],\"stop_reason\":"
                         "\"end_turn\",\"usage\":{\"input_tokens\":7,"
                         "\"output_tokens\":3}}",
                         text);
        else
                snprintf(out, sizeof(out),
                         "{\"id\":\"chatcmpl-1\",\"object\":"
                         "\"chat.completion\",\"choices\":[{\"index\":0,"
                         "\"message\":{\"role\":\"assistant\",\"content\":"
                         "\"answer: %s\"},\"finish_reason\":\"stop\"}],"
                         "\"usage\":{\"prompt_tokens\":5,"
                         "\"completion_tokens\":2,\"total_tokens\":7}}",
                         text);
        free(text);
        return srv_queue(
            conn, 200, "application/json", out,
            strstr(body, "@malformed") ? strlen(out) / 2 : strlen(out), -1);
}

static enum MHD_Result srv_handler(void *cls, struct MHD_Connection *conn,
                                   const char *url, const char *method,
                                   const char *version, const char *data,
                                   size_t *data_size, void **con_cls) {
        srv_req_t *q = *con_cls;

        if (!q) {
                q = calloc(1, sizeof(*q));
                *con_cls = q;
                return q ? MHD_YES : MHD_NO;
        }
        if (*data_size) {
                char *b = realloc(q->body, q->len + *data_size + 1);

                if (!b)
                        return MHD_NO;
                memcpy(b + q->len, data, *data_size);
                q->body = b;
                q->len += *data_size;
                q->body[q->len] = '\0';
                *data_size = 0;
                return MHD_YES;
        }
        atomic_fetch_add(&srv_requests, 1);
        return srv_answer(conn, url, q->body ? q->body : "");
}

static void srv_completed(void *cls, struct MHD_Connection *conn,
                          void **con_cls, enum MHD_RequestTerminationCode t) {
        srv_req_t *q = *con_cls;

        if (q) {
                free(q->body);
                free(q);
                *con_cls = NULL;
        }
}

static void srv_connection(void *cls, struct MHD_Connection *conn,
                           void **socket_ctx,
                           enum MHD_ConnectionNotificationCode code) {
        if (code == MHD_CONNECTION_NOTIFY_STARTED)
                atomic_fetch_add(&srv_connections, 1);
}

static void srv_log(void *cls, const char *fmt, va_list ap) {
        (void)fmt;
        (void)ap; /* dropped hangs are reported as errors: expected */
}

static int srv_start(void **state) {
        const union MHD_DaemonInfo *di;

        kp_log_level = KP_LOG_WARN;
        if (pipe(srv_stop))
                return -1;
        srv = MHD_start_daemon(
            MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                MHD_USE_ERROR_LOG,
            0, NULL, NULL, srv_handler, NULL, MHD_OPTION_EXTERNAL_LOGGER,
            srv_log, NULL, MHD_OPTION_NOTIFY_COMPLETED, srv_completed, NULL,
            MHD_OPTION_NOTIFY_CONNECTION, srv_connection, NULL, MHD_OPTION_END);
        if (!srv)
                return -1;
        di = MHD_get_daemon_info(srv, MHD_DAEMON_INFO_BIND_PORT);
        srv_port = di ? di->port : 0;
        return srv_port ? 0 : -1;
}

static int srv_shutdown(void **state) {
        if (write(srv_stop[1], "x", 1) != 1)
                return -1;
        MHD_stop_daemon(srv);
        close(srv_stop[0]);
        close(srv_stop[1]);
        return 0;
}

/* ---- the client side ---- */

/* What a callback saw, copied out of the callback. */
typedef struct seen {
        int fired;
        int ok;
        char output[1024];
        char kind[64];
        char message[1024];
        long http_status;
        int attempts;
        int has_usage;
        int64_t input_tokens, output_tokens;
        double duration_ms;
        int order; /* 1 for the first callback, ... */
} seen_t;

static seen_t seen[MAX_RESULTS];
static int nfired;

static void on_done(void *opaque, const kp_call_result_t *res) {
        seen_t *s = &seen[(intptr_t)opaque];

        s->fired++;
        s->order = ++nfired;
        s->ok = res->ok;
        snprintf(s->output, sizeof(s->output), "%s",
                 res->output ? res->output : "");
        snprintf(s->kind, sizeof(s->kind), "%s",
                 res->err_kind ? res->err_kind : "");
        snprintf(s->message, sizeof(s->message), "%s",
                 res->err_message ? res->err_message : "");
        s->http_status = res->http_status;
        s->attempts = res->attempts;
        s->has_usage = res->has_usage;
        s->input_tokens = res->input_tokens;
        s->output_tokens = res->output_tokens;
        s->duration_ms = res->duration_ms;

        /* Whatever happened, the key stays out of the message. */
        if (res->err_message)
                assert_null(strstr(res->err_message, API_KEY));
}

static kp_backend_conf_t conf_for(kp_backend_kind_t kind, int port) {
        static char url[128];
        kp_backend_conf_t c;

        memset(&c, 0, sizeof(c));
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port,
                 kind == KP_BACKEND_ANTHROPIC ? "/v1/messages"
                 : kind == KP_BACKEND_OPENAI  ? "/v1/chat/completions"
                                              : "/echo");
        c.kind = kind;
        c.url = url;
        c.model = "test-model";
        c.role = "be brief";
        c.max_tokens = 64;
        c.api_key = API_KEY;
        c.anthropic_version = "2023-06-01";
        c.timeout_ms = 10000;
        c.attempts = 3;
        c.backoff_ms = 10;
        c.backoff_max_ms = 50;
        return c;
}

static kp_client_t *client_for(kp_backend_kind_t kind) {
        kp_backend_conf_t c = conf_for(kind, srv_port);
        char errstr[256];
        kp_client_t *client =
            kp_client_new(&c, on_done, errstr, sizeof(errstr));

        assert_non_null(client);
        memset(seen, 0, sizeof(seen));
        nfired = 0;
        return client;
}

/* Starts a call whose task input is `input`, reported as seen[slot]. */
static void start(kp_client_t *client, const char *input, intptr_t slot) {
        kp_task_t task;
        char raw[512], errstr[256];

        memset(&task, 0, sizeof(task));
        task.id = "task-1";
        task.input = (char *)input;
        snprintf(raw, sizeof(raw), "{\"id\":\"task-1\",\"input\":\"%s\"}",
                 input);
        assert_int_equal(kp_client_start(client, &task, raw, strlen(raw),
                                         (void *)slot, errstr, sizeof(errstr)),
                         0);
}

/* Runs the client until `want` callbacks fired or max_ms passed. */
static void drive(kp_client_t *client, int want, double max_ms) {
        double t0 = now_ms();

        while (nfired < want && now_ms() - t0 < max_ms) {
                kp_client_run(client);
                if (nfired < want)
                        assert_int_equal(kp_client_wait(client, NULL, 0, 100),
                                         0);
        }
        assert_int_equal(nfired, want);
}

/* ---- tests ---- */

static void test_anthropic_call_returns_text_and_usage(void **state) {
        kp_client_t *client = client_for(KP_BACKEND_ANTHROPIC);

        start(client, "hello", 0);
        assert_int_equal(kp_client_inflight(client), 1);
        drive(client, 1, 5000);

        assert_true(seen[0].ok);
        assert_string_equal(seen[0].output, "answer: hello");
        assert_int_equal(seen[0].http_status, 200);
        assert_int_equal(seen[0].attempts, 1);
        assert_true(seen[0].has_usage);
        assert_int_equal(seen[0].input_tokens, 7);
        assert_int_equal(seen[0].output_tokens, 3);
        assert_string_equal(srv_last_key, API_KEY);
        assert_string_equal(srv_last_version, "2023-06-01");
        assert_int_equal(kp_client_inflight(client), 0);
        kp_client_destroy(client);
}

static void test_openai_call_returns_first_choice(void **state) {
        kp_client_t *client = client_for(KP_BACKEND_OPENAI);

        start(client, "hi there", 0);
        drive(client, 1, 5000);

        assert_true(seen[0].ok);
        assert_string_equal(seen[0].output, "answer: hi there");
        assert_true(seen[0].has_usage);
        assert_int_equal(seen[0].input_tokens, 5);
        assert_int_equal(seen[0].output_tokens, 2);
        assert_string_equal(srv_last_key, "Bearer " API_KEY);
        kp_client_destroy(client);
}

static void test_http_call_returns_whole_body(void **state) {
        kp_client_t *client = client_for(KP_BACKEND_HTTP);

        start(client, "ping", 0);
        drive(client, 1, 5000);

        assert_true(seen[0].ok);
        assert_string_equal(seen[0].output,
                            "echo: {\"id\":\"task-1\",\"input\":\"ping\"}");
        assert_false(seen[0].has_usage);
        kp_client_destroy(client);
}

static void test_429_with_retry_after_then_ok(void **state) {
        kp_client_t *client = client_for(KP_BACKEND_ANTHROPIC);

        start(client, "busy @fail=1 @failstatus=429 @retry-after=1", 0);
        drive(client, 1, 8000);

        assert_true(seen[0].ok);
        assert_int_equal(seen[0].attempts, 2);
        assert_int_equal(seen[0].http_status, 200);
        /* The server's Retry-After wins over the 10 ms backoff. */
        assert_true(seen[0].duration_ms >= 1000);
        kp_client_destroy(client);
}

static void test_500_every_time_exhausts_attempts(void **state) {
        kp_client_t *client = client_for(KP_BACKEND_OPENAI);

        start(client, "broken @status=500", 0);
        drive(client, 1, 8000);

        assert_false(seen[0].ok);
        assert_string_equal(seen[0].kind, KP_ERR_RETRIES);
        assert_int_equal(seen[0].http_status, 500);
        assert_int_equal(seen[0].attempts, 3);
        assert_non_null(strstr(seen[0].message, "HTTP 500"));
        assert_non_null(strstr(seen[0].message, "after 3 attempts"));
        kp_client_destroy(client);
}

static void test_400_fails_at_once_with_the_apis_message(void **state) {
        kp_client_t *client = client_for(KP_BACKEND_ANTHROPIC);

        start(client, "bad @status=400", 0);
        drive(client, 1, 5000);

        assert_false(seen[0].ok);
        assert_string_equal(seen[0].kind, KP_ERR_BACKEND);
        assert_int_equal(seen[0].http_status, 400);
        assert_int_equal(seen[0].attempts, 1);
        assert_non_null(strstr(seen[0].message, "scripted 400 for key"));
        kp_client_destroy(client);
}

static void test_malformed_200_is_a_bad_response(void **state) {
        kp_client_t *client = client_for(KP_BACKEND_ANTHROPIC);

        start(client, "garbled @malformed", 0);
        drive(client, 1, 5000);

        assert_false(seen[0].ok);
        assert_string_equal(seen[0].kind, KP_ERR_BACKEND_RESPONSE);
        assert_int_equal(seen[0].http_status, 200);
        assert_int_equal(seen[0].attempts, 1);
        kp_client_destroy(client);
}

static void test_hang_past_the_deadline_times_out(void **state) {
        kp_backend_conf_t c = conf_for(KP_BACKEND_ANTHROPIC, srv_port);
        char errstr[256];
        kp_client_t *client;

        c.timeout_ms = 500;
        client = kp_client_new(&c, on_done, errstr, sizeof(errstr));
        assert_non_null(client);
        memset(seen, 0, sizeof(seen));
        nfired = 0;

        start(client, "slow @hang", 0);
        drive(client, 1, 500 + 2000);

        assert_false(seen[0].ok);
        assert_string_equal(seen[0].kind, KP_ERR_TIMEOUT);
        assert_int_equal(seen[0].attempts, 1);
        assert_true(seen[0].duration_ms >= 500);
        assert_true(seen[0].duration_ms < 500 + 2000);
        kp_client_destroy(client);
}

static void test_refused_connection_is_retried_then_given_up(void **state) {
        struct sockaddr_in sin;
        socklen_t len = sizeof(sin);
        kp_backend_conf_t c;
        char errstr[256];
        kp_client_t *client;
        int fd, port;

        /* A port that was free a moment ago and has no listener. */
        fd = socket(AF_INET, SOCK_STREAM, 0);
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
        port = ntohs(sin.sin_port);
        close(fd);

        c = conf_for(KP_BACKEND_OPENAI, port);
        client = kp_client_new(&c, on_done, errstr, sizeof(errstr));
        assert_non_null(client);
        memset(seen, 0, sizeof(seen));
        nfired = 0;

        start(client, "anyone there?", 0);
        drive(client, 1, 5000);

        assert_false(seen[0].ok);
        assert_string_equal(seen[0].kind, KP_ERR_RETRIES);
        assert_int_equal(seen[0].http_status, 0);
        assert_int_equal(seen[0].attempts, 3);
        assert_non_null(strstr(seen[0].message, "after 3 attempts"));
        kp_client_destroy(client);
}

static void test_concurrent_calls_complete_independently(void **state) {
        kp_client_t *client = client_for(KP_BACKEND_ANTHROPIC);
        double t0 = now_ms();

        start(client, "a @sleep=500", 0);
        start(client, "b @sleep=500", 1);
        start(client, "c @status=400", 2);
        start(client, "d @sleep=500", 3);
        assert_int_equal(kp_client_inflight(client), 4);
        drive(client, 4, 5000);

        /* In turn they would take 1.5 s. */
        assert_true(now_ms() - t0 < 1400);
        assert_string_equal(seen[0].output, "answer: a @sleep=500");
        assert_string_equal(seen[1].output, "answer: b @sleep=500");
        assert_string_equal(seen[3].output, "answer: d @sleep=500");
        assert_string_equal(seen[2].kind, KP_ERR_BACKEND);
        /* The quick failure did not wait for the slow ones. */
        assert_int_equal(seen[2].order, 1);
        assert_int_equal(kp_client_inflight(client), 0);
        kp_client_destroy(client);
}

static void test_sequential_calls_reuse_the_connection(void **state) {
        kp_client_t *client = client_for(KP_BACKEND_OPENAI);
        int before, i;

        start(client, "warm up", 0);
        drive(client, 1, 5000);
        before = atomic_load(&srv_connections);
        for (i = 1; i <= 5; i++) {
                start(client, "again", i);
                drive(client, i + 1, 5000);
                assert_true(seen[i].ok);
        }
        assert_int_equal(atomic_load(&srv_connections), before);
        kp_client_destroy(client);
}

static kp_client_t *chain_client;

/* Starts one more call from inside the first one's callback. */
static void on_done_chain(void *opaque, const kp_call_result_t *res) {
        on_done(opaque, res);
        if ((intptr_t)opaque == 0)
                start(chain_client, "second", 1);
}

static void test_callback_may_start_another_call(void **state) {
        kp_backend_conf_t c = conf_for(KP_BACKEND_ANTHROPIC, srv_port);
        char errstr[256];

        chain_client = kp_client_new(&c, on_done_chain, errstr, sizeof(errstr));
        assert_non_null(chain_client);
        memset(seen, 0, sizeof(seen));
        nfired = 0;

        start(chain_client, "first", 0);
        drive(chain_client, 2, 5000);

        assert_string_equal(seen[0].output, "answer: first");
        assert_string_equal(seen[1].output, "answer: second");
        assert_int_equal(seen[0].fired, 1);
        assert_int_equal(seen[1].fired, 1);
        kp_client_destroy(chain_client);
}

static void test_retry_after_beyond_deadline_gives_up_early(void **state) {
        kp_backend_conf_t c = conf_for(KP_BACKEND_ANTHROPIC, srv_port);
        char errstr[256];
        kp_client_t *client;

        c.timeout_ms = 3000;
        client = kp_client_new(&c, on_done, errstr, sizeof(errstr));
        assert_non_null(client);
        memset(seen, 0, sizeof(seen));
        nfired = 0;

        start(client, "later @status=503 @retry-after=60", 0);
        drive(client, 1, 2000);

        assert_string_equal(seen[0].kind, KP_ERR_RETRIES);
        assert_int_equal(seen[0].attempts, 1);
        assert_int_equal(seen[0].http_status, 503);
        assert_true(seen[0].duration_ms < 2000);
        kp_client_destroy(client);
}

static void test_api_key_never_appears_in_messages(void **state) {
        kp_client_t *client = client_for(KP_BACKEND_OPENAI);

        /* Each error body echoes the key; on_done asserts it is gone. */
        start(client, "k1 @status=401", 0);
        start(client, "k2 @status=502", 1);
        drive(client, 2, 5000);

        assert_string_equal(seen[0].kind, KP_ERR_BACKEND);
        assert_non_null(strstr(seen[0].message, "[redacted]"));
        assert_string_equal(seen[1].kind, KP_ERR_RETRIES);
        assert_non_null(strstr(seen[1].message, "[redacted]"));
        assert_null(strstr(seen[1].message, "Sup3rS3cret"));
        kp_client_destroy(client);
}

static void test_destroy_aborts_calls_without_callbacks(void **state) {
        kp_client_t *client = client_for(KP_BACKEND_ANTHROPIC);
        int i;

        start(client, "forever @hang", 0);
        for (i = 0; i < 3; i++) {
                kp_client_run(client);
                kp_client_wait(client, NULL, 0, 50);
        }
        assert_int_equal(kp_client_inflight(client), 1);
        kp_client_destroy(client);
        assert_int_equal(nfired, 0);
}

static void test_start_refuses_a_task_without_input(void **state) {
        kp_client_t *client = client_for(KP_BACKEND_ANTHROPIC);
        kp_task_t task;
        char errstr[256] = "";

        memset(&task, 0, sizeof(task));
        task.id = "no-input";
        assert_int_equal(kp_client_start(client, &task, NULL, 0, NULL, errstr,
                                         sizeof(errstr)),
                         -1);
        assert_true(errstr[0] != '\0');
        assert_int_equal(kp_client_inflight(client), 0);
        kp_client_run(client);
        assert_int_equal(nfired, 0);
        kp_client_destroy(client);
}

static void test_wait_wakes_for_an_extra_fd(void **state) {
        kp_client_t *client = client_for(KP_BACKEND_ANTHROPIC);
        int p[2];
        double t0;

        assert_int_equal(pipe(p), 0);
        assert_int_equal(write(p[1], "x", 1), 1);
        t0 = now_ms();
        assert_int_equal(kp_client_wait(client, p, 1, 5000), 0);
        assert_true(now_ms() - t0 < 2500);
        close(p[0]);
        close(p[1]);
        kp_client_destroy(client);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_anthropic_call_returns_text_and_usage),
            cmocka_unit_test(test_openai_call_returns_first_choice),
            cmocka_unit_test(test_http_call_returns_whole_body),
            cmocka_unit_test(test_429_with_retry_after_then_ok),
            cmocka_unit_test(test_500_every_time_exhausts_attempts),
            cmocka_unit_test(test_400_fails_at_once_with_the_apis_message),
            cmocka_unit_test(test_malformed_200_is_a_bad_response),
            cmocka_unit_test(test_hang_past_the_deadline_times_out),
            cmocka_unit_test(test_refused_connection_is_retried_then_given_up),
            cmocka_unit_test(test_concurrent_calls_complete_independently),
            cmocka_unit_test(test_sequential_calls_reuse_the_connection),
            cmocka_unit_test(test_callback_may_start_another_call),
            cmocka_unit_test(test_retry_after_beyond_deadline_gives_up_early),
            cmocka_unit_test(test_api_key_never_appears_in_messages),
            cmocka_unit_test(test_destroy_aborts_calls_without_callbacks),
            cmocka_unit_test(test_start_refuses_a_task_without_input),
            cmocka_unit_test(test_wait_wakes_for_an_extra_fd),
        };

        return cmocka_run_group_tests(tests, srv_start, srv_shutdown);
}
