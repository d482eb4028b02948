#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "tracepoints_table.h"

static const char usage_line[] =
	"usage: ebpf-extractor --bitcoind-path PATH [--bitcoind-pid PID | --bitcoind-pid-file PATH] "
	"[--nats-address LIST] [options]";

static const char help_text[] =
	"Runs ebpf-collector (attaches to bitcoind's USDT tracepoints, fills the\n"
	"shared-memory queue) and ebpf-publisher (publishes the queue to NATS) as two\n"
	"processes, restarts either when it dies, and says when both are ready.\n"
	"Started as root, it runs the publisher as --publisher-user with no\n"
	"capabilities and the collector as --collector-user with only CAP_BPF and\n"
	"CAP_PERFMON (plus CAP_SYS_ADMIN while attaching, on kernels without\n"
	"uprobe-multi links). Otherwise both run as the current user.\n"
	"\n"
	"peer-observer's ebpf-extractor flags:\n"
	"  -n, -a, --nats-address LIST    NATS server(s), comma-separated HOST:PORT or\n"
	"                                 nats:// / tls:// URLs (default " LAUNCHER_DEFAULT_NATS_ADDRESS ")\n"
	"  -u, --nats-username USER       NATS user (also --nats-user)\n"
	"  -p, --nats-password PASSWORD   NATS password (visible in ps; prefer the file)\n"
	"  -f, --nats-password-file PATH  read the NATS password from this file\n"
	"  -b, --bitcoind-path PATH       bitcoind binary to trace (required)\n"
	"      --bitcoind-pid PID         only events of this process\n"
	"      --bitcoind-pid-file PATH   only events of the process named in this file;\n"
	"                                 follows it when bitcoind restarts\n"
	"      --no-p2pmsg-tracepoints    skip net:inbound_message/outbound_message\n"
	"      --no-connection-tracepoints  skip net connection tracepoints\n"
	"      --no-mempool-tracepoints   skip mempool tracepoints\n"
	"      --no-validation-tracepoints  skip validation:block_connected\n"
	"  -l, --log-level LEVEL          error, warn, info (default), debug, trace (for\n"
	"                                 all three processes)\n"
	"      --libbpf-debug             print libbpf's debug output (collector)\n"
	"  -i, --no-idle-exit             accepted and ignored: ebpf-extractor never exits\n"
	"                                 for being idle\n"
	"  -h, --help                     this help\n"
	"  -V, --version                  print the version\n"
	"\n"
	"Passed to ebpf-collector (see ebpf-collector --help):\n"
	"      --utxocache-tracepoints    add utxocache tracepoints (very high volume)\n"
	"      --coin-selection-tracepoints  add coin_selection tracepoints (wallet builds)\n"
	"      --queue-size BYTES         capacity of a new queue (power of two, K/M/G)\n"
	"      --ring-pages GROUP=PAGES   BPF ring size of a group in 4 KiB pages\n"
	"      --attach-mode MODE         auto (default), multi or perf\n"
	"Passed to ebpf-publisher (see ebpf-publisher --help):\n"
	"      --nats-creds PATH          NATS credentials file (JWT and NKey seed)\n"
	"      --nats-tls                 require TLS to the NATS server\n"
	"      --nats-tls-ca PATH         CA certificate(s) that signed the server's (PEM)\n"
	"      --nats-tls-cert PATH       client certificate for mutual TLS (PEM)\n"
	"      --nats-tls-key PATH        its private key (PEM)\n"
	"      --subject-prefix PREFIX    subject prefix (default btc.<node name>)\n"
	"      --node-name NAME           the \"node\" value (default: the host name)\n"
	"      --drain-timeout SECONDS    on stop, publish what the queue holds for at most\n"
	"                                 this long (default 10)\n"
	"Passed to both:\n"
	"      --queue DIR                queue directory (default /dev/shm/ebpf-extractor)\n"
	"      --stats-interval SECONDS   period of the stats records (default 5)\n"
	"\n"
	"The launcher's own:\n"
	"      --publisher-user USER      run the publisher as USER when started as root\n"
	"                                 (default " LAUNCHER_DEFAULT_PUBLISHER_USER "); its primary group may read\n"
	"                                 the queue\n"
	"      --collector-user USER      run the collector as USER when started as root\n"
	"                                 (default " LAUNCHER_DEFAULT_COLLECTOR_USER "); must differ from\n"
	"                                 the publisher's\n"
	"      --collector-bin PATH       the ebpf-collector to run (default: next to this\n"
	"                                 program, then the build tree's when run from\n"
	"                                 it, then PATH)\n"
	"      --publisher-bin PATH       the ebpf-publisher to run (likewise)\n"
	"      --ready-file PATH          written once every requested probe is attached and\n"
	"                                 the publisher runs (removed at exit)\n"
	"      --list-tracepoints         print the binary's USDT probes and exit\n"
	"      --dry-run                  print who runs what, with which capabilities, and\n"
	"                                 exit\n"
	"\n"
	"Once both are up it prints one line, \"ebpf-extractor: ready: N tracepoints\n"
	"attached, publishing to ADDRESS\", writes --ready-file and sends READY=1 to\n"
	"$NOTIFY_SOCKET (systemd Type=notify). A child that dies is logged and started\n"
	"again after 0.1 s, doubling with each of its exits in the last 60 s (at most\n"
	"5 s); at its 5th exit within 60 s the launcher stops the other cleanly and\n"
	"exits. SIGTERM, SIGINT or SIGHUP stop the collector, then the publisher (which\n"
	"publishes what the queue holds for up to --drain-timeout).\n"
	"\n"
	"Exit status: 0 stopped by a signal; 1 could not start (missing user or\n"
	"program, missing privilege); 2 bad flags (also when a child refuses its\n"
	"arguments); 3 ebpf-collector kept failing; 4 ebpf-publisher kept failing.\n";

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
	OPT_RING_PAGES,
	OPT_ATTACH_MODE,
	OPT_LIBBPF_DEBUG,
	OPT_STATS_INTERVAL,
	OPT_CREDS,
	OPT_TLS,
	OPT_TLS_CA,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_PREFIX,
	OPT_NODE,
	OPT_DRAIN_TIMEOUT,
	OPT_PUBLISHER_USER,
	OPT_COLLECTOR_USER,
	OPT_COLLECTOR_BIN,
	OPT_PUBLISHER_BIN,
	OPT_READY_FILE,
	OPT_LIST,
	OPT_DRY_RUN,
};

