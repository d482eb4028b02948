#include "privileges.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>

static bool has_effective(cap_t caps, cap_value_t cap)
{
	cap_flag_value_t value = CAP_CLEAR;
	return cap_get_flag(caps, cap, CAP_EFFECTIVE, &value) == 0 && value == CAP_SET;
}

bool privileges_check(bool need_sys_admin, char *missing, size_t len)
{
	static const struct {
		cap_value_t cap;
		const char *name;
	} wanted[] = { { CAP_BPF, "CAP_BPF" }, { CAP_PERFMON, "CAP_PERFMON" },
		       { CAP_SYS_ADMIN, "CAP_SYS_ADMIN" } };
	cap_t caps = cap_get_proc();
	size_t used = 0;
	missing[0] = '\0';
	for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
		if (wanted[i].cap == CAP_SYS_ADMIN && !need_sys_admin)
			continue;
		if (caps && has_effective(caps, wanted[i].cap))
			continue;
		int n = snprintf(missing + used, len - used, "%s%s", used ? " and " : "",
				 wanted[i].name);
		if (n > 0 && (size_t)n < len - used)
			used += (size_t)n;
	}
	cap_free(caps);
	return used == 0;
}

int privileges_reduce(char *err, size_t len)
{
	const cap_value_t keep[] = { CAP_BPF, CAP_PERFMON };
	cap_t caps = cap_init(); /* all clear */
	if (!caps || cap_set_flag(caps, CAP_PERMITTED, 2, keep, CAP_SET) ||
	    cap_set_flag(caps, CAP_EFFECTIVE, 2, keep, CAP_SET) || cap_set_proc(caps)) {
		snprintf(err, len, "dropping capabilities: %s", strerror(errno));
		cap_free(caps);
		return -1;
	}
	cap_free(caps);
	/* Ambient capabilities would survive an exec; we exec nothing, but
	 * leave none behind. */
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	return 0;
}
