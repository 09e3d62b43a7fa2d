/* stub_llm.c - kpool-stub-llm, the stand-in LLM server of kpool's tests,
 * benchmarks and offline demo.
 *
 * It speaks the Anthropic Messages API (POST /v1/messages), OpenAI chat
 * completions (POST /v1/chat/completions) and a plain HTTP echo (POST
 * /echo), answers a few well-known questions from a built-in table, and
 * injects faults on request: directives such as [stub:status=503] in a
 * task's input steer that one call. GET /health and GET /stats serve the
 * tests.
 *
 * One thread per connection (libmicrohttpd), so a slow or hanging answer
 * never holds up another connection. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <microhttpd.h>

#include "kp_exit.h"
#include "kp_log.h"

#define STUB_MAX_BODY   ((size_t)16 * 1024 * 1024) /* larger requests get 413 */
#define STUB_MAX_ANSWER 2000           /* bytes of input echoed back */
#define STUB_HANG_MS    (3600L * 1000) /* [stub:hang]: an hour */

/* Endpoints, as counted by /stats. */
enum {
        EP_MESSAGES,
        EP_CHAT,
        EP_ECHO,
        EP_HEALTH,
        EP_STATS,
        EP_OTHER,
        EP_COUNT,
};

static const char *const ep_names[EP_COUNT] = {
    "/v1/messages", "/v1/chat/completions", "/echo", "/health", "/stats",
    "other",
};

/* Requests by endpoint and status; status 0 counts those dropped without
 * an answer ([stub:hang], a client gone while the answer waited). */
#define STATUS_MAX 600
static atomic_long stats_count[EP_COUNT][STATUS_MAX];

typedef struct stub_conf {
        const char *bind;
        int port;
        long latency_ms;
        double error_rate;
        uint64_t seed;
} stub_conf_t;

static stub_conf_t conf = {"127.0.0.1", 0, 0, 0.0, 1};

/* Written once at shutdown; every waiting handler polls its read end. */
static int shutdown_pipe[2] = {-1, -1};

/* Draws for --error-rate and ids: a counter through splitmix64. */
static atomic_ullong draw_counter;

/* [stub:fail=N]: how many requests each input (by hash) has failed. */
#define FAIL_BUCKETS 1024
typedef struct fail_entry {
        uint64_t hash;
        int count;
        struct fail_entry *next;
} fail_entry_t;
static fail_entry_t *fail_table[FAIL_BUCKETS];
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

/* One request being received. */
typedef struct req {
        int ep;
        char *body;
        size_t len, cap;
        int too_large;
        struct timespec start;
} req_t;

/* A reply about to be queued. */
typedef struct reply {
        unsigned status;
        char *body; /* malloc'd */
        size_t len;
        const char *ctype;
        long retry_after; /* seconds, -1: no header */
        int drop;         /* 1: close the connection without answering */
} reply_t;

/* Which API a call speaks, for its error bodies. */
typedef enum { API_ANTHROPIC, API_OPENAI, API_ECHO } api_t;

/* The faults asked for by directives in the input. */
typedef struct directives {
        long sleep_ms;
        int status;
        long retry_after;
        int fail;
        int malformed;
        int hang;
} directives_t;

/* A validated call. */
typedef struct call {
        api_t api;
        const char *model;
        const char *id; /* echo: the task's id */
        char *input;    /* malloc'd: the user's text */
        long in_words;
} call_t;

static uint64_t splitmix64(uint64_t x) {
        x += 0x9e3779b97f4a7c15ULL;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
        return x ^ (x >> 31);
}

static uint64_t draw(void) {
        return splitmix64(conf.seed * 0x100000001b3ULL +
                          atomic_fetch_add(&draw_counter, 1));
}

/* A uniform double in [0, 1). */
static double draw_unit(void) {
        return (double)(draw() >> 11) / (double)(1ULL << 53);
}

static uint64_t fnv1a(const char *s) {
        uint64_t h = 0xcbf29ce484222325ULL;

        for (; *s; s++) {
                h ^= (unsigned char)*s;
                h *= 0x100000001b3ULL;
        }
        return h;
}

static double ms_since(const struct timespec *t0) {
        struct timespec now;

        clock_gettime(CLOCK_MONOTONIC, &now);
        return (double)(now.tv_sec - t0->tv_sec) * 1e3 +
               (double)(now.tv_nsec - t0->tv_nsec) / 1e6;
}

static char *xstrdup(const char *s) {
        char *d = strdup(s);

        if (!d)
                abort();
        return d;
}

/* Words in a text, the stub's notion of tokens. */
static long count_words(const char *s) {
        long n = 0;
        int in_word = 0;

        for (; *s; s++) {
                if (isspace((unsigned char)*s)) {
                        in_word = 0;
                } else if (!in_word) {
                        in_word = 1;
                        n++;
                }
        }
        return n;
}

/* Case-insensitive substring search. */
static int contains(const char *hay, const char *needle) {
        return strcasestr(hay, needle) != NULL;
}

/* ---- directives ---- */

/* Reads every [stub:...] directive in the text; unknown ones are
 * ignored. */
