/* SPDX-License-Identifier: MIT */
/*
 * The physical limit: requests and replies of rocketfd's byte counts sent
 * with plain sendmsg/recvmsg, the request carrying the same FDs, which the
 * echo process closes.  One connection is served by a blocking loop (the
 * fewest syscalls there can be); several by an epoll loop.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench.h"

enum {
	IO_BUFFER = 64 * 1024,
	MAX_EVENTS = 64,
	WARMUP_CALLS = 200,
};

struct raw_server {
	int pair_fd; /* the server's end of a socketpair, or -1 */
	char path[108];
	bool many; /* several connections: the epoll loop */
	size_t request;
	size_t reply;
};

struct raw_peer {
	int sock;
	size_t pending; /* bytes of an incomplete request or reply */
};

static uint8_t zeros[IO_BUFFER];

/* ---- The echo process ---- */

static void
close_rights(struct msghdr *msg)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			close(fd);
		}
	}
}

static int
send_all(int sock, const uint8_t *bytes, size_t len)
{
	while (len > 0) {
		ssize_t n = send(sock, bytes, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		bytes += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
send_replies(int sock, size_t count, size_t reply)
{
	size_t total = count * reply;

	while (total > 0) {
		size_t chunk = total < sizeof(zeros) ? total : sizeof(zeros) / reply * reply;
		int r = send_all(sock, zeros, chunk);

		if (r < 0)
			return r;
		total -= chunk;
	}
	return 0;
}

/* Read what is there, close its FDs, answer every complete request.  0 at EOF. */
static int __attribute__((noinline))
echo_once(const struct raw_server *server, struct raw_peer *peer, int flags)
{
	static uint8_t buffer[IO_BUFFER];
	union {
		struct cmsghdr align;
		uint8_t bytes[CMSG_SPACE(MAX_FDS_PER_CALL * sizeof(int))];
	} control;
	struct iovec iov = {.iov_base = buffer, .iov_len = sizeof(buffer)};
	struct msghdr msg = {.msg_iov = &iov,
	                     .msg_iovlen = 1,
	                     .msg_control = &control,
	                     .msg_controllen = sizeof(control)};
	ssize_t n = recvmsg(peer->sock, &msg, MSG_CMSG_CLOEXEC | flags);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 1 : -errno;
	if (n == 0)
		return 0;
	close_rights(&msg);
	peer->pending += (size_t)n;
	if (peer->pending >= server->request) {
		size_t complete = peer->pending / server->request;

		peer->pending %= server->request;
		if (send_replies(peer->sock, complete, server->reply) < 0)
			return 0;
	}
	return 1;
}

static int
listen_at(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (sock < 0)
		return -errno;
	memcpy(addr.sun_path, path, strlen(path));
	unlink(path);
	if (bind(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(sock, 1024) < 0) {
		int r = -errno;

		close(sock);
		return r;
	}
	return sock;
}

static void
serve_one(const struct raw_server *server, int listen_fd, int ready_fd)
{
	struct raw_peer peer = {.sock = server->pair_fd};

	child_ready(ready_fd);
	if (peer.sock < 0)
		peer.sock = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (peer.sock < 0)
		_exit(2);
	while (echo_once(server, &peer, 0) > 0)
		;
	_exit(0);
}

static void
serve_many(const struct raw_server *server, int listen_fd, int ready_fd)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	int epoll_fd = epoll_create1(EPOLL_CLOEXEC);

	if (epoll_fd < 0 || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev) < 0)
		_exit(2);
	child_ready(ready_fd);
	for (;;) {
		struct epoll_event events[MAX_EVENTS];
		int n = epoll_wait(epoll_fd, events, MAX_EVENTS, -1);

		for (int i = 0; i < n; i++) {
			struct raw_peer *peer = events[i].data.ptr;

			if (!peer) {
				int sock = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

				peer = sock >= 0 ? calloc(1, sizeof(*peer)) : NULL;
				if (!peer)
					continue;
				peer->sock = sock;
				ev.data.ptr = peer;
				epoll_ctl(epoll_fd, EPOLL_CTL_ADD, sock, &ev);
				continue;
			}
			if (echo_once(server, peer, MSG_DONTWAIT) <= 0) {
				epoll_ctl(epoll_fd, EPOLL_CTL_DEL, peer->sock, NULL);
				close(peer->sock);
				free(peer);
			}
		}
	}
}

static void
raw_server_main(void *arg, int ready_fd)
{
	const struct raw_server *server = arg;
	int listen_fd = -1;

	signal(SIGTERM, SIG_DFL);
	if (server->pair_fd < 0) {
		listen_fd = listen_at(server->path);
		if (listen_fd < 0)
			_exit(2);
	}
	if (server->many)
		serve_many(server, listen_fd, ready_fd);
	else
		serve_one(server, listen_fd, ready_fd);
}

static int
raw_server_start(struct raw_server *server, struct child *child)
{
	int r = child_start(child, raw_server_main, server);

	if (server->pair_fd >= 0)
		close(server->pair_fd);
	server->pair_fd = -1;
	return r;
}

static void
raw_server_stop(struct raw_server *server, struct child *child)
{
	child_stop(child);
	if (server->path[0])
		unlink(server->path);
}

/* ---- Clients ---- */

static int
connect_to(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (sock < 0)
		return -errno;
	memcpy(addr.sun_path, path, strlen(path));
	if (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int r = -errno;

		close(sock);
		return r;
	}
	return sock;
}

static int
send_request(int sock, size_t len, const int *fds, size_t n_fds)
{
	union {
		struct cmsghdr align;
		uint8_t bytes[CMSG_SPACE(MAX_FDS_PER_CALL * sizeof(int))];
	} control;
	struct iovec iov = {.iov_base = zeros, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (n_fds) {
		struct cmsghdr *c;

		memset(&control, 0, CMSG_SPACE(n_fds * sizeof(int)));
		msg.msg_control = &control;
		msg.msg_controllen = CMSG_SPACE(n_fds * sizeof(int));
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, n_fds * sizeof(int));
	}
	n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	/* Requests are small: a short write here would be a kernel surprise worth failing on. */
	return (size_t)n == len ? 0 : -EIO;
}

static int
recv_reply(int sock, size_t len)
{
	static uint8_t buffer[IO_BUFFER];
	ssize_t n = recv(sock, buffer, len, MSG_WAITALL);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -ECONNRESET;
}

/* Bench FDs: n copies of one /dev/null FD (the kernel takes its own references). */
static int
open_fds(int *fds, size_t n)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	for (size_t i = 0; i < n; i++)
		fds[i] = fd;
	return fd;
}

/* One request and its reply.  Not inlined: callgrind.sh counts its instructions. */
static int __attribute__((noinline))
pingpong_once(int sock, const int *fds, size_t n_fds, const struct wire_size *wire)
{
	int r = send_request(sock, wire->request, fds, n_fds);

	return r < 0 ? r : recv_reply(sock, wire->reply);
}

static int
pingpong_loop(const struct bench_config *config, int sock, size_t n_fds,
              const struct wire_size *wire, struct measure *out)
{
	int fds[MAX_FDS_PER_CALL];
	int null_fd = open_fds(fds, n_fds);
	struct run_budget budget;
	struct samples samples;
	uint64_t start;
	long calls = 0;
	int r = 0;

	if (null_fd < 0)
		return null_fd;
	if (samples_init(&samples, MAX_SAMPLES) < 0) {
		close(null_fd);
		return -ENOMEM;
	}
	for (int i = 0; i < WARMUP_CALLS && r == 0; i++)
		r = pingpong_once(sock, fds, n_fds, wire);
	run_budget_start(&budget, config, 1.0);
	start = now_ns();
	while (r == 0 && run_budget_more(&budget, calls)) {
		uint64_t t0 = now_ns();

		r = pingpong_once(sock, fds, n_fds, wire);
		samples_add(&samples, now_ns() - t0);
		calls++;
	}
	if (r == 0)
		measure_from(out, &samples, calls, now_ns() - start);
	else
		measure_fail(out, r, "raw ping-pong");
	samples_free(&samples);
	close(null_fd);
	return r;
}

int
raw_pingpong(const struct bench_config *config, enum raw_transport transport, size_t n_fds,
             const struct wire_size *wire, struct measure *out)
{
	struct raw_server server = {.pair_fd = -1, .request = wire->request, .reply = wire->reply};
	struct child child;
	int sock = -1, r;

	assert(config);
	assert(wire);
	assert(out);

	if (transport == RAW_SOCKETPAIR) {
		int pair[2];

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
			return -errno;
		server.pair_fd = pair[1];
		sock = pair[0];
	} else {
		socket_path(config, server.path, sizeof(server.path));
	}
	r = raw_server_start(&server, &child);
	if (r == 0 && transport == RAW_PATH) {
		sock = connect_to(server.path);
		r = sock < 0 ? sock : 0;
	}
	if (r == 0)
		r = pingpong_loop(config, sock, n_fds, wire, out);
	else
		measure_fail(out, r, "raw echo server");
	if (sock >= 0)
		close(sock);
	raw_server_stop(&server, &child);
	return r;
}

/* ---- Pipelined ---- */

struct pipeline {
	const struct wire_size *wire;
	const int *fds;
	size_t n_fds;
	unsigned in_flight;
	struct raw_peer *peers;
	uint64_t *sent_at; /* per peer, a ring of in_flight send times */
	unsigned *ring_head;
	unsigned *outstanding;
	struct samples samples;
	long calls;
	bool measuring;
};

static int
pipeline_send(struct pipeline *p, unsigned peer)
{
	unsigned slot = (p->ring_head[peer] + p->outstanding[peer]) % p->in_flight;
	int r;

	p->sent_at[(size_t)peer * p->in_flight + slot] = now_ns();
	r = send_request(p->peers[peer].sock, p->wire->request, p->fds, p->n_fds);
	if (r == 0)
		p->outstanding[peer]++;
	return r;
}

static int
pipeline_receive(struct pipeline *p, unsigned peer, bool more)
{
	static uint8_t buffer[IO_BUFFER];
	struct raw_peer *rp = &p->peers[peer];
	ssize_t n = recv(rp->sock, buffer, sizeof(buffer), MSG_DONTWAIT);
	size_t complete;

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET;
	rp->pending += (size_t)n;
	complete = rp->pending / p->wire->reply;
	rp->pending %= p->wire->reply;
	for (size_t i = 0; i < complete; i++) {
		uint64_t sent = p->sent_at[(size_t)peer * p->in_flight + p->ring_head[peer]];

		p->ring_head[peer] = (p->ring_head[peer] + 1) % p->in_flight;
		p->outstanding[peer]--;
		if (p->measuring) {
			samples_add(&p->samples, now_ns() - sent);
			p->calls++;
		}
		if (more) {
			int r = pipeline_send(p, peer);

			if (r < 0)
				return r;
		}
	}
	return 0;
}

static long
pipeline_outstanding(const struct pipeline *p, unsigned conns)
{
	long total = 0;

	for (unsigned i = 0; i < conns; i++)
		total += p->outstanding[i];
	return total;
}

static int
pipeline_run(const struct bench_config *config, struct pipeline *p, unsigned conns,
             struct measure *out)
{
	struct run_budget budget, warmup;
	int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	uint64_t start = 0;
	int r = 0;

	if (epoll_fd < 0)
		return -errno;
	for (unsigned i = 0; i < conns && r == 0; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};

		if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, p->peers[i].sock, &ev) < 0)
			r = -errno;
		for (unsigned k = 0; k < p->in_flight && r == 0; k++)
			r = pipeline_send(p, i);
	}
	run_budget_start(&warmup, config, 0.1);
	warmup.exact_calls = config->iterations > 0 ? WARMUP_CALLS : 0;
	while (r == 0) {
		struct epoll_event events[MAX_EVENTS];
		bool more;
		int n;

		if (!p->measuring && !run_budget_more(&warmup, p->calls)) {
			p->measuring = true;
			p->calls = 0;
			samples_reset(&p->samples);
			run_budget_start(&budget, config, 1.0);
			start = now_ns();
		}
		more = !p->measuring || run_budget_more(&budget, p->calls);
		if (!more && pipeline_outstanding(p, conns) == 0)
			break;
		n = epoll_wait(epoll_fd, events, MAX_EVENTS, 10000);
		if (n <= 0) {
			r = n == 0 ? -ETIMEDOUT : (errno == EINTR ? 0 : -errno);
			continue;
		}
		for (int i = 0; i < n && r == 0; i++)
			r = pipeline_receive(p, events[i].data.u32, more);
		/* The warm-up counts wake-ups (pipeline_receive() counts only measured calls). */
		if (!p->measuring)
			p->calls++;
	}
	close(epoll_fd);
	if (r == 0)
		measure_from(out, &p->samples, p->calls, now_ns() - start);
	else
		measure_fail(out, r, "raw pipelined");
	return r;
}

