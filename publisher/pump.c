#include "pump.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "record.h"
#include "tracepoints_table.h"

static uint64_t unix_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void drain_cb(uv_idle_t *h);
static void check_done(struct publisher *p);

static void kick(struct publisher *p)
{
	if (!p->finished && !uv_is_active((uv_handle_t *)&p->drain_idle))
		uv_idle_start(&p->drain_idle, drain_cb);
}

static uint64_t release_pos(const struct publisher *p)
{
	return p->src.q ? queue_consumer_release_pos(p->src.q) : 0;
}

/* Everything before it was confirmed: released, or still settling. */
static uint64_t confirmed_pos(const struct publisher *p)
{
	if (p->settle_next.set)
		return p->settle_next.pos;
	if (p->settling.set)
		return p->settling.pos;
	return release_pos(p);
}

/* What kind of event a queue record is, for log messages. */
static const char *record_event_name(const void *data, uint32_t len)
{
	struct record_header h;
	if (len < sizeof(h))
		return "a short record";
	memcpy(&h, data, sizeof(h));
	switch (h.kind) {
	case RECORD_EVENT:
		return h.tracepoint > TP_NONE && h.tracepoint < TP_COUNT
			       ? tracepoint_table[h.tracepoint].event
			       : "an event of an unknown tracepoint";
	case RECORD_LOSS: return "extractor:loss";
	case RECORD_STATS: return "extractor:collector_stats";
	case RECORD_STARTED: return "extractor:started";
	default: return "a record of an unknown kind";
	}
}

/* ---- ready file ---- */

static void write_ready_file(struct publisher *p)
{
	const char *path = p->opts->ready_file;
	p->ready_written = true;
	if (!path)
		return;
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "we");
	if (!f) {
		log_error("writing ready file %s: %s", tmp, strerror(errno));
		return;
	}
	fprintf(f, "ready pid %d stream_id %016" PRIx64 "\n", (int)getpid(), p->stream_id);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		log_error("writing ready file %s: %s", path, strerror(errno));
}

/* ---- the stream state ---- */

static void reset_stream(struct publisher *p)
{
	struct queue_consumer *q = p->src.q;
	p->stream_id = p->src.stream_id;
	p->done_pos = queue_consumer_release_pos(q);
	p->done_seq = 0;
	p->settling.set = p->settle_next.set = false;
	p->have_unconfirmed = false;
	p->unflushed_msgs = p->unflushed_bytes = 0;
	p->need_rewind = false;
	p->detached = false;
	p->refused_mark = p->malformed_mark = p->decode_error_mark = 0;
	p->last_read_seq = 0;
	p->confirmed_seq = 0;
	p->confirmed_known = false;
	/* Nothing waiting: everything before the write position was confirmed
	 * (next_seq is stored after write_pos: load it first). */
	uint64_t next = atomic_load_explicit((const _Atomic uint64_t *)(p->src.hdr + QUEUE_HDR_NEXT_SEQ),
					     memory_order_acquire);
	if (source_write_pos(&p->src) == p->done_pos && next > 0) {
		p->confirmed_seq = next - 1;
		p->done_seq = p->confirmed_seq;
		p->confirmed_known = true;
	}
	if (p->stopping && !p->stop_pos_set) {
		p->stop_pos = source_write_pos(&p->src);
		p->stop_pos_set = true;
	}
}

static void do_rewind(struct publisher *p)
{
	uint64_t release = release_pos(p);
	if (p->done_pos != release)
		log_info("publishing again from the first record not confirmed (after seq %" PRIu64
			 " of stream %016" PRIx64 ")", p->confirmed_seq, p->stream_id);
	queue_rewind(p->src.q);
	p->done_pos = release;
	p->done_seq = p->confirmed_seq;
	p->settling.set = p->settle_next.set = false; /* published again */
	p->have_unconfirmed = false;
	p->unflushed_msgs = p->unflushed_bytes = 0;
	p->need_rewind = false;
}

/* ---- confirmation ---- */

static bool unconfirmed_outside_flush(const struct publisher *p)
{
	uint64_t base = p->link.flushing ? p->flush_pos : confirmed_pos(p);
	return p->done_pos > base;
}

