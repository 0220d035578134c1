/* SPDX-License-Identifier: MIT */
/* The server: an epoll loop over a listening Unix socket and one connection core per client. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <rocketfd/rocketfd.h>

#include "alloc.h"
#include "cmsg.h" /* RFD_CMSG_ALLOW_CREDENTIALS */
#include "conn.h"
#include "frame.h"
#include "io.h"
#include "peer.h"

enum {
	DEFAULT_MAX_CONNECTIONS = 1024,
	LISTEN_BACKLOG = 128,
	MAX_EVENTS = 64,
	MAX_READS_PER_WAKE = 16,
	MAX_PROBE_GAP = 16,         /* wake-ups that stop after FDs between two that read on */
	ACCEPT_PAUSE_MS = 100,      /* after EMFILE: wait for FDs to be freed instead of spinning */
	DEFAULT_SINK_CREDITS = 100, /* fbthrift's default sink buffer */
	MAX_SINK_CREDITS = 0x7FFFFFFF,
};

/* epoll user data: the listening socket, the stop eventfd, or a connection. */
enum { TAG_LISTEN = 1, TAG_STOP = 2 };

struct server_conn {
	struct server_conn *prev;
	struct server_conn *next;
	struct rfd_server *server; /* NULL once the connection is closed */
	int sock;
	struct rfd_conn *conn;
	/* Read at accept; requests reach it through their reference to this connection. */
	struct rfd_identity *identity;
	/* The credentials of the read being processed (pass_credentials), pid -1 when none. */
	struct rfd_peer read_sender;
	uint64_t id;
	uint32_t epoll_events;
	bool reading;  /* inside rfd_io_read(): handlers run, the core must stay */
	unsigned refs; /* the server's, plus one per request and stream handed out */
	/* Whether a read that brought FDs is followed by another: see read_flags(). */
	uint8_t probe_in;       /* wake-ups to go before one reads on (0: this one) */
	uint8_t probe_gap;      /* probe_in after a wake-up that read on in vain */
	unsigned wake_messages; /* requests and sink items delivered in this wake-up */
	/* The streams and sinks handed out and not ended. */
	struct rfd_stream *streams;
	struct rfd_sink *sinks;
};

struct rfd_server {
	int listen_fd;
	int epoll_fd;
	int stop_fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t socket_dev;
	ino_t socket_ino;
	rfd_handler_fn *handler;
	void *user;
	struct rfd_server_options options;
	struct rfd_identity_source identity_source;
	struct server_conn *conns;
	size_t n_conns;
	uint64_t last_conn_id;
	long long accept_paused_until; /* 0: accepting */
	volatile sig_atomic_t stopping;
	/* In rfd_server_run() without a deadline: see read_flags(). */
	bool runs_until_stopped;
};

void
rfd_server_options_init(struct rfd_server_options *options)
{
	options->socket_mode = 0;
	options->max_connections = DEFAULT_MAX_CONNECTIONS;
	rfd_limits_init(&options->limits);
	options->closed = NULL;
	options->trace = NULL;
	options->trace_user = NULL;
	options->pass_credentials = false;
	options->pidfd_fallback = false;
}

static bool streams_to_notify(const struct server_conn *sc);
static void stream_end(struct rfd_stream *stream, int why, enum rfd_stream_event event);
static void sink_end(struct rfd_sink *sink, int why);

/* ---- Connections ---- */

static void
conn_unref(struct server_conn *sc)
{
	assert(sc->refs > 0);
	if (--sc->refs > 0)
		return;
	rfd_identity_unref(sc->identity);
	rfd_free(sc);
}

/*
 * Close the socket and free the core (and every FD it owns).  Requests out
 * there keep @sc, and with it the peer's identity: its pidfd is closed with
 * the last of them (conn_unref()).
 */
static void
conn_close(struct server_conn *sc)
{
	struct rfd_server *server = sc->server;

	if (!server)
		return;
	epoll_ctl(server->epoll_fd, EPOLL_CTL_DEL, sc->sock, NULL);
	close(sc->sock);
	sc->sock = -1;
	rfd_conn_free(sc->conn);
	sc->conn = NULL;
	sc->server = NULL;

	if (sc->prev)
		sc->prev->next = sc->next;
	else
		server->conns = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	server->n_conns--;
	while (sc->streams)
		stream_end(sc->streams, -ENOTCONN, RFD_STREAM_CLOSED);
	while (sc->sinks)
		sink_end(sc->sinks, -ENOTCONN);
	if (server->options.closed)
		server->options.closed(server->user, sc->id);
	conn_unref(sc);
}

/* Flush, then watch for what the connection needs next; close it once it failed and is flushed. */
static void
conn_settle(struct server_conn *sc)
{
	struct epoll_event ev = {.data.ptr = sc};
	uint32_t want;

	rfd_io_flush(sc->sock, sc->conn);
	/* A handler answering from inside the read: the read finishes first, then settles. */
	if (sc->reading)
		return;
	if (rfd_conn_error(sc->conn) && rfd_conn_out_pending(sc->conn) == 0) {
		conn_close(sc);
		return;
	}
	if (rfd_conn_error(sc->conn)) {
		/* Give the final ERROR frame its chance, but read nothing more. */
		shutdown(sc->sock, SHUT_RD);
		want = EPOLLOUT;
	} else {
		/* A stream given credit outside the loop: the loop tells its handler. */
		want = EPOLLIN |
		       (rfd_conn_out_pending(sc->conn) || streams_to_notify(sc) ? EPOLLOUT : 0);
	}
	if (want == sc->epoll_events)
		return;
	ev.events = want;
	if (epoll_ctl(sc->server->epoll_fd, EPOLL_CTL_MOD, sc->sock, &ev) < 0) {
		conn_close(sc);
		return;
	}
	sc->epoll_events = want;
}

