/* Every fatal error of ebpf-collector: the exact one line it prints on
 * stderr, its exact exit status, and nothing else on stderr or stdout (no
 * crash, no libbpf noise). And no failed start leaves state behind that
 * breaks the next one: after each kind of failure a correct start on the
 * same queue is ready. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "queue.h"
#include "record.h"
#include "tracepoints_table.h"

#define DEADLINE_MS 60000
#define EXIT_FATAL 1
#define EXIT_USAGE 2

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static const char usage_line[] = "usage: ebpf-collector --bitcoind-path PATH [--bitcoind-pid PID | "
				 "--bitcoind-pid-file PATH] [options]";

/* What a collector with the four default groups attaches (12), and with
 * utxocache on top (16: every probe of ebpf-tracee-nowallet). */
#define DEFAULT_TRACEPOINTS 12
#define NOWALLET_ALL_TRACEPOINTS 16

static struct e2e env;

static void init(void)
{
	e2e_require_bpf();
	memset(&env, 0, sizeof(env));
}

static void fini(void)
{
	if (env.dir[0])
		e2e_teardown(&env);
}

TestSuite(collector_errors, .init = init, .fini = fini, .timeout = 240);
/* Flag errors need no eBPF: these run anywhere. */
TestSuite(collector_usage, .timeout = 60);

/* ---- helpers ---- */

static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *format(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	cr_assert_geq(vasprintf(&s, fmt, ap), 0);
	va_end(ap);
	return s;
}

/* Runs the collector as privs with args; it must exit with status and
 * print exactly the lines expected_stderr (each ending in \n) on stderr and
 * nothing on stdout. */
static void expect_exit(enum e2e_privs privs, const char *const args[], int status,
			const char *expected_stderr)
{
	char *out = NULL, *err = NULL;
	int rc = e2e_run_collector(privs, args, &out, &err, DEADLINE_MS);
	cr_assert_not_null(err);
	cr_assert_not_null(out);
	cr_assert_str_eq(err, expected_stderr, "stderr:\n%s\nexpected:\n%s", err, expected_stderr);
	cr_assert_str_eq(out, "", "stdout is not empty:\n%s", out);
	cr_assert_eq(rc, status, "exit status %d, expected %d (stderr: %s)", rc, status, err);
	free(out);
	free(err);
}

/* A fatal error: exit 1 and exactly "ebpf-collector: error: <message>". */
static void expect_fatal(enum e2e_privs privs, const char *const args[], const char *message)
{
	char *line = format("ebpf-collector: error: %s\n", message);
	expect_exit(privs, args, EXIT_FATAL, line);
	free(line);
}

/* A usage error: exit 2, "ebpf-collector: <message>" and the usage line. */
static void expect_usage(const char *const args[], const char *message)
{
	char *text = format("ebpf-collector: %s\n%s\n", message, usage_line);
	expect_exit(E2E_AS_ROOT, args, EXIT_USAGE, text);
	free(text);
}

static void assert_no_queue(void)
{
	struct stat st;
	cr_assert(lstat(env.queue_dir, &st) != 0 && errno == ENOENT,
		  "the failed start left %s behind", env.queue_dir);
}

static uid_t nobody_uid(void)
{
	struct passwd *pw = getpwnam("nobody");
	cr_assert_not_null(pw, "no user nobody");
	return pw->pw_uid;
}

static gid_t nogroup_gid(void)
{
	struct group *gr = getgrnam("nogroup");
	cr_assert_not_null(gr, "no group nogroup");
	return gr->gr_gid;
}

/* A queue directory that the unprivileged collector (nobody) owns. */
static void make_queue_dir_of_nobody(void)
{
	cr_assert_eq(mkdir(env.queue_dir, 0700), 0, "mkdir %s: %s", env.queue_dir, strerror(errno));
	cr_assert_eq(chown(env.queue_dir, nobody_uid(), nogroup_gid()), 0);
}

/* The recovery every error test ends with: a correct start (as users run
 * it, nobody with CAP_BPF+CAP_PERFMON) on the same queue gets ready. */
static void expect_correct_start(const char *const extra[], int tracepoints)
{
	e2e_start_collector(&env, true, extra);
	cr_assert_eq(e2e_wait_ready(&env, 0, DEADLINE_MS), tracepoints,
		     "after the failed start, a correct start did not attach %d tracepoints",
		     tracepoints);
}

