/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

enum { LINE_MAX_BYTES = 4096 };

static const char *log_program = "rfd";
static enum log_level log_current = LOG_LEVEL_INFO;

static const char *const level_names[] = {
    [LOG_LEVEL_ERROR] = "error",
    [LOG_LEVEL_WARN] = "warn",
    [LOG_LEVEL_INFO] = "info",
    [LOG_LEVEL_DEBUG] = "debug",
};

void
log_init(const char *program, enum log_level level)
{
	log_program = program;
	log_current = level;
}

void
log_raise_level(void)
{
	if (log_current < LOG_LEVEL_DEBUG)
		log_current++;
}

bool
log_enabled(enum log_level level)
{
	return level <= log_current;
}

/* Write all of @len bytes, retrying after signals; a failing stderr loses the line. */
static void
write_line(const char *line, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, line, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		line += n;
		len -= (size_t)n;
	}
}

void
log_printf(enum log_level level, const char *fmt, ...)
{
	char line[LINE_MAX_BYTES];
	int saved_errno = errno;
	size_t used;
	va_list ap;
	int n;

	if (!log_enabled(level))
		return;
	n = snprintf(line, sizeof(line), "%s: %s: ", log_program, level_names[level]);
	used = n > 0 ? (size_t)n : 0;
	if (used < sizeof(line) - 1) {
		va_start(ap, fmt);
		n = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
		va_end(ap);
		if (n > 0)
			used += (size_t)n;
	}
	/* A long event is cut short; its line still ends with a newline. */
	if (used > sizeof(line) - 2)
		used = sizeof(line) - 2;
	line[used++] = '\n';
	write_line(line, used);
	errno = saved_errno;
}
