/* bpf(BPF_LINK_CREATE) for uprobe-multi links, and the feature probe. */
#include "uprobe_multi.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <linux/bpf.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Our struct must overlay union bpf_attr's link_create exactly where the two
 * agree (bookworm's 6.1 header knows everything up to the member union). */
_Static_assert(offsetof(struct uprobe_multi_link_attr, prog_fd) ==
		       offsetof(union bpf_attr, link_create.prog_fd),
	       "link_create.prog_fd");
_Static_assert(offsetof(struct uprobe_multi_link_attr, target_fd) ==
		       offsetof(union bpf_attr, link_create.target_fd),
	       "link_create.target_fd");
_Static_assert(offsetof(struct uprobe_multi_link_attr, attach_type) ==
		       offsetof(union bpf_attr, link_create.attach_type),
	       "link_create.attach_type");
_Static_assert(offsetof(struct uprobe_multi_link_attr, flags) ==
		       offsetof(union bpf_attr, link_create.flags),
	       "link_create.flags");
_Static_assert(offsetof(struct uprobe_multi_link_attr, uprobe_multi) ==
		       offsetof(union bpf_attr, link_create.kprobe_multi),
	       "link_create member union");
/* The uapi layout of uprobe_multi (6.6+): path 16, offsets 24,
 * ref_ctr_offsets 32, cookies 40, cnt 48, flags 52, pid 56. */
_Static_assert(offsetof(struct uprobe_multi_link_attr, uprobe_multi.path) == 16 &&
		       offsetof(struct uprobe_multi_link_attr, uprobe_multi.offsets) == 24 &&
		       offsetof(struct uprobe_multi_link_attr, uprobe_multi.ref_ctr_offsets) == 32 &&
		       offsetof(struct uprobe_multi_link_attr, uprobe_multi.cookies) == 40 &&
		       offsetof(struct uprobe_multi_link_attr, uprobe_multi.cnt) == 48 &&
		       offsetof(struct uprobe_multi_link_attr, uprobe_multi.flags) == 52 &&
		       offsetof(struct uprobe_multi_link_attr, uprobe_multi.pid) == 56 &&
		       sizeof(struct uprobe_multi_link_attr) == 64,
	       "uprobe_multi attr layout");
_Static_assert(EXTRACTOR_BPF_TRACE_UPROBE_MULTI > BPF_TRACE_KPROBE_MULTI,
	       "attach type numbering");

#ifndef ENOTSUPP
#define ENOTSUPP 524 /* kernel-internal, leaks out of bpf() */
#endif

static long sys_bpf(int cmd, void *attr, size_t size)
{
	return syscall(__NR_bpf, cmd, attr, (unsigned)size);
}

/* Names the eBPF capabilities this process lacks ("CAP_PERFMON", "CAP_BPF
 * and CAP_PERFMON"), or "" when it has both (CAP_SYS_ADMIN stands in for
 * either, as in the kernel's bpf_capable()/perfmon_capable()). */
static void missing_caps(char *buf, size_t len)
{
	buf[0] = '\0';
	cap_t caps = cap_get_proc();
	if (!caps) {
		snprintf(buf, len, "unknown (cap_get_proc: %s)", strerror(errno));
		return;
	}
	cap_flag_value_t bpf = CAP_CLEAR, perfmon = CAP_CLEAR, admin = CAP_CLEAR;
	cap_get_flag(caps, CAP_BPF, CAP_EFFECTIVE, &bpf);
	cap_get_flag(caps, CAP_PERFMON, CAP_EFFECTIVE, &perfmon);
	cap_get_flag(caps, CAP_SYS_ADMIN, CAP_EFFECTIVE, &admin);
	cap_free(caps);
	bool no_bpf = bpf != CAP_SET && admin != CAP_SET;
	bool no_perfmon = perfmon != CAP_SET && admin != CAP_SET;
	snprintf(buf, len, "%s%s%s", no_bpf ? "CAP_BPF" : "", no_bpf && no_perfmon ? " and " : "",
		 no_perfmon ? "CAP_PERFMON" : "");
}

/* " (missing: CAP_PERFMON)" or, with both present, a note that something
 * else (an LSM, a seccomp filter, a sysctl) refused. */
static void perm_detail(int e, char *buf, size_t len)
{
	char missing[96];
	missing_caps(missing, sizeof(missing));
	if (missing[0])
		snprintf(buf, len, " (missing: %s)", missing);
	else
		snprintf(buf, len,
			 " (both are effective, so something else refused: %s; an LSM or seccomp "
			 "policy?)",
			 strerror(e));
}

int uprobe_multi_link_create(int prog_fd, int binary_fd, const uint64_t *offsets,
			     const uint64_t *ref_ctr_offsets, const uint64_t *cookies,
			     uint32_t count, uint32_t pid, char *err, size_t errlen)
{
	char magic[64];
	snprintf(magic, sizeof(magic), "/proc/self/fd/%d", binary_fd);
	/* For messages: the file as the kernel will see it. */
	char target[PATH_MAX + 80];
	char real[PATH_MAX];
	ssize_t rl = binary_fd >= 0 ? readlink(magic, real, sizeof(real) - 1) : -1;
	if (rl > 0) {
		real[rl] = '\0';
		snprintf(target, sizeof(target), "%s (%s)", real, magic);
	} else {
		snprintf(target, sizeof(target), "%s", magic);
	}

	if (prog_fd < 0 || binary_fd < 0) {
		snprintf(err, errlen, "%s: uprobe-multi link: invalid %s fd %d", target,
			 prog_fd < 0 ? "program" : "binary", prog_fd < 0 ? prog_fd : binary_fd);
		return -EBADF;
	}
	if (count == 0 || !offsets) {
		snprintf(err, errlen, "%s: uprobe-multi link: no probe sites given", target);
		return -EINVAL;
	}
	if (count > EXTRACTOR_MAX_UPROBE_MULTI_CNT) {
		snprintf(err, errlen, "%s: uprobe-multi link: %u probe sites, the kernel takes at most %u",
			 target, count, EXTRACTOR_MAX_UPROBE_MULTI_CNT);
		return -E2BIG;
	}
	if (pid > INT_MAX) {
		snprintf(err, errlen,
			 "%s: uprobe-multi link: pid %u (%d) is refused by the kernel; pass 0 to "
			 "attach to every process",
			 target, pid, (int)pid);
		return -EINVAL;
	}
	struct stat st;
	if (fstat(binary_fd, &st) != 0) {
		int e = errno;
		snprintf(err, errlen, "%s: fstat: %s", target, strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: uprobe-multi link: not a regular file", target);
		return -EBADF;
	}
	for (uint32_t i = 0; i < count; i++) {
		uint64_t r = ref_ctr_offsets ? ref_ctr_offsets[i] : 0;
		if (offsets[i] >= (uint64_t)st.st_size || (r && r + 2 > (uint64_t)st.st_size)) {
			snprintf(err, errlen,
				 "%s: uprobe-multi link: site %u: %s 0x%llx is beyond the end of the "
				 "file (%lld bytes)",
				 target, i, offsets[i] >= (uint64_t)st.st_size ? "offset" : "semaphore offset",
				 (unsigned long long)(offsets[i] >= (uint64_t)st.st_size ? offsets[i] : r),
				 (long long)st.st_size);
			return -EINVAL;
		}
	}

	struct uprobe_multi_link_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.prog_fd = (uint32_t)prog_fd;
	attr.target_fd = 0;
	attr.attach_type = EXTRACTOR_BPF_TRACE_UPROBE_MULTI;
	attr.flags = 0;
	attr.uprobe_multi.path = (uint64_t)(uintptr_t)magic;
	attr.uprobe_multi.offsets = (uint64_t)(uintptr_t)offsets;
	attr.uprobe_multi.ref_ctr_offsets = (uint64_t)(uintptr_t)ref_ctr_offsets;
	attr.uprobe_multi.cookies = (uint64_t)(uintptr_t)cookies;
	attr.uprobe_multi.cnt = count;
	attr.uprobe_multi.flags = 0;
	attr.uprobe_multi.pid = pid;

	long fd;
	do
		fd = sys_bpf(BPF_LINK_CREATE, &attr, sizeof(attr));
	while (fd < 0 && errno == EINTR);
	if (fd >= 0)
		return (int)fd;

	int e = errno;
	char detail[256];
	const char *what;
	switch (e) {
	case EPERM:
	case EACCES:
		perm_detail(e, detail, sizeof(detail));
		snprintf(err, errlen, "%s: creating a uprobe-multi link needs CAP_BPF and CAP_PERFMON%s",
			 target, detail);
		return -e;
	case EINVAL:
		what = "the kernel refused the arguments (EINVAL): the program must be a kprobe "
		       "program loaded with expected attach type BPF_TRACE_UPROBE_MULTI (48); or a "
		       "probe site is already used by another uprobe with a different semaphore "
		       "offset; or this kernel has no uprobe-multi links (Linux 6.6+)";
		break;
	case ENOENT:
		what = "the kernel cannot resolve the /proc/self/fd path (is /proc mounted in this "
		       "mount namespace?)";
		break;
	case EBADF:
		what = "the kernel says the path is not a regular file (EBADF)";
		break;
	case ESRCH:
		what = "no such process (ESRCH)";
		break;
	case E2BIG:
		what = "too many probe sites for one link (E2BIG)";
		break;
	case EOPNOTSUPP:
	case ENOTSUPP:
		what = "this kernel cannot create uprobe-multi links (built without CONFIG_UPROBES "
		       "or not x86-64?)";
		break;
	default:
		what = strerror(e);
		break;
	}
	snprintf(err, errlen, "%s: creating a uprobe-multi link (%u site%s, pid %u): %s", target,
		 count, count == 1 ? "" : "s", pid, what);
	return -(e == ENOTSUPP ? EOPNOTSUPP : e);
}

/* Loads "r0 = 0; exit" as a kprobe program with expected attach type 48. */
static int load_probe_prog(void)
{
	struct bpf_insn insns[2];
	memset(insns, 0, sizeof(insns));
	insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K; /* r0 = 0 */
	insns[0].dst_reg = BPF_REG_0;
	insns[0].imm = 0;
	insns[1].code = BPF_JMP | BPF_EXIT;
	static const char license[] = "GPL";

	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_KPROBE;
	attr.expected_attach_type = EXTRACTOR_BPF_TRACE_UPROBE_MULTI;
	attr.insns = (uint64_t)(uintptr_t)insns;
	attr.insn_cnt = 2;
	attr.license = (uint64_t)(uintptr_t)license;
	long fd;
	do
		fd = sys_bpf(BPF_PROG_LOAD, &attr, sizeof(attr));
	while (fd < 0 && (errno == EINTR || errno == EAGAIN));
	return fd < 0 ? -errno : (int)fd;
}

/* The probe link: path "/" (a directory), one offset 0; pid as given. */
static int probe_link(int prog_fd, uint32_t pid)
{
	static const char root[] = "/";
	uint64_t offset = 0;
	struct uprobe_multi_link_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.prog_fd = (uint32_t)prog_fd;
	attr.attach_type = EXTRACTOR_BPF_TRACE_UPROBE_MULTI;
	attr.uprobe_multi.path = (uint64_t)(uintptr_t)root;
	attr.uprobe_multi.offsets = (uint64_t)(uintptr_t)&offset;
	attr.uprobe_multi.cnt = 1;
	attr.uprobe_multi.pid = pid;
	long fd = sys_bpf(BPF_LINK_CREATE, &attr, sizeof(attr));
	if (fd >= 0) {
		close((int)fd);
		return 0; /* cannot happen: "/" is not a regular file */
	}
	return -errno;
}

int uprobe_multi_supported(char *err, size_t errlen)
{
	char detail[256];
	int prog = load_probe_prog();
	if (prog < 0) {
		int e = -prog;
		if (e == EPERM || e == EACCES) {
			perm_detail(e, detail, sizeof(detail));
			snprintf(err, errlen,
				 "probing for uprobe-multi links: loading a uprobe BPF program needs "
				 "CAP_BPF and CAP_PERFMON%s",
				 detail);
			return -1;
		}
		if (e == EINVAL) {
			snprintf(err, errlen,
				 "this kernel cannot load a program for uprobe-multi links (EINVAL "
				 "for expected attach type 48; needs Linux 6.6 or later)");
			return 0;
		}
		snprintf(err, errlen, "probing for uprobe-multi links: loading a test program: %s",
			 strerror(e));
		return -1;
	}

	int e = -probe_link(prog, 0);
	if (e != EBADF) {
		close(prog);
		if (e == EPERM || e == EACCES) {
			perm_detail(e, detail, sizeof(detail));
			snprintf(err, errlen,
				 "probing for uprobe-multi links: creating a uprobe-multi link needs "
				 "CAP_BPF and CAP_PERFMON%s",
				 detail);
			return -1;
		}
		snprintf(err, errlen,
			 "this kernel has no uprobe-multi links (a test link on \"/\" gave %s, not "
			 "EBADF; needs Linux 6.6 or later)",
			 e ? strerror(e) : "success");
		return 0;
	}
	/* As libbpf: the first kernels filtered a uprobe-multi link's pid by
	 * thread, not process; the fixed ones check pid < 0 (EINVAL) before the
	 * path (EBADF). */
	e = -probe_link(prog, (uint32_t)-1);
	close(prog);
	if (e != EINVAL) {
		snprintf(err, errlen,
			 "this kernel's uprobe-multi links predate the pid filter fix (a test link "
			 "with pid -1 gave %s, not EINVAL); treating them as unsupported, as libbpf "
			 "does",
			 e ? strerror(e) : "success");
		return 0;
	}
	if (errlen)
		err[0] = '\0';
	return 1;
}
