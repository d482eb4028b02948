#include "json.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- output buffer ---- */

void jbuf_init(struct jbuf *b)
{
	memset(b, 0, sizeof(*b));
}

void jbuf_reset(struct jbuf *b)
{
	b->len = 0;
	b->oom = false;
}

void jbuf_free(struct jbuf *b)
{
	free(b->data);
	jbuf_init(b);
}

/* Room for extra more bytes; false (and b->oom) when that cannot be had. */
static bool reserve(struct jbuf *b, size_t extra)
{
	if (b->oom)
		return false;
	if (b->cap - b->len >= extra)
		return true;
	if (extra > SIZE_MAX / 2 - b->len) {
		b->oom = true;
		return false;
	}
	size_t cap = b->cap ? b->cap : 4096;
	while (cap - b->len < extra)
		cap *= 2;
	char *data = realloc(b->data, cap);
	if (!data) {
		b->oom = true;
		return false;
	}
	b->data = data;
	b->cap = cap;
	return true;
}

static void put(struct jbuf *b, const void *s, size_t n)
{
	if (!reserve(b, n))
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
}

static void putc_(struct jbuf *b, char c)
{
	if (!reserve(b, 1))
		return;
	b->data[b->len++] = c;
}

static void puts_(struct jbuf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void putf(struct jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct jbuf *b, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static const char hexdigits[] = "0123456789abcdef";

static void put_hex(struct jbuf *b, const uint8_t *p, size_t n)
{
	if (n > SIZE_MAX / 2 || !reserve(b, 2 * n))
		return;
	char *o = b->data + b->len;
	for (size_t i = 0; i < n; i++) {
		o[2 * i] = hexdigits[p[i] >> 4];
		o[2 * i + 1] = hexdigits[p[i] & 15];
	}
	b->len += 2 * n;
}

/* ---- JSON strings ---- */

static void put_u_escape(struct jbuf *b, unsigned cp)
{
	char e[6] = { '\\', 'u', hexdigits[(cp >> 12) & 15], hexdigits[(cp >> 8) & 15],
		      hexdigits[(cp >> 4) & 15], hexdigits[cp & 15] };
	put(b, e, sizeof(e));
}

/* Length of the valid UTF-8 sequence starting at s[0] (a byte >= 0x80), or
 * 0 with *bad set to the length of its maximal invalid subpart (the bytes
 * one U+FFFD replaces, as the Unicode standard recommends). */
static size_t utf8_sequence(const uint8_t *s, size_t n, size_t *bad)
{
	uint8_t c = s[0];
	size_t need;
	uint8_t lo = 0x80, hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 1;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else {
		*bad = 1; /* a continuation byte, C0, C1, F5..FF */
		return 0;
	}
	size_t i = 1;
	for (; i <= need; i++) {
		if (i >= n || s[i] < lo || s[i] > hi) {
			*bad = i;
			return 0;
		}
		lo = 0x80;
		hi = 0xbf;
	}
	return need + 1;
}

void json_put_string(struct jbuf *b, const uint8_t *s, size_t n)
{
	/* Worst case 6 output bytes per input byte; reserve in one step for
	 * the common case and let put() grow for long strings. */
	if (n < 4096)
		reserve(b, 6 * n + 2);
	putc_(b, '"');
	size_t i = 0;
	while (i < n) {
		/* Copy a run of plain printable ASCII in one go. */
		size_t j = i;
		while (j < n && s[j] >= 0x20 && s[j] < 0x7f && s[j] != '"' && s[j] != '\\')
			j++;
		if (j > i) {
			put(b, s + i, j - i);
			i = j;
			continue;
		}
		uint8_t c = s[i];
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			put(b, e, 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			put_u_escape(b, c);
			i++;
		} else {
			size_t bad = 0;
			size_t len = utf8_sequence(s + i, n - i, &bad);
			if (len == 0) {
				put_u_escape(b, 0xfffd);
				i += bad;
				continue;
			}
			unsigned cp;
			if (len == 2)
				cp = (unsigned)(c & 0x1f) << 6 | (s[i + 1] & 0x3f);
			else if (len == 3)
				cp = (unsigned)(c & 0x0f) << 12 | (unsigned)(s[i + 1] & 0x3f) << 6 |
				     (s[i + 2] & 0x3f);
			else
				cp = 0x10000; /* no 4-byte code point is escaped */
			/* C1 controls and the JavaScript line separators: valid
			 * JSON either way, escaped so a terminal or a JS consumer
			 * does not act on them. */
			if ((cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029)
				put_u_escape(b, cp);
			else
				put(b, s + i, len);
			i += len;
		}
	}
	putc_(b, '"');
}

/* ---- MessagePack reader ---- */

struct reader {
	const uint8_t *p;
	size_t len;
	size_t pos;
	char err[160];
};

enum kind { K_NIL, K_BOOL, K_UINT, K_NEGINT, K_F32, K_F64, K_STR, K_BIN, K_EXT, K_ARRAY, K_MAP };

static const char *const kind_names[] = { "nil",   "bool", "positive int", "negative int",
					  "float", "float", "str",          "bin",
					  "ext",   "array", "map" };

struct item {
	enum kind kind;
	size_t at; /* offset of the type byte */
	bool b;
	uint64_t u;
	int64_t i;
	float f32;
	double f64;
	const uint8_t *ptr; /* str, bin, ext data */
	uint32_t len;       /* str, bin, ext data length; array/map element count */
	int8_t ext_type;
};

static bool fail(struct reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(struct reader *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	return false;
}

static bool need(struct reader *r, size_t at, size_t n, const char *what)
{
	if (r->len - r->pos >= n)
		return true;
	return fail(r, "truncated at byte %zu: %s needs %zu bytes, %zu left", at, what, n,
		    r->len - r->pos);
}

static uint64_t be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned k = 0; k < n; k++)
		v = v << 8 | p[k];
	return v;
}

/* Reads n big-endian bytes (after checking they are there). */
static bool read_be(struct reader *r, size_t at, unsigned n, const char *what, uint64_t *v)
{
	if (!need(r, at, n, what))
		return false;
	*v = be(r->p + r->pos, n);
	r->pos += n;
	return true;
}

static bool read_data(struct reader *r, struct item *it, uint64_t n, const char *what)
{
	if (!need(r, it->at, n, what))
		return false;
	it->ptr = r->p + r->pos;
	it->len = (uint32_t)n;
	r->pos += n;
	return true;
}

/* Reads one item's header and, for scalars, str, bin and ext, its data.
 * For an array or map only the header: its elements follow. */
static bool read_item(struct reader *r, struct item *it)
{
	memset(it, 0, sizeof(*it));
	it->at = r->pos;
	if (r->pos >= r->len)
		return fail(r, "truncated at byte %zu: a value is missing", r->pos);
	uint8_t t = r->p[r->pos++];
	uint64_t v;

	if (t <= 0x7f) {
		it->kind = K_UINT;
		it->u = t;
		return true;
	}
	if (t >= 0xe0) {
		it->kind = K_NEGINT;
		it->i = (int8_t)t;
		return true;
	}
	if (t >= 0x80 && t <= 0x8f) {
		it->kind = K_MAP;
		it->len = t & 0x0f;
		goto check_count;
	}
	if (t >= 0x90 && t <= 0x9f) {
		it->kind = K_ARRAY;
		it->len = t & 0x0f;
		goto check_count;
	}
	if (t >= 0xa0 && t <= 0xbf) {
		it->kind = K_STR;
		return read_data(r, it, t & 0x1f, "str");
	}
	switch (t) {
	case 0xc0: it->kind = K_NIL; return true;
	case 0xc2: it->kind = K_BOOL; it->b = false; return true;
	case 0xc3: it->kind = K_BOOL; it->b = true; return true;
	case 0xc4: case 0xc5: case 0xc6: {
		unsigned n = 1u << (t - 0xc4);
		it->kind = K_BIN;
		return read_be(r, it->at, n, "bin length", &v) && read_data(r, it, v, "bin");
	}
	case 0xc7: case 0xc8: case 0xc9: {
		unsigned n = 1u << (t - 0xc7);
		uint64_t type;
		it->kind = K_EXT;
		if (!read_be(r, it->at, n, "ext length", &v) ||
		    !read_be(r, it->at, 1, "ext type", &type))
			return false;
		it->ext_type = (int8_t)(uint8_t)type;
		return read_data(r, it, v, "ext");
	}
	case 0xca: {
		if (!read_be(r, it->at, 4, "float32", &v))
			return false;
		uint32_t w = (uint32_t)v;
		it->kind = K_F32;
		memcpy(&it->f32, &w, sizeof(w));
		return true;
	}
	case 0xcb:
		if (!read_be(r, it->at, 8, "float64", &v))
			return false;
		it->kind = K_F64;
		memcpy(&it->f64, &v, sizeof(v));
		return true;
	case 0xcc: case 0xcd: case 0xce: case 0xcf: {
		static const char *const names[] = { "uint8", "uint16", "uint32", "uint64" };
		if (!read_be(r, it->at, 1u << (t - 0xcc), names[t - 0xcc], &v))
			return false;
		it->kind = K_UINT;
		it->u = v;
		return true;
	}
	case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
		static const char *const names[] = { "int8", "int16", "int32", "int64" };
		unsigned n = 1u << (t - 0xd0);
		if (!read_be(r, it->at, n, names[t - 0xd0], &v))
			return false;
		/* Sign-extend n bytes. */
		int64_t s;
		if (n == 8) {
			memcpy(&s, &v, sizeof(s));
		} else {
			unsigned shift = 64 - 8 * n;
			s = (int64_t)(v << shift) >> shift;
		}
		if (s >= 0) {
			it->kind = K_UINT;
			it->u = (uint64_t)s;
		} else {
			it->kind = K_NEGINT;
			it->i = s;
		}
		return true;
	}
	case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: {
		uint64_t type;
		it->kind = K_EXT;
		if (!read_be(r, it->at, 1, "ext type", &type))
			return false;
		it->ext_type = (int8_t)(uint8_t)type;
		return read_data(r, it, 1u << (t - 0xd4), "fixext");
	}
	case 0xd9: case 0xda: case 0xdb: {
		unsigned n = 1u << (t - 0xd9);
		it->kind = K_STR;
		return read_be(r, it->at, n, "str length", &v) && read_data(r, it, v, "str");
	}
	case 0xdc: case 0xdd:
		it->kind = K_ARRAY;
		if (!read_be(r, it->at, t == 0xdc ? 2 : 4, "array length", &v))
			return false;
		it->len = (uint32_t)v;
		goto check_count;
	case 0xde: case 0xdf:
		it->kind = K_MAP;
		if (!read_be(r, it->at, t == 0xde ? 2 : 4, "map length", &v))
			return false;
		it->len = (uint32_t)v;
		goto check_count;
	default:
		return fail(r, "invalid type byte 0xc1 at byte %zu", it->at);
	}

check_count:
	/* Every element takes at least one byte: refuse a count the rest of
	 * the message cannot hold before looping over it. */
	{
		uint64_t min = (uint64_t)it->len * (it->kind == K_MAP ? 2 : 1);
		if (min > r->len - r->pos)
			return fail(r, "truncated at byte %zu: %s of %" PRIu32
				    " %s, only %zu bytes left", it->at,
				    kind_names[it->kind], it->len,
				    it->kind == K_MAP ? "entries" : "elements", r->len - r->pos);
	}
	return true;
}

#define TWO_POW_53 9007199254740992ULL

static void put_uint(struct jbuf *b, uint64_t u)
{
	if (u > TWO_POW_53)
		putf(b, "\"%" PRIu64 "\"", u);
	else
		putf(b, "%" PRIu64, u);
}

static void put_negint(struct jbuf *b, int64_t i)
{
	if (i < -(int64_t)TWO_POW_53)
		putf(b, "\"%" PRId64 "\"", i);
	else
		putf(b, "%" PRId64, i);
}

static void put_double(struct jbuf *b, double d)
{
	if (!isfinite(d)) {
		puts_(b, "null");
		return;
	}
	char s[40];
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(s, sizeof(s), "%.*g", prec, d);
		if (strtod(s, NULL) == d)
			break;
	}
	puts_(b, s);
}

