/* The chain-state probe sites: validation, utxocache, mempool.
 *
 * Built without a frame pointer: volatile locals are read relative to %rsp
 * ("-8@8(%rsp)"); values loaded before a call stay in callee-saved registers;
 * utxocache:flush passes its mode as a literal ("4@$2").
 */
#include "node.h"
#include "node_stats.h"
#include "scenario.h"

bool node_connect_block(const struct block_info *block)
{
	/* ConnectBlock counts inputs and sigops in locals of its frame. */
	volatile int32_t inputs = block->inputs;
	volatile int64_t sigops = block->sigops;
	const int64_t duration_ns = block->duration_ns;
	bool fired;

	node_count(&node_stats.blocks, 1);
	fired = TRACEPOINT(validation, block_connected, block->hash, block->height,
			   block->transactions, inputs, sigops, duration_ns);
	node_count(&node_stats.transactions, block->transactions + (uint64_t)duration_ns);
	return fired;
}

bool node_flush_coins(const struct coins_flush *flush)
{
	bool fired = TRACEPOINT(utxocache, flush, flush->duration_us, SCENARIO_FLUSH_MODE, flush->coins,
				flush->memory_bytes, flush->for_prune);

	node_count(&node_stats.flushes, flush->coins);
	return fired;
}

bool node_add_coin(const struct coin *coin)
{
	bool fired = TRACEPOINT(utxocache, add, coin->txid, coin->vout, coin->height, coin->value,
				coin->coinbase);

	node_count(&node_stats.coins, 1);
	node_count(&node_stats.coin_value, (uint64_t)coin->value);
	return fired;
}

bool node_spend_coin(const struct coin *coin)
{
	const uint32_t height = coin->height;
	bool fired;

	node_count(&node_stats.coins, (uint64_t)-1);
	fired = TRACEPOINT(utxocache, spent, coin->txid, coin->vout, height, coin->value,
			   coin->coinbase);
	node_count(&node_stats.coin_value, -(uint64_t)coin->value);
	return fired;
}

bool node_uncache_coin(const struct coin *coin)
{
	const bool coinbase = coin->coinbase;
	const uint32_t vout = coin->vout;
	bool fired = TRACEPOINT(utxocache, uncache, coin->txid, vout, coin->height, coin->value,
				coinbase);

	node_count(&node_stats.coins, (uint64_t)-(int)coinbase);
	return fired;
}

#ifndef TRACEE_SIB_SPEC
bool node_mempool_add(const struct mempool_entry *entry)
{
	const int32_t vsize = entry->vsize;
	bool fired = TRACEPOINT(mempool, added, entry->txid, vsize, entry->fee);

	node_count(&node_stats.mempool_txs, 1);
	node_count(&node_stats.mempool_vsize, (uint64_t)vsize);
	return fired;
}
#else
/* The error-path build (ebpf-tracee-sib): vsize is an array element at a
 * variable index, and a memory-only constraint makes gcc name it in place,
 * a SIB argument spec such as "-4@-40(%rsp,%rdx,4)". */
bool node_mempool_add(const struct mempool_entry *entry)
{
	int32_t vsizes[8] = { 0 };
	volatile unsigned slot_ = (unsigned)entry->vsize & 7;
	const unsigned slot = slot_;
	const unsigned char *const txid = entry->txid;
	bool fired;

	vsizes[slot] = entry->vsize;
#undef STAP_SDT_ARG_CONSTRAINT
#define STAP_SDT_ARG_CONSTRAINT m
	fired = TRACEPOINT(mempool, added, txid, vsizes[slot], entry->fee);
#undef STAP_SDT_ARG_CONSTRAINT
#define STAP_SDT_ARG_CONSTRAINT nor
	node_count(&node_stats.mempool_txs, 1);
	node_count(&node_stats.mempool_vsize, (uint64_t)vsizes[slot]);
	return fired;
}
#endif

bool node_mempool_remove(const struct mempool_entry *entry, const char *reason)
{
	const int32_t vsize = entry->vsize;
	bool fired;

	node_count(&node_stats.mempool_txs, (uint64_t)-1);
	fired = TRACEPOINT(mempool, removed, entry->txid, reason, vsize, entry->fee, entry->entry_time);
	node_count(&node_stats.mempool_vsize, -(uint64_t)vsize);
	node_count(&node_stats.mempool_fee, -(uint64_t)entry->fee);
	return fired;
}

bool node_mempool_replace(const struct mempool_entry *replaced, const struct mempool_entry *replacement,
			  bool by_transaction)
{
	/* Eight arguments from two entries: some stay in memory. */
	volatile int32_t new_vsize = replacement->vsize;
	volatile int64_t new_fee = replacement->fee;
	bool fired = TRACEPOINT(mempool, replaced, replaced->txid, replaced->vsize, replaced->fee,
				replaced->entry_time, replacement->txid, new_vsize, new_fee,
				by_transaction);

	node_count(&node_stats.mempool_fee, (uint64_t)replacement->fee - (uint64_t)replaced->fee);
	return fired;
}

bool node_mempool_reject(const unsigned char *txid, const char *reason)
{
	bool fired = TRACEPOINT(mempool, rejected, txid, reason);

	node_count(&node_stats.rejects, 1);
	return fired;
}
