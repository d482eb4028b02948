/* Constants the BPF program (bpf/extractor.bpf.c) and user space share,
 * beyond the record layout of record.h.
 *
 * Included by clang -target bpf and by user space: only macros, enums and
 * static inline functions on __u32/__u64, no libc.
 */
#ifndef EBPF_EXTRACTOR_BPF_SHARED_H
#define EBPF_EXTRACTOR_BPF_SHARED_H

#include <linux/types.h>
#include "record.h"
#include "tracepoints.h"

/* ---- loss counters ----
 *
 * The BPF program counts a failed ring reservation in the .bss global
 *
 *     __u64 drop_counts[DROP_SLOTS][TP_COUNT];
 *
 * row = bpf_get_smp_processor_id() & (DROP_SLOTS - 1), column = tracepoint id,
 * incremented atomically. User space reads it through the skeleton's
 * mmapped .bss (skel->bss->drop_counts) without a syscall and sums the rows;
 * each cell only grows (64-bit, wraps after centuries), so the collector
 * keeps the previous sum per tracepoint and reports the difference. One
 * increment is one lost event: for a P2P message, whether the message
 * record or any of its chunks could not be reserved.
 * A power of two; more CPUs than slots just share rows (the add is atomic).
 *
 * Drop stamp: the program also counts each drop in the .bss global
 * __u64 drop_seq[TP_COUNT] (all CPUs in one cell, after drop_counts) and
 * writes its low 32 bits for the event's tracepoint into header.reserved
 * of every event record it reserves (not chunks). The collector compares
 * it with the drops it has accounted: a stamp ahead of them means events of
 * that tracepoint were lost before this one, so their loss record goes into
 * the queue before this event, not after the batch. Drops after the last
 * event of a batch are found from drop_counts. The queue gets reserved = 0. */
#define DROP_SLOTS 256u

/* ---- pid filter ----
 *
 * .bss global __u32 filter_tgid: 0 = every process, else only events whose
 * tgid (as seen from the initial pid namespace) equals it. Written at run
 * time through skel->bss->filter_tgid. */

/* ---- ring buffers ----
 *
 * One BPF_MAP_TYPE_RINGBUF per enum tracepoint_group, named
 * RING_MAP_NAME_<group> below; default max_entries = RING_PAGES_* * RING_PAGE_SIZE
 * (tracepoints.h). The collector sets the real size with
 * bpf_map__set_max_entries() before load (a power-of-two multiple of the
 * page size). */
#define RING_PAGE_SIZE 4096u
#define RING_MAP_NAME_P2PMSG "ring_p2pmsg"
#define RING_MAP_NAME_CONNECTION "ring_connection"
#define RING_MAP_NAME_MEMPOOL "ring_mempool"
#define RING_MAP_NAME_VALIDATION "ring_validation"
#define RING_MAP_NAME_UTXOCACHE "ring_utxocache"
#define RING_MAP_NAME_COIN_SELECTION "ring_coin_selection"

/* ---- P2P payload chunks ----
 *
 * A message record (struct ev_net_message, flags may carry
 * RECORD_FLAG_TRUNCATED(5) when size > P2P_PAYLOAD_MAX) is followed in the
 * ring, from the same tid, by p2p_chunk_count(size) chunk records in
 * offset order: chunk i has offset i * CHUNK_DATA_MAX and data_len
 * min(CHUNK_DATA_MAX, captured - offset), where captured =
 * p2p_captured_size(size). A size of 0 means no chunk.
 *
 * Each chunk is reserved with a data part of a power-of-two size class, the
 * smallest that holds data_len:
 *
 *     class k (0..CHUNK_CLASS_COUNT-1) = CHUNK_CLASS_MIN << k
 *     = 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768 bytes
 *
 * so header.length of a chunk record = CHUNK_RECORD_SIZE(class). Only the
 * first data_len bytes of data[] are payload; the bytes after them up to
 * the class size are whatever the ring held before (earlier records of the
 * same ring, never kernel memory: ring pages are zeroed when allocated) and
 * must be ignored. A chunk whose read failed has
 * RECORD_FLAG_READ_FAILED(5) in its header.flags and data_len zero bytes.
 */
#define CHUNK_CLASS_MIN_SHIFT 6u
#define CHUNK_CLASS_MIN (1u << CHUNK_CLASS_MIN_SHIFT) /* 64 */
#define CHUNK_CLASS_COUNT 10u
#define CHUNK_CLASS_SIZE(k) (CHUNK_CLASS_MIN << (k))
#define CHUNK_RECORD_SIZE(class_size) \
	((__u32)(sizeof(struct record_header) + sizeof(struct ev_chunk) + (class_size)))

