/* SPDX-License-Identifier: MIT */
/* The client side of the conformance scenarios of spec/fd-passing.md section 18.4. */
#include "scenarios.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <rocketfd/rocketfd.h>

#include "fdtest.h"
#include "log.h"

enum {
	TEXT_SIZE = 256,
	LABEL_SIZE = 96,
	MAX_SHOWN_TAG = 40,         /* longer tags are logged by their length */
	LATE_TIMEOUT_MS = 500,      /* late-response: the call that times out */
	MANY_CALLS = 16,            /* many-in-flight */
	LARGE_TAG_BYTES = 17825792, /* echo-large: 17 MiB */
	OPEN_READ_LIMIT = 4096,     /* open: more than this is not the scenario's file */
};

static const char open_path[] = "hello.txt";
static const char open_content[] = "rocketfd-open-scenario\n";
static const char missing_path[] = "missing.txt";
static const char harness_error_text[] = "rejected by harness";
static const char probe_tag[] = "probe";

/* One scenario being run. */
struct run {
	const char *socket_path;
	int timeout_ms;
	unsigned extensions;       /* offered in SETUP (RFD_EXTENSION_*) */
	struct rfd_client *client; /* the current connection, or NULL */
	bool failed;               /* a check failed */
};

/* A call and what came back. */
struct call_result {
	char label[LABEL_SIZE];   /* the call as logged, e.g. echo("echo-0") */
	int status;               /* 0, or the negative errno the call failed with */
	struct rfd_msg *reply;    /* when status is 0: a REPLY, EXCEPTION or ERROR */
	char failure[TEXT_SIZE];  /* when the call failed or was answered with ERROR: why */
	bool decoded;             /* the result struct decoded as the method's */
	char *text;               /* echo and open: the string returned */
	struct fdt_report report; /* inspect and lastRecorded */
	bool raised;              /* open: the declared exception FdTestError came back */
	struct fdt_error error;   /* when raised */
};

/* ---- Events and checks ---- */

static const char *
errno_name(int err)
{
	const char *name = strerrorname_np(err);

	return name ? name : "unknown errno";
}

/* @tag for a log line: itself (in quotes if @quoted), or its length when long. */
static const char *
shown_tag(const char *tag, bool quoted, char *buf, size_t size)
{
	size_t len = strlen(tag);

	if (len <= MAX_SHOWN_TAG)
		snprintf(buf, size, quoted ? "\"%s\"" : "%s", tag);
	else
		snprintf(buf, size, "<%zu bytes>", len);
	return buf;
}

/* Log "check WHAT ok" or "check WHAT FAILED"; a failure fails the run. */
static bool __attribute__((format(printf, 3, 4)))
check(struct run *run, bool ok, const char *fmt, ...)
{
	char what[TEXT_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (ok) {
		log_info("check %s ok", what);
		return true;
	}
	log_error("check %s FAILED", what);
	run->failed = true;
	return false;
}

/* ---- Connections ---- */

enum connect_outcome {
	CONNECTED,
	NO_CONNECTION, /* the socket did not connect */
	SETUP_FAILED,  /* connected, but the SETUP handshake did not complete */
};

static int
open_socket(const char *path, int *out)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	int sock;

	assert(out);
	*out = -1;
	if (len == 0)
		return -EINVAL;
	if (len >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, path, len);
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return -errno;
	if (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int r = -errno;

		close(sock);
		return r;
	}
	*out = sock;
	return 0;
}

/*
 * Connect to the harness and complete SETUP.  The socket is made here rather
 * than by rfd_client_connect() so that "no connection" and "SETUP refused"
 * can be told apart.
 */
static enum connect_outcome
connect_harness(struct run *run)
{
	struct rfd_client_options options;
	int sock, r;

	assert(run && !run->client);
	r = open_socket(run->socket_path, &sock);
	if (r < 0) {
		log_error("error connect %s: %s (%s)", run->socket_path, strerror(-r),
		          errno_name(-r));
		return NO_CONNECTION;
	}
	rfd_client_options_init(&options);
	options.connect_timeout_ms = run->timeout_ms;
	options.extensions = run->extensions;
	r = rfd_client_adopt(sock, &options, &run->client);
	if (r < 0) {
		log_info("error setup: the connection failed before the SETUP answer: %s (%s)",
		         strerror(-r), errno_name(-r));
		return SETUP_FAILED;
	}
	log_info("connected %s", run->socket_path);
	return CONNECTED;
}

/* The scenario's first connection; -1 when there is none (the scenario cannot run). */
static int
start(struct run *run)
{
	return connect_harness(run) == CONNECTED ? 0 : -1;
}

static void
disconnect(struct run *run)
{
	assert(run);
	if (!run->client)
		return;
	rfd_client_free(run->client);
	run->client = NULL;
	log_info("closed the connection");
}

/* ---- FDs the client sends ---- */

/* A /dev/null FD, as the spec's scenarios define it; -1 when none could be opened. */
static int
open_devnull(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		log_error("error open /dev/null: %s", strerror(errno));
	return fd;
}

/* @n /dev/null FDs: one opened, the others duplicates of it.  0, or -1 with none left open. */
static int
open_devnull_set(int *fds, size_t n)
{
	assert(fds && n >= 1);
	fds[0] = open_devnull();
	if (fds[0] < 0)
		return -1;
	for (size_t i = 1; i < n; i++) {
		fds[i] = fcntl(fds[0], F_DUPFD_CLOEXEC, 0);
		if (fds[i] < 0) {
			log_error("error dup /dev/null: %s", strerror(errno));
			while (i > 0)
				close(fds[--i]);
			return -1;
		}
	}
	return 0;
}

static void
close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

