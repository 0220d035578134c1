/* SPDX-License-Identifier: MIT */
#include "serve.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "compact.h"
#include "fdsock.h"
#include "target.h"

#define PROTOCOL_KEY  0xf09f9a80u
#define METADATA_MIME "application/x-rocket-metadata+compact"
#define DATA_MIME     "application/x-rocket-payload"

enum {
	HEADER_BYTES = 3, /* the u24 length field */
	MIN_FRAME_LENGTH = 6,
	TYPE_OFFSET = 7, /* of the u16 type and flags, from the frame's first byte */
	MAX_MESSAGE = 64 << 20,
	STREAM_ID_MAX = 0x7FFFFFFF,
	CHECKSUM_FIELD = 25,
	EXIT_POLL_MS = 10,
	ACCEPT_POLL_MS = 50,
	EXIT_GRACE_MS = 300, /* a failure waits this long to name the client's exit status */
	DEADLINE_MARGIN_MS = 200,
	PROC_STAT_EXIT_CODE = 52,    /* field of /proc/PID/stat, Linux 3.5 and later */
	KIND_SINK = 6,               /* RpcKind SINK */
	SETUP_CLIENT_METADATA = 9,   /* RequestSetupMetadata.clientMetadata */
	CLIENT_OTHER_METADATA = 3,   /* ClientMetadata.otherMetadata */
	RESPONSE_OTHER_METADATA = 3, /* ResponseRpcMetadata.otherMetadata */
};

#define METHOD_STREAM_FDS "streamFds"
#define METHOD_SINK_FDS   "sinkFds"

_Static_assert(sizeof(((struct wire *)0)->groups) / sizeof(struct wire_group) == SERVE_MAX_GROUPS,
               "SERVE_MAX_GROUPS is the capacity of struct wire's groups");

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
left_ms(long long deadline)
{
	long long left = deadline - now_ms();

	return left > 0 ? (int)left : 0;
}

long long
serve_deadline(const struct conf_ctx *ctx)
{
	int margin = ctx->timeout_ms / 10;

	assert(ctx);
	if (margin < DEADLINE_MARGIN_MS)
		margin = DEADLINE_MARGIN_MS;
	if (margin > ctx->timeout_ms / 2)
		margin = ctx->timeout_ms / 2;
	return now_ms() + ctx->timeout_ms - margin;
}

/* Record a failure and return -EPROTO, for the functions that return an errno. */
static int __attribute__((format(printf, 2, 3)))
fail_proto(struct serve_conn *c, const char *fmt, ...)
{
	char reason[sizeof(c->ctx->reason)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	conf_fail(c->ctx, "%s", reason);
	return -EPROTO;
}

/* ---- The client's exit status ---- */

/*
 * 1 when @pid has exited, with *status as waitpid() reports it, 0 while it
 * runs, or a negative errno.  The case runs in a sibling of the client (the
 * runner started both), so it cannot wait for it: it reads the status from
 * the zombie's /proc/PID/stat, which stays until the runner reaps it after
 * the case.
 */
static int
client_status(pid_t pid, int *status)
{
	char path[64], text[2048], *p, *end;
	char state = '?';
	int fd, field;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	text[n] = '\0';
	p = strrchr(text, ')'); /* the command name may hold spaces and parentheses */
	if (!p)
		return -EBADMSG;
	p++;
	for (field = 3; *p; field++) {
		while (*p == ' ')
			p++;
		if (field == 3)
			state = *p;
		if (field == PROC_STAT_EXIT_CODE) {
			if (state != 'Z' && state != 'X')
				return 0;
			*status = (int)strtol(p, &end, 10);
			return end != p ? 1 : -EBADMSG;
		}
		while (*p && *p != ' ')
			p++;
	}
	return state == 'Z' || state == 'X' ? -ENOTSUP : 0;
}

/* Wait up to @timeout_ms for the client to exit: as client_status(). */
static int
wait_client(const struct conf_ctx *ctx, int timeout_ms, int *status)
{
	long long deadline = now_ms() + timeout_ms;
	int r;

	if (ctx->target_pid <= 0)
		return -ESRCH;
	while ((r = client_status(ctx->target_pid, status)) == 0 && now_ms() < deadline)
		poll(NULL, 0, EXIT_POLL_MS);
	return r;
}

static void
describe_exit(int r, int status, char *buf, size_t size)
{
	if (r < 0)
		snprintf(buf, size, "has an unknown state (%s)", strerror(-r));
	else if (r == 0)
		snprintf(buf, size, "is still running");
	else if (WIFEXITED(status))
		snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, size, "was killed by signal %d (%s)", WTERMSIG(status),
		         strsignal(WTERMSIG(status)));
	else
		snprintf(buf, size, "ended with wait status 0x%x", (unsigned)status);
}

/* "; the client exited with status 1", to append to a reason that involves the client going away.
 */
static void
exit_suffix(const struct conf_ctx *ctx, char *buf, size_t size)
{
	char state[96];
	int status = 0, r = wait_client(ctx, EXIT_GRACE_MS, &status);

	if (r == -ESRCH && ctx->target_pid <= 0) {
		buf[0] = '\0';
		return;
	}
	describe_exit(r, status, state, sizeof(state));
	snprintf(buf, size, "; the client %s", state);
}

static enum conf_result
judge_exit(struct conf_ctx *ctx, int status)
{
	char state[96];

	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return CONF_PASS;
	describe_exit(1, status, state, sizeof(state));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 1)
		return conf_fail(ctx,
		                 "the client %s: it observed something the scenario does not list "
		                 "(CONTRACT-10; its output says what)",
		                 state);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
		return conf_fail(ctx, "the client %s: it could not run the scenario (CONTRACT-10)",
		                 state);
	return conf_fail(ctx, "the client %s; CONTRACT-10 allows only 0, 1 and 2", state);
}

/* The client exits with status 0, opening no other connection meanwhile. */
static enum conf_result
wait_exit(struct conf_ctx *ctx, long long deadline)
{
	struct pollfd pfd = {.fd = ctx->listen_fd, .events = POLLIN};
	int status = 0, r;

	if (ctx->target_pid <= 0)
		return CONF_PASS;
	for (;;) {
		r = client_status(ctx->target_pid, &status);
		if (r == 1)
			return judge_exit(ctx, status);
		if (r < 0)
			return conf_fail(ctx, "cannot learn the client's exit status: %s",
			                 strerror(-r));
		if (ctx->listen_fd >= 0 && poll(&pfd, 1, 0) > 0)
			return conf_fail(ctx, "CONTRACT-13: the client opened a connection the "
			                      "scenario does not ask for");
		if (now_ms() >= deadline)
			return conf_fail(ctx, "the client did not exit within the case timeout "
			                      "(CONTRACT-12)");
		poll(NULL, 0, EXIT_POLL_MS);
	}
}

/* ---- Connections ---- */

static void
conn_init(struct serve_conn *c, struct conf_ctx *ctx, long long deadline, int sock)
{
	memset(c, 0, sizeof(*c));
	wire_adopt(&c->w, ctx, sock);
	c->ctx = ctx;
	c->deadline = deadline;
	c->next_stream = 1;
	rfd_buf_init(&c->msg.metadata);
	rfd_buf_init(&c->msg.data);
}

static void
close_group(struct wire_group *g)
{
	for (size_t i = 0; i < g->n; i++)
		if (g->fds[i] >= 0)
			close(g->fds[i]);
	g->n = 0;
}

void
serve_close(struct serve_conn *c)
{
	assert(c);
	if (c->held) {
		serve_request_free(c->held);
		free(c->held);
		c->held = NULL;
	}
	for (size_t i = 0; i < c->n_sink_events; i++)
		close_group(&c->sink_events[i].fds);
	c->n_sink_events = 0;
	wire_close(&c->w);
	rfd_buf_free(&c->msg.metadata);
	rfd_buf_free(&c->msg.data);
	fdt_report_free(&c->recorded);
}

enum conf_result
serve_accept(struct conf_ctx *ctx, long long deadline, struct serve_conn *c)
{
	struct pollfd pfd = {.fd = ctx->listen_fd, .events = POLLIN};
	char state[96];
	int status = 0, r;

	assert(ctx);
	assert(c);
	conn_init(c, ctx, deadline, -1);
	for (;;) {
		int left = left_ms(deadline);

		if (poll(&pfd, 1, left < ACCEPT_POLL_MS ? left : ACCEPT_POLL_MS) > 0) {
			int sock = accept4(ctx->listen_fd, NULL, NULL, SOCK_CLOEXEC);

			if (sock >= 0) {
				c->w.sock = sock;
				return CONF_PASS;
			}
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				return conf_fail(ctx, "accept: %s", strerror(errno));
		}
		r = ctx->target_pid > 0 ? client_status(ctx->target_pid, &status) : 0;
		if (r == 1) {
			describe_exit(r, status, state, sizeof(state));
			return conf_fail(ctx, "the client %s without connecting to %s", state,
			                 ctx->socket_path);
		}
		if (left == 0)
			return conf_fail(ctx,
			                 "the client did not connect to %s within the case "
			                 "timeout",
			                 ctx->socket_path);
	}
}

/* ---- Reading frames ---- */

/* Queue the FDs of one read as a group pinned to the frame being read. */
static int
push_group(struct serve_conn *c, const struct rfd_cmsg_result *control)
{
	struct wire *w = &c->w;
	struct wire_group *g;

	if (w->n_groups == SERVE_MAX_GROUPS) {
		for (size_t i = 0; i < control->n_fds; i++)
			close(control->fds[i]);
		return fail_proto(c,
		                  "more than %d FD groups from the client wait for a request "
		                  "to claim them",
		                  SERVE_MAX_GROUPS);
	}
	g = &w->groups[w->n_groups];
	g->seq = w->recv_seq;
	g->n = control->n_fds;
	memcpy(g->fds, control->fds, control->n_fds * sizeof(int));
	c->group_frame[w->n_groups] = c->frame_no;
	w->n_groups++;
	w->recv_seq = rfd_seq_add(w->recv_seq, (int64_t)control->n_fds);
	return 0;
}

/*
 * One read of at most the rest of the frame being read, so that a read never
 * holds bytes of two frames.  >0 bytes, 0 at EOF, -ETIMEDOUT, -EPROTO.
 */
static int
read_some(struct serve_conn *c)
{
	struct wire *w = &c->w;
	struct pollfd pfd = {.fd = w->sock, .events = POLLIN};
	struct rfd_cmsg_result control;
	const char *why = "";
	size_t want = HEADER_BYTES;
	ssize_t n;

	if (w->in.len >= HEADER_BYTES)
		want += rfd_get_u24(w->in.data);
	if (rfd_buf_reserve(&w->in, want - w->in.len) < 0)
		return fail_proto(c, "the harness is out of memory");
	for (;;) {
		n = rfd_sock_recv(w->sock, w->in.data + w->in.len, want - w->in.len, 0, &control,
		                  &why);
		if (n != -EAGAIN)
			break;
		if (poll(&pfd, 1, left_ms(c->deadline)) <= 0)
			return -ETIMEDOUT;
	}
	if (n == -ECONNRESET)
		n = 0;
	if (n < 0)
		return fail_proto(c, "the harness's read from the client failed: %s (%s)",
		                  strerror((int)-n), why);
	if (control.pidfd >= 0)
		close(control.pidfd);
	if (n > 0 && w->in.len == 0)
		c->frame_no++;
	if (control.n_fds > 0 && push_group(c, &control) < 0)
		return -EPROTO;
	w->in.len += (size_t)n;
	if (n == 0)
		w->eof = true;
	return (int)n;
}