static void put_float(struct jbuf *b, float f)
{
	if (!isfinite(f)) {
		puts_(b, "null");
		return;
	}
	char s[40];
	for (int prec = 6; prec <= 9; prec++) {
		snprintf(s, sizeof(s), "%.*g", prec, (double)f);
		if (strtof(s, NULL) == f)
			break;
	}
	puts_(b, s);
}

static bool emit_value(struct reader *r, const struct item *it, struct jbuf *out, bool emit,
		       unsigned depth);

/* The elements of an array or map whose header is in it. */
static bool emit_container(struct reader *r, const struct item *it, struct jbuf *out, bool emit,
			   unsigned depth);

/* A map key as a JSON string. */
static bool emit_key(struct reader *r, const struct item *k, struct jbuf *out, unsigned depth)
{
	switch (k->kind) {
	case K_STR:
		json_put_string(out, k->ptr, k->len);
		return true;
	case K_BIN:
		putc_(out, '"');
		put_hex(out, k->ptr, k->len);
		putc_(out, '"');
		return true;
	case K_UINT:
		putf(out, "\"%" PRIu64 "\"", k->u);
		return true;
	case K_NEGINT:
		putf(out, "\"%" PRId64 "\"", k->i);
		return true;
	default: {
		/* nil, bool, float, ext, array, map: their JSON text, quoted. */
		struct jbuf tmp;
		jbuf_init(&tmp);
		bool ok = emit_value(r, k, &tmp, true, depth);
		if (tmp.oom)
			out->oom = true;
		else if (ok)
			json_put_string(out, (const uint8_t *)tmp.data, tmp.len);
		jbuf_free(&tmp);
		return ok;
	}
	}
}

