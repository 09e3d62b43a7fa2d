/* kp_log.c - one levelled logger for kpool's programs. */
#include "kp_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

int kp_log_level = KP_LOG_INFO;

static char log_prog[64] = "kpool";
static char log_instance[128];

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void kp_log_init(const char *prog, const char *instance) {
        snprintf(log_prog, sizeof(log_prog), "%s", prog ? prog : "kpool");
        snprintf(log_instance, sizeof(log_instance), "%s",
                 instance ? instance : "");
}

int kp_log_set_level_name(const char *name) {
        static const char *const names[] = {"error", "warn", "info", "debug"};
        size_t i;

        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                if (!strcmp(name, names[i])) {
                        kp_log_level = (int)i;
                        return 0;
                }
        }
        return -1;
}

void kp_log_write(int level, const char *fmt, ...) {
        char line[2048];
        char stamp[32];
        struct timeval tv;
        struct tm tm;
        va_list ap;
        int n;

        if (level < KP_LOG_ERROR)
                level = KP_LOG_ERROR;
        if (level > KP_LOG_DEBUG)
                level = KP_LOG_DEBUG;

        gettimeofday(&tv, NULL);
        gmtime_r(&tv.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

        if (*log_instance)
                n = snprintf(line, sizeof(line), "%s.%03dZ %s[%s] %s: ", stamp,
                             (int)(tv.tv_usec / 1000), log_prog, log_instance,
                             level_names[level]);
        else
                n = snprintf(line, sizeof(line), "%s.%03dZ %s %s: ", stamp,
                             (int)(tv.tv_usec / 1000), log_prog,
                             level_names[level]);
        if (n < 0 || (size_t)n >= sizeof(line))
                n = 0;

        va_start(ap, fmt);
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
        va_end(ap);

        /* One write per line keeps lines whole when processes share a
         * terminal or a log file. */
        n = (int)strlen(line);
        if (n >= (int)sizeof(line) - 1)
                n = (int)sizeof(line) - 2;
        line[n++] = '\n';
        fwrite(line, 1, (size_t)n, stderr);
        fflush(stderr);
}
