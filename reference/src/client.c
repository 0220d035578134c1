/* SPDX-License-Identifier: MIT */
/*
 * The client: a connection core on its socket, every send and receive non-blocking
 * (MSG_DONTWAIT), with blocking calls built on async ones.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <rocketfd/rocketfd.h>

#include "alloc.h"
#include "conn.h"
#include "io.h"

enum {
	DEFAULT_CONNECT_TIMEOUT_MS = 5000,
	MAX_READS_PER_PROCESS = 64,
	MAX_SPARE_CALLS = 64,
	DEFAULT_STREAM_CREDITS = 100,    /* fbthrift's default chunk buffer size */
	MAX_STREAM_CREDITS = 0x7FFFFFFE, /* plus one for the first response: 2^31 - 1 */
	/* Blocking calls wait in recvmsg() only for waits this long: shorter ones poll. */
	MIN_READ_WAIT_MS = 100,
	/* How late SO_RCVTIMEO's timer may end besides its eighth: two jiffies at 100 Hz. */
	TIMER_SLACK_MS = 20,
	/* A wait without a limit keeps an SO_RCVTIMEO at least this long. */
	IDLE_WAKE_MS = 1000,
	READ_TIMEOUT_UNKNOWN = -1,
	/* How often rfd_client_connect() tries again while the accept queue is full. */
	CONNECT_RETRY_MS = 10,
};

enum call_kind {
	CALL_RESPONSE,
	CALL_STREAM,
	CALL_SINK,
};

struct call {
	struct call *prev;
	struct call *next;
	uint32_t id;
	long long deadline_ms; /* -1: none (a stream's, once its first response came) */
	uint8_t kind;
	bool buffered;   /* a blocking stream: rfd_client_stream_next() consumes its items */
	bool first_seen; /* a sink's first response came: its next message is the last */
	rfd_reply_fn *callback;
	rfd_stream_fn *stream_callback;
	void *user;
	unsigned window;   /* a stream's credits: items the server may send ahead */
	unsigned consumed; /* items consumed since the last REQUEST_N */
};

/*
 * The messages of a blocking stream or sink, until rfd_client_stream_next()
 * or rfd_client_sink_close() takes them.
 */
struct stream_buffer {
	struct stream_buffer *next;
	uint32_t id;
	struct rfd_msg *head;
	struct rfd_msg *tail;
	bool sink;
	bool got_first;
	bool ended;
	int status; /* once ended, after the messages: 0 completed, or how it failed */
};

struct rfd_client {
	int sock;
	struct rfd_conn *conn;
	struct call *calls; /* awaiting replies or stream messages, newest first */
	struct call *spare; /* freed calls kept for reuse */
	size_t n_spare;
	struct stream_buffer *buffers;
	/* SO_RCVTIMEO as last set (0: none), or READ_TIMEOUT_UNKNOWN. */
	int read_timeout_ms;
	/* Blocking calls poll: the socket has O_NONBLOCK, set by someone else. */
	bool poll_only;
	/* Inside process(): callbacks may run, and the core's input is in use. */
	bool dispatching;
	char error[256];
};

void
rfd_client_options_init(struct rfd_client_options *options)
{
	options->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
	rfd_limits_init(&options->limits);
	options->trace = NULL;
	options->trace_user = NULL;
	options->extensions = RFD_EXTENSION_SINK | RFD_EXTENSION_EXCEPTION;
}

static void __attribute__((format(printf, 2, 3)))
set_error(struct rfd_client *client, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(client->error, sizeof(client->error), fmt, ap);
	va_end(ap);
}

/* ---- Calls ---- */

static struct call *
call_new(struct rfd_client *client)
{
	struct call *call = client->spare;

	if (call) {
		client->spare = call->next;
		client->n_spare--;
	} else {
		call = rfd_malloc(sizeof(*call));
		if (!call)
			return NULL;
	}
	memset(call, 0, sizeof(*call));
	return call;
}

static void
call_release(struct rfd_client *client, struct call *call)
{
	if (client->n_spare >= MAX_SPARE_CALLS) {
		rfd_free(call);
		return;
	}
	call->next = client->spare;
	client->spare = call;
	client->n_spare++;
}

static void
call_link(struct rfd_client *client, struct call *call)
{
	call->prev = NULL;
	call->next = client->calls;
	if (client->calls)
		client->calls->prev = call;
	client->calls = call;
}

static void
call_unlink(struct rfd_client *client, struct call *call)
{
	if (call->prev)
		call->prev->next = call->next;
	else
		client->calls = call->next;
	if (call->next)
		call->next->prev = call->prev;
}

static struct call *
call_find(const struct rfd_client *client, uint32_t id)
{
	for (struct call *call = client->calls; call; call = call->next)
		if (call->id == id)
			return call;
	return NULL;
}

/* Unlink @call and run its callback a last time. */
static void
call_finish(struct rfd_client *client, struct call *call, int status, struct rfd_msg *msg)
{
	struct call done = *call;

	call_unlink(client, call);
	call_release(client, call);
	if (done.kind == CALL_RESPONSE)
		done.callback(done.user, status, msg);
	else
		done.stream_callback(done.user, done.id, status, msg);
}

