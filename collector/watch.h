/* inotify watches on the bitcoind binary and on the pid file.
 *
 * A uprobe sits at a file offset: if the attached file is overwritten in
 * place, new processes would get breakpoints in the middle of instructions.
 * So the moment the attached file is written to, its links are dropped;
 * when the writing ends, or the path names another file (an upgrade by
 * rename), the collector attaches again. */
#ifndef EBPF_COLLECTOR_WATCH_H
#define EBPF_COLLECTOR_WATCH_H

#include <stdbool.h>

enum watch_change {
	WATCH_BINARY_WRITTEN = 1u << 0, /* the attached file is being modified in place */
	WATCH_BINARY_CHANGED = 1u << 1, /* the path may name another file, or writing ended */
	WATCH_PID_FILE = 1u << 2,       /* the pid file was (re)written or removed */
	/* a writer of the watched file closed it, and no write came after
	 * in this batch: the writing may have ended */
	WATCH_BINARY_CLOSED = 1u << 3,
};

struct watch {
	int fd; /* inotify, non-blocking */
	int binary_wd, binary_dir_wd, pid_dir_wd;
	char binary_dir[4096], binary_name[256];
	char pid_dir[4096], pid_name[256];
};

/* pid_file may be NULL. 0 on success, -1 with a message in err. */
int watch_init(struct watch *w, const char *binary_path, const char *pid_file, char *err,
	       int errlen);
/* Watches the file the binary path names now (after a re-attach). */
void watch_binary_file(struct watch *w, const char *binary_path);
/* Reads every pending inotify event; returns enum watch_change bits.
 * WATCH_BINARY_CLOSED is set only when the file's last event in the batch
 * was a close after writing (a write after a close clears it). */
unsigned watch_read(struct watch *w);
void watch_close(struct watch *w);

#endif
