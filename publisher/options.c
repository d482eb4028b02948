#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "cli.h"
#include "log.h"
#include "queue.h"

static const char usage_line[] =
	"usage: ebpf-publisher [--nats-address HOST:PORT[,HOST:PORT...]] [--queue DIR] [options]";

static const char help_text[] =
	"Reads the shared-memory queue the ebpf-collector writes and publishes every\n"
	"record as one MessagePack message on NATS. Needs no capabilities.\n"
	"\n"
	"  -n, -a, --nats-address LIST    NATS server(s), comma-separated, each HOST:PORT or a\n"
	"                                 nats:// or tls:// URL (default " PUBLISHER_DEFAULT_NATS_ADDRESS ")\n"
	"  -u, --nats-username USER       NATS user (also --nats-user)\n"
	"  -p, --nats-password PASSWORD   NATS password (visible in ps; prefer the file)\n"
	"  -f, --nats-password-file PATH  read the NATS password from this file\n"
	"      --nats-creds PATH          NATS credentials file (JWT and NKey seed)\n"
	"      --nats-tls                 require TLS to the NATS server\n"
	"      --nats-tls-ca PATH         CA certificate(s) that signed the server's (PEM;\n"
	"                                 default /etc/ssl/certs/ca-certificates.crt)\n"
	"      --nats-tls-cert PATH       client certificate for mutual TLS (PEM)\n"
	"      --nats-tls-key PATH        its private key (PEM)\n"
	"      --subject-prefix PREFIX    subject prefix (default btc.<node name>)\n"
	"      --node-name NAME           the \"node\" value and default prefix token\n"
	"                                 (default: the host name)\n"
	"      --queue DIR                queue directory (default " QUEUE_DEFAULT_DIR ")\n"
	"      --drain-timeout SECONDS    on SIGTERM/SIGINT, publish what the queue holds for\n"
	"                                 at most this long (default 10); the rest stays queued\n"
	"      --stats-interval SECONDS   publisher_stats period (default 5)\n"
	"      --ready-file PATH          written once the queue is open and the first NATS\n"
	"                                 connect attempt was made\n"
	"  -l, --log-level LEVEL          error, warn, info (default), debug, trace\n"
	"  -h, --help                     this help\n"
	"  -V, --version                  print the version\n"
	"\n"
	"A second SIGTERM/SIGINT exits at once (status 0); unconfirmed records stay in\n"
	"the queue and are published by the next start.\n";

enum {
	OPT_CREDS = 256,
	OPT_TLS,
	OPT_TLS_CA,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_PREFIX,
	OPT_NODE,
	OPT_QUEUE,
	OPT_DRAIN_TIMEOUT,
	OPT_STATS_INTERVAL,
	OPT_READY_FILE,
};

