#include "check.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tracepoints_table.h"

#define SLACK_NS 1000000000ull /* boot-to-unix clock conversion, refreshed now and then */

void expect_init(struct expect *ex, struct pl *p, uint32_t attached, uint64_t queue_capacity)
{
	memset(ex, 0, sizeof(*ex));
	ex->p = p;
	ex->collector_pid = p->t.collector;
	ex->attached = attached;
	ex->queue_capacity = queue_capacity;
	ex->attach_mode = "multi";
}

void expect_phase(struct expect *ex, pid_t tracee, uint64_t start_ns, bool load_mode,
		  uint64_t p2p_size, uint32_t main_thread)
{
	ex->tracee = tracee;
	ex->start_ns = start_ns;
	ex->load_mode = load_mode;
	ex->p2p_size = p2p_size;
	ex->main_thread = main_thread;
	ex->phase_events = 0;
	memset(ex->next_counter, 0, sizeof(ex->next_counter));
	memset(ex->next_step, 0, sizeof(ex->next_step));
}

uint64_t scenario_count(enum tracepoint_id tp)
{
	uint64_t n = 0;
	for (size_t i = 0; i < scenario_event_count(); i++)
		n += scenario_step_at(i)->tp == tp;
	return n;
}

static enum tracepoint_id tp_by_event(const char *event)
{
	for (int tp = 1; tp < TP_COUNT; tp++)
		if (strcmp(tracepoint_table[tp].event, event) == 0)
			return (enum tracepoint_id)tp;
	return TP_NONE;
}

static void check_time(const char *what, uint64_t t, uint64_t from)
{
	uint64_t now = e2e_unix_ns();
	cr_assert(t + SLACK_NS >= from && t <= now,
		  "%s: time_ns %" PRIu64 " is not between %" PRIu64 " (the start, less 1 s) and now "
		  "(%" PRIu64 ")", what, t, from - SLACK_NS, now);
}

/* The "attached" array: the names of ex->attached, in id order. */
static void check_attached(const char *what, const msgpack_object *map, uint32_t attached)
{
	const msgpack_object *a = pl_get(map, "attached");
	cr_assert(a && a->type == MSGPACK_OBJECT_ARRAY, "%s: attached is not an array", what);
	uint32_t i = 0;
	for (int tp = 1; tp < TP_COUNT; tp++) {
		if (!(attached & TP_MASK(tp)))
			continue;
		cr_assert_lt(i, a->via.array.size, "%s: attached lacks %s", what,
			     tracepoint_table[tp].event);
		cr_assert(pl_str_is(&a->via.array.ptr[i], tracepoint_table[tp].event),
			  "%s: attached[%u] is not %s", what, i, tracepoint_table[tp].event);
		i++;
	}
	cr_assert_eq(a->via.array.size, i, "%s: attached has %u names, expected %u", what,
		     a->via.array.size, i);
}

/* ---- tracepoint events ---- */

/* The key at position *k of the map must be key. */
static const msgpack_object *key_at(const char *ev, const msgpack_object *map, uint32_t *k,
				    const char *key)
{
	const msgpack_object_map *m = &map->via.map;
	cr_assert_lt(*k, m->size, "%s: the map ends before key %s", ev, key);
	const msgpack_object_kv *kv = &m->ptr[*k];
	cr_assert(pl_str_is(&kv->key, key), "%s: key %u is %.*s, expected %s (the documented order)",
		  ev, *k, (int)kv->key.via.str.size, kv->key.via.str.ptr, key);
	(*k)++;
	return &kv->val;
}

static void flag_key(const char *ev, const msgpack_object *map, uint32_t *k, const char *name,
		     const char *suffix)
{
	char key[96];
	snprintf(key, sizeof(key), "%s%s", name, suffix);
	const msgpack_object *v = key_at(ev, map, k, key);
	cr_assert(v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean, "%s: %s is not true", ev,
		  key);
}

static void check_int(const char *ev, const char *name, const msgpack_object *v, int64_t want)
{
	if (want >= 0) {
		cr_assert_eq(v->type, MSGPACK_OBJECT_POSITIVE_INTEGER, "%s.%s: type %d for %" PRId64, ev,
			     name, (int)v->type, want);
		cr_assert_eq(v->via.u64, (uint64_t)want, "%s.%s = %" PRIu64 ", expected %" PRId64, ev,
			     name, v->via.u64, want);
	} else {
		cr_assert_eq(v->type, MSGPACK_OBJECT_NEGATIVE_INTEGER, "%s.%s: type %d for %" PRId64, ev,
			     name, (int)v->type, want);
		cr_assert_eq(v->via.i64, want, "%s.%s = %" PRId64 ", expected %" PRId64, ev, name,
			     v->via.i64, want);
	}
}