int
raw_pipelined(const struct bench_config *config, unsigned conns, unsigned in_flight, size_t n_fds,
              const struct wire_size *wire, struct measure *out)
{
	struct raw_server server = {
	    .pair_fd = -1, .many = true, .request = wire->request, .reply = wire->reply};
	struct pipeline p = {.wire = wire, .n_fds = n_fds, .in_flight = in_flight};
	int fds[MAX_FDS_PER_CALL];
	int null_fd = open_fds(fds, n_fds);
	struct child child = {.pid = -1};
	int r;

	assert(config);
	assert(wire);
	assert(out);

	if (null_fd < 0)
		return null_fd;
	p.fds = fds;
	socket_path(config, server.path, sizeof(server.path));
	p.peers = calloc(conns, sizeof(*p.peers));
	p.sent_at = calloc((size_t)conns * in_flight, sizeof(*p.sent_at));
	p.ring_head = calloc(conns, sizeof(*p.ring_head));
	p.outstanding = calloc(conns, sizeof(*p.outstanding));
	r = p.peers && p.sent_at && p.ring_head && p.outstanding ? 0 : -ENOMEM;
	if (r == 0)
		r = samples_init(&p.samples, MAX_SAMPLES);
	for (unsigned i = 0; p.peers && i < conns; i++)
		p.peers[i].sock = -1;
	if (r == 0)
		r = raw_server_start(&server, &child);
	for (unsigned i = 0; r == 0 && i < conns; i++) {
		p.peers[i].sock = connect_to(server.path);
		r = p.peers[i].sock < 0 ? p.peers[i].sock : 0;
	}
	if (r == 0)
		r = pipeline_run(config, &p, conns, out);
	else
		measure_fail(out, r, "raw pipelined setup");
	for (unsigned i = 0; p.peers && i < conns; i++)
		if (p.peers[i].sock >= 0)
			close(p.peers[i].sock);
	raw_server_stop(&server, &child);
	samples_free(&p.samples);
	free(p.peers);
	free(p.sent_at);
	free(p.ring_head);
	free(p.outstanding);
	close(null_fd);
	return r;
}

