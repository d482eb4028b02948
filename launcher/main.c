/* ebpf-extractor: one command that runs ebpf-collector and ebpf-publisher as
 * two processes, each with the least privilege it needs, restarts either
 * when it dies, and says when both are up (stderr line, --ready-file,
 * systemd's READY=1). One loop: signalfd (SIGCHLD, SIGTERM, SIGINT, SIGHUP)
 * and inotify on the children's ready-file directories, with the next
 * restart or kill deadline as the poll timeout. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"
#include "options.h"
#include "spawn.h"
#include "uprobe_multi.h"

#define RESTART_LIMIT 5            /* exits of one child ... */
#define RESTART_WINDOW_MS 60000    /* ... within this long: give up */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
#define COLLECTOR_STOP_MS 10000    /* SIGTERM to SIGKILL */
#define PUBLISHER_STOP_EXTRA_MS 5000 /* on top of --drain-timeout */

struct child {
	const char *name;
	int give_up_code;
	char *path;
	struct arglist argv;
	struct identity id;
	char ready_dir[PATH_MAX + 48];
	char ready_path[PATH_MAX + 64];
	int dir_fd;
	pid_t pid;
	bool ready;
	int tracepoints;            /* collector: probes attached, from its ready file */
	uint64_t exits[RESTART_LIMIT]; /* monotonic ms of the latest exits */
	int nexits;
	uint64_t restart_at;        /* monotonic ms; 0: none due */
	uint64_t kill_at;           /* SIGKILL deadline while stopping; 0: none */
	int terms;                  /* SIGTERMs sent while stopping */
};

