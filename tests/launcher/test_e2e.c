/* ebpf-extractor end to end, with real eBPF, the test tracee as bitcoind and
 * a real nats-server: the children's credentials and capabilities, restarts
 * after kill -9 mid-stream with every seq arriving at a JetStream stream,
 * giving up after repeated failures, readiness (stderr line, ready file,
 * READY=1 on $NOTIFY_SOCKET). Needs root (skips loudly otherwise; fails
 * with REQUIRE_BPF=1). */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <msgpack.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lt.h"

#define CAP_BPF_PERFMON UINT64_C(0x000000c000000000)

/* ---- (1) credentials and capabilities ---- */

Test(launcher_e2e, privileges)
{
	lt_require_root();
	struct lt l;
	lt_setup(&l, "ebpf-tracee", false);
	lt_start(&l, NULL);
	cr_assert(lt_wait_ready(&l, LT_DEADLINE_MS), "not ready; stderr:\n%s", l.launcher.err.data);
	struct lt_ready r;
	cr_assert(lt_read_ready(&l, &r), "ready file: %s", e2e_read_file(l.ready_file));
	cr_expect_eq(r.pid, l.launcher.pid);
	cr_expect_eq(r.tracepoints, 12, "tracepoints %d", r.tracepoints); /* default groups */
	char line[256];
	snprintf(line, sizeof(line),
		 "ebpf-extractor: ready: %d tracepoints attached, publishing to %s\n", r.tracepoints,
		 l.addr);
	cr_expect(proc_wait_output(&l.launcher, true, line, 5000), "no '%s' in:\n%s", line,
		  l.launcher.err.data);

	struct lt_status pub, col;
	lt_proc_status(r.publisher, &pub);
	lt_proc_status(r.collector, &col);
	/* copies: getpwnam's result is overwritten by the next call */
	struct passwd *pw = getpwnam("nobody");
	cr_assert_not_null(pw);
	struct passwd nobody_pw = *pw, *nobody = &nobody_pw;
	pw = getpwnam("ebpf-collector");
	cr_assert_not_null(pw);
	struct passwd collector_pw = *pw, *collector = &collector_pw;
	/* the publisher: nobody, no capabilities at all */
	for (int i = 0; i < 4; i++) {
		cr_expect_eq(pub.uid[i], nobody->pw_uid, "publisher uid[%d] %u", i, pub.uid[i]);
		cr_expect_eq(pub.gid[i], nobody->pw_gid, "publisher gid[%d] %u", i, pub.gid[i]);
	}
	cr_expect_neq(pub.uid[0], 0);
	cr_expect_eq(pub.cap_eff, 0, "publisher CapEff %016" PRIx64, pub.cap_eff);
	cr_expect_eq(pub.cap_prm, 0, "publisher CapPrm %016" PRIx64, pub.cap_prm);
	cr_expect_eq(pub.cap_inh, 0, "publisher CapInh %016" PRIx64, pub.cap_inh);
	cr_expect_eq(pub.cap_amb, 0, "publisher CapAmb %016" PRIx64, pub.cap_amb);
	cr_expect_eq(pub.cap_bnd, 0, "publisher CapBnd %016" PRIx64, pub.cap_bnd);
	cr_expect_eq(pub.no_new_privs, 1);
	cr_expect_str_eq(pub.groups, "\t ", "publisher groups '%s'", pub.groups);
	/* the collector: its own uid, CAP_BPF and CAP_PERFMON only (this
	 * kernel has uprobe-multi links: no CAP_SYS_ADMIN even while attaching) */
	for (int i = 0; i < 4; i++)
		cr_expect_eq(col.uid[i], collector->pw_uid, "collector uid[%d] %u", i, col.uid[i]);
	cr_expect_neq(col.uid[0], 0);
	cr_expect_neq(col.uid[0], pub.uid[0]);
	cr_expect_eq(col.cap_eff, CAP_BPF_PERFMON, "collector CapEff %016" PRIx64, col.cap_eff);
	cr_expect_eq(col.cap_prm, CAP_BPF_PERFMON, "collector CapPrm %016" PRIx64, col.cap_prm);
	cr_expect_eq(col.cap_bnd, CAP_BPF_PERFMON, "collector CapBnd %016" PRIx64, col.cap_bnd);
	cr_expect_eq(col.cap_amb, 0, "collector CapAmb %016" PRIx64, col.cap_amb);
	cr_expect_eq(col.no_new_privs, 1);
	char group[32];
	snprintf(group, sizeof(group), "\t%u ", (unsigned)nobody->pw_gid);
	cr_expect_str_eq(col.groups, group, "collector groups '%s'", col.groups);

	/* The queue: the collector's data file, readable by the publisher's
	 * group, writable by no one else. */
	char path[400];
	struct stat st;
	snprintf(path, sizeof(path), "%s/data", l.t.queue_dir);
	cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
	cr_expect_eq(st.st_uid, collector->pw_uid);
	cr_expect_eq(st.st_gid, nobody->pw_gid);
	cr_expect_eq(st.st_mode & 07777, 0640, "data mode %o", st.st_mode & 07777);
	snprintf(path, sizeof(path), "%s/consumer", l.t.queue_dir);
	cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
	cr_expect_eq(st.st_uid, nobody->pw_uid);

	kill(l.launcher.pid, SIGTERM);
	cr_expect_eq(lt_wait_exit(&l, LT_DEADLINE_MS), 0);
	cr_expect_eq(access(l.ready_file, F_OK), -1, "the ready file stays after exit");
	lt_teardown(&l);
}

