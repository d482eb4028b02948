#include "nats_link.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *last_error_text(natsConnection *nc, char *buf, size_t len)
{
	const char *text = NULL;
	natsStatus s = nc ? natsConnection_GetLastError(nc, &text) : NATS_OK;
	if (s != NATS_OK && text && *text)
		snprintf(buf, len, "%s", text);
	else if (s != NATS_OK)
		snprintf(buf, len, "%s", natsStatus_GetText(s));
	else
		snprintf(buf, len, "connection refused, reset or timed out");
	return buf;
}

static void link_wake(struct nats_link *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->async_mu);
	if (l->async_open)
		uv_async_send(&l->async);
	pthread_mutex_unlock(&l->async_mu);
}

/* ---- callbacks on nats.c's threads ---- */

static void on_connected(natsConnection *nc, void *closure)
{
	struct nats_link *l = closure;
	char url[256] = "";
	natsConnection_GetConnectedUrl(nc, url, sizeof(url));
	log_info("connected to NATS server %s", url);
	link_wake(l);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	struct nats_link *l = closure;
	char url[256] = "";
	natsConnection_GetConnectedUrl(nc, url, sizeof(url));
	log_info("reconnected to NATS server %s; publishing again from the first unconfirmed "
		 "record", url);
	link_wake(l);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
	struct nats_link *l = closure;
	char url[256] = "", why[256];
	if (l && atomic_load(&l->closing_now))
		return; /* our own close */
	natsConnection_GetConnectedUrl(nc, url, sizeof(url));
	log_warn("disconnected from NATS server %s (%s); the queue keeps what is not confirmed, "
		 "reconnecting", url[0] ? url : (l ? l->servers_text : "?"),
		 last_error_text(nc, why, sizeof(why)));
	link_wake(l);
}

static void on_closed(natsConnection *nc, void *closure)
{
	struct nats_link *l = closure;
	if (!l)
		return;
	atomic_store(&l->closed_by_nats, true);
	link_wake(l);
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
	struct nats_link *l = closure;
	char why[256];
	if (l)
		atomic_fetch_add(&l->nats_errors, 1);
	/* A permissions violation drops the message on the server while the
	 * connection stays up: it is a loss, so say so loudly. */
	log_error("NATS error from %s: %s (%s)%s", l ? l->servers_text : "the server",
		  natsStatus_GetText(err), last_error_text(nc, why, sizeof(why)),
		  err == NATS_NOT_PERMITTED
			  ? "; the server dropped a message this user may not publish: check the "
			    "user's publish permissions for the subject prefix"
			  : "");
}

/* Backoff with jitter between rounds over the server list: 100 ms, 200 ms,
 * ... up to 2 s, each time a random 50-100 % of that. Runs on nats.c's
 * reconnect thread, also while the first connect is retried. */
static int64_t reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
	struct nats_link *l = closure;
	static _Thread_local uint64_t rng;
	static atomic_uint_fast64_t last_log_ms;
	if (!rng)
		rng = mono_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&rng;
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	int shift = attempts > 1 ? attempts - 1 : 0;
	if (shift > 10)
		shift = 10;
	int64_t delay = (int64_t)NATS_RECONNECT_BASE_MS << shift;
	if (delay > NATS_RECONNECT_MAX_MS)
		delay = NATS_RECONNECT_MAX_MS;
	delay = delay / 2 + (int64_t)(rng % (uint64_t)(delay / 2 + 1));

	uint64_t now = mono_ms();
	if (attempts == 1 || now - atomic_load(&last_log_ms) >= 60000) {
		char why[256];
		atomic_store(&last_log_ms, now);
		log_warn("no NATS server reachable at %s (attempt %d: %s); retrying for ever, every "
			 "%d ms at most (records wait in the queue)",
			 l ? l->servers_text : "the configured servers", attempts,
			 last_error_text(nc, why, sizeof(why)), NATS_RECONNECT_MAX_MS);
	}
	return delay;
}

/* ---- options ---- */

#define SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

/* The host name all servers share, when it is a DNS name (nats.c checks
 * host names against DNS names only, and one name for all servers). */
