#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char sub_usage_line[] = "usage: ebpf-sub [options] [SUBJECT...]";

static const char help_text[] =
	"Subscribes to ebpf-extractor events on NATS and prints each message as one\n"
	"JSON object per line, keys in the event's order. SUBJECT filters (NATS\n"
	"wildcards: * one token, > the rest) replace the default PREFIX.> (every\n"
	"node, every event), e.g. 'btc.*.mempool.>' or 'btc.node1.net.inbound_message.inv'.\n"
	"\n"
	"  -n, --nats-address ADDR    NATS server, or a comma-separated list\n"
	"                             (default " SUB_DEFAULT_ADDRESS ")\n"
	"      --nats-user USER       user name\n"
	"      --nats-password PASS   password (with --nats-user)\n"
	"      --nats-creds FILE      credentials file (user JWT and NKey seed)\n"
	"      --nats-tls             connect with TLS\n"
	"      --nats-tls-ca FILE     CA certificates to verify the server (implies --nats-tls)\n"
	"      --nats-tls-cert FILE   client certificate (with --nats-tls-key; implies --nats-tls)\n"
	"      --nats-tls-key FILE    client private key\n"
	"      --prefix PREFIX        subject root in front of the node name (default " SUB_DEFAULT_PREFIX ")\n"
	"      --stats                only the extractor's stats: PREFIX.*.extractor.collector_stats\n"
	"                             and PREFIX.*.extractor.publisher_stats\n"
	"      --subject              add \"subject\": the message's subject, as the first key\n"
	"      --no-payload           leave out the raw P2P message (the \"payload\" key)\n"
	"      --count N              exit 0 after N messages\n"
	"      --timeout SEC          exit 1 when nothing arrives for SEC seconds\n"
	"  -h, --help                 this help\n"
	"  -V, --version              print the version\n"
	"\n"
	"Output: bytes (hashes, payload) as lowercase hex; integers exact, and any whose\n"
	"magnitude exceeds 2^53 as a JSON string so that jq keeps it exact. A message\n"
	"that is not MessagePack prints {\"subject\":...,\"error\":...,\"bytes\":N}.\n"
	"stdout is written after every message. The server may be down at start and may\n"
	"go away: ebpf-sub reconnects forever and says so on stderr.\n"
	"Exit status: 0 after --count messages or when stdout is closed, 1 on --timeout\n"
	"or an error, 2 on bad usage, 128+N on signal N (SIGINT, SIGTERM, SIGHUP).\n";

enum {
	OPT_USER = 256,
	OPT_PASSWORD,
	OPT_CREDS,
	OPT_TLS,
	OPT_TLS_CA,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_PREFIX,
	OPT_STATS,
	OPT_SUBJECT,
	OPT_NO_PAYLOAD,
	OPT_COUNT,
	OPT_TIMEOUT,
};

static const struct option long_options[] = {
	{ "nats-address", required_argument, NULL, 'n' },
	{ "nats-user", required_argument, NULL, OPT_USER },
	{ "nats-password", required_argument, NULL, OPT_PASSWORD },
	{ "nats-creds", required_argument, NULL, OPT_CREDS },
	{ "nats-tls", no_argument, NULL, OPT_TLS },
	{ "nats-tls-ca", required_argument, NULL, OPT_TLS_CA },
	{ "nats-tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "nats-tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "prefix", required_argument, NULL, OPT_PREFIX },
	{ "stats", no_argument, NULL, OPT_STATS },
	{ "subject", no_argument, NULL, OPT_SUBJECT },
	{ "no-payload", no_argument, NULL, OPT_NO_PAYLOAD },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static enum sub_options_result usage_error(const char *fmt, const char *arg)
	__attribute__((format(printf, 1, 0)));
static enum sub_options_result usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "ebpf-sub: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s\n", sub_usage_line);
	return SUB_OPTIONS_USAGE_ERROR;
}

