/* Queue record -> NATS subject + MessagePack map.
 *
 * The format is docs/events.md (tests/publisher checks the two against each
 * other). Tracepoint events are encoded from the one field table,
 * common/event_fields.c: no per-event code here.
 *
 * The record comes from shared memory that another process writes. It is
 * read once: the header and the fixed-size body are copied to the stack and
 * everything is validated and encoded from that copy; only the P2P payload
 * is copied straight from the record into the output, with a length checked
 * beforehand. Nothing is read beyond `length`.
 */
#include "encode.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event_fields.h"
#include "record.h"
#include "tracepoints_table.h"

#define HDR_SIZE sizeof(struct record_header)

#define EVENT_LOSS "extractor:loss"
#define EVENT_STARTED "extractor:started"
#define EVENT_COLLECTOR_STATS "extractor:collector_stats"
#define EVENT_PUBLISHER_STATS "extractor:publisher_stats"
/* The name used in `lost` and `tracepoints` for counts filed under
 * tracepoint id 0 (a record whose id the collector did not know). */
#define UNKNOWN_TRACEPOINT "unknown"

/* Keys every record but publisher_stats starts with: stream_id, seq,
 * time_ns, pid, tid, node, event. */
#define COMMON_KEYS 7

_Static_assert(TP_COUNT < 32, "attached masks are 32-bit");
#define ATTACHED_VALID_MASK (((1u << TP_COUNT) - 1u) & ~1u)

/* The largest event body; the stack copy holds any of them. */
#define EVENT_BODY_MAX 512
_Static_assert(sizeof(struct ev_net_message) <= EVENT_BODY_MAX, "body copy");
_Static_assert(sizeof(struct ev_net_connection) <= EVENT_BODY_MAX, "body copy");
_Static_assert(sizeof(struct ev_selected_coins) <= EVENT_BODY_MAX, "body copy");
_Static_assert(sizeof(struct ev_mempool_rejected) <= EVENT_BODY_MAX, "body copy");

/* prefix (<= 255) + ".coin_selection.normal_create_tx_internal" + "." +
 * a message type token (< MSG_TYPE_LEN) fits. */
_Static_assert(SUBJECT_PREFIX_MAX + 64 + MSG_TYPE_LEN < SUBJECT_MAX, "subject size");

static void fail(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(char *err, const char *fmt, ...)
{
	if (!err)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, ENCODE_ERROR_LEN, fmt, ap);
	va_end(ap);
}

/* ---- subjects ---- */

static bool token_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

void subject_token(const char *text, char *out, size_t outlen)
{
	if (!out || outlen == 0)
		return;
	size_t n = 0;
	if (text)
		for (; text[n] && n + 1 < outlen; n++)
			out[n] = token_char((unsigned char)text[n]) ? text[n] : '_';
	if (n == 0 && outlen >= 2)
		out[n++] = '_';
	out[n] = '\0';
}

/* A printable rendering of one byte for messages: 'x' or \xNN. */
static void show_byte(unsigned char c, char out[8])
{
	if (c >= 0x20 && c < 0x7f)
		snprintf(out, 8, "'%c'", c);
	else
		snprintf(out, 8, "\\x%02x", c);
}

