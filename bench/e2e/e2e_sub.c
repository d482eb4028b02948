/* e2e-sub: the end-to-end benchmark's NATS subscriber (bench/e2e/run.sh).
 *
 * Subscribes to SUBJECT (default ">") and, for every message, reads only the
 * first keys of the MessagePack map (stream_id, seq, time_ns) to check that
 * seq is contiguous per stream_id. It counts events (every subject except
 * *.extractor.*), messages and bytes, and the messages the NATS client
 * dropped as a slow consumer. Much cheaper per message than ebpf-sub's JSON.
 *
 *   e2e-sub --url nats://127.0.0.1:PORT --status FILE [--subject S]
 *
 * Every 100 ms, and once more on SIGTERM/SIGINT before it exits, it writes
 * one line of key=value pairs to FILE (atomically, via FILE.tmp):
 *   events msgs bytes streams first_seq last_seq gaps missing dups dropped
 *   first_time_ns (time_ns of the first event) first_recv_ns last_recv_ns
 *   (CLOCK_REALTIME when the first and the last event arrived), bad
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#define MAX_STREAMS 16

struct stream {
	uint64_t id, first_seq, next_seq, gaps, missing, dups;
};

static struct {
	pthread_mutex_t lock;
	struct stream streams[MAX_STREAMS];
	int nstreams;
	uint64_t events, msgs, bytes, bad, first_time_ns, first_recv_ns, last_recv_ns;
} st = { .lock = PTHREAD_MUTEX_INITIALIZER };

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t realtime_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* MessagePack reading: just what the first keys of a map need. */
struct rd {
	const uint8_t *p, *end;
};

static bool rd_be(struct rd *r, int n, uint64_t *v)
{
	if (r->end - r->p < n)
		return false;
	*v = 0;
	for (int i = 0; i < n; i++)
		*v = (*v << 8) | r->p[i];
	r->p += n;
	return true;
}

static bool rd_map(struct rd *r, uint64_t *n)
{
	if (r->p >= r->end)
		return false;
	uint8_t b = *r->p++;
	if ((b & 0xf0) == 0x80) {
		*n = b & 0x0f;
		return true;
	}
	if (b == 0xde)
		return rd_be(r, 2, n);
	if (b == 0xdf)
		return rd_be(r, 4, n);
	return false;
}

static bool rd_str(struct rd *r, const uint8_t **s, uint64_t *len)
{
	if (r->p >= r->end)
		return false;
	uint8_t b = *r->p++;
	if ((b & 0xe0) == 0xa0)
		*len = b & 0x1f;
	else if (b == 0xd9 || b == 0xda || b == 0xdb) {
		if (!rd_be(r, b == 0xd9 ? 1 : b == 0xda ? 2 : 4, len))
			return false;
	} else
		return false;
	if ((uint64_t)(r->end - r->p) < *len)
		return false;
	*s = r->p;
	r->p += *len;
	return true;
}

static bool rd_uint(struct rd *r, uint64_t *v)
{
	if (r->p >= r->end)
		return false;
	uint8_t b = *r->p++;
	if (b < 0x80) {
		*v = b;
		return true;
	}
	switch (b) {
	case 0xcc: return rd_be(r, 1, v);
	case 0xcd: return rd_be(r, 2, v);
	case 0xce: return rd_be(r, 4, v);
	case 0xcf: return rd_be(r, 8, v);
	default: return false;
	}
}

static bool key_is(const uint8_t *s, uint64_t len, const char *k)
{
	return len == strlen(k) && memcmp(s, k, len) == 0;
}