static bool common_dns_host(const struct publisher_options *o, char *out, size_t len)
{
	out[0] = '\0';
	for (int i = 0; i < o->server_count; i++) {
		const char *h = strstr(o->servers[i], "://");
		h = h ? h + 3 : o->servers[i];
		const char *at = strchr(h, '@'); /* user:password@host */
		if (at)
			h = at + 1;
		if (*h == '[')
			return false; /* an IPv6 literal */
		size_t n = strcspn(h, ":/");
		if (n == 0 || n >= len)
			return false;
		if (i == 0) {
			memcpy(out, h, n);
			out[n] = '\0';
		} else if (strlen(out) != n || strncmp(out, h, n) != 0) {
			return false;
		}
	}
	if (!out[0] || strspn(out, "0123456789.") == strlen(out))
		return false; /* an IPv4 literal */
	return true;
}

static int read_password_file(const char *path, char *out, size_t outlen, char *err,
			      size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open --nats-password-file %s: %s", path,
			 strerror(errno));
		return -1;
	}
	ssize_t n = read(fd, out, outlen - 1);
	int e = errno;
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "cannot read --nats-password-file %s: %s", path, strerror(e));
		return -1;
	}
	out[n] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	if (!out[0]) {
		snprintf(err, errlen, "--nats-password-file %s is empty", path);
		return -1;
	}
	return 0;
}

static int nats_fail(natsStatus s, const char *what, const char *arg, char *err, size_t errlen)
{
	const char *text = nats_GetLastError(NULL);
	snprintf(err, errlen, "%s%s%s: %s", what, arg ? " " : "", arg ? arg : "",
		 text && *text ? text : natsStatus_GetText(s));
	return -1;
}

natsOptions *nats_options_build(const struct publisher_options *o, struct nats_link *link,
				char *err, size_t errlen)
{
	natsOptions *no = NULL;
	natsStatus s = natsOptions_Create(&no);
	if (s != NATS_OK) {
		nats_fail(s, "cannot create NATS options", NULL, err, errlen);
		return NULL;
	}
#define TRY(call, what, arg)                                         \
	do {                                                         \
		natsStatus _s = (call);                              \
		if (_s != NATS_OK) {                                 \
			nats_fail(_s, what, arg, err, errlen);       \
			goto fail;                                   \
		}                                                    \
	} while (0)
	TRY(natsOptions_SetServers(no, (const char **)o->servers, o->server_count),
	    "invalid --nats-address", o->nats_address);
	TRY(natsOptions_SetName(no, "ebpf-publisher"), "NATS options", NULL);
	/* Our queue is the buffer: nothing in nats.c's reconnect buffer, so a
	 * publish while disconnected fails (NATS_INSUFFICIENT_BUFFER) instead
	 * of being replayed after the reconnect ahead of our own resend. */
	TRY(natsOptions_SetReconnectBufSize(no, 0), "NATS options", NULL);
	TRY(natsOptions_SetAllowReconnect(no, true), "NATS options", NULL);
	TRY(natsOptions_SetMaxReconnect(no, -1), "NATS options", NULL);
	TRY(natsOptions_SetCustomReconnectDelay(no, reconnect_delay, link), "NATS options", NULL);
	TRY(natsOptions_SetRetryOnFailedConnect(no, true, on_connected, link), "NATS options",
	    NULL);
	/* notice a dead server (no RST, e.g. a host that went away) in ~30 s */
	TRY(natsOptions_SetPingInterval(no, 10000), "NATS options", NULL);
	TRY(natsOptions_SetMaxPingsOut(no, 3), "NATS options", NULL);
	if (link) {
		TRY(natsOptions_SetDisconnectedCB(no, on_disconnected, link), "NATS options", NULL);
		TRY(natsOptions_SetReconnectedCB(no, on_reconnected, link), "NATS options", NULL);
		TRY(natsOptions_SetClosedCB(no, on_closed, link), "NATS options", NULL);
		TRY(natsOptions_SetErrorHandler(no, on_error, link), "NATS options", NULL);
	}
	if (o->nats_username) {
		char password[1024];
		const char *pw = o->nats_password;
		if (o->nats_password_file) {
			if (read_password_file(o->nats_password_file, password, sizeof(password), err,
					       errlen) != 0)
				goto fail;
			pw = password;
		}
		s = natsOptions_SetUserInfo(no, o->nats_username, pw);
		memset(password, 0, sizeof(password));
		if (s != NATS_OK) {
			nats_fail(s, "NATS user", o->nats_username, err, errlen);
			goto fail;
		}
	}
	if (o->nats_creds) {
		if (access(o->nats_creds, R_OK) != 0) {
			snprintf(err, errlen, "cannot read --nats-creds %s: %s", o->nats_creds,
				 strerror(errno));
			goto fail;
		}
		TRY(natsOptions_SetUserCredentialsFromFiles(no, o->nats_creds, NULL),
		    "--nats-creds", o->nats_creds);
	}
	if (o->nats_tls) {
		TRY(natsOptions_SetSecure(no, true), "--nats-tls", NULL);
		/* nats.c 3.4.1 trusts no CA by default and checks no host name
		 * unless told: the system's bundle, and the servers' host name */
		const char *ca = o->nats_tls_ca;
		if (!ca && access(SYSTEM_CA_BUNDLE, R_OK) == 0)
			ca = SYSTEM_CA_BUNDLE;
		if (ca)
			TRY(natsOptions_LoadCATrustedCertificates(no, ca), "--nats-tls-ca", ca);
		char host[256];
		if (common_dns_host(o, host, sizeof(host)))
			TRY(natsOptions_SetExpectedHostname(no, host), "TLS host name", host);
		else if (link)
			log_warn("TLS: the servers in --nats-address are IP addresses or different "
				 "hosts, so only the certificate chain is checked, not the host name");
		if (o->nats_tls_cert)
			TRY(natsOptions_LoadCertificatesChain(no, o->nats_tls_cert, o->nats_tls_key),
			    "--nats-tls-cert/--nats-tls-key", o->nats_tls_cert);
	}
#undef TRY
	return no;
fail:
	natsOptions_Destroy(no);
	return NULL;
}

