#include "pe.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "event_fields.h"
#include "harness.h"

uint64_t pe_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void pe_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- scratch ---- */

void pe_env_setup(struct pe_env *e, const char *name)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "/tmp/ebpf-pub-e2e-XXXXXX");
	cr_assert_not_null(mkdtemp(e->dir), "mkdtemp: %s", strerror(errno));
	static unsigned counter;
	snprintf(e->queue_dir, sizeof(e->queue_dir), "/dev/shm/ebpf-pub-e2e-%d-%u", (int)getpid(),
		 counter++);
	snprintf(e->ready_file, sizeof(e->ready_file), "%s/ready", e->dir);
	snprintf(e->prefix, sizeof(e->prefix), "e2e.%s", name);
}

void pe_env_teardown(struct pe_env *e)
{
	if (getenv("E2E_KEEP")) {
		fprintf(stderr, "keeping %s and %s\n", e->dir, e->queue_dir);
		return;
	}
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", e->dir, e->queue_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed: %s\n", cmd);
}

/* ---- producer ---- */

void pe_producer_open(struct pe_producer *p, const char *dir, uint64_t capacity)
{
	char err[QUEUE_ERROR_LEN];
	struct queue_producer_options o = { .dir = dir, .capacity = capacity, .group = (gid_t)-1 };
	memset(p, 0, sizeof(*p));
	p->q = queue_producer_open(&o, err);
	cr_assert_not_null(p->q, "queue_producer_open %s: %s", dir, err);
	p->last_seq = queue_next_seq(p->q) - 1;
}

void pe_producer_close(struct pe_producer *p)
{
	if (p->q)
		queue_producer_close(p->q);
	p->q = NULL;
}

static uint64_t commit(struct pe_producer *p, uint32_t len)
{
	uint64_t seq = queue_commit(p->q, len);
	cr_assert_neq(seq, 0, "queue_commit");
	p->last_seq = seq;
	return seq;
}

static void fill_header(struct record_header *h, uint16_t kind, uint16_t tp, uint32_t length,
			uint64_t tag)
{
	memset(h, 0, sizeof(*h));
	h->kind = kind;
	h->tracepoint = tp;
	h->length = length;
	h->time_ns = tag;
	if (kind == RECORD_EVENT) {
		h->pid = 4242;
		h->tid = 4243;
	}
}

uint64_t pe_write_event(struct pe_producer *p, enum tracepoint_id tp, uint32_t payload_len,
			uint64_t tag)
{
	const struct event_layout *L = &event_layouts[tp];
	bool p2p = tp == TP_NET_INBOUND_MESSAGE || tp == TP_NET_OUTBOUND_MESSAGE;
	if (!p2p)
		payload_len = 0;
	uint32_t length = (uint32_t)(sizeof(struct record_header) + L->body_size + payload_len);
	uint8_t *rec = queue_reserve(p->q, length);
	if (!rec)
		return 0;
	memset(rec, 0, length);
	fill_header((struct record_header *)rec, RECORD_EVENT, (uint16_t)tp, length, tag);
	uint8_t *body = rec + sizeof(struct record_header);
	if (p2p) {
		struct ev_net_message *m = (struct ev_net_message *)body;
		m->peer_id = (int64_t)tag;
		m->size = payload_len;
		snprintf(m->addr, sizeof(m->addr), "127.0.0.1:8333");
		snprintf(m->conn_type, sizeof(m->conn_type), "inbound");
		snprintf(m->msg_type, sizeof(m->msg_type), "%s", payload_len > 1000 ? "block" : "ping");
		for (uint32_t i = 0; i < payload_len; i++)
			body[L->body_size + i] = (uint8_t)(i * 7 + tag);
	}
	return commit(p, length);
}

uint64_t pe_write_loss(struct pe_producer *p, uint64_t tag)
{
	uint32_t length = (uint32_t)(sizeof(struct record_header) + sizeof(struct rec_loss));
	uint8_t *rec = queue_reserve(p->q, length);
	if (!rec)
		return 0;
	memset(rec, 0, length);
	fill_header((struct record_header *)rec, RECORD_LOSS, TP_NONE, length, tag);
	struct rec_loss *l = (struct rec_loss *)(rec + sizeof(struct record_header));
	l->tp[TP_MEMPOOL_ADDED].queue_drops = 3;
	return commit(p, length);
}

