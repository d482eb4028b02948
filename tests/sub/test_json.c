/* MessagePack to JSON (sub/json.c): every MessagePack type, escaping, the
 * 2^53 rule, keys, --no-payload / --subject, and input that is not
 * MessagePack. Inputs are built with msgpack-c's packer where it can (an
 * encoder independent of our decoder) and by hand for exact encodings. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* Converts and returns the JSON line (malloc'd); *res gets the result. */
static char *conv_opts(const void *in, size_t len, const struct mp_json_options *o,
		       enum mp_json_result *res)
{
	struct jbuf b;
	jbuf_init(&b);
	/* A buffer exactly len bytes long, so ASan catches any read past it. */
	uint8_t *copy = malloc(len ? len : 1);
	cr_assert_not_null(copy);
	if (len)
		memcpy(copy, in, len);
	enum mp_json_result r = mp_to_json(copy, len, o, &b);
	free(copy);
	if (res)
		*res = r;
	cr_assert_neq(r, MP_JSON_NOMEM);
	char *s = malloc(b.len + 1);
	cr_assert_not_null(s);
	memcpy(s, b.data, b.len);
	s[b.len] = '\0';
	jbuf_free(&b);
	return s;
}

/* Asserts the conversion is MP_JSON_OK and equals expect (plus '\n'). */
static void expect_ok(const void *in, size_t len, const struct mp_json_options *o,
		      const char *expect)
{
	enum mp_json_result r;
	char *s = conv_opts(in, len, o, &r);
	size_t n = strlen(expect);
	cr_expect_eq(r, MP_JSON_OK, "result %d for %s", r, s);
	cr_expect(strlen(s) == n + 1 && memcmp(s, expect, n) == 0 && s[n] == '\n',
		  "got      %s\nexpected %s", s, expect);
	free(s);
}

static void expect_invalid(const void *in, size_t len, const char *expect)
{
	struct mp_json_options o = { .subject = "btc.n.x" };
	enum mp_json_result r;
	char *s = conv_opts(in, len, &o, &r);
	size_t n = strlen(expect);
	cr_expect_eq(r, MP_JSON_INVALID, "result %d for %s", r, s);
	cr_expect(strlen(s) == n + 1 && memcmp(s, expect, n) == 0 && s[n] == '\n',
		  "got      %s\nexpected %s", s, expect);
	free(s);
}

#define BYTES(...) ((const uint8_t[]){ __VA_ARGS__ }), sizeof((const uint8_t[]){ __VA_ARGS__ })

/* A packer and buffer per test. */
static msgpack_sbuffer sb;
static msgpack_packer pk;

static void setup(void)
{
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
}

static void teardown(void)
{
	msgpack_sbuffer_destroy(&sb);
}

static void key(const char *k)
{
	cr_assert_eq(msgpack_pack_str_with_body(&pk, k, strlen(k)), 0);
}

static void str(const char *s, size_t n)
{
	cr_assert_eq(msgpack_pack_str_with_body(&pk, s, n), 0);
}

/* {"v": <what the caller packs next>} */
static void one(void)
{
	cr_assert_eq(msgpack_pack_map(&pk, 1), 0);
	key("v");
}

static void packed_is(const char *expect)
{
	expect_ok(sb.data, sb.size, NULL, expect);
}

TestSuite(json, .init = setup, .fini = teardown);

/* ---- every type ---- */

Test(json, nil_and_bools)
{
	msgpack_pack_map(&pk, 3);
	key("n"); msgpack_pack_nil(&pk);
	key("t"); msgpack_pack_true(&pk);
	key("f"); msgpack_pack_false(&pk);
	packed_is("{\"n\":null,\"t\":true,\"f\":false}");
}

Test(json, empty_map_and_containers)
{
	expect_ok(BYTES(0x80), NULL, "{}");
	msgpack_pack_map(&pk, 2);
	key("a"); msgpack_pack_array(&pk, 0);
	key("m"); msgpack_pack_map(&pk, 0);
	packed_is("{\"a\":[],\"m\":{}}");
}

