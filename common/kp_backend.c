/* kp_backend.c - request bodies, headers and reply parsing for the
 * Anthropic Messages API, OpenAI-compatible chat completions and plain
 * HTTP; retry decisions and backoff. No I/O: kp_client does that. */
#include "kp_backend.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kp_log.h"

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* The anthropic-version sent when the configuration names none. */
#define DEFAULT_ANTHROPIC_VERSION "2023-06-01"

/* How much of a non-JSON error body goes into a message. */
#define ERROR_BODY_BYTES 200

static const struct {
        const char *name;
        kp_backend_kind_t kind;
} backend_kinds[] = {
    {"anthropic", KP_BACKEND_ANTHROPIC},
    {"openai", KP_BACKEND_OPENAI},
    {"http", KP_BACKEND_HTTP},
};

int kp_backend_kind_parse(const char *name, kp_backend_kind_t *kindp) {
        size_t i;

        for (i = 0; i < sizeof(backend_kinds) / sizeof(backend_kinds[0]); i++) {
                if (name && !strcmp(name, backend_kinds[i].name)) {
                        *kindp = backend_kinds[i].kind;
                        return 0;
                }
        }
        return -1;
}

const char *kp_backend_kind_name(kp_backend_kind_t kind) {
        size_t i;

        for (i = 0; i < sizeof(backend_kinds) / sizeof(backend_kinds[0]); i++) {
                if (backend_kinds[i].kind == kind)
                        return backend_kinds[i].name;
        }
        return "unknown";
}

static int fail(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *errstr, size_t errstr_size, const char *fmt, ...) {
        va_list ap;

        if (errstr_size) {
                va_start(ap, fmt);
                vsnprintf(errstr, errstr_size, fmt, ap);
                va_end(ap);
        }
        return -1;
}

static char *xstrndup(const char *s, size_t n) {
        char *p = malloc(n + 1);

        if (!p) {
                kp_err("Out of memory allocating %zu bytes", n + 1);
                abort();
        }
        memcpy(p, s, n);
        p[n] = '\0';
        return p;
}

/* 1 if s may go into a header line: no control characters, which could
 * end the line and start another. */
static int header_safe(const char *s) {
        for (; *s; s++) {
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return 0;
        }
        return 1;
}

/* Appends "name: value" to *listp. The line is built in a buffer that is
 * wiped afterwards, as it may hold a secret. Returns 0, or -1. */
static int add_header(struct curl_slist **listp, const char *name,
                      const char *value) {
        struct curl_slist *l;
        size_t n = strlen(name) + strlen(value) + 3;
        char *line = malloc(n);

        if (!line)
                return -1;
        snprintf(line, n, "%s: %s", name, value);
        l = curl_slist_append(*listp, line);
        explicit_bzero(line, n);
        free(line);
        if (!l)
                return -1;
        *listp = l;
        return 0;
}

/* The headers every kind sends; the key only when one is set. */
static int request_headers(const kp_backend_conf_t *conf,
                           struct curl_slist **listp, char *errstr,
                           size_t errstr_size) {
        const char *key =
            conf->api_key && *conf->api_key ? conf->api_key : NULL;
        const char *version =
            conf->anthropic_version && *conf->anthropic_version
                ? conf->anthropic_version
                : DEFAULT_ANTHROPIC_VERSION;
        struct curl_slist *l = NULL;
        int r = 0;

        if (key && !header_safe(key))
                return fail(errstr, errstr_size,
                            "the API key contains a control character");
        if (!header_safe(version))
                return fail(errstr, errstr_size,
                            "anthropic-version contains a control character");

        r |= add_header(&l, "content-type", "application/json");
        switch (conf->kind) {
        case KP_BACKEND_ANTHROPIC:
                if (key)
                        r |= add_header(&l, "x-api-key", key);
                r |= add_header(&l, "anthropic-version", version);
                break;
        case KP_BACKEND_OPENAI:
        case KP_BACKEND_HTTP:
                if (key) {
                        /* Built whole so the secret is wiped after use. */
                        size_t n = strlen(key) + 8;
                        char *bearer = malloc(n);

                        if (!bearer) {
                                r = -1;
                                break;
                        }
                        snprintf(bearer, n, "Bearer %s", key);
                        r |= add_header(&l, "Authorization", bearer);
                        explicit_bzero(bearer, n);
                        free(bearer);
                }
                break;
        }
        /* An empty Expect: stops curl waiting for "100 Continue". */
        if (!r) {
                struct curl_slist *e = curl_slist_append(l, "Expect:");

                if (e)
                        l = e;
                else
                        r = -1;
        }

        if (r) {
                curl_slist_free_all(l);
                return fail(errstr, errstr_size,
                            "out of memory building request headers");
        }
        *listp = l;
        return 0;
}

