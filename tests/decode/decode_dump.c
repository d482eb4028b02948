/* decode_dump MSG_TYPE [BUDGET] < payload: runs p2p_decode and prints one
 * JSON object: {"rc": 1, "truncated": false, "error": "", "decoded": {...}}
 * ("decode_dump --types" lists the known types)
 * (bin values as lowercase hex). Used by the Python tests in this folder
 * (python3-bitcoinlib messages, the reference corpus). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "p2p_decode.h"

static void json_str(const char *s, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void json(const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL: printf("null"); break;
	case MSGPACK_OBJECT_BOOLEAN: printf(o->via.boolean ? "true" : "false"); break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER: printf("%llu", (unsigned long long)o->via.u64); break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: printf("%lld", (long long)o->via.i64); break;
	case MSGPACK_OBJECT_STR: json_str(o->via.str.ptr, o->via.str.size); break;
	case MSGPACK_OBJECT_BIN:
		putchar('"');
		for (uint32_t i = 0; i < o->via.bin.size; i++)
			printf("%02x", (unsigned char)o->via.bin.ptr[i]);
		putchar('"');
		break;
	case MSGPACK_OBJECT_ARRAY:
		putchar('[');
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			if (i)
				putchar(',');
			json(&o->via.array.ptr[i]);
		}
		putchar(']');
		break;
	case MSGPACK_OBJECT_MAP:
		putchar('{');
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			if (i)
				putchar(',');
			json(&o->via.map.ptr[i].key);
			putchar(':');
			json(&o->via.map.ptr[i].val);
		}
		putchar('}');
		break;
	default: printf("\"?\""); break;
	}
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: decode_dump MSG_TYPE [BUDGET] < payload\n");
		return 2;
	}
	if (strcmp(argv[1], "--types") == 0) {
		for (const char *const *t = p2p_decode_types; *t; t++)
			printf("%s\n", *t);
		return 0;
	}
	size_t budget = argc > 2 ? strtoull(argv[2], NULL, 0) : 64u << 20;
	size_t cap = 1 << 20, n = 0;
	unsigned char *buf = malloc(cap);
	size_t got;
	while (buf && (got = fread(buf + n, 1, cap - n, stdin)) > 0) {
		n += got;
		if (n == cap)
			buf = realloc(buf, cap *= 2);
	}
	if (!buf)
		return 1;
	struct p2p_decoder d;
	if (p2p_decoder_init(&d) != 0)
		return 1;
	char err[P2P_DECODE_ERROR_LEN];
	bool tr = false;
	int rc = p2p_decode(&d, argv[1], buf, n, budget, &tr, err);
	printf("{\"rc\":%d,\"truncated\":%s,\"error\":", rc, tr ? "true" : "false");
	json_str(err, strlen(err));
	if (rc == P2P_DECODED) {
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		size_t off = 0;
		if (msgpack_unpack_next(&u, d.out.data, d.out.size, &off) != MSGPACK_UNPACK_SUCCESS ||
		    off != d.out.size) {
			fprintf(stderr, "decoder output is not one MessagePack object\n");
			return 1;
		}
		printf(",\"decoded\":");
		json(&u.data);
		msgpack_unpacked_destroy(&u);
	}
	printf("}\n");
	p2p_decoder_free(&d);
	free(buf);
	return 0;
}