/* Close FDs whose owner is the library from the call on (RFD_FDS_TAKE), when no call was made. */
static void
discard_fds(const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

/* ---- Calls ---- */

static void
call_result_init(struct call_result *result, const char *method, const char *arg)
{
	char shown[LABEL_SIZE / 2];

	memset(result, 0, sizeof(*result));
	if (arg)
		snprintf(result->label, sizeof(result->label), "%s(%s)", method,
		         shown_tag(arg, true, shown, sizeof(shown)));
	else
		snprintf(result->label, sizeof(result->label), "%s()", method);
}

static void
call_result_free(struct call_result *result)
{
	rfd_msg_free(result->reply);
	free(result->text);
	fdt_report_free(&result->report);
	free(result->error.message);
	memset(result, 0, sizeof(*result));
}

static size_t
reply_fd_count(const struct call_result *result)
{
	return result->reply ? rfd_msg_fd_count(result->reply) : 0;
}

static bool
is_reply(const struct call_result *result)
{
	return result->status == 0 && rfd_msg_kind(result->reply) == RFD_MSG_REPLY;
}

/* Log a failed call or an ERROR answer, keeping the reason in @result->failure. */
static void
note_failure(struct run *run, const char *method, struct call_result *result)
{
	if (result->status < 0) {
		const char *why = run->client ? rfd_client_error(run->client) : "";

		snprintf(result->failure, sizeof(result->failure), "%s",
		         *why ? why : strerror(-result->status));
		log_info("error %s: %s (%s)", method, result->failure, errno_name(-result->status));
	} else if (rfd_msg_kind(result->reply) == RFD_MSG_ERROR) {
		snprintf(result->failure, sizeof(result->failure), "%s",
		         rfd_msg_error_text(result->reply));
		log_info("error %s: the server answered error 0x%x: %s", method,
		         (unsigned)rfd_msg_error_code(result->reply), result->failure);
	}
}

/* Log the "call" event of @method, with its argument @arg named @arg_name (NULL: none). */
static void
log_call(const char *method, const char *arg_name, const char *arg, size_t n_fds)
{
	char shown[LABEL_SIZE];

	if (arg)
		log_info("call %s %s=%s fds=%zu", method, arg_name,
		         shown_tag(arg, false, shown, sizeof(shown)), n_fds);
	else
		log_info("call %s fds=%zu", method, n_fds);
}

/*
 * Call @method with @args, which encoding returned @encoded for (a negative
 * errno: no call is made), and @fds; @args is freed.  The outcome, logged, is
 * in @result.
 */
static void
call_method(struct run *run, const char *method, int encoded, struct fdt_bytes *args,
            const int *fds, size_t n_fds, enum rfd_fd_mode mode, int timeout_ms,
            struct call_result *result)
{
	assert(run && run->client && method && args && result);
	if (encoded < 0) {
		if (mode == RFD_FDS_TAKE)
			discard_fds(fds, n_fds);
		result->status = encoded;
		snprintf(result->failure, sizeof(result->failure),
		         "cannot encode the arguments: %s", strerror(-encoded));
		log_error("error %s: %s", method, result->failure);
		return;
	}
	result->status = rfd_client_call(run->client, method, args->data, args->len, fds, n_fds,
	                                 mode, timeout_ms, &result->reply);
	fdt_bytes_free(args);
	note_failure(run, method, result);
}

/* Decode an echo answer already in @result and log it. */
static void
finish_echo(struct call_result *result)
{
	const uint8_t *data;
	const char *why = "";
	char shown[LABEL_SIZE];
	size_t len;

	if (!is_reply(result))
		return;
	data = rfd_msg_data(result->reply, &len);
	if (fdt_decode_string_result(data, len, &result->text, &why) < 0) {
		log_error("error echo: the result does not decode: %s", why);
		return;
	}
	result->decoded = true;
	log_info("result echo %s fds=%zu", shown_tag(result->text, true, shown, sizeof(shown)),
	         reply_fd_count(result));
}

/* echo(@tag) with @fds, which stay the caller's (RFD_FDS_DUP). */
static void
call_echo(struct run *run, const char *tag, const int *fds, size_t n_fds, int timeout_ms,
          struct call_result *result)
{
	struct fdt_bytes args = {0};
	int r;

	call_result_init(result, FDT_METHOD_ECHO, tag);
	log_call(FDT_METHOD_ECHO, "tag", tag, n_fds);
	r = fdt_encode_args(tag, &args);
	call_method(run, FDT_METHOD_ECHO, r, &args, fds, n_fds, RFD_FDS_DUP, timeout_ms, result);
	finish_echo(result);
}

static void
finish_report(const char *method, struct call_result *result)
{
	const uint8_t *data;
	const char *why = "";
	char shown[LABEL_SIZE];
	size_t len;

	if (!is_reply(result))
		return;
	data = rfd_msg_data(result->reply, &len);
	if (fdt_decode_report_result(data, len, &result->report, &why) < 0) {
		log_error("error %s: the result does not decode: %s", method, why);
		return;
	}
	result->decoded = true;
	log_info("result %s tag=%s entries=%zu fds=%zu", method,
	         shown_tag(result->report.tag, true, shown, sizeof(shown)), result->report.n_fds,
	         reply_fd_count(result));
	for (size_t i = 0; i < result->report.n_fds; i++) {
		char line[TEXT_SIZE];

		log_debug("result %s entry %zu: %s", method, i,
		          fdt_fdinfo_string(&result->report.fds[i], line, sizeof(line)));
	}
}

/* inspect(@tag) with @fds, which the library takes (RFD_FDS_TAKE). */
static void
call_inspect(struct run *run, const char *tag, int *fds, size_t n_fds, struct call_result *result)
{
	struct fdt_bytes args = {0};
	int r;

	call_result_init(result, FDT_METHOD_INSPECT, tag);
	log_call(FDT_METHOD_INSPECT, "tag", tag, n_fds);
	r = fdt_encode_args(tag, &args);
	call_method(run, FDT_METHOD_INSPECT, r, &args, fds, n_fds, RFD_FDS_TAKE, run->timeout_ms,
	            result);
	finish_report(FDT_METHOD_INSPECT, result);
}

static void
call_last_recorded(struct run *run, struct call_result *result)
{
	struct fdt_bytes args = {0};
	int r;

	call_result_init(result, FDT_METHOD_LAST, NULL);
	log_call(FDT_METHOD_LAST, NULL, NULL, 0);
	r = fdt_encode_empty_args(&args);
	call_method(run, FDT_METHOD_LAST, r, &args, NULL, 0, RFD_FDS_DUP, run->timeout_ms, result);
	finish_report(FDT_METHOD_LAST, result);
}

/* One-way record(@tag) with @fds, which stay the caller's.  0 once written, or -errno. */
static int
call_record(struct run *run, const char *tag, const int *fds, size_t n_fds)
{
	struct fdt_bytes args = {0};
	int r;

	log_call(FDT_METHOD_RECORD, "tag", tag, n_fds);
	r = fdt_encode_args(tag, &args);
	if (r < 0) {
		log_error("error %s: cannot encode the arguments: %s", FDT_METHOD_RECORD,
		          strerror(-r));
		return r;
	}
	r = rfd_client_oneway(run->client, FDT_METHOD_RECORD, args.data, args.len, fds, n_fds,
	                      RFD_FDS_DUP, run->timeout_ms);
	fdt_bytes_free(&args);
	if (r < 0)
		log_info("error %s: %s (%s)", FDT_METHOD_RECORD, rfd_client_error(run->client),
		         errno_name(-r));
	else
		log_info("sent %s (one-way)", FDT_METHOD_RECORD);
	return r;
}

static void
finish_open(struct call_result *result)
{
	struct fdt_open_result answer;
	const uint8_t *data;
	const char *why = "";
	enum rfd_msg_kind kind;
	size_t len;

	if (result->status < 0)
		return;
	kind = rfd_msg_kind(result->reply);
	if (kind != RFD_MSG_REPLY && kind != RFD_MSG_EXCEPTION)
		return;
	data = rfd_msg_data(result->reply, &len);
	if (fdt_decode_open_result(data, len, &answer, &why) < 0) {
		log_error("error open: the result does not decode: %s", why);
		return;
	}
	result->decoded = true;
	result->raised = answer.failed;
	if (answer.failed) {
		result->error = answer.error;
		log_info("result open raised %s errnum=%d (%s) \"%s\" fds=%zu", FDT_ERROR_NAME,
		         (int)answer.error.errnum, errno_name((int)answer.error.errnum),
		         answer.error.message, reply_fd_count(result));
	} else {
		result->text = answer.path;
		log_info("result open \"%s\" fds=%zu", answer.path, reply_fd_count(result));
	}
}

static void
call_open(struct run *run, const char *path, struct call_result *result)
{
	struct fdt_bytes args = {0};
	int r;

	call_result_init(result, FDT_METHOD_OPEN, path);
	log_call(FDT_METHOD_OPEN, "path", path, 0);
	r = fdt_encode_args(path, &args);
	call_method(run, FDT_METHOD_OPEN, r, &args, NULL, 0, RFD_FDS_DUP, run->timeout_ms, result);
	finish_open(result);
}

/* ---- What the client must observe ---- */

/* The call returned the string @expected with @n_fds FDs. */
static bool
expect_string(struct run *run, const struct call_result *result, const char *expected, size_t n_fds)
{
	char shown[LABEL_SIZE];
	bool ok;

	ok = check(run, is_reply(result) && result->text && strcmp(result->text, expected) == 0,
	           "%s returns %s", result->label, shown_tag(expected, true, shown, sizeof(shown)));
	if (!check(run, is_reply(result) && reply_fd_count(result) == n_fds,
	           "%s returns %zu FD(s) (got %zu)", result->label, n_fds, reply_fd_count(result)))
		ok = false;
	return ok;
}

static bool
same_inode(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static void
expect_cloexec(struct run *run, const struct call_result *result, size_t index)
{
	int fd = result->reply ? rfd_msg_fd(result->reply, index) : -1;
	int flags = fd >= 0 ? fcntl(fd, F_GETFD) : -1;

	check(run, flags >= 0 && (flags & FD_CLOEXEC), "%s FD %zu has FD_CLOEXEC", result->label,
	      index);
}

/*
 * FD @index of the answer names the file the client sent as @sent (dev and
 * ino; also the very open file description, where kcmp() can tell) and has
 * FD_CLOEXEC set.
 */
static void
expect_fd(struct run *run, const struct call_result *result, size_t index, int sent,
          const char *what)
{
	int fd = result->reply ? rfd_msg_fd(result->reply, index) : -1;
	pid_t self = getpid();
	struct stat got, want;
	long same;

	if (!check(run,
	           fd >= 0 && fstat(fd, &got) == 0 && fstat(sent, &want) == 0 &&
	               same_inode(&got, &want),
	           "%s FD %zu has the dev/ino of %s", result->label, index, what))
		return;
	same = syscall(SYS_kcmp, self, self, KCMP_FILE, fd, sent);
	if (same < 0)
		log_info("check %s FD %zu is the open file sent skipped: kcmp: %s", result->label,
		         index, strerror(errno));
	else
		check(run, same == 0, "%s FD %zu is the open file sent", result->label, index);
	expect_cloexec(run, result, index);
}

/* The call failed with @status (0: any failure, an ERROR answer included). */
static bool
expect_failure(struct run *run, const struct call_result *result, int status, const char *how)
{
	bool failed =
	    result->status < 0 || (result->reply && rfd_msg_kind(result->reply) == RFD_MSG_ERROR);

	if (status == 0)
		return check(run, failed, "%s fails%s", result->label, how);
	return check(run, result->status == status, "%s fails %s (%s; got %s)", result->label, how,
	             errno_name(-status),
	             result->status < 0 ? errno_name(-result->status) : "no local failure");
}

/* The report of @result has @tag and @n_fds entries, each with the dev and ino of @want. */
static void
expect_report(struct run *run, const struct call_result *result, const char *tag,
              const struct stat *want, size_t n_fds, const char *what)
{
	const struct fdt_report *report = &result->report;
	bool all_match = result->decoded;

	check(run, result->decoded && strcmp(report->tag, tag) == 0, "%s reports tag \"%s\"",
	      result->label, tag);
	check(run, result->decoded && report->n_fds == n_fds, "%s reports %zu entries (got %zu)",
	      result->label, n_fds, report->n_fds);
	if (n_fds == 0)
		return;
	for (size_t i = 0; all_match && i < report->n_fds; i++)
		all_match = report->fds[i].dev == (int64_t)want->st_dev &&
		            report->fds[i].ino == (int64_t)want->st_ino;
	check(run, all_match && report->n_fds > 0, "%s reports the dev/ino of %s", result->label,
	      what);
}

/* ---- Steps several scenarios share ---- */

/* echo(@tag) with one /dev/null FD, which must come back. */
static int
echo_devnull_returns(struct run *run, const char *tag)
{
	struct call_result echo;
	int fd = open_devnull();

	if (fd < 0)
		return -1;
	call_echo(run, tag, &fd, 1, run->timeout_ms, &echo);
	expect_string(run, &echo, tag, 1);
	expect_fd(run, &echo, 0, fd, "/dev/null");
	call_result_free(&echo);
	close(fd);
	return 0;
}

/* echo(@tag) with one /dev/null FD, which must fail with @status. */
static int
echo_devnull_fails(struct run *run, const char *tag, int timeout_ms, int status, const char *how)
{
	struct call_result echo;
	int fd = open_devnull();

	if (fd < 0)
		return -1;
	call_echo(run, tag, &fd, 1, timeout_ms, &echo);
	expect_failure(run, &echo, status, how);
	call_result_free(&echo);
	close(fd);
	return 0;
}

/* echo(@tag) without FD, which must return @tag and no FD. */
static void
echo_plain_returns(struct run *run, const char *tag)
{
	struct call_result echo;

	call_echo(run, tag, NULL, 0, run->timeout_ms, &echo);
	expect_string(run, &echo, tag, 0);
	call_result_free(&echo);
}

/* Close the connection, connect again and call the probe, which must succeed. */
static void
probe_on_new_connection(struct run *run)
{
	disconnect(run);
	if (!check(run, connect_harness(run) == CONNECTED, "a new connection is set up"))
		return;
	echo_plain_returns(run, probe_tag);
}

/* ---- The scenarios ---- */

static int
scenario_echo_0(struct run *run)
{
	if (start(run) < 0)
		return -1;
	echo_plain_returns(run, "echo-0");
	return 0;
}

/* inspect(@tag) with @n /dev/null FDs; the report must describe /dev/null @n times. */
static int
inspect_devnull(struct run *run, const char *tag, size_t n)
{
	struct call_result inspect;
	struct stat devnull;
	int fds[RFD_MAX_FDS];

	assert(n >= 1 && n <= RFD_MAX_FDS);
	if (start(run) < 0 || open_devnull_set(fds, n) < 0)
		return -1;
	if (fstat(fds[0], &devnull) < 0) {
		log_error("error fstat /dev/null: %s", strerror(errno));
		close_fds(fds, n);
		return -1;
	}
	call_inspect(run, tag, fds, n, &inspect);
	expect_report(run, &inspect, tag, &devnull, n, "/dev/null");
	if (n == 1)
		check(run,
		      inspect.decoded && inspect.report.n_fds == 1 &&
		          inspect.report.fds[0].type == S_IFCHR,
		      "%s reports type 0x%x (character device)", inspect.label, S_IFCHR);
	call_result_free(&inspect);
	return 0;
}

static int
scenario_inspect_1(struct run *run)
{
	return inspect_devnull(run, "inspect-1", 1);
}

static int
scenario_inspect_253(struct run *run)
{
	return inspect_devnull(run, "inspect-253", RFD_MAX_FDS);
}

static int
scenario_inspect_254(struct run *run)
{
	struct call_result inspect;
	int fds[RFD_MAX_FDS + 1];

	if (start(run) < 0 || open_devnull_set(fds, RFD_MAX_FDS + 1) < 0)
		return -1;
	call_inspect(run, "inspect-254", fds, RFD_MAX_FDS + 1, &inspect);
	expect_failure(run, &inspect, -E2BIG, "locally");
	call_result_free(&inspect);
	echo_plain_returns(run, "after");
	return 0;
}

static int
scenario_echo_2(struct run *run)
{
	struct call_result echo;
	int fds[2], ends[2];

	if (start(run) < 0)
		return -1;
	fds[0] = open_devnull();
	if (fds[0] < 0)
		return -1;
	if (pipe2(ends, O_CLOEXEC) < 0) {
		log_error("error pipe: %s", strerror(errno));
		close(fds[0]);
		return -1;
	}
	fds[1] = ends[1];
	/* Cleared so that FD_CLOEXEC on the FDs received can only come from the receiver. */
	if (fcntl(fds[0], F_SETFD, 0) < 0 || fcntl(fds[1], F_SETFD, 0) < 0) {
		log_error("error clearing FD_CLOEXEC: %s", strerror(errno));
		close(ends[0]);
		close_fds(fds, 2);
		return -1;
	}
	call_echo(run, "echo-2", fds, 2, run->timeout_ms, &echo);
	expect_string(run, &echo, "echo-2", 2);
	expect_fd(run, &echo, 0, fds[0], "/dev/null (A)");
	expect_fd(run, &echo, 1, fds[1], "the pipe's write end (B)");
	call_result_free(&echo);
	close(ends[0]);
	close_fds(fds, 2);
	return 0;
}

static int
scenario_record_1(struct run *run)
{
	struct call_result first, second;
	struct stat devnull;
	int fd;

	if (start(run) < 0)
		return -1;
	fd = open_devnull();
	if (fd < 0)
		return -1;
	if (fstat(fd, &devnull) < 0) {
		log_error("error fstat /dev/null: %s", strerror(errno));
		close(fd);
		return -1;
	}
	call_last_recorded(run, &first);
	expect_report(run, &first, "", NULL, 0, NULL);
	call_result_free(&first);

	call_record(run, "record-1", &fd, 1);
	close(fd);

	call_last_recorded(run, &second);
	expect_report(run, &second, "record-1", &devnull, 1, "/dev/null");
	call_result_free(&second);
	return 0;
}

/* Read what @fd holds, to end of file; the byte count, or -errno (-EFBIG: more than @size). */
static ssize_t
read_to_eof(int fd, char *buf, size_t size, int timeout_ms)
{
	size_t got = 0;

	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&pfd, 1, timeout_ms) <= 0)
			return -ETIMEDOUT;
		if (got == size)
			return -EFBIG;
		n = read(fd, buf + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return (ssize_t)got;
		got += (size_t)n;
	}
}

