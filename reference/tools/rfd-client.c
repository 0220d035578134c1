/* SPDX-License-Identifier: MIT */
/* rfd-client: calls the FdTest service's methods from the shell, with FDs, and runs the demo. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <rocketfd/rocketfd.h>

#include "fdtest.h"
#include "log.h"
#include "scenarios.h"

enum {
	EXIT_CHECK = 1, /* the call failed or a check failed */
	EXIT_USAGE = 2, /* usage or connection error */
	DEFAULT_TIMEOUT_MS = 10000,
	DEFAULT_OPEN_BYTES = 64,
	MAX_OPEN_BYTES = 1 << 20,
	MAX_STREAM_CREDITS = 0x7FFFFFFE, /* rfd_client_stream() takes no more */
	LINE_SIZE = 256,
};

static const char usage_line[] =
    "usage: rfd-client --socket PATH [--timeout MS] [--offer NAMES] [--trace] [-v] COMMAND "
    "ARGS...\n"
    "       rfd-client --socket PATH [--offer NAMES] --scenario NAME\n";

static const char help_text[] =
    "Call the FdTest service (spec/fdtest.thrift) of a server such as rfd-server,\n"
    "passing file descriptors with the calls.\n"
    "\n"
    "Options:\n"
    "  --socket PATH        the server's Unix socket\n"
    "  --timeout MS         how long each call may take (default 10000; -1: no limit)\n"
    "  --offer NAMES        the extensions to offer in SETUP, comma-separated: sink\n"
    "                       (FDs on sink items and final responses), exception (FDs\n"
    "                       on declared exceptions); \"none\" offers nothing (default\n"
    "                       sink,exception)\n"
    "  --trace              log every frame read (<) and written (>)\n"
    "  -v, --verbose        more detail on stderr (repeatable)\n"
    "  --scenario NAME      run a conformance scenario (spec section 18.4) as the\n"
    "                       client under test, instead of a COMMAND; exit 0 when it\n"
    "                       observed what the scenario requires, 1 when not, 2 when\n"
    "                       it could not run\n"
    "  -h, --help           this help\n"
    "\n"
    "Commands:\n"
    "  inspect [--tag T] SPEC...   send the FDs; print what the server saw of each\n"
    "  echo [--tag T] SPEC...      send the FDs and get them back; print what came back\n"
    "                              and whether each is the very open file sent\n"
    "  record [--tag T] SPEC...    send the FDs one-way, then print lastRecorded\n"
    "  last-recorded               print the report of this connection's last record\n"
    "                              (an empty report, as each run is a new connection)\n"
    "  whoami                      print the server's view of this client: the pid,\n"
    "                              uid and gid it took from the socket, and whether it\n"
    "                              holds a pidfd pinned to this process (pidPinned)\n"
    "  open PATH [--bytes N]       have the server open PATH beneath its root; print\n"
    "                              the path and the first N bytes (default 64) read\n"
    "                              through the FD it sent\n"
    "  demo [--open PATH]          pass a regular file, both ends of pipes, a sealed\n"
    "                              memfd and a socket to inspect, echo and record,\n"
    "                              check what each side saw and that the server closed\n"
    "                              what it was given; with --open, open PATH too\n"
    "  stream [--credits N] COUNT FDS\n"
    "                              call streamFds: print each of the COUNT items and\n"
    "                              its FDS FDs (0 to 253), and check that each FD is\n"
    "                              the one its report describes and reads EOF; COUNT\n"
    "                              (0 to 2147483647) goes to the server as given, which\n"
    "                              refuses more than 10000; N (1 to 2147483646) is the\n"
    "                              window of items the server may send ahead (default\n"
    "                              100); --timeout bounds the first response and each\n"
    "                              item\n"
    "  sink [--tag T] ITEM...      call sinkFds: send each ITEM as a sink item, a SPEC\n"
    "                              with its one FD or \"none\" for an item without,\n"
    "                              then print the final report, check that it lists\n"
    "                              each FD sent, in order, and that the server closed\n"
    "                              them; FDs need the server to accept the extension\n"
    "                              sink; --timeout bounds each step\n"
    "\n"
    "A SPEC names one FD to send:\n"
    "  PATH         a file or directory, opened read-only (write ./socket for a file\n"
    "               named like a keyword)\n"
    "  pipe:r       the read end of a new pipe\n"
    "  pipe:w       the write end of a new pipe\n"
    "  memfd:TEXT   a sealed memfd holding TEXT\n"
    "  socket       one end of a new Unix socket pair\n"
    "  dev:null     /dev/null, read-write\n"
    "\n"
    "Reports print one line per FD: index, type (regular, dir, fifo, socket, chr,\n"
    "blk), dev:ino, cloexec yes/no, and the F_GETFL flags by name.\n"
    "\n"
    "Exit status: 0 success; 1 the call failed or a check failed; 2 usage or\n"
    "connection error.\n";

struct session {
	const char *socket_path;
	const char *scenario; /* --scenario: the client-under-test contract */
	int timeout_ms;
	struct rfd_client_options options;
	struct rfd_client *client;
};

