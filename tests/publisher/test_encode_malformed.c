/* Every validation of encode_record: the record is refused with
 * ENCODE_MALFORMED and this exact message, the output is empty, and (with
 * -DSANITIZE=ON) nothing is read outside the record, which always sits in
 * a malloc'd buffer of exactly its length. Last, random corruptions of
 * valid records: encoded (and decodable) or refused, never a crash. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "event_fields.h"
#include "helpers.h"
#include "record.h"

#define RF(i) RECORD_FLAG_READ_FAILED(i)
#define TR(i) RECORD_FLAG_TRUNCATED(i)
#define HDR sizeof(struct record_header)

static struct encoder enc;

static void setup(void)
{
	enc_init(&enc);
}

static void teardown(void)
{
	encoder_free(&enc);
}

TestSuite(malformed, .init = setup, .fini = teardown);

static void refused(struct rec r, const char *message)
{
	enc_malformed(&enc, &r, message);
	rec_free(&r);
}

/* a valid record first, so a refusal also clears what was there */
static void prime(void)
{
	struct ev_mempool_added b = { .fee = 1 };
	struct rec r = REC_EVENT(TP_MEMPOOL_ADDED, 0, &b);
	char err[ENCODE_ERROR_LEN];
	cr_assert_eq(encode_record(&enc, 1, 1, r.data, r.len, err), ENCODE_OK);
	cr_assert_gt(enc.buf.size, 0);
	rec_free(&r);
}

static struct rec with_length(struct rec r, uint32_t header_length)
{
	struct record_header h;
	memcpy(&h, r.data, sizeof(h));
	h.length = header_length;
	memcpy(r.data, &h, sizeof(h));
	return r;
}

/* ---- framing ---- */

Test(malformed, shorter_than_a_header)
{
	prime();
	for (uint32_t len = 0; len < HDR; len++) {
		unsigned char *p = malloc(len ? len : 1);
		memset(p, 0, len ? len : 1);
		char want[128];
		snprintf(want, sizeof(want), "record of %u bytes is shorter than its 32-byte header",
			 len);
		struct rec r = { p, len };
		enc_malformed(&enc, &r, want);
		free(p);
	}
	char err[ENCODE_ERROR_LEN];
	cr_assert_eq(encode_record(&enc, 1, 1, NULL, 100, err), ENCODE_MALFORMED);
	cr_assert_str_eq(err, "record of 100 bytes is shorter than its 32-byte header");
}

Test(malformed, header_length_differs_from_the_frame)
{
	struct ev_mempool_added b = { 0 };
	prime();
	refused(with_length(REC_EVENT(TP_MEMPOOL_ADDED, 0, &b), 79),
		"record header says 79 bytes, the queue frame 80");
	refused(with_length(REC_EVENT(TP_MEMPOOL_ADDED, 0, &b), UINT32_MAX),
		"record header says 4294967295 bytes, the queue frame 80");
}

Test(malformed, kinds)
{
	prime();
	refused(rec_build(0, 0, 0, NULL, 0, NULL, 0), "unknown record kind 0");
	refused(rec_build(6, 0, 0, NULL, 0, NULL, 0), "unknown record kind 6");
	refused(rec_build(UINT16_MAX, 1, 0, NULL, 0, NULL, 0), "unknown record kind 65535");
	struct ev_chunk c = { .offset = 0, .data_len = 0 };
	refused(rec_build(RECORD_CHUNK, TP_NET_INBOUND_MESSAGE, 0, &c, sizeof(c), NULL, 0),
		"chunk record (kind 2) in the queue: the collector joins chunks before the queue");
}

Test(malformed, tracepoint_ids)
{
	struct ev_mempool_added b = { 0 };
	prime();
	refused(rec_build(RECORD_EVENT, TP_NONE, 0, &b, sizeof(b), NULL, 0),
		"event record with unknown tracepoint id 0");
	refused(rec_build(RECORD_EVENT, TP_COUNT, 0, &b, sizeof(b), NULL, 0),
		"event record with unknown tracepoint id 21");
	refused(rec_build(RECORD_EVENT, UINT16_MAX, 0, &b, sizeof(b), NULL, 0),
		"event record with unknown tracepoint id 65535");
	struct rec_loss l = { 0 };
	refused(rec_build(RECORD_LOSS, TP_MEMPOOL_ADDED, 0, &l, sizeof(l), NULL, 0),
		"collector record (kind 3) with tracepoint id 17, expected 0");
	refused(rec_build(RECORD_LOSS, 0, RF(0), &l, sizeof(l), NULL, 0),
		"collector record (kind 3) with flags 0x00000001, expected 0");
	struct rec_started s = { .attach_mode = ATTACH_MULTI };
	refused(rec_build(RECORD_STARTED, 0, TR(15), &s, sizeof(s), NULL, 0),
		"collector record (kind 5) with flags 0x80000000, expected 0");
}