static json_object *message(const char *role, const char *content) {
        json_object *m = json_object_new_object();

        json_object_object_add(m, "role", json_object_new_string(role));
        json_object_object_add(m, "content", json_object_new_string(content));
        return m;
}

/* The chat body of the anthropic and openai kinds. Returns NULL with
 * errstr set when the configuration lacks what the API needs. */
static json_object *chat_body(const kp_backend_conf_t *conf,
                              const kp_task_t *task, char *errstr,
                              size_t errstr_size) {
        const char *role = task->role && *task->role ? task->role : conf->role;
        int max_tokens =
            task->max_tokens > 0 ? task->max_tokens : conf->max_tokens;
        json_object *body, *msgs;

        if (role && !*role)
                role = NULL;
        if (conf->kind == KP_BACKEND_ANTHROPIC) {
                if (!conf->model || !*conf->model) {
                        fail(errstr, errstr_size,
                             "the anthropic backend needs a model");
                        return NULL;
                }
                if (max_tokens <= 0) {
                        fail(errstr, errstr_size,
                             "the anthropic backend needs max_tokens");
                        return NULL;
                }
        }

        body = json_object_new_object();
        if (conf->model && *conf->model)
                json_object_object_add(body, "model",
                                       json_object_new_string(conf->model));
        if (max_tokens > 0)
                json_object_object_add(body, "max_tokens",
                                       json_object_new_int(max_tokens));

        msgs = json_object_new_array();
        if (conf->kind == KP_BACKEND_ANTHROPIC) {
                if (role)
                        json_object_object_add(body, "system",
                                               json_object_new_string(role));
        } else if (role) {
                json_object_array_add(msgs, message("system", role));
        }
        json_object_array_add(msgs, message("user", task->input));
        json_object_object_add(body, "messages", msgs);
        return body;
}

int kp_backend_request(const kp_backend_conf_t *conf, const kp_task_t *task,
                       const void *raw, size_t raw_len, char **bodyp,
                       struct curl_slist **headersp, char *errstr,
                       size_t errstr_size) {
        json_object *body;
        const char *json;
        size_t len;
        char *out;

        *bodyp = NULL;
        *headersp = NULL;
        if (!task->input)
                return fail(errstr, errstr_size, "the task has no input");

        if (conf->kind == KP_BACKEND_HTTP && !task->plain && raw &&
            raw_len > 0) {
                /* The record's own JSON, byte for byte. */
                out = xstrndup(raw, raw_len);
        } else {
                if (conf->kind == KP_BACKEND_HTTP) {
                        body = json_object_new_object();
                        json_object_object_add(
                            body, "id",
                            json_object_new_string(task->id ? task->id : ""));
                        json_object_object_add(
                            body, "input", json_object_new_string(task->input));
                } else {
                        body = chat_body(conf, task, errstr, errstr_size);
                        if (!body)
                                return -1;
                }
                json =
                    json_object_to_json_string_length(body, JSON_FLAGS, &len);
                if (!json) {
                        json_object_put(body);
                        return fail(errstr, errstr_size,
                                    "out of memory encoding the request");
                }
                out = xstrndup(json, len);
                json_object_put(body);
        }

        if (request_headers(conf, headersp, errstr, errstr_size) < 0) {
                free(out);
                return -1;
        }
        *bodyp = out;
        return 0;
}

/* Parses a whole body as one JSON object. Returns it (caller puts), or
 * NULL with json-c's reason in errstr. */
static json_object *parse_object(const char *body, size_t len, char *errstr,
                                 size_t errstr_size) {
        char reason[256];
        json_object *obj;

        obj = kp_json_parse(body, len, reason, sizeof(reason));
        if (!obj) {
                fail(errstr, errstr_size, "response is not valid JSON: %s",
                     reason);
                return NULL;
        }
        if (!json_object_is_type(obj, json_type_object)) {
                json_object_put(obj);
                fail(errstr, errstr_size, "response is not a JSON object");
                return NULL;
        }
        return obj;
}

