/* Shared by the publisher encoder tests: building records by hand, decoding
 * the encoder's output and checking maps key by key. */
#ifndef TESTS_PUBLISHER_HELPERS_H
#define TESTS_PUBLISHER_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "encode.h"
#include "record.h"

/* Header values every hand-built record carries. */
#define T_TIME_NS 1700000000123456789ull
#define T_PID 4242u
#define T_TID 4243u
#define T_STREAM 0xfedcba9876543210ull
#define T_SEQ 77u
#define T_NODE "node1"
#define T_PREFIX "btc.node1"

/* A record in a malloc'd buffer of exactly its length (so ASan sees any
 * read past it). */
struct rec {
	unsigned char *data;
	uint32_t len;
};

struct rec rec_build(uint16_t kind, uint16_t tp, uint32_t flags, const void *body,
		     size_t body_size, const void *payload, size_t payload_len);
/* An event record of tracepoint tp with the given body struct. */
#define REC_EVENT(tp, flags, bodyp) rec_build(RECORD_EVENT, (tp), (flags), (bodyp), sizeof(*(bodyp)), NULL, 0)
void rec_free(struct rec *r);

void enc_init(struct encoder *e);
/* encode_record with T_STREAM/T_SEQ; asserts ENCODE_OK and decodes into u
 * (asserts one whole map, nothing after it). Returns the root map. */
const msgpack_object *enc_ok(struct encoder *e, const struct rec *r, msgpack_unpacked *u);
/* decodes e->buf (asserts one whole map) */
const msgpack_object *dec(const struct encoder *e, msgpack_unpacked *u);
/* encode_record; asserts ENCODE_MALFORMED, the exact message, an empty
 * buffer and subject. */
void enc_malformed(struct encoder *e, const struct rec *r, const char *message);

/* NULL when absent */
const msgpack_object *map_get(const msgpack_object *map, const char *key);
bool obj_is_str(const msgpack_object *o, const char *s);

enum exp_type { X_UINT, X_INT, X_STR, X_BIN, X_BOOL, X_MAP };
struct expect {
	const char *key;
	enum exp_type t;
	uint64_t u;
	int64_t i;
	const void *p;
	size_t n;
	bool b;
};
#define XU(k, v) ((struct expect){ .key = (k), .t = X_UINT, .u = (v) })
#define XI(k, v) ((struct expect){ .key = (k), .t = X_INT, .i = (v) })
#define XS(k, s) ((struct expect){ .key = (k), .t = X_STR, .p = (s), .n = strlen(s) })
#define XBIN(k, ptr, len) ((struct expect){ .key = (k), .t = X_BIN, .p = (ptr), .n = (len) })
#define XB(k, v) ((struct expect){ .key = (k), .t = X_BOOL, .b = (v) })
/* a map of n keys (its content is checked elsewhere, e.g. tests/decode) */
#define XMAP(k, nkeys) ((struct expect){ .key = (k), .t = X_MAP, .n = (nkeys) })

#define EXPECT_MAX 64
struct expects {
	struct expect x[EXPECT_MAX];
	int n;
};
void ex_add(struct expects *xs, struct expect x);
/* the seven keys of every queue record, with the T_* header values */
void ex_common(struct expects *xs, const char *event);
/* asserts the map holds exactly these keys (no more, no duplicates), each
 * with this MessagePack type and value */
void check_map(const msgpack_object *map, const struct expects *xs);
void check_value(const char *key, const msgpack_object *o, const struct expect *x);

/* the 32 bytes of a hash reversed */
void reversed(const uint8_t in[32], uint8_t out[32]);

#endif
