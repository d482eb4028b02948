/* Every event's fields, in tracepoint argument order, with where each one
 * sits in its record body. One table serves the publisher's encoder, the
 * event documentation check and the tests, so a field cannot be added to
 * one of them and forgotten in another. */
#ifndef EBPF_EXTRACTOR_EVENT_FIELDS_H
#define EBPF_EXTRACTOR_EVENT_FIELDS_H

#include <stddef.h>
#include <stdint.h>

#include "tracepoints.h"

enum field_kind {
	FIELD_I64,
	FIELD_U64,
	FIELD_I32,
	FIELD_U32,
	FIELD_BOOL,    /* one byte, 0 or 1 */
	FIELD_STR,     /* NUL-terminated in a buffer of `size` bytes */
	FIELD_HASH,    /* 32 bytes, internal order (reverse to print) */
	FIELD_PAYLOAD, /* P2P payload: follows the body, length = the "size" field */
};

struct event_field {
	const char *name; /* the published key, snake_case */
	enum field_kind kind;
	uint16_t offset;  /* in the body (after struct record_header) */
	uint16_t size;    /* bytes in the body */
};

#define EVENT_MAX_FIELDS 8

struct event_layout {
	size_t body_size; /* sizeof the body struct */
	int field_count;  /* == the tracepoint's argument count */
	struct event_field fields[EVENT_MAX_FIELDS];
};

/* Indexed by enum tracepoint_id; TP_NONE has field_count 0. */
extern const struct event_layout event_layouts[TP_COUNT];

#endif
