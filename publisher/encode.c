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
 *
 * Speed: this runs for every event. encoder_init works out, per tracepoint,
 * what all its events share (struct encode_plan: subject, encoded keys,
 * field roles, the most bytes an event can take), and an event is written
 * with mp_write.h's unchecked writes after one capacity check.
 */
#include "encode.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
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

/* ---- packing helpers (mp_write.h; errors are sticky in b->failed) ---- */

static void kv_u64(struct mp_buf *b, const char *key, uint64_t v)
{
	mp_str(b, key, strlen(key));
	mp_uint(b, v);
}

static void kv_bool(struct mp_buf *b, const char *key, bool v)
{
	mp_str(b, key, strlen(key));
	mp_bool(b, v);
}

static void kv_str(struct mp_buf *b, const char *key, const char *v)
{
	mp_str(b, key, strlen(key));
	mp_str(b, v, strlen(v));
}

/* The most bytes put_common writes, besides the node name and the event
 * name: a map header, seven keys (41 bytes), five integers and two str
 * headers. */
/* The most bytes put_common writes besides its tail: a map header, five
 * keys (30 bytes) and five integers. */
#define COMMON_BOUND (MP_HEADER_MAX + 30 + 5 * MP_INT_MAX)

/* The tail of the common keys, the same for every record of one event
 * type: "node": <node>, "event": <event> (at most COMMON_TAIL_MAX bytes). */
static unsigned char *put_common_tail(unsigned char *p, const struct encoder *e,
				      const char *event, size_t event_len)
{
	p = MP_PUT_KEY(p, "node");
	p = mp_put_str(p, e->node, e->node_len);
	p = MP_PUT_KEY(p, "event");
	return mp_put_str(p, event, event_len);
}

/* The map header and the keys every record but publisher_stats starts
 * with (COMMON_KEYS), at a cursor with room for COMMON_BOUND + tail_len. */
static unsigned char *put_common(unsigned char *p, uint32_t map_size, uint64_t stream_id,
				 uint64_t seq, const struct record_header *h,
				 const unsigned char *tail, size_t tail_len)
{
	p = mp_put_map(p, map_size);
	p = MP_PUT_KEY(p, "stream_id");
	p = mp_put_uint(p, stream_id);
	p = MP_PUT_KEY(p, "seq");
	p = mp_put_uint(p, seq);
	p = MP_PUT_KEY(p, "time_ns");
	p = mp_put_uint(p, h->time_ns);
	p = MP_PUT_KEY(p, "pid");
	p = mp_put_uint(p, h->pid);
	p = MP_PUT_KEY(p, "tid");
	p = mp_put_uint(p, h->tid);
	return mp_put_raw(p, tail, tail_len);
}

/* put_common for the collector's records (checked). */
static void pack_common(struct encoder *e, uint32_t map_size, uint64_t stream_id, uint64_t seq,
			const struct record_header *h, const char *event)
{
	unsigned char tail[COMMON_TAIL_MAX];
	size_t tail_len = (size_t)(put_common_tail(tail, e, event, strlen(event)) - tail);
	unsigned char *p = mp_room(&e->buf, COMMON_BOUND + tail_len);
	if (p)
		mp_commit(&e->buf, put_common(p, map_size, stream_id, seq, h, tail, tail_len));
}

