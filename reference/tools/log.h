/* SPDX-License-Identifier: MIT */
/*
 * Logging for the tools: one line per event on stderr, written with a single
 * write(2) so that lines of different processes do not interleave:
 *
 *	rfd-server: info: listening on /run/fdtest.sock
 *
 * Levels, from the most to the least important: error, warn, info, debug.
 * Events above the current level are dropped.  The state is process-wide;
 * set it up from main() before any other thread starts.
 */
#ifndef RFD_TOOLS_LOG_H
#define RFD_TOOLS_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN = 1,
	LOG_LEVEL_INFO = 2,
	LOG_LEVEL_DEBUG = 3,
};

/* @program prefixes every line (kept, not copied); @level is the initial level. */
void log_init(const char *program, enum log_level level);

/* One more level of detail (for each -v); stops at debug. */
void log_raise_level(void);

bool log_enabled(enum log_level level);

void log_printf(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_printf(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_printf(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_printf(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_printf(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
