/* Fetch plans (common/bpf_shared.h): the arguments of a tracepoint read by
 * constants the verifier can see, built from the USDT argument specs of its
 * probe sites. */
#ifndef EBPF_COLLECTOR_FETCH_PLAN_H
#define EBPF_COLLECTOR_FETCH_PLAN_H

#include <stdbool.h>
#include <stddef.h>

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

struct usdt_notes;

/* The plan of probe provider:name from every site of it in the notes
 * (each spec parsed with expected_args, -1 for any count). Returns the
 * number of sites (0: none, *plan zeroed), or -1 with usdt_spec_parse's
 * message in err when a spec cannot be read. */
int fetch_plan_of_probe(const struct usdt_notes *notes, const char *provider, const char *name,
			int expected_args, struct fetch_plan *plan, char *err, size_t errlen);

/* How many arguments the plan reads from its windows. */
unsigned plan_window_args(const struct fetch_plan *p);

#endif