/* "attached": the names of the tracepoints whose bit is set (validated). */
static void pack_attached(struct mp_buf *b, uint32_t attached)
{
	MP_KEY(b, "attached");
	mp_array(b, (size_t)__builtin_popcount(attached));
	for (int tp = 1; tp < TP_COUNT; tp++)
		if (attached & (1u << tp))
			mp_str(b, tracepoint_table[tp].event, strlen(tracepoint_table[tp].event));
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

/* A hash as bin, reversed into the order bitcoin-cli prints. */
static unsigned char *put_hash(unsigned char *p, const unsigned char *h, size_t size)
{
	size_t n = size < HASH_LEN ? size : HASH_LEN;
	p = mp_put_bin_header(p, n);
	if (n == HASH_LEN) { /* the usual case: four byte-swapped words */
		for (int w = 0; w < 4; w++) {
			uint64_t v = __builtin_bswap64(rd_u64(h + 8 * (3 - w)));
			memcpy(p + 8 * w, &v, sizeof(v));
		}
		return p + n;
	}
	for (size_t i = 0; i < n; i++)
		p[i] = h[n - 1 - i];
	return p + n;
}

/* The most bytes put_value writes for a field (a payload: plus its length). */
static size_t value_bound(const struct event_field *f)
{
	switch (f->kind) {
	case FIELD_STR:
	case FIELD_HASH:
		return MP_HEADER_MAX + f->size;
	case FIELD_PAYLOAD:
		return MP_HEADER_MAX;
	default:
		return MP_INT_MAX;
	}
}

/* The value of one field (its key is written by the caller). */
static unsigned char *put_value(unsigned char *p, const struct event_field *f,
				const unsigned char *body, const unsigned char *payload,
				uint64_t payload_len)
{
	const unsigned char *v = body + f->offset;
	switch (f->kind) {
	case FIELD_I64:
		return mp_put_int(p, (int64_t)rd_u64(v));
	case FIELD_U64:
		return mp_put_uint(p, rd_u64(v));
	case FIELD_I32:
		return mp_put_int(p, (int32_t)rd_u32(v));
	case FIELD_U32:
		return mp_put_uint(p, rd_u32(v));
	case FIELD_BOOL:
		return mp_put_bool(p, v[0] != 0);
	case FIELD_STR:
		return mp_put_str(p, (const char *)v, strnlen((const char *)v, f->size));
	case FIELD_HASH:
		return put_hash(p, v, f->size);
	case FIELD_PAYLOAD:
		return mp_put_raw(mp_put_bin_header(p, (size_t)payload_len), payload,
				  (size_t)payload_len);
	}
	return p; /* not reached: make_plan marks a table with other kinds unfit */
}

#define SUFFIX_TRUNCATED "_truncated"
#define SUFFIX_READ_FAILED "_read_failed"
/* The most bytes put_flag_keys writes besides twice the key's length. */
#define FLAG_KEYS_BOUND (2 * (MP_HEADER_MAX + 1) + sizeof(SUFFIX_TRUNCATED SUFFIX_READ_FAILED))

/* "<key>_truncated": true, "<key>_read_failed": true, as flagged. */
static unsigned char *put_flag_keys(unsigned char *p, const char *key, size_t key_len, int i,
				    uint32_t flags)
{
	static const struct {
		uint32_t flag_of_arg0;
		const char *suffix;
		size_t len;
	} keys[] = {
		{ RECORD_FLAG_TRUNCATED(0), SUFFIX_TRUNCATED, sizeof(SUFFIX_TRUNCATED) - 1 },
		{ RECORD_FLAG_READ_FAILED(0), SUFFIX_READ_FAILED, sizeof(SUFFIX_READ_FAILED) - 1 },
	};
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		if (!(flags & (keys[k].flag_of_arg0 << i)))
			continue;
		p = mp_put_str_header(p, key_len + keys[k].len);
		p = mp_put_raw(p, key, key_len);
		p = mp_put_raw(p, keys[k].suffix, keys[k].len);
		p = mp_put_bool(p, true);
	}
	return p;
}

/* ---- encoder ---- */

/* The most bytes of the keys an event's `decoded` part adds besides the
 * map itself: "decoded", "decoded_truncated": true, "decode_error": text. */
#define DECODED_KEYS_BOUND (8 + 19 + 13 + MP_HEADER_MAX + P2P_DECODE_ERROR_LEN)

/* e->plans[tp]: one tracepoint's subject, encoded keys and common tail,
 * field roles, allowed flags, and the most bytes its events take (needs
 * e->prefix and e->node). */