/* The next record must be a started record with this seq. */
static void expect_started_record(uint64_t seq)
{
	struct e2e_record rec;
	cr_assert(e2e_next_record(&env, &rec, DEADLINE_MS), "no started record");
	const struct record_header *h = (const void *)rec.data;
	cr_assert_eq(h->kind, RECORD_STARTED, "seq %llu is kind %u, not a started record",
		     (unsigned long long)rec.seq, h->kind);
	cr_assert_eq(rec.seq, seq, "started record has seq %llu, expected %llu",
		     (unsigned long long)rec.seq, (unsigned long long)seq);
	free(rec.data);
}

/* ---- missing privileges ---- */

Test(collector_errors, no_capabilities_names_cap_bpf_and_cap_perfmon)
{
	e2e_setup(&env, "ebpf-tracee");
	expect_fatal(E2E_NOBODY_NO_CAPS,
		     ARGS("--bitcoind-path", env.tracee, "--queue", env.queue_dir, "--queue-size", "1M"),
		     "missing CAP_BPF and CAP_PERFMON: the collector needs CAP_BPF and CAP_PERFMON to "
		     "load and attach its BPF programs; run it as root or grant them (systemd: "
		     "AmbientCapabilities=CAP_BPF CAP_PERFMON)");
	assert_no_queue();
	expect_correct_start(ARGS("--queue-size", "1M"), DEFAULT_TRACEPOINTS);
}

Test(collector_errors, only_cap_bpf_names_cap_perfmon)
{
	e2e_setup(&env, "ebpf-tracee");
	expect_fatal(E2E_NOBODY_BPF,
		     ARGS("--bitcoind-path", env.tracee, "--queue", env.queue_dir, "--queue-size", "1M"),
		     "missing CAP_PERFMON: the collector needs CAP_BPF and CAP_PERFMON to load and "
		     "attach its BPF programs; run it as root or grant them (systemd: "
		     "AmbientCapabilities=CAP_BPF CAP_PERFMON)");
	assert_no_queue();
	expect_correct_start(ARGS("--queue-size", "1M"), DEFAULT_TRACEPOINTS);
}

Test(collector_errors, perf_mode_without_cap_sys_admin_names_it_and_why)
{
	e2e_setup(&env, "ebpf-tracee");
	expect_fatal(E2E_NOBODY_BPF_PERFMON,
		     ARGS("--bitcoind-path", env.tracee, "--queue", env.queue_dir, "--queue-size", "1M",
			  "--attach-mode", "perf"),
		     "missing CAP_SYS_ADMIN: --attach-mode perf attaches perf-event uprobes, which need "
		     "CAP_SYS_ADMIN until every probe is attached (it is dropped then); grant it, or use "
		     "--attach-mode auto on Linux 6.6+, whose uprobe-multi links need only CAP_BPF and "
		     "CAP_PERFMON");
	assert_no_queue();
	expect_correct_start(ARGS("--queue-size", "1M", "--attach-mode", "auto"), DEFAULT_TRACEPOINTS);
}

/* ---- the binary ---- */

Test(collector_errors, binary_not_found)
{
	e2e_setup(&env, "ebpf-tracee");
	char *missing = format("%s/no-such-bitcoind", env.dir);
	char *message = format("cannot open bitcoind binary %s: No such file or directory", missing);
	expect_fatal(E2E_NOBODY_BPF_PERFMON,
		     ARGS("--bitcoind-path", missing, "--queue", env.queue_dir, "--queue-size", "1M"),
		     message);
	assert_no_queue();
	free(missing);
	free(message);
	expect_correct_start(ARGS("--queue-size", "1M"), DEFAULT_TRACEPOINTS);
}

Test(collector_errors, binary_is_a_directory)
{
	e2e_setup(&env, "ebpf-tracee");
	char *message = format("bitcoind binary %s is not a regular file", env.dir);
	expect_fatal(E2E_NOBODY_BPF_PERFMON,
		     ARGS("--bitcoind-path", env.dir, "--queue", env.queue_dir, "--queue-size", "1M"),
		     message);
	assert_no_queue();
	free(message);
}