/*
 * The next frame, decoded, its slices valid until the next call: 1, 0 at
 * EOF between frames, -ETIMEDOUT, or -EPROTO with the failure recorded.
 */
static int
read_frame(struct serve_conn *c, struct rfd_frame *f)
{
	struct wire *w = &c->w;
	const char *why = "";
	uint16_t type_and_flags;
	size_t length = 0;
	int r;

	if (c->frame_held) {
		w->in.len = 0;
		c->frame_held = false;
	}
	for (;;) {
		if (w->in.len >= HEADER_BYTES) {
			length = rfd_get_u24(w->in.data);
			if (length < MIN_FRAME_LENGTH)
				return fail_proto(c,
				                  "FRAME-1: the client sent a frame of length %zu, "
				                  "below 6",
				                  length);
			if (w->in.len == HEADER_BYTES + length)
				break;
		}
		r = read_some(c);
		if (r < 0)
			return r;
		if (r == 0 && w->in.len == 0)
			return 0;
		if (r == 0)
			return fail_proto(c,
			                  "the client's connection ended inside a frame, after "
			                  "%zu of its bytes",
			                  w->in.len);
	}
	c->frame_held = true;
	type_and_flags = rfd_get_u16(w->in.data + TYPE_OFFSET);
	if (type_and_flags & RFD_FLAG_RESERVED_MASK)
		return fail_proto(c,
		                  "FRAME-2: the client set reserved flag bits 0x%x on a frame "
		                  "of type 0x%x",
		                  type_and_flags & RFD_FLAG_RESERVED_MASK, type_and_flags >> 10);
	if (wire_undefined_flags((uint8_t)(type_and_flags >> 10), type_and_flags & 0x3FF))
		return fail_proto(
		    c,
		    "FRAME-22: the client set flag bits 0x%03x, which a %s frame "
		    "does not define",
		    wire_undefined_flags((uint8_t)(type_and_flags >> 10), type_and_flags & 0x3FF),
		    rfd_frame_type_name((uint8_t)(type_and_flags >> 10)));
	if (rfd_frame_decode(w->in.data + HEADER_BYTES, length, f, &why) < 0)
		return fail_proto(c, "the client sent a malformed frame (section 4): %s", why);
	return 1;
}

static const struct serve_stream *
stream_of(const struct serve_conn *c, uint32_t id)
{
	for (size_t i = 0; i < c->n_streams; i++)
		if (c->streams[i].id == id)
			return &c->streams[i];
	return NULL;
}

struct serve_stream *
serve_stream_find(struct serve_conn *c, uint32_t id)
{
	assert(c);
	return (struct serve_stream *)stream_of(c, id);
}

/* A PAYLOAD with NEXT on a sink the client may still send items on: a carrier (section 8). */
static bool
is_sink_item(const struct serve_conn *c, const struct rfd_frame *f)
{
	const struct serve_stream *st =
	    f->type == RFD_FRAME_PAYLOAD ? stream_of(c, f->stream_id) : NULL;

	return st && st->sink && !st->cancelled && !st->completed && (f->flags & RFD_FLAG_NEXT);
}

static bool
slice_is(struct rfd_slice s, const char *text)
{
	return s.len == strlen(text) && memcmp(s.ptr, text, s.len) == 0;
}

/* Could the frame carry FDs, as part of a request or a sink item (section 8)? */
static bool
carries_request(const struct serve_conn *c, const struct rfd_frame *f)
{
	if (!c->msg.active && is_sink_item(c, f))
		return true;
	if (c->msg.active)
		return f->type == RFD_FRAME_PAYLOAD && f->stream_id == c->msg.stream_id;
	return f->type == RFD_FRAME_REQUEST_RESPONSE || f->type == RFD_FRAME_REQUEST_FNF ||
	       f->type == RFD_FRAME_REQUEST_STREAM || f->type == RFD_FRAME_REQUEST_CHANNEL;
}

/* FDs that came with the bytes of the frame just read must belong to a request (FD-CARRY-1). */
static int
check_frame_fds(struct serve_conn *c, const struct rfd_frame *f)
{
	size_t n = 0;

	for (size_t i = 0; i < c->w.n_groups; i++)
		if (c->group_frame[i] == c->frame_no)
			n += c->w.groups[i].n;
	if (n == 0 || carries_request(c, f))
		return 0;
	return fail_proto(c,
	                  "FD-CARRY-1: %zu FDs arrived with the bytes of a %s frame on stream %u, "
	                  "which carries no FDs%s",
	                  n, rfd_frame_type_name(f->type), f->stream_id,
	                  f->type == RFD_FRAME_SETUP ? " (FD-SEND-3: a request's FDs travel with "
	                                               "that request's bytes only)"
	                                             : "");
}

/* ---- SETUP ---- */

static int
check_setup_frame(struct serve_conn *c, const struct rfd_frame *f)
{
	if (f->type != RFD_FRAME_SETUP)
		return fail_proto(c,
		                  "SETUP-1: the client's first frame is %s on stream %u, not SETUP",
		                  rfd_frame_type_name(f->type), f->stream_id);
	if (f->version_major != 1 || f->version_minor != 0)
		return fail_proto(c, "SETUP-2: SETUP has version %u.%u, not 1.0", f->version_major,
		                  f->version_minor);
	if (!(f->flags & RFD_FLAG_METADATA))
		return fail_proto(c, "SETUP-2: SETUP lacks the METADATA flag");
	if (f->flags & RFD_FLAG_FOLLOWS)
		return fail_proto(c, "SETUP-2: SETUP has the RESUME_ENABLE flag");
	if (f->flags & RFD_FLAG_COMPLETE)
		return fail_proto(c, "SETUP-2: SETUP has the LEASE flag");
	if (!slice_is(f->metadata_mime, METADATA_MIME))
		return fail_proto(c,
		                  "SETUP-3: the metadata MIME type is \"%.*s\", not " METADATA_MIME,
		                  (int)f->metadata_mime.len, (const char *)f->metadata_mime.ptr);
	if (!slice_is(f->data_mime, DATA_MIME))
		return fail_proto(c, "SETUP-3: the data MIME type is \"%.*s\", not " DATA_MIME,
		                  (int)f->data_mime.len, (const char *)f->data_mime.ptr);
	return 0;
}

/* EXT-1: names separated by single commas, without white space, each once. */
static bool
offer_well_formed(struct rfd_slice offer)
{
	const uint8_t *p = offer.ptr, *end = offer.ptr + offer.len;

	while (p < end) {
		const uint8_t *comma = memchr(p, ',', (size_t)(end - p));
		const uint8_t *stop = comma ? comma : end;
		char name[32];

		if (stop == p || (size_t)(stop - p) >= sizeof(name) || (comma && comma + 1 == end))
			return false;
		for (const uint8_t *q = p; q < stop; q++)
			if (*q == ' ' || *q == '\t')
				return false;
		memcpy(name, p, (size_t)(stop - p));
		name[stop - p] = '\0';
		if (comma && wire_extension_named(
		                 (struct rfd_slice){comma + 1, (size_t)(end - comma - 1)}, name))
			return false;
		p = comma ? comma + 1 : end;
	}
	return offer.len > 0;
}

/* The extensions the SETUP offers: ClientMetadata (9) otherMetadata (3) "rocketfd.fds" (21.8). */
static int
read_offer(struct serve_conn *c, const uint8_t *bytes, size_t len)
{
	struct rfd_slice client = {NULL, 0}, offer;
	struct rfd_cr r;
	struct rfd_cr_field f;
	int ret;

	rfd_cr_init(&r, bytes, len);
	ret = rfd_cr_struct_begin(&r);
	while (ret >= 0 && (ret = rfd_cr_field(&r, &f)) > 0) {
		const uint8_t *start = r.p;

		ret = rfd_cr_skip_field(&r, &f);
		if (ret >= 0 && f.id == SETUP_CLIENT_METADATA && f.type == RFD_CT_STRUCT)
			client = (struct rfd_slice){start, (size_t)(r.p - start)};
	}
	if (!client.ptr ||
	    wire_extension_value(client.ptr, client.len, CLIENT_OTHER_METADATA, &offer) != 1)
		return 0;
	c->has_offer = true;
	snprintf(c->offer, sizeof(c->offer), "%.*s", (int)offer.len, (const char *)offer.ptr);
	conf_note(c->ctx, "the client offers the extensions \"%s\"", c->offer);
	if (!offer_well_formed(offer))
		return fail_proto(c,
		                  "EXT-1: the SETUP offers \"%s\", not names separated by single "
		                  "commas, without white space, each once",
		                  c->offer);
	return 0;
}

static int
check_setup_metadata(struct serve_conn *c, const struct rfd_frame *f, int32_t *version)
{
	struct rfd_setup_metadata md;
	const char *why = "";
	int32_t min, max;

	if (f->metadata.len < 4 || rfd_get_u32(f->metadata.ptr) != PROTOCOL_KEY)
		return fail_proto(c, "SETUP-4: the SETUP metadata does not start with the protocol "
		                     "key f0 9f 9a 80");
	if (rfd_setup_metadata_decode(f->metadata.ptr + 4, f->metadata.len - 4, &md, &why) < 0)
		return fail_proto(c,
		                  "SETUP-4: the bytes after the key are not exactly one Compact "
		                  "RequestSetupMetadata: %s",
		                  why);
	min = md.has_min_version ? md.min_version : 0;
	max = md.has_max_version ? md.max_version : 0;
	if (min > 10 || max < 8)
		return fail_proto(c, "SETUP-5: the version range %d..%d holds none of 8 to 10", min,
		                  max);
	if (md.encode_metadata_using_binary)
		return fail_proto(c, "SETUP-7: SETUP sets encodeMetadataUsingBinary to true");
	if (min > max)
		return fail_proto(c, "SETUP-23: SETUP has minVersion %d above maxVersion %d", min,
		                  max);
	if (read_offer(c, f->metadata.ptr + 4, f->metadata.len - 4) < 0)
		return -EPROTO;
	/* SETUP-6 is a SHOULD: the case client/setup-versions judges it from these. */
	c->setup_min = min;
	c->setup_max = max;
	if (min != 8 || max != 10)
		conf_note(c->ctx, "SETUP-6 (SHOULD): the version range is %d..%d, not 8..10", min,
		          max);
	*version = max < 10 ? max : 10;
	return 0;
}

