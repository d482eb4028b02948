/* docs/events.md against the encoder, both ways.
 *
 * The emitted side is derived by running the encoder, not from a list:
 * for every tracepoint, sample records (all-zero values, and every value
 * set: integers all 0xff bytes, bools true, strings equal to their key,
 * hashes a pattern) are encoded with no flag and with each of the 32 flag
 * bits alone; whatever the encoder accepts is decoded and every key path
 * collected (nested maps as `a.b`, map keys that are event names as
 * `<event>`), with the MessagePack types seen. The collector's records and
 * the publisher's stats are encoded with every counter set.
 *
 * Then: every event emitted has a section and every section an event;
 * every emitted key is documented for its event with a type that admits
 * what was emitted (an `int` must also have been seen negative, so a
 * signed field documented as uint or the reverse fails); every documented
 * key was emitted; every subject matches. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_fields.h"
#include "helpers.h"
#include "record.h"
#include "tracepoints_table.h"

#define MAX_EVENTS 40
#define MAX_KEYS 128
#define PATH_LEN 128

enum { T_POS = 1, T_NEG = 2, T_STR = 4, T_BIN = 8, T_BOOL = 16, T_MAP = 32, T_ARRAY = 64 };

struct key {
	char path[PATH_LEN];
	char type[16]; /* documented */
	unsigned seen; /* emitted: T_* bits */
};

struct event {
	char name[64];
	char subject[256];
	struct key keys[MAX_KEYS];
	int n;
};

static struct event doc[MAX_EVENTS], emitted[MAX_EVENTS];
static int ndoc, nemitted;
static struct key common[16];
static int ncommon;

#define DOC_PREFIX "docprefix"

/* ---- the document ---- */

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
	s[n] = 0;
	fclose(f);
	return s;
}

/* the text between the first pair of backticks at or after p */
static void backticked(const char *p, char *out, size_t outlen)
{
	const char *a = strchr(p, '`');
	cr_assert_not_null(a, "no backticks in: %s", p);
	const char *b = strchr(a + 1, '`');
	cr_assert_not_null(b, "unclosed backtick in: %s", p);
	size_t n = (size_t)(b - a - 1);
	cr_assert_lt(n, outlen, "too long: %s", p);
	memcpy(out, a + 1, n);
	out[n] = 0;
}

static void add_doc_key(struct key *keys, int *n, const char *line)
{
	struct key k = { 0 };
	backticked(line, k.path, sizeof(k.path));
	/* second cell: after the second '|' */
	const char *c = strchr(line + 1, '|');
	cr_assert_not_null(c, "%s", line);
	c++;
	while (*c == ' ')
		c++;
	size_t t = 0;
	while (c[t] && c[t] != ' ' && c[t] != '|' && t + 1 < sizeof(k.type)) {
		k.type[t] = c[t];
		t++;
	}
	k.type[t] = 0;
	for (int i = 0; i < *n; i++)
		cr_assert_str_neq(keys[i].path, k.path, "key %s documented twice in one section",
				  k.path);
	cr_assert_lt(*n, MAX_KEYS);
	keys[(*n)++] = k;
}

static void parse_doc(void)
{
	char *text = read_file(EVENTS_MD);
	enum { NONE, COMMON, EVENT } section = NONE;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (line[0] == '#') {
			section = NONE;
			if (strncmp(line, "### `", 5) == 0) {
				cr_assert_lt(ndoc, MAX_EVENTS);
				struct event *ev = &doc[ndoc++];
				backticked(line, ev->name, sizeof(ev->name));
				for (int i = 0; i < ndoc - 1; i++)
					cr_assert_str_neq(doc[i].name, ev->name, "two sections for %s",
							  ev->name);
				section = EVENT;
			} else if (strcmp(line, "## Keys in every event") == 0) {
				section = COMMON;
			}
			continue;
		}
		if (section == EVENT && strncmp(line, "Subject: `", 10) == 0) {
			struct event *ev = &doc[ndoc - 1];
			cr_assert_str_empty(ev->subject, "two subjects for %s", ev->name);
			backticked(line, ev->subject, sizeof(ev->subject));
		} else if (strncmp(line, "| `", 3) == 0) {
			if (section == COMMON)
				add_doc_key(common, &ncommon, line);
			else if (section == EVENT)
				add_doc_key(doc[ndoc - 1].keys, &doc[ndoc - 1].n, line);
		}
	}
	free(text);
}

