/* libFuzzer target over the P2P decoder (publisher/p2p_decode.c).
 * Input: one byte choosing the message type (index into
 * p2p_decode_types, modulo their number), one byte choosing the budget,
 * then the payload. Every result must be a known code; a decoded map must
 * be exactly one MessagePack object within the budget; an error must say
 * at which offset. Also run through encode_record with a small max_payload,
 * checking the event stays under it. Seeds: scripts/fuzz.sh makes them
 * from ../shared/reference/p2p-corpus (type byte + budget byte + payload). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "encode.h"
#include "event_fields.h"
#include "p2p_decode.h"
#include "record.h"
#include "tracepoints_table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct p2p_decoder dec;
static struct encoder enc;
static int ready;

static size_t ntypes(void)
{
	size_t n = 0;
	while (p2p_decode_types[n])
		n++;
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready) {
		if (p2p_decoder_init(&dec) != 0 || encoder_init(&enc, "fuzz", NULL, NULL) != 0)
			abort();
		ready = 1;
	}
	if (size < 2)
		return 0;
	const char *type = p2p_decode_types[data[0] % ntypes()];
	size_t budget = (size_t)P2P_DECODE_MARGIN * 2 + (size_t)data[1] * 1024;
	const uint8_t *p = data + 2;
	size_t n = size - 2;

	char err[P2P_DECODE_ERROR_LEN];
	bool tr;
	int rc = p2p_decode(&dec, type, p, n, budget, &tr, err);
	if (rc == P2P_DECODED) {
		if (dec.out.size > budget)
			abort();
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		size_t off = 0;
		if (msgpack_unpack_next(&u, dec.out.data, dec.out.size, &off) != MSGPACK_UNPACK_SUCCESS ||
		    off != dec.out.size || u.data.type != MSGPACK_OBJECT_MAP)
			abort();
		msgpack_unpacked_destroy(&u);
	} else if (rc == P2P_DECODE_FAILED) {
		if (!strstr(err, " at offset ") || dec.out.size != 0)
			abort();
	} else {
		abort(); /* every type here is known; no memory is not expected */
	}

	/* through the encoder, under a max_payload */
	if (n <= 65536) {
		size_t len = sizeof(struct record_header) + sizeof(struct ev_net_message) + n;
		unsigned char *rec = calloc(1, len);
		struct record_header h = { 0 };
		h.length = (uint32_t)len;
		h.kind = RECORD_EVENT;
		h.tracepoint = TP_NET_INBOUND_MESSAGE;
		memcpy(rec, &h, sizeof(h));
		struct ev_net_message m = { .peer_id = 1, .size = n };
		strcpy(m.addr, "1.2.3.4:8333");
		strcpy(m.conn_type, "inbound");
		strcpy(m.msg_type, type);
		memcpy(rec + sizeof(h), &m, sizeof(m));
		memcpy(rec + sizeof(h) + sizeof(m), p, n);
		enc.decoded_budget = len + 20000 + (size_t)data[1] * 256;
		char eerr[ENCODE_ERROR_LEN];
		int erc = encode_record(&enc, 1, 1, rec, (uint32_t)len, eerr);
		if (erc != ENCODE_OK || enc.buf.size > enc.decoded_budget)
			abort();
		free(rec);
	}
	return 0;
}
