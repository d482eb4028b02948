/* MessagePack to JSON for ebpf-sub: one NATS message in, one JSON line out.
 * Pure code (no I/O, no globals), so the unit tests call it directly.
 *
 * Output rules (docs: `ebpf-sub --help`):
 * - map keys in the map's order; a non-str key becomes a JSON string (an
 *   int its digits, a bin its hex, nil/bool/float their JSON text, a map or
 *   array its JSON text);
 * - str: JSON string; control characters, DEL, U+0080..U+009F, U+2028 and
 *   U+2029 as \u00XX / \u20XX, every invalid UTF-8 sequence (maximal
 *   subpart) as \ufffd;
 * - bin: lowercase hex string;
 * - ints exact; one whose magnitude exceeds 2^53 as a JSON string;
 * - float: shortest text that reads back as the same value; NaN and
 *   infinities (not JSON) as null;
 * - ext: {"ext_type": T, "data": "<hex>"}.
 *
 * The decoder is our own (not msgpack-c's unpacker): msgpack-c allocates
 * n * 24-32 bytes for an array or map header before it sees the elements, so
 * a 5-byte message (0xdd ff ff ff ff) asks for 128 GB; here nothing is
 * allocated per element and every count is checked against the bytes left. */
#ifndef EBPF_SUB_JSON_H
#define EBPF_SUB_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer; reuse it across messages (jbuf_reset). */
struct jbuf {
	char *data;
	size_t len;
	size_t cap;
	bool oom; /* an allocation failed: the content is incomplete */
};

void jbuf_init(struct jbuf *b);
void jbuf_reset(struct jbuf *b);
void jbuf_free(struct jbuf *b);

/* Nesting deeper than this is refused (events nest 3 or 4 levels). */
#define MP_JSON_MAX_DEPTH 64

struct mp_json_options {
	const char *subject; /* the NATS subject; may be NULL */
	bool subject_key;    /* emit "subject" as the first key */
	bool no_payload;     /* omit the top-level "payload" key and its value */
};

enum mp_json_result {
	MP_JSON_OK = 0,
	MP_JSON_INVALID = 1, /* out holds an {"error": ...} line instead */
	MP_JSON_NOMEM = -1,  /* out is unusable */
};

/* Converts one NATS message holding one MessagePack map into one JSON
 * object followed by '\n', appended to out. When the bytes are not exactly
 * one MessagePack map, out receives
 *   {"subject":"<subject>","error":"not MessagePack: <why>","bytes":<len>}
 * (or "error":"not a map: ..." for a valid value of another type) and the
 * result is MP_JSON_INVALID. */
enum mp_json_result mp_to_json(const uint8_t *in, size_t len, const struct mp_json_options *o,
			       struct jbuf *out);

/* Appends s (n bytes) as a quoted JSON string with the escaping above. */
void json_put_string(struct jbuf *b, const uint8_t *s, size_t n);

#endif
