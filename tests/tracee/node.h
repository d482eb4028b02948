/* The "node": a few objects shaped like Bitcoin Core's and the functions
 * that hold its probe sites, one function per tracepoint.
 *
 * Each function does a little bookkeeping of its own (thread-local counters,
 * folded by node_compute()) around its probe, the way Core's code does real
 * work around a TRACEPOINT; each returns whether its probe site was reached,
 * i.e. whether the probe's semaphore was nonzero.
 */
#ifndef EBPF_TRACEE_NODE_H
#define EBPF_TRACEE_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include "probes.h"

#define NODE_HASH_LEN 32

struct peer {
	int64_t id;
	const char *addr;
	const char *conn_type;
	uint32_t network;
	int64_t time_connected; /* unix seconds */
	uint64_t bytes_recv;
	uint64_t bytes_sent;
};

struct net_message {
	const char *type;
	uint64_t size;
	const unsigned char *data;
};

struct block_info {
	unsigned char hash[NODE_HASH_LEN];
	int32_t height;
	int32_t inputs;
	uint64_t transactions;
	int64_t sigops;
	int64_t duration_ns;
};

struct coins_flush {
	int64_t duration_us;
	uint64_t coins;
	uint64_t memory_bytes;
	bool for_prune;
};

struct coin {
	unsigned char txid[NODE_HASH_LEN];
	uint32_t vout;
	uint32_t height;
	int64_t value;
	bool coinbase;
};

struct mempool_entry {
	unsigned char txid[NODE_HASH_LEN];
	int32_t vsize;
	int64_t fee;
	uint64_t entry_time;
};

struct selection_result {
	const char *algorithm;
	int64_t target;
	int64_t waste;
	int64_t selected_value;
};

struct create_tx_result {
	bool success;
	int64_t fee;
	int32_t change_pos;
};

/* net */
bool node_receive_message(struct peer *peer, const struct net_message *msg);
bool node_send_message(struct peer *peer, const struct net_message *msg);
bool node_accept_inbound(const struct peer *peer, uint64_t existing);
bool node_open_outbound(const struct peer *peer, uint64_t existing);
bool node_close_connection(const struct peer *peer);
bool node_evict_inbound(const struct peer *peer);
bool node_misbehaving(struct peer *peer, const char *message);
/* validation */
bool node_connect_block(const struct block_info *block);
/* utxocache; flush passes mode SCENARIO_FLUSH_MODE as a constant */
bool node_flush_coins(const struct coins_flush *flush);
bool node_add_coin(const struct coin *coin);
bool node_spend_coin(const struct coin *coin);
bool node_uncache_coin(const struct coin *coin);
/* mempool */
bool node_mempool_add(const struct mempool_entry *entry);
bool node_mempool_remove(const struct mempool_entry *entry, const char *reason);
bool node_mempool_replace(const struct mempool_entry *replaced, const struct mempool_entry *replacement,
			  bool by_transaction);
bool node_mempool_reject(const unsigned char *txid, const char *reason);

#ifdef TRACEE_HAS_WALLET
/* coin_selection (wallet builds only) */
bool node_select_coins(const char *wallet, const struct selection_result *result);
bool node_create_tx_normal(const char *wallet, const struct create_tx_result *result);
bool node_attempt_aps(const char *wallet);
bool node_create_tx_aps(const char *wallet, bool use_aps, const struct create_tx_result *result);
#endif

/* Runs iterations rounds through every non-wallet function above and returns
 * a checksum of the bookkeeping; the same in every build variant. */
uint64_t node_compute(uint32_t iterations);

#endif
