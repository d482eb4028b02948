/* The P2P decoder (publisher/p2p_decode.c) against vectors nobody here
 * wrote, hostile bytes, the budget, and through the encoder.
 *
 * Vectors: the mainnet genesis block (hash 000000000019d6...e26f, merkle
 * root = its coinbase txid 4a5e1e4b...a33b); the signed transaction of
 * BIP 143's "Native P2WPKH" example (wtxid c36c3837...b762 as published by
 * a third-party test suite; txid e8151a2a...4609 computed with Python's
 * hashlib over the stripped serialization); BIP 155 / Bitcoin Core
 * net_tests addresses (TORv3 pg6mmjiy...cryd.onion, I2P ukeu3k5o...kdq.b32.i2p).
 * python3-bitcoinlib and the reference corpus are checked by
 * test_bitcoinlib.py and test_corpus.py. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "encode.h"
#include "event_fields.h"
#include "helpers.h"
#include "p2p_decode.h"
#include "record.h"
#include "tracepoints_table.h"

static struct p2p_decoder D;
static msgpack_unpacked U;
static char ERR[P2P_DECODE_ERROR_LEN];
static bool TR;

static void setup(void)
{
	cr_assert_eq(p2p_decoder_init(&D), 0);
	msgpack_unpacked_init(&U);
}
static void teardown(void)
{
	msgpack_unpacked_destroy(&U);
	p2p_decoder_free(&D);
}
TestSuite(decode, .init = setup, .fini = teardown);

static size_t unhex(const char *h, uint8_t *out)
{
	size_t n = strlen(h) / 2;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(h + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
	return n;
}

static int run(const char *type, const uint8_t *p, size_t n, size_t budget)
{
	int rc = p2p_decode(&D, type, p, n, budget, &TR, ERR);
	if (rc == P2P_DECODED) {
		size_t off = 0;
		msgpack_unpacked_destroy(&U);
		msgpack_unpacked_init(&U);
		cr_assert_eq(msgpack_unpack_next(&U, D.out.data, D.out.size, &off), MSGPACK_UNPACK_SUCCESS);
		cr_assert_eq(off, D.out.size, "one object, nothing after it");
		cr_assert_eq(U.data.type, MSGPACK_OBJECT_MAP);
	} else {
		cr_assert_eq(D.out.size, 0, "no partial map on failure");
	}
	return rc;
}

static const msgpack_object *ok(const char *type, const uint8_t *p, size_t n)
{
	int rc = run(type, p, n, 1 << 24);
	cr_assert_eq(rc, P2P_DECODED, "%s: rc %d, %s", type, rc, ERR);
	cr_assert(!TR);
	return &U.data;
}

static const msgpack_object *get(const msgpack_object *m, const char *key)
{
	cr_assert_eq(m->type, MSGPACK_OBJECT_MAP, "%s: not in a map", key);
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		if (k->via.str.size == strlen(key) && memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
			return &m->via.map.ptr[i].val;
	}
	cr_assert_fail("no key %s", key);
	return NULL;
}
static const msgpack_object *at(const msgpack_object *a, uint32_t i)
{
	cr_assert_eq(a->type, MSGPACK_OBJECT_ARRAY);
	cr_assert_lt(i, a->via.array.size);
	return &a->via.array.ptr[i];
}
static uint64_t u(const msgpack_object *m, const char *key)
{
	const msgpack_object *o = get(m, key);
	cr_assert_eq(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER, "%s", key);
	return o->via.u64;
}
static void str_is(const msgpack_object *m, const char *key, const char *want)
{
	const msgpack_object *o = get(m, key);
	cr_assert_eq(o->type, MSGPACK_OBJECT_STR, "%s", key);
	cr_assert(o->via.str.size == strlen(want) && memcmp(o->via.str.ptr, want, strlen(want)) == 0,
		  "%s: \"%.*s\", expected \"%s\"", key, (int)o->via.str.size, o->via.str.ptr, want);
}
static void hash_is(const msgpack_object *m, const char *key, const char *hexwant)
{
	const msgpack_object *o = get(m, key);
	cr_assert_eq(o->type, MSGPACK_OBJECT_BIN, "%s", key);
	cr_assert_eq(o->via.bin.size, 32);
	char h[65];
	for (int i = 0; i < 32; i++)
		sprintf(h + 2 * i, "%02x", (unsigned char)o->via.bin.ptr[i]);
	cr_assert_str_eq(h, hexwant, "%s", key);
}

#define GENESIS                                                                                     \
	"0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e" \
	"67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c01010000000100000000000000000000" \
	"00000000000000000000000000000000000000000000ffffffff4d04ffff001d0104455468652054696d6573203033" \
	"2f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b206f66207365636f6e64206261696c6f7574" \
	"20666f722062616e6b73ffffffff0100f2052a01000000434104678afdb0fe5548271967f1a67130b7105cd6a828e039" \
	"09a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000"

Test(decode, genesis_block)
{
	uint8_t b[400];
	size_t n = unhex(GENESIS, b);
	cr_assert_eq(n, 285);
	const msgpack_object *m = ok("block", b, n);
	hash_is(m, "hash", "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f");
	hash_is(m, "merkle_root", "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b");
	hash_is(m, "prev_block", "0000000000000000000000000000000000000000000000000000000000000000");
	cr_assert_eq(u(m, "version"), 1);
	cr_assert_eq(u(m, "time"), 1231006505);
	cr_assert_eq(u(m, "bits"), 0x1d00ffff);
	cr_assert_eq(u(m, "nonce"), 2083236893);
	cr_assert_eq(u(m, "tx_count"), 1);
	const msgpack_object *tx = at(get(m, "transactions"), 0);
	hash_is(tx, "txid", "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b");
	hash_is(tx, "wtxid", "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b");
	cr_assert_eq(u(tx, "size"), 204);

	/* the coinbase alone, as a tx message */
	m = ok("tx", b + 81, 204);
	str_is(at(get(m, "outputs"), 0), "script_type", "pubkey");
	cr_assert_eq(u(at(get(m, "outputs"), 0), "value"), 5000000000ull);
	hash_is(at(get(m, "inputs"), 0), "prevout_txid",
		"0000000000000000000000000000000000000000000000000000000000000000");
	cr_assert_eq(u(at(get(m, "inputs"), 0), "prevout_vout"), 0xffffffffu);
	cr_assert_eq(u(at(get(m, "inputs"), 0), "script_sig_size"), 77);
	cr_assert_eq(u(m, "weight"), 204 * 4);
	cr_assert_eq(u(m, "vsize"), 204);
	cr_assert_eq(get(m, "segwit")->via.boolean, false);

	/* its header as a headers message */
	uint8_t h[82] = { 1 };
	memcpy(h + 1, b, 80);
	m = ok("headers", h, 82);
	hash_is(at(get(m, "headers"), 0), "hash",
		"000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f");
}

