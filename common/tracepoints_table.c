#include "tracepoints_table.h"

#include <string.h>

#define TP(id, prov, nm, grp, nargs) \
	[id] = { prov, nm, prov ":" nm, "handle_" prov "_" nm, grp, nargs }

const struct tracepoint_info tracepoint_table[TP_COUNT] = {
	TP(TP_NET_INBOUND_MESSAGE, "net", "inbound_message", GROUP_P2PMSG, 6),
	TP(TP_NET_OUTBOUND_MESSAGE, "net", "outbound_message", GROUP_P2PMSG, 6),
	TP(TP_NET_INBOUND_CONNECTION, "net", "inbound_connection", GROUP_CONNECTION, 5),
	TP(TP_NET_OUTBOUND_CONNECTION, "net", "outbound_connection", GROUP_CONNECTION, 5),
	TP(TP_NET_CLOSED_CONNECTION, "net", "closed_connection", GROUP_CONNECTION, 5),
	TP(TP_NET_EVICTED_INBOUND_CONNECTION, "net", "evicted_inbound_connection", GROUP_CONNECTION, 5),
	TP(TP_NET_MISBEHAVING_CONNECTION, "net", "misbehaving_connection", GROUP_CONNECTION, 2),
	TP(TP_VALIDATION_BLOCK_CONNECTED, "validation", "block_connected", GROUP_VALIDATION, 6),
	TP(TP_UTXOCACHE_FLUSH, "utxocache", "flush", GROUP_UTXOCACHE, 5),
	TP(TP_UTXOCACHE_ADD, "utxocache", "add", GROUP_UTXOCACHE, 5),
	TP(TP_UTXOCACHE_SPENT, "utxocache", "spent", GROUP_UTXOCACHE, 5),
	TP(TP_UTXOCACHE_UNCACHE, "utxocache", "uncache", GROUP_UTXOCACHE, 5),
	TP(TP_COIN_SELECTION_SELECTED_COINS, "coin_selection", "selected_coins", GROUP_COIN_SELECTION, 5),
	TP(TP_COIN_SELECTION_NORMAL_CREATE_TX_INTERNAL, "coin_selection", "normal_create_tx_internal",
	   GROUP_COIN_SELECTION, 4),
	TP(TP_COIN_SELECTION_ATTEMPTING_APS_CREATE_TX, "coin_selection", "attempting_aps_create_tx",
	   GROUP_COIN_SELECTION, 1),
	TP(TP_COIN_SELECTION_APS_CREATE_TX_INTERNAL, "coin_selection", "aps_create_tx_internal",
	   GROUP_COIN_SELECTION, 5),
	TP(TP_MEMPOOL_ADDED, "mempool", "added", GROUP_MEMPOOL, 3),
	TP(TP_MEMPOOL_REMOVED, "mempool", "removed", GROUP_MEMPOOL, 5),
	TP(TP_MEMPOOL_REPLACED, "mempool", "replaced", GROUP_MEMPOOL, 8),
	TP(TP_MEMPOOL_REJECTED, "mempool", "rejected", GROUP_MEMPOOL, 2),
};

const char *const group_names[GROUP_COUNT] = {
	[GROUP_P2PMSG] = "p2pmsg",
	[GROUP_CONNECTION] = "connection",
	[GROUP_MEMPOOL] = "mempool",
	[GROUP_VALIDATION] = "validation",
	[GROUP_UTXOCACHE] = "utxocache",
	[GROUP_COIN_SELECTION] = "coin_selection",
};

const unsigned group_default_ring_pages[GROUP_COUNT] = {
	[GROUP_P2PMSG] = RING_PAGES_P2PMSG,
	[GROUP_CONNECTION] = RING_PAGES_CONNECTION,
	[GROUP_MEMPOOL] = RING_PAGES_MEMPOOL,
	[GROUP_VALIDATION] = RING_PAGES_VALIDATION,
	[GROUP_UTXOCACHE] = RING_PAGES_UTXOCACHE,
	[GROUP_COIN_SELECTION] = RING_PAGES_COIN_SELECTION,
};

enum tracepoint_id tracepoint_find(const char *provider, const char *name)
{
	for (int id = 1; id < TP_COUNT; id++)
		if (strcmp(tracepoint_table[id].provider, provider) == 0 &&
		    strcmp(tracepoint_table[id].name, name) == 0)
			return (enum tracepoint_id)id;
	return TP_NONE;
}

int group_find(const char *name)
{
	for (int g = 0; g < GROUP_COUNT; g++)
		if (strcmp(group_names[g], name) == 0)
			return g;
	return -1;
}
