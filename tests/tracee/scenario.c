/* The scenario's data and the value functions; see scenario.h. */
#include "scenario.h"

#include <string.h>

#include "record.h"

/* ---- the argument table (Bitcoin Core's order and C types) ---- */

#define A(name, kind) { name, kind, 0 }
#define A_STR(name, len) { name, SK_STR, len }

static const struct scenario_arg_info net_message_args[] = {
	A("peer_id", SK_I64), A_STR("addr", ADDR_LEN), A_STR("conn_type", CONN_TYPE_LEN),
	A_STR("msg_type", MSG_TYPE_LEN), A("size", SK_U64), A("payload", SK_PAYLOAD),
};
static const struct scenario_arg_info net_connection_args[] = {
	A("peer_id", SK_I64), A_STR("addr", ADDR_LEN), A_STR("conn_type", CONN_TYPE_LEN),
	A("network", SK_U32), A("existing_connections", SK_U64),
};
/* time_established is Ticks<seconds>, an int64 ("-8@" in real notes). */
static const struct scenario_arg_info net_closed_args[] = {
	A("peer_id", SK_I64), A_STR("addr", ADDR_LEN), A_STR("conn_type", CONN_TYPE_LEN),
	A("network", SK_U32), A("time_established", SK_I64),
};
static const struct scenario_arg_info net_misbehaving_args[] = {
	A("peer_id", SK_I64), A_STR("message", MISBEHAVING_LEN),
};
/* sigops and duration_ns are int64 in Core ("-8@" in real notes). */
static const struct scenario_arg_info block_connected_args[] = {
	A("block_hash", SK_HASH), A("height", SK_I32), A("transactions", SK_U64),
	A("inputs", SK_I32), A("sigops", SK_I64), A("duration_ns", SK_I64),
};
static const struct scenario_arg_info utxocache_flush_args[] = {
	A("duration_us", SK_I64), A("mode", SK_U32), A("coins", SK_U64),
	A("memory_bytes", SK_U64), A("for_prune", SK_BOOL),
};
static const struct scenario_arg_info utxocache_coin_args[] = {
	A("txid", SK_HASH), A("vout", SK_U32), A("height", SK_U32), A("value", SK_I64),
	A("is_coinbase", SK_BOOL),
};
static const struct scenario_arg_info selected_coins_args[] = {
	A_STR("wallet", WALLET_NAME_LEN), A_STR("algorithm", ALGORITHM_LEN), A("target", SK_I64),
	A("waste", SK_I64), A("selected_value", SK_I64),
};
static const struct scenario_arg_info normal_create_tx_args[] = {
	A_STR("wallet", WALLET_NAME_LEN), A("success", SK_BOOL), A("fee", SK_I64),
	A("change_pos", SK_I32),
};
static const struct scenario_arg_info attempting_aps_args[] = {
	A_STR("wallet", WALLET_NAME_LEN),
};
static const struct scenario_arg_info aps_create_tx_args[] = {
	A_STR("wallet", WALLET_NAME_LEN), A("use_aps", SK_BOOL), A("success", SK_BOOL),
	A("fee", SK_I64), A("change_pos", SK_I32),
};
static const struct scenario_arg_info mempool_added_args[] = {
	A("txid", SK_HASH), A("vsize", SK_I32), A("fee", SK_I64),
};
static const struct scenario_arg_info mempool_removed_args[] = {
	A("txid", SK_HASH), A_STR("reason", REMOVAL_REASON_LEN), A("vsize", SK_I32),
	A("fee", SK_I64), A("entry_time", SK_U64),
};
static const struct scenario_arg_info mempool_replaced_args[] = {
	A("replaced_txid", SK_HASH), A("replaced_vsize", SK_I32), A("replaced_fee", SK_I64),
	A("replaced_entry_time", SK_U64), A("replacement_id", SK_HASH),
	A("replacement_vsize", SK_I32), A("replacement_fee", SK_I64),
	A("replaced_by_transaction", SK_BOOL),
};
static const struct scenario_arg_info mempool_rejected_args[] = {
	A("txid", SK_HASH), A_STR("reason", REJECT_REASON_LEN),
};

#define ARGS(list) { list, (int)(sizeof(list) / sizeof(list[0])) }

