/* End to end with real eBPF: the test tracee fires, ebpf-collector writes
 * the queue, and this test reads the queue and checks every field of every
 * event byte for byte. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

TestSuite(collector, .init = setup, .fini = teardown, .timeout = 240);

/* ---- checking one event against its scenario step ---- */

static void check_string(const struct scenario_step *step, int arg, const char *field,
			 unsigned buf_len)
{
	const char *expected = (step->untouched & (1u << arg)) ? "" : step->v[arg].s;
	size_t want = strlen(expected);
	if (want >= buf_len)
		want = buf_len - 1; /* truncated, and flagged (checked with the flags) */
	cr_assert_eq(strnlen(field, buf_len), want, "%s arg %d: length %zu, expected %zu",
		     tracepoint_table[step->tp].event, arg, strnlen(field, buf_len), want);
	cr_assert(memcmp(field, expected, want) == 0, "%s arg %d: '%.*s' expected '%.*s'",
		  tracepoint_table[step->tp].event, arg, (int)want, field, (int)want, expected);
	for (unsigned i = (unsigned)want; i < buf_len; i++)
		cr_assert_eq(field[i], 0, "%s arg %d: stale byte at %u after the string",
			     tracepoint_table[step->tp].event, arg, i);
}

static void check_payload(const struct scenario_step *step, const uint8_t *payload,
			  uint64_t size)
{
	for (uint64_t i = 0; i < size; i++) {
		uint8_t want = scenario_step_payload_byte(step, i);
		if (payload[i] != want)
			cr_assert_fail("%s payload of %llu bytes: byte %llu is 0x%02x, expected 0x%02x",
				       tracepoint_table[step->tp].event, (unsigned long long)size,
				       (unsigned long long)i, payload[i], want);
	}
}

static void check_field(const struct scenario_step *step, int arg, const struct event_field *f,
			const uint8_t *body, size_t body_len)
{
	const struct scenario_arg_info *info = &scenario_args(step->tp)[arg];
	const uint8_t *at = body + f->offset;
	int64_t i64;
	int32_t i32;
	uint32_t u32;
	uint64_t u64;
	uint8_t hash[SCENARIO_HASH_LEN];
	cr_assert_str_eq(info->name, f->name, "%s arg %d is named %s in the tracee, %s here",
			 tracepoint_table[step->tp].event, arg, info->name, f->name);
	switch (f->kind) {
	case FIELD_I64:
		memcpy(&i64, at, 8);
		cr_assert_eq(i64, step->v[arg].i, "%s.%s", tracepoint_table[step->tp].event, f->name);
		break;
	case FIELD_U64:
		memcpy(&u64, at, 8);
		cr_assert_eq(u64, step->v[arg].u, "%s.%s", tracepoint_table[step->tp].event, f->name);
		break;
	case FIELD_I32:
		memcpy(&i32, at, 4);
		cr_assert_eq(i32, (int32_t)step->v[arg].i, "%s.%s", tracepoint_table[step->tp].event,
			     f->name);
		break;
	case FIELD_U32:
		memcpy(&u32, at, 4);
		cr_assert_eq(u32, (uint32_t)step->v[arg].u, "%s.%s",
			     tracepoint_table[step->tp].event, f->name);
		break;
	case FIELD_BOOL:
		cr_assert_eq(*at, (uint8_t)step->v[arg].i, "%s.%s", tracepoint_table[step->tp].event,
			     f->name);
		break;
	case FIELD_STR: check_string(step, arg, (const char *)at, f->size); break;
	case FIELD_HASH:
		if (step->untouched & (1u << arg))
			memset(hash, 0, sizeof(hash));
		else
			scenario_hash(step->v[arg].hash, hash);
		cr_assert(memcmp(at, hash, 32) == 0, "%s.%s hash differs",
			  tracepoint_table[step->tp].event, f->name);
		break;
	case FIELD_PAYLOAD: {
		uint64_t size = scenario_payload_size(step);
		uint64_t captured = size < P2P_PAYLOAD_MAX ? size : P2P_PAYLOAD_MAX;
		cr_assert_eq(body_len, f->offset + captured, "%s payload: %zu body bytes for %llu",
			     tracepoint_table[step->tp].event, body_len, (unsigned long long)size);
		check_payload(step, at, captured);
		break;
	}
	}
}

