/* USDT argument spec parser (x86-64). See usdt_args.h for the grammar. */
#include "usdt_args.h"

#include <asm/ptrace.h>
#include <bpf/libbpf.h>
#include <ctype.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* One general purpose register: its names by width (8, 4, 2, 1 bytes; NULL
 * where a width has no name) and its slot in the user-space struct pt_regs. */
struct reg_names {
	const char *name[4];
	unsigned short pt_regs_off;
};

static const unsigned char reg_width[4] = { 8, 4, 2, 1 };

static const struct reg_names x86_64_regs[] = {
	{ { "rax", "eax", "ax", "al" }, offsetof(struct pt_regs, rax) },
	{ { "rbx", "ebx", "bx", "bl" }, offsetof(struct pt_regs, rbx) },
	{ { "rcx", "ecx", "cx", "cl" }, offsetof(struct pt_regs, rcx) },
	{ { "rdx", "edx", "dx", "dl" }, offsetof(struct pt_regs, rdx) },
	{ { "rsi", "esi", "si", "sil" }, offsetof(struct pt_regs, rsi) },
	{ { "rdi", "edi", "di", "dil" }, offsetof(struct pt_regs, rdi) },
	{ { "rbp", "ebp", "bp", "bpl" }, offsetof(struct pt_regs, rbp) },
	{ { "rsp", "esp", "sp", "spl" }, offsetof(struct pt_regs, rsp) },
	{ { "r8", "r8d", "r8w", "r8b" }, offsetof(struct pt_regs, r8) },
	{ { "r9", "r9d", "r9w", "r9b" }, offsetof(struct pt_regs, r9) },
	{ { "r10", "r10d", "r10w", "r10b" }, offsetof(struct pt_regs, r10) },
	{ { "r11", "r11d", "r11w", "r11b" }, offsetof(struct pt_regs, r11) },
	{ { "r12", "r12d", "r12w", "r12b" }, offsetof(struct pt_regs, r12) },
	{ { "r13", "r13d", "r13w", "r13b" }, offsetof(struct pt_regs, r13) },
	{ { "r14", "r14d", "r14w", "r14b" }, offsetof(struct pt_regs, r14) },
	{ { "r15", "r15d", "r15w", "r15b" }, offsetof(struct pt_regs, r15) },
	{ { "rip", "eip", NULL, NULL }, offsetof(struct pt_regs, rip) },
};

_Static_assert(offsetof(struct pt_regs, r15) == 0 && offsetof(struct pt_regs, rdi) == 112 &&
		       offsetof(struct pt_regs, rip) == 128 && offsetof(struct pt_regs, rsp) == 152,
	       "x86-64 user-space struct pt_regs layout");

/* Finds a register by name (without '%'): its pt_regs offset and width. */
static bool reg_lookup(const char *name, size_t len, unsigned short *off, unsigned *width)
{
	for (size_t r = 0; r < sizeof(x86_64_regs) / sizeof(x86_64_regs[0]); r++)
		for (int w = 0; w < 4; w++) {
			const char *n = x86_64_regs[r].name[w];
			if (n && strlen(n) == len && memcmp(n, name, len) == 0) {
				*off = x86_64_regs[r].pt_regs_off;
				*width = reg_width[w];
				return true;
			}
		}
	return false;
}

/* Parses an optionally negative decimal or 0x-hex integer at *p that fits in
 * int64_t; advances *p past it. False if there is no number or it overflows. */
static bool parse_int64(const char **p, int64_t *out)
{
	const char *s = *p;
	bool neg = false;
	if (*s == '-') {
		neg = true;
		s++;
	}
	unsigned base = 10;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && isxdigit((unsigned char)s[2])) {
		base = 16;
		s += 2;
	}
	if (!(base == 16 ? isxdigit((unsigned char)*s) : isdigit((unsigned char)*s)))
		return false;
	uint64_t v = 0;
	for (; base == 16 ? isxdigit((unsigned char)*s) : isdigit((unsigned char)*s); s++) {
		unsigned d = isdigit((unsigned char)*s) ? (unsigned)(*s - '0')
							: (unsigned)(tolower((unsigned char)*s) - 'a' + 10);
		if (v > (UINT64_MAX - d) / base)
			return false;
		v = v * base + d;
	}
	if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
		return false;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	*p = s;
	return true;
}

