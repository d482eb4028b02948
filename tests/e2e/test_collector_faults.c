/* Fault injection end to end with real eBPF: losses, pid handling, binary
 * upgrades and restarts. Every test reads the queue the way a consumer does
 * and checks what a user would: exact event counts against what the tracee
 * fired, contiguous sequence numbers, loss records exactly where events
 * went missing, and every field of every event.
 *
 * Load and burst events carry a per-tracepoint counter (scenario_load_step:
 * the k-th event the tracee fired for a tracepoint has counter k, counted
 * only over events whose probe site was reached, i.e. while a tracer was
 * attached). So a gap in the counters is a lost event, a repeat is a
 * duplicate, and the tracee's "fired <event> N" line is the exact number
 * the stream must account for. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "event_fields.h"
#include "harness.h"
#include "scenario.h"
#include "tracepoints_table.h"

#define DEADLINE_MS 60000

static struct e2e env;

static void setup(void)
{
	e2e_require_bpf();
	e2e_setup(&env, "ebpf-tracee");
}

static void teardown(void)
{
	e2e_teardown(&env);
}

TestSuite(faults, .init = setup, .fini = teardown, .timeout = 120);

static uint64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- one event against the step the tracee fired ---- */

static void check_string(const struct scenario_step *step, int arg, const char *field,
			 unsigned buf_len)
{
	const char *expected = step->v[arg].s;
	size_t want = strlen(expected);
	cr_assert_lt(want, buf_len);
	cr_assert_eq(strnlen(field, buf_len), want, "%s arg %d: length %zu, expected %zu",
		     tracepoint_table[step->tp].event, arg, strnlen(field, buf_len), want);
	cr_assert(memcmp(field, expected, want) == 0, "%s arg %d: '%.*s' expected '%s'",
		  tracepoint_table[step->tp].event, arg, (int)want, field, expected);
	for (unsigned i = (unsigned)want; i < buf_len; i++)
		cr_assert_eq(field[i], 0, "%s arg %d: stale byte at %u after the string",
			     tracepoint_table[step->tp].event, arg, i);
}

static void check_field(const struct scenario_step *step, int arg, const struct event_field *f,
			const uint8_t *body, size_t body_len)
{
	const struct scenario_arg_info *info = &scenario_args(step->tp)[arg];
	const uint8_t *at = body + f->offset;
	const char *ev = tracepoint_table[step->tp].event;
	int64_t i64;
	int32_t i32;
	uint32_t u32;
	uint64_t u64;
	uint8_t hash[SCENARIO_HASH_LEN];
	cr_assert_str_eq(info->name, f->name);
	switch (f->kind) {
	case FIELD_I64:
		memcpy(&i64, at, 8);
		cr_assert_eq(i64, step->v[arg].i, "%s #%" PRIu64 ".%s = %" PRId64, ev, step->counter,
			     f->name, i64);
		break;
	case FIELD_U64:
		memcpy(&u64, at, 8);
		cr_assert_eq(u64, step->v[arg].u, "%s #%" PRIu64 ".%s = %" PRIu64, ev, step->counter,
			     f->name, u64);
		break;
	case FIELD_I32:
		memcpy(&i32, at, 4);
		cr_assert_eq(i32, (int32_t)step->v[arg].i, "%s #%" PRIu64 ".%s = %d", ev,
			     step->counter, f->name, i32);
		break;
	case FIELD_U32:
		memcpy(&u32, at, 4);
		cr_assert_eq(u32, (uint32_t)step->v[arg].u, "%s #%" PRIu64 ".%s = %u", ev,
			     step->counter, f->name, u32);
		break;
	case FIELD_BOOL:
		cr_assert_eq(*at, (uint8_t)step->v[arg].i, "%s #%" PRIu64 ".%s", ev, step->counter,
			     f->name);
		break;
	case FIELD_STR: check_string(step, arg, (const char *)at, f->size); break;
	case FIELD_HASH:
		scenario_hash(step->v[arg].hash, hash);
		cr_assert(memcmp(at, hash, SCENARIO_HASH_LEN) == 0, "%s #%" PRIu64 ".%s differs", ev,
			  step->counter, f->name);
		break;
	case FIELD_PAYLOAD: {
		uint64_t size = scenario_payload_size(step);
		cr_assert_eq(body_len, f->offset + size, "%s payload: %zu body bytes for %" PRIu64,
			     ev, body_len, size);
		for (uint64_t i = 0; i < size; i++)
			if (at[i] != scenario_step_payload_byte(step, i))
				cr_assert_fail("%s #%" PRIu64 ": payload byte %" PRIu64
					       " is 0x%02x, expected 0x%02x",
					       ev, step->counter, i, at[i],
					       scenario_step_payload_byte(step, i));
		break;
	}
	}
}

/* The counter of a load/burst event: scenario_load_step() sets every
 * integer argument to it, so the first 64-bit one will do (mempool:added:
 * fee; net messages: peer_id; utxocache coins: value; block_connected:
 * sigops). */
static uint64_t event_counter(const struct record_header *h)
{
	const struct event_layout *layout = &event_layouts[h->tracepoint];
	const uint8_t *body = (const uint8_t *)(h + 1);
	for (int i = 0; i < layout->field_count; i++) {
		const struct event_field *f = &layout->fields[i];
		uint64_t v;
		if (f->kind == FIELD_I64 || f->kind == FIELD_U64) {
			memcpy(&v, body + f->offset, 8);
			return v;
		}
	}
	cr_assert_fail("%s has no 64-bit argument to carry a counter",
		       tracepoint_table[h->tracepoint].event);
	return 0;
}

static void check_load_event(const struct e2e_record *rec, uint64_t counter, uint64_t p2p_size,
			     uint64_t start_ns)
{
	const struct record_header *h = (const void *)rec->data;
	struct scenario_step step;
	scenario_load_step(h->tracepoint, counter, p2p_size, &step);
	cr_assert_eq(h->length, rec->len);
	cr_assert_neq(h->tid, 0);
	cr_assert_eq(h->reserved, 0);
	cr_assert_eq(h->flags, 0, "%s #%" PRIu64 ": flags 0x%x", tracepoint_table[h->tracepoint].event,
		     counter, h->flags);
	cr_assert(h->time_ns >= start_ns - 1000000000ull && h->time_ns <= e2e_unix_ns(),
		  "%s: time_ns %" PRIu64 " is not between the test's start and now",
		  tracepoint_table[h->tracepoint].event, (uint64_t)h->time_ns);
	const struct event_layout *layout = &event_layouts[h->tracepoint];
	const uint8_t *body = rec->data + sizeof(*h);
	size_t body_len = rec->len - sizeof(*h);
	cr_assert_geq(body_len, layout->body_size);
	if (layout->fields[layout->field_count - 1].kind != FIELD_PAYLOAD)
		cr_assert_eq(body_len, layout->body_size);
	for (int arg = 0; arg < layout->field_count; arg++)
		check_field(&step, arg, &layout->fields[arg], body, body_len);
}

/* ---- reading the stream ---- */

#define MAX_PIDS 8

struct per_pid {
	uint32_t pid;
	uint64_t next_counter[TP_COUNT]; /* counter the next event should carry */
	uint64_t events[TP_COUNT];
};