/* --attach-mode perf: the collector is given CAP_SYS_ADMIN for attaching
 * (perf-event uprobes need it) and has dropped it once attached. */
Test(launcher_e2e, privileges_perf_mode)
{
	lt_require_root();
	struct lt l;
	lt_setup(&l, "ebpf-tracee", false);
	lt_start(&l, (const char *[]){ "--attach-mode", "perf", NULL });
	cr_assert(lt_wait_ready(&l, LT_DEADLINE_MS), "not ready; stderr:\n%s", l.launcher.err.data);
	struct lt_ready r;
	cr_assert(lt_read_ready(&l, &r));
	cr_expect(strstr(l.launcher.err.data, "capabilities: cap_sys_admin,cap_perfmon,cap_bpf"),
		  "%s", l.launcher.err.data);
	cr_expect(strstr(l.launcher.err.data, "(perf mode)"), "%s", l.launcher.err.data);
	struct lt_status col;
	lt_proc_status(r.collector, &col);
	cr_expect_neq(col.uid[0], 0);
	cr_expect_eq(col.cap_eff, CAP_BPF_PERFMON, "collector CapEff %016" PRIx64, col.cap_eff);
	cr_expect_eq(col.cap_prm, CAP_BPF_PERFMON, "collector CapPrm %016" PRIx64, col.cap_prm);
	cr_expect_eq(col.cap_amb, 0, "collector CapAmb %016" PRIx64, col.cap_amb);
	cr_expect_eq(col.cap_bnd, CAP_BPF_PERFMON | (UINT64_C(1) << 21), "collector CapBnd %016"
		     PRIx64, col.cap_bnd);
	cr_expect_eq(col.no_new_privs, 1);
	kill(l.launcher.pid, SIGTERM);
	cr_expect_eq(lt_wait_exit(&l, LT_DEADLINE_MS), 0);
	lt_teardown(&l);
}

/* ---- (2) kill -9 each child mid-stream ---- */

struct rec {
	struct pe_event ev;
	bool added;
	int64_t fee;           /* mempool:added: the tracee's counter */
	uint64_t lost;         /* extractor:loss: mempool:added lost */
	bool stats;            /* extractor:collector_stats with a mempool:added entry */
	uint64_t st_events, st_lost;
};

static bool key_is(const msgpack_object *k, const char *name)
{
	size_t n = strlen(name);
	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	       memcmp(k->via.str.ptr, name, n) == 0;
}

static const msgpack_object *map_get(const msgpack_object *m, const char *name)
{
	if (m->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < m->via.map.size; i++)
		if (key_is(&m->via.map.ptr[i].key, name))
			return &m->via.map.ptr[i].val;
	return NULL;
}

static uint64_t get_u64(const msgpack_object *m, const char *name)
{
	const msgpack_object *v = map_get(m, name);
	return v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? v->via.u64 : 0;
}

