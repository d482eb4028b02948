/* ebpf-sub's command line. */
#ifndef EBPF_SUB_OPTIONS_H
#define EBPF_SUB_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#define SUB_DEFAULT_ADDRESS "127.0.0.1:4222"
#define SUB_DEFAULT_PREFIX "btc"
#define SUB_MAX_SUBJECTS 64
#define SUB_MAX_SERVERS 32

struct sub_options {
	/* --nats-address split at commas (pointers into addr_copy). */
	char *addr_copy;
	const char *servers[SUB_MAX_SERVERS];
	int server_count;
	const char *user, *password, *creds;
	bool tls;
	const char *tls_ca, *tls_cert, *tls_key;
	const char *prefix; /* NULL: SUB_DEFAULT_PREFIX */
	bool stats;
	bool subject_key;
	bool no_payload;
	uint64_t count;      /* 0: no limit */
	double timeout_s;    /* 0: none */
	/* What to subscribe to: the SUBJECT arguments, or the default
	 * (PREFIX.>), or the two stats subjects (strings in subject_buf). */
	const char *subjects[SUB_MAX_SUBJECTS];
	int subject_count;
	char subject_buf[2][300];
};

enum sub_options_result { SUB_OPTIONS_RUN, SUB_OPTIONS_EXIT_OK, SUB_OPTIONS_USAGE_ERROR };

/* Fills o from argv. Prints help or version (SUB_OPTIONS_EXIT_OK), or a
 * one-line error and the usage line to stderr (SUB_OPTIONS_USAGE_ERROR:
 * exit 2). Free with sub_options_free. */
enum sub_options_result sub_options_parse(int argc, char **argv, struct sub_options *o);
void sub_options_free(struct sub_options *o);

/* A NATS subject (or subscription filter when wildcards is true): tokens
 * separated by single dots, no empty token, no whitespace or control
 * character; '*' only as a whole token, '>' only as the whole last one. */
bool sub_subject_valid(const char *s, bool wildcards);

extern const char sub_usage_line[];

#endif
