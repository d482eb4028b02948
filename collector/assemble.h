/* Joins the chunk records of a P2P message into one record.
 *
 * The BPF program writes a message record (struct ev_net_message) and then
 * the payload in chunk records, in order, from the same thread. A thread
 * runs one probe at a time and the ring keeps reservation order, so the
 * thread id names the message being assembled. When BPF fails to reserve a
 * chunk it counts the message as lost and stops; the partial message is
 * then discarded here without being counted again.
 */
#ifndef EBPF_COLLECTOR_ASSEMBLE_H
#define EBPF_COLLECTOR_ASSEMBLE_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"

/* More threads than bitcoind has sending or receiving at once. */
#define ASSEMBLY_SLOTS 64

struct assembly_slot {
	uint8_t *buf; /* header + ev_net_message + payload */
	size_t cap;
	uint64_t filled; /* payload bytes received */
	uint64_t size;   /* payload bytes expected */
	uint64_t last_use;
	uint32_t tid;
	int active;
};

struct assembler {
	struct assembly_slot slots[ASSEMBLY_SLOTS];
	uint64_t clock;
	struct assembly_slot *finished; /* returned last call; trimmed next call */
	/* The slot used last: a message's chunks follow it (a lookup without
	 * the scan), and once complete it is the free slot to take next. */
	struct assembly_slot *last;
	unsigned in_progress; /* active slots */
};

enum assemble_status {
	ASSEMBLE_PENDING,  /* waiting for more chunks */
	ASSEMBLE_COMPLETE, /* *record / *length hold the whole message */
	ASSEMBLE_IGNORED,  /* a chunk of no message in progress, or malformed */
	ASSEMBLE_NO_MEMORY,
};

struct assemble_out {
	const void *record; /* valid until the next call */
	size_t length;
	/* A message in progress was pushed out to make room (all slots busy):
	 * its tracepoint, for the caller to count as incomplete; else TP_NONE. */
	enum tracepoint_id evicted;
};

void assembler_init(struct assembler *a);
void assembler_free(struct assembler *a);

/* Feeds one P2P message record or chunk record from the ring. */
enum assemble_status assembler_feed(struct assembler *a, const void *data, size_t size,
				    struct assemble_out *out);

/* Messages in progress (for the shutdown report). */
unsigned assembler_pending(const struct assembler *a);

#endif
