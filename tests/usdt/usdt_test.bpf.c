/* Counts hits per attach cookie (= USDT spec id) and records the arguments
 * of each hit as bpf_usdt_arg() reads them from the spec that user space
 * parsed (collector/usdt_args.c) into __bpf_usdt_specs. Loaded by
 * test_usdt_kernel.c with expected attach type BPF_TRACE_UPROBE_MULTI. */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "usdt_test_shared.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, USDT_TEST_MAX_SPECS);
	__type(key, __u32);
	__type(value, struct usdt_test_counts);
} counts SEC(".maps");

SEC("usdt")
int usdt_count(struct pt_regs *ctx)
{
	__u32 id = (__u32)bpf_get_attach_cookie(ctx);
	struct usdt_test_counts *c = bpf_map_lookup_elem(&counts, &id);
	if (!c)
		return 0;
	__sync_fetch_and_add(&c->hits, 1);
	c->tgid = bpf_get_current_pid_tgid() >> 32;
	int n = bpf_usdt_arg_cnt(ctx);
	if (n < 0) {
		__sync_fetch_and_add(&c->errors, 1);
		return 0;
	}
	c->arg_cnt = n;
	for (int i = 0; i < USDT_TEST_MAX_ARGS; i++) {
		long v;
		if (i >= n)
			break;
		if (bpf_usdt_arg(ctx, i, &v)) {
			__sync_fetch_and_add(&c->errors, 1);
			continue;
		}
		__sync_fetch_and_add(&c->sum[i], v);
		c->last[i] = v;
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
