/* Unit tests for the shared-memory queue (common/queue.c).
 *
 * Every test runs in its own process (Criterion) with its own directory
 * /dev/shm/ebpf-queue-test-XXXXXX (the queue is a subdirectory of it),
 * removed at the end. Waiting is always on a condition with a deadline.
 */
#include "queue.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KIB (1ull << 10)
#define MIB (1ull << 20)
#define NOBODY_UID 65534u

/* ---- per-test directory ---- */

static char base_dir[64];
static char queue_dir[128];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void rm_rf(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	strcpy(base_dir, "/dev/shm/ebpf-queue-test-XXXXXX");
	cr_assert_not_null(mkdtemp(base_dir), "mkdtemp: %s", strerror(errno));
	snprintf(queue_dir, sizeof(queue_dir), "%s/q", base_dir);
}

static void teardown(void)
{
	if (base_dir[0])
		rm_rf(base_dir);
}

/* a second queue in the same test */
static void subdir(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", base_dir, name);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- queue helpers ---- */

static struct queue_producer *prod_open_dir(const char *dir, uint64_t cap)
{
	char err[QUEUE_ERROR_LEN];
	struct queue_producer_options o = { .dir = dir, .capacity = cap, .group = (gid_t)-1 };
	struct queue_producer *p = queue_producer_open(&o, err);
	cr_assert_not_null(p, "queue_producer_open(%s): %s", dir, err);
	return p;
}

static struct queue_producer *prod_open(uint64_t cap)
{
	return prod_open_dir(queue_dir, cap);
}

static struct queue_consumer *cons_open_dir(const char *dir)
{
	char err[QUEUE_ERROR_LEN];
	int e = -1;
	struct queue_consumer *c = queue_consumer_open(dir, &e, err);
	cr_assert_not_null(c, "queue_consumer_open(%s): %s (errno %d)", dir, err, e);
	cr_assert_eq(e, 0);
	return c;
}

static struct queue_consumer *cons_open(void)
{
	return cons_open_dir(queue_dir);
}

/* A payload that depends on seq and length: any misplaced byte shows. */
static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static void fill(void *p, uint64_t seq, uint32_t len)
{
	uint8_t *b = p;
	uint64_t k = mix(seq) | 1;
	uint32_t j = 0;
	for (; j + 8 <= len; j += 8) {
		uint64_t v = k * (j + 8 + len) ^ seq;
		memcpy(b + j, &v, 8);
	}
	if (j < len) {
		uint64_t v = k * (j + 8 + len) ^ seq;
		memcpy(b + j, &v, len - j);
	}
}

static bool check(const void *p, uint64_t seq, uint32_t len)
{
	const uint8_t *b = p;
	uint64_t k = mix(seq) | 1;
	uint32_t j = 0;
	for (; j + 8 <= len; j += 8) {
		uint64_t v = k * (j + 8 + len) ^ seq;
		if (memcmp(b + j, &v, 8) != 0)
			return false;
	}
	if (j < len) {
		uint64_t v = k * (j + 8 + len) ^ seq;
		if (memcmp(b + j, &v, len - j) != 0)
			return false;
	}
	return true;
}

static uint64_t produce(struct queue_producer *p, uint32_t len)
{
	uint64_t seq = queue_next_seq(p);
	void *d = queue_reserve(p, len);
	cr_assert_not_null(d, "reserve %u failed (write pos %ju)", len, (uintmax_t)queue_write_pos(p));
	cr_assert_eq(((uintptr_t)d) % 8, 0, "payload not 8-aligned");
	fill(d, seq, len);
	uint64_t got = queue_commit(p, len);
	cr_assert_eq(got, seq, "commit returned seq %ju, expected %ju", (uintmax_t)got, (uintmax_t)seq);
	return seq;
}

/* reads one record and checks seq, length and bytes */
static struct queue_record consume(struct queue_consumer *c, uint64_t seq, uint32_t len)
{
	char err[QUEUE_ERROR_LEN] = "";
	struct queue_record r;
	int n = queue_read(c, &r, err);
	cr_assert_eq(n, 1, "queue_read for seq %ju returned %d: %s", (uintmax_t)seq, n, err);
	cr_assert_eq(r.seq, seq, "got seq %ju, expected %ju", (uintmax_t)r.seq, (uintmax_t)seq);
	cr_assert_eq(r.len, len, "seq %ju: length %u, expected %u", (uintmax_t)seq, r.len, len);
	cr_assert(check(r.data, r.seq, r.len), "seq %ju: payload damaged", (uintmax_t)seq);
	cr_assert_eq(r.pos % 8, 0);
	return r;
}

static void expect_empty(struct queue_consumer *c)
{
	char err[QUEUE_ERROR_LEN] = "";
	struct queue_record r;
	int n = queue_read(c, &r, err);
	cr_assert_eq(n, 0, "expected an empty queue, queue_read returned %d (%s)", n, err);
}

static uint64_t rec_size(uint32_t len)
{
	return (QUEUE_FRAME_SIZE + (uint64_t)len + 7) & ~7ull;
}

/* raw access to the files, as another process would have it */
static void file_path(char *out, size_t size, const char *dir, const char *name)
{
	snprintf(out, size, "%s/%s", dir, name);
}

static uint64_t hdr_get(const char *dir, off_t off, size_t width)
{
	char path[256];
	file_path(path, sizeof(path), dir, QUEUE_DATA_FILE);
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	uint64_t v = 0;
	cr_assert_eq(pread(fd, &v, width, off), (ssize_t)width);
	close(fd);
	return v;
}

static void hdr_set(const char *dir, off_t off, size_t width, uint64_t v)
{
	char path[256];
	file_path(path, sizeof(path), dir, QUEUE_DATA_FILE);
	int fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(pwrite(fd, &v, width, off), (ssize_t)width);
	close(fd);
}

static uint64_t ring_get(const char *dir, uint64_t ring_off, size_t width)
{
	return hdr_get(dir, (off_t)(QUEUE_HEADER_SIZE + ring_off), width);
}

static void ring_set(const char *dir, uint64_t ring_off, size_t width, uint64_t v)
{
	hdr_set(dir, (off_t)(QUEUE_HEADER_SIZE + ring_off), width, v);
}

/* Moves the write position to ring offset `target` (>= 16) with filler
 * records the consumer reads and releases; returns the next seq. */
static void advance_to(struct queue_producer *p, struct queue_consumer *c, uint64_t target)
{
	uint64_t cap = queue_capacity(p);
	uint64_t maxrec = cap / 4;
	cr_assert(target >= 16 && target < cap && target % 8 == 0);
	for (int guard = 0; guard < 100000; guard++) {
		uint64_t off = queue_write_pos(p) & (cap - 1);
		if (off == target)
			return;
		uint64_t tail = cap - off;
		uint64_t dist = target > off ? target - off : tail;
		uint64_t x = dist < maxrec ? dist : maxrec;
		if (dist - x > 0 && dist - x < 16)
			x = dist - 16 >= 16 ? dist - 16 : 16;
		if (x < 16)
			x = 16; /* dist 8: overshoot, go round again */
		uint64_t seq = produce(p, (uint32_t)(x - QUEUE_FRAME_SIZE));
		struct queue_record r = consume(c, seq, (uint32_t)(x - QUEUE_FRAME_SIZE));
		queue_release(c, r.pos);
	}
	cr_assert_fail("advance_to(%ju) did not get there", (uintmax_t)target);
}

TestSuite(queue, .init = setup, .fini = teardown, .timeout = 120);
TestSuite(queue_refuse, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(queue_restart, .init = setup, .fini = teardown, .timeout = 120);
TestSuite(queue_wake, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(queue_hostile, .init = setup, .fini = teardown, .timeout = 120);
TestSuite(queue_stress, .init = setup, .fini = teardown, .timeout = 240);

/* ================= basics ================= */

Test(queue, max_payload_and_capacity)
{
	cr_assert_eq(queue_max_payload(64 * KIB), 16 * KIB - 16);
	cr_assert_eq(queue_max_payload(256 * MIB), 64 * MIB - 16);
	cr_assert(queue_capacity_valid(QUEUE_MIN_CAPACITY));
	cr_assert(queue_capacity_valid(QUEUE_MAX_CAPACITY));
	cr_assert(!queue_capacity_valid(QUEUE_MIN_CAPACITY / 2));
	cr_assert(!queue_capacity_valid(QUEUE_MAX_CAPACITY * 2));
	cr_assert(!queue_capacity_valid(3 * MIB));
	cr_assert(!queue_capacity_valid(0));
	/* the default must hold several 4 MB blocks */
	cr_assert_gt(queue_max_payload(QUEUE_DEFAULT_CAPACITY), 4000000 + 1024);
}

Test(queue, create_and_open)
{
	struct queue_producer *p = prod_open(64 * KIB);
	cr_assert_eq(queue_capacity(p), 64 * KIB);
	cr_assert_eq(queue_next_seq(p), 1);
	cr_assert_eq(queue_write_pos(p), 0);
	cr_assert_neq(queue_stream_id(p), 0);
	cr_assert_eq(queue_used(p), 0);

	struct stat st;
	cr_assert_eq(lstat(queue_dir, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 03770, "directory mode %o", st.st_mode & 07777);
	cr_assert_eq(st.st_uid, geteuid());

	char path[256];
	file_path(path, sizeof(path), queue_dir, QUEUE_DATA_FILE);
	cr_assert_eq(lstat(path, &st), 0);
	cr_assert(S_ISREG(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0640, "data mode %o", st.st_mode & 07777);
	cr_assert_eq(st.st_nlink, 1);
	cr_assert_eq((uint64_t)st.st_size, QUEUE_HEADER_SIZE + 64 * KIB);
	/* posix_fallocate: every block is there already */
	cr_assert_geq((uint64_t)st.st_blocks * 512, QUEUE_HEADER_SIZE + 64 * KIB);

	cr_assert_eq(hdr_get(queue_dir, QUEUE_HDR_MAGIC, 8), QUEUE_DATA_MAGIC);
	cr_assert_eq(hdr_get(queue_dir, QUEUE_HDR_LAYOUT_VERSION, 4), QUEUE_LAYOUT_VERSION);
	cr_assert_eq(hdr_get(queue_dir, QUEUE_HDR_HEADER_SIZE, 4), QUEUE_HEADER_SIZE);
	cr_assert_eq(hdr_get(queue_dir, QUEUE_HDR_CAPACITY, 8), 64 * KIB);
	cr_assert_eq(hdr_get(queue_dir, QUEUE_HDR_STREAM_ID, 8), queue_stream_id(p));
	cr_assert_eq(hdr_get(queue_dir, QUEUE_HDR_NEXT_SEQ, 8), 1);
	uint64_t created = hdr_get(queue_dir, QUEUE_HDR_CREATED_NS, 8);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t real = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	cr_assert(created <= real && created > real - 60ull * 1000000000ull);

	struct queue_consumer *c = cons_open();
	cr_assert_eq(queue_consumer_stream_id(c), queue_stream_id(p));
	cr_assert_eq(queue_consumer_read_pos(c), 0);
	cr_assert_eq(queue_consumer_release_pos(c), 0);
	cr_assert_geq(queue_doorbell_fd(c), 0);
	cr_assert(!queue_consumer_detached(c));

	file_path(path, sizeof(path), queue_dir, QUEUE_CONSUMER_FILE);
	cr_assert_eq(lstat(path, &st), 0);
	cr_assert(S_ISREG(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0644, "consumer mode %o", st.st_mode & 07777);
	cr_assert_eq(st.st_size, QUEUE_CONSUMER_FILE_SIZE);
	file_path(path, sizeof(path), queue_dir, QUEUE_DOORBELL_FILE);
	cr_assert_eq(lstat(path, &st), 0);
	cr_assert(S_ISFIFO(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0620, "doorbell mode %o", st.st_mode & 07777);

	queue_consumer_close(c);
	queue_producer_close(p);
}

Test(queue, group_option)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to give files to another group");
	gid_t g = 65534; /* nogroup */
	char err[QUEUE_ERROR_LEN];
	struct queue_producer_options o = { .dir = queue_dir, .capacity = 64 * KIB, .group = g };
	struct queue_producer *p = queue_producer_open(&o, err);
	cr_assert_not_null(p, "%s", err);
	struct stat st;
	cr_assert_eq(stat(queue_dir, &st), 0);
	cr_assert_eq(st.st_gid, g);
	cr_assert_eq(st.st_mode & 07777, 03770);
	char path[256];
	file_path(path, sizeof(path), queue_dir, QUEUE_DATA_FILE);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_gid, g);
	struct queue_consumer *c = cons_open();
	file_path(path, sizeof(path), queue_dir, QUEUE_DOORBELL_FILE);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_gid, g, "doorbell group %u", (unsigned)st.st_gid);
	queue_consumer_close(c);
	queue_producer_close(p);
}

Test(queue, default_capacity_and_existing_capacity)
{
	char err[QUEUE_ERROR_LEN];
	struct queue_producer_options o = { .dir = queue_dir, .capacity = 0, .group = (gid_t)-1 };
	struct queue_producer *p = queue_producer_open(&o, err);
	cr_assert_not_null(p, "%s", err);
	cr_assert_eq(queue_capacity(p), QUEUE_DEFAULT_CAPACITY);
	queue_producer_close(p);

	char d2[128];
	subdir(d2, sizeof(d2), "q2");
	p = prod_open_dir(d2, 128 * KIB);
	queue_producer_close(p);
	/* capacity 0 on an existing queue: its own */
	o.dir = d2;
	p = queue_producer_open(&o, err);
	cr_assert_not_null(p, "%s", err);
	cr_assert_eq(queue_capacity(p), 128 * KIB);
	queue_producer_close(p);
}

Test(queue, empty)
{
	struct queue_producer *p = prod_open(64 * KIB);
	struct queue_consumer *c = cons_open();
	expect_empty(c);
	expect_empty(c);
	cr_assert(queue_prepare_sleep(c));
	queue_wake(c);
	queue_rewind(c);
	expect_empty(c);
	uint64_t s = produce(p, 5);
	struct queue_record r = consume(c, s, 5);
	expect_empty(c);
	queue_release(c, r.pos);
	expect_empty(c);
	cr_assert_eq(queue_used(p), 0);
	queue_consumer_close(c);
	queue_producer_close(p);
}

Test(queue, roundtrip_and_sequence)
{
	struct queue_producer *p = prod_open(1 * MIB);
	struct queue_consumer *c = cons_open();
	uint64_t pos = 0;
	for (uint32_t i = 0; i < 1000; i++) {
		uint32_t len = (i * 37) % 300;
		uint64_t s = produce(p, len);
		cr_assert_eq(s, i + 1);
		cr_assert_eq(queue_next_seq(p), i + 2);
		pos += rec_size(len);
		cr_assert_eq(queue_write_pos(p), pos);
	}
	cr_assert_eq(hdr_get(queue_dir, QUEUE_HDR_NEXT_SEQ, 8), 1001);
	cr_assert_eq(hdr_get(queue_dir, QUEUE_HDR_WRITE_POS, 8), pos);
	uint64_t rpos = 0;
	for (uint32_t i = 0; i < 1000; i++) {
		uint32_t len = (i * 37) % 300;
		struct queue_record r = consume(c, i + 1, len);
		rpos += rec_size(len);
		cr_assert_eq(r.pos, rpos);
	}
	expect_empty(c);
	cr_assert_eq(queue_used(p), pos);
	queue_release(c, rpos);
	cr_assert_eq(queue_used(p), 0);
	cr_assert_eq(hdr_get(queue_dir, QUEUE_HDR_CONSUMER_POS_SEEN, 8), rpos);
	queue_consumer_close(c);
	queue_producer_close(p);
}

Test(queue, stream_id_random_and_persistent)
{
	uint64_t ids[4];
	for (int i = 0; i < 4; i++) {
		char d[128], name[16];
		snprintf(name, sizeof(name), "s%d", i);
		subdir(d, sizeof(d), name);
		struct queue_producer *p = prod_open_dir(d, 64 * KIB);
		ids[i] = queue_stream_id(p);
		cr_assert_neq(ids[i], 0);
		produce(p, 10);
		queue_producer_close(p);
		p = prod_open_dir(d, 64 * KIB);
		cr_assert_eq(queue_stream_id(p), ids[i], "stream_id changed on reopen");
		struct queue_consumer *c = cons_open_dir(d);
		cr_assert_eq(queue_consumer_stream_id(c), ids[i]);
		queue_consumer_close(c);
		queue_producer_close(p);
		for (int j = 0; j < i; j++)
			cr_assert_neq(ids[i], ids[j], "two queues with the same stream_id");
	}
	/* not just nonzero: spread over the 64 bits */
	uint64_t orbits = 0;
	for (int i = 0; i < 4; i++)
		orbits |= ids[i];
	cr_assert_gt(__builtin_popcountll(orbits), 40);
}

Test(queue, wrap_frame)
{
	uint64_t cap = 64 * KIB;
	struct queue_producer *p = prod_open(cap);
	struct queue_consumer *c = cons_open();
	advance_to(p, c, cap - 40);
	uint64_t start = queue_write_pos(p);
	/* 100 bytes need 120: does not fit in the last 40 */
	uint64_t s = produce(p, 100);
	cr_assert_eq(queue_write_pos(p), start + 40 + 120);
	cr_assert_eq(ring_get(queue_dir, cap - 40, 4), 40, "wrap frame length");
	cr_assert_eq(ring_get(queue_dir, cap - 36, 4), QUEUE_FRAME_WRAP, "wrap frame kind");
	cr_assert_eq(ring_get(queue_dir, 0, 4), 116, "record frame length");
	cr_assert_eq(ring_get(queue_dir, 4, 4), QUEUE_FRAME_RECORD);
	cr_assert_eq(ring_get(queue_dir, 8, 8), s);
	cr_assert_eq(hdr_get(queue_dir, QUEUE_HDR_LAST_RECORD_POS, 8), start + 40);
	struct queue_record r = consume(c, s, 100);
	cr_assert_eq(r.pos, start + 40 + 120);
	queue_release(c, r.pos);
	/* a wrap frame of 8 bytes: only length and kind fit */
	advance_to(p, c, cap - 8);
	start = queue_write_pos(p);
	s = produce(p, 0);
	cr_assert_eq(ring_get(queue_dir, cap - 8, 4), 8);
	cr_assert_eq(ring_get(queue_dir, cap - 4, 4), QUEUE_FRAME_WRAP);
	r = consume(c, s, 0);
	cr_assert_eq(r.pos, start + 8 + 16);
	queue_consumer_close(c);
	queue_producer_close(p);
}

/* payload sizes 0..64 and around the maximum */
Test(queue, payload_size_boundaries)
{
	uint64_t cap = 64 * KIB;
	uint32_t max = (uint32_t)queue_max_payload(cap);
	struct queue_producer *p = prod_open(cap);
	struct queue_consumer *c = cons_open();
	for (uint32_t len = 0; len <= 64; len++) {
		uint64_t before = queue_write_pos(p);
		uint64_t s = produce(p, len);
		struct queue_record r = consume(c, s, len);
		cr_assert_eq(r.pos - before, rec_size(len), "len %u took %ju bytes", len,
			     (uintmax_t)(r.pos - before));
		queue_release(c, r.pos);
	}
	for (uint32_t len = max - 24; len <= max; len++) {
		uint64_t s = produce(p, len);
		struct queue_record r = consume(c, s, len);
		queue_release(c, r.pos);
	}
	cr_assert_null(queue_reserve(p, max + 1));
	cr_assert_null(queue_reserve(p, UINT32_MAX));
	cr_assert_eq(queue_commit(p, 0), 0, "commit after a refused reserve");
	/* the largest record fits however the ring is positioned */
	for (uint64_t t = 8; t <= cap / 4 + 64; t += 8) {
		if (t % 256 != 8 && t < cap / 4 - 64)
			continue;
		advance_to(p, c, cap - t);
		uint64_t s = produce(p, max);
		struct queue_record r = consume(c, s, max);
		queue_release(c, r.pos);
	}
	queue_consumer_close(c);
	queue_producer_close(p);
}

/* Every distance to the ring end, with records a bit smaller, equal and a
 * bit larger than that distance (all 8 payload lengths of each aligned size
 * for the first 512 distances). */
Test(queue, every_distance_to_ring_end)
{
	uint64_t cap = 64 * KIB;
	uint64_t maxrec = cap / 4;
	struct queue_producer *p = prod_open(cap);
	struct queue_consumer *c = cons_open();
	unsigned wraps = 0, records = 0;
	for (uint64_t t = 8; t <= maxrec + 16; t += 8) {
		for (int64_t ds = -8; ds <= 8; ds += 8) {
			int64_t size = (int64_t)t + ds;
			if (size < 16 || size > (int64_t)maxrec)
				continue;
			int lens = t <= 512 ? 8 : 1;
			for (int k = 0; k < lens; k++) {
				int64_t len = size - 16 - k;
				if (len < 0)
					continue;
				advance_to(p, c, cap - t);
				uint64_t start = queue_write_pos(p);
				uint64_t s = produce(p, (uint32_t)len);
				struct queue_record r = consume(c, s, (uint32_t)len);
				bool wrap = (uint64_t)size > t;
				uint64_t expect = wrap ? start + t + (uint64_t)size : start + (uint64_t)size;
				cr_assert_eq(r.pos, expect, "t %ju len %jd: pos %ju, expected %ju",
					     (uintmax_t)t, (intmax_t)len, (uintmax_t)r.pos,
					     (uintmax_t)expect);
				if (wrap) {
					cr_assert_eq(ring_get(queue_dir, cap - t, 4), t);
					cr_assert_eq(ring_get(queue_dir, cap - t + 4, 4), QUEUE_FRAME_WRAP);
					wraps++;
				}
				queue_release(c, r.pos);
				records++;
			}
		}
	}
	cr_assert_gt(wraps, 2000);
	cr_assert_gt(records, 6000);
	queue_consumer_close(c);
	queue_producer_close(p);
}

/* queue_reserve returns NULL exactly when the record (with its wrap frame)
 * would overwrite what the consumer has not released: checked against a
 * model over many laps with random sizes and random consumer progress. */
Test(queue, full_exactly_when_it_should)
{
	uint64_t cap = 64 * KIB;
	uint32_t max = (uint32_t)queue_max_payload(cap);
	struct queue_producer *p = prod_open(cap);
	struct queue_consumer *c = cons_open();
	unsigned seed = 12345;
	uint64_t released = 0;
	uint64_t next_read = 1;
	unsigned fulls = 0, oks = 0;
	static uint32_t lens[65536];
	for (int iter = 0; iter < 60000; iter++) {
		uint32_t len;
		switch (rand_r(&seed) % 4) {
		case 0: len = (uint32_t)rand_r(&seed) % 64; break;
		case 1: len = max - (uint32_t)rand_r(&seed) % 64; break;
		default: len = (uint32_t)rand_r(&seed) % 4000; break;
		}
		uint64_t w = queue_write_pos(p);
		uint64_t size = rec_size(len);
		uint64_t tail = cap - (w & (cap - 1));
		uint64_t total = size <= tail ? size : tail + size;
		bool fits = w + total - released <= cap;
		uint64_t seq = queue_next_seq(p);
		void *d = queue_reserve(p, len);
		cr_assert_eq(d != NULL, fits, "iter %d: reserve(%u) at %ju, released %ju: %s, model says %s",
			     iter, len, (uintmax_t)w, (uintmax_t)released, d ? "space" : "full",
			     fits ? "space" : "full");
		if (d) {
			fill(d, seq, len);
			cr_assert_eq(queue_commit(p, len), seq);
			lens[seq % 65536] = len;
			oks++;
			cr_assert_eq(queue_used(p), queue_write_pos(p) - released);
			cr_assert_leq(queue_used(p), cap);
		} else {
			fulls++;
			cr_assert_eq(queue_write_pos(p), w, "a refused reserve moved the write position");
		}
		if (!d || rand_r(&seed) % 3 == 0) {
			/* the consumer reads and releases a random number */
			int n = rand_r(&seed) % 8;
			struct queue_record r;
			for (int i = 0; i < n && next_read < queue_next_seq(p); i++) {
				r = consume(c, next_read, lens[next_read % 65536]);
				next_read++;
				if (rand_r(&seed) % 2) {
					queue_release(c, r.pos);
					released = r.pos;
				}
			}
		}
	}
	cr_assert_gt(fulls, 1000, "the queue was full only %u times", fulls);
	cr_assert_gt(oks, 20000);
	cr_assert_gt(queue_write_pos(p), 50 * cap, "too few laps");
	queue_consumer_close(c);
	queue_producer_close(p);
}

Test(queue, full_then_drained)
{
	uint64_t cap = 64 * KIB;
	struct queue_producer *p = prod_open(cap);
	struct queue_consumer *c = cons_open();
	/* 1008 bytes of payload: 1024-byte records, 64 fill the ring exactly */
	for (int i = 0; i < 64; i++)
		produce(p, 1008);
	cr_assert_eq(queue_used(p), cap);
	cr_assert_null(queue_reserve(p, 0), "reserve in a full queue");
	struct queue_record r = consume(c, 1, 1008);
	cr_assert_null(queue_reserve(p, 0), "read but not released: still full");
	queue_release(c, r.pos);
	void *d = queue_reserve(p, 1008);
	cr_assert_not_null(d);
	fill(d, 65, 1008);
	cr_assert_eq(queue_commit(p, 1008), 65);
	cr_assert_null(queue_reserve(p, 0));
	for (uint64_t s = 2; s <= 65; s++)
		r = consume(c, s, 1008);
	expect_empty(c);
	queue_release(c, r.pos);
	cr_assert_eq(queue_used(p), 0);
	queue_consumer_close(c);
	queue_producer_close(p);
}

Test(queue, commit_shrinks)
{
	uint64_t cap = 64 * KIB;
	struct queue_producer *p = prod_open(cap);
	struct queue_consumer *c = cons_open();
	cr_assert_eq(queue_commit(p, 0), 0, "commit without a reservation");

	uint64_t start = queue_write_pos(p);
	void *d = queue_reserve(p, 1000);
	cr_assert_not_null(d);
	fill(d, 1, 10);
	cr_assert_eq(queue_commit(p, 1001), 0, "commit may not grow the reservation");
	cr_assert_eq(queue_commit(p, 10), 1);
	cr_assert_eq(queue_write_pos(p), start + rec_size(10));
	cr_assert_eq(queue_commit(p, 10), 0, "second commit of one reservation");
	produce(p, 3);
	struct queue_record r = consume(c, 1, 10);
	cr_assert_eq(r.pos, start + 32);
	r = consume(c, 2, 3);
	queue_release(c, r.pos);

	/* a second reserve abandons the first */
	cr_assert_not_null(queue_reserve(p, 500));
	d = queue_reserve(p, 20);
	cr_assert_not_null(d);
	fill(d, 3, 20);
	cr_assert_eq(queue_commit(p, 20), 3);
	r = consume(c, 3, 20);
	queue_release(c, r.pos);

	/* shrunk after a wrap: the record stays at the ring start */
	advance_to(p, c, cap - 64);
	start = queue_write_pos(p);
	uint64_t seq = queue_next_seq(p);
	d = queue_reserve(p, 200);
	cr_assert_not_null(d);
	fill(d, seq, 8);
	cr_assert_eq(queue_commit(p, 8), seq);
	cr_assert_eq(queue_write_pos(p), start + 64 + 24);
	cr_assert_eq(ring_get(queue_dir, cap - 64 + 4, 4), QUEUE_FRAME_WRAP);
	r = consume(c, seq, 8);
	cr_assert_eq(r.pos, start + 64 + 24);
	/* shrink to zero */
	seq = produce(p, 0);
	d = queue_reserve(p, 4000);
	cr_assert_not_null(d);
	cr_assert_eq(queue_commit(p, 0), seq + 1);
	consume(c, seq, 0);
	consume(c, seq + 1, 0);
	expect_empty(c);
	queue_consumer_close(c);
	queue_producer_close(p);
}

Test(queue, consumer_rewind)
{
	struct queue_producer *p = prod_open(64 * KIB);
	struct queue_consumer *c = cons_open();
	for (int i = 0; i < 20; i++)
		produce(p, (uint32_t)i * 3);
	struct queue_record r;
	for (uint64_t s = 1; s <= 5; s++)
		r = consume(c, s, (uint32_t)(s - 1) * 3);
	queue_release(c, r.pos);
	for (uint64_t s = 6; s <= 12; s++)
		r = consume(c, s, (uint32_t)(s - 1) * 3);
	queue_rewind(c);
	cr_assert_eq(queue_consumer_read_pos(c), queue_consumer_release_pos(c));
	for (uint64_t s = 6; s <= 20; s++)
		r = consume(c, s, (uint32_t)(s - 1) * 3);
	expect_empty(c);
	/* releasing backwards or beyond the read cursor is ignored */
	queue_release(c, r.pos + 8);
	cr_assert_neq(queue_consumer_release_pos(c), r.pos + 8);
	queue_release(c, 8);
	cr_assert_neq(queue_consumer_release_pos(c), 8);
	queue_release(c, r.pos);
	cr_assert_eq(queue_consumer_release_pos(c), r.pos);
	queue_consumer_close(c);
	queue_producer_close(p);
}

/* A buggy producer must not make the consumer read out of bounds. */
Test(queue, consumer_rejects_bad_frames)
{
	uint64_t cap = 64 * KIB;
	struct {
		const char *what;
		uint64_t off;
		size_t width;
		uint64_t value;
		const char *expect; /* after "queue <dir>: " */
	} cases[] = {
		{ "kind", 4, 4, 7, "bad frame at position 0 (length 116, kind 7, write position" },
		{ "length short", 0, 4, 15, "bad frame at position 0 (length 15, kind 1, write position" },
		{ "length huge", 0, 4, 0xfffffff0u, "bad frame at position 0 (length 4294967280, kind 1" },
		{ "length past written", 0, 4, 1000, "bad frame at position 0 (length 1000, kind 1" },
		{ "seq zero", 8, 8, 0, "record at position 0 has seq 0, expected 1" },
		{ "seq gap", 120 + 8, 8, 5, "record at position 120 has seq 5, expected 2" },
		{ "write pos", ~0ull, 8, 3 * cap, "write position 196608 is out of range for read position 0" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char d[128], name[16];
		snprintf(name, sizeof(name), "b%zu", i);
		subdir(d, sizeof(d), name);
		struct queue_producer *p = prod_open_dir(d, cap);
		produce(p, 100);
		produce(p, 100);
		produce(p, 100);
		struct queue_consumer *c = cons_open_dir(d);
		if (cases[i].off == ~0ull)
			hdr_set(d, QUEUE_HDR_WRITE_POS, 8, cases[i].value);
		else
			ring_set(d, cases[i].off, cases[i].width, cases[i].value);
		char err[QUEUE_ERROR_LEN] = "";
		struct queue_record r;
		int n;
		while ((n = queue_read(c, &r, err)) == 1)
			;
		cr_assert_eq(n, -1, "%s: queue_read returned %d", cases[i].what, n);
		char expect[QUEUE_ERROR_LEN];
		snprintf(expect, sizeof(expect), "queue %s: %s", d, cases[i].expect);
		cr_assert(strncmp(err, expect, strlen(expect)) == 0, "%s: got \"%s\", expected \"%s...\"",
			  cases[i].what, err, expect);
		queue_consumer_close(c);
		queue_producer_close(p);
	}
	/* a wrap frame that does not reach the ring end */
	struct queue_producer *p = prod_open(cap);
	struct queue_consumer *c = cons_open();
	advance_to(p, c, cap - 40);
	uint64_t start = queue_write_pos(p);
	produce(p, 100);
	ring_set(queue_dir, cap - 40, 4, 32);
	char err[QUEUE_ERROR_LEN] = "";
	struct queue_record r;
	cr_assert_eq(queue_read(c, &r, err), -1);
	char expect[QUEUE_ERROR_LEN];
	snprintf(expect, sizeof(expect), "queue %s: bad wrap frame at position %ju (length 32, 40 bytes "
		 "to the ring end", queue_dir, (uintmax_t)start);
	cr_assert(strncmp(err, expect, strlen(expect)) == 0, "got \"%s\"", err);
	queue_consumer_close(c);
	queue_producer_close(p);
}

Test(queue, consumer_detached)
{
	struct queue_producer *p = prod_open(64 * KIB);
	struct queue_consumer *c = cons_open();
	cr_assert(!queue_consumer_detached(c));
	queue_producer_close(p);
	p = prod_open(64 * KIB); /* restart: same file */
	cr_assert(!queue_consumer_detached(c));
	queue_producer_close(p);
	char path[256];
	file_path(path, sizeof(path), queue_dir, QUEUE_DATA_FILE);
	cr_assert_eq(unlink(path), 0);
	cr_assert(queue_consumer_detached(c));
	p = prod_open(64 * KIB); /* a new queue in its place */
	cr_assert(queue_consumer_detached(c));
	queue_consumer_close(c);
	queue_producer_close(p);
}

/* ================= refusals ================= */

static void expect_refused(const char *dir, uint64_t cap, const char *expect)
{
	char err[QUEUE_ERROR_LEN] = "";
	struct queue_producer_options o = { .dir = dir, .capacity = cap, .group = (gid_t)-1 };
	struct queue_producer *p = queue_producer_open(&o, err);
	cr_assert_null(p, "queue_producer_open(%s) should have refused", dir);
	cr_assert_str_eq(err, expect);
}

static void make_queue(const char *dir, uint64_t cap, int records)
{
	struct queue_producer *p = prod_open_dir(dir, cap);
	for (int i = 0; i < records; i++)
		produce(p, 10);
	queue_producer_close(p);
}

Test(queue_refuse, other_layout_version)
{
	make_queue(queue_dir, 64 * KIB, 3);
	hdr_set(queue_dir, QUEUE_HDR_LAYOUT_VERSION, 4, 999);
	char expect[QUEUE_ERROR_LEN];
	snprintf(expect, sizeof(expect), "queue %s has layout version 999, this program uses version %u; "
		 "remove the queue or use the matching version", queue_dir, QUEUE_LAYOUT_VERSION);
	expect_refused(queue_dir, 64 * KIB, expect);
	expect_refused(queue_dir, 0, expect);

	char err[QUEUE_ERROR_LEN] = "";
	int e = 0;
	cr_assert_null(queue_consumer_open(queue_dir, &e, err));
	cr_assert_eq(e, EINVAL);
	snprintf(expect, sizeof(expect), "queue %s has layout version 999, this program uses version %u",
		 queue_dir, QUEUE_LAYOUT_VERSION);
	cr_assert_str_eq(err, expect);
}

Test(queue_refuse, other_capacity)
{
	make_queue(queue_dir, 1 * MIB, 3);
	char expect[QUEUE_ERROR_LEN];
	snprintf(expect, sizeof(expect), "queue %s has capacity 1048576 bytes, --queue-size asks for "
		 "2097152; remove the queue or use its size", queue_dir);
	expect_refused(queue_dir, 2 * MIB, expect);
	/* and it is untouched: the right size opens it, sequence intact */
	struct queue_producer *p = prod_open(1 * MIB);
	cr_assert_eq(queue_next_seq(p), 4);
	queue_producer_close(p);
}

Test(queue_refuse, bad_capacity)
{
	expect_refused(queue_dir, 3 * MIB, "queue size 3145728 is not a power of two between 65536 and "
		       "68719476736 bytes");
	expect_refused(queue_dir, 32 * KIB, "queue size 32768 is not a power of two between 65536 and "
		       "68719476736 bytes");
	struct stat st;
	cr_assert_neq(stat(queue_dir, &st), 0, "a refused size created the directory");
}

Test(queue_refuse, symlink_at_data_path)
{
	make_queue(queue_dir, 64 * KIB, 1);
	char path[256], real[256];
	file_path(path, sizeof(path), queue_dir, QUEUE_DATA_FILE);
	file_path(real, sizeof(real), queue_dir, "data.real");
	cr_assert_eq(rename(path, real), 0);
	cr_assert_eq(symlink(real, path), 0);
	char expect[QUEUE_ERROR_LEN];
	snprintf(expect, sizeof(expect), "%s/data is a symbolic link; refusing it", queue_dir);
	expect_refused(queue_dir, 64 * KIB, expect);
	/* a dangling one too (it must not create the target) */
	cr_assert_eq(unlink(path), 0);
	char target[256];
	file_path(target, sizeof(target), base_dir, "elsewhere");
	cr_assert_eq(symlink(target, path), 0);
	expect_refused(queue_dir, 64 * KIB, expect);
	struct stat st;
	cr_assert_neq(lstat(target, &st), 0, "followed the symlink");
	/* the consumer refuses it too */
	char err[QUEUE_ERROR_LEN] = "";
	int e = 0;
	cr_assert_null(queue_consumer_open(queue_dir, &e, err));
	cr_assert_str_eq(err, expect);
}

Test(queue_refuse, data_owned_by_another_user)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to make a file owned by another user");
	make_queue(queue_dir, 64 * KIB, 1);
	char path[256];
	file_path(path, sizeof(path), queue_dir, QUEUE_DATA_FILE);
	cr_assert_eq(chown(path, NOBODY_UID, (gid_t)-1), 0);
	char expect[QUEUE_ERROR_LEN];
	snprintf(expect, sizeof(expect), "%s/data is owned by uid %u, not by this process (uid 0); "
		 "refusing it", queue_dir, NOBODY_UID);
	expect_refused(queue_dir, 64 * KIB, expect);
	/* the consumer refuses a data file that is not the directory owner's */
	char err[QUEUE_ERROR_LEN] = "";
	int e = 0;
	cr_assert_null(queue_consumer_open(queue_dir, &e, err));
	snprintf(expect, sizeof(expect), "%s/data is owned by uid %u, the queue directory by uid 0; "
		 "refusing it", queue_dir, NOBODY_UID);
	cr_assert_str_eq(err, expect);
}

Test(queue_refuse, hard_link)
{
	make_queue(queue_dir, 64 * KIB, 1);
	char path[256], other[256];
	file_path(path, sizeof(path), queue_dir, QUEUE_DATA_FILE);
	file_path(other, sizeof(other), base_dir, "hardlink");
	cr_assert_eq(link(path, other), 0, "link: %s", strerror(errno));
	char expect[QUEUE_ERROR_LEN];
	snprintf(expect, sizeof(expect), "%s/data has 2 links (a hard link elsewhere), expected 1; "
		 "refusing it", queue_dir);
	expect_refused(queue_dir, 64 * KIB, expect);
	cr_assert_eq(unlink(other), 0);
	queue_producer_close(prod_open(64 * KIB));
}

Test(queue_refuse, directory_not_ours)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to make a directory owned by another user");
	cr_assert_eq(mkdir(queue_dir, 0770), 0);
	cr_assert_eq(chown(queue_dir, NOBODY_UID, (gid_t)-1), 0);
	char expect[QUEUE_ERROR_LEN];
	snprintf(expect, sizeof(expect), "queue directory %s is owned by uid %u, not by this process "
		 "(uid 0); refusing it", queue_dir, NOBODY_UID);
	expect_refused(queue_dir, 64 * KIB, expect);
	char path[256];
	file_path(path, sizeof(path), queue_dir, QUEUE_DATA_FILE);
	struct stat st;
	cr_assert_neq(lstat(path, &st), 0, "created a file in a directory that is not ours");
}

Test(queue_refuse, directory_world_writable)
{
	cr_assert_eq(mkdir(queue_dir, 0700), 0);
	cr_assert_eq(chmod(queue_dir, 01777), 0);
	char expect[QUEUE_ERROR_LEN];
	snprintf(expect, sizeof(expect), "queue directory %s is writable by everyone (mode 1777); "
		 "refusing it", queue_dir);
	expect_refused(queue_dir, 64 * KIB, expect);
}

Test(queue_refuse, directory_symlink_or_file)
{
	char real[128];
	subdir(real, sizeof(real), "real");
	cr_assert_eq(mkdir(real, 0700), 0);
	cr_assert_eq(symlink(real, queue_dir), 0);
	char expect[QUEUE_ERROR_LEN];
	snprintf(expect, sizeof(expect), "queue directory %s is a symbolic link; refusing it", queue_dir);
	expect_refused(queue_dir, 64 * KIB, expect);
	cr_assert_eq(unlink(queue_dir), 0);
	int fd = open(queue_dir, O_CREAT | O_WRONLY, 0600);
	cr_assert_geq(fd, 0);
	close(fd);
	snprintf(expect, sizeof(expect), "queue directory %s is not a directory; refusing it", queue_dir);
	expect_refused(queue_dir, 64 * KIB, expect);
}

Test(queue_refuse, second_producer_and_consumer)
{
	struct queue_producer *p = prod_open(64 * KIB);
	char expect[QUEUE_ERROR_LEN];
	snprintf(expect, sizeof(expect), "queue %s is in use by another producer", queue_dir);
	expect_refused(queue_dir, 64 * KIB, expect);
	struct queue_consumer *c = cons_open();
	char err[QUEUE_ERROR_LEN] = "";
	int e = 0;
	cr_assert_null(queue_consumer_open(queue_dir, &e, err));
	snprintf(expect, sizeof(expect), "queue %s already has a consumer (pid %d)", queue_dir,
		 (int)getpid());
	cr_assert_str_eq(err, expect);
	cr_assert_eq(e, EWOULDBLOCK);
	queue_consumer_close(c);
	queue_producer_close(p);
	/* both free again */
	p = prod_open(64 * KIB);
	c = cons_open();
	queue_consumer_close(c);
	queue_producer_close(p);
}

Test(queue_refuse, consumer_before_producer)
{
	char err[QUEUE_ERROR_LEN] = "";
	int e = 0;
	cr_assert_null(queue_consumer_open(queue_dir, &e, err));
	cr_assert_eq(e, ENOENT, "errno %d (%s)", e, err);
	cr_assert_eq(mkdir(queue_dir, 0700), 0);
	e = 0;
	cr_assert_null(queue_consumer_open(queue_dir, &e, err));
	cr_assert_eq(e, ENOENT, "errno %d (%s)", e, err);
	/* and it did not leave files behind that would stop the producer */
	queue_producer_close(prod_open(64 * KIB));
	queue_consumer_close(cons_open());
}

Test(queue_refuse, damaged_header)
{
	make_queue(queue_dir, 64 * KIB, 3);
	hdr_set(queue_dir, QUEUE_HDR_WRITE_POS, 8, 13);
	char expect[QUEUE_ERROR_LEN];
	snprintf(expect, sizeof(expect), "queue %s has a damaged header (write position 13, consumer "
		 "position 0, next seq 4); remove the queue", queue_dir);
	expect_refused(queue_dir, 64 * KIB, expect);
	hdr_set(queue_dir, QUEUE_HDR_WRITE_POS, 8, 3 * rec_size(10));
	hdr_set(queue_dir, QUEUE_HDR_MAGIC, 8, 0x1234);
	snprintf(expect, sizeof(expect), "%s/data is not an ebpf-extractor queue (bad magic); refusing it",
		 queue_dir);
	expect_refused(queue_dir, 64 * KIB, expect);
}

/* ================= restarts ================= */

Test(queue_restart, consumer_restart)
{
	struct queue_producer *p = prod_open(1 * MIB);
	for (uint32_t i = 0; i < 1000; i++)
		produce(p, i % 200);
	struct queue_consumer *c = cons_open();
	struct queue_record r, rel;
	for (uint64_t s = 1; s <= 500; s++) {
		r = consume(c, s, (uint32_t)(s - 1) % 200);
		if (s == 300)
			rel = r;
	}
	queue_release(c, rel.pos);
	queue_consumer_close(c);
	/* read but not released (301..500) are read again; nothing skipped */
	c = cons_open();
	cr_assert_eq(queue_consumer_release_pos(c), rel.pos);
	for (uint64_t s = 301; s <= 1000; s++)
		r = consume(c, s, (uint32_t)(s - 1) % 200);
	expect_empty(c);
	queue_release(c, r.pos);
	for (uint32_t i = 1000; i < 1100; i++)
		produce(p, i % 200);
	queue_consumer_close(c);
	c = cons_open();
	for (uint64_t s = 1001; s <= 1100; s++)
		consume(c, s, (uint32_t)(s - 1) % 200);
	expect_empty(c);
	queue_consumer_close(c);
	queue_producer_close(p);
}

Test(queue_restart, consumer_restart_while_wrapping)
{
	uint64_t cap = 64 * KIB;
	struct queue_producer *p = prod_open(cap);
	struct queue_consumer *c = cons_open();
	uint64_t next_read = 1;
	unsigned seed = 7;
	struct queue_record r;
	for (int round = 0; round < 300; round++) {
		/* produce until full */
		for (;;) {
			uint32_t len = (uint32_t)rand_r(&seed) % 700;
			uint64_t seq = queue_next_seq(p);
			void *d = queue_reserve(p, len);
			if (!d)
				break;
			fill(d, seq, len);
			queue_commit(p, len);
		}
		/* read some, release fewer, restart */
		int n = 1 + rand_r(&seed) % 120, k = rand_r(&seed) % (n + 1);
		char err[QUEUE_ERROR_LEN];
		for (int i = 0; i < n; i++) {
			int got = queue_read(c, &r, err);
			cr_assert_eq(got, 1, "%s", err);
			cr_assert_eq(r.seq, next_read + (uint64_t)i);
			cr_assert(check(r.data, r.seq, r.len));
			if (i + 1 == k)
				queue_release(c, r.pos);
		}
		next_read += (uint64_t)k;
		queue_consumer_close(c);
		c = cons_open();
	}
	cr_assert_gt(queue_write_pos(p), 20 * cap);
	queue_consumer_close(c);
	queue_producer_close(p);
}

/* A consumer file of an older queue (another stream_id) is reset. */
Test(queue_restart, consumer_file_of_older_queue)
{
	struct queue_producer *p = prod_open(64 * KIB);
	for (int i = 0; i < 10; i++)
		produce(p, 50);
	struct queue_consumer *c = cons_open();
	struct queue_record r;
	for (uint64_t s = 1; s <= 10; s++)
		r = consume(c, s, 50);
	queue_release(c, r.pos);
	queue_consumer_close(c);
	queue_producer_close(p);
	/* a new queue in the same directory: the consumer file stays */
	char path[256];
	file_path(path, sizeof(path), queue_dir, QUEUE_DATA_FILE);
	cr_assert_eq(unlink(path), 0);
	p = prod_open(64 * KIB);
	cr_assert_eq(queue_next_seq(p), 1);
	produce(p, 7);
	cr_assert_eq(queue_used(p), 24, "the old consumer file's release position was taken");
	c = cons_open();
	cr_assert_eq(queue_consumer_stream_id(c), queue_stream_id(p));
	cr_assert_eq(queue_consumer_release_pos(c), 0);
	consume(c, 1, 7);
	queue_consumer_close(c);
	queue_producer_close(p);
}

/* A consumer without a consumer file starts where the producer last saw
 * the consumer's release. */
Test(queue_restart, new_consumer_starts_at_consumer_pos_seen)
{
	struct queue_producer *p = prod_open(64 * KIB);
	for (int i = 0; i < 10; i++)
		produce(p, 50);
	struct queue_consumer *c = cons_open();
	struct queue_record r;
	for (uint64_t s = 1; s <= 4; s++)
		r = consume(c, s, 50);
	queue_release(c, r.pos);
	cr_assert_eq(queue_used(p), 6 * rec_size(50)); /* the producer looks */
	queue_consumer_close(c);
	char path[256];
	file_path(path, sizeof(path), queue_dir, QUEUE_CONSUMER_FILE);
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(queue_used(p), 6 * rec_size(50), "no consumer: the last position seen holds");
	c = cons_open();
	cr_assert_eq(queue_consumer_release_pos(c), 4 * rec_size(50));
	for (uint64_t s = 5; s <= 10; s++)
		consume(c, s, 50);
	queue_consumer_close(c);
	queue_producer_close(p);
}

/* The consumer file is replaced (unlinked, a new one made) while the
 * producer holds the old one open: the producer must read the new one
 * before it trusts a release position. */
Test(queue_restart, replaced_consumer_file)
{
	struct queue_producer *p = prod_open(64 * KIB);
	for (int i = 0; i < 10; i++)
		produce(p, 50);
	uint64_t w = queue_write_pos(p);
	struct queue_consumer *c = cons_open();
	struct queue_record r;
	for (uint64_t s = 1; s <= 4; s++)
		r = consume(c, s, 50);
	queue_release(c, r.pos);
	uint64_t r4 = r.pos;
	cr_assert_eq(queue_used(p), w - r4); /* the producer has the file open now */
	queue_consumer_close(c);

	char path[256];
	file_path(path, sizeof(path), queue_dir, QUEUE_CONSUMER_FILE);
	int old = open(path, O_RDWR);
	cr_assert_geq(old, 0);
	cr_assert_eq(pwrite(old, &w, 8, QUEUE_CON_RELEASE_POS), 8); /* valid, but stale */
	close(old);
	cr_assert_eq(unlink(path), 0);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
	cr_assert_geq(fd, 0);
	uint64_t st[4] = { QUEUE_CONSUMER_MAGIC, queue_stream_id(p), r4, 0 };
	cr_assert_eq(pwrite(fd, st, sizeof(st), 0), (ssize_t)sizeof(st));
	close(fd);
	cr_assert_eq(queue_used(p), w - r4, "the producer used the unlinked consumer file");
	c = cons_open();
	for (uint64_t s = 5; s <= 10; s++)
		consume(c, s, 50);
	queue_consumer_close(c);
	queue_producer_close(p);
}

Test(queue_restart, producer_restart)
{
	uint64_t cap = 64 * KIB;
	struct queue_producer *p = prod_open(cap);
	uint64_t id = queue_stream_id(p);
	struct queue_consumer *c = cons_open(); /* stays open across restarts */
	uint64_t next_read = 1, next_len = 0;
	struct queue_record r;
	for (int restart = 0; restart < 50; restart++) {
		for (int i = 0; i < 100; i++)
			produce(p, (uint32_t)((next_len++ * 13) % 500));
		uint64_t next = queue_next_seq(p);
		queue_producer_close(p);
		p = prod_open(restart % 2 ? cap : 0);
		cr_assert_eq(queue_stream_id(p), id, "stream_id changed");
		cr_assert_eq(queue_next_seq(p), next, "next seq %ju after restart, expected %ju",
			     (uintmax_t)queue_next_seq(p), (uintmax_t)next);
		/* the consumer reads everything, even across the restart */
		while (next_read < queue_next_seq(p)) {
			r = consume(c, next_read, (uint32_t)(((next_read - 1) * 13) % 500));
			next_read++;
		}
		queue_release(c, r.pos);
	}
	cr_assert_gt(queue_write_pos(p), 20 * cap);
	expect_empty(c);
	queue_consumer_close(c);
	queue_producer_close(p);
}

/* A restarted producer must respect what the consumer has not released,
 * also when it starts with only consumer_pos_seen to go by. */
Test(queue_restart, producer_restart_full_queue)
{
	uint64_t cap = 64 * KIB;
	struct queue_producer *p = prod_open(cap);
	struct queue_consumer *c = cons_open();
	int n = 0;
	while (queue_reserve(p, 1000)) {
		fill(queue_reserve(p, 1000), queue_next_seq(p), 1000);
		queue_commit(p, 1000);
		n++;
	}
	struct queue_record r = consume(c, 1, 1000);
	queue_release(c, r.pos);
	queue_producer_close(p);
	p = prod_open(cap);
	cr_assert_not_null(queue_reserve(p, 1000), "the released record's space");
	fill(queue_reserve(p, 1000), queue_next_seq(p), 1000);
	queue_commit(p, 1000);
	cr_assert_null(queue_reserve(p, 1000));
	for (uint64_t s = 2; s <= (uint64_t)n + 1; s++)
		consume(c, s, 1000);
	expect_empty(c);
	queue_consumer_close(c);
	queue_producer_close(p);
}

/* Crash recovery: the commit stores last_record_pos, write_pos, next_seq
 * in that order. Each crash point is simulated by editing the header of a
 * closed queue into the state a producer killed there would leave. */
Test(queue_restart, crash_points)
{
	uint64_t cap = 64 * KIB;
	const char *names[] = { "payload written", "last_record_pos stored", "write_pos stored",
				"next_seq stored" };
	int variant = 0;
	for (int k = 0; k <= 3; k += 3) {             /* records before the crash */
		for (int wrap = 0; wrap <= 1; wrap++) {
			for (int cp = 0; cp < 4; cp++, variant++) {
				char d[128], name[16];
				snprintf(name, sizeof(name), "c%d", variant);
				subdir(d, sizeof(d), name);
				struct queue_producer *p = prod_open_dir(d, cap);
				struct queue_consumer *c = cons_open_dir(d);
				uint64_t first = 1;
				if (wrap) {
					/* k records of 56 bytes leave 32 to the end: k+1 wraps */
					advance_to(p, c, cap - 32 - (uint64_t)k * 56);
					first = queue_next_seq(p);
				}
				uint64_t start_k = 0, end_k = queue_write_pos(p);
				for (int i = 0; i < k; i++) {
					produce(p, 40);
					start_k = hdr_get(d, QUEUE_HDR_LAST_RECORD_POS, 8);
					end_k = queue_write_pos(p);
				}
				if (k == 0)
					start_k = hdr_get(d, QUEUE_HDR_LAST_RECORD_POS, 8);
				uint64_t seq_k1 = produce(p, 100); /* the record being committed */
				uint64_t start_k1 = hdr_get(d, QUEUE_HDR_LAST_RECORD_POS, 8);
				uint64_t end_k1 = queue_write_pos(p);
				if (wrap)
					cr_assert_eq(start_k1 % cap, 0, "record k+1 should have wrapped");
				queue_producer_close(p);

				uint64_t last = cp >= 1 ? start_k1 : start_k;
				uint64_t w = cp >= 2 ? end_k1 : end_k;
				uint64_t next = cp >= 3 ? seq_k1 + 1 : seq_k1;
				hdr_set(d, QUEUE_HDR_LAST_RECORD_POS, 8, last);
				hdr_set(d, QUEUE_HDR_WRITE_POS, 8, w);
				hdr_set(d, QUEUE_HDR_NEXT_SEQ, 8, next);

				p = prod_open_dir(d, cap);
				uint64_t want = cp >= 2 ? seq_k1 + 1 : seq_k1;
				cr_assert_eq(queue_next_seq(p), want,
					     "k %d wrap %d crash after %s: next seq %ju, expected %ju", k,
					     wrap, names[cp], (uintmax_t)queue_next_seq(p), (uintmax_t)want);
				cr_assert_eq(hdr_get(d, QUEUE_HDR_NEXT_SEQ, 8), want);
				for (int i = 0; i < 3; i++)
					produce(p, 24);
				/* the consumer sees one contiguous sequence; the record that
				 * was not committed (100 bytes) is gone, not half there */
				uint64_t s = first;
				for (int i = 0; i < k; i++)
					consume(c, s++, 40);
				if (cp >= 2)
					consume(c, s++, 100);
				for (int i = 0; i < 3; i++)
					consume(c, s++, 24);
				expect_empty(c);
				queue_consumer_close(c);
				queue_producer_close(p);
			}
		}
	}
	cr_assert_eq(variant, 16);
}

/* ================= wake-ups ================= */

static int fifo_bytes(int fd)
{
	int n = -1;
	cr_assert_eq(ioctl(fd, FIONREAD, &n), 0);
	return n;
}

static int con_sleeping(const char *dir)
{
	char path[256];
	file_path(path, sizeof(path), dir, QUEUE_CONSUMER_FILE);
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	uint32_t v = 0;
	cr_assert_eq(pread(fd, &v, 4, QUEUE_CON_SLEEPING), 4);
	close(fd);
	return (int)v;
}

Test(queue_wake, doorbell_only_when_sleeping)
{
	struct queue_producer *p = prod_open(64 * KIB);
	queue_notify(p); /* no consumer yet: nothing happens, nothing breaks */
	struct queue_consumer *c = cons_open();
	int bell = queue_doorbell_fd(c);
	cr_assert_eq(fifo_bytes(bell), 0);

	/* awake: no doorbell however often the producer notifies */
	for (int i = 0; i < 10; i++) {
		produce(p, 8);
		queue_notify(p);
	}
	cr_assert_eq(fifo_bytes(bell), 0, "doorbell rung for an awake consumer");
	cr_assert_eq(con_sleeping(queue_dir), 0);

	/* records pending: prepare_sleep refuses and leaves the flag clear */
	cr_assert(!queue_prepare_sleep(c));
	cr_assert_eq(con_sleeping(queue_dir), 0);
	queue_notify(p);
	cr_assert_eq(fifo_bytes(bell), 0);

	struct queue_record r;
	for (uint64_t s = 1; s <= 10; s++)
		r = consume(c, s, 8);
	queue_release(c, r.pos);
	cr_assert(queue_prepare_sleep(c));
	cr_assert_eq(con_sleeping(queue_dir), 1);
	/* nothing committed, nothing notified: poll times out */
	struct pollfd pfd = { .fd = bell, .events = POLLIN };
	cr_assert_eq(poll(&pfd, 1, 0), 0);
	produce(p, 8);
	queue_notify(p);
	cr_assert_eq(fifo_bytes(bell), 1);
	cr_assert_eq(poll(&pfd, 1, 1000), 1);
	cr_assert(pfd.revents & POLLIN);
	queue_notify(p);
	queue_notify(p);
	cr_assert_eq(fifo_bytes(bell), 3, "one byte per notify while the consumer sleeps");
	queue_wake(c);
	cr_assert_eq(fifo_bytes(bell), 0, "queue_wake drains the doorbell");
	cr_assert_eq(con_sleeping(queue_dir), 0);
	queue_notify(p);
	cr_assert_eq(fifo_bytes(bell), 0);
	consume(c, 11, 8);

	/* a producer restart does not leave the doorbell in POLLHUP */
	queue_producer_close(p);
	pfd.revents = 0;
	cr_assert_eq(poll(&pfd, 1, 0), 0, "poll reported %x after the producer left", pfd.revents);
	p = prod_open(64 * KIB);
	cr_assert(queue_prepare_sleep(c));
	produce(p, 8);
	queue_notify(p);
	cr_assert_eq(fifo_bytes(bell), 1);
	queue_wake(c);
	consume(c, 12, 8);

	/* the consumer closes: the flag is cleared */
	cr_assert(queue_prepare_sleep(c));
	queue_consumer_close(c);
	cr_assert_eq(con_sleeping(queue_dir), 0);
	queue_producer_close(p);
}

/* The doorbell FIFO is full (a consumer that sleeps and never reads it):
 * notify must not block. */
Test(queue_wake, full_doorbell_does_not_block)
{
	struct queue_producer *p = prod_open(64 * KIB);
	struct queue_consumer *c = cons_open();
	cr_assert(queue_prepare_sleep(c));
	uint64_t t0 = now_ns();
	for (int i = 0; i < 70000; i++)
		queue_notify(p);
	cr_assert_lt(now_ns() - t0, 30ull * 1000000000ull);
	int n = fifo_bytes(queue_doorbell_fd(c));
	cr_assert(n >= 4096 && n < 70000, "%d bytes in the doorbell", n);
	queue_wake(c);
	cr_assert_eq(fifo_bytes(queue_doorbell_fd(c)), 0);
	queue_consumer_close(c);
	queue_producer_close(p);
}

/* The consumer went away (doorbell reader closed) while the producer held
 * the doorbell open: the write gets EPIPE, and SIGPIPE (left at SIG_DFL by
 * this test) must not kill the producer; a new consumer is rung. */
Test(queue_wake, vanished_consumer_no_sigpipe)
{
	signal(SIGPIPE, SIG_DFL);
	struct queue_producer *p = prod_open(64 * KIB); /* must ignore SIGPIPE itself */
	struct sigaction sa;
	cr_assert_eq(sigaction(SIGPIPE, NULL, &sa), 0);
	cr_assert_eq(sa.sa_handler, SIG_IGN, "queue_producer_open left SIGPIPE at its default");
	struct queue_consumer *c = cons_open();
	cr_assert(queue_prepare_sleep(c));
	produce(p, 1);
	queue_notify(p); /* opens the doorbell */
	cr_assert_eq(fifo_bytes(queue_doorbell_fd(c)), 1);
	/* kill the consumer without a clean close: flag stays 1 */
	int state = -1;
	{
		char path[256];
		file_path(path, sizeof(path), queue_dir, QUEUE_CONSUMER_FILE);
		state = open(path, O_RDWR);
		cr_assert_geq(state, 0);
	}
	queue_consumer_close(c);
	uint32_t one = 1;
	cr_assert_eq(pwrite(state, &one, 4, QUEUE_CON_SLEEPING), 4);
	produce(p, 1);
	queue_notify(p); /* EPIPE */
	queue_notify(p);
	close(state);
	/* a new consumer */
	c = cons_open();
	consume(c, 1, 1);
	consume(c, 2, 1);
	cr_assert(queue_prepare_sleep(c));
	produce(p, 1);
	queue_notify(p);
	cr_assert_eq(fifo_bytes(queue_doorbell_fd(c)), 1, "the new consumer was not rung");
	queue_consumer_close(c);
	queue_producer_close(p);
}

/* ================= two processes ================= */

static uint32_t stress_len(uint64_t seq, uint32_t max)
{
	return (uint32_t)(mix(seq * 0x9e3779b97f4a7c15ull) % (max + 1));
}

struct stress_result {
	uint64_t records;
	uint64_t sleeps;
	uint64_t wakeups;
	uint64_t fulls;
	double seconds;
};

/* the producer process: returns its exit status */
static int stress_producer(const char *dir, uint64_t count, uint32_t maxlen, uint64_t batch,
			   uint64_t deadline)
{
	char err[QUEUE_ERROR_LEN];
	struct queue_producer_options o = { .dir = dir, .capacity = 0, .group = (gid_t)-1 };
	struct queue_producer *p = queue_producer_open(&o, err);
	if (!p) {
		fprintf(stderr, "stress producer: %s\n", err);
		return 2;
	}
	uint64_t fulls = 0;
	for (uint64_t seq = 1; seq <= count; seq++) {
		uint32_t len = stress_len(seq, maxlen);
		void *d;
		while (!(d = queue_reserve(p, len))) {
			fulls++;
			queue_notify(p);
			sched_yield();
			if ((fulls & 1023) == 0 && now_ns() > deadline) {
				fprintf(stderr, "stress producer: stuck at seq %ju (queue full)\n",
					(uintmax_t)seq);
				return 3;
			}
		}
		fill(d, seq, len);
		if (queue_commit(p, len) != seq) {
			fprintf(stderr, "stress producer: commit did not return %ju\n", (uintmax_t)seq);
			return 4;
		}
		if (seq % batch == 0)
			queue_notify(p);
	}
	queue_notify(p);
	queue_producer_close(p);
	return 0;
}

static void stress_run(uint64_t cap, uint64_t count, uint32_t maxlen, uint64_t batch,
		       struct stress_result *res)
{
	/* the queue exists before the fork, so the consumer can open it */
	queue_producer_close(prod_open(cap));
	struct queue_consumer *c = cons_open();
	uint64_t t0 = now_ns();
	uint64_t deadline = t0 + 200ull * 1000000000ull;
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(stress_producer(queue_dir, count, maxlen, batch, deadline));

	uint64_t expect = 1, unreleased = 0, sleeps = 0, wakeups = 0;
	struct queue_record r = { 0 };
	char err[QUEUE_ERROR_LEN];
	bool ok = true;
	while (expect <= count) {
		int n = queue_read(c, &r, err);
		if (n == 1) {
			uint32_t len = stress_len(expect, maxlen);
			if (r.seq != expect || r.len != len || !check(r.data, r.seq, r.len)) {
				snprintf(err, sizeof(err), "record %ju: seq %ju len %u (expected len %u)%s",
					 (uintmax_t)expect, (uintmax_t)r.seq, r.len, len,
					 check(r.data, r.seq, r.len) ? "" : ", payload damaged");
				ok = false;
				break;
			}
			expect++;
			if (++unreleased == 256) {
				queue_release(c, r.pos);
				unreleased = 0;
			}
			continue;
		}
		if (n < 0) {
			ok = false;
			break;
		}
		if (unreleased) {
			queue_release(c, r.pos);
			unreleased = 0;
		}
		if (!queue_prepare_sleep(c))
			continue;
		sleeps++;
		struct pollfd pfd = { .fd = queue_doorbell_fd(c), .events = POLLIN };
		int pr = poll(&pfd, 1, 20000);
		if (pr == 0) {
			snprintf(err, sizeof(err), "no wake-up within 20 s waiting for record %ju "
				 "(lost wake-up?)", (uintmax_t)expect);
			ok = false;
			break;
		}
		wakeups++;
		queue_wake(c);
	}
	if (!ok)
		kill(pid, SIGKILL);
	int status = 0;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	uint64_t t1 = now_ns();
	cr_assert(ok, "consumer: %s", err);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "producer exited with status %d",
		  status);
	expect_empty(c);
	queue_consumer_close(c);
	res->records = expect - 1;
	res->sleeps = sleeps;
	res->wakeups = wakeups;
	res->seconds = (double)(t1 - t0) / 1e9;
}

static uint64_t stress_count(void)
{
	const char *env = getenv("QUEUE_STRESS_RECORDS");
	if (env && *env)
		return strtoull(env, NULL, 10);
	/* 20 million takes ~12 s with ASan+UBSan on 2 cores, ~3 s without */
	return 20000000;
}

Test(queue_stress, two_processes_20_million)
{
	struct stress_result res;
	uint64_t count = stress_count();
	stress_run(1 * MIB, count, 200, 64, &res);
	cr_assert_eq(res.records, count);
	fprintf(stderr, "stress: %ju records (0..200 bytes) in %.2f s (%.1f M/s), %ju sleeps, %ju "
		"wake-ups\n", (uintmax_t)res.records, res.seconds,
		(double)res.records / res.seconds / 1e6, (uintmax_t)res.sleeps,
		(uintmax_t)res.wakeups);
}

/* Small batches and a small ring: the consumer sleeps and wakes all the
 * time, so a lost wake-up shows as a 20 s stall. Large records too. */
Test(queue_stress, sleep_wake_races)
{
	struct stress_result res;
	uint64_t count = stress_count() / 40;
	stress_run(64 * KIB, count, 3000, 1, &res);
	cr_assert_eq(res.records, count);
	fprintf(stderr, "sleep/wake: %ju records in %.2f s, %ju sleeps\n", (uintmax_t)res.records,
		res.seconds, (uintmax_t)res.sleeps);
	cr_assert_gt(res.sleeps, 10, "the consumer never slept: the test did not test wake-ups");
}

/* Ping-pong: the producer writes one record, notifies once and waits until
 * the consumer has released it, so every record needs exactly one wake-up
 * and a lost one shows as a stall. Random delays on both sides make the
 * producer commit inside the consumer's read-empty -> prepare_sleep window
 * often (prepare_sleep must then say false). */
Test(queue_wake, ping_pong_no_lost_wakeup)
{
	const uint64_t n = 30000;
	queue_producer_close(prod_open(64 * KIB));
	struct queue_consumer *c = cons_open();
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char err[QUEUE_ERROR_LEN];
		struct queue_producer_options o = { .dir = queue_dir, .group = (gid_t)-1 };
		struct queue_producer *p = queue_producer_open(&o, err);
		if (!p)
			_exit(2);
		unsigned seed = 5;
		for (uint64_t seq = 1; seq <= n; seq++) {
			for (volatile int spin = rand_r(&seed) % 2000; spin > 0; spin--)
				;
			void *d = queue_reserve(p, (uint32_t)(seq % 64));
			if (!d)
				_exit(3);
			fill(d, seq, (uint32_t)(seq % 64));
			queue_commit(p, (uint32_t)(seq % 64));
			queue_notify(p);
			uint64_t deadline = now_ns() + 10ull * 1000000000ull;
			while (queue_used(p) != 0) {
				if (now_ns() > deadline)
					_exit(4);
				sched_yield();
			}
		}
		queue_producer_close(p);
		_exit(0);
	}
	unsigned seed = 11;
	uint64_t expect = 1, refused = 0, slept = 0;
	char err[QUEUE_ERROR_LEN] = "";
	bool ok = true;
	while (expect <= n && ok) {
		struct queue_record r;
		int got = queue_read(c, &r, err);
		if (got == 1) {
			ok = r.seq == expect && check(r.data, r.seq, r.len);
			queue_release(c, r.pos);
			expect++;
			continue;
		}
		if (got < 0)
			break;
		/* the window between "empty" and prepare_sleep: usually short,
		 * one time in four long enough for the producer to commit in it
		 * however loaded the machine is (this pause creates the race; it
		 * waits for nothing) */
		if (rand_r(&seed) % 4 == 0) {
			struct timespec pause = { 0, 20000 + rand_r(&seed) % 280000 };
			nanosleep(&pause, NULL);
		} else {
			for (volatile int spin = rand_r(&seed) % 20000; spin > 0; spin--)
				;
		}
		if (!queue_prepare_sleep(c)) {
			refused++;
			continue;
		}
		slept++;
		struct pollfd pfd = { .fd = queue_doorbell_fd(c), .events = POLLIN };
		if (poll(&pfd, 1, 5000) == 0) {
			snprintf(err, sizeof(err), "lost wake-up: no doorbell for 5 s waiting for record %ju",
				 (uintmax_t)expect);
			ok = false;
			break;
		}
		queue_wake(c);
	}
	if (!ok || expect <= n)
		kill(pid, SIGKILL);
	int status;
	waitpid(pid, &status, 0);
	cr_assert(ok && expect == n + 1, "consumer stopped at %ju: %s", (uintmax_t)expect, err);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "producer status %d", status);
	fprintf(stderr, "ping-pong: %ju records, %ju sleeps, prepare_sleep said false %ju times\n",
		(uintmax_t)n, (uintmax_t)slept, (uintmax_t)refused);
	cr_assert_gt(slept, n / 30, "the consumer hardly slept: not a wake-up test");
	cr_assert_gt(refused, n / 100, "the race window was hardly hit (prepare_sleep said false %ju "
		     "times)", (uintmax_t)refused);
	queue_consumer_close(c);
}

