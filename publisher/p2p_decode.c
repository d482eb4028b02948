/* Bitcoin P2P payload -> MessagePack map. See p2p_decode.h and
 * docs/events.md ("Decoded P2P messages").
 *
 * Layout facts follow Bitcoin Core's serialization (protocol.h,
 * primitives/transaction.h, primitives/block.h, blockencodings.h,
 * bloom.h, blockfilter.h) and BIPs 14, 31, 35, 37, 111, 130, 133, 144,
 * 152, 155, 157, 330, 339.
 *
 * Output: every map and array is written with a 5-byte header (map32 /
 * array32) whose count is patched when it is closed, so the decoder
 * writes in one pass. When the output reaches the soft limit, the decoder
 * stops writing (at a list element or before a large value) but keeps
 * parsing, so a bad payload is still an error; the containers that were
 * open get the count of what was written: the map is valid and shorter.
 */
#include "p2p_decode.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

/* Bitcoin Core limits (net_processing.cpp, protocol.h, serialize.h). */
#define MAX_SIZE 0x02000000u          /* ReadCompactSize */
#define MAX_INV_SZ 50000u
#define MAX_ADDR_TO_SEND 1000u
#define MAX_HEADERS_RESULTS 2000u
#define MAX_LOCATOR_SZ 101u
#define MAX_SUBVERSION_LENGTH 256u
#define MAX_BLOOM_FILTER_SIZE 36000u
#define MAX_HASH_FUNCS 50u
#define MAX_SCRIPT_ELEMENT_SIZE 520u
#define MAX_ADDRV2_SIZE 512u
#define MAX_CFHEADERS 2000u
/* The smallest transaction Core deserializes: version, 0 inputs, flag 0,
 * locktime (what a count of transactions is checked against). */
#define MIN_TX_SIZE 10u

/* ---- reader ---- */

struct rd {
	const uint8_t *p;
	size_t len, off;
	bool failed;
	char *err;
};