static void parse_directives(const char *text, directives_t *d) {
        const char *p = text;

        memset(d, 0, sizeof(*d));
        d->retry_after = -1;
        while ((p = strstr(p, "[stub:")) != NULL) {
                const char *key = p + 6;
                const char *end = strchr(key, ']');
                const char *eq;
                char val[32];
                size_t klen, vlen;
                long v;

                if (!end)
                        break;
                eq = memchr(key, '=', (size_t)(end - key));
                klen = (size_t)((eq ? eq : end) - key);
                vlen = eq ? (size_t)(end - eq - 1) : 0;
                p = end + 1;
                if (vlen >= sizeof(val))
                        continue;
                if (eq)
                        memcpy(val, eq + 1, vlen);
                val[vlen] = '\0';
                v = strtol(val, NULL, 10);

                if (klen == 5 && !strncmp(key, "sleep", 5) && v > 0)
                        d->sleep_ms = v;
                else if (klen == 6 && !strncmp(key, "status", 6) && v >= 400 &&
                         v < STATUS_MAX)
                        d->status = (int)v;
                else if (klen == 11 && !strncmp(key, "retry-after", 11) &&
                         v >= 0)
                        d->retry_after = v;
                else if (klen == 4 && !strncmp(key, "fail", 4) && v > 0)
                        d->fail = (int)v;
                else if (klen == 9 && !strncmp(key, "malformed", 9))
                        d->malformed = 1;
                else if (klen == 4 && !strncmp(key, "hang", 4))
                        d->hang = 1;
        }
}

/* [stub:fail=N]: 1 if this request should fail, counting it. */
static int fail_take(const char *input, int n) {
        uint64_t h = fnv1a(input);
        fail_entry_t **slot = &fail_table[h % FAIL_BUCKETS];
        fail_entry_t *e;
        int fail;

        pthread_mutex_lock(&fail_lock);
        for (e = *slot; e && e->hash != h; e = e->next)
                ;
        if (!e) {
                e = calloc(1, sizeof(*e));
                if (!e)
                        abort();
                e->hash = h;
                e->next = *slot;
                *slot = e;
        }
        fail = e->count < n;
        if (fail)
                e->count++;
        pthread_mutex_unlock(&fail_lock);
        return fail;
}

static void fail_table_free(void) {
        size_t i;

        for (i = 0; i < FAIL_BUCKETS; i++) {
                while (fail_table[i]) {
                        fail_entry_t *e = fail_table[i];

                        fail_table[i] = e->next;
                        free(e);
                }
        }
}

/* Sleeps ms milliseconds, waking early at shutdown or when the client
 * hangs up. Returns 0 after the whole wait, -1 if cut short. */
static int stub_wait(struct MHD_Connection *conn, long ms) {
        const union MHD_ConnectionInfo *ci;
        struct timespec t0;
        struct pollfd pfd[2];
        nfds_t n = 1;

        if (ms <= 0)
                return 0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        pfd[0].fd = shutdown_pipe[0];
        pfd[0].events = POLLIN;
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci) {
                /* POLLRDHUP only: a pipelined request must not wake us. */
                pfd[1].fd = ci->connect_fd;
                pfd[1].events = POLLRDHUP;
                n = 2;
        }

        for (;;) {
                double left = (double)ms - ms_since(&t0);
                int r;

                if (left <= 0)
                        return 0;
                r = poll(pfd, n, left > 1000 ? 1000 : (int)left + 1);
                if (r < 0 && errno != EINTR)
                        return -1;
                if (r > 0)
                        return -1;
        }
}

/* ---- answers ---- */

/* A question of the built-in table: every keyword group must match, a
 * group being '|'-separated alternatives. */
typedef struct qa {
        const char *groups[3];
        const char *answer;
} qa_t;

static const qa_t qa_table[] = {
    {{"capital", "france", NULL}, "Paris."},
    {{"hamlet", "wrote|author|writer|who", NULL}, "William Shakespeare."},
    {{"first", "president", "united states|the us|u.s.|usa|america"},
     "George Washington."},
    {{"speed of light", NULL, NULL}, "299,792,458 metres per second."},
    {{"symbol", "gold", NULL}, "Au."},
    {{"tallest|highest", "mountain", NULL}, "Mount Everest."},
    {{"largest|biggest", "ocean", NULL}, "The Pacific Ocean."},
    {{"wwii|ww2|world war ii|world war 2|second world war", "end", NULL},
     "1945."},
    {{"ninth symphony|9th symphony|symphony no. 9|symphony no 9",
      "compos|wrote|who", NULL},
     "Ludwig van Beethoven."},
};

/* 1 if one of the '|'-separated alternatives occurs in text. */
static int group_matches(const char *text, const char *group) {
        char alt[64];

        while (*group) {
                size_t n = strcspn(group, "|");

                if (n < sizeof(alt)) {
                        memcpy(alt, group, n);
                        alt[n] = '\0';
                        if (contains(text, alt))
                                return 1;
                }
                group += n;
                if (*group == '|')
                        group++;
        }
        return 0;
}

/* The answer to the user's text; returns a malloc'd string. */
static char *make_answer(const char *input) {
        size_t i, j, n;
        char *out;

        for (i = 0; i < sizeof(qa_table) / sizeof(qa_table[0]); i++) {
                int ok = 1;

                for (j = 0; j < 3 && qa_table[i].groups[j]; j++)
                        ok = ok && group_matches(input, qa_table[i].groups[j]);
                if (ok)
                        return xstrdup(qa_table[i].answer);
        }

        /* Echo the input, cut at a character boundary. */
        n = strlen(input);
        if (n > STUB_MAX_ANSWER) {
                n = STUB_MAX_ANSWER;
                while (n > 0 && ((unsigned char)input[n] & 0xc0) == 0x80)
                        n--;
        }
        if (asprintf(&out, "stub answer: %.*s", (int)n, input) < 0)
                abort();
        return out;
}

