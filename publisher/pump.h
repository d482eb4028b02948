/* The publisher's loop: queue records -> NATS messages, confirmation,
 * rewind, backpressure, stats, and the SIGTERM drain.
 *
 * Positions and what they mean (all on the loop thread):
 *
 *   release (queue_consumer_release_pos)  everything before it was confirmed
 *                                         by the server and given back to
 *                                         the collector
 *   flush_pos                             the flush in flight confirms up to
 *                                         here when it succeeds
 *   done_pos                              the last record handled: published,
 *                                         or skipped (too large, malformed)
 *   read (queue_consumer_read_pos)        == done_pos between batches
 *
 * Confirmation: every CONFIRM_DELAY_MS, or at once after CONFIRM_MAX_MSGS
 * messages / CONFIRM_MAX_BYTES, a natsConnection_FlushTimeout runs on a
 * worker thread (uv_queue_work), one at a time, covering (release,
 * flush_pos]. On success, and only if no new connection was made since the
 * first unconfirmed record was published (connection generations, see
 * nats_link.h), (release, flush_pos] is confirmed; release moves there,
 * and confirmed_seq to its seq, once the same connection has stayed up
 * SETTLE_MS longer. On a failure nothing is released.
 *
 * Why settle: when nats-server stops cleanly (SIGTERM, SIGINT, systemctl
 * stop), it shuts JetStream down first and closes client connections
 * after; in between it still answers PINGs but drops what clients publish
 * (nats-server 2.9.10: tests/pipeline's outage test lost confirmed records
 * in 3 of 5 clean stops). A flush answered in that window must not release
 * anything; the connection closes a few ms later, and what is still
 * settling is published again after the reconnect, like anything
 * unconfirmed. A server that is killed (SIGKILL) or loses the network is
 * not affected: it does not answer PINGs.
 *
 * Rewind: after a disconnect, a failed publish, or a new connection while
 * records are unconfirmed, the read cursor goes back to release (once no
 * flush is in flight) and everything unconfirmed is published again, in
 * order, after the reconnect. Consumers drop duplicates by (stream_id, seq).
 */
#ifndef EBPF_PUBLISHER_PUMP_H
#define EBPF_PUBLISHER_PUMP_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "encode.h"
#include "nats_link.h"
#include "options.h"
#include "source.h"

#define BATCH_MAX_RECORDS 1000
#define BATCH_MAX_BYTES (4u << 20)
#define CONFIRM_DELAY_MS 5
#define CONFIRM_MAX_MSGS 4096
#define CONFIRM_MAX_BYTES (8u << 20)
#define SETTLE_MS 500
/* natsConnection_Buffered: stop reading above HIGH_WATER_BYTES, read again
 * below LOW_WATER_BYTES. Small on purpose: after a partial socket write,
 * nats.c (event-loop mode) moves the unwritten rest of its buffer to the
 * front, so a buffer of megabytes cost a copy of megabytes per write (8 MB
 * was 13 % of the publisher's CPU with a server slower than it). */
#define HIGH_WATER_BYTES (1 << 20)
#define LOW_WATER_BYTES (512 << 10)
#define HIGH_WATER_CHECK_MS 2
#define ERROR_PAUSE_MS 1000
#define HOUSEKEEPING_MS 1000

struct publisher {
	uv_loop_t *loop;
	const struct publisher_options *opts;
	struct encoder enc;
	struct source src;
	struct nats_link link;

	uv_idle_t drain_idle;       /* active while there is reading to do */
	uv_timer_t confirm_timer;
	uv_timer_t settle_timer;
	uv_timer_t hwm_timer;
	uv_timer_t error_timer;
	uv_timer_t stats_timer;
	uv_timer_t housekeeping_timer;
	uv_timer_t deadline_timer;
	uv_signal_t sigterm, sigint;

	/* the stream */
	uint64_t stream_id;
	uint64_t done_pos, done_seq;
	bool have_unconfirmed;      /* (release, done_pos] is not empty */
	unsigned unconfirmed_gen;   /* connection generation of its first record */
	uint64_t unflushed_msgs, unflushed_bytes; /* since the last flush started */
	uint64_t flush_pos, flush_seq;
	unsigned flush_gen;
	/* confirmed by a flush, not released yet: the oldest settling one,
	 * and the newest confirmation after it (released once it settled) */
	struct settling {
		uint64_t pos, seq, at_ms;
		unsigned gen;
		bool set;
	} settling, settle_next;
	bool need_rewind;
	bool hwm_paused, error_paused;
	bool detached;              /* the data file was replaced: finish it, then switch */
	bool confirmed_known;       /* confirmed_seq is meaningful for this stream */
	uint64_t refused_mark, malformed_mark; /* counted up to this seq (no double counts) */
	uint64_t decode_error_mark;
	int64_t refused_logged_limit;
	unsigned read_errors_logged;

	/* stats (struct publisher_stats in encode.h) */
	uint64_t published, published_bytes, confirmed_seq, last_read_seq;
	uint64_t refused_too_large, malformed, stats_skipped;
	uint64_t decode_errors;     /* P2P messages published with a decode_error */

	/* shutdown */
	int signals;
	bool stopping;              /* SIGTERM/SIGINT seen */
	bool stop_pos_set;
	uint64_t stop_pos;
	bool final_stats_sent;
	bool finished;
	bool ready_written;
	int exit_code;
};

/* Runs the publisher until SIGTERM/SIGINT and the drain; returns the exit
 * status (0; 1 for a fatal setup error, with a message logged). */
int publisher_run(const struct publisher_options *opts);

#endif
