/* SPDX-License-Identifier: MIT */
/*
 * The client side of the conformance scenarios (spec/fd-passing.md section
 * 18.4): what a client under test does for `--socket PATH --scenario NAME`,
 * and what it checks.  Each event is logged (log.h) on stderr as one line
 * that, after the log prefix, starts with a word naming it:
 *
 *	connected /tmp/conform/sock
 *	call echo tag=bad-count fds=1
 *	error echo: expected 1 FDs with fdSeqNum 0, but a different number arrived (closed) (EBADFD)
 *	check echo("bad-count") fails with an FD-mismatch error (EBADFD; got EBADFD) ok
 *	result echo "after" fds=1
 *	check echo("after") FD 0 has the dev/ino of /dev/null ok
 *
 * The scenarios use the library's client API only, and close every FD they
 * own before they return.
 */
#ifndef RFD_SCENARIOS_H
#define RFD_SCENARIOS_H

enum {
	FDT_SCENARIO_PASSED = 0,  /* observed everything the scenario requires */
	FDT_SCENARIO_FAILED = 1,  /* observed something else */
	FDT_SCENARIO_NOT_RUN = 2, /* unknown scenario, no connection, no resources */
};

/*
 * Run scenario @name against the server at @socket_path as spec section
 * 18.4 defines it, each call waiting at most @timeout_ms (-1: no limit),
 * the client offering @extensions (RFD_EXTENSION_*) in its SETUP.
 * Returns the exit status of CONTRACT-10, one of FDT_SCENARIO_*.
 */
int fdt_run_scenario(const char *socket_path, const char *name, int timeout_ms,
                     unsigned extensions);

/* The scenario names, NULL-terminated, for --help. */
extern const char *const fdt_scenarios[];

#endif
