/* ebpf-sub against a real nats-server on a free loopback port: messages
 * published with nats.c from the test come out as the exact JSON lines;
 * --stats, subject filters, --subject/--no-payload, a 4 MB payload, the
 * server down at start and restarted, --timeout, a closed stdout, SIGTERM. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <msgpack.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "encode.h"
#include "proc.h"
#include "record.h"

/* ---- nats-server ---- */

struct server {
	struct proc p;
	int port;
	char name[64];
	char dir[64];
	char conf[128];
};

/* A port nothing listens on right now: bind port 0, read it, close. (The
 * server could lose it to someone else before it binds: server_start
 * notices, because then it is not our server that answers, and retries.) */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t len = sizeof(a);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* Connects to the port and reads the INFO line: true when it is our server
 * (its server_name), so a port someone else took is not mistaken for it. */
static bool server_answers(const struct server *s)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)s->port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bool ours = false;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
		char info[4096];
		size_t got = 0;
		long long deadline = now_ms() + 2000;
		while (got < sizeof(info) - 1 && !memchr(info, '\n', got) && now_ms() < deadline) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			if (poll(&pfd, 1, 100) <= 0)
				continue;
			ssize_t r = read(fd, info + got, sizeof(info) - 1 - got);
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		info[got] = '\0';
		char needle[100];
		snprintf(needle, sizeof(needle), "\"server_name\":\"%s\"", s->name);
		ours = strstr(info, needle) != NULL;
	}
	close(fd);
	return ours;
}

/* The servers of a test live here, not on its stack: a failed assertion
 * leaves the test function, and teardown still removes what it started
 * (the process itself also dies with the test: PR_SET_PDEATHSIG). */
static struct server servers[2];
static int servers_used;

static struct server *new_server(void)
{
	cr_assert_lt(servers_used, 2);
	struct server *s = &servers[servers_used++];
	memset(s, 0, sizeof(*s));
	return s;
}

/* Starts nats-server on s->port (0: a free one, retried on conflict) and
 * waits until it accepts connections. */
static void server_start(struct server *s, int port)
{
	static int serial;
	if (!s->dir[0]) {
		snprintf(s->dir, sizeof(s->dir), "/tmp/ebpf-sub-test-XXXXXX");
		cr_assert_not_null(mkdtemp(s->dir));
	}
	for (int attempt = 0; attempt < 20; attempt++) {
		s->port = port ? port : free_port();
		snprintf(s->name, sizeof(s->name), "ebpf-sub-test-%d-%d", (int)getpid(), ++serial);
		snprintf(s->conf, sizeof(s->conf), "%s/nats.conf", s->dir);
		FILE *f = fopen(s->conf, "w");
		cr_assert_not_null(f);
		fprintf(f,
			"listen: 127.0.0.1:%d\n"
			"server_name: %s\n"
			"max_payload: 5242880\n", /* a 4 MB block fits, as the docs tell users */
			s->port, s->name);
		fclose(f);
		const char *argv[] = { NATS_SERVER_PATH, "-c", s->conf, NULL };
		proc_start(&s->p, argv, false);
		long long deadline = now_ms() + 10000;
		while (now_ms() < deadline) {
			int st;
			if (waitpid(s->p.pid, &st, WNOHANG) == s->p.pid) {
				s->p.exited = true; /* port taken: try another */
				break;
			}
			if (server_answers(s))
				return;
			struct timespec ts = { 0, 5 * 1000000 };
			nanosleep(&ts, NULL);
		}
		proc_kill(&s->p);
		if (port)
			break; /* a fixed port: no other to try */
	}
	cr_assert_fail("nats-server did not start on 127.0.0.1:%d", s->port);
}

static void server_stop(struct server *s)
{
	if (s->p.pid > 0 && !s->p.exited) {
		kill(s->p.pid, SIGKILL);
		int st;
		waitpid(s->p.pid, &st, 0);
		s->p.exited = true;
	}
	proc_free(&s->p);
}

static void server_remove(struct server *s)
{
	server_stop(s);
	if (s->dir[0]) {
		unlink(s->conf);
		rmdir(s->dir);
		s->dir[0] = '\0';
	}
}

static char *addr(const struct server *s)
{
	static char a[64];
	snprintf(a, sizeof(a), "127.0.0.1:%d", s->port);
	return a;
}

/* ---- publishing ---- */

