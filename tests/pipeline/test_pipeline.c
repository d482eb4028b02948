/* The whole pipeline with real eBPF and a real NATS server:
 *
 *   ebpf-tracee ──USDT──▶ ebpf-collector (nobody, CAP_BPF+CAP_PERFMON)
 *     ──shm queue──▶ ebpf-publisher (daemon, no capabilities)
 *     ──▶ nats-server (free loopback port) ──▶ a JetStream stream or core
 *     subscriptions in this test
 *
 * Every message is decoded and checked (check.c): subject, every key in
 * the documented order and type (docs/events.md, read at run time), every
 * value against the tracee's scenario (scenario.h), stream_id, contiguous
 * seq, time, pid, tid, node; the collector's records and the publisher's
 * stats against what came before them in the stream. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "pipeline.h"
#include "tracepoints_table.h"

/* A node name that is not a subject token: the prefix is btc.pipeline_e2e_node */
#define NODE "pipeline.e2e node"
#define DEFAULT_QUEUE_SIZE 268435456ull /* docs/architecture.md: 256 MiB */

static struct pl P;

static void setup(void)
{
	pl_setup(&P, NODE);
}

static void teardown(void)
{
	pl_teardown(&P);
}

/* Each test well under a minute on a 2-core VM. */
TestSuite(pipeline, .init = setup, .fini = teardown, .timeout = 60);

/* ---- shared steps ---- */

static uint32_t group_mask(enum tracepoint_group g)
{
	uint32_t mask = 0;
	for (int tp = 1; tp < TP_COUNT; tp++)
		if (tracepoint_table[tp].group == g)
			mask |= TP_MASK(tp);
	return mask;
}

/* Default groups: everything but utxocache and coin_selection. */
static uint32_t default_mask(void)
{
	return TP_MASK_ALL & ~group_mask(GROUP_UTXOCACHE) & ~group_mask(GROUP_COIN_SELECTION);
}

/* Runs the scenario (args after the program name) and checks that the
 * tracee fired exactly the scenario's steps of the tracepoints in mask. */
static void run_scenario(struct expect *ex, const char *const args[], uint32_t mask)
{
	uint64_t start = e2e_unix_ns();
	char *out = NULL;
	pid_t tracee = pl_run_tracee(&P, args, &out, 30000);
	for (int tp = 1; tp < TP_COUNT; tp++) {
		int64_t want = (mask & TP_MASK(tp)) ? (int64_t)scenario_count(tp) : -1;
		cr_assert_eq(pl_fired(out, tp), want, "the tracee fired %" PRId64 " %s, expected %"
			     PRId64 ": %s", pl_fired(out, tp), tracepoint_table[tp].event, want, out);
	}
	free(out);
	/* the scenario fires every step from its main thread */
	expect_phase(ex, tracee, start, false, 0, TP_MASK_ALL);
}

struct scenario_wait {
	struct expect *ex;
	uint32_t mask;
};

static bool scenario_arrived(void *arg)
{
	struct scenario_wait *w = arg;
	for (int tp = 1; tp < TP_COUNT; tp++)
		if ((w->mask & TP_MASK(tp)) &&
		    w->ex->events[tp] + w->ex->lost[tp] < scenario_count(tp))
			return false;
	return true;
}

static void expect_scenario_counts(const struct expect *ex, uint32_t mask)
{
	for (int tp = 1; tp < TP_COUNT; tp++) {
		uint64_t want = (mask & TP_MASK(tp)) ? scenario_count(tp) : 0;
		cr_assert_eq(ex->events[tp] + ex->lost[tp], want, "%s: %" PRIu64 " arrived and %" PRIu64
			     " reported lost, the scenario fired %" PRIu64, tracepoint_table[tp].event,
			     ex->events[tp], ex->lost[tp], want);
	}
}

/* ---- 1. every event type, every field, end to end ---- */

