/* kp_task.c - the task and result wire formats (docs/wire-format.md). */
#include "kp_task.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "kp_log.h"

/* What json-c writes: compact, and '/' left alone. */
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static void *xmalloc(size_t size) {
        void *p = malloc(size ? size : 1);

        if (!p) {
                kp_err("Out of memory allocating %zu bytes", size);
                abort();
        }
        return p;
}

static char *xstrndup(const char *s, size_t n) {
        char *p = xmalloc(n + 1);

        memcpy(p, s, n);
        p[n] = '\0';
        return p;
}

static char *xstrdup(const char *s) {
        return xstrndup(s, strlen(s));
}

/* Length of the well-formed UTF-8 sequence at s (at most avail bytes), or
 * 0 if there is none: overlongs, surrogates, code points above U+10FFFF
 * and truncated sequences are all refused. */
static size_t utf8_seq(const unsigned char *s, size_t avail) {
        unsigned char c = s[0], lo = 0x80, hi = 0xbf;
        size_t need, k;

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf) {
                need = 1;
        } else if (c == 0xe0) {
                need = 2;
                lo = 0xa0; /* overlong below U+0800 */
        } else if (c == 0xed) {
                need = 2;
                hi = 0x9f; /* U+D800..U+DFFF, the surrogates */
        } else if (c >= 0xe1 && c <= 0xef) {
                need = 2;
        } else if (c == 0xf0) {
                need = 3;
                lo = 0x90; /* overlong below U+10000 */
        } else if (c >= 0xf1 && c <= 0xf3) {
                need = 3;
        } else if (c == 0xf4) {
                need = 3;
                hi = 0x8f; /* above U+10FFFF */
        } else {
                return 0; /* C0, C1 (overlong), F5..FF, or a lone tail */
        }

        if (avail - 1 < need)
                return 0;
        if (s[1] < lo || s[1] > hi)
                return 0;
        for (k = 2; k <= need; k++) {
                if ((s[k] & 0xc0) != 0x80)
                        return 0;
        }
        return need + 1;
}

/* The offset of the first byte that does not start a well-formed
 * sequence, or len when all of buf is well-formed. */
static size_t utf8_scan(const char *buf, size_t len) {
        const unsigned char *s = (const unsigned char *)buf;
        size_t i = 0, n;

        while (i < len) {
                /* Fast path: eight ASCII bytes at a time. */
                while (len - i >= 8) {
                        uint64_t w;

                        memcpy(&w, s + i, sizeof(w));
                        if (w & 0x8080808080808080ULL)
                                break;
                        i += 8;
                }
                if (i >= len)
                        break;
                if (s[i] < 0x80) {
                        i++;
                        continue;
                }

                n = utf8_seq(s + i, len - i);
                if (!n)
                        return i;
                i += n;
        }
        return len;
}

int kp_utf8_valid(const char *buf, size_t len) {
        return utf8_scan(buf, len) == len;
}

/* A copy of s with every ill-formed byte replaced by U+FFFD, or NULL
 * when s is well-formed already (use s itself then). */
static char *utf8_repair(const char *s) {
        size_t len = strlen(s), i = 0, o = 0, n;
        char *out;

        if (kp_utf8_valid(s, len))
                return NULL;

        out = xmalloc(len * 3 + 1);
        while (i < len) {
                n = utf8_seq((const unsigned char *)s + i, len - i);
                if (n) {
                        memcpy(out + o, s + i, n);
                        o += n;
                        i += n;
                } else {
                        memcpy(out + o, "\xef\xbf\xbd", 3);
                        o += 3;
                        i++;
                }
        }
        out[o] = '\0';
        return out;
}

