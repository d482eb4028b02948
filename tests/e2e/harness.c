#include "harness.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *const e2e_collector_path = COLLECTOR_PATH;
const char *const e2e_tracee_dir = TRACEE_DIR;

uint64_t e2e_unix_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void e2e_require_bpf(void)
{
	const char *require = getenv("REQUIRE_BPF");
	bool required = require && strcmp(require, "1") == 0;
	if (geteuid() == 0)
		return;
	if (required)
		cr_assert_fail("REQUIRE_BPF=1 but this test runs without root: eBPF end-to-end "
			       "tests need root to start the collector with CAP_BPF+CAP_PERFMON");
	fprintf(stderr, "\n*** SKIPPED: eBPF end-to-end test needs root (set REQUIRE_BPF=1 to "
			"make this a failure) ***\n\n");
	cr_skip_test("needs root for eBPF");
}

static void copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(in, 0, "open %s: %s", from, strerror(errno));
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	cr_assert_geq(out, 0, "create %s: %s", to, strerror(errno));
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		cr_assert_eq(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
}

void e2e_setup(struct e2e *t, const char *tracee_binary)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/ebpf-e2e-XXXXXX");
	cr_assert_not_null(mkdtemp(t->dir));
	chmod(t->dir, 01777); /* the unprivileged collector writes its ready file here */
	static unsigned counter;
	snprintf(t->queue_dir, sizeof(t->queue_dir), "/dev/shm/ebpf-e2e-%d-%u", (int)getpid(),
		 counter++);
	snprintf(t->tracee, sizeof(t->tracee), "%s/bitcoind", t->dir);
	char src[512];
	snprintf(src, sizeof(src), "%s/%s", e2e_tracee_dir, tracee_binary);
	copy_file(src, t->tracee);
	snprintf(t->ready_file, sizeof(t->ready_file), "%s/ready", t->dir);
	snprintf(t->collector_log, sizeof(t->collector_log), "%s/collector.log", t->dir);
}

void e2e_teardown(struct e2e *t)
{
	if (t->collector > 0)
		e2e_stop(t->collector, 10000);
	if (t->consumer)
		queue_consumer_close(t->consumer);
	char cmd[700];
	if (getenv("E2E_KEEP")) {
		fprintf(stderr, "keeping %s and %s\n", t->dir, t->queue_dir);
		return;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", t->dir, t->queue_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed: %s\n", cmd);
}

pid_t e2e_spawn(const char *const argv[], const char *log_path, bool unprivileged)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (log_path) {
			int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0666);
			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
				close(fd);
			}
		}
		if (!unprivileged) {
			execv(argv[0], (char *const *)argv);
			_exit(127);
		}
		const char *wrap[64] = { "/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup",
					 "--clear-groups", "--inh-caps=-all,+bpf,+perfmon",
					 "--ambient-caps=-all,+bpf,+perfmon",
					 "--bounding-set=-all,+bpf,+perfmon", "--" };
		int n = 8;
		for (int i = 0; argv[i] && n < 63; i++)
			wrap[n++] = argv[i];
		wrap[n] = NULL;
		execv(wrap[0], (char *const *)wrap);
		_exit(127);
	}
	return pid;
}

int e2e_wait_exit(pid_t pid, int timeout_ms)
{
	uint64_t deadline = monotonic_ms() + (uint64_t)timeout_ms;
	for (;;) {
		int status;
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		if (r < 0 || monotonic_ms() > deadline)
			return -1;
		usleep(2000); /* polling a child's exit; no readiness is assumed */
	}
}

void e2e_stop(pid_t pid, int timeout_ms)
{
	kill(pid, SIGTERM);
	if (e2e_wait_exit(pid, timeout_ms) < 0) {
		kill(pid, SIGKILL);
		e2e_wait_exit(pid, 5000);
	}
}