static void
on_trace(void *user, const char *line)
{
	log_info("frame %s", line);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
	char what[LINE_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	fprintf(stderr, "rfd-client: %s\n%s", what, usage_line);
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

static const char *
errno_name(int err)
{
	const char *name = strerrorname_np(err);

	return name ? name : "unknown errno";
}

/* ---- FD specs ---- */

/* An FD to send, and what the client keeps of it. */
struct sent_fd {
	const char *what;
	int fd;                 /* the FD sent */
	int other;              /* the other end of a pipe or socket pair, or -1 */
	struct fdt_fdinfo info; /* as the client sees @fd */
};

static void
sent_fd_close(struct sent_fd *sent)
{
	if (sent->fd >= 0)
		close(sent->fd);
	if (sent->other >= 0)
		close(sent->other);
	sent->fd = sent->other = -1;
}

static void
sent_fds_close(struct sent_fd *sent, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sent_fd_close(&sent[i]);
}

static int
make_pipe(struct sent_fd *sent, bool write_end)
{
	int ends[2];

	if (pipe2(ends, O_CLOEXEC) < 0)
		return -errno;
	sent->fd = ends[write_end ? 1 : 0];
	sent->other = ends[write_end ? 0 : 1];
	/* The kept end is probed without blocking once the server has closed its copy. */
	fcntl(sent->other, F_SETFL, O_NONBLOCK);
	return 0;
}

static int
make_socket(struct sent_fd *sent)
{
	int ends[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) < 0)
		return -errno;
	sent->fd = ends[0];
	sent->other = ends[1];
	fcntl(sent->other, F_SETFL, O_NONBLOCK);
	return 0;
}

static int
make_memfd(struct sent_fd *sent, const char *text)
{
	size_t len = strlen(text);
	int fd = memfd_create("rfd-client", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return -errno;
	if ((len > 0 && write(fd, text, len) != (ssize_t)len) ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		int r = errno ? -errno : -EIO;

		close(fd);
		return r;
	}
	sent->fd = fd;
	return 0;
}

/* Open @path without blocking on a FIFO, then in blocking mode as usual. */
static int
open_file(struct sent_fd *sent, const char *path, int flags)
{
	int status;

	sent->fd = open(path, flags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (sent->fd < 0)
		return -errno;
	status = fcntl(sent->fd, F_GETFL);
	if (status < 0 || fcntl(sent->fd, F_SETFL, status & ~O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* Create the FD @spec names; the client owns what it made, even on failure. */
static int
open_spec(const char *spec, struct sent_fd *sent)
{
	int r;

	sent->what = spec;
	sent->fd = sent->other = -1;
	if (strcmp(spec, "pipe:r") == 0)
		r = make_pipe(sent, false);
	else if (strcmp(spec, "pipe:w") == 0)
		r = make_pipe(sent, true);
	else if (strncmp(spec, "memfd:", 6) == 0)
		r = make_memfd(sent, spec + 6);
	else if (strcmp(spec, "socket") == 0)
		r = make_socket(sent);
	else if (strcmp(spec, "dev:null") == 0)
		r = open_file(sent, "/dev/null", O_RDWR);
	else
		r = open_file(sent, spec, O_RDONLY);
	if (r == 0)
		r = fdt_describe_fd(sent->fd, &sent->info);
	if (r < 0)
		log_error("%s: cannot make this FD: %s", spec, strerror(-r));
	return r;
}

static int
open_specs(char **specs, size_t n, struct sent_fd *sent)
{
	for (size_t i = 0; i < n; i++) {
		if (open_spec(specs[i], &sent[i]) < 0) {
			sent_fds_close(sent, i + 1);
			return -1;
		}
	}
	return 0;
}

static void
collect_fds(const struct sent_fd *sent, size_t n, int *fds)
{
	for (size_t i = 0; i < n; i++)
		fds[i] = sent[i].fd;
}

/* ---- Calls ---- */

static int
connect_session(struct session *s)
{
	int r = rfd_client_connect(s->socket_path, &s->options, &s->client);

	if (r < 0) {
		log_error("cannot connect to %s: %s", s->socket_path,
		          r == -ENAMETOOLONG ? "the path is longer than 107 bytes" : strerror(-r));
		return EXIT_USAGE;
	}
	log_debug("connected to %s", s->socket_path);
	return 0;
}

/*
 * Call @method; on success *reply is a REPLY or an EXCEPTION.  Failures and
 * ERROR answers are logged; they return -1.
 */
static int
call(struct session *s, const char *method, const struct fdt_bytes *args, const int *fds,
     size_t n_fds, enum rfd_fd_mode mode, struct rfd_msg **reply)
{
	int r;

	*reply = NULL;
	r = rfd_client_call(s->client, method, args->data, args->len, fds, n_fds, mode,
	                    s->timeout_ms, reply);
	if (r < 0) {
		log_error("%s: the call failed: %s", method, rfd_client_error(s->client));
		return -1;
	}
	if (rfd_msg_kind(*reply) == RFD_MSG_ERROR) {
		log_error("%s: the server answered error 0x%" PRIx32 ": %s", method,
		          rfd_msg_error_code(*reply), rfd_msg_error_text(*reply));
		rfd_msg_free(*reply);
		*reply = NULL;
		return -1;
	}
	return 0;
}

/* A call whose only good answer is a REPLY. */
static int
call_for_reply(struct session *s, const char *method, const struct fdt_bytes *args, const int *fds,
               size_t n_fds, enum rfd_fd_mode mode, struct rfd_msg **reply)
{
	if (call(s, method, args, fds, n_fds, mode, reply) < 0)
		return -1;
	if (rfd_msg_kind(*reply) != RFD_MSG_REPLY) {
		log_error("%s: the server answered an exception this method does not declare: %s",
		          method, rfd_msg_error_text(*reply));
		rfd_msg_free(*reply);
		*reply = NULL;
		return -1;
	}
	return 0;
}

static int
call_report(struct session *s, const char *method, const struct fdt_bytes *args, const int *fds,
            size_t n_fds, enum rfd_fd_mode mode, struct fdt_report *report)
{
	struct rfd_msg *reply;
	const uint8_t *data;
	const char *why;
	size_t len;
	int r;

	if (call_for_reply(s, method, args, fds, n_fds, mode, &reply) < 0)
		return -1;
	data = rfd_msg_data(reply, &len);
	r = fdt_decode_report_result(data, len, report, &why);
	if (r < 0)
		log_error("%s: the answer does not decode: %s", method, why);
	else if (rfd_msg_fd_count(reply) > 0)
		log_warn("%s: the answer came with %zu FDs; they are closed", method,
		         rfd_msg_fd_count(reply));
	rfd_msg_free(reply);
	return r < 0 ? -1 : 0;
}

static void
close_if_taken(const int *fds, size_t n_fds, enum rfd_fd_mode mode)
{
	if (mode != RFD_FDS_TAKE)
		return;
	for (size_t i = 0; i < n_fds; i++)
		close(fds[i]);
}

static int
call_tagged_report(struct session *s, const char *method, const char *tag, const int *fds,
                   size_t n_fds, enum rfd_fd_mode mode, struct fdt_report *report)
{
	struct fdt_bytes args;
	int r;

	r = fdt_encode_args(tag, &args);
	if (r < 0) {
		close_if_taken(fds, n_fds, mode);
		log_error("%s: cannot encode the arguments: %s", method, strerror(-r));
		return -1;
	}
	r = call_report(s, method, &args, fds, n_fds, mode, report);
	fdt_bytes_free(&args);
	return r;
}

static int
call_last_recorded(struct session *s, struct fdt_report *report)
{
	struct fdt_bytes args;
	int r;

	r = fdt_encode_empty_args(&args);
	if (r < 0) {
		log_error("lastRecorded: cannot encode the arguments: %s", strerror(-r));
		return -1;
	}
	r = call_report(s, FDT_METHOD_LAST, &args, NULL, 0, RFD_FDS_DUP, report);
	fdt_bytes_free(&args);
	return r;
}

static int
call_record(struct session *s, const char *tag, const int *fds, size_t n_fds)
{
	struct fdt_bytes args;
	int r;

	r = fdt_encode_args(tag, &args);
	if (r < 0) {
		close_if_taken(fds, n_fds, RFD_FDS_TAKE);
		log_error("record: cannot encode the arguments: %s", strerror(-r));
		return -1;
	}
	r = rfd_client_oneway(s->client, FDT_METHOD_RECORD, args.data, args.len, fds, n_fds,
	                      RFD_FDS_TAKE, s->timeout_ms);
	fdt_bytes_free(&args);
	if (r < 0) {
		log_error("record: the call failed: %s", rfd_client_error(s->client));
		return -1;
	}
	return 0;
}

/*
 * Call echo; on success *reply is the REPLY and *tag the tag it answered.
 * The FDs are duplicated: the caller keeps its own.
 */
static int
call_echo(struct session *s, const char *tag, const int *fds, size_t n_fds, struct rfd_msg **reply,
          char **answered)
{
	struct fdt_bytes args;
	const uint8_t *data;
	const char *why;
	size_t len;
	int r;

	*answered = NULL;
	r = fdt_encode_args(tag, &args);
	if (r < 0) {
		log_error("echo: cannot encode the arguments: %s", strerror(-r));
		return -1;
	}
	r = call_for_reply(s, FDT_METHOD_ECHO, &args, fds, n_fds, RFD_FDS_DUP, reply);
	fdt_bytes_free(&args);
	if (r < 0)
		return -1;
	data = rfd_msg_data(*reply, &len);
	if (fdt_decode_string_result(data, len, answered, &why) < 0) {
		log_error("echo: the answer does not decode: %s", why);
		rfd_msg_free(*reply);
		*reply = NULL;
		return -1;
	}
	return 0;
}

/*
 * Call open.  Returns 0 with *fd (owned by the caller) and *path, 1 when the
 * server answered an FdTestError (in *error), or -1 when the call failed.
 */
static int
call_open(struct session *s, const char *path, int *fd, struct fdt_open_result *result)
{
	struct fdt_bytes args;
	struct rfd_msg *reply;
	const uint8_t *data;
	const char *why;
	size_t len;
	int r;

	*fd = -1;
	memset(result, 0, sizeof(*result));
	r = fdt_encode_args(path, &args);
	if (r < 0) {
		log_error("open: cannot encode the arguments: %s", strerror(-r));
		return -1;
	}
	r = call(s, FDT_METHOD_OPEN, &args, NULL, 0, RFD_FDS_DUP, &reply);
	fdt_bytes_free(&args);
	if (r < 0)
		return -1;
	data = rfd_msg_data(reply, &len);
	r = fdt_decode_open_result(data, len, result, &why);
	if (r < 0) {
		log_error("open: the answer does not decode: %s", why);
	} else if (rfd_msg_kind(reply) == RFD_MSG_EXCEPTION) {
		if (!result->failed) {
			log_error("open: the server answered an exception without an FdTestError");
			r = -1;
		}
	} else if (result->failed) {
		log_error("open: the server answered an FdTestError as a normal reply");
		r = -1;
	} else if (rfd_msg_fd_count(reply) != 1) {
		log_error("open: the answer came with %zu FDs instead of 1",
		          rfd_msg_fd_count(reply));
		r = -1;
	} else {
		*fd = rfd_msg_take_fd(reply, 0);
	}
	rfd_msg_free(reply);
	if (r < 0) {
		fdt_open_result_free(result);
		return -1;
	}
	return result->failed ? 1 : 0;
}

/* ---- Printing ---- */

static void
print_report(const struct fdt_report *report)
{
	char line[LINE_SIZE];

	printf("tag \"%s\"\n", report->tag);
	printf("fds %zu\n", report->n_fds);
	for (size_t i = 0; i < report->n_fds; i++)
		printf("%zu %s\n", i, fdt_fdinfo_string(&report->fds[i], line, sizeof(line)));
}

static void
print_escaped(const uint8_t *bytes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t c = bytes[i];

		if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\t')
			fputs("\\t", stdout);
		else if (c == '\\')
			fputs("\\\\", stdout);
		else if (c >= 0x20 && c < 0x7f)
			putchar(c);
		else
			printf("\\x%02x", c);
	}
}

/* Read up to @size bytes from the start of what @fd reads; returns the count or -errno. */
static ssize_t
read_some(int fd, uint8_t *buf, size_t size)
{
	size_t got = 0;

	while (got < size) {
		ssize_t n = read(fd, buf + got, size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* ---- Comparing FDs ---- */

/* Do @a and @b name the same open file description? */
static bool
same_open_file(int a, int b)
{
	struct stat sa, sb;
	pid_t self = getpid();
	long r;

	if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0)
		return false;
	if (sa.st_dev != sb.st_dev || sa.st_ino != sb.st_ino)
		return false;
	r = syscall(SYS_kcmp, self, self, KCMP_FILE, a, b);
	/* Without kcmp (not built in, or not permitted) dev and ino are all there is. */
	return r < 0 ? true : r == 0;
}

static bool
same_file_info(const struct fdt_fdinfo *a, const struct fdt_fdinfo *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->type == b->type && a->flags == b->flags;
}

enum close_state { PEER_OPEN, PEER_CLOSED, PEER_UNKNOWN };

/*
 * Whether every copy of @sent->fd but the client's other end is closed, for
 * a pipe end or socket the client no longer holds itself: a pipe's read end
 * sees EOF, a write end EPIPE, a socket EOF.
 */
static enum close_state
probe_closed(const struct sent_fd *sent)
{
	char byte = 'x';
	ssize_t n;

	if (sent->other < 0)
		return PEER_UNKNOWN;
	if (sent->info.type == S_IFIFO && (sent->info.flags & O_ACCMODE) == O_WRONLY)
		n = read(sent->other, &byte, 1);
	else if (sent->info.type == S_IFIFO)
		n = write(sent->other, &byte, 1);
	else if (sent->info.type == S_IFSOCK)
		n = recv(sent->other, &byte, 1, MSG_DONTWAIT);
	else
		return PEER_UNKNOWN;
	if (n == 0 || (n < 0 && (errno == EPIPE || errno == ECONNRESET)))
		return PEER_CLOSED;
	return PEER_OPEN;
}

/*
 * As probe_closed(), allowing the peer a moment: a sender closes its copies
 * only once the write carrying them returned, which may be just after the
 * reply reached us (OWN-4).
 */
static enum close_state
probe_closed_soon(const struct sent_fd *sent)
{
	enum close_state state = probe_closed(sent);

	for (int i = 0; i < 200 && state == PEER_OPEN; i++) {
		poll(NULL, 0, 10);
		state = probe_closed(sent);
	}
	return state;
}

/* ---- Commands ---- */

struct tagged_args {
	const char *tag;
	char **specs;
	size_t n_specs;
};

static int
parse_tagged(int argc, char **argv, bool specs_allowed, struct tagged_args *out)
{
	static const struct option long_options[] = {
	    {"tag", required_argument, NULL, 't'},
	    {NULL, 0, NULL, 0},
	};
	char buf[8];
	int opt;

	out->tag = argv[0];
	optind = 0;
	while ((opt = getopt_long(argc, argv, ":", long_options, NULL)) != -1) {
		if (opt == 't')
			out->tag = optarg;
		else if (opt == ':')
			return usage_error("%s: %s needs a value", argv[0], argv[optind - 1]);
		else
			return usage_error("%s: unknown option %s", argv[0],
			                   bad_option(argv, buf, sizeof(buf)));
	}
	out->specs = argv + optind;
	out->n_specs = (size_t)(argc - optind);
	if (specs_allowed && out->n_specs == 0)
		return usage_error("%s: name at least one SPEC to send", argv[0]);
	return 0;
}

/* Parse a tagged command's arguments, make its FDs and connect. */
static int
prepare_tagged(struct session *s, int argc, char **argv, struct tagged_args *args,
               struct sent_fd **sent)
{
	int r;

	*sent = NULL;
	r = parse_tagged(argc, argv, true, args);
	if (r != 0)
		return r;
	*sent = calloc(args->n_specs, sizeof(**sent));
	if (!*sent) {
		log_error("out of memory");
		return EXIT_CHECK;
	}
	if (open_specs(args->specs, args->n_specs, *sent) < 0) {
		free(*sent);
		*sent = NULL;
		return EXIT_USAGE;
	}
	r = connect_session(s);
	if (r != 0) {
		sent_fds_close(*sent, args->n_specs);
		free(*sent);
		*sent = NULL;
	}
	return r;
}

/* Send every FD of @sent, which the library takes: the client holds only the other ends. */
static int *
take_fds(struct sent_fd *sent, size_t n)
{
	int *fds = calloc(n, sizeof(*fds));

	if (!fds)
		return NULL;
	collect_fds(sent, n, fds);
	for (size_t i = 0; i < n; i++)
		sent[i].fd = -1;
	return fds;
}

static int
check_report_size(const char *method, const struct fdt_report *report, size_t n_sent)
{
	if (report->n_fds == n_sent)
		return 0;
	log_error("%s: the server reported %zu FDs; %zu were sent", method, report->n_fds, n_sent);
	return -1;
}

static int
cmd_inspect(struct session *s, int argc, char **argv)
{
	struct fdt_report report = {0};
	struct tagged_args args;
	struct sent_fd *sent;
	int *fds, r;

	r = prepare_tagged(s, argc, argv, &args, &sent);
	if (r != 0)
		return r;
	fds = take_fds(sent, args.n_specs);
	r = fds ? call_tagged_report(s, FDT_METHOD_INSPECT, args.tag, fds, args.n_specs,
	                             RFD_FDS_TAKE, &report)
	        : -1;
	if (r == 0) {
		print_report(&report);
		r = check_report_size(FDT_METHOD_INSPECT, &report, args.n_specs);
	}
	fdt_report_free(&report);
	sent_fds_close(sent, args.n_specs);
	free(sent);
	free(fds);
	return r < 0 ? EXIT_CHECK : EXIT_SUCCESS;
}

static int
cmd_record(struct session *s, int argc, char **argv)
{
	struct fdt_report report = {0};
	struct tagged_args args;
	struct sent_fd *sent;
	int *fds, r;

	r = prepare_tagged(s, argc, argv, &args, &sent);
	if (r != 0)
		return r;
	fds = take_fds(sent, args.n_specs);
	r = fds ? call_record(s, args.tag, fds, args.n_specs) : -1;
	/* Calls on one connection are served in order: this reports the record just sent. */
	if (r == 0)
		r = call_last_recorded(s, &report);
	if (r == 0) {
		print_report(&report);
		r = check_report_size(FDT_METHOD_RECORD, &report, args.n_specs);
	}
	if (r == 0 && strcmp(report.tag, args.tag) != 0) {
		log_error("lastRecorded answered tag \"%s\", not the recorded \"%s\"", report.tag,
		          args.tag);
		r = -1;
	}
	fdt_report_free(&report);
	sent_fds_close(sent, args.n_specs);
	free(sent);
	free(fds);
	return r < 0 ? EXIT_CHECK : EXIT_SUCCESS;
}

/* Print and check each FD echo returned against the one sent. */
static int
check_echoed(const struct sent_fd *sent, size_t n_sent, const struct rfd_msg *reply)
{
	size_t n = rfd_msg_fd_count(reply);
	char line[LINE_SIZE];
	int r = 0;

	printf("fds %zu\n", n);
	for (size_t i = 0; i < n; i++) {
		int fd = rfd_msg_fd(reply, i);
		struct fdt_fdinfo info;
		bool same = i < n_sent && same_open_file(fd, sent[i].fd);

		if (fdt_describe_fd(fd, &info) < 0)
			memset(&info, 0, sizeof(info));
		printf("%zu %s same-file %s\n", i, fdt_fdinfo_string(&info, line, sizeof(line)),
		       same ? "yes" : "no");
		if (!same || !info.cloexec) {
			log_error("echo: FD %zu %s", i,
			          !same ? "is not the open file sent" : "came without FD_CLOEXEC");
			r = -1;
		}
	}
	if (n != n_sent) {
		log_error("echo: %zu FDs came back; %zu were sent", n, n_sent);
		r = -1;
	}
	return r;
}

static int
cmd_echo(struct session *s, int argc, char **argv)
{
	struct tagged_args args;
	struct rfd_msg *reply = NULL;
	struct sent_fd *sent;
	char *answered = NULL;
	int *fds, r;

	r = prepare_tagged(s, argc, argv, &args, &sent);
	if (r != 0)
		return r;
	fds = calloc(args.n_specs, sizeof(*fds));
	if (fds)
		collect_fds(sent, args.n_specs, fds);
	r = fds ? call_echo(s, args.tag, fds, args.n_specs, &reply, &answered) : -1;
	if (r == 0) {
		printf("tag \"%s\"\n", answered);
		r = check_echoed(sent, args.n_specs, reply);
		if (strcmp(answered, args.tag) != 0) {
			log_error("echo: the server answered tag \"%s\", not \"%s\"", answered,
			          args.tag);
			r = -1;
		}
	}
	free(answered);
	rfd_msg_free(reply);
	sent_fds_close(sent, args.n_specs);
	free(sent);
	free(fds);
	return r < 0 ? EXIT_CHECK : EXIT_SUCCESS;
}

static int
cmd_last_recorded(struct session *s, int argc, char **argv)
{
	struct fdt_report report = {0};
	int r;

	if (argc > 1)
		return usage_error("last-recorded: unexpected argument %s", argv[1]);
	r = connect_session(s);
	if (r != 0)
		return r;
	if (call_last_recorded(s, &report) < 0)
		return EXIT_CHECK;
	print_report(&report);
	fdt_report_free(&report);
	return EXIT_SUCCESS;
}

static int
parse_open(int argc, char **argv, const char **path, unsigned long *n_bytes)
{
	static const struct option long_options[] = {
	    {"bytes", required_argument, NULL, 'b'},
	    {NULL, 0, NULL, 0},
	};
	char buf[8], *end;
	int opt;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":", long_options, NULL)) != -1) {
		if (opt == 'b') {
			errno = 0;
			*n_bytes = strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg || optarg[0] == '-' ||
			    *n_bytes > MAX_OPEN_BYTES)
				return usage_error("open: --bytes %s: not a number from 0 to %d",
				                   optarg, MAX_OPEN_BYTES);
		} else if (opt == ':') {
			return usage_error("open: %s needs a value", argv[optind - 1]);
		} else {
			return usage_error("open: unknown option %s",
			                   bad_option(argv, buf, sizeof(buf)));
		}
	}
	if (argc - optind != 1)
		return usage_error("open: name exactly one PATH");
	*path = argv[optind];
	return 0;
}

static int
print_opened(int fd, const char *path, unsigned long n_bytes)
{
	struct fdt_fdinfo info;
	char line[LINE_SIZE];
	uint8_t *bytes;
	ssize_t n;

	if (fdt_describe_fd(fd, &info) < 0)
		memset(&info, 0, sizeof(info));
	printf("path \"%s\"\n", path);
	printf("fd %s\n", fdt_fdinfo_string(&info, line, sizeof(line)));
	bytes = malloc(n_bytes ? n_bytes : 1);
	if (!bytes) {
		log_error("out of memory");
		return -1;
	}
	n = read_some(fd, bytes, n_bytes);
	if (n < 0) {
		log_error("open: cannot read %s through the FD received: %s", path,
		          strerror((int)-n));
		free(bytes);
		return -1;
	}
	printf("%zd bytes \"", n);
	print_escaped(bytes, (size_t)n);
	printf("\"\n");
	free(bytes);
	return 0;
}

static int
cmd_open(struct session *s, int argc, char **argv)
{
	unsigned long n_bytes = DEFAULT_OPEN_BYTES;
	struct fdt_open_result result;
	const char *path = NULL;
	int fd, r;

	r = parse_open(argc, argv, &path, &n_bytes);
	if (r != 0)
		return r;
	r = connect_session(s);
	if (r != 0)
		return r;
	r = call_open(s, path, &fd, &result);
	if (r < 0)
		return EXIT_CHECK;
	if (r > 0) {
		log_error("open: %s (errno %s)", result.error.message,
		          errno_name(result.error.errnum));
		fdt_open_result_free(&result);
		return EXIT_CHECK;
	}
	r = print_opened(fd, result.path, n_bytes);
	close(fd);
	fdt_open_result_free(&result);
	return r < 0 ? EXIT_CHECK : EXIT_SUCCESS;
}

/* ---- stream ---- */

static int
parse_count(const char *text, long max, int32_t *out)
{
	char *end;
	long value;

	errno = 0;
	value = strtol(text, &end, 10);
	if (errno || *end || !*text || value < 0 || value > max)
		return -EINVAL;
	*out = (int32_t)value;
	return 0;
}

/*
 * A negative COUNT or FDS, which getopt would take for an option, refused
 * with the range it must be in; 0 when there is none.
 */
static int
refuse_negative_numbers(int argc, char **argv)
{
	int position = 0;

	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "--credits") == 0) {
			i++;
			continue;
		}
		if (arg[0] == '-' && (arg[1] < '0' || arg[1] > '9'))
			continue;
		if (arg[0] == '-' && position == 0)
			return usage_error("stream: COUNT %s: not a number from 0 to %d", arg,
			                   INT32_MAX);
		if (arg[0] == '-')
			return usage_error("stream: FDS %s: not a number from 0 to %d", arg,
			                   FDT_MAX_FDS);
		position++;
	}
	return 0;
}