void kp_task_new_id(char *out) {
        static const char hex[] = "0123456789abcdef";
        unsigned char rnd[16];
        size_t got = 0, i;
        ssize_t r;

        while (got < sizeof(rnd)) {
                r = getrandom(rnd + got, sizeof(rnd) - got, 0);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;
                got += (size_t)r;
        }

        if (got < sizeof(rnd)) {
                /* No kernel randomness (very old kernel or seccomp): mix
                 * the clock, the pid and a counter so that ids stay
                 * unique even if they are no longer unpredictable. */
                static unsigned long counter;
                struct timespec ts;
                uint64_t x;

                clock_gettime(CLOCK_REALTIME, &ts);
                x = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^
                    ((uint64_t)getpid() << 32) ^
                    (uint64_t)++counter * 0x9e3779b97f4a7c15ULL;
                for (i = 0; i < sizeof(rnd); i++) {
                        x ^= x >> 33;
                        x *= 0xff51afd7ed558ccdULL;
                        x ^= x >> 29;
                        rnd[i] = (unsigned char)x;
                }
        }

        for (i = 0; i < sizeof(rnd); i++) {
                out[2 * i] = hex[rnd[i] >> 4];
                out[2 * i + 1] = hex[rnd[i] & 0xf];
        }
        out[2 * sizeof(rnd)] = '\0';
}

void kp_time_rfc3339(char *out, size_t size) {
        struct timespec ts;
        struct tm tm;
        char stamp[24];

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(out, size, "%s.%06ldZ", stamp, ts.tv_nsec / 1000);
}

/* Sets the error kind and message of a failed decode; returns -1. */
static int task_fail(const char **kindp, const char *kind, char *errstr,
                     size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int task_fail(const char **kindp, const char *kind, char *errstr,
                     size_t errstr_size, const char *fmt, ...) {
        va_list ap;

        if (kindp)
                *kindp = kind;
        if (errstr_size) {
                va_start(ap, fmt);
                vsnprintf(errstr, errstr_size, fmt, ap);
                va_end(ap);
        }
        return -1;
}

/* The id of a task whose value names none: the record's key when it is
 * usable text, else "p<partition>-o<offset>". */
static char *fallback_id(const void *key, size_t key_len, int32_t partition,
                         int64_t offset) {
        char buf[64];

        if (key && key_len > 0 && !memchr(key, '\0', key_len) &&
            kp_utf8_valid(key, key_len))
                return xstrndup(key, key_len);

        snprintf(buf, sizeof(buf), "p%d-o%lld", (int)partition,
                 (long long)offset);
        return xstrdup(buf);
}

static const char *json_type_word(json_object *obj) {
        switch (json_object_get_type(obj)) {
        case json_type_null:
                return "null";
        case json_type_boolean:
                return "a boolean";
        case json_type_double:
        case json_type_int:
                return "a number";
        case json_type_object:
                return "an object";
        case json_type_array:
                return "an array";
        case json_type_string:
                return "a string";
        }
        return "of an unknown type";
}

/* Reads a string member that must hold text: returns 1 with *sp and
 * *lenp set, 0 when absent, -1 when present but not a string (or holding
 * a NUL character, which a C string cannot carry). */
static int member_string(json_object *obj, const char *name, const char **sp,
                         size_t *lenp) {
        json_object *v;

        *sp = NULL;
        *lenp = 0;
        if (!json_object_object_get_ex(obj, name, &v))
                return 0;
        if (!json_object_is_type(v, json_type_string))
                return -1;
        *sp = json_object_get_string(v);
        *lenp = (size_t)json_object_get_string_len(v);
        if (memchr(*sp, '\0', *lenp))
                return -1;
        return 1;
}

/* Checks and copies the members of a JSON task into `task`. Returns 0, or
 * -1 with *kindp and errstr set. max_input 0: no size limit. */
static int task_fields(kp_task_t *task, json_object *obj, size_t max_input,
                       const char **kindp, char *errstr, size_t errstr_size) {
        json_object *v;
        const char *s;
        size_t len;
        int r;

        /* The id first, so that later errors are reported under it. */
        r = member_string(obj, "id", &s, &len);
        if (r < 0 || (r > 0 && len == 0))
                return task_fail(kindp, KP_ERR_INVALID_JSON, errstr,
                                 errstr_size,
                                 "field \"id\" must be a non-empty string");
        if (r > 0) {
                free(task->id);
                task->id = xstrndup(s, len);
        }

        if (!json_object_object_get_ex(obj, "input", &v))
                return task_fail(kindp, KP_ERR_MISSING_INPUT, errstr,
                                 errstr_size, "field \"input\" is missing");
        if (!json_object_is_type(v, json_type_string))
                return task_fail(kindp, KP_ERR_MISSING_INPUT, errstr,
                                 errstr_size,
                                 "field \"input\" must be a string, not %s",
                                 json_type_word(v));
        s = json_object_get_string(v);
        len = (size_t)json_object_get_string_len(v);
        if (memchr(s, '\0', len))
                return task_fail(kindp, KP_ERR_INVALID_JSON, errstr,
                                 errstr_size,
                                 "field \"input\" contains a NUL character");
        if (len == 0)
                return task_fail(kindp, KP_ERR_MISSING_INPUT, errstr,
                                 errstr_size, "field \"input\" is empty");
        if (max_input && len > max_input)
                return task_fail(kindp, KP_ERR_INPUT_TOO_LARGE, errstr,
                                 errstr_size,
                                 "input is %zu bytes, over the limit of %zu",
                                 len, max_input);
        task->input = xstrndup(s, len);

        r = member_string(obj, "role", &s, &len);
        if (r < 0)
                return task_fail(kindp, KP_ERR_INVALID_JSON, errstr,
                                 errstr_size,
                                 "field \"role\" must be a string");
        if (r > 0 && len > 0)
                task->role = xstrndup(s, len);

        if (json_object_object_get_ex(obj, "max_tokens", &v)) {
                int64_t n = json_object_get_int64(v);

                if (!json_object_is_type(v, json_type_int) || n < 1 ||
                    n > INT_MAX)
                        return task_fail(kindp, KP_ERR_INVALID_JSON, errstr,
                                         errstr_size,
                                         "field \"max_tokens\" must be a "
                                         "positive integer up to %d",
                                         INT_MAX);
                task->max_tokens = (int)n;
        }

        if (json_object_object_get_ex(obj, "meta", &v) && v)
                task->meta = json_object_get(v);

        /* Informational only: a value of another type is ignored. */
        if (member_string(obj, "submitted_at", &s, &len) > 0)
                task->submitted_at = xstrndup(s, len);

        return 0;
}

json_object *kp_json_parse(const void *buf, size_t len, char *errstr,
                           size_t errstr_size) {
        struct json_tokener *tok;
        enum json_tokener_error jerr;
        json_object *obj;
        size_t end;

        if (len > INT_MAX) {
                snprintf(errstr, errstr_size, "too large to parse");
                return NULL;
        }
        tok = json_tokener_new();
        if (!tok) {
                kp_err("Out of memory creating a JSON parser");
                abort();
        }
        /* Strict: trailing bytes other than whitespace are an error. */
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        obj = json_tokener_parse_ex(tok, buf ? buf : "", (int)len);
        jerr = json_tokener_get_error(tok);
        end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);

        if (obj && jerr == json_tokener_success)
                return obj;
        /* "continue" means the text ended inside the JSON. */
        if (jerr == json_tokener_continue || jerr == json_tokener_success)
                jerr = json_tokener_error_parse_eof;
        json_object_put(obj);
        snprintf(errstr, errstr_size, "%s at offset %zu",
                 json_tokener_error_desc(jerr), end);
        return NULL;
}

