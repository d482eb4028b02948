/* Decoding Bitcoin P2P message payloads into a MessagePack map (the
 * `decoded` key of net:inbound_message / net:outbound_message; the keys of
 * every type are in docs/events.md, "Decoded P2P messages").
 *
 * Pure code over a byte buffer: no I/O; the only memory used is the
 * decoder's own MessagePack buffer (grown by msgpack-c, reused, never
 * shrunk) and one OpenSSL digest context made at p2p_decoder_init.
 * Every read is bounds-checked; every count is checked against the bytes
 * left and against Bitcoin Core's protocol limits before any loop runs. */
#ifndef EBPF_PUBLISHER_P2P_DECODE_H
#define EBPF_PUBLISHER_P2P_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#define P2P_DECODE_ERROR_LEN 160

/* Results of p2p_decode. */
#define P2P_UNKNOWN_TYPE 0  /* not a type we decode: no map, no error */
#define P2P_DECODED 1       /* d->out holds one complete map */
#define P2P_DECODE_FAILED (-1) /* bad bytes: d->out is empty, err says what and where */
#define P2P_DECODE_NO_MEMORY (-2)

/* Margin kept under the budget: the decoder checks the budget before each
 * list element and each large value, and no run of output between two
 * checks is longer than this. */
#define P2P_DECODE_MARGIN 4096

struct p2p_container {
	size_t off;     /* offset of the 5-byte header in out, SIZE_MAX: not written */
	uint32_t count;
};

struct p2p_decoder {
	msgpack_sbuffer out; /* the decoded map after P2P_DECODED */
	msgpack_packer pk;
	void *md_ctx;        /* EVP_MD_CTX * */
	const void *sha256, *sha3; /* EVP_sha256(), EVP_sha3_256() (not EVP_MD_fetch: a
				    * fetched method freed at exit broke the TLS publisher's
				    * shutdown in tests/publisher_e2e) */
	/* state of one decode */
	size_t soft_limit;   /* stop adding elements once out is this big */
	bool stopped;        /* budget reached: the rest is parsed, not written */
	bool nomem;
	int depth;
	struct p2p_container stack[16];
};

/* 0, or -1 when OpenSSL cannot make a digest context. */
int p2p_decoder_init(struct p2p_decoder *d);
void p2p_decoder_free(struct p2p_decoder *d);

/* Decodes payload[0..len) as a message of type msg_type (NUL-terminated).
 * budget: the most bytes the map may take (at least P2P_DECODE_MARGIN
 * more than nothing; see encode.c for how the encoder picks it). On
 * P2P_DECODED, d->out.data/d->out.size hold the map and *truncated says
 * whether the budget cut it (every list it cut is a valid shorter list;
 * the whole payload was still checked). On P2P_DECODE_FAILED err says what
 * was wrong and at which byte offset of the payload. err may be NULL. */
int p2p_decode(struct p2p_decoder *d, const char *msg_type, const uint8_t *payload, size_t len,
	       size_t budget, bool *truncated, char err[P2P_DECODE_ERROR_LEN]);

/* True when msg_type is one of the types p2p_decode knows. */
bool p2p_decode_known(const char *msg_type);

/* The names of the known types, NULL-terminated (tests, fuzzing). */
extern const char *const p2p_decode_types[];

/* Text forms (exposed for tests). out must hold 128 bytes. network is the
 * BIP 155 network id (1 IPv4, 2 IPv6, 3 TORv2, 4 TORv3, 5 I2P, 6 CJDNS).
 * Returns 0, or -1 when the length does not fit the network (out is then
 * the address in hex). */
int p2p_addr_text(struct p2p_decoder *d, unsigned network, const uint8_t *addr, size_t len,
		  char out[128]);

#endif