enum conf_result
serve_read_setup(struct serve_conn *c, int32_t *version)
{
	struct rfd_frame f;
	char suffix[128];
	int r;

	assert(c);
	assert(version);
	r = read_frame(c, &f);
	if (r == 0) {
		exit_suffix(c->ctx, suffix, sizeof(suffix));
		return conf_fail(c->ctx,
		                 "SETUP-1: the client closed the connection without sending "
		                 "SETUP%s",
		                 suffix);
	}
	if (r == -ETIMEDOUT)
		return conf_fail(c->ctx, "SETUP-1: the client connected but sent no whole frame "
		                         "within the case timeout");
	if (r < 0 || check_frame_fds(c, &f) < 0 || check_setup_frame(c, &f) < 0 ||
	    check_setup_metadata(c, &f, version) < 0)
		return CONF_FAIL;
	return CONF_PASS;
}

int
serve_send_setup_response(struct serve_conn *c, int32_t version)
{
	struct rfd_server_push push = {
	    .kind = RFD_PUSH_SETUP_RESPONSE, .has_version = true, .version = version};
	struct rfd_frame frame = {.type = RFD_FRAME_METADATA_PUSH, .has_metadata = true};
	struct rfd_buf metadata;
	int r;

	assert(c);
	rfd_buf_init(&metadata);
	r = rfd_server_push_encode(&push, &metadata);
	frame.metadata = (struct rfd_slice){metadata.data, metadata.len};
	if (r == 0)
		r = wire_send_frame(&c->w, &frame, NULL, 0);
	rfd_buf_free(&metadata);
	return r;
}

enum conf_result
serve_setup(struct serve_conn *c)
{
	enum conf_result result;
	int32_t version;
	int r;

	result = serve_read_setup(c, &version);
	if (result != CONF_PASS)
		return result;
	r = serve_send_setup_response(c, version);
	if (r < 0)
		return conf_fail(c->ctx, "cannot send the setup response: %s", strerror(-r));
	return CONF_PASS;
}

enum conf_result
serve_connect(struct conf_ctx *ctx, long long deadline, struct serve_conn *c)
{
	enum conf_result result = serve_accept(ctx, deadline, c);

	if (result == CONF_PASS)
		result = serve_setup(c);
	if (result != CONF_PASS)
		serve_close(c);
	return result;
}

void
serve_hang_up(struct serve_conn *c)
{
	uint8_t scratch[4096];

	assert(c);
	for (;;) {
		struct rfd_cmsg_result control;
		ssize_t n;

		if (c->w.sock < 0)
			break;
		n = rfd_sock_recv(c->w.sock, scratch, sizeof(scratch), 0, &control, NULL);
		if (n <= 0)
			break;
		for (size_t i = 0; i < control.n_fds; i++)
			close(control.fds[i]);
		if (control.pidfd >= 0)
			close(control.pidfd);
	}
	serve_close(c);
}

/* ---- Requests ---- */

static uint32_t
next_stream_id(uint32_t id)
{
	return id >= STREAM_ID_MAX - 1 ? 1 : id + 2;
}

static int
check_stream_id(struct serve_conn *c, uint32_t id)
{
	uint32_t expected = c->next_stream;

	if (id != expected && !(c->skip_allowed && id == next_stream_id(expected)))
		return fail_proto(c,
		                  "FRAME-12: a request on stream %u, where the client's next "
		                  "stream id is %u",
		                  id, expected);
	c->skip_allowed = false;
	c->next_stream = next_stream_id(id);
	return 0;
}

/* The checksum algorithm RequestRpcMetadata field 25 asks for (0, NONE, when absent). */
static int32_t
checksum_algorithm(const struct rfd_buf *metadata)
{
	struct rfd_cr r;
	struct rfd_cr_field f;
	int32_t algorithm = 0;
	int ret;

	rfd_cr_init(&r, metadata->data, metadata->len);
	ret = rfd_cr_struct_begin(&r);
	while (ret >= 0 && (ret = rfd_cr_field(&r, &f)) > 0) {
		if (f.id != CHECKSUM_FIELD || f.type != RFD_CT_STRUCT) {
			ret = rfd_cr_skip_field(&r, &f);
			continue;
		}
		ret = rfd_cr_struct_begin(&r);
		while (ret >= 0 && (ret = rfd_cr_field(&r, &f)) > 0) {
			if (f.id == 1 && f.type == RFD_CT_I32)
				ret = rfd_cr_i32(&r, &algorithm);
			else
				ret = rfd_cr_skip_field(&r, &f);
		}
	}
	return algorithm;
}

/* The RpcKind of a request frame type (META-4). */
static int32_t
kind_of(uint8_t type)
{
	switch (type) {
	case RFD_FRAME_REQUEST_FNF:
		return RFD_RPC_SINGLE_REQUEST_NO_RESPONSE;
	case RFD_FRAME_REQUEST_STREAM:
		return RFD_RPC_SINGLE_REQUEST_STREAMING_RESPONSE;
	case RFD_FRAME_REQUEST_CHANNEL:
		return KIND_SINK;
	default:
		return RFD_RPC_SINGLE_REQUEST_SINGLE_RESPONSE;
	}
}

static int
check_request_metadata(struct serve_conn *c, const struct rfd_request_metadata *md)
{
	const struct serve_message *m = &c->msg;
	int32_t kind = kind_of(m->type);
	int32_t algorithm;

	if (!md->has_protocol || md->protocol != RFD_PROTOCOL_COMPACT)
		return fail_proto(c,
		                  "META-4: the request on stream %u has protocol %d, not 2 "
		                  "(COMPACT)",
		                  m->stream_id, md->has_protocol ? md->protocol : -1);
	if (!md->has_name || md->name.len == 0)
		return fail_proto(c, "META-4: the request on stream %u has no method name",
		                  m->stream_id);
	if (!md->has_kind || md->kind != kind)
		return fail_proto(c, "META-4: the %s on stream %u has kind %d, not %d",
		                  rfd_frame_type_name(m->type), m->stream_id,
		                  md->has_kind ? md->kind : -1, kind);
	if (md->uses_compression)
		return fail_proto(c, "META-5: the request on stream %u sets compression (field 14)",
		                  m->stream_id);
	if (md->uses_interaction)
		return fail_proto(c,
		                  "META-5: the request on stream %u sets an interaction (field "
		                  "16 or 17)",
		                  m->stream_id);
	algorithm = md->uses_checksum ? checksum_algorithm(&m->metadata) : 0;
	if (algorithm != 0)
		return fail_proto(c,
		                  "META-5: the request on stream %u asks for checksum algorithm "
		                  "%d (field 25)",
		                  m->stream_id, algorithm);
	return 0;
}

/*
 * The claim of 7.5, held to the sender rules: every group still queued came
 * with this request's own frames (check_frame_fds refused the others), so
 * there must be exactly one, of numFds FDs, numbered fdSeqNum.
 */
static int
claim_fds(struct serve_conn *c, const struct rfd_fd_metadata *md, struct serve_request *req)
{
	struct wire *w = &c->w;
	int32_t n = md->present && md->has_num ? md->num_fds : 0;
	size_t arrived = 0;

	for (size_t i = 0; i < w->n_groups; i++)
		arrived += w->groups[i].n;
	if (n == 0 && arrived == 0)
		return 0;
	if (n == 0)
		return fail_proto(c,
		                  "FD-SEND-8: %zu FDs arrived with the request on stream %u, whose "
		                  "metadata announces none",
		                  arrived, req->stream_id);
	if (n < 0 || n > FDT_MAX_FDS)
		return fail_proto(c,
		                  "FD-SEND-8, LIMIT-1: the request on stream %u has numFds %d, "
		                  "outside 1..253",
		                  req->stream_id, n);
	if (!md->has_seq || md->fd_seq < 0)
		return fail_proto(c,
		                  "META-9: the request on stream %u has numFds %d without a valid "
		                  "fdSeqNum",
		                  req->stream_id, n);
	if (w->n_groups == 0)
		return fail_proto(c,
		                  "FD-SEND-10, FD-SEND-4: the request on stream %u announces %d "
		                  "FDs, but none arrived with its bytes up to its last one",
		                  req->stream_id, n);
	if (w->n_groups > 1)
		return fail_proto(c,
		                  "FD-SEND-1, FD-SEND-6: the FDs of the request on stream %u "
		                  "arrived in %zu sendmsg calls (%zu, then %zu FDs)",
		                  req->stream_id, w->n_groups, w->groups[0].n, w->groups[1].n);
	if ((int32_t)w->groups[0].n != n)
		return fail_proto(c,
		                  "FD-SEND-8: the request on stream %u has numFds %d, but %zu FDs "
		                  "arrived with it",
		                  req->stream_id, n, w->groups[0].n);
	if (md->fd_seq != w->groups[0].seq)
		return fail_proto(c,
		                  "FD-SEND-9: the request on stream %u has fdSeqNum %lld, but the "
		                  "client had sent %lld FDs before",
		                  req->stream_id, (long long)md->fd_seq,
		                  (long long)w->groups[0].seq);
	wire_take_group(w, &req->fds);
	return 0;
}

/* Argument field 1 of any length (the echo-large tag is 17 MiB): a NUL-terminated copy. */
static int
decode_text_args(const struct rfd_buf *data, struct serve_request *req, const char **why)
{
	struct rfd_slice text = {NULL, 0};
	struct rfd_cr r;
	struct rfd_cr_field f;
	int ret;

	rfd_cr_init(&r, data->data, data->len);
	ret = rfd_cr_struct_begin(&r);
	while (ret >= 0 && (ret = rfd_cr_field(&r, &f)) > 0) {
		if (f.id == 1 && f.type == RFD_CT_BINARY)
			ret = rfd_cr_binary(&r, &text);
		else if (f.id == 1)
			ret = rfd_cr_fail(&r, "field 1 is not a string");
		else
			ret = rfd_cr_skip_field(&r, &f);
	}
	if (ret == 0)
		ret = rfd_cr_finish(&r);
	if (ret < 0) {
		*why = rfd_cr_error(&r);
		return ret;
	}
	req->tag = malloc(text.len + 1);
	if (!req->tag) {
		*why = "out of memory";
		return -ENOMEM;
	}
	if (text.len)
		memcpy(req->tag, text.ptr, text.len);
	req->tag[text.len] = '\0';
	req->tag_len = text.len;
	return 0;
}

static bool
takes_text(const char *method)
{
	return strcmp(method, FDT_METHOD_INSPECT) == 0 || strcmp(method, FDT_METHOD_ECHO) == 0 ||
	       strcmp(method, FDT_METHOD_RECORD) == 0 || strcmp(method, FDT_METHOD_OPEN) == 0 ||
	       strcmp(method, METHOD_SINK_FDS) == 0;
}

/* streamFds's {1: i32 count, 2: i32 fdsPerItem}; absent fields are 0. */
static int
decode_stream_args(const struct rfd_buf *data, struct serve_request *req, const char **why)
{
	struct rfd_cr r;
	struct rfd_cr_field f;
	int ret;

	rfd_cr_init(&r, data->data, data->len);
	ret = rfd_cr_struct_begin(&r);
	while (ret >= 0 && (ret = rfd_cr_field(&r, &f)) > 0) {
		if ((f.id == 1 || f.id == 2) && f.type != RFD_CT_I32)
			ret = rfd_cr_fail(&r, "an argument is not an i32");
		else if (f.id == 1)
			ret = rfd_cr_i32(&r, &req->count);
		else if (f.id == 2)
			ret = rfd_cr_i32(&r, &req->per_item);
		else
			ret = rfd_cr_skip_field(&r, &f);
	}
	if (ret == 0)
		ret = rfd_cr_finish(&r);
	if (ret < 0)
		*why = rfd_cr_error(&r);
	return ret;
}

