#include "event_fields.h"

#include "record.h"

#define F(type, member, key, kind_) \
	{ key, kind_, (uint16_t)offsetof(type, member), (uint16_t)sizeof(((type *)0)->member) }
#define PAYLOAD(type) { "payload", FIELD_PAYLOAD, (uint16_t)sizeof(type), 0 }

#define NET_MESSAGE                                                                    \
	{ sizeof(struct ev_net_message), 6,                                            \
	  { F(struct ev_net_message, peer_id, "peer_id", FIELD_I64),                   \
	    F(struct ev_net_message, addr, "addr", FIELD_STR),                         \
	    F(struct ev_net_message, conn_type, "conn_type", FIELD_STR),               \
	    F(struct ev_net_message, msg_type, "msg_type", FIELD_STR),                 \
	    F(struct ev_net_message, size, "size", FIELD_U64),                         \
	    PAYLOAD(struct ev_net_message) } }

#define NET_CONNECTION                                                                 \
	{ sizeof(struct ev_net_connection), 5,                                         \
	  { F(struct ev_net_connection, peer_id, "peer_id", FIELD_I64),                \
	    F(struct ev_net_connection, addr, "addr", FIELD_STR),                      \
	    F(struct ev_net_connection, conn_type, "conn_type", FIELD_STR),            \
	    F(struct ev_net_connection, network, "network", FIELD_U32),                \
	    F(struct ev_net_connection, existing_connections, "existing_connections",  \
	      FIELD_U64) } }

#define NET_CLOSED                                                                     \
	{ sizeof(struct ev_net_closed), 5,                                             \
	  { F(struct ev_net_closed, peer_id, "peer_id", FIELD_I64),                    \
	    F(struct ev_net_closed, addr, "addr", FIELD_STR),                          \
	    F(struct ev_net_closed, conn_type, "conn_type", FIELD_STR),                \
	    F(struct ev_net_closed, network, "network", FIELD_U32),                    \
	    F(struct ev_net_closed, time_established, "time_established", FIELD_I64) } }

#define UTXO_COIN                                                                      \
	{ sizeof(struct ev_utxocache_coin), 5,                                         \
	  { F(struct ev_utxocache_coin, txid, "txid", FIELD_HASH),                     \
	    F(struct ev_utxocache_coin, vout, "vout", FIELD_U32),                      \
	    F(struct ev_utxocache_coin, height, "height", FIELD_U32),                  \
	    F(struct ev_utxocache_coin, value, "value", FIELD_I64),                    \
	    F(struct ev_utxocache_coin, is_coinbase, "is_coinbase", FIELD_BOOL) } }

