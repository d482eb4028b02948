/* Speed of the P2P decoder (publisher/p2p_decode.c), not a test.
 *
 *   decode_bench [SECONDS_PER_CASE]   (default 2)
 *
 * Cases: a 4,000,000-byte block message (3,000 segwit transactions of 2
 * inputs / 2 outputs, padded with one large transaction to exactly 4 MB),
 * decoded with the 8 MB budget the encoder gives it; the same through
 * encode_record (decoded map + raw payload in one event); and a stream of
 * typical small messages (inv of 1-3 items, ping, pong, a 2-in/2-out tx,
 * addrv2 of 1 address, getdata, feefilter, sendcmpct, headers of 1) in the
 * proportions of a busy node. Prints MB/s and messages/s, one line each. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "encode.h"
#include "event_fields.h"
#include "p2p_decode.h"
#include "record.h"
#include "tracepoints_table.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct buf {
	uint8_t *p;
	size_t n, cap;
};
static void put(struct buf *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
}
static void put8(struct buf *b, uint8_t v)
{
	put(b, &v, 1);
}
static void put32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	put(b, x, 4);
}
static void put64(struct buf *b, uint64_t v)
{
	put32(b, (uint32_t)v);
	put32(b, (uint32_t)(v >> 32));
}
static void putcs(struct buf *b, uint64_t v)
{
	if (v < 0xfd) {
		put8(b, (uint8_t)v);
	} else if (v <= 0xffff) {
		put8(b, 0xfd);
		put8(b, (uint8_t)v);
		put8(b, (uint8_t)(v >> 8));
	} else {
		put8(b, 0xfe);
		put32(b, (uint32_t)v);
	}
}
static void putfill(struct buf *b, size_t n, uint8_t v)
{
	uint8_t z[256];
	memset(z, v, sizeof(z));
	while (n) {
		size_t k = n < sizeof(z) ? n : sizeof(z);
		put(b, z, k);
		n -= k;
	}
}

/* a segwit tx: nin P2WPKH inputs (witness 72 + 33), nout P2WPKH outputs;
 * extra_wit: one more witness item of that many bytes on input 0 */
static void put_tx(struct buf *b, uint32_t salt, int nin, int nout, size_t extra_wit)
{
	put32(b, 2);
	put8(b, 0);
	put8(b, 1);
	putcs(b, (uint64_t)nin);
	for (int i = 0; i < nin; i++) {
		putfill(b, 28, (uint8_t)i);
		put32(b, salt);
		put32(b, (uint32_t)i);
		put8(b, 0);
		put32(b, 0xfffffffd);
	}
	putcs(b, (uint64_t)nout);
	for (int i = 0; i < nout; i++) {
		put64(b, 100000 + (uint64_t)i);
		put8(b, 22);
		put8(b, 0);
		put8(b, 20);
		putfill(b, 20, (uint8_t)salt);
	}
	for (int i = 0; i < nin; i++) {
		putcs(b, extra_wit && i == 0 ? 3 : 2);
		put8(b, 72);
		putfill(b, 72, 0x30);
		put8(b, 33);
		putfill(b, 33, 0x02);
		if (extra_wit && i == 0) {
			putcs(b, extra_wit);
			putfill(b, extra_wit, 0x51);
		}
	}
	put32(b, 0);
}

static void block_4mb(struct buf *b)
{
	const int ntx = 3000;
	putfill(b, 80, 0x11);
	putcs(b, (uint64_t)ntx + 1);
	for (int i = 0; i < ntx; i++)
		put_tx(b, (uint32_t)i, 2, 2, 0);
	/* pad with one transaction to exactly 4,000,000 bytes */
	size_t base = b->n;
	struct buf t = { 0 };
	put_tx(&t, 999999, 1, 1, 70000);
	size_t fixed = t.n - 70000 - 5; /* its size without the extra item and its 5-byte size */
	size_t extra = 4000000 - base - fixed - 5;
	put_tx(b, 999999, 1, 1, extra);
	free(t.p);
	if (b->n != 4000000) {
		fprintf(stderr, "block is %zu bytes\n", b->n);
		exit(1);
	}
}