static void decode_rec(natsMsg *m, struct rec *r)
{
	memset(r, 0, sizeof(*r));
	const char *data = natsMsg_GetData(m);
	size_t len = (size_t)natsMsg_GetDataLength(m);
	cr_assert(pe_decode(natsMsg_GetSubject(m), data, len, &r->ev), "not a MessagePack map");
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 0;
	cr_assert_eq(msgpack_unpack_next(&u, data, len, &off), MSGPACK_UNPACK_SUCCESS);
	const msgpack_object *root = &u.data;
	if (strcmp(r->ev.event, "mempool:added") == 0) {
		const msgpack_object *fee = map_get(root, "fee");
		cr_assert_not_null(fee, "mempool:added without fee");
		r->added = true;
		r->fee = fee->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)fee->via.u64
								       : fee->via.i64;
	} else if (strcmp(r->ev.event, "extractor:loss") == 0) {
		const msgpack_object *lost = map_get(root, "lost");
		const msgpack_object *tp = lost ? map_get(lost, "mempool:added") : NULL;
		if (tp)
			r->lost = get_u64(tp, "bpf_drops") + get_u64(tp, "queue_drops") +
				  get_u64(tp, "incomplete");
	} else if (strcmp(r->ev.event, "extractor:collector_stats") == 0) {
		const msgpack_object *tps = map_get(root, "tracepoints");
		const msgpack_object *tp = tps ? map_get(tps, "mempool:added") : NULL;
		if (tp) {
			r->stats = true;
			r->st_events = get_u64(tp, "events");
			r->st_lost = get_u64(tp, "bpf_drops") + get_u64(tp, "queue_drops") +
				     get_u64(tp, "incomplete");
		}
	}
	msgpack_unpacked_destroy(&u);
}

static uint64_t stream_count(natsConnection *nc, const char *stream)
{
	jsCtx *js = NULL;
	cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_GetStreamInfo(&si, js, stream, NULL, &jerr);
	cr_assert_eq(s, NATS_OK, "js_GetStreamInfo: %s", natsStatus_GetText(s));
	uint64_t n = si->State.Msgs;
	jsStreamInfo_Destroy(si);
	jsCtx_Destroy(js);
	return n;
}

static void wait_stream_count(struct lt *l, natsConnection *nc, const char *stream, uint64_t n)
{
	long long deadline = now_ms() + LT_DEADLINE_MS;
	uint64_t have;
	while ((have = stream_count(nc, stream)) < n) {
		cr_assert_lt(now_ms(), deadline, "the stream holds %" PRIu64 " of %" PRIu64
			     " messages; stderr:\n%s", have, n, l->launcher.err.data);
		lt_pump(l, 20);
	}
}

static struct rec *read_stream(natsConnection *nc, const char *stream, size_t *count)
{
	uint64_t total = stream_count(nc, stream);
	jsCtx *js = NULL;
	cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Config.AckPolicy = js_AckNone;
	so.Config.DeliverPolicy = js_DeliverAll;
	natsSubscription *sub = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_PullSubscribe(&sub, js, ">", "lt-reader", NULL, &so, &jerr);
	cr_assert_eq(s, NATS_OK, "js_PullSubscribe: %s", natsStatus_GetText(s));
	struct rec *recs = calloc(total + 1, sizeof(*recs));
	cr_assert_not_null(recs);
	uint64_t got = 0;
	long long deadline = now_ms() + 60000;
	while (got < total) {
		natsMsgList list = { 0 };
		s = natsSubscription_Fetch(&list, sub, 512, 5000, &jerr);
		cr_assert(s == NATS_OK || s == NATS_TIMEOUT, "fetch: %s", natsStatus_GetText(s));
		for (int i = 0; i < list.Count && got < total; i++)
			decode_rec(list.Msgs[i], &recs[got++]);
		natsMsgList_Destroy(&list);
		cr_assert_lt(now_ms(), deadline, "read %" PRIu64 " of %" PRIu64, got, total);
	}
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	jsCtx_Destroy(js);
	*count = (size_t)got;
	return recs;
}