static int
parse_stream(int argc, char **argv, int32_t *count, int32_t *fds_per_item, unsigned *credits)
{
	static const struct option long_options[] = {
	    {"credits", required_argument, NULL, 'c'},
	    {NULL, 0, NULL, 0},
	};
	char buf[8];
	int32_t value;
	int opt = refuse_negative_numbers(argc, argv);

	if (opt != 0)
		return opt;
	optind = 0;
	while ((opt = getopt_long(argc, argv, ":", long_options, NULL)) != -1) {
		if (opt == 'c') {
			if (parse_count(optarg, MAX_STREAM_CREDITS, &value) < 0 || value == 0)
				return usage_error(
				    "stream: --credits %s: not a number from 1 to %d", optarg,
				    MAX_STREAM_CREDITS);
			*credits = (unsigned)value;
		} else if (opt == ':') {
			return usage_error("stream: %s needs a value", argv[optind - 1]);
		} else {
			return usage_error("stream: unknown option %s",
			                   bad_option(argv, buf, sizeof(buf)));
		}
	}
	if (argc - optind != 2)
		return usage_error("stream: name COUNT and FDS");
	/* The server refuses a COUNT above 10000 (SVC-STREAM-2): it says so, not this tool. */
	if (parse_count(argv[optind], INT32_MAX, count) < 0)
		return usage_error("stream: COUNT %s: not a number from 0 to %d", argv[optind],
		                   INT32_MAX);
	if (parse_count(argv[optind + 1], FDT_MAX_FDS, fds_per_item) < 0)
		return usage_error("stream: FDS %s: not a number from 0 to %d", argv[optind + 1],
		                   FDT_MAX_FDS);
	return 0;
}

