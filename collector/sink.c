#include "sink.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "event_fields.h"
#include "log.h"

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t sink_boot_ns(void)
{
	return clock_ns(CLOCK_BOOTTIME);
}

uint64_t sink_unix_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

void sink_refresh_clock(struct sink *s)
{
	/* The realtime sample sits between two boottime samples; their middle
	 * is the best estimate of "the same instant". */
	uint64_t before = sink_boot_ns();
	uint64_t real = sink_unix_ns();
	uint64_t after = sink_boot_ns();
	s->boot_to_unix_ns = (int64_t)(real - (before + (after - before) / 2));
}

void sink_init(struct sink *s, struct queue_producer *queue)
{
	memset(s, 0, sizeof(*s));
	s->queue = queue;
	s->started_ns = sink_boot_ns();
	sink_refresh_clock(s);
}

static void fill_own_header(struct record_header *h, enum record_kind kind, size_t length)
{
	memset(h, 0, sizeof(*h));
	h->kind = (uint16_t)kind;
	h->tracepoint = TP_NONE;
	h->length = (uint32_t)length;
	h->time_ns = sink_unix_ns();
	h->pid = (uint32_t)getpid();
	h->tid = (uint32_t)gettid();
}

/* Writes the pending started record; false if the queue has no room. */
static bool write_started(struct sink *s)
{
	size_t length = sizeof(struct record_header) + sizeof(struct rec_started);
	struct record_header *h = queue_reserve(s->queue, (uint32_t)length);
	if (!h)
		return false;
	fill_own_header(h, RECORD_STARTED, length);
	h->time_ns = s->started_unix_ns;
	memcpy(h + 1, &s->started, sizeof(s->started));
	queue_commit(s->queue, (uint32_t)length);
	s->started_pending = false;
	return true;
}

/* Writes the pending loss record; false if the queue has no room for it. */
static bool write_loss(struct sink *s)
{
	if (s->started_pending && !write_started(s))
		return false;
	size_t length = sizeof(struct record_header) + sizeof(struct rec_loss);
	struct record_header *h = queue_reserve(s->queue, (uint32_t)length);
	if (!h)
		return false;
	fill_own_header(h, RECORD_LOSS, length);
	memcpy(h + 1, s->unreported, sizeof(s->unreported));
	queue_commit(s->queue, (uint32_t)length);
	memset(s->unreported, 0, sizeof(s->unreported));
	s->loss_unreported = false;
	return true;
}

void sink_report_loss(struct sink *s)
{
	if (s->started_pending && !write_started(s))
		return;
	if (s->loss_unreported)
		write_loss(s);
}

/* BPF leaves the bytes after a string's NUL as the ring had them (bytes of
 * an earlier record of the same ring: bpf/extractor.bpf.c says why); the
 * queue gets zeros there. A buffer without a NUL is left alone: the
 * publisher refuses such a record. */
static void zero_string_tails(struct record_header *h, enum tracepoint_id tp)
{
	const struct event_layout *layout = &event_layouts[tp];
	uint8_t *body = (uint8_t *)(h + 1);
	if (h->kind != RECORD_EVENT || h->length < sizeof(*h) + layout->body_size)
		return;
	for (int i = 0; i < layout->field_count; i++) {
		const struct event_field *f = &layout->fields[i];
		if (f->kind != FIELD_STR)
			continue;
		uint8_t *nul = memchr(body + f->offset, 0, f->size);
		if (nul)
			memset(nul, 0, (size_t)(body + f->offset + f->size - nul));
	}
}

void sink_event(struct sink *s, const void *record, size_t length)
{
	const struct record_header *src = record;
	enum tracepoint_id tp = src->tracepoint < TP_COUNT ? src->tracepoint : TP_NONE;

	/* A loss goes into the stream before anything that came after it,
	 * and the started record before everything. */
	struct record_header *dst = NULL;
	if ((!s->started_pending || write_started(s)) && (!s->loss_unreported || write_loss(s)))
		dst = queue_reserve(s->queue, (uint32_t)length);
	if (!dst) {
		s->totals[tp].lost.queue_drops++;
		s->unreported[tp].queue_drops++;
		s->loss_unreported = true;
		return;
	}
	memcpy(dst, record, length);
	dst->length = (uint32_t)length;
	zero_string_tails(dst, tp);
	dst->reserved = 0; /* the drop stamp, ours only */
	dst->time_ns = src->time_ns + (uint64_t)s->boot_to_unix_ns;
	queue_commit(s->queue, (uint32_t)length);
	s->totals[tp].events++;
}

void sink_incomplete(struct sink *s, enum tracepoint_id tp)
{
	s->totals[tp].lost.incomplete++;
	s->unreported[tp].incomplete++;
	s->loss_unreported = true;
}

void sink_bpf_drops(struct sink *s, const uint64_t totals[TP_COUNT])
{
	for (int tp = 1; tp < TP_COUNT; tp++) {
		/* stamps may have accounted some already (never more: BPF
		 * counts drop_counts first) */
		if (totals[tp] <= s->bpf_drops_seen[tp])
			continue;
		uint64_t delta = totals[tp] - s->bpf_drops_seen[tp];
		s->bpf_drops_seen[tp] = totals[tp];
		s->totals[tp].lost.bpf_drops += delta;
		s->unreported[tp].bpf_drops += delta;
		s->loss_unreported = true;
	}
}

void sink_bpf_stamp(struct sink *s, enum tracepoint_id tp, uint32_t stamp)
{
	/* 32-bit serial arithmetic: behind (an event reserved before drops
	 * this sink already reported at a batch end) counts nothing */
	int32_t ahead = (int32_t)(stamp - (uint32_t)s->bpf_drops_seen[tp]);
	if (tp <= TP_NONE || tp >= TP_COUNT || ahead <= 0)
		return;
	s->bpf_drops_seen[tp] += (uint64_t)ahead;
	s->totals[tp].lost.bpf_drops += (uint64_t)ahead;
	s->unreported[tp].bpf_drops += (uint64_t)ahead;
	s->loss_unreported = true;
}

void sink_stats(struct sink *s)
{
	size_t length = sizeof(struct record_header) + sizeof(struct rec_stats);
	sink_report_loss(s);
	if ((s->started_pending && !write_started(s)) || s->loss_unreported) {
		s->records_dropped++;
		log_debug("queue full: stats record not written");
		return;
	}
	struct record_header *h = queue_reserve(s->queue, (uint32_t)length);
	if (!h) {
		s->records_dropped++;
		log_debug("queue full: stats record not written");
		return;
	}
	fill_own_header(h, RECORD_STATS, length);
	struct rec_stats *st = (void *)(h + 1);
	memset(st, 0, sizeof(*st));
	st->queue_capacity = queue_capacity(s->queue);
	st->queue_used = queue_used(s->queue);
	st->uptime_ns = sink_boot_ns() - s->started_ns;
	st->attached = s->attached;
	memcpy(st->tp, s->totals, sizeof(s->totals));
	queue_commit(s->queue, (uint32_t)length);
}

void sink_started(struct sink *s, enum attach_mode mode, uint32_t filter_pid)
{
	struct rec_started *st = &s->started;
	memset(st, 0, sizeof(*st));
	snprintf(st->version, sizeof(st->version), "%s", EXTRACTOR_VERSION);
	st->attach_mode = (uint32_t)mode;
	st->filter_pid = filter_pid;
	st->attached = s->attached;
	s->started_unix_ns = sink_unix_ns();
	s->started_pending = true;
	if (!write_started(s))
		log_warn("queue full: the started record is written as soon as the consumer makes "
			 "room, before anything else");
}
