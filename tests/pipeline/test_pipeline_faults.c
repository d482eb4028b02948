/* Faults in the whole pipeline with real eBPF: while the test tracee fires
 * real USDT probes in load mode, the NATS server is killed (SIGKILL and
 * SIGTERM) and restarted on the same port, or the publisher is killed with
 * SIGKILL and restarted. A JetStream stream (file storage) on that server
 * records what the server got; read back at the end, every message is
 * checked (check.c): every seq arrives, in order once duplicates are
 * dropped; a duplicate only of a seq after the highest confirmed_seq the
 * publisher reported before it, and identical to its first copy; no loss
 * record and no drop in the collector's stats; the events that arrived are
 * exactly what the tracee says it fired, with the values it fired. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pipeline.h"
#include "tracepoints_table.h"

#define NODE "pipeline.faults node"
#define STREAM "PIPELINE"
#define QUEUE_SIZE (64ull << 20)
#define P2P_SIZE 300
#define RATE "2000"        /* events a second */
#define OUTAGE_MS 3000     /* how long the server stays down */
#define PUBLISHER_DOWN_MS 1000 /* how long the publisher stays down */
#define FLOW_BYTES (256u << 10) /* queue bytes confirmed between two faults */
#define WAIT_MS 30000      /* deadline of each wait (a noisy 2-CPU machine) */

static struct pl P;

static void setup(void)
{
	pl_setup(&P, NODE);
}

static void teardown(void)
{
	pl_teardown(&P);
}

TestSuite(pipeline_faults, .init = setup, .fini = teardown, .timeout = 120);

/* The tracepoints the tracee fires: both P2P directions (payload bytes
 * checked) and two mempool events, all on its main thread. */
static const enum tracepoint_id fired_tps[] = { TP_MEMPOOL_ADDED, TP_MEMPOOL_REMOVED,
						TP_NET_INBOUND_MESSAGE, TP_NET_OUTBOUND_MESSAGE };
#define TEXT(x) #x
#define NUMBER_TEXT(x) TEXT(x)
#define MIX "mempool_added=2,mempool_removed=1,p2p:" NUMBER_TEXT(P2P_SIZE) "=1,p2p_out:" \
	NUMBER_TEXT(P2P_SIZE) "=1"

/* publisher_stats (with confirmed_seq) every 0.2 s */
static const char *const publisher_args[] = { "--stats-interval", "0.2", NULL };

/* nats-server with JetStream recording everything on btc.>, the collector
 * on every tracepoint, the publisher, and the tracee firing until told to
 * stop. The test's own connection is closed: it would reconnect by itself
 * while the server restarts; a new one reads the stream at the end. */
static void start_firing(struct expect *ex, bool server_faults, bool publisher_restarts)
{
	pl_start_nats(&P, true);
	pe_js_add_stream(P.nc, STREAM, "btc.>");
	natsConnection_Destroy(P.nc);
	P.nc = NULL;
	const char *cx[] = { "--utxocache-tracepoints", "--coin-selection-tracepoints",
			     "--queue-size", "64M", "--attach-mode", "multi", "--stats-interval",
			     "1", NULL };
	cr_assert_eq(pl_start_collector(&P, cx), TP_COUNT - 1);
	pl_start_publisher(&P, publisher_args);
	expect_init(ex, &P, TP_MASK_ALL, QUEUE_SIZE);
	ex->server_faults = server_faults;
	ex->publisher_restarts = publisher_restarts;

	uint64_t start = e2e_unix_ns();
	const char *args[] = { "--wait-attached", "load", "--mix", MIX, "--rate", RATE, "--count",
			       "0", NULL };
	pid_t tracee = pl_tracee_spawn(&P, args);
	expect_phase(ex, tracee, start, true, P2P_SIZE, TP_MASK_ALL);
}

struct release_wait {
	const char *queue_dir;
	uint64_t pos;
};

static bool released_to(void *arg)
{
	const struct release_wait *w = arg;
	return pe_release_pos(w->queue_dir) >= w->pos;
}

/* When the next fault comes: */
enum moment {
	CAUGHT_UP, /* the publisher released (which it does only for records the
		    * server confirmed) everything the collector had written into
		    * the queue by now, and FLOW_BYTES more */
	RESENDING, /* FLOW_BYTES more released than now: right after a restart,
		    * while the backlog of the outage is still being published */
};

static void wait_released(enum moment m, const char *when)
{
	uint64_t from = pe_release_pos(P.t.queue_dir);
	uint64_t base = m == CAUGHT_UP ? pe_write_pos(P.t.queue_dir) : from;
	struct release_wait w = { P.t.queue_dir, base + FLOW_BYTES };
	if (!e2e_wait_until(released_to, &w, WAIT_MS)) {
		pl_dump_logs(&P);
		cr_assert_fail("%s: in %d ms the publisher released the queue from byte %" PRIu64
			       " to %" PRIu64 ", expected at least to %" PRIu64 " (the tracee fires "
			       RATE " events a second)", when, WAIT_MS, from,
			       pe_release_pos(P.t.queue_dir), w.pos);
	}
}

/* Waits until the publisher's log says needle count times. */
static void wait_publisher_log(const char *needle, unsigned count, const char *when)
{
	if (!pe_wait_file_count(P.publisher_log, needle, count, WAIT_MS)) {
		pl_dump_logs(&P);
		cr_assert_fail("%s: in %d ms the publisher logged \"%s\" %u times, expected %u", when,
			       WAIT_MS, needle, pe_file_count(P.publisher_log, needle), count);
	}
}

/* Fault i (from 0) named what: waits for its moment m, names it in when
 * (for messages) and returns the time it begins (pe_now_ms). */
