/* collector/usdt_args.c: the argument spec parser. */
#include <criterion/criterion.h>
#include <asm/ptrace.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "usdt_args.h"

/* Every "Arguments:" line of shared/reference/bitcoind-usdt-notes.txt (a
 * bitcoind built from master with gcc 12.2 -O2), with its probe. */
static const struct {
	const char *provider, *name, *args;
	int count;
} bitcoind_specs[] = {
	{ "net", "evicted_inbound_connection", "-8@-384(%rbp) 8@%r14 8@%r15 4@%esi -8@%rdx", 5 },
	{ "net", "closed_connection", "-8@%r13 8@%r14 8@%r15 4@%esi -8@%rdx", 5 },
	{ "net", "outbound_connection", "-8@%r12 8@%r13 8@%r14 4@%r15d 8@%rax", 5 },
	{ "net", "inbound_connection", "-8@%r12 8@%r13 8@%r15 4@-736(%rbp) 8@%rax", 5 },
	{ "net", "outbound_message", "-8@%r13 8@%r14 8@-96(%rbp) 8@24(%rcx) 8@%rax 8@%rdx", 6 },
	{ "net", "misbehaving_connection", "-8@(%rbx) 8@(%rax)", 2 },
	{ "net", "inbound_message",
	  "-8@-1064(%rbp) 8@-1024(%rbp) 8@-640(%rbp) 8@-336(%rbp) 8@%rax 8@%rdx", 6 },
	{ "mempool", "added", "8@%rbx -4@%eax -8@40(%r14)", 3 },
	{ "mempool", "removed", "8@%rbx 8@%r13 -4@%eax -8@40(%r15) 8@64(%r15)", 5 },
	{ "mempool", "replaced",
	  "8@%r13 -4@%eax -8@40(%rbx) 8@64(%rbx) 8@%rdx -4@168(%rsp) -8@160(%rsp) 1@%cl", 8 },
	{ "utxocache", "flush", "-8@%rdx 4@%ecx 8@%rax 8@-1848(%rbp) 1@-1778(%rbp)", 5 },
	{ "mempool", "rejected", "8@%r13 8@272(%rsp)", 2 },
	{ "validation", "block_connected",
	  "8@-1736(%rbp) -4@24(%rcx) 8@%rax -4@-1660(%rbp) -8@-1624(%rbp) -8@%r13", 6 },
	{ "utxocache", "uncache", "8@%rbp 4@32(%rbp) 4@%eax -8@72(%rsi) 1@%dl", 5 },
	{ "utxocache", "add", "8@%rcx 4@32(%rcx) 4@%eax -8@72(%r15) 1@%dl", 5 },
	{ "utxocache", "spent", "8@%r13 4@32(%r13) 4@%eax -8@72(%rbx) 1@%dl", 5 },
};

Test(usdt_args, every_bitcoind_spec_parses)
{
	cr_assert_eq(sizeof(bitcoind_specs) / sizeof(bitcoind_specs[0]), 16);
	for (size_t i = 0; i < 16; i++) {
		struct usdt_spec spec;
		char err[512] = "";
		int rc = usdt_spec_parse(bitcoind_specs[i].provider, bitcoind_specs[i].name,
					 bitcoind_specs[i].args, bitcoind_specs[i].count, 1000 + i,
					 &spec, err, sizeof(err));
		cr_assert_eq(rc, 0, "%s:%s '%s': %s", bitcoind_specs[i].provider,
			     bitcoind_specs[i].name, bitcoind_specs[i].args, err);
		cr_assert_eq(spec.arg_cnt, bitcoind_specs[i].count);
		cr_assert_eq(spec.usdt_cookie, 1000 + i);
		for (int a = 0; a < spec.arg_cnt; a++) {
			cr_assert(spec.args[a].arg_type >= USDT_ARG_CONST &&
				  spec.args[a].arg_type <= USDT_ARG_REG_DEREF);
			cr_assert(spec.args[a].arg_bitshift == 0 || spec.args[a].arg_bitshift == 32 ||
				  spec.args[a].arg_bitshift == 56);
		}
		for (int a = spec.arg_cnt; a < USDT_MAX_ARG_CNT; a++)
			cr_assert_eq(spec.args[a].arg_type, 0);
	}
}