/* ---- One-way stream ---- */

struct raw_sender {
	int sock;
	size_t n_fds;
	size_t item_bytes;
};

/* Grants are u32 counts of items the sender may send more; EOF ends it. */
static void
raw_sender_main(void *arg, int ready_fd)
{
	const struct raw_sender *sender = arg;
	int fds[MAX_FDS_PER_CALL];
	uint32_t granted = 0;

	signal(SIGTERM, SIG_DFL);
	if (open_fds(fds, sender->n_fds) < 0)
		_exit(2);
	child_ready(ready_fd);
	for (;;) {
		uint32_t more;

		if (granted == 0) {
			if (recv(sender->sock, &more, sizeof(more), MSG_WAITALL) != sizeof(more))
				_exit(0);
			granted += more;
			continue;
		}
		if (send_request(sender->sock, sender->item_bytes, fds, sender->n_fds) < 0)
			_exit(0);
		granted--;
	}
}

static int
grant(int sock, uint32_t n)
{
	return send_all(sock, (const uint8_t *)&n, sizeof(n));
}

/* Receive items until the budget is spent, granting half a window each time half is used. */
static int
receive_items(const struct bench_config *config, int sock, size_t n_fds, size_t item_bytes,
              struct measure *out)
{
	static uint8_t buffer[IO_BUFFER];
	union {
		struct cmsghdr align;
		uint8_t bytes[CMSG_SPACE(MAX_FDS_PER_CALL * sizeof(int))];
	} control;
	unsigned window = stream_window(n_fds), refill = (window + 1) / 2;
	long items = 0, consumed = 0, warmup = WARMUP_CALLS;
	struct run_budget budget;
	size_t pending = 0;
	uint64_t start = 0;
	int r = grant(sock, window);