static int
scenario_open(struct run *run)
{
	char content[OPEN_READ_LIMIT];
	struct call_result open_call;
	ssize_t n = -EBADF;
	int fd;

	if (start(run) < 0)
		return -1;
	call_open(run, open_path, &open_call);
	expect_string(run, &open_call, open_path, 1);
	expect_cloexec(run, &open_call, 0);
	fd = open_call.reply ? rfd_msg_fd(open_call.reply, 0) : -1;
	if (fd >= 0)
		n = read_to_eof(fd, content, sizeof(content), run->timeout_ms);
	if (n >= 0)
		log_info("result read %zd bytes through the FD", n);
	check(run,
	      n == (ssize_t)strlen(open_content) && memcmp(content, open_content, (size_t)n) == 0,
	      "%s FD reads exactly the %zu bytes \"rocketfd-open-scenario\\n\"%s%s",
	      open_call.label, strlen(open_content), n < 0 ? ": " : "",
	      n < 0 ? strerror((int)-n) : "");
	call_result_free(&open_call);
	return 0;
}

static int
scenario_open_missing(struct run *run)
{
	struct call_result open_call;
	bool raised;

	if (start(run) < 0)
		return -1;
	call_open(run, missing_path, &open_call);
	raised = open_call.status == 0 && rfd_msg_kind(open_call.reply) == RFD_MSG_EXCEPTION &&
	         open_call.raised;
	check(run, raised, "%s fails with %s", open_call.label, FDT_ERROR_NAME);
	check(run, raised && open_call.error.errnum == ENOENT, "%s fails with errnum %d (ENOENT)",
	      open_call.label, ENOENT);
	check(run, reply_fd_count(&open_call) == 0, "%s comes with no FD", open_call.label);
	call_result_free(&open_call);
	return 0;
}

