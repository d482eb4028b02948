/* tp-bench-drain: the queue reader of the tracepoint-cost benchmark. It
 * stands in for ebpf-publisher: reads every record of the collector's
 * shared-memory queue through the consumer API of common/queue.h, releases
 * it at once (so the queue never fills) and sleeps on the doorbell when the
 * queue is empty, as the publisher does.
 *
 *   tp-bench-drain [--bpf-stats] [--wait-seconds S] QUEUE_DIR
 *
 * On SIGINT/SIGTERM (send it after the collector has exited, so every
 * record is committed) it reads what is left and prints one line:
 *
 *   events=N p2p_bytes=B bad=0 started=1 stats=1 loss_records=0 lost=0
 *   stats_events=N stats_lost=0 bpf_drops=0 queue_drops=0 incomplete=0
 *   seq_first=1 seq_last=N+3
 *
 * events      event records (any tracepoint)
 * p2p_bytes   payload bytes of P2P message records
 * bad         event records with a read-failed or truncated flag, a wrong
 *             length, or a P2P payload that is not the bytes tp-bench-fire
 *             sent (i * 131 + 7): anything but 0 means the data was wrong
 * lost        sum of every loss record's counts (bpf_drops, queue_drops,
 *             incomplete) over all tracepoints
 * stats_*     from the last stats record: cumulative events written to the
 *             queue and events lost, as the collector counted them (and the
 *             lost ones by kind: bpf_drops, queue_drops, incomplete)
 * The sequence numbers are checked to be contiguous (queue_read fails
 * otherwise). Exit status 0, or 1 on a queue error.
 *
 * --bpf-stats holds BPF_ENABLE_STATS while running (profiling pass only).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "queue.h"
#include "record.h"
#include "tp_common.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

struct totals {
	uint64_t events, p2p_bytes, bad, started, stats, loss_records, lost;
	uint64_t stats_events, stats_lost, bpf_drops, queue_drops, incomplete;
	uint64_t seq_first, seq_last;
};

static bool p2p_payload_ok(const struct record_header *h, uint32_t len)
{
	const struct ev_net_message *m = (const void *)(h + 1);
	const unsigned char *p = (const unsigned char *)(m + 1);

	if (len < sizeof(*h) + sizeof(*m) || h->length != len ||
	    len - sizeof(*h) - sizeof(*m) != m->size)
		return false;
	for (uint64_t i = 0; i < m->size; i++)
		if (p[i] != (unsigned char)(i * 131 + 7))
			return false;
	return true;
}

static void account(struct totals *t, const struct queue_record *rec)
{
	const struct record_header *h = rec->data;

	if (!t->seq_first)
		t->seq_first = rec->seq;
	t->seq_last = rec->seq;
	if (rec->len < sizeof(*h)) {
		t->bad++;
		return;
	}
	switch (h->kind) {
	case RECORD_EVENT:
		t->events++;
		if (h->flags)
			t->bad++;
		if (h->tracepoint == TP_NET_INBOUND_MESSAGE) {
			if (!p2p_payload_ok(h, rec->len))
				t->bad++;
			else
				t->p2p_bytes += ((const struct ev_net_message *)(h + 1))->size;
		}
		break;
	case RECORD_LOSS: {
		const struct rec_loss *l = (const void *)(h + 1);

		t->loss_records++;
		if (rec->len >= sizeof(*h) + sizeof(*l))
			for (int tp = 0; tp < TP_COUNT; tp++)
				t->lost += l->tp[tp].bpf_drops + l->tp[tp].queue_drops +
					   l->tp[tp].incomplete;
		break;
	}
	case RECORD_STATS: {
		const struct rec_stats *s = (const void *)(h + 1);

		t->stats++;
		if (rec->len >= sizeof(*h) + sizeof(*s)) {
			t->stats_events = t->bpf_drops = t->queue_drops = t->incomplete = 0;
			for (int tp = 0; tp < TP_COUNT; tp++) {
				t->stats_events += s->tp[tp].events;
				t->bpf_drops += s->tp[tp].lost.bpf_drops;
				t->queue_drops += s->tp[tp].lost.queue_drops;
				t->incomplete += s->tp[tp].lost.incomplete;
			}
			t->stats_lost = t->bpf_drops + t->queue_drops + t->incomplete;
		}
		break;
	}
	case RECORD_STARTED: t->started++; break;
	default: t->bad++; break;
	}
}

int main(int argc, char **argv)
{
	const char *dir = NULL;
	double wait_s = 10;
	bool stats = false;
	char err[QUEUE_ERROR_LEN];
	struct queue_consumer *q = NULL;
	struct totals t = { 0 };
	int e = 0, stats_fd = -1;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--bpf-stats"))
			stats = true;
		else if (!strcmp(argv[i], "--wait-seconds") && i + 1 < argc)
			wait_s = atof(argv[++i]);
		else if (argv[i][0] != '-' && !dir)
			dir = argv[i];
		else {
			fprintf(stderr, "usage: tp-bench-drain [--bpf-stats] [--wait-seconds S] "
					"QUEUE_DIR\n");
			return 2;
		}
	}
	if (!dir) {
		fprintf(stderr, "usage: tp-bench-drain [--bpf-stats] [--wait-seconds S] QUEUE_DIR\n");
		return 2;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (stats && (stats_fd = tp_enable_bpf_stats()) < 0)
		fprintf(stderr, "tp-bench-drain: BPF_ENABLE_STATS: %s\n", strerror(-stats_fd));

	/* The collector creates the queue: wait for it. */
	for (int tries = 0; !q; tries++) {
		q = queue_consumer_open(dir, &e, err);
		if (q)
			break;
		if (e != ENOENT || tries > wait_s * 100 || stop) {
			fprintf(stderr, "tp-bench-drain: %s\n", err);
			return 1;
		}
		nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	}
	for (;;) {
		struct queue_record rec;
		int r = queue_read(q, &rec, err);

		if (r < 0) {
			fprintf(stderr, "tp-bench-drain: %s\n", err);
			queue_consumer_close(q);
			return 1;
		}
		if (r > 0) {
			account(&t, &rec);
			queue_release(q, rec.pos);
			continue;
		}
		if (stop)
			break; /* empty after the stop signal: the collector is gone */
		if (!queue_prepare_sleep(q))
			continue;
		struct pollfd p = { .fd = queue_doorbell_fd(q), .events = POLLIN };
		poll(&p, 1, 200); /* the timeout only bounds the reaction to a signal */
		queue_wake(q);
	}
	queue_consumer_close(q);
	if (stats_fd >= 0)
		close(stats_fd);
	printf("events=%" PRIu64 " p2p_bytes=%" PRIu64 " bad=%" PRIu64 " started=%" PRIu64
	       " stats=%" PRIu64 " loss_records=%" PRIu64 " lost=%" PRIu64 " stats_events=%" PRIu64
	       " stats_lost=%" PRIu64 " bpf_drops=%" PRIu64 " queue_drops=%" PRIu64
	       " incomplete=%" PRIu64 " seq_first=%" PRIu64 " seq_last=%" PRIu64 "\n",
	       t.events, t.p2p_bytes, t.bad, t.started, t.stats, t.loss_records, t.lost,
	       t.stats_events, t.stats_lost, t.bpf_drops, t.queue_drops, t.incomplete, t.seq_first,
	       t.seq_last);
	return 0;
}
