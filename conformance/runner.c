/* SPDX-License-Identifier: MIT */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "target.h"

enum {
	START_TIMEOUT_MS = 10000, /* CONTRACT-3 */
	STOP_GRACE_MS = 5000,
	LOG_TAIL_BYTES = 600,
};

/* What the case child reports to the runner through a pipe. */
struct case_message {
	enum conf_result result;
	char reason[512];
	char notes[2048];
};

static struct case_message *child_message; /* in the case child only */

enum conf_result
conf_fail(struct conf_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctx->reason, sizeof(ctx->reason), fmt, ap);
	va_end(ap);
	return CONF_FAIL;
}

enum conf_result
conf_skip(struct conf_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctx->reason, sizeof(ctx->reason), fmt, ap);
	va_end(ap);
	return CONF_SKIP;
}

void
conf_note(struct conf_ctx *ctx, const char *fmt, ...)
{
	size_t used;
	va_list ap;

	if (!child_message)
		return;
	used = strlen(child_message->notes);
	if (used + 2 >= sizeof(child_message->notes))
		return;
	va_start(ap, fmt);
	vsnprintf(child_message->notes + used, sizeof(child_message->notes) - used - 1, fmt, ap);
	va_end(ap);
	used = strlen(child_message->notes);
	child_message->notes[used] = '\n';
	child_message->notes[used + 1] = '\0';
}

int
conf_wait_ms(const struct conf_ctx *ctx)
{
	return ctx->timeout_ms / 3 > 0 ? ctx->timeout_ms / 3 : 1;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- The temporary directory a case runs in ---- */

struct workdir {
	char path[128];
	char socket[160];
	char root[160];
	char log[160];
};

static void
write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		return;
	if (write(fd, text, strlen(text)) < 0) {
		/* The case that reads it will fail with a clear reason. */
	}
	close(fd);
}

/*
 * The root a server under test serves `open` from: a file with known
 * content (spec: CONTRACT), a subdirectory, a FIFO, and a symlink out.
 */
static int
workdir_create(struct workdir *wd)
{
	char path[256];

	snprintf(wd->path, sizeof(wd->path), "/tmp/rfd-conform-XXXXXX");
	if (!mkdtemp(wd->path))
		return -errno;
	snprintf(wd->socket, sizeof(wd->socket), "%s/s.sock", wd->path);
	snprintf(wd->root, sizeof(wd->root), "%s/root", wd->path);
	snprintf(wd->log, sizeof(wd->log), "%s/target.log", wd->path);
	mkdir(wd->root, 0755);
	snprintf(path, sizeof(path), "%s/hello.txt", wd->root);
	write_file(path, "hello from the conformance harness\n");
	snprintf(path, sizeof(path), "%s/sub", wd->root);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/sub/inner.txt", wd->root);
	write_file(path, "inner\n");
	snprintf(path, sizeof(path), "%s/fifo", wd->root);
	mkfifo(path, 0600);
	snprintf(path, sizeof(path), "%s/outside.txt", wd->path);
	write_file(path, "outside the root\n");
	snprintf(path, sizeof(path), "%s/escape", wd->root);
	if (symlink("../outside.txt", path) < 0) {
		/* Cases about symlinks will see it missing and say so. */
	}
	return 0;
}

static void
workdir_remove(const struct workdir *wd)
{
	static const char *const entries[] = {"root/hello.txt", "root/sub/inner.txt", "root/sub",
	                                      "root/fifo",      "root/escape",        "root",
	                                      "outside.txt",    "target.log",         "s.sock"};
	char path[256];

	for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", wd->path, entries[i]);
		if (unlink(path) < 0)
			rmdir(path);
	}
	rmdir(wd->path);
}

/* ---- One case ---- */

