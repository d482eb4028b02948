/* Every tracepoint's record, built by hand from the record.h structs (not
 * from the field table), encoded and decoded again: every key, MessagePack
 * type and value, and the subject. Also the collector's records and the
 * publisher's stats. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "record.h"

#define RF(i) RECORD_FLAG_READ_FAILED(i)
#define TR(i) RECORD_FLAG_TRUNCATED(i)

static struct encoder enc;
static msgpack_unpacked unp;

static void setup(void)
{
	enc_init(&enc);
	msgpack_unpacked_init(&unp);
}

static void teardown(void)
{
	msgpack_unpacked_destroy(&unp);
	encoder_free(&enc);
}

TestSuite(encode, .init = setup, .fini = teardown);

static void hash_fill(uint8_t h[32], uint8_t start)
{
	for (int i = 0; i < 32; i++)
		h[i] = (uint8_t)(start + i);
}

/* encodes r, checks the subject and the map; frees r */
static void expect_event(struct rec *r, const char *subject, const struct expects *xs)
{
	msgpack_unpacked_destroy(&unp);
	const msgpack_object *m = enc_ok(&enc, r, &unp);
	cr_assert_str_eq(enc.subject, subject);
	check_map(m, xs);
	rec_free(r);
}

/* ---- net ---- */

Test(encode, net_inbound_message)
{
	struct ev_net_message b = { .peer_id = INT64_MIN, .size = 37 };
	strcpy(b.addr, "[2001:db8::1]:8333");
	strcpy(b.conn_type, "inbound");
	strcpy(b.msg_type, "inv");
	uint8_t payload[37];
	for (int i = 0; i < 37; i++)
		payload[i] = (uint8_t)(0xa0 + i);
	struct rec r = rec_build(RECORD_EVENT, TP_NET_INBOUND_MESSAGE, 0, &b, sizeof(b), payload,
				 sizeof(payload));
	struct expects xs = { .n = 0 };
	ex_common(&xs, "net:inbound_message");
	ex_add(&xs, XI("peer_id", INT64_MIN));
	ex_add(&xs, XS("addr", "[2001:db8::1]:8333"));
	ex_add(&xs, XS("conn_type", "inbound"));
	ex_add(&xs, XS("msg_type", "inv"));
	ex_add(&xs, XU("size", 37));
	ex_add(&xs, XBIN("payload", payload, sizeof(payload)));
	/* not a valid inv: published with the reason (tests/decode has valid ones) */
	ex_add(&xs, XS("decode_error", "oversized inventory count: 160 elements of at least 36 "
					"bytes, 36 bytes left at offset 0"));
	expect_event(&r, "btc.node1.net.inbound_message.inv", &xs);
}

Test(encode, net_outbound_message_empty_payload_and_unread_addr)
{
	/* addr could not be read: empty, flagged; size 0: an empty payload */
	struct ev_net_message b = { .peer_id = INT64_MAX, .size = 0 };
	strcpy(b.conn_type, "outbound-full-relay");
	strcpy(b.msg_type, "sendaddrv2");
	struct rec r = rec_build(RECORD_EVENT, TP_NET_OUTBOUND_MESSAGE, RF(1), &b, sizeof(b), NULL, 0);
	struct expects xs = { .n = 0 };
	ex_common(&xs, "net:outbound_message");
	ex_add(&xs, XI("peer_id", INT64_MAX));
	ex_add(&xs, XS("addr", ""));
	ex_add(&xs, XB("addr_read_failed", true));
	ex_add(&xs, XS("conn_type", "outbound-full-relay"));
	ex_add(&xs, XS("msg_type", "sendaddrv2"));
	ex_add(&xs, XU("size", 0));
	ex_add(&xs, XBIN("payload", "", 0));
	ex_add(&xs, XMAP("decoded", 0)); /* sendaddrv2 has no fields */
	expect_event(&r, "btc.node1.net.outbound_message.sendaddrv2", &xs);
}

Test(encode, net_message_4000000_byte_payload)
{
	size_t n = P2P_PAYLOAD_MAX;
	uint8_t *payload = malloc(n);
	for (size_t i = 0; i < n; i++)
		payload[i] = (uint8_t)(i * 7 + (i >> 13));
	struct ev_net_message b = { .peer_id = 3, .size = n };
	strcpy(b.addr, "127.0.0.1:18444");
	strcpy(b.conn_type, "manual");
	strcpy(b.msg_type, "block");
	struct rec r = rec_build(RECORD_EVENT, TP_NET_INBOUND_MESSAGE, 0, &b, sizeof(b), payload, n);
	struct expects xs = { .n = 0 };
	ex_common(&xs, "net:inbound_message");
	ex_add(&xs, XI("peer_id", 3));
	ex_add(&xs, XS("addr", "127.0.0.1:18444"));
	ex_add(&xs, XS("conn_type", "manual"));
	ex_add(&xs, XS("msg_type", "block"));
	ex_add(&xs, XU("size", n));
	ex_add(&xs, XBIN("payload", payload, n));
	ex_add(&xs, XS("decode_error", "oversized script_pubkey size: 3976723697428073734 "
					"(more than 33554432) at offset 24868"));
	expect_event(&r, "btc.node1.net.inbound_message.block", &xs);
	free(payload);
}

