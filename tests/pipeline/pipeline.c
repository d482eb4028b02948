#include "pipeline.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tracepoints_table.h"

/* ---- environment ---- */

static void doc_load(void);

void pl_token(const char *text, char *out, size_t outlen)
{
	size_t n = 0;
	for (; text[n] && n + 1 < outlen; n++) {
		char c = text[n];
		bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '_' || c == '-';
		out[n] = keep ? c : '_';
	}
	if (n == 0 && outlen >= 2)
		out[n++] = '_';
	out[n] = '\0';
}

void pl_setup(struct pl *p, const char *node_name)
{
	memset(p, 0, sizeof(*p));
	e2e_require_bpf();
	doc_load();
	e2e_setup(&p->t, "ebpf-tracee");
	/* pe.c keeps its nats-server's store and log in pe.dir */
	snprintf(p->pe.dir, sizeof(p->pe.dir), "%s", p->t.dir);
	snprintf(p->pe.queue_dir, sizeof(p->pe.queue_dir), "%s", p->t.queue_dir);
	snprintf(p->pe.ready_file, sizeof(p->pe.ready_file), "%s/publisher.ready", p->t.dir);
	snprintf(p->publisher_ready, sizeof(p->publisher_ready), "%s", p->pe.ready_file);
	snprintf(p->publisher_log, sizeof(p->publisher_log), "%s/publisher.log", p->t.dir);
	snprintf(p->node, sizeof(p->node), "%s", node_name);
	char token[128];
	pl_token(node_name, token, sizeof(token));
	snprintf(p->prefix, sizeof(p->prefix), "btc.%s", token);
	/* pe.prefix is for pe_pub_start, which these tests do not use */
}

void pl_dump_logs(const struct pl *p)
{
	const char *paths[] = { p->t.collector_log, p->publisher_log, p->nats.log };
	const char *names[] = { "collector", "publisher", "nats-server" };
	for (int i = 0; i < 3; i++) {
		if (!paths[i][0])
			continue;
		char *text = e2e_read_file(paths[i]);
		size_t len = text ? strlen(text) : 0;
		/* the tail is what matters */
		const char *from = len > 6000 ? text + len - 6000 : text;
		fprintf(stderr, "---- %s log (%s), last part ----\n%s\n", names[i], paths[i],
			from ? from : "(none)");
		free(text);
	}
}

void pl_teardown(struct pl *p)
{
	if (p->tracee > 0) {
		kill(p->tracee, SIGKILL);
		e2e_wait_exit(p->tracee, 5000);
		p->tracee = 0;
	}
	if (p->publisher > 0) {
		kill(p->publisher, SIGKILL);
		e2e_wait_exit(p->publisher, 5000);
		p->publisher = 0;
	}
	if (p->t.collector > 0) {
		e2e_stop(p->t.collector, 10000);
		p->t.collector = 0;
	}
	if (p->nc) {
		natsConnection_Destroy(p->nc);
		p->nc = NULL;
	}
	if (p->nats_up) {
		pe_nats_stop(&p->nats);
		p->nats_up = false;
	}
	if (getenv("PIPELINE_LOGS"))
		pl_dump_logs(p);
	e2e_teardown(&p->t);
}

void pl_start_nats(struct pl *p, bool jetstream)
{
	pe_nats_start(&p->nats, &p->pe, 0, jetstream, PL_NATS_CONF);
	p->nats_up = true;
	pl_connect(p);
}

void pl_connect(struct pl *p)
{
	if (p->nc)
		natsConnection_Destroy(p->nc);
	p->nc = pe_nats_connect(&p->nats);
	int64_t max = natsConnection_GetMaxPayload(p->nc);
	cr_assert_eq(max, 5242880, "the server's max_payload is %" PRId64 ", not the configured "
		     "5242880", max);
}

int pl_start_collector(struct pl *p, const char *const extra[])
{
	p->collector_start_ns = e2e_unix_ns();
	e2e_start_collector(&p->t, true, extra);
	int attached = e2e_wait_ready(&p->t, 0, 30000);
	cr_assert_gt(attached, 0, "the collector did not get ready");
	/* exactly CAP_PERFMON (38) and CAP_BPF (39) */
	cr_assert(e2e_cap_eff_is(p->t.collector, "000000c000000000"),
		  "the collector holds more or less than CAP_BPF and CAP_PERFMON");
	return attached;
}