static const struct {
	const struct scenario_arg_info *args;
	int count;
} arg_table[TP_COUNT] = {
	[TP_NET_INBOUND_MESSAGE] = ARGS(net_message_args),
	[TP_NET_OUTBOUND_MESSAGE] = ARGS(net_message_args),
	[TP_NET_INBOUND_CONNECTION] = ARGS(net_connection_args),
	[TP_NET_OUTBOUND_CONNECTION] = ARGS(net_connection_args),
	[TP_NET_CLOSED_CONNECTION] = ARGS(net_closed_args),
	[TP_NET_EVICTED_INBOUND_CONNECTION] = ARGS(net_closed_args),
	[TP_NET_MISBEHAVING_CONNECTION] = ARGS(net_misbehaving_args),
	[TP_VALIDATION_BLOCK_CONNECTED] = ARGS(block_connected_args),
	[TP_UTXOCACHE_FLUSH] = ARGS(utxocache_flush_args),
	[TP_UTXOCACHE_ADD] = ARGS(utxocache_coin_args),
	[TP_UTXOCACHE_SPENT] = ARGS(utxocache_coin_args),
	[TP_UTXOCACHE_UNCACHE] = ARGS(utxocache_coin_args),
	[TP_COIN_SELECTION_SELECTED_COINS] = ARGS(selected_coins_args),
	[TP_COIN_SELECTION_NORMAL_CREATE_TX_INTERNAL] = ARGS(normal_create_tx_args),
	[TP_COIN_SELECTION_ATTEMPTING_APS_CREATE_TX] = ARGS(attempting_aps_args),
	[TP_COIN_SELECTION_APS_CREATE_TX_INTERNAL] = ARGS(aps_create_tx_args),
	[TP_MEMPOOL_ADDED] = ARGS(mempool_added_args),
	[TP_MEMPOOL_REMOVED] = ARGS(mempool_removed_args),
	[TP_MEMPOOL_REPLACED] = ARGS(mempool_replaced_args),
	[TP_MEMPOOL_REJECTED] = ARGS(mempool_rejected_args),
};

int scenario_arg_count(enum tracepoint_id tp)
{
	return tp > TP_NONE && tp < TP_COUNT ? arg_table[tp].count : 0;
}

const struct scenario_arg_info *scenario_args(enum tracepoint_id tp)
{
	return scenario_arg_count(tp) ? arg_table[tp].args : NULL;
}

/* ---- strings at the documented maximum lengths, and beyond ---- */

#define LABEL63 "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0"

/* A DNS-name peer address of 255 bytes: fits ADDR_LEN (272). */
#define ADDR_255 LABEL63 "." LABEL63 "." LABEL63 "." \
	"long-host-name-label-for-a-peer-address-of-255-bytes-total:8333"
_Static_assert(sizeof(ADDR_255) == 255 + 1, "ADDR_255 length");

/* 300 bytes (an -addnode string can be anything): longer than ADDR_LEN,
 * so it arrives with addr_truncated and its first ADDR_LEN - 1 bytes. */
#define ADDR_300 LABEL63 "." LABEL63 "." LABEL63 "." LABEL63 "." \
	"overlong-address-above-the-272-byte-buf:8333"
_Static_assert(sizeof(ADDR_300) == 300 + 1, "ADDR_300 length");
_Static_assert(sizeof(ADDR_300) > ADDR_LEN, "ADDR_300 must not fit");

#define CONN_TYPE_20 "twenty-byte-conntype"
_Static_assert(sizeof(CONN_TYPE_20) == 20 + 1, "CONN_TYPE_20 length");

#define MSG_TYPE_20 "twenty-byte-msg-type"
_Static_assert(sizeof(MSG_TYPE_20) == 20 + 1, "MSG_TYPE_20 length");

/* Core's longest reject reason. */
#define REJECT_118 "mandatory-script-verify-flag-failed (Script evaluated without error " \
	"but finished with a false/empty top stack element)"
_Static_assert(sizeof(REJECT_118) == 118 + 1, "REJECT_118 length");

#define MISBEHAVING_128 "peer=7 (0 -> 100): header with invalid proof of work; headers " \
	"message size = 2001 (more than 2000 allowed); unconnecting headers"