Test(launcher_e2e, restarts_after_kill_mid_stream, .timeout = 240)
{
	lt_require_root();
	struct lt l;
	lt_setup(&l, "ebpf-tracee", true);
	natsConnection *nc = pe_nats_connect(&l.nats);
	char subjects[128];
	snprintf(subjects, sizeof(subjects), "%s.>", l.prefix);
	pe_js_add_stream(nc, "LT", subjects);

	lt_start(&l, (const char *[]){ "--stats-interval", "1", NULL });
	cr_assert(lt_wait_ready(&l, LT_DEADLINE_MS), "not ready; stderr:\n%s", l.launcher.err.data);
	struct lt_ready r;
	cr_assert(lt_read_ready(&l, &r));

	char tracee_log[400];
	snprintf(tracee_log, sizeof(tracee_log), "%s/tracee.log", l.t.dir);
	const char *load[] = { l.t.tracee, "--wait-attached", "load", "--mix", "mempool_added",
			       "--rate", "2000", "--count", "20000", NULL };
	pid_t tracee = e2e_spawn(load, tracee_log, false);

	/* mid-stream: kill -9 the collector */
	wait_stream_count(&l, nc, "LT", 3000);
	cr_assert_eq(kill(r.collector, SIGKILL), 0);
	pid_t col2 = lt_wait_new_child(&l, "ebpf-collector", r.collector, LT_DEADLINE_MS);
	cr_assert_gt(col2, 0, "no new collector; stderr:\n%s", l.launcher.err.data);
	char needle[200];
	snprintf(needle, sizeof(needle), "ebpf-collector (pid %d) was killed by signal 9 (Killed); "
		 "starting it again in 100 ms", r.collector);
	cr_expect(proc_wait_output(&l.launcher, true, needle, LT_DEADLINE_MS), "no '%s'", needle);
	snprintf(needle, sizeof(needle), "ebpf-collector (pid %d) is ready again: 12 tracepoints",
		 (int)col2);
	cr_assert(proc_wait_output(&l.launcher, true, needle, LT_DEADLINE_MS), "no '%s' in:\n%s",
		  needle, l.launcher.err.data);

	/* then the publisher, once the new collector delivers */
	wait_stream_count(&l, nc, "LT", stream_count(nc, "LT") + 3000);
	cr_assert_eq(kill(r.publisher, SIGKILL), 0);
	pid_t pub2 = lt_wait_new_child(&l, "ebpf-publisher", r.publisher, LT_DEADLINE_MS);
	cr_assert_gt(pub2, 0, "no new publisher; stderr:\n%s", l.launcher.err.data);
	snprintf(needle, sizeof(needle), "ebpf-publisher (pid %d) was killed by signal 9",
		 r.publisher);
	cr_expect(proc_wait_output(&l.launcher, true, needle, LT_DEADLINE_MS), "no '%s'", needle);
	snprintf(needle, sizeof(needle), "ebpf-publisher (pid %d) is ready again", (int)pub2);
	cr_assert(proc_wait_output(&l.launcher, true, needle, LT_DEADLINE_MS), "no '%s' in:\n%s",
		  needle, l.launcher.err.data);

	/* the tracee finishes; then a clean stop drains everything */
	long long deadline = now_ms() + 120000;
	int st, tracee_status = -1;
	while (tracee_status < 0) {
		if (waitpid(tracee, &st, WNOHANG) == tracee)
			tracee_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		cr_assert_lt(now_ms(), deadline, "the tracee did not finish");
		lt_pump(&l, 20);
	}
	char *tlog = e2e_read_file(tracee_log);
	cr_assert_eq(tracee_status, 0, "tracee: %s", tlog);
	unsigned long long attempts = 0, unattached = 0;
	const char *p = tlog ? strstr(tlog, "load: ") : NULL;
	cr_assert(p && sscanf(p, "load: %llu events in %*f s (%*f/s), %llu with no tracer",
			      &attempts, &unattached) == 2, "tracee log: %s", tlog);
	free(tlog);
	uint64_t reached = attempts - unattached;
	cr_expect_eq(attempts, 20000);

	kill(l.launcher.pid, SIGTERM);
	cr_assert_eq(lt_wait_exit(&l, 60000), 0, "stderr:\n%s", l.launcher.err.data);
	snprintf(needle, sizeof(needle), "ebpf-publisher (pid %d) exited with status 0", (int)pub2);
	cr_expect(strstr(l.launcher.err.data, needle), "no '%s'", needle);
	snprintf(needle, sizeof(needle), "ebpf-collector (pid %d) exited with status 0", (int)col2);
	cr_expect(strstr(l.launcher.err.data, needle), "no '%s'", needle);

	/* every seq arrived (a duplicate only after the last confirmed seq) */
	size_t n = 0;
	struct rec *recs = read_stream(nc, "LT", &n);
	struct pe_events evs = { 0 };
	uint64_t last = 0, stream_id = 0;
	for (size_t i = 0; i < n; i++) {
		pe_events_push(&evs, &recs[i].ev);
		if (recs[i].ev.has_seq) {
			if (recs[i].ev.seq > last)
				last = recs[i].ev.seq;
			stream_id = recs[i].ev.stream_id;
		}
	}
	uint64_t confirmed = 0;
	uint64_t dups = pe_check_delivery(&evs, stream_id, last, &confirmed);
	fprintf(stderr, "restarts: %zu stream messages, seq 1..%" PRIu64 ", %" PRIu64
		" duplicates, tracee reached %" PRIu64 " of %llu\n", n, last, dups, reached, attempts);

	/* In seq order, without duplicates: the tracee's counters (fee) rise
	 * by one, except where loss records account for the gap, or at the
	 * collector's restart (a started record) where events still in the
	 * killed collector's rings are gone without a count. Every stats
	 * record matches what came before it since the last started record. */
	struct rec **by_seq = calloc(last + 1, sizeof(*by_seq));
	cr_assert_not_null(by_seq);
	for (size_t i = 0; i < n; i++)
		if (recs[i].ev.has_seq && !by_seq[recs[i].ev.seq])
			by_seq[recs[i].ev.seq] = &recs[i];
	int started = 0;
	int64_t next_fee = 0;
	uint64_t lost_pending = 0, lost_total = 0, life_events = 0, life_lost = 0, stats_checked = 0;
	uint64_t added = 0, restart_gap = 0;
	bool restart_pending = false;
	for (uint64_t s = 1; s <= last; s++) {
		const struct rec *rc = by_seq[s];
		cr_assert_not_null(rc, "seq %" PRIu64 " missing", s);
		if (strcmp(rc->ev.event, "extractor:started") == 0) {
			started++;
			life_events = life_lost = 0;
			restart_pending = started > 1;
		} else if (rc->lost) {
			lost_pending += rc->lost;
			lost_total += rc->lost;
			life_lost += rc->lost;
		} else if (rc->stats) {
			cr_expect_eq(rc->st_events, life_events, "seq %" PRIu64 ": collector_stats "
				     "counts %" PRIu64 " mempool:added events, %" PRIu64 " arrived since "
				     "the started record", s, rc->st_events, life_events);
			cr_expect_eq(rc->st_lost, life_lost, "seq %" PRIu64 ": collector_stats counts %"
				     PRIu64 " lost, loss records %" PRIu64, s, rc->st_lost, life_lost);
			stats_checked++;
		} else if (rc->added) {
			added++;
			life_events++;
			cr_assert_geq(rc->fee, next_fee, "seq %" PRIu64 ": counter %" PRId64
				      " after %" PRId64 " (out of order)", s, rc->fee, next_fee - 1);
			uint64_t gap = (uint64_t)(rc->fee - next_fee);
			if (gap > lost_pending) {
				cr_assert(restart_pending, "seq %" PRIu64 ": counters %" PRId64 "..%"
					  PRId64 " missing with only %" PRIu64 " counted lost and no "
					  "collector restart there", s, next_fee, rc->fee - 1,
					  lost_pending);
				restart_gap += gap - lost_pending;
			}
			lost_pending = 0;
			restart_pending = false;
			next_fee = rc->fee + 1;
		}
	}
	cr_expect_eq(started, 2, "%d started records (one per collector start)", started);
	cr_expect_gt(stats_checked, 2, "only %" PRIu64 " collector_stats records", stats_checked);
	/* the end: the last counters arrived or were counted lost */
	cr_expect_eq((uint64_t)next_fee + lost_pending, reached,
		     "last counter %" PRId64 " + %" PRIu64 " lost after it, tracee reached %" PRIu64,
		     next_fee - 1, lost_pending, reached);
	cr_expect_eq(added + lost_total + restart_gap, reached);
	fprintf(stderr, "restarts: %" PRIu64 " mempool:added arrived, %" PRIu64 " counted lost, %"
		PRIu64 " gone at the collector's restart\n", added, lost_total, restart_gap);
	free(by_seq);
	free(recs);
	pe_events_free(&evs);
	natsConnection_Destroy(nc);
	lt_teardown(&l);
}

