/* Small helpers shared by the tracepoint-cost benchmark's helper programs. */
#ifndef EBPF_BENCH_TP_COMMON_H
#define EBPF_BENCH_TP_COMMON_H

#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <linux/bpf.h>

/* Writes text to path atomically (a temporary file renamed over it), so a
 * script polling for the file never reads it half written. 0 or -1. */
static inline int tp_write_file(const char *path, const char *text)
{
	char tmp[4096];
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	if (fputs(text, f) < 0 || fclose(f) != 0)
		return -1;
	return rename(tmp, path);
}

/* BPF_ENABLE_STATS (run time and run count of every BPF program, while the
 * returned fd is open). The fd, or -errno. */
static inline int tp_enable_bpf_stats(void)
{
	int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);

	return fd < 0 ? -errno : fd;
}

#endif
