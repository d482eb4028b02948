/* See burst.h.
 *
 * The main thread fires the block: per transaction one mempool:removed
 * (reason "block"), two utxocache:spent and two utxocache:add, paced so the
 * SCENARIO_BURST_TXS transactions take about SCENARIO_BURST_MS. A second
 * thread fires net:inbound_message every P2P_INTERVAL_NS from before the
 * block until after it, so both rings are busy at once.
 */
#include "burst.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define P2P_INTERVAL_NS (50 * 1000)          /* 20,000 messages/s */
#define P2P_LEAD_NS (10 * 1000 * 1000)       /* P2P alone before and after the block */

struct p2p_thread {
	struct firer firer;
	atomic_bool stop;
	int err;
};

tp_mask burst_mask(void)
{
	return TP_BIT(TP_MEMPOOL_REMOVED) | TP_BIT(TP_UTXOCACHE_SPENT) | TP_BIT(TP_UTXOCACHE_ADD) |
	       TP_BIT(TP_NET_INBOUND_MESSAGE);
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void sleep_until(uint64_t ns)
{
	struct timespec t = { .tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u) };

	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
}

static void *p2p_main(void *arg)
{
	struct p2p_thread *t = arg;
	struct scenario_step step;
	uint64_t due = now_ns();

	while (!atomic_load(&t->stop)) {
		scenario_load_step(TP_NET_INBOUND_MESSAGE, t->firer.fired[TP_NET_INBOUND_MESSAGE],
				   SCENARIO_BURST_P2P_SIZE, &step);
		if ((t->err = fire_step(&t->firer, &step)) < 0)
			break;
		due += P2P_INTERVAL_NS;
		sleep_until(due);
	}
	return NULL;
}

static int fire_tx(struct firer *f, enum tracepoint_id tp, int times)
{
	struct scenario_step step;
	int err;

	for (int i = 0; i < times; i++) {
		scenario_load_step(tp, f->fired[tp], 0, &step);
		if ((err = fire_step(f, &step)) < 0)
			return err;
	}
	return 0;
}

static int fire_block(struct firer *f)
{
	const uint64_t start = now_ns();
	const uint64_t per_tx = (uint64_t)SCENARIO_BURST_MS * 1000000u / SCENARIO_BURST_TXS;
	int err = 0;

	for (uint64_t tx = 0; tx < SCENARIO_BURST_TXS && !err; tx++) {
		/* pace in 1 ms slices: sleep only when ahead of the schedule */
		if (tx % (SCENARIO_BURST_TXS / SCENARIO_BURST_MS) == 0 && now_ns() < start + tx * per_tx)
			sleep_until(start + tx * per_tx);
		if (!(err = fire_tx(f, TP_MEMPOOL_REMOVED, 1)) && !(err = fire_tx(f, TP_UTXOCACHE_SPENT, 2)))
			err = fire_tx(f, TP_UTXOCACHE_ADD, 2);
	}
	fprintf(stderr, "ebpf-tracee: burst: %d transactions in %.1f ms\n", SCENARIO_BURST_TXS,
		(double)(now_ns() - start) / 1e6);
	return err;
}

static void add_counts(uint64_t fired[TP_COUNT], const struct firer *f)
{
	for (int tp = 1; tp < TP_COUNT; tp++)
		fired[tp] += f->fired[tp];
}

int burst_run(uint64_t fired[TP_COUNT])
{
	struct p2p_thread *p2p = calloc(1, sizeof(*p2p));
	struct firer *block = calloc(1, sizeof(*block));
	pthread_t thread;
	int err;

	if (!p2p || !block) {
		err = -ENOMEM;
		goto out;
	}
	firer_init(&p2p->firer);
	firer_init(block);
	atomic_init(&p2p->stop, false);
	if ((err = -pthread_create(&thread, NULL, p2p_main, p2p)) < 0)
		goto out;
	sleep_until(now_ns() + P2P_LEAD_NS);
	err = fire_block(block);
	sleep_until(now_ns() + P2P_LEAD_NS);
	atomic_store(&p2p->stop, true);
	pthread_join(thread, NULL);
	if (!err)
		err = p2p->err < 0 ? p2p->err : 0;
	add_counts(fired, &p2p->firer);
	add_counts(fired, block);
out:
	if (p2p)
		firer_destroy(&p2p->firer);
	if (block)
		firer_destroy(block);
	free(p2p);
	free(block);
	return err;
}
