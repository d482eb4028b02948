/* e2e-pub: the end-to-end benchmark's NATS baseline (bench/e2e/run.sh).
 *
 * Publishes COUNT messages of SIZE bytes as fast as it can on SUBJECT with
 * plain nats.c (natsConnection_Publish, then one flush): the NATS path alone
 * (this client, nats-server, e2e-sub), measured in the same run as the real
 * pipeline. Each message is a MessagePack map that starts like a queue
 * record (stream_id, seq from 1, time_ns), padded with a bin to SIZE bytes,
 * so e2e-sub checks and counts it exactly as it does the extractor's.
 *
 *   e2e-pub --url URL --subject S --count N --size BYTES
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

static uint8_t *put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

static uint8_t *put_str(uint8_t *p, const char *s)
{
	size_t n = strlen(s);
	*p++ = (uint8_t)(0xa0 | n);
	memcpy(p, s, n);
	return p + n;
}

int main(int argc, char **argv)
{
	const char *url = NULL, *subject = NULL;
	long long count = 0, size = 0;
	natsConnection *nc = NULL;
	natsOptions *opts = NULL;
	natsStatus s;
	uint8_t *buf;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--url"))
			url = argv[i + 1];
		else if (!strcmp(argv[i], "--subject"))
			subject = argv[i + 1];
		else if (!strcmp(argv[i], "--count"))
			count = atoll(argv[i + 1]);
		else if (!strcmp(argv[i], "--size"))
			size = atoll(argv[i + 1]);
	}
	if (!url || !subject || count <= 0 || size < 64) {
		fprintf(stderr, "usage: e2e-pub --url URL --subject S --count N --size BYTES (>= 64)\n");
		return 2;
	}
	if (!(buf = calloc(1, (size_t)size))) {
		perror("e2e-pub");
		return 1;
	}
	s = natsOptions_Create(&opts);
	if (s == NATS_OK)
		s = natsOptions_SetURL(opts, url);
	if (s == NATS_OK)
		s = natsOptions_SetIOBufSize(opts, 1 << 20);
	if (s == NATS_OK)
		s = natsConnection_Connect(&nc, opts);
	for (long long k = 1; s == NATS_OK && k <= count; k++) {
		struct timespec t;
		uint8_t *p = buf;
		uint64_t pad;

		clock_gettime(CLOCK_REALTIME, &t);
		*p++ = 0x84; /* map of 4 */
		p = put_str(p, "stream_id");
		*p++ = 0xcf;
		p = put_be(p, 0x0123456789abcdefULL, 8);
		p = put_str(p, "seq");
		*p++ = 0xcf;
		p = put_be(p, (uint64_t)k, 8);
		p = put_str(p, "time_ns");
		*p++ = 0xcf;
		p = put_be(p, (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec, 8);
		p = put_str(p, "pad");
		pad = (uint64_t)size - (uint64_t)(p - buf) - 5;
		*p++ = 0xc6; /* bin 32 */
		p = put_be(p, pad, 4);
		s = natsConnection_Publish(nc, subject, buf, (int)size);
	}
	if (s == NATS_OK)
		s = natsConnection_FlushTimeout(nc, 60000);
	if (s != NATS_OK) {
		fprintf(stderr, "e2e-pub: %s: %s\n", url, natsStatus_GetText(s));
		return 1;
	}
	natsConnection_Destroy(nc);
	natsOptions_Destroy(opts);
	free(buf);
	return 0;
}