/* obj[name] if it has the given type, else NULL. */
static json_object *member(json_object *obj, const char *name, json_type type) {
        json_object *v;

        if (!obj || !json_object_object_get_ex(obj, name, &v) ||
            !json_object_is_type(v, type))
                return NULL;
        return v;
}

/* The message of an API error object: error.message, or error when it
 * is a plain string. NULL if none. */
static const char *api_error_message(json_object *obj) {
        json_object *err, *msg;

        err = member(obj, "error", json_type_object);
        if ((msg = member(err, "message", json_type_string)))
                return json_object_get_string(msg);
        if ((err = member(obj, "error", json_type_string)))
                return json_object_get_string(err);
        return NULL;
}

/* Reads usage counts when both are integers. */
static void read_usage(json_object *obj, const char *in_name,
                       const char *out_name, kp_backend_reply_t *reply) {
        json_object *usage = member(obj, "usage", json_type_object);
        json_object *in = member(usage, in_name, json_type_int);
        json_object *out = member(usage, out_name, json_type_int);

        if (in && out) {
                reply->has_usage = 1;
                reply->input_tokens = json_object_get_int64(in);
                reply->output_tokens = json_object_get_int64(out);
        }
}

/* A copy of a JSON string without NUL characters (a C string ends at the
 * first one). */
static char *string_copy(json_object *s) {
        const char *src = json_object_get_string(s);
        size_t len = (size_t)json_object_get_string_len(s), i, o = 0;
        char *out = xstrndup(src, len);

        for (i = 0; i < len; i++) {
                if (src[i])
                        out[o++] = src[i];
        }
        out[o] = '\0';
        return out;
}

static int parse_anthropic(json_object *obj, kp_backend_reply_t *reply,
                           char *errstr, size_t errstr_size) {
        json_object *type = member(obj, "type", json_type_string);
        json_object *content, *block, *text;
        const char *msg;
        size_t i, n, len = 0, cap = 0;
        char *out = NULL;

        if (type && !strcmp(json_object_get_string(type), "error")) {
                msg = api_error_message(obj);
                return fail(errstr, errstr_size, "API error: %s",
                            msg ? msg : "(no message)");
        }

        /* The answer is the text blocks, joined in order. */
        content = member(obj, "content", json_type_array);
        n = content ? json_object_array_length(content) : 0;
        for (i = 0; i < n; i++) {
                char *part;
                size_t plen;

                block = json_object_array_get_idx(content, i);
                type = member(block, "type", json_type_string);
                text = member(block, "text", json_type_string);
                if (!type || strcmp(json_object_get_string(type), "text") ||
                    !text)
                        continue;

                part = string_copy(text);
                plen = strlen(part);
                if (len + plen + 1 > cap) {
                        char *grown;

                        cap = (len + plen + 1) * 2;
                        grown = realloc(out, cap);
                        if (!grown) {
                                kp_err("Out of memory reading a reply");
                                abort();
                        }
                        out = grown;
                }
                memcpy(out + len, part, plen + 1);
                len += plen;
                free(part);
        }
        if (!out)
                return fail(errstr, errstr_size,
                            "response has no text content");

        reply->output = out;
        read_usage(obj, "input_tokens", "output_tokens", reply);
        return 0;
}

static int parse_openai(json_object *obj, kp_backend_reply_t *reply,
                        char *errstr, size_t errstr_size) {
        json_object *choices = member(obj, "choices", json_type_array);
        json_object *choice, *msg, *content;
        const char *why;

        if (!choices || json_object_array_length(choices) == 0) {
                why = api_error_message(obj);
                if (why)
                        return fail(errstr, errstr_size, "API error: %s", why);
                return fail(errstr, errstr_size, "response has no choices");
        }

        choice = json_object_array_get_idx(choices, 0);
        msg = member(choice, "message", json_type_object);
        if (!msg)
                return fail(errstr, errstr_size,
                            "response's first choice has no message");
        content = member(msg, "content", json_type_string);
        if (!content)
                return fail(errstr, errstr_size,
                            "response has no text content");

        reply->output = string_copy(content);
        read_usage(obj, "prompt_tokens", "completion_tokens", reply);
        return 0;
}