/* A pipe read end whose write ends are all closed: poll says so at once and read gives EOF. */
static bool
reads_eof(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	char byte;

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLIN | POLLHUP)) &&
	       read(fd, &byte, 1) == 0;
}

/* Print an item and check it: tag = its index, one report row per FD received, each that FD. */
static int
check_item(const struct rfd_msg *item, int32_t index, int32_t fds_per_item)
{
	size_t n = rfd_msg_fd_count(item), len;
	const uint8_t *data = rfd_msg_data(item, &len);
	struct fdt_report report;
	char line[LINE_SIZE], tag[16];
	const char *why;
	int r = 0;

	if (fdt_decode_report_result(data, len, &report, &why) < 0) {
		log_error("stream: item %d does not decode: %s", (int)index, why);
		return -1;
	}
	printf("item %d tag \"%s\" fds %zu\n", (int)index, report.tag, n);
	snprintf(tag, sizeof(tag), "%d", (int)index);
	if (strcmp(report.tag, tag) != 0 || n != (size_t)fds_per_item || report.n_fds != n) {
		log_error(
		    "stream: item %d: tag \"%s\", %zu FDs received, %zu reported; %d expected",
		    (int)index, report.tag, n, report.n_fds, (int)fds_per_item);
		r = -1;
	}
	for (size_t i = 0; i < n && i < report.n_fds; i++) {
		int fd = rfd_msg_fd(item, i);
		struct fdt_fdinfo info;
		bool same, eof;

		if (fdt_describe_fd(fd, &info) < 0)
			memset(&info, 0, sizeof(info));
		same = same_file_info(&info, &report.fds[i]);
		eof = reads_eof(fd);
		printf("%zu %s reported-file %s eof %s\n", i,
		       fdt_fdinfo_string(&info, line, sizeof(line)), same ? "yes" : "no",
		       eof ? "yes" : "no");
		if (!same || !eof || !info.cloexec) {
			log_error("stream: item %d FD %zu %s", (int)index, i,
			          !same  ? "is not the file the report describes"
			          : !eof ? "does not read EOF: a write end is still open"
			                 : "came without FD_CLOEXEC");
			r = -1;
		}
	}
	fdt_report_free(&report);
	return r;
}

