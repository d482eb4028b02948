/* Logging to stderr: one line per message, "<program>: <level>: <text>". */
#ifndef EBPF_EXTRACTOR_LOG_H
#define EBPF_EXTRACTOR_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3, LOG_TRACE = 4 };

/* Set once at start, before any thread exists. */
void log_init(const char *program, enum log_level level);
/* Parses "error", "warn", "info", "debug", "trace" (any case); -1 if unknown. */
int log_level_parse(const char *name);
enum log_level log_get_level(void);

void log_write(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)

#endif
