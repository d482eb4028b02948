#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "queue.h"
#include "tracepoints_table.h"

static const char usage_line[] =
	"usage: ebpf-collector --bitcoind-path PATH [--bitcoind-pid PID | --bitcoind-pid-file PATH] [options]";

static const char help_text[] =
	"Attaches to the USDT tracepoints of a bitcoind binary and writes every event\n"
	"into a shared-memory queue for ebpf-publisher.\n"
	"\n"
	"  -b, --bitcoind-path PATH       bitcoind binary to trace (required)\n"
	"      --bitcoind-pid PID         only events of this process\n"
	"      --bitcoind-pid-file PATH   only events of the process named in this file;\n"
	"                                 follows it when bitcoind restarts\n"
	"      --no-p2pmsg-tracepoints    skip net:inbound_message/outbound_message\n"
	"      --no-connection-tracepoints  skip net connection tracepoints\n"
	"      --no-mempool-tracepoints   skip mempool tracepoints\n"
	"      --no-validation-tracepoints  skip validation:block_connected\n"
	"      --utxocache-tracepoints    add utxocache tracepoints (very high volume)\n"
	"      --coin-selection-tracepoints  add coin_selection tracepoints (wallet builds)\n"
	"      --queue DIR                queue directory (default " QUEUE_DEFAULT_DIR ")\n"
	"      --queue-size BYTES         queue capacity, power of two, K/M/G suffixes\n"
	"                                 (default 256M; an existing queue keeps its own)\n"
	"      --queue-group GROUP        group that may read the queue (the publisher's)\n"
	"      --ring-pages GROUP=PAGES   BPF ring size of a group in 4 KiB pages (power of\n"
	"                                 two); groups: p2pmsg connection mempool validation\n"
	"                                 utxocache coin_selection\n"
	"      --attach-mode MODE         auto (default), multi (uprobe-multi links, needs\n"
	"                                 CAP_BPF+CAP_PERFMON) or perf (needs CAP_SYS_ADMIN\n"
	"                                 while attaching)\n"
	"      --list-tracepoints         print the binary's USDT probes and exit\n"
	"      --ready-file PATH          written once every probe is attached\n"
	"      --stats-interval SECONDS   stats record period (default 5)\n"
	"  -l, --log-level LEVEL          error, warn, info (default), debug, trace\n"
	"      --libbpf-debug             print libbpf's debug output\n"
	"  -h, --help                     this help\n"
	"  -V, --version                  print the version\n";

enum {
	OPT_PID = 256,
	OPT_PID_FILE,
	OPT_NO_P2PMSG,
	OPT_NO_CONNECTION,
	OPT_NO_MEMPOOL,
	OPT_NO_VALIDATION,
	OPT_UTXOCACHE,
	OPT_COIN_SELECTION,
	OPT_QUEUE,
	OPT_QUEUE_SIZE,
	OPT_QUEUE_GROUP,
	OPT_RING_PAGES,
	OPT_ATTACH_MODE,
	OPT_LIST,
	OPT_READY_FILE,
	OPT_STATS_INTERVAL,
	OPT_LIBBPF_DEBUG,
};