/* ---- the adapter ---- */

/* evLoop is our nats_link: every socket nats.c attaches is a new
 * connection (nats_link_gen), counted before nats.c calls it connected. */
static natsStatus link_attach(void **user_data, void *loop, natsConnection *nc, natsSock sock)
{
	struct nats_link *l = loop;
	atomic_fetch_add(&l->gen, 1);
	return nats_io_attach(&l->io, user_data, nc, sock);
}

/* ---- loop side ---- */

static void status_timer_cb(uv_timer_t *t);

static void link_check_status(struct nats_link *l)
{
	if (l->closing || !l->nc)
		return;
	natsConnStatus st = natsConnection_Status(l->nc);
	unsigned g = atomic_load(&l->gen);
	bool up = st == NATS_CONN_STATUS_CONNECTED;
	bool changed = false;
	if (up) {
		bool new_connection = g != l->connected_gen;
		if (new_connection && l->ever_connected)
			l->reconnects++;
		changed = !l->connected || new_connection;
		l->ever_connected = true;
		l->connected = true;
		l->connected_gen = g;
		uv_timer_stop(&l->status_timer);
	} else if (l->connected) {
		l->connected = false;
		changed = true;
	}
	if (!l->connected && !uv_is_active((uv_handle_t *)&l->status_timer))
		uv_timer_start(&l->status_timer, status_timer_cb, 1000, 1000);
	if (changed && l->handlers.state_changed)
		l->handlers.state_changed(l->arg);
}

static void status_timer_cb(uv_timer_t *t)
{
	link_check_status(t->data);
}

static int link_connect(struct nats_link *l, char *err, size_t errlen);

static void rebuild_cb(uv_timer_t *t)
{
	struct nats_link *l = t->data;
	if (l->closing)
		return;
	if (l->flushing) { /* the worker still uses l->nc */
		uv_timer_start(&l->rebuild_timer, rebuild_cb, 100, 0);
		return;
	}
	l->rebuild_pending = false;
	if (l->nc) {
		natsConnection_Destroy(l->nc);
		l->nc = NULL;
	}
	char err[512];
	if (link_connect(l, err, sizeof(err)) != 0) {
		log_error("NATS: %s; trying again in %d s", err, NATS_REBUILD_DELAY_MS / 1000);
		l->rebuild_pending = true;
		uv_timer_start(&l->rebuild_timer, rebuild_cb, NATS_REBUILD_DELAY_MS, 0);
	}
}

