/* SPDX-License-Identifier: MIT */
/*
 * The peer's identity on a server: the credentials and pidfd taken at
 * accept (CRED-1, CRED-2, CRED-3) that stay valid for a request's whole life
 * (CRED-7) and are released with the last request (CRED-5); the pidfd
 * helpers, which tell a process from a later one with its pid (CRED-4), shown
 * with pid reuse made cheap inside a new pid namespace; the fallback of
 * kernels without SO_PEERPIDFD (CRED-8, CRED-9); per-message credentials
 * (CRED-6, CRED-10, CRED-11); and FdTest's whoami (CRED-12, CRED-13,
 * CRED-14).
 *
 * The server runs in this process; its clients are child processes.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rocketfd/rocketfd.h>

#include "fdtest.h"
#include "fdtest_service.h"
#include "peer.h"
#include "testutil.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

enum {
	MAX_HELD = 8,
	WAIT_MS = 5000,
	VALGRIND_SLOWDOWN = 20,
	SKIP_STATUS = 77, /* a child that could not set up what the test needs */
};

static char socket_path[108];
static char skip_text[256];

/* ---- Small things ---- */

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How long to wait for the other processes of a test. */
static int
wait_ms(void)
{
	return rfd_test_under_valgrind() ? WAIT_MS * VALGRIND_SLOWDOWN : WAIT_MS;
}

static bool
kernel_has_peer_pidfd(void)
{
	int sv[2], fd = -1;
	socklen_t len = sizeof(fd);
	bool has;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return false;
	has = getsockopt(sv[0], SOL_SOCKET, 77 /* SO_PEERPIDFD */, &fd, &len) == 0;
	if (fd >= 0)
		close(fd);
	close(sv[0]);
	close(sv[1]);
	return has;
}

/* A pidfd of @pid with pidfd_open(), or a negative errno (-ENOSYS under valgrind 3.19). */
static int
open_pidfd(pid_t pid)
{
	long fd = syscall(SYS_pidfd_open, pid, 0);

	return fd < 0 ? -errno : (int)fd;
}

/* The status of the child @pid once it exited; -1 if it had to be killed. */
static int
reap(pid_t pid)
{
	int status = 0;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return -1;
}

static bool
status_names_pid(const char *status, pid_t pid)
{
	char line[32];

	snprintf(line, sizeof(line), "\nPid:\t%d\n", (int)pid);
	return strstr(status, line) != NULL;
}

/* Write @text to @path, as a test's stand-in for a /proc file. */
static int
write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -EIO;
}

/* ---- The server, in this process ---- */

static struct rfd_msg *held[MAX_HELD];
static size_t n_held;

/* The handler: keep every request, for the test to look at and answer. */
static void
keep(void *user, struct rfd_msg *request)
{
	if (n_held == MAX_HELD) {
		rfd_reply_error(request, RFD_FAIL_OVERLOADED, "the test holds enough requests");
		return;
	}
	held[n_held++] = request;
}

static void
free_held(void)
{
	for (size_t i = 0; i < n_held; i++)
		rfd_msg_free(held[i]);
	n_held = 0;
}

/*
 * The server of the running test, and its handler's user data, also kept
 * here so that a forked child that exits without freeing them does not
 * count as leaking them under valgrind.
 */
static struct rfd_server *current_server;
static void *current_user;

static struct rfd_server *
start_server(const struct rfd_server_options *options, rfd_handler_fn *handler, void *user)
{
	int r = rfd_server_listen(socket_path, options, handler ? handler : keep, user,
	                          &current_server);

	if (r < 0)
		rfd_test_fail(__FILE__, __LINE__, "rfd_server_listen: %s", strerror(-r));
	current_user = user;
	return current_server;
}

static bool
held_at_least(struct rfd_server *server, long want)
{
	return (long)n_held >= want;
}

static bool
connections_at_most(struct rfd_server *server, long want)
{
	return (long)rfd_server_connections(server) <= want;
}

/* Serve until @done(@server, @arg) or wait_ms() passed; whether it was done. */
static bool
serve_until(struct rfd_server *server, bool (*done)(struct rfd_server *, long), long arg)
{
	long long deadline = now_ms() + wait_ms();

	while (!done(server, arg)) {
		if (now_ms() >= deadline)
			return false;
		rfd_server_run(server, 10);
	}
	return true;
}

/* ---- Client processes ---- */

/* What a client child does, with the gate it waits on before it exits. */
struct client_plan {
	const char *name;   /* its comm, for /proc/PID/comm */
	const char *method; /* sent one-way; NULL: a call with a short timeout instead */
	int gate;           /* read end: the child exits at EOF; -1: at once */
	int gate_writer;    /* the parent's write end, closed in the child */
};