int kp_backend_parse(const kp_backend_conf_t *conf, const char *body,
                     size_t len, kp_backend_reply_t *reply, char *errstr,
                     size_t errstr_size) {
        json_object *obj;
        int r;

        memset(reply, 0, sizeof(*reply));
        if (!body)
                len = 0;
        if (!kp_utf8_valid(body, len))
                return fail(errstr, errstr_size, "response is not valid UTF-8");

        if (conf->kind == KP_BACKEND_HTTP) {
                if (len > 0 && memchr(body, '\0', len))
                        return fail(errstr, errstr_size,
                                    "response contains a NUL byte");
                reply->output = xstrndup(body ? body : "", len);
                return 0;
        }

        obj = parse_object(body, len, errstr, errstr_size);
        if (!obj)
                return -1;
        if (conf->kind == KP_BACKEND_ANTHROPIC)
                r = parse_anthropic(obj, reply, errstr, errstr_size);
        else
                r = parse_openai(obj, reply, errstr, errstr_size);
        json_object_put(obj);
        return r;
}

void kp_backend_reply_clear(kp_backend_reply_t *reply) {
        free(reply->output);
        memset(reply, 0, sizeof(*reply));
}

/* Length of the UTF-8 character at s (avail bytes left), or 0 when s
 * does not start one. kp_utf8_valid() on growing prefixes: the shortest
 * well-formed prefix of a non-ASCII lead byte is exactly one character. */
static size_t char_len(const char *s, size_t avail) {
        size_t n;

        for (n = 1; n <= 4 && n <= avail; n++) {
                if (kp_utf8_valid(s, n))
                        return n;
        }
        return 0;
}

/* Copies at most `limit` bytes of src into out as printable UTF-8:
 * control characters become spaces (runs collapsed), ill-formed bytes
 * '?'; characters are never split, even when out fills up. */
static void sanitize(const char *src, size_t len, size_t limit, char *out,
                     size_t out_size) {
        size_t i = 0, o = 0, n;
        int space = 1; /* drops leading spaces */
        unsigned char c;

        if (!out_size)
                return;
        if (limit > len)
                limit = len;

        while (i < limit) {
                c = (unsigned char)src[i];
                n = c < 0x80 ? 1 : char_len(src + i, len - i);
                if (n == 0) {
                        /* An ill-formed byte. */
                        if (o + 1 >= out_size)
                                break;
                        out[o++] = '?';
                        space = 0;
                        i++;
                        continue;
                }
                if (i + n > limit)
                        break; /* a character the limit would cut */

                if (c < 0x20 || c == 0x7f || c == ' ' ||
                    (n == 2 && c == 0xc2 && (unsigned char)src[i + 1] < 0xa0)) {
                        /* Spaces, tabs, line ends, ASCII and C1
                         * controls: one space for a run of them. */
                        if (!space && o + 1 < out_size) {
                                out[o++] = ' ';
                                space = 1;
                        }
                } else {
                        if (o + n >= out_size)
                                break;
                        memcpy(out + o, src + i, n);
                        o += n;
                        space = 0;
                }
                i += n;
        }
        while (o > 0 && out[o - 1] == ' ')
                o--;
        out[o] = '\0';
}

void kp_backend_error_text(const char *body, size_t len, char *errstr,
                           size_t errstr_size) {
        json_object *obj, *v;
        const char *msg = NULL;
        char ignored[8];

        if (!errstr_size)
                return;
        errstr[0] = '\0';
        if (!body)
                len = 0;

        /* A JSON error names its reason: error.message (Anthropic,
         * OpenAI), a string "error", or "message" / "detail". */
        if (len > 0 && kp_utf8_valid(body, len) &&
            (obj = parse_object(body, len, ignored, sizeof(ignored)))) {
                msg = api_error_message(obj);
                if (!msg && (v = member(obj, "message", json_type_string)))
                        msg = json_object_get_string(v);
                if (!msg && (v = member(obj, "detail", json_type_string)))
                        msg = json_object_get_string(v);
                if (msg)
                        sanitize(msg, strlen(msg), strlen(msg), errstr,
                                 errstr_size);
                json_object_put(obj);
        }

        if (!errstr[0])
                sanitize(body, len, ERROR_BODY_BYTES, errstr, errstr_size);
        if (!errstr[0])
                snprintf(errstr, errstr_size, "empty response body");
}