static void
fail_all_calls(struct rfd_client *client, int status)
{
	while (client->calls)
		call_finish(client, client->calls, status, NULL);
}

/*
 * A stream's item was consumed: once half the window is, ask for as many
 * again (REQUEST_N), as fbthrift's client does.
 * Limitation: an asynchronous stream's item counts as consumed when its
 * callback gets it, so a slow consumer slows the server only through the
 * blocking API; an asynchronous one that cannot keep up has to buffer.
 */
static void
consume(struct rfd_client *client, struct call *call)
{
	int r;

	if (++call->consumed < call->window - call->window / 2)
		return;
	r = rfd_conn_stream_request(client->conn, call->id, call->consumed);
	if (r < 0 && r != -ENOENT)
		set_error(client, "cannot grant stream credit: %s", strerror(-r));
	call->consumed = 0;
	rfd_io_flush(client->sock, client->conn);
}

/* ---- Blocking streams' buffers ---- */

static struct stream_buffer *
buffer_find(const struct rfd_client *client, uint32_t id)
{
	for (struct stream_buffer *b = client->buffers; b; b = b->next)
		if (b->id == id)
			return b;
	return NULL;
}

static void
buffer_free(struct rfd_client *client, struct stream_buffer *buffer)
{
	struct stream_buffer **link = &client->buffers;

	while (*link != buffer)
		link = &(*link)->next;
	*link = buffer->next;
	while (buffer->head) {
		struct rfd_msg *msg = buffer->head;

		buffer->head = msg->next;
		rfd_msg_free(msg);
	}
	rfd_free(buffer);
}

static struct rfd_msg *
buffer_pop(struct stream_buffer *buffer)
{
	struct rfd_msg *msg = buffer->head;

	if (msg) {
		buffer->head = msg->next;
		if (!buffer->head)
			buffer->tail = NULL;
		msg->next = NULL;
	}
	return msg;
}

/* The rfd_stream_fn of blocking streams and sinks: @user is the client. */
static void
buffer_message(void *user, uint32_t stream_id, int status, struct rfd_msg *msg)
{
	struct stream_buffer *buffer = buffer_find(user, stream_id);
	bool last = false;

	/* A sink's credit: rfd_client_sink_push() looks at the credits itself. */
	if (!msg && status == RFD_SINK_CREDIT)
		return;
	if (!buffer) {
		rfd_msg_free(msg);
		return;
	}
	if (msg && buffer->sink) {
		last = buffer->got_first;
		buffer->got_first = true;
	}
	if (msg) {
		msg->next = NULL;
		if (buffer->tail)
			buffer->tail->next = msg;
		else
			buffer->head = msg;
		buffer->tail = msg;
	}
	if (last || !msg || msg->kind == RFD_MSG_EXCEPTION || msg->kind == RFD_MSG_ERROR) {
		buffer->ended = true;
		buffer->status = status;
	}
}

/* ---- Core callbacks ---- */

static void
on_reply(void *user, uint32_t stream_id, int status, struct rfd_msg *reply)
{
	struct rfd_client *client = user;
	struct call *call = call_find(client, stream_id);

	if (!call) {
		rfd_msg_free(reply);
		return;
	}
	if (status < 0)
		set_error(client, "%s", rfd_conn_reason(client->conn));
	call_finish(client, call, status, reply);
}

static void
on_stream(void *user, uint32_t stream_id, int status, struct rfd_msg *msg)
{
	struct rfd_client *client = user;
	struct call *call = call_find(client, stream_id);

	if (!call) {
		rfd_msg_free(msg);
		return;
	}
	call->deadline_ms = -1;
	if (status < 0)
		set_error(client, "%s", rfd_conn_reason(client->conn));
	if (!msg || msg->kind == RFD_MSG_EXCEPTION || msg->kind == RFD_MSG_ERROR ||
	    (call->kind == CALL_SINK && call->first_seen)) {
		call_finish(client, call, status, msg);
		return;
	}
	call->first_seen = true;
	if (msg->kind == RFD_MSG_STREAM_ITEM && !call->buffered)
		consume(client, call);
	call->stream_callback(call->user, stream_id, 0, msg);
}

/* The server granted credit on a sink. */
static void
on_stream_event(void *user, uint32_t stream_id, enum rfd_conn_stream_event event)
{
	struct rfd_client *client = user;
	struct call *call = call_find(client, stream_id);

	if (call && call->kind == CALL_SINK && event == RFD_CONN_STREAM_CREDIT)
		call->stream_callback(call->user, stream_id, RFD_SINK_CREDIT, NULL);
}

static void
on_failed(void *user, int err, const char *why)
{
	struct rfd_client *client = user;

	set_error(client, "%s", why);
	fail_all_calls(client, err);
}

static const struct rfd_conn_callbacks client_callbacks = {
    .reply = on_reply,
    .stream = on_stream,
    .stream_event = on_stream_event,
    .failed = on_failed,
};

/* ---- Connecting ---- */