static int
run_client(const struct client_plan *plan)
{
	struct rfd_client *client;
	struct rfd_msg *reply = NULL;
	char c;
	int r;

	if (plan->gate_writer >= 0)
		close(plan->gate_writer);
	prctl(PR_SET_NAME, plan->name, 0, 0, 0);
	r = rfd_client_connect(socket_path, NULL, &client);
	if (r < 0)
		return 10;
	if (plan->method) {
		r = rfd_client_oneway(client, plan->method, "", 1, NULL, 0, RFD_FDS_DUP, wait_ms());
	} else {
		/* A call nobody answers: the client gives up on it and leaves. */
		r = rfd_client_call(client, "hold", "", 1, NULL, 0, RFD_FDS_DUP, 100, &reply);
		r = r == -ETIMEDOUT ? 0 : -EPROTO;
	}
	rfd_msg_free(reply);
	if (r < 0)
		return 11;
	while (plan->gate >= 0 && read(plan->gate, &c, 1) > 0)
		;
	rfd_client_free(client);
	return 0;
}

static pid_t
spawn_client(const struct client_plan *plan)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0)
		_exit(run_client(plan));
	return pid;
}

/* ---- The fallback's rule and pid_max ---- */

/* CRED-8: the pidfd_open() fallback is kept only with pid_max >= 4194304, within one second. */
static void
test_fallback_rule(void)
{
	char path[] = "/tmp/rfd-pid-max-XXXXXX";
	int fd = mkstemp(path);

	CHECK(rfd_pidfd_fallback_ok(4194304, 0, 999999999));
	CHECK(rfd_pidfd_fallback_ok(4194304, 5000000000LL, 5999999999LL));
	CHECK(!rfd_pidfd_fallback_ok(4194304, 0, 1000000000));
	CHECK(!rfd_pidfd_fallback_ok(4194303, 0, 1));
	CHECK(!rfd_pidfd_fallback_ok(32768, 0, 1));
	CHECK(!rfd_pidfd_fallback_ok(4194304, 10, 9));

	REQUIRE(fd >= 0);
	close(fd);
	CHECK_EQ(write_file(path, "4194304\n"), 0);
	CHECK_EQ(rfd_read_pid_max(path), 4194304);
	CHECK_EQ(write_file(path, "32768"), 0);
	CHECK_EQ(rfd_read_pid_max(path), 32768);
	CHECK_EQ(write_file(path, "lots\n"), 0);
	CHECK_EQ(rfd_read_pid_max(path), -EINVAL);
	CHECK_EQ(write_file(path, "12x\n"), 0);
	CHECK_EQ(rfd_read_pid_max(path), -EINVAL);
	CHECK_EQ(write_file(path, ""), 0);
	CHECK_EQ(rfd_read_pid_max(path), -EINVAL);
	unlink(path);
	CHECK_EQ(rfd_read_pid_max(path), -ENOENT);
	CHECK(rfd_read_pid_max(NULL) >= 301); /* the kernel's least pid_max */
}

/*
 * The identity of @sock's peer, this process, taken by @source: a pidfd or
 * not as @has_pidfd says, pinned as @pinned says, and when there is one, it
 * names this process.
 */
static void
check_identity(int sock, const struct rfd_identity_source *source, bool has_pidfd, bool pinned)
{
	struct rfd_identity *identity = NULL;
	char status[4096];

	CHECK_EQ(rfd_identity_new(sock, source, &identity), 0);
	if (!identity)
		return;
	CHECK_EQ(identity->cred.pid, getpid());
	CHECK_EQ(identity->cred.uid, getuid());
	CHECK_EQ(identity->cred.gid, getgid());
	CHECK_EQ(identity->pinned, pinned);
	CHECK_EQ(identity->pidfd >= 0, has_pidfd);
	if (identity->pidfd >= 0) {
		CHECK(fcntl(identity->pidfd, F_GETFD) & FD_CLOEXEC); /* EXEC-2 */
		CHECK(rfd_pidfd_read_proc(identity->pidfd, "status", status, sizeof(status)) > 0);
		CHECK(status_names_pid(status, getpid()));
	}
	CHECK(rfd_identity_ref(identity) == identity);
	rfd_identity_unref(identity);
	CHECK(identity->pidfd < 0 || rfd_test_fd_is_open(identity->pidfd));
	rfd_identity_unref(identity);
}

/*
 * The identity of a socket pair's peer in each mode: pinned with
 * SO_PEERPIDFD; with the fallback forced, a pidfd only where the pid_max
 * file allows (CRED-8), never pinned; and no fallback at all when
 * SO_PEERPIDFD fails otherwise than for want of the option (CRED-9), as it
 * does on Linux 6.5 to 6.8 for a peer already reaped.
 */