/* Read the stream to its end; 0 when it completed with every item right. */
static int
read_stream(struct session *s, uint32_t id, int32_t count, int32_t fds_per_item)
{
	int32_t index = 0;
	int bad = 0, r;

	for (;;) {
		struct rfd_msg *msg = NULL;

		r = rfd_client_stream_next(s->client, id, s->timeout_ms, &msg);
		if (r <= 0)
			break;
		if (rfd_msg_kind(msg) != RFD_MSG_STREAM_ITEM) {
			log_error("stream: ended by %s 0x%" PRIx32 ": %s",
			          rfd_msg_kind(msg) == RFD_MSG_ERROR ? "error" : "an exception",
			          rfd_msg_error_code(msg), rfd_msg_error_text(msg));
			rfd_msg_free(msg);
			return -1;
		}
		if (check_item(msg, index++, fds_per_item) < 0)
			bad++;
		rfd_msg_free(msg);
	}
	if (r < 0) {
		log_error("stream: failed after %d items: %s", (int)index,
		          r == -ETIMEDOUT ? "no item in time" : rfd_client_error(s->client));
		if (r == -ETIMEDOUT)
			rfd_client_cancel(s->client, id);
		return -1;
	}
	printf("complete: %d items\n", (int)index);
	if (index != count) {
		log_error("stream: %d items came; %d were asked for", (int)index, (int)count);
		return -1;
	}
	return bad ? -1 : 0;
}

static int
cmd_stream(struct session *s, int argc, char **argv)
{
	int32_t count = 0, fds_per_item = 0;
	unsigned credits = 0;
	struct rfd_msg *first = NULL;
	struct fdt_bytes args;
	uint32_t id;
	int r;

	r = parse_stream(argc, argv, &count, &fds_per_item, &credits);
	if (r != 0)
		return r;
	r = connect_session(s);
	if (r != 0)
		return r;
	r = fdt_encode_stream_args(count, fds_per_item, &args);
	if (r < 0) {
		log_error("stream: cannot encode the arguments: %s", strerror(-r));
		return EXIT_CHECK;
	}
	r = rfd_client_stream(s->client, FDT_METHOD_STREAM_FDS, args.data, args.len, NULL, 0,
	                      RFD_FDS_DUP, s->timeout_ms, credits, &first, &id);
	fdt_bytes_free(&args);
	if (r < 0) {
		log_error("stream: the call failed: %s", rfd_client_error(s->client));
		return EXIT_CHECK;
	}
	if (rfd_msg_kind(first) != RFD_MSG_REPLY) {
		log_error("stream: the server answered %s 0x%" PRIx32 ": %s",
		          rfd_msg_kind(first) == RFD_MSG_ERROR ? "error" : "an exception",
		          rfd_msg_error_code(first), rfd_msg_error_text(first));
		rfd_msg_free(first);
		return EXIT_CHECK;
	}
	printf("first response, %zu FDs\n", rfd_msg_fd_count(first));
	rfd_msg_free(first);
	return read_stream(s, id, count, fds_per_item) < 0 ? EXIT_CHECK : EXIT_SUCCESS;
}

/* ---- whoami ---- */

static int
cmd_whoami(struct session *s, int argc, char **argv)
{
	struct fdt_peer_info info;
	struct rfd_msg *reply;
	struct fdt_bytes args;
	const uint8_t *data;
	const char *why;
	size_t len;
	int r;

	if (argc > 1)
		return usage_error("whoami: unexpected argument %s", argv[1]);
	r = connect_session(s);
	if (r != 0)
		return r;
	r = fdt_encode_empty_args(&args);
	if (r < 0) {
		log_error("whoami: cannot encode the arguments: %s", strerror(-r));
		return EXIT_CHECK;
	}
	r = call_for_reply(s, FDT_METHOD_WHOAMI, &args, NULL, 0, RFD_FDS_DUP, &reply);
	fdt_bytes_free(&args);
	if (r < 0)
		return EXIT_CHECK;
	data = rfd_msg_data(reply, &len);
	r = fdt_decode_peer_info_result(data, len, &info, &why);
	if (r < 0)
		log_error("whoami: the answer does not decode: %s", why);
	else if (rfd_msg_fd_count(reply) > 0)
		log_warn("whoami: the answer came with %zu FDs; they are closed",
		         rfd_msg_fd_count(reply));
	rfd_msg_free(reply);
	if (r < 0)
		return EXIT_CHECK;
	printf("pid %" PRId32 " uid %" PRId32 " gid %" PRId32 " pidPinned %s\n", info.pid, info.uid,
	       info.gid, info.pid_pinned ? "true" : "false");
	return EXIT_SUCCESS;
}

/* ---- sink ---- */

/* Make the FD of each ITEM; "none" is an item without one (fd -1). */
static int
open_items(char **items, size_t n, struct sent_fd *sent)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(items[i], "none") == 0) {
			sent[i].what = items[i];
			sent[i].fd = sent[i].other = -1;
			continue;
		}
		if (open_spec(items[i], &sent[i]) < 0) {
			sent_fds_close(sent, i + 1);
			return -1;
		}
	}
	return 0;
}