static void check_event(const struct scenario_step *step, const struct e2e_record *rec,
			pid_t tracee, uint64_t start_ns)
{
	const struct record_header *h = (const void *)rec->data;
	cr_assert_geq(rec->len, sizeof(*h));
	cr_assert_eq(h->kind, RECORD_EVENT, "seq %llu: kind %u", (unsigned long long)rec->seq,
		     h->kind);
	cr_assert_eq(h->tracepoint, step->tp, "seq %llu: %s, expected %s",
		     (unsigned long long)rec->seq,
		     h->tracepoint < TP_COUNT ? tracepoint_table[h->tracepoint].event : "?",
		     tracepoint_table[step->tp].event);
	cr_assert_eq(h->length, rec->len);
	cr_assert_eq(h->pid, (uint32_t)tracee);
	cr_assert_neq(h->tid, 0);
	cr_assert_eq(h->reserved, 0);
	cr_assert_eq(h->flags, scenario_expected_flags(step), "%s: flags 0x%x, expected 0x%x",
		     tracepoint_table[step->tp].event, h->flags, scenario_expected_flags(step));
	cr_assert(h->time_ns >= start_ns - 1000000000ull && h->time_ns <= e2e_unix_ns(),
		  "%s: time_ns %llu is not between the test's start and now",
		  tracepoint_table[step->tp].event, (unsigned long long)h->time_ns);
	const struct event_layout *layout = &event_layouts[step->tp];
	cr_assert_eq(layout->field_count, scenario_arg_count(step->tp));
	const uint8_t *body = rec->data + sizeof(*h);
	size_t body_len = rec->len - sizeof(*h);
	cr_assert_geq(body_len, layout->body_size);
	if (layout->fields[layout->field_count - 1].kind != FIELD_PAYLOAD)
		cr_assert_eq(body_len, layout->body_size);
	for (int arg = 0; arg < layout->field_count; arg++)
		check_field(step, arg, &layout->fields[arg], body, body_len);
}

static const struct record_header *header_of(const struct e2e_record *rec)
{
	return (const void *)rec->data;
}

/* Reads the started record and then exactly the scenario's events. Events
 * of one ring keep the order they fired in; across rings the queue holds
 * them in the order the collector drained them, so each event is matched
 * against the next step of its own tracepoint. */
static void expect_scenario(pid_t tracee, uint64_t start_ns)
{
	struct e2e_record rec;
	cr_assert(e2e_next_record(&env, &rec, DEADLINE_MS), "no started record");
	cr_assert_eq(header_of(&rec)->kind, RECORD_STARTED);
	const struct rec_started *started = (const void *)(rec.data + sizeof(struct record_header));
	cr_assert_str_eq(started->version, EXTRACTOR_VERSION);
	cr_assert_eq(__builtin_popcount(started->attached), TP_COUNT - 1);
	uint64_t seq = rec.seq;
	free(rec.data);

	size_t steps = scenario_event_count();
	size_t next_step[TP_COUNT] = { 0 }; /* per tracepoint: index of its next step */
	for (size_t received = 0; received < steps;) {
		cr_assert(e2e_next_record(&env, &rec, DEADLINE_MS),
			  "only %zu of the scenario's %zu events arrived", received, steps);
		cr_assert_eq(rec.seq, ++seq, "sequence numbers are not contiguous");
		const struct record_header *h = header_of(&rec);
		cr_assert_neq(h->kind, RECORD_LOSS, "a loss record: nothing may be lost");
		if (h->kind == RECORD_STATS) {
			free(rec.data);
			continue;
		}
		cr_assert(h->tracepoint > TP_NONE && h->tracepoint < TP_COUNT);
		size_t i = next_step[h->tracepoint];
		while (i < steps && scenario_step_at(i)->tp != h->tracepoint)
			i++;
		cr_assert_lt(i, steps, "seq %llu: one %s event more than the scenario fired",
			     (unsigned long long)rec.seq, tracepoint_table[h->tracepoint].event);
		check_event(scenario_step_at(i), &rec, tracee, start_ns);
		next_step[h->tracepoint] = i + 1;
		received++;
		free(rec.data);
	}
}

static void expect_final_stats(void)
{
	e2e_stop(env.collector, 20000);
	env.collector = 0;
	struct e2e_record rec;
	uint8_t *last_stats = NULL;
	while (e2e_next_record(&env, &rec, 2000)) {
		cr_assert_neq(header_of(&rec)->kind, RECORD_LOSS, "a loss record: nothing may be lost");
		if (header_of(&rec)->kind == RECORD_STATS) {
			free(last_stats);
			last_stats = rec.data;
		} else {
			free(rec.data);
		}
	}
	cr_assert_not_null(last_stats, "no final stats record");
	const struct rec_stats *stats = (const void *)(last_stats + sizeof(struct record_header));
	uint64_t expected[TP_COUNT] = { 0 };
	for (size_t i = 0; i < scenario_event_count(); i++)
		expected[scenario_step_at(i)->tp]++;
	for (int tp = 1; tp < TP_COUNT; tp++) {
		cr_assert_eq(stats->tp[tp].events, expected[tp], "%s: %llu events counted, %llu fired",
			     tracepoint_table[tp].event, (unsigned long long)stats->tp[tp].events,
			     (unsigned long long)expected[tp]);
		cr_assert_eq(stats->tp[tp].lost.bpf_drops + stats->tp[tp].lost.queue_drops +
				     stats->tp[tp].lost.incomplete,
			     0, "%s: losses counted", tracepoint_table[tp].event);
	}
	free(last_stats);
}