int pl_stop_collector(struct pl *p)
{
	kill(p->t.collector, SIGTERM);
	int status = e2e_wait_exit(p->t.collector, 20000);
	if (status < 0) {
		kill(p->t.collector, SIGKILL);
		e2e_wait_exit(p->t.collector, 5000);
	}
	p->t.collector = 0;
	return status;
}

struct pub_ready {
	struct pl *p;
	bool exited;
};

static bool pub_ready_cond(void *arg)
{
	struct pub_ready *w = arg;
	int status;
	if (waitpid(w->p->publisher, &status, WNOHANG) == w->p->publisher) {
		w->exited = true;
		w->p->publisher = 0;
		return true;
	}
	return access(w->p->publisher_ready, F_OK) == 0;
}

void pl_start_publisher(struct pl *p, const char *const extra[])
{
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", p->nats.port);
	unlink(p->publisher_ready);
	/* another unprivileged uid than the collector's, in the queue's group
	 * (the collector's own, nogroup), with no capability at all */
	const char *argv[64] = { "/usr/bin/setpriv", "--reuid=daemon", "--regid=nogroup",
				 "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--",
				 PUBLISHER_PATH, "--queue", p->t.queue_dir, "--ready-file",
				 p->publisher_ready, "--node-name", p->node, "--nats-address", addr,
				 "--log-level", "debug" };
	int n = 18;
	for (int i = 0; extra && extra[i] && n < 63; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	p->publisher_start_ns = e2e_unix_ns();
	p->publisher = e2e_spawn(argv, p->publisher_log, false);
	cr_assert_lt(p->publisher_run_count, PL_MAX_PUBLISHERS, "more than %d publisher runs",
		     PL_MAX_PUBLISHERS);
	p->publisher_runs[p->publisher_run_count++] =
		(struct pl_publisher_run){ p->publisher, p->publisher_start_ns };
	struct pub_ready w = { p, false };
	bool ok = e2e_wait_until(pub_ready_cond, &w, 20000);
	if (!ok || w.exited) {
		pl_dump_logs(p);
		cr_assert_fail("the publisher %s", w.exited ? "exited at start" : "did not get ready");
	}
	char *text = e2e_read_file(p->publisher_ready);
	int pid = 0;
	unsigned long long sid = 0;
	cr_assert(text && sscanf(text, "ready pid %d stream_id %llx", &pid, &sid) == 2,
		  "publisher ready file: %s", text ? text : "(none)");
	free(text);
	cr_assert_eq(pid, (int)p->publisher, "the ready file names pid %d, the publisher is %d",
		     pid, (int)p->publisher);
	cr_assert_neq(sid, 0, "the ready file names stream_id 0");
	p->stream_id = sid;
	cr_assert(e2e_cap_eff_is(p->publisher, "0000000000000000"),
		  "the publisher holds capabilities");
}

int pl_stop_publisher(struct pl *p)
{
	kill(p->publisher, SIGTERM);
	int status = e2e_wait_exit(p->publisher, 30000);
	if (status < 0) {
		kill(p->publisher, SIGKILL);
		e2e_wait_exit(p->publisher, 5000);
	}
	p->publisher = 0;
	return status;
}

void pl_kill_publisher(struct pl *p)
{
	cr_assert_gt(p->publisher, 0, "no publisher to kill");
	kill(p->publisher, SIGKILL);
	int status = e2e_wait_exit(p->publisher, 10000);
	cr_assert_eq(status, 128 + SIGKILL, "the publisher (pid %d) did not die of SIGKILL "
		     "within 10 s: status %d", (int)p->publisher, status);
	p->publisher = 0;
}

pid_t pl_tracee_spawn(struct pl *p, const char *const args[])
{
	static unsigned runs;
	cr_assert_eq(p->tracee, 0, "a tracee (pid %d) still runs", (int)p->tracee);
	snprintf(p->tracee_log, sizeof(p->tracee_log), "%s/tracee-%u.out", p->t.dir, runs++);
	const char *argv[32] = { p->t.tracee };
	int n = 1;
	for (int i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	p->tracee = e2e_spawn(argv, p->tracee_log, false);
	return p->tracee;
}

void pl_tracee_finish(struct pl *p, int sig, char **out, int timeout_ms)
{
	pid_t pid = p->tracee;
	cr_assert_gt(pid, 0, "no tracee runs");
	if (sig)
		kill(pid, sig);
	int status = e2e_wait_exit(pid, timeout_ms);
	if (status < 0) {
		kill(pid, SIGKILL);
		e2e_wait_exit(pid, 5000);
	}
	p->tracee = 0;
	char *text = e2e_read_file(p->tracee_log);
	cr_assert_eq(status, 0, "the tracee exited with %d, expected 0: %s", status,
		     text ? text : "");
	if (out)
		*out = text;
	else
		free(text);
}

pid_t pl_run_tracee(struct pl *p, const char *const args[], char **out, int timeout_ms)
{
	pid_t pid = pl_tracee_spawn(p, args);
	pl_tracee_finish(p, 0, out, timeout_ms);
	return pid;
}

int64_t pl_fired(const char *out, enum tracepoint_id tp)
{
	char needle[128];
	snprintf(needle, sizeof(needle), "fired %s ", tracepoint_table[tp].event);
	const char *at = out ? strstr(out, needle) : NULL;
	return at ? strtoll(at + strlen(needle), NULL, 10) : -1;
}

/* ---- decoding ---- */

/* Decodes one message and hands it to fn: exactly one MessagePack map,
 * nothing after it, every key a str. */
static void hand(const char *subject, const void *data, size_t len, uint64_t index, pl_msg_fn fn,
		 void *arg)
{
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 0;
	msgpack_unpack_return rc = msgpack_unpack_next(&u, data, len, &off);
	cr_assert_eq(rc, MSGPACK_UNPACK_SUCCESS, "message %" PRIu64 " on %s is not MessagePack",
		     index, subject);
	cr_assert_eq(off, len, "message %" PRIu64 " on %s: %zu bytes after the map", index, subject,
		     len - off);
	cr_assert_eq(u.data.type, MSGPACK_OBJECT_MAP, "message %" PRIu64 " on %s is not a map", index,
		     subject);
	for (uint32_t i = 0; i < u.data.via.map.size; i++)
		cr_assert_eq(u.data.via.map.ptr[i].key.type, MSGPACK_OBJECT_STR,
			     "message %" PRIu64 " on %s: key %u is not a str", index, subject, i);
	struct pl_msg m = { subject, &u.data, data, len, index };
	fn(arg, &m);
	msgpack_unpacked_destroy(&u);
}

/* ---- JetStream ---- */

struct pl_js {
	jsCtx *js;
	natsSubscription *sub;
	char stream[64];
	uint64_t handed;
};

struct pl_js *pl_js_open(natsConnection *nc, const char *stream, const char *subjects)
{
	pe_js_add_stream(nc, stream, subjects);
	return pl_js_reader(nc, stream, subjects);
}

struct pl_js *pl_js_reader(natsConnection *nc, const char *stream, const char *subjects)
{
	struct pl_js *r = calloc(1, sizeof(*r));
	cr_assert_not_null(r);
	snprintf(r->stream, sizeof(r->stream), "%s", stream);
	cr_assert_eq(natsConnection_JetStream(&r->js, nc, NULL), NATS_OK);
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Config.AckPolicy = js_AckNone;
	so.Config.DeliverPolicy = js_DeliverAll;
	jsErrCode jerr = 0;
	natsStatus s = js_PullSubscribe(&r->sub, r->js, subjects, "pipeline-reader", NULL, &so,
					&jerr);
	cr_assert_eq(s, NATS_OK, "js_PullSubscribe: %s (%d: %s)", natsStatus_GetText(s), (int)jerr,
		     nats_GetLastError(NULL));
	natsSubscription_SetPendingLimits(r->sub, -1, -1);
	return r;
}

static void js_fetch(struct pl_js *r, pl_msg_fn fn, void *arg, int64_t wait_ms)
{
	natsMsgList list = { 0 };
	jsErrCode jerr = 0;
	natsStatus s = natsSubscription_Fetch(&list, r->sub, 256, wait_ms < 1 ? 1 : wait_ms, &jerr);
	cr_assert(s == NATS_OK || s == NATS_TIMEOUT, "JetStream fetch: %s (%d)",
		  natsStatus_GetText(s), (int)jerr);
	for (int i = 0; i < list.Count; i++) {
		natsMsg *m = list.Msgs[i];
		hand(natsMsg_GetSubject(m), natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
		     r->handed++, fn, arg);
	}
	natsMsgList_Destroy(&list);
}

bool pl_js_pump(struct pl_js *r, pl_msg_fn fn, void *arg, pl_done_fn done, void *done_arg,
		int timeout_ms)
{
	uint64_t deadline = pe_now_ms() + (uint64_t)timeout_ms;
	while (!done(done_arg)) {
		uint64_t now = pe_now_ms();
		if (now >= deadline)
			return false;
		int64_t left = (int64_t)(deadline - now);
		js_fetch(r, fn, arg, left < 500 ? left : 500);
	}
	return true;
}

static uint64_t js_stream_msgs(struct pl_js *r)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_GetStreamInfo(&si, r->js, r->stream, NULL, &jerr);
	cr_assert_eq(s, NATS_OK, "js_GetStreamInfo %s: %s", r->stream, natsStatus_GetText(s));
	uint64_t n = si->State.Msgs;
	jsStreamInfo_Destroy(si);
	return n;
}

void pl_js_pump_all(struct pl_js *r, pl_msg_fn fn, void *arg, int timeout_ms)
{
	uint64_t total = js_stream_msgs(r);
	uint64_t deadline = pe_now_ms() + (uint64_t)timeout_ms;
	while (r->handed < total) {
		uint64_t now = pe_now_ms();
		cr_assert_lt(now, deadline, "read %" PRIu64 " of the stream's %" PRIu64 " messages",
			     r->handed, total);
		int64_t left = (int64_t)(deadline - now);
		js_fetch(r, fn, arg, left < 500 ? left : 500);
	}
	cr_assert_eq(r->handed, total, "the stream holds %" PRIu64 " messages, %" PRIu64 " read",
		     total, r->handed);
}

uint64_t pl_js_handed(const struct pl_js *r)
{
	return r->handed;
}

void pl_js_close(struct pl_js *r)
{
	if (!r)
		return;
	natsSubscription_Unsubscribe(r->sub);
	natsSubscription_Destroy(r->sub);
	jsCtx_Destroy(r->js);
	free(r);
}

/* ---- core NATS ---- */

struct raw_msg {
	char *subject;
	void *data;
	size_t len;
};

struct pl_sub {
	natsSubscription *sub;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct raw_msg *v;
	size_t n, cap, next;
};

static void sub_cb(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
	(void)nc;
	(void)sub;
	struct pl_sub *s = closure;
	struct raw_msg r;
	r.subject = strdup(natsMsg_GetSubject(m));
	r.len = (size_t)natsMsg_GetDataLength(m);
	r.data = malloc(r.len ? r.len : 1);
	if (r.data && r.len)
		memcpy(r.data, natsMsg_GetData(m), r.len);
	natsMsg_Destroy(m);
	pthread_mutex_lock(&s->mu);
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 256;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = r;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
}

struct pl_sub *pl_sub_start(natsConnection *nc, const char *subject)
{
	struct pl_sub *s = calloc(1, sizeof(*s));
	cr_assert_not_null(s);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cond, NULL);
	natsStatus st = natsConnection_Subscribe(&s->sub, nc, subject, sub_cb, s);
	cr_assert_eq(st, NATS_OK, "subscribe %s: %s", subject, natsStatus_GetText(st));
	natsSubscription_SetPendingLimits(s->sub, -1, -1);
	/* the server knows the subscription once the flush returns */
	cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
	return s;
}