/* ---- what the encoder emits ---- */

static bool is_event_name(const char *s, size_t n)
{
	if (n == strlen("unknown") && memcmp(s, "unknown", n) == 0)
		return true;
	for (int tp = 1; tp < TP_COUNT; tp++)
		if (strlen(tracepoint_table[tp].event) == n &&
		    memcmp(tracepoint_table[tp].event, s, n) == 0)
			return true;
	return false;
}

static unsigned type_bit(const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER: return T_POS;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: return T_NEG;
	case MSGPACK_OBJECT_STR: return T_STR;
	case MSGPACK_OBJECT_BIN: return T_BIN;
	case MSGPACK_OBJECT_BOOLEAN: return T_BOOL;
	case MSGPACK_OBJECT_MAP: return T_MAP;
	case MSGPACK_OBJECT_ARRAY: return T_ARRAY;
	default: cr_assert_fail("unexpected MessagePack type %d", o->type);
	}
	return 0;
}

static struct event *emitted_event(const char *name)
{
	for (int i = 0; i < nemitted; i++)
		if (strcmp(emitted[i].name, name) == 0)
			return &emitted[i];
	cr_assert_lt(nemitted, MAX_EVENTS);
	struct event *ev = &emitted[nemitted++];
	snprintf(ev->name, sizeof(ev->name), "%s", name);
	return ev;
}

static void collect(struct event *ev, const msgpack_object *map, const char *prefix)
{
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key, *v = &map->via.map.ptr[i].val;
		cr_assert_eq(k->type, MSGPACK_OBJECT_STR);
		char path[PATH_LEN];
		bool dynamic = is_event_name(k->via.str.ptr, k->via.str.size);
		int len = snprintf(path, sizeof(path), "%s%s%.*s", prefix ? prefix : "",
				   prefix ? "." : "", dynamic ? 7 : (int)k->via.str.size,
				   dynamic ? "<event>" : k->via.str.ptr);
		cr_assert_lt(len, PATH_LEN, "key path too long");
		struct key *found = NULL;
		for (int j = 0; j < ev->n; j++)
			if (strcmp(ev->keys[j].path, path) == 0)
				found = &ev->keys[j];
		if (!found) {
			cr_assert_lt(ev->n, MAX_KEYS);
			found = &ev->keys[ev->n++];
			snprintf(found->path, sizeof(found->path), "%s", path);
		}
		found->seen |= type_bit(v);
		if (v->type == MSGPACK_OBJECT_MAP)
			collect(ev, v, path);
	}
}

/* The subject with the prefix written as <prefix> and a last token that is
 * the value of a str key equal to its own name written as <key>. */
static void normalized_subject(const struct encoder *e, const msgpack_object *m, char *out,
			       size_t outlen)
{
	const char *s = e->subject;
	cr_assert(strncmp(s, DOC_PREFIX ".", strlen(DOC_PREFIX) + 1) == 0, "%s", s);
	snprintf(out, outlen, "<prefix>%s", s + strlen(DOC_PREFIX));
	const char *last = strrchr(out, '.');
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
		if (v->type != MSGPACK_OBJECT_STR || v->via.str.size != k->via.str.size ||
		    memcmp(v->via.str.ptr, k->via.str.ptr, k->via.str.size) != 0)
			continue;
		if (strlen(last + 1) == k->via.str.size &&
		    memcmp(last + 1, k->via.str.ptr, k->via.str.size) == 0) {
			size_t at = (size_t)(last + 1 - out);
			snprintf(out + at, outlen - at, "<%.*s>", (int)k->via.str.size,
				 k->via.str.ptr);
			return;
		}
	}
}