Test(encode, net_message_over_4000000_bytes_is_flagged_truncated)
{
	size_t n = P2P_PAYLOAD_MAX;
	uint8_t *payload = malloc(n);
	memset(payload, 0x5a, n);
	struct ev_net_message b = { .peer_id = 3, .size = UINT64_MAX };
	strcpy(b.addr, "127.0.0.1:18444");
	strcpy(b.conn_type, "manual");
	strcpy(b.msg_type, "block");
	struct rec r = rec_build(RECORD_EVENT, TP_NET_OUTBOUND_MESSAGE, TR(5), &b, sizeof(b),
				 payload, n);
	struct expects xs = { .n = 0 };
	ex_common(&xs, "net:outbound_message");
	ex_add(&xs, XI("peer_id", 3));
	ex_add(&xs, XS("addr", "127.0.0.1:18444"));
	ex_add(&xs, XS("conn_type", "manual"));
	ex_add(&xs, XS("msg_type", "block"));
	ex_add(&xs, XU("size", UINT64_MAX));
	ex_add(&xs, XBIN("payload", payload, n));
	ex_add(&xs, XB("payload_truncated", true));
	ex_add(&xs, XS("decode_error", "not decoded: the payload is incomplete (payload_truncated)"));
	expect_event(&r, "btc.node1.net.outbound_message.block", &xs);
	free(payload);
}

Test(encode, net_message_read_failed_payload_truncated_addr_odd_type)
{
	/* a 271-byte address (the buffer's worth) flagged truncated, a payload
	 * that could not be read (zeros), a message type a subject cannot carry */
	struct ev_net_message b = { .peer_id = -9, .size = 100 };
	memset(b.addr, 'a', ADDR_LEN - 1);
	strcpy(b.conn_type, "inbound");
	strcpy(b.msg_type, "we ird.\x7f");
	uint8_t payload[100] = { 0 };
	struct rec r = rec_build(RECORD_EVENT, TP_NET_INBOUND_MESSAGE, TR(1) | RF(5), &b, sizeof(b),
				 payload, sizeof(payload));
	char addr[ADDR_LEN];
	memset(addr, 'a', ADDR_LEN - 1);
	addr[ADDR_LEN - 1] = 0;
	struct expects xs = { .n = 0 };
	ex_common(&xs, "net:inbound_message");
	ex_add(&xs, XI("peer_id", -9));
	ex_add(&xs, XS("addr", addr));
	ex_add(&xs, XB("addr_truncated", true));
	ex_add(&xs, XS("conn_type", "inbound"));
	ex_add(&xs, XS("msg_type", "we ird.\x7f"));
	ex_add(&xs, XU("size", 100));
	ex_add(&xs, XBIN("payload", payload, sizeof(payload)));
	ex_add(&xs, XB("payload_read_failed", true));
	expect_event(&r, "btc.node1.net.inbound_message.we_ird__", &xs);
}

Test(encode, net_message_empty_type)
{
	struct ev_net_message b = { .peer_id = 1, .size = 1 };
	strcpy(b.addr, "1.2.3.4:8333");
	strcpy(b.conn_type, "feeler");
	uint8_t payload[1] = { 0xff };
	struct rec r = rec_build(RECORD_EVENT, TP_NET_INBOUND_MESSAGE, 0, &b, sizeof(b), payload, 1);
	struct expects xs = { .n = 0 };
	ex_common(&xs, "net:inbound_message");
	ex_add(&xs, XI("peer_id", 1));
	ex_add(&xs, XS("addr", "1.2.3.4:8333"));
	ex_add(&xs, XS("conn_type", "feeler"));
	ex_add(&xs, XS("msg_type", ""));
	ex_add(&xs, XU("size", 1));
	ex_add(&xs, XBIN("payload", payload, 1));
	expect_event(&r, "btc.node1.net.inbound_message._", &xs);
}

Test(encode, net_inbound_connection)
{
	struct ev_net_connection b = { .peer_id = 7, .existing_connections = UINT64_MAX,
				       .network = 1 };
	strcpy(b.addr, "203.0.113.5:51234");
	strcpy(b.conn_type, "inbound");
	struct rec r = REC_EVENT(TP_NET_INBOUND_CONNECTION, 0, &b);
	struct expects xs = { .n = 0 };
	ex_common(&xs, "net:inbound_connection");
	ex_add(&xs, XI("peer_id", 7));
	ex_add(&xs, XS("addr", "203.0.113.5:51234"));
	ex_add(&xs, XS("conn_type", "inbound"));
	ex_add(&xs, XU("network", 1));
	ex_add(&xs, XU("existing_connections", UINT64_MAX));
	expect_event(&r, "btc.node1.net.inbound_connection", &xs);
}

