/* SPDX-License-Identifier: MIT */
/* Running the selected cases against a target and collecting their outcomes. */
#ifndef RFD_CONFORM_RUNNER_H
#define RFD_CONFORM_RUNNER_H

#include <stdbool.h>
#include <stdio.h>

#include "harness.h"

struct run_options {
	enum conf_role role;
	char **command;          /* the target to launch, or NULL */
	const char *socket_path; /* server role: an already running server */
	const char *command_text;
	int timeout_ms; /* per case */
	bool strict;    /* SHOULD failures count */
	bool verbose;
	bool progress; /* a live line on a terminal */
};

struct case_outcome {
	const struct conf_case *c;
	enum conf_result result;
	char reason[512];
	char notes[2048];
	long duration_ms;
};

struct run {
	struct run_options options;
	struct case_outcome *outcomes;
	size_t n;
	long duration_ms;
	char started[32]; /* ISO 8601, UTC */
	int passed, failed, skipped, must_failed, should_failed;
};

/* Run @cases (n) in order.  Returns 0, or -1 when the harness itself could not run. */
int run_cases(struct run *run, const struct conf_case *const *cases, size_t n);
void run_free(struct run *run);

/* The reports. */
void report_text(const struct run *run, FILE *out, bool color);
int report_json(const struct run *run, const char *path);
int report_junit(const struct run *run, const char *path);

const char *conf_section_title(const char *number);

#endif
