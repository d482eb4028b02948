/* The publisher's NATS connection: nats.c driven by our libuv loop.
 *
 * Everything here runs on the loop thread except where noted. nats.c calls
 * its connection callbacks (connected, disconnected, reconnected, closed,
 * errors) on a thread of its own; they only log, count and wake the loop
 * (uv_async_t), and the loop reads the connection status itself, so a
 * coalesced wake-up loses nothing.
 *
 * Connection generations: every TCP connection nats.c attaches to the loop
 * takes the next generation number (nats_link_gen). A flush proves that the
 * server took everything published before it only when no new connection
 * was made since the first of those messages was published; the pump
 * compares generations to decide (DESIGN.md, "Events on NATS").
 *
 * The socket is polled by our own adapter (nats_io.h says why not
 * nats.c's <nats/adapters/libuv.h>). */
#ifndef EBPF_PUBLISHER_NATS_LINK_H
#define EBPF_PUBLISHER_NATS_LINK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <nats/nats.h>
#include <uv.h>

#include "nats_io.h"
#include "options.h"

#define NATS_FLUSH_TIMEOUT_MS 5000
#define NATS_REBUILD_DELAY_MS 5000
#define NATS_RECONNECT_BASE_MS 100
#define NATS_RECONNECT_MAX_MS 2000

struct nats_link;

struct nats_link_handlers {
	/* The connection came up, went down, or came up again on a new
	 * connection (check nats_link_connected and nats_link_gen). */
	void (*state_changed)(void *arg);
	/* A flush started with nats_link_flush_start finished. gen_after is
	 * the connection generation read after the flush returned. */
	void (*flush_done)(void *arg, natsStatus status, unsigned gen_after);
};

struct nats_link {
	uv_loop_t *loop;
	const struct publisher_options *opts;
	struct nats_link_handlers handlers;
	void *arg;

	natsOptions *nopts;
	natsConnection *nc;
	struct nats_io io;         /* the socket's poll on our loop */
	atomic_uint gen;           /* connections attached so far */

	/* nats.c threads -> loop */
	uv_async_t async;
	pthread_mutex_t async_mu;
	bool async_open;           /* under async_mu */
	atomic_bool closed_by_nats;
	atomic_bool closing_now;   /* nats_link_close was called */
	atomic_uint_fast64_t nats_errors;

	/* loop thread view */
	bool connected;
	bool ever_connected;
	unsigned connected_gen;
	uint64_t reconnects;
	bool closing;
	bool rebuild_pending;
	uv_timer_t rebuild_timer;
	uv_timer_t status_timer;   /* a slow safety net while disconnected */

	/* the one flush in flight */
	uv_work_t work;
	bool flushing;
	natsStatus flush_status;
	unsigned flush_gen_after;

	char servers_text[1024];
};

/* The natsOptions the publisher connects with: servers, credentials, TLS,
 * retry forever with backoff and jitter (also when no server is up at
 * start), reconnect buffer 0 (a publish while disconnected fails with
 * NATS_INSUFFICIENT_BUFFER instead of being replayed ahead of our resend).
 * link may be NULL (tests): then no callbacks but the connected one, which
 * natsOptions_SetRetryOnFailedConnect needs to connect in the background.
 * NULL with a message in err on failure (unreadable password file, TLS
 * files nats.c refuses). Does not set an event loop. */
natsOptions *nats_options_build(const struct publisher_options *o, struct nats_link *link,
				char *err, size_t errlen);

/* Connects (the first attempt happens now, on this thread; a server that
 * is down is retried in the background). 0, or -1 with a message in err
 * (bad options). */
int nats_link_start(struct nats_link *l, uv_loop_t *loop, const struct publisher_options *o,
		    const struct nats_link_handlers *handlers, void *arg, char *err,
		    size_t errlen);
/* Closes the connection and the handles; the loop then runs out. */
void nats_link_close(struct nats_link *l);

static inline bool nats_link_connected(const struct nats_link *l)
{
	return l->connected && !l->closing;
}
/* Asks nats.c now, not the state the loop last saw (which lags a
 * disconnect by one wake-up). */
bool nats_link_up_now(const struct nats_link *l);
static inline unsigned nats_link_gen(struct nats_link *l)
{
	return atomic_load(&l->gen);
}

/* Loop thread. A failure other than NATS_MAX_PAYLOAD marks the link as
 * disconnected until nats.c says otherwise. */
natsStatus nats_link_publish(struct nats_link *l, const char *subject, const void *data,
			     size_t len);
int64_t nats_link_max_payload(struct nats_link *l);
/* Bytes the client holds, not yet written to the socket. */
int nats_link_buffered(struct nats_link *l);
/* Starts natsConnection_FlushTimeout on a worker thread; false when one is
 * already in flight or the link is not connected. */
bool nats_link_flush_start(struct nats_link *l);
uint64_t nats_link_errors(struct nats_link *l);
void nats_link_count_error(struct nats_link *l);

#endif