Test(encode, net_outbound_connection)
{
	struct ev_net_connection b = { .peer_id = 0, .existing_connections = 9, .network = 3 };
	strcpy(b.addr, "2g5qfdkn2vvcbqhzcyvyiitg4ceukybxklraxjnu7atlhd22gdwywaid.onion:8333");
	strcpy(b.conn_type, "block-relay-only");
	struct rec r = REC_EVENT(TP_NET_OUTBOUND_CONNECTION, 0, &b);
	struct expects xs = { .n = 0 };
	ex_common(&xs, "net:outbound_connection");
	ex_add(&xs, XI("peer_id", 0));
	ex_add(&xs, XS("addr", "2g5qfdkn2vvcbqhzcyvyiitg4ceukybxklraxjnu7atlhd22gdwywaid.onion:8333"));
	ex_add(&xs, XS("conn_type", "block-relay-only"));
	ex_add(&xs, XU("network", 3));
	ex_add(&xs, XU("existing_connections", 9));
	expect_event(&r, "btc.node1.net.outbound_connection", &xs);
}

Test(encode, net_closed_connection)
{
	struct ev_net_closed b = { .peer_id = 42, .time_established = INT64_MIN,
				   .network = UINT32_MAX };
	strcpy(b.conn_type, "addr-fetch");
	struct rec r = REC_EVENT(TP_NET_CLOSED_CONNECTION, 0, &b);
	struct expects xs = { .n = 0 };
	ex_common(&xs, "net:closed_connection");
	ex_add(&xs, XI("peer_id", 42));
	ex_add(&xs, XS("addr", ""));
	ex_add(&xs, XS("conn_type", "addr-fetch"));
	ex_add(&xs, XU("network", UINT32_MAX));
	ex_add(&xs, XI("time_established", INT64_MIN));
	expect_event(&r, "btc.node1.net.closed_connection", &xs);
}

Test(encode, net_evicted_inbound_connection)
{
	struct ev_net_closed b = { .peer_id = -1, .time_established = 1700000000, .network = 0 };
	strcpy(b.addr, "127.0.0.1:40000");
	strcpy(b.conn_type, "inbound");
	struct rec r = REC_EVENT(TP_NET_EVICTED_INBOUND_CONNECTION, 0, &b);
	struct expects xs = { .n = 0 };
	ex_common(&xs, "net:evicted_inbound_connection");
	ex_add(&xs, XI("peer_id", -1));
	ex_add(&xs, XS("addr", "127.0.0.1:40000"));
	ex_add(&xs, XS("conn_type", "inbound"));
	ex_add(&xs, XU("network", 0));
	ex_add(&xs, XI("time_established", 1700000000));
	expect_event(&r, "btc.node1.net.evicted_inbound_connection", &xs);
}

Test(encode, net_misbehaving_connection)
{
	struct ev_net_misbehaving b = { .peer_id = 5 };
	strcpy(b.message, "header with invalid proof of work");
	struct rec r = REC_EVENT(TP_NET_MISBEHAVING_CONNECTION, 0, &b);
	struct expects xs = { .n = 0 };
	ex_common(&xs, "net:misbehaving_connection");
	ex_add(&xs, XI("peer_id", 5));
	ex_add(&xs, XS("message", "header with invalid proof of work"));
	expect_event(&r, "btc.node1.net.misbehaving_connection", &xs);
}

Test(encode, net_misbehaving_connection_unread_peer_truncated_message)
{
	struct ev_net_misbehaving b = { .peer_id = 0 };
	memset(b.message, 'm', MISBEHAVING_LEN - 1);
	struct rec r = REC_EVENT(TP_NET_MISBEHAVING_CONNECTION, RF(0) | TR(1), &b);
	char msg[MISBEHAVING_LEN];
	memset(msg, 'm', MISBEHAVING_LEN - 1);
	msg[MISBEHAVING_LEN - 1] = 0;
	struct expects xs = { .n = 0 };
	ex_common(&xs, "net:misbehaving_connection");
	ex_add(&xs, XI("peer_id", 0));
	ex_add(&xs, XB("peer_id_read_failed", true));
	ex_add(&xs, XS("message", msg));
	ex_add(&xs, XB("message_truncated", true));
	expect_event(&r, "btc.node1.net.misbehaving_connection", &xs);
}

/* ---- validation ---- */