Test(collector_errors, binary_not_readable_by_the_collectors_uid)
{
	e2e_setup(&env, "ebpf-tracee");
	cr_assert_eq(chmod(env.tracee, 0700), 0); /* root's; the collector runs as nobody */
	char *message = format("cannot open bitcoind binary %s: Permission denied (the collector "
			       "must be able to read it, and to search its directories)",
			       env.tracee);
	expect_fatal(E2E_NOBODY_BPF_PERFMON,
		     ARGS("--bitcoind-path", env.tracee, "--queue", env.queue_dir, "--queue-size", "1M"),
		     message);
	assert_no_queue();
	free(message);
	cr_assert_eq(chmod(env.tracee, 0755), 0);
	expect_correct_start(ARGS("--queue-size", "1M"), DEFAULT_TRACEPOINTS);
}

/* The SIB tracee's mempool:added spec, from readelf. */
static char *sib_spec(void)
{
	struct e2e_probe probes[32];
	int n = e2e_readelf_probes(env.tracee, probes, 32);
	const struct e2e_probe *added = e2e_find_probe(probes, n, "mempool", "added");
	cr_assert_not_null(added, "the SIB tracee has no mempool:added");
	/* the second argument is the SIB one */
	char *copy = strdup(added->args), *save = NULL;
	strtok_r(copy, " ", &save);
	char *spec = strtok_r(NULL, " ", &save);
	cr_assert_not_null(spec, "mempool:added args '%s'", added->args);
	cr_assert(strchr(spec, ',') != NULL, "'%s' is not a SIB spec", spec);
	spec = strdup(spec);
	free(copy);
	return spec;
}

static void expect_sib_error(enum e2e_privs privs, const char *mode)
{
	char *spec = sib_spec();
	char *message = format("%s: mempool:added: argument 2 has the form '%s' (indexed "
			       "addressing), which the extractor cannot read; add "
			       "--no-mempool-tracepoints to run without group mempool",
			       env.tracee, spec);
	expect_fatal(privs,
		     ARGS("--bitcoind-path", env.tracee, "--queue", env.queue_dir, "--queue-size", "1M",
			  "--attach-mode", mode),
		     message);
	assert_no_queue();
	free(spec);
	free(message);
}

Test(collector_errors, sib_argument_spec_names_probe_and_spec)
{
	e2e_setup(&env, "ebpf-tracee-sib");
	expect_sib_error(E2E_NOBODY_BPF_PERFMON, "auto");
	/* The advice works: without the mempool group the rest attaches. */
	expect_correct_start(ARGS("--queue-size", "1M", "--no-mempool-tracepoints"),
			     DEFAULT_TRACEPOINTS - 4);
}

/* Perf mode hands the spec to libbpf, whose parser would log its own line
 * and fail with ENOENT: the collector must say it first, alone. */
Test(collector_errors, sib_argument_spec_in_perf_mode_without_libbpf_noise)
{
	e2e_setup(&env, "ebpf-tracee-sib");
	expect_sib_error(E2E_AS_ROOT, "perf");
}

Test(collector_errors, binary_without_usdt_notes)
{
	e2e_setup(&env, "ebpf-tracee-noprobes");
	char *message = format("%s: no USDT notes (is bitcoind built with -DWITH_USDT=ON?)",
			       env.tracee);
	expect_fatal(E2E_NOBODY_BPF_PERFMON,
		     ARGS("--bitcoind-path", env.tracee, "--queue", env.queue_dir, "--queue-size", "1M"),
		     message);
	assert_no_queue();
	free(message);
}

/* ---- the pid ---- */

Test(collector_errors, pid_that_does_not_exist)
{
	e2e_setup(&env, "ebpf-tracee");
	pid_t gone = fork();
	cr_assert_geq(gone, 0);
	if (gone == 0)
		_exit(0);
	cr_assert_eq(e2e_wait_exit(gone, 10000), 0); /* reaped: the pid is free */
	char pid[16];
	snprintf(pid, sizeof(pid), "%d", (int)gone);
	char *message = format("pid %d does not exist", (int)gone);
	expect_fatal(E2E_NOBODY_BPF_PERFMON,
		     ARGS("--bitcoind-path", env.tracee, "--queue", env.queue_dir, "--queue-size", "1M",
			  "--bitcoind-pid", pid),
		     message);
	assert_no_queue();
	free(message);
	expect_correct_start(ARGS("--queue-size", "1M"), DEFAULT_TRACEPOINTS);
}

