/* Turning one queue record into one NATS message: its subject and its
 * MessagePack map (DESIGN.md, "Events on NATS"; docs/events.md lists every
 * subject and key). Pure code: no I/O, one reusable buffer per encoder. */
#ifndef EBPF_PUBLISHER_ENCODE_H
#define EBPF_PUBLISHER_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event_fields.h"
#include "mp_write.h"
#include "p2p_decode.h"
#include "tracepoints.h"

#define SUBJECT_MAX 512
#define ENCODE_ERROR_LEN 256

/* Return values of encode_record and encode_publisher_stats. */
#define ENCODE_OK 0
#define ENCODE_MALFORMED (-1) /* the record is bad: count it, skip it */
#define ENCODE_NO_MEMORY (-2) /* the buffer could not grow: the record is fine, retry later */

/* A subject prefix or node name is at most this many bytes. */
#define SUBJECT_PREFIX_MAX 255

/* Sizes of the pre-encoded parts of a plan. */
#define KEY_SLOT 32        /* an encoded key: a fixstr of at most 31 bytes */
#define EVENT_NAME_MAX 63  /* "coin_selection:normal_create_tx_internal" is 40 */
#define COMMON_TAIL_MAX (5 + 5 + SUBJECT_PREFIX_MAX + 6 + 5 + EVENT_NAME_MAX)

/* What every event of one tracepoint shares, worked out once by
 * encoder_init so that encoding an event does no table scan, no strlen,
 * no formatting of its subject, and copies its keys ready-made. */
struct encode_plan {
	char subject[SUBJECT_MAX]; /* <prefix>.<provider>.<name> */
	uint16_t subject_len;
	unsigned char tail[COMMON_TAIL_MAX]; /* "node": <node>, "event": <event>, encoded */
	uint16_t tail_len;
	unsigned char keys[EVENT_MAX_FIELDS][KEY_SLOT]; /* each field's key, encoded */
	uint8_t key_size[EVENT_MAX_FIELDS]; /* bytes of each encoded key */
	uint8_t key_len[EVENT_MAX_FIELDS];  /* strlen of each field's name */
	uint32_t allowed_flags;    /* the flag bits this tracepoint's records may carry */
	size_t bound;              /* the most bytes an event takes but its payload and
				    * decoded map */
	int8_t size_idx, payload_idx, msg_type_idx; /* field indexes; -1: none */
	bool unfit;                /* the field table does not fit the encoder */
};

struct encoder {
	struct mp_buf buf;   /* the encoded map; reused, never shrunk */
	char prefix[256];    /* "btc.<node>" or --subject-prefix */
	char node[256];      /* the "node" value */
	size_t node_len;
	char subject[SUBJECT_MAX];
	struct encode_plan plans[TP_COUNT]; /* indexed by tracepoint id */
	uint32_t pid;        /* getpid() at encoder_init, for publisher_stats */
	/* P2P decoding (p2p_decode.h; docs/events.md, "Decoded P2P messages") */
	struct p2p_decoder dec;
	uint64_t decoded_budget; /* set by the caller: the server's max_payload, which
				  * no event may exceed because of its `decoded` map
				  * (0: unknown, only the 64 KiB / 2 x payload rule) */
	bool decode_failed;      /* the last encode_record added a decode_error */
};
/* The P2P decoder's packer points into the encoder: an initialised
 * encoder must not be moved or copied. One encoder is used by one thread
 * at a time. */

/* What the publisher reports about itself (extractor:publisher_stats). */
struct publisher_stats {
	uint64_t stream_id;
	uint64_t published;         /* messages handed to the NATS client */
	uint64_t published_bytes;
	uint64_t confirmed_seq;     /* the server confirmed every seq up to this one */
	uint64_t last_read_seq;     /* the last seq read from the queue */
	uint64_t refused_too_large; /* over the server's max_payload: counted, skipped */
	uint64_t malformed;         /* queue records that could not be encoded */
	uint64_t decode_errors;     /* P2P messages published with a decode_error */
	uint64_t nats_errors;
	uint64_t reconnects;
	uint64_t queue_used;        /* bytes not yet released */
	uint64_t queue_capacity;
	bool connected;
	bool collector_present;
};

/* node: the node name (NULL: the host name); prefix: the subject prefix
 * (NULL: "btc." + node token). Returns 0, or -1 with a message in err when
 * the prefix is not a valid NATS subject prefix (subject_prefix_check), the
 * node name is empty or longer than SUBJECT_PREFIX_MAX bytes, or the host
 * name cannot be read. After a failure e needs no encoder_free (calling it
 * is harmless). */
int encoder_init(struct encoder *e, const char *node, const char *prefix,
		 char err[ENCODE_ERROR_LEN]);
void encoder_free(struct encoder *e);

/* Encodes one record read from the queue (record.h layout). On success
 * (ENCODE_OK) e->subject and e->buf.data/e->buf.size hold the message,
 * valid until the next call. ENCODE_MALFORMED (-1) with a message in err
 * when the record is malformed (bad kind, tracepoint, length, flags, a
 * string without its NUL, a bool that is not 0 or 1...): the caller counts
 * and skips it. ENCODE_NO_MEMORY (-2) with a message when the buffer could
 * not grow. The record may sit in memory another process writes: it is
 * read once (header and body copied first), never beyond `length`, and
 * need not be aligned. err may be NULL. */
int encode_record(struct encoder *e, uint64_t stream_id, uint64_t seq, const void *record,
		  uint32_t length, char err[ENCODE_ERROR_LEN]);

/* The publisher's own stats event (subject <prefix>.extractor.publisher_stats;
 * no seq, no tid). ENCODE_OK or ENCODE_NO_MEMORY. */
int encode_publisher_stats(struct encoder *e, const struct publisher_stats *st,
			   uint64_t time_ns);

/* 0 when prefix is a valid subject prefix (1..SUBJECT_PREFIX_MAX bytes,
 * tokens of [A-Za-z0-9_-] separated by single dots, so no wildcard, no
 * empty token); else -1 and a message naming the problem in err (which may
 * be NULL). encoder_init uses it; an option parser can call it early. */
int subject_prefix_check(const char *prefix, char err[ENCODE_ERROR_LEN]);

/* Copies text into out as one NATS subject token: [A-Za-z0-9_-] kept,
 * anything else becomes '_' (byte by byte: a UTF-8 character of n bytes
 * becomes n '_'), an empty (or NULL) text becomes "_". A text longer than
 * outlen - 1 bytes is cut to fit, which still leaves a valid token. outlen
 * must be at least 2 for the result to be a token (with 1, out is "";
 * with 0, nothing is written). */
void subject_token(const char *text, char *out, size_t outlen);

#endif
