/* Fetch plans (common/bpf_shared.h): the arguments of a tracepoint read by
 * constants the verifier can see, built from the USDT argument specs of its
 * probe sites. */
#ifndef EBPF_COLLECTOR_FETCH_PLAN_H
#define EBPF_COLLECTOR_FETCH_PLAN_H

#include <stdbool.h>

#include "bpf_shared.h"
#include "usdt_spec.h"

/* The plan for a tracepoint whose every site has spec s: valid, unless s
 * has more than FETCH_MAX_ARGS arguments. Memory arguments on the same
 * register within FETCH_WINDOW_MAX bytes become one window (at most
 * FETCH_WINDOW_COUNT windows, two arguments or more each). */
void fetch_plan_from_spec(const struct usdt_spec *s, struct fetch_plan *out);

/* Adds one more site's spec to a tracepoint's plan: the first site makes
 * the plan (site_index 0); a later one with another spec makes it invalid
 * (the program then uses the spec map for that tracepoint). */
void fetch_plan_add_site(struct fetch_plan *plan, unsigned site_index, const struct usdt_spec *s);

bool fetch_plan_equal(const struct fetch_plan *a, const struct fetch_plan *b);

/* How many arguments the plan reads from its windows. */
unsigned plan_window_args(const struct fetch_plan *p);

#endif