bool pl_sub_pump(struct pl_sub *s, pl_msg_fn fn, void *arg, pl_done_fn done, void *done_arg,
		 int timeout_ms)
{
	struct timespec ts = pe_deadline(timeout_ms);
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (s->next < s->n) {
			struct raw_msg r = s->v[s->next];
			uint64_t index = s->next++;
			pthread_mutex_unlock(&s->mu);
			cr_assert(r.subject && r.data, "out of memory copying a message");
			hand(r.subject, r.data, r.len, index, fn, arg);
			pthread_mutex_lock(&s->mu);
		}
		pthread_mutex_unlock(&s->mu);
		if (done(done_arg))
			return true;
		pthread_mutex_lock(&s->mu);
		if (s->next < s->n)
			continue;
		if (pthread_cond_timedwait(&s->cond, &s->mu, &ts) == ETIMEDOUT && s->next >= s->n) {
			pthread_mutex_unlock(&s->mu);
			return done(done_arg);
		}
	}
}

size_t pl_sub_count(struct pl_sub *s)
{
	pthread_mutex_lock(&s->mu);
	size_t n = s->n;
	pthread_mutex_unlock(&s->mu);
	/* also what the client holds for the callback or dropped: the reader
	 * thread counts a message as soon as it takes it off the socket */
	int pending = 0;
	int64_t delivered = 0, dropped = 0;
	natsStatus st = natsSubscription_GetStats(s->sub, &pending, NULL, NULL, NULL, &delivered,
						  &dropped);
	cr_assert_eq(st, NATS_OK, "natsSubscription_GetStats: %s", natsStatus_GetText(st));
	size_t client = (size_t)pending + (size_t)delivered + (size_t)dropped;
	return client > n ? client : n;
}

