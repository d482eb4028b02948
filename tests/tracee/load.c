/* See load.h. */
#include "load.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "record.h"
#include "tracepoints_table.h"

static const struct {
	const char *name;
	enum tracepoint_id tp;
} aliases[] = {
	{ "p2p", TP_NET_INBOUND_MESSAGE },
	{ "p2p_out", TP_NET_OUTBOUND_MESSAGE },
	{ "utxo", TP_UTXOCACHE_ADD },
};

static bool is_message(enum tracepoint_id tp)
{
	return tp == TP_NET_INBOUND_MESSAGE || tp == TP_NET_OUTBOUND_MESSAGE;
}

/* "mempool:added", "mempool_added" or an alias; TP_NONE if none. */
static enum tracepoint_id lookup(const char *name)
{
	char underscored[128];

	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
		if (strcmp(name, aliases[i].name) == 0)
			return aliases[i].tp;
	for (int tp = 1; tp < TP_COUNT; tp++) {
		const struct tracepoint_info *t = &tracepoint_table[tp];

		snprintf(underscored, sizeof(underscored), "%s_%s", t->provider, t->name);
		if (strcmp(name, t->event) == 0 || strcmp(name, underscored) == 0)
			return (enum tracepoint_id)tp;
	}
	return TP_NONE;
}

/* A whole decimal number in [min, max]. */
static bool parse_number(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* item is modified in place (split at '=' and at the size's ':'). */
static int parse_item(char *item, struct load_item *out, char *err, size_t errlen)
{
	char *eq = strchr(item, '=');
	char *colon = strrchr(item, ':');
	uint64_t weight = 1, size = LOAD_DEFAULT_P2P_SIZE;
	bool has_size = false;

	if (eq) {
		*eq = '\0';
		if (!parse_number(eq + 1, 1, 1000000, &weight)) {
			snprintf(err, errlen, "bad weight '%s' for '%s' (1..1000000)", eq + 1, item);
			return -1;
		}
	}
	if (colon && colon < (eq ? eq : item + strlen(item)) && isdigit((unsigned char)colon[1])) {
		*colon = '\0';
		if (!parse_number(colon + 1, 0, P2P_PAYLOAD_MAX, &size)) {
			snprintf(err, errlen, "bad payload size '%s' for '%s' (0..%u)", colon + 1, item,
				 P2P_PAYLOAD_MAX);
			return -1;
		}
		has_size = true;
	}
	*out = (struct load_item){ .tp = lookup(item), .p2p_size = size, .weight = (unsigned)weight };
	if (out->tp == TP_NONE) {
		snprintf(err, errlen, "unknown tracepoint '%s' in mix", item);
		return -1;
	}
	if (has_size && !is_message(out->tp)) {
		snprintf(err, errlen, "'%s' takes no payload size", item);
		return -1;
	}
	if (!(fire_available() & TP_BIT(out->tp))) {
		snprintf(err, errlen, "this build has no probe %s", tracepoint_table[out->tp].event);
		return -1;
	}
	return 0;
}

int load_mix_parse(const char *spec, struct load_mix *mix, char *err, size_t errlen)
{
	char copy[1024];
	char *save = NULL;

	memset(mix, 0, sizeof(*mix));
	if (strlen(spec) >= sizeof(copy)) {
		snprintf(err, errlen, "mix spec too long");
		return -1;
	}
	strcpy(copy, spec);
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		if (mix->count == LOAD_MAX_ITEMS) {
			snprintf(err, errlen, "more than %d mix items", LOAD_MAX_ITEMS);
			return -1;
		}
		if (parse_item(item, &mix->items[mix->count], err, errlen) < 0)
			return -1;
		mix->count++;
	}
	if (mix->count == 0) {
		snprintf(err, errlen, "empty mix");
		return -1;
	}
	return 0;
}

tp_mask load_mix_mask(const struct load_mix *mix)
{
	tp_mask mask = 0;

	for (int i = 0; i < mix->count; i++)
		mask |= TP_BIT(mix->items[i].tp);
	return mask;
}

/* Smooth weighted round robin (as nginx balances upstreams). */
static struct load_item *next_item(struct load_mix *mix)
{
	struct load_item *best = NULL;
	int64_t total = 0;

	for (int i = 0; i < mix->count; i++) {
		struct load_item *it = &mix->items[i];

		it->current += it->weight;
		total += it->weight;
		if (!best || it->current > best->current)
			best = it;
	}
	best->current -= total;
	return best;
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Sleeps until event k is due at rate events/s after start; never when
 * behind, so a slow stretch is caught up. */
static void pace(uint64_t start_ns, uint64_t k, double rate)
{
	uint64_t due = start_ns + (uint64_t)((double)k * 1e9 / rate);
	struct timespec t;

	if (now_ns() >= due)
		return;
	t.tv_sec = (time_t)(due / 1000000000u);
	t.tv_nsec = (long)(due % 1000000000u);
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
}

int load_run(struct load_mix *mix, double rate, uint64_t count, volatile sig_atomic_t *stop,
	     uint64_t fired[TP_COUNT])
{
	struct firer *f = malloc(sizeof(*f));
	struct scenario_step step;
	uint64_t start, k, attempts = 0, reached = 0;
	double secs;
	int err = 0;

	if (!f)
		return -ENOMEM;
	firer_init(f);
	start = now_ns();
	for (k = 0; (count == 0 || k < count) && !*stop; k++) {
		struct load_item *it = next_item(mix);

		if (rate > 0)
			pace(start, k, rate);
		scenario_load_step(it->tp, f->fired[it->tp], it->p2p_size, &step);
		if ((err = fire_step(f, &step)) < 0)
			break;
	}
	secs = (double)(now_ns() - start) / 1e9;
	for (int tp = 1; tp < TP_COUNT; tp++) {
		fired[tp] += f->fired[tp];
		attempts += f->attempts[tp];
		reached += f->fired[tp];
	}
	fprintf(stderr, "ebpf-tracee: load: %" PRIu64 " events in %.3f s (%.0f/s), %" PRIu64
		" with no tracer attached\n", attempts, secs, secs > 0 ? (double)attempts / secs : 0.0,
		attempts - reached);
	firer_destroy(f);
	free(f);
	return err < 0 ? err : 0;
}
