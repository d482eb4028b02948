/* The probe semaphores (Core's TRACEPOINT_SEMAPHORE lines) and a lookup by
 * tracepoint id, for the tracee's own readiness wait (--wait-attached). */
#include "probes.h"

#include <stddef.h>

#ifdef TRACEE_HAS_PROBES

TRACEPOINT_SEMAPHORE(net, inbound_message);
TRACEPOINT_SEMAPHORE(net, outbound_message);
TRACEPOINT_SEMAPHORE(net, inbound_connection);
TRACEPOINT_SEMAPHORE(net, outbound_connection);
TRACEPOINT_SEMAPHORE(net, closed_connection);
TRACEPOINT_SEMAPHORE(net, evicted_inbound_connection);
TRACEPOINT_SEMAPHORE(net, misbehaving_connection);
TRACEPOINT_SEMAPHORE(validation, block_connected);
TRACEPOINT_SEMAPHORE(utxocache, flush);
TRACEPOINT_SEMAPHORE(utxocache, add);
TRACEPOINT_SEMAPHORE(utxocache, spent);
TRACEPOINT_SEMAPHORE(utxocache, uncache);
#ifdef TRACEE_HAS_WALLET
TRACEPOINT_SEMAPHORE(coin_selection, selected_coins);
TRACEPOINT_SEMAPHORE(coin_selection, normal_create_tx_internal);
TRACEPOINT_SEMAPHORE(coin_selection, attempting_aps_create_tx);
TRACEPOINT_SEMAPHORE(coin_selection, aps_create_tx_internal);
#endif
TRACEPOINT_SEMAPHORE(mempool, added);
TRACEPOINT_SEMAPHORE(mempool, removed);
TRACEPOINT_SEMAPHORE(mempool, replaced);
TRACEPOINT_SEMAPHORE(mempool, rejected);

static unsigned short *const semaphores[TP_COUNT] = {
	[TP_NET_INBOUND_MESSAGE] = &net_inbound_message_semaphore,
	[TP_NET_OUTBOUND_MESSAGE] = &net_outbound_message_semaphore,
	[TP_NET_INBOUND_CONNECTION] = &net_inbound_connection_semaphore,
	[TP_NET_OUTBOUND_CONNECTION] = &net_outbound_connection_semaphore,
	[TP_NET_CLOSED_CONNECTION] = &net_closed_connection_semaphore,
	[TP_NET_EVICTED_INBOUND_CONNECTION] = &net_evicted_inbound_connection_semaphore,
	[TP_NET_MISBEHAVING_CONNECTION] = &net_misbehaving_connection_semaphore,
	[TP_VALIDATION_BLOCK_CONNECTED] = &validation_block_connected_semaphore,
	[TP_UTXOCACHE_FLUSH] = &utxocache_flush_semaphore,
	[TP_UTXOCACHE_ADD] = &utxocache_add_semaphore,
	[TP_UTXOCACHE_SPENT] = &utxocache_spent_semaphore,
	[TP_UTXOCACHE_UNCACHE] = &utxocache_uncache_semaphore,
#ifdef TRACEE_HAS_WALLET
	[TP_COIN_SELECTION_SELECTED_COINS] = &coin_selection_selected_coins_semaphore,
	[TP_COIN_SELECTION_NORMAL_CREATE_TX_INTERNAL] = &coin_selection_normal_create_tx_internal_semaphore,
	[TP_COIN_SELECTION_ATTEMPTING_APS_CREATE_TX] = &coin_selection_attempting_aps_create_tx_semaphore,
	[TP_COIN_SELECTION_APS_CREATE_TX_INTERNAL] = &coin_selection_aps_create_tx_internal_semaphore,
#endif
	[TP_MEMPOOL_ADDED] = &mempool_added_semaphore,
	[TP_MEMPOOL_REMOVED] = &mempool_removed_semaphore,
	[TP_MEMPOOL_REPLACED] = &mempool_replaced_semaphore,
	[TP_MEMPOOL_REJECTED] = &mempool_rejected_semaphore,
};

volatile unsigned short *probe_semaphore(enum tracepoint_id tp)
{
	return tp > TP_NONE && tp < TP_COUNT ? semaphores[tp] : NULL;
}

#else

volatile unsigned short *probe_semaphore(enum tracepoint_id tp)
{
	return NULL;
}

#endif
