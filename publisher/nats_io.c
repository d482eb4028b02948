#include "nats_io.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

static void apply(struct nats_io *io);

static void async_cb(uv_async_t *a)
{
	apply(a->data);
}

int nats_io_init(struct nats_io *io, uv_loop_t *loop)
{
	memset(io, 0, sizeof(*io));
	io->loop = loop;
	io->loop_thread = pthread_self();
	io->sock = NATS_IO_NO_SOCK;
	pthread_mutex_init(&io->mu, NULL);
	int rc = uv_async_init(loop, &io->async, async_cb);
	if (rc != 0) {
		pthread_mutex_destroy(&io->mu);
		return rc;
	}
	io->async.data = io;
	io->async_open = true;
	return 0;
}

static void poll_closed(uv_handle_t *h)
{
	free(h);
}

static void poll_drop(struct nats_io *io)
{
	if (!io->poll)
		return;
	uv_close((uv_handle_t *)io->poll, poll_closed);
	io->poll = NULL;
	io->poll_events = 0;
}

void nats_io_close(struct nats_io *io)
{
	if (io->closing)
		return;
	io->closing = true;
	poll_drop(io);
	pthread_mutex_lock(&io->mu);
	io->async_open = false; /* nats.c threads may still call in */
	pthread_mutex_unlock(&io->mu);
	uv_close((uv_handle_t *)&io->async, NULL);
}

/* The socket is ready (or failed: then nats.c finds the error by reading,
 * and reconnects). The read may detach or replace the socket, so the
 * write half only runs while this handle is still the one polled. */
static void on_poll(uv_poll_t *p, int status, int events)
{
	struct nats_io *io = p->data;
	pthread_mutex_lock(&io->mu);
	natsConnection *nc = io->nc;
	pthread_mutex_unlock(&io->mu);
	if (!nc)
		return;
	if (status < 0 || (events & UV_READABLE))
		natsConnection_ProcessReadEvent(nc);
	if (status >= 0 && (events & UV_WRITABLE) && io->poll == p)
		natsConnection_ProcessWriteEvent(nc);
}

/* Makes the poll handle what nats.c wants now (loop thread only). */
static void apply(struct nats_io *io)
{
	if (io->closing)
		return;
	pthread_mutex_lock(&io->mu);
	natsSock sock = io->sock;
	unsigned gen = io->sock_gen;
	int want = (io->want_read ? UV_READABLE : 0) | (io->want_write ? UV_WRITABLE : 0);
	pthread_mutex_unlock(&io->mu);

	/* Dropped before a new handle exists: closing a poll handle forgets
	 * its fd number in epoll, which the new socket may have reused. */
	if (io->poll && (sock == NATS_IO_NO_SOCK || io->poll_gen != gen))
		poll_drop(io);
	if (!io->poll && sock != NATS_IO_NO_SOCK) {
		uv_poll_t *p = malloc(sizeof(*p));
		int rc = p ? uv_poll_init_socket(io->loop, p, sock) : UV_ENOMEM;
		if (rc != 0) {
			free(p);
			log_error("NATS: cannot poll socket %d: %s; the connection stalls until "
				  "nats.c gives up on it", (int)sock, uv_strerror(rc));
			return;
		}
		p->data = io;
		io->poll = p;
		io->poll_gen = gen;
		io->poll_events = 0;
	}
	if (!io->poll || want == io->poll_events)
		return;
	int rc = want ? uv_poll_start(io->poll, want, on_poll) : uv_poll_stop(io->poll);
	if (rc != 0)
		log_error("NATS: cannot change the socket's poll events: %s", uv_strerror(rc));
	else
		io->poll_events = want;
}

/* On the loop thread nats.c's request is applied at once (nats.c holds
 * its connection lock, and apply only touches libuv); from another thread
 * (reconnect, flush worker, ping timer) the loop is woken to apply it. */
static natsStatus changed(struct nats_io *io)
{
	if (pthread_equal(pthread_self(), io->loop_thread)) {
		apply(io);
		return NATS_OK;
	}
	pthread_mutex_lock(&io->mu);
	int rc = io->async_open ? uv_async_send(&io->async) : 0;
	pthread_mutex_unlock(&io->mu);
	return rc == 0 ? NATS_OK : NATS_ERR;
}

natsStatus nats_io_attach(struct nats_io *io, void **user_data, natsConnection *nc,
			  natsSock sock)
{
	pthread_mutex_lock(&io->mu);
	io->nc = nc;
	io->sock = sock;
	io->sock_gen++;
	/* nats.c asks for writes after attaching (its write flag starts
	 * clear on every connection) */
	io->want_read = true;
	io->want_write = false;
	pthread_mutex_unlock(&io->mu);
	*user_data = io;
	return changed(io);
}

static natsStatus want(void *user_data, bool *flag, bool add)
{
	struct nats_io *io = user_data;
	pthread_mutex_lock(&io->mu);
	*flag = add;
	pthread_mutex_unlock(&io->mu);
	return changed(io);
}

natsStatus nats_io_read(void *user_data, bool add)
{
	struct nats_io *io = user_data;
	return want(io, &io->want_read, add);
}

natsStatus nats_io_write(void *user_data, bool add)
{
	struct nats_io *io = user_data;
	return want(io, &io->want_write, add);
}

natsStatus nats_io_detach(void *user_data)
{
	struct nats_io *io = user_data;
	pthread_mutex_lock(&io->mu);
	io->nc = NULL; /* on_poll must not use a connection being destroyed */
	io->sock = NATS_IO_NO_SOCK;
	io->want_read = false;
	io->want_write = false;
	pthread_mutex_unlock(&io->mu);
	return changed(io);
}