Test(json, unsigned_every_width)
{
	/* msgpack-c picks the smallest form: fixint, uint8, uint16, uint32, uint64 */
	msgpack_pack_map(&pk, 6);
	key("a"); msgpack_pack_uint64(&pk, 0);
	key("b"); msgpack_pack_uint64(&pk, 127);
	key("c"); msgpack_pack_uint64(&pk, 255);
	key("d"); msgpack_pack_uint64(&pk, 65535);
	key("e"); msgpack_pack_uint64(&pk, 4294967295u);
	key("f"); msgpack_pack_uint64(&pk, 4294967296u);
	cr_assert(memchr(sb.data, 0xcc, sb.size) && memchr(sb.data, 0xcd, sb.size) &&
		  memchr(sb.data, 0xce, sb.size) && memchr(sb.data, 0xcf, sb.size));
	packed_is("{\"a\":0,\"b\":127,\"c\":255,\"d\":65535,\"e\":4294967295,\"f\":4294967296}");
}

Test(json, signed_every_width)
{
	msgpack_pack_map(&pk, 6);
	key("a"); msgpack_pack_int64(&pk, -1);
	key("b"); msgpack_pack_int64(&pk, -32);
	key("c"); msgpack_pack_int64(&pk, -128);
	key("d"); msgpack_pack_int64(&pk, -32768);
	key("e"); msgpack_pack_int64(&pk, INT32_MIN);
	key("f"); msgpack_pack_int64(&pk, (int64_t)INT32_MIN - 1);
	cr_assert(memchr(sb.data, 0xd0, sb.size) && memchr(sb.data, 0xd1, sb.size) &&
		  memchr(sb.data, 0xd2, sb.size) && memchr(sb.data, 0xd3, sb.size));
	packed_is("{\"a\":-1,\"b\":-32,\"c\":-128,\"d\":-32768,\"e\":-2147483648,\"f\":-2147483649}");
}

Test(json, signed_encodings_holding_positive_values)
{
	/* int8..int64 type bytes with non-negative values (other encoders
	 * than msgpack-c produce these). */
	expect_ok(BYTES(0x84, 0xa1, 'a', 0xd0, 0x05, 0xa1, 'b', 0xd1, 0x01, 0x00, 0xa1, 'c', 0xd2,
			0x7f, 0xff, 0xff, 0xff, 0xa1, 'd', 0xd3, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00,
			0x00, 0x01),
		  NULL, "{\"a\":5,\"b\":256,\"c\":2147483647,\"d\":\"9007199254740993\"}");
	/* and small values in wide unsigned encodings */
	expect_ok(BYTES(0x81, 0xa1, 'x', 0xcf, 0, 0, 0, 0, 0, 0, 0, 7), NULL, "{\"x\":7}");
}

Test(json, floats)
{
	msgpack_pack_map(&pk, 8);
	key("a"); msgpack_pack_double(&pk, 1.5);
	key("b"); msgpack_pack_double(&pk, 0.1);
	key("c"); msgpack_pack_double(&pk, -2.0);
	key("d"); msgpack_pack_double(&pk, 1e300);
	key("e"); msgpack_pack_float(&pk, 0.1f);
	key("f"); msgpack_pack_double(&pk, NAN);
	key("g"); msgpack_pack_double(&pk, INFINITY);
	key("h"); msgpack_pack_float(&pk, -INFINITY);
	packed_is("{\"a\":1.5,\"b\":0.1,\"c\":-2,\"d\":1e+300,\"e\":0.1,\"f\":null,\"g\":null,\"h\":null}");
}

Test(json, float_round_trips)
{
	const double values[] = { 0.1 + 0.2, DBL_MAX, DBL_MIN, 5e-324, 123456789.123456789, -0.0 };
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		msgpack_sbuffer_clear(&sb);
		one();
		msgpack_pack_double(&pk, values[i]);
		char *s = conv_opts(sb.data, sb.size, NULL, NULL);
		cr_assert_eq(strncmp(s, "{\"v\":", 5), 0);
		char *end;
		double back = strtod(s + 5, &end);
		cr_expect_str_eq(end, "}\n");
		cr_expect(memcmp(&back, &values[i], sizeof(back)) == 0, "%s", s);
		free(s);
	}
}

Test(json, str_every_width)
{
	char big[70000];
	memset(big, 'x', sizeof(big));
	size_t lens[] = { 0, 31, 32, 255, 256, 65535, 65536, 70000 };
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		msgpack_sbuffer_clear(&sb);
		one();
		str(big, lens[i]);
		char *s = conv_opts(sb.data, sb.size, NULL, NULL);
		cr_assert_eq(strlen(s), lens[i] + strlen("{\"v\":\"\"}\n"), "len %zu", lens[i]);
		cr_expect_eq(strspn(s + 6, "x"), lens[i]);
		free(s);
	}
}

