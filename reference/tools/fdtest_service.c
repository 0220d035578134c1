/* SPDX-License-Identifier: MIT */
/* The FdTest service's methods, answering requests an rfd_server hands over. */
#include "fdtest_service.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fdtest.h"
#include "log.h"

/* The report of the last record on one connection. */
struct recorded {
	struct recorded *next;
	uint64_t connection;
	struct fdt_report report;
};

struct fd_stream;
struct fd_sink;

struct fdt_service {
	int root_fd; /* -1: open fails with EACCES */
	struct recorded *recorded;
	struct fd_stream *streams; /* streamFds calls being served */
	struct fd_sink *sinks;     /* sinkFds calls being served */
};

static void fd_stream_drop(struct fdt_service *service);
static void fd_sink_drop(struct fdt_service *service);

int
fdt_service_new(int root_fd, struct fdt_service **out)
{
	struct fdt_service *service;

	assert(out);
	*out = NULL;
	service = calloc(1, sizeof(*service));
	if (!service) {
		if (root_fd >= 0)
			close(root_fd);
		return -ENOMEM;
	}
	service->root_fd = root_fd;
	*out = service;
	return 0;
}

void
fdt_service_free(struct fdt_service *service)
{
	if (!service)
		return;
	while (service->recorded)
		fdt_service_closed(service, service->recorded->connection);
	fd_stream_drop(service);
	fd_sink_drop(service);
	if (service->root_fd >= 0)
		close(service->root_fd);
	free(service);
}

static struct recorded **
find_recorded(struct fdt_service *service, uint64_t connection)
{
	struct recorded **link = &service->recorded;

	while (*link && (*link)->connection != connection)
		link = &(*link)->next;
	return link;
}

void
fdt_service_closed(void *user, uint64_t connection)
{
	struct fdt_service *service = user;
	struct recorded **link, *entry;

	assert(service);
	link = find_recorded(service, connection);
	entry = *link;
	if (!entry)
		return;
	*link = entry->next;
	fdt_report_free(&entry->report);
	free(entry);
}

/* Keep @report (moved from the caller) as the connection's last recorded report. */
static int
store_recorded(struct fdt_service *service, uint64_t connection, struct fdt_report *report)
{
	struct recorded *entry = *find_recorded(service, connection);

	if (!entry) {
		entry = calloc(1, sizeof(*entry));
		if (!entry)
			return -ENOMEM;
		entry->connection = connection;
		entry->next = service->recorded;
		service->recorded = entry;
	}
	fdt_report_free(&entry->report);
	entry->report = *report;
	memset(report, 0, sizeof(*report));
	return 0;
}

/* ---- Opening files beneath the root ---- */

enum {
	MAX_SYMLINKS = 40, /* the kernel's limit on symlinks followed in one lookup */
	MAX_WALK_DEPTH = PATH_MAX / 2,
	/*
	 * The kernel follows a symlink without joining its target to the rest of
	 * the path, so no joined length is too long: each of the 40 links adds
	 * at most a target below PATH_MAX to a path below PATH_MAX.
	 */
	WALK_REST_MAX = (MAX_SYMLINKS + 1) * PATH_MAX,
};

/*
 * A read-only FD for the regular file the O_PATH FD @path_fd names, which
 * this closes.  Reopening through /proc/self/fd opens nothing but the file
 * checked, so a FIFO or device is never opened at all.
 *
 * Limitation: this needs /proc mounted; without it open fails with ENOENT.
 */