/* ---- Requests ---- */

/* rfd_msg_free() on a request nobody answered: the client gets an error instead of waiting. */
static void
request_release(struct rfd_msg *msg)
{
	struct server_conn *sc = msg->origin;

	msg->release = NULL;
	msg->origin = NULL;
	if (sc->server && msg->kind == RFD_MSG_REQUEST) {
		rfd_conn_send_error(sc->conn, msg->stream_id, RFD_FAIL_INTERNAL,
		                    "the server dropped the request without answering");
		conn_settle(sc);
	}
	conn_unref(sc);
}

/*
 * Take the request's connection for an answer; NULL (and the request freed)
 * if it is gone.  The FDs the handler did not take are closed first, before
 * the answer is queued (OWN-2, SVC-10).
 */
static struct server_conn *
request_detach(struct rfd_msg *request)
{
	struct server_conn *sc = request->origin;

	rfd_fdgroup_free(request->fds);
	request->fds = NULL;
	request->release = NULL;
	request->origin = NULL;
	if (!sc->server) {
		conn_unref(sc);
		rfd_msg_free(request);
		return NULL;
	}
	return sc;
}

/* After an answer: flush it, drop the request's reference and free the request. */
static int
request_answered(struct server_conn *sc, struct rfd_msg *request, int r)
{
	if (sc->server)
		conn_settle(sc);
	conn_unref(sc);
	rfd_msg_free(request);
	return r;
}

static bool
is_answerable(const struct rfd_msg *request)
{
	return request && request->kind == RFD_MSG_REQUEST && request->release == request_release;
}

int
rfd_reply(struct rfd_msg *request, const void *data, size_t len, const int *fds, size_t n_fds,
          enum rfd_fd_mode mode)
{
	struct rfd_fdgroup *group;
	struct server_conn *sc;
	int r;

	if (!is_answerable(request) || (!data && len)) {
		rfd_fds_discard(fds, n_fds, mode);
		return -EINVAL;
	}
	r = rfd_fds_prepare(fds, n_fds, mode, &group);
	sc = request_detach(request);
	if (!sc) {
		rfd_fdgroup_free(group);
		return -ENOTCONN;
	}
	if (r == 0)
		r = rfd_conn_send_reply(sc->conn, request->stream_id, data, len, group);
	else
		rfd_conn_send_error(sc->conn, request->stream_id, RFD_FAIL_INTERNAL,
		                    "the server could not send its reply's FDs");
	return request_answered(sc, request, r);
}

int
rfd_reply_exception_fds(struct rfd_msg *request, const char *name, const char *what,
                        const void *data, size_t len, const int *fds, size_t n_fds,
                        enum rfd_fd_mode mode)
{
	struct rfd_fdgroup *group;
	struct server_conn *sc;
	int r;

	if (!is_answerable(request) || !name || !what || (!data && len)) {
		rfd_fds_discard(fds, n_fds, mode);
		return -EINVAL;
	}
	if (n_fds > 0 && !(request->extensions & RFD_EXTENSION_EXCEPTION)) {
		rfd_fds_discard(fds, n_fds, mode);
		return -EOPNOTSUPP;
	}
	r = rfd_fds_prepare(fds, n_fds, mode, &group);
	sc = request_detach(request);
	if (!sc) {
		rfd_fdgroup_free(group);
		return -ENOTCONN;
	}
	if (r == 0)
		r = rfd_conn_send_exception(sc->conn, request->stream_id, name, what, data, len,
		                            group);
	else
		rfd_conn_send_error(sc->conn, request->stream_id, RFD_FAIL_INTERNAL,
		                    "the server could not send its exception's FDs");
	return request_answered(sc, request, r);
}

int
rfd_reply_exception(struct rfd_msg *request, const char *name, const char *what, const void *data,
                    size_t len)
{
	return rfd_reply_exception_fds(request, name, what, data, len, NULL, 0, RFD_FDS_DUP);
}

int
rfd_reply_error(struct rfd_msg *request, enum rfd_failure failure, const char *what)
{
	struct server_conn *sc;

	if (request && request->kind == RFD_MSG_ONEWAY) {
		rfd_msg_free(request);
		return 0;
	}
	if (!is_answerable(request) || !what)
		return -EINVAL;
	sc = request_detach(request);
	if (!sc)
		return -ENOTCONN;
	return request_answered(sc, request,
	                        rfd_conn_send_error(sc->conn, request->stream_id, failure, what));
}

static void
on_request(void *user, struct rfd_msg *request)
{
	struct server_conn *sc = user;

	request->origin = sc;
	request->release = request_release;
	/* The peer field of a request holds its sender; rfd_msg_peer() reads the identity. */
	request->peer = sc->read_sender;
	request->connection = sc->id;
	sc->refs++;
	sc->wake_messages++;
	sc->server->handler(sc->server->user, request);
}