Test(encode, validation_block_connected)
{
	struct ev_block_connected b = { .height = INT32_MAX, .inputs = -1,
					.transactions = UINT64_MAX, .sigops = INT64_MIN,
					.duration_ns = INT64_MAX };
	hash_fill(b.block_hash, 1);
	uint8_t rev[32];
	reversed(b.block_hash, rev);
	cr_assert_eq(rev[0], 32);
	cr_assert_eq(rev[31], 1);
	struct rec r = REC_EVENT(TP_VALIDATION_BLOCK_CONNECTED, 0, &b);
	struct expects xs = { .n = 0 };
	ex_common(&xs, "validation:block_connected");
	ex_add(&xs, XBIN("block_hash", rev, 32));
	ex_add(&xs, XI("height", INT32_MAX));
	ex_add(&xs, XU("transactions", UINT64_MAX));
	ex_add(&xs, XI("inputs", -1));
	ex_add(&xs, XI("sigops", INT64_MIN));
	ex_add(&xs, XI("duration_ns", INT64_MAX));
	expect_event(&r, "btc.node1.validation.block_connected", &xs);
}

/* ---- utxocache ---- */

Test(encode, utxocache_flush)
{
	struct ev_utxocache_flush b = { .duration_us = -5, .mode = 4, .coins = UINT64_MAX,
					.memory_bytes = 123, .for_prune = 1 };
	struct rec r = REC_EVENT(TP_UTXOCACHE_FLUSH, 0, &b);
	struct expects xs = { .n = 0 };
	ex_common(&xs, "utxocache:flush");
	ex_add(&xs, XI("duration_us", -5));
	ex_add(&xs, XU("mode", 4));
	ex_add(&xs, XU("coins", UINT64_MAX));
	ex_add(&xs, XU("memory_bytes", 123));
	ex_add(&xs, XB("for_prune", true));
	expect_event(&r, "btc.node1.utxocache.flush", &xs);
}

static void utxo_coin(enum tracepoint_id tp, const char *event, const char *subject,
		      uint32_t vout, uint32_t height, int64_t value, bool coinbase)
{
	struct ev_utxocache_coin b = { .vout = vout, .height = height, .value = value,
				       .is_coinbase = coinbase };
	hash_fill(b.txid, (uint8_t)(0x40 + tp));
	uint8_t rev[32];
	reversed(b.txid, rev);
	struct rec r = REC_EVENT(tp, 0, &b);
	struct expects xs = { .n = 0 };
	ex_common(&xs, event);
	ex_add(&xs, XBIN("txid", rev, 32));
	ex_add(&xs, XU("vout", vout));
	ex_add(&xs, XU("height", height));
	ex_add(&xs, XI("value", value));
	ex_add(&xs, XB("is_coinbase", coinbase));
	expect_event(&r, subject, &xs);
}

Test(encode, utxocache_add)
{
	utxo_coin(TP_UTXOCACHE_ADD, "utxocache:add", "btc.node1.utxocache.add", UINT32_MAX, 0,
		  INT64_MIN, true);
}

Test(encode, utxocache_spent)
{
	utxo_coin(TP_UTXOCACHE_SPENT, "utxocache:spent", "btc.node1.utxocache.spent", 0, 840000,
		  5000000000, false);
}

Test(encode, utxocache_uncache)
{
	utxo_coin(TP_UTXOCACHE_UNCACHE, "utxocache:uncache", "btc.node1.utxocache.uncache", 1,
		  UINT32_MAX, -1, false);
}

/* ---- coin_selection ---- */

Test(encode, coin_selection_selected_coins)
{
	struct ev_selected_coins b = { .target = INT64_MAX, .waste = INT64_MIN,
				       .selected_value = 0 };
	strcpy(b.algorithm, "bnb"); /* wallet "": the default wallet */
	struct rec r = REC_EVENT(TP_COIN_SELECTION_SELECTED_COINS, 0, &b);
	struct expects xs = { .n = 0 };
	ex_common(&xs, "coin_selection:selected_coins");
	ex_add(&xs, XS("wallet", ""));
	ex_add(&xs, XS("algorithm", "bnb"));
	ex_add(&xs, XI("target", INT64_MAX));
	ex_add(&xs, XI("waste", INT64_MIN));
	ex_add(&xs, XI("selected_value", 0));
	expect_event(&r, "btc.node1.coin_selection.selected_coins", &xs);
}

Test(encode, coin_selection_normal_create_tx_internal)
{
	struct ev_normal_create_tx b = { .fee = INT64_MIN, .change_pos = -1, .success = 1 };
	strcpy(b.wallet, "w1");
	struct rec r = REC_EVENT(TP_COIN_SELECTION_NORMAL_CREATE_TX_INTERNAL, 0, &b);
	struct expects xs = { .n = 0 };
	ex_common(&xs, "coin_selection:normal_create_tx_internal");
	ex_add(&xs, XS("wallet", "w1"));
	ex_add(&xs, XB("success", true));
	ex_add(&xs, XI("fee", INT64_MIN));
	ex_add(&xs, XI("change_pos", -1));
	expect_event(&r, "btc.node1.coin_selection.normal_create_tx_internal", &xs);
}

