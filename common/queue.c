/* The shared-memory SPSC queue (see queue.h for the model).
 *
 * Memory ordering, in one place:
 *
 *   producer commit:   frame + payload (plain stores)
 *                      last_record_pos  (release)
 *                      write_pos        (release)  <- publishes the record
 *                      next_seq         (release)
 *   consumer read:     write_pos (acquire, only when its cached copy is
 *                      used up), then plain reads of frames before it.
 *   consumer release:  release_pos (release store into its own mapping);
 *                      the producer reads it with pread only when its
 *                      cached copy leaves too little space.
 *
 *   sleeping (Dekker, a full fence on each side):
 *     consumer: sleeping = 1; fence; load write_pos; data? sleeping = 0
 *     producer: store write_pos (commit); fence; pread sleeping; 1? ring
 *   Either the consumer sees the new write_pos or the producer sees
 *   sleeping == 1, so a wake-up is never lost.
 *
 * Everything the producer reads from the consumer's side (the consumer
 * file, the doorbell) is hostile input: opened O_NOFOLLOW|O_NONBLOCK, type
 * checked with fstat, values range checked, never mapped.
 */
#include "queue.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free (shared memory)");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free (shared memory)");

#define CACHE_LINE 64

/* The data file's header. Cache line 0 is written once when the queue is
 * made; cache line 1 is the producer's. The consumer's state lives in
 * another file altogether. */
struct data_header {
	uint64_t magic;
	uint32_t layout_version;
	uint32_t header_size;
	uint64_t capacity;
	uint64_t stream_id;
	uint64_t created_ns;
	uint8_t pad0[CACHE_LINE - 40];

	_Atomic uint64_t write_pos;
	_Atomic uint64_t next_seq;
	_Atomic uint64_t last_record_pos;
	_Atomic uint64_t consumer_pos_seen;
	uint8_t pad1[CACHE_LINE - 32];
};
_Static_assert(offsetof(struct data_header, magic) == QUEUE_HDR_MAGIC, "layout");
_Static_assert(offsetof(struct data_header, layout_version) == QUEUE_HDR_LAYOUT_VERSION, "layout");
_Static_assert(offsetof(struct data_header, header_size) == QUEUE_HDR_HEADER_SIZE, "layout");
_Static_assert(offsetof(struct data_header, capacity) == QUEUE_HDR_CAPACITY, "layout");
_Static_assert(offsetof(struct data_header, stream_id) == QUEUE_HDR_STREAM_ID, "layout");
_Static_assert(offsetof(struct data_header, created_ns) == QUEUE_HDR_CREATED_NS, "layout");
_Static_assert(offsetof(struct data_header, write_pos) == QUEUE_HDR_WRITE_POS, "layout");
_Static_assert(offsetof(struct data_header, next_seq) == QUEUE_HDR_NEXT_SEQ, "layout");
_Static_assert(offsetof(struct data_header, last_record_pos) == QUEUE_HDR_LAST_RECORD_POS, "layout");
_Static_assert(offsetof(struct data_header, consumer_pos_seen) == QUEUE_HDR_CONSUMER_POS_SEEN,
	       "layout");
_Static_assert(QUEUE_HDR_WRITE_POS % CACHE_LINE == 0, "producer state on its own cache line");
_Static_assert(sizeof(struct data_header) == 2 * CACHE_LINE, "layout");
_Static_assert(sizeof(struct data_header) <= QUEUE_HEADER_SIZE, "layout");

/* The consumer file (mapped by the consumer only). */
struct consumer_state {
	_Atomic uint64_t magic;
	_Atomic uint64_t stream_id;
	_Atomic uint64_t release_pos;
	_Atomic uint32_t sleeping;
	_Atomic uint32_t pid;
};
_Static_assert(offsetof(struct consumer_state, magic) == QUEUE_CON_MAGIC, "layout");
_Static_assert(offsetof(struct consumer_state, stream_id) == QUEUE_CON_STREAM_ID, "layout");
_Static_assert(offsetof(struct consumer_state, release_pos) == QUEUE_CON_RELEASE_POS, "layout");
_Static_assert(offsetof(struct consumer_state, sleeping) == QUEUE_CON_SLEEPING, "layout");
_Static_assert(offsetof(struct consumer_state, pid) == QUEUE_CON_PID, "layout");
_Static_assert(sizeof(struct consumer_state) == QUEUE_CON_STATE_SIZE, "layout");

/* What the producer reads from the consumer file with pread. */
struct consumer_snapshot {
	uint64_t magic;
	uint64_t stream_id;
	uint64_t release_pos;
	uint32_t sleeping;
	uint32_t pid;
};
_Static_assert(sizeof(struct consumer_snapshot) == QUEUE_CON_STATE_SIZE, "layout");

struct frame {
	uint32_t length; /* frame + payload, unpadded */
	uint32_t kind;
	uint64_t seq;
};
_Static_assert(sizeof(struct frame) == QUEUE_FRAME_SIZE, "layout");

#define NSEC_PER_SEC 1000000000ull

static inline uint64_t align8(uint64_t v)
{
	return (v + 7) & ~(uint64_t)7;
}

static void set_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(char *err, const char *fmt, ...)
{
	if (!err)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, QUEUE_ERROR_LEN, fmt, ap);
	va_end(ap);
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

uint64_t queue_max_payload(uint64_t capacity)
{
	if (capacity / 4 < QUEUE_FRAME_SIZE)
		return 0;
	return capacity / 4 - QUEUE_FRAME_SIZE;
}

bool queue_capacity_valid(uint64_t capacity)
{
	return capacity >= QUEUE_MIN_CAPACITY && capacity <= QUEUE_MAX_CAPACITY &&
	       (capacity & (capacity - 1)) == 0;
}

/* ---- producer ---- */

enum producer_warning {
	WARN_RELEASE = 1u << 0,     /* release_pos out of range */
	WARN_CONSUMER_TYPE = 1u << 1,
	WARN_CONSUMER_OPEN = 1u << 2,
	WARN_DOORBELL_TYPE = 1u << 3,
	WARN_DOORBELL_OPEN = 1u << 4,
	WARN_DOORBELL_WRITE = 1u << 5,
	WARN_CONSUMER_READ = 1u << 6,
};

struct queue_producer {
	/* hot: every record */
	uint8_t *ring;
	struct data_header *hdr;
	uint64_t mask;
	uint64_t capacity;
	uint64_t max_payload;
	uint64_t write_pos;   /* our copy of hdr->write_pos (we are its only writer) */
	uint64_t next_seq;    /* our copy of hdr->next_seq */
	uint64_t release;     /* consumer release position last validated (== consumer_pos_seen) */
	uint64_t res_pos;     /* open reservation: where its frame goes */
	uint32_t res_len;
	bool reserved;