static void on_stream_event(void *user, uint32_t stream_id, enum rfd_conn_stream_event event);
static void on_sink(void *user, uint32_t stream_id, int status, struct rfd_msg *msg);

static const struct rfd_conn_callbacks server_callbacks = {
    .request = on_request,
    .stream_event = on_stream_event,
    .sink = on_sink,
};

/* ---- Streams ---- */

struct rfd_stream {
	struct rfd_stream *prev;
	struct rfd_stream *next;
	struct server_conn *sc; /* holds a reference */
	uint32_t id;
	rfd_stream_event_fn *event;
	void *user;
	unsigned extensions; /* agreed on the connection: FDs on the exception that ends it */
	int ended;    /* 0 while in sc->streams; -ECANCELED after CANCEL, -ENOTCONN once closed */
	bool waiting; /* the handler was left without credit: tell it when there is some */
};

static void
stream_unlink(struct rfd_stream *stream)
{
	struct server_conn *sc = stream->sc;

	if (stream->prev)
		stream->prev->next = stream->next;
	else
		sc->streams = stream->next;
	if (stream->next)
		stream->next->prev = stream->prev;
	stream->prev = NULL;
	stream->next = NULL;
}

static struct rfd_stream *
stream_find(const struct server_conn *sc, uint32_t id)
{
	for (struct rfd_stream *stream = sc->streams; stream; stream = stream->next)
		if (stream->id == id)
			return stream;
	return NULL;
}

/* 0 while items may be sent on @stream, or why not. */
static int
stream_usable(const struct rfd_stream *stream)
{
	if (stream->ended)
		return stream->ended;
	return rfd_conn_error(stream->sc->conn);
}

static unsigned
stream_room(const struct rfd_stream *stream)
{
	if (stream_usable(stream) < 0)
		return 0;
	return rfd_conn_stream_credits(stream->sc->conn, stream->id);
}

/* Whether a stream left without credit has some now. */
static bool
stream_may_send(const struct rfd_stream *stream)
{
	return stream->waiting && stream_room(stream) > 0;
}

static bool
streams_to_notify(const struct server_conn *sc)
{
	for (const struct rfd_stream *stream = sc->streams; stream; stream = stream->next)
		if (stream_may_send(stream))
			return true;
	return false;
}

static void
stream_tell(struct rfd_stream *stream, enum rfd_stream_event event)
{
	if (stream->event)
		stream->event(stream->user, stream, event);
}

/* The stream ended for a reason of the client's or the connection's: its handler hears of it. */
static void
stream_end(struct rfd_stream *stream, int why, enum rfd_stream_event event)
{
	stream_unlink(stream);
	stream->ended = why;
	stream->waiting = false;
	stream_tell(stream, event);
}

/* Tell the handlers of the streams that were left without credit and have some again. */
static void
notify_streams(struct server_conn *sc)
{
	struct rfd_stream *stream = sc->streams;

	while (stream && sc->server) {
		if (!stream_may_send(stream)) {
			stream = stream->next;
			continue;
		}
		stream->waiting = false;
		stream_tell(stream, RFD_STREAM_CREDIT);
		/* The handler may have ended or freed streams: start over. */
		stream = sc->streams;
	}
}

/*
 * Watch for what the connection needs next, after a stream or sink call,
 * but never close it here: one that failed is left for the loop (EPOLLOUT
 * wakes it), so that handlers hear of it from there and not inside their
 * own call.
 */
static void
conn_rearm(struct server_conn *sc)
{
	struct epoll_event ev = {.data.ptr = sc};

	if (sc->reading)
		return;
	if (rfd_conn_error(sc->conn))
		ev.events = EPOLLOUT;
	else
		ev.events =
		    EPOLLIN |
		    (rfd_conn_out_pending(sc->conn) || streams_to_notify(sc) ? EPOLLOUT : 0);
	if (ev.events != sc->epoll_events &&
	    epoll_ctl(sc->server->epoll_fd, EPOLL_CTL_MOD, sc->sock, &ev) == 0)
		sc->epoll_events = ev.events;
}

/*
 * The streams of @sc left without room: the connection's FD budget for
 * unwritten items is theirs too, so a send on one stream may spend it for
 * all, and each is told when there is room again.
 */
static void
streams_mark_waiting(struct server_conn *sc)
{
	for (struct rfd_stream *stream = sc->streams; stream; stream = stream->next)
		if (!stream->waiting && stream_room(stream) == 0)
			stream->waiting = true;
}

/* conn_settle() after a stream call, through conn_rearm(). */
static void
stream_settle(struct rfd_stream *stream)
{
	struct server_conn *sc = stream->sc;

	if (!sc->server)
		return;
	rfd_io_flush(sc->sock, sc->conn);
	stream->waiting = stream_room(stream) == 0;
	if (stream->waiting)
		streams_mark_waiting(sc);
	conn_rearm(sc);
}

/* Forget @stream and free it. */
static void
stream_release(struct rfd_stream *stream)
{
	if (!stream->ended)
		stream_unlink(stream);
	conn_unref(stream->sc);
	rfd_free(stream);
}

static void
on_stream_event(void *user, uint32_t stream_id, enum rfd_conn_stream_event event)
{
	struct rfd_stream *stream = stream_find(user, stream_id);

	if (!stream)
		return;
	if (event == RFD_CONN_STREAM_CANCELLED) {
		stream_end(stream, -ECANCELED, RFD_STREAM_CANCELLED);
		return;
	}
	if (stream_may_send(stream)) {
		stream->waiting = false;
		stream_tell(stream, RFD_STREAM_CREDIT);
	}
}

