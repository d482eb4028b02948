/* A MessagePack writer into one growing buffer, for the encoder's hot path.
 *
 * Why not msgpack-c's packer: it hands every key and every value to a
 * callback (msgpack_sbuffer_write: a call, a capacity check and a small
 * memcpy each), about 30 calls for a mempool:added event, which was a third
 * of the publisher's CPU per small event. These inline functions write in
 * place. They produce exactly the bytes msgpack-c 4.0 produces (the
 * smallest format for each value; str 8 for strings of 32 to 255 bytes;
 * a signed value >= 0 in the unsigned formats), so docs/events.md and every
 * consumer see no change.
 *
 * Two ways to write:
 *   - mp_put_*: unchecked, at a cursor, returning the cursor after the
 *     value. The caller first makes room for everything it will write
 *     (mp_room), counting at most MP_INT_MAX bytes for an integer and
 *     MP_HEADER_MAX for a header, then sets the size with mp_commit. The
 *     encoder writes a whole event this way, with one capacity check.
 *   - mp_uint, mp_str, ...: checked, one value at a time. Errors are
 *     sticky: a write that cannot grow the buffer sets `failed`, every
 *     later write does nothing, and the caller checks once at the end.
 */
#ifndef EBPF_PUBLISHER_MP_WRITE_H
#define EBPF_PUBLISHER_MP_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MP_INT_MAX 9    /* bytes of any integer, bool or nil */
#define MP_HEADER_MAX 5 /* bytes of any str, bin, map or array header */

struct mp_buf {
	char *data;   /* the encoded bytes; reused, never shrunk */
	size_t size;  /* bytes written */
	size_t alloc; /* bytes allocated */
	bool failed;  /* a write could not grow the buffer */
};

/* Grows the buffer to hold at least `need` bytes in all (slow path). */
bool mp_grow(struct mp_buf *b, size_t need);
void mp_free(struct mp_buf *b);

static inline void mp_clear(struct mp_buf *b)
{
	b->size = 0;
	b->failed = false;
}

/* Room for n more bytes: where to write them, or NULL (failed). */
static inline unsigned char *mp_room(struct mp_buf *b, size_t n)
{
	if (b->failed)
		return NULL;
	if (b->alloc - b->size < n && !mp_grow(b, b->size + n))
		return NULL;
	return (unsigned char *)b->data + b->size;
}

/* The bytes up to `end` (a cursor inside the room made) are written. */
static inline void mp_commit(struct mp_buf *b, unsigned char *end)
{
	b->size = (size_t)(end - (unsigned char *)b->data);
}

/* ---- unchecked writes at a cursor ---- */

/* One format byte, then the low n bytes of v big-endian. */
static inline unsigned char *mp_put_tagged(unsigned char *p, unsigned char tag, uint64_t v, int n)
{
	*p++ = tag;
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
	return p + n;
}

static inline unsigned char *mp_put_raw(unsigned char *p, const void *data, size_t n)
{
	if (n)
		memcpy(p, data, n);
	return p + n;
}

static inline unsigned char *mp_put_uint(unsigned char *p, uint64_t v)
{
	if (v < 0x80) {
		*p = (unsigned char)v;
		return p + 1;
	}
	if (v < 0x100)
		return mp_put_tagged(p, 0xcc, v, 1);
	if (v < 0x10000)
		return mp_put_tagged(p, 0xcd, v, 2);
	if (v < 0x100000000ull)
		return mp_put_tagged(p, 0xce, v, 4);
	return mp_put_tagged(p, 0xcf, v, 8);
}

static inline unsigned char *mp_put_int(unsigned char *p, int64_t v)
{
	if (v >= 0)
		return mp_put_uint(p, (uint64_t)v);
	if (v >= -32) {
		*p = (unsigned char)(int8_t)v; /* negative fixint */
		return p + 1;
	}
	if (v >= INT8_MIN)
		return mp_put_tagged(p, 0xd0, (uint64_t)v, 1);
	if (v >= INT16_MIN)
		return mp_put_tagged(p, 0xd1, (uint64_t)v, 2);
	if (v >= INT32_MIN)
		return mp_put_tagged(p, 0xd2, (uint64_t)v, 4);
	return mp_put_tagged(p, 0xd3, (uint64_t)v, 8);
}

static inline unsigned char *mp_put_bool(unsigned char *p, bool v)
{
	*p = v ? 0xc3 : 0xc2;
	return p + 1;
}

/* A map, array or str header: the "fix" form up to fix_max, then the
 * 8-bit form (tag8; 0: none), then 16 and 32 bits (tag16, tag16 + 1). */
static inline unsigned char *mp_put_header(unsigned char *p, size_t n, unsigned char fix,
					   size_t fix_max, unsigned char tag8, unsigned char tag16)
{
	if (n <= fix_max) {
		*p = (unsigned char)(fix | n);
		return p + 1;
	}
	if (tag8 && n < 0x100)
		return mp_put_tagged(p, tag8, n, 1);
	if (n < 0x10000)
		return mp_put_tagged(p, tag16, n, 2);
	return mp_put_tagged(p, (unsigned char)(tag16 + 1), n, 4);
}

static inline unsigned char *mp_put_map(unsigned char *p, size_t n)
{
	return mp_put_header(p, n, 0x80, 15, 0, 0xde);
}

static inline unsigned char *mp_put_array(unsigned char *p, size_t n)
{
	return mp_put_header(p, n, 0x90, 15, 0, 0xdc);
}

static inline unsigned char *mp_put_str_header(unsigned char *p, size_t n)
{
	return mp_put_header(p, n, 0xa0, 31, 0xd9, 0xda);
}

static inline unsigned char *mp_put_str(unsigned char *p, const char *s, size_t n)
{
	return mp_put_raw(mp_put_str_header(p, n), s, n);
}

/* bin 8/16/32 (no fix form) */
static inline unsigned char *mp_put_bin_header(unsigned char *p, size_t n)
{
	if (n < 0x100)
		return mp_put_tagged(p, 0xc4, n, 1);
	if (n < 0x10000)
		return mp_put_tagged(p, 0xc5, n, 2);
	return mp_put_tagged(p, 0xc6, n, 4);
}

/* A key that is a string literal (its length known when compiling). */
#define MP_PUT_KEY(p, lit) mp_put_str((p), (lit), sizeof(lit) - 1)

/* ---- checked writes, one value at a time ---- */

static inline void mp_uint(struct mp_buf *b, uint64_t v)
{
	unsigned char *p = mp_room(b, MP_INT_MAX);
	if (p)
		mp_commit(b, mp_put_uint(p, v));
}

static inline void mp_bool(struct mp_buf *b, bool v)
{
	unsigned char *p = mp_room(b, 1);
	if (p)
		mp_commit(b, mp_put_bool(p, v));
}

static inline void mp_map(struct mp_buf *b, size_t n)
{
	unsigned char *p = mp_room(b, MP_HEADER_MAX);
	if (p)
		mp_commit(b, mp_put_map(p, n));
}

static inline void mp_array(struct mp_buf *b, size_t n)
{
	unsigned char *p = mp_room(b, MP_HEADER_MAX);
	if (p)
		mp_commit(b, mp_put_array(p, n));
}

static inline void mp_str(struct mp_buf *b, const char *s, size_t n)
{
	unsigned char *p = mp_room(b, MP_HEADER_MAX + n);
	if (p)
		mp_commit(b, mp_put_str(p, s, n));
}

#define MP_KEY(b, lit) mp_str((b), (lit), sizeof(lit) - 1)

#endif