_Static_assert(sizeof(MISBEHAVING_128) == 128 + 1, "MISBEHAVING_128 length");

/* The longest wallet name that fits WALLET_NAME_LEN (256). */
#define WALLET_255 "wallet-" LABEL63 "/" LABEL63 "/" LABEL63 "/" \
	"a-wallet-name-of-exactly-255-bytes-in-nested-dirs-at-end"
_Static_assert(sizeof(WALLET_255) == 255 + 1, "WALLET_255 length");

#define ONION "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion:8333"
#define I2P "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p:0"
#define CJDNS "[fc32:17ea:e415:c3bf:9808:149d:b5a2:c9aa]:8333"
#define LOCAL "127.0.0.1:50001"
#define IPV4 "203.0.113.7:8333"
#define IPV6 "[2001:db8::7]:8333"

/* ---- the scenario ---- */

#define INT(x) { .i = (x) }
#define UINT(x) { .u = (x) }
#define STR(x) { .s = (x) }
#define HASH(x) { .hash = (x) }
#define BOOL(x) { .i = (x) ? 1 : 0 }
#define PAYLOAD { .u = 0 }

#define STEP(tp_, ...) { .tp = (tp_), .v = { __VA_ARGS__ } }
#define STEP_UNTOUCHED(tp_, mask_, ...) { .tp = (tp_), .untouched = (mask_), .v = { __VA_ARGS__ } }

#define INBOUND(id, addr, conn, net, existing) \
	STEP(TP_NET_INBOUND_CONNECTION, INT(id), STR(addr), STR(conn), UINT(net), UINT(existing))
#define OUTBOUND(id, addr, conn, net, existing) \
	STEP(TP_NET_OUTBOUND_CONNECTION, INT(id), STR(addr), STR(conn), UINT(net), UINT(existing))
#define MSG_IN(id, addr, conn, type, size) \
	STEP(TP_NET_INBOUND_MESSAGE, INT(id), STR(addr), STR(conn), STR(type), UINT(size), PAYLOAD)
#define MSG_OUT(id, addr, conn, type, size) \
	STEP(TP_NET_OUTBOUND_MESSAGE, INT(id), STR(addr), STR(conn), STR(type), UINT(size), PAYLOAD)
#define CLOSED(id, addr, conn, net, since) \
	STEP(TP_NET_CLOSED_CONNECTION, INT(id), STR(addr), STR(conn), UINT(net), INT(since))
#define EVICTED(id, addr, conn, net, since) \
	STEP(TP_NET_EVICTED_INBOUND_CONNECTION, INT(id), STR(addr), STR(conn), UINT(net), INT(since))
#define MISBEHAVING(id, msg) STEP(TP_NET_MISBEHAVING_CONNECTION, INT(id), STR(msg))
#define BLOCK(hash, height, txs, inputs, sigops, ns) \
	STEP(TP_VALIDATION_BLOCK_CONNECTED, HASH(hash), INT(height), UINT(txs), INT(inputs), \
	     INT(sigops), INT(ns))
#define FLUSH(us, coins, mem, prune) \
	STEP(TP_UTXOCACHE_FLUSH, INT(us), UINT(SCENARIO_FLUSH_MODE), UINT(coins), UINT(mem), BOOL(prune))
#define COIN(tp, txid, vout, height, value, coinbase) \
	STEP(tp, HASH(txid), UINT(vout), UINT(height), INT(value), BOOL(coinbase))
#define SELECTED(wallet, algo, target, waste, value) \
	STEP(TP_COIN_SELECTION_SELECTED_COINS, STR(wallet), STR(algo), INT(target), INT(waste), INT(value))
#define NORMAL_TX(wallet, ok, fee, pos) \
	STEP(TP_COIN_SELECTION_NORMAL_CREATE_TX_INTERNAL, STR(wallet), BOOL(ok), INT(fee), INT(pos))
#define ATTEMPT_APS(wallet) STEP(TP_COIN_SELECTION_ATTEMPTING_APS_CREATE_TX, STR(wallet))
#define APS_TX(wallet, use, ok, fee, pos) \
	STEP(TP_COIN_SELECTION_APS_CREATE_TX_INTERNAL, STR(wallet), BOOL(use), BOOL(ok), INT(fee), INT(pos))