static void
test_identity_modes(void)
{
	char path[] = "/tmp/rfd-pid-max-XXXXXX";
	struct rfd_identity_source fallback = {.peer_pidfd_error = ENOPROTOOPT,
	                                       .pid_max_path = path};
	struct rfd_identity_source peer_gone = {.peer_pidfd_error = EINVAL, .pid_max_path = path};
	bool has = kernel_has_peer_pidfd();
	int sv[2], fd = mkstemp(path);

	REQUIRE(fd >= 0);
	close(fd);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		CHECK(!"socketpair");
		unlink(path);
		return;
	}
	check_identity(sv[0], NULL, has, has);
	CHECK_EQ(write_file(path, "32768\n"), 0);
	check_identity(sv[0], &fallback, false, false);
	CHECK_EQ(write_file(path, "4194304\n"), 0);
	if (rfd_test_under_valgrind())
		rfd_test_skip("pidfd_open() under valgrind"); /* valgrind 3.19 does not know it */
	else
		check_identity(sv[0], &fallback, true, false);
	check_identity(sv[0], &peer_gone, false, false);
	unlink(path);
	check_identity(sv[0], &fallback, false, false);
	close(sv[0]);
	close(sv[1]);
}

/* ---- The helpers of the public API ---- */

/* A pidfd of this process: SO_PEERPIDFD of a socket pair (valgrind 3.19 knows no pidfd_open). */
static int
own_pidfd(void)
{
	int sv[2], fd = -1;
	socklen_t len = sizeof(fd);

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	if (getsockopt(sv[0], SOL_SOCKET, 77 /* SO_PEERPIDFD */, &fd, &len) < 0)
		fd = open_pidfd(getpid());
	close(sv[0]);
	close(sv[1]);
	return fd;
}

