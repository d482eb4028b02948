/* See control.h. */
#include "control.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "probes.h"
#include "tracepoints_table.h"

/* How often the attach wait looks at the semaphores. */
#define POLL_NS (1000 * 1000)

int control_write_pid_file(const char *path)
{
	char tmp[4096];
	FILE *f;
	int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());

	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		fprintf(stderr, "ebpf-tracee: pid file path too long: %s\n", path);
		return -1;
	}
	f = fopen(tmp, "w");
	if (!f) {
		fprintf(stderr, "ebpf-tracee: cannot create %s: %s\n", tmp, strerror(errno));
		return -1;
	}
	fprintf(f, "%ld\n", (long)getpid());
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		fprintf(stderr, "ebpf-tracee: cannot write pid file %s: %s\n", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

struct timespec control_deadline(double seconds)
{
	struct timespec t;
	long long ns = (long long)(seconds * 1e9);

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += ns / 1000000000;
	t.tv_nsec += ns % 1000000000;
	if (t.tv_nsec >= 1000000000) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000;
	}
	return t;
}

static bool passed(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > deadline->tv_sec ||
	       (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

void control_block_start_signal(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int control_wait_signal(const struct timespec *deadline)
{
	const struct timespec slice = { 0, 100 * 1000 * 1000 };
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	/* in slices, so the deadline is on the monotonic clock */
	while (!passed(deadline)) {
		if (sigtimedwait(&set, NULL, &slice) == SIGUSR1)
			return 0;
		if (errno != EAGAIN && errno != EINTR) {
			fprintf(stderr, "ebpf-tracee: waiting for SIGUSR1: %s\n", strerror(errno));
			return -1;
		}
	}
	fprintf(stderr, "ebpf-tracee: timed out waiting for SIGUSR1\n");
	return -1;
}

/* The probes in mask whose semaphore is still zero (or that this build lacks). */
static tp_mask unattached(tp_mask mask)
{
	tp_mask left = 0;

	for (int tp = 1; tp < TP_COUNT; tp++) {
		volatile unsigned short *sem = probe_semaphore((enum tracepoint_id)tp);

		if ((mask & TP_BIT(tp)) && (!sem || *sem == 0))
			left |= TP_BIT(tp);
	}
	return left;
}

static void print_probes(tp_mask mask)
{
	for (int tp = 1; tp < TP_COUNT; tp++)
		if (mask & TP_BIT(tp))
			fprintf(stderr, " %s", tracepoint_table[tp].event);
	fputc('\n', stderr);
}

int control_wait_attached(tp_mask mask, const struct timespec *deadline)
{
	const struct timespec poll = { 0, POLL_NS };
	tp_mask missing = mask & ~fire_available();

	if (missing) {
		fprintf(stderr, "ebpf-tracee: this build has no probe for:");
		print_probes(missing);
		return -1;
	}
	while (unattached(mask)) {
		if (passed(deadline)) {
			fprintf(stderr, "ebpf-tracee: timed out waiting for a tracer to attach to:");
			print_probes(unattached(mask));
			return -1;
		}
		nanosleep(&poll, NULL);
	}
	return 0;
}
