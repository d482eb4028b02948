/* e2e-fill: fills a queue with events, as the collector would, for the
 * publisher-only drain benchmark (bench/e2e/drain.sh).
 *
 * Writes one extractor:started record, then COUNT events: mempool:added
 * (SIZE 0) or net:inbound_message with a SIZE-byte payload and the tracee's
 * load strings (msg_type "loadtest": not decoded, like the e2e bench's P2P
 * load), then exits. The queue stays; the publisher starts at its first
 * record.
 *
 *   e2e-fill --queue DIR --count N [--size BYTES] [--capacity BYTES]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event_fields.h"
#include "queue.h"
#include "record.h"

static uint64_t unix_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* The record's header; the body is zeroed by the caller. */
static void put_header(uint8_t *rec, uint16_t kind, uint16_t tp, uint32_t length)
{
	struct record_header h = { .kind = kind, .tracepoint = tp, .length = length,
				   .time_ns = unix_ns(), .pid = 4242, .tid = 4243 };
	if (kind != RECORD_EVENT)
		h.pid = h.tid = 0;
	memcpy(rec, &h, sizeof(h));
}

static int write_started(struct queue_producer *q)
{
	uint32_t len = (uint32_t)(sizeof(struct record_header) + sizeof(struct rec_started));
	uint8_t *rec = queue_reserve(q, len);
	if (!rec)
		return -1;
	memset(rec, 0, len);
	put_header(rec, RECORD_STARTED, TP_NONE, len);
	struct rec_started *s = (struct rec_started *)(rec + sizeof(struct record_header));
	snprintf(s->version, sizeof(s->version), "e2e-fill");
	s->attach_mode = ATTACH_MULTI;
	return queue_commit(q, len) ? 0 : -1;
}

static void fill_added(uint8_t *body, uint64_t k)
{
	struct ev_mempool_added *a = (struct ev_mempool_added *)body;
	memcpy(a->txid, &k, sizeof(k));
	a->txid[31] = 0xab;
	a->fee = (int64_t)(1000 + k % 5000);
	a->vsize = (int32_t)(141 + k % 400);
}

static void fill_message(uint8_t *body, uint32_t payload, uint64_t k)
{
	struct ev_net_message *m = (struct ev_net_message *)body;
	m->peer_id = (int64_t)(k % 8);
	m->size = payload;
	snprintf(m->addr, sizeof(m->addr), "127.0.0.1:18444");
	snprintf(m->conn_type, sizeof(m->conn_type), "inbound");
	snprintf(m->msg_type, sizeof(m->msg_type), "loadtest");
	memset(body + sizeof(*m), (int)(k & 0xff), payload);
}

int main(int argc, char **argv)
{
	const char *dir = NULL;
	long long count = 0, size = 0, capacity = 1ll << 30;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--queue"))
			dir = argv[i + 1];
		else if (!strcmp(argv[i], "--count"))
			count = atoll(argv[i + 1]);
		else if (!strcmp(argv[i], "--size"))
			size = atoll(argv[i + 1]);
		else if (!strcmp(argv[i], "--capacity"))
			capacity = atoll(argv[i + 1]);
	}
	if (!dir || count <= 0 || size < 0 || size > P2P_PAYLOAD_MAX) {
		fprintf(stderr, "usage: e2e-fill --queue DIR --count N [--size BYTES (0: "
				"mempool:added)] [--capacity BYTES]\n");
		return 2;
	}
	char err[QUEUE_ERROR_LEN];
	struct queue_producer_options o = { .dir = dir, .capacity = (uint64_t)capacity,
					    .group = (gid_t)-1 };
	struct queue_producer *q = queue_producer_open(&o, err);
	if (!q) {
		fprintf(stderr, "e2e-fill: %s\n", err);
		return 1;
	}
	enum tracepoint_id tp = size ? TP_NET_INBOUND_MESSAGE : TP_MEMPOOL_ADDED;
	uint32_t len = (uint32_t)(sizeof(struct record_header) + event_layouts[tp].body_size +
				  (uint64_t)size);
	int rc = write_started(q);
	for (long long k = 1; rc == 0 && k <= count; k++) {
		uint8_t *rec = queue_reserve(q, len);
		if (!rec) {
			fprintf(stderr, "e2e-fill: the queue %s is full after %lld events (raise "
					"--capacity)\n", dir, k - 1);
			rc = -1;
			break;
		}
		memset(rec, 0, len);
		put_header(rec, RECORD_EVENT, (uint16_t)tp, len);
		uint8_t *body = rec + sizeof(struct record_header);
		if (size)
			fill_message(body, (uint32_t)size, (uint64_t)k);
		else
			fill_added(body, (uint64_t)k);
		if (!queue_commit(q, len))
			rc = -1;
	}
	queue_notify(q);
	queue_producer_close(q);
	return rc == 0 ? 0 : 1;
}
