/* ebpf-sub: subscribes to ebpf-extractor events on NATS, prints one JSON
 * object per message and line (sub/json.c does the conversion).
 *
 * Threads: nats.c delivers every subscription's messages on one library
 * thread (global message delivery, so lines keep the order the server sent
 * them in); that thread converts and writes. The main thread only waits, in
 * sigtimedwait, for a signal: SIGINT/SIGTERM/SIGHUP from outside, or
 * SIGUSR1 that the delivery thread sends when it is done (--count reached,
 * stdout closed, a write error). No polling: idle means asleep. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "json.h"
#include "log.h"
#include "options.h"

#define PENDING_MSGS_LIMIT 1000000
#define PENDING_BYTES_LIMIT (1 << 30)
#define RECONNECT_WAIT_MS 1000

struct sub_state {
	pthread_mutex_t lock;
	/* Under lock: */
	struct jbuf out;
	struct mp_json_options jopts;
	uint64_t printed;
	bool done;
	int exit_code;
	int subs_open;            /* subscriptions whose on-complete callback is due */
	pthread_cond_t complete;  /* signalled when subs_open drops */
	/* Written by library threads, read by main: */
	atomic_llong last_msg_ns; /* CLOCK_MONOTONIC of the last message */
	atomic_bool closing;      /* we are shutting down: a closed connection is ours */
	/* Read-only after start: */
	uint64_t count;
	const char *servers_text;
};

static struct sub_state state = { .lock = PTHREAD_MUTEX_INITIALIZER,
				  .complete = PTHREAD_COND_INITIALIZER };

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Called with the lock held: stop printing and wake the main thread. */
static void finish_locked(struct sub_state *st, int code)
{
	if (st->done)
		return;
	st->done = true;
	st->exit_code = code;
	kill(getpid(), SIGUSR1);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void on_message(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	struct sub_state *st = closure;
	atomic_store(&st->last_msg_ns, (long long)mono_ns());
	pthread_mutex_lock(&st->lock);
	if (st->done)
		goto out;
	const char *subject = natsMsg_GetSubject(msg);
	const uint8_t *data = (const uint8_t *)natsMsg_GetData(msg);
	int len = natsMsg_GetDataLength(msg);
	st->jopts.subject = subject;
	jbuf_reset(&st->out);
	enum mp_json_result r = mp_to_json(data, len > 0 ? (size_t)len : 0, &st->jopts, &st->out);
	if (r == MP_JSON_NOMEM) {
		log_error("out of memory converting a %d-byte message on '%s'; skipped", len,
			  subject);
		goto out;
	}
	int err = write_all(STDOUT_FILENO, st->out.data, st->out.len);
	if (err == EPIPE) {
		/* The reader went away (| head): that is how we are told to stop. */
		finish_locked(st, 0);
		goto out;
	}
	if (err) {
		log_error("writing to stdout: %s", strerror(err));
		finish_locked(st, 1);
		goto out;
	}
	/* Do not keep a block's 8 MB of hex around after it went by. */
	if (st->out.cap > (64u << 20))
		jbuf_free(&st->out);
	st->printed++;
	if (st->count && st->printed >= st->count)
		finish_locked(st, 0);
out:
	pthread_mutex_unlock(&st->lock);
	natsMsg_Destroy(msg);
}

/* nats.c calls this once a closed subscription's last message has been
 * dispatched (on_message has returned for good). */
static void on_subscription_complete(void *closure)
{
	struct sub_state *st = closure;
	pthread_mutex_lock(&st->lock);
	st->subs_open--;
	pthread_cond_broadcast(&st->complete);
	pthread_mutex_unlock(&st->lock);
}

/* Waits (a bounded time) until every destroyed subscription is complete.
 * Besides making sure on_message no longer runs, this matters for nats.c
 * 3.4.1: the delivery worker frees a subscription's close message through
 * the library's garbage-collector thread, and nats_CloseAndWait stops that
 * thread first; if the worker gets to the close message after that, the
 * message is never freed (LeakSanitizer reports it, and a SANITIZE build
 * then exits 23). */
static void wait_subscriptions_complete(struct sub_state *st, int timeout_ms)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&st->lock);
	while (st->subs_open > 0)
		if (pthread_cond_timedwait(&st->complete, &st->lock, &deadline) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&st->lock);
}