/* Everything a consumer learns from the stream, checked as it comes. */
struct stream {
	uint64_t start_ns;
	uint64_t p2p_size;     /* payload size of load/burst P2P events */
	uint64_t last_seq;     /* 0: nothing read yet */
	uint64_t records;
	struct per_pid pids[MAX_PIDS];
	int npids;
	uint64_t events[TP_COUNT];         /* delivered, whole stream */
	struct loss_counts lost[TP_COUNT]; /* summed over loss records, whole stream */
	uint64_t loss_records;
	/* losses of a tracepoint reported since its last event: the next
	 * event's counter must skip exactly that many */
	uint64_t pending_loss[TP_COUNT];
	/* since the last started record (what stats records count) */
	uint64_t session_events[TP_COUNT];
	struct loss_counts session_lost[TP_COUNT];
	/* started records */
	unsigned started;
	uint64_t started_seq[4];
	uint32_t started_pid[4]; /* the collector that wrote it */
	struct rec_started started_body[4];
	/* after a started record that follows a collector killed mid-stream,
	 * events still in its rings are gone: a counter may jump forward once */
	bool allow_gap;
	uint64_t gaps_after_restart;
	uint64_t events_after_loss; /* events whose counter skipped reported losses */
	/* the last own record (loss, stats, started): its kind and writer */
	uint16_t last_kind;
	uint32_t last_writer;
	uint64_t stats_records;
	struct rec_stats last_stats;
	uint32_t last_stats_pid;
	uint64_t last_stats_time;
	/* kind of the record before the current one, and the writer of the
	 * own record before the current one */
	uint16_t prev_kind;
	uint32_t prev_writer;
	/* own records from this pid are refused (a collector that was
	 * replaced must not write after its successor's started record) */
	uint32_t forbid_writer;
	/* events of this process come from `ebpf-tracee compute` */
	uint32_t compute_pid;
};

static void stream_init(struct stream *s, uint64_t p2p_size)
{
	memset(s, 0, sizeof(*s));
	s->start_ns = e2e_unix_ns();
	s->p2p_size = p2p_size;
}

static struct per_pid *stream_pid(struct stream *s, uint32_t pid)
{
	for (int i = 0; i < s->npids; i++)
		if (s->pids[i].pid == pid)
			return &s->pids[i];
	cr_assert_lt(s->npids, MAX_PIDS, "events from more than %d processes", MAX_PIDS);
	s->pids[s->npids].pid = pid;
	return &s->pids[s->npids++];
}

static uint64_t loss_sum(const struct loss_counts *l)
{
	return l->bpf_drops + l->queue_drops + l->incomplete;
}

/* A field of an event body by its published name. */
static const uint8_t *field_at(const struct record_header *h, const char *name)
{
	const struct event_layout *layout = &event_layouts[h->tracepoint];
	for (int i = 0; i < layout->field_count; i++)
		if (strcmp(layout->fields[i].name, name) == 0)
			return (const uint8_t *)(h + 1) + layout->fields[i].offset;
	cr_assert_fail("%s has no field %s", tracepoint_table[h->tracepoint].event, name);
	return NULL;
}

/* validation:block_connected of `compute` round i (node_stats.c
 * compute_round): hash = i (4 bytes LE, then zeros), height i, inputs 2i,
 * transactions i + 1, sigops -i, duration_ns 7i. */
static void check_compute_block(const struct e2e_record *rec, uint32_t i)
{
	const struct record_header *h = (const void *)rec->data;
	cr_assert_eq(h->tracepoint, TP_VALIDATION_BLOCK_CONNECTED, "compute fired %s",
		     tracepoint_table[h->tracepoint].event);
	cr_assert_eq(rec->len, sizeof(*h) + event_layouts[h->tracepoint].body_size);
	cr_assert_eq(h->flags, 0, "compute round %u: flags 0x%x", i, h->flags);
	cr_assert_eq(h->reserved, 0);
	uint8_t hash[SCENARIO_HASH_LEN] = { 0 };
	memcpy(hash, &i, sizeof(i));
	int32_t i32;
	uint64_t u64;
	int64_t i64;
	cr_assert(memcmp(field_at(h, "block_hash"), hash, sizeof(hash)) == 0,
		  "compute round %u: block_hash", i);
	memcpy(&i32, field_at(h, "height"), 4);
	cr_assert_eq(i32, (int32_t)i);
	memcpy(&i32, field_at(h, "inputs"), 4);
	cr_assert_eq(i32, (int32_t)(i * 2), "compute round %u: inputs %d", i, i32);
	memcpy(&u64, field_at(h, "transactions"), 8);
	cr_assert_eq(u64, (uint64_t)i + 1, "compute round %u: transactions", i);
	memcpy(&i64, field_at(h, "sigops"), 8);
	cr_assert_eq(i64, -(int64_t)i, "compute round %u: sigops", i);
	memcpy(&i64, field_at(h, "duration_ns"), 8);
	cr_assert_eq(i64, (int64_t)(i * 7), "compute round %u: duration_ns", i);
}

static void stream_event(struct stream *s, const struct e2e_record *rec)
{
	const struct record_header *h = (const void *)rec->data;
	cr_assert(h->tracepoint > TP_NONE && h->tracepoint < TP_COUNT, "seq %" PRIu64
		  ": tracepoint %u", rec->seq, h->tracepoint);
	enum tracepoint_id tp = h->tracepoint;
	struct per_pid *p = stream_pid(s, h->pid);
	bool compute = s->compute_pid && h->pid == s->compute_pid;
	int32_t height = 0;
	if (compute)
		memcpy(&height, field_at(h, "height"), 4);
	uint64_t counter = compute ? (uint64_t)(uint32_t)height : event_counter(h);
	uint64_t expected = p->next_counter[tp] + s->pending_loss[tp];
	if (s->allow_gap && counter > expected) {
		s->gaps_after_restart += counter - expected;
		expected = counter;
	}
	cr_assert_eq(counter, expected,
		     "seq %" PRIu64 ": %s of pid %u has counter %" PRIu64 ", expected %" PRIu64
		     " (previous %" PRIu64 " + %" PRIu64 " reported lost in between)",
		     rec->seq, tracepoint_table[tp].event, h->pid, counter, expected,
		     p->next_counter[tp], s->pending_loss[tp]);
	if (compute)
		check_compute_block(rec, (uint32_t)counter);
	else
		check_load_event(rec, counter, s->p2p_size, s->start_ns);
	if (s->pending_loss[tp] && p->events[tp])
		s->events_after_loss++;
	s->allow_gap = false; /* one jump at most, right after the restart */
	p->next_counter[tp] = counter + 1;
	p->events[tp]++;
	s->pending_loss[tp] = 0;
	s->events[tp]++;
	s->session_events[tp]++;
}

static void stream_loss(struct stream *s, const struct e2e_record *rec)
{
	const struct record_header *h = (const void *)rec->data;
	cr_assert_eq(rec->len, sizeof(*h) + sizeof(struct rec_loss));
	const struct rec_loss *l = (const void *)(h + 1);
	uint64_t total = 0;
	cr_assert_eq(loss_sum(&l->tp[TP_NONE]), 0);
	for (int tp = 1; tp < TP_COUNT; tp++) {
		uint64_t n = loss_sum(&l->tp[tp]);
		total += n;
		s->pending_loss[tp] += n;
		s->lost[tp].bpf_drops += l->tp[tp].bpf_drops;
		s->lost[tp].queue_drops += l->tp[tp].queue_drops;
		s->lost[tp].incomplete += l->tp[tp].incomplete;
		s->session_lost[tp].bpf_drops += l->tp[tp].bpf_drops;
		s->session_lost[tp].queue_drops += l->tp[tp].queue_drops;
		s->session_lost[tp].incomplete += l->tp[tp].incomplete;
	}
	cr_assert_gt(total, 0, "seq %" PRIu64 ": a loss record that reports no loss", rec->seq);
	s->loss_records++;
}

