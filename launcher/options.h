/* ebpf-extractor's command line: peer-observer's ebpf-extractor flags plus
 * ours, turned into the two command lines of ebpf-collector and
 * ebpf-publisher. */
#ifndef EBPF_LAUNCHER_OPTIONS_H
#define EBPF_LAUNCHER_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "record.h" /* enum attach_mode */

#define LAUNCHER_DEFAULT_NATS_ADDRESS "127.0.0.1:4222"
#define LAUNCHER_DEFAULT_PUBLISHER_USER "nobody"
#define LAUNCHER_DEFAULT_COLLECTOR_USER "ebpf-collector"

/* Exit statuses (documented in --help and README.md). */
#define LAUNCHER_EXIT_OK 0
#define LAUNCHER_EXIT_FATAL 1            /* could not start (user, binary, runtime dir) */
#define LAUNCHER_EXIT_USAGE 2            /* bad flags (ours, or a child refused them) */
#define LAUNCHER_EXIT_COLLECTOR_FAILED 3 /* ebpf-collector kept failing: gave up */
#define LAUNCHER_EXIT_PUBLISHER_FAILED 4 /* ebpf-publisher kept failing: gave up */

/* A growing NULL-terminated argv of malloc'd strings. */
struct arglist {
	char **v;
	int n, cap;
};
void arglist_add(struct arglist *l, const char *s);
void arglist_free(struct arglist *l);

struct launcher_options {
	/* Arguments after the program name (argv[0] is set at spawn time). */
	struct arglist collector_args;
	struct arglist publisher_args;
	const char *nats_address;     /* for the ready line */
	const char *bitcoind_path;
	const char *publisher_user;
	const char *collector_user;
	const char *collector_bin;    /* NULL: search */
	const char *publisher_bin;    /* NULL: search */
	char *ready_file;             /* absolute, or NULL */
	enum attach_mode attach_mode; /* as given (auto when not) */
	unsigned drain_timeout_ms;    /* the publisher's, to bound our wait */
	int log_level;
	bool dry_run;
	bool list_tracepoints;
};

enum options_result { OPTIONS_RUN, OPTIONS_EXIT_OK, OPTIONS_USAGE_ERROR };

/* Fills opts from argv. Prints help/version (OPTIONS_EXIT_OK) or a one-line
 * error and the usage line (OPTIONS_USAGE_ERROR: exit 2) itself. */
enum options_result options_parse(int argc, char **argv, struct launcher_options *opts);
void options_free(struct launcher_options *opts);

const char *options_usage_line(void);

/* path made absolute against the working directory (not resolved through
 * symbolic links: the collector follows renames of the path itself).
 * malloc'd; NULL when out of memory or the directory is unknown. */
char *options_absolute(const char *path);

#endif