Test(pipeline, every_event_type_end_to_end)
{
	/* docs/events.md: the default prefix is btc.<node name as a token> */
	cr_assert_str_eq(P.prefix, "btc.pipeline_e2e_node");
	pl_start_nats(&P, true);
	struct pl_js *js = pl_js_open(P.nc, "PIPELINE", "btc.>");
	const char *cx[] = { "--utxocache-tracepoints", "--coin-selection-tracepoints",
			     "--queue-size", "64M", "--attach-mode", "multi", NULL };
	cr_assert_eq(pl_start_collector(&P, cx), TP_COUNT - 1);
	pl_start_publisher(&P, NULL);
	struct expect ex;
	expect_init(&ex, &P, TP_MASK_ALL, 64ull << 20);

	const char *args[] = { "--wait-attached", "scenario", NULL };
	run_scenario(&ex, args, TP_MASK_ALL);
	struct scenario_wait w = { &ex, TP_MASK_ALL };
	bool all = pl_js_pump(js, pl_check_msg, &ex, scenario_arrived, &w, 30000);
	if (!all)
		pl_dump_logs(&P);
	cr_assert(all, "only %" PRIu64 " of the scenario's %zu events reached the stream",
		  ex.events_total, scenario_event_count());
	cr_assert_eq(ex.events_total, scenario_event_count());
	cr_assert_eq(ex.loss_records, 0);

	expect_finish(&ex, js, 20000);
	expect_scenario_counts(&ex, TP_MASK_ALL);
	pl_js_close(js);
}

/* ---- 2. message types a subject cannot carry ---- */

struct hostile {
	const char *msg_type, *token;
	struct pl_sub *sub;
};

struct one_msg {
	const struct hostile *h;
	char subject[300];
	unsigned count;
};

static void on_hostile(void *arg, const struct pl_msg *m)
{
	struct one_msg *o = arg;
	o->count++;
	cr_assert_str_eq(m->subject, o->subject);
	char type[64];
	pl_str(m->map, "msg_type", type, sizeof(type));
	cr_assert_str_eq(type, o->h->msg_type, "msg_type \"%s\" on %s, expected \"%s\"", type,
			 m->subject, o->h->msg_type);
}

static bool one_arrived(void *arg)
{
	return ((struct one_msg *)arg)->count >= 1;
}

struct phase_wait {
	struct expect *ex;
	uint64_t events;
};

static bool phase_arrived(void *arg)
{
	struct phase_wait *w = arg;
	return w->ex->phase_events >= w->events;
}

/* A publisher_stats message after the last record, confirming it. */
static bool all_confirmed(void *arg)
{
	struct expect *ex = arg;
	return ex->pub_stats_after_last_record > 0 && ex->last_pub.confirmed_seq == ex->last_seq;
}