#define BIP143_P2WPKH                                                                              \
	"01000000000102fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f000000004948304502" \
	"21008b9d1dc26ba6a9cb62127b02742fa9d754cd3bebf337f7a55d114c8e5cdd30be022040529b194ba3f9281a99f2b1" \
	"c0a19c0489bc22ede944ccf4ecbab4cc618ef3ed01eeffffffef51e1b804cc89d182d279655c3aa89e815b1b309fe287" \
	"d9b2b55d57b90ec68a0100000000ffffffff02202cb206000000001976a9148280b37df378db99f66f85c95a783a76ac" \
	"7a6d5988ac9093510d000000001976a9143bde42dbee7e4dbe6a21b2d50ce2f0167faa815988ac000247304402203609" \
	"e17b84f6a7d30c80bfa610b5b4542f32a8a0d5447a12fb1366d7f01cc44a0220573a954c4518331561406f90300e8f33" \
	"58f51928d43c212a8caed02de67eebee0121025476c2e83188368da1ff3e292e7acafcdb3566bb0ad253f62fc70f07ae" \
	"ee635711000000"

Test(decode, bip143_segwit_tx)
{
	uint8_t b[400];
	size_t n = unhex(BIP143_P2WPKH, b);
	cr_assert_eq(n, 343);
	const msgpack_object *m = ok("tx", b, n);
	hash_is(m, "wtxid", "c36c38370907df2324d9ce9d149d191192f338b37665a82e78e76a12c909b762");
	hash_is(m, "txid", "e8151a2af31c368a35053ddd4bdb285a8595c769a3ad83e0fa02314a602d4609");
	cr_assert_eq(u(m, "version"), 1);
	cr_assert_eq(u(m, "locktime"), 17);
	cr_assert_eq(u(m, "size"), 343);
	cr_assert_eq(u(m, "weight"), 233 * 3 + 343);
	cr_assert_eq(u(m, "vsize"), (233 * 3 + 343 + 3) / 4);
	cr_assert(get(m, "segwit")->via.boolean);
	const msgpack_object *in = get(m, "inputs");
	cr_assert_eq(in->via.array.size, 2);
	hash_is(at(in, 0), "prevout_txid", "9f96ade4b41d5433f4eda31e1738ec2b36f6e7d1420d94a6af99801a88f7f7ff");
	cr_assert_eq(u(at(in, 0), "script_sig_size"), 73);
	cr_assert_eq(u(at(in, 0), "sequence"), 0xffffffee);
	cr_assert_eq(u(at(in, 1), "prevout_vout"), 1);
	const msgpack_object *w = get(m, "witnesses");
	cr_assert_eq(at(w, 0)->via.array.size, 0);
	cr_assert_eq(at(w, 1)->via.array.size, 2);
	cr_assert_eq(at(at(w, 1), 0)->via.u64, 71);
	cr_assert_eq(at(at(w, 1), 1)->via.u64, 33);
	const msgpack_object *out = get(m, "outputs");
	cr_assert_eq(u(at(out, 0), "value"), 112340000);
	cr_assert_eq(u(at(out, 1), "value"), 223450000);
	str_is(at(out, 0), "script_type", "pubkeyhash");
	cr_assert_eq(u(at(out, 0), "script_pubkey_size"), 25);
}

