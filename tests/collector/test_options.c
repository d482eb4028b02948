/* ebpf-collector's command line: defaults, every flag, and bad input with
 * its exact message and exit status. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "options.h"
#include "queue.h"

static enum options_result parse(struct collector_options *o, int argc, const char **argv)
{
	optind = 0; /* getopt_long keeps state between calls */
	return options_parse(argc, (char **)argv, o);
}

#define PARSE(o, ...)                                                                    \
	({                                                                               \
		const char *argv_[] = { "ebpf-collector", __VA_ARGS__ };                 \
		parse(o, (int)(sizeof(argv_) / sizeof(argv_[0])), argv_);                \
	})

Test(options, defaults)
{
	struct collector_options o;
	cr_assert_eq(PARSE(&o, "--bitcoind-path", "/usr/bin/bitcoind"), OPTIONS_RUN);
	cr_assert_str_eq(o.bitcoind_path, "/usr/bin/bitcoind");
	cr_assert(o.group_enabled[GROUP_P2PMSG] && o.group_enabled[GROUP_CONNECTION] &&
		  o.group_enabled[GROUP_MEMPOOL] && o.group_enabled[GROUP_VALIDATION]);
	cr_assert(!o.group_enabled[GROUP_UTXOCACHE] && !o.group_enabled[GROUP_COIN_SELECTION]);
	cr_assert_str_eq(o.queue_dir, QUEUE_DEFAULT_DIR);
	cr_assert_eq(o.queue_size, 0);
	cr_assert_eq(o.attach_mode, ATTACH_AUTO);
	cr_assert_eq(o.ring_pages[GROUP_P2PMSG], RING_PAGES_P2PMSG);
	cr_assert_eq(o.stats_interval_ms, 5000);
	cr_assert_eq(o.bitcoind_pid, 0);
	cr_assert_null(o.bitcoind_pid_file);
}

Test(options, every_flag)
{
	struct collector_options o;
	cr_assert_eq(PARSE(&o, "-b", "/b", "--bitcoind-pid", "1234", "--no-p2pmsg-tracepoints",
			   "--no-connection-tracepoints", "--no-mempool-tracepoints",
			   "--no-validation-tracepoints", "--utxocache-tracepoints",
			   "--coin-selection-tracepoints", "--queue", "/tmp/q", "--queue-size", "1M",
			   "--queue-group", "nogroup", "--ring-pages", "utxocache=4096",
			   "--attach-mode", "perf", "--ready-file", "/tmp/r", "--stats-interval", "2",
			   "-l", "debug", "--libbpf-debug"),
		     OPTIONS_RUN);
	cr_assert_eq(o.bitcoind_pid, 1234);
	cr_assert(!o.group_enabled[GROUP_P2PMSG] && !o.group_enabled[GROUP_CONNECTION] &&
		  !o.group_enabled[GROUP_MEMPOOL] && !o.group_enabled[GROUP_VALIDATION]);
	cr_assert(o.group_enabled[GROUP_UTXOCACHE] && o.group_enabled[GROUP_COIN_SELECTION]);
	cr_assert_str_eq(o.queue_dir, "/tmp/q");
	cr_assert_eq(o.queue_size, 1 << 20);
	cr_assert_str_eq(o.queue_group, "nogroup");
	cr_assert_eq(o.ring_pages[GROUP_UTXOCACHE], 4096);
	cr_assert_eq(o.attach_mode, ATTACH_PERF);
	cr_assert_str_eq(o.ready_file, "/tmp/r");
	cr_assert_eq(o.stats_interval_ms, 2000);
	cr_assert_eq(o.log_level, 3);
	cr_assert(o.libbpf_debug);
}

static void expect_usage_error(const char *expected_line, int argc, const char **argv)
{
	struct collector_options o;
	cr_redirect_stderr();
	cr_assert_eq(parse(&o, argc, argv), OPTIONS_USAGE_ERROR);
	fflush(stderr);
	char expected[1024];
	snprintf(expected, sizeof(expected),
		 "ebpf-collector: %s\nusage: ebpf-collector --bitcoind-path PATH [--bitcoind-pid PID "
		 "| --bitcoind-pid-file PATH] [options]\n",
		 expected_line);
	cr_assert_stderr_eq_str(expected);
}

#define BAD(expected, ...)                                                               \
	do {                                                                             \
		const char *argv_[] = { "ebpf-collector", __VA_ARGS__ };                 \
		expect_usage_error(expected, (int)(sizeof(argv_) / sizeof(argv_[0])), argv_); \
	} while (0)

Test(options, missing_path)
{
	BAD("--bitcoind-path is required", "--queue", "/tmp/q");
}

Test(options, unknown_flag)
{
	BAD("unknown option '--frobnicate'", "-b", "/b", "--frobnicate");
}

Test(options, missing_value)
{
	BAD("option '--queue' needs a value", "-b", "/b", "--queue");
}

Test(options, bad_pid)
{
	BAD("--bitcoind-pid: 'abc' is not a process id", "-b", "/b", "--bitcoind-pid", "abc");
}

Test(options, pid_and_pid_file)
{
	BAD("--bitcoind-pid and --bitcoind-pid-file exclude each other", "-b", "/b",
	    "--bitcoind-pid", "1", "--bitcoind-pid-file", "/p");
}

Test(options, queue_size_not_power_of_two)
{
	BAD("--queue-size: '3M' is not a power of two between 64K and 64G", "-b", "/b",
	    "--queue-size", "3M");
}

Test(options, ring_pages_bad_group)
{
	BAD("--ring-pages: unknown group 'blocks' (groups: p2pmsg connection mempool validation "
	    "utxocache coin_selection)",
	    "-b", "/b", "--ring-pages", "blocks=16");
}

Test(options, ring_pages_not_power_of_two)
{
	BAD("--ring-pages: '100' is not a power of two between 1 and 1048576", "-b", "/b",
	    "--ring-pages", "mempool=100");
}

Test(options, bad_attach_mode)
{
	BAD("--attach-mode: 'kprobe' is not auto, multi or perf", "-b", "/b", "--attach-mode",
	    "kprobe");
}

Test(options, bad_log_level)
{
	BAD("--log-level: 'loud' is not error, warn, info, debug or trace", "-b", "/b", "-l",
	    "loud");
}

Test(options, stray_argument)
{
	BAD("unexpected argument 'extra'", "-b", "/b", "extra");
}

Test(options, sizes)
{
	uint64_t v;
	cr_assert(cli_parse_size("65536", &v) && v == 65536);
	cr_assert(cli_parse_size("64K", &v) && v == 65536);
	cr_assert(cli_parse_size("256MiB", &v) && v == 256ull << 20);
	cr_assert(cli_parse_size("1G", &v) && v == 1ull << 30);
	cr_assert(!cli_parse_size("", &v));
	cr_assert(!cli_parse_size("-1", &v));
	cr_assert(!cli_parse_size("12X", &v));
	cr_assert(!cli_parse_size("99999999999999999999", &v));
}