/* A child running until @gate is closed: alive for both helpers, then gone. */
static void
check_helpers_on_a_child(void)
{
	char buf[4096];
	int gate[2], pidfd;
	pid_t child;

	if (pipe2(gate, O_CLOEXEC) < 0) {
		CHECK(!"pipe2");
		return;
	}
	child = fork();
	if (child == 0) {
		char c;

		close(gate[1]);
		while (read(gate[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(gate[0]);
	pidfd = open_pidfd(child);
	CHECK(pidfd >= 0);
	CHECK_EQ(rfd_pidfd_alive(pidfd), 1);
	CHECK(rfd_pidfd_read_proc(pidfd, "status", buf, sizeof(buf)) > 0);
	CHECK(status_names_pid(buf, child));
	close(gate[1]);
	CHECK_EQ(reap(child), 0);
	CHECK_EQ(rfd_pidfd_alive(pidfd), 0);
	CHECK_EQ(rfd_pidfd_read_proc(pidfd, "status", buf, sizeof(buf)), -ESRCH);
	CHECK_EQ(buf[0], '\0');
	if (pidfd >= 0)
		close(pidfd);
}

static void
test_pidfd_helpers(void)
{
	char buf[4096], exe[4096], comm[32];
	int pidfd, pipe_fds[2];
	ssize_t n;

	CHECK_EQ(rfd_pidfd_alive(-1), -EBADF);
	REQUIRE(pipe2(pipe_fds, O_CLOEXEC) == 0);
	CHECK_EQ(rfd_pidfd_read_proc(pipe_fds[0], "comm", buf, sizeof(buf)), -EBADF);
	close(pipe_fds[1]);
	close(pipe_fds[0]);
	CHECK_EQ(rfd_pidfd_alive(pipe_fds[0]), -EBADF);
	CHECK_EQ(rfd_pidfd_read_proc(pipe_fds[0], "comm", buf, sizeof(buf)), -EBADF);

	pidfd = own_pidfd();
	if (pidfd < 0) {
		rfd_test_skip("no pidfd of this process: neither SO_PEERPIDFD nor pidfd_open()");
		return;
	}
	CHECK_EQ(rfd_pidfd_alive(pidfd), 1);
	prctl(PR_GET_NAME, comm, 0, 0, 0);
	n = rfd_pidfd_read_proc(pidfd, "comm", buf, sizeof(buf));
	CHECK_EQ(n, (ssize_t)strlen(comm) + 1);
	CHECK(strncmp(buf, comm, strlen(comm)) == 0 && buf[strlen(comm)] == '\n');
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	/* valgrind answers readlink of /proc/self/exe with its guest's path, not the process's. */
	if (!rfd_test_under_valgrind()) {
		CHECK_EQ(rfd_pidfd_read_proc(pidfd, "exe", buf, sizeof(buf)), n);
		CHECK(strcmp(buf, exe) == 0);
	}
	CHECK(rfd_pidfd_read_proc(pidfd, "status", buf, sizeof(buf)) > 0);
	CHECK(status_names_pid(buf, getpid()));
	CHECK_EQ(rfd_pidfd_read_proc(pidfd, "status", buf, 5), 4);
	CHECK(strcmp(buf, "Name") == 0);
	CHECK_EQ(rfd_pidfd_read_proc(pidfd, "no-such-entry", buf, sizeof(buf)), -ENOENT);
	CHECK_EQ(rfd_pidfd_read_proc(pidfd, "../1/comm", buf, sizeof(buf)), -EINVAL);
	CHECK_EQ(rfd_pidfd_read_proc(pidfd, "/etc/hostname", buf, sizeof(buf)), -EINVAL);
	CHECK_EQ(rfd_pidfd_read_proc(pidfd, "", buf, sizeof(buf)), -EINVAL);
	CHECK_EQ(rfd_pidfd_read_proc(pidfd, "comm", buf, 0), -EINVAL);
	CHECK_EQ(rfd_pidfd_read_proc(pidfd, "comm", NULL, 8), -EINVAL);
	close(pidfd);

	if (rfd_test_under_valgrind())
		rfd_test_skip(
		    "a child's pidfd needs pidfd_open(), which valgrind 3.19 does not know");
	else
		check_helpers_on_a_child();
}

/* ---- Requests and their identity ---- */

/*
 * CRED-1, CRED-2, CRED-3: a request of a forked child carries that child's
 * credentials and a pidfd naming it, pinned where the kernel has
 * SO_PEERPIDFD.
 */
static void
test_credentials_of_a_forked_child(void)
{
	struct client_plan plan = {.name = "rfd-child", .method = "hello"};
	struct rfd_server *server;
	const struct rfd_peer *peer;
	struct rfd_peer sender;
	char status[4096];
	int gate[2], pidfd;
	pid_t child;

	REQUIRE(pipe2(gate, O_CLOEXEC) == 0);
	server = start_server(NULL, NULL, NULL);
	if (!server) {
		close(gate[0]);
		close(gate[1]);
		return;
	}
	plan.gate = gate[0];
	plan.gate_writer = gate[1];
	child = spawn_client(&plan);
	close(gate[0]);
	CHECK(serve_until(server, held_at_least, 1));
	if (n_held == 1) {
		peer = rfd_msg_peer(held[0]);
		CHECK_EQ(peer->pid, child);
		CHECK_EQ(peer->uid, getuid());
		CHECK_EQ(peer->gid, getgid());
		CHECK_EQ(rfd_msg_peer_pinned(held[0]), kernel_has_peer_pidfd());
		CHECK_EQ(rfd_msg_sender(held[0], &sender), -ENODATA);
		pidfd = rfd_msg_peer_pidfd(held[0]);
		CHECK_EQ(pidfd >= 0, kernel_has_peer_pidfd());
		if (pidfd >= 0) {
			CHECK(fcntl(pidfd, F_GETFD) & FD_CLOEXEC);
			CHECK_EQ(rfd_pidfd_alive(pidfd), 1);
			CHECK(rfd_pidfd_read_proc(pidfd, "status", status, sizeof(status)) > 0);
			CHECK(status_names_pid(status, child));
			CHECK(strstr(status, "Name:\trfd-child\n"));
		}
	}
	close(gate[1]);
	CHECK_EQ(reap(child), 0);
	if (n_held == 1 && rfd_msg_peer_pidfd(held[0]) >= 0) {
		CHECK_EQ(rfd_pidfd_alive(rfd_msg_peer_pidfd(held[0])), 0);
		CHECK_EQ(rfd_pidfd_read_proc(rfd_msg_peer_pidfd(held[0]), "status", status,
		                             sizeof(status)),
		         -ESRCH);
	}
	free_held();
	rfd_server_free(server);
}

/*
 * CRED-7, CRED-5: a handler that holds a request past its client's exit
 * still reads its credentials and a valid pidfd, which says the client has
 * gone; the pidfd is closed with the request, not with the connection.
 */
static void
test_identity_outlives_the_connection(void)
{
	struct rfd_server *server = start_server(NULL, NULL, NULL);
	struct client_plan plan = {.name = "rfd-gone", .gate = -1, .gate_writer = -1};
	struct rfd_msg *request;
	int fds_held, pidfd, answered;
	char comm[64];
	pid_t child;

	REQUIRE(server);
	child = spawn_client(&plan);
	CHECK(serve_until(server, held_at_least, 1));
	CHECK_EQ(reap(child), 0);
	CHECK(serve_until(server, connections_at_most, 0));
	if (n_held != 1) {
		CHECK_EQ(n_held, 1);
		free_held();
		rfd_server_free(server);
		return;
	}
	request = held[0];
	n_held = 0;

	CHECK_EQ(rfd_msg_peer(request)->pid, child);
	CHECK_EQ(rfd_msg_peer(request)->uid, getuid());
	pidfd = rfd_msg_peer_pidfd(request);
	CHECK_EQ(pidfd >= 0, kernel_has_peer_pidfd());
	if (pidfd >= 0) {
		CHECK(rfd_test_fd_is_open(pidfd));
		CHECK_EQ(rfd_pidfd_alive(pidfd), 0);
		CHECK_EQ(rfd_pidfd_read_proc(pidfd, "comm", comm, sizeof(comm)), -ESRCH);
	}
	fds_held = rfd_test_count_fds();
	answered = rfd_reply(request, "", 1, NULL, 0, RFD_FDS_DUP);
	CHECK_EQ(answered, -ENOTCONN);
	CHECK_EQ(rfd_test_count_fds(), fds_held - (pidfd >= 0 ? 1 : 0));
	rfd_server_free(server);
}

/* With the fallback forced: never pinned, and a pidfd only where pid_max allows (CRED-8). */
static void
test_forced_fallback(void)
{
	struct rfd_server_options options;
	struct rfd_server *server;
	struct client_plan plan = {
	    .name = "rfd-fallback", .method = "hello", .gate = -1, .gate_writer = -1};
	long long pid_max = rfd_read_pid_max(NULL);
	pid_t child;

	rfd_server_options_init(&options);
	CHECK(!options.pidfd_fallback);
	options.pidfd_fallback = true;
	server = start_server(&options, NULL, NULL);
	REQUIRE(server);
	child = spawn_client(&plan);
	CHECK(serve_until(server, held_at_least, 1));
	CHECK_EQ(reap(child), 0);
	if (n_held == 1) {
		CHECK_EQ(rfd_msg_peer(held[0])->pid, child);
		CHECK(!rfd_msg_peer_pinned(held[0]));
		/* On this kernel's pid_max below 4194304 the fallback takes no pidfd at all. */
		if (pid_max < RFD_PID_MAX_SAFE)
			CHECK_EQ(rfd_msg_peer_pidfd(held[0]), -1);
	}
	free_held();
	rfd_server_free(server);
}

/* ---- Per-message credentials ---- */

/*
 * A REQUEST_FNF frame for "note" on stream 5, empty arguments: RequestRpcMetadata
 * {1: protocol 2, 2: name "note", 3: kind 1}, then the data 00 (spec 4.4, 6.2).
 */
static const char split_request_hex[] = "00 00 15 00 00 00 05 15 00 00 00 0b"
                                        "15 04 18 04 6e 6f 74 65 15 02 00 00";

enum { SPLIT_AT = 10 };

/*
 * The client of the per-message test: one request of its own, one from a
 * child it forks (as another user when it can), and one whose first bytes
 * it writes itself and whose last bytes a second child writes.  It reports
 * the two children's pids on @report.
 */
static int
run_writers(int report)
{
	uint8_t frame[64];
	size_t len = rfd_test_hex(split_request_hex, frame, sizeof(frame));
	struct rfd_client *client;
	pid_t writers[2];
	int r;

	if (rfd_client_connect(socket_path, NULL, &client) < 0)
		return 10;
	if (rfd_client_oneway(client, "first", "", 1, NULL, 0, RFD_FDS_DUP, wait_ms()) < 0)
		return 11;
	writers[0] = fork();
	if (writers[0] == 0) {
		if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
			_exit(12);
		r = rfd_client_oneway(client, "second", "", 1, NULL, 0, RFD_FDS_DUP, wait_ms());
		rfd_client_free(client); /* its copy of the socket only: the connection stays */
		_exit(r < 0 ? 13 : 0);
	}
	r = reap(writers[0]);
	if (r == 0 && write(rfd_client_fd(client), frame, SPLIT_AT) != SPLIT_AT)
		r = 14;
	writers[1] = r ? -1 : fork();
	if (writers[1] == 0) {
		ssize_t n = write(rfd_client_fd(client), frame + SPLIT_AT, len - SPLIT_AT);

		rfd_client_free(client);
		_exit(n == (ssize_t)(len - SPLIT_AT) ? 0 : 15);
	}
	if (r == 0)
		r = reap(writers[1]);
	if (write(report, writers, sizeof(writers)) != sizeof(writers))
		r = 16;
	rfd_client_free(client);
	return r;
}

/* CRED-11: the listening socket at socket_path, found among this process's FDs, has SO_PASSCRED. */
static bool
listening_socket_passes_credentials(void)
{
	for (int fd = 3; fd < 1024; fd++) {
		struct sockaddr_un addr;
		socklen_t len = sizeof(addr);
		int listening = 0, passcred = 0;
		socklen_t option_len = sizeof(int);

		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &option_len) < 0 ||
		    !listening || getsockname(fd, (struct sockaddr *)&addr, &len) < 0 ||
		    addr.sun_family != AF_UNIX || strcmp(addr.sun_path, socket_path) != 0)
			continue;
		option_len = sizeof(int);
		return getsockopt(fd, SOL_SOCKET, SO_PASSCRED, &passcred, &option_len) == 0 &&
		       passcred;
	}
	return false;
}

/*
 * CRED-6, CRED-10, CRED-11: with pass_credentials, each request carries the
 * credentials of the process that wrote it, and a request whose bytes two
 * processes wrote carries those of the one that wrote its last byte; the
 * connection's peer stays the process that connected.
 */
static void
test_sender_credentials_per_message(void)
{
	struct rfd_server_options options;
	struct rfd_server *server;
	struct rfd_peer sender;
	bool as_nobody = geteuid() == 0;
	pid_t child, writers[2] = {-1, -1};
	int report[2];

	rfd_server_options_init(&options);
	CHECK(!options.pass_credentials);
	options.pass_credentials = true;
	REQUIRE(pipe2(report, O_CLOEXEC) == 0);
	server = start_server(&options, NULL, NULL);
	if (!server) {
		close(report[0]);
		close(report[1]);
		return;
	}
	CHECK(listening_socket_passes_credentials());
	fflush(stdout);
	child = fork();
	if (child == 0) {
		close(report[0]);
		_exit(run_writers(report[1]));
	}
	close(report[1]);
	CHECK(serve_until(server, held_at_least, 3));
	CHECK_EQ(read(report[0], writers, sizeof(writers)), (ssize_t)sizeof(writers));
	close(report[0]);
	CHECK_EQ(reap(child), 0);
	if (n_held != 3) {
		CHECK_EQ(n_held, 3);
		free_held();
		rfd_server_free(server);
		return;
	}

	CHECK(strcmp(rfd_msg_method(held[0]), "first") == 0);
	CHECK_EQ(rfd_msg_sender(held[0], &sender), 0);
	CHECK_EQ(sender.pid, child);
	CHECK_EQ(sender.uid, getuid());
	CHECK_EQ(sender.gid, getgid());
	CHECK_EQ(rfd_msg_peer(held[0])->pid, child);

	CHECK(strcmp(rfd_msg_method(held[1]), "second") == 0);
	CHECK_EQ(rfd_msg_sender(held[1], &sender), 0);
	CHECK_EQ(sender.pid, writers[0]);
	CHECK_EQ(sender.uid, as_nobody ? 65534 : getuid());
	CHECK_EQ(sender.gid, as_nobody ? 65534 : getgid());
	/* The connection's identity is still that of the process that connected. */
	CHECK_EQ(rfd_msg_peer(held[1])->pid, child);
	CHECK_EQ(rfd_msg_peer(held[1])->uid, getuid());

	CHECK(strcmp(rfd_msg_method(held[2]), "note") == 0);
	CHECK_EQ(rfd_msg_sender(held[2], &sender), 0);
	CHECK_EQ(sender.pid, writers[1]);
	CHECK_EQ(rfd_msg_peer(held[2])->pid, child);

	CHECK_EQ(rfd_msg_sender(held[1], NULL), -EINVAL);
	CHECK_EQ(rfd_msg_sender(NULL, &sender), -EINVAL);
	free_held();
	rfd_server_free(server);
}

/* Messages that are not a server's requests have no identity. */
static void
test_no_identity_outside_requests(void)
{
	struct rfd_peer sender;

	CHECK_EQ(rfd_msg_peer(NULL)->pid, -1);
	CHECK_EQ(rfd_msg_peer(NULL)->uid, (uid_t)-1);
	CHECK_EQ(rfd_msg_peer_pidfd(NULL), -1);
	CHECK(!rfd_msg_peer_pinned(NULL));
	CHECK_EQ(rfd_msg_sender(NULL, &sender), -EINVAL);
}

/* ---- Pid reuse in a new pid namespace ---- */

/*
 * As pid 1 of a fresh pid namespace, with its own /proc: client A connects,
 * sends a request and exits; its pid is handed to client B through
 * ns_last_pid.  The bare pid now names B; A's pidfd says A is gone, B's
 * reads B.  Returns the number of failed checks.
 */
static int
pid_reuse_scenario(void)
{
	int before = rfd_test_failures, gate[2], fd;
	struct client_plan a = {
	    .name = "client-a", .method = "from-a", .gate = -1, .gate_writer = -1};
	struct client_plan b = {.name = "client-b", .method = "from-b"};
	struct rfd_server *server = start_server(NULL, NULL, NULL);
	char text[64], path[64];
	pid_t pid_a, pid_b;
	int pidfd_a, pidfd_b;

	if (!server || pipe2(gate, O_CLOEXEC) < 0)
		return 1;
	pid_a = spawn_client(&a);
	CHECK(serve_until(server, held_at_least, 1));
	CHECK_EQ(reap(pid_a), 0);
	CHECK(serve_until(server, connections_at_most, 0));

	/* The next fork of this namespace gets pid_a. */
	snprintf(text, sizeof(text), "%d", (int)pid_a - 1);
	fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
	CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	if (fd >= 0)
		close(fd);
	b.gate = gate[0];
	b.gate_writer = gate[1];
	pid_b = spawn_client(&b);
	close(gate[0]);
	CHECK_EQ(pid_b, pid_a);
	CHECK(serve_until(server, held_at_least, 2));
	if (n_held == 2) {
		/* The bare pid cannot tell them apart: it names B now. */
		CHECK_EQ(rfd_msg_peer(held[0])->pid, pid_a);
		CHECK_EQ(rfd_msg_peer(held[1])->pid, pid_a);
		CHECK_EQ(kill(pid_a, 0), 0);
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid_a);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		CHECK(fd >= 0 && read(fd, text, sizeof(text)) == 9 &&
		      memcmp(text, "client-b\n", 9) == 0);
		if (fd >= 0)
			close(fd);

		/* The pidfds can. */
		pidfd_a = rfd_msg_peer_pidfd(held[0]);
		pidfd_b = rfd_msg_peer_pidfd(held[1]);
		CHECK(rfd_msg_peer_pinned(held[0]) && rfd_msg_peer_pinned(held[1]));
		CHECK_EQ(rfd_pidfd_alive(pidfd_a), 0);
		CHECK_EQ(rfd_pidfd_read_proc(pidfd_a, "comm", text, sizeof(text)), -ESRCH);
		CHECK_EQ(rfd_pidfd_alive(pidfd_b), 1);
		CHECK_EQ(rfd_pidfd_read_proc(pidfd_b, "comm", text, sizeof(text)), 9);
		CHECK(strcmp(text, "client-b\n") == 0);
	}
	close(gate[1]);
	CHECK_EQ(reap(pid_b), 0);
	free_held();
	rfd_server_free(server);
	return rfd_test_failures - before > 100 ? 100 : rfd_test_failures - before;
}

/* Tell the parent why the namespaces could not be made, and exit with SKIP_STATUS. */
static void __attribute__((noreturn)) skip_child(int report, const char *what)
{
	char text[200];
	int n = snprintf(text, sizeof(text), "%s: %s", what, strerror(errno));

	if (write(report, text, (size_t)n) < 0) {
		/* The parent then reports a skip without the reason. */
	}
	_exit(SKIP_STATUS);
}

/* In a child: new mount and pid namespaces, a /proc of the new one, and the scenario as pid 1. */
static void __attribute__((noreturn)) run_in_new_pid_namespace(int report)
{
	pid_t init;

	if (unshare(CLONE_NEWNS | CLONE_NEWPID) < 0)
		skip_child(report, "unshare(CLONE_NEWNS | CLONE_NEWPID)");
	/* A propagation change ignores source and type; "none" keeps valgrind from objecting to
	 * NULL. */
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0)
		skip_child(report, "making the mounts private");
	init = fork();
	if (init < 0)
		skip_child(report, "fork into the new pid namespace");
	if (init == 0) {
		if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			skip_child(report, "mounting a /proc of the new pid namespace");
		close(report);
		_exit(pid_reuse_scenario());
	}
	close(report);
	_exit(reap(init));
}