static void confirm_timer_cb(uv_timer_t *t);

static void confirm_start(struct publisher *p)
{
	if (p->link.flushing || !nats_link_connected(&p->link))
		return;
	uv_timer_stop(&p->confirm_timer);
	p->flush_pos = p->done_pos;
	p->flush_seq = p->done_seq;
	p->flush_gen = p->have_unconfirmed ? p->unconfirmed_gen : nats_link_gen(&p->link);
	p->unflushed_msgs = p->unflushed_bytes = 0;
	if (!nats_link_flush_start(&p->link))
		uv_timer_start(&p->confirm_timer, confirm_timer_cb, 100, 0);
}

static void confirm_maybe(struct publisher *p)
{
	if (!p->src.q || p->link.flushing || !nats_link_connected(&p->link) ||
	    !unconfirmed_outside_flush(p))
		return;
	if (p->stopping || p->unflushed_msgs >= CONFIRM_MAX_MSGS ||
	    p->unflushed_bytes >= CONFIRM_MAX_BYTES)
		confirm_start(p);
	else if (!uv_is_active((uv_handle_t *)&p->confirm_timer))
		uv_timer_start(&p->confirm_timer, confirm_timer_cb, CONFIRM_DELAY_MS, 0);
}

static void confirm_timer_cb(uv_timer_t *t)
{
	struct publisher *p = t->data;
	if (p->src.q && unconfirmed_outside_flush(p))
		confirm_start(p);
}

/* ---- settling (pump.h says why) ---- */

/* Something settles that an earlier connection confirmed. */
static bool settling_elsewhere(const struct publisher *p, unsigned gen)
{
	return (p->settling.set && p->settling.gen != gen) ||
	       (p->settle_next.set && p->settle_next.gen != gen);
}

static void settle_timer_cb(uv_timer_t *t);

static void settle_arm(struct publisher *p)
{
	uint64_t due = p->settling.at_ms + SETTLE_MS, now = uv_now(p->loop);
	uv_timer_start(&p->settle_timer, settle_timer_cb, due > now ? due - now : 0, 0);
}

/* The flush that just succeeded confirmed (confirmed_pos, flush_pos]. */
static void settle_add(struct publisher *p)
{
	struct settling c = { .pos = p->flush_pos, .seq = p->flush_seq, .gen = p->flush_gen,
			      .at_ms = uv_now(p->loop), .set = true };
	if (p->settling.set) {
		p->settle_next = c;
		return;
	}
	p->settling = c;
	settle_arm(p);
}

/* Released when the connection that confirmed it is still up. Otherwise
 * (down, or a new one since) nothing: the rewind after the reconnect
 * publishes it again. */
static void settle_timer_cb(uv_timer_t *t)
{
	struct publisher *p = t->data;
	if (!p->settling.set || !p->src.q)
		return;
	bool up = nats_link_up_now(&p->link);
	if (up && nats_link_gen(&p->link) == p->settling.gen) {
		if (p->settling.pos > release_pos(p)) {
			queue_release(p->src.q, p->settling.pos);
			p->confirmed_seq = p->settling.seq;
			p->confirmed_known = true;
		}
		p->settling = p->settle_next;
		p->settle_next.set = false;
		if (p->settling.set)
			settle_arm(p);
	} else if (!up) {
		/* look again later: the reconnect (a new generation) decides */
		uv_timer_start(&p->settle_timer, settle_timer_cb, SETTLE_MS, 0);
		return;
	} else {
		/* a new connection already (the loop may never have seen this
		 * one down): what settles is published again, like anything
		 * unconfirmed, from the release position */
		p->need_rewind = true;
	}
	if (p->stopping)
		check_done(p);
	kick(p);
}