static int
scenario_error_invalid(struct run *run)
{
	struct call_result echo;

	if (start(run) < 0)
		return -1;
	call_echo(run, "error-invalid", NULL, 0, run->timeout_ms, &echo);
	if (expect_failure(run, &echo, 0, ""))
		check(run, strstr(echo.failure, harness_error_text) != NULL,
		      "%s fails with an error containing \"%s\"", echo.label, harness_error_text);
	call_result_free(&echo);
	echo_plain_returns(run, "after");
	return 0;
}

static int
scenario_setup_rejected(struct run *run)
{
	struct call_result echo;

	switch (connect_harness(run)) {
	case NO_CONNECTION:
		return -1;
	case SETUP_FAILED:
		/* rfd_client_adopt() completes SETUP before any call can be made. */
		log_info("error echo: not sent, the connection failed at SETUP");
		check(run, true,
		      "echo(\"setup-rejected\") fails (SETUP refused before it was sent)");
		return 0;
	case CONNECTED:
		break;
	}
	call_echo(run, "setup-rejected", NULL, 0, run->timeout_ms, &echo);
	expect_failure(run, &echo, 0, "");
	call_result_free(&echo);
	return 0;
}

/* The first echo with a /dev/null FD fails its FD claim; the next one works. */
static int
mismatch_then_after(struct run *run, const char *tag)
{
	if (start(run) < 0 ||
	    echo_devnull_fails(run, tag, run->timeout_ms, -EBADFD, "with an FD-mismatch error") < 0)
		return -1;
	return echo_devnull_returns(run, "after");
}

static int
scenario_bad_count(struct run *run)
{
	return mismatch_then_after(run, "bad-count");
}

static int
scenario_bad_seq(struct run *run)
{
	return mismatch_then_after(run, "bad-seq");
}

static int
scenario_stale_seq(struct run *run)
{
	if (start(run) < 0 || echo_devnull_returns(run, "first") < 0 ||
	    echo_devnull_fails(run, "stale", run->timeout_ms, -EBADFD,
	                       "with an FD-mismatch error") < 0 ||
	    echo_devnull_returns(run, "after") < 0)
		return -1;
	echo_plain_returns(run, probe_tag);
	return 0;
}

static int
scenario_orphan_fds(struct run *run)
{
	if (start(run) < 0 || echo_devnull_returns(run, "orphan") < 0)
		return -1;
	echo_plain_returns(run, probe_tag);
	return 0;
}

static int
scenario_late_response(struct run *run)
{
	if (start(run) < 0 ||
	    echo_devnull_fails(run, "late", LATE_TIMEOUT_MS, -ETIMEDOUT, "with a timeout") < 0)
		return -1;
	echo_plain_returns(run, "gap");
	return echo_devnull_returns(run, "next");
}

static int
scenario_eof_with_fds(struct run *run)
{
	struct call_result echo;

	if (start(run) < 0)
		return -1;
	call_echo(run, "eof", NULL, 0, run->timeout_ms, &echo);
	expect_failure(run, &echo, 0, "");
	call_result_free(&echo);
	probe_on_new_connection(run);
	return 0;
}

/* A call without FD that must fail, whatever the error. */
static void
echo_plain_fails(struct run *run, const char *tag)
{
	struct call_result echo;

	call_echo(run, tag, NULL, 0, run->timeout_ms, &echo);
	expect_failure(run, &echo, 0, "");
	call_result_free(&echo);
}

/* The harness sends a KEEPALIVE with RESPOND before answering; the library answers it. */
static int
scenario_keepalive(struct run *run)
{
	if (start(run) < 0)
		return -1;
	echo_plain_returns(run, "keepalive");
	return 0;
}

/* The harness answers with a request frame of its own: the connection must fail (FRAME-28). */
static int
scenario_server_request(struct run *run)
{
	if (start(run) < 0)
		return -1;
	echo_plain_fails(run, "server-request");
	probe_on_new_connection(run);
	return 0;
}

/* Responses without payloadMetadata, with an empty one, with two members (META-21, META-22). */
static int
scenario_payload_metadata(struct run *run)
{
	if (start(run) < 0 || echo_devnull_returns(run, "pm-absent") < 0)
		return -1;
	echo_plain_fails(run, "pm-empty");
	echo_plain_fails(run, "pm-two");
	if (echo_devnull_returns(run, "after") < 0)
		return -1;
	echo_plain_returns(run, probe_tag);
	return 0;
}