static natsConnection *pub_connect(const struct server *s)
{
	char url[80];
	snprintf(url, sizeof(url), "nats://127.0.0.1:%d", s->port);
	natsConnection *nc = NULL;
	natsStatus st = natsConnection_ConnectTo(&nc, url);
	cr_assert_eq(st, NATS_OK, "connect %s: %s", url, natsStatus_GetText(st));
	return nc;
}

static void publish(natsConnection *nc, const char *subject, const void *data, size_t len)
{
	natsStatus st = natsConnection_Publish(nc, subject, data, (int)len);
	cr_assert_eq(st, NATS_OK, "publish %s: %s", subject, natsStatus_GetText(st));
	st = natsConnection_FlushTimeout(nc, 5000);
	cr_assert_eq(st, NATS_OK);
}

static msgpack_sbuffer sb;
static msgpack_packer pk;

static void pk_reset(void)
{
	msgpack_sbuffer_clear(&sb);
}

static void ks(const char *k, const char *v)
{
	msgpack_pack_str_with_body(&pk, k, strlen(k));
	msgpack_pack_str_with_body(&pk, v, strlen(v));
}

static void ku(const char *k, uint64_t v)
{
	msgpack_pack_str_with_body(&pk, k, strlen(k));
	msgpack_pack_uint64(&pk, v);
}

static void ki(const char *k, int64_t v)
{
	msgpack_pack_str_with_body(&pk, k, strlen(k));
	msgpack_pack_int64(&pk, v);
}

static void kb(const char *k, const void *v, size_t n)
{
	msgpack_pack_str_with_body(&pk, k, strlen(k));
	msgpack_pack_bin_with_body(&pk, v, n);
}

static const uint8_t txid[32] = { 0x00, 0x00, 0x00, 0x00, 0x00, 0x19, 0xd6, 0x68, 0x9c, 0x08, 0x5a,
				  0xe1, 0x65, 0x83, 0x1e, 0x93, 0x4f, 0xf7, 0x63, 0xae, 0x46, 0xa2,
				  0xa6, 0xc1, 0x72, 0xb3, 0xf1, 0xb6, 0x0a, 0x8c, 0xe2, 0x6f };
#define TXID_HEX "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"

static void pack_mempool_added(uint64_t seq)
{
	pk_reset();
	msgpack_pack_map(&pk, 8);
	ks("event", "mempool:added");
	ku("stream_id", 0xfedcba9876543210ull);
	ku("seq", seq);
	ku("time_ns", 1700000000123456789ull);
	ks("node", "node1");
	kb("txid", txid, sizeof(txid));
	ki("vsize", 141);
	ki("fee", 2000);
}

#define MEMPOOL_ADDED_JSON(seq)                                                         \
	"{\"event\":\"mempool:added\",\"stream_id\":\"18364758544493064720\",\"seq\":" seq \
	",\"time_ns\":\"1700000000123456789\",\"node\":\"node1\",\"txid\":\"" TXID_HEX    \
	"\",\"vsize\":141,\"fee\":2000}"

static void pack_inv(const void *payload, size_t n)
{
	pk_reset();
	msgpack_pack_map(&pk, 7);
	ks("event", "net:inbound_message");
	ki("peer_id", -1);
	ks("addr", "127.0.0.1:18444");
	ks("msg_type", "inv\x01\xff");
	ku("size", n);
	kb("payload", payload, n);
	msgpack_pack_str_with_body(&pk, "decoded", 7);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "inv", 3);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, 2);
	ku("type", 1);
	kb("hash", txid, sizeof(txid));
}

#define INV_HEAD_JSON                                                                   \
	"{\"event\":\"net:inbound_message\",\"peer_id\":-1,\"addr\":\"127.0.0.1:18444\","  \
	"\"msg_type\":\"inv\\u0001\\ufffd\",\"size\":3,"
#define INV_TAIL_JSON "\"decoded\":{\"inv\":[{\"type\":1,\"hash\":\"" TXID_HEX "\"}]}}"

static void pack_stats(const char *event, uint64_t n)
{
	pk_reset();
	msgpack_pack_map(&pk, 2);
	ks("event", event);
	ku("published", n);
}

static void setup(void)
{
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
}

static void teardown(void)
{
	for (int i = 0; i < servers_used; i++)
		server_remove(&servers[i]);
	servers_used = 0;
	msgpack_sbuffer_destroy(&sb);
	nats_Close();
}