Test(encode, coin_selection_attempting_aps_create_tx)
{
	/* a wallet name longer than its buffer: the first 255 bytes, flagged */
	struct ev_attempting_aps b;
	memset(b.wallet, 'w', WALLET_NAME_LEN - 1);
	b.wallet[WALLET_NAME_LEN - 1] = 0;
	struct rec r = REC_EVENT(TP_COIN_SELECTION_ATTEMPTING_APS_CREATE_TX, TR(0), &b);
	struct expects xs = { .n = 0 };
	ex_common(&xs, "coin_selection:attempting_aps_create_tx");
	ex_add(&xs, XS("wallet", b.wallet));
	ex_add(&xs, XB("wallet_truncated", true));
	expect_event(&r, "btc.node1.coin_selection.attempting_aps_create_tx", &xs);
}

Test(encode, coin_selection_aps_create_tx_internal)
{
	struct ev_aps_create_tx b = { .fee = 141, .change_pos = INT32_MIN, .use_aps = 0,
				      .success = 1 };
	strcpy(b.wallet, "hot wallet \xc3\xa9");
	struct rec r = REC_EVENT(TP_COIN_SELECTION_APS_CREATE_TX_INTERNAL, 0, &b);
	struct expects xs = { .n = 0 };
	ex_common(&xs, "coin_selection:aps_create_tx_internal");
	ex_add(&xs, XS("wallet", "hot wallet \xc3\xa9"));
	ex_add(&xs, XB("use_aps", false));
	ex_add(&xs, XB("success", true));
	ex_add(&xs, XI("fee", 141));
	ex_add(&xs, XI("change_pos", INT32_MIN));
	expect_event(&r, "btc.node1.coin_selection.aps_create_tx_internal", &xs);
}

/* ---- mempool ---- */

Test(encode, mempool_added)
{
	struct ev_mempool_added b = { .fee = INT64_MIN, .vsize = INT32_MIN };
	hash_fill(b.txid, 0x80);
	uint8_t rev[32];
	reversed(b.txid, rev);
	struct rec r = REC_EVENT(TP_MEMPOOL_ADDED, 0, &b);
	struct expects xs = { .n = 0 };
	ex_common(&xs, "mempool:added");
	ex_add(&xs, XBIN("txid", rev, 32));
	ex_add(&xs, XI("vsize", INT32_MIN));
	ex_add(&xs, XI("fee", INT64_MIN));
	expect_event(&r, "btc.node1.mempool.added", &xs);
}

Test(encode, mempool_removed)
{
	struct ev_mempool_removed b = { .fee = -1, .entry_time = UINT64_MAX, .vsize = 141 };
	hash_fill(b.txid, 0x90);
	strcpy(b.reason, "sizelimit");
	uint8_t rev[32];
	reversed(b.txid, rev);
	struct rec r = REC_EVENT(TP_MEMPOOL_REMOVED, 0, &b);
	struct expects xs = { .n = 0 };
	ex_common(&xs, "mempool:removed");
	ex_add(&xs, XBIN("txid", rev, 32));
	ex_add(&xs, XS("reason", "sizelimit"));
	ex_add(&xs, XI("vsize", 141));
	ex_add(&xs, XI("fee", -1));
	ex_add(&xs, XU("entry_time", UINT64_MAX));
	expect_event(&r, "btc.node1.mempool.removed", &xs);
}

Test(encode, mempool_replaced)
{
	struct ev_mempool_replaced b = { .replaced_fee = INT64_MIN, .replaced_entry_time = 1,
					 .replacement_fee = INT64_MAX, .replaced_vsize = INT32_MIN,
					 .replacement_vsize = INT32_MAX,
					 .replaced_by_transaction = 1 };
	hash_fill(b.replaced_txid, 0x10);
	hash_fill(b.replacement_txid, 0xc0);
	uint8_t rev1[32], rev2[32];
	reversed(b.replaced_txid, rev1);
	reversed(b.replacement_txid, rev2);
	struct rec r = REC_EVENT(TP_MEMPOOL_REPLACED, 0, &b);
	struct expects xs = { .n = 0 };
	ex_common(&xs, "mempool:replaced");
	ex_add(&xs, XBIN("replaced_txid", rev1, 32));
	ex_add(&xs, XI("replaced_vsize", INT32_MIN));
	ex_add(&xs, XI("replaced_fee", INT64_MIN));
	ex_add(&xs, XU("replaced_entry_time", 1));
	ex_add(&xs, XBIN("replacement_id", rev2, 32));
	ex_add(&xs, XI("replacement_vsize", INT32_MAX));
	ex_add(&xs, XI("replacement_fee", INT64_MAX));
	ex_add(&xs, XB("replaced_by_transaction", true));
	expect_event(&r, "btc.node1.mempool.replaced", &xs);
}

Test(encode, mempool_rejected)
{
	struct ev_mempool_rejected b;
	memset(&b, 0, sizeof(b));
	hash_fill(b.txid, 0xe0);
	strcpy(b.reason, "min relay fee not met");
	uint8_t rev[32];
	reversed(b.txid, rev);
	struct rec r = REC_EVENT(TP_MEMPOOL_REJECTED, 0, &b);
	struct expects xs = { .n = 0 };
	ex_common(&xs, "mempool:rejected");
	ex_add(&xs, XBIN("txid", rev, 32));
	ex_add(&xs, XS("reason", "min relay fee not met"));
	expect_event(&r, "btc.node1.mempool.rejected", &xs);
}