static void make_plan(struct encoder *e, enum tracepoint_id tp)
{
	const struct event_layout *L = &event_layouts[tp];
	const struct tracepoint_info *ti = &tracepoint_table[tp];
	struct encode_plan *P = &e->plans[tp];
	int n = snprintf(P->subject, sizeof(P->subject), "%s.%s.%s", e->prefix, ti->provider,
			 ti->name);
	P->subject_len = (uint16_t)(n > 0 ? n : 0);
	size_t event_len = strlen(ti->event);
	P->unfit = event_len > EVENT_NAME_MAX;
	if (!P->unfit)
		P->tail_len = (uint16_t)(put_common_tail(P->tail, e, ti->event, event_len) - P->tail);
	P->size_idx = P->payload_idx = P->msg_type_idx = -1;
	/* + KEY_SLOT: put_key writes a whole slot for the last key too */
	P->bound = COMMON_BOUND + P->tail_len + KEY_SLOT;
	for (int i = 0; i < L->field_count; i++) {
		const struct event_field *f = &L->fields[i];
		size_t key_len = strlen(f->name);
		if (key_len > KEY_SLOT - 1 || f->kind > FIELD_PAYLOAD)
			P->unfit = true; /* a longer name would need a bigger slot */
		else
			P->key_size[i] = (uint8_t)(mp_put_str(P->keys[i], f->name, key_len) - P->keys[i]);
		P->key_len[i] = (uint8_t)key_len;
		/* the key, the value, and both flag keys */
		P->bound += MP_HEADER_MAX + key_len + value_bound(f) + 2 * key_len + FLAG_KEYS_BOUND;
		P->allowed_flags |= RECORD_FLAG_READ_FAILED(i);
		if (f->kind == FIELD_STR || f->kind == FIELD_PAYLOAD)
			P->allowed_flags |= RECORD_FLAG_TRUNCATED(i);
		if (f->kind == FIELD_PAYLOAD)
			P->payload_idx = (int8_t)i;
		if (f->kind == FIELD_U64 && strcmp(f->name, "size") == 0)
			P->size_idx = (int8_t)i;
		if (f->kind == FIELD_STR && strcmp(f->name, "msg_type") == 0)
			P->msg_type_idx = (int8_t)i;
	}
	if (P->payload_idx >= 0)
		P->bound += DECODED_KEYS_BOUND;
	P->unfit |= L->body_size > EVENT_BODY_MAX || (P->payload_idx >= 0 && P->size_idx < 0);
}

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
	e->node_len = nlen;
	e->pid = (uint32_t)getpid();
	for (int tp = TP_NONE + 1; tp < TP_COUNT; tp++)
		make_plan(e, (enum tracepoint_id)tp);
	if (p2p_decoder_init(&e->dec) != 0) {
		fail(err, "cannot make a SHA-256 context (OpenSSL)");
		return -1;
	}
	return 0;
}

