/* ebpf-collector's command line. */
#ifndef EBPF_COLLECTOR_OPTIONS_H
#define EBPF_COLLECTOR_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "record.h"
#include "tracepoints.h"

struct collector_options {
	const char *bitcoind_path;
	pid_t bitcoind_pid;           /* 0: not given */
	const char *bitcoind_pid_file; /* NULL: not given */
	bool group_enabled[GROUP_COUNT];
	unsigned ring_pages[GROUP_COUNT];
	const char *queue_dir;
	uint64_t queue_size;           /* 0: the queue's own (or the default) */
	const char *queue_group;       /* NULL: our own gid */
	enum attach_mode attach_mode;
	bool list_tracepoints;
	const char *ready_file;
	unsigned stats_interval_ms;
	int log_level;
	bool libbpf_debug;
};

enum options_result { OPTIONS_RUN, OPTIONS_EXIT_OK, OPTIONS_USAGE_ERROR };

/* Fills opts from argv. Prints help/version (OPTIONS_EXIT_OK) or a one-line
 * error and the usage line (OPTIONS_USAGE_ERROR, exit 2) itself. */
enum options_result options_parse(int argc, char **argv, struct collector_options *opts);

#endif
