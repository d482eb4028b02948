/* ebpf-sub's command line: what the parser makes of good input, and every
 * bad flag run through the real binary (exit 2, one error line, the usage
 * line). */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "proc.h"

#define USAGE "usage: ebpf-sub [options] [SUBJECT...]\n"

static enum sub_options_result parse(struct sub_options *o, int argc, const char **argv)
{
	optind = 0; /* getopt_long keeps state between calls */
	return sub_options_parse(argc, (char **)argv, o);
}

#define PARSE(o, ...)                                                                    \
	({                                                                               \
		const char *argv_[] = { "ebpf-sub", __VA_ARGS__ };                       \
		parse(o, (int)(sizeof(argv_) / sizeof(argv_[0])), argv_);                \
	})

Test(sub_options, defaults)
{
	struct sub_options o;
	const char *argv[] = { "ebpf-sub" };
	cr_assert_eq(parse(&o, 1, argv), SUB_OPTIONS_RUN);
	cr_assert_eq(o.server_count, 1);
	cr_assert_str_eq(o.servers[0], "127.0.0.1:4222");
	cr_assert_eq(o.subject_count, 1);
	cr_assert_str_eq(o.subjects[0], "btc.>");
	cr_assert(!o.stats && !o.subject_key && !o.no_payload && !o.tls);
	cr_assert_eq(o.count, 0);
	cr_assert_eq(o.timeout_s, 0);
	cr_assert_null(o.user);
	cr_assert_null(o.creds);
	sub_options_free(&o);
}

Test(sub_options, every_flag)
{
	struct sub_options o;
	cr_assert_eq(PARSE(&o, "-n", "nats://a:4222, b:4223 ,tls://c", "--nats-user", "u",
			   "--nats-password", "p", "--nats-tls-ca", "/ca", "--nats-tls-cert", "/c",
			   "--nats-tls-key", "/k", "--subject", "--no-payload", "--count", "3",
			   "--timeout", "0.5", "btc.*.mempool.>", "btc.n1.net.inbound_message.inv"),
		     SUB_OPTIONS_RUN);
	cr_assert_eq(o.server_count, 3);
	cr_assert_str_eq(o.servers[0], "nats://a:4222");
	cr_assert_str_eq(o.servers[1], "b:4223");
	cr_assert_str_eq(o.servers[2], "tls://c");
	cr_assert_str_eq(o.user, "u");
	cr_assert_str_eq(o.password, "p");
	cr_assert(o.tls); /* implied by the TLS files */
	cr_assert_str_eq(o.tls_ca, "/ca");
	cr_assert_str_eq(o.tls_cert, "/c");
	cr_assert_str_eq(o.tls_key, "/k");
	cr_assert(o.subject_key && o.no_payload);
	cr_assert_eq(o.count, 3);
	cr_assert_float_eq(o.timeout_s, 0.5, 1e-12);
	/* SUBJECTs replace the default */
	cr_assert_eq(o.subject_count, 2);
	cr_assert_str_eq(o.subjects[0], "btc.*.mempool.>");
	cr_assert_str_eq(o.subjects[1], "btc.n1.net.inbound_message.inv");
	sub_options_free(&o);
}

Test(sub_options, options_after_subjects)
{
	struct sub_options o;
	cr_assert_eq(PARSE(&o, "btc.a.>", "--count", "1", "--", "btc.b.>"), SUB_OPTIONS_RUN);
	cr_assert_eq(o.count, 1);
	cr_assert_eq(o.subject_count, 2);
	cr_assert_str_eq(o.subjects[1], "btc.b.>");
	sub_options_free(&o);
}

Test(sub_options, stats_subjects)
{
	struct sub_options o;
	cr_assert_eq(PARSE(&o, "--stats", "--nats-tls", "--nats-creds", "/x.creds"), SUB_OPTIONS_RUN);
	cr_assert_eq(o.subject_count, 2);
	cr_assert_str_eq(o.subjects[0], "btc.*.extractor.collector_stats");
	cr_assert_str_eq(o.subjects[1], "btc.*.extractor.publisher_stats");
	cr_assert(o.tls);
	cr_assert_str_eq(o.creds, "/x.creds");
	sub_options_free(&o);

	cr_assert_eq(PARSE(&o, "--stats", "--prefix", "mainnet"), SUB_OPTIONS_RUN);
	cr_assert_str_eq(o.subjects[0], "mainnet.*.extractor.collector_stats");
	cr_assert_str_eq(o.subjects[1], "mainnet.*.extractor.publisher_stats");
	sub_options_free(&o);
}

Test(sub_options, prefix_changes_default_subject)
{
	struct sub_options o;
	cr_assert_eq(PARSE(&o, "--prefix", "test.btc"), SUB_OPTIONS_RUN);
	cr_assert_eq(o.subject_count, 1);
	cr_assert_str_eq(o.subjects[0], "test.btc.>");
	sub_options_free(&o);
}

