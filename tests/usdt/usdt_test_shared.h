/* Layout shared by usdt_test.bpf.c and test_usdt_kernel.c. */
#ifndef USDT_TEST_SHARED_H
#define USDT_TEST_SHARED_H

#define USDT_TEST_MAX_SPECS 16
#define USDT_TEST_MAX_ARGS 8

struct usdt_test_counts {
	__u64 hits;
	__u64 errors;  /* failed bpf_usdt_arg / arg_cnt */
	__u64 arg_cnt;
	__u64 tgid;    /* of the last hit */
	__s64 sum[USDT_TEST_MAX_ARGS];
	__s64 last[USDT_TEST_MAX_ARGS];
};

#endif
