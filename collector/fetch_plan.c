#include "fetch_plan.h"

#include <string.h>

#include "usdt_args.h"
#include "usdt_notes.h"

/* The memory arguments on register reg_off, from argument `from` on: how
 * many, and the bytes [*lo, *hi) their 8-byte reads cover. */
static int deref_span(const struct fetch_plan *p, int from, short reg_off, int64_t *lo, int64_t *hi)
{
	int n = 0;
	for (int i = from; i < p->arg_count; i++) {
		const struct fetch_arg *a = &p->args[i];
		if (a->kind != FETCH_DEREF || a->reg_off != reg_off)
			continue;
		int64_t off = (int64_t)a->val_off;
		if (n == 0 || off < *lo)
			*lo = off;
		if (n == 0 || off + 8 > *hi)
			*hi = off + 8;
		n++;
	}
	return n;
}

/* Turns the memory arguments of argument i's register into window w, when
 * there are two or more and they lie within FETCH_WINDOW_MAX bytes. */
static bool make_window(struct fetch_plan *p, int i, unsigned w)
{
	short reg_off = p->args[i].reg_off;
	int64_t lo = 0, hi = 0;
	if (deref_span(p, i, reg_off, &lo, &hi) < 2 || hi - lo > (int64_t)FETCH_WINDOW_MAX)
		return false;
	p->windows[w] = (struct fetch_window){
		.off = (uint64_t)lo, .reg_off = reg_off, .len = (uint16_t)(hi - lo)
	};
	for (int j = i; j < p->arg_count; j++) {
		struct fetch_arg *a = &p->args[j];
		if (a->kind != FETCH_DEREF || a->reg_off != reg_off)
			continue;
		a->kind = FETCH_WINDOW;
		a->window = (uint8_t)w;
		a->win_off = (uint16_t)(w * FETCH_WINDOW_MAX + ((int64_t)a->val_off - lo));
	}
	return true;
}

void fetch_plan_from_spec(const struct usdt_spec *s, struct fetch_plan *out)
{
	static const uint8_t kinds[] = {
		[USDT_ARG_CONST] = FETCH_CONST,
		[USDT_ARG_REG] = FETCH_REG,
		[USDT_ARG_REG_DEREF] = FETCH_DEREF,
	};
	memset(out, 0, sizeof(*out));
	if (s->arg_cnt < 0 || s->arg_cnt > (int)FETCH_MAX_ARGS)
		return;
	for (int i = 0; i < s->arg_cnt; i++) {
		const struct usdt_arg_spec *a = &s->args[i];
		if (a->arg_type < USDT_ARG_CONST || a->arg_type > USDT_ARG_REG_DEREF)
			return;
		out->args[i] = (struct fetch_arg){
			.val_off = a->val_off,
			.reg_off = a->reg_off,
			.kind = kinds[a->arg_type],
			.is_signed = a->arg_signed,
			.bitshift = (uint8_t)a->arg_bitshift,
		};
	}
	out->arg_count = (uint8_t)s->arg_cnt;
	for (int i = 0; i < out->arg_count && out->window_count < FETCH_WINDOW_COUNT; i++)
		if (out->args[i].kind == FETCH_DEREF && make_window(out, i, out->window_count))
			out->window_count++;
	out->valid = 1;
}

void fetch_plan_add_site(struct fetch_plan *plan, unsigned site_index, const struct usdt_spec *s)
{
	if (site_index == 0) {
		fetch_plan_from_spec(s, plan);
		return;
	}
	struct fetch_plan other;
	fetch_plan_from_spec(s, &other);
	if (!fetch_plan_equal(plan, &other))
		memset(plan, 0, sizeof(*plan));
}

bool fetch_plan_equal(const struct fetch_plan *a, const struct fetch_plan *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

unsigned plan_window_args(const struct fetch_plan *p)
{
	unsigned n = 0;
	for (int i = 0; i < p->arg_count; i++)
		n += p->args[i].kind == FETCH_WINDOW;
	return n;
}

int fetch_plan_of_probe(const struct usdt_notes *notes, const char *provider, const char *name,
			int expected_args, struct fetch_plan *plan, char *err, size_t errlen)
{
	int sites = 0;
	memset(plan, 0, sizeof(*plan));
	for (const struct usdt_probe *p = usdt_notes_find(notes, provider, name, NULL); p;
	     p = usdt_notes_find(notes, provider, name, p)) {
		struct usdt_spec spec;
		if (usdt_spec_parse(provider, name, p->args, expected_args, 0, &spec, err, errlen) < 0)
			return -1;
		fetch_plan_add_site(plan, (unsigned)sites++, &spec);
	}
	return sites;
}