	/* cold */
	uint64_t stream_id;
	int dir_fd;
	int lock_fd;
	int data_fd;
	int consumer_fd;      /* O_RDONLY, pread only */
	int bell_fd;          /* O_WRONLY|O_NONBLOCK */
	uint64_t consumer_checked_ns; /* last st_nlink check of consumer_fd */
	unsigned warned;      /* enum producer_warning bits: log each once */
	size_t map_size;
	char dir[PATH_MAX];
};

static void warn_once(struct queue_producer *q, unsigned bit, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void warn_once(struct queue_producer *q, unsigned bit, const char *fmt, ...)
{
	if (q->warned & bit)
		return;
	q->warned |= bit;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_warn("%s", line);
}

/* A FIFO write to a reader that went away raises SIGPIPE; the consumer
 * must not be able to kill the producer that way. */
static void ignore_sigpipe(void)
{
	struct sigaction old;
	if (sigaction(SIGPIPE, NULL, &old) != 0)
		return;
	if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL) {
		struct sigaction ign;
		memset(&ign, 0, sizeof(ign));
		ign.sa_handler = SIG_IGN;
		sigemptyset(&ign.sa_mask);
		sigaction(SIGPIPE, &ign, NULL);
	}
}

/* Opens (or creates) the queue directory as q->dir_fd. *group_out: the
 * group the queue's files get. */
static int producer_open_dir(struct queue_producer *q, gid_t group, gid_t *group_out, char *err)
{
	const char *dir = q->dir;
	uid_t euid = geteuid();
	bool created = false;

	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		if (mkdir(dir, 0700) == 0)
			created = true;
		else if (errno != EEXIST) {
			set_err(err, "cannot create queue directory %s: %s", dir, strerror(errno));
			return -1;
		}
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0) {
		struct stat lst;
		if (errno == ELOOP || (errno == ENOTDIR && lstat(dir, &lst) == 0 && S_ISLNK(lst.st_mode)))
			set_err(err, "queue directory %s is a symbolic link; refusing it", dir);
		else if (errno == ENOTDIR)
			set_err(err, "queue directory %s is not a directory; refusing it", dir);
		else
			set_err(err, "cannot open queue directory %s: %s", dir, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		set_err(err, "cannot stat queue directory %s: %s", dir, strerror(errno));
		close(fd);
		return -1;
	}
	if (st.st_uid != euid) {
		set_err(err, "queue directory %s is owned by uid %u, not by this process (uid %u); "
			"refusing it", dir, (unsigned)st.st_uid, (unsigned)euid);
		close(fd);
		return -1;
	}
	if (created) {
		/* On failure the directory we just made goes again: left at
		 * 0700 with the wrong group, the next start would take it as
		 * it is and the publisher could never enter it. */
		gid_t g = group != (gid_t)-1 ? group : getegid();
		if (st.st_gid != g && fchown(fd, (uid_t)-1, g) != 0) {
			int e = errno;
			set_err(err, "cannot give queue directory %s to group %u: %s%s", dir, (unsigned)g,
				strerror(e), e == EPERM ? " (this uid must be a member of that group)" : "");
			close(fd);
			rmdir(dir);
			return -1;
		}
		if (fchmod(fd, 03770) != 0) {
			set_err(err, "cannot chmod queue directory %s: %s", dir, strerror(errno));
			close(fd);
			rmdir(dir);
			return -1;
		}
		if (fstat(fd, &st) != 0) {
			set_err(err, "cannot stat queue directory %s: %s", dir, strerror(errno));
			close(fd);
			rmdir(dir);
			return -1;
		}
	}
	if (st.st_mode & S_IWOTH) {
		set_err(err, "queue directory %s is writable by everyone (mode %04o); refusing it", dir,
			(unsigned)(st.st_mode & 07777));
		close(fd);
		return -1;
	}
	q->dir_fd = fd;
	*group_out = group != (gid_t)-1 ? group : st.st_gid;
	return 0;
}

/* The lock file: only the producer's uid can open it (0600), so a
 * consumer cannot hold the lock and keep a producer from starting. */
static int producer_lock(struct queue_producer *q, char *err)
{
	int fd = openat(q->dir_fd, QUEUE_LOCK_FILE,
			O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
	if (fd < 0) {
		if (errno == ELOOP)
			set_err(err, "%s/" QUEUE_LOCK_FILE " is a symbolic link; refusing it", q->dir);
		else
			set_err(err, "cannot open %s/" QUEUE_LOCK_FILE ": %s", q->dir, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		set_err(err, "cannot stat %s/" QUEUE_LOCK_FILE ": %s", q->dir, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_nlink != 1) {
		set_err(err, "%s/" QUEUE_LOCK_FILE " is not a regular file of ours (uid %u, %ju links); "
			"refusing it", q->dir, (unsigned)st.st_uid, (uintmax_t)st.st_nlink);
		close(fd);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK)
			set_err(err, "queue %s is in use by another producer", q->dir);
		else
			set_err(err, "cannot lock %s/" QUEUE_LOCK_FILE ": %s", q->dir, strerror(errno));
		close(fd);
		return -1;
	}
	q->lock_fd = fd;
	return 0;
}

static int producer_map(struct queue_producer *q, int fd, uint64_t capacity, char *err)
{
	size_t size = (size_t)(QUEUE_HEADER_SIZE + capacity);
	void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		set_err(err, "cannot map %s/" QUEUE_DATA_FILE " (%zu bytes): %s", q->dir, size,
			strerror(errno));
		return -1;
	}
	q->hdr = m;
	q->ring = (uint8_t *)m + QUEUE_HEADER_SIZE;
	q->map_size = size;
	q->capacity = capacity;
	q->mask = capacity - 1;
	q->max_payload = queue_max_payload(capacity);
	return 0;
}

/* Links a fully initialised O_TMPFILE file in as `data`: a consumer never
 * sees a half-made data file. EEXIST: someone made one meanwhile. */
static int link_tmpfile(struct queue_producer *q, int fd)
{
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, q->dir_fd, QUEUE_DATA_FILE, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno != ENOENT)
		return -1;
	/* no /proc: AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH, try it anyway */
	return linkat(fd, "", q->dir_fd, QUEUE_DATA_FILE, AT_EMPTY_PATH);
}

