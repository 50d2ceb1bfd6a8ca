/* Test support: run peer bytes through an engine under any chunking and record what it says.
 *
 * A transcript is the list of events with their data copied out, so that runs with different
 * chunk schedules (whole, split at every byte, one byte at a time) can be compared. Each chunk
 * is placed against a guard page: an over-read by the engine crashes the test.
 */
#ifndef WISP_TEST_WS_FEED_H
#define WISP_TEST_WS_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wisp/ws.h>

#define TRANSCRIPT_MAX 256

struct recorded_event {
    enum wisp_ws_event_type type;
    enum wisp_ws_opcode opcode;
    uint8_t rsv;
    bool first, last;
    uint16_t close_code;
    enum wisp_ws_fault fault;
    uint8_t *data; /* malloc'd copy */
    size_t len;
};

struct transcript {
    struct recorded_event ev[TRANSCRIPT_MAX];
    size_t n;
    size_t bytes_at_fault; /* input offset at which the first FAULT was reported */
};

void transcript_free(struct transcript *t);

/* Feed `len` bytes through a fresh engine configured by cfg, cut into chunks at the offsets in
 * cuts[0..ncuts) (ascending). Asserts the engine's progress rule (each call consumes bytes or
 * reports an event) and records every event. */
void feed_chunks(const struct wisp_ws_config *cfg, const uint8_t *in, size_t len,
                 const size_t *cuts, size_t ncuts, struct transcript *out);

/* Feed whole, then at every single split point, then one byte at a time; assert that every
 * run's transcript equals the whole run's (in streaming mode, the concatenated data per
 * message). Returns the whole run's transcript in *out. */
void feed_all_splits(const struct wisp_ws_config *cfg, const uint8_t *in, size_t len,
                     struct transcript *out);

/* Build a frame into out: returns its length. mask may be NULL (unmasked). */
size_t make_frame(uint8_t *out, bool fin, uint8_t rsv, unsigned opcode, const uint8_t *mask,
                  const void *payload, size_t len);

#endif