static int decode_json(kp_task_t *task, const char *v, size_t len,
                       size_t max_input, const char **kindp, char *errstr,
                       size_t errstr_size) {
        char reason[256];
        json_object *obj;
        int r;

        obj = kp_json_parse(v, len, reason, sizeof(reason));
        if (!obj)
                return task_fail(kindp, KP_ERR_INVALID_JSON, errstr,
                                 errstr_size, "value is not valid JSON: %s",
                                 reason);
        if (!json_object_is_type(obj, json_type_object)) {
                json_object_put(obj);
                return task_fail(kindp, KP_ERR_INVALID_JSON, errstr,
                                 errstr_size,
                                 "value is JSON but not an object");
        }

        r = task_fields(task, obj, max_input, kindp, errstr, errstr_size);
        json_object_put(obj);
        return r;
}

static int decode_plain(kp_task_t *task, const char *v, size_t len,
                        size_t max_input, const char **kindp, char *errstr,
                        size_t errstr_size) {
        /* One trailing line end is framing (echo, kcat -l), not input. */
        if (len > 0 && v[len - 1] == '\n') {
                len--;
                if (len > 0 && v[len - 1] == '\r')
                        len--;
        }

        if (max_input && len > max_input)
                return task_fail(kindp, KP_ERR_INPUT_TOO_LARGE, errstr,
                                 errstr_size,
                                 "input is %zu bytes, over the limit of %zu",
                                 len, max_input);

        task->input = xstrndup(v, len);
        task->plain = 1;
        return 0;
}

