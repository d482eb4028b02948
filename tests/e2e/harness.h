/* What the end-to-end tests share: starting and stopping the real
 * processes (collector as an unprivileged uid with CAP_BPF and CAP_PERFMON,
 * the test tracee), waiting on conditions with deadlines, and reading the
 * shared-memory queue. */
#ifndef EBPF_E2E_HARNESS_H
#define EBPF_E2E_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "queue.h"
#include "record.h"

struct e2e {
	char dir[256];       /* per-test scratch dir, mode 01777 */
	char queue_dir[256]; /* per-test queue in /dev/shm */
	char tracee[300];    /* a copy of the tracee in dir (its own inode) */
	char ready_file[300];
	char collector_log[300];
	pid_t collector;
	struct queue_consumer *consumer;
};

/* Skips the test loudly when eBPF is not available to us (not root), or
 * fails it when REQUIRE_BPF=1. */
void e2e_require_bpf(void);

/* Scratch dir, queue dir name, tracee copy (tracee_binary names which build
 * of the tracee: "ebpf-tracee", "ebpf-tracee-sib", ...). */
void e2e_setup(struct e2e *t, const char *tracee_binary);
/* Stops what is still running, removes the scratch and queue dirs. */
void e2e_teardown(struct e2e *t);

/* Starts ebpf-collector on t->tracee with t's queue and ready file plus
 * extra arguments (NULL-terminated). unprivileged: as nobody with exactly
 * CAP_BPF and CAP_PERFMON (setpriv). Output goes to t->collector_log. */
pid_t e2e_start_collector(struct e2e *t, bool unprivileged, const char *const extra[]);
/* Waits until the ready file says every requested probe is attached
 * ("attached N generation G"); returns N, or -1 at the deadline/exit. */
int e2e_wait_ready(struct e2e *t, unsigned generation, int timeout_ms);

/* Runs argv to completion; its stdout into out (NUL-terminated) if out. */
int e2e_run(const char *const argv[], char *out, size_t outlen, int timeout_ms);
pid_t e2e_spawn(const char *const argv[], const char *log_path, bool unprivileged);
/* Exit status (0-255), 128+signal, or -1 at the deadline. */
int e2e_wait_exit(pid_t pid, int timeout_ms);
void e2e_stop(pid_t pid, int timeout_ms);

bool e2e_file_contains(const char *path, const char *needle);
/* The CapEff line of /proc/PID/status holds hex ("000000c000000000"). */
bool e2e_cap_eff_is(pid_t pid, const char *hex);
/* Polls cond(arg) every few ms until it holds or timeout_ms passes. */
bool e2e_wait_until(bool (*cond)(void *), void *arg, int timeout_ms);
char *e2e_read_file(const char *path); /* malloc'd, NUL-terminated, or NULL */

/* Queue reading: the next record (payload copied into a malloc'd buffer
 * the caller frees), waiting on the doorbell until timeout_ms. */
struct e2e_record {
	uint64_t seq;
	uint8_t *data;
	uint32_t len;
};
bool e2e_next_record(struct e2e *t, struct e2e_record *rec, int timeout_ms);

uint64_t e2e_unix_ns(void);

/* ---- added for the fault tests ---- */

/* Copies a file (O_TRUNC if it exists, mode 0755 if new); asserts on failure. */
void e2e_copy_file(const char *from, const char *to);
/* Waits until the file at path contains needle, or timeout_ms passes. */
bool e2e_wait_file_contains(const char *path, const char *needle, int timeout_ms);

/* ---- error-path helpers (test_collector_errors.c) ---- */

/* Who a collector started by e2e_run_collector runs as. */
enum e2e_privs {
	E2E_AS_ROOT,            /* this process's own uid and capabilities */
	E2E_NOBODY_NO_CAPS,     /* nobody/nogroup, no capabilities at all */
	E2E_NOBODY_BPF,         /* nobody/nogroup, CAP_BPF only */
	E2E_NOBODY_BPF_PERFMON, /* nobody/nogroup, CAP_BPF and CAP_PERFMON (as users run it) */
};

/* Runs ebpf-collector with args (NULL-terminated, after the program name)
 * as privs until it exits; its stdout and stderr, separately, into *out
 * and *err (malloc'd, NUL-terminated; either may be NULL). Returns the exit
 * status as e2e_wait_exit (-1: killed at the deadline). */
int e2e_run_collector(enum e2e_privs privs, const char *const args[], char **out, char **err,
		      int timeout_ms);

/* One USDT probe as binutils' readelf prints it: an oracle independent of
 * the collector's own note reader. Offsets are file offsets, from the
 * addresses through the PT_LOAD segments. */
struct e2e_probe {
	char provider[64];
	char name[64];
	char args[512];
	uint64_t location, semaphore;            /* addresses in the note */
	uint64_t file_offset, semaphore_offset;  /* 0: no semaphore */
};
/* Fills up to max probes of path's .note.stapsdt; returns how many. */
int e2e_readelf_probes(const char *path, struct e2e_probe *out, int max);
const struct e2e_probe *e2e_find_probe(const struct e2e_probe *probes, int count,
				       const char *provider, const char *name);

/* The 2-byte USDT semaphore of process pid at file offset off of the file
 * at binary_path (found through /proc/PID/maps, read from /proc/PID/mem);
 * -1 when that offset is not mapped. */
int e2e_read_semaphore(pid_t pid, const char *binary_path, uint64_t off);

/* Paths of the built programs (set by CMake). */
extern const char *const e2e_collector_path;
extern const char *const e2e_tracee_dir;

#endif