/* ---- replies ---- */

static void reply_json(reply_t *r, unsigned status, json_object *obj) {
        size_t len;
        const char *s = json_object_to_json_string_length(
            obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

        r->status = status;
        r->body = malloc(len + 1);
        if (!r->body)
                abort();
        memcpy(r->body, s, len + 1);
        r->len = len;
        r->ctype = "application/json";
        json_object_put(obj);
}

static void reply_text(reply_t *r, unsigned status, const char *text) {
        r->status = status;
        r->body = xstrdup(text);
        r->len = strlen(text);
        r->ctype = "text/plain; charset=utf-8";
}

static const char *anthropic_error_type(unsigned status) {
        switch (status) {
        case 401:
                return "authentication_error";
        case 403:
                return "permission_error";
        case 404:
                return "not_found_error";
        case 413:
                return "request_too_large";
        case 429:
                return "rate_limit_error";
        case 529:
                return "overloaded_error";
        default:
                return status >= 500 ? "api_error" : "invalid_request_error";
        }
}

/* OpenAI's error type and code for a status; *codep may be NULL. */
static const char *openai_error_type(unsigned status, const char **codep) {
        *codep = NULL;
        switch (status) {
        case 401:
                *codep = "invalid_api_key";
                return "invalid_request_error";
        case 404:
                *codep = "model_not_found";
                return "invalid_request_error";
        case 429:
                *codep = "rate_limit_exceeded";
                return "requests";
        default:
                return status >= 500 ? "server_error" : "invalid_request_error";
        }
}

/* An error reply in the API's own shape. */
static void reply_error(reply_t *r, api_t api, unsigned status,
                        const char *message) {
        json_object *o, *e;
        const char *code;
        char *text;

        switch (api) {
        case API_ANTHROPIC:
                o = json_object_new_object();
                e = json_object_new_object();
                json_object_object_add(o, "type",
                                       json_object_new_string("error"));
                json_object_object_add(
                    e, "type",
                    json_object_new_string(anthropic_error_type(status)));
                json_object_object_add(e, "message",
                                       json_object_new_string(message));
                json_object_object_add(o, "error", e);
                reply_json(r, status, o);
                break;
        case API_OPENAI:
                o = json_object_new_object();
                e = json_object_new_object();
                json_object_object_add(e, "message",
                                       json_object_new_string(message));
                json_object_object_add(
                    e, "type",
                    json_object_new_string(openai_error_type(status, &code)));
                json_object_object_add(e, "param", NULL);
                json_object_object_add(
                    e, "code", code ? json_object_new_string(code) : NULL);
                json_object_object_add(o, "error", e);
                reply_json(r, status, o);
                break;
        case API_ECHO:
                if (asprintf(&text, "error: %s", message) < 0)
                        abort();
                reply_text(r, status, text);
                free(text);
                break;
        }
}

static void new_id(char *out, size_t size, const char *prefix) {
        uint64_t a = draw(), b = draw();

        snprintf(out, size, "%s%016llx%08llx", prefix, (unsigned long long)a,
                 (unsigned long long)(b & 0xffffffffULL));
}

static void reply_anthropic_ok(reply_t *r, const call_t *c,
                               const char *answer) {
        json_object *o = json_object_new_object();
        json_object *content = json_object_new_array();
        json_object *block = json_object_new_object();
        json_object *usage = json_object_new_object();
        char id[64];

        new_id(id, sizeof(id), "msg_");
        json_object_object_add(o, "id", json_object_new_string(id));
        json_object_object_add(o, "type", json_object_new_string("message"));
        json_object_object_add(o, "role", json_object_new_string("assistant"));
        json_object_object_add(o, "model", json_object_new_string(c->model));
        json_object_object_add(block, "type", json_object_new_string("text"));
        json_object_object_add(block, "text", json_object_new_string(answer));
        json_object_array_add(content, block);
        json_object_object_add(o, "content", content);
        json_object_object_add(o, "stop_reason",
                               json_object_new_string("end_turn"));
        json_object_object_add(o, "stop_sequence", NULL);
        json_object_object_add(usage, "input_tokens",
                               json_object_new_int64(c->in_words));
        json_object_object_add(usage, "output_tokens",
                               json_object_new_int64(count_words(answer)));
        json_object_object_add(o, "usage", usage);
        reply_json(r, 200, o);
}

static void reply_openai_ok(reply_t *r, const call_t *c, const char *answer) {
        json_object *o = json_object_new_object();
        json_object *choices = json_object_new_array();
        json_object *choice = json_object_new_object();
        json_object *msg = json_object_new_object();
        json_object *usage = json_object_new_object();
        long out_words = count_words(answer);
        char id[64];

        new_id(id, sizeof(id), "chatcmpl-");
        json_object_object_add(o, "id", json_object_new_string(id));
        json_object_object_add(o, "object",
                               json_object_new_string("chat.completion"));
        json_object_object_add(o, "created",
                               json_object_new_int64((int64_t)time(NULL)));
        json_object_object_add(o, "model", json_object_new_string(c->model));
        json_object_object_add(choice, "index", json_object_new_int(0));
        json_object_object_add(msg, "role",
                               json_object_new_string("assistant"));
        json_object_object_add(msg, "content", json_object_new_string(answer));
        json_object_object_add(choice, "message", msg);
        json_object_object_add(choice, "finish_reason",
                               json_object_new_string("stop"));
        json_object_array_add(choices, choice);
        json_object_object_add(o, "choices", choices);
        json_object_object_add(usage, "prompt_tokens",
                               json_object_new_int64(c->in_words));
        json_object_object_add(usage, "completion_tokens",
                               json_object_new_int64(out_words));
        json_object_object_add(usage, "total_tokens",
                               json_object_new_int64(c->in_words + out_words));
        json_object_object_add(o, "usage", usage);
        reply_json(r, 200, o);
}

/* ---- request validation ---- */

/* The text of a message's content: a string, or an array of text blocks
 * (joined by newlines). Returns a malloc'd string, or NULL with errstr
 * set. A JSON null counts as empty when null_ok. */
static char *content_text(json_object *content, const char *where, int null_ok,
                          char *errstr, size_t errstr_size) {
        size_t i, n, len = 0;
        char *out;

        if (!content && null_ok)
                return xstrdup("");
        if (json_object_is_type(content, json_type_string))
                return xstrdup(json_object_get_string(content));
        if (!json_object_is_type(content, json_type_array)) {
                snprintf(errstr, errstr_size,
                         "%s.content: must be a string or an array of text "
                         "blocks",
                         where);
                return NULL;
        }

        n = json_object_array_length(content);
        out = xstrdup("");
        for (i = 0; i < n; i++) {
                json_object *b = json_object_array_get_idx(content, i);
                json_object *type, *text;
                const char *s;
                char *grown;

                if (!json_object_object_get_ex(b, "type", &type) ||
                    !json_object_is_type(type, json_type_string) ||
                    strcmp(json_object_get_string(type), "text") ||
                    !json_object_object_get_ex(b, "text", &text) ||
                    !json_object_is_type(text, json_type_string)) {
                        snprintf(errstr, errstr_size,
                                 "%s.content.%zu: only text blocks "
                                 "({\"type\": \"text\", \"text\": ...}) are "
                                 "supported",
                                 where, i);
                        free(out);
                        return NULL;
                }
                s = json_object_get_string(text);
                grown = realloc(out, len + strlen(s) + 2);
                if (!grown)
                        abort();
                out = grown;
                if (len)
                        out[len++] = '\n';
                memcpy(out + len, s, strlen(s) + 1);
                len += strlen(s);
        }
        return out;
}

/* Checks the messages array: every entry {role, content} with an allowed
 * role. Sets c->input to the last user message's text and counts the
 * words of all of them. Returns 0, or -1 with errstr set. */
static int check_messages(json_object *body, call_t *c,
                          const char *const *roles, char *errstr,
                          size_t errstr_size) {
        json_object *msgs;
        size_t i, n;

        if (!json_object_object_get_ex(body, "messages", &msgs) ||
            !json_object_is_type(msgs, json_type_array)) {
                snprintf(errstr, errstr_size,
                         "messages: field required (an array)");
                return -1;
        }
        n = json_object_array_length(msgs);
        if (n == 0) {
                snprintf(errstr, errstr_size,
                         "messages: at least one message is required");
                return -1;
        }

        for (i = 0; i < n; i++) {
                json_object *m = json_object_array_get_idx(msgs, i);
                json_object *role, *content = NULL;
                const char *const *r;
                char where[32];
                char *text;

                snprintf(where, sizeof(where), "messages.%zu", i);
                if (!json_object_is_type(m, json_type_object)) {
                        snprintf(errstr, errstr_size, "%s: must be an object",
                                 where);
                        return -1;
                }
                if (!json_object_object_get_ex(m, "role", &role) ||
                    !json_object_is_type(role, json_type_string)) {
                        snprintf(errstr, errstr_size,
                                 "%s.role: field required (a string)", where);
                        return -1;
                }
                for (r = roles; *r; r++)
                        if (!strcmp(*r, json_object_get_string(role)))
                                break;
                if (!*r) {
                        snprintf(errstr, errstr_size,
                                 "%s.role: unexpected role \"%s\"", where,
                                 json_object_get_string(role));
                        return -1;
                }
                if (!json_object_object_get_ex(m, "content", &content)) {
                        snprintf(errstr, errstr_size,
                                 "%s.content: field required", where);
                        return -1;
                }
                text = content_text(content, where, c->api == API_OPENAI,
                                    errstr, errstr_size);
                if (!text)
                        return -1;
                c->in_words += count_words(text);
                if (!strcmp(json_object_get_string(role), "user")) {
                        free(c->input);
                        c->input = text;
                } else {
                        free(text);
                }
        }
        if (!c->input)
                c->input = xstrdup("");
        return 0;
}

/* A positive integer member, when present (or when required). Returns 0,
 * or -1 with errstr set. */
static int check_pos_int(json_object *body, const char *name, int required,
                         char *errstr, size_t errstr_size) {
        json_object *v;

        if (!json_object_object_get_ex(body, name, &v)) {
                if (!required)
                        return 0;
                snprintf(errstr, errstr_size,
                         "%s: field required (a positive integer)", name);
                return -1;
        }
        if (!json_object_is_type(v, json_type_int) ||
            json_object_get_int64(v) <= 0) {
                snprintf(errstr, errstr_size, "%s: must be a positive integer",
                         name);
                return -1;
        }
        return 0;
}

static int check_model(json_object *body, call_t *c, char *errstr,
                       size_t errstr_size) {
        json_object *v;

        if (!json_object_object_get_ex(body, "model", &v) ||
            !json_object_is_type(v, json_type_string) ||
            !*json_object_get_string(v)) {
                snprintf(errstr, errstr_size,
                         "model: field required (a non-empty string)");
                return -1;
        }
        c->model = json_object_get_string(v);
        return 0;
}

static json_object *parse_body(const req_t *q, char *errstr,
                               size_t errstr_size) {
        json_tokener *tok = json_tokener_new();
        json_object *obj;

        if (!tok)
                abort();
        obj = json_tokener_parse_ex(tok, q->body ? q->body : "", (int)q->len);
        if (!obj || json_tokener_get_parse_end(tok) != q->len ||
            !json_object_is_type(obj, json_type_object)) {
                snprintf(errstr, errstr_size,
                         "the request body is not a JSON object");
                json_object_put(obj);
                obj = NULL;
        }
        json_tokener_free(tok);
        return obj;
}

static int is_json_ctype(struct MHD_Connection *conn) {
        const char *ct =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");

        return ct && !strncasecmp(ct, "application/json", 16) &&
               (ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ');
}

/* Validates an Anthropic Messages request. Returns the parsed body (the
 * call points into it), or NULL with the error reply set. */
static json_object *check_anthropic(struct MHD_Connection *conn, const req_t *q,
                                    call_t *c, reply_t *r) {
        static const char *const roles[] = {"user", "assistant", NULL};
        const char *key =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-api-key");
        json_object *body, *sys;
        char err[256];

        if (!key || !*key) {
                reply_error(r, API_ANTHROPIC, 401,
                            "x-api-key header is required");
                return NULL;
        }
        if (!MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                         "anthropic-version")) {
                reply_error(r, API_ANTHROPIC, 400,
                            "anthropic-version: header is required");
                return NULL;
        }
        if (!is_json_ctype(conn)) {
                reply_error(r, API_ANTHROPIC, 400,
                            "content-type: must be application/json");
                return NULL;
        }
        body = parse_body(q, err, sizeof(err));
        if (!body) {
                reply_error(r, API_ANTHROPIC, 400, err);
                return NULL;
        }

        if (check_model(body, c, err, sizeof(err)) ||
            check_pos_int(body, "max_tokens", 1, err, sizeof(err)))
                goto bad;
        if (json_object_object_get_ex(body, "system", &sys)) {
                char *text = content_text(sys, "system", 0, err, sizeof(err));

                if (!text)
                        goto bad;
                c->in_words += count_words(text);
                free(text);
        }
        if (check_messages(body, c, roles, err, sizeof(err)))
                goto bad;
        return body;

bad:
        reply_error(r, API_ANTHROPIC, 400, err);
        json_object_put(body);
        return NULL;
}

/* Validates an OpenAI chat completions request, as check_anthropic. */
static json_object *check_openai(struct MHD_Connection *conn, const req_t *q,
                                 call_t *c, reply_t *r) {
        static const char *const roles[] = {"system",    "developer", "user",
                                            "assistant", "tool",      NULL};
        const char *auth =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
        json_object *body;
        char err[256];

        if (auth && (strncmp(auth, "Bearer ", 7) || !auth[7])) {
                reply_error(r, API_OPENAI, 401,
                            "Incorrect API key provided: the Authorization "
                            "header must be \"Bearer <key>\"");
                return NULL;
        }
        body = parse_body(q, err, sizeof(err));
        if (!body) {
                reply_error(r, API_OPENAI, 400, err);
                return NULL;
        }
        if (check_model(body, c, err, sizeof(err)) ||
            check_pos_int(body, "max_tokens", 0, err, sizeof(err)) ||
            check_pos_int(body, "max_completion_tokens", 0, err, sizeof(err)) ||
            check_messages(body, c, roles, err, sizeof(err))) {
                reply_error(r, API_OPENAI, 400, err);
                json_object_put(body);
                return NULL;
        }
        return body;
}

/* Reads an echo request: a task's JSON {"id", "input"}, or any body. */
static json_object *check_echo(const req_t *q, call_t *c) {
        json_object *body, *v;
        char err[64];

        body = parse_body(q, err, sizeof(err));
        if (body && json_object_object_get_ex(body, "input", &v) &&
            json_object_is_type(v, json_type_string)) {
                c->input = xstrdup(json_object_get_string(v));
                if (json_object_object_get_ex(body, "id", &v) &&
                    json_object_is_type(v, json_type_string))
                        c->id = json_object_get_string(v);
        } else {
                c->input = malloc(q->len + 1);
                if (!c->input)
                        abort();
                if (q->len)
                        memcpy(c->input, q->body, q->len);
                c->input[q->len] = '\0';
        }
        if (!c->id)
                c->id = "-";
        return body ? body : json_object_new_object();
}

/* ---- the call ---- */

/* Applies latency and faults, then answers a validated call. */
static void answer_call(struct MHD_Connection *conn, call_t *c, reply_t *r) {
        directives_t d;
        char msg[128];
        char *answer;

        parse_directives(c->input, &d);

        if (stub_wait(conn, conf.latency_ms + d.sleep_ms)) {
                r->drop = 1;
                return;
        }
        if (d.hang) {
                /* Whether cut short or not, a hang never answers. */
                stub_wait(conn, STUB_HANG_MS);
                r->drop = 1;
                return;
        }

        if (conf.error_rate > 0 && draw_unit() < conf.error_rate) {
                if (draw() & 1) {
                        reply_error(r, c->api, 429,
                                    "stub: rate limited (--error-rate)");
                        r->retry_after = 0;
                } else {
                        reply_error(r, c->api, 500,
                                    "stub: internal error (--error-rate)");
                }
        } else if (d.status) {
                snprintf(msg, sizeof(msg), "stub: injected status %d",
                         d.status);
                reply_error(r, c->api, (unsigned)d.status, msg);
        } else if (d.fail && fail_take(c->input, d.fail)) {
                reply_error(r, c->api, 500, "stub: injected failure");
        } else {
                if (c->api == API_ECHO) {
                        if (asprintf(&answer, "echo: %s: %s", c->id, c->input) <
                            0)
                                abort();
                        reply_text(r, 200, answer);
                } else {
                        answer = make_answer(c->input);
                        if (c->api == API_ANTHROPIC)
                                reply_anthropic_ok(r, c, answer);
                        else
                                reply_openai_ok(r, c, answer);
                }
                free(answer);
                if (d.malformed)
                        r->len /= 2;
        }
        if (r->status >= 400 && d.retry_after >= 0)
                r->retry_after = d.retry_after;
}

static void handle_api(struct MHD_Connection *conn, const req_t *q,
                       reply_t *r) {
        call_t c;
        json_object *body;

        memset(&c, 0, sizeof(c));
        if (q->ep == EP_MESSAGES) {
                c.api = API_ANTHROPIC;
                body = check_anthropic(conn, q, &c, r);
        } else if (q->ep == EP_CHAT) {
                c.api = API_OPENAI;
                body = check_openai(conn, q, &c, r);
        } else {
                c.api = API_ECHO;
                body = check_echo(q, &c);
        }
        if (body)
                answer_call(conn, &c, r);
        free(c.input);
        json_object_put(body);
}

static void status_key(char *out, size_t size, int status) {
        if (status == 0)
                snprintf(out, size, "dropped");
        else
                snprintf(out, size, "%d", status);
}

/* GET /stats: {"requests": N, "by_endpoint": {PATH: N},
 * "by_status": {"200": N, ..., "dropped": N},
 * "by_endpoint_status": {PATH: {"200": N, ...}}}. */
static void handle_stats(reply_t *r) {
        json_object *o = json_object_new_object();
        json_object *by_ep = json_object_new_object();
        json_object *by_status = json_object_new_object();
        json_object *detail = json_object_new_object();
        long total = 0, per_status[STATUS_MAX] = {0};
        char code[16];
        int e, s;

        for (e = 0; e < EP_COUNT; e++) {
                json_object *ep_detail = json_object_new_object();
                long ep_total = 0;

                for (s = 0; s < STATUS_MAX; s++) {
                        long n = atomic_load(&stats_count[e][s]);

                        if (!n)
                                continue;
                        ep_total += n;
                        per_status[s] += n;
                        status_key(code, sizeof(code), s);
                        json_object_object_add(ep_detail, code,
                                               json_object_new_int64(n));
                }
                total += ep_total;
                json_object_object_add(by_ep, ep_names[e],
                                       json_object_new_int64(ep_total));
                json_object_object_add(detail, ep_names[e], ep_detail);
        }
        for (s = 0; s < STATUS_MAX; s++) {
                if (!per_status[s])
                        continue;
                status_key(code, sizeof(code), s);
                json_object_object_add(by_status, code,
                                       json_object_new_int64(per_status[s]));
        }
        json_object_object_add(o, "requests", json_object_new_int64(total));
        json_object_object_add(o, "by_endpoint", by_ep);
        json_object_object_add(o, "by_status", by_status);
        json_object_object_add(o, "by_endpoint_status", detail);
        reply_json(r, 200, o);
}

/* Routes a request by method and path. */
static int route(const char *method, const char *url, int *epp) {
        static const struct {
                const char *path;
                const char *method;
                int ep;
        } routes[] = {
            {"/v1/messages", "POST", EP_MESSAGES},
            {"/v1/chat/completions", "POST", EP_CHAT},
            {"/echo", "POST", EP_ECHO},
            {"/health", "GET", EP_HEALTH},
            {"/stats", "GET", EP_STATS},
        };
        size_t i;

        for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
                if (strcmp(url, routes[i].path))
                        continue;
                *epp = routes[i].ep;
                return strcmp(method, routes[i].method) ? 405 : 0;
        }
        *epp = EP_OTHER;
        return 404;
}