bool sub_subject_valid(const char *s, bool wildcards)
{
	size_t n = strlen(s);
	if (n == 0 || n > 255)
		return false;
	const char *tok = s;
	for (;;) {
		const char *dot = strchr(tok, '.');
		size_t len = dot ? (size_t)(dot - tok) : strlen(tok);
		if (len == 0)
			return false;
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)tok[i];
			if (c <= 0x20 || c == 0x7f)
				return false;
			if ((c == '*' || c == '>') && (!wildcards || len != 1))
				return false;
			if (c == '>' && dot)
				return false; /* '>' only as the last token */
		}
		if (!dot)
			return true;
		tok = dot + 1;
	}
}

static bool set_once(const char **slot, const char *value, const char *flag)
{
	if (value[0] == '\0') {
		usage_error("%s needs a non-empty value", flag);
		return false;
	}
	*slot = value;
	return true;
}

static enum sub_options_result split_servers(struct sub_options *o, const char *list)
{
	free(o->addr_copy);
	o->addr_copy = strdup(list);
	if (!o->addr_copy) {
		fprintf(stderr, "ebpf-sub: out of memory\n");
		return SUB_OPTIONS_USAGE_ERROR;
	}
	o->server_count = 0;
	/* strtok would skip empty elements: walk by hand so "a,,b" is an error. */
	char *p = o->addr_copy;
	for (;;) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		char *end = p + strlen(p);
		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (*p == '\0')
			return usage_error("--nats-address: empty server in '%s'", list);
		for (char *c = p; *c; c++)
			if ((unsigned char)*c <= 0x20 || *c == 0x7f)
				return usage_error("--nats-address: '%s' contains a space or control character", list);
		if (o->server_count == SUB_MAX_SERVERS)
			return usage_error("--nats-address: more than 32 servers in '%s'", list);
		o->servers[o->server_count++] = p;
		if (!comma)
			return SUB_OPTIONS_RUN;
		p = comma + 1;
	}
}

static void defaults(struct sub_options *o)
{
	memset(o, 0, sizeof(*o));
}

void sub_options_free(struct sub_options *o)
{
	free(o->addr_copy);
	o->addr_copy = NULL;
}

static enum sub_options_result parse_one(int c, const char *arg, struct sub_options *o)
{
	char *end;
	switch (c) {
	case 'n': return split_servers(o, arg);
	case OPT_USER:
		return set_once(&o->user, arg, "--nats-user") ? SUB_OPTIONS_RUN : SUB_OPTIONS_USAGE_ERROR;
	case OPT_PASSWORD:
		return set_once(&o->password, arg, "--nats-password") ? SUB_OPTIONS_RUN
								      : SUB_OPTIONS_USAGE_ERROR;
	case OPT_CREDS:
		return set_once(&o->creds, arg, "--nats-creds") ? SUB_OPTIONS_RUN : SUB_OPTIONS_USAGE_ERROR;
	case OPT_TLS: o->tls = true; return SUB_OPTIONS_RUN;
	case OPT_TLS_CA:
		o->tls = true;
		return set_once(&o->tls_ca, arg, "--nats-tls-ca") ? SUB_OPTIONS_RUN : SUB_OPTIONS_USAGE_ERROR;
	case OPT_TLS_CERT:
		o->tls = true;
		return set_once(&o->tls_cert, arg, "--nats-tls-cert") ? SUB_OPTIONS_RUN
								      : SUB_OPTIONS_USAGE_ERROR;
	case OPT_TLS_KEY:
		o->tls = true;
		return set_once(&o->tls_key, arg, "--nats-tls-key") ? SUB_OPTIONS_RUN
								    : SUB_OPTIONS_USAGE_ERROR;
	case OPT_PREFIX:
		/* '*' allowed (any root), '>' not: tokens follow the prefix. */
		if (!sub_subject_valid(arg, true) || strchr(arg, '>'))
			return usage_error("--prefix: '%s' is not a NATS subject prefix", arg);
		o->prefix = arg;
		return SUB_OPTIONS_RUN;
	case OPT_STATS: o->stats = true; return SUB_OPTIONS_RUN;
	case OPT_SUBJECT: o->subject_key = true; return SUB_OPTIONS_RUN;
	case OPT_NO_PAYLOAD: o->no_payload = true; return SUB_OPTIONS_RUN;
	case OPT_COUNT: {
		errno = 0;
		unsigned long long n = strtoull(arg, &end, 10);
		if (errno || end == arg || *end != '\0' || arg[0] == '-' || arg[0] == '+' || n == 0)
			return usage_error("--count: '%s' is not a positive whole number", arg);
		o->count = n;
		return SUB_OPTIONS_RUN;
	}
	case OPT_TIMEOUT: {
		errno = 0;
		double s = strtod(arg, &end);
		if (errno || end == arg || *end != '\0' || !isfinite(s) || s <= 0 || s > 1e9)
			return usage_error("--timeout: '%s' is not a positive number of seconds", arg);
		o->timeout_s = s;
		return SUB_OPTIONS_RUN;
	}
	default: return SUB_OPTIONS_USAGE_ERROR;
	}
}

