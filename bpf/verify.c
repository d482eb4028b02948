/* bpf_verify: loads extractor.bpf.o through its skeleton, the way the
 * collector does, and reports what the kernel verifier thinks of it.
 *
 *   bpf_verify           programs loaded for libbpf's USDT attach (perf uprobes)
 *   bpf_verify --multi   programs loaded for uprobe-multi links
 *                        (expected attach type BPF_TRACE_UPROBE_MULTI)
 *
 * Prints one line per program (name, instructions in the object, after the
 * verifier's rewrites, and instructions the verifier processed) and exits 0;
 * on a rejected program prints libbpf's verifier log and exits 1. Without
 * the privilege to load BPF (root, or CAP_BPF and CAP_PERFMON) it exits 77
 * (ctest: skipped), unless REQUIRE_BPF=1 is set, then 1.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/capability.h>

#include "bpf_shared.h" /* types of the skeleton's globals */
#include "extractor.skel.h"

/* bookworm's uapi linux/bpf.h (6.1) ends before it */
#define BPF_TRACE_UPROBE_MULTI_ATTACH 48

#define EXIT_SKIP 77

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static int have_cap(cap_t caps, cap_value_t cap)
{
	cap_flag_value_t v = CAP_CLEAR;

	return caps && cap_get_flag(caps, cap, CAP_EFFECTIVE, &v) == 0 && v == CAP_SET;
}

static int privileged(void)
{
	cap_t caps;
	int ok;

	if (geteuid() == 0)
		return 1;
	caps = cap_get_proc();
	ok = have_cap(caps, CAP_BPF) && have_cap(caps, CAP_PERFMON);
	cap_free(caps);
	return ok;
}

static int required(void)
{
	const char *r = getenv("REQUIRE_BPF");

	return r && *r && strcmp(r, "0") != 0;
}

int main(int argc, char **argv)
{
	struct extractor_bpf *skel;
	struct bpf_program *prog;
	int multi = 0, err;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--multi") == 0) {
			multi = 1;
		} else {
			fprintf(stderr, "usage: %s [--multi]\n", argv[0]);
			return 2;
		}
	}

	if (!privileged()) {
		if (required()) {
			fprintf(stderr, "bpf_verify: FAILED: REQUIRE_BPF is set but this process "
					"can not load BPF (needs root or CAP_BPF+CAP_PERFMON)\n");
			return 1;
		}
		fprintf(stderr, "\n*** bpf_verify: SKIPPED: not privileged (needs root or "
				"CAP_BPF+CAP_PERFMON); the BPF programs were NOT verified. "
				"Set REQUIRE_BPF=1 to make this a failure. ***\n\n");
		return EXIT_SKIP;
	}

	libbpf_set_print(print_libbpf);

	skel = extractor_bpf__open();
	if (!skel) {
		fprintf(stderr, "bpf_verify: opening the skeleton failed: %s\n", strerror(errno));
		return 1;
	}
	if (multi) {
		bpf_object__for_each_program(prog, skel->obj) {
			err = bpf_program__set_expected_attach_type(
				prog, (enum bpf_attach_type)BPF_TRACE_UPROBE_MULTI_ATTACH);
			if (err) {
				fprintf(stderr, "bpf_verify: %s: set_expected_attach_type: %s\n",
					bpf_program__name(prog), strerror(-err));
				extractor_bpf__destroy(skel);
				return 1;
			}
		}
	}

	err = extractor_bpf__load(skel);
	if (err) {
		/* libbpf has printed the verifier log of the rejected program */
		fprintf(stderr, "bpf_verify: FAILED: loading for %s mode: %s\n",
			multi ? "multi" : "perf", strerror(-err));
		extractor_bpf__destroy(skel);
		return 1;
	}

	printf("%-48s %8s %8s %8s\n", "program", "object", "xlated", "verified");
	bpf_object__for_each_program(prog, skel->obj) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);
		int fd = bpf_program__fd(prog);

		memset(&info, 0, sizeof(info));
		if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len)) {
			fprintf(stderr, "bpf_verify: %s: no program info: %s\n",
				bpf_program__name(prog), strerror(errno));
			extractor_bpf__destroy(skel);
			return 1;
		}
		printf("%-48s %8zu %8u %8u\n", bpf_program__name(prog), bpf_program__insn_cnt(prog),
		       info.xlated_prog_len / 8, info.verified_insns);
	}
	printf("bpf_verify: all programs loaded (%s mode)\n", multi ? "multi" : "perf");
	extractor_bpf__destroy(skel);
	return 0;
}