_Static_assert(CHUNK_CLASS_SIZE(CHUNK_CLASS_COUNT - 1) == CHUNK_DATA_MAX,
	       "the largest chunk class is CHUNK_DATA_MAX");
_Static_assert((CHUNK_DATA_MAX & (CHUNK_DATA_MAX - 1)) == 0, "CHUNK_DATA_MAX is a power of two");
_Static_assert((DROP_SLOTS & (DROP_SLOTS - 1)) == 0, "DROP_SLOTS is a power of two");

/* Payload bytes the BPF program captures of a message of the given size. */
static inline __u64 p2p_captured_size(__u64 size)
{
	return size < P2P_PAYLOAD_MAX ? size : P2P_PAYLOAD_MAX;
}

/* Chunk records that follow a message record of the given size. */
static inline __u32 p2p_chunk_count(__u64 size)
{
	return (__u32)((p2p_captured_size(size) + CHUNK_DATA_MAX - 1) / CHUNK_DATA_MAX);
}

/* Size class (data part, bytes) the BPF program reserves for a chunk of
 * data_len bytes (1..CHUNK_DATA_MAX; 0 gets the smallest class). */
static inline __u32 chunk_class_size(__u32 data_len)
{
	__u32 c = CHUNK_CLASS_MIN;

	while (c < data_len && c < CHUNK_DATA_MAX)
		c <<= 1;
	return c;
}

/* ---- fetch plans ----
 *
 * How a tracepoint's arguments are read when every probe site of it has the
 * same USDT argument spec (Bitcoin Core has one site per tracepoint). The
 * collector builds one plan per tracepoint from the notes
 * (collector/fetch_plan.c) and puts it in the .rodata global
 *
 *     const volatile struct fetch_plan fetch_plans[TP_COUNT];
 *
 * before load. The verifier reads frozen .rodata as constants, so a planned
 * argument compiles down to one register load or one user-memory read,
 * without the spec map lookup, the cookie and the per-argument branches of
 * the generic path (bpf_usdt_arg's). Memory arguments based on the same
 * register within FETCH_WINDOW_MAX bytes of each other (P2P messages: four
 * stack slots of the caller) are read with one bpf_probe_read_user of the
 * whole window into a per-CPU scratch buffer: one helper call, not four.
 *
 * valid == 0: no plan (sites with different specs, or none): the program
 * uses the spec map. The .bss global __u32 plan_off[TP_COUNT], when
 * non-zero, makes the program ignore a valid plan: the collector sets it
 * before it attaches a binary whose specs differ from the loaded plans
 * (an upgrade), since .rodata cannot change after load. */
#define FETCH_MAX_ARGS 8u
#define FETCH_WINDOW_COUNT 2u
#define FETCH_WINDOW_MAX 1024u

enum fetch_kind {
	FETCH_CONST = 1,  /* val_off is the value */
	FETCH_REG = 2,    /* the register at reg_off */
	FETCH_DEREF = 3,  /* 8 bytes at register + val_off */
	FETCH_WINDOW = 4, /* the same, from window `window`, at win_off in the scratch */
};

struct fetch_arg {
	__u64 val_off;  /* as struct usdt_arg_spec: constant or offset */
	__s16 reg_off;  /* offsetof(struct pt_regs, register) */
	__u16 win_off;  /* FETCH_WINDOW: window * FETCH_WINDOW_MAX + offset in it */
	__u8 kind;      /* enum fetch_kind; 0 past the last argument */
	__u8 window;
	__u8 is_signed;
	__u8 bitshift;  /* 64 - 8 * size */
};

struct fetch_window {
	__u64 off;      /* from the register, two's complement */
	__s16 reg_off;
	__u16 len;      /* 16 .. FETCH_WINDOW_MAX bytes */
	__u32 reserved;
};

struct fetch_plan {
	__u8 valid;
	__u8 arg_count;
	__u8 window_count;
	__u8 reserved[5];
	struct fetch_window windows[FETCH_WINDOW_COUNT];
	struct fetch_arg args[FETCH_MAX_ARGS];
};

_Static_assert(sizeof(struct fetch_arg) == 16, "fetch_arg layout");
_Static_assert(sizeof(struct fetch_plan) == 8 + 16 * FETCH_WINDOW_COUNT + 16 * FETCH_MAX_ARGS,
	       "fetch_plan layout");
_Static_assert(FETCH_WINDOW_COUNT * FETCH_WINDOW_MAX <= 65535, "win_off fits in 16 bits");

#endif
