/* ebpf-tracee: a stand-in for bitcoind. Its USDT probes have Bitcoin Core's
 * providers, names, argument types and semaphores; it fires them with
 * values the tests know (scenario.h).
 *
 *   scenario  every tracepoint with the scenario's values, in order
 *   load      a weighted mix at a chosen rate (load.h)
 *   burst     a full block's mempool and utxocache events while P2P flows (burst.h)
 *   compute   a checksum through the code holding the probe sites
 *
 * scenario, load and burst end by printing "fired <event> <count>" per
 * tracepoint: the events whose probe site was reached (a tracer was
 * attached), which is what the extractor must deliver.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "burst.h"
#include "control.h"
#include "fire.h"
#include "load.h"
#include "node.h"
#include "scenario.h"
#include "tracepoints_table.h"

#define EXIT_USAGE 2

static const char usage_line[] =
	"usage: ebpf-tracee [--wait-attached] [--timeout SEC] [--pid-file PATH] [--wait-signal]\n"
	"                   scenario [--groups LIST] | load --mix SPEC [--rate N] [--count N] |\n"
	"                   burst | compute\n";

static const char help_text[] =
	"Fires Bitcoin Core's USDT tracepoints with known values (tests/tracee/scenario.h).\n"
	"  scenario          every tracepoint, every edge case, in a fixed order\n"
	"  load              a mix of tracepoints: --mix SPEC (e.g. mempool_added=3,p2p:1000=1),\n"
	"                    --rate EVENTS/S (0: as fast as possible, default), --count N\n"
	"                    (default 10000; 0: until SIGINT/SIGTERM)\n"
	"  burst             5,000 mempool:removed and 20,000 utxocache events in ~50 ms while\n"
	"                    net:inbound_message flows from a second thread\n"
	"  compute           prints a checksum computed through the code holding the probes\n"
	"  --groups LIST     scenario: only these groups (p2pmsg,connection,mempool,validation,\n"
	"                    utxocache,coin_selection)\n"
	"  --wait-attached   before firing, wait until a tracer attached every probe to fire\n"
	"  --wait-signal     before firing, wait for SIGUSR1\n"
	"  --timeout SEC     deadline of each wait (default 30)\n"
	"  --pid-file PATH   write the pid there (atomically) at start\n"
	"Exit status: 0 done, 1 failed (timeout, out of memory), 2 bad usage.\n";

enum command { CMD_NONE, CMD_SCENARIO, CMD_LOAD, CMD_BURST, CMD_COMPUTE };

struct options {
	enum command command;
	bool wait_attached;
	bool wait_signal;
	double timeout;
	const char *pid_file;
	tp_mask groups; /* scenario: tracepoints of the chosen groups */
	const char *mix_spec;
	struct load_mix mix;
	double rate;
	uint64_t count;
	bool has_groups, has_rate, has_count;
};

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void __attribute__((noreturn, format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("ebpf-tracee: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fputs(usage_line, stderr);
	exit(EXIT_USAGE);
}

/* ---- option parsing ---- */

static double parse_double(const char *opt, const char *s, double min)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min) || v > 1e12)
		usage_error("bad value '%s' for %s", s, opt);
	return v;
}

static uint64_t parse_count(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-')
		usage_error("bad value '%s' for --count", s);
	return v;
}

static tp_mask parse_groups(const char *list)
{
	char copy[256], *save = NULL;
	tp_mask mask = 0;

	if (strlen(list) >= sizeof(copy))
		usage_error("--groups list too long");
	strcpy(copy, list);
	for (char *g = strtok_r(copy, ",", &save); g; g = strtok_r(NULL, ",", &save)) {
		int group = group_find(g);

		if (group < 0)
			usage_error("unknown group '%s' for --groups", g);
		for (int tp = 1; tp < TP_COUNT; tp++)
			if ((int)tracepoint_table[tp].group == group)
				mask |= TP_BIT(tp);
	}
	if (!mask)
		usage_error("empty --groups list");
	return mask;
}

static enum command parse_command(const char *s)
{
	static const char *const names[] = { [CMD_SCENARIO] = "scenario", [CMD_LOAD] = "load",
					     [CMD_BURST] = "burst", [CMD_COMPUTE] = "compute" };

	for (int c = CMD_SCENARIO; c <= CMD_COMPUTE; c++)
		if (strcmp(s, names[c]) == 0)
			return (enum command)c;
	usage_error("unknown command '%s'", s);
}

/* Flags that belong to one command only. */
static void check_command_flags(struct options *o)
{
	char err[256];

	if ((o->mix_spec || o->has_rate || o->has_count) && o->command != CMD_LOAD)
		usage_error("--mix, --rate and --count go with the load command");
	if (o->has_groups && o->command != CMD_SCENARIO)
		usage_error("--groups goes with the scenario command");
	if (o->command == CMD_LOAD) {
		if (!o->mix_spec)
			usage_error("load needs --mix SPEC");
		if (load_mix_parse(o->mix_spec, &o->mix, err, sizeof(err)) < 0)
			usage_error("--mix: %s", err);
	}
}

