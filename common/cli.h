/* Command-line helpers shared by ebpf-collector, ebpf-publisher and
 * ebpf-extractor: the same usage errors (exit 2), -h/-V handling and value
 * parsing in every program. */
#ifndef EBPF_EXTRACTOR_CLI_H
#define EBPF_EXTRACTOR_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

struct cli_program {
	const char *name;       /* "ebpf-collector" */
	const char *usage_line; /* "usage: ebpf-collector ..." */
	const char *help_text;  /* printed after the usage line by -h */
};

/* "<name>: <fmt with arg>" and the usage line, on stderr. */
void cli_usage_error(const struct cli_program *p, const char *fmt, const char *arg);

enum cli_step {
	CLI_OPTION,      /* *option and optarg hold the next option */
	CLI_END,         /* no more options (optind: the first operand) */
	CLI_EXIT_OK,     /* -h or -V: printed; exit 0 */
	CLI_USAGE_ERROR, /* unknown option or missing value: printed; exit 2 */
};

/* One getopt_long step. Call with optind = 1 and opterr = 0 before the
 * first; shortopts must start with ':' and hold "hV". */
enum cli_step cli_next(const struct cli_program *p, int argc, char **argv, const char *shortopts,
		       const struct option *longopts, int *option);

/* Decimal integer in [min, max], digits only. */
bool cli_parse_uint(const char *text, unsigned long min, unsigned long max, unsigned long *out);
/* Seconds, decimals allowed ("2", "0.5"), in [min_s, max_s], as ms. */
bool cli_parse_seconds(const char *text, double min_s, double max_s, unsigned *ms_out);
/* "65536", "64K", "256M", "1G", "256MiB" -> bytes; false on garbage or overflow. */
bool cli_parse_size(const char *text, uint64_t *out);

#endif