static void check_uint(const char *ev, const char *name, const msgpack_object *v, uint64_t want)
{
	cr_assert_eq(v->type, MSGPACK_OBJECT_POSITIVE_INTEGER, "%s.%s: type %d, expected uint", ev,
		     name, (int)v->type);
	cr_assert_eq(v->via.u64, want, "%s.%s = %" PRIu64 ", expected %" PRIu64, ev, name,
		     v->via.u64, want);
}

/* Every key and value of a tracepoint event against its step, in the
 * documented order: the common keys, then each argument followed by its
 * flag keys (truncated before read_failed). */
static void check_values(struct expect *ex, const struct scenario_step *step,
			 const struct pl_msg *m)
{
	enum tracepoint_id tp = step->tp;
	const char *ev = tracepoint_table[tp].event;
	const msgpack_object *map = m->map;
	const struct scenario_arg_info *args = scenario_args(tp);
	int nargs = scenario_arg_count(tp);
	uint32_t flags = scenario_expected_flags(step);

	/* subject: <prefix>.<provider>.<name>[.<message type token>] */
	char subject[512];
	int n = snprintf(subject, sizeof(subject), "%s.%s.%s", ex->p->prefix,
			 tracepoint_table[tp].provider, tracepoint_table[tp].name);
	if (tp == TP_NET_INBOUND_MESSAGE || tp == TP_NET_OUTBOUND_MESSAGE) {
		char token[64];
		const char *type = (step->untouched & (1u << 3)) ? "" : step->v[3].s;
		pl_token(type, token, sizeof(token));
		/* the scenario's hostile types, as docs/events.md spells them out */
		static const char *const mapped[][2] = { { "a.b", "a_b" }, { "two words", "two_words" },
							 { "", "_" } };
		for (size_t j = 0; j < 3; j++)
			if (strcmp(type, mapped[j][0]) == 0)
				cr_assert_str_eq(token, mapped[j][1]);
		snprintf(subject + n, sizeof(subject) - (size_t)n, ".%s", token);
	}
	cr_assert_str_eq(m->subject, subject, "%s: subject %s, expected %s", ev, m->subject, subject);

	uint32_t k = 0;
	static const char *const common[] = { "stream_id", "seq", "time_ns", "pid",
					      "tid", "node", "event" };
	for (int i = 0; i < 7; i++)
		key_at(ev, map, &k, common[i]);
	for (int i = 0; i < nargs; i++) {
		const struct scenario_arg_info *a = &args[i];
		const msgpack_object *v = key_at(ev, map, &k, a->name);
		bool failed = step->untouched & (1u << i);
		switch (a->kind) {
		case SK_I64:
		case SK_I32:
			check_int(ev, a->name, v, failed ? 0 : a->kind == SK_I32 ? (int32_t)step->v[i].i
										    : step->v[i].i);
			break;
		case SK_U64:
			check_uint(ev, a->name, v, failed ? 0 : step->v[i].u);
			break;
		case SK_U32:
			check_uint(ev, a->name, v, failed ? 0 : (uint32_t)step->v[i].u);
			break;
		case SK_BOOL:
			cr_assert_eq(v->type, MSGPACK_OBJECT_BOOLEAN, "%s.%s: not a bool", ev, a->name);
			cr_assert_eq(v->via.boolean, failed ? false : step->v[i].i != 0,
				     "%s.%s = %d", ev, a->name, v->via.boolean);
			break;
		case SK_STR: {
			const char *want = failed ? "" : step->v[i].s;
			size_t len = strlen(want);
			if (len >= a->buf_len)
				len = a->buf_len - 1; /* truncated: its first bytes, and the flag */
			cr_assert_eq(v->type, MSGPACK_OBJECT_STR, "%s.%s: not a str", ev, a->name);
			cr_assert_eq(v->via.str.size, len, "%s.%s: %u bytes, expected %zu", ev, a->name,
				     v->via.str.size, len);
			cr_assert(memcmp(v->via.str.ptr, want, len) == 0, "%s.%s = \"%.*s\", expected "
				  "\"%.*s\"", ev, a->name, (int)v->via.str.size, v->via.str.ptr,
				  (int)len, want);
			break;
		}
		case SK_HASH: {
			uint8_t h[SCENARIO_HASH_LEN], want[SCENARIO_HASH_LEN];
			memset(want, 0, sizeof(want));
			if (!failed) {
				scenario_hash(step->v[i].hash, h);
				for (int j = 0; j < SCENARIO_HASH_LEN; j++)
					want[j] = h[SCENARIO_HASH_LEN - 1 - j]; /* display order */
			}
			cr_assert_eq(v->type, MSGPACK_OBJECT_BIN, "%s.%s: not a bin", ev, a->name);
			cr_assert_eq(v->via.bin.size, SCENARIO_HASH_LEN, "%s.%s: %u bytes", ev, a->name,
				     v->via.bin.size);
			cr_assert(memcmp(v->via.bin.ptr, want, SCENARIO_HASH_LEN) == 0,
				  "%s.%s: not the reversed scenario_hash(%" PRIu64 ")", ev, a->name,
				  step->v[i].hash);
			break;
		}
		case SK_PAYLOAD: {
			uint64_t size = scenario_payload_size(step);
			uint64_t want = size < P2P_PAYLOAD_MAX ? size : P2P_PAYLOAD_MAX;
			cr_assert_eq(v->type, MSGPACK_OBJECT_BIN, "%s.payload: not a bin", ev);
			cr_assert_eq(v->via.bin.size, want, "%s.payload: %u bytes for size %" PRIu64, ev,
				     v->via.bin.size, size);
			const uint8_t *b = (const uint8_t *)v->via.bin.ptr;
			for (uint64_t j = 0; j < want; j++)
				if (b[j] != scenario_step_payload_byte(step, j))
					cr_assert_fail("%s payload of %" PRIu64 " bytes: byte %" PRIu64
						       " is 0x%02x, expected 0x%02x", ev, size, j, b[j],
						       scenario_step_payload_byte(step, j));
			break;
		}
		}
		if (flags & RECORD_FLAG_TRUNCATED(i))
			flag_key(ev, map, &k, a->name, "_truncated");
		if (flags & RECORD_FLAG_READ_FAILED(i))
			flag_key(ev, map, &k, a->name, "_read_failed");
	}
	cr_assert_eq(map->via.map.size, k, "%s: %u keys, expected %u", ev, map->via.map.size, k);

	/* the common values */
	uint64_t pid = pl_uint(map, "pid"), tid = pl_uint(map, "tid");
	cr_assert_eq(pid, (uint64_t)ex->tracee, "%s: pid %" PRIu64 ", the tracee is %d", ev, pid,
		     (int)ex->tracee);
	if (ex->main_thread & TP_MASK(tp))
		cr_assert_eq(tid, pid, "%s: tid %" PRIu64 ", fired on the main thread %" PRIu64, ev,
			     tid, pid);
	else
		cr_assert(tid != 0 && tid != pid, "%s: tid %" PRIu64 ", fired on a second thread of "
			  "%" PRIu64, ev, tid, pid);
	check_time(ev, pl_uint(map, "time_ns"), ex->start_ns);
}