static int
decode_args(struct serve_conn *c, struct serve_request *req)
{
	const struct rfd_buf *data = &c->msg.data;
	const char *why = "";

	if (strcmp(req->method, FDT_METHOD_LAST) == 0) {
		if (fdt_decode_empty_args(data->data, data->len, &why) < 0)
			return fail_proto(c,
			                  "META-10: the arguments of lastRecorded on stream %u are "
			                  "not one Compact struct: %s",
			                  req->stream_id, why);
		return 0;
	}
	if (strcmp(req->method, METHOD_STREAM_FDS) == 0) {
		if (decode_stream_args(data, req, &why) < 0)
			return fail_proto(
			    c,
			    "META-10: the arguments of streamFds on stream %u are not "
			    "the Compact struct {1: i32, 2: i32}: %s",
			    req->stream_id, why);
		return 0;
	}
	if (!takes_text(req->method))
		return fail_proto(c,
		                  "the client called \"%s\" on stream %u, which FdTest does not "
		                  "have",
		                  req->method, req->stream_id);
	if (decode_text_args(data, req, &why) < 0)
		return fail_proto(c,
		                  "META-10: the arguments of %s on stream %u are not the Compact "
		                  "struct {1: string}: %s",
		                  req->method, req->stream_id, why);
	return 0;
}

/* A stream or sink request: STREAM-1 or SINK-2, then tracked until it ends. */
static int
open_stream(struct serve_conn *c, const struct serve_request *req, uint16_t flags)
{
	bool sink = req->type == RFD_FRAME_REQUEST_CHANNEL;
	struct serve_stream *st;

	if (!sink && req->initial_n < 1)
		return fail_proto(
		    c,
		    "STREAM-1: the REQUEST_STREAM on stream %u has initial request N 0; "
		    "it needs one credit for the first response",
		    req->stream_id);
	if (sink && (req->initial_n != 2 || (flags & RFD_FLAG_COMPLETE)))
		return fail_proto(
		    c,
		    "SINK-2: the REQUEST_CHANNEL on stream %u has initial request N %u%s; "
		    "a sink request has 2 and no COMPLETE",
		    req->stream_id, req->initial_n,
		    flags & RFD_FLAG_COMPLETE ? " and COMPLETE" : "");
	if (c->n_streams == SERVE_MAX_STREAMS)
		return fail_proto(c,
		                  "the client opened more than %d streams and sinks on one "
		                  "connection, more than a scenario asks for",
		                  SERVE_MAX_STREAMS);
	st = &c->streams[c->n_streams++];
	memset(st, 0, sizeof(*st));
	st->id = req->stream_id;
	st->sink = sink;
	st->granted = sink ? 0 : req->initial_n - 1;
	return 0;
}

static int
finish_request(struct serve_conn *c, struct serve_request *req)
{
	struct serve_message *m = &c->msg;
	struct rfd_request_metadata md;
	const char *why = "";
	int r;

	m->active = false;
	req->stream_id = m->stream_id;
	req->type = m->type;
	req->n_frames = m->n_frames;
	req->initial_n = m->initial_n;
	if (!m->has_metadata)
		return fail_proto(c, "META-4: the request on stream %u has no metadata",
		                  m->stream_id);
	if (rfd_request_metadata_decode(m->metadata.data, m->metadata.len, &md, &why) < 0)
		return fail_proto(c,
		                  "META-1: the RequestRpcMetadata on stream %u is not one Compact "
		                  "struct: %s",
		                  m->stream_id, why);
	req->claim = md.fd;
	req->client_timeout_ms = md.has_client_timeout ? md.client_timeout_ms : 0;
	r = check_request_metadata(c, &md);
	if (r < 0)
		return r;
	snprintf(req->method, sizeof(req->method), "%.*s", (int)md.name.len,
	         (const char *)md.name.ptr);
	if (md.name.len >= sizeof(req->method))
		return fail_proto(c,
		                  "the client called a method named \"%.*s...\", which FdTest "
		                  "does not have",
		                  (int)sizeof(req->method) - 1, req->method);
	r = claim_fds(c, &md.fd, req);
	if (r == 0)
		r = decode_args(c, req);
	if (r == 0 && (m->type == RFD_FRAME_REQUEST_STREAM || m->type == RFD_FRAME_REQUEST_CHANNEL))
		r = open_stream(c, req, m->flags);
	return r < 0 ? r : 1;
}

/* Append one frame's slices; 1 when the request is complete. */
static int
add_fragment(struct serve_conn *c, const struct rfd_frame *f, struct serve_request *req)
{
	struct serve_message *m = &c->msg;

	if (f->metadata.len > 0 && m->data.len > 0)
		return fail_proto(c,
		                  "FRAME-8: fragment %zu of the request on stream %u carries "
		                  "metadata after data",
		                  m->n_frames + 1, m->stream_id);
	if (m->metadata.len + m->data.len + f->metadata.len + f->data.len > MAX_MESSAGE)
		return fail_proto(c, "the request on stream %u grows beyond %d MiB", m->stream_id,
		                  MAX_MESSAGE >> 20);
	if (rfd_buf_append(&m->metadata, f->metadata.ptr, f->metadata.len) < 0 ||
	    rfd_buf_append(&m->data, f->data.ptr, f->data.len) < 0)
		return fail_proto(c, "the harness is out of memory");
	m->has_metadata = m->has_metadata || f->metadata.len > 0;
	m->n_frames++;
	if (f->flags & RFD_FLAG_FOLLOWS)
		return 0;
	return finish_request(c, req);
}

static int
start_message(struct serve_conn *c, const struct rfd_frame *f, struct serve_request *req)
{
	struct serve_message *m = &c->msg;
	int r;

	if (c->forbid_requests)
		return fail_proto(c, "%s (a %s frame on stream %u arrived)", c->forbid_requests,
		                  rfd_frame_type_name(f->type), f->stream_id);
	r = check_stream_id(c, f->stream_id);
	if (r < 0)
		return r;
	m->active = true;
	m->stream_id = f->stream_id;
	m->type = f->type;
	m->initial_n = f->u32;
	m->flags = f->flags;
	m->n_frames = 0;
	m->has_metadata = false;
	m->metadata.len = 0;
	m->data.len = 0;
	return add_fragment(c, f, req);
}

static int
continue_message(struct serve_conn *c, const struct rfd_frame *f, struct serve_request *req)
{
	const struct serve_message *m = &c->msg;

	if (f->stream_id != m->stream_id)
		return fail_proto(c,
		                  "FRAME-9: a %s frame on stream %u came between two fragments "
		                  "of the request on stream %u",
		                  rfd_frame_type_name(f->type), f->stream_id, m->stream_id);
	if (f->type != RFD_FRAME_PAYLOAD)
		return fail_proto(c,
		                  "FRAME-8: a %s frame continues the fragmented request on "
		                  "stream %u; continuations are PAYLOAD frames",
		                  rfd_frame_type_name(f->type), m->stream_id);
	if (!(f->flags & RFD_FLAG_NEXT))
		return fail_proto(c, "FRAME-8: fragment %zu of the request on stream %u lacks NEXT",
		                  m->n_frames + 1, m->stream_id);
	return add_fragment(c, f, req);
}

/* Every KEEPALIVE of the client: position 0 (FRAME-27); answered when it asks (FRAME-15). */
static int
answer_keepalive(struct serve_conn *c, const struct rfd_frame *f)
{
	struct rfd_frame reply = {.type = RFD_FRAME_KEEPALIVE, .data = f->data};
	size_t kept =
	    f->data.len < sizeof(c->keepalive_data) ? f->data.len : sizeof(c->keepalive_data);
	int r;

	if (f->last_position != 0)
		return fail_proto(c,
		                  "FRAME-27: the client sent a KEEPALIVE whose last received "
		                  "position is %llu, not 0",
		                  (unsigned long long)f->last_position);
	if (!(f->flags & RFD_FLAG_FOLLOWS)) {
		c->n_keepalive_answers++;
		c->keepalive_len = f->data.len;
		if (kept)
			memcpy(c->keepalive_data, f->data.ptr, kept);
		return 0;
	}
	r = wire_send_frame(&c->w, &reply, NULL, 0);
	if (r < 0)
		return fail_proto(c, "cannot answer the client's KEEPALIVE: %s", strerror(-r));
	return 0;
}

static void
note_peer_error(struct serve_conn *c, const struct rfd_frame *f)
{
	size_t len = f->data.len < sizeof(c->peer_error_text) - 1 ? f->data.len
	                                                          : sizeof(c->peer_error_text) - 1;

	conf_note(c->ctx, "the client sent ERROR 0x%x on stream %u: %.*s", f->u32, f->stream_id,
	          (int)len, (const char *)f->data.ptr);
	if (f->stream_id != 0)
		return;
	c->peer_error = f->u32;
	memcpy(c->peer_error_text, f->data.ptr, len);
	c->peer_error_text[len] = '\0';
}

/* ---- Streams and sinks: what the client sends on them (section 21) ---- */

/* REQUEST_N on a stream the client opened: its credit (STREAM-8). */
static int
on_request_n(struct serve_conn *c, const struct rfd_frame *f)
{
	struct serve_stream *st = serve_stream_find(c, f->stream_id);

	if (st->sink)
		return fail_proto(c,
		                  "SINK-8: the client sent REQUEST_N on sink %u; a client never "
		                  "sends REQUEST_N on a sink",
		                  st->id);
	/* After its own CANCEL a client sends none, whether or not the end crossed it. */
	if (st->cancelled)
		return fail_proto(
		    c, "STREAM-8: the client sent REQUEST_N on stream %u after its CANCEL", st->id);
	if (st->completed) {
		conf_note(c->ctx, "REQUEST_N %u on stream %u after its end (crossed it)", f->u32,
		          st->id);
		return 0;
	}
	if (!st->first_sent)
		return fail_proto(
		    c,
		    "STREAM-8: the client sent REQUEST_N on stream %u before its first "
		    "response",
		    st->id);
	if (f->u32 == 0)
		return fail_proto(c, "STREAM-8: the client sent REQUEST_N 0 on stream %u", st->id);
	st->granted += f->u32;
	st->n_request_n++;
	conf_note(c->ctx, "the client grants %u more items on stream %u", f->u32, st->id);
	return 0;
}

static int
on_stream_cancel(struct serve_conn *c, const struct rfd_frame *f)
{
	struct serve_stream *st = serve_stream_find(c, f->stream_id);

	if (!st)
		return 0;
	if (st->sink)
		return fail_proto(c,
		                  "SINK-8: the client sent CANCEL on sink %u; it ends a sink with "
		                  "ERROR 0x203",
		                  st->id);
	st->cancelled = true;
	return 0;
}