void pl_sub_stop(struct pl_sub *s)
{
	if (!s)
		return;
	natsSubscription_Unsubscribe(s->sub);
	natsSubscription_Destroy(s->sub);
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].subject);
		free(s->v[i].data);
	}
	free(s->v);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cond);
	free(s);
}

/* ---- MessagePack access ---- */

bool pl_str_is(const msgpack_object *v, const char *s)
{
	size_t n = strlen(s);
	return v && v->type == MSGPACK_OBJECT_STR && v->via.str.size == n &&
	       memcmp(v->via.str.ptr, s, n) == 0;
}

const msgpack_object *pl_get(const msgpack_object *map, const char *key)
{
	if (map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < map->via.map.size; i++)
		if (pl_str_is(&map->via.map.ptr[i].key, key))
			return &map->via.map.ptr[i].val;
	return NULL;
}

uint64_t pl_uint(const msgpack_object *map, const char *key)
{
	const msgpack_object *v = pl_get(map, key);
	cr_assert_not_null(v, "no key %s", key);
	cr_assert_eq(v->type, MSGPACK_OBJECT_POSITIVE_INTEGER, "%s is not a positive integer (type %d)",
		     key, (int)v->type);
	return v->via.u64;
}

int64_t pl_int(const msgpack_object *map, const char *key)
{
	const msgpack_object *v = pl_get(map, key);
	cr_assert_not_null(v, "no key %s", key);
	if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		cr_assert_leq(v->via.u64, (uint64_t)INT64_MAX, "%s = %" PRIu64 " is out of int64 range",
			      key, v->via.u64);
		return (int64_t)v->via.u64;
	}
	cr_assert_eq(v->type, MSGPACK_OBJECT_NEGATIVE_INTEGER, "%s is not an integer (type %d)", key,
		     (int)v->type);
	return v->via.i64;
}