#define ARG_ERR(...)                                                                           \
	do {                                                                                   \
		if (errlen) {                                                                  \
			int n_ = snprintf(err, errlen, "%s: argument %d '%s': ", probe, arg_no, text); \
			if (n_ >= 0 && (size_t)n_ < errlen)                                    \
				snprintf(err + n_, errlen - (size_t)n_, __VA_ARGS__);          \
		}                                                                              \
		return -EINVAL;                                                                \
	} while (0)

int usdt_arg_parse(const char *probe, int arg_no, const char *text, struct usdt_arg_spec *out,
		   char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!text || !*text) {
		text = "";
		ARG_ERR("empty argument spec (expected SIZE@LOCATION)");
	}

	/* SIZE */
	const char *p = text;
	bool neg = false;
	if (*p == '-') {
		neg = true;
		p++;
	}
	if (!isdigit((unsigned char)*p))
		ARG_ERR("no size before '@' (expected SIZE@LOCATION, e.g. -8@%%rax)");
	unsigned size = 0;
	for (; isdigit((unsigned char)*p); p++)
		if (size < 1000)
			size = size * 10 + (unsigned)(*p - '0');
	if (*p != '@')
		ARG_ERR("missing '@' after the size (expected SIZE@LOCATION)");
	p++;
	if (size != 1 && size != 2 && size != 4 && size != 8)
		ARG_ERR("size %s%u is not 1, 2, 4 or 8 bytes (negative for signed)", neg ? "-" : "",
			size);
	out->arg_signed = neg;
	out->arg_bitshift = (int8_t)(64 - 8 * size);
	if (!*p)
		ARG_ERR("no location after '@'");

	if (*p == '$') { /* constant */
		p++;
		int64_t v;
		if (!parse_int64(&p, &v))
			ARG_ERR("constant after '$' is not a (64-bit) integer");
		if (*p)
			ARG_ERR("unexpected '%s' after the constant", p);
		out->arg_type = USDT_ARG_CONST;
		out->val_off = (uint64_t)v;
		out->reg_off = 0;
		return 0;
	}

	if (*p == '%') { /* register */
		p++;
		size_t len = strlen(p);
		if (len == 2 && (p[0] == 'a' || p[0] == 'b' || p[0] == 'c' || p[0] == 'd') && p[1] == 'h')
			ARG_ERR("high-byte register %%%s is not supported", p);
		unsigned short off;
		unsigned width;
		if (!reg_lookup(p, len, &off, &width))
			ARG_ERR("unknown register '%%%s'", p);
		if (size > width)
			ARG_ERR("size %u is wider than register %%%s (%u bytes)", size, p, width);
		out->arg_type = USDT_ARG_REG;
		out->reg_off = (int16_t)off;
		out->val_off = 0;
		return 0;
	}

	/* memory: [OFF](%reg) */
	int64_t disp = 0;
	if (*p == '-' || isdigit((unsigned char)*p)) {
		if (!parse_int64(&p, &disp))
			ARG_ERR("offset before '(' is not a (64-bit) integer");
	} else if (*p != '(') {
		if (isalpha((unsigned char)*p) || *p == '_' || *p == '.')
			ARG_ERR("symbolic displacement (a symbol-relative address), which the "
				"extractor cannot read");
		ARG_ERR("unrecognised location (expected %%reg, $const, OFF(%%reg) or (%%reg))");
	}
	if (*p != '(') {
		if (!*p)
			ARG_ERR("absolute memory address without a register, which the extractor "
				"cannot read");
		ARG_ERR("expected '(' after the offset, found '%s'", p);
	}
	p++;
	const char *close = strchr(p, ')');
	if (!close)
		ARG_ERR("missing ')'");
	if (memchr(p, ',', (size_t)(close - p))) {
		if (errlen)
			snprintf(err, errlen,
				 "%s: argument %d has the form '%s' (indexed addressing), which the "
				 "extractor cannot read",
				 probe, arg_no, text);
		return -EINVAL;
	}
	if (close[1])
		ARG_ERR("unexpected '%s' after ')'", close + 1);
	if (*p != '%')
		ARG_ERR("expected a register after '(', e.g. (%%rbp)");
	p++;
	size_t len = (size_t)(close - p);
	unsigned short off;
	unsigned width;
	if (!reg_lookup(p, len, &off, &width))
		ARG_ERR("unknown register '%%%.*s'", (int)len, p);
	if (width != 8)
		ARG_ERR("address register %%%.*s is not a 64-bit register", (int)len, p);
	out->arg_type = USDT_ARG_REG_DEREF;
	out->reg_off = (int16_t)off;
	out->val_off = (uint64_t)disp;
	return 0;
}