Test(pipeline, hostile_message_types_get_safe_tokens_and_the_connection_survives)
{
	pl_start_nats(&P, false);
	struct hostile hostile[] = {
		{ "a.b", "a_b", NULL },
		{ "two words", "two_words", NULL },
		{ "", "_", NULL },
	};
	char subject[300];
	snprintf(subject, sizeof(subject), "%s.>", P.prefix);
	struct pl_sub *all = pl_sub_start(P.nc, subject);
	for (size_t i = 0; i < 3; i++) {
		snprintf(subject, sizeof(subject), "%s.net.inbound_message.%s", P.prefix,
			 hostile[i].token);
		hostile[i].sub = pl_sub_start(P.nc, subject);
	}
	/* a subject with more tokens than <prefix>.net.<event>.<type>: what an
	 * unmapped "a.b" would have made */
	snprintf(subject, sizeof(subject), "%s.*.*.*.>", P.prefix);
	struct pl_sub *deep = pl_sub_start(P.nc, subject);

	const char *cx[] = { "--queue-size", "64M", "--attach-mode", "multi", NULL };
	cr_assert_eq(pl_start_collector(&P, cx), __builtin_popcount(default_mask()));
	const char *px[] = { "--stats-interval", "0.2", NULL };
	pl_start_publisher(&P, px);
	struct expect ex;
	expect_init(&ex, &P, default_mask(), 64ull << 20);

	/* the P2P part of the scenario: the three hostile types in the middle */
	uint32_t p2p = group_mask(GROUP_P2PMSG);
	const char *args[] = { "--wait-attached", "scenario", "--groups", "p2pmsg", NULL };
	run_scenario(&ex, args, p2p);
	struct scenario_wait w = { &ex, p2p };
	cr_assert(pl_sub_pump(all, pl_check_msg, &ex, scenario_arrived, &w, 30000),
		  "only %" PRIu64 " of the scenario's P2P messages arrived", ex.events_total);
	expect_scenario_counts(&ex, p2p);

	/* each mapped subject carries exactly its message, with the real type */
	for (size_t i = 0; i < 3; i++) {
		struct one_msg o = { &hostile[i], "", 0 };
		snprintf(o.subject, sizeof(o.subject), "%s.net.inbound_message.%s", P.prefix,
			 hostile[i].token);
		cr_assert(pl_sub_pump(hostile[i].sub, on_hostile, &o, one_arrived, &o, 5000),
			  "nothing arrived on %s", o.subject);
	}

	/* the connection survives: a later tracee's events still arrive ... */
	uint64_t start = e2e_unix_ns();
	char *out = NULL;
	const char *load[] = { "--wait-attached", "load", "--mix", "p2p:64=1,mempool_added=1",
			       "--count", "40", NULL };
	pid_t tracee = pl_run_tracee(&P, load, &out, 30000);
	cr_assert_eq(pl_fired(out, TP_NET_INBOUND_MESSAGE), 20, "%s", out);
	cr_assert_eq(pl_fired(out, TP_MEMPOOL_ADDED), 20, "%s", out);
	free(out);
	expect_phase(&ex, tracee, start, true, 64, TP_MASK_ALL);
	struct phase_wait pw = { &ex, 40 };
	cr_assert(pl_sub_pump(all, pl_check_msg, &ex, phase_arrived, &pw, 30000),
		  "only %" PRIu64 " of the second tracee's 40 events arrived", ex.phase_events);
	cr_assert_eq(ex.next_counter[TP_NET_INBOUND_MESSAGE], 20);
	cr_assert_eq(ex.next_counter[TP_MEMPOOL_ADDED], 20);

	/* ... and the publisher's stats, after all of it, confirm every seq with
	 * no reconnect and no NATS error (checked on every publisher_stats) */
	cr_assert(pl_sub_pump(all, pl_check_msg, &ex, all_confirmed, &ex, 20000),
		  "no publisher_stats confirming seq %" PRIu64 " (last confirmed %" PRIu64 ")",
		  ex.last_seq, ex.last_pub.confirmed_seq);
	cr_assert_eq(ex.last_pub.reconnects, 0);
	cr_assert_eq(ex.last_pub.nats_errors, 0);
	int status;
	cr_assert_eq(waitpid(P.publisher, &status, WNOHANG), 0, "the publisher exited");

	/* nothing went to a subject of more tokens; the hostile subscriptions got
	 * their one message each */
	cr_assert_eq(pl_sub_count(deep), 0, "%zu messages on %s.*.*.*.>", pl_sub_count(deep),
		     P.prefix);
	for (size_t i = 0; i < 3; i++)
		cr_assert_eq(pl_sub_count(hostile[i].sub), 1, "%zu messages for \"%s\"",
			     pl_sub_count(hostile[i].sub), hostile[i].msg_type);
	/* the server saw no protocol error from anyone */
	char *log = e2e_read_file(P.nats.log);
	cr_assert(log && !strstr(log, "[ERR]"), "nats-server logged an error:\n%s", log);
	free(log);

	pl_sub_stop(deep);
	for (size_t i = 0; i < 3; i++)
		pl_sub_stop(hostile[i].sub);
	pl_sub_stop(all);
}

/* ---- 3. the collector's records and the publisher's stats ---- */

struct stats_wait {
	struct expect *ex;
	uint64_t before, after_seq;
};

static bool stats_after(void *arg)
{
	struct stats_wait *w = arg;
	return w->ex->collector_stats > w->before && w->ex->stats_seq > w->after_seq;
}