/* many-in-flight: one call, completed by its callback. */
struct pending_call {
	struct run *run;
	char tag[LABEL_SIZE];
	uint32_t id;
	bool done;
	struct call_result echo;
};

static void
pending_call_done(void *user, int status, struct rfd_msg *reply)
{
	struct pending_call *call = user;

	call->done = true;
	call->echo.status = status;
	call->echo.reply = reply;
	note_failure(call->run, FDT_METHOD_ECHO, &call->echo);
	finish_echo(&call->echo);
}

static size_t
count_done(const struct pending_call *calls, size_t n)
{
	size_t done = 0;

	for (size_t i = 0; i < n; i++)
		done += calls[i].done;
	return done;
}

static void
pending_calls_init(struct run *run, struct pending_call *calls, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		calls[i].run = run;
		calls[i].id = 0;
		calls[i].done = false;
		snprintf(calls[i].tag, sizeof(calls[i].tag), "mif-%zu", i);
		call_result_init(&calls[i].echo, FDT_METHOD_ECHO, calls[i].tag);
	}
}

/* Send echo("mif-i") with @write_ends[i] for each i without waiting; 0, or -1 when one was not
 * sent. */
static int
send_many(struct run *run, const int *write_ends, struct pending_call *calls, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct pending_call *call = &calls[i];
		struct fdt_bytes args;
		int r;

		log_call(FDT_METHOD_ECHO, "tag", call->tag, 1);
		r = fdt_encode_args(call->tag, &args);
		if (r == 0) {
			r = rfd_client_call_async(run->client, FDT_METHOD_ECHO, args.data, args.len,
			                          &write_ends[i], 1, RFD_FDS_DUP, run->timeout_ms,
			                          pending_call_done, call, &call->id);
			fdt_bytes_free(&args);
		}
		if (r < 0) {
			log_info("error echo: %s (%s)", rfd_client_error(run->client),
			         errno_name(-r));
			for (size_t unsent = i; unsent < n; unsent++) {
				calls[unsent].done = true;
				calls[unsent].echo.status = r;
			}
			return -1;
		}
	}
	return 0;
}

/* Serve the connection until every call is done; cancel what is left if it fails. */
static void
wait_many(struct run *run, struct pending_call *calls, size_t n)
{
	while (count_done(calls, n) < n) {
		struct pollfd pfd = {.fd = rfd_client_fd(run->client),
		                     .events = rfd_client_events(run->client)};
		int r = poll(&pfd, 1, rfd_client_timeout(run->client));

		if (r < 0 && errno != EINTR)
			break;
		if (rfd_client_process(run->client, r > 0 ? pfd.revents : 0) < 0)
			break;
	}
	for (size_t i = 0; i < n; i++)
		if (!calls[i].done)
			rfd_client_cancel(run->client, calls[i].id);
}

static int
make_pipes(int (*ends)[2], size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (pipe2(ends[i], O_CLOEXEC) < 0) {
			log_error("error pipe: %s", strerror(errno));
			while (i > 0)
				close_fds(ends[--i], 2);
			return -1;
		}
	}
	return 0;
}

static int
scenario_many_in_flight(struct run *run)
{
	struct pending_call calls[MANY_CALLS];
	int ends[MANY_CALLS][2], write_ends[MANY_CALLS];

	if (start(run) < 0 || make_pipes(ends, MANY_CALLS) < 0)
		return -1;
	for (size_t i = 0; i < MANY_CALLS; i++)
		write_ends[i] = ends[i][1];
	pending_calls_init(run, calls, MANY_CALLS);
	send_many(run, write_ends, calls, MANY_CALLS);
	wait_many(run, calls, MANY_CALLS);

	for (size_t i = 0; i < MANY_CALLS; i++) {
		expect_string(run, &calls[i].echo, calls[i].tag, 1);
		expect_fd(run, &calls[i].echo, 0, write_ends[i], "the pipe's write end");
		call_result_free(&calls[i].echo);
		close_fds(ends[i], 2);
	}
	return 0;
}

static int
scenario_echo_large(struct run *run)
{
	struct call_result echo;
	char *tag;
	int fd;

	if (start(run) < 0)
		return -1;
	tag = malloc(LARGE_TAG_BYTES + 1);
	if (!tag) {
		log_error("error echo: no memory for the tag");
		return -1;
	}
	memset(tag, 'x', LARGE_TAG_BYTES);
	tag[LARGE_TAG_BYTES] = '\0';
	fd = open_devnull();
	if (fd < 0) {
		free(tag);
		return -1;
	}
	call_echo(run, tag, &fd, 1, run->timeout_ms, &echo);
	expect_string(run, &echo, tag, 1);
	expect_fd(run, &echo, 0, fd, "/dev/null");
	call_result_free(&echo);
	close(fd);
	free(tag);
	return 0;
}

static int
scenario_ctrunc(struct run *run)
{
	struct call_result echo;

	if (start(run) < 0)
		return -1;
	/* No FD may be opened until the answer arrives: the harness counts the free ones. */
	call_echo(run, "ctrunc", NULL, 0, run->timeout_ms, &echo);
	expect_failure(run, &echo, -ENOBUFS, "with an error saying FDs were lost");
	call_result_free(&echo);
	probe_on_new_connection(run);
	return 0;
}

static int
scenario_passrights_off(struct run *run)
{
	if (start(run) < 0 ||
	    echo_devnull_fails(run, "passrights", run->timeout_ms, -EPERM,
	                       "with an error saying the peer does not accept FDs") < 0)
		return -1;
	probe_on_new_connection(run);
	return 0;
}

/* ---- Streams and sinks (spec section 21) ---- */

/* A blocking stream being read: its label and id. */
struct stream_call {
	char label[LABEL_SIZE];
	uint32_t id;
	unsigned items; /* items taken so far */
};

/*
 * Request streamFds(@count, @per_item) with @timeout_ms for its first
 * response: rfd_client_stream()'s result, *first the caller's when 0; a
 * failure is logged.
 */
static int
request_stream_fds(struct run *run, int32_t count, int32_t per_item, int timeout_ms,
                   struct stream_call *stream, struct rfd_msg **first)
{
	struct fdt_bytes args = {0};
	int r;

	memset(stream, 0, sizeof(*stream));
	snprintf(stream->label, sizeof(stream->label), "%s(%d, %d)", FDT_METHOD_STREAM_FDS,
	         (int)count, (int)per_item);
	log_info("call %s count=%d fdsPerItem=%d fds=0", FDT_METHOD_STREAM_FDS, (int)count,
	         (int)per_item);
	r = fdt_encode_stream_args(count, per_item, &args);
	if (r < 0) {
		log_error("error %s: cannot encode the arguments: %s", FDT_METHOD_STREAM_FDS,
		          strerror(-r));
		return r;
	}
	r = rfd_client_stream(run->client, FDT_METHOD_STREAM_FDS, args.data, args.len, NULL, 0,
	                      RFD_FDS_DUP, timeout_ms, 0, first, &stream->id);
	fdt_bytes_free(&args);
	if (r < 0)
		log_info("error %s: %s (%s)", stream->label, rfd_client_error(run->client),
		         errno_name(-r));
	return r;
}

/*
 * Open streamFds(@count, @per_item) with @timeout_ms for its first response:
 * 0 when it is open (its first response checked), or the negative errno it
 * failed with, logged.
 */