/* CAP_PERFMON (38) and CAP_BPF (39), nothing else. */
#define CAPS_BPF_PERFMON "000000c000000000"

/* The tracee (whatever build is at its path now) fires its scenario:
 * every field of every event arrives byte for byte, and the final stats
 * count exactly its events. */
static void fire_and_expect_scenario(void)
{
	uint64_t start_ns = e2e_unix_ns();
	const char *argv[] = { env.tracee, "scenario", "--wait-attached", NULL };
	pid_t tracee = e2e_spawn(argv, NULL, false);
	cr_assert_eq(e2e_wait_exit(tracee, DEADLINE_MS), 0, "the tracee failed");
	expect_scenario(tracee, start_ns);
	expect_final_stats();
}

static void run_scenario(bool unprivileged, const char *const extra[])
{
	e2e_start_collector(&env, unprivileged, extra);
	cr_assert_eq(e2e_wait_ready(&env, 0, DEADLINE_MS), TP_COUNT - 1);
	/* Once attached, in every mode: perf mode has given up CAP_SYS_ADMIN. */
	cr_assert(e2e_cap_eff_is(env.collector, CAPS_BPF_PERFMON),
		  "the collector kept more than CAP_BPF and CAP_PERFMON after attaching");
	fire_and_expect_scenario();
}

Test(collector, scenario_unprivileged_multi)
{
	const char *extra[] = { "--utxocache-tracepoints", "--coin-selection-tracepoints",
				"--queue-size", "64M", "--attach-mode", "multi", NULL };
	run_scenario(true, extra);
}

Test(collector, scenario_perf_mode_as_root_keeps_only_bpf_and_perfmon)
{
	const char *extra[] = { "--utxocache-tracepoints", "--coin-selection-tracepoints",
				"--queue-size", "64M", "--attach-mode", "perf", NULL };
	run_scenario(false, extra);
}

/* An upgrade to a build whose argument specs differ from those the BPF
 * programs' fetch plans were made from (bpf_shared.h): gcc -O1 instead of
 * -O2 moves the arguments of most tracepoints. The collector must read
 * those through the spec map from then on, and every field of every event
 * of the new build still arrives byte for byte. */
Test(collector, scenario_after_an_upgrade_to_a_build_with_other_argument_specs)
{
	const char *extra[] = { "--utxocache-tracepoints", "--coin-selection-tracepoints",
				"--queue-size", "64M", "--attach-mode", "multi", NULL };
	e2e_start_collector(&env, true, extra);
	cr_assert_eq(e2e_wait_ready(&env, 0, DEADLINE_MS), TP_COUNT - 1);

	char src[512], tmp[300];
	snprintf(src, sizeof(src), "%s/ebpf-tracee-o1", e2e_tracee_dir);
	snprintf(tmp, sizeof(tmp), "%s/bitcoind.new", env.dir);
	e2e_copy_file(src, tmp);
	cr_assert_eq(rename(tmp, env.tracee), 0, "rename: %s", strerror(errno));
	cr_assert_eq(e2e_wait_ready(&env, 1, DEADLINE_MS), TP_COUNT - 1,
		     "not attached again after the upgrade");
	/* the test means nothing unless some plan was really turned off */
	cr_assert(e2e_file_contains(env.collector_log, "validation:block_connected has other "
						       "argument specs than when the collector started"),
		  "the -O1 build's block_connected specs were taken for the -O2 build's");
	fire_and_expect_scenario();
}

/* utime + stime of a process, in clock ticks. */
static unsigned long long cpu_ticks(pid_t pid)
{
	char path[64], buf[2048];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	cr_assert_not_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* fields after the parenthesised name: state is field 3, utime 14, stime 15 */
	const char *p = strrchr(buf, ')');
	cr_assert_not_null(p);
	unsigned long long utime = 0, stime = 0;
	cr_assert_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
			    &stime),
		     2);
	return utime + stime;
}

struct until_time {
	uint64_t end_ns;
};

static bool time_passed(void *arg)
{
	return e2e_unix_ns() >= ((struct until_time *)arg)->end_ns;
}

/* Idle means idle: attached, nothing firing, the collector sleeps in
 * epoll_wait. 3 s of an idle collector cost at most a few ticks (the stats
 * timer fires once a second here); a busy-polling loop would use ~300. */
Test(collector, idle_collector_uses_almost_no_cpu)
{
	const char *extra[] = { "--stats-interval", "1", NULL };
	e2e_start_collector(&env, true, extra);
	cr_assert_gt(e2e_wait_ready(&env, 0, DEADLINE_MS), 0);
	unsigned long long before = cpu_ticks(env.collector);
	struct until_time t = { e2e_unix_ns() + 3000000000ull };
	e2e_wait_until(time_passed, &t, 10000);
	unsigned long long used = cpu_ticks(env.collector) - before;
	cr_assert_leq(used, 5, "an idle collector used %llu clock ticks in 3 s", used);
}