static void stream_stats(struct stream *s, const struct e2e_record *rec)
{
	const struct record_header *h = (const void *)rec->data;
	cr_assert_eq(rec->len, sizeof(*h) + sizeof(struct rec_stats));
	const struct rec_stats *st = (const void *)(h + 1);
	/* Cumulative since the collector started: exactly what the stream
	 * holds since its started record (a loss is reported before stats). */
	for (int tp = 1; tp < TP_COUNT; tp++) {
		cr_assert_eq(st->tp[tp].events, s->session_events[tp],
			     "seq %" PRIu64 ": stats count %" PRIu64 " %s events, the stream has %" PRIu64,
			     rec->seq, (uint64_t)st->tp[tp].events, tracepoint_table[tp].event,
			     s->session_events[tp]);
		cr_assert_eq(st->tp[tp].lost.bpf_drops, s->session_lost[tp].bpf_drops,
			     "seq %" PRIu64 ": stats %s bpf_drops %" PRIu64 ", loss records %" PRIu64,
			     rec->seq, tracepoint_table[tp].event, (uint64_t)st->tp[tp].lost.bpf_drops,
			     (uint64_t)s->session_lost[tp].bpf_drops);
		cr_assert_eq(st->tp[tp].lost.queue_drops, s->session_lost[tp].queue_drops,
			     "seq %" PRIu64 ": stats %s queue_drops %" PRIu64 ", loss records %" PRIu64,
			     rec->seq, tracepoint_table[tp].event, (uint64_t)st->tp[tp].lost.queue_drops,
			     (uint64_t)s->session_lost[tp].queue_drops);
		cr_assert_eq(st->tp[tp].lost.incomplete, s->session_lost[tp].incomplete);
	}
	s->stats_records++;
	s->last_stats = *st;
	s->last_stats_pid = h->pid;
	s->last_stats_time = h->time_ns;
}

static void stream_started(struct stream *s, const struct e2e_record *rec)
{
	const struct record_header *h = (const void *)rec->data;
	cr_assert_eq(rec->len, sizeof(*h) + sizeof(struct rec_started));
	cr_assert_lt(s->started, 4);
	const struct rec_started *st = (const void *)(h + 1);
	cr_assert_str_eq(st->version, EXTRACTOR_VERSION);
	s->started_seq[s->started] = rec->seq;
	s->started_pid[s->started] = h->pid;
	s->started_body[s->started] = *st;
	s->started++;
	memset(s->session_events, 0, sizeof(s->session_events));
	memset(s->session_lost, 0, sizeof(s->session_lost));
}

/* Checks one record; returns its kind. Frees nothing: the caller does. */
static uint16_t stream_feed(struct stream *s, const struct e2e_record *rec)
{
	const struct record_header *h = (const void *)rec->data;
	if (s->last_seq)
		cr_assert_eq(rec->seq, s->last_seq + 1, "seq %" PRIu64 " follows %" PRIu64, rec->seq,
			     s->last_seq);
	s->last_seq = rec->seq;
	s->records++;
	cr_assert_geq(rec->len, sizeof(*h));
	cr_assert_eq(h->length, rec->len, "seq %" PRIu64 ": header length %u, record %u", rec->seq,
		     h->length, rec->len);
	switch (h->kind) {
	case RECORD_EVENT: stream_event(s, rec); break;
	case RECORD_LOSS: stream_loss(s, rec); break;
	case RECORD_STATS: stream_stats(s, rec); break;
	case RECORD_STARTED: stream_started(s, rec); break;
	default: cr_assert_fail("seq %" PRIu64 ": record kind %u", rec->seq, h->kind);
	}
	s->prev_kind = s->last_kind;
	s->last_kind = h->kind;
	if (h->kind != RECORD_EVENT) {
		cr_assert_eq(h->tracepoint, TP_NONE);
		cr_assert_neq(h->pid, s->forbid_writer, "seq %" PRIu64 ": a record of the collector "
			      "that was replaced, after its successor started", rec->seq);
		s->prev_writer = s->last_writer;
		s->last_writer = h->pid;
	}
	return h->kind;
}

/* Reads one record into s; false when none arrived within timeout_ms. */
static bool stream_next(struct stream *s, int timeout_ms, uint16_t *kind)
{
	struct e2e_record rec;
	if (!e2e_next_record(&env, &rec, timeout_ms))
		return false;
	uint16_t k = stream_feed(s, &rec);
	if (kind)
		*kind = k;
	free(rec.data);
	return true;
}

/* Everything left in the queue (the collector has exited). */
static void stream_rest(struct stream *s)
{
	while (stream_next(s, 0, NULL))
		;
}

static uint64_t accounted(const struct stream *s, enum tracepoint_id tp)
{
	return s->events[tp] + loss_sum(&s->lost[tp]);
}

/* ---- processes ---- */

/* "fired <event> N" from the tracee's output; -1 if the line is missing. */
static int64_t fired_count(const char *out, enum tracepoint_id tp)
{
	char needle[128];
	snprintf(needle, sizeof(needle), "fired %s ", tracepoint_table[tp].event);
	const char *at = out ? strstr(out, needle) : NULL;
	if (!at)
		return -1;
	return strtoll(at + strlen(needle), NULL, 10);
}

static void stop_collector(int expect_status)
{
	int status;
	kill(env.collector, SIGTERM);
	status = e2e_wait_exit(env.collector, 20000);
	cr_assert_eq(status, expect_status, "the collector exited with %d, expected %d", status,
		     expect_status);
	env.collector = 0;
}

static void start_collector(bool unprivileged, const char *const extra[])
{
	unlink(env.ready_file); /* a restarted collector must write its own */
	e2e_start_collector(&env, unprivileged, extra);
	cr_assert_gt(e2e_wait_ready(&env, 0, DEADLINE_MS), 0, "the collector did not attach");
}

static void path_in_dir(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", env.dir, name);
}

/* Waits for a pid file the tracee writes (after it blocked SIGUSR1). */
static pid_t wait_pid_file(const char *path, pid_t expected)
{
	char needle[32];
	snprintf(needle, sizeof(needle), "%d\n", (int)expected);
	cr_assert(e2e_wait_file_contains(path, needle, DEADLINE_MS),
		  "pid file %s never named pid %d", path, (int)expected);
	return expected;
}

/* Exit status (0-255, 128+signal) if pid has exited, else -1; never waits
 * (e2e_wait_exit sleeps between polls, too slow inside a read loop). */