int kp_backend_retryable(long http_status, CURLcode cc) {
        if (cc != CURLE_OK) {
                /* Mistakes in the setup: the next attempt fails alike. */
                switch (cc) {
                case CURLE_UNSUPPORTED_PROTOCOL:
                case CURLE_FAILED_INIT:
                case CURLE_URL_MALFORMAT:
                case CURLE_NOT_BUILT_IN:
                case CURLE_OUT_OF_MEMORY:
                case CURLE_BAD_FUNCTION_ARGUMENT:
                case CURLE_UNKNOWN_OPTION:
                case CURLE_SSL_CERTPROBLEM:
                case CURLE_SSL_CACERT_BADFILE:
                case CURLE_PEER_FAILED_VERIFICATION:
                case CURLE_ABORTED_BY_CALLBACK:
                        return 0;
                default:
                        return 1;
                }
        }

        if (http_status == 0)
                return 1; /* no response at all */
        switch (http_status) {
        case 408: /* request timeout */
        case 409: /* conflict, e.g. a lock held elsewhere */
        case 425: /* too early */
        case 429: /* too many requests */
                return 1;
        default:
                return http_status >= 500 && http_status <= 599;
        }
}

/* Parses an HTTP-date in any of the three forms HTTP allows. Returns 0
 * with *tp set, or -1. */
static int parse_http_date(const char *s, time_t *tp) {
        static const char *const formats[] = {
            "%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate */
            "%A, %d-%b-%y %H:%M:%S GMT", /* RFC 850 */
            "%a %b %e %H:%M:%S %Y",      /* asctime */
        };
        struct tm tm;
        const char *end;
        size_t i;

        for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
                memset(&tm, 0, sizeof(tm));
                end = strptime(s, formats[i], &tm);
                if (!end)
                        continue;
                while (isspace((unsigned char)*end))
                        end++;
                if (*end)
                        continue;
                *tp = timegm(&tm);
                if (*tp == (time_t)-1)
                        return -1;
                return 0;
        }
        return -1;
}

long kp_backend_retry_after_ms(const char *value, time_t now) {
        const char *s = value;
        unsigned long long secs = 0;
        time_t when;

        if (!s)
                return -1;
        while (isspace((unsigned char)*s))
                s++;
        if (!*s)
                return -1;

        /* delay-seconds: digits only. */
        if (isdigit((unsigned char)*s)) {
                for (; isdigit((unsigned char)*s); s++) {
                        if (secs <= (unsigned long long)LONG_MAX / 1000)
                                secs = secs * 10 + (unsigned)(*s - '0');
                }
                while (isspace((unsigned char)*s))
                        s++;
                if (*s)
                        return -1;
                if (secs > (unsigned long long)LONG_MAX / 1000)
                        return LONG_MAX;
                return (long)secs * 1000;
        }

        if (parse_http_date(s, &when) < 0)
                return -1;
        if (when <= now)
                return 0;
        if ((unsigned long long)(when - now) >
            (unsigned long long)LONG_MAX / 1000)
                return LONG_MAX;
        return (long)(when - now) * 1000;
}

long kp_backend_backoff_ms(const kp_backend_conf_t *conf, int attempt,
                           long retry_after_ms, unsigned *seed) {
        long d = conf->backoff_ms > 0 ? conf->backoff_ms : 0;
        long cap = conf->backoff_max_ms;
        unsigned long long span, r;
        int i;

        /* Doubling per retry, stopped at the cap (or before overflow). */
        for (i = 2; i < attempt && d > 0; i++) {
                if (d > LONG_MAX / 2) {
                        d = LONG_MAX;
                        break;
                }
                d *= 2;
                if (cap > 0 && d >= cap)
                        break;
        }
        if (cap > 0 && d > cap)
                d = cap;

        /* Jitter within [d/2, d]. */
        if (d > 0 && seed) {
                span = (unsigned long long)(d - d / 2) + 1;
                r = (unsigned long long)rand_r(seed);
                if (span > (unsigned long long)RAND_MAX)
                        r = r * ((unsigned long long)RAND_MAX + 1) +
                            (unsigned long long)rand_r(seed);
                d = d / 2 + (long)(r % span);
        }

        if (retry_after_ms >= 0 && d < retry_after_ms)
                d = retry_after_ms;
        return d;
}