static struct usdt_arg_spec arg1(const char *text)
{
	struct usdt_arg_spec a;
	char err[512] = "";
	int rc = usdt_arg_parse("test:probe", 1, text, &a, err, sizeof(err));
	cr_assert_eq(rc, 0, "'%s': %s", text, err);
	return a;
}

#define EXPECT_ARG(text, type, reg, val, sign, shift)                                      \
	do {                                                                               \
		struct usdt_arg_spec a_ = arg1(text);                                      \
		cr_expect_eq(a_.arg_type, (type), "%s: type %d", text, a_.arg_type);        \
		cr_expect_eq(a_.reg_off, (reg), "%s: reg_off %d", text, a_.reg_off);        \
		cr_expect_eq(a_.val_off, (uint64_t)(val), "%s: val_off %llu", text,         \
			     (unsigned long long)a_.val_off);                              \
		cr_expect_eq(a_.arg_signed, (sign), "%s: signed", text);                    \
		cr_expect_eq(a_.arg_bitshift, (shift), "%s: bitshift %d", text,             \
			     a_.arg_bitshift);                                             \
	} while (0)

#define R(reg) ((int16_t)offsetof(struct pt_regs, reg))

Test(usdt_args, representative_forms)
{
	EXPECT_ARG("-8@-384(%rbp)", USDT_ARG_REG_DEREF, R(rbp), (int64_t)-384, true, 0);
	EXPECT_ARG("4@%esi", USDT_ARG_REG, R(rsi), 0, false, 32);
	EXPECT_ARG("1@%cl", USDT_ARG_REG, R(rcx), 0, false, 56);
	EXPECT_ARG("8@24(%rcx)", USDT_ARG_REG_DEREF, R(rcx), 24, false, 0);
	EXPECT_ARG("-8@(%rbx)", USDT_ARG_REG_DEREF, R(rbx), 0, true, 0);
	EXPECT_ARG("4@$5", USDT_ARG_CONST, 0, 5, false, 32);
	EXPECT_ARG("-4@$-9", USDT_ARG_CONST, 0, (int64_t)-9, true, 32);
	EXPECT_ARG("8@%r14", USDT_ARG_REG, R(r14), 0, false, 0);
	EXPECT_ARG("4@%r15d", USDT_ARG_REG, R(r15), 0, false, 32);
	EXPECT_ARG("-4@168(%rsp)", USDT_ARG_REG_DEREF, R(rsp), 168, true, 32);
	EXPECT_ARG("1@-1778(%rbp)", USDT_ARG_REG_DEREF, R(rbp), (int64_t)-1778, false, 56);
	EXPECT_ARG("-2@%ax", USDT_ARG_REG, R(rax), 0, true, 48);
	EXPECT_ARG("8@0x10(%rdi)", USDT_ARG_REG_DEREF, R(rdi), 16, false, 0);
	EXPECT_ARG("8@$0x7fffffffffffffff", USDT_ARG_CONST, 0, INT64_MAX, false, 0);
	EXPECT_ARG("-8@$-9223372036854775808", USDT_ARG_CONST, 0, INT64_MIN, true, 0);
	EXPECT_ARG("8@8(%rip)", USDT_ARG_REG_DEREF, R(rip), 8, false, 0);
}

Test(usdt_args, every_register_alias)
{
	static const struct {
		const char *names[4];
		int16_t off;
	} regs[] = {
		{ { "rax", "eax", "ax", "al" }, R(rax) },     { { "rbx", "ebx", "bx", "bl" }, R(rbx) },
		{ { "rcx", "ecx", "cx", "cl" }, R(rcx) },     { { "rdx", "edx", "dx", "dl" }, R(rdx) },
		{ { "rsi", "esi", "si", "sil" }, R(rsi) },    { { "rdi", "edi", "di", "dil" }, R(rdi) },
		{ { "rbp", "ebp", "bp", "bpl" }, R(rbp) },    { { "rsp", "esp", "sp", "spl" }, R(rsp) },
		{ { "r8", "r8d", "r8w", "r8b" }, R(r8) },     { { "r9", "r9d", "r9w", "r9b" }, R(r9) },
		{ { "r10", "r10d", "r10w", "r10b" }, R(r10) }, { { "r11", "r11d", "r11w", "r11b" }, R(r11) },
		{ { "r12", "r12d", "r12w", "r12b" }, R(r12) }, { { "r13", "r13d", "r13w", "r13b" }, R(r13) },
		{ { "r14", "r14d", "r14w", "r14b" }, R(r14) }, { { "r15", "r15d", "r15w", "r15b" }, R(r15) },
	};
	static const int sizes[4] = { 8, 4, 2, 1 };
	for (size_t r = 0; r < sizeof(regs) / sizeof(regs[0]); r++)
		for (int w = 0; w < 4; w++) {
			char text[32];
			snprintf(text, sizeof(text), "-%d@%%%s", sizes[w], regs[r].names[w]);
			EXPECT_ARG(text, USDT_ARG_REG, regs[r].off, 0, true, 64 - 8 * sizes[w]);
		}
	EXPECT_ARG("8@%rip", USDT_ARG_REG, R(rip), 0, false, 0);
	EXPECT_ARG("4@%eip", USDT_ARG_REG, R(rip), 0, false, 32);
	/* the user-space pt_regs layout of <asm/ptrace.h> */
	cr_expect_eq(R(r15), 0);
	cr_expect_eq(R(rbp), 32);
	cr_expect_eq(R(rax), 80);
	cr_expect_eq(R(rdi), 112);
	cr_expect_eq(R(rip), 128);
	cr_expect_eq(R(rsp), 152);
}

