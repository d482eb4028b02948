/* ebpf-extractor's command line: peer-observer's flags are accepted and go
 * to the right child (checked with --dry-run, which prints both command
 * lines), bad flags exit 2 with one line and the usage line. Needs no
 * privileges, except the user checks (root only). */
#include <criterion/criterion.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

static const char *const launcher = LAUNCHER_PATH;
static const char usage_prefix[] = "usage: ebpf-extractor --bitcoind-path PATH";

/* As root the launcher runs the collector as ebpf-collector: without that
 * user (scripts/install-deps.sh creates it) it refuses to start. */
static void require_collector_user_if_root(void)
{
	if (geteuid() != 0 || getpwnam("ebpf-collector"))
		return;
	const char *require = getenv("REQUIRE_BPF");
	if (require && strcmp(require, "1") == 0)
		cr_assert_fail("no user ebpf-collector: run scripts/install-deps.sh (it creates it)");
	fprintf(stderr, "*** SKIPPED: no user ebpf-collector (scripts/install-deps.sh) ***\n");
	cr_skip_test("no user ebpf-collector");
}

/* The line of text starting with prefix (copied), or "" */
static void line_of(const char *text, const char *prefix, char *out, size_t len)
{
	out[0] = '\0';
	for (const char *p = text; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		if (strncmp(p, prefix, strlen(prefix)) == 0) {
			snprintf(out, len, "%.*s", (int)n, p);
			return;
		}
		p = nl ? nl + 1 : NULL;
	}
}

/* The command line printed by --dry-run under "collector:" / "publisher:". */
static void command_of(const char *out, const char *who, char *cmd, size_t len)
{
	const char *p = strstr(out, who);
	cr_assert_not_null(p, "no '%s' in --dry-run output:\n%s", who, out);
	p = strchr(p, '\n');
	cr_assert_not_null(p);
	p++;
	const char *nl = strchr(p, '\n');
	snprintf(cmd, len, "%.*s ", nl ? (int)(nl - p) : (int)strlen(p), p);
}

static void dry_run(const char *const args[], char *collector, char *publisher, size_t len)
{
	require_collector_user_if_root();
	const char *argv[64] = { launcher };
	int n = 1;
	for (int i = 0; args[i]; i++)
		argv[n++] = args[i];
	argv[n++] = "--dry-run";
	argv[n] = NULL;
	char *out = NULL, *err = NULL;
	int st = proc_run(argv, &out, &err, 20000);
	cr_assert_eq(st, 0, "--dry-run exited %d; stderr:\n%s", st, err);
	command_of(out, "collector:", collector, len);
	command_of(out, "publisher:", publisher, len);
	free(out);
	free(err);
}

static void contains(const char *hay, const char *needle)
{
	cr_expect(strstr(hay, needle) != NULL, "'%s' not in: %s", needle, hay);
}

static void lacks(const char *hay, const char *needle)
{
	cr_expect(strstr(hay, needle) == NULL, "'%s' unexpectedly in: %s", needle, hay);
}

Test(launcher_flags, help_and_version)
{
	char *out = NULL, *err = NULL;
	const char *h[] = { launcher, "-h", NULL };
	cr_assert_eq(proc_run(h, &out, &err, 10000), 0);
	cr_expect(strncmp(out, usage_prefix, strlen(usage_prefix)) == 0, "%s", out);
	contains(out, "--no-idle-exit");
	contains(out, "--publisher-user");
	contains(out, "Exit status: 0 stopped by a signal; 1 could not start");
	contains(out, "3 ebpf-collector kept failing; 4 ebpf-publisher kept failing");
	cr_expect_str_empty(err);
	free(out);
	free(err);
	const char *v[] = { launcher, "--version", NULL };
	cr_assert_eq(proc_run(v, &out, &err, 10000), 0);
	cr_expect(strncmp(out, "ebpf-extractor ", 15) == 0, "%s", out);
	free(out);
	free(err);
}

/* Every flag of peer-observer's ebpf-extractor, short forms. */
Test(launcher_flags, peer_observer_short_flags)
{
	char col[4096], pub[4096];
	const char *args[] = { "-n", "127.0.0.1:4333", "-u", "alice", "-p", "secret", "-b",
			       "/opt/bitcoind", "--bitcoind-pid", "4242", "--no-p2pmsg-tracepoints",
			       "--no-connection-tracepoints", "--no-mempool-tracepoints",
			       "--no-validation-tracepoints", "-l", "debug", "--libbpf-debug", "-i",
			       NULL };
	dry_run(args, col, pub, sizeof(col));
	contains(col, "--bitcoind-path /opt/bitcoind ");
	contains(col, "--bitcoind-pid 4242 ");
	contains(col, "--no-p2pmsg-tracepoints --no-connection-tracepoints "
		      "--no-mempool-tracepoints --no-validation-tracepoints ");
	contains(col, "--log-level debug ");
	contains(col, "--libbpf-debug ");
	contains(col, "--ready-file ");
	lacks(col, "nats");
	lacks(col, "idle");
	contains(pub, "--nats-address 127.0.0.1:4333 ");
	contains(pub, "--nats-username alice --nats-password secret ");
	contains(pub, "--log-level debug ");
	contains(pub, "--ready-file ");
	lacks(pub, "bitcoind");
	lacks(pub, "tracepoints");
	lacks(pub, "idle");
}

