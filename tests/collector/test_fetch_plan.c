/* collector/fetch_plan.c: the fixed argument plans loaded into the BPF
 * programs' .rodata (common/bpf_shared.h, "fetch plans"). */
#include <criterion/criterion.h>
#include <asm/ptrace.h>
#include <stddef.h>
#include <string.h>

#include "fetch_plan.h"
#include "usdt_args.h"

#define REG(r) ((short)offsetof(struct pt_regs, r))

static struct usdt_spec parse(const char *args, int count)
{
	struct usdt_spec s;
	char err[256];
	cr_assert_eq(usdt_spec_parse("test", "probe", args, count, 0, &s, err, sizeof(err)), 0,
		     "%s", err);
	return s;
}

static struct fetch_plan plan_of(const char *args, int count)
{
	struct usdt_spec s = parse(args, count);
	struct fetch_plan p;
	fetch_plan_from_spec(&s, &p);
	return p;
}

static void expect_arg(const struct fetch_plan *p, int i, int kind, short reg_off,
		       uint64_t val_off, int win_off, int is_signed, int bitshift)
{
	const struct fetch_arg *a = &p->args[i];
	cr_assert_eq(a->kind, kind, "arg %d: kind %d, expected %d", i, a->kind, kind);
	cr_assert_eq(a->reg_off, reg_off, "arg %d: reg_off %d, expected %d", i, a->reg_off, reg_off);
	cr_assert_eq(a->val_off, val_off, "arg %d: val_off %lld, expected %lld", i,
		     (long long)a->val_off, (long long)val_off);
	cr_assert_eq(a->win_off, win_off, "arg %d: win_off %d, expected %d", i, a->win_off, win_off);
	cr_assert_eq(a->is_signed, is_signed, "arg %d: is_signed", i);
	cr_assert_eq(a->bitshift, bitshift, "arg %d: bitshift %d, expected %d", i, a->bitshift,
		     bitshift);
}

/* bitcoind's own spec (shared/reference/bitcoind-usdt-notes.txt): four
 * stack slots of the caller's frame, 736 bytes apart at most, become one
 * read; the register arguments stay register loads. */
Test(fetch_plan, bitcoind_inbound_message_reads_its_four_stack_slots_in_one_window)
{
	struct fetch_plan p =
		plan_of("-8@-1064(%rbp) 8@-1024(%rbp) 8@-640(%rbp) 8@-336(%rbp) 8@%rax 8@%rdx", 6);
	cr_assert_eq(p.valid, 1);
	cr_assert_eq(p.arg_count, 6);
	cr_assert_eq(p.window_count, 1);
	cr_assert_eq(p.windows[0].reg_off, REG(rbp));
	cr_assert_eq((int64_t)p.windows[0].off, -1064);
	cr_assert_eq(p.windows[0].len, 1064 - 336 + 8);
	expect_arg(&p, 0, FETCH_WINDOW, REG(rbp), (uint64_t)-1064, 0, 1, 0);
	expect_arg(&p, 1, FETCH_WINDOW, REG(rbp), (uint64_t)-1024, 40, 0, 0);
	expect_arg(&p, 2, FETCH_WINDOW, REG(rbp), (uint64_t)-640, 424, 0, 0);
	expect_arg(&p, 3, FETCH_WINDOW, REG(rbp), (uint64_t)-336, 728, 0, 0);
	expect_arg(&p, 4, FETCH_REG, REG(rax), 0, 0, 0, 0);
	expect_arg(&p, 5, FETCH_REG, REG(rdx), 0, 0, 0, 0);
	cr_assert_eq(plan_window_args(&p), 4);
}

/* A lone memory argument on another register stays a read of its own;
 * sizes and signs are kept (the program shifts as bpf_usdt_arg does). */
Test(fetch_plan, bitcoind_block_connected_groups_only_its_frame_slots)
{
	struct fetch_plan p = plan_of(
		"8@-1736(%rbp) -4@24(%rcx) 8@%rax -4@-1660(%rbp) -8@-1624(%rbp) -8@%r13", 6);
	cr_assert_eq(p.window_count, 1);
	cr_assert_eq((int64_t)p.windows[0].off, -1736);
	cr_assert_eq(p.windows[0].len, 1736 - 1624 + 8);
	expect_arg(&p, 0, FETCH_WINDOW, REG(rbp), (uint64_t)-1736, 0, 0, 0);
	expect_arg(&p, 1, FETCH_DEREF, REG(rcx), 24, 0, 1, 32);
	expect_arg(&p, 2, FETCH_REG, REG(rax), 0, 0, 0, 0);
	expect_arg(&p, 3, FETCH_WINDOW, REG(rbp), (uint64_t)-1660, 76, 1, 32);
	expect_arg(&p, 4, FETCH_WINDOW, REG(rbp), (uint64_t)-1624, 112, 1, 0);
	expect_arg(&p, 5, FETCH_REG, REG(r13), 0, 0, 1, 0);
}

