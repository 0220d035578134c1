/* SPDX-License-Identifier: MIT */
/*
 * The server's socket file and connection handling: stale sockets replaced,
 * live ones and other files left alone, the file mode, the connection limit.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rocketfd/rocketfd.h>

#include "testutil.h"

static char dir[64];

static void
path_in_dir(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", dir, name);
}

static void
answer_empty(void *user, struct rfd_msg *request)
{
	rfd_reply(request, NULL, 0, NULL, 0, RFD_FDS_DUP);
}

/* A socket file nobody listens on: bound, then its socket closed. */
static void
make_stale_socket(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memcpy(addr.sun_path, path, strlen(path));
	bind(sock, (struct sockaddr *)&addr, sizeof(addr));
	close(sock);
}

static void
test_stale_socket_is_replaced(void)
{
	struct rfd_server *server = NULL;
	char path[128];

	path_in_dir(path, sizeof(path), "stale.sock");
	make_stale_socket(path);
	CHECK_EQ(rfd_server_listen(path, NULL, answer_empty, NULL, &server), 0);
	rfd_server_free(server);
	CHECK(access(path, F_OK) < 0);
}

static void
test_live_socket_and_other_files_are_left_alone(void)
{
	struct rfd_server *first = NULL, *second = NULL;
	char path[128], file[128];
	int fd;

	path_in_dir(path, sizeof(path), "live.sock");
	REQUIRE(rfd_server_listen(path, NULL, answer_empty, NULL, &first) == 0);
	CHECK_EQ(rfd_server_listen(path, NULL, answer_empty, NULL, &second), -EADDRINUSE);
	CHECK(access(path, F_OK) == 0); /* the first server's file survived the attempt */
	rfd_server_free(first);

	path_in_dir(file, sizeof(file), "plain-file");
	fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	close(fd);
	CHECK_EQ(rfd_server_listen(file, NULL, answer_empty, NULL, &second), -EADDRINUSE);
	CHECK(access(file, F_OK) == 0);
	unlink(file);
}

static void
test_socket_mode_and_path_length(void)
{
	struct rfd_server_options options;
	struct rfd_server *server = NULL;
	char path[128], long_path[200];
	struct stat st;

	rfd_server_options_init(&options);
	options.socket_mode = 0600;
	path_in_dir(path, sizeof(path), "mode.sock");
	REQUIRE(rfd_server_listen(path, &options, answer_empty, NULL, &server) == 0);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	rfd_server_free(server);

	/* TRANSPORT-2: an overlong path is refused, not truncated, and creates nothing. */
	memset(long_path, 'x', sizeof(long_path) - 1);
	long_path[sizeof(long_path) - 1] = '\0';
	memcpy(long_path, dir, strlen(dir));
	long_path[strlen(dir)] = '/';
	CHECK_EQ(rfd_server_listen(long_path, NULL, answer_empty, NULL, &server), -ENAMETOOLONG);
}

static struct rfd_server *child_server;

static void
stop_child(int sig)
{
	rfd_server_stop(child_server);
}