Test(decode, addrv2_bip155_networks)
{
	/* BIP 155 entries: time, services (compact size), network id, addr, port */
	uint8_t b[512];
	size_t n = unhex("06"
			 "00e1f505" "09" "01" "04" "01020304" "208d"
			 "00e1f505" "fd0004" "02" "10" "20010db8000000000000000000000001" "208d"
			 "00e1f505" "00" "04" "20" "79bcc625184b05194975c28b66b66b0469f7f6556fb1ac3189a79b40dda32f1f" "208d"
			 "00e1f505" "00" "05" "20" "a2894dabaec08c0051a481a6dac88b64f98232ae42d4b6fd2fa81952dfe36a87" "0000"
			 "00e1f505" "00" "06" "10" "fc000001000200030004000500060007" "208d"
			 "00e1f505" "00" "2a" "03" "aabbcc" "0001",
			 b);
	const msgpack_object *m = ok("addrv2", b, n);
	const msgpack_object *a = get(m, "addresses");
	cr_assert_eq(u(m, "count"), 6);
	str_is(at(a, 0), "address", "1.2.3.4");
	str_is(at(a, 0), "network", "ipv4");
	cr_assert_eq(u(at(a, 0), "port"), 8333);
	cr_assert_eq(u(at(a, 0), "time"), 100000000);
	cr_assert_eq(get(at(a, 0), "service_names")->via.array.size, 2);
	cr_assert_eq(u(at(a, 1), "services"), 1024);
	str_is(at(a, 1), "address", "2001:db8::1");
	str_is(at(a, 2), "address", "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion");
	str_is(at(a, 2), "network", "torv3");
	str_is(at(a, 3), "address", "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p");
	str_is(at(a, 3), "network", "i2p");
	str_is(at(a, 4), "address", "fc00:1:2:3:4:5:6:7");
	str_is(at(a, 4), "network", "cjdns");
	str_is(at(a, 5), "network", "unknown"); /* unknown ids are kept (hex), as Core skips them */
	str_is(at(a, 5), "address", "aabbcc");

	/* wrong length for a known network: Core refuses the message */
	n = unhex("01" "00e1f505" "00" "01" "05" "0102030405" "208d", b);
	cr_assert_eq(run("addrv2", b, n, 1 << 20), P2P_DECODE_FAILED);
	cr_assert_str_eq(ERR, "BIP155 ipv4 address with length 5 (should be 4) at offset 7");
	/* CJDNS outside fc00::/8 */
	n = unhex("01" "00e1f505" "00" "06" "10" "fd000001000200030004000500060007" "208d", b);
	cr_assert_eq(run("addrv2", b, n, 1 << 20), P2P_DECODED);
	str_is(at(get(&U.data, "addresses"), 0), "network", "unknown");
}

