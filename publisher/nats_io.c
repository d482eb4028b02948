#include "nats_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* What nats.c gets as user_data: one per natsConnection, so a late call
 * for a connection that is gone (a detach after a rebuilt connection
 * attached) changes nothing. Freed at its detach. */
struct nats_io_conn {
	struct nats_io *io;
	natsConnection *nc;
};

/* The poll handle and the descriptor it polls: a dup of nats.c's socket.
 * libuv removes a closed or stopped poll handle's fd *number* from epoll;
 * nats.c closes its socket before we drop the handle, and the number may
 * by then name another descriptor of the loop (the queue's doorbell):
 * polling our own dup, the number stays ours until the handle is gone. */
struct nats_io_poll {
	uv_poll_t handle; /* first: the handle's address is the struct's */
	int fd;
	struct nats_io *io;
};

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
	struct nats_io_poll *p = (struct nats_io_poll *)h;
	close(p->fd);
	free(p);
}

static void poll_drop(struct nats_io *io)
{
	if (!io->poll)
		return;
	uv_close((uv_handle_t *)&io->poll->handle, poll_closed);
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
static void on_poll(uv_poll_t *h, int status, int events)
{
	struct nats_io_poll *p = (struct nats_io_poll *)h;
	struct nats_io *io = p->io;
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

static struct nats_io_poll *poll_new(struct nats_io *io, natsSock sock)
{
	struct nats_io_poll *p = malloc(sizeof(*p));
	if (!p) {
		log_error("NATS: cannot poll socket %d: out of memory", (int)sock);
		return NULL;
	}
	p->io = io;
	p->fd = fcntl(sock, F_DUPFD_CLOEXEC, 0);
	if (p->fd < 0) {
		log_error("NATS: cannot poll socket %d: dup: %s", (int)sock, strerror(errno));
		free(p);
		return NULL;
	}
	int rc = uv_poll_init_socket(io->loop, &p->handle, p->fd);
	if (rc != 0) {
		log_error("NATS: cannot poll socket %d: %s", (int)sock, uv_strerror(rc));
		close(p->fd);
		free(p);
		return NULL;
	}
	return p;
}

/* Makes the poll handle what nats.c wants now (loop thread only). A
 * failure is logged and leaves the connection unpolled; nats.c's pings
 * then find it dead and it reconnects. */
static void apply(struct nats_io *io)
{
	if (io->closing)
		return;
	pthread_mutex_lock(&io->mu);
	natsSock sock = io->sock;
	unsigned gen = io->sock_gen;
	int want = (io->want_read ? UV_READABLE : 0) | (io->want_write ? UV_WRITABLE : 0);
	pthread_mutex_unlock(&io->mu);

	if (io->poll && (sock == NATS_IO_NO_SOCK || io->poll_gen != gen))
		poll_drop(io);
	if (!io->poll && sock != NATS_IO_NO_SOCK && io->failed_gen != gen) {
		io->poll = poll_new(io, sock);
		if (!io->poll) {
			io->failed_gen = gen; /* not again for this socket */
			return;
		}
		io->poll_gen = gen;
		io->poll_events = 0;
	}
	if (!io->poll || want == io->poll_events)
		return;
	int rc = want ? uv_poll_start(&io->poll->handle, want, on_poll)
		      : uv_poll_stop(&io->poll->handle);
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
	struct nats_io_conn *c = *user_data;
	if (!c) { /* the connection's first attach; a reconnect keeps it */
		c = malloc(sizeof(*c));
		if (!c)
			return NATS_NO_MEMORY;
		c->io = io;
		c->nc = nc;
		*user_data = c;
	}
	pthread_mutex_lock(&io->mu);
	io->nc = nc;
	io->sock = sock;
	io->sock_gen++;
	/* nats.c asks for writes after attaching (its write flag starts
	 * clear on every connection) */
	io->want_read = true;
	io->want_write = false;
	pthread_mutex_unlock(&io->mu);
	return changed(io);
}

/* flag of the connection's wanted state, if it is still the attached one */
static natsStatus want(struct nats_io_conn *c, bool read, bool add)
{
	struct nats_io *io = c->io;
	pthread_mutex_lock(&io->mu);
	bool current = io->nc == c->nc;
	if (current)
		*(read ? &io->want_read : &io->want_write) = add;
	pthread_mutex_unlock(&io->mu);
	return current ? changed(io) : NATS_OK;
}

natsStatus nats_io_read(void *user_data, bool add)
{
	return want(user_data, true, add);
}

natsStatus nats_io_write(void *user_data, bool add)
{
	return want(user_data, false, add);
}

natsStatus nats_io_detach(void *user_data)
{
	struct nats_io_conn *c = user_data;
	struct nats_io *io = c->io;
	pthread_mutex_lock(&io->mu);
	bool current = io->nc == c->nc;
	if (current) {
		io->nc = NULL; /* on_poll must not use a connection being destroyed */
		io->sock = NATS_IO_NO_SOCK;
		io->want_read = false;
		io->want_write = false;
	}
	pthread_mutex_unlock(&io->mu);
	free(c);
	return current ? changed(io) : NATS_OK;
}
