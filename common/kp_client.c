/* kp_client.c - backend calls in flight over libcurl's multi interface.
 *
 * A call lives in the client's list from kp_client_start() until its
 * callback. It is either transferring (an easy handle in the multi
 * handle) or waiting for its retry timer. kp_client_run() moves finished
 * calls to a done queue first and fires their callbacks last, so a
 * callback may start new calls without disturbing the walk. */
#include "kp_client.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "kp_log.h"

/* A reply larger than this fails the call as a bad response. */
#define CLIENT_MAX_BODY ((size_t)16 * 1024 * 1024)

/* Connecting may take at most this long (within the deadline). */
#define CLIENT_CONNECT_MS 10000L

/* Idle easy handles kept for reuse. */
#define CLIENT_FREE_MAX 64

/* Extra fds polled without an allocation. */
#define CLIENT_STACK_FDS 8

/* Error texts kept per call: the last attempt's, then the final message
 * built around it. */
#define CLIENT_ERR_SIZE 384
#define CLIENT_MSG_SIZE 512

typedef struct kp_call {
        void *opaque;
        char *task_id; /* for log lines */
        char *body;
        size_t body_len;
        struct curl_slist *headers;
        CURL *easy; /* NULL while waiting for a retry */

        int attempts;
        double start_ms, deadline_ms; /* monotonic; deadline 0: none */
        double retry_at_ms;           /* when easy is NULL */

        /* The current attempt's reply. */
        char *resp;
        size_t resp_len, resp_cap;
        int resp_too_large;
        char retry_after[64];
        char curl_err[CURL_ERROR_SIZE];

        /* The last failed attempt, for the final message: "HTTP 503" or
         * "transport error", and why. */
        long last_status;
        char last_what[32];
        char last_err[CLIENT_ERR_SIZE];

        /* The outcome, once done. */
        int ok;
        const char *err_kind;
        char message[CLIENT_MSG_SIZE];
        kp_backend_reply_t reply;

        struct kp_call *prev, *next;
} kp_call_t;

struct kp_client {
        kp_backend_conf_t conf;
        kp_call_done_cb *cb;
        CURLM *multi;
        kp_call_t *calls; /* in flight */
        int inflight;
        kp_call_t *done_head, *done_tail; /* awaiting their callbacks */
        CURL *free_easy[CLIENT_FREE_MAX];
        int nfree;
        unsigned seed;
};

static double now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void *xcalloc(size_t n, size_t size) {
        void *p = calloc(n, size);

        if (!p) {
                kp_err("Out of memory allocating %zu bytes", n * size);
                abort();
        }
        return p;
}

/* A copy of s, or NULL for NULL. */
static char *dup_or_null(const char *s) {
        char *d;

        if (!s)
                return NULL;
        d = strdup(s);
        if (!d) {
                kp_err("Out of memory copying a string");
                abort();
        }
        return d;
}

static void free_secret(char *s) {
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
}

/* ---- the call list ---- */

static void list_add(kp_client_t *client, kp_call_t *call) {
        call->prev = NULL;
        call->next = client->calls;
        if (client->calls)
                client->calls->prev = call;
        client->calls = call;
        client->inflight++;
}

static void list_remove(kp_client_t *client, kp_call_t *call) {
        if (call->prev)
                call->prev->next = call->next;
        else
                client->calls = call->next;
        if (call->next)
                call->next->prev = call->prev;
        call->prev = call->next = NULL;
        client->inflight--;
}

static void call_free(kp_call_t *call) {
        kp_backend_reply_clear(&call->reply);
        curl_slist_free_all(call->headers);
        free(call->body);
        free(call->resp);
        free(call->task_id);
        free(call);
}

/* ---- easy handles ---- */

static CURL *easy_get(kp_client_t *client) {
        CURL *easy;

        if (client->nfree > 0) {
                easy = client->free_easy[--client->nfree];
                curl_easy_reset(easy);
                return easy;
        }
        return curl_easy_init();
}

/* Takes the call's handle out of the multi handle and keeps it for the
 * next call (connections live in the multi handle's cache). */
static void easy_release(kp_client_t *client, kp_call_t *call) {
        if (!call->easy)
                return;
        curl_multi_remove_handle(client->multi, call->easy);
        if (client->nfree < CLIENT_FREE_MAX)
                client->free_easy[client->nfree++] = call->easy;
        else
                curl_easy_cleanup(call->easy);
        call->easy = NULL;
}