/* Creates the data file. 0: done; 1: it exists after all (open it);
 * -1: error. */
static int producer_create_data(struct queue_producer *q, uint64_t capacity, gid_t group,
				char *err)
{
	uint64_t size = QUEUE_HEADER_SIZE + capacity;
	bool tmpfile = true;
	int fd = openat(q->dir_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0640);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		tmpfile = false;
		fd = openat(q->dir_fd, QUEUE_DATA_FILE,
			    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
		if (fd < 0 && errno == EEXIST)
			return 1;
	}
	if (fd < 0) {
		set_err(err, "cannot create %s/" QUEUE_DATA_FILE ": %s", q->dir, strerror(errno));
		return -1;
	}
	struct stat st;
	int e;
	if (fstat(fd, &st) != 0) {
		set_err(err, "cannot stat %s/" QUEUE_DATA_FILE ": %s", q->dir, strerror(errno));
		goto fail;
	}
	if (st.st_gid != group && fchown(fd, (uid_t)-1, group) != 0) {
		set_err(err, "cannot give %s/" QUEUE_DATA_FILE " to group %u: %s", q->dir,
			(unsigned)group, strerror(errno));
		goto fail;
	}
	if (fchmod(fd, 0640) != 0) {
		set_err(err, "cannot chmod %s/" QUEUE_DATA_FILE ": %s", q->dir, strerror(errno));
		goto fail;
	}
	if (ftruncate(fd, (off_t)size) != 0) {
		set_err(err, "cannot size %s/" QUEUE_DATA_FILE " to %ju bytes: %s", q->dir,
			(uintmax_t)size, strerror(errno));
		goto fail;
	}
	/* tmpfs allocates pages on first touch; without this a full /dev/shm
	 * would SIGBUS the producer in the middle of a write. */
	e = posix_fallocate(fd, 0, (off_t)size);
	if (e != 0) {
		set_err(err, "cannot reserve %ju bytes for %s/" QUEUE_DATA_FILE ": %s", (uintmax_t)size,
			q->dir, strerror(e));
		goto fail;
	}
	if (producer_map(q, fd, capacity, err) != 0)
		goto fail;

	struct data_header *h = q->hdr;
	uint64_t id = 0;
	while (id == 0) {
		if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id)) {
			if (errno == EINTR)
				continue;
			set_err(err, "getrandom for the stream id of %s: %s", q->dir, strerror(errno));
			goto fail_unmap;
		}
	}
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	h->layout_version = QUEUE_LAYOUT_VERSION;
	h->header_size = QUEUE_HEADER_SIZE;
	h->capacity = capacity;
	h->stream_id = id;
	h->created_ns = (uint64_t)now.tv_sec * NSEC_PER_SEC + (uint64_t)now.tv_nsec;
	atomic_store_explicit(&h->write_pos, 0, memory_order_relaxed);
	atomic_store_explicit(&h->next_seq, 1, memory_order_relaxed);
	atomic_store_explicit(&h->last_record_pos, 0, memory_order_relaxed);
	atomic_store_explicit(&h->consumer_pos_seen, 0, memory_order_relaxed);
	/* magic last: whoever sees it sees the rest */
	__atomic_store_n(&h->magic, QUEUE_DATA_MAGIC, __ATOMIC_RELEASE);

	if (tmpfile && link_tmpfile(q, fd) != 0) {
		if (errno == EEXIST) {
			munmap(q->hdr, q->map_size);
			q->hdr = NULL;
			q->ring = NULL;
			close(fd);
			return 1;
		}
		set_err(err, "cannot link %s/" QUEUE_DATA_FILE " into place: %s", q->dir,
			strerror(errno));
		goto fail_unmap;
	}
	q->data_fd = fd;
	return 0;

fail_unmap:
	munmap(q->hdr, q->map_size);
	q->hdr = NULL;
	q->ring = NULL;
fail:
	if (!tmpfile)
		unlinkat(q->dir_fd, QUEUE_DATA_FILE, 0);
	close(fd);
	return -1;
}