static const struct option long_options[] = {
	{ "nats-address", required_argument, NULL, 'a' },
	{ "nats-username", required_argument, NULL, 'u' },
	{ "nats-user", required_argument, NULL, 'u' },
	{ "nats-password", required_argument, NULL, 'p' },
	{ "nats-password-file", required_argument, NULL, 'f' },
	{ "nats-creds", required_argument, NULL, OPT_CREDS },
	{ "nats-tls", no_argument, NULL, OPT_TLS },
	{ "nats-tls-ca", required_argument, NULL, OPT_TLS_CA },
	{ "nats-tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "nats-tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "subject-prefix", required_argument, NULL, OPT_PREFIX },
	{ "node-name", required_argument, NULL, OPT_NODE },
	{ "queue", required_argument, NULL, OPT_QUEUE },
	{ "drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT },
	{ "stats-interval", required_argument, NULL, OPT_STATS_INTERVAL },
	{ "ready-file", required_argument, NULL, OPT_READY_FILE },
	{ "log-level", required_argument, NULL, 'l' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

const char *options_usage_line(void)
{
	return usage_line;
}

static const struct cli_program program = { "ebpf-publisher", usage_line, help_text };

static enum options_result usage_error(const char *fmt, const char *arg)
{
	cli_usage_error(&program, fmt, arg);
	return OPTIONS_USAGE_ERROR;
}

static void free_servers(struct publisher_options *opts)
{
	for (int i = 0; i < opts->server_count; i++)
		free(opts->servers[i]);
	opts->server_count = 0;
}

int options_set_servers(struct publisher_options *opts, const char *list, char *err,
			size_t errlen)
{
	free_servers(opts);
	const char *p = list;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		while (len && isspace((unsigned char)*p)) {
			p++;
			len--;
		}
		while (len && isspace((unsigned char)p[len - 1]))
			len--;
		if (len == 0) {
			snprintf(err, errlen, "--nats-address: empty server in '%s'", list);
			goto fail;
		}
		for (size_t i = 0; i < len; i++) {
			if (isspace((unsigned char)p[i]) || !isprint((unsigned char)p[i])) {
				snprintf(err, errlen, "--nats-address: '%.*s' contains a space or a "
					 "control character", (int)len, p);
				goto fail;
			}
		}
		const char *scheme_end = NULL;
		for (size_t i = 0; i + 2 < len; i++)
			if (p[i] == ':' && p[i + 1] == '/' && p[i + 2] == '/') {
				scheme_end = p + i + 3;
				break;
			}
		const char *host = scheme_end ? scheme_end : p;
		if (host == p + len || *host == ':' || *host == '/') {
			snprintf(err, errlen, "--nats-address: '%.*s' has no host", (int)len, p);
			goto fail;
		}
		if (scheme_end) {
			size_t slen = (size_t)(scheme_end - p) - 3;
			if (!((slen == 4 && strncmp(p, "nats", 4) == 0) ||
			      (slen == 3 && strncmp(p, "tls", 3) == 0))) {
				snprintf(err, errlen, "--nats-address: '%.*s': the scheme must be "
					 "nats:// or tls://", (int)len, p);
				goto fail;
			}
			if (slen == 3)
				opts->nats_tls = true;
		}
		if (opts->server_count == PUBLISHER_MAX_SERVERS) {
			snprintf(err, errlen, "--nats-address: more than %d servers",
				 PUBLISHER_MAX_SERVERS);
			goto fail;
		}
		char *url = malloc(len + 8);
		if (!url) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		snprintf(url, len + 8, "%s%.*s", scheme_end ? "" : "nats://", (int)len, p);
		opts->servers[opts->server_count++] = url;
		if (!comma)
			break;
		p = comma + 1;
	}
	return 0;
fail:
	free_servers(opts);
	return -1;
}

static void options_defaults(struct publisher_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->nats_address = PUBLISHER_DEFAULT_NATS_ADDRESS;
	opts->queue_dir = QUEUE_DEFAULT_DIR;
	opts->drain_timeout_ms = 10000;
	opts->stats_interval_ms = 5000;
	opts->log_level = LOG_INFO;
}

static enum options_result parse_one(int c, const char *arg, struct publisher_options *opts)
{
	switch (c) {
	case 'n': /* peer-observer's short flag; -a is its newer spelling */
	case 'a': opts->nats_address = arg; break;
	case 'u':
		if (!*arg)
			return usage_error("%s", "--nats-username: empty user name");
		opts->nats_username = arg;
		break;
	case 'p': opts->nats_password = arg; break;
	case 'f': opts->nats_password_file = arg; break;
	case OPT_CREDS: opts->nats_creds = arg; break;
	case OPT_TLS: opts->nats_tls = true; break;
	case OPT_TLS_CA: opts->nats_tls_ca = arg; opts->nats_tls = true; break;
	case OPT_TLS_CERT: opts->nats_tls_cert = arg; opts->nats_tls = true; break;
	case OPT_TLS_KEY: opts->nats_tls_key = arg; opts->nats_tls = true; break;
	case OPT_PREFIX: {
		char err[ENCODE_ERROR_LEN];
		if (subject_prefix_check(arg, err) != 0)
			return usage_error("%s", err);
		opts->subject_prefix = arg;
		break;
	}
	case OPT_NODE:
		if (!*arg || strlen(arg) > SUBJECT_PREFIX_MAX)
			return usage_error("--node-name: '%s' is empty or longer than 255 bytes", arg);
		opts->node_name = arg;
		break;
	case OPT_QUEUE:
		if (!*arg)
			return usage_error("%s", "--queue: empty directory name");
		opts->queue_dir = arg;
		break;
	case OPT_DRAIN_TIMEOUT:
		if (!cli_parse_seconds(arg, 0, 3600, &opts->drain_timeout_ms))
			return usage_error("--drain-timeout: '%s' is not a number of seconds (0-3600)",
					   arg);
		break;
	case OPT_STATS_INTERVAL:
		if (!cli_parse_seconds(arg, 0.1, 3600, &opts->stats_interval_ms))
			return usage_error("--stats-interval: '%s' is not a number of seconds (0.1-3600)",
					   arg);
		break;
	case OPT_READY_FILE: opts->ready_file = arg; break;
	case 'l':
		opts->log_level = log_level_parse(arg);
		if (opts->log_level < 0)
			return usage_error("--log-level: '%s' is not error, warn, info, debug or trace",
					   arg);
		break;
	default: return OPTIONS_USAGE_ERROR;
	}
	return OPTIONS_RUN;
}

enum options_result options_parse(int argc, char **argv, struct publisher_options *opts)
{
	options_defaults(opts);
	opterr = 0;
	optind = 1;
	int c;
	enum cli_step step;
	while ((step = cli_next(&program, argc, argv, ":a:n:u:p:f:l:hV", long_options, &c)) ==
	       CLI_OPTION) {
		enum options_result r = parse_one(c, optarg, opts);
		if (r != OPTIONS_RUN)
			return r;
	}
	if (step != CLI_END)
		return step == CLI_EXIT_OK ? OPTIONS_EXIT_OK : OPTIONS_USAGE_ERROR;
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (opts->nats_password && opts->nats_password_file)
		return usage_error("%s", "--nats-password and --nats-password-file exclude each other");
	if ((opts->nats_password || opts->nats_password_file) && !opts->nats_username)
		return usage_error("%s", "a NATS password needs --nats-username");
	if (opts->nats_username && !opts->nats_password && !opts->nats_password_file)
		return usage_error("%s", "--nats-username needs --nats-password or --nats-password-file");
	if (opts->nats_creds && opts->nats_username)
		return usage_error("%s", "--nats-creds and --nats-username exclude each other");
	if (!opts->nats_tls_cert != !opts->nats_tls_key)
		return usage_error("%s", "--nats-tls-cert and --nats-tls-key go together");
	char err[512];
	if (options_set_servers(opts, opts->nats_address, err, sizeof(err)) != 0)
		return usage_error("%s", err);
	return OPTIONS_RUN;
}

void options_free(struct publisher_options *opts)
{
	free_servers(opts);
}