int e2e_run(const char *const argv[], char *out, size_t outlen, int timeout_ms)
{
	char path[] = "/tmp/ebpf-e2e-run-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
	pid_t pid = e2e_spawn(argv, path, false);
	int status = e2e_wait_exit(pid, timeout_ms);
	if (status < 0) {
		kill(pid, SIGKILL);
		e2e_wait_exit(pid, 5000);
	}
	if (out) {
		char *text = e2e_read_file(path);
		snprintf(out, outlen, "%s", text ? text : "");
		free(text);
	}
	unlink(path);
	return status;
}

char *e2e_read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	size_t n;
	while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len < 2)
			buf = realloc(buf, cap *= 2);
	}
	buf[len] = '\0';
	fclose(f);
	return buf;
}

bool e2e_file_contains(const char *path, const char *needle)
{
	char *text = e2e_read_file(path);
	bool found = text && strstr(text, needle);
	free(text);
	return found;
}

bool e2e_wait_until(bool (*cond)(void *), void *arg, int timeout_ms)
{
	uint64_t deadline = monotonic_ms() + (uint64_t)timeout_ms;
	while (!cond(arg)) {
		if (monotonic_ms() > deadline)
			return false;
		usleep(5000);
	}
	return true;
}

pid_t e2e_start_collector(struct e2e *t, bool unprivileged, const char *const extra[])
{
	const char *argv[64] = { e2e_collector_path, "--bitcoind-path", t->tracee, "--queue",
				 t->queue_dir, "--ready-file", t->ready_file, "--log-level",
				 "debug" };
	int n = 9;
	for (int i = 0; extra && extra[i] && n < 63; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	t->collector = e2e_spawn(argv, t->collector_log, unprivileged);
	return t->collector;
}

struct ready_wait {
	struct e2e *t;
	unsigned generation;
	int attached;
	bool exited;
};

static bool ready_cond(void *arg)
{
	struct ready_wait *w = arg;
	int status;
	if (waitpid(w->t->collector, &status, WNOHANG) == w->t->collector) {
		w->exited = true;
		w->t->collector = 0;
		return true;
	}
	char *text = e2e_read_file(w->t->ready_file);
	int attached = -1;
	unsigned generation = 0;
	bool ok = text && sscanf(text, "attached %d generation %u", &attached, &generation) == 2 &&
		  generation == w->generation && attached > 0;
	free(text);
	if (ok)
		w->attached = attached;
	return ok;
}

int e2e_wait_ready(struct e2e *t, unsigned generation, int timeout_ms)
{
	struct ready_wait w = { t, generation, -1, false };
	if (!e2e_wait_until(ready_cond, &w, timeout_ms) || w.exited) {
		char *log = e2e_read_file(t->collector_log);
		fprintf(stderr, "collector not ready; its log:\n%s\n", log ? log : "(none)");
		free(log);
		return -1;
	}
	return w.attached;
}

bool e2e_next_record(struct e2e *t, struct e2e_record *rec, int timeout_ms)
{
	char err[QUEUE_ERROR_LEN];
	uint64_t deadline = monotonic_ms() + (uint64_t)timeout_ms;
	while (!t->consumer) {
		int e = 0;
		t->consumer = queue_consumer_open(t->queue_dir, &e, err);
		if (!t->consumer) {
			cr_assert_eq(e, ENOENT, "opening the queue: %s", err);
			if (monotonic_ms() > deadline)
				return false;
			usleep(5000);
		}
	}
	for (;;) {
		struct queue_record r;
		int got = queue_read(t->consumer, &r, err);
		cr_assert_geq(got, 0, "queue_read: %s", err);
		if (got == 1) {
			rec->seq = r.seq;
			rec->len = r.len;
			rec->data = malloc(r.len ? r.len : 1);
			memcpy(rec->data, r.data, r.len);
			queue_release(t->consumer, r.pos);
			return true;
		}
		uint64_t now = monotonic_ms();
		if (now > deadline)
			return false;
		if (queue_prepare_sleep(t->consumer)) {
			struct pollfd p = { .fd = queue_doorbell_fd(t->consumer), .events = POLLIN };
			poll(&p, 1, (int)(deadline - now));
			queue_wake(t->consumer);
		}
	}
}

/* ---- added for the fault tests ---- */

void e2e_copy_file(const char *from, const char *to)
{
	copy_file(from, to);
}

struct contains_wait {
	const char *path, *needle;
};

static bool contains_cond(void *arg)
{
	const struct contains_wait *w = arg;
	return e2e_file_contains(w->path, w->needle);
}

bool e2e_wait_file_contains(const char *path, const char *needle, int timeout_ms)
{
	struct contains_wait w = { path, needle };
	return e2e_wait_until(contains_cond, &w, timeout_ms);
}

/* ---- error-path helpers ---- */

#include <sys/sysmacros.h> /* makedev */

int e2e_run_collector(enum e2e_privs privs, const char *const args[], char **out, char **err,
		      int timeout_ms)
{
	char out_path[] = "/tmp/ebpf-e2e-out-XXXXXX";
	char err_path[] = "/tmp/ebpf-e2e-err-XXXXXX";
	int out_fd = mkstemp(out_path);
	int err_fd = mkstemp(err_path);
	cr_assert(out_fd >= 0 && err_fd >= 0, "mkstemp: %s", strerror(errno));
	static const char *const caps[] = {
		[E2E_NOBODY_NO_CAPS] = "-all",
		[E2E_NOBODY_BPF] = "-all,+bpf",
		[E2E_NOBODY_BPF_PERFMON] = "-all,+bpf,+perfmon",
	};
	char inh[64], amb[64], bound[64];
	const char *argv[80];
	int n = 0;
	if (privs != E2E_AS_ROOT) {
		snprintf(inh, sizeof(inh), "--inh-caps=%s", caps[privs]);
		snprintf(amb, sizeof(amb), "--ambient-caps=%s", caps[privs]);
		snprintf(bound, sizeof(bound), "--bounding-set=%s", caps[privs]);
		const char *wrap[] = { "/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup",
				       "--clear-groups", inh, amb, bound, "--" };
		for (size_t i = 0; i < sizeof(wrap) / sizeof(wrap[0]); i++)
			argv[n++] = wrap[i];
	}
	argv[n++] = e2e_collector_path;
	for (int i = 0; args && args[i] && n < 79; i++)
		argv[n++] = args[i];
	argv[n] = NULL;

	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		if (null >= 0)
			dup2(null, 0);
		dup2(out_fd, 1);
		dup2(err_fd, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(out_fd);
	close(err_fd);
	int status = e2e_wait_exit(pid, timeout_ms);
	if (status < 0) {
		kill(pid, SIGKILL);
		e2e_wait_exit(pid, 5000);
	}
	if (out)
		*out = e2e_read_file(out_path);
	if (err)
		*err = e2e_read_file(err_path);
	unlink(out_path);
	unlink(err_path);
	return status;
}

struct load_segment {
	uint64_t offset, vaddr, filesz;
};

static bool address_to_offset(const struct load_segment *segs, int count, uint64_t addr,
			      uint64_t *off)
{
	for (int i = 0; i < count; i++) {
		if (addr >= segs[i].vaddr && addr - segs[i].vaddr < segs[i].filesz) {
			*off = addr - segs[i].vaddr + segs[i].offset;
			return true;
		}
	}
	return false;
}

int e2e_readelf_probes(const char *path, struct e2e_probe *out, int max)
{
	char cmd[600], line[1024];
	struct load_segment segs[16];
	int nsegs = 0;
	snprintf(cmd, sizeof(cmd), "LC_ALL=C readelf -lW '%s'", path);
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p, "popen readelf: %s", strerror(errno));
	while (fgets(line, sizeof(line), p)) {
		unsigned long long off, vaddr, paddr, filesz;
		if (nsegs < 16 &&
		    sscanf(line, " LOAD %llx %llx %llx %llx", &off, &vaddr, &paddr, &filesz) == 4)
			segs[nsegs++] = (struct load_segment){ off, vaddr, filesz };
	}
	cr_assert_eq(pclose(p), 0, "readelf -lW %s failed", path);
	cr_assert_gt(nsegs, 0, "readelf found no PT_LOAD segment in %s", path);

	snprintf(cmd, sizeof(cmd), "LC_ALL=C readelf -nW '%s'", path);
	p = popen(cmd, "r");
	cr_assert_not_null(p, "popen readelf: %s", strerror(errno));
	int count = -1;
	while (fgets(line, sizeof(line), p)) {
		line[strcspn(line, "\n")] = '\0';
		const char *at;
		if ((at = strstr(line, "Provider: "))) {
			if (count + 1 >= max)
				break;
			count++;
			memset(&out[count], 0, sizeof(out[count]));
			snprintf(out[count].provider, sizeof(out[count].provider), "%s", at + 10);
		} else if (count < 0) {
			continue;
		} else if ((at = strstr(line, "Name: "))) {
			snprintf(out[count].name, sizeof(out[count].name), "%s", at + 6);
		} else if ((at = strstr(line, "Location: "))) {
			unsigned long long loc, base, sem;
			cr_assert_eq(sscanf(at, "Location: %llx, Base: %llx, Semaphore: %llx", &loc,
					    &base, &sem),
				     3, "readelf line: %s", line);
			out[count].location = loc;
			out[count].semaphore = sem;
			cr_assert(address_to_offset(segs, nsegs, loc, &out[count].file_offset),
				  "probe location 0x%llx is in no PT_LOAD segment", loc);
			if (sem)
				cr_assert(address_to_offset(segs, nsegs, sem,
							    &out[count].semaphore_offset),
					  "semaphore 0x%llx is in no PT_LOAD segment", sem);
		} else if ((at = strstr(line, "Arguments:"))) {
			at += 10;
			while (*at == ' ')
				at++;
			snprintf(out[count].args, sizeof(out[count].args), "%s", at);
		}
	}
	pclose(p);
	return count + 1;
}

const struct e2e_probe *e2e_find_probe(const struct e2e_probe *probes, int count,
				       const char *provider, const char *name)
{
	for (int i = 0; i < count; i++)
		if (strcmp(probes[i].provider, provider) == 0 && strcmp(probes[i].name, name) == 0)
			return &probes[i];
	return NULL;
}

int e2e_read_semaphore(pid_t pid, const char *binary_path, uint64_t off)
{
	struct stat st;
	cr_assert_eq(stat(binary_path, &st), 0, "stat %s: %s", binary_path, strerror(errno));
	char path[64], line[1024];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	cr_assert_not_null(f, "open %s: %s", path, strerror(errno));
	uint64_t addr = 0;
	bool found = false, writable = false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start, end, map_off, inode;
		unsigned major, minor;
		char perms[8];
		if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu", &start, &end, perms, &map_off,
			   &major, &minor, &inode) != 7)
			continue;
		if (inode != (unsigned long long)st.st_ino || makedev(major, minor) != st.st_dev)
			continue;
		if (off < map_off || off - map_off >= end - start)
			continue;
		/* the private writable mapping holds the process's own copy */
		if (!found || (!writable && perms[1] == 'w')) {
			addr = start + (off - map_off);
			found = true;
			writable = perms[1] == 'w';
		}
	}
	fclose(f);
	if (!found)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	uint16_t value = 0;
	ssize_t n = pread(fd, &value, sizeof(value), (off_t)addr);
	close(fd);
	cr_assert_eq(n, (ssize_t)sizeof(value), "reading %s at 0x%llx: %s", path,
		     (unsigned long long)addr, strerror(errno));
	return value;
}

bool e2e_cap_eff_is(pid_t pid, const char *hex)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	bool match = false;
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "CapEff:", 7) == 0)
			match = strstr(line, hex) != NULL;
	if (f)
		fclose(f);
	return match;
}
