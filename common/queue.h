/* The shared-memory queue between the collector (one producer) and the
 * publisher (one consumer).
 *
 * A queue is a directory (default /dev/shm/ebpf-extractor) holding:
 *
 *   data      the collector's file: a header page, then the ring of
 *             `capacity` bytes. Mode 0640; the publisher maps it read-only,
 *             so it can neither rewrite the header nor truncate the file.
 *   consumer  the publisher's file: its release position and its "I am
 *             sleeping" flag. The collector never maps it; it reads it with
 *             pread and treats whatever it finds as hostile input.
 *   doorbell  a FIFO the publisher creates and sleeps on (poll); the
 *             collector writes one byte to it only when the publisher said
 *             it is sleeping.
 *
 * Positions are byte counts since the queue was created (never wrapped);
 * the offset in the ring is pos % capacity (capacity is a power of two).
 * Each record is a 16-byte frame (length, kind, sequence number) and the
 * payload, 8-byte aligned; a wrap frame fills the tail of the ring when a
 * record does not fit before the end. The queue assigns sequence numbers:
 * every committed record takes the next one, so they are contiguous for the
 * life of the data file, across restarts of either side.
 *
 * The consumer has two cursors: `read` (how far it has looked) and
 * `release` (what the producer may overwrite). The publisher releases only
 * what the NATS server has confirmed, and rewinds `read` to `release` after
 * a reconnect.
 */
#ifndef EBPF_EXTRACTOR_QUEUE_H
#define EBPF_EXTRACTOR_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define QUEUE_DEFAULT_DIR "/dev/shm/ebpf-extractor"
#define QUEUE_DEFAULT_CAPACITY (256ull << 20) /* 256 MiB */
#define QUEUE_MIN_CAPACITY (64ull << 10)
#define QUEUE_MAX_CAPACITY (64ull << 30)
#define QUEUE_LAYOUT_VERSION 1
#define QUEUE_ERROR_LEN 512

/* Largest payload queue_reserve accepts for a given capacity: a quarter of
 * the ring, so a record always fits once the consumer catches up. */
uint64_t queue_max_payload(uint64_t capacity);

/* ---- producer (collector) ---- */

struct queue_producer; /* opaque */

struct queue_producer_options {
	const char *dir;   /* NULL: QUEUE_DEFAULT_DIR */
	uint64_t capacity; /* 0: QUEUE_DEFAULT_CAPACITY; else a power of two */
	gid_t group;       /* group that may read the queue; (gid_t)-1: our gid */
};

/* Creates the queue, or opens the existing one and continues its sequence.
 * Refuses (NULL, message in err) a data file of another layout version or
 * capacity (naming both), one owned by another user, a symlink, a file with
 * more than one link, or a directory that is not ours. */
struct queue_producer *queue_producer_open(const struct queue_producer_options *opts,
					   char err[QUEUE_ERROR_LEN]);
void queue_producer_close(struct queue_producer *q);

/* Space for one record of `len` payload bytes, or NULL when the queue is
 * full (or len > queue_max_payload). Only one reservation may be open. */
void *queue_reserve(struct queue_producer *q, uint32_t len);
/* Publishes the reserved record; returns its sequence number. `len` may
 * shrink the reservation (never grow it). */
uint64_t queue_commit(struct queue_producer *q, uint32_t len);
/* Wakes the consumer if it said it is sleeping. Call once per batch. */
void queue_notify(struct queue_producer *q);

uint64_t queue_stream_id(const struct queue_producer *q);
uint64_t queue_next_seq(const struct queue_producer *q);
uint64_t queue_capacity(const struct queue_producer *q);
/* Bytes written and not yet released by the consumer. */
uint64_t queue_used(struct queue_producer *q);

/* ---- consumer (publisher) ---- */

struct queue_consumer; /* opaque */

/* Opens an existing queue (ENOENT in *errno_out when it does not exist yet,
 * so a caller can wait for it). Creates the consumer file and the doorbell
 * when missing; a new consumer starts at the oldest record the producer
 * still holds. */
struct queue_consumer *queue_consumer_open(const char *dir, int *errno_out,
					   char err[QUEUE_ERROR_LEN]);
void queue_consumer_close(struct queue_consumer *q);

struct queue_record {
	uint64_t seq;
	uint64_t pos;       /* position just past this record: release up to it */
	const void *data;   /* payload, valid until released */
	uint32_t len;
};

/* Next record after the read cursor, and moves the cursor past it.
 * 1: got one; 0: empty; -1: the data is inconsistent (message in err). */
int queue_read(struct queue_consumer *q, struct queue_record *rec,
	       char err[QUEUE_ERROR_LEN]);
/* The producer may now overwrite everything before pos. */
void queue_release(struct queue_consumer *q, uint64_t pos);
/* Moves the read cursor back to the release position. */
void queue_rewind(struct queue_consumer *q);

/* Sleeping: poll queue_doorbell_fd for POLLIN after queue_prepare_sleep
 * returned true; call queue_wake on wake-up (drains the doorbell, clears the
 * flag). prepare_sleep returns false when records arrived meanwhile. */
int queue_doorbell_fd(const struct queue_consumer *q);
bool queue_prepare_sleep(struct queue_consumer *q);
void queue_wake(struct queue_consumer *q);

uint64_t queue_consumer_stream_id(const struct queue_consumer *q);

#endif
