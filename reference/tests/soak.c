/* SPDX-License-Identifier: MIT */
/*
 * rfd-soak: many concurrent connections, many calls, each carrying 1 to 4
 * FDs both ways, against a server in a child process; then checks that no
 * call failed, that neither process holds more FDs than before, and that
 * neither grew in memory after the warm-up.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rocketfd/rocketfd.h>

enum { IN_FLIGHT_PER_CONNECTION = 2, MAX_FDS_PER_CALL = 4 };

struct options {
	long connections;
	long calls;
	int growth_kib; /* memory growth allowed after the warm-up */
};

struct soak {
	struct rfd_client **clients;
	long connections;
	long started, completed, failed, wrong_fds;
	long target;
	int base_fd; /* /dev/null: every FD sent is a dup of it */
};

struct call {
	struct soak *soak;
	long index;
	size_t n_fds;
	struct rfd_client *client;
};

/* ---- The server, in a child ---- */

static struct rfd_server *child_server;

static void
stop_child(int sig)
{
	rfd_server_stop(child_server);
}

static void
echo_handler(void *user, struct rfd_msg *request)
{
	int fds[MAX_FDS_PER_CALL];
	size_t n = rfd_msg_fd_count(request), len;
	const uint8_t *data = rfd_msg_data(request, &len);

	for (size_t i = 0; i < n && i < MAX_FDS_PER_CALL; i++)
		fds[i] = rfd_msg_take_fd(request, i);
	rfd_reply(request, data, len, fds, n < MAX_FDS_PER_CALL ? n : MAX_FDS_PER_CALL,
	          RFD_FDS_TAKE);
}

static pid_t
start_server(const char *path, long connections)
{
	struct rfd_server_options options;
	int ready[2];
	pid_t pid;
	char c;

	if (pipe2(ready, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		rfd_server_options_init(&options);
		options.max_connections = (unsigned)connections + 8;
		if (rfd_server_listen(path, &options, echo_handler, NULL, &child_server) < 0)
			_exit(3);
		signal(SIGTERM, stop_child);
		if (write(ready[1], "r", 1) != 1)
			_exit(3);
		rfd_server_run(child_server, -1);
		rfd_server_free(child_server);
		_exit(0);
	}
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1)
		pid = -1;
	close(ready[0]);
	return pid;
}

/* ---- Measurements ---- */

static long
count_fds(pid_t pid)
{
	char path[64];
	struct dirent *entry;
	long n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((entry = readdir(dir)))
		if (entry->d_name[0] != '.')
			n++;
	closedir(dir);
	return pid == getpid() ? n - 1 : n; /* our own count includes the directory's FD */
}

static long
rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- The client side ---- */

static int start_call(struct soak *soak, struct rfd_client *client);

static void
on_reply(void *user, int status, struct rfd_msg *reply)
{
	struct call *call = user;
	struct soak *soak = call->soak;

	soak->completed++;
	if (status < 0 || rfd_msg_kind(reply) != RFD_MSG_REPLY)
		soak->failed++;
	else if (rfd_msg_fd_count(reply) != call->n_fds)
		soak->wrong_fds++;
	rfd_msg_free(reply);
	if (soak->started < soak->target)
		start_call(soak, call->client);
	free(call);
}

static int
start_call(struct soak *soak, struct rfd_client *client)
{
	struct call *call = malloc(sizeof(*call));
	int fds[MAX_FDS_PER_CALL];
	int r;

	if (!call)
		return -ENOMEM;
	call->soak = soak;
	call->index = soak->started;
	call->client = client;
	call->n_fds = 1 + (size_t)(soak->started % MAX_FDS_PER_CALL);
	for (size_t i = 0; i < call->n_fds; i++)
		fds[i] = fcntl(soak->base_fd, F_DUPFD_CLOEXEC, 0);
	soak->started++;
	r = rfd_client_call_async(client, "echo", &call->index, sizeof(call->index), fds,
	                          call->n_fds, RFD_FDS_TAKE, 30000, on_reply, call, NULL);
	if (r < 0) {
		soak->failed++;
		soak->completed++;
		free(call);
	}
	return r;
}

static int
run_calls(struct soak *soak, long warmup, long *rss_after_warmup, pid_t server)
{
	struct pollfd *pfds = calloc((size_t)soak->connections, sizeof(*pfds));
	double last_report = now_s();

	if (!pfds)
		return -ENOMEM;
	for (long c = 0; c < soak->connections; c++)
		for (int k = 0; k < IN_FLIGHT_PER_CONNECTION && soak->started < soak->target; k++)
			start_call(soak, soak->clients[c]);

	while (soak->completed < soak->target) {
		for (long c = 0; c < soak->connections; c++) {
			pfds[c].fd = rfd_client_fd(soak->clients[c]);
			pfds[c].events = rfd_client_events(soak->clients[c]);
		}
		if (poll(pfds, (nfds_t)soak->connections, 1000) < 0 && errno != EINTR)
			break;
		for (long c = 0; c < soak->connections; c++)
			if (pfds[c].revents)
				rfd_client_process(soak->clients[c], pfds[c].revents);
		if (*rss_after_warmup < 0 && soak->completed >= warmup) {
			rss_after_warmup[0] = rss_kib(getpid());
			rss_after_warmup[1] = rss_kib(server);
		}
		if (now_s() - last_report > 5) {
			fprintf(stderr, "rfd-soak: info: %ld of %ld calls done\n", soak->completed,
			        soak->target);
			last_report = now_s();
		}
	}
	free(pfds);
	return 0;
}