static int
wait_ready(struct rfd_client *client, int timeout_ms)
{
	long long deadline = timeout_ms < 0 ? -1 : rfd_now_ms() + timeout_ms;

	while (!rfd_conn_ready(client->conn)) {
		struct pollfd pfd = {.fd = client->sock, .events = rfd_client_events(client)};
		int wait = deadline < 0 ? -1 : (int)(deadline - rfd_now_ms());
		int r;

		if (deadline >= 0 && wait <= 0) {
			set_error(client, "%s", "no answer to SETUP from the server in time");
			return -ETIMEDOUT;
		}
		r = poll(&pfd, 1, wait);
		if (r < 0 && errno != EINTR)
			return -errno;
		r = rfd_client_process(client, r > 0 ? pfd.revents : 0);
		if (r < 0)
			return r;
	}
	return 0;
}

int
rfd_client_adopt(int sock, const struct rfd_client_options *options, struct rfd_client **out)
{
	struct rfd_client_options defaults;
	struct rfd_conn_callbacks callbacks;
	struct rfd_client *client;
	int flags, r;

	*out = NULL;
	if (!options) {
		rfd_client_options_init(&defaults);
		options = &defaults;
	}
	/* Every send and receive says MSG_DONTWAIT; blocking calls wait in recvmsg(). */
	flags = fcntl(sock, F_GETFL);
	if (flags < 0 || ((flags & O_NONBLOCK) && fcntl(sock, F_SETFL, flags & ~O_NONBLOCK) < 0)) {
		r = -errno;
		close(sock);
		return r;
	}
	client = rfd_calloc(1, sizeof(*client));
	if (!client) {
		close(sock);
		return -ENOMEM;
	}
	client->sock = sock;
	client->read_timeout_ms = READ_TIMEOUT_UNKNOWN;
	callbacks = client_callbacks;
	callbacks.trace = options->trace;
	callbacks.trace_user = options->trace_user;
	client->conn = rfd_conn_new_with_extensions(RFD_ROLE_CLIENT, &options->limits,
	                                            options->extensions, &callbacks, client);
	if (!client->conn) {
		rfd_client_free(client);
		return -ENOMEM;
	}

	r = wait_ready(client, options->connect_timeout_ms);
	if (r < 0) {
		rfd_client_free(client);
		return r;
	}
	*out = client;
	return 0;
}

int
rfd_client_connect(const char *path, const struct rfd_client_options *options,
                   struct rfd_client **out)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	long long deadline;
	int sock, limit;

	*out = NULL;
	if (!path || !*path)
		return -EINVAL;
	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, path, strlen(path));

	/* Non-blocking: a full accept queue says EAGAIN, where connect() would wait forever. */
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (sock < 0)
		return -errno;
	limit = options ? options->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
	deadline = limit < 0 ? LLONG_MAX : rfd_now_ms() + limit;
	while (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int r = -errno;

		if (r == -EINTR)
			continue;
		if (r == -EAGAIN && rfd_now_ms() < deadline) {
			poll(NULL, 0, CONNECT_RETRY_MS);
			continue;
		}
		close(sock);
		return r == -EAGAIN ? -ETIMEDOUT : r;
	}
	return rfd_client_adopt(sock, options, out);
}

void
rfd_client_free(struct rfd_client *client)
{
	if (!client)
		return;
	fail_all_calls(client, -ECANCELED);
	while (client->buffers)
		buffer_free(client, client->buffers);
	rfd_conn_free(client->conn);
	while (client->spare) {
		struct call *call = client->spare;

		client->spare = call->next;
		rfd_free(call);
	}
	if (client->sock >= 0)
		close(client->sock);
	rfd_free(client);
}

const char *
rfd_client_error(const struct rfd_client *client)
{
	return client->error;
}

/* ---- Event loop interface ---- */

int
rfd_client_fd(const struct rfd_client *client)
{
	return client->sock;
}

short
rfd_client_events(const struct rfd_client *client)
{
	return (short)(POLLIN | (rfd_conn_out_pending(client->conn) ? POLLOUT : 0));
}

int
rfd_client_timeout(const struct rfd_client *client)
{
	long long now = rfd_now_ms(), nearest = -1;

	for (const struct call *call = client->calls; call; call = call->next)
		if (call->deadline_ms >= 0 && (nearest < 0 || call->deadline_ms < nearest))
			nearest = call->deadline_ms;
	if (nearest < 0)
		return -1;
	return nearest <= now ? 0 : (int)(nearest - now);
}

static void
expire_calls(struct rfd_client *client)
{
	long long now = rfd_now_ms();
	struct call *call = client->calls;

	while (call) {
		struct call *next = call->next;

		if (call->deadline_ms >= 0 && call->deadline_ms <= now) {
			rfd_conn_abandon(client->conn, call->id);
			set_error(client, "%s",
			          call->kind == CALL_RESPONSE ? "call timed out"
			                                      : "no first response in time");
			call_finish(client, call, -ETIMEDOUT, NULL);
			/* The callback may have completed other calls: start over. */
			next = client->calls;
		}
		call = next;
	}
}

/*
 * Read (when @readable), write, expire calls.  @read_flags as for
 * rfd_io_read_sender(); RFD_IO_NOTHING_CAME when it says so, else 0 or the
 * connection's failure.
 */