int
rfd_reply_stream(struct rfd_msg *request, const void *data, size_t len, const int *fds,
                 size_t n_fds, enum rfd_fd_mode mode, rfd_stream_event_fn *event, void *user,
                 struct rfd_stream **out)
{
	struct rfd_fdgroup *group = NULL;
	struct rfd_stream *stream;
	struct server_conn *sc;
	int r;

	if (out)
		*out = NULL;
	if (!is_answerable(request) || !out || (!data && len)) {
		rfd_fds_discard(fds, n_fds, mode);
		return -EINVAL;
	}
	stream = rfd_calloc(1, sizeof(*stream));
	r = rfd_fds_prepare(fds, n_fds, mode, &group);
	sc = request_detach(request);
	if (!sc) {
		rfd_fdgroup_free(group);
		rfd_free(stream);
		return -ENOTCONN;
	}
	if (!stream || r < 0) {
		rfd_fdgroup_free(group);
		rfd_free(stream);
		rfd_conn_send_error(sc->conn, request->stream_id, RFD_FAIL_INTERNAL,
		                    "the server could not send its first response");
		return request_answered(sc, request, r < 0 ? r : -ENOMEM);
	}
	r = rfd_conn_stream_open(sc->conn, request->stream_id, data, len, group);
	if (r < 0) {
		rfd_free(stream);
		return request_answered(sc, request, r);
	}
	stream->sc = sc;
	stream->id = request->stream_id;
	stream->event = event;
	stream->user = user;
	stream->extensions = request->extensions;
	sc->refs++;
	request_answered(sc, request, 0);
	if (!sc->server) {
		stream_release(stream);
		return -ENOTCONN;
	}
	stream->next = sc->streams;
	if (sc->streams)
		sc->streams->prev = stream;
	sc->streams = stream;
	stream->waiting = stream_room(stream) == 0;
	*out = stream;
	return 0;
}

int
rfd_stream_send(struct rfd_stream *stream, const void *data, size_t len, const int *fds,
                size_t n_fds, enum rfd_fd_mode mode)
{
	struct rfd_fdgroup *group;
	int r;

	if (!stream || (!data && len)) {
		rfd_fds_discard(fds, n_fds, mode);
		return -EINVAL;
	}
	r = stream_usable(stream);
	if (r == 0 && stream_room(stream) == 0) {
		stream->waiting = true;
		r = -EAGAIN;
	}
	if (r < 0) {
		rfd_fds_discard(fds, n_fds, mode);
		return r;
	}
	r = rfd_fds_prepare(fds, n_fds, mode, &group);
	if (r < 0)
		return r;
	r = rfd_conn_stream_send(stream->sc->conn, stream->id, data, len, group);
	stream_settle(stream);
	return r;
}

unsigned
rfd_stream_credits(const struct rfd_stream *stream)
{
	return stream ? stream_room(stream) : 0;
}

/*
 * End the stream or sink @id with a declared exception and @fds; one whose
 * FDs cannot be prepared ends with ERROR 0x203 instead.
 */
static int
end_with_exception(struct rfd_conn *conn, uint32_t id, const char *name, const char *what,
                   const void *data, size_t len, const int *fds, size_t n_fds,
                   enum rfd_fd_mode mode)
{
	struct rfd_fdgroup *group;
	int r = rfd_fds_prepare(fds, n_fds, mode, &group);

	if (r < 0) {
		rfd_conn_stream_error(conn, id, RFD_ERROR_CANCELED,
		                      "the server could not send its exception's FDs");
		return r;
	}
	return rfd_conn_stream_exception(conn, id, name, what, data, len, group);
}

/* Send a stream's last message (@r its result), then free the stream. */
static int
stream_finish(struct rfd_stream *stream, int r)
{
	stream_settle(stream);
	stream_release(stream);
	return r;
}

int
rfd_stream_complete(struct rfd_stream *stream)
{
	int r;

	if (!stream)
		return -EINVAL;
	r = stream_usable(stream);
	if (r == 0)
		r = rfd_conn_stream_complete(stream->sc->conn, stream->id);
	return stream_finish(stream, r);
}

int
rfd_stream_exception(struct rfd_stream *stream, const char *name, const char *what,
                     const void *data, size_t len, const int *fds, size_t n_fds,
                     enum rfd_fd_mode mode)
{
	int r;

	if (!stream || !name || !what || (!data && len)) {
		rfd_fds_discard(fds, n_fds, mode);
		return -EINVAL;
	}
	if (n_fds > 0 && !(stream->extensions & RFD_EXTENSION_EXCEPTION)) {
		rfd_fds_discard(fds, n_fds, mode);
		return -EOPNOTSUPP;
	}
	r = stream_usable(stream);
	if (r == 0)
		r = end_with_exception(stream->sc->conn, stream->id, name, what, data, len, fds,
		                       n_fds, mode);
	else
		rfd_fds_discard(fds, n_fds, mode);
	return stream_finish(stream, r);
}

int
rfd_stream_error(struct rfd_stream *stream, const char *what)
{
	int r;

	if (!stream || !what)
		return -EINVAL;
	r = stream_usable(stream);
	if (r == 0)
		r = rfd_conn_stream_error(stream->sc->conn, stream->id, RFD_ERROR_APPLICATION_ERROR,
		                          what);
	return stream_finish(stream, r);
}

