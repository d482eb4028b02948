/* What the ebpf-extractor tests share: a scratch dir with a copy of the test
 * tracee (tests/e2e/harness.h), a real nats-server on a free loopback port
 * (tests/publisher_e2e/pe.h), and ebpf-extractor as a child whose stderr
 * the test reads as it comes (tests/sub/proc.h). */
#ifndef TESTS_LAUNCHER_LT_H
#define TESTS_LAUNCHER_LT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "harness.h"
#include "pe.h"
#include "proc.h"

#define LT_DEADLINE_MS 30000

extern const char *const lt_launcher_path;

/* Root (for eBPF and for the privilege drop) and the ebpf-collector user:
 * skips loudly, or fails with REQUIRE_BPF=1. */
void lt_require_root(void);

struct lt {
	struct e2e t;        /* t.dir, t.queue_dir, t.tracee */
	struct pe_env env;   /* the same dir, for the nats-server helpers */
	struct pe_nats nats;
	bool nats_up;
	struct proc launcher;
	bool launcher_up;
	char ready_file[300];
	char addr[64];       /* 127.0.0.1:PORT */
	char prefix[64];     /* subject prefix */
};

/* Scratch dir and tracee copy (tracee_binary: "ebpf-tracee", ...), and a
 * nats-server (JetStream when jetstream). */
void lt_setup(struct lt *l, const char *tracee_binary, bool jetstream);
/* Stops what still runs (launcher: SIGTERM, then SIGKILL), prints the
 * launcher's stderr, removes the scratch and queue dirs. */
void lt_teardown(struct lt *l);

/* Starts ebpf-extractor -b TRACEE -n ADDR --queue Q --subject-prefix P
 * --ready-file F plus extra (NULL-terminated), stderr and stdout captured. */
void lt_start(struct lt *l, const char *const extra[]);
/* Reads the launcher's output for up to ms (a wait that keeps its pipes
 * drained). */
void lt_pump(struct lt *l, int ms);
/* Waits for the launcher's ready file; false at the deadline or when the
 * launcher exited. */
bool lt_wait_ready(struct lt *l, int timeout_ms);
/* Waits for the launcher to exit; its status or -1. */
int lt_wait_exit(struct lt *l, int timeout_ms);

/* The launcher's ready file: "ready pid P tracepoints N collector C
 * publisher U". */
struct lt_ready {
	int pid, tracepoints, collector, publisher;
};
bool lt_read_ready(const struct lt *l, struct lt_ready *r);

/* The child of parent whose /proc comm is comm; 0 if none. */
pid_t lt_find_child(pid_t parent, const char *comm);
/* Waits until parent has a child comm other than not_pid; returns it or 0. */
pid_t lt_wait_new_child(struct lt *l, const char *comm, pid_t not_pid, int timeout_ms);

/* /proc/PID/status, the lines the privilege tests check. */
struct lt_status {
	unsigned uid[4], gid[4];
	char groups[256];
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	int no_new_privs;
};
void lt_proc_status(pid_t pid, struct lt_status *s);

#endif