struct msg {
	const char *type;
	struct buf b;
	int weight;
};

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	struct p2p_decoder d;
	if (p2p_decoder_init(&d) != 0)
		return 1;
	char err[P2P_DECODE_ERROR_LEN];
	bool tr;

	/* 1: the 4 MB block */
	struct buf blk = { 0 };
	block_4mb(&blk);
	int rc = p2p_decode(&d, "block", blk.p, blk.n, 8000000, &tr, err);
	if (rc != P2P_DECODED || tr) {
		fprintf(stderr, "block: rc %d %s\n", rc, err);
		return 1;
	}
	size_t dsize = d.out.size;
	long it = 0;
	double t0 = now(), t;
	do {
		p2p_decode(&d, "block", blk.p, blk.n, 8000000, &tr, err);
		it++;
	} while ((t = now() - t0) < secs);
	printf("decode block 4000000 bytes (3001 tx): %.2f ms each, %.0f MB/s, decoded map %zu bytes\n",
	       t / (double)it * 1e3, (double)blk.n * (double)it / t / 1e6, dsize);

	/* 2: the same through the encoder */
	struct encoder e;
	if (encoder_init(&e, "bench", NULL, NULL) != 0)
		return 1;
	e.decoded_budget = 5242880;
	size_t len = sizeof(struct record_header) + sizeof(struct ev_net_message) + blk.n;
	unsigned char *rec = calloc(1, len);
	struct record_header h = { .kind = RECORD_EVENT, .tracepoint = TP_NET_INBOUND_MESSAGE,
				   .length = (uint32_t)len };
	struct ev_net_message m = { .peer_id = 1, .size = blk.n };
	strcpy(m.addr, "1.2.3.4:8333");
	strcpy(m.conn_type, "outbound-full-relay");
	strcpy(m.msg_type, "block");
	memcpy(rec, &h, sizeof(h));
	memcpy(rec + sizeof(h), &m, sizeof(m));
	memcpy(rec + sizeof(h) + sizeof(m), blk.p, blk.n);
	it = 0;
	t0 = now();
	do {
		if (encode_record(&e, 1, 1, rec, (uint32_t)len, NULL) != ENCODE_OK)
			return 1;
		it++;
	} while ((t = now() - t0) < secs);
	printf("encode_record block event (max_payload 5242880): %.2f ms each, event %zu bytes\n",
	       t / (double)it * 1e3, e.buf.size);

	/* 3: small messages */
	struct msg ms[] = {
		{ "inv", { 0 }, 40 },	   { "getdata", { 0 }, 10 }, { "tx", { 0 }, 20 },
		{ "ping", { 0 }, 5 },	   { "pong", { 0 }, 5 },     { "addrv2", { 0 }, 5 },
		{ "feefilter", { 0 }, 2 }, { "sendcmpct", { 0 }, 1 }, { "headers", { 0 }, 2 },
	};
	size_t nm = sizeof(ms) / sizeof(ms[0]);
	putcs(&ms[0].b, 2);
	for (int i = 0; i < 2; i++) {
		put32(&ms[0].b, 5);
		putfill(&ms[0].b, 32, (uint8_t)i);
	}
	putcs(&ms[1].b, 1);
	put32(&ms[1].b, 0x40000001);
	putfill(&ms[1].b, 32, 7);
	put_tx(&ms[2].b, 42, 2, 2, 0);
	put64(&ms[3].b, 0x1234567890abcdefull);
	put64(&ms[4].b, 0x1234567890abcdefull);
	putcs(&ms[5].b, 1);
	put32(&ms[5].b, 1700000000);
	putcs(&ms[5].b, 1033);
	put8(&ms[5].b, 4);
	putcs(&ms[5].b, 32);
	putfill(&ms[5].b, 32, 0x79);
	put8(&ms[5].b, 0x20);
	put8(&ms[5].b, 0x8d);
	put64(&ms[6].b, 1000);
	put8(&ms[7].b, 0);
	put64(&ms[7].b, 2);
	putcs(&ms[8].b, 1);
	putfill(&ms[8].b, 80, 3);
	put8(&ms[8].b, 0);
	/* a stream in the weights' proportions */
	int order[100], no = 0;
	for (size_t i = 0; i < nm; i++)
		for (int k = 0; k < ms[i].weight && no < 100; k++)
			order[no++] = (int)i;
	for (size_t i = 0; i < nm; i++)
		if (p2p_decode(&d, ms[i].type, ms[i].b.p, ms[i].b.n, 65536, &tr, err) != P2P_DECODED) {
			fprintf(stderr, "%s: %s\n", ms[i].type, err);
			return 1;
		}
	long n = 0;
	size_t bytes = 0;
	t0 = now();
	do {
		for (int k = 0; k < no; k++) {
			const struct msg *x = &ms[order[k]];
			p2p_decode(&d, x->type, x->b.p, x->b.n, 65536, &tr, err);
			bytes += x->b.n;
		}
		n += no;
	} while ((t = now() - t0) < secs);
	printf("decode small messages (inv, getdata, tx, ping, pong, addrv2, ...): %.0f messages/s, "
	       "%.2f us each, %.0f MB/s\n",
	       (double)n / t, t / (double)n * 1e6, (double)bytes / t / 1e6);

	for (size_t i = 0; i < nm; i++)
		free(ms[i].b.p);
	free(rec);
	free(blk.p);
	encoder_free(&e);
	p2p_decoder_free(&d);
	return 0;
}