/* Long forms, -a (peer-observer's newer short name), ours, relative paths
 * made absolute (the children run in /). */
Test(launcher_flags, long_flags_and_ours)
{
	char col[4096], pub[4096], cwd[1024];
	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	const char *args[] = { "--nats-address", "nats://a:1,b:2", "--bitcoind-path", "bin/bitcoind",
			       "--bitcoind-pid-file", "data/bitcoind.pid", "--log-level", "warn",
			       "--no-idle-exit", "--utxocache-tracepoints",
			       "--coin-selection-tracepoints", "--queue", "/dev/shm/q1",
			       "--queue-size", "1G", "--ring-pages", "mempool=2048", "--ring-pages",
			       "p2pmsg=4096", "--attach-mode", "multi", "--stats-interval", "2",
			       "--nats-password-file", "/etc/pw", "--nats-user", "bob",
			       "--subject-prefix", "btc.x", "--node-name", "x", "--drain-timeout",
			       "3.5", "--nats-tls-ca", "/ca.pem", NULL };
	dry_run(args, col, pub, sizeof(col));
	char expect[2048];
	snprintf(expect, sizeof(expect), "--bitcoind-path %s/bin/bitcoind ", cwd);
	contains(col, expect);
	snprintf(expect, sizeof(expect), "--bitcoind-pid-file %s/data/bitcoind.pid ", cwd);
	contains(col, expect);
	contains(col, "--utxocache-tracepoints --coin-selection-tracepoints --queue /dev/shm/q1 "
		      "--queue-size 1G --ring-pages mempool=2048 --ring-pages p2pmsg=4096 "
		      "--attach-mode multi --stats-interval 2 ");
	contains(col, "--log-level warn ");
	contains(pub, "--nats-address nats://a:1,b:2 ");
	contains(pub, "--queue /dev/shm/q1 ");
	contains(pub, "--stats-interval 2 ");
	contains(pub, "--nats-password-file /etc/pw --nats-username bob ");
	contains(pub, "--subject-prefix btc.x --node-name x --drain-timeout 3.5 ");
	contains(pub, "--nats-tls-ca /ca.pem ");
	lacks(pub, "ring-pages");
	lacks(col, "drain");

	const char *alias[] = { "-a", "127.0.0.1:9", "-b", "/b", NULL };
	dry_run(alias, col, pub, sizeof(col));
	contains(pub, "--nats-address 127.0.0.1:9 ");
}

Test(launcher_flags, privileges_in_dry_run)
{
	require_collector_user_if_root();
	char *out = NULL, *err = NULL;
	const char *argv[] = { launcher, "-b", "/b", "--dry-run", NULL };
	cr_assert_eq(proc_run(argv, &out, &err, 20000), 0, "%s", err);
	char col[512], pub[512];
	line_of(out, "collector:", col, sizeof(col));
	line_of(out, "publisher:", pub, sizeof(pub));
	if (geteuid() == 0) {
		contains(col, "(ebpf-collector)");
		contains(col, "capabilities cap_perfmon,cap_bpf");
		contains(pub, "(nobody)");
		contains(pub, "groups -, capabilities none");
	} else {
		contains(col, "(unchanged), capabilities inherited");
		contains(pub, "(unchanged), capabilities none");
	}
	free(out);
	free(err);
}

/* exit 2, nothing on stdout, exactly two lines on stderr: the error and
 * the usage line. */
