/* tp-bench-fire: the traced thread of the tracepoint-cost benchmark.
 *
 * This binary holds the very probe sites of the test tracee (it is built
 * from tests/tracee/probes.c, node_net.c, node_chain.c and node_stats.c with
 * the tracee's compile options): Bitcoin Core's TRACEPOINT macro, a 2-byte
 * semaphore in ".probes", the probe inside if (semaphore), the same argument
 * specs. So the collector attaches to it exactly as to the tracee, and
 * nothing in it differs between the benchmark's conditions except what is
 * attached to the probes.
 *
 * It fires one tracepoint COUNT times in a tight loop on the calling thread
 * (after WARMUP untimed events) and prints one line of key=value pairs:
 *
 *   event=mempool_added size=0 count=100000 warmup=10000 interval_us=0
 *   fired=110000 semaphore=1 wall_ns=1180.2 cpu_ns=1177.4 outliers=0
 *   cycles=2673 instructions=1255
 *
 * wall_ns: CLOCK_MONOTONIC time of the timed loop / COUNT.
 * cpu_ns:  CLOCK_THREAD_CPUTIME_ID time of the timed loop / COUNT: what the
 *          thread itself spent, user and kernel (the uprobe trap, the BPF
 *          program, the ring-buffer wake-up it sends), not the time it sat
 *          preempted by other processes on a shared machine.
 * fired:   events whose probe site was reached (semaphore nonzero), warm-up
 *          included: what a tracer should have received.
 * cycles, instructions: per event, from the thread's hardware counters
 *          (user + kernel) over the timed loop; NA when there are none, and
 *          always NA in paced mode. See struct counters.
 *
 * With --interval-us U the events are paced U microseconds apart, the
 * thread spinning on the clock in between (busy, as a bitcoind thread is
 * between two tracepoints, and with no sleep or wake-up of its own in the
 * timing), and each event is timed on its own with CLOCK_MONOTONIC: wall_ns
 * is the mean per event (two vDSO clock reads included, alike in every
 * condition), leaving out events that took over 10 times the median (the
 * thread was preempted in them; "outliers=N" counts them); cpu_ns is then
 * the thread's CPU time per interval and not meaningful. Pacing lets the
 * collector keep up with large payloads (at the tight loop's rate a 1 MB
 * message every ~0.12 ms is 8 GB/s, more than any reader can take, and a
 * full ring makes the BPF program cheaper, not dearer), and it leaves the
 * collector asleep between events, so every event pays the ring buffer's
 * wake-up as in a real node.
 *
 * --expect-attached yes|no fails (exit 3) when the probe's semaphore says
 * otherwise, so a benchmark condition cannot silently measure the wrong
 * thing.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/perf_event.h>

#include "node.h"
#include "record.h"

static uint64_t clock_ns(clockid_t id)
{
	struct timespec t;

	clock_gettime(id, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: tp-bench-fire [--warmup N] [--interval-us U] [--expect-attached yes|no]\n"
		"                     EVENT COUNT\n"
		"  EVENT  mempool_added | p2p:SIZE (net:inbound_message with a SIZE-byte payload)\n"
		"Fires EVENT COUNT times (after N untimed warm-up events, default COUNT/10) and\n"
		"prints the time per event (see bench/tracepoint/tp_fire.c).\n");
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Mean of the per-event times, leaving out (and counting in *outliers) the
 * events that took more than 10 times the median: on a shared machine those
 * are the ones the thread was preempted in the middle of (a time slice is
 * far longer than any event here), which is not a cost of the tracepoint.
 * Sorts t. */
static double trimmed_mean(uint64_t *t, uint64_t n, uint64_t *outliers)
{
	uint64_t limit, kept = 0;
	double sum = 0;

	qsort(t, n, sizeof(*t), cmp_u64);
	limit = 10 * t[n / 2];
	for (uint64_t i = 0; i < n; i++) {
		if (t[i] > limit)
			break;
		sum += (double)t[i];
		kept++;
	}
	*outliers = n - kept;
	return sum / (double)kept;
}