static void async_cb(uv_async_t *a)
{
	struct nats_link *l = a->data;
	if (l->closing)
		return;
	if (atomic_exchange(&l->closed_by_nats, false) && !l->rebuild_pending) {
		char why[256];
		log_error("the NATS connection to %s was closed (%s); making a new one in %d s",
			  l->servers_text, last_error_text(l->nc, why, sizeof(why)),
			  NATS_REBUILD_DELAY_MS / 1000);
		l->rebuild_pending = true;
		uv_timer_start(&l->rebuild_timer, rebuild_cb, NATS_REBUILD_DELAY_MS, 0);
	}
	link_check_status(l);
}

static int link_connect(struct nats_link *l, char *err, size_t errlen)
{
	/* The first attempt without nats.c's retry: a failure then says why
	 * (refused, TLS, authorization), which the background retry does not */
	natsStatus s = natsOptions_SetRetryOnFailedConnect(l->nopts, false, NULL, NULL);
	if (s == NATS_OK)
		s = natsConnection_Connect(&l->nc, l->nopts);
	if (s != NATS_OK) {
		const char *text = nats_GetLastError(NULL);
		log_warn("cannot connect to NATS at %s: %s; retrying in the background (records "
			 "wait in the queue)", l->servers_text,
			 text && *text ? text : natsStatus_GetText(s));
		l->nc = NULL;
		s = natsOptions_SetRetryOnFailedConnect(l->nopts, true, on_connected, l);
		if (s == NATS_OK)
			s = natsConnection_Connect(&l->nc, l->nopts);
	}
	if (s == NATS_OK) {
		char url[256] = "";
		natsConnection_GetConnectedUrl(l->nc, url, sizeof(url));
		log_info("connected to NATS server %s (max_payload %lld bytes)", url,
			 (long long)natsConnection_GetMaxPayload(l->nc));
	} else if (s != NATS_NOT_YET_CONNECTED) {
		const char *text = nats_GetLastError(NULL);
		snprintf(err, errlen, "cannot connect to %s: %s", l->servers_text,
			 text && *text ? text : natsStatus_GetText(s));
		l->nc = NULL;
		return -1;
	}
	link_check_status(l);
	return 0;
}

int nats_link_start(struct nats_link *l, uv_loop_t *loop, const struct publisher_options *o,
		    const struct nats_link_handlers *handlers, void *arg, char *err,
		    size_t errlen)
{
	memset(l, 0, sizeof(*l));
	l->loop = loop;
	l->opts = o;
	l->handlers = *handlers;
	l->arg = arg;
	size_t n = 0;
	for (int i = 0; i < o->server_count && n < sizeof(l->servers_text); i++)
		n += (size_t)snprintf(l->servers_text + n, sizeof(l->servers_text) - n, "%s%s",
				      i ? "," : "", o->servers[i]);

	l->nopts = nats_options_build(o, l, err, errlen);
	if (!l->nopts)
		return -1;
	natsStatus s = natsOptions_SetEventLoop(l->nopts, l, link_attach, nats_io_read,
						nats_io_write, nats_io_detach);
	/* Without this, nats.c runs a flusher thread that every publish wakes
	 * (a futex wake and two context switches each millisecond, a fifth of
	 * the publisher's CPU at 400,000 events/s). With it, a publish on the
	 * loop thread only arms the socket's write event, and the loop writes
	 * the whole batch once drain_batch returns. */
	if (s == NATS_OK)
		s = natsOptions_SetSendAsap(l->nopts, true);
	if (s != NATS_OK) {
		nats_fail(s, "NATS event loop", NULL, err, errlen);
		natsOptions_Destroy(l->nopts);
		l->nopts = NULL;
		return -1;
	}
	int rc = nats_io_init(&l->io, loop);
	if (rc != 0) {
		snprintf(err, errlen, "setting up the NATS socket's poll: %s", uv_strerror(rc));
		natsOptions_Destroy(l->nopts);
		l->nopts = NULL;
		return -1;
	}
	pthread_mutex_init(&l->async_mu, NULL);
	uv_async_init(loop, &l->async, async_cb);
	l->async.data = l;
	l->async_open = true;
	uv_timer_init(loop, &l->rebuild_timer);
	l->rebuild_timer.data = l;
	uv_timer_init(loop, &l->status_timer);
	l->status_timer.data = l;

	if (link_connect(l, err, errlen) != 0) {
		/* not fatal: the options were fine, the client could not start */
		log_error("NATS: %s; trying again in %d s", err, NATS_REBUILD_DELAY_MS / 1000);
		l->rebuild_pending = true;
		uv_timer_start(&l->rebuild_timer, rebuild_cb, NATS_REBUILD_DELAY_MS, 0);
	}
	return 0;
}

