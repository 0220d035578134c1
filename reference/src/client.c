/* SPDX-License-Identifier: MIT */
/* The client: a connection core on a non-blocking socket, with blocking calls built on async ones.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
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
};

struct call {
	struct call *prev;
	struct call *next;
	uint32_t id;
	long long deadline_ms; /* -1: none */
	rfd_reply_fn *callback;
	void *user;
};

struct rfd_client {
	int sock;
	struct rfd_conn *conn;
	struct call *calls; /* awaiting replies, newest first */
	struct call *spare; /* freed calls kept for reuse */
	size_t n_spare;
	char error[256];
};

void
rfd_client_options_init(struct rfd_client_options *options)
{
	options->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
	rfd_limits_init(&options->limits);
	options->trace = NULL;
	options->trace_user = NULL;
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
		return call;
	}
	return rfd_malloc(sizeof(*call));
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

/* Unlink @call and run its callback. */
static void
call_complete(struct rfd_client *client, struct call *call, int status, struct rfd_msg *reply)
{
	rfd_reply_fn *callback = call->callback;
	void *user = call->user;

	call_unlink(client, call);
	call_release(client, call);
	callback(user, status, reply);
}

static void
fail_all_calls(struct rfd_client *client, int status)
{
	while (client->calls)
		call_complete(client, client->calls, status, NULL);
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
	call_complete(client, call, status, reply);
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
	flags = fcntl(sock, F_GETFL);
	if (flags < 0 || fcntl(sock, F_SETFL, flags | O_NONBLOCK) < 0) {
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
	callbacks = client_callbacks;
	callbacks.trace = options->trace;
	callbacks.trace_user = options->trace_user;
	client->conn = rfd_conn_new(RFD_ROLE_CLIENT, &options->limits, &callbacks, client);
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
	int sock;

	*out = NULL;
	if (!path || !*path)
		return -EINVAL;
	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, path, strlen(path));

	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return -errno;
	while (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int r = -errno;

		if (r == -EINTR)
			continue;
		close(sock);
		return r;
	}
	return rfd_client_adopt(sock, options, out);
}

void
rfd_client_free(struct rfd_client *client)
{
	if (!client)
		return;
	fail_all_calls(client, -ECANCELED);
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
			set_error(client, "%s", "call timed out");
			call_complete(client, call, -ETIMEDOUT, NULL);
			/* The callback may have completed other calls: start over. */
			next = client->calls;
		}
		call = next;
	}
}

int
rfd_client_process(struct rfd_client *client, short revents)
{
	int r = rfd_conn_error(client->conn);

	if (r == 0 && (revents & (POLLIN | POLLHUP | POLLERR)))
		r = rfd_io_read(client->sock, client->conn, 0, MAX_READS_PER_PROCESS);
	/* Even after a failure: what is queued then is the ERROR frame that says why. */
	if (rfd_io_flush(client->sock, client->conn) < 0 && r >= 0)
		r = rfd_conn_error(client->conn);
	if (r >= 0)
		expire_calls(client);
	return r < 0 ? r : rfd_conn_error(client->conn);
}

size_t
rfd_client_in_flight(const struct rfd_client *client)
{
	return rfd_conn_in_flight(client->conn);
}

/* ---- Calls ---- */

static int
send_request(struct rfd_client *client, enum rfd_request_kind kind, const char *method,
             const void *args, size_t args_len, const int *fds, size_t n_fds, enum rfd_fd_mode mode,
             int timeout_ms, uint32_t *stream_id)
{
	struct rfd_fdgroup *group;
	int r;

	if (!method || (!args && args_len)) {
		rfd_fds_discard(fds, n_fds, mode);
		return -EINVAL;
	}
	r = rfd_fds_prepare(fds, n_fds, mode, &group);
	if (r < 0) {
		set_error(client, "cannot send the FDs: %s", strerror(-r));
		return r;
	}
	r = rfd_conn_send_request(client->conn, kind, method, args, args_len,
	                          timeout_ms > 0 ? timeout_ms : 0, group, stream_id);
	if (r < 0) {
		if (r == -EAGAIN)
			set_error(client, "%s", "too many calls in flight");
		return r;
	}
	/* Write at once where the socket allows: a call should not wait for the next poll. */
	return rfd_io_flush(client->sock, client->conn);
}

int
rfd_client_call_async(struct rfd_client *client, const char *method, const void *args,
                      size_t args_len, const int *fds, size_t n_fds, enum rfd_fd_mode mode,
                      int timeout_ms, rfd_reply_fn *callback, void *user, uint32_t *call_id)
{
	struct call *call;
	uint32_t id;
	int r;

	if (!callback) {
		rfd_fds_discard(fds, n_fds, mode);
		return -EINVAL;
	}
	call = call_new(client);
	if (!call) {
		rfd_fds_discard(fds, n_fds, mode);
		return -ENOMEM;
	}
	/* A failure here, even after the request was queued, is reported by the return alone. */
	r = send_request(client, RFD_REQUEST_RESPONSE, method, args, args_len, fds, n_fds, mode,
	                 timeout_ms, &id);
	if (r < 0) {
		call_release(client, call);
		return r;
	}
	call->id = id;
	call->deadline_ms = timeout_ms >= 0 ? rfd_now_ms() + timeout_ms : -1;
	call->callback = callback;
	call->user = user;
	call_link(client, call);
	if (call_id)
		*call_id = id;
	return 0;
}

int
rfd_client_oneway_async(struct rfd_client *client, const char *method, const void *args,
                        size_t args_len, const int *fds, size_t n_fds, enum rfd_fd_mode mode)
{
	return send_request(client, RFD_REQUEST_ONEWAY, method, args, args_len, fds, n_fds, mode, 0,
	                    NULL);
}

int
rfd_client_cancel(struct rfd_client *client, uint32_t call_id)
{
	struct call *call = call_find(client, call_id);

	if (!call)
		return -ENOENT;
	rfd_conn_abandon(client->conn, call_id);
	call_complete(client, call, -ECANCELED, NULL);
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

/* Poll and process until @done is set or the connection fails. */
static int
run_until(struct rfd_client *client, const bool *done, long long deadline_ms)
{
	while (!*done) {
		struct pollfd pfd = {.fd = client->sock, .events = rfd_client_events(client)};
		int wait = rfd_client_timeout(client);
		int r;

		if (deadline_ms >= 0) {
			long long left = deadline_ms - rfd_now_ms();

			if (left <= 0)
				return -ETIMEDOUT;
			if (wait < 0 || wait > left)
				wait = (int)left;
		}
		r = poll(&pfd, 1, wait);
		if (r < 0 && errno != EINTR)
			return -errno;
		r = rfd_client_process(client, r > 0 ? pfd.revents : 0);
		if (r < 0 && !*done)
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
	r = rfd_client_call_async(client, method, args, args_len, fds, n_fds, mode, timeout_ms,
	                          sync_call_done, &sync, NULL);
	if (r < 0)
		return r;
	r = run_until(client, &sync.done, -1);
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