/* Opens and checks the existing data file. */
static int producer_open_data(struct queue_producer *q, uint64_t want, char *err)
{
	int fd = openat(q->dir_fd, QUEUE_DATA_FILE, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		if (errno == ELOOP)
			set_err(err, "%s/" QUEUE_DATA_FILE " is a symbolic link; refusing it", q->dir);
		else
			set_err(err, "cannot open %s/" QUEUE_DATA_FILE ": %s", q->dir, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		set_err(err, "cannot stat %s/" QUEUE_DATA_FILE ": %s", q->dir, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		set_err(err, "%s/" QUEUE_DATA_FILE " is not a regular file; refusing it", q->dir);
		goto fail;
	}
	if (st.st_uid != geteuid()) {
		set_err(err, "%s/" QUEUE_DATA_FILE " is owned by uid %u, not by this process (uid %u); "
			"refusing it", q->dir, (unsigned)st.st_uid, (unsigned)geteuid());
		goto fail;
	}
	if (st.st_nlink != 1) {
		set_err(err, "%s/" QUEUE_DATA_FILE " has %ju links (a hard link elsewhere), expected 1; "
			"refusing it", q->dir, (uintmax_t)st.st_nlink);
		goto fail;
	}
	struct data_header h;
	ssize_t n = st.st_size >= (off_t)sizeof(h) ? pread(fd, &h, sizeof(h), 0) : 0;
	if (n < 0) {
		set_err(err, "cannot read %s/" QUEUE_DATA_FILE ": %s", q->dir, strerror(errno));
		goto fail;
	}
	if (n != (ssize_t)sizeof(h) || h.magic != QUEUE_DATA_MAGIC) {
		set_err(err, "%s/" QUEUE_DATA_FILE " is not an ebpf-extractor queue (bad magic); "
			"refusing it", q->dir);
		goto fail;
	}
	if (h.layout_version != QUEUE_LAYOUT_VERSION) {
		set_err(err, "queue %s has layout version %u, this program uses version %u; "
			"remove the queue or use the matching version", q->dir,
			(unsigned)h.layout_version, (unsigned)QUEUE_LAYOUT_VERSION);
		goto fail;
	}
	if (h.header_size != QUEUE_HEADER_SIZE || !queue_capacity_valid(h.capacity)) {
		set_err(err, "queue %s has a damaged header (header size %u, capacity %ju); "
			"remove the queue", q->dir, (unsigned)h.header_size, (uintmax_t)h.capacity);
		goto fail;
	}
	if ((uint64_t)st.st_size != QUEUE_HEADER_SIZE + h.capacity) {
		set_err(err, "queue %s: %s/" QUEUE_DATA_FILE " is %jd bytes, its header says %ju; "
			"remove the queue", q->dir, q->dir, (intmax_t)st.st_size,
			(uintmax_t)(QUEUE_HEADER_SIZE + h.capacity));
		goto fail;
	}
	if (want != 0 && want != h.capacity) {
		set_err(err, "queue %s has capacity %ju bytes, --queue-size asks for %ju; "
			"remove the queue or use its size", q->dir, (uintmax_t)h.capacity,
			(uintmax_t)want);
		goto fail;
	}
	if (producer_map(q, fd, h.capacity, err) != 0)
		goto fail;
	q->data_fd = fd;
	return 0;
fail:
	close(fd);
	return -1;
}

/* Reopen: checks the producer's cache line and repairs next_seq after a
 * crash between the commit's stores (see queue.h and the commit order in
 * queue_commit). */
static int producer_recover(struct queue_producer *q, char *err)
{
	struct data_header *h = q->hdr;
	uint64_t w = atomic_load_explicit(&h->write_pos, memory_order_acquire);
	uint64_t n = atomic_load_explicit(&h->next_seq, memory_order_acquire);
	uint64_t last = atomic_load_explicit(&h->last_record_pos, memory_order_acquire);
	uint64_t seen = atomic_load_explicit(&h->consumer_pos_seen, memory_order_acquire);

	if ((w & 7) || (seen & 7) || seen > w || w - seen > q->capacity || n == 0) {
		set_err(err, "queue %s has a damaged header (write position %ju, consumer position %ju, "
			"next seq %ju); remove the queue", q->dir, (uintmax_t)w, (uintmax_t)seen,
			(uintmax_t)n);
		return -1;
	}
	/* Is the frame at last_record_pos a committed record ending at
	 * write_pos? Then its seq decides (the crash came after write_pos was
	 * stored); otherwise the stored next_seq is right. */
	uint64_t off = last & q->mask;
	if (!(last & 7) && last <= w && off + QUEUE_FRAME_SIZE <= q->capacity) {
		const struct frame *f = (const struct frame *)(q->ring + off);
		uint64_t size = align8(f->length);
		if (f->kind == QUEUE_FRAME_RECORD && f->length >= QUEUE_FRAME_SIZE &&
		    f->length - QUEUE_FRAME_SIZE <= q->max_payload && off + size <= q->capacity &&
		    last + size == w && f->seq != 0) {
			if (f->seq + 1 != n) {
				if (f->seq != n)
					log_warn("queue %s: next seq was %ju, the last record has seq %ju; "
						 "continuing at %ju", q->dir, (uintmax_t)n,
						 (uintmax_t)f->seq, (uintmax_t)(f->seq + 1));
				n = f->seq + 1;
				atomic_store_explicit(&h->next_seq, n, memory_order_release);
			}
		}
	}
	q->write_pos = w;
	q->next_seq = n;
	q->release = seen;
	q->stream_id = h->stream_id;
	return 0;
}

struct queue_producer *queue_producer_open(const struct queue_producer_options *opts,
					   char err[QUEUE_ERROR_LEN])
{
	const char *dir = opts && opts->dir ? opts->dir : QUEUE_DEFAULT_DIR;
	uint64_t want = opts ? opts->capacity : 0;
	gid_t group = opts ? opts->group : (gid_t)-1;

	if (err)
		err[0] = '\0';
	if (want != 0 && !queue_capacity_valid(want)) {
		set_err(err, "queue size %ju is not a power of two between %ju and %ju bytes",
			(uintmax_t)want, (uintmax_t)QUEUE_MIN_CAPACITY, (uintmax_t)QUEUE_MAX_CAPACITY);
		return NULL;
	}
	if (strlen(dir) >= PATH_MAX) {
		set_err(err, "queue directory name is too long");
		return NULL;
	}
	struct queue_producer *q = calloc(1, sizeof(*q));
	if (!q) {
		set_err(err, "out of memory opening queue %s", dir);
		return NULL;
	}
	strcpy(q->dir, dir);
	q->dir_fd = q->lock_fd = q->data_fd = q->consumer_fd = q->bell_fd = -1;

	ignore_sigpipe();

	gid_t file_group;
	if (producer_open_dir(q, group, &file_group, err) != 0)
		goto fail;
	if (producer_lock(q, err) != 0)
		goto fail;
	/* open the existing file, or make one; a race (another process made
	 * it between the two) goes round once more */
	int r = 1;
	for (int attempt = 0; attempt < 3 && r == 1; attempt++) {
		r = producer_open_data(q, want, err);
		if (r == 1)
			r = producer_create_data(q, want ? want : QUEUE_DEFAULT_CAPACITY, file_group, err);
	}
	if (r != 0) {
		if (r == 1)
			set_err(err, "cannot open %s/" QUEUE_DATA_FILE ": it keeps appearing and "
				"disappearing", q->dir);
		goto fail;
	}
	if (producer_recover(q, err) != 0)
		goto fail;
	return q;
fail:
	queue_producer_close(q);
	return NULL;
}

void queue_producer_close(struct queue_producer *q)
{
	if (!q)
		return;
	if (q->hdr)
		munmap(q->hdr, q->map_size);
	close_fd(&q->bell_fd);
	close_fd(&q->consumer_fd);
	close_fd(&q->data_fd);
	close_fd(&q->lock_fd);
	close_fd(&q->dir_fd);
	free(q);
}

static void producer_close_consumer(struct queue_producer *q)
{
	close_fd(&q->consumer_fd);
	/* a new consumer file means a new consumer: its doorbell may be new */
	close_fd(&q->bell_fd);
}

static int producer_open_consumer(struct queue_producer *q)
{
	int fd = openat(q->dir_fd, QUEUE_CONSUMER_FILE,
			O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno != ENOENT)
			warn_once(q, WARN_CONSUMER_OPEN, "cannot open %s/" QUEUE_CONSUMER_FILE
				  " (treating it as no consumer): %s", q->dir, strerror(errno));
		return -1;
	}
	/* one link: a consumer cannot point us at another file by hard link
	 * (and learn a bit of it from whether the doorbell rings) */
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		warn_once(q, WARN_CONSUMER_TYPE, "%s/" QUEUE_CONSUMER_FILE " is not a regular file with "
			  "one link; treating it as no consumer", q->dir);
		close(fd);
		return -1;
	}
	q->consumer_fd = fd;
	q->consumer_checked_ns = monotonic_ns();
	return 0;
}

