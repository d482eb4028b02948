#include "source.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "log.h"

static void open_timer_cb(uv_timer_t *t);

static void bell_closed(uv_handle_t *h)
{
	free(h);
}

static void bell_cb(uv_poll_t *p, int status, int events)
{
	struct source *s = p->data;
	if (!s->q)
		return;
	if (status < 0)
		log_warn("queue %s: polling the doorbell: %s", s->dir, uv_strerror(status));
	queue_wake(s->q);
	if (s->handlers.bell)
		s->handlers.bell(s->arg);
}

static void unmap_header(struct source *s)
{
	if (s->hdr) {
		munmap((void *)s->hdr, QUEUE_HEADER_SIZE);
		s->hdr = NULL;
	}
}

/* Maps the header page of the data file the consumer just opened (for the
 * write position and capacity: the stop point on SIGTERM and queue_used in
 * the stats). 1: ok; 0: the file changed in between (retry); -1: error. */
static int map_header(struct source *s)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/" QUEUE_DATA_FILE, s->dir);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(s->last_error, sizeof(s->last_error), "cannot open %.400s: %s", path,
			 strerror(errno));
		return -1;
	}
	void *m = mmap(NULL, QUEUE_HEADER_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	int e = errno;
	close(fd);
	if (m == MAP_FAILED) {
		snprintf(s->last_error, sizeof(s->last_error), "cannot map the header of %.400s: %s",
			 path, strerror(e));
		return -1;
	}
	const uint8_t *h = m;
	uint64_t stream_id =
		atomic_load_explicit((const _Atomic uint64_t *)(h + QUEUE_HDR_STREAM_ID),
				     memory_order_acquire);
	if (stream_id != queue_consumer_stream_id(s->q)) {
		munmap(m, QUEUE_HEADER_SIZE);
		return 0;
	}
	s->hdr = h;
	return 1;
}

static void close_queue(struct source *s)
{
	if (s->bell) {
		uv_close((uv_handle_t *)s->bell, bell_closed);
		s->bell = NULL;
	}
	unmap_header(s);
	if (s->q) {
		queue_consumer_close(s->q);
		s->q = NULL;
	}
	s->stream_id = 0;
}

/* 1: open; 0: not yet (timer armed); -1: refused (message in err). */
static int try_open(struct source *s, bool fatal_refusals, char *err, size_t errlen)
{
	int e = 0;
	char qerr[QUEUE_ERROR_LEN];
	s->q = queue_consumer_open(s->dir, &e, qerr);
	int mapped = 0;
	if (s->q) {
		mapped = map_header(s);
		if (mapped != 1) {
			queue_consumer_close(s->q);
			s->q = NULL;
			if (mapped == 0)
				e = ENOENT;
			else {
				e = EIO;
				snprintf(qerr, sizeof(qerr), "%s", s->last_error);
			}
		}
	}
	if (!s->q) {
		bool refused = e == EINVAL || e == EWOULDBLOCK;
		if (refused && fatal_refusals) {
			snprintf(err, errlen, "%s", qerr);
			return -1;
		}
		if (e == ENOENT) {
			if (!s->waiting_logged)
				log_info("waiting for the queue %s to appear (is ebpf-collector running "
					 "with --queue %s?)", s->dir, s->dir);
			s->waiting_logged = true;
		} else if (e != s->last_errno || strcmp(qerr, s->last_error) != 0) {
			log_error("%s; retrying every %d ms", qerr, SOURCE_RETRY_ERROR_MS);
		}
		s->last_errno = e;
		snprintf(s->last_error, sizeof(s->last_error), "%s", qerr);
		uv_timer_start(&s->open_timer, open_timer_cb,
			       e == ENOENT ? SOURCE_RETRY_MS : SOURCE_RETRY_ERROR_MS, 0);
		return 0;
	}
	s->waiting_logged = false;
	s->last_errno = 0;
	s->last_error[0] = '\0';
	s->stream_id = queue_consumer_stream_id(s->q);

	s->bell = malloc(sizeof(*s->bell));
	int rc = s->bell ? uv_poll_init(s->loop, s->bell, queue_doorbell_fd(s->q)) : UV_ENOMEM;
	if (rc == 0) {
		s->bell->data = s;
		rc = uv_poll_start(s->bell, UV_READABLE, bell_cb);
		if (rc != 0) {
			uv_close((uv_handle_t *)s->bell, bell_closed);
			s->bell = NULL;
		}
	} else {
		free(s->bell);
		s->bell = NULL;
	}
	if (rc != 0) {
		log_error("queue %s: cannot watch the doorbell: %s; retrying", s->dir,
			  uv_strerror(rc));
		close_queue(s);
		uv_timer_start(&s->open_timer, open_timer_cb, SOURCE_RETRY_ERROR_MS, 0);
		return 0;
	}
	log_info("queue %s open: stream %016jx, capacity %ju bytes, resuming at position %ju",
		 s->dir, (uintmax_t)s->stream_id, (uintmax_t)source_capacity(s),
		 (uintmax_t)queue_consumer_release_pos(s->q));
	if (s->handlers.opened)
		s->handlers.opened(s->arg);
	return 1;
}

static void open_timer_cb(uv_timer_t *t)
{
	struct source *s = t->data;
	if (s->closing || s->q)
		return;
	try_open(s, false, NULL, 0);
}

int source_start(struct source *s, uv_loop_t *loop, const char *dir,
		 const struct source_handlers *handlers, void *arg, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	s->loop = loop;
	s->dir = dir;
	s->handlers = *handlers;
	s->arg = arg;
	uv_timer_init(loop, &s->open_timer);
	s->open_timer.data = s;
	return try_open(s, true, err, errlen) < 0 ? -1 : 0;
}

void source_reopen(struct source *s)
{
	close_queue(s);
	try_open(s, false, NULL, 0);
}

void source_close(struct source *s)
{
	if (s->closing)
		return;
	s->closing = true;
	close_queue(s);
	uv_close((uv_handle_t *)&s->open_timer, NULL);
}

uint64_t source_write_pos(const struct source *s)
{
	if (!s->hdr)
		return 0;
	return atomic_load_explicit((const _Atomic uint64_t *)(s->hdr + QUEUE_HDR_WRITE_POS),
				    memory_order_acquire);
}

uint64_t source_capacity(const struct source *s)
{
	if (!s->hdr)
		return 0;
	return *(const volatile uint64_t *)(s->hdr + QUEUE_HDR_CAPACITY);
}

bool source_collector_present(const struct source *s)
{
	char path[PATH_MAX];
	struct stat st;
	snprintf(path, sizeof(path), "%s/" QUEUE_LOCK_FILE, s->dir);
	if (stat(path, &st) != 0)
		return false;
	FILE *f = fopen("/proc/locks", "re");
	if (!f)
		return false;
	char line[256];
	bool found = false;
	while (!found && fgets(line, sizeof(line), f)) {
		char type[16];
		unsigned maj, min;
		unsigned long long ino;
		int pid;
		/* "1: FLOCK  ADVISORY  WRITE 1234 00:1b:69587 0 EOF"; blocked
		 * waiters are listed as "1: -> FLOCK ..." and do not count */
		if (sscanf(line, "%*d: %15s %*s %*s %d %x:%x:%llu", type, &pid, &maj, &min, &ino) != 5)
			continue;
		found = strcmp(type, "FLOCK") == 0 && maj == major(st.st_dev) &&
			min == minor(st.st_dev) && ino == (unsigned long long)st.st_ino;
	}
	fclose(f);
	return found;
}