static int
process(struct rfd_client *client, bool readable, unsigned read_flags)
{
	int r = rfd_conn_error(client->conn), read = 0;

	if (client->dispatching)
		return -EDEADLK;
	client->dispatching = true;
	if (r == 0 && readable)
		r = read = rfd_io_read_sender(client->sock, client->conn, 0, MAX_READS_PER_PROCESS,
		                              read_flags, NULL);
	/* Even after a failure: what is queued then is the ERROR frame that says why. */
	if (rfd_io_flush(client->sock, client->conn) < 0 && r >= 0)
		r = rfd_conn_error(client->conn);
	if (r >= 0) {
		expire_calls(client);
		/* A stream that timed out sends CANCEL now, not at the next call. */
		rfd_io_flush(client->sock, client->conn);
	}
	client->dispatching = false;
	if (r < 0)
		return r;
	r = rfd_conn_error(client->conn);
	if (r < 0)
		return r;
	return read == RFD_IO_NOTHING_CAME ? read : 0;
}

int
rfd_client_process(struct rfd_client *client, short revents)
{
	return process(client, revents & (POLLIN | POLLHUP | POLLERR), 0);
}

size_t
rfd_client_in_flight(const struct rfd_client *client)
{
	return rfd_conn_in_flight(client->conn);
}

/* ---- Calls ---- */

/* What send_call() sends: a request-response call, a one-way call, a stream or a sink. */
struct call_request {
	uint8_t kind; /* enum call_kind */
	bool oneway;
	uint32_t initial_n; /* a stream's */
};

static int
send_call(struct rfd_client *client, const struct call_request *req, const char *method,
          const void *args, size_t args_len, const int *fds, size_t n_fds, enum rfd_fd_mode mode,
          int timeout_ms, uint32_t *stream_id)
{
	int32_t client_timeout = timeout_ms > 0 ? timeout_ms : 0;
	struct rfd_fdgroup *group;
	bool lent;
	int r, kept;

	if (!method || (!args && args_len)) {
		rfd_fds_discard(fds, n_fds, mode);
		return -EINVAL;
	}
	/* With nothing queued ahead, the caller's own FDs go out in the write below: no copies. */
	lent = mode == RFD_FDS_DUP && rfd_conn_out_pending(client->conn) == 0;
	r = lent ? rfd_fds_lend(fds, n_fds, &group) : rfd_fds_prepare(fds, n_fds, mode, &group);
	if (r < 0) {
		set_error(client, "cannot send the FDs: %s", strerror(-r));
		return r;
	}
	if (req->kind == CALL_STREAM)
		r = rfd_conn_send_stream(client->conn, method, args, args_len, client_timeout,
		                         req->initial_n, group, stream_id);
	else if (req->kind == CALL_SINK)
		r = rfd_conn_send_sink(client->conn, method, args, args_len, client_timeout, group,
		                       stream_id);
	else
		r = rfd_conn_send_request(client->conn,
		                          req->oneway ? RFD_REQUEST_ONEWAY : RFD_REQUEST_RESPONSE,
		                          method, args, args_len, client_timeout, group, stream_id);
	if (r == -EAGAIN)
		set_error(client, "%s", "too many calls in flight");
	/* Write at once where the socket allows: a call should not wait for the next poll. */
	if (r == 0)
		r = rfd_io_flush(client->sock, client->conn);
	kept = lent ? rfd_fds_settle(client->conn, group) : 0;
	return r < 0 ? r : kept;
}

/* Send a call and track it as @call, which is released on failure. */
static int
start_call(struct rfd_client *client, struct call *call, const struct call_request *req,
           const char *method, const void *args, size_t args_len, const int *fds, size_t n_fds,
           enum rfd_fd_mode mode, int timeout_ms, uint32_t *call_id)
{
	uint32_t id;
	/* A failure here, even after the request was queued, is reported by the return alone. */
	int r = send_call(client, req, method, args, args_len, fds, n_fds, mode, timeout_ms, &id);

	if (r < 0) {
		call_release(client, call);
		return r;
	}
	call->id = id;
	call->kind = req->kind;
	call->deadline_ms = timeout_ms >= 0 ? rfd_now_ms() + timeout_ms : -1;
	call_link(client, call);
	if (call_id)
		*call_id = id;
	return 0;
}

int
rfd_client_call_async(struct rfd_client *client, const char *method, const void *args,
                      size_t args_len, const int *fds, size_t n_fds, enum rfd_fd_mode mode,
                      int timeout_ms, rfd_reply_fn *callback, void *user, uint32_t *call_id)
{
	struct call_request req = {.kind = CALL_RESPONSE};
	struct call *call;

	if (!callback) {
		rfd_fds_discard(fds, n_fds, mode);
		return -EINVAL;
	}
	call = call_new(client);
	if (!call) {
		rfd_fds_discard(fds, n_fds, mode);
		return -ENOMEM;
	}
	call->callback = callback;
	call->user = user;
	return start_call(client, call, &req, method, args, args_len, fds, n_fds, mode, timeout_ms,
	                  call_id);
}