static int
open_stream_fds(struct run *run, int32_t count, int32_t per_item, int timeout_ms,
                struct stream_call *stream)
{
	struct rfd_msg *first = NULL;
	int r = request_stream_fds(run, count, per_item, timeout_ms, stream, &first);

	if (r < 0)
		return r;
	if (rfd_msg_kind(first) != RFD_MSG_REPLY) {
		log_info("error %s: answered with %s", stream->label,
		         rfd_msg_kind(first) == RFD_MSG_ERROR ? rfd_msg_error_text(first)
		                                              : "an exception");
		rfd_msg_free(first);
		return -EPROTO;
	}
	log_info("result %s first response fds=%zu", stream->label, rfd_msg_fd_count(first));
	rfd_msg_free(first);
	return 0;
}

/* Item @index of streamFds(_, @per_item): its tag, and each FD matches its report entry. */
static void
expect_stream_item(struct run *run, struct stream_call *stream, struct rfd_msg *item,
                   unsigned index, size_t per_item)
{
	struct fdt_report report = {0};
	const char *why = "";
	const uint8_t *data;
	char tag[16];
	size_t len;
	bool decoded, all_match = true;

	snprintf(tag, sizeof(tag), "%u", index);
	data = rfd_msg_data(item, &len);
	decoded = fdt_decode_report_result(data, len, &report, &why) == 0;
	log_info("result %s item %u tag=\"%s\" entries=%zu fds=%zu", stream->label, index,
	         decoded ? report.tag : "?", report.n_fds, rfd_msg_fd_count(item));
	check(run, decoded && strcmp(report.tag, tag) == 0, "%s item %u has the tag \"%s\"",
	      stream->label, index, tag);
	if (!check(run, decoded && report.n_fds == per_item && rfd_msg_fd_count(item) == per_item,
	           "%s item %u has %zu FDs and %zu report entries", stream->label, index, per_item,
	           per_item)) {
		fdt_report_free(&report);
		return;
	}
	for (size_t k = 0; k < per_item; k++) {
		int fd = rfd_msg_fd(item, k), flags = fcntl(fd, F_GETFD);
		struct stat st;

		all_match =
		    all_match && fstat(fd, &st) == 0 && (int64_t)st.st_dev == report.fds[k].dev &&
		    (int64_t)st.st_ino == report.fds[k].ino && flags >= 0 && (flags & FD_CLOEXEC);
	}
	check(run, all_match, "%s item %u FDs have the dev/ino of their report and FD_CLOEXEC",
	      stream->label, index);
	fdt_report_free(&report);
}

/* The next message of @stream: 1 with an item, 0 at its normal end, or the negative errno. */
static int
next_stream_item(struct run *run, struct stream_call *stream, int timeout_ms, struct rfd_msg **item)
{
	int r = rfd_client_stream_next(run->client, stream->id, timeout_ms, item);

	if (r == 1 && rfd_msg_kind(*item) != RFD_MSG_STREAM_ITEM) {
		log_info("error %s: ended by %s", stream->label,
		         rfd_msg_kind(*item) == RFD_MSG_ERROR ? rfd_msg_error_text(*item)
		                                              : "an exception");
		rfd_msg_free(*item);
		*item = NULL;
		return -EPROTO;
	}
	if (r == 0)
		log_info("result %s completed after %u items", stream->label, stream->items);
	else if (r < 0)
		log_info("error %s: %s (%s)", stream->label, rfd_client_error(run->client),
		         errno_name(-r));
	return r;
}

/* Every item of @stream to its end, @count of them with @per_item FDs each. */
static void
expect_stream_items(struct run *run, struct stream_call *stream, unsigned count, size_t per_item)
{
	struct rfd_msg *item;
	int r;

	while ((r = next_stream_item(run, stream, run->timeout_ms, &item)) == 1) {
		expect_stream_item(run, stream, item, stream->items++, per_item);
		rfd_msg_free(item);
	}
	check(run, r == 0 && stream->items == count, "%s ends normally after %u items (got %u)",
	      stream->label, count, stream->items);
}

static int
scenario_stream_3x2(struct run *run)
{
	struct stream_call stream;

	if (start(run) < 0)
		return -1;
	if (check(run, open_stream_fds(run, 3, 2, run->timeout_ms, &stream) == 0,
	          "streamFds(3, 2) is open"))
		expect_stream_items(run, &stream, 3, 2);
	echo_plain_returns(run, probe_tag);
	return 0;
}

static int
scenario_stream_cancel(struct run *run)
{
	struct stream_call stream;
	struct rfd_msg *item = NULL;

	if (start(run) < 0)
		return -1;
	if (check(run, open_stream_fds(run, 5, 1, run->timeout_ms, &stream) == 0,
	          "streamFds(5, 1) is open") &&
	    check(run, next_stream_item(run, &stream, run->timeout_ms, &item) == 1,
	          "%s delivers item 0", stream.label)) {
		expect_stream_item(run, &stream, item, 0, 1);
		rfd_msg_free(item);
		log_info("cancel %s", stream.label);
		check(run, rfd_client_cancel(run->client, stream.id) == 0, "%s is cancelled",
		      stream.label);
	}
	if (echo_devnull_returns(run, "after") < 0)
		return -1;
	echo_plain_returns(run, probe_tag);
	return 0;
}

static int
scenario_stream_bad_seq(struct run *run)
{
	struct stream_call stream;
	struct rfd_msg *item = NULL;

	if (start(run) < 0)
		return -1;
	if (check(run, open_stream_fds(run, 2, 1, run->timeout_ms, &stream) == 0,
	          "streamFds(2, 1) is open")) {
		int r = next_stream_item(run, &stream, run->timeout_ms, &item);

		rfd_msg_free(item);
		check(run, r == -EBADFD, "%s fails with an FD-mismatch error (EBADFD; got %s)",
		      stream.label, r < 0 ? errno_name(-r) : "an item or the end");
	}
	probe_on_new_connection(run);
	return 0;
}

static int
scenario_stream_contract(struct run *run)
{
	struct stream_call stream;
	struct rfd_msg *item = NULL;

	if (start(run) < 0)
		return -1;
	if (check(run, open_stream_fds(run, 2, 1, run->timeout_ms, &stream) == 0,
	          "streamFds(2, 1) is open")) {
		int r = next_stream_item(run, &stream, run->timeout_ms, &item);

		rfd_msg_free(item);
		check(run, r < 0, "%s fails after a REQUEST_N from the server (got %s)",
		      stream.label, r < 0 ? errno_name(-r) : "an item or the end");
	}
	probe_on_new_connection(run);
	return 0;
}

static int
scenario_stream_timeout(struct run *run)
{
	struct stream_call stream;
	int r;

	if (start(run) < 0)
		return -1;
	r = open_stream_fds(run, 1, 2, LATE_TIMEOUT_MS, &stream);
	check(run, r == -ETIMEDOUT, "streamFds(1, 2) fails with a timeout (ETIMEDOUT; got %s)",
	      r < 0 ? errno_name(-r) : "an open stream");
	echo_plain_returns(run, "gap");
	if (echo_devnull_returns(run, "next") < 0)
		return -1;
	if (check(run, open_stream_fds(run, 2, 1, LATE_TIMEOUT_MS, &stream) == 0,
	          "streamFds(2, 1) is open"))
		expect_stream_items(run, &stream, 2, 1);
	echo_plain_returns(run, probe_tag);
	return 0;
}

/*
 * An item that is neither a result nor an exception fails the stream, not
 * the connection: the next call on it gets its FD.
 */