static int poll_exit(pid_t pid)
{
	int status;
	pid_t r = waitpid(pid, &status, WNOHANG);
	cr_assert_geq(r, 0, "waitpid %d: %s", (int)pid, strerror(errno));
	if (r == 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static char *tracee_output(const char *log, pid_t pid, int timeout_ms)
{
	int status = e2e_wait_exit(pid, timeout_ms);
	char *out = e2e_read_file(log);
	cr_assert_eq(status, 0, "tracee %d exited with %d: %s", (int)pid, status, out ? out : "");
	return out;
}

/* ---- 1. loss accounting ---- */

/* A one-page mempool ring and a small queue nobody reads while the tracee
 * fires 200,000 mempool:added as fast as it can: the ring overflows (BPF
 * drops) and the queue fills (queue drops). Then the test reads it all.
 * Every fired event is either delivered or counted lost, each loss record
 * sits exactly where its events are missing (stream_event checks every
 * counter against the losses reported since the previous event), and the
 * stats agree. */
static void flood(const char *queue_size, uint64_t capacity, bool expect_interleaved)
{
	const enum tracepoint_id tp = TP_MEMPOOL_ADDED;
	const char *extra[] = { "--ring-pages", "mempool=1", "--queue-size", queue_size,
				"--stats-interval", "1", NULL };
	start_collector(true, extra);
	char log[300];
	path_in_dir(log, sizeof(log), "tracee.log");
	const char *argv[] = { env.tracee, "--wait-attached", "load", "--mix", "mempool_added",
			       "--count", "200000", "--rate", "0", NULL };
	struct stream s;
	stream_init(&s, 0);
	s.start_ns -= 60ull * 1000000000ull; /* events fired before this point */
	pid_t tracee = e2e_spawn(argv, log, false);
	int status = -1;
	if (expect_interleaved) {
		/* Read in bursts while the tracee floods: each burst frees room,
		 * the collector puts its loss record there, then events, until
		 * the queue is full again. The pause between bursts is what
		 * lets the queue fill; nothing waits on it for readiness. */
		while ((status = poll_exit(tracee)) < 0) {
			while (stream_next(&s, 0, NULL))
				;
			usleep(100000);
		}
	}
	char *out = status < 0 ? tracee_output(log, tracee, DEADLINE_MS) : e2e_read_file(log);
	cr_assert(status <= 0, "the tracee exited with %d: %s", status, out ? out : "");
	int64_t fired = fired_count(out, tp);
	cr_assert_eq(fired, 200000, "the tracee fired %" PRId64 " of 200000: %s", fired, out);
	free(out);

	/* Now read the rest: the pending loss record is written once there is room. */
	uint64_t deadline = monotonic_ms() + DEADLINE_MS;
	while (accounted(&s, tp) < (uint64_t)fired) {
		cr_assert_lt(monotonic_ms(), deadline,
			     "only %" PRIu64 " delivered + %" PRIu64 " reported lost of %" PRId64
			     " fired", s.events[tp], loss_sum(&s.lost[tp]), fired);
		stream_next(&s, 1000, NULL);
	}
	stop_collector(0);
	stream_rest(&s);

	cr_assert_eq(s.started, 1);
	cr_assert_eq(s.started_seq[0], 1, "the stream starts with the started record");
	cr_assert_eq(accounted(&s, tp), (uint64_t)fired,
		     "%" PRIu64 " delivered + %" PRIu64 " bpf_drops + %" PRIu64 " queue_drops + %" PRIu64
		     " incomplete != %" PRId64 " fired",
		     s.events[tp], (uint64_t)s.lost[tp].bpf_drops, (uint64_t)s.lost[tp].queue_drops,
		     (uint64_t)s.lost[tp].incomplete, fired);
	/* losses after the last delivered event: the tail of the counters */
	cr_assert_eq(s.pids[0].next_counter[tp] + s.pending_loss[tp], (uint64_t)fired);
	cr_assert_eq(s.npids, 1);
	cr_assert_eq(s.pids[0].pid, (uint32_t)tracee);
	cr_assert_gt(s.lost[tp].bpf_drops, 0, "no BPF ring drop: the test did not overflow the ring");
	cr_assert_gt(s.lost[tp].queue_drops, 0, "no queue drop: the test did not fill the queue");
	cr_assert_eq(s.lost[tp].incomplete, 0);
	cr_assert_gt(s.events[tp], 0);
	for (int other = 1; other < TP_COUNT; other++)
		if (other != (int)tp)
			cr_assert_eq(accounted(&s, other), 0, "%s: events or losses",
				     tracepoint_table[other].event);
	/* the collector's last words: the final stats, with the same totals */
	cr_assert_eq(s.last_kind, RECORD_STATS, "the stream does not end with the final stats");
	cr_assert_eq(s.last_stats.tp[tp].events, s.events[tp]);
	cr_assert_eq(s.last_stats.tp[tp].lost.bpf_drops, s.lost[tp].bpf_drops);
	cr_assert_eq(s.last_stats.tp[tp].lost.queue_drops, s.lost[tp].queue_drops);
	cr_assert_eq(s.last_stats.queue_capacity, capacity);
	if (expect_interleaved)
		cr_assert_gt(s.events_after_loss, 0, "no loss between two delivered events: the "
			     "placement of loss records was not exercised");
	fprintf(stderr, "loss (queue %s): fired %" PRId64 ", delivered %" PRIu64 ", bpf_drops %" PRIu64
		", queue_drops %" PRIu64 " in %" PRIu64 " loss records, %" PRIu64
		" events right after a loss\n",
		queue_size, fired, s.events[tp], (uint64_t)s.lost[tp].bpf_drops,
		(uint64_t)s.lost[tp].queue_drops, s.loss_records, s.events_after_loss);
}

/* 64 KiB: the queue fills after a few hundred events, and everything
 * after that is lost (ring or queue) up to the end. */
Test(faults, loss_is_counted_exactly_with_a_tiny_queue)
{
	flood("64K", 64 * 1024, false);
}

/* 1 MiB, read in bursts while the tracee floods: losses (ring and queue)
 * happen between delivered events, and each loss record must sit exactly
 * where its events are missing. */
Test(faults, loss_records_sit_exactly_between_the_events)
{
	flood("1M", 1024 * 1024, true);
}

/* ---- 2. a block's burst with the default ring sizes ---- */

Test(faults, block_burst_arrives_whole_with_default_rings)
{
	const enum tracepoint_id tps[] = { TP_MEMPOOL_REMOVED, TP_UTXOCACHE_SPENT,
					   TP_UTXOCACHE_ADD, TP_NET_INBOUND_MESSAGE };
	const char *extra[] = { "--utxocache-tracepoints", "--queue-size", "64M", NULL };
	start_collector(true, extra);
	struct stream s;
	stream_init(&s, SCENARIO_BURST_P2P_SIZE);
	uint16_t kind;
	cr_assert(stream_next(&s, DEADLINE_MS, &kind) && kind == RECORD_STARTED);

	char log[300];
	path_in_dir(log, sizeof(log), "tracee.log");
	const char *argv[] = { env.tracee, "--wait-attached", "burst", NULL };
	pid_t tracee = e2e_spawn(argv, log, false);
	/* drain while the tracee fires */
	uint64_t deadline = monotonic_ms() + DEADLINE_MS;
	int status = -1;
	while (status < 0) {
		cr_assert_lt(monotonic_ms(), deadline, "the burst did not end");
		stream_next(&s, 20, NULL);
		status = poll_exit(tracee);
	}
	char *out = e2e_read_file(log);
	cr_assert_eq(status, 0, "the tracee failed: %s", out);
	int64_t fired[TP_COUNT] = { 0 };
	int64_t total = 0;
	for (size_t i = 0; i < sizeof(tps) / sizeof(tps[0]); i++) {
		fired[tps[i]] = fired_count(out, tps[i]);
		cr_assert_gt(fired[tps[i]], 0, "no fired line for %s: %s",
			     tracepoint_table[tps[i]].event, out);
		total += fired[tps[i]];
	}
	free(out);
	cr_assert_eq(fired[TP_MEMPOOL_REMOVED], SCENARIO_BURST_TXS);
	cr_assert_eq(fired[TP_UTXOCACHE_SPENT], 2 * SCENARIO_BURST_TXS);
	cr_assert_eq(fired[TP_UTXOCACHE_ADD], 2 * SCENARIO_BURST_TXS);
	uint64_t received = 0;
	while (received < (uint64_t)total) {
		cr_assert_lt(monotonic_ms(), deadline, "only %" PRIu64 " of %" PRId64 " events arrived",
			     received, total);
		stream_next(&s, 1000, NULL);
		received = 0;
		for (int tp = 1; tp < TP_COUNT; tp++)
			received += s.events[tp];
	}
	stop_collector(0);
	stream_rest(&s);
	cr_assert_eq(s.loss_records, 0, "%" PRIu64 " loss records in a burst the default rings hold",
		     s.loss_records);
	cr_assert_eq(s.npids, 1);
	cr_assert_eq(s.pids[0].pid, (uint32_t)tracee);
	for (int tp = 1; tp < TP_COUNT; tp++)
		cr_assert_eq(s.events[tp], (uint64_t)fired[tp], "%s: %" PRIu64 " arrived, %" PRId64
			     " fired", tracepoint_table[tp].event, s.events[tp], fired[tp]);
	cr_assert_eq(s.last_kind, RECORD_STATS);
	for (int tp = 1; tp < TP_COUNT; tp++)
		cr_assert_eq(s.last_stats.tp[tp].events, (uint64_t)fired[tp]);
}

/* ---- 3. which process: --bitcoind-pid, --bitcoind-pid-file, neither ---- */

/* A load tracee that waits for SIGUSR1 after writing its pid file. */
static pid_t spawn_waiting_tracee(const char *pid_file, const char *log, const char *count,
				  const char *rate)
{
	const char *argv[] = { env.tracee, "--pid-file", pid_file, "--wait-signal",
			       "--wait-attached", "load", "--mix", "mempool_added", "--count",
			       count, "--rate", rate, NULL };
	pid_t pid = e2e_spawn(argv, log, false);
	wait_pid_file(pid_file, pid);
	return pid;
}

static const struct per_pid *find_pid(const struct stream *s, pid_t pid)
{
	for (int i = 0; i < s->npids; i++)
		if (s->pids[i].pid == (uint32_t)pid)
			return &s->pids[i];
	return NULL;
}

static uint64_t events_of(const struct stream *s, pid_t pid, enum tracepoint_id tp)
{
	const struct per_pid *p = find_pid(s, pid);
	return p ? p->events[tp] : 0;
}

Test(faults, bitcoind_pid_filters_other_processes_of_the_binary)
{
	const enum tracepoint_id tp = TP_MEMPOOL_ADDED;
	char pid_a[300], pid_b[300], log_a[300], log_b[300], arg[32];
	path_in_dir(pid_a, sizeof(pid_a), "a.pid");
	path_in_dir(pid_b, sizeof(pid_b), "b.pid");
	path_in_dir(log_a, sizeof(log_a), "a.log");
	path_in_dir(log_b, sizeof(log_b), "b.log");
	pid_t a = spawn_waiting_tracee(pid_a, log_a, "3000", "20000");
	snprintf(arg, sizeof(arg), "%d", (int)a);
	const char *extra[] = { "--bitcoind-pid", arg, NULL };
	start_collector(true, extra);
	pid_t b = spawn_waiting_tracee(pid_b, log_b, "3000", "20000");
	cr_assert_eq(kill(a, SIGUSR1), 0);
	cr_assert_eq(kill(b, SIGUSR1), 0);
	char *out_a = tracee_output(log_a, a, DEADLINE_MS);
	char *out_b = tracee_output(log_b, b, DEADLINE_MS);
	cr_assert_eq(fired_count(out_a, tp), 3000, "%s", out_a);
	/* B's probe sites are reached too (the semaphores are per binary):
	 * only the tgid filter keeps its events out */
	cr_assert_eq(fired_count(out_b, tp), 3000, "%s", out_b);
	free(out_a);
	free(out_b);

	struct stream s;
	stream_init(&s, 0);
	uint64_t deadline = monotonic_ms() + DEADLINE_MS;
	while (events_of(&s, a, tp) < 3000) {
		cr_assert_lt(monotonic_ms(), deadline, "only %" PRIu64 " of A's 3000 events arrived",
			     events_of(&s, a, tp));
		stream_next(&s, 1000, NULL);
	}
	stop_collector(0);
	stream_rest(&s);
	cr_assert_eq(s.started, 1);
	cr_assert_eq(s.started_body[0].filter_pid, (uint32_t)a);
	cr_assert_eq(events_of(&s, b, tp), 0, "%" PRIu64 " events of the other process arrived",
		     events_of(&s, b, tp));
	cr_assert_eq(s.npids, 1, "events from %d processes", s.npids);
	cr_assert_eq(s.events[tp], 3000);
	cr_assert_eq(s.loss_records, 0);
}

static void wait_following(pid_t pid)
{
	char needle[64];
	snprintf(needle, sizeof(needle), "following bitcoind pid %d\n", (int)pid);
	cr_assert(e2e_wait_file_contains(env.collector_log, needle, DEADLINE_MS),
		  "the collector never followed pid %d", (int)pid);
}

Test(faults, bitcoind_pid_file_follows_a_restarted_bitcoind_only)
{
	const enum tracepoint_id tp = TP_MEMPOOL_ADDED;
	char pid_file[300], pid_c[300], log_a[300], log_b[300], log_c[300];
	path_in_dir(pid_file, sizeof(pid_file), "bitcoind.pid");
	path_in_dir(pid_c, sizeof(pid_c), "c.pid");
	path_in_dir(log_a, sizeof(log_a), "a.log");
	path_in_dir(log_b, sizeof(log_b), "b.log");
	path_in_dir(log_c, sizeof(log_c), "c.log");
	const char *extra[] = { "--bitcoind-pid-file", pid_file, NULL };
	start_collector(true, extra); /* no pid file yet */

	pid_t a = spawn_waiting_tracee(pid_file, log_a, "2000", "20000");
	wait_following(a);
	cr_assert_eq(kill(a, SIGUSR1), 0);
	char *out = tracee_output(log_a, a, DEADLINE_MS);
	cr_assert_eq(fired_count(out, tp), 2000, "%s", out);
	free(out);

	/* bitcoind restarts: a new process rewrites the pid file; a third
	 * process of the same binary fires at the same time */
	pid_t b = spawn_waiting_tracee(pid_file, log_b, "2000", "20000");
	wait_following(b);
	pid_t c = spawn_waiting_tracee(pid_c, log_c, "2000", "20000");
	cr_assert_eq(kill(b, SIGUSR1), 0);
	cr_assert_eq(kill(c, SIGUSR1), 0);
	out = tracee_output(log_b, b, DEADLINE_MS);
	cr_assert_eq(fired_count(out, tp), 2000, "%s", out);
	free(out);
	out = tracee_output(log_c, c, DEADLINE_MS);
	cr_assert_eq(fired_count(out, tp), 2000, "%s", out);
	free(out);

	struct stream s;
	stream_init(&s, 0);
	uint64_t deadline = monotonic_ms() + DEADLINE_MS;
	while (events_of(&s, a, tp) + events_of(&s, b, tp) < 4000) {
		cr_assert_lt(monotonic_ms(), deadline, "A: %" PRIu64 ", B: %" PRIu64 " of 2000 each",
			     events_of(&s, a, tp), events_of(&s, b, tp));
		stream_next(&s, 1000, NULL);
	}
	stop_collector(0);
	stream_rest(&s);
	cr_assert_eq(events_of(&s, a, tp), 2000);
	cr_assert_eq(events_of(&s, b, tp), 2000);
	cr_assert_eq(events_of(&s, c, tp), 0, "%" PRIu64 " events of a process not in the pid file",
		     events_of(&s, c, tp));
	cr_assert_eq(s.npids, 2);
	/* A's events all come before B's */
	cr_assert_eq(s.pids[0].pid, (uint32_t)a);
	cr_assert_eq(s.loss_records, 0);
}

Test(faults, without_a_pid_every_new_process_is_followed)
{
	const enum tracepoint_id tp = TP_MEMPOOL_ADDED;
	start_collector(true, NULL);
	pid_t pids[2];
	char log[300];
	path_in_dir(log, sizeof(log), "tracee.log");
	for (int i = 0; i < 2; i++) {
		unlink(log);
		const char *argv[] = { env.tracee, "--wait-attached", "load", "--mix",
				       "mempool_added", "--count", "2000", "--rate", "0", NULL };
		pids[i] = e2e_spawn(argv, log, false);
		char *out = tracee_output(log, pids[i], DEADLINE_MS);
		cr_assert_eq(fired_count(out, tp), 2000, "%s", out);
		free(out);
	}
	cr_assert_neq(pids[0], pids[1]);
	struct stream s;
	stream_init(&s, 0);
	uint64_t deadline = monotonic_ms() + DEADLINE_MS;
	while (s.events[tp] < 4000) {
		cr_assert_lt(monotonic_ms(), deadline, "only %" PRIu64 " of 4000 events arrived",
			     s.events[tp]);
		stream_next(&s, 1000, NULL);
	}
	stop_collector(0);
	stream_rest(&s);
	cr_assert_eq(s.started, 1, "the collector restarted");
	cr_assert_eq(s.npids, 2);
	cr_assert_eq(events_of(&s, pids[0], tp), 2000);
	cr_assert_eq(events_of(&s, pids[1], tp), 2000);
	cr_assert_eq(s.loss_records, 0);
}

/* ---- 4. binary upgrades ---- */

/* Only validation:block_connected (one probe): `compute` goes through every
 * probe site a million times, so with the default groups attached it would
 * fire 12 million events (90 s here); with this one, a million in seconds,
 * each of which the test checks. */
static const char *const upgrade_collector[] = {
	"--no-p2pmsg-tracepoints", "--no-connection-tracepoints", "--no-mempool-tracepoints",
	"--queue-size", "64M", "--stats-interval", "1", NULL
};
#define UPGRADE_TP TP_VALIDATION_BLOCK_CONNECTED

static void run_load_and_expect(struct stream *s, uint64_t count)
{
	const enum tracepoint_id tp = UPGRADE_TP;
	char log[300], n[32];
	path_in_dir(log, sizeof(log), "load.log");
	unlink(log);
	snprintf(n, sizeof(n), "%" PRIu64, count);
	const char *argv[] = { env.tracee, "--wait-attached", "--timeout", "20", "load", "--mix",
			       "validation_block_connected", "--count", n, "--rate", "0", NULL };
	pid_t pid = e2e_spawn(argv, log, false);
	char *out = tracee_output(log, pid, DEADLINE_MS);
	cr_assert_eq(fired_count(out, tp), (int64_t)count, "%s", out);
	free(out);
	uint64_t deadline = monotonic_ms() + DEADLINE_MS;
	while (events_of(s, pid, tp) < count) {
		cr_assert_lt(monotonic_ms(), deadline, "only %" PRIu64 " of %" PRIu64 " events arrived",
			     events_of(s, pid, tp), count);
		stream_next(s, 1000, NULL);
	}
}

/* Runs `compute` from the binary path while the collector is attached:
 * it prints exactly the known result (its instructions are intact: no
 * breakpoint of an old attachment in the middle of one), and each of its
 * million block_connected events is delivered with exactly its values or
 * counted lost, the loss records exactly where events are missing. */
static void compute_and_expect(struct stream *s)
{
	const enum tracepoint_id tp = UPGRADE_TP;
	char log[300], want[64];
	path_in_dir(log, sizeof(log), "compute.log");
	unlink(log);
	const char *argv[] = { env.tracee, "compute", NULL };
	uint64_t lost_before = loss_sum(&s->lost[tp]);
	pid_t pid = e2e_spawn(argv, log, false);
	s->compute_pid = (uint32_t)pid;
	uint64_t deadline = monotonic_ms() + DEADLINE_MS;
	int status = -1;
	while (status < 0) {
		cr_assert_lt(monotonic_ms(), deadline, "compute did not end");
		stream_next(s, 20, NULL);
		status = poll_exit(pid);
	}
	char *out = e2e_read_file(log);
	snprintf(want, sizeof(want), "compute 0x%016" PRIx64 "\n", SCENARIO_COMPUTE_RESULT);
	cr_assert_eq(status, 0, "compute failed (%d): %s", status, out);
	cr_assert_str_eq(out, want, "a process of the new file computed something else: its "
				    "instructions were not intact");
	free(out);
	const uint64_t rounds = SCENARIO_COMPUTE_ITERATIONS;
	while (events_of(s, pid, tp) + loss_sum(&s->lost[tp]) - lost_before < rounds) {
		cr_assert_lt(monotonic_ms(), deadline, "compute: %" PRIu64 " delivered + %" PRIu64
			     " lost of %" PRIu64, events_of(s, pid, tp),
			     loss_sum(&s->lost[tp]) - lost_before, rounds);
		stream_next(s, 1000, NULL);
	}
	const struct per_pid *p = find_pid(s, pid);
	cr_assert_not_null(p, "no event of compute arrived");
	cr_assert_gt(p->events[tp], rounds / 10, "only %" PRIu64 " of compute's events arrived",
		     p->events[tp]);
	/* the losses after its last delivered event are its tail */
	cr_assert_eq(p->next_counter[tp] + s->pending_loss[tp], rounds);
	cr_assert_eq(events_of(s, pid, tp) + loss_sum(&s->lost[tp]) - lost_before, rounds);
	s->pending_loss[tp] = 0;
	fprintf(stderr, "compute: %" PRIu64 " of %" PRIu64 " events delivered, the rest counted lost\n",
		p->events[tp], rounds);
}

static void tracee_build(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", e2e_tracee_dir, name);
}

static int ready_attached(unsigned *generation)
{
	int attached = -1;
	char *text = e2e_read_file(env.ready_file);
	if (!text || sscanf(text, "attached %d generation %u", &attached, generation) != 2)
		attached = -1;
	free(text);
	return attached;
}

Test(faults, upgrade_by_rename_is_attached_again)
{
	start_collector(true, upgrade_collector);
	struct stream s;
	stream_init(&s, 0);
	run_load_and_expect(&s, 500);

	/* install(1) and package managers: a new file renamed over the path */
	char src[512], tmp[300];
	tracee_build(src, sizeof(src), "ebpf-tracee-nowallet");
	path_in_dir(tmp, sizeof(tmp), "bitcoind.new");
	e2e_copy_file(src, tmp);
	cr_assert_eq(rename(tmp, env.tracee), 0, "rename: %s", strerror(errno));
	cr_assert_eq(e2e_wait_ready(&env, 1, DEADLINE_MS), 1, "not attached again after the upgrade");

	compute_and_expect(&s);
	run_load_and_expect(&s, 1000);
	stop_collector(0);
	stream_rest(&s);
	cr_assert_eq(s.started, 1, "the collector restarted");
	cr_assert_eq(s.npids, 3);
	cr_assert_eq(s.last_kind, RECORD_STATS);
}

static bool detached_cond(void *arg)
{
	(void)arg;
	unsigned generation;
	return ready_attached(&generation) == 0;
}

/* Until the second stats record stamped after t: by then the collector's
 * loop has gone round at least once after t, so every inotify event queued
 * before t has been handled. Returns that record's attached bits. */
static uint32_t second_stats_after(struct stream *s, uint64_t t)
{
	int seen = 0;
	uint64_t deadline = monotonic_ms() + DEADLINE_MS;
	while (seen < 2) {
		cr_assert_lt(monotonic_ms(), deadline, "no stats records");
		uint16_t kind;
		if (stream_next(s, 1000, &kind) && kind == RECORD_STATS && s->last_stats_time > t)
			seen++;
	}
	return s->last_stats.attached;
}

/* cp of another build onto the running path (same inode), or, with
 * hold_open, what cp does by hand (open with O_TRUNC, write) with a check
 * in the middle: all the new bytes written, the file still open. */
static void overwrite_in_place(bool hold_open)
{
	start_collector(true, upgrade_collector);
	struct stream s;
	stream_init(&s, 0);
	run_load_and_expect(&s, 500);
	cr_assert_neq(s.started_body[0].attached, 0);

	char src[512];
	tracee_build(src, sizeof(src), "ebpf-tracee-nowallet");
	if (!hold_open) {
		/* cp(1) onto the existing file: O_TRUNC, write (or
		 * copy_file_range), close; usually one inotify batch */
		char out[512];
		const char *cp[] = { "/bin/cp", src, env.tracee, NULL };
		cr_assert_eq(e2e_run(cp, out, sizeof(out), DEADLINE_MS), 0, "cp: %s", out);
		cr_assert_eq(e2e_wait_ready(&env, 1, DEADLINE_MS), 1,
			     "the collector did not attach again after cp");
		/* the links went at the first write, before the new attach */
		char *log = e2e_read_file(env.collector_log);
		const char *detached = log ? strstr(log, "is being modified in place") : NULL;
		const char *attached = log ? strstr(log, "generation 1") : NULL;
		cr_assert_not_null(detached, "the collector never dropped its links: %s", log);
		cr_assert_not_null(attached);
		cr_assert_lt(detached, attached, "attached again before dropping the old links: %s",
			     log);
		free(log);
	} else {
		char *content = e2e_read_file(src);
		struct stat st;
		cr_assert_eq(stat(src, &st), 0);
		size_t size = (size_t)st.st_size;
		int fd = open(env.tracee, O_WRONLY | O_TRUNC | O_CLOEXEC);
		cr_assert_geq(fd, 0, "open %s: %s", env.tracee, strerror(errno));
		for (size_t off = 0; off < size;) {
			size_t n = size - off < 4096 ? size - off : 4096;
			cr_assert_eq(write(fd, content + off, n), (ssize_t)n);
			off += n;
		}
		free(content);
		/* the links go at the first write */
		cr_assert(e2e_wait_until(detached_cond, NULL, DEADLINE_MS),
			  "the collector kept its links on a file written in place");
		cr_assert(e2e_file_contains(env.collector_log, "is being modified in place"));
		/* Every byte of a valid binary is there, but the writer may
		 * still change it: no attach until it closes the file. */
		uint32_t attached = second_stats_after(&s, e2e_unix_ns());
		cr_assert_eq(attached, 0, "stats say probes are attached while the file is still "
					  "open for writing");
		unsigned generation = 0;
		cr_assert_eq(ready_attached(&generation), 0, "the collector attached (generation %u) "
			     "to a file still open for writing", generation);
		cr_assert_eq(generation, 0);
		cr_assert_eq(close(fd), 0);
		cr_assert_eq(e2e_wait_ready(&env, 1, DEADLINE_MS), 1,
			     "the collector did not attach again after the write ended");
	}
	compute_and_expect(&s);
	run_load_and_expect(&s, 1000);
	stop_collector(0);
	stream_rest(&s);
	cr_assert_eq(s.started, 1);
	cr_assert_eq(s.npids, 3);
	cr_assert_eq(s.last_kind, RECORD_STATS);
}

Test(faults, overwrite_in_place_drops_links_then_attaches_again)
{
	overwrite_in_place(false);
}

Test(faults, no_attach_while_the_file_is_still_being_written)
{
	overwrite_in_place(true);
}

/* ---- 5. restarts ---- */

/* A long load at a steady rate; the test restarts the collector in the
 * middle of it. */
static pid_t spawn_steady_load(const char *log)
{
	const char *argv[] = { env.tracee, "--wait-attached", "load", "--mix", "mempool_added",
			       "--count", "30000", "--rate", "10000", NULL };
	return e2e_spawn(argv, log, false);
}

/* A u64 of the queue's data header (common/queue.h QUEUE_HDR_*). */
static uint64_t queue_header(size_t offset)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/" QUEUE_DATA_FILE, env.queue_dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	uint64_t v = 0;
	cr_assert_eq(pread(fd, &v, sizeof(v), (off_t)offset), (ssize_t)sizeof(v));
	close(fd);
	return v;
}

struct backlog_wait {
	uint64_t bytes;
};

static bool backlog_cond(void *arg)
{
	const struct backlog_wait *w = arg;
	return queue_header(QUEUE_HDR_WRITE_POS) - queue_consumer_read_pos(env.consumer) >= w->bytes;
}

/* Stops (SIGTERM) or kills (SIGKILL) the collector in the middle of a
 * steady stream while the queue holds records nobody has read yet, starts
 * it again on the same queue, and reads everything. What was in the queue
 * is all there, once; the new started record takes the next sequence
 * number; events fired while no collector was attached were never fired
 * (the semaphores were 0), so the counters continue with one jump at most,
 * right at the restart: events still in the rings of a killed collector,
 * and those bitcoind fired while the kernel was removing each uprobe (it
 * drops the program before the breakpoint and the semaphore, one RCU grace
 * period apart: nothing in user space sees those). */
static void restart_mid_stream(int signal_number)
{
	const enum tracepoint_id tp = TP_MEMPOOL_ADDED;
	const char *extra[] = { "--queue-size", "64M", "--stats-interval", "1", NULL };
	start_collector(true, extra);
	pid_t first = env.collector;
	struct stream s;
	stream_init(&s, 0);
	char log[300];
	path_in_dir(log, sizeof(log), "tracee.log");
	pid_t tracee = spawn_steady_load(log);
	uint64_t deadline = monotonic_ms() + DEADLINE_MS;
	while (s.events[tp] < 2000) {
		cr_assert_lt(monotonic_ms(), deadline, "only %" PRIu64 " events", s.events[tp]);
		stream_next(&s, 1000, NULL);
	}
	uint64_t stream_id = queue_header(QUEUE_HDR_STREAM_ID);
	cr_assert_eq(queue_consumer_stream_id(env.consumer), stream_id);
	/* leave 500 events unread in the queue */
	struct backlog_wait backlog = { 500 * 96 };
	cr_assert(e2e_wait_until(backlog_cond, &backlog, DEADLINE_MS), "the collector stopped writing");
	uint64_t signalled_ns = e2e_unix_ns();
	kill(first, signal_number);
	int status = e2e_wait_exit(first, 20000);
	cr_assert_eq(status, signal_number == SIGTERM ? 0 : 128 + signal_number,
		     "the collector exited with %d", status);
	env.collector = 0;
	uint64_t next_seq = queue_header(QUEUE_HDR_NEXT_SEQ);
	cr_assert_gt(next_seq, s.last_seq + 500, "fewer than 500 records left unread");
	cr_assert_eq(poll_exit(tracee), -1, "the load ended before the restart");

	start_collector(true, extra);
	pid_t second = env.collector;
	/* read until the tracee is done and all it fired is accounted for */
	int64_t fired = -1;
	uint64_t last_of_first = 0; /* the first collector's last event's counter + 1 */
	uint64_t late_events = 0;   /* first session, fired after the signal */
	while (fired < 0 || s.events[tp] + s.gaps_after_restart < (uint64_t)fired) {
		cr_assert_lt(monotonic_ms(), deadline, "%" PRIu64 " events of %" PRId64, s.events[tp],
			     fired);
		struct e2e_record rec;
		if (e2e_next_record(&env, &rec, 100)) {
			const struct record_header *h = (const void *)rec.data;
			if (s.started == 1 && h->kind == RECORD_EVENT && h->time_ns > signalled_ns)
				late_events++;
			uint16_t kind = stream_feed(&s, &rec);
			free(rec.data);
			if (kind == RECORD_STARTED) {
				cr_assert_eq(s.started, 2);
				cr_assert_eq(s.started_pid[1], (uint32_t)second);
				cr_assert_eq(s.started_seq[1], next_seq, "the restarted collector's started "
					     "record has seq %" PRIu64 ", the queue's next was %" PRIu64,
					     s.started_seq[1], next_seq);
				s.forbid_writer = (uint32_t)first;
				last_of_first = s.pids[0].next_counter[tp];
				s.allow_gap = true;
				if (signal_number == SIGTERM) {
					/* right after the first collector's final stats */
					cr_assert_eq(s.prev_kind, RECORD_STATS, "the started record follows "
						     "a record of kind %u", s.prev_kind);
					cr_assert_eq(s.prev_writer, (uint32_t)first);
				}
			}
		}
		if (fired < 0 && poll_exit(tracee) == 0) {
			char *out = e2e_read_file(log);
			fired = fired_count(out, tp);
			cr_assert_gt(fired, 0, "%s", out);
			free(out);
		}
	}
	stop_collector(0);
	stream_rest(&s);

	cr_assert_eq(queue_header(QUEUE_HDR_STREAM_ID), stream_id, "the stream id changed");
	cr_assert_eq(queue_consumer_stream_id(env.consumer), stream_id);
	cr_assert(!queue_consumer_detached(env.consumer), "the restart made a new queue");
	cr_assert_eq(s.started, 2, "%u started records", s.started);
	cr_assert_eq(s.started_seq[0], 1);
	cr_assert_eq(s.started_pid[0], (uint32_t)first);
	cr_assert_eq(s.npids, 1);
	cr_assert_eq(s.loss_records, 0);
	cr_assert_gt(s.pids[0].next_counter[tp], last_of_first, "no event after the restart");
	cr_assert_eq(s.pids[0].next_counter[tp], (uint64_t)fired,
		     "the last event has counter %" PRIu64 ", the tracee fired %" PRId64,
		     s.pids[0].next_counter[tp] - 1, fired);
	cr_assert_eq(s.events[tp] + s.gaps_after_restart, (uint64_t)fired);
	if (signal_number == SIGTERM) {
		/* the stopping collector drained what the probes wrote while
		 * it detached (half a second of events with a dozen links) */
		cr_assert_gt(late_events, 0, "no event fired after SIGTERM reached the queue");
		/* what is left: the kernel's window, milliseconds of events */
		cr_assert_lt(s.gaps_after_restart, 1000, "%" PRIu64 " events lost at a clean stop",
			     s.gaps_after_restart);
	}
	fprintf(stderr, "restart (signal %d): %" PRId64 " fired, %" PRIu64 " delivered, %" PRIu64
		" fired around the restart and not delivered, %" PRIu64 " drained after the signal\n",
		signal_number, fired, s.events[tp], s.gaps_after_restart, late_events);
}

Test(faults, collector_stopped_mid_stream_continues_the_sequence)
{
	restart_mid_stream(SIGTERM);
}

Test(faults, collector_killed_mid_stream_leaves_a_consistent_queue)
{
	restart_mid_stream(SIGKILL);
}

static void perf_mode_binary_change(bool in_place)
{
	const char *extra[] = { "--attach-mode", "perf", NULL };
	start_collector(false, extra); /* perf mode attaches with CAP_SYS_ADMIN */
	char src[512];
	tracee_build(src, sizeof(src), "ebpf-tracee");
	if (in_place) {
		e2e_copy_file(src, env.tracee);
	} else {
		char tmp[300];
		path_in_dir(tmp, sizeof(tmp), "bitcoind.new");
		e2e_copy_file(src, tmp);
		cr_assert_eq(rename(tmp, env.tracee), 0);
	}
	int status = e2e_wait_exit(env.collector, DEADLINE_MS);
	env.collector = 0;
	char *log = e2e_read_file(env.collector_log);
	cr_assert_eq(status, 1, "perf mode collector exited with %d after the binary changed: %s",
		     status, log);
	cr_assert(log && strstr(log, "cannot attach again without CAP_SYS_ADMIN"),
		  "no message saying why: %s", log);
	free(log);
	/* its records are whole: started, then the final stats */
	struct stream s;
	stream_init(&s, 0);
	stream_rest(&s);
	cr_assert_eq(s.started, 1);
	cr_assert_eq(s.last_kind, RECORD_STATS);
}

Test(faults, perf_mode_exits_when_the_binary_is_replaced)
{
	perf_mode_binary_change(false);
}

Test(faults, perf_mode_exits_when_the_binary_is_written_in_place)
{
	perf_mode_binary_change(true);
}


/* The publisher is down and the queue is full when the collector restarts:
 * its started record must still come, as soon as there is room, before
 * anything it writes after it (the losses of the full queue included). */
Test(faults, restart_on_a_full_queue_still_writes_the_started_record)
{
	const enum tracepoint_id tp = TP_MEMPOOL_ADDED;
	/* The events are read long after they fired: check their times
	 * against the test's start, not the start of the reading. */
	uint64_t test_start_ns = e2e_unix_ns();
	const char *extra[] = { "--queue-size", "64K", "--stats-interval", "1", NULL };
	start_collector(true, extra);
	pid_t first = env.collector;
	char log[300];
	path_in_dir(log, sizeof(log), "tracee.log");
	const char *argv[] = { env.tracee, "--wait-attached", "load", "--mix", "mempool_added",
			       "--count", "2000", "--rate", "0", NULL };
	pid_t tracee = e2e_spawn(argv, log, false);
	char *out = tracee_output(log, tracee, DEADLINE_MS);
	int64_t fired_first = fired_count(out, tp);
	cr_assert_eq(fired_first, 2000, "%s", out);
	free(out);
	stop_collector(0); /* its final loss and stats records find no room */

	start_collector(true, extra); /* the queue is still full */
	pid_t second = env.collector;
	unlink(log);
	tracee = e2e_spawn(argv, log, false);
	out = tracee_output(log, tracee, DEADLINE_MS);
	cr_assert_eq(fired_count(out, tp), 2000, "%s", out);
	free(out);

	/* the publisher comes back: read everything */
	struct stream s;
	stream_init(&s, 0);
	s.start_ns = test_start_ns;
	uint64_t deadline = monotonic_ms() + DEADLINE_MS;
	for (;;) {
		const struct per_pid *p = find_pid(&s, tracee);
		uint64_t accounted2 = (p ? p->next_counter[tp] : 0) + s.pending_loss[tp];
		if (s.started == 2 && accounted2 == 2000)
			break;
		cr_assert_lt(monotonic_ms(), deadline, "%u started records; second tracee: %" PRIu64
			     " of 2000 delivered or reported lost", s.started, accounted2);
		uint16_t kind = 0;
		if (!stream_next(&s, 1000, &kind))
			continue;
		if (kind == RECORD_STARTED && s.started == 2) {
			cr_assert_eq(s.started_pid[1], (uint32_t)second);
			s.forbid_writer = (uint32_t)first;
			/* what the first collector could not report went with
			 * it: the started record says a gap was possible */
			memset(s.pending_loss, 0, sizeof(s.pending_loss));
		}
		cr_assert(s.started == 2 || (events_of(&s, tracee, tp) == 0 &&
					     s.last_writer != (uint32_t)second),
			  "seq %" PRIu64 ": a record of the second collector before its started record",
			  s.last_seq);
	}
	stop_collector(0);
	stream_rest(&s);
	cr_assert_eq(s.started, 2, "the restarted collector wrote no started record");
	cr_assert_eq(s.started_body[1].attached, s.started_body[0].attached);
}
