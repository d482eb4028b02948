/* Real uprobe-multi links (collector/uprobe_multi.c) on the test tracee,
 * with specs from collector/usdt_notes.c and usdt_args.c, read back by
 * bpf_usdt_arg() in usdt_test.bpf.c.
 *
 * Needs root or CAP_BPF+CAP_PERFMON: otherwise exits 77 (ctest: skipped)
 * with a loud message, or fails when REQUIRE_BPF=1.
 *
 *   test_usdt_kernel [criterion options]    the tests
 *   test_usdt_kernel --expect-missing-perfmon
 *       run with CAP_BPF but without CAP_PERFMON (run_as_nobody.sh bpf):
 *       checks that the errors name CAP_PERFMON
 */
#include <criterion/criterion.h>
#include <criterion/options.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "uprobe_multi.h"
#include "usdt_args.h"
#include "usdt_notes.h"
#include "usdt_test.skel.h"
#include "usdt_test_shared.h"

extern char **environ;

/* ---------------------------------------------------------------- helpers */

/* The tracee (PIE, like bitcoind) or its non-PIE build. */
static const char *tracee_source_of(bool pie)
{
	const char *t = getenv(pie ? "USDT_TRACEE" : "USDT_TRACEE_EXEC");
	return t && *t ? t : pie ? USDT_TRACEE : USDT_TRACEE_EXEC;
}

static const char *tracee_source(void)
{
	return tracee_source_of(true);
}

static bool cap_effective(cap_value_t c)
{
	cap_t caps = cap_get_proc();
	cap_flag_value_t v = CAP_CLEAR;
	if (caps) {
		cap_get_flag(caps, c, CAP_EFFECTIVE, &v);
		cap_free(caps);
	}
	return v == CAP_SET;
}

static bool bpf_privileged(void)
{
	bool admin = cap_effective(CAP_SYS_ADMIN);
	return (admin || cap_effective(CAP_BPF)) && (admin || cap_effective(CAP_PERFMON));
}

static void copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(in, 0, "%s: %s", from, strerror(errno));
	int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
	cr_assert_geq(out, 0, "%s: %s", to, strerror(errno));
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		cr_assert_eq(write(out, buf, (size_t)n), n);
	cr_assert_eq(n, 0);
	close(in);
	cr_assert_eq(close(out), 0);
}

struct tracee {
	pid_t pid;
	FILE *in;  /* its stdin */
	FILE *out; /* its stdout */
};

struct fired {
	long hit_a, hit_b, args, nosem;
	unsigned sem_hit, sem_args;
};