static void on_flush_done(void *arg, natsStatus status, unsigned gen_after)
{
	struct publisher *p = arg;
	if (p->finished)
		return;
	bool same_connection = gen_after == p->flush_gen;
	if (status == NATS_OK && same_connection) {
		if (p->src.q && p->flush_pos > confirmed_pos(p))
			settle_add(p);
		if (p->done_pos == p->flush_pos)
			p->have_unconfirmed = false;
	} else {
		if (status == NATS_OK)
			log_info("a new NATS connection was made while records were unconfirmed: "
				 "publishing them again");
		else if (status == NATS_CONNECTION_DISCONNECTED || status == NATS_CONNECTION_CLOSED)
			log_debug("flush: %s; nothing released", natsStatus_GetText(status));
		else {
			nats_link_count_error(&p->link);
			log_warn("confirming with a flush to %s failed: %s; nothing released, trying "
				 "again", p->link.servers_text, natsStatus_GetText(status));
		}
		if (!same_connection)
			p->need_rewind = true;
	}
	if (p->stopping)
		check_done(p);
	confirm_maybe(p);
	kick(p);
}

/* ---- publishing ---- */

/* A record is handled: published, or skipped for good. It belongs to the
 * unconfirmed run either way, so it is released in order. */
static void mark_done(struct publisher *p, const struct queue_record *r, unsigned gen,
		      size_t bytes)
{
	p->done_pos = r->pos;
	p->done_seq = r->seq;
	if (!p->have_unconfirmed) {
		p->have_unconfirmed = true;
		p->unconfirmed_gen = gen;
	}
	p->unflushed_msgs++;
	p->unflushed_bytes += bytes;
}

static void refuse_too_large(struct publisher *p, const struct queue_record *r, size_t size,
			     int64_t limit)
{
	if (r->seq > p->refused_mark) {
		p->refused_too_large++;
		p->refused_mark = r->seq;
	}
	const char *ev = record_event_name(r->data, r->len);
	if (limit != p->refused_logged_limit) {
		p->refused_logged_limit = limit;
		log_error("message too large for the NATS server: %s seq %" PRIu64 " (stream %016" PRIx64
			  ", subject %s) is %zu bytes, more than the server's max_payload of %" PRId64
			  " bytes; it is not published (a gap in seq, counted in refused_too_large in "
			  "publisher_stats). Fix: raise max_payload in nats-server.conf (max_payload: "
			  "5242880 is enough for a 4,000,000-byte block). Logged once.",
			  ev, r->seq, p->stream_id, p->enc.subject, size, limit);
	} else {
		log_debug("message too large for max_payload %" PRId64 ": %s seq %" PRIu64
			  " is %zu bytes, not published", limit, ev, r->seq, size);
	}
}

static void count_malformed(struct publisher *p, const struct queue_record *r, const char *why)
{
	if (r->seq <= p->malformed_mark)
		return;
	p->malformed_mark = r->seq;
	p->malformed++;
	if (p->malformed <= 10 || p->malformed % 1000 == 0)
		log_warn("queue %s: record seq %" PRIu64 " (stream %016" PRIx64 ") is malformed, "
			 "skipped (counted in malformed; %" PRIu64 " so far): %s",
			 p->src.dir, r->seq, p->stream_id, p->malformed, why);
}

static void error_timer_cb(uv_timer_t *t)
{
	struct publisher *p = t->data;
	p->error_paused = false;
	kick(p);
}

static void error_pause(struct publisher *p, uint64_t ms)
{
	p->error_paused = true;
	uv_timer_start(&p->error_timer, error_timer_cb, ms, 0);
}

static void hwm_timer_cb(uv_timer_t *t)
{
	struct publisher *p = t->data;
	if (nats_link_connected(&p->link) && nats_link_buffered(&p->link) > LOW_WATER_BYTES)
		return;
	uv_timer_stop(t);
	p->hwm_paused = false;
	kick(p);
}

/* One bounded batch; the idle handle calls it again on the next loop
 * iteration while there is more, so signals, NATS I/O and timers run in
 * between. */
