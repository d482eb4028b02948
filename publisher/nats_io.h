/* The publisher's libuv adapter for nats.c (natsOptions_SetEventLoop): the
 * NATS socket is polled by our loop, so a publish never blocks it.
 *
 * Why not nats.c's own adapter (nats/adapters/libuv.h): it queues every
 * add/remove request made off the loop thread and replays the queue in
 * order, but on the loop thread it checks the queue's head without the
 * lock, and it starts each new socket with read interest only. Under a
 * reconnect racing publishes and a flush, a write request could be lost:
 * nats.c then held 8 MB it never wrote, every flush timed out, and it did
 * not notice the server going away (found by tests/pipeline's outage test,
 * about one run in fifteen). Here nats.c's callbacks only record the state
 * it wants (which socket, read, write) under a mutex, and the loop thread
 * makes one uv_poll handle match that state. A request cannot be lost or
 * replayed out of order: the loop only ever applies the latest state.
 * (nats.c's adapter also refuses a first attach made off the loop thread,
 * which is where nats.c makes it when a server that was down at start
 * comes up; this one takes an attach from any thread.)
 */
#ifndef EBPF_PUBLISHER_NATS_IO_H
#define EBPF_PUBLISHER_NATS_IO_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdbool.h>
#include <uv.h>

/* natsSock is an int on Linux; nats.c's own "invalid" macro is private. */
#define NATS_IO_NO_SOCK ((natsSock)-1)

struct nats_io_poll;

struct nats_io {
	uv_loop_t *loop;
	pthread_t loop_thread;

	/* what nats.c wants, under mu (any thread) */
	pthread_mutex_t mu;
	natsConnection *nc;
	natsSock sock;      /* NATS_IO_NO_SOCK: detached */
	unsigned sock_gen;  /* one more at every attach */
	bool want_read, want_write;
	bool async_open;    /* false once closing: nothing to wake */

	/* what the loop has (loop thread only) */
	uv_async_t async;
	struct nats_io_poll *poll; /* NULL: none */
	unsigned poll_gen;  /* the sock_gen it polls */
	unsigned failed_gen; /* a socket that could not be polled: not retried */
	int poll_events;    /* UV_READABLE | UV_WRITABLE as started */
	bool closing;
};

/* On the loop thread, before the first connect. 0 or a libuv error. */
int nats_io_init(struct nats_io *io, uv_loop_t *loop);
/* Closes the handles (loop thread); nats.c must be done with it first
 * (natsConnection_Destroy). */
void nats_io_close(struct nats_io *io);

/* The callbacks for natsOptions_SetEventLoop. nats_io_attach is called by
 * the publisher's own attach callback (which counts connections); it puts
 * a per-connection context in *user_data, which the others get back, so a
 * late call for a connection that is gone changes nothing. */
natsStatus nats_io_attach(struct nats_io *io, void **user_data, natsConnection *nc,
			  natsSock sock);
natsStatus nats_io_read(void *user_data, bool add);
natsStatus nats_io_write(void *user_data, bool add);
natsStatus nats_io_detach(void *user_data);

#endif