/* ---- transfer callbacks ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *opaque) {
        kp_call_t *call = opaque;
        size_t n = size * nmemb;

        if (call->resp_len + n > CLIENT_MAX_BODY) {
                call->resp_too_large = 1;
                return 0; /* aborts the transfer */
        }
        if (call->resp_len + n + 1 > call->resp_cap) {
                size_t cap = call->resp_cap ? call->resp_cap : 4096;
                char *grown;

                while (cap < call->resp_len + n + 1)
                        cap *= 2;
                grown = realloc(call->resp, cap);
                if (!grown)
                        return 0;
                call->resp = grown;
                call->resp_cap = cap;
        }
        memcpy(call->resp + call->resp_len, data, n);
        call->resp_len += n;
        call->resp[call->resp_len] = '\0';
        return n;
}

/* Keeps the Retry-After value of the last response. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *opaque) {
        kp_call_t *call = opaque;
        size_t n = size * nmemb, vlen;
        const char *v, *end = data + n;

        if (n >= 5 && !strncmp(data, "HTTP/", 5)) {
                /* A new response (after a 1xx, say) starts afresh. */
                call->retry_after[0] = '\0';
                return n;
        }
        if (n < 12 || strncasecmp(data, "retry-after:", 12))
                return n;

        v = data + 12;
        while (v < end && (*v == ' ' || *v == '\t'))
                v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' ||
                           end[-1] == ' ' || end[-1] == '\t'))
                end--;
        vlen = (size_t)(end - v);
        if (vlen >= sizeof(call->retry_after))
                vlen = sizeof(call->retry_after) - 1;
        memcpy(call->retry_after, v, vlen);
        call->retry_after[vlen] = '\0';
        return n;
}

/* ---- attempts ---- */