static void drain_batch(struct publisher *p)
{
	struct queue_consumer *q = p->src.q;
	if (p->finished || !q || p->error_paused || p->hwm_paused) {
		uv_idle_stop(&p->drain_idle);
		return;
	}
	if (p->need_rewind) {
		if (p->link.flushing) { /* on_flush_done kicks us */
			uv_idle_stop(&p->drain_idle);
			return;
		}
		do_rewind(p);
	}
	if (!nats_link_connected(&p->link)) {
		uv_idle_stop(&p->drain_idle);
		return;
	}
	if (nats_link_buffered(&p->link) > HIGH_WATER_BYTES) {
		log_debug("NATS client holds %d bytes, more than %d: not reading until it is under %d",
			  nats_link_buffered(&p->link), HIGH_WATER_BYTES, LOW_WATER_BYTES);
		p->hwm_paused = true;
		uv_idle_stop(&p->drain_idle);
		uv_timer_start(&p->hwm_timer, hwm_timer_cb, HIGH_WATER_CHECK_MS, HIGH_WATER_CHECK_MS);
		confirm_maybe(p);
		return;
	}
	unsigned gen = nats_link_gen(&p->link);
	if ((p->have_unconfirmed && gen != p->unconfirmed_gen) || settling_elsewhere(p, gen)) {
		/* a new connection while records were unconfirmed or still
		 * settling: the old one may have lost some, publish them all
		 * again */
		p->need_rewind = true;
		return; /* the idle handle brings us back */
	}
	int64_t max_payload = nats_link_max_payload(&p->link);
	unsigned n = 0;
	size_t bytes = 0;
	bool empty = false;
	while (n < BATCH_MAX_RECORDS && bytes < BATCH_MAX_BYTES) {
		if (p->stop_pos_set && queue_consumer_read_pos(q) >= p->stop_pos) {
			empty = true;
			break;
		}
		struct queue_record r;
		char qerr[QUEUE_ERROR_LEN];
		int got = queue_read(q, &r, qerr);
		if (got == 0) {
			empty = true;
			break;
		}
		if (got < 0) {
			p->read_errors_logged++;
			if (p->read_errors_logged <= 3 || p->read_errors_logged % 100 == 0)
				log_error("%s; not reading for %d ms (a collector bug? the data stays "
					  "where it is)", qerr, ERROR_PAUSE_MS);
			p->need_rewind = true;
			error_pause(p, ERROR_PAUSE_MS);
			break;
		}
		n++;
		p->last_read_seq = r.seq;
		if (!p->confirmed_known) {
			p->confirmed_seq = r.seq - 1;
			p->confirmed_known = true;
		}
		char eerr[ENCODE_ERROR_LEN];
		p->enc.decoded_budget = max_payload > 0 ? (uint64_t)max_payload : 0;
		int rc = encode_record(&p->enc, p->stream_id, r.seq, r.data, r.len, eerr);
		if (rc == ENCODE_NO_MEMORY) {
			log_error("encoding seq %" PRIu64 ": %s; trying again in %d ms", r.seq, eerr,
				  ERROR_PAUSE_MS);
			p->need_rewind = true;
			error_pause(p, ERROR_PAUSE_MS);
			break;
		}
		if (rc != ENCODE_OK) {
			count_malformed(p, &r, eerr);
			mark_done(p, &r, gen, 0);
			continue;
		}
		if (p->enc.decode_failed && r.seq > p->decode_error_mark) {
			p->decode_error_mark = r.seq; /* once per seq, also across a rewind */
			p->decode_errors++;
		}
		size_t size = p->enc.buf.size;
		if (max_payload > 0 && (int64_t)size > max_payload) {
			refuse_too_large(p, &r, size, max_payload);
			mark_done(p, &r, gen, 0);
			continue;
		}
		natsStatus s = nats_link_publish(&p->link, p->enc.subject, p->enc.buf.data, size);
		if (s == NATS_MAX_PAYLOAD) {
			refuse_too_large(p, &r, size, nats_link_max_payload(&p->link));
			mark_done(p, &r, gen, 0);
			continue;
		}
		if (s != NATS_OK) {
			if (s != NATS_INSUFFICIENT_BUFFER && s != NATS_CONNECTION_DISCONNECTED)
				nats_link_count_error(&p->link);
			const char *text = nats_GetLastError(NULL);
			log_warn("cannot publish seq %" PRIu64 " on %s to %s: %s; publishing again "
				 "from the first unconfirmed record once the server takes messages",
				 r.seq, p->enc.subject, p->link.servers_text,
				 s == NATS_INSUFFICIENT_BUFFER ? "not connected (the client buffers nothing)"
				 : text && *text ? text : natsStatus_GetText(s));
			p->need_rewind = true;
			break;
		}
		p->published++;
		p->published_bytes += size;
		bytes += size;
		mark_done(p, &r, gen, size);
	}
	confirm_maybe(p);
	if (!empty)
		return; /* more to read: the idle handle runs us again */
	if (p->stopping) {
		uv_idle_stop(&p->drain_idle);
		check_done(p);
		return;
	}
	/* sleep on the doorbell unless records arrived meanwhile */
	if (queue_prepare_sleep(q))
		uv_idle_stop(&p->drain_idle);
}

