/* What a test uses to start the tracee and know when to look: a pid file,
 * a start signal, and a wait for the tracer's semaphores. */
#ifndef EBPF_TRACEE_CONTROL_H
#define EBPF_TRACEE_CONTROL_H

#include <stdbool.h>
#include <time.h>

#include "fire.h"

/* Writes "<pid>\n" to a temporary file next to path and renames it over
 * path, so a reader never sees a partial file. 0, or -1 with a message. */
int control_write_pid_file(const char *path);

/* Blocks SIGUSR1 (in this thread and the threads it starts later), so that
 * one sent before control_wait_signal() is kept, not fatal. */
void control_block_start_signal(void);

/* Waits for SIGUSR1 until deadline (CLOCK_MONOTONIC). 0, or -1 with a
 * message. */
int control_wait_signal(const struct timespec *deadline);

/* Polls until the semaphore of every probe in mask is nonzero, i.e. a
 * tracer attached to all of them, or until deadline. 0, or -1 with a
 * message naming the probes still unattached (or missing in this build). */
int control_wait_attached(tp_mask mask, const struct timespec *deadline);

/* now + seconds on CLOCK_MONOTONIC. */
struct timespec control_deadline(double seconds);

#endif