int
rfd_client_oneway_async(struct rfd_client *client, const char *method, const void *args,
                        size_t args_len, const int *fds, size_t n_fds, enum rfd_fd_mode mode)
{
	struct call_request req = {.kind = CALL_RESPONSE, .oneway = true};

	return send_call(client, &req, method, args, args_len, fds, n_fds, mode, 0, NULL);
}

static int
open_stream(struct rfd_client *client, const char *method, const void *args, size_t args_len,
            const int *fds, size_t n_fds, enum rfd_fd_mode mode, int timeout_ms, unsigned credits,
            rfd_stream_fn *callback, void *user, bool buffered, uint32_t *stream_id)
{
	struct call_request req = {.kind = CALL_STREAM};
	struct call *call;

	if (credits == 0)
		credits = DEFAULT_STREAM_CREDITS;
	if (!callback || credits > MAX_STREAM_CREDITS) {
		if (callback)
			set_error(client, "stream credits %u are out of range: 1 to %u (0: %u)",
			          credits, (unsigned)MAX_STREAM_CREDITS,
			          (unsigned)DEFAULT_STREAM_CREDITS);
		else
			set_error(client, "a stream needs a callback");
		rfd_fds_discard(fds, n_fds, mode);
		return -EINVAL;
	}
	call = call_new(client);
	if (!call) {
		rfd_fds_discard(fds, n_fds, mode);
		return -ENOMEM;
	}
	req.initial_n = credits + 1;
	call->stream_callback = callback;
	call->user = user;
	call->buffered = buffered;
	call->window = credits;
	return start_call(client, call, &req, method, args, args_len, fds, n_fds, mode, timeout_ms,
	                  stream_id);
}

int
rfd_client_stream_async(struct rfd_client *client, const char *method, const void *args,
                        size_t args_len, const int *fds, size_t n_fds, enum rfd_fd_mode mode,
                        int timeout_ms, unsigned credits, rfd_stream_fn *callback, void *user,
                        uint32_t *stream_id)
{
	return open_stream(client, method, args, args_len, fds, n_fds, mode, timeout_ms, credits,
	                   callback, user, false, stream_id);
}

int
rfd_client_cancel(struct rfd_client *client, uint32_t call_id)
{
	struct call *call = call_find(client, call_id);
	struct stream_buffer *buffer;

	if (!call && !buffer_find(client, call_id))
		return -ENOENT;
	if (call) {
		rfd_conn_abandon(client->conn, call_id);
		call_finish(client, call, -ECANCELED, NULL);
		rfd_io_flush(client->sock, client->conn);
	}
	buffer = buffer_find(client, call_id);
	if (buffer)
		buffer_free(client, buffer);
	return 0;
}

/* ---- Blocking calls ---- */

struct sync_call {
	bool done;
	int status;
	struct rfd_msg *reply;
};

static void
sync_call_done(void *user, int status, struct rfd_msg *reply)
{
	struct sync_call *sync = user;

	sync->done = true;
	sync->status = status;
	sync->reply = reply;
}

static bool
flag_set(const struct rfd_client *client, const void *flag)
{
	return *(const bool *)flag;
}

/* Process what the socket has now, without waiting; a failure shows where the calls end. */
static void
process_ready(struct rfd_client *client)
{
	struct pollfd pfd = {.fd = client->sock, .events = rfd_client_events(client)};
	int r = poll(&pfd, 1, 0);

	rfd_client_process(client, r > 0 ? pfd.revents : 0);
}

/*
 * Give the socket an SO_RCVTIMEO that ends within a wait of @wait ms (-1:
 * no limit), setting it only when the one it has would not do: one that may
 * end after the wait, or long before it.  The kernel counts it in jiffies on
 * a timer wheel that may fire up to an eighth late, so a new one is half the
 * wait.  Calls made with the same timeout set it once; one that ends early
 * only wakes the loop, which works out the wait again.
 */