/* ================= a hostile consumer ================= */

static void unlink_any(int dfd, const char *name)
{
	if (unlinkat(dfd, name, 0) != 0 && (errno == EISDIR || errno == EPERM))
		unlinkat(dfd, name, AT_REMOVEDIR);
}

static uint64_t hostile_pos(unsigned *seed, uint64_t w, uint64_t cap)
{
	switch (rand_r(seed) % 10) {
	case 0: return ((uint64_t)rand_r(seed) << 32) ^ (uint64_t)rand_r(seed);
	case 1: return w;
	case 2: return w + 8;
	case 3: return w > cap ? w - cap : 0;
	case 4: return w > cap ? w - cap - 8 : 0;
	case 5: return w - 3;
	case 6: return UINT64_MAX;
	case 7: return 0;
	default: return w > 64 ? (w - (uint64_t)(rand_r(seed) % 8192)) & ~7ull : w;
	}
}

/* The child: everything a consumer (same uid here, the worst case) can do
 * to its own files, at random, until the deadline. */
static void hostile_child(const char *dir, uint64_t stream_id, uint64_t cap, uint64_t deadline)
{
	unsigned seed = (unsigned)getpid();
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	char data[256];
	file_path(data, sizeof(data), dir, QUEUE_DATA_FILE);
	int datafd = open(data, O_RDONLY);
	if (dfd < 0 || datafd < 0)
		_exit(2);
	int held[8];
	int nheld = 0;
	uint64_t iter = 0;
	while (now_ns() < deadline) {
		iter++;
		uint64_t w = 0;
		if (pread(datafd, &w, 8, QUEUE_HDR_WRITE_POS) != 8)
			_exit(3);
		int cfd = openat(dfd, QUEUE_CONSUMER_FILE, O_RDWR | O_NOFOLLOW | O_NONBLOCK);
		switch (rand_r(&seed) % 16) {
		case 0:
		case 1: { /* a well-formed file with a random release position */
			if (cfd < 0) {
				unlink_any(dfd, QUEUE_CONSUMER_FILE);
				cfd = openat(dfd, QUEUE_CONSUMER_FILE, O_RDWR | O_CREAT | O_NOFOLLOW, 0644);
			}
			if (cfd < 0)
				break;
			uint64_t st[4] = { QUEUE_CONSUMER_MAGIC, stream_id, hostile_pos(&seed, w, cap),
					   (uint64_t)(rand_r(&seed) % 3) };
			if (pwrite(cfd, st, sizeof(st), 0) < 0)
				break;
			break;
		}
		case 2:
		case 3: /* release only */
			if (cfd >= 0) {
				uint64_t r = hostile_pos(&seed, w, cap);
				if (pwrite(cfd, &r, 8, QUEUE_CON_RELEASE_POS) < 0)
					break;
			}
			break;
		case 4: /* sleeping */
			if (cfd >= 0) {
				uint32_t s = (uint32_t)rand_r(&seed) % 4;
				if (s == 3)
					s = UINT32_MAX;
				if (pwrite(cfd, &s, 4, QUEUE_CON_SLEEPING) < 0)
					break;
			}
			break;
		case 5: /* truncate */
			if (cfd >= 0 && ftruncate(cfd, rand_r(&seed) % 40) != 0)
				break;
			break;
		case 6: /* garbage, sometimes with the right magic and stream */
			if (cfd >= 0) {
				uint64_t g[4];
				for (int i = 0; i < 4; i++)
					g[i] = ((uint64_t)rand_r(&seed) << 32) ^ (uint64_t)rand_r(&seed);
				if (rand_r(&seed) % 2) {
					g[0] = QUEUE_CONSUMER_MAGIC;
					g[1] = stream_id;
				}
				if (pwrite(cfd, g, sizeof(g), 0) < 0)
					break;
			}
			break;
		case 7:
			unlink_any(dfd, QUEUE_CONSUMER_FILE);
			break;
		case 8:
			unlink_any(dfd, QUEUE_CONSUMER_FILE);
			mkdirat(dfd, QUEUE_CONSUMER_FILE, 0755);
			break;
		case 9: /* a FIFO, sometimes with a writer holding it */
			unlink_any(dfd, QUEUE_CONSUMER_FILE);
			mkfifoat(dfd, QUEUE_CONSUMER_FILE, 0644);
			if (nheld < 8 && rand_r(&seed) % 2)
				held[nheld++] = openat(dfd, QUEUE_CONSUMER_FILE, O_RDWR | O_NONBLOCK);
			break;
		case 10: { /* a symlink to the data file, to a FIFO, to nowhere */
			const char *targets[] = { data, "/etc/passwd", "doorbell", "/nonexistent" };
			unlink_any(dfd, QUEUE_CONSUMER_FILE);
			if (symlinkat(targets[rand_r(&seed) % 4], dfd, QUEUE_CONSUMER_FILE) != 0)
				break;
			break;
		}
		case 11: { /* a unix socket */
			unlink_any(dfd, QUEUE_CONSUMER_FILE);
			int s = socket(AF_UNIX, SOCK_STREAM, 0);
			struct sockaddr_un a = { .sun_family = AF_UNIX };
			if (strlen(dir) + sizeof(QUEUE_CONSUMER_FILE) + 1 > sizeof(a.sun_path))
				_exit(5);
			memcpy(a.sun_path, dir, strlen(dir));
			memcpy(a.sun_path + strlen(dir), "/" QUEUE_CONSUMER_FILE, sizeof("/" QUEUE_CONSUMER_FILE));
			if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0)
				listen(s, 1);
			if (s >= 0)
				close(s);
			break;
		}
		case 12: /* a new doorbell FIFO with a reader that may go away (EPIPE) */
			unlink_any(dfd, QUEUE_DOORBELL_FILE);
			mkfifoat(dfd, QUEUE_DOORBELL_FILE, 0620);
			if (nheld < 8)
				held[nheld++] = openat(dfd, QUEUE_DOORBELL_FILE, O_RDONLY | O_NONBLOCK);
			break;
		case 13: { /* the doorbell as something else */
			unlink_any(dfd, QUEUE_DOORBELL_FILE);
			switch (rand_r(&seed) % 3) {
			case 0: {
				int f = openat(dfd, QUEUE_DOORBELL_FILE, O_CREAT | O_WRONLY, 0620);
				if (f >= 0)
					close(f);
				break;
			}
			case 1:
				mkdirat(dfd, QUEUE_DOORBELL_FILE, 0755);
				break;
			default:
				if (symlinkat(data, dfd, QUEUE_DOORBELL_FILE) != 0)
					break;
				break;
			}
			break;
		}
		case 14: /* drop a held fd: readers vanish */
			if (nheld > 0) {
				int i = rand_r(&seed) % nheld;
				if (held[i] >= 0)
					close(held[i]);
				held[i] = held[--nheld];
			}
			break;
		default: /* sleep flag set, then stay quiet a moment */
			if (cfd >= 0) {
				uint32_t one = 1;
				if (pwrite(cfd, &one, 4, QUEUE_CON_SLEEPING) < 0)
					break;
			}
			sched_yield();
			break;
		}
		if (cfd >= 0)
			close(cfd);
	}
	_exit(iter > 1000 ? 0 : 4);
}

