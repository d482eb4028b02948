/* Everything the collector writes into the queue, with its accounting:
 * events, and the loss, stats and started records that make every loss
 * visible in the stream (DESIGN.md, non-negotiable 1). */
#ifndef EBPF_COLLECTOR_SINK_H
#define EBPF_COLLECTOR_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue.h"
#include "record.h"

struct sink {
	struct queue_producer *queue;
	int64_t boot_to_unix_ns; /* add to a CLOCK_BOOTTIME stamp to get unix ns */
	uint64_t started_ns;     /* CLOCK_BOOTTIME at start */
	uint32_t attached;       /* bit per tracepoint id */
	struct tracepoint_stats totals[TP_COUNT];
	struct loss_counts unreported[TP_COUNT]; /* lost since the last loss record */
	bool loss_unreported;
	uint64_t bpf_drops_seen[TP_COUNT];
	uint64_t records_dropped; /* own records (stats) that found the queue full */
	/* The started record waits for room (a full queue at start): nothing
	 * the collector writes may come before it. */
	bool started_pending;
	uint64_t started_unix_ns;
	struct rec_started started;
};

void sink_init(struct sink *s, struct queue_producer *queue);
/* Re-reads the offset between CLOCK_REALTIME and CLOCK_BOOTTIME (NTP moves it). */
void sink_refresh_clock(struct sink *s);

/* One event record from BPF (P2P messages already joined). Its time is
 * turned into unix ns; a full queue counts it lost. */
void sink_event(struct sink *s, const void *record, size_t length);
/* A P2P message the assembler had to give up. */
void sink_incomplete(struct sink *s, enum tracepoint_id tp);
/* Totals of the BPF drop counters; the increase since the last call is lost. */
void sink_bpf_drops(struct sink *s, const uint64_t totals[TP_COUNT]);
/* The drop stamp of an event record from BPF (bpf_shared.h): drops of tp
 * it says came before it, not yet accounted, are lost before this event,
 * so their loss record goes into the queue ahead of it. Call before
 * sink_event (for a P2P message: when its message record arrives). */
void sink_bpf_stamp(struct sink *s, enum tracepoint_id tp, uint32_t stamp);
/* Writes a loss record if something was lost and not yet reported. */
void sink_report_loss(struct sink *s);

void sink_stats(struct sink *s);
/* Writes the started record, or keeps it until the queue has room: it is
 * then written before any other record (sink_event, sink_report_loss and
 * sink_stats try it first). */
void sink_started(struct sink *s, enum attach_mode mode, uint32_t filter_pid);

uint64_t sink_boot_ns(void);
uint64_t sink_unix_ns(void);

#endif
