/* Running ebpf-sub (and nats-server) from the tests: a child with its
 * stdout and stderr on pipes that the test reads as they come, and waits
 * with deadlines (never a fixed sleep). */
#ifndef TESTS_SUB_PROC_H
#define TESTS_SUB_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct strbuf {
	char *data; /* NUL-terminated */
	size_t len, cap;
};

struct proc {
	pid_t pid;
	int out_fd, err_fd; /* -1 once at EOF */
	struct strbuf out, err;
	int status;         /* exit status (0-255) or 128+signal, once reaped */
	bool exited;
};

/* Starts argv[0] (a path) with stdin from /dev/null. capture: stdout and
 * stderr on pipes; otherwise both go to /dev/null. Asserts on failure. */
void proc_start(struct proc *p, const char *const argv[], bool capture);

/* Reads what is there for up to timeout_ms; false at the deadline. */
bool proc_wait_output(struct proc *p, bool from_stderr, const char *needle, int timeout_ms);
/* Counts '\n' in stdout; waits until it holds n lines. */
bool proc_wait_lines(struct proc *p, size_t n, int timeout_ms);
/* Reads both pipes to EOF and reaps the child; status, or -1 at the
 * deadline (the child is then killed). */
int proc_wait_exit(struct proc *p, int timeout_ms);
/* SIGKILL (if still running), reap, free the buffers. */
void proc_kill(struct proc *p);
void proc_free(struct proc *p);
/* Closes our end of the child's stdout (as `| head` does when it exits). */
void proc_close_stdout(struct proc *p);

/* Runs argv to completion with captured output; returns the status. */
int proc_run(const char *const argv[], char **out, char **err, int timeout_ms);

long long now_ms(void);

#endif
