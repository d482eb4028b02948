/* What the publisher end-to-end tests share: a test-only producer that
 * writes records into a queue through common/queue.h (no eBPF needed), a
 * real nats-server on a free loopback port (started, killed, restarted on
 * the same port), ebpf-publisher as a child process, and reading what
 * arrived (core NATS subscriptions, a JetStream stream) with MessagePack
 * decoding. */
#ifndef EBPF_PUBLISHER_E2E_PE_H
#define EBPF_PUBLISHER_E2E_PE_H

#include <stdbool.h>
#include <time.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <nats/nats.h>

#include "queue.h"
#include "record.h"
#include "tracepoints.h"

#define PE_DEADLINE_MS 30000

uint64_t pe_now_ms(void);
void pe_sleep_ms(unsigned ms);

/* ---- per-test scratch ---- */

struct pe_env {
	char dir[256];       /* /tmp scratch: logs, ready file, nats data */
	char queue_dir[256]; /* /dev/shm queue */
	char ready_file[300];
	char prefix[64];     /* subject prefix the publisher uses */
};
void pe_env_setup(struct pe_env *e, const char *name);
void pe_env_teardown(struct pe_env *e);

/* ---- test producer ---- */

struct pe_producer {
	struct queue_producer *q;
	uint64_t last_seq;
};
void pe_producer_open(struct pe_producer *p, const char *dir, uint64_t capacity);
void pe_producer_close(struct pe_producer *p);
/* One event record of tracepoint tp (payload_len: P2P payload bytes, for
 * the two message tracepoints), time_ns = tag. Returns its seq, 0 when the
 * queue is full. */
uint64_t pe_write_event(struct pe_producer *p, enum tracepoint_id tp, uint32_t payload_len,
			uint64_t tag);
uint64_t pe_write_loss(struct pe_producer *p, uint64_t tag);
uint64_t pe_write_stats(struct pe_producer *p, uint64_t tag);
uint64_t pe_write_started(struct pe_producer *p, uint64_t tag);
/* A record the encoder refuses (unknown kind). */
uint64_t pe_write_malformed(struct pe_producer *p);
/* Retries while the queue is full (the publisher releases), until the
 * deadline; asserts it got in. */
uint64_t pe_write_event_wait(struct pe_producer *p, enum tracepoint_id tp, uint32_t payload_len,
			     uint64_t tag, int timeout_ms);
void pe_notify(struct pe_producer *p);
/* The consumer file's release position (what the publisher confirmed). */
uint64_t pe_release_pos(const char *queue_dir);
/* The data file's write position (what the producer committed), read
 * from its header the way the publisher reads it. */
uint64_t pe_write_pos(const char *queue_dir);

/* ---- nats-server ---- */

struct pe_nats {
	int port;
	pid_t pid;
	bool jetstream;
	char store_dir[300];
	char conf[300];      /* "" or a config file */
	char log[300];
};
int pe_free_port(void);
/* Starts nats-server on port (a free one when 0), with JetStream (file
 * storage in the scratch dir) and/or a config file's text, and waits until
 * a TCP connect succeeds. */
void pe_nats_start(struct pe_nats *n, struct pe_env *e, int port, bool jetstream,
		   const char *conf_text);
void pe_nats_restart(struct pe_nats *n);
void pe_nats_kill(struct pe_nats *n, int sig);
void pe_nats_stop(struct pe_nats *n);
natsConnection *pe_nats_connect(const struct pe_nats *n);
void pe_nats_url(const struct pe_nats *n, char *out, size_t len);

/* ---- ebpf-publisher ---- */

struct pe_pub {
	pid_t pid;
	char log[300];
};
/* Starts ebpf-publisher with --queue, --ready-file, --subject-prefix,
 * --nats-address (unless port < 0) and extra (NULL-terminated). */
void pe_pub_start(struct pe_pub *pb, struct pe_env *e, int port, const char *const extra[]);
/* Waits for the ready file (removed first by pe_pub_start). */
bool pe_pub_wait_ready(struct pe_env *e, int timeout_ms);
int pe_pub_stop(struct pe_pub *pb, int timeout_ms); /* SIGTERM; exit status */
void pe_pub_kill(struct pe_pub *pb);                /* SIGKILL */
void pe_pub_dump_log(const struct pe_pub *pb);
/* utime + stime in clock ticks, from /proc/PID/stat */
uint64_t pe_cpu_ticks(pid_t pid);
/* How many times needle occurs in the file at path (0 when unreadable). */
unsigned pe_file_count(const char *path, const char *needle);
/* Waits until it occurs at least count times, or timeout_ms passes. */
bool pe_wait_file_count(const char *path, const char *needle, unsigned count, int timeout_ms);

/* ---- what arrived ---- */

struct pe_event {
	char subject[256];
	char event[64];
	bool has_seq;
	uint64_t seq, stream_id, time_ns;
	/* publisher_stats */
	uint64_t confirmed_seq, published, refused_too_large, malformed, last_read_seq;
	bool connected, collector_present;
	size_t size;
};
/* Decodes a MessagePack map; false when it is not one. */
bool pe_decode(const char *subject, const void *data, size_t len, struct pe_event *ev);

/* Every message of a JetStream stream, in stream order. */
struct pe_events {
	struct pe_event *v;
	size_t n, cap;
};
void pe_events_push(struct pe_events *l, const struct pe_event *ev);
void pe_events_free(struct pe_events *l);
void pe_js_add_stream(natsConnection *nc, const char *name, const char *subjects);
void pe_js_read_all(natsConnection *nc, const char *stream, struct pe_events *out);

/* A core NATS subscription collecting into a list (thread-safe). */
struct pe_sub;
struct pe_sub *pe_sub_start(natsConnection *nc, const char *subject);
/* Waits until cond holds over the collected events (called under the
 * lock), or the timeout. */
/* CLOCK_REALTIME timeout_ms from now, for pthread_cond_timedwait. */
struct timespec pe_deadline(int timeout_ms);
bool pe_sub_wait(struct pe_sub *s, bool (*cond)(const struct pe_events *, void *), void *arg,
		 int timeout_ms);
/* Copies what arrived so far. */
void pe_sub_snapshot(struct pe_sub *s, struct pe_events *out);
void pe_sub_stop(struct pe_sub *s);

/* The delivery contract over what a stream recorded, in stream order:
 * every seq 1..last of stream_id arrived; once duplicates are dropped they
 * are in order; a duplicate only of a seq after the highest confirmed_seq
 * the publisher reported (publisher_stats) before it. Returns the number of
 * duplicates; *max_confirmed gets the highest confirmed_seq reported. */
uint64_t pe_check_delivery(const struct pe_events *l, uint64_t stream_id, uint64_t last,
			   uint64_t *max_confirmed);

#endif