Test(encode, mempool_rejected_unread_txid_and_reason)
{
	struct ev_mempool_rejected b;
	memset(&b, 0, sizeof(b));
	uint8_t zero[32] = { 0 };
	struct rec r = REC_EVENT(TP_MEMPOOL_REJECTED, RF(0) | RF(1), &b);
	struct expects xs = { .n = 0 };
	ex_common(&xs, "mempool:rejected");
	ex_add(&xs, XBIN("txid", zero, 32));
	ex_add(&xs, XB("txid_read_failed", true));
	ex_add(&xs, XS("reason", ""));
	ex_add(&xs, XB("reason_read_failed", true));
	expect_event(&r, "btc.node1.mempool.rejected", &xs);
}

/* ---- key order: common keys first, then the arguments in order, each
 * flag key right after its argument ---- */

Test(encode, key_order)
{
	struct ev_mempool_rejected b;
	memset(&b, 0, sizeof(b));
	struct rec r = REC_EVENT(TP_MEMPOOL_REJECTED, RF(0), &b);
	const msgpack_object *m = enc_ok(&enc, &r, &unp);
	const char *order[] = { "stream_id", "seq", "time_ns", "pid", "tid", "node", "event",
				"txid", "txid_read_failed", "reason" };
	cr_assert_eq(m->via.map.size, 10);
	for (int i = 0; i < 10; i++)
		cr_assert(obj_is_str(&m->via.map.ptr[i].key, order[i]), "key %d", i);
	rec_free(&r);
}

/* ---- the collector's records ---- */

Test(encode, extractor_loss)
{
	struct rec_loss b;
	memset(&b, 0, sizeof(b));
	b.tp[TP_MEMPOOL_ADDED].bpf_drops = 3;
	b.tp[TP_NET_INBOUND_MESSAGE].incomplete = 2;
	b.tp[TP_NET_INBOUND_MESSAGE].queue_drops = 5;
	struct rec r = rec_build(RECORD_LOSS, TP_NONE, 0, &b, sizeof(b), NULL, 0);
	const msgpack_object *m = enc_ok(&enc, &r, &unp);
	cr_assert_str_eq(enc.subject, "btc.node1.extractor.loss");
	struct expects xs = { .n = 0 };
	ex_common(&xs, "extractor:loss");
	ex_add(&xs, XU("lost_total", 10));
	/* `lost` is checked below; checking the top level with a stand-in */
	struct expects top = xs;
	for (int i = 0; i < top.n; i++)
		cr_assert_not_null(map_get(m, top.x[i].key), "%s", top.x[i].key);
	cr_assert_eq(m->via.map.size, (uint32_t)xs.n + 1);
	for (int i = 0; i < xs.n; i++)
		check_value(xs.x[i].key, map_get(m, xs.x[i].key), &xs.x[i]);
	const msgpack_object *lost = map_get(m, "lost");
	cr_assert_not_null(lost);
	cr_assert_eq(lost->type, MSGPACK_OBJECT_MAP);
	cr_assert_eq(lost->via.map.size, 2);
	struct expects a = { .n = 0 }, c = { .n = 0 };
	ex_add(&a, XU("bpf_drops", 3));
	ex_add(&a, XU("queue_drops", 0));
	ex_add(&a, XU("incomplete", 0));
	ex_add(&c, XU("bpf_drops", 0));
	ex_add(&c, XU("queue_drops", 5));
	ex_add(&c, XU("incomplete", 2));
	check_map(map_get(lost, "mempool:added"), &a);
	check_map(map_get(lost, "net:inbound_message"), &c);
	rec_free(&r);
}

Test(encode, extractor_loss_total_saturates_and_unknown_id)
{
	struct rec_loss b;
	memset(&b, 0, sizeof(b));
	b.tp[TP_NONE].queue_drops = 1;
	b.tp[TP_MEMPOOL_ADDED].bpf_drops = UINT64_MAX;
	b.tp[TP_MEMPOOL_REMOVED].bpf_drops = UINT64_MAX;
	struct rec r = rec_build(RECORD_LOSS, TP_NONE, 0, &b, sizeof(b), NULL, 0);
	const msgpack_object *m = enc_ok(&enc, &r, &unp);
	struct expect total = XU("lost_total", UINT64_MAX);
	check_value("lost_total", map_get(m, "lost_total"), &total);
	const msgpack_object *lost = map_get(m, "lost");
	cr_assert_eq(lost->via.map.size, 3);
	struct expects u = { .n = 0 };
	ex_add(&u, XU("bpf_drops", 0));
	ex_add(&u, XU("queue_drops", 1));
	ex_add(&u, XU("incomplete", 0));
	check_map(map_get(lost, "unknown"), &u);
	rec_free(&r);
}

