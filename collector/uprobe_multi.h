/* uprobe-multi links (BPF_TRACE_UPROBE_MULTI, Linux 6.6+) without help from
 * the system headers or libbpf.
 *
 * Debian bookworm's uapi <linux/bpf.h> (6.1) ends at BPF_TRACE_KPROBE_MULTI
 * and its link_create has no uprobe_multi member, and libbpf 1.1.2's
 * bpf_link_create() cannot pass those fields. This header carries the few
 * definitions we need, copied from the uapi of the kernels that have them,
 * and uprobe_multi.c calls bpf(BPF_LINK_CREATE) directly.
 *
 * Why we want them: a uprobe-multi link attaches (semaphores included) with
 * CAP_BPF + CAP_PERFMON, where a classic perf_event uprobe needs
 * CAP_SYS_ADMIN on current kernels (DESIGN non-negotiable 3).
 *
 * How a program is used with them: load it as BPF_PROG_TYPE_KPROBE with
 * expected_attach_type = EXTRACTOR_BPF_TRACE_UPROBE_MULTI (with libbpf:
 * bpf_program__set_expected_attach_type() before bpf_object__load(); a
 * program loaded that way can no longer take a perf_event link), then create
 * one link for all its probe sites. The cookie of each site is what
 * bpf_get_attach_cookie() returns there (usdt.bpf.h takes it as the spec id).
 */
#ifndef EBPF_EXTRACTOR_UPROBE_MULTI_H
#define EBPF_EXTRACTOR_UPROBE_MULTI_H

#include <stddef.h>
#include <stdint.h>

/* enum bpf_attach_type: BPF_TRACE_UPROBE_MULTI (uapi 6.6+). Own names, so a
 * newer <linux/bpf.h> with the real enumerators cannot clash. */
#define EXTRACTOR_BPF_TRACE_UPROBE_MULTI 48
/* enum bpf_link_type: BPF_LINK_TYPE_UPROBE_MULTI */
#define EXTRACTOR_BPF_LINK_TYPE_UPROBE_MULTI 12
/* link_create.uprobe_multi.flags: BPF_F_UPROBE_MULTI_RETURN (uretprobes) */
#define EXTRACTOR_BPF_F_UPROBE_MULTI_RETURN (1U << 0)
/* kernel/trace/bpf_trace.c: MAX_UPROBE_MULTI_CNT; more gives E2BIG */
#define EXTRACTOR_MAX_UPROBE_MULTI_CNT (1U << 20)

/* The BPF_LINK_CREATE member of union bpf_attr with its uprobe_multi
 * member, as the uapi of Linux 6.6 and later defines it. The kernel accepts an attr shorter than its own union and reads what is
 * missing as zero, so this struct is passed with its own size. */
struct uprobe_multi_link_attr {
	uint32_t prog_fd;     /* union { prog_fd; map_fd; } */
	uint32_t target_fd;   /* union { target_fd; target_ifindex; }: unused, 0 */
	uint32_t attach_type; /* EXTRACTOR_BPF_TRACE_UPROBE_MULTI */
	uint32_t flags;       /* link_create.flags: 0 (6.18 refuses others, EINVAL) */
	struct {
		uint64_t path;            /* const char *: the binary */
		uint64_t offsets;         /* const uint64_t[cnt]: file offsets of the probes */
		uint64_t ref_ctr_offsets; /* const uint64_t[cnt] or 0: semaphore file offsets */
		uint64_t cookies;         /* const uint64_t[cnt] or 0: bpf_get_attach_cookie() */
		uint32_t cnt;
		uint32_t flags;           /* EXTRACTOR_BPF_F_UPROBE_MULTI_RETURN or 0 */
		uint32_t pid;             /* 0: every process; the kernel refuses < 0 */
	} uprobe_multi;
} __attribute__((aligned(8)));

/* Creates one uprobe-multi link for prog_fd on the file open on binary_fd:
 * count probe sites at offsets[i] (file offsets), each with semaphore file
 * offset ref_ctr_offsets[i] (0: none; the kernel increments the 2-byte
 * semaphore in every process that maps the file, also ones started later,
 * and decrements it when the link goes) and cookie cookies[i].
 * ref_ctr_offsets and cookies may be NULL (all 0).
 *
 * The path given to the kernel is "/proc/self/fd/<binary_fd>": the kernel's
 * kern_path() follows that magic link to the open file itself (its mount and
 * dentry), so the uprobes go on exactly the inode the notes were read from,
 * even if another file has since been renamed over the binary's path, or the
 * file was unlinked. Needs /proc mounted in the caller's mount namespace.
 *
 * pid: 0 attaches to every process of the file, present and future; any
 * other value restricts the link to that process (the kernel refuses a
 * negative pid, so UINT32_MAX ("-1") is refused here before the call).
 *
 * Privileges: loading the program needs CAP_BPF and CAP_PERFMON; creating
 * the link (and writing the spec map) needs no capability at all once the
 * program and map fds exist (checked on 6.18 by tests/usdt: a process that
 * dropped every capability after loading attaches and counts hits).
 *
 * Returns the link fd (close it to detach), or a negative errno with a
 * message in err naming the file (as the kernel sees it, "<real path>
 * (/proc/self/fd/N)"), e.g. for -EPERM/-EACCES: "creating a uprobe-multi
 * link needs CAP_BPF and CAP_PERFMON (missing: CAP_PERFMON)", or, when both
 * are effective, a note that something else (an LSM, seccomp) refused. */
int uprobe_multi_link_create(int prog_fd, int binary_fd, const uint64_t *offsets,
			     const uint64_t *ref_ctr_offsets, const uint64_t *cookies,
			     uint32_t count, uint32_t pid, char *err, size_t errlen);

/* Whether the running kernel can create uprobe-multi links, detected as
 * libbpf's probe_uprobe_multi_link() does: load a trivial
 * BPF_PROG_TYPE_KPROBE program with expected attach type 48 and create a link
 * on "/" (not a regular file), which a kernel with uprobe-multi support must
 * refuse with EBADF; then the same with pid -1, which kernels with the fixed
 * (process, not thread) pid filter refuse with EINVAL before looking at the
 * path. target_fd is 0 in both (libbpf passes -1, which 6.18 still
 * ignores; a 2025 patch proposed refusing non-zero values).
 * Returns 1 (supported), 0 (not supported; err says why, for --attach-mode
 * auto to log before falling back to perf) or -1 (the probe itself failed,
 * e.g. missing CAP_BPF/CAP_PERFMON; err says which). */
int uprobe_multi_supported(char *err, size_t errlen);

#endif