static void destroy_connection(struct nats_link *l)
{
	if (l->nc) {
		natsConnection_Destroy(l->nc); /* detaches from l->io */
		l->nc = NULL;
	}
	nats_io_close(&l->io);
	if (l->nopts) {
		natsOptions_Destroy(l->nopts);
		l->nopts = NULL;
	}
}

void nats_link_close(struct nats_link *l)
{
	if (l->closing)
		return;
	l->closing = true;
	atomic_store(&l->closing_now, true);
	l->connected = false;
	pthread_mutex_lock(&l->async_mu);
	l->async_open = false;
	pthread_mutex_unlock(&l->async_mu);
	uv_close((uv_handle_t *)&l->async, NULL);
	uv_close((uv_handle_t *)&l->rebuild_timer, NULL);
	uv_close((uv_handle_t *)&l->status_timer, NULL);
	/* kicks a flush in flight out; the connection itself goes when the
	 * worker is done with it */
	if (l->nc)
		natsConnection_Close(l->nc);
	if (!l->flushing)
		destroy_connection(l);
}

natsStatus nats_link_publish(struct nats_link *l, const char *subject, const void *data,
			     size_t len)
{
	if (!l->nc)
		return NATS_CONNECTION_CLOSED;
	natsStatus s = natsConnection_Publish(l->nc, subject, data, (int)len);
	if (s != NATS_OK && s != NATS_MAX_PAYLOAD) {
		l->connected = false; /* until nats.c says it is up (async or status timer) */
		if (!uv_is_active((uv_handle_t *)&l->status_timer))
			uv_timer_start(&l->status_timer, status_timer_cb, 100, 1000);
	}
	return s;
}

bool nats_link_up_now(const struct nats_link *l)
{
	return l->nc && !l->closing && natsConnection_Status(l->nc) == NATS_CONN_STATUS_CONNECTED;
}

int64_t nats_link_max_payload(struct nats_link *l)
{
	return l->nc ? natsConnection_GetMaxPayload(l->nc) : 0;
}

int nats_link_buffered(struct nats_link *l)
{
	return l->nc ? natsConnection_Buffered(l->nc) : 0;
}

static void flush_work(uv_work_t *w)
{
	struct nats_link *l = w->data;
	/* A flush started while nats.c reconnects cannot send its PING (the
	 * reconnect buffer is 0) and would wait for the whole timeout. */
	if (natsConnection_Status(l->nc) != NATS_CONN_STATUS_CONNECTED) {
		l->flush_status = NATS_CONNECTION_DISCONNECTED;
	} else {
		l->flush_status = natsConnection_FlushTimeout(l->nc, NATS_FLUSH_TIMEOUT_MS);
		/* the same for a flush that raced with a disconnect */
		if (l->flush_status == NATS_TIMEOUT &&
		    natsConnection_Status(l->nc) != NATS_CONN_STATUS_CONNECTED)
			l->flush_status = NATS_CONNECTION_DISCONNECTED;
	}
	l->flush_gen_after = atomic_load(&l->gen);
}

static void flush_after(uv_work_t *w, int status)
{
	struct nats_link *l = w->data;
	l->flushing = false;
	if (l->closing) {
		destroy_connection(l);
		return;
	}
	natsStatus s = status == 0 ? l->flush_status : NATS_ERR;
	if (l->handlers.flush_done)
		l->handlers.flush_done(l->arg, s, l->flush_gen_after);
}

bool nats_link_flush_start(struct nats_link *l)
{
	if (l->flushing || !nats_link_connected(l) || !l->nc)
		return false;
	l->work.data = l;
	if (uv_queue_work(l->loop, &l->work, flush_work, flush_after) != 0)
		return false;
	l->flushing = true;
	return true;
}

uint64_t nats_link_errors(struct nats_link *l)
{
	return atomic_load(&l->nats_errors);
}

void nats_link_count_error(struct nats_link *l)
{
	atomic_fetch_add(&l->nats_errors, 1);
}