/* Scenario mode with loss allowed: the identity of a net message step. */
static bool same_message(const struct scenario_step *step, const msgpack_object *map)
{
	const msgpack_object *peer = pl_get(map, "peer_id"), *size = pl_get(map, "size");
	const msgpack_object *type = pl_get(map, "msg_type");
	int64_t want_peer = step->v[0].i;
	bool peer_ok = want_peer >= 0 ? peer->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
						peer->via.u64 == (uint64_t)want_peer
				      : peer->type == MSGPACK_OBJECT_NEGATIVE_INTEGER &&
						peer->via.i64 == want_peer;
	return peer_ok && size->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	       size->via.u64 == step->v[4].u && pl_str_is(type, step->v[3].s) &&
	       (step->untouched != 0) == (pl_get(map, "payload_read_failed") != NULL);
}

static void check_event(struct expect *ex, enum tracepoint_id tp, const struct pl_msg *m,
			uint64_t seq)
{
	const char *ev = tracepoint_table[tp].event;
	cr_assert(ex->attached & TP_MASK(tp), "seq %" PRIu64 ": %s, which is not attached", seq, ev);
	if (ex->load_mode) {
		struct scenario_step step;
		scenario_load_step(tp, ex->next_counter[tp], ex->p2p_size, &step);
		cr_assert_eq(ex->pending_loss[tp], 0, "%s: loss in load mode", ev);
		check_values(ex, &step, m);
		ex->next_counter[tp]++;
	} else {
		size_t steps = scenario_event_count();
		size_t i = ex->next_step[tp];
		uint64_t skipped = 0;
		for (;; i++) {
			cr_assert_lt(i, steps, "seq %" PRIu64 ": one %s event more than the scenario "
				     "fired (or none of its steps matches)", seq, ev);
			const struct scenario_step *s = scenario_step_at(i);
			if (s->tp != tp)
				continue;
			if (!ex->allow_loss || same_message(s, m->map))
				break;
			skipped++;
		}
		/* a loss record sits before the first event after the events it counts */
		cr_assert_eq(skipped, ex->pending_loss[tp], "seq %" PRIu64 ": %s skips %" PRIu64
			     " scenario steps, the loss records before it reported %" PRIu64, seq, ev,
			     skipped, ex->pending_loss[tp]);
		const struct scenario_step *step = scenario_step_at(i);
		if (ex->allow_loss && (tp == TP_NET_INBOUND_MESSAGE || tp == TP_NET_OUTBOUND_MESSAGE))
			cr_assert_lt(scenario_payload_size(step), 8192,
				     "%s of %" PRIu64 " bytes arrived through a 4 KiB ring that cannot "
				     "hold one of its chunks", ev, scenario_payload_size(step));
		check_values(ex, step, m);
		ex->next_step[tp] = i + 1;
	}
	ex->pending_loss[tp] = 0;
	ex->events[tp]++;
	ex->events_total++;
	ex->phase_events++;
	ex->last_event_seq = seq;
}