static enum MHD_Result send_reply(struct MHD_Connection *conn, req_t *q,
                                  const char *method, const char *url,
                                  reply_t *r) {
        struct MHD_Response *resp;
        enum MHD_Result ret;
        char ra[32];

        if (r->drop) {
                atomic_fetch_add(&stats_count[q->ep][0], 1);
                kp_debug("%s %s: dropped after %.1f ms", method, url,
                         ms_since(&q->start));
                free(r->body);
                return MHD_NO;
        }

        resp = MHD_create_response_from_buffer(r->len, r->body,
                                               MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(r->body);
                return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
        if (r->retry_after >= 0) {
                snprintf(ra, sizeof(ra), "%ld", r->retry_after);
                MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
        }
        ret = MHD_queue_response(conn, r->status, resp);
        MHD_destroy_response(resp);

        if (r->status < STATUS_MAX)
                atomic_fetch_add(&stats_count[q->ep][r->status], 1);
        kp_debug("%s %s: %u, %zu bytes, %.1f ms", method, url, r->status,
                 r->len, ms_since(&q->start));
        return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
        req_t *q = *con_cls;
        reply_t r = {0, NULL, 0, NULL, -1, 0};
        int status;

        /* First call: headers only. */
        if (!q) {
                q = calloc(1, sizeof(*q));
                if (!q)
                        return MHD_NO;
                clock_gettime(CLOCK_MONOTONIC, &q->start);
                *con_cls = q;
                return MHD_YES;
        }

        /* Body chunks. */
        if (*upload_size) {
                if (!q->too_large && q->len + *upload_size > STUB_MAX_BODY)
                        q->too_large = 1;
                if (!q->too_large) {
                        if (q->len + *upload_size + 1 > q->cap) {
                                size_t cap = (q->len + *upload_size) * 2 + 1;
                                char *b = realloc(q->body, cap);

                                if (!b)
                                        return MHD_NO;
                                q->body = b;
                                q->cap = cap;
                        }
                        memcpy(q->body + q->len, upload, *upload_size);
                        q->len += *upload_size;
                        q->body[q->len] = '\0';
                }
                *upload_size = 0;
                return MHD_YES;
        }

        /* The whole request is in: answer it. */
        status = route(method, url, &q->ep);
        if (status == 404) {
                reply_text(&r, 404, "not found");
        } else if (status == 405) {
                reply_text(&r, 405, "method not allowed");
        } else if (q->too_large) {
                reply_error(&r,
                            q->ep == EP_MESSAGES ? API_ANTHROPIC
                            : q->ep == EP_CHAT   ? API_OPENAI
                                                 : API_ECHO,
                            413, "request body too large");
        } else if (q->ep == EP_HEALTH) {
                reply_text(&r, 200, "ok");
        } else if (q->ep == EP_STATS) {
                handle_stats(&r);
        } else {
                handle_api(conn, q, &r);
        }
        return send_reply(conn, q, method, url, &r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
        req_t *q = *con_cls;

        if (q) {
                free(q->body);
                free(q);
                *con_cls = NULL;
        }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
        char line[512];

        vsnprintf(line, sizeof(line), fmt, ap);
        line[strcspn(line, "\n")] = '\0';
        /* A dropped call ([stub:hang], a client gone) reads as an
         * application error to libmicrohttpd: expected here. */
        if (strstr(line, "Application reported internal error"))
                kp_debug("libmicrohttpd: %s", line);
        else
                kp_warn("libmicrohttpd: %s", line);
}

/* ---- command line ---- */

static void usage(FILE *out) {
        fprintf(out,
                "Usage: kpool-stub-llm [OPTIONS]\n"
                "\n"
                "A stand-in LLM server for kpool's tests, benchmarks and "
                "demo.\n"
                "\n"
                "Options:\n"
                "  -p, --port PORT       TCP port (0: pick a free one; "
                "default 0)\n"
                "  -B, --bind ADDR       address to listen on, IPv4 or "
                "IPv6\n"
                "                        (default 127.0.0.1)\n"
                "  -l, --latency-ms MS   add MS of latency to every API "
                "request (default 0)\n"
                "  -e, --error-rate R    fail a fraction R (0..1) of API "
                "requests at random,\n"
                "                        half with 429 and Retry-After: 0, "
                "half with 500\n"
                "  -s, --seed N          seed of the random draws and ids "
                "(default 1)\n"
                "      --log-level LVL   error, warn, info or debug (debug "
                "logs each request)\n"
                "  -h, --help            print this help and exit 0\n"
                "\n"
                "On start it prints \"listening on ADDR:PORT\" to stdout, "
                "then serves until\n"
                "SIGTERM or SIGINT (exit 0).\n"
                "\n"
                "Endpoints:\n"
                "  POST /v1/messages          Anthropic Messages API "
                "(x-api-key and\n"
                "                             anthropic-version headers "
                "required)\n"
                "  POST /v1/chat/completions  OpenAI chat completions "
                "(Authorization optional)\n"
                "  POST /echo                 plain HTTP: replies \"echo: "
                "<id>: <input>\"\n"
                "  GET  /health               \"ok\"\n"
                "  GET  /stats                request counts by endpoint "
                "and status (JSON;\n"
                "                             \"dropped\": never "
                "answered)\n"
                "\n"
                "Answers: a few well-known questions (the capital of "
                "France, who wrote\n"
                "Hamlet, ...) get their answer; anything else gets "
                "\"stub answer: <input>\".\n"
                "\n"
                "Faults, by directives anywhere in the user's input:\n"
                "  [stub:sleep=MS]        answer after MS milliseconds\n"
                "  [stub:status=CODE]     answer with status CODE (400-599) "
                "and the API's\n"
                "                         error body\n"
                "  [stub:retry-after=S]   add Retry-After: S to an error "
                "answer\n"
                "  [stub:fail=N]          the first N requests with this "
                "exact input fail\n"
                "                         with 500, later ones succeed\n"
                "  [stub:malformed]       200 with a truncated body\n"
                "  [stub:hang]            never answer (until the client "
                "gives up, an hour\n"
                "                         passes or the server stops)\n"
                "\n"
                "Exit codes: 0 ok, 1 failed to start, 2 bad usage.\n");
}

static int parse_long(const char *s, long lo, long hi, long *vp) {
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < lo || v > hi)
                return -1;
        *vp = v;
        return 0;
}

/* Parses the flags into conf. Returns 0, 1 for --help, or -1 with a
 * message logged. */
static int parse_args(int argc, char **argv) {
        static const struct option longopts[] = {
            {"port", required_argument, NULL, 'p'},
            {"bind", required_argument, NULL, 'B'},
            {"latency-ms", required_argument, NULL, 'l'},
            {"error-rate", required_argument, NULL, 'e'},
            {"seed", required_argument, NULL, 's'},
            {"log-level", required_argument, NULL, 'L'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        int opt;
        long v;
        char *end;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":p:B:l:e:s:h", longopts,
                                  NULL)) != -1) {
                switch (opt) {
                case 'p':
                        if (parse_long(optarg, 0, 65535, &v))
                                goto bad;
                        conf.port = (int)v;
                        break;
                case 'B':
                        conf.bind = optarg;
                        break;
                case 'l':
                        if (parse_long(optarg, 0, 86400000, &v))
                                goto bad;
                        conf.latency_ms = v;
                        break;
                case 'e':
                        errno = 0;
                        conf.error_rate = strtod(optarg, &end);
                        if (errno || end == optarg || *end ||
                            !(conf.error_rate >= 0 && conf.error_rate <= 1))
                                goto bad;
                        break;
                case 's':
                        if (parse_long(optarg, 0, LONG_MAX, &v))
                                goto bad;
                        conf.seed = (uint64_t)v;
                        break;
                case 'L':
                        if (kp_log_set_level_name(optarg))
                                goto bad;
                        break;
                case 'h':
                        return 1;
                case ':':
                        kp_err("option %s needs a value (see --help)",
                               argv[optind - 1]);
                        return -1;
                default:
                        kp_err("unknown option %s (see --help)",
                               argv[optind - 1]);
                        return -1;
                }
        }
        if (optind < argc) {
                kp_err("unexpected argument \"%s\" (see --help)", argv[optind]);
                return -1;
        }
        return 0;

bad:
        kp_err("bad value \"%s\" for %s (see --help)", optarg,
               argv[optind - 1]);
        return -1;
}