int kp_task_decode(kp_task_t *task, const void *value, size_t len,
                   const void *key, size_t key_len, int32_t partition,
                   int64_t offset, size_t max_input, const char **kindp,
                   char *errstr, size_t errstr_size) {
        const char *v = value;
        size_t i, bad;
        int r;

        memset(task, 0, sizeof(*task));
        if (kindp)
                *kindp = NULL;
        if (errstr_size)
                errstr[0] = '\0';
        task->id = fallback_id(key, key_len, partition, offset);

        if (!v)
                len = 0;

        /* The whole value must be text before anything else is read. */
        bad = utf8_scan(v, len);
        if (bad < len)
                return task_fail(kindp, KP_ERR_INVALID_UTF8, errstr,
                                 errstr_size,
                                 "value is not valid UTF-8 (bad byte 0x%02x "
                                 "at offset %zu)",
                                 (unsigned char)v[bad], bad);
        if (len > 0 && memchr(v, '\0', len))
                return task_fail(
                    kindp, KP_ERR_INVALID_UTF8, errstr, errstr_size,
                    "value contains a NUL byte at offset %zu",
                    (size_t)((const char *)memchr(v, '\0', len) - v));

        for (i = 0; i < len; i++) {
                if (v[i] != ' ' && v[i] != '\t' && v[i] != '\r' && v[i] != '\n')
                        break;
        }
        if (i == len)
                return task_fail(
                    kindp, KP_ERR_MISSING_INPUT, errstr, errstr_size,
                    len ? "value is only whitespace" : "value is empty");

        if (v[i] == '{')
                r = decode_json(task, v, len, max_input, kindp, errstr,
                                errstr_size);
        else
                r = decode_plain(task, v, len, max_input, kindp, errstr,
                                 errstr_size);

        if (r < 0) {
                /* Keep the id, drop what was read before the failure. */
                char *id = task->id;

                task->id = NULL;
                kp_task_clear(task);
                task->id = id;
        }
        return r;
}

void kp_task_clear(kp_task_t *task) {
        free(task->id);
        free(task->input);
        free(task->role);
        free(task->submitted_at);
        json_object_put(task->meta);
        memset(task, 0, sizeof(*task));
}

char *kp_task_encode(const char *input, json_object *extra, const char *id,
                     char **idp, char *errstr, size_t errstr_size) {
        json_object *obj, *v;
        kp_task_t check;
        const char *kind, *json;
        char fresh[33], stamp[40];
        char *out = NULL;
        size_t len;

        if (idp)
                *idp = NULL;
        if (extra && !json_object_is_type(extra, json_type_object)) {
                snprintf(errstr, errstr_size, "task JSON must be an object");
                return NULL;
        }

        /* The id: given, else the JSON's own, else a fresh one. */
        if (!id && extra && json_object_object_get_ex(extra, "id", &v)) {
                if (!json_object_is_type(v, json_type_string) ||
                    !*json_object_get_string(v)) {
                        snprintf(errstr, errstr_size,
                                 "field \"id\" must be a non-empty string");
                        return NULL;
                }
                id = json_object_get_string(v);
        }
        if (!id) {
                kp_task_new_id(fresh);
                id = fresh;
        }
        if (!*id || !kp_utf8_valid(id, strlen(id))) {
                snprintf(errstr, errstr_size,
                         "task id must be non-empty UTF-8 text");
                return NULL;
        }

        if (!input && extra && json_object_object_get_ex(extra, "input", &v) &&
            json_object_is_type(v, json_type_string))
                input = json_object_get_string(v);
        if (!input) {
                snprintf(errstr, errstr_size,
                         "no input: give the text, or a JSON object with an "
                         "\"input\" string");
                return NULL;
        }
        if (!kp_utf8_valid(input, strlen(input))) {
                snprintf(errstr, errstr_size, "input is not valid UTF-8");
                return NULL;
        }

        obj = json_object_new_object();
        json_object_object_add(obj, "id", json_object_new_string(id));
        json_object_object_add(obj, "input", json_object_new_string(input));
        if (extra) {
                json_object_object_foreach(extra, name, val) {
                        if (!strcmp(name, "id") || !strcmp(name, "input") ||
                            !strcmp(name, "submitted_at"))
                                continue;
                        json_object_object_add(obj, name, json_object_get(val));
                }
        }
        if (extra && json_object_object_get_ex(extra, "submitted_at", &v)) {
                json_object_object_add(obj, "submitted_at", json_object_get(v));
        } else {
                kp_time_rfc3339(stamp, sizeof(stamp));
                json_object_object_add(obj, "submitted_at",
                                       json_object_new_string(stamp));
        }

        /* Refuse what a worker would refuse, while the user is here. */
        memset(&check, 0, sizeof(check));
        if (task_fields(&check, obj, 0, &kind, errstr, errstr_size) < 0) {
                kp_task_clear(&check);
                json_object_put(obj);
                return NULL;
        }
        kp_task_clear(&check);

        json = json_object_to_json_string_length(obj, JSON_FLAGS, &len);
        if (json) {
                out = xstrndup(json, len);
                if (idp)
                        *idp = xstrdup(id);
        } else {
                snprintf(errstr, errstr_size, "cannot encode the task JSON");
        }
        json_object_put(obj);
        return out;
}

