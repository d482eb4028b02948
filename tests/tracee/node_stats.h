/* The node's bookkeeping: what its functions do besides firing probes.
 *
 * node_compute() folds these counters into a checksum. The helpers are out
 * of line on purpose (another translation unit): a call in the middle of a
 * function with a probe site makes gcc keep values in callee-saved
 * registers (%rbx, %r12..%r15) across it, as in a real bitcoind.
 */
#ifndef EBPF_TRACEE_NODE_STATS_H
#define EBPF_TRACEE_NODE_STATS_H

#include <stdint.h>

#include "node.h"

struct node_stats {
	uint64_t messages;
	uint64_t bytes;
	uint64_t peers;
	uint64_t lookups;
	uint64_t misbehaving;
	uint64_t blocks;
	uint64_t transactions;
	uint64_t flushes;
	uint64_t coins;
	uint64_t coin_value;
	uint64_t mempool_txs;
	uint64_t mempool_vsize;
	uint64_t mempool_fee;
	uint64_t rejects;
	uint64_t wallet_calls;
};

/* Per thread: burst fires from two. */
extern _Thread_local struct node_stats node_stats;

/* *counter += delta (wrapping). */
void node_count(uint64_t *counter, uint64_t delta);

/* Returns peer, counted as looked up (Core finds a CNode by id). */
struct peer *node_find_peer(struct peer *peer);

#endif
