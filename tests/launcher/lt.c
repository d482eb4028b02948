#include "lt.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

const char *const lt_launcher_path = LAUNCHER_PATH;

void lt_require_root(void)
{
	e2e_require_bpf();
	if (getpwnam("ebpf-collector"))
		return;
	const char *require = getenv("REQUIRE_BPF");
	if (require && strcmp(require, "1") == 0)
		cr_assert_fail("no user ebpf-collector: run scripts/install-deps.sh (it creates it)");
	fprintf(stderr, "\n*** SKIPPED: no user ebpf-collector (scripts/install-deps.sh creates "
			"it) ***\n\n");
	cr_skip_test("no user ebpf-collector");
}

void lt_setup(struct lt *l, const char *tracee_binary, bool jetstream)
{
	memset(l, 0, sizeof(*l));
	e2e_setup(&l->t, tracee_binary);
	snprintf(l->env.dir, sizeof(l->env.dir), "%s", l->t.dir);
	snprintf(l->env.queue_dir, sizeof(l->env.queue_dir), "%s", l->t.queue_dir);
	snprintf(l->ready_file, sizeof(l->ready_file), "%s/extractor.ready", l->t.dir);
	snprintf(l->prefix, sizeof(l->prefix), "e2e.launcher%d", (int)getpid());
	pe_nats_start(&l->nats, &l->env, 0, jetstream, NULL);
	l->nats_up = true;
	snprintf(l->addr, sizeof(l->addr), "127.0.0.1:%d", l->nats.port);
}

void lt_teardown(struct lt *l)
{
	if (l->launcher_up) {
		if (!l->launcher.exited) {
			kill(l->launcher.pid, SIGTERM);
			proc_wait_exit(&l->launcher, 30000);
		}
		fprintf(stderr, "---- ebpf-extractor stderr ----\n%s---- end ----\n",
			l->launcher.err.data ? l->launcher.err.data : "");
		proc_kill(&l->launcher);
		l->launcher_up = false;
	}
	if (l->nats_up)
		pe_nats_stop(&l->nats);
	l->nats_up = false;
	e2e_teardown(&l->t);
}

void lt_start(struct lt *l, const char *const extra[])
{
	const char *argv[64] = { lt_launcher_path, "-b", l->t.tracee, "-n", l->addr, "--queue",
				 l->t.queue_dir, "--subject-prefix", l->prefix, "--ready-file",
				 l->ready_file };
	int n = 11;
	for (int i = 0; extra && extra[i] && n < 63; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	proc_start(&l->launcher, argv, true);
	l->launcher_up = true;
}

void lt_pump(struct lt *l, int ms)
{
	/* a needle that never comes: reads both pipes for ms */
	proc_wait_output(&l->launcher, true, "\001\002never\003", ms);
}

static bool launcher_gone(struct lt *l)
{
	if (l->launcher.exited)
		return true;
	int st;
	if (waitpid(l->launcher.pid, &st, WNOHANG) != l->launcher.pid)
		return false;
	l->launcher.exited = true;
	l->launcher.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return true;
}

bool lt_wait_ready(struct lt *l, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	while (access(l->ready_file, F_OK) != 0) {
		if (launcher_gone(l) || now_ms() > deadline)
			return false;
		lt_pump(l, 10);
	}
	return true;
}

int lt_wait_exit(struct lt *l, int timeout_ms)
{
	if (launcher_gone(l)) {
		/* reaped here: read what is left */
		long long deadline = now_ms() + timeout_ms;
		while ((l->launcher.out_fd >= 0 || l->launcher.err_fd >= 0) && now_ms() < deadline)
			lt_pump(l, 50);
		return l->launcher.status;
	}
	return proc_wait_exit(&l->launcher, timeout_ms);
}

bool lt_read_ready(const struct lt *l, struct lt_ready *r)
{
	char *text = e2e_read_file(l->ready_file);
	bool ok = text && sscanf(text, "ready pid %d tracepoints %d collector %d publisher %d",
				 &r->pid, &r->tracepoints, &r->collector, &r->publisher) == 4;
	free(text);
	return ok;
}

pid_t lt_find_child(pid_t parent, const char *comm)
{
	DIR *d = opendir("/proc");
	cr_assert_not_null(d);
	pid_t found = 0;
	struct dirent *de;
	while (!found && (de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		char path[64];
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		char *text = e2e_read_file(path);
		if (!text)
			continue;
		/* pid (comm) state ppid */
		char *open = strchr(text, '('), *close = strrchr(text, ')');
		int ppid = 0;
		if (open && close && close > open && sscanf(close + 2, "%*c %d", &ppid) == 1 &&
		    ppid == parent && (size_t)(close - open - 1) == strlen(comm) &&
		    strncmp(open + 1, comm, strlen(comm)) == 0)
			found = (pid_t)pid;
		free(text);
	}
	closedir(d);
	return found;
}

pid_t lt_wait_new_child(struct lt *l, const char *comm, pid_t not_pid, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	for (;;) {
		pid_t p = lt_find_child(l->launcher.pid, comm);
		if (p > 0 && p != not_pid)
			return p;
		if (now_ms() > deadline)
			return 0;
		lt_pump(l, 10);
	}
}

void lt_proc_status(pid_t pid, struct lt_status *s)
{
	memset(s, 0, sizeof(*s));
	s->no_new_privs = -1;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	char *text = e2e_read_file(path);
	cr_assert_not_null(text, "reading %s: %s", path, strerror(errno));
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		sscanf(line, "Uid: %u %u %u %u", &s->uid[0], &s->uid[1], &s->uid[2], &s->uid[3]);
		sscanf(line, "Gid: %u %u %u %u", &s->gid[0], &s->gid[1], &s->gid[2], &s->gid[3]);
		if (strncmp(line, "Groups:", 7) == 0)
			snprintf(s->groups, sizeof(s->groups), "%s", line + 7);
		sscanf(line, "CapInh: %" SCNx64, &s->cap_inh);
		sscanf(line, "CapPrm: %" SCNx64, &s->cap_prm);
		sscanf(line, "CapEff: %" SCNx64, &s->cap_eff);
		sscanf(line, "CapBnd: %" SCNx64, &s->cap_bnd);
		sscanf(line, "CapAmb: %" SCNx64, &s->cap_amb);
		sscanf(line, "NoNewPrivs: %d", &s->no_new_privs);
	}
	free(text);
}