/* The client's ERROR on a sink ends it: it must be 0x203 CANCELED (SINK-8). */
static int
on_stream_error(struct serve_conn *c, const struct rfd_frame *f)
{
	struct serve_stream *st = serve_stream_find(c, f->stream_id);

	if (!st->sink) {
		note_peer_error(c, f);
		return 0;
	}
	st->cancelled = true;
	st->cancel_code = f->u32;
	conf_note(c->ctx, "the client ended sink %u with ERROR 0x%x", st->id, f->u32);
	if (f->u32 != RFD_ERROR_CANCELED)
		return fail_proto(c, "SINK-8: the client ended sink %u with ERROR 0x%x, not 0x203",
		                  st->id, f->u32);
	return 0;
}

/* The client's completion of a sink: COMPLETE|METADATA, metadata `00`, no data (SINK-6). */
static int
on_sink_completion(struct serve_conn *c, struct serve_stream *st, const struct rfd_frame *f)
{
	struct serve_sink_event *ev;

	if (f->flags != (RFD_FLAG_COMPLETE | RFD_FLAG_METADATA) || f->metadata.len != 1 ||
	    f->metadata.ptr[0] != 0 || f->data.len != 0)
		return fail_proto(
		    c,
		    "SINK-6: the client's completion of sink %u has flags 0x%03x, %zu "
		    "metadata and %zu data bytes, not COMPLETE|METADATA with the "
		    "metadata 00 and no data",
		    st->id, f->flags, f->metadata.len, f->data.len);
	st->completed = true;
	ev = &c->sink_events[c->n_sink_events++];
	memset(ev, 0, sizeof(*ev));
	ev->stream_id = st->id;
	ev->complete = true;
	return 0;
}

/* {0: string}: a sink item's tag, cut to fit @size. */
static int
decode_item_tag(const struct rfd_frame *f, char *tag, size_t size, const char **why)
{
	struct rfd_slice text = {NULL, 0};
	struct rfd_cr r;
	struct rfd_cr_field field;
	int ret;

	rfd_cr_init(&r, f->data.ptr, f->data.len);
	ret = rfd_cr_struct_begin(&r);
	while (ret >= 0 && (ret = rfd_cr_field(&r, &field)) > 0) {
		if (field.id == 0 && field.type == RFD_CT_BINARY)
			ret = rfd_cr_binary(&r, &text);
		else
			ret = rfd_cr_skip_field(&r, &field);
	}
	if (ret == 0)
		ret = rfd_cr_finish(&r);
	if (ret < 0 || !text.ptr) {
		*why = ret < 0 ? rfd_cr_error(&r) : "it has no field 0";
		return -EBADMSG;
	}
	snprintf(tag, size, "%.*s", (int)text.len, (const char *)text.ptr);
	return 0;
}

/* A sink item: within credit, its metadata and data (SINK-5), FDs only if agreed (EXT-6). */
static int
on_sink_item(struct serve_conn *c, struct serve_stream *st, const struct rfd_frame *f)
{
	struct rfd_response_metadata md;
	struct serve_request item = {.stream_id = st->id};
	struct serve_sink_event *ev;
	const char *why = "";
	int r;

	if (f->flags != (RFD_FLAG_NEXT | RFD_FLAG_METADATA))
		return fail_proto(c,
		                  "SINK-5: an item of sink %u has flags 0x%03x, not NEXT|METADATA "
		                  "(0x120)%s",
		                  st->id, f->flags,
		                  f->flags & RFD_FLAG_FOLLOWS ? "; a scenario's items fit one frame"
		                                              : "");
	if (st->used >= st->granted)
		return fail_proto(
		    c,
		    "SINK-5: the client sent item %llu of sink %u with credit for %llu "
		    "items",
		    (unsigned long long)st->used + 1, st->id, (unsigned long long)st->granted);
	if (rfd_stream_payload_metadata_decode(f->metadata.ptr, f->metadata.len, &md, &why) < 0)
		return fail_proto(
		    c,
		    "SINK-5: the StreamPayloadMetadata of an item of sink %u does not "
		    "decode: %s",
		    st->id, why);
	if (md.payload_kind != RFD_PAYLOAD_RESPONSE)
		return fail_proto(c,
		                  "SINK-5: an item of sink %u has no payloadMetadata = "
		                  "responseMetadata",
		                  st->id);
	if (md.fd.has_num && md.fd.num_fds > 0 && !st->accepted_sink)
		return fail_proto(
		    c,
		    "EXT-6: an item of sink %u carries %d FDs, but the harness did not "
		    "accept the extension sink",
		    st->id, md.fd.num_fds);
	r = claim_fds(c, &md.fd, &item);
	if (r < 0)
		return r;
	ev = &c->sink_events[c->n_sink_events++];
	memset(ev, 0, sizeof(*ev));
	ev->stream_id = st->id;
	ev->fds = item.fds;
	st->used++;
	if (decode_item_tag(f, ev->tag, sizeof(ev->tag), &why) < 0)
		return fail_proto(c, "META-10: an item of sink %u is not {0: string}: %s", st->id,
		                  why);
	return 0;
}

/* A PAYLOAD from the client on a stream or sink it opened. */
static int
on_sink_payload(struct serve_conn *c, const struct rfd_frame *f)
{
	struct serve_stream *st = serve_stream_find(c, f->stream_id);

	if (!st->sink)
		return fail_proto(c,
		                  "the client sent a PAYLOAD on stream %u, a stream it requested: "
		                  "only the server sends items on a stream",
		                  st->id);
	if (st->completed || st->cancelled)
		return fail_proto(c, "SINK-6: the client sent a PAYLOAD on sink %u after its %s",
		                  st->id, st->completed ? "completion" : "ERROR");
	if (!st->first_sent)
		return fail_proto(c,
		                  "SINK-5: the client sent a PAYLOAD on sink %u before its first "
		                  "response",
		                  st->id);
	if (c->n_sink_events == SERVE_MAX_SINK_EVENTS)
		return fail_proto(c, "more than %d sink items wait for the scenario to take them",
		                  SERVE_MAX_SINK_EVENTS);
	if (!(f->flags & RFD_FLAG_NEXT))
		return on_sink_completion(c, st, f);
	return on_sink_item(c, st, f);
}

/* Process one frame: 1 when it completed a request, 0 to read on, <0 on failure. */
static int
on_frame(struct serve_conn *c, const struct rfd_frame *f, struct serve_request *req)
{
	if (c->msg.active)
		return continue_message(c, f, req);
	switch (f->type) {
	case RFD_FRAME_REQUEST_RESPONSE:
	case RFD_FRAME_REQUEST_FNF:
	case RFD_FRAME_REQUEST_STREAM:
	case RFD_FRAME_REQUEST_CHANNEL:
		return start_message(c, f, req);
	case RFD_FRAME_KEEPALIVE:
		return answer_keepalive(c, f);
	case RFD_FRAME_ERROR:
		if (serve_stream_find(c, f->stream_id))
			return on_stream_error(c, f);
		note_peer_error(c, f);
		return 0;
	case RFD_FRAME_CANCEL:
		if (c->n_cancels++ == 0)
			c->cancel_stream = f->stream_id;
		conf_note(c->ctx, "the client sent CANCEL on stream %u", f->stream_id);
		return on_stream_cancel(c, f);
	case RFD_FRAME_REQUEST_N:
		if (serve_stream_find(c, f->stream_id))
			return on_request_n(c, f);
		/* fall through */
	case RFD_FRAME_METADATA_PUSH:
		conf_note(c->ctx, "the client sent %s on stream %u (ignored)",
		          rfd_frame_type_name(f->type), f->stream_id);
		return 0;
	case RFD_FRAME_EXT:
		if (f->flags & RFD_FLAG_IGNORE)
			return 0;
		return fail_proto(c, "the client sent an EXT frame without IGNORE, which fails the "
		                     "connection at a conforming server (FRAME-17)");
	case RFD_FRAME_SETUP:
		return fail_proto(c, "the client sent a second SETUP frame on the connection");
	case RFD_FRAME_PAYLOAD:
		if (serve_stream_find(c, f->stream_id))
			return on_sink_payload(c, f);
		return fail_proto(c,
		                  "the client sent a PAYLOAD on stream %u that continues no "
		                  "request (section 4.5)",
		                  f->stream_id);
	default:
		return fail_proto(c, "the client sent %s on stream %u, which no FdTest call uses",
		                  rfd_frame_type_name(f->type), f->stream_id);
	}
}

int
serve_next_request(struct serve_conn *c, struct serve_request *req)
{
	struct rfd_frame f;
	int r;

	assert(c);
	assert(req);
	memset(req, 0, sizeof(*req));
	if (c->held) {
		*req = *c->held;
		free(c->held);
		c->held = NULL;
		return 1;
	}
	for (;;) {
		r = read_frame(c, &f);
		if (r <= 0)
			break;
		r = check_frame_fds(c, &f);
		if (r == 0)
			r = on_frame(c, &f, req);
		if (r != 0)
			break;
	}
	if (r == 0 && c->msg.active)
		r = fail_proto(c,
		               "the client closed the connection in the middle of the fragmented "
		               "request on stream %u",
		               c->msg.stream_id);
	if (r <= 0)
		serve_request_free(req);
	return r;
}

void
serve_request_free(struct serve_request *req)
{
	assert(req);
	for (size_t i = 0; i < req->fds.n; i++)
		if (req->fds.fds[i] >= 0)
			close(req->fds.fds[i]);
	req->fds.n = 0;
	free(req->tag);
	req->tag = NULL;
	req->tag_len = 0;
}

/* `echo("after") with 1 FD`, a long tag cut short; `echo(...)` for any tag. */
static void
describe_call(char *buf, size_t size, const char *method, const char *tag, size_t tag_len,
              size_t n_fds)
{
	const char *plural = n_fds == 1 ? "" : "s";

	if (!tag && strcmp(method, FDT_METHOD_LAST) == 0)
		snprintf(buf, size, "%s() with %zu FD%s", method, n_fds, plural);
	else if (!tag)
		snprintf(buf, size, "%s(...) with %zu FD%s", method, n_fds, plural);
	else if (tag_len > 40)
		snprintf(buf, size, "%s(\"%.24s...\", %zu bytes) with %zu FD%s", method, tag,
		         tag_len, n_fds, plural);
	else
		snprintf(buf, size, "%s(\"%s\") with %zu FD%s", method, tag, n_fds, plural);
}

static bool
request_is(const struct serve_request *req, const char *method, const char *tag, size_t n_fds)
{
	if (strcmp(req->method, method) != 0 || req->fds.n != n_fds)
		return false;
	if (!tag)
		return true;
	return req->tag && req->tag_len == strlen(tag) && memcmp(req->tag, tag, req->tag_len) == 0;
}