uint64_t pe_write_stats(struct pe_producer *p, uint64_t tag)
{
	uint32_t length = (uint32_t)(sizeof(struct record_header) + sizeof(struct rec_stats));
	uint8_t *rec = queue_reserve(p->q, length);
	if (!rec)
		return 0;
	memset(rec, 0, length);
	fill_header((struct record_header *)rec, RECORD_STATS, TP_NONE, length, tag);
	struct rec_stats *s = (struct rec_stats *)(rec + sizeof(struct record_header));
	s->queue_capacity = queue_capacity(p->q);
	s->uptime_ns = 1000;
	return commit(p, length);
}

uint64_t pe_write_started(struct pe_producer *p, uint64_t tag)
{
	uint32_t length = (uint32_t)(sizeof(struct record_header) + sizeof(struct rec_started));
	uint8_t *rec = queue_reserve(p->q, length);
	if (!rec)
		return 0;
	memset(rec, 0, length);
	fill_header((struct record_header *)rec, RECORD_STARTED, TP_NONE, length, tag);
	struct rec_started *s = (struct rec_started *)(rec + sizeof(struct record_header));
	snprintf(s->version, sizeof(s->version), "test");
	s->attach_mode = ATTACH_MULTI;
	return commit(p, length);
}

uint64_t pe_write_malformed(struct pe_producer *p)
{
	uint32_t length = sizeof(struct record_header);
	uint8_t *rec = queue_reserve(p->q, length);
	if (!rec)
		return 0;
	fill_header((struct record_header *)rec, 77, TP_NONE, length, 1);
	return commit(p, length);
}

uint64_t pe_write_event_wait(struct pe_producer *p, enum tracepoint_id tp, uint32_t payload_len,
			     uint64_t tag, int timeout_ms)
{
	uint64_t deadline = pe_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		uint64_t seq = pe_write_event(p, tp, payload_len, tag);
		if (seq)
			return seq;
		queue_notify(p->q);
		cr_assert_lt(pe_now_ms(), deadline, "the queue stayed full for %d ms", timeout_ms);
		pe_sleep_ms(2); /* waiting for the consumer to release space */
	}
}

void pe_notify(struct pe_producer *p)
{
	queue_notify(p->q);
}

/* A u64 at off of a queue file; 0 when it cannot be read. */
static uint64_t queue_file_u64(const char *queue_dir, const char *name, off_t off)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", queue_dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	uint64_t v = 0;
	if (pread(fd, &v, sizeof(v), off) != (ssize_t)sizeof(v))
		v = 0;
	close(fd);
	return v;
}

uint64_t pe_release_pos(const char *queue_dir)
{
	return queue_file_u64(queue_dir, QUEUE_CONSUMER_FILE, QUEUE_CON_RELEASE_POS);
}

uint64_t pe_write_pos(const char *queue_dir)
{
	return queue_file_u64(queue_dir, QUEUE_DATA_FILE, QUEUE_HDR_WRITE_POS);
}

/* ---- nats-server ---- */

