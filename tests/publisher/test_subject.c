/* subject_token, the subject prefix rule and encoder_init. */
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

static bool valid_token(const char *t)
{
	if (!*t)
		return false;
	for (; *t; t++)
		if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') ||
		      (*t >= '0' && *t <= '9') || *t == '_' || *t == '-'))
			return false;
	return true;
}

static void token_is(const char *in, const char *want)
{
	char out[64];
	memset(out, '#', sizeof(out));
	subject_token(in, out, sizeof(out));
	cr_assert_str_eq(out, want, "subject_token(\"%s\")", in ? in : "(null)");
	cr_assert(valid_token(out));
}

Test(subject_token, cases)
{
	token_is("inv", "inv");
	token_is("a.b", "a_b");
	token_is("two words", "two_words");
	token_is("", "_");
	token_is(NULL, "_");
	token_is("sendaddrv2", "sendaddrv2");
	token_is("\x01\xff", "__");
	token_is("*", "_");
	token_is(">", "_");
	token_is("a-B_9", "a-B_9");
	token_is("caf\xc3\xa9", "caf__"); /* one byte, one '_' */
	token_is("\t\r\n", "___");
}

Test(subject_token, long_text_is_cut_and_stays_valid)
{
	char in[301];
	for (int i = 0; i < 300; i++)
		in[i] = (i % 7 == 3) ? '.' : (char)('a' + i % 26);
	in[300] = 0;
	char out[256];
	subject_token(in, out, sizeof(out));
	cr_assert_eq(strlen(out), 255);
	cr_assert(valid_token(out));
	for (int i = 0; i < 255; i++)
		cr_assert_eq(out[i], in[i] == '.' ? '_' : in[i]);

	/* every output size from 2 up: exactly what fits, always a token */
	for (size_t n = 2; n < 40; n++) {
		char small[40];
		memset(small, '#', sizeof(small));
		subject_token(in, small, n);
		cr_assert_eq(strlen(small), n - 1);
		cr_assert(valid_token(small));
		cr_assert_eq(small[n], '#', "nothing written past outlen");
	}
	char one[2] = { '#', '#' };
	subject_token("abc", one, 1);
	cr_assert_eq(one[0], 0);
	cr_assert_eq(one[1], '#');
	subject_token("abc", one, 0);
	cr_assert_eq(one[1], '#');
	subject_token("", one, 2);
	cr_assert_str_eq(one, "_");
}

static void prefix_ok(const char *p)
{
	char err[ENCODE_ERROR_LEN] = "";
	cr_assert_eq(subject_prefix_check(p, err), 0, "%s: %s", p, err);
	struct encoder e;
	cr_assert_eq(encoder_init(&e, "n", p, err), 0, "%s", err);
	cr_assert_str_eq(e.prefix, p);
	encoder_free(&e);
}

static void prefix_bad(const char *p, const char *want)
{
	char err[ENCODE_ERROR_LEN] = "";
	cr_assert_eq(subject_prefix_check(p, err), -1, "%s accepted", p);
	cr_assert_str_eq(err, want);
	struct encoder e;
	char err2[ENCODE_ERROR_LEN] = "";
	cr_assert_eq(encoder_init(&e, "n", p, err2), -1);
	cr_assert_str_eq(err2, want);
	encoder_free(&e); /* harmless after a failed init */
}

Test(subject_prefix, valid)
{
	prefix_ok("btc");
	prefix_ok("btc.node1");
	prefix_ok("a.b.c.d-e_f.G9");
	char max[SUBJECT_PREFIX_MAX + 1];
	memset(max, 'p', SUBJECT_PREFIX_MAX);
	max[SUBJECT_PREFIX_MAX] = 0;
	prefix_ok(max);
}

#define RULE "a prefix is tokens of [A-Za-z0-9_-] separated by single dots, like btc.node1"