/* ---- lengths ---- */

Test(malformed, fixed_event_lengths)
{
	prime();
	for (int tp = 1; tp < TP_COUNT; tp++) {
		const struct event_layout *l = &event_layouts[tp];
		if (tp == TP_NET_INBOUND_MESSAGE || tp == TP_NET_OUTBOUND_MESSAGE)
			continue;
		const char *ev[] = { [TP_NET_INBOUND_CONNECTION] = "net:inbound_connection",
				     [TP_NET_OUTBOUND_CONNECTION] = "net:outbound_connection",
				     [TP_NET_CLOSED_CONNECTION] = "net:closed_connection",
				     [TP_NET_EVICTED_INBOUND_CONNECTION] = "net:evicted_inbound_connection",
				     [TP_NET_MISBEHAVING_CONNECTION] = "net:misbehaving_connection",
				     [TP_VALIDATION_BLOCK_CONNECTED] = "validation:block_connected",
				     [TP_UTXOCACHE_FLUSH] = "utxocache:flush",
				     [TP_UTXOCACHE_ADD] = "utxocache:add",
				     [TP_UTXOCACHE_SPENT] = "utxocache:spent",
				     [TP_UTXOCACHE_UNCACHE] = "utxocache:uncache",
				     [TP_COIN_SELECTION_SELECTED_COINS] = "coin_selection:selected_coins",
				     [TP_COIN_SELECTION_NORMAL_CREATE_TX_INTERNAL] =
					     "coin_selection:normal_create_tx_internal",
				     [TP_COIN_SELECTION_ATTEMPTING_APS_CREATE_TX] =
					     "coin_selection:attempting_aps_create_tx",
				     [TP_COIN_SELECTION_APS_CREATE_TX_INTERNAL] =
					     "coin_selection:aps_create_tx_internal",
				     [TP_MEMPOOL_ADDED] = "mempool:added",
				     [TP_MEMPOOL_REMOVED] = "mempool:removed",
				     [TP_MEMPOOL_REPLACED] = "mempool:replaced",
				     [TP_MEMPOOL_REJECTED] = "mempool:rejected" };
		size_t sizes[] = { 0, 1, l->body_size - 8, l->body_size - 1, l->body_size + 1,
				   l->body_size + 8, l->body_size + 4096 };
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			size_t n = sizes[i];
			unsigned char *big = calloc(1, n + 1);
			struct rec r = rec_build(RECORD_EVENT, (uint16_t)tp, 0, big, n, NULL, 0);
			char want[200];
			snprintf(want, sizeof(want),
				 "%s: record of %zu bytes, expected %zu (32-byte header + %zu-byte body)",
				 ev[tp], HDR + n, HDR + l->body_size, l->body_size);
			refused(r, want);
			free(big);
		}
	}
}

Test(malformed, named_fixed_lengths)
{
	/* the same rule spelled out once, not derived from the table */
	struct ev_mempool_added b = { 0 };
	prime();
	refused(rec_build(RECORD_EVENT, TP_MEMPOOL_ADDED, 0, &b, sizeof(b) - 8, NULL, 0),
		"mempool:added: record of 72 bytes, expected 80 (32-byte header + 48-byte body)");
	unsigned char more[sizeof(b) + 1] = { 0 };
	refused(rec_build(RECORD_EVENT, TP_MEMPOOL_ADDED, 0, more, sizeof(more), NULL, 0),
		"mempool:added: record of 81 bytes, expected 80 (32-byte header + 48-byte body)");
}