static void expect_error(const char *args, int expected_args, const char *message)
{
	struct usdt_spec spec;
	char err[512] = "";
	int rc = usdt_spec_parse("net", "inbound_message", args, expected_args, 0, &spec, err,
				 sizeof(err));
	cr_expect_lt(rc, 0, "'%s' parsed", args);
	cr_expect_str_eq(err, message, "'%s'", args);
}

Test(usdt_args, sib_form_is_refused_by_name)
{
	expect_error("-8@%r13 8@%r14 -4@-96(%rbp,%rax,8) 8@%rax 8@%rdx 8@%rcx", 6,
		     "net:inbound_message: argument 3 has the form '-4@-96(%rbp,%rax,8)' (indexed "
		     "addressing), which the extractor cannot read");
	expect_error("-4@-96(%rbp,%rax,8)", -1,
		     "net:inbound_message: argument 1 has the form '-4@-96(%rbp,%rax,8)' (indexed "
		     "addressing), which the extractor cannot read");
	expect_error("1@(%rbp,%rax)", -1,
		     "net:inbound_message: argument 1 has the form '1@(%rbp,%rax)' (indexed "
		     "addressing), which the extractor cannot read");
	expect_error("8@(,%rax,8)", -1,
		     "net:inbound_message: argument 1 has the form '8@(,%rax,8)' (indexed "
		     "addressing), which the extractor cannot read");
}

Test(usdt_args, bad_specs_have_clear_errors)
{
	expect_error("8@", -1, "net:inbound_message: argument 1 '8@': no location after '@'");
	expect_error("3@%rax", -1,
		     "net:inbound_message: argument 1 '3@%rax': size 3 is not 1, 2, 4 or 8 bytes "
		     "(negative for signed)");
	expect_error("-16@%rax", -1,
		     "net:inbound_message: argument 1 '-16@%rax': size -16 is not 1, 2, 4 or 8 "
		     "bytes (negative for signed)");
	expect_error("8@%xyz", -1, "net:inbound_message: argument 1 '8@%xyz': unknown register '%xyz'");
	expect_error("8@-12(%rbp", -1, "net:inbound_message: argument 1 '8@-12(%rbp': missing ')'");
	expect_error("", 6,
		     "net:inbound_message: the USDT note has 0 arguments (''), the extractor "
		     "expects 6");
	expect_error("8@%rax 8@%rdx", 3,
		     "net:inbound_message: the USDT note has 2 arguments ('8@%rax 8@%rdx'), the "
		     "extractor expects 3");
	expect_error("%rax", -1,
		     "net:inbound_message: argument 1 '%rax': no size before '@' (expected "
		     "SIZE@LOCATION, e.g. -8@%rax)");
	expect_error("8%rax", -1,
		     "net:inbound_message: argument 1 '8%rax': missing '@' after the size "
		     "(expected SIZE@LOCATION)");
	expect_error("8@%eax", -1,
		     "net:inbound_message: argument 1 '8@%eax': size 8 is wider than register "
		     "%eax (4 bytes)");
	expect_error("1@%ah", -1,
		     "net:inbound_message: argument 1 '1@%ah': high-byte register %ah is not "
		     "supported");
	expect_error("4@counter(%rip)", -1,
		     "net:inbound_message: argument 1 '4@counter(%rip)': symbolic displacement (a "
		     "symbol-relative address), which the extractor cannot read");
	expect_error("8@$x", -1,
		     "net:inbound_message: argument 1 '8@$x': constant after '$' is not a (64-bit) "
		     "integer");
	expect_error("8@$99999999999999999999", -1,
		     "net:inbound_message: argument 1 '8@$99999999999999999999': constant after '$' "
		     "is not a (64-bit) integer");
	expect_error("8@(%eax)", -1,
		     "net:inbound_message: argument 1 '8@(%eax)': address register %eax is not a "
		     "64-bit register");
	expect_error("8@8(%rax)x", -1,
		     "net:inbound_message: argument 1 '8@8(%rax)x': unexpected 'x' after ')'");
	expect_error("8@1234", -1,
		     "net:inbound_message: argument 1 '8@1234': absolute memory address without a "
		     "register, which the extractor cannot read");
	expect_error("8@%rax 8@%rax 8@%rax 8@%rax 8@%rax 8@%rax 8@%rax 8@%rax 8@%rax 8@%rax 8@%rax "
		     "8@%rax 8@%rax",
		     -1,
		     "net:inbound_message: more than 12 arguments in '8@%rax 8@%rax 8@%rax 8@%rax "
		     "8@%rax 8@%rax 8@%rax 8@%rax 8@%rax 8@%rax 8@%rax 8@%rax 8@%rax'");
}

