/* kp_task.h - the task and result wire formats (docs/wire-format.md).
 *
 * Task, on <pool>.tasks: key = task id, value = a JSON object
 *   {"id", "input", "role"?, "max_tokens"?, "meta"?, "submitted_at"}
 * or any value not beginning with '{', taken as plain-text input.
 *
 * Result, on <pool>.results: key = task id, value = a JSON object
 *   {"id", "status": "ok"|"error", "output"?, "error"?: {"kind",
 *    "message", "http_status"?}, "worker", "partition", "offset",
 *    "attempts", "usage"?: {"input_tokens", "output_tokens"},
 *    "duration_ms", "submitted_at"?, "completed_at"} */
#ifndef KP_TASK_H
#define KP_TASK_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* Error kinds carried in results; stable strings of the wire format.
 * backend_error: the backend refused the task (a 4xx);
 * bad_response: its reply could not be read;
 * retries_exhausted: 429s, 5xx or transport errors until attempts ran out;
 * timeout: the per-task deadline passed. */
#define KP_ERR_INVALID_UTF8     "invalid_utf8"
#define KP_ERR_INVALID_JSON     "invalid_json"
#define KP_ERR_MISSING_INPUT    "missing_input"
#define KP_ERR_INPUT_TOO_LARGE  "input_too_large"
#define KP_ERR_BACKEND          "backend_error"
#define KP_ERR_BACKEND_RESPONSE "bad_response"
#define KP_ERR_RETRIES          "retries_exhausted"
#define KP_ERR_TIMEOUT          "timeout"

typedef struct kp_task {
        char *id;           /* always set, even when decoding fails */
        char *input;        /* UTF-8 text; NULL when decoding failed */
        char *role;         /* NULL: the pool's role */
        int max_tokens;     /* 0: the worker's default */
        json_object *meta;  /* a reference owned by the task, or NULL */
        char *submitted_at; /* as sent, or NULL */
        int plain;          /* 1: the value was plain text */
} kp_task_t;

/* Decodes a task record's value. The id is the JSON "id", else the
 * record's key, else "p<partition>-o<offset>".
 * Returns 0, or -1 when the task cannot be processed: then *kindp is one
 * of the KP_ERR_* kinds, errstr says why, and task->id is still set.
 * Free with kp_task_clear() either way. */
int kp_task_decode(kp_task_t *task, const void *value, size_t len,
                   const void *key, size_t key_len, int32_t partition,
                   int64_t offset, size_t max_input, const char **kindp,
                   char *errstr, size_t errstr_size);

void kp_task_clear(kp_task_t *task);

/* Encodes a task for `kpool submit`: {"id", "input", "submitted_at"} plus
 * the members of `extra` (a JSON object, may be NULL; its "id" and
 * "submitted_at" win when present). Returns a malloc'd string (caller
 * frees) and sets *idp to the task's id within a malloc'd copy (caller
 * frees), or NULL with errstr set. */
char *kp_task_encode(const char *input, json_object *extra, const char *id,
                     char **idp, char *errstr, size_t errstr_size);

/* Parses buf[0..len) as exactly one JSON value; trailing bytes other
 * than whitespace are an error. Returns the value (caller puts it), or
 * NULL with json-c's reason and where ("unexpected end of data at offset
 * 12") in errstr. */
json_object *kp_json_parse(const void *buf, size_t len, char *errstr,
                           size_t errstr_size);

/* Checks that buf[0..len) is well-formed UTF-8 (no overlongs, no
 * surrogates, nothing above U+10FFFF). Returns 1 if so, 0 if not. */
int kp_utf8_valid(const char *buf, size_t len);

/* A fresh task id: 32 lowercase hex digits from a random source.
 * Writes into out (at least 33 bytes). */
void kp_task_new_id(char *out);

/* Writes the current time as RFC 3339 UTC with microseconds
 * ("2026-12-03T16:40:00.123456Z") into out (at least 32 bytes). */
void kp_time_rfc3339(char *out, size_t size);

typedef struct kp_result {
        const char *id;
        int ok;                  /* status "ok" or "error" */
        const char *output;      /* ok: the backend's answer */
        const char *err_kind;    /* error: a KP_ERR_* kind */
        const char *err_message; /* error: why, never a secret */
        long http_status;        /* 0: none */
        const char *worker;
        int32_t partition;
        int64_t offset;
        int attempts;
        int has_usage;
        int64_t input_tokens, output_tokens;
        double duration_ms;       /* time spent in backend calls */
        const char *submitted_at; /* copied from the task, may be NULL */
} kp_result_t;

/* Encodes a result, stamping completed_at now. Returns a malloc'd JSON
 * string (caller frees) and its length in *lenp. */
char *kp_result_encode(const kp_result_t *result, size_t *lenp);

#endif