static void drain_cb(uv_idle_t *h)
{
	drain_batch(h->data);
}

/* ---- stats ---- */

static void publish_stats(struct publisher *p)
{
	struct publisher_stats st = {
		.stream_id = p->stream_id,
		.published = p->published,
		.published_bytes = p->published_bytes,
		.confirmed_seq = p->confirmed_seq,
		.last_read_seq = p->last_read_seq,
		.refused_too_large = p->refused_too_large,
		.malformed = p->malformed,
		.decode_errors = p->decode_errors,
		.nats_errors = nats_link_errors(&p->link),
		.reconnects = p->link.reconnects,
		.queue_used = p->src.q ? source_write_pos(&p->src) - release_pos(p) : 0,
		.queue_capacity = source_capacity(&p->src),
		.connected = nats_link_connected(&p->link),
		.collector_present = p->src.q && source_collector_present(&p->src),
	};
	log_debug("stats: stream %016" PRIx64 " published %" PRIu64 " (%" PRIu64 " bytes), "
		  "confirmed seq %" PRIu64 ", read seq %" PRIu64 ", refused_too_large %" PRIu64
		  ", malformed %" PRIu64 ", nats_errors %" PRIu64 ", reconnects %" PRIu64
		  ", queue %" PRIu64 "/%" PRIu64 " bytes, connected %d, collector %d, stats "
		  "skipped while disconnected %" PRIu64,
		  st.stream_id, st.published, st.published_bytes, st.confirmed_seq,
		  st.last_read_seq, st.refused_too_large, st.malformed, st.nats_errors,
		  st.reconnects, st.queue_used, st.queue_capacity, st.connected,
		  st.collector_present, p->stats_skipped);
	if (!st.connected) {
		p->stats_skipped++;
		return;
	}
	if (encode_publisher_stats(&p->enc, &st, unix_ns()) != ENCODE_OK) {
		log_error("encoding publisher_stats: out of memory");
		return;
	}
	natsStatus s = nats_link_publish(&p->link, p->enc.subject, p->enc.buf.data,
					 p->enc.buf.size);
	if (s != NATS_OK) {
		p->stats_skipped++;
		p->need_rewind = true; /* the connection may have lost records too */
		if (s != NATS_INSUFFICIENT_BUFFER && s != NATS_CONNECTION_DISCONNECTED)
			nats_link_count_error(&p->link);
		log_debug("publisher_stats not published: %s", natsStatus_GetText(s));
	}
}

static void stats_timer_cb(uv_timer_t *t)
{
	struct publisher *p = t->data;
	publish_stats(p);
	confirm_maybe(p);
}

/* ---- the queue ---- */

static void on_queue_opened(void *arg)
{
	struct publisher *p = arg;
	reset_stream(p);
	if (!p->ready_written)
		write_ready_file(p);
	kick(p);
	if (p->stopping)
		check_done(p);
}

static void on_queue_bell(void *arg)
{
	kick(arg);
}

static void housekeeping_cb(uv_timer_t *t)
{
	struct publisher *p = t->data;
	struct queue_consumer *q = p->src.q;
	if (!q || p->stopping)
		return;
	if (!p->detached && queue_consumer_detached(q)) {
		p->detached = true;
		log_info("queue %s: the data file was replaced or removed (a new queue); publishing "
			 "what the old one (stream %016" PRIx64 ") holds first", p->src.dir,
			 p->stream_id);
	}
	if (!p->detached || p->link.flushing)
		return;
	uint64_t w = source_write_pos(&p->src);
	if (queue_consumer_read_pos(q) >= w && release_pos(p) >= w) {
		log_info("queue %s: stream %016" PRIx64 " published and confirmed up to seq %" PRIu64
			 "; opening the new queue", p->src.dir, p->stream_id, p->confirmed_seq);
		p->detached = false;
		source_reopen(&p->src);
	}
}

