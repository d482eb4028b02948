/* ebpf-publisher's command line. */
#ifndef EBPF_PUBLISHER_OPTIONS_H
#define EBPF_PUBLISHER_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PUBLISHER_DEFAULT_NATS_ADDRESS "127.0.0.1:4222"
#define PUBLISHER_MAX_SERVERS 32

struct publisher_options {
	const char *nats_address;   /* as given: "host:port[,host:port...]" */
	char *servers[PUBLISHER_MAX_SERVERS]; /* URLs built from nats_address (malloc'd) */
	int server_count;
	const char *nats_username;
	const char *nats_password;
	const char *nats_password_file;
	const char *nats_creds;
	bool nats_tls;              /* also implied by --nats-tls-ca/-cert/-key, tls:// */
	const char *nats_tls_ca;
	const char *nats_tls_cert;
	const char *nats_tls_key;
	const char *subject_prefix; /* NULL: "btc." + node */
	const char *node_name;      /* NULL: the host name */
	const char *queue_dir;
	unsigned drain_timeout_ms;
	unsigned stats_interval_ms;
	const char *ready_file;
	int log_level;
};

enum options_result { OPTIONS_RUN, OPTIONS_EXIT_OK, OPTIONS_USAGE_ERROR };

/* Fills opts from argv. Prints help/version (OPTIONS_EXIT_OK) or a one-line
 * error and the usage line (OPTIONS_USAGE_ERROR, exit 2) itself. The
 * caller frees with options_free. */
enum options_result options_parse(int argc, char **argv, struct publisher_options *opts);
void options_free(struct publisher_options *opts);

/* The usage line, for errors found after parsing (an invalid prefix). */
const char *options_usage_line(void);

/* "a:1,b:2" -> URLs in opts->servers. Exposed for tests. 0 or -1 with a
 * message in err. */
int options_set_servers(struct publisher_options *opts, const char *list, char *err,
			size_t errlen);

#endif
