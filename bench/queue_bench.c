/* queue_bench: throughput of the shared-memory queue between two processes.
 *
 * The parent is the producer, a forked child the consumer, each pinned to
 * its own CPU when there are two. Per run: a fresh queue in /dev/shm, the
 * consumer opens it and says it is ready, the producer writes N records of
 * one size (notifying once per batch), the consumer reads every one
 * (checking seq and the first word, folding every payload word into a
 * checksum so nothing is skipped), releases once per batch and sleeps on the
 * doorbell when the queue is empty. Time: producer start to the consumer
 * having read the last record (CLOCK_MONOTONIC, system wide).
 *
 * Prints one line per record size: min/median/max records/s and MB/s
 * (payload bytes) over the runs, and the median number of times per run the
 * consumer went to sleep on the doorbell (each costs a poll, a doorbell
 * write by the producer and a drain).
 */
#include "queue.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct options {
	uint64_t capacity;
	uint32_t sizes[8];
	int nsizes;
	uint64_t records[8]; /* per size; 0: pick from the size */
	int runs;
	uint32_t batch;
	bool pin;
	bool verbose;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void pin_to(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void fill(uint8_t *p, uint64_t seq, uint32_t len)
{
	if (len >= 8) {
		memset(p + 8, (int)(seq & 0xff), len - 8);
		memcpy(p, &seq, 8);
	} else {
		memset(p, (int)(seq & 0xff), len);
	}
}

/* the consumer process */
static int consume(const char *dir, uint64_t n, uint32_t len, uint32_t batch, int ready_fd,
		   int result_fd)
{
	char err[QUEUE_ERROR_LEN];
	int e;
	struct queue_consumer *c = queue_consumer_open(dir, &e, err);
	if (!c) {
		fprintf(stderr, "queue_bench: consumer: %s\n", err);
		return 1;
	}
	if (write(ready_fd, "r", 1) != 1)
		return 1;
	uint64_t sum = 0, expect = 1, unreleased = 0, sleeps = 0;
	struct queue_record r = { 0 };
	while (expect <= n) {
		int got = queue_read(c, &r, err);
		if (got == 1) {
			if (r.seq != expect || r.len != len) {
				fprintf(stderr, "queue_bench: record %ju: seq %ju len %u\n",
					(uintmax_t)expect, (uintmax_t)r.seq, r.len);
				return 1;
			}
			const uint8_t *d = r.data;
			if (len >= 8) {
				uint64_t first;
				memcpy(&first, d, 8);
				if (first != r.seq) {
					fprintf(stderr, "queue_bench: record %ju: damaged\n", (uintmax_t)expect);
					return 1;
				}
			}
			uint64_t x = 0;
			uint32_t j = 0;
			for (; j + 8 <= len; j += 8) {
				uint64_t v;
				memcpy(&v, d + j, 8);
				x ^= v;
			}
			for (; j < len; j++)
				x ^= d[j];
			sum += x;
			expect++;
			if (++unreleased == batch) {
				queue_release(c, r.pos);
				unreleased = 0;
			}
			continue;
		}
		if (got < 0) {
			fprintf(stderr, "queue_bench: %s\n", err);
			return 1;
		}
		if (unreleased) {
			queue_release(c, r.pos);
			unreleased = 0;
		}
		if (!queue_prepare_sleep(c))
			continue;
		sleeps++;
		struct pollfd pfd = { .fd = queue_doorbell_fd(c), .events = POLLIN };
		if (poll(&pfd, 1, 30000) == 0) {
			fprintf(stderr, "queue_bench: consumer got no wake-up for 30 s\n");
			return 1;
		}
		queue_wake(c);
	}
	uint64_t end = now_ns();
	queue_release(c, r.pos);
	uint64_t msg[3] = { end, sum, sleeps };
	if (write(result_fd, msg, sizeof(msg)) != (ssize_t)sizeof(msg))
		return 1;
	queue_consumer_close(c);
	return 0;
}

/* one run; returns seconds, or a negative number on failure */
static double run_once(const struct options *o, uint64_t n, uint32_t len, uint64_t *sleeps)
{
	char base[] = "/dev/shm/queue-bench-XXXXXX";
	if (!mkdtemp(base)) {
		fprintf(stderr, "queue_bench: mkdtemp: %s\n", strerror(errno));
		return -1;
	}
	char dir[64];
	snprintf(dir, sizeof(dir), "%s/q", base);
	char err[QUEUE_ERROR_LEN];
	struct queue_producer_options po = { .dir = dir, .capacity = o->capacity, .group = (gid_t)-1 };
	struct queue_producer *p = queue_producer_open(&po, err);
	if (!p) {
		fprintf(stderr, "queue_bench: %s\n", err);
		nftw(base, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
		return -1;
	}
	int ready[2], result[2];
	if (pipe(ready) != 0 || pipe(result) != 0) {
		fprintf(stderr, "queue_bench: pipe: %s\n", strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "queue_bench: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		if (o->pin)
			pin_to(1);
		_exit(consume(dir, n, len, o->batch, ready[1], result[1]));
	}
	if (o->pin)
		pin_to(0);
	char c;
	double secs = -1;
	if (read(ready[0], &c, 1) != 1) {
		fprintf(stderr, "queue_bench: the consumer did not start\n");
		goto out;
	}
	uint64_t t0 = now_ns();
	for (uint64_t seq = 1; seq <= n; seq++) {
		void *d;
		unsigned spins = 0;
		while (!(d = queue_reserve(p, len))) {
			queue_notify(p);
			if (++spins > 64)
				sched_yield();
		}
		fill(d, seq, len);
		queue_commit(p, len);
		if (seq % o->batch == 0)
			queue_notify(p);
	}
	queue_notify(p);
	uint64_t msg[3];
	if (read(result[0], msg, sizeof(msg)) != (ssize_t)sizeof(msg)) {
		fprintf(stderr, "queue_bench: the consumer failed\n");
		goto out;
	}
	secs = (double)(msg[0] - t0) / 1e9;
	*sleeps = msg[2];
out:;
	int status;
	if (secs < 0)
		kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		secs = -1;
	close(ready[0]);
	close(ready[1]);
	close(result[0]);
	close(result[1]);
	queue_producer_close(p);
	nftw(base, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return secs;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: queue_bench [--capacity BYTES] [--size BYTES[:RECORDS]]... [--runs N]\n"
		"                   [--batch N] [--no-pin] [--verbose]\n"
		"  defaults: --capacity 16777216 --size 64:20000000 --size 4096:1000000 --runs 5\n"
		"            --batch 64; producer on CPU 0, consumer on CPU 1\n");
}

int main(int argc, char **argv)
{
	struct options o = { .capacity = 16ull << 20, .runs = 5, .batch = 64, .pin = true };
	static const struct option longopts[] = {
		{ "capacity", required_argument, NULL, 'c' }, { "size", required_argument, NULL, 's' },
		{ "runs", required_argument, NULL, 'r' },     { "batch", required_argument, NULL, 'b' },
		{ "no-pin", no_argument, NULL, 'P' },         { "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		char *end;
		switch (opt) {
		case 'c':
			o.capacity = strtoull(optarg, &end, 0);
			if (*end || !queue_capacity_valid(o.capacity)) {
				fprintf(stderr, "queue_bench: --capacity must be a power of two between "
					"%llu and %llu\n", QUEUE_MIN_CAPACITY, QUEUE_MAX_CAPACITY);
				return 2;
			}
			break;
		case 's':
			if (o.nsizes == 8) {
				fprintf(stderr, "queue_bench: at most 8 sizes\n");
				return 2;
			}
			o.sizes[o.nsizes] = (uint32_t)strtoul(optarg, &end, 0);
			o.records[o.nsizes] = *end == ':' ? strtoull(end + 1, &end, 0) : 0;
			if (*end) {
				usage(stderr);
				return 2;
			}
			o.nsizes++;
			break;
		case 'r':
			o.runs = atoi(optarg);
			if (o.runs < 1 || o.runs > 100) {
				fprintf(stderr, "queue_bench: --runs must be 1..100\n");
				return 2;
			}
			break;
		case 'b':
			o.batch = (uint32_t)strtoul(optarg, &end, 0);
			if (*end || o.batch == 0) {
				fprintf(stderr, "queue_bench: --batch must be a positive number\n");
				return 2;
			}
			break;
		case 'P':
			o.pin = false;
			break;
		case 'v':
			o.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (o.nsizes == 0) {
		o.sizes[0] = 64;
		o.records[0] = 20000000;
		o.sizes[1] = 4096;
		o.records[1] = 1000000;
		o.nsizes = 2;
	}
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		o.pin = false;
	for (int i = 0; i < o.nsizes; i++) {
		if (o.sizes[i] > queue_max_payload(o.capacity)) {
			fprintf(stderr, "queue_bench: size %u is above the largest record of a %ju-byte "
				"queue (%ju)\n", o.sizes[i], (uintmax_t)o.capacity,
				(uintmax_t)queue_max_payload(o.capacity));
			return 2;
		}
		if (o.records[i] == 0)
			o.records[i] = o.sizes[i] <= 256 ? 20000000 : 1000000;
	}
	signal(SIGPIPE, SIG_IGN);

	printf("queue throughput: 2 processes%s, capacity %ju bytes, notify/release every %u "
	       "records, %d runs\n", o.pin ? " (pinned to CPUs 0 and 1)" : "",
	       (uintmax_t)o.capacity, o.batch, o.runs);
	printf("%8s %10s | %12s %12s %12s | %9s %9s %9s | %9s\n", "size", "records", "min rec/s",
	       "median rec/s", "max rec/s", "min MB/s", "med MB/s", "max MB/s", "sleeps");
	fflush(stdout);
	for (int i = 0; i < o.nsizes; i++) {
		double rate[100], sleeps[100];
		for (int r = 0; r < o.runs; r++) {
			uint64_t sl = 0;
			double s = run_once(&o, o.records[i], o.sizes[i], &sl);
			sleeps[r] = (double)sl;
			if (s <= 0) {
				fprintf(stderr, "queue_bench: run failed\n");
				return 1;
			}
			rate[r] = (double)o.records[i] / s;
			if (o.verbose)
				fprintf(stderr, "  size %u run %d: %.0f records/s, consumer slept %ju times\n",
					o.sizes[i], r + 1, rate[r], (uintmax_t)sl);
		}
		qsort(rate, (size_t)o.runs, sizeof(double), cmp_double);
		qsort(sleeps, (size_t)o.runs, sizeof(double), cmp_double);
		double med = o.runs % 2 ? rate[o.runs / 2] : (rate[o.runs / 2 - 1] + rate[o.runs / 2]) / 2;
		double mb = (double)o.sizes[i] / 1e6;
		printf("%8u %10ju | %12.0f %12.0f %12.0f | %9.1f %9.1f %9.1f | %9.0f\n", o.sizes[i],
		       (uintmax_t)o.records[i], rate[0], med, rate[o.runs - 1], rate[0] * mb, med * mb,
		       rate[o.runs - 1] * mb, sleeps[o.runs / 2]);
		fflush(stdout);
	}
	return 0;
}