static bool emit_value(struct reader *r, const struct item *it, struct jbuf *out, bool emit,
		       unsigned depth)
{
	if (it->kind == K_ARRAY || it->kind == K_MAP)
		return emit_container(r, it, out, emit, depth);
	if (!emit)
		return true;
	switch (it->kind) {
	case K_NIL: puts_(out, "null"); break;
	case K_BOOL: puts_(out, it->b ? "true" : "false"); break;
	case K_UINT: put_uint(out, it->u); break;
	case K_NEGINT: put_negint(out, it->i); break;
	case K_F32: put_float(out, it->f32); break;
	case K_F64: put_double(out, it->f64); break;
	case K_STR: json_put_string(out, it->ptr, it->len); break;
	case K_BIN:
		putc_(out, '"');
		put_hex(out, it->ptr, it->len);
		putc_(out, '"');
		break;
	case K_EXT:
		putf(out, "{\"ext_type\":%d,\"data\":\"", it->ext_type);
		put_hex(out, it->ptr, it->len);
		puts_(out, "\"}");
		break;
	default: break;
	}
	return true;
}

static bool emit_container(struct reader *r, const struct item *it, struct jbuf *out, bool emit,
			   unsigned depth)
{
	if (depth >= MP_JSON_MAX_DEPTH)
		return fail(r, "nested deeper than %d levels at byte %zu", MP_JSON_MAX_DEPTH,
			    it->at);
	bool map = it->kind == K_MAP;
	if (emit)
		putc_(out, map ? '{' : '[');
	for (uint32_t n = 0; n < it->len; n++) {
		struct item k, v;
		if (emit && n > 0)
			putc_(out, ',');
		if (map) {
			if (!read_item(r, &k))
				return false;
			if (emit) {
				if (!emit_key(r, &k, out, depth + 1))
					return false;
				putc_(out, ':');
			} else if (!emit_value(r, &k, out, false, depth + 1)) {
				return false;
			}
		}
		if (!read_item(r, &v) || !emit_value(r, &v, out, emit, depth + 1))
			return false;
		if (out->oom)
			return false;
	}
	if (emit)
		putc_(out, map ? '}' : ']');
	return true;
}