Test(collector_errors, pid_running_another_binary)
{
	e2e_setup(&env, "ebpf-tracee");
	pid_t sleeper = e2e_spawn(ARGS("/bin/sleep", "120"), NULL, false);
	/* wait for the exec: until then the child runs this test's binary */
	char exe[64], target[256];
	snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)sleeper);
	for (int i = 0; i < 2000; i++) {
		ssize_t n = readlink(exe, target, sizeof(target) - 1);
		if (n > 0 && (target[n] = '\0', strstr(target, "sleep")))
			break;
		usleep(1000);
	}
	char pid[16];
	snprintf(pid, sizeof(pid), "%d", (int)sleeper);
	char *message = format("pid %d is not running %s", (int)sleeper, env.tracee);
	expect_fatal(E2E_NOBODY_BPF_PERFMON,
		     ARGS("--bitcoind-path", env.tracee, "--queue", env.queue_dir, "--queue-size", "1M",
			  "--bitcoind-pid", pid),
		     message);
	kill(sleeper, SIGKILL);
	e2e_wait_exit(sleeper, 10000);
	assert_no_queue();
	free(message);
}

/* ---- probes of a requested group ---- */

Test(collector_errors, probe_missing_for_requested_group)
{
	e2e_setup(&env, "ebpf-tracee-nowallet");
	char *message = format("%s has no probe coin_selection:selected_coins (group coin_selection): "
			       "leave out --coin-selection-tracepoints to run without group "
			       "coin_selection, or use a bitcoind that has it",
			       env.tracee);
	expect_fatal(E2E_NOBODY_BPF_PERFMON,
		     ARGS("--bitcoind-path", env.tracee, "--queue", env.queue_dir, "--queue-size", "1M",
			  "--utxocache-tracepoints", "--coin-selection-tracepoints"),
		     message);
	/* perf mode (as root) checks the same before libbpf sees the binary */
	expect_fatal(E2E_AS_ROOT,
		     ARGS("--bitcoind-path", env.tracee, "--queue", env.queue_dir, "--queue-size", "1M",
			  "--attach-mode", "perf", "--coin-selection-tracepoints"),
		     message);
	assert_no_queue();
	free(message);
	/* Without the flag every probe the binary has attaches. */
	expect_correct_start(ARGS("--queue-size", "1M", "--utxocache-tracepoints"),
			     NOWALLET_ALL_TRACEPOINTS);
	char *ready = e2e_read_file(env.ready_file);
	char *line = format("attached %d generation 0 pid %d\n", NOWALLET_ALL_TRACEPOINTS,
			    (int)env.collector);
	cr_assert_str_eq(ready, line);
	free(ready);
	free(line);
	expect_started_record(1);
}

/* ---- the queue ---- */