Test(pipeline, collector_records_and_publisher_stats_reach_nats)
{
	pl_start_nats(&P, true);
	struct pl_js *js = pl_js_open(P.nc, "PIPELINE", "btc.>");
	const char *cx[] = { "--utxocache-tracepoints", "--coin-selection-tracepoints",
			     "--queue-size", "64M", "--attach-mode", "multi", "--stats-interval",
			     "1", NULL };
	cr_assert_eq(pl_start_collector(&P, cx), TP_COUNT - 1);
	const char *px[] = { "--stats-interval", "0.2", NULL };
	pl_start_publisher(&P, px);
	struct expect ex;
	expect_init(&ex, &P, TP_MASK_ALL, 64ull << 20);

	const char *args[] = { "--wait-attached", "scenario", NULL };
	run_scenario(&ex, args, TP_MASK_ALL);
	struct scenario_wait w = { &ex, TP_MASK_ALL };
	cr_assert(pl_js_pump(js, pl_check_msg, &ex, scenario_arrived, &w, 30000),
		  "only %" PRIu64 " of the scenario's %zu events reached the stream",
		  ex.events_total, scenario_event_count());
	cr_assert_eq(ex.started, 1);
	cr_assert_eq(ex.started_seq, 1);

	/* while everything runs: a periodic collector_stats after the scenario,
	 * counting all of it, and a publisher_stats confirming it */
	uint64_t last_event_seq = ex.last_event_seq;
	uint64_t stats_before = ex.collector_stats;
	cr_assert(pl_js_pump(js, pl_check_msg, &ex, all_confirmed, &ex, 10000),
		  "no publisher_stats confirmed seq %" PRIu64, ex.last_seq);
	cr_assert_geq(ex.last_pub.confirmed_seq, last_event_seq);
	cr_assert(ex.last_pub.collector_present, "publisher_stats: collector_present false while "
		  "the collector runs");
	/* a periodic collector_stats record written after the scenario's last
	 * event (--stats-interval 1) */
	struct stats_wait sw = { &ex, stats_before, last_event_seq };
	cr_assert(pl_js_pump(js, pl_check_msg, &ex, stats_after, &sw, 10000),
		  "no collector_stats after the scenario within 10 s (--stats-interval 1)");
	for (int tp = 1; tp < TP_COUNT; tp++)
		cr_assert_eq(ex.stats_events[tp], scenario_count(tp), "collector_stats: %s",
			     tracepoint_table[tp].event);
	cr_assert(pl_js_pump(js, pl_check_msg, &ex, all_confirmed, &ex, 10000),
		  "no publisher_stats confirmed seq %" PRIu64, ex.last_seq);

	expect_finish(&ex, js, 20000);
	expect_scenario_counts(&ex, TP_MASK_ALL);
	cr_assert_geq(ex.collector_stats, 2, "only %" PRIu64 " collector_stats", ex.collector_stats);
	cr_assert_geq(ex.publisher_stats, 2, "only %" PRIu64 " publisher_stats", ex.publisher_stats);
	pl_js_close(js);
}

Test(pipeline, loss_records_reach_nats_where_the_events_are_missing)
{
	pl_start_nats(&P, true);
	struct pl_js *js = pl_js_open(P.nc, "PIPELINE", "btc.>");
	/* one 4 KiB page for P2P messages: no payload chunk of 8 KiB or more
	 * can ever be reserved (docs/architecture.md, chunks) */
	const char *cx[] = { "--queue-size", "64M", "--attach-mode", "multi", "--ring-pages",
			     "p2pmsg=1", "--stats-interval", "1", NULL };
	cr_assert_eq(pl_start_collector(&P, cx), __builtin_popcount(default_mask()));
	pl_start_publisher(&P, NULL);
	struct expect ex;
	expect_init(&ex, &P, default_mask(), 64ull << 20);
	ex.allow_loss = true;

	uint32_t p2p = group_mask(GROUP_P2PMSG);
	const char *args[] = { "--wait-attached", "scenario", "--groups", "p2pmsg", NULL };
	run_scenario(&ex, args, p2p);
	/* until every message arrived or was reported lost */
	struct scenario_wait w = { &ex, p2p };
	cr_assert(pl_js_pump(js, pl_check_msg, &ex, scenario_arrived, &w, 30000),
		  "in: %" PRIu64 " arrived + %" PRIu64 " lost of %" PRIu64 "; out: %" PRIu64
		  " + %" PRIu64 " of %" PRIu64, ex.events[TP_NET_INBOUND_MESSAGE],
		  ex.lost[TP_NET_INBOUND_MESSAGE], scenario_count(TP_NET_INBOUND_MESSAGE),
		  ex.events[TP_NET_OUTBOUND_MESSAGE], ex.lost[TP_NET_OUTBOUND_MESSAGE],
		  scenario_count(TP_NET_OUTBOUND_MESSAGE));
	expect_finish(&ex, js, 20000);
	expect_scenario_counts(&ex, p2p);
	cr_assert_gt(ex.loss_records, 0);
	/* at least the messages with a chunk the ring cannot hold */
	uint64_t big[TP_COUNT] = { 0 };
	for (size_t i = 0; i < scenario_event_count(); i++) {
		const struct scenario_step *s = scenario_step_at(i);
		if ((s->tp == TP_NET_INBOUND_MESSAGE || s->tp == TP_NET_OUTBOUND_MESSAGE) &&
		    scenario_payload_size(s) >= 8192)
			big[s->tp]++;
	}
	cr_assert_geq(ex.lost[TP_NET_INBOUND_MESSAGE], big[TP_NET_INBOUND_MESSAGE]);
	cr_assert_geq(ex.lost[TP_NET_OUTBOUND_MESSAGE], big[TP_NET_OUTBOUND_MESSAGE]);
	for (int tp = 1; tp < TP_COUNT; tp++)
		if (!(p2p & TP_MASK(tp)))
			cr_assert_eq(ex.lost[tp], 0, "%s lost", tracepoint_table[tp].event);
	pl_js_close(js);
}

