/* What the full-pipeline tests share: the test tracee fires, ebpf-collector
 * (as nobody with CAP_BPF and CAP_PERFMON, through tests/e2e/harness) writes
 * the shared-memory queue, ebpf-publisher (as another unprivileged uid, no
 * capabilities) publishes to a real nats-server on a free loopback port
 * (tests/publisher_e2e/pe), and the test reads what arrived: from a
 * JetStream stream or from core NATS subscriptions, decoded with msgpack-c
 * and handed, in order, to a callback.
 *
 * docs/events.md is read at run time: every key of every message must be
 * documented for its event with the MessagePack type the document names,
 * and every documented key (flags aside) must be there. */
#ifndef EBPF_PIPELINE_H
#define EBPF_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <msgpack.h>
#include <nats/nats.h>

#include "harness.h"
#include "pe.h"

#define PL_MAX_PUBLISHERS 8

/* One run of ebpf-publisher: its stats carry its pid and come after its
 * start. */
struct pl_publisher_run {
	pid_t pid;
	uint64_t start_ns;
};

/* One environment: scratch dir, queue, nats-server, collector, publisher. */
struct pl {
	struct e2e t;        /* scratch dir, queue dir, tracee copy, collector */
	struct pe_env pe;    /* pe.c's view of the same scratch dir */
	struct pe_nats nats;
	bool nats_up;
	natsConnection *nc;  /* the test's own connection (reading) */
	pid_t publisher;
	char publisher_log[300];
	char publisher_ready[300];
	char node[128];      /* --node-name */
	char prefix[160];    /* btc.<node as a subject token> */
	uint64_t stream_id;  /* the queue's, from the publisher's ready file */
	uint64_t collector_start_ns, publisher_start_ns;
	/* every publisher started, in order (a test may kill and restart it) */
	struct pl_publisher_run publisher_runs[PL_MAX_PUBLISHERS];
	unsigned publisher_run_count;
	pid_t tracee;        /* a tracee started by pl_tracee_spawn, still running */
	char tracee_log[400];
};

/* nats-server config giving room for a 4,000,000-byte payload. */
#define PL_NATS_CONF "max_payload: 5242880\n"

/* Skips loudly (or fails with REQUIRE_BPF=1) without eBPF privileges. */
void pl_setup(struct pl *p, const char *node_name);
void pl_teardown(struct pl *p);

/* nats-server on a free loopback port with PL_NATS_CONF, optionally with
 * JetStream (file storage in the scratch dir); connects p->nc. */
void pl_start_nats(struct pl *p, bool jetstream);
/* (Re)connects p->nc to p's server (a new connection after a restart);
 * asserts the server's max_payload. */
void pl_connect(struct pl *p);

/* ebpf-collector as nobody with exactly CAP_BPF+CAP_PERFMON on the tracee
 * copy and p's queue, with extra arguments; waits until every requested
 * probe is attached and returns how many are. */
int pl_start_collector(struct pl *p, const char *const extra[]);
/* SIGTERM; returns its exit status. */
int pl_stop_collector(struct pl *p);

/* ebpf-publisher as uid daemon, group nogroup (the queue's group), no
 * capabilities, with --node-name, --nats-address, p's queue and extra
 * arguments; waits for its ready file and reads the stream_id from it. */
void pl_start_publisher(struct pl *p, const char *const extra[]);
/* SIGTERM (the publisher drains the queue first); returns its exit status. */
int pl_stop_publisher(struct pl *p);
/* SIGKILL, mid-stream; waits until it is gone. */
void pl_kill_publisher(struct pl *p);
void pl_dump_logs(const struct pl *p);

/* Runs the tracee copy with argv (after the program name) to completion;
 * its stdout into *out (malloc'd). Returns its pid; asserts exit 0. */
pid_t pl_run_tracee(struct pl *p, const char *const args[], char **out, int timeout_ms);
/* The same in two steps: starts the tracee (p->tracee; pl_teardown kills
 * it if it still runs) ... */
pid_t pl_tracee_spawn(struct pl *p, const char *const args[]);
/* ... and, after sending it sig (none when 0: it ends by itself), waits
 * for its exit; asserts exit 0, its stdout into *out (malloc'd) if out. */
void pl_tracee_finish(struct pl *p, int sig, char **out, int timeout_ms);
/* The "fired <event> N" count in a tracee's output, -1 if absent. */
int64_t pl_fired(const char *out, enum tracepoint_id tp);

/* CapEff of a process, as the hex text of /proc/PID/status. */

/* ---- messages ---- */

struct pl_msg {
	const char *subject;
	const msgpack_object *map; /* the decoded root, a map (asserted) */
	const void *data;          /* the MessagePack payload itself */
	size_t size;               /* its bytes */
	uint64_t index;            /* 0-based, in the order received */
};

typedef void (*pl_msg_fn)(void *arg, const struct pl_msg *m);
typedef bool (*pl_done_fn)(void *arg);

/* A JetStream stream on subjects, file storage, and a pull consumer that
 * reads it from the start. */
struct pl_js;
struct pl_js *pl_js_open(natsConnection *nc, const char *stream, const char *subjects);
/* The pull consumer alone, on a stream made before (pe_js_add_stream):
 * after a server restart, on a new connection. */
struct pl_js *pl_js_reader(natsConnection *nc, const char *stream, const char *subjects);
/* Hands every new message, in stream order, to fn(arg) until
 * done(done_arg) holds (checked before each fetch) or timeout_ms passes;
 * returns whether it holds. */
bool pl_js_pump(struct pl_js *r, pl_msg_fn fn, void *arg, pl_done_fn done, void *done_arg,
		int timeout_ms);
/* Hands every message the stream holds now and has not handed yet. */
void pl_js_pump_all(struct pl_js *r, pl_msg_fn fn, void *arg, int timeout_ms);
uint64_t pl_js_handed(const struct pl_js *r);
void pl_js_close(struct pl_js *r);

/* A core NATS subscription keeping raw copies of what arrives. */
struct pl_sub;
struct pl_sub *pl_sub_start(natsConnection *nc, const char *subject);
/* As pl_js_pump, over the messages received so far and those to come. */
bool pl_sub_pump(struct pl_sub *s, pl_msg_fn fn, void *arg, pl_done_fn done, void *done_arg,
		 int timeout_ms);
size_t pl_sub_count(struct pl_sub *s);
void pl_sub_stop(struct pl_sub *s);

/* ---- MessagePack access ---- */

/* The value of key in map, NULL when absent. */
const msgpack_object *pl_get(const msgpack_object *map, const char *key);
/* Asserting accessors (the message names the key). */
uint64_t pl_uint(const msgpack_object *map, const char *key);
int64_t pl_int(const msgpack_object *map, const char *key);
bool pl_bool(const msgpack_object *map, const char *key);
/* A str value copied into out (NUL-terminated); asserts its type and that
 * it fits. Returns its length. */
size_t pl_str(const msgpack_object *map, const char *key, char *out, size_t outlen);
bool pl_str_is(const msgpack_object *v, const char *s);

/* ---- docs/events.md ---- */

/* Every key of m (and of its nested maps) is documented for event with the
 * type the document gives; every documented top-level key that is not a
 * flag (<key>_truncated, <key>_read_failed) is present. */
void pl_doc_check(const char *event, const msgpack_object *m);

/* The subject token rule as docs/events.md states it (an independent
 * implementation: [A-Za-z0-9_-] kept, every other byte '_', empty '_'). */
void pl_token(const char *text, char *out, size_t outlen);

#endif