/* ---- the collector's records ---- */

static void check_collector_common(struct expect *ex, const char *ev, const struct pl_msg *m)
{
	char subject[300];
	snprintf(subject, sizeof(subject), "%s.extractor.%s", ex->p->prefix, ev + strlen("extractor:"));
	cr_assert_str_eq(m->subject, subject, "%s: subject %s", ev, m->subject);
	static const char *const common[] = { "stream_id", "seq", "time_ns", "pid",
					      "tid", "node", "event" };
	for (uint32_t i = 0; i < 7; i++)
		cr_assert(pl_str_is(&m->map->via.map.ptr[i].key, common[i]),
			  "%s: key %u is not %s", ev, i, common[i]);
	cr_assert_eq(pl_uint(m->map, "pid"), (uint64_t)ex->collector_pid, "%s: pid is not the "
		     "collector's (%d)", ev, (int)ex->collector_pid);
	/* the collector is one thread */
	cr_assert_eq(pl_uint(m->map, "tid"), (uint64_t)ex->collector_pid, "%s: tid", ev);
	check_time(ev, pl_uint(m->map, "time_ns"), ex->p->collector_start_ns);
}

static void check_started(struct expect *ex, const struct pl_msg *m, uint64_t seq)
{
	const char *ev = "extractor:started";
	check_collector_common(ex, ev, m);
	cr_assert_eq(seq, 1, "the started record of a new queue is seq %" PRIu64 ", not 1", seq);
	char s[64];
	pl_str(m->map, "version", s, sizeof(s));
	cr_assert_str_eq(s, EXTRACTOR_VERSION);
	pl_str(m->map, "attach_mode", s, sizeof(s));
	cr_assert_str_eq(s, ex->attach_mode);
	cr_assert_eq(pl_uint(m->map, "filter_pid"), 0);
	check_attached(ev, m->map, ex->attached);
	cr_assert_eq(m->map->via.map.size, 11, "%s: %u keys", ev, m->map->via.map.size);
	ex->started++;
	ex->started_seq = seq;
}

