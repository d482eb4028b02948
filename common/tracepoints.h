/* The Bitcoin Core tracepoints we consume, their groups and their rings.
 *
 * Included by the BPF program (clang -target bpf) and by user space, so it
 * holds only enums and macros. The name table lives in tracepoints_table.c.
 */
#ifndef EBPF_EXTRACTOR_TRACEPOINTS_H
#define EBPF_EXTRACTOR_TRACEPOINTS_H

/* Ids are part of the queue format: append only, never renumber. */
enum tracepoint_id {
	TP_NONE = 0, /* the collector's own records */
	TP_NET_INBOUND_MESSAGE = 1,
	TP_NET_OUTBOUND_MESSAGE = 2,
	TP_NET_INBOUND_CONNECTION = 3,
	TP_NET_OUTBOUND_CONNECTION = 4,
	TP_NET_CLOSED_CONNECTION = 5,
	TP_NET_EVICTED_INBOUND_CONNECTION = 6,
	TP_NET_MISBEHAVING_CONNECTION = 7,
	TP_VALIDATION_BLOCK_CONNECTED = 8,
	TP_UTXOCACHE_FLUSH = 9,
	TP_UTXOCACHE_ADD = 10,
	TP_UTXOCACHE_SPENT = 11,
	TP_UTXOCACHE_UNCACHE = 12,
	TP_COIN_SELECTION_SELECTED_COINS = 13,
	TP_COIN_SELECTION_NORMAL_CREATE_TX_INTERNAL = 14,
	TP_COIN_SELECTION_ATTEMPTING_APS_CREATE_TX = 15,
	TP_COIN_SELECTION_APS_CREATE_TX_INTERNAL = 16,
	TP_MEMPOOL_ADDED = 17,
	TP_MEMPOOL_REMOVED = 18,
	TP_MEMPOOL_REPLACED = 19,
	TP_MEMPOOL_REJECTED = 20,
	TP_COUNT = 21 /* array size for per-tracepoint counters (index 0 unused) */
};

/* A group is what a user turns on or off with one flag, and each group has
 * its own BPF ring buffer, sized on its own (utxocache is bursty and huge,
 * validation is one event per block). */
enum tracepoint_group {
	GROUP_P2PMSG = 0,     /* --no-p2pmsg-tracepoints */
	GROUP_CONNECTION = 1, /* --no-connection-tracepoints */
	GROUP_MEMPOOL = 2,    /* --no-mempool-tracepoints */
	GROUP_VALIDATION = 3, /* --no-validation-tracepoints */
	GROUP_UTXOCACHE = 4,  /* --utxocache-tracepoints (opt-in) */
	GROUP_COIN_SELECTION = 5, /* --coin-selection-tracepoints (opt-in) */
	GROUP_COUNT = 6
};

/* Default ring sizes in 4 KiB pages (a power of two each). Together 45.5 MiB,
 * under the 64 MiB budget; see docs/architecture.md for the arithmetic. */
#define RING_PAGES_P2PMSG 8192        /* 32 MiB: eight 4 MB blocks in flight */
#define RING_PAGES_CONNECTION 256     /* 1 MiB */
#define RING_PAGES_MEMPOOL 1024       /* 4 MiB: a 5,000-tx block is ~0.6 MiB */
#define RING_PAGES_VALIDATION 64      /* 256 KiB */
#define RING_PAGES_UTXOCACHE 2048     /* 8 MiB: 20,000 events are ~2 MiB */
#define RING_PAGES_COIN_SELECTION 64  /* 256 KiB */

#endif
