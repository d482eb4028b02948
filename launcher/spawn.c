#include "spawn.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- capabilities (raw syscalls: 64-bit masks, no libcap state) ---- */

static int capget3(uint64_t *eff, uint64_t *perm, uint64_t *inh)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) != 0)
		return -1;
	if (eff)
		*eff = d[0].effective | (uint64_t)d[1].effective << 32;
	if (perm)
		*perm = d[0].permitted | (uint64_t)d[1].permitted << 32;
	if (inh)
		*inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
	return 0;
}

static int capset3(uint64_t eff, uint64_t perm, uint64_t inh)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = {
		{ (uint32_t)eff, (uint32_t)perm, (uint32_t)inh },
		{ (uint32_t)(eff >> 32), (uint32_t)(perm >> 32), (uint32_t)(inh >> 32) },
	};
	return (int)syscall(SYS_capset, &h, d);
}

int caps_self(uint64_t *effective, uint64_t *permitted)
{
	return capget3(effective, permitted, NULL);
}

int caps_last(void)
{
	static int last = -1;
	if (last >= 0)
		return last;
	last = 40; /* CAP_CHECKPOINT_RESTORE, Linux 5.9 */
	int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		char buf[16];
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		if (n > 0) {
			buf[n] = '\0';
			int v = atoi(buf);
			if (v > 0 && v < 64)
				last = v;
		}
		close(fd);
	}
	return last;
}

void caps_describe(uint64_t caps, char *out, size_t len)
{
	static const struct {
		int cap;
		const char *name;
	} names[] = { { CAP_SYS_ADMIN, "cap_sys_admin" }, { CAP_PERFMON, "cap_perfmon" },
		      { CAP_BPF, "cap_bpf" } };
	size_t used = 0;
	out[0] = '\0';
	if (!caps) {
		snprintf(out, len, "none");
		return;
	}
	for (int c = 0; c < 64; c++) {
		if (!(caps & CAPBIT(c)))
			continue;
		const char *name = NULL;
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (names[i].cap == c)
				name = names[i].name;
		int n = name ? snprintf(out + used, len - used, "%s%s", used ? "," : "", name)
			     : snprintf(out + used, len - used, "%scap_%d", used ? "," : "", c);
		if (n < 0 || (size_t)n >= len - used)
			break;
		used += (size_t)n;
	}
}

/* ---- users ---- */

int identity_lookup(struct identity *id, const char *user, char *err, size_t errlen)
{
	memset(id, 0, sizeof(*id));
	errno = 0;
	struct passwd *pw = getpwnam(user);
	if (!pw && isdigit((unsigned char)user[0])) {
		char *end;
		unsigned long v = strtoul(user, &end, 10);
		if (*end == '\0' && v < (unsigned long)(uid_t)-1) {
			errno = 0;
			pw = getpwuid((uid_t)v);
		}
	}
	if (!pw) {
		if (errno && errno != ENOENT && errno != ESRCH) {
			snprintf(err, errlen, "looking up user '%s': %s", user, strerror(errno));
			return -1;
		}
		snprintf(err, errlen, "no user '%s'", user);
		errno = ENOENT;
		return -1;
	}
	id->uid = pw->pw_uid;
	id->gid = pw->pw_gid;
	snprintf(id->user, sizeof(id->user), "%s", pw->pw_name);
	snprintf(id->home, sizeof(id->home), "%s", pw->pw_dir ? pw->pw_dir : "/");
	return 0;
}

/* ---- the child ---- */

static void child_fail(const char *name, const char *step, int e, int code)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf), "ebpf-extractor: error: starting %s: %s%s%s\n", name,
			 step, e ? ": " : "", e ? strerror(e) : "");
	if (n > 0)
		(void)!write(STDERR_FILENO, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf));
	_exit(code);
}

static void reset_signals(void)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
}

