#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char notify_path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];

void notify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (path && (path[0] == '/' || path[0] == '@') && strlen(path) < sizeof(notify_path) - 1)
		snprintf(notify_path, sizeof(notify_path), "%s", path);
	unsetenv("NOTIFY_SOCKET");
}

int notify_send(const char *state)
{
	if (!notify_path[0])
		return 0;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t len = strlen(notify_path);
	if (len > sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, notify_path, len);
	if (addr.sun_path[0] == '@')
		addr.sun_path[0] = '\0'; /* abstract: no terminating NUL in the length */
	else if (len < sizeof(addr.sun_path))
		len++;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr,
			   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
	int e = n < 0 ? errno : 0;
	close(fd);
	return -e;
}