enum conf_result
serve_missing(struct serve_conn *c, int r, const char *awaited)
{
	char suffix[128];

	assert(c);
	assert(awaited);
	if (r == -ETIMEDOUT)
		return conf_fail(c->ctx, "no %s arrived within the case timeout (CONTRACT-12)",
		                 awaited);
	if (r == 0) {
		exit_suffix(c->ctx, suffix, sizeof(suffix));
		return conf_fail(c->ctx, "the client closed the connection instead of sending %s%s",
		                 awaited, suffix);
	}
	return CONF_FAIL;
}

enum conf_result
serve_check_request(struct serve_conn *c, struct serve_request *req, const char *method,
                    const char *tag, size_t n_fds)
{
	uint8_t type = strcmp(method, FDT_METHOD_RECORD) == 0 ? RFD_FRAME_REQUEST_FNF
	                                                      : RFD_FRAME_REQUEST_RESPONSE;
	char wanted[160], got[160];

	if (strcmp(method, METHOD_STREAM_FDS) == 0)
		type = RFD_FRAME_REQUEST_STREAM;
	else if (strcmp(method, METHOD_SINK_FDS) == 0)
		type = RFD_FRAME_REQUEST_CHANNEL;

	assert(c);
	assert(req);
	describe_call(wanted, sizeof(wanted), method, tag, tag ? strlen(tag) : 0, n_fds);
	describe_call(got, sizeof(got), req->method, req->tag, req->tag_len, req->fds.n);
	if (!request_is(req, method, tag, n_fds)) {
		serve_request_free(req);
		return conf_fail(c->ctx, "expected %s, the client sent %s on stream %u", wanted,
		                 got, req->stream_id);
	}
	if (req->type != type) {
		serve_request_free(req);
		return conf_fail(c->ctx, "%s arrived as %s; FdTest sends it as %s (section 17.1)",
		                 got, rfd_frame_type_name(req->type), rfd_frame_type_name(type));
	}
	return CONF_PASS;
}

enum conf_result
serve_expect(struct serve_conn *c, struct serve_request *req, const char *method, const char *tag,
             size_t n_fds)
{
	char wanted[160];
	int r;

	assert(c);
	assert(req);
	r = serve_next_request(c, req);
	if (r == 1)
		return serve_check_request(c, req, method, tag, n_fds);
	describe_call(wanted, sizeof(wanted), method, tag, tag ? strlen(tag) : 0, n_fds);
	return serve_missing(c, r, wanted);
}

enum conf_result
serve_expect_probe(struct serve_conn *c, struct serve_request *req)
{
	return serve_expect(c, req, FDT_METHOD_ECHO, "probe", 0);
}

/* ---- Answers ---- */

static enum conf_result
send_bytes(struct serve_conn *c, const struct rfd_buf *bytes, const int *fds, size_t n_fds,
           const char *what)
{
	char suffix[128];
	int r = wire_send(&c->w, bytes->data, bytes->len, fds, n_fds);

	if (r == 0)
		return CONF_PASS;
	if (r == -EPIPE || r == -ECONNRESET) {
		exit_suffix(c->ctx, suffix, sizeof(suffix));
		return conf_fail(c->ctx,
		                 "the client closed the connection before the harness could "
		                 "send %s%s",
		                 what, suffix);
	}
	return conf_fail(c->ctx, "cannot send %s: %s", what, strerror(-r));
}

/* A PAYLOAD with NEXT and COMPLETE, fragmented as 4.5 when it does not fit one frame. */
static enum conf_result
send_payload(struct serve_conn *c, uint32_t stream, const struct rfd_response_metadata *md,
             const uint8_t *data, size_t len, const int *fds, size_t n_fds)
{
	struct rfd_frame frame = {
	    .stream_id = stream,
	    .type = RFD_FRAME_PAYLOAD,
	    .flags = RFD_FLAG_NEXT | RFD_FLAG_COMPLETE,
	    .has_metadata = true,
	    .data = {data, len},
	};
	struct rfd_buf metadata, bytes;
	enum conf_result result;
	char what[64];
	int r;

	rfd_buf_init(&metadata);
	rfd_buf_init(&bytes);
	r = rfd_response_metadata_encode(md, &metadata);
	frame.metadata = (struct rfd_slice){metadata.data, metadata.len};
	if (r == 0)
		r = rfd_frame_encode_fragmented(&frame, RFD_FRAGMENT_DEFAULT, &bytes);
	snprintf(what, sizeof(what), "the answer on stream %u", stream);
	result = r == 0 ? send_bytes(c, &bytes, fds, n_fds, what)
	                : conf_fail(c->ctx, "cannot encode %s: %s", what, strerror(-r));
	rfd_buf_free(&metadata);
	rfd_buf_free(&bytes);
	return result;
}

enum conf_result
serve_reply(struct serve_conn *c, uint32_t stream, const uint8_t *result, size_t len,
            const int *fds, size_t n_fds, const struct rfd_fd_metadata *claim)
{
	struct rfd_response_metadata md = {.payload_kind = RFD_PAYLOAD_RESPONSE};

	assert(c);
	md.fd = claim ? *claim : wire_claim(&c->w, (int32_t)n_fds);
	return send_payload(c, stream, &md, result, len, fds, n_fds);
}

enum conf_result
serve_reply_string(struct serve_conn *c, uint32_t stream, const char *text, size_t len,
                   const int *fds, size_t n_fds, const struct rfd_fd_metadata *claim)
{
	struct rfd_buf result;
	struct rfd_cw w;
	enum conf_result verdict;

	rfd_buf_init(&result);
	rfd_cw_init(&w, &result);
	rfd_cw_struct_begin(&w);
	rfd_cw_field(&w, RFD_CT_BINARY, 0);
	rfd_cw_binary(&w, text, len);
	rfd_cw_struct_end(&w);
	if (rfd_cw_finish(&w) < 0)
		verdict = conf_fail(c->ctx, "cannot encode a result of %zu bytes", len);
	else
		verdict = serve_reply(c, stream, result.data, result.len, fds, n_fds, claim);
	rfd_buf_free(&result);
	return verdict;
}

enum conf_result
serve_reply_fdtest_error(struct serve_conn *c, uint32_t stream, const char *message, int32_t errnum)
{
	struct rfd_response_metadata md = {
	    .payload_kind = RFD_PAYLOAD_DECLARED_EXCEPTION,
	    .has_ex_name = true,
	    .ex_name = {(const uint8_t *)FDT_ERROR_NAME, strlen(FDT_ERROR_NAME)},
	    .has_ex_what = true,
	    .ex_what = {(const uint8_t *)message, strlen(message)},
	};
	struct fdt_bytes result = {0};
	enum conf_result verdict;

	assert(c);
	if (fdt_encode_error_result(message, errnum, &result) < 0)
		return conf_fail(c->ctx, "cannot encode FdTestError");
	verdict = send_payload(c, stream, &md, result.data, result.len, NULL, 0);
	fdt_bytes_free(&result);
	return verdict;
}

static enum conf_result
send_error_frame(struct serve_conn *c, uint32_t stream, uint32_t code, const struct rfd_buf *data)
{
	struct rfd_frame frame = {
	    .stream_id = stream,
	    .type = RFD_FRAME_ERROR,
	    .u32 = code,
	    .data = {data->data, data->len},
	};
	struct rfd_buf bytes;
	enum conf_result result;
	char what[64];

	snprintf(what, sizeof(what), "ERROR 0x%x on stream %u", code, stream);
	rfd_buf_init(&bytes);
	result = rfd_frame_encode(&frame, &bytes) == 0
	             ? send_bytes(c, &bytes, NULL, 0, what)
	             : conf_fail(c->ctx, "cannot encode %s", what);
	rfd_buf_free(&bytes);
	return result;
}

enum conf_result
serve_reply_invalid(struct serve_conn *c, uint32_t stream, const char *what)
{
	struct rfd_response_error error = {
	    .has_what = true,
	    .what = {(const uint8_t *)what, strlen(what)},
	    .has_category = true,
	    .category = RFD_ERROR_CATEGORY_INVALID_REQUEST,
	    .has_code = true,
	    .code = RFD_ERROR_CODE_REQUEST_PARSING_FAILURE,
	};
	struct rfd_buf data;
	enum conf_result result;

	assert(c);
	rfd_buf_init(&data);
	if (rfd_response_error_encode(&error, &data) < 0)
		result = conf_fail(c->ctx, "cannot encode ResponseRpcError");
	else
		result = send_error_frame(c, stream, RFD_ERROR_INVALID, &data);
	rfd_buf_free(&data);
	return result;
}

enum conf_result
serve_send_connection_error(struct serve_conn *c, uint32_t code, const char *text)
{
	struct rfd_buf data;
	enum conf_result result;

	assert(c);
	rfd_buf_init(&data);
	if (rfd_buf_append(&data, text, strlen(text)) < 0)
		result = conf_fail(c->ctx, "out of memory");
	else
		result = send_error_frame(c, 0, code, &data);
	rfd_buf_free(&data);
	return result;
}

enum conf_result
serve_send_keepalive(struct serve_conn *c, const int *fds, size_t n_fds)
{
	struct rfd_frame frame = {.type = RFD_FRAME_KEEPALIVE};
	struct rfd_buf bytes;
	enum conf_result result;

	assert(c);
	rfd_buf_init(&bytes);
	result = rfd_frame_encode(&frame, &bytes) == 0
	             ? send_bytes(c, &bytes, fds, n_fds, "a KEEPALIVE")
	             : conf_fail(c->ctx, "cannot encode KEEPALIVE");
	rfd_buf_free(&bytes);
	return result;
}

enum conf_result
serve_send_frame(struct serve_conn *c, const struct rfd_frame *frame, const int *fds, size_t n_fds,
                 const char *what)
{
	struct rfd_buf bytes;
	enum conf_result result;

	assert(c);
	assert(frame);
	rfd_buf_init(&bytes);
	result = rfd_frame_encode(frame, &bytes) == 0 ? send_bytes(c, &bytes, fds, n_fds, what)
	                                              : conf_fail(c->ctx, "cannot encode %s", what);
	rfd_buf_free(&bytes);
	return result;
}

enum conf_result
serve_reply_raw_metadata(struct serve_conn *c, uint32_t stream, const uint8_t *metadata,
                         size_t metadata_len, const char *text, const int *fds, size_t n_fds)
{
	struct rfd_frame frame = {
	    .stream_id = stream,
	    .type = RFD_FRAME_PAYLOAD,
	    .flags = RFD_FLAG_NEXT | RFD_FLAG_COMPLETE,
	    .has_metadata = true,
	    .metadata = {metadata, metadata_len},
	};
	struct rfd_buf result;
	struct rfd_cw w;
	enum conf_result verdict;
	char what[64];

	assert(c);
	assert(text);
	rfd_buf_init(&result);
	rfd_cw_init(&w, &result);
	rfd_cw_struct_begin(&w);
	rfd_cw_field(&w, RFD_CT_BINARY, 0);
	rfd_cw_binary(&w, text, strlen(text));
	rfd_cw_struct_end(&w);
	snprintf(what, sizeof(what), "the answer on stream %u", stream);
	if (rfd_cw_finish(&w) < 0) {
		verdict = conf_fail(c->ctx, "cannot encode the result \"%s\"", text);
	} else {
		frame.data = (struct rfd_slice){result.data, result.len};
		verdict = serve_send_frame(c, &frame, fds, n_fds, what);
	}
	rfd_buf_free(&result);
	return verdict;
}