void
rfd_stream_free(struct rfd_stream *stream)
{
	if (!stream)
		return;
	if (stream_usable(stream) == 0)
		rfd_conn_stream_error(stream->sc->conn, stream->id, RFD_ERROR_CANCELED,
		                      "the server dropped the stream without ending it");
	stream_finish(stream, 0);
}

/* ---- Sinks ---- */

struct rfd_sink {
	struct rfd_sink *prev;
	struct rfd_sink *next;
	struct server_conn *sc; /* holds a reference */
	uint32_t id;
	rfd_sink_fn *callback;
	void *user;
	unsigned extensions; /* agreed on the connection: FDs on the final response, exception */
	unsigned window;     /* credits granted at once */
	unsigned consumed;   /* items handed over since credit was last granted */
	int ended;           /* 0 while in sc->sinks; then the status its callback got */
};

static void
sink_unlink(struct rfd_sink *sink)
{
	struct server_conn *sc = sink->sc;

	if (sink->prev)
		sink->prev->next = sink->next;
	else
		sc->sinks = sink->next;
	if (sink->next)
		sink->next->prev = sink->prev;
	sink->prev = NULL;
	sink->next = NULL;
}

static struct rfd_sink *
sink_find(const struct server_conn *sc, uint32_t id)
{
	for (struct rfd_sink *sink = sc->sinks; sink; sink = sink->next)
		if (sink->id == id)
			return sink;
	return NULL;
}

/* 0 while @sink may be answered, or why not. */
static int
sink_usable(const struct rfd_sink *sink)
{
	if (sink->ended)
		return sink->ended;
	return rfd_conn_error(sink->sc->conn);
}

/* The sink ended for a reason of the client's or the connection's: its handler hears of it. */
static void
sink_end(struct rfd_sink *sink, int why)
{
	sink_unlink(sink);
	sink->ended = why;
	sink->callback(sink->user, sink, why, NULL);
}

/*
 * An item reached the handler: once half the window has, grant as many
 * again, as fbthrift's server does.
 * Limitation: an item counts as consumed when its callback gets it; a
 * handler that cannot keep up has to buffer, or answer the sink early.
 */
static void
sink_consumed(struct rfd_sink *sink)
{
	if (++sink->consumed < sink->window - sink->window / 2)
		return;
	if (rfd_conn_sink_request(sink->sc->conn, sink->id, sink->consumed) == 0)
		sink->consumed = 0;
}

static void
on_sink(void *user, uint32_t stream_id, int status, struct rfd_msg *msg)
{
	struct rfd_sink *sink = sink_find(user, stream_id);

	if (!sink) {
		rfd_msg_free(msg);
		return;
	}
	if (msg) {
		((struct server_conn *)user)->wake_messages++;
		sink_consumed(sink);
	}
	if (status < 0)
		sink_end(sink, status);
	else
		sink->callback(sink->user, sink, 0, msg);
}

static void
sink_settle(struct rfd_sink *sink)
{
	struct server_conn *sc = sink->sc;

	if (!sc->server)
		return;
	rfd_io_flush(sc->sock, sc->conn);
	conn_rearm(sc);
}

/* Forget @sink and free it, after its last call (@r its result). */
static int
sink_release(struct rfd_sink *sink, int r)
{
	sink_settle(sink);
	if (!sink->ended)
		sink_unlink(sink);
	conn_unref(sink->sc);
	rfd_free(sink);
	return r;
}

int
rfd_reply_sink(struct rfd_msg *request, const void *data, size_t len, const int *fds, size_t n_fds,
               enum rfd_fd_mode mode, unsigned credits, rfd_sink_fn *callback, void *user,
               struct rfd_sink **out)
{
	struct rfd_fdgroup *group = NULL;
	struct rfd_sink *sink;
	struct server_conn *sc;
	int r;

	if (out)
		*out = NULL;
	if (!is_answerable(request) || !out || !callback || (!data && len) ||
	    credits > MAX_SINK_CREDITS) {
		rfd_fds_discard(fds, n_fds, mode);
		return -EINVAL;
	}
	sink = rfd_calloc(1, sizeof(*sink));
	r = rfd_fds_prepare(fds, n_fds, mode, &group);
	sc = request_detach(request);
	if (!sc) {
		rfd_fdgroup_free(group);
		rfd_free(sink);
		return -ENOTCONN;
	}
	if (!sink || r < 0) {
		rfd_fdgroup_free(group);
		rfd_free(sink);
		rfd_conn_send_error(sc->conn, request->stream_id, RFD_FAIL_INTERNAL,
		                    "the server could not send its first response");
		return request_answered(sc, request, r < 0 ? r : -ENOMEM);
	}
	r = rfd_conn_sink_open(sc->conn, request->stream_id, data, len, group);
	if (r < 0) {
		rfd_free(sink);
		return request_answered(sc, request, r);
	}
	sink->sc = sc;
	sink->id = request->stream_id;
	sink->callback = callback;
	sink->user = user;
	sink->extensions = request->extensions;
	sink->window = credits ? credits : DEFAULT_SINK_CREDITS;
	sc->refs++;
	r = rfd_conn_sink_request(sc->conn, sink->id, sink->window);
	if (r < 0)
		rfd_conn_stream_error(sc->conn, sink->id, RFD_ERROR_CANCELED,
		                      "the server could not grant credit");
	request_answered(sc, request, 0);
	if (!sc->server || r < 0) {
		sink->ended = r < 0 ? r : -ENOTCONN;
		return sink_release(sink, sink->ended);
	}
	sink->next = sc->sinks;
	if (sc->sinks)
		sc->sinks->prev = sink;
	sc->sinks = sink;
	*out = sink;
	return 0;
}