static void bad(const char *const args[], const char *message)
{
	const char *argv[64] = { launcher };
	int n = 1;
	for (int i = 0; args[i]; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	char *out = NULL, *err = NULL;
	int st = proc_run(argv, &out, &err, 20000);
	cr_expect_eq(st, 2, "%s: exit %d, stderr:\n%s", args[0], st, err);
	cr_expect_str_empty(out, "%s: stdout: %s", args[0], out);
	char expect[512];
	snprintf(expect, sizeof(expect), "ebpf-extractor: %s", message);
	cr_expect(strncmp(err, expect, strlen(expect)) == 0, "stderr:\n%s\nexpected first:\n%s",
		  err, expect);
	const char *second = strchr(err, '\n');
	cr_expect(second && strncmp(second + 1, usage_prefix, strlen(usage_prefix)) == 0,
		  "no usage line second:\n%s", err);
	int lines = 0;
	for (const char *p = err; *p; p++)
		lines += *p == '\n';
	cr_expect_eq(lines, 2, "stderr has %d lines:\n%s", lines, err);
	free(out);
	free(err);
}

Test(launcher_flags, bad_flags_exit_2)
{
	bad((const char *[]){ "--bogus", "-b", "/b", NULL }, "unknown option '--bogus'");
	bad((const char *[]){ "-b", "/b", "-x", NULL }, "unknown option '-x'");
	bad((const char *[]){ "-b", NULL }, "option '-b' needs a value");
	bad((const char *[]){ "-b", "/b", "--nats-address", NULL },
	    "option '--nats-address' needs a value");
	bad((const char *[]){ "-n", "127.0.0.1:4222", NULL }, "--bitcoind-path is required");
	bad((const char *[]){ "-b", "/b", "-l", "loud", NULL },
	    "--log-level: 'loud' is not error, warn, info, debug or trace");
	bad((const char *[]){ "-b", "/b", "--bitcoind-pid", "12x", NULL },
	    "--bitcoind-pid: '12x' is not a process id");
	bad((const char *[]){ "-b", "/b", "--bitcoind-pid", "1", "--bitcoind-pid-file", "/p", NULL },
	    "--bitcoind-pid and --bitcoind-pid-file exclude each other");
	bad((const char *[]){ "-b", "/b", "--attach-mode", "kprobe", NULL },
	    "--attach-mode: 'kprobe' is not auto, multi or perf");
	bad((const char *[]){ "-b", "/b", "--ring-pages", "wallet=8", NULL },
	    "--ring-pages: unknown group 'wallet'");
	bad((const char *[]){ "-b", "/b", "--ring-pages", "mempool=3", NULL },
	    "--ring-pages: '3' is not a power of two");
	bad((const char *[]){ "-b", "/b", "--queue-size", "100M", NULL },
	    "--queue-size: '100M' is not a power of two");
	bad((const char *[]){ "-b", "/b", "--drain-timeout", "soon", NULL },
	    "--drain-timeout: 'soon' is not a number of seconds");
	bad((const char *[]){ "-b", "/b", "--stats-interval", "0", NULL },
	    "--stats-interval: '0' is not a whole number of seconds");
	bad((const char *[]){ "-b", "/b", "-p", "pw", NULL }, "a NATS password needs --nats-username");
	bad((const char *[]){ "-b", "/b", "-u", "alice", NULL },
	    "--nats-username needs --nats-password or --nats-password-file");
	bad((const char *[]){ "-b", "/b", "extra", NULL }, "unexpected argument 'extra'");
}

Test(launcher_flags, users)
{
	if (geteuid() != 0) {
		fprintf(stderr, "*** SKIPPED launcher_flags::users: needs root ***\n");
		cr_skip_test("needs root");
	}
	char *out = NULL, *err = NULL;
	const char *missing[] = { launcher, "-b", "/b", "--collector-user", "no-such-user-x",
				  "--dry-run", NULL };
	cr_expect_eq(proc_run(missing, &out, &err, 20000), 1, "%s", err);
	contains(err, "ebpf-extractor: error: no user 'no-such-user-x' for ebpf-collector: create "
		      "it (useradd --system --no-create-home --shell /usr/sbin/nologin "
		      "no-such-user-x, as scripts/install-deps.sh does) or pass --collector-user USER");
	free(out);
	free(err);
	const char *missing_pub[] = { launcher, "-b", "/b", "--publisher-user", "no-such-user-y",
				      "--dry-run", NULL };
	cr_expect_eq(proc_run(missing_pub, &out, &err, 20000), 1, "%s", err);
	contains(err, "no user 'no-such-user-y' for ebpf-publisher");
	contains(err, "--publisher-user USER");
	free(out);
	free(err);
	const char *same[] = { launcher, "-b", "/b", "--collector-user", "nobody", "--dry-run", NULL };
	cr_expect_eq(proc_run(same, &out, &err, 20000), 2, "%s", err);
	contains(err, "--collector-user and --publisher-user are the same uid");
	contains(err, usage_prefix);
	free(out);
	free(err);
	const char *root[] = { launcher, "-b", "/b", "--publisher-user", "root", "--dry-run", NULL };
	cr_expect_eq(proc_run(root, &out, &err, 20000), 2, "%s", err);
	contains(err, "--publisher-user root is root");
	free(out);
	free(err);
}

/* A value only the child can judge (a queue below the collector's 64 KiB
 * minimum): the collector exits 2, and so does the launcher, at once, with
 * the usage line; the publisher is stopped. No privileges needed: the
 * collector refuses before it loads anything. */
Test(launcher_flags, child_refuses_its_arguments)
{
	require_collector_user_if_root();
	char *out = NULL, *err = NULL;
	char queue[64];
	snprintf(queue, sizeof(queue), "/dev/shm/ebpf-launcher-flags-%d", (int)getpid());
	const char *argv[] = { launcher, "-b", "/bin/true", "-n", "127.0.0.1:1", "--queue", queue,
			       "--queue-size", "4K", NULL };
	int st = proc_run(argv, &out, &err, 30000);
	cr_expect_eq(st, 2, "exit %d; stderr:\n%s", st, err);
	contains(err, "ebpf-collector: --queue-size: '4K' is not a power of two between 64K and 64G");
	contains(err, "exited with status 2: it refused its arguments; stopping");
	contains(err, usage_prefix);
	lacks(err, "starting it again");
	free(out);
	free(err);
	rmdir(queue);
}