/* ---- (3) giving up ---- */

static int notify_listen(char *name, size_t len, bool abstract, const char *dir)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	socklen_t alen;
	if (abstract) {
		snprintf(name, len, "@ebpf-launcher-test-%d-%lld", (int)getpid(), now_ms());
		size_t n = strlen(name);
		memcpy(a.sun_path, name, n);
		a.sun_path[0] = '\0';
		alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		snprintf(name, len, "%s/notify.sock", dir);
		snprintf(a.sun_path, sizeof(a.sun_path), "%s", name);
		alen = (socklen_t)sizeof(a);
	}
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, alen), 0, "bind %s: %s", name, strerror(errno));
	return fd;
}

/* Reads datagrams into got (appending) until one contains needle, pumping
 * the launcher's output meanwhile. */
static bool notify_wait(struct lt *l, int fd, const char *needle, char *got, size_t len,
			int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		if (poll(&pfd, 1, 10) == 1) {
			char buf[1024];
			ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
			if (n > 0) {
				buf[n] = '\0';
				size_t used = strlen(got);
				snprintf(got + used, len - used, "%s|", buf);
				if (strstr(buf, needle))
					return true;
			}
		}
		if (now_ms() > deadline)
			return false;
		lt_pump(l, 1);
	}
}

Test(launcher_e2e, collector_keeps_failing)
{
	lt_require_root();
	struct lt l;
	lt_setup(&l, "ebpf-tracee-noprobes", false);
	char sock[300], got[4096] = "";
	int fd = notify_listen(sock, sizeof(sock), false, l.t.dir);
	setenv("NOTIFY_SOCKET", sock, 1);
	long long t0 = now_ms();
	lt_start(&l, NULL);
	unsetenv("NOTIFY_SOCKET");
	int st = lt_wait_exit(&l, LT_DEADLINE_MS);
	const char *err = l.launcher.err.data;
	cr_assert_eq(st, 3, "exit %d; stderr:\n%s", st, err);
	fprintf(stderr, "collector_keeps_failing: gave up after %lld ms\n", now_ms() - t0);
	/* five failures, each logged with its reason, backoff doubling */
	int failures = 0;
	for (const char *p = err; (p = strstr(p, "ebpf-collector: error: ")); p++)
		failures++;
	cr_expect_eq(failures, 5, "%d collector errors:\n%s", failures, err);
	cr_expect(strstr(err, "exited with status 1; starting it again in 100 ms (1 of 5"), "%s", err);
	cr_expect(strstr(err, "exited with status 1; starting it again in 200 ms (2 of 5"), "%s", err);
	cr_expect(strstr(err, "exited with status 1; starting it again in 800 ms (4 of 5"), "%s", err);
	cr_expect(strstr(err, "exited with status 1; it failed 5 times within 60 s: giving up, "
			      "stopping ebpf-publisher (exit status 3)"), "%s", err);
	/* the publisher was stopped cleanly: SIGTERM, its drain, status 0 */
	cr_expect(strstr(err, "ebpf-publisher: info: exiting: published"), "%s", err);
	const char *pub = strstr(err, "ebpf-publisher (pid ");
	cr_expect(pub && strstr(pub, ") exited with status 0"), "%s", err);
	/* never ready: no ready line, no ready file, no READY=1 */
	cr_expect_null(strstr(err, "ebpf-extractor: ready:"));
	cr_expect_eq(access(l.ready_file, F_OK), -1);
	cr_expect(notify_wait(&l, fd, "STOPPING=1", got, sizeof(got), 2000), "got '%s'", got);
	cr_expect_null(strstr(got, "READY=1"), "got '%s'", got);
	close(fd);
	lt_teardown(&l);
}