/* Starts the next attempt. Returns 0, or -1 with call->message set. */
static int attempt_start(kp_client_t *client, kp_call_t *call) {
        double left = call->deadline_ms > 0 ? call->deadline_ms - now_ms() : 0;
        long timeout_ms = 0, connect_ms = CLIENT_CONNECT_MS;
        CURL *easy = easy_get(client);
        CURLcode cc = CURLE_OK;
        CURLMcode mc;

        if (!easy) {
                snprintf(call->message, sizeof(call->message),
                         "failed to create a transfer");
                return -1;
        }
        if (call->deadline_ms > 0) {
                /* A little past the deadline: kp_client_run() reports
                 * the timeout on time, curl's own timer is the backstop
                 * (it could otherwise fire a millisecond early). */
                timeout_ms = left < 1 ? 5 : (long)left + 5;
                if (connect_ms > timeout_ms)
                        connect_ms = timeout_ms;
        }

        call->resp_len = 0;
        call->resp_too_large = 0;
        call->retry_after[0] = '\0';
        call->curl_err[0] = '\0';

        /* Each option's failure is only out of memory or a curl built
         * without the feature; the first one counts. */
#define SETOPT(OPT, VAL)                                                       \
        do {                                                                   \
                if (cc == CURLE_OK)                                            \
                        cc = curl_easy_setopt(easy, OPT, VAL);                 \
        } while (0)
        SETOPT(CURLOPT_URL, client->conf.url);
        SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
        SETOPT(CURLOPT_POSTFIELDS, call->body);
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
        SETOPT(CURLOPT_HTTPHEADER, call->headers);
        SETOPT(CURLOPT_USERAGENT, "kpool");
        SETOPT(CURLOPT_NOSIGNAL, 1L);
        SETOPT(CURLOPT_TCP_NODELAY, 1L);
        SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
        SETOPT(CURLOPT_ACCEPT_ENCODING, "");
        SETOPT(CURLOPT_TIMEOUT_MS, timeout_ms);
        SETOPT(CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
        SETOPT(CURLOPT_WRITEFUNCTION, on_body);
        SETOPT(CURLOPT_WRITEDATA, call);
        SETOPT(CURLOPT_HEADERFUNCTION, on_header);
        SETOPT(CURLOPT_HEADERDATA, call);
        SETOPT(CURLOPT_ERRORBUFFER, call->curl_err);
        SETOPT(CURLOPT_PRIVATE, call);
#undef SETOPT
        if (cc != CURLE_OK) {
                curl_easy_cleanup(easy);
                snprintf(call->message, sizeof(call->message),
                         "failed to set up a transfer: %s",
                         curl_easy_strerror(cc));
                return -1;
        }

        mc = curl_multi_add_handle(client->multi, easy);
        if (mc != CURLM_OK) {
                curl_easy_cleanup(easy);
                snprintf(call->message, sizeof(call->message),
                         "failed to start a transfer: %s",
                         curl_multi_strerror(mc));
                return -1;
        }
        call->easy = easy;
        call->attempts++;
        kp_debug("backend attempt %d started: task=%s", call->attempts,
                 call->task_id);
        return 0;
}

/* Replaces every occurrence of the API key in s with "[redacted]". A
 * server may echo what it was sent; the key must not travel on. */
static void redact(const kp_client_t *client, char *s, size_t size) {
        static const char mask[] = "[redacted]";
        const char *key = client->conf.api_key;
        size_t klen, mlen = sizeof(mask) - 1;
        char *p;

        if (!key || !*key)
                return;
        klen = strlen(key);
        p = s;
        while ((p = strstr(p, key)) != NULL) {
                size_t head = (size_t)(p - s), tail = strlen(p + klen);

                if (head + mlen + 1 > size) {
                        *p = '\0'; /* no room for the mask: cut here */
                        return;
                }
                if (head + mlen + tail + 1 > size)
                        tail = size - 1 - head - mlen;
                memmove(p + mlen, p + klen, tail);
                memcpy(p, mask, mlen);
                p[mlen + tail] = '\0';
                p += mlen; /* the mask itself may hold the key */
        }
}

/* Moves a finished call to the done queue; its callback fires at the end
 * of kp_client_run(). */
static void call_finish(kp_client_t *client, kp_call_t *call, int ok,
                        const char *kind) {
        easy_release(client, call);
        list_remove(client, call);
        call->ok = ok;
        call->err_kind = kind;
        if (!ok)
                redact(client, call->message, sizeof(call->message));
        if (client->done_tail)
                client->done_tail->next = call;
        else
                client->done_head = call;
        client->done_tail = call;

        if (ok)
                kp_debug("backend call ok after %d attempt(s): task=%s",
                         call->attempts, call->task_id);
        else
                kp_debug("backend call failed (%s): task=%s: %s", kind,
                         call->task_id, call->message);
}

/* Fails a call whose deadline passed. */
static void call_timeout(kp_client_t *client, kp_call_t *call) {
        int n;

        n = snprintf(call->message, sizeof(call->message),
                     "deadline of %ld ms passed after %d attempt%s",
                     client->conf.timeout_ms, call->attempts,
                     call->attempts == 1 ? "" : "s");
        if (call->last_what[0] && n > 0 && (size_t)n < sizeof(call->message))
                snprintf(call->message + n, sizeof(call->message) - (size_t)n,
                         "; last: %s: %s", call->last_what, call->last_err);
        call_finish(client, call, 0, KP_ERR_TIMEOUT);
}

/* Reads a 2xx reply. */
static void attempt_ok(kp_client_t *client, kp_call_t *call, long status) {
        char err[CLIENT_MSG_SIZE - 64];

        if (kp_backend_parse(&client->conf, call->resp, call->resp_len,
                             &call->reply, err, sizeof(err)) == 0) {
                call_finish(client, call, 1, NULL);
                return;
        }
        kp_backend_reply_clear(&call->reply);
        snprintf(call->message, sizeof(call->message), "HTTP %ld reply: %s",
                 status, err);
        call_finish(client, call, 0, KP_ERR_BACKEND_RESPONSE);
}

/* Schedules a retry if attempts remain and it fits before the deadline,
 * else fails the call. */
static void attempt_retry(kp_client_t *client, kp_call_t *call) {
        const kp_backend_conf_t *conf = &client->conf;
        long ra = -1, delay = 0;
        double now = now_ms();
        char why[96] = "";

        if (call->retry_after[0])
                ra = kp_backend_retry_after_ms(call->retry_after, time(NULL));

        if (call->deadline_ms > 0 && now >= call->deadline_ms) {
                call_timeout(client, call);
                return;
        }
        if (call->attempts < conf->attempts) {
                delay = kp_backend_backoff_ms(conf, call->attempts + 1, ra,
                                              &client->seed);
                if (call->deadline_ms <= 0 ||
                    now + (double)delay < call->deadline_ms) {
                        call->retry_at_ms = now + (double)delay;
                        kp_debug("backend attempt %d failed, retry in %ld "
                                 "ms: task=%s: %s: %s",
                                 call->attempts, delay, call->task_id,
                                 call->last_what, call->last_err);
                        return;
                }
                snprintf(why, sizeof(why),
                         " (a retry in %ld ms would pass the deadline)", delay);
        }

        snprintf(call->message, sizeof(call->message),
                 "%s after %d attempt%s%s: %s", call->last_what, call->attempts,
                 call->attempts == 1 ? "" : "s", why, call->last_err);
        call_finish(client, call, 0, KP_ERR_RETRIES);
}

/* Handles the end of an attempt. */
static void attempt_done(kp_client_t *client, kp_call_t *call, CURLcode cc) {
        long status = 0;
        char what[sizeof(call->last_what)], text[CLIENT_ERR_SIZE];

        curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
        easy_release(client, call);
        if (status)
                call->last_status = status;

        if (call->resp_too_large) {
                snprintf(call->message, sizeof(call->message),
                         "HTTP %ld reply larger than %zu bytes", status,
                         CLIENT_MAX_BODY);
                call_finish(client, call, 0, KP_ERR_BACKEND_RESPONSE);
                return;
        }
        if (cc == CURLE_OK && status >= 200 && status <= 299) {
                attempt_ok(client, call, status);
                return;
        }

        /* Cut short by the deadline: the previous failure, if any, is
         * the one worth reporting. */
        if (cc == CURLE_OPERATION_TIMEDOUT && call->deadline_ms > 0 &&
            now_ms() >= call->deadline_ms - 10) {
                call_timeout(client, call);
                return;
        }

        /* What went wrong, kept for the final message. */
        if (cc != CURLE_OK) {
                snprintf(what, sizeof(what), "transport error");
                snprintf(text, sizeof(text), "%s",
                         call->curl_err[0] ? call->curl_err
                                           : curl_easy_strerror(cc));
        } else {
                snprintf(what, sizeof(what), "HTTP %ld", status);
                kp_backend_error_text(call->resp, call->resp_len, text,
                                      sizeof(text));
        }
        redact(client, text, sizeof(text));
        memcpy(call->last_what, what, sizeof(what));
        memcpy(call->last_err, text, sizeof(text));

        if (kp_backend_retryable(cc == CURLE_OK ? status : 0, cc)) {
                attempt_retry(client, call);
                return;
        }

        snprintf(call->message, sizeof(call->message), "%s: %s", what, text);
        call_finish(client, call, 0, KP_ERR_BACKEND);
}

/* ---- the interface ---- */

kp_client_t *kp_client_new(const kp_backend_conf_t *conf, kp_call_done_cb *cb,
                           char *errstr, size_t errstr_size) {
        kp_client_t *client;

        if (!conf->url || !*conf->url) {
                snprintf(errstr, errstr_size, "the backend has no URL");
                return NULL;
        }
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                snprintf(errstr, errstr_size, "failed to initialise libcurl");
                return NULL;
        }

        client = xcalloc(1, sizeof(*client));
        client->conf = *conf;
        client->conf.url = dup_or_null(conf->url);
        client->conf.model = dup_or_null(conf->model);
        client->conf.role = dup_or_null(conf->role);
        client->conf.api_key = dup_or_null(conf->api_key);
        client->conf.anthropic_version = dup_or_null(conf->anthropic_version);
        if (client->conf.attempts < 1)
                client->conf.attempts = 1;
        client->cb = cb;
        client->seed = (unsigned)time(NULL) ^ (unsigned)getpid() ^
                       (unsigned)(uintptr_t)client;

        client->multi = curl_multi_init();
        if (!client->multi) {
                snprintf(errstr, errstr_size,
                         "failed to create a libcurl multi handle");
                kp_client_destroy(client);
                return NULL;
        }
        return client;
}