#define ADDED(txid, vsize, fee) STEP(TP_MEMPOOL_ADDED, HASH(txid), INT(vsize), INT(fee))
#define REMOVED(txid, reason, vsize, fee, time) \
	STEP(TP_MEMPOOL_REMOVED, HASH(txid), STR(reason), INT(vsize), INT(fee), UINT(time))
#define REPLACED(old, old_vsize, old_fee, old_time, new, new_vsize, new_fee, by_tx) \
	STEP(TP_MEMPOOL_REPLACED, HASH(old), INT(old_vsize), INT(old_fee), UINT(old_time), \
	     HASH(new), INT(new_vsize), INT(new_fee), BOOL(by_tx))
#define REJECTED(txid, reason) STEP(TP_MEMPOOL_REJECTED, HASH(txid), STR(reason))

static const struct scenario_step steps[] = {
	/* Connections: every connection type, every network 0..6. */
	INBOUND(1, LOCAL, "inbound", 0, 0),
	OUTBOUND(2, IPV4, "outbound-full-relay", 1, 1),
	OUTBOUND(3, IPV6, "block-relay-only", 2, 2),
	OUTBOUND(4, ONION, "manual", 3, 3),
	OUTBOUND(5, I2P, "feeler", 4, 4),
	OUTBOUND(6, CJDNS, "addr-fetch", 5, 5),
	OUTBOUND(7, "dnsseed.example.org:8333", "private-broadcast", 6, 6),
	INBOUND(8, ADDR_255, "inbound", 1, UINT64_MAX),
	INBOUND(9, ADDR_300, "inbound", 2, 0),
	OUTBOUND(INT64_MAX, "198.51.100.1:8333", CONN_TYPE_20, 1, 125),
	INBOUND(INT64_MIN, "", "inbound", 0, 1),

	/* P2P payloads at and around page and chunk (record.h CHUNK_DATA_MAX)
	 * boundaries, up to the largest message, both ways. */
	MSG_IN(1, LOCAL, "inbound", "pattern", 0),
	MSG_IN(1, LOCAL, "inbound", "pattern", 1),
	MSG_IN(1, LOCAL, "inbound", "pattern", 255),
	MSG_IN(1, LOCAL, "inbound", "pattern", 256),
	MSG_IN(1, LOCAL, "inbound", "pattern", 4095),
	MSG_IN(1, LOCAL, "inbound", "pattern", 4096),
	MSG_IN(1, LOCAL, "inbound", "pattern", CHUNK_DATA_MAX - 1),
	MSG_IN(1, LOCAL, "inbound", "pattern", CHUNK_DATA_MAX),
	MSG_IN(1, LOCAL, "inbound", "pattern", CHUNK_DATA_MAX + 1),
	MSG_IN(1, LOCAL, "inbound", "pattern", 65536),
	MSG_IN(1, LOCAL, "inbound", "pattern", 1000000),
	MSG_IN(1, LOCAL, "inbound", "pattern", 4000000),
	MSG_OUT(2, IPV4, "outbound-full-relay", "pattern", 0),
	MSG_OUT(2, IPV4, "outbound-full-relay", "pattern", 1),
	MSG_OUT(2, IPV4, "outbound-full-relay", "pattern", 255),
	MSG_OUT(2, IPV4, "outbound-full-relay", "pattern", 256),
	MSG_OUT(2, IPV4, "outbound-full-relay", "pattern", 4095),
	MSG_OUT(2, IPV4, "outbound-full-relay", "pattern", 4096),
	MSG_OUT(2, IPV4, "outbound-full-relay", "pattern", 65536),
	MSG_OUT(2, IPV4, "outbound-full-relay", "pattern", 1000000),
	MSG_OUT(2, IPV4, "outbound-full-relay", "pattern", 4000000),
	/* Message types a NATS subject cannot carry as they are. */
	MSG_IN(3, IPV6, "block-relay-only", "a.b", 3),
	MSG_IN(3, IPV6, "block-relay-only", "two words", 5),
	MSG_IN(3, IPV6, "block-relay-only", "", 2),
	/* Every string of a message at its maximum, and a truncated address. */
	MSG_OUT(INT64_MAX, ADDR_255, CONN_TYPE_20, MSG_TYPE_20, 20),
	MSG_IN(INT64_MIN, ADDR_300, "inbound", "pattern", 8),
	/* The payload lies in a fresh mmap the tracee never touched. */
	STEP_UNTOUCHED(TP_NET_INBOUND_MESSAGE, 1u << 5, INT(1), STR(LOCAL), STR("inbound"),
		       STR("pattern"), UINT(4096), PAYLOAD),

	MISBEHAVING(1, MISBEHAVING_128),
	MISBEHAVING(INT64_MIN, "header with invalid proof of work"),

	CLOSED(2, IPV4, "outbound-full-relay", 1, 1700000000),
	CLOSED(INT64_MAX, ADDR_300, "inbound", 2, INT64_MIN),
	CLOSED(5, I2P, "feeler", 4, 0),
	EVICTED(1, LOCAL, "inbound", 0, 1700000001),
	EVICTED(8, ADDR_255, "inbound", 6, INT64_MAX),

	BLOCK(1, 0, 1, 0, 0, 0),
	BLOCK(UINT64_MAX, INT32_MAX, UINT64_MAX, INT32_MIN, INT64_MIN, INT64_MAX),
	BLOCK(0x0123456789abcdefu, 850000, 3500, 9000, 80000, 123456789),
	BLOCK(0, -1, 0, -1, -1, -1),

	FLUSH(INT64_MIN, UINT64_MAX, 0, true),
	FLUSH(5123, 100000, 67108864, false),
	COIN(TP_UTXOCACHE_ADD, 10, 0, 0, 5000000000, true),
	COIN(TP_UTXOCACHE_ADD, 11, UINT32_MAX, UINT32_MAX, INT64_MAX, false),
	COIN(TP_UTXOCACHE_SPENT, 10, 0, 0, 5000000000, true),
	COIN(TP_UTXOCACHE_SPENT, 12, 1, 850000, INT64_MIN, false),
	COIN(TP_UTXOCACHE_UNCACHE, 13, 7, 1, -1, true),
	COIN(TP_UTXOCACHE_UNCACHE, 0, 0x80000000u, 0x80000000u, 0, false),

	SELECTED("", "bnb", INT64_MAX, INT64_MIN, 0),
	SELECTED("hot", "knapsack", 100000, -500, 150000),
	SELECTED(WALLET_255, "srd", -1, 0, INT64_MAX),
	SELECTED("cold storage", "cg", 1, 1, 1),
	SELECTED("hot", "manual", 0, 0, 0),
	NORMAL_TX("", true, 141, 1),
	NORMAL_TX("hot", false, 0, -1),
	NORMAL_TX(WALLET_255, true, INT64_MIN, INT32_MIN),
	ATTEMPT_APS(""),
	ATTEMPT_APS("hot"),
	APS_TX("", true, false, INT64_MAX, INT32_MAX),
	APS_TX("hot", false, true, 200, 0),

	ADDED(100, 141, 282),
	ADDED(101, INT32_MAX, INT64_MAX),
	ADDED(102, INT32_MIN, INT64_MIN),
	REMOVED(100, "expiry", 141, 282, 1700000000),
	REMOVED(101, "sizelimit", INT32_MAX, INT64_MAX, UINT64_MAX),
	REMOVED(102, "reorg", INT32_MIN, INT64_MIN, 0),
	REMOVED(103, "block", 250, 1000, 1700000002),
	REMOVED(104, "conflict", 1, -1, 1),
	REMOVED(105, "replaced", 200, 1000, 1700000003),
	REPLACED(105, 200, 1000, 1700000003, 106, 180, 2000, true),
	REPLACED(107, INT32_MIN, INT64_MIN, UINT64_MAX, UINT64_MAX, INT32_MAX, INT64_MAX, false),
	REJECTED(108, REJECT_118),
	REJECTED(109, "min relay fee not met"),
	REJECTED(110, ""),
	/* The reason lies in a fresh mmap the tracee never touched. */
	STEP_UNTOUCHED(TP_MEMPOOL_REJECTED, 1u << 1, HASH(111), STR("")),
};