/*
 * CRED-4: a client exits, another process gets its pid, and the pidfd taken
 * at accept tells them apart where the pid cannot.
 */
static void
test_pid_reuse_in_a_new_pid_namespace(void)
{
	int report[2], status;
	ssize_t n;
	pid_t child;

	if (!kernel_has_peer_pidfd()) {
		rfd_test_skip("the kernel has no SO_PEERPIDFD: no pinned pidfd to tell them apart");
		return;
	}
	REQUIRE(pipe2(report, O_CLOEXEC) == 0);
	fflush(stdout);
	fflush(stderr);
	child = fork();
	if (child == 0) {
		close(report[0]);
		run_in_new_pid_namespace(report[1]);
	}
	close(report[1]);
	status = reap(child);
	n = read(report[0], skip_text, sizeof(skip_text) - 1);
	skip_text[n > 0 ? n : 0] = '\0';
	close(report[0]);
	if (status == SKIP_STATUS) {
		rfd_test_skip(skip_text[0] ? skip_text : "no new pid namespace");
		return;
	}
	CHECK_EQ(status, 0);
}

/* ---- FdTest whoami ---- */

/* PeerInfo {pid 1234, uid 1000, gid 100, pidPinned true} as result field 0, from Apache Thrift
 * 0.17. */