static void check_collector_stats(struct expect *ex, const struct pl_msg *m, uint64_t seq)
{
	const char *ev = "extractor:collector_stats";
	check_collector_common(ex, ev, m);
	const msgpack_object *map = m->map;
	cr_assert_eq(pl_uint(map, "queue_capacity"), ex->queue_capacity);
	cr_assert_leq(pl_uint(map, "queue_used"), ex->queue_capacity);
	uint64_t uptime = pl_uint(map, "uptime_ns");
	cr_assert(uptime > 0 && uptime <= e2e_unix_ns() - ex->p->collector_start_ns + SLACK_NS,
		  "%s: uptime_ns %" PRIu64, ev, uptime);
	cr_assert_geq(uptime, ex->stats_uptime_ns, "%s: uptime went back", ev);
	/* attached now: every probe while it runs, none in the final record it
	 * writes at exit, after detaching */
	const msgpack_object *names = pl_get(map, "attached");
	cr_assert(names && names->type == MSGPACK_OBJECT_ARRAY, "%s: attached is not an array", ev);
	uint32_t attached = names->via.array.size == 0 ? 0 : ex->attached;
	check_attached(ev, map, attached);
	ex->stats_final = attached == 0;
	const msgpack_object *tps = pl_get(map, "tracepoints");
	cr_assert_eq(tps->type, MSGPACK_OBJECT_MAP);
	/* one entry per attached tracepoint (or one with counts), in id order;
	 * cumulative, and exactly what came before this record in the stream */
	uint32_t i = 0;
	for (int tp = 1; tp < TP_COUNT; tp++) {
		if (!(attached & TP_MASK(tp)) && !ex->events[tp] && !ex->lost[tp])
			continue;
		const char *name = tracepoint_table[tp].event;
		cr_assert_lt(i, tps->via.map.size, "%s: tracepoints lacks %s", ev, name);
		const msgpack_object_kv *kv = &tps->via.map.ptr[i++];
		cr_assert(pl_str_is(&kv->key, name), "%s: tracepoints entry %u is not %s", ev, i - 1,
			  name);
		const msgpack_object *c = &kv->val;
		cr_assert_eq(c->via.map.size, 4);
		uint64_t events = pl_uint(c, "events");
		uint64_t lost = pl_uint(c, "bpf_drops") + pl_uint(c, "queue_drops") +
				pl_uint(c, "incomplete");
		cr_assert_eq(events, ex->events[tp], "%s seq %" PRIu64 ": %s events %" PRIu64 ", but %"
			     PRIu64 " came before it", ev, seq, name, events, ex->events[tp]);
		cr_assert_eq(lost, ex->lost[tp], "%s seq %" PRIu64 ": %s lost %" PRIu64 ", but loss "
			     "records before it reported %" PRIu64, ev, seq, name, lost, ex->lost[tp]);
		if (!ex->allow_loss)
			cr_assert_eq(lost, 0, "%s: %s lost %" PRIu64, ev, name, lost);
		ex->stats_events[tp] = events;
		ex->stats_lost[tp] = lost;
	}
	cr_assert_eq(tps->via.map.size, i, "%s: %u tracepoints entries, expected %u", ev,
		     tps->via.map.size, i);
	cr_assert_eq(map->via.map.size, 12, "%s: %u keys", ev, map->via.map.size);
	ex->collector_stats++;
	ex->stats_seq = seq;
	ex->stats_uptime_ns = uptime;
}

static void check_loss(struct expect *ex, const struct pl_msg *m, uint64_t seq)
{
	const char *ev = "extractor:loss";
	cr_assert(ex->allow_loss, "seq %" PRIu64 ": a loss record where nothing may be lost", seq);
	check_collector_common(ex, ev, m);
	const msgpack_object *lost = pl_get(m->map, "lost");
	cr_assert_eq(lost->type, MSGPACK_OBJECT_MAP);
	cr_assert_gt(lost->via.map.size, 0, "%s with an empty lost map", ev);
	uint64_t total = 0;
	int last_tp = 0;
	for (uint32_t i = 0; i < lost->via.map.size; i++) {
		const msgpack_object_kv *kv = &lost->via.map.ptr[i];
		char name[64];
		snprintf(name, sizeof(name), "%.*s", (int)kv->key.via.str.size, kv->key.via.str.ptr);
		enum tracepoint_id tp = tp_by_event(name);
		cr_assert_neq(tp, TP_NONE, "%s: lost.%s is no tracepoint", ev, name);
		cr_assert_gt((int)tp, last_tp, "%s: lost entries not in tracepoint order", ev);
		last_tp = (int)tp;
		cr_assert_eq(kv->val.via.map.size, 3);
		uint64_t n = pl_uint(&kv->val, "bpf_drops") + pl_uint(&kv->val, "queue_drops") +
			     pl_uint(&kv->val, "incomplete");
		cr_assert_gt(n, 0, "%s: lost.%s is all zero", ev, name);
		ex->lost[tp] += n;
		ex->pending_loss[tp] += n;
		total += n;
	}
	cr_assert_eq(pl_uint(m->map, "lost_total"), total, "%s: lost_total is not the sum", ev);
	cr_assert_eq(m->map->via.map.size, 9);
	ex->loss_records++;
}

/* ---- the publisher's stats ---- */