/* Encodes, and on success collects keys (and the subject when asked). */
static bool try_encode(struct encoder *e, struct rec *r, bool record_subject)
{
	char err[ENCODE_ERROR_LEN];
	int rc = encode_record(e, 1, 2, r->data, r->len, err);
	rec_free(r);
	if (rc != ENCODE_OK) {
		cr_assert_eq(rc, ENCODE_MALFORMED, "%s", err);
		return false;
	}
	msgpack_unpacked u;
	const msgpack_object *m = dec(e, &u);
	const msgpack_object *name = map_get(m, "event");
	cr_assert(name && name->type == MSGPACK_OBJECT_STR);
	char ename[64];
	snprintf(ename, sizeof(ename), "%.*s", (int)name->via.str.size, name->via.str.ptr);
	struct event *ev = emitted_event(ename);
	collect(ev, m, NULL);
	if (record_subject) {
		char subject[256];
		normalized_subject(e, m, subject, sizeof(subject));
		if (ev->subject[0])
			cr_assert_str_eq(ev->subject, subject, "%s", ename);
		else
			snprintf(ev->subject, sizeof(ev->subject), "%s", subject);
	}
	msgpack_unpacked_destroy(&u);
	return true;
}

static void fill_full(int tp, unsigned char *body)
{
	const struct event_layout *l = &event_layouts[tp];
	for (int i = 0; i < l->field_count; i++) {
		const struct event_field *f = &l->fields[i];
		unsigned char *p = body + f->offset;
		switch (f->kind) {
		case FIELD_I64: case FIELD_U64: case FIELD_I32: case FIELD_U32:
			memset(p, 0xff, f->size);
			break;
		case FIELD_BOOL:
			p[0] = 1;
			break;
		case FIELD_STR:
			cr_assert_lt(strlen(f->name), f->size);
			strcpy((char *)p, f->name);
			break;
		case FIELD_HASH:
			for (unsigned b = 0; b < f->size; b++)
				p[b] = (unsigned char)(b + 1);
			break;
		case FIELD_PAYLOAD:
			break;
		}
	}
}

static uint64_t payload_len_of(int tp, const unsigned char *body)
{
	const struct event_layout *l = &event_layouts[tp];
	bool has_payload = false;
	uint64_t size = 0;
	for (int i = 0; i < l->field_count; i++) {
		if (l->fields[i].kind == FIELD_PAYLOAD)
			has_payload = true;
		if (strcmp(l->fields[i].name, "size") == 0)
			memcpy(&size, body + l->fields[i].offset, 8);
	}
	if (!has_payload)
		return 0;
	return size < P2P_PAYLOAD_MAX ? size : P2P_PAYLOAD_MAX;
}

static void encode_samples(void)
{
	struct encoder e;
	char err[ENCODE_ERROR_LEN];
	cr_assert_eq(encoder_init(&e, "node1", DOC_PREFIX, err), 0, "%s", err);
	unsigned char *payload = calloc(1, P2P_PAYLOAD_MAX);

	for (int tp = 1; tp < TP_COUNT; tp++) {
		size_t bs = event_layouts[tp].body_size;
		for (int full = 0; full < 2; full++) {
			unsigned char body[1024] = { 0 };
			cr_assert_leq(bs, sizeof(body));
			if (full)
				fill_full(tp, body);
			size_t plen = (size_t)payload_len_of(tp, body);
			int accepted = 0;
			for (int bit = -1; bit < 32; bit++) {
				uint32_t flags = bit < 0 ? 0 : 1u << bit;
				struct rec r = rec_build(RECORD_EVENT, (uint16_t)tp, flags, body, bs,
							 payload, plen);
				accepted += try_encode(&e, &r, full) ? 1 : 0;
			}
			cr_assert_gt(accepted, 0, "%s: no sample accepted",
				     tracepoint_table[tp].event);
		}
	}
	free(payload);

	struct rec_loss loss;
	for (int tp = 0; tp < TP_COUNT; tp++)
		loss.tp[tp] = (struct loss_counts){ 1, 2, 3 };
	struct rec r = rec_build(RECORD_LOSS, 0, 0, &loss, sizeof(loss), NULL, 0);
	cr_assert(try_encode(&e, &r, true));

	struct rec_stats st;
	memset(&st, 0, sizeof(st));
	st.queue_capacity = 1;
	st.attached = ((1u << TP_COUNT) - 1) & ~1u;
	for (int tp = 0; tp < TP_COUNT; tp++)
		st.tp[tp] = (struct tracepoint_stats){ 1, { 2, 3, 4 } };
	r = rec_build(RECORD_STATS, 0, 0, &st, sizeof(st), NULL, 0);
	cr_assert(try_encode(&e, &r, true));

	struct rec_started sr = { .version = "1", .attach_mode = ATTACH_MULTI,
				  .attached = st.attached };
	r = rec_build(RECORD_STARTED, 0, 0, &sr, sizeof(sr), NULL, 0);
	cr_assert(try_encode(&e, &r, true));

	struct publisher_stats ps = { .stream_id = 1, .connected = true };
	cr_assert_eq(encode_publisher_stats(&e, &ps, 1), ENCODE_OK);
	msgpack_unpacked u;
	const msgpack_object *m = dec(&e, &u);
	struct event *ev = emitted_event("extractor:publisher_stats");
	collect(ev, m, NULL);
	normalized_subject(&e, m, ev->subject, sizeof(ev->subject));
	msgpack_unpacked_destroy(&u);
	encoder_free(&e);
}