Test(malformed, p2p_lengths)
{
	prime();
	struct ev_net_message b = { .peer_id = 1, .size = 10 };
	strcpy(b.msg_type, "ping");
	uint8_t payload[12] = { 0 };
	/* shorter than header and body */
	refused(rec_build(RECORD_EVENT, TP_NET_INBOUND_MESSAGE, 0, &b, 100, NULL, 0),
		"net:inbound_message: record of 132 bytes is shorter than its header and body (384 bytes)");
	refused(rec_build(RECORD_EVENT, TP_NET_OUTBOUND_MESSAGE, 0, &b, sizeof(b) - 1, NULL, 0),
		"net:outbound_message: record of 383 bytes is shorter than its header and body (384 bytes)");
	/* payload length != size */
	refused(rec_build(RECORD_EVENT, TP_NET_INBOUND_MESSAGE, 0, &b, sizeof(b), payload, 9),
		"net:inbound_message: 9 payload bytes, but size 10 means 10");
	refused(rec_build(RECORD_EVENT, TP_NET_INBOUND_MESSAGE, 0, &b, sizeof(b), payload, 11),
		"net:inbound_message: 11 payload bytes, but size 10 means 10");
	refused(rec_build(RECORD_EVENT, TP_NET_INBOUND_MESSAGE, 0, &b, sizeof(b), NULL, 0),
		"net:inbound_message: 0 payload bytes, but size 10 means 10");
	b.size = 0;
	refused(rec_build(RECORD_EVENT, TP_NET_INBOUND_MESSAGE, 0, &b, sizeof(b), payload, 1),
		"net:inbound_message: 1 payload bytes, but size 0 means 0");
	/* over the maximum: the payload must be exactly 4000000 bytes */
	b.size = UINT64_MAX;
	refused(rec_build(RECORD_EVENT, TP_NET_INBOUND_MESSAGE, TR(5), &b, sizeof(b), payload, 12),
		"net:inbound_message: 12 payload bytes, but size 18446744073709551615 means 4000000");
}

Test(malformed, p2p_truncation_flag_must_match_size)
{
	prime();
	struct ev_net_message b = { .peer_id = 1, .size = 4 };
	uint8_t payload[4] = { 1, 2, 3, 4 };
	refused(rec_build(RECORD_EVENT, TP_NET_INBOUND_MESSAGE, TR(5), &b, sizeof(b), payload, 4),
		"net:inbound_message: size 4 fits in 4000000 bytes, but the payload truncated flag is set");
	b.size = P2P_PAYLOAD_MAX + 1ull;
	uint8_t *big = calloc(1, P2P_PAYLOAD_MAX);
	refused(rec_build(RECORD_EVENT, TP_NET_INBOUND_MESSAGE, 0, &b, sizeof(b), big,
			  P2P_PAYLOAD_MAX),
		"net:inbound_message: size 4000001 is over 4000000 bytes, but the payload truncated flag is missing");
	free(big);
}

/* ---- flags ---- */

Test(malformed, flags_naming_no_argument)
{
	prime();
	struct ev_mempool_added b = { 0 };
	refused(REC_EVENT(TP_MEMPOOL_ADDED, RF(3), &b),
		"mempool:added: flags 0x00000008: read-failed flag for argument 3, but it has 3 arguments");
	refused(REC_EVENT(TP_MEMPOOL_ADDED, RF(15), &b),
		"mempool:added: flags 0x00008000: read-failed flag for argument 15, but it has 3 arguments");
	refused(REC_EVENT(TP_MEMPOOL_ADDED, TR(7), &b),
		"mempool:added: flags 0x00800000: truncated flag for argument 7, but it has 3 arguments");
	refused(REC_EVENT(TP_MEMPOOL_ADDED, RF(0) | TR(15), &b),
		"mempool:added: flags 0x80000001: truncated flag for argument 15, but it has 3 arguments");
	struct ev_attempting_aps w = { "x" };
	refused(REC_EVENT(TP_COIN_SELECTION_ATTEMPTING_APS_CREATE_TX, RF(1), &w),
		"coin_selection:attempting_aps_create_tx: flags 0x00000002: read-failed flag for argument 1, but it has 1 arguments");
}

Test(malformed, truncated_flag_on_a_non_string)
{
	prime();
	struct ev_mempool_added b = { 0 };
	refused(REC_EVENT(TP_MEMPOOL_ADDED, TR(0), &b),
		"mempool:added: flags 0x00010000: truncated flag on txid, which is not a string");
	refused(REC_EVENT(TP_MEMPOOL_ADDED, TR(2), &b),
		"mempool:added: flags 0x00040000: truncated flag on fee, which is not a string");
	struct ev_utxocache_flush f = { 0 };
	refused(REC_EVENT(TP_UTXOCACHE_FLUSH, TR(4), &f),
		"utxocache:flush: flags 0x00100000: truncated flag on for_prune, which is not a string");
	struct ev_net_message m = { 0 };
	refused(rec_build(RECORD_EVENT, TP_NET_INBOUND_MESSAGE, TR(4), &m, sizeof(m), NULL, 0),
		"net:inbound_message: flags 0x00100000: truncated flag on size, which is not a string");
}

