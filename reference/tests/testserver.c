/* SPDX-License-Identifier: MIT */
#include "testserver.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

/* In the child: where to say "listening", and the server SIGTERM stops. */
static int ready_fd = -1;
static struct rfd_server *serving;

static void
on_term(int sig)
{
	(void)sig;
	rfd_server_stop(serving);
}

pid_t
rfd_test_server_fork(const char *path, void (*body)(const char *path))
{
	int ready[2];
	pid_t pid;
	char c;

	if (pipe2(ready, O_CLOEXEC) < 0)
		abort();
	pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		close(ready[0]);
		ready_fd = ready[1];
		body(path);
		_exit(3);
	}
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1) {
		fprintf(stderr, "the test server did not start\n");
		exit(1);
	}
	close(ready[0]);
	return pid;
}

int
rfd_test_serve(struct rfd_server *server)
{
	int r;

	serving = server;
	signal(SIGTERM, on_term);
	if (write(ready_fd, "r", 1) != 1)
		_exit(3);
	close(ready_fd);
	ready_fd = -1;
	r = rfd_server_run(server, -1);
	rfd_server_free(server);
	serving = NULL;
	return r;
}

void
rfd_test_server_stop(pid_t pid, int want_status)
{
	int status;

	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == want_status);
}