static void connected_url(natsConnection *nc, char *buf, size_t len)
{
	if (natsConnection_GetConnectedUrl(nc, buf, len) != NATS_OK || buf[0] == '\0')
		snprintf(buf, len, "the NATS server");
}

static void on_connected(natsConnection *nc, void *closure)
{
	char url[256];
	connected_url(nc, url, sizeof(url));
	log_info("connected to %s", url);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
	struct sub_state *st = closure;
	if (atomic_load(&st->closing))
		return;
	const char *why = NULL;
	natsConnection_GetLastError(nc, &why);
	log_warn("disconnected from NATS%s%s; reconnecting to %s until it is back",
		 why && why[0] ? ": " : "", why && why[0] ? why : "", st->servers_text);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	char url[256];
	connected_url(nc, url, sizeof(url));
	log_info("reconnected to %s", url);
}

static void on_closed(natsConnection *nc, void *closure)
{
	struct sub_state *st = closure;
	if (atomic_load(&st->closing))
		return;
	/* Reconnects are unlimited: only a fatal error closes the connection. */
	const char *why = NULL;
	natsConnection_GetLastError(nc, &why);
	log_error("the NATS connection was closed%s%s", why && why[0] ? ": " : "",
		  why && why[0] ? why : "");
	pthread_mutex_lock(&st->lock);
	finish_locked(st, 1);
	pthread_mutex_unlock(&st->lock);
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
	if (err == NATS_SLOW_CONSUMER && sub) {
		int64_t dropped = 0;
		natsSubscription_GetDropped(sub, &dropped);
		log_warn("messages on '%s' dropped: stdout is not keeping up (%lld dropped so far)",
			 natsSubscription_GetSubject(sub), (long long)dropped);
		return;
	}
	log_warn("NATS: %s%s%s", natsStatus_GetText(err), sub ? " on " : "",
		 sub ? natsSubscription_GetSubject(sub) : "");
}

/* nats.c's last error text without its "(file.c:123): " prefix; NULL if none. */
static const char *nats_error_text(void)
{
	const char *text = nats_GetLastError(NULL);
	if (text && text[0] == '(') {
		const char *end = strstr(text, "): ");
		if (end)
			text = end + 3;
	}
	return text && text[0] ? text : NULL;
}

/* "<status text>" or "<status text>: <last error>" when that says more. */
static const char *describe(natsStatus s, char *buf, size_t len)
{
	const char *status = natsStatus_GetText(s);
	const char *text = nats_error_text();
	if (text && strcmp(text, status) != 0)
		snprintf(buf, len, "%s: %s", status, text);
	else
		snprintf(buf, len, "%s", status);
	return buf;
}

/* A nats.c failure during setup: its status and the library's last error. */
static int setup_failed(const char *what, natsStatus s)
{
	char why[512];
	log_error("%s: %s", what, describe(s, why, sizeof(why)));
	return 1;
}

static bool readable(const char *path, const char *flag)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		log_error("%s '%s': %s", flag, path, strerror(errno));
		return false;
	}
	fclose(f);
	return true;
}