static bool pread_snapshot(struct queue_producer *q, struct consumer_snapshot *s)
{
	ssize_t n;
	do
		n = pread(q->consumer_fd, s, sizeof(*s), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		warn_once(q, WARN_CONSUMER_READ, "cannot read %s/" QUEUE_CONSUMER_FILE ": %s", q->dir,
			  strerror(errno));
	return n == (ssize_t)sizeof(*s) && s->magic == QUEUE_CONSUMER_MAGIC &&
	       s->stream_id == q->stream_id;
}

/* Reads the consumer file into *s. False: no (valid) consumer. The file is
 * opened again when it is missing, short, not ours (magic, stream_id) or
 * unlinked (st_nlink 0: a new consumer file replaced it). The unlink check
 * costs an fstat: queue_notify (once per batch) does it at most once a
 * second, the refresh of the release position (only when the queue looks
 * full) every time, so a release position is never taken from a file
 * that is no longer the consumer's. */
static bool producer_read_consumer(struct queue_producer *q, struct consumer_snapshot *s,
				   bool check_link)
{
	if (q->consumer_fd >= 0) {
		uint64_t now = monotonic_ns();
		if (check_link || now - q->consumer_checked_ns >= NSEC_PER_SEC) {
			struct stat st;
			q->consumer_checked_ns = now;
			if (fstat(q->consumer_fd, &st) != 0 || st.st_nlink == 0)
				producer_close_consumer(q);
		}
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		if (q->consumer_fd < 0 && producer_open_consumer(q) != 0)
			return false;
		if (pread_snapshot(q, s))
			return true;
		producer_close_consumer(q);
	}
	return false;
}

/* Refreshes the cached release position from the consumer file. */
static void producer_refresh(struct queue_producer *q)
{
	struct consumer_snapshot s;
	if (!producer_read_consumer(q, &s, true))
		return;
	uint64_t r = s.release_pos;
	if (r == q->release)
		return;
	/* pread copies with no atomicity promise: a value read while the
	 * consumer stores could be torn. Take it only when two reads agree. */
	bool stable = false;
	for (int i = 0; i < 3 && !stable; i++) {
		struct consumer_snapshot again;
		if (!pread_snapshot(q, &again))
			return;
		stable = again.release_pos == r;
		r = again.release_pos;
	}
	if (!stable)
		return;
	if ((r & 7) || r < q->release || r > q->write_pos) {
		warn_once(q, WARN_RELEASE, "%s/" QUEUE_CONSUMER_FILE " says release position %ju, "
			  "outside [%ju, %ju] or not 8-aligned; ignoring it (logged once)", q->dir,
			  (uintmax_t)r, (uintmax_t)q->release, (uintmax_t)q->write_pos);
		return;
	}
	q->release = r;
	atomic_store_explicit(&q->hdr->consumer_pos_seen, r, memory_order_release);
}

void *queue_reserve(struct queue_producer *q, uint32_t len)
{
	q->reserved = false;
	if (len > q->max_payload)
		return NULL;
	uint64_t size = align8((uint64_t)QUEUE_FRAME_SIZE + len);
	uint64_t w = q->write_pos;
	uint64_t tail = q->capacity - (w & q->mask);
	uint64_t total = size <= tail ? size : tail + size;
	if (w + total - q->release > q->capacity) {
		producer_refresh(q);
		if (w + total - q->release > q->capacity)
			return NULL;
	}
	q->res_pos = size <= tail ? w : w + tail;
	q->res_len = len;
	q->reserved = true;
	return q->ring + (q->res_pos & q->mask) + QUEUE_FRAME_SIZE;
}

uint64_t queue_commit(struct queue_producer *q, uint32_t len)
{
	if (!q->reserved || len > q->res_len)
		return 0;
	q->reserved = false;
	uint64_t w = q->write_pos;
	uint64_t pos = q->res_pos;
	uint64_t seq = q->next_seq;
	if (pos != w) {
		/* wrap frame: only its first 8 bytes are sure to fit */
		uint32_t *wf = (uint32_t *)(q->ring + (w & q->mask));
		wf[0] = (uint32_t)(pos - w);
		wf[1] = QUEUE_FRAME_WRAP;
	}
	struct frame *f = (struct frame *)(q->ring + (pos & q->mask));
	f->length = QUEUE_FRAME_SIZE + len;
	f->kind = QUEUE_FRAME_RECORD;
	f->seq = seq;
	uint64_t end = pos + align8((uint64_t)QUEUE_FRAME_SIZE + len);
	/* This order makes a crash at any point recoverable (producer_recover). */
	atomic_store_explicit(&q->hdr->last_record_pos, pos, memory_order_release);
	atomic_store_explicit(&q->hdr->write_pos, end, memory_order_release);
	atomic_store_explicit(&q->hdr->next_seq, seq + 1, memory_order_release);
	q->write_pos = end;
	q->next_seq = seq + 1;
	return seq;
}

static int producer_open_bell(struct queue_producer *q)
{
	int fd = openat(q->dir_fd, QUEUE_DOORBELL_FILE,
			O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		/* ENXIO: a FIFO nobody reads; ENOENT: none yet */
		if (errno != ENXIO && errno != ENOENT)
			warn_once(q, WARN_DOORBELL_OPEN, "cannot open %s/" QUEUE_DOORBELL_FILE ": %s",
				  q->dir, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode) || st.st_nlink != 1) {
		warn_once(q, WARN_DOORBELL_TYPE, "%s/" QUEUE_DOORBELL_FILE " is not a FIFO with one "
			  "link; refusing it", q->dir);
		close(fd);
		return -1;
	}
	q->bell_fd = fd;
	return 0;
}

static void producer_ring(struct queue_producer *q)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		if (q->bell_fd < 0 && producer_open_bell(q) != 0)
			return;
		ssize_t n;
		do
			n = write(q->bell_fd, "", 1);
		while (n < 0 && errno == EINTR);
		if (n == 1 || errno == EAGAIN)
			return; /* EAGAIN: full, wake-ups are pending anyway */
		if (errno != EPIPE)
			warn_once(q, WARN_DOORBELL_WRITE, "cannot write to %s/" QUEUE_DOORBELL_FILE ": %s",
				  q->dir, strerror(errno));
		/* EPIPE: that reader is gone; a new consumer may have a new one */
		close_fd(&q->bell_fd);
	}
}