static const struct option long_options[] = {
	{ "nats-address", required_argument, NULL, 'n' },
	{ "nats-username", required_argument, NULL, 'u' },
	{ "nats-user", required_argument, NULL, 'u' },
	{ "nats-password", required_argument, NULL, 'p' },
	{ "nats-password-file", required_argument, NULL, 'f' },
	{ "bitcoind-path", required_argument, NULL, 'b' },
	{ "bitcoind-pid", required_argument, NULL, OPT_PID },
	{ "bitcoind-pid-file", required_argument, NULL, OPT_PID_FILE },
	{ "no-p2pmsg-tracepoints", no_argument, NULL, OPT_NO_P2PMSG },
	{ "no-connection-tracepoints", no_argument, NULL, OPT_NO_CONNECTION },
	{ "no-mempool-tracepoints", no_argument, NULL, OPT_NO_MEMPOOL },
	{ "no-validation-tracepoints", no_argument, NULL, OPT_NO_VALIDATION },
	{ "log-level", required_argument, NULL, 'l' },
	{ "libbpf-debug", no_argument, NULL, OPT_LIBBPF_DEBUG },
	{ "no-idle-exit", no_argument, NULL, 'i' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ "utxocache-tracepoints", no_argument, NULL, OPT_UTXOCACHE },
	{ "coin-selection-tracepoints", no_argument, NULL, OPT_COIN_SELECTION },
	{ "queue", required_argument, NULL, OPT_QUEUE },
	{ "queue-size", required_argument, NULL, OPT_QUEUE_SIZE },
	{ "ring-pages", required_argument, NULL, OPT_RING_PAGES },
	{ "attach-mode", required_argument, NULL, OPT_ATTACH_MODE },
	{ "stats-interval", required_argument, NULL, OPT_STATS_INTERVAL },
	{ "nats-creds", required_argument, NULL, OPT_CREDS },
	{ "nats-tls", no_argument, NULL, OPT_TLS },
	{ "nats-tls-ca", required_argument, NULL, OPT_TLS_CA },
	{ "nats-tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "nats-tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "subject-prefix", required_argument, NULL, OPT_PREFIX },
	{ "node-name", required_argument, NULL, OPT_NODE },
	{ "drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT },
	{ "publisher-user", required_argument, NULL, OPT_PUBLISHER_USER },
	{ "collector-user", required_argument, NULL, OPT_COLLECTOR_USER },
	{ "collector-bin", required_argument, NULL, OPT_COLLECTOR_BIN },
	{ "publisher-bin", required_argument, NULL, OPT_PUBLISHER_BIN },
	{ "ready-file", required_argument, NULL, OPT_READY_FILE },
	{ "list-tracepoints", no_argument, NULL, OPT_LIST },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ NULL, 0, NULL, 0 },
};