struct logged {
	uint64_t seq, pos;
	uint32_t len;
};

#define LOG_SIZE 16384

Test(queue_hostile, producer_survives_hostile_consumer)
{
	uint64_t cap = 64 * KIB;
	struct queue_producer *p = prod_open(cap);
	uint64_t stream = queue_stream_id(p);
	char path[256];
	file_path(path, sizeof(path), queue_dir, QUEUE_DATA_FILE);
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	const uint8_t *map = mmap(NULL, QUEUE_HEADER_SIZE + cap, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert_neq(map, MAP_FAILED);
	close(fd);
	const uint8_t *ring = map + QUEUE_HEADER_SIZE;

	uint64_t deadline = now_ns() + 3ull * 1000000000ull;
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		hostile_child(queue_dir, stream, cap, deadline);

	static struct logged log[LOG_SIZE];
	unsigned seed = 99;
	uint64_t committed = 0, fulls = 0, worst = 0;
	int status = 0;
	for (uint64_t iter = 0;; iter++) {
		if ((iter & 255) == 0 && waitpid(pid, &status, WNOHANG) == pid)
			break;
		uint32_t len = (uint32_t)rand_r(&seed) % 300;
		uint64_t seq = queue_next_seq(p);
		uint64_t t0 = now_ns();
		void *d = queue_reserve(p, len);
		if (d) {
			fill(d, seq, len);
			cr_assert_eq(queue_commit(p, len), seq);
			uint64_t pos = *(const volatile uint64_t *)(map + QUEUE_HDR_LAST_RECORD_POS);
			log[seq % LOG_SIZE] = (struct logged){ seq, pos, len };
			committed++;
		} else {
			fulls++;
		}
		if ((iter & 15) == 0 || !d)
			queue_notify(p);
		if ((iter & 1023) == 0)
			cr_assert_leq(queue_used(p), cap);
		uint64_t dt = now_ns() - t0;
		if (dt > worst)
			worst = dt;
	}
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "hostile child status %d", status);
	fprintf(stderr, "hostile: %ju records committed, %ju full, slowest call %.3f ms\n",
		(uintmax_t)committed, (uintmax_t)fulls, (double)worst / 1e6);
	cr_assert_gt(committed, 10000, "the producer hardly moved (%ju records)", (uintmax_t)committed);
	cr_assert_gt(fulls, 0, "the hostile consumer never filled the queue");
	cr_assert_lt(worst, 2000ull * 1000000, "a producer call took %ju ns (blocked?)", (uintmax_t)worst);

	/* every record still in the ring (within one capacity of the write
	 * position) is intact in the producer's own mapping */
	uint64_t w = queue_write_pos(p);
	uint64_t last = queue_next_seq(p) - 1, checked = 0;
	for (uint64_t s = last; s >= 1 && s + LOG_SIZE > last; s--) {
		struct logged *l = &log[s % LOG_SIZE];
		if (l->seq != s || l->pos + cap < w)
			break; /* older: may have been overwritten legitimately */
		const uint8_t *f = ring + (l->pos & (cap - 1));
		uint32_t flen, kind;
		uint64_t fseq;
		memcpy(&flen, f, 4);
		memcpy(&kind, f + 4, 4);
		memcpy(&fseq, f + 8, 8);
		cr_assert_eq(kind, QUEUE_FRAME_RECORD, "seq %ju: kind %u", (uintmax_t)s, kind);
		cr_assert_eq(flen, QUEUE_FRAME_SIZE + l->len);
		cr_assert_eq(fseq, s);
		cr_assert(check(f + QUEUE_FRAME_SIZE, s, l->len), "seq %ju damaged", (uintmax_t)s);
		checked++;
	}
	cr_assert_gt(checked, 100);

	/* an honest consumer takes over from a record boundary at or after the
	 * position the producer last accepted, and reads a clean stream */
	int dfd = open(queue_dir, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(dfd, 0);
	char junk[256];
	file_path(junk, sizeof(junk), queue_dir, QUEUE_CONSUMER_FILE);
	rm_rf(junk);
	file_path(junk, sizeof(junk), queue_dir, QUEUE_DOORBELL_FILE);
	rm_rf(junk);
	queue_used(p); /* the producer notices the file is gone */
	uint64_t seen = *(const volatile uint64_t *)(map + QUEUE_HDR_CONSUMER_POS_SEEN);
	uint64_t start_seq = last + 1, start_pos = w;
	for (uint64_t s = last; s >= 1 && s + LOG_SIZE > last; s--) {
		struct logged *l = &log[s % LOG_SIZE];
		if (l->seq != s || l->pos < seen || l->pos + cap < w)
			break;
		start_seq = s;
		start_pos = l->pos;
	}
	uint64_t start_release = start_pos;
	int cfd = openat(dfd, QUEUE_CONSUMER_FILE, O_RDWR | O_CREAT | O_EXCL, 0644);
	cr_assert_geq(cfd, 0);
	uint64_t st[4] = { QUEUE_CONSUMER_MAGIC, stream, start_release, 0 };
	cr_assert_eq(pwrite(cfd, st, sizeof(st), 0), (ssize_t)sizeof(st));
	close(cfd);
	close(dfd);
	struct queue_consumer *c = cons_open();
	cr_assert_eq(queue_consumer_release_pos(c), start_release);
	struct queue_record r = { 0 };
	for (uint64_t s = start_seq; s <= last; s++)
		r = consume(c, s, log[s % LOG_SIZE].len);
	expect_empty(c);
	if (r.pos)
		queue_release(c, r.pos);
	/* and the queue works normally again: many laps, nothing lost */
	uint64_t s = last + 1;
	for (int i = 0; i < 20000; i++) {
		uint32_t len = (uint32_t)rand_r(&seed) % 300;
		void *d;
		int guard = 0;
		while (!(d = queue_reserve(p, len))) {
			cr_assert_lt(guard++, 3, "the queue stays full after the consumer drained it");
			/* drain */
			while (queue_read(c, &r, NULL) == 1) {
				cr_assert_eq(r.seq, s);
				cr_assert(check(r.data, r.seq, r.len));
				s++;
			}
			queue_release(c, r.pos);
		}
		uint64_t seq = queue_next_seq(p);
		fill(d, seq, len);
		queue_commit(p, len);
	}
	while (queue_read(c, &r, NULL) == 1) {
		cr_assert_eq(r.seq, s);
		cr_assert(check(r.data, r.seq, r.len));
		s++;
	}
	cr_assert_eq(s, queue_next_seq(p));
	queue_consumer_close(c);
	munmap((void *)map, QUEUE_HEADER_SIZE + cap);
	queue_producer_close(p);
}

/* The producer never opens the consumer's files in a way that blocks or
 * follows a link, whatever they are. Each kind, one at a time. */
Test(queue_hostile, odd_files_in_place_of_consumer_and_doorbell)
{
	struct queue_producer *p = prod_open(64 * KIB);
	int dfd = open(queue_dir, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(dfd, 0);
	char target[256];
	file_path(target, sizeof(target), base_dir, "target");
	for (int kind = 0; kind < 8; kind++) {
		unlink_any(dfd, QUEUE_CONSUMER_FILE);
		unlink_any(dfd, QUEUE_DOORBELL_FILE);
		int held = -1;
		uint64_t seen_before = 0;
		switch (kind) {
		case 0: /* FIFOs with no reader/writer: open must not block */
			cr_assert_eq(mkfifoat(dfd, QUEUE_CONSUMER_FILE, 0644), 0);
			cr_assert_eq(mkfifoat(dfd, QUEUE_DOORBELL_FILE, 0620), 0);
			break;
		case 1: /* symlinks to a file the producer could write */
			cr_assert_eq(close(open(target, O_CREAT | O_WRONLY, 0600)), 0);
			cr_assert_eq(symlinkat(target, dfd, QUEUE_CONSUMER_FILE), 0);
			cr_assert_eq(symlinkat(target, dfd, QUEUE_DOORBELL_FILE), 0);
			break;
		case 2: /* directories */
			cr_assert_eq(mkdirat(dfd, QUEUE_CONSUMER_FILE, 0755), 0);
			cr_assert_eq(mkdirat(dfd, QUEUE_DOORBELL_FILE, 0755), 0);
			break;
		case 3: { /* a valid sleeping consumer, and a regular file as doorbell */
			int cfd = openat(dfd, QUEUE_CONSUMER_FILE, O_RDWR | O_CREAT, 0644);
			uint64_t st[4] = { QUEUE_CONSUMER_MAGIC, queue_stream_id(p), queue_write_pos(p), 1 };
			cr_assert_eq(pwrite(cfd, st, sizeof(st), 0), (ssize_t)sizeof(st));
			close(cfd);
			int bfd = openat(dfd, QUEUE_DOORBELL_FILE, O_RDWR | O_CREAT, 0620);
			close(bfd);
			break;
		}
		case 4: { /* valid sleeping consumer; FIFO whose reader never reads */
			int cfd = openat(dfd, QUEUE_CONSUMER_FILE, O_RDWR | O_CREAT, 0644);
			uint64_t st[4] = { QUEUE_CONSUMER_MAGIC, queue_stream_id(p), queue_write_pos(p), 1 };
			cr_assert_eq(pwrite(cfd, st, sizeof(st), 0), (ssize_t)sizeof(st));
			close(cfd);
			cr_assert_eq(mkfifoat(dfd, QUEUE_DOORBELL_FILE, 0620), 0);
			held = openat(dfd, QUEUE_DOORBELL_FILE, O_RDONLY | O_NONBLOCK);
			cr_assert_geq(held, 0);
			break;
		}
		case 5: { /* a hard link to another valid (sleeping) consumer state
			   * and a real doorbell: the state may not be used */
			char other[256];
			file_path(other, sizeof(other), base_dir, "other-state");
			int ofd = open(other, O_RDWR | O_CREAT | O_TRUNC, 0644);
			cr_assert_geq(ofd, 0);
			uint64_t st[4] = { QUEUE_CONSUMER_MAGIC, queue_stream_id(p), queue_write_pos(p), 1 };
			cr_assert_eq(pwrite(ofd, st, sizeof(st), 0), (ssize_t)sizeof(st));
			close(ofd);
			cr_assert_eq(linkat(AT_FDCWD, other, dfd, QUEUE_CONSUMER_FILE, 0), 0);
			cr_assert_eq(mkfifoat(dfd, QUEUE_DOORBELL_FILE, 0620), 0);
			held = openat(dfd, QUEUE_DOORBELL_FILE, O_RDONLY | O_NONBLOCK);
			cr_assert_geq(held, 0);
			seen_before = hdr_get(queue_dir, QUEUE_HDR_CONSUMER_POS_SEEN, 8);
			break;
		}
		case 6: { /* a valid sleeping consumer of our own; the doorbell a hard
			   * link to another FIFO with a reader: it may not be rung */
			int cfd = openat(dfd, QUEUE_CONSUMER_FILE, O_RDWR | O_CREAT, 0644);
			uint64_t st[4] = { QUEUE_CONSUMER_MAGIC, queue_stream_id(p), queue_write_pos(p), 1 };
			cr_assert_eq(pwrite(cfd, st, sizeof(st), 0), (ssize_t)sizeof(st));
			close(cfd);
			char other[256];
			file_path(other, sizeof(other), base_dir, "other-fifo");
			cr_assert_eq(mkfifo(other, 0620), 0);
			held = open(other, O_RDONLY | O_NONBLOCK);
			cr_assert_geq(held, 0);
			cr_assert_eq(linkat(AT_FDCWD, other, dfd, QUEUE_DOORBELL_FILE, 0), 0);
			break;
		}
		default: { /* a consumer file a write lease sits on: open must not wait */
			signal(SIGIO, SIG_IGN);
			int cfd = openat(dfd, QUEUE_CONSUMER_FILE, O_RDWR | O_CREAT, 0644);
			cr_assert_geq(cfd, 0);
			cr_assert_eq(fcntl(cfd, F_SETLEASE, F_WRLCK), 0, "F_SETLEASE: %s", strerror(errno));
			held = cfd;
			break;
		}
		}
		uint64_t t0 = now_ns();
		for (int i = 0; i < 100000; i++) {
			void *d = queue_reserve(p, 100);
			if (d)
				queue_commit(p, 100);
			if (i % 100 == 0) {
				queue_notify(p);
				queue_used(p);
			}
		}
		cr_assert_lt(now_ns() - t0, 20ull * 1000000000ull, "kind %d: too slow (blocked?)", kind);
		cr_assert_leq(queue_used(p), 64 * KIB);
		if (kind == 5) {
			cr_assert_eq(fifo_bytes(held), 0, "rang for a hard-linked consumer file");
			cr_assert_eq(hdr_get(queue_dir, QUEUE_HDR_CONSUMER_POS_SEEN, 8), seen_before,
				     "the producer took a release position from a hard-linked file");
			cr_assert_eq(queue_used(p), 64 * KIB);
		}
		if (kind == 6)
			cr_assert_eq(fifo_bytes(held), 0, "the producer rang a hard-linked doorbell");
		if (held >= 0)
			close(held);
	}
	file_path(target, sizeof(target), base_dir, "target");
	struct stat st;
	cr_assert_eq(stat(target, &st), 0);
	cr_assert_eq(st.st_size, 0, "the producer wrote through a symlink");
	close(dfd);
	queue_producer_close(p);
}
