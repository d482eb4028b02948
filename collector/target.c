#include "target.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "log.h"

int target_pid_runs(pid_t pid, const char *binary_path, char *err, size_t len)
{
	if (kill(pid, 0) < 0 && errno == ESRCH) {
		snprintf(err, len, "pid %d does not exist", (int)pid);
		return -1;
	}
	struct stat st;
	if (stat(binary_path, &st) < 0) {
		snprintf(err, len, "cannot stat bitcoind binary %s: %s", binary_path,
			 strerror(errno));
		return -1;
	}
	/* /proc/PID/maps is readable with CAP_PERFMON; /proc/PID/exe of
	 * another user would need ptrace rights. */
	char maps_path[64];
	snprintf(maps_path, sizeof(maps_path), "/proc/%d/maps", (int)pid);
	FILE *maps = fopen(maps_path, "re");
	if (!maps) {
		snprintf(err, len, "cannot read %s: %s", maps_path, strerror(errno));
		return errno == ENOENT ? -1 : 0;
	}
	char line[4096];
	int found = 0;
	while (!found && fgets(line, sizeof(line), maps)) {
		unsigned major, minor;
		unsigned long long inode;
		if (sscanf(line, "%*x-%*x %*s %*x %x:%x %llu", &major, &minor, &inode) == 3)
			found = inode == (unsigned long long)st.st_ino &&
				makedev(major, minor) == st.st_dev;
	}
	fclose(maps);
	if (!found)
		snprintf(err, len, "pid %d is not running %s", (int)pid, binary_path);
	return found;
}

static int read_pid_file(const char *path, pid_t *pid)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	long value = 0;
	int n = fscanf(f, "%ld", &value);
	fclose(f);
	if (n != 1 || value <= 0 || value > INT32_MAX) {
		errno = EINVAL;
		return -1;
	}
	*pid = (pid_t)value;
	return 0;
}

void target_reload_pid_file(struct target *t)
{
	if (!t->pid_file)
		return;
	pid_t pid;
	if (read_pid_file(t->pid_file, &pid) < 0) {
		if (t->filter_tgid != TARGET_NO_PROCESS)
			log_info("pid file %s: %s; waiting for bitcoind to write it", t->pid_file,
				 errno == EINVAL ? "no pid in it" : strerror(errno));
		/* Keep following the last pid: a pid file removed at shutdown
		 * must not let other processes' events through. */
		if (t->filter_tgid == 0)
			t->filter_tgid = TARGET_NO_PROCESS;
		return;
	}
	if ((uint32_t)pid == t->filter_tgid)
		return;
	char err[256];
	if (target_pid_runs(pid, t->binary_path, err, sizeof(err)) != 1)
		log_warn("pid file %s: %s; following pid %d anyway", t->pid_file, err, (int)pid);
	else
		log_info("pid file %s: following bitcoind pid %d", t->pid_file, (int)pid);
	t->filter_tgid = (uint32_t)pid;
}

int target_init(struct target *t, const char *binary_path, pid_t pid, const char *pid_file,
		char *err, size_t len)
{
	memset(t, 0, sizeof(*t));
	t->binary_path = binary_path;
	t->pid_file = pid_file;
	if (pid) {
		if (target_pid_runs(pid, binary_path, err, len) != 1)
			return -1;
		t->filter_tgid = (uint32_t)pid;
	}
	if (pid_file)
		target_reload_pid_file(t);
	return 0;
}

uint32_t target_filter_tgid(const struct target *t)
{
	return t->filter_tgid;
}