/* LIMIT-13: connections beyond the limit are accepted and closed at once. */
static void
test_connections_over_the_limit_are_closed(void)
{
	struct rfd_server_options options;
	struct rfd_client_options client_options;
	struct rfd_client *clients[3] = {NULL, NULL, NULL};
	char path[128];
	int ready[2], status;
	pid_t pid;
	char c;

	path_in_dir(path, sizeof(path), "limited.sock");
	REQUIRE(pipe2(ready, O_CLOEXEC) == 0);
	pid = fork();
	if (pid == 0) {
		rfd_server_options_init(&options);
		options.max_connections = 2;
		if (rfd_server_listen(path, &options, answer_empty, NULL, &child_server) < 0)
			_exit(3);
		signal(SIGTERM, stop_child);
		if (write(ready[1], "r", 1) != 1)
			_exit(3);
		rfd_server_run(child_server, -1);
		rfd_server_free(child_server);
		_exit(0);
	}
	close(ready[1]);
	REQUIRE(read(ready[0], &c, 1) == 1);
	close(ready[0]);

	rfd_client_options_init(&client_options);
	client_options.connect_timeout_ms = 3000;
	CHECK_EQ(rfd_client_connect(path, &client_options, &clients[0]), 0);
	CHECK_EQ(rfd_client_connect(path, &client_options, &clients[1]), 0);
	/* Refused at once (ECONNRESET), not left to time out in the backlog. */
	CHECK_EQ(rfd_client_connect(path, &client_options, &clients[2]), -ECONNRESET);
	rfd_client_free(clients[0]);
	rfd_client_free(clients[1]);

	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* CPU time (user + system, in clock ticks) that @pid has used. */
static long
cpu_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long utime = 0, stime = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	p = strrchr(buf, ')');
	/* Fields after the command: state is field 3; utime and stime are 14 and 15. */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
	                 &stime) != 2)
		return -1;
	return (long)(utime + stime);
}

/*
 * accept() at EMFILE: the server stops accepting for a while instead of
 * spinning on the pending connection, and serves it once FDs are free.
 */
static void
test_accept_at_emfile_does_not_spin(void)
{
	struct rfd_client_options client_options;
	struct rfd_client *first = NULL, *waiting = NULL;
	char path[128];
	int ready[2], status;
	long before, after;
	pid_t pid;
	char c;

	if (rfd_test_under_valgrind()) {
		rfd_test_skip("valgrind only emulates RLIMIT_NOFILE (runs under ASan instead)");
		return;
	}
	path_in_dir(path, sizeof(path), "emfile.sock");
	REQUIRE(pipe2(ready, O_CLOEXEC) == 0);
	pid = fork();
	if (pid == 0) {
		struct rlimit limit;

		if (rfd_server_listen(path, NULL, answer_empty, NULL, &child_server) < 0)
			_exit(3);
		signal(SIGTERM, stop_child);
		/* Room for exactly one more FD: one connection, not two. */
		limit.rlim_cur = limit.rlim_max = (rlim_t)rfd_test_count_fds() + 1;
		if (write(ready[1], "r", 1) != 1 || setrlimit(RLIMIT_NOFILE, &limit) < 0)
			_exit(3);
		rfd_server_run(child_server, -1);
		rfd_server_free(child_server);
		_exit(0);
	}
	close(ready[1]);
	REQUIRE(read(ready[0], &c, 1) == 1);
	close(ready[0]);

	rfd_client_options_init(&client_options);
	client_options.connect_timeout_ms = 3000;
	CHECK_EQ(rfd_client_connect(path, &client_options, &first), 0);
	/* The second waits in the backlog while the server is at its limit. */
	{
		struct sockaddr_un addr = {.sun_family = AF_UNIX};
		int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		memcpy(addr.sun_path, path, strlen(path));
		CHECK(connect(sock, (struct sockaddr *)&addr, sizeof(addr)) == 0);
		before = cpu_ticks(pid);
		usleep(500 * 1000);
		after = cpu_ticks(pid);
		/* A busy loop would burn the whole half second (about 50 ticks). */
		CHECK(before >= 0 && after - before < 10);

		rfd_client_free(first);
		first = NULL;
		CHECK_EQ(rfd_client_adopt(sock, &client_options, &waiting), 0);
	}
	rfd_client_free(waiting);

	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static const struct rfd_test tests[] = {
    {"accept_at_emfile_does_not_spin", test_accept_at_emfile_does_not_spin},
    {"stale_socket_is_replaced", test_stale_socket_is_replaced},
    {"live_socket_and_other_files_are_left_alone", test_live_socket_and_other_files_are_left_alone},
    {"socket_mode_and_path_length", test_socket_mode_and_path_length},
    {"connections_over_the_limit_are_closed", test_connections_over_the_limit_are_closed},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
	int status;

	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "/tmp/rfd-server-test-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	status = rfd_test_main(argc, argv, tests);
	rmdir(dir);
	return status;
}
