/* Our copy of libbpf's USDT argument spec (bpf/usdt.bpf.h, struct
 * __bpf_usdt_spec). That header marks the struct internal, so the collector
 * keeps this copy to fill the spec map in uprobe-multi mode, and checks its
 * size against the map's value size at start (usdt_spec_check). */
#ifndef EBPF_EXTRACTOR_USDT_SPEC_H
#define EBPF_EXTRACTOR_USDT_SPEC_H

#include <stdbool.h>
#include <stdint.h>

enum usdt_arg_type {
	USDT_ARG_CONST = 0,     /* "4@$5" */
	USDT_ARG_REG = 1,       /* "8@%rbx" */
	USDT_ARG_REG_DEREF = 2, /* "-8@-384(%rbp)" */
};

struct usdt_arg_spec {
	uint64_t val_off;  /* constant, or offset added to the register */
	int32_t arg_type;  /* enum usdt_arg_type (an enum is 4 bytes there) */
	int16_t reg_off;   /* offsetof(struct pt_regs, reg) */
	bool arg_signed;
	int8_t arg_bitshift; /* 64 - 8 * size */
};

#define USDT_MAX_ARG_CNT 12
#define USDT_MAX_SPEC_CNT 256 /* BPF_USDT_MAX_SPEC_CNT */

struct usdt_spec {
	struct usdt_arg_spec args[USDT_MAX_ARG_CNT];
	uint64_t usdt_cookie;
	int16_t arg_cnt;
};

_Static_assert(sizeof(struct usdt_arg_spec) == 16, "usdt_arg_spec layout");
_Static_assert(sizeof(struct usdt_spec) == 208, "usdt_spec layout");

#endif
