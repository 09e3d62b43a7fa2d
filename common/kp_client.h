/* kp_client.h - backend calls in flight over libcurl's multi interface,
 * driven by the caller's event loop.
 *
 * A call carries one task through up to conf->attempts attempts within
 * the per-task deadline, retrying 429, 5xx and transport errors with
 * exponential backoff and jitter (Retry-After honoured). Connections are
 * kept alive and reused. Nothing here blocks: kp_client_run() advances
 * transfers and timers, and kp_client_wait() sleeps until there is work
 * for curl, an extra fd is readable, or the timeout passes. */
#ifndef KP_CLIENT_H
#define KP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "kp_backend.h"
#include "kp_task.h"

typedef struct kp_client kp_client_t;

/* The outcome of a call, handed to the completion callback. Strings are
 * valid only during the callback. */
typedef struct kp_call_result {
        int ok;
        const char *output;      /* ok: the answer */
        const char *err_kind;    /* !ok: KP_ERR_* */
        const char *err_message; /* !ok: why (never holds the API key) */
        long http_status;        /* last HTTP status, 0 if none */
        int attempts;
        int has_usage;
        int64_t input_tokens, output_tokens;
        double duration_ms; /* from start to completion, backoff included */
} kp_call_result_t;

typedef void(kp_call_done_cb)(void *opaque, const kp_call_result_t *res);

/* Creates a client for one backend; conf is copied (strings included).
 * Returns NULL with errstr set on failure. */
kp_client_t *kp_client_new(const kp_backend_conf_t *conf, kp_call_done_cb *cb,
                           char *errstr, size_t errstr_size);

/* Frees the client, aborting calls still in flight without callbacks. */
void kp_client_destroy(kp_client_t *client);

/* Starts a call for `task` (raw: the record's value, for http). The task
 * and raw bytes need only live during this call. The callback fires
 * exactly once, from kp_client_run(), with `opaque`.
 * Returns 0, or -1 with errstr set if the request cannot be built (then
 * no callback fires). */
int kp_client_start(kp_client_t *client, const kp_task_t *task, const void *raw,
                    size_t raw_len, void *opaque, char *errstr,
                    size_t errstr_size);

/* Advances transfers, retry timers and deadlines; fires callbacks for
 * calls that finished. Returns the number of calls still in flight. */
int kp_client_run(kp_client_t *client);

/* Waits up to timeout_ms for curl's sockets, curl's own timers or any of
 * the extra fds (each polled for POLLIN) to need attention; retry timers
 * are honoured too. Returns 0, or -1 on a poll error. */
int kp_client_wait(kp_client_t *client, const int *fds, int nfds,
                   int timeout_ms);

/* Calls in flight. */
int kp_client_inflight(const kp_client_t *client);

#endif