Test(launcher_e2e, publisher_keeps_failing)
{
	lt_require_root();
	struct lt l;
	lt_setup(&l, "ebpf-tracee", false);
	char sock[300], got[4096] = "";
	int fd = notify_listen(sock, sizeof(sock), false, l.t.dir);
	setenv("NOTIFY_SOCKET", sock, 1);
	lt_start(&l, (const char *[]){ "--publisher-bin", "/bin/false", NULL });
	unsetenv("NOTIFY_SOCKET");
	int st = lt_wait_exit(&l, LT_DEADLINE_MS);
	const char *err = l.launcher.err.data;
	cr_assert_eq(st, 4, "exit %d; stderr:\n%s", st, err);
	cr_expect(strstr(err, "it failed 5 times within 60 s: giving up, stopping ebpf-collector "
			      "(exit status 4)"), "%s", err);
	/* the collector was stopped cleanly */
	cr_expect(strstr(err, "ebpf-collector: info: signal 15: detaching and exiting"), "%s", err);
	const char *col = strstr(err, "giving up");
	cr_expect(col && strstr(col, "ebpf-collector (pid ") &&
		  strstr(col, ") exited with status 0"), "%s", err);
	cr_expect_null(strstr(err, "ebpf-extractor: ready:"));
	cr_expect_eq(access(l.ready_file, F_OK), -1);
	notify_wait(&l, fd, "STOPPING=1", got, sizeof(got), 2000);
	cr_expect_null(strstr(got, "READY=1"), "got '%s'", got);
	close(fd);
	lt_teardown(&l);
}

