/* Firing scenario steps: turns a struct scenario_step into the node's
 * objects and calls the node function that holds its probe site.
 *
 * Every byte a probe argument points to is written by the tracee just
 * before the probe fires (a copy of each string, the hash, the payload), so
 * the extractor's bpf_probe_read_user never meets a page that is not there
 * yet, except for the arguments a step marks untouched: those point into a
 * fresh anonymous mapping made for that step and never touched.
 */
#ifndef EBPF_TRACEE_FIRE_H
#define EBPF_TRACEE_FIRE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "scenario.h"

/* Longest string a step may carry, NUL included. */
#define FIRE_STR_CAP 512

/* A bit per tracepoint id. */
typedef uint32_t tp_mask;
#define TP_BIT(tp) ((tp_mask)1 << (tp))
_Static_assert(TP_COUNT <= 32, "tp_mask too small");

/* Payload buffers kept filled with the pattern of their size, so a load
 * mix of a few sizes fills each once. */
#define FIRE_PAYLOAD_SLOTS 4

struct payload_slot {
	unsigned char *buf; /* size bytes (at least 1), or NULL */
	uint64_t size;
};

/* One per thread. */
struct firer {
	char strings[SCENARIO_MAX_ARGS][FIRE_STR_CAP];
	struct payload_slot slots[FIRE_PAYLOAD_SLOTS];
	unsigned next_slot;       /* the one to replace next */
	const unsigned char *payload; /* this step's payload */
	void *untouched;          /* this step's untouched mapping, or NULL */
	uint64_t attempts[TP_COUNT];
	uint64_t fired[TP_COUNT]; /* probe sites reached (semaphore was nonzero) */
};

void firer_init(struct firer *f);
void firer_destroy(struct firer *f);

/* The probes this build has. */
tp_mask fire_available(void);

/* Fires step: 1 if its probe site was reached, 0 if no tracer was attached
 * (or this build lacks the probe), -errno if a mapping failed. */
int fire_step(struct firer *f, const struct scenario_step *step);

/* One line per tracepoint in mask, in id order: "fired <event> <count>". */
void fire_report(FILE *out, const uint64_t fired[TP_COUNT], tp_mask mask);

#endif
