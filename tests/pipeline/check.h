/* The checks every pipeline test applies to every message it reads, in the
 * order the stream holds them: one `struct expect` says what the test
 * fired and accumulates what arrived; pl_check_msg() asserts each message
 * against it.
 *
 * Delivery is at least once: where a test kills the NATS server or the
 * publisher (server_faults, publisher_restarts), a queue record may arrive
 * again. Such a duplicate must be byte for byte its first copy and a seq
 * after the highest confirmed_seq any publisher_stats reported before it
 * (the server had not confirmed it); it is counted and otherwise dropped,
 * so every other check sees each seq once, in order. */
#ifndef EBPF_PIPELINE_CHECK_H
#define EBPF_PIPELINE_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "pipeline.h"
#include "record.h"
#include "scenario.h"

#define TP_MASK_ALL ((((uint32_t)1 << TP_COUNT) - 1) & ~(uint32_t)1)
#define TP_MASK(tp) ((uint32_t)1 << (tp))

struct pub_stats {
	uint64_t stream_id, time_ns, pid, published, published_bytes, confirmed_seq, last_read_seq;
	uint64_t refused_too_large, malformed, nats_errors, reconnects, queue_used, queue_capacity;
	bool connected, collector_present;
};

struct expect {
	struct pl *p;
	/* ---- what the test set up ---- */
	pid_t collector_pid;      /* the publisher's: p->publisher_runs */
	uint32_t attached;        /* tracepoints the collector attached (bit per id) */
	uint64_t queue_capacity;
	const char *attach_mode;  /* "multi" */
	/* the events: fired by this process after start_ns */
	pid_t tracee;
	uint64_t start_ns;
	/* scenario mode: matched against scenario steps, per tracepoint in
	 * order; load mode: the k-th event of a tracepoint is
	 * scenario_load_step(tp, k, p2p_size) */
	bool load_mode;
	uint64_t p2p_size;
	uint32_t main_thread; /* tracepoints fired on the tracee's main thread (tid == pid);
			       * the others from another thread (tid != pid) */
	bool allow_loss;      /* loss records may come (and skipped steps with them) */
	bool server_faults;   /* the NATS server is killed and restarted: reconnects,
			       * NATS errors and duplicates allowed */
	bool publisher_restarts; /* the publisher is killed and restarted: duplicates and
				  * several publisher runs allowed */

	/* ---- what arrived ---- */
	uint64_t msgs;
	uint64_t records;        /* queue records (messages with a seq) */
	uint64_t record_bytes;   /* their MessagePack bytes */
	uint64_t last_seq;
	uint64_t last_kind;      /* RECORD_* of the last queue record */
	size_t next_step[TP_COUNT];
	uint64_t next_counter[TP_COUNT];
	uint64_t events[TP_COUNT];  /* tracepoint events, whole run */
	uint64_t events_total;
	uint64_t last_event_seq;
	uint64_t phase_events;      /* since the last expect_phase() */
	uint64_t started, started_seq;
	/* collector_stats */
	uint64_t collector_stats;
	uint64_t stats_seq;                     /* of the last one */
	uint64_t stats_events[TP_COUNT];        /* of the last one */
	uint64_t stats_lost[TP_COUNT];
	uint64_t stats_uptime_ns;
	bool stats_final;                       /* the last one was written at exit */
	/* loss records */
	uint64_t loss_records;
	uint64_t lost[TP_COUNT];         /* summed over loss records */
	uint64_t pending_loss[TP_COUNT]; /* reported since the tracepoint's last event */
	/* publisher_stats */
	uint64_t publisher_stats;
	uint64_t pub_stats_after_last_record; /* publisher_stats since the last queue record */
	struct pub_stats last_pub;
	bool last_msg_was_pub_stats;
	unsigned pub_run;            /* index in p->publisher_runs of the last publisher_stats */
	uint64_t max_confirmed;      /* highest confirmed_seq reported so far */
	/* duplicates (server_faults, publisher_restarts) */
	uint64_t duplicates;
	uint64_t dup_min_margin;     /* least seq - max_confirmed of a duplicate */
	uint64_t *digests;           /* per seq: FNV-1a of subject and payload */
	size_t digests_cap;
};

void expect_init(struct expect *ex, struct pl *p, uint32_t attached, uint64_t queue_capacity);
/* A new tracee run: its pid, the time before it started, scenario or load. */
void expect_phase(struct expect *ex, pid_t tracee, uint64_t start_ns, bool load_mode,
		  uint64_t p2p_size, uint32_t main_thread);

/* pl_msg_fn: asserts one message against ex and records it. */
void pl_check_msg(void *arg, const struct pl_msg *m);

/* Stops the collector (its last record: the final stats) and the publisher
 * (it publishes everything, then its final stats, flushed), reads the rest
 * of the stream within timeout_ms and checks the end state: the last queue
 * record is the collector's final stats, counting every event; the last
 * message is the publisher's final stats, confirming every seq. Frees what
 * ex holds. */
void expect_finish(struct expect *ex, struct pl_js *js, int timeout_ms);

/* Steps of tp in the scenario. */
uint64_t scenario_count(enum tracepoint_id tp);

#endif
