#include "helpers.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

struct rec rec_build(uint16_t kind, uint16_t tp, uint32_t flags, const void *body,
		     size_t body_size, const void *payload, size_t payload_len)
{
	struct rec r;
	size_t len = sizeof(struct record_header) + body_size + payload_len;
	r.len = (uint32_t)len;
	r.data = malloc(len);
	cr_assert_not_null(r.data);
	struct record_header h = {
		.kind = kind,
		.tracepoint = tp,
		.length = (uint32_t)len,
		.time_ns = T_TIME_NS,
		.pid = T_PID,
		.tid = T_TID,
		.flags = flags,
	};
	memcpy(r.data, &h, sizeof(h));
	if (body_size)
		memcpy(r.data + sizeof(h), body, body_size);
	if (payload_len)
		memcpy(r.data + sizeof(h) + body_size, payload, payload_len);
	return r;
}

void rec_free(struct rec *r)
{
	free(r->data);
	r->data = NULL;
	r->len = 0;
}

void enc_init(struct encoder *e)
{
	char err[ENCODE_ERROR_LEN];
	cr_assert_eq(encoder_init(e, T_NODE, NULL, err), 0, "%s", err);
	cr_assert_str_eq(e->prefix, T_PREFIX);
}

const msgpack_object *dec(const struct encoder *e, msgpack_unpacked *u)
{
	size_t off = 0;
	msgpack_unpacked_init(u);
	cr_assert_eq(msgpack_unpack_next(u, e->buf.data, e->buf.size, &off),
		     MSGPACK_UNPACK_SUCCESS);
	cr_assert_eq(off, e->buf.size, "bytes after the map");
	cr_assert_eq(u->data.type, MSGPACK_OBJECT_MAP);
	return &u->data;
}

const msgpack_object *enc_ok(struct encoder *e, const struct rec *r, msgpack_unpacked *u)
{
	char err[ENCODE_ERROR_LEN] = "";
	int rc = encode_record(e, T_STREAM, T_SEQ, r->data, r->len, err);
	cr_assert_eq(rc, ENCODE_OK, "encode_record: %d %s", rc, err);
	cr_assert_str_empty(err);
	return dec(e, u);
}

void enc_malformed(struct encoder *e, const struct rec *r, const char *message)
{
	char err[ENCODE_ERROR_LEN] = "";
	int rc = encode_record(e, T_STREAM, T_SEQ, r->data, r->len, err);
	cr_assert_eq(rc, ENCODE_MALFORMED, "rc %d for a record that should be refused with: %s", rc,
		     message);
	cr_assert_str_eq(err, message);
	cr_assert_eq(e->buf.size, 0);
	cr_assert_str_empty(e->subject);
}

const msgpack_object *map_get(const msgpack_object *map, const char *key)
{
	cr_assert_eq(map->type, MSGPACK_OBJECT_MAP);
	size_t kl = strlen(key);
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
		    memcmp(k->via.str.ptr, key, kl) == 0)
			return &map->via.map.ptr[i].val;
	}
	return NULL;
}

bool obj_is_str(const msgpack_object *o, const char *s)
{
	return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
	       memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

void ex_add(struct expects *xs, struct expect x)
{
	cr_assert_lt(xs->n, EXPECT_MAX);
	xs->x[xs->n++] = x;
}

void ex_common(struct expects *xs, const char *event)
{
	ex_add(xs, XU("stream_id", T_STREAM));
	ex_add(xs, XU("seq", T_SEQ));
	ex_add(xs, XU("time_ns", T_TIME_NS));
	ex_add(xs, XU("pid", T_PID));
	ex_add(xs, XU("tid", T_TID));
	ex_add(xs, XS("node", T_NODE));
	ex_add(xs, XS("event", event));
}

void check_value(const char *key, const msgpack_object *o, const struct expect *x)
{
	switch (x->t) {
	case X_UINT:
		cr_assert_eq(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER, "%s: type %d", key, o->type);
		cr_assert_eq(o->via.u64, x->u, "%s: %llu, expected %llu", key,
			     (unsigned long long)o->via.u64, (unsigned long long)x->u);
		break;
	case X_INT:
		if (x->i < 0) {
			cr_assert_eq(o->type, MSGPACK_OBJECT_NEGATIVE_INTEGER, "%s: type %d", key,
				     o->type);
			cr_assert_eq(o->via.i64, x->i, "%s: %lld, expected %lld", key,
				     (long long)o->via.i64, (long long)x->i);
		} else {
			cr_assert_eq(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER, "%s: type %d", key,
				     o->type);
			cr_assert_eq(o->via.u64, (uint64_t)x->i, "%s", key);
		}
		break;
	case X_STR:
		cr_assert_eq(o->type, MSGPACK_OBJECT_STR, "%s: type %d", key, o->type);
		cr_assert_eq(o->via.str.size, x->n, "%s: %u bytes, expected %zu", key,
			     o->via.str.size, x->n);
		cr_assert(x->n == 0 || memcmp(o->via.str.ptr, x->p, x->n) == 0, "%s: %.*s", key,
			  (int)o->via.str.size, o->via.str.ptr);
		break;
	case X_BIN:
		cr_assert_eq(o->type, MSGPACK_OBJECT_BIN, "%s: type %d", key, o->type);
		cr_assert_eq(o->via.bin.size, x->n, "%s: %u bytes, expected %zu", key,
			     o->via.bin.size, x->n);
		cr_assert(x->n == 0 || memcmp(o->via.bin.ptr, x->p, x->n) == 0, "%s: bytes differ",
			  key);
		break;
	case X_BOOL:
		cr_assert_eq(o->type, MSGPACK_OBJECT_BOOLEAN, "%s: type %d", key, o->type);
		cr_assert_eq(o->via.boolean, x->b, "%s", key);
		break;
	case X_MAP:
		cr_assert_eq(o->type, MSGPACK_OBJECT_MAP, "%s: type %d", key, o->type);
		cr_assert_eq(o->via.map.size, x->n, "%s: %u keys, expected %zu", key,
			     o->via.map.size, x->n);
		break;
	}
}

void check_map(const msgpack_object *map, const struct expects *xs)
{
	cr_assert_eq(map->type, MSGPACK_OBJECT_MAP);
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;
		cr_assert_eq(k->type, MSGPACK_OBJECT_STR, "a key that is not a str");
		for (uint32_t j = 0; j < i; j++) {
			const msgpack_object *k2 = &map->via.map.ptr[j].key;
			cr_assert(!(k2->via.str.size == k->via.str.size &&
				    memcmp(k2->via.str.ptr, k->via.str.ptr, k->via.str.size) == 0),
				  "duplicate key %.*s", (int)k->via.str.size, k->via.str.ptr);
		}
		bool expected = false;
		for (int x = 0; x < xs->n; x++)
			if (strlen(xs->x[x].key) == k->via.str.size &&
			    memcmp(xs->x[x].key, k->via.str.ptr, k->via.str.size) == 0)
				expected = true;
		cr_assert(expected, "unexpected key %.*s", (int)k->via.str.size, k->via.str.ptr);
	}
	cr_assert_eq(map->via.map.size, (uint32_t)xs->n, "%u keys, expected %d", map->via.map.size,
		     xs->n);
	for (int x = 0; x < xs->n; x++) {
		const msgpack_object *o = map_get(map, xs->x[x].key);
		cr_assert_not_null(o, "missing key %s", xs->x[x].key);
		check_value(xs->x[x].key, o, &xs->x[x]);
	}
}

void reversed(const uint8_t in[32], uint8_t out[32])
{
	for (int i = 0; i < 32; i++)
		out[i] = in[31 - i];
}