int pe_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "bind: %s", strerror(errno));
	socklen_t len = sizeof(a);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static bool tcp_up(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static void nats_spawn(struct pe_nats *n)
{
	char port[16];
	snprintf(port, sizeof(port), "%d", n->port);
	const char *argv[16] = { "/usr/sbin/nats-server", "-a", "127.0.0.1", "-p", port };
	int i = 5;
	if (n->jetstream) {
		argv[i++] = "-js";
		argv[i++] = "-sd";
		argv[i++] = n->store_dir;
	}
	if (n->conf[0]) {
		argv[i++] = "-c";
		argv[i++] = n->conf;
	}
	argv[i] = NULL;
	n->pid = e2e_spawn(argv, n->log, false);
	uint64_t deadline = pe_now_ms() + 10000;
	while (!tcp_up(n->port)) {
		int status;
		if (waitpid(n->pid, &status, WNOHANG) == n->pid) {
			char *log = e2e_read_file(n->log);
			n->pid = 0;
			cr_assert_fail("nats-server exited at start; its log:\n%s", log ? log : "");
		}
		cr_assert_lt(pe_now_ms(), deadline, "nats-server not accepting on port %d", n->port);
		pe_sleep_ms(5); /* polling for the port, with a deadline */
	}
}

void pe_nats_start(struct pe_nats *n, struct pe_env *e, int port, bool jetstream,
		   const char *conf_text)
{
	memset(n, 0, sizeof(*n));
	n->port = port ? port : pe_free_port();
	n->jetstream = jetstream;
	snprintf(n->store_dir, sizeof(n->store_dir), "%s/js", e->dir);
	snprintf(n->log, sizeof(n->log), "%s/nats-server.log", e->dir);
	if (conf_text) {
		snprintf(n->conf, sizeof(n->conf), "%s/nats-server.conf", e->dir);
		FILE *f = fopen(n->conf, "we");
		cr_assert_not_null(f);
		fputs(conf_text, f);
		fclose(f);
	}
	nats_spawn(n);
}

void pe_nats_kill(struct pe_nats *n, int sig)
{
	if (n->pid <= 0)
		return;
	kill(n->pid, sig);
	int st = e2e_wait_exit(n->pid, 15000);
	if (st < 0) {
		kill(n->pid, SIGKILL);
		e2e_wait_exit(n->pid, 5000);
	}
	n->pid = 0;
}

void pe_nats_restart(struct pe_nats *n)
{
	cr_assert_eq(n->pid, 0);
	nats_spawn(n);
}

void pe_nats_stop(struct pe_nats *n)
{
	pe_nats_kill(n, SIGTERM);
}

void pe_nats_url(const struct pe_nats *n, char *out, size_t len)
{
	snprintf(out, len, "nats://127.0.0.1:%d", n->port);
}

natsConnection *pe_nats_connect(const struct pe_nats *n)
{
	char url[64];
	pe_nats_url(n, url, sizeof(url));
	natsConnection *nc = NULL;
	natsStatus s = natsConnection_ConnectTo(&nc, url);
	cr_assert_eq(s, NATS_OK, "connecting to %s: %s", url, natsStatus_GetText(s));
	return nc;
}

/* ---- publisher ---- */

void pe_pub_start(struct pe_pub *pb, struct pe_env *e, int port, const char *const extra[])
{
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	snprintf(pb->log, sizeof(pb->log), "%s/publisher.log", e->dir);
	unlink(e->ready_file);
	const char *argv[48] = { PUBLISHER_PATH, "--queue", e->queue_dir, "--ready-file",
				 e->ready_file, "--subject-prefix", e->prefix, "--log-level",
				 "debug" };
	int n = 9;
	if (port >= 0) {
		argv[n++] = "--nats-address";
		argv[n++] = addr;
	}
	for (int i = 0; extra && extra[i] && n < 47; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	pb->pid = e2e_spawn(argv, pb->log, false);
}

static bool ready_cond(void *arg)
{
	struct pe_env *e = arg;
	return access(e->ready_file, F_OK) == 0;
}

bool pe_pub_wait_ready(struct pe_env *e, int timeout_ms)
{
	return e2e_wait_until(ready_cond, e, timeout_ms);
}

int pe_pub_stop(struct pe_pub *pb, int timeout_ms)
{
	if (pb->pid <= 0)
		return -1;
	kill(pb->pid, SIGTERM);
	int st = e2e_wait_exit(pb->pid, timeout_ms);
	if (st < 0) {
		kill(pb->pid, SIGKILL);
		e2e_wait_exit(pb->pid, 5000);
	}
	pb->pid = 0;
	return st;
}

void pe_pub_kill(struct pe_pub *pb)
{
	if (pb->pid <= 0)
		return;
	kill(pb->pid, SIGKILL);
	e2e_wait_exit(pb->pid, 5000);
	pb->pid = 0;
}

void pe_pub_dump_log(const struct pe_pub *pb)
{
	char *log = e2e_read_file(pb->log);
	fprintf(stderr, "---- publisher log %s ----\n%s\n---- end ----\n", pb->log,
		log ? log : "(none)");
	free(log);
}

uint64_t pe_cpu_ticks(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	char *text = e2e_read_file(path);
	cr_assert_not_null(text, "reading %s", path);
	/* fields after the command name (which can hold spaces): skip to ')' */
	const char *p = strrchr(text, ')');
	cr_assert_not_null(p);
	unsigned long long utime = 0, stime = 0;
	int n = sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
		       &stime);
	free(text);
	cr_assert_eq(n, 2, "parsing %s", path);
	return utime + stime;
}

unsigned pe_file_count(const char *path, const char *needle)
{
	char *text = e2e_read_file(path);
	unsigned n = 0;
	size_t len = strlen(needle);
	for (const char *p = text; p && len && (p = strstr(p, needle)); p += len)
		n++;
	free(text);
	return n;
}

struct count_wait {
	const char *path, *needle;
	unsigned count;
};

static bool count_cond(void *arg)
{
	const struct count_wait *w = arg;
	return pe_file_count(w->path, w->needle) >= w->count;
}

bool pe_wait_file_count(const char *path, const char *needle, unsigned count, int timeout_ms)
{
	struct count_wait w = { path, needle, count };
	return e2e_wait_until(count_cond, &w, timeout_ms);
}

/* ---- decoding ---- */

static bool key_is(const msgpack_object *k, const char *name)
{
	size_t n = strlen(name);
	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	       memcmp(k->via.str.ptr, name, n) == 0;
}

static void copy_str(const msgpack_object *v, char *out, size_t len)
{
	if (v->type != MSGPACK_OBJECT_STR) {
		out[0] = '\0';
		return;
	}
	size_t n = v->via.str.size < len - 1 ? v->via.str.size : len - 1;
	memcpy(out, v->via.str.ptr, n);
	out[n] = '\0';
}

static uint64_t as_u64(const msgpack_object *v)
{
	return v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? v->via.u64 : 0;
}

bool pe_decode(const char *subject, const void *data, size_t len, struct pe_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	snprintf(ev->subject, sizeof(ev->subject), "%s", subject);
	ev->size = len;
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 0;
	bool ok = msgpack_unpack_next(&u, data, len, &off) == MSGPACK_UNPACK_SUCCESS &&
		  u.data.type == MSGPACK_OBJECT_MAP;
	if (ok) {
		const msgpack_object_map *m = &u.data.via.map;
		for (uint32_t i = 0; i < m->size; i++) {
			const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
			if (key_is(k, "seq")) {
				ev->seq = as_u64(v);
				ev->has_seq = true;
			} else if (key_is(k, "stream_id"))
				ev->stream_id = as_u64(v);
			else if (key_is(k, "time_ns"))
				ev->time_ns = as_u64(v);
			else if (key_is(k, "event"))
				copy_str(v, ev->event, sizeof(ev->event));
			else if (key_is(k, "confirmed_seq"))
				ev->confirmed_seq = as_u64(v);
			else if (key_is(k, "published"))
				ev->published = as_u64(v);
			else if (key_is(k, "refused_too_large"))
				ev->refused_too_large = as_u64(v);
			else if (key_is(k, "malformed"))
				ev->malformed = as_u64(v);
			else if (key_is(k, "last_read_seq"))
				ev->last_read_seq = as_u64(v);
			else if (key_is(k, "connected"))
				ev->connected = v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
			else if (key_is(k, "collector_present"))
				ev->collector_present = v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
		}
	}
	msgpack_unpacked_destroy(&u);
	return ok;
}

void pe_events_push(struct pe_events *l, const struct pe_event *ev)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 1024;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		cr_assert_not_null(l->v);
	}
	l->v[l->n++] = *ev;
}