void queue_notify(struct queue_producer *q)
{
	/* orders our write_pos stores before the load of `sleeping` */
	atomic_thread_fence(memory_order_seq_cst);
	struct consumer_snapshot s;
	if (!producer_read_consumer(q, &s, false))
		return;
	if (s.sleeping == 1)
		producer_ring(q);
}

uint64_t queue_stream_id(const struct queue_producer *q)
{
	return q->stream_id;
}

uint64_t queue_next_seq(const struct queue_producer *q)
{
	return q->next_seq;
}

uint64_t queue_capacity(const struct queue_producer *q)
{
	return q->capacity;
}

uint64_t queue_used(struct queue_producer *q)
{
	producer_refresh(q);
	return q->write_pos - q->release;
}

uint64_t queue_write_pos(const struct queue_producer *q)
{
	return q->write_pos;
}

/* ---- consumer ---- */

struct queue_consumer {
	/* hot */
	const uint8_t *ring;
	const struct data_header *hdr;
	struct consumer_state *state;
	uint64_t mask;
	uint64_t capacity;
	uint64_t max_payload;
	uint64_t read;         /* read cursor */
	uint64_t release;      /* our copy of state->release_pos */
	uint64_t cached_write; /* write_pos last loaded */
	uint64_t last_seq;     /* seq of the last record read; 0: none yet */

	/* cold */
	uint64_t stream_id;
	int dir_fd;
	int data_fd;
	int state_fd;
	int bell_fd;
	dev_t data_dev;
	ino_t data_ino;
	size_t map_size;
	char dir[PATH_MAX];
};

static int consumer_fail(int *errno_out, int e)
{
	if (errno_out)
		*errno_out = e;
	return -1;
}

static int consumer_open_data(struct queue_consumer *q, int *errno_out, char *err,
			      gid_t *group_out)
{
	struct stat dst;
	int fd = open(q->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		struct stat lst;
		if (e == ENOENT)
			set_err(err, "queue %s does not exist (yet)", q->dir);
		else if (e == ELOOP || (e == ENOTDIR && lstat(q->dir, &lst) == 0 && S_ISLNK(lst.st_mode)))
			set_err(err, "queue directory %s is a symbolic link; refusing it", q->dir);
		else
			set_err(err, "cannot open queue directory %s: %s", q->dir, strerror(e));
		return consumer_fail(errno_out, e);
	}
	q->dir_fd = fd;
	if (fstat(fd, &dst) != 0) {
		int e = errno;
		set_err(err, "cannot stat queue directory %s: %s", q->dir, strerror(e));
		return consumer_fail(errno_out, e);
	}

	fd = openat(q->dir_fd, QUEUE_DATA_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			set_err(err, "queue %s has no data file (yet)", q->dir);
		else if (e == ELOOP)
			set_err(err, "%s/" QUEUE_DATA_FILE " is a symbolic link; refusing it", q->dir);
		else
			set_err(err, "cannot open %s/" QUEUE_DATA_FILE ": %s", q->dir, strerror(e));
		return consumer_fail(errno_out, e);
	}
	q->data_fd = fd;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		set_err(err, "cannot stat %s/" QUEUE_DATA_FILE ": %s", q->dir, strerror(e));
		return consumer_fail(errno_out, e);
	}
	if (!S_ISREG(st.st_mode)) {
		set_err(err, "%s/" QUEUE_DATA_FILE " is not a regular file; refusing it", q->dir);
		return consumer_fail(errno_out, EINVAL);
	}
	/* the group may create files here too: the data file must be the
	 * directory owner's (the producer's) */
	if (st.st_uid != dst.st_uid) {
		set_err(err, "%s/" QUEUE_DATA_FILE " is owned by uid %u, the queue directory by uid %u; "
			"refusing it", q->dir, (unsigned)st.st_uid, (unsigned)dst.st_uid);
		return consumer_fail(errno_out, EINVAL);
	}
	struct data_header h;
	ssize_t n = st.st_size >= (off_t)sizeof(h) ? pread(fd, &h, sizeof(h), 0) : 0;
	if (n < 0) {
		int e = errno;
		set_err(err, "cannot read %s/" QUEUE_DATA_FILE ": %s", q->dir, strerror(e));
		return consumer_fail(errno_out, e);
	}
	if (n != (ssize_t)sizeof(h) || h.magic != QUEUE_DATA_MAGIC) {
		set_err(err, "%s/" QUEUE_DATA_FILE " is not an ebpf-extractor queue (bad magic)", q->dir);
		return consumer_fail(errno_out, EINVAL);
	}
	if (h.layout_version != QUEUE_LAYOUT_VERSION) {
		set_err(err, "queue %s has layout version %u, this program uses version %u", q->dir,
			(unsigned)h.layout_version, (unsigned)QUEUE_LAYOUT_VERSION);
		return consumer_fail(errno_out, EINVAL);
	}
	if (h.header_size != QUEUE_HEADER_SIZE || !queue_capacity_valid(h.capacity) ||
	    (uint64_t)st.st_size != QUEUE_HEADER_SIZE + h.capacity) {
		set_err(err, "queue %s has a damaged header (header size %u, capacity %ju, file size %jd)",
			q->dir, (unsigned)h.header_size, (uintmax_t)h.capacity, (intmax_t)st.st_size);
		return consumer_fail(errno_out, EINVAL);
	}
	size_t size = (size_t)(QUEUE_HEADER_SIZE + h.capacity);
	void *m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		int e = errno;
		set_err(err, "cannot map %s/" QUEUE_DATA_FILE ": %s", q->dir, strerror(e));
		return consumer_fail(errno_out, e);
	}
	q->hdr = m;
	q->ring = (const uint8_t *)m + QUEUE_HEADER_SIZE;
	q->map_size = size;
	q->capacity = h.capacity;
	q->mask = h.capacity - 1;
	q->max_payload = queue_max_payload(h.capacity);
	q->stream_id = h.stream_id;
	q->data_dev = st.st_dev;
	q->data_ino = st.st_ino;
	*group_out = st.st_gid;
	return 0;
}

/* Points the consumer file at this queue, starting at `pos`. The magic is
 * cleared first and set last, and release_pos is stored before stream_id,
 * so the producer never takes an old release position for this stream. */
static void consumer_state_reset(struct consumer_state *s, uint64_t stream_id, uint64_t pos)
{
	atomic_store_explicit(&s->magic, 0, memory_order_seq_cst);
	atomic_store_explicit(&s->release_pos, pos, memory_order_release);
	atomic_store_explicit(&s->stream_id, stream_id, memory_order_release);
	atomic_store_explicit(&s->sleeping, 0, memory_order_release);
	atomic_store_explicit(&s->magic, QUEUE_CONSUMER_MAGIC, memory_order_release);
}