/* A JSON string of s, with ill-formed UTF-8 repaired. */
static json_object *json_text(const char *s) {
        char *fixed;
        json_object *v;

        if (!s)
                s = "";
        fixed = utf8_repair(s);
        v = json_object_new_string(fixed ? fixed : s);
        free(fixed);
        return v;
}

char *kp_result_encode(const kp_result_t *result, size_t *lenp) {
        json_object *obj, *err, *usage;
        const char *json;
        char stamp[40], ms[64];
        double d = result->duration_ms;
        char *out;
        size_t len;

        obj = json_object_new_object();
        json_object_object_add(obj, "id", json_text(result->id));
        json_object_object_add(
            obj, "status", json_object_new_string(result->ok ? "ok" : "error"));

        if (result->ok) {
                json_object_object_add(obj, "output",
                                       json_text(result->output));
        } else {
                err = json_object_new_object();
                json_object_object_add(err, "kind",
                                       json_text(result->err_kind));
                json_object_object_add(err, "message",
                                       json_text(result->err_message));
                if (result->http_status)
                        json_object_object_add(
                            err, "http_status",
                            json_object_new_int64(result->http_status));
                json_object_object_add(obj, "error", err);
        }

        json_object_object_add(obj, "worker", json_text(result->worker));
        json_object_object_add(obj, "partition",
                               json_object_new_int(result->partition));
        json_object_object_add(obj, "offset",
                               json_object_new_int64(result->offset));
        json_object_object_add(obj, "attempts",
                               json_object_new_int(result->attempts));

        if (result->has_usage) {
                usage = json_object_new_object();
                json_object_object_add(
                    usage, "input_tokens",
                    json_object_new_int64(result->input_tokens));
                json_object_object_add(
                    usage, "output_tokens",
                    json_object_new_int64(result->output_tokens));
                json_object_object_add(obj, "usage", usage);
        }

        /* Milliseconds to the microsecond, written as "%.3f" exactly. */
        if (!isfinite(d) || d < 0)
                d = 0;
        snprintf(ms, sizeof(ms), "%.3f", d);
        for (char *c = ms; *c; c++) {
                if (*c == ',') /* a locale's decimal comma */
                        *c = '.';
        }
        json_object_object_add(obj, "duration_ms",
                               json_object_new_double_s(d, ms));

        if (result->submitted_at)
                json_object_object_add(obj, "submitted_at",
                                       json_text(result->submitted_at));
        kp_time_rfc3339(stamp, sizeof(stamp));
        json_object_object_add(obj, "completed_at",
                               json_object_new_string(stamp));

        json = json_object_to_json_string_length(obj, JSON_FLAGS, &len);
        if (!json) {
                kp_err("Out of memory encoding a result");
                abort();
        }
        out = xstrndup(json, len);
        json_object_put(obj);
        if (lenp)
                *lenp = len;
        return out;
}
