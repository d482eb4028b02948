/* The queue side of the publisher: opening the shared-memory queue (waiting
 * for it to appear), the doorbell on the loop, noticing a replaced data file,
 * and what the publisher reports about the queue and the collector.
 *
 * Reading, releasing and rewinding go straight to common/queue.h on
 * src->q; this file owns its lifetime. */
#ifndef EBPF_PUBLISHER_SOURCE_H
#define EBPF_PUBLISHER_SOURCE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "queue.h"

#define SOURCE_RETRY_MS 200        /* the queue does not exist (yet) */
#define SOURCE_RETRY_ERROR_MS 1000 /* any other error */

struct source_handlers {
	void (*opened)(void *arg); /* src->q is open (first time or again) */
	void (*bell)(void *arg);   /* the producer rang: records arrived */
};

struct source {
	uv_loop_t *loop;
	const char *dir;
	struct source_handlers handlers;
	void *arg;

	struct queue_consumer *q; /* NULL while waiting for the queue */
	uint64_t stream_id;
	const uint8_t *hdr;       /* the data file's header page, read-only */
	uv_poll_t *bell;          /* on queue_doorbell_fd; freed when closed */
	uv_timer_t open_timer;
	bool closing;

	int last_errno;           /* of the last failed open, for log-once */
	char last_error[QUEUE_ERROR_LEN];
	bool waiting_logged;
};

/* Tries to open the queue now; when it does not exist yet (or cannot be
 * opened for a reason that may pass), retries on a timer and logs once.
 * -1 with a message in err for a queue it must refuse (another layout
 * version, another consumer holds it): the caller exits. */
int source_start(struct source *s, uv_loop_t *loop, const char *dir,
		 const struct source_handlers *handlers, void *arg, char *err, size_t errlen);
/* Closes the current queue and opens the directory's queue again (after
 * its data file was replaced). */
void source_reopen(struct source *s);
/* Closes everything (the handles close on the loop). */
void source_close(struct source *s);

/* From the open queue's header (0 when not open). */
uint64_t source_write_pos(const struct source *s);
uint64_t source_capacity(const struct source *s);

/* The producer (collector) holds its lock on the queue: it is running.
 * Reads /proc/locks (the lock file itself is the collector's, mode 0600). */
bool source_collector_present(const struct source *s);

#endif
