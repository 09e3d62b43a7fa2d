/* kp_track.h - which offsets of one partition are finished, so the
 * committed offset advances only over the contiguous prefix of finished
 * tasks (tasks may finish out of order when several are in flight). */
#ifndef KP_TRACK_H
#define KP_TRACK_H

#include <stddef.h>
#include <stdint.h>

typedef struct kp_track kp_track_t;

/* Returns a new, empty tracker (aborts on out of memory). */
kp_track_t *kp_track_new(void);

void kp_track_destroy(kp_track_t *track);

/* Records that `offset` was received. Offsets must be added in increasing
 * order; they need not be contiguous (compaction, transaction markers).
 * Returns 0, or -1 if offset is not above the last one added. */
int kp_track_add(kp_track_t *track, int64_t offset);

/* Marks `offset` finished. Returns 1 if the committable offset advanced,
 * 0 if not (an earlier task is still open), -1 if offset is unknown. */
int kp_track_done(kp_track_t *track, int64_t offset);

/* The offset to commit: the first open offset if any is open, else one
 * past the last finished offset; -1 when nothing has finished yet. */
int64_t kp_track_commit_offset(const kp_track_t *track);

/* Offsets received and not yet behind the committable offset. */
size_t kp_track_open(const kp_track_t *track);

/* Forgets everything (the partition was revoked). */
void kp_track_reset(kp_track_t *track);

#endif