enum sub_options_result sub_options_parse(int argc, char **argv, struct sub_options *o)
{
	defaults(o);
	opterr = 0;
	int c;
	enum sub_options_result r;
	/* Options may follow SUBJECTs (GNU permutation); "--" ends them. */
	while ((c = getopt_long(argc, argv, ":n:hV", long_options, NULL)) != -1) {
		if (c == 'h') {
			printf("%s\n\n%s", sub_usage_line, help_text);
			return SUB_OPTIONS_EXIT_OK;
		}
		if (c == 'V') {
			printf("ebpf-sub %s\n", EXTRACTOR_VERSION);
			return SUB_OPTIONS_EXIT_OK;
		}
		if (c == '?') {
			const char *a = argv[optind - 1];
			if (strncmp(a, "--", 2) == 0) /* glibc: optopt 0 when unknown */
				return usage_error(optopt ? "option '%s' takes no value"
							  : "unknown option '%s'", a);
			char flag[3] = { '-', (char)optopt, '\0' }; /* maybe in a cluster */
			return usage_error("unknown option '%s'", flag);
		}
		if (c == ':')
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		r = parse_one(c, optarg, o);
		if (r != SUB_OPTIONS_RUN)
			return r;
	}

	if (o->server_count == 0) {
		r = split_servers(o, SUB_DEFAULT_ADDRESS);
		if (r != SUB_OPTIONS_RUN)
			return r;
	}
	if (o->password && !o->user)
		return usage_error("%s", "--nats-password needs --nats-user");
	if (o->creds && o->user)
		return usage_error("%s", "--nats-creds and --nats-user exclude each other");
	if (!o->tls_cert != !o->tls_key)
		return usage_error("%s", "--nats-tls-cert and --nats-tls-key go together");

	int nsubjects = argc - optind;
	if (nsubjects > 0 && o->stats)
		return usage_error("%s", "--stats and SUBJECT arguments exclude each other");
	if (nsubjects > 0 && o->prefix)
		return usage_error("%s", "--prefix applies to the default subjects only; "
					 "give full SUBJECTs instead");
	if (nsubjects > SUB_MAX_SUBJECTS)
		return usage_error("%s", "more than 64 SUBJECT arguments");
	for (int i = optind; i < argc; i++) {
		if (!sub_subject_valid(argv[i], true))
			return usage_error("'%s' is not a NATS subject filter", argv[i]);
		o->subjects[o->subject_count++] = argv[i];
	}

	const char *prefix = o->prefix ? o->prefix : SUB_DEFAULT_PREFIX;
	if (o->stats) {
		snprintf(o->subject_buf[0], sizeof(o->subject_buf[0]),
			 "%s.*.extractor.collector_stats", prefix);
		snprintf(o->subject_buf[1], sizeof(o->subject_buf[1]),
			 "%s.*.extractor.publisher_stats", prefix);
		o->subjects[0] = o->subject_buf[0];
		o->subjects[1] = o->subject_buf[1];
		o->subject_count = 2;
	} else if (o->subject_count == 0) {
		snprintf(o->subject_buf[0], sizeof(o->subject_buf[0]), "%s.>", prefix);
		o->subjects[0] = o->subject_buf[0];
		o->subject_count = 1;
	}
	return SUB_OPTIONS_RUN;
}