static const struct option long_options[] = {
	{ "bitcoind-path", required_argument, NULL, 'b' },
	{ "bitcoind-pid", required_argument, NULL, OPT_PID },
	{ "bitcoind-pid-file", required_argument, NULL, OPT_PID_FILE },
	{ "no-p2pmsg-tracepoints", no_argument, NULL, OPT_NO_P2PMSG },
	{ "no-connection-tracepoints", no_argument, NULL, OPT_NO_CONNECTION },
	{ "no-mempool-tracepoints", no_argument, NULL, OPT_NO_MEMPOOL },
	{ "no-validation-tracepoints", no_argument, NULL, OPT_NO_VALIDATION },
	{ "utxocache-tracepoints", no_argument, NULL, OPT_UTXOCACHE },
	{ "coin-selection-tracepoints", no_argument, NULL, OPT_COIN_SELECTION },
	{ "queue", required_argument, NULL, OPT_QUEUE },
	{ "queue-size", required_argument, NULL, OPT_QUEUE_SIZE },
	{ "queue-group", required_argument, NULL, OPT_QUEUE_GROUP },
	{ "ring-pages", required_argument, NULL, OPT_RING_PAGES },
	{ "attach-mode", required_argument, NULL, OPT_ATTACH_MODE },
	{ "list-tracepoints", no_argument, NULL, OPT_LIST },
	{ "ready-file", required_argument, NULL, OPT_READY_FILE },
	{ "stats-interval", required_argument, NULL, OPT_STATS_INTERVAL },
	{ "log-level", required_argument, NULL, 'l' },
	{ "libbpf-debug", no_argument, NULL, OPT_LIBBPF_DEBUG },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static const struct cli_program program = { "ebpf-collector", usage_line, help_text };

static enum options_result usage_error(const char *fmt, const char *arg)
{
	cli_usage_error(&program, fmt, arg);
	return OPTIONS_USAGE_ERROR;
}

static bool is_power_of_two(uint64_t v)
{
	return v && !(v & (v - 1));
}

static enum options_result parse_ring_pages(const char *arg, struct collector_options *opts)
{
	const char *eq = strchr(arg, '=');
	char group[32];
	unsigned long pages;
	if (!eq || (size_t)(eq - arg) >= sizeof(group))
		return usage_error("--ring-pages takes GROUP=PAGES, got '%s'", arg);
	memcpy(group, arg, (size_t)(eq - arg));
	group[eq - arg] = '\0';
	int g = group_find(group);
	if (g < 0)
		return usage_error("--ring-pages: unknown group '%s' (groups: p2pmsg connection "
				   "mempool validation utxocache coin_selection)", group);
	if (!cli_parse_uint(eq + 1, 1, 1ul << 20, &pages) || !is_power_of_two(pages))
		return usage_error("--ring-pages: '%s' is not a power of two between 1 and 1048576",
				   eq + 1);
	opts->ring_pages[g] = (unsigned)pages;
	return OPTIONS_RUN;
}

static void options_defaults(struct collector_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->group_enabled[GROUP_P2PMSG] = true;
	opts->group_enabled[GROUP_CONNECTION] = true;
	opts->group_enabled[GROUP_MEMPOOL] = true;
	opts->group_enabled[GROUP_VALIDATION] = true;
	for (int g = 0; g < GROUP_COUNT; g++)
		opts->ring_pages[g] = group_default_ring_pages[g];
	opts->queue_dir = QUEUE_DEFAULT_DIR;
	opts->attach_mode = ATTACH_AUTO;
	opts->stats_interval_ms = 5000;
	opts->log_level = LOG_INFO;
}

static enum options_result parse_one(int c, const char *arg, struct collector_options *opts)
{
	unsigned long value;
	switch (c) {
	case 'b': opts->bitcoind_path = arg; break;
	case OPT_PID:
		if (!cli_parse_uint(arg, 1, INT_MAX, &value))
			return usage_error("--bitcoind-pid: '%s' is not a process id", arg);
		opts->bitcoind_pid = (pid_t)value;
		break;
	case OPT_PID_FILE: opts->bitcoind_pid_file = arg; break;
	case OPT_NO_P2PMSG: opts->group_enabled[GROUP_P2PMSG] = false; break;
	case OPT_NO_CONNECTION: opts->group_enabled[GROUP_CONNECTION] = false; break;
	case OPT_NO_MEMPOOL: opts->group_enabled[GROUP_MEMPOOL] = false; break;
	case OPT_NO_VALIDATION: opts->group_enabled[GROUP_VALIDATION] = false; break;
	case OPT_UTXOCACHE: opts->group_enabled[GROUP_UTXOCACHE] = true; break;
	case OPT_COIN_SELECTION: opts->group_enabled[GROUP_COIN_SELECTION] = true; break;
	case OPT_QUEUE: opts->queue_dir = arg; break;
	case OPT_QUEUE_SIZE:
		if (!cli_parse_size(arg, &opts->queue_size) || !is_power_of_two(opts->queue_size) ||
		    opts->queue_size < QUEUE_MIN_CAPACITY || opts->queue_size > QUEUE_MAX_CAPACITY)
			return usage_error("--queue-size: '%s' is not a power of two between 64K and 64G",
					   arg);
		break;
	case OPT_QUEUE_GROUP: opts->queue_group = arg; break;
	case OPT_RING_PAGES: return parse_ring_pages(arg, opts);
	case OPT_ATTACH_MODE:
		if (strcmp(arg, "auto") == 0)
			opts->attach_mode = ATTACH_AUTO;
		else if (strcmp(arg, "multi") == 0)
			opts->attach_mode = ATTACH_MULTI;
		else if (strcmp(arg, "perf") == 0)
			opts->attach_mode = ATTACH_PERF;
		else
			return usage_error("--attach-mode: '%s' is not auto, multi or perf", arg);
		break;
	case OPT_LIST: opts->list_tracepoints = true; break;
	case OPT_READY_FILE: opts->ready_file = arg; break;
	case OPT_STATS_INTERVAL:
		if (!cli_parse_uint(arg, 1, 3600, &value))
			return usage_error("--stats-interval: '%s' is not a number of seconds (1-3600)",
					   arg);
		opts->stats_interval_ms = (unsigned)value * 1000;
		break;
	case 'l':
		opts->log_level = log_level_parse(arg);
		if (opts->log_level < 0)
			return usage_error("--log-level: '%s' is not error, warn, info, debug or trace",
					   arg);
		break;
	case OPT_LIBBPF_DEBUG: opts->libbpf_debug = true; break;
	default: return OPTIONS_USAGE_ERROR;
	}
	return OPTIONS_RUN;
}

enum options_result options_parse(int argc, char **argv, struct collector_options *opts)
{
	options_defaults(opts);
	opterr = 0;
	optind = 1;
	int c;
	enum cli_step step;
	while ((step = cli_next(&program, argc, argv, ":b:l:hV", long_options, &c)) == CLI_OPTION) {
		enum options_result r = parse_one(c, optarg, opts);
		if (r != OPTIONS_RUN)
			return r;
	}
	if (step != CLI_END)
		return step == CLI_EXIT_OK ? OPTIONS_EXIT_OK : OPTIONS_USAGE_ERROR;
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!opts->bitcoind_path)
		return usage_error("%s", "--bitcoind-path is required");
	if (opts->bitcoind_pid && opts->bitcoind_pid_file)
		return usage_error("%s", "--bitcoind-pid and --bitcoind-pid-file exclude each other");
	return OPTIONS_RUN;
}