static int consumer_open_state(struct queue_consumer *q, int *errno_out, char *err)
{
	int fd = -1;
	bool created = false;
	for (int attempt = 0; attempt < 3 && fd < 0; attempt++) {
		fd = openat(q->dir_fd, QUEUE_CONSUMER_FILE, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (fd >= 0 || errno != ENOENT)
			break;
		fd = openat(q->dir_fd, QUEUE_CONSUMER_FILE,
			    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644);
		if (fd >= 0)
			created = true;
		else if (errno != EEXIST)
			break;
	}
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP)
			set_err(err, "%s/" QUEUE_CONSUMER_FILE " is a symbolic link; refusing it", q->dir);
		else
			set_err(err, "cannot open %s/" QUEUE_CONSUMER_FILE ": %s", q->dir, strerror(e));
		return consumer_fail(errno_out, e);
	}
	q->state_fd = fd;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		set_err(err, "cannot stat %s/" QUEUE_CONSUMER_FILE ": %s", q->dir, strerror(e));
		return consumer_fail(errno_out, e);
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_nlink != 1) {
		set_err(err, "%s/" QUEUE_CONSUMER_FILE " is not a regular file of ours with one link "
			"(uid %u, %ju links); refusing it", q->dir, (unsigned)st.st_uid,
			(uintmax_t)st.st_nlink);
		return consumer_fail(errno_out, EINVAL);
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		if (e == EWOULDBLOCK) {
			uint32_t pid = 0;
			if (pread(fd, &pid, sizeof(pid), QUEUE_CON_PID) != (ssize_t)sizeof(pid))
				pid = 0;
			set_err(err, "queue %s already has a consumer (pid %u)", q->dir, (unsigned)pid);
		} else {
			set_err(err, "cannot lock %s/" QUEUE_CONSUMER_FILE ": %s", q->dir, strerror(e));
		}
		return consumer_fail(errno_out, e);
	}
	if (created && fchmod(fd, 0644) != 0) {
		int e = errno;
		set_err(err, "cannot chmod %s/" QUEUE_CONSUMER_FILE ": %s", q->dir, strerror(e));
		return consumer_fail(errno_out, e);
	}
	if (st.st_size != QUEUE_CONSUMER_FILE_SIZE && ftruncate(fd, QUEUE_CONSUMER_FILE_SIZE) != 0) {
		int e = errno;
		set_err(err, "cannot size %s/" QUEUE_CONSUMER_FILE ": %s", q->dir, strerror(e));
		return consumer_fail(errno_out, e);
	}
	void *m = mmap(NULL, QUEUE_CONSUMER_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		int e = errno;
		set_err(err, "cannot map %s/" QUEUE_CONSUMER_FILE ": %s", q->dir, strerror(e));
		return consumer_fail(errno_out, e);
	}
	q->state = m;

	struct consumer_state *s = q->state;
	uint64_t seen = atomic_load_explicit(&q->hdr->consumer_pos_seen, memory_order_acquire);
	uint64_t w = atomic_load_explicit(&q->hdr->write_pos, memory_order_acquire);
	if (atomic_load(&s->magic) != QUEUE_CONSUMER_MAGIC || atomic_load(&s->stream_id) != q->stream_id) {
		consumer_state_reset(s, q->stream_id, seen);
	} else {
		uint64_t r = atomic_load(&s->release_pos);
		if ((r & 7) || r < seen || r > w) {
			log_warn("%s/" QUEUE_CONSUMER_FILE ": release position %ju is outside [%ju, %ju]; "
				 "starting at %ju", q->dir, (uintmax_t)r, (uintmax_t)seen, (uintmax_t)w,
				 (uintmax_t)seen);
			consumer_state_reset(s, q->stream_id, seen);
		}
	}
	atomic_store_explicit(&s->pid, (uint32_t)getpid(), memory_order_relaxed);
	atomic_store_explicit(&s->sleeping, 0, memory_order_seq_cst);
	q->release = atomic_load(&s->release_pos);
	q->read = q->release;
	q->cached_write = q->read;
	q->last_seq = 0;
	return 0;
}

static int consumer_open_bell(struct queue_consumer *q, gid_t group, int *errno_out, char *err)
{
	if (mkfifoat(q->dir_fd, QUEUE_DOORBELL_FILE, 0620) != 0 && errno != EEXIST) {
		int e = errno;
		set_err(err, "cannot create %s/" QUEUE_DOORBELL_FILE ": %s", q->dir, strerror(e));
		return consumer_fail(errno_out, e);
	}
	/* O_RDWR: we are a writer of our own FIFO too, so poll never reports
	 * POLLHUP when the producer goes away */
	int fd = openat(q->dir_fd, QUEUE_DOORBELL_FILE, O_RDWR | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP)
			set_err(err, "%s/" QUEUE_DOORBELL_FILE " is a symbolic link; refusing it", q->dir);
		else
			set_err(err, "cannot open %s/" QUEUE_DOORBELL_FILE ": %s", q->dir, strerror(e));
		return consumer_fail(errno_out, e);
	}
	q->bell_fd = fd;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		set_err(err, "cannot stat %s/" QUEUE_DOORBELL_FILE ": %s", q->dir, strerror(e));
		return consumer_fail(errno_out, e);
	}
	if (!S_ISFIFO(st.st_mode) || st.st_uid != geteuid()) {
		set_err(err, "%s/" QUEUE_DOORBELL_FILE " is not a FIFO of ours (uid %u); refusing it",
			q->dir, (unsigned)st.st_uid);
		return consumer_fail(errno_out, EINVAL);
	}
	if (st.st_gid != group && fchown(fd, (uid_t)-1, group) != 0) {
		int e = errno;
		set_err(err, "cannot give %s/" QUEUE_DOORBELL_FILE " to group %u (the data file's): %s",
			q->dir, (unsigned)group, strerror(e));
		return consumer_fail(errno_out, e);
	}
	if ((st.st_mode & 07777) != 0620 && fchmod(fd, 0620) != 0) {
		int e = errno;
		set_err(err, "cannot chmod %s/" QUEUE_DOORBELL_FILE ": %s", q->dir, strerror(e));
		return consumer_fail(errno_out, e);
	}
	return 0;
}