struct launcher {
	struct launcher_options *opts;
	struct child col, pub;
	bool as_root;
	char rundir[PATH_MAX + 32];
	int sig_fd, ino_fd;
	bool stopping;
	int exit_code;
	bool announced;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- finding the programs ---- */

static bool executable(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static char *join(const char *dir, const char *name)
{
	size_t len = strlen(dir) + 1 + strlen(name) + 1;
	char *p = malloc(len);
	if (p)
		snprintf(p, len, "%s/%s", dir, name);
	return p;
}

/* given (--collector-bin), else next to /proc/self/exe, else the build
 * tree's when this program is the build tree's, else PATH, else the build
 * tree's. */
static char *find_program(const char *name, const char *given, const char *flag,
			  const char *build_path)
{
	if (given) {
		char *abs = options_absolute(given);
		if (abs && executable(abs))
			return abs;
		log_error("%s %s: not an executable file", flag, given);
		free(abs);
		return NULL;
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char self_dir[PATH_MAX] = "";
	if (n > 0) {
		self[n] = '\0';
		snprintf(self_dir, sizeof(self_dir), "%s", self);
		char *candidate = join(dirname(self_dir), name);
		if (candidate && executable(candidate))
			return candidate;
		free(candidate);
	}
#ifdef LAUNCHER_BUILD_PATH
	char built_self[PATH_MAX];
	if (n > 0 && realpath(LAUNCHER_BUILD_PATH, built_self) && strcmp(built_self, self) == 0 &&
	    executable(build_path))
		return strdup(build_path);
#endif
	const char *path_env = getenv("PATH");
	if (path_env) {
		char *copy = strdup(path_env), *save = NULL;
		for (char *dir = copy ? strtok_r(copy, ":", &save) : NULL; dir;
		     dir = strtok_r(NULL, ":", &save)) {
			if (dir[0] != '/')
				continue; /* never a relative PATH entry, as root */
			char *candidate = join(dir, name);
			if (candidate && executable(candidate)) {
				free(copy);
				return candidate;
			}
			free(candidate);
		}
		free(copy);
	}
	if (build_path && *build_path && executable(build_path))
		return strdup(build_path);
	log_error("cannot find %s: it is not next to this program (%s), nor in PATH; pass %s PATH",
		  name, n > 0 ? self : "?", flag);
	return NULL;
}

/* ---- the runtime directory with the children's ready files ---- */

static int make_rundir(struct launcher *l)
{
	const char *bases[4];
	int nb = 0;
	char rt[PATH_MAX] = "";
	const char *env = getenv("RUNTIME_DIRECTORY"); /* systemd RuntimeDirectory= */
	if (env && env[0] == '/') {
		snprintf(rt, sizeof(rt), "%s", env);
		char *colon = strchr(rt, ':');
		if (colon)
			*colon = '\0';
		bases[nb++] = rt;
	}
	if (l->as_root)
		bases[nb++] = "/run";
	else if ((env = getenv("XDG_RUNTIME_DIR")) && env[0] == '/')
		bases[nb++] = env;
	bases[nb++] = "/tmp";
	int err = 0;
	for (int i = 0; i < nb; i++) {
		snprintf(l->rundir, sizeof(l->rundir), "%s/ebpf-extractor.XXXXXX", bases[i]);
		if (mkdtemp(l->rundir)) {
			err = 0;
			break;
		}
		err = errno;
		l->rundir[0] = '\0';
	}
	if (!l->rundir[0]) {
		log_error("cannot create a runtime directory (in /run, $XDG_RUNTIME_DIR or /tmp): %s",
			  strerror(err));
		return -1;
	}
	/* Children may pass through to their own subdirectory, nothing else. */
	if (chmod(l->rundir, l->as_root ? 0711 : 0700) != 0) {
		log_error("chmod %s: %s", l->rundir, strerror(errno));
		return -1;
	}
	struct child *children[2] = { &l->col, &l->pub };
	for (int i = 0; i < 2; i++) {
		struct child *c = children[i];
		snprintf(c->ready_dir, sizeof(c->ready_dir), "%s/%s", l->rundir,
			 c == &l->col ? "collector" : "publisher");
		snprintf(c->ready_path, sizeof(c->ready_path), "%s/ready", c->ready_dir);
		if (mkdir(c->ready_dir, 0700) != 0 ||
		    (c->id.change && chown(c->ready_dir, c->id.uid, c->id.gid) != 0)) {
			log_error("creating %s: %s", c->ready_dir, strerror(errno));
			return -1;
		}
		c->dir_fd = open(c->ready_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (c->dir_fd < 0 ||
		    inotify_add_watch(l->ino_fd, c->ready_dir,
				      IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE) < 0) {
			log_error("watching %s: %s", c->ready_dir, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static void remove_rundir(struct launcher *l)
{
	if (!l->rundir[0])
		return;
	struct child *children[2] = { &l->col, &l->pub };
	for (int i = 0; i < 2; i++) {
		struct child *c = children[i];
		if (c->dir_fd >= 0) {
			unlinkat(c->dir_fd, "ready", 0);
			unlinkat(c->dir_fd, "ready.tmp", 0);
			close(c->dir_fd);
			c->dir_fd = -1;
		}
		if (c->ready_dir[0] && rmdir(c->ready_dir) != 0 && errno != ENOENT)
			log_warn("removing %s: %s", c->ready_dir, strerror(errno));
	}
	if (rmdir(l->rundir) != 0)
		log_warn("removing %s: %s", l->rundir, strerror(errno));
}

/* The child's ready file, read without trusting it: no symlink, no FIFO,
 * a regular file, at most len-1 bytes. */
static bool read_ready_file(const struct child *c, char *buf, size_t len)
{
	int fd = openat(c->dir_fd, "ready", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return false;
	struct stat st;
	ssize_t n = -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return true;
}

static bool child_is_ready(struct child *c, bool collector)
{
	char buf[256];
	if (c->pid <= 0 || !read_ready_file(c, buf, sizeof(buf)))
		return false;
	int pid = 0, attached = 0;
	unsigned generation = 0;
	if (collector) {
		/* "attached N generation G pid P" (collector/main.c) */
		if (sscanf(buf, "attached %d generation %u pid %d", &attached, &generation, &pid) != 3 ||
		    pid != c->pid || attached <= 0)
			return false;
		c->tracepoints = attached;
		return true;
	}
	/* "ready pid P stream_id S" (publisher/pump.c) */
	return sscanf(buf, "ready pid %d", &pid) == 1 && pid == c->pid;
}

/* ---- our own ready file ---- */

static void write_ready_file(struct launcher *l)
{
	const char *path = l->opts->ready_file;
	if (!path)
		return;
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "we");
	if (!f) {
		log_error("writing ready file %s: %s", tmp, strerror(errno));
		return;
	}
	fprintf(f, "ready pid %d tracepoints %d collector %d publisher %d\n", (int)getpid(),
		l->col.tracepoints, (int)l->col.pid, (int)l->pub.pid);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		log_error("writing ready file %s: %s", path, strerror(errno));
}

static void announce(struct launcher *l)
{
	l->announced = true;
	fprintf(stderr, "ebpf-extractor: ready: %d tracepoints attached, publishing to %s\n",
		l->col.tracepoints, l->opts->nats_address);
	fflush(stderr);
	write_ready_file(l);
	char state[512];
	snprintf(state, sizeof(state),
		 "READY=1\nSTATUS=%d tracepoints attached, publishing to %s\nMAINPID=%d",
		 l->col.tracepoints, l->opts->nats_address, (int)getpid());
	int r = notify_send(state);
	if (r < 0)
		log_warn("telling systemd we are ready ($NOTIFY_SOCKET): %s", strerror(-r));
}

static void check_ready(struct launcher *l)
{
	struct child *children[2] = { &l->col, &l->pub };
	for (int i = 0; i < 2; i++) {
		struct child *c = children[i];
		if (c->ready || !child_is_ready(c, c == &l->col))
			continue;
		c->ready = true;
		if (l->announced) {
			if (c == &l->col)
				log_info("%s (pid %d) is ready again: %d tracepoints attached", c->name,
					 (int)c->pid, c->tracepoints);
			else
				log_info("%s (pid %d) is ready again", c->name, (int)c->pid);
		} else {
			log_debug("%s (pid %d) is ready", c->name, (int)c->pid);
		}
	}
	if (!l->announced && !l->stopping && l->col.ready && l->pub.ready)
		announce(l);
}

/* ---- children ---- */

static void describe_status(int status, char *out, size_t len)
{
	if (WIFEXITED(status))
		snprintf(out, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, len, "was killed by signal %d (%s)%s", WTERMSIG(status),
			 strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
	else
		snprintf(out, len, "ended with wait status 0x%x", (unsigned)status);
}

static void start_child(struct launcher *l, struct child *c)
{
	unlinkat(c->dir_fd, "ready", 0);
	unlinkat(c->dir_fd, "ready.tmp", 0);
	c->ready = false;
	c->restart_at = 0;
	pid_t pid = spawn_child(c->name, &c->id, c->path, c->argv.v);
	if (pid < 0) {
		log_error("starting %s: fork: %s", c->name, strerror(errno));
		c->restart_at = now_ms() + BACKOFF_MAX_MS;
		return;
	}
	c->pid = pid;
	char caps[128];
	caps_describe(c->id.caps, caps, sizeof(caps));
	if (c->id.change)
		log_info("started %s (pid %d) as %s (uid %u), capabilities: %s", c->name, (int)pid,
			 c->id.user, (unsigned)c->id.uid, caps);
	else
		log_info("started %s (pid %d)", c->name, (int)pid);
}

static void terminate(struct child *c, unsigned timeout_ms)
{
	if (c->pid <= 0)
		return;
	kill(c->pid, SIGTERM);
	c->terms++;
	if (!c->kill_at)
		c->kill_at = now_ms() + timeout_ms;
}

static unsigned publisher_stop_ms(const struct launcher *l)
{
	return l->opts->drain_timeout_ms + PUBLISHER_STOP_EXTRA_MS;
}

/* Stops the collector first, then the publisher (so the publisher drains
 * the collector's last records too). */
static void begin_stop(struct launcher *l, int code)
{
	if (!l->stopping) {
		l->stopping = true;
		l->exit_code = code;
		notify_send("STOPPING=1");
	}
	l->col.restart_at = l->pub.restart_at = 0;
	if (l->col.pid > 0)
		terminate(&l->col, COLLECTOR_STOP_MS);
	else if (l->pub.pid > 0)
		terminate(&l->pub, publisher_stop_ms(l));
}

static void on_child_exit(struct launcher *l, struct child *c, int status)
{
	char how[160];
	describe_status(status, how, sizeof(how));
	pid_t pid = c->pid;
	c->pid = 0;
	c->ready = false;
	c->kill_at = 0;
	c->terms = 0;
	unlinkat(c->dir_fd, "ready", 0);

	if (l->stopping) {
		log_info("%s (pid %d) %s", c->name, (int)pid, how);
		if (c == &l->col && l->pub.pid > 0 && l->pub.terms == 0)
			terminate(&l->pub, publisher_stop_ms(l));
		return;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == LAUNCHER_EXIT_USAGE) {
		/* Its own message and usage line are above; retrying cannot help. */
		log_error("%s (pid %d) %s: it refused its arguments; stopping", c->name, (int)pid, how);
		fprintf(stderr, "%s\n", options_usage_line());
		begin_stop(l, LAUNCHER_EXIT_USAGE);
		return;
	}
	uint64_t now = now_ms();
	/* The latest RESTART_LIMIT exits, oldest first. */
	if (c->nexits == RESTART_LIMIT) {
		memmove(c->exits, c->exits + 1, (RESTART_LIMIT - 1) * sizeof(c->exits[0]));
		c->nexits--;
	}
	c->exits[c->nexits++] = now;
	int recent = 0;
	for (int i = 0; i < c->nexits; i++)
		if (now - c->exits[i] < RESTART_WINDOW_MS)
			recent++;
	if (recent >= RESTART_LIMIT) {
		struct child *other = c == &l->col ? &l->pub : &l->col;
		log_error("%s (pid %d) %s; it failed %d times within %d s: giving up, stopping %s "
			  "(exit status %d)",
			  c->name, (int)pid, how, recent, RESTART_WINDOW_MS / 1000, other->name,
			  c->give_up_code);
		begin_stop(l, c->give_up_code);
		return;
	}
	unsigned delay = BACKOFF_FIRST_MS << (recent - 1);
	if (delay > BACKOFF_MAX_MS)
		delay = BACKOFF_MAX_MS;
	log_warn("%s (pid %d) %s; starting it again in %u ms (%d of %d exits within %d s before "
		 "giving up)",
		 c->name, (int)pid, how, delay, recent, RESTART_LIMIT, RESTART_WINDOW_MS / 1000);
	c->restart_at = now + delay;
}

static void reap(struct launcher *l)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			return;
		if (pid == l->col.pid)
			on_child_exit(l, &l->col, status);
		else if (pid == l->pub.pid)
			on_child_exit(l, &l->pub, status);
	}
}

static void on_signal(struct launcher *l)
{
	struct signalfd_siginfo si;
	while (read(l->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD) {
			reap(l);
			continue;
		}
		if (!l->stopping) {
			log_info("%s: stopping ebpf-collector, then ebpf-publisher (which publishes "
				 "what the queue holds for at most %u ms)",
				 strsignal((int)si.ssi_signo), l->opts->drain_timeout_ms);
			begin_stop(l, LAUNCHER_EXIT_OK);
		} else {
			/* Again: the publisher exits at once on its second signal. */
			log_warn("%s again: telling both to stop now", strsignal((int)si.ssi_signo));
			terminate(&l->col, COLLECTOR_STOP_MS);
			terminate(&l->pub, publisher_stop_ms(l));
		}
	}
	reap(l); /* SIGCHLDs coalesce */
}

static void on_deadlines(struct launcher *l)
{
	uint64_t now = now_ms();
	struct child *children[2] = { &l->col, &l->pub };
	for (int i = 0; i < 2; i++) {
		struct child *c = children[i];
		if (c->restart_at && now >= c->restart_at && !l->stopping && c->pid <= 0)
			start_child(l, c);
		if (c->kill_at && now >= c->kill_at && c->pid > 0) {
			log_warn("%s (pid %d) did not stop in time: killing it", c->name, (int)c->pid);
			kill(c->pid, SIGKILL);
			c->kill_at = 0;
		}
	}
}

static int next_timeout(const struct launcher *l)
{
	uint64_t next = 0;
	const struct child *children[2] = { &l->col, &l->pub };
	for (int i = 0; i < 2; i++) {
		const struct child *c = children[i];
		if (c->restart_at && (!next || c->restart_at < next))
			next = c->restart_at;
		if (c->kill_at && (!next || c->kill_at < next))
			next = c->kill_at;
	}
	if (!next)
		return -1;
	uint64_t now = now_ms();
	return next <= now ? 0 : (int)(next - now);
}

static int run(struct launcher *l)
{
	start_child(l, &l->col);
	start_child(l, &l->pub);
	while (!(l->stopping && l->col.pid <= 0 && l->pub.pid <= 0)) {
		struct pollfd fds[2] = { { l->sig_fd, POLLIN, 0 }, { l->ino_fd, POLLIN, 0 } };
		int n = poll(fds, 2, next_timeout(l));
		if (n < 0 && errno != EINTR) {
			log_error("poll: %s", strerror(errno));
			begin_stop(l, LAUNCHER_EXIT_FATAL);
		}
		if (n > 0 && (fds[1].revents & POLLIN)) {
			char buf[4096];
			while (read(l->ino_fd, buf, sizeof(buf)) > 0)
				;
		}
		if (n > 0 && (fds[0].revents & POLLIN))
			on_signal(l);
		on_deadlines(l);
		check_ready(l);
	}
	return l->exit_code;
}

/* ---- setup ---- */

static void print_command(const char *label, const struct child *c)
{
	char caps[128];
	caps_describe(c->id.caps, caps, sizeof(caps));
	if (c->id.change) {
		printf("%s: uid %u (%s) gid %u groups", label, (unsigned)c->id.uid, c->id.user,
		       (unsigned)c->id.gid);
		if (!c->id.ngroups)
			printf(" -");
		for (int i = 0; i < c->id.ngroups; i++)
			printf("%s%u", i ? "," : " ", (unsigned)c->id.groups[i]);
		printf(", capabilities %s\n", caps);
	} else {
		printf("%s: uid %u (unchanged), capabilities %s\n", label, (unsigned)getuid(),
		       c->id.caps ? "inherited" : "none");
	}
	printf(" ");
	for (int i = 0; i < c->argv.n; i++)
		printf(" %s", c->argv.v[i]);
	printf("\n");
}

/* Who runs what, as root. 0, or the exit status. */
static int resolve_users(struct launcher *l)
{
	char err[256];
	struct launcher_options *o = l->opts;
	if (identity_lookup(&l->pub.id, o->publisher_user, err, sizeof(err)) != 0) {
		log_error("%s for ebpf-publisher: create it (useradd --system --no-create-home "
			  "--shell /usr/sbin/nologin %s) or pass --publisher-user USER",
			  err, o->publisher_user);
		return LAUNCHER_EXIT_FATAL;
	}
	if (identity_lookup(&l->col.id, o->collector_user, err, sizeof(err)) != 0) {
		log_error("%s for ebpf-collector: create it (useradd --system --no-create-home "
			  "--shell /usr/sbin/nologin %s, as scripts/install-deps.sh does) or pass "
			  "--collector-user USER",
			  err, o->collector_user);
		return LAUNCHER_EXIT_FATAL;
	}
	if (l->pub.id.uid == 0 || l->col.id.uid == 0) {
		fprintf(stderr, "ebpf-extractor: --%s-user %s is root: name an unprivileged user\n%s\n",
			l->pub.id.uid == 0 ? "publisher" : "collector",
			l->pub.id.uid == 0 ? o->publisher_user : o->collector_user, options_usage_line());
		return LAUNCHER_EXIT_USAGE;
	}
	if (l->pub.id.uid == l->col.id.uid) {
		fprintf(stderr, "ebpf-extractor: --collector-user and --publisher-user are the same "
			"uid (%u): they must differ, or the publisher could write the collector's "
			"queue file\n%s\n", (unsigned)l->pub.id.uid, options_usage_line());
		return LAUNCHER_EXIT_USAGE;
	}
	l->pub.id.change = l->col.id.change = true;
	/* The queue's group is the publisher's primary group; the collector
	 * gets it as its only supplementary group, so it may chown the queue
	 * directory to it. The publisher gets no supplementary group. */
	if (l->pub.id.gid != l->col.id.gid) {
		l->col.id.groups[0] = l->pub.id.gid;
		l->col.id.ngroups = 1;
	}
	return 0;
}

/* Whether the collector will attach perf-event uprobes (CAP_SYS_ADMIN
 * while attaching): the collector's own detection. */
static bool collector_needs_sys_admin(const struct launcher_options *o)
{
	if (o->attach_mode == ATTACH_PERF)
		return true;
	if (o->attach_mode == ATTACH_MULTI)
		return false;
	char err[256];
	int r = uprobe_multi_supported(err, sizeof(err));
	if (r == 1)
		return false;
	log_info("this kernel has no uprobe-multi links (%s): the collector gets CAP_SYS_ADMIN "
		 "until its probes are attached (it drops it then)",
		 r < 0 ? err : "Linux 6.6+ has them");
	return true;
}

static int check_root_privileges(struct launcher *l)
{
	uint64_t eff = 0, perm = 0;
	if (caps_self(&eff, &perm) != 0) {
		log_error("reading our capabilities: %s", strerror(errno));
		return LAUNCHER_EXIT_FATAL;
	}
	static const struct {
		int cap;
		const char *name;
		const char *why;
	} need[] = {
		{ CAP_SETUID, "CAP_SETUID", "to start the children as other users" },
		{ CAP_SETGID, "CAP_SETGID", "to start the children as other users" },
		{ CAP_SETPCAP, "CAP_SETPCAP", "to clear the children's bounding sets" },
		{ CAP_CHOWN, "CAP_CHOWN", "to give each child its ready-file directory" },
	};
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!(eff & CAPBIT(need[i].cap))) {
			log_error("running as root without %s, which ebpf-extractor needs %s (a "
				  "restricted capability bounding set?)",
				  need[i].name, need[i].why);
			return LAUNCHER_EXIT_FATAL;
		}
	uint64_t missing = l->col.id.caps & ~perm;
	if (missing) {
		char names[128];
		caps_describe(missing, names, sizeof(names));
		log_error("running as root without %s, which the collector needs (a restricted "
			  "capability bounding set?)",
			  names);
		return LAUNCHER_EXIT_FATAL;
	}
	return 0;
}

static void build_argv(struct launcher *l, bool dry_run)
{
	struct child *col = &l->col, *pub = &l->pub;
	arglist_add(&col->argv, col->path);
	for (int i = 0; i < l->opts->collector_args.n; i++)
		arglist_add(&col->argv, l->opts->collector_args.v[i]);
	arglist_add(&col->argv, "--ready-file");
	arglist_add(&col->argv, dry_run ? "RUNDIR/collector/ready" : col->ready_path);
	if (col->id.change) {
		struct group *gr = getgrgid(pub->id.gid);
		arglist_add(&col->argv, "--queue-group");
		arglist_add(&col->argv, gr ? gr->gr_name : "?");
	}
	arglist_add(&pub->argv, pub->path);
	for (int i = 0; i < l->opts->publisher_args.n; i++)
		arglist_add(&pub->argv, l->opts->publisher_args.v[i]);
	arglist_add(&pub->argv, "--ready-file");
	arglist_add(&pub->argv, dry_run ? "RUNDIR/publisher/ready" : pub->ready_path);
}

static int setup(struct launcher *l)
{
	struct launcher_options *o = l->opts;
#ifndef COLLECTOR_BUILD_PATH
#define COLLECTOR_BUILD_PATH ""
#define PUBLISHER_BUILD_PATH ""
#endif
	l->col.path = find_program("ebpf-collector", o->collector_bin, "--collector-bin",
				   COLLECTOR_BUILD_PATH);
	if (!l->col.path)
		return LAUNCHER_EXIT_FATAL;
	if (o->list_tracepoints) {
		char *argv[] = { l->col.path, "--bitcoind-path", (char *)o->bitcoind_path,
				 "--list-tracepoints", NULL };
		execv(argv[0], argv);
		log_error("running %s: %s", argv[0], strerror(errno));
		return LAUNCHER_EXIT_FATAL;
	}
	l->pub.path = find_program("ebpf-publisher", o->publisher_bin, "--publisher-bin",
				   PUBLISHER_BUILD_PATH);
	if (!l->pub.path)
		return LAUNCHER_EXIT_FATAL;

	l->as_root = geteuid() == 0;
	l->pub.id.caps = 0;
	if (l->as_root) {
		int rc = resolve_users(l);
		if (rc)
			return rc;
		if (!getgrgid(l->pub.id.gid)) {
			log_error("the publisher's primary group (gid %u) has no name; the collector "
				  "needs one for --queue-group",
				  (unsigned)l->pub.id.gid);
			return LAUNCHER_EXIT_FATAL;
		}
		l->col.id.caps = CAPBIT(CAP_BPF) | CAPBIT(CAP_PERFMON);
		if (collector_needs_sys_admin(o))
			l->col.id.caps |= CAPBIT(CAP_SYS_ADMIN);
		rc = check_root_privileges(l);
		if (rc)
			return rc;
		struct stat st;
		if (stat(l->col.path, &st) == 0 && (st.st_uid != 0 || (st.st_mode & 022)))
			log_warn("%s is owned by uid %u with mode %04o: whoever can replace it gets "
				 "the collector's CAP_BPF and CAP_PERFMON; make it root's and not "
				 "writable by others",
				 l->col.path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
	} else {
		l->col.id.caps = CAPBIT(CAP_BPF) | CAPBIT(CAP_PERFMON);
		if (o->attach_mode == ATTACH_PERF)
			l->col.id.caps |= CAPBIT(CAP_SYS_ADMIN);
	}
	if (o->dry_run) {
		build_argv(l, true);
		print_command("collector", &l->col);
		print_command("publisher", &l->pub);
		return -1;
	}
	if (!l->as_root) {
		uint64_t eff = 0, perm = 0;
		caps_self(&eff, &perm);
		log_info("not started as root: running ebpf-collector and ebpf-publisher as uid %u "
			 "without changing credentials (the publisher without capabilities)",
			 (unsigned)getuid());
		log_warn("both run as the same uid, so the publisher could write the collector's "
			 "queue file; start ebpf-extractor as root to separate them");
		if ((perm & (CAPBIT(CAP_BPF) | CAPBIT(CAP_PERFMON))) !=
		    (CAPBIT(CAP_BPF) | CAPBIT(CAP_PERFMON)))
			log_warn("without CAP_BPF and CAP_PERFMON the collector cannot load its "
				 "programs");
	}
	l->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (l->ino_fd < 0) {
		log_error("inotify: %s", strerror(errno));
		return LAUNCHER_EXIT_FATAL;
	}
	if (make_rundir(l) != 0)
		return LAUNCHER_EXIT_FATAL;
	build_argv(l, false);
	if (o->ready_file && unlink(o->ready_file) != 0 && errno != ENOENT) {
		log_error("removing the old ready file %s: %s", o->ready_file, strerror(errno));
		return LAUNCHER_EXIT_FATAL;
	}
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	l->sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (l->sig_fd < 0) {
		log_error("signalfd: %s", strerror(errno));
		return LAUNCHER_EXIT_FATAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct launcher_options opts;
	switch (options_parse(argc, argv, &opts)) {
	case OPTIONS_EXIT_OK: options_free(&opts); return LAUNCHER_EXIT_OK;
	case OPTIONS_USAGE_ERROR: options_free(&opts); return LAUNCHER_EXIT_USAGE;
	case OPTIONS_RUN: break;
	}
	log_init("ebpf-extractor", (enum log_level)opts.log_level);
	notify_init();
	signal(SIGPIPE, SIG_IGN);

	struct launcher l = {
		.opts = &opts,
		.col = { .name = "ebpf-collector", .give_up_code = LAUNCHER_EXIT_COLLECTOR_FAILED,
			 .dir_fd = -1 },
		.pub = { .name = "ebpf-publisher", .give_up_code = LAUNCHER_EXIT_PUBLISHER_FAILED,
			 .dir_fd = -1 },
		.sig_fd = -1,
		.ino_fd = -1,
	};
	int rc = setup(&l);
	if (rc == 0)
		rc = run(&l);
	else if (rc < 0)
		rc = LAUNCHER_EXIT_OK; /* --dry-run */
	if (opts.ready_file && l.announced)
		unlink(opts.ready_file);
	remove_rundir(&l);
	if (rc == LAUNCHER_EXIT_OK && l.sig_fd >= 0)
		log_info("stopped");
	free(l.col.path);
	free(l.pub.path);
	arglist_free(&l.col.argv);
	arglist_free(&l.pub.argv);
	options_free(&opts);
	return rc;
}