static void write_foreign_queue(uint32_t layout_version, uint64_t capacity)
{
	make_queue_dir_of_nobody();
	char *path = format("%s/" QUEUE_DATA_FILE, env.queue_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	cr_assert_geq(fd, 0, "create %s: %s", path, strerror(errno));
	uint8_t header[QUEUE_HEADER_SIZE] = { 0 };
	uint64_t magic = QUEUE_DATA_MAGIC, stream = 0x1122334455667788ull, next_seq = 1;
	uint32_t header_size = QUEUE_HEADER_SIZE;
	memcpy(header + QUEUE_HDR_MAGIC, &magic, 8);
	memcpy(header + QUEUE_HDR_LAYOUT_VERSION, &layout_version, 4);
	memcpy(header + QUEUE_HDR_HEADER_SIZE, &header_size, 4);
	memcpy(header + QUEUE_HDR_CAPACITY, &capacity, 8);
	memcpy(header + QUEUE_HDR_STREAM_ID, &stream, 8);
	memcpy(header + QUEUE_HDR_NEXT_SEQ, &next_seq, 8);
	cr_assert_eq(pwrite(fd, header, sizeof(header), 0), (ssize_t)sizeof(header));
	cr_assert_eq(ftruncate(fd, (off_t)(QUEUE_HEADER_SIZE + capacity)), 0);
	cr_assert_eq(fchown(fd, nobody_uid(), nogroup_gid()), 0);
	close(fd);
	free(path);
}

static uint64_t queue_header_u64(unsigned offset)
{
	char *path = format("%s/" QUEUE_DATA_FILE, env.queue_dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	uint64_t v = 0;
	cr_assert_eq(pread(fd, &v, sizeof(v), offset), (ssize_t)sizeof(v));
	close(fd);
	free(path);
	return v;
}

Test(collector_errors, queue_of_another_layout_version)
{
	e2e_setup(&env, "ebpf-tracee");
	write_foreign_queue(QUEUE_LAYOUT_VERSION + 1, 1u << 20);
	char *message = format("queue %s has layout version %u, this program uses version %u; "
			       "remove the queue or use the matching version",
			       env.queue_dir, QUEUE_LAYOUT_VERSION + 1, QUEUE_LAYOUT_VERSION);
	expect_fatal(E2E_NOBODY_BPF_PERFMON,
		     ARGS("--bitcoind-path", env.tracee, "--queue", env.queue_dir),
		     message);
	free(message);
	/* left as it was */
	cr_assert_eq((uint32_t)queue_header_u64(QUEUE_HDR_LAYOUT_VERSION), QUEUE_LAYOUT_VERSION + 1);
	cr_assert_eq(queue_header_u64(QUEUE_HDR_STREAM_ID), 0x1122334455667788ull);
	/* What the message says to do works. */
	char *path = format("%s/" QUEUE_DATA_FILE, env.queue_dir);
	cr_assert_eq(unlink(path), 0);
	free(path);
	expect_correct_start(ARGS("--queue-size", "1M"), DEFAULT_TRACEPOINTS);
	expect_started_record(1);
}

Test(collector_errors, queue_of_another_capacity_names_both)
{
	e2e_setup(&env, "ebpf-tracee");
	expect_correct_start(ARGS("--queue-size", "1M"), DEFAULT_TRACEPOINTS);
	uint64_t stream = queue_header_u64(QUEUE_HDR_STREAM_ID);
	e2e_stop(env.collector, 20000);
	env.collector = 0;
	uint64_t next_seq = queue_header_u64(QUEUE_HDR_NEXT_SEQ);

	char *message = format("queue %s has capacity 1048576 bytes, --queue-size asks for 2097152; "
			       "remove the queue or use its size",
			       env.queue_dir);
	expect_fatal(E2E_NOBODY_BPF_PERFMON,
		     ARGS("--bitcoind-path", env.tracee, "--queue", env.queue_dir, "--queue-size", "2M"),
		     message);
	free(message);
	cr_assert_eq(queue_header_u64(QUEUE_HDR_CAPACITY), 1u << 20);
	cr_assert_eq(queue_header_u64(QUEUE_HDR_STREAM_ID), stream);
	cr_assert_eq(queue_header_u64(QUEUE_HDR_NEXT_SEQ), next_seq,
		     "the failed start wrote into the queue");

	/* The same queue, its own size: continues the stream. */
	cr_assert_eq(unlink(env.ready_file), 0);
	expect_correct_start(NULL, DEFAULT_TRACEPOINTS);
	cr_assert_eq(queue_header_u64(QUEUE_HDR_STREAM_ID), stream);
	expect_started_record(1); /* the first run's */
	for (;;) { /* its last stats record(s), then the second run's started record */
		struct e2e_record rec;
		cr_assert(e2e_next_record(&env, &rec, DEADLINE_MS), "no second started record");
		unsigned kind = ((const struct record_header *)(const void *)rec.data)->kind;
		uint64_t seq = rec.seq;
		free(rec.data);
		if (kind == RECORD_STARTED) {
			cr_assert_eq(seq, next_seq, "the second started record has seq %llu, not %llu",
				     (unsigned long long)seq, (unsigned long long)next_seq);
			break;
		}
		cr_assert_eq(kind, RECORD_STATS, "seq %llu: kind %u", (unsigned long long)seq, kind);
	}
}

Test(collector_errors, queue_directory_owned_by_another_user)
{
	e2e_setup(&env, "ebpf-tracee");
	cr_assert_eq(mkdir(env.queue_dir, 0755), 0); /* root's */
	char *message = format("queue directory %s is owned by uid 0, not by this process (uid %u); "
			       "refusing it",
			       env.queue_dir, (unsigned)nobody_uid());
	expect_fatal(E2E_NOBODY_BPF_PERFMON,
		     ARGS("--bitcoind-path", env.tracee, "--queue", env.queue_dir, "--queue-size", "1M"),
		     message);
	free(message);
	struct stat st;
	cr_assert_eq(stat(env.queue_dir, &st), 0);
	cr_assert_eq(st.st_uid, 0);
	cr_assert_eq(rmdir(env.queue_dir), 0, "the failed start put files into %s", env.queue_dir);
	expect_correct_start(ARGS("--queue-size", "1M"), DEFAULT_TRACEPOINTS);
}

Test(collector_errors, symlink_at_the_data_path)
{
	e2e_setup(&env, "ebpf-tracee");
	make_queue_dir_of_nobody();
	char *victim = format("%s/victim", env.dir);
	char *data = format("%s/" QUEUE_DATA_FILE, env.queue_dir);
	int fd = open(victim, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(chown(victim, nobody_uid(), nogroup_gid()), 0); /* writable if followed */
	cr_assert_eq(symlink(victim, data), 0);
	char *message = format("%s/" QUEUE_DATA_FILE " is a symbolic link; refusing it", env.queue_dir);
	expect_fatal(E2E_NOBODY_BPF_PERFMON,
		     ARGS("--bitcoind-path", env.tracee, "--queue", env.queue_dir, "--queue-size", "1M"),
		     message);
	struct stat st;
	cr_assert_eq(stat(victim, &st), 0);
	cr_assert_eq(st.st_size, 0, "the collector wrote through the symbolic link");
	cr_assert_eq(unlink(data), 0);
	free(victim);
	free(data);
	free(message);
	expect_correct_start(ARGS("--queue-size", "1M"), DEFAULT_TRACEPOINTS);
	expect_started_record(1);
}

/* A group the collector may not give its queue to: the directory it made
 * for that start goes again, so the next start makes it properly (03770),
 * instead of finding a 0700 directory the publisher can never enter. */
Test(collector_errors, queue_group_not_allowed_leaves_no_directory)
{
	e2e_setup(&env, "ebpf-tracee");
	char *message = format("cannot give queue directory %s to group 0: Operation not permitted "
			       "(this uid must be a member of that group)",
			       env.queue_dir);
	expect_fatal(E2E_NOBODY_BPF_PERFMON,
		     ARGS("--bitcoind-path", env.tracee, "--queue", env.queue_dir, "--queue-size", "1M",
			  "--queue-group", "root"),
		     message);
	free(message);
	assert_no_queue();
	expect_correct_start(ARGS("--queue-size", "1M", "--queue-group", "nogroup"),
			     DEFAULT_TRACEPOINTS);
	struct stat st;
	cr_assert_eq(stat(env.queue_dir, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 03770, "queue directory mode %04o", st.st_mode & 07777);
	cr_assert_eq(st.st_gid, nogroup_gid());
}

/* ---- a start that fails half way through attaching ---- */

static bool tracee_mapped(void *arg)
{
	return e2e_read_semaphore(*(pid_t *)arg, env.tracee, 0) >= 0;
}

static pid_t start_idle_tracee(void)
{
	/* fires nothing until SIGUSR1: only its semaphores are looked at */
	pid_t pid = e2e_spawn(ARGS(env.tracee, "--wait-signal", "--timeout", "120", "scenario"), NULL,
			      false);
	cr_assert(e2e_wait_until(tracee_mapped, &pid, 10000), "the tracee did not start");
	return pid;
}

static void patch_byte(uint64_t offset, uint8_t expect, uint8_t value)
{
	int fd = open(env.tracee, O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s: %s", env.tracee, strerror(errno));
	uint8_t old = 0;
	cr_assert_eq(pread(fd, &old, 1, (off_t)offset), 1);
	cr_assert_eq(old, expect, "byte at 0x%llx is 0x%02x", (unsigned long long)offset, old);
	cr_assert_eq(pwrite(fd, &value, 1, (off_t)offset), 1);
	close(fd);
}

/* The last default tracepoint (mempool:rejected) has a probe site that is
 * not the nop: the collector attaches 11 links, then refuses it. Nothing may
 * stay attached (bitcoind's semaphores back at 0), nothing is written to
 * the queue, and the next start is normal. */
Test(collector_errors, attach_failing_half_way_leaves_nothing_attached)
{
	e2e_setup(&env, "ebpf-tracee");
	struct e2e_probe probes[32];
	int count = e2e_readelf_probes(env.tracee, probes, 32);
	cr_assert_eq(count, TP_COUNT - 1);
	const struct e2e_probe *rejected = e2e_find_probe(probes, count, "mempool", "rejected");
	cr_assert_not_null(rejected);
	patch_byte(rejected->file_offset, 0x90, 0xfc); /* nop -> cld */

	pid_t tracee = start_idle_tracee();
	char *message = format("%s: probe mempool:rejected: the byte at file offset 0x%llx is 0xfc, "
			       "not the nop (0x90) that sys/sdt.h places at a probe site; refusing "
			       "to put a uprobe there (was the file modified in place?)",
			       env.tracee, (unsigned long long)rejected->file_offset);
	expect_fatal(E2E_NOBODY_BPF_PERFMON,
		     ARGS("--bitcoind-path", env.tracee, "--queue", env.queue_dir, "--queue-size", "1M"),
		     message);
	free(message);
	for (int i = 0; i < count; i++)
		cr_assert_eq(e2e_read_semaphore(tracee, env.tracee, probes[i].semaphore_offset), 0,
			     "%s:%s: the failed start left its semaphore counted", probes[i].provider,
			     probes[i].name);
	kill(tracee, SIGKILL);
	e2e_wait_exit(tracee, 10000);
	patch_byte(rejected->file_offset, 0xfc, 0x90);

	expect_correct_start(ARGS("--queue-size", "1M"), DEFAULT_TRACEPOINTS);
	expect_started_record(1); /* the failed start wrote nothing */
	/* The check above can see a counted semaphore: the attached ones are. */
	tracee = start_idle_tracee();
	for (int i = 0; i < count; i++) {
		enum tracepoint_id tp = tracepoint_find(probes[i].provider, probes[i].name);
		cr_assert_neq(tp, TP_NONE);
		enum tracepoint_group g = tracepoint_table[tp].group;
		int want = g == GROUP_UTXOCACHE || g == GROUP_COIN_SELECTION ? 0 : 1;
		cr_assert_eq(e2e_read_semaphore(tracee, env.tracee, probes[i].semaphore_offset), want,
			     "%s:%s: semaphore is not %d while attached", probes[i].provider,
			     probes[i].name, want);
	}
	kill(tracee, SIGKILL);
	e2e_wait_exit(tracee, 10000);
}

/* ---- --list-tracepoints ---- */

Test(collector_errors, list_tracepoints_prints_every_probe_with_its_spec)
{
	e2e_setup(&env, "ebpf-tracee");
	struct e2e_probe probes[32];
	int count = e2e_readelf_probes(env.tracee, probes, 32);
	cr_assert_eq(count, TP_COUNT - 1);
	char *out = NULL, *err = NULL;
	/* reading notes needs no privilege at all */
	int rc = e2e_run_collector(E2E_NOBODY_NO_CAPS,
				   ARGS("--list-tracepoints", "--bitcoind-path", env.tracee), &out,
				   &err, DEADLINE_MS);
	cr_assert_eq(rc, 0, "exit %d, stderr: %s", rc, err);
	cr_assert_str_eq(err, "");
	char *first = format("%s: %d USDT probes\n", env.tracee, TP_COUNT - 1);
	cr_assert(strncmp(out, first, strlen(first)) == 0, "first line of:\n%s", out);
	free(first);
	int lines = 0;
	for (const char *p = out; *p; p++)
		lines += *p == '\n';
	cr_assert_eq(lines, 1 + count, "%d lines:\n%s", lines, out);
	for (int i = 0; i < count; i++) {
		enum tracepoint_id tp = tracepoint_find(probes[i].provider, probes[i].name);
		cr_assert_neq(tp, TP_NONE, "%s:%s", probes[i].provider, probes[i].name);
		char *event = format("%s:%s", probes[i].provider, probes[i].name);
		char *line = format("\n  %-40s group %-15s offset 0x%-8llx semaphore 0x%-8llx args %s\n",
				    event, group_names[tracepoint_table[tp].group],
				    (unsigned long long)probes[i].file_offset,
				    (unsigned long long)probes[i].semaphore_offset, probes[i].args);
		cr_assert(strstr(out, line) != NULL, "missing line:%sin:\n%s", line, out);
		free(line);
		free(event);
	}
	/* a few written out in full, as a reader sees them */
	const struct e2e_probe *added = e2e_find_probe(probes, count, "mempool", "added");
	char *line = format("\n  mempool:added                            group mempool         offset "
			    "0x%-8llx semaphore 0x%-8llx args %s\n",
			    (unsigned long long)added->file_offset,
			    (unsigned long long)added->semaphore_offset, added->args);
	cr_assert(strstr(out, line) != NULL, "missing line:%sin:\n%s", line, out);
	free(line);
	const struct e2e_probe *aps = e2e_find_probe(probes, count, "coin_selection",
						     "aps_create_tx_internal");
	line = format("\n  coin_selection:aps_create_tx_internal    group coin_selection  offset "
		      "0x%-8llx semaphore 0x%-8llx args %s\n",
		      (unsigned long long)aps->file_offset, (unsigned long long)aps->semaphore_offset,
		      aps->args);
	cr_assert(strstr(out, line) != NULL, "missing line:%sin:\n%s", line, out);
	free(line);
	free(out);
	free(err);
	assert_no_queue();
}

Test(collector_errors, list_tracepoints_without_usdt_notes)
{
	e2e_setup(&env, "ebpf-tracee-noprobes");
	char *message = format("%s: no USDT notes (is bitcoind built with -DWITH_USDT=ON?)",
			       env.tracee);
	expect_fatal(E2E_NOBODY_NO_CAPS, ARGS("--list-tracepoints", "--bitcoind-path", env.tracee),
		     message);
	free(message);
}

/* ---- flags ---- */

Test(collector_usage, unknown_flag)
{
	expect_usage(ARGS("--bitcoind-path", "/usr/bin/true", "--no-such-flag"),
		     "unknown option '--no-such-flag'");
}

Test(collector_usage, missing_bitcoind_path)
{
	expect_usage(ARGS("--queue", "/dev/shm/nowhere"), "--bitcoind-path is required");
}

Test(collector_usage, bad_attach_mode)
{
	expect_usage(ARGS("--bitcoind-path", "/usr/bin/true", "--attach-mode", "kprobe"),
		     "--attach-mode: 'kprobe' is not auto, multi or perf");
}

Test(collector_usage, bad_queue_size)
{
	expect_usage(ARGS("--bitcoind-path", "/usr/bin/true", "--queue-size", "3M"),
		     "--queue-size: '3M' is not a power of two between 64K and 64G");
	expect_usage(ARGS("--bitcoind-path", "/usr/bin/true", "--queue-size", "lots"),
		     "--queue-size: 'lots' is not a power of two between 64K and 64G");
}

Test(collector_usage, help_exits_0)
{
	char *out = NULL, *err = NULL;
	int rc = e2e_run_collector(E2E_AS_ROOT, ARGS("--help"), &out, &err, DEADLINE_MS);
	cr_assert_eq(rc, 0);
	cr_assert_str_eq(err, "");
	char *first = format("%s\n\n", usage_line);
	cr_assert(strncmp(out, first, strlen(first)) == 0, "--help prints:\n%s", out);
	cr_assert(strstr(out, "--attach-mode MODE") && strstr(out, "--list-tracepoints"));
	free(first);
	free(out);
	free(err);
}

Test(collector_usage, version_exits_0)
{
	char *out = NULL, *err = NULL;
	int rc = e2e_run_collector(E2E_AS_ROOT, ARGS("--version"), &out, &err, DEADLINE_MS);
	cr_assert_eq(rc, 0);
	cr_assert_str_eq(err, "");
	cr_assert_str_eq(out, "ebpf-collector " EXTRACTOR_VERSION "\n");
	free(out);
	free(err);
}
