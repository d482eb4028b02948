/* Joining P2P payload chunks into one record, and giving up on a message
 * whose chunks did not all arrive. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "assemble.h"

static struct assembler asm_;

static void setup(void)
{
	assembler_init(&asm_);
}

static void teardown(void)
{
	assembler_free(&asm_);
}

TestSuite(assemble, .init = setup, .fini = teardown);

static uint8_t payload_byte(uint64_t i)
{
	return (uint8_t)((i * 2654435761u) >> 24);
}

static void message_record(struct record_header *h, uint32_t tid, uint64_t time_ns,
			   uint64_t size, uint16_t tp)
{
	memset(h, 0, sizeof(*h) + sizeof(struct ev_net_message));
	h->kind = RECORD_EVENT;
	h->tracepoint = tp;
	h->length = sizeof(*h) + sizeof(struct ev_net_message);
	h->time_ns = time_ns;
	h->pid = 100;
	h->tid = tid;
	struct ev_net_message *m = (void *)(h + 1);
	m->peer_id = 7;
	m->size = size;
	strcpy(m->msg_type, "block");
}

/* A chunk record as BPF writes it: reserved in a size class larger than
 * the data, the rest filled with junk that must not be copied. */
static enum assemble_status feed_chunk(uint32_t tid, uint64_t time_ns, uint16_t tp,
				       uint64_t offset, uint32_t len, uint32_t flags,
				       struct assemble_out *out)
{
	size_t size = sizeof(struct record_header) + sizeof(struct ev_chunk) + CHUNK_DATA_MAX;
	uint8_t *buf = malloc(size);
	memset(buf, 0xEE, size);
	struct record_header *h = (void *)buf;
	memset(h, 0, sizeof(*h));
	h->kind = RECORD_CHUNK;
	h->tracepoint = tp;
	h->time_ns = time_ns;
	h->tid = tid;
	h->flags = flags;
	h->length = (uint32_t)size;
	struct ev_chunk *c = (void *)(h + 1);
	c->offset = offset;
	c->data_len = len;
	for (uint32_t i = 0; i < len; i++)
		c->data[i] = payload_byte(offset + i);
	enum assemble_status st = assembler_feed(&asm_, buf, size, out);
	/* The assembler must have copied what it keeps. */
	memset(buf, 0xAA, size);
	free(buf);
	return st;
}

static void check_message(const struct assemble_out *out, uint64_t size, uint32_t tid)
{
	cr_assert_eq(out->length, sizeof(struct record_header) + sizeof(struct ev_net_message) + size);
	const struct record_header *h = out->record;
	cr_assert_eq(h->length, out->length);
	cr_assert_eq(h->tid, tid);
	const struct ev_net_message *m = (const void *)(h + 1);
	cr_assert_eq(m->size, size);
	cr_assert_str_eq(m->msg_type, "block");
	const uint8_t *payload = (const uint8_t *)(m + 1);
	for (uint64_t i = 0; i < size; i++)
		if (payload[i] != payload_byte(i))
			cr_assert_fail("payload byte %llu is %u, expected %u", (unsigned long long)i,
				       payload[i], payload_byte(i));
}

static void feed_whole(uint32_t tid, uint64_t time_ns, uint64_t size, struct assemble_out *out)
{
	/* static: a message without payload comes back as this very record. */
	static uint8_t rec[sizeof(struct record_header) + sizeof(struct ev_net_message)];
	message_record((void *)rec, tid, time_ns, size, TP_NET_INBOUND_MESSAGE);
	enum assemble_status st = assembler_feed(&asm_, rec, sizeof(rec), out);
	if (size == 0) {
		cr_assert_eq(st, ASSEMBLE_COMPLETE);
		return;
	}
	cr_assert_eq(st, ASSEMBLE_PENDING);
	for (uint64_t off = 0; off < size; off += CHUNK_DATA_MAX) {
		uint32_t len = size - off < CHUNK_DATA_MAX ? (uint32_t)(size - off) : CHUNK_DATA_MAX;
		st = feed_chunk(tid, time_ns, TP_NET_INBOUND_MESSAGE, off, len, 0, out);
		cr_assert_eq(st, off + len == size ? ASSEMBLE_COMPLETE : ASSEMBLE_PENDING,
			     "chunk at %llu", (unsigned long long)off);
	}
}

Test(assemble, every_size_boundary)
{
	const uint64_t sizes[] = { 0, 1, 255, 256, 4095, 4096, 32767, 32768, 32769, 65536,
				   1000000, 4000000 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct assemble_out out;
		feed_whole(42, 1000 + i, sizes[i], &out);
		check_message(&out, sizes[i], 42);
		cr_assert_eq(out.evicted, TP_NONE);
	}
	cr_assert_eq(assembler_pending(&asm_), 0);
}

