/* The field table agrees with the tracepoint table and the record structs:
 * every argument has a field, fields lie inside the body and do not
 * overlap, names are unique snake_case. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <string.h>

#include "event_fields.h"
#include "record.h"
#include "tracepoints_table.h"

Test(event_fields, one_field_per_argument)
{
	for (int tp = 1; tp < TP_COUNT; tp++) {
		const struct event_layout *l = &event_layouts[tp];
		cr_assert_eq(l->field_count, tracepoint_table[tp].arg_count, "%s",
			     tracepoint_table[tp].event);
		cr_assert_gt(l->body_size, 0);
	}
	cr_assert_eq(event_layouts[TP_NONE].field_count, 0);
}

Test(event_fields, fields_inside_the_body_and_apart)
{
	for (int tp = 1; tp < TP_COUNT; tp++) {
		const struct event_layout *l = &event_layouts[tp];
		unsigned char used[1024] = { 0 };
		for (int i = 0; i < l->field_count; i++) {
			const struct event_field *f = &l->fields[i];
			if (f->kind == FIELD_PAYLOAD) {
				cr_assert_eq(i, l->field_count - 1, "payload is the last field");
				cr_assert_eq(f->offset, l->body_size);
				continue;
			}
			cr_assert_leq(f->offset + f->size, l->body_size, "%s.%s",
				      tracepoint_table[tp].event, f->name);
			for (unsigned b = f->offset; b < (unsigned)(f->offset + f->size); b++) {
				cr_assert_eq(used[b], 0, "%s.%s overlaps", tracepoint_table[tp].event,
					     f->name);
				used[b] = 1;
			}
			switch (f->kind) {
			case FIELD_I64: case FIELD_U64: cr_assert_eq(f->size, 8); break;
			case FIELD_I32: case FIELD_U32: cr_assert_eq(f->size, 4); break;
			case FIELD_BOOL: cr_assert_eq(f->size, 1); break;
			case FIELD_HASH: cr_assert_eq(f->size, HASH_LEN); break;
			case FIELD_STR: cr_assert_geq(f->size, 10); break;
			default: break;
			}
			for (const char *c = f->name; *c; c++)
				cr_assert(islower((unsigned char)*c) || *c == '_', "%s", f->name);
			for (int j = 0; j < i; j++)
				cr_assert_str_neq(l->fields[j].name, f->name);
		}
	}
}

Test(event_fields, documented_string_maxima_fit)
{
	/* DESIGN.md: addr >= 272, conn_type and msg_type <= 20, reason <= 118,
	 * misbehaving message <= 128, removal reason <= 9. */
	cr_assert_geq(ADDR_LEN, 272);
	cr_assert_geq(CONN_TYPE_LEN, 21);
	cr_assert_geq(MSG_TYPE_LEN, 21);
	cr_assert_geq(REJECT_REASON_LEN, 119);
	cr_assert_geq(MISBEHAVING_LEN, 129);
	cr_assert_geq(REMOVAL_REASON_LEN, 10);
}
