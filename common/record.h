/* The record layout: one header for everything the BPF program, the
 * collector and the publisher exchange.
 *
 * A record is a record_header followed by a body. The BPF program writes
 * event records (and chunk records for P2P payloads) into ring buffers; the
 * collector joins chunks, turns the BPF boot-time clock into unix time and
 * writes one record per event into the shared-memory queue, next to its own
 * loss, stats and started records. The queue adds only framing and the
 * sequence number (common/queue.h); the bytes after the frame are exactly
 * what is described here.
 *
 * Every struct has explicit padding and a size fixed by _Static_assert, so
 * the BPF target and x86_64 user space agree byte for byte. Strings are
 * NUL-terminated inside their buffer; the rest of the buffer is zero.
 */
#ifndef EBPF_EXTRACTOR_RECORD_H
#define EBPF_EXTRACTOR_RECORD_H

#include <linux/types.h>
#include "tracepoints.h"

#define RECORD_FORMAT_VERSION 1

enum record_kind {
	RECORD_EVENT = 1,   /* one tracepoint event (P2P: with its whole payload) */
	RECORD_CHUNK = 2,   /* BPF ring only: a piece of a P2P payload */
	RECORD_LOSS = 3,    /* collector: events lost before the queue */
	RECORD_STATS = 4,   /* collector: all counters, every few seconds */
	RECORD_STARTED = 5, /* collector: a (re)start, a possible discontinuity */
};

/* flags: bit i says argument i (0-based, in tracepoint order) could not be
 * read (its bytes are zero, never stale); bit 16+i says string argument i
 * was longer than its buffer (the buffer holds its first bytes). */
#define RECORD_FLAG_READ_FAILED(arg) (1u << (arg))
#define RECORD_FLAG_TRUNCATED(arg) (1u << (16 + (arg)))

struct record_header {
	__u16 kind;       /* enum record_kind */
	__u16 tracepoint; /* enum tracepoint_id; TP_NONE for collector records */
	__u32 length;     /* bytes of header + body (+ payload for P2P) */
	__u64 time_ns;    /* BPF: CLOCK_BOOTTIME; in the queue: unix ns */
	__u32 pid;        /* process (tgid) that fired the tracepoint */
	__u32 tid;        /* thread that fired it */
	__u32 flags;      /* RECORD_FLAG_* */
	__u32 reserved;   /* zero (in a BPF ring: the drop stamp, bpf_shared.h) */
};
_Static_assert(sizeof(struct record_header) == 32, "record_header layout");

/* String buffers: documented maximum + 1 or more. A peer address is
 * "host:port" and the host can be a 253-character DNS name. */
#define ADDR_LEN 272
#define CONN_TYPE_LEN 32   /* documented <= 20 */
#define MSG_TYPE_LEN 32    /* documented <= 20 (12 on the wire) */
#define MISBEHAVING_LEN 256 /* documented <= 128 */
#define REMOVAL_REASON_LEN 32 /* documented <= 9 */
#define REJECT_REASON_LEN 256 /* documented <= 118 */
#define WALLET_NAME_LEN 256   /* user-chosen, no documented maximum */
#define ALGORITHM_LEN 32
#define HASH_LEN 32

/* Largest P2P payload (Bitcoin Core's MAX_PROTOCOL_MESSAGE_LENGTH). */
#define P2P_PAYLOAD_MAX 4000000u
/* Largest data part of one chunk record in the BPF ring. */
#define CHUNK_DATA_MAX 32768u

/* net:inbound_message, net:outbound_message. In the BPF ring this record is
 * followed by p2p_chunk_count(size) chunk records from the same thread
 * (bpf_shared.h: the payload is captured up to P2P_PAYLOAD_MAX); in the
 * queue the captured payload follows the body directly and header.length
 * covers it. */
struct ev_net_message {
	__s64 peer_id;
	__u64 size;
	char addr[ADDR_LEN];
	char conn_type[CONN_TYPE_LEN];
	char msg_type[MSG_TYPE_LEN];
};
_Static_assert(sizeof(struct ev_net_message) == 352, "ev_net_message layout");

/* A piece of a P2P payload, BPF ring only. header.time_ns, pid, tid and
 * tracepoint equal those of the message record it belongs to;
 * header.flags has RECORD_FLAG_READ_FAILED(5) when this piece could not be
 * read (its bytes are zero). data has data_len valid bytes; the record is
 * reserved in a power-of-two size class, so header.length can be larger. */
struct ev_chunk {
	__u64 offset;
	__u32 data_len;
	__u32 reserved;
	__u8 data[];
};
_Static_assert(sizeof(struct ev_chunk) == 16, "ev_chunk layout");

/* net:inbound_connection, net:outbound_connection */
struct ev_net_connection {
	__s64 peer_id;
	__u64 existing_connections;
	__u32 network;
	__u32 reserved;
	char addr[ADDR_LEN];
	char conn_type[CONN_TYPE_LEN];
};
_Static_assert(sizeof(struct ev_net_connection) == 328, "ev_net_connection layout");

/* net:closed_connection, net:evicted_inbound_connection */
struct ev_net_closed {
	__s64 peer_id;
	__s64 time_established; /* unix seconds */
	__u32 network;
	__u32 reserved;
	char addr[ADDR_LEN];
	char conn_type[CONN_TYPE_LEN];
};
_Static_assert(sizeof(struct ev_net_closed) == 328, "ev_net_closed layout");

/* net:misbehaving_connection */
struct ev_net_misbehaving {
	__s64 peer_id;
	char message[MISBEHAVING_LEN];
};
_Static_assert(sizeof(struct ev_net_misbehaving) == 264, "ev_net_misbehaving layout");