Test(fetch_plan, one_byte_argument_at_the_end_of_a_window)
{
	struct fetch_plan p = plan_of("-8@%rdx 4@%ecx 8@%rax 8@-1848(%rbp) 1@-1778(%rbp)", 5);
	cr_assert_eq(p.window_count, 1);
	cr_assert_eq(p.windows[0].len, 1848 - 1778 + 8);
	expect_arg(&p, 3, FETCH_WINDOW, REG(rbp), (uint64_t)-1848, 0, 0, 0);
	expect_arg(&p, 4, FETCH_WINDOW, REG(rbp), (uint64_t)-1778, 70, 0, 56);
}

Test(fetch_plan, constants_and_registers)
{
	struct fetch_plan p = plan_of("-4@$-9 2@%si 8@(%rbx)", 3);
	cr_assert_eq(p.window_count, 0);
	expect_arg(&p, 0, FETCH_CONST, 0, (uint64_t)-9, 0, 1, 32);
	expect_arg(&p, 1, FETCH_REG, REG(rsi), 0, 0, 0, 48);
	expect_arg(&p, 2, FETCH_DEREF, REG(rbx), 0, 0, 0, 0);
}

/* More than FETCH_WINDOW_MAX bytes apart: two reads, not one big one. */
Test(fetch_plan, slots_too_far_apart_are_read_alone)
{
	struct fetch_plan p = plan_of("8@-2000(%rbp) 8@-983(%rbp)", 2);
	cr_assert_eq(p.valid, 1);
	cr_assert_eq(p.window_count, 0);
	expect_arg(&p, 0, FETCH_DEREF, REG(rbp), (uint64_t)-2000, 0, 0, 0);
	expect_arg(&p, 1, FETCH_DEREF, REG(rbp), (uint64_t)-983, 0, 0, 0);
	struct fetch_plan q;
	q = plan_of("8@0(%rbp) 8@1016(%rbp)", 2);
	cr_assert_eq(q.window_count, 1, "1016 + 8 bytes = FETCH_WINDOW_MAX: one window");
	cr_assert_eq(q.windows[0].len, FETCH_WINDOW_MAX);
	q = plan_of("8@0(%rbp) 8@1017(%rbp)", 2);
	cr_assert_eq(q.window_count, 0);
}

/* Only FETCH_WINDOW_COUNT windows; the third register's pair is read
 * argument by argument. */
Test(fetch_plan, at_most_two_windows)
{
	struct fetch_plan p =
		plan_of("8@(%rax) 8@8(%rax) 8@(%rbx) 8@8(%rbx) 8@(%rcx) 8@8(%rcx)", 6);
	cr_assert_eq(p.window_count, 2);
	expect_arg(&p, 0, FETCH_WINDOW, REG(rax), 0, 0, 0, 0);
	expect_arg(&p, 1, FETCH_WINDOW, REG(rax), 8, 8, 0, 0);
	expect_arg(&p, 2, FETCH_WINDOW, REG(rbx), 0, FETCH_WINDOW_MAX, 0, 0);
	expect_arg(&p, 3, FETCH_WINDOW, REG(rbx), 8, FETCH_WINDOW_MAX + 8, 0, 0);
	expect_arg(&p, 4, FETCH_DEREF, REG(rcx), 0, 0, 0, 0);
	expect_arg(&p, 5, FETCH_DEREF, REG(rcx), 8, 0, 0, 0);
	cr_assert_eq(p.windows[1].len, 16);
}

/* A probe the compiler duplicated with other argument locations has no
 * plan: the program reads it through the spec map, site by site. */
Test(fetch_plan, sites_with_different_specs_have_no_plan)
{
	struct usdt_spec a = parse("8@%rbx -4@%eax -8@40(%r14)", 3);
	struct usdt_spec b = parse("8@%rdi -4@%ebp -8@40(%rdi)", 3);
	struct fetch_plan one, p;
	fetch_plan_from_spec(&a, &one);

	fetch_plan_add_site(&p, 0, &a);
	fetch_plan_add_site(&p, 1, &a);
	cr_assert(fetch_plan_equal(&p, &one), "two sites with one spec: the same plan");

	fetch_plan_add_site(&p, 2, &b);
	cr_assert_eq(p.valid, 0);
	fetch_plan_add_site(&p, 3, &a);
	cr_assert_eq(p.valid, 0, "a later site like the first does not bring the plan back");
	struct fetch_plan none;
	memset(&none, 0, sizeof(none));
	cr_assert(fetch_plan_equal(&p, &none));
}

Test(fetch_plan, more_arguments_than_a_plan_holds)
{
	struct usdt_spec s = parse("8@%rax 8@%rbx 8@%rcx 8@%rdx 8@%rsi 8@%rdi 8@%r8 8@%r9 8@%r10", 9);
	struct fetch_plan p;
	fetch_plan_from_spec(&s, &p);
	cr_assert_eq(p.valid, 0);
}