/* At most 64 bytes of text, non-printable bytes shown as '?'. */
static void show_text(const char *text, char out[72])
{
	size_t n = 0;
	for (; text[n] && n < 64; n++) {
		unsigned char c = (unsigned char)text[n];
		out[n] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (text[n]) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

#define PREFIX_RULE "a prefix is tokens of [A-Za-z0-9_-] separated by single dots, like btc.node1"

int subject_prefix_check(const char *prefix, char err[ENCODE_ERROR_LEN])
{
	if (!prefix || !*prefix) {
		fail(err, "invalid --subject-prefix \"\": it is empty; " PREFIX_RULE);
		return -1;
	}
	char shown[72], byte[8];
	show_text(prefix, shown);
	size_t len = strlen(prefix);
	if (len > SUBJECT_PREFIX_MAX) {
		fail(err, "invalid --subject-prefix \"%s\": %zu bytes, at most %d", shown, len,
		     SUBJECT_PREFIX_MAX);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)prefix[i];
		if (c == '.') {
			if (i == 0 || i + 1 == len || prefix[i + 1] == '.') {
				fail(err,
				     "invalid --subject-prefix \"%s\": empty token at byte %zu; " PREFIX_RULE,
				     shown, i == 0 || i + 1 == len ? i : i + 1);
				return -1;
			}
			continue;
		}
		if (token_char(c))
			continue;
		show_byte(c, byte);
		if (c == '*' || c == '>')
			fail(err,
			     "invalid --subject-prefix \"%s\": wildcard %s at byte %zu (a prefix names "
			     "one subject, not a pattern); " PREFIX_RULE,
			     shown, byte, i);
		else
			fail(err, "invalid --subject-prefix \"%s\": character %s at byte %zu; " PREFIX_RULE,
			     shown, byte, i);
		return -1;
	}
	return 0;
}

/* ---- encoder ---- */

int encoder_init(struct encoder *e, const char *node, const char *prefix,
		 char err[ENCODE_ERROR_LEN])
{
	memset(e, 0, sizeof(*e));
	char host[SUBJECT_PREFIX_MAX + 1];
	if (!node) {
		if (gethostname(host, sizeof(host)) != 0) {
			fail(err, "cannot read the host name (%s): give --node-name", strerror(errno));
			return -1;
		}
		host[sizeof(host) - 1] = '\0';
		node = host;
	}
	size_t nlen = strlen(node);
	if (nlen == 0) {
		fail(err, "the node name is empty: give --node-name NAME");
		return -1;
	}
	if (nlen > SUBJECT_PREFIX_MAX) {
		fail(err, "the node name is %zu bytes long, at most %d", nlen, SUBJECT_PREFIX_MAX);
		return -1;
	}
	_Static_assert(sizeof(e->node) > SUBJECT_PREFIX_MAX, "node buffer");
	_Static_assert(sizeof(e->prefix) > SUBJECT_PREFIX_MAX, "prefix buffer");
	memcpy(e->node, node, nlen + 1);
	if (prefix) {
		if (subject_prefix_check(prefix, err) != 0)
			return -1;
		memcpy(e->prefix, prefix, strlen(prefix) + 1);
	} else {
		memcpy(e->prefix, "btc.", 4);
		subject_token(node, e->prefix + 4, sizeof(e->prefix) - 4);
	}
	e->pid = (uint32_t)getpid();
	if (p2p_decoder_init(&e->dec) != 0) {
		fail(err, "cannot make a SHA-256 context (OpenSSL)");
		return -1;
	}
	msgpack_sbuffer_init(&e->buf);
	msgpack_packer_init(&e->pk, &e->buf, msgpack_sbuffer_write);
	return 0;
}

void encoder_free(struct encoder *e)
{
	msgpack_sbuffer_destroy(&e->buf);
	p2p_decoder_free(&e->dec);
	memset(e, 0, sizeof(*e));
}

/* Grows the buffer to hold `need` bytes in one step (a 4 MB block would
 * otherwise take several doublings). */
static int reserve(struct encoder *e, size_t need)
{
	if (e->buf.alloc >= need)
		return 0;
	char *p = realloc(e->buf.data, need);
	if (!p)
		return -1;
	e->buf.data = p;
	e->buf.alloc = need;
	return 0;
}

/* ---- packing helpers: 0 or -1 (the buffer could not grow) ---- */

#define TRY(x)                          \
	do {                            \
		if ((x) != 0)           \
			return -1;      \
	} while (0)

static int pk_str(msgpack_packer *pk, const char *s, size_t n)
{
	TRY(msgpack_pack_str(pk, n));
	return msgpack_pack_str_body(pk, s, n);
}

static int pk_key(msgpack_packer *pk, const char *key)
{
	return pk_str(pk, key, strlen(key));
}

static int pk_bool(msgpack_packer *pk, bool b)
{
	return b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
}

static int pk_kv_u64(msgpack_packer *pk, const char *key, uint64_t v)
{
	TRY(pk_key(pk, key));
	return msgpack_pack_uint64(pk, v);
}

static int pk_kv_bool(msgpack_packer *pk, const char *key, bool v)
{
	TRY(pk_key(pk, key));
	return pk_bool(pk, v);
}

static int pk_kv_str(msgpack_packer *pk, const char *key, const char *v)
{
	TRY(pk_key(pk, key));
	return pk_str(pk, v, strlen(v));
}

static int pk_common(struct encoder *e, uint32_t map_size, uint64_t stream_id, uint64_t seq,
		     const struct record_header *h, const char *event)
{
	msgpack_packer *pk = &e->pk;
	TRY(msgpack_pack_map(pk, map_size));
	TRY(pk_kv_u64(pk, "stream_id", stream_id));
	TRY(pk_kv_u64(pk, "seq", seq));
	TRY(pk_kv_u64(pk, "time_ns", h->time_ns));
	TRY(pk_kv_u64(pk, "pid", h->pid));
	TRY(pk_kv_u64(pk, "tid", h->tid));
	TRY(pk_kv_str(pk, "node", e->node));
	return pk_kv_str(pk, "event", event);
}

/* "attached": the names of the tracepoints whose bit is set (validated). */
static int pk_attached(msgpack_packer *pk, uint32_t attached)
{
	TRY(pk_key(pk, "attached"));
	TRY(msgpack_pack_array(pk, (size_t)__builtin_popcount(attached)));
	for (int tp = 1; tp < TP_COUNT; tp++)
		if (attached & (1u << tp))
			TRY(pk_key(pk, tracepoint_table[tp].event));
	return 0;
}

static const char *counter_name(int tp)
{
	return tp == TP_NONE ? UNKNOWN_TRACEPOINT : tracepoint_table[tp].event;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* ---- field access on the stack copy ---- */

static uint64_t rd_u64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t rd_u32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static int pk_field(msgpack_packer *pk, const struct event_field *f, const unsigned char *body,
		    const unsigned char *payload, uint64_t payload_len)
{
	const unsigned char *p = body + f->offset;
	TRY(pk_key(pk, f->name));
	switch (f->kind) {
	case FIELD_I64:
		return msgpack_pack_int64(pk, (int64_t)rd_u64(p));
	case FIELD_U64:
		return msgpack_pack_uint64(pk, rd_u64(p));
	case FIELD_I32:
		return msgpack_pack_int32(pk, (int32_t)rd_u32(p));
	case FIELD_U32:
		return msgpack_pack_uint32(pk, rd_u32(p));
	case FIELD_BOOL:
		return pk_bool(pk, p[0] != 0);
	case FIELD_STR:
		return pk_str(pk, (const char *)p, strnlen((const char *)p, f->size));
	case FIELD_HASH: {
		unsigned char rev[HASH_LEN];
		size_t n = f->size < HASH_LEN ? f->size : HASH_LEN;
		for (size_t i = 0; i < n; i++)
			rev[i] = p[n - 1 - i];
		TRY(msgpack_pack_bin(pk, n));
		return msgpack_pack_bin_body(pk, rev, n);
	}
	case FIELD_PAYLOAD:
		TRY(msgpack_pack_bin(pk, (size_t)payload_len));
		return msgpack_pack_bin_body(pk, payload, (size_t)payload_len);
	}
	return -1;
}

static int pk_flag_keys(msgpack_packer *pk, const struct event_field *f, int i, uint32_t flags)
{
	char key[64];
	if (flags & RECORD_FLAG_TRUNCATED(i)) {
		snprintf(key, sizeof(key), "%s_truncated", f->name);
		TRY(pk_kv_bool(pk, key, true));
	}
	if (flags & RECORD_FLAG_READ_FAILED(i)) {
		snprintf(key, sizeof(key), "%s_read_failed", f->name);
		TRY(pk_kv_bool(pk, key, true));
	}
	return 0;
}

/* ---- tracepoint events ---- */

/* The most bytes the `decoded` map of a P2P message may take
 * (docs/events.md, "Decoded P2P messages"): max(64 KiB, 2 x the payload),
 * and, when the server's max_payload is known (decoded_budget), no more
 * than what is left of it once the record's own fields (at most the
 * record's length plus 512 bytes of keys and headers) and 1 KiB of margin
 * are taken. */
#define DECODED_MIN_BUDGET 65536u
static size_t decoded_budget(const struct encoder *e, uint32_t length, uint64_t payload_len)
{
	uint64_t b = payload_len * 2 > DECODED_MIN_BUDGET ? payload_len * 2 : DECODED_MIN_BUDGET;
	if (e->decoded_budget) {
		uint64_t other = (uint64_t)length + 512 + 1024;
		uint64_t left = e->decoded_budget > other ? e->decoded_budget - other : 0;
		if (left < b)
			b = left;
	}
	return (size_t)b;
}

static int encode_event(struct encoder *e, uint64_t stream_id, uint64_t seq,
			const struct record_header *h, const unsigned char *rec, uint32_t length,
			char *err)
{
	enum tracepoint_id tp = (enum tracepoint_id)h->tracepoint;
	const struct event_layout *L = &event_layouts[tp];
	const char *ev = tracepoint_table[tp].event;
	size_t fixed = HDR_SIZE + L->body_size;

	uint32_t allowed = 0;
	int size_idx = -1, payload_idx = -1, msg_type_idx = -1;
	for (int i = 0; i < L->field_count; i++) {
		const struct event_field *f = &L->fields[i];
		allowed |= RECORD_FLAG_READ_FAILED(i);
		if (f->kind == FIELD_STR || f->kind == FIELD_PAYLOAD)
			allowed |= RECORD_FLAG_TRUNCATED(i);
		if (f->kind == FIELD_PAYLOAD)
			payload_idx = i;
		if (f->kind == FIELD_U64 && strcmp(f->name, "size") == 0)
			size_idx = i;
		if (f->kind == FIELD_STR && strcmp(f->name, "msg_type") == 0)
			msg_type_idx = i;
	}
	if (L->body_size > EVENT_BODY_MAX || (payload_idx >= 0 && size_idx < 0)) {
		fail(err, "%s: internal: the field table does not fit the encoder", ev);
		return ENCODE_MALFORMED;
	}

	/* length */
	if (length < fixed || (payload_idx < 0 && length != fixed)) {
		if (payload_idx < 0)
			fail(err, "%s: record of %" PRIu32 " bytes, expected %zu (32-byte header + %zu-byte body)",
			     ev, length, fixed, L->body_size);
		else
			fail(err, "%s: record of %" PRIu32 " bytes is shorter than its header and body (%zu bytes)",
			     ev, length, fixed);
		return ENCODE_MALFORMED;
	}
	_Alignas(8) unsigned char body[EVENT_BODY_MAX];
	memcpy(body, rec + HDR_SIZE, L->body_size);

	uint64_t size = 0, payload_len = 0;
	if (payload_idx >= 0) {
		size = rd_u64(body + L->fields[size_idx].offset);
		uint64_t want = size < P2P_PAYLOAD_MAX ? size : P2P_PAYLOAD_MAX;
		payload_len = length - fixed;
		if (payload_len != want) {
			fail(err, "%s: %" PRIu64 " payload bytes, but size %" PRIu64 " means %" PRIu64, ev,
			     payload_len, size, want);
			return ENCODE_MALFORMED;
		}
	}

	/* flags: each bit must name an argument of this tracepoint, a truncation
	 * bit a string (or the payload) */
	uint32_t flags = h->flags;
	uint32_t bad = flags & ~allowed;
	if (bad) {
		int bit = __builtin_ctz(bad);
		int arg = bit >= 16 ? bit - 16 : bit;
		const char *what = bit >= 16 ? "truncated" : "read-failed";
		if (arg >= L->field_count)
			fail(err, "%s: flags 0x%08" PRIx32 ": %s flag for argument %d, but it has %d arguments",
			     ev, flags, what, arg, L->field_count);
		else
			fail(err, "%s: flags 0x%08" PRIx32 ": truncated flag on %s, which is not a string",
			     ev, flags, L->fields[arg].name);
		return ENCODE_MALFORMED;
	}
	if (payload_idx >= 0) {
		bool flagged = flags & RECORD_FLAG_TRUNCATED(payload_idx);
		if (flagged != (size > P2P_PAYLOAD_MAX)) {
			fail(err, "%s: size %" PRIu64 " %s, but the payload truncated flag is %s", ev, size,
			     flagged ? "fits in 4000000 bytes" : "is over 4000000 bytes",
			     flagged ? "set" : "missing");
			return ENCODE_MALFORMED;
		}
	}

	/* values */
	for (int i = 0; i < L->field_count; i++) {
		const struct event_field *f = &L->fields[i];
		const unsigned char *p = body + f->offset;
		if (f->kind == FIELD_PAYLOAD)
			continue;
		if (f->kind == FIELD_STR && !memchr(p, '\0', f->size)) {
			fail(err, "%s: string %s has no NUL in its %u-byte buffer", ev, f->name,
			     (unsigned)f->size);
			return ENCODE_MALFORMED;
		}
		if (f->kind == FIELD_BOOL && p[0] > 1) {
			fail(err, "%s: bool %s is %u, not 0 or 1", ev, f->name, (unsigned)p[0]);
			return ENCODE_MALFORMED;
		}
		if ((flags & RECORD_FLAG_READ_FAILED(i)) && !all_zero(p, f->size)) {
			fail(err, "%s: %s is flagged as not read but its bytes are not zero", ev,
			     f->name);
			return ENCODE_MALFORMED;
		}
	}

	/* subject: <prefix>.<provider>.<name>[.<message type token>] */
	const struct tracepoint_info *ti = &tracepoint_table[tp];
	int n = snprintf(e->subject, SUBJECT_MAX, "%s.%s.%s", e->prefix, ti->provider, ti->name);
	if (msg_type_idx >= 0) {
		char token[MSG_TYPE_LEN + 1];
		subject_token((const char *)body + L->fields[msg_type_idx].offset, token, sizeof(token));
		snprintf(e->subject + n, SUBJECT_MAX - (size_t)n, ".%s", token);
	}

	/* decoded P2P message */
	int drc = P2P_UNKNOWN_TYPE;
	bool dtrunc = false;
	char derr[P2P_DECODE_ERROR_LEN] = "";
	if (payload_idx >= 0 && msg_type_idx >= 0 &&
	    p2p_decode_known((const char *)body + L->fields[msg_type_idx].offset)) {
		const char *mt = (const char *)body + L->fields[msg_type_idx].offset;
		size_t budget = decoded_budget(e, length, payload_len);
		if (flags & (RECORD_FLAG_TRUNCATED(payload_idx) | RECORD_FLAG_READ_FAILED(payload_idx) |
			     RECORD_FLAG_READ_FAILED(size_idx))) {
			drc = P2P_DECODE_FAILED;
			snprintf(derr, sizeof(derr), "not decoded: the payload is incomplete (%s)",
				 flags & RECORD_FLAG_TRUNCATED(payload_idx) ? "payload_truncated"
									     : "read_failed");
		} else if (budget < 2 * P2P_DECODE_MARGIN) {
			dtrunc = true; /* no room at all: no map */
		} else {
			drc = p2p_decode(&e->dec, mt, rec + fixed, (size_t)payload_len, budget, &dtrunc,
					 derr);
			if (drc == P2P_DECODE_NO_MEMORY)
				goto nomem;
		}
	}
	e->decode_failed = drc == P2P_DECODE_FAILED;

	/* map */
	msgpack_packer *pk = &e->pk;
	uint32_t keys = COMMON_KEYS + (uint32_t)L->field_count + (uint32_t)__builtin_popcount(flags);
	keys += (drc == P2P_DECODED) + dtrunc + (drc == P2P_DECODE_FAILED);
	size_t dsize = drc == P2P_DECODED ? e->dec.out.size : 0;
	if (payload_idx >= 0 && reserve(e, fixed + payload_len + dsize + 1024) != 0)
		goto nomem;
	if (pk_common(e, keys, stream_id, seq, h, ev) != 0)
		goto nomem;
	for (int i = 0; i < L->field_count; i++) {
		const struct event_field *f = &L->fields[i];
		if (pk_field(pk, f, body, rec + fixed, payload_len) != 0 ||
		    pk_flag_keys(pk, f, i, flags) != 0)
			goto nomem;
	}
	if (drc == P2P_DECODED &&
	    (pk_key(pk, "decoded") != 0 || msgpack_sbuffer_write(&e->buf, e->dec.out.data, dsize) != 0))
		goto nomem;
	if (dtrunc && pk_kv_bool(pk, "decoded_truncated", true) != 0)
		goto nomem;
	if (drc == P2P_DECODE_FAILED && pk_kv_str(pk, "decode_error", derr) != 0)
		goto nomem;
	return ENCODE_OK;
nomem:
	fail(err, "%s: out of memory encoding a record of %" PRIu32 " bytes", ev, length);
	return ENCODE_NO_MEMORY;
}

/* ---- the collector's records ---- */

static int check_collector_length(const char *ev, uint32_t length, size_t body, char *err)
{
	if (length == HDR_SIZE + body)
		return 0;
	fail(err, "%s: record of %" PRIu32 " bytes, expected %zu (32-byte header + %zu-byte body)", ev,
	     length, HDR_SIZE + body, body);
	return -1;
}

static int check_attached(const char *ev, uint32_t attached, char *err)
{
	if (!(attached & ~ATTACHED_VALID_MASK))
		return 0;
	fail(err, "%s: attached mask 0x%08" PRIx32 " has bits that name no tracepoint", ev, attached);
	return -1;
}

static int encode_loss(struct encoder *e, uint64_t stream_id, uint64_t seq,
		       const struct record_header *h, const unsigned char *rec, uint32_t length,
		       char *err)
{
	const char *ev = EVENT_LOSS;
	struct rec_loss r;
	if (check_collector_length(ev, length, sizeof(r), err))
		return ENCODE_MALFORMED;
	memcpy(&r, rec + HDR_SIZE, sizeof(r));

	uint32_t entries = 0;
	uint64_t total = 0;
	for (int tp = 0; tp < TP_COUNT; tp++) {
		const struct loss_counts *c = &r.tp[tp];
		if (c->bpf_drops || c->queue_drops || c->incomplete)
			entries++;
		total = add_sat(add_sat(add_sat(total, c->bpf_drops), c->queue_drops), c->incomplete);
	}
	snprintf(e->subject, SUBJECT_MAX, "%s.extractor.loss", e->prefix);

	msgpack_packer *pk = &e->pk;
	if (pk_common(e, COMMON_KEYS + 2, stream_id, seq, h, ev) != 0 || pk_key(pk, "lost") != 0 ||
	    msgpack_pack_map(pk, entries) != 0)
		goto nomem;
	for (int tp = 0; tp < TP_COUNT; tp++) {
		const struct loss_counts *c = &r.tp[tp];
		if (!(c->bpf_drops || c->queue_drops || c->incomplete))
			continue;
		if (pk_key(pk, counter_name(tp)) != 0 || msgpack_pack_map(pk, 3) != 0 ||
		    pk_kv_u64(pk, "bpf_drops", c->bpf_drops) != 0 ||
		    pk_kv_u64(pk, "queue_drops", c->queue_drops) != 0 ||
		    pk_kv_u64(pk, "incomplete", c->incomplete) != 0)
			goto nomem;
	}
	if (pk_kv_u64(pk, "lost_total", total) != 0)
		goto nomem;
	return ENCODE_OK;
nomem:
	fail(err, "%s: out of memory", ev);
	return ENCODE_NO_MEMORY;
}

static int encode_stats(struct encoder *e, uint64_t stream_id, uint64_t seq,
			const struct record_header *h, const unsigned char *rec, uint32_t length,
			char *err)
{
	const char *ev = EVENT_COLLECTOR_STATS;
	struct rec_stats r;
	if (check_collector_length(ev, length, sizeof(r), err))
		return ENCODE_MALFORMED;
	memcpy(&r, rec + HDR_SIZE, sizeof(r));
	if (check_attached(ev, r.attached, err))
		return ENCODE_MALFORMED;

	uint32_t entries = 0;
	for (int tp = 0; tp < TP_COUNT; tp++) {
		const struct tracepoint_stats *s = &r.tp[tp];
		if ((r.attached & (1u << tp)) || s->events || s->lost.bpf_drops ||
		    s->lost.queue_drops || s->lost.incomplete)
			entries++;
	}
	snprintf(e->subject, SUBJECT_MAX, "%s.extractor.collector_stats", e->prefix);

	msgpack_packer *pk = &e->pk;
	if (pk_common(e, COMMON_KEYS + 5, stream_id, seq, h, ev) != 0 ||
	    pk_kv_u64(pk, "queue_capacity", r.queue_capacity) != 0 ||
	    pk_kv_u64(pk, "queue_used", r.queue_used) != 0 ||
	    pk_kv_u64(pk, "uptime_ns", r.uptime_ns) != 0 || pk_attached(pk, r.attached) != 0 ||
	    pk_key(pk, "tracepoints") != 0 || msgpack_pack_map(pk, entries) != 0)
		goto nomem;
	for (int tp = 0; tp < TP_COUNT; tp++) {
		const struct tracepoint_stats *s = &r.tp[tp];
		if (!((r.attached & (1u << tp)) || s->events || s->lost.bpf_drops ||
		      s->lost.queue_drops || s->lost.incomplete))
			continue;
		if (pk_key(pk, counter_name(tp)) != 0 || msgpack_pack_map(pk, 4) != 0 ||
		    pk_kv_u64(pk, "events", s->events) != 0 ||
		    pk_kv_u64(pk, "bpf_drops", s->lost.bpf_drops) != 0 ||
		    pk_kv_u64(pk, "queue_drops", s->lost.queue_drops) != 0 ||
		    pk_kv_u64(pk, "incomplete", s->lost.incomplete) != 0)
			goto nomem;
	}
	return ENCODE_OK;
nomem:
	fail(err, "%s: out of memory", ev);
	return ENCODE_NO_MEMORY;
}

static int encode_started(struct encoder *e, uint64_t stream_id, uint64_t seq,
			  const struct record_header *h, const unsigned char *rec, uint32_t length,
			  char *err)
{
	const char *ev = EVENT_STARTED;
	struct rec_started r;
	if (check_collector_length(ev, length, sizeof(r), err))
		return ENCODE_MALFORMED;
	memcpy(&r, rec + HDR_SIZE, sizeof(r));
	if (!memchr(r.version, '\0', sizeof(r.version))) {
		fail(err, "%s: string version has no NUL in its %zu-byte buffer", ev,
		     sizeof(r.version));
		return ENCODE_MALFORMED;
	}
	const char *mode = r.attach_mode == ATTACH_MULTI ? "multi"
			   : r.attach_mode == ATTACH_PERF ? "perf"
							  : NULL;
	if (!mode) {
		fail(err, "%s: attach mode %" PRIu32 " is neither 1 (multi) nor 2 (perf)", ev,
		     r.attach_mode);
		return ENCODE_MALFORMED;
	}
	if (check_attached(ev, r.attached, err))
		return ENCODE_MALFORMED;
	snprintf(e->subject, SUBJECT_MAX, "%s.extractor.started", e->prefix);

	msgpack_packer *pk = &e->pk;
	if (pk_common(e, COMMON_KEYS + 4, stream_id, seq, h, ev) != 0 ||
	    pk_key(pk, "version") != 0 ||
	    pk_str(pk, r.version, strnlen(r.version, sizeof(r.version))) != 0 ||
	    pk_kv_str(pk, "attach_mode", mode) != 0 ||
	    pk_kv_u64(pk, "filter_pid", r.filter_pid) != 0 || pk_attached(pk, r.attached) != 0) {
		fail(err, "%s: out of memory", ev);
		return ENCODE_NO_MEMORY;
	}
	return ENCODE_OK;
}

/* ---- entry points ---- */

int encode_record(struct encoder *e, uint64_t stream_id, uint64_t seq, const void *record,
		  uint32_t length, char err[ENCODE_ERROR_LEN])
{
	const unsigned char *rec = record;
	struct record_header h;
	int rc;

	msgpack_sbuffer_clear(&e->buf);
	e->subject[0] = '\0';
	e->decode_failed = false;
	if (err)
		err[0] = '\0';
	if (!rec || length < HDR_SIZE) {
		fail(err, "record of %" PRIu32 " bytes is shorter than its 32-byte header", length);
		return ENCODE_MALFORMED;
	}
	memcpy(&h, rec, HDR_SIZE);
	if (h.length != length) {
		fail(err, "record header says %" PRIu32 " bytes, the queue frame %" PRIu32, h.length,
		     length);
		return ENCODE_MALFORMED;
	}

	switch (h.kind) {
	case RECORD_EVENT:
		if (h.tracepoint == TP_NONE || h.tracepoint >= TP_COUNT) {
			fail(err, "event record with unknown tracepoint id %u", (unsigned)h.tracepoint);
			return ENCODE_MALFORMED;
		}
		rc = encode_event(e, stream_id, seq, &h, rec, length, err);
		break;
	case RECORD_CHUNK:
		fail(err, "chunk record (kind 2) in the queue: the collector joins chunks before the queue");
		return ENCODE_MALFORMED;
	case RECORD_LOSS:
	case RECORD_STATS:
	case RECORD_STARTED:
		if (h.tracepoint != TP_NONE) {
			fail(err, "collector record (kind %u) with tracepoint id %u, expected 0",
			     (unsigned)h.kind, (unsigned)h.tracepoint);
			return ENCODE_MALFORMED;
		}
		if (h.flags) {
			fail(err, "collector record (kind %u) with flags 0x%08" PRIx32 ", expected 0",
			     (unsigned)h.kind, h.flags);
			return ENCODE_MALFORMED;
		}
		rc = h.kind == RECORD_LOSS    ? encode_loss(e, stream_id, seq, &h, rec, length, err)
		     : h.kind == RECORD_STATS ? encode_stats(e, stream_id, seq, &h, rec, length, err)
					      : encode_started(e, stream_id, seq, &h, rec, length, err);
		break;
	default:
		fail(err, "unknown record kind %u", (unsigned)h.kind);
		return ENCODE_MALFORMED;
	}
	if (rc != ENCODE_OK) {
		msgpack_sbuffer_clear(&e->buf);
		e->subject[0] = '\0';
		e->decode_failed = false;
	}
	return rc;
}

int encode_publisher_stats(struct encoder *e, const struct publisher_stats *st, uint64_t time_ns)
{
	msgpack_packer *pk = &e->pk;
	msgpack_sbuffer_clear(&e->buf);
	snprintf(e->subject, SUBJECT_MAX, "%s.extractor.publisher_stats", e->prefix);
	if (msgpack_pack_map(pk, 18) != 0 || pk_kv_u64(pk, "stream_id", st->stream_id) != 0 ||
	    pk_kv_u64(pk, "time_ns", time_ns) != 0 || pk_kv_u64(pk, "pid", e->pid) != 0 ||
	    pk_kv_str(pk, "node", e->node) != 0 || pk_kv_str(pk, "event", EVENT_PUBLISHER_STATS) != 0 ||
	    pk_kv_u64(pk, "published", st->published) != 0 ||
	    pk_kv_u64(pk, "published_bytes", st->published_bytes) != 0 ||
	    pk_kv_u64(pk, "confirmed_seq", st->confirmed_seq) != 0 ||
	    pk_kv_u64(pk, "last_read_seq", st->last_read_seq) != 0 ||
	    pk_kv_u64(pk, "refused_too_large", st->refused_too_large) != 0 ||
	    pk_kv_u64(pk, "malformed", st->malformed) != 0 ||
	    pk_kv_u64(pk, "decode_errors", st->decode_errors) != 0 ||
	    pk_kv_u64(pk, "nats_errors", st->nats_errors) != 0 ||
	    pk_kv_u64(pk, "reconnects", st->reconnects) != 0 ||
	    pk_kv_u64(pk, "queue_used", st->queue_used) != 0 ||
	    pk_kv_u64(pk, "queue_capacity", st->queue_capacity) != 0 ||
	    pk_kv_bool(pk, "connected", st->connected) != 0 ||
	    pk_kv_bool(pk, "collector_present", st->collector_present) != 0) {
		msgpack_sbuffer_clear(&e->buf);
		e->subject[0] = '\0';
		return ENCODE_NO_MEMORY;
	}
	return ENCODE_OK;
}