static int
listen_at(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (sock < 0)
		return -errno;
	memcpy(addr.sun_path, path, strlen(path));
	if (bind(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(sock, 16) < 0) {
		int r = -errno;

		close(sock);
		return r;
	}
	return sock;
}

static void __attribute__((noreturn))
run_case_child(const struct conf_case *c, struct conf_ctx *ctx, int report_fd)
{
	struct case_message message = {0};
	ssize_t n;

	signal(SIGPIPE, SIG_IGN);
	child_message = &message;
	message.result = c->run(ctx);
	snprintf(message.reason, sizeof(message.reason), "%s", ctx->reason);
	n = write(report_fd, &message, sizeof(message));
	_exit(n == (ssize_t)sizeof(message) ? 0 : 1);
}

/* Wait for the case child's report, up to the deadline; kill it after. */
static void
collect(pid_t child, int report_fd, int timeout_ms, struct case_outcome *out)
{
	struct case_message message;
	struct pollfd pfd = {.fd = report_fd, .events = POLLIN};
	size_t got = 0;
	long long deadline = now_ms() + timeout_ms;

	while (got < sizeof(message)) {
		long long left = deadline - now_ms();
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			break;
		n = read(report_fd, (char *)&message + got, sizeof(message) - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got == sizeof(message)) {
		out->result = message.result;
		snprintf(out->reason, sizeof(out->reason), "%s", message.reason);
		snprintf(out->notes, sizeof(out->notes), "%s", message.notes);
		waitpid(child, NULL, 0);
		return;
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	out->result = CONF_FAIL;
	if (now_ms() >= deadline)
		snprintf(out->reason, sizeof(out->reason),
		         "no verdict within %d ms: the implementation hung or did not answer",
		         timeout_ms);
	else
		snprintf(out->reason, sizeof(out->reason), "the case's process died");
}

static bool
needs_met(const struct run_options *o, const struct conf_case *c, const char **why)
{
	if ((c->needs & (CONF_NEEDS_LAUNCH | CONF_SELF_START)) && !o->command) {
		*why = "needs a target the harness launches itself (--cmd)";
		return false;
	}
	return true;
}

/* Start the target of a server-role case and wait until it accepts connections. */
static int
start_server(const struct run_options *o, const struct conf_case *c, struct workdir *wd, pid_t *pid,
             struct case_outcome *out)
{
	const char *extra[] = {"--socket", wd->socket, "--root", wd->root, NULL};
	char tail[LOG_TAIL_BYTES / 2];
	int r;

	*pid = target_start(o->command, extra, wd->log);
	if (*pid < 0) {
		snprintf(out->reason, sizeof(out->reason), "cannot start the target: %s",
		         strerror((int)-*pid));
		return -1;
	}
	r = target_wait_listening(wd->socket, *pid, START_TIMEOUT_MS);
	if (r == 0)
		return 0;
	target_stop(*pid, 1000);
	target_log_tail(wd->log, tail, sizeof(tail));
	/* The reason is bounded: a long socket path or output is cut, never overrun. */
	snprintf(out->reason, sizeof(out->reason),
	         "the target did not accept connections at %.160s (%s); its output: %.200s",
	         wd->socket, r == -ECHILD ? "it exited" : "timed out", tail);
	return -1;
}

/* Client role: listen, start the client with the case's scenario. */
static int
start_client(const struct run_options *o, const struct conf_case *c, struct workdir *wd,
             int *listen_fd, pid_t *pid, struct case_outcome *out)
{
	const char *extra[] = {"--socket", wd->socket, "--scenario", c->scenario, NULL};

	*listen_fd = listen_at(wd->socket);
	if (*listen_fd < 0) {
		snprintf(out->reason, sizeof(out->reason), "cannot listen at %s: %s", wd->socket,
		         strerror(-*listen_fd));
		return -1;
	}
	/* Accepted sockets take their options from the listener at connect time. */
	if (c->prepare)
		c->prepare(*listen_fd);
	*pid = target_start(o->command, extra, wd->log);
	if (*pid < 0) {
		snprintf(out->reason, sizeof(out->reason), "cannot start the client: %s",
		         strerror((int)-*pid));
		close(*listen_fd);
		return -1;
	}
	return 0;
}

static void
run_one(const struct run_options *o, const struct conf_case *c, struct case_outcome *out)
{
	struct conf_ctx ctx = {.c = c,
	                       .target_pid = -1,
	                       .listen_fd = -1,
	                       .timeout_ms = o->timeout_ms,
	                       .strict = o->strict};
	struct workdir wd;
	const char *why;
	int report[2];
	pid_t pid = -1, child;
	long long started = now_ms();

	out->c = c;
	out->result = CONF_FAIL;
	if (!needs_met(o, c, &why)) {
		out->result = CONF_SKIP;
		snprintf(out->reason, sizeof(out->reason), "%s", why);
		return;
	}
	if (workdir_create(&wd) < 0) {
		snprintf(out->reason, sizeof(out->reason), "cannot create a temporary directory");
		return;
	}
	ctx.socket_path = wd.socket;
	ctx.root_dir = wd.root;
	ctx.work_dir = wd.path;
	ctx.command = o->command;

	if (c->needs & CONF_SELF_START) {
		/* The case starts (and stops) what it needs. */
	} else if (c->role == CONF_SERVER && o->command) {
		if (start_server(o, c, &wd, &pid, out) < 0)
			goto done;
	} else if (c->role == CONF_SERVER) {
		ctx.socket_path = o->socket_path;
	} else if (start_client(o, c, &wd, &ctx.listen_fd, &pid, out) < 0) {
		goto done;
	}
	ctx.target_pid = pid;

	if (pipe2(report, O_CLOEXEC) < 0) {
		snprintf(out->reason, sizeof(out->reason), "pipe: %s", strerror(errno));
		goto stop;
	}
	child = fork();
	if (child == 0) {
		close(report[0]);
		run_case_child(c, &ctx, report[1]);
	}
	close(report[1]);
	if (child < 0)
		snprintf(out->reason, sizeof(out->reason), "fork: %s", strerror(errno));
	else
		collect(child, report[0], o->timeout_ms, out);
	close(report[0]);

stop:
	if (ctx.listen_fd >= 0)
		close(ctx.listen_fd);
	if (pid > 0) {
		/* A client under test normally exited already (the case waited for it). */
		if (c->role == CONF_CLIENT && target_wait(pid, 0) != -1)
			pid = -1;
		if (pid > 0)
			target_stop(pid, STOP_GRACE_MS);
	}
	if (out->result == CONF_FAIL && (o->command)) {
		char tail[LOG_TAIL_BYTES];
		size_t used = strlen(out->notes);

		target_log_tail(wd.log, tail, sizeof(tail));
		if (tail[0] && used < sizeof(out->notes) - 32)
			snprintf(out->notes + used, sizeof(out->notes) - used, "target output: %s",
			         tail);
	}
done:
	workdir_remove(&wd);
	out->duration_ms = (long)(now_ms() - started);
}

static void
count(struct run *run, const struct case_outcome *out)
{
	switch (out->result) {
	case CONF_PASS:
		run->passed++;
		break;
	case CONF_SKIP:
		run->skipped++;
		break;
	case CONF_FAIL:
		run->failed++;
		if (out->c->level == CONF_MUST)
			run->must_failed++;
		else
			run->should_failed++;
		break;
	}
}

int
run_cases(struct run *run, const struct conf_case *const *cases, size_t n)
{
	long long started = now_ms();
	time_t wall = time(NULL);

	strftime(run->started, sizeof(run->started), "%Y-%m-%dT%H:%M:%SZ", gmtime(&wall));
	run->outcomes = calloc(n ? n : 1, sizeof(*run->outcomes));
	if (!run->outcomes)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < n; i++) {
		if (run->options.progress)
			fprintf(stderr, "\r\033[K[%zu/%zu] %s", i + 1, n, cases[i]->id);
		run_one(&run->options, cases[i], &run->outcomes[i]);
		count(run, &run->outcomes[i]);
		run->n++;
	}
	if (run->options.progress)
		fprintf(stderr, "\r\033[K");
	run->duration_ms = (long)(now_ms() - started);
	return 0;
}

void
run_free(struct run *run)
{
	free(run->outcomes);
	run->outcomes = NULL;
}