void encoder_free(struct encoder *e)
{
	mp_free(&e->buf);
	p2p_decoder_free(&e->dec);
	memset(e, 0, sizeof(*e));
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

/* One event record being encoded: the stack copy of its body and what
 * the checks found. */
struct event_in {
	enum tracepoint_id tp;
	const struct event_layout *L;
	const struct encode_plan *P;
	const char *ev;              /* "mempool:added", for messages */
	const unsigned char *rec;    /* the record in the queue */
	uint32_t length;
	size_t fixed;                /* header + body bytes */
	uint32_t flags;
	uint64_t size, payload_len;  /* P2P: the declared size, the bytes captured */
	_Alignas(8) unsigned char body[EVENT_BODY_MAX];
};

/* The record's length against its layout, and the payload against the
 * declared size. Copies the body. */
static int check_event_length(struct event_in *in, char *err)
{
	const struct event_layout *L = in->L;
	const struct encode_plan *P = in->P;
	const char *ev = in->ev;
	size_t fixed = in->fixed;
	uint32_t length = in->length;
	if (length < fixed || (P->payload_idx < 0 && length != fixed)) {
		if (P->payload_idx < 0)
			fail(err, "%s: record of %" PRIu32 " bytes, expected %zu (32-byte header + %zu-byte body)",
			     ev, length, fixed, L->body_size);
		else
			fail(err, "%s: record of %" PRIu32 " bytes is shorter than its header and body (%zu bytes)",
			     ev, length, fixed);
		return -1;
	}
	memcpy(in->body, in->rec + HDR_SIZE, L->body_size);
	if (P->payload_idx < 0)
		return 0;
	in->size = rd_u64(in->body + L->fields[P->size_idx].offset);
	uint64_t want = in->size < P2P_PAYLOAD_MAX ? in->size : P2P_PAYLOAD_MAX;
	in->payload_len = length - fixed;
	if (in->payload_len != want) {
		fail(err, "%s: %" PRIu64 " payload bytes, but size %" PRIu64 " means %" PRIu64, ev,
		     in->payload_len, in->size, want);
		return -1;
	}
	return 0;
}

/* flags: each bit must name an argument of this tracepoint, a truncation
 * bit a string (or the payload) */
static int check_event_flags(const struct event_in *in, char *err)
{
	const struct encode_plan *P = in->P;
	const char *ev = in->ev;
	uint32_t flags = in->flags;
	uint32_t bad = flags & ~P->allowed_flags;
	if (bad) {
		int bit = __builtin_ctz(bad);
		int arg = bit >= 16 ? bit - 16 : bit;
		const char *what = bit >= 16 ? "truncated" : "read-failed";
		if (arg >= in->L->field_count)
			fail(err, "%s: flags 0x%08" PRIx32 ": %s flag for argument %d, but it has %d arguments",
			     ev, flags, what, arg, in->L->field_count);
		else
			fail(err, "%s: flags 0x%08" PRIx32 ": truncated flag on %s, which is not a string",
			     ev, flags, in->L->fields[arg].name);
		return -1;
	}
	if (P->payload_idx >= 0) {
		bool flagged = flags & RECORD_FLAG_TRUNCATED(P->payload_idx);
		if (flagged != (in->size > P2P_PAYLOAD_MAX)) {
			fail(err, "%s: size %" PRIu64 " %s, but the payload truncated flag is %s", ev,
			     in->size, flagged ? "fits in 4000000 bytes" : "is over 4000000 bytes",
			     flagged ? "set" : "missing");
			return -1;
		}
	}
	return 0;
}

/* values: strings terminated, bools 0 or 1, unread fields zero */
static int check_event_values(const struct event_in *in, char *err)
{
	const struct event_layout *L = in->L;
	for (int i = 0; i < L->field_count; i++) {
		const struct event_field *f = &L->fields[i];
		const unsigned char *p = in->body + f->offset;
		if (f->kind == FIELD_PAYLOAD)
			continue;
		if (f->kind == FIELD_STR && !memchr(p, '\0', f->size)) {
			fail(err, "%s: string %s has no NUL in its %u-byte buffer", in->ev, f->name,
			     (unsigned)f->size);
			return -1;
		}
		if (f->kind == FIELD_BOOL && p[0] > 1) {
			fail(err, "%s: bool %s is %u, not 0 or 1", in->ev, f->name, (unsigned)p[0]);
			return -1;
		}
		if ((in->flags & RECORD_FLAG_READ_FAILED(i)) && !all_zero(p, f->size)) {
			fail(err, "%s: %s is flagged as not read but its bytes are not zero", in->ev,
			     f->name);
			return -1;
		}
	}
	return 0;
}

static const char *event_msg_type(const struct event_in *in)
{
	return (const char *)in->body + in->L->fields[in->P->msg_type_idx].offset;
}

/* subject: <prefix>.<provider>.<name>[.<message type token>] */
static void event_subject(struct encoder *e, const struct event_in *in)
{
	const struct encode_plan *P = in->P;
	memcpy(e->subject, P->subject, (size_t)P->subject_len + 1);
	if (P->msg_type_idx >= 0) {
		e->subject[P->subject_len] = '.';
		subject_token(event_msg_type(in), e->subject + P->subject_len + 1, MSG_TYPE_LEN + 1);
	}
}

/* The `decoded` part of a P2P message: *drc is P2P_DECODED (the map in
 * e->dec.out), P2P_DECODE_FAILED (the reason in derr), or
 * P2P_UNKNOWN_TYPE; *dtrunc when the map did not fit its budget. -1 when
 * out of memory. */
static int decode_payload(struct encoder *e, const struct event_in *in, int *drc, bool *dtrunc,
			  char derr[P2P_DECODE_ERROR_LEN])
{
	const struct encode_plan *P = in->P;
	*drc = P2P_UNKNOWN_TYPE;
	*dtrunc = false;
	derr[0] = '\0';
	if (P->payload_idx < 0 || P->msg_type_idx < 0 || !p2p_decode_known(event_msg_type(in)))
		return 0;
	size_t budget = decoded_budget(e, in->length, in->payload_len);
	if (in->flags & (RECORD_FLAG_TRUNCATED(P->payload_idx) |
			 RECORD_FLAG_READ_FAILED(P->payload_idx) | RECORD_FLAG_READ_FAILED(P->size_idx))) {
		*drc = P2P_DECODE_FAILED;
		snprintf(derr, P2P_DECODE_ERROR_LEN, "not decoded: the payload is incomplete (%s)",
			 in->flags & RECORD_FLAG_TRUNCATED(P->payload_idx) ? "payload_truncated"
									    : "read_failed");
	} else if (budget < 2 * P2P_DECODE_MARGIN) {
		*dtrunc = true; /* no room at all: no map */
	} else {
		*drc = p2p_decode(&e->dec, event_msg_type(in), in->rec + in->fixed,
				  (size_t)in->payload_len, budget, dtrunc, derr);
		if (*drc == P2P_DECODE_NO_MEMORY)
			return -1;
	}
	return 0;
}

/* The key of field i, copied as a whole slot (a fixed-size copy is a few
 * vector moves, not a call to memcpy); the bytes past the key are
 * overwritten by what follows, or lie in the slack of P->bound. */
static unsigned char *put_key(unsigned char *p, const struct encode_plan *P, int i)
{
	memcpy(p, P->keys[i], KEY_SLOT);
	return p + P->key_size[i];
}

/* The map: common keys, the fields (with their flag keys), then the
 * decoded part; at a cursor with room for P->bound + the payload + dsize. */
static unsigned char *put_event(unsigned char *p, const struct encoder *e,
				const struct event_in *in, uint64_t stream_id, uint64_t seq,
				const struct record_header *h, int drc, bool dtrunc, const char *derr)
{
	const struct event_layout *L = in->L;
	const struct encode_plan *P = in->P;
	uint32_t keys = COMMON_KEYS + (uint32_t)L->field_count + (uint32_t)__builtin_popcount(in->flags);
	keys += (drc == P2P_DECODED) + dtrunc + (drc == P2P_DECODE_FAILED);
	p = put_common(p, keys, stream_id, seq, h, P->tail, P->tail_len);
	for (int i = 0; i < L->field_count; i++) {
		const struct event_field *f = &L->fields[i];
		p = put_key(p, P, i);
		p = put_value(p, f, in->body, in->rec + in->fixed, in->payload_len);
		if (in->flags & (RECORD_FLAG_TRUNCATED(i) | RECORD_FLAG_READ_FAILED(i)))
			p = put_flag_keys(p, f->name, P->key_len[i], i, in->flags);
	}
	if (drc == P2P_DECODED) {
		p = MP_PUT_KEY(p, "decoded");
		p = mp_put_raw(p, e->dec.out.data, e->dec.out.size);
	}
	if (dtrunc) {
		p = MP_PUT_KEY(p, "decoded_truncated");
		p = mp_put_bool(p, true);
	}
	if (drc == P2P_DECODE_FAILED) {
		p = MP_PUT_KEY(p, "decode_error");
		p = mp_put_str(p, derr, strnlen(derr, P2P_DECODE_ERROR_LEN - 1));
	}
	return p;
}

static int encode_event(struct encoder *e, uint64_t stream_id, uint64_t seq,
			const struct record_header *h, const unsigned char *rec, uint32_t length,
			char *err)
{
	enum tracepoint_id tp = (enum tracepoint_id)h->tracepoint;
	struct event_in in; /* field by field: an initializer would zero the body too */
	in.tp = tp;
	in.L = &event_layouts[tp];
	in.P = &e->plans[tp];
	in.ev = tracepoint_table[tp].event;
	in.rec = rec;
	in.length = length;
	in.fixed = HDR_SIZE + in.L->body_size;
	in.flags = h->flags;
	in.size = in.payload_len = 0;
	if (in.P->unfit) {
		fail(err, "%s: internal: the field table does not fit the encoder", in.ev);
		return ENCODE_MALFORMED;
	}
	if (check_event_length(&in, err) != 0 || check_event_flags(&in, err) != 0 ||
	    check_event_values(&in, err) != 0)
		return ENCODE_MALFORMED;
	event_subject(e, &in);
	int drc;
	bool dtrunc;
	char derr[P2P_DECODE_ERROR_LEN];
	if (decode_payload(e, &in, &drc, &dtrunc, derr) != 0)
		goto nomem;
	e->decode_failed = drc == P2P_DECODE_FAILED;
	/* room for all of it at once: a 4 MB block in one step, and no
	 * capacity check per value */
	size_t dsize = drc == P2P_DECODED ? e->dec.out.size : 0;
	unsigned char *p = mp_room(&e->buf, in.P->bound + (size_t)in.payload_len + dsize);
	if (!p)
		goto nomem;
	mp_commit(&e->buf, put_event(p, e, &in, stream_id, seq, h, drc, dtrunc, derr));
	return ENCODE_OK;
nomem:
	fail(err, "%s: out of memory encoding a record of %" PRIu32 " bytes", in.ev, length);
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

/* The result of a collector record once packed. */
static int packed(const struct encoder *e, const char *ev, char *err)
{
	if (!e->buf.failed)
		return ENCODE_OK;
	fail(err, "%s: out of memory", ev);
	return ENCODE_NO_MEMORY;
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

	struct mp_buf *b = &e->buf;
	pack_common(e, COMMON_KEYS + 2, stream_id, seq, h, ev);
	MP_KEY(b, "lost");
	mp_map(b, entries);
	for (int tp = 0; tp < TP_COUNT; tp++) {
		const struct loss_counts *c = &r.tp[tp];
		if (!(c->bpf_drops || c->queue_drops || c->incomplete))
			continue;
		mp_str(b, counter_name(tp), strlen(counter_name(tp)));
		mp_map(b, 3);
		kv_u64(b, "bpf_drops", c->bpf_drops);
		kv_u64(b, "queue_drops", c->queue_drops);
		kv_u64(b, "incomplete", c->incomplete);
	}
	kv_u64(b, "lost_total", total);
	return packed(e, ev, err);
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

	struct mp_buf *b = &e->buf;
	pack_common(e, COMMON_KEYS + 5, stream_id, seq, h, ev);
	kv_u64(b, "queue_capacity", r.queue_capacity);
	kv_u64(b, "queue_used", r.queue_used);
	kv_u64(b, "uptime_ns", r.uptime_ns);
	pack_attached(b, r.attached);
	MP_KEY(b, "tracepoints");
	mp_map(b, entries);
	for (int tp = 0; tp < TP_COUNT; tp++) {
		const struct tracepoint_stats *s = &r.tp[tp];
		if (!((r.attached & (1u << tp)) || s->events || s->lost.bpf_drops ||
		      s->lost.queue_drops || s->lost.incomplete))
			continue;
		mp_str(b, counter_name(tp), strlen(counter_name(tp)));
		mp_map(b, 4);
		kv_u64(b, "events", s->events);
		kv_u64(b, "bpf_drops", s->lost.bpf_drops);
		kv_u64(b, "queue_drops", s->lost.queue_drops);
		kv_u64(b, "incomplete", s->lost.incomplete);
	}
	return packed(e, ev, err);
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

	struct mp_buf *b = &e->buf;
	pack_common(e, COMMON_KEYS + 4, stream_id, seq, h, ev);
	MP_KEY(b, "version");
	mp_str(b, r.version, strnlen(r.version, sizeof(r.version)));
	kv_str(b, "attach_mode", mode);
	kv_u64(b, "filter_pid", r.filter_pid);
	pack_attached(b, r.attached);
	return packed(e, ev, err);
}

/* ---- entry points ---- */

int encode_record(struct encoder *e, uint64_t stream_id, uint64_t seq, const void *record,
		  uint32_t length, char err[ENCODE_ERROR_LEN])
{
	const unsigned char *rec = record;
	struct record_header h;
	int rc;

	mp_clear(&e->buf);
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
		mp_clear(&e->buf);
		e->subject[0] = '\0';
		e->decode_failed = false;
	}
	return rc;
}

/* publisher_stats' counters, in the order docs/events.md lists them; the
 * key is the member's name */
#define STATS_COUNTER(member) { #member, offsetof(struct publisher_stats, member) }
static const struct {
	const char *key;
	size_t offset;
} stats_counters[] = {
	STATS_COUNTER(published),	  STATS_COUNTER(published_bytes),
	STATS_COUNTER(confirmed_seq),	  STATS_COUNTER(last_read_seq),
	STATS_COUNTER(refused_too_large), STATS_COUNTER(malformed),
	STATS_COUNTER(decode_errors),	  STATS_COUNTER(nats_errors),
	STATS_COUNTER(reconnects),	  STATS_COUNTER(queue_used),
	STATS_COUNTER(queue_capacity),
};

int encode_publisher_stats(struct encoder *e, const struct publisher_stats *st, uint64_t time_ns)
{
	struct mp_buf *b = &e->buf;
	mp_clear(b);
	snprintf(e->subject, SUBJECT_MAX, "%s.extractor.publisher_stats", e->prefix);
	mp_map(b, 18);
	kv_u64(b, "stream_id", st->stream_id);
	kv_u64(b, "time_ns", time_ns);
	kv_u64(b, "pid", e->pid);
	kv_str(b, "node", e->node);
	kv_str(b, "event", EVENT_PUBLISHER_STATS);
	for (size_t i = 0; i < sizeof(stats_counters) / sizeof(stats_counters[0]); i++) {
		uint64_t v;
		memcpy(&v, (const char *)st + stats_counters[i].offset, sizeof(v));
		kv_u64(b, stats_counters[i].key, v);
	}
	kv_bool(b, "connected", st->connected);
	kv_bool(b, "collector_present", st->collector_present);
	if (b->failed) {
		mp_clear(b);
		e->subject[0] = '\0';
		return ENCODE_NO_MEMORY;
	}
	return ENCODE_OK;
}