static int
scenario_stream_bad_item(struct run *run)
{
	struct stream_call stream;
	struct rfd_msg *item = NULL;

	if (start(run) < 0)
		return -1;
	if (check(run, open_stream_fds(run, 3, 1, run->timeout_ms, &stream) == 0,
	          "streamFds(3, 1) is open")) {
		int r = next_stream_item(run, &stream, run->timeout_ms, &item);

		rfd_msg_free(item);
		check(run, r < 0 && r != -ETIMEDOUT,
		      "%s fails without an item, neither a result nor an exception (got %s)",
		      stream.label, r < 0 ? errno_name(-r) : "an item or the end");
	}
	if (echo_devnull_returns(run, "after") < 0)
		return -1;
	echo_plain_returns(run, probe_tag);
	return 0;
}

/*
 * STREAM-20: a first response that is neither a result nor an exception
 * fails the stream, not the connection: the next call on it gets its FD.
 */
static int
scenario_stream_bad_first(struct run *run)
{
	struct stream_call stream;
	struct rfd_msg *first = NULL;
	int r;

	if (start(run) < 0)
		return -1;
	r = request_stream_fds(run, 2, 1, run->timeout_ms, &stream, &first);
	if (r == 0) {
		log_info("result %s first response %s fds=%zu", stream.label,
		         rfd_msg_kind(first) == RFD_MSG_REPLY ? "reply" : "error or exception",
		         rfd_msg_fd_count(first));
		/* Only a reply leaves the stream open; give it up. */
		if (rfd_msg_kind(first) == RFD_MSG_REPLY)
			rfd_client_cancel(run->client, stream.id);
		rfd_msg_free(first);
	}
	check(run, r < 0 && r != -ETIMEDOUT,
	      "%s fails without a first response, neither a result nor an exception (got %s)",
	      stream.label, r < 0 ? errno_name(-r) : "a first response");
	if (echo_devnull_returns(run, "after") < 0)
		return -1;
	echo_plain_returns(run, probe_tag);
	return 0;
}

/* The FDs sink-2 sends, and what the client sees of each before it goes. */
struct sink_fds {
	int fds[2];    /* /dev/null, and the write end of a pipe */
	int pipe_read; /* the pipe's read end, kept while the scenario runs */
	struct fdt_fdinfo info[2];
};

static int
sink_fds_open(struct sink_fds *sent)
{
	int ends[2];

	sent->fds[0] = open_devnull();
	sent->fds[1] = sent->pipe_read = -1;
	if (sent->fds[0] < 0 || pipe2(ends, O_CLOEXEC) < 0)
		return -1;
	sent->pipe_read = ends[0];
	sent->fds[1] = ends[1];
	if (fdt_describe_fd(sent->fds[0], &sent->info[0]) < 0 ||
	    fdt_describe_fd(sent->fds[1], &sent->info[1]) < 0)
		return -1;
	return 0;
}

static void
sink_fds_close(struct sink_fds *sent)
{
	close_fds(sent->fds, 2);
	close_fds(&sent->pipe_read, 1);
}

/* Open sinkFds(@tag): 0 with the sink open under *id, its first response checked. */
static int
open_sink_fds(struct run *run, const char *tag, uint32_t *id)
{
	struct fdt_bytes args = {0};
	struct rfd_msg *first = NULL;
	int r;

	log_call(FDT_METHOD_SINK_FDS, "tag", tag, 0);
	r = fdt_encode_args(tag, &args);
	if (r == 0)
		r = rfd_client_sink(run->client, FDT_METHOD_SINK_FDS, args.data, args.len, NULL, 0,
		                    RFD_FDS_DUP, run->timeout_ms, &first, id);
	fdt_bytes_free(&args);
	if (r < 0) {
		log_info("error %s: %s (%s)", FDT_METHOD_SINK_FDS, rfd_client_error(run->client),
		         errno_name(-r));
		return r;
	}
	if (rfd_msg_kind(first) != RFD_MSG_REPLY) {
		log_info("error %s: answered with %s", FDT_METHOD_SINK_FDS,
		         rfd_msg_kind(first) == RFD_MSG_ERROR ? rfd_msg_error_text(first)
		                                              : "an exception");
		rfd_msg_free(first);
		return -EPROTO;
	}
	log_info("result %s first response fds=%zu accepts-sink=%s", FDT_METHOD_SINK_FDS,
	         rfd_msg_fd_count(first), rfd_client_sink_fds(run->client, *id) ? "yes" : "no");
	rfd_msg_free(first);
	return 0;
}

/* A sink item {0: @tag} with the one FD @fd, sent when the server gives credit. */
static bool
push_sink_item(struct run *run, uint32_t id, const char *tag, int fd)
{
	struct fdt_bytes item = {0};
	int r = fdt_encode_bytes_result(tag, strlen(tag), &item);

	log_info("send %s item tag=%s fds=1", FDT_METHOD_SINK_FDS, tag);
	if (r == 0)
		r = rfd_client_sink_push(run->client, id, item.data, item.len, &fd, 1, RFD_FDS_DUP,
		                         run->timeout_ms);
	fdt_bytes_free(&item);
	if (r < 0)
		log_info("error %s item %s: %s (%s)", FDT_METHOD_SINK_FDS, tag,
		         rfd_client_error(run->client), errno_name(-r));
	return check(run, r == 0, "%s item \"%s\" is sent with its FD", FDT_METHOD_SINK_FDS, tag);
}

/* The final report: @tag, and one entry per FD of @sent, each naming that file. */
static void
expect_sink_report(struct run *run, const struct rfd_msg *final, const char *tag,
                   const struct sink_fds *sent)
{
	struct fdt_report report = {0};
	const uint8_t *data;
	const char *why = "";
	size_t len;
	bool decoded, same = true;

	data = rfd_msg_data(final, &len);
	decoded = rfd_msg_kind(final) == RFD_MSG_REPLY &&
	          fdt_decode_report_result(data, len, &report, &why) == 0;
	log_info("result %s final report tag=\"%s\" entries=%zu fds=%zu", FDT_METHOD_SINK_FDS,
	         decoded ? report.tag : "?", report.n_fds, rfd_msg_fd_count(final));
	check(run, decoded && strcmp(report.tag, tag) == 0,
	      "the final report of %s has the tag \"%s\"", FDT_METHOD_SINK_FDS, tag);
	for (size_t i = 0; decoded && report.n_fds == 2 && i < 2; i++)
		same = same && report.fds[i].dev == sent->info[i].dev &&
		       report.fds[i].ino == sent->info[i].ino;
	check(run, decoded && report.n_fds == 2 && same,
	      "the final report lists 2 FDs: /dev/null, then the pipe's write end");
	check(run, rfd_msg_fd_count(final) == 0, "the final response carries no FD (got %zu)",
	      rfd_msg_fd_count(final));
	fdt_report_free(&report);
}

static int
scenario_sink_2(struct run *run)
{
	static const char tag[] = "sink-2";
	struct rfd_msg *final = NULL;
	struct sink_fds sent;
	uint32_t id = 0;
	int r;

	/* The scenario needs the offer: without it the client says it cannot run. */
	if (!(run->extensions & RFD_EXTENSION_SINK)) {
		log_error("error %s: this client does not offer the extension sink",
		          FDT_METHOD_SINK_FDS);
		return -1;
	}
	if (sink_fds_open(&sent) < 0) {
		log_error("error %s: cannot make the FDs to send: %s", FDT_METHOD_SINK_FDS,
		          strerror(errno));
		sink_fds_close(&sent);
		return -1;
	}
	if (start(run) < 0) {
		sink_fds_close(&sent);
		return -1;
	}
	if (check(run, open_sink_fds(run, tag, &id) == 0, "%s(\"%s\") is open", FDT_METHOD_SINK_FDS,
	          tag) &&
	    check(run, rfd_client_sink_fds(run->client, id) == 1,
	          "the first response accepts the extension sink") &&
	    push_sink_item(run, id, "one", sent.fds[0]) &&
	    push_sink_item(run, id, "two", sent.fds[1])) {
		log_info("complete %s", FDT_METHOD_SINK_FDS);
		r = rfd_client_sink_close(run->client, id, run->timeout_ms, &final);
		if (r < 0)
			log_info("error %s: %s (%s)", FDT_METHOD_SINK_FDS,
			         rfd_client_error(run->client), errno_name(-r));
		if (check(run, r == 0, "%s(\"%s\") ends with a final response", FDT_METHOD_SINK_FDS,
		          tag))
			expect_sink_report(run, final, tag, &sent);
		rfd_msg_free(final);
	}
	sink_fds_close(&sent);
	return 0;
}