/* Open sinkFds(@tag); 0 with *id when the first response opened it. */
static int
open_sink_call(struct session *s, const char *tag, uint32_t *id)
{
	struct rfd_msg *first = NULL;
	struct fdt_bytes args;
	int r;

	r = fdt_encode_args(tag, &args);
	if (r < 0) {
		log_error("sink: cannot encode the arguments: %s", strerror(-r));
		return -1;
	}
	r = rfd_client_sink(s->client, FDT_METHOD_SINK_FDS, args.data, args.len, NULL, 0,
	                    RFD_FDS_DUP, s->timeout_ms, &first, id);
	fdt_bytes_free(&args);
	if (r < 0) {
		log_error("sink: the call failed: %s", rfd_client_error(s->client));
		return -1;
	}
	if (rfd_msg_kind(first) != RFD_MSG_REPLY) {
		log_error("sink: the server answered %s 0x%" PRIx32 ": %s",
		          rfd_msg_kind(first) == RFD_MSG_ERROR ? "error" : "an exception",
		          rfd_msg_error_code(first), rfd_msg_error_text(first));
		rfd_msg_free(first);
		return -1;
	}
	printf("first response, %zu FDs, extension sink %s\n", rfd_msg_fd_count(first),
	       rfd_client_sink_fds(s->client, *id) ? "accepted" : "not accepted");
	rfd_msg_free(first);
	return 0;
}

/* Send each item, its tag the ITEM as given; the library takes the FDs. */
static int
send_items(struct session *s, uint32_t id, struct sent_fd *sent, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool has_fd = sent[i].fd >= 0;
		struct fdt_bytes item;
		int r = fdt_encode_bytes_result(sent[i].what, strlen(sent[i].what), &item);

		if (r == 0)
			r = rfd_client_sink_push(s->client, id, item.data, item.len, &sent[i].fd,
			                         has_fd, RFD_FDS_TAKE, s->timeout_ms);
		else if (has_fd)
			close(sent[i].fd);
		sent[i].fd = -1;
		fdt_bytes_free(&item);
		if (r < 0) {
			log_error("sink: item %zu (%s) not sent: %s", i, sent[i].what,
			          r == -EOPNOTSUPP  ? "the server did not accept the extension sink"
			          : r == -ETIMEDOUT ? "no credit in time"
			                            : rfd_client_error(s->client));
			return -1;
		}
		printf("item %zu \"%s\" fds %d\n", i, sent[i].what, has_fd ? 1 : 0);
	}
	return 0;
}

/* Complete the sink and read its final report. */
static int
close_sink(struct session *s, uint32_t id, struct fdt_report *report)
{
	struct rfd_msg *final = NULL;
	const uint8_t *data;
	const char *why;
	size_t len;
	int r = rfd_client_sink_close(s->client, id, s->timeout_ms, &final);

	if (r < 0) {
		log_error("sink: no final response: %s",
		          r == -ETIMEDOUT ? "none in time" : rfd_client_error(s->client));
		return -1;
	}
	if (rfd_msg_kind(final) != RFD_MSG_REPLY) {
		log_error("sink: the server answered %s 0x%" PRIx32 ": %s",
		          rfd_msg_kind(final) == RFD_MSG_ERROR ? "error" : "an exception",
		          rfd_msg_error_code(final), rfd_msg_error_text(final));
		rfd_msg_free(final);
		return -1;
	}
	data = rfd_msg_data(final, &len);
	r = fdt_decode_report_result(data, len, report, &why);
	if (r < 0)
		log_error("sink: the final response does not decode: %s", why);
	else if (rfd_msg_fd_count(final) > 0)
		log_warn("sink: the final response came with %zu FDs; they are closed",
		         rfd_msg_fd_count(final));
	rfd_msg_free(final);
	return r < 0 ? -1 : 0;
}

/* Each report entry is the file of the FD sent in its place, and the server closed it. */
static int
check_sink_report(const struct fdt_report *report, const struct sent_fd *sent, size_t n)
{
	size_t entry = 0;
	int r = 0;

	for (size_t i = 0; i < n; i++) {
		enum close_state closed;

		if (sent[i].what && strcmp(sent[i].what, "none") == 0)
			continue;
		closed = probe_closed_soon(&sent[i]);
		printf("item %zu reported-file %s closed-by-server %s\n", i,
		       entry < report->n_fds && same_file_info(&sent[i].info, &report->fds[entry])
		           ? "yes"
		           : "no",
		       closed == PEER_CLOSED ? "yes"
		       : closed == PEER_OPEN ? "no"
		                             : "unknown");
		if (entry >= report->n_fds || !same_file_info(&sent[i].info, &report->fds[entry]) ||
		    closed == PEER_OPEN) {
			log_error("sink: the FD of item %zu %s", i,
			          closed == PEER_OPEN ? "is still open at the server"
			                              : "is not the file reported in its place");
			r = -1;
		}
		entry++;
	}
	if (entry != report->n_fds) {
		log_error("sink: the server reported %zu FDs; %zu were sent", report->n_fds, entry);
		r = -1;
	}
	return r;
}

static int
cmd_sink(struct session *s, int argc, char **argv)
{
	struct fdt_report report = {0};
	struct tagged_args args;
	struct sent_fd *sent;
	uint32_t id = 0;
	int r;

	r = parse_tagged(argc, argv, false, &args);
	if (r != 0)
		return r;
	sent = calloc(args.n_specs ? args.n_specs : 1, sizeof(*sent));
	if (!sent) {
		log_error("out of memory");
		return EXIT_CHECK;
	}
	if (open_items(args.specs, args.n_specs, sent) < 0) {
		free(sent);
		return EXIT_USAGE;
	}
	r = connect_session(s);
	if (r != 0) {
		sent_fds_close(sent, args.n_specs);
		free(sent);
		return r;
	}
	r = open_sink_call(s, args.tag, &id);
	if (r == 0 && send_items(s, id, sent, args.n_specs) < 0) {
		rfd_client_cancel(s->client, id);
		r = -1;
	}
	if (r == 0)
		r = close_sink(s, id, &report);
	if (r == 0) {
		print_report(&report);
		r = check_sink_report(&report, sent, args.n_specs);
	}
	if (r == 0 && strcmp(report.tag, args.tag) != 0) {
		log_error("sink: the final report has tag \"%s\", not \"%s\"", report.tag,
		          args.tag);
		r = -1;
	}
	fdt_report_free(&report);
	sent_fds_close(sent, args.n_specs);
	free(sent);
	return r < 0 ? EXIT_CHECK : EXIT_SUCCESS;
}

/* ---- The demo ---- */

enum { DEMO_FDS = 5, MAX_FAILURES = 32, FAILURE_SIZE = 200 };

static const char *const demo_what[DEMO_FDS] = {
    "regular file", "pipe read end", "pipe write end", "sealed memfd", "socket pair end",
};

struct demo {
	struct session *session;
	unsigned checks;
	unsigned failed;
	char failures[MAX_FAILURES][FAILURE_SIZE];
};