bool pl_bool(const msgpack_object *map, const char *key)
{
	const msgpack_object *v = pl_get(map, key);
	cr_assert_not_null(v, "no key %s", key);
	cr_assert_eq(v->type, MSGPACK_OBJECT_BOOLEAN, "%s is not a bool (type %d)", key, (int)v->type);
	return v->via.boolean;
}

size_t pl_str(const msgpack_object *map, const char *key, char *out, size_t outlen)
{
	const msgpack_object *v = pl_get(map, key);
	cr_assert_not_null(v, "no key %s", key);
	cr_assert_eq(v->type, MSGPACK_OBJECT_STR, "%s is not a str (type %d)", key, (int)v->type);
	cr_assert_lt(v->via.str.size, outlen, "%s: %u bytes", key, v->via.str.size);
	memcpy(out, v->via.str.ptr, v->via.str.size);
	out[v->via.str.size] = '\0';
	return v->via.str.size;
}

/* ---- docs/events.md ---- */

struct doc_key {
	char event[64]; /* "*" for the keys in every event */
	char path[128];
	char type[16];
};

static struct doc_key *doc;
static size_t doc_n;

static void doc_load(void)
{
	if (doc)
		return;
	char *text = e2e_read_file(DOCS_EVENTS_PATH);
	cr_assert_not_null(text, "cannot read %s", DOCS_EVENTS_PATH);
	size_t cap = 1024;
	doc = calloc(cap, sizeof(*doc));
	char event[64] = "";
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (line[0] == '#') {
			event[0] = '\0';
			if (strncmp(line, "## Keys in every event", 22) == 0)
				snprintf(event, sizeof(event), "*");
			else if (strncmp(line, "### `", 5) == 0) {
				const char *end = strchr(line + 5, '`');
				if (end)
					snprintf(event, sizeof(event), "%.*s", (int)(end - line - 5),
						 line + 5);
			}
			continue;
		}
		if (!event[0] || strncmp(line, "| `", 3) != 0)
			continue;
		const char *kend = strchr(line + 3, '`');
		const char *col2 = kend ? strchr(kend, '|') : NULL;
		if (!col2)
			continue;
		col2++;
		while (*col2 == ' ')
			col2++;
		cr_assert_lt(doc_n, cap);
		struct doc_key *d = &doc[doc_n++];
		snprintf(d->event, sizeof(d->event), "%s", event);
		snprintf(d->path, sizeof(d->path), "%.*s", (int)(kend - line - 3), line + 3);
		size_t tl = strcspn(col2, " |");
		snprintf(d->type, sizeof(d->type), "%.*s", (int)tl, col2);
	}
	free(text);
	cr_assert_gt(doc_n, 100, "docs/events.md: only %zu keys found", doc_n);
}

