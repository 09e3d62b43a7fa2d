/* kp_log.h - one levelled logger for kpool's programs.
 *
 * Lines go to stderr as
 *   2026-12-03T16:40:00.123Z kpool-worker[w1] INFO: message
 * The level is checked before any formatting happens. */
#ifndef KP_LOG_H
#define KP_LOG_H

typedef enum {
        KP_LOG_ERROR = 0,
        KP_LOG_WARN = 1,
        KP_LOG_INFO = 2,
        KP_LOG_DEBUG = 3,
} kp_log_level_t;

/* The current level; lines above it are dropped unformatted. */
extern int kp_log_level;

/* Sets the program name and instance (may be NULL) shown on every line.
 * Both strings are copied. */
void kp_log_init(const char *prog, const char *instance);

/* Sets the level from "error", "warn", "info" or "debug".
 * Returns 0, or -1 for an unknown name (the level is unchanged). */
int kp_log_set_level_name(const char *name);

/* Writes one line; use the macros below instead. */
void kp_log_write(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define kp_log(LVL, ...)                                                       \
        do {                                                                   \
                if ((int)(LVL) <= kp_log_level)                                \
                        kp_log_write((LVL), __VA_ARGS__);                      \
        } while (0)

#define kp_err(...)   kp_log(KP_LOG_ERROR, __VA_ARGS__)
#define kp_warn(...)  kp_log(KP_LOG_WARN, __VA_ARGS__)
#define kp_info(...)  kp_log(KP_LOG_INFO, __VA_ARGS__)
#define kp_debug(...) kp_log(KP_LOG_DEBUG, __VA_ARGS__)

/* Every line about a task names where its record is:
 *   kp_info("task done: " KP_TASK_FMT, KP_TASK_ARGS(pool, topic, p, o, id));
 */
#define KP_TASK_FMT "pool=%s topic=%s partition=%d offset=%lld task=%s"
#define KP_TASK_ARGS(POOL, TOPIC, PART, OFF, ID)                               \
        (POOL), (TOPIC), (int)(PART), (long long)(OFF), (ID) ? (ID) : "-"

#endif
