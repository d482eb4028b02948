/* Load mode: a weighted mix of tracepoints at a chosen rate.
 *
 * Mix spec: comma-separated items, each NAME[:SIZE][=WEIGHT]. NAME is an
 * event ("mempool:added"), the same with '_' ("mempool_added"), or an
 * alias: p2p (net:inbound_message), p2p_out (net:outbound_message), utxo
 * (utxocache:add). SIZE, only for the two message tracepoints, is the
 * payload size (default LOAD_DEFAULT_P2P_SIZE). WEIGHT defaults to 1; items
 * are interleaved by smooth weighted round robin, so the order is fixed and
 * "a=3,b=1" fires a a b a, a a b a, ...
 * Example: "mempool_added=3,p2p:1000=1".
 *
 * The k-th event fired for a tracepoint carries counter k
 * (scenario_load_step()), counted over events whose probe site was reached.
 */
#ifndef EBPF_TRACEE_LOAD_H
#define EBPF_TRACEE_LOAD_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "fire.h"

#define LOAD_MAX_ITEMS 32
#define LOAD_DEFAULT_P2P_SIZE 100

struct load_item {
	enum tracepoint_id tp;
	uint64_t p2p_size;
	unsigned weight;
	int64_t current; /* round-robin state */
};

struct load_mix {
	struct load_item items[LOAD_MAX_ITEMS];
	int count;
};

/* 0, or -1 with a message in err. Refuses probes this build lacks. */
int load_mix_parse(const char *spec, struct load_mix *mix, char *err, size_t errlen);

/* The tracepoints the mix fires. */
tp_mask load_mix_mask(const struct load_mix *mix);

/* Fires count events (0: until *stop) at rate events/s (0: as fast as
 * possible); adds what fired per tracepoint to fired. 0, or -errno. */
int load_run(struct load_mix *mix, double rate, uint64_t count, volatile sig_atomic_t *stop,
	     uint64_t fired[TP_COUNT]);

#endif