Test(json, bin_is_lowercase_hex)
{
	uint8_t hash[32];
	for (int i = 0; i < 32; i++)
		hash[i] = (uint8_t)(0xf0 + i * 7);
	msgpack_pack_map(&pk, 3);
	key("txid");
	msgpack_pack_bin_with_body(&pk, hash, sizeof(hash));
	key("empty");
	msgpack_pack_bin_with_body(&pk, "", 0);
	key("ab");
	msgpack_pack_bin_with_body(&pk, "\xab\xcd\x00\x09", 4);
	char expect[200] = "{\"txid\":\"";
	for (int i = 0; i < 32; i++)
		sprintf(expect + strlen(expect), "%02x", hash[i]);
	strcat(expect, "\",\"empty\":\"\",\"ab\":\"abcd0009\"}");
	packed_is(expect);
}

Test(json, bin_widths)
{
	/* bin8 (msgpack-c), bin16 and bin32 with the same 2 bytes */
	expect_ok(BYTES(0x81, 0xa1, 'b', 0xc4, 2, 0x01, 0xfe), NULL, "{\"b\":\"01fe\"}");
	expect_ok(BYTES(0x81, 0xa1, 'b', 0xc5, 0, 2, 0x01, 0xfe), NULL, "{\"b\":\"01fe\"}");
	expect_ok(BYTES(0x81, 0xa1, 'b', 0xc6, 0, 0, 0, 2, 0x01, 0xfe), NULL, "{\"b\":\"01fe\"}");
}

Test(json, big_payload_bin)
{
	size_t n = 4000000;
	uint8_t *payload = malloc(n);
	cr_assert_not_null(payload);
	for (size_t i = 0; i < n; i++)
		payload[i] = (uint8_t)(i * 131 + 7);
	msgpack_pack_map(&pk, 2);
	key("payload");
	msgpack_pack_bin_with_body(&pk, payload, n);
	key("size");
	msgpack_pack_uint64(&pk, n);
	char *s = conv_opts(sb.data, sb.size, NULL, NULL);
	const char *head = "{\"payload\":\"";
	cr_assert_eq(strncmp(s, head, strlen(head)), 0);
	const char *hex = s + strlen(head);
	for (size_t i = 0; i < n; i += 99991) {
		char two[3];
		snprintf(two, sizeof(two), "%02x", payload[i]);
		cr_assert(hex[2 * i] == two[0] && hex[2 * i + 1] == two[1], "byte %zu", i);
	}
	cr_assert_str_eq(hex + 2 * n, "\",\"size\":4000000}\n");
	free(s);
	free(payload);
}

Test(json, ext_types)
{
	/* fixext1 type 5, ext8 type -1 (timestamp) with 4 bytes */
	expect_ok(BYTES(0x82, 0xa1, 'a', 0xd4, 0x05, 0xaa, 0xa1, 'b', 0xc7, 4, 0xff, 0, 0, 0, 1),
		  NULL,
		  "{\"a\":{\"ext_type\":5,\"data\":\"aa\"},\"b\":{\"ext_type\":-1,\"data\":\"00000001\"}}");
	msgpack_pack_map(&pk, 1);
	key("e");
	msgpack_pack_ext_with_body(&pk, "\x01\x02\x03", 3, 42);
	packed_is("{\"e\":{\"ext_type\":42,\"data\":\"010203\"}}");
}

Test(json, nested_maps_and_arrays)
{
	/* like a decoded inv: {"decoded":{"inv":[{"type":1,"hash":h},{"type":5,"hash":h}]},"n":[1,[2,[]]]} */
	msgpack_pack_map(&pk, 2);
	key("decoded");
	msgpack_pack_map(&pk, 1);
	key("inv");
	msgpack_pack_array(&pk, 2);
	for (int i = 0; i < 2; i++) {
		msgpack_pack_map(&pk, 2);
		key("type");
		msgpack_pack_int(&pk, i ? 5 : 1);
		key("hash");
		msgpack_pack_bin_with_body(&pk, i ? "\x02" : "\x01", 1);
	}
	key("n");
	msgpack_pack_array(&pk, 2);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_int(&pk, 2);
	msgpack_pack_array(&pk, 0);
	packed_is("{\"decoded\":{\"inv\":[{\"type\":1,\"hash\":\"01\"},{\"type\":5,\"hash\":\"02\"}]},"
		  "\"n\":[1,[2,[]]]}");
}