int
rfd_sink_request(struct rfd_sink *sink, unsigned n)
{
	int r;

	if (!sink || n == 0 || n > MAX_SINK_CREDITS)
		return -EINVAL;
	r = sink_usable(sink);
	if (r == 0)
		r = rfd_conn_sink_request(sink->sc->conn, sink->id, n);
	sink_settle(sink);
	return r;
}

int
rfd_sink_finish(struct rfd_sink *sink, const void *data, size_t len, const int *fds, size_t n_fds,
                enum rfd_fd_mode mode)
{
	struct rfd_fdgroup *group;
	int r;

	if (!sink || (!data && len)) {
		rfd_fds_discard(fds, n_fds, mode);
		return -EINVAL;
	}
	if (n_fds > 0 && !(sink->extensions & RFD_EXTENSION_SINK)) {
		rfd_fds_discard(fds, n_fds, mode);
		return -EOPNOTSUPP;
	}
	r = sink_usable(sink);
	if (r < 0) {
		rfd_fds_discard(fds, n_fds, mode);
		return sink_release(sink, r);
	}
	r = rfd_fds_prepare(fds, n_fds, mode, &group);
	if (r == 0)
		r = rfd_conn_sink_finish(sink->sc->conn, sink->id, data, len, group);
	else
		rfd_conn_stream_error(sink->sc->conn, sink->id, RFD_ERROR_CANCELED,
		                      "the server could not send its final response's FDs");
	return sink_release(sink, r);
}

int
rfd_sink_exception(struct rfd_sink *sink, const char *name, const char *what, const void *data,
                   size_t len, const int *fds, size_t n_fds, enum rfd_fd_mode mode)
{
	int r;

	if (!sink || !name || !what || (!data && len)) {
		rfd_fds_discard(fds, n_fds, mode);
		return -EINVAL;
	}
	if (n_fds > 0 && !(sink->extensions & RFD_EXTENSION_EXCEPTION)) {
		rfd_fds_discard(fds, n_fds, mode);
		return -EOPNOTSUPP;
	}
	r = sink_usable(sink);
	if (r == 0)
		r = end_with_exception(sink->sc->conn, sink->id, name, what, data, len, fds, n_fds,
		                       mode);
	else
		rfd_fds_discard(fds, n_fds, mode);
	return sink_release(sink, r);
}

int
rfd_sink_error(struct rfd_sink *sink, const char *what)
{
	int r;

	if (!sink || !what)
		return -EINVAL;
	r = sink_usable(sink);
	if (r == 0)
		r = rfd_conn_stream_error(sink->sc->conn, sink->id, RFD_ERROR_APPLICATION_ERROR,
		                          what);
	return sink_release(sink, r);
}

void
rfd_sink_free(struct rfd_sink *sink)
{
	if (!sink)
		return;
	if (sink_usable(sink) == 0)
		rfd_conn_stream_error(sink->sc->conn, sink->id, RFD_ERROR_CANCELED,
		                      "the server dropped the sink without ending it");
	sink_release(sink, 0);
}

/* ---- The peer's identity, per request ---- */

/* The identity a request came with, or NULL for messages that are not a server's requests. */
static const struct rfd_identity *
request_identity(const struct rfd_msg *msg)
{
	const struct server_conn *sc;

	if (!msg || msg->release != request_release)
		return NULL;
	sc = msg->origin;
	return sc->identity;
}

const struct rfd_peer *
rfd_msg_peer(const struct rfd_msg *msg)
{
	const struct rfd_identity *identity = request_identity(msg);

	return identity ? &identity->cred : &rfd_peer_unknown;
}

int
rfd_msg_peer_pidfd(const struct rfd_msg *msg)
{
	const struct rfd_identity *identity = request_identity(msg);

	return identity ? identity->pidfd : -1;
}

bool
rfd_msg_peer_pinned(const struct rfd_msg *msg)
{
	const struct rfd_identity *identity = request_identity(msg);

	return identity && identity->pinned;
}

int
rfd_msg_sender(const struct rfd_msg *msg, struct rfd_peer *out)
{
	if (!msg || !out)
		return -EINVAL;
	if (!request_identity(msg) || msg->peer.pid < 0)
		return -ENODATA;
	*out = msg->peer;
	return 0;
}

/* ---- Accepting ---- */