/* Starts the tracee from path, or (path NULL) from exec_fd with fexecve. */
static struct tracee tracee_start(const char *path, int exec_fd)
{
	int to[2], from[2];
	cr_assert_eq(pipe(to), 0);
	cr_assert_eq(pipe(from), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(to[0], 0);
		dup2(from[1], 1);
		close(to[0]);
		close(to[1]);
		close(from[0]);
		close(from[1]);
		char *argv[] = { (char *)"usdt_tracee", NULL };
		if (path)
			execv(path, argv);
		else
			fexecve(exec_fd, argv, environ);
		fprintf(stderr, "exec tracee: %s\n", strerror(errno));
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	struct tracee t = { .pid = pid, .in = fdopen(to[1], "w"), .out = fdopen(from[0], "r") };
	cr_assert(t.in && t.out);
	char line[256];
	cr_assert(fgets(line, sizeof(line), t.out), "tracee did not start");
	cr_assert_str_eq(line, "ready\n");
	return t;
}

static struct fired tracee_fire(struct tracee *t, long n)
{
	fprintf(t->in, "fire %ld\n", n);
	fflush(t->in);
	char line[256];
	cr_assert(fgets(line, sizeof(line), t->out), "tracee died");
	struct fired f;
	cr_assert_eq(sscanf(line, "fired hit_a=%ld hit_b=%ld args=%ld nosem=%ld sem_hit=%u sem_args=%u",
			    &f.hit_a, &f.hit_b, &f.args, &f.nosem, &f.sem_hit, &f.sem_args),
		     6, "tracee said: %s", line);
	return f;
}

static void tracee_stop(struct tracee *t)
{
	fprintf(t->in, "quit\n");
	fclose(t->in);
	fclose(t->out);
	int status;
	cr_assert_eq(waitpid(t->pid, &status, 0), t->pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "tracee status 0x%x", status);
}

/* One test's world: a private copy of the tracee and the loaded BPF object. */
struct world {
	char dir[128];
	char path[256];
	int fd; /* on path: notes and link both go through it */
	struct usdt_notes notes;
	struct usdt_test_bpf *skel;
};

static void world_load_bpf(struct world *w, bool for_multi)
{
	w->skel = usdt_test_bpf__open();
	cr_assert(w->skel, "open BPF skeleton: %s", strerror(errno));
	if (for_multi)
		cr_assert_eq(bpf_program__set_expected_attach_type(w->skel->progs.usdt_count,
						(enum bpf_attach_type)EXTRACTOR_BPF_TRACE_UPROBE_MULTI),
			     0);
	int rc = usdt_test_bpf__load(w->skel);
	cr_assert_eq(rc, 0, "load BPF skeleton: %s", strerror(-rc));
	char err[512] = "";
	cr_assert_eq(usdt_spec_map_check(w->skel->maps.__bpf_usdt_specs, USDT_TEST_MAX_SPECS, err,
					 sizeof(err)),
		     0, "%s", err);
}

static void world_open_from(struct world *w, const char *name, const char *source)
{
	memset(w, 0, sizeof(*w));
	const char *tmp = getenv("TMPDIR");
	snprintf(w->dir, sizeof(w->dir), "%s/usdt-kernel-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	cr_assert(mkdtemp(w->dir), "mkdtemp %s: %s", w->dir, strerror(errno));
	chmod(w->dir, 0755);
	snprintf(w->path, sizeof(w->path), "%s/%s", w->dir, name);
	copy_file(source, w->path);
	w->fd = open(w->path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(w->fd, 0);
	char err[512] = "";
	cr_assert_eq(usdt_notes_read(w->fd, w->path, &w->notes, err, sizeof(err)), 0, "%s", err);
	world_load_bpf(w, true);
}

static void world_open(struct world *w, const char *name)
{
	world_open_from(w, name, tracee_source());
}

static void world_close(struct world *w)
{
	usdt_test_bpf__destroy(w->skel);
	usdt_notes_free(&w->notes);
	close(w->fd);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->dir);
	(void)system(cmd);
}

static int expected_arg_count(const struct usdt_probe *p)
{
	return strcmp(p->name, "args") == 0 ? 7 : 1;
}

/* Spec id = cookie = index of the probe site in the notes. */
static int world_attach(struct world *w, uint32_t pid)
{
	uint64_t offsets[USDT_TEST_MAX_SPECS], refs[USDT_TEST_MAX_SPECS], cookies[USDT_TEST_MAX_SPECS];
	char err[512] = "";
	cr_assert_leq(w->notes.count, USDT_TEST_MAX_SPECS);
	int map = bpf_map__fd(w->skel->maps.__bpf_usdt_specs);
	for (size_t i = 0; i < w->notes.count; i++) {
		const struct usdt_probe *p = &w->notes.probes[i];
		cr_assert_eq(usdt_probe_site_check(w->fd, w->path, p, err, sizeof(err)), 0, "%s", err);
		struct usdt_spec spec;
		cr_assert_eq(usdt_spec_parse(p->provider, p->name, p->args, expected_arg_count(p), i,
					     &spec, err, sizeof(err)),
			     0, "%s", err);
		int id = (int)i;
		cr_assert_eq(bpf_map_update_elem(map, &id, &spec, BPF_ANY), 0, "spec map: %s",
			     strerror(errno));
		offsets[i] = p->file_offset;
		refs[i] = p->semaphore_offset;
		cookies[i] = i;
	}
	int link = uprobe_multi_link_create(bpf_program__fd(w->skel->progs.usdt_count), w->fd,
					    offsets, refs, cookies, (uint32_t)w->notes.count, pid, err,
					    sizeof(err));
	cr_assert_geq(link, 0, "%s", err);
	return link;
}

static struct usdt_test_counts counts_of(struct world *w, size_t spec_id)
{
	struct usdt_test_counts c;
	uint32_t id = (uint32_t)spec_id;
	cr_assert_eq(bpf_map_lookup_elem(bpf_map__fd(w->skel->maps.counts), &id, &c), 0);
	return c;
}

static long tri(long n) /* sum of 0 .. n-1 */
{
	return n * (n - 1) / 2;
}

/* Every site fired n more times than `base` says, each argument exactly as
 * the tracee passed it (see usdt_tracee.c), via the spec we parsed. */
static void expect_counts(struct world *w, long n, long base)
{
	bool seen_a = false, seen_b = false;
	for (size_t i = 0; i < w->notes.count; i++) {
		const struct usdt_probe *p = &w->notes.probes[i];
		struct usdt_test_counts c = counts_of(w, i);
		cr_expect_eq(c.errors, 0, "%s: bpf_usdt_arg errors", p->name);
		cr_expect_eq((long)c.hits, base + n, "%s site %zu: %ld hits, expected %ld", p->name, i,
			     (long)c.hits, base + n);
		if (base != 0 || n == 0)
			continue;
		cr_expect_eq((long)c.arg_cnt, expected_arg_count(p));
		if (strcmp(p->name, "hit") == 0) {
			if (c.sum[0] == tri(n)) {
				seen_a = true;
				cr_expect_eq(c.last[0], n - 1);
			} else {
				seen_b = true;
				cr_expect_eq(c.sum[0], tri(n) + 1000000 * n, "hit b sum %lld",
					     (long long)c.sum[0]);
				cr_expect_eq(c.last[0], n - 1 + 1000000);
			}
		} else if (strcmp(p->name, "nosem") == 0) {
			cr_expect_eq(c.sum[0], 7 * tri(n));
			cr_expect_eq(c.last[0], 7 * (n - 1));
		} else {
			cr_assert_str_eq(p->name, "args");
			const long long sum[7] = { -tri(n), 3 * tri(n), n / 2, 1000 * tri(n) - 7 * n,
						   -tri(n), 5 * n, -9 * n };
			const long long last[7] = { -(n - 1), 3 * (n - 1), (n - 1) & 1,
						    1000 * (n - 1) - 7, -(n - 1), 5, -9 };
			for (int a = 0; a < 7; a++) {
				cr_expect_eq(c.sum[a], sum[a], "args[%d] ('%s'): sum %lld, expected %lld", a,
					     p->args, (long long)c.sum[a], sum[a]);
				cr_expect_eq(c.last[a], last[a], "args[%d]: last %lld, expected %lld", a,
					     (long long)c.last[a], last[a]);
			}
		}
	}
	if (base == 0 && n > 0)
		cr_expect(seen_a && seen_b, "both test:hit sites");
}

/* The kernel keeps one uprobe per (inode, offset), however many links use
 * it, and increments a semaphore once per such uprobe: the two test:hit
 * sites share test_hit_semaphore, so it reads 2 while attached (as it would
 * with libbpf), test_args_semaphore 1; a second link changes neither. */
static void expect_fired(struct fired f, long n, bool attached)
{
	long body = attached ? n : 0;
	cr_expect_eq(f.hit_a, body, "hit_a %ld", f.hit_a);
	cr_expect_eq(f.hit_b, body, "hit_b %ld", f.hit_b);
	cr_expect_eq(f.args, body, "args %ld", f.args);
	cr_expect_eq(f.nosem, n);
	cr_expect_eq(f.sem_hit, attached ? 2u : 0u, "sem_hit %u", f.sem_hit);
	cr_expect_eq(f.sem_args, attached ? 1u : 0u, "sem_args %u", f.sem_args);
}

/* ------------------------------------------------------------------ tests */

TestSuite(usdt_kernel, .timeout = 60);

Test(usdt_kernel, uprobe_multi_supported)
{
	char err[512] = "x";
	cr_expect_eq(uprobe_multi_supported(err, sizeof(err)), 1, "%s", err);
	cr_expect_str_eq(err, "");
}

/* A process started after the link: the kernel sets its semaphores when it
 * maps the file; every argument arrives as passed. */
Test(usdt_kernel, process_started_after_attach)
{
	struct world w;
	world_open(&w, "bitcoind");
	int link = world_attach(&w, 0);
	struct tracee t = tracee_start(w.path, -1);
	expect_fired(tracee_fire(&t, 100), 100, true);
	expect_counts(&w, 100, 0);
	tracee_stop(&t);
	close(link);
	world_close(&w);
}

/* The same with a non-PIE (ET_EXEC) build, where file offsets are not
 * virtual addresses. */
Test(usdt_kernel, non_pie_executable)
{
	struct world w;
	world_open_from(&w, "bitcoind", tracee_source_of(false));
	int link = world_attach(&w, 0);
	struct tracee t = tracee_start(w.path, -1);
	expect_fired(tracee_fire(&t, 64), 64, true);
	expect_counts(&w, 64, 0);
	tracee_stop(&t);
	close(link);
	world_close(&w);
}

/* A process running before the link: semaphores go 0 -> 1 when the link is
 * created and back to 0 when it is closed; no hits before or after. */
Test(usdt_kernel, running_process_semaphores_follow_the_link)
{
	struct world w;
	world_open(&w, "bitcoind");
	struct tracee t = tracee_start(w.path, -1);
	expect_fired(tracee_fire(&t, 10), 10, false);
	int link = world_attach(&w, 0);
	expect_fired(tracee_fire(&t, 100), 100, true);
	expect_counts(&w, 100, 0);
	/* a second link on the same sites: both programs run, the semaphores
	 * stay as they are */
	int link2 = world_attach(&w, 0);
	expect_fired(tracee_fire(&t, 1), 1, true);
	close(link2);
	expect_fired(tracee_fire(&t, 1), 1, true); /* one link left */
	close(link);
	expect_fired(tracee_fire(&t, 10), 10, false);
	for (size_t i = 0; i < w.notes.count; i++) {
		/* 100, + 2 from the fire with two links, + 1 with one; none after */
		struct usdt_test_counts c = counts_of(&w, i);
		cr_expect_eq(c.hits, 103, "%s: %llu", w.notes.probes[i].name,
			     (unsigned long long)c.hits);
	}
	tracee_stop(&t);
	world_close(&w);
}

/* pid > 0 restricts the link to one process: only that process gets its
 * semaphores and hits. */
Test(usdt_kernel, pid_filter)
{
	struct world w;
	world_open(&w, "bitcoind");
	struct tracee t1 = tracee_start(w.path, -1);
	struct tracee t2 = tracee_start(w.path, -1);
	int link = world_attach(&w, (uint32_t)t1.pid);
	expect_fired(tracee_fire(&t2, 20), 20, false);
	expect_fired(tracee_fire(&t1, 20), 20, true);
	expect_counts(&w, 20, 0);
	for (size_t i = 0; i < w.notes.count; i++)
		cr_expect_eq(counts_of(&w, i).tgid, (uint64_t)t1.pid);
	close(link);
	tracee_stop(&t1);
	tracee_stop(&t2);
	world_close(&w);
}

/* The link goes on the inode behind the descriptor, not on whatever the path
 * names when the link is made: a file renamed over the path gets nothing,
 * the original (renamed away, and then even unlinked) gets everything. */
Test(usdt_kernel, link_follows_the_fd_not_the_path)
{
	struct world w;
	world_open(&w, "bitcoind"); /* fd and notes: the original file */
	char old[300];
	snprintf(old, sizeof(old), "%s.old", w.path);
	cr_assert_eq(rename(w.path, old), 0);
	copy_file(tracee_source(), w.path); /* an identical new file, new inode */
	struct stat st_new, st_fd;
	cr_assert_eq(stat(w.path, &st_new), 0);
	cr_assert_eq(fstat(w.fd, &st_fd), 0);
	cr_assert_neq(st_new.st_ino, st_fd.st_ino);

	int link = world_attach(&w, 0);

	struct tracee fresh = tracee_start(w.path, -1); /* the new file at the path */
	expect_fired(tracee_fire(&fresh, 50), 50, false);
	tracee_stop(&fresh);
	expect_counts(&w, 0, 0);

	struct tracee orig = tracee_start(old, -1); /* the original, renamed */
	expect_fired(tracee_fire(&orig, 50), 50, true);
	tracee_stop(&orig);
	expect_counts(&w, 50, 0);

	cr_assert_eq(unlink(old), 0); /* the original, unlinked: run it from the fd */
	struct tracee gone = tracee_start(NULL, w.fd);
	expect_fired(tracee_fire(&gone, 50), 50, true);
	tracee_stop(&gone);
	expect_counts(&w, 50, 50);

	close(link);
	world_close(&w);
}

/* Once the program is loaded, creating the link itself needs no capability:
 * drop every capability, then attach. */
Test(usdt_kernel, link_needs_no_capability_beyond_the_program)
{
	struct world w;
	world_open(&w, "bitcoind");
	cap_t none = cap_init();
	cr_assert_eq(cap_set_proc(none), 0, "cap_set_proc: %s", strerror(errno));
	cap_free(none);
	cr_assert(!cap_effective(CAP_BPF) && !cap_effective(CAP_PERFMON) &&
		  !cap_effective(CAP_SYS_ADMIN));
	int link = world_attach(&w, 0);
	struct tracee t = tracee_start(w.path, -1);
	expect_fired(tracee_fire(&t, 30), 30, true);
	expect_counts(&w, 30, 0);
	tracee_stop(&t);
	close(link);
	/* but a new program cannot be loaded now, and the probe says why */
	char err[512] = "";
	cr_expect_eq(uprobe_multi_supported(err, sizeof(err)), -1);
	cr_expect_str_eq(err,
			 "probing for uprobe-multi links: loading a uprobe BPF program needs CAP_BPF "
			 "and CAP_PERFMON (missing: CAP_BPF and CAP_PERFMON)");
	world_close(&w);
}

Test(usdt_kernel, link_errors)
{
	struct world w;
	world_open(&w, "bitcoind");
	const struct usdt_probe *p = usdt_notes_find(&w.notes, "test", "args", NULL);
	cr_assert(p);
	int prog = bpf_program__fd(w.skel->progs.usdt_count);
	uint64_t off = p->file_offset, ref = p->semaphore_offset, cookie = 0;
	char err[1024] = "";
	char want[1024];

	/* pid -1: refused here, before the kernel does */
	cr_expect_eq(uprobe_multi_link_create(prog, w.fd, &off, &ref, &cookie, 1, UINT32_MAX, err,
					      sizeof(err)),
		     -EINVAL);
	snprintf(want, sizeof(want),
		 "%s (/proc/self/fd/%d): uprobe-multi link: pid 4294967295 (-1) is refused by the "
		 "kernel; pass 0 to attach to every process",
		 w.path, w.fd);
	cr_expect_str_eq(err, want);

	cr_expect_eq(uprobe_multi_link_create(prog, w.fd, &off, &ref, &cookie, 0, 0, err, sizeof(err)),
		     -EINVAL);
	cr_expect(strstr(err, "no probe sites given"), "%s", err);

	uint64_t far = 1ull << 40;
	cr_expect_eq(uprobe_multi_link_create(prog, w.fd, &far, &ref, &cookie, 1, 0, err, sizeof(err)),
		     -EINVAL);
	cr_expect(strstr(err, "site 0: offset 0x10000000000 is beyond the end of the file"), "%s",
		  err);

	/* a pid that does not exist */
	pid_t dead = fork();
	if (dead == 0)
		_exit(0);
	waitpid(dead, NULL, 0);
	cr_expect_eq(uprobe_multi_link_create(prog, w.fd, &off, &ref, &cookie, 1, (uint32_t)dead, err,
					      sizeof(err)),
		     -ESRCH);
	cr_expect(strstr(err, "no such process (ESRCH)"), "%s", err);

	/* not a regular file */
	int dir = open(w.dir, O_RDONLY | O_DIRECTORY);
	cr_expect_eq(uprobe_multi_link_create(prog, dir, &off, &ref, &cookie, 1, 0, err, sizeof(err)),
		     -EBADF);
	cr_expect(strstr(err, "not a regular file"), "%s", err);
	close(dir);

	/* a program not loaded with expected attach type 48 */
	struct usdt_test_bpf *plain = usdt_test_bpf__open_and_load();
	cr_assert(plain);
	cr_expect_eq(uprobe_multi_link_create(bpf_program__fd(plain->progs.usdt_count), w.fd, &off,
					      &ref, &cookie, 1, 0, err, sizeof(err)),
		     -EINVAL);
	cr_expect(strstr(err, "expected attach type BPF_TRACE_UPROBE_MULTI (48)"), "%s", err);
	usdt_test_bpf__destroy(plain);

	/* the same site with a different semaphore offset than a live link */
	int link = uprobe_multi_link_create(prog, w.fd, &off, &ref, &cookie, 1, 0, err, sizeof(err));
	cr_assert_geq(link, 0, "%s", err);
	uint64_t other_ref = ref + 2;
	int clash = uprobe_multi_link_create(prog, w.fd, &off, &other_ref, &cookie, 1, 0, err,
					     sizeof(err));
	cr_expect_lt(clash, 0, "a second semaphore offset for the same site was accepted");
	cr_log_info("ref_ctr clash: %s", err);
	close(link);
	if (clash >= 0)
		close(clash);
	world_close(&w);
}

/* -------------------------------------------------------------- the mains */

/* Run with CAP_BPF only (run_as_nobody.sh bpf ... --expect-missing-perfmon). */
static int expect_missing_perfmon(void)
{
	fprintf(stderr, "uid %d, CAP_BPF %s, CAP_PERFMON %s, CAP_SYS_ADMIN %s\n", (int)getuid(),
		cap_effective(CAP_BPF) ? "yes" : "no", cap_effective(CAP_PERFMON) ? "yes" : "no",
		cap_effective(CAP_SYS_ADMIN) ? "yes" : "no");
	if (!cap_effective(CAP_BPF) || cap_effective(CAP_PERFMON) || cap_effective(CAP_SYS_ADMIN)) {
		fprintf(stderr, "FAIL: --expect-missing-perfmon wants CAP_BPF without CAP_PERFMON\n");
		return 1;
	}
	int failed = 0;
	char err[512] = "";
	int rc = uprobe_multi_supported(err, sizeof(err));
	fprintf(stderr, "uprobe_multi_supported: %d: %s\n", rc, err);
	const char *want = "probing for uprobe-multi links: loading a uprobe BPF program needs "
			   "CAP_BPF and CAP_PERFMON (missing: CAP_PERFMON)";
	if (rc != -1 || strcmp(err, want) != 0) {
		fprintf(stderr, "FAIL: expected -1 and \"%s\"\n", want);
		failed = 1;
	}
	/* and the real program does not load either */
	struct usdt_test_bpf *skel = usdt_test_bpf__open();
	if (!skel) {
		fprintf(stderr, "FAIL: open skeleton\n");
		return 1;
	}
	bpf_program__set_expected_attach_type(skel->progs.usdt_count,
					      (enum bpf_attach_type)EXTRACTOR_BPF_TRACE_UPROBE_MULTI);
	rc = usdt_test_bpf__load(skel);
	fprintf(stderr, "loading the test program without CAP_PERFMON: %s\n",
		rc ? strerror(-rc) : "loaded");
	if (rc != -EPERM && rc != -EACCES) {
		fprintf(stderr, "FAIL: expected EPERM/EACCES\n");
		failed = 1;
	}
	usdt_test_bpf__destroy(skel);
	if (!failed)
		fprintf(stderr, "PASS: without CAP_PERFMON the error names it\n");
	return failed;
}

static int quiet_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

int main(int argc, char *argv[])
{
	libbpf_set_print(quiet_libbpf);
	if (argc > 1 && strcmp(argv[1], "--expect-missing-perfmon") == 0)
		return expect_missing_perfmon();

	fprintf(stderr, "test_usdt_kernel: uid %d, CAP_BPF %s, CAP_PERFMON %s, CAP_SYS_ADMIN %s\n",
		(int)getuid(), cap_effective(CAP_BPF) ? "yes" : "no",
		cap_effective(CAP_PERFMON) ? "yes" : "no", cap_effective(CAP_SYS_ADMIN) ? "yes" : "no");
	if (!bpf_privileged()) {
		const char *req = getenv("REQUIRE_BPF");
		if (req && strcmp(req, "1") == 0) {
			fprintf(stderr, "FAIL: test_usdt_kernel needs root or CAP_BPF+CAP_PERFMON "
					"(REQUIRE_BPF=1)\n");
			return 1;
		}
		fprintf(stderr, "SKIPPED: test_usdt_kernel needs root or CAP_BPF+CAP_PERFMON; set "
				"REQUIRE_BPF=1 to make this a failure\n");
		return 77;
	}
	struct criterion_test_set *tests = criterion_initialize();
	int result = 0;
	if (criterion_handle_args(argc, argv, true))
		result = !criterion_run_all_tests(tests);
	criterion_finalize(tests);
	return result;
}
