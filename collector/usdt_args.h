/* Parsing of USDT argument specs (the "Arguments:" text of a .note.stapsdt
 * note) into struct usdt_spec (common/usdt_spec.h), the value type of the
 * __bpf_usdt_specs map that bpf_usdt_arg() in <bpf/usdt.bpf.h> reads.
 *
 * x86-64 only. An argument spec is "SIZE@LOCATION": SIZE is 1, 2, 4 or 8,
 * negative when the value is signed; LOCATION is one of
 *
 *   %reg          register                 "8@%r14", "4@%esi", "1@%cl"
 *   OFF(%reg)     memory at register+OFF   "-8@-384(%rbp)", "8@24(%rcx)"
 *   (%reg)        memory at register       "-8@(%rbx)"
 *   $IMM          constant                 "4@$5", "-4@$-9"
 *
 * OFF and IMM are decimal or 0x-hex, optionally negative. Registers are any
 * name of the 16 general purpose registers (rax/eax/ax/al, ..., r8/r8d/r8w/r8b)
 * and rip/eip. Refused, each with a message naming the probe, the argument
 * number (1-based) and the spec text: SIB forms such as "-4@-96(%rbp,%rax,8)"
 * (indexed addressing), symbolic displacements ("4@counter(%rip)"), the
 * high-byte registers %ah/%bh/%ch/%dh, a size other than 1/2/4/8, a size wider
 * than the register named, and anything else that does not match the grammar.
 *
 * The resulting arg spec is what libbpf's own parser produces:
 *   arg_type     USDT_ARG_CONST / USDT_ARG_REG / USDT_ARG_REG_DEREF
 *   val_off      the constant (CONST), 0 (REG), the offset (REG_DEREF),
 *                as the two's complement 64-bit value
 *   reg_off      offsetof(struct pt_regs, <64-bit register>) in the x86-64
 *                user-space layout of <asm/ptrace.h>; 0 for CONST
 *   arg_signed   size < 0
 *   arg_bitshift 64 - 8 * |size|
 */
#ifndef EBPF_EXTRACTOR_USDT_ARGS_H
#define EBPF_EXTRACTOR_USDT_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "usdt_spec.h"

struct bpf_map;

/* Parse one argument spec (no surrounding blanks), e.g. "-8@-384(%rbp)".
 * probe ("net:inbound_message") and arg_no (1-based) only label messages.
 * Returns 0, or -EINVAL with a message in err. */
int usdt_arg_parse(const char *probe, int arg_no, const char *text, struct usdt_arg_spec *out,
		   char *err, size_t errlen);

/* Parse a whole argument string ("-8@%r13 8@%r14 ...", arguments separated by
 * blanks) into *out, with out->usdt_cookie = cookie. expected_args >= 0 makes
 * any other number of arguments an error naming both counts (so "" is an
 * error for a probe that should have arguments); -1 accepts any count up to
 * USDT_MAX_ARG_CNT ("" is then a probe without arguments). Returns 0, or
 * -EINVAL / -E2BIG with a message in err. *out is zeroed first. */
int usdt_spec_parse(const char *provider, const char *name, const char *args, int expected_args,
		    uint64_t cookie, struct usdt_spec *out, char *err, size_t errlen);

/* 0 if value_size (the BPF map's value size) is sizeof(struct usdt_spec);
 * otherwise -EPROTO with a message saying that libbpf's usdt.bpf.h changed
 * its spec layout and common/usdt_spec.h must follow.
 * A size check cannot see every change: libbpf master (SIB support) turned
 * arg_type into an 8-bit field followed by idx_reg_off:12, scale_bitshift:4
 * and a reserved byte, keeping 16 bytes per argument. Our 4-byte arg_type
 * (little-endian, upper bytes 0) reads as that layout with no index
 * register, so specs written here stay correct for it. */
int usdt_spec_check_value_size(uint32_t value_size, char *err, size_t errlen);

/* Checks the __bpf_usdt_specs map of an opened (not necessarily loaded)
 * bpf_object: an array map, 4-byte key, value size as above, and at least
 * min_entries entries (the number of spec ids the caller will use).
 * Returns 0, -ENOENT (map NULL) or -EPROTO, with a message in err. */
int usdt_spec_map_check(const struct bpf_map *specs_map, uint32_t min_entries, char *err,
			size_t errlen);

#endif