static void
test_peer_info_codec(void)
{
	static const char expected_hex[] = "0c 00 15 a4 13 15 d0 0f 15 c8 01 11 00 00";
	static const char unknown_hex[] = "0c 00 15 01 15 01 15 fc ff 07 12 00 00";
	struct fdt_peer_info info = {.pid = 1234, .uid = 1000, .gid = 100, .pid_pinned = true};
	struct fdt_peer_info back;
	uint8_t expected[32], bad[32];
	struct fdt_bytes bytes;
	const char *why = NULL;
	size_t n = rfd_test_hex(expected_hex, expected, sizeof(expected));

	REQUIRE(fdt_encode_peer_info_result(&info, &bytes) == 0);
	CHECK_EQ(bytes.len, n);
	CHECK(bytes.len == n && memcmp(bytes.data, expected, n) == 0);
	fdt_bytes_free(&bytes);
	CHECK_EQ(fdt_decode_peer_info_result(expected, n, &back, &why), 0);
	CHECK(back.pid == 1234 && back.uid == 1000 && back.gid == 100 && back.pid_pinned);

	/* Unknown credentials: pid and uid -1, nobody's gid, not pinned. */
	info = (struct fdt_peer_info){.pid = -1, .uid = -1, .gid = 65534};
	n = rfd_test_hex(unknown_hex, expected, sizeof(expected));
	REQUIRE(fdt_encode_peer_info_result(&info, &bytes) == 0);
	CHECK(bytes.len == n && memcmp(bytes.data, expected, n) == 0);
	fdt_bytes_free(&bytes);

	/* No field 0; pid as an i64; a byte after the struct. */
	n = rfd_test_hex("00", bad, sizeof(bad));
	CHECK_EQ(fdt_decode_peer_info_result(bad, n, &back, &why), -EBADMSG);
	n = rfd_test_hex("0c 00 16 02 00 00", bad, sizeof(bad));
	CHECK_EQ(fdt_decode_peer_info_result(bad, n, &back, &why), -EBADMSG);
	CHECK(why && strstr(why, "pid"));
	n = rfd_test_hex("0c 00 15 02 00 00 00", bad, sizeof(bad));
	CHECK_EQ(fdt_decode_peer_info_result(bad, n, &back, &why), -EBADMSG);
	/* Unknown fields are skipped, absent ones are 0. */
	n = rfd_test_hex("0c 00 15 02 58 01 78 00 00", bad, sizeof(bad));
	CHECK_EQ(fdt_decode_peer_info_result(bad, n, &back, &why), 0);
	CHECK(back.pid == 1 && back.uid == 0 && back.gid == 0 && !back.pid_pinned);
}