/* stream_id, seq, time_ns: the first three keys of every queue record. */
static bool parse_head(const char *data, int len, uint64_t *sid, uint64_t *seq, uint64_t *time_ns)
{
	struct rd r = { (const uint8_t *)data, (const uint8_t *)data + len };
	uint64_t n, klen;
	const uint8_t *k;

	if (!rd_map(&r, &n) || n < 3)
		return false;
	if (!rd_str(&r, &k, &klen) || !key_is(k, klen, "stream_id") || !rd_uint(&r, sid))
		return false;
	if (!rd_str(&r, &k, &klen) || !key_is(k, klen, "seq") || !rd_uint(&r, seq))
		return false;
	if (!rd_str(&r, &k, &klen) || !key_is(k, klen, "time_ns") || !rd_uint(&r, time_ns))
		return false;
	return true;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	const char *subject = natsMsg_GetSubject(msg);
	int len = natsMsg_GetDataLength(msg);
	uint64_t now = realtime_ns(), sid, seq, tns;
	bool is_event = strstr(subject, ".extractor.") == NULL;

	(void)nc, (void)sub, (void)closure;
	pthread_mutex_lock(&st.lock);
	st.msgs++;
	st.bytes += (uint64_t)len;
	if (has_suffix(subject, ".extractor.publisher_stats")) {
		/* not a queue record: no seq */
	} else if (!parse_head(natsMsg_GetData(msg), len, &sid, &seq, &tns)) {
		st.bad++;
	} else {
		struct stream *s = NULL;

		for (int i = 0; i < st.nstreams; i++)
			if (st.streams[i].id == sid)
				s = &st.streams[i];
		if (!s && st.nstreams < MAX_STREAMS) {
			s = &st.streams[st.nstreams++];
			s->id = sid;
			s->first_seq = seq;
			s->next_seq = seq;
		}
		if (s) {
			if (seq == s->next_seq) {
				s->next_seq++;
			} else if (seq > s->next_seq) {
				s->gaps++;
				s->missing += seq - s->next_seq;
				s->next_seq = seq + 1;
			} else {
				s->dups++;
			}
		} else {
			st.bad++;
		}
		if (is_event) {
			if (st.events == 0) {
				st.first_time_ns = tns;
				st.first_recv_ns = now;
			}
			st.events++;
			st.last_recv_ns = now;
		}
	}
	pthread_mutex_unlock(&st.lock);
	natsMsg_Destroy(msg);
}

static void write_status(const char *path, natsSubscription *sub)
{
	char tmp[4096];
	int64_t dropped = 0;
	uint64_t first = 0, last = 0, gaps = 0, missing = 0, dups = 0;
	FILE *f;

	natsSubscription_GetDropped(sub, &dropped);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (!(f = fopen(tmp, "w"))) {
		perror(tmp);
		return;
	}
	pthread_mutex_lock(&st.lock);
	for (int i = 0; i < st.nstreams; i++) {
		struct stream *s = &st.streams[i];
		gaps += s->gaps;
		missing += s->missing;
		dups += s->dups;
	}
	if (st.nstreams) {
		first = st.streams[0].first_seq;
		last = st.streams[0].next_seq - 1;
	}
	fprintf(f,
		"events=%" PRIu64 " msgs=%" PRIu64 " bytes=%" PRIu64 " streams=%d first_seq=%" PRIu64
		" last_seq=%" PRIu64 " gaps=%" PRIu64 " missing=%" PRIu64 " dups=%" PRIu64
		" dropped=%" PRId64 " bad=%" PRIu64 " first_time_ns=%" PRIu64 " first_recv_ns=%" PRIu64
		" last_recv_ns=%" PRIu64 "\n",
		st.events, st.msgs, st.bytes, st.nstreams, first, last, gaps, missing, dups, dropped,
		st.bad, st.first_time_ns, st.first_recv_ns, st.last_recv_ns);
	pthread_mutex_unlock(&st.lock);
	if (fclose(f) == 0)
		rename(tmp, path);
}

int main(int argc, char **argv)
{
	const char *url = "nats://127.0.0.1:4222", *status = NULL, *subject = ">";
	natsConnection *nc = NULL;
	natsSubscription *sub = NULL;
	natsOptions *opts = NULL;
	natsStatus s;
	struct sigaction sa = { .sa_handler = on_signal };

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--url") && i + 1 < argc)
			url = argv[++i];
		else if (!strcmp(argv[i], "--status") && i + 1 < argc)
			status = argv[++i];
		else if (!strcmp(argv[i], "--subject") && i + 1 < argc)
			subject = argv[++i];
		else {
			fprintf(stderr, "usage: e2e-sub --url URL --status FILE [--subject S]\n");
			return 2;
		}
	}
	if (!status) {
		fprintf(stderr, "e2e-sub: --status FILE is required\n");
		return 2;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	s = natsOptions_Create(&opts);
	if (s == NATS_OK)
		s = natsOptions_SetURL(opts, url);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(opts, -1);
	if (s == NATS_OK)
		s = natsOptions_SetIOBufSize(opts, 1 << 20);
	if (s == NATS_OK)
		s = natsConnection_Connect(&nc, opts);
	if (s == NATS_OK)
		s = natsConnection_Subscribe(&sub, nc, subject, on_msg, NULL);
	if (s == NATS_OK) /* never drop as a slow consumer: hold everything */
		s = natsSubscription_SetPendingLimits(sub, -1, -1);
	if (s == NATS_OK)
		s = natsConnection_Flush(nc);
	if (s != NATS_OK) {
		fprintf(stderr, "e2e-sub: %s: %s\n", url, natsStatus_GetText(s));
		return 1;
	}
	while (!stop) {
		write_status(status, sub);
		usleep(100000);
	}
	write_status(status, sub);
	natsSubscription_Destroy(sub);
	natsConnection_Destroy(nc);
	natsOptions_Destroy(opts);
	return 0;
}
