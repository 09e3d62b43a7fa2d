/* kp_track.c - contiguous-prefix tracking of finished offsets.
 *
 * A ring buffer of the open offsets, oldest first; finished ones at the
 * front are popped, so the buffer holds at most the window between the
 * oldest open task and the newest received one. */
#include "kp_track.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
        int64_t offset;
        int done;
} entry_t;

struct kp_track {
        entry_t *ring;
        size_t cap, head, len; /* cap is a power of two */
        int64_t last_added;    /* -1: none */
        int64_t last_done;     /* last offset popped, -1: none */
};

static void *xrealloc(void *p, size_t size) {
        void *q = realloc(p, size);

        if (!q)
                abort();
        return q;
}

kp_track_t *kp_track_new(void) {
        kp_track_t *track = xrealloc(NULL, sizeof(*track));

        track->cap = 16;
        track->ring = xrealloc(NULL, track->cap * sizeof(entry_t));
        track->head = track->len = 0;
        track->last_added = track->last_done = -1;
        return track;
}

void kp_track_destroy(kp_track_t *track) {
        if (!track)
                return;
        free(track->ring);
        free(track);
}

static entry_t *at(const kp_track_t *track, size_t i) {
        return &track->ring[(track->head + i) & (track->cap - 1)];
}

static void grow(kp_track_t *track) {
        entry_t *ring = xrealloc(NULL, track->cap * 2 * sizeof(entry_t));
        size_t i;

        for (i = 0; i < track->len; i++)
                ring[i] = *at(track, i);
        free(track->ring);
        track->ring = ring;
        track->cap *= 2;
        track->head = 0;
}

int kp_track_add(kp_track_t *track, int64_t offset) {
        if (offset < 0 || offset <= track->last_added)
                return -1;
        if (track->len == track->cap)
                grow(track);
        *at(track, track->len) = (entry_t){offset, 0};
        track->len++;
        track->last_added = offset;
        return 0;
}

int kp_track_done(kp_track_t *track, int64_t offset) {
        size_t lo = 0, hi = track->len;
        int advanced = 0;

        /* Binary search: offsets in the ring are increasing. */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (at(track, mid)->offset < offset)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (lo == track->len || at(track, lo)->offset != offset)
                return -1;
        at(track, lo)->done = 1;

        /* Pop the finished prefix. */
        while (track->len > 0 && at(track, 0)->done) {
                track->last_done = at(track, 0)->offset;
                track->head = (track->head + 1) & (track->cap - 1);
                track->len--;
                advanced = 1;
        }
        return advanced;
}

int64_t kp_track_commit_offset(const kp_track_t *track) {
        if (track->len > 0) {
                /* The first open offset, but only once something before it
                 * finished: before that there is nothing to commit. */
                return track->last_done >= 0 ? at(track, 0)->offset : -1;
        }
        return track->last_done >= 0 ? track->last_done + 1 : -1;
}

size_t kp_track_open(const kp_track_t *track) {
        return track->len;
}

void kp_track_reset(kp_track_t *track) {
        track->head = track->len = 0;
        track->last_added = track->last_done = -1;
}
