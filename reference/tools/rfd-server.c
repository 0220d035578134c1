/* SPDX-License-Identifier: MIT */
/* rfd-server: serves the FdTest service on a Unix socket until SIGINT or SIGTERM. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <rocketfd/rocketfd.h>

#include "fdtest_service.h"
#include "log.h"

enum {
	EXIT_USAGE = 2,
	SOCKET_PATH_MAX = sizeof(((struct sockaddr_un *)0)->sun_path) - 1,
};

static const char usage_line[] =
    "usage: rfd-server --socket PATH [--root DIR] [--mode OCTAL] [--max-connections N]\n"
    "                  [--max-fds N] [--pass-credentials] [--trace] [-v] [--help]\n";

static const char help_text[] =
    "Serve the FdTest service (spec/fdtest.thrift) over fbthrift's Rocket transport on a\n"
    "Unix domain socket, with file descriptors passed alongside the calls.\n"
    "\n"
    "  --socket PATH          listen here (at most 107 bytes); a stale socket file is\n"
    "                         replaced, a socket another server listens on is not\n"
    "  --root DIR             the directory `open` serves regular files from; without\n"
    "                         it, `open` fails with EACCES\n"
    "  --mode OCTAL           the socket file's mode, e.g. 0600 (default: from the umask)\n"
    "  --max-connections N    connections beyond N are accepted and closed (default 1024)\n"
    "  --max-fds N            most FDs accepted with one message, 1..253 (default 253)\n"
    "  --pass-credentials     SO_PASSCRED: each request carries the credentials of the\n"
    "                         process that wrote it, logged with -v (whoami still\n"
    "                         answers those of the process that connected)\n"
    "  --trace                log every frame read (<) and written (>)\n"
    "  -v, --verbose          log each call and the FDs it carried (debug level)\n"
    "  -h, --help             this help\n"
    "\n"
    "The server is ready once the socket accepts connections.  It logs to stderr and\n"
    "prints nothing on stdout.  SIGINT or SIGTERM stops it: connections are closed,\n"
    "the socket file removed, and it exits 0.  Exit status 1: it could not start or\n"
    "failed while serving; 2: usage error.\n";

struct server_config {
	const char *socket_path;
	const char *root;
	struct rfd_server_options options;
};

static struct rfd_server *running_server;

static void
on_stop_signal(int sig)
{
	if (running_server)
		rfd_server_stop(running_server);
}

static void
on_trace(void *user, const char *line)
{
	log_info("frame %s", line);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	fprintf(stderr, "rfd-server: %s\n%s", what, usage_line);
	return EXIT_USAGE;
}

/* The option getopt refused, for a message. */
static const char *
bad_option(char **argv, char *buf, size_t size)
{
	if (optopt) {
		snprintf(buf, size, "-%c", optopt);
		return buf;
	}
	return argv[optind - 1];
}

/* A whole-string unsigned number in @base within [min, max]. */
static int
parse_number(const char *text, int base, unsigned long min, unsigned long max, unsigned long *value)
{
	char *end;

	errno = 0;
	if (text[0] == '-' || text[0] == '+' || text[0] == '\0')
		return -EINVAL;
	*value = strtoul(text, &end, base);
	if (errno || *end || *value < min || *value > max)
		return -EINVAL;
	return 0;
}

static int
parse_args(int argc, char **argv, struct server_config *config)
{
	static const struct option long_options[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"root", required_argument, NULL, 'r'},
	    {"mode", required_argument, NULL, 'm'},
	    {"max-connections", required_argument, NULL, 'c'},
	    {"max-fds", required_argument, NULL, 'f'},
	    {"pass-credentials", no_argument, NULL, 'p'},
	    {"trace", no_argument, NULL, 't'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	unsigned long value;
	char buf[8];
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":vh", long_options, NULL)) != -1) {
		switch (opt) {
		case 's':
			config->socket_path = optarg;
			break;
		case 'r':
			config->root = optarg;
			break;
		case 'm':
			if (parse_number(optarg, 8, 0, 07777, &value) < 0)
				return usage_error("--mode %s: not an octal file mode", optarg);
			config->options.socket_mode = (mode_t)value;
			break;
		case 'c':
			if (parse_number(optarg, 10, 1, UINT_MAX, &value) < 0)
				return usage_error("--max-connections %s: not a number from 1",
				                   optarg);
			config->options.max_connections = (unsigned)value;
			break;
		case 'f':
			if (parse_number(optarg, 10, 1, RFD_MAX_FDS, &value) < 0)
				return usage_error("--max-fds %s: not a number from 1 to 253",
				                   optarg);
			config->options.limits.max_fds_per_msg = (unsigned)value;
			break;
		case 'p':
			config->options.pass_credentials = true;
			break;
		case 't':
			config->options.trace = on_trace;
			break;
		case 'v':
			log_raise_level();
			break;
		case 'h':
			fputs(usage_line, stdout);
			fputs(help_text, stdout);
			exit(EXIT_SUCCESS);
		case ':':
			return usage_error("%s needs a value", argv[optind - 1]);
		default:
			return usage_error("unknown option %s", bad_option(argv, buf, sizeof(buf)));
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument %s", argv[optind]);
	if (!config->socket_path)
		return usage_error("--socket PATH is required");
	return 0;
}

/* The root directory, as an O_PATH FD; -1 without --root. */
static int
open_root(const char *root, int *root_fd)
{
	*root_fd = -1;
	if (!root)
		return 0;
	*root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*root_fd < 0) {
		log_error("--root %s: %s", root,
		          errno == ENOTDIR ? "not a directory" : strerror(errno));
		return -1;
	}
	return 0;
}

