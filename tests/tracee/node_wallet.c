/* The coin_selection probe sites. Built only into wallet builds (see
 * CMakeLists.txt): a bitcoind built with the wallet off lacks these probes
 * (ebpf-tracee-nowallet). */
#include "node.h"
#include "node_stats.h"

bool node_select_coins(const char *wallet, const struct selection_result *result)
{
	bool fired = TRACEPOINT(coin_selection, selected_coins, wallet, result->algorithm,
				result->target, result->waste, result->selected_value);

	node_count(&node_stats.wallet_calls, 1);
	return fired;
}

bool node_create_tx_normal(const char *wallet, const struct create_tx_result *result)
{
	const bool success = result->success;
	const int32_t change_pos = result->change_pos;
	bool fired;

	node_count(&node_stats.wallet_calls, success);
	fired = TRACEPOINT(coin_selection, normal_create_tx_internal, wallet, success, result->fee,
			   change_pos);
	return fired;
}

bool node_attempt_aps(const char *wallet)
{
	bool fired = TRACEPOINT(coin_selection, attempting_aps_create_tx, wallet);

	node_count(&node_stats.wallet_calls, 1);
	return fired;
}

bool node_create_tx_aps(const char *wallet, bool use_aps, const struct create_tx_result *result)
{
	volatile int64_t fee = result->fee;
	bool fired = TRACEPOINT(coin_selection, aps_create_tx_internal, wallet, use_aps,
				result->success, fee, result->change_pos);

	node_count(&node_stats.wallet_calls, use_aps);
	return fired;
}