size_t scenario_event_count(void)
{
	return sizeof(steps) / sizeof(steps[0]);
}

const struct scenario_step *scenario_step_at(size_t i)
{
	return i < scenario_event_count() ? &steps[i] : NULL;
}

/* ---- values ---- */

void scenario_hash(uint64_t seed, uint8_t out[SCENARIO_HASH_LEN])
{
	uint64_t x = seed ^ UINT64_C(0x9e3779b97f4a7c15);

	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(seed >> (8 * i));
	for (int i = 8; i < SCENARIO_HASH_LEN; i++) {
		/* an LCG step (Knuth's MMIX constants); its top byte is well mixed */
		x = x * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
		out[i] = (uint8_t)(x >> 56);
	}
}

uint8_t scenario_payload_byte(uint64_t size, uint64_t i)
{
	uint32_t x = (uint32_t)i * 2654435761u + (uint32_t)size * 40503u;

	return (uint8_t)((x >> 24) ^ (uint8_t)(size >> 8));
}

uint64_t scenario_payload_size(const struct scenario_step *step)
{
	/* net:*_message: the size is argument 4, the payload argument 5 */
	return step->v[4].u;
}

uint8_t scenario_step_payload_byte(const struct scenario_step *step, uint64_t i)
{
	if (step->untouched & (1u << 5))
		return 0;
	if (step->counter_prefix && i < 8)
		return (uint8_t)(step->counter >> (8 * i));
	return scenario_payload_byte(scenario_payload_size(step), i);
}