Test(assemble, interleaved_threads)
{
	struct assemble_out out;
	uint8_t a[sizeof(struct record_header) + sizeof(struct ev_net_message)];
	uint8_t b[sizeof(a)];
	message_record((void *)a, 1, 10, 40000, TP_NET_INBOUND_MESSAGE);
	message_record((void *)b, 2, 11, 40000, TP_NET_OUTBOUND_MESSAGE);
	cr_assert_eq(assembler_feed(&asm_, a, sizeof(a), &out), ASSEMBLE_PENDING);
	cr_assert_eq(assembler_feed(&asm_, b, sizeof(b), &out), ASSEMBLE_PENDING);
	cr_assert_eq(feed_chunk(2, 11, TP_NET_OUTBOUND_MESSAGE, 0, CHUNK_DATA_MAX, 0, &out),
		     ASSEMBLE_PENDING);
	cr_assert_eq(feed_chunk(1, 10, TP_NET_INBOUND_MESSAGE, 0, CHUNK_DATA_MAX, 0, &out),
		     ASSEMBLE_PENDING);
	cr_assert_eq(feed_chunk(1, 10, TP_NET_INBOUND_MESSAGE, CHUNK_DATA_MAX,
				40000 - CHUNK_DATA_MAX, 0, &out),
		     ASSEMBLE_COMPLETE);
	check_message(&out, 40000, 1);
	cr_assert_eq(((const struct record_header *)out.record)->tracepoint, TP_NET_INBOUND_MESSAGE);
	cr_assert_eq(feed_chunk(2, 11, TP_NET_OUTBOUND_MESSAGE, CHUNK_DATA_MAX,
				40000 - CHUNK_DATA_MAX, 0, &out),
		     ASSEMBLE_COMPLETE);
	check_message(&out, 40000, 2);
}

Test(assemble, lost_chunk_discards_the_message_without_counting)
{
	struct assemble_out out;
	uint8_t a[sizeof(struct record_header) + sizeof(struct ev_net_message)];
	message_record((void *)a, 5, 20, 100000, TP_NET_INBOUND_MESSAGE);
	cr_assert_eq(assembler_feed(&asm_, a, sizeof(a), &out), ASSEMBLE_PENDING);
	cr_assert_eq(feed_chunk(5, 20, TP_NET_INBOUND_MESSAGE, 0, CHUNK_DATA_MAX, 0, &out),
		     ASSEMBLE_PENDING);
	/* BPF could not reserve the second chunk and counted the message;
	 * the thread's next message starts. */
	feed_whole(5, 21, 300, &out);
	check_message(&out, 300, 5);
	cr_assert_eq(out.evicted, TP_NONE);
	cr_assert_eq(assembler_pending(&asm_), 0);
}

Test(assemble, chunk_out_of_step_is_ignored)
{
	struct assemble_out out;
	uint8_t a[sizeof(struct record_header) + sizeof(struct ev_net_message)];
	message_record((void *)a, 6, 30, 70000, TP_NET_INBOUND_MESSAGE);
	cr_assert_eq(assembler_feed(&asm_, a, sizeof(a), &out), ASSEMBLE_PENDING);
	/* The first chunk is missing: the second cannot complete anything. */
	cr_assert_eq(feed_chunk(6, 30, TP_NET_INBOUND_MESSAGE, CHUNK_DATA_MAX, CHUNK_DATA_MAX, 0,
				&out),
		     ASSEMBLE_IGNORED);
	cr_assert_eq(assembler_pending(&asm_), 0);
	/* A chunk of another message time (stale) is ignored too. */
	cr_assert_eq(feed_chunk(6, 29, TP_NET_INBOUND_MESSAGE, 0, 10, 0, &out), ASSEMBLE_IGNORED);
}

Test(assemble, read_failure_flag_reaches_the_message)
{
	struct assemble_out out;
	uint8_t a[sizeof(struct record_header) + sizeof(struct ev_net_message)];
	message_record((void *)a, 8, 40, 100, TP_NET_INBOUND_MESSAGE);
	cr_assert_eq(assembler_feed(&asm_, a, sizeof(a), &out), ASSEMBLE_PENDING);
	cr_assert_eq(feed_chunk(8, 40, TP_NET_INBOUND_MESSAGE, 0, 100, RECORD_FLAG_READ_FAILED(5),
				&out),
		     ASSEMBLE_COMPLETE);
	cr_assert_eq(((const struct record_header *)out.record)->flags, RECORD_FLAG_READ_FAILED(5));
}

Test(assemble, full_table_evicts_the_oldest_and_says_so)
{
	struct assemble_out out;
	uint8_t a[sizeof(struct record_header) + sizeof(struct ev_net_message)];
	for (uint32_t tid = 1; tid <= ASSEMBLY_SLOTS; tid++) {
		message_record((void *)a, tid, tid, 50000,
			       tid == 1 ? TP_NET_OUTBOUND_MESSAGE : TP_NET_INBOUND_MESSAGE);
		cr_assert_eq(assembler_feed(&asm_, a, sizeof(a), &out), ASSEMBLE_PENDING);
		cr_assert_eq(out.evicted, TP_NONE);
	}
	message_record((void *)a, 1000, 1000, 50000, TP_NET_INBOUND_MESSAGE);
	cr_assert_eq(assembler_feed(&asm_, a, sizeof(a), &out), ASSEMBLE_PENDING);
	cr_assert_eq(out.evicted, TP_NET_OUTBOUND_MESSAGE);
	cr_assert_eq(assembler_pending(&asm_), ASSEMBLY_SLOTS);
}

Test(assemble, truncated_records_are_ignored)
{
	struct assemble_out out;
	uint8_t small[16] = { 0 };
	cr_assert_eq(assembler_feed(&asm_, small, sizeof(small), &out), ASSEMBLE_IGNORED);
	uint8_t a[sizeof(struct record_header) + sizeof(struct ev_net_message)];
	message_record((void *)a, 9, 50, 10, TP_NET_INBOUND_MESSAGE);
	cr_assert_eq(assembler_feed(&asm_, a, sizeof(struct record_header) + 8, &out),
		     ASSEMBLE_IGNORED);
}