/* The top-level map: like emit_container, plus the subject key and
 * --no-payload. */
static bool emit_top(struct reader *r, const struct item *it, const struct mp_json_options *o,
		     struct jbuf *out)
{
	putc_(out, '{');
	bool first = true;
	if (o->subject_key) {
		puts_(out, "\"subject\":");
		if (o->subject)
			json_put_string(out, (const uint8_t *)o->subject, strlen(o->subject));
		else
			puts_(out, "null");
		first = false;
	}
	for (uint32_t n = 0; n < it->len; n++) {
		struct item k, v;
		if (!read_item(r, &k))
			return false;
		if (o->no_payload && k.kind == K_STR && k.len == 7 &&
		    memcmp(k.ptr, "payload", 7) == 0) {
			/* Skipped, but still checked. */
			if (!read_item(r, &v) || !emit_value(r, &v, out, false, 1))
				return false;
			continue;
		}
		if (!first)
			putc_(out, ',');
		first = false;
		if (!emit_key(r, &k, out, 1))
			return false;
		putc_(out, ':');
		if (!read_item(r, &v) || !emit_value(r, &v, out, true, 1))
			return false;
		if (out->oom)
			return false;
	}
	putc_(out, '}');
	return true;
}

static void put_error(struct jbuf *out, const struct mp_json_options *o, const char *error,
		      size_t bytes)
{
	puts_(out, "{\"subject\":");
	if (o->subject)
		json_put_string(out, (const uint8_t *)o->subject, strlen(o->subject));
	else
		puts_(out, "null");
	puts_(out, ",\"error\":");
	json_put_string(out, (const uint8_t *)error, strlen(error));
	putf(out, ",\"bytes\":%zu}\n", bytes);
}