static void check(struct demo *d, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
check(struct demo *d, bool ok, const char *fmt, ...)
{
	char what[FAILURE_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	d->checks++;
	printf("  %s %s\n", ok ? "ok  " : "FAIL", what);
	if (ok)
		return;
	if (d->failed < MAX_FAILURES)
		memcpy(d->failures[d->failed], what, sizeof(what));
	d->failed++;
}

/* A regular file with no name, in $TMPDIR or /tmp. */
static int
make_temp_file(struct sent_fd *sent)
{
	static const char content[] = "rocketfd demo: a regular file\n";
	const char *dir = getenv("TMPDIR");
	char path[PATH_MAX];
	int fd;

	if (!dir || !*dir)
		dir = "/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		/* A mkostemp() template. */
		snprintf(path, sizeof(path), "%s/rfd-client-XXXXXX", dir);
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0)
		return -errno;
	if (write(fd, content, sizeof(content) - 1) != (ssize_t)(sizeof(content) - 1)) {
		close(fd);
		return -EIO;
	}
	sent->fd = fd;
	return 0;
}

static int
make_demo_fd(size_t index, struct sent_fd *sent)
{
	int r;

	sent->what = demo_what[index];
	sent->fd = sent->other = -1;
	switch (index) {
	case 0:
		r = make_temp_file(sent);
		break;
	case 1:
		r = make_pipe(sent, false);
		break;
	case 2:
		r = make_pipe(sent, true);
		break;
	case 3:
		r = make_memfd(sent, "rocketfd demo: a sealed memfd\n");
		break;
	default:
		r = make_socket(sent);
		break;
	}
	if (r == 0)
		r = fdt_describe_fd(sent->fd, &sent->info);
	return r;
}

/* A fresh set of the demo's FDs. */
static int
make_demo_set(struct sent_fd set[DEMO_FDS])
{
	for (size_t i = 0; i < DEMO_FDS; i++) {
		int r = make_demo_fd(i, &set[i]);

		if (r < 0) {
			log_error("demo: cannot make a %s: %s", demo_what[i], strerror(-r));
			sent_fds_close(set, i + 1);
			return r;
		}
	}
	return 0;
}

static void
print_side(const char *label, const char *side, const struct fdt_fdinfo *info)
{
	char line[LINE_SIZE];

	printf("    %-16s %-7s %s\n", label, side, fdt_fdinfo_string(info, line, sizeof(line)));
}

/* Compare what the server reported with what the client sent, and probe the close. */
static void
check_report(struct demo *d, const char *method, const char *tag, struct sent_fd set[DEMO_FDS],
             const struct fdt_report *report)
{
	check(d, strcmp(report->tag, tag) == 0, "%s: tag \"%s\" came back", method, report->tag);
	check(d, report->n_fds == DEMO_FDS, "%s: %zu FDs reported, %d sent", method, report->n_fds,
	      DEMO_FDS);
	for (size_t i = 0; i < DEMO_FDS; i++) {
		char index[8];

		snprintf(index, sizeof(index), "%zu", i);
		print_side(i < report->n_fds ? index : "", "client", &set[i].info);
		if (i < report->n_fds)
			print_side(set[i].what, "server", &report->fds[i]);
	}
	for (size_t i = 0; i < DEMO_FDS && i < report->n_fds; i++) {
		check(d, same_file_info(&set[i].info, &report->fds[i]),
		      "%s: the server saw the %s sent (dev, ino, type and flags)", method,
		      set[i].what);
		check(d, report->fds[i].cloexec, "%s: the %s arrived with FD_CLOEXEC", method,
		      set[i].what);
	}
	for (size_t i = 0; i < DEMO_FDS; i++) {
		enum close_state state = probe_closed(&set[i]);

		if (state != PEER_UNKNOWN)
			check(d, state == PEER_CLOSED, "%s: the server closed the %s", method,
			      set[i].what);
	}
}

static void
demo_inspect(struct demo *d)
{
	static const char tag[] = "demo inspect";
	struct sent_fd set[DEMO_FDS];
	struct fdt_report report = {0};
	int fds[DEMO_FDS];
	int r;

	printf("inspect: %d FDs sent, tag \"%s\"\n", DEMO_FDS, tag);
	if (make_demo_set(set) < 0) {
		check(d, false, "inspect: the FDs to send could be made");
		return;
	}
	collect_fds(set, DEMO_FDS, fds);
	for (size_t i = 0; i < DEMO_FDS; i++)
		set[i].fd = -1;
	r = call_tagged_report(d->session, FDT_METHOD_INSPECT, tag, fds, DEMO_FDS, RFD_FDS_TAKE,
	                       &report);
	check(d, r == 0, "inspect: the call succeeded");
	if (r == 0)
		check_report(d, FDT_METHOD_INSPECT, tag, set, &report);
	fdt_report_free(&report);
	sent_fds_close(set, DEMO_FDS);
}

static void
check_echo_fds(struct demo *d, struct sent_fd set[DEMO_FDS], const struct rfd_msg *reply)
{
	size_t n = rfd_msg_fd_count(reply);

	check(d, n == DEMO_FDS, "echo: %zu FDs came back, %d sent", n, DEMO_FDS);
	for (size_t i = 0; i < DEMO_FDS; i++) {
		struct fdt_fdinfo info;
		int fd = rfd_msg_fd(reply, i);
		char index[8];

		snprintf(index, sizeof(index), "%zu", i);
		print_side(index, "sent", &set[i].info);
		if (i >= n || fdt_describe_fd(fd, &info) < 0)
			continue;
		print_side(set[i].what, "back", &info);
		check(d, same_open_file(fd, set[i].fd),
		      "echo: the %s came back as the same open file (dev, ino, kcmp)", set[i].what);
		check(d, info.cloexec, "echo: the returned %s has FD_CLOEXEC", set[i].what);
	}
}

static void
demo_echo(struct demo *d)
{
	static const char tag[] = "demo echo";
	struct sent_fd set[DEMO_FDS];
	struct rfd_msg *reply = NULL;
	char *answered = NULL;
	int fds[DEMO_FDS];
	int r;

	printf("echo: %d FDs sent, tag \"%s\"\n", DEMO_FDS, tag);
	if (make_demo_set(set) < 0) {
		check(d, false, "echo: the FDs to send could be made");
		return;
	}
	collect_fds(set, DEMO_FDS, fds);
	r = call_echo(d->session, tag, fds, DEMO_FDS, &reply, &answered);
	check(d, r == 0, "echo: the call succeeded");
	if (r == 0) {
		check(d, strcmp(answered, tag) == 0, "echo: tag \"%s\" came back", answered);
		check_echo_fds(d, set, reply);
	}
	free(answered);
	/* With the client's copies closed, only the server could still hold them. */
	rfd_msg_free(reply);
	for (size_t i = 0; i < DEMO_FDS; i++) {
		enum close_state state;

		close(set[i].fd);
		set[i].fd = -1;
		state = probe_closed_soon(&set[i]);
		if (r == 0 && state != PEER_UNKNOWN)
			check(d, state == PEER_CLOSED, "echo: the server kept no copy of the %s",
			      set[i].what);
	}
	sent_fds_close(set, DEMO_FDS);
}

static void
demo_record(struct demo *d)
{
	static const char tag[] = "demo record";
	struct sent_fd set[DEMO_FDS];
	struct fdt_report report = {0};
	int fds[DEMO_FDS];
	int r;

	printf("record: %d FDs sent one-way, tag \"%s\", then lastRecorded\n", DEMO_FDS, tag);
	if (make_demo_set(set) < 0) {
		check(d, false, "record: the FDs to send could be made");
		return;
	}
	collect_fds(set, DEMO_FDS, fds);
	for (size_t i = 0; i < DEMO_FDS; i++)
		set[i].fd = -1;
	r = call_record(d->session, tag, fds, DEMO_FDS);
	check(d, r == 0, "record: the one-way call was sent");
	if (r == 0) {
		r = call_last_recorded(d->session, &report);
		check(d, r == 0, "lastRecorded: the call succeeded");
	}
	if (r == 0)
		check_report(d, FDT_METHOD_RECORD, tag, set, &report);
	fdt_report_free(&report);
	sent_fds_close(set, DEMO_FDS);
}

static void
demo_empty_record(struct demo *d)
{
	struct fdt_report report = {0};
	int r;

	printf("lastRecorded before any record on this connection\n");
	r = call_last_recorded(d->session, &report);
	check(d, r == 0, "lastRecorded: the call succeeded");
	if (r == 0)
		check(d, report.tag[0] == '\0' && report.n_fds == 0,
		      "lastRecorded: an empty report (tag \"%s\", %zu FDs)", report.tag,
		      report.n_fds);
	fdt_report_free(&report);
}

/* Open @path, which must fail; returns the errno the server gave, or 0. */
static int32_t
demo_open_refused(struct demo *d, const char *path)
{
	struct fdt_open_result result;
	int32_t errnum = 0;
	int fd, r;

	r = call_open(d->session, path, &fd, &result);
	if (r == 0) {
		close(fd);
		check(d, false, "open \"%s\": refused (the server opened it)", path);
	} else if (r > 0) {
		errnum = result.error.errnum;
		check(d, true, "open \"%s\": refused with %s: %s", path, errno_name(errnum),
		      result.error.message);
	} else {
		check(d, false, "open \"%s\": the call succeeded", path);
	}
	fdt_open_result_free(&result);
	return errnum;
}

static void
demo_open_file(struct demo *d, const char *path)
{
	struct fdt_open_result result;
	struct fdt_fdinfo info;
	uint8_t bytes[DEFAULT_OPEN_BYTES];
	ssize_t n;
	int fd, r;

	r = call_open(d->session, path, &fd, &result);
	check(d, r == 0, "open \"%s\": opened%s%s", path, r > 0 ? ": " : "",
	      r > 0 ? result.error.message : "");
	if (r == 0 && fdt_describe_fd(fd, &info) == 0) {
		print_side("opened", "client", &info);
		check(d, info.type == S_IFREG, "open: a regular file came back");
		check(d, (info.flags & O_ACCMODE) == O_RDONLY, "open: it is open read-only");
		check(d, !(info.flags & O_NONBLOCK), "open: it is in blocking mode");
		check(d, info.cloexec, "open: it has FD_CLOEXEC");
		n = read_some(fd, bytes, sizeof(bytes));
		check(d, n >= 0, "open: it reads");
		if (n > 0) {
			printf("    first %zd bytes \"", n);
			print_escaped(bytes, (size_t)n);
			printf("\"\n");
		}
	}
	if (fd >= 0)
		close(fd);
	fdt_open_result_free(&result);
}

static void
demo_open(struct demo *d, const char *path)
{
	int32_t errnum;

	printf("open: the directory itself, an escape%s\n", path ? ", and the file asked for" : "");
	errnum = demo_open_refused(d, ".");
	if (errnum == EACCES) {
		printf("    the server has no root directory: nothing more to open\n");
		check(d, !path, "open: the server has a root directory for --open");
		return;
	}
	check(d, errnum == EINVAL, "open \".\": a directory is refused with EINVAL");
	errnum = demo_open_refused(d, "../x");
	check(d, errnum == EXDEV, "open \"../x\": an escape is refused with EXDEV");
	if (path)
		demo_open_file(d, path);
}

static int
cmd_demo(struct session *s, int argc, char **argv)
{
	static const struct option long_options[] = {
	    {"open", required_argument, NULL, 'o'},
	    {NULL, 0, NULL, 0},
	};
	const char *open_path = NULL;
	struct demo *d;
	char buf[8];
	int opt, r;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":", long_options, NULL)) != -1) {
		if (opt == 'o')
			open_path = optarg;
		else if (opt == ':')
			return usage_error("demo: %s needs a value", argv[optind - 1]);
		else
			return usage_error("demo: unknown option %s",
			                   bad_option(argv, buf, sizeof(buf)));
	}
	if (optind < argc)
		return usage_error("demo: unexpected argument %s", argv[optind]);
	r = connect_session(s);
	if (r != 0)
		return r;
	d = calloc(1, sizeof(*d));
	if (!d) {
		log_error("out of memory");
		return EXIT_CHECK;
	}
	d->session = s;
	printf("demo: server at %s; FDs sent: %s, %s, %s, %s, %s\n", s->socket_path, demo_what[0],
	       demo_what[1], demo_what[2], demo_what[3], demo_what[4]);
	demo_empty_record(d);
	demo_inspect(d);
	demo_echo(d);
	demo_record(d);
	demo_open(d, open_path);

	if (d->failed == 0) {
		printf("demo: all checks passed (%u)\n", d->checks);
	} else {
		printf("demo: %u of %u checks failed:\n", d->failed, d->checks);
		for (unsigned i = 0; i < d->failed && i < MAX_FAILURES; i++)
			printf("  %s\n", d->failures[i]);
	}
	r = d->failed ? EXIT_CHECK : EXIT_SUCCESS;
	free(d);
	return r;
}