/* ---- connection state ---- */

static void on_link_state(void *arg)
{
	struct publisher *p = arg;
	if (nats_link_connected(&p->link)) {
		kick(p);
		if (p->stopping)
			check_done(p);
	} else {
		p->need_rewind = true;
		uv_timer_stop(&p->confirm_timer);
		uv_timer_stop(&p->settle_timer);
	}
}

/* ---- shutdown ---- */

static void close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void close_own_handles(struct publisher *p)
{
	close_handle((uv_handle_t *)&p->drain_idle);
	close_handle((uv_handle_t *)&p->confirm_timer);
	close_handle((uv_handle_t *)&p->settle_timer);
	close_handle((uv_handle_t *)&p->hwm_timer);
	close_handle((uv_handle_t *)&p->error_timer);
	close_handle((uv_handle_t *)&p->stats_timer);
	close_handle((uv_handle_t *)&p->housekeeping_timer);
	close_handle((uv_handle_t *)&p->deadline_timer);
	close_handle((uv_handle_t *)&p->sigterm);
	close_handle((uv_handle_t *)&p->sigint);
}

static void finish(struct publisher *p)
{
	if (p->finished)
		return;
	p->finished = true;
	uint64_t release = release_pos(p);
	if (p->src.q && p->stop_pos_set && release < p->stop_pos)
		log_warn("exiting with records after seq %" PRIu64 " of stream %016" PRIx64
			 " not confirmed: they stay in the queue for the next start",
			 p->confirmed_seq, p->stream_id);
	log_info("exiting: published %" PRIu64 " messages (%" PRIu64 " bytes), confirmed up to "
		 "seq %" PRIu64 ", refused_too_large %" PRIu64 ", malformed %" PRIu64
		 ", nats_errors %" PRIu64 ", reconnects %" PRIu64,
		 p->published, p->published_bytes, p->confirmed_seq, p->refused_too_large,
		 p->malformed, nats_link_errors(&p->link), p->link.reconnects);
	close_own_handles(p);
	source_close(&p->src);
	nats_link_close(&p->link);
}

static void check_done(struct publisher *p)
{
	if (!p->stopping || p->finished)
		return;
	if (p->src.q) {
		if (!p->stop_pos_set) {
			p->stop_pos = source_write_pos(&p->src);
			p->stop_pos_set = true;
		}
		if (release_pos(p) < p->stop_pos) {
			if (queue_consumer_read_pos(p->src.q) >= p->stop_pos)
				confirm_maybe(p);
			return;
		}
	}
	/* everything the queue held is confirmed: say goodbye with the final
	 * stats, flushed like the records */
	if (!p->final_stats_sent && nats_link_connected(&p->link) && !p->link.flushing) {
		p->final_stats_sent = true;
		publish_stats(p);
		if (nats_link_connected(&p->link)) {
			p->flush_pos = p->done_pos;
			p->flush_seq = p->done_seq;
			p->flush_gen = nats_link_gen(&p->link);
			if (nats_link_flush_start(&p->link))
				return; /* on_flush_done calls us again */
		}
	}
	if (p->link.flushing)
		return;
	finish(p);
}

static void deadline_cb(uv_timer_t *t)
{
	struct publisher *p = t->data;
	log_warn("--drain-timeout (%u ms) reached with %s", p->opts->drain_timeout_ms,
		 nats_link_connected(&p->link) ? "records still unconfirmed"
					       : "no connection to NATS");
	finish(p);
}

static void signal_cb(uv_signal_t *h, int signum)
{
	struct publisher *p = h->data;
	p->signals++;
	if (p->stopping) {
		log_warn("%s again: exiting now; records not confirmed (after seq %" PRIu64
			 ") stay in the queue for the next start", strsignal(signum),
			 p->confirmed_seq);
		fflush(stderr);
		_exit(0);
	}
	p->stopping = true;
	if (p->src.q) {
		p->stop_pos = source_write_pos(&p->src);
		p->stop_pos_set = true;
	}
	log_info("%s: publishing what the queue holds for at most %u ms, then exiting",
		 strsignal(signum), p->opts->drain_timeout_ms);
	uv_timer_start(&p->deadline_timer, deadline_cb, p->opts->drain_timeout_ms, 0);
	kick(p);
	check_done(p);
}