static void check_publisher_stats(struct expect *ex, const struct pl_msg *m)
{
	const char *ev = "extractor:publisher_stats";
	const msgpack_object *map = m->map;
	char subject[300];
	snprintf(subject, sizeof(subject), "%s.extractor.publisher_stats", ex->p->prefix);
	cr_assert_str_eq(m->subject, subject);
	cr_assert_null(pl_get(map, "seq"), "%s has a seq", ev);
	cr_assert_null(pl_get(map, "tid"), "%s has a tid", ev);
	cr_assert_eq(map->via.map.size, 18, "%s: %u keys", ev, map->via.map.size);
	bool faults = ex->server_faults || ex->publisher_restarts;
	struct pub_stats s = {
		.stream_id = pl_uint(map, "stream_id"),
		.time_ns = pl_uint(map, "time_ns"),
		.pid = pl_uint(map, "pid"),
		.published = pl_uint(map, "published"),
		.published_bytes = pl_uint(map, "published_bytes"),
		.confirmed_seq = pl_uint(map, "confirmed_seq"),
		.last_read_seq = pl_uint(map, "last_read_seq"),
		.refused_too_large = pl_uint(map, "refused_too_large"),
		.malformed = pl_uint(map, "malformed"),
		.nats_errors = pl_uint(map, "nats_errors"),
		.reconnects = pl_uint(map, "reconnects"),
		.queue_used = pl_uint(map, "queue_used"),
		.queue_capacity = pl_uint(map, "queue_capacity"),
		.connected = pl_bool(map, "connected"),
		.collector_present = pl_bool(map, "collector_present"),
	};
	cr_assert_eq(s.stream_id, ex->p->stream_id, "%s: stream_id %016" PRIx64 ", the queue's is %016"
		     PRIx64, ev, s.stream_id, ex->p->stream_id);
	/* which publisher run: runs follow each other (one is dead before the
	 * next starts), so the stream never goes back to an earlier one */
	const struct pl *p = ex->p;
	unsigned run = 0;
	while (run < p->publisher_run_count && (uint64_t)p->publisher_runs[run].pid != s.pid)
		run++;
	cr_assert_lt(run, p->publisher_run_count, "%s: pid %" PRIu64 ", none of the %u publishers "
		     "started (the last is %d)", ev, s.pid, p->publisher_run_count,
		     p->publisher_run_count ? (int)p->publisher_runs[p->publisher_run_count - 1].pid : 0);
	cr_assert_geq(run, ex->pub_run, "%s of publisher run %u (pid %" PRIu64 ") after one of run %u",
		      ev, run + 1, s.pid, ex->pub_run + 1);
	cr_assert(run == 0 || ex->publisher_restarts, "%s from publisher run %u where the publisher "
		  "is never restarted", ev, run + 1);
	bool same_run = ex->publisher_stats > 0 && run == ex->pub_run;
	check_time(ev, s.time_ns, p->publisher_runs[run].start_ns);
	cr_assert(s.connected, "%s: a stats message received says connected false", ev);
	cr_assert_eq(s.refused_too_large, 0, "%s: refused_too_large %" PRIu64, ev,
		     s.refused_too_large);
	cr_assert_eq(s.malformed, 0, "%s: malformed %" PRIu64, ev, s.malformed);
	if (!ex->server_faults) {
		cr_assert_eq(s.nats_errors, 0, "%s: nats_errors %" PRIu64, ev, s.nats_errors);
		cr_assert_eq(s.reconnects, 0, "%s: reconnects %" PRIu64, ev, s.reconnects);
	}
	cr_assert_eq(s.queue_capacity, ex->queue_capacity);
	cr_assert_leq(s.queue_used, s.queue_capacity);
	cr_assert_leq(s.confirmed_seq, s.last_read_seq, "%s: confirmed_seq %" PRIu64 " is ahead of "
		      "last_read_seq %" PRIu64, ev, s.confirmed_seq, s.last_read_seq);
	/* what the server confirmed it holds, before this message */
	cr_assert_leq(s.confirmed_seq, ex->last_seq, "%s: confirmed_seq %" PRIu64 ", but the stream "
		      "holds seqs up to %" PRIu64 " before it", ev, s.confirmed_seq, ex->last_seq);
	if (same_run) {
		cr_assert_geq(s.confirmed_seq, ex->last_pub.confirmed_seq, "%s: confirmed_seq %" PRIu64
			      " after %" PRIu64 " (it went back)", ev, s.confirmed_seq,
			      ex->last_pub.confirmed_seq);
		cr_assert_geq(s.published, ex->last_pub.published, "%s: published %" PRIu64 " after %"
			      PRIu64, ev, s.published, ex->last_pub.published);
		cr_assert_geq(s.reconnects, ex->last_pub.reconnects, "%s: reconnects %" PRIu64
			      " after %" PRIu64, ev, s.reconnects, ex->last_pub.reconnects);
	}
	if (!faults) {
		/* One connection, no resend: everything the publisher read it
		 * published before this message, and the stream holds it in
		 * that order. */
		cr_assert_eq(s.last_read_seq, ex->last_seq, "%s: last_read_seq %" PRIu64 ", but the "
			     "last seq before it in the stream is %" PRIu64, ev, s.last_read_seq,
			     ex->last_seq);
		cr_assert_eq(s.published, ex->records, "%s: published %" PRIu64 ", the stream holds %"
			     PRIu64 " records before it", ev, s.published, ex->records);
		cr_assert_eq(s.published_bytes, ex->record_bytes, "%s: published_bytes %" PRIu64
			     ", the records before it are %" PRIu64 " bytes", ev, s.published_bytes,
			     ex->record_bytes);
	}
	/* queue_used also counts records the collector wrote after the
	 * publisher's last read (a stats record, say): only bounded here. */
	cr_assert_leq(s.queue_used, s.queue_capacity, "%s: queue_used %" PRIu64 " > capacity", ev,
		      s.queue_used);
	ex->last_pub = s;
	ex->pub_run = run;
	if (s.confirmed_seq > ex->max_confirmed)
		ex->max_confirmed = s.confirmed_seq;
	ex->publisher_stats++;
	ex->pub_stats_after_last_record++;
}