uint32_t scenario_expected_flags(const struct scenario_step *step)
{
	const struct scenario_arg_info *args = scenario_args(step->tp);
	uint32_t flags = 0;

	for (int i = 0; i < scenario_arg_count(step->tp); i++) {
		if (step->untouched & (1u << i))
			flags |= RECORD_FLAG_READ_FAILED(i);
		else if (args[i].kind == SK_STR && strlen(step->v[i].s) >= args[i].buf_len)
			flags |= RECORD_FLAG_TRUNCATED(i);
	}
	return flags;
}

/* ---- load and burst ---- */

static const char *load_string(enum tracepoint_id tp, const char *name)
{
	if (strcmp(name, "addr") == 0)
		return SCENARIO_LOAD_ADDR;
	if (strcmp(name, "conn_type") == 0)
		return "inbound";
	if (strcmp(name, "msg_type") == 0)
		return SCENARIO_LOAD_MSG_TYPE;
	if (tp == TP_MEMPOOL_REMOVED)
		return "block";
	return "load";
}

static union scenario_value load_value(enum tracepoint_id tp, const struct scenario_arg_info *arg,
				       uint64_t counter, uint64_t p2p_size)
{
	union scenario_value v = { .u = counter };

	switch (arg->kind) {
	case SK_BOOL:
		v.i = (int64_t)(counter & 1);
		break;
	case SK_I32:
		v.i = (int32_t)counter;
		break;
	case SK_I64:
		v.i = (int64_t)counter;
		break;
	case SK_U32:
		if (strcmp(arg->name, "network") == 0)
			v.u = counter % 7;
		else if (strcmp(arg->name, "mode") == 0)
			v.u = SCENARIO_FLUSH_MODE;
		else
			v.u = (uint32_t)counter;
		break;
	case SK_U64:
		v.u = strcmp(arg->name, "size") == 0 ? p2p_size : counter;
		break;
	case SK_STR:
		v.s = load_string(tp, arg->name);
		break;
	case SK_HASH:
		v.hash = counter;
		break;
	case SK_PAYLOAD:
		v.u = 0;
		break;
	}
	return v;
}

void scenario_load_step(enum tracepoint_id tp, uint64_t counter, uint64_t p2p_size,
			struct scenario_step *out)
{
	const struct scenario_arg_info *args = scenario_args(tp);

	memset(out, 0, sizeof(*out));
	out->tp = tp;
	out->counter = counter;
	out->counter_prefix = tp == TP_NET_INBOUND_MESSAGE || tp == TP_NET_OUTBOUND_MESSAGE;
	for (int i = 0; i < scenario_arg_count(tp); i++)
		out->v[i] = load_value(tp, &args[i], counter, p2p_size);
}