/* ---- the comparison ---- */

static unsigned allowed_types(const char *doc_type)
{
	static const struct { const char *name; unsigned bits; } t[] = {
		{ "uint", T_POS }, { "int", T_POS | T_NEG }, { "str", T_STR }, { "bin", T_BIN },
		{ "bool", T_BOOL }, { "map", T_MAP }, { "array", T_ARRAY },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i].name, doc_type) == 0)
			return t[i].bits;
	cr_assert_fail("unknown documented type \"%s\"", doc_type);
	return 0;
}

static const struct key *doc_key(const struct event *d, const char *path)
{
	if (strcmp(d->name, "extractor:publisher_stats") != 0)
		for (int i = 0; i < ncommon; i++)
			if (strcmp(common[i].path, path) == 0)
				return &common[i];
	for (int i = 0; i < d->n; i++)
		if (strcmp(d->keys[i].path, path) == 0)
			return &d->keys[i];
	return NULL;
}

static const struct event *find(const struct event *set, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(set[i].name, name) == 0)
			return &set[i];
	return NULL;
}

static void check_documented_key(const struct event *d, const struct event *em,
				 const struct key *k)
{
	const struct key *dk = doc_key(d, k->path);
	cr_assert_not_null(dk, "%s: key %s is emitted but not documented", d->name, k->path);
	unsigned ok = allowed_types(dk->type);
	cr_assert_eq(k->seen & ~ok, 0, "%s: %s documented as %s, emitted with type bits 0x%x",
		     d->name, k->path, dk->type, k->seen);
	if (strcmp(dk->type, "int") == 0)
		cr_assert(k->seen & T_NEG,
			  "%s: %s documented as int but never emitted negative (is it unsigned?)",
			  d->name, k->path);
	(void)em;
}

Test(events_doc, document_matches_the_encoder, .timeout = 240)
{
	parse_doc();
	encode_samples();

	cr_assert_geq(ndoc, 24, "found %d event sections", ndoc);
	cr_assert_eq(ncommon, 7, "found %d common keys", ncommon);
	cr_assert_eq(nemitted, 24, "the encoder emitted %d events", nemitted);

	for (int i = 0; i < nemitted; i++) {
		const struct event *em = &emitted[i];
		const struct event *d = find(doc, ndoc, em->name);
		cr_assert_not_null(d, "event %s has no section in docs/events.md", em->name);
		cr_assert_str_eq(d->subject, em->subject, "%s: documented subject", em->name);
		for (int k = 0; k < em->n; k++)
			check_documented_key(d, em, &em->keys[k]);
	}
	for (int i = 0; i < ndoc; i++) {
		const struct event *d = &doc[i];
		const struct event *em = find(emitted, nemitted, d->name);
		cr_assert_not_null(em, "docs/events.md documents %s, which the encoder never emits",
				   d->name);
		cr_assert_str_not_empty(d->subject, "%s has no Subject line", d->name);
		for (int k = 0; k < d->n; k++) {
			bool seen = false;
			for (int j = 0; j < em->n; j++)
				seen = seen || strcmp(em->keys[j].path, d->keys[k].path) == 0;
			cr_assert(seen, "%s: documented key %s is never emitted", d->name,
				  d->keys[k].path);
		}
		if (strcmp(d->name, "extractor:publisher_stats") != 0)
			for (int k = 0; k < ncommon; k++) {
				bool seen = false;
				for (int j = 0; j < em->n; j++)
					seen = seen || strcmp(em->keys[j].path, common[k].path) == 0;
				cr_assert(seen, "%s: common key %s is not emitted", d->name,
					  common[k].path);
			}
	}
}
