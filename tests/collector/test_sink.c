/* collector/sink.c: what an event record becomes in the queue. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue.h"
#include "record.h"
#include "sink.h"

static char dir[64];
static struct queue_producer *producer;
static struct queue_consumer *consumer;
static struct sink sink;

static void setup(void)
{
	char err[QUEUE_ERROR_LEN];
	strcpy(dir, "/dev/shm/test-sink.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	struct queue_producer_options o = { .dir = dir, .capacity = 1 << 16, .group = (gid_t)-1 };
	producer = queue_producer_open(&o, err);
	cr_assert_not_null(producer, "%s", err);
	consumer = queue_consumer_open(dir, NULL, err);
	cr_assert_not_null(consumer, "%s", err);
	sink_init(&sink, producer);
}

static void teardown(void)
{
	queue_consumer_close(consumer);
	queue_producer_close(producer);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(sink, .init = setup, .fini = teardown);

/* The next record of the given kind (skips the started record). */
static const struct record_header *next_of_kind(uint16_t kind)
{
	struct queue_record rec;
	char err[QUEUE_ERROR_LEN];
	for (;;) {
		cr_assert_eq(queue_read(consumer, &rec, err), 1, "no record of kind %u", kind);
		const struct record_header *h = rec.data;
		if (h->kind == kind)
			return h;
	}
}

/* BPF leaves a short string's buffer tail as the ring had it (bytes of an
 * earlier record): the queue must carry zeros there, and everything else
 * exactly as BPF wrote it. */
Test(sink, bytes_after_a_string_are_zero_in_the_queue)
{
	struct {
		struct record_header h;
		struct ev_mempool_removed b;
	} r;
	memset(&r, 0xAB, sizeof(r)); /* what an earlier record left in the ring */
	r.h = (struct record_header){ .kind = RECORD_EVENT, .tracepoint = TP_MEMPOOL_REMOVED,
				      .length = sizeof(r), .time_ns = 1000, .pid = 7, .tid = 8,
				      .reserved = 3 };
	memset(r.b.txid, 0x11, sizeof(r.b.txid));
	memcpy(r.b.reason, "expiry", 7);
	r.b.vsize = 250;
	r.b.fee = 1234;
	r.b.entry_time = 99;
	r.b.reserved = 0;

	sink_event(&sink, &r, sizeof(r));

	const struct record_header *h = next_of_kind(RECORD_EVENT);
	cr_assert_eq(h->length, sizeof(r));
	cr_assert_eq(h->reserved, 0, "the drop stamp is not for the queue");
	const struct ev_mempool_removed *b = (const void *)(h + 1);
	cr_assert_str_eq(b->reason, "expiry");
	for (size_t i = 7; i < sizeof(b->reason); i++)
		cr_assert_eq(b->reason[i], 0, "reason[%zu] = 0x%02x: a ring byte reached the queue",
			     i, (unsigned char)b->reason[i]);
	for (size_t i = 0; i < sizeof(b->txid); i++)
		cr_assert_eq(b->txid[i], 0x11);
	cr_assert_eq(b->vsize, 250);
	cr_assert_eq(b->fee, 1234);
	cr_assert_eq(b->entry_time, 99);
}

/* A full-length string (its NUL in the last byte) is left whole. */
Test(sink, a_string_that_fills_its_buffer_is_left_whole)
{
	struct {
		struct record_header h;
		struct ev_net_misbehaving b;
	} r;
	memset(&r, 0, sizeof(r));
	r.h = (struct record_header){ .kind = RECORD_EVENT,
				      .tracepoint = TP_NET_MISBEHAVING_CONNECTION,
				      .length = sizeof(r) };
	memset(r.b.message, 'm', sizeof(r.b.message) - 1);
	r.b.peer_id = 5;

	sink_event(&sink, &r, sizeof(r));

	const struct ev_net_misbehaving *b = (const void *)(next_of_kind(RECORD_EVENT) + 1);
	cr_assert_eq(strlen(b->message), sizeof(b->message) - 1);
	cr_assert_eq(b->peer_id, 5);
}