Test(encode, extractor_loss_empty)
{
	struct rec_loss b;
	memset(&b, 0, sizeof(b));
	struct rec r = rec_build(RECORD_LOSS, TP_NONE, 0, &b, sizeof(b), NULL, 0);
	const msgpack_object *m = enc_ok(&enc, &r, &unp);
	cr_assert_eq(map_get(m, "lost")->via.map.size, 0);
	cr_assert_eq(map_get(m, "lost_total")->via.u64, 0);
	rec_free(&r);
}

static void check_names(const msgpack_object *arr, const char *const *names, int n)
{
	cr_assert_eq(arr->type, MSGPACK_OBJECT_ARRAY);
	cr_assert_eq(arr->via.array.size, (uint32_t)n);
	for (int i = 0; i < n; i++)
		cr_assert(obj_is_str(&arr->via.array.ptr[i], names[i]), "attached[%d]", i);
}

Test(encode, extractor_collector_stats)
{
	struct rec_stats b;
	memset(&b, 0, sizeof(b));
	b.queue_capacity = 1ull << 28;
	b.queue_used = 4096;
	b.uptime_ns = UINT64_MAX;
	b.attached = (1u << TP_MEMPOOL_ADDED) | (1u << TP_NET_INBOUND_MESSAGE);
	b.tp[TP_MEMPOOL_ADDED].events = 100;
	b.tp[TP_MEMPOOL_ADDED].lost.bpf_drops = 1;
	b.tp[TP_UTXOCACHE_ADD].lost.queue_drops = 7; /* not attached (any more): still listed */
	struct rec r = rec_build(RECORD_STATS, TP_NONE, 0, &b, sizeof(b), NULL, 0);
	const msgpack_object *m = enc_ok(&enc, &r, &unp);
	cr_assert_str_eq(enc.subject, "btc.node1.extractor.collector_stats");
	struct expects xs = { .n = 0 };
	ex_common(&xs, "extractor:collector_stats");
	ex_add(&xs, XU("queue_capacity", 1ull << 28));
	ex_add(&xs, XU("queue_used", 4096));
	ex_add(&xs, XU("uptime_ns", UINT64_MAX));
	cr_assert_eq(m->via.map.size, (uint32_t)xs.n + 2);
	for (int i = 0; i < xs.n; i++)
		check_value(xs.x[i].key, map_get(m, xs.x[i].key), &xs.x[i]);
	const char *names[] = { "net:inbound_message", "mempool:added" };
	check_names(map_get(m, "attached"), names, 2);
	const msgpack_object *tps = map_get(m, "tracepoints");
	cr_assert_eq(tps->type, MSGPACK_OBJECT_MAP);
	cr_assert_eq(tps->via.map.size, 3);
	struct expects a = { .n = 0 }, b1 = { .n = 0 }, c = { .n = 0 };
	ex_add(&a, XU("events", 0));
	ex_add(&a, XU("bpf_drops", 0));
	ex_add(&a, XU("queue_drops", 0));
	ex_add(&a, XU("incomplete", 0));
	check_map(map_get(tps, "net:inbound_message"), &a);
	ex_add(&b1, XU("events", 100));
	ex_add(&b1, XU("bpf_drops", 1));
	ex_add(&b1, XU("queue_drops", 0));
	ex_add(&b1, XU("incomplete", 0));
	check_map(map_get(tps, "mempool:added"), &b1);
	ex_add(&c, XU("events", 0));
	ex_add(&c, XU("bpf_drops", 0));
	ex_add(&c, XU("queue_drops", 7));
	ex_add(&c, XU("incomplete", 0));
	check_map(map_get(tps, "utxocache:add"), &c);
	rec_free(&r);
}

Test(encode, extractor_started)
{
	struct rec_started b;
	memset(&b, 0, sizeof(b));
	strcpy(b.version, "0.1.0");
	b.attach_mode = ATTACH_PERF;
	b.filter_pid = 0;
	b.attached = (1u << TP_VALIDATION_BLOCK_CONNECTED) | (1u << TP_MEMPOOL_REJECTED) |
		     (1u << TP_NET_OUTBOUND_MESSAGE);
	struct rec r = rec_build(RECORD_STARTED, TP_NONE, 0, &b, sizeof(b), NULL, 0);
	const msgpack_object *m = enc_ok(&enc, &r, &unp);
	cr_assert_str_eq(enc.subject, "btc.node1.extractor.started");
	struct expects xs = { .n = 0 };
	ex_common(&xs, "extractor:started");
	ex_add(&xs, XS("version", "0.1.0"));
	ex_add(&xs, XS("attach_mode", "perf"));
	ex_add(&xs, XU("filter_pid", 0));
	cr_assert_eq(m->via.map.size, (uint32_t)xs.n + 1);
	for (int i = 0; i < xs.n; i++)
		check_value(xs.x[i].key, map_get(m, xs.x[i].key), &xs.x[i]);
	const char *names[] = { "net:outbound_message", "validation:block_connected",
				"mempool:rejected" };
	check_names(map_get(m, "attached"), names, 3);
	rec_free(&r);

	b.attach_mode = ATTACH_MULTI;
	b.filter_pid = UINT32_MAX;
	b.attached = 0;
	r = rec_build(RECORD_STARTED, TP_NONE, 0, &b, sizeof(b), NULL, 0);
	msgpack_unpacked_destroy(&unp);
	m = enc_ok(&enc, &r, &unp);
	struct expect mode = XS("attach_mode", "multi"), pid = XU("filter_pid", UINT32_MAX);
	check_value("attach_mode", map_get(m, "attach_mode"), &mode);
	check_value("filter_pid", map_get(m, "filter_pid"), &pid);
	check_names(map_get(m, "attached"), NULL, 0);
	rec_free(&r);
}