/* ---- duplicates ---- */

static uint64_t msg_digest(const struct pl_msg *m)
{
	uint64_t h = 0xcbf29ce484222325ull;
	const uint8_t *parts[2] = { (const uint8_t *)m->subject, m->data };
	size_t lens[2] = { strlen(m->subject) + 1, m->size };
	for (int i = 0; i < 2; i++)
		for (size_t j = 0; j < lens[i]; j++)
			h = (h ^ parts[i][j]) * 0x100000001b3ull;
	return h;
}

static void keep_digest(struct expect *ex, uint64_t seq, uint64_t digest)
{
	if (seq >= ex->digests_cap) {
		size_t cap = ex->digests_cap ? ex->digests_cap : 4096;
		while (cap <= seq)
			cap *= 2;
		ex->digests = realloc(ex->digests, cap * sizeof(*ex->digests));
		cr_assert_not_null(ex->digests, "out of memory");
		ex->digests_cap = cap;
	}
	ex->digests[seq] = digest;
}

/* A seq that arrived before: allowed only where something was killed, only
 * after the last seq the publisher reported confirmed, identical. */
static void check_duplicate(struct expect *ex, const struct pl_msg *m, const char *event,
			    uint64_t seq, uint64_t digest)
{
	cr_assert_gt(seq, ex->max_confirmed, "%s: duplicate of seq %" PRIu64 " (message %" PRIu64
		     "), which a publisher_stats before it reported confirmed (confirmed_seq %"
		     PRIu64 "): only unconfirmed records may arrive again", event, seq, m->index,
		     ex->max_confirmed);
	cr_assert_eq(ex->digests[seq], digest, "%s: the second copy of seq %" PRIu64 " (message %"
		     PRIu64 ", %zu bytes on %s) differs from the first", event, seq, m->index,
		     m->size, m->subject);
	if (!ex->duplicates || seq - ex->max_confirmed < ex->dup_min_margin)
		ex->dup_min_margin = seq - ex->max_confirmed;
	ex->duplicates++;
}

/* ---- every message ---- */

void pl_check_msg(void *arg, const struct pl_msg *m)
{
	struct expect *ex = arg;
	char event[64], node[300];
	pl_str(m->map, "event", event, sizeof(event));
	pl_doc_check(event, m->map);
	pl_str(m->map, "node", node, sizeof(node));
	cr_assert_str_eq(node, ex->p->node, "%s: node \"%s\", expected \"%s\"", event, node,
			 ex->p->node);
	ex->msgs++;
	ex->last_msg_was_pub_stats = false;
	if (strcmp(event, "extractor:publisher_stats") == 0) {
		check_publisher_stats(ex, m);
		ex->last_msg_was_pub_stats = true;
		return;
	}
	/* a queue record */
	uint64_t sid = pl_uint(m->map, "stream_id");
	cr_assert_eq(sid, ex->p->stream_id, "%s: stream_id %016" PRIx64 ", the queue's is %016" PRIx64,
		     event, sid, ex->p->stream_id);
	uint64_t seq = pl_uint(m->map, "seq");
	if (ex->server_faults || ex->publisher_restarts) {
		uint64_t digest = msg_digest(m);
		if (seq <= ex->last_seq) {
			check_duplicate(ex, m, event, seq, digest);
			return;
		}
		keep_digest(ex, seq, digest);
	}
	cr_assert(!ex->stats_final, "%s after the collector's final stats record (attached none)",
		  event);
	cr_assert_eq(seq, ex->last_seq + 1, "%s: seq %" PRIu64 " after %" PRIu64 " (a gap, a "
		     "duplicate or out of order)", event, seq, ex->last_seq);
	if (strcmp(event, "extractor:started") == 0) {
		check_started(ex, m, seq);
		ex->last_kind = RECORD_STARTED;
	} else if (strcmp(event, "extractor:collector_stats") == 0) {
		check_collector_stats(ex, m, seq);
		ex->last_kind = RECORD_STATS;
	} else if (strcmp(event, "extractor:loss") == 0) {
		check_loss(ex, m, seq);
		ex->last_kind = RECORD_LOSS;
	} else {
		enum tracepoint_id tp = tp_by_event(event);
		cr_assert_neq(tp, TP_NONE, "seq %" PRIu64 ": unknown event %s", seq, event);
		check_event(ex, tp, m, seq);
		ex->last_kind = RECORD_EVENT;
	}
	cr_assert_eq(ex->started_seq, 1, "seq %" PRIu64 " (%s) before the started record", seq,
		     event);
	ex->last_seq = seq;
	ex->records++;
	ex->record_bytes += m->size;
	ex->pub_stats_after_last_record = 0;
}