enum conf_result
serve_expect_keepalive_answer(struct serve_conn *c, const uint8_t *data, size_t len)
{
	struct serve_request req;
	size_t before;
	struct rfd_frame f;
	int r;

	assert(c);
	before = c->n_keepalive_answers;
	memset(&req, 0, sizeof(req));
	for (;;) {
		r = read_frame(c, &f);
		if (r <= 0)
			break;
		r = check_frame_fds(c, &f);
		if (r == 0)
			r = on_frame(c, &f, &req);
		if (r != 0 || c->n_keepalive_answers > before)
			break;
	}
	if (r == 1) {
		serve_request_free(&req);
		return conf_fail(c->ctx,
		                 "FRAME-26: a request arrived on stream %u before the client "
		                 "answered the KEEPALIVE with RESPOND",
		                 req.stream_id);
	}
	if (r == -EPROTO)
		return CONF_FAIL;
	if (r < 0 || c->n_keepalive_answers == before)
		return conf_fail(c->ctx,
		                 "FRAME-26: the client did not answer a KEEPALIVE with RESPOND "
		                 "(%s)",
		                 r == 0 ? "it closed the connection" : "within the case timeout");
	if (c->keepalive_len != len || memcmp(c->keepalive_data, data, len) != 0)
		return conf_fail(c->ctx,
		                 "FRAME-26: the client's KEEPALIVE answer carries %zu bytes of "
		                 "data, not the %zu bytes received",
		                 c->keepalive_len, len);
	return CONF_PASS;
}

enum conf_result
serve_send_bytes(struct serve_conn *c, const void *bytes, size_t len, const int *fds, size_t n_fds)
{
	struct rfd_buf buf = {(uint8_t *)bytes, len, len};

	assert(c);
	return send_bytes(c, &buf, fds, n_fds, "raw bytes");
}

/* What `inspect` and `record` report for the request's FDs; 0 or a negative errno. */
static int
describe_fds(const struct serve_request *req, struct fdt_report *report)
{
	size_t tag_len = req->tag ? req->tag_len : 0;

	memset(report, 0, sizeof(*report));
	report->tag = rfd_malloc(tag_len + 1);
	report->fds = rfd_calloc(req->fds.n ? req->fds.n : 1, sizeof(*report->fds));
	if (!report->tag || !report->fds) {
		fdt_report_free(report);
		return -ENOMEM;
	}
	if (tag_len)
		memcpy(report->tag, req->tag, tag_len);
	report->tag[tag_len] = '\0';
	for (size_t i = 0; i < req->fds.n; i++) {
		int r = fdt_describe_fd(req->fds.fds[i], &report->fds[i]);

		if (r < 0) {
			fdt_report_free(report);
			return r;
		}
	}
	report->n_fds = req->fds.n;
	return 0;
}

static enum conf_result
reply_report(struct serve_conn *c, uint32_t stream, const struct fdt_report *report)
{
	static char empty_tag[] = "";
	struct fdt_report none = {.tag = empty_tag};
	struct fdt_bytes result = {0};
	enum conf_result verdict;

	if (fdt_encode_report_result(report->tag ? report : &none, &result) < 0)
		return conf_fail(c->ctx, "cannot encode an FdReport");
	verdict = serve_reply(c, stream, result.data, result.len, NULL, 0, NULL);
	fdt_bytes_free(&result);
	return verdict;
}

enum conf_result
serve_answer(struct serve_conn *c, struct serve_request *req)
{
	struct fdt_report report = {0};
	enum conf_result result = CONF_PASS;
	bool is_record = strcmp(req->method, FDT_METHOD_RECORD) == 0;

	assert(c);
	assert(req);
	if (strcmp(req->method, FDT_METHOD_ECHO) == 0) {
		result = serve_reply_string(c, req->stream_id, req->tag, req->tag_len, req->fds.fds,
		                            req->fds.n, NULL);
	} else if (strcmp(req->method, FDT_METHOD_INSPECT) == 0 || is_record) {
		if (describe_fds(req, &report) < 0) {
			result = conf_fail(c->ctx, "cannot describe the FDs of %s", req->method);
		} else if (is_record) {
			fdt_report_free(&c->recorded);
			c->recorded = report;
			memset(&report, 0, sizeof(report));
		} else {
			result = reply_report(c, req->stream_id, &report);
		}
	} else if (strcmp(req->method, FDT_METHOD_LAST) == 0) {
		result = reply_report(c, req->stream_id, &c->recorded);
	} else {
		result = conf_fail(c->ctx, "the harness has no normal answer to %s", req->method);
	}
	fdt_report_free(&report);
	for (size_t i = 0; i < req->fds.n; i++)
		close(req->fds.fds[i]);
	req->fds.n = 0;
	return result;
}

/* ---- The end of a scenario ---- */

enum conf_result
serve_expect_close(struct serve_conn *c, const char *what)
{
	struct serve_request req;
	char got[160];
	int r;

	assert(c);
	assert(what);
	r = serve_next_request(c, &req);
	if (r == 0)
		return CONF_PASS;
	if (r == -EPROTO)
		return CONF_FAIL;
	if (r == -ETIMEDOUT)
		return conf_fail(c->ctx,
		                 "%s, the client did not close the connection within the "
		                 "case timeout",
		                 what);
	describe_call(got, sizeof(got), req.method, req.tag, req.tag_len, req.fds.n);
	serve_request_free(&req);
	return conf_fail(c->ctx,
	                 "%s, the client sent %s on stream %u instead of closing the "
	                 "connection",
	                 what, got, req.stream_id);
}

enum conf_result
serve_finish(struct serve_conn *c, struct conf_ctx *ctx, long long deadline)
{
	enum conf_result result = CONF_PASS;

	assert(ctx);
	if (c) {
		result = serve_expect_close(c, "after the scenario's last answer");
		serve_close(c);
	}
	return result == CONF_PASS ? wait_exit(ctx, deadline) : result;
}

/* ---- Harness pipes ---- */

int
serve_pipes(int *readers, int *writers, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int r = wire_pipe(&readers[i], &writers[i]);

		if (r == 0 && fcntl(readers[i], F_SETFL, O_NONBLOCK) < 0) {
			r = -errno;
			close(readers[i]);
			close(writers[i]);
		}
		if (r < 0) {
			for (size_t k = 0; k < i; k++) {
				close(readers[k]);
				close(writers[k]);
			}
			return r;
		}
	}
	return 0;
}

int
serve_pipe_closed(int reader)
{
	char bytes[256];

	for (;;) {
		ssize_t n = read(reader, bytes, sizeof(bytes));

		if (n == 0)
			return 1;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
		/* Bytes someone wrote into the pipe: read on to learn its state. */
	}
}

enum conf_result
serve_check_pipes(struct conf_ctx *ctx, const int *readers, size_t n, bool closed, const char *when,
                  const char *consequence)
{
	for (size_t i = 0; i < n; i++) {
		int r = serve_pipe_closed(readers[i]);

		if (r < 0)
			return conf_fail(ctx, "cannot read harness pipe R%zu: %s", i + 1,
			                 strerror(-r));
		if ((r == 1) != closed)
			return conf_fail(ctx, "W%zu is %s %s: %s", i + 1,
			                 closed ? "still open" : "already closed", when,
			                 consequence);
	}
	return CONF_PASS;
}

int
serve_client_exited(const struct conf_ctx *ctx, int *status)
{
	assert(ctx);
	assert(status);
	return ctx->target_pid > 0 ? client_status(ctx->target_pid, status) : 0;
}

/* ---- Streams and sinks: the harness's side (section 21) ---- */

static bool
wait_done(struct serve_conn *c, enum serve_wait what, uint32_t id, size_t count)
{
	const struct serve_stream *st = stream_of(c, id);

	switch (what) {
	case SERVE_WAIT_CREDIT:
		return st && st->granted > st->used;
	case SERVE_WAIT_CANCEL:
		return st && st->cancelled;
	case SERVE_WAIT_KEEPALIVE:
		return c->n_keepalive_answers > count;
	case SERVE_WAIT_SINK:
		for (size_t i = 0; i < c->n_sink_events; i++)
			if (c->sink_events[i].stream_id == id)
				return true;
		return false;
	}
	return false;
}

/* A request that completed while the case waited for something else: kept, or a failure. */
static enum conf_result
hold_request(struct serve_conn *c, struct serve_request *req, bool hold, const char *awaited)
{
	char got[160];

	if (hold && !c->held) {
		c->held = malloc(sizeof(*c->held));
		if (c->held) {
			*c->held = *req;
			return CONF_PASS;
		}
	}
	describe_call(got, sizeof(got), req->method, req->tag, req->tag_len, req->fds.n);
	serve_request_free(req);
	return conf_fail(c->ctx, "the client sent %s on stream %u while the harness waited for %s",
	                 got, req->stream_id, awaited);
}

enum conf_result
serve_wait(struct serve_conn *c, enum serve_wait what, uint32_t id, size_t count,
           bool hold_request_, const char *awaited)
{
	char suffix[128];

	assert(c);
	assert(awaited);
	while (!wait_done(c, what, id, count)) {
		const struct serve_stream *st = stream_of(c, id);
		struct serve_request req;
		struct rfd_frame f;
		int r;

		if (what == SERVE_WAIT_CREDIT && st && st->cancelled)
			return conf_fail(c->ctx,
			                 "the client cancelled stream %u while the harness "
			                 "waited for %s",
			                 id, awaited);
		memset(&req, 0, sizeof(req));
		r = read_frame(c, &f);
		if (r == 0) {
			exit_suffix(c->ctx, suffix, sizeof(suffix));
			return conf_fail(c->ctx,
			                 "the client closed the connection while the harness "
			                 "waited for %s%s",
			                 awaited, suffix);
		}
		if (r == -ETIMEDOUT)
			return conf_fail(c->ctx, "no %s within the case timeout", awaited);
		if (r < 0)
			return CONF_FAIL;
		r = check_frame_fds(c, &f);
		if (r == 0)
			r = on_frame(c, &f, &req);
		if (r < 0)
			return CONF_FAIL;
		if (r == 1 && hold_request(c, &req, hold_request_, awaited) != CONF_PASS)
			return CONF_FAIL;
	}
	return CONF_PASS;
}

static enum conf_result
known_stream(struct serve_conn *c, uint32_t id, struct serve_stream **st)
{
	*st = serve_stream_find(c, id);
	if (!*st)
		return conf_fail(c->ctx, "the harness has no stream %u to answer", id);
	return CONF_PASS;
}