/* ---- (5) readiness: READY=1, the ready file, the line ---- */

static void notify_test(bool abstract)
{
	lt_require_root();
	struct lt l;
	lt_setup(&l, "ebpf-tracee", false);
	char sock[300], got[4096] = "";
	int fd = notify_listen(sock, sizeof(sock), abstract, l.t.dir);
	setenv("NOTIFY_SOCKET", sock, 1);
	lt_start(&l, NULL);
	unsetenv("NOTIFY_SOCKET");
	cr_assert(notify_wait(&l, fd, "READY=1", got, sizeof(got), LT_DEADLINE_MS),
		  "no READY=1 on %s (got '%s'); stderr:\n%s", sock, got, l.launcher.err.data);
	/* by then: the ready file and the line, both children up */
	struct lt_ready r;
	cr_assert(lt_read_ready(&l, &r), "READY=1 before the ready file");
	cr_expect(strstr(got, "STATUS=12 tracepoints attached, publishing to "), "got '%s'", got);
	char mainpid[64];
	snprintf(mainpid, sizeof(mainpid), "MAINPID=%d", (int)l.launcher.pid);
	cr_expect(strstr(got, mainpid), "got '%s'", got);
	lt_pump(&l, 50);
	cr_expect(strstr(l.launcher.err.data, "ebpf-extractor: ready: 12 tracepoints attached, "
						"publishing to 127.0.0.1:"), "%s", l.launcher.err.data);
	cr_expect_eq(kill(r.collector, 0), 0);
	cr_expect_eq(kill(r.publisher, 0), 0);
	cr_expect_eq(lt_find_child(l.launcher.pid, "ebpf-collector"), r.collector);
	cr_expect_eq(lt_find_child(l.launcher.pid, "ebpf-publisher"), r.publisher);
	/* the one ready line, once */
	const char *first = strstr(l.launcher.err.data, "ebpf-extractor: ready:");
	cr_expect(first && !strstr(first + 1, "ebpf-extractor: ready:"));
	/* the children do not see NOTIFY_SOCKET */
	pid_t kids[2] = { r.collector, r.publisher };
	for (int i = 0; i < 2; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/environ", (int)kids[i]);
		FILE *f = fopen(path, "re");
		cr_assert_not_null(f);
		char env[65536];
		size_t n = fread(env, 1, sizeof(env) - 1, f);
		fclose(f);
		for (size_t k = 0; k < n; k++)
			if (env[k] == '\0')
				env[k] = '\n';
		env[n] = '\0';
		cr_expect_null(strstr(env, "NOTIFY_SOCKET"), "pid %d environment: %s", (int)kids[i],
			       env);
	}
	kill(l.launcher.pid, SIGTERM);
	cr_expect(notify_wait(&l, fd, "STOPPING=1", got, sizeof(got), LT_DEADLINE_MS), "got '%s'",
		  got);
	cr_expect_eq(lt_wait_exit(&l, LT_DEADLINE_MS), 0, "%s", l.launcher.err.data);
	cr_expect_eq(access(l.ready_file, F_OK), -1, "the ready file stays after exit");
	close(fd);
	if (!abstract)
		unlink(sock);
	lt_teardown(&l);
}

Test(launcher_e2e, notify_socket_path)
{
	notify_test(false);
}

Test(launcher_e2e, notify_socket_abstract)
{
	notify_test(true);
}