void kp_client_destroy(kp_client_t *client) {
        kp_call_t *call, *next;

        if (!client)
                return;

        for (call = client->calls; call; call = next) {
                next = call->next;
                easy_release(client, call);
                call_free(call);
        }
        client->calls = NULL;
        client->inflight = 0;
        for (call = client->done_head; call; call = next) {
                next = call->next;
                call_free(call);
        }
        client->done_head = client->done_tail = NULL;
        while (client->nfree > 0)
                curl_easy_cleanup(client->free_easy[--client->nfree]);
        if (client->multi)
                curl_multi_cleanup(client->multi);

        free(client->conf.url);
        free(client->conf.model);
        free(client->conf.role);
        free_secret(client->conf.api_key);
        free(client->conf.anthropic_version);
        free(client);
        curl_global_cleanup();
}

int kp_client_start(kp_client_t *client, const kp_task_t *task, const void *raw,
                    size_t raw_len, void *opaque, char *errstr,
                    size_t errstr_size) {
        kp_call_t *call = xcalloc(1, sizeof(*call));

        call->opaque = opaque;
        call->task_id = dup_or_null(task->id ? task->id : "-");
        if (kp_backend_request(&client->conf, task, raw, raw_len, &call->body,
                               &call->headers, errstr, errstr_size) < 0) {
                call_free(call);
                return -1;
        }
        call->body_len = strlen(call->body);
        call->start_ms = now_ms();
        if (client->conf.timeout_ms > 0)
                call->deadline_ms =
                    call->start_ms + (double)client->conf.timeout_ms;

        if (attempt_start(client, call) < 0) {
                snprintf(errstr, errstr_size, "%s", call->message);
                call_free(call);
                return -1;
        }
        list_add(client, call);
        return 0;
}