/* ---- values ---- */

Test(malformed, string_without_nul)
{
	prime();
	struct ev_mempool_removed r = { 0 };
	memset(r.reason, 'x', sizeof(r.reason));
	refused(REC_EVENT(TP_MEMPOOL_REMOVED, 0, &r),
		"mempool:removed: string reason has no NUL in its 32-byte buffer");
	/* flagged truncated makes no difference: the buffer must still hold a NUL */
	refused(REC_EVENT(TP_MEMPOOL_REMOVED, TR(1), &r),
		"mempool:removed: string reason has no NUL in its 32-byte buffer");

	struct ev_net_message m = { .size = 0 };
	memset(m.msg_type, 'v', sizeof(m.msg_type));
	refused(rec_build(RECORD_EVENT, TP_NET_INBOUND_MESSAGE, 0, &m, sizeof(m), NULL, 0),
		"net:inbound_message: string msg_type has no NUL in its 32-byte buffer");
	memset(m.msg_type, 0, sizeof(m.msg_type));
	memset(m.addr, 'a', sizeof(m.addr));
	refused(rec_build(RECORD_EVENT, TP_NET_OUTBOUND_MESSAGE, TR(1), &m, sizeof(m), NULL, 0),
		"net:outbound_message: string addr has no NUL in its 272-byte buffer");

	struct ev_selected_coins s = { 0 };
	strcpy(s.wallet, "w");
	memset(s.algorithm, 'k', sizeof(s.algorithm));
	refused(REC_EVENT(TP_COIN_SELECTION_SELECTED_COINS, 0, &s),
		"coin_selection:selected_coins: string algorithm has no NUL in its 32-byte buffer");
}

Test(malformed, bool_not_0_or_1)
{
	prime();
	struct ev_utxocache_coin c = { .is_coinbase = 2 };
	refused(REC_EVENT(TP_UTXOCACHE_SPENT, 0, &c),
		"utxocache:spent: bool is_coinbase is 2, not 0 or 1");
	struct ev_aps_create_tx a = { .use_aps = 1, .success = 255 };
	refused(REC_EVENT(TP_COIN_SELECTION_APS_CREATE_TX_INTERNAL, 0, &a),
		"coin_selection:aps_create_tx_internal: bool success is 255, not 0 or 1");
}

Test(malformed, read_failed_value_not_zero)
{
	prime();
	struct ev_mempool_added b = { .fee = 0, .vsize = 7 };
	refused(REC_EVENT(TP_MEMPOOL_ADDED, RF(1), &b),
		"mempool:added: vsize is flagged as not read but its bytes are not zero");
	struct ev_mempool_rejected r = { 0 };
	r.txid[31] = 1;
	refused(REC_EVENT(TP_MEMPOOL_REJECTED, RF(0), &r),
		"mempool:rejected: txid is flagged as not read but its bytes are not zero");
	memset(&r, 0, sizeof(r));
	strcpy(r.reason, "x");
	refused(REC_EVENT(TP_MEMPOOL_REJECTED, RF(1), &r),
		"mempool:rejected: reason is flagged as not read but its bytes are not zero");
}

/* ---- the collector's records ---- */

Test(malformed, collector_record_lengths)
{
	prime();
	unsigned char big[1024] = { 0 };
	refused(rec_build(RECORD_LOSS, 0, 0, big, sizeof(struct rec_loss) - 1, NULL, 0),
		"extractor:loss: record of 535 bytes, expected 536 (32-byte header + 504-byte body)");
	refused(rec_build(RECORD_LOSS, 0, 0, big, 0, NULL, 0),
		"extractor:loss: record of 32 bytes, expected 536 (32-byte header + 504-byte body)");
	refused(rec_build(RECORD_STATS, 0, 0, big, sizeof(struct rec_stats) + 8, NULL, 0),
		"extractor:collector_stats: record of 744 bytes, expected 736 (32-byte header + 704-byte body)");
	refused(rec_build(RECORD_STARTED, 0, 0, big, 40, NULL, 0),
		"extractor:started: record of 72 bytes, expected 80 (32-byte header + 48-byte body)");
}