static void
usage(FILE *out)
{
	fprintf(out, "usage: rfd-soak [--connections N] [--calls N] [--growth-kib N]\n"
	             "\n"
	             "N connections (default 100) to a server in a child process, N calls in all\n"
	             "(default 100000), two in flight per connection, each carrying 1 to 4 FDs\n"
	             "there and back.  Fails when a call fails, when either process holds more\n"
	             "FDs at the end than after connecting, or when either grew by more than\n"
	             "--growth-kib (default 2048) of memory after the first tenth of the calls.\n");
}

int
main(int argc, char **argv)
{
	static const struct option long_options[] = {
	    {"connections", required_argument, NULL, 'c'},
	    {"calls", required_argument, NULL, 'n'},
	    {"growth-kib", required_argument, NULL, 'g'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct options o = {.connections = 100, .calls = 100000, .growth_kib = 2048};
	struct soak soak = {0};
	struct rfd_client_options client_options;
	struct rlimit limit;
	char path[64];
	long fds_before[2], fds_after[2], rss_warm[2] = {-1, -1}, rss_end[2];
	double started;
	bool ok;
	pid_t server;
	int opt, status;

	while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			o.connections = strtol(optarg, NULL, 10);
			break;
		case 'n':
			o.calls = strtol(optarg, NULL, 10);
			break;
		case 'g':
			o.growth_kib = (int)strtol(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (o.connections < 1 || o.calls < 1) {
		usage(stderr);
		return 2;
	}

	/* Each connection is an FD here and one or two in the server, plus FDs in flight. */
	getrlimit(RLIMIT_NOFILE, &limit);
	limit.rlim_cur = limit.rlim_max;
	setrlimit(RLIMIT_NOFILE, &limit);
	signal(SIGPIPE, SIG_IGN);

	snprintf(path, sizeof(path), "/tmp/rfd-soak-%d.sock", (int)getpid());
	server = start_server(path, o.connections);
	if (server < 0) {
		fprintf(stderr, "rfd-soak: error: cannot start the server\n");
		return 2;
	}
	soak.connections = o.connections;
	soak.target = o.calls;
	soak.base_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	soak.clients = calloc((size_t)o.connections, sizeof(*soak.clients));
	rfd_client_options_init(&client_options);
	for (long c = 0; c < o.connections; c++)
		if (rfd_client_connect(path, &client_options, &soak.clients[c]) < 0) {
			fprintf(stderr, "rfd-soak: error: connection %ld failed\n", c);
			kill(server, SIGKILL);
			return 2;
		}
	fds_before[0] = count_fds(getpid());
	fds_before[1] = count_fds(server);

	started = now_s();
	run_calls(&soak, o.calls / 10, rss_warm, server);
	rss_end[0] = rss_kib(getpid());
	rss_end[1] = rss_kib(server);
	usleep(200 * 1000); /* the server closes what it echoed as its writes complete */
	fds_after[0] = count_fds(getpid());
	fds_after[1] = count_fds(server);

	for (long c = 0; c < o.connections; c++)
		rfd_client_free(soak.clients[c]);
	free(soak.clients);
	close(soak.base_fd);
	kill(server, SIGTERM);
	waitpid(server, &status, 0);

	printf("connections %ld, calls %ld in %.1f s (%.0f calls/s, %.0f FDs/s each way)\n",
	       o.connections, soak.completed, now_s() - started,
	       soak.completed / (now_s() - started), soak.completed * 2.5 / (now_s() - started));
	printf("failed calls %ld, replies with the wrong FD count %ld\n", soak.failed,
	       soak.wrong_fds);
	printf("open FDs: client %ld -> %ld, server %ld -> %ld\n", fds_before[0], fds_after[0],
	       fds_before[1], fds_after[1]);
	printf("memory after warm-up -> end: client %ld -> %ld KiB, server %ld -> %ld KiB\n",
	       rss_warm[0], rss_end[0], rss_warm[1], rss_end[1]);
	ok = soak.failed == 0 && soak.wrong_fds == 0 && soak.completed == o.calls &&
	     fds_after[0] <= fds_before[0] && fds_after[1] <= fds_before[1] && WIFEXITED(status) &&
	     WEXITSTATUS(status) == 0;
#ifdef __SANITIZE_ADDRESS__
	/* AddressSanitizer's quarantine keeps freed memory on purpose: growth means nothing. */
	printf("memory growth not judged under AddressSanitizer\n");
#else
	ok = ok && rss_end[0] - rss_warm[0] <= o.growth_kib &&
	     rss_end[1] - rss_warm[1] <= o.growth_kib;
#endif
	printf("%d passed, %d failed\n", ok ? 1 : 0, ok ? 0 : 1);
	return ok ? 0 : 1;
}