#undef ARG_ERR

int usdt_spec_parse(const char *provider, const char *name, const char *args, int expected_args,
		    uint64_t cookie, struct usdt_spec *out, char *err, size_t errlen)
{
	char probe[256];
	snprintf(probe, sizeof(probe), "%s:%s", provider ? provider : "?", name ? name : "?");
	memset(out, 0, sizeof(*out));
	out->usdt_cookie = cookie;
	if (!args)
		args = "";

	int count = 0;
	const char *p = args;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		const char *end = p;
		while (*end && *end != ' ' && *end != '\t')
			end++;
		char token[128];
		size_t len = (size_t)(end - p);
		if (len >= sizeof(token)) {
			snprintf(err, errlen, "%s: argument %d of '%s' is longer than %zu characters",
				 probe, count + 1, args, sizeof(token) - 1);
			return -EINVAL;
		}
		if (count >= USDT_MAX_ARG_CNT) {
			snprintf(err, errlen, "%s: more than %d arguments in '%s'", probe,
				 USDT_MAX_ARG_CNT, args);
			return -E2BIG;
		}
		memcpy(token, p, len);
		token[len] = '\0';
		int rc = usdt_arg_parse(probe, count + 1, token, &out->args[count], err, errlen);
		if (rc)
			return rc;
		count++;
		p = end;
	}
	if (expected_args >= 0 && count != expected_args) {
		snprintf(err, errlen, "%s: the USDT note has %d argument%s ('%s'), the extractor expects %d",
			 probe, count, count == 1 ? "" : "s", args, expected_args);
		return -EINVAL;
	}
	out->arg_cnt = (int16_t)count;
	return 0;
}

int usdt_spec_check_value_size(uint32_t value_size, char *err, size_t errlen)
{
	if (value_size == sizeof(struct usdt_spec))
		return 0;
	snprintf(err, errlen,
		 "__bpf_usdt_specs: the BPF map's value is %u bytes but struct usdt_spec "
		 "(common/usdt_spec.h) is %zu: libbpf's usdt.bpf.h changed its spec layout; update "
		 "common/usdt_spec.h to match struct __bpf_usdt_spec",
		 value_size, sizeof(struct usdt_spec));
	return -EPROTO;
}

int usdt_spec_map_check(const struct bpf_map *specs_map, uint32_t min_entries, char *err,
			size_t errlen)
{
	if (!specs_map) {
		snprintf(err, errlen,
			 "__bpf_usdt_specs: no such map in the BPF object (does it include "
			 "<bpf/usdt.bpf.h> and use bpf_usdt_arg()?)");
		return -ENOENT;
	}
	if (bpf_map__type(specs_map) != BPF_MAP_TYPE_ARRAY) {
		snprintf(err, errlen, "__bpf_usdt_specs: map type %d, expected an array (%d)",
			 (int)bpf_map__type(specs_map), (int)BPF_MAP_TYPE_ARRAY);
		return -EPROTO;
	}
	if (bpf_map__key_size(specs_map) != sizeof(int)) {
		snprintf(err, errlen, "__bpf_usdt_specs: key size %u, expected %zu",
			 bpf_map__key_size(specs_map), sizeof(int));
		return -EPROTO;
	}
	int rc = usdt_spec_check_value_size(bpf_map__value_size(specs_map), err, errlen);
	if (rc)
		return rc;
	if (bpf_map__max_entries(specs_map) < min_entries) {
		snprintf(err, errlen,
			 "__bpf_usdt_specs: %u entries, but %u spec ids are needed (raise "
			 "BPF_USDT_MAX_SPEC_CNT)",
			 bpf_map__max_entries(specs_map), min_entries);
		return -EPROTO;
	}
	return 0;
}