/*
 * The client side of the whoami check, in a child: whoami with a pipe's
 * write end, expecting this process's credentials, the pipe closed by the
 * answer.  Returns 0, or a number naming the check that failed.
 */
static int
run_whoami(bool pinned_expected)
{
	struct fdt_peer_info info;
	struct rfd_client *client;
	struct rfd_msg *reply = NULL;
	int pipe_fds[2], r = 0;
	const uint8_t *data;
	const char *why;
	size_t len;
	char c;

	if (rfd_client_connect(socket_path, NULL, &client) < 0)
		return 10;
	if (pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return 11;
	if (rfd_client_call(client, FDT_METHOD_WHOAMI, "", 1, &pipe_fds[1], 1, RFD_FDS_TAKE,
	                    wait_ms(), &reply) < 0 ||
	    rfd_msg_kind(reply) != RFD_MSG_REPLY)
		r = 12;
	data = r ? NULL : rfd_msg_data(reply, &len);
	if (!r && fdt_decode_peer_info_result(data, len, &info, &why) < 0)
		r = 13;
	else if (!r && (info.pid != getpid() || info.uid != (int32_t)getuid() ||
	                info.gid != (int32_t)getgid()))
		r = 14;
	else if (!r && info.pid_pinned != pinned_expected)
		r = 15;
	else if (!r && read(pipe_fds[0], &c, 1) != 0)
		r = 16; /* the server kept the FD sent with whoami */
	rfd_msg_free(reply);
	close(pipe_fds[0]);
	rfd_client_free(client);
	return r;
}

/* CRED-12, CRED-13, CRED-14: the reference FdTest service's whoami. */
static void
test_whoami_service(void)
{
	struct fdt_service *service = NULL;
	struct rfd_server_options options;
	struct rfd_server *server;
	pid_t child;
	int status = -1;

	REQUIRE(fdt_service_new(-1, &service) == 0);
	rfd_server_options_init(&options);
	options.closed = fdt_service_closed;
	server = start_server(&options, fdt_service_handle, service);
	if (!server) {
		fdt_service_free(service);
		return;
	}
	fflush(stdout);
	child = fork();
	if (child == 0)
		_exit(run_whoami(kernel_has_peer_pidfd()));
	for (long long deadline = now_ms() + wait_ms(); now_ms() < deadline;) {
		rfd_server_run(server, 10);
		if (waitpid(child, &status, WNOHANG) == child)
			break;
	}
	if (!WIFEXITED(status)) {
		kill(child, SIGKILL);
		waitpid(child, &status, 0);
	}
	CHECK(WIFEXITED(status));
	CHECK_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0);
	rfd_server_free(server);
	fdt_service_free(service);
}

int
main(int argc, char **argv)
{
	static const struct rfd_test tests[] = {
	    {"fallback_rule", test_fallback_rule},
	    {"identity_modes", test_identity_modes},
	    {"pidfd_helpers", test_pidfd_helpers},
	    {"credentials_of_a_forked_child", test_credentials_of_a_forked_child},
	    {"identity_outlives_the_connection", test_identity_outlives_the_connection},
	    {"forced_fallback", test_forced_fallback},
	    {"sender_credentials_per_message", test_sender_credentials_per_message},
	    {"no_identity_outside_requests", test_no_identity_outside_requests},
	    {"pid_reuse_in_a_new_pid_namespace", test_pid_reuse_in_a_new_pid_namespace},
	    {"peer_info_codec", test_peer_info_codec},
	    {"whoami_service", test_whoami_service},
	    {NULL, NULL},
	};

	snprintf(socket_path, sizeof(socket_path), "/tmp/rfd-peer-%d.sock", (int)getpid());
	signal(SIGPIPE, SIG_IGN);
	return rfd_test_main(argc, argv, tests);
}