/* ---- the end of a run ---- */

void expect_finish(struct expect *ex, struct pl_js *js, int timeout_ms)
{
	struct pl *p = ex->p;
	cr_assert_eq(pl_stop_collector(p), 0, "the collector did not exit cleanly");
	int st = pl_stop_publisher(p);
	if (st != 0)
		pl_dump_logs(p);
	cr_assert_eq(st, 0, "the publisher exited with %d", st);
	pl_js_pump_all(js, pl_check_msg, ex, timeout_ms);

	cr_assert_eq(ex->started, 1, "%" PRIu64 " started records", ex->started);
	cr_assert_eq(ex->last_kind, RECORD_STATS, "the collector's last record is not its final stats");
	cr_assert_eq(ex->stats_seq, ex->last_seq);
	cr_assert(ex->stats_final, "the collector's last stats record still lists attached probes");
	for (int tp = 1; tp < TP_COUNT; tp++) {
		cr_assert_eq(ex->stats_events[tp], ex->events[tp], "final stats: %s", tracepoint_table[tp].event);
		cr_assert_eq(ex->stats_lost[tp], ex->lost[tp], "final stats: %s", tracepoint_table[tp].event);
	}
	cr_assert(ex->last_msg_was_pub_stats, "the stream does not end with the publisher's final stats");
	const struct pub_stats *s = &ex->last_pub;
	cr_assert_eq(s->pid, (uint64_t)p->publisher_runs[p->publisher_run_count - 1].pid,
		     "the final publisher_stats are not the last publisher's");
	cr_assert_eq(s->confirmed_seq, ex->last_seq, "final publisher_stats: confirmed_seq %" PRIu64
		     ", the last seq is %" PRIu64, s->confirmed_seq, ex->last_seq);
	if (!ex->server_faults && !ex->publisher_restarts)
		cr_assert_eq(s->published, ex->last_seq, "final publisher_stats: published %" PRIu64
			     " messages for seqs 1..%" PRIu64, s->published, ex->last_seq);
	else if (!ex->publisher_restarts)
		/* one publisher: every seq at least once, some again after a reconnect */
		cr_assert_geq(s->published, ex->last_seq, "final publisher_stats: published %" PRIu64
			      " messages for seqs 1..%" PRIu64, s->published, ex->last_seq);
	cr_assert_eq(s->queue_used, 0);
	cr_assert(!s->collector_present, "final publisher_stats: collector_present after it exited");
	uint64_t lost = 0;
	for (int tp = 1; tp < TP_COUNT; tp++)
		lost += ex->lost[tp];
	fprintf(stderr, "pipeline: %" PRIu64 " messages checked: seq 1..%" PRIu64 " (%" PRIu64
		" bytes), %" PRIu64 " events, %" PRIu64 " collector_stats, %" PRIu64
		" loss records (%" PRIu64 " lost), %" PRIu64 " publisher_stats, %" PRIu64
		" duplicates (the closest %" PRIu64 " after the confirmed_seq reported before it)\n",
		ex->msgs, ex->last_seq, ex->record_bytes, ex->events_total, ex->collector_stats,
		ex->loss_records, lost, ex->publisher_stats, ex->duplicates, ex->dup_min_margin);
	free(ex->digests);
	ex->digests = NULL;
	ex->digests_cap = 0;
}