Test(decode, version_and_addr_v1)
{
	uint8_t b[300];
	/* version 70016, services NETWORK|WITNESS, time, receiver ::ffff:10.0.0.1:8333,
	 * sender [2001:db8::2]:18444, nonce, "/x:1/", height 800000, relay 0 */
	size_t n = unhex("80110100" "0900000000000000" "0100000000000000"
			 "0000000000000000" "00000000000000000000ffff0a000001" "208d"
			 "0904000000000000" "20010db8000000000000000000000002" "480c"
			 "0102030405060708" "052f783a312f" "00350c00" "00",
			 b);
	const msgpack_object *m = ok("version", b, n);
	cr_assert_eq(u(m, "version"), 70016);
	cr_assert_eq(u(m, "services"), 9);
	str_is(m, "user_agent", "/x:1/");
	cr_assert_eq(u(m, "start_height"), 800000);
	cr_assert_eq(get(m, "relay")->via.boolean, false);
	cr_assert_eq(u(m, "nonce"), 0x0807060504030201ull);
	str_is(get(m, "receiver"), "address", "10.0.0.1");
	cr_assert_eq(u(get(m, "receiver"), "port"), 8333);
	str_is(get(m, "sender"), "address", "2001:db8::2");
	cr_assert_eq(u(get(m, "sender"), "port"), 18444);
	str_is(get(m, "sender"), "network", "ipv6");
	const msgpack_object *names = get(get(m, "sender"), "service_names");
	cr_assert_eq(names->via.array.size, 3);
	/* without relay: true (BIP 37) */
	m = ok("version", b, n - 1);
	cr_assert(get(m, "relay")->via.boolean);
}