static int
set_read_timeout(struct rfd_client *client, int wait)
{
	int set = client->read_timeout_ms, want = wait < 0 ? 0 : wait / 2;
	struct timeval tv = {.tv_sec = want / 1000, .tv_usec = (want % 1000) * 1000};

	if (wait < 0 && (set == 0 || set >= IDLE_WAKE_MS))
		return 0;
	if (wait >= 0 && set > 0 && set <= (wait - TIMER_SLACK_MS) / 3 * 2 && set >= wait / 16)
		return 0;
	if (setsockopt(client->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		client->read_timeout_ms = READ_TIMEOUT_UNKNOWN;
		return -errno;
	}
	client->read_timeout_ms = want;
	return 0;
}

/* Nothing waits to be written and the wait is long enough for SO_RCVTIMEO's timer. */
static bool
can_wait_in_read(const struct rfd_client *client, int wait)
{
	return !client->poll_only && rfd_conn_out_pending(client->conn) == 0 &&
	       (wait < 0 || wait >= MIN_READ_WAIT_MS);
}

/* Wait for bytes in recvmsg() itself, up to SO_RCVTIMEO, then process as after poll(). */
static int
read_waiting(struct rfd_client *client)
{
	int flags, r;

	r = process(client, true, RFD_IO_WAIT);
	if (r != RFD_IO_NOTHING_CAME)
		return r;
	/* A timeout or a signal; or someone set O_NONBLOCK, and waiting reads would spin. */
	flags = fcntl(client->sock, F_GETFL);
	if (flags < 0 || (flags & O_NONBLOCK))
		client->poll_only = true;
	return 0;
}

static int
poll_once(struct rfd_client *client, int wait)
{
	struct pollfd pfd = {.fd = client->sock, .events = rfd_client_events(client)};
	int r = poll(&pfd, 1, wait);

	if (r < 0 && errno != EINTR)
		return -errno;
	return rfd_client_process(client, r > 0 ? pfd.revents : 0);
}

/*
 * A callback runs inside a read of the socket: a blocking call made there
 * would read under it.  Such a call is refused with -EDEADLK before it
 * sends anything, its FDs discarded as @mode says.
 */
static int
refuse_from_callback(struct rfd_client *client, const int *fds, size_t n_fds, enum rfd_fd_mode mode)
{
	if (!client->dispatching)
		return 0;
	rfd_fds_discard(fds, n_fds, mode);
	set_error(client,
	          "a blocking call was made from a callback; only asynchronous calls may be");
	return -EDEADLK;
}

/*
 * Wait and process until done(@arg) holds, the deadline passes (-ETIMEDOUT)
 * or the connection fails.  With nothing to write, the wait is recvmsg()
 * itself: one syscall where poll() and recvmsg() take two.
 */
static int
run_until(struct rfd_client *client, bool (*done)(const struct rfd_client *, const void *),
          const void *arg, long long deadline_ms)
{
	while (!done(client, arg)) {
		int wait = rfd_client_timeout(client);
		int r;

		if (deadline_ms >= 0) {
			long long left = deadline_ms - rfd_now_ms();

			if (left <= 0) {
				/* What has already come counts, even with a timeout of 0. */
				r = poll_once(client, 0);
				if (done(client, arg))
					return 0;
				return r < 0 ? r : -ETIMEDOUT;
			}
			if (wait < 0 || wait > left)
				wait = (int)left;
		}
		if (can_wait_in_read(client, wait) && set_read_timeout(client, wait) == 0)
			r = read_waiting(client);
		else
			r = poll_once(client, wait);
		if (r < 0 && !done(client, arg))
			return r;
	}
	return 0;
}

int
rfd_client_call(struct rfd_client *client, const char *method, const void *args, size_t args_len,
                const int *fds, size_t n_fds, enum rfd_fd_mode mode, int timeout_ms,
                struct rfd_msg **reply)
{
	struct sync_call sync = {0};
	int r;

	*reply = NULL;
	r = refuse_from_callback(client, fds, n_fds, mode);
	if (r < 0)
		return r;
	r = rfd_client_call_async(client, method, args, args_len, fds, n_fds, mode, timeout_ms,
	                          sync_call_done, &sync, NULL);
	if (r < 0)
		return r;
	r = run_until(client, flag_set, &sync.done, -1);
	if (r < 0 && !sync.done)
		return r;
	*reply = sync.reply;
	return sync.status;
}

int
rfd_client_oneway(struct rfd_client *client, const char *method, const void *args, size_t args_len,
                  const int *fds, size_t n_fds, enum rfd_fd_mode mode, int timeout_ms)
{
	long long deadline = timeout_ms < 0 ? -1 : rfd_now_ms() + timeout_ms;
	bool written = false;
	int r;

	r = refuse_from_callback(client, fds, n_fds, mode);
	if (r == 0)
		r = rfd_client_oneway_async(client, method, args, args_len, fds, n_fds, mode);
	while (r >= 0 && !written) {
		written = rfd_conn_out_pending(client->conn) == 0;
		if (!written) {
			struct pollfd pfd = {.fd = client->sock, .events = POLLOUT | POLLIN};
			int wait = deadline < 0 ? -1 : (int)(deadline - rfd_now_ms());

			if (deadline >= 0 && wait <= 0)
				return -ETIMEDOUT;
			if (poll(&pfd, 1, wait) < 0 && errno != EINTR)
				return -errno;
			r = rfd_client_process(client, pfd.revents);
		}
	}
	return r < 0 ? r : 0;
}

/* ---- Blocking streams ---- */

/* A message of the blocking stream @id waits, or its end, or it is gone. */
static bool
stream_ready(const struct rfd_client *client, const void *id)
{
	const struct stream_buffer *buffer = buffer_find(client, *(const uint32_t *)id);

	return !buffer || buffer->head || buffer->ended;
}

/*
 * Take what the blocking stream @id has for rfd_client_stream_next(): 1 with
 * *msg, or its end (0 or the failure) once the messages are taken; the
 * buffer is freed once the stream is over for the caller.
 */
static int
buffer_take(struct rfd_client *client, uint32_t id, struct rfd_msg **msg)
{
	struct stream_buffer *buffer = buffer_find(client, id);
	struct call *call;
	int status;

	/* Gone while its caller waited: rfd_client_cancel() from a callback. */
	if (!buffer)
		return -ECANCELED;
	*msg = buffer_pop(buffer);
	if (*msg && rfd_msg_kind(*msg) == RFD_MSG_STREAM_ITEM) {
		call = call_find(client, id);
		if (call)
			consume(client, call);
		return 1;
	}
	if (*msg && rfd_msg_kind(*msg) == RFD_MSG_REPLY)
		return 1;
	status = buffer->status;
	buffer_free(client, buffer);
	return *msg ? 1 : status;
}

/*
 * The buffer of a blocking stream or sink about to open, or NULL with *r:
 * refused from a callback, or out of memory; the FDs discarded as @mode says.
 */
static struct stream_buffer *
blocking_buffer(struct rfd_client *client, const int *fds, size_t n_fds, enum rfd_fd_mode mode,
                int *r)
{
	struct stream_buffer *buffer;

	*r = refuse_from_callback(client, fds, n_fds, mode);
	if (*r < 0)
		return NULL;
	buffer = rfd_calloc(1, sizeof(*buffer));
	if (!buffer) {
		rfd_fds_discard(fds, n_fds, mode);
		*r = -ENOMEM;
	}
	return buffer;
}

/*
 * The stream or sink @id is open: @buffer takes its messages from now on,
 * and the caller waits, within the call's own deadline, for *first.
 */
static int
await_first_response(struct rfd_client *client, struct stream_buffer *buffer, uint32_t id,
                     struct rfd_msg **first)
{
	int r;

	buffer->id = id;
	buffer->next = client->buffers;
	client->buffers = buffer;
	r = run_until(client, stream_ready, &id, -1);
	if (r < 0 && !stream_ready(client, &id)) {
		rfd_client_cancel(client, id);
		return r;
	}
	r = buffer_take(client, id, first);
	if (r == 0)
		return -EPROTO; /* an end without a first response: the core fails that */
	return r > 0 ? 0 : r;
}

int
rfd_client_stream(struct rfd_client *client, const char *method, const void *args, size_t args_len,
                  const int *fds, size_t n_fds, enum rfd_fd_mode mode, int timeout_ms,
                  unsigned credits, struct rfd_msg **first, uint32_t *stream_id)
{
	struct stream_buffer *buffer;
	uint32_t id;
	int r;

	*first = NULL;
	buffer = blocking_buffer(client, fds, n_fds, mode, &r);
	if (!buffer)
		return r;
	r = open_stream(client, method, args, args_len, fds, n_fds, mode, timeout_ms, credits,
	                buffer_message, client, true, &id);
	if (r < 0) {
		rfd_free(buffer);
		return r;
	}
	if (stream_id)
		*stream_id = id;
	return await_first_response(client, buffer, id, first);
}

int
rfd_client_stream_next(struct rfd_client *client, uint32_t stream_id, int timeout_ms,
                       struct rfd_msg **msg)
{
	long long deadline = timeout_ms < 0 ? -1 : rfd_now_ms() + timeout_ms;
	int r;

	*msg = NULL;
	if (!buffer_find(client, stream_id))
		return -ENOENT;
	r = refuse_from_callback(client, NULL, 0, RFD_FDS_DUP);
	if (r < 0)
		return r;
	r = run_until(client, stream_ready, &stream_id, deadline);
	if (r < 0 && !stream_ready(client, &stream_id))
		return r;
	return buffer_take(client, stream_id, msg);
}

/* ---- Sinks ---- */

static const char NO_SINK_FDS[] =
    "the server did not accept the extension sink: items carry no FDs";

static int
open_sink(struct rfd_client *client, const char *method, const void *args, size_t args_len,
          const int *fds, size_t n_fds, enum rfd_fd_mode mode, int timeout_ms,
          rfd_stream_fn *callback, void *user, uint32_t *sink_id)
{
	struct call_request req = {.kind = CALL_SINK};
	struct call *call;

	if (!callback) {
		rfd_fds_discard(fds, n_fds, mode);
		return -EINVAL;
	}
	call = call_new(client);
	if (!call) {
		rfd_fds_discard(fds, n_fds, mode);
		return -ENOMEM;
	}
	call->stream_callback = callback;
	call->user = user;
	return start_call(client, call, &req, method, args, args_len, fds, n_fds, mode, timeout_ms,
	                  sink_id);
}

int
rfd_client_sink_async(struct rfd_client *client, const char *method, const void *args,
                      size_t args_len, const int *fds, size_t n_fds, enum rfd_fd_mode mode,
                      int timeout_ms, rfd_stream_fn *callback, void *user, uint32_t *sink_id)
{
	return open_sink(client, method, args, args_len, fds, n_fds, mode, timeout_ms, callback,
	                 user, sink_id);
}

int
rfd_client_sink_send(struct rfd_client *client, uint32_t sink_id, const void *data, size_t len,
                     const int *fds, size_t n_fds, enum rfd_fd_mode mode)
{
	struct rfd_fdgroup *group;
	int r;

	if (!data && len) {
		rfd_fds_discard(fds, n_fds, mode);
		return -EINVAL;
	}
	r = rfd_fds_prepare(fds, n_fds, mode, &group);
	if (r < 0) {
		set_error(client, "cannot send the FDs: %s", strerror(-r));
		return r;
	}
	r = rfd_conn_sink_send(client->conn, sink_id, data, len, group);
	if (r == -EOPNOTSUPP)
		set_error(client, "%s", NO_SINK_FDS);
	if (r < 0)
		return r;
	return rfd_io_flush(client->sock, client->conn);
}

unsigned
rfd_client_sink_credits(const struct rfd_client *client, uint32_t sink_id)
{
	return rfd_conn_sink_credits(client->conn, sink_id);
}

int
rfd_client_sink_fds(const struct rfd_client *client, uint32_t sink_id)
{
	return rfd_conn_sink_agreed(client->conn, sink_id);
}

int
rfd_client_sink_finish(struct rfd_client *client, uint32_t sink_id)
{
	int r = rfd_conn_sink_complete(client->conn, sink_id);

	if (r < 0)
		return r;
	return rfd_io_flush(client->sock, client->conn);
}

/* ---- Blocking sinks ---- */

int
rfd_client_sink(struct rfd_client *client, const char *method, const void *args, size_t args_len,
                const int *fds, size_t n_fds, enum rfd_fd_mode mode, int timeout_ms,
                struct rfd_msg **first, uint32_t *sink_id)
{
	struct stream_buffer *buffer;
	uint32_t id;
	int r;

	*first = NULL;
	buffer = blocking_buffer(client, fds, n_fds, mode, &r);
	if (!buffer)
		return r;
	r = open_sink(client, method, args, args_len, fds, n_fds, mode, timeout_ms, buffer_message,
	              client, &id);
	if (r < 0) {
		rfd_free(buffer);
		return r;
	}
	buffer->sink = true;
	if (sink_id)
		*sink_id = id;
	return await_first_response(client, buffer, id, first);
}

/* A blocking sink takes an item now, or will never again: it ended, or its final response came. */
static bool
sink_writable(const struct rfd_client *client, const void *id)
{
	uint32_t sink_id = *(const uint32_t *)id;
	const struct stream_buffer *buffer = buffer_find(client, sink_id);

	return !buffer || buffer->head || buffer->ended ||
	       rfd_conn_sink_credits(client->conn, sink_id) > 0 || rfd_conn_error(client->conn) < 0;
}

int
rfd_client_sink_push(struct rfd_client *client, uint32_t sink_id, const void *data, size_t len,
                     const int *fds, size_t n_fds, enum rfd_fd_mode mode, int timeout_ms)
{
	long long deadline = timeout_ms < 0 ? -1 : rfd_now_ms() + timeout_ms;
	const struct stream_buffer *buffer = buffer_find(client, sink_id);
	int r = 0;

	if (!buffer || !buffer->sink) {
		r = -ENOENT;
	} else if (client->dispatching) {
		r = refuse_from_callback(client, NULL, 0, RFD_FDS_DUP);
	} else if (n_fds > 0 && !rfd_conn_sink_agreed(client->conn, sink_id)) {
		set_error(client, "%s", NO_SINK_FDS);
		r = -EOPNOTSUPP;
	} else {
		/* A final response that came meanwhile ends the sink even while credit is left. */
		process_ready(client);
	}
	if (r == 0) {
		r = run_until(client, sink_writable, &sink_id, deadline);
		if (r >= 0 || sink_writable(client, &sink_id))
			r = 0;
	}
	buffer = buffer_find(client, sink_id);
	if (r == 0 && !buffer)
		r = -ENOENT;
	else if (r == 0 && (buffer->head || (buffer->ended && buffer->status == 0)))
		r = -EPIPE;
	else if (r == 0 && buffer->ended)
		r = buffer->status;
	if (r < 0) {
		rfd_fds_discard(fds, n_fds, mode);
		return r;
	}
	return rfd_client_sink_send(client, sink_id, data, len, fds, n_fds, mode);
}

/* The final response of a blocking sink came, or its end. */
static bool
sink_answered(const struct rfd_client *client, const void *id)
{
	const struct stream_buffer *buffer = buffer_find(client, *(const uint32_t *)id);

	return !buffer || buffer->head || buffer->ended;
}

int
rfd_client_sink_close(struct rfd_client *client, uint32_t sink_id, int timeout_ms,
                      struct rfd_msg **final)
{
	long long deadline = timeout_ms < 0 ? -1 : rfd_now_ms() + timeout_ms;
	struct stream_buffer *buffer = buffer_find(client, sink_id);
	int r, status;

	*final = NULL;
	if (!buffer || !buffer->sink)
		return -ENOENT;
	r = refuse_from_callback(client, NULL, 0, RFD_FDS_DUP);
	if (r < 0)
		return r;
	/* Once: a second close after a timeout finds the completion sent (-ENOENT). */
	if (!buffer->head && !buffer->ended && rfd_conn_sink_complete(client->conn, sink_id) == 0)
		rfd_io_flush(client->sock, client->conn);
	r = run_until(client, sink_answered, &sink_id, deadline);
	if (r < 0 && !sink_answered(client, &sink_id))
		return r;
	buffer = buffer_find(client, sink_id);
	if (!buffer)
		return -ECANCELED; /* cancelled from a callback while the caller waited */
	*final = buffer_pop(buffer);
	status = buffer->status;
	buffer_free(client, buffer);
	if (*final)
		return 0;
	return status < 0 ? status : -EPROTO;
}
