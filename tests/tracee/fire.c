/* See fire.h. */
#include "fire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "node.h"
#include "record.h"
#include "tracepoints_table.h"

/* The untouched region: 64 KiB, the argument points at its start. */
#define UNTOUCHED_LEN (64 * 1024)

void firer_init(struct firer *f)
{
	memset(f, 0, sizeof(*f));
}

void firer_destroy(struct firer *f)
{
	for (int i = 0; i < FIRE_PAYLOAD_SLOTS; i++)
		free(f->slots[i].buf);
	memset(f->slots, 0, sizeof(f->slots));
}

tp_mask fire_available(void)
{
	tp_mask mask = 0;

	for (int tp = 1; tp < TP_COUNT; tp++)
		if (probe_semaphore((enum tracepoint_id)tp))
			mask |= TP_BIT(tp);
	return mask;
}

/* ---- argument buffers ---- */

static bool untouched(const struct scenario_step *step, int arg)
{
	return step->untouched & (1u << arg);
}

/* A fresh private anonymous mapping: no page of it exists until the tracee
 * touches it, which it never does. */
static int untouched_map(struct firer *f)
{
	void *p = mmap(NULL, UNTOUCHED_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	f->untouched = p;
	return 0;
}

static void untouched_unmap(struct firer *f)
{
	if (f->untouched)
		munmap(f->untouched, UNTOUCHED_LEN);
	f->untouched = NULL;
}

/* Argument arg of step as a string the tracee has just written. */
static const char *str_arg(struct firer *f, const struct scenario_step *step, int arg)
{
	const char *s = step->v[arg].s;
	size_t len;

	if (untouched(step, arg))
		return f->untouched;
	len = strlen(s);
	if (len >= FIRE_STR_CAP) {
		/* scenario data error, not a runtime condition */
		fprintf(stderr, "ebpf-tracee: scenario string of %zu bytes exceeds %d\n", len,
			FIRE_STR_CAP - 1);
		abort();
	}
	memcpy(f->strings[arg], s, len + 1);
	return f->strings[arg];
}

/* A buffer holding the pattern of size, from the cache or filled now. */
static struct payload_slot *pattern_slot(struct firer *f, uint64_t size)
{
	struct payload_slot *slot;

	for (int i = 0; i < FIRE_PAYLOAD_SLOTS; i++)
		if (f->slots[i].buf && f->slots[i].size == size)
			return &f->slots[i];
	slot = &f->slots[f->next_slot];
	f->next_slot = (f->next_slot + 1) % FIRE_PAYLOAD_SLOTS;
	free(slot->buf);
	slot->buf = malloc(size ? size : 1);
	if (!slot->buf)
		return NULL;
	slot->size = size;
	for (uint64_t i = 0; i < size; i++)
		slot->buf[i] = scenario_payload_byte(size, i);
	return slot;
}

/* Sets f->payload for a net:*_message step: the pattern, its first bytes
 * rewritten just now (the counter in load mode), or the untouched mapping. */
static int prepare_payload(struct firer *f, const struct scenario_step *step)
{
	const uint64_t size = scenario_payload_size(step);
	struct payload_slot *slot;

	if (untouched(step, 5)) {
		f->payload = f->untouched;
		return 0;
	}
	if (size > P2P_PAYLOAD_MAX) {
		fprintf(stderr, "ebpf-tracee: payload of %" PRIu64 " bytes exceeds %u\n", size,
			P2P_PAYLOAD_MAX);
		abort();
	}
	if (!(slot = pattern_slot(f, size)))
		return -ENOMEM;
	for (uint64_t i = 0; i < size && i < 8; i++)
		slot->buf[i] = scenario_step_payload_byte(step, i);
	f->payload = slot->buf;
	return 0;
}

/* ---- one function per kind of object ---- */

/* peer_id, addr, conn_type: the first three arguments of every net
 * tracepoint but misbehaving_connection. */
static struct peer step_peer(struct firer *f, const struct scenario_step *step)
{
	return (struct peer){ .id = step->v[0].i, .addr = str_arg(f, step, 1),
			      .conn_type = str_arg(f, step, 2) };
}

static bool fire_net(struct firer *f, const struct scenario_step *step)
{
	const union scenario_value *v = step->v;
	struct peer peer;
	struct net_message msg;

	if (step->tp == TP_NET_MISBEHAVING_CONNECTION) {
		peer = (struct peer){ .id = v[0].i };
		return node_misbehaving(&peer, str_arg(f, step, 1));
	}
	peer = step_peer(f, step);
	switch (step->tp) {
	case TP_NET_INBOUND_MESSAGE:
	case TP_NET_OUTBOUND_MESSAGE:
		msg = (struct net_message){ .type = str_arg(f, step, 3), .size = v[4].u,
					    .data = f->payload };
		return step->tp == TP_NET_INBOUND_MESSAGE ? node_receive_message(&peer, &msg)
							  : node_send_message(&peer, &msg);
	case TP_NET_INBOUND_CONNECTION:
		peer.network = (uint32_t)v[3].u;
		return node_accept_inbound(&peer, v[4].u);
	case TP_NET_OUTBOUND_CONNECTION:
		peer.network = (uint32_t)v[3].u;
		return node_open_outbound(&peer, v[4].u);
	case TP_NET_CLOSED_CONNECTION:
	case TP_NET_EVICTED_INBOUND_CONNECTION:
		peer.network = (uint32_t)v[3].u;
		peer.time_connected = v[4].i;
		return step->tp == TP_NET_CLOSED_CONNECTION ? node_close_connection(&peer)
							    : node_evict_inbound(&peer);
	default:
		return false;
	}
}

static bool fire_chain(const struct scenario_step *step)
{
	const union scenario_value *v = step->v;
	struct block_info block;
	struct coins_flush flush;
	struct coin coin;

	switch (step->tp) {
	case TP_VALIDATION_BLOCK_CONNECTED:
		block = (struct block_info){ .height = (int32_t)v[1].i, .transactions = v[2].u,
					     .inputs = (int32_t)v[3].i, .sigops = v[4].i,
					     .duration_ns = v[5].i };
		scenario_hash(v[0].hash, block.hash);
		return node_connect_block(&block);
	case TP_UTXOCACHE_FLUSH:
		/* v[1] (mode) is SCENARIO_FLUSH_MODE, a literal at the probe site */
		flush = (struct coins_flush){ .duration_us = v[0].i, .coins = v[2].u,
					      .memory_bytes = v[3].u, .for_prune = v[4].i };
		return node_flush_coins(&flush);
	case TP_UTXOCACHE_ADD:
	case TP_UTXOCACHE_SPENT:
	case TP_UTXOCACHE_UNCACHE:
		coin = (struct coin){ .vout = (uint32_t)v[1].u, .height = (uint32_t)v[2].u,
				      .value = v[3].i, .coinbase = v[4].i };
		scenario_hash(v[0].hash, coin.txid);
		return step->tp == TP_UTXOCACHE_ADD	? node_add_coin(&coin)
		       : step->tp == TP_UTXOCACHE_SPENT ? node_spend_coin(&coin)
							: node_uncache_coin(&coin);
	default:
		return false;
	}
}

static bool fire_mempool(struct firer *f, const struct scenario_step *step)
{
	const union scenario_value *v = step->v;
	struct mempool_entry entry = { 0 }, replacement;
	unsigned char txid[NODE_HASH_LEN];

	switch (step->tp) {
	case TP_MEMPOOL_ADDED:
		scenario_hash(v[0].hash, entry.txid);
		entry.vsize = (int32_t)v[1].i;
		entry.fee = v[2].i;
		return node_mempool_add(&entry);
	case TP_MEMPOOL_REMOVED:
		scenario_hash(v[0].hash, entry.txid);
		entry.vsize = (int32_t)v[2].i;
		entry.fee = v[3].i;
		entry.entry_time = v[4].u;
		return node_mempool_remove(&entry, str_arg(f, step, 1));
	case TP_MEMPOOL_REPLACED:
		scenario_hash(v[0].hash, entry.txid);
		entry.vsize = (int32_t)v[1].i;
		entry.fee = v[2].i;
		entry.entry_time = v[3].u;
		replacement = (struct mempool_entry){ .vsize = (int32_t)v[5].i, .fee = v[6].i };
		scenario_hash(v[4].hash, replacement.txid);
		return node_mempool_replace(&entry, &replacement, v[7].i);
	case TP_MEMPOOL_REJECTED:
		scenario_hash(v[0].hash, txid);
		return node_mempool_reject(txid, str_arg(f, step, 1));
	default:
		return false;
	}
}

#ifdef TRACEE_HAS_WALLET
static bool fire_wallet(struct firer *f, const struct scenario_step *step)
{
	const union scenario_value *v = step->v;
	const char *wallet = str_arg(f, step, 0);
	struct selection_result selection;
	struct create_tx_result result;

	switch (step->tp) {
	case TP_COIN_SELECTION_SELECTED_COINS:
		selection = (struct selection_result){ .algorithm = str_arg(f, step, 1),
						       .target = v[2].i, .waste = v[3].i,
						       .selected_value = v[4].i };
		return node_select_coins(wallet, &selection);
	case TP_COIN_SELECTION_NORMAL_CREATE_TX_INTERNAL:
		result = (struct create_tx_result){ .success = v[1].i, .fee = v[2].i,
						    .change_pos = (int32_t)v[3].i };
		return node_create_tx_normal(wallet, &result);
	case TP_COIN_SELECTION_ATTEMPTING_APS_CREATE_TX:
		return node_attempt_aps(wallet);
	case TP_COIN_SELECTION_APS_CREATE_TX_INTERNAL:
		result = (struct create_tx_result){ .success = v[2].i, .fee = v[3].i,
						    .change_pos = (int32_t)v[4].i };
		return node_create_tx_aps(wallet, v[1].i, &result);
	default:
		return false;
	}
}
#endif

static bool dispatch(struct firer *f, const struct scenario_step *step)
{
	switch (tracepoint_table[step->tp].group) {
	case GROUP_P2PMSG:
	case GROUP_CONNECTION:
		return fire_net(f, step);
	case GROUP_VALIDATION:
	case GROUP_UTXOCACHE:
		return fire_chain(step);
	case GROUP_MEMPOOL:
		return fire_mempool(f, step);
	case GROUP_COIN_SELECTION:
#ifdef TRACEE_HAS_WALLET
		return fire_wallet(f, step);
#else
		return false;
#endif
	default:
		return false;
	}
}

int fire_step(struct firer *f, const struct scenario_step *step)
{
	bool fired;
	int err;

	if (step->tp <= TP_NONE || step->tp >= TP_COUNT)
		return 0;
	if (step->untouched && (err = untouched_map(f)) < 0)
		return err;
	if (tracepoint_table[step->tp].group == GROUP_P2PMSG && (err = prepare_payload(f, step)) < 0) {
		untouched_unmap(f);
		return err;
	}
	fired = dispatch(f, step);
	untouched_unmap(f);
	f->attempts[step->tp]++;
	f->fired[step->tp] += fired;
	return fired;
}

void fire_report(FILE *out, const uint64_t fired[TP_COUNT], tp_mask mask)
{
	for (int tp = 1; tp < TP_COUNT; tp++)
		if (mask & TP_BIT(tp))
			fprintf(out, "fired %s %" PRIu64 "\n", tracepoint_table[tp].event, fired[tp]);
}
