#include "assemble.h"

#include <stdlib.h>
#include <string.h>

#define MESSAGE_PREFIX (sizeof(struct record_header) + sizeof(struct ev_net_message))
/* Buffers above this are freed after use: blocks are rare, pings are not. */
#define KEEP_BUFFER_BYTES (1u << 20)

void assembler_init(struct assembler *a)
{
	memset(a, 0, sizeof(*a));
}

void assembler_free(struct assembler *a)
{
	for (int i = 0; i < ASSEMBLY_SLOTS; i++)
		free(a->slots[i].buf);
	memset(a, 0, sizeof(*a));
}

unsigned assembler_pending(const struct assembler *a)
{
	return a->in_progress;
}

/* Every change of a slot's active flag goes through here (the count
 * spares the scans below when nothing is in progress, the common case). */
static void slot_set_active(struct assembler *a, struct assembly_slot *s, int active)
{
	a->in_progress += (unsigned)active - (unsigned)s->active;
	s->active = active;
}

static struct assembly_slot *slot_of_tid(struct assembler *a, uint32_t tid)
{
	if (a->last && a->last->active && a->last->tid == tid)
		return a->last;
	if (a->in_progress == 0)
		return NULL;
	for (int i = 0; i < ASSEMBLY_SLOTS; i++)
		if (a->slots[i].active && a->slots[i].tid == tid)
			return &a->slots[i];
	return NULL;
}

/* A free slot, or the least recently used one (whose message is lost). */
static struct assembly_slot *slot_take(struct assembler *a, enum tracepoint_id *evicted)
{
	if (a->last && !a->last->active)
		return a->last;
	struct assembly_slot *oldest = &a->slots[0];
	for (int i = 0; i < ASSEMBLY_SLOTS; i++) {
		if (!a->slots[i].active)
			return &a->slots[i];
		if (a->slots[i].last_use < oldest->last_use)
			oldest = &a->slots[i];
	}
	*evicted = ((const struct record_header *)oldest->buf)->tracepoint;
	slot_set_active(a, oldest, 0);
	return oldest;
}

/* The buffer of the message returned last time is no longer in use. */
static void trim_finished(struct assembler *a)
{
	struct assembly_slot *s = a->finished;
	a->finished = NULL;
	if (s && !s->active && s->cap > KEEP_BUFFER_BYTES) {
		free(s->buf);
		s->buf = NULL;
		s->cap = 0;
	}
}

static enum assemble_status begin_message(struct assembler *a, const void *data, size_t size,
					  struct assemble_out *out)
{
	const struct record_header *h = data;
	const struct ev_net_message *m = (const void *)(h + 1);
	if (size < MESSAGE_PREFIX)
		return ASSEMBLE_IGNORED;

	/* A message of this thread still in progress lost a chunk in BPF,
	 * which counted it; start over. */
	struct assembly_slot *s = slot_of_tid(a, h->tid);
	if (s)
		slot_set_active(a, s, 0);

	uint64_t payload = m->size < P2P_PAYLOAD_MAX ? m->size : P2P_PAYLOAD_MAX;
	if (payload == 0) {
		out->record = data;
		out->length = MESSAGE_PREFIX;
		return ASSEMBLE_COMPLETE;
	}

	s = slot_take(a, &out->evicted);
	size_t need = MESSAGE_PREFIX + payload;
	if (s->cap < need) {
		uint8_t *buf = realloc(s->buf, need);
		if (!buf)
			return ASSEMBLE_NO_MEMORY;
		s->buf = buf;
		s->cap = need;
	}
	memcpy(s->buf, data, MESSAGE_PREFIX);
	((struct record_header *)s->buf)->length = (uint32_t)need;
	s->tid = h->tid;
	s->size = payload;
	s->filled = 0;
	s->last_use = ++a->clock;
	slot_set_active(a, s, 1);
	a->last = s;
	return ASSEMBLE_PENDING;
}

static enum assemble_status add_chunk(struct assembler *a, const void *data, size_t size,
				      struct assemble_out *out)
{
	const struct record_header *h = data;
	const struct ev_chunk *c = (const void *)(h + 1);
	if (size < sizeof(*h) + sizeof(*c) || c->data_len > size - sizeof(*h) - sizeof(*c))
		return ASSEMBLE_IGNORED;

	struct assembly_slot *s = slot_of_tid(a, h->tid);
	if (!s)
		return ASSEMBLE_IGNORED;
	struct record_header *mh = (struct record_header *)s->buf;
	if (mh->tracepoint != h->tracepoint || mh->time_ns != h->time_ns ||
	    c->offset != s->filled || c->data_len > s->size - s->filled) {
		slot_set_active(a, s, 0); /* out of step: BPF lost a piece */
		return ASSEMBLE_IGNORED;
	}
	memcpy(s->buf + MESSAGE_PREFIX + s->filled, c->data, c->data_len);
	s->filled += c->data_len;
	mh->flags |= h->flags;
	s->last_use = ++a->clock;
	a->last = s;
	if (s->filled < s->size)
		return ASSEMBLE_PENDING;

	out->record = s->buf;
	out->length = mh->length;
	slot_set_active(a, s, 0);
	a->finished = s;
	return ASSEMBLE_COMPLETE;
}

enum assemble_status assembler_feed(struct assembler *a, const void *data, size_t size,
				    struct assemble_out *out)
{
	out->record = NULL;
	out->length = 0;
	out->evicted = TP_NONE;
	trim_finished(a);
	if (size < sizeof(struct record_header))
		return ASSEMBLE_IGNORED;
	const struct record_header *h = data;
	if (h->kind == RECORD_CHUNK)
		return add_chunk(a, data, size, out);
	return begin_message(a, data, size, out);
}