Test(encode, extractor_publisher_stats)
{
	struct publisher_stats st = {
		.stream_id = T_STREAM, .published = 1, .published_bytes = 2, .confirmed_seq = 3,
		.last_read_seq = 4, .refused_too_large = 5, .malformed = 6, .nats_errors = 7,
		.reconnects = 8, .decode_errors = 10, .queue_used = 9, .queue_capacity = UINT64_MAX,
		.connected = true, .collector_present = false,
	};
	cr_assert_eq(encode_publisher_stats(&enc, &st, 123456789), ENCODE_OK);
	cr_assert_str_eq(enc.subject, "btc.node1.extractor.publisher_stats");
	const msgpack_object *m = dec(&enc, &unp);
	struct expects xs = { .n = 0 };
	ex_add(&xs, XU("stream_id", T_STREAM));
	ex_add(&xs, XU("time_ns", 123456789));
	ex_add(&xs, XU("pid", (uint64_t)getpid()));
	ex_add(&xs, XS("node", T_NODE));
	ex_add(&xs, XS("event", "extractor:publisher_stats"));
	ex_add(&xs, XU("published", 1));
	ex_add(&xs, XU("published_bytes", 2));
	ex_add(&xs, XU("confirmed_seq", 3));
	ex_add(&xs, XU("last_read_seq", 4));
	ex_add(&xs, XU("refused_too_large", 5));
	ex_add(&xs, XU("malformed", 6));
	ex_add(&xs, XU("decode_errors", 10));
	ex_add(&xs, XU("nats_errors", 7));
	ex_add(&xs, XU("reconnects", 8));
	ex_add(&xs, XU("queue_used", 9));
	ex_add(&xs, XU("queue_capacity", UINT64_MAX));
	ex_add(&xs, XB("connected", true));
	ex_add(&xs, XB("collector_present", false));
	check_map(m, &xs);
}

/* ---- the buffer ---- */

Test(encode, buffer_is_reused)
{
	struct ev_mempool_added b = { .fee = 1, .vsize = 2 };
	struct rec r = REC_EVENT(TP_MEMPOOL_ADDED, 0, &b);
	char err[ENCODE_ERROR_LEN];
	cr_assert_eq(encode_record(&enc, 1, 1, r.data, r.len, err), ENCODE_OK);
	size_t size = enc.buf.size;
	char *data = enc.buf.data;
	for (int i = 0; i < 1000; i++) {
		cr_assert_eq(encode_record(&enc, 1, (uint64_t)i, r.data, r.len, err), ENCODE_OK);
		cr_assert_eq(enc.buf.data, data, "no new buffer per record");
	}
	cr_assert_eq(encode_record(&enc, 1, 1, r.data, r.len, err), ENCODE_OK);
	cr_assert_eq(enc.buf.size, size, "cleared between records");
	rec_free(&r);
}

Test(encode, unaligned_record)
{
	struct ev_utxocache_flush b = { .duration_us = 1, .mode = 2, .coins = 3,
					.memory_bytes = 4, .for_prune = 0 };
	struct rec r = REC_EVENT(TP_UTXOCACHE_FLUSH, 0, &b);
	unsigned char *odd = malloc(r.len + 1);
	memcpy(odd + 1, r.data, r.len);
	char err[ENCODE_ERROR_LEN];
	cr_assert_eq(encode_record(&enc, 1, 1, odd + 1, r.len, err), ENCODE_OK, "%s", err);
	const msgpack_object *m = dec(&enc, &unp);
	cr_assert_eq(map_get(m, "coins")->via.u64, 3);
	free(odd);
	rec_free(&r);
}

Test(encode, null_err_is_fine)
{
	struct rec r = rec_build(99, 0, 0, NULL, 0, NULL, 0);
	cr_assert_eq(encode_record(&enc, 1, 1, r.data, r.len, NULL), ENCODE_MALFORMED);
	cr_assert_eq(encode_record(&enc, 1, 1, NULL, 0, NULL), ENCODE_MALFORMED);
	rec_free(&r);
}