/* ---- 4. a block's burst through the whole pipeline ---- */

static bool burst_arrived(void *arg)
{
	struct phase_wait *w = arg;
	return w->ex->events_total >= w->events;
}

Test(pipeline, burst_with_default_sizes_arrives_whole)
{
	pl_start_nats(&P, true);
	struct pl_js *js = pl_js_open(P.nc, "PIPELINE", "btc.>");
	/* default ring sizes and default queue size */
	const char *cx[] = { "--utxocache-tracepoints", "--attach-mode", "multi", NULL };
	uint32_t mask = default_mask() | group_mask(GROUP_UTXOCACHE);
	cr_assert_eq(pl_start_collector(&P, cx), __builtin_popcount(mask));
	pl_start_publisher(&P, NULL);
	struct expect ex;
	expect_init(&ex, &P, mask, DEFAULT_QUEUE_SIZE);

	uint64_t start = e2e_unix_ns();
	char *out = NULL;
	const char *args[] = { "--wait-attached", "burst", NULL };
	pid_t tracee = pl_run_tracee(&P, args, &out, 30000);
	const enum tracepoint_id tps[] = { TP_MEMPOOL_REMOVED, TP_UTXOCACHE_SPENT, TP_UTXOCACHE_ADD,
					   TP_NET_INBOUND_MESSAGE };
	int64_t fired[TP_COUNT] = { 0 };
	uint64_t total = 0;
	for (size_t i = 0; i < 4; i++) {
		fired[tps[i]] = pl_fired(out, tps[i]);
		cr_assert_gt(fired[tps[i]], 0, "%s", out);
		total += (uint64_t)fired[tps[i]];
	}
	cr_assert_eq(fired[TP_MEMPOOL_REMOVED], SCENARIO_BURST_TXS, "%s", out);
	cr_assert_eq(fired[TP_UTXOCACHE_SPENT], 2 * SCENARIO_BURST_TXS, "%s", out);
	cr_assert_eq(fired[TP_UTXOCACHE_ADD], 2 * SCENARIO_BURST_TXS, "%s", out);
	free(out);
	/* the block on the main thread, P2P from a second one */
	expect_phase(&ex, tracee, start, true, SCENARIO_BURST_P2P_SIZE,
		     TP_MASK_ALL & ~TP_MASK(TP_NET_INBOUND_MESSAGE));

	struct phase_wait w = { &ex, total };
	bool all = pl_js_pump(js, pl_check_msg, &ex, burst_arrived, &w, 40000);
	if (!all)
		pl_dump_logs(&P);
	cr_assert(all, "only %" PRIu64 " of %" PRIu64 " events reached the stream", ex.events_total,
		  total);
	expect_finish(&ex, js, 20000);
	cr_assert_eq(ex.loss_records, 0);
	for (int tp = 1; tp < TP_COUNT; tp++)
		cr_assert_eq(ex.events[tp], (uint64_t)fired[tp], "%s: %" PRIu64 " arrived, %" PRId64
			     " fired", tracepoint_table[tp].event, ex.events[tp], fired[tp]);
	pl_js_close(js);
}