	while (r == 0 && (warmup > 0 || run_budget_more(&budget, items))) {
		struct iovec iov = {.iov_base = buffer, .iov_len = sizeof(buffer)};
		struct msghdr msg = {.msg_iov = &iov,
		                     .msg_iovlen = 1,
		                     .msg_control = &control,
		                     .msg_controllen = sizeof(control)};
		ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
		long complete;

		if (n <= 0) {
			r = n < 0 && errno == EINTR ? 0 : n < 0 ? -errno : -ECONNRESET;
			continue;
		}
		close_rights(&msg);
		pending += (size_t)n;
		complete = (long)(pending / item_bytes);
		pending %= item_bytes;
		consumed += complete;
		if (warmup > 0) {
			warmup -= complete;
			if (warmup <= 0) {
				run_budget_start(&budget, config, 1.0);
				start = now_ns();
			}
		} else {
			items += complete;
		}
		while (r == 0 && consumed >= refill) {
			consumed -= refill;
			r = grant(sock, refill);
		}
	}
	if (r == 0)
		measure_from(out, NULL, items, now_ns() - start);
	else
		measure_fail(out, r, "raw stream");
	return r;
}

int
raw_stream(const struct bench_config *config, size_t n_fds, size_t item_bytes, struct measure *out)
{
	struct raw_sender sender = {.n_fds = n_fds, .item_bytes = item_bytes};
	struct child child;
	int pair[2], r;

	assert(config);
	assert(out);

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
		r = -errno;
		measure_fail(out, r, "raw stream socketpair");
		return r;
	}
	sender.sock = pair[1];
	r = child_start(&child, raw_sender_main, &sender);
	close(pair[1]);
	if (r == 0)
		r = receive_items(config, pair[0], n_fds, item_bytes, out);
	else
		measure_fail(out, r, "raw stream sender");
	close(pair[0]);
	child_stop(&child);
	return r;
}
