/* What the test tracee fires, as plain data: the tracee fires it, the
 * end-to-end tests recompute every expected field from it.
 *
 * No I/O and no state here: this header and scenario.c are linked into the
 * tracee and into the tests alike (library tracee_scenario).
 *
 * Three sources of events:
 *   - the scenario (`ebpf-tracee scenario`): scenario_event_count() steps,
 *     fired in order, each with its tracepoint and argument values; a build
 *     without a probe (ebpf-tracee-nowallet: no coin_selection) skips its
 *     steps, and so does `--groups` for the groups it leaves out;
 *   - load and burst (`ebpf-tracee load|burst`): scenario_load_step() makes
 *     the k-th event of a tracepoint from a per-tracepoint counter k;
 *   - compute (`ebpf-tracee compute`): prints SCENARIO_COMPUTE_RESULT.
 */
#ifndef EBPF_TRACEE_SCENARIO_H
#define EBPF_TRACEE_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tracepoints.h"

#define SCENARIO_MAX_ARGS 8
#define SCENARIO_HASH_LEN 32

enum scenario_kind {
	SK_I64,     /* int64_t */
	SK_U64,     /* uint64_t */
	SK_I32,     /* int32_t */
	SK_U32,     /* uint32_t */
	SK_BOOL,    /* bool, value 0 or 1 */
	SK_STR,     /* const char *, NUL-terminated */
	SK_HASH,    /* const unsigned char *, 32 bytes, see scenario_hash() */
	SK_PAYLOAD, /* const unsigned char *, as many bytes as the argument before it says */
};

/* One argument of a tracepoint, in Bitcoin Core's order. */
struct scenario_arg_info {
	const char *name;       /* the published key, e.g. "peer_id" */
	enum scenario_kind kind;
	unsigned buf_len;       /* SK_STR: the record buffer (record.h); a string of
				 * buf_len bytes or more arrives truncated */
};

union scenario_value {
	int64_t i;     /* SK_I64, SK_I32, SK_BOOL */
	uint64_t u;    /* SK_U64, SK_U32 */
	const char *s; /* SK_STR */
	uint64_t hash; /* SK_HASH: the seed of scenario_hash() */
	/* SK_PAYLOAD has no value: see scenario_step_payload_byte() */
};

struct scenario_step {
	enum tracepoint_id tp;
	/* Bit i: argument i points into a page the tracee never touched, so the
	 * extractor's read must fail: expect RECORD_FLAG_READ_FAILED(i) and zero
	 * bytes (an empty string, a payload of zeros), never stale ones. */
	uint32_t untouched;
	/* Load mode: the payload's first min(8, size) bytes are counter,
	 * little-endian, instead of the pattern. */
	bool counter_prefix;
	uint64_t counter;
	union scenario_value v[SCENARIO_MAX_ARGS];
};

/* ---- the argument table ---- */

/* Number of arguments of tp (0 for TP_NONE or an unknown id). */
int scenario_arg_count(enum tracepoint_id tp);
/* The arguments of tp in order; NULL when scenario_arg_count() is 0. */
const struct scenario_arg_info *scenario_args(enum tracepoint_id tp);

/* ---- the scenario ---- */

size_t scenario_event_count(void);
/* Step i, 0 <= i < scenario_event_count(). */
const struct scenario_step *scenario_step_at(size_t i);

/* ---- values ---- */

/* The 32 bytes a hash argument points to, in the order the tracepoint passes
 * them (internal order; bitcoin-cli prints them reversed). Bytes 0..7 are the
 * seed, little-endian, so the printed hex ends with the seed; bytes 8..31 are
 * mixed from the seed. */
void scenario_hash(uint64_t seed, uint8_t out[SCENARIO_HASH_LEN]);

/* Byte i of a P2P payload of the given size: a multiplicative hash of i,
 * salted by size, so it does not repeat at power-of-two boundaries and a
 * chunk copied to the wrong offset or from the wrong message shows. */
uint8_t scenario_payload_byte(uint64_t size, uint64_t i);

/* Payload size of a net:*_message step (its "size" argument). */
uint64_t scenario_payload_size(const struct scenario_step *step);
/* Byte i of the payload the extractor should deliver for step: zero when
 * the payload is untouched, the counter in load mode, else the pattern. */
uint8_t scenario_step_payload_byte(const struct scenario_step *step, uint64_t i);

/* The record flags (record.h RECORD_FLAG_*) the extractor should set for
 * step: READ_FAILED for each untouched argument, TRUNCATED for each string
 * of buf_len bytes or more. */
uint32_t scenario_expected_flags(const struct scenario_step *step);

/* ---- load and burst ---- */

/* The k-th event (k = counter, 0-based, counted per tracepoint) that load
 * and burst fire for tp. Every integer argument is counter (cast to its
 * type), every hash is scenario_hash(counter), every bool is counter & 1,
 * except: network is counter % 7 and utxocache:flush mode is
 * SCENARIO_FLUSH_MODE. Strings are fixed: addr SCENARIO_LOAD_ADDR,
 * conn_type "inbound", msg_type SCENARIO_LOAD_MSG_TYPE, mempool:removed
 * reason "block", other strings "load". net:*_message carry p2p_size
 * bytes of payload with counter_prefix set. */
void scenario_load_step(enum tracepoint_id tp, uint64_t counter, uint64_t p2p_size,
			struct scenario_step *out);

#define SCENARIO_LOAD_ADDR "127.0.0.1:18444"
#define SCENARIO_LOAD_MSG_TYPE "loadtest"

/* The burst (`ebpf-tracee burst`): SCENARIO_BURST_TXS transactions of a
 * block, each one mempool:removed (reason "block"), two utxocache:spent and
 * two utxocache:add, within about SCENARIO_BURST_MS milliseconds, while a
 * second thread keeps firing net:inbound_message of SCENARIO_BURST_P2P_SIZE
 * bytes. Values as scenario_load_step(). */
#define SCENARIO_BURST_TXS 5000
#define SCENARIO_BURST_MS 50
#define SCENARIO_BURST_P2P_SIZE 256

/* utxocache:flush passes its mode as a constant (the probe's argument spec
 * is "4@$2"), the way a call site with a literal does in Core. */
#define SCENARIO_FLUSH_MODE 2u

/* ---- compute ---- */

/* `ebpf-tracee compute` runs SCENARIO_COMPUTE_ITERATIONS rounds through
 * every function holding a probe site (all builds share the non-wallet
 * ones) and prints "compute 0x<16 hex digits>"; a binary whose instructions
 * are intact prints this value, attached or not. */
#define SCENARIO_COMPUTE_ITERATIONS 1000000u
#define SCENARIO_COMPUTE_RESULT UINT64_C(0xf403e3a5edb86c1d)

#endif