static void
add_connection(struct rfd_server *server, int sock)
{
	struct rfd_conn_callbacks callbacks = server_callbacks;
	struct epoll_event ev = {.events = EPOLLIN};
	struct server_conn *sc;

	if (server->n_conns >= server->options.max_connections) {
		close(sock);
		return;
	}
	sc = rfd_calloc(1, sizeof(*sc));
	if (!sc) {
		close(sock);
		return;
	}
	sc->sock = sock;
	sc->refs = 1;
	sc->id = ++server->last_conn_id;
	sc->read_sender = rfd_peer_unknown;
	callbacks.trace = server->options.trace;
	callbacks.trace_user = server->options.trace_user;
	if (rfd_identity_new(sock, &server->identity_source, &sc->identity) == 0)
		sc->conn = rfd_conn_new(RFD_ROLE_SERVER, &server->options.limits, &callbacks, sc);
	ev.data.ptr = sc;
	if (!sc->conn || epoll_ctl(server->epoll_fd, EPOLL_CTL_ADD, sock, &ev) < 0) {
		rfd_conn_free(sc->conn);
		rfd_identity_unref(sc->identity);
		rfd_free(sc);
		close(sock);
		return;
	}
	sc->epoll_events = EPOLLIN;
	sc->probe_gap = 1;
	sc->server = server;
	sc->next = server->conns;
	if (server->conns)
		server->conns->prev = sc;
	server->conns = sc;
	server->n_conns++;
}

static void
set_accepting(struct rfd_server *server, bool on)
{
	struct epoll_event ev = {.events = on ? EPOLLIN : 0, .data.u64 = TAG_LISTEN};

	epoll_ctl(server->epoll_fd, EPOLL_CTL_MOD, server->listen_fd, &ev);
}

static void
accept_connections(struct rfd_server *server)
{
	for (;;) {
		int sock = accept4(server->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (sock >= 0) {
			add_connection(server, sock);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			/* The pending connection stays in the backlog; try again later. */
			server->accept_paused_until = rfd_now_ms() + ACCEPT_PAUSE_MS;
			set_accepting(server, false);
		}
		return;
	}
}

/*
 * A read that brought FDs may have stopped at their message with more
 * queued.  Reading on finds out, and costs a read that says EAGAIN when
 * nothing more was queued, as with a client making one call at a time.
 * Stopping (RFD_IO_LEVEL: epoll is level-triggered here, so what is left
 * wakes the loop again) costs an epoll_wait() per message when calls are
 * pipelined.  So a connection reads on while that brings more than one
 * message per wake-up; once it did not, it stops, and tries again after 1,
 * 2, 4 ... up to MAX_PROBE_GAP wake-ups.  When several connections are
 * ready at once, each reads on as before: stopping there was measured to
 * cost a client with one call in flight on each of several connections
 * more than the read it spares (more context switches when client and
 * server share a core).  Only rfd_server_run() without a deadline stops:
 * a caller that runs the server with a deadline may watch rfd_server_fd()
 * edge-triggered, and input left behind would then wait for an edge that
 * does not come.
 */
static unsigned
read_flags(struct server_conn *sc, int n_ready)
{
	if (n_ready > 1 || !sc->server->runs_until_stopped)
		return 0;
	if (sc->probe_in == 0)
		return 0;
	sc->probe_in--;
	return RFD_IO_LEVEL;
}

static void
learn_read_flags(struct server_conn *sc, unsigned flags)
{
	if (flags & RFD_IO_LEVEL)
		return;
	if (sc->wake_messages > 1) {
		sc->probe_gap = 1;
		return;
	}
	sc->probe_in = sc->probe_gap;
	if (sc->probe_gap < MAX_PROBE_GAP)
		sc->probe_gap *= 2;
}

/* @n_ready: how many events the wake-up brought, this one included. */
static void
serve_connection(struct server_conn *sc, uint32_t events, int n_ready)
{
	/* Handlers may free what else holds @sc. */
	sc->refs++;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		unsigned allow =
		    sc->server->options.pass_credentials ? RFD_CMSG_ALLOW_CREDENTIALS : 0;
		unsigned flags = read_flags(sc, n_ready);

		sc->reading = true;
		sc->wake_messages = 0;
		rfd_io_read_sender(sc->sock, sc->conn, allow, MAX_READS_PER_WAKE, flags,
		                   &sc->read_sender);
		sc->reading = false;
		sc->read_sender = rfd_peer_unknown;
		learn_read_flags(sc, flags);
	}
	/* A handler may have closed the server's view of it; settle only a live connection. */
	if (sc->server)
		conn_settle(sc);
	if (sc->server)
		notify_streams(sc);
	if (sc->server)
		conn_settle(sc);
	conn_unref(sc);
}

/* ---- The loop ---- */

static int
wait_time(const struct rfd_server *server, int timeout_ms)
{
	long long left;

	if (!server->accept_paused_until)
		return timeout_ms;
	left = server->accept_paused_until - rfd_now_ms();
	if (left < 0)
		left = 0;
	return timeout_ms >= 0 && timeout_ms < left ? timeout_ms : (int)left;
}

int
rfd_server_run(struct rfd_server *server, int timeout_ms)
{
	long long deadline = timeout_ms < 0 ? -1 : rfd_now_ms() + timeout_ms;

	server->runs_until_stopped = deadline < 0;
	while (!server->stopping) {
		struct epoll_event events[MAX_EVENTS];
		int wait = deadline < 0 ? -1 : (int)(deadline - rfd_now_ms());
		int n;

		if (wait < 0 && deadline >= 0)
			wait = 0;
		n = epoll_wait(server->epoll_fd, events, MAX_EVENTS, wait_time(server, wait));
		if (n < 0 && errno != EINTR)
			return -errno;

		if (server->accept_paused_until && rfd_now_ms() >= server->accept_paused_until) {
			server->accept_paused_until = 0;
			set_accepting(server, true);
		}
		for (int i = 0; i < n; i++) {
			if (events[i].data.u64 == TAG_STOP)
				server->stopping = 1;
			else if (events[i].data.u64 == TAG_LISTEN)
				accept_connections(server);
			else
				serve_connection(events[i].data.ptr, events[i].events, n);
		}
		if (deadline >= 0 && rfd_now_ms() >= deadline)
			break;
	}
	if (server->stopping) {
		uint64_t count;

		/* Re-arm: the next run serves again until stopped again. */
		while (read(server->stop_fd, &count, sizeof(count)) > 0)
			;
		server->stopping = 0;
	}
	return 0;
}

