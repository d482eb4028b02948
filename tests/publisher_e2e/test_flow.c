/* ebpf-publisher end to end without eBPF: a test producer writes records
 * into a real queue, a real nats-server runs on a free loopback port, and
 * what arrives is decoded and checked. Flags, every record kind, waiting for
 * the queue and following collector restarts, max_payload, SIGTERM, idle
 * CPU. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "pe.h"
#include "tracepoints_table.h"

#define QUEUE_SIZE (16ull << 20)

static struct pe_env env;
static struct pe_nats ns;
static struct pe_pub pub;
static struct pe_producer prod;
static natsConnection *sub_nc;
static struct pe_sub *sub;

static void setup(void)
{
	memset(&ns, 0, sizeof(ns));
	memset(&pub, 0, sizeof(pub));
	memset(&prod, 0, sizeof(prod));
	sub_nc = NULL;
	sub = NULL;
}

static void teardown(void)
{
	if (pub.pid > 0) {
		pe_pub_kill(&pub);
		pe_pub_dump_log(&pub);
	}
	if (sub_nc)
		natsConnection_Destroy(sub_nc);
	if (sub)
		pe_sub_stop(sub);
	pe_producer_close(&prod);
	pe_nats_stop(&ns);
	pe_env_teardown(&env);
}

static void subscribe_all(void)
{
	char subject[128];
	snprintf(subject, sizeof(subject), "%s.>", env.prefix);
	sub_nc = pe_nats_connect(&ns);
	sub = pe_sub_start(sub_nc, subject);
}

/* ---- conditions over what arrived ---- */

struct seq_goal {
	uint64_t stream_id;
	uint64_t last;    /* every seq up to here */
	uint64_t count;   /* this many records with a seq */
};

static bool has_records(const struct pe_events *l, void *arg)
{
	const struct seq_goal *g = arg;
	uint64_t n = 0;
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].has_seq && l->v[i].stream_id == g->stream_id)
			n++;
	return n >= g->count;
}

struct stats_goal {
	uint64_t confirmed_seq;
	uint64_t refused, malformed;
};

static bool has_stats(const struct pe_events *l, void *arg)
{
	const struct stats_goal *g = arg;
	for (size_t i = 0; i < l->n; i++) {
		const struct pe_event *ev = &l->v[i];
		if (strcmp(ev->event, "extractor:publisher_stats") == 0 &&
		    ev->confirmed_seq >= g->confirmed_seq && ev->refused_too_large >= g->refused &&
		    ev->malformed >= g->malformed)
			return true;
	}
	return false;
}

struct presence_goal {
	uint64_t stream_id;
	bool present;
};

/* a publisher_stats message after the last one that did not match */
static bool has_presence(const struct pe_events *l, void *arg)
{
	const struct presence_goal *g = arg;
	for (size_t i = l->n; i-- > 0;) {
		const struct pe_event *ev = &l->v[i];
		if (strcmp(ev->event, "extractor:publisher_stats") == 0)
			return ev->stream_id == g->stream_id && ev->collector_present == g->present &&
			       ev->connected;
	}
	return false;
}

static const struct pe_event *find_seq(const struct pe_events *l, uint64_t stream_id,
				       uint64_t seq)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].has_seq && l->v[i].stream_id == stream_id && l->v[i].seq == seq)
			return &l->v[i];
	return NULL;
}

static unsigned count_in_file(const char *path, const char *needle)
{
	char *text = e2e_read_file(path);
	unsigned n = 0;
	for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle))
		n++;
	free(text);
	return n;
}

/* ---- flags ---- */

TestSuite(pub_flags, .timeout = 60);