enum mp_json_result mp_to_json(const uint8_t *in, size_t len, const struct mp_json_options *o,
			       struct jbuf *out)
{
	static const struct mp_json_options none = { 0 };
	if (!o)
		o = &none;
	size_t start = out->len;
	struct reader r = { .p = in, .len = len };
	struct item top;
	char error[sizeof(r.err) + 64];

	if (len == 0) {
		snprintf(error, sizeof(error), "not MessagePack: empty message");
		goto invalid;
	}
	if (!read_item(&r, &top))
		goto not_msgpack;
	if (top.kind != K_MAP) {
		/* Valid MessagePack of another type, or not MessagePack? */
		struct jbuf scratch;
		jbuf_init(&scratch);
		bool ok = emit_value(&r, &top, &scratch, false, 0);
		jbuf_free(&scratch);
		if (!ok)
			goto not_msgpack;
		if (r.pos < len)
			goto trailing;
		snprintf(error, sizeof(error), "not a map: the message is one %s",
			 kind_names[top.kind]);
		goto invalid;
	}
	if (!emit_top(&r, &top, o, out)) {
		if (out->oom)
			return MP_JSON_NOMEM;
		goto not_msgpack;
	}
	if (r.pos < len)
		goto trailing;
	putc_(out, '\n');
	return out->oom ? MP_JSON_NOMEM : MP_JSON_OK;

trailing:
	snprintf(error, sizeof(error), "not MessagePack: %zu bytes after the end of the %s",
		 len - r.pos, top.kind == K_MAP ? "map" : "value");
	goto invalid;
not_msgpack:
	snprintf(error, sizeof(error), "not MessagePack: %s", r.err);
invalid:
	out->len = start;
	out->oom = false;
	put_error(out, o, error, len);
	return out->oom ? MP_JSON_NOMEM : MP_JSON_INVALID;
}