static void rd_fail(struct rd *r, size_t at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void rd_fail(struct rd *r, size_t at, const char *fmt, ...)
{
	if (r->failed)
		return;
	r->failed = true;
	if (!r->err)
		return;
	char what[P2P_DECODE_ERROR_LEN - 48];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(r->err, P2P_DECODE_ERROR_LEN, "%s at offset %zu", what, at);
}

static size_t rd_left(const struct rd *r)
{
	return r->failed ? 0 : r->len - r->off;
}

/* n bytes, or NULL (and the reader failed) */
static const uint8_t *rd_take(struct rd *r, size_t n, const char *what)
{
	if (r->failed)
		return NULL;
	if (r->len - r->off < n) {
		rd_fail(r, r->off, "truncated: %s needs %zu bytes, %zu left", what, n,
			r->len - r->off);
		return NULL;
	}
	const uint8_t *p = r->p + r->off;
	r->off += n;
	return p;
}

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint8_t rd_u8(struct rd *r, const char *what)
{
	const uint8_t *p = rd_take(r, 1, what);
	return p ? p[0] : 0;
}
static uint32_t rd_u32(struct rd *r, const char *what)
{
	const uint8_t *p = rd_take(r, 4, what);
	return p ? (uint32_t)le(p, 4) : 0;
}
static uint64_t rd_u64(struct rd *r, const char *what)
{
	const uint8_t *p = rd_take(r, 8, what);
	return p ? le(p, 8) : 0;
}
static uint16_t rd_port(struct rd *r)
{
	const uint8_t *p = rd_take(r, 2, "port");
	return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

/* Core's ReadCompactSize: canonical encodings only. range_check: also at
 * most MAX_SIZE (Core does this for every size but services in addrv2). */
static uint64_t rd_compact_raw(struct rd *r, const char *what, bool range_check)
{
	size_t at = r->off;
	uint8_t b = rd_u8(r, what);
	uint64_t v = b;
	if (r->failed)
		return 0;
	if (b >= 0xfd) {
		/* 0xfd, 0xfe, 0xff: 2, 4, 8 bytes, each form only for values
		 * the shorter one cannot hold */
		static const struct { unsigned len; uint64_t min; } wide[] = {
			{ 2, 0xfd }, { 4, 0x10000 }, { 8, 0x100000000ull } };
		unsigned k = b - 0xfd;
		const uint8_t *p = rd_take(r, wide[k].len, what);
		if (!p)
			return 0;
		v = le(p, wide[k].len);
		if (v < wide[k].min)
			rd_fail(r, at, "bad compact size: non-canonical %s", what);
	}
	if (!r->failed && range_check && v > MAX_SIZE)
		rd_fail(r, at, "oversized %s: %" PRIu64 " (more than %u)", what, v, MAX_SIZE);
	return r->failed ? 0 : v;
}

/* A count of elements of at least min_size bytes each, at most max. */
static uint64_t rd_count(struct rd *r, const char *what, uint64_t max, size_t min_size)
{
	size_t at = r->off;
	uint64_t n = rd_compact_raw(r, what, true);
	if (r->failed)
		return 0;
	if (max && n > max)
		rd_fail(r, at, "oversized %s: %" PRIu64 " (at most %" PRIu64 ")", what, n, max);
	else if (min_size && n > (r->len - r->off) / min_size)
		rd_fail(r, at, "oversized %s: %" PRIu64 " elements of at least %zu bytes, %zu bytes left",
			what, n, min_size, r->len - r->off);
	return r->failed ? 0 : n;
}

/* ---- writer: patchable containers, budget ---- */

static void w_raw(struct p2p_decoder *d, const void *p, size_t n)
{
	if (d->stopped || d->nomem)
		return;
	if (msgpack_sbuffer_write(&d->out, p, n) != 0)
		d->nomem = true;
}

static bool writing(const struct p2p_decoder *d)
{
	return !d->stopped && !d->nomem;
}

static void w_open(struct p2p_decoder *d, uint8_t tag)
{
	struct p2p_container *c = &d->stack[d->depth];
	if (d->depth + 1 >= (int)(sizeof(d->stack) / sizeof(d->stack[0]))) {
		d->nomem = true; /* cannot happen: nesting is fixed by the code */
		return;
	}
	d->depth++;
	c->count = 0;
	c->off = SIZE_MAX;
	if (writing(d)) {
		uint8_t h[5] = { tag, 0, 0, 0, 0 };
		c->off = d->out.size;
		w_raw(d, h, sizeof(h));
		if (d->nomem)
			c->off = SIZE_MAX;
	}
}

static void w_map(struct p2p_decoder *d)
{
	w_open(d, 0xdf);
}
static void w_array(struct p2p_decoder *d)
{
	w_open(d, 0xdd);
}

static void w_close(struct p2p_decoder *d)
{
	if (d->depth <= 0)
		return;
	struct p2p_container *c = &d->stack[--d->depth];
	if (c->off != SIZE_MAX && !d->nomem) {
		uint8_t *h = (uint8_t *)d->out.data + c->off + 1;
		h[0] = (uint8_t)(c->count >> 24);
		h[1] = (uint8_t)(c->count >> 16);
		h[2] = (uint8_t)(c->count >> 8);
		h[3] = (uint8_t)c->count;
	}
}

/* Before a list element or a large value: false (and stop) when the
 * output has reached the soft limit or would with `extra` more bytes. */
static bool w_room(struct p2p_decoder *d, size_t extra)
{
	if (!writing(d))
		return false;
	if (d->out.size + extra > d->soft_limit) {
		d->stopped = true;
		return false;
	}
	return true;
}

/* A list element starts: counted when it will be written. */
static bool w_elem(struct p2p_decoder *d)
{
	if (!w_room(d, 0))
		return false;
	d->stack[d->depth - 1].count++;
	return true;
}

static void w_key(struct p2p_decoder *d, const char *k)
{
	if (!writing(d))
		return;
	d->stack[d->depth - 1].count++;
	size_t n = strlen(k);
	if (msgpack_pack_str(&d->pk, n) != 0 || msgpack_pack_str_body(&d->pk, k, n) != 0)
		d->nomem = true;
}

static void w_u64(struct p2p_decoder *d, uint64_t v)
{
	if (writing(d) && msgpack_pack_uint64(&d->pk, v) != 0)
		d->nomem = true;
}
static void w_i64(struct p2p_decoder *d, int64_t v)
{
	if (writing(d) && msgpack_pack_int64(&d->pk, v) != 0)
		d->nomem = true;
}
static void w_bool(struct p2p_decoder *d, bool v)
{
	if (writing(d) && (v ? msgpack_pack_true(&d->pk) : msgpack_pack_false(&d->pk)) != 0)
		d->nomem = true;
}
static void w_str(struct p2p_decoder *d, const char *s, size_t n)
{
	if (writing(d) && (msgpack_pack_str(&d->pk, n) != 0 || msgpack_pack_str_body(&d->pk, s, n) != 0))
		d->nomem = true;
}
static void w_bin(struct p2p_decoder *d, const void *p, size_t n)
{
	if (writing(d) && (msgpack_pack_bin(&d->pk, n) != 0 || msgpack_pack_bin_body(&d->pk, p, n) != 0))
		d->nomem = true;
}

static void kv_u64(struct p2p_decoder *d, const char *k, uint64_t v)
{
	w_key(d, k);
	w_u64(d, v);
}
static void kv_i64(struct p2p_decoder *d, const char *k, int64_t v)
{
	w_key(d, k);
	w_i64(d, v);
}
static void kv_bool(struct p2p_decoder *d, const char *k, bool v)
{
	w_key(d, k);
	w_bool(d, v);
}
static void kv_str(struct p2p_decoder *d, const char *k, const char *s)
{
	w_key(d, k);
	w_str(d, s, strlen(s));
}
/* A hash as bitcoin-cli prints it: the 32 wire bytes reversed. */
static void w_hash(struct p2p_decoder *d, const uint8_t *h)
{
	uint8_t rev[32];
	for (int i = 0; i < 32; i++)
		rev[i] = h[31 - i];
	w_bin(d, rev, 32);
}
static void kv_hash(struct p2p_decoder *d, const char *k, const uint8_t *h)
{
	w_key(d, k);
	w_hash(d, h);
}
/* A byte string of any size: written only when it fits the budget (the key
 * too), else the output stops here. */
static void kv_blob(struct p2p_decoder *d, const char *k, const uint8_t *p, size_t n)
{
	if (!w_room(d, n + 64))
		return;
	w_key(d, k);
	w_bin(d, p ? p : (const uint8_t *)"", n);
}

/* ---- hashing ---- */

static void sha256d_parts(struct p2p_decoder *d, const uint8_t *const *parts, const size_t *lens,
			  int nparts, uint8_t out[32])
{
	EVP_MD_CTX *ctx = d->md_ctx;
	uint8_t mid[32];
	unsigned int n = 0;
	EVP_DigestInit_ex(ctx, d->sha256, NULL);
	for (int i = 0; i < nparts; i++)
		EVP_DigestUpdate(ctx, parts[i], lens[i]);
	EVP_DigestFinal_ex(ctx, mid, &n);
	EVP_DigestInit_ex(ctx, d->sha256, NULL);
	EVP_DigestUpdate(ctx, mid, 32);
	EVP_DigestFinal_ex(ctx, out, &n);
}

static void sha256d(struct p2p_decoder *d, const uint8_t *p, size_t n, uint8_t out[32])
{
	sha256d_parts(d, &p, &n, 1, out);
}

/* ---- addresses ---- */

static void base32(const uint8_t *p, size_t n, char *out)
{
	static const char a[] = "abcdefghijklmnopqrstuvwxyz234567";
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		acc = acc << 8 | p[i];
		bits += 8;
		while (bits >= 5) {
			out[o++] = a[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		out[o++] = a[(acc << (5 - bits)) & 31];
	out[o] = 0;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	static const char h[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = h[p[i] >> 4];
		out[2 * i + 1] = h[p[i] & 15];
	}
	out[2 * n] = 0;
}

static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

int p2p_addr_text(struct p2p_decoder *d, unsigned network, const uint8_t *addr, size_t len,
		  char out[128])
{
	switch (network) {
	case 1:
		if (len != 4)
			break;
		snprintf(out, 128, "%u.%u.%u.%u", addr[0], addr[1], addr[2], addr[3]);
		return 0;
	case 2:
	case 6:
		if (len != 16 || (network == 6 && addr[0] != 0xfc))
			break;
		if (!inet_ntop(AF_INET6, addr, out, 128))
			break;
		return 0;
	case 3:
		if (len != 10)
			break;
		base32(addr, 10, out);
		strcat(out, ".onion");
		return 0;
	case 4: {
		if (len != 32)
			break;
		/* torv3: base32(pubkey | checksum[2] | version 3) + ".onion",
		 * checksum = SHA3-256(".onion checksum" | pubkey | version)[0..2] */
		uint8_t buf[35], sum[32];
		unsigned int n = 0;
		EVP_MD_CTX *ctx = d->md_ctx;
		static const char tag[] = ".onion checksum";
		const uint8_t ver = 3;
		EVP_DigestInit_ex(ctx, d->sha3, NULL);
		EVP_DigestUpdate(ctx, tag, sizeof(tag) - 1);
		EVP_DigestUpdate(ctx, addr, 32);
		EVP_DigestUpdate(ctx, &ver, 1);
		EVP_DigestFinal_ex(ctx, sum, &n);
		memcpy(buf, addr, 32);
		buf[32] = sum[0];
		buf[33] = sum[1];
		buf[34] = ver;
		base32(buf, 35, out);
		strcat(out, ".onion");
		return 0;
	}
	case 5:
		if (len != 32)
			break;
		base32(addr, 32, out);
		strcat(out, ".b32.i2p");
		return 0;
	default:
		break;
	}
	if (len > 63)
		len = 63;
	hex(addr, len, out);
	return -1;
}

/* A 16-byte address of `addr` and `version`: IPv4-mapped shown as IPv4. */
static const char *addr16_text(struct p2p_decoder *d, const uint8_t *ip, char out[128])
{
	if (memcmp(ip, v4_mapped, 12) == 0) {
		p2p_addr_text(d, 1, ip + 12, 4, out);
		return "ipv4";
	}
	p2p_addr_text(d, 2, ip, 16, out);
	return "ipv6";
}

static void w_services(struct p2p_decoder *d, uint64_t s)
{
	static const char *const names[64] = {
		[0] = "NETWORK", [1] = "GETUTXO", [2] = "BLOOM", [3] = "WITNESS",
		[6] = "COMPACT_FILTERS", [10] = "NETWORK_LIMITED", [11] = "P2P_V2",
	};
	kv_u64(d, "services", s);
	w_key(d, "service_names");
	w_array(d);
	for (int b = 0; b < 64; b++) {
		if (!(s & (1ull << b)))
			continue;
		char tmp[32];
		const char *n = names[b];
		if (!n) {
			snprintf(tmp, sizeof(tmp), "UNKNOWN[%d]", b);
			n = tmp;
		}
		if (writing(d)) {
			d->stack[d->depth - 1].count++;
			w_str(d, n, strlen(n));
		}
	}
	w_close(d);
}

/* version's 26-byte network address (no time) */
static void net_addr_version(struct p2p_decoder *d, struct rd *r, const char *key)
{
	uint64_t services = rd_u64(r, "services");
	const uint8_t *ip = rd_take(r, 16, "address");
	uint16_t port = rd_port(r);
	if (r->failed)
		return;
	char text[128];
	w_key(d, key);
	w_map(d);
	w_services(d, services);
	const char *net = addr16_text(d, ip, text);
	kv_str(d, "network", net);
	kv_str(d, "address", text);
	kv_u64(d, "port", port);
	w_close(d);
}

/* ---- script types (Core's Solver names) ---- */

static bool small_int_op(uint8_t op)
{
	return op == 0 || (op >= 0x51 && op <= 0x60);
}

static const char *script_type(const uint8_t *s, size_t n)
{
	if (n == 25 && s[0] == 0x76 && s[1] == 0xa9 && s[2] == 0x14 && s[23] == 0x88 && s[24] == 0xac)
		return "pubkeyhash";
	if (n == 23 && s[0] == 0xa9 && s[1] == 0x14 && s[22] == 0x87)
		return "scripthash";
	if (n == 4 && s[0] == 0x51 && s[1] == 0x02 && s[2] == 0x4e && s[3] == 0x73)
		return "anchor";
	if (n >= 4 && n <= 42 && small_int_op(s[0]) && s[1] + 2u == n && s[1] >= 2) {
		if (s[0] == 0 && n == 22)
			return "witness_v0_keyhash";
		if (s[0] == 0 && n == 34)
			return "witness_v0_scripthash";
		if (s[0] == 0x51 && n == 34)
			return "witness_v1_taproot";
		if (s[0] != 0)
			return "witness_unknown";
	}
	if (n >= 1 && s[0] == 0x6a)
		return "nulldata";
	if ((n == 35 && s[0] == 33 && s[34] == 0xac) || (n == 67 && s[0] == 65 && s[66] == 0xac))
		return "pubkey";
	if (n >= 3 && s[n - 1] == 0xae && s[0] >= 0x51 && s[0] <= 0x60 && s[n - 2] >= 0x51 &&
	    s[n - 2] <= 0x60) {
		unsigned m = s[0] - 0x50u, k = s[n - 2] - 0x50u, keys = 0;
		size_t i = 1;
		while (i < n - 2 && (s[i] == 33 || s[i] == 65) && i + 1 + s[i] <= n - 2) {
			i += 1 + s[i];
			keys++;
		}
		if (i == n - 2 && keys == k && m >= 1 && m <= k)
			return "multisig";
	}
	return "nonstandard";
}

/* ---- transactions ---- */

struct txids {
	uint8_t txid[32], wtxid[32];
};

/* Parses one transaction at r (Core's UnserializeTransaction with
 * witness allowed). full: write its map (else nothing). ids: filled. */
static void tx(struct p2p_decoder *d, struct rd *r, bool full, struct txids *ids)
{
	size_t start = r->off;
	int32_t version = (int32_t)rd_u32(r, "tx version");
	bool segwit = false;
	size_t at = r->off;
	uint64_t nin = rd_count(r, "input count", 0, 41);
	uint64_t nout = 0;
	uint8_t flags = 0;
	if (r->failed)
		return;
	if (nin == 0) {
		at = r->off;
		flags = rd_u8(r, "segwit flag");
		if (r->failed)
			return;
		if (flags != 0) {
			segwit = true;
			nin = rd_count(r, "input count", 0, 41);
		}
	}
	if (full) {
		w_map(d);
		w_key(d, "inputs");
		w_array(d);
	}
	for (uint64_t i = 0; i < nin && !r->failed; i++) {
		const uint8_t *prev = rd_take(r, 32, "prevout txid");
		uint32_t vout = rd_u32(r, "prevout index");
		uint64_t slen = rd_compact_raw(r, "script_sig size", true);
		rd_take(r, (size_t)slen, "script_sig");
		uint32_t seq = rd_u32(r, "sequence");
		if (r->failed)
			break;
		if (full && w_elem(d)) {
			w_map(d);
			kv_hash(d, "prevout_txid", prev);
			kv_u64(d, "prevout_vout", vout);
			kv_u64(d, "script_sig_size", slen);
			kv_u64(d, "sequence", seq);
			w_close(d);
		}
	}
	if (full)
		w_close(d);
	if (segwit || nin > 0) /* Core: no outputs after 0 inputs and flag 0 */
		nout = rd_count(r, "output count", 0, 9);
	if (full) {
		w_key(d, "outputs");
		w_array(d);
	}
	for (uint64_t i = 0; i < nout && !r->failed; i++) {
		int64_t value = (int64_t)rd_u64(r, "output value");
		uint64_t slen = rd_compact_raw(r, "script_pubkey size", true);
		const uint8_t *s = rd_take(r, (size_t)slen, "script_pubkey");
		if (r->failed)
			break;
		if (full && w_elem(d)) {
			w_map(d);
			kv_i64(d, "value", value);
			kv_str(d, "script_type", script_type(s, (size_t)slen));
			kv_u64(d, "script_pubkey_size", slen);
			w_close(d);
		}
	}
	if (full)
		w_close(d);
	size_t wit_start = r->off;
	bool any_witness = false;
	if (segwit && (flags & 1)) {
		if (full) {
			w_key(d, "witnesses");
			w_array(d);
		}
		for (uint64_t i = 0; i < nin && !r->failed; i++) {
			uint64_t items = rd_count(r, "witness item count", 0, 1);
			bool el = full && w_elem(d);
			if (el)
				w_array(d);
			for (uint64_t j = 0; j < items && !r->failed; j++) {
				uint64_t sz = rd_compact_raw(r, "witness item size", true);
				rd_take(r, (size_t)sz, "witness item");
				if (items)
					any_witness = true;
				if (el && !r->failed && w_elem(d))
					w_u64(d, sz);
			}
			if (el)
				w_close(d);
		}
		if (full)
			w_close(d);
		if (!r->failed && !any_witness)
			rd_fail(r, wit_start, "superfluous witness record");
		flags &= (uint8_t)~1u;
	}
	if (!r->failed && flags)
		rd_fail(r, at, "unknown transaction optional data (flag 0x%02x)", flags);
	size_t wit_end = r->off;
	uint32_t locktime = rd_u32(r, "locktime");
	if (r->failed) {
		if (full)
			w_close(d);
		return;
	}
	size_t end = r->off;
	size_t size = end - start;
	size_t base = segwit ? size - 2 - (wit_end - wit_start) : size;
	const uint8_t *tp = r->p + start;
	if (segwit) {
		const uint8_t *parts[3] = { tp, r->p + start + 6, r->p + wit_end };
		size_t lens[3] = { 4, wit_start - (start + 6), 4 };
		sha256d_parts(d, parts, lens, 3, ids->txid);
		sha256d(d, tp, size, ids->wtxid);
	} else {
		sha256d(d, tp, size, ids->txid);
		memcpy(ids->wtxid, ids->txid, 32);
	}
	if (full) {
		uint64_t weight = (uint64_t)base * 3 + size;
		kv_hash(d, "txid", ids->txid);
		kv_hash(d, "wtxid", ids->wtxid);
		kv_i64(d, "version", version);
		kv_u64(d, "locktime", locktime);
		kv_u64(d, "size", size);
		kv_u64(d, "vsize", (weight + 3) / 4);
		kv_u64(d, "weight", weight);
		kv_bool(d, "segwit", segwit);
		w_close(d);
	}
}

/* A map {txid, wtxid} for a transaction at r (blocks, blocktxn). */
static void tx_ids_elem(struct p2p_decoder *d, struct rd *r, bool write)
{
	struct txids ids;
	size_t start = r->off;
	tx(d, r, false, &ids);
	if (r->failed || !write)
		return;
	w_map(d);
	kv_hash(d, "txid", ids.txid);
	kv_hash(d, "wtxid", ids.wtxid);
	kv_u64(d, "size", r->off - start);
	w_close(d);
}

/* ---- headers ---- */

static void header_fields(struct p2p_decoder *d, struct rd *r, uint8_t hash_out[32])
{
	const uint8_t *h = rd_take(r, 80, "block header");
	if (!h)
		return;
	uint8_t hash[32];
	sha256d(d, h, 80, hash);
	if (hash_out)
		memcpy(hash_out, hash, 32);
	kv_hash(d, "hash", hash);
	kv_i64(d, "version", (int32_t)le(h, 4));
	kv_hash(d, "prev_block", h + 4);
	kv_hash(d, "merkle_root", h + 36);
	kv_u64(d, "time", le(h + 68, 4));
	kv_u64(d, "bits", le(h + 72, 4));
	kv_u64(d, "nonce", le(h + 76, 4));
}

/* ---- message types ---- */

typedef void (*decode_fn)(struct p2p_decoder *d, struct rd *r);

static void m_empty(struct p2p_decoder *d, struct rd *r)
{
	(void)d;
	(void)r;
}

static void m_version(struct p2p_decoder *d, struct rd *r)
{
	kv_i64(d, "version", (int32_t)rd_u32(r, "version"));
	uint64_t services = rd_u64(r, "services");
	if (!r->failed)
		w_services(d, services);
	int64_t ts = (int64_t)rd_u64(r, "timestamp");
	if (!r->failed)
		kv_i64(d, "timestamp", ts);
	net_addr_version(d, r, "receiver");
	/* Core reads the rest only when bytes are left */
	if (rd_left(r) > 0) {
		net_addr_version(d, r, "sender");
		uint64_t nonce = rd_u64(r, "nonce");
		if (!r->failed)
			kv_u64(d, "nonce", nonce);
	}
	if (rd_left(r) > 0) {
		size_t at = r->off;
		uint64_t n = rd_compact_raw(r, "user agent length", true);
		if (!r->failed && n > MAX_SUBVERSION_LENGTH)
			rd_fail(r, at, "oversized user agent: %" PRIu64 " bytes (at most %u)", n,
				MAX_SUBVERSION_LENGTH);
		const uint8_t *ua = rd_take(r, (size_t)n, "user agent");
		if (!r->failed) {
			char s[MAX_SUBVERSION_LENGTH];
			for (size_t i = 0; i < n; i++)
				s[i] = ua[i] >= 0x20 && ua[i] < 0x7f ? (char)ua[i] : '?';
			w_key(d, "user_agent");
			w_str(d, s, (size_t)n);
		}
	}
	if (rd_left(r) > 0) {
		int32_t h = (int32_t)rd_u32(r, "start height");
		if (!r->failed)
			kv_i64(d, "start_height", h);
	}
	bool relay = true;
	if (rd_left(r) > 0)
		relay = rd_u8(r, "relay") != 0;
	if (!r->failed)
		kv_bool(d, "relay", relay);
}

static void m_nonce(struct p2p_decoder *d, struct rd *r)
{
	uint64_t n = rd_u64(r, "nonce");
	if (!r->failed)
		kv_u64(d, "nonce", n);
}

static const char *inv_type_name(uint32_t t)
{
	switch (t) {
	case 0: return "ERROR";
	case 1: return "MSG_TX";
	case 2: return "MSG_BLOCK";
	case 3: return "MSG_FILTERED_BLOCK";
	case 4: return "MSG_CMPCT_BLOCK";
	case 5: return "MSG_WTX";
	case 0x40000001: return "MSG_WITNESS_TX";
	case 0x40000002: return "MSG_WITNESS_BLOCK";
	case 0x40000003: return "MSG_FILTERED_WITNESS_BLOCK";
	default: return "UNKNOWN";
	}
}

static void m_inv(struct p2p_decoder *d, struct rd *r)
{
	uint64_t n = rd_count(r, "inventory count", MAX_INV_SZ, 36);
	kv_u64(d, "count", n);
	w_key(d, "items");
	w_array(d);
	for (uint64_t i = 0; i < n && !r->failed; i++) {
		uint32_t t = rd_u32(r, "inventory type");
		const uint8_t *h = rd_take(r, 32, "inventory hash");
		if (r->failed || !w_elem(d))
			continue;
		w_map(d);
		kv_str(d, "type", inv_type_name(t));
		kv_u64(d, "type_id", t);
		kv_hash(d, "hash", h);
		w_close(d);
	}
	w_close(d);
}

/* tx: p2p_decode calls tx() directly (its map is the decoded map) */
static void m_tx(struct p2p_decoder *d, struct rd *r)
{
	(void)d;
	(void)r;
}

/* A transaction count and every transaction's txid and wtxid (block,
 * blocktxn). */
static void tx_list(struct p2p_decoder *d, struct rd *r)
{
	uint64_t n = rd_count(r, "transaction count", 0, MIN_TX_SIZE);
	kv_u64(d, "tx_count", n);
	w_key(d, "transactions");
	w_array(d);
	for (uint64_t i = 0; i < n && !r->failed; i++) {
		bool el = w_elem(d);
		tx_ids_elem(d, r, el);
	}
	w_close(d);
}

static void m_block(struct p2p_decoder *d, struct rd *r)
{
	header_fields(d, r, NULL);
	tx_list(d, r);
}

static void m_headers(struct p2p_decoder *d, struct rd *r)
{
	uint64_t n = rd_count(r, "header count", MAX_HEADERS_RESULTS, 81);
	kv_u64(d, "count", n);
	w_key(d, "headers");
	w_array(d);
	for (uint64_t i = 0; i < n && !r->failed; i++) {
		bool el = w_elem(d);
		if (el)
			w_map(d);
		header_fields(d, r, NULL);
		uint64_t txn = rd_compact_raw(r, "header tx count", true);
		if (el) {
			kv_u64(d, "tx_count", txn);
			w_close(d);
		}
	}
	w_close(d);
}

static void m_locator(struct p2p_decoder *d, struct rd *r)
{
	uint32_t v = rd_u32(r, "version");
	if (!r->failed)
		kv_u64(d, "version", v);
	uint64_t n = rd_count(r, "locator count", MAX_LOCATOR_SZ, 32);
	kv_u64(d, "locator_count", n);
	w_key(d, "locator");
	w_array(d);
	for (uint64_t i = 0; i < n && !r->failed; i++) {
		const uint8_t *h = rd_take(r, 32, "locator hash");
		if (h && w_elem(d))
			w_hash(d, h);
	}
	w_close(d);
	const uint8_t *stop = rd_take(r, 32, "hash_stop");
	if (stop)
		kv_hash(d, "hash_stop", stop);
}

static void addr_entry(struct p2p_decoder *d, uint32_t time, uint64_t services, const char *net,
		       const char *text, uint16_t port)
{
	w_map(d);
	kv_u64(d, "time", time);
	w_services(d, services);
	kv_str(d, "network", net);
	kv_str(d, "address", text);
	kv_u64(d, "port", port);
	w_close(d);
}

static void m_addr(struct p2p_decoder *d, struct rd *r)
{
	uint64_t n = rd_count(r, "address count", MAX_ADDR_TO_SEND, 30);
	kv_u64(d, "count", n);
	w_key(d, "addresses");
	w_array(d);
	for (uint64_t i = 0; i < n && !r->failed; i++) {
		uint32_t t = rd_u32(r, "time");
		uint64_t s = rd_u64(r, "services");
		const uint8_t *ip = rd_take(r, 16, "address");
		uint16_t port = rd_port(r);
		if (r->failed || !w_elem(d))
			continue;
		char text[128];
		const char *net = addr16_text(d, ip, text);
		addr_entry(d, t, s, net, text, port);
	}
	w_close(d);
}

static void m_addrv2(struct p2p_decoder *d, struct rd *r)
{
	static const char *const nets[] = { "unknown", "ipv4", "ipv6", "torv2", "torv3", "i2p",
					    "cjdns" };
	static const uint8_t lens[] = { 0, 4, 16, 10, 32, 32, 16 };
	uint64_t n = rd_count(r, "address count", MAX_ADDR_TO_SEND, 9);
	kv_u64(d, "count", n);
	w_key(d, "addresses");
	w_array(d);
	for (uint64_t i = 0; i < n && !r->failed; i++) {
		uint32_t t = rd_u32(r, "time");
		uint64_t s = rd_compact_raw(r, "services", false);
		uint8_t net = rd_u8(r, "network id");
		size_t at = r->off;
		uint64_t len = rd_compact_raw(r, "address length", true);
		if (!r->failed && len > MAX_ADDRV2_SIZE)
			rd_fail(r, at, "oversized address: %" PRIu64 " bytes (at most %u)", len,
				MAX_ADDRV2_SIZE);
		if (!r->failed && net >= 1 && net <= 6 && len != lens[net])
			rd_fail(r, at, "BIP155 %s address with length %" PRIu64 " (should be %u)",
				nets[net], len, lens[net]);
		const uint8_t *a = rd_take(r, (size_t)len, "address");
		uint16_t port = rd_port(r);
		if (r->failed || !w_elem(d))
			continue;
		char text[128];
		const char *name = net <= 6 ? nets[net] : "unknown";
		if (p2p_addr_text(d, net, a, (size_t)len, text) != 0)
			name = "unknown";
		addr_entry(d, t, s, name, text, port);
	}
	w_close(d);
}

static void m_feefilter(struct p2p_decoder *d, struct rd *r)
{
	int64_t f = (int64_t)rd_u64(r, "feerate");
	if (!r->failed)
		kv_i64(d, "feerate", f);
}

static void m_sendcmpct(struct p2p_decoder *d, struct rd *r)
{
	uint8_t a = rd_u8(r, "announce");
	uint64_t v = rd_u64(r, "version");
	if (r->failed)
		return;
	kv_bool(d, "announce", a != 0);
	kv_u64(d, "version", v);
}

/* BIP 152 differential indexes: each is the previous one + 1 + the compact
 * size read (the first is the value read); they must fit 16 bits. */
static bool rd_diff_index(struct rd *r, const char *what, const char *where, uint64_t i,
			  uint64_t *index)
{
	size_t at = r->off;
	uint64_t diff = rd_compact_raw(r, what, true);
	if (r->failed)
		return false;
	*index = (i == 0 ? 0 : *index + 1) + diff;
	if (*index > 0xffff) {
		rd_fail(r, at, "index overflowed 16 bits %s %" PRIu64, where, i);
		return false;
	}
	return true;
}

static void m_cmpctblock(struct p2p_decoder *d, struct rd *r)
{
	header_fields(d, r, NULL);
	uint64_t nonce = rd_u64(r, "short id nonce");
	if (!r->failed)
		kv_u64(d, "short_id_nonce", nonce); /* "nonce" is the header's */
	uint64_t n = rd_count(r, "short id count", 0, 6);
	kv_u64(d, "short_id_count", n);
	w_key(d, "short_ids");
	w_array(d);
	for (uint64_t i = 0; i < n && !r->failed; i++) {
		const uint8_t *p = rd_take(r, 6, "short id");
		if (p && w_elem(d))
			w_u64(d, le(p, 6));
	}
	w_close(d);
	uint64_t np = rd_count(r, "prefilled count", 0, 1 + MIN_TX_SIZE);
	kv_u64(d, "prefilled_count", np);
	w_key(d, "prefilled");
	w_array(d);
	uint64_t index = 0;
	for (uint64_t i = 0; i < np && !r->failed; i++) {
		if (!rd_diff_index(r, "prefilled index", "in prefilled transaction", i, &index))
			break;
		struct txids ids;
		tx(d, r, false, &ids);
		if (r->failed || !w_elem(d))
			continue;
		w_map(d);
		kv_u64(d, "index", index);
		kv_hash(d, "txid", ids.txid);
		kv_hash(d, "wtxid", ids.wtxid);
		w_close(d);
	}
	w_close(d);
	if (!r->failed && n + np > 0xffff)
		rd_fail(r, r->off, "more than 65535 transactions in a compact block");
}

static void m_getblocktxn(struct p2p_decoder *d, struct rd *r)
{
	const uint8_t *h = rd_take(r, 32, "block hash");
	if (h)
		kv_hash(d, "block_hash", h);
	uint64_t n = rd_count(r, "index count", 0, 1);
	kv_u64(d, "count", n);
	w_key(d, "indexes");
	w_array(d);
	uint64_t index = 0;
	for (uint64_t i = 0; i < n && !r->failed; i++) {
		if (!rd_diff_index(r, "index", "at entry", i, &index))
			break;
		if (w_elem(d))
			w_u64(d, index);
	}
	w_close(d);
}

static void m_blocktxn(struct p2p_decoder *d, struct rd *r)
{
	const uint8_t *h = rd_take(r, 32, "block hash");
	if (h)
		kv_hash(d, "block_hash", h);
	tx_list(d, r);
}

static void m_merkleblock(struct p2p_decoder *d, struct rd *r)
{
	header_fields(d, r, NULL);
	uint32_t total = rd_u32(r, "total transactions");
	if (!r->failed)
		kv_u64(d, "total_transactions", total);
	uint64_t n = rd_count(r, "hash count", 0, 32);
	kv_u64(d, "hash_count", n);
	w_key(d, "hashes");
	w_array(d);
	for (uint64_t i = 0; i < n && !r->failed; i++) {
		const uint8_t *h = rd_take(r, 32, "hash");
		if (h && w_elem(d))
			w_hash(d, h);
	}
	w_close(d);
	uint64_t fl = rd_count(r, "flag bytes", 0, 1);
	const uint8_t *f = rd_take(r, (size_t)fl, "flags");
	if (!r->failed)
		kv_blob(d, "flags", f, (size_t)fl);
}

static void m_filterload(struct p2p_decoder *d, struct rd *r)
{
	size_t at = r->off;
	uint64_t n = rd_compact_raw(r, "filter size", true);
	if (!r->failed && n > MAX_BLOOM_FILTER_SIZE)
		rd_fail(r, at, "oversized filter: %" PRIu64 " bytes (at most %u)", n,
			MAX_BLOOM_FILTER_SIZE);
	const uint8_t *f = rd_take(r, (size_t)n, "filter");
	at = r->off;
	uint32_t funcs = rd_u32(r, "hash function count");
	if (!r->failed && funcs > MAX_HASH_FUNCS)
		rd_fail(r, at, "too many hash functions: %" PRIu32 " (at most %u)", funcs,
			MAX_HASH_FUNCS);
	uint32_t tweak = rd_u32(r, "tweak");
	uint8_t flags = rd_u8(r, "flags");
	if (r->failed)
		return;
	kv_u64(d, "filter_size", n);
	kv_u64(d, "hash_funcs", funcs);
	kv_u64(d, "tweak", tweak);
	kv_u64(d, "flags", flags);
	kv_blob(d, "filter", f, (size_t)n);
}

static void m_filteradd(struct p2p_decoder *d, struct rd *r)
{
	size_t at = r->off;
	uint64_t n = rd_compact_raw(r, "data size", true);
	if (!r->failed && n > MAX_SCRIPT_ELEMENT_SIZE)
		rd_fail(r, at, "oversized data: %" PRIu64 " bytes (at most %u)", n,
			MAX_SCRIPT_ELEMENT_SIZE);
	const uint8_t *p = rd_take(r, (size_t)n, "data");
	if (r->failed)
		return;
	kv_u64(d, "data_size", n);
	kv_blob(d, "data", p, (size_t)n);
}

static void filter_type(struct p2p_decoder *d, struct rd *r)
{
	uint8_t t = rd_u8(r, "filter type");
	if (!r->failed)
		kv_u64(d, "filter_type", t);
}

static void kv_hash_rd(struct p2p_decoder *d, struct rd *r, const char *key, const char *what)
{
	const uint8_t *h = rd_take(r, 32, what);
	if (h)
		kv_hash(d, key, h);
}

static void m_getcfilters(struct p2p_decoder *d, struct rd *r)
{
	filter_type(d, r);
	uint32_t h = rd_u32(r, "start height");
	if (!r->failed)
		kv_u64(d, "start_height", h);
	kv_hash_rd(d, r, "stop_hash", "stop hash");
}

static void m_cfilter(struct p2p_decoder *d, struct rd *r)
{
	filter_type(d, r);
	kv_hash_rd(d, r, "block_hash", "block hash");
	uint64_t n = rd_count(r, "filter size", 0, 1);
	const uint8_t *f = rd_take(r, (size_t)n, "filter");
	if (r->failed)
		return;
	kv_u64(d, "filter_size", n);
	kv_blob(d, "filter", f, (size_t)n);
}

static void m_getcfcheckpt(struct p2p_decoder *d, struct rd *r)
{
	filter_type(d, r);
	kv_hash_rd(d, r, "stop_hash", "stop hash");
}

static void hash_list(struct p2p_decoder *d, struct rd *r, const char *count_key,
		      const char *list_key, uint64_t max)
{
	uint64_t n = rd_count(r, "hash count", max, 32);
	kv_u64(d, count_key, n);
	w_key(d, list_key);
	w_array(d);
	for (uint64_t i = 0; i < n && !r->failed; i++) {
		const uint8_t *h = rd_take(r, 32, "hash");
		if (h && w_elem(d))
			w_hash(d, h);
	}
	w_close(d);
}

static void m_cfheaders(struct p2p_decoder *d, struct rd *r)
{
	filter_type(d, r);
	kv_hash_rd(d, r, "stop_hash", "stop hash");
	kv_hash_rd(d, r, "previous_filter_header", "previous filter header");
	hash_list(d, r, "count", "filter_hashes", MAX_CFHEADERS);
}

static void m_cfcheckpt(struct p2p_decoder *d, struct rd *r)
{
	filter_type(d, r);
	kv_hash_rd(d, r, "stop_hash", "stop hash");
	hash_list(d, r, "count", "filter_headers", 0);
}

static void m_sendtxrcncl(struct p2p_decoder *d, struct rd *r)
{
	uint32_t v = rd_u32(r, "version");
	uint64_t salt = rd_u64(r, "salt");
	if (r->failed)
		return;
	kv_u64(d, "version", v);
	kv_u64(d, "salt", salt);
}

static const struct {
	const char *name;
	decode_fn fn;
} types[] = {
	{ "version", m_version },	{ "verack", m_empty },	       { "ping", m_nonce },
	{ "pong", m_nonce },		{ "inv", m_inv },	       { "getdata", m_inv },
	{ "notfound", m_inv },		{ "tx", m_tx },		       { "block", m_block },
	{ "headers", m_headers },	{ "getheaders", m_locator },   { "getblocks", m_locator },
	{ "addr", m_addr },		{ "addrv2", m_addrv2 },	       { "sendaddrv2", m_empty },
	{ "feefilter", m_feefilter },	{ "sendheaders", m_empty },    { "sendcmpct", m_sendcmpct },
	{ "cmpctblock", m_cmpctblock }, { "getblocktxn", m_getblocktxn }, { "blocktxn", m_blocktxn },
	{ "getaddr", m_empty },		{ "mempool", m_empty },	       { "wtxidrelay", m_empty },
	{ "merkleblock", m_merkleblock }, { "filterload", m_filterload }, { "filteradd", m_filteradd },
	{ "filterclear", m_empty },	{ "getcfilters", m_getcfilters }, { "cfilter", m_cfilter },
	{ "getcfheaders", m_getcfilters }, { "cfheaders", m_cfheaders }, { "getcfcheckpt", m_getcfcheckpt },
	{ "cfcheckpt", m_cfcheckpt },	{ "sendtxrcncl", m_sendtxrcncl },
};
#define NTYPES (sizeof(types) / sizeof(types[0]))

const char *const p2p_decode_types[NTYPES + 1] = {
	"version",    "verack",	     "ping",	     "pong",	     "inv",	    "getdata",
	"notfound",   "tx",	     "block",	     "headers",	     "getheaders",  "getblocks",
	"addr",	      "addrv2",	     "sendaddrv2",   "feefilter",    "sendheaders", "sendcmpct",
	"cmpctblock", "getblocktxn", "blocktxn",     "getaddr",	     "mempool",	    "wtxidrelay",
	"merkleblock", "filterload", "filteradd",    "filterclear",  "getcfilters", "cfilter",
	"getcfheaders", "cfheaders", "getcfcheckpt", "cfcheckpt",    "sendtxrcncl", NULL,
};

static int find_type(const char *msg_type)
{
	if (!msg_type)
		return -1;
	/* the first byte before strcmp: the publisher asks this for every P2P
	 * message, and a strcmp call for each of the 40 names was a quarter of
	 * its CPU per small message of a type without a decoder */
	for (size_t i = 0; i < NTYPES; i++)
		if (types[i].name[0] == msg_type[0] && strcmp(types[i].name, msg_type) == 0)
			return (int)i;
	return -1;
}

bool p2p_decode_known(const char *msg_type)
{
	return find_type(msg_type) >= 0;
}

int p2p_decoder_init(struct p2p_decoder *d)
{
	memset(d, 0, sizeof(*d));
	d->md_ctx = EVP_MD_CTX_new();
	d->sha256 = EVP_sha256();
	d->sha3 = EVP_sha3_256();
	if (!d->md_ctx || !d->sha256 || !d->sha3) {
		p2p_decoder_free(d);
		return -1;
	}
	msgpack_sbuffer_init(&d->out);
	msgpack_packer_init(&d->pk, &d->out, msgpack_sbuffer_write);
	return 0;
}

void p2p_decoder_free(struct p2p_decoder *d)
{
	if (d->md_ctx)
		EVP_MD_CTX_free(d->md_ctx);
	msgpack_sbuffer_destroy(&d->out);
	memset(d, 0, sizeof(*d));
}

int p2p_decode(struct p2p_decoder *d, const char *msg_type, const uint8_t *payload, size_t len,
	       size_t budget, bool *truncated, char err[P2P_DECODE_ERROR_LEN])
{
	if (err)
		err[0] = 0;
	if (truncated)
		*truncated = false;
	msgpack_sbuffer_clear(&d->out);
	int t = find_type(msg_type);
	if (t < 0)
		return P2P_UNKNOWN_TYPE;
	d->soft_limit = budget > P2P_DECODE_MARGIN ? budget - P2P_DECODE_MARGIN : 0;
	d->stopped = false;
	d->nomem = false;
	d->depth = 0;
	struct rd r = { .p = payload ? payload : (const uint8_t *)"", .len = payload ? len : 0,
			.err = err };
	if (types[t].fn == m_tx) {
		struct txids ids;
		tx(d, &r, true, &ids); /* opens and closes the top map */
	} else {
		w_map(d);
		types[t].fn(d, &r);
		w_close(d);
	}
	while (d->depth > 0)
		w_close(d);
	if (!r.failed && r.off != r.len)
		rd_fail(&r, r.off, "%zu trailing bytes", r.len - r.off);
	if (r.failed) {
		msgpack_sbuffer_clear(&d->out);
		return P2P_DECODE_FAILED;
	}
	if (d->nomem) {
		msgpack_sbuffer_clear(&d->out);
		return P2P_DECODE_NO_MEMORY;
	}
	if (truncated)
		*truncated = d->stopped;
	return P2P_DECODED;
}