TestSuite(sub_e2e, .init = setup, .fini = teardown, .timeout = 120);

/* Starts ebpf-sub with extra arguments and waits until it says it is
 * subscribed (after a round trip with the server). */
static void sub_start(struct proc *p, const struct server *s, const char *const extra[])
{
	const char *argv[32] = { SUB_PATH, "-n", addr(s) };
	int n = 3;
	for (int i = 0; extra && extra[i]; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	proc_start(p, argv, true);
	cr_assert(proc_wait_output(p, true, "subscribed to", 10000), "stderr: %s", p->err.data);
}

Test(sub_e2e, count_three_exact_lines)
{
	struct server *s = new_server();
	server_start(s, 0);
	struct proc p;
	const char *extra[] = { "--count", "3", NULL };
	sub_start(&p, s, extra);
	cr_expect(strstr(p.err.data, "ebpf-sub: info: subscribed to btc.>\n"), "%s", p.err.data);

	natsConnection *nc = pub_connect(s);
	pack_mempool_added(1);
	publish(nc, "other.node1.mempool.added", sb.data, sb.size); /* not under btc.> */
	pack_mempool_added(9007199254740993ull);
	publish(nc, "btc.node1.mempool.added", sb.data, sb.size);
	pack_inv("\x01\xab\xff", 3);
	publish(nc, "btc.node1.net.inbound_message.inv", sb.data, sb.size);
	pack_stats("extractor:collector_stats", 10);
	publish(nc, "btc.node1.extractor.collector_stats", sb.data, sb.size);
	pack_mempool_added(4);
	publish(nc, "btc.node1.mempool.added", sb.data, sb.size); /* after --count: not printed */

	cr_assert_eq(proc_wait_exit(&p, 10000), 0, "stderr: %s", p.err.data);
	const char *expect = MEMPOOL_ADDED_JSON("\"9007199254740993\"") "\n"
		INV_HEAD_JSON "\"payload\":\"01abff\"," INV_TAIL_JSON "\n"
		"{\"event\":\"extractor:collector_stats\",\"published\":10}\n";
	cr_expect_str_eq(p.out.data, expect);
	cr_expect_null(strstr(p.err.data, "error"), "stderr: %s", p.err.data);
	natsConnection_Destroy(nc);
	proc_free(&p);
	server_remove(s);
}

Test(sub_e2e, not_messagepack_is_reported_and_skipped)
{
	struct server *s = new_server();
	server_start(s, 0);
	struct proc p;
	const char *extra[] = { "--count", "3", NULL };
	sub_start(&p, s, extra);

	natsConnection *nc = pub_connect(s);
	publish(nc, "btc.node1.extractor.loss", "\xc1garbage", 8);
	publish(nc, "btc.node1.mempool.added", "", 0);
	pack_mempool_added(7);
	publish(nc, "btc.node1.mempool.added", sb.data, sb.size);

	cr_assert_eq(proc_wait_exit(&p, 10000), 0, "stderr: %s", p.err.data);
	cr_expect_str_eq(p.out.data,
			 "{\"subject\":\"btc.node1.extractor.loss\",\"error\":\"not MessagePack: invalid type byte 0xc1 at byte 0\",\"bytes\":8}\n"
			 "{\"subject\":\"btc.node1.mempool.added\",\"error\":\"not MessagePack: empty message\",\"bytes\":0}\n"
			 MEMPOOL_ADDED_JSON("7") "\n");
	natsConnection_Destroy(nc);
	proc_free(&p);
	server_remove(s);
}

Test(sub_e2e, filters_subject_key_no_payload)
{
	struct server *s = new_server();
	server_start(s, 0);
	struct proc p;
	const char *extra[] = { "--subject", "--no-payload", "--count", "2", "btc.*.net.>",
				"btc.node2.mempool.added", NULL };
	sub_start(&p, s, extra);

	natsConnection *nc = pub_connect(s);
	pack_mempool_added(5);
	publish(nc, "btc.node1.mempool.added", sb.data, sb.size); /* node1: filtered out */
	pack_inv("\x01\xab\xff", 3);
	publish(nc, "btc.node1.net.inbound_message.inv", sb.data, sb.size);
	pack_mempool_added(6);
	publish(nc, "btc.node2.mempool.added", sb.data, sb.size);

	cr_assert_eq(proc_wait_exit(&p, 10000), 0, "stderr: %s", p.err.data);
	char want[4096];
	snprintf(want, sizeof(want),
		 "{\"subject\":\"btc.node1.net.inbound_message.inv\",%s%s\n"
		 "{\"subject\":\"btc.node2.mempool.added\",%s\n",
		 &INV_HEAD_JSON[1], INV_TAIL_JSON, &MEMPOOL_ADDED_JSON("6")[1]);
	cr_expect_str_eq(p.out.data, want);
	natsConnection_Destroy(nc);
	proc_free(&p);
	server_remove(s);
}

Test(sub_e2e, stats_only)
{
	struct server *s = new_server();
	server_start(s, 0);
	struct proc p;
	const char *extra[] = { "--stats", "--subject", "--count", "2", NULL };
	sub_start(&p, s, extra);
	cr_expect(strstr(p.err.data, "subscribed to btc.*.extractor.collector_stats "
				     "btc.*.extractor.publisher_stats"),
		  "%s", p.err.data);

	natsConnection *nc = pub_connect(s);
	pack_mempool_added(1);
	publish(nc, "btc.node1.mempool.added", sb.data, sb.size);
	pack_stats("extractor:loss", 1);
	publish(nc, "btc.node1.extractor.loss", sb.data, sb.size);
	pack_stats("extractor:collector_stats", 10);
	publish(nc, "btc.node1.extractor.collector_stats", sb.data, sb.size);
	pack_stats("extractor:started", 0);
	publish(nc, "btc.node1.extractor.started", sb.data, sb.size);
	pack_inv("\x01\xab\xff", 3);
	publish(nc, "btc.node1.net.inbound_message.inv", sb.data, sb.size);
	pack_stats("extractor:collector_stats", 11);
	publish(nc, "btc.a.b.extractor.collector_stats", sb.data, sb.size); /* deeper: no */
	pack_stats("extractor:publisher_stats", 20);
	publish(nc, "btc.node2.extractor.publisher_stats", sb.data, sb.size);

	cr_assert_eq(proc_wait_exit(&p, 10000), 0, "stderr: %s", p.err.data);
	cr_expect_str_eq(p.out.data,
			 "{\"subject\":\"btc.node1.extractor.collector_stats\",\"event\":\"extractor:collector_stats\",\"published\":10}\n"
			 "{\"subject\":\"btc.node2.extractor.publisher_stats\",\"event\":\"extractor:publisher_stats\",\"published\":20}\n");
	natsConnection_Destroy(nc);
	proc_free(&p);
	server_remove(s);
}

Test(sub_e2e, four_megabyte_payload)
{
	struct server *s = new_server();
	server_start(s, 0);
	struct proc p;
	const char *extra[] = { "--count", "1", NULL };
	sub_start(&p, s, extra);

	size_t n = 4000000;
	uint8_t *payload = malloc(n);
	cr_assert_not_null(payload);
	for (size_t i = 0; i < n; i++)
		payload[i] = (uint8_t)(i * 7 + (i >> 8));
	pk_reset();
	msgpack_pack_map(&pk, 2);
	ks("msg_type", "block");
	kb("payload", payload, n);
	natsConnection *nc = pub_connect(s);
	publish(nc, "btc.node1.net.inbound_message.block", sb.data, sb.size);

	cr_assert_eq(proc_wait_exit(&p, 30000), 0, "stderr: %s", p.err.data);
	const char *head = "{\"msg_type\":\"block\",\"payload\":\"";
	cr_assert_eq(p.out.len, strlen(head) + 2 * n + 3);
	cr_assert_eq(strncmp(p.out.data, head, strlen(head)), 0);
	const char *hex = p.out.data + strlen(head);
	for (size_t i = 0; i < n; i++) {
		static const char d[] = "0123456789abcdef";
		if (hex[2 * i] != d[payload[i] >> 4] || hex[2 * i + 1] != d[payload[i] & 15])
			cr_assert_fail("payload byte %zu", i);
	}
	cr_assert_str_eq(hex + 2 * n, "\"}\n");
	free(payload);
	natsConnection_Destroy(nc);
	proc_free(&p);
	server_remove(s);
}

/* Publishes numbered events until ebpf-sub has printed `lines` lines. */
static void publish_until_lines(struct server *s, struct proc *p, size_t lines, uint64_t *seq)
{
	natsConnection *nc = pub_connect(s);
	long long deadline = now_ms() + 20000;
	while (!proc_wait_lines(p, lines, 100)) {
		cr_assert(now_ms() < deadline, "no line %zu; stderr: %s", lines, p->err.data);
		pack_mempool_added(++*seq);
		publish(nc, "btc.node1.mempool.added", sb.data, sb.size);
	}
	natsConnection_Destroy(nc);
}

Test(sub_e2e, server_down_at_start_then_restarted)
{
	struct server *s = new_server();
	s->port = free_port();
	struct proc p;
	const char *argv[] = { SUB_PATH, "-n", addr(s), "--count", "2", NULL };
	proc_start(&p, argv, true);
	cr_assert(proc_wait_output(&p, true, "cannot reach NATS at", 10000), "%s", p.err.data);

	server_start(s, s->port);
	cr_assert(proc_wait_output(&p, true, "connected to nats://127.0.0.1:", 15000), "%s",
		  p.err.data);
	uint64_t seq = 0;
	publish_until_lines(s, &p, 1, &seq);

	server_stop(s);
	cr_assert(proc_wait_output(&p, true, "disconnected from NATS", 15000), "%s", p.err.data);
	server_start(s, s->port);
	cr_assert(proc_wait_output(&p, true, "reconnected to nats://127.0.0.1:", 15000), "%s",
		  p.err.data);
	publish_until_lines(s, &p, 2, &seq);

	cr_assert_eq(proc_wait_exit(&p, 10000), 0, "stderr: %s", p.err.data);
	/* two whole events, each once */
	char *second = strchr(p.out.data, '\n') + 1;
	cr_expect_eq(strncmp(p.out.data, "{\"event\":\"mempool:added\"", 24), 0, "%s", p.out.data);
	cr_expect_eq(strncmp(second, "{\"event\":\"mempool:added\"", 24), 0, "%s", p.out.data);
	cr_expect_str_eq(strchr(second, '\n'), "\n");
	proc_free(&p);
	server_remove(s);
}

Test(sub_e2e, timeout_when_nothing_arrives)
{
	struct server *s = new_server();
	server_start(s, 0);
	struct proc p;
	const char *extra[] = { "--timeout", "0.5", NULL };
	long long start = now_ms();
	sub_start(&p, s, extra);
	cr_assert_eq(proc_wait_exit(&p, 10000), 1, "stderr: %s", p.err.data);
	long long took = now_ms() - start;
	cr_expect(took >= 500 && took < 5000, "took %lld ms", took);
	cr_expect(strstr(p.err.data, "ebpf-sub: error: nothing received for 0.5 s (--timeout)\n"),
		  "%s", p.err.data);
	cr_expect_str_empty(p.out.data);
	proc_free(&p);
	server_remove(s);
}

Test(sub_e2e, timeout_counts_from_the_last_message)
{
	struct server *s = new_server();
	server_start(s, 0);
	struct proc p;
	const char *extra[] = { "--timeout", "1", NULL };
	sub_start(&p, s, extra);
	natsConnection *nc = pub_connect(s);
	/* A message every 300 ms for 2 s keeps a 1 s timeout from firing. */
	long long start = now_ms();
	for (int i = 0; now_ms() - start < 2000; i++) {
		pack_mempool_added((uint64_t)i);
		publish(nc, "btc.node1.mempool.added", sb.data, sb.size);
		cr_assert(proc_wait_lines(&p, (size_t)i + 1, 5000));
		cr_assert(!proc_wait_output(&p, true, "nothing received", 300), "%s", p.err.data);
	}
	cr_assert_eq(proc_wait_exit(&p, 10000), 1, "stderr: %s", p.err.data);
	natsConnection_Destroy(nc);
	proc_free(&p);
	server_remove(s);
}

Test(sub_e2e, closed_stdout_exits_quietly_with_0)
{
	struct server *s = new_server();
	server_start(s, 0);
	struct proc p;
	sub_start(&p, s, NULL);
	natsConnection *nc = pub_connect(s);
	pack_mempool_added(1);
	publish(nc, "btc.node1.mempool.added", sb.data, sb.size);
	cr_assert(proc_wait_lines(&p, 1, 10000));
	proc_close_stdout(&p); /* `| head -1` exits */
	pack_mempool_added(2);
	publish(nc, "btc.node1.mempool.added", sb.data, sb.size);
	cr_assert_eq(proc_wait_exit(&p, 10000), 0, "stderr: %s", p.err.data);
	cr_expect_null(strstr(p.err.data, "error"), "stderr: %s", p.err.data);
	cr_expect_null(strstr(p.err.data, "Broken pipe"), "stderr: %s", p.err.data);
	natsConnection_Destroy(nc);
	proc_free(&p);
	server_remove(s);
}

Test(sub_e2e, sigterm_exits_143)
{
	struct server *s = new_server();
	server_start(s, 0);
	struct proc p;
	sub_start(&p, s, NULL);
	kill(p.pid, SIGTERM);
	cr_assert_eq(proc_wait_exit(&p, 10000), 143, "stderr: %s", p.err.data);
	proc_free(&p);
	server_remove(s);
}

/* ---- a real event from the publisher's encoder ---- */

/* A net:inbound_message record as the collector queues it, with a real
 * transaction from the reference corpus as payload, encoded by the
 * publisher's own encoder (decoder included): ebpf-sub prints the decoded
 * txid and wtxid as bitcoin-cli does (the corpus's facts, computed
 * independently), and the payload as its hex. */
Test(sub_e2e, decoded_tx_from_the_publishers_encoder)
{
	static const char corpus[] = DECODE_CORPUS_DIR "/from_node-tx-0.bin";
	FILE *f = fopen(corpus, "rb");
	cr_assert_not_null(f, "%s: %s", corpus, strerror(errno));
	uint8_t payload[4096];
	size_t n = fread(payload, 1, sizeof(payload), f);
	fclose(f);
	cr_assert_eq(n, 133, "%s: %zu bytes", corpus, n);

	struct {
		struct record_header h;
		struct ev_net_message m;
		uint8_t payload[133];
	} rec;
	memset(&rec, 0, sizeof(rec));
	const uint32_t length = sizeof(rec.h) + sizeof(rec.m) + (uint32_t)n; /* no padding */
	rec.h = (struct record_header){ .kind = RECORD_EVENT, .tracepoint = TP_NET_INBOUND_MESSAGE,
					.length = length, .time_ns = 1700000000123456789ull,
					.pid = 10, .tid = 11 };
	rec.m.peer_id = 7;
	rec.m.size = n;
	strcpy(rec.m.addr, "203.0.113.5:8333");
	strcpy(rec.m.conn_type, "inbound");
	strcpy(rec.m.msg_type, "tx");
	memcpy(rec.payload, payload, n);

	static struct encoder enc; /* the decoder points into it: never moved */
	char err[ENCODE_ERROR_LEN];
	cr_assert_eq(encoder_init(&enc, "node1", NULL, err), 0, "%s", err);
	cr_assert_eq(encode_record(&enc, 0x1122334455667788ull, 42, &rec, length, err),
		     ENCODE_OK, "%s", err);
	cr_assert_str_eq(enc.subject, "btc.node1.net.inbound_message.tx");

	struct server *s = new_server();
	server_start(s, 0);
	struct proc p;
	const char *extra[] = { "--count", "1", NULL };
	sub_start(&p, s, extra);
	natsConnection *nc = pub_connect(s);
	publish(nc, enc.subject, enc.buf.data, enc.buf.size);
	encoder_free(&enc);
	cr_assert_eq(proc_wait_exit(&p, 10000), 0, "stderr: %s", p.err.data);

	const char *out = p.out.data;
	cr_expect(strstr(out, "\"event\":\"net:inbound_message\""), "%s", out);
	cr_expect(strstr(out, "\"seq\":42,"), "%s", out);
	cr_expect(strstr(out, "\"msg_type\":\"tx\""), "%s", out);
	cr_expect(strstr(out, "\"txid\":\"d69ed2b46f08ef108444eaaf3ddc7ae86a86d4fec5bfc3b6a24d036e7acabe54\""),
		  "the decoded txid, as bitcoin-cli prints it: %s", out);
	cr_expect(strstr(out, "\"wtxid\":\"12ef91ff233a3181e20da0746d9bc5c9c935bcfe28da80bd6c7bcb75ebb875cf\""),
		  "the decoded wtxid: %s", out);
	char hex[2 * 133 + 1];
	for (size_t i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", payload[i]);
	cr_expect(strstr(out, hex), "the payload as hex: %s", out);
	cr_expect_null(strstr(out, "decode_error"), "%s", out);
	cr_expect_eq(strchr(out, '\n') - out + 1, (long)strlen(out), "one line: %s", out);
	natsConnection_Destroy(nc);
	proc_free(&p);
	server_remove(s);
}
