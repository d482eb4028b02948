/* A small program with USDT probes shaped like Bitcoin Core's: sys/sdt.h
 * probes, each behind a 2-byte semaphore in section ".probes" and fired only
 * inside `if (semaphore)`. Used by the usdt tests (notes, argument specs,
 * real uprobe-multi links).
 *
 * Reads commands on stdin, one per line, and answers each on stdout:
 *   fire N   fires every probe for i = 0 .. N-1, then prints
 *            "fired hit_a=.. hit_b=.. args=.. nosem=.. sem_hit=.. sem_args=.."
 *            (how many times each probe body ran, and the semaphores now)
 *   quit     exits
 * It prints "ready" once at start. With argument "fire N" it fires once and
 * exits without reading stdin.
 *
 * Probes:
 *   test:hit    two sites (fire_hit_a: arg i; fire_hit_b: arg i + 1000000)
 *   test:args   (int64)-i, (uint32)3i, (uint8)(i&1), r->a = 1000i - 7,
 *               r->c = -i (int32), 5, -9
 *   test:nosem  no semaphore (in usdt_tracee_nosem.c), arg 7i
 */
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Padding on both sides of the semaphores keeps a shifted semaphore address
 * (the .stapsdt.base test) inside .probes. */
volatile unsigned short probes_pad_before[8] __attribute__((section(".probes")));
volatile unsigned short test_hit_semaphore __attribute__((section(".probes")));
volatile unsigned short test_args_semaphore __attribute__((section(".probes")));
volatile unsigned short probes_pad_after[8] __attribute__((section(".probes")));

struct rec {
	int64_t a;
	int32_t c;
};

long fire_nosem(long i);

static long fired_hit_a, fired_hit_b, fired_args;

__attribute__((noinline)) static void fire_hit_a(long i)
{
	if (test_hit_semaphore) {
		fired_hit_a++;
		STAP_PROBE1(test, hit, i);
	}
}

__attribute__((noinline)) static void fire_hit_b(long i)
{
	if (test_hit_semaphore) {
		fired_hit_b++;
		STAP_PROBE1(test, hit, i + 1000000);
	}
}

__attribute__((noinline)) static void fire_args(long i, const struct rec *r)
{
	if (test_args_semaphore) {
		fired_args++;
		STAP_PROBE7(test, args, (int64_t)-i, (uint32_t)(i * 3), (uint8_t)(i & 1), r->a, r->c, 5,
			    -9);
	}
}

static void fire(long n)
{
	long nosem = 0;
	fired_hit_a = fired_hit_b = fired_args = 0;
	for (long i = 0; i < n; i++) {
		struct rec r = { .a = 1000 * i - 7, .c = (int32_t)-i };
		fire_hit_a(i);
		fire_hit_b(i);
		fire_args(i, &r);
		nosem += fire_nosem(i);
	}
	printf("fired hit_a=%ld hit_b=%ld args=%ld nosem=%ld sem_hit=%u sem_args=%u\n", fired_hit_a,
	       fired_hit_b, fired_args, nosem, (unsigned)test_hit_semaphore,
	       (unsigned)test_args_semaphore);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	(void)probes_pad_before[0];
	(void)probes_pad_after[0];
	if (argc == 3 && strcmp(argv[1], "fire") == 0) {
		fire(strtol(argv[2], NULL, 10));
		return 0;
	}
	printf("ready\n");
	fflush(stdout);
	char line[64];
	while (fgets(line, sizeof(line), stdin)) {
		long n;
		if (sscanf(line, "fire %ld", &n) == 1)
			fire(n);
		else if (strncmp(line, "quit", 4) == 0)
			break;
	}
	return 0;
}
