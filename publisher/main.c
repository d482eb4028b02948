/* ebpf-publisher: the unprivileged half. Reads the shared-memory queue the
 * collector writes and publishes every record on NATS (one libuv loop;
 * nats.c through its libuv adapter). See pump.h for the confirm/rewind
 * logic and nats_link.h for the connection. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "options.h"
#include "pump.h"

#define EXIT_USAGE 2

int main(int argc, char **argv)
{
	struct publisher_options opts;
	enum options_result r = options_parse(argc, argv, &opts);
	if (r != OPTIONS_RUN) {
		options_free(&opts);
		return r == OPTIONS_EXIT_OK ? 0 : EXIT_USAGE;
	}
	log_init("ebpf-publisher", (enum log_level)opts.log_level);
	/* a write to a socket the server closed must be an error, not death */
	signal(SIGPIPE, SIG_IGN);

	int rc = publisher_run(&opts);

	options_free(&opts);
	return rc;
}