struct queue_consumer *queue_consumer_open(const char *dir, int *errno_out,
					   char err[QUEUE_ERROR_LEN])
{
	if (!dir)
		dir = QUEUE_DEFAULT_DIR;
	if (errno_out)
		*errno_out = 0;
	if (err)
		err[0] = '\0';
	if (strlen(dir) >= PATH_MAX) {
		set_err(err, "queue directory name is too long");
		consumer_fail(errno_out, ENAMETOOLONG);
		return NULL;
	}
	struct queue_consumer *q = calloc(1, sizeof(*q));
	if (!q) {
		set_err(err, "out of memory opening queue %s", dir);
		consumer_fail(errno_out, ENOMEM);
		return NULL;
	}
	strcpy(q->dir, dir);
	q->dir_fd = q->data_fd = q->state_fd = q->bell_fd = -1;

	gid_t group;
	if (consumer_open_data(q, errno_out, err, &group) != 0 ||
	    consumer_open_bell(q, group, errno_out, err) != 0 ||
	    consumer_open_state(q, errno_out, err) != 0) {
		queue_consumer_close(q);
		return NULL;
	}
	return q;
}

void queue_consumer_close(struct queue_consumer *q)
{
	if (!q)
		return;
	if (q->state) {
		atomic_store_explicit(&q->state->sleeping, 0, memory_order_release);
		munmap(q->state, QUEUE_CONSUMER_FILE_SIZE);
	}
	if (q->hdr)
		munmap((void *)q->hdr, q->map_size);
	close_fd(&q->bell_fd);
	close_fd(&q->state_fd);
	close_fd(&q->data_fd);
	close_fd(&q->dir_fd);
	free(q);
}

/* The producer is trusted, but a bug there must not make us read outside
 * the mapping: every value comes out of shared memory once (volatile) and
 * is checked before use. */
static inline uint32_t load_u32(const uint8_t *p)
{
	return *(const volatile uint32_t *)p;
}

static inline uint64_t load_u64(const uint8_t *p)
{
	return *(const volatile uint64_t *)p;
}

int queue_read(struct queue_consumer *q, struct queue_record *rec, char err[QUEUE_ERROR_LEN])
{
	uint64_t r = q->read;
	if (r == q->cached_write) {
		uint64_t w = atomic_load_explicit(&q->hdr->write_pos, memory_order_acquire);
		if (w == r)
			return 0;
		if ((w & 7) || w - r > q->capacity) {
			set_err(err, "queue %s: write position %ju is out of range for read position %ju "
				"(capacity %ju)", q->dir, (uintmax_t)w, (uintmax_t)r,
				(uintmax_t)q->capacity);
			return -1;
		}
		q->cached_write = w;
	}
	uint64_t w = q->cached_write;
	for (;;) {
		uint64_t off = r & q->mask;
		const uint8_t *p = q->ring + off;
		uint32_t length = load_u32(p);
		uint32_t kind = load_u32(p + 4);
		if (kind == QUEUE_FRAME_WRAP) {
			uint64_t tail = q->capacity - off;
			if (length != tail || r + tail >= w) {
				set_err(err, "queue %s: bad wrap frame at position %ju (length %u, %ju bytes "
					"to the ring end, write position %ju)", q->dir, (uintmax_t)r,
					length, (uintmax_t)tail, (uintmax_t)w);
				return -1;
			}
			r += tail;
			continue;
		}
		uint64_t size = align8(length);
		if (kind != QUEUE_FRAME_RECORD || length < QUEUE_FRAME_SIZE ||
		    length - QUEUE_FRAME_SIZE > q->max_payload || off + size > q->capacity ||
		    size > w - r) {
			set_err(err, "queue %s: bad frame at position %ju (length %u, kind %u, write "
				"position %ju)", q->dir, (uintmax_t)r, length, kind, (uintmax_t)w);
			return -1;
		}
		uint64_t seq = load_u64(p + 8);
		if (q->last_seq != 0 ? seq != q->last_seq + 1 : seq == 0) {
			set_err(err, "queue %s: record at position %ju has seq %ju, expected %ju", q->dir,
				(uintmax_t)r, (uintmax_t)seq, (uintmax_t)(q->last_seq + 1));
			return -1;
		}
		q->last_seq = seq;
		q->read = r + size;
		rec->seq = seq;
		rec->pos = r + size;
		rec->data = p + QUEUE_FRAME_SIZE;
		rec->len = length - QUEUE_FRAME_SIZE;
		return 1;
	}
}

void queue_release(struct queue_consumer *q, uint64_t pos)
{
	if (pos == q->release)
		return;
	if ((pos & 7) || pos < q->release || pos > q->read) {
		log_warn("queue %s: release of position %ju ignored (release %ju, read %ju)", q->dir,
			 (uintmax_t)pos, (uintmax_t)q->release, (uintmax_t)q->read);
		return;
	}
	q->release = pos;
	atomic_store_explicit(&q->state->release_pos, pos, memory_order_release);
}

void queue_rewind(struct queue_consumer *q)
{
	q->read = q->release;
	/* the record at the release position is not one we remember */
	q->last_seq = 0;
}

int queue_doorbell_fd(const struct queue_consumer *q)
{
	return q->bell_fd;
}

bool queue_prepare_sleep(struct queue_consumer *q)
{
	atomic_store_explicit(&q->state->sleeping, 1, memory_order_seq_cst);
	atomic_thread_fence(memory_order_seq_cst);
	uint64_t w = atomic_load_explicit(&q->hdr->write_pos, memory_order_acquire);
	if (w != q->read) {
		atomic_store_explicit(&q->state->sleeping, 0, memory_order_relaxed);
		return false;
	}
	return true;
}

void queue_wake(struct queue_consumer *q)
{
	char buf[256];
	for (;;) {
		ssize_t n = read(q->bell_fd, buf, sizeof(buf));
		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		break; /* EAGAIN: drained (never EOF: we hold a write end too) */
	}
	atomic_store_explicit(&q->state->sleeping, 0, memory_order_seq_cst);
}

uint64_t queue_consumer_stream_id(const struct queue_consumer *q)
{
	return q->stream_id;
}

uint64_t queue_consumer_read_pos(const struct queue_consumer *q)
{
	return q->read;
}

uint64_t queue_consumer_release_pos(const struct queue_consumer *q)
{
	return q->release;
}

bool queue_consumer_detached(struct queue_consumer *q)
{
	char path[PATH_MAX + sizeof(QUEUE_DATA_FILE) + 1];
	struct stat st;
	snprintf(path, sizeof(path), "%s/" QUEUE_DATA_FILE, q->dir);
	if (lstat(path, &st) != 0)
		return true;
	return st.st_dev != q->data_dev || st.st_ino != q->data_ino;
}
