/* The node's bookkeeping, and `compute`: a checksum over it after a million
 * rounds through the functions that hold the probe sites. A binary whose
 * instructions were changed under it (a uprobe breakpoint left in the middle
 * of an instruction after the file was overwritten in place) crashes or
 * prints another number. */
#include "node_stats.h"

#include <string.h>

_Thread_local struct node_stats node_stats;

void node_count(uint64_t *counter, uint64_t delta)
{
	*counter += delta;
}

struct peer *node_find_peer(struct peer *peer)
{
	node_stats.lookups += (uint64_t)peer->id;
	return peer;
}

static uint64_t fold(uint64_t acc, uint64_t value)
{
	/* FNV-1a over the value's 8 bytes */
	for (int i = 0; i < 8; i++) {
		acc ^= (value >> (8 * i)) & 0xff;
		acc *= UINT64_C(0x100000001b3);
	}
	return acc;
}

static uint64_t fold_stats(uint64_t acc)
{
	const struct node_stats *s = &node_stats;
	const uint64_t values[] = {
		s->messages, s->bytes, s->peers, s->lookups, s->misbehaving, s->blocks,
		s->transactions, s->flushes, s->coins, s->coin_value, s->mempool_txs,
		s->mempool_vsize, s->mempool_fee, s->rejects, s->wallet_calls,
	};

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
		acc = fold(acc, values[i]);
	return acc;
}

/* One round through every function with a probe site that all builds have
 * (not the wallet's), with values from i. */
static void compute_round(uint32_t i, const unsigned char *payload)
{
	struct peer peer = { .id = i, .addr = "127.0.0.1:8333", .conn_type = "inbound",
			     .network = i % 7, .time_connected = (int64_t)i * 3 };
	struct net_message msg = { .type = "ping", .size = i % 64, .data = payload };
	struct block_info block = { .height = (int32_t)i, .inputs = (int32_t)(i * 2),
				    .transactions = i + 1, .sigops = -(int64_t)i, .duration_ns = i * 7 };
	struct coins_flush flush = { .duration_us = i, .coins = i * 5, .memory_bytes = i * 64,
				     .for_prune = i & 1 };
	struct coin coin = { .vout = i, .height = i / 2, .value = (int64_t)i * 1000, .coinbase = i & 1 };
	struct mempool_entry entry = { .vsize = (int32_t)(i % 1000), .fee = (int64_t)i * 3,
				       .entry_time = i };

	memcpy(block.hash, &i, sizeof(i));
	memcpy(coin.txid, &i, sizeof(i));
	memcpy(entry.txid, &i, sizeof(i));
	node_accept_inbound(&peer, i);
	node_open_outbound(&peer, i);
	node_receive_message(&peer, &msg);
	node_send_message(&peer, &msg);
	node_misbehaving(&peer, "compute");
	node_close_connection(&peer);
	node_evict_inbound(&peer);
	node_connect_block(&block);
	node_flush_coins(&flush);
	node_add_coin(&coin);
	node_spend_coin(&coin);
	node_uncache_coin(&coin);
	node_mempool_add(&entry);
	node_mempool_replace(&entry, &entry, i & 1);
	node_mempool_remove(&entry, "block");
	node_mempool_reject(entry.txid, "compute");
	node_count(&node_stats.bytes, peer.bytes_recv + peer.bytes_sent);
}

uint64_t node_compute(uint32_t iterations)
{
	static const unsigned char payload[64];
	uint64_t acc = UINT64_C(0xcbf29ce484222325);

	memset(&node_stats, 0, sizeof(node_stats));
	for (uint32_t i = 0; i < iterations; i++) {
		compute_round(i, payload);
		acc = fold_stats(acc);
	}
	return acc;
}
