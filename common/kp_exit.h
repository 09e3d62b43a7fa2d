/* kp_exit.h - the exit codes of kpool's programs.
 *
 * Few and documented in --help and the README. */
#ifndef KP_EXIT_H
#define KP_EXIT_H

#define KP_EXIT_OK    0 /* success; for `kpool wait`, the pool is quiescent */
#define KP_EXIT_FAIL  1 /* the job failed, or `kpool wait` timed out */
#define KP_EXIT_USAGE 2 /* bad flags, configuration or arguments */

#endif
