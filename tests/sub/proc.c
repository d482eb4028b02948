#include "proc.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sb_append(struct strbuf *b, const char *s, size_t n)
{
	if (b->cap - b->len < n + 1) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap - b->len < n + 1)
			cap *= 2;
		b->data = realloc(b->data, cap);
		cr_assert_not_null(b->data);
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void proc_start(struct proc *p, const char *const argv[], bool capture)
{
	memset(p, 0, sizeof(*p));
	p->out_fd = p->err_fd = -1;
	sb_append(&p->out, "", 0);
	sb_append(&p->err, "", 0);
	int out[2] = { -1, -1 }, err[2] = { -1, -1 };
	if (capture) {
		cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
		cr_assert_eq(pipe2(err, O_CLOEXEC), 0);
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* Only async-signal-safe calls from here to exec. The child dies
		 * with the test process, even when an assertion ends the test
		 * early or the test crashes: no nats-server is left behind. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int devnull = open("/dev/null", O_RDWR);
		dup2(devnull, 0);
		dup2(capture ? out[1] : devnull, 1);
		dup2(capture ? err[1] : devnull, 2);
		if (devnull > 2)
			close(devnull);
		/* Default signal handling and an empty mask, whatever Criterion set. */
		for (int sig = 1; sig < NSIG; sig++)
			if (sig != SIGKILL && sig != SIGSTOP)
				signal(sig, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	p->pid = pid;
	if (capture) {
		close(out[1]);
		close(err[1]);
		p->out_fd = out[0];
		p->err_fd = err[0];
		fcntl(p->out_fd, F_SETFL, O_NONBLOCK);
		fcntl(p->err_fd, F_SETFL, O_NONBLOCK);
	}
}

/* One round: waits up to timeout_ms for data on either pipe and reads it. */
static void pump(struct proc *p, int timeout_ms)
{
	struct pollfd fds[2];
	int n = 0;
	if (p->out_fd >= 0)
		fds[n++] = (struct pollfd){ .fd = p->out_fd, .events = POLLIN };
	if (p->err_fd >= 0)
		fds[n++] = (struct pollfd){ .fd = p->err_fd, .events = POLLIN };
	if (n == 0) {
		if (timeout_ms > 0) {
			struct timespec ts = { 0, 5 * 1000000 }; /* reaping: see proc_wait_exit */
			nanosleep(&ts, NULL);
		}
		return;
	}
	if (poll(fds, (nfds_t)n, timeout_ms < 0 ? 0 : timeout_ms) <= 0)
		return;
	for (int i = 0; i < n; i++) {
		if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		bool is_out = fds[i].fd == p->out_fd;
		char buf[65536];
		for (;;) {
			ssize_t r = read(fds[i].fd, buf, sizeof(buf));
			if (r > 0) {
				sb_append(is_out ? &p->out : &p->err, buf, (size_t)r);
				continue;
			}
			if (r < 0 && (errno == EINTR))
				continue;
			if (r == 0 || (r < 0 && errno != EAGAIN)) {
				close(fds[i].fd);
				if (is_out)
					p->out_fd = -1;
				else
					p->err_fd = -1;
			}
			break;
		}
	}
}

static bool reap(struct proc *p, bool block)
{
	if (p->exited)
		return true;
	int st;
	pid_t r = waitpid(p->pid, &st, block ? 0 : WNOHANG);
	if (r != p->pid)
		return false;
	p->exited = true;
	p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return true;
}

bool proc_wait_output(struct proc *p, bool from_stderr, const char *needle, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	for (;;) {
		if (strstr((from_stderr ? &p->err : &p->out)->data, needle))
			return true;
		long long left = deadline - now_ms();
		if (left <= 0 || (p->out_fd < 0 && p->err_fd < 0))
			return false;
		pump(p, (int)left);
	}
}

static size_t count_lines(const struct strbuf *b)
{
	size_t n = 0;
	for (size_t i = 0; i < b->len; i++)
		n += b->data[i] == '\n';
	return n;
}

bool proc_wait_lines(struct proc *p, size_t n, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	for (;;) {
		if (count_lines(&p->out) >= n)
			return true;
		long long left = deadline - now_ms();
		if (left <= 0 || p->out_fd < 0)
			return false;
		pump(p, (int)left);
	}
}

int proc_wait_exit(struct proc *p, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	for (;;) {
		/* Pipes first: a child blocked writing a full pipe never exits. */
		if (p->out_fd < 0 && p->err_fd < 0 && reap(p, false))
			return p->status;
		long long left = deadline - now_ms();
		if (left <= 0) {
			kill(p->pid, SIGKILL);
			reap(p, true);
			return -1;
		}
		pump(p, left > 50 ? 50 : (int)left);
	}
}

void proc_close_stdout(struct proc *p)
{
	if (p->out_fd >= 0) {
		close(p->out_fd);
		p->out_fd = -1;
	}
}

void proc_kill(struct proc *p)
{
	if (p->pid > 0 && !p->exited) {
		kill(p->pid, SIGKILL);
		reap(p, true);
	}
	proc_free(p);
}

void proc_free(struct proc *p)
{
	if (p->out_fd >= 0)
		close(p->out_fd);
	if (p->err_fd >= 0)
		close(p->err_fd);
	p->out_fd = p->err_fd = -1;
	free(p->out.data);
	free(p->err.data);
	memset(&p->out, 0, sizeof(p->out));
	memset(&p->err, 0, sizeof(p->err));
}

int proc_run(const char *const argv[], char **out, char **err, int timeout_ms)
{
	struct proc p;
	proc_start(&p, argv, true);
	int st = proc_wait_exit(&p, timeout_ms);
	if (out)
		*out = strdup(p.out.data);
	if (err)
		*err = strdup(p.err.data);
	proc_free(&p);
	return st;
}