/* validation:block_connected */
struct ev_block_connected {
	__u8 block_hash[HASH_LEN]; /* internal byte order, as the tracepoint passes it */
	__s32 height;
	__s32 inputs;
	__u64 transactions;
	__s64 sigops;
	__s64 duration_ns;
};
_Static_assert(sizeof(struct ev_block_connected) == 64, "ev_block_connected layout");

/* utxocache:flush */
struct ev_utxocache_flush {
	__s64 duration_us;
	__u64 coins;
	__u64 memory_bytes;
	__u32 mode;
	__u8 for_prune;
	__u8 reserved[3];
};
_Static_assert(sizeof(struct ev_utxocache_flush) == 32, "ev_utxocache_flush layout");

/* utxocache:add, utxocache:spent, utxocache:uncache */
struct ev_utxocache_coin {
	__u8 txid[HASH_LEN];
	__u32 vout;
	__u32 height;
	__s64 value;
	__u8 is_coinbase;
	__u8 reserved[7];
};
_Static_assert(sizeof(struct ev_utxocache_coin) == 56, "ev_utxocache_coin layout");

/* coin_selection:selected_coins */
struct ev_selected_coins {
	__s64 target;
	__s64 waste;
	__s64 selected_value;
	char wallet[WALLET_NAME_LEN];
	char algorithm[ALGORITHM_LEN];
};
_Static_assert(sizeof(struct ev_selected_coins) == 312, "ev_selected_coins layout");

/* coin_selection:normal_create_tx_internal */
struct ev_normal_create_tx {
	__s64 fee;
	__s32 change_pos;
	__u8 success;
	__u8 reserved[3];
	char wallet[WALLET_NAME_LEN];
};
_Static_assert(sizeof(struct ev_normal_create_tx) == 272, "ev_normal_create_tx layout");

/* coin_selection:attempting_aps_create_tx */
struct ev_attempting_aps {
	char wallet[WALLET_NAME_LEN];
};
_Static_assert(sizeof(struct ev_attempting_aps) == 256, "ev_attempting_aps layout");

/* coin_selection:aps_create_tx_internal */
struct ev_aps_create_tx {
	__s64 fee;
	__s32 change_pos;
	__u8 use_aps;
	__u8 success;
	__u8 reserved[2];
	char wallet[WALLET_NAME_LEN];
};
_Static_assert(sizeof(struct ev_aps_create_tx) == 272, "ev_aps_create_tx layout");

/* mempool:added */
struct ev_mempool_added {
	__u8 txid[HASH_LEN];
	__s64 fee;
	__s32 vsize;
	__u32 reserved;
};
_Static_assert(sizeof(struct ev_mempool_added) == 48, "ev_mempool_added layout");

/* mempool:removed */
struct ev_mempool_removed {
	__u8 txid[HASH_LEN];
	__s64 fee;
	__u64 entry_time;
	__s32 vsize;
	__u32 reserved;
	char reason[REMOVAL_REASON_LEN];
};
_Static_assert(sizeof(struct ev_mempool_removed) == 88, "ev_mempool_removed layout");

/* mempool:replaced */
struct ev_mempool_replaced {
	__u8 replaced_txid[HASH_LEN];
	__u8 replacement_txid[HASH_LEN];
	__s64 replaced_fee;
	__u64 replaced_entry_time;
	__s64 replacement_fee;
	__s32 replaced_vsize;
	__s32 replacement_vsize;
	__u8 replaced_by_transaction;
	__u8 reserved[7];
};
_Static_assert(sizeof(struct ev_mempool_replaced) == 104, "ev_mempool_replaced layout");

/* mempool:rejected */
struct ev_mempool_rejected {
	__u8 txid[HASH_LEN];
	char reason[REJECT_REASON_LEN];
};
_Static_assert(sizeof(struct ev_mempool_rejected) == 288, "ev_mempool_rejected layout");

/* ---- the collector's own records (queue only) ---- */

/* Events lost before the queue since the previous loss record, per
 * tracepoint (index = enum tracepoint_id). The record sits in the stream
 * where the collector noticed the loss. */
struct loss_counts {
	__u64 bpf_drops;   /* the BPF ring had no room (counted in BPF) */
	__u64 queue_drops; /* the shared-memory queue had no room */
	__u64 incomplete;  /* a P2P message whose chunks did not all arrive */
};
_Static_assert(sizeof(struct loss_counts) == 24, "loss_counts layout");

struct rec_loss {
	struct loss_counts tp[TP_COUNT];
};

/* Cumulative counters since the collector started. */
struct tracepoint_stats {
	__u64 events;      /* records written to the queue */
	struct loss_counts lost;
};
_Static_assert(sizeof(struct tracepoint_stats) == 32, "tracepoint_stats layout");

struct rec_stats {
	__u64 queue_capacity; /* bytes */
	__u64 queue_used;     /* bytes not yet released by the consumer */
	__u64 uptime_ns;      /* since the collector started */
	__u32 attached;       /* bit per tracepoint id: probes attached now */
	__u32 reserved;
	struct tracepoint_stats tp[TP_COUNT];
};

enum attach_mode {
	ATTACH_AUTO = 0,
	ATTACH_MULTI = 1, /* uprobe-multi links, CAP_BPF + CAP_PERFMON */
	ATTACH_PERF = 2,  /* libbpf perf_event uprobes, CAP_SYS_ADMIN while attaching */
};

#define VERSION_LEN 32

struct rec_started {
	char version[VERSION_LEN]; /* the collector's version string */
	__u32 attach_mode;         /* enum attach_mode actually used */
	__u32 filter_pid;          /* 0: every process of the binary */
	__u32 attached;            /* bit per tracepoint id */
	__u32 reserved;
};
_Static_assert(sizeof(struct rec_started) == 48, "rec_started layout");

#endif
