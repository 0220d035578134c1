/* SPDX-License-Identifier: MIT */
/*
 * rfd-conform: the conformance harness.  It drives an implementation under
 * test over a real Unix socket, writing raw frames and control messages
 * itself so that it can misbehave on purpose, and checks each requirement
 * of spec/fd-passing.md case by case.
 *
 * A case runs in a child process of its own with a deadline; the target
 * (when the harness launched it) is started fresh for every case.
 */
#ifndef RFD_CONFORM_HARNESS_H
#define RFD_CONFORM_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CONF_SPEC_VERSION    "0.4"
#define CONF_HARNESS_VERSION "0.1.0"

enum conf_role {
	CONF_SERVER, /* the target is a server: the harness plays the client */
	CONF_CLIENT, /* the target is a client: the harness plays the server */
};

enum conf_level {
	CONF_MUST,
	CONF_SHOULD,
};

enum conf_result {
	CONF_PASS,
	CONF_FAIL,
	CONF_SKIP,
};

/* Case needs: checked before it runs; a case whose needs are not met is skipped. */
enum {
	CONF_NEEDS_LAUNCH = 1 << 0, /* the harness started the target (for /proc and rlimits) */
	CONF_SELF_START = 1 << 1,   /* the case starts the target itself, with ctx->command */
};

struct conf_ctx;

struct conf_case {
	const char *id; /* stable, e.g. "fd-recv/count-mismatch" */
	enum conf_role role;
	const char *section;      /* spec section number, e.g. "6.2" */
	const char *requirements; /* comma-separated requirement ids, e.g. "FD-RECV-3,ERR-1" */
	enum conf_level level;
	const char *sends; /* one line: what the harness sends or does */
	unsigned needs;
	/* Client role: the scenario the client under test is started with. */
	const char *scenario;
	enum conf_result (*run)(struct conf_ctx *ctx);
	/* Client role, optional: set up the listening socket before the client starts. */
	void (*prepare)(int listen_fd);
};

/* Spec sections, for grouping the report. */
struct conf_section {
	const char *number;
	const char *title;
};

extern const struct conf_case conf_server_cases[];
extern const size_t conf_n_server_cases;
extern const struct conf_case conf_client_cases[];
extern const size_t conf_n_client_cases;
/* Streams and sinks (spec section 21), in files of their own. */
extern const struct conf_case conf_stream_server_cases[];
extern const size_t conf_n_stream_server_cases;
extern const struct conf_case conf_stream_client_cases[];
extern const size_t conf_n_stream_client_cases;
extern const struct conf_section conf_sections[];
extern const size_t conf_n_sections;

/* What a case can see of the run. */
struct conf_ctx {
	const struct conf_case *c;
	const char *socket_path; /* where the target listens (server role) or the harness does */
	const char *root_dir;    /* the --root given to a launched server; its files are below */
	const char *work_dir;    /* the case's private directory (socket, root, log inside) */
	char *const *command;    /* the target's command, for cases that start it themselves */
	pid_t target_pid;        /* -1 when the harness did not launch the target */
	int listen_fd;           /* client role: the harness's listening socket */
	int timeout_ms;          /* the case's budget; operations use a fraction of it */
	bool strict;
	char reason[512];
};

/* Record why a case failed or was skipped; returns @result for `return conf_fail(...)`. */
enum conf_result conf_fail(struct conf_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
enum conf_result conf_skip(struct conf_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Log a line of detail (shown with -v and on failure). */
void conf_note(struct conf_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Milliseconds left for an operation that may take at most a third of the case's budget. */
int conf_wait_ms(const struct conf_ctx *ctx);

#endif