Test(decode, small_messages)
{
	uint8_t b[200];
	size_t n = unhex("0102030405060708", b);
	cr_assert_eq(u(ok("ping", b, n), "nonce"), 0x0807060504030201ull);
	cr_assert_eq(u(ok("pong", b, n), "nonce"), 0x0807060504030201ull);
	cr_assert_eq(u(ok("feefilter", b, n), "feerate"), 0x0807060504030201ull);
	const char *empty[] = { "verack", "sendaddrv2", "sendheaders", "getaddr", "mempool",
				"wtxidrelay", "filterclear" };
	for (size_t i = 0; i < sizeof(empty) / sizeof(*empty); i++) {
		cr_assert_eq(ok(empty[i], b, 0)->via.map.size, 0);
		cr_assert_eq(run(empty[i], b, 1, 1 << 20), P2P_DECODE_FAILED);
		cr_assert_str_eq(ERR, "1 trailing bytes at offset 0");
	}
	n = unhex("01" "0200000000000000", b);
	const msgpack_object *m = ok("sendcmpct", b, n);
	cr_assert(get(m, "announce")->via.boolean);
	cr_assert_eq(u(m, "version"), 2);
	n = unhex("01000000" "0807060504030201", b);
	m = ok("sendtxrcncl", b, n);
	cr_assert_eq(u(m, "version"), 1);
	cr_assert_eq(u(m, "salt"), 0x0102030405060708ull);
	/* inv of one MSG_WITNESS_TX and one unknown type */
	n = unhex("02" "01000040" "1111111111111111111111111111111111111111111111111111111111111100"
		  "07000000" "2222222222222222222222222222222222222222222222222222222222222200", b);
	for (int t = 0; t < 3; t++) {
		m = ok(t == 0 ? "inv" : t == 1 ? "getdata" : "notfound", b, n);
		str_is(at(get(m, "items"), 0), "type", "MSG_WITNESS_TX");
		hash_is(at(get(m, "items"), 0), "hash",
			"0011111111111111111111111111111111111111111111111111111111111111");
		str_is(at(get(m, "items"), 1), "type", "UNKNOWN");
		cr_assert_eq(u(at(get(m, "items"), 1), "type_id"), 7);
	}
	/* BIP 157 */
	n = unhex("00" "10270000" "3333333333333333333333333333333333333333333333333333333333333333", b);
	m = ok("getcfilters", b, n);
	cr_assert_eq(u(m, "start_height"), 10000);
	m = ok("getcfheaders", b, n);
	cr_assert_eq(u(m, "filter_type"), 0);
	n = unhex("00" "3333333333333333333333333333333333333333333333333333333333333333", b);
	ok("getcfcheckpt", b, n);
	n = unhex("00" "3333333333333333333333333333333333333333333333333333333333333333" "03" "aabbcc", b);
	m = ok("cfilter", b, n);
	cr_assert_eq(u(m, "filter_size"), 3);
	n = unhex("00" "3333333333333333333333333333333333333333333333333333333333333333"
		  "4444444444444444444444444444444444444444444444444444444444444444" "01"
		  "5555555555555555555555555555555555555555555555555555555555555555", b);
	m = ok("cfheaders", b, n);
	cr_assert_eq(u(m, "count"), 1);
	n = unhex("00" "3333333333333333333333333333333333333333333333333333333333333333" "01"
		  "5555555555555555555555555555555555555555555555555555555555555555", b);
	m = ok("cfcheckpt", b, n);
	cr_assert_eq(get(m, "filter_headers")->via.array.size, 1);
	/* BIP 37 */
	n = unhex("03" "aabbcc" "05000000" "78563412" "01", b);
	m = ok("filterload", b, n);
	cr_assert_eq(u(m, "hash_funcs"), 5);
	cr_assert_eq(u(m, "tweak"), 0x12345678);
	cr_assert_eq(u(m, "flags"), 1);
	n = unhex("02" "aabb", b);
	cr_assert_eq(u(ok("filteradd", b, n), "data_size"), 2);
	/* BIP 152 getblocktxn: differential indexes 0, 1+0, 2+3 -> 0, 1, 5 */
	n = unhex("3333333333333333333333333333333333333333333333333333333333333333" "03" "00" "00" "03", b);
	m = ok("getblocktxn", b, n);
	cr_assert_eq(at(get(m, "indexes"), 2)->via.u64, 5);
}

Test(decode, cmpctblock_merkleblock_blocktxn)
{
	uint8_t b[1000];
	uint8_t g[400];
	unhex(GENESIS, g);
	/* cmpctblock: genesis header, nonce, 2 short ids, prefilled coinbase at 0 */
	size_t n = 0;
	memcpy(b, g, 80);
	n = 80;
	n += unhex("0807060504030201" "02" "010203040506" "0a0b0c0d0e0f" "01" "00", b + n);
	memcpy(b + n, g + 81, 204);
	n += 204;
	const msgpack_object *m = ok("cmpctblock", b, n);
	hash_is(m, "hash", "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f");
	cr_assert_eq(u(m, "short_id_nonce"), 0x0102030405060708ull);
	cr_assert_eq(u(m, "nonce"), 2083236893);
	cr_assert_eq(at(get(m, "short_ids"), 0)->via.u64, 0x060504030201ull);
	const msgpack_object *p = at(get(m, "prefilled"), 0);
	cr_assert_eq(u(p, "index"), 0);
	hash_is(p, "txid", "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b");
	/* blocktxn: block hash + the coinbase */
	n = unhex("3333333333333333333333333333333333333333333333333333333333333333" "01", b);
	memcpy(b + n, g + 81, 204);
	n += 204;
	m = ok("blocktxn", b, n);
	hash_is(at(get(m, "transactions"), 0), "txid",
		"4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b");
	/* merkleblock: header, 1 tx, 1 hash, flags 01 */
	memcpy(b, g, 80);
	n = 80 + unhex("01000000" "01" "3ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a"
		       "01" "01", b + 80);
	m = ok("merkleblock", b, n);
	cr_assert_eq(u(m, "total_transactions"), 1);
	hash_is(m, "hash", "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f");
}