void
rfd_server_stop(struct rfd_server *server)
{
	uint64_t one = 1;
	int saved_errno = errno;

	if (write(server->stop_fd, &one, sizeof(one)) < 0) {
		/* The counter is already non-zero: a stop is pending anyway. */
	}
	errno = saved_errno;
}

int
rfd_server_fd(const struct rfd_server *server)
{
	return server->epoll_fd;
}

size_t
rfd_server_connections(const struct rfd_server *server)
{
	return server->n_conns;
}

/* ---- Listening ---- */

/* Is something accepting connections at @path? */
static bool
socket_in_use(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool in_use;

	if (sock < 0)
		return true;
	memcpy(addr.sun_path, path, strlen(path));
	in_use =
	    connect(sock, (struct sockaddr *)&addr, sizeof(addr)) == 0 || errno != ECONNREFUSED;
	close(sock);
	return in_use;
}

static int
bind_socket(struct rfd_server *server, const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct stat st;

	memcpy(addr.sun_path, path, strlen(path));
	if (bind(server->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		if (errno != EADDRINUSE)
			return -errno;
		/* Replace a stale socket file, and nothing else. */
		if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode) || socket_in_use(path))
			return -EADDRINUSE;
		if (unlink(path) < 0 && errno != ENOENT)
			return -errno;
		if (bind(server->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
			return -errno;
	}
	if (server->options.socket_mode && chmod(path, server->options.socket_mode) < 0) {
		int r = -errno;

		unlink(path);
		return r;
	}
	if (lstat(path, &st) < 0) {
		int r = -errno;

		unlink(path);
		return r;
	}
	server->socket_dev = st.st_dev;
	server->socket_ino = st.st_ino;
	return 0;
}

/*
 * SO_PASSCRED goes on the listening socket: accepted sockets inherit it at
 * accept, and the kernel attaches credentials to what a client writes before
 * the accept too.  Set on the accepted socket instead, it would leave bytes
 * written between accept and setsockopt without credentials.
 */
static int
pass_credentials(struct rfd_server *server)
{
	int on = 1;

	if (!server->options.pass_credentials)
		return 0;
	if (setsockopt(server->listen_fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0)
		return -errno;
	return 0;
}

static int
add_to_epoll(int epoll_fd, int fd, uint64_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};

	return epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int
rfd_server_listen(const char *path, const struct rfd_server_options *options,
                  rfd_handler_fn *handler, void *user, struct rfd_server **out)
{
	struct rfd_server *server;
	int r;

	*out = NULL;
	if (!path || !*path || !handler)
		return -EINVAL;
	server = rfd_calloc(1, sizeof(*server));
	if (!server)
		return -ENOMEM;
	if (strlen(path) >= sizeof(server->path)) {
		rfd_free(server);
		return -ENAMETOOLONG;
	}
	memcpy(server->path, path, strlen(path));
	server->handler = handler;
	server->user = user;
	if (options)
		server->options = *options;
	else
		rfd_server_options_init(&server->options);
	server->identity_source.peer_pidfd_error = server->options.pidfd_fallback ? ENOPROTOOPT : 0;
	server->listen_fd = -1;
	server->stop_fd = -1;

	server->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (server->epoll_fd < 0) {
		r = -errno;
		rfd_free(server);
		return r;
	}
	server->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	server->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (server->stop_fd < 0 || server->listen_fd < 0) {
		r = -errno;
		goto fail;
	}
	r = pass_credentials(server);
	if (r < 0)
		goto fail;
	r = bind_socket(server, path);
	if (r < 0)
		goto fail;
	if (listen(server->listen_fd, LISTEN_BACKLOG) < 0) {
		r = -errno;
		unlink(path);
		goto fail;
	}
	r = add_to_epoll(server->epoll_fd, server->listen_fd, TAG_LISTEN);
	if (r == 0)
		r = add_to_epoll(server->epoll_fd, server->stop_fd, TAG_STOP);
	if (r < 0) {
		unlink(path);
		goto fail;
	}
	*out = server;
	return 0;

fail:
	server->path[0] = '\0';
	rfd_server_free(server);
	return r;
}

void
rfd_server_free(struct rfd_server *server)
{
	struct stat st;

	if (!server)
		return;
	while (server->conns)
		conn_close(server->conns);
	/* Remove the socket file only if it is still ours. */
	if (server->path[0] && lstat(server->path, &st) == 0 && st.st_dev == server->socket_dev &&
	    st.st_ino == server->socket_ino)
		unlink(server->path);
	if (server->listen_fd >= 0)
		close(server->listen_fd);
	if (server->stop_fd >= 0)
		close(server->stop_fd);
	if (server->epoll_fd >= 0)
		close(server->epoll_fd);
	rfd_free(server);
}
