/* Which bitcoind process the events come from: every process running the
 * binary, one pid, or the pid a pid file names (followed when bitcoind
 * restarts and rewrites it). The choice becomes the BPF tgid filter. */
#ifndef EBPF_COLLECTOR_TARGET_H
#define EBPF_COLLECTOR_TARGET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Filter value that matches no process (pid file missing). */
#define TARGET_NO_PROCESS UINT32_MAX

struct target {
	const char *binary_path;
	const char *pid_file; /* NULL unless --bitcoind-pid-file */
	uint32_t filter_tgid; /* 0: every process of the binary */
};

/* Checks --bitcoind-pid (the process exists and runs the binary) or reads
 * the pid file. 0, or -1 with a one-line message in err. */
int target_init(struct target *t, const char *binary_path, pid_t pid, const char *pid_file,
		char *err, size_t len);
/* Re-reads the pid file after it changed. */
void target_reload_pid_file(struct target *t);
uint32_t target_filter_tgid(const struct target *t);

/* 1 if pid maps the file at binary_path, 0 if not, -1 if it does not exist
 * (err says why). */
int target_pid_runs(pid_t pid, const char *binary_path, char *err, size_t len);

#endif