Test(subject_prefix, invalid)
{
	prefix_bad("", "invalid --subject-prefix \"\": it is empty; " RULE);
	prefix_bad(".btc", "invalid --subject-prefix \".btc\": empty token at byte 0; " RULE);
	prefix_bad("btc.", "invalid --subject-prefix \"btc.\": empty token at byte 3; " RULE);
	prefix_bad("btc..n", "invalid --subject-prefix \"btc..n\": empty token at byte 4; " RULE);
	prefix_bad(".", "invalid --subject-prefix \".\": empty token at byte 0; " RULE);
	prefix_bad("btc.*", "invalid --subject-prefix \"btc.*\": wildcard '*' at byte 4 (a prefix "
			    "names one subject, not a pattern); " RULE);
	prefix_bad("btc.>", "invalid --subject-prefix \"btc.>\": wildcard '>' at byte 4 (a prefix "
			    "names one subject, not a pattern); " RULE);
	prefix_bad("btc node", "invalid --subject-prefix \"btc node\": character ' ' at byte 3; " RULE);
	prefix_bad("btc\tx", "invalid --subject-prefix \"btc?x\": character \\x09 at byte 3; " RULE);
	prefix_bad("b\xc3\xa9", "invalid --subject-prefix \"b??\": character \\xc3 at byte 1; " RULE);
	char big[SUBJECT_PREFIX_MAX + 2];
	memset(big, 'p', SUBJECT_PREFIX_MAX + 1);
	big[SUBJECT_PREFIX_MAX + 1] = 0;
	char want[ENCODE_ERROR_LEN];
	snprintf(want, sizeof(want), "invalid --subject-prefix \"%.64s...\": 256 bytes, at most 255",
		 big);
	prefix_bad(big, want);
	char err[ENCODE_ERROR_LEN];
	cr_assert_eq(subject_prefix_check(NULL, err), -1);
	cr_assert_eq(subject_prefix_check("a b", NULL), -1, "err may be NULL");
}

Test(encoder_init, default_prefix_is_btc_and_the_host_name)
{
	char host[256] = "";
	cr_assert_eq(gethostname(host, sizeof(host)), 0);
	host[255] = 0;
	char token[256];
	subject_token(host, token, sizeof(token));
	char want[300];
	snprintf(want, sizeof(want), "btc.%s", token);

	struct encoder e;
	char err[ENCODE_ERROR_LEN];
	cr_assert_eq(encoder_init(&e, NULL, NULL, err), 0, "%s", err);
	cr_assert_str_eq(e.node, host);
	cr_assert_str_eq(e.prefix, want);
	cr_assert_eq(e.pid, (uint32_t)getpid());
	/* publisher stats carry the node */
	struct publisher_stats st = { 0 };
	cr_assert_eq(encode_publisher_stats(&e, &st, 1), ENCODE_OK);
	msgpack_unpacked u;
	const msgpack_object *m = dec(&e, &u);
	cr_assert(obj_is_str(map_get(m, "node"), host));
	msgpack_unpacked_destroy(&u);
	encoder_free(&e);
}

Test(encoder_init, node_name_is_mapped_into_the_prefix_only)
{
	struct encoder e;
	char err[ENCODE_ERROR_LEN];
	cr_assert_eq(encoder_init(&e, "my.node 1", NULL, err), 0, "%s", err);
	cr_assert_str_eq(e.prefix, "btc.my_node_1");
	cr_assert_str_eq(e.node, "my.node 1");
	encoder_free(&e);

	cr_assert_eq(encoder_init(&e, "my.node", "custom.prefix", err), 0, "%s", err);
	cr_assert_str_eq(e.prefix, "custom.prefix");
	cr_assert_str_eq(e.node, "my.node");
	struct ev_mempool_added b = { 0 };
	struct rec r = REC_EVENT(TP_MEMPOOL_ADDED, 0, &b);
	cr_assert_eq(encode_record(&e, 1, 1, r.data, r.len, err), ENCODE_OK);
	cr_assert_str_eq(e.subject, "custom.prefix.mempool.added");
	rec_free(&r);
	encoder_free(&e);
}

Test(encoder_init, bad_node_names)
{
	struct encoder e;
	char err[ENCODE_ERROR_LEN];
	cr_assert_eq(encoder_init(&e, "", NULL, err), -1);
	cr_assert_str_eq(err, "the node name is empty: give --node-name NAME");
	char big[300];
	memset(big, 'n', 299);
	big[299] = 0;
	cr_assert_eq(encoder_init(&e, big, NULL, err), -1);
	cr_assert_str_eq(err, "the node name is 299 bytes long, at most 255");
	char max[256];
	memset(max, 'n', 255);
	max[255] = 0;
	cr_assert_eq(encoder_init(&e, max, NULL, err), 0, "%s", err);
	cr_assert_eq(strlen(e.prefix), 255, "btc. + a token cut to fit");
	cr_assert_eq(subject_prefix_check(e.prefix, err), 0, "%s", err);
	/* the longest prefix still leaves room for the longest subject */
	struct ev_net_message m = { .size = 0 };
	memset(m.msg_type, 'z', MSG_TYPE_LEN - 1);
	struct rec r = rec_build(RECORD_EVENT, TP_NET_OUTBOUND_MESSAGE, 0, &m, sizeof(m), NULL, 0);
	cr_assert_eq(encode_record(&e, 1, 1, r.data, r.len, err), ENCODE_OK, "%s", err);
	cr_assert_eq(strlen(e.subject), 255 + strlen(".net.outbound_message.") + MSG_TYPE_LEN - 1);
	rec_free(&r);
	encoder_free(&e);
}