Test(usdt_args, single_argument_errors)
{
	struct usdt_arg_spec a;
	char err[256];
	cr_expect_eq(usdt_arg_parse("net:x", 2, "", &a, err, sizeof(err)), -EINVAL);
	cr_expect_str_eq(err, "net:x: argument 2 '': empty argument spec (expected SIZE@LOCATION)");
	/* a short buffer truncates, never overflows */
	char tiny[8];
	cr_expect_eq(usdt_arg_parse("net:x", 1, "3@%rax", &a, tiny, sizeof(tiny)), -EINVAL);
	cr_expect_str_eq(tiny, "net:x: ");
}

Test(usdt_args, blanks_and_empty)
{
	struct usdt_spec spec;
	char err[256] = "";
	cr_assert_eq(usdt_spec_parse("p", "n", "  8@%rax\t-4@$5  ", -1, 7, &spec, err, sizeof(err)), 0,
		     "%s", err);
	cr_expect_eq(spec.arg_cnt, 2);
	cr_expect_eq(spec.args[1].arg_type, USDT_ARG_CONST);
	cr_assert_eq(usdt_spec_parse("p", "n", "", -1, 7, &spec, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(spec.arg_cnt, 0);
	cr_expect_eq(spec.usdt_cookie, 7);
}

Test(usdt_args, spec_value_size_check)
{
	char err[512] = "";
	cr_expect_eq(usdt_spec_check_value_size(sizeof(struct usdt_spec), err, sizeof(err)), 0);
	cr_expect_eq(usdt_spec_check_value_size(216, err, sizeof(err)), -EPROTO);
	cr_expect(strstr(err, "216 bytes") && strstr(err, "208") &&
			  strstr(err, "common/usdt_spec.h"),
		  "%s", err);
}

/* The map as usdt.bpf.h declares it, in a BPF object that is only opened
 * (no privileges needed). */
Test(usdt_args, spec_map_check_on_real_object)
{
	struct bpf_object *obj = bpf_object__open_file(USDT_TEST_BPF_OBJECT, NULL);
	cr_assert(obj, "open %s: %s", USDT_TEST_BPF_OBJECT, strerror(errno));
	char err[512] = "";
	const struct bpf_map *specs = bpf_object__find_map_by_name(obj, "__bpf_usdt_specs");
	cr_expect_eq(usdt_spec_map_check(specs, 256, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(usdt_spec_map_check(specs, 257, err, sizeof(err)), -EPROTO);
	cr_expect(strstr(err, "256 entries"), "%s", err);
	const struct bpf_map *counts = bpf_object__find_map_by_name(obj, "counts");
	cr_expect_eq(usdt_spec_map_check(counts, 1, err, sizeof(err)), -EPROTO);
	cr_expect_eq(usdt_spec_map_check(NULL, 1, err, sizeof(err)), -ENOENT);
	bpf_object__close(obj);
}