/* ---- main ---- */

static const struct {
	const char *name;
	int (*run)(struct session *s, int argc, char **argv);
} commands[] = {
    {"inspect", cmd_inspect}, {"echo", cmd_echo},
    {"record", cmd_record},   {"last-recorded", cmd_last_recorded},
    {"open", cmd_open},       {"demo", cmd_demo},
    {"stream", cmd_stream},   {"sink", cmd_sink},
    {"whoami", cmd_whoami},
};

static int
parse_timeout(const char *text, int *timeout_ms)
{
	char *end;
	long value;

	errno = 0;
	value = strtol(text, &end, 10);
	if (errno || *end || !*text || value < -1 || value > INT_MAX)
		return -EINVAL;
	*timeout_ms = (int)value;
	return 0;
}

/* "none", or extension names separated by commas. */
static int
parse_offer(const char *text, unsigned *extensions)
{
	char names[64];
	char *save = NULL;

	*extensions = 0;
	if (strcmp(text, "none") == 0)
		return 0;
	if (strlen(text) >= sizeof(names) || !*text)
		return -EINVAL;
	strcpy(names, text);
	for (char *name = strtok_r(names, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		if (strcmp(name, "sink") == 0)
			*extensions |= RFD_EXTENSION_SINK;
		else if (strcmp(name, "exception") == 0)
			*extensions |= RFD_EXTENSION_EXCEPTION;
		else
			return -EINVAL;
	}
	return 0;
}

/* Global options up to the command; returns the command's index in argv, or an exit status. */
static int
parse_global(int argc, char **argv, struct session *s, int *command)
{
	static const struct option long_options[] = {
	    {"socket", required_argument, NULL, 's'},   {"timeout", required_argument, NULL, 'T'},
	    {"trace", no_argument, NULL, 't'},          {"verbose", no_argument, NULL, 'v'},
	    {"scenario", required_argument, NULL, 'S'}, {"offer", required_argument, NULL, 'O'},
	    {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
	};
	char buf[8];
	int opt;

	while ((opt = getopt_long(argc, argv, "+:vh", long_options, NULL)) != -1) {
		switch (opt) {
		case 's':
			s->socket_path = optarg;
			break;
		case 'T':
			if (parse_timeout(optarg, &s->timeout_ms) < 0)
				return usage_error("--timeout %s: not a number of ms from -1",
				                   optarg);
			break;
		case 't':
			s->options.trace = on_trace;
			break;
		case 'S':
			s->scenario = optarg;
			break;
		case 'O':
			if (parse_offer(optarg, &s->options.extensions) < 0)
				return usage_error(
				    "--offer %s: not \"none\" or names from sink and "
				    "exception separated by commas",
				    optarg);
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
	if (!s->socket_path)
		return usage_error("--socket PATH is required");
	if (s->scenario) {
		if (optind < argc)
			return usage_error("--scenario takes no COMMAND");
		*command = -1;
		return 0;
	}
	if (optind >= argc)
		return usage_error("name a COMMAND (see --help)");
	*command = optind;
	return 0;
}

int
main(int argc, char **argv)
{
	struct session s = {.timeout_ms = DEFAULT_TIMEOUT_MS};
	int command = 0, r;

	log_init("rfd-client", LOG_LEVEL_WARN);
	opterr = 0;
	rfd_client_options_init(&s.options);
	r = parse_global(argc, argv, &s, &command);
	if (r != 0)
		return r;
	/* Probing a closed pipe must give EPIPE, not end the process. */
	signal(SIGPIPE, SIG_IGN);
	if (s.scenario) {
		/* The client-under-test contract: one line per event on stderr. */
		while (!log_enabled(LOG_LEVEL_INFO))
			log_raise_level();
		return fdt_run_scenario(s.socket_path, s.scenario, s.timeout_ms,
		                        s.options.extensions);
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[command], commands[i].name) != 0)
			continue;
		r = commands[i].run(&s, argc - command, argv + command);
		rfd_client_free(s.client);
		fflush(stdout);
		return r;
	}
	return usage_error("unknown command %s (see --help)", argv[command]);
}