Test(sub_options, subject_validation)
{
	cr_assert(sub_subject_valid("btc.>", true));
	cr_assert(sub_subject_valid(">", true));
	cr_assert(sub_subject_valid("btc.*.net.inbound_message.*", true));
	cr_assert(!sub_subject_valid("btc.>", false));
	cr_assert(!sub_subject_valid("", true));
	cr_assert(!sub_subject_valid("btc..x", true));
	cr_assert(!sub_subject_valid(".btc", true));
	cr_assert(!sub_subject_valid("btc.", true));
	cr_assert(!sub_subject_valid("btc.>.x", true));
	cr_assert(!sub_subject_valid("btc.a>", true));
	cr_assert(!sub_subject_valid("btc.a*", true));
	cr_assert(!sub_subject_valid("btc x", true));
	cr_assert(!sub_subject_valid("btc\tx", true));
}

Test(sub_options, help_and_version, .init = cr_redirect_stdout)
{
	struct sub_options o;
	cr_assert_eq(PARSE(&o, "--version"), SUB_OPTIONS_EXIT_OK);
	sub_options_free(&o);
	fflush(stdout);
	cr_assert_stdout_eq_str("ebpf-sub " EXTRACTOR_VERSION "\n");
}

/* ---- the binary ---- */

static void run_expect(const char *const argv[], int status, const char *out_prefix,
		       const char *err)
{
	char *out = NULL, *errs = NULL;
	int st = proc_run(argv, &out, &errs, 10000);
	cr_expect_eq(st, status, "%s: status %d, stderr: %s", argv[1], st, errs);
	if (out_prefix)
		cr_expect(strncmp(out, out_prefix, strlen(out_prefix)) == 0, "stdout: %s", out);
	else
		cr_expect_str_empty(out, "stdout: %s", out);
	if (err)
		cr_expect_str_eq(errs, err);
	free(out);
	free(errs);
}

static void bad(const char *const argv[], const char *message)
{
	char err[512];
	snprintf(err, sizeof(err), "ebpf-sub: %s\n" USAGE, message);
	run_expect(argv, 2, NULL, err);
}

#define BAD(message, ...)                                                       \
	do {                                                                    \
		const char *argv_[] = { SUB_PATH, __VA_ARGS__, NULL };          \
		bad(argv_, message);                                            \
	} while (0)

Test(sub_binary, help_and_version)
{
	const char *help[] = { SUB_PATH, "--help", NULL };
	run_expect(help, 0, USAGE "\n", "");
	const char *h[] = { SUB_PATH, "-h", NULL };
	run_expect(h, 0, USAGE, "");
	const char *version[] = { SUB_PATH, "-V", NULL };
	run_expect(version, 0, "ebpf-sub " EXTRACTOR_VERSION "\n", "");
}

Test(sub_binary, unknown_options)
{
	BAD("unknown option '--bogus'", "--bogus");
	BAD("unknown option '-x'", "-x");
	BAD("option '--stats=1' takes no value", "--stats=1");
}

Test(sub_binary, missing_values)
{
	BAD("option '--count' needs a value", "--count");
	BAD("option '--timeout' needs a value", "btc.>", "--timeout");
	BAD("option '-n' needs a value", "-n");
	BAD("option '--nats-creds' needs a value", "--nats-creds");
}

Test(sub_binary, bad_values)
{
	BAD("--count: '0' is not a positive whole number", "--count", "0");
	BAD("--count: '-1' is not a positive whole number", "--count", "-1");
	BAD("--count: '3x' is not a positive whole number", "--count", "3x");
	BAD("--count: '99999999999999999999' is not a positive whole number", "--count",
	    "99999999999999999999");
	BAD("--timeout: '0' is not a positive number of seconds", "--timeout", "0");
	BAD("--timeout: 'soon' is not a positive number of seconds", "--timeout", "soon");
	BAD("--timeout: 'nan' is not a positive number of seconds", "--timeout", "nan");
	BAD("--timeout: '-5' is not a positive number of seconds", "--timeout", "-5");
	BAD("--nats-address: empty server in 'a,,b'", "-n", "a,,b");
	BAD("--nats-address: empty server in ''", "--nats-address", "");
	BAD("--nats-user needs a non-empty value", "--nats-user", "");
	BAD("--prefix: 'btc.>' is not a NATS subject prefix", "--prefix", "btc.>");
	BAD("--prefix: 'a..b' is not a NATS subject prefix", "--prefix", "a..b");
}

Test(sub_binary, bad_combinations)
{
	BAD("--nats-password needs --nats-user", "--nats-password", "p");
	BAD("--nats-creds and --nats-user exclude each other", "--nats-creds", "/c", "--nats-user",
	    "u");
	BAD("--nats-tls-cert and --nats-tls-key go together", "--nats-tls-cert", "/c");
	BAD("--nats-tls-cert and --nats-tls-key go together", "--nats-tls-key", "/k");
	BAD("--stats and SUBJECT arguments exclude each other", "--stats", "btc.>");
	BAD("--prefix applies to the default subjects only; give full SUBJECTs instead", "--prefix",
	    "x", "btc.>");
}

Test(sub_binary, bad_subjects)
{
	BAD("'btc..x' is not a NATS subject filter", "btc..x");
	BAD("'btc.>.x' is not a NATS subject filter", "btc.>.x");
	BAD("'btc x' is not a NATS subject filter", "btc x");
	BAD("'' is not a NATS subject filter", "");
}

Test(sub_binary, unreadable_files_exit_1)
{
	const char *argv[] = { SUB_PATH, "--nats-creds", "/nonexistent/x.creds", NULL };
	run_expect(argv, 1, NULL,
		   "ebpf-sub: error: --nats-creds '/nonexistent/x.creds': No such file or directory\n");
}