static const struct doc_key *doc_find(const char *event, const char *path)
{
	for (size_t i = 0; i < doc_n; i++)
		if (strcmp(doc[i].event, event) == 0 && strcmp(doc[i].path, path) == 0)
			return &doc[i];
	if (strcmp(event, "extractor:publisher_stats") != 0)
		for (size_t i = 0; i < doc_n; i++)
			if (strcmp(doc[i].event, "*") == 0 && strcmp(doc[i].path, path) == 0)
				return &doc[i];
	return NULL;
}

static bool is_event_name(const char *s)
{
	if (strcmp(s, "unknown") == 0)
		return true;
	for (int tp = 1; tp < TP_COUNT; tp++)
		if (strcmp(tracepoint_table[tp].event, s) == 0)
			return true;
	return false;
}

static bool type_matches(const char *type, const msgpack_object *v)
{
	switch (v->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		return strcmp(type, "uint") == 0 || strcmp(type, "int") == 0;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: return strcmp(type, "int") == 0;
	case MSGPACK_OBJECT_BOOLEAN: return strcmp(type, "bool") == 0;
	case MSGPACK_OBJECT_STR: return strcmp(type, "str") == 0;
	case MSGPACK_OBJECT_BIN: return strcmp(type, "bin") == 0;
	case MSGPACK_OBJECT_MAP: return strcmp(type, "map") == 0;
	case MSGPACK_OBJECT_ARRAY: return strcmp(type, "array") == 0;
	default: return false;
	}
}

static void doc_check_map(const char *event, const char *path, const msgpack_object *m)
{
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
		cr_assert_eq(k->type, MSGPACK_OBJECT_STR, "%s: a key in %s is not a str", event,
			     path[0] ? path : "the message");
		char key[96], full[160];
		snprintf(key, sizeof(key), "%.*s", (int)k->via.str.size, k->via.str.ptr);
		snprintf(full, sizeof(full), "%s%s%s", path, path[0] ? "." : "", key);
		const struct doc_key *d = doc_find(event, full);
		if (!d && path[0] && is_event_name(key)) {
			snprintf(full, sizeof(full), "%s.<event>", path);
			d = doc_find(event, full);
		}
		cr_assert_not_null(d, "%s: key %s is not documented for it in docs/events.md", event,
				   full);
		cr_assert(type_matches(d->type, v),
			  "%s: key %s has MessagePack type %d, docs/events.md says %s", event, full,
			  (int)v->type, d->type);
		if (v->type == MSGPACK_OBJECT_MAP)
			doc_check_map(event, full, v);
		if (v->type == MSGPACK_OBJECT_ARRAY)
			for (uint32_t j = 0; j < v->via.array.size; j++)
				cr_assert_eq(v->via.array.ptr[j].type, MSGPACK_OBJECT_STR,
					     "%s: %s[%u] is not a str", event, full, j);
	}
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

void pl_doc_check(const char *event, const msgpack_object *m)
{
	bool found_event = false;
	for (size_t i = 0; i < doc_n; i++)
		found_event |= strcmp(doc[i].event, event) == 0;
	cr_assert(found_event, "event %s has no section in docs/events.md", event);
	doc_check_map(event, "", m);
	bool publisher_stats = strcmp(event, "extractor:publisher_stats") == 0;
	for (size_t i = 0; i < doc_n; i++) {
		const struct doc_key *d = &doc[i];
		if (strcmp(d->event, event) != 0 && (publisher_stats || strcmp(d->event, "*") != 0))
			continue;
		if (strchr(d->path, '.') || ends_with(d->path, "_truncated") ||
		    ends_with(d->path, "_read_failed"))
			continue;
		cr_assert_not_null(pl_get(m, d->path), "%s: documented key %s is missing", event,
				   d->path);
	}
}