void pe_events_free(struct pe_events *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* ---- JetStream ---- */

void pe_js_add_stream(natsConnection *nc, const char *name, const char *subjects)
{
	jsCtx *js = NULL;
	cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
	jsStreamConfig cfg;
	jsStreamConfig_Init(&cfg);
	cfg.Name = name;
	const char *subj[1] = { subjects };
	cfg.Subjects = subj;
	cfg.SubjectsLen = 1;
	cfg.Storage = js_FileStorage;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_AddStream(&si, js, &cfg, NULL, &jerr);
	cr_assert_eq(s, NATS_OK, "js_AddStream %s: %s (%d: %s)", name, natsStatus_GetText(s),
		     (int)jerr, nats_GetLastError(NULL));
	jsStreamInfo_Destroy(si);
	jsCtx_Destroy(js);
}

void pe_js_read_all(natsConnection *nc, const char *stream, struct pe_events *out)
{
	jsCtx *js = NULL;
	cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_GetStreamInfo(&si, js, stream, NULL, &jerr);
	cr_assert_eq(s, NATS_OK, "js_GetStreamInfo %s: %s", stream, natsStatus_GetText(s));
	uint64_t total = si->State.Msgs;
	jsStreamInfo_Destroy(si);

	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Config.AckPolicy = js_AckNone;
	so.Config.DeliverPolicy = js_DeliverAll;
	natsSubscription *sub = NULL;
	s = js_PullSubscribe(&sub, js, ">", "pe-reader", NULL, &so, &jerr);
	cr_assert_eq(s, NATS_OK, "js_PullSubscribe: %s (%d: %s)", natsStatus_GetText(s), (int)jerr,
		     nats_GetLastError(NULL));
	uint64_t got = 0, deadline = pe_now_ms() + 60000;
	while (got < total) {
		natsMsgList list = { 0 };
		s = natsSubscription_Fetch(&list, sub, 512, 5000, &jerr);
		cr_assert(s == NATS_OK || s == NATS_TIMEOUT, "fetch: %s", natsStatus_GetText(s));
		for (int i = 0; i < list.Count; i++) {
			struct pe_event ev;
			natsMsg *m = list.Msgs[i];
			cr_assert(pe_decode(natsMsg_GetSubject(m), natsMsg_GetData(m),
					    (size_t)natsMsg_GetDataLength(m), &ev),
				  "message %" PRIu64 " of the stream is not a MessagePack map", got);
			pe_events_push(out, &ev);
			got++;
		}
		natsMsgList_Destroy(&list);
		cr_assert_lt(pe_now_ms(), deadline, "read %" PRIu64 " of %" PRIu64 " stream messages",
			     got, total);
	}
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	jsCtx_Destroy(js);
}

/* ---- core subscription ---- */

struct pe_sub {
	natsSubscription *sub;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct pe_events events;
};

static void sub_cb(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
	struct pe_sub *s = closure;
	struct pe_event ev;
	bool ok = pe_decode(natsMsg_GetSubject(m), natsMsg_GetData(m),
			    (size_t)natsMsg_GetDataLength(m), &ev);
	if (!ok)
		snprintf(ev.event, sizeof(ev.event), "(not msgpack)");
	pthread_mutex_lock(&s->mu);
	if (s->events.n == s->events.cap) {
		s->events.cap = s->events.cap ? s->events.cap * 2 : 1024;
		s->events.v = realloc(s->events.v, s->events.cap * sizeof(*s->events.v));
	}
	s->events.v[s->events.n++] = ev;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
	natsMsg_Destroy(m);
}

struct pe_sub *pe_sub_start(natsConnection *nc, const char *subject)
{
	struct pe_sub *s = calloc(1, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cond, NULL);
	natsStatus st = natsConnection_Subscribe(&s->sub, nc, subject, sub_cb, s);
	cr_assert_eq(st, NATS_OK, "subscribe %s: %s", subject, natsStatus_GetText(st));
	natsSubscription_SetPendingLimits(s->sub, -1, -1);
	cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
	return s;
}

struct timespec pe_deadline(int timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

bool pe_sub_wait(struct pe_sub *s, bool (*cond)(const struct pe_events *, void *), void *arg,
		 int timeout_ms)
{
	struct timespec ts = pe_deadline(timeout_ms);
	pthread_mutex_lock(&s->mu);
	bool ok;
	while (!(ok = cond(&s->events, arg)))
		if (pthread_cond_timedwait(&s->cond, &s->mu, &ts) == ETIMEDOUT) {
			ok = cond(&s->events, arg);
			break;
		}
	pthread_mutex_unlock(&s->mu);
	return ok;
}

void pe_sub_snapshot(struct pe_sub *s, struct pe_events *out)
{
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->events.n; i++)
		pe_events_push(out, &s->events.v[i]);
	pthread_mutex_unlock(&s->mu);
}

void pe_sub_stop(struct pe_sub *s)
{
	natsSubscription_Unsubscribe(s->sub);
	natsSubscription_Destroy(s->sub);
	pe_events_free(&s->events);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cond);
	free(s);
}