Test(decode, errors_say_what_and_where)
{
	uint8_t b[300];
	struct { const char *type, *hex, *err; } cases[] = {
		{ "ping", "01020304", "truncated: nonce needs 8 bytes, 4 left at offset 0" },
		{ "ping", "010203040506070809", "1 trailing bytes at offset 8" },
		{ "inv", "fd0100", "bad compact size: non-canonical inventory count at offset 0" },
		{ "inv", "feffff0000", "bad compact size: non-canonical inventory count at offset 0" },
		{ "inv", "ffffffffff00000000", "bad compact size: non-canonical inventory count at offset 0" },
		{ "inv", "fd51c3", "oversized inventory count: 50001 (at most 50000) at offset 0" },
		{ "inv", "ffffffffffffffffff", "oversized inventory count: 18446744073709551615 (more than 33554432) at offset 0" },
		{ "inv", "02", "oversized inventory count: 2 elements of at least 36 bytes, 0 bytes left at offset 0" },
		{ "inv", "", "truncated: inventory count needs 1 bytes, 0 left at offset 0" },
		{ "addr", "fde903", "oversized address count: 1001 (at most 1000) at offset 0" },
		{ "headers", "fdd107", "oversized header count: 2001 (at most 2000) at offset 0" },
		{ "tx", "010000000000", "truncated: locktime needs 4 bytes, 0 left at offset 6" },
		{ "tx", "010000000001" "01" "1111111111111111111111111111111111111111111111111111111111111111" "00000000" "00" "ffffffff" "00" "00" "00000000",
		  "superfluous witness record at offset 49" },
		{ "tx", "010000000002" "01" "1111111111111111111111111111111111111111111111111111111111111111" "00000000" "00" "ffffffff" "00" "00000000",
		  "unknown transaction optional data (flag 0x02) at offset 5" },
		{ "filteradd", "fd0902" "00", "oversized data: 521 bytes (at most 520) at offset 0" },
		{ "getblocktxn", "3333333333333333333333333333333333333333333333333333333333333333" "02" "fdffff" "00",
		  "index overflowed 16 bits at entry 1 at offset 36" },
		{ "version", "01", "truncated: version needs 4 bytes, 1 left at offset 0" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		size_t n = unhex(cases[i].hex, b);
		cr_assert_eq(run(cases[i].type, b, n, 1 << 20), P2P_DECODE_FAILED, "case %zu", i);
		cr_assert_str_eq(ERR, cases[i].err, "case %zu", i);
	}
	/* unknown types: nothing, no error */
	cr_assert_eq(run("alert", b, 3, 1 << 20), P2P_UNKNOWN_TYPE);
	cr_assert_str_empty(ERR);
	cr_assert_eq(run("", b, 0, 1 << 20), P2P_UNKNOWN_TYPE);
}

Test(decode, budget_cuts_lists_cleanly)
{
	/* an inv of 50000 items is about 3 MB decoded */
	size_t n = 3 + 50000 * 36;
	uint8_t *b = calloc(1, n);
	b[0] = 0xfd;
	b[1] = 0x50;
	b[2] = 0xc3;
	for (size_t i = 0; i < 50000; i++)
		b[3 + 36 * i] = 1;
	cr_assert_eq(run("inv", b, n, 65536), P2P_DECODED);
	cr_assert(TR);
	cr_assert_leq(D.out.size, 65536);
	const msgpack_object *items = get(&U.data, "items");
	cr_assert_gt(items->via.array.size, 100);
	cr_assert_lt(items->via.array.size, 50000);
	cr_assert_eq(u(&U.data, "count"), 50000);
	str_is(at(items, items->via.array.size - 1), "type", "MSG_TX");
	/* the rest is still checked: a bad byte at the end is an error */
	b[n - 1] = 0;
	cr_assert_eq(run("inv", b, n - 1, 65536), P2P_DECODE_FAILED);
	/* whole with a large budget */
	cr_assert_eq(run("inv", b, n, 64u << 20), P2P_DECODED);
	cr_assert(!TR);
	cr_assert_eq(get(&U.data, "items")->via.array.size, 50000);
	free(b);
}

/* ---- through the encoder ---- */

static struct rec net_rec(const char *type, const uint8_t *p, size_t n)
{
	struct ev_net_message m = { .peer_id = 1, .size = n };
	strcpy(m.addr, "1.2.3.4:8333");
	strcpy(m.conn_type, "inbound");
	strcpy(m.msg_type, type);
	return rec_build(RECORD_EVENT, TP_NET_INBOUND_MESSAGE, 0, &m, sizeof(m), p, n);
}

Test(decode, encoder_adds_decoded_or_decode_error)
{
	struct encoder e;
	enc_init(&e);
	uint8_t b[400];
	size_t n = unhex(GENESIS, b);
	struct rec r = net_rec("block", b, n);
	msgpack_unpacked uu;
	const msgpack_object *m = enc_ok(&e, &r, &uu);
	cr_assert(!e.decode_failed);
	hash_is(get(m, "decoded"), "hash", "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f");
	cr_assert_eq(get(m, "payload")->via.bin.size, 285);
	msgpack_unpacked_destroy(&uu);
	rec_free(&r);

	r = net_rec("block", b, 100);
	m = enc_ok(&e, &r, &uu);
	cr_assert(e.decode_failed);
	const msgpack_object *err = get(m, "decode_error");
	cr_assert_eq(err->type, MSGPACK_OBJECT_STR);
	cr_assert_eq(get(m, "payload")->via.bin.size, 100);
	for (uint32_t i = 0; i < m->via.map.size; i++)
		cr_assert(!(m->via.map.ptr[i].key.via.str.size == 7 &&
			    memcmp(m->via.map.ptr[i].key.via.str.ptr, "decoded", 7) == 0));
	msgpack_unpacked_destroy(&uu);
	rec_free(&r);
	encoder_free(&e);
}

Test(decode, encoder_keeps_events_under_max_payload)
{
	struct encoder e;
	enc_init(&e);
	size_t n = 3 + 50000 * 36;
	uint8_t *b = calloc(1, n);
	b[0] = 0xfd;
	b[1] = 0x50;
	b[2] = 0xc3;
	for (size_t i = 0; i < 50000; i++)
		b[3 + 36 * i] = 2;
	struct rec r = net_rec("inv", b, n);
	uint64_t limits[] = { 0, n + 20000, n + 200000, 1048576 * 3, 5242880 };
	for (size_t i = 0; i < sizeof(limits) / sizeof(*limits); i++) {
		e.decoded_budget = limits[i];
		msgpack_unpacked uu;
		const msgpack_object *m = enc_ok(&e, &r, &uu);
		if (limits[i])
			cr_assert_leq(e.buf.size, limits[i], "limit %zu: %zu bytes", (size_t)limits[i],
				      e.buf.size);
		cr_assert_eq(get(m, "payload")->via.bin.size, n);
		if (limits[i] && limits[i] < 3000000)
			cr_assert(get(m, "decoded_truncated")->via.boolean, "limit %zu", (size_t)limits[i]);
		msgpack_unpacked_destroy(&uu);
	}
	rec_free(&r);
	free(b);
	encoder_free(&e);
}

Test(decode, every_type_survives_every_prefix_and_noise)
{
	uint8_t b[2048];
	unsigned seed = 12345;
	for (const char *const *t = p2p_decode_types; *t; t++) {
		for (size_t len = 0; len < 300; len++) {
			for (size_t i = 0; i < len; i++) {
				seed = seed * 1103515245u + 12345u;
				b[i] = (uint8_t)(seed >> 16);
			}
			int rc = run(*t, b, len, len & 1 ? 1 << 20 : 8192);
			cr_assert(rc == P2P_DECODED || rc == P2P_DECODE_FAILED);
			if (rc == P2P_DECODE_FAILED)
				cr_assert(strstr(ERR, " at offset "), "%s: %s", *t, ERR);
		}
	}
}
