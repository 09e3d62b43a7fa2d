/* kp_backend.h - what a backend call sends and how its reply is read,
 * for the Anthropic Messages API, OpenAI-compatible chat completions and
 * plain HTTP. No I/O here: kp_client does the transfers. */
#ifndef KP_BACKEND_H
#define KP_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <curl/curl.h>

#include "kp_task.h"

typedef enum {
        KP_BACKEND_ANTHROPIC,
        KP_BACKEND_OPENAI,
        KP_BACKEND_HTTP,
} kp_backend_kind_t;

typedef struct kp_backend_conf {
        kp_backend_kind_t kind;
        char *url;               /* endpoint */
        char *model;             /* anthropic, openai */
        char *role;              /* system prompt */
        int max_tokens;          /* default max_tokens */
        char *api_key;           /* secret: never logged; may be NULL */
        char *anthropic_version; /* anthropic-version header */
        long timeout_ms;         /* per-task deadline, all attempts */
        int attempts;            /* at most this many attempts */
        long backoff_ms;         /* first retry delay */
        long backoff_max_ms;     /* cap of the computed delay */
} kp_backend_conf_t;

/* Parses "anthropic", "openai" or "http". Returns 0, or -1. */
int kp_backend_kind_parse(const char *name, kp_backend_kind_t *kindp);

const char *kp_backend_kind_name(kp_backend_kind_t kind);

/* Builds a call's body and headers (content type, authentication,
 * version). For http the body is the task's JSON: the record's value if it
 * was JSON, else {"id","input"}. `raw`/`raw_len` is the record's value.
 * Returns 0 with *bodyp (malloc'd) and *headersp (curl_slist) owned by
 * the caller, or -1 with errstr set. */
int kp_backend_request(const kp_backend_conf_t *conf, const kp_task_t *task,
                       const void *raw, size_t raw_len, char **bodyp,
                       struct curl_slist **headersp, char *errstr,
                       size_t errstr_size);

typedef struct kp_backend_reply {
        char *output; /* malloc'd; the answer text */
        int has_usage;
        int64_t input_tokens, output_tokens;
} kp_backend_reply_t;

/* Reads a 2xx reply: its text content blocks joined in order
 * (anthropic), the first choice's message content (openai), the whole
 * body, which must be UTF-8 (http).
 * Returns 0, or -1 with errstr set (a malformed body). */
int kp_backend_parse(const kp_backend_conf_t *conf, const char *body,
                     size_t len, kp_backend_reply_t *reply, char *errstr,
                     size_t errstr_size);

void kp_backend_reply_clear(kp_backend_reply_t *reply);

/* Extracts a short reason from an error reply (the API's error message
 * when the body has one, else the start of the body), into errstr. */
void kp_backend_error_text(const char *body, size_t len, char *errstr,
                           size_t errstr_size);

/* 1 if an attempt that ended with this HTTP status (0 when no response
 * arrived) and curl result should be retried: 408, 409, 425, 429, 5xx and
 * transport errors. 0 otherwise. */
int kp_backend_retryable(long http_status, CURLcode cc);

/* Parses a Retry-After value: delay-seconds or an HTTP-date, relative to
 * `now`. Returns milliseconds (>= 0), or -1 if unparseable. */
long kp_backend_retry_after_ms(const char *value, time_t now);

/* The delay before attempt number `attempt` (2 for the first retry):
 * d = backoff_ms * 2^(attempt-2) capped at backoff_max_ms (when > 0),
 * then jittered uniformly within [d/2, d] from *seed; never less than
 * retry_after_ms when that is >= 0 (a server's Retry-After wins over the
 * cap). */
long kp_backend_backoff_ms(const kp_backend_conf_t *conf, int attempt,
                           long retry_after_ms, unsigned *seed);

#endif
