#include "watch.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "log.h"

#define BINARY_FILE_EVENTS (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF)
#define DIR_EVENTS (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CLOSE_WRITE)

static void split_path(const char *path, char *dir, size_t dirlen, char *name, size_t namelen)
{
	char copy1[4096], copy2[4096];
	snprintf(copy1, sizeof(copy1), "%s", path);
	snprintf(copy2, sizeof(copy2), "%s", path);
	snprintf(dir, dirlen, "%s", dirname(copy1));
	snprintf(name, namelen, "%s", basename(copy2));
}

void watch_binary_file(struct watch *w, const char *binary_path)
{
	if (w->binary_wd >= 0)
		inotify_rm_watch(w->fd, w->binary_wd);
	w->binary_wd = inotify_add_watch(w->fd, binary_path, BINARY_FILE_EVENTS);
	if (w->binary_wd < 0)
		log_debug("watching %s: %s", binary_path, strerror(errno));
}

int watch_init(struct watch *w, const char *binary_path, const char *pid_file, char *err,
	       int errlen)
{
	memset(w, 0, sizeof(*w));
	w->binary_wd = w->binary_dir_wd = w->pid_dir_wd = -1;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0) {
		snprintf(err, (size_t)errlen, "inotify_init1: %s", strerror(errno));
		return -1;
	}
	split_path(binary_path, w->binary_dir, sizeof(w->binary_dir), w->binary_name,
		   sizeof(w->binary_name));
	w->binary_dir_wd = inotify_add_watch(w->fd, w->binary_dir, DIR_EVENTS);
	if (w->binary_dir_wd < 0) {
		snprintf(err, (size_t)errlen, "watching directory %s: %s", w->binary_dir,
			 strerror(errno));
		return -1;
	}
	watch_binary_file(w, binary_path);
	if (pid_file) {
		split_path(pid_file, w->pid_dir, sizeof(w->pid_dir), w->pid_name,
			   sizeof(w->pid_name));
		/* The same directory yields the same wd: add to its mask. */
		w->pid_dir_wd = inotify_add_watch(w->fd, w->pid_dir, DIR_EVENTS | IN_MASK_ADD);
		if (w->pid_dir_wd < 0) {
			snprintf(err, (size_t)errlen, "watching directory %s of the pid file: %s",
				 w->pid_dir, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static unsigned classify(const struct watch *w, const struct inotify_event *ev)
{
	unsigned change = 0;
	if (ev->wd == w->binary_wd) {
		if (ev->mask & IN_MODIFY)
			change |= WATCH_BINARY_WRITTEN;
		if (ev->mask & (IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF))
			change |= WATCH_BINARY_CHANGED;
		if (ev->mask & IN_CLOSE_WRITE)
			change |= WATCH_BINARY_CLOSED;
	}
	if (ev->len == 0)
		return change;
	if (ev->wd == w->binary_dir_wd && strcmp(ev->name, w->binary_name) == 0)
		change |= WATCH_BINARY_CHANGED;
	if (ev->wd == w->pid_dir_wd && strcmp(ev->name, w->pid_name) == 0)
		change |= WATCH_PID_FILE;
	return change;
}

unsigned watch_read(struct watch *w)
{
	unsigned change = 0;
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t n = read(w->fd, buf, sizeof(buf));
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				log_warn("reading inotify events: %s", strerror(errno));
			break;
		}
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const void *)p;
			unsigned this = classify(w, ev);
			if (ev->mask & IN_Q_OVERFLOW)
				this = WATCH_BINARY_WRITTEN | WATCH_BINARY_CHANGED | WATCH_BINARY_CLOSED |
				       WATCH_PID_FILE;
			/* order matters here: only a close after the last write */
			if ((this & WATCH_BINARY_WRITTEN) && !(this & WATCH_BINARY_CLOSED))
				change &= ~WATCH_BINARY_CLOSED;
			change |= this;
			p += sizeof(*ev) + ev->len;
		}
	}
	return change;
}

void watch_close(struct watch *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}