/* Fires the callbacks of finished calls, in the order they finished. A
 * callback may start calls; they join the list, not this queue. */
static void fire_callbacks(kp_client_t *client) {
        kp_call_t *call;

        while ((call = client->done_head) != NULL) {
                kp_call_result_t res;

                client->done_head = call->next;
                if (!client->done_head)
                        client->done_tail = NULL;

                memset(&res, 0, sizeof(res));
                res.ok = call->ok;
                res.http_status = call->last_status;
                res.attempts = call->attempts;
                res.duration_ms = now_ms() - call->start_ms;
                if (call->ok) {
                        res.output = call->reply.output;
                        res.has_usage = call->reply.has_usage;
                        res.input_tokens = call->reply.input_tokens;
                        res.output_tokens = call->reply.output_tokens;
                } else {
                        res.err_kind = call->err_kind;
                        res.err_message = call->message;
                }
                if (client->cb)
                        client->cb(call->opaque, &res);
                call_free(call);
        }
}

int kp_client_run(kp_client_t *client) {
        kp_call_t *call, *next;
        CURLMsg *msg;
        int running, left;
        double now;

        curl_multi_perform(client->multi, &running);

        /* Finished transfers. */
        while ((msg = curl_multi_info_read(client->multi, &left)) != NULL) {
                if (msg->msg != CURLMSG_DONE)
                        continue;
                call = NULL;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &call);
                if (call)
                        attempt_done(client, call, msg->data.result);
        }

        /* Deadlines and due retries. */
        now = now_ms();
        for (call = client->calls; call; call = next) {
                next = call->next;
                if (call->deadline_ms > 0 && now >= call->deadline_ms) {
                        call_timeout(client, call);
                } else if (!call->easy && now >= call->retry_at_ms) {
                        if (attempt_start(client, call) < 0)
                                call_finish(client, call, 0, KP_ERR_BACKEND);
                }
        }

        /* New attempts get going at once. */
        curl_multi_perform(client->multi, &running);

        fire_callbacks(client);
        return client->inflight;
}

/* Milliseconds until the next retry timer or deadline, capped at
 * timeout_ms (negative: no cap). */
static int next_timer_ms(const kp_client_t *client, int timeout_ms) {
        double now = now_ms(), first = -1;
        const kp_call_t *call;
        int wait;

        for (call = client->calls; call; call = call->next) {
                if (!call->easy && (first < 0 || call->retry_at_ms < first))
                        first = call->retry_at_ms;
                if (call->deadline_ms > 0 &&
                    (first < 0 || call->deadline_ms < first))
                        first = call->deadline_ms;
        }
        if (first < 0)
                return timeout_ms < 0 ? INT_MAX : timeout_ms;

        first -= now;
        wait = first <= 0 ? 0 : first > INT_MAX - 1 ? INT_MAX : (int)first + 1;
        if (timeout_ms >= 0 && timeout_ms < wait)
                wait = timeout_ms;
        return wait;
}

int kp_client_wait(kp_client_t *client, const int *fds, int nfds,
                   int timeout_ms) {
        struct curl_waitfd stack_fds[CLIENT_STACK_FDS];
        struct curl_waitfd *wfds = stack_fds;
        CURLMcode mc;
        int i, wait;

        /* Callbacks waiting to fire: no sleeping. */
        wait = client->done_head ? 0 : next_timer_ms(client, timeout_ms);

        if (nfds > CLIENT_STACK_FDS)
                wfds = xcalloc((size_t)nfds, sizeof(*wfds));
        for (i = 0; i < nfds; i++) {
                wfds[i].fd = fds[i];
                wfds[i].events = CURL_WAIT_POLLIN;
                wfds[i].revents = 0;
        }
        mc = curl_multi_poll(client->multi, nfds > 0 ? wfds : NULL,
                             (unsigned)(nfds > 0 ? nfds : 0), wait, NULL);
        if (wfds != stack_fds)
                free(wfds);
        if (mc != CURLM_OK) {
                kp_err("Failed to wait for backend transfers: %s",
                       curl_multi_strerror(mc));
                return -1;
        }
        return 0;
}

int kp_client_inflight(const kp_client_t *client) {
        return client->inflight;
}