static void
explain_listen_error(const char *path, int err)
{
	struct stat st;

	if (err == -EADDRINUSE && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		log_error("cannot listen on %s: another server is accepting connections there",
		          path);
	else if (err == -EADDRINUSE)
		log_error("cannot listen on %s: the file exists and is not a socket", path);
	else if (err == -ENAMETOOLONG)
		log_error("cannot listen on %s: the path is longer than %d bytes", path,
		          (int)SOCKET_PATH_MAX);
	else
		log_error("cannot listen on %s: %s", path, strerror(-err));
}

static int
install_signal_handlers(sigset_t *blocked)
{
	struct sigaction action = {.sa_handler = on_stop_signal};
	struct sigaction ignore = {.sa_handler = SIG_IGN};

	sigemptyset(blocked);
	sigaddset(blocked, SIGINT);
	sigaddset(blocked, SIGTERM);
	sigemptyset(&action.sa_mask);
	sigemptyset(&ignore.sa_mask);
	/* Signals wait until the server exists to be stopped. */
	if (sigprocmask(SIG_BLOCK, blocked, NULL) < 0 || sigaction(SIGINT, &action, NULL) < 0 ||
	    sigaction(SIGTERM, &action, NULL) < 0 || sigaction(SIGPIPE, &ignore, NULL) < 0) {
		log_error("cannot set up signal handling: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* With --pass-credentials: log who wrote each request, then let the service handle it. */
static void
handle_logging_sender(void *user, struct rfd_msg *request)
{
	struct rfd_peer sender;

	if (rfd_msg_sender(request, &sender) == 0)
		log_debug("connection %llu: %s written by pid %d uid %u gid %u",
		          (unsigned long long)rfd_msg_connection(request), rfd_msg_method(request),
		          (int)sender.pid, (unsigned)sender.uid, (unsigned)sender.gid);
	fdt_service_handle(user, request);
}

static int
serve(const struct server_config *config, int root_fd)
{
	struct rfd_server_options options = config->options;
	struct fdt_service *service;
	struct rfd_server *server;
	sigset_t blocked;
	int r;

	r = fdt_service_new(root_fd, &service);
	if (r < 0) {
		log_error("cannot create the service: %s", strerror(-r));
		return EXIT_FAILURE;
	}
	if (install_signal_handlers(&blocked) < 0) {
		fdt_service_free(service);
		return EXIT_FAILURE;
	}
	options.closed = fdt_service_closed;
	r = rfd_server_listen(config->socket_path, &options,
	                      options.pass_credentials ? handle_logging_sender : fdt_service_handle,
	                      service, &server);
	if (r < 0) {
		explain_listen_error(config->socket_path, r);
		fdt_service_free(service);
		return EXIT_FAILURE;
	}
	running_server = server;
	log_info("listening on %s", config->socket_path);
	sigprocmask(SIG_UNBLOCK, &blocked, NULL);

	r = rfd_server_run(server, -1);
	if (r < 0)
		log_error("the server failed: %s", strerror(-r));
	else
		log_info("stopping");

	sigprocmask(SIG_BLOCK, &blocked, NULL);
	running_server = NULL;
	rfd_server_free(server);
	fdt_service_free(service);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

int
main(int argc, char **argv)
{
	struct server_config config = {0};
	int root_fd, r;

	log_init("rfd-server", LOG_LEVEL_INFO);
	rfd_server_options_init(&config.options);
	r = parse_args(argc, argv, &config);
	if (r != 0)
		return r;
	if (strlen(config.socket_path) > SOCKET_PATH_MAX) {
		log_error("--socket: the path is %zu bytes; a Unix socket path holds at most %d",
		          strlen(config.socket_path), (int)SOCKET_PATH_MAX);
		return EXIT_FAILURE;
	}
	if (open_root(config.root, &root_fd) < 0)
		return EXIT_FAILURE;
	return serve(&config, root_fd);
}