/* ---- the delivery contract ---- */

uint64_t pe_check_delivery(const struct pe_events *l, uint64_t stream_id, uint64_t last,
			   uint64_t *max_confirmed)
{
	uint8_t *seen = calloc(last + 2, 1);
	cr_assert_not_null(seen);
	uint64_t confirmed = 0, next = 1, dups = 0;
	for (size_t i = 0; i < l->n; i++) {
		const struct pe_event *ev = &l->v[i];
		if (strcmp(ev->event, "extractor:publisher_stats") == 0) {
			if (ev->stream_id == stream_id && ev->confirmed_seq > confirmed)
				confirmed = ev->confirmed_seq;
			continue;
		}
		cr_assert(ev->has_seq, "message %zu (%s, %s) has no seq", i, ev->subject, ev->event);
		cr_assert_eq(ev->stream_id, stream_id, "message %zu: stream_id %016" PRIx64
			     ", expected %016" PRIx64, i, ev->stream_id, stream_id);
		cr_assert(ev->seq >= 1 && ev->seq <= last, "message %zu: seq %" PRIu64
			  " outside 1..%" PRIu64, i, ev->seq, last);
		if (!seen[ev->seq]) {
			cr_assert_eq(ev->seq, next, "message %zu: seq %" PRIu64 " arrived first where %"
				     PRIu64 " was due (a gap or out of order)", i, ev->seq, next);
			seen[ev->seq] = 1;
			next++;
		} else {
			dups++;
			cr_assert_gt(ev->seq, confirmed, "message %zu: duplicate of seq %" PRIu64
				     ", which the publisher had reported confirmed (confirmed_seq %"
				     PRIu64 ")", i, ev->seq, confirmed);
		}
	}
	free(seen);
	cr_assert_eq(next, last + 1, "only seqs 1..%" PRIu64 " arrived of 1..%" PRIu64, next - 1,
		     last);
	if (max_confirmed)
		*max_confirmed = confirmed;
	return dups;
}