static uint64_t fault_begins(const char *what, unsigned i, enum moment m, char *when, size_t len)
{
	snprintf(when, len, "%s %u", what, i + 1);
	wait_released(m, when);
	return pe_now_ms();
}

/* Keeps what was stopped at stopped_at (pe_now_ms) down for down_ms. */
static void stay_down(uint64_t stopped_at, unsigned down_ms)
{
	uint64_t now = pe_now_ms();
	if (now < stopped_at + down_ms)
		pe_sleep_ms((unsigned)(stopped_at + down_ms - now));
}

/* Stops the tracee, reads the whole stream through a new connection and
 * checks it (expect_finish), then that the events are exactly the ones
 * the tracee fired. */
static void stop_firing_and_check(struct expect *ex, unsigned connected_periods)
{
	char *out = NULL;
	pl_tracee_finish(&P, SIGTERM, &out, WAIT_MS);
	int64_t fired[TP_COUNT] = { 0 };
	uint64_t total = 0;
	for (size_t i = 0; i < sizeof(fired_tps) / sizeof(fired_tps[0]); i++) {
		enum tracepoint_id tp = fired_tps[i];
		fired[tp] = pl_fired(out, tp);
		cr_assert_gt(fired[tp], 0, "the tracee fired %" PRId64 " %s, expected some: %s",
			     fired[tp], tracepoint_table[tp].event, out);
		total += (uint64_t)fired[tp];
	}
	free(out);

	pl_connect(&P);
	struct pl_js *js = pl_js_reader(P.nc, STREAM, "btc.>");
	expect_finish(ex, js, 120000);
	pl_js_close(js);
	for (int tp = 1; tp < TP_COUNT; tp++)
		cr_assert_eq(ex->events[tp], (uint64_t)fired[tp], "%s: %" PRIu64 " distinct events "
			     "arrived, the tracee fired %" PRId64, tracepoint_table[tp].event,
			     ex->events[tp], fired[tp]);
	cr_assert_eq(ex->events_total, total, "%" PRIu64 " distinct events arrived, the tracee fired %"
		     PRIu64, ex->events_total, total);
	cr_assert_eq(ex->loss_records, 0, "%" PRIu64 " loss records", ex->loss_records);
	cr_assert_eq(ex->records, ex->last_seq, "%" PRIu64 " distinct records for seqs 1..%" PRIu64,
		     ex->records, ex->last_seq);
	/* the duplicate check had confirmed_seqs to compare against: stats every
	 * 0.2 s, and each period between two faults lasts longer than that */
	cr_assert_geq(ex->publisher_stats, connected_periods, "%" PRIu64 " publisher_stats in the "
		      "stream, expected at least one for each of the %u periods the publisher was "
		      "connected", ex->publisher_stats, connected_periods);
}

/* ---- the NATS server dies and comes back ---- */

/* Twice SIGKILL, twice SIGTERM; each time the server stays down
 * OUTAGE_MS. The first two outages come when the publisher has caught up,
 * the last two while it still publishes the backlog of the outage before:
 * then the server dies holding records it stored but had not confirmed. */
Test(pipeline_faults, nats_server_killed_and_restarted_while_the_tracee_fires)
{
	static const struct {
		int sig;
		const char *name;
		enum moment when;
	} outages[] = {
		{ SIGKILL, "SIGKILL outage", CAUGHT_UP },
		{ SIGTERM, "SIGTERM outage", CAUGHT_UP },
		{ SIGKILL, "SIGKILL outage", RESENDING },
		{ SIGTERM, "SIGTERM outage", RESENDING },
	};
	const unsigned n = sizeof(outages) / sizeof(outages[0]);
	struct expect ex;
	start_firing(&ex, true, false);
	for (unsigned i = 0; i < n; i++) {
		char when[96];
		uint64_t killed_at = fault_begins(outages[i].name, i, outages[i].when, when,
						  sizeof(when));
		pe_nats_kill(&P.nats, outages[i].sig);
		wait_publisher_log("disconnected from NATS server", i + 1, when);
		/* the server stays down while the tracee keeps firing */
		stay_down(killed_at, OUTAGE_MS);
		pe_nats_restart(&P.nats);
		wait_publisher_log("reconnected to NATS server", i + 1, when);
	}
	wait_released(CAUGHT_UP, "after the last outage");
	stop_firing_and_check(&ex, n + 1);
	cr_assert_eq(ex.last_pub.reconnects, n, "final publisher_stats: reconnects %" PRIu64
		     ", the server was restarted %u times", ex.last_pub.reconnects, n);
}

/* ---- the publisher dies and is started again ---- */

/* SIGKILL three times; the publisher stays down PUBLISHER_DOWN_MS so that
 * a backlog builds up, and the second kill comes while the next run still
 * publishes it. */
Test(pipeline_faults, publisher_killed_and_restarted_while_the_tracee_fires)
{
	static const enum moment kills[] = { CAUGHT_UP, RESENDING, CAUGHT_UP };
	const unsigned n = sizeof(kills) / sizeof(kills[0]);
	struct expect ex;
	start_firing(&ex, false, true);
	for (unsigned i = 0; i < n; i++) {
		char when[64];
		uint64_t killed_at = fault_begins("publisher kill", i, kills[i], when, sizeof(when));
		pl_kill_publisher(&P);
		stay_down(killed_at, PUBLISHER_DOWN_MS);
		pl_start_publisher(&P, publisher_args);
	}
	wait_released(CAUGHT_UP, "after the last restart");
	stop_firing_and_check(&ex, n + 1);
	cr_assert_eq(P.publisher_run_count, n + 1);
	cr_assert_eq(ex.pub_run, n, "the last publisher_stats are from run %u of %u", ex.pub_run + 1,
		     n + 1);
}