/* ResponseRpcMetadata {3: {key: @answer}, 7: responseMetadata {}, 12: @claim}. */
static int
put_first_metadata(struct rfd_buf *out, const char *answer, const struct rfd_fd_metadata *claim)
{
	struct rfd_cw w;

	rfd_cw_init(&w, out);
	rfd_cw_struct_begin(&w);
	if (answer) {
		rfd_cw_field(&w, RFD_CT_MAP, RESPONSE_OTHER_METADATA);
		rfd_cw_map_begin(&w, RFD_CT_BINARY, RFD_CT_BINARY, 1);
		rfd_cw_string(&w, WIRE_EXTENSIONS_KEY);
		rfd_cw_string(&w, answer);
	}
	rfd_cw_field(&w, RFD_CT_STRUCT, 7);
	rfd_cw_struct_begin(&w);
	rfd_cw_field(&w, RFD_CT_STRUCT, 1);
	rfd_cw_struct_begin(&w);
	rfd_cw_struct_end(&w);
	rfd_cw_struct_end(&w);
	if (claim->present) {
		rfd_cw_field(&w, RFD_CT_STRUCT, 12);
		rfd_cw_struct_begin(&w);
		rfd_cw_field_i64(&w, 1, claim->fd_seq);
		rfd_cw_field_i32(&w, 2, claim->num_fds);
		rfd_cw_struct_end(&w);
	}
	rfd_cw_struct_end(&w);
	return rfd_cw_finish(&w);
}

enum conf_result
serve_stream_first(struct serve_conn *c, uint32_t id, const char *answer, const int *fds,
                   size_t n_fds)
{
	static const uint8_t empty_result[] = {0x00};
	struct rfd_fd_metadata claim = wire_claim(&c->w, (int32_t)n_fds);
	struct rfd_frame frame = {
	    .stream_id = id,
	    .type = RFD_FRAME_PAYLOAD,
	    .flags = RFD_FLAG_NEXT,
	    .has_metadata = true,
	    .data = {empty_result, sizeof(empty_result)},
	};
	struct serve_stream *st;
	struct rfd_buf metadata;
	enum conf_result result = known_stream(c, id, &st);

	if (result != CONF_PASS)
		return result;
	rfd_buf_init(&metadata);
	if (put_first_metadata(&metadata, answer, &claim) < 0) {
		rfd_buf_free(&metadata);
		return conf_fail(c->ctx, "cannot encode a first response");
	}
	frame.metadata = (struct rfd_slice){metadata.data, metadata.len};
	result = serve_send_frame(c, &frame, fds, n_fds, "a first response");
	rfd_buf_free(&metadata);
	st->first_sent = true;
	st->accepted_sink =
	    st->sink && answer &&
	    wire_extension_named((struct rfd_slice){(const uint8_t *)answer, strlen(answer)},
	                         "sink");
	return result;
}

static enum conf_result
send_stream_payload(struct serve_conn *c, uint32_t id, uint16_t flags,
                    const struct fdt_report *report, const int *fds, size_t n_fds,
                    const struct rfd_fd_metadata *claim, const char *what)
{
	struct rfd_fd_metadata correct = wire_claim(&c->w, (int32_t)n_fds);
	struct fdt_bytes data = {0};
	struct rfd_buf bytes;
	enum conf_result result;

	if (fdt_encode_report_result(report, &data) < 0)
		return conf_fail(c->ctx, "cannot encode an FdReport");
	rfd_buf_init(&bytes);
	wire_encode_stream_payload(&bytes, id, flags, true, claim ? claim : &correct, data.data,
	                           data.len);
	result = send_bytes(c, &bytes, fds, n_fds, what);
	rfd_buf_free(&bytes);
	fdt_bytes_free(&data);
	return result;
}

enum conf_result
serve_stream_item(struct serve_conn *c, uint32_t id, const struct fdt_report *report,
                  const int *fds, size_t n_fds, const struct rfd_fd_metadata *claim, bool last)
{
	uint16_t flags = RFD_FLAG_NEXT | RFD_FLAG_METADATA | (last ? RFD_FLAG_COMPLETE : 0);
	struct serve_stream *st;
	enum conf_result result = known_stream(c, id, &st);

	assert(report);
	if (result != CONF_PASS)
		return result;
	st->used++;
	st->completed = last;
	return send_stream_payload(c, id, flags, report, fds, n_fds, claim, "a stream item");
}

enum conf_result
serve_stream_complete(struct serve_conn *c, uint32_t id)
{
	struct serve_stream *st;
	struct rfd_buf bytes;
	enum conf_result result = known_stream(c, id, &st);

	if (result != CONF_PASS)
		return result;
	st->completed = true;
	rfd_buf_init(&bytes);
	wire_encode_stream_payload(&bytes, id, RFD_FLAG_COMPLETE, false, NULL, NULL, 0);
	result = send_bytes(c, &bytes, NULL, 0, "a stream's completion");
	rfd_buf_free(&bytes);
	return result;
}

enum conf_result
serve_settle(struct serve_conn *c, int ms)
{
	long long deadline = c->deadline;
	enum conf_result result = CONF_PASS;

	assert(c);
	if (now_ms() + ms < deadline)
		c->deadline = now_ms() + ms;
	for (;;) {
		struct serve_request req;
		struct rfd_frame f;
		int r;

		memset(&req, 0, sizeof(req));
		r = read_frame(c, &f);
		if (r == -ETIMEDOUT || r == 0)
			break;
		if (r > 0)
			r = check_frame_fds(c, &f);
		if (r == 0)
			r = on_frame(c, &f, &req);
		if (r < 0) {
			result = CONF_FAIL;
			break;
		}
		if (r == 1) {
			result = hold_request(c, &req, false, "the client to be quiet");
			break;
		}
	}
	c->deadline = deadline;
	return result;
}

enum conf_result
serve_sink_credit(struct serve_conn *c, uint32_t id, uint32_t n)
{
	struct serve_stream *st;
	struct rfd_buf bytes;
	enum conf_result result = known_stream(c, id, &st);

	if (result != CONF_PASS)
		return result;
	st->granted += n;
	rfd_buf_init(&bytes);
	wire_encode_request_n(&bytes, id, n);
	result = send_bytes(c, &bytes, NULL, 0, "REQUEST_N on a sink");
	rfd_buf_free(&bytes);
	return result;
}

enum conf_result
serve_sink_next(struct serve_conn *c, uint32_t id, struct serve_sink_event *ev)
{
	enum conf_result result =
	    serve_wait(c, SERVE_WAIT_SINK, id, 0, false, "an item or the completion of the sink");

	if (result != CONF_PASS)
		return result;
	for (size_t i = 0; i < c->n_sink_events; i++) {
		if (c->sink_events[i].stream_id != id)
			continue;
		*ev = c->sink_events[i];
		memmove(&c->sink_events[i], &c->sink_events[i + 1],
		        (c->n_sink_events - i - 1) * sizeof(c->sink_events[0]));
		c->n_sink_events--;
		break;
	}
	return CONF_PASS;
}

enum conf_result
serve_sink_final(struct serve_conn *c, uint32_t id, const struct fdt_report *report)
{
	struct serve_stream *st;
	enum conf_result result = known_stream(c, id, &st);

	if (result != CONF_PASS)
		return result;
	return send_stream_payload(c, id, RFD_FLAG_NEXT | RFD_FLAG_COMPLETE | RFD_FLAG_METADATA,
	                           report, NULL, 0, NULL, "a sink's final response");
}

enum conf_result
serve_reply_fdtest_error_fds(struct serve_conn *c, uint32_t stream, const char *message,
                             int32_t errnum, const int *fds, size_t n_fds)
{
	struct rfd_response_metadata md = {
	    .payload_kind = RFD_PAYLOAD_DECLARED_EXCEPTION,
	    .has_ex_name = true,
	    .ex_name = {(const uint8_t *)FDT_ERROR_NAME, strlen(FDT_ERROR_NAME)},
	    .has_ex_what = true,
	    .ex_what = {(const uint8_t *)message, strlen(message)},
	};
	struct fdt_bytes result = {0};
	enum conf_result verdict;

	assert(c);
	md.fd = wire_claim(&c->w, (int32_t)n_fds);
	if (fdt_encode_error_result(message, errnum, &result) < 0)
		return conf_fail(c->ctx, "cannot encode FdTestError");
	verdict = send_payload(c, stream, &md, result.data, result.len, fds, n_fds);
	fdt_bytes_free(&result);
	return verdict;
}

int
serve_read_end_pipes(int *readers, int *writers, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int r = wire_pipe(&readers[i], &writers[i]);

		if (r == 0 && fcntl(writers[i], F_SETFL, O_NONBLOCK) < 0) {
			r = -errno;
			close(readers[i]);
			close(writers[i]);
		}
		if (r < 0) {
			for (size_t k = 0; k < i; k++) {
				close(readers[k]);
				close(writers[k]);
			}
			return r;
		}
	}
	return 0;
}

int
serve_read_end_closed(int writer)
{
	static const char byte = 'x';

	if (write(writer, &byte, 1) == 1)
		return 0;
	if (errno == EPIPE)
		return 1;
	return errno == EAGAIN ? 0 : -errno;
}

enum conf_result
serve_check_read_ends(struct conf_ctx *ctx, const int *writers, size_t n, size_t first,
                      const char *when, const char *consequence)
{
	for (size_t i = 0; i < n; i++) {
		int r = serve_read_end_closed(writers[i]);

		if (r < 0)
			return conf_fail(ctx, "cannot write to harness pipe W%zu: %s", first + i,
			                 strerror(-r));
		if (r == 0)
			return conf_fail(ctx, "R%zu is still open %s: %s", first + i, when,
			                 consequence);
	}
	return CONF_PASS;
}

/* ---- The client's FD limit ---- */

static int
compare_ints(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* The numbers of @pid's open FDs, sorted: a malloc'd array of *n, or NULL with errno set. */
static int *
list_fds(pid_t pid, size_t *n)
{
	char path[64];
	struct dirent *entry;
	size_t cap = 64;
	int *numbers = malloc(cap * sizeof(int));
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = numbers ? opendir(path) : NULL;
	if (!dir) {
		free(numbers);
		return NULL;
	}
	*n = 0;
	while ((entry = readdir(dir))) {
		if (entry->d_name[0] == '.')
			continue;
		if (*n == cap) {
			int *bigger = realloc(numbers, 2 * cap * sizeof(int));

			if (!bigger) {
				closedir(dir);
				free(numbers);
				return NULL;
			}
			numbers = bigger;
			cap *= 2;
		}
		numbers[(*n)++] = atoi(entry->d_name);
	}
	closedir(dir);
	qsort(numbers, *n, sizeof(int), compare_ints);
	return numbers;
}

int
serve_limit_fds(pid_t pid, int room, struct rlimit *saved)
{
	struct rlimit limit;
	size_t n, next = 0;
	int *used = list_fds(pid, &n);
	int number, free_seen = 0;

	assert(saved);
	assert(room > 0);
	if (!used)
		return -errno;
	for (number = 0;; number++) {
		while (next < n && used[next] < number)
			next++;
		if ((next == n || used[next] != number) && ++free_seen == room)
			break;
	}
	free(used);
	if (prlimit(pid, RLIMIT_NOFILE, NULL, saved) < 0)
		return -errno;
	limit.rlim_cur = (rlim_t)number + 1;
	limit.rlim_max = saved->rlim_max;
	return prlimit(pid, RLIMIT_NOFILE, &limit, NULL) < 0 ? -errno : 0;
}