static void parse_options(int argc, char **argv, struct options *o)
{
	enum { OPT_WAIT_ATTACHED = 256, OPT_WAIT_SIGNAL, OPT_TIMEOUT, OPT_PID_FILE, OPT_GROUPS,
	       OPT_MIX, OPT_RATE, OPT_COUNT, OPT_HELP };
	static const struct option longopts[] = {
		{ "wait-attached", no_argument, NULL, OPT_WAIT_ATTACHED },
		{ "wait-signal", no_argument, NULL, OPT_WAIT_SIGNAL },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "pid-file", required_argument, NULL, OPT_PID_FILE },
		{ "groups", required_argument, NULL, OPT_GROUPS },
		{ "mix", required_argument, NULL, OPT_MIX },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct options){ .timeout = 30, .count = 10000 };
	opterr = 0; /* our own messages, with the usage line */
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_WAIT_ATTACHED: o->wait_attached = true; break;
		case OPT_WAIT_SIGNAL: o->wait_signal = true; break;
		case OPT_TIMEOUT: o->timeout = parse_double("--timeout", optarg, 0.001); break;
		case OPT_PID_FILE: o->pid_file = optarg; break;
		case OPT_GROUPS: o->groups = parse_groups(optarg); o->has_groups = true; break;
		case OPT_MIX: o->mix_spec = optarg; break;
		case OPT_RATE: o->rate = parse_double("--rate", optarg, 0); o->has_rate = true; break;
		case OPT_COUNT: o->count = parse_count(optarg); o->has_count = true; break;
		case OPT_HELP: fputs(usage_line, stdout); fputs(help_text, stdout); exit(0);
		case ':': usage_error("%s needs a value", argv[optind - 1]);
		default: usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		usage_error(optind == argc ? "no command given" : "one command only");
	o->command = parse_command(argv[optind]);
	check_command_flags(o);
}

/* ---- the commands ---- */

/* The probes a command fires in this build. */
static tp_mask command_mask(const struct options *o)
{
	tp_mask mask = 0;

	switch (o->command) {
	case CMD_SCENARIO:
		for (size_t i = 0; i < scenario_event_count(); i++)
			mask |= TP_BIT(scenario_step_at(i)->tp);
		if (o->has_groups)
			mask &= o->groups;
		return mask & fire_available();
	case CMD_LOAD:
		return load_mix_mask(&o->mix);
	case CMD_BURST:
		return burst_mask();
	case CMD_COMPUTE:
		for (int tp = 1; tp < TP_COUNT; tp++)
			if (tracepoint_table[tp].group != GROUP_COIN_SELECTION)
				mask |= TP_BIT(tp);
		return mask;
	default:
		return 0;
	}
}

static int run_scenario(tp_mask mask, uint64_t fired[TP_COUNT])
{
	struct firer *f = malloc(sizeof(*f));
	int err = 0;

	if (!f)
		return -ENOMEM;
	firer_init(f);
	for (size_t i = 0; i < scenario_event_count() && err >= 0; i++) {
		const struct scenario_step *step = scenario_step_at(i);

		if (mask & TP_BIT(step->tp))
			err = fire_step(f, step);
	}
	memcpy(fired, f->fired, sizeof(f->fired));
	firer_destroy(f);
	free(f);
	return err < 0 ? err : 0;
}

static int run(struct options *o, tp_mask mask)
{
	uint64_t fired[TP_COUNT] = { 0 };
	struct sigaction sa = { .sa_handler = on_stop };
	int err = 0;

	switch (o->command) {
	case CMD_SCENARIO:
		err = run_scenario(mask, fired);
		break;
	case CMD_LOAD:
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		err = load_run(&o->mix, o->rate, o->count, &stop_requested, fired);
		break;
	case CMD_BURST:
		err = burst_run(fired);
		break;
	case CMD_COMPUTE:
		printf("compute 0x%016" PRIx64 "\n", node_compute(SCENARIO_COMPUTE_ITERATIONS));
		return 0;
	default:
		return -EINVAL;
	}
	if (err < 0)
		return err;
	fire_report(stdout, fired, mask);
	return 0;
}

int main(int argc, char **argv)
{
	struct options o;
	struct timespec deadline;
	tp_mask mask;
	int err;

	parse_options(argc, argv, &o);
	mask = command_mask(&o);
	if (o.wait_signal)
		control_block_start_signal();
	if (o.pid_file && control_write_pid_file(o.pid_file) < 0)
		return EXIT_FAILURE;
	/* each wait has its own --timeout */
	deadline = control_deadline(o.timeout);
	if (o.wait_signal && control_wait_signal(&deadline) < 0)
		return EXIT_FAILURE;
	deadline = control_deadline(o.timeout);
	if (o.wait_attached && control_wait_attached(mask, &deadline) < 0)
		return EXIT_FAILURE;
	err = run(&o, mask);
	if (err < 0) {
		fprintf(stderr, "ebpf-tracee: %s\n", strerror(-err));
		return EXIT_FAILURE;
	}
	return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