Test(json, key_order_kept_and_duplicates_kept)
{
	msgpack_pack_map(&pk, 4);
	key("z"); msgpack_pack_int(&pk, 1);
	key("a"); msgpack_pack_int(&pk, 2);
	key("m"); msgpack_pack_int(&pk, 3);
	key("a"); msgpack_pack_int(&pk, 4);
	packed_is("{\"z\":1,\"a\":2,\"m\":3,\"a\":4}");
}

Test(json, depth_limit)
{
	/* MP_JSON_MAX_DEPTH - 1 arrays inside the top map: fine; one more: refused */
	for (int extra = 0; extra <= 1; extra++) {
		msgpack_sbuffer_clear(&sb);
		one();
		int arrays = MP_JSON_MAX_DEPTH - 1 + extra;
		for (int i = 0; i < arrays; i++)
			msgpack_pack_array(&pk, i == arrays - 1 ? 0 : 1);
		enum mp_json_result r;
		char *s = conv_opts(sb.data, sb.size, NULL, &r);
		cr_expect_eq(r, extra ? MP_JSON_INVALID : MP_JSON_OK, "%d: %s", extra, s);
		if (extra)
			cr_expect(strstr(s, "nested deeper than 64 levels"), "%s", s);
		free(s);
	}
}

/* ---- integers and 2^53 ---- */

static void int_is(int64_t v, const char *expect)
{
	msgpack_sbuffer_clear(&sb);
	one();
	msgpack_pack_int64(&pk, v);
	char e[100];
	snprintf(e, sizeof(e), "{\"v\":%s}", expect);
	packed_is(e);
}

static void uint_is(uint64_t v, const char *expect)
{
	msgpack_sbuffer_clear(&sb);
	one();
	msgpack_pack_uint64(&pk, v);
	char e[100];
	snprintf(e, sizeof(e), "{\"v\":%s}", expect);
	packed_is(e);
}

Test(json, two_pow_53_boundary_unsigned)
{
	uint_is(9007199254740991ull, "9007199254740991");
	uint_is(9007199254740992ull, "9007199254740992");
	uint_is(9007199254740993ull, "\"9007199254740993\"");
	uint_is(UINT64_MAX, "\"18446744073709551615\"");
	/* int64 encodings too */
	int_is(INT64_MAX, "\"9223372036854775807\"");
}

Test(json, two_pow_53_boundary_negative)
{
	int_is(-9007199254740991ll, "-9007199254740991");
	int_is(-9007199254740992ll, "-9007199254740992");
	int_is(-9007199254740993ll, "\"-9007199254740993\"");
	int_is(INT64_MIN, "\"-9223372036854775808\"");
	/* INT64_MIN by hand: d3 80 00.. */
	expect_ok(BYTES(0x81, 0xa1, 'v', 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0), NULL,
		  "{\"v\":\"-9223372036854775808\"}");
}

/* ---- strings ---- */

static void str_is(const char *s, size_t n, const char *expect_json_string)
{
	msgpack_sbuffer_clear(&sb);
	one();
	str(s, n);
	char e[512];
	snprintf(e, sizeof(e), "{\"v\":%s}", expect_json_string);
	packed_is(e);
}

#define STR_IS(lit, expect) str_is((lit), sizeof(lit) - 1, (expect))

Test(json, escaping_quotes_backslash)
{
	STR_IS("say \"hi\"", "\"say \\\"hi\\\"\"");
	STR_IS("a\\b", "\"a\\\\b\"");
	STR_IS("/", "\"/\"");
	STR_IS("", "\"\"");
}