/* SINK-14: a first response that ends the sink with a result fails the sink alone. */
static int
scenario_sink_first_complete(struct run *run)
{
	static const char tag[] = "sink-first-complete";
	struct fdt_bytes args = {0};
	struct rfd_msg *first = NULL;
	uint32_t id = 0;
	int r;

	if (start(run) < 0)
		return -1;
	log_call(FDT_METHOD_SINK_FDS, "tag", tag, 0);
	r = fdt_encode_args(tag, &args);
	if (r == 0)
		r = rfd_client_sink(run->client, FDT_METHOD_SINK_FDS, args.data, args.len, NULL, 0,
		                    RFD_FDS_DUP, run->timeout_ms, &first, &id);
	fdt_bytes_free(&args);
	if (r == 0 && rfd_msg_kind(first) == RFD_MSG_ERROR) {
		/* A server that declines sinks: the scenario cannot run. */
		log_error("error %s: %s", FDT_METHOD_SINK_FDS, rfd_msg_error_text(first));
		rfd_msg_free(first);
		return -1;
	}
	if (r < 0)
		log_info("error %s: %s (%s)", FDT_METHOD_SINK_FDS, rfd_client_error(run->client),
		         errno_name(-r));
	check(run, r < 0 && r != -ETIMEDOUT, "%s(\"%s\") fails without a final response (got %s)",
	      FDT_METHOD_SINK_FDS, tag, r < 0 ? errno_name(-r) : "an open sink");
	if (r == 0)
		rfd_client_cancel(run->client, id);
	rfd_msg_free(first);
	if (echo_devnull_returns(run, "after") < 0)
		return -1;
	echo_plain_returns(run, probe_tag);
	return 0;
}

static int
scenario_exception_fds(struct run *run)
{
	struct call_result open;

	if (start(run) < 0)
		return -1;
	call_open(run, "exception-fds", &open);
	if (run->extensions & RFD_EXTENSION_EXCEPTION) {
		/* Offered: the FD comes with the exception, and closing it is the caller's. */
		check(run, open.raised && open.error.errnum == ENOENT,
		      "%s fails with FdTestError errnum 2 (ENOENT)", open.label);
		check(run, reply_fd_count(&open) == 1,
		      "%s hands exactly one FD to the caller with the exception (got %zu)",
		      open.label, reply_fd_count(&open));
	} else {
		/* Not offered: the FD breaks the agreement. */
		check(run, open.status < 0 && !open.raised,
		      "%s fails as a protocol error, not with the declared exception", open.label);
		check(run, reply_fd_count(&open) == 0, "%s hands no FD to the caller (got %zu)",
		      open.label, reply_fd_count(&open));
	}
	call_result_free(&open);
	echo_plain_returns(run, probe_tag);
	return 0;
}

/* ---- The table ---- */

#define SCENARIO_LIST(X)                                                                           \
	X("echo-0", scenario_echo_0)                                                               \
	X("inspect-1", scenario_inspect_1)                                                         \
	X("inspect-253", scenario_inspect_253)                                                     \
	X("inspect-254", scenario_inspect_254)                                                     \
	X("echo-2", scenario_echo_2)                                                               \
	X("record-1", scenario_record_1)                                                           \
	X("open", scenario_open)                                                                   \
	X("open-missing", scenario_open_missing)                                                   \
	X("error-invalid", scenario_error_invalid)                                                 \
	X("setup-rejected", scenario_setup_rejected)                                               \
	X("bad-count", scenario_bad_count)                                                         \
	X("bad-seq", scenario_bad_seq)                                                             \
	X("stale-seq", scenario_stale_seq)                                                         \
	X("orphan-fds", scenario_orphan_fds)                                                       \
	X("late-response", scenario_late_response)                                                 \
	X("eof-with-fds", scenario_eof_with_fds)                                                   \
	X("many-in-flight", scenario_many_in_flight)                                               \
	X("echo-large", scenario_echo_large)                                                       \
	X("ctrunc", scenario_ctrunc)                                                               \
	X("passrights-off", scenario_passrights_off)                                               \
	X("keepalive", scenario_keepalive)                                                         \
	X("server-request", scenario_server_request)                                               \
	X("payload-metadata", scenario_payload_metadata)                                           \
	X("stream-3x2", scenario_stream_3x2)                                                       \
	X("stream-cancel", scenario_stream_cancel)                                                 \
	X("stream-bad-seq", scenario_stream_bad_seq)                                               \
	X("stream-contract", scenario_stream_contract)                                             \
	X("stream-timeout", scenario_stream_timeout)                                               \
	X("stream-bad-item", scenario_stream_bad_item)                                             \
	X("stream-bad-first", scenario_stream_bad_first)                                           \
	X("sink-2", scenario_sink_2)                                                               \
	X("sink-first-complete", scenario_sink_first_complete)                                     \
	X("exception-fds", scenario_exception_fds)

struct scenario {
	const char *name;
	/* 0 once run (the checks tell how it went), -1 when it could not run. */
	int (*run)(struct run *run);
};

#define SCENARIO_NAME(name, fn)  name,
#define SCENARIO_ENTRY(name, fn) {name, fn},

const char *const fdt_scenarios[] = {SCENARIO_LIST(SCENARIO_NAME) NULL};

static const struct scenario scenario_table[] = {SCENARIO_LIST(SCENARIO_ENTRY)};

static const struct scenario *
find_scenario(const char *name)
{
	for (size_t i = 0; i < sizeof(scenario_table) / sizeof(scenario_table[0]); i++)
		if (strcmp(scenario_table[i].name, name) == 0)
			return &scenario_table[i];
	return NULL;
}

int
fdt_run_scenario(const char *socket_path, const char *name, int timeout_ms, unsigned extensions)
{
	struct run run = {
	    .socket_path = socket_path, .timeout_ms = timeout_ms, .extensions = extensions};
	const struct scenario *scenario;
	int r, status;

	if (!socket_path || !name) {
		log_error("error scenario: a socket path and a scenario name are needed");
		return FDT_SCENARIO_NOT_RUN;
	}
	scenario = find_scenario(name);
	if (!scenario) {
		log_error("error scenario: unknown scenario \"%s\"", name);
		return FDT_SCENARIO_NOT_RUN;
	}
	log_info("scenario %s", name);
	r = scenario->run(&run);
	disconnect(&run);
	if (run.failed)
		status = FDT_SCENARIO_FAILED;
	else
		status = r < 0 ? FDT_SCENARIO_NOT_RUN : FDT_SCENARIO_PASSED;
	log_info("done %s: %s", name,
	         status == FDT_SCENARIO_PASSED   ? "passed"
	         : status == FDT_SCENARIO_FAILED ? "a check failed"
	                                         : "could not run");
	return status;
}