static void become(const char *name, const struct identity *id)
{
	int last = caps_last();
	/* The bounding set first, while CAP_SETPCAP is still effective. */
	for (int c = 0; c <= last; c++)
		if (!(id->caps & CAPBIT(c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 &&
		    errno != EINVAL)
			child_fail(name, "dropping the capability bounding set", errno, 126);
	if (setgroups((size_t)id->ngroups, id->groups) != 0)
		child_fail(name, "setgroups", errno, 126);
	if (setresgid(id->gid, id->gid, id->gid) != 0)
		child_fail(name, "setresgid", errno, 126);
	/* Keep the permitted set across the uid change; pared down below. */
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0)
		child_fail(name, "PR_SET_KEEPCAPS", errno, 126);
	if (setresuid(id->uid, id->uid, id->uid) != 0)
		child_fail(name, "setresuid", errno, 126);
	if (capset3(id->caps, id->caps, id->caps) != 0)
		child_fail(name, "setting capabilities", errno, 126);
	prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	/* Ambient: what survives execv of a binary without file capabilities. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0)
		child_fail(name, "clearing ambient capabilities", errno, 126);
	for (int c = 0; c <= last; c++)
		if ((id->caps & CAPBIT(c)) &&
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) != 0)
			child_fail(name, "raising ambient capabilities", errno, 126);
}

/* Without root: no credential change. The publisher loses every
 * capability; the collector passes on those of id->caps the launcher holds
 * (raised to ambient, so they survive execv). */
static void stay(const char *name, const struct identity *id)
{
	uint64_t eff = 0, perm = 0, inh = 0;
	if (capget3(&eff, &perm, &inh) != 0)
		child_fail(name, "reading capabilities", errno, 126);
	if (id->caps == 0) {
		/* Drop the bounding set where we may (needs CAP_SETPCAP). */
		if (eff & CAPBIT(CAP_SETPCAP))
			for (int c = 0; c <= caps_last(); c++)
				prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
		prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
		if (capset3(0, 0, 0) != 0)
			child_fail(name, "clearing capabilities", errno, 126);
		return;
	}
	uint64_t keep = id->caps & perm;
	if (keep && capset3(eff, perm, inh | keep) == 0)
		for (int c = 0; c <= caps_last(); c++)
			if (keep & CAPBIT(c))
				prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0);
}

/* What the kernel says we have now, against what we meant to have. */
static void verify(const char *name, const struct identity *id)
{
	uint64_t eff = 0, perm = 0, inh = 0, amb = 0, bnd = 0;
	if (capget3(&eff, &perm, &inh) != 0)
		child_fail(name, "reading capabilities", errno, 126);
	for (int c = 0; c <= caps_last(); c++) {
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) == 1)
			amb |= CAPBIT(c);
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
			bnd |= CAPBIT(c);
	}
	if (id->change) {
		if (eff != id->caps || perm != id->caps || inh != id->caps || amb != id->caps ||
		    bnd != id->caps)
			child_fail(name, "capabilities are not what was asked for", 0, 126);
		if (getuid() != id->uid || geteuid() != id->uid || getgid() != id->gid ||
		    getegid() != id->gid)
			child_fail(name, "credentials are not what was asked for", 0, 126);
	} else if (id->caps == 0 && (eff || perm || inh || amb)) {
		child_fail(name, "could not clear its capabilities", 0, 126);
	}
}

pid_t spawn_child(const char *name, const struct identity *id, const char *path,
		  char *const argv[])
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		return pid;

	reset_signals();
	/* Its own session: a terminal's SIGINT/SIGHUP reach only the launcher,
	 * which stops the children in order (a second signal would make the
	 * publisher skip its drain). */
	if (setsid() < 0)
		child_fail(name, "setsid", errno, 126);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null < 0 || dup2(null, STDIN_FILENO) < 0)
		child_fail(name, "stdin from /dev/null", errno, 126);
	if (null != STDIN_FILENO)
		close(null);
	if (chdir("/") != 0)
		child_fail(name, "chdir /", errno, 126);
	if (id->change)
		become(name, id);
	else
		stay(name, id);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		child_fail(name, "PR_SET_NO_NEW_PRIVS", errno, 126);
	/* After the credential change, which clears it: the child stops when
	 * the launcher dies, even by SIGKILL. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) != 0)
		child_fail(name, "PR_SET_PDEATHSIG", errno, 126);
	if (getppid() != parent)
		_exit(126); /* the launcher is already gone */
	verify(name, id);
	if (id->change) {
		setenv("HOME", id->home, 1);
		setenv("USER", id->user, 1);
		setenv("LOGNAME", id->user, 1);
	}
	execv(path, argv);
	child_fail(name, path, errno, 127);
	return -1;
}