/* ---- main ---- */

static struct MHD_Daemon *start_daemon(char *addr, size_t addr_size) {
        struct sockaddr_storage ss;
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        unsigned flags = MHD_USE_POLL_INTERNAL_THREAD |
                         MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
        const union MHD_DaemonInfo *di;
        struct MHD_Daemon *d;

        memset(&ss, 0, sizeof(ss));
        if (inet_pton(AF_INET, conf.bind, &sin->sin_addr) == 1) {
                sin->sin_family = AF_INET;
                sin->sin_port = htons((uint16_t)conf.port);
        } else if (inet_pton(AF_INET6, conf.bind, &sin6->sin6_addr) == 1) {
                sin6->sin6_family = AF_INET6;
                sin6->sin6_port = htons((uint16_t)conf.port);
                flags |= MHD_USE_IPv6;
        } else {
                kp_err("bad --bind address \"%s\": not an IPv4 or IPv6 "
                       "address",
                       conf.bind);
                return NULL;
        }

        d = MHD_start_daemon(
            flags, (uint16_t)conf.port, NULL, NULL, on_request, NULL,
            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
            (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
            NULL, MHD_OPTION_CONNECTION_LIMIT, (unsigned)10000,
            MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024),
            MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_END);
        if (!d) {
                kp_err("failed to listen on %s port %d: %s", conf.bind,
                       conf.port, strerror(errno));
                return NULL;
        }