static natsStatus make_options(const struct sub_options *o, natsOptions **out)
{
	natsOptions *no = NULL;
	natsStatus s = natsOptions_Create(&no);
	if (s == NATS_OK)
		s = natsOptions_SetServers(no, (const char **)o->servers, o->server_count);
	if (s == NATS_OK)
		s = natsOptions_SetName(no, "ebpf-sub");
	if (s == NATS_OK && o->user)
		s = natsOptions_SetUserInfo(no, o->user, o->password);
	if (s == NATS_OK && o->creds)
		s = natsOptions_SetUserCredentialsFromFiles(no, o->creds, NULL);
	if (s == NATS_OK && o->tls)
		s = natsOptions_SetSecure(no, true);
	if (s == NATS_OK && o->tls_ca)
		s = natsOptions_LoadCATrustedCertificates(no, o->tls_ca);
	if (s == NATS_OK && o->tls_cert)
		s = natsOptions_LoadCertificatesChain(no, o->tls_cert, o->tls_key);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(no, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(no, RECONNECT_WAIT_MS);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(no, on_disconnected, &state);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(no, on_reconnected, &state);
	if (s == NATS_OK)
		s = natsOptions_SetClosedCB(no, on_closed, &state);
	if (s == NATS_OK)
		s = natsOptions_SetErrorHandler(no, on_error, &state);
	if (s == NATS_OK)
		s = natsOptions_UseGlobalMessageDelivery(no, true);
	if (s != NATS_OK) {
		natsOptions_Destroy(no);
		return s;
	}
	*out = no;
	return NATS_OK;
}

/* Waits for the end: returns the exit status. */
static int wait_for_end(const struct sub_options *o, const sigset_t *set)
{
	int64_t timeout_ns = (int64_t)(o->timeout_s * 1e9);
	for (;;) {
		int sig;
		if (timeout_ns > 0) {
			int64_t deadline = (int64_t)atomic_load(&state.last_msg_ns) + timeout_ns;
			int64_t now = mono_ns();
			if (now >= deadline) {
				log_error("nothing received for %g s (--timeout)", o->timeout_s);
				return 1;
			}
			int64_t left = deadline - now;
			struct timespec ts = { .tv_sec = left / 1000000000, .tv_nsec = left % 1000000000 };
			sig = sigtimedwait(set, NULL, &ts);
		} else {
			sig = sigwaitinfo(set, NULL);
		}
		if (sig < 0)
			continue; /* EAGAIN (deadline: checked above) or EINTR */
		pthread_mutex_lock(&state.lock);
		int code = -1;
		if (sig != SIGUSR1)
			finish_locked(&state, 128 + sig); /* printing stops here */
		if (state.done)
			code = state.exit_code;
		pthread_mutex_unlock(&state.lock);
		if (code >= 0)
			return code;
	}
}

int main(int argc, char **argv)
{
	log_init("ebpf-sub", LOG_INFO);
	struct sub_options o;
	enum sub_options_result pr = sub_options_parse(argc, argv, &o);
	if (pr != SUB_OPTIONS_RUN) {
		sub_options_free(&o);
		return pr == SUB_OPTIONS_EXIT_OK ? 0 : 2;
	}
	if ((o.creds && !readable(o.creds, "--nats-creds")) ||
	    (o.tls_ca && !readable(o.tls_ca, "--nats-tls-ca")) ||
	    (o.tls_cert && !readable(o.tls_cert, "--nats-tls-cert")) ||
	    (o.tls_key && !readable(o.tls_key, "--nats-tls-key"))) {
		sub_options_free(&o);
		return 1;
	}

	/* A closed pipe is EPIPE from write(), handled where we write. */
	signal(SIGPIPE, SIG_IGN);
	/* Before nats.c starts threads, so that every thread inherits the
	 * mask and only sigtimedwait in main takes these. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	char servers_text[1024] = "";
	for (int i = 0; i < o.server_count; i++) {
		size_t used = strlen(servers_text);
		snprintf(servers_text + used, sizeof(servers_text) - used, "%s%s", i ? "," : "",
			 o.servers[i]);
	}
	state.servers_text = servers_text;
	state.count = o.count;
	state.jopts.subject_key = o.subject_key;
	state.jopts.no_payload = o.no_payload;
	jbuf_init(&state.out);
	atomic_store(&state.last_msg_ns, (long long)mono_ns());

	int code = 1;
	natsOptions *nopts = NULL;
	natsConnection *nc = NULL;
	natsSubscription *subs[SUB_MAX_SUBJECTS] = { 0 };
	natsStatus s = nats_Open(-1);
	if (s != NATS_OK) {
		setup_failed("cannot start the NATS library", s);
		goto out;
	}
	s = make_options(&o, &nopts);
	if (s != NATS_OK) {
		setup_failed("NATS options", s);
		goto out;
	}
	/* A first attempt without retry tells us why it failed. */
	s = natsConnection_Connect(&nc, nopts);
	bool connected = s == NATS_OK;
	if (connected) {
		on_connected(nc, &state);
	} else if (s == NATS_INVALID_ARG || s == NATS_ADDRESS_MISSING) {
		/* nats.c parses the addresses only here: still a bad flag. */
		const char *why = nats_error_text();
		fprintf(stderr, "ebpf-sub: --nats-address: '%s' is not a list of NATS server "
			"addresses%s%s%s\n%s\n", servers_text, why ? " (" : "", why ? why : "",
			why ? ")" : "", sub_usage_line);
		code = 2;
		goto out;
	} else if (s == NATS_CONNECTION_AUTH_FAILED || s == NATS_NOT_PERMITTED ||
		   s == NATS_SECURE_CONNECTION_WANTED || s == NATS_SECURE_CONNECTION_REQUIRED ||
		   s == NATS_SSL_ERROR) {
		/* The server is there and refuses us: retrying will not help. */
		setup_failed("cannot connect to NATS", s);
		goto out;
	} else {
		/* Down or unreachable: keep trying in the background. */
		char why[512];
		log_warn("cannot reach NATS at %s (%s); retrying every %d ms", servers_text,
			 describe(s, why, sizeof(why)), RECONNECT_WAIT_MS);
		nc = NULL;
		s = natsOptions_SetRetryOnFailedConnect(nopts, true, on_connected, &state);
		if (s == NATS_OK)
			s = natsConnection_Connect(&nc, nopts);
		connected = s == NATS_OK;
		if (connected) {
			on_connected(nc, &state);
		} else if (s != NATS_NOT_YET_CONNECTED) {
			setup_failed("cannot connect to NATS", s);
			goto out;
		}
	}
	for (int i = 0; i < o.subject_count; i++) {
		s = natsConnection_Subscribe(&subs[i], nc, o.subjects[i], on_message, &state);
		if (s == NATS_OK)
			s = natsSubscription_SetPendingLimits(subs[i], PENDING_MSGS_LIMIT,
							      PENDING_BYTES_LIMIT);
		if (s == NATS_OK) {
			pthread_mutex_lock(&state.lock);
			state.subs_open++;
			pthread_mutex_unlock(&state.lock);
			s = natsSubscription_SetOnCompleteCB(subs[i], on_subscription_complete,
							     &state);
			if (s != NATS_OK) {
				pthread_mutex_lock(&state.lock);
				state.subs_open--;
				pthread_mutex_unlock(&state.lock);
			}
		}
		if (s != NATS_OK) {
			setup_failed(o.subjects[i], s);
			goto out;
		}
	}
	char subjects_text[1024] = "";
	for (int i = 0; i < o.subject_count; i++) {
		size_t used = strlen(subjects_text);
		snprintf(subjects_text + used, sizeof(subjects_text) - used, "%s%s", i ? " " : "",
			 o.subjects[i]);
	}
	if (connected) {
		/* A round trip: once it is back the server has our subscriptions
		 * (tests wait for this line before they publish). */
		s = natsConnection_FlushTimeout(nc, 5000);
		if (s == NATS_OK)
			log_info("subscribed to %s", subjects_text);
		else
			log_warn("subscribing to %s: no answer from the server yet (%s)",
				 subjects_text, natsStatus_GetText(s));
	} else {
		log_info("will subscribe to %s once connected", subjects_text);
	}
	code = wait_for_end(&o, &set);
	/* A second Ctrl-C while we shut down ends us at once. */
	sigdelset(&set, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

out:
	atomic_store(&state.closing, true);
	pthread_mutex_lock(&state.lock);
	state.done = true; /* no more output from the delivery thread */
	pthread_mutex_unlock(&state.lock);
	int64_t dropped_total = 0;
	for (int i = 0; i < o.subject_count; i++) {
		if (!subs[i])
			continue;
		int64_t dropped = 0;
		if (natsSubscription_GetDropped(subs[i], &dropped) == NATS_OK)
			dropped_total += dropped;
		natsSubscription_Destroy(subs[i]);
	}
	wait_subscriptions_complete(&state, 2000);
	if (dropped_total > 0)
		log_warn("%lld messages were dropped because stdout did not keep up",
			 (long long)dropped_total);
	natsConnection_Destroy(nc);
	natsOptions_Destroy(nopts);
	/* Wait for nats.c's threads, so none runs on_message after this. */
	nats_CloseAndWait(2000);
	jbuf_free(&state.out);
	sub_options_free(&o);
	return code;
}