Test(malformed, attached_masks)
{
	prime();
	struct rec_stats s;
	memset(&s, 0, sizeof(s));
	s.attached = 1; /* bit 0 is TP_NONE */
	refused(rec_build(RECORD_STATS, 0, 0, &s, sizeof(s), NULL, 0),
		"extractor:collector_stats: attached mask 0x00000001 has bits that name no tracepoint");
	s.attached = 1u << TP_COUNT;
	refused(rec_build(RECORD_STATS, 0, 0, &s, sizeof(s), NULL, 0),
		"extractor:collector_stats: attached mask 0x00200000 has bits that name no tracepoint");
	struct rec_started st = { .version = "1", .attach_mode = ATTACH_MULTI,
				  .attached = 0x80000002u };
	refused(rec_build(RECORD_STARTED, 0, 0, &st, sizeof(st), NULL, 0),
		"extractor:started: attached mask 0x80000002 has bits that name no tracepoint");
}

Test(malformed, started_values)
{
	prime();
	struct rec_started st;
	memset(&st, 0, sizeof(st));
	memset(st.version, '1', sizeof(st.version));
	st.attach_mode = ATTACH_MULTI;
	refused(rec_build(RECORD_STARTED, 0, 0, &st, sizeof(st), NULL, 0),
		"extractor:started: string version has no NUL in its 32-byte buffer");
	strcpy(st.version, "0.1.0");
	st.attach_mode = ATTACH_AUTO;
	refused(rec_build(RECORD_STARTED, 0, 0, &st, sizeof(st), NULL, 0),
		"extractor:started: attach mode 0 is neither 1 (multi) nor 2 (perf)");
	st.attach_mode = 3;
	refused(rec_build(RECORD_STARTED, 0, 0, &st, sizeof(st), NULL, 0),
		"extractor:started: attach mode 3 is neither 1 (multi) nor 2 (perf)");
}

/* ---- random corruption: accepted and decodable, or refused ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

Test(malformed, random_corruption_never_crashes)
{
	static unsigned char body[1024];
	int ok = 0, bad = 0;
	for (int iter = 0; iter < 20000; iter++) {
		memset(body, 0, sizeof(body));
		uint16_t kind = RECORD_EVENT, tp = (uint16_t)(1 + next() % (TP_COUNT - 1));
		size_t body_size = event_layouts[tp].body_size, payload = 0;
		if (iter % 10 == 0) {
			kind = (uint16_t)(RECORD_LOSS + next() % 3);
			tp = 0;
			body_size = kind == RECORD_LOSS    ? sizeof(struct rec_loss)
				    : kind == RECORD_STATS ? sizeof(struct rec_stats)
							   : sizeof(struct rec_started);
			if (kind == RECORD_STARTED)
				body[32] = ATTACH_MULTI;
		}
		if (tp == TP_NET_INBOUND_MESSAGE || tp == TP_NET_OUTBOUND_MESSAGE) {
			payload = next() % 64;
			memcpy(body + 8, &payload, 8); /* ev_net_message.size */
		}
		struct rec r = rec_build(kind, tp, 0, body, body_size, body + 512, payload);
		/* flip 1..4 random bytes, sometimes cut or extend the length */
		int flips = 1 + (int)(next() % 4);
		for (int f = 0; f < flips; f++)
			r.data[next() % r.len] ^= (unsigned char)(1u << (next() % 8));
		uint32_t len = r.len;
		if (next() % 8 == 0) {
			len = (uint32_t)(next() % (r.len + 1));
			struct record_header h;
			if (len >= sizeof(h)) {
				memcpy(&h, r.data, sizeof(h));
				h.length = len;
				memcpy(r.data, &h, sizeof(h));
			}
			unsigned char *cut = malloc(len ? len : 1);
			memcpy(cut, r.data, len);
			free(r.data);
			r.data = cut;
			r.len = len;
		}
		char err[ENCODE_ERROR_LEN];
		int rc = encode_record(&enc, 1, (uint64_t)iter, r.data, r.len, err);
		if (rc == ENCODE_OK) {
			msgpack_unpacked u;
			const msgpack_object *m = dec(&enc, &u);
			cr_assert_gt(m->via.map.size, 7);
			msgpack_unpacked_destroy(&u);
			ok++;
		} else {
			cr_assert_eq(rc, ENCODE_MALFORMED);
			cr_assert_str_not_empty(err);
			bad++;
		}
		rec_free(&r);
	}
	cr_assert_gt(ok, 1000);
	cr_assert_gt(bad, 1000);
}