const struct event_layout event_layouts[TP_COUNT] = {
	[TP_NET_INBOUND_MESSAGE] = NET_MESSAGE,
	[TP_NET_OUTBOUND_MESSAGE] = NET_MESSAGE,
	[TP_NET_INBOUND_CONNECTION] = NET_CONNECTION,
	[TP_NET_OUTBOUND_CONNECTION] = NET_CONNECTION,
	[TP_NET_CLOSED_CONNECTION] = NET_CLOSED,
	[TP_NET_EVICTED_INBOUND_CONNECTION] = NET_CLOSED,
	[TP_NET_MISBEHAVING_CONNECTION] = {
		sizeof(struct ev_net_misbehaving), 2,
		{ F(struct ev_net_misbehaving, peer_id, "peer_id", FIELD_I64),
		  F(struct ev_net_misbehaving, message, "message", FIELD_STR) } },
	[TP_VALIDATION_BLOCK_CONNECTED] = {
		sizeof(struct ev_block_connected), 6,
		{ F(struct ev_block_connected, block_hash, "block_hash", FIELD_HASH),
		  F(struct ev_block_connected, height, "height", FIELD_I32),
		  F(struct ev_block_connected, transactions, "transactions", FIELD_U64),
		  F(struct ev_block_connected, inputs, "inputs", FIELD_I32),
		  F(struct ev_block_connected, sigops, "sigops", FIELD_I64),
		  F(struct ev_block_connected, duration_ns, "duration_ns", FIELD_I64) } },
	[TP_UTXOCACHE_FLUSH] = {
		sizeof(struct ev_utxocache_flush), 5,
		{ F(struct ev_utxocache_flush, duration_us, "duration_us", FIELD_I64),
		  F(struct ev_utxocache_flush, mode, "mode", FIELD_U32),
		  F(struct ev_utxocache_flush, coins, "coins", FIELD_U64),
		  F(struct ev_utxocache_flush, memory_bytes, "memory_bytes", FIELD_U64),
		  F(struct ev_utxocache_flush, for_prune, "for_prune", FIELD_BOOL) } },
	[TP_UTXOCACHE_ADD] = UTXO_COIN,
	[TP_UTXOCACHE_SPENT] = UTXO_COIN,
	[TP_UTXOCACHE_UNCACHE] = UTXO_COIN,
	[TP_COIN_SELECTION_SELECTED_COINS] = {
		sizeof(struct ev_selected_coins), 5,
		{ F(struct ev_selected_coins, wallet, "wallet", FIELD_STR),
		  F(struct ev_selected_coins, algorithm, "algorithm", FIELD_STR),
		  F(struct ev_selected_coins, target, "target", FIELD_I64),
		  F(struct ev_selected_coins, waste, "waste", FIELD_I64),
		  F(struct ev_selected_coins, selected_value, "selected_value", FIELD_I64) } },
	[TP_COIN_SELECTION_NORMAL_CREATE_TX_INTERNAL] = {
		sizeof(struct ev_normal_create_tx), 4,
		{ F(struct ev_normal_create_tx, wallet, "wallet", FIELD_STR),
		  F(struct ev_normal_create_tx, success, "success", FIELD_BOOL),
		  F(struct ev_normal_create_tx, fee, "fee", FIELD_I64),
		  F(struct ev_normal_create_tx, change_pos, "change_pos", FIELD_I32) } },
	[TP_COIN_SELECTION_ATTEMPTING_APS_CREATE_TX] = {
		sizeof(struct ev_attempting_aps), 1,
		{ F(struct ev_attempting_aps, wallet, "wallet", FIELD_STR) } },
	[TP_COIN_SELECTION_APS_CREATE_TX_INTERNAL] = {
		sizeof(struct ev_aps_create_tx), 5,
		{ F(struct ev_aps_create_tx, wallet, "wallet", FIELD_STR),
		  F(struct ev_aps_create_tx, use_aps, "use_aps", FIELD_BOOL),
		  F(struct ev_aps_create_tx, success, "success", FIELD_BOOL),
		  F(struct ev_aps_create_tx, fee, "fee", FIELD_I64),
		  F(struct ev_aps_create_tx, change_pos, "change_pos", FIELD_I32) } },
	[TP_MEMPOOL_ADDED] = {
		sizeof(struct ev_mempool_added), 3,
		{ F(struct ev_mempool_added, txid, "txid", FIELD_HASH),
		  F(struct ev_mempool_added, vsize, "vsize", FIELD_I32),
		  F(struct ev_mempool_added, fee, "fee", FIELD_I64) } },
	[TP_MEMPOOL_REMOVED] = {
		sizeof(struct ev_mempool_removed), 5,
		{ F(struct ev_mempool_removed, txid, "txid", FIELD_HASH),
		  F(struct ev_mempool_removed, reason, "reason", FIELD_STR),
		  F(struct ev_mempool_removed, vsize, "vsize", FIELD_I32),
		  F(struct ev_mempool_removed, fee, "fee", FIELD_I64),
		  F(struct ev_mempool_removed, entry_time, "entry_time", FIELD_U64) } },
	[TP_MEMPOOL_REPLACED] = {
		sizeof(struct ev_mempool_replaced), 8,
		{ F(struct ev_mempool_replaced, replaced_txid, "replaced_txid", FIELD_HASH),
		  F(struct ev_mempool_replaced, replaced_vsize, "replaced_vsize", FIELD_I32),
		  F(struct ev_mempool_replaced, replaced_fee, "replaced_fee", FIELD_I64),
		  F(struct ev_mempool_replaced, replaced_entry_time, "replaced_entry_time",
		    FIELD_U64),
		  F(struct ev_mempool_replaced, replacement_txid, "replacement_id", FIELD_HASH),
		  F(struct ev_mempool_replaced, replacement_vsize, "replacement_vsize", FIELD_I32),
		  F(struct ev_mempool_replaced, replacement_fee, "replacement_fee", FIELD_I64),
		  F(struct ev_mempool_replaced, replaced_by_transaction, "replaced_by_transaction",
		    FIELD_BOOL) } },
	[TP_MEMPOOL_REJECTED] = {
		sizeof(struct ev_mempool_rejected), 2,
		{ F(struct ev_mempool_rejected, txid, "txid", FIELD_HASH),
		  F(struct ev_mempool_rejected, reason, "reason", FIELD_STR) } },
};
