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
 *
 * Also in the directory: `lock`, the producer's own file (mode 0600): the
 * producer holds an flock on it, so a second producer on the same queue is
 * refused instead of corrupting it. The consumer holds an flock on its
 * `consumer` file for the same reason.
 *
 * The directory is created by the producer with mode 03770 (setgid +
 * sticky: files made in it get its group; nobody deletes another's files).
 * The data file and the doorbell get the queue's group (the consumer must
 * be a member); the consumer file is 0644.
 *
 * SIGPIPE: the producer writes to the doorbell FIFO, and a write to a FIFO
 * whose reader went away raises SIGPIPE. The producer process must ignore
 * SIGPIPE; queue_producer_open sets it to SIG_IGN if it is still SIG_DFL
 * (a handler the caller installed is left alone).
 *
 * Doorbell: the consumer opens the FIFO O_RDWR|O_NONBLOCK (Linux allows
 * that for a FIFO), so it is also a writer of its own FIFO: poll never
 * reports POLLHUP when the producer closes or restarts, and reads return
 * EAGAIN, never EOF.
 *
 * Thread safety: a queue_producer or a queue_consumer is used by one thread
 * at a time. Nothing in queue.c is global.
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
/* True when capacity is a power of two in [QUEUE_MIN_CAPACITY,
 * QUEUE_MAX_CAPACITY]. */
bool queue_capacity_valid(uint64_t capacity);

/* ---- on-disk layout (for tests, tools and documentation; queue.c checks
 * its structs against these offsets at compile time) ---- */

#define QUEUE_DATA_FILE "data"
#define QUEUE_CONSUMER_FILE "consumer"
#define QUEUE_DOORBELL_FILE "doorbell"
#define QUEUE_LOCK_FILE "lock"

/* data file: QUEUE_HEADER_SIZE bytes of header, then the ring. */
#define QUEUE_HEADER_SIZE 4096u
#define QUEUE_DATA_MAGIC 0x3130515846504245ull /* "EBPFXQ01" little-endian */
/* cache line 0, written once when the queue is created */
#define QUEUE_HDR_MAGIC 0             /* u64 */
#define QUEUE_HDR_LAYOUT_VERSION 8    /* u32 */
#define QUEUE_HDR_HEADER_SIZE 12      /* u32, QUEUE_HEADER_SIZE */
#define QUEUE_HDR_CAPACITY 16         /* u64 */
#define QUEUE_HDR_STREAM_ID 24        /* u64, random, nonzero */
#define QUEUE_HDR_CREATED_NS 32       /* u64, unix ns */
/* cache line 1, the producer's (atomics) */
#define QUEUE_HDR_WRITE_POS 64        /* u64, end of the last committed record */
#define QUEUE_HDR_NEXT_SEQ 72         /* u64, seq the next record takes (from 1) */
#define QUEUE_HDR_LAST_RECORD_POS 80  /* u64, start of the last record written */
#define QUEUE_HDR_CONSUMER_POS_SEEN 88 /* u64, last release position validated */

/* frames in the ring: {u32 length (frame + payload, unpadded), u32 kind,
 * u64 seq}, then the payload; the next frame starts 8-aligned. A wrap frame
 * only needs its first 8 bytes (length = bytes to the ring end). */
#define QUEUE_FRAME_SIZE 16u
#define QUEUE_FRAME_RECORD 1u
#define QUEUE_FRAME_WRAP 2u

/* consumer file: QUEUE_CONSUMER_FILE_SIZE bytes, the consumer's own. */
#define QUEUE_CONSUMER_FILE_SIZE 4096u
#define QUEUE_CONSUMER_MAGIC 0x3130435846504245ull /* "EBPFXC01" little-endian */
#define QUEUE_CON_MAGIC 0             /* u64 */
#define QUEUE_CON_STREAM_ID 8         /* u64, the data file's stream_id */
#define QUEUE_CON_RELEASE_POS 16      /* u64 */
#define QUEUE_CON_SLEEPING 24         /* u32, 1: poll()ing the doorbell */
#define QUEUE_CON_PID 28              /* u32 */
#define QUEUE_CON_STATE_SIZE 32

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
 * more than one link, or a directory that is not ours (or is writable by
 * everyone), and a queue another producer holds. An existing queue is used
 * with its own capacity when opts->capacity is 0. A producer that died at
 * any point is recovered: the sequence stays contiguous. */
struct queue_producer *queue_producer_open(const struct queue_producer_options *opts,
					   char err[QUEUE_ERROR_LEN]);
void queue_producer_close(struct queue_producer *q);

/* Space for one record of `len` payload bytes (8-byte aligned), or NULL
 * when the queue is full (or len > queue_max_payload). Only one reservation
 * may be open: a second queue_reserve abandons the first. When the space
 * cached from the consumer's last release is too small, it reads the
 * consumer file again (one pread). Never blocks. */
void *queue_reserve(struct queue_producer *q, uint32_t len);
/* Publishes the reserved record; returns its sequence number. `len` may
 * shrink the reservation (never grow it). Returns 0 (and commits nothing)
 * when no reservation is open or len is larger than reserved. */
uint64_t queue_commit(struct queue_producer *q, uint32_t len);
/* Wakes the consumer if it said it is sleeping (a full fence, one pread of
 * the consumer file, one write to the doorbell only if it sleeps). Call
 * once per batch, after the batch's commits. Never blocks. */
void queue_notify(struct queue_producer *q);

uint64_t queue_stream_id(const struct queue_producer *q);
uint64_t queue_next_seq(const struct queue_producer *q);
uint64_t queue_capacity(const struct queue_producer *q);
/* Bytes written and not yet released by the consumer (reads the consumer
 * file first). Like the other getters, it may be called while a
 * reservation is open: it never moves or shrinks the reserved space. */
uint64_t queue_used(struct queue_producer *q);
/* Position just past the last committed record. */
uint64_t queue_write_pos(const struct queue_producer *q);

/* ---- consumer (publisher) ---- */

struct queue_consumer; /* opaque */

/* Opens an existing queue (ENOENT in *errno_out when it does not exist yet,
 * so a caller can wait for it; another errno for other failures, EINVAL
 * for a queue it refuses, e.g. another layout version). Creates the
 * consumer file and the doorbell when missing; a new consumer starts at the
 * oldest record the producer still holds (consumer_pos_seen), an existing
 * consumer file at its release position (reset to consumer_pos_seen when
 * it belongs to another stream_id, i.e. an older queue). dir NULL:
 * QUEUE_DEFAULT_DIR. errno_out may be NULL. */
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
 * 1: got one; 0: empty; -1: the data is inconsistent (message in err).
 * Every frame is checked (bounds, kind, seq == previous + 1), so even a
 * buggy producer cannot make the consumer read outside the mapping. */
int queue_read(struct queue_consumer *q, struct queue_record *rec,
	       char err[QUEUE_ERROR_LEN]);
/* The producer may now overwrite everything before pos (a rec.pos from
 * queue_read; one atomic store, cheap, but the producer only looks when it
 * runs short of space). A pos behind the release position or beyond the
 * read cursor is ignored (logged). */
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
uint64_t queue_consumer_read_pos(const struct queue_consumer *q);
uint64_t queue_consumer_release_pos(const struct queue_consumer *q);
/* True when the data file this consumer maps is no longer the queue's
 * (removed, or a new queue made in its place): close and reopen. A
 * restarted producer reuses the same file, so this stays false then.
 * Two fstat calls: check it now and then (e.g. with the stats timer). */
bool queue_consumer_detached(struct queue_consumer *q);

#endif