/* Hardware counters of this thread, user and kernel (cycles, instructions),
 * for the tight loop: the cycles the thread really ran, which leaves out
 * both preemption and, in a virtual machine, the time the host took the CPU
 * away (CPU time counts that "steal"); but also the host's handling of the
 * thread's own VM exits (an IPI sent to wake the collector is one), so it
 * is a diagnostic next to cpu_ns, not a replacement. fd[0] = -1 when the
 * counters cannot be opened (no PMU, perf_event_paranoid). */
struct counters {
	int fd[2];
};

static void counters_open(struct counters *c)
{
	static const uint64_t configs[2] = { PERF_COUNT_HW_CPU_CYCLES, PERF_COUNT_HW_INSTRUCTIONS };

	c->fd[0] = c->fd[1] = -1;
	for (int i = 0; i < 2; i++) {
		struct perf_event_attr a;

		memset(&a, 0, sizeof(a));
		a.size = sizeof(a);
		a.type = PERF_TYPE_HARDWARE;
		a.config = configs[i];
		a.disabled = i == 0;
		a.exclude_hv = 1;
		a.read_format = PERF_FORMAT_GROUP;
		int fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, i ? c->fd[0] : -1, 0);
		if (fd < 0) {
			if (c->fd[0] >= 0)
				close(c->fd[0]);
			c->fd[0] = -1;
			return;
		}
		c->fd[i] = fd;
	}
}

/* counts[2] over the enabled span; false when unavailable */
static bool counters_read(const struct counters *c, uint64_t counts[2])
{
	uint64_t buf[3];

	if (c->fd[0] < 0 || read(c->fd[0], buf, sizeof(buf)) != sizeof(buf) || buf[0] != 2)
		return false;
	counts[0] = buf[1];
	counts[1] = buf[2];
	return true;
}

struct workload {
	bool p2p;
	struct peer peer;
	struct net_message msg;
	struct mempool_entry entry;
};

/* One event; true if its probe site was reached. Out of line calls into
 * the node's functions, as bitcoind calls the functions holding its sites. */
static inline bool fire_one(struct workload *w, uint64_t i)
{
	if (w->p2p)
		return node_receive_message(&w->peer, &w->msg);
	w->entry.fee = (int64_t)i; /* a value that changes, as in real use */
	return node_mempool_add(&w->entry);
}