        di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        snprintf(addr, addr_size,
                 sin->sin_family == AF_INET ? "%s:%u" : "[%s]:%u", conf.bind,
                 di ? (unsigned)di->port : (unsigned)conf.port);
        return d;
}

int main(int argc, char **argv) {
        struct MHD_Daemon *d;
        sigset_t sigs;
        char addr[128];
        int sig, r;

        kp_log_init("kpool-stub-llm", NULL);
        r = parse_args(argc, argv);
        if (r == 1) {
                usage(stdout);
                return KP_EXIT_OK;
        }
        if (r < 0)
                return KP_EXIT_USAGE;

        /* Signals are taken by sigwait() below; every thread inherits
         * the mask. */
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGINT);
        pthread_sigmask(SIG_BLOCK, &sigs, NULL);
        signal(SIGPIPE, SIG_IGN);

        if (pipe(shutdown_pipe)) {
                kp_err("failed to create a pipe: %s", strerror(errno));
                return KP_EXIT_FAIL;
        }
        d = start_daemon(addr, sizeof(addr));
        if (!d)
                return KP_EXIT_FAIL;
        printf("listening on %s\n", addr);
        fflush(stdout);
        kp_info("listening on %s (latency %ld ms, error rate %g, seed %llu)",
                addr, conf.latency_ms, conf.error_rate,
                (unsigned long long)conf.seed);

        while (sigwait(&sigs, &sig) != 0)
                ;
        kp_info("%s: shutting down", strsignal(sig));

        /* Wake every handler that sleeps, then stop. */
        if (write(shutdown_pipe[1], "x", 1) != 1)
                kp_warn("failed to wake sleeping handlers: %s",
                        strerror(errno));
        MHD_stop_daemon(d);
        close(shutdown_pipe[0]);
        close(shutdown_pipe[1]);
        fail_table_free();
        return KP_EXIT_OK;
}