static void expect_usage_error(const char *const args[], const char *message)
{
	const char *argv[16] = { PUBLISHER_PATH };
	int n = 1;
	for (int i = 0; args[i]; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	char out[4096];
	int st = e2e_run(argv, out, sizeof(out), 10000);
	cr_expect_eq(st, 2, "%s %s: exit %d, expected 2; output:\n%s", args[0],
		     args[1] ? args[1] : "", st, out);
	cr_expect(strstr(out, "usage: ebpf-publisher") != NULL, "no usage line in:\n%s", out);
	cr_expect(strstr(out, message) != NULL, "'%s' not in:\n%s", message, out);
}

Test(pub_flags, bad_flags_exit_2_with_usage)
{
	expect_usage_error((const char *const[]){ "--no-such-flag", NULL }, "unknown option");
	expect_usage_error((const char *const[]){ "--queue", NULL }, "needs a value");
	expect_usage_error((const char *const[]){ "--drain-timeout", "soon", NULL },
			   "--drain-timeout");
	expect_usage_error((const char *const[]){ "--drain-timeout", "-1", NULL },
			   "--drain-timeout");
	expect_usage_error((const char *const[]){ "--stats-interval", "0", NULL },
			   "--stats-interval");
	expect_usage_error((const char *const[]){ "--log-level", "loud", NULL }, "--log-level");
	expect_usage_error((const char *const[]){ "--subject-prefix", "a..b", NULL },
			   "--subject-prefix");
	expect_usage_error((const char *const[]){ "--subject-prefix", "btc.*", NULL },
			   "wildcard");
	expect_usage_error((const char *const[]){ "--nats-address", "a:1,,b:2", NULL },
			   "empty server");
	expect_usage_error((const char *const[]){ "--nats-address", "http://x:1", NULL },
			   "scheme");
	expect_usage_error((const char *const[]){ "--nats-password", "pw", NULL },
			   "needs --nats-username");
	expect_usage_error((const char *const[]){ "--nats-user", "u", NULL },
			   "--nats-password");
	expect_usage_error((const char *const[]){ "--nats-tls-cert", "c.pem", NULL },
			   "--nats-tls-key");
	expect_usage_error((const char *const[]){ "extra", NULL }, "unexpected argument");
}

Test(pub_flags, help_and_version_exit_0)
{
	char out[8192];
	const char *help[] = { PUBLISHER_PATH, "--help", NULL };
	cr_assert_eq(e2e_run(help, out, sizeof(out), 10000), 0);
	cr_assert(strstr(out, "usage: ebpf-publisher") && strstr(out, "--drain-timeout"), "%s", out);
	const char *version[] = { PUBLISHER_PATH, "--version", NULL };
	cr_assert_eq(e2e_run(version, out, sizeof(out), 10000), 0);
	cr_assert(strstr(out, "ebpf-publisher " EXTRACTOR_VERSION), "%s", out);
}

/* ---- every record kind ---- */

TestSuite(pub_flow, .init = setup, .fini = teardown, .timeout = 120);

struct written {
	uint64_t seq;
	char subject[256];
	char event[64];
	uint64_t tag;
};

static void expect_written(struct written *w, size_t *n, uint64_t seq, const char *subject_tail,
			   const char *event, uint64_t tag)
{
	cr_assert_neq(seq, 0, "queue full");
	w[*n].seq = seq;
	snprintf(w[*n].subject, sizeof(w[*n].subject), "%s.%s", env.prefix, subject_tail);
	snprintf(w[*n].event, sizeof(w[*n].event), "%s", event);
	w[*n].tag = tag;
	(*n)++;
}

static size_t write_every_kind(struct written *w, size_t n, uint64_t tag0)
{
	expect_written(w, &n, pe_write_started(&prod, tag0), "extractor.started",
		       "extractor:started", tag0);
	for (int tp = 1; tp < TP_COUNT; tp++) {
		const struct tracepoint_info *ti = &tracepoint_table[tp];
		char tail[128];
		uint32_t payload = tp == TP_NET_INBOUND_MESSAGE ? 5000 : 100;
		if (tp == TP_NET_INBOUND_MESSAGE || tp == TP_NET_OUTBOUND_MESSAGE)
			snprintf(tail, sizeof(tail), "%s.%s.%s", ti->provider, ti->name,
				 payload > 1000 ? "block" : "ping");
		else
			snprintf(tail, sizeof(tail), "%s.%s", ti->provider, ti->name);
		uint64_t tag = tag0 + (uint64_t)tp;
		expect_written(w, &n, pe_write_event(&prod, (enum tracepoint_id)tp, payload, tag), tail,
			       ti->event, tag);
	}
	expect_written(w, &n, pe_write_loss(&prod, tag0 + 100), "extractor.loss", "extractor:loss",
		       tag0 + 100);
	expect_written(w, &n, pe_write_stats(&prod, tag0 + 101), "extractor.collector_stats",
		       "extractor:collector_stats", tag0 + 101);
	return n;
}

static void check_written(const struct pe_events *got, const struct written *w, size_t n,
			  uint64_t stream_id)
{
	for (size_t i = 0; i < n; i++) {
		const struct pe_event *ev = find_seq(got, stream_id, w[i].seq);
		cr_assert_not_null(ev, "seq %" PRIu64 " (%s) did not arrive", w[i].seq, w[i].event);
		cr_expect_str_eq(ev->subject, w[i].subject, "seq %" PRIu64, w[i].seq);
		cr_expect_str_eq(ev->event, w[i].event, "seq %" PRIu64, w[i].seq);
		cr_expect_eq(ev->time_ns, w[i].tag, "seq %" PRIu64 " time_ns", w[i].seq);
	}
	/* in order: seqs of this stream only go up, each exactly once */
	uint64_t prev = 0;
	for (size_t i = 0; i < got->n; i++) {
		if (!got->v[i].has_seq || got->v[i].stream_id != stream_id)
			continue;
		cr_assert_gt(got->v[i].seq, prev, "seq %" PRIu64 " after %" PRIu64, got->v[i].seq,
			     prev);
		prev = got->v[i].seq;
	}
}

Test(pub_flow, every_record_kind_on_its_subject_in_order)
{
	pe_env_setup(&env, "kinds");
	pe_nats_start(&ns, &env, 0, false, NULL);
	subscribe_all();
	pe_producer_open(&prod, env.queue_dir, QUEUE_SIZE);
	uint64_t sid = queue_stream_id(prod.q);

	struct written w[128];
	size_t n = write_every_kind(w, 0, 1000);
	uint64_t bad = pe_write_malformed(&prod);
	cr_assert_neq(bad, 0);
	expect_written(w, &n, pe_write_event(&prod, TP_MEMPOOL_ADDED, 0, 2000), "mempool.added",
		       "mempool:added", 2000);
	pe_notify(&prod);

	pe_pub_start(&pub, &env, ns.port, (const char *const[]){ "--stats-interval", "0.2", NULL });
	cr_assert(pe_pub_wait_ready(&env, PE_DEADLINE_MS), "no ready file");
	struct seq_goal g = { sid, 0, n };
	if (!pe_sub_wait(sub, has_records, &g, PE_DEADLINE_MS)) {
		pe_pub_dump_log(&pub);
		cr_assert_fail("not every record arrived");
	}

	/* records written while the publisher sleeps wake it (doorbell) */
	n = write_every_kind(w, n, 3000);
	pe_notify(&prod);
	g.count = n;
	cr_assert(pe_sub_wait(sub, has_records, &g, PE_DEADLINE_MS), "the second batch did not arrive");

	struct stats_goal sg = { prod.last_seq, 0, 1 };
	cr_assert(pe_sub_wait(sub, has_stats, &sg, PE_DEADLINE_MS),
		  "no publisher_stats with confirmed_seq %" PRIu64 " and malformed 1", prod.last_seq);

	struct pe_events got = { 0 };
	pe_sub_snapshot(sub, &got);
	check_written(&got, w, n, sid);
	cr_assert_null(find_seq(&got, sid, bad), "the malformed record was published");
	/* the stats say what happened */
	const struct pe_event *last_stats = NULL;
	for (size_t i = 0; i < got.n; i++)
		if (strcmp(got.v[i].event, "extractor:publisher_stats") == 0)
			last_stats = &got.v[i];
	cr_assert_not_null(last_stats);
	cr_expect_eq(last_stats->stream_id, sid);
	cr_expect_eq(last_stats->malformed, 1);
	cr_expect_eq(last_stats->refused_too_large, 0);
	cr_expect_geq(last_stats->published, n);
	cr_expect_eq(last_stats->last_read_seq, prod.last_seq);
	cr_expect(last_stats->connected);
	cr_expect(last_stats->collector_present, "the test producer holds the queue lock");
	char stats_subject[128];
	snprintf(stats_subject, sizeof(stats_subject), "%s.extractor.publisher_stats", env.prefix);
	cr_expect_str_eq(last_stats->subject, stats_subject);
	pe_events_free(&got);

	cr_assert(e2e_file_contains(pub.log, "malformed"), "the malformed record was not logged");
	cr_assert_eq(pe_pub_stop(&pub, 15000), 0, "SIGTERM: exit status");
	cr_assert_eq(pe_release_pos(env.queue_dir), queue_write_pos(prod.q),
		     "not everything was released");
}

/* ---- the queue comes and goes ---- */

Test(pub_flow, waits_for_the_queue_and_follows_collector_restarts)
{
	pe_env_setup(&env, "follow");
	pe_nats_start(&ns, &env, 0, false, NULL);
	subscribe_all();
	pe_pub_start(&pub, &env, ns.port, (const char *const[]){ "--stats-interval", "0.2", NULL });
	cr_assert(e2e_wait_file_contains(pub.log, "waiting for the queue", PE_DEADLINE_MS),
		  "no 'waiting for the queue' in the log");
	cr_assert_neq(access(env.ready_file, F_OK), 0, "ready before the queue exists");
	/* its own stats flow while there is no collector */
	struct presence_goal pg = { 0, false };
	cr_assert(pe_sub_wait(sub, has_presence, &pg, PE_DEADLINE_MS),
		  "no publisher_stats while the queue does not exist");

	/* the collector starts */
	pe_producer_open(&prod, env.queue_dir, QUEUE_SIZE);
	uint64_t sid = queue_stream_id(prod.q);
	pe_write_started(&prod, 1);
	for (int i = 0; i < 10; i++)
		pe_write_event(&prod, TP_MEMPOOL_ADDED, 0, (uint64_t)i);
	pe_notify(&prod);
	cr_assert(pe_pub_wait_ready(&env, PE_DEADLINE_MS), "no ready file once the queue exists");
	struct seq_goal g = { sid, 0, 11 };
	cr_assert(pe_sub_wait(sub, has_records, &g, PE_DEADLINE_MS), "first records did not arrive");

	pg = (struct presence_goal){ sid, true };
	cr_assert(pe_sub_wait(sub, has_presence, &pg, PE_DEADLINE_MS),
		  "publisher_stats do not say the collector is there");

	/* the collector stops: the stats say so */
	pe_producer_close(&prod);
	pg = (struct presence_goal){ sid, false };
	cr_assert(pe_sub_wait(sub, has_presence, &pg, PE_DEADLINE_MS),
		  "publisher_stats do not say the collector is gone");

	/* the collector restarts: same data file, same stream, the sequence goes on */
	pe_producer_open(&prod, env.queue_dir, 0);
	cr_assert_eq(queue_stream_id(prod.q), sid);
	pe_write_started(&prod, 2);
	for (int i = 0; i < 10; i++)
		pe_write_event(&prod, TP_MEMPOOL_REMOVED, 0, (uint64_t)i);
	pe_notify(&prod);
	g.count = 22;
	cr_assert(pe_sub_wait(sub, has_records, &g, PE_DEADLINE_MS),
		  "records after the collector restart did not arrive");

	/* a new queue replaces the data file: another stream, seq from 1 */
	pe_producer_close(&prod);
	char path[400];
	snprintf(path, sizeof(path), "%s/" QUEUE_DATA_FILE, env.queue_dir);
	cr_assert_eq(unlink(path), 0);
	pe_producer_open(&prod, env.queue_dir, QUEUE_SIZE);
	uint64_t sid2 = queue_stream_id(prod.q);
	cr_assert_neq(sid2, sid);
	pe_write_started(&prod, 3);
	for (int i = 0; i < 10; i++)
		pe_write_event(&prod, TP_MEMPOOL_REJECTED, 0, (uint64_t)i);
	pe_notify(&prod);
	struct seq_goal g2 = { sid2, 0, 11 };
	if (!pe_sub_wait(sub, has_records, &g2, PE_DEADLINE_MS)) {
		pe_pub_dump_log(&pub);
		cr_assert_fail("records of the new queue did not arrive");
	}

	struct pe_events got = { 0 };
	pe_sub_snapshot(sub, &got);
	size_t n1 = 0, n2 = 0;
	for (size_t i = 0; i < got.n; i++) {
		const struct pe_event *ev = &got.v[i];
		if (!ev->has_seq)
			continue;
		if (ev->stream_id == sid) {
			cr_assert_eq(ev->seq, ++n1, "stream 1: seq %" PRIu64, ev->seq);
		} else {
			cr_assert_eq(ev->stream_id, sid2);
			cr_assert_eq(ev->seq, ++n2, "stream 2: seq %" PRIu64, ev->seq);
			cr_assert_eq(n1, 22, "stream 2 began before stream 1 was done");
		}
	}
	cr_assert_eq(n1, 22);
	cr_assert_eq(n2, 11);
	pe_events_free(&got);
	cr_assert_eq(pe_pub_stop(&pub, 15000), 0);
}

/* ---- max_payload ---- */

Test(pub_flow, max_payload_refusal_counted_logged_once_rest_flows)
{
	pe_env_setup(&env, "maxpayload");
	pe_nats_start(&ns, &env, 0, false, "max_payload: 1024\n");
	subscribe_all();
	pe_producer_open(&prod, env.queue_dir, QUEUE_SIZE);
	uint64_t sid = queue_stream_id(prod.q);
	uint64_t big[2];
	int bigs = 0;
	for (int i = 0; i < 15; i++) {
		pe_write_event(&prod, i % 2 ? TP_MEMPOOL_ADDED : TP_NET_OUTBOUND_MESSAGE, 200,
			       (uint64_t)i);
		if (i == 4 || i == 9)
			big[bigs++] = pe_write_event(&prod, TP_NET_INBOUND_MESSAGE, 5000, 99);
	}
	pe_notify(&prod);
	pe_pub_start(&pub, &env, ns.port, (const char *const[]){ "--stats-interval", "0.2", NULL });
	struct seq_goal g = { sid, 0, 15 };
	cr_assert(pe_sub_wait(sub, has_records, &g, PE_DEADLINE_MS), "the small records did not arrive");
	struct stats_goal sg = { prod.last_seq, 2, 0 };
	if (!pe_sub_wait(sub, has_stats, &sg, PE_DEADLINE_MS)) {
		pe_pub_dump_log(&pub);
		cr_assert_fail("no publisher_stats with refused_too_large 2 and everything confirmed");
	}
	struct pe_events got = { 0 };
	pe_sub_snapshot(sub, &got);
	for (uint64_t s = 1; s <= prod.last_seq; s++) {
		bool is_big = s == big[0] || s == big[1];
		if (is_big)
			cr_assert_null(find_seq(&got, sid, s), "the 5000-byte record arrived");
		else
			cr_assert_not_null(find_seq(&got, sid, s), "seq %" PRIu64 " did not arrive", s);
	}
	pe_events_free(&got);
	cr_assert_eq(pe_pub_stop(&pub, 15000), 0);
	/* logged once, with the limit and the fix */
	cr_assert_eq(count_in_file(pub.log, "message too large for the NATS server"), 1,
		     "the refusal must be logged exactly once");
	cr_assert(e2e_file_contains(pub.log, "more than the server's max_payload of 1024 bytes"));
	cr_assert(e2e_file_contains(pub.log, "Fix: raise max_payload in nats-server.conf "
					     "(max_payload: 5242880 is enough for a 4,000,000-byte "
					     "block)"));
	cr_assert(e2e_file_contains(pub.log, "net:inbound_message"));
}

/* ---- SIGTERM ---- */

Test(pub_flow, sigterm_publishes_what_the_queue_holds)
{
	pe_env_setup(&env, "drain");
	pe_nats_start(&ns, &env, 0, false, NULL);
	subscribe_all();
	pe_producer_open(&prod, env.queue_dir, 64ull << 20);
	uint64_t sid = queue_stream_id(prod.q);
	const uint64_t n = 20000;
	for (uint64_t i = 0; i < n; i++)
		cr_assert_neq(pe_write_event(&prod, i % 3 ? TP_MEMPOOL_ADDED : TP_NET_INBOUND_MESSAGE,
					     300, i),
			      0);
	pe_notify(&prod);
	pe_pub_start(&pub, &env, ns.port, NULL);
	cr_assert(pe_pub_wait_ready(&env, PE_DEADLINE_MS));
	uint64_t t0 = pe_now_ms();
	cr_assert_eq(pe_pub_stop(&pub, 15000), 0, "SIGTERM: exit status");
	fprintf(stderr, "sigterm drain of %" PRIu64 " records: exit after %" PRIu64 " ms\n", n,
		pe_now_ms() - t0);
	cr_assert_eq(pe_release_pos(env.queue_dir), queue_write_pos(prod.q),
		     "the queue was not drained and confirmed");
	struct seq_goal g = { sid, 0, n };
	cr_assert(pe_sub_wait(sub, has_records, &g, PE_DEADLINE_MS), "not all %" PRIu64 " arrived", n);
	struct pe_events got = { 0 };
	pe_sub_snapshot(sub, &got);
	uint64_t next = 1;
	for (size_t i = 0; i < got.n; i++)
		if (got.v[i].has_seq)
			cr_assert_eq(got.v[i].seq, next++);
	cr_assert_eq(next, n + 1);
	pe_events_free(&got);
}

Test(pub_flow, sigterm_with_the_server_down_exits_in_time_and_keeps_the_records)
{
	pe_env_setup(&env, "draindown");
	int port = pe_free_port();
	pe_producer_open(&prod, env.queue_dir, QUEUE_SIZE);
	uint64_t sid = queue_stream_id(prod.q);
	for (int i = 0; i < 100; i++)
		pe_write_event(&prod, TP_MEMPOOL_ADDED, 0, (uint64_t)i);
	pe_notify(&prod);
	uint64_t release0 = pe_release_pos(env.queue_dir);

	pe_pub_start(&pub, &env, port, (const char *const[]){ "--drain-timeout", "2", NULL });
	cr_assert(pe_pub_wait_ready(&env, PE_DEADLINE_MS));
	uint64_t t0 = pe_now_ms();
	kill(pub.pid, SIGTERM);
	int st = e2e_wait_exit(pub.pid, 10000);
	uint64_t took = pe_now_ms() - t0;
	pub.pid = 0;
	cr_assert_eq(st, 0, "exit status %d", st);
	cr_assert_leq(took, 3000, "exit took %" PRIu64 " ms with --drain-timeout 2", took);
	cr_assert_eq(pe_release_pos(env.queue_dir), release0, "records were released unconfirmed");

	/* the next start publishes them */
	pe_nats_start(&ns, &env, port, false, NULL);
	subscribe_all();
	pe_pub_start(&pub, &env, port, NULL);
	struct seq_goal g = { sid, 0, 100 };
	cr_assert(pe_sub_wait(sub, has_records, &g, PE_DEADLINE_MS),
		  "the restarted publisher did not publish the records");
	cr_assert_eq(pe_pub_stop(&pub, 15000), 0);
	cr_assert_eq(pe_release_pos(env.queue_dir), queue_write_pos(prod.q));
}

Test(pub_flow, second_signal_exits_at_once)
{
	pe_env_setup(&env, "twice");
	int port = pe_free_port(); /* no server: the drain waits for the deadline */
	pe_producer_open(&prod, env.queue_dir, QUEUE_SIZE);
	for (int i = 0; i < 10; i++)
		pe_write_event(&prod, TP_MEMPOOL_ADDED, 0, (uint64_t)i);
	pe_notify(&prod);
	pe_pub_start(&pub, &env, port, (const char *const[]){ "--drain-timeout", "30", NULL });
	cr_assert(pe_pub_wait_ready(&env, PE_DEADLINE_MS));
	kill(pub.pid, SIGTERM);
	cr_assert(e2e_wait_file_contains(pub.log, "publishing what the queue holds", 10000));
	uint64_t t0 = pe_now_ms();
	kill(pub.pid, SIGINT);
	int st = e2e_wait_exit(pub.pid, 10000);
	pub.pid = 0;
	cr_assert_eq(st, 0, "exit status %d", st);
	cr_assert_leq(pe_now_ms() - t0, 1000);
	cr_assert_eq(pe_release_pos(env.queue_dir), 0);
}

/* ---- idle ---- */

Test(pub_flow, idle_means_idle)
{
	pe_env_setup(&env, "idle");
	pe_nats_start(&ns, &env, 0, false, NULL);
	pe_producer_open(&prod, env.queue_dir, QUEUE_SIZE);
	pe_pub_start(&pub, &env, ns.port, NULL);
	cr_assert(pe_pub_wait_ready(&env, PE_DEADLINE_MS));
	cr_assert(e2e_wait_file_contains(pub.log, "connected to NATS server", PE_DEADLINE_MS));
	pe_sleep_ms(500); /* let start-up work finish; not a readiness wait */
	uint64_t before = pe_cpu_ticks(pub.pid);
	pe_sleep_ms(3000);
	uint64_t after = pe_cpu_ticks(pub.pid);
	fprintf(stderr, "idle publisher: %" PRIu64 " clock ticks of CPU in 3 s\n", after - before);
	cr_assert_leq(after - before, 5, "the idle publisher used %" PRIu64 " ticks in 3 s",
		      after - before);
	cr_assert_eq(pe_pub_stop(&pub, 15000), 0);
}

/* ---- TLS ---- */

static void make_certs(const char *dir)
{
	char cmd[4096];
	snprintf(cmd, sizeof(cmd),
		 "(cd '%s' && "
		 "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -days 1 "
		 "-subj /CN=e2e-ca && "
		 "openssl req -x509 -newkey rsa:2048 -nodes -keyout other-key.pem -out other-ca.pem "
		 "-days 1 -subj /CN=other-ca && "
		 "openssl req -newkey rsa:2048 -nodes -keyout server-key.pem -out server.csr "
		 "-subj /CN=localhost && "
		 "printf 'subjectAltName=DNS:localhost\\n' > ext.cnf && "
		 "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial "
		 "-out server.pem -days 1 -extfile ext.cnf) >/dev/null 2>&1",
		 dir);
	cr_assert_eq(system(cmd), 0, "making test certificates with openssl failed");
}

struct release_goal {
	const char *queue_dir;
	uint64_t pos;
};

static bool released(void *arg)
{
	struct release_goal *g = arg;
	return pe_release_pos(g->queue_dir) >= g->pos;
}

Test(pub_flow, tls_with_ca_and_host_name)
{
	pe_env_setup(&env, "tls");
	make_certs(env.dir);
	char conf[1024];
	snprintf(conf, sizeof(conf),
		 "tls {\n  cert_file: \"%s/server.pem\"\n  key_file: \"%s/server-key.pem\"\n}\n",
		 env.dir, env.dir);
	pe_nats_start(&ns, &env, 0, false, conf);
	pe_producer_open(&prod, env.queue_dir, QUEUE_SIZE);
	for (int i = 0; i < 50; i++)
		pe_write_event(&prod, TP_MEMPOOL_ADDED, 0, (uint64_t)i);
	pe_notify(&prod);
	char addr[64], ca[400], other[400];
	snprintf(addr, sizeof(addr), "localhost:%d", ns.port);
	snprintf(ca, sizeof(ca), "%s/ca.pem", env.dir);
	snprintf(other, sizeof(other), "%s/other-ca.pem", env.dir);

	/* a CA that did not sign the server's certificate: no connection */
	pe_pub_start(&pub, &env, -1,
		     (const char *const[]){ "--nats-address", addr, "--nats-tls-ca", other, NULL });
	cr_assert(pe_pub_wait_ready(&env, PE_DEADLINE_MS));
	cr_assert(e2e_wait_file_contains(pub.log, "cannot connect to NATS at", PE_DEADLINE_MS));
	cr_assert(e2e_file_contains(pub.log, "certificate verify failed") ||
		  e2e_file_contains(pub.log, "SSL"), "the TLS failure is not named in the log");
	pe_sleep_ms(1000);
	cr_assert_eq(pe_release_pos(env.queue_dir), 0, "published to a server it cannot trust");
	cr_assert_eq(pe_pub_stop(&pub, 15000), 0);

	/* the right CA and the certificate's host name: published */
	pe_pub_start(&pub, &env, -1,
		     (const char *const[]){ "--nats-address", addr, "--nats-tls-ca", ca, NULL });
	struct release_goal g = { env.queue_dir, queue_write_pos(prod.q) };
	if (!e2e_wait_until(released, &g, PE_DEADLINE_MS)) {
		pe_pub_dump_log(&pub);
		cr_assert_fail("nothing confirmed over TLS");
	}
	cr_assert_eq(pe_pub_stop(&pub, 15000), 0);
}

/* ---- user and password ---- */

Test(pub_flow, user_and_password_file)
{
	pe_env_setup(&env, "auth");
	pe_nats_start(&ns, &env, 0, false,
		      "authorization {\n  user: e2e\n  password: s3cret\n}\n");
	pe_producer_open(&prod, env.queue_dir, QUEUE_SIZE);
	for (int i = 0; i < 20; i++)
		pe_write_event(&prod, TP_MEMPOOL_ADDED, 0, (uint64_t)i);
	pe_notify(&prod);
	char good[400], bad[400];
	snprintf(good, sizeof(good), "%s/password", env.dir);
	snprintf(bad, sizeof(bad), "%s/wrong", env.dir);
	FILE *f = fopen(good, "we");
	fputs("s3cret\n", f);
	fclose(f);
	f = fopen(bad, "we");
	fputs("guess\n", f);
	fclose(f);

	pe_pub_start(&pub, &env, ns.port,
		     (const char *const[]){ "--nats-username", "e2e", "--nats-password-file", bad,
					    NULL });
	cr_assert(e2e_wait_file_contains(pub.log, "Authorization Violation", PE_DEADLINE_MS),
		  "the authorization failure is not in the log");
	cr_assert_eq(pe_release_pos(env.queue_dir), 0);
	cr_assert_eq(pe_pub_stop(&pub, 15000), 0);

	pe_pub_start(&pub, &env, ns.port,
		     (const char *const[]){ "--nats-user", "e2e", "--nats-password-file", good,
					    NULL });
	struct release_goal g = { env.queue_dir, queue_write_pos(prod.q) };
	if (!e2e_wait_until(released, &g, PE_DEADLINE_MS)) {
		pe_pub_dump_log(&pub);
		cr_assert_fail("nothing confirmed with the right password");
	}
	cr_assert_eq(pe_pub_stop(&pub, 15000), 0);
}