Test(json, escaping_control_characters)
{
	STR_IS("\n\r\t\b\f", "\"\\u000a\\u000d\\u0009\\u0008\\u000c\"");
	STR_IS("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"");
	STR_IS("\x1b[31mred", "\"\\u001b[31mred\"");
}

Test(json, nul_inside_str)
{
	STR_IS("ver\0ack", "\"ver\\u0000ack\"");
	STR_IS("\0", "\"\\u0000\"");
}

Test(json, valid_utf8_passes_through)
{
	STR_IS("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	/* the largest code point, U+10FFFF */
	STR_IS("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"");
	/* C1 controls and line separators are escaped (valid, but unsafe) */
	STR_IS("\xc2\x85\xe2\x80\xa8\xe2\x80\xa9", "\"\\u0085\\u2028\\u2029\"");
}

Test(json, invalid_utf8_becomes_replacement)
{
	STR_IS("\x80", "\"\\ufffd\"");                 /* lone continuation */
	STR_IS("a\xff" "b", "\"a\\ufffdb\"");          /* never valid */
	STR_IS("\xc0\xaf", "\"\\ufffd\\ufffd\"");      /* overlong '/' */
	STR_IS("\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\""); /* overlong, 3 bytes */
	STR_IS("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""); /* a surrogate */
	STR_IS("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
	/* a truncated sequence is one maximal subpart: one U+FFFD */
	STR_IS("\xe2\x82" "A", "\"\\ufffdA\"");
	STR_IS("\xf0\x9f\x98", "\"\\ufffd\"");
	STR_IS("x\xe2", "\"x\\ufffd\"");
	/* a msg_type as a hostile peer may send it */
	STR_IS("inv\xfe\"\n", "\"inv\\ufffd\\\"\\u000a\"");
}

/* ---- keys ---- */

Test(json, non_string_keys)
{
	msgpack_pack_map(&pk, 9);
	msgpack_pack_int(&pk, 7);               msgpack_pack_int(&pk, 1);
	msgpack_pack_int(&pk, -7);              msgpack_pack_int(&pk, 2);
	msgpack_pack_uint64(&pk, UINT64_MAX);   msgpack_pack_int(&pk, 3);
	msgpack_pack_bin_with_body(&pk, "\x0a\xff", 2); msgpack_pack_int(&pk, 4);
	msgpack_pack_nil(&pk);                  msgpack_pack_int(&pk, 5);
	msgpack_pack_true(&pk);                 msgpack_pack_int(&pk, 6);
	msgpack_pack_double(&pk, 2.5);          msgpack_pack_int(&pk, 7);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_int(&pk, 1);
	str("a\"", 2);
	msgpack_pack_int(&pk, 8);
	msgpack_pack_map(&pk, 1);
	key("k");
	msgpack_pack_nil(&pk);
	msgpack_pack_int(&pk, 9);
	packed_is("{\"7\":1,\"-7\":2,\"18446744073709551615\":3,\"0aff\":4,\"null\":5,\"true\":6,"
		  "\"2.5\":7,\"[1,\\\"a\\\\\\\"\\\"]\":8,\"{\\\"k\\\":null}\":9}");
}

Test(json, key_escaping)
{
	msgpack_pack_map(&pk, 1);
	str("a\"b\x01\xff", 5);
	msgpack_pack_int(&pk, 1);
	packed_is("{\"a\\\"b\\u0001\\ufffd\":1}");
}

/* ---- options ---- */

static void pack_event(bool payload_first, bool payload_last)
{
	msgpack_sbuffer_clear(&sb);
	msgpack_pack_map(&pk, 4);
	if (payload_first) {
		key("payload");
		msgpack_pack_bin_with_body(&pk, "\x01\x02", 2);
	}
	key("msg_type");
	str("ping", 4);
	key("decoded");
	msgpack_pack_map(&pk, 1);
	key("payload"); /* nested: kept */
	msgpack_pack_int(&pk, 1);
	if (!payload_first && !payload_last) {
		key("payload");
		msgpack_pack_bin_with_body(&pk, "\x01\x02", 2);
	}
	key("size");
	msgpack_pack_int(&pk, 2);
	if (payload_last) {
		key("payload");
		msgpack_pack_bin_with_body(&pk, "\x01\x02", 2);
	}
}

Test(json, no_payload_omits_top_level_payload)
{
	struct mp_json_options o = { .no_payload = true };
	const char *expect = "{\"msg_type\":\"ping\",\"decoded\":{\"payload\":1},\"size\":2}";
	for (int pos = 0; pos < 3; pos++) {
		pack_event(pos == 0, pos == 2);
		expect_ok(sb.data, sb.size, &o, expect);
	}
	/* without the option it is there */
	pack_event(false, true);
	expect_ok(sb.data, sb.size, NULL,
		  "{\"msg_type\":\"ping\",\"decoded\":{\"payload\":1},\"size\":2,\"payload\":\"0102\"}");
	/* a map that is only a payload */
	expect_ok(BYTES(0x81, 0xa7, 'p', 'a', 'y', 'l', 'o', 'a', 'd', 0xc4, 1, 0xaa), &o, "{}");
}

Test(json, no_payload_still_checks_the_skipped_value)
{
	struct mp_json_options o = { .no_payload = true };
	/* payload bin8 claims 5 bytes, 1 present */
	enum mp_json_result r;
	char *s = conv_opts(BYTES(0x81, 0xa7, 'p', 'a', 'y', 'l', 'o', 'a', 'd', 0xc4, 5, 0xaa),
			    &o, &r);
	cr_expect_eq(r, MP_JSON_INVALID);
	free(s);
}

Test(json, subject_first_key)
{
	struct mp_json_options o = { .subject = "btc.node1.mempool.added", .subject_key = true };
	msgpack_pack_map(&pk, 1);
	key("fee");
	msgpack_pack_int(&pk, 2000);
	expect_ok(sb.data, sb.size, &o, "{\"subject\":\"btc.node1.mempool.added\",\"fee\":2000}");
	expect_ok(BYTES(0x80), &o, "{\"subject\":\"btc.node1.mempool.added\"}");
	o.subject = "a\"b";
	expect_ok(BYTES(0x80), &o, "{\"subject\":\"a\\\"b\"}");
	/* subject given but not asked for: not printed */
	o.subject_key = false;
	expect_ok(BYTES(0x80), &o, "{}");
}

/* ---- not MessagePack ---- */

Test(json, invalid_empty)
{
	expect_invalid("", 0,
		       "{\"subject\":\"btc.n.x\",\"error\":\"not MessagePack: empty message\",\"bytes\":0}");
}

Test(json, invalid_reserved_byte)
{
	expect_invalid(BYTES(0xc1),
		       "{\"subject\":\"btc.n.x\",\"error\":\"not MessagePack: invalid type byte 0xc1 at byte 0\",\"bytes\":1}");
	expect_invalid(BYTES(0x81, 0xa1, 'k', 0xc1),
		       "{\"subject\":\"btc.n.x\",\"error\":\"not MessagePack: invalid type byte 0xc1 at byte 3\",\"bytes\":4}");
}

Test(json, invalid_truncated)
{
	expect_invalid(BYTES(0x81, 0xa5, 'a', 'b'),
		       "{\"subject\":\"btc.n.x\",\"error\":\"not MessagePack: truncated at byte 1: str needs 5 bytes, 2 left\",\"bytes\":4}");
	expect_invalid(BYTES(0x83, 0xa1, 'a', 0x01),
		       "{\"subject\":\"btc.n.x\",\"error\":\"not MessagePack: truncated at byte 0: map of 3 entries, only 3 bytes left\",\"bytes\":4}");
	expect_invalid(BYTES(0x81, 0xa1, 'a', 0xcf, 0, 0),
		       "{\"subject\":\"btc.n.x\",\"error\":\"not MessagePack: truncated at byte 3: uint64 needs 8 bytes, 2 left\",\"bytes\":6}");
	expect_invalid(BYTES(0x81, 0xa1, 'a'),
		       "{\"subject\":\"btc.n.x\",\"error\":\"not MessagePack: truncated at byte 3: a value is missing\",\"bytes\":3}");
}

Test(json, invalid_huge_counts_allocate_nothing)
{
	/* msgpack-c would allocate ~128 GB for this header before failing */
	expect_invalid(BYTES(0xdd, 0xff, 0xff, 0xff, 0xff),
		       "{\"subject\":\"btc.n.x\",\"error\":\"not MessagePack: truncated at byte 0: array of 4294967295 elements, only 0 bytes left\",\"bytes\":5}");
	expect_invalid(BYTES(0xdf, 0xff, 0xff, 0xff, 0xff, 0xa0),
		       "{\"subject\":\"btc.n.x\",\"error\":\"not MessagePack: truncated at byte 0: map of 4294967295 entries, only 1 bytes left\",\"bytes\":6}");
	expect_invalid(BYTES(0x81, 0xa1, 'b', 0xc6, 0xff, 0xff, 0xff, 0xff),
		       "{\"subject\":\"btc.n.x\",\"error\":\"not MessagePack: truncated at byte 3: bin needs 4294967295 bytes, 0 left\",\"bytes\":8}");
}

Test(json, invalid_trailing_bytes)
{
	expect_invalid(BYTES(0x80, 0x01, 0x02),
		       "{\"subject\":\"btc.n.x\",\"error\":\"not MessagePack: 2 bytes after the end of the map\",\"bytes\":3}");
}

Test(json, not_a_map)
{
	expect_invalid(BYTES(0x92, 0x01, 0x02),
		       "{\"subject\":\"btc.n.x\",\"error\":\"not a map: the message is one array\",\"bytes\":3}");
	expect_invalid(BYTES(0x05),
		       "{\"subject\":\"btc.n.x\",\"error\":\"not a map: the message is one positive int\",\"bytes\":1}");
	/* text someone published by hand */
	expect_invalid("hello", 5,
		       "{\"subject\":\"btc.n.x\",\"error\":\"not MessagePack: 4 bytes after the end of the value\",\"bytes\":5}");
}

Test(json, invalid_without_subject)
{
	enum mp_json_result r;
	char *s = conv_opts(BYTES(0xc1), NULL, &r);
	cr_expect_eq(r, MP_JSON_INVALID);
	cr_expect_str_eq(s, "{\"subject\":null,\"error\":\"not MessagePack: invalid type byte 0xc1 at byte 0\",\"bytes\":1}\n");
	free(s);
}

Test(json, buffer_is_reusable)
{
	struct jbuf b;
	jbuf_init(&b);
	cr_assert_eq(mp_to_json(BYTES(0x81, 0xa1, 'a', 0x01), NULL, &b), MP_JSON_OK);
	jbuf_reset(&b);
	cr_assert_eq(mp_to_json(BYTES(0xc1), NULL, &b), MP_JSON_INVALID);
	jbuf_reset(&b);
	cr_assert_eq(mp_to_json(BYTES(0x81, 0xa1, 'b', 0x02), NULL, &b), MP_JSON_OK);
	cr_assert_eq(b.len, strlen("{\"b\":2}\n"));
	cr_assert_eq(memcmp(b.data, "{\"b\":2}\n", b.len), 0);
	jbuf_free(&b);
}

/* Mutated events: never a crash (ASan), always exactly one line that is an
 * object, with no raw control character in it. */
Test(json, mutated_input_is_one_safe_line)
{
	msgpack_pack_map(&pk, 5);
	key("txid");
	msgpack_pack_bin_with_body(&pk, "0123456789abcdef0123456789abcdef", 32);
	key("msg_type");
	str("inv\x01\xff", 5);
	key("fee");
	msgpack_pack_int64(&pk, -123456789012345678);
	key("decoded");
	msgpack_pack_map(&pk, 1);
	key("inv");
	msgpack_pack_array(&pk, 2);
	msgpack_pack_double(&pk, 1.25);
	msgpack_pack_ext_with_body(&pk, "ab", 2, 3);
	key("ok");
	msgpack_pack_true(&pk);
	size_t n = sb.size;
	uint8_t *m = malloc(n);
	cr_assert_not_null(m);
	unsigned seed = 12345;
	struct mp_json_options o = { .subject = "s", .subject_key = true, .no_payload = true };
	struct jbuf b;
	jbuf_init(&b);
	for (int iter = 0; iter < 200000; iter++) {
		memcpy(m, sb.data, n);
		int flips = 1 + (int)(rand_r(&seed) % 4);
		for (int f = 0; f < flips; f++)
			m[rand_r(&seed) % n] = (uint8_t)rand_r(&seed);
		size_t len = n - (rand_r(&seed) % 8 == 0 ? rand_r(&seed) % n : 0);
		jbuf_reset(&b);
		enum mp_json_result r = mp_to_json(m, len, &o, &b);
		cr_assert(r == MP_JSON_OK || r == MP_JSON_INVALID);
		cr_assert(b.len >= 3 && b.data[0] == '{' && b.data[b.len - 2] == '}' &&
			  b.data[b.len - 1] == '\n');
		for (size_t i = 0; i + 1 < b.len; i++)
			cr_assert((unsigned char)b.data[i] >= 0x20, "iteration %d byte %zu", iter, i);
	}
	jbuf_free(&b);
	free(m);
}
