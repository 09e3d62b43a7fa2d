/* kp_opts.h - the option tables of kpool's programs, in one place so the
 * example config (config/kpool.conf) and --help agree. */
#ifndef KP_OPTS_H
#define KP_OPTS_H

#include "kp_conf.h"

/* Options every program has: brokers, pool, config, log-level, help... */
extern const kp_opt_def_t kp_opts_common[];
extern const size_t kp_opts_common_count;

/* kpool-worker's own options. */
extern const kp_opt_def_t kp_opts_worker[];
extern const size_t kp_opts_worker_count;

/* kpool's own options (all subcommands share one table). */
extern const kp_opt_def_t kp_opts_kpool[];
extern const size_t kp_opts_kpool_count;

#endif