/* ---- setup ---- */

int publisher_run(const struct publisher_options *opts)
{
	struct publisher *p = calloc(1, sizeof(*p));
	if (!p) {
		log_error("out of memory");
		return 1;
	}
	char err[1024];
	char eerr[ENCODE_ERROR_LEN];
	p->opts = opts;
	p->refused_logged_limit = -1;
	if (encoder_init(&p->enc, opts->node_name, opts->subject_prefix, eerr) != 0) {
		log_error("%s", eerr);
		free(p);
		return 1;
	}
	p->loop = malloc(sizeof(*p->loop));
	if (!p->loop || uv_loop_init(p->loop) != 0) {
		log_error("cannot create the event loop");
		encoder_free(&p->enc);
		free(p->loop);
		free(p);
		return 1;
	}
	uv_loop_t *loop = p->loop;
	uv_idle_init(loop, &p->drain_idle);
	uv_timer_init(loop, &p->confirm_timer);
	uv_timer_init(loop, &p->settle_timer);
	uv_timer_init(loop, &p->hwm_timer);
	uv_timer_init(loop, &p->error_timer);
	uv_timer_init(loop, &p->stats_timer);
	uv_timer_init(loop, &p->housekeeping_timer);
	uv_timer_init(loop, &p->deadline_timer);
	uv_signal_init(loop, &p->sigterm);
	uv_signal_init(loop, &p->sigint);
	p->drain_idle.data = p->confirm_timer.data = p->hwm_timer.data = p->error_timer.data = p;
	p->settle_timer.data = p;
	p->stats_timer.data = p->housekeeping_timer.data = p->deadline_timer.data = p;
	p->sigterm.data = p->sigint.data = p;
	uv_signal_start(&p->sigterm, signal_cb, SIGTERM);
	uv_signal_start(&p->sigint, signal_cb, SIGINT);

	log_info("ebpf-publisher %s: queue %s, NATS %s, subjects %s.*", EXTRACTOR_VERSION,
		 opts->queue_dir, opts->nats_address, p->enc.prefix);

	const struct nats_link_handlers lh = { on_link_state, on_flush_done };
	const struct source_handlers sh = { on_queue_opened, on_queue_bell };
	if (nats_link_start(&p->link, loop, opts, &lh, p, err, sizeof(err)) != 0) {
		log_error("%s", err);
		p->exit_code = 1;
		p->finished = true;
		close_own_handles(p);
	} else if (source_start(&p->src, loop, opts->queue_dir, &sh, p, err, sizeof(err)) != 0) {
		log_error("%s", err);
		p->exit_code = 1;
		p->finished = true;
		close_own_handles(p);
		source_close(&p->src);
		nats_link_close(&p->link);
	} else {
		uv_timer_start(&p->stats_timer, stats_timer_cb, opts->stats_interval_ms,
			       opts->stats_interval_ms);
		uv_timer_start(&p->housekeeping_timer, housekeeping_cb, HOUSEKEEPING_MS,
			       HOUSEKEEPING_MS);
	}
	uv_run(loop, UV_RUN_DEFAULT);
	int rc = uv_loop_close(loop);
	if (rc != 0)
		log_debug("event loop: %s", uv_strerror(rc));
	int exit_code = p->exit_code;
	encoder_free(&p->enc);
	/* nats.c calls its connection callbacks (closure: p->link) on a thread
	 * of its own, also after the connection is destroyed: p lives until
	 * that thread is gone */
	natsStatus cs = nats_CloseAndWait(2000);
	if (cs != NATS_OK)
		log_debug("nats.c did not stop its threads in time (%s)", natsStatus_GetText(cs));
	if (rc == 0)
		free(loop);
	if (cs == NATS_OK)
		free(p);
	return exit_code;
}
