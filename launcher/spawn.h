/* Starting a child with the credentials and capabilities it should have,
 * and nothing more. */
#ifndef EBPF_LAUNCHER_SPAWN_H
#define EBPF_LAUNCHER_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SPAWN_MAX_GROUPS 4
#define CAPBIT(c) (UINT64_C(1) << (c))

/* Who a child runs as. */
struct identity {
	bool change; /* started as root: switch to uid/gid/groups */
	uid_t uid;
	gid_t gid;
	gid_t groups[SPAWN_MAX_GROUPS]; /* supplementary groups, exactly these */
	int ngroups;
	char user[64];
	char home[256];
	/* The capabilities the child gets, exactly: permitted, effective,
	 * inheritable, ambient and bounding set (root); without root, those
	 * of these the launcher itself holds are raised to ambient and nothing
	 * else is given (and a mask of 0 clears everything). */
	uint64_t caps;
};

/* Fills id from a user name or number. 0, or -1 with err set: "no user
 * 'x'" (-ENOENT) or a lookup failure. */
int identity_lookup(struct identity *id, const char *user, char *err, size_t errlen);

/* "cap_bpf,cap_perfmon", "none". */
void caps_describe(uint64_t caps, char *out, size_t len);

/* The highest capability number the kernel knows (/proc/sys/kernel/cap_last_cap). */
int caps_last(void);

/* The launcher's own capability sets. */
int caps_self(uint64_t *effective, uint64_t *permitted);

/* Forks; in the child: default signal mask and dispositions, a new session
 * (terminal signals reach only the launcher), stdin from /dev/null,
 * working directory /, the identity and capabilities of id,
 * PR_SET_NO_NEW_PRIVS, PR_SET_PDEATHSIG(SIGTERM), then execv(path, argv).
 * A failure in the child is reported on stderr (naming name and the step)
 * and ends it with status 126 (credentials) or 127 (exec). Returns the pid,
 * or -1 (fork failed, errno set). */
pid_t spawn_child(const char *name, const struct identity *id, const char *path,
		  char *const argv[]);

#endif
