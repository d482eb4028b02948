#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

/* Written once by log_init before threads start, read-only afterwards. */
static const char *log_program = "ebpf-extractor";
static enum log_level log_threshold = LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug", "trace" };

void log_init(const char *program, enum log_level level)
{
	log_program = program;
	log_threshold = level;
}

enum log_level log_get_level(void)
{
	return log_threshold;
}

int log_level_parse(const char *name)
{
	for (int i = 0; i < (int)(sizeof(level_names) / sizeof(level_names[0])); i++)
		if (strcasecmp(name, level_names[i]) == 0)
			return i;
	if (strcasecmp(name, "warning") == 0)
		return LOG_WARN;
	return -1;
}

void log_write(enum log_level level, const char *fmt, ...)
{
	if (level > log_threshold)
		return;
	char line[2048];
	int n = snprintf(line, sizeof(line), "%s: %s: ", log_program, level_names[level]);
	va_list ap;
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One fputs of a whole line keeps lines from two threads apart. */
	fprintf(stderr, "%s\n", line);
}