int main(int argc, char **argv)
{
	uint64_t count = 0, warmup = UINT64_MAX, interval_us = 0, size = 0, fired = 0;
	const char *expect = NULL, *event = NULL;
	struct workload w;
	volatile unsigned short *sem;
	int argi = 1;

	for (; argi < argc && argv[argi][0] == '-'; argi++) {
		const char *a = argv[argi];

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--warmup") && argi + 1 < argc) {
			if (!parse_u64(argv[++argi], &warmup))
				goto bad;
		} else if (!strcmp(a, "--interval-us") && argi + 1 < argc) {
			if (!parse_u64(argv[++argi], &interval_us))
				goto bad;
		} else if (!strcmp(a, "--expect-attached") && argi + 1 < argc) {
			expect = argv[++argi];
			if (strcmp(expect, "yes") && strcmp(expect, "no"))
				goto bad;
		} else {
			goto bad;
		}
	}
	if (argc - argi != 2 || !parse_u64(argv[argi + 1], &count) || count == 0)
		goto bad;
	event = argv[argi];
	if (warmup == UINT64_MAX)
		warmup = count / 10;

	memset(&w, 0, sizeof(w));
	w.peer = (struct peer){ .id = 7, .addr = "203.0.113.45:8333", .conn_type = "inbound",
				.network = 1, .time_connected = 1700000000 };
	for (int i = 0; i < NODE_HASH_LEN; i++)
		w.entry.txid[i] = (unsigned char)(i * 37 + 11);
	w.entry.vsize = 141;
	w.entry.entry_time = 1700000000;
	if (!strcmp(event, "mempool_added")) {
		sem = probe_semaphore(TP_MEMPOOL_ADDED);
	} else if (!strncmp(event, "p2p:", 4) && parse_u64(event + 4, &size) &&
		   size <= P2P_PAYLOAD_MAX) {
		unsigned char *payload = malloc(size ? size : 1);

		if (!payload) {
			fprintf(stderr, "tp-bench-fire: out of memory\n");
			return 1;
		}
		/* touched, so no read of it can fail on a missing page */
		for (uint64_t i = 0; i < size; i++)
			payload[i] = (unsigned char)(i * 131 + 7);
		w.p2p = true;
		w.msg = (struct net_message){ .type = "tx", .size = size, .data = payload };
		sem = probe_semaphore(TP_NET_INBOUND_MESSAGE);
	} else {
		goto bad;
	}
	if (expect && (*sem > 0) != !strcmp(expect, "yes")) {
		fprintf(stderr, "tp-bench-fire: %s: probe semaphore is %u, expected %s tracer\n",
			event, (unsigned)*sem, !strcmp(expect, "yes") ? "a" : "no");
		return 3;
	}

	double wall_ns, cpu_ns, cycles = -1, instructions = -1;
	uint64_t outliers = 0;
	if (interval_us == 0) {
		for (uint64_t i = 0; i < warmup; i++)
			fired += fire_one(&w, i);

		struct counters pmu;
		uint64_t counts[2];

		counters_open(&pmu);
		if (pmu.fd[0] >= 0)
			ioctl(pmu.fd[0], PERF_EVENT_IOC_ENABLE, PERF_IOC_FLAG_GROUP);
		uint64_t c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID), t0 = clock_ns(CLOCK_MONOTONIC);
		for (uint64_t i = 0; i < count; i++)
			fired += fire_one(&w, i);
		uint64_t t1 = clock_ns(CLOCK_MONOTONIC), c1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
		if (pmu.fd[0] >= 0)
			ioctl(pmu.fd[0], PERF_EVENT_IOC_DISABLE, PERF_IOC_FLAG_GROUP);
		wall_ns = (double)(t1 - t0) / (double)count;
		cpu_ns = (double)(c1 - c0) / (double)count;
		if (counters_read(&pmu, counts)) {
			cycles = (double)counts[0] / (double)count;
			instructions = (double)counts[1] / (double)count;
		}
	} else {
		/* warm-up paced too, so it cannot overrun the collector either */
		uint64_t c0 = 0, due = clock_ns(CLOCK_MONOTONIC), t0;
		uint64_t *took = malloc(count * sizeof(*took));

		if (!took) {
			fprintf(stderr, "tp-bench-fire: out of memory\n");
			return 1;
		}
		for (uint64_t i = 0; i < warmup + count; i++) {
			if (i == warmup)
				c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
			due += interval_us * 1000u;
			while ((t0 = clock_ns(CLOCK_MONOTONIC)) < due)
				;
			fired += fire_one(&w, i);
			if (i >= warmup)
				took[i - warmup] = clock_ns(CLOCK_MONOTONIC) - t0;
		}
		cpu_ns = (double)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0) / (double)count;
		wall_ns = trimmed_mean(took, count, &outliers);
		free(took);
	}
	printf("event=%s size=%" PRIu64 " count=%" PRIu64 " warmup=%" PRIu64
	       " interval_us=%" PRIu64 " fired=%" PRIu64 " semaphore=%u wall_ns=%.1f cpu_ns=%.1f"
	       " outliers=%" PRIu64,
	       w.p2p ? "net_inbound_message" : "mempool_added", size, count, warmup, interval_us,
	       fired, (unsigned)*sem, wall_ns, cpu_ns, outliers);
	if (cycles >= 0)
		printf(" cycles=%.0f instructions=%.0f", cycles, instructions);
	else
		printf(" cycles=NA instructions=NA");
	printf("\n");
	return 0;
bad:
	usage(stderr);
	return 2;
}
