#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void cli_usage_error(const struct cli_program *p, const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", p->name);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s\n", p->usage_line);
}

enum cli_step cli_next(const struct cli_program *p, int argc, char **argv, const char *shortopts,
		       const struct option *longopts, int *option)
{
	int c = getopt_long(argc, argv, shortopts, longopts, NULL);
	switch (c) {
	case -1: return CLI_END;
	case 'h': printf("%s\n\n%s", p->usage_line, p->help_text); return CLI_EXIT_OK;
	case 'V': printf("%s %s\n", p->name, EXTRACTOR_VERSION); return CLI_EXIT_OK;
	case '?':
		/* A short option is named by itself, not by its cluster ("-xq"). */
		if (optopt > 0 && optopt < 256) {
			char flag[3] = { '-', (char)optopt, '\0' };
			cli_usage_error(p, "unknown option '%s'", flag);
		} else {
			cli_usage_error(p, "unknown option '%s'", argv[optind - 1]);
		}
		return CLI_USAGE_ERROR;
	case ':': cli_usage_error(p, "option '%s' needs a value", argv[optind - 1]); return CLI_USAGE_ERROR;
	default: *option = c; return CLI_OPTION;
	}
}

bool cli_parse_uint(const char *text, unsigned long min, unsigned long max, unsigned long *out)
{
	if (!isdigit((unsigned char)text[0]))
		return false;
	char *end;
	errno = 0;
	unsigned long v = strtoul(text, &end, 10);
	if (errno || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool cli_parse_seconds(const char *text, double min_s, double max_s, unsigned *ms_out)
{
	char *end;
	errno = 0;
	double v = strtod(text, &end);
	if (errno || end == text || *end != '\0' || !isfinite(v) || v < min_s || v > max_s)
		return false;
	*ms_out = (unsigned)(v * 1000.0 + 0.5);
	return true;
}

bool cli_parse_size(const char *text, uint64_t *out)
{
	if (!isdigit((unsigned char)text[0]))
		return false;
	char *end;
	errno = 0;
	unsigned long long value = strtoull(text, &end, 10);
	if (errno)
		return false;
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: break;
	}
	if (*end == 'i' || *end == 'B')
		end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
	if (*end != '\0' || (shift && value > (UINT64_MAX >> shift)))
		return false;
	*out = (uint64_t)value << shift;
	return true;
}