static int
reopen_regular(int path_fd)
{
	char proc_path[64];
	struct stat st;
	int fd, r;

	if (fstat(path_fd, &st) < 0) {
		r = -errno;
		close(path_fd);
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		close(path_fd);
		return -EINVAL;
	}
	snprintf(proc_path, sizeof(proc_path), "/proc/self/fd/%d", path_fd);
	fd = open(proc_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	r = fd < 0 ? -errno : fd;
	close(path_fd);
	return r;
}

/* The lookup by hand: the directories passed (each owned), and the path left to resolve. */
struct walk {
	int root_fd;
	size_t depth;
	unsigned links;
	char rest[WALK_REST_MAX + 1];
	int dirs[MAX_WALK_DEPTH];
};

static int
walk_dir(const struct walk *w)
{
	return w->depth > 0 ? w->dirs[w->depth - 1] : w->root_fd;
}

/* The next component of *path (skipping slashes), copied into @name; 0 at the end. */
static int
next_component(const char **path, char name[NAME_MAX + 1])
{
	const char *p = *path;
	size_t len;

	while (*p == '/')
		p++;
	len = strcspn(p, "/");
	if (len > NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(name, p, len);
	name[len] = '\0';
	*path = p + len;
	return len > 0;
}

static bool
only_slashes(const char *p)
{
	return p[strspn(p, "/")] == '\0';
}

/* Continue with the target of the symlink @link_fd: the path left becomes target/@remaining. */
static int
follow_symlink(struct walk *w, int link_fd, const char *remaining)
{
	char target[PATH_MAX + 1];
	size_t remaining_len = strlen(remaining);
	ssize_t n;

	if (++w->links > MAX_SYMLINKS)
		return -ELOOP;
	n = readlinkat(link_fd, "", target, sizeof(target));
	if (n < 0)
		return -errno;
	if ((size_t)n >= sizeof(target))
		return -ENAMETOOLONG;
	if (n == 0)
		return -ENOENT;
	if (target[0] == '/')
		return -EXDEV;
	if (remaining_len == 0) {
		memcpy(w->rest, target, (size_t)n);
		w->rest[n] = '\0';
		return 0;
	}
	if ((size_t)n + 1 + remaining_len > WALK_REST_MAX)
		return -ENAMETOOLONG;
	/* @remaining lies in w->rest: move it first. */
	memmove(w->rest + n + 1, remaining, remaining_len + 1);
	memcpy(w->rest, target, (size_t)n);
	w->rest[n] = '/';
	return 0;
}

/*
 * One component @name of the lookup, with @remaining after it.  Returns 0
 * to go on, 1 with *found (an O_PATH FD) once the lookup ends on it, or a
 * negative errno.
 */
static int
walk_step(struct walk *w, const char *name, const char **remaining, int *found)
{
	bool last = only_slashes(*remaining);
	struct stat st;
	int fd, r;

	if (strcmp(name, ".") == 0)
		return 0;
	if (strcmp(name, "..") == 0) {
		if (w->depth == 0)
			return -EXDEV;
		close(w->dirs[--w->depth]);
		return 0;
	}
	fd = openat(walk_dir(w), name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
	} else if (S_ISLNK(st.st_mode)) {
		r = follow_symlink(w, fd, *remaining);
		*remaining = w->rest;
	} else if (S_ISDIR(st.st_mode) && !last) {
		if (w->depth == MAX_WALK_DEPTH) {
			r = -ENAMETOOLONG;
		} else {
			w->dirs[w->depth++] = fd;
			return 0;
		}
	} else if (last && (**remaining == '\0' || S_ISDIR(st.st_mode))) {
		*found = fd;
		return 1;
	} else {
		r = -ENOTDIR;
	}
	close(fd);
	return r;
}

/* Resolve @path beneath @root_fd as openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) would. */
static int
resolve_walk(int root_fd, const char *path)
{
	char name[NAME_MAX + 1];
	const char *remaining;
	struct walk *w;
	int found = -1, r;

	/* PATH_MAX counts the terminating NUL: 4096 bytes or more is too long. */
	if (strlen(path) >= PATH_MAX)
		return -ENAMETOOLONG;
	w = malloc(sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->root_fd = root_fd;
	w->depth = 0;
	w->links = 0;
	strcpy(w->rest, path);
	remaining = w->rest;
	do {
		r = next_component(&remaining, name);
		if (r == 0) {
			/* Nothing but "." and ".." was left: the lookup ends on this directory. */
			found = openat(walk_dir(w), ".", O_PATH | O_CLOEXEC);
			r = found < 0 ? -errno : 1;
		} else if (r > 0) {
			r = walk_step(w, name, &remaining, &found);
		}
	} while (r == 0);
	while (w->depth > 0)
		close(w->dirs[--w->depth]);
	free(w);
	return r < 0 ? r : found;
}

/* EAGAIN means a rename or mount raced with a lookup holding "..": not a failure, retried. */
static int
resolve_openat2(int root_fd, const char *path)
{
	struct open_how how = {
	    .flags = O_PATH | O_CLOEXEC,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long fd;

	do
		fd = syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
	while (fd < 0 && (errno == EAGAIN || errno == EINTR));
	return fd < 0 ? -errno : (int)fd;
}

static int
check_path(const char *path)
{
	if (path[0] == '\0')
		return -ENOENT;
	if (path[0] == '/')
		return -EXDEV;
	return 0;
}

int
fdt_open_beneath_walk(int root_fd, const char *path)
{
	int r;

	assert(path);
	r = check_path(path);
	if (r == 0)
		r = resolve_walk(root_fd, path);
	return r < 0 ? r : reopen_regular(r);
}

int
fdt_open_beneath(int root_fd, const char *path)
{
	int r;

	assert(path);
	r = check_path(path);
	if (r == 0)
		r = resolve_openat2(root_fd, path);
	if (r == -ENOSYS)
		r = resolve_walk(root_fd, path);
	return r < 0 ? r : reopen_regular(r);
}

/* ---- Methods ---- */

static unsigned long long
connection_of(const struct rfd_msg *request)
{
	return (unsigned long long)rfd_msg_connection(request);
}

/* Close every FD that came with @request. */
static void
close_request_fds(struct rfd_msg *request)
{
	for (size_t i = 0; i < rfd_msg_fd_count(request); i++) {
		int fd = rfd_msg_take_fd(request, i);

		if (fd >= 0)
			close(fd);
	}
}

/* Answer with an error, after closing the request's FDs.  A one-way is only freed. */
static void
fail_request(struct rfd_msg *request, enum rfd_failure failure, const char *what)
{
	log_info("connection %llu: %s: %s", connection_of(request), rfd_msg_method(request), what);
	close_request_fds(request);
	rfd_reply_error(request, failure, what);
}

static void
fail_internal(struct rfd_msg *request, int err)
{
	char what[128];

	snprintf(what, sizeof(what), "failure inside the server: %s", strerror(-err));
	fail_request(request, RFD_FAIL_INTERNAL, what);
}

/* Answer with the result struct @result and the FDs @fds, which the reply takes. */
static void
reply_result(struct rfd_msg *request, const struct fdt_bytes *result, const int *fds, size_t n_fds)
{
	const char *method = rfd_msg_method(request);
	int r = rfd_reply(request, result->data, result->len, fds, n_fds, RFD_FDS_TAKE);

	if (r < 0)
		log_debug("%s: the answer was not sent: %s", method, strerror(-r));
}

/*
 * Decode the {1: string} args of @request into *text (and *len), or answer
 * the request with an error and return a negative errno.
 */
static int
decode_text_args(struct rfd_msg *request, char **text, size_t *len)
{
	const uint8_t *data;
	const char *why;
	char what[160];
	size_t data_len;
	int r;

	data = rfd_msg_data(request, &data_len);
	r = fdt_decode_args(data, data_len, text, len, &why);
	if (r == -ENOMEM) {
		fail_internal(request, r);
	} else if (r < 0) {
		snprintf(what, sizeof(what), "the arguments do not decode: %s", why);
		fail_request(request, RFD_FAIL_BAD_REQUEST, what);
	}
	return r;
}

/*
 * Describe every FD of @request into @report, tagged @tag (which the report
 * takes), and close them all, whatever happens.
 */
static int
describe_and_close(struct rfd_msg *request, char *tag, size_t tag_len, struct fdt_report *report)
{
	size_t n = rfd_msg_fd_count(request);
	int r = 0;

	memset(report, 0, sizeof(*report));
	report->tag = tag;
	report->tag_len = tag_len;
	if (n > 0) {
		report->fds = calloc(n, sizeof(*report->fds));
		if (!report->fds)
			r = -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		int fd = rfd_msg_take_fd(request, i);

		if (r == 0)
			r = fdt_describe_fd(fd, &report->fds[i]);
		if (fd >= 0)
			close(fd);
	}
	if (r < 0) {
		fdt_report_free(report);
		return r;
	}
	report->n_fds = n;
	return 0;
}

static void
log_report(const struct rfd_msg *request, const struct fdt_report *report)
{
	char line[256];

	if (!log_enabled(LOG_LEVEL_DEBUG))
		return;
	log_debug("connection %llu: %s \"%s\": %zu FDs", connection_of(request),
	          rfd_msg_method(request), report->tag, report->n_fds);
	for (size_t i = 0; i < report->n_fds; i++)
		log_debug("  %zu %s", i, fdt_fdinfo_string(&report->fds[i], line, sizeof(line)));
}

static void
reply_report(struct rfd_msg *request, const struct fdt_report *report)
{
	struct fdt_bytes result;
	int r = fdt_encode_report_result(report, &result);

	if (r < 0) {
		fail_internal(request, r);
		return;
	}
	reply_result(request, &result, NULL, 0);
	fdt_bytes_free(&result);
}

static void
do_inspect(struct fdt_service *service, struct rfd_msg *request)
{
	struct fdt_report report;
	size_t tag_len;
	char *tag;
	int r;

	if (decode_text_args(request, &tag, &tag_len) < 0)
		return;
	r = describe_and_close(request, tag, tag_len, &report);
	if (r < 0) {
		fail_internal(request, r);
		return;
	}
	log_report(request, &report);
	reply_report(request, &report);
	fdt_report_free(&report);
}

static void
do_echo(struct fdt_service *service, struct rfd_msg *request)
{
	int fds[RFD_MAX_FDS];
	size_t n = rfd_msg_fd_count(request);
	struct fdt_bytes result;
	size_t tag_len;
	char *tag;
	int r;

	if (decode_text_args(request, &tag, &tag_len) < 0)
		return;
	log_debug("connection %llu: echo \"%s\": %zu FDs", connection_of(request), tag, n);
	r = fdt_encode_bytes_result(tag, tag_len, &result);
	free(tag);
	if (r < 0) {
		fail_internal(request, r);
		return;
	}
	for (size_t i = 0; i < n; i++)
		fds[i] = rfd_msg_take_fd(request, i);
	reply_result(request, &result, fds, n);
	fdt_bytes_free(&result);
}

static void
do_record(struct fdt_service *service, struct rfd_msg *request)
{
	uint64_t connection = rfd_msg_connection(request);
	struct fdt_report report;
	size_t tag_len;
	char *tag;
	int r;

	if (decode_text_args(request, &tag, &tag_len) < 0)
		return;
	r = describe_and_close(request, tag, tag_len, &report);
	if (r == 0) {
		log_report(request, &report);
		r = store_recorded(service, connection, &report);
	}
	if (r < 0) {
		/* A one-way has no answer to carry the failure; a stale report must not stay. */
		log_warn("connection %llu: record failed: %s", connection_of(request),
		         strerror(-r));
		fdt_service_closed(service, connection);
	}
	fdt_report_free(&report);
	rfd_msg_free(request);
}

static void
do_last_recorded(struct fdt_service *service, struct rfd_msg *request)
{
	static const struct fdt_report empty = {.tag = (char *)""};
	const struct recorded *entry;
	const uint8_t *data;
	const char *why;
	char what[160];
	size_t len;

	data = rfd_msg_data(request, &len);
	if (fdt_decode_empty_args(data, len, &why) < 0) {
		snprintf(what, sizeof(what), "the arguments do not decode: %s", why);
		fail_request(request, RFD_FAIL_BAD_REQUEST, what);
		return;
	}
	close_request_fds(request);
	entry = *find_recorded(service, rfd_msg_connection(request));
	reply_report(request, entry ? &entry->report : &empty);
}

static void
describe_open_error(const char *path, int err, char *what, size_t size)
{
	switch (err) {
	case EXDEV:
		snprintf(what, size, "%s: the path leads outside the root directory", path);
		break;
	case EINVAL:
		snprintf(what, size, "%s: not a regular file", path);
		break;
	default:
		snprintf(what, size, "%s: %s", path, strerror(err));
		break;
	}
}

static void
reply_open_error(struct rfd_msg *request, const char *what, int err)
{
	struct fdt_bytes result;
	int r;

	log_debug("connection %llu: open: %s", connection_of(request), what);
	r = fdt_encode_error_result(what, err, &result);
	if (r < 0) {
		fail_internal(request, r);
		return;
	}
	r = rfd_reply_exception(request, FDT_ERROR_NAME, what, result.data, result.len);
	if (r < 0)
		log_debug("open: the answer was not sent: %s", strerror(-r));
	fdt_bytes_free(&result);
}

static void
do_open(struct fdt_service *service, struct rfd_msg *request)
{
	struct fdt_bytes result;
	char what[256];
	size_t len;
	char *path;
	int fd, r;

	if (decode_text_args(request, &path, &len) < 0)
		return;
	close_request_fds(request);
	if (service->root_fd < 0) {
		snprintf(what, sizeof(what), "%s: the server was started without a root directory",
		         path);
		fd = -EACCES;
	} else if (strlen(path) != len) {
		snprintf(what, sizeof(what), "the path holds a NUL byte");
		fd = -EINVAL;
	} else {
		fd = fdt_open_beneath(service->root_fd, path);
		if (fd < 0)
			describe_open_error(path, -fd, what, sizeof(what));
	}
	if (fd < 0) {
		reply_open_error(request, what, -fd);
		free(path);
		return;
	}
	log_debug("connection %llu: open \"%s\": opened", connection_of(request), path);
	r = fdt_encode_string_result(path, &result);
	free(path);
	if (r < 0) {
		close(fd);
		fail_internal(request, r);
		return;
	}
	reply_result(request, &result, &fd, 1);
	fdt_bytes_free(&result);
}

static const char *
pidfd_kind(const struct rfd_msg *request)
{
	if (rfd_msg_peer_pinned(request))
		return "pinned";
	return rfd_msg_peer_pidfd(request) >= 0 ? "best effort" : "none";
}

/* The caller's credentials as the library took them at accept, and whether its pidfd is pinned. */
static void
do_whoami(struct fdt_service *service, struct rfd_msg *request)
{
	const struct rfd_peer *peer = rfd_msg_peer(request);
	struct fdt_peer_info info = {
	    .pid = peer->pid,
	    .uid = (int32_t)peer->uid,
	    .gid = (int32_t)peer->gid,
	    .pid_pinned = rfd_msg_peer_pinned(request),
	};
	struct fdt_bytes result;
	const uint8_t *data;
	const char *why;
	char what[160];
	size_t len;
	int r;

	data = rfd_msg_data(request, &len);
	if (fdt_decode_empty_args(data, len, &why) < 0) {
		snprintf(what, sizeof(what), "the arguments do not decode: %s", why);
		fail_request(request, RFD_FAIL_BAD_REQUEST, what);
		return;
	}
	close_request_fds(request);
	log_debug("connection %llu: whoami: pid %d uid %d gid %d, pidfd %s", connection_of(request),
	          (int)info.pid, (int)info.uid, (int)info.gid, pidfd_kind(request));
	r = fdt_encode_peer_info_result(&info, &result);
	if (r < 0) {
		fail_internal(request, r);
		return;
	}
	reply_result(request, &result, NULL, 0);
	fdt_bytes_free(&result);
}

/* ---- streamFds ---- */

/* A streamFds call being served: its items go out as the client gives credit. */
struct fd_stream {
	struct fd_stream *prev;
	struct fd_stream *next;
	struct fdt_service *service;
	struct rfd_stream *stream;
	unsigned long long connection;
	int32_t count;
	int32_t fds_per_item;
	int32_t sent;
};

static void
fd_stream_forget(struct fd_stream *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		s->service->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	free(s);
}

/*
 * Item @s->sent: fdsPerItem fresh pipe read ends, whose write ends are
 * closed here (each reads EOF at once), and the report of those very FDs,
 * described before they go.  0 with *n FDs in @fds and *result, or a
 * negative errno with nothing left open.
 */
static int
make_item(const struct fd_stream *s, int *fds, size_t *n, struct fdt_bytes *result)
{
	struct fdt_fdinfo infos[FDT_MAX_FDS];
	struct fdt_report report = {.fds = infos};
	char tag[16];
	int r = 0;

	*n = 0;
	for (int32_t i = 0; i < s->fds_per_item && r == 0; i++) {
		int ends[2];

		if (pipe2(ends, O_CLOEXEC) < 0) {
			r = -errno;
			break;
		}
		close(ends[1]);
		fds[(*n)++] = ends[0];
		r = fdt_describe_fd(ends[0], &infos[i]);
	}
	snprintf(tag, sizeof(tag), "%d", (int)s->sent);
	report.tag = tag;
	report.n_fds = *n;
	if (r == 0)
		r = fdt_encode_report_result(&report, result);
	if (r < 0) {
		while (*n > 0)
			close(fds[--*n]);
	}
	return r;
}

/*
 * Send items while the client gives credit; complete the stream after the
 * last.  An item's pipes are made only when the library takes it at once
 * (rfd_stream_credits() above 0), so a client that stops reading makes the
 * server hold no FDs beyond those the library's budget allows.
 */
static void
push_items(struct fd_stream *s)
{
	int fds[FDT_MAX_FDS];
	struct fdt_bytes result;
	char what[160];
	size_t n;
	int r;

	while (s->sent < s->count && rfd_stream_credits(s->stream) > 0) {
		r = make_item(s, fds, &n, &result);
		if (r < 0) {
			snprintf(what, sizeof(what), "streamFds: cannot make item %d: %s",
			         (int)s->sent, strerror(-r));
			log_info("connection %llu: %s", s->connection, what);
			rfd_stream_error(s->stream, what);
			fd_stream_forget(s);
			return;
		}
		r = rfd_stream_send(s->stream, result.data, result.len, fds, n, RFD_FDS_TAKE);
		fdt_bytes_free(&result);
		if (r < 0) {
			log_debug("connection %llu: streamFds: item %d not sent: %s", s->connection,
			          (int)s->sent, strerror(-r));
			rfd_stream_free(s->stream);
			fd_stream_forget(s);
			return;
		}
		s->sent++;
	}
	if (s->sent < s->count)
		return;
	log_debug("connection %llu: streamFds: %d items sent", s->connection, (int)s->sent);
	rfd_stream_complete(s->stream);
	fd_stream_forget(s);
}

static void
on_fd_stream_event(void *user, struct rfd_stream *stream, enum rfd_stream_event event)
{
	struct fd_stream *s = user;

	if (event == RFD_STREAM_CREDIT) {
		push_items(s);
		return;
	}
	log_debug("connection %llu: streamFds: %s after %d items", s->connection,
	          event == RFD_STREAM_CANCELLED ? "cancelled by the client" : "connection closed",
	          (int)s->sent);
	rfd_stream_free(stream);
	fd_stream_forget(s);
}

/* count items of fdsPerItem FDs each; the first response is the empty struct. */
static void
do_stream_fds(struct fdt_service *service, struct rfd_msg *request)
{
	struct fdt_bytes first;
	struct fd_stream *s;
	const uint8_t *data;
	int32_t count, fds_per_item;
	const char *why;
	char what[160];
	size_t len;
	int r;

	data = rfd_msg_data(request, &len);
	r = fdt_decode_stream_args(data, len, &count, &fds_per_item, &why);
	if (r == 0 && (count < 0 || count > FDT_MAX_STREAM_ITEMS || fds_per_item < 0 ||
	               fds_per_item > FDT_MAX_FDS)) {
		why = "count must be 0 to 10000 and fdsPerItem 0 to 253";
		r = -EINVAL;
	}
	if (r < 0) {
		snprintf(what, sizeof(what), "the arguments do not decode: %s", why);
		fail_request(request, RFD_FAIL_BAD_REQUEST, r == -EINVAL ? why : what);
		return;
	}
	close_request_fds(request);
	s = calloc(1, sizeof(*s));
	r = s ? fdt_encode_empty_args(&first) : -ENOMEM;
	if (r < 0) {
		free(s);
		fail_internal(request, r);
		return;
	}
	s->service = service;
	s->connection = connection_of(request);
	s->count = count;
	s->fds_per_item = fds_per_item;
	log_debug("connection %llu: streamFds %d items of %d FDs", s->connection, (int)count,
	          (int)fds_per_item);
	r = rfd_reply_stream(request, first.data, first.len, NULL, 0, RFD_FDS_DUP,
	                     on_fd_stream_event, s, &s->stream);
	fdt_bytes_free(&first);
	if (r < 0) {
		log_debug("connection %llu: streamFds: no first response: %s", s->connection,
		          strerror(-r));
		free(s);
		return;
	}
	s->next = service->streams;
	if (s->next)
		s->next->prev = s;
	service->streams = s;
	push_items(s);
}

/* Streams the server still holds when the service goes: ended for their clients. */
static void
fd_stream_drop(struct fdt_service *service)
{
	while (service->streams) {
		rfd_stream_free(service->streams->stream);
		fd_stream_forget(service->streams);
	}
}

/* ---- sinkFds ---- */

/* A sinkFds call being served: the report of every FD its items brought, in order. */
struct fd_sink {
	struct fd_sink *prev;
	struct fd_sink *next;
	struct fdt_service *service;
	struct rfd_sink *sink;
	unsigned long long connection;
	struct fdt_report report;
	size_t items;
};

static void
fd_sink_forget(struct fd_sink *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		s->service->sinks = s->next;
	if (s->next)
		s->next->prev = s->prev;
	fdt_report_free(&s->report);
	free(s);
}

/* End the sink with an error saying @what, and forget it. */
static void
fd_sink_fail(struct fd_sink *s, const char *what)
{
	log_info("connection %llu: %s", s->connection, what);
	rfd_sink_error(s->sink, what);
	fd_sink_forget(s);
}

/*
 * Describe the FDs of @item at the end of the report and close them all,
 * whatever happens.  A report lists at most FDT_MAX_FDS FDs, so a sink whose
 * items bring more in all fails (SVC-SINK-5).
 */
static int
describe_item_fds(struct fd_sink *s, struct rfd_msg *item, const char **why)
{
	size_t n = rfd_msg_fd_count(item), have = s->report.n_fds;
	struct fdt_fdinfo *fds = NULL;
	int r = 0;

	*why = "out of memory";
	if (n > FDT_MAX_FDS - have) {
		*why = "the items brought more FDs than one report lists (253)";
		r = -E2BIG;
	} else if (n > 0) {
		fds = realloc(s->report.fds, (have + n) * sizeof(*fds));
		if (fds)
			s->report.fds = fds;
		else
			r = -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		int fd = rfd_msg_take_fd(item, i);

		if (r == 0)
			r = fdt_describe_fd(fd, &s->report.fds[have + i]);
		if (fd >= 0)
			close(fd);
	}
	if (r == 0)
		s->report.n_fds = have + n;
	else if (r != -E2BIG && r != -ENOMEM)
		*why = "an FD could not be described";
	return r;
}

static void
take_sink_item(struct fd_sink *s, struct rfd_msg *item)
{
	const uint8_t *data;
	const char *why;
	char what[160];
	size_t len, tag_len;
	char *tag;
	int r;

	data = rfd_msg_data(item, &len);
	r = fdt_decode_sink_item(data, len, &tag, &tag_len, &why);
	free(tag);
	if (r == 0)
		r = describe_item_fds(s, item, &why);
	log_debug("connection %llu: sinkFds item %zu: %zu FDs", s->connection, s->items,
	          rfd_msg_fd_count(item));
	rfd_msg_free(item);
	s->items++;
	if (r < 0) {
		snprintf(what, sizeof(what), "sinkFds: item %zu: %s", s->items - 1, why);
		fd_sink_fail(s, what);
	}
}

/* The client completed the sink: the final response reports every FD. */
static void
finish_sink(struct fd_sink *s)
{
	struct fdt_bytes result;
	char what[160];
	int r = fdt_encode_report_result(&s->report, &result);

	if (r < 0) {
		snprintf(what, sizeof(what), "sinkFds: cannot encode the report: %s", strerror(-r));
		fd_sink_fail(s, what);
		return;
	}
	log_debug("connection %llu: sinkFds \"%s\": %zu items, %zu FDs", s->connection,
	          s->report.tag, s->items, s->report.n_fds);
	r = rfd_sink_finish(s->sink, result.data, result.len, NULL, 0, RFD_FDS_DUP);
	if (r < 0)
		log_debug("connection %llu: sinkFds: the final response was not sent: %s",
		          s->connection, strerror(-r));
	fdt_bytes_free(&result);
	fd_sink_forget(s);
}

static void
on_fd_sink(void *user, struct rfd_sink *sink, int status, struct rfd_msg *item)
{
	struct fd_sink *s = user;

	if (item) {
		take_sink_item(s, item);
		return;
	}
	if (status == 0) {
		finish_sink(s);
		return;
	}
	log_debug("connection %llu: sinkFds: ended after %zu items: %s", s->connection, s->items,
	          strerror(-status));
	rfd_sink_free(sink);
	fd_sink_forget(s);
}

/* The first response is the empty struct; items then come as the library grants credit. */
static void
do_sink_fds(struct fdt_service *service, struct rfd_msg *request)
{
	struct fdt_bytes first;
	struct fd_sink *s;
	size_t tag_len;
	char *tag;
	int r;

	if (decode_text_args(request, &tag, &tag_len) < 0)
		return;
	close_request_fds(request);
	s = calloc(1, sizeof(*s));
	r = s ? fdt_encode_empty_args(&first) : -ENOMEM;
	if (r < 0) {
		free(s);
		free(tag);
		fail_internal(request, r);
		return;
	}
	s->service = service;
	s->connection = connection_of(request);
	s->report.tag = tag;
	s->report.tag_len = tag_len;
	log_debug("connection %llu: sinkFds \"%s\"", s->connection, tag);
	r = rfd_reply_sink(request, first.data, first.len, NULL, 0, RFD_FDS_DUP, 0, on_fd_sink, s,
	                   &s->sink);
	fdt_bytes_free(&first);
	if (r < 0) {
		log_debug("connection %llu: sinkFds: no first response: %s", s->connection,
		          strerror(-r));
		fdt_report_free(&s->report);
		free(s);
		return;
	}
	s->next = service->sinks;
	if (s->next)
		s->next->prev = s;
	service->sinks = s;
}

/* Sinks the server still holds when the service goes: ended for their clients. */
static void
fd_sink_drop(struct fdt_service *service)
{
	while (service->sinks) {
		rfd_sink_free(service->sinks->sink);
		fd_sink_forget(service->sinks);
	}
}

static const struct {
	const char *name;
	enum rfd_call_kind kind;
	void (*handle)(struct fdt_service *service, struct rfd_msg *request);
} methods[] = {
    {FDT_METHOD_INSPECT, RFD_CALL_RESPONSE, do_inspect},
    {FDT_METHOD_ECHO, RFD_CALL_RESPONSE, do_echo},
    {FDT_METHOD_RECORD, RFD_CALL_ONEWAY, do_record},
    {FDT_METHOD_LAST, RFD_CALL_RESPONSE, do_last_recorded},
    {FDT_METHOD_OPEN, RFD_CALL_RESPONSE, do_open},
    {FDT_METHOD_WHOAMI, RFD_CALL_RESPONSE, do_whoami},
    {FDT_METHOD_STREAM_FDS, RFD_CALL_STREAM, do_stream_fds},
    {FDT_METHOD_SINK_FDS, RFD_CALL_SINK, do_sink_fds},
};

/* What a method is, and how a request was sent, for the text of a refusal. */
static const char *const method_kinds[] = {
    [RFD_CALL_RESPONSE] = "a request-response method",
    [RFD_CALL_ONEWAY] = "one-way",
    [RFD_CALL_STREAM] = "a stream method",
    [RFD_CALL_SINK] = "a sink method",
};
static const char *const sent_as[] = {
    [RFD_CALL_RESPONSE] = "expecting a response",
    [RFD_CALL_ONEWAY] = "one-way",
    [RFD_CALL_STREAM] = "asking for a stream",
    [RFD_CALL_SINK] = "opening a sink",
};

void
fdt_service_handle(void *user, struct rfd_msg *request)
{
	struct fdt_service *service = user;
	const char *method = rfd_msg_method(request);
	enum rfd_call_kind kind = rfd_msg_call_kind(request);
	char what[160];

	assert(service);
	assert(request);
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		if (strcmp(method, methods[i].name) != 0)
			continue;
		/* A method of another kind is not run (6.8 step 8, META-17). */
		if (kind != methods[i].kind) {
			snprintf(what, sizeof(what), "%s is %s, and was sent %s", method,
			         method_kinds[methods[i].kind], sent_as[kind]);
			fail_request(request, RFD_FAIL_WRONG_KIND, what);
			return;
		}
		methods[i].handle(service, request);
		return;
	}
	snprintf(what, sizeof(what), "FdTest has no method \"%.100s\"", method);
	fail_request(request, RFD_FAIL_UNKNOWN_METHOD, what);
}