const char *options_usage_line(void)
{
	return usage_line;
}

void arglist_add(struct arglist *l, const char *s)
{
	if (l->n + 2 > l->cap) {
		int cap = l->cap ? l->cap * 2 : 32;
		char **v = realloc(l->v, (size_t)cap * sizeof(*v));
		if (!v) {
			fprintf(stderr, "ebpf-extractor: error: out of memory\n");
			exit(LAUNCHER_EXIT_FATAL);
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n] = strdup(s);
	if (!l->v[l->n]) {
		fprintf(stderr, "ebpf-extractor: error: out of memory\n");
		exit(LAUNCHER_EXIT_FATAL);
	}
	l->v[++l->n] = NULL;
}

void arglist_free(struct arglist *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

char *options_absolute(const char *path)
{
	if (path[0] == '/')
		return strdup(path);
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	size_t len = strlen(cwd) + 1 + strlen(path) + 1;
	char *out = malloc(len);
	if (out)
		snprintf(out, len, "%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", path);
	return out;
}

static const struct cli_program program = { "ebpf-extractor", usage_line, help_text };

static enum options_result usage_error(const char *fmt, const char *arg)
{
	cli_usage_error(&program, fmt, arg);
	return OPTIONS_USAGE_ERROR;
}

/* "256M", "1G", "65536": a power of two (the collector checks the range). */
static bool size_looks_valid(const char *text)
{
	uint64_t v;
	return cli_parse_size(text, &v) && v && !(v & (v - 1));
}

static void pass(struct arglist *l, const char *flag, const char *value)
{
	arglist_add(l, flag);
	if (value)
		arglist_add(l, value);
}

/* flag PATH with PATH made absolute (the children run in /). */
static enum options_result pass_path(struct arglist *l, const char *flag, const char *value)
{
	if (!*value)
		return usage_error("%s: empty path", flag);
	char *abs = options_absolute(value);
	if (!abs) {
		fprintf(stderr, "ebpf-extractor: error: %s %s: cannot make it absolute: %s\n", flag,
			value, strerror(errno));
		return OPTIONS_USAGE_ERROR;
	}
	pass(l, flag, abs);
	free(abs);
	return OPTIONS_RUN;
}

struct parse_state {
	bool have_pid, have_pid_file, have_user, have_password, have_password_file, have_creds;
	bool have_tls_cert, have_tls_key;
};

static enum options_result parse_one(int c, const char *arg, struct launcher_options *o,
				     struct parse_state *st)
{
	struct arglist *col = &o->collector_args, *pub = &o->publisher_args;
	unsigned long v;
	switch (c) {
	case 'n':
		if (!*arg)
			return usage_error("%s", "--nats-address: empty address");
		o->nats_address = arg;
		pass(pub, "--nats-address", arg);
		break;
	case 'u':
		if (!*arg)
			return usage_error("%s", "--nats-username: empty user name");
		st->have_user = true;
		pass(pub, "--nats-username", arg);
		break;
	case 'p':
		st->have_password = true;
		pass(pub, "--nats-password", arg);
		break;
	case 'f':
		st->have_password_file = true;
		return pass_path(pub, "--nats-password-file", arg);
	case 'b':
		if (!*arg)
			return usage_error("%s", "--bitcoind-path: empty path");
		o->bitcoind_path = arg;
		return pass_path(col, "--bitcoind-path", arg);
	case OPT_PID:
		if (!cli_parse_uint(arg, 1, INT_MAX, &v))
			return usage_error("--bitcoind-pid: '%s' is not a process id", arg);
		st->have_pid = true;
		pass(col, "--bitcoind-pid", arg);
		break;
	case OPT_PID_FILE:
		st->have_pid_file = true;
		return pass_path(col, "--bitcoind-pid-file", arg);
	case OPT_NO_P2PMSG: pass(col, "--no-p2pmsg-tracepoints", NULL); break;
	case OPT_NO_CONNECTION: pass(col, "--no-connection-tracepoints", NULL); break;
	case OPT_NO_MEMPOOL: pass(col, "--no-mempool-tracepoints", NULL); break;
	case OPT_NO_VALIDATION: pass(col, "--no-validation-tracepoints", NULL); break;
	case 'l':
		o->log_level = log_level_parse(arg);
		if (o->log_level < 0)
			return usage_error("--log-level: '%s' is not error, warn, info, debug or trace",
					   arg);
		pass(col, "--log-level", arg);
		pass(pub, "--log-level", arg);
		break;
	case OPT_LIBBPF_DEBUG: pass(col, "--libbpf-debug", NULL); break;
	case 'i': break; /* peer-observer's --no-idle-exit: we never exit for being idle */
	case OPT_UTXOCACHE: pass(col, "--utxocache-tracepoints", NULL); break;
	case OPT_COIN_SELECTION: pass(col, "--coin-selection-tracepoints", NULL); break;
	case OPT_QUEUE: {
		enum options_result r = pass_path(col, "--queue", arg);
		if (r != OPTIONS_RUN)
			return r;
		return pass_path(pub, "--queue", arg);
	}
	case OPT_QUEUE_SIZE:
		if (!size_looks_valid(arg))
			return usage_error("--queue-size: '%s' is not a power of two (K/M/G suffixes)",
					   arg);
		pass(col, "--queue-size", arg);
		break;
	case OPT_RING_PAGES: {
		const char *eq = strchr(arg, '=');
		char group[32];
		if (!eq || (size_t)(eq - arg) >= sizeof(group))
			return usage_error("--ring-pages takes GROUP=PAGES, got '%s'", arg);
		memcpy(group, arg, (size_t)(eq - arg));
		group[eq - arg] = '\0';
		if (group_find(group) < 0)
			return usage_error("--ring-pages: unknown group '%s' (groups: p2pmsg connection "
					   "mempool validation utxocache coin_selection)", group);
		if (!cli_parse_uint(eq + 1, 1, 1ul << 20, &v) || (v & (v - 1)))
			return usage_error("--ring-pages: '%s' is not a power of two between 1 and "
					   "1048576", eq + 1);
		pass(col, "--ring-pages", arg);
		break;
	}
	case OPT_ATTACH_MODE:
		if (strcmp(arg, "auto") == 0)
			o->attach_mode = ATTACH_AUTO;
		else if (strcmp(arg, "multi") == 0)
			o->attach_mode = ATTACH_MULTI;
		else if (strcmp(arg, "perf") == 0)
			o->attach_mode = ATTACH_PERF;
		else
			return usage_error("--attach-mode: '%s' is not auto, multi or perf", arg);
		pass(col, "--attach-mode", arg);
		break;
	case OPT_STATS_INTERVAL:
		if (!cli_parse_uint(arg, 1, 3600, &v))
			return usage_error("--stats-interval: '%s' is not a whole number of seconds "
					   "(1-3600)", arg);
		pass(col, "--stats-interval", arg);
		pass(pub, "--stats-interval", arg);
		break;
	case OPT_CREDS:
		st->have_creds = true;
		return pass_path(pub, "--nats-creds", arg);
	case OPT_TLS: pass(pub, "--nats-tls", NULL); break;
	case OPT_TLS_CA: return pass_path(pub, "--nats-tls-ca", arg);
	case OPT_TLS_CERT:
		st->have_tls_cert = true;
		return pass_path(pub, "--nats-tls-cert", arg);
	case OPT_TLS_KEY:
		st->have_tls_key = true;
		return pass_path(pub, "--nats-tls-key", arg);
	case OPT_PREFIX:
		if (!*arg)
			return usage_error("%s", "--subject-prefix: empty prefix");
		pass(pub, "--subject-prefix", arg);
		break;
	case OPT_NODE:
		if (!*arg)
			return usage_error("%s", "--node-name: empty name");
		pass(pub, "--node-name", arg);
		break;
	case OPT_DRAIN_TIMEOUT:
		if (!cli_parse_seconds(arg, 0, 3600, &o->drain_timeout_ms))
			return usage_error("--drain-timeout: '%s' is not a number of seconds (0-3600)",
					   arg);
		pass(pub, "--drain-timeout", arg);
		break;
	case OPT_PUBLISHER_USER:
		if (!*arg)
			return usage_error("%s", "--publisher-user: empty user name");
		o->publisher_user = arg;
		break;
	case OPT_COLLECTOR_USER:
		if (!*arg)
			return usage_error("%s", "--collector-user: empty user name");
		o->collector_user = arg;
		break;
	case OPT_COLLECTOR_BIN:
		if (!*arg)
			return usage_error("%s", "--collector-bin: empty path");
		o->collector_bin = arg;
		break;
	case OPT_PUBLISHER_BIN:
		if (!*arg)
			return usage_error("%s", "--publisher-bin: empty path");
		o->publisher_bin = arg;
		break;
	case OPT_READY_FILE:
		if (!*arg)
			return usage_error("%s", "--ready-file: empty path");
		free(o->ready_file);
		o->ready_file = options_absolute(arg);
		if (!o->ready_file)
			return usage_error("--ready-file %s: cannot make it absolute", arg);
		break;
	case OPT_LIST: o->list_tracepoints = true; break;
	case OPT_DRY_RUN: o->dry_run = true; break;
	default: return OPTIONS_USAGE_ERROR;
	}
	return OPTIONS_RUN;
}

static void options_defaults(struct launcher_options *o)
{
	memset(o, 0, sizeof(*o));
	o->nats_address = LAUNCHER_DEFAULT_NATS_ADDRESS;
	o->publisher_user = LAUNCHER_DEFAULT_PUBLISHER_USER;
	o->collector_user = LAUNCHER_DEFAULT_COLLECTOR_USER;
	o->attach_mode = ATTACH_AUTO;
	o->drain_timeout_ms = 10000;
	o->log_level = LOG_INFO;
}

enum options_result options_parse(int argc, char **argv, struct launcher_options *o)
{
	options_defaults(o);
	struct parse_state st = { 0 };
	opterr = 0;
	optind = 1;
	int c;
	enum cli_step step;
	while ((step = cli_next(&program, argc, argv, ":n:a:u:p:f:b:l:ihV", long_options, &c)) ==
	       CLI_OPTION) {
		if (c == 'a')
			c = 'n'; /* -a: peer-observer's current short name of --nats-address */
		enum options_result r = parse_one(c, optarg, o, &st);
		if (r != OPTIONS_RUN)
			return r;
	}
	if (step != CLI_END)
		return step == CLI_EXIT_OK ? OPTIONS_EXIT_OK : OPTIONS_USAGE_ERROR;
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!o->bitcoind_path)
		return usage_error("%s", "--bitcoind-path is required");
	if (st.have_pid && st.have_pid_file)
		return usage_error("%s", "--bitcoind-pid and --bitcoind-pid-file exclude each other");
	if (st.have_password && st.have_password_file)
		return usage_error("%s", "--nats-password and --nats-password-file exclude each other");
	if ((st.have_password || st.have_password_file) && !st.have_user)
		return usage_error("%s", "a NATS password needs --nats-username");
	if (st.have_user && !st.have_password && !st.have_password_file)
		return usage_error("%s", "--nats-username needs --nats-password or --nats-password-file");
	if (st.have_creds && st.have_user)
		return usage_error("%s", "--nats-creds and --nats-username exclude each other");
	if (st.have_tls_cert != st.have_tls_key)
		return usage_error("%s", "--nats-tls-cert and --nats-tls-key go together");
	return OPTIONS_RUN;
}

void options_free(struct launcher_options *o)
{
	arglist_free(&o->collector_args);
	arglist_free(&o->publisher_args);
	free(o->ready_file);
	o->ready_file = NULL;
}
